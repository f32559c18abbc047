"""Driver of the side-by-side batch benchmark (called by run.sh).

Generates each instance once with a fixed seed, runs sidan's solvers
(`batch_timing`) and the peers (`peers.py`) on the same file, checks that
every optimum is equal, prints a table and rewrites the section of
docs/benchmarks.md between <!-- batch:begin --> and <!-- batch:end -->.
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
BEGIN, END = "<!-- batch:begin -->", "<!-- batch:end -->"

# name, requests, teams, capacity, k, peers
SIZES = [
    ("1k x 1k", 1_000, 1_000, 1, 32, "lsa,sparse,ortools"),
    ("10k x 2k, cap 5", 10_000, 2_000, 5, 32, "sparse,ortools"),
    ("50k x 100k", 50_000, 100_000, 1, 32, "sparse,ortools"),
]
LAYOUTS = ["uniform", "clustered"]


def run_json(cmd):
    out = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return json.loads(out.stdout)


def fmt_s(x):
    if x is None:
        return "–"
    if x < 1e-3:
        return f"{x * 1e6:.0f} µs"
    return f"{x * 1000:.1f} ms" if x < 1 else f"{x:.2f} s"


def fmt_ratio(a, b):
    return "–" if a is None or b is None else f"{a / b:.3f}×"


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--timing-bin", required=True)
    p.add_argument("--seed", type=int, default=20261201)
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--peer-reps", type=int, default=3)
    p.add_argument("--quick", action="store_true", help="only the 1k instances")
    p.add_argument("--no-write", action="store_true", help="do not touch docs/benchmarks.md")
    p.add_argument("--rows", help="re-render the table from the JSON rows a previous run printed")
    a = p.parse_args()

    rows, all_equal = [], True
    sizes = SIZES[:1] if a.quick else SIZES
    if a.rows:
        with open(a.rows) as f:
            rows = [json.loads(line) for line in f if line.startswith('{"instance"')]
        all_equal = all(r["equal"] for r in rows)
        sizes = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, (name, n, m, cap, k, peers) in enumerate(sizes):
            for j, layout in enumerate(LAYOUTS):
                seed = a.seed + 10 * i + j
                path = os.path.join(tmp, f"{i}-{layout}.bin")
                subprocess.run(
                    [sys.executable, str(HERE / "gen.py"), "--seed", str(seed), "--requests", str(n),
                     "--teams", str(m), "--capacity", str(cap), "--k", str(k), "--layout", layout,
                     "--out", path],
                    check=True,
                )
                ours = run_json([a.timing_bin, path, str(a.reps)])
                theirs = run_json([sys.executable, str(HERE / "peers.py"), path, "--reps",
                                   str(a.peer_reps), "--peers", peers])
                optimum = (ours["optimal"]["served_priority"], ours["optimal"]["total_cost"])
                equal = all((v["served_priority"], v["total_cost"]) == optimum for v in theirs.values())
                all_equal &= equal
                row = {
                    "instance": f"{name}, {layout}",
                    "edges": ours["n_edges"],
                    "optimum": optimum,
                    "greedy": (ours["greedy"]["served_priority"], ours["greedy"]["total_cost"]),
                    "equal": equal,
                    "build": ours["build_s"],
                    "optimal": ours["optimal"]["solve_s"],
                    "greedy_s": ours["greedy"]["solve_s"],
                    "lsa": theirs.get("lsa", {}).get("solve_s"),
                    "sparse": theirs.get("sparse", {}).get("solve_s"),
                    "ortools": theirs.get("ortools", {}).get("solve_s"),
                    "mismatch": None if equal else theirs,
                }
                rows.append(row)
                print(json.dumps(row), flush=True)

    lines = [
        BEGIN,
        "## Batch assignment: sidan vs SciPy and OR-Tools",
        "",
        "Written by `benches/batch_compare/run.sh` (seed "
        f"{a.seed}, medians of {a.reps} runs for sidan and {a.peer_reps} for the peers, one machine, "
        f"one run: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs). "
        "Each instance is generated once and written to a file that every solver reads. "
        "Requests have 32 candidate teams each (their nearest), costs are millimetres, priorities 1–5. "
        "Times are the solve call alone; sidan's *build* (validation + CSR) is shown apart. "
        "LSA (dense, capacity-expanded) runs on the smallest size only.",
        "",
        "| instance | edges | equal optimum | sidan optimal | sidan build | sidan greedy | SciPy LSA | SciPy sparse | OR-Tools MCF | optimal / OR-Tools | optimal / SciPy sparse | optimal / greedy | (build+optimal) / (build+greedy) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['instance']} | {r['edges']:,} | {'yes' if r['equal'] else '**NO**'} "
            f"| {fmt_s(r['optimal'])} | {fmt_s(r['build'])} | {fmt_s(r['greedy_s'])} "
            f"| {fmt_s(r['lsa'])} | {fmt_s(r['sparse'])} | {fmt_s(r['ortools'])} "
            f"| {fmt_ratio(r['optimal'], r['ortools'])} | {fmt_ratio(r['optimal'], r['sparse'])} "
            f"| {fmt_ratio(r['optimal'], r['greedy_s'])} "
            f"| {fmt_ratio(r['build'] + r['optimal'], r['build'] + r['greedy_s'])} |"
        )
    lines += ["", "Targets of the issue, from this run:", ""]
    for r in rows:
        checks = []
        if r["instance"].startswith("10k") and r["ortools"]:
            ratio = r["optimal"] / r["ortools"]
            checks.append(f"≤ 0.25× OR-Tools: {ratio:.3f}× ({'met' if ratio <= 0.25 else 'missed'})")
        if r["instance"].startswith("50k") and r["sparse"]:
            ratio = r["optimal"] / r["sparse"]
            checks.append(f"≤ 0.1× SciPy sparse: {ratio:.3f}× ({'met' if ratio <= 0.1 else 'missed'})")
        ratio = (r["build"] + r["optimal"]) / (r["build"] + r["greedy_s"])
        checks.append(f"optimal within 5× greedy (build included): {ratio:.1f}× ({'met' if ratio <= 5 else 'missed'})")
        checks.append(f"equal optimum: {'met' if r['equal'] else 'MISSED'}")
        lines.append(f"- {r['instance']}: " + "; ".join(checks))
    lines += ["", "Served priority and total cost (optimal vs greedy):", ""]
    for r in rows:
        (op, oc), (gp, gc) = r["optimum"], r["greedy"]
        lines.append(f"- {r['instance']}: optimal {op} / {oc / 1e6:,.1f} km, greedy {gp} / {gc / 1e6:,.1f} km")
    lines.append(END)
    table = "\n".join(lines)
    print(table)

    if not a.no_write:
        doc = ROOT / "docs" / "benchmarks.md"
        text = doc.read_text() if doc.exists() else "# Benchmarks\n"
        if BEGIN in text and END in text:
            head, rest = text.split(BEGIN, 1)
            _, tail = rest.split(END, 1)
            text = head + table + tail
        else:
            text = text.rstrip("\n") + "\n\n" + table + "\n"
        doc.write_text(text)
        print(f"updated {doc}")
    if not all_equal:
        sys.exit("optimum mismatch: see the table")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Collect the medians of `cargo bench --bench ledger` into docs/benchmarks.md.

Usage: cargo bench --bench ledger && python3 benches/ledger_report.py
Reads <target>/criterion/ledger/{posted,mixed}/new/estimates.json and
<target>/criterion/ledger-counts.txt, where <target> is $CARGO_TARGET_DIR or ./target,
and rewrites the section between <!-- ledger:begin --> and <!-- ledger:end --> of
docs/benchmarks.md.
"""
import json
import os
import platform
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGET = os.environ.get("CARGO_TARGET_DIR") or os.path.join(ROOT, "target")
CRIT = os.path.join(ROOT, TARGET, "criterion")
TARGET_OPS = 500_000


def median_ns(name):
    path = os.path.join(CRIT, "ledger", name, "new", "estimates.json")
    with open(path) as f:
        return json.load(f)["median"]["point_estimate"]


def main():
    counts = dict(p.split("=") for p in open(os.path.join(CRIT, "ledger-counts.txt")).read().split())
    n = {k: int(v) for k, v in counts.items()}
    posted_ns, mixed_ns = median_ns("posted"), median_ns("mixed")
    apply_ns = median_ns("posted_decide_apply")
    apply_rate = n["posted_ops"] / (apply_ns / 1e9)
    posted_rate = n["posted_ops"] / (posted_ns / 1e9)
    mixed_rate = n["mixed_ops"] / (mixed_ns / 1e9)
    mixed_cmd_rate = n["mixed_commands"] / (mixed_ns / 1e9)
    cpu = "unknown"
    try:
        cpu = re.search(r"model name\s*:\s*(.*)", open("/proc/cpuinfo").read()).group(1)
    except (OSError, AttributeError):
        pass
    rustc = subprocess.run(["rustc", "--version"], capture_output=True, text=True).stdout.strip()
    met = lambda v: "met" if v >= TARGET_OPS else "**missed**"
    section = "\n".join(
        [
            "<!-- ledger:begin -->",
            "## Ledger (`cargo bench --bench ledger`)",
            "",
            f"Machine: {cpu}, {os.cpu_count()} cores, {platform.system()}; {rustc}.",
            f"{n['volunteers']:,} volunteers (points and minutes accounts) and {n['stations']:,} station shelves,",
            f"{n['accounts']:,} accounts in all, opened and funded before the clock starts. Core = `Ledger::execute`",
            "and `Ledger::execute_tick` on one thread, one command per transfer or linked pair.",
            "*posted*: single-phase transfers between random accounts, half service credits (issuance → a",
            "volunteer's minutes), half adjustments between two volunteers' points. *mixed*: per round, a",
            "redemption reserved for pick-up (two linked pending transfers), a service credit, and the",
            f"redemption of 20 rounds before posted (70 %), voided (20 %) or left to expire (10 %; a tick every",
            f"100 rounds); {n['rounds']:,} rounds: {n['made']:,} transfers made, {n['posts']:,} posts,",
            f"{n['voids']:,} voids, {n['expiries']:,} expiries. Transfer operations = transfers made + posts +",
            "voids + expiries. `execute` decides and commits the decision's scratch overlay; *decide then",
            "apply* folds the events again after deciding them, as the runtime does once they are stored.",
            "One run, criterion medians.",
            "",
            "| workload | per run | median | throughput | target |",
            "| --- | ---: | ---: | ---: | --- |",
            f"| posted | {n['posted_ops']:,} transfers | {posted_ns / 1e6:.1f} ms | "
            f"{posted_rate / 1e3:,.0f} k transfers/s | ≥ 500 k transfers/s: {met(posted_rate)} |",
            f"| posted, decide then apply | {n['posted_ops']:,} transfers | {apply_ns / 1e6:.1f} ms | "
            f"{apply_rate / 1e3:,.0f} k transfers/s | (the runtime's path) |",
            f"| mixed | {n['mixed_ops']:,} transfer operations ({n['mixed_commands']:,} commands) | "
            f"{mixed_ns / 1e6:.1f} ms | {mixed_rate / 1e3:,.0f} k operations/s ({mixed_cmd_rate / 1e3:,.0f} k "
            f"commands/s) | ≥ 500 k/s: {met(mixed_rate)} |",
            "",
            "Reproduce: `cargo bench --bench ledger && python3 benches/ledger_report.py`.",
            "<!-- ledger:end -->",
        ]
    )
    doc = os.path.join(ROOT, "docs", "benchmarks.md")
    text = open(doc).read()
    if "<!-- ledger:begin -->" in text:
        text = re.sub(r"<!-- ledger:begin -->.*?<!-- ledger:end -->", lambda _: section, text, flags=re.S)
    else:
        text = text.rstrip() + "\n\n" + section + "\n"
    open(doc, "w").write(text)
    print(section)


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Write the figures of `cargo bench -p sidan-store-sqlite --bench store` into docs/benchmarks.md.

Usage: cargo bench -p sidan-store-sqlite --bench store && python3 benches/store_report.py
Reads target/store-bench.json (the bench writes it under the workspace's
target/ folder whatever CARGO_TARGET_DIR says) and rewrites the section
between <!-- store:begin --> and <!-- store:end --> of docs/benchmarks.md.
"""
import json
import os
import platform
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGET_EVENTS = 10_000_000
TARGET_REPLAY_S = 10.0
SNAPSHOT_EVERY = 1_000_000  # EngineConfig::default().snapshot_every


def main():
    data = json.load(open(os.path.join(ROOT, "target", "store-bench.json")))
    fig = {(f["store"], f["name"]): f for f in data["figures"]}
    cpu = "unknown"
    try:
        cpu = re.search(r"model name\s*:\s*(.*)", open("/proc/cpuinfo").read()).group(1)
    except (OSError, AttributeError):
        pass
    rustc = subprocess.run(["rustc", "--version"], capture_output=True, text=True).stdout.strip()
    met = lambda ok: "met" if ok else "**missed**"

    def rate(store, name):
        f = fig.get((store, name))
        return f"{f['value']:,.0f} {f['unit']}" if f else "–"

    def n(store, name):
        f = fig.get((store, name))
        return f"{f['n']:,}" if f else "–"

    rows = [
        ("append, batches of 1,000 events", "append_batched"),
        ("append, batches of 10,000 events (bulk load)", "append_bulk"),
        ("append, one event each, one writer", "append_single"),
        ("append, one event each, 64 writers", "append_single_64"),
        ("engine, 64 clients, group commit ≤ 1,024 commands", "engine_batched"),
        ("engine, 64 clients, one command per append", "engine_unbatched"),
    ]
    lines = [
        "<!-- store:begin -->",
        "## Stores (`cargo bench -p sidan-store-sqlite --bench store`)",
        "",
        f"Machine: {cpu}, {os.cpu_count()} cores, {platform.system()}; {rustc}.",
        f"Real events: requests of a generated city of {data['teams']:,} teams, each through its whole life",
        "in the core (about fifteen events a request, the ledger's service credits included). SQLite: WAL, `synchronous = FULL`, one file on the",
        "machine's disk. PostgreSQL: the local server (15, default settings, `synchronous_commit = on`)",
        "over loopback. Every append returns only once durable. The bench runs on mimalloc, the `sidan` "
        "binary's allocator. One run; each figure measured once.",
        f"Load average (1/5/15 min) at the start: {' '.join(data.get('loadavg_start', '?').split()[:3])}, "
        f"at the end: {' '.join(data.get('loadavg_end', '?').split()[:3])} (2 cores: above 2, other work "
        "shared the machine and the figures are pessimistic).",
        "",
        "| what | SQLite | n | PostgreSQL | n |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for label, name in rows:
        lines.append(f"| {label} | {rate('sqlite', name)} | {n('sqlite', name)} | {rate('postgres', name)} | {n('postgres', name)} |")
    lines.append("")

    sq, pg = fig.get(("sqlite", "append_batched")), fig.get(("postgres", "append_batched"))
    lines.append("Targets (durable events/s with batching):")
    lines.append("")
    if sq:
        lines.append(f"- SQLite ≥ 50,000 events/s: {sq['value']:,.0f} ({met(sq['value'] >= 50_000)})")
    if pg:
        lines.append(f"- PostgreSQL ≥ 20,000 events/s: {pg['value']:,.0f} ({met(pg['value'] >= 20_000)})")
    lines.append("")

    lines.append("Opening a store and rebuilding the state (`open` + `Engine::start`, a full replay):")
    lines.append("")
    lines.append("| store | events | open | read the log alone | open + replay | per event | 10M events, extrapolated |")
    lines.append("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    extrapolated = {}
    for store in ("sqlite", "postgres"):
        o, r, rp = fig.get((store, "open")), fig.get((store, "read_all")), fig.get((store, "open_replay"))
        if not rp:
            continue
        per = rp["value"] / rp["n"]
        extrapolated[store] = per * TARGET_EVENTS
        lines.append(
            f"| {store} | {rp['n']:,} | {o['value']:.2f} s | {r['value']:.2f} s | {rp['value']:.2f} s | "
            f"{per * 1e6:.2f} µs | {per * TARGET_EVENTS:.1f} s |"
        )
    lines.append("")
    fold = fig.get(("core", "fold"))
    if fold:
        lines.append(
            f"The core's fold alone (`Lifecycle::apply` on records in memory) takes {fold['value']:.2f} s for "
            f"{fold['n']:,} events ({fold['value'] / fold['n'] * 1e6:.2f} µs each). A replay folds each page "
            "while the store reads and decodes the next (SQLite keeps event bodies in their binary form, "
            "PostgreSQL in JSON); see the replay section below."
        )
        lines.append("")
    b = fig.get(("sqlite", "file_bytes_per_event"))
    if b:
        lines.append(f"SQLite file size: {b['value']:.0f} bytes per event (database + WAL).")
        lines.append("")
    snap = fig.get(("sqlite", "open_snapshot"))
    if snap:
        enc, size = fig.get(("sqlite", "snapshot_encode")), fig.get(("sqlite", "snapshot_bytes"))
        lines.append(
            "Opening the same store with a lifecycle snapshot of its whole log (the engine saves one every "
            "`snapshot_every` events, 1M by default, and at shutdown): `open` + `Engine::start` decodes the "
            "snapshot, restores the state and replays the events after it (none here)."
        )
        lines.append("")
        lines.append("| store | events | open + restore | snapshot size | encode (while running) | 10M events |")
        lines.append("| --- | ---: | ---: | ---: | ---: | ---: |")
        at10 = snap["value"] * TARGET_EVENTS / snap["n"]
        how = "measured" if snap["n"] >= TARGET_EVENTS else "extrapolated"
        lines.append(
            f"| sqlite | {snap['n']:,} | {snap['value']:.2f} s | {size['value'] / 1e6:.1f} MB | "
            f"{enc['value']:.2f} s | {at10:.1f} s ({how}) |"
        )
        lines.append("")
    if "sqlite" in extrapolated:
        x = extrapolated["sqlite"]
        n_rp = fig[("sqlite", "open_replay")]["n"]
        how = "measured" if n_rp >= TARGET_EVENTS else "extrapolated linearly from the size measured"
        lines.append(
            f"Target: a store of 10M events opened and rebuilt in ≤ {TARGET_REPLAY_S:.0f} s. Full replay at "
            f"{n_rp:,} events ({how}): {x:.1f} s on SQLite ({met(x <= TARGET_REPLAY_S)})."
        )
        if snap:
            at10 = snap["value"] * TARGET_EVENTS / snap["n"]
            rp = fig[("sqlite", "open_replay")]
            worst = at10 + rp["value"] / rp["n"] * SNAPSHOT_EVERY
            lines.append(
                f"From a snapshot: {at10:.1f} s ({met(at10 <= TARGET_REPLAY_S)}). After a clean shutdown the "
                "engine saves a snapshot, so nothing is left to replay; after a crash at most `snapshot_every` "
                f"({SNAPSHOT_EVERY:,}) events follow the last snapshot, which at the full-replay rate above adds "
                f"{rp['value'] / rp['n'] * SNAPSHOT_EVERY:.1f} s: {worst:.1f} s in the worst case "
                f"({met(worst <= TARGET_REPLAY_S)})."
            )
        lines.append("")
    lines.append(
        "Reproduce: `cargo bench -p sidan-store-sqlite --bench store && python3 benches/store_report.py` "
        "(`SIDAN_BENCH_REPLAY_EVENTS`, `SIDAN_BENCH_PG_REPLAY_EVENTS` set the replay sizes, `SIDAN_BENCH_REQUESTS` the demand: 700000 for a 10M-event log; "
        "`SIDAN_PG_URL` the server; without one the PostgreSQL column stays empty)."
    )
    lines.append("<!-- store:end -->")
    section = "\n".join(lines)

    doc = os.path.join(ROOT, "docs", "benchmarks.md")
    text = open(doc).read()
    if "<!-- store:begin -->" in text:
        text = re.sub(r"<!-- store:begin -->.*?<!-- store:end -->", lambda _: section, text, flags=re.S)
    else:
        text = text.rstrip() + "\n\n" + section + "\n"
    open(doc, "w").write(text)
    print(section)


if __name__ == "__main__":
    sys.exit(main())

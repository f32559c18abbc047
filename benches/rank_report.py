#!/usr/bin/env python3
"""Collect the medians of `cargo bench --bench rank` into docs/benchmarks.md.

Usage: cargo bench --bench rank && python3 benches/rank_report.py
Reads target/criterion/{rank_k10,index_build}/*/new/estimates.json and
target/criterion/rank-memory.txt, and rewrites the section between
<!-- rank:begin --> and <!-- rank:end --> of docs/benchmarks.md.
"""
import json
import os
import platform
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CRIT = os.path.join(ROOT, "target", "criterion")


def median_ns(group, name, size=None):
    parts = [CRIT, group, name] + ([str(size)] if size is not None else []) + ["new", "estimates.json"]
    path = os.path.join(*parts)
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)["median"]["point_estimate"]


def fmt(ns):
    if ns is None:
        return "n/a"
    if ns >= 1e9:
        return f"{ns / 1e9:.2f} s"
    if ns >= 1e6:
        return f"{ns / 1e6:.2f} ms"
    if ns >= 1e3:
        return f"{ns / 1e3:.2f} µs"
    return f"{ns:.0f} ns"


def main():
    mem = {}
    mem_path = os.path.join(CRIT, "rank-memory.txt")
    if os.path.exists(mem_path):
        for line in open(mem_path):
            kv = dict(p.split("=") for p in line.split())
            mem[int(kv["teams"])] = kv
    sizes = sorted(mem) or [1000, 10000, 100000, 1000000]
    rows = []
    for n in sizes:
        idx = median_ns("rank_k10", "index", n)
        brute = median_ns("rank_k10", "brute_force", n)
        build = median_ns("index_build", str(n))
        m = mem.get(n, {})
        ratio = f"{brute / idx:.0f}×" if idx and brute else "n/a"
        rows.append(
            f"| {n:,} | {fmt(idx)} | {fmt(brute)} | {ratio} | {fmt(build)} | "
            f"{float(m.get('spatial_bytes_per_team', 'nan')):.0f} | {float(m.get('table_bytes_per_team', 'nan')):.0f} | "
            f"{float(m.get('mean_ranked', 'nan')):.1f} |"
        )
    cpu = "unknown"
    try:
        cpu = re.search(r"model name\s*:\s*(.*)", open("/proc/cpuinfo").read()).group(1)
    except (OSError, AttributeError):
        pass
    rustc = subprocess.run(["rustc", "--version"], capture_output=True, text=True).stdout.strip()
    section = "\n".join(
        [
            "<!-- rank:begin -->",
            "## Online ranking (`cargo bench --bench rank`)",
            "",
            f"Machine: {cpu}, {os.cpu_count()} cores, {platform.system()}; {rustc}.",
            "Cities generated at constant density (0.42 teams/km², as Cangzhou); 1,000 generated requests",
            "ranked round-robin, k = 10, criterion medians. Brute force = the same eligibility and scoring",
            "over every team, in the same run. Spatial = R-tree leaves and nodes; table = team records,",
            "ids, id map and shared availability.",
            "",
            "| teams | rank (index) | rank (brute force) | speed-up | index build | spatial B/team | table B/team | mean ranked |",
            "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
            *rows,
            "",
            "Reproduce: `cargo bench --bench rank && python3 benches/rank_report.py`",
            "(`SIDAN_BENCH_SIZES=1000,10000` runs fewer sizes).",
            "<!-- rank:end -->",
        ]
    )
    doc = os.path.join(ROOT, "docs", "benchmarks.md")
    text = open(doc).read() if os.path.exists(doc) else "# Benchmarks\n\n"
    if "<!-- rank:begin -->" in text:
        text = re.sub(r"<!-- rank:begin -->.*?<!-- rank:end -->", lambda _: section, text, flags=re.S)
    else:
        text = text.rstrip() + "\n\n" + section + "\n"
    open(doc, "w").write(text)
    print(section)


if __name__ == "__main__":
    sys.exit(main())

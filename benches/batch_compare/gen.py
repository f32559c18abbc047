"""Seeded batch instances for the side-by-side benchmark.

Requests and teams are points in a 40 km x 40 km city, either uniform or
clustered (Gaussian "towns" around a few centres plus a uniform sprinkle).
Each request's candidates are its k nearest teams; the cost is the
straight-line distance in millimetres, rounded. Priorities are 1..5.

The instance is written in the little-endian binary format that
`examples/batch_timing.rs` and `peers.py` read:

    b"SDNB", u32 version = 1, u32 n_requests, u32 n_teams, u64 n_edges,
    u32 priority[n_requests], u32 capacity[n_teams],
    u32 edge_request[n_edges], u32 edge_team[n_edges], i64 edge_cost[n_edges]
"""

import argparse
import struct

import numpy as np
from scipy.spatial import cKDTree

SIDE_M = 40_000.0


def points(rng, n, layout, centres):
    if layout == "uniform":
        return rng.uniform(0.0, SIDE_M, size=(n, 2))
    # City-like: 85 % in towns of varying size and spread, 15 % scattered.
    n_scatter = n // 7
    n_town = n - n_scatter
    weights = rng.dirichlet(np.full(len(centres), 0.7))
    town = rng.choice(len(centres), size=n_town, p=weights)
    spread = rng.uniform(600.0, 3_000.0, size=len(centres))
    xy = centres[town] + rng.normal(size=(n_town, 2)) * spread[town, None]
    xy = np.clip(xy, 0.0, SIDE_M)
    return np.vstack([xy, rng.uniform(0.0, SIDE_M, size=(n_scatter, 2))])


def generate(seed, n_requests, n_teams, capacity, k, layout):
    rng = np.random.default_rng(seed)
    centres = rng.uniform(3_000.0, SIDE_M - 3_000.0, size=(16, 2))
    teams = points(rng, n_teams, layout, centres)
    requests = points(rng, n_requests, layout, centres)
    k = min(k, n_teams)
    dist, idx = cKDTree(teams).query(requests, k=k)
    dist = dist.reshape(n_requests, k)
    idx = idx.reshape(n_requests, k)
    edge_request = np.repeat(np.arange(n_requests, dtype=np.uint32), k)
    edge_team = idx.astype(np.uint32).ravel()
    edge_cost = np.rint(dist * 1000.0).astype(np.int64).ravel()
    priority = rng.integers(1, 6, size=n_requests, dtype=np.uint32)
    cap = np.full(n_teams, capacity, dtype=np.uint32)
    return priority, cap, edge_request, edge_team, edge_cost


def write(path, priority, cap, er, et, ec):
    with open(path, "wb") as f:
        f.write(b"SDNB")
        f.write(struct.pack("<IIIQ", 1, len(priority), len(cap), len(er)))
        for a, dt in ((priority, "<u4"), (cap, "<u4"), (er, "<u4"), (et, "<u4"), (ec, "<i8")):
            f.write(np.ascontiguousarray(a, dtype=dt).tobytes())


def read(path):
    with open(path, "rb") as f:
        data = f.read()
    assert data[:4] == b"SDNB", "not a batch instance"
    version, n, m, e = struct.unpack_from("<IIIQ", data, 4)
    assert version == 1
    off = 4 + struct.calcsize("<IIIQ")

    def take(count, dt):
        nonlocal off
        a = np.frombuffer(data, dtype=dt, count=count, offset=off)
        off += a.nbytes
        return a

    return (take(n, "<u4"), take(m, "<u4"), take(e, "<u4"), take(e, "<u4"), take(e, "<i8"))


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--requests", type=int, required=True)
    p.add_argument("--teams", type=int, required=True)
    p.add_argument("--capacity", type=int, default=1)
    p.add_argument("--k", type=int, default=32)
    p.add_argument("--layout", choices=["uniform", "clustered"], default="uniform")
    p.add_argument("--out", required=True)
    a = p.parse_args()
    write(a.out, *generate(a.seed, a.requests, a.teams, a.capacity, a.k, a.layout))


if __name__ == "__main__":
    main()

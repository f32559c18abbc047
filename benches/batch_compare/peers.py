"""The peer solvers of the side-by-side benchmark, on an instance file.

Every peer solves the same lexicographic objective as `sidan`: maximise the
served priority, then minimise the total cost. Leaving request r out costs
M * priority(r) with M = sum_r max_t cost(r, t) + 1, larger than any
difference in total cost between two plans, so the min-cost plan of each
peer is the lexicographic optimum. Each plan is checked for feasibility and
scored in exact integers here, not from the peer's floating-point objective.

Prints one JSON object: per peer, the plan's (served_priority, total_cost)
and the median time of the solve call alone (the graph or matrix is built
beforehand and not timed).
"""

import argparse
import json
import statistics
import sys
import time

import numpy as np
from scipy.optimize import linear_sum_assignment
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import min_weight_full_bipartite_matching

from gen import read


def leave_out_weight(n, er, ec):
    row_max = np.zeros(n, dtype=np.int64)
    np.maximum.at(row_max, er.astype(np.int64), ec)
    return int(row_max.sum()) + 1


def score(priority, cap, er, et, ec, assigned_edge):
    """Exact (served_priority, total_cost) of a plan given as one edge index
    (or -1) per request; raises if the plan is infeasible."""
    served = assigned_edge >= 0
    edges = assigned_edge[served]
    if not np.all(er[edges] == np.nonzero(served)[0]):
        raise AssertionError("plan assigns a request along another request's edge")
    load = np.bincount(et[edges].astype(np.int64), minlength=len(cap))
    if np.any(load > cap):
        raise AssertionError("plan exceeds a team's capacity")
    return int(priority[served].astype(np.int64).sum()), int(ec[edges].sum())


def timed(reps, f):
    times, out = [], None
    for _ in range(reps):
        start = time.perf_counter()
        out = f()
        times.append(time.perf_counter() - start)
    return out, statistics.median(times)


def edge_lookup(n, m, er, et):
    """Map (request, team) -> edge index, for turning a peer's pairing into
    edges. Sorted keys and searchsorted keep it vectorised."""
    keys = er.astype(np.int64) * m + et.astype(np.int64)
    order = np.argsort(keys, kind="stable")
    return keys[order], order


def edges_of_pairs(lookup, m, rows, teams):
    keys, order = lookup
    q = rows.astype(np.int64) * m + teams.astype(np.int64)
    pos = np.searchsorted(keys, q)
    assert np.all(keys[pos] == q), "peer chose a pair that is not an edge"
    return order[pos]


def slot_expansion(cap, et):
    """Columns for capacity-expanded teams: team t owns slots
    slot_start[t] .. slot_start[t] + cap[t]."""
    cap64 = cap.astype(np.int64)
    slot_start = np.concatenate([[0], np.cumsum(cap64)])
    return slot_start, cap64


def run_lsa(priority, cap, er, et, ec, big, reps, lookup):
    """Dense Hungarian (SciPy linear_sum_assignment): a request x slot weight
    matrix with big*priority - cost on edges and 0 (= not assigned) elsewhere,
    maximised."""
    n, m = len(priority), len(cap)
    slot_start, cap64 = slot_expansion(cap, et)
    n_slots = int(slot_start[-1])
    w = np.zeros((n, n_slots), dtype=np.float64)
    gain = big * priority.astype(np.float64)[er] - ec.astype(np.float64)
    for k in range(int(cap64.max(initial=0))):
        ok = cap64[et] > k
        w[er[ok], slot_start[et[ok]] + k] = gain[ok]
    (rows, cols), t = timed(reps, lambda: linear_sum_assignment(w, maximize=True))
    real = w[rows, cols] > 0
    rows, cols = rows[real], cols[real]
    teams = np.searchsorted(slot_start, cols, side="right") - 1
    assigned = np.full(n, -1, dtype=np.int64)
    assigned[rows] = edges_of_pairs(lookup, m, rows, teams)
    return score(priority, cap, er, et, ec, assigned), t


def run_sparse_matching(priority, cap, er, et, ec, big, reps, lookup):
    """SciPy min_weight_full_bipartite_matching (LAPJVsp): requests x
    (team slots + one private leave-out column per request)."""
    n, m = len(priority), len(cap)
    slot_start, cap64 = slot_expansion(cap, et)
    n_slots = int(slot_start[-1])
    reps_per_edge = cap64[et]
    rows = np.repeat(er.astype(np.int64), reps_per_edge)
    within = np.arange(len(rows)) - np.repeat(np.cumsum(reps_per_edge) - reps_per_edge, reps_per_edge)
    cols = np.repeat(slot_start[et], reps_per_edge) + within
    # +1 keeps every stored weight non-zero; each row is matched exactly
    # once, so the shift adds n to every plan and changes no optimum.
    wts = np.repeat(ec.astype(np.float64), reps_per_edge) + 1.0
    rows = np.concatenate([rows, np.arange(n)])
    cols = np.concatenate([cols, n_slots + np.arange(n)])
    wts = np.concatenate([wts, big * priority.astype(np.float64) + 1.0])
    g = csr_matrix((wts, (rows, cols)), shape=(n, n_slots + n))
    (r_idx, c_idx), t = timed(reps, lambda: min_weight_full_bipartite_matching(g))
    real = c_idx < n_slots
    r_idx, c_idx = r_idx[real], c_idx[real]
    teams = np.searchsorted(slot_start, c_idx, side="right") - 1
    assigned = np.full(n, -1, dtype=np.int64)
    assigned[r_idx] = edges_of_pairs(lookup, m, r_idx, teams)
    return score(priority, cap, er, et, ec, assigned), t


def run_ortools(priority, cap, er, et, ec, big, reps):
    """OR-Tools SimpleMinCostFlow: a transportation problem. Each request
    supplies one unit; it flows to a team (cost = edge cost, capacity 1) and
    on to the sink (capacity = team capacity), or straight to the sink at
    big * priority (left out)."""
    from ortools.graph.python import min_cost_flow

    n, m, e = len(priority), len(cap), len(er)
    sink = n + m

    def build():
        mcf = min_cost_flow.SimpleMinCostFlow()
        tails = np.concatenate([er.astype(np.int64), n + np.arange(m), np.arange(n)])
        heads = np.concatenate([n + et.astype(np.int64), np.full(m, sink), np.full(n, sink)])
        caps = np.concatenate([np.ones(e, dtype=np.int64), cap.astype(np.int64), np.ones(n, dtype=np.int64)])
        costs = np.concatenate([ec, np.zeros(m, dtype=np.int64), big * priority.astype(np.int64)])
        mcf.add_arcs_with_capacity_and_unit_cost(tails, heads, caps, costs)
        supplies = np.concatenate([np.ones(n, dtype=np.int64), np.zeros(m, dtype=np.int64), [-n]])
        mcf.set_nodes_supplies(np.arange(n + m + 1), supplies)
        return mcf

    times, mcf = [], None
    for _ in range(reps):
        mcf = build()
        start = time.perf_counter()
        status = mcf.solve()
        times.append(time.perf_counter() - start)
        if status != mcf.OPTIMAL:
            raise AssertionError(f"OR-Tools status {status}")
    flows = mcf.flows(np.arange(e))
    assigned = np.full(n, -1, dtype=np.int64)
    used = np.nonzero(flows > 0)[0]
    assigned[er[used]] = used
    return score(priority, cap, er, et, ec, assigned), statistics.median(times)


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("instance")
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--peers", default="lsa,sparse,ortools")
    a = p.parse_args()
    priority, cap, er, et, ec = read(a.instance)
    n, m = len(priority), len(cap)
    big = leave_out_weight(n, er, ec)
    if big * int(priority.max(initial=0)) * (n + m + 2) >= 2**62:
        sys.exit("costs too large for the int64 peers; use a coarser unit")
    lookup = edge_lookup(n, m, er, et)
    out = {}
    for peer in a.peers.split(","):
        if peer == "lsa":
            (sp, tc), t = run_lsa(priority, cap, er, et, ec, big, a.reps, lookup)
        elif peer == "sparse":
            (sp, tc), t = run_sparse_matching(priority, cap, er, et, ec, big, a.reps, lookup)
        elif peer == "ortools":
            (sp, tc), t = run_ortools(priority, cap, er, et, ec, big, a.reps)
        elif peer == "":
            continue
        else:
            sys.exit(f"unknown peer {peer!r}")
        out[peer] = {"served_priority": sp, "total_cost": tc, "solve_s": t}
    print(json.dumps(out))


if __name__ == "__main__":
    main()

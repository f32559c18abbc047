//! The exact solver: successive shortest augmenting paths with potentials on
//! the sparse candidate graph (Jonker–Volgenant style, with team capacities).
//!
//! The batch is the min-cost flow problem
//!
//! ```text
//! min Σ cost(r, t)·x(r, t) + Σ M·priority(r)·y(r)
//! s.t. Σ_t x(r, t) + y(r) = 1 for every request r   (served, or left out)
//!      Σ_r x(r, t) ≤ capacity(t) for every team t
//! ```
//!
//! whose dual has a price `u(r)` per request and `π(t) ≥ 0` per team with
//! reduced costs `cost(r, t) − u(r) + π(t) ≥ 0` and `u(r) ≤ M·priority(r)`.
//! The solver keeps those reduced costs non-negative and zero on every chosen
//! pair, keeps `π(t) = 0` on every team with room, and adds one request at a
//! time along a shortest augmenting path found by Dijkstra. A path ends at a
//! team with room, or at the "leave out" option of some request (possibly the
//! new one). `u(r)` is never stored: for a served request it equals
//! `cost(r, team) + π(team)`, because its chosen pair has zero reduced cost.
//!
//! The search stops at the first target it pops, never enters a team with
//! room (a path through one is never shorter than stopping there), and does
//! not push a node whose tentative distance is already no better than the best
//! target, so most requests cost a scan of their own candidates. A cheap warm
//! start gives every request its cheapest team while that team has room,
//! which keeps all reduced costs non-negative with `π = 0`.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::ops::{Add, Sub};

use super::{BatchPlan, BatchProblem, priority_order};

/// Solves the batch exactly: the plan serves the largest total priority and,
/// among such plans, has the least total cost.
///
/// Deterministic: the same problem gives the same plan. Runs in about
/// `O(n_requests · (k + path work))` on sparse graphs, where most requests
/// finish after scanning their own `k` candidates.
pub fn solve_optimal(problem: &BatchProblem) -> BatchPlan {
    let p_max = problem.priority.iter().copied().max().unwrap_or(0);
    let m = 2 * i128::from(problem.cost_bound) + 1;
    // Every distance and price stays below about 3·M·p_max (see the module
    // doc of `docs/batch.md`), so i64 is exact when 4·M·p_max fits.
    let fits_i64 = m
        .checked_mul(i128::from(p_max) + 1)
        .and_then(|x| x.checked_mul(4))
        .is_some_and(|x| x < i128::from(i64::MAX));
    let team_of = if fits_i64 {
        Solver::<i64>::new(problem, m).run()
    } else {
        Solver::<i128>::new(problem, m).run()
    };
    let mut assignment = vec![None; problem.n_requests()];
    let mut served_priority = 0u64;
    let mut total_cost = 0i64;
    let mut n_served = 0;
    for (r, &t) in team_of.iter().enumerate() {
        if (t as usize) < problem.n_teams() {
            assignment[r] = Some(t);
            served_priority += u64::from(problem.priority[r]);
            total_cost += problem
                .edge_cost(r, t)
                .expect("the solver only assigns along edges");
            n_served += 1;
        }
    }
    BatchPlan {
        assignment,
        served_priority,
        total_cost,
        n_served,
    }
}

/// The integer type of distances and prices: `i64` when the bound allows,
/// `i128` otherwise.
trait Cost: Copy + Ord + Add<Output = Self> + Sub<Output = Self> {
    const ZERO: Self;
    fn from_i64(x: i64) -> Self;
    fn from_i128(x: i128) -> Self;
}

impl Cost for i64 {
    const ZERO: Self = 0;
    #[inline]
    fn from_i64(x: i64) -> Self {
        x
    }
    fn from_i128(x: i128) -> Self {
        i64::try_from(x).expect("caller checked the range")
    }
}

impl Cost for i128 {
    const ZERO: Self = 0;
    #[inline]
    fn from_i64(x: i64) -> Self {
        i128::from(x)
    }
    fn from_i128(x: i128) -> Self {
        x
    }
}

/// `team_of` marker: not processed yet (or the root of the current search).
const UNASSIGNED: u32 = u32::MAX;
/// `team_of` marker: left out of the plan.
const LEFT_OUT: u32 = u32::MAX - 1;

#[derive(Clone, Copy)]
enum Target {
    /// Team `team` has room; reached from request `via` over an edge of `cost`.
    Room { team: u32, via: u32, cost: i64 },
    /// Request `request` is left out.
    LeaveOut { request: u32 },
}

struct Solver<'a, C> {
    pb: &'a BatchProblem,
    /// `M · priority(r)`: the price of leaving `r` out.
    leave_out: Vec<C>,
    /// Team prices π(t).
    pi: Vec<C>,
    /// Team `t`'s members live in `slots[slot_start[t]..slot_start[t] + load[t]]`.
    slot_start: Vec<u32>,
    load: Vec<u32>,
    slots: Vec<u32>,
    /// Team serving each request, or [`UNASSIGNED`] / [`LEFT_OUT`].
    team_of: Vec<u32>,
    slot_of: Vec<u32>,
    /// Cost of the chosen edge of each served request.
    chosen_cost: Vec<i64>,
    // Search scratch, valid where `seen[t] == search_id`.
    search_id: u32,
    seen: Vec<u32>,
    settled_in: Vec<u32>,
    dist: Vec<C>,
    pred: Vec<u32>,
    pred_cost: Vec<i64>,
    settled: Vec<u32>,
    heap: BinaryHeap<Reverse<(C, u32)>>,
    pushes: usize,
}

impl<'a, C: Cost> Solver<'a, C> {
    fn new(pb: &'a BatchProblem, m: i128) -> Self {
        let n_teams = pb.n_teams();
        // A team never takes more requests than it has candidates, so the
        // slots stay O(edges) even with huge capacities.
        let mut degree = vec![0u32; n_teams];
        for &t in &pb.col {
            degree[t as usize] += 1;
        }
        let mut slot_start = Vec::with_capacity(n_teams + 1);
        let mut total = 0u32;
        slot_start.push(0);
        for t in 0..n_teams {
            total += pb.capacity[t].min(degree[t]);
            slot_start.push(total);
        }
        let leave_out = pb
            .priority
            .iter()
            // M·p fits C by the check in `solve_optimal`.
            .map(|&p| C::from_i128(m * i128::from(p)))
            .collect();
        Self {
            pb,
            leave_out,
            pi: vec![C::ZERO; n_teams],
            slot_start,
            load: vec![0; n_teams],
            slots: vec![0; total as usize],
            team_of: vec![UNASSIGNED; pb.n_requests()],
            slot_of: vec![0; pb.n_requests()],
            chosen_cost: vec![0; pb.n_requests()],
            search_id: 0,
            seen: vec![0; n_teams],
            settled_in: vec![0; n_teams],
            dist: vec![C::ZERO; n_teams],
            pred: vec![0; n_teams],
            pred_cost: vec![0; n_teams],
            settled: Vec::new(),
            heap: BinaryHeap::new(),
            pushes: 0,
        }
    }

    fn room(&self, t: u32) -> bool {
        let t = t as usize;
        self.load[t] < self.slot_start[t + 1] - self.slot_start[t]
    }

    fn run(mut self) -> Vec<u32> {
        let order = priority_order(self.pb);
        // Warm start: each request takes its cheapest team (any of the
        // cheapest, on a tie) while that team has room. With π = 0 and
        // u(r) = its cheapest cost, every reduced cost is ≥ 0 and the chosen
        // ones are 0, so the dual invariants hold before the first search.
        let mut pending = Vec::new();
        for &r in &order {
            let range = self.pb.row(r as usize);
            let cheapest = self.pb.cost[range.start];
            let mut placed = false;
            for i in range {
                if self.pb.cost[i] != cheapest {
                    break;
                }
                let t = self.pb.col[i];
                if self.room(t) {
                    self.place_new(r, t, cheapest);
                    placed = true;
                    break;
                }
            }
            if !placed {
                pending.push(r);
            }
        }
        let mut hist = [0usize; 8];
        let mut tot = 0usize; let mut lo = 0usize; let mut tot_lo = 0usize;
        eprintln!("pending {}", pending.len());
        for r in pending {
            let before = self.pushes;
            let left = self.augment_from(r);
            let w = self.pushes - before;
            tot += w;
            if left { lo += 1; tot_lo += w; }
            let b = (w as f64 + 1.0).log10() as usize;
            hist[b.min(7)] += 1;
        }
        eprintln!("hist {:?} total pushes {} leaveouts {} pushes in leaveouts {}", hist, tot, lo, tot_lo);
        self.team_of
    }

    fn place_new(&mut self, r: u32, t: u32, cost: i64) {
        let slot = self.slot_start[t as usize] + self.load[t as usize];
        self.load[t as usize] += 1;
        self.slots[slot as usize] = r;
        self.team_of[r as usize] = t;
        self.slot_of[r as usize] = slot;
        self.chosen_cost[r as usize] = cost;
    }

    /// Relaxes the candidates of request `r`, reached at distance `base`
    /// with price `u`. Returns the updated best target.
    #[inline]
    fn relax(&mut self, r: u32, base_minus_u: C, mut best: (C, Target)) -> (C, Target) {
        let sid = self.search_id;
        let range = self.pb.row(r as usize);
        for i in range {
            let t = self.pb.col[i];
            let tu = t as usize;
            if self.settled_in[tu] == sid {
                continue;
            }
            let c = self.pb.cost[i];
            let d = base_minus_u + C::from_i64(c) + self.pi[tu];
            if d >= best.0 {
                continue;
            }
            if self.room(t) {
                best = (
                    d,
                    Target::Room {
                        team: t,
                        via: r,
                        cost: c,
                    },
                );
            } else if self.seen[tu] != sid || d < self.dist[tu] {
                self.seen[tu] = sid;
                self.dist[tu] = d;
                self.pred[tu] = r;
                self.pred_cost[tu] = c;
                self.heap.push(Reverse((d, t))); self.pushes += 1;
            }
        }
        best
    }

    /// Adds request `root` to the plan along a shortest augmenting path.
    fn augment_from(&mut self, root: u32) -> bool {
        self.search_id += 1;
        let sid = self.search_id;
        // The root's own price is taken as 0: any constant works for the
        // search, and afterwards it is implied by its chosen pair.
        let mut best = (
            self.leave_out[root as usize],
            Target::LeaveOut { request: root },
        );
        best = self.relax(root, C::ZERO, best);
        while let Some(Reverse((d, t))) = self.heap.pop() {
            if d >= best.0 {
                break;
            }
            let tu = t as usize;
            if self.settled_in[tu] == sid || d > self.dist[tu] {
                continue;
            }
            self.settled_in[tu] = sid;
            self.settled.push(t);
            let start = self.slot_start[tu] as usize;
            for s in start..start + self.load[tu] as usize {
                let member = self.slots[s];
                // u(member) = cost of its chosen pair + π(t).
                let u = C::from_i64(self.chosen_cost[member as usize]) + self.pi[tu];
                let out = d + self.leave_out[member as usize] - u;
                if out < best.0 {
                    best = (out, Target::LeaveOut { request: member });
                }
                best = self.relax(member, d - u, best);
            }
        }
        self.heap.clear();
        let (total, target) = best;
        // Raise the prices of the settled teams so every reduced cost stays
        // ≥ 0 and the new path has reduced cost 0.
        for &t in &self.settled {
            let tu = t as usize;
            self.pi[tu] = self.pi[tu] + (total - self.dist[tu]);
        }
        self.settled.clear();
        match target {
            Target::Room { team, via, cost } => {
                let slot = self.slot_start[team as usize] + self.load[team as usize];
                self.load[team as usize] += 1;
                self.shift_along(via, team, slot, cost);
                false
            }
            Target::LeaveOut { request } => {
                let team = self.team_of[request as usize];
                self.team_of[request as usize] = LEFT_OUT;
                if request != root {
                    let tu = team as usize;
                    let slot = self.slot_of[request as usize];
                    self.shift_along(self.pred[tu], team, slot, self.pred_cost[tu]);
                }
                true
            }
        }
    }

    /// Walks the path back to the root: `req` moves into `slot` of `team`,
    /// vacating its own slot for its predecessor, and so on.
    fn shift_along(&mut self, mut req: u32, mut team: u32, mut slot: u32, mut cost: i64) {
        // A path visits each team once, so it has at most n_teams + 1 steps.
        for _ in 0..=self.pb.n_teams() {
            let old_team = self.team_of[req as usize];
            let old_slot = self.slot_of[req as usize];
            self.slots[slot as usize] = req;
            self.team_of[req as usize] = team;
            self.slot_of[req as usize] = slot;
            self.chosen_cost[req as usize] = cost;
            if old_team == UNASSIGNED {
                return;
            }
            let tu = old_team as usize;
            team = old_team;
            slot = old_slot;
            req = self.pred[tu];
            cost = self.pred_cost[tu];
        }
        unreachable!("an augmenting path is simple, so it reaches the root");
    }
}

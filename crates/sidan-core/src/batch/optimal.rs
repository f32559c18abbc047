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
    let fits_i64 =
        m.checked_mul(i128::from(p_max) + 1).and_then(|x| x.checked_mul(4)).is_some_and(|x| x < i128::from(i64::MAX));
    let team_of = if fits_i64 { Solver::<i64>::new(problem, m).run() } else { Solver::<i128>::new(problem, m).run() };
    let mut assignment = vec![None; problem.n_requests()];
    let mut served_priority = 0u64;
    let mut total_cost = 0i64;
    let mut n_served = 0;
    for (r, &t) in team_of.iter().enumerate() {
        if (t as usize) < problem.n_teams() {
            assignment[r] = Some(t);
            served_priority += u64::from(problem.priority[r]);
            total_cost += problem.edge_cost(r, t).expect("the solver only assigns along edges");
            n_served += 1;
        }
    }
    BatchPlan { assignment, served_priority, total_cost, n_served }
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

/// Everything a relaxation touches about a team, in one cache line.
#[derive(Clone, Copy)]
struct TeamHot<C> {
    /// Price π(t).
    pi: C,
    /// Tentative distance in the current search, valid when `seen == search_id`.
    dist: C,
    seen: u32,
    /// `== search_id` once the team is settled in the current search.
    settled: u32,
    /// Free slots left.
    room: u32,
    /// The request that reached the team in the current search.
    pred: u32,
    /// No alternating path leads from this team to a team with room, and
    /// none ever will: it was reached by a search that could only end by
    /// leaving someone out. Such a closed region stays closed, because
    /// later paths that enter it end inside it. Searches first skip these.
    dead: bool,
}

/// A request's state.
#[derive(Clone, Copy)]
struct RequestState<C> {
    /// `M · priority(r)`: the price of leaving `r` out.
    leave_out: C,
    /// Lower bounds on the two smallest `cost + π` over the request's
    /// candidates (its own team included), and the team of the smallest. Prices only rise, so a value
    /// computed once stays a lower bound; it lets a search skip a member
    /// whose row cannot beat the best target found so far.
    min1: C,
    min2: C,
    team1: u32,
    /// Team serving the request, or [`UNASSIGNED`] / [`LEFT_OUT`].
    team: u32,
    slot: u32,
    /// Cost of the chosen edge.
    chosen_cost: i64,
}

struct Solver<'a, C> {
    pb: &'a BatchProblem,
    teams: Vec<TeamHot<C>>,
    /// Cost of the edge from `pred` into each team in the current search.
    pred_cost: Vec<i64>,
    /// Team `t`'s members live in `slots[slot_start[t]..slot_start[t] + load]`.
    slot_start: Vec<u32>,
    slots: Vec<u32>,
    requests: Vec<RequestState<C>>,
    search_id: u32,
    settled: Vec<u32>,
    heap: BinaryHeap<Reverse<(C, u32)>>,
    /// Whether the current search skips dead teams, and whether it met one.
    skip_dead: bool,
    skipped_dead: bool,
}

impl<'a, C: Cost> Solver<'a, C> {
    fn new(pb: &'a BatchProblem, m: i128) -> Self {
        let n_teams = pb.n_teams();
        // A team never takes more requests than it has candidates, so the
        // slots stay O(edges) even with huge capacities.
        let mut degree = vec![0u32; n_teams];
        for c in &pb.adj {
            degree[c.team as usize] += 1;
        }
        let mut slot_start = Vec::with_capacity(n_teams + 1);
        let mut teams = Vec::with_capacity(n_teams);
        let mut total = 0u32;
        slot_start.push(0);
        for (&capacity, &degree) in pb.capacity.iter().zip(&degree) {
            let cap = capacity.min(degree);
            total += cap;
            slot_start.push(total);
            teams.push(TeamHot { pi: C::ZERO, dist: C::ZERO, seen: 0, settled: 0, room: cap, pred: 0, dead: false });
        }
        let requests = pb
            .priority
            .iter()
            .map(|&p| RequestState {
                // M·p fits C by the check in `solve_optimal`.
                leave_out: C::from_i128(m * i128::from(p)),
                min1: C::ZERO,
                min2: C::ZERO,
                team1: UNASSIGNED,
                team: UNASSIGNED,
                slot: 0,
                chosen_cost: 0,
            })
            .collect();
        Self {
            pb,
            teams,
            pred_cost: vec![0; n_teams],
            slot_start,
            slots: vec![0; total as usize],
            requests,
            search_id: 0,
            settled: Vec::new(),
            heap: BinaryHeap::new(),
            skip_dead: false,
            skipped_dead: false,
        }
    }

    fn run(mut self) -> Vec<u32> {
        let order = priority_order(self.pb);
        // Warm start: each request takes its cheapest team (any of the
        // cheapest, on a tie) while that team has room. With π = 0 and
        // u(r) = its cheapest cost, every reduced cost is ≥ 0 and the chosen
        // ones are 0, so the dual invariants hold before the first search.
        let mut pending = Vec::new();
        for &r in &order {
            let row = &self.pb.adj[self.pb.row(r as usize)];
            let cheapest = row[0].cost;
            let free = row.iter().take_while(|c| c.cost == cheapest).find(|c| self.teams[c.team as usize].room > 0);
            match free {
                Some(c) => {
                    let t = c.team;
                    let t_room = &mut self.teams[t as usize].room;
                    *t_room -= 1;
                    let slot = self.slot_start[t as usize + 1] - 1 - *t_room;
                    self.put(r, t, slot, cheapest);
                }
                None => pending.push(r),
            }
        }
        for r in pending {
            self.augment_from(r);
        }
        self.requests.iter().map(|s| s.team).collect()
    }

    fn put(&mut self, r: u32, t: u32, slot: u32, cost: i64) {
        self.slots[slot as usize] = r;
        let s = &mut self.requests[r as usize];
        s.team = t;
        s.slot = slot;
        s.chosen_cost = cost;
    }

    /// Relaxes the candidates of request `r`, reached at a distance of
    /// `base_minus_u` + its price. Returns the updated best target.
    #[inline]
    fn relax(&mut self, r: u32, base_minus_u: C, mut best: (C, Target)) -> (C, Target) {
        let sid = self.search_id;
        let (mut min1, mut min2, mut team1) = (None::<C>, None::<C>, UNASSIGNED);
        for c in &self.pb.adj[self.pb.row(r as usize)] {
            let t = c.team;
            let hot = &mut self.teams[t as usize];
            let raw = C::from_i64(c.cost) + hot.pi;
            // Its own team counts too: after the request moves, the team it
            // left becomes one of its alternatives.
            if min1.is_none_or(|m| raw < m) {
                min2 = min1;
                min1 = Some(raw);
                team1 = t;
            } else if min2.is_none_or(|m| raw < m) {
                min2 = Some(raw);
            }
            if hot.settled == sid {
                continue;
            }
            if hot.dead && self.skip_dead {
                self.skipped_dead = true;
                continue;
            }
            let d = base_minus_u + raw;
            if d >= best.0 {
                continue;
            }
            if hot.room > 0 {
                best = (d, Target::Room { team: t, via: r, cost: c.cost });
            } else if hot.seen != sid || d < hot.dist {
                hot.seen = sid;
                hot.dist = d;
                hot.pred = r;
                self.pred_cost[t as usize] = c.cost;
                self.heap.push(Reverse((d, t)));
            }
        }
        let s = &mut self.requests[r as usize];
        // A missing value means no such candidate; any bound is then valid,
        // and the leave-out price keeps the arithmetic in range.
        s.min1 = min1.unwrap_or(s.leave_out);
        s.min2 = min2.unwrap_or(s.leave_out);
        s.team1 = team1;
        best
    }

    /// Adds request `root` to the plan along a shortest augmenting path.
    fn augment_from(&mut self, root: u32) {
        // First search around the dead teams: if it reaches a team with
        // room, no path through a dead team could be shorter (it would end
        // by leaving someone out, which costs more than any path to room).
        self.skip_dead = true;
        self.skipped_dead = false;
        let mut best = self.search(root);
        if matches!(best.1, Target::LeaveOut { .. }) {
            if self.skipped_dead {
                self.settled.clear();
                self.skip_dead = false;
                best = self.search(root);
            }
            // Nothing the root reaches can reach a team with room, now or
            // later (see `TeamHot::dead`).
            for &t in &self.settled {
                self.teams[t as usize].dead = true;
            }
        }
        self.finish(root, best);
    }

    /// Dijkstra from `root`; leaves the settled teams in `self.settled`.
    fn search(&mut self, root: u32) -> (C, Target) {
        self.search_id += 1;
        let sid = self.search_id;
        // The root's own price is taken as 0: any constant works for the
        // search, and afterwards it is implied by its chosen pair.
        let mut best = (self.requests[root as usize].leave_out, Target::LeaveOut { request: root });
        best = self.relax(root, C::ZERO, best);
        while let Some(Reverse((d, t))) = self.heap.pop() {
            if d >= best.0 {
                break;
            }
            let tu = t as usize;
            let hot = &mut self.teams[tu];
            if hot.settled == sid || d > hot.dist {
                continue;
            }
            hot.settled = sid;
            let pi_t = hot.pi;
            self.settled.push(t);
            let start = self.slot_start[tu] as usize;
            let load = self.slot_start[tu + 1] as usize - start - hot.room as usize;
            for s in start..start + load {
                let member = self.slots[s];
                let st = &self.requests[member as usize];
                // u(member) = cost of its chosen pair + π(t).
                let u = C::from_i64(st.chosen_cost) + pi_t;
                let out = d + st.leave_out - u;
                if out < best.0 {
                    best = (out, Target::LeaveOut { request: member });
                }
                // Skip the row when even its cheapest other candidate (a
                // lower bound, see `RequestState`) cannot beat `best`.
                let alt = if st.team1 == t { st.min2 } else { st.min1 };
                if d - u + alt >= best.0 {
                    continue;
                }
                best = self.relax(member, d - u, best);
            }
        }
        self.heap.clear();
        best
    }

    /// Applies the search's result: new prices, then the augmentation.
    fn finish(&mut self, root: u32, best: (C, Target)) {
        let (total, target) = best;
        // Raise the prices of the settled teams so every reduced cost stays
        // ≥ 0 and the new path has reduced cost 0.
        for &t in &self.settled {
            let hot = &mut self.teams[t as usize];
            hot.pi = hot.pi + (total - hot.dist);
        }
        self.settled.clear();
        match target {
            Target::Room { team, via, cost } => {
                let t_room = &mut self.teams[team as usize].room;
                *t_room -= 1;
                let slot = self.slot_start[team as usize + 1] - 1 - *t_room;
                self.shift_along(via, team, slot, cost);
            }
            Target::LeaveOut { request } => {
                let st = &mut self.requests[request as usize];
                let (team, slot) = (st.team, st.slot);
                st.team = LEFT_OUT;
                if request != root {
                    let tu = team as usize;
                    self.shift_along(self.teams[tu].pred, team, slot, self.pred_cost[tu]);
                }
            }
        }
    }

    /// Walks the path back to the root: `req` moves into `slot` of `team`,
    /// vacating its own slot for its predecessor, and so on.
    fn shift_along(&mut self, mut req: u32, mut team: u32, mut slot: u32, mut cost: i64) {
        // A path visits each team once, so it has at most n_teams + 1 steps.
        for _ in 0..=self.pb.n_teams() {
            let st = self.requests[req as usize];
            self.put(req, team, slot, cost);
            if st.team == UNASSIGNED {
                return;
            }
            let tu = st.team as usize;
            team = st.team;
            slot = st.slot;
            req = self.teams[tu].pred;
            cost = self.pred_cost[tu];
        }
        unreachable!("an augmenting path is simple, so it reaches the root");
    }
}

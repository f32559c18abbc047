//! The exact solver: successive shortest augmenting paths with potentials on
//! the sparse candidate graph (Jonker–Volgenant style, with team capacities),
//! started either from cheapest teams or, when that start leads to long
//! searches, from the prices of an ε-scaling auction.
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
//! pair, and adds one request at a time along a shortest augmenting path found
//! by Dijkstra. A path ends at a team with room, or at the "leave out" option
//! of some request (possibly the new one). `u(r)` is never stored: for a
//! served request it equals `cost(r, team) + π(team)`, because its chosen
//! pair has zero reduced cost. At the end every team with room must have
//! `π(t) = 0`; then the plan is optimal by complementary slackness.
//!
//! The search stops at the first target it pops, never enters a team with
//! room (a path through one is never shorter than stopping there), and does
//! not push a node whose tentative distance is already no better than the best
//! target, so most requests cost a scan of their own candidates.
//!
//! Two scales. `M` must exceed the cost of any exchange, so it is of the
//! order of the summed costs, and prices in over-subscribed towns climb to
//! that scale. The solver first solves the same problem with leaving out
//! priced at `M' = 8 · c_max` per unit of priority (`c_max` the largest edge
//! cost): prices then stay at the scale of the edge costs. That plan is the
//! exact answer whenever it serves the largest total priority, because any
//! plan serving as much at a lower cost would also be cheaper at `M'`; one
//! pass over the graph ([`serves_most_priority`]) checks it. Only if the
//! check fails does the solver start again at the full `M`.
//!
//! Two starts, at either scale:
//!
//! 1. **Cheapest teams.** Every request takes its cheapest team while that
//!    team has room (or is left out, when leaving out is cheaper); with
//!    `π = 0` every invariant holds. Searches then place the rest. On loose
//!    batches (more room than requests) this is all.
//! 2. **Auction prices.** On balanced or over-subscribed batches the last
//!    searches of start 1 each explore most of the graph. When the searches
//!    of start 1 have relaxed more than [`SEARCH_BUDGET`] times the number
//!    of edges, the solver starts again: an ε-scaling auction (forward bids,
//!    market-clearing prices for teams of several slots, and reverse steps
//!    for teams left with room at a positive price) moves prices close to
//!    the optimal duals in cheap local moves; the requests whose auction
//!    choice is exactly their cheapest at those prices keep it, and searches
//!    place the others, now mostly short. Teams still with room at a
//!    positive price are targets of the searches like any team with room (a
//!    team with room is a sink of the flow whatever its price), and whatever
//!    room is left at the end is repaired exactly by Dijkstra backwards from
//!    the team (a request moves in, or the price falls). The auction is only
//!    a heuristic for prices: the searches and the repair keep every
//!    invariant in exact integers, so the result is exact whatever the
//!    auction did.
//!
//! The files follow the jobs: this one holds the entry points, the solver's
//! state and the cheapest-team start; [`search`] the one Dijkstra (the
//! forward searches that add a request, and the loop the repair shares);
//! [`auction`] the ε-scaling auction; [`repair`] the backward repair of
//! teams left with room at a positive price; [`priority`] the check that a
//! trial plan serves the most priority.

mod auction;
mod priority;
mod repair;
mod search;

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::ops::{Add, Mul, Sub};

pub(crate) use self::priority::serves_most_priority;
use super::{BatchPlan, BatchProblem, priority_order};

/// Searches of the cheapest-team start may relax this many times the number
/// of edges before the solver switches to the auction start. (A batch with
/// fewer than 1.5 slots a request starts with the auction.)
const SEARCH_BUDGET: usize = 2;
/// The adaptive route starts with the auction when more than one request
/// in this many has no candidate with room after the cheapest-team start
/// (4,251 of 50,000 in the clustered 50k × 100k benchmark batch, none in
/// the uniform one).
const STUCK_SHARE: usize = 20;

/// Solves the batch exactly: the plan serves the largest total priority and,
/// among such plans, has the least total cost.
///
/// Deterministic: the same problem gives the same plan. On sparse graphs most
/// requests finish after scanning their own `k` candidates; see the module
/// documentation for the two starts.
pub fn solve_optimal(problem: &BatchProblem) -> BatchPlan {
    solve_optimal_via(problem, Route::Adaptive, Some(default_trial(problem)))
}

/// Which start [`solve_optimal`] uses; the tests check each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Route {
    /// The cheapest-team start while its searches stay cheap, then the
    /// auction start; the auction start straight away when there are fewer
    /// than 1.5 slots a request.
    Adaptive,
    /// The cheapest-team start only.
    #[cfg_attr(not(test), allow(dead_code))]
    Searches,
    /// The auction start straight away.
    #[cfg_attr(not(test), allow(dead_code))]
    Auction,
}

/// The trial solve prices leaving a request out at `SMALL_LEAVE_OUT · c_max ·
/// priority` (`c_max` the largest edge cost) instead of `M · priority`; see
/// [`solve_optimal_via`]. The auction uses the same price at either scale:
/// at the full `M` a price war up to `M` would take far too many bids, and
/// the searches then raise the prices of over-subscribed teams to the scale
/// of `M` in a few long steps each.
const SMALL_LEAVE_OUT: i64 = 8;

/// [`solve_optimal`] along a chosen route.
///
/// With `trial = Some(m')` (`m' < M`), the solver first solves the same
/// problem with leaving out priced at `m' · priority`. That problem is much
/// easier on over-subscribed batches: its prices stay at the scale of the
/// edge costs, so the auction ends without a price war and the searches stop
/// at a cheap leave-out instead of crossing a whole town. Its optimum is the
/// exact lexicographic optimum whenever it serves the largest total
/// priority (any plan serving as much at a lower cost would also be cheaper
/// at `m'`), and [`serves_most_priority`] checks that in one pass over the
/// graph. Otherwise the solver starts again at the full `M`.
pub(crate) fn solve_optimal_via(problem: &BatchProblem, route: Route, trial: Option<i128>) -> BatchPlan {
    let m = 2 * i128::from(problem.cost_bound) + 1;
    let team_of = match trial {
        Some(m_trial) if (1..m).contains(&m_trial) => {
            let team_of = solve_with(problem, m_trial, route);
            if serves_most_priority(problem, &team_of) { team_of } else { solve_with(problem, m, route) }
        }
        _ => solve_with(problem, m, route),
    };
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

/// The trial's `m'` for [`solve_optimal`]: `SMALL_LEAVE_OUT · c_max`.
pub(crate) fn default_trial(problem: &BatchProblem) -> i128 {
    i128::from(max_edge_cost(problem)) * i128::from(SMALL_LEAVE_OUT)
}

/// `c_max`: the largest edge cost, at least 1 (the scale of the trial's
/// leave-out price and of the auction's ε).
fn max_edge_cost(problem: &BatchProblem) -> i64 {
    problem.adj.iter().map(|c| c.cost).max().unwrap_or(0).max(1)
}

/// Solves with leaving out priced at `m · priority`; returns each request's
/// team, or a marker.
fn solve_with(problem: &BatchProblem, m: i128, route: Route) -> Vec<u32> {
    let p_max = problem.priority.iter().copied().max().unwrap_or(0);
    // Every distance and price stays below about 3·m·(p_max + 1) (the
    // auction's prices stay below m·(p_max + 1)), so i64 is exact when
    // 4·m·(p_max + 1) fits.
    let fits_i64 =
        m.checked_mul(i128::from(p_max) + 1).and_then(|x| x.checked_mul(4)).is_some_and(|x| x < i128::from(i64::MAX));
    if fits_i64 { Solver::<i64>::new(problem, m).run(route) } else { Solver::<i128>::new(problem, m).run(route) }
}

/// The integer type of distances and prices: `i64` when the bound allows,
/// `i128` otherwise.
trait Cost: Copy + Ord + Add<Output = Self> + Sub<Output = Self> + Mul<Output = Self> {
    const ZERO: Self;
    fn from_i64(x: i64) -> Self;
    fn from_i128(x: i128) -> Self;
    /// Division by a positive divisor, rounding towards zero.
    fn div(self, d: Self) -> Self;
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
    fn div(self, d: Self) -> Self {
        self / d
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
    fn div(self, d: Self) -> Self {
        self / d
    }
}

/// The candidate edges by team, CSR: each team's offset into the list, and
/// the `(request, cost)` list.
type Incoming = (Vec<u32>, Vec<(u32, i64)>);

/// `team_of` marker: not processed yet (or the root of the current search).
const UNASSIGNED: u32 = u32::MAX;
/// `team_of` marker: left out of the plan.
const LEFT_OUT: u32 = u32::MAX - 1;

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
    /// Only used while every team with room has price zero (see
    /// `Solver::use_dead`).
    dead: bool,
}

/// A request's state.
#[derive(Clone, Copy)]
struct RequestState<C> {
    /// `M · priority(r)`: the price of leaving `r` out.
    leave_out: C,
    /// Lower bounds on the two smallest `cost + π` over the request's
    /// candidates (its own team included), and the team of the smallest.
    /// Prices only rise during the searches, so a value computed once stays
    /// a lower bound; it lets a search skip a member whose row cannot beat
    /// the best target found so far. Reset to zero when prices fall.
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
    /// `M`, the price of one unit of priority.
    m: i128,
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
    /// Whether searches mark and skip dead regions. The argument for them
    /// needs every team with room at price zero, which the auction start
    /// breaks until the repair.
    use_dead: bool,
    /// Edges relaxed by the searches so far.
    work: usize,
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
                // M·p fits C by the check in `solve_optimal_via`.
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
            m,
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
            // The argument for dead regions needs leaving out to cost more
            // than any path to room, so only at the full `M`.
            use_dead: m > 2 * i128::from(pb.cost_bound),
            work: 0,
        }
    }

    fn run(mut self, route: Route) -> Vec<u32> {
        let order = priority_order(self.pb);
        // With fewer than 1.5 slots a request, the cheapest-team start's
        // last searches would cross the whole graph and exhaust their
        // budget anyway: the adaptive route then goes straight to the
        // auction.
        let slots = *self.slot_start.last().unwrap_or(&0) as usize;
        let tight = 2 * slots < 3 * order.len();
        if route == Route::Searches || (route == Route::Adaptive && !tight) {
            let pending = self.place_cheapest(&order);
            // A request none of whose candidates has room left needs a
            // search through other teams' members. When one in
            // `1 / STUCK_SHARE` of the batch is in that state, towns hold
            // more requests than slots and the searches would cross them
            // one by one until their budget runs out: the auction is the
            // better start.
            let stuck = || {
                pending
                    .iter()
                    .filter(|&&r| {
                        self.pb.adj[self.pb.row(r as usize)].iter().all(|c| self.teams[c.team as usize].room == 0)
                    })
                    .count()
            };
            let budget = match route {
                Route::Adaptive if STUCK_SHARE * stuck() > order.len() => 0,
                Route::Searches => usize::MAX,
                _ => SEARCH_BUDGET.saturating_mul(self.pb.adj.len()),
            };
            let mut done = 0;
            while done < pending.len() && self.work < budget {
                self.augment_from(pending[done]);
                done += 1;
            }
            if done == pending.len() {
                return self.requests.iter().map(|s| s.team).collect();
            }
            self.reset();
        }
        // Teams with room may have a positive price until the repair.
        self.use_dead = false;
        let incoming = self.auction(&order);
        let pending = self.keep_exact(&order);
        for &r in &pending {
            self.augment_from(r);
        }
        self.repair(incoming);
        self.requests.iter().map(|s| s.team).collect()
    }

    /// Empties the plan and sets every price to zero.
    fn reset(&mut self) {
        for t in 0..self.teams.len() {
            let cap = self.slot_start[t + 1] - self.slot_start[t];
            let hot = &mut self.teams[t];
            hot.room = cap;
            hot.dead = false;
            hot.pi = C::ZERO;
        }
        for st in &mut self.requests {
            st.min1 = C::ZERO;
            st.min2 = C::ZERO;
            st.team1 = UNASSIGNED;
            st.team = UNASSIGNED;
        }
    }

    /// Warm start at `π = 0`: each request, in `order`, takes its cheapest
    /// team (any of the cheapest, on a tie) while that team has room. With
    /// `u(r)` = its cheapest cost every reduced cost is ≥ 0 and the chosen
    /// ones are 0. Returns the requests left to the searches, in `order`.
    fn place_cheapest(&mut self, order: &[u32]) -> Vec<u32> {
        let mut pending = Vec::new();
        for &r in order {
            let row = &self.pb.adj[self.pb.row(r as usize)];
            let cheapest = row[0].cost;
            // With a small `M` (the trial), leaving out may be the cheapest
            // option: then `u(r)` = the leave-out price and every reduced
            // cost is ≥ 0 with the request left out.
            if C::from_i64(cheapest) > self.requests[r as usize].leave_out {
                self.requests[r as usize].team = LEFT_OUT;
                continue;
            }
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
        pending
    }

    /// Keeps every request of the auction's plan whose choice (a team, or
    /// leaving out at the true price `M·priority`) is exactly cheapest at the
    /// auction's prices; takes the others out. Returns those, in `order`.
    fn keep_exact(&mut self, order: &[u32]) -> Vec<u32> {
        let mut pending = Vec::new();
        for &r in order {
            let st = self.requests[r as usize];
            let (mut w1, mut w2) = (st.leave_out, st.leave_out);
            let mut t1 = LEFT_OUT;
            let own = self.value_of(&st, st.leave_out);
            for c in &self.pb.adj[self.pb.row(r as usize)] {
                // Sorted by cost, prices never negative: nothing further on
                // is cheaper.
                if C::from_i64(c.cost) >= w2 {
                    break;
                }
                let w = C::from_i64(c.cost) + self.teams[c.team as usize].pi;
                if w < w1 {
                    w2 = w1;
                    w1 = w;
                    t1 = c.team;
                } else if w < w2 {
                    w2 = w;
                }
            }
            let sm = &mut self.requests[r as usize];
            sm.min1 = w1;
            sm.min2 = w2;
            sm.team1 = t1;
            if st.team == UNASSIGNED || own > w1 {
                if st.team != UNASSIGNED && st.team != LEFT_OUT {
                    self.remove(r);
                }
                self.requests[r as usize].team = UNASSIGNED;
                pending.push(r);
            }
        }
        pending
    }

    /// The candidate edges by team: `(request, cost)` lists, CSR.
    fn incoming(&self) -> Incoming {
        let n_teams = self.teams.len();
        let mut start = vec![0u32; n_teams + 1];
        for c in &self.pb.adj {
            start[c.team as usize + 1] += 1;
        }
        for t in 0..n_teams {
            start[t + 1] += start[t];
        }
        let mut fill = start.clone();
        let mut list = vec![(0u32, 0i64); self.pb.adj.len()];
        for r in 0..self.pb.n_requests() {
            for c in &self.pb.adj[self.pb.row(r)] {
                let slot = &mut fill[c.team as usize];
                list[*slot as usize] = (r as u32, c.cost);
                *slot += 1;
            }
        }
        (start, list)
    }

    /// What a request's present choice costs it at the current prices: its
    /// edge plus its team's price, or `leave` when it has no team.
    fn value_of(&self, st: &RequestState<C>, leave: C) -> C {
        if st.team == UNASSIGNED || st.team == LEFT_OUT {
            leave
        } else {
            C::from_i64(st.chosen_cost) + self.teams[st.team as usize].pi
        }
    }

    /// Takes `r` out of its team, keeping the members contiguous.
    fn remove(&mut self, r: u32) {
        let st = self.requests[r as usize];
        let tu = st.team as usize;
        let hot = &mut self.teams[tu];
        let last = self.slot_start[tu + 1] - 1 - hot.room;
        hot.room += 1;
        if st.slot != last {
            let moved = self.slots[last as usize];
            self.slots[st.slot as usize] = moved;
            self.requests[moved as usize].slot = st.slot;
        }
    }

    fn put(&mut self, r: u32, t: u32, slot: u32, cost: i64) {
        self.slots[slot as usize] = r;
        let s = &mut self.requests[r as usize];
        s.team = t;
        s.slot = slot;
        s.chosen_cost = cost;
    }
}

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

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::ops::{Add, Mul, Sub};

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
/// ε starts at `c_max / AUCTION_SCALING` and is divided by this between
/// auction rounds. Five rounds of a third each take 1–31 % fewer
/// instructions than four of an eighth (`c_max / 8` … `/ 1024`) on the
/// benchmark's batches that use the auction and on others from other
/// seeds; the shallower
/// steps leave fewer choices to re-bid at each round.
const AUCTION_SCALING: i64 = 3;
/// The last auction round has `ε = c_max / AUCTION_FINAL` (at least 1):
/// finer prices cost more rounds than the searches they save.
const AUCTION_FINAL: i64 = 243;
/// Bids per request and round before the auction coarsens ε, or, at the
/// coarsest ε, gives up (the searches then finish from wherever it
/// stopped).
const AUCTION_BIDS_PER_REQUEST: usize = 20;

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

/// Whether the plan `team_of` serves the largest total priority possible.
///
/// The requests a plan can serve together form a matroid (a transversal
/// one, teams' slots being its ground set's partners), and priority is a
/// weight on them, so a plan serves the most priority exactly when no
/// left-out request `r` reaches, along an alternating path (a candidate
/// team, one of its members, one of that member's candidates, …), a team
/// with room or a served request of lower priority than `r`'s: that path
/// is the only kind of exchange that gains priority. Sources go in
/// priority order, highest first, and a team reached once is not entered
/// again: whatever it leads to was already checked against a priority at
/// least as high. O(edges).
pub(crate) fn serves_most_priority(problem: &BatchProblem, team_of: &[u32]) -> bool {
    let n_teams = problem.n_teams();
    // Members of each team, CSR.
    let mut start = vec![0u32; n_teams + 1];
    for &t in team_of {
        if (t as usize) < n_teams {
            start[t as usize + 1] += 1;
        }
    }
    for t in 0..n_teams {
        start[t + 1] += start[t];
    }
    let mut fill = start.clone();
    let mut members = vec![0u32; start[n_teams] as usize];
    for (r, &t) in team_of.iter().enumerate() {
        if (t as usize) < n_teams {
            members[fill[t as usize] as usize] = r as u32;
            fill[t as usize] += 1;
        }
    }
    let mut reached = vec![false; n_teams];
    let mut stack: Vec<u32> = Vec::new();
    for source in priority_order(problem) {
        if (team_of[source as usize] as usize) < n_teams {
            continue;
        }
        let p = problem.priority[source as usize];
        stack.push(source);
        while let Some(r) = stack.pop() {
            for c in &problem.adj[problem.row(r as usize)] {
                let tu = c.team as usize;
                if reached[tu] || c.team == team_of[r as usize] {
                    continue;
                }
                reached[tu] = true;
                let load = start[tu + 1] - start[tu];
                if load < problem.capacity[tu] {
                    return false;
                }
                for &member in &members[start[tu] as usize..start[tu + 1] as usize] {
                    if problem.priority[member as usize] < p {
                        return false;
                    }
                    stack.push(member);
                }
            }
        }
    }
    true
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

    /// Auction with ε-scaling and one price per team: a heuristic for prices
    /// close to the optimal duals.
    ///
    /// Leaving a request out costs `M'·priority` here, with `M' =
    /// SMALL_LEAVE_OUT · c_max` (at most the solver's `m`).
    ///
    /// - **Forward bids.** A request bids for its cheapest option. A team
    ///   with room takes it at the team's price. A full team lets go of the
    ///   member with the lowest reservation price β (its second choice less
    ///   its cost here, taken when it bid) and sets the price that clears
    ///   it: the lowest β of those who stay (the bidder's included) plus ε,
    ///   and at least ε above the old price. With one slot this is the
    ///   classic bid; with several, no member stays priced far above its
    ///   second choice.
    /// - **Rounds.** ε starts at `c_max / AUCTION_SCALING` and is divided by
    ///   [`AUCTION_SCALING`] between rounds, down to `c_max /
    ///   AUCTION_FINAL`. A round keeps every choice still within the new ε
    ///   of its best and the prices; the rest bid again. A round that runs
    ///   out of bids (a price war in an over-subscribed town) goes on with
    ///   ε multiplied by [`AUCTION_SCALING`]; the next round still starts
    ///   from the schedule's next ε, so the auction never runs more rounds
    ///   than the schedule has (five), whatever the wars.
    /// - **Reverse steps** after each round ([`Self::reverse_auction`]): a
    ///   team left with room at a positive price lowers it and takes in the
    ///   requests that gain most by moving.
    ///
    /// Leaves the last round's plan in place, a full team at its price less
    /// ε (its last bidder exactly indifferent) and a team with room at zero.
    ///
    /// Returns the candidate lists by team when it built them (for the
    /// reverse steps), so that the repair need not build them again.
    fn auction(&mut self, order: &[u32]) -> Option<Incoming> {
        let n = self.requests.len();
        let p_max = self.pb.priority.iter().copied().max().unwrap_or(0);
        let c_max = max_edge_cost(self.pb);
        let m_small = (i128::from(c_max) * i128::from(SMALL_LEAVE_OUT)).min(self.m);
        let leave_out: Vec<C> = self.pb.priority.iter().map(|&p| C::from_i128(m_small * i128::from(p))).collect();
        // A team without slots is priced above every leave-out: nobody bids.
        let never = C::from_i128(m_small * (i128::from(p_max) + 1));
        for t in 0..self.teams.len() {
            if self.slot_start[t] == self.slot_start[t + 1] {
                self.teams[t].pi = never;
            }
        }
        // Each request's second-best value at its last bid.
        let mut alt = vec![C::ZERO; n];
        // Each request's team (or marker) and the value of that choice
        // (cost + price, or its leave-out price), kept dense for the
        // reverse steps' scans of a team's candidates.
        let mut choice: Vec<(C, u32)> = vec![(C::ZERO, UNASSIGNED); n];
        let last = C::from_i64((c_max / AUCTION_FINAL).max(1));
        let scaling = C::from_i64(AUCTION_SCALING);
        let budget = AUCTION_BIDS_PER_REQUEST * n + 1000;
        let mut eps = C::from_i64(c_max);
        let mut stack: Vec<u32> = Vec::new();
        let mut incoming: Option<Incoming> = None;
        let mut first = true;
        loop {
            eps = eps.div(scaling).max(last);
            // The schedule's ε for this round. A price war may coarsen the
            // ε the round goes on with, but the next round starts from this
            // one, so the rounds end when the schedule does.
            let base = eps;
            stack.clear();
            if first {
                for t in 0..self.teams.len() {
                    self.teams[t].room = self.slot_start[t + 1] - self.slot_start[t];
                }
                for st in &mut self.requests {
                    st.team = UNASSIGNED;
                }
                choice.fill((C::ZERO, UNASSIGNED));
                stack.extend(order.iter().rev());
            } else {
                // Keep every choice still within the new ε of its best;
                // the others bid again.
                for &r in order.iter().rev() {
                    let st = self.requests[r as usize];
                    let leave = leave_out[r as usize];
                    // The best other option, and the value of its own.
                    let own = self.value_of(&st, leave);
                    let mut w1 = leave;
                    for c in &self.pb.adj[self.pb.row(r as usize)] {
                        // Rows are sorted by cost and prices are never
                        // negative: nothing further on is cheaper.
                        if C::from_i64(c.cost) >= w1 {
                            break;
                        }
                        if c.team != st.team {
                            w1 = w1.min(C::from_i64(c.cost) + self.teams[c.team as usize].pi);
                        }
                    }
                    if own <= w1 + eps {
                        alt[r as usize] = w1;
                        choice[r as usize] = (own, st.team);
                    } else {
                        if st.team != LEFT_OUT {
                            self.remove(r);
                        }
                        self.requests[r as usize].team = UNASSIGNED;
                        choice[r as usize] = (C::ZERO, UNASSIGNED);
                        stack.push(r);
                    }
                }
            }
            first = false;
            let mut bids = 0;
            while let Some(r) = stack.pop() {
                if bids == budget {
                    if eps < never.div(scaling) {
                        // A price war (an over-subscribed town climbing
                        // towards the leave-out prices in ε steps): go on
                        // with a coarser ε; the later rounds refine it.
                        eps = eps * scaling;
                        bids = 0;
                    } else {
                        // Give up; `r` stays unplaced, for the searches.
                        stack.push(r);
                        break;
                    }
                }
                bids += 1;
                let leave = leave_out[r as usize];
                let (mut w1, mut w2) = (leave, leave);
                let (mut t1, mut c1) = (LEFT_OUT, 0i64);
                for c in &self.pb.adj[self.pb.row(r as usize)] {
                    if C::from_i64(c.cost) >= w2 {
                        break;
                    }
                    let w = C::from_i64(c.cost) + self.teams[c.team as usize].pi;
                    if w < w1 {
                        w2 = w1;
                        w1 = w;
                        t1 = c.team;
                        c1 = c.cost;
                    } else if w < w2 {
                        w2 = w;
                    }
                }
                if t1 == LEFT_OUT {
                    self.requests[r as usize].team = LEFT_OUT;
                    choice[r as usize] = (leave, LEFT_OUT);
                    continue;
                }
                alt[r as usize] = w2;
                let tu = t1 as usize;
                if self.teams[tu].room > 0 {
                    let t_room = &mut self.teams[tu].room;
                    *t_room -= 1;
                    let slot = self.slot_start[tu + 1] - 1 - *t_room;
                    self.put(r, t1, slot, c1);
                    choice[r as usize] = (w1, t1);
                    continue;
                }
                // The bidder's reservation price β = its second choice less
                // its cost here; a member's was taken when it bid. Of the
                // members and the bidder, the one with the lowest β goes (a
                // member: the bidder always gets in, so the auction moves),
                // and the price clears the market: the lowest β that stays,
                // plus ε, and at least ε above the old price.
                let pi_old = self.teams[tu].pi;
                let beta_bidder = pi_old + (w2 - w1);
                let (start, end) = (self.slot_start[tu] as usize, self.slot_start[tu + 1] as usize);
                let mut out = start;
                let (mut low1, mut low2) = (None::<C>, None::<C>);
                for slot in start..end {
                    let member = self.slots[slot] as usize;
                    let beta = alt[member] - C::from_i64(self.requests[member].chosen_cost);
                    if low1.is_none_or(|b| beta < b) {
                        low2 = low1;
                        low1 = Some(beta);
                        out = slot;
                    } else if low2.is_none_or(|b| beta < b) {
                        low2 = Some(beta);
                    }
                }
                let kept_low = low2.map_or(beta_bidder, |b| b.min(beta_bidder));
                let pi = (kept_low + eps).max(pi_old + eps);
                self.teams[tu].pi = pi;
                let member = self.slots[out];
                self.requests[member as usize].team = UNASSIGNED;
                choice[member as usize] = (C::ZERO, UNASSIGNED);
                self.put(r, t1, out as u32, c1);
                for slot in start..end {
                    let m = self.slots[slot] as usize;
                    choice[m] = (C::from_i64(self.requests[m].chosen_cost) + pi, t1);
                }
                stack.push(member);
            }
            if stack.is_empty() {
                let (incoming_start, incoming) = incoming.get_or_insert_with(|| self.incoming());
                self.reverse_auction(incoming_start, incoming, &mut choice, &mut alt, eps);
            }
            if !stack.is_empty() || base == last {
                break;
            }
            eps = base;
        }
        for t in 0..self.teams.len() {
            let hot = &mut self.teams[t];
            if self.slot_start[t] == self.slot_start[t + 1] || hot.room > 0 {
                hot.pi = C::ZERO;
            } else {
                // The last bidder is ε short of its second choice: take ε
                // back so that it is exactly indifferent.
                hot.pi = if hot.pi > eps { hot.pi - eps } else { C::ZERO };
            }
        }
        incoming
    }

    /// Reverse auction steps after a forward round: a team with room and a
    /// positive price lowers it, by at least ε or to zero, and takes in
    /// the requests (served elsewhere or left out) that gain most by
    /// moving; a team they leave may now have room at a positive price and
    /// steps in turn.
    fn reverse_auction(
        &mut self,
        incoming_start: &[u32],
        incoming: &[(u32, i64)],
        choice: &mut [(C, u32)],
        alt: &mut [C],
        eps: C,
    ) {
        let mut queue: Vec<u32> = (0..self.teams.len() as u32)
            .filter(|&t| {
                let hot = &self.teams[t as usize];
                hot.room > 0 && hot.pi > C::ZERO && self.slot_start[t as usize] != self.slot_start[t as usize + 1]
            })
            .collect();
        let budget = AUCTION_BIDS_PER_REQUEST * self.requests.len() + 1000;
        let mut steps = 0;
        let mut gains: Vec<(C, u32, i64)> = Vec::new();
        while let Some(t) = queue.pop() {
            let tu = t as usize;
            let (room, pi_old) = (self.teams[tu].room, self.teams[tu].pi);
            if room == 0 || pi_old == C::ZERO {
                continue;
            }
            if steps == budget {
                break;
            }
            steps += 1;
            // β = the price at which a request would be indifferent
            // between its current choice and this team.
            // Keep the room + 1 largest, sorted, by insertion (room is
            // small next to the team's incoming list).
            gains.clear();
            let keep = room as usize + 1;
            for &(r, cost) in &incoming[incoming_start[tu] as usize..incoming_start[tu + 1] as usize] {
                let (u, own) = choice[r as usize];
                if own == UNASSIGNED || own == t {
                    continue;
                }
                let beta = u - C::from_i64(cost);
                if beta <= C::ZERO || (gains.len() == keep && beta <= gains[keep - 1].0) {
                    continue;
                }
                if gains.len() == keep {
                    gains.pop();
                }
                let at = gains.partition_point(|g| g.0 >= beta);
                gains.insert(at, (beta, r, cost));
            }
            let k = (room as usize).min(gains.len());
            let next = gains.get(k).map_or(C::ZERO, |g| g.0);
            let lowered = if pi_old > eps { pi_old - eps } else { C::ZERO };
            let pi = next.min(lowered).max(C::ZERO);
            self.teams[tu].pi = pi;
            let (start, filled) = (self.slot_start[tu], self.slot_start[tu + 1] - room);
            for slot in start..filled {
                let m = self.slots[slot as usize] as usize;
                choice[m].0 = C::from_i64(self.requests[m].chosen_cost) + pi;
            }
            for &(beta, r, cost) in &gains[..k] {
                if beta <= pi {
                    continue;
                }
                let st = self.requests[r as usize];
                let u = beta + C::from_i64(cost);
                if st.team != LEFT_OUT {
                    let from = st.team;
                    self.remove(r);
                    if self.teams[from as usize].pi > C::ZERO {
                        queue.push(from);
                    }
                }
                let t_room = &mut self.teams[tu].room;
                *t_room -= 1;
                let slot = self.slot_start[tu + 1] - 1 - *t_room;
                self.put(r, t, slot, cost);
                choice[r as usize] = (C::from_i64(cost) + pi, t);
                alt[r as usize] = u;
            }
            if self.teams[tu].room > 0 && pi > C::ZERO {
                queue.push(t);
            }
        }
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

    /// Exact repair of the teams with room and a positive price: for each
    /// free slot, a Dijkstra backwards from the team finds the cheapest way
    /// to fill it — a request moving in along a chain that starts at a
    /// left-out request or at a team that can spare a member — or to drop
    /// its price; prices fall by the distances, which keeps every reduced
    /// cost non-negative.
    fn repair(&mut self, incoming: Option<Incoming>) {
        let mut queue: Vec<u32> = (0..self.teams.len() as u32)
            .filter(|&t| self.teams[t as usize].room > 0 && self.teams[t as usize].pi > C::ZERO)
            .collect();
        if queue.is_empty() {
            return;
        }
        let (incoming_start, incoming) = incoming.unwrap_or_else(|| self.incoming());
        let mut dest = vec![UNASSIGNED; self.teams.len()];
        let mut chain: Vec<(u32, u32, i64)> = Vec::new();
        while let Some(t0) = queue.pop() {
            let hot0 = &self.teams[t0 as usize];
            if hot0.room == 0 || hot0.pi == C::ZERO {
                continue;
            }
            self.search_id += 1;
            let sid = self.search_id;
            // Targets: `None` = drop the price of the team where the chain
            // starts (it spares a member, or it is t0 itself); `Some(r)` =
            // left-out request r is served.
            let mut best: (C, u32, Option<u32>) = (hot0.pi, t0, None);
            self.teams[t0 as usize].seen = sid;
            self.teams[t0 as usize].dist = C::ZERO;
            self.heap.push(Reverse((C::ZERO, t0)));
            while let Some(Reverse((d, x))) = self.heap.pop() {
                if d >= best.0 {
                    break;
                }
                let xu = x as usize;
                let hx = &mut self.teams[xu];
                if hx.settled == sid || d > hx.dist {
                    continue;
                }
                hx.settled = sid;
                let pi_x = hx.pi;
                let load = self.slot_start[xu + 1] - self.slot_start[xu] - hx.room;
                self.settled.push(x);
                if x != t0 && load > 0 && d + pi_x < best.0 {
                    best = (d + pi_x, x, None);
                }
                for &(r, cost) in &incoming[incoming_start[xu] as usize..incoming_start[xu + 1] as usize] {
                    let st = self.requests[r as usize];
                    let (u, from) = match st.team {
                        UNASSIGNED => continue,
                        LEFT_OUT => (st.leave_out, LEFT_OUT),
                        own if own == x => continue,
                        own => (C::from_i64(st.chosen_cost) + self.teams[own as usize].pi, own),
                    };
                    let nd = d + C::from_i64(cost) + pi_x - u;
                    if nd >= best.0 {
                        continue;
                    }
                    if from == LEFT_OUT {
                        best = (nd, x, Some(r));
                        self.pred_cost[xu] = cost;
                        continue;
                    }
                    let fu = from as usize;
                    let hy = &mut self.teams[fu];
                    if hy.settled == sid || (hy.seen == sid && nd >= hy.dist) {
                        continue;
                    }
                    hy.seen = sid;
                    hy.dist = nd;
                    hy.pred = r;
                    dest[fu] = x;
                    self.heap.push(Reverse((nd, from)));
                }
            }
            self.heap.clear();
            let (total, start, served) = best;
            for &x in &self.settled {
                let hx = &mut self.teams[x as usize];
                hx.pi = hx.pi - (total - hx.dist);
            }
            self.settled.clear();
            // The chain of moves, from its start to t0.
            chain.clear();
            let mut x = start;
            if let Some(r) = served {
                chain.push((r, x, self.pred_cost[x as usize]));
            }
            while x != t0 {
                let r = self.teams[x as usize].pred;
                let to = dest[x as usize];
                let cost = self.pb.edge_cost(r as usize, to).expect("moves follow edges");
                chain.push((r, to, cost));
                x = to;
            }
            for &(r, to, cost) in chain.iter().rev() {
                if self.requests[r as usize].team != LEFT_OUT {
                    self.remove(r);
                }
                let hot = &mut self.teams[to as usize];
                hot.room -= 1;
                let slot = self.slot_start[to as usize + 1] - 1 - hot.room;
                self.put(r, to, slot, cost);
            }
            queue.push(t0);
        }
        for st in &mut self.requests {
            st.min1 = C::ZERO;
            st.min2 = C::ZERO;
        }
        for t in &mut self.teams {
            t.dead = false;
        }
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

    /// Relaxes the candidates of request `r`, reached at a distance of
    /// `base_minus_u` + its price. Returns the updated best target.
    #[inline]
    fn relax(&mut self, r: u32, base_minus_u: C, mut best: (C, Target)) -> (C, Target) {
        let sid = self.search_id;
        let (mut min1, mut min2, mut team1) = (None::<C>, None::<C>, UNASSIGNED);
        let row = &self.pb.adj[self.pb.row(r as usize)];
        self.work += row.len();
        for c in row {
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
        self.skip_dead = self.use_dead;
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
            if self.use_dead {
                for &t in &self.settled {
                    self.teams[t as usize].dead = true;
                }
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

//! The shortest-path searches of the solver: one Dijkstra over teams
//! ([`Solver::dijkstra`]), used forwards to add a request to the plan along
//! a shortest augmenting path (this file) and backwards by the repair
//! (`repair.rs`).
//!
//! Nodes are teams; a team's distance is the reduced cost of the cheapest
//! alternating path to it. Forwards, a settled team's members move on to
//! their other candidates; backwards, a settled team takes in a request from
//! its candidate list. Both stop as soon as the nearest team left is no
//! nearer than the best target found, which is what keeps most searches to a
//! scan of one row.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use super::{Cost, LEFT_OUT, Solver, TeamHot, UNASSIGNED};

/// Where a forward search ends.
#[derive(Clone, Copy)]
enum Target {
    /// Team `team` has room; reached from request `via` over an edge of `cost`.
    Room { team: u32, via: u32, cost: i64 },
    /// Request `request` is left out.
    LeaveOut { request: u32 },
}

/// Reaches `team` (not settled in search `sid`) at distance `d` from request
/// `pred`, unless it was already reached at least as near; returns whether
/// it was. The caller records anything else the path needs.
#[inline(always)]
fn reach<C: Cost>(
    hot: &mut TeamHot<C>,
    heap: &mut BinaryHeap<Reverse<(C, u32)>>,
    sid: u32,
    team: u32,
    d: C,
    pred: u32,
) -> bool {
    if hot.seen == sid && d >= hot.dist {
        return false;
    }
    hot.seen = sid;
    hot.dist = d;
    hot.pred = pred;
    heap.push(Reverse((d, team)));
    true
}

impl<C: Cost> Solver<'_, C> {
    /// The one Dijkstra of the solver, from whatever [`reach`] put in the
    /// heap under the current `search_id`: pops teams nearest first, settles
    /// each once (listed in `self.settled`, for the price update) and hands
    /// it to `settle`, which reaches further teams and may lower the bound
    /// `best.0`. Stops when the nearest team left is no nearer than `best.0`.
    #[inline(always)]
    pub(super) fn dijkstra<T>(&mut self, best: &mut (C, T), mut settle: impl FnMut(&mut Self, u32, C, &mut (C, T))) {
        let sid = self.search_id;
        while let Some(Reverse((d, t))) = self.heap.pop() {
            if d >= best.0 {
                break;
            }
            let hot = &mut self.teams[t as usize];
            if hot.settled == sid || d > hot.dist {
                continue;
            }
            hot.settled = sid;
            self.settled.push(t);
            settle(self, t, d, best);
        }
        self.heap.clear();
    }

    /// Reaches team `team` from request `pred` at distance `d` in the current
    /// search, if that is nearer than before and the team is not settled;
    /// returns whether it did.
    #[inline(always)]
    pub(super) fn reach_team(&mut self, team: u32, d: C, pred: u32) -> bool {
        let sid = self.search_id;
        let hot = &mut self.teams[team as usize];
        hot.settled != sid && reach(hot, &mut self.heap, sid, team, d, pred)
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
            } else if reach(hot, &mut self.heap, sid, t, d, r) {
                self.pred_cost[t as usize] = c.cost;
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
    pub(super) fn augment_from(&mut self, root: u32) {
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

    /// The forward search from `root`; leaves the settled teams in
    /// `self.settled`.
    fn search(&mut self, root: u32) -> (C, Target) {
        self.search_id += 1;
        // The root's own price is taken as 0: any constant works for the
        // search, and afterwards it is implied by its chosen pair.
        let mut best = (self.requests[root as usize].leave_out, Target::LeaveOut { request: root });
        best = self.relax(root, C::ZERO, best);
        self.dijkstra(&mut best, Self::settle_forward);
        best
    }

    /// A settled team's members move on: each may be left out, or relaxes
    /// its row.
    #[inline(always)]
    fn settle_forward(&mut self, t: u32, d: C, best: &mut (C, Target)) {
        let tu = t as usize;
        let hot = &self.teams[tu];
        let pi_t = hot.pi;
        let start = self.slot_start[tu] as usize;
        let load = self.slot_start[tu + 1] as usize - start - hot.room as usize;
        for s in start..start + load {
            let member = self.slots[s];
            let st = &self.requests[member as usize];
            // u(member) = cost of its chosen pair + π(t).
            let u = C::from_i64(st.chosen_cost) + pi_t;
            let out = d + st.leave_out - u;
            if out < best.0 {
                *best = (out, Target::LeaveOut { request: member });
            }
            // Skip the row when even its cheapest other candidate (a
            // lower bound, see `RequestState`) cannot beat `best`.
            let alt = if st.team1 == t { st.min2 } else { st.min1 };
            if d - u + alt >= best.0 {
                continue;
            }
            *best = self.relax(member, d - u, *best);
        }
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

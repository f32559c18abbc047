//! The ε-scaling auction of the solver's second start: forward bids,
//! market-clearing prices for teams of several slots, rounds on an ε
//! schedule, and reverse steps for teams left with room at a positive
//! price. Only a heuristic for prices; the searches and the repair make the
//! plan exact.

use super::{Cost, Incoming, LEFT_OUT, SMALL_LEAVE_OUT, Solver, UNASSIGNED, max_edge_cost};

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

impl<C: Cost> Solver<'_, C> {
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
    pub(super) fn auction(&mut self, order: &[u32]) -> Option<Incoming> {
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
}

//! The exact repair after the auction start: a team left with room at a
//! positive price is a sink the optimum may not keep, so a Dijkstra
//! backwards from it (the solver's one Dijkstra, see `search.rs`) finds the
//! cheapest way to fill a slot or to drop the price.

use super::{Cost, Incoming, LEFT_OUT, Solver, UNASSIGNED};

impl<C: Cost> Solver<'_, C> {
    /// Exact repair of the teams with room and a positive price: for each
    /// free slot, a Dijkstra backwards from the team finds the cheapest way
    /// to fill it — a request moving in along a chain that starts at a
    /// left-out request or at a team that can spare a member — or to drop
    /// its price; prices fall by the distances, which keeps every reduced
    /// cost non-negative.
    pub(super) fn repair(&mut self, incoming: Option<Incoming>) {
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
            // Targets: `None` = drop the price of the team where the chain
            // starts (it spares a member, or it is t0 itself); `Some(r)` =
            // left-out request r is served.
            let mut best: (C, (u32, Option<u32>)) = (hot0.pi, (t0, None));
            self.reach_team(t0, C::ZERO, UNASSIGNED);
            self.dijkstra(&mut best, |s, x, d, best| {
                let xu = x as usize;
                let hx = &s.teams[xu];
                let pi_x = hx.pi;
                let load = s.slot_start[xu + 1] - s.slot_start[xu] - hx.room;
                if x != t0 && load > 0 && d + pi_x < best.0 {
                    *best = (d + pi_x, (x, None));
                }
                for &(r, cost) in &incoming[incoming_start[xu] as usize..incoming_start[xu + 1] as usize] {
                    let st = s.requests[r as usize];
                    let (u, from) = match st.team {
                        UNASSIGNED => continue,
                        LEFT_OUT => (st.leave_out, LEFT_OUT),
                        own if own == x => continue,
                        own => (C::from_i64(st.chosen_cost) + s.teams[own as usize].pi, own),
                    };
                    let nd = d + C::from_i64(cost) + pi_x - u;
                    if nd >= best.0 {
                        continue;
                    }
                    if from == LEFT_OUT {
                        *best = (nd, (x, Some(r)));
                        s.pred_cost[xu] = cost;
                        continue;
                    }
                    if s.reach_team(from, nd, r) {
                        dest[from as usize] = x;
                    }
                }
            });
            let (total, (start, served)) = best;
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
}

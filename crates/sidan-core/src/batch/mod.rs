//! Batch assignment: serve a window of requests at once.
//!
//! When many requests arrive together (a festival morning, an exam day),
//! dispatching them one by one wastes travel and leaves requests unserved. A
//! batch takes the same candidate pairs as online dispatch — each an eligible
//! `(request, team)` with an integer cost — and chooses assignments that
//!
//! 1. maximise the total priority served, and among those
//! 2. minimise the total cost,
//!
//! with each team taking at most its capacity and each request at most one
//! team.
//!
//! [`solve_optimal`] finds the exact optimum by successive shortest paths
//! (Dijkstra with potentials, Jonker–Volgenant style, with capacities) on the
//! sparse candidate graph, started on balanced or over-subscribed batches
//! from the prices of an ε-scaling auction; it never builds a dense matrix. [`solve_greedy`] is
//! the baseline: requests by priority, each to its nearest team with room.
//! `docs/batch.md` explains the choice of algorithm. [`file`] is the JSON
//! problem file of `sidan solve`: its teams and requests, checked into the
//! core's types, become a [`BatchProblem`] over their feasible pairs.
//!
//! The objective is exact in integers: internally an unserved request `r`
//! costs `M · priority(r)` with `M = 2 · Σ_r max_t cost(r, t) + 1`, more than
//! any difference in total cost between two plans, so one more unit of
//! priority always beats any saving in cost. A request of priority 0 adds
//! nothing to the first objective and only cost to the second, so both
//! solvers leave it unassigned.

pub mod file;
mod greedy;
mod optimal;
mod problem;

#[cfg(test)]
mod tests;

pub use greedy::solve_greedy;
pub use optimal::solve_optimal;
#[cfg(test)]
use optimal::{Route, default_trial, serves_most_priority, solve_optimal_via};
pub use problem::{BatchComponent, BatchEdge, BatchProblem};

/// Why a batch cannot be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BatchError {
    /// An edge names a request that does not exist.
    #[error("edge {edge_idx}: request index {request_idx} is out of range (there are {n_requests} requests)")]
    RequestOutOfRange {
        /// Position of the edge in the input.
        edge_idx: usize,
        /// The request index it names.
        request_idx: u32,
        /// How many requests the batch has.
        n_requests: usize,
    },
    /// An edge names a team that does not exist.
    #[error("edge {edge_idx}: team index {team_idx} is out of range (there are {n_teams} teams)")]
    TeamOutOfRange {
        /// Position of the edge in the input.
        edge_idx: usize,
        /// The team index it names.
        team_idx: u32,
        /// How many teams the batch has.
        n_teams: usize,
    },
    /// An edge has a negative cost.
    #[error("edge {edge_idx}: cost {cost} is negative")]
    NegativeCost {
        /// Position of the edge in the input.
        edge_idx: usize,
        /// The offending cost.
        cost: i64,
    },
    /// Σ over requests of the largest candidate cost does not fit in `i64`.
    #[error("the summed costs ({cost_bound}) overflow a 64-bit integer; use a coarser cost unit")]
    CostOverflow {
        /// The bound that overflowed.
        cost_bound: i128,
    },
    /// More than `u32::MAX - 1` requests.
    #[error("{n_requests} requests is more than a batch can hold")]
    TooManyRequests {
        /// How many were given.
        n_requests: usize,
    },
    /// More than `u32::MAX - 1` teams.
    #[error("{n_teams} teams is more than a batch can hold")]
    TooManyTeams {
        /// How many were given.
        n_teams: usize,
    },
    /// More than `u32::MAX - 1` edges.
    #[error("{n_edges} edges is more than a batch can hold")]
    TooManyEdges {
        /// How many were given.
        n_edges: usize,
    },
}

/// The result of a batch: which team serves each request, and the totals.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchPlan {
    /// `assignment[r]` is the team serving request `r`, or `None`.
    pub assignment: Vec<Option<u32>>,
    /// Σ priority of the served requests.
    pub served_priority: u64,
    /// Σ cost of the chosen edges.
    pub total_cost: i64,
    /// How many requests are served.
    pub n_served: usize,
}

impl BatchPlan {
    /// Builds a plan from an assignment, recomputing the totals from
    /// `problem`. Returns `None` when the assignment is infeasible: wrong
    /// length, a pair that is not an edge, or a team over capacity.
    pub fn from_assignment(problem: &BatchProblem, assignment: Vec<Option<u32>>) -> Option<Self> {
        if assignment.len() != problem.n_requests() {
            return None;
        }
        let mut load = vec![0u32; problem.n_teams()];
        let mut served_priority = 0u64;
        let mut total_cost = 0i64;
        let mut n_served = 0;
        for (r, team) in assignment.iter().enumerate() {
            let Some(t) = *team else { continue };
            let cost = problem.edge_cost(r, t)?;
            let slot = load.get_mut(t as usize)?;
            *slot += 1;
            if *slot > problem.capacity[t as usize] {
                return None;
            }
            served_priority += u64::from(problem.priority[r]);
            total_cost += cost;
            n_served += 1;
        }
        Some(Self { assignment, served_priority, total_cost, n_served })
    }

    /// Merges the plans of the pieces returned by [`BatchProblem::split`]
    /// back into a plan of the whole `problem`.
    ///
    /// # Panics
    /// If `parts` and `plans` do not come from `problem.split()` and the
    /// matching solver calls (a bug in the caller).
    pub fn merge_components(problem: &BatchProblem, parts: &[BatchComponent], plans: &[BatchPlan]) -> Self {
        assert_eq!(parts.len(), plans.len(), "one plan per component");
        let mut assignment = vec![None; problem.n_requests()];
        for (part, plan) in parts.iter().zip(plans) {
            for (local_r, team) in plan.assignment.iter().enumerate() {
                assignment[part.request_idx[local_r] as usize] = team.map(|t| part.team_idx[t as usize]);
            }
        }
        Self::from_assignment(problem, assignment).expect("merged component plans are feasible")
    }

    /// `true` when this plan is at least as good as `other`: more priority
    /// served, or as much at no more cost.
    pub fn is_at_least_as_good_as(&self, other: &BatchPlan) -> bool {
        (self.served_priority, std::cmp::Reverse(self.total_cost))
            >= (other.served_priority, std::cmp::Reverse(other.total_cost))
    }
}

/// Exhaustive search over every feasible plan; the oracle of the tests and of
/// the benchmark checks. Exponential: only for a handful of requests.
#[doc(hidden)]
pub fn solve_exhaustive(problem: &BatchProblem) -> BatchPlan {
    struct Search<'a> {
        problem: &'a BatchProblem,
        load: Vec<u32>,
        current: Vec<Option<u32>>,
        best: Option<(u64, i64, Vec<Option<u32>>)>,
    }
    impl Search<'_> {
        fn go(&mut self, r: usize, priority: u64, cost: i64) {
            if r == self.problem.n_requests() {
                let better = match &self.best {
                    None => true,
                    Some((p, c, _)) => (priority, std::cmp::Reverse(cost)) > (*p, std::cmp::Reverse(*c)),
                };
                if better {
                    self.best = Some((priority, cost, self.current.clone()));
                }
                return;
            }
            self.current[r] = None;
            self.go(r + 1, priority, cost);
            let candidates: Vec<(u32, i64)> = self.problem.candidates(r).collect();
            for (t, c) in candidates {
                if self.load[t as usize] < self.problem.capacity[t as usize] {
                    self.load[t as usize] += 1;
                    self.current[r] = Some(t);
                    self.go(r + 1, priority + u64::from(self.problem.priority[r]), cost + c);
                    self.current[r] = None;
                    self.load[t as usize] -= 1;
                }
            }
        }
    }
    let mut search =
        Search { problem, load: vec![0; problem.n_teams()], current: vec![None; problem.n_requests()], best: None };
    search.go(0, 0, 0);
    let (_, _, assignment) = search.best.expect("the empty plan is always feasible");
    BatchPlan::from_assignment(problem, assignment).expect("the search only builds feasible plans")
}

/// Requests worth serving, highest priority first, ties by index: the order
/// both solvers process requests in.
pub(crate) fn priority_order(problem: &BatchProblem) -> Vec<u32> {
    let mut order: Vec<u32> = (0..problem.n_requests() as u32)
        .filter(|&r| problem.priority[r as usize] > 0 && !problem.row(r as usize).is_empty())
        .collect();
    // Stable sort keeps the index order within a priority.
    order.sort_by_key(|&r| std::cmp::Reverse(problem.priority[r as usize]));
    order
}

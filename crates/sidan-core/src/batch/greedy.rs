//! The greedy baseline: highest priority first, each request to its cheapest
//! candidate team that still has room.

use super::{BatchPlan, BatchProblem, priority_order};

/// Greedy plan: requests in order of priority (highest first, ties by index),
/// each assigned to its cheapest candidate with spare capacity (ties by team
/// index). Linear in the number of edges once the rows are sorted, which
/// [`BatchProblem::new`] already did.
pub fn solve_greedy(problem: &BatchProblem) -> BatchPlan {
    let mut load = vec![0u32; problem.n_teams()];
    let mut assignment = vec![None; problem.n_requests()];
    let mut served_priority = 0u64;
    let mut total_cost = 0i64;
    let mut n_served = 0;
    for r in priority_order(problem) {
        let r = r as usize;
        for &super::problem::Candidate { cost, team: t } in &problem.adj[problem.row(r)] {
            if load[t as usize] < problem.capacity[t as usize] {
                load[t as usize] += 1;
                assignment[r] = Some(t);
                served_priority += u64::from(problem.priority[r]);
                total_cost += cost;
                n_served += 1;
                break;
            }
        }
    }
    BatchPlan { assignment, served_priority, total_cost, n_served }
}

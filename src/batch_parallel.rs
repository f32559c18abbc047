//! Solving a batch one connected component at a time, on several threads.
//!
//! A city's batch usually falls apart into towns: no request has a candidate
//! team in another county. [`BatchProblem::split`] cuts the batch into its
//! connected components, each is solved exactly on its own, and
//! [`BatchPlan::merge_components`] puts the plans back together. The optimum
//! is the whole batch's optimum (the solver's searches never leave a
//! component; the core's property tests check the merge). The threads live
//! here, not in the pure core.

use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicUsize, Ordering};

use sidan_core::batch::{BatchPlan, BatchProblem, solve_optimal};

/// Solves `problem` exactly, like [`solve_optimal`], with its connected
/// components shared among up to `workers` threads, largest first.
///
/// The plan has the same served priority and total cost as
/// [`solve_optimal`] on the whole batch; ties between equally good plans
/// may be broken differently. It does not depend on `workers`: each
/// component is solved deterministically on its own. A batch of one
/// component, or one worker, is solved in place, without threads.
pub fn solve_optimal_parallel(problem: &BatchProblem, workers: NonZeroUsize) -> BatchPlan {
    if workers.get() == 1 {
        return solve_optimal(problem);
    }
    let (request_component, team_component, n_components) = problem.components();
    if served_components(problem, &request_component, n_components) <= 1 {
        return solve_optimal(problem);
    }
    let parts = problem.split_along(&request_component, &team_component, n_components);
    let mut order: Vec<usize> = (0..parts.len()).collect();
    // Largest first, so that the last piece to finish is a small one.
    order.sort_by_key(|&i| std::cmp::Reverse(parts[i].problem.n_edges()));
    let next = AtomicUsize::new(0);
    let mut plans: Vec<Option<BatchPlan>> = vec![None; parts.len()];
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..workers.get().min(parts.len()))
            .map(|_| {
                scope.spawn(|| {
                    let mut solved = Vec::new();
                    while let Some(&i) = order.get(next.fetch_add(1, Ordering::Relaxed)) {
                        solved.push((i, solve_optimal(&parts[i].problem)));
                    }
                    solved
                })
            })
            .collect();
        for worker in workers {
            let solved = worker.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic));
            for (i, plan) in solved {
                plans[i] = Some(plan);
            }
        }
    });
    let plans: Vec<BatchPlan> = plans.into_iter().map(|p| p.expect("every component was solved")).collect();
    BatchPlan::merge_components(problem, &parts, &plans)
}

/// How many components hold a request with at least one candidate.
fn served_components(problem: &BatchProblem, request_component: &[u32], n_components: usize) -> usize {
    let mut seen = vec![false; n_components];
    let mut count = 0;
    for (r, &c) in request_component.iter().enumerate() {
        if problem.candidates(r).next().is_some() && !seen[c as usize] {
            seen[c as usize] = true;
            count += 1;
        }
    }
    count
}

//! The component-parallel batch solver gives the whole batch's optimum, and
//! the same plan whatever the number of threads.

use std::num::NonZeroUsize;

use proptest::prelude::*;
use sidan::batch_parallel::solve_optimal_parallel;
use sidan::core::batch::{BatchEdge, BatchPlan, BatchProblem, solve_optimal};

/// A batch of `blocks` independent towns: each town's requests only have
/// candidates among its own teams, so the towns are separate components
/// (or several, when a town's own graph falls apart).
fn towns() -> impl Strategy<Value = BatchProblem> {
    proptest::collection::vec((1usize..12, 1usize..6, proptest::collection::vec(any::<u64>(), 1..40)), 1..8).prop_map(
        |blocks| {
            let (mut priority, mut capacity, mut edges) = (Vec::new(), Vec::new(), Vec::new());
            for (n, m, seeds) in blocks {
                let (r0, t0) = (priority.len() as u32, capacity.len() as u32);
                for i in 0..n {
                    priority.push((seeds[i % seeds.len()] % 4) as u32);
                }
                for j in 0..m {
                    capacity.push((seeds[(j + n) % seeds.len()] % 3) as u32);
                }
                for (k, s) in seeds.iter().enumerate() {
                    let r = r0 + (s % n as u64) as u32;
                    let t = t0 + ((s >> 16) % m as u64) as u32;
                    edges.push(BatchEdge::new(r, t, ((s >> 32) % 5_000) as i64 + k as i64));
                }
            }
            BatchProblem::new(priority, capacity, &edges).expect("generated batch is valid")
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn parallel_components_give_the_whole_optimum(problem in towns()) {
        let whole = solve_optimal(&problem);
        let one = solve_optimal_parallel(&problem, NonZeroUsize::MIN);
        prop_assert_eq!(&one, &whole, "one worker solves in place");
        let mut first: Option<BatchPlan> = None;
        for workers in [2, 3, 8] {
            let plan = solve_optimal_parallel(&problem, NonZeroUsize::new(workers).expect("positive"));
            let rebuilt = BatchPlan::from_assignment(&problem, plan.assignment.clone());
            prop_assert_eq!(rebuilt.as_ref(), Some(&plan), "feasible, totals right");
            prop_assert_eq!((plan.served_priority, plan.total_cost), (whole.served_priority, whole.total_cost));
            if let Some(first) = &first {
                prop_assert_eq!(&plan, first, "the plan does not depend on the number of threads");
            }
            first = Some(plan);
        }
    }
}

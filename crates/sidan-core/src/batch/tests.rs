//! Property tests of the batch solvers: the optimal plan is feasible, never
//! serves less priority than greedy, equals an exhaustive search on small
//! instances, and has no improving cycle (a min-cost-flow optimality
//! certificate) on larger ones.

use proptest::prelude::*;

use super::*;

/// A random batch: `n` requests, `m` teams, each pair an edge with
/// probability `density`.
fn batch(
    n: std::ops::Range<usize>,
    m: std::ops::Range<usize>,
    max_priority: u32,
    max_capacity: u32,
    max_cost: i64,
) -> impl Strategy<Value = BatchProblem> {
    (n, m, 0.1f64..0.9).prop_flat_map(move |(n, m, density)| {
        (
            proptest::collection::vec(0..=max_priority, n),
            proptest::collection::vec(0..=max_capacity, m),
            proptest::collection::vec((proptest::bool::weighted(density), 0..=max_cost), n * m),
            // A few duplicated edges, to exercise the merge.
            proptest::collection::vec((0..n.max(1), 0..m.max(1), 0..=max_cost), 0..3),
        )
            .prop_map(move |(priority, capacity, pairs, dups)| {
                let mut edges: Vec<BatchEdge> = pairs
                    .iter()
                    .enumerate()
                    .filter(|(_, (present, _))| *present)
                    .map(|(i, &(_, cost))| BatchEdge::new((i / m) as u32, (i % m) as u32, cost))
                    .collect();
                if n > 0 && m > 0 {
                    edges.extend(dups.iter().map(|&(r, t, c)| BatchEdge::new(r as u32, t as u32, c)));
                }
                BatchProblem::new(priority, capacity, &edges).expect("generated batch is valid")
            })
    })
}

/// The plan is feasible and its reported totals are right.
fn assert_feasible(problem: &BatchProblem, plan: &BatchPlan) {
    let rebuilt = BatchPlan::from_assignment(problem, plan.assignment.clone())
        .expect("plan is feasible: edges only, capacities respected");
    assert_eq!(&rebuilt, plan, "reported totals match the assignment");
}

/// Bellman–Ford on the residual graph of the min-cost-flow formulation, with
/// the exact lexicographic weight `M·priority` for leaving a request out.
/// Returns true when a negative cycle (an improving exchange) exists.
fn has_improving_cycle(problem: &BatchProblem, plan: &BatchPlan) -> bool {
    let n = problem.n_requests();
    let m_teams = problem.n_teams();
    let sink = n + m_teams;
    let big = 2 * i128::from(problem.cost_bound) + 1;
    let mut load = vec![0u32; m_teams];
    for t in plan.assignment.iter().flatten() {
        load[*t as usize] += 1;
    }
    let mut arcs: Vec<(usize, usize, i128)> = Vec::new();
    for (r, assigned) in plan.assignment.iter().enumerate() {
        for (t, c) in problem.candidates(r) {
            let tn = n + t as usize;
            if *assigned == Some(t) {
                arcs.push((tn, r, -i128::from(c)));
            } else {
                arcs.push((r, tn, i128::from(c)));
            }
        }
        let leave = big * i128::from(problem.priority[r]);
        if assigned.is_some() {
            arcs.push((r, sink, leave));
        } else {
            arcs.push((sink, r, -leave));
        }
    }
    for (t, (&load, &cap)) in load.iter().zip(&problem.capacity).enumerate() {
        if load < cap {
            arcs.push((n + t, sink, 0));
        }
        if load > 0 {
            arcs.push((sink, n + t, 0));
        }
    }
    let mut dist = vec![0i128; n + m_teams + 1];
    for _ in 0..=dist.len() {
        let mut changed = false;
        for &(a, b, w) in &arcs {
            if dist[a] + w < dist[b] {
                dist[b] = dist[a] + w;
                changed = true;
            }
        }
        if !changed {
            return false;
        }
    }
    true
}

/// The plan as the solver's `team_of` array (a team, or "left out").
fn team_of(plan: &BatchPlan) -> Vec<u32> {
    plan.assignment.iter().map(|t| t.unwrap_or(u32::MAX - 1)).collect()
}

/// The trial scales the tests run: leaving out priced at 1 per priority
/// (almost everything is left out, so the check fails and the solver
/// falls back to the full `M`), at about half the largest cost (sometimes
/// enough, sometimes not), and the default.
fn trials(problem: &BatchProblem) -> [i128; 3] {
    let c_max = (0..problem.n_requests()).flat_map(|r| problem.candidates(r)).map(|(_, c)| c).max().unwrap_or(0);
    [1, i128::from(c_max / 2 + 1), default_trial(problem)]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn optimal_equals_exhaustive_on_small_batches(problem in batch(0..8, 1..4, 4, 2, 30)) {
        let optimal = solve_optimal(&problem);
        let exhaustive = solve_exhaustive(&problem);
        assert_feasible(&problem, &optimal);
        prop_assert_eq!(optimal.served_priority, exhaustive.served_priority);
        prop_assert_eq!(optimal.total_cost, exhaustive.total_cost);
        for route in [Route::Searches, Route::Auction] {
            let via = solve_optimal_via(&problem, route, None);
            assert_feasible(&problem, &via);
            prop_assert_eq!((via.served_priority, via.total_cost), (exhaustive.served_priority, exhaustive.total_cost));
            for trial in trials(&problem) {
                let via = solve_optimal_via(&problem, route, Some(trial));
                assert_feasible(&problem, &via);
                prop_assert_eq!((via.served_priority, via.total_cost), (exhaustive.served_priority, exhaustive.total_cost));
            }
        }
        // The check of the trial: a plan serves the most priority exactly
        // when it serves as much as the optimum; greedy often does not.
        let greedy = solve_greedy(&problem);
        prop_assert!(serves_most_priority(&problem, &team_of(&optimal)));
        prop_assert_eq!(
            serves_most_priority(&problem, &team_of(&greedy)),
            greedy.served_priority == exhaustive.served_priority
        );
        let greedy = solve_greedy(&problem);
        assert_feasible(&problem, &greedy);
        prop_assert!(optimal.is_at_least_as_good_as(&greedy));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn optimal_beats_greedy_and_has_no_improving_cycle(problem in batch(1..60, 1..25, 6, 4, 10_000)) {
        let optimal = solve_optimal(&problem);
        let searched = solve_optimal_via(&problem, Route::Searches, None);
        let auctioned = solve_optimal_via(&problem, Route::Auction, None);
        assert_feasible(&problem, &auctioned);
        prop_assert!(!has_improving_cycle(&problem, &auctioned));
        prop_assert_eq!((auctioned.served_priority, auctioned.total_cost), (optimal.served_priority, optimal.total_cost));
        prop_assert_eq!((searched.served_priority, searched.total_cost), (optimal.served_priority, optimal.total_cost));
        let greedy = solve_greedy(&problem);
        assert_feasible(&problem, &optimal);
        assert_feasible(&problem, &greedy);
        prop_assert!(optimal.served_priority >= greedy.served_priority);
        prop_assert!(optimal.is_at_least_as_good_as(&greedy));
        prop_assert!(!has_improving_cycle(&problem, &optimal));
        for (r, team) in optimal.assignment.iter().enumerate() {
            if problem.priority[r] == 0 {
                prop_assert_eq!(*team, None, "priority 0 is never served");
            }
        }
    }

    #[test]
    fn solving_components_apart_gives_the_same_optimum(problem in batch(1..40, 1..30, 5, 3, 1_000)) {
        let whole = solve_optimal(&problem);
        let parts = problem.split();
        let plans: Vec<BatchPlan> = parts.iter().map(|p| solve_optimal(&p.problem)).collect();
        let merged = BatchPlan::merge_components(&problem, &parts, &plans);
        prop_assert_eq!(merged.served_priority, whole.served_priority);
        prop_assert_eq!(merged.total_cost, whole.total_cost);
        let n_parted: usize = parts.iter().map(|p| p.request_idx.len()).sum();
        let n_with_edges = (0..problem.n_requests()).filter(|&r| !problem.row(r).is_empty()).count();
        prop_assert_eq!(n_parted, n_with_edges);
    }

    #[test]
    fn huge_costs_and_priorities_take_the_wide_path_exactly(
        problem in batch(0..6, 1..4, u32::MAX, 2, 1i64 << 50)
    ) {
        let optimal = solve_optimal(&problem);
        let exhaustive = solve_exhaustive(&problem);
        assert_feasible(&problem, &optimal);
        prop_assert_eq!(optimal.served_priority, exhaustive.served_priority);
        prop_assert_eq!(optimal.total_cost, exhaustive.total_cost);
        let auctioned = solve_optimal_via(&problem, Route::Auction, None);
        prop_assert_eq!((auctioned.served_priority, auctioned.total_cost), (optimal.served_priority, optimal.total_cost));
    }
}

/// A sparse, tight batch: each request has a few candidates among few
/// teams, so teams are contested and some requests are left out.
fn tight_batch() -> impl Strategy<Value = BatchProblem> {
    (20usize..150, 3usize..30, 1u32..5).prop_flat_map(|(n, m, max_capacity)| {
        (
            proptest::collection::vec(0u32..=5, n),
            proptest::collection::vec(0..=max_capacity, m),
            proptest::collection::vec(proptest::collection::vec((0..m as u32, 0i64..5_000), 1..6), n),
        )
            .prop_map(|(priority, capacity, rows)| {
                let edges: Vec<BatchEdge> = rows
                    .iter()
                    .enumerate()
                    .flat_map(|(r, row)| row.iter().map(move |&(t, c)| BatchEdge::new(r as u32, t, c)))
                    .collect();
                BatchProblem::new(priority, capacity, &edges).expect("generated batch is valid")
            })
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn every_route_reaches_the_same_certified_optimum(problem in tight_batch()) {
        let searched = solve_optimal_via(&problem, Route::Searches, None);
        let auctioned = solve_optimal_via(&problem, Route::Auction, None);
        let adaptive = solve_optimal(&problem);
        for plan in [&searched, &auctioned, &adaptive] {
            assert_feasible(&problem, plan);
            prop_assert!(!has_improving_cycle(&problem, plan));
        }
        for route in [Route::Searches, Route::Auction, Route::Adaptive] {
            for trial in trials(&problem) {
                let via = solve_optimal_via(&problem, route, Some(trial));
                assert_feasible(&problem, &via);
                prop_assert_eq!((via.served_priority, via.total_cost), (searched.served_priority, searched.total_cost));
            }
        }
        let greedy = solve_greedy(&problem);
        prop_assert_eq!(
            serves_most_priority(&problem, &team_of(&greedy)),
            greedy.served_priority == searched.served_priority
        );
        prop_assert_eq!((auctioned.served_priority, auctioned.total_cost), (searched.served_priority, searched.total_cost));
        prop_assert_eq!((adaptive.served_priority, adaptive.total_cost), (searched.served_priority, searched.total_cost));
    }
}

#[test]
fn priority_beats_distance() {
    // One team of capacity 1; a near low-priority request and a far
    // high-priority one: the far one wins.
    let edges = [BatchEdge::new(0, 0, 10), BatchEdge::new(1, 0, 5_000)];
    let problem = BatchProblem::new(vec![1, 2], vec![1], &edges).expect("valid");
    let plan = solve_optimal(&problem);
    assert_eq!(plan.assignment, vec![None, Some(0)]);
    assert_eq!(plan.served_priority, 2);
    assert_eq!(plan.total_cost, 5_000);
}

#[test]
fn optimal_serves_more_than_greedy_where_greedy_blocks() {
    // Greedy gives request 0 its nearest team 0, which is request 1's only
    // candidate; the optimum sends request 0 to team 1 and serves both.
    let edges = [BatchEdge::new(0, 0, 1), BatchEdge::new(0, 1, 2), BatchEdge::new(1, 0, 1)];
    let problem = BatchProblem::new(vec![1, 1], vec![1, 1], &edges).expect("valid");
    let greedy = solve_greedy(&problem);
    let optimal = solve_optimal(&problem);
    assert_eq!(greedy.served_priority, 1);
    assert_eq!(optimal.served_priority, 2);
    assert_eq!(optimal.assignment, vec![Some(1), Some(0)]);
}

#[test]
fn bad_edges_are_typed_errors() {
    let out_of_range = BatchProblem::new(vec![1], vec![1], &[BatchEdge::new(1, 0, 1)]);
    assert!(matches!(out_of_range, Err(BatchError::RequestOutOfRange { edge_idx: 0, .. })));
    let team_out = BatchProblem::new(vec![1], vec![1], &[BatchEdge::new(0, 3, 1)]);
    assert!(matches!(team_out, Err(BatchError::TeamOutOfRange { team_idx: 3, .. })));
    let negative = BatchProblem::new(vec![1], vec![1], &[BatchEdge::new(0, 0, -1)]);
    assert!(matches!(negative, Err(BatchError::NegativeCost { cost: -1, .. })));
    let overflow =
        BatchProblem::new(vec![1, 1], vec![1], &[BatchEdge::new(0, 0, i64::MAX), BatchEdge::new(1, 0, i64::MAX)]);
    assert!(matches!(overflow, Err(BatchError::CostOverflow { .. })));
    assert!(BatchProblem::new(vec![1], vec![1], &[BatchEdge::new(0, 0, i64::MAX)]).is_ok());
}

#[test]
fn duplicate_edges_keep_the_cheapest() {
    let edges = [BatchEdge::new(0, 0, 9), BatchEdge::new(0, 1, 4), BatchEdge::new(0, 0, 3)];
    let problem = BatchProblem::new(vec![1], vec![1, 1], &edges).expect("valid");
    assert_eq!(problem.n_edges(), 2);
    assert_eq!(problem.candidates(0).collect::<Vec<_>>(), vec![(0, 3), (1, 4)]);
}

#[test]
fn a_trial_where_leaving_out_is_cheapest_still_finds_the_optimum() {
    // Two requests of priority 2 for one slot. With leaving out priced at
    // 1 or 2 per priority, the cheapest-team start must leave request 0 out
    // rather than serve it above its leave-out price.
    let edges = [BatchEdge::new(0, 0, 3), BatchEdge::new(1, 0, 2)];
    let problem = BatchProblem::new(vec![2, 2], vec![1], &edges).expect("valid");
    for route in [Route::Searches, Route::Auction, Route::Adaptive] {
        for trial in [1, 2, 24] {
            let plan = solve_optimal_via(&problem, route, Some(trial));
            assert_eq!(plan.assignment, vec![None, Some(0)], "{route:?}, trial {trial}");
        }
    }
}

#[test]
fn an_auction_that_gives_up_keeps_every_request() {
    // Costs near 2^50 and a team without slots: the auction's first round
    // runs out of bids in a price war. The request it was about to place
    // must stay with the searches, not vanish from the plan.
    let edges = [
        BatchEdge::new(0, 0, 0),
        BatchEdge::new(0, 2, 578_317_840_192_306),
        BatchEdge::new(1, 2, 171_180_173_715_679),
        BatchEdge::new(1, 0, 230_206_733_162_302),
        BatchEdge::new(1, 1, 1_119_931_347_074_563),
        BatchEdge::new(2, 0, 35),
        BatchEdge::new(2, 2, 446_233_961_253_807),
    ];
    let problem = BatchProblem::new(vec![74, 74, 74], vec![1, 0, 1], &edges).expect("valid");
    let exhaustive = solve_exhaustive(&problem);
    for route in [Route::Searches, Route::Auction, Route::Adaptive] {
        for trial in [None, Some(default_trial(&problem))] {
            let plan = solve_optimal_via(&problem, route, trial);
            assert_feasible(&problem, &plan);
            assert_eq!((plan.served_priority, plan.total_cost), (exhaustive.served_priority, exhaustive.total_cost));
        }
    }
}

#[test]
fn an_auction_whose_price_war_coarsens_eps_stays_exact() {
    // Three requests of a very high priority for two slots, each request
    // with both teams at nearly the same cost: the prices climb towards
    // the leave-out price in steps of about ε, the bids run out and ε
    // coarsens (twenty times, counted with a trace when the test was
    // written). The plan after the rounds that follow must be exact. (The
    // bound on the number of rounds holds by construction; this batch
    // ended under the old rule too.)
    for priority in [1_000, 100_000] {
        let edges: Vec<BatchEdge> =
            (0..3).flat_map(|r| (0..2).map(move |t| BatchEdge::new(r, t, 9 + i64::from(r + t)))).collect();
        let problem = BatchProblem::new(vec![priority; 3], vec![1, 1], &edges).expect("valid");
        let exhaustive = solve_exhaustive(&problem);
        for trial in [None, Some(default_trial(&problem))] {
            let plan = solve_optimal_via(&problem, Route::Auction, trial);
            assert_feasible(&problem, &plan);
            assert_eq!((plan.served_priority, plan.total_cost), (exhaustive.served_priority, exhaustive.total_cost));
        }
    }
}

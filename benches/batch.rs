//! Criterion benchmark of the batch solvers on seeded geometric instances:
//! requests and teams uniform in a 40 km square, each request's candidates
//! its k nearest teams, costs in millimetres. The side-by-side comparison
//! with SciPy and OR-Tools is `benches/batch_compare/run.sh`.

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sidan::core::batch::{BatchEdge, BatchProblem, solve_greedy, solve_optimal};

const SIDE_M: f64 = 40_000.0;

/// `n` requests, `m` teams of capacity `cap`, k nearest teams per request
/// (found through a grid of cells, not an n × m scan).
fn instance(seed: u64, n: usize, m: usize, cap: u32, k: usize) -> BatchProblem {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut point = || (rng.random::<f64>() * SIDE_M, rng.random::<f64>() * SIDE_M);
    let teams: Vec<(f64, f64)> = (0..m).map(|_| point()).collect();
    let requests: Vec<(f64, f64)> = (0..n).map(|_| point()).collect();
    let cells = ((m as f64 / 4.0).sqrt().ceil() as usize).max(1);
    let cell_m = SIDE_M / cells as f64;
    let cell_of = |v: f64| ((v / cell_m) as usize).min(cells - 1);
    let mut grid = vec![Vec::new(); cells * cells];
    for (t, &(x, y)) in teams.iter().enumerate() {
        grid[cell_of(y) * cells + cell_of(x)].push(t as u32);
    }
    let mut edges = Vec::with_capacity(n * k);
    let mut near: Vec<(i64, u32)> = Vec::new();
    for (r, &(x, y)) in requests.iter().enumerate() {
        let (cx, cy) = (cell_of(x) as isize, cell_of(y) as isize);
        // Grow the ring of cells until it holds k teams, then one more ring
        // so that no nearer team is missed.
        let mut radius = 0isize;
        loop {
            near.clear();
            for gy in (cy - radius).max(0)..=(cy + radius).min(cells as isize - 1) {
                for gx in (cx - radius).max(0)..=(cx + radius).min(cells as isize - 1) {
                    for &t in &grid[gy as usize * cells + gx as usize] {
                        let (tx, ty) = teams[t as usize];
                        let d = ((tx - x).powi(2) + (ty - y).powi(2)).sqrt();
                        near.push(((d * 1000.0).round() as i64, t));
                    }
                }
            }
            if near.len() >= k.min(m) && radius > 0 || radius as usize >= cells {
                break;
            }
            radius += 1;
        }
        near.sort_unstable();
        for &(cost, t) in near.iter().take(k) {
            edges.push(BatchEdge::new(r as u32, t, cost));
        }
    }
    let priority = (0..n).map(|_| rng.random_range(1..=5)).collect();
    BatchProblem::new(priority, vec![cap; m], &edges).expect("generated instance is valid")
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("batch");
    group.sample_size(10);
    for &(name, n, m, cap, k) in
        &[("1k_x_1k_cap1_k32", 1_000, 1_000, 1, 32), ("10k_x_2k_cap5_k32", 10_000, 2_000, 5, 32)]
    {
        let problem = instance(7, n, m, cap, k);
        group.bench_with_input(BenchmarkId::new("optimal", name), &problem, |b, p| {
            b.iter(|| solve_optimal(black_box(p)))
        });
        group
            .bench_with_input(BenchmarkId::new("greedy", name), &problem, |b, p| b.iter(|| solve_greedy(black_box(p))));
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);

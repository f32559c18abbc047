//! Online ranking: latency of `rank` (k = 10) through the spatial index beside
//! a brute-force scan of every team, index build time, and bytes per team, at
//! 1k, 10k, 100k and 1M teams (cities generated at constant density).
//!
//! Run with `cargo bench --bench rank`; `benches/rank_report.py` collects the
//! medians into docs/benchmarks.md. Set `SIDAN_BENCH_SIZES=1000,10000` to run
//! fewer sizes.

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use sidan::core::dispatch::{Dispatcher, RankQuery};
use sidan::core::index::TeamIndex;
use sidan::core::request::Request;
use sidan::sim::{CityConfig, DemandConfig, generate_city, generate_requests};

fn sizes() -> Vec<usize> {
    std::env::var("SIDAN_BENCH_SIZES")
        .ok()
        .map(|s| s.split(',').filter_map(|x| x.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![1_000, 10_000, 100_000, 1_000_000])
}

fn bench(c: &mut Criterion) {
    let mut summary = Vec::new();
    for n in sizes() {
        let file = generate_city(&CityConfig { seed: 42, teams: n, ..CityConfig::default() });
        let teams = file.teams.clone();
        let (city, index) = file.build().expect("generated city is valid");
        let demand = DemandConfig { seed: 9, requests: 1_000, ..DemandConfig::default() };
        let requests: Vec<Request> = generate_requests(&city, &demand)
            .into_iter()
            .map(|s| Request::new(s, &city).expect("generated requests are valid"))
            .collect();
        let now = demand.start;
        let spatial = index.spatial_bytes() as f64 / n as f64;
        let table = index.table_bytes() as f64 / n as f64;
        let d = Dispatcher::new(city.clone(), index);
        let q = RankQuery::top(10);
        let found: usize = requests.iter().map(|r| d.rank(r, now, &q).len()).sum();
        summary.push(format!(
            "teams={n} spatial_bytes_per_team={spatial:.1} table_bytes_per_team={table:.1} mean_ranked={:.2}",
            found as f64 / requests.len() as f64
        ));

        let mut g = c.benchmark_group("rank_k10");
        g.sample_size(if n >= 1_000_000 { 20 } else { 50 }).measurement_time(Duration::from_secs(3));
        let mut i = 0;
        g.bench_with_input(BenchmarkId::new("index", n), &n, |b, _| {
            b.iter(|| {
                i = (i + 1) % requests.len();
                black_box(d.rank(&requests[i], now, &q))
            })
        });
        let mut j = 0;
        g.bench_with_input(BenchmarkId::new("brute_force", n), &n, |b, _| {
            b.iter(|| {
                j = (j + 1) % requests.len();
                black_box(d.rank_brute_force(&requests[j], now, &q))
            })
        });
        g.finish();

        let mut g = c.benchmark_group("index_build");
        g.sample_size(10).measurement_time(Duration::from_secs(if n >= 1_000_000 { 20 } else { 3 }));
        g.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, _| {
            b.iter_with_large_drop(|| TeamIndex::build(&city, &teams).expect("valid"))
        });
        g.finish();
    }
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/criterion/rank-memory.txt");
    if let Some(dir) = path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    let _ = std::fs::write(&path, summary.join("\n") + "\n");
    println!("{}", summary.join("\n"));
}

criterion_group!(benches, bench);
criterion_main!(benches);

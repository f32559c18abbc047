//! Reports over a city-year: the time to fold the event log of ~500,000
//! requests (a year of Cangzhou) into the quarterly bulletin and the monthly
//! statistics of every unit.
//!
//! The log is made by the pure lifecycle: each request is submitted, accepted,
//! served, rated and closed (about 11 events each), arrivals spread over the
//! year. Run with `cargo bench --bench report` (`SIDAN_REPORT_REQUESTS` sets
//! the count); the medians go into docs/benchmarks.md by hand.

use std::time::Duration;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use sidan::core::dispatch::Dispatcher;
use sidan::core::id::VolunteerId;
use sidan::core::lifecycle::evaluation::expected_roles;
use sidan::core::lifecycle::{
    Command, Event, Lifecycle, PolicyBook, Recorded, RequestCommand, Score, ServiceMinutes, Tags, Volunteers,
};
use sidan::core::report::{Granularity, report};
use sidan::sim::{CityConfig, DemandConfig, generate_city, generate_requests};

fn requests() -> usize {
    std::env::var("SIDAN_REPORT_REQUESTS").ok().and_then(|v| v.parse().ok()).unwrap_or(500_000)
}

fn bench(c: &mut Criterion) {
    let n = requests();
    let (city, index) = generate_city(&CityConfig { seed: 3, teams: 6_000, ..CityConfig::default() })
        .build()
        .expect("generated city is valid");
    let demand = DemandConfig { seed: 5, requests: n, days: 365, ..DemandConfig::default() };
    let mut specs = generate_requests(&city, &demand);
    specs.sort_by_key(|s| s.window.start());
    let mut lc = Lifecycle::new(Dispatcher::new(city.clone(), index), PolicyBook::default());
    let mut log: Vec<Recorded> = Vec::with_capacity(n * 12);
    let v = [VolunteerId::new("v1").expect("id"), VolunteerId::new("v2").expect("id")];
    for spec in specs {
        let now = spec.window.start() - chrono::Duration::hours(3);
        let Ok(recs) = lc.execute(&Command::Request(RequestCommand::Submit { spec: spec.clone() }), now) else {
            continue;
        };
        let team = recs.iter().find_map(|r| match &r.event {
            Event::Offered { team, .. } => Some(team.clone()),
            _ => None,
        });
        log.extend(recs);
        let Some(team) = team else { continue };
        let id = spec.id.clone();
        let mut sampled = false;
        for cmd in [
            Command::Request(RequestCommand::Accept { request: id.clone(), team: team.clone() }),
            Command::Request(RequestCommand::CheckIn { request: id.clone(), team: team.clone() }),
            Command::Request(RequestCommand::Complete {
                request: id.clone(),
                team,
                minutes: ServiceMinutes::new(75).expect("valid minutes"),
                volunteers: Volunteers::new(v.to_vec()).expect("valid volunteers"),
            }),
        ] {
            let recs = lc.execute(&cmd, now).expect("legal");
            sampled |= recs.iter().any(|r| matches!(r.event, Event::Completed { sampled: true, .. }));
            log.extend(recs);
        }
        for &role in expected_roles(sampled) {
            let cmd = Command::Request(RequestCommand::Evaluate {
                request: id.clone(),
                role,
                score: Score::new(4).expect("valid score"),
                tags: Tags::new(vec![]).expect("valid tags"),
                comment: None,
            });
            log.extend(lc.execute(&cmd, now).expect("legal"));
        }
    }
    eprintln!("report bench: {n} requests, {} events", log.len());
    let mut g = c.benchmark_group("report");
    g.sample_size(10).measurement_time(Duration::from_secs(20));
    for (name, gran) in [("quarterly_city_year", Granularity::Quarter), ("monthly_city_year", Granularity::Month)] {
        g.bench_function(name, |b| b.iter_batched(|| (), |()| report(&city, &log, gran), BatchSize::SmallInput));
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);

//! The lifecycle's throughput: decide + apply in the pure core, and commands
//! through the runtime's engine with the in-memory store and bus, side by
//! side in one run.
//!
//! The workload is a city of 6,000 teams (Cangzhou's size) and requests from
//! the demand generator. Each request lives its whole life: submit (ranked
//! dispatch, an offer), accept, check in, complete, three or four
//! evaluations (the third party for sampled requests), settle and close:
//! 7 or 8 commands and about 11 events. Throughput is reported per event
//! for the core and per command for the engine.
//!
//! Run with `cargo bench --bench lifecycle`; `benches/lifecycle_report.py`
//! writes the medians into docs/benchmarks.md.

/// The allocator the `sidan` binary runs with.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use sidan::core::dispatch::Dispatcher;
use sidan::core::id::{TeamId, VolunteerId};
use sidan::core::lifecycle::evaluation::expected_roles;
use sidan::core::lifecycle::{
    Command, Event, Lifecycle, PolicyBook, Recorded, RequestCommand, Score, ServiceMinutes, Tags, Volunteers,
};
use sidan::core::request::RequestSpec;
use sidan::runtime::{Engine, ManualClock, MemoryStore};
use sidan::sim::{CityConfig, DemandConfig, generate_city, generate_requests};

const TEAMS: usize = 6_000;
const REQUESTS: usize = 4_000;
const CLIENTS: usize = 64;

fn offered(events: &[Recorded]) -> Option<TeamId> {
    events.iter().find_map(|r| match &r.event {
        Event::Offered { team, .. } => Some(team.clone()),
        _ => None,
    })
}

/// The commands that follow an accepted offer.
fn after_offer(spec: &RequestSpec, team: &TeamId) -> Vec<Command> {
    let request = spec.id.clone();
    vec![
        Command::Request(RequestCommand::Accept { request: request.clone(), team: team.clone() }),
        Command::Request(RequestCommand::CheckIn { request: request.clone(), team: team.clone() }),
        Command::Request(RequestCommand::Complete {
            request: request.clone(),
            team: team.clone(),
            minutes: ServiceMinutes::new(60).expect("valid minutes"),
            volunteers: Volunteers::new(vec![VolunteerId::new("v1").expect("id"), VolunteerId::new("v2").expect("id")])
                .expect("valid volunteers"),
        }),
    ]
}

/// The ratings that follow a completion: every expected role's.
fn ratings(spec: &RequestSpec, completed: &[Recorded]) -> Vec<Command> {
    let sampled = completed.iter().any(|r| matches!(r.event, Event::Completed { sampled: true, .. }));
    expected_roles(sampled)
        .iter()
        .map(|&role| {
            Command::Request(RequestCommand::Evaluate {
                request: spec.id.clone(),
                role,
                score: Score::new(5).expect("valid score"),
                tags: Tags::new(vec![]).expect("valid tags"),
                comment: None,
            })
        })
        .collect()
}

/// Requests arrive one second apart.
fn arrival(start: chrono::DateTime<chrono::Utc>, i: usize) -> chrono::DateTime<chrono::Utc> {
    start + chrono::Duration::seconds(i as i64)
}

/// Runs every request's whole life through the core; returns the number of events.
fn run_core(lc: &mut Lifecycle, specs: &[RequestSpec], start: chrono::DateTime<chrono::Utc>) -> usize {
    let mut events = 0;
    for (i, spec) in specs.iter().enumerate() {
        let now = arrival(start, i);
        let recs = lc
            .execute(&Command::Request(RequestCommand::Submit { spec: spec.clone() }), now)
            .expect("generated requests are valid");
        events += recs.len();
        if let Some(team) = offered(&recs) {
            let mut last = Vec::new();
            for cmd in after_offer(spec, &team) {
                last = lc.execute(&cmd, now).expect("legal");
                events += last.len();
            }
            for cmd in ratings(spec, &last) {
                events += lc.execute(&cmd, now).expect("legal").len();
            }
        }
    }
    events
}

fn bench(c: &mut Criterion) {
    let file = generate_city(&CityConfig { seed: 42, teams: TEAMS, ..CityConfig::default() });
    let (city, index) = file.build().expect("generated city is valid");
    let demand = DemandConfig { seed: 9, requests: REQUESTS, ..DemandConfig::default() };
    let specs = generate_requests(&city, &demand);
    let now = demand.start - chrono::Duration::hours(2);
    let base = Lifecycle::new(Dispatcher::new(city, index), PolicyBook::default());

    // Count once: events per run, commands per run.
    let events = run_core(&mut base.clone(), &specs, now);
    let mut g = c.benchmark_group("lifecycle");
    g.sample_size(10).measurement_time(Duration::from_secs(8));
    g.throughput(Throughput::Elements(events as u64));
    g.bench_function("core_events", |b| {
        b.iter_batched(|| base.clone(), |mut lc| run_core(&mut lc, &specs, now), BatchSize::LargeInput)
    });

    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let specs = Arc::new(specs);
    let commands = rt.block_on(run_engine(&base, &specs, now));
    g.throughput(Throughput::Elements(commands as u64));
    g.bench_function("engine_commands", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let start = Instant::now();
                rt.block_on(run_engine(&base, &specs, now));
                total += start.elapsed();
            }
            total
        })
    });
    g.finish();
    let line = format!(
        "requests={REQUESTS} teams={TEAMS} clients={CLIENTS} events_per_run={events} commands_per_run={commands}\n"
    );
    // Beside criterion's own output, which follows CARGO_TARGET_DIR.
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target"), std::path::PathBuf::from);
    let path = target.join("criterion/lifecycle-counts.txt");
    let _ = std::fs::create_dir_all(target.join("criterion"));
    if let Err(e) = std::fs::write(&path, &line) {
        eprintln!("cannot write {}: {e}", path.display());
    }
    eprint!("lifecycle: {line}");
}

/// Runs every request's life through an engine, from `CLIENTS` concurrent
/// clients; returns the number of commands executed.
async fn run_engine(base: &Lifecycle, specs: &Arc<Vec<RequestSpec>>, now: chrono::DateTime<chrono::Utc>) -> usize {
    let engine = Arc::new(
        Engine::builder(base.dispatcher().clone())
            .store(MemoryStore::new())
            .clock(ManualClock::new(now))
            .start()
            .await
            .expect("starts"),
    );
    let mut tasks = Vec::new();
    for client in 0..CLIENTS {
        let engine = Arc::clone(&engine);
        let specs = Arc::clone(specs);
        tasks.push(tokio::spawn(async move {
            let mut n = 0;
            for spec in specs.iter().skip(client).step_by(CLIENTS) {
                let r = engine
                    .execute(Command::Request(RequestCommand::Submit { spec: spec.clone() }))
                    .await
                    .expect("submits");
                n += 1;
                if let Some(team) = offered(&r.events) {
                    let mut last = Vec::new();
                    for cmd in after_offer(spec, &team) {
                        last = engine.execute(cmd).await.expect("legal").events;
                        n += 1;
                    }
                    for cmd in ratings(spec, &last) {
                        engine.execute(cmd).await.expect("legal");
                        n += 1;
                    }
                }
            }
            n
        }));
    }
    let mut n = 0;
    for t in tasks {
        n += t.await.expect("client");
    }
    if let Ok(engine) = Arc::try_unwrap(engine) {
        engine.shutdown().await;
    }
    n
}

criterion_group!(benches, bench);
criterion_main!(benches);

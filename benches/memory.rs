//! Memory over a simulated year at constant demand: what the in-memory
//! lifecycle holds, and what its snapshot weighs, month by month, with the
//! default retention (ended requests leave after a week, settled transfers
//! and retired ids after 30 days) beside keeping everything for a year, in
//! one run.
//!
//! The city has 6,000 teams (Cangzhou's size). Every day brings the same
//! number of requests (800 by default: about 290,000 a year), each living
//! its whole life on its day: submit, accept, check in, complete, every
//! expected rating, settle and close; the day ends with the due ticks. At
//! the end of each month the bench prints the requests in memory, the ids
//! of retired requests remembered, the ledger's transfers in memory, the
//! (team, household) pairs the teams remember serving, the live heap
//! (counted by the bench's own allocator) and the size of the
//! postcard-encoded snapshot.
//!
//! Run with `cargo bench --bench memory`; `SIDAN_BENCH_DAILY` and
//! `SIDAN_BENCH_DAYS` change the demand and the length.

use std::alloc::System;

use cap::Cap;

use chrono::{DateTime, Duration, Utc};
use sidan::core::dispatch::Dispatcher;
use sidan::core::id::{RequestId, TeamId, VolunteerId};
use sidan::core::lifecycle::evaluation::expected_roles;
use sidan::core::lifecycle::{
    Command, Event, Lifecycle, LifecyclePolicy, MemoryPolicy, PolicyBook, Recorded, RequestCommand, Score,
    ServiceMinutes, StreamId, Tags, Volunteers,
};
use sidan::core::request::RequestSpec;
use sidan::runtime::Position;
use sidan::sim::{CityConfig, DemandConfig, generate_city, generate_requests};

const TEAMS: usize = 6_000;

/// The system allocator, counting the bytes live on the heap.
#[global_allocator]
static GLOBAL: Cap<System> = Cap::new(System, usize::MAX);

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn offered(events: &[Recorded]) -> Option<TeamId> {
    events.iter().find_map(|r| match &r.event {
        Event::Offered { team, .. } => Some(team.clone()),
        _ => None,
    })
}

/// One request's whole life at `now`.
fn live(lc: &mut Lifecycle, spec: &RequestSpec, now: DateTime<Utc>) {
    let Ok(recs) = lc.execute(&Command::Request(RequestCommand::Submit { spec: spec.clone() }), now) else { return };
    let Some(team) = offered(&recs) else { return };
    let request = spec.id.clone();
    let volunteers = Volunteers::new(vec![VolunteerId::new("v1").expect("id"), VolunteerId::new("v2").expect("id")])
        .expect("two volunteers");
    let steps = [
        RequestCommand::Accept { request: request.clone(), team: team.clone() },
        RequestCommand::CheckIn { request: request.clone(), team: team.clone() },
        RequestCommand::Complete {
            request: request.clone(),
            team,
            minutes: ServiceMinutes::new(60).expect("an hour"),
            volunteers,
        },
    ];
    let mut last = Vec::new();
    for step in steps {
        last = lc.execute(&Command::Request(step), now).expect("legal");
    }
    let sampled = last.iter().any(|r| matches!(r.event, Event::Completed { sampled: true, .. }));
    for &role in expected_roles(sampled) {
        let rate = RequestCommand::Evaluate {
            request: request.clone(),
            role,
            score: Score::new(5).expect("in range"),
            tags: Tags::default(),
            comment: None,
        };
        lc.execute(&Command::Request(rate), now).expect("legal");
    }
}

/// The figures at the end of one month.
struct Month {
    in_memory: usize,
    retired: usize,
    transfers: usize,
    /// (team, household) pairs the teams remember having served (continuity).
    served: usize,
    /// Heap bytes held by the lifecycle (live bytes now, less those before it was made).
    heap: usize,
    snapshot_bytes: usize,
}

fn run(base: &Lifecycle, daily: &[Vec<RequestSpec>], days: usize) -> Vec<Month> {
    let before = GLOBAL.allocated();
    let mut lc = base.clone();
    let mut months = Vec::new();
    for (day, specs) in daily.iter().enumerate().take(days) {
        let mut last = None;
        for spec in specs {
            let now = spec.window.start() - Duration::hours(2);
            live(&mut lc, spec, now);
            last = Some(now);
        }
        // The day's timers: expiries and the ledger's retirement of settled transfers.
        if let Some(now) = last {
            let due: Vec<StreamId> = lc.due(now).cloned().collect();
            for stream in due {
                lc.execute(&Command::Tick(stream), now).expect("a tick is legal");
            }
        }
        if (day + 1) % 30 == 0 {
            let heap = GLOBAL.allocated().saturating_sub(before);
            let snap = sidan::runtime::snapshot::encode(&lc, Position(lc.applied()));
            months.push(Month {
                heap,
                in_memory: lc.requests().count(),
                retired: lc.retired(),
                transfers: lc.ledger().transfers_in_memory(),
                served: lc.dispatcher().index().records().iter().map(|t| t.households_served.len()).sum(),
                snapshot_bytes: snap.data.len(),
            });
        }
    }
    months
}

fn main() {
    let per_day = env_or("SIDAN_BENCH_DAILY", 800);
    let days = env_or("SIDAN_BENCH_DAYS", 365);
    let file = generate_city(&CityConfig { seed: 42, teams: TEAMS, ..CityConfig::default() });
    let (city, index) = file.build().expect("generated city is valid");
    let first = DemandConfig::default().start;
    let daily: Vec<Vec<RequestSpec>> = (0..days)
        .map(|d| {
            let cfg = DemandConfig {
                seed: 1_000 + d as u64,
                requests: per_day,
                start: first + Duration::days(d as i64),
                days: 1,
                ..DemandConfig::default()
            };
            let mut specs = generate_requests(&city, &cfg);
            for (i, s) in specs.iter_mut().enumerate() {
                s.id = RequestId::new(&format!("d{d:03}-{i:05}")).expect("valid id");
            }
            specs.sort_by_key(|s| s.window.start());
            specs
        })
        .collect();
    let dispatcher = Dispatcher::new(city, index);
    let book = |retention_h, memory| {
        PolicyBook::uniform(LifecyclePolicy { retention_h, ..LifecyclePolicy::default() })
            .and_then(|b| b.with_memory(memory))
            .expect("valid policy")
    };
    let keep_all = MemoryPolicy { ledger_days: 366, retired_ids_days: 366, continuity_days: 366 };
    let week = run(&Lifecycle::new(dispatcher.clone(), book(7 * 24, MemoryPolicy::default())), &daily, days);
    let year = run(&Lifecycle::new(dispatcher, book(366 * 24, keep_all)), &daily, days);
    println!("memory over {days} days, {per_day} requests a day, {TEAMS} teams");
    println!(
        "{:>5} | {:>9} {:>9} {:>10} {:>8} {:>9} {:>11} | {:>9} {:>9} {:>11}",
        "month",
        "requests",
        "ret. ids",
        "transfers",
        "served",
        "heap MB",
        "snapshot MB",
        "requests",
        "heap MB",
        "snapshot MB"
    );
    let mb = |b: usize| b as f64 / 1e6;
    for (i, (w, y)) in week.iter().zip(&year).enumerate() {
        println!(
            "{:>5} | {:>9} {:>9} {:>10} {:>8} {:>9.1} {:>11.1} | {:>9} {:>9.1} {:>11.1}",
            i + 1,
            w.in_memory,
            w.retired,
            w.transfers,
            w.served,
            mb(w.heap),
            mb(w.snapshot_bytes),
            y.in_memory,
            mb(y.heap),
            mb(y.snapshot_bytes)
        );
    }
}

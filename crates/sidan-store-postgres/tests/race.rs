//! Two engine instances on one PostgreSQL schema (reliability.md G7,
//! invariants 1 and 11): each has its own in-memory state and its own pool,
//! and learns of the other's writes only when it starts (replay) or when an
//! append of its own is refused with a conflict (the engine then rebuilds
//! from the store). The store's optimistic append is what keeps a request
//! from having two holders.
//!
//! - `thousand_requests_one_holder_each`: 1,000 generated requests submitted
//!   through either engine at random; both engines restart (so both know
//!   every offer); then four accepts per request at once, each routed to
//!   either engine at random. Every request ends with exactly one holder; an
//!   accept that loses the race gets `EngineError::Store(Conflict)` and its
//!   retry a typed lifecycle refusal.
//! - `single_offer_race_over_two_engines`: 32 concurrent accepts of one offer,
//!   spread over both engines, `SIDAN_RACE_ROUNDS` rounds (500): exactly one
//!   winner each round and one `accepted` event in the store.
//!
//! `SIDAN_PG_RACE_REQUESTS` scales the first test (1,000).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use chrono::{DateTime, Duration, Utc};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sidan_core::dispatch::Dispatcher;
use sidan_core::geo::StraightLine;
use sidan_core::id::{RequestId, TeamId};
use sidan_core::lifecycle::{Command, Event, Lifecycle, LifecycleError, PolicyBook, RequestCommand, StreamId, Text};
use sidan_core::request::RequestSpec;
use sidan_core::testkit::t0;
use sidan_runtime::{Engine, EngineBuilder, EngineError, ManualClock, Store, StoreError};
use sidan_sim::{CityConfig, DemandConfig, generate_city, generate_requests};
use sidan_store_postgres::{PgConfig, PgStore};
use sidan_store_tests::pg::pg_or_skip;
use sidan_store_tests::{check_log_shape, offered, race_rounds, read_all};

type Eng = Arc<Engine<StraightLine>>;

fn city() -> (sidan_core::city::City, sidan_core::index::TeamIndex) {
    generate_city(&CityConfig { seed: 3, teams: 2_000, ..CityConfig::default() }).build().expect("valid city")
}

fn builder() -> EngineBuilder<StraightLine> {
    let (city, index) = city();
    Engine::builder(Dispatcher::new(city, index))
}

fn lifecycle() -> Lifecycle<StraightLine> {
    let (city, index) = city();
    Lifecycle::new(Dispatcher::new(city, index), PolicyBook::default())
}

fn now() -> DateTime<Utc> {
    t0()
}

/// `n` generated requests with ids `<prefix><i>`, windows from two hours on.
fn requests(prefix: &str, n: usize, seed: u64) -> Vec<RequestSpec> {
    let (city, _) = city();
    let demand =
        DemandConfig { seed, requests: n, start: now() + Duration::hours(2), days: 3, ..DemandConfig::default() };
    generate_requests(&city, &demand)
        .into_iter()
        .enumerate()
        .map(|(i, mut s)| {
            s.id = RequestId::new(&format!("{prefix}{i}")).expect("valid id");
            s
        })
        .collect()
}

async fn start(config: &PgConfig) -> Eng {
    let store = PgStore::open(config).await.expect("opens");
    Arc::new(builder().store(store).clock(ManualClock::new(now())).start().await.expect("starts"))
}

async fn restart(engines: [Eng; 2], config: &PgConfig) -> [Eng; 2] {
    for e in engines {
        Arc::into_inner(e).expect("no task holds the engine").shutdown().await;
    }
    [start(config).await, start(config).await]
}

/// How one accept attempt ended.
#[derive(Debug)]
enum Outcome {
    Won,
    Refused(LifecycleError),
}

/// Accepts, retrying (a bounded number of times) while the engine's append
/// is refused with a conflict; returns the outcome and the conflicts seen.
async fn accept(engine: &Eng, request: &RequestId, team: &TeamId) -> (Outcome, usize) {
    let mut conflicts = 0;
    for _ in 0..100 {
        match engine
            .execute(Command::Request(RequestCommand::Accept { request: request.clone(), team: team.clone() }))
            .await
        {
            Ok(_) => return (Outcome::Won, conflicts),
            Err(EngineError::Rejected(e)) => return (Outcome::Refused(e), conflicts),
            Err(EngineError::Store(StoreError::Conflict { .. })) => conflicts += 1,
            Err(e) => panic!("{request}: unexpected {e}"),
        }
    }
    panic!("{request}: still conflicting after 100 tries");
}

fn accepted_team(events: &[sidan_core::lifecycle::Recorded]) -> Vec<TeamId> {
    events
        .iter()
        .filter_map(|r| match &r.event {
            Event::Accepted { team } => Some(team.clone()),
            _ => None,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousand_requests_one_holder_each() {
    let Some(scratch) = pg_or_skip("thousand_requests_one_holder_each").await else { return };
    let config = PgConfig::new(scratch.url()).with_schema(scratch.schema());
    let n: usize = std::env::var("SIDAN_PG_RACE_REQUESTS").ok().and_then(|v| v.parse().ok()).unwrap_or(1_000);
    let started = Instant::now();
    let mut engines = [start(&config).await, start(&config).await];

    // Submissions through either engine at random, from 32 clients. Not every
    // generated request finds a team (skills, availability): submit three
    // times as many and race on the first `n` that got an offer.
    let specs = Arc::new(requests("m", 3 * n, 17));
    let mut tasks = Vec::new();
    for c in 0..32u64 {
        let (specs, engines) = (Arc::clone(&specs), engines.clone());
        tasks.push(tokio::spawn(async move {
            let mut rng = ChaCha8Rng::seed_from_u64(c);
            let mut offers = Vec::new();
            for spec in specs.iter().skip(c as usize).step_by(32) {
                let e = &engines[rng.random_range(0..2usize)];
                match e.execute(Command::Request(RequestCommand::Submit { spec: spec.clone() })).await {
                    Ok(r) => offers.push((spec.id.clone(), offered(&r.events))),
                    Err(EngineError::Rejected(_)) => {}
                    Err(e) => panic!("{}: unexpected {e}", spec.id),
                }
            }
            offers
        }));
    }
    let mut offers: BTreeMap<RequestId, Vec<TeamId>> = BTreeMap::new();
    for t in tasks {
        offers.extend(t.await.expect("client"));
    }
    offers.retain(|_, teams| !teams.is_empty());
    let with_offers = offers.len();
    assert!(with_offers >= n, "enough requests got an offer: {with_offers} of {}", 3 * n);
    let offers: BTreeMap<RequestId, Vec<TeamId>> = offers.into_iter().take(n).collect();
    let submitted = started.elapsed();

    // Both engines now learn every offer.
    engines = restart(engines, &config).await;

    // Four accepts per request at once, each to either engine, 25 requests at
    // a time (so that every group races afresh: the engine that loses a group
    // rebuilds, and both are current again for the next).
    let conflicts = Arc::new(AtomicUsize::new(0));
    let mut rng = ChaCha8Rng::seed_from_u64(99);
    let mut winners: BTreeMap<RequestId, Vec<TeamId>> = BTreeMap::new();
    let mut refused_after_conflict = 0;
    let offer_list: Vec<(RequestId, Vec<TeamId>)> = offers.iter().map(|(r, t)| (r.clone(), t.clone())).collect();
    for group in offer_list.chunks(25) {
        let mut tasks = Vec::new();
        for (request, teams) in group {
            for k in 0..4 {
                let engine = Arc::clone(&engines[rng.random_range(0..2usize)]);
                let (request, team) = (request.clone(), teams[k % teams.len()].clone());
                let conflicts = Arc::clone(&conflicts);
                tasks.push(tokio::spawn(async move {
                    let (outcome, c) = accept(&engine, &request, &team).await;
                    conflicts.fetch_add(c, Ordering::Relaxed);
                    (request, team, outcome, c)
                }));
            }
        }
        for t in tasks {
            let (request, team, outcome, c) = t.await.expect("accept task");
            match outcome {
                Outcome::Won => winners.entry(request).or_default().push(team),
                Outcome::Refused(LifecycleError::AlreadyTaken { .. }) => refused_after_conflict += usize::from(c > 0),
                Outcome::Refused(e) => panic!("{request}: an accept of an open offer refused with {e}"),
            }
        }
    }
    for request in offers.keys() {
        let w = winners.get(request).map_or(0, Vec::len);
        assert_eq!(w, 1, "{request}: exactly one accept wins, got {w}");
    }
    let conflicts = conflicts.load(Ordering::Relaxed);
    assert!(conflicts > 0, "the engines raced: some appends were refused as conflicts");
    assert!(refused_after_conflict > 0, "some accepts lost the race at the store and were refused on retry");

    // The store agrees: one `accepted` per request, by the winner; the log replays.
    let store = PgStore::open(&config).await.expect("opens");
    for (request, teams) in &winners {
        let log = store.load(&StreamId::Request(request.clone())).await.expect("loads");
        assert_eq!(accepted_team(&log), *teams, "{request}: the stored acceptance is the winner's");
    }
    let log = read_all(&store).await;
    check_log_shape(&log);
    let mut lc = lifecycle();
    for s in &log {
        lc.apply(&s.record).expect("the shared log replays");
    }
    for (request, teams) in &winners {
        let st = lc.request(request).expect("known");
        let holder = st.phase.holder().map(|t| lc.dispatcher().index().records()[t.0 as usize].id.clone());
        assert_eq!(holder.as_ref(), teams.first(), "{request}: the replayed holder is the winner");
    }
    let digest = lc.digest();
    engines = restart(engines, &config).await;
    for e in &engines {
        assert_eq!(e.query(|lc| lc.digest()).await.expect("queries"), digest, "both engines replay to the log");
    }
    for e in engines {
        Arc::into_inner(e).expect("sole owner").shutdown().await;
    }
    eprintln!(
        "thousand_requests_one_holder_each: {} submitted, {with_offers} offered, {} raced; {conflicts} conflicts, \
         {refused_after_conflict} retries refused after a conflict; submit {:.1} s, total {:.1} s",
        3 * n,
        offers.len(),
        submitted.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_offer_race_over_two_engines() {
    let Some(scratch) = pg_or_skip("single_offer_race_over_two_engines").await else { return };
    let config = PgConfig::new(scratch.url()).with_schema(scratch.schema());
    let rounds = race_rounds(500);
    let wave = 50;
    let started = Instant::now();
    let mut engines = [start(&config).await, start(&config).await];
    // Not every generated request finds a team: generate three times the rounds.
    let specs = requests("s", 3 * rounds, 23);
    let check = PgStore::open(&config).await.expect("opens");
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let (mut conflicts, mut played) = (0usize, 0usize);
    for chunk in specs.chunks(wave) {
        if played == rounds {
            break;
        }
        // Submit a wave through either engine, then restart both so both know it.
        let mut offers = Vec::new();
        for spec in chunk {
            let e = &engines[rng.random_range(0..2usize)];
            match e.execute(Command::Request(RequestCommand::Submit { spec: spec.clone() })).await {
                Ok(r) => offers.push((spec.id.clone(), offered(&r.events))),
                Err(EngineError::Rejected(_)) => {}
                Err(e) => panic!("{}: unexpected {e}", spec.id),
            }
        }
        engines = restart(engines, &config).await;
        for (request, teams) in offers {
            let Some(team) = teams.first().cloned() else { continue };
            if played == rounds {
                break;
            }
            played += 1;
            let tasks: Vec<_> = (0..32)
                .map(|_| {
                    let engine = Arc::clone(&engines[rng.random_range(0..2usize)]);
                    let (request, team) = (request.clone(), team.clone());
                    tokio::spawn(async move {
                        let (outcome, c) = accept(&engine, &request, &team).await;
                        (engine, outcome, c)
                    })
                })
                .collect();
            let mut winner = None;
            let mut wins = 0;
            for t in tasks {
                let (engine, outcome, c) = t.await.expect("task");
                conflicts += c;
                match outcome {
                    Outcome::Won => {
                        wins += 1;
                        winner = Some(engine);
                    }
                    Outcome::Refused(LifecycleError::AlreadyTaken { .. }) => {}
                    Outcome::Refused(e) => panic!("{request}: unexpected refusal {e}"),
                }
            }
            assert_eq!(wins, 1, "{request}: exactly one winner");
            let log = check.load(&StreamId::Request(request.clone())).await.expect("loads");
            assert_eq!(accepted_team(&log), std::slice::from_ref(&team), "{request}: exactly one accepted event");
            // Free the team through the engine that won (its state has the acceptance).
            let winner = winner.expect("a winner");
            let cancel = Command::Request(RequestCommand::Cancel {
                request: request.clone(),
                reason: Text::new("drill").expect("short text"),
            });
            loop {
                match winner.execute(cancel.clone()).await {
                    Ok(_) => break,
                    Err(EngineError::Store(StoreError::Conflict { .. })) => {}
                    Err(e) => panic!("{request}: cancel: {e}"),
                }
            }
        }
    }
    assert_eq!(played, rounds, "every round had an offer to race for");
    assert!(conflicts > 0, "the engines raced");
    let log = read_all(&check).await;
    check_log_shape(&log);
    for e in engines {
        Arc::into_inner(e).expect("sole owner").shutdown().await;
    }
    eprintln!(
        "single_offer_race_over_two_engines: {played} rounds × 32 accepts over two engines, {conflicts} conflicts, \
         {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

//! The engine over the in-memory store and bus: races, replay, timers,
//! back-pressure and store failures.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use chrono::Duration;
use sidan_core::dispatch::Dispatcher;
use sidan_core::geo::StraightLine;
use sidan_core::id::{RequestId, TeamId};
use sidan_core::lifecycle::{
    Command, DeclineReason, Event, Lifecycle, LifecycleError, LifecyclePolicy, PolicyBook, Recorded, RequestCommand,
    StreamId, Text,
};
use sidan_core::request::Urgency;
use sidan_core::testkit::{request, t0, tiny_city};
use sidan_runtime::{
    Bus, Engine, EngineBuilder, EngineConfig, EngineError, Filter, LIFECYCLE_SNAPSHOT, ManualClock, MemoryBus,
    MemoryStore, Position, Snapshot, SnapshotUnused, Store, StoreError, Stored,
};

fn builder(policy: LifecyclePolicy) -> EngineBuilder<StraightLine> {
    let (city, index) = tiny_city();
    Engine::builder(Dispatcher::new(city, index)).policies(PolicyBook::uniform(policy).expect("valid policy"))
}

fn lifecycle(policy: LifecyclePolicy) -> Lifecycle<StraightLine> {
    let (city, index) = tiny_city();
    Lifecycle::new(Dispatcher::new(city, index), PolicyBook::uniform(policy).expect("valid policy"))
}

fn rid(s: &str) -> RequestId {
    RequestId::new(s).expect("id")
}

fn offered(events: &[Recorded]) -> Vec<TeamId> {
    events
        .iter()
        .filter_map(|r| match &r.event {
            Event::Offered { team, .. } => Some(team.clone()),
            _ => None,
        })
        .collect()
}

fn rounds(default: usize) -> usize {
    std::env::var("SIDAN_RACE_ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// 64 tasks accept one emergency broadcast at once: exactly one wins, the
/// rest get a typed refusal, and the winner's append withdraws every other offer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emergency_race_has_exactly_one_winner() {
    // County c1 has four rescue teams.
    let policy = LifecyclePolicy { emergency_fanout: 4, ..LifecyclePolicy::default() };
    let store = MemoryStore::new();
    let clock = ManualClock::new(t0());
    let engine = Arc::new(builder(policy).store(store.clone()).clock(clock).start().await.expect("starts"));
    for round in 0..rounds(100) {
        let id = format!("e{round}");
        let spec = request(&id, "c1-i1-s1", "rescue", Urgency::Emergency, 0, 3);
        let receipt = engine.execute(Command::Request(RequestCommand::Submit { spec })).await.expect("submits");
        let teams = offered(&receipt.events);
        assert_eq!(teams.len(), 4, "round {round}: fan-out of four");
        let wins = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for i in 0..64 {
            let engine = Arc::clone(&engine);
            let team = teams[i % teams.len()].clone();
            let request = rid(&id);
            let wins = Arc::clone(&wins);
            tasks.push(tokio::spawn(async move {
                match engine.execute(Command::Request(RequestCommand::Accept { request: request.clone(), team })).await
                {
                    Ok(r) => {
                        wins.fetch_add(1, Ordering::SeqCst);
                        let names: Vec<&str> = r.events.iter().map(|e| e.event.name()).collect();
                        assert_eq!(names, ["accepted", "offer_withdrawn", "offer_withdrawn", "offer_withdrawn"]);
                    }
                    Err(EngineError::Rejected(LifecycleError::AlreadyTaken { request: r })) => assert_eq!(r, request),
                    Err(e) => panic!("unexpected refusal: {e}"),
                }
            }));
        }
        for t in tasks {
            t.await.expect("task");
        }
        assert_eq!(wins.load(Ordering::SeqCst), 1, "round {round}: exactly one winner");
        let log = store.load(&StreamId::Request(rid(&id))).await.expect("loads");
        let accepted = log.iter().filter(|r| matches!(r.event, Event::Accepted { .. })).count();
        assert_eq!(accepted, 1);
        // Free the team for the next round.
        engine
            .execute(Command::Request(RequestCommand::Cancel {
                request: rid(&id),
                reason: Text::new("drill over").expect("short text"),
            }))
            .await
            .expect("cancels");
    }
    let loads = engine.query(|lc| lc.dispatcher().index().records().iter().map(|t| t.load).sum::<u32>()).await;
    assert_eq!(loads.expect("queries"), 0);
}

/// 32 concurrent accepts of one ordinary offer: one winner, 31 `AlreadyTaken`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_offer_race_has_exactly_one_winner() {
    let engine = Arc::new(
        builder(LifecyclePolicy::default())
            .store(MemoryStore::new())
            .clock(ManualClock::new(t0()))
            .start()
            .await
            .expect("starts"),
    );
    for round in 0..rounds(200) {
        let id = format!("n{round}");
        let spec = request(&id, "c1-i1-s1", "home-care", Urgency::Normal, 2, 3);
        let team =
            offered(&engine.execute(Command::Request(RequestCommand::Submit { spec })).await.expect("submits").events)
                [0]
            .clone();
        let tasks: Vec<_> = (0..32)
            .map(|_| {
                let (engine, team) = (Arc::clone(&engine), team.clone());
                let request = rid(&id);
                tokio::spawn(
                    async move { engine.execute(Command::Request(RequestCommand::Accept { request, team })).await },
                )
            })
            .collect();
        let mut ok = 0;
        for t in tasks {
            match t.await.expect("task") {
                Ok(_) => ok += 1,
                Err(EngineError::Rejected(LifecycleError::AlreadyTaken { .. })) => {}
                Err(e) => panic!("unexpected: {e}"),
            }
        }
        assert_eq!(ok, 1, "round {round}");
        engine
            .execute(Command::Request(RequestCommand::Cancel {
                request: rid(&id),
                reason: Text::new("drill").expect("short text"),
            }))
            .await
            .expect("cancels");
    }
}

/// The state rebuilt from the log on restart equals the live state.
#[tokio::test]
async fn restart_replays_to_the_live_state() {
    let policy = LifecyclePolicy { offer_deadline_s: 600, ..LifecyclePolicy::default() };
    let store = MemoryStore::new();
    let clock = ManualClock::new(t0());
    let engine = builder(policy).store(store.clone()).clock(clock.clone()).start().await.expect("starts");
    for (i, (unit, service, urgency)) in [
        ("c1-i1-s1", "home-care", Urgency::Normal),
        ("c1-i2-s2", "home-care", Urgency::Urgent),
        ("c2-i1-s1", "rescue", Urgency::Emergency),
        ("c1-i1-s2", "haircut", Urgency::Normal),
    ]
    .into_iter()
    .enumerate()
    {
        let spec = request(&format!("q{i}"), unit, service, urgency, 3, 5);
        engine.execute(Command::Request(RequestCommand::Submit { spec })).await.expect("submits");
    }
    let first = offered(&store.load(&StreamId::Request(rid("q0"))).await.expect("loads"));
    engine
        .execute(Command::Request(RequestCommand::Decline {
            request: rid("q0"),
            team: first[0].clone(),
            reason: DeclineReason::TooFar,
        }))
        .await
        .expect("declines");
    // Let offers expire: the engine's timer fires on its own.
    clock.advance(Duration::minutes(11));
    wait_for(&store, |log| log.iter().any(|s| matches!(s.record.event, Event::OfferExpired { .. }))).await;
    let live = engine.query(|lc| lc.digest()).await.expect("queries");
    engine.shutdown().await;
    let again = builder(policy).store(store.clone()).clock(clock).start().await.expect("restarts");
    assert_eq!(again.query(|lc| lc.digest()).await.expect("queries"), live);
    // And folding the raw log gives the same.
    let mut lc = lifecycle(policy);
    for s in store.all() {
        lc.apply(&s.record).expect("applies");
    }
    assert_eq!(lc.digest(), live);
}

async fn wait_for(store: &MemoryStore, done: impl Fn(&[Stored]) -> bool) {
    for _ in 0..500 {
        if done(&store.all()) {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    panic!("timed out waiting for the engine");
}

/// Each escalation step fires from the clock alone, and the bus carries it masked.
#[tokio::test]
async fn deadlines_fire_and_escalate_on_the_manual_clock() {
    let policy = LifecyclePolicy { offer_deadline_s: 600, escalate_after_misses: 2, ..LifecyclePolicy::default() };
    let store = MemoryStore::new();
    let bus = MemoryBus::new();
    let mut sub = bus.subscribe(Filter::All, 1024).await.expect("subscribes");
    let clock = ManualClock::new(t0());
    let engine = builder(policy).store(store.clone()).bus(bus).clock(clock.clone()).start().await.expect("starts");
    let spec = request("r", "c1-i1-s1", "home-care", Urgency::Normal, 24, 4);
    engine.execute(Command::Request(RequestCommand::Submit { spec })).await.expect("submits");
    let mut seen: Vec<String> = Vec::new();
    // Station: two offers expire (a, b: the miss threshold), then the institute's
    // last team, the county's, then the city's recruitment order, then nobody.
    let expected = [
        vec!["submitted", "offered"],
        vec!["offer_expired", "offered"],
        vec!["offer_expired", "scope_widened", "offered"],
        vec!["offer_expired", "scope_widened", "offered"],
        vec!["offer_expired", "scope_widened", "recruitment_issued", "offered"],
        vec!["offer_expired", "unfulfillable"],
    ];
    for (step, names) in expected.iter().enumerate() {
        if step > 0 {
            // The recruitment order's deadline is four hours.
            clock.advance(if step == 5 { Duration::hours(4) } else { Duration::minutes(10) });
        }
        let mut got = Vec::new();
        while got.len() < names.len() {
            let m = tokio::time::timeout(std::time::Duration::from_secs(5), sub.next())
                .await
                .expect("the engine publishes in time")
                .expect("not lagged")
                .expect("the bus is open");
            let text = serde_json::to_string(&m).expect("serialises");
            assert!(!text.contains("13812345678") && !text.contains("402"), "bus payload leaks PI: {text}");
            assert_eq!(m.id, m.record.id());
            got.push(m.record.event.name().to_owned());
        }
        assert_eq!(&got, names, "step {step}");
        seen.extend(got);
    }
    assert!(seen.contains(&"recruitment_issued".to_owned()));
}

/// A store that blocks appends until released, to fill the queue.
#[derive(Clone)]
struct GatedStore {
    inner: MemoryStore,
    gate: Arc<tokio::sync::Semaphore>,
    fail: Arc<AtomicUsize>,
}

impl Store for GatedStore {
    async fn append(&self, batch: &[Recorded]) -> Result<Position, StoreError> {
        let _permit = self.gate.acquire().await.map_err(|e| StoreError::Unavailable(e.to_string()))?;
        if self.fail.load(Ordering::SeqCst) > 0 {
            self.fail.fetch_sub(1, Ordering::SeqCst);
            return Err(StoreError::Unavailable("disk full".into()));
        }
        self.inner.append(batch).await
    }
    async fn load(&self, stream: &StreamId) -> Result<Vec<Recorded>, StoreError> {
        self.inner.load(stream).await
    }
    async fn read_from(&self, after: Position, limit: usize) -> Result<Vec<Stored>, StoreError> {
        self.inner.read_from(after, limit).await
    }
    async fn unpublished(&self, limit: usize) -> Result<Vec<Stored>, StoreError> {
        self.inner.unpublished(limit).await
    }
    async fn mark_published(&self, through: Position) -> Result<(), StoreError> {
        self.inner.mark_published(through).await
    }
}

#[tokio::test]
async fn a_full_queue_is_a_clear_error_not_a_hang() {
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let store = GatedStore { inner: MemoryStore::new(), gate: Arc::clone(&gate), fail: Arc::new(AtomicUsize::new(0)) };
    let config = EngineConfig { queue_capacity: 2, max_batch: 1, ..EngineConfig::default() };
    let engine = Arc::new(
        builder(LifecyclePolicy::default())
            .store(store)
            .clock(ManualClock::new(t0()))
            .config(config)
            .start()
            .await
            .expect("starts"),
    );
    let mut pending = Vec::new();
    let mut overloaded = 0;
    for i in 0..8 {
        let spec = request(&format!("f{i}"), "c1-i1-s1", "home-care", Urgency::Normal, 2, 3);
        let e = Arc::clone(&engine);
        let h = tokio::spawn(async move { e.execute(Command::Request(RequestCommand::Submit { spec })).await });
        tokio::task::yield_now().await;
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        if h.is_finished() {
            match h.await.expect("task") {
                Err(EngineError::Overloaded { capacity: 2 }) => overloaded += 1,
                other => panic!("only overload can finish while the store is blocked: {other:?}"),
            }
        } else {
            pending.push(h);
        }
    }
    assert!(overloaded >= 4, "the queue holds two and the writer one: {overloaded} overloaded");
    gate.add_permits(1000);
    for h in pending {
        h.await.expect("task").expect("stored once the store is back");
    }
}

#[tokio::test]
async fn a_failed_append_acknowledges_nothing_and_rebuilds() {
    let fail = Arc::new(AtomicUsize::new(1));
    let inner = MemoryStore::new();
    let store = GatedStore { inner: inner.clone(), gate: Arc::new(tokio::sync::Semaphore::new(1000)), fail };
    let engine =
        builder(LifecyclePolicy::default()).store(store).clock(ManualClock::new(t0())).start().await.expect("starts");
    let before = engine.query(|lc| lc.digest()).await.expect("queries");
    let spec = request("x", "c1-i1-s1", "home-care", Urgency::Normal, 2, 3);
    let res = engine.execute(Command::Request(RequestCommand::Submit { spec: spec.clone() })).await;
    assert!(matches!(res, Err(EngineError::Store(StoreError::Unavailable(_)))), "{res:?}");
    assert_eq!(engine.query(|lc| lc.digest()).await.expect("queries"), before, "state rebuilt from the store");
    assert!(inner.is_empty());
    // The retry is a new submission and succeeds.
    engine.execute(Command::Request(RequestCommand::Submit { spec })).await.expect("stored");
    assert!(!inner.is_empty());
}

/// The events an engine replays at start count towards its next snapshot: one that replayed
/// the whole log and shuts down without a new command saves a snapshot, so the start after it
/// replays nothing.
#[tokio::test]
async fn replayed_events_count_towards_the_next_snapshot() {
    let policy = LifecyclePolicy::default();
    let store = MemoryStore::new();
    let clock = ManualClock::new(t0());
    let never = EngineConfig { snapshot_every: 0, ..EngineConfig::default() };
    let engine = builder(policy).store(store.clone()).clock(clock.clone()).config(never).start().await.expect("starts");
    for i in 0..4 {
        let spec = request(&format!("q{i}"), "c1-i1-s1", "home-care", Urgency::Normal, 3, 5);
        engine.execute(Command::Request(RequestCommand::Submit { spec })).await.expect("submits");
    }
    let live = engine.query(|lc| lc.digest()).await.expect("queries");
    engine.shutdown().await;
    let total = store.all().len() as u64;
    assert!(store.load_snapshot(LIFECYCLE_SNAPSHOT).await.expect("loads").is_none(), "no snapshots asked for");

    let config = EngineConfig::default();
    let again =
        builder(policy).store(store.clone()).clock(clock.clone()).config(config).start().await.expect("restarts");
    assert_eq!(again.start_info().replayed, total);
    again.shutdown().await;
    let snap = store.load_snapshot(LIFECYCLE_SNAPSHOT).await.expect("loads").expect("saved at shutdown");
    assert_eq!(snap.position, Position(total));

    let third = builder(policy).store(store.clone()).clock(clock).config(config).start().await.expect("restarts");
    assert_eq!(third.start_info().snapshot, Some(Position(total)));
    assert_eq!(third.start_info().replayed, 0);
    assert_eq!(third.query(|lc| lc.digest()).await.expect("queries"), live);
    third.abort();
}

/// With a snapshot every few events, a restart starts from the latest one and replays only the
/// events after it, to the same state; a snapshot that does not decode is ignored and the
/// whole log replays.
#[tokio::test]
async fn restarts_start_from_the_latest_snapshot_and_ignore_a_bad_one() {
    let policy = LifecyclePolicy::default();
    let store = MemoryStore::new();
    let clock = ManualClock::new(t0());
    let config = EngineConfig { snapshot_every: 7, ..EngineConfig::default() };
    let engine =
        builder(policy).store(store.clone()).clock(clock.clone()).config(config).start().await.expect("starts");
    assert_eq!(engine.start_info().snapshot, None);
    for i in 0..12 {
        let unit = ["c1-i1-s1", "c1-i2-s2", "c2-i1-s1"][i % 3];
        let spec = request(&format!("q{i}"), unit, "home-care", Urgency::Normal, 3, 5);
        let receipt = engine.execute(Command::Request(RequestCommand::Submit { spec })).await.expect("submits");
        if let Some(team) = offered(&receipt.events).first() {
            engine
                .execute(Command::Request(RequestCommand::Accept {
                    request: rid(&format!("q{i}")),
                    team: team.clone(),
                }))
                .await
                .expect("accepts");
        }
    }
    let live = engine.query(|lc| lc.digest()).await.expect("queries");
    // The last command's events went in after the last periodic snapshot; shutdown saves one more.
    engine.shutdown().await;
    let total = store.all().len() as u64;
    let snap = store.load_snapshot(LIFECYCLE_SNAPSHOT).await.expect("loads").expect("a snapshot was saved");
    assert_eq!(snap.position, Position(total), "the shutdown snapshot covers the whole log");

    // Move the snapshot back, so that the restart must replay a tail.
    let mut lc = lifecycle(policy);
    let cut = total / 2;
    for s in store.all().iter().take(cut as usize) {
        lc.apply(&s.record).expect("applies");
    }
    let older = sidan_runtime::snapshot::encode(&lc, Position(cut));
    store.save_snapshot(&older).await.expect("saves");
    let again = builder(policy).store(store.clone()).clock(clock.clone()).start().await.expect("restarts");
    assert_eq!(again.start_info().snapshot, Some(Position(cut)));
    assert_eq!(again.start_info().replayed, total - cut);
    assert_eq!(again.query(|lc| lc.digest()).await.expect("queries"), live);
    again.abort();

    // Garbage under the snapshot's name: ignored, with the reason, and the whole log replays.
    let garbage = Snapshot { name: LIFECYCLE_SNAPSHOT.to_owned(), position: Position(cut), data: vec![0xff; 9] };
    store.save_snapshot(&garbage).await.expect("saves");
    let again = builder(policy).store(store.clone()).clock(clock).start().await.expect("restarts");
    let info = again.start_info().clone();
    assert_eq!(info.snapshot, None);
    assert!(matches!(info.snapshot_unused, Some(SnapshotUnused::Decode(_))), "{info:?}");
    assert_eq!(info.replayed, total);
    assert_eq!(again.query(|lc| lc.digest()).await.expect("queries"), live);
    again.abort();
}

/// A request id is never taken twice, even after its request left memory and the lifecycle
/// forgot its id: the engine asks the store, whose stream for it exists.
#[tokio::test]
async fn a_forgotten_request_id_is_refused_by_the_store() {
    let policy = LifecyclePolicy { retention_h: 1, ..LifecyclePolicy::default() };
    let store = MemoryStore::new();
    let clock = ManualClock::new(t0());
    let engine = builder(policy).store(store.clone()).clock(clock.clone()).start().await.expect("starts");
    let submit = |id: &str, start_h: i64| {
        Command::Request(RequestCommand::Submit {
            spec: request(id, "c1-i1-s1", "home-care", Urgency::Normal, start_h, 3),
        })
    };
    engine.execute(submit("a", 4)).await.expect("submits");
    let cancel = RequestCommand::Cancel { request: rid("a"), reason: Text::new("not needed").expect("short") };
    engine.execute(Command::Request(cancel)).await.expect("cancels");
    // An hour on, the next event retires it; its id is refused from memory.
    clock.advance(Duration::hours(2));
    engine.execute(submit("b", 8)).await.expect("submits");
    let again = engine.execute(submit("a", 8)).await;
    assert!(matches!(again, Err(EngineError::Rejected(LifecycleError::Retired { .. }))), "{again:?}");
    // Past the memory of retired ids, the next event forgets it; the store still refuses it.
    let memory = sidan_core::lifecycle::MemoryPolicy::default().retired_id_memory();
    clock.advance(memory);
    let later = memory.num_hours() + 8;
    engine.execute(submit("c", later)).await.expect("submits");
    assert!(engine.query(|lc| lc.may_have_forgotten()).await.expect("queries"));
    let stored = store.len();
    let again = engine.execute(submit("a", later)).await;
    assert!(
        matches!(&again, Err(EngineError::Rejected(LifecycleError::Retired { request })) if *request == rid("a")),
        "{again:?}"
    );
    assert_eq!(store.len(), stored, "the refusal stored nothing");
    // A new id still goes through.
    engine.execute(submit("d", later)).await.expect("submits");
    engine.shutdown().await;
}

//! Idempotency keys through the engine (reliability.md, invariant 15): a
//! command sent again under its key has one effect and gets the first
//! receipt, across batches, restarts and lost replies; another command
//! under a used key is refused and changes nothing.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use chrono::{DateTime, Duration, Utc};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sidan_core::geo::StraightLine;
use sidan_core::id::{RequestId, TeamId, VolunteerId};
use sidan_core::lifecycle::{
    Command, DeclineReason, Event, LifecycleError, LifecyclePolicy, RaterRole, Recorded, RequestCommand, Score,
    ServiceMinutes, StreamId, Tags, Text, Volunteers,
};
use sidan_core::request::Urgency;
use sidan_core::testkit::{request, t0};
use sidan_core::time::TimeWindow;
use sidan_runtime::{
    Clock, CommandKey, Engine, EngineConfig, EngineError, KeyRecord, ManualClock, MemoryStore, Position, Receipt,
    Store, StoreError, Stored, StoredKey,
};
use sidan_store_tests::{key, offered, tiny_builder as builder};

fn rid(s: &str) -> RequestId {
    RequestId::new(s).expect("id")
}

fn submit(id: &str, now: DateTime<Utc>) -> Command {
    let mut spec = request(id, "c1-i1-s1", "home-care", Urgency::Normal, 2, 3);
    spec.window = TimeWindow::new(now + Duration::hours(2), now + Duration::hours(5)).expect("window");
    Command::Request(RequestCommand::Submit { spec })
}

fn config(retention: Duration) -> EngineConfig {
    EngineConfig { key_retention: retention, ..EngineConfig::default() }
}

async fn start<S: Store>(store: S, clock: &ManualClock, config: EngineConfig) -> Engine<StraightLine> {
    builder(LifecyclePolicy::default()).store(store).clock(clock.clone()).config(config).start().await.expect("starts")
}

fn commands(n: usize) -> usize {
    std::env::var("SIDAN_KEY_COMMANDS").ok().and_then(|v| v.parse().ok()).unwrap_or(n)
}

// ---------------------------------------------------------------------------
// Random commands, with and without retries
// ---------------------------------------------------------------------------

/// Makes random commands over the tiny city from what earlier receipts said
/// (requests and the teams offered them), so that two runs that get the
/// same answers make the same commands. Many are refused: that is part of it.
struct Workload {
    rng: ChaCha8Rng,
    requests: Vec<(RequestId, Vec<TeamId>)>,
    next: usize,
}

/// One step: maybe move the clock, then a command.
struct Step {
    advance: Option<Duration>,
    cmd: Command,
}

impl Workload {
    fn new(seed: u64) -> Self {
        Self { rng: ChaCha8Rng::seed_from_u64(seed), requests: Vec::new(), next: 0 }
    }

    fn step(&mut self, now: DateTime<Utc>) -> Step {
        let advance = self.rng.random_bool(0.15).then(|| Duration::seconds(self.rng.random_range(30..=40 * 60_i64)));
        let now = now + advance.unwrap_or_default();
        let roll = self.rng.random_range(0..100u32);
        if self.requests.is_empty() || roll < 25 {
            let id = format!("w{}", self.next);
            self.next += 1;
            let units = ["c1-i1-s1", "c1-i1-s2", "c1-i2-s1", "c2-i1-s1"];
            let services = ["home-care", "rescue", "haircut"];
            let urgencies = [Urgency::Normal, Urgency::Normal, Urgency::Urgent, Urgency::Emergency];
            let unit = units[self.rng.random_range(0..units.len())];
            let service = services[self.rng.random_range(0..services.len())];
            let urgency = urgencies[self.rng.random_range(0..urgencies.len())];
            let mut spec = request(&id, unit, service, urgency, 0, 3);
            let start = now + Duration::minutes(self.rng.random_range(30..=240));
            let len = Duration::hours(self.rng.random_range(1..=6));
            spec.window = TimeWindow::new(start, start + len).expect("window");
            self.requests.push((spec.id.clone(), Vec::new()));
            return Step { advance, cmd: Command::Request(RequestCommand::Submit { spec }) };
        }
        // Mostly recent requests.
        let n = self.requests.len();
        let i = n - 1 - self.rng.random_range(0..n.min(30));
        let (request, teams) = self.requests[i].clone();
        let team = if teams.is_empty() {
            TeamId::new("nobody").expect("id")
        } else {
            teams[self.rng.random_range(0..teams.len())].clone()
        };
        let cmd = match roll {
            25..=44 => Command::Request(RequestCommand::Accept { request, team }),
            45..=52 => Command::Request(RequestCommand::Decline { request, team, reason: DeclineReason::NoVolunteers }),
            53..=62 => Command::Request(RequestCommand::CheckIn { request, team }),
            63..=72 => Command::Request(RequestCommand::Complete {
                request,
                team,
                minutes: ServiceMinutes::new(self.rng.random_range(10..=180)).expect("in range"),
                volunteers: Volunteers::new(vec![VolunteerId::new("v-1").expect("id")]).expect("valid volunteers"),
            }),
            73..=79 => Command::Request(RequestCommand::Cancel {
                request,
                reason: Text::new("不需要了").expect("short text"),
            }),
            80..=87 => Command::Request(RequestCommand::Evaluate {
                request,
                role: RaterRole::Resident,
                score: Score::new(self.rng.random_range(1..=5)).expect("in range"),
                tags: Tags::default(),
                comment: None,
            }),
            88..=91 => Command::Request(RequestCommand::ReportNoShow { request, team }),
            _ => Command::Tick(StreamId::Request(request)),
        };
        Step { advance, cmd }
    }

    /// Learns the teams offered from a command's receipt.
    fn learn(&mut self, result: &Result<Receipt, EngineError>) {
        let Ok(receipt) = result else { return };
        for r in &receipt.events {
            if let (StreamId::Request(id), Event::Offered { team, .. }) = (&r.stream, &r.event)
                && let Some((_, teams)) = self.requests.iter_mut().rev().find(|(q, _)| q == id)
                && !teams.contains(team)
            {
                teams.push(team.clone());
            }
        }
    }
}

/// The answer a caller compares: equal receipts, or equal errors.
fn same(a: &Result<Receipt, EngineError>, b: &Result<Receipt, EngineError>) -> bool {
    a == b
}

/// A run without retries or keys: every command's answer, the log, the digest.
async fn plain_run(n: usize, seed: u64) -> (Vec<Result<Receipt, EngineError>>, Vec<Stored>, u64) {
    let store = MemoryStore::new();
    let clock = ManualClock::new(t0());
    let engine = start(store.clone(), &clock, config(Duration::days(365))).await;
    let mut work = Workload::new(seed);
    let mut answers = Vec::with_capacity(n);
    for _ in 0..n {
        let step = work.step(clock.now());
        if let Some(d) = step.advance {
            clock.advance(d);
            engine.settle().await.expect("settles");
        }
        let answer = engine.execute(step.cmd).await;
        work.learn(&answer);
        answers.push(answer);
    }
    engine.settle().await.expect("settles");
    let digest = engine.query(|lc| lc.digest()).await.expect("queries");
    engine.shutdown().await;
    (answers, store.all(), digest)
}

/// A few thousand random commands (`SIDAN_KEY_COMMANDS`, 3,000 by default),
/// each sent 1–5 times under its key: the retries right after the first, all
/// at once (so some share its batch), or later (after other commands and
/// after engine restarts, half of them aborts). Every answer equals the
/// first one for its key, and the first answers, the stored log and the
/// final digest equal a run of the same commands sent once without keys:
/// one effect each.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retried_commands_have_exactly_one_effect() {
    let n = commands(3000);
    let seed = 15;
    let (plain, plain_log, plain_digest) = plain_run(n, seed).await;

    let store = MemoryStore::new();
    let clock = ManualClock::new(t0());
    let mut engine = Arc::new(start(store.clone(), &clock, config(Duration::days(365))).await);
    let mut work = Workload::new(seed);
    let mut retry = ChaCha8Rng::seed_from_u64(seed + 1);
    // Later retries: the key, the command, the first answer.
    let mut later: VecDeque<(CommandKey, Command, Result<Receipt, EngineError>)> = VecDeque::new();
    let (mut retried, mut restarts, mut concurrent) = (0usize, 0usize, 0usize);
    for (i, unkeyed) in plain.iter().enumerate() {
        let step = work.step(clock.now());
        if let Some(d) = step.advance {
            clock.advance(d);
            engine.settle().await.expect("settles");
        }
        let k = key(&format!("user-{}", i % 7), &format!("cmd-{i}"));
        let uses = retry.random_range(1..=5usize);
        let first = if retry.random_bool(0.3) && uses > 1 {
            // Every use at once: each queued (polled once) before any answer is awaited.
            concurrent += 1;
            let mut futures: Vec<_> =
                (0..uses).map(|_| Box::pin(engine.execute_keyed(k.clone(), step.cmd.clone()))).collect();
            let mut early = Vec::new();
            for f in &mut futures {
                early.push(std::future::poll_fn(|cx| std::task::Poll::Ready(f.as_mut().poll(cx))).await);
            }
            let mut answers = Vec::new();
            for (f, early) in futures.into_iter().zip(early) {
                answers.push(match early {
                    std::task::Poll::Ready(answer) => answer,
                    std::task::Poll::Pending => f.await,
                });
            }
            retried += uses - 1;
            assert!(answers.iter().all(|a| same(a, &answers[0])), "command {i}: concurrent uses differ: {answers:?}");
            answers.swap_remove(0)
        } else {
            let first = engine.execute_keyed(k.clone(), step.cmd.clone()).await;
            for _ in 1..uses {
                // A refusal is decided again: retry it only on the same state, right away.
                if first.is_ok() && retry.random_bool(0.5) {
                    later.push_back((k.clone(), step.cmd.clone(), first.clone()));
                } else {
                    retried += 1;
                    let again = engine.execute_keyed(k.clone(), step.cmd.clone()).await;
                    assert!(same(&again, &first), "command {i}: a retry got {again:?}, the first use {first:?}");
                }
            }
            first
        };
        // The same answer as the run without keys (a command of no events
        // gets the head for a position when it is keyed, 0 when not).
        match (&first, unkeyed) {
            (Ok(a), Ok(b)) if a.events.is_empty() => assert!(b.events.is_empty(), "command {i}"),
            (a, b) => assert_eq!(a, b, "command {i}: keyed and plain answers differ"),
        }
        work.learn(&first);
        // Some of the later retries now.
        while !later.is_empty() && retry.random_bool(0.4) {
            let j = retry.random_range(0..later.len());
            let (k, cmd, want) = later.remove(j).expect("in range");
            retried += 1;
            assert_eq!(engine.execute_keyed(k.clone(), cmd).await, want, "{k}: a later retry");
        }
        if i % 700 == 699 {
            restarts += 1;
            let old = Arc::into_inner(engine).expect("no task holds the engine");
            if restarts % 2 == 0 {
                old.shutdown().await;
            } else {
                old.abort();
            }
            engine = Arc::new(start(store.clone(), &clock, config(Duration::days(365))).await);
        }
    }
    for (k, cmd, want) in later.drain(..) {
        retried += 1;
        assert_eq!(engine.execute_keyed(k.clone(), cmd).await, want, "{k}: a last retry");
    }
    engine.settle().await.expect("settles");
    let digest = engine.query(|lc| lc.digest()).await.expect("queries");
    assert_eq!(store.all(), plain_log, "the log equals the run without retries");
    assert_eq!(digest, plain_digest, "the state equals the run without retries");
    let ok = plain.iter().filter(|a| a.is_ok()).count();
    eprintln!(
        "{n} commands ({ok} stored, {} refused), {retried} retries, {concurrent} sent all at once, \
         {restarts} restarts, {} events",
        n - ok,
        plain_log.len()
    );
    assert!(ok > n / 4 && ok < n, "a mix of receipts ({ok}) and refusals");
    assert!(retried > n, "{retried} retries");
    assert!(restarts >= 1 || n < 700, "restarts: {restarts}");
    assert!(concurrent > n / 10, "{concurrent} commands sent all at once");
}

// ---------------------------------------------------------------------------
// One key at a time
// ---------------------------------------------------------------------------

/// The same key with another command is [`EngineError::KeyReused`], whether
/// the first use is stored, in the same batch or from before a restart, and
/// nothing changes: not the log, not the state; the first command's retry
/// still gets its receipt.
#[tokio::test]
async fn a_reused_key_with_another_command_changes_nothing() {
    let store = MemoryStore::new();
    let clock = ManualClock::new(t0());
    let engine = start(store.clone(), &clock, EngineConfig::default()).await;
    let k = key("resident-1", "order-1");
    let first = engine.execute_keyed(k.clone(), submit("r1", t0())).await.expect("submits");
    let log = store.all();
    let digest = engine.query(|lc| lc.digest()).await.expect("queries");
    let reused = Err(EngineError::KeyReused { key: k.clone() });
    let cancel =
        Command::Request(RequestCommand::Cancel { request: rid("r1"), reason: Text::new("no").expect("short text") });
    assert_eq!(engine.execute_keyed(k.clone(), cancel.clone()).await, reused);
    assert_eq!(engine.execute_keyed(k.clone(), submit("r2", t0())).await, reused, "another request");
    let mut changed = submit("r1", t0());
    if let Command::Request(RequestCommand::Submit { spec }) = &mut changed {
        spec.contact.detail = "7号楼3单元403".into();
    }
    assert_eq!(engine.execute_keyed(k.clone(), changed).await, reused, "one field differs");
    assert_eq!(store.all(), log, "nothing appended");
    assert_eq!(engine.query(|lc| lc.digest()).await.expect("queries"), digest, "nothing changed");
    assert_eq!(engine.execute_keyed(k.clone(), submit("r1", t0())).await, Ok(first.clone()));
    // The same id of another principal is another key: a command of its own.
    let other = engine.execute_keyed(key("resident-2", "order-1"), cancel.clone()).await.expect("cancels");
    assert!(other.events.iter().any(|r| matches!(r.event, Event::Cancelled { .. })));

    // In one batch: the first use wins, the other command is refused.
    let k2 = key("resident-1", "order-2");
    let (a, b) = tokio::join!(
        engine.execute_keyed(k2.clone(), submit("r3", t0())),
        engine.execute_keyed(k2.clone(), submit("r4", t0())),
    );
    assert!(a.is_ok(), "{a:?}");
    assert_eq!(b, Err(EngineError::KeyReused { key: k2.clone() }));
    assert!(store.load(&StreamId::Request(rid("r4"))).await.expect("loads").is_empty());

    // After a restart.
    engine.shutdown().await;
    let log = store.all();
    let engine = start(store.clone(), &clock, EngineConfig::default()).await;
    assert_eq!(engine.execute_keyed(k.clone(), cancel).await, reused);
    assert_eq!(engine.execute_keyed(k2.clone(), submit("r3", t0())).await, a);
    assert_eq!(engine.execute_keyed(k, submit("r1", t0())).await, Ok(first));
    assert_eq!(store.all(), log);
}

/// 64 tasks send one keyed submission at once, 40 rounds: all get the same
/// receipt, one submission is stored, and the store keeps the key once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_uses_of_one_key_have_one_effect() {
    let store = MemoryStore::new();
    let clock = ManualClock::new(t0());
    let engine = Arc::new(start(store.clone(), &clock, EngineConfig::default()).await);
    for round in 0..40 {
        let id = format!("c{round}");
        let k = key("kiosk-3", &format!("tap-{round}"));
        let tasks: Vec<_> = (0..64)
            .map(|_| {
                let (engine, k, cmd) = (Arc::clone(&engine), k.clone(), submit(&id, t0()));
                tokio::spawn(async move { engine.execute_keyed(k, cmd).await })
            })
            .collect();
        let mut receipts = Vec::new();
        for t in tasks {
            receipts.push(t.await.expect("task").expect("every use gets the receipt"));
        }
        assert!(receipts.iter().all(|r| *r == receipts[0]), "round {round}: one receipt for all");
        assert_eq!(receipts[0].events[0].event.name(), "submitted");
        let stream = store.load(&StreamId::Request(rid(&id))).await.expect("loads");
        assert_eq!(stream, receipts[0].events, "round {round}: one submission's events, stored once");
        let kept: Vec<StoredKey> =
            store.keys_since(t0()).await.expect("keys").into_iter().filter(|s| s.key == k).collect();
        assert_eq!(kept.len(), 1);
        assert_eq!((kept[0].count, kept[0].position), (receipts[0].events.len() as u64, receipts[0].position));
    }
}

/// 64 uses of one key queued together behind a blocked write, taken in
/// batches of 16: the first batch decides the first use and answers the
/// other 15 from it when stored, later batches answer from the stored key;
/// all 64 get one receipt, and one submission is stored. Each round
/// another key is also used with another command in the same batch:
/// `KeyReused`. When that first batch fails to store, every use in it gets
/// the store error, nothing is kept, and the next batch decides anew.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uses_of_one_key_in_one_batch_have_one_effect() {
    let store = TestStore::default();
    let clock = ManualClock::new(t0());
    let config = EngineConfig { max_batch: 16, ..EngineConfig::default() };
    let engine = Arc::new(start(store.clone(), &clock, config).await);
    for round in 0..20 {
        let id = format!("b{round}");
        let k = key("kiosk-3", &format!("tap-{round}"));
        let mut uses: Vec<(CommandKey, Command)> = (0..64).map(|_| (k.clone(), submit(&id, t0()))).collect();
        uses.insert(1, (k.clone(), submit(&format!("other-{round}"), t0())));
        let fail = round % 4 == 3;
        if fail {
            // The blocker's append stores; the next one, holding the first 16 jobs, fails.
            store.fail_nth.store(store.entered.load(Ordering::SeqCst) + 2, Ordering::SeqCst);
        }
        let blocker = submit(&format!("x{round}"), t0());
        let answers = queued_together(&engine, &store, blocker, uses).await;
        assert_eq!(answers[1], Err(EngineError::KeyReused { key: k.clone() }), "round {round}: another command");
        let answers: Vec<_> = answers.into_iter().enumerate().filter(|(i, _)| *i != 1).map(|(_, a)| a).collect();
        let stream = store.inner.load(&StreamId::Request(rid(&id))).await.expect("loads");
        if fail {
            // The first batch (the blocker's) held the first 15 uses and failed.
            let failed = answers.iter().take_while(|a| matches!(a, Err(EngineError::Store(_)))).count();
            assert_eq!(failed, 15, "round {round}: every use of the failed batch fails");
            let first = answers[15].clone().expect("decided anew in the next batch");
            assert!(answers[15..].iter().all(|a| *a == Ok(first.clone())), "round {round}");
            assert_eq!(stream, first.events, "round {round}: stored once");
        } else {
            let first = answers[0].clone().expect("the first use is stored");
            assert!(answers.iter().all(|a| *a == Ok(first.clone())), "round {round}: one receipt for all");
            assert_eq!(stream, first.events, "round {round}: stored once");
        }
    }
}

/// A refused command keeps no key: its retry is decided again, on the state
/// of its time, and from then on the key holds the receipt.
#[tokio::test]
async fn a_refusal_is_not_recorded() {
    let store = MemoryStore::new();
    let clock = ManualClock::new(t0());
    let engine = start(store.clone(), &clock, EngineConfig::default()).await;
    let k = key("station-9", "cancel-r1");
    let cancel = Command::Request(RequestCommand::Cancel {
        request: rid("r1"),
        reason: Text::new("家属已到").expect("short text"),
    });
    let refused = engine.execute_keyed(k.clone(), cancel.clone()).await;
    assert!(matches!(refused, Err(EngineError::Rejected(LifecycleError::UnknownRequest { .. }))), "{refused:?}");
    assert!(store.keys_since(t0()).await.expect("keys").is_empty(), "no key kept");
    engine.execute(submit("r1", t0())).await.expect("submits");
    let done = engine.execute_keyed(k.clone(), cancel.clone()).await.expect("decided again: cancels");
    assert!(done.events.iter().any(|r| matches!(r.event, Event::Cancelled { .. })));
    assert_eq!(engine.execute_keyed(k, cancel).await, Ok(done));
    assert_eq!(store.all().iter().filter(|s| matches!(s.record.event, Event::Cancelled { .. })).count(), 1);
}

/// Keys are honoured for the retention (an hour here) and forgotten after
/// it: in the store, in the running engine, and by an engine started later.
#[tokio::test]
async fn keys_are_forgotten_after_the_retention() {
    let store = MemoryStore::new();
    let clock = ManualClock::new(t0());
    let hour = config(Duration::hours(1));
    let engine = start(store.clone(), &clock, hour).await;
    let k = key("resident-1", "order-1");
    let first = engine.execute_keyed(k.clone(), submit("r1", t0())).await.expect("submits");
    clock.advance(Duration::minutes(50));
    assert_eq!(engine.execute_keyed(k.clone(), submit("r1", t0())).await, Ok(first.clone()), "still honoured");
    let cancel =
        Command::Request(RequestCommand::Cancel { request: rid("r1"), reason: Text::new("no").expect("short text") });
    assert_eq!(engine.execute_keyed(k.clone(), cancel.clone()).await, Err(EngineError::KeyReused { key: k.clone() }));
    // Past the retention and the purge interval (a 24th of it).
    clock.advance(Duration::minutes(14));
    let cancelled = engine.execute_keyed(k.clone(), cancel.clone()).await.expect("a new command under the old key");
    assert!(cancelled.events.iter().any(|r| matches!(r.event, Event::Cancelled { .. })));
    let kept = store.keys_since(DateTime::<Utc>::MIN_UTC).await.expect("keys");
    assert_eq!(kept.len(), 1, "the old key was purged, the new one kept");
    assert_eq!(kept[0].at, t0() + Duration::minutes(64));
    engine.shutdown().await;

    // A key older than the retention, still in the store, is not loaded at start.
    let k2 = key("resident-1", "order-2");
    let engine = start(store.clone(), &clock, hour).await;
    let r2 = engine.execute_keyed(k2.clone(), submit("r2", clock.now())).await.expect("submits");
    engine.shutdown().await;
    clock.advance(Duration::minutes(61));
    assert_eq!(store.keys_since(DateTime::<Utc>::MIN_UTC).await.expect("keys").len(), 2, "not purged yet");
    let engine = start(store.clone(), &clock, hour).await;
    let cancel2 =
        Command::Request(RequestCommand::Cancel { request: rid("r2"), reason: Text::new("no").expect("short text") });
    let again = engine.execute_keyed(k2, cancel2).await.expect("the old key is forgotten");
    assert_ne!(again, r2);
    assert!(store.keys_since(DateTime::<Utc>::MIN_UTC).await.expect("keys").iter().all(|k| k.at == clock.now()));
}

// ---------------------------------------------------------------------------
// Failures
// ---------------------------------------------------------------------------

/// A memory store for failures: keyed appends wait while `gate` is held
/// (counting in `entered` when they start); the next `lose` are stored but
/// answered `Unavailable` (the reply lost on the way); the one that enters
/// `fail_nth`-th is refused with `Unavailable` and not stored.
#[derive(Clone, Default)]
struct TestStore {
    inner: MemoryStore,
    gate: Arc<tokio::sync::Mutex<()>>,
    entered: Arc<AtomicUsize>,
    lose: Arc<AtomicUsize>,
    fail_nth: Arc<AtomicUsize>,
}

fn take_one(n: &AtomicUsize) -> bool {
    n.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |v| v.checked_sub(1)).is_ok()
}

impl Store for TestStore {
    async fn append(&self, batch: &[Recorded]) -> Result<Position, StoreError> {
        self.append_keyed(batch, &[]).await
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
    fn keeps_keys(&self) -> bool {
        true
    }
    async fn append_keyed(&self, batch: &[Recorded], keys: &[KeyRecord]) -> Result<Position, StoreError> {
        let nth = self.entered.fetch_add(1, Ordering::SeqCst) + 1;
        let _open = self.gate.lock().await;
        if nth == self.fail_nth.load(Ordering::SeqCst) {
            return Err(StoreError::Unavailable("disk full".into()));
        }
        let stored = self.inner.append_keyed(batch, keys).await?;
        if take_one(&self.lose) {
            return Err(StoreError::Unavailable("connection reset after commit".into()));
        }
        Ok(stored)
    }
    async fn keys_since(&self, since: DateTime<Utc>) -> Result<Vec<StoredKey>, StoreError> {
        self.inner.keys_since(since).await
    }
    async fn purge_keys(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        self.inner.purge_keys(before).await
    }
}

/// Holds the writer in the store with a blocking command, queues `uses`
/// keyed commands behind it (each polled once: in the queue), then lets
/// the writer go: they are taken together, in batches of `max_batch`.
async fn queued_together(
    engine: &Arc<Engine<StraightLine>>,
    store: &TestStore,
    blocker: Command,
    uses: Vec<(CommandKey, Command)>,
) -> Vec<Result<Receipt, EngineError>> {
    let gate = store.gate.lock().await;
    let before = store.entered.load(Ordering::SeqCst);
    let e = Arc::clone(engine);
    let blocked = tokio::spawn(async move { e.execute(blocker).await });
    while store.entered.load(Ordering::SeqCst) == before {
        tokio::task::yield_now().await;
    }
    let mut futures: Vec<_> = uses.into_iter().map(|(k, cmd)| Box::pin(engine.execute_keyed(k, cmd))).collect();
    for f in &mut futures {
        let polled = std::future::poll_fn(|cx| std::task::Poll::Ready(f.as_mut().poll(cx))).await;
        assert!(polled.is_pending(), "queued behind the blocker");
    }
    drop(gate);
    blocked.await.expect("task").expect("the blocker is stored");
    let mut answers = Vec::new();
    for f in futures {
        answers.push(f.await);
    }
    answers
}

/// The store keeps a batch but the engine hears `Unavailable`: the caller
/// gets the error (nothing is acknowledged), the engine reloads its state
/// and keys from the store, and the retry gets the stored receipt instead
/// of doing it twice.
#[tokio::test]
async fn a_lost_reply_is_answered_by_the_key_on_retry() {
    let store = TestStore::default();
    let clock = ManualClock::new(t0());
    let engine = start(store.clone(), &clock, EngineConfig::default()).await;
    let spec_cmd = submit("r1", t0());
    let team = offered(&engine.execute(spec_cmd).await.expect("submits").events)[0].clone();
    let accept = Command::Request(RequestCommand::Accept { request: rid("r1"), team });
    let k = key("team-app-4", "accept-r1");
    store.lose.store(1, Ordering::SeqCst);
    let before = store.inner.len();
    let lost = engine.execute_keyed(k.clone(), accept.clone()).await;
    assert!(matches!(lost, Err(EngineError::Store(StoreError::Unavailable(_)))), "{lost:?}");
    let log = store.inner.all();
    let kept: Vec<Recorded> = log[before..].iter().map(|s| s.record.clone()).collect();
    assert!(matches!(kept[0].event, Event::Accepted { .. }), "the store kept it");
    let retry = engine.execute_keyed(k.clone(), accept.clone()).await.expect("the retry gets the receipt");
    assert_eq!(retry.events, kept);
    assert_eq!(retry.position, log.last().expect("stored").position);
    assert_eq!(store.inner.all(), log, "nothing appended twice");
    // Without the key the same retry would be refused: the offer is taken.
    let plain = engine.execute(accept).await;
    assert!(matches!(plain, Err(EngineError::Rejected(LifecycleError::AlreadyTaken { .. }))), "{plain:?}");
}

/// Two engines on one store (as two instances on one database) race on a
/// key: the store lets one win; the other's batch fails with `KeyExists`,
/// it reloads, and its caller's retry gets the winner's receipt.
#[tokio::test]
async fn two_engines_racing_on_one_key_cannot_both_win() {
    let store = MemoryStore::new();
    let clock = ManualClock::new(t0());
    let one = start(store.clone(), &clock, EngineConfig::default()).await;
    let two = start(store.clone(), &clock, EngineConfig::default()).await;
    let k = key("resident-1", "order-1");
    // Each engine's own stream, so that only the key collides.
    let winner = one.execute_keyed(k.clone(), submit("r1", t0())).await.expect("submits");
    let log = store.all();
    let lost = two.execute_keyed(k.clone(), submit("r1", t0())).await;
    assert_eq!(lost, Err(EngineError::Store(StoreError::KeyExists { key: k.clone() })));
    assert_eq!(store.all(), log, "the loser wrote nothing");
    assert_eq!(two.execute_keyed(k.clone(), submit("r1", t0())).await, Ok(winner));
    assert_eq!(
        two.execute_keyed(k.clone(), submit("r9", t0())).await,
        Err(EngineError::KeyReused { key: k }),
        "the loser knows the key now"
    );
    let (d1, d2) = (one.query(|lc| lc.digest()).await, two.query(|lc| lc.digest()).await);
    assert_eq!(d1.expect("queries"), d2.expect("queries"), "the loser rebuilt from the store");
}

/// On a store that keeps no keys (the port's default) keyed commands are
/// refused at once with a clear error, and plain ones sent with them in one
/// batch are stored as usual.
#[tokio::test]
async fn a_store_without_keys_refuses_keyed_commands() {
    #[derive(Clone, Default)]
    struct Plain(MemoryStore);
    impl Store for Plain {
        async fn append(&self, batch: &[Recorded]) -> Result<Position, StoreError> {
            self.0.append(batch).await
        }
        async fn load(&self, stream: &StreamId) -> Result<Vec<Recorded>, StoreError> {
            self.0.load(stream).await
        }
        async fn read_from(&self, after: Position, limit: usize) -> Result<Vec<Stored>, StoreError> {
            self.0.read_from(after, limit).await
        }
        async fn unpublished(&self, limit: usize) -> Result<Vec<Stored>, StoreError> {
            self.0.unpublished(limit).await
        }
        async fn mark_published(&self, through: Position) -> Result<(), StoreError> {
            self.0.mark_published(through).await
        }
    }
    let store = Plain::default();
    let clock = ManualClock::new(t0());
    let engine = start(store.clone(), &clock, EngineConfig::default()).await;
    let (keyed, plain) =
        tokio::join!(engine.execute_keyed(key("a", "b"), submit("r1", t0())), engine.execute(submit("r2", t0())));
    assert_eq!(keyed, Err(EngineError::Store(StoreError::KeysUnsupported)));
    assert!(plain.is_ok(), "{plain:?}");
    assert!(store.0.load(&StreamId::Request(rid("r1"))).await.expect("loads").is_empty(), "r1 not stored");
    engine.execute(submit("r1", t0())).await.expect("a plain command works");
}

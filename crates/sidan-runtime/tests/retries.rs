//! The engine when its store or bus fails for a while: the relay retries
//! with backoff and logs every failure, a state that cannot be rebuilt after
//! a failed write refuses commands until it can, and no log line holds
//! personal data. Also the builder's check of the policy book.

use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use sidan_core::dispatch::Dispatcher;
use sidan_core::geo::StraightLine;
use sidan_core::lifecycle::{Command, Lifecycle, LifecyclePolicy, PolicyBook, Recorded, RequestCommand, StreamId};
use sidan_core::request::Urgency;
use sidan_core::testkit::{request, t0, tiny_city};
use sidan_runtime::{
    Bus, BusError, Engine, EngineBuilder, EngineError, Filter, ManualClock, MemoryBus, MemoryStore, Position,
    Published, Store, StoreError, Stored, Subscription,
};

fn builder() -> EngineBuilder<StraightLine> {
    let (city, index) = tiny_city();
    Engine::builder(Dispatcher::new(city, index))
}

fn submit(id: &str) -> Command {
    Command::Request(RequestCommand::Submit { spec: request(id, "c1-i1-s1", "home-care", Urgency::Normal, 2, 3) })
}

/// Everything logged while it lives, at every level, as text.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("not poisoned").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    /// Installs a subscriber for this thread (the tests run on a current-thread runtime).
    fn install(&self) -> tracing::subscriber::DefaultGuard {
        let writer = self.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::set_default(subscriber)
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().expect("not poisoned")).into_owned()
    }

    /// The warnings whose line contains `needle`.
    fn warnings(&self, needle: &str) -> usize {
        self.text().lines().filter(|l| l.contains(" WARN ") && l.contains(needle)).count()
    }
}

/// A bus that refuses the first `fail` publishes, then passes them on.
#[derive(Clone)]
struct FlakyBus {
    inner: MemoryBus,
    fail: Arc<AtomicUsize>,
    attempts: Arc<AtomicUsize>,
}

impl FlakyBus {
    fn failing(n: usize) -> Self {
        Self { inner: MemoryBus::new(), fail: Arc::new(AtomicUsize::new(n)), attempts: Arc::default() }
    }
}

impl Bus for FlakyBus {
    async fn publish(&self, batch: &[Published]) -> Result<(), BusError> {
        self.attempts.fetch_add(1, Ordering::SeqCst);
        if self.fail.load(Ordering::SeqCst) > 0 {
            self.fail.fetch_sub(1, Ordering::SeqCst);
            return Err(BusError::Unavailable("broker down".into()));
        }
        self.inner.publish(batch).await
    }
    async fn subscribe(&self, filter: Filter, buffer: usize) -> Result<Subscription, BusError> {
        self.inner.subscribe(filter, buffer).await
    }
}

/// Waits (in paused time) for the first message.
async fn first_message(sub: &mut Subscription) -> Published {
    tokio::time::timeout(std::time::Duration::from_secs(600), sub.next())
        .await
        .expect("published in time")
        .expect("not lagged")
        .expect("the bus is open")
}

#[tokio::test(start_paused = true)]
async fn the_relay_retries_a_failing_bus_and_logs_each_failure() {
    let log = Captured::default();
    let _guard = log.install();
    let bus = FlakyBus::failing(3);
    let mut sub = bus.subscribe(Filter::All, 1024).await.expect("subscribes");
    let store = MemoryStore::new();
    let engine =
        builder().store(store.clone()).bus(bus.clone()).clock(ManualClock::new(t0())).start().await.expect("starts");
    engine.execute(submit("r1")).await.expect("submits");
    let m = first_message(&mut sub).await;
    assert_eq!(m.id, "request/r1#1");
    assert_eq!(bus.attempts.load(Ordering::SeqCst), 4, "three failures, then the publish that passed");
    assert_eq!(log.warnings("outbox relay failed"), 3, "one warning per failure:\n{}", log.text());
    assert_eq!(log.warnings("gave up"), 0);
    engine.shutdown().await;
    assert!(store.unpublished(10).await.expect("reads").is_empty(), "the outbox is drained");
}

#[tokio::test(start_paused = true)]
async fn the_relay_gives_up_after_a_bounded_number_of_tries_then_comes_back() {
    let log = Captured::default();
    let _guard = log.install();
    // 1 + 8 retries fail twice over; the 21st attempt passes.
    let bus = FlakyBus::failing(20);
    let mut sub = bus.subscribe(Filter::All, 1024).await.expect("subscribes");
    let engine = builder().store(MemoryStore::new()).bus(bus.clone()).clock(ManualClock::new(t0())).start().await;
    let engine = engine.expect("starts");
    engine.execute(submit("r1")).await.expect("submits: the store has it, whatever the bus does");
    let m = first_message(&mut sub).await;
    assert_eq!(m.id, "request/r1#1");
    assert_eq!(bus.attempts.load(Ordering::SeqCst), 21);
    assert_eq!(log.warnings("gave up for now"), 2, "{}", log.text());
    assert_eq!(log.warnings("outbox relay failed"), 18, "a warning for each failure that is retried");
    engine.shutdown().await;
}

/// A store whose appends and reads can be made to fail.
#[derive(Clone, Default)]
struct FaultyStore {
    inner: MemoryStore,
    fail_appends: Arc<AtomicUsize>,
    fail_reads: Arc<AtomicUsize>,
}

fn take(n: &AtomicUsize) -> bool {
    n.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |v| v.checked_sub(1)).is_ok()
}

impl Store for FaultyStore {
    async fn append(&self, batch: &[Recorded]) -> Result<Position, StoreError> {
        if take(&self.fail_appends) {
            return Err(StoreError::Unavailable("disk full".into()));
        }
        self.inner.append(batch).await
    }
    async fn load(&self, stream: &StreamId) -> Result<Vec<Recorded>, StoreError> {
        self.inner.load(stream).await
    }
    async fn read_from(&self, after: Position, limit: usize) -> Result<Vec<Stored>, StoreError> {
        if take(&self.fail_reads) {
            return Err(StoreError::Unavailable("I/O error".into()));
        }
        self.inner.read_from(after, limit).await
    }
    async fn unpublished(&self, limit: usize) -> Result<Vec<Stored>, StoreError> {
        self.inner.unpublished(limit).await
    }
    async fn mark_published(&self, through: Position) -> Result<(), StoreError> {
        self.inner.mark_published(through).await
    }
}

#[tokio::test(start_paused = true)]
async fn a_state_that_cannot_be_rebuilt_refuses_commands_until_it_can() {
    let log = Captured::default();
    let _guard = log.install();
    let store = FaultyStore::default();
    let engine = builder().store(store.clone()).clock(ManualClock::new(t0())).start().await.expect("starts");
    engine.execute(submit("r1")).await.expect("submits");
    // The append fails, and so does every read of the rebuild and its retries.
    store.fail_appends.store(1, Ordering::SeqCst);
    store.fail_reads.store(1_000, Ordering::SeqCst);
    let failed = engine.execute(submit("r2")).await;
    assert_eq!(failed, Err(EngineError::Store(StoreError::Unavailable("disk full".into()))));
    assert!(log.warnings("cannot be rebuilt") >= 1, "{}", log.text());
    // Still down: commands and queries are refused rather than decided on a
    // state that may hold r2's unstored events.
    let refused = engine.execute(submit("r3")).await;
    assert!(matches!(refused, Err(EngineError::Store(StoreError::Unavailable(_)))), "{refused:?}");
    let query = engine.query(|lc| lc.applied()).await;
    assert!(matches!(query, Err(EngineError::Store(_))), "{query:?}");
    // The store comes back: the state is rebuilt from what is stored, r2 was never stored,
    // so it can be submitted again.
    store.fail_reads.store(0, Ordering::SeqCst);
    engine.execute(submit("r2")).await.expect("r2 was not stored, so it is new");
    let stored = store.inner.all();
    let mut fold = Lifecycle::new(Dispatcher::new(tiny_city().0, tiny_city().1), PolicyBook::default());
    for s in &stored {
        fold.apply(&s.record).expect("the log replays");
    }
    assert_eq!(engine.query(|lc| lc.digest()).await.expect("queries"), fold.digest(), "state == fold of the log");
    assert!(stored.iter().all(|s| s.record.stream.to_string() != "request/r3"), "r3 was refused, not stored");
    engine.shutdown().await;
}

#[tokio::test]
async fn no_log_line_holds_personal_data() {
    let log = Captured::default();
    let _guard = log.install();
    let store = FaultyStore::default();
    let bus = FlakyBus::failing(2);
    let engine = builder().store(store.clone()).bus(bus).clock(ManualClock::new(t0())).start().await.expect("starts");
    engine.execute(submit("r1")).await.expect("submits");
    store.fail_appends.store(1, Ordering::SeqCst);
    let _ = engine.execute(submit("r2")).await;
    engine.execute(submit("r3")).await.expect("submits");
    engine.shutdown().await;
    let text = log.text();
    assert!(text.contains("engine started") && text.contains("append failed"), "the log is captured:\n{text}");
    for secret in ["13812345678", "张桂兰", "7号楼3单元402", "水月寺"] {
        assert!(!text.contains(secret), "a log line holds {secret}:\n{text}");
    }
}

#[tokio::test]
async fn a_policy_book_of_another_unit_tree_is_refused_at_start() {
    let policy = LifecyclePolicy::default();
    let book = PolicyBook::from_resolved(policy, vec![policy; 3]).expect("valid policies");
    let started = builder().policies(book).store(MemoryStore::new()).clock(ManualClock::new(t0())).start().await;
    let units = tiny_city().0.units().len();
    assert!(
        matches!(started, Err(EngineError::PoliciesMismatch { units: u, entries: 3 }) if u == units),
        "{:?}",
        started.err()
    );
    let book = PolicyBook::from_resolved(policy, vec![policy; units]).expect("valid policies");
    let started = builder().policies(book).store(MemoryStore::new()).clock(ManualClock::new(t0())).start().await;
    started.expect("a book with an entry per unit fits").shutdown().await;
}

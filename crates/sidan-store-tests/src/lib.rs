//! One conformance suite for every [`Store`] adapter: the in-memory store,
//! SQLite and PostgreSQL run the same checks.
//!
//! An adapter's tests implement [`Harness`] (how to make an empty store, and
//! how to open the same storage again) and expand [`conformance_tests!`],
//! which writes one `#[tokio::test]` per check. Each check is also a plain
//! `pub async fn` here, for a test that wants to call it by hand.
//!
//! The checks, after reliability.md's invariants 11, 12, 14, 15 and 16:
//!
//! - [`append_load_and_read_from`]: positions, order, `load`, `load_from`, `read_from`.
//! - [`seqs_gapless_and_ids_unique`]: many random batches over many streams.
//! - [`conflicts_write_nothing`]: a stale expected version refuses the whole batch.
//! - [`bad_batches_write_nothing`]: gaps, seq 0 and repeats are refused before any write.
//! - [`outbox_marks_are_monotonic`]: `unpublished` / `mark_published`, clamped, kept across a reopen.
//! - [`concurrent_appenders_one_winner`]: racing appends of one seq on separate handles.
//! - [`concurrent_streams_all_land`]: racing appends to different streams all land, gapless.
//! - [`reopen_keeps_everything`]: the log, the outbox mark and snapshots survive a reopen.
//! - [`snapshots_round_trip`]: the latest snapshot per name, or none if the store keeps none.
//! - [`engine_replay_matches_live`]: starting an engine on the stored log gives the live digest.
//! - [`engine_accept_race`]: 32 concurrent accepts of one offer, one winner, `SIDAN_RACE_ROUNDS` rounds (500).
//! - [`keys_are_atomic_with_events`]: command keys are kept with their batch, or not at all.
//! - [`duplicate_keys_write_nothing`]: a key already kept (or twice in one append) refuses the whole append.
//! - [`concurrent_keyed_appenders_one_winner`]: racing appends of one key on separate handles.
//! - [`keys_survive_reopen`]: keys are still there, and still refuse a reuse, after a reopen.
//! - [`keys_since_filters_and_purges`]: `keys_since` and `purge_keys` by time, to the nanosecond.
//! - [`engine_keys_survive_restart`]: an engine restarted on the reopened store answers a retry with the first receipt.
//!
//! [`pg`] holds the PostgreSQL scaffolding (a fresh schema per test, and the
//! `SIDAN_REQUIRE_SERVICES` rule); [`TempDir`] a scratch folder for files.

use std::collections::{BTreeMap, HashSet};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::Duration;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sidan_core::dispatch::Dispatcher;
use sidan_core::geo::StraightLine;
use sidan_core::id::{RequestId, TeamId, UnitId};
use sidan_core::lifecycle::{
    Command, DeclineReason, Event, Lifecycle, LifecycleError, LifecyclePolicy, PolicyBook, Recorded, RequestCommand,
    StreamId, Text,
};
use sidan_core::request::Urgency;
use sidan_core::testkit::{request, t0, tiny_city};
use sidan_runtime::store::Snapshot;
use sidan_runtime::{
    Bus, Engine, EngineBuilder, EngineError, Filter, ManualClock, MemoryBus, MemoryStore, Position, Store, StoreError,
    Stored,
};

mod keys;
pub mod pg;

pub use keys::{
    all_keys, concurrent_keyed_appenders_one_winner, duplicate_keys_write_nothing, engine_keys_survive_restart, kept,
    key, key_record, keys_are_atomic_with_events, keys_since_filters_and_purges, keys_survive_reopen,
};

/// How a test makes stores of one adapter.
pub trait Harness {
    /// The adapter. Clones share one storage and one connection set.
    type Store: Store + Clone;

    /// Whether the store keeps its log when every handle is dropped and it is opened again.
    fn durable(&self) -> bool;

    /// A new, empty store.
    fn fresh(&mut self) -> impl Future<Output = Self::Store>;

    /// The storage of the last [`fresh`](Harness::fresh) store, opened again as a
    /// separate handle (its own connections or writer) while the others may still be open.
    fn reopen(&mut self) -> impl Future<Output = Self::Store>;
}

/// The [`Harness`] of [`MemoryStore`]: a reopen is a clone.
#[derive(Debug, Default)]
pub struct MemoryHarness {
    last: MemoryStore,
}

impl Harness for MemoryHarness {
    type Store = MemoryStore;

    fn durable(&self) -> bool {
        false
    }

    async fn fresh(&mut self) -> MemoryStore {
        self.last = MemoryStore::new();
        self.last.clone()
    }

    async fn reopen(&mut self) -> MemoryStore {
        self.last.clone()
    }
}

/// Writes one `#[tokio::test]` per conformance check. `$make` is an async
/// function taking the test's name and returning `Option<impl Harness>`;
/// `None` skips the test (say, PostgreSQL is unreachable and not required).
#[macro_export]
macro_rules! conformance_tests {
    ($make:path) => {
        $crate::conformance_tests!(@one $make, append_load_and_read_from);
        $crate::conformance_tests!(@one $make, seqs_gapless_and_ids_unique);
        $crate::conformance_tests!(@one $make, conflicts_write_nothing);
        $crate::conformance_tests!(@one $make, bad_batches_write_nothing);
        $crate::conformance_tests!(@one $make, outbox_marks_are_monotonic);
        $crate::conformance_tests!(@one $make, concurrent_appenders_one_winner);
        $crate::conformance_tests!(@one $make, concurrent_streams_all_land);
        $crate::conformance_tests!(@one $make, reopen_keeps_everything);
        $crate::conformance_tests!(@one $make, snapshots_round_trip);
        $crate::conformance_tests!(@one $make, engine_replay_matches_live);
        $crate::conformance_tests!(@one $make, engine_accept_race);
        $crate::conformance_tests!(@one $make, keys_are_atomic_with_events);
        $crate::conformance_tests!(@one $make, duplicate_keys_write_nothing);
        $crate::conformance_tests!(@one $make, concurrent_keyed_appenders_one_winner);
        $crate::conformance_tests!(@one $make, keys_survive_reopen);
        $crate::conformance_tests!(@one $make, keys_since_filters_and_purges);
        $crate::conformance_tests!(@one $make, engine_keys_survive_restart);
    };
    (@one $make:path, $check:ident) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $check() {
            if let Some(mut harness) = $make(stringify!($check)).await {
                $crate::$check(&mut harness).await;
            }
        }
    };
}

// ---------------------------------------------------------------------------
// Test data
// ---------------------------------------------------------------------------

/// The stream `request/<name>`.
///
/// # Panics
/// If `name` is not a valid request id.
pub fn stream(name: &str) -> StreamId {
    StreamId::Request(RequestId::new(name).expect("test stream names are valid ids"))
}

/// A stored-looking event: `seq` 1 is a submission (with a contact in clear,
/// in Chinese), later ones cycle through a cancellation, an expiry and a
/// closing. `tag` goes into the time (to the nanosecond) and the text, so
/// two writers' events for one seq differ.
///
/// # Panics
/// Never for the test city's ids.
pub fn event(stream: &StreamId, seq: u64, tag: u64) -> Recorded {
    let at = t0() + Duration::nanoseconds((seq * 1_000_003 + tag) as i64);
    let event = match seq % 4 {
        1 => {
            let id = match stream {
                StreamId::Request(r) => r.to_string(),
                StreamId::Pairing(p) => p.to_string(),
                StreamId::Team(t) => t.to_string(),
                StreamId::Ledger => "ledger".to_owned(),
            };
            let spec = request(&id, "c1-i1-s1", "home-care", Urgency::Normal, 2, 3);
            Event::Submitted {
                spec: Arc::new(spec),
                scope: UnitId::new("c1-i1-s1").expect("valid unit"),
                pairing: None,
            }
        }
        2 => Event::Cancelled { reason: Text::new(format!("取消 {tag}")).expect("short text") },
        3 => Event::Expired,
        _ => Event::Closed,
    };
    Recorded { stream: stream.clone(), seq, at, event }
}

/// Events `from..=to` of a stream.
pub fn events(stream: &StreamId, from: u64, to: u64, tag: u64) -> Vec<Recorded> {
    (from..=to).map(|seq| event(stream, seq, tag)).collect()
}

/// The whole log, read in pages of 1,000.
///
/// # Panics
/// If the store fails.
pub async fn read_all<S: Store>(store: &S) -> Vec<Stored> {
    let mut out: Vec<Stored> = Vec::new();
    loop {
        let after = out.last().map_or(Position(0), |s| s.position);
        let page = store.read_from(after, 1000).await.expect("read_from");
        if page.is_empty() {
            return out;
        }
        out.extend(page);
    }
}

/// Checks the structure of a whole log: positions 1..=n, per-stream seqs
/// 1..=v, unique event ids. Returns each stream's version.
///
/// # Panics
/// On the first violation.
pub fn check_log_shape(log: &[Stored]) -> BTreeMap<StreamId, u64> {
    let mut versions: BTreeMap<StreamId, u64> = BTreeMap::new();
    let mut ids: HashSet<String> = HashSet::with_capacity(log.len());
    for (i, s) in log.iter().enumerate() {
        assert_eq!(s.position, Position(i as u64 + 1), "positions are gapless from 1");
        let v = versions.entry(s.record.stream.clone()).or_insert(0);
        assert_eq!(s.record.seq, *v + 1, "{}: seqs are gapless from 1", s.record.stream);
        *v = s.record.seq;
        assert!(ids.insert(s.record.id()), "event id {} is unique", s.record.id());
    }
    versions
}

/// An engine builder over the tiny test city with `policy` (name the store, then start it).
///
/// # Panics
/// If the policy is invalid.
pub fn tiny_builder(policy: LifecyclePolicy) -> EngineBuilder<StraightLine> {
    let (city, index) = tiny_city();
    Engine::builder(Dispatcher::new(city, index)).policies(PolicyBook::uniform(policy).expect("valid policy"))
}

/// A fresh lifecycle over the tiny test city with `policy`, for a plain fold of a log.
///
/// # Panics
/// If the policy is invalid.
pub fn tiny_lifecycle(policy: LifecyclePolicy) -> Lifecycle<StraightLine> {
    let (city, index) = tiny_city();
    Lifecycle::new(Dispatcher::new(city, index), PolicyBook::uniform(policy).expect("valid policy"))
}

/// The teams offered in a list of events.
pub fn offered(events: &[Recorded]) -> Vec<TeamId> {
    events
        .iter()
        .filter_map(|r| match &r.event {
            Event::Offered { team, .. } => Some(team.clone()),
            _ => None,
        })
        .collect()
}

pub(crate) fn rid(s: &str) -> RequestId {
    RequestId::new(s).expect("valid id")
}

/// The race rounds: `SIDAN_RACE_ROUNDS`, or `default`.
pub fn race_rounds(default: usize) -> usize {
    std::env::var("SIDAN_RACE_ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

// ---------------------------------------------------------------------------
// The checks
// ---------------------------------------------------------------------------

/// Appends return the last position; `load`, `load_from` and `read_from`
/// give back exactly what was appended, in order; an empty batch writes nothing.
pub async fn append_load_and_read_from<H: Harness>(h: &mut H) {
    let store = h.fresh().await;
    let (a, b, c) = (stream("a"), stream("b"), stream("c"));
    assert_eq!(store.append(&[]).await, Ok(Position(0)), "an empty batch on an empty store");
    assert!(read_all(&store).await.is_empty());
    let first = vec![event(&a, 1, 0), event(&a, 2, 0), event(&b, 1, 0)];
    assert_eq!(store.append(&first).await, Ok(Position(3)));
    // Streams may interleave inside a batch as long as each is contiguous.
    let second = vec![event(&c, 1, 0), event(&a, 3, 0), event(&b, 2, 0), event(&a, 4, 0)];
    assert_eq!(store.append(&second).await, Ok(Position(7)));
    assert_eq!(store.append(&[]).await, Ok(Position(7)), "an empty batch returns the head");

    let all: Vec<Recorded> = first.iter().chain(&second).cloned().collect();
    let log = read_all(&store).await;
    assert_eq!(log.iter().map(|s| s.position.0).collect::<Vec<_>>(), (1..=7).collect::<Vec<_>>());
    assert_eq!(log.iter().map(|s| s.record.clone()).collect::<Vec<_>>(), all, "records round-trip exactly");

    assert_eq!(store.load(&a).await.expect("load"), events(&a, 1, 4, 0));
    assert_eq!(store.load(&b).await.expect("load"), events(&b, 1, 2, 0));
    assert_eq!(store.load(&stream("nobody")).await.expect("load"), Vec::<Recorded>::new());
    assert_eq!(store.load_from(&a, 2).await.expect("load_from"), events(&a, 3, 4, 0));
    assert_eq!(store.load_from(&a, 4).await.expect("load_from"), Vec::<Recorded>::new());

    let page = store.read_from(Position(2), 3).await.expect("read_from");
    assert_eq!(page.iter().map(|s| s.position.0).collect::<Vec<_>>(), [3, 4, 5]);
    assert_eq!(page[0].record, all[2]);
    assert!(store.read_from(Position(7), 10).await.expect("read_from").is_empty());
    assert!(store.read_from(Position(100), 10).await.expect("read_from").is_empty());
    assert!(store.read_from(Position(0), 0).await.expect("read_from").is_empty());
}

/// Random batches over twenty streams: positions and seqs stay gapless,
/// ids unique, and every stream's `load` is its part of the log.
pub async fn seqs_gapless_and_ids_unique<H: Harness>(h: &mut H) {
    let store = h.fresh().await;
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let streams: Vec<StreamId> = (0..20).map(|i| stream(&format!("s{i}"))).collect();
    let mut versions = vec![0u64; streams.len()];
    let mut head = 0u64;
    for _ in 0..60 {
        let mut batch = Vec::new();
        for _ in 0..rng.random_range(1..=3usize) {
            let i = rng.random_range(0..streams.len());
            if batch.iter().any(|r: &Recorded| r.stream == streams[i]) {
                continue;
            }
            let n = rng.random_range(1..=4u64);
            batch.extend(events(&streams[i], versions[i] + 1, versions[i] + n, 0));
            versions[i] += n;
        }
        head += batch.len() as u64;
        assert_eq!(store.append(&batch).await, Ok(Position(head)));
    }
    let log = read_all(&store).await;
    assert_eq!(log.len() as u64, head);
    let got = check_log_shape(&log);
    for (i, s) in streams.iter().enumerate() {
        assert_eq!(got.get(s).copied().unwrap_or(0), versions[i], "{s}: version");
        let part: Vec<Recorded> = log.iter().filter(|x| &x.record.stream == s).map(|x| x.record.clone()).collect();
        assert_eq!(store.load(s).await.expect("load"), part, "{s}: load is its part of the log");
    }
}

/// A stale or future expected version refuses the whole batch with
/// [`StoreError::Conflict`], naming the stream and both versions, and writes
/// nothing: not the other streams of the batch, not a position.
pub async fn conflicts_write_nothing<H: Harness>(h: &mut H) {
    let store = h.fresh().await;
    let (a, b, z) = (stream("a"), stream("b"), stream("z"));
    store.append(&[event(&a, 1, 0), event(&a, 2, 0), event(&b, 1, 0)]).await.expect("append");
    let before = read_all(&store).await;

    let conflict = |stream: &StreamId, expected: u64, actual: u64| {
        Err::<Position, _>(StoreError::Conflict { stream: stream.clone(), expected, actual })
    };
    assert_eq!(store.append(&[event(&a, 2, 9)]).await, conflict(&a, 1, 2), "a stale seq");
    assert_eq!(store.append(&[event(&a, 1, 9)]).await, conflict(&a, 0, 2), "seq 1 again");
    assert_eq!(store.append(&[event(&a, 5, 9)]).await, conflict(&a, 4, 2), "a seq from the future");
    assert_eq!(store.append(&[event(&z, 2, 9)]).await, conflict(&z, 1, 0), "a new stream must start at 1");
    // The first stream of the batch is fine, the second is not: neither is written.
    let mixed = vec![event(&b, 2, 9), event(&b, 3, 9), event(&a, 2, 9)];
    assert_eq!(store.append(&mixed).await, conflict(&a, 1, 2));
    let mixed = vec![event(&z, 1, 9), event(&b, 1, 9)];
    assert_eq!(store.append(&mixed).await, conflict(&b, 0, 1));

    assert_eq!(read_all(&store).await, before, "nothing was written");
    assert_eq!(store.load(&b).await.expect("load"), events(&b, 1, 1, 0));
    assert!(store.load(&z).await.expect("load").is_empty());
    // The next good append takes the next position: refusals leave no hole.
    assert_eq!(store.append(&[event(&b, 2, 1), event(&z, 1, 1)]).await, Ok(Position(5)));
    check_log_shape(&read_all(&store).await);
}

/// Batches whose seqs are not contiguous per stream are refused with
/// [`StoreError::BadBatch`] before anything is written.
pub async fn bad_batches_write_nothing<H: Harness>(h: &mut H) {
    let store = h.fresh().await;
    let (a, x) = (stream("a"), stream("x"));
    store.append(&events(&a, 1, 2, 0)).await.expect("append");
    let before = read_all(&store).await;
    let bad = |stream: &StreamId, seq: u64| Err::<Position, _>(StoreError::BadBatch { stream: stream.clone(), seq });
    assert_eq!(store.append(&[event(&a, 3, 0), event(&a, 5, 0)]).await, bad(&a, 5), "a gap");
    assert_eq!(store.append(&[event(&a, 3, 0), event(&a, 3, 1)]).await, bad(&a, 3), "a repeat");
    assert_eq!(store.append(&[event(&a, 4, 0), event(&a, 3, 0)]).await, bad(&a, 3), "backwards");
    assert_eq!(store.append(&[event(&x, 0, 0)]).await, bad(&x, 0), "seq 0");
    assert_eq!(
        store.append(&[event(&x, 1, 0), event(&a, 3, 0), event(&x, 3, 0)]).await,
        bad(&x, 3),
        "a gap after another stream"
    );
    assert_eq!(read_all(&store).await, before, "nothing was written");
    assert_eq!(store.append(&[event(&a, 3, 0)]).await, Ok(Position(3)));
}

/// The outbox: `unpublished` is the log after the mark, in order; the mark
/// never moves back nor past the head; durable stores keep it across a reopen.
pub async fn outbox_marks_are_monotonic<H: Harness>(h: &mut H) {
    let store = h.fresh().await;
    assert!(store.unpublished(10).await.expect("unpublished").is_empty());
    store.mark_published(Position(3)).await.expect("mark on an empty log");
    let s = stream("o");
    store.append(&events(&s, 1, 10, 0)).await.expect("append");
    assert_eq!(
        store.unpublished(100).await.expect("unpublished"),
        read_all(&store).await,
        "a mark past the head of an empty log moved nothing"
    );
    let positions = |v: Vec<Stored>| v.iter().map(|s| s.position.0).collect::<Vec<_>>();
    assert_eq!(positions(store.unpublished(3).await.expect("unpublished")), [1, 2, 3]);
    store.mark_published(Position(4)).await.expect("mark");
    assert_eq!(positions(store.unpublished(2).await.expect("unpublished")), [5, 6]);
    store.mark_published(Position(2)).await.expect("mark back");
    assert_eq!(positions(store.unpublished(2).await.expect("unpublished")), [5, 6], "the mark never moves back");
    store.mark_published(Position(1000)).await.expect("mark past the head");
    assert!(store.unpublished(100).await.expect("unpublished").is_empty());
    store.append(&events(&s, 11, 12, 0)).await.expect("append");
    assert_eq!(
        positions(store.unpublished(100).await.expect("unpublished")),
        [11, 12],
        "a mark past the head stops at the head"
    );
    store.mark_published(Position(11)).await.expect("mark");
    if h.durable() {
        drop(store);
        let again = h.reopen().await;
        assert_eq!(positions(again.unpublished(100).await.expect("unpublished")), [12], "the mark survives a reopen");
    }
}

/// Eight writers on four separate handles race to append the same seq of one
/// stream, 30 rounds: exactly one wins each round, the others get
/// [`StoreError::Conflict`], and the stored event is the winner's.
pub async fn concurrent_appenders_one_winner<H: Harness>(h: &mut H) {
    let first = h.fresh().await;
    let mut handles = vec![first];
    for _ in 0..3 {
        handles.push(h.reopen().await);
    }
    let s = stream("race");
    for round in 0..30u64 {
        let tasks: Vec<_> = (0..8u64)
            .map(|w| {
                let store = handles[w as usize % handles.len()].clone();
                let rec = event(&s, round + 1, w);
                tokio::spawn(async move { (w, store.append(&[rec]).await) })
            })
            .collect();
        let mut winners = Vec::new();
        for t in tasks {
            match t.await.expect("task") {
                (w, Ok(_)) => winners.push(w),
                (_, Err(StoreError::Conflict { stream, expected, actual })) => {
                    assert_eq!((stream, expected, actual), (s.clone(), round, round + 1), "round {round}");
                }
                (_, Err(e)) => panic!("round {round}: unexpected error {e}"),
            }
        }
        assert_eq!(winners.len(), 1, "round {round}: exactly one winner, got {winners:?}");
        let stored = handles[0].load_from(&s, round).await.expect("load_from");
        assert_eq!(stored, vec![event(&s, round + 1, winners[0])], "round {round}: the winner's event is stored");
    }
    let log = read_all(&handles[0]).await;
    assert_eq!(log.len(), 30);
    check_log_shape(&log);
}

/// Eight writers on four handles each append 25 batches to their own stream
/// at once: every append lands, positions stay gapless and each writer's
/// positions increase.
pub async fn concurrent_streams_all_land<H: Harness>(h: &mut H) {
    let first = h.fresh().await;
    let mut handles = vec![first];
    for _ in 0..3 {
        handles.push(h.reopen().await);
    }
    let tasks: Vec<_> = (0..8u64)
        .map(|w| {
            let store = handles[w as usize % handles.len()].clone();
            tokio::spawn(async move {
                let s = stream(&format!("w{w}"));
                let mut last = Position(0);
                let mut version = 0;
                for i in 0..25u64 {
                    let n = 1 + (i + w) % 3;
                    let p = store.append(&events(&s, version + 1, version + n, w)).await.expect("append");
                    assert!(p > last, "positions increase for one writer");
                    last = p;
                    version += n;
                }
                (s, version)
            })
        })
        .collect();
    let mut expected = BTreeMap::new();
    for t in tasks {
        let (s, v) = t.await.expect("task");
        expected.insert(s, v);
    }
    let log = read_all(&handles[0]).await;
    assert_eq!(check_log_shape(&log), expected);
}

/// Durable stores: the log, each stream's version, the outbox mark and the
/// snapshots survive dropping every handle and opening the storage again.
pub async fn reopen_keeps_everything<H: Harness>(h: &mut H) {
    let store = h.fresh().await;
    let (a, b) = (stream("a"), stream("b"));
    store.append(&[event(&a, 1, 0), event(&b, 1, 0), event(&a, 2, 0)]).await.expect("append");
    store.append(&events(&b, 2, 5, 0)).await.expect("append");
    store.mark_published(Position(2)).await.expect("mark");
    let snap = Snapshot { name: "lifecycle".into(), position: Position(3), data: vec![0, 1, 2, 255] };
    let kept = store.save_snapshot(&snap).await.expect("save_snapshot");
    let log = read_all(&store).await;
    let outbox = store.unpublished(100).await.expect("unpublished");
    drop(store);
    let again = h.reopen().await;
    assert_eq!(read_all(&again).await, log, "the log survives");
    assert_eq!(again.unpublished(100).await.expect("unpublished"), outbox, "the outbox survives");
    if kept {
        assert_eq!(again.load_snapshot("lifecycle").await.expect("load_snapshot"), Some(snap));
    }
    // Versions survive: a stale append is still a conflict, the next one lands.
    assert_eq!(
        again.append(&[event(&b, 5, 1)]).await,
        Err(StoreError::Conflict { stream: b.clone(), expected: 4, actual: 5 })
    );
    assert_eq!(again.append(&[event(&b, 6, 1)]).await, Ok(Position(8)));
    if h.durable() {
        drop(again);
        let third = h.reopen().await;
        assert_eq!(read_all(&third).await.len(), 8);
    }
}

/// Snapshots: the latest per name wins, names are independent, an unknown
/// name has none; a store that keeps none says so and returns none.
pub async fn snapshots_round_trip<H: Harness>(h: &mut H) {
    let store = h.fresh().await;
    assert_eq!(store.load_snapshot("lifecycle").await.expect("load_snapshot"), None);
    store.append(&events(&stream("a"), 1, 4, 0)).await.expect("append");
    let one = Snapshot { name: "lifecycle".into(), position: Position(2), data: b"first".to_vec() };
    let two = Snapshot { name: "lifecycle".into(), position: Position(4), data: vec![7; 100_000] };
    let other = Snapshot { name: "ledger".into(), position: Position(1), data: Vec::new() };
    let kept = store.save_snapshot(&one).await.expect("save_snapshot");
    assert_eq!(kept, store.keeps_snapshots(), "save_snapshot's answer and keeps_snapshots agree");
    if !kept {
        assert_eq!(store.load_snapshot("lifecycle").await.expect("load_snapshot"), None);
        return;
    }
    assert_eq!(store.load_snapshot("lifecycle").await.expect("load_snapshot"), Some(one));
    assert!(store.save_snapshot(&two).await.expect("save_snapshot"));
    assert!(store.save_snapshot(&other).await.expect("save_snapshot"));
    assert_eq!(store.load_snapshot("lifecycle").await.expect("load_snapshot"), Some(two));
    assert_eq!(store.load_snapshot("ledger").await.expect("load_snapshot"), Some(other));
    assert_eq!(store.load_snapshot("nothing").await.expect("load_snapshot"), None);
}

/// Drives an engine over the store (submissions, a decline, an acceptance, a
/// cancellation, expiries fired by the clock), then starts a second engine
/// on the storage opened again: its replayed digest equals the live one, and
/// so does a plain fold of the stored log.
pub async fn engine_replay_matches_live<H: Harness>(h: &mut H) {
    let policy = LifecyclePolicy { offer_deadline_s: 600, ..LifecyclePolicy::default() };
    let store = h.fresh().await;
    let bus = MemoryBus::new();
    let mut sub = bus.subscribe(Filter::All, 1024).await.expect("subscribes");
    let clock = ManualClock::new(t0());
    let engine = tiny_builder(policy).store(store.clone()).bus(bus).clock(clock.clone()).start().await.expect("starts");
    let cases = [
        ("c1-i1-s1", "home-care", Urgency::Normal),
        ("c1-i2-s2", "home-care", Urgency::Urgent),
        ("c2-i1-s1", "rescue", Urgency::Emergency),
        ("c1-i1-s2", "haircut", Urgency::Normal),
        ("c1-i1-s1", "rescue", Urgency::Normal),
        ("c1-i1-s2", "home-care", Urgency::Normal),
    ];
    let mut offers = Vec::new();
    for (i, (unit, service, urgency)) in cases.into_iter().enumerate() {
        let spec = request(&format!("q{i}"), unit, service, urgency, 3, 5);
        offers.push(offered(
            &engine.execute(Command::Request(RequestCommand::Submit { spec })).await.expect("submits").events,
        ));
    }
    let decline = Command::Request(RequestCommand::Decline {
        request: rid("q0"),
        team: offers[0][0].clone(),
        reason: DeclineReason::TooFar,
    });
    engine.execute(decline).await.expect("declines");
    engine
        .execute(Command::Request(RequestCommand::Accept { request: rid("q4"), team: offers[4][0].clone() }))
        .await
        .expect("accepts");
    engine
        .execute(Command::Request(RequestCommand::Cancel {
            request: rid("q5"),
            reason: Text::new("不需要了").expect("short text"),
        }))
        .await
        .expect("cancels");
    // Let the open offers expire: the engine's timer fires on its own; wait for the bus to say so.
    clock.advance(Duration::minutes(11));
    loop {
        let m = tokio::time::timeout(std::time::Duration::from_secs(20), sub.next())
            .await
            .expect("the engine publishes the expiry in time")
            .expect("not lagged")
            .expect("the bus is open");
        if matches!(m.record.event, Event::OfferExpired { .. }) {
            break;
        }
    }
    let live = engine.query(|lc| lc.digest()).await.expect("queries");
    engine.shutdown().await;
    drop(store);

    let again = h.reopen().await;
    let log = read_all(&again).await;
    check_log_shape(&log);
    assert!(log.iter().any(|s| matches!(s.record.event, Event::OfferExpired { .. })));
    let restarted = tiny_builder(policy).store(again.clone()).clock(clock).start().await.expect("restarts");
    assert_eq!(restarted.query(|lc| lc.digest()).await.expect("queries"), live, "replay == live");
    restarted.shutdown().await;
    let mut lc = tiny_lifecycle(policy);
    for s in &log {
        lc.apply(&s.record).expect("the stored log applies");
    }
    assert_eq!(lc.digest(), live, "fold(log) == live");
}

/// 32 concurrent accepts of one offer through one engine over the store,
/// `SIDAN_RACE_ROUNDS` rounds (500 by default): exactly one winner, 31
/// [`LifecycleError::AlreadyTaken`], exactly one `accepted` event stored.
pub async fn engine_accept_race<H: Harness>(h: &mut H) {
    let store = h.fresh().await;
    let policy = LifecyclePolicy::default();
    let engine = Arc::new(
        tiny_builder(policy).store(store.clone()).clock(ManualClock::new(t0())).start().await.expect("starts"),
    );
    let rounds = race_rounds(500);
    for round in 0..rounds {
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
                Err(e) => panic!("round {round}: unexpected {e}"),
            }
        }
        assert_eq!(ok, 1, "round {round}: exactly one winner");
        let log = store.load(&StreamId::Request(rid(&id))).await.expect("loads");
        let accepted = log.iter().filter(|r| matches!(r.event, Event::Accepted { .. })).count();
        assert_eq!(accepted, 1, "round {round}: exactly one accepted event");
        engine
            .execute(Command::Request(RequestCommand::Cancel {
                request: rid(&id),
                reason: Text::new("drill").expect("short text"),
            }))
            .await
            .expect("cancels");
    }
    let live = engine.query(|lc| lc.digest()).await.expect("queries");
    let mut lc = tiny_lifecycle(policy);
    for s in read_all(&store).await {
        lc.apply(&s.record).expect("applies");
    }
    assert_eq!(lc.digest(), live, "fold(log) == live");
}

// ---------------------------------------------------------------------------
// Scratch folders
// ---------------------------------------------------------------------------

/// A folder under the system's temporary directory, removed on drop.
#[derive(Debug)]
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    /// Creates `<tmp>/sidan-<prefix>-<pid>-<n>`.
    ///
    /// # Panics
    /// If the folder cannot be created.
    pub fn new(prefix: &str) -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("sidan-{prefix}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("creates the scratch folder");
        Self { path }
    }

    /// The folder.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

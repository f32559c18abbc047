//! The `Store` port: the event log, the source of truth, and its outbox.
//!
//! A store keeps every [`Recorded`] event in one global order (its
//! [`Position`]) and per stream (its `seq`). An append is atomic and
//! optimistic: for each stream in the batch, the first event's `seq` must be
//! the stream's current version plus one (the expected version), or the
//! whole batch is refused with [`StoreError::Conflict`] and nothing is
//! written. The outbox is the part of the log not yet published to the bus.
//!
//! A store may also keep [`Snapshot`]s: an opaque encoding of some state as
//! of a log position, so that a reader can start from it instead of the
//! beginning of the log. Keeping them is optional (the default keeps none).
//!
//! A store may keep idempotency keys ([`KeyRecord`]s) written in the same
//! atomic append as the events of their commands
//! ([`Store::append_keyed`]): a key already kept refuses the whole append
//! with [`StoreError::KeyExists`], so two writers racing on one key cannot
//! both win. The default keeps none and refuses keyed appends.

use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

type HashMap<K, V> = foldhash::HashMap<K, V>;
use sidan_core::lifecycle::StreamIdError;
use sidan_core::lifecycle::{Recorded, StreamId};

use crate::keys::{CommandKey, KeyError, KeyRecord, StoredKey};

/// A place in the global log, from 1, without gaps: the n-th event stored is at `Position(n)`
/// (every store keeps this; the engine relies on it to know that its state covers the log).
/// `Position(0)` is "before the first event".
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
pub struct Position(pub u64);

/// An event as stored: its global position and the record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stored {
    /// Where it is in the global log.
    pub position: Position,
    /// The event, with its stream and sequence number.
    pub record: Recorded,
}

/// An opaque encoding of some state as of a log position.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Snapshot {
    /// What it is a snapshot of (say `lifecycle`); a store keeps the latest one per name.
    pub name: String,
    /// The last log position the state covers: a reader continues after it.
    pub position: Position,
    /// The encoded state.
    pub data: Vec<u8>,
}

/// Why a store operation failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// Another writer appended to the stream first; nothing was written.
    #[error("{stream}: expected version {expected}, the stream is at {actual}")]
    Conflict {
        /// The stream.
        stream: StreamId,
        /// The version the batch expected.
        expected: u64,
        /// The version found.
        actual: u64,
    },
    /// A batch whose sequence numbers are not contiguous per stream.
    #[error("{stream}: sequence numbers in the batch are not contiguous at seq {seq}")]
    BadBatch {
        /// The stream.
        stream: StreamId,
        /// The first bad sequence number.
        seq: u64,
    },
    /// The store cannot be reached or failed; the append may or may not have happened.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// Stored data does not decode, or the log does not hold what it must.
    #[error("store data is corrupt: {0}")]
    Corrupt(#[from] CorruptError),
    /// The key is already kept (written by an earlier append, by another
    /// writer, or twice in this one); nothing of the append was written.
    #[error("{key} is already recorded")]
    KeyExists {
        /// The key.
        key: CommandKey,
    },
    /// A key's events are not inside its batch; nothing was written.
    #[error("{key}: its events {start}..{end} are not inside a batch of {len}")]
    KeyOutsideBatch {
        /// The key.
        key: CommandKey,
        /// The first event's index.
        start: usize,
        /// One past the last event's index.
        end: usize,
        /// The batch's length.
        len: usize,
    },
    /// The store keeps no command keys.
    #[error("this store does not keep command keys")]
    KeysUnsupported,
}

/// What is corrupt in a store: each variant says which stored value does not
/// decode, or which part of the log is missing, and where.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum CorruptError {
    /// A stored stream name does not parse.
    #[error("stream {name:?}: {source}")]
    StreamName {
        /// The name as stored.
        name: String,
        /// Why it does not parse.
        source: StreamIdError,
    },
    /// A stored sequence number is negative.
    #[error("{stream}: seq {seq}")]
    Seq {
        /// The stream.
        stream: StreamId,
        /// The number as stored.
        seq: i64,
    },
    /// A stored log position, count or version is negative.
    #[error("{what} {value} is negative")]
    Negative {
        /// What the number is: `position`, `count`, ...
        what: &'static str,
        /// The number as stored.
        value: i64,
    },
    /// An event's stored time is not RFC 3339.
    #[error("{stream}#{seq}: time {text:?}: {source}")]
    EventTime {
        /// The event's stream.
        stream: StreamId,
        /// The event's sequence number, as stored.
        seq: i64,
        /// The time as stored.
        text: String,
        /// Why it does not parse.
        source: chrono::ParseError,
    },
    /// An event's stored body does not decode into an event.
    #[error("{stream}#{seq}: event: {message}")]
    EventBody {
        /// The event's stream.
        stream: StreamId,
        /// The event's sequence number, as stored.
        seq: i64,
        /// The kind of decoding failure: bad JSON syntax, or JSON that is not an event (`Data`), ...
        category: serde_json::error::Category,
        /// What the decoder says, with the line and column in the body.
        message: String,
    },
    /// An event's stored binary body does not decode into an event.
    #[error("{stream}#{seq}: event: {error}")]
    EventBinary {
        /// The event's stream.
        stream: StreamId,
        /// The event's sequence number, as stored.
        seq: i64,
        /// Why the bytes are not an event.
        error: sidan_core::lifecycle::BinaryEventError,
    },
    /// An event does not serialise (an event always does; this is a bug if seen).
    #[error("cannot encode: {message}")]
    EventEncode {
        /// What the encoder says.
        message: String,
    },
    /// A stored command key does not validate.
    #[error("command key {principal:?} {id:?}: {source}")]
    Key {
        /// The principal as stored.
        principal: String,
        /// The command id as stored.
        id: String,
        /// Why the key is refused.
        source: KeyError,
    },
    /// A stored key's fingerprint has the wrong length.
    #[error("{key}: a fingerprint of {len} bytes")]
    Fingerprint {
        /// The key.
        key: CommandKey,
        /// The stored length, in bytes.
        len: usize,
    },
    /// A stored key's time is not RFC 3339.
    #[error("{key}: time {text:?}: {source}")]
    KeyTime {
        /// The key.
        key: CommandKey,
        /// The time as stored.
        text: String,
        /// Why it does not parse.
        source: chrono::ParseError,
    },
    /// A stored key's events are not in the log: a gap where its command's events should be.
    #[error("{key}: events at {}..{} are missing", .first.0, .first.0 + .count)]
    MissingEvents {
        /// The key.
        key: CommandKey,
        /// The position of its command's first event.
        first: Position,
        /// How many events its command had.
        count: u64,
    },
    /// The stored log does not fold: an event does not fit the state before it.
    #[error("the log does not replay: {0}")]
    Replay(#[from] sidan_core::lifecycle::ApplyError),
    /// The state could not be rebuilt for another reason than the store's or the log's.
    #[error("the state could not be rebuilt")]
    Rebuild,
}

/// The event log. Implementations must make `append` atomic (all or nothing)
/// and durable before returning `Ok`.
pub trait Store: Send + Sync + 'static {
    /// Appends a batch atomically, checking each stream's expected version
    /// (its first event's `seq - 1`). Returns the position of the last event.
    fn append(&self, batch: &[Recorded]) -> impl Future<Output = Result<Position, StoreError>> + Send;

    /// Every event of one stream, in order.
    fn load(&self, stream: &StreamId) -> impl Future<Output = Result<Vec<Recorded>, StoreError>> + Send;

    /// Up to `limit` events after position `after`, in order.
    fn read_from(&self, after: Position, limit: usize) -> impl Future<Output = Result<Vec<Stored>, StoreError>> + Send;

    /// Up to `limit` events not yet marked published, in order (the outbox).
    fn unpublished(&self, limit: usize) -> impl Future<Output = Result<Vec<Stored>, StoreError>> + Send;

    /// Marks every event up to `through` as published. The mark never moves
    /// back, and never past the last stored event.
    fn mark_published(&self, through: Position) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The events of one stream with `seq > after_seq`, in order. The default
    /// loads the whole stream and drops the first `after_seq` events.
    fn load_from(
        &self,
        stream: &StreamId,
        after_seq: u64,
    ) -> impl Future<Output = Result<Vec<Recorded>, StoreError>> + Send {
        async move {
            let mut events = self.load(stream).await?;
            events.retain(|r| r.seq > after_seq);
            Ok(events)
        }
    }

    /// Whether the store keeps snapshots ([`save_snapshot`](Store::save_snapshot)). The
    /// default: no, and the engine then spends no time encoding one.
    fn keeps_snapshots(&self) -> bool {
        false
    }

    /// Keeps `snapshot` as the latest of its name, replacing an older one.
    /// Returns whether the store keeps snapshots at all: the default keeps
    /// none and returns `Ok(false)`.
    fn save_snapshot(&self, snapshot: &Snapshot) -> impl Future<Output = Result<bool, StoreError>> + Send {
        let _ = snapshot;
        async { Ok(false) }
    }

    /// The latest snapshot of that name, if the store keeps one. The default: none.
    fn load_snapshot(&self, name: &str) -> impl Future<Output = Result<Option<Snapshot>, StoreError>> + Send {
        let _ = name;
        async { Ok(None) }
    }

    /// Whether the store keeps command keys ([`append_keyed`](Store::append_keyed)).
    /// The default: no. The engine refuses keyed commands at once on a store
    /// that does not, rather than failing their batch.
    fn keeps_keys(&self) -> bool {
        false
    }

    /// Appends a batch as [`append`](Store::append) does and keeps its
    /// command keys, all or nothing: if any key is already kept (or comes
    /// twice), the append fails with [`StoreError::KeyExists`] and writes
    /// neither events nor keys. Keys are checked before stream versions. A
    /// batch of no events with keys keeps the keys and returns the head.
    ///
    /// The default appends a batch without keys and refuses one with keys
    /// ([`StoreError::KeysUnsupported`]).
    fn append_keyed(
        &self,
        batch: &[Recorded],
        keys: &[KeyRecord],
    ) -> impl Future<Output = Result<Position, StoreError>> + Send {
        async move { if keys.is_empty() { self.append(batch).await } else { Err(StoreError::KeysUnsupported) } }
    }

    /// Every kept key decided at or after `since`, ordered by time, then
    /// principal, then id. The default: none.
    fn keys_since(&self, since: DateTime<Utc>) -> impl Future<Output = Result<Vec<StoredKey>, StoreError>> + Send {
        let _ = since;
        async { Ok(Vec::new()) }
    }

    /// Forgets the keys decided before `before`; returns how many. The default: none.
    fn purge_keys(&self, before: DateTime<Utc>) -> impl Future<Output = Result<u64, StoreError>> + Send {
        let _ = before;
        async { Ok(0) }
    }
}

/// Checks that every key's events lie inside a batch of `len` and that no
/// key comes twice.
///
/// # Errors
/// [`StoreError::KeyOutsideBatch`] or [`StoreError::KeyExists`] for the first bad key.
pub fn check_keys(len: usize, keys: &[KeyRecord]) -> Result<(), StoreError> {
    let mut seen: HashMap<&CommandKey, ()> = HashMap::default();
    for k in keys {
        if k.events.start > k.events.end || k.events.end > len {
            return Err(StoreError::KeyOutsideBatch {
                key: k.key.clone(),
                start: k.events.start,
                end: k.events.end,
                len,
            });
        }
        if seen.insert(&k.key, ()).is_some() {
            return Err(StoreError::KeyExists { key: k.key.clone() });
        }
    }
    Ok(())
}

/// Checks that a batch's sequence numbers are contiguous per stream, and
/// returns each stream's expected version (first seq − 1) in first-seen order.
///
/// # Errors
/// [`StoreError::BadBatch`] at the first gap.
pub fn expected_versions(batch: &[Recorded]) -> Result<Vec<(&StreamId, u64)>, StoreError> {
    let mut expected: Vec<(&StreamId, u64)> = Vec::new();
    let mut last: HashMap<&StreamId, u64> = HashMap::default();
    for r in batch {
        match last.get_mut(&r.stream) {
            Some(prev) if *prev + 1 == r.seq => *prev = r.seq,
            Some(_) => return Err(StoreError::BadBatch { stream: r.stream.clone(), seq: r.seq }),
            None if r.seq >= 1 => {
                last.insert(&r.stream, r.seq);
                expected.push((&r.stream, r.seq - 1));
            }
            None => return Err(StoreError::BadBatch { stream: r.stream.clone(), seq: r.seq }),
        }
    }
    Ok(expected)
}

#[derive(Debug, Default)]
struct Log {
    events: Vec<Stored>,
    versions: HashMap<StreamId, u64>,
    by_stream: HashMap<StreamId, Vec<usize>>,
    published: u64,
    snapshots: HashMap<String, Snapshot>,
    keys: HashMap<CommandKey, StoredKey>,
}

/// A store in memory: for tests, simulations and benchmarks. Clones share the log.
#[derive(Debug, Clone, Default)]
pub struct MemoryStore {
    log: Arc<Mutex<Log>>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn log(&self) -> MutexGuard<'_, Log> {
        // A panic while holding the lock cannot leave the log half-written:
        // appends check everything before they write.
        self.log.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Number of events stored.
    pub fn len(&self) -> usize {
        self.log().events.len()
    }

    /// Whether the log is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A copy of the whole log.
    pub fn all(&self) -> Vec<Stored> {
        self.log().events.clone()
    }

    fn append_sync(&self, batch: &[Recorded], keys: &[KeyRecord]) -> Result<Position, StoreError> {
        let expected = expected_versions(batch)?;
        check_keys(batch.len(), keys)?;
        let mut log = self.log();
        if let Some(k) = keys.iter().find(|k| log.keys.contains_key(&k.key)) {
            return Err(StoreError::KeyExists { key: k.key.clone() });
        }
        for (stream, exp) in &expected {
            let actual = log.versions.get(*stream).copied().unwrap_or(0);
            if actual != *exp {
                return Err(StoreError::Conflict { stream: (*stream).clone(), expected: *exp, actual });
            }
        }
        let head = Position(log.events.len() as u64);
        for k in keys {
            log.keys.insert(k.key.clone(), StoredKey::stored(k, head, batch.len()));
        }
        for r in batch {
            let position = Position(log.events.len() as u64 + 1);
            let i = log.events.len();
            log.events.push(Stored { position, record: r.clone() });
            log.versions.insert(r.stream.clone(), r.seq);
            log.by_stream.entry(r.stream.clone()).or_default().push(i);
        }
        Ok(Position(log.events.len() as u64))
    }
}

impl Store for MemoryStore {
    async fn append(&self, batch: &[Recorded]) -> Result<Position, StoreError> {
        self.append_sync(batch, &[])
    }

    fn keeps_keys(&self) -> bool {
        true
    }

    fn keeps_snapshots(&self) -> bool {
        true
    }

    async fn append_keyed(&self, batch: &[Recorded], keys: &[KeyRecord]) -> Result<Position, StoreError> {
        self.append_sync(batch, keys)
    }

    async fn keys_since(&self, since: DateTime<Utc>) -> Result<Vec<StoredKey>, StoreError> {
        let mut keys: Vec<StoredKey> = self.log().keys.values().filter(|k| k.at >= since).cloned().collect();
        keys.sort_by(|a, b| (a.at, &a.key).cmp(&(b.at, &b.key)));
        Ok(keys)
    }

    async fn purge_keys(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        let mut log = self.log();
        let n = log.keys.len();
        log.keys.retain(|_, k| k.at >= before);
        Ok((n - log.keys.len()) as u64)
    }

    async fn load(&self, stream: &StreamId) -> Result<Vec<Recorded>, StoreError> {
        let log = self.log();
        Ok(log
            .by_stream
            .get(stream)
            .map(|ix| ix.iter().map(|&i| log.events[i].record.clone()).collect())
            .unwrap_or_default())
    }

    async fn read_from(&self, after: Position, limit: usize) -> Result<Vec<Stored>, StoreError> {
        let log = self.log();
        let start = (after.0 as usize).min(log.events.len());
        Ok(log.events[start..].iter().take(limit).cloned().collect())
    }

    async fn unpublished(&self, limit: usize) -> Result<Vec<Stored>, StoreError> {
        let log = self.log();
        let start = (log.published as usize).min(log.events.len());
        Ok(log.events[start..].iter().take(limit).cloned().collect())
    }

    async fn mark_published(&self, through: Position) -> Result<(), StoreError> {
        let mut log = self.log();
        log.published = log.published.max(through.0.min(log.events.len() as u64));
        Ok(())
    }

    async fn save_snapshot(&self, snapshot: &Snapshot) -> Result<bool, StoreError> {
        self.log().snapshots.insert(snapshot.name.clone(), snapshot.clone());
        Ok(true)
    }

    async fn load_snapshot(&self, name: &str) -> Result<Option<Snapshot>, StoreError> {
        Ok(self.log().snapshots.get(name).cloned())
    }
}

//! The embedded default [`Store`] of sidan: the event log, each stream's
//! version, the outbox mark and snapshots in one SQLite file.
//!
//! - **WAL** journal, `synchronous = FULL` by default: an append that
//!   returned `Ok` is on disk, across a power loss. [`Synchronous::Normal`]
//!   is faster but durable across an application crash only (a power loss
//!   may lose the last commits, never corrupt the file).
//! - **One writer**: a dedicated thread owns the only writing connection.
//!   Appends queued while it commits are taken together (group commit):
//!   one `BEGIN IMMEDIATE` transaction with a savepoint per append, so a
//!   refused append rolls back alone and the rest share one fsync.
//! - **Optimistic appends**: inside the transaction each stream's version is
//!   checked against the batch's expected version; the unique
//!   `(stream, seq)` and `event_id` constraints are the last guard. Other
//!   processes may open the same file: `BEGIN IMMEDIATE` and the busy
//!   timeout serialise the writers.
//! - **Readers** use a small pool of read-only connections on tokio's
//!   blocking threads; WAL lets them read while the writer commits.
//! - **Command keys** (idempotency) are inserted in the append's savepoint,
//!   before the version check: a key already kept refuses the append with
//!   [`StoreError::KeyExists`] and nothing of it is written.
//! - **Migrations** run at open, in one `BEGIN IMMEDIATE` transaction (so
//!   two processes opening one new file do not both migrate). The version is
//!   `PRAGMA user_version`; a file written by a newer sidan is refused with
//!   [`OpenError::SchemaTooNew`].
//!
//! See docs/storage.md for the schema.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use chrono::{DateTime, Utc};
use rusqlite::types::ValueRef;
use rusqlite::{Connection, ErrorCode, OpenFlags, OptionalExtension, params};
use sidan_core::lifecycle::{Recorded, StreamId};
use sidan_runtime::keys::{CommandKey, KeyRecord, StoredKey, time_text};
use sidan_runtime::rows::{self, Body, RowDecoder, encode_at, encode_event_binary};
use sidan_runtime::store::{Snapshot, check_keys, expected_versions};
use sidan_runtime::{Position, Store, StoreError, Stored};
use tokio::sync::{mpsc, oneshot};

mod migrate;

pub use migrate::SCHEMA_VERSION;

/// How commits reach the disk (`PRAGMA synchronous`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Synchronous {
    /// Every commit is fsynced before the append returns: acknowledged means
    /// durable across a power loss or an OS crash.
    #[default]
    Full,
    /// The WAL is fsynced at checkpoints only: durable across an application
    /// crash; a power loss may lose the last commits (the file stays sound).
    Normal,
}

/// How a [`SqliteStore`] is opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SqliteConfig {
    /// Durability of a commit.
    pub synchronous: Synchronous,
    /// How long a writer waits for another process's write lock.
    pub busy_timeout: Duration,
    /// The most appends committed together in one transaction.
    pub max_group: usize,
    /// Appends that may wait for the writer thread.
    pub queue_capacity: usize,
    /// Read connections kept open for reuse.
    pub readers: usize,
}

impl Default for SqliteConfig {
    fn default() -> Self {
        Self {
            synchronous: Synchronous::Full,
            busy_timeout: Duration::from_secs(10),
            max_group: 256,
            queue_capacity: 4096,
            readers: 4,
        }
    }
}

/// Why a store could not be opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// The file was written by a newer version of sidan; this build does not know its schema.
    #[error(
        "{path}: schema version {found} is newer than this build's {supported}; \
         open it with a newer sidan (nothing was changed)"
    )]
    SchemaTooNew {
        /// The file.
        path: PathBuf,
        /// Its schema version.
        found: u32,
        /// The newest version this build knows.
        supported: u32,
    },
    /// A migration failed; the file is as it was before the open.
    #[error("{path}: migration to schema version {version} failed: {message}")]
    MigrationFailed {
        /// The file.
        path: PathBuf,
        /// The version being applied.
        version: u32,
        /// SQLite's message.
        message: String,
    },
    /// The journal could not be switched to WAL (say, an in-memory database).
    #[error("{path}: journal mode is {mode}, not wal")]
    NotWal {
        /// The file.
        path: PathBuf,
        /// The mode SQLite kept.
        mode: String,
    },
    /// SQLite could not open or set up the file (missing folder, not a database, I/O error).
    #[error("{path}: {message}")]
    Sqlite {
        /// The file.
        path: PathBuf,
        /// SQLite's message.
        message: String,
    },
    /// The writer thread could not be started.
    #[error("cannot start the writer thread: {0}")]
    Thread(String),
}

/// The event log in one SQLite file. Clones share the writer and the readers;
/// the writer thread stops when the last clone is dropped.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    path: PathBuf,
    config: SqliteConfig,
    tx: Option<mpsc::Sender<Op>>,
    writer: Option<JoinHandle<()>>,
    readers: Mutex<Vec<Connection>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Closing the queue stops the writer after what it holds; wait so
        // that the file is closed when the last handle is gone.
        self.tx.take();
        if let Some(w) = self.writer.take() {
            let _ = w.join();
        }
    }
}

/// An event encoded for a row.
#[derive(Debug)]
struct Row {
    stream: String,
    seq: i64,
    event_id: String,
    kind: &'static str,
    at: String,
    body: Vec<u8>,
}

/// A stream touched by an append: its id, its name, the expected version, and its new version.
#[derive(Debug)]
struct Touch {
    stream: StreamId,
    name: String,
    expected: u64,
    last: u64,
}

/// A command key encoded for a row; `first` and `position` are set at write time.
#[derive(Debug)]
struct KeyRow {
    key: CommandKey,
    fingerprint: [u8; 32],
    at: String,
    start: i64,
    count: i64,
}

fn encode_keys(len: usize, keys: &[KeyRecord]) -> Result<Vec<KeyRow>, StoreError> {
    check_keys(len, keys)?;
    Ok(keys
        .iter()
        .map(|k| KeyRow {
            key: k.key.clone(),
            fingerprint: k.fingerprint.0,
            at: time_text(&k.at),
            start: k.events.start as i64,
            count: k.events.len() as i64,
        })
        .collect())
}

#[derive(Debug)]
enum Op {
    Append {
        rows: Vec<Row>,
        touched: Vec<Touch>,
        keys: Vec<KeyRow>,
        reply: oneshot::Sender<Result<Position, StoreError>>,
    },
    PurgeKeys {
        before: String,
        reply: oneshot::Sender<Result<u64, StoreError>>,
    },
    Mark {
        through: u64,
        reply: oneshot::Sender<Result<(), StoreError>>,
    },
    Snapshot {
        snapshot: Snapshot,
        reply: oneshot::Sender<Result<bool, StoreError>>,
    },
}

fn unavailable(e: impl std::fmt::Display) -> StoreError {
    tracing::warn!(error = %e, "SQLite store failed");
    StoreError::Unavailable(e.to_string())
}

fn sqlite_error(path: &Path, e: rusqlite::Error) -> OpenError {
    OpenError::Sqlite { path: path.to_owned(), message: e.to_string() }
}

fn encode(batch: &[Recorded]) -> Result<(Vec<Row>, Vec<Touch>), StoreError> {
    let expected = expected_versions(batch)?;
    let mut touched: Vec<Touch> = expected
        .into_iter()
        .map(|(s, e)| Touch { stream: s.clone(), name: s.to_string(), expected: e, last: e })
        .collect();
    let mut rows = Vec::with_capacity(batch.len());
    for r in batch {
        let body = encode_event_binary(&r.event)?;
        let seq = i64::try_from(r.seq).map_err(|_| StoreError::BadBatch { stream: r.stream.clone(), seq: r.seq })?;
        let t = touched.iter_mut().find(|t| t.stream == r.stream).expect("every stream of the batch is touched");
        t.last = r.seq;
        rows.push(Row {
            stream: t.name.clone(),
            seq,
            event_id: r.id(),
            kind: r.event.name(),
            at: encode_at(&r.at),
            body,
        });
    }
    Ok((rows, touched))
}

fn limit(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// A body column: a blob is the binary form, text is JSON (rows written before this store
/// wrote the binary form).
fn body_of(v: ValueRef<'_>, col: usize) -> rusqlite::Result<Body<'_>> {
    match v {
        ValueRef::Blob(bytes) => Ok(Body::Binary(bytes)),
        ValueRef::Text(_) => Ok(Body::Json(v.as_str()?)),
        other => Err(rusqlite::Error::FromSqlConversionFailure(
            col,
            other.data_type(),
            "an event body is neither a blob nor text".into(),
        )),
    }
}

/// The record in a row's `(stream, seq, at, body)` columns, from column `first` on, decoded
/// straight from the row (no copy of its columns).
fn record_of(rows_in: &mut RowDecoder, row: &rusqlite::Row<'_>, first: usize) -> Result<Recorded, StoreError> {
    let text = |col: usize| row.get_ref(col).and_then(|v| Ok(v.as_str()?)).map_err(unavailable);
    let seq: i64 = row.get(first + 1).map_err(unavailable)?;
    let body = row.get_ref(first + 3).and_then(|v| body_of(v, first + 3)).map_err(unavailable)?;
    rows_in.decode(text(first)?, seq, text(first + 2)?, body)
}

/// Reads `(position, stream, seq, at, body)` rows into stored events (a replay folds one page
/// while the next is read and decoded).
fn collect_stored(
    stmt: &mut rusqlite::Statement<'_>,
    params: impl rusqlite::Params,
) -> Result<Vec<Stored>, StoreError> {
    let mut rows_in = RowDecoder::new();
    let mut rows = stmt.query(params).map_err(unavailable)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(unavailable)? {
        let position: i64 = row.get(0).map_err(unavailable)?;
        let record = record_of(&mut rows_in, row, 1)?;
        out.push(Stored { position: Position(rows::decode_u64("position", position)?), record });
    }
    Ok(out)
}

/// Reads `(stream, seq, at, body)` rows into records.
fn collect_records(
    stmt: &mut rusqlite::Statement<'_>,
    params: impl rusqlite::Params,
) -> Result<Vec<Recorded>, StoreError> {
    let mut rows_in = RowDecoder::new();
    let mut rows = stmt.query(params).map_err(unavailable)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(unavailable)? {
        out.push(record_of(&mut rows_in, row, 0)?);
    }
    Ok(out)
}

fn configure(conn: &Connection, config: &SqliteConfig) -> rusqlite::Result<()> {
    conn.busy_timeout(config.busy_timeout)?;
    let sync = match config.synchronous {
        Synchronous::Full => "FULL",
        Synchronous::Normal => "NORMAL",
    };
    conn.execute_batch(&format!("PRAGMA synchronous = {sync}; PRAGMA foreign_keys = OFF;"))
}

impl SqliteStore {
    /// Opens (creating if needed) the store at `path`: WAL, the configured
    /// durability, migrations up to [`SCHEMA_VERSION`], and the writer thread.
    /// Blocks while it migrates; call it from a blocking context if that matters.
    ///
    /// # Errors
    /// [`OpenError::SchemaTooNew`] for a file of a newer sidan,
    /// [`OpenError::MigrationFailed`], [`OpenError::NotWal`],
    /// [`OpenError::Sqlite`] when SQLite cannot open the file.
    pub fn open(path: impl AsRef<Path>, config: SqliteConfig) -> Result<Self, OpenError> {
        let path = path.as_ref().to_owned();
        let mut conn = Connection::open(&path).map_err(|e| sqlite_error(&path, e))?;
        conn.busy_timeout(config.busy_timeout).map_err(|e| sqlite_error(&path, e))?;
        // Switching to WAL takes a moment's exclusive lock: another process may hold the file.
        let mode: String =
            conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0)).map_err(|e| sqlite_error(&path, e))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(OpenError::NotWal { path, mode });
        }
        configure(&conn, &config).map_err(|e| sqlite_error(&path, e))?;
        let had = migrate::migrate(&mut conn, &path)?;
        tracing::info!(path = %path.display(), had, schema = SCHEMA_VERSION, "SQLite store opened");
        let (tx, rx) = mpsc::channel(config.queue_capacity.max(1));
        let max_group = config.max_group.max(1);
        let writer = std::thread::Builder::new()
            .name("sidan-sqlite-writer".into())
            .spawn(move || run_writer(conn, rx, max_group))
            .map_err(|e| OpenError::Thread(e.to_string()))?;
        Ok(Self {
            inner: Arc::new(Inner {
                path,
                config,
                tx: Some(tx),
                writer: Some(writer),
                readers: Mutex::new(Vec::new()),
            }),
        })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// The position of the last stored event (`Position(0)` for an empty log).
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] if SQLite fails.
    pub async fn head(&self) -> Result<Position, StoreError> {
        self.read(|c| {
            let head: i64 =
                c.query_row("SELECT COALESCE(MAX(position), 0) FROM events", [], |r| r.get(0)).map_err(unavailable)?;
            Ok(Position(head as u64))
        })
        .await
    }

    async fn send<T>(&self, op: Op, rx: oneshot::Receiver<Result<T, StoreError>>) -> Result<T, StoreError> {
        let tx = self.inner.tx.as_ref().ok_or_else(|| unavailable("the store is closed"))?;
        tx.send(op).await.map_err(|_| unavailable("the writer thread has stopped"))?;
        rx.await.map_err(|_| unavailable("the writer thread stopped before answering"))?
    }

    /// Runs `f` on a read connection on a blocking thread.
    async fn read<R: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<R, StoreError> + Send + 'static,
    ) -> Result<R, StoreError> {
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || {
            let conn = inner.take_reader()?;
            let out = f(&conn);
            inner.put_reader(conn);
            out
        })
        .await
        .map_err(unavailable)?
    }
}

impl Inner {
    fn take_reader(&self) -> Result<Connection, StoreError> {
        if let Some(c) = self.readers.lock().unwrap_or_else(std::sync::PoisonError::into_inner).pop() {
            return Ok(c);
        }
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_URI;
        let conn = Connection::open_with_flags(&self.path, flags).map_err(unavailable)?;
        conn.busy_timeout(self.config.busy_timeout).map_err(unavailable)?;
        conn.execute_batch("PRAGMA query_only = ON; PRAGMA cache_size = -32768;").map_err(unavailable)?;
        Ok(conn)
    }

    fn put_reader(&self, conn: Connection) {
        let mut pool = self.readers.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if pool.len() < self.config.readers {
            pool.push(conn);
        }
    }
}

/// Why one operation of a group did not happen.
enum Failure {
    /// The operation is refused (a conflict); the others of the group go on.
    Refused(StoreError),
    /// SQLite failed; the whole group is rolled back.
    Fatal(String),
}

impl From<rusqlite::Error> for Failure {
    fn from(e: rusqlite::Error) -> Self {
        Failure::Fatal(e.to_string())
    }
}

/// The writer thread: takes every queued operation (up to `max_group`),
/// runs them in one transaction, commits, then answers.
fn run_writer(mut conn: Connection, mut rx: mpsc::Receiver<Op>, max_group: usize) {
    while let Some(first) = rx.blocking_recv() {
        let mut ops = vec![first];
        while ops.len() < max_group {
            match rx.try_recv() {
                Ok(op) => ops.push(op),
                Err(_) => break,
            }
        }
        write_group(&mut conn, ops);
    }
}

enum Outcome {
    Position(Position),
    Unit,
    Kept,
    Count(u64),
}

fn write_group(conn: &mut Connection, ops: Vec<Op>) {
    let results = run_group(conn, &ops);
    for (op, result) in ops.into_iter().zip(results) {
        match op {
            Op::Append { reply, .. } => {
                let _ = reply.send(result.map(|o| match o {
                    Outcome::Position(p) => p,
                    _ => unreachable!("an append yields a position"),
                }));
            }
            Op::Mark { reply, .. } => {
                let _ = reply.send(result.map(|_| ()));
            }
            Op::Snapshot { reply, .. } => {
                let _ = reply.send(result.map(|_| true));
            }
            Op::PurgeKeys { reply, .. } => {
                let _ = reply.send(result.map(|o| match o {
                    Outcome::Count(n) => n,
                    _ => unreachable!("a purge yields a count"),
                }));
            }
        }
    }
}

fn run_group(conn: &mut Connection, ops: &[Op]) -> Vec<Result<Outcome, StoreError>> {
    let _span = tracing::debug_span!("write_group", ops = ops.len()).entered();
    let fail_all = |msg: String| {
        tracing::warn!(error = %msg, ops = ops.len(), "SQLite write group failed; none of it is stored");
        ops.iter().map(|_| Err(StoreError::Unavailable(msg.clone()))).collect()
    };
    if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
        return fail_all(format!("cannot begin: {e}"));
    }
    let mut results = Vec::with_capacity(ops.len());
    for op in ops {
        let step = (|| -> Result<Outcome, Failure> {
            conn.execute_batch("SAVEPOINT op")?;
            match apply(conn, op) {
                Ok(o) => {
                    conn.execute_batch("RELEASE op")?;
                    Ok(o)
                }
                Err(Failure::Refused(e)) => {
                    conn.execute_batch("ROLLBACK TO op; RELEASE op")?;
                    Err(Failure::Refused(e))
                }
                Err(f) => Err(f),
            }
        })();
        match step {
            Ok(o) => results.push(Ok(o)),
            Err(Failure::Refused(e)) => results.push(Err(e)),
            Err(Failure::Fatal(msg)) => {
                if !conn.is_autocommit() {
                    let _ = conn.execute_batch("ROLLBACK");
                }
                return fail_all(msg);
            }
        }
    }
    if let Err(e) = conn.execute_batch("COMMIT") {
        if !conn.is_autocommit() {
            let _ = conn.execute_batch("ROLLBACK");
        }
        return fail_all(format!("commit failed: {e}"));
    }
    results
}

fn head(conn: &Connection) -> rusqlite::Result<i64> {
    conn.prepare_cached("SELECT COALESCE(MAX(position), 0) FROM events")?.query_row([], |r| r.get(0))
}

fn version(conn: &Connection, stream: &str) -> rusqlite::Result<u64> {
    let v: Option<i64> = conn
        .prepare_cached("SELECT version FROM streams WHERE stream = ?1")?
        .query_row([stream], |r| r.get(0))
        .optional()?;
    Ok(v.unwrap_or(0) as u64)
}

fn apply(conn: &Connection, op: &Op) -> Result<Outcome, Failure> {
    match op {
        Op::Append { rows, touched, keys, .. } => {
            let head = head(conn)?;
            if !keys.is_empty() {
                let mut insert = conn.prepare_cached(
                    "INSERT INTO command_keys (principal, id, fingerprint, at, first, count, position) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT DO NOTHING",
                )?;
                let position = head + rows.len() as i64;
                for k in keys {
                    let first = head + 1 + k.start;
                    let n = insert.execute(params![
                        k.key.principal(),
                        k.key.id(),
                        &k.fingerprint[..],
                        k.at,
                        first,
                        k.count,
                        position
                    ])?;
                    if n == 0 {
                        return Err(Failure::Refused(StoreError::KeyExists { key: k.key.clone() }));
                    }
                }
            }
            for t in touched {
                let actual = version(conn, &t.name)?;
                if actual != t.expected {
                    return Err(Failure::Refused(StoreError::Conflict {
                        stream: t.stream.clone(),
                        expected: t.expected,
                        actual,
                    }));
                }
            }
            let mut insert = conn.prepare_cached(
                "INSERT INTO events (position, stream, seq, event_id, kind, at, body) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?;
            for (i, r) in rows.iter().enumerate() {
                let position = head + 1 + i as i64;
                if let Err(e) = insert.execute(params![position, r.stream, r.seq, r.event_id, r.kind, r.at, r.body]) {
                    // The version check passed, so only a writer outside this
                    // store's rules can get here; the constraint still holds.
                    if e.sqlite_error_code() == Some(ErrorCode::ConstraintViolation) {
                        let t = touched.iter().find(|t| t.name == r.stream).expect("the row's stream is touched");
                        let actual = version(conn, &t.name)?;
                        return Err(Failure::Refused(StoreError::Conflict {
                            stream: t.stream.clone(),
                            expected: t.expected,
                            actual,
                        }));
                    }
                    return Err(e.into());
                }
            }
            let mut upsert = conn.prepare_cached(
                "INSERT INTO streams (stream, version) VALUES (?1, ?2) \
                 ON CONFLICT (stream) DO UPDATE SET version = excluded.version",
            )?;
            for t in touched {
                upsert.execute(params![t.name, t.last as i64])?;
            }
            Ok(Outcome::Position(Position((head + rows.len() as i64) as u64)))
        }
        Op::Mark { through, .. } => {
            conn.prepare_cached(
                "UPDATE outbox SET published = MAX(published, MIN(?1, (SELECT COALESCE(MAX(position), 0) FROM events))) \
                 WHERE id = 1",
            )?
            .execute([limit(*through as usize)])?;
            Ok(Outcome::Unit)
        }
        Op::Snapshot { snapshot, .. } => {
            conn.prepare_cached(
                "INSERT INTO snapshots (name, position, data, saved_at) VALUES (?1, ?2, ?3, ?4) \
                 ON CONFLICT (name) DO UPDATE SET position = excluded.position, data = excluded.data, \
                 saved_at = excluded.saved_at",
            )?
            .execute(params![
                snapshot.name,
                limit(snapshot.position.0 as usize),
                snapshot.data,
                encode_at(&Utc::now())
            ])?;
            Ok(Outcome::Kept)
        }
        Op::PurgeKeys { before, .. } => {
            let n = conn.prepare_cached("DELETE FROM command_keys WHERE at < ?1")?.execute([before])?;
            Ok(Outcome::Count(n as u64))
        }
    }
}

fn decode_key(row: &rusqlite::Row<'_>) -> Result<StoredKey, StoreError> {
    let text = |i| row.get_ref(i).and_then(|v| Ok(v.as_str()?)).map_err(unavailable);
    rows::KeyRow {
        principal: text(0)?,
        id: text(1)?,
        fingerprint: row.get_ref(2).and_then(|v| Ok(v.as_blob()?)).map_err(unavailable)?,
        at: text(3)?,
        first: row.get(4).map_err(unavailable)?,
        count: row.get(5).map_err(unavailable)?,
        position: row.get(6).map_err(unavailable)?,
    }
    .decode()
}

impl Store for SqliteStore {
    async fn append(&self, batch: &[Recorded]) -> Result<Position, StoreError> {
        self.append_keyed(batch, &[]).await
    }

    fn keeps_keys(&self) -> bool {
        true
    }

    fn keeps_snapshots(&self) -> bool {
        true
    }

    async fn append_keyed(&self, batch: &[Recorded], keys: &[KeyRecord]) -> Result<Position, StoreError> {
        let (rows, touched) = encode(batch)?;
        let keys = encode_keys(batch.len(), keys)?;
        let (reply, rx) = oneshot::channel();
        self.send(Op::Append { rows, touched, keys, reply }, rx).await
    }

    async fn keys_since(&self, since: DateTime<Utc>) -> Result<Vec<StoredKey>, StoreError> {
        let since = time_text(&since);
        self.read(move |c| {
            let mut stmt = c
                .prepare_cached(
                    "SELECT principal, id, fingerprint, at, first, count, position FROM command_keys \
                     WHERE at >= ?1 ORDER BY at, principal, id",
                )
                .map_err(unavailable)?;
            let mut rows = stmt.query([since]).map_err(unavailable)?;
            let mut out = Vec::new();
            while let Some(row) = rows.next().map_err(unavailable)? {
                out.push(decode_key(row)?);
            }
            Ok(out)
        })
        .await
    }

    async fn purge_keys(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        let (reply, rx) = oneshot::channel();
        self.send(Op::PurgeKeys { before: time_text(&before), reply }, rx).await
    }

    async fn load(&self, stream: &StreamId) -> Result<Vec<Recorded>, StoreError> {
        self.load_from(stream, 0).await
    }

    async fn load_from(&self, stream: &StreamId, after_seq: u64) -> Result<Vec<Recorded>, StoreError> {
        let name = stream.to_string();
        let after = limit(after_seq as usize);
        self.read(move |c| {
            let mut stmt = c
                .prepare_cached("SELECT stream, seq, at, body FROM events WHERE stream = ?1 AND seq > ?2 ORDER BY seq")
                .map_err(unavailable)?;
            collect_records(&mut stmt, params![name, after])
        })
        .await
    }

    async fn read_from(&self, after: Position, limit_n: usize) -> Result<Vec<Stored>, StoreError> {
        let (after, n) = (limit(after.0 as usize), limit(limit_n));
        self.read(move |c| {
            let mut stmt = c
                .prepare_cached(
                    "SELECT position, stream, seq, at, body FROM events WHERE position > ?1 ORDER BY position LIMIT ?2",
                )
                .map_err(unavailable)?;
            collect_stored(&mut stmt, params![after, n])
        })
        .await
    }

    async fn unpublished(&self, limit_n: usize) -> Result<Vec<Stored>, StoreError> {
        let n = limit(limit_n);
        self.read(move |c| {
            let mut stmt = c
                .prepare_cached(
                    "SELECT position, stream, seq, at, body FROM events \
                     WHERE position > (SELECT published FROM outbox WHERE id = 1) ORDER BY position LIMIT ?1",
                )
                .map_err(unavailable)?;
            collect_stored(&mut stmt, params![n])
        })
        .await
    }

    async fn mark_published(&self, through: Position) -> Result<(), StoreError> {
        let (reply, rx) = oneshot::channel();
        self.send(Op::Mark { through: through.0, reply }, rx).await
    }

    async fn save_snapshot(&self, snapshot: &Snapshot) -> Result<bool, StoreError> {
        let (reply, rx) = oneshot::channel();
        self.send(Op::Snapshot { snapshot: snapshot.clone(), reply }, rx).await
    }

    async fn load_snapshot(&self, name: &str) -> Result<Option<Snapshot>, StoreError> {
        let name = name.to_owned();
        self.read(move |c| {
            let row: Option<(i64, Vec<u8>)> = c
                .prepare_cached("SELECT position, data FROM snapshots WHERE name = ?1")
                .and_then(|mut s| s.query_row([&name], |r| Ok((r.get(0)?, r.get(1)?))).optional())
                .map_err(unavailable)?;
            Ok(row.map(|(position, data)| Snapshot { name, position: Position(position as u64), data }))
        })
        .await
    }
}

#[cfg(test)]
mod tests;

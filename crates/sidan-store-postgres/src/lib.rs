//! A [`Store`] on PostgreSQL, for several engine instances sharing one
//! database (a province: one engine per county or per group of counties).
//!
//! - **Pooled async driver**: tokio-postgres behind a deadpool pool.
//! - **Optimistic appends that cannot both win**: one transaction locks the
//!   log's head row, checks every stream's expected version against the
//!   `streams` table, inserts the events and bumps the versions and the head.
//!   The unique `(stream, seq)` and `event_id` constraints are the last
//!   guard: a unique violation is a [`StoreError::Conflict`] too.
//! - **Command keys** (idempotency) are inserted in the append's
//!   transaction, before the version check: a key already kept (by any
//!   instance) refuses the append with [`StoreError::KeyExists`] and nothing
//!   of it is written, so two instances racing on one key cannot both win.
//! - **Gapless positions in commit order**: the head row lock serialises
//!   appends, so positions have no holes and a reader never sees position
//!   n + 1 before n, which the outbox relies on (a sequence gives neither).
//! - **Durable**: every connection runs with `synchronous_commit = on`; an
//!   append that returned `Ok` is in the server's WAL on disk.
//! - **Migrations** run at open inside one transaction holding an advisory
//!   lock, so instances starting together migrate once; a database of a
//!   newer schema version is refused with [`OpenError::SchemaTooNew`].
//! - **TLS** (rustls, the `ring` provider) when the URL says
//!   `sslmode=require`: the server's certificate is checked against the
//!   Mozilla roots, or the certificate authorities of
//!   [`PgConfig::ca_file`], and must name the host. `sslmode=prefer` (the
//!   default) and `disable` connect without TLS.
//!
//! See docs/storage.md for the schema.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use sidan_core::lifecycle::{Recorded, StreamId};
use sidan_runtime::keys::{KeyRecord, StoredKey, time_text};
use sidan_runtime::rows::{Body, KeyRow, RowDecoder, decode_u64, encode_at, encode_event};
use sidan_runtime::store::{Snapshot, check_keys, expected_versions};
use sidan_runtime::{Position, Store, StoreError, Stored};
use tokio_postgres::NoTls;
use tokio_postgres::config::SslMode;
use tokio_postgres::error::SqlState;
use tokio_postgres_rustls::MakeRustlsConnect;

mod migrate;

pub use migrate::SCHEMA_VERSION;

/// The server used when `SIDAN_PG_URL` is not set.
pub const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// Where and how to connect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgConfig {
    /// A libpq-style URL or key-value string, e.g. `postgres://user@host:5432/db`.
    pub url: String,
    /// The schema to keep the tables in (created if missing); `None` uses the server's search path.
    pub schema: Option<String>,
    /// The most connections the pool opens.
    pub pool_size: usize,
    /// A PEM file of the certificate authorities to trust for TLS, instead of
    /// the Mozilla roots (for a server whose certificate a private CA signed).
    pub ca_file: Option<PathBuf>,
}

impl PgConfig {
    /// The server at `url`, default schema, a pool of 8.
    pub fn new(url: impl Into<String>) -> Self {
        Self { url: url.into(), schema: None, pool_size: 8, ca_file: None }
    }

    /// `SIDAN_PG_URL`, or [`DEFAULT_URL`].
    pub fn from_env() -> Self {
        Self::new(std::env::var("SIDAN_PG_URL").ok().filter(|u| !u.is_empty()).unwrap_or_else(|| DEFAULT_URL.into()))
    }

    /// The same, with the tables in `schema`.
    #[must_use]
    pub fn with_schema(mut self, schema: impl Into<String>) -> Self {
        self.schema = Some(schema.into());
        self
    }

    /// The same, trusting only the certificate authorities in the PEM file `path` for TLS.
    #[must_use]
    pub fn with_ca_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.ca_file = Some(path.into());
        self
    }
}

/// Why a store could not be opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// The URL does not parse.
    #[error("bad PostgreSQL URL: {0}")]
    BadUrl(String),
    /// The schema name is not a plain lower-case identifier.
    #[error("bad schema name {0:?}: use lower-case letters, digits and `_`, starting with a letter")]
    BadSchema(String),
    /// The server cannot be reached or refused the connection (a TLS
    /// handshake that fails, say on a certificate not trusted, is one).
    #[error("cannot connect to PostgreSQL: {0}")]
    Connect(String),
    /// The certificate authorities for TLS cannot be read, or the file holds none.
    #[error("TLS certificate authorities {}: {message}", path.display())]
    CaFile {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// The database was set up by a newer version of sidan.
    #[error(
        "the database's sidan schema version {found} is newer than this build's {supported}; \
         use a newer sidan (nothing was changed)"
    )]
    SchemaTooNew {
        /// Its schema version.
        found: u32,
        /// The newest version this build knows.
        supported: u32,
    },
    /// A migration failed; the database is as it was.
    #[error("migration to schema version {version} failed: {message}")]
    MigrationFailed {
        /// The version being applied.
        version: u32,
        /// The server's message.
        message: String,
    },
}

/// The event log in a PostgreSQL database. Clones share the pool.
#[derive(Clone)]
pub struct PgStore {
    pool: Pool,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore").field("status", &self.pool.status()).finish()
    }
}

fn unavailable(e: impl std::fmt::Display) -> StoreError {
    tracing::warn!(error = %e, "PostgreSQL store failed");
    StoreError::Unavailable(e.to_string())
}

/// A server error's message with its detail (tokio-postgres' `Display` shows only "db error").
fn pg_message(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{}: {}", db.code().code(), db.message()),
        None => e.to_string(),
    }
}

fn pg_unavailable(e: tokio_postgres::Error) -> StoreError {
    unavailable(pg_message(&e))
}

/// The rustls connector: the `ring` provider (no C build of aws-lc), the
/// Mozilla roots or the CAs of `ca_file`, and the host name checked.
fn tls(ca_file: Option<&Path>) -> Result<MakeRustlsConnect, OpenError> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject as _;
    let mut roots = rustls::RootCertStore::empty();
    match ca_file {
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
        Some(path) => {
            let bad = |message: String| OpenError::CaFile { path: path.to_owned(), message };
            let certs = CertificateDer::pem_file_iter(path)
                .map_err(|e| bad(e.to_string()))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| bad(e.to_string()))?;
            let (added, _) = roots.add_parsable_certificates(certs);
            if added == 0 {
                return Err(bad("no certificate in it".into()));
            }
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| OpenError::Connect(format!("TLS: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(MakeRustlsConnect::new(config))
}

fn valid_schema(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && s.len() <= 63
}

impl PgStore {
    /// Connects, creates the schema if asked for one, and migrates to [`SCHEMA_VERSION`].
    ///
    /// # Errors
    /// [`OpenError::BadUrl`], [`OpenError::BadSchema`], [`OpenError::Connect`],
    /// [`OpenError::SchemaTooNew`], [`OpenError::MigrationFailed`].
    pub async fn open(config: &PgConfig) -> Result<Self, OpenError> {
        let mut pg: tokio_postgres::Config = config.url.parse().map_err(|e| OpenError::BadUrl(pg_message(&e)))?;
        let mut options = pg.get_options().unwrap_or_default().to_owned();
        options.push_str(" -c synchronous_commit=on");
        if let Some(schema) = &config.schema {
            if !valid_schema(schema) {
                return Err(OpenError::BadSchema(schema.clone()));
            }
            options.push_str(&format!(" -c search_path={schema}"));
        }
        pg.options(options.trim());
        let recycling = ManagerConfig { recycling_method: RecyclingMethod::Fast };
        let manager = match pg.get_ssl_mode() {
            SslMode::Disable | SslMode::Prefer => Manager::from_config(pg, NoTls, recycling),
            _ => Manager::from_config(pg, tls(config.ca_file.as_deref())?, recycling),
        };
        let pool = Pool::builder(manager)
            .max_size(config.pool_size.max(1))
            .build()
            .map_err(|e| OpenError::Connect(e.to_string()))?;
        let mut client = pool.get().await.map_err(|e| OpenError::Connect(e.to_string()))?;
        let had = migrate::migrate(&mut client, config.schema.as_deref()).await?;
        tracing::info!(had, schema = SCHEMA_VERSION, search_path = config.schema.as_deref(), "PostgreSQL store opened");
        Ok(Self { pool })
    }

    /// The position of the last stored event (`Position(0)` for an empty log).
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] if the server fails.
    pub async fn head(&self) -> Result<Position, StoreError> {
        let client = self.pool.get().await.map_err(unavailable)?;
        let row = client.query_one("SELECT position FROM log_head WHERE id = 1", &[]).await.map_err(pg_unavailable)?;
        Ok(Position(row.get::<_, i64>(0) as u64))
    }

    async fn client(&self) -> Result<deadpool_postgres::Object, StoreError> {
        self.pool.get().await.map_err(unavailable)
    }

    async fn version_now(&self, stream: &str) -> Result<u64, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_opt("SELECT version FROM streams WHERE stream = $1", &[&stream])
            .await
            .map_err(pg_unavailable)?;
        Ok(row.map_or(0, |r| r.get::<_, i64>(0) as u64))
    }
}

/// An encoded batch: one vector per column, for `unnest`.
#[derive(Debug, Default)]
struct Columns {
    positions: Vec<i64>,
    streams: Vec<String>,
    seqs: Vec<i64>,
    ids: Vec<String>,
    kinds: Vec<&'static str>,
    ats: Vec<String>,
    bodies: Vec<String>,
}

/// A stream touched by an append.
#[derive(Debug)]
struct Touch {
    stream: StreamId,
    name: String,
    expected: u64,
    last: u64,
}

fn encode(batch: &[Recorded]) -> Result<(Columns, Vec<Touch>), StoreError> {
    let expected = expected_versions(batch)?;
    let mut touched: Vec<Touch> = expected
        .into_iter()
        .map(|(s, e)| Touch { stream: s.clone(), name: s.to_string(), expected: e, last: e })
        .collect();
    let mut c = Columns::default();
    for r in batch {
        let seq = i64::try_from(r.seq).map_err(|_| StoreError::BadBatch { stream: r.stream.clone(), seq: r.seq })?;
        let t = touched.iter_mut().find(|t| t.stream == r.stream).expect("every stream of the batch is touched");
        t.last = r.seq;
        c.streams.push(t.name.clone());
        c.seqs.push(seq);
        c.ids.push(r.id());
        c.kinds.push(r.event.name());
        c.ats.push(encode_at(&r.at));
        c.bodies.push(encode_event(&r.event)?);
    }
    Ok((c, touched))
}

/// `(position, stream, seq, at, body)` rows into stored events.
fn stored_rows(rows: &[tokio_postgres::Row]) -> Result<Vec<Stored>, StoreError> {
    let mut rows_in = RowDecoder::new();
    rows.iter()
        .map(|r| {
            let record = rows_in.decode(r.get(1), r.get(2), r.get(3), Body::Json(r.get(4)))?;
            Ok(Stored { position: Position(decode_u64("position", r.get(0))?), record })
        })
        .collect()
}

fn limit(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Why an append did not happen inside its transaction.
enum Refusal {
    Store(StoreError),
    /// A unique violation: another writer got in (outside these rules).
    Unique,
}

impl From<tokio_postgres::Error> for Refusal {
    fn from(e: tokio_postgres::Error) -> Self {
        Refusal::Store(pg_unavailable(e))
    }
}

const INSERT_EVENTS: &str = "INSERT INTO events (position, stream, seq, event_id, kind, at, body) \
     SELECT p, s, q, i, k, a, b::json \
     FROM unnest($1::bigint[], $2::text[], $3::bigint[], $4::text[], $5::text[], $6::text[], $7::text[]) \
     AS t(p, s, q, i, k, a, b)";

const UPSERT_STREAMS: &str = "INSERT INTO streams (stream, version) \
     SELECT s, v FROM unnest($1::text[], $2::bigint[]) AS t(s, v) \
     ON CONFLICT (stream) DO UPDATE SET version = excluded.version";

const INSERT_KEYS: &str = "INSERT INTO command_keys (principal, id, fingerprint, at, first, count, position) \
     SELECT p, i, f, a, s, c, q \
     FROM unnest($1::text[], $2::text[], $3::bytea[], $4::text[], $5::bigint[], $6::bigint[], $7::bigint[]) \
     AS t(p, i, f, a, s, c, q) \
     ON CONFLICT DO NOTHING RETURNING principal, id";

/// The keys of an append, one vector per column (`first` and `position` are set in the transaction).
#[derive(Debug, Default)]
struct KeyColumns {
    principals: Vec<String>,
    ids: Vec<String>,
    fingerprints: Vec<Vec<u8>>,
    ats: Vec<String>,
    starts: Vec<i64>,
    counts: Vec<i64>,
}

fn encode_keys(len: usize, keys: &[KeyRecord]) -> Result<KeyColumns, StoreError> {
    check_keys(len, keys)?;
    let mut c = KeyColumns::default();
    for k in keys {
        c.principals.push(k.key.principal().to_owned());
        c.ids.push(k.key.id().to_owned());
        c.fingerprints.push(k.fingerprint.0.to_vec());
        c.ats.push(time_text(&k.at));
        c.starts.push(k.events.start as i64);
        c.counts.push(k.events.len() as i64);
    }
    Ok(c)
}

fn decode_key(r: &tokio_postgres::Row) -> Result<StoredKey, StoreError> {
    KeyRow {
        principal: r.get(0),
        id: r.get(1),
        fingerprint: r.get(2),
        at: r.get(3),
        first: r.get(4),
        count: r.get(5),
        position: r.get(6),
    }
    .decode()
}

const SELECT_STORED: &str = "SELECT position, stream, seq, at, body::text FROM events";

impl Store for PgStore {
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
        let (mut cols, touched) = encode(batch)?;
        let key_cols = encode_keys(batch.len(), keys)?;
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg_unavailable)?;
        let result: Result<Position, Refusal> = async {
            // The head row lock serialises appends until commit.
            let head: i64 = tx.query_one("SELECT position FROM log_head WHERE id = 1 FOR UPDATE", &[]).await?.get(0);
            if !keys.is_empty() {
                let firsts: Vec<i64> = key_cols.starts.iter().map(|s| head + 1 + s).collect();
                let positions = vec![head + cols.seqs.len() as i64; keys.len()];
                let stmt = tx.prepare_cached(INSERT_KEYS).await?;
                let inserted = tx
                    .query(
                        &stmt,
                        &[
                            &key_cols.principals,
                            &key_cols.ids,
                            &key_cols.fingerprints,
                            &key_cols.ats,
                            &firsts,
                            &key_cols.counts,
                            &positions,
                        ],
                    )
                    .await?;
                if inserted.len() != keys.len() {
                    let new: std::collections::HashSet<(&str, &str)> =
                        inserted.iter().map(|r| (r.get::<_, &str>(0), r.get::<_, &str>(1))).collect();
                    let kept =
                        keys.iter().find(|k| !new.contains(&(k.key.principal(), k.key.id()))).unwrap_or(&keys[0]);
                    return Err(Refusal::Store(StoreError::KeyExists { key: kept.key.clone() }));
                }
            }
            if touched.is_empty() {
                return Ok(Position(head as u64));
            }
            let names: Vec<&str> = touched.iter().map(|t| t.name.as_str()).collect();
            let found = tx.query("SELECT stream, version FROM streams WHERE stream = ANY($1)", &[&names]).await?;
            let versions: HashMap<&str, i64> =
                found.iter().map(|r| (r.get::<_, &str>(0), r.get::<_, i64>(1))).collect();
            for t in &touched {
                let actual = versions.get(t.name.as_str()).copied().unwrap_or(0) as u64;
                if actual != t.expected {
                    return Err(Refusal::Store(StoreError::Conflict {
                        stream: t.stream.clone(),
                        expected: t.expected,
                        actual,
                    }));
                }
            }
            cols.positions = (1..=cols.seqs.len() as i64).map(|i| head + i).collect();
            let stmt = tx.prepare_cached(INSERT_EVENTS).await?;
            let inserted = tx
                .execute(
                    &stmt,
                    &[&cols.positions, &cols.streams, &cols.seqs, &cols.ids, &cols.kinds, &cols.ats, &cols.bodies],
                )
                .await;
            if let Err(e) = inserted {
                if e.code() == Some(&SqlState::UNIQUE_VIOLATION) {
                    return Err(Refusal::Unique);
                }
                return Err(e.into());
            }
            let versions: Vec<i64> = touched.iter().map(|t| t.last as i64).collect();
            let stmt = tx.prepare_cached(UPSERT_STREAMS).await?;
            tx.execute(&stmt, &[&names, &versions]).await?;
            let new_head = head + cols.seqs.len() as i64;
            tx.execute("UPDATE log_head SET position = $1 WHERE id = 1", &[&new_head]).await?;
            Ok(Position(new_head as u64))
        }
        .await;
        match result {
            Ok(p) => {
                tx.commit().await.map_err(pg_unavailable)?;
                Ok(p)
            }
            Err(refusal) => {
                let _ = tx.rollback().await;
                drop(client);
                match refusal {
                    Refusal::Store(e) => Err(e),
                    Refusal::Unique => {
                        // Name the stream that moved, if one did.
                        let mut conflict = None;
                        for t in &touched {
                            let actual = self.version_now(&t.name).await?;
                            if actual != t.expected || conflict.is_none() {
                                conflict = Some(StoreError::Conflict {
                                    stream: t.stream.clone(),
                                    expected: t.expected,
                                    actual,
                                });
                            }
                            if actual != t.expected {
                                break;
                            }
                        }
                        Err(conflict.expect("a batch with rows touches a stream"))
                    }
                }
            }
        }
    }

    async fn load(&self, stream: &StreamId) -> Result<Vec<Recorded>, StoreError> {
        self.load_from(stream, 0).await
    }

    async fn load_from(&self, stream: &StreamId, after_seq: u64) -> Result<Vec<Recorded>, StoreError> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(
                "SELECT stream, seq, at, body::text FROM events WHERE stream = $1 AND seq > $2 ORDER BY seq",
            )
            .await
            .map_err(pg_unavailable)?;
        let rows = client.query(&stmt, &[&stream.to_string(), &limit(after_seq)]).await.map_err(pg_unavailable)?;
        let mut rows_in = RowDecoder::new();
        rows.iter().map(|r| rows_in.decode(r.get(0), r.get(1), r.get(2), Body::Json(r.get(3)))).collect()
    }

    async fn read_from(&self, after: Position, n: usize) -> Result<Vec<Stored>, StoreError> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(&format!("{SELECT_STORED} WHERE position > $1 ORDER BY position LIMIT $2"))
            .await
            .map_err(pg_unavailable)?;
        let rows = client.query(&stmt, &[&limit(after.0), &limit(n as u64)]).await.map_err(pg_unavailable)?;
        stored_rows(&rows)
    }

    async fn unpublished(&self, n: usize) -> Result<Vec<Stored>, StoreError> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(&format!(
                "{SELECT_STORED} WHERE position > (SELECT published FROM outbox WHERE id = 1) ORDER BY position LIMIT $1"
            ))
            .await
            .map_err(pg_unavailable)?;
        let rows = client.query(&stmt, &[&limit(n as u64)]).await.map_err(pg_unavailable)?;
        stored_rows(&rows)
    }

    async fn mark_published(&self, through: Position) -> Result<(), StoreError> {
        let client = self.client().await?;
        client
            .execute(
                "UPDATE outbox SET published = GREATEST(published, LEAST($1, (SELECT position FROM log_head WHERE id = 1))) \
                 WHERE id = 1",
                &[&limit(through.0)],
            )
            .await
            .map_err(pg_unavailable)?;
        Ok(())
    }

    async fn save_snapshot(&self, snapshot: &Snapshot) -> Result<bool, StoreError> {
        let client = self.client().await?;
        client
            .execute(
                "INSERT INTO snapshots (name, position, data, saved_at) VALUES ($1, $2, $3, now()) \
                 ON CONFLICT (name) DO UPDATE SET position = excluded.position, data = excluded.data, \
                 saved_at = excluded.saved_at",
                &[&snapshot.name, &limit(snapshot.position.0), &snapshot.data],
            )
            .await
            .map_err(pg_unavailable)?;
        Ok(true)
    }

    async fn load_snapshot(&self, name: &str) -> Result<Option<Snapshot>, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_opt("SELECT position, data FROM snapshots WHERE name = $1", &[&name])
            .await
            .map_err(pg_unavailable)?;
        Ok(row.map(|r| Snapshot {
            name: name.to_owned(),
            position: Position(r.get::<_, i64>(0) as u64),
            data: r.get(1),
        }))
    }

    async fn keys_since(&self, since: DateTime<Utc>) -> Result<Vec<StoredKey>, StoreError> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(
                "SELECT principal, id, fingerprint, at, first, count, position FROM command_keys \
                 WHERE at >= $1 ORDER BY at, principal, id",
            )
            .await
            .map_err(pg_unavailable)?;
        let rows = client.query(&stmt, &[&time_text(&since)]).await.map_err(pg_unavailable)?;
        rows.iter().map(decode_key).collect()
    }

    async fn purge_keys(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        let client = self.client().await?;
        client.execute("DELETE FROM command_keys WHERE at < $1", &[&time_text(&before)]).await.map_err(pg_unavailable)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sidan_store_tests::pg::pg_or_skip;
    use sidan_store_tests::{all_keys, events, key_record, read_all, stream};

    /// A client on the scratch schema.
    async fn client_on(url: &str, schema: &str) -> tokio_postgres::Client {
        let mut pg: tokio_postgres::Config = url.parse().expect("a URL");
        pg.options(format!("-c search_path={schema}"));
        let (client, connection) = pg.connect(NoTls).await.expect("connects");
        tokio::spawn(async move {
            let _ = connection.await;
        });
        client
    }

    /// A database at schema version 2, with a log written the version-2 way,
    /// migrates to version 3 at open: the log reads back unchanged and keys
    /// work. One at a version newer than this build's is refused, untouched.
    #[tokio::test]
    async fn a_version_2_database_migrates_and_a_newer_one_is_refused() {
        let Some(scratch) = pg_or_skip("pg_migrate_v2").await else { return };
        let mut client = client_on(scratch.url(), scratch.schema()).await;
        assert_eq!(migrate::migrate_to(&mut client, Some(scratch.schema()), 2).await.expect("migrates to 2"), 0);
        let old = events(&stream("old"), 1, 3, 0);
        let (cols, _) = encode(&old).expect("encodes");
        let positions: Vec<i64> = vec![1, 2, 3];
        client
            .execute(
                INSERT_EVENTS,
                &[&positions, &cols.streams, &cols.seqs, &cols.ids, &cols.kinds, &cols.ats, &cols.bodies],
            )
            .await
            .expect("inserts the events");
        client
            .batch_execute("INSERT INTO streams VALUES ('request/old', 3); UPDATE log_head SET position = 3")
            .await
            .expect("sets the versions");

        let config = PgConfig::new(scratch.url()).with_schema(scratch.schema());
        let store = PgStore::open(&config).await.expect("opens and migrates");
        let log = read_all(&store).await;
        assert_eq!(log.iter().map(|s| s.record.clone()).collect::<Vec<_>>(), old, "the old log reads back");
        let k = key_record("resident-1", "order-1", 1, sidan_core::testkit::t0(), 0..1);
        let next = events(&stream("old"), 4, 4, 0);
        assert_eq!(store.append_keyed(&next, std::slice::from_ref(&k)).await, Ok(Position(4)));
        assert_eq!(all_keys(&store).await.len(), 1, "the new table works");
        let applied: Vec<i32> = client
            .query("SELECT version FROM schema_migrations ORDER BY version", &[])
            .await
            .expect("reads")
            .iter()
            .map(|r| r.get(0))
            .collect();
        assert_eq!(applied, [1, 2, 3]);

        client.execute("INSERT INTO schema_migrations (version, name) VALUES (9, 'future')", &[]).await.expect("bumps");
        match PgStore::open(&config).await {
            Err(OpenError::SchemaTooNew { found: 9, supported }) => assert_eq!(supported, SCHEMA_VERSION),
            other => panic!("expected SchemaTooNew, got {other:?}"),
        }
        assert_eq!(read_all(&store).await.len(), 4, "the refused open changed nothing");
    }

    #[test]
    fn schema_names_need_no_quoting() {
        for ok in ["sidan", "sidan_t_1", "_x"] {
            assert!(valid_schema(ok), "{ok}");
        }
        for bad in ["", "Sidan", "1x", "a-b", "a;drop", "a b", &"x".repeat(64)] {
            assert!(!valid_schema(bad), "{bad}");
        }
    }
}

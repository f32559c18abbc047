//! Versioned migrations, applied at open.
//!
//! `schema_migrations` records each version applied. Every migration above
//! the highest runs in one transaction that first takes an advisory lock,
//! so engine instances starting together migrate once and a failed
//! migration leaves the database as it was. A version above
//! [`SCHEMA_VERSION`] is refused untouched.

use crate::OpenError;

/// One migration: its version, a name for people, and its SQL.
pub(crate) struct Migration {
    pub(crate) version: u32,
    pub(crate) name: &'static str,
    pub(crate) sql: &'static str,
}

/// Every migration, in order; versions are 1, 2, … without gaps.
pub(crate) const MIGRATIONS: &[Migration] = &[
    Migration { version: 1, name: "event log and outbox", sql: include_str!("../migrations/V1__event_log.sql") },
    Migration { version: 2, name: "snapshots", sql: include_str!("../migrations/V2__snapshots.sql") },
    Migration { version: 3, name: "command keys", sql: include_str!("../migrations/V3__command_keys.sql") },
];

/// The schema version this build writes, and the newest it opens.
pub const SCHEMA_VERSION: u32 = 3;

const _: () = assert!(MIGRATIONS.len() as u32 == SCHEMA_VERSION);

/// The advisory lock key that serialises migrations ("sidan" in ASCII).
const MIGRATION_LOCK: i64 = 0x73_69_64_61_6e;

fn message(e: &tokio_postgres::Error) -> String {
    crate::pg_message(e)
}

/// Brings the database to `target` (≤ [`SCHEMA_VERSION`]) in the client's
/// search path, creating `schema` first if given; returns the version it had.
pub(crate) async fn migrate_to(
    client: &mut tokio_postgres::Client,
    schema: Option<&str>,
    target: u32,
) -> Result<u32, OpenError> {
    let connect = |e: tokio_postgres::Error| OpenError::Connect(message(&e));
    let tx = client.transaction().await.map_err(connect)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK]).await.map_err(connect)?;
    if let Some(schema) = schema {
        // The name was checked to need no quoting.
        tx.batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS {schema}")).await.map_err(connect)?;
    }
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (\
             version INT PRIMARY KEY, name TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())",
    )
    .await
    .map_err(|e| OpenError::MigrationFailed { version: 0, message: message(&e) })?;
    let found: i32 =
        tx.query_one("SELECT COALESCE(MAX(version), 0) FROM schema_migrations", &[]).await.map_err(connect)?.get(0);
    let found = found.max(0) as u32;
    if found > SCHEMA_VERSION {
        return Err(OpenError::SchemaTooNew { found, supported: SCHEMA_VERSION });
    }
    for m in MIGRATIONS.iter().filter(|m| m.version > found && m.version <= target) {
        let failed = |e: tokio_postgres::Error| OpenError::MigrationFailed { version: m.version, message: message(&e) };
        tx.batch_execute(m.sql).await.map_err(failed)?;
        tx.execute("INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", &[&(m.version as i32), &m.name])
            .await
            .map_err(failed)?;
    }
    tx.commit().await.map_err(connect)?;
    Ok(found)
}

/// Brings the database to [`SCHEMA_VERSION`]; returns the version it had.
pub(crate) async fn migrate(client: &mut tokio_postgres::Client, schema: Option<&str>) -> Result<u32, OpenError> {
    migrate_to(client, schema, SCHEMA_VERSION).await
}

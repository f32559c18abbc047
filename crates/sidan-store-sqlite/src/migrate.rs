//! Versioned migrations, applied at open.
//!
//! The schema version is `PRAGMA user_version` (0 for a new file). Every
//! migration above it runs, in order, inside one `BEGIN IMMEDIATE`
//! transaction with the version bump, so a crash mid-migration leaves the
//! file at its old version, and two processes opening one new file migrate
//! it once. A version above [`SCHEMA_VERSION`] is refused untouched.
//!
//! A runner of our own rather than refinery or rusqlite_migration: both open
//! a deferred transaction, which lets two processes read the same version
//! and race to migrate; ours takes the write lock before it reads.

use std::path::Path;

use chrono::{SecondsFormat, Utc};
use rusqlite::Connection;

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

/// Brings the file to `target` (≤ [`SCHEMA_VERSION`]); returns the version it had.
pub(crate) fn migrate_to(conn: &mut Connection, path: &Path, target: u32) -> Result<u32, OpenError> {
    let sqlite = |e: rusqlite::Error| OpenError::Sqlite { path: path.to_owned(), message: e.to_string() };
    conn.execute_batch("BEGIN IMMEDIATE").map_err(sqlite)?;
    let result = (|| {
        let found: u32 = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).map_err(sqlite)?;
        if found > SCHEMA_VERSION {
            return Err(OpenError::SchemaTooNew { path: path.to_owned(), found, supported: SCHEMA_VERSION });
        }
        for m in MIGRATIONS.iter().filter(|m| m.version > found && m.version <= target) {
            let failed = |e: rusqlite::Error| OpenError::MigrationFailed {
                path: path.to_owned(),
                version: m.version,
                message: e.to_string(),
            };
            conn.execute_batch(m.sql).map_err(failed)?;
            conn.execute(
                "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?1, ?2, ?3)",
                rusqlite::params![m.version, m.name, Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true)],
            )
            .map_err(failed)?;
            conn.execute_batch(&format!("PRAGMA user_version = {}", m.version)).map_err(failed)?;
        }
        Ok(found)
    })();
    match result {
        Ok(found) => {
            conn.execute_batch("COMMIT").map_err(sqlite)?;
            Ok(found)
        }
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK");
            Err(e)
        }
    }
}

/// Brings the file to [`SCHEMA_VERSION`]; returns the version it had.
pub(crate) fn migrate(conn: &mut Connection, path: &Path) -> Result<u32, OpenError> {
    migrate_to(conn, path, SCHEMA_VERSION)
}

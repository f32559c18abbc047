//! Migrations, refusals and pragmas, with real files.

use rusqlite::Connection;
use sidan_runtime::store::Snapshot;
use sidan_runtime::{Position, Store};
use sidan_store_tests::{TempDir, events, read_all, stream};

use crate::migrate::migrate_to;
use crate::{OpenError, SCHEMA_VERSION, SqliteConfig, SqliteStore, Synchronous, configure, encode};

fn user_version(path: &std::path::Path) -> u32 {
    let c = Connection::open(path).expect("opens");
    c.query_row("PRAGMA user_version", [], |r| r.get(0)).expect("user_version")
}

fn has_table(path: &std::path::Path, name: &str) -> bool {
    let c = Connection::open(path).expect("opens");
    c.query_row("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?1", [name], |r| r.get::<_, i64>(0))
        .expect("sqlite_master")
        == 1
}

#[tokio::test]
async fn a_version_1_file_migrates_and_keeps_its_log() {
    let dir = TempDir::new("sqlite-migrate");
    let path = dir.path().join("v1.db");
    let old = events(&stream("old"), 1, 3, 0);
    {
        let mut c = Connection::open(&path).expect("opens");
        let _: String = c.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0)).expect("wal");
        assert_eq!(migrate_to(&mut c, &path, 1).expect("migrates to 1"), 0);
        // Written the way version 1 writes.
        let (rows, touched) = encode(&old).expect("encodes");
        for (i, r) in rows.iter().enumerate() {
            c.execute(
                "INSERT INTO events (position, stream, seq, event_id, kind, at, body) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                rusqlite::params![i as i64 + 1, r.stream, r.seq, r.event_id, r.kind, r.at, r.body],
            )
            .expect("inserts");
        }
        c.execute("INSERT INTO streams (stream, version) VALUES (?1, ?2)", rusqlite::params![touched[0].name, 3])
            .expect("inserts");
    }
    assert_eq!(user_version(&path), 1);
    assert!(!has_table(&path, "snapshots"));

    let store = SqliteStore::open(&path, SqliteConfig::default()).expect("opens and migrates");
    assert_eq!(user_version(&path), SCHEMA_VERSION);
    assert!(has_table(&path, "snapshots"));
    assert!(has_table(&path, "command_keys"));
    let log = read_all(&store).await;
    assert_eq!(log.iter().map(|s| s.record.clone()).collect::<Vec<_>>(), old, "the old log reads back");
    let snap = Snapshot { name: "lifecycle".into(), position: Position(3), data: vec![1, 2, 3] };
    assert!(store.save_snapshot(&snap).await.expect("saves"), "the new table works");
    assert_eq!(store.load_snapshot("lifecycle").await.expect("loads"), Some(snap));
    assert_eq!(store.append(&events(&stream("old"), 4, 4, 0)).await, Ok(Position(4)));
    drop(store);
    // Reopening at the current version runs nothing.
    let c = Connection::open(&path).expect("opens");
    let applied: Vec<u32> = c
        .prepare("SELECT version FROM schema_migrations ORDER BY version")
        .expect("prepares")
        .query_map([], |r| r.get(0))
        .expect("queries")
        .collect::<Result<_, _>>()
        .expect("reads");
    assert_eq!(applied, [1, 2, 3]);
}

#[tokio::test]
async fn a_file_from_a_newer_version_is_refused_untouched() {
    let dir = TempDir::new("sqlite-newer");
    let path = dir.path().join("newer.db");
    let store = SqliteStore::open(&path, SqliteConfig::default()).expect("opens");
    store.append(&events(&stream("a"), 1, 2, 0)).await.expect("appends");
    drop(store);
    Connection::open(&path).expect("opens").execute_batch("PRAGMA user_version = 7").expect("bumps");
    match SqliteStore::open(&path, SqliteConfig::default()) {
        Err(OpenError::SchemaTooNew { found: 7, supported, .. }) => assert_eq!(supported, SCHEMA_VERSION),
        other => panic!("expected SchemaTooNew, got {other:?}"),
    }
    let message = SqliteStore::open(&path, SqliteConfig::default()).expect_err("refused").to_string();
    assert!(message.contains("schema version 7 is newer"), "{message}");
    assert_eq!(user_version(&path), 7, "nothing was changed");
    let c = Connection::open(&path).expect("opens");
    let n: i64 = c.query_row("SELECT count(*) FROM events", [], |r| r.get(0)).expect("counts");
    assert_eq!(n, 2);
}

#[test]
fn what_is_not_a_store_is_a_clear_error() {
    let dir = TempDir::new("sqlite-bad");
    let garbage = dir.path().join("garbage.db");
    std::fs::write(&garbage, vec![0x5a; 8192]).expect("writes");
    match SqliteStore::open(&garbage, SqliteConfig::default()) {
        Err(OpenError::Sqlite { message, .. }) => assert!(message.contains("not a database"), "{message}"),
        other => panic!("expected a SQLite error, got {other:?}"),
    }
    let missing = dir.path().join("no/such/folder/x.db");
    assert!(matches!(SqliteStore::open(&missing, SqliteConfig::default()), Err(OpenError::Sqlite { .. })));
    // A SQLite file that is someone else's: version 0 but an `events` table of its own.
    let foreign = dir.path().join("foreign.db");
    Connection::open(&foreign).expect("opens").execute_batch("CREATE TABLE events (x)").expect("creates");
    match SqliteStore::open(&foreign, SqliteConfig::default()) {
        Err(OpenError::MigrationFailed { version: 1, .. }) => {}
        other => panic!("expected MigrationFailed, got {other:?}"),
    }
    assert_eq!(user_version(&foreign), 0, "the failed migration rolled back");
}

#[test]
fn durability_pragmas_follow_the_config() {
    let c = Connection::open_in_memory().expect("opens");
    for (sync, expected) in [(Synchronous::Full, 2), (Synchronous::Normal, 1)] {
        configure(&c, &SqliteConfig { synchronous: sync, ..SqliteConfig::default() }).expect("configures");
        let got: i64 = c.query_row("PRAGMA synchronous", [], |r| r.get(0)).expect("reads");
        assert_eq!(got, expected, "{sync:?}");
    }
    assert_eq!(SqliteConfig::default().synchronous, Synchronous::Full, "FULL unless asked otherwise");
}

#[tokio::test]
async fn the_file_is_in_wal_mode() {
    let dir = TempDir::new("sqlite-wal");
    let path = dir.path().join("wal.db");
    let store = SqliteStore::open(&path, SqliteConfig::default()).expect("opens");
    store.append(&events(&stream("a"), 1, 1, 0)).await.expect("appends");
    let c = Connection::open(&path).expect("opens");
    let mode: String = c.query_row("PRAGMA journal_mode", [], |r| r.get(0)).expect("reads");
    assert_eq!(mode, "wal");
    assert!(dir.path().join("wal.db-wal").exists());
}

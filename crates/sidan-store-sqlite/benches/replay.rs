//! Rebuilding the state from a SQLite log with no snapshot: the event bodies' decoding alone
//! (JSON beside the binary form the store keeps), the store's read and decode alone, the core's
//! fold alone, and `open` + `EngineBuilder::start` (the full replay, read and fold overlapped),
//! each as events per second over the same log.
//!
//! The log is the store bench's: a generated city's requests through their whole lives in
//! the core (`SIDAN_BENCH_REPLAY_EVENTS` events, 1M by default), appended in batches of 10,000.
//! `SIDAN_BENCH_REPLAY_DB` keeps the file at that path and reuses it on the next run;
//! `SIDAN_BENCH_REPLAY_ONLY=start` then measures the full replay alone (for a profiler).
//!
//! Run: `cargo bench -p sidan-store-sqlite --bench replay`.

mod common;

/// The allocator the `sidan` binary runs with.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::{env_usize, log_of, world};
use sidan_core::lifecycle::Event;
use sidan_runtime::{EngineConfig, ManualClock, Position, Store};
use sidan_store_sqlite::{SqliteConfig, SqliteStore};
use sidan_store_tests::TempDir;

fn per_s(n: u64, d: Duration) -> String {
    format!(
        "{:.0} k events/s ({:.3} s, {:.0} ns an event)",
        n as f64 / d.as_secs_f64() / 1e3,
        d.as_secs_f64(),
        d.as_nanos() as f64 / n as f64
    )
}

fn main() {
    let n = env_usize("SIDAN_BENCH_REPLAY_EVENTS", 1_000_000);
    let w = world(env_usize("SIDAN_BENCH_REQUESTS", (n / 12).max(1_000)));
    let dir = TempDir::new("replay-bench");
    let path = std::env::var_os("SIDAN_BENCH_REPLAY_DB").map_or_else(|| dir.path().join("replay.db"), PathBuf::from);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let only_start = std::env::var("SIDAN_BENCH_REPLAY_ONLY").is_ok_and(|v| v == "start");
    let log = || {
        let t = Instant::now();
        let log = log_of(&w, n);
        eprintln!("replay: a log of {} events from the core in {:.1} s", log.len(), t.elapsed().as_secs_f64());
        log
    };
    rt.block_on(async {
        let store = SqliteStore::open(&path, SqliteConfig::default()).expect("opens");
        let head = store.read_from(Position(n as u64 - 1), 2).await.expect("reads");
        if head.len() != 1 {
            assert!(
                store.read_from(Position(0), 1).await.expect("reads").is_empty(),
                "{} holds another log",
                path.display()
            );
            let log = log();
            let t = Instant::now();
            for chunk in log.chunks(10_000) {
                store.append(chunk).await.expect("appends");
            }
            eprintln!("replay: stored in {:.1} s", t.elapsed().as_secs_f64());
        }
        drop(store);

        if !only_start {
            read_and_fold(&path, n, &w, &log()).await;
        }

        let t = Instant::now();
        let store = SqliteStore::open(&path, SqliteConfig::default()).expect("reopens");
        // No snapshot at shutdown: the file stays a log to replay in full on the next run.
        let config = EngineConfig { snapshot_every: 0, ..EngineConfig::default() };
        let engine =
            w.builder().store(store).config(config).clock(ManualClock::new(w.now)).start().await.expect("starts");
        let d = t.elapsed();
        let info = engine.start_info().clone();
        assert_eq!((info.snapshot, info.replayed), (None, n as u64), "a full replay");
        eprintln!("replay/open_start: {}", per_s(n as u64, d));
        engine.shutdown().await;

        if std::env::var("SIDAN_BENCH_REPLAY_SNAPSHOT").is_ok_and(|v| v == "1") {
            restore_from_snapshot(&path, n, &w).await;
        }
    });
}

/// The bodies' decoding alone (JSON, then the binary form), the store's read and decode alone,
/// then the core's fold alone.
async fn read_and_fold(path: &std::path::Path, n: usize, w: &common::World, log: &[sidan_core::lifecycle::Recorded]) {
    let json: Vec<String> = log.iter().map(|r| serde_json::to_string(&r.event).expect("encodes")).collect();
    let binary: Vec<Vec<u8>> = log.iter().map(|r| r.event.to_binary().expect("encodes")).collect();
    let bytes = |sizes: &mut dyn Iterator<Item = usize>| sizes.sum::<usize>() / n;
    eprintln!(
        "replay/body_bytes: JSON {} B, binary {} B an event",
        bytes(&mut json.iter().map(String::len)),
        bytes(&mut binary.iter().map(Vec::len))
    );
    let t = Instant::now();
    for text in &json {
        std::hint::black_box(serde_json::from_str::<Event>(text).expect("decodes"));
    }
    eprintln!("replay/decode_json: {}", per_s(n as u64, t.elapsed()));
    let t = Instant::now();
    for bytes in &binary {
        std::hint::black_box(Event::from_binary(bytes).expect("decodes"));
    }
    eprintln!("replay/decode_binary: {}", per_s(n as u64, t.elapsed()));
    drop((json, binary));

    let store = SqliteStore::open(path, SqliteConfig::default()).expect("reopens");
    let t = Instant::now();
    let mut at = Position(0);
    let mut read = 0u64;
    loop {
        let page = store.read_from(at, 4096).await.expect("reads");
        let Some(last) = page.last() else { break };
        at = last.position;
        read += page.len() as u64;
    }
    let d = t.elapsed();
    assert_eq!(read, n as u64);
    eprintln!("replay/read_decode: {}", per_s(read, d));
    drop(store);

    let mut lc = w.lifecycle();
    let t = Instant::now();
    for r in log {
        lc.apply(r).expect("applies");
    }
    let d = t.elapsed();
    eprintln!("replay/fold: {}", per_s(n as u64, d));
    drop(lc);
}

/// Saves a snapshot of the whole log through an engine's shutdown, times a start from it, then
/// deletes it so the file stays a log to replay.
async fn restore_from_snapshot(path: &std::path::Path, n: usize, w: &common::World) {
    let store = SqliteStore::open(path, SqliteConfig::default()).expect("reopens");
    let engine = w.builder().store(store).clock(ManualClock::new(w.now)).start().await.expect("starts");
    let t = Instant::now();
    engine.shutdown().await;
    eprintln!("replay/snapshot_save: {:.3} s", t.elapsed().as_secs_f64());
    let t = Instant::now();
    let store = SqliteStore::open(path, SqliteConfig::default()).expect("reopens");
    let engine = w.builder().store(store).clock(ManualClock::new(w.now)).start().await.expect("starts");
    let d = t.elapsed();
    assert_eq!(engine.start_info().snapshot, Some(Position(n as u64)), "started from the snapshot");
    eprintln!("replay/open_snapshot: {:.3} s", d.as_secs_f64());
    engine.shutdown().await;
    let conn = rusqlite::Connection::open(path).expect("opens");
    conn.execute("DELETE FROM snapshots", []).expect("deletes the snapshot");
}

//! Durable throughput of the SQLite and PostgreSQL stores, and the time to
//! open a large store and rebuild the state from it.
//!
//! The events are real: every request of a generated city (6,000 teams)
//! lives its whole life through the core (submit, accept, check in,
//! complete, four evaluations, close, the service credits; about fifteen
//! events a request), and the
//! resulting log is what the stores write. Measured, each once per run:
//!
//! - `append_batched`: the log appended in batches of 1,000 events;
//! - `append_single`: one event per append, one writer, each append durable
//!   before the next (no batching at all);
//! - `append_single_64`: one event per append from 64 concurrent writers (the
//!   store may commit concurrent appends together);
//! - `engine_batched` / `engine_unbatched`: commands/s through the `Engine`
//!   over the store, 64 concurrent clients, group commit of up to 1,024
//!   commands vs one command per append;
//! - `open_replay`: open a store of `SIDAN_BENCH_REPLAY_EVENTS` events (1M for
//!   SQLite, 200k for PostgreSQL by default) and `EngineBuilder::start` on it (full
//!   replay), with the store's read alone and the core's fold alone beside it;
//! - `open_snapshot`: the same store with a lifecycle snapshot of its whole log
//!   saved: open and `EngineBuilder::start` (decode, restore, nothing to replay), with
//!   the snapshot's encoding time and size beside it.
//!
//! SQLite runs with `synchronous = FULL`, PostgreSQL with
//! `synchronous_commit = on` (its server default is kept otherwise). Results
//! go to the workspace's `target/store-bench.json`; `benches/store_report.py` writes them into
//! docs/benchmarks.md. Without a PostgreSQL server the PG half is skipped.
//!
//! Run: `cargo bench -p sidan-store-sqlite --bench store && python3 benches/store_report.py`.

mod common;

/// The allocator the `sidan` binary runs with.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{TEAMS, World, after_offer, env_usize, log_of, offered, world};
use sidan_core::geo::StraightLine;
use sidan_core::lifecycle::{Command, Lifecycle, Recorded, RequestCommand};
use sidan_core::request::RequestSpec;
use sidan_runtime::{EngineConfig, EngineError, ManualClock, Position, Store};
use sidan_store_postgres::{PgConfig, PgStore};
use sidan_store_sqlite::{SqliteConfig, SqliteStore};
use sidan_store_tests::TempDir;
use sidan_store_tests::pg::pg_or_skip;

const CLIENTS: usize = 64;

#[derive(Debug, Clone)]
struct Figure {
    store: &'static str,
    name: &'static str,
    /// Things per second (events or commands), or seconds for timings.
    value: f64,
    unit: &'static str,
    /// How many things were measured.
    n: usize,
}

fn rate(n: usize, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64()
}

async fn append_batched<S: Store>(store: &S, log: &[Recorded], batch: usize) -> Duration {
    let t = Instant::now();
    for chunk in log.chunks(batch) {
        store.append(chunk).await.expect("append");
    }
    t.elapsed()
}

async fn append_single<S: Store>(store: &S, log: &[Recorded]) -> Duration {
    let t = Instant::now();
    for r in log {
        store.append(std::slice::from_ref(r)).await.expect("append");
    }
    t.elapsed()
}

/// One event per append from 64 writers, each owning the streams `hash % 64`, in log order.
async fn append_single_concurrent<S: Store + Clone>(store: &S, log: &[Recorded]) -> Duration {
    use std::hash::{Hash, Hasher};
    let mut parts: Vec<Vec<Recorded>> = vec![Vec::new(); CLIENTS];
    for r in log {
        let mut h = std::hash::DefaultHasher::new();
        r.stream.hash(&mut h);
        parts[(h.finish() % CLIENTS as u64) as usize].push(r.clone());
    }
    let t = Instant::now();
    let tasks: Vec<_> = parts
        .into_iter()
        .map(|part| {
            let store = store.clone();
            tokio::spawn(async move {
                for r in part {
                    store.append(std::slice::from_ref(&r)).await.expect("append");
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("writer");
    }
    t.elapsed()
}

/// Every request's life through an engine over `store` from 64 clients; returns (commands, time).
async fn engine_run<S: Store>(w: &World, store: S, requests: usize, max_batch: usize) -> (usize, Duration) {
    let config = EngineConfig { max_batch, ..EngineConfig::default() };
    let engine =
        Arc::new(w.builder().store(store).clock(ManualClock::new(w.now)).config(config).start().await.expect("starts"));
    let specs: Arc<Vec<RequestSpec>> = Arc::new(w.specs[..requests].to_vec());
    let t = Instant::now();
    let tasks: Vec<_> = (0..CLIENTS)
        .map(|client| {
            let (engine, specs) = (Arc::clone(&engine), Arc::clone(&specs));
            tokio::spawn(async move {
                let mut n = 0;
                for spec in specs.iter().skip(client).step_by(CLIENTS) {
                    let r = engine
                        .execute(Command::Request(RequestCommand::Submit { spec: spec.clone() }))
                        .await
                        .expect("submits");
                    n += 1;
                    if let Some(team) = offered(&r.events) {
                        // Only stored commands count; a refused evaluation stores nothing.
                        for cmd in after_offer(spec, &team) {
                            match engine.execute(cmd).await {
                                Ok(_) => n += 1,
                                Err(EngineError::Rejected(_)) => {}
                                Err(e) => panic!("engine: {e}"),
                            }
                        }
                    }
                }
                n
            })
        })
        .collect();
    let mut n = 0;
    for task in tasks {
        n += task.await.expect("client");
    }
    let d = t.elapsed();
    if let Some(engine) = Arc::into_inner(engine) {
        engine.shutdown().await;
    }
    (n, d)
}

/// Reads the whole log page by page (what a replay reads), without applying it.
async fn scan<S: Store>(store: &S) -> usize {
    let mut at = sidan_runtime::Position(0);
    let mut n = 0;
    loop {
        let page = store.read_from(at, 4096).await.expect("read_from");
        let Some(last) = page.last() else { return n };
        at = last.position;
        n += page.len();
    }
}

fn fold(w: &World, log: &[Recorded]) -> (Lifecycle<StraightLine>, Duration) {
    let mut lc = w.lifecycle();
    let t = Instant::now();
    for r in log {
        lc.apply(r).expect("applies");
    }
    (lc, t.elapsed())
}

/// Saves a snapshot of the state after the whole store's log, then opens the store and starts
/// an engine on it (restore, nothing to replay). Returns (encode, open + start, bytes).
async fn snapshot_open(
    w: &World,
    lc: &Lifecycle<StraightLine>,
    path: &std::path::Path,
    n: usize,
) -> (Duration, Duration, usize) {
    let t = Instant::now();
    let snap = sidan_runtime::snapshot::encode(lc, Position(n as u64));
    let encode = t.elapsed();
    let bytes = snap.data.len();
    let store = SqliteStore::open(path, SqliteConfig::default()).expect("reopens");
    assert!(store.save_snapshot(&snap).await.expect("saves"), "SQLite keeps snapshots");
    drop(store);
    let t = Instant::now();
    let store = SqliteStore::open(path, SqliteConfig::default()).expect("reopens");
    let engine = w.builder().store(store).clock(ManualClock::new(w.now)).start().await.expect("starts");
    let info = engine.start_info().clone();
    engine.query(|lc| lc.applied()).await.expect("queries");
    let d = t.elapsed();
    assert_eq!((info.snapshot, info.replayed), (Some(Position(n as u64)), 0), "started from the snapshot");
    engine.shutdown().await;
    (encode, d, bytes)
}

async fn start_replay<S: Store>(w: &World, store: S) -> Duration {
    let t = Instant::now();
    let engine = w.builder().store(store).clock(ManualClock::new(w.now)).start().await.expect("starts");
    engine.query(|lc| lc.applied()).await.expect("queries");
    let d = t.elapsed();
    engine.shutdown().await;
    d
}

fn say(f: &Figure) {
    if f.unit == "s" {
        eprintln!("store/{}/{}: {:.2} s ({} events)", f.store, f.name, f.value, f.n);
    } else {
        eprintln!("store/{}/{}: {:.0} {} (n = {})", f.store, f.name, f.value, f.unit, f.n);
    }
}

fn main() {
    // `cargo bench` passes `--bench`; a filter argument is not supported.
    // Other work on the machine skews the figures: the load average goes into the report.
    let load_start = std::fs::read_to_string("/proc/loadavg").unwrap_or_default().trim().to_owned();
    let sqlite_replay = env_usize("SIDAN_BENCH_REPLAY_EVENTS", 1_000_000);
    let pg_replay = env_usize("SIDAN_BENCH_PG_REPLAY_EVENTS", 200_000);
    let w = world(env_usize("SIDAN_BENCH_REQUESTS", 400_000));
    let t = Instant::now();
    let log = log_of(&w, sqlite_replay.max(pg_replay).max(200_000));
    eprintln!("store: a log of {} events from the core in {:.1} s", log.len(), t.elapsed().as_secs_f64());
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let mut figures: Vec<Figure> = Vec::new();
    let mut push = |f: Figure| {
        say(&f);
        figures.push(f);
    };

    // SQLite.
    let dir = TempDir::new("store-bench");
    let mut n_file = 0;
    let mut sqlite = || {
        n_file += 1;
        SqliteStore::open(dir.path().join(format!("bench-{n_file}.db")), SqliteConfig::default()).expect("opens")
    };
    rt.block_on(async {
        let n = 200_000;
        let d = append_batched(&sqlite(), &log[..n], 1000).await;
        push(Figure { store: "sqlite", name: "append_batched", value: rate(n, d), unit: "events/s", n });
        let n = 2_000;
        let d = append_single(&sqlite(), &log[..n]).await;
        push(Figure { store: "sqlite", name: "append_single", value: rate(n, d), unit: "events/s", n });
        let n = 20_000;
        let d = append_single_concurrent(&sqlite(), &log[..n]).await;
        push(Figure { store: "sqlite", name: "append_single_64", value: rate(n, d), unit: "events/s", n });
        let (n, d) = engine_run(&w, sqlite(), 4_000, EngineConfig::default().max_batch).await;
        push(Figure { store: "sqlite", name: "engine_batched", value: rate(n, d), unit: "commands/s", n });
        let (n, d) = engine_run(&w, sqlite(), 250, 1).await;
        push(Figure { store: "sqlite", name: "engine_unbatched", value: rate(n, d), unit: "commands/s", n });

        let n = sqlite_replay;
        let store = sqlite();
        let path = store.path().to_owned();
        let d = append_batched(&store, &log[..n], 10_000).await;
        push(Figure { store: "sqlite", name: "append_bulk", value: rate(n, d), unit: "events/s", n });
        drop(store);
        let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0)
            + std::fs::metadata(path.with_extension("db-wal")).map(|m| m.len()).unwrap_or(0);
        push(Figure { store: "sqlite", name: "file_bytes_per_event", value: size as f64 / n as f64, unit: "B", n });
        let t = Instant::now();
        let store = SqliteStore::open(&path, SqliteConfig::default()).expect("reopens");
        let open = t.elapsed();
        push(Figure { store: "sqlite", name: "open", value: open.as_secs_f64(), unit: "s", n });
        let t = Instant::now();
        let scanned = scan(&store).await;
        assert_eq!(scanned, n);
        push(Figure { store: "sqlite", name: "read_all", value: t.elapsed().as_secs_f64(), unit: "s", n });
        let d = start_replay(&w, store).await;
        push(Figure { store: "sqlite", name: "open_replay", value: (open + d).as_secs_f64(), unit: "s", n });
        let (lc, d) = fold(&w, &log[..n]);
        push(Figure { store: "core", name: "fold", value: d.as_secs_f64(), unit: "s", n });
        let (encode, open, bytes) = snapshot_open(&w, &lc, &path, n).await;
        push(Figure { store: "sqlite", name: "snapshot_encode", value: encode.as_secs_f64(), unit: "s", n });
        push(Figure { store: "sqlite", name: "snapshot_bytes", value: bytes as f64, unit: "B", n });
        push(Figure { store: "sqlite", name: "open_snapshot", value: open.as_secs_f64(), unit: "s", n });
    });
    drop(dir);

    // PostgreSQL.
    rt.block_on(async {
        let Some(scratch) = pg_or_skip("store bench").await else { return };
        let config = |s: &sidan_store_tests::pg::PgScratch| PgConfig::new(s.url()).with_schema(s.schema());
        let fresh = || async {
            let s = pg_or_skip("store bench").await.expect("the server answered");
            let store = PgStore::open(&config(&s)).await.expect("opens");
            (s, store)
        };
        let n = 100_000;
        let (_s, store) = fresh().await;
        let d = append_batched(&store, &log[..n], 1000).await;
        push(Figure { store: "postgres", name: "append_batched", value: rate(n, d), unit: "events/s", n });
        let n = 2_000;
        let (_s, store) = fresh().await;
        let d = append_single(&store, &log[..n]).await;
        push(Figure { store: "postgres", name: "append_single", value: rate(n, d), unit: "events/s", n });
        let n = 20_000;
        let (_s, store) = fresh().await;
        let d = append_single_concurrent(&store, &log[..n]).await;
        push(Figure { store: "postgres", name: "append_single_64", value: rate(n, d), unit: "events/s", n });
        let (_s, store) = fresh().await;
        let (n, d) = engine_run(&w, store, 4_000, EngineConfig::default().max_batch).await;
        push(Figure { store: "postgres", name: "engine_batched", value: rate(n, d), unit: "commands/s", n });
        let (_s, store) = fresh().await;
        let (n, d) = engine_run(&w, store, 250, 1).await;
        push(Figure { store: "postgres", name: "engine_unbatched", value: rate(n, d), unit: "commands/s", n });

        let n = pg_replay;
        let store = PgStore::open(&config(&scratch)).await.expect("opens");
        let d = append_batched(&store, &log[..n], 10_000).await;
        push(Figure { store: "postgres", name: "append_bulk", value: rate(n, d), unit: "events/s", n });
        drop(store);
        let t = Instant::now();
        let store = PgStore::open(&config(&scratch)).await.expect("reopens");
        let open = t.elapsed();
        push(Figure { store: "postgres", name: "open", value: open.as_secs_f64(), unit: "s", n });
        let t = Instant::now();
        assert_eq!(scan(&store).await, n);
        push(Figure { store: "postgres", name: "read_all", value: t.elapsed().as_secs_f64(), unit: "s", n });
        let d = start_replay(&w, store).await;
        push(Figure { store: "postgres", name: "open_replay", value: (open + d).as_secs_f64(), unit: "s", n });
    });

    // The workspace's target/ folder, whatever CARGO_TARGET_DIR says: the report reads it there.
    let out = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target");
    let _ = std::fs::create_dir_all(&out);
    let figures: Vec<serde_json::Value> = figures
        .iter()
        .map(|f| serde_json::json!({"store": f.store, "name": f.name, "value": f.value, "unit": f.unit, "n": f.n}))
        .collect();
    let json = serde_json::json!({
        "loadavg_start": load_start,
        "loadavg_end": std::fs::read_to_string("/proc/loadavg").unwrap_or_default().trim(),
        "teams": TEAMS,
        "clients": CLIENTS,
        "figures": figures,
    });
    let path = out.join("store-bench.json");
    match std::fs::write(&path, serde_json::to_string_pretty(&json).expect("serialises")) {
        Ok(()) => eprintln!("store: wrote {}", path.display()),
        Err(e) => eprintln!("store: cannot write {}: {e}", path.display()),
    }
}

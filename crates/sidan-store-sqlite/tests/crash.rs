//! Kill -9 under load (reliability.md G5, invariants 11, 12 and 14).
//!
//! `crash_under_load` re-runs this test binary as a child process that
//! drives an [`Engine`] on a SQLite file with many concurrent clients
//! (submit, accept, cancel, decline over a generated city) and prints every
//! acknowledged command as soon as its receipt arrives:
//! `ACK <command> <request> <receipt position> <event id>,<event id>,…`.
//! The parent kills it with SIGKILL at a random instant, `SIDAN_CRASH_KILLS`
//! times (60 by default), some of them while the child is still opening and
//! replaying the file. After every kill it reopens the file and checks:
//!
//! - SQLite's `integrity_check` is `ok`;
//! - positions are gapless from 1, every stream's seqs gapless from 1, ids unique;
//! - every event of every command acknowledged so far (this round and the
//!   earlier ones on the same file) is there, at the position it had, at or
//!   before its receipt's position; the events of one command are
//!   contiguous, and the log reaches the receipt's position, so the batch
//!   it was committed in is whole;
//! - folding the log through a fresh `Lifecycle` applies every event, and
//!   starting an engine on the reopened store gives the same digest (the child
//!   saves a lifecycle snapshot every 2,000 events, so the restart usually
//!   starts from one, and some kills land while one is being written);
//! - accepts are sent with a command key (invariant 15): every stored key's
//!   events are in the log, every acknowledged accept's key is stored with
//!   its receipt's events and position, and sending each acknowledged accept
//!   of the round again under its key, to the engine started on the
//!   reopened store, gets the same receipt and appends nothing.
//!
//! A failure prints the seed; `SIDAN_CRASH_SEED=<seed>` replays the same
//! kill schedule (the child's timing still varies).

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command as Process, Stdio};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sidan_core::dispatch::Dispatcher;
use sidan_core::geo::StraightLine;
use sidan_core::id::RequestId;
use sidan_core::lifecycle::{Command, DeclineReason, Lifecycle, PolicyBook, RequestCommand, Text};
use sidan_core::request::RequestSpec;
use sidan_core::testkit::t0;
use sidan_runtime::{CommandKey, Engine, EngineConfig, EngineError, ManualClock, Receipt, Store};
use sidan_sim::{CityConfig, DemandConfig, generate_city, generate_requests};
use sidan_store_sqlite::{SqliteConfig, SqliteStore};
use sidan_store_tests::{TempDir, check_log_shape, offered, read_all};

const CHILD_PATH: &str = "SIDAN_CRASH_CHILD";
const CHILD_ROUND: &str = "SIDAN_CRASH_ROUND";
const CLIENTS: usize = 24;
/// A new file every this many kills, so replay times stay short.
const KILLS_PER_FILE: usize = 20;

fn dispatcher() -> Dispatcher<StraightLine> {
    let file = generate_city(&CityConfig { seed: 5, teams: 400, ..CityConfig::default() });
    let (city, index) = file.build().expect("the generated city is valid");
    Dispatcher::new(city, index)
}

fn lifecycle() -> Lifecycle<StraightLine> {
    Lifecycle::new(dispatcher(), PolicyBook::default())
}

/// The child's clock: ten minutes later each round, so offers of killed rounds expire.
fn clock_at(round: u64) -> chrono::DateTime<chrono::Utc> {
    t0() + chrono::Duration::minutes(10 * round as i64)
}

// ---------------------------------------------------------------------------
// The child
// ---------------------------------------------------------------------------

#[test]
#[ignore = "the child half of crash_under_load, which runs it in a process of its own"]
fn crash_child() {
    let Ok(path) = std::env::var(CHILD_PATH) else { return };
    let round: u64 = std::env::var(CHILD_ROUND).ok().and_then(|r| r.parse().ok()).expect("the round");
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    rt.block_on(child(Path::new(&path), round));
}

fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    // A new line first: libtest may have left "test crash_child ... " unfinished.
    let _ = writeln!(out, "\n{line}");
    let _ = out.flush();
}

/// The key a team's app sends an accept under.
fn accept_key(team: &str, request: &str) -> CommandKey {
    CommandKey::new(format!("team:{team}"), format!("accept:{request}")).expect("valid key")
}

fn ack(command: &str, request: &RequestId, receipt: &Receipt) {
    let ids: Vec<String> = receipt.events.iter().map(|e| e.id()).collect();
    say(&format!("ACK {command} {request} {} {}", receipt.position.0, ids.join(",")));
}

async fn child(path: &Path, round: u64) {
    let store = SqliteStore::open(path, SqliteConfig::default()).expect("the child opens the store");
    let now = clock_at(round);
    // Requests for the next two days, ids unique to the round.
    let (city, _) = generate_city(&CityConfig { seed: 5, teams: 400, ..CityConfig::default() }).build().expect("city");
    let demand = DemandConfig {
        seed: round,
        requests: 20_000,
        start: now + chrono::Duration::hours(2),
        days: 2,
        ..DemandConfig::default()
    };
    let specs: Vec<RequestSpec> = generate_requests(&city, &demand)
        .into_iter()
        .enumerate()
        .map(|(i, mut s)| {
            s.id = RequestId::new(&format!("k{round}-{i}")).expect("valid id");
            s
        })
        .collect();
    let engine = Arc::new(
        // Snapshots every few thousand events, so that kills also land while one is written.
        Engine::builder(dispatcher())
            .store(store)
            .clock(ManualClock::new(now))
            .config(EngineConfig { snapshot_every: 2_000, ..EngineConfig::default() })
            .start()
            .await
            .expect("the engine starts on the store"),
    );
    say("READY");
    let specs = Arc::new(specs);
    let tasks: Vec<_> = (0..CLIENTS)
        .map(|c| {
            let (engine, specs) = (Arc::clone(&engine), Arc::clone(&specs));
            tokio::spawn(async move {
                for (i, spec) in specs.iter().enumerate().skip(c).step_by(CLIENTS) {
                    client_step(&engine, spec, i).await;
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("client");
    }
    say("DONE");
}

/// One request's commands; every refusal must be a typed lifecycle refusal.
async fn client_step(engine: &Engine<StraightLine>, spec: &RequestSpec, i: usize) {
    let request = spec.id.clone();
    let ok = |r: Result<Receipt, EngineError>| match r {
        Ok(r) => Some(r),
        Err(EngineError::Rejected(_)) => None,
        Err(e) => panic!("{request}: unexpected engine error {e}"),
    };
    let Some(r) = ok(engine.execute(Command::Request(RequestCommand::Submit { spec: spec.clone() })).await) else {
        return;
    };
    ack("submit", &request, &r);
    let teams = offered(&r.events);
    let Some(team) = teams.first().cloned() else { return };
    if i.is_multiple_of(5) {
        let cmd = Command::Request(RequestCommand::Decline {
            request: request.clone(),
            team,
            reason: DeclineReason::NoVolunteers,
        });
        if let Some(r) = ok(engine.execute(cmd).await) {
            ack("decline", &request, &r);
        }
        return;
    }
    let key = accept_key(team.as_str(), request.as_str());
    let accept = Command::Request(RequestCommand::Accept { request: request.clone(), team: team.clone() });
    if let Some(r) = ok(engine.execute_keyed(key, accept).await) {
        ack(&format!("accept={team}"), &request, &r);
    }
    if !i.is_multiple_of(3) {
        let cmd = Command::Request(RequestCommand::Cancel {
            request: request.clone(),
            reason: Text::new("no longer needed").expect("short text"),
        });
        if let Some(r) = ok(engine.execute(cmd).await) {
            ack("cancel", &request, &r);
        }
    }
}

// ---------------------------------------------------------------------------
// The parent
// ---------------------------------------------------------------------------

/// An acknowledged command, as the child printed it.
#[derive(Debug)]
struct Ack {
    line: String,
    command: String,
    request: String,
    position: u64,
    ids: Vec<String>,
}

fn parse(line: &str) -> Option<Ack> {
    let at = line.find("ACK ")?;
    let rest = &line[at..];
    let parts: Vec<&str> = rest.split(' ').collect();
    assert!(parts.len() == 5, "a whole ACK line: {rest:?}");
    let position = parts[3].parse().expect("a receipt position");
    let ids = parts[4].split(',').map(str::to_owned).collect();
    Some(Ack { line: rest.to_owned(), command: parts[1].to_owned(), request: parts[2].to_owned(), position, ids })
}

#[test]
fn crash_under_load() {
    let kills: usize = std::env::var("SIDAN_CRASH_KILLS").ok().and_then(|v| v.parse().ok()).unwrap_or(60);
    let seed: u64 = std::env::var("SIDAN_CRASH_SEED").ok().and_then(|v| v.parse().ok()).unwrap_or(20_261_130);
    eprintln!("crash_under_load: {kills} kills, SIDAN_CRASH_SEED={seed}");
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let exe = std::env::current_exe().expect("the test binary");
    let dir = TempDir::new("crash");
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let started = Instant::now();
    let mut durable: HashMap<String, u64> = HashMap::new();
    let (mut total_acks, mut early_kills, mut retried) = (0usize, 0usize, 0usize);
    let mut path = dir.path().join("crash-0.db");
    for round in 0..kills {
        if round % KILLS_PER_FILE == 0 {
            path = dir.path().join(format!("crash-{round}.db"));
            durable.clear();
        }
        let mut child = Process::new(&exe)
            .args(["crash_child", "--exact", "--ignored", "--nocapture", "--test-threads=1"])
            .env(CHILD_PATH, &path)
            .env(CHILD_ROUND, round.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawns the child");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel::<String>();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        // One kill in five lands while the child opens, migrates or replays.
        let early = rng.random_range(0..5u32) == 0;
        let mut lines = Vec::new();
        if early {
            early_kills += 1;
            std::thread::sleep(Duration::from_millis(rng.random_range(0..40u64)));
        } else {
            let deadline = Instant::now() + Duration::from_secs(60);
            loop {
                let left = deadline.saturating_duration_since(Instant::now());
                match rx.recv_timeout(left) {
                    Ok(line) => {
                        let ready = line.contains("READY");
                        lines.push(line);
                        if ready {
                            break;
                        }
                    }
                    Err(_) => {
                        let _ = child.kill();
                        let status = child.wait().expect("waits");
                        panic!("round {round} (seed {seed}): the child never got ready; it exited with {status}");
                    }
                }
            }
            // The random instant of the kill, under load.
            std::thread::sleep(Duration::from_millis(rng.random_range(5..300u64)));
        }
        let exited_early = child.try_wait().expect("polls the child");
        child.kill().expect("SIGKILL");
        let status = child.wait().expect("waits");
        if let Some(s) = exited_early {
            panic!("round {round} (seed {seed}): the child exited on its own before the kill: {s}");
        }
        reader.join().expect("reader");
        lines.extend(rx.try_iter());
        assert!(lines.iter().all(|l| !l.contains("DONE")), "round {round}: the child ran out of work before the kill");
        let acks: Vec<Ack> = lines.iter().filter_map(|l| parse(l)).collect();
        total_acks += acks.len();
        retried += rt.block_on(verify(&path, &acks, &mut durable, round, seed));
        eprintln!(
            "round {round}: {} after {status}, {} acknowledged commands, {} acknowledged events on file",
            if early { "early kill" } else { "kill under load" },
            acks.len(),
            durable.len()
        );
    }
    eprintln!(
        "crash_under_load: {kills} SIGKILLs ({early_kills} during open/replay), {total_acks} acknowledged commands \
         checked, {retried} keyed accepts sent again after the kill, {:.1} s",
        started.elapsed().as_secs_f64()
    );
    assert!(kills < 10 || total_acks > kills, "the children were under load: {total_acks} acknowledged commands");
    assert!(kills < 10 || retried > 0, "keyed accepts were acknowledged and sent again");
}

/// Checks the file after a kill; returns how many acknowledged accepts were sent again.
async fn verify(path: &Path, acks: &[Ack], durable: &mut HashMap<String, u64>, round: usize, seed: u64) -> usize {
    let ctx = format!("round {round} (seed {seed})");
    if path.exists() {
        let c = rusqlite::Connection::open(path).expect("opens the file");
        let ok: String = c.query_row("PRAGMA integrity_check", [], |r| r.get(0)).expect("integrity_check");
        assert_eq!(ok, "ok", "{ctx}: SQLite integrity");
    }
    let store = SqliteStore::open(path, SqliteConfig::default()).expect("reopens after SIGKILL");
    let log = read_all(&store).await;
    check_log_shape(&log);
    let at: HashMap<String, u64> = log.iter().map(|s| (s.record.id(), s.position.0)).collect();
    for a in acks {
        assert!(log.len() as u64 >= a.position, "{ctx}: the batch of {:?} reaches position {}", a.line, a.position);
        let mut prev: Option<u64> = None;
        for id in &a.ids {
            let p = *at.get(id).unwrap_or_else(|| panic!("{ctx}: acknowledged event {id} is lost ({})", a.line));
            assert!(p <= a.position, "{ctx}: {id} at {p}, after its receipt's position {}", a.position);
            if let Some(q) = prev {
                assert_eq!(p, q + 1, "{ctx}: the events of {:?} are contiguous", a.line);
            }
            prev = Some(p);
            durable.insert(id.clone(), p);
        }
    }
    for (id, p) in durable.iter() {
        assert_eq!(at.get(id), Some(p), "{ctx}: {id}, acknowledged in an earlier round, is still at {p}");
    }
    // Keys: each stored key's events are there (a key is never without its batch).
    let keys = store.keys_since(chrono::DateTime::<chrono::Utc>::MIN_UTC).await.expect("keys_since");
    let head = log.len() as u64;
    for k in &keys {
        assert!(k.position.0 <= head && k.first.0 + k.count <= head + 1, "{ctx}: {} points past the log", k.key);
    }
    let keys: HashMap<CommandKey, _> = keys.into_iter().map(|k| (k.key.clone(), k)).collect();
    let accepts: Vec<(&Ack, &str)> =
        acks.iter().filter_map(|a| a.command.strip_prefix("accept=").map(|team| (a, team))).collect();
    for (a, team) in &accepts {
        let k = keys.get(&accept_key(team, &a.request)).unwrap_or_else(|| panic!("{ctx}: the key of {:?}", a.line));
        assert_eq!((k.first.0, k.count, k.position.0), (at[&a.ids[0]], a.ids.len() as u64, a.position), "{ctx}");
    }
    let mut lc = lifecycle();
    for s in &log {
        if let Err(e) = lc.apply(&s.record) {
            panic!("{ctx}: the stored log does not replay at position {}: {e}", s.position.0);
        }
    }
    let folded = lc.digest();
    let engine = Engine::builder(dispatcher())
        .store(store.clone())
        .clock(ManualClock::new(t0()))
        .start()
        .await
        .unwrap_or_else(|e| panic!("{ctx}: starting an engine on the reopened store: {e}"));
    assert_eq!(engine.query(|lc| lc.digest()).await.expect("queries"), folded, "{ctx}: replay == fold");
    // Acknowledged accepts sent again after the crash: the same receipt, nothing new.
    for (a, team) in &accepts {
        let request = RequestId::new(&a.request).expect("a request id");
        let team = sidan_core::id::TeamId::new(team).expect("a team id");
        let cmd = Command::Request(RequestCommand::Accept { request, team: team.clone() });
        let again = engine
            .execute_keyed(accept_key(team.as_str(), &a.request), cmd)
            .await
            .unwrap_or_else(|e| panic!("{ctx}: the retry of {:?}: {e}", a.line));
        let ids: Vec<String> = again.events.iter().map(|e| e.id()).collect();
        assert_eq!((ids, again.position.0), (a.ids.clone(), a.position), "{ctx}: the retry of {:?}", a.line);
    }
    engine.shutdown().await;
    assert_eq!(read_all(&store).await.len(), log.len(), "{ctx}: the retries appended nothing");
    accepts.len()
}

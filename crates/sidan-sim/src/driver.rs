//! The simulation driver: a seeded city run over the [`Engine`]. Residents
//! submit requests, the engine dispatches them, simulated teams answer,
//! arrive, serve and rate ([`crate::parties`]), volunteers spend what the
//! ledger credits them ([`crate::shop`]), and the engine's timers expire
//! offers, widen scopes and close requests. The clock is a [`ManualClock`]
//! moved from one scheduled action (or engine timer) to the next, so a seed
//! gives the same event log byte for byte.
//!
//! The simulated parties learn of what happened the way their apps would: by
//! reading the store's log. The reports are computed from the log alone.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use sidan_core::city::City;
use sidan_core::dispatch::Dispatcher;
use sidan_core::id::{RequestId, ServiceId, TeamId};
use sidan_core::index::TeamIndex;
use sidan_core::lifecycle::{Command, PolicyBook, Recorded, RequestCommand};
use sidan_core::report::{Granularity, Report};
use sidan_core::request::{RequestSpec, Urgency};
use sidan_runtime::{Engine, EngineError, ManualClock, Position, Store, StoreError, Stored};

use crate::behaviour::{Behaviour, BehaviourConfig};
use crate::parties::{Known, Parties, react};
use crate::shop::Shop;
use crate::summary::Summary;

/// How long after the last request the simulation keeps running timers.
const TAIL_DAYS: i64 = 10;

/// Why a simulation could not run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SimError {
    /// The engine failed (not a refusal: refusals are counted).
    #[error("engine: {0}")]
    Engine(#[from] EngineError),
    /// The store failed.
    #[error("store: {0}")]
    Store(#[from] StoreError),
}

/// A finished run: the log's fingerprint, the summary and the reports.
#[derive(Debug, Clone, Serialize)]
pub struct SimOutcome {
    /// Events in the log.
    pub events: u64,
    /// FNV-1a hash of the serialised log: equal runs have equal hashes.
    pub log_hash: String,
    /// Commands the engine refused (typed refusals, by kind), e.g. a late acceptance.
    pub refused: BTreeMap<String, u64>,
    /// The summary: the whole run's rows of the city and each county.
    pub report: Summary,
    /// The monthly statistics per unit.
    #[serde(skip)]
    pub monthly: Report,
    /// The quarterly bulletin per unit.
    #[serde(skip)]
    pub quarterly: Report,
}

/// Runs requests through an engine on `store`, with simulated teams.
///
/// # Errors
/// A store or engine failure (refused commands are counted, not errors).
pub async fn run<S: Store + Clone>(
    city: City,
    index: TeamIndex,
    policies: PolicyBook,
    mut requests: Vec<RequestSpec>,
    behaviour: BehaviourConfig,
    start: DateTime<Utc>,
    store: S,
) -> Result<SimOutcome, SimError> {
    let members: HashMap<TeamId, u32> = index.records().iter().map(|t| (t.id.clone(), t.members)).collect();
    let durations: HashMap<ServiceId, u32> =
        city.services().iter().map(|s| (s.id.clone(), s.default_duration_min)).collect();
    let report_city = city.clone();
    let clock = ManualClock::new(start);
    let engine = Engine::builder(Dispatcher::new(city.clone(), index.clone()))
        .policies(policies)
        .store(store.clone())
        .clock(clock.clone())
        .start()
        .await?;
    let mut b = Behaviour::new(behaviour);
    let mut agenda: BTreeMap<(DateTime<Utc>, u64), Command> = BTreeMap::new();
    let mut seq = 0u64;
    let mut schedule = |agenda: &mut BTreeMap<(DateTime<Utc>, u64), Command>, at: DateTime<Utc>, a: Command| {
        seq += 1;
        agenda.insert((at, seq), a);
    };
    let mut shop = Shop::default();
    for c in shop.stock_stations(&report_city, &mut b) {
        schedule(&mut agenda, start, c);
    }
    requests.sort_by_key(|r| r.window.start());
    let mut last = start;
    for (i, spec) in requests.into_iter().enumerate() {
        // Residents ask between a day ahead and a few hours ahead; emergencies minutes ahead.
        let lead = match spec.urgency {
            Urgency::Emergency => Duration::minutes(5),
            Urgency::Urgent => Duration::hours(2),
            Urgency::Normal => Duration::hours(4 + (i as i64 * 7919) % 44),
        };
        let at = (spec.window.start() - lead).max(start);
        last = last.max(at);
        schedule(&mut agenda, at, Command::Request(RequestCommand::Submit { spec }));
    }
    let end = last + Duration::days(TAIL_DAYS);
    let mut known: HashMap<RequestId, Known> = HashMap::new();
    let mut refused: BTreeMap<String, u64> = BTreeMap::new();
    let mut cursor = Position(0);
    loop {
        let wake = engine.query(|lc| lc.next_wakeup()).await?;
        let next = match (agenda.keys().next().map(|k| k.0), wake) {
            (Some(a), Some(w)) => a.min(w),
            (Some(a), None) => a,
            (None, Some(w)) => w,
            (None, None) => break,
        };
        if next > end {
            break;
        }
        let now = next.max(clock_now(&clock));
        clock.set(now);
        engine.settle().await?;
        while let Some(entry) = agenda.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let cmd = entry.remove();
            match engine.execute(cmd).await {
                Ok(_) => {}
                Err(EngineError::Rejected(e)) => *refused.entry(refusal_kind(&e)).or_insert(0) += 1,
                Err(e) => return Err(e.into()),
            }
        }
        // React to what happened, in log order, like the teams' and residents' apps would.
        loop {
            let new = store.read_from(cursor, 4096).await?;
            let Some(l) = new.last() else { break };
            cursor = l.position;
            for s in &new {
                let parties = Parties { members: &members, durations: &durations };
                react(s, now, &mut b, &mut known, &parties, &mut |at, a| schedule(&mut agenda, at, a));
                shop.observe(s, now, &mut b, &mut |at, a| schedule(&mut agenda, at, a));
            }
        }
    }
    engine.shutdown().await;
    let log = read_all(&store).await?;
    let records: Vec<Recorded> = log.iter().map(|s| s.record.clone()).collect();
    let report = Summary::from_log(&report_city, &records);
    let monthly = sidan_core::report::report(&report_city, &records, Granularity::Month);
    let quarterly = sidan_core::report::report(&report_city, &records, Granularity::Quarter);
    Ok(SimOutcome { events: log.len() as u64, log_hash: log_hash(&log), refused, report, monthly, quarterly })
}

fn clock_now(clock: &ManualClock) -> DateTime<Utc> {
    use sidan_runtime::Clock as _;
    clock.now()
}

fn refusal_kind(e: &sidan_core::lifecycle::LifecycleError) -> String {
    let dbg = format!("{e:?}");
    dbg.split([' ', '{', '(']).next().unwrap_or("other").to_owned()
}

/// FNV-1a over the serialised log.
pub fn log_hash(log: &[Stored]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for s in log {
        let bytes = serde_json::to_vec(s).unwrap_or_default();
        for b in bytes {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    format!("{h:016x}")
}

/// The whole log of a store, in order.
///
/// # Errors
/// A store failure.
pub async fn read_all<S: Store>(store: &S) -> Result<Vec<Stored>, StoreError> {
    let mut all = Vec::new();
    loop {
        let chunk = store.read_from(all.last().map_or(Position(0), |s: &Stored| s.position), 65_536).await?;
        if chunk.is_empty() {
            return Ok(all);
        }
        all.extend(chunk);
    }
}

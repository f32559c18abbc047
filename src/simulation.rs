//! A seeded city simulation over the engine: residents submit requests, the
//! engine dispatches them, simulated teams answer, arrive, serve and rate, and
//! the engine's timers expire offers, widen scopes and close requests.
//! Volunteers spend what the ledger credits them: every station's love
//! supermarket is stocked at the start, volunteers with enough points now and
//! then reserve goods (most picked up, the rest left to expire) and a few
//! spend banked time, all as ledger commands through the engine. The
//! clock is a [`ManualClock`] moved from one scheduled action (or engine
//! timer) to the next, so a seed gives the same event log byte for byte.
//!
//! The simulated teams learn of offers the way a team's app would: by reading
//! the store's log. The report is computed from the log alone: the core's
//! report of the whole run for the city and each county, and a few counts the
//! core report does not keep.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use sidan_core::city::City;
use sidan_core::dispatch::Dispatcher;
use sidan_core::id::{RequestId, ServiceId, TeamId, UnitId, VolunteerId};
use sidan_core::index::TeamIndex;
use sidan_core::ledger::{
    AccountId, ItemId, LedgerCommand, LedgerEvent, LedgerOp, Redemption, TransferId, TransferKind, TransferSpec,
};
use sidan_core::lifecycle::{
    Command, Event, OfferMode, PolicyBook, Recorded, RequestCommand, Score, ServiceMinutes, StreamId, Tags, Text,
    Volunteers,
};
use sidan_core::report::{Granularity, LedgerFigures, Percentiles, UnitReport};
use sidan_core::request::{RequestSpec, Urgency};
use sidan_core::units::UnitKind;
use sidan_runtime::{Engine, EngineError, ManualClock, Position, Store, StoreError, Stored};
use sidan_sim::{Answer, Behaviour, BehaviourConfig};

/// How long after the last request the simulation keeps running timers.
const TAIL_DAYS: i64 = 10;

/// Why a simulation could not run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SimError {
    /// The city file is invalid.
    #[error("city: {0}")]
    City(#[from] sidan_core::city::CityError),
    /// The engine failed (not a refusal: refusals are counted).
    #[error("engine: {0}")]
    Engine(#[from] EngineError),
    /// The store failed.
    #[error("store: {0}")]
    Store(#[from] StoreError),
}

/// The love supermarket's items: id, price in points, units each station receives at the start
/// (up to half as many again).
const ITEMS: [(&str, u64, u64); 3] = [("towel", 8, 12), ("cooking-oil", 20, 6), ("rice-5kg", 30, 4)];

/// How long goods stay reserved for pick-up.
const PICK_UP_S: u32 = 48 * 3600;

/// Banked minutes a withdrawal spends, and what a volunteer must hold to make one.
const WITHDRAWAL_MIN: u64 = 60;
const WITHDRAWAL_FLOOR_MIN: u64 = 180;

/// What the simulated volunteers know of their points, banked time and the shelves: counted
/// from the log, with what they have already decided to spend taken off.
#[derive(Debug, Default)]
struct Shop {
    points: HashMap<VolunteerId, u64>,
    minutes: HashMap<VolunteerId, u64>,
    /// Units each (station, item) is believed to have left.
    stock: HashMap<(UnitId, usize), u64>,
    /// Each request's unit.
    unit_of: HashMap<RequestId, UnitId>,
    /// The latest request submitted at each unit (what a withdrawal pays for).
    latest: HashMap<UnitId, RequestId>,
    /// Redemptions made, by the id of their goods leg, with their item.
    made: HashMap<TransferId, (Redemption, usize)>,
    next: u64,
}

impl Shop {
    fn id(&mut self, prefix: &str) -> Option<TransferId> {
        self.next += 1;
        TransferId::new(&format!("{prefix}-{}", self.next)).ok()
    }

    /// The start: every station receives each item.
    fn stock_stations(&mut self, city: &City, b: &mut Behaviour) -> Vec<Command> {
        let mut out = Vec::new();
        for (_, u) in city.units().iter().filter(|(_, u)| u.kind == UnitKind::Station) {
            let mut ops = vec![LedgerOp::Open { account: AccountId::Till(u.id.clone()) }];
            for (i, (item, _, base)) in ITEMS.iter().enumerate() {
                let (Ok(item), Some(id)) = (ItemId::new(item), self.id("restock")) else { continue };
                let (station, qty) = (u.id.clone(), b.restock(*base));
                let shelf = AccountId::Shelf { station: station.clone(), item: item.clone() };
                let receipt = AccountId::StockReceipt { station: station.clone(), item: item.clone() };
                let consumed = AccountId::StockConsumed { station: station.clone(), item };
                for account in [receipt.clone(), shelf.clone(), consumed] {
                    ops.push(LedgerOp::Open { account });
                }
                let kind = TransferKind::Restock {};
                let transfer = TransferSpec { id, debit: receipt, credit: shelf, amount: qty, kind, timeout_s: None };
                ops.push(LedgerOp::Transfer { transfer });
                self.stock.insert((station, i), qty);
            }
            out.push(Command::Ledger(LedgerCommand::new(ops)));
        }
        out
    }

    /// What the volunteers do about one stored event.
    fn observe(
        &mut self,
        s: &Stored,
        now: DateTime<Utc>,
        b: &mut Behaviour,
        schedule: &mut dyn FnMut(DateTime<Utc>, Command),
    ) {
        let entry = match (&s.record.stream, &s.record.event) {
            (StreamId::Request(r), Event::Submitted { spec, .. }) => {
                self.unit_of.insert(r.clone(), spec.unit.clone());
                self.latest.insert(spec.unit.clone(), r.clone());
                return;
            }
            (_, Event::Ledger { entry }) => entry,
            _ => return,
        };
        match entry {
            LedgerEvent::Transferred { transfer } => match (&transfer.kind, &transfer.credit) {
                (TransferKind::ServiceCredit { request }, AccountId::VolunteerPoints(v)) => {
                    *self.points.entry(v.clone()).or_default() += transfer.amount;
                    let Some(station) = self.unit_of.get(request).cloned() else { return };
                    if let Some(after) = b.redeem_after() {
                        self.redeem(v, station, now + after, b, schedule);
                    }
                }
                (TransferKind::ServiceCredit { request }, AccountId::VolunteerMinutes(v)) => {
                    let held = self.minutes.entry(v.clone()).or_default();
                    *held += transfer.amount;
                    if *held < WITHDRAWAL_FLOOR_MIN {
                        return;
                    }
                    let Some(after) = b.withdraw_after() else { return };
                    *held -= WITHDRAWAL_MIN;
                    // The hour pays for the latest request at the volunteer's station, as if
                    // it were their family's.
                    let unit = self.unit_of.get(request).cloned();
                    let Some(paid) = unit.and_then(|u| self.latest.get(&u).cloned()) else { return };
                    let Some(id) = self.id("withdrawal") else { return };
                    let transfer = TransferSpec {
                        id,
                        debit: AccountId::VolunteerMinutes(v.clone()),
                        credit: AccountId::MinutesSpent,
                        amount: WITHDRAWAL_MIN,
                        kind: TransferKind::Withdrawal { request: paid },
                        timeout_s: None,
                    };
                    let ops =
                        vec![LedgerOp::Open { account: AccountId::MinutesSpent }, LedgerOp::Transfer { transfer }];
                    schedule(now + after, Command::Ledger(LedgerCommand::new(ops)));
                }
                (TransferKind::Redemption { .. }, AccountId::StockConsumed { .. }) if transfer.timeout_s.is_some() => {
                    let Some((red, _)) = self.made.get(&transfer.id) else { return };
                    let timeout = Duration::seconds(i64::from(PICK_UP_S));
                    let Some(after) = b.pick_up(timeout) else { return };
                    let Ok(post) = red.id.with_suffix("pick-up").and_then(|id| red.post(&id)) else { return };
                    schedule(now + after, Command::Ledger(post));
                }
                _ => {}
            },
            // Not picked up: the goods are back on the shelf, the points with the volunteer.
            LedgerEvent::Expired { pending, .. } => {
                let Some((red, item)) = self.made.get(pending) else { return };
                *self.stock.entry((red.station.clone(), *item)).or_default() += red.quantity;
                *self.points.entry(red.volunteer.clone()).or_default() += red.points;
            }
            _ => {}
        }
    }

    /// Reserves one item the volunteer can afford and the station has, if any.
    fn redeem(
        &mut self,
        v: &VolunteerId,
        station: UnitId,
        at: DateTime<Utc>,
        b: &mut Behaviour,
        schedule: &mut dyn FnMut(DateTime<Utc>, Command),
    ) {
        let points = self.points.get(v).copied().unwrap_or(0);
        let can: Vec<usize> = (0..ITEMS.len())
            .filter(|&i| ITEMS[i].1 <= points && self.stock.get(&(station.clone(), i)).is_some_and(|&n| n > 0))
            .collect();
        if can.is_empty() {
            return;
        }
        let i = can[b.pick(can.len())];
        let (Ok(item), Some(id)) = (ItemId::new(ITEMS[i].0), self.id("redeem")) else { return };
        let red = Redemption {
            id,
            volunteer: v.clone(),
            station: station.clone(),
            item,
            points: ITEMS[i].1,
            quantity: 1,
            timeout_s: Some(PICK_UP_S),
        };
        let (Ok(command), Ok(goods)) = (red.command(), red.id.with_suffix("goods")) else { return };
        *self.points.entry(v.clone()).or_default() -= ITEMS[i].1;
        *self.stock.entry((station, i)).or_default() -= 1;
        self.made.insert(goods, (red, i));
        schedule(at, Command::Ledger(command));
    }
}

/// What the driver remembers of a request to act on it.
#[derive(Debug, Clone)]
struct Known {
    urgency: Urgency,
    window_start: DateTime<Utc>,
    window_end: DateTime<Utc>,
    duration_min: u32,
}

/// A finished run: the log's fingerprint and the report.
#[derive(Debug, Clone, Serialize)]
pub struct SimOutcome {
    /// Events in the log.
    pub events: u64,
    /// FNV-1a hash of the serialised log: equal runs have equal hashes.
    pub log_hash: String,
    /// Commands the engine refused (typed refusals, by kind), e.g. a late acceptance.
    pub refused: BTreeMap<String, u64>,
    /// The report.
    pub report: Report,
    /// The monthly statistics per unit.
    #[serde(skip)]
    pub monthly: sidan_core::report::Report,
    /// The quarterly bulletin per unit.
    #[serde(skip)]
    pub quarterly: sidan_core::report::Report,
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
    let report = Report::from_log(&report_city, &log);
    let records: Vec<Recorded> = log.iter().map(|s| s.record.clone()).collect();
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

/// What the simulated parties know of the city.
struct Parties<'a> {
    members: &'a HashMap<TeamId, u32>,
    durations: &'a HashMap<ServiceId, u32>,
}

/// Decides what the simulated parties do about one stored event.
fn react(
    s: &Stored,
    now: DateTime<Utc>,
    b: &mut Behaviour,
    known: &mut HashMap<RequestId, Known>,
    parties: &Parties<'_>,
    schedule: &mut dyn FnMut(DateTime<Utc>, Command),
) {
    let StreamId::Request(request) = &s.record.stream else { return };
    let request = request.clone();
    match &s.record.event {
        Event::Submitted { spec, .. } => {
            let duration_min =
                spec.duration_min.or_else(|| parties.durations.get(&spec.service).copied()).unwrap_or(60);
            let k = Known {
                urgency: spec.urgency,
                window_start: spec.window.start(),
                window_end: spec.window.end(),
                duration_min,
            };
            if let Some(f) = b.cancel() {
                let wait = (k.window_start - now).max(Duration::minutes(10));
                let at = now + Duration::seconds((wait.num_seconds() as f64 * f) as i64);
                schedule(
                    at,
                    Command::Request(RequestCommand::Cancel {
                        request: request.clone(),
                        reason: Text::new("no longer needed").expect("short text"),
                    }),
                );
            }
            known.insert(request, k);
        }
        Event::Offered { team, deadline, mode } => {
            let Some(k) = known.get(&request) else { return };
            match b.answer(k.urgency, *mode == OfferMode::Recruitment) {
                Answer::Accept(after) if now + after < *deadline => {
                    schedule(now + after, Command::Request(RequestCommand::Accept { request, team: team.clone() }));
                }
                Answer::Decline(after, reason) if now + after < *deadline => {
                    schedule(
                        now + after,
                        Command::Request(RequestCommand::Decline { request, team: team.clone(), reason }),
                    );
                }
                _ => {}
            }
        }
        Event::Accepted { team } => {
            let Some(k) = known.get(&request) else { return };
            let slack = (k.window_end - k.window_start).num_minutes() - i64::from(k.duration_min);
            if b.no_show() {
                // The station notices an hour into the window.
                let at = (k.window_start + Duration::hours(1)).max(now);
                schedule(at, Command::Request(RequestCommand::ReportNoShow { request, team: team.clone() }));
            } else {
                let at = k.window_start.max(now) + b.arrival_delay(slack / 2);
                schedule(at, Command::Request(RequestCommand::CheckIn { request, team: team.clone() }));
            }
        }
        Event::CheckedIn { team } => {
            let Some(k) = known.get(&request) else { return };
            let minutes = b.service_minutes(k.duration_min);
            let n = b.volunteers(parties.members.get(team).copied().unwrap_or(1));
            let volunteers = (1..=n).filter_map(|i| VolunteerId::new(&format!("{team}-v{i}")).ok()).collect();
            let at = now + Duration::minutes(i64::from(minutes));
            // The behaviour draws minutes and teams of sizes the types accept; a draw they
            // refuse would be a bug of the model, and the team simply does not report.
            let (Ok(minutes), Ok(volunteers)) = (ServiceMinutes::new(minutes), Volunteers::new(volunteers)) else {
                return;
            };
            schedule(
                at,
                Command::Request(RequestCommand::Complete { request, team: team.clone(), minutes, volunteers }),
            );
        }
        Event::Completed { sampled, .. } => {
            for (role, score, tags, after) in b.ratings(*sampled) {
                let (Ok(score), Ok(tags)) = (Score::new(score), Tags::new(tags)) else { continue };
                schedule(
                    now + after,
                    Command::Request(RequestCommand::Evaluate {
                        request: request.clone(),
                        role,
                        score,
                        tags,
                        comment: None,
                    }),
                );
            }
        }
        Event::Disputed { .. } => {
            let (served, after) = b.resolve_dispute();
            let note = if served { "the household confirmed the visit" } else { "no visit took place" };
            schedule(
                now + after,
                Command::Request(RequestCommand::ResolveDispute {
                    request,
                    served,
                    note: Text::new(note).unwrap_or_default(),
                }),
            );
        }
        _ => {}
    }
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

/// Counts over a set of requests.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Counts {
    /// Requests submitted.
    pub requests: u64,
    /// Completed and evaluated (closed).
    pub closed: u64,
    /// Cancelled by the resident.
    pub cancelled: u64,
    /// The window passed.
    pub expired: u64,
    /// Nobody could serve it.
    pub unfulfillable: u64,
    /// Not yet terminal when the run ended.
    pub open: u64,
    /// Offers made.
    pub offers: u64,
    /// Scope widenings.
    pub escalations: u64,
    /// Recruitment orders issued.
    pub recruitment_orders: u64,
    /// No-shows recorded.
    pub no_shows: u64,
    /// Minutes of service given (not counting services found not to have taken place).
    pub service_minutes: u64,
    /// Ratings received.
    pub ratings: u64,
    /// Sum of ratings.
    pub rating_sum: u64,
    /// Disputes raised.
    pub disputes: u64,
    /// Settled requests found not served.
    pub not_served: u64,
    /// Settlements.
    pub settled: u64,
    /// Sum of their combined scores (thousandths of a point).
    pub combined_milli_sum: u64,
    /// Ratings counted at the default because the role did not rate.
    pub defaulted_ratings: u64,
    /// Whole minutes from submission to the first acceptance: median and 90th
    /// percentile, nearest rank, as in the reports.
    pub to_accept_min: Percentiles,
}

impl Counts {
    /// The numbers the core report keeps for a unit (and its subtree).
    fn of_unit(u: &UnitReport) -> Self {
        let state = |s: &str| u.by_state.get(s).copied().unwrap_or(0);
        Self {
            requests: u.requests,
            closed: state("closed"),
            cancelled: state("cancelled"),
            expired: state("expired"),
            unfulfillable: state("unfulfillable"),
            open: state("open"),
            escalations: u.escalations,
            recruitment_orders: u.recruitment_orders,
            no_shows: u.no_shows,
            // The report gives whole minutes as hours and the sum of whole
            // thousandths as a mean: rounding gives the integers back exactly.
            service_minutes: (u.hours_served * 60.0).round() as u64,
            disputes: u.disputes,
            settled: u.settled,
            combined_milli_sum: u.satisfaction.map_or(0, |m| (m * 1000.0 * u.settled as f64).round() as u64),
            to_accept_min: u.to_accept_min,
            ..Self::default()
        }
    }

    /// Adds the counts the core report does not keep.
    fn add_extra(&mut self, x: &Extra) {
        self.offers += x.offers;
        self.ratings += x.ratings;
        self.rating_sum += x.rating_sum;
        self.not_served += x.not_served;
        self.defaulted_ratings += x.defaulted_ratings;
    }

    /// Closed over requests not cancelled.
    pub fn fulfilment(&self) -> f64 {
        let base = self.requests.saturating_sub(self.cancelled);
        if base == 0 { 0.0 } else { self.closed as f64 / base as f64 }
    }

    /// Minutes to acceptance at the median (`p` = 0.5) or the 90th percentile
    /// (`p` = 0.9), the two the reports keep; `None` for another `p` or if no
    /// request was accepted.
    pub fn to_accept_pct(&self, p: f64) -> Option<f64> {
        let m = if p == 0.5 {
            self.to_accept_min.p50
        } else if p == 0.9 {
            self.to_accept_min.p90
        } else {
            None
        };
        m.map(f64::from)
    }

    /// Mean rating.
    pub fn mean_rating(&self) -> Option<f64> {
        (self.ratings > 0).then(|| self.rating_sum as f64 / self.ratings as f64)
    }

    /// Mean combined (settled) score.
    pub fn mean_combined(&self) -> Option<f64> {
        (self.settled > 0).then(|| self.combined_milli_sum as f64 / 1000.0 / self.settled as f64)
    }
}

/// What the core report does not count: offers, ratings, ratings counted at
/// the default and settlements found not served.
#[derive(Debug, Clone, Default)]
struct Extra {
    offers: u64,
    ratings: u64,
    rating_sum: u64,
    not_served: u64,
    defaulted_ratings: u64,
}

impl Extra {
    /// The counts of one event.
    fn of(e: &Event) -> Option<Self> {
        let mut x = Self::default();
        match e {
            Event::Offered { .. } => x.offers = 1,
            Event::Evaluated { score, .. } => {
                x.ratings = 1;
                x.rating_sum = u64::from(score.get());
            }
            Event::Settled { defaulted, served, .. } => {
                x.defaulted_ratings = defaulted.len() as u64;
                x.not_served = u64::from(!served);
            }
            _ => return None,
        }
        Some(x)
    }
}

/// The run's report: the whole city and each county.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    /// The whole city.
    pub city: Counts,
    /// Per county id.
    pub counties: BTreeMap<String, Counts>,
    /// Per service id (the core report keeps only requests and closures per service).
    pub services: BTreeMap<String, Counts>,
    /// The city's ledger movements and the stock left at the end (the core report's).
    pub ledger: LedgerFigures,
}

impl Report {
    /// Computes the report from a log (replaying the same log gives the same
    /// report). The city's and the counties' numbers are the core report of
    /// the whole log (see [`sidan_core::report`]), with the offers, ratings,
    /// default ratings and settlements found not served counted from the log;
    /// the services' numbers are counted from the log.
    pub fn from_log(city: &City, log: &[Stored]) -> Report {
        let records: Vec<Recorded> = log.iter().map(|s| s.record.clone()).collect();
        let whole = sidan_core::report::report(city, &records, Granularity::Whole);
        let mut r = Report::default();
        for u in &whole.units {
            match u.kind {
                UnitKind::City => {
                    r.city = Counts::of_unit(u);
                    r.ledger = u.ledger.clone();
                }
                UnitKind::County => {
                    r.counties.insert(u.unit.to_string(), Counts::of_unit(u));
                }
                _ => {}
            }
        }
        // The requests the core report knows (submitted at a known unit): their county and service.
        let mut known: HashMap<RequestId, (Option<String>, String, DateTime<Utc>)> = HashMap::new();
        // Per request: accepted yet, minutes of its last service (while counted as served).
        let mut accepted: HashSet<RequestId> = HashSet::new();
        let mut minutes_of: HashMap<RequestId, u32> = HashMap::new();
        // Per service: minutes to each first acceptance.
        let mut to_accept: BTreeMap<String, Vec<u32>> = BTreeMap::new();
        for rec in &records {
            let StreamId::Request(id) = &rec.stream else { continue };
            if let Event::Submitted { spec, .. } = &rec.event {
                let Some(unit) = city.units().idx(&spec.unit) else { continue };
                let county = city.units().ancestor_of_kind(unit, UnitKind::County);
                let county = county.map(|c| city.units().get(c).id.to_string());
                known.insert(id.clone(), (county, spec.service.to_string(), rec.at));
            }
            let Some((county, service, submitted)) = known.get(id) else { continue };
            if let Some(x) = Extra::of(&rec.event) {
                r.city.add_extra(&x);
                if let Some(c) = county.as_ref().and_then(|c| r.counties.get_mut(c)) {
                    c.add_extra(&x);
                }
            }
            let c = r.services.entry(service.clone()).or_default();
            match &rec.event {
                Event::Submitted { .. } => {
                    c.requests += 1;
                    c.open += 1;
                }
                // The first acceptance only.
                Event::Accepted { .. } if accepted.insert(id.clone()) => {
                    let m = u32::try_from((rec.at - *submitted).num_minutes().max(0)).unwrap_or(u32::MAX);
                    to_accept.entry(service.clone()).or_default().push(m);
                }
                Event::ScopeWidened { .. } => c.escalations += 1,
                Event::RecruitmentIssued { .. } => c.recruitment_orders += 1,
                Event::NoShow { .. } => c.no_shows += 1,
                Event::Completed { minutes, .. } => {
                    let before = minutes_of.insert(id.clone(), minutes.get()).unwrap_or(0);
                    c.service_minutes = c.service_minutes - u64::from(before) + u64::from(minutes.get());
                }
                Event::Disputed { .. } => c.disputes += 1,
                Event::Settled { combined_milli, served, .. } => {
                    c.settled += 1;
                    c.combined_milli_sum += u64::from(*combined_milli);
                    if !served {
                        // Found not served: its minutes do not count.
                        c.service_minutes -= u64::from(minutes_of.insert(id.clone(), 0).unwrap_or(0));
                    }
                }
                Event::Closed => {
                    c.closed += 1;
                    c.open = c.open.saturating_sub(1);
                }
                Event::Cancelled { .. } => {
                    c.cancelled += 1;
                    c.open = c.open.saturating_sub(1);
                }
                Event::Expired => {
                    c.expired += 1;
                    c.open = c.open.saturating_sub(1);
                }
                Event::Unfulfillable => {
                    c.unfulfillable += 1;
                    c.open = c.open.saturating_sub(1);
                }
                _ => {}
            }
            if let Some(x) = Extra::of(&rec.event) {
                c.add_extra(&x);
            }
        }
        for (service, c) in &mut r.services {
            if let Some(v) = to_accept.get_mut(service) {
                c.to_accept_min = Percentiles::of(v);
            }
        }
        r
    }
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

//! Monthly statistics and quarterly bulletins per unit, computed from the
//! event log alone, so a replay gives the same numbers.
//!
//! A request counts in the period (month or quarter, in its unit's time zone)
//! in which it was submitted, with everything that became of it, and in its
//! unit and every unit above it (station → institute → county → city). A
//! report may also take the whole log as one period.
//! Percentiles are nearest-rank over whole minutes. A report is built by
//! folding [`Recorded`] events with [`ReportBuilder::add`], in log order.
//!
//! Ledger movements (the `ledger` stream) count in the period of the event
//! that moved them (a transfer made posted, or the post of a reservation), in
//! the time zone of the unit they are attributed to: a service credit or a
//! time-bank withdrawal to its request's unit, a station's till, shelf,
//! receipt or consumption to that station, anything else (an adjustment
//! between volunteers, say) to the city. Stock on hand is each shelf's posted
//! balance at the end of each period. See docs/ledger.md ("In the reports").
//!
//! Each unit above the stations ranks the stations of its subtree with
//! requests in the period (at most ten): by fulfilment rate, then mean
//! satisfaction (none counting as 0), then requests, then id.

use std::collections::BTreeMap;
use std::hash::BuildHasher as _;
use std::sync::Arc;

use chrono::{DateTime, Datelike, Utc};
use serde::{Deserialize, Serialize};

use crate::city::City;
use crate::id::{RequestId, ServiceId, TeamId, UnitId, VolunteerId};
use crate::ledger::{AccountId, ItemId, LedgerEvent, LedgerId, Transfer, TransferId, TransferKind};
use crate::lifecycle::{Event, Recorded, StreamId};
use crate::units::{UnitIdx, UnitKind};

type HashMap<K, V> = foldhash::HashMap<K, V>;

/// How long a report's periods are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Granularity {
    /// Calendar months: the monthly statistics.
    Month,
    /// Calendar quarters: the quarterly bulletin.
    Quarter,
    /// The whole log as one period (the summary of a simulated run, say).
    Whole,
}

/// A calendar month or quarter, written `2026-11` or `2026-Q4`, or the whole
/// log, written `whole`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Period {
    /// The year (0 for the whole log).
    pub year: i32,
    /// The month (1..=12) or the quarter (1..=4) (0 for the whole log).
    pub index: u32,
    /// Which kind of period.
    pub granularity: Granularity,
}

impl Period {
    /// The period of `g` holding the local date of `t` in `tz`.
    pub fn of(t: DateTime<Utc>, tz: chrono_tz::Tz, g: Granularity) -> Self {
        if g == Granularity::Whole {
            return Self { year: 0, index: 0, granularity: g };
        }
        let d = t.with_timezone(&tz).date_naive();
        let index = if g == Granularity::Month { d.month() } else { (d.month() - 1) / 3 + 1 };
        Self { year: d.year(), index, granularity: g }
    }
}

impl std::fmt::Display for Period {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.granularity {
            Granularity::Month => write!(f, "{}-{:02}", self.year, self.index),
            Granularity::Quarter => write!(f, "{}-Q{}", self.year, self.index),
            Granularity::Whole => f.write_str("whole"),
        }
    }
}

impl Serialize for Period {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Median and 90th percentile of a duration, in minutes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
pub struct Percentiles {
    /// How many values.
    pub n: u64,
    /// Median.
    pub p50: Option<u32>,
    /// 90th percentile.
    pub p90: Option<u32>,
}

impl Percentiles {
    /// Nearest-rank percentiles of `v`, by selection rather than a full
    /// sort (`v` is left partly reordered).
    pub fn of(v: &mut [u32]) -> Self {
        let n = v.len();
        if n == 0 {
            return Self { n: 0, p50: None, p90: None };
        }
        let rank = |p: f64| ((p * n as f64).ceil() as usize).clamp(1, n) - 1;
        let (k50, k90) = (rank(0.5), rank(0.9));
        let (_, &mut p50, above) = v.select_nth_unstable(k50);
        // Everything above the median's place is at least the median.
        let p90 = if k90 == k50 { p50 } else { *above.select_nth_unstable(k90 - k50 - 1).1 };
        Self { n: n as u64, p50: Some(p50), p90: Some(p90) }
    }
}

/// Requests and outcomes of one service.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ServiceCounts {
    /// Submitted.
    pub requests: u64,
    /// Closed (served and evaluated).
    pub closed: u64,
}

/// A station's place in its superior's ranking.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StationRank {
    /// The station.
    pub station: UnitId,
    /// Requests submitted there.
    pub requests: u64,
    /// Its fulfilment rate.
    pub fulfilment: f64,
    /// Its mean combined rating (1..=5), if any request settled.
    pub satisfaction: Option<f64>,
}

/// One item's movements and stock at a unit (its stations summed) in one period.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ItemFigures {
    /// Units received (restocks posted).
    pub received: u64,
    /// Units handed out (redemptions posted: shelf → consumed).
    pub handed_out: u64,
    /// Units on the shelves at the end of the period (posted balance; goods reserved
    /// for pick-up are still on the shelf).
    pub on_hand: i64,
}

/// Ledger movements of one unit and period (see the module docs for attribution).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct LedgerFigures {
    /// Points credited by service credits (volunteers' and teams' points).
    pub points_credited: u64,
    /// Minutes banked by service credits.
    pub minutes_banked: u64,
    /// Banked minutes spent (time-bank withdrawals posted).
    pub minutes_withdrawn: u64,
    /// Points redeemed at the love supermarket (till credits of redemptions posted).
    pub points_redeemed: u64,
    /// Per item: received, handed out, on hand at the end of the period.
    pub goods: BTreeMap<ItemId, ItemFigures>,
    /// Adjustments posted.
    pub adjustments: u64,
    /// Their net effect per ledger on what volunteers, teams and shelves hold
    /// (credits to such accounts minus debits from them).
    pub adjustments_net: BTreeMap<LedgerId, i64>,
    /// Reversals posted (a reversal of a reservation is a void, counted there).
    pub reversals: u64,
    /// Their net effect per ledger, as for adjustments.
    pub reversals_net: BTreeMap<LedgerId, i64>,
    /// Reservations (pending transfers) voided; a redemption's two legs count as two.
    pub reservations_voided: u64,
    /// Reservations that expired.
    pub reservations_expired: u64,
}

impl LedgerFigures {
    fn absorb(&mut self, c: &LedgerFigures) {
        self.points_credited += c.points_credited;
        self.minutes_banked += c.minutes_banked;
        self.minutes_withdrawn += c.minutes_withdrawn;
        self.points_redeemed += c.points_redeemed;
        for (item, f) in &c.goods {
            let g = self.goods.entry(item.clone()).or_default();
            g.received += f.received;
            g.handed_out += f.handed_out;
            g.on_hand += f.on_hand;
        }
        self.adjustments += c.adjustments;
        for (l, n) in &c.adjustments_net {
            *self.adjustments_net.entry(l.clone()).or_default() += n;
        }
        self.reversals += c.reversals;
        for (l, n) in &c.reversals_net {
            *self.reversals_net.entry(l.clone()).or_default() += n;
        }
        self.reservations_voided += c.reservations_voided;
        self.reservations_expired += c.reservations_expired;
    }
}

/// One unit's numbers for one period.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UnitReport {
    /// The unit.
    pub unit: UnitId,
    /// Its level.
    pub kind: UnitKind,
    /// The period.
    pub period: Period,
    /// Requests submitted.
    pub requests: u64,
    /// Outcomes: closed, cancelled, expired, unfulfillable, open (not yet terminal).
    pub by_state: BTreeMap<&'static str, u64>,
    /// Requests and closures per service.
    pub by_service: BTreeMap<ServiceId, ServiceCounts>,
    /// Closed over requests not cancelled.
    pub fulfilment: f64,
    /// Minutes from submission to acceptance.
    pub to_accept_min: Percentiles,
    /// Minutes from submission to the team's arrival.
    pub to_service_min: Percentiles,
    /// Hours of service given.
    pub hours_served: f64,
    /// Distinct volunteers who served.
    pub active_volunteers: u64,
    /// Distinct teams that served.
    pub active_teams: u64,
    /// Mean combined rating of settled requests (1..=5).
    pub satisfaction: Option<f64>,
    /// Settled requests.
    pub settled: u64,
    /// Disputes raised.
    pub disputes: u64,
    /// Scope widenings.
    pub escalations: u64,
    /// Recruitment orders (招募令) issued.
    pub recruitment_orders: u64,
    /// No-shows recorded.
    pub no_shows: u64,
    /// Ledger movements and stock on hand.
    pub ledger: LedgerFigures,
    /// The best stations of the subtree with requests in the period (at most
    /// ten), for units above stations: by fulfilment, then satisfaction, then
    /// requests, then id.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub station_ranking: Vec<StationRank>,
}

/// A whole report: every unit with requests, ledger movements or stock in a
/// period, in period then hierarchy (pre-order) order.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// Months or quarters.
    pub granularity: Granularity,
    /// The rows.
    pub units: Vec<UnitReport>,
}

/// The outcomes a request can have, by the fold's state numbers.
const STATES: [&str; 5] = ["closed", "cancelled", "expired", "unfulfillable", "open"];
const CLOSED: u8 = 0;
const CANCELLED: u8 = 1;
const EXPIRED: u8 = 2;
const UNFULFILLABLE: u8 = 3;
const OPEN: u8 = 4;

/// No team (an interned team number that none has).
const NO_TEAM: u32 = u32::MAX;

/// What the fold remembers of a request. Services, teams and volunteers are
/// interned as dense numbers; the volunteers present are a range of the
/// builder's `volunteers` arena.
#[derive(Debug, Clone)]
struct Req {
    unit: UnitIdx,
    period: u32,
    service: u32,
    submitted: DateTime<Utc>,
    /// Minutes from submission to the first acceptance.
    to_accept: Option<u32>,
    /// Minutes from submission to the first arrival.
    to_service: Option<u32>,
    state: u8,
    recruitment: bool,
    disputed: bool,
    escalations: u32,
    no_shows: u32,
    minutes: u32,
    team: u32,
    volunteers: (u32, u32),
    combined_milli: Option<u32>,
}

/// The ids the fold interns: each reads as a shared string.
trait Text: Clone + Eq + std::hash::Hash {
    fn text(&self) -> &str;
}

macro_rules! text {
    ($($t:ty),*) => {
        $(impl Text for $t {
            fn text(&self) -> &str {
                self.as_str()
            }
        })*
    };
}
text!(UnitId, ServiceId, TeamId, VolunteerId);

/// How many allocations a [`Recent`] table remembers before it starts over.
const RECENT: usize = 1 << 16;

/// Id allocations already seen and what they map to, keyed by address.
///
/// Ids are shared strings, and a log built in memory repeats the same
/// allocations (a unit's, a service's or a team's id cloned into every event),
/// so most lookups are answered without reading or hashing the text. The table
/// holds a clone of each id it remembers, so an address in it cannot be taken
/// by another string meanwhile; a log whose every id is a fresh allocation
/// (read from a store) fills it up, and it starts over.
#[derive(Debug)]
struct Recent<K, V> {
    seen: HashMap<usize, (K, V)>,
}

impl<K: Text, V: Copy> Recent<K, V> {
    fn new() -> Self {
        Self { seen: HashMap::default() }
    }

    fn get(&self, k: &K) -> Option<V> {
        match self.seen.get(&(k.text().as_ptr() as usize)) {
            Some((held, v)) if std::ptr::eq(held.text(), k.text()) => Some(*v),
            _ => None,
        }
    }

    fn put(&mut self, k: &K, v: V) {
        if self.seen.len() >= RECENT {
            self.seen.clear();
        }
        self.seen.insert(k.text().as_ptr() as usize, (k.clone(), v));
    }
}

/// Dense numbers for the distinct values of an id, in order of first sight.
#[derive(Debug)]
struct Interner<K> {
    idx: HashMap<K, u32>,
    keys: Vec<K>,
    recent: Recent<K, u32>,
}

impl<K: Text> Interner<K> {
    fn new() -> Self {
        Self { idx: HashMap::default(), keys: Vec::new(), recent: Recent::new() }
    }

    fn get(&mut self, k: &K) -> u32 {
        if let Some(i) = self.recent.get(k) {
            return i;
        }
        let i = match self.idx.get(k) {
            Some(&i) => i,
            None => {
                let i = u32::try_from(self.keys.len()).unwrap_or_else(|_| unreachable!("fewer than 2^32 distinct ids"));
                self.idx.insert(k.clone(), i);
                self.keys.push(k.clone());
                i
            }
        };
        self.recent.put(k, i);
        i
    }
}

/// No slot.
const NO_SLOT: u32 = u32::MAX;

/// Request ids to dense slots. The ids' text is copied into one buffer rather
/// than a clone of every id kept (releasing half a million shared strings at
/// the end would cost as much as a good part of the fold).
#[derive(Debug, Default)]
struct Slots {
    hasher: foldhash::fast::RandomState,
    text: String,
    /// Where each slot's id ends in `text` (it starts where the previous one ends).
    ends: Vec<usize>,
    /// The latest slot of each hash of an id...
    heads: HashMap<u64, u32>,
    /// ... and, for each slot, the previous slot with the same hash.
    chain: Vec<u32>,
}

impl Slots {
    fn text_of(&self, i: u32) -> &str {
        let i = i as usize;
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.text[start..self.ends[i]]
    }

    fn find(&self, hash: u64, id: &str) -> Option<u32> {
        let mut i = self.heads.get(&hash).copied()?;
        while i != NO_SLOT {
            if self.text_of(i) == id {
                return Some(i);
            }
            i = self.chain[i as usize];
        }
        None
    }

    fn get(&self, id: &str) -> Option<u32> {
        self.find(self.hasher.hash_one(id), id)
    }

    /// The slot of `id`, and whether it is new.
    fn get_or_insert(&mut self, id: &str) -> (u32, bool) {
        self.get_or_insert_hashed(self.hasher.hash_one(id), id)
    }

    fn get_or_insert_hashed(&mut self, hash: u64, id: &str) -> (u32, bool) {
        if let Some(i) = self.find(hash, id) {
            return (i, false);
        }
        let i = u32::try_from(self.ends.len()).unwrap_or_else(|_| unreachable!("fewer than 2^32 requests"));
        self.text.push_str(id);
        self.ends.push(self.text.len());
        self.chain.push(self.heads.insert(hash, i).unwrap_or(NO_SLOT));
        (i, true)
    }
}

/// Folds events into a report.
#[derive(Debug)]
pub struct ReportBuilder<'a> {
    city: &'a City,
    granularity: Granularity,
    /// The slot of each request id: its place in `requests`.
    slots: Slots,
    requests: Vec<Req>,
    /// The request of the previous event and its slot (a request's events often come together).
    last: Option<(RequestId, u32)>,
    units: Recent<UnitId, UnitIdx>,
    /// Slots in submission order; a request submitted twice counts twice.
    order: Vec<u32>,
    periods: Vec<Period>,
    services: Interner<ServiceId>,
    teams: Interner<TeamId>,
    volunteer_ids: Interner<VolunteerId>,
    volunteers: Vec<u32>,
    /// The city's one root unit, where ledger movements naming no unit count.
    root: Option<UnitIdx>,
    /// Ledger figures of (period, unit), the unit's own movements only.
    ledger: HashMap<(u32, UnitIdx), LedgerFigures>,
    /// The last unit and instant a period was found for, and that period.
    last_period: Option<(UnitIdx, DateTime<Utc>, u32)>,
    /// Reservations not yet posted, voided or expired.
    pending: HashMap<TransferId, Arc<Transfer>>,
    /// Posted changes of each shelf (station, item), per period.
    shelves: BTreeMap<(UnitIdx, ItemId), BTreeMap<u32, i64>>,
}

/// The numbers of one unit and period, its subtree included once rolled up.
#[derive(Debug)]
struct Acc {
    period: u32,
    unit: UnitIdx,
    /// The accumulator of the parent unit for the same period, once rolled up.
    parent: Option<u32>,
    requests: u64,
    by_state: [u64; 5],
    /// Sorted by interned service.
    by_service: Vec<(u32, ServiceCounts)>,
    to_accept: Vec<u32>,
    to_service: Vec<u32>,
    minutes: u64,
    /// Interned volunteers and teams; sorted and deduplicated once rolled up.
    volunteers: Vec<u32>,
    teams: Vec<u32>,
    combined_sum: u64,
    settled: u64,
    disputes: u64,
    escalations: u64,
    recruitment: u64,
    no_shows: u64,
    ledger: LedgerFigures,
}

impl Acc {
    fn new(period: u32, unit: UnitIdx) -> Self {
        Self {
            period,
            unit,
            parent: None,
            requests: 0,
            by_state: [0; 5],
            by_service: Vec::new(),
            to_accept: Vec::new(),
            to_service: Vec::new(),
            minutes: 0,
            volunteers: Vec::new(),
            teams: Vec::new(),
            combined_sum: 0,
            settled: 0,
            disputes: 0,
            escalations: 0,
            recruitment: 0,
            no_shows: 0,
            ledger: LedgerFigures::default(),
        }
    }

    fn service(&mut self, service: u32) -> &mut ServiceCounts {
        let i = match self.by_service.binary_search_by_key(&service, |s| s.0) {
            Ok(i) => i,
            Err(i) => {
                self.by_service.insert(i, (service, ServiceCounts::default()));
                i
            }
        };
        &mut self.by_service[i].1
    }

    /// Counts one request (the volunteers present given apart).
    fn add(&mut self, r: &Req, volunteers: &[u32]) {
        self.requests += 1;
        self.by_state[usize::from(r.state)] += 1;
        let s = self.service(r.service);
        s.requests += 1;
        s.closed += u64::from(r.state == CLOSED);
        self.to_accept.extend(r.to_accept);
        self.to_service.extend(r.to_service);
        self.minutes += u64::from(r.minutes);
        self.volunteers.extend_from_slice(volunteers);
        if r.team != NO_TEAM {
            self.teams.push(r.team);
        }
        if let Some(c) = r.combined_milli {
            self.combined_sum += u64::from(c);
            self.settled += 1;
        }
        self.disputes += u64::from(r.disputed);
        self.escalations += u64::from(r.escalations);
        self.recruitment += u64::from(r.recruitment);
        self.no_shows += u64::from(r.no_shows);
    }

    /// Reduces the sets to their distinct members (once all of the subtree is in).
    fn seal(&mut self) {
        self.volunteers.sort_unstable();
        self.volunteers.dedup();
        self.teams.sort_unstable();
        self.teams.dedup();
    }

    /// Adds a sealed child's numbers.
    fn absorb(&mut self, c: &Acc) {
        self.requests += c.requests;
        for (a, b) in self.by_state.iter_mut().zip(c.by_state) {
            *a += b;
        }
        for &(service, ref n) in &c.by_service {
            let s = self.service(service);
            s.requests += n.requests;
            s.closed += n.closed;
        }
        self.to_accept.extend_from_slice(&c.to_accept);
        self.to_service.extend_from_slice(&c.to_service);
        self.minutes += c.minutes;
        self.volunteers.extend_from_slice(&c.volunteers);
        self.teams.extend_from_slice(&c.teams);
        self.combined_sum += c.combined_sum;
        self.settled += c.settled;
        self.disputes += c.disputes;
        self.escalations += c.escalations;
        self.recruitment += c.recruitment;
        self.no_shows += c.no_shows;
        self.ledger.absorb(&c.ledger);
    }

    fn fulfilment(&self) -> f64 {
        let base = self.requests.saturating_sub(self.by_state[usize::from(CANCELLED)]);
        if base == 0 { 0.0 } else { self.by_state[usize::from(CLOSED)] as f64 / base as f64 }
    }

    fn satisfaction(&self) -> Option<f64> {
        (self.settled > 0).then(|| self.combined_sum as f64 / 1000.0 / self.settled as f64)
    }
}

/// A station's figures, waiting for its superiors' rankings.
#[derive(Debug, Clone, Copy)]
struct Rank {
    station: UnitIdx,
    requests: u64,
    fulfilment: f64,
    satisfaction: Option<f64>,
}

fn minutes_between(a: DateTime<Utc>, b: DateTime<Utc>) -> u32 {
    u32::try_from((b - a).num_minutes().max(0)).unwrap_or(u32::MAX)
}

impl<'a> ReportBuilder<'a> {
    /// An empty fold over `city`'s units.
    pub fn new(city: &'a City, granularity: Granularity) -> Self {
        Self {
            city,
            granularity,
            slots: Slots::default(),
            requests: Vec::new(),
            last: None,
            units: Recent::new(),
            order: Vec::new(),
            periods: Vec::new(),
            services: Interner::new(),
            teams: Interner::new(),
            volunteer_ids: Interner::new(),
            volunteers: Vec::new(),
            root: {
                let mut roots = city.units().iter().filter(|(_, u)| u.parent.is_none()).map(|(i, _)| i);
                match (roots.next(), roots.next()) {
                    (Some(r), None) => Some(r),
                    _ => None,
                }
            },
            ledger: HashMap::default(),
            last_period: None,
            pending: HashMap::default(),
            shelves: BTreeMap::new(),
        }
    }

    /// The period of `at` in `unit`'s time zone.
    fn period_at(&mut self, unit: UnitIdx, at: DateTime<Utc>) -> u32 {
        match self.last_period {
            Some((u, t, p)) if u == unit && t == at => p,
            _ => {
                let tz = self.city.units().get(unit).tz;
                let p = self.period(Period::of(at, tz, self.granularity));
                self.last_period = Some((unit, at, p));
                p
            }
        }
    }

    /// The ledger figures of `unit` in the period of `at`.
    fn ledger_at(&mut self, unit: UnitIdx, at: DateTime<Utc>) -> &mut LedgerFigures {
        let p = self.period_at(unit, at);
        self.ledger.entry((p, unit)).or_default()
    }

    /// The unit of a submitted request.
    fn request_unit(&mut self, id: &RequestId) -> Option<UnitIdx> {
        self.slot(id).map(|s| self.requests[s as usize].unit)
    }

    /// The known station of a station account.
    fn station_of(&mut self, a: &AccountId) -> Option<UnitIdx> {
        a.station().and_then(|s| self.unit(s))
    }

    /// The unit a transfer's movements count at: a service credit's or a
    /// withdrawal's request (a service credit's for its reversal), else the
    /// station of the debit or else of the credit account, else the city.
    fn owner(&mut self, t: &Transfer) -> Option<UnitIdx> {
        let by_request = match &t.kind {
            TransferKind::ServiceCredit { request } | TransferKind::Withdrawal { request } => {
                Some(self.request_unit(request))
            }
            TransferKind::Reversal { original, .. } => {
                credited_request(original).map(|r| self.slots.get(r).map(|s| self.requests[s as usize].unit))
            }
            _ => None,
        };
        let unit = match by_request {
            Some(u) => u,
            None => match self.station_of(&t.debit) {
                Some(u) => Some(u),
                None => self.station_of(&t.credit),
            },
        };
        unit.or(self.root)
    }

    /// Counts a transfer's amount as moved (posted) at `at`.
    fn moved(&mut self, t: &Transfer, at: DateTime<Utc>) {
        let amount = i64::try_from(t.amount).unwrap_or(i64::MAX);
        for (account, sign) in [(&t.debit, -1), (&t.credit, 1)] {
            if let AccountId::Shelf { station, item } = account
                && let Some(u) = self.unit(station)
            {
                let p = self.period_at(u, at);
                *self.shelves.entry((u, item.clone())).or_default().entry(p).or_default() += sign * amount;
            }
        }
        let Some(unit) = self.owner(t) else { return };
        let f = self.ledger_at(unit, at);
        match &t.kind {
            TransferKind::ServiceCredit { .. } => match t.credit {
                AccountId::VolunteerMinutes(_) => f.minutes_banked += t.amount,
                _ => f.points_credited += t.amount,
            },
            TransferKind::Withdrawal { .. } => f.minutes_withdrawn += t.amount,
            TransferKind::Redemption { .. } => match &t.credit {
                AccountId::Till(_) => f.points_redeemed += t.amount,
                AccountId::StockConsumed { item, .. } => {
                    f.goods.entry(item.clone()).or_default().handed_out += t.amount
                }
                _ => {}
            },
            TransferKind::Restock {} => {
                if let AccountId::Shelf { item, .. } = &t.credit {
                    f.goods.entry(item.clone()).or_default().received += t.amount;
                }
            }
            TransferKind::StationTransfer {} => {}
            TransferKind::Adjustment { .. } => {
                f.adjustments += 1;
                *f.adjustments_net.entry(t.ledger()).or_default() += held_change(t, amount);
            }
            TransferKind::Reversal { .. } => {
                f.reversals += 1;
                *f.reversals_net.entry(t.ledger()).or_default() += held_change(t, amount);
            }
        }
    }

    fn add_ledger(&mut self, at: DateTime<Utc>, e: &LedgerEvent) {
        match e {
            LedgerEvent::Transferred { transfer } => {
                if transfer.timeout_s.is_some() {
                    self.pending.insert(transfer.id.clone(), Arc::clone(transfer));
                } else {
                    self.moved(transfer, at);
                }
            }
            LedgerEvent::Posted { pending, .. } => {
                if let Some(t) = self.pending.remove(pending) {
                    self.moved(&t, at);
                }
            }
            LedgerEvent::Voided { pending, .. } | LedgerEvent::Expired { pending, .. } => {
                let Some(t) = self.pending.remove(pending) else { return };
                let Some(unit) = self.owner(&t) else { return };
                let f = self.ledger_at(unit, at);
                if matches!(e, LedgerEvent::Voided { .. }) {
                    f.reservations_voided += 1;
                } else {
                    f.reservations_expired += 1;
                }
            }
            LedgerEvent::AccountOpened { .. } | LedgerEvent::AccountClosed { .. } => {}
        }
    }

    /// The slot of a known request.
    fn slot(&mut self, id: &RequestId) -> Option<u32> {
        if let Some((last, s)) = &self.last
            // The same allocation or the same text.
            && (std::ptr::eq(last.as_str(), id.as_str()) || last == id)
        {
            return Some(*s);
        }
        let s = self.slots.get(id.as_str())?;
        self.last = Some((id.clone(), s));
        Some(s)
    }

    fn period(&mut self, p: Period) -> u32 {
        let i = self.periods.iter().rposition(|q| *q == p).unwrap_or_else(|| {
            self.periods.push(p);
            self.periods.len() - 1
        });
        i as u32
    }

    fn unit(&mut self, id: &UnitId) -> Option<UnitIdx> {
        if let Some(u) = self.units.get(id) {
            return Some(u);
        }
        let u = self.city.units().idx(id)?;
        self.units.put(id, u);
        Some(u)
    }

    fn submit(&mut self, id: &RequestId, rec: &Recorded, spec: &crate::request::RequestSpec) {
        let Some(unit) = self.unit(&spec.unit) else { return };
        let tz = self.city.units().get(unit).tz;
        let period = self.period(Period::of(rec.at, tz, self.granularity));
        let req = Req {
            unit,
            period,
            service: self.services.get(&spec.service),
            submitted: rec.at,
            to_accept: None,
            to_service: None,
            state: OPEN,
            recruitment: false,
            disputed: false,
            escalations: 0,
            no_shows: 0,
            minutes: 0,
            team: NO_TEAM,
            volunteers: (0, 0),
            combined_milli: None,
        };
        let (slot, new) = self.slots.get_or_insert(id.as_str());
        if new {
            self.requests.push(req);
        } else {
            // Submitted again: the request starts over (and counts once more).
            self.requests[slot as usize] = req;
        }
        self.last = Some((id.clone(), slot));
        self.order.push(slot);
    }

    /// Folds one event (events of unknown requests or units are ignored).
    pub fn add(&mut self, rec: &Recorded) {
        if let Event::Ledger { entry } = &rec.event {
            self.add_ledger(rec.at, entry);
            return;
        }
        let StreamId::Request(id) = &rec.stream else { return };
        if let Event::Submitted { spec, .. } = &rec.event {
            self.submit(id, rec, spec);
            return;
        }
        let Some(slot) = self.slot(id) else { return };
        let r = &mut self.requests[slot as usize];
        match &rec.event {
            Event::Accepted { .. } => r.to_accept = r.to_accept.or_else(|| Some(minutes_between(r.submitted, rec.at))),
            Event::CheckedIn { .. } => {
                r.to_service = r.to_service.or_else(|| Some(minutes_between(r.submitted, rec.at)));
            }
            Event::ScopeWidened { .. } => r.escalations += 1,
            Event::RecruitmentIssued { .. } => r.recruitment = true,
            Event::NoShow { .. } => r.no_shows += 1,
            Event::Completed { team, minutes, volunteers, .. } => {
                r.minutes = minutes.get();
                r.team = self.teams.get(team);
                let start = self.volunteers.len();
                for v in volunteers.iter() {
                    let i = self.volunteer_ids.get(v);
                    self.volunteers.push(i);
                }
                let len = self.volunteers.len() - start;
                r.volunteers = (start as u32, len as u32);
            }
            Event::Disputed { .. } => r.disputed = true,
            Event::Settled { combined_milli, served, .. } => {
                r.combined_milli = Some(*combined_milli);
                if !served {
                    // Found not served: no hours, no active volunteers.
                    r.minutes = 0;
                    r.volunteers = (0, 0);
                    r.team = NO_TEAM;
                }
            }
            Event::Closed => r.state = CLOSED,
            Event::Cancelled { .. } => r.state = CANCELLED,
            Event::Expired => r.state = EXPIRED,
            Event::Unfulfillable => r.state = UNFULFILLABLE,
            _ => {}
        }
    }

    /// Builds the report: every unit with at least one request in a period,
    /// its numbers including its whole subtree.
    pub fn build(mut self) -> Report {
        let units = self.city.units();
        // Each request into its own unit's accumulator...
        let mut accs: Vec<Acc> = Vec::new();
        let mut at: HashMap<(u32, UnitIdx), u32> = HashMap::default();
        let mut depth_of = vec![u8::MAX; units.len()];
        let mut depth = |u: UnitIdx| -> usize {
            let d = &mut depth_of[u.0 as usize];
            if *d == u8::MAX {
                *d = u8::try_from(units.ancestors(u).count()).unwrap_or(u8::MAX - 1);
            }
            usize::from(*d)
        };
        let mut by_depth: Vec<Vec<u32>> = Vec::new();
        let mut acc_of = |accs: &mut Vec<Acc>, by_depth: &mut Vec<Vec<u32>>, period: u32, unit: UnitIdx| -> u32 {
            *at.entry((period, unit)).or_insert_with(|| {
                let i = accs.len() as u32;
                accs.push(Acc::new(period, unit));
                let d = depth(unit);
                if by_depth.len() <= d {
                    by_depth.resize_with(d + 1, Vec::new);
                }
                by_depth[d].push(i);
                i
            })
        };
        let mut prev: Option<(u32, UnitIdx, u32)> = None;
        for &slot in &self.order {
            let r = &self.requests[slot as usize];
            let i = match prev {
                Some((p, u, i)) if p == r.period && u == r.unit => i,
                _ => acc_of(&mut accs, &mut by_depth, r.period, r.unit),
            };
            prev = Some((r.period, r.unit, i));
            let (start, len) = r.volunteers;
            accs[i as usize].add(r, &self.volunteers[start as usize..(start + len) as usize]);
        }
        // The ledger's movements into their units' accumulators...
        let mut ledger: Vec<((u32, UnitIdx), LedgerFigures)> = std::mem::take(&mut self.ledger).into_iter().collect();
        ledger.sort_unstable_by_key(|((p, u), _)| (*p, u.0));
        for ((period, unit), f) in ledger {
            let i = acc_of(&mut accs, &mut by_depth, period, unit);
            accs[i as usize].ledger = f;
        }
        // ... and each shelf's stock at the end of every period from its first movement on ...
        let mut periods: Vec<u32> = (0..self.periods.len() as u32).collect();
        periods.sort_by_key(|&p| self.periods[p as usize]);
        for ((unit, item), deltas) in std::mem::take(&mut self.shelves) {
            let mut on_hand = 0i64;
            let mut started = false;
            for &p in &periods {
                if let Some(d) = deltas.get(&p) {
                    on_hand += d;
                    started = true;
                }
                if started {
                    let i = acc_of(&mut accs, &mut by_depth, p, unit);
                    accs[i as usize].ledger.goods.entry(item.clone()).or_default().on_hand = on_hand;
                }
            }
        }
        // ... then rolled up the hierarchy, deepest units first.
        let mut d = by_depth.len();
        while d > 0 {
            d -= 1;
            let level = std::mem::take(&mut by_depth[d]);
            for &i in &level {
                let a = &mut accs[i as usize];
                a.seal();
                let Some(parent) = units.get(a.unit).parent else { continue };
                let period = a.period;
                let p = acc_of(&mut accs, &mut by_depth, period, parent);
                accs[i as usize].parent = Some(p);
                let [child, up] =
                    accs.get_disjoint_mut([i as usize, p as usize]).expect("a unit is not its own parent");
                up.absorb(child);
            }
        }
        // Station figures for the rankings.
        let mut ranks: Vec<Vec<Rank>> = (0..accs.len()).map(|_| Vec::new()).collect();
        for a in &accs {
            if units.get(a.unit).kind == UnitKind::Station && a.requests > 0 {
                let rank = Rank {
                    station: a.unit,
                    requests: a.requests,
                    fulfilment: a.fulfilment(),
                    satisfaction: a.satisfaction(),
                };
                let mut up = a.parent;
                while let Some(p) = up {
                    ranks[p as usize].push(rank);
                    up = accs[p as usize].parent;
                }
            }
        }
        let mut rows: Vec<(u32, UnitReport)> = accs
            .into_iter()
            .zip(ranks)
            .map(|(mut a, mut ranking)| {
                ranking.sort_by(|x, y| {
                    y.fulfilment
                        .total_cmp(&x.fulfilment)
                        .then(y.satisfaction.unwrap_or(0.0).total_cmp(&x.satisfaction.unwrap_or(0.0)))
                        .then(y.requests.cmp(&x.requests))
                        .then_with(|| units.get(x.station).id.cmp(&units.get(y.station).id))
                });
                ranking.truncate(10);
                let unit = units.get(a.unit);
                let report = UnitReport {
                    unit: unit.id.clone(),
                    kind: unit.kind,
                    period: self.periods[a.period as usize],
                    requests: a.requests,
                    by_state: STATES.into_iter().zip(a.by_state).collect(),
                    by_service: a
                        .by_service
                        .iter()
                        .map(|(s, n)| (self.services.keys[*s as usize].clone(), n.clone()))
                        .collect(),
                    fulfilment: a.fulfilment(),
                    to_accept_min: Percentiles::of(&mut a.to_accept),
                    to_service_min: Percentiles::of(&mut a.to_service),
                    hours_served: a.minutes as f64 / 60.0,
                    active_volunteers: a.volunteers.len() as u64,
                    active_teams: a.teams.len() as u64,
                    satisfaction: a.satisfaction(),
                    settled: a.settled,
                    disputes: a.disputes,
                    escalations: a.escalations,
                    recruitment_orders: a.recruitment,
                    no_shows: a.no_shows,
                    ledger: std::mem::take(&mut a.ledger),
                    station_ranking: ranking
                        .into_iter()
                        .map(|s| StationRank {
                            station: units.get(s.station).id.clone(),
                            requests: s.requests,
                            fulfilment: s.fulfilment,
                            satisfaction: s.satisfaction,
                        })
                        .collect(),
                };
                (units.preorder(a.unit), report)
            })
            .collect();
        rows.sort_by(|(x, a), (y, b)| a.period.cmp(&b.period).then(x.cmp(y)));
        Report { granularity: self.granularity, units: rows.into_iter().map(|(_, r)| r).collect() }
    }
}

/// The request of a service-credit id (`sc/<request>/…`).
fn credited_request(id: &TransferId) -> Option<&str> {
    id.as_str().strip_prefix(crate::ledger::SERVICE_CREDIT_PREFIX)?.split('/').next()
}

/// A transfer's change to what non-system accounts (volunteers, teams, shelves) hold.
fn held_change(t: &Transfer, amount: i64) -> i64 {
    let into = if t.credit.is_system() { 0 } else { amount };
    let out = if t.debit.is_system() { 0 } else { amount };
    into - out
}

/// The report of a whole log.
pub fn report(city: &City, log: &[Recorded], granularity: Granularity) -> Report {
    let mut b = ReportBuilder::new(city, granularity);
    for r in log {
        b.add(r);
    }
    b.build()
}

#[cfg(test)]
mod tests {
    use chrono::Duration;

    use super::*;
    use crate::dispatch::Dispatcher;
    use crate::ledger::{LedgerCommand, LedgerOp, Redemption, TransferSpec};
    use crate::lifecycle::{
        Command, Lifecycle, LifecyclePolicy, PolicyBook, RaterRole, RequestCommand, Score, ServiceMinutes, Tags, Text,
        Volunteers,
    };
    use crate::request::Urgency;
    use crate::testkit::{request, t0, tiny_city};

    fn offered(recs: &[Recorded]) -> TeamId {
        recs.iter()
            .find_map(|r| match &r.event {
                Event::Offered { team, .. } => Some(team.clone()),
                _ => None,
            })
            .expect("an offer")
    }

    /// A hand-computed fixture: four requests over two months.
    fn fixture() -> (City, Vec<Recorded>) {
        let (city, index) = tiny_city();
        let p = LifecyclePolicy { third_party_sample_rate: 0.0, ..LifecyclePolicy::default() };
        let mut lc = Lifecycle::new(Dispatcher::new(city.clone(), index), PolicyBook::uniform(p).expect("valid"));
        let mut log = Vec::new();
        let mut run = |lc: &mut Lifecycle, c: Command, at| {
            let recs = lc.execute(&c, at).expect("legal");
            log.extend(recs.clone());
            recs
        };
        let t = t0(); // 2026-11-30 08:00 in Beijing
        let v = |s: &str| VolunteerId::new(s).expect("id");
        // r1: served at station c1-i1-s1, accepted after 10 min, arrival after 120 min, all fives.
        let recs = run(
            &mut lc,
            Command::Request(RequestCommand::Submit {
                spec: request("r1", "c1-i1-s1", "home-care", Urgency::Normal, 2, 4),
            }),
            t,
        );
        let team = offered(&recs);
        let r1 = RequestId::new("r1").expect("id");
        run(
            &mut lc,
            Command::Request(RequestCommand::Accept { request: r1.clone(), team: team.clone() }),
            t + Duration::minutes(10),
        );
        run(
            &mut lc,
            Command::Request(RequestCommand::CheckIn { request: r1.clone(), team: team.clone() }),
            t + Duration::minutes(120),
        );
        let done = Command::Request(RequestCommand::Complete {
            request: r1.clone(),
            team,
            minutes: ServiceMinutes::new(90).expect("valid minutes"),
            volunteers: Volunteers::new(vec![v("v1"), v("v2")]).expect("valid volunteers"),
        });
        run(&mut lc, done, t + Duration::minutes(210));
        for role in [RaterRole::Resident, RaterRole::Station, RaterRole::Team] {
            let c = Command::Request(RequestCommand::Evaluate {
                request: r1.clone(),
                role,
                score: Score::new(5).expect("valid score"),
                tags: Tags::new(vec![]).expect("valid tags"),
                comment: None,
            });
            run(&mut lc, c, t + Duration::minutes(300));
        }
        // r2: at station c1-i1-s2, cancelled.
        run(
            &mut lc,
            Command::Request(RequestCommand::Submit {
                spec: request("r2", "c1-i1-s2", "home-care", Urgency::Normal, 3, 4),
            }),
            t,
        );
        let cancel = Command::Request(RequestCommand::Cancel {
            request: RequestId::new("r2").expect("id"),
            reason: Text::new("recovered").expect("short text"),
        });
        run(&mut lc, cancel, t + Duration::minutes(5));
        // r3: a haircut nobody can give: unfulfillable at once.
        run(
            &mut lc,
            Command::Request(RequestCommand::Submit {
                spec: request("r3", "c1-i1-s1", "haircut", Urgency::Normal, 3, 4),
            }),
            t,
        );
        // r4: in county c2, submitted on 1 December (local), accepted after 29 min, still held.
        let dec = t + Duration::days(1);
        let recs = run(
            &mut lc,
            Command::Request(RequestCommand::Submit {
                spec: request("r4", "c2-i1-s1", "home-care", Urgency::Normal, 30, 4),
            }),
            dec,
        );
        let r4 = RequestId::new("r4").expect("id");
        run(
            &mut lc,
            Command::Request(RequestCommand::Accept { request: r4, team: offered(&recs) }),
            dec + Duration::minutes(29),
        );
        // The ledger: r1's credits were written with its settlement (90 min, v1 and v2: 15 points
        // split, 3 for the team, 90 minutes each). Station c1-i1-s1 receives 10 bags of rice; v1
        // redeems one for 5 points (reserved, then picked up); v2 reserves two for 5 points and
        // never comes (expired in December); an administrator gives v2 2 points (the city's row).
        let ledger = |ops: Vec<LedgerOp>| Command::Ledger(LedgerCommand::new(ops));
        let (s1, rice) = (UnitId::new("c1-i1-s1").expect("id"), ItemId::new("rice").expect("id"));
        let shelf = AccountId::Shelf { station: s1.clone(), item: rice.clone() };
        let receipt = AccountId::StockReceipt { station: s1.clone(), item: rice.clone() };
        let tid = |s: &str| TransferId::new(s).expect("id");
        let mut ops: Vec<LedgerOp> = [
            receipt.clone(),
            shelf.clone(),
            AccountId::Till(s1.clone()),
            AccountId::StockConsumed { station: s1.clone(), item: rice.clone() },
        ]
        .into_iter()
        .map(|account| LedgerOp::Open { account })
        .collect();
        let restock = TransferSpec {
            id: tid("in-1"),
            debit: receipt,
            credit: shelf,
            amount: 10,
            kind: TransferKind::Restock {},
            timeout_s: None,
        };
        ops.push(LedgerOp::Transfer { transfer: restock });
        run(&mut lc, ledger(ops), t + Duration::minutes(400));
        let redeem = |id: &str, who: &str, quantity| Redemption {
            id: tid(id),
            volunteer: v(who),
            station: s1.clone(),
            item: rice.clone(),
            points: 5,
            quantity,
            timeout_s: Some(3600),
        };
        let (red1, red2) = (redeem("red1", "v1", 1), redeem("red2", "v2", 2));
        run(&mut lc, Command::Ledger(red1.command().expect("ids")), t + Duration::minutes(410));
        run(&mut lc, Command::Ledger(red1.post(&tid("pick1")).expect("ids")), t + Duration::minutes(420));
        run(&mut lc, Command::Ledger(red2.command().expect("ids")), t + Duration::minutes(430));
        let gift = TransferSpec {
            id: tid("adj-1"),
            debit: AccountId::PointsIssuance,
            credit: AccountId::VolunteerPoints(v("v2")),
            amount: 2,
            kind: TransferKind::Adjustment { reason: "a missed credit".into() },
            timeout_s: None,
        };
        run(&mut lc, ledger(vec![LedgerOp::Transfer { transfer: gift }]), t + Duration::minutes(440));
        run(&mut lc, Command::Tick(StreamId::Ledger), dec + Duration::minutes(60));
        (city, log)
    }

    fn row<'r>(r: &'r Report, unit: &str, period: &str) -> &'r UnitReport {
        r.units
            .iter()
            .find(|u| u.unit.as_str() == unit && u.period.to_string() == period)
            .unwrap_or_else(|| panic!("no row for {unit} {period}"))
    }

    #[test]
    fn monthly_numbers_match_the_hand_count() {
        let (city, log) = fixture();
        let m = report(&city, &log, Granularity::Month);
        let s1 = row(&m, "c1-i1-s1", "2026-11");
        assert_eq!((s1.requests, s1.by_state["closed"], s1.by_state["unfulfillable"]), (2, 1, 1));
        assert_eq!(s1.fulfilment, 0.5);
        assert_eq!(s1.to_accept_min, Percentiles { n: 1, p50: Some(10), p90: Some(10) });
        assert_eq!(s1.to_service_min, Percentiles { n: 1, p50: Some(120), p90: Some(120) });
        assert_eq!((s1.hours_served, s1.active_volunteers, s1.active_teams), (1.5, 2, 1));
        assert_eq!(s1.satisfaction, Some(5.0));
        assert_eq!(s1.by_service[&ServiceId::new("haircut").expect("id")], ServiceCounts { requests: 1, closed: 0 });
        let inst = row(&m, "c1-i1", "2026-11");
        assert_eq!((inst.requests, inst.by_state["cancelled"]), (3, 1));
        assert_eq!(inst.fulfilment, 0.5, "closed 1 of the 2 not cancelled");
        assert_eq!(inst.station_ranking.first().map(|s| s.station.as_str()), Some("c1-i1-s1"));
        assert_eq!(row(&m, "cz", "2026-11").requests, 3);
        let dec = row(&m, "cz", "2026-12");
        assert_eq!((dec.requests, dec.by_state["open"]), (1, 1));
        assert_eq!(dec.to_accept_min.p50, Some(29));
        assert!(m.units.iter().all(|u| u.unit.as_str() != "c2" || u.period.to_string() == "2026-12"));
        // The quarter holds all four; the city's numbers are the sum of the counties'.
        let q = report(&city, &log, Granularity::Quarter);
        let cz = row(&q, "cz", "2026-Q4");
        assert_eq!(cz.requests, 4);
        assert_eq!(cz.requests, row(&q, "c1", "2026-Q4").requests + row(&q, "c2", "2026-Q4").requests);
        assert_eq!(cz.to_accept_min, Percentiles { n: 2, p50: Some(10), p90: Some(29) });
        // Rows come in period, then hierarchy order; the JSON names periods as written.
        let json = serde_json::to_string(&q).expect("serialises");
        assert!(json.contains("\"period\":\"2026-Q4\""));
        assert_eq!(q.units[0].unit.as_str(), "cz");
    }

    #[test]
    fn ledger_figures_match_the_hand_count() {
        let (city, log) = fixture();
        let m = report(&city, &log, Granularity::Month);
        let rice = ItemId::new("rice").expect("id");
        let s1 = &row(&m, "c1-i1-s1", "2026-11").ledger;
        assert_eq!((s1.points_credited, s1.minutes_banked), (18, 180), "15 points split, 3 for the team, 2 x 90 min");
        assert_eq!(s1.points_redeemed, 5, "red1 picked up; red2 still reserved");
        assert_eq!(s1.goods[&rice], ItemFigures { received: 10, handed_out: 1, on_hand: 9 });
        assert_eq!((s1.adjustments, s1.reservations_expired), (0, 0));
        // The adjustment names no station: it counts at the city.
        let cz = &row(&m, "cz", "2026-11").ledger;
        assert_eq!((cz.adjustments, cz.adjustments_net.get(&LedgerId::Points)), (1, Some(&2)));
        assert_eq!((cz.points_credited, cz.points_redeemed, cz.goods[&rice].on_hand), (18, 5, 9));
        assert_eq!(row(&m, "c1", "2026-11").ledger.adjustments, 0);
        // December: no request at the station, but its stock and red2's two legs expiring.
        let dec = row(&m, "c1-i1-s1", "2026-12");
        assert_eq!(dec.requests, 0);
        assert_eq!(dec.ledger.goods[&rice], ItemFigures { received: 0, handed_out: 0, on_hand: 9 });
        assert_eq!((dec.ledger.reservations_expired, dec.ledger.points_credited), (2, 0));
        assert_eq!(row(&m, "cz", "2026-12").ledger.goods[&rice].on_hand, 9);
        // A station without requests in a period stays out of the ranking.
        assert!(row(&m, "c1-i1", "2026-12").station_ranking.is_empty());
        // The quarter holds it all.
        let q = report(&city, &log, Granularity::Quarter);
        let cz = &row(&q, "cz", "2026-Q4").ledger;
        assert_eq!(
            (cz.points_credited, cz.minutes_banked, cz.points_redeemed, cz.reservations_expired),
            (18, 180, 5, 2)
        );
        assert_eq!(cz.goods[&rice], ItemFigures { received: 10, handed_out: 1, on_hand: 9 });
        let json = serde_json::to_string(&q).expect("serialises");
        assert!(json.contains("\"adjustments_net\":{\"points\":2}"), "{json}");
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let mut v = vec![5, 1, 4, 2, 3, 10, 9, 8, 7, 6];
        assert_eq!(Percentiles::of(&mut v), Percentiles { n: 10, p50: Some(5), p90: Some(9) });
        assert_eq!(Percentiles::of(&mut []), Percentiles { n: 0, p50: None, p90: None });
    }

    #[test]
    fn request_slots_tell_ids_with_the_same_hash_apart() {
        let mut s = Slots::default();
        assert_eq!(s.get_or_insert_hashed(7, "r1"), (0, true));
        assert_eq!(s.get_or_insert_hashed(7, "r22"), (1, true));
        assert_eq!(s.get_or_insert_hashed(9, "r3"), (2, true));
        assert_eq!(s.get_or_insert_hashed(7, "r1"), (0, false));
        assert_eq!(s.get_or_insert_hashed(7, "r22"), (1, false));
        assert_eq!((s.find(7, "r3"), s.find(9, "r3"), s.find(7, "r4")), (None, Some(2), None));
        assert_eq!((s.text_of(0), s.text_of(1), s.text_of(2)), ("r1", "r22", "r3"));
        let mut s = Slots::default();
        for i in 0..1000 {
            assert_eq!(s.get_or_insert(&format!("q{i}")), (i, true));
        }
        assert!((0..1000).all(|i| s.get(&format!("q{i}")) == Some(i)));
        assert_eq!(s.get("q1000"), None);
    }

    #[test]
    fn selection_gives_the_sorted_percentiles() {
        let mut x: u32 = 7;
        for n in 0..300 {
            let v: Vec<u32> = (0..n)
                .map(|_| {
                    x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                    (x >> 16) % 40
                })
                .collect();
            let mut sorted = v.clone();
            sorted.sort_unstable();
            let at = |p: f64| (!sorted.is_empty()).then(|| sorted[((p * n as f64).ceil() as usize).clamp(1, n) - 1]);
            let expected = Percentiles { n: n as u64, p50: at(0.5), p90: at(0.9) };
            assert_eq!(Percentiles::of(&mut v.clone()), expected, "{v:?}");
        }
    }
}

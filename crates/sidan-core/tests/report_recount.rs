//! The report's numbers equal a direct recount over the log.
//!
//! Random logs over the tiny test city (one of its stations moved to another
//! time zone) mix submissions at known and unknown units, events of requests
//! never submitted or not yet submitted, repeated and out-of-order events,
//! events the report ignores and events of other streams, at instants that
//! cross months, quarters and a year's end. Each request is submitted at most
//! once, as the lifecycle guarantees. For every row of the monthly, the
//! quarterly and the whole-log report, the numbers are recounted from the log
//! alone: which requests belong to the row, what became of each (offers,
//! ratings and settlements included), the percentiles, the distinct
//! volunteers and teams and the station ranking.
//!
//! The logs also hold a ledger stream made by a real [`Ledger`] from random
//! operations (restocks, service credits, redemptions reserved or not, posts
//! and voids of them, withdrawals, adjustments, moves between stations,
//! reversals, expiries by the clock; refused ones leave nothing), its events
//! interleaved at random places among the requests'. Each row's ledger figures
//! and stock are recounted from those events: who each movement counts at,
//! in which period, and each shelf's balance at the end of every period.
//!
//! Cases follow `PROPTEST_CASES` (256 by default).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use chrono::{DateTime, Datelike, Duration, TimeZone, Utc};
use proptest::collection::vec;
use proptest::prelude::*;

use sidan_core::city::City;
use sidan_core::id::{PairingId, RequestId, ServiceId, TeamId, UnitId, VolunteerId};
use sidan_core::ledger::{
    AccountId, ItemId, Ledger, LedgerCommand, LedgerEvent, LedgerOp, Redemption, Transfer, TransferId, TransferKind,
    TransferSpec,
};
use sidan_core::lifecycle::{
    Event, OfferMode, RaterRole, Recorded, Score, ServiceMinutes, StreamId, Tags, Text, Volunteers, WidenReason,
};
use sidan_core::report::{
    Granularity, ItemFigures, LedgerFigures, Outcome, Percentiles, Report, ServiceCounts, UnitReport, report,
};
use sidan_core::request::Urgency;
use sidan_core::testkit::{request, tiny_city_file};
use sidan_core::units::{UnitIdx, UnitKind};

/// Request ids; the last one is never submitted.
static REQUESTS: [&str; 7] = ["q0", "q1", "q2", "q3", "q4", "q5", "never"];
/// Where requests are made: every unit of the tiny city and one unknown unit.
static UNITS: [&str; 12] = [
    "cz", "c1", "c1-i1", "c1-i1-s1", "c1-i1-s2", "c1-i2", "c1-i2-s1", "c1-i2-s2", "c2", "c2-i1", "c2-i1-s1", "nowhere",
];
/// Services, one of them not in the catalog (the report does not look).
static SERVICES: [&str; 4] = ["home-care", "rescue", "haircut", "knitting"];
static TEAMS: [&str; 4] = ["c1-s1-a", "c1-s2", "r1", "stranger"];
static VOLUNTEERS: [&str; 5] = ["v1", "v2", "v3", "v4", "v5"];

/// The tiny city with station c2-i1-s1 in another time zone.
fn city() -> City {
    let mut f = tiny_city_file();
    for u in &mut f.units {
        if u.id.as_str() == "c2-i1-s1" {
            u.tz = Some(serde_json::from_value(serde_json::json!("America/New_York")).expect("a time zone"));
        }
    }
    f.build().expect("valid city").0
}

/// 2026-12-20 00:00 UTC: logs run over about 120 days from here.
fn base() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 20, 0, 0, 0).single().expect("a date")
}

/// One generated event of a request's stream.
#[derive(Debug, Clone)]
enum Kind {
    Offered(usize),
    Accepted(usize),
    CheckedIn(usize),
    Widened,
    Recruitment,
    NoShow(usize),
    Completed { team: usize, minutes: u32, volunteers: Vec<usize> },
    Evaluated(u8),
    Disputed,
    Settled { combined_milli: u32, defaulted: usize, served: bool },
    Closed,
    Cancelled,
    Expired,
    Unfulfillable,
}

#[derive(Debug, Clone)]
struct Op {
    request: usize,
    /// Minutes after the log's base instant.
    at_min: i64,
    kind: Kind,
}

#[derive(Debug, Clone)]
struct Submission {
    unit: usize,
    service: usize,
    at_min: i64,
    /// How many of the other operations come before it.
    position: usize,
}

fn kind() -> impl Strategy<Value = Kind> {
    prop_oneof![
        1 => (0..TEAMS.len()).prop_map(Kind::Offered),
        3 => (0..TEAMS.len()).prop_map(Kind::Accepted),
        3 => (0..TEAMS.len()).prop_map(Kind::CheckedIn),
        1 => Just(Kind::Widened),
        1 => Just(Kind::Recruitment),
        1 => (0..TEAMS.len()).prop_map(Kind::NoShow),
        3 => (0..TEAMS.len(), 1u32..300, vec(0..VOLUNTEERS.len(), 0..4))
            .prop_map(|(team, minutes, volunteers)| Kind::Completed { team, minutes, volunteers }),
        1 => (1u8..=5).prop_map(Kind::Evaluated),
        1 => Just(Kind::Disputed),
        3 => (1000u32..=5000, 0..=RaterRole::ALL.len(), proptest::bool::weighted(0.8))
            .prop_map(|(combined_milli, defaulted, served)| Kind::Settled { combined_milli, defaulted, served }),
        3 => Just(Kind::Closed),
        1 => Just(Kind::Cancelled),
        1 => Just(Kind::Expired),
        1 => Just(Kind::Unfulfillable),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    (0..REQUESTS.len(), 0i64..170_000, kind()).prop_map(|(request, at_min, kind)| Op { request, at_min, kind })
}

fn submission() -> impl Strategy<Value = Option<Submission>> {
    proptest::option::weighted(
        0.9,
        (0..UNITS.len(), 0..SERVICES.len(), 0i64..170_000, 0usize..200)
            .prop_map(|(unit, service, at_min, position)| Submission { unit, service, at_min, position }),
    )
}

/// Stations whose shelves and tills the ledger uses: three of the city (one in
/// another time zone), a county (the ledger does not check) and an unknown one.
static SHELF_UNITS: [&str; 5] = ["c1-i1-s1", "c1-i2-s2", "c2-i1-s1", "c1", "nowhere"];
static ITEMS: [&str; 2] = ["rice", "oil"];

/// One generated ledger operation.
#[derive(Debug, Clone)]
enum LKind {
    Restock { station: usize, item: usize, qty: u64 },
    Credit { request: usize, volunteer: usize, minutes: bool, amount: u64 },
    Redeem { volunteer: usize, station: usize, item: usize, points: u64, qty: u64, timeout_s: Option<u32> },
    Resolve { which: usize, post: bool },
    Withdraw { volunteer: usize, request: usize, amount: u64 },
    AdjustPoints { volunteer: usize, amount: u64, up: bool },
    AdjustShelf { station: usize, item: usize, amount: u64, up: bool },
    Move { from: usize, to: usize, item: usize, qty: u64 },
    Reverse { which: usize },
    Tick,
}

fn lkind() -> impl Strategy<Value = LKind> {
    let st = 0..SHELF_UNITS.len();
    let it = 0..ITEMS.len();
    let vo = 0..VOLUNTEERS.len();
    prop_oneof![
        4 => (st.clone(), it.clone(), 1u64..20).prop_map(|(station, item, qty)| LKind::Restock { station, item, qty }),
        4 => (0..REQUESTS.len(), vo.clone(), any::<bool>(), 1u64..60)
            .prop_map(|(request, volunteer, minutes, amount)| LKind::Credit { request, volunteer, minutes, amount }),
        6 => (vo.clone(), st.clone(), it.clone(), 1u64..10, 1u64..4, proptest::option::of(prop_oneof![600u32..20_000, 200_000u32..2_600_000]))
            .prop_map(|(volunteer, station, item, points, qty, timeout_s)| LKind::Redeem { volunteer, station, item, points, qty, timeout_s }),
        3 => (0usize..3, any::<bool>()).prop_map(|(which, post)| LKind::Resolve { which, post }),
        1 => (vo.clone(), 0..REQUESTS.len(), 1u64..60).prop_map(|(volunteer, request, amount)| LKind::Withdraw { volunteer, request, amount }),
        1 => (vo, 1u64..20, any::<bool>()).prop_map(|(volunteer, amount, up)| LKind::AdjustPoints { volunteer, amount, up }),
        1 => (st.clone(), it.clone(), 1u64..5, any::<bool>()).prop_map(|(station, item, amount, up)| LKind::AdjustShelf { station, item, amount, up }),
        1 => (st.clone(), st, it, 1u64..5).prop_map(|(from, to, item, qty)| LKind::Move { from, to, item, qty }),
        2 => (0usize..16).prop_map(|which| LKind::Reverse { which }),
        1 => Just(LKind::Tick),
    ]
}

/// Ledger operations: minutes after the base instant and places in the log, each sorted.
fn ledger_ops() -> impl Strategy<Value = Vec<(i64, usize, LKind)>> {
    vec((0i64..170_000, 0usize..200, lkind()), 0..100).prop_map(|mut v| {
        let mut ats: Vec<i64> = v.iter().map(|x| x.0).collect();
        let mut places: Vec<usize> = v.iter().map(|x| x.1).collect();
        ats.sort_unstable();
        places.sort_unstable();
        for (i, x) in v.iter_mut().enumerate() {
            x.0 = ats[i];
            x.1 = places[i];
        }
        v
    })
}

/// Something a reversal can name.
#[derive(Debug, Clone)]
enum Reversible {
    Transfer(TransferId),
    Redemption(Redemption),
}

/// Runs the operations through a ledger; the events of each accepted one, with its instant and place.
fn ledger_events(ops: &[(i64, usize, LKind)]) -> Vec<(usize, DateTime<Utc>, LedgerEvent)> {
    let mut ledger = Ledger::new();
    let mut out = Vec::new();
    let mut pending: Vec<Redemption> = Vec::new();
    let mut reversible: Vec<Reversible> = Vec::new();
    let tid = |s: String| TransferId::new(&s).expect("a transfer id");
    let unit = |i: usize| id::<UnitId>(SHELF_UNITS[i]);
    let item = |i: usize| ItemId::new(ITEMS[i]).expect("an item");
    let shelf = |s: usize, i: usize| AccountId::Shelf { station: unit(s), item: item(i) };
    let receipt = |s: usize, i: usize| AccountId::StockReceipt { station: unit(s), item: item(i) };
    let vp = |v: usize| AccountId::VolunteerPoints(id(VOLUNTEERS[v]));
    let vm = |v: usize| AccountId::VolunteerMinutes(id(VOLUNTEERS[v]));
    let spec = |id: TransferId, debit: AccountId, credit: AccountId, amount: u64, kind: TransferKind| TransferSpec {
        id,
        debit,
        credit,
        amount,
        kind,
        timeout_s: None,
    };
    let with_opens = |accounts: Vec<AccountId>, mut rest: Vec<LedgerOp>| {
        let mut ops: Vec<LedgerOp> = accounts.into_iter().map(|account| LedgerOp::Open { account }).collect();
        ops.append(&mut rest);
        LedgerCommand::new(ops)
    };
    // One transfer between two accounts, both opened first; it can be reversed.
    let single = |id: TransferId, debit: AccountId, credit: AccountId, amount: u64, kind: TransferKind| {
        let t = spec(id, debit.clone(), credit.clone(), amount, kind);
        let made = Reversible::Transfer(t.id.clone());
        (made, with_opens(vec![debit, credit], vec![LedgerOp::Transfer { transfer: t }]))
    };
    for (n, (at_min, place, k)) in ops.iter().enumerate() {
        let now = base() + Duration::minutes(*at_min);
        let mut made: Option<Reversible> = None;
        let cmd = match k {
            LKind::Tick => {
                out.extend(ledger.execute_tick(now).into_iter().map(|e| (*place, now, e)));
                continue;
            }
            LKind::Restock { station, item: i, qty } => {
                let (m, cmd) = single(
                    tid(format!("in{n}")),
                    receipt(*station, *i),
                    shelf(*station, *i),
                    *qty,
                    TransferKind::Restock {},
                );
                made = Some(m);
                cmd
            }
            LKind::Credit { request, volunteer, minutes, amount } => {
                let (debit, credit) = if *minutes {
                    (AccountId::MinutesIssuance, vm(*volunteer))
                } else {
                    (AccountId::PointsIssuance, vp(*volunteer))
                };
                let r: RequestId = id(REQUESTS[*request]);
                let (m, cmd) = single(
                    TransferId::service_credit(&r, &credit).expect("a credit id"),
                    debit.clone(),
                    credit.clone(),
                    *amount,
                    TransferKind::ServiceCredit { request: r },
                );
                made = Some(m);
                cmd
            }
            LKind::Redeem { volunteer, station, item: i, points, qty, timeout_s } => {
                let red = Redemption {
                    id: tid(format!("red{n}")),
                    volunteer: id(VOLUNTEERS[*volunteer]),
                    station: unit(*station),
                    item: item(*i),
                    points: *points,
                    quantity: *qty,
                    timeout_s: *timeout_s,
                };
                let mut c = red.command().expect("ids");
                if timeout_s.is_some() {
                    pending.push(red.clone());
                } else {
                    made = Some(Reversible::Redemption(red.clone()));
                }
                let opens = vec![
                    vp(*volunteer),
                    AccountId::Till(unit(*station)),
                    shelf(*station, *i),
                    AccountId::StockConsumed { station: unit(*station), item: item(*i) },
                ];
                with_opens(opens, std::mem::take(&mut c.ops))
            }
            LKind::Resolve { which, post } => {
                // The latest reservations are the likeliest still pending; one tried (posted,
                // voided, or refused as expired) is not tried again.
                let Some(k) = pending.len().checked_sub(1 + which % pending.len().max(1)) else { continue };
                let red = pending.remove(k);
                if *post {
                    made = Some(Reversible::Redemption(red.clone()));
                    red.post(&tid(format!("pk{n}"))).expect("ids")
                } else {
                    red.void(&tid(format!("vd{n}"))).expect("ids")
                }
            }
            LKind::Withdraw { volunteer, request, amount } => {
                let (m, cmd) = single(
                    tid(format!("wd{n}")),
                    vm(*volunteer),
                    AccountId::MinutesSpent,
                    *amount,
                    TransferKind::Withdrawal { request: id(REQUESTS[*request]) },
                );
                made = Some(m);
                cmd
            }
            LKind::AdjustPoints { volunteer, amount, up } => {
                let (d, c) = if *up {
                    (AccountId::PointsIssuance, vp(*volunteer))
                } else {
                    (vp(*volunteer), AccountId::PointsIssuance)
                };
                let (m, cmd) = single(
                    tid(format!("adj{n}")),
                    d.clone(),
                    c.clone(),
                    *amount,
                    TransferKind::Adjustment { reason: "count".into() },
                );
                made = Some(m);
                cmd
            }
            LKind::AdjustShelf { station, item: i, amount, up } => {
                let (d, c) = if *up {
                    (receipt(*station, *i), shelf(*station, *i))
                } else {
                    (shelf(*station, *i), receipt(*station, *i))
                };
                let (m, cmd) = single(
                    tid(format!("adj{n}")),
                    d.clone(),
                    c.clone(),
                    *amount,
                    TransferKind::Adjustment { reason: "stocktake".into() },
                );
                made = Some(m);
                cmd
            }
            LKind::Move { from, to, item: i, qty } => {
                let (m, cmd) = single(
                    tid(format!("mv{n}")),
                    shelf(*from, *i),
                    shelf(*to, *i),
                    *qty,
                    TransferKind::StationTransfer {},
                );
                made = Some(m);
                cmd
            }
            LKind::Reverse { which } => match reversible.get(which % reversible.len().max(1)) {
                None => continue,
                Some(Reversible::Transfer(original)) => LedgerCommand::new(vec![LedgerOp::Reverse {
                    id: tid(format!("rv{n}")),
                    original: original.clone(),
                    reason: "entered in error".into(),
                }]),
                Some(Reversible::Redemption(red)) => red.reverse(&tid(format!("rv{n}")), "returned").expect("ids"),
            },
        };
        if let Ok(events) = ledger.execute(&cmd, now) {
            reversible.extend(made);
            out.extend(events.into_iter().map(|e| (*place, now, e)));
        }
    }
    ledger.check().expect("the ledger balances");
    out
}

fn id<T: std::str::FromStr>(s: &str) -> T
where
    T::Err: std::fmt::Debug,
{
    s.parse().expect("a valid id")
}

fn event(kind: &Kind, at: DateTime<Utc>) -> Event {
    let team = |t: usize| id::<TeamId>(TEAMS[t]);
    match kind {
        Kind::Offered(t) => {
            Event::Offered { team: team(*t), deadline: at + Duration::hours(1), mode: OfferMode::Ranked }
        }
        Kind::Accepted(t) => Event::Accepted { team: team(*t) },
        Kind::CheckedIn(t) => Event::CheckedIn { team: team(*t) },
        Kind::Widened => Event::ScopeWidened { scope: id("c1"), reason: WidenReason::Timeout },
        Kind::Recruitment => Event::RecruitmentIssued { scope: id("cz"), teams: 3 },
        Kind::NoShow(t) => Event::NoShow { team: team(*t) },
        Kind::Completed { team: t, minutes, volunteers } => Event::Completed {
            team: team(*t),
            minutes: ServiceMinutes::new(*minutes).expect("generated in range"),
            volunteers: {
                let mut v: Vec<VolunteerId> = volunteers.iter().map(|v| id::<VolunteerId>(VOLUNTEERS[*v])).collect();
                v.sort();
                v.dedup();
                Volunteers::new(v).expect("few, each once")
            },
            sampled: false,
        },
        Kind::Evaluated(score) => Event::Evaluated {
            role: RaterRole::Resident,
            score: Score::new(*score).expect("generated in range"),
            tags: Tags::default(),
            comment: None,
        },
        Kind::Disputed => Event::Disputed { by: RaterRole::Resident },
        Kind::Settled { combined_milli, defaulted, served } => Event::Settled {
            combined_milli: *combined_milli,
            defaulted: RaterRole::ALL[..*defaulted].to_vec(),
            served: *served,
        },
        Kind::Closed => Event::Closed,
        Kind::Cancelled => Event::Cancelled { reason: Text::new("no longer needed").expect("short") },
        Kind::Expired => Event::Expired,
        Kind::Unfulfillable => Event::Unfulfillable,
    }
}

/// The log: the operations in order, each submission and ledger event at its
/// position, and a pairing event in the middle.
fn log(subs: &[Option<Submission>], ops: &[Op], ledger: &[(usize, DateTime<Utc>, LedgerEvent)]) -> Vec<Recorded> {
    let at = |m: i64| base() + Duration::minutes(m);
    let mut seq: BTreeMap<String, u64> = BTreeMap::new();
    let mut rec = |stream: StreamId, at: DateTime<Utc>, event: Event| {
        let n = seq.entry(stream.to_string()).or_insert(0);
        *n += 1;
        Recorded { stream, seq: *n, at, event }
    };
    let mut out = Vec::new();
    for i in 0..=ops.len() {
        for (r, s) in subs.iter().enumerate() {
            let Some(s) = s else { continue };
            if s.position.min(ops.len()) == i {
                let mut spec = request(REQUESTS[r], UNITS[s.unit], SERVICES[s.service], Urgency::Normal, 2, 4);
                spec.id = id(REQUESTS[r]);
                let scope = spec.unit.clone();
                let ev = Event::Submitted { spec: Arc::new(spec), scope, pairing: None };
                out.push(rec(StreamId::Request(id(REQUESTS[r])), at(s.at_min), ev));
            }
        }
        for (_, t, e) in ledger.iter().filter(|(p, ..)| (*p).min(ops.len()) == i) {
            out.push(rec(StreamId::Ledger, *t, Event::Ledger { entry: e.clone() }));
        }
        if i == ops.len() / 2 {
            let ev = Event::Unpaired { reason: Text::new("moved away").expect("short") };
            out.push(rec(StreamId::Pairing(id::<PairingId>("p1")), at(0), ev));
        }
        if let Some(op) = ops.get(i) {
            let r: RequestId = id(REQUESTS[op.request]);
            out.push(rec(StreamId::Request(r), at(op.at_min), event(&op.kind, at(op.at_min))));
        }
    }
    out
}

// ---------------------------------------------------------------------------
// The recount
// ---------------------------------------------------------------------------

/// What became of one submitted request, read from its events after its submission.
#[derive(Debug)]
struct Life {
    unit: UnitIdx,
    service: ServiceId,
    submitted: DateTime<Utc>,
    accepted: Option<DateTime<Utc>>,
    checked_in: Option<DateTime<Utc>>,
    state: Outcome,
    offers: u64,
    ratings: u64,
    escalations: u64,
    recruitment: bool,
    no_shows: u64,
    /// Minutes, team and volunteers of the last completion, unless a later settlement found it not served.
    served: Option<(u32, TeamId, Vec<VolunteerId>)>,
    /// Of the latest settlement: the combined score, the ratings counted at the default, and
    /// whether it found the request not served.
    combined_milli: Option<u32>,
    defaulted: u64,
    not_served: bool,
    disputed: bool,
}

fn lives(city: &City, log: &[Recorded]) -> Vec<Life> {
    let mut out = Vec::new();
    for (i, rec) in log.iter().enumerate() {
        let (StreamId::Request(rid), Event::Submitted { spec, .. }) = (&rec.stream, &rec.event) else { continue };
        let Some(unit) = city.units().idx(&spec.unit) else { continue };
        let mut life = Life {
            unit,
            service: spec.service.clone(),
            submitted: rec.at,
            accepted: None,
            checked_in: None,
            state: Outcome::Open,
            offers: 0,
            ratings: 0,
            escalations: 0,
            recruitment: false,
            no_shows: 0,
            served: None,
            combined_milli: None,
            defaulted: 0,
            not_served: false,
            disputed: false,
        };
        for later in &log[i + 1..] {
            if later.stream != StreamId::Request(rid.clone()) {
                continue;
            }
            match &later.event {
                Event::Accepted { .. } if life.accepted.is_none() => life.accepted = Some(later.at),
                Event::CheckedIn { .. } if life.checked_in.is_none() => life.checked_in = Some(later.at),
                Event::ScopeWidened { .. } => life.escalations += 1,
                Event::RecruitmentIssued { .. } => life.recruitment = true,
                Event::NoShow { .. } => life.no_shows += 1,
                Event::Completed { team, minutes, volunteers, .. } => {
                    life.served = Some((minutes.get(), team.clone(), volunteers.to_vec()));
                }
                Event::Disputed { .. } => life.disputed = true,
                Event::Offered { .. } => life.offers += 1,
                Event::Evaluated { .. } => life.ratings += 1,
                Event::Settled { combined_milli, defaulted, served, .. } => {
                    life.combined_milli = Some(*combined_milli);
                    life.defaulted = defaulted.len() as u64;
                    life.not_served = !served;
                    if !served {
                        life.served = None;
                    }
                }
                Event::Closed => life.state = Outcome::Closed,
                Event::Cancelled { .. } => life.state = Outcome::Cancelled,
                Event::Expired => life.state = Outcome::Expired,
                Event::Unfulfillable => life.state = Outcome::Unfulfillable,
                _ => {}
            }
        }
        out.push(life);
    }
    out
}

/// The period label of an instant at a unit, in that unit's time zone.
fn period(city: &City, unit: UnitIdx, at: DateTime<Utc>, g: Granularity) -> String {
    let d = at.with_timezone(&city.units().get(unit).tz).date_naive();
    match g {
        Granularity::Month => format!("{}-{:02}", d.year(), d.month()),
        Granularity::Quarter => format!("{}-Q{}", d.year(), (d.month() - 1) / 3 + 1),
        _ => "whole".to_owned(),
    }
}

/// Nearest rank: the smallest value with at least `p` of the values at or below it.
fn nearest_rank(v: &[u32], p: f64) -> Option<u32> {
    let mut s = v.to_vec();
    s.sort();
    let n = s.len();
    (1..=n).find(|&k| k as f64 >= p * n as f64).or((n > 0).then_some(1)).map(|k| s[k - 1])
}

fn minutes(a: DateTime<Utc>, b: DateTime<Utc>) -> u32 {
    u32::try_from((b - a).num_minutes().max(0)).unwrap_or(u32::MAX)
}

/// The numbers of one unit and period, counted over the requests of its subtree.
#[derive(Debug, PartialEq)]
struct Count {
    requests: u64,
    by_state: BTreeMap<Outcome, u64>,
    by_service: BTreeMap<ServiceId, ServiceCounts>,
    fulfilment: f64,
    to_accept: Percentiles,
    to_service: Percentiles,
    minutes_served: u64,
    hours_served: f64,
    active_volunteers: u64,
    active_teams: u64,
    satisfaction: Option<f64>,
    settled: u64,
    not_served: u64,
    ratings: u64,
    defaulted_ratings: u64,
    disputes: u64,
    offers: u64,
    escalations: u64,
    recruitment_orders: u64,
    no_shows: u64,
}

fn count(ls: &[&Life]) -> Count {
    let n = |f: &dyn Fn(&Life) -> bool| ls.iter().filter(|l| f(l)).count() as u64;
    let mut by_state: BTreeMap<Outcome, u64> = BTreeMap::new();
    for s in [Outcome::Closed, Outcome::Cancelled, Outcome::Expired, Outcome::Unfulfillable, Outcome::Open] {
        by_state.insert(s, n(&|l| l.state == s));
    }
    let mut by_service: BTreeMap<ServiceId, ServiceCounts> = BTreeMap::new();
    for l in ls {
        let c = by_service.entry(l.service.clone()).or_default();
        c.requests += 1;
        c.closed += u64::from(l.state == Outcome::Closed);
        c.unfulfillable += u64::from(l.state == Outcome::Unfulfillable);
    }
    let requests = ls.len() as u64;
    let base = requests - by_state[&Outcome::Cancelled];
    let accept: Vec<u32> = ls.iter().filter_map(|l| l.accepted.map(|t| minutes(l.submitted, t))).collect();
    let service: Vec<u32> = ls.iter().filter_map(|l| l.checked_in.map(|t| minutes(l.submitted, t))).collect();
    let pct = |v: &[u32]| Percentiles { n: v.len() as u64, p50: nearest_rank(v, 0.5), p90: nearest_rank(v, 0.9) };
    let served = || ls.iter().filter_map(|l| l.served.as_ref());
    let settled: Vec<u32> = ls.iter().filter_map(|l| l.combined_milli).collect();
    Count {
        requests,
        fulfilment: if base == 0 { 0.0 } else { by_state[&Outcome::Closed] as f64 / base as f64 },
        by_state,
        by_service,
        to_accept: pct(&accept),
        to_service: pct(&service),
        minutes_served: served().map(|s| u64::from(s.0)).sum::<u64>(),
        hours_served: served().map(|s| u64::from(s.0)).sum::<u64>() as f64 / 60.0,
        active_volunteers: served().flat_map(|s| s.2.iter()).collect::<BTreeSet<_>>().len() as u64,
        active_teams: served().map(|s| &s.1).collect::<BTreeSet<_>>().len() as u64,
        satisfaction: (!settled.is_empty())
            .then(|| settled.iter().map(|&c| u64::from(c)).sum::<u64>() as f64 / 1000.0 / settled.len() as f64),
        settled: settled.len() as u64,
        not_served: n(&|l| l.combined_milli.is_some() && l.not_served),
        ratings: ls.iter().map(|l| l.ratings).sum(),
        defaulted_ratings: ls.iter().filter(|l| l.combined_milli.is_some()).map(|l| l.defaulted).sum(),
        disputes: n(&|l| l.disputed),
        offers: ls.iter().map(|l| l.offers).sum(),
        escalations: ls.iter().map(|l| l.escalations).sum(),
        recruitment_orders: n(&|l| l.recruitment),
        no_shows: ls.iter().map(|l| l.no_shows).sum(),
    }
}

fn reported(u: &UnitReport) -> Count {
    Count {
        requests: u.requests,
        by_state: u.by_state.clone(),
        by_service: u.by_service.clone(),
        fulfilment: u.fulfilment,
        to_accept: u.to_accept_min,
        to_service: u.to_service_min,
        minutes_served: u.minutes_served,
        hours_served: u.hours_served(),
        active_volunteers: u.active_volunteers,
        active_teams: u.active_teams,
        satisfaction: u.satisfaction,
        settled: u.settled,
        not_served: u.not_served,
        ratings: u.ratings,
        defaulted_ratings: u.defaulted_ratings,
        disputes: u.disputes,
        offers: u.offers,
        escalations: u.escalations,
        recruitment_orders: u.recruitment_orders,
        no_shows: u.no_shows,
    }
}

/// A posted movement, or a reservation's end, as the recount sees it.
#[derive(Debug)]
struct Move {
    /// Where it counts.
    unit: UnitIdx,
    at: DateTime<Utc>,
    transfer: Arc<Transfer>,
    /// `None` for a movement; "voided" or "expired" for a reservation's end.
    end: Option<&'static str>,
}

/// A shelf's posted change: station, item, instant, signed amount.
type ShelfChange = (UnitIdx, ItemId, DateTime<Utc>, i64);

fn ledger_moves(city: &City, log: &[Recorded]) -> (Vec<Move>, Vec<ShelfChange>) {
    let units = city.units();
    let root = units.idx(&id("cz")).expect("the city");
    // A request's unit, if it was submitted (at a known unit) before position `k`.
    let request_unit = |r: &str, k: usize| -> Option<UnitIdx> {
        log[..k].iter().find_map(|rec| match (&rec.stream, &rec.event) {
            (StreamId::Request(q), Event::Submitted { spec, .. }) if q.as_str() == r => units.idx(&spec.unit),
            _ => None,
        })
    };
    let station = |a: &AccountId| a.station().and_then(|s| units.idx(s));
    let owner = |t: &Transfer, k: usize| -> UnitIdx {
        let request = match &t.kind {
            TransferKind::ServiceCredit { request } | TransferKind::Withdrawal { request } => Some(request.to_string()),
            TransferKind::Reversal { original, .. } => {
                original.as_str().strip_prefix("sc/").map(|rest| rest.split('/').next().unwrap_or_default().to_owned())
            }
            _ => None,
        };
        match request {
            Some(r) => request_unit(&r, k),
            None => station(&t.debit).or_else(|| station(&t.credit)),
        }
        .unwrap_or(root)
    };
    let mut pending: BTreeMap<TransferId, Arc<Transfer>> = BTreeMap::new();
    let (mut moves, mut shelves) = (Vec::new(), Vec::new());
    for (k, rec) in log.iter().enumerate() {
        let Event::Ledger { entry } = &rec.event else { continue };
        let (t, end) = match entry {
            LedgerEvent::Transferred { transfer } if transfer.timeout_s.is_some() => {
                pending.insert(transfer.id.clone(), transfer.clone());
                continue;
            }
            LedgerEvent::Transferred { transfer } => (transfer.clone(), None),
            LedgerEvent::Posted { pending: p, .. } => (pending.remove(p).expect("a reservation"), None),
            LedgerEvent::Voided { pending: p, .. } => (pending.remove(p).expect("a reservation"), Some("voided")),
            LedgerEvent::Expired { pending: p, .. } => (pending.remove(p).expect("a reservation"), Some("expired")),
            _ => continue,
        };
        if end.is_none() {
            for (a, sign) in [(&t.debit, -1i64), (&t.credit, 1)] {
                if let (AccountId::Shelf { item, .. }, Some(s)) = (a, station(a)) {
                    shelves.push((s, item.clone(), rec.at, sign * t.amount as i64));
                }
            }
        }
        moves.push(Move { unit: owner(&t, k), at: rec.at, transfer: t, end });
    }
    (moves, shelves)
}

/// The ledger figures of a row: the movements counted at its subtree in its
/// period, and the stock of its subtree's shelves at the period's end.
fn ledger_count(city: &City, moves: &[&Move], stock: &[&ShelfChange], p: &str, g: Granularity) -> LedgerFigures {
    let mut f = LedgerFigures::default();
    for m in moves {
        let t = &m.transfer;
        match m.end {
            Some("voided") => f.reservations_voided += 1,
            Some(_) => f.reservations_expired += 1,
            None => {}
        }
        if m.end.is_some() {
            continue;
        }
        let held = |a: &AccountId| if a.is_system() { 0 } else { t.amount as i64 };
        let net = held(&t.credit) - held(&t.debit);
        match (&t.kind, &t.credit) {
            (TransferKind::ServiceCredit { .. }, AccountId::VolunteerMinutes(_)) => f.minutes_banked += t.amount,
            (TransferKind::ServiceCredit { .. }, _) => f.points_credited += t.amount,
            (TransferKind::Withdrawal { .. }, _) => f.minutes_withdrawn += t.amount,
            (TransferKind::Redemption { .. }, AccountId::Till(_)) => f.points_redeemed += t.amount,
            (TransferKind::Redemption { .. }, AccountId::StockConsumed { item, .. }) => {
                f.goods.entry(item.clone()).or_default().handed_out += t.amount;
            }
            (TransferKind::Restock {}, AccountId::Shelf { item, .. }) => {
                f.goods.entry(item.clone()).or_default().received += t.amount;
            }
            (TransferKind::Adjustment { .. }, _) => {
                f.adjustments += 1;
                *f.adjustments_net.entry(t.ledger()).or_default() += net;
            }
            (TransferKind::Reversal { .. }, _) => {
                f.reversals += 1;
                *f.reversals_net.entry(t.ledger()).or_default() += net;
            }
            _ => {}
        }
    }
    // Stock: every shelf of the subtree with a change in this period or before.
    let mut on_hand: BTreeMap<(UnitIdx, ItemId), i64> = BTreeMap::new();
    for (s, item, at, d) in stock {
        if period(city, *s, *at, g).as_str() <= p {
            *on_hand.entry((*s, item.clone())).or_default() += d;
        }
    }
    for ((_, item), n) in on_hand {
        let e: &mut ItemFigures = f.goods.entry(item).or_default();
        e.on_hand += n;
    }
    f
}

/// Checks every row of `r` against the recount, and that no row is missing.
fn recount(city: &City, log: &[Recorded], r: &Report, g: Granularity) -> Result<(), TestCaseError> {
    let units = city.units();
    let ls = lives(city, log);
    let (moves, stock) = ledger_moves(city, log);
    // The rows there must be: each request's unit and every unit above it, in the request's period;
    // the same for each ledger movement's unit and each shelf's station; then each shelf's station
    // and the units above it in every later period of the report.
    let mut expected: BTreeSet<(String, u32)> = BTreeSet::new();
    let with_parents = |expected: &mut BTreeSet<(String, u32)>, unit: UnitIdx, p: String| {
        for u in std::iter::once(unit).chain(units.ancestors(unit)) {
            expected.insert((p.clone(), units.preorder(u)));
        }
    };
    for l in &ls {
        with_parents(&mut expected, l.unit, period(city, l.unit, l.submitted, g));
    }
    for m in &moves {
        with_parents(&mut expected, m.unit, period(city, m.unit, m.at, g));
    }
    for (s, _, at, _) in &stock {
        with_parents(&mut expected, *s, period(city, *s, *at, g));
    }
    let periods: BTreeSet<String> = expected.iter().map(|(p, _)| p.clone()).collect();
    for (s, _, at, _) in &stock {
        let first = period(city, *s, *at, g);
        for p in periods.iter().filter(|p| **p >= first) {
            with_parents(&mut expected, *s, p.clone());
        }
    }
    let got: Vec<(String, u32)> = r
        .units
        .iter()
        .map(|u| (u.period.to_string(), units.preorder(units.idx(&u.unit).expect("a known unit"))))
        .collect();
    prop_assert_eq!(&got, &expected.into_iter().collect::<Vec<_>>(), "rows, in period then hierarchy order");
    for row in &r.units {
        let at = units.idx(&row.unit).expect("a known unit");
        let p = row.period.to_string();
        let mine = |l: &&Life| units.is_in_subtree(l.unit, at) && period(city, l.unit, l.submitted, g) == p;
        let of_row: Vec<&Life> = ls.iter().filter(mine).collect();
        prop_assert_eq!(reported(row), count(&of_row), "{} {}", row.unit, p);
        let row_moves: Vec<&Move> =
            moves.iter().filter(|m| units.is_in_subtree(m.unit, at) && period(city, m.unit, m.at, g) == p).collect();
        let row_stock: Vec<&ShelfChange> = stock.iter().filter(|s| units.is_in_subtree(s.0, at)).collect();
        prop_assert_eq!(
            &row.ledger,
            &ledger_count(city, &row_moves, &row_stock, &p, g),
            "ledger of {} {}",
            row.unit,
            p
        );
        prop_assert_eq!(row.kind, units.get(at).kind);
        // The ranking: the best stations of the subtree with requests in the period.
        let mut ranking: Vec<(UnitId, u64, f64, Option<f64>)> = Vec::new();
        if units.get(at).kind != UnitKind::Station {
            for s in units.subtree(at) {
                if units.get(s).kind != UnitKind::Station {
                    continue;
                }
                let of_station: Vec<&Life> = of_row.iter().copied().filter(|l| l.unit == s).collect();
                if !of_station.is_empty() {
                    let c = count(&of_station);
                    ranking.push((units.get(s).id.clone(), c.requests, c.fulfilment, c.satisfaction));
                }
            }
        }
        ranking.sort_by(|x, y| {
            y.2.total_cmp(&x.2)
                .then(y.3.unwrap_or(0.0).total_cmp(&x.3.unwrap_or(0.0)))
                .then(y.1.cmp(&x.1))
                .then(x.0.cmp(&y.0))
        });
        ranking.truncate(10);
        let got: Vec<(UnitId, u64, f64, Option<f64>)> =
            row.station_ranking.iter().map(|s| (s.station.clone(), s.requests, s.fulfilment, s.satisfaction)).collect();
        prop_assert_eq!(got, ranking, "ranking of {} {}", row.unit, p);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn report_numbers_equal_a_direct_recount(
        subs in vec(submission(), REQUESTS.len() - 1),
        ops in vec(op(), 0..200),
        lops in ledger_ops(),
    ) {
        let city = city();
        let log = log(&subs, &ops, &ledger_events(&lops));
        for g in [Granularity::Month, Granularity::Quarter, Granularity::Whole] {
            recount(&city, &log, &report(&city, &log, g), g)?;
        }
    }
}

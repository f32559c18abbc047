//! The report's numbers equal a direct recount over the log.
//!
//! Random logs over the tiny test city (one of its stations moved to another
//! time zone) mix submissions at known and unknown units, events of requests
//! never submitted or not yet submitted, repeated and out-of-order events,
//! events the report ignores and events of other streams, at instants that
//! cross months, quarters and a year's end. Each request is submitted at most
//! once, as the lifecycle guarantees. For every row of the monthly, the
//! quarterly and the whole-log report, the numbers are recounted from the log alone: which
//! requests belong to the row, what became of each, the percentiles, the
//! distinct volunteers and teams and the station ranking.
//!
//! Cases follow `PROPTEST_CASES` (256 by default).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use chrono::{DateTime, Datelike, Duration, TimeZone, Utc};
use proptest::collection::vec;
use proptest::prelude::*;

use sidan_core::city::City;
use sidan_core::id::{PairingId, RequestId, ServiceId, TeamId, UnitId, VolunteerId};
use sidan_core::lifecycle::{Event, OfferMode, RaterRole, Recorded, StreamId, WidenReason};
use sidan_core::report::{Granularity, Percentiles, Report, ServiceCounts, UnitReport, report};
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
    Settled { combined_milli: u32, served: bool },
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
        3 => (0..TEAMS.len(), 0u32..300, vec(0..VOLUNTEERS.len(), 0..4))
            .prop_map(|(team, minutes, volunteers)| Kind::Completed { team, minutes, volunteers }),
        1 => (1u8..=5).prop_map(Kind::Evaluated),
        1 => Just(Kind::Disputed),
        3 => (1000u32..=5000, proptest::bool::weighted(0.8))
            .prop_map(|(combined_milli, served)| Kind::Settled { combined_milli, served }),
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
            minutes: *minutes,
            volunteers: volunteers.iter().map(|v| id::<VolunteerId>(VOLUNTEERS[*v])).collect(),
            sampled: false,
        },
        Kind::Evaluated(score) => {
            Event::Evaluated { role: RaterRole::Resident, score: *score, tags: Vec::new(), comment: None }
        }
        Kind::Disputed => Event::Disputed { by: RaterRole::Resident },
        Kind::Settled { combined_milli, served } => {
            Event::Settled { combined_milli: *combined_milli, defaulted: Vec::new(), served: *served }
        }
        Kind::Closed => Event::Closed,
        Kind::Cancelled => Event::Cancelled { reason: "no longer needed".into() },
        Kind::Expired => Event::Expired,
        Kind::Unfulfillable => Event::Unfulfillable,
    }
}

/// The log: the operations in order, each submission at its position, and a
/// pairing event in the middle.
fn log(subs: &[Option<Submission>], ops: &[Op]) -> Vec<Recorded> {
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
        if i == ops.len() / 2 {
            let ev = Event::Unpaired { reason: "moved away".into() };
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
    state: &'static str,
    escalations: u64,
    recruitment: bool,
    no_shows: u64,
    /// Minutes, team and volunteers of the last completion, unless a later settlement found it not served.
    served: Option<(u32, TeamId, Vec<VolunteerId>)>,
    combined_milli: Option<u32>,
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
            state: "open",
            escalations: 0,
            recruitment: false,
            no_shows: 0,
            served: None,
            combined_milli: None,
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
                    life.served = Some((*minutes, team.clone(), volunteers.clone()));
                }
                Event::Disputed { .. } => life.disputed = true,
                Event::Settled { combined_milli, served, .. } => {
                    life.combined_milli = Some(*combined_milli);
                    if !served {
                        life.served = None;
                    }
                }
                Event::Closed => life.state = "closed",
                Event::Cancelled { .. } => life.state = "cancelled",
                Event::Expired => life.state = "expired",
                Event::Unfulfillable => life.state = "unfulfillable",
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
    by_state: BTreeMap<&'static str, u64>,
    by_service: BTreeMap<ServiceId, ServiceCounts>,
    fulfilment: f64,
    to_accept: Percentiles,
    to_service: Percentiles,
    hours_served: f64,
    active_volunteers: u64,
    active_teams: u64,
    satisfaction: Option<f64>,
    settled: u64,
    disputes: u64,
    escalations: u64,
    recruitment_orders: u64,
    no_shows: u64,
}

fn count(ls: &[&Life]) -> Count {
    let n = |f: &dyn Fn(&Life) -> bool| ls.iter().filter(|l| f(l)).count() as u64;
    let mut by_state: BTreeMap<&'static str, u64> = BTreeMap::new();
    for s in ["closed", "cancelled", "expired", "unfulfillable", "open"] {
        by_state.insert(s, n(&|l| l.state == s));
    }
    let mut by_service: BTreeMap<ServiceId, ServiceCounts> = BTreeMap::new();
    for l in ls {
        let c = by_service.entry(l.service.clone()).or_default();
        c.requests += 1;
        c.closed += u64::from(l.state == "closed");
    }
    let requests = ls.len() as u64;
    let base = requests - by_state["cancelled"];
    let accept: Vec<u32> = ls.iter().filter_map(|l| l.accepted.map(|t| minutes(l.submitted, t))).collect();
    let service: Vec<u32> = ls.iter().filter_map(|l| l.checked_in.map(|t| minutes(l.submitted, t))).collect();
    let pct = |v: &[u32]| Percentiles { n: v.len() as u64, p50: nearest_rank(v, 0.5), p90: nearest_rank(v, 0.9) };
    let served = || ls.iter().filter_map(|l| l.served.as_ref());
    let settled: Vec<u32> = ls.iter().filter_map(|l| l.combined_milli).collect();
    Count {
        requests,
        fulfilment: if base == 0 { 0.0 } else { by_state["closed"] as f64 / base as f64 },
        by_state,
        by_service,
        to_accept: pct(&accept),
        to_service: pct(&service),
        hours_served: served().map(|s| u64::from(s.0)).sum::<u64>() as f64 / 60.0,
        active_volunteers: served().flat_map(|s| s.2.iter()).collect::<BTreeSet<_>>().len() as u64,
        active_teams: served().map(|s| &s.1).collect::<BTreeSet<_>>().len() as u64,
        satisfaction: (!settled.is_empty())
            .then(|| settled.iter().map(|&c| u64::from(c)).sum::<u64>() as f64 / 1000.0 / settled.len() as f64),
        settled: settled.len() as u64,
        disputes: n(&|l| l.disputed),
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
        hours_served: u.hours_served,
        active_volunteers: u.active_volunteers,
        active_teams: u.active_teams,
        satisfaction: u.satisfaction,
        settled: u.settled,
        disputes: u.disputes,
        escalations: u.escalations,
        recruitment_orders: u.recruitment_orders,
        no_shows: u.no_shows,
    }
}

/// Checks every row of `r` against the recount, and that no row is missing.
fn recount(city: &City, log: &[Recorded], r: &Report, g: Granularity) -> Result<(), TestCaseError> {
    let units = city.units();
    let ls = lives(city, log);
    // The rows there must be: each request's unit and every unit above it, in the request's period.
    let mut expected: BTreeSet<(String, u32)> = BTreeSet::new();
    for l in &ls {
        for u in std::iter::once(l.unit).chain(units.ancestors(l.unit)) {
            expected.insert((period(city, l.unit, l.submitted, g), units.preorder(u)));
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
    ) {
        let city = city();
        let log = log(&subs, &ops);
        for g in [Granularity::Month, Granularity::Quarter, Granularity::Whole] {
            recount(&city, &log, &report(&city, &log, g), g)?;
        }
    }
}

//! Monthly statistics and quarterly bulletins per unit, computed from the
//! event log alone, so a replay gives the same numbers.
//!
//! A request counts in the period (month or quarter, in its unit's time zone)
//! in which it was submitted, with everything that became of it, and in its
//! unit and every unit above it (station → institute → county → city).
//! Percentiles are nearest-rank over whole minutes. A report is built by
//! folding [`Recorded`] events with [`ReportBuilder::add`], in log order.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Datelike, Utc};
use serde::{Deserialize, Serialize};

use crate::city::City;
use crate::id::{RequestId, ServiceId, TeamId, UnitId, VolunteerId};
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
}

/// A calendar month or quarter, written `2026-11` or `2026-Q4`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Period {
    /// The year.
    pub year: i32,
    /// The month (1..=12) or the quarter (1..=4).
    pub index: u32,
    /// Which of the two.
    pub granularity: Granularity,
}

impl Period {
    /// The period of `g` holding the local date of `t` in `tz`.
    pub fn of(t: DateTime<Utc>, tz: chrono_tz::Tz, g: Granularity) -> Self {
        let d = t.with_timezone(&tz).date_naive();
        let index = match g {
            Granularity::Month => d.month(),
            Granularity::Quarter => (d.month() - 1) / 3 + 1,
        };
        Self { year: d.year(), index, granularity: g }
    }
}

impl std::fmt::Display for Period {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.granularity {
            Granularity::Month => write!(f, "{}-{:02}", self.year, self.index),
            Granularity::Quarter => write!(f, "{}-Q{}", self.year, self.index),
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
    /// Nearest-rank percentiles of `v` (sorted in place).
    pub fn of(v: &mut [u32]) -> Self {
        v.sort_unstable();
        let at = |p: f64| -> Option<u32> {
            if v.is_empty() {
                return None;
            }
            let rank = ((p * v.len() as f64).ceil() as usize).clamp(1, v.len());
            Some(v[rank - 1])
        };
        Self { n: v.len() as u64, p50: at(0.5), p90: at(0.9) }
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
    /// The best stations of the subtree (at most ten), for units above stations.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub station_ranking: Vec<StationRank>,
}

/// A whole report: every unit with requests, every period, in period then
/// hierarchy (pre-order) order.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// Months or quarters.
    pub granularity: Granularity,
    /// The rows.
    pub units: Vec<UnitReport>,
}

/// What the fold remembers of a request.
#[derive(Debug, Clone)]
struct Req {
    unit: UnitIdx,
    period: Period,
    service: ServiceId,
    submitted: DateTime<Utc>,
    accepted: Option<DateTime<Utc>>,
    checked_in: Option<DateTime<Utc>>,
    state: &'static str,
    escalations: u32,
    recruitment: bool,
    no_shows: u32,
    minutes: u32,
    team: Option<TeamId>,
    volunteers: Vec<VolunteerId>,
    combined_milli: Option<u32>,
    disputed: bool,
}

/// Folds events into a report.
#[derive(Debug)]
pub struct ReportBuilder<'a> {
    city: &'a City,
    granularity: Granularity,
    requests: HashMap<RequestId, Req>,
    order: Vec<RequestId>,
}

#[derive(Debug, Default)]
struct Acc {
    requests: u64,
    by_state: BTreeMap<&'static str, u64>,
    by_service: BTreeMap<ServiceId, ServiceCounts>,
    to_accept: Vec<u32>,
    to_service: Vec<u32>,
    minutes: u64,
    volunteers: BTreeSet<VolunteerId>,
    teams: BTreeSet<TeamId>,
    combined_sum: u64,
    settled: u64,
    disputes: u64,
    escalations: u64,
    recruitment: u64,
    no_shows: u64,
}

fn minutes_between(a: DateTime<Utc>, b: DateTime<Utc>) -> u32 {
    u32::try_from((b - a).num_minutes().max(0)).unwrap_or(u32::MAX)
}

impl<'a> ReportBuilder<'a> {
    /// An empty fold over `city`'s units.
    pub fn new(city: &'a City, granularity: Granularity) -> Self {
        Self { city, granularity, requests: HashMap::default(), order: Vec::new() }
    }

    /// Folds one event (events of unknown requests or units are ignored).
    pub fn add(&mut self, rec: &Recorded) {
        let StreamId::Request(id) = &rec.stream else { return };
        if let Event::Submitted { spec, .. } = &rec.event {
            let Some(unit) = self.city.units().idx(&spec.unit) else { return };
            let tz = self.city.units().get(unit).tz;
            self.order.push(id.clone());
            self.requests.insert(
                id.clone(),
                Req {
                    unit,
                    period: Period::of(rec.at, tz, self.granularity),
                    service: spec.service.clone(),
                    submitted: rec.at,
                    accepted: None,
                    checked_in: None,
                    state: "open",
                    escalations: 0,
                    recruitment: false,
                    no_shows: 0,
                    minutes: 0,
                    team: None,
                    volunteers: Vec::new(),
                    combined_milli: None,
                    disputed: false,
                },
            );
            return;
        }
        let Some(r) = self.requests.get_mut(id) else { return };
        match &rec.event {
            Event::Accepted { .. } => r.accepted = r.accepted.or(Some(rec.at)),
            Event::CheckedIn { .. } => r.checked_in = r.checked_in.or(Some(rec.at)),
            Event::ScopeWidened { .. } => r.escalations += 1,
            Event::RecruitmentIssued { .. } => r.recruitment = true,
            Event::NoShow { .. } => r.no_shows += 1,
            Event::Completed { team, minutes, volunteers, .. } => {
                r.minutes = *minutes;
                r.team = Some(team.clone());
                r.volunteers = volunteers.clone();
            }
            Event::Disputed { .. } => r.disputed = true,
            Event::Settled { combined_milli, served, .. } => {
                r.combined_milli = Some(*combined_milli);
                if !served {
                    // Found not served: no hours, no active volunteers.
                    r.minutes = 0;
                    r.volunteers.clear();
                    r.team = None;
                }
            }
            Event::Closed => r.state = "closed",
            Event::Cancelled { .. } => r.state = "cancelled",
            Event::Expired => r.state = "expired",
            Event::Unfulfillable => r.state = "unfulfillable",
            _ => {}
        }
    }

    /// Builds the report: every unit with at least one request in a period,
    /// its numbers including its whole subtree.
    pub fn build(self) -> Report {
        let units = self.city.units();
        let mut acc: BTreeMap<(Period, UnitIdx), Acc> = BTreeMap::new();
        for id in &self.order {
            let Some(r) = self.requests.get(id) else { continue };
            for u in std::iter::once(r.unit).chain(units.ancestors(r.unit)) {
                let a = acc.entry((r.period, u)).or_default();
                a.requests += 1;
                *a.by_state.entry(r.state).or_insert(0) += 1;
                let s = a.by_service.entry(r.service.clone()).or_default();
                s.requests += 1;
                if r.state == "closed" {
                    s.closed += 1;
                }
                if let Some(t) = r.accepted {
                    a.to_accept.push(minutes_between(r.submitted, t));
                }
                if let Some(t) = r.checked_in {
                    a.to_service.push(minutes_between(r.submitted, t));
                }
                a.minutes += u64::from(r.minutes);
                a.volunteers.extend(r.volunteers.iter().cloned());
                a.teams.extend(r.team.iter().cloned());
                if let Some(c) = r.combined_milli {
                    a.combined_sum += u64::from(c);
                    a.settled += 1;
                }
                a.disputes += u64::from(r.disputed);
                a.escalations += u64::from(r.escalations);
                a.recruitment += u64::from(r.recruitment);
                a.no_shows += u64::from(r.no_shows);
            }
        }
        // Station figures for the rankings.
        let station_rank = |a: &Acc, station: UnitIdx| StationRank {
            station: units.get(station).id.clone(),
            requests: a.requests,
            fulfilment: fulfilment(a),
            satisfaction: satisfaction(a),
        };
        let mut ranks: BTreeMap<(Period, UnitIdx), Vec<StationRank>> = BTreeMap::new();
        for ((period, u), a) in &acc {
            if units.get(*u).kind == UnitKind::Station {
                for anc in units.ancestors(*u) {
                    ranks.entry((*period, anc)).or_default().push(station_rank(a, *u));
                }
            }
        }
        let mut rows: Vec<UnitReport> = acc
            .into_iter()
            .map(|((period, u), mut a)| {
                let mut ranking = ranks.remove(&(period, u)).unwrap_or_default();
                ranking.sort_by(|x, y| {
                    y.fulfilment
                        .total_cmp(&x.fulfilment)
                        .then(y.satisfaction.unwrap_or(0.0).total_cmp(&x.satisfaction.unwrap_or(0.0)))
                        .then(y.requests.cmp(&x.requests))
                        .then(x.station.cmp(&y.station))
                });
                ranking.truncate(10);
                let unit = units.get(u);
                let mut by_state: BTreeMap<&'static str, u64> =
                    ["closed", "cancelled", "expired", "unfulfillable", "open"].into_iter().map(|s| (s, 0)).collect();
                for (k, v) in &a.by_state {
                    *by_state.entry(k).or_insert(0) += v;
                }
                UnitReport {
                    unit: unit.id.clone(),
                    kind: unit.kind,
                    period,
                    requests: a.requests,
                    fulfilment: fulfilment(&a),
                    satisfaction: satisfaction(&a),
                    by_state,
                    by_service: std::mem::take(&mut a.by_service),
                    to_accept_min: Percentiles::of(&mut a.to_accept),
                    to_service_min: Percentiles::of(&mut a.to_service),
                    hours_served: a.minutes as f64 / 60.0,
                    active_volunteers: a.volunteers.len() as u64,
                    active_teams: a.teams.len() as u64,
                    settled: a.settled,
                    disputes: a.disputes,
                    escalations: a.escalations,
                    recruitment_orders: a.recruitment,
                    no_shows: a.no_shows,
                    station_ranking: ranking,
                }
            })
            .collect();
        rows.sort_by_key(|r| (r.period, units.idx(&r.unit).map_or(u32::MAX, |u| units.preorder(u))));
        Report { granularity: self.granularity, units: rows }
    }
}

fn fulfilment(a: &Acc) -> f64 {
    let cancelled = a.by_state.get("cancelled").copied().unwrap_or(0);
    let base = a.requests.saturating_sub(cancelled);
    if base == 0 { 0.0 } else { a.by_state.get("closed").copied().unwrap_or(0) as f64 / base as f64 }
}

fn satisfaction(a: &Acc) -> Option<f64> {
    (a.settled > 0).then(|| a.combined_sum as f64 / 1000.0 / a.settled as f64)
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
    use crate::lifecycle::{Command, Lifecycle, LifecyclePolicy, PolicyBook, RaterRole};
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
        let recs =
            run(&mut lc, Command::Submit { spec: request("r1", "c1-i1-s1", "home-care", Urgency::Normal, 2, 4) }, t);
        let team = offered(&recs);
        let r1 = RequestId::new("r1").expect("id");
        run(&mut lc, Command::Accept { request: r1.clone(), team: team.clone() }, t + Duration::minutes(10));
        run(&mut lc, Command::CheckIn { request: r1.clone(), team: team.clone() }, t + Duration::minutes(120));
        let done = Command::Complete { request: r1.clone(), team, minutes: 90, volunteers: vec![v("v1"), v("v2")] };
        run(&mut lc, done, t + Duration::minutes(210));
        for role in [RaterRole::Resident, RaterRole::Station, RaterRole::Team] {
            let c = Command::Evaluate { request: r1.clone(), role, score: 5, tags: vec![], comment: None };
            run(&mut lc, c, t + Duration::minutes(300));
        }
        // r2: at station c1-i1-s2, cancelled.
        run(&mut lc, Command::Submit { spec: request("r2", "c1-i1-s2", "home-care", Urgency::Normal, 3, 4) }, t);
        let cancel = Command::Cancel { request: RequestId::new("r2").expect("id"), reason: "recovered".into() };
        run(&mut lc, cancel, t + Duration::minutes(5));
        // r3: a haircut nobody can give: unfulfillable at once.
        run(&mut lc, Command::Submit { spec: request("r3", "c1-i1-s1", "haircut", Urgency::Normal, 3, 4) }, t);
        // r4: in county c2, submitted on 1 December (local), accepted after 29 min, still held.
        let dec = t + Duration::days(1);
        let recs =
            run(&mut lc, Command::Submit { spec: request("r4", "c2-i1-s1", "home-care", Urgency::Normal, 30, 4) }, dec);
        let r4 = RequestId::new("r4").expect("id");
        run(&mut lc, Command::Accept { request: r4, team: offered(&recs) }, dec + Duration::minutes(29));
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
    fn percentiles_are_nearest_rank() {
        let mut v = vec![5, 1, 4, 2, 3, 10, 9, 8, 7, 6];
        assert_eq!(Percentiles::of(&mut v), Percentiles { n: 10, p50: Some(5), p90: Some(9) });
        assert_eq!(Percentiles::of(&mut []), Percentiles { n: 0, p50: None, p90: None });
    }
}

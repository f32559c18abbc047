//! The report's public figures: periods, percentiles, per-service, per-item
//! and ledger figures, one unit's row and the whole report.

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, Utc};
use serde::{Deserialize, Serialize};

use super::Outcome;
use crate::id::{ServiceId, UnitId};
use crate::ledger::{ItemId, LedgerId};
use crate::units::UnitKind;

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
    /// Found unfulfillable (nobody could serve them).
    pub unfulfillable: u64,
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
    /// Adds a subunit's figures (stock on hand adds up too: it is per shelf).
    pub(super) fn absorb(&mut self, c: &LedgerFigures) {
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
    /// Requests per outcome (every outcome present, zero or not).
    pub by_state: BTreeMap<Outcome, u64>,
    /// Requests, closures and unfulfillable requests per service.
    pub by_service: BTreeMap<ServiceId, ServiceCounts>,
    /// Closed over requests not cancelled.
    pub fulfilment: f64,
    /// Minutes from submission to acceptance.
    pub to_accept_min: Percentiles,
    /// Minutes from submission to the team's arrival.
    pub to_service_min: Percentiles,
    /// Minutes of service given (the last completion of each request, unless
    /// its settlement found it not served).
    pub minutes_served: u64,
    /// Distinct volunteers who served.
    pub active_volunteers: u64,
    /// Distinct teams that served.
    pub active_teams: u64,
    /// Mean combined rating of settled requests (1..=5).
    pub satisfaction: Option<f64>,
    /// Settled requests.
    pub settled: u64,
    /// Settled requests found not served (a dispute resolved against the visit).
    pub not_served: u64,
    /// Ratings received (all roles).
    pub ratings: u64,
    /// Ratings counted at the default in settlements because the role did not rate.
    pub defaulted_ratings: u64,
    /// Disputes raised.
    pub disputes: u64,
    /// Offers made to teams (every offer, on every widening of the scope).
    pub offers: u64,
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

impl UnitReport {
    /// Requests with outcome `o`.
    pub fn outcome(&self, o: Outcome) -> u64 {
        self.by_state.get(&o).copied().unwrap_or(0)
    }

    /// Hours of service given, from the whole minutes.
    pub fn hours_served(&self) -> f64 {
        self.minutes_served as f64 / 60.0
    }
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

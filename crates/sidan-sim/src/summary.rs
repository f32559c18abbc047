//! The summary of a run: a view of the core report (see
//! [`sidan_core::report`]) with the whole log as one period, reduced to the
//! rows of the city and of each county. Every figure is the report's own:
//! outcomes by [`Outcome`], offers, ratings, settlements, minutes served and
//! the ledger; the services' figures are the city row's `by_service`.

use serde::Serialize;
use sidan_core::city::City;
use sidan_core::lifecycle::Recorded;
use sidan_core::report::{Granularity, Outcome, Report, UnitReport, report};
use sidan_core::units::UnitKind;

/// The whole run's rows of the city and of each county.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    /// The whole city; `None` if nothing happened (no request, no ledger movement).
    pub city: Option<UnitReport>,
    /// Each county with something in the log, in hierarchy order.
    pub counties: Vec<UnitReport>,
}

impl Summary {
    /// The summary of a log (replaying the same log gives the same summary).
    pub fn from_log(city: &City, log: &[Recorded]) -> Self {
        Self::of(report(city, log, Granularity::Whole))
    }

    /// The city's and the counties' rows of a whole-log report (a report of
    /// another granularity has several rows per unit: the first of each is
    /// kept).
    pub fn of(whole: Report) -> Self {
        let mut s = Self { city: None, counties: Vec::new() };
        for u in whole.units {
            match u.kind {
                UnitKind::City if s.city.is_none() => s.city = Some(u),
                UnitKind::County if s.counties.iter().all(|c| c.unit != u.unit) => s.counties.push(u),
                _ => {}
            }
        }
        s
    }

    /// The services with unfulfillable requests, most first (then by id):
    /// service, unfulfillable, requests.
    pub fn most_unfulfillable(&self) -> Vec<(&str, u64, u64)> {
        let Some(city) = &self.city else { return Vec::new() };
        let mut v: Vec<(&str, u64, u64)> = city
            .by_service
            .iter()
            .filter(|(_, c)| c.unfulfillable > 0)
            .map(|(s, c)| (s.as_str(), c.unfulfillable, c.requests))
            .collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        v
    }

    /// Requests of the whole city with outcome `o` (0 if nothing happened).
    pub fn outcome(&self, o: Outcome) -> u64 {
        self.city.as_ref().map_or(0, |c| c.outcome(o))
    }
}

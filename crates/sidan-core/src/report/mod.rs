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
//!
//! The parts: [`Outcome`] (what became of a request), `model` (the public
//! figures), `interning` (ids to dense indexes), `fold` (events to
//! per-request tallies and ledger figures) and `rollup` (tallies to rows, up
//! the hierarchy, and the station rankings).

pub mod csv;
mod fold;
mod interning;
mod model;
mod outcome;
mod rollup;
#[cfg(test)]
mod tests;

pub use fold::ReportBuilder;
pub use model::{
    Granularity, ItemFigures, LedgerFigures, Percentiles, Period, Report, ServiceCounts, StationRank, UnitReport,
};
pub use outcome::Outcome;

use crate::city::City;
use crate::lifecycle::Recorded;

/// The fold's hash maps: fast, and only ever used for lookups (iteration
/// order never reaches a report).
type HashMap<K, V> = foldhash::HashMap<K, V>;

/// The report of a whole log.
pub fn report(city: &City, log: &[Recorded], granularity: Granularity) -> Report {
    let mut b = ReportBuilder::new(city, granularity);
    for r in log {
        b.add(r);
    }
    b.build()
}

//! The pure core of the sidan volunteer-service dispatch engine.
//!
//! Everything here is synchronous and deterministic: no I/O, no clock, no
//! threads. Time is always an argument (`now`), iteration order is fixed, and
//! the same inputs give the same outputs bit for bit. The async runtime, the
//! stores and the buses live in crates of their own.
//!
//! The types most embedders start from are re-exported here: [`CityFile`] and [`City`] (the
//! static city), [`TeamIndex`] and [`Dispatcher`] (ranking), [`Lifecycle`] with its [`Command`],
//! [`Event`], [`Recorded`], [`StreamId`] and [`PolicyBook`], the [`Ledger`], the [`Report`], and
//! the records [`RequestSpec`], [`TeamSpec`], [`Location`] and [`TimeWindow`]. Everything else
//! has one path, in its module.
//!
//! Module map:
//! - [`id`]: typed identifiers.
//! - [`geo`]: validated locations, great-circle distance, the [`geo::TravelTime`] port.
//! - [`units`]: the unit hierarchy (city → county → institute → station).
//! - [`skills`]: the skill taxonomy (a DAG) and skill bitsets.
//! - [`time`]: validated time windows, weekly availability and dated exceptions.
//! - [`team`], [`request`], [`catalog`]: the domain records.
//! - [`city`]: a whole city's static data and its JSON file format.
//! - [`index`]: the spatial team index with incremental updates.
//! - [`score`]: the configurable scoring policy.
//! - [`dispatch`]: online ranking of eligible teams, with explanations.
//! - [`report`]: monthly statistics and quarterly bulletins per unit, from the event log.
//! - [`reputation`]: team standing from settled evaluations (Bayesian average with time decay).
//! - [`batch`]: batch assignment (optimal min-cost flow and greedy) and the batch problem file.
//! - `testkit` (with the `testkit` feature): a tiny hand-made city for tests and examples.
//! - [`lifecycle`]: the event-sourced request lifecycle: commands, events, escalation, pairings, policies.
//! - [`ledger`]: the double-entry points, time-bank and love-supermarket ledger (event-sourced, two-phase, idempotent).

pub use city::{City, CityFile};
pub use dispatch::Dispatcher;
pub use geo::Location;
pub use index::TeamIndex;
pub use ledger::Ledger;
pub use lifecycle::{Command, Event, Lifecycle, PolicyBook, Recorded, StreamId};
pub use report::Report;
pub use request::RequestSpec;
pub use team::TeamSpec;
pub use time::TimeWindow;

pub mod batch;
mod binary;
pub mod catalog;
pub mod city;
pub mod dispatch;
pub mod geo;
pub mod id;
pub mod index;
pub mod ledger;
pub mod lifecycle;
pub mod report;
pub mod reputation;
pub mod request;
pub mod score;
pub mod skills;
pub mod team;
#[cfg(any(test, feature = "testkit"))]
pub mod testkit;
pub mod time;
pub mod units;

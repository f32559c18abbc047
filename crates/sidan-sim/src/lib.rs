//! Seeded generators and the city simulation for sidan simulations, demos
//! and benchmarks.
//!
//! The generators are pure functions of their configuration and seed
//! (ChaCha8, whose output is stable across `rand` releases), so a seed names
//! a city and a stream of requests for good; the simulation over the engine
//! with a virtual clock makes the same event log for the same seed.
//!
//! - [`catalog`]: the standard skill taxonomy and service catalog.
//! - [`city`]: a city of counties, institutes, stations and teams.
//! - [`demand`]: residents' requests.
//! - [`behaviour`]: how teams and residents act on offers and services.
//! - [`driver`]: the simulation over the engine ([`run`]): what the parties
//!   do (`parties`: teams and residents; `shop`: volunteers at the love
//!   supermarket) and the reports of the run.
//! - [`summary`]: the run's summary, a view of the core report.

pub mod behaviour;
pub mod catalog;
pub mod city;
pub mod demand;
pub mod driver;
mod parties;
mod shop;
pub mod summary;

pub use behaviour::{Answer, Behaviour, BehaviourConfig};
pub use city::{CityConfig, generate_city};
pub use demand::{DemandConfig, generate_requests};
pub use driver::{SimError, SimOutcome, log_hash, read_all, run};
pub use summary::Summary;

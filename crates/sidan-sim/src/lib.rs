//! Seeded generators for sidan simulations, demos and benchmarks.
//!
//! Everything here is a pure function of its configuration and seed
//! (ChaCha8, whose output is stable across `rand` releases), so a seed names
//! a city and a stream of requests for good.
//!
//! - [`catalog`]: the standard skill taxonomy and service catalog.
//! - [`city`]: a city of counties, institutes, stations and teams.
//! - [`demand`]: residents' requests.
//! - [`behaviour`]: how teams and residents act on offers and services.

pub mod behaviour;
pub mod catalog;
pub mod city;
pub mod demand;

pub use behaviour::{Answer, Behaviour, BehaviourConfig};
pub use city::{CityConfig, generate_city};
pub use demand::{DemandConfig, generate_requests};

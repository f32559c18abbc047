//! `sidan`: a volunteer-service dispatch engine.
//!
//! This facade re-exports the workspace's library crates so an embedding
//! platform depends on one crate. The pure core is [`core`]; the seeded city
//! and demand generators are [`sim`].

pub use sidan_core as core;
pub use sidan_sim as sim;

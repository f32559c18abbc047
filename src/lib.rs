//! `sidan`: a volunteer-service dispatch engine.
//!
//! This facade re-exports the workspace's library crates so an embedding
//! platform depends on one crate, and adds what needs the file system:
//! [`load_city`] reads a city file and names it in every error. The pure core
//! is [`core`]; the async engine with its ports and in-memory adapters is
//! [`runtime`]; the seeded city and demand generators and the city
//! simulation over the engine are [`sim`]. [`batch_parallel`] solves a
//! batch's connected components on several threads (the problem file of
//! `sidan solve` is the core's [`core::batch::file`]).
//!
//! Cargo features: `sqlite` (on by default) re-exports the embedded default
//! store as `store_sqlite`; `postgres` the PostgreSQL store as
//! `store_postgres`; `cli` (on by default) builds the `sidan` binary with
//! both stores; `testkit` turns on `sidan::core::testkit`, the tiny test
//! city. An embedder that wants the library alone sets
//! `default-features = false`.

use std::path::{Path, PathBuf};

pub use sidan_core as core;
pub use sidan_runtime as runtime;
pub use sidan_sim as sim;
#[cfg(feature = "postgres")]
pub use sidan_store_postgres as store_postgres;
#[cfg(feature = "sqlite")]
pub use sidan_store_sqlite as store_sqlite;

pub mod batch_parallel;

use sidan_core::city::{City, CityError, CityFile, MAX_CITY_FILE_BYTES};
use sidan_core::index::TeamIndex;

/// Why a city file could not be loaded: the file, then what is wrong in it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadCityError {
    /// The file could not be read.
    #[error("{file}: {source}")]
    Read {
        /// The file.
        file: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file's content is invalid.
    #[error("{file}: {source}")]
    Invalid {
        /// The file.
        file: PathBuf,
        /// What is wrong, naming the entry and the field.
        source: CityError,
    },
}

/// Reads, parses and validates a JSON city file.
pub fn load_city(path: &Path) -> Result<(City, TeamIndex), LoadCityError> {
    let file = path.to_path_buf();
    let len = std::fs::metadata(path).map_err(|source| LoadCityError::Read { file: file.clone(), source })?.len();
    if len > MAX_CITY_FILE_BYTES as u64 {
        return Err(LoadCityError::Invalid { file, source: CityError::TooLarge(len as usize) });
    }
    let text = std::fs::read_to_string(path).map_err(|source| LoadCityError::Read { file: file.clone(), source })?;
    CityFile::from_json(&text).and_then(CityFile::build).map_err(|source| LoadCityError::Invalid { file, source })
}

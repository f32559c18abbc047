//! Lifecycle snapshots as the engine keeps them in the store.
//!
//! The core gives the state as plain data ([`LifecycleSnapshot`]); here it is encoded with
//! postcard (compact, fast, stable wire format) and saved under [`LIFECYCLE_SNAPSHOT`] with the
//! log position it covers. Opening a store then costs decoding the snapshot and replaying the
//! events after it, not the whole log. A snapshot that does not decode or does not fit the
//! engine's city (another format, other teams) is ignored and the whole log is replayed: a
//! snapshot only ever saves time, it is never the truth.

use sidan_core::geo::TravelTime;
use sidan_core::lifecycle::{Lifecycle, LifecycleSnapshot};

use crate::store::{Position, Snapshot};

/// The name the engine's lifecycle snapshot is kept under.
pub const LIFECYCLE_SNAPSHOT: &str = "lifecycle";

/// Why a stored snapshot was not used.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum SnapshotUnused {
    /// The bytes do not decode.
    #[error("does not decode: {0}")]
    Decode(String),
    /// It decodes but does not restore over this engine's city.
    #[error(transparent)]
    Restore(#[from] sidan_core::lifecycle::SnapshotError),
}

/// Encodes the lifecycle's state as of `position` (the last event it has applied).
pub fn encode<T: TravelTime>(lc: &Lifecycle<T>, position: Position) -> Snapshot {
    let data = postcard::to_stdvec(&lc.snapshot()).expect("a lifecycle snapshot always encodes");
    Snapshot { name: LIFECYCLE_SNAPSHOT.to_owned(), position, data }
}

/// Decodes a stored snapshot's state.
///
/// # Errors
/// [`SnapshotUnused::Decode`] if the bytes are not a snapshot of this format.
pub fn decode(snapshot: &Snapshot) -> Result<LifecycleSnapshot, SnapshotUnused> {
    postcard::from_bytes(&snapshot.data).map_err(|e| SnapshotUnused::Decode(e.to_string()))
}

/// Restores a lifecycle from a stored snapshot over a fresh one (the same city, teams and
/// policies, no events applied).
///
/// # Errors
/// The snapshot does not decode or does not fit.
pub fn restore<T: TravelTime>(fresh: Lifecycle<T>, snapshot: &Snapshot) -> Result<Lifecycle<T>, SnapshotUnused> {
    let state = decode(snapshot)?;
    let (dispatcher, policies) = fresh.into_parts();
    Ok(Lifecycle::restore(dispatcher, policies, state)?)
}

//! The async runtime of sidan: it drives the pure lifecycle of
//! `sidan-core` with real time, storage and messaging.
//!
//! - [`store`]: the `Store` port (the event log and its outbox) and [`MemoryStore`].
//! - [`keys`]: idempotency keys for commands ([`CommandKey`], [`Fingerprint`]).
//! - [`Bus`]: the port for masked events out (at least once), and [`MemoryBus`].
//! - [`Clock`]: the port for time, [`SystemClock`] and [`ManualClock`].
//! - [`Engine`]: a single writer with group commit, deadline timers, replay on
//!   start, an outbox relay, and a bounded queue; [`Engine::builder`] is the
//!   one way to start one.
//! - [`rows`] and [`snapshot`]: the row and snapshot encodings the SQL stores share.
//!
//! The crate logs through `tracing` (a span per engine batch, warnings on
//! every store or bus failure, start, snapshots and shutdown at `info`) and
//! installs no subscriber: that is the embedding program's choice. No log
//! line holds personal data.
//!
//! Adapters for SQLite, PostgreSQL and NATS implement these traits in crates
//! of their own.

mod builder;
mod bus;
mod clock;
pub mod cloudevent;
mod engine;
pub mod keys;
mod relay;
pub mod rows;
mod scopes;
pub mod snapshot;
pub mod store;
mod writer;

pub use builder::{EngineBuilder, NoStore};
pub use bus::{Bus, BusError, Filter, MAX_SUBSCRIPTION_BUFFER, MemoryBus, Published, Subscriber, Subscription};
pub use clock::{Clock, ManualClock, SystemClock};
pub use cloudevent::{CloudEvent, CloudEventError};
pub use engine::{Engine, EngineConfig, EngineError, Receipt, StartInfo};
pub use keys::{CommandKey, Fingerprint, KeyError, KeyRecord, StoredKey};
pub use snapshot::{LIFECYCLE_SNAPSHOT, SnapshotUnused};
pub use store::{CorruptError, MemoryStore, Position, Snapshot, Store, StoreError, Stored};

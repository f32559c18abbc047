//! The one way to start an [`Engine`]: [`Engine::builder`] takes the
//! dispatcher (the city and its team index), and the builder the rest, each
//! with a default but the store, which must be named.
//!
//! The builder turns the dispatcher and the policies into the factory of
//! fresh lifecycles the engine uses at start and to rebuild its state after
//! a failed write, so no caller has to write one.

use std::sync::Arc;

use sidan_core::dispatch::Dispatcher;
use sidan_core::geo::TravelTime;
use sidan_core::lifecycle::{Lifecycle, PolicyBook};

use crate::bus::{Bus, MemoryBus};
use crate::clock::{Clock, SystemClock};
use crate::engine::{Engine, EngineConfig, EngineError, Factory};
use crate::store::Store;

/// The store slot of an [`EngineBuilder`] before [`EngineBuilder::store`]:
/// an engine cannot start without a store, so
/// [`start`](EngineBuilder::start) does not exist until one is named.
///
/// ```compile_fail
/// # use sidan_core::dispatch::Dispatcher;
/// # use sidan_core::testkit::tiny_city;
/// # async fn no_store() {
/// let (city, index) = tiny_city();
/// // No `.store(..)`: this does not compile.
/// let engine = sidan_runtime::Engine::builder(Dispatcher::new(city, index)).start().await;
/// # }
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct NoStore;

/// Gathers what an [`Engine`] runs on; made by [`Engine::builder`].
///
/// Defaults: [`PolicyBook::default`], [`MemoryBus`], [`SystemClock`] and
/// [`EngineConfig::default`]. The store has none.
///
/// ```
/// use sidan_core::dispatch::Dispatcher;
/// use sidan_core::lifecycle::{Command, PolicyBook, RequestCommand};
/// use sidan_core::request::Urgency;
/// use sidan_core::testkit::{request, t0, tiny_city};
/// use sidan_runtime::{Engine, EngineConfig, ManualClock, MemoryBus, MemoryStore};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), sidan_runtime::EngineError> {
/// let (city, index) = tiny_city();
/// let engine = Engine::builder(Dispatcher::new(city, index))
///     .policies(PolicyBook::default())
///     .store(MemoryStore::new())
///     .bus(MemoryBus::new())
///     .clock(ManualClock::new(t0()))
///     .config(EngineConfig { max_batch: 256, ..EngineConfig::default() })
///     .start()
///     .await?;
/// let spec = request("r1", "c1-i1-s1", "home-care", Urgency::Normal, 2, 3);
/// let receipt = engine.execute(Command::Request(RequestCommand::Submit { spec })).await?;
/// assert!(!receipt.events.is_empty());
/// engine.shutdown().await;
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
#[must_use = "an engine builder does nothing until `start` is awaited"]
pub struct EngineBuilder<T, S = NoStore, B = MemoryBus, C = SystemClock> {
    dispatcher: Dispatcher<T>,
    policies: PolicyBook,
    store: S,
    bus: B,
    clock: C,
    config: EngineConfig,
}

impl<T: TravelTime + Send + Sync + 'static> Engine<T> {
    /// Starts building an engine over `dispatcher` (a city, its team index,
    /// its scoring policy and travel times); see [`EngineBuilder`].
    pub fn builder(dispatcher: Dispatcher<T>) -> EngineBuilder<T> {
        EngineBuilder {
            dispatcher,
            policies: PolicyBook::default(),
            store: NoStore,
            bus: MemoryBus::new(),
            clock: SystemClock,
            config: EngineConfig::default(),
        }
    }
}

impl<T, S, B, C> EngineBuilder<T, S, B, C> {
    /// The per-unit lifecycle policies ([`PolicyBook::default`] if not set).
    pub fn policies(mut self, policies: PolicyBook) -> Self {
        self.policies = policies;
        self
    }

    /// The queue, batch and snapshot settings ([`EngineConfig::default`] if not set).
    pub fn config(mut self, config: EngineConfig) -> Self {
        self.config = config;
        self
    }

    /// The store the engine keeps its log, outbox, keys and snapshots in (required).
    pub fn store<S2: Store>(self, store: S2) -> EngineBuilder<T, S2, B, C> {
        let Self { dispatcher, policies, bus, clock, config, .. } = self;
        EngineBuilder { dispatcher, policies, store, bus, clock, config }
    }

    /// The bus the outbox relay publishes to ([`MemoryBus`] if not set).
    pub fn bus<B2: Bus>(self, bus: B2) -> EngineBuilder<T, S, B2, C> {
        let Self { dispatcher, policies, store, clock, config, .. } = self;
        EngineBuilder { dispatcher, policies, store, bus, clock, config }
    }

    /// The clock of timers and command times ([`SystemClock`] if not set).
    pub fn clock<C2: Clock>(self, clock: C2) -> EngineBuilder<T, S, B, C2> {
        let Self { dispatcher, policies, store, bus, config, .. } = self;
        EngineBuilder { dispatcher, policies, store, bus, clock, config }
    }
}

impl<T, S, B, C> EngineBuilder<T, S, B, C>
where
    T: TravelTime + Clone + Send + Sync + 'static,
    S: Store,
    B: Bus,
    C: Clock,
{
    /// Rebuilds the state from the store (its snapshot, then the log after
    /// it), then starts the writer and the outbox relay, which first
    /// publishes whatever the log holds unpublished.
    ///
    /// # Errors
    /// [`EngineError::PoliciesMismatch`] if the policy book was resolved for
    /// another unit tree; [`EngineError::Store`] if the store cannot be read;
    /// [`EngineError::Replay`] if its log does not replay.
    pub async fn start(self) -> Result<Engine<T>, EngineError> {
        let Self { dispatcher, policies, store, bus, clock, config } = self;
        let units = dispatcher.city().units();
        if !policies.covers(units) {
            return Err(EngineError::PoliciesMismatch { units: units.len(), entries: policies.len() });
        }
        let factory: Factory<T> = Arc::new(move || Lifecycle::new(dispatcher.clone(), policies.clone()));
        Engine::start(factory, store, bus, clock, config).await
    }
}

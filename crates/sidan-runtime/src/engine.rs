//! The engine: takes commands concurrently, decides them one at a time on
//! a single writer task, persists each batch through the [`Store`] before
//! any reply, publishes through the [`Bus`] from the outbox, and fires the
//! lifecycle's timers from the [`Clock`].
//!
//! One writer owns the [`Lifecycle`]: commands to one request are applied in
//! order, and so are commands that touch one team's capacity from several
//! requests, with no locks in the core. Commands waiting in the bounded
//! queue are taken in batches (group commit): every command of a batch is
//! decided and applied in memory, the batch's events are appended in one
//! atomic write, and only then does any caller get its reply. If the write
//! fails, the state is rebuilt from the store and every caller of the batch
//! gets the error, so nothing is acknowledged that is not stored.
//!
//! A command sent with a [`CommandKey`] ([`Engine::execute_keyed`]) is done
//! at most once: the writer keeps every key it acted on (loaded from the
//! store at start, written with the batch's events), and a second use of the
//! key with the same command gets the first receipt again while appending
//! nothing; with another command, [`EngineError::KeyReused`].

use std::sync::Arc;

use chrono::Duration;
use sidan_core::geo::TravelTime;
use sidan_core::lifecycle::{ApplyError, Command, Lifecycle, LifecycleError, Recorded};
use tokio::sync::{Notify, mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tracing::{info, warn};

use crate::bus::Bus;
use crate::clock::Clock;
use crate::keys::{CommandKey, Fingerprint};
use crate::store::{Position, Store, StoreError};
use crate::writer::Writer;

/// How the engine queues and batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EngineConfig {
    /// Commands that may wait for the writer; beyond this, [`EngineError::Overloaded`].
    pub queue_capacity: usize,
    /// The most commands decided and appended together.
    pub max_batch: usize,
    /// The most events the relay publishes at once.
    pub relay_batch: usize,
    /// Save a lifecycle snapshot in the store after this many new events (and at shutdown, if
    /// any); 0 never saves one. Opening then replays only the events after the snapshot.
    pub snapshot_every: u64,
    /// How long a command key is honoured after its command was decided
    /// (engine time): at least this long, and forgotten (purged from the
    /// store) within a 24th of it after that. 24 hours by default.
    pub key_retention: Duration,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            queue_capacity: 8192,
            max_batch: 1024,
            relay_batch: 1024,
            snapshot_every: 1_000_000,
            key_retention: Duration::hours(24),
        }
    }
}

/// How the engine built its state at start.
#[derive(Debug, Clone, PartialEq)]
pub struct StartInfo {
    /// The position of the snapshot it started from, if it used one.
    pub snapshot: Option<Position>,
    /// Why a stored snapshot was not used (then the whole log was replayed).
    pub snapshot_unused: Option<crate::snapshot::SnapshotUnused>,
    /// How many events it replayed from the log (after the snapshot, if any).
    pub replayed: u64,
    /// The position of the last event in the log at start.
    pub position: Position,
}

/// Why a command got no receipt.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    /// The lifecycle refused it; nothing changed.
    #[error(transparent)]
    Rejected(#[from] LifecycleError),
    /// The queue is full; nothing was queued. Retry later.
    #[error("the engine is overloaded: {capacity} commands are waiting; retry later")]
    Overloaded {
        /// The queue's capacity.
        capacity: usize,
    },
    /// The store failed; the command's events were not stored and the state was rebuilt.
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// The stored log does not replay.
    #[error("replay: {0}")]
    Replay(#[from] ApplyError),
    /// The policy book was resolved for another unit tree (it has an entry
    /// per unit, but not as many as this city has units); nothing started.
    #[error("the policy book has {entries} unit entries but the city has {units} units")]
    PoliciesMismatch {
        /// The city's units.
        units: usize,
        /// The book's entries.
        entries: usize,
    },
    /// The key was already used for a different command; nothing changed.
    /// (An HTTP layer answers 422.)
    #[error("{key} was already used for a different command")]
    KeyReused {
        /// The key.
        key: CommandKey,
    },
    /// The engine has stopped.
    #[error("the engine has stopped")]
    Stopped,
}

/// What a command caused, once it is stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Receipt {
    /// The events, in order (personal data in clear: the caller is the platform).
    pub events: Vec<Recorded>,
    /// The log position of the batch the events were stored in: its last
    /// event's. For a batch that stored no events, the head of the log if
    /// the batch recorded command keys, otherwise `Position(0)`.
    pub position: Position,
}

/// A query gets the state, or why the state cannot be shown (it could not be rebuilt after a failed write).
pub(crate) type Query<T> = Box<dyn FnOnce(Result<&Lifecycle<T>, EngineError>) + Send>;

// Commands are moved into the queue once; boxing them would cost an allocation each.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Job<T> {
    /// A command, with its key and the command's fingerprint when it has
    /// one (hashed by the caller's task, not the writer).
    Command {
        cmd: Command,
        key: Option<(CommandKey, Fingerprint)>,
        reply: oneshot::Sender<Result<Receipt, EngineError>>,
    },
    Query(Query<T>),
    Settle(oneshot::Sender<()>),
}

/// Builds a fresh, empty lifecycle (the city, its teams, the policies):
/// used at start and to rebuild after a failed write. Made by the
/// [`EngineBuilder`](crate::EngineBuilder).
pub(crate) type Factory<T> = Arc<dyn Fn() -> Lifecycle<T> + Send + Sync>;

/// A running engine. Cheap to share behind an `Arc`; every method takes `&self`.
#[derive(Debug)]
pub struct Engine<T> {
    tx: mpsc::Sender<Job<T>>,
    capacity: usize,
    writer: JoinHandle<()>,
    relay: JoinHandle<()>,
    stop_relay: watch::Sender<bool>,
    started: StartInfo,
}

impl<T> std::fmt::Debug for Job<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Job::Command { cmd, .. } => f.debug_tuple("Command").field(cmd).finish(),
            Job::Query(_) => f.write_str("Query"),
            Job::Settle(_) => f.write_str("Settle"),
        }
    }
}

impl<T: TravelTime + Send + Sync + 'static> Engine<T> {
    /// Rebuilds the state by replaying the store's log, then starts the
    /// writer and the outbox relay (which first publishes whatever the log
    /// holds unpublished). Called by [`EngineBuilder::start`](crate::EngineBuilder::start).
    pub(crate) async fn start<S: Store, B: Bus, C: Clock>(
        factory: Factory<T>,
        store: S,
        bus: B,
        clock: C,
        config: EngineConfig,
    ) -> Result<Self, EngineError> {
        let (lc, started) = crate::writer::replay(&factory, &store)
            .await
            .inspect_err(|e| warn!(error = %e, "the engine cannot start"))?;
        let keys = crate::writer::Keys::load(&store, clock.now(), config.key_retention)
            .await
            .inspect_err(|e| warn!(error = %e, "the engine cannot load its command keys"))?;
        info!(
            snapshot = started.snapshot.map(|p| p.0),
            replayed = started.replayed,
            position = started.position.0,
            keys = keys.len(),
            "engine started"
        );
        let store = Arc::new(store);
        let notify = Arc::new(Notify::new());
        notify.notify_one();
        let (stop_relay, stop_rx) = watch::channel(false);
        let scopes = {
            let d = lc.dispatcher();
            crate::scopes::Scopes::new(
                d.city().units().clone(),
                d.index().records().iter().map(|t| (t.id.clone(), t.unit)),
            )
        };
        let relay = tokio::spawn(crate::relay::run(
            Arc::clone(&store),
            bus,
            Arc::clone(&notify),
            stop_rx,
            config.relay_batch,
            scopes,
        ));
        let (tx, rx) = mpsc::channel(config.queue_capacity.max(1));
        let writer = Writer::new(lc, factory, store, clock, notify, config, &started, keys);
        let writer = tokio::spawn(writer.run(rx));
        Ok(Self { tx, capacity: config.queue_capacity.max(1), writer, relay, stop_relay, started })
    }

    /// How the state was built at start: from which snapshot, and how many events replayed.
    pub fn start_info(&self) -> &StartInfo {
        &self.started
    }

    /// Queues a command and waits until its events are stored.
    ///
    /// ```
    /// # use sidan_core::dispatch::Dispatcher;
    /// # use sidan_core::lifecycle::{Command, RequestCommand};
    /// # use sidan_core::request::Urgency;
    /// # use sidan_core::testkit::{request, t0, tiny_city};
    /// # use sidan_runtime::{Engine, EngineError, ManualClock, MemoryStore};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), EngineError> {
    /// # let (city, index) = tiny_city();
    /// # let engine = Engine::builder(Dispatcher::new(city, index))
    /// #     .store(MemoryStore::new())
    /// #     .clock(ManualClock::new(t0()))
    /// #     .start()
    /// #     .await?;
    /// let spec = request("r1", "c1-i1-s1", "home-care", Urgency::Normal, 2, 3);
    /// let receipt = engine.execute(Command::Request(RequestCommand::Submit { spec: spec.clone() })).await?;
    /// assert_eq!(receipt.events[0].stream.to_string(), "request/r1");
    /// // The same request again is refused, and nothing changes.
    /// let again = engine.execute(Command::Request(RequestCommand::Submit { spec })).await;
    /// assert!(matches!(again, Err(EngineError::Rejected(_))));
    /// # engine.shutdown().await;
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    /// [`EngineError::Rejected`] with the lifecycle's reason,
    /// [`EngineError::Overloaded`] at once when the queue is full,
    /// [`EngineError::Store`] if the batch could not be stored,
    /// [`EngineError::Stopped`] after shutdown.
    pub async fn execute(&self, cmd: Command) -> Result<Receipt, EngineError> {
        let (reply, rx) = oneshot::channel();
        self.send(Job::Command { cmd, key: None, reply })?;
        rx.await.map_err(|_| EngineError::Stopped)?
    }

    /// Queues a command named by an idempotency key and waits until its
    /// events are stored, like [`execute`](Engine::execute), except that the
    /// key makes it happen at most once:
    ///
    /// - a key not seen (or forgotten after
    ///   [`EngineConfig::key_retention`]): the command is decided, and the
    ///   key is stored with its events, in the same append;
    /// - the same key with the same command (same [`Fingerprint`]): the
    ///   first receipt again, same events, same position; nothing is
    ///   appended, whether the first use is stored, in the same batch, or
    ///   from before a restart;
    /// - the same key with another command: [`EngineError::KeyReused`], and
    ///   nothing changes.
    ///
    /// A refused command ([`EngineError::Rejected`]) records no key: the
    /// refusal changed nothing, so a retry is decided again on the state of
    /// its time. Neither does a command whose batch failed to store
    /// ([`EngineError::Store`]); its retry gets the receipt if the store
    /// did keep the batch after all (the keys are reloaded after a failure).
    ///
    /// ```
    /// # use sidan_core::dispatch::Dispatcher;
    /// # use sidan_core::lifecycle::{Command, RequestCommand};
    /// # use sidan_core::request::Urgency;
    /// # use sidan_core::testkit::{request, t0, tiny_city};
    /// # use sidan_runtime::{Engine, CommandKey, EngineError, ManualClock, MemoryStore};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), EngineError> {
    /// # let (city, index) = tiny_city();
    /// # let engine = Engine::builder(Dispatcher::new(city, index))
    /// #     .store(MemoryStore::new())
    /// #     .clock(ManualClock::new(t0()))
    /// #     .start()
    /// #     .await?;
    /// let spec = request("r1", "c1-i1-s1", "home-care", Urgency::Normal, 2, 3);
    /// let key = CommandKey::new("resident:42", "order-1").expect("valid key");
    /// let first = engine.execute_keyed(key.clone(), Command::Request(RequestCommand::Submit { spec: spec.clone() })).await?;
    /// // A retry (say the reply was lost) gets the first receipt; nothing new is stored.
    /// let retry = engine.execute_keyed(key.clone(), Command::Request(RequestCommand::Submit { spec })).await?;
    /// assert_eq!(retry, first);
    /// // Another command under the same key is refused.
    /// let other = request("r2", "c1-i1-s1", "home-care", Urgency::Normal, 2, 3);
    /// let reused = engine.execute_keyed(key, Command::Request(RequestCommand::Submit { spec: other })).await;
    /// assert!(matches!(reused, Err(EngineError::KeyReused { .. })));
    /// # engine.shutdown().await;
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    /// Those of [`execute`](Engine::execute), and [`EngineError::KeyReused`].
    /// A store that keeps no keys ([`Store::keeps_keys`]) refuses every
    /// keyed command at once with [`StoreError::KeysUnsupported`]; another writer that stored the key
    /// first fails this command's batch with [`StoreError::KeyExists`] (a
    /// retry then gets that writer's receipt).
    pub async fn execute_keyed(&self, key: CommandKey, cmd: Command) -> Result<Receipt, EngineError> {
        let (reply, rx) = oneshot::channel();
        let fingerprint = Fingerprint::of(&cmd);
        self.send(Job::Command { cmd, key: Some((key, fingerprint)), reply })?;
        rx.await.map_err(|_| EngineError::Stopped)?
    }

    /// Runs `f` on the state as of the last stored batch.
    ///
    /// # Errors
    /// [`EngineError::Overloaded`] or [`EngineError::Stopped`];
    /// [`EngineError::Store`] while the state cannot be rebuilt after a failed write.
    pub async fn query<R: Send + 'static>(
        &self,
        f: impl FnOnce(&Lifecycle<T>) -> R + Send + 'static,
    ) -> Result<R, EngineError> {
        let (tx, rx) = oneshot::channel();
        self.send(Job::Query(Box::new(move |lc| {
            let _ = tx.send(lc.map(f));
        })))?;
        rx.await.map_err(|_| EngineError::Stopped)?
    }

    /// Waits until every timer due at the clock's current time has fired and
    /// its events are stored. With a [`ManualClock`](crate::ManualClock) this
    /// makes a simulation step deterministic: set the time, then settle.
    ///
    /// # Errors
    /// [`EngineError::Overloaded`] or [`EngineError::Stopped`].
    pub async fn settle(&self) -> Result<(), EngineError> {
        let (tx, rx) = oneshot::channel();
        self.send(Job::Settle(tx))?;
        rx.await.map_err(|_| EngineError::Stopped)
    }

    fn send(&self, job: Job<T>) -> Result<(), EngineError> {
        self.tx.try_send(job).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => EngineError::Overloaded { capacity: self.capacity },
            mpsc::error::TrySendError::Closed(_) => EngineError::Stopped,
        })
    }

    /// Stops taking commands, finishes the queued ones, saves a snapshot if
    /// events were stored since the last one, publishes what is stored, and
    /// stops.
    ///
    /// ```
    /// # use sidan_core::dispatch::Dispatcher;
    /// # use sidan_core::lifecycle::{Command, RequestCommand};
    /// # use sidan_core::request::Urgency;
    /// # use sidan_core::testkit::{request, t0, tiny_city};
    /// # use sidan_runtime::{Engine, EngineError, ManualClock, MemoryStore, Store as _};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), EngineError> {
    /// # let (city, index) = tiny_city();
    /// # let store = MemoryStore::new();
    /// # let engine = Engine::builder(Dispatcher::new(city, index))
    /// #     .store(store.clone())
    /// #     .clock(ManualClock::new(t0()))
    /// #     .start()
    /// #     .await?;
    /// let spec = request("r1", "c1-i1-s1", "home-care", Urgency::Normal, 2, 3);
    /// engine.execute(Command::Request(RequestCommand::Submit { spec })).await?;
    /// engine.shutdown().await;
    /// // Everything stored is published, and the state saved for the next start.
    /// assert!(store.unpublished(10).await?.is_empty());
    /// assert!(store.load_snapshot(sidan_runtime::LIFECYCLE_SNAPSHOT).await?.is_some());
    /// # Ok(())
    /// # }
    /// ```
    pub async fn shutdown(self) {
        drop(self.tx);
        let _ = self.writer.await;
        let _ = self.stop_relay.send(true);
        let _ = self.relay.await;
        info!("engine stopped");
    }

    /// Stops at once, as a crash would: queued commands get no reply, and
    /// whatever was not stored is lost (and was never acknowledged).
    pub fn abort(self) {
        self.writer.abort();
        self.relay.abort();
    }
}

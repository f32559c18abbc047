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

use std::ops::Range;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use sidan_core::geo::TravelTime;
use sidan_core::lifecycle::{ApplyError, Command, Lifecycle, LifecycleError, Recorded, StreamId};
use tokio::sync::{Notify, mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use crate::bus::{Bus, Published};
use crate::clock::Clock;
use crate::keys::{CommandKey, Fingerprint, KeyRecord, StoredKey};
use crate::store::{CorruptError, Position, Store, StoreError};

type HashMap<K, V> = foldhash::HashMap<K, V>;

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

type Query<T> = Box<dyn FnOnce(&Lifecycle<T>) + Send>;

// Commands are moved into the queue once; boxing them would cost an allocation each.
#[allow(clippy::large_enum_variant)]
enum Job<T> {
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
/// used at start and to rebuild after a failed write.
pub type Factory<T> = Arc<dyn Fn() -> Lifecycle<T> + Send + Sync>;

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

/// Builds the state from the store: from its lifecycle snapshot, if it has one that fits, then
/// the events after it; otherwise from the whole log.
async fn replay<T: TravelTime, S: Store>(
    factory: &Factory<T>,
    store: &S,
) -> Result<(Lifecycle<T>, StartInfo), EngineError> {
    let mut info = StartInfo { snapshot: None, snapshot_unused: None, replayed: 0, position: Position(0) };
    let mut lc = None;
    let mut at = Position(0);
    if let Some(snap) = store.load_snapshot(crate::snapshot::LIFECYCLE_SNAPSHOT).await? {
        match crate::snapshot::restore(factory(), &snap) {
            Ok(restored) => {
                lc = Some(restored);
                at = snap.position;
                info.snapshot = Some(snap.position);
            }
            Err(e) => info.snapshot_unused = Some(e),
        }
    }
    let mut lc = lc.unwrap_or_else(|| factory());
    loop {
        let chunk = store.read_from(at, 4096).await?;
        let Some(last) = chunk.last() else { break };
        at = last.position;
        for s in &chunk {
            lc.apply(&s.record)?;
        }
        info.replayed += chunk.len() as u64;
    }
    info.position = at;
    Ok((lc, info))
}

impl<T: TravelTime + Send + Sync + 'static> Engine<T> {
    /// Rebuilds the state by replaying the store's log, then starts the
    /// writer and the outbox relay (which first publishes whatever the log
    /// holds unpublished).
    ///
    /// # Errors
    /// If the store cannot be read or its log does not replay.
    pub async fn start<S: Store, B: Bus, C: Clock>(
        factory: Factory<T>,
        store: S,
        bus: B,
        clock: C,
        config: EngineConfig,
    ) -> Result<Self, EngineError> {
        let (lc, started) = replay(&factory, &store).await?;
        let keys = Keys::load(&store, clock.now(), config.key_retention).await?;
        let store = Arc::new(store);
        let notify = Arc::new(Notify::new());
        notify.notify_one();
        let (stop_relay, stop_rx) = watch::channel(false);
        let relay = tokio::spawn(run_relay(Arc::clone(&store), bus, Arc::clone(&notify), stop_rx, config.relay_batch));
        let (tx, rx) = mpsc::channel(config.queue_capacity.max(1));
        let writer = Writer {
            lc,
            factory,
            store,
            clock,
            notify,
            config,
            last_now: None,
            // The events replayed after the stored snapshot count: the next
            // one then follows at most `snapshot_every` events after it,
            // however often the engine restarts in between.
            since_snapshot: started.replayed,
            last_position: started.position,
            keys,
        };
        let writer = tokio::spawn(writer.run(rx));
        Ok(Self { tx, capacity: config.queue_capacity.max(1), writer, relay, stop_relay, started })
    }

    /// How the state was built at start: from which snapshot, and how many events replayed.
    pub fn start_info(&self) -> &StartInfo {
        &self.started
    }

    /// Queues a command and waits until its events are stored.
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
    /// [`EngineError::Overloaded`] or [`EngineError::Stopped`].
    pub async fn query<R: Send + 'static>(
        &self,
        f: impl FnOnce(&Lifecycle<T>) -> R + Send + 'static,
    ) -> Result<R, EngineError> {
        let (tx, rx) = oneshot::channel();
        self.send(Job::Query(Box::new(move |lc| {
            let _ = tx.send(f(lc));
        })))?;
        rx.await.map_err(|_| EngineError::Stopped)
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

    /// Stops taking commands, finishes the queued ones, publishes what is
    /// stored, and stops.
    pub async fn shutdown(self) {
        drop(self.tx);
        let _ = self.writer.await;
        let _ = self.stop_relay.send(true);
        let _ = self.relay.await;
    }

    /// Stops at once, as a crash would: queued commands get no reply, and
    /// whatever was not stored is lost (and was never acknowledged).
    pub fn abort(self) {
        self.writer.abort();
        self.relay.abort();
    }
}

struct Writer<T, S, C> {
    lc: Lifecycle<T>,
    factory: Factory<T>,
    store: Arc<S>,
    clock: C,
    notify: Arc<Notify>,
    config: EngineConfig,
    /// The engine's time never goes back, even if the clock does.
    last_now: Option<DateTime<Utc>>,
    /// Events stored since the last snapshot.
    since_snapshot: u64,
    /// The position of the last event the state includes.
    last_position: Position,
    keys: Keys,
}

type Sender = oneshot::Sender<Result<Receipt, EngineError>>;

/// The writer's command keys.
struct Keys {
    retention: Duration,
    /// Every stored key not yet forgotten.
    stored: HashMap<CommandKey, StoredKey>,
    /// Keys of commands decided in the pending batch: the fingerprint and the index of the first use's reply.
    pending: HashMap<CommandKey, (Fingerprint, usize)>,
    /// The pending batch's keys, to store with it.
    records: Vec<KeyRecord>,
    /// Second uses of pending keys: the first use's reply index, and the caller.
    waiting: Vec<(usize, Sender)>,
    /// When to forget old keys next.
    next_purge: Option<DateTime<Utc>>,
}

/// What a key says about a command.
enum Seen {
    /// Not seen: decide it.
    New,
    /// Decided in the pending batch, at this reply index.
    Pending(usize),
    /// Stored.
    Stored(StoredKey),
    /// Used for another command.
    Reused,
}

impl Keys {
    /// The keys a store holds from `now - retention` on.
    async fn load<S: Store>(store: &S, now: DateTime<Utc>, retention: Duration) -> Result<Self, StoreError> {
        let since = now.checked_sub_signed(retention).unwrap_or(DateTime::<Utc>::MIN_UTC);
        let stored = store.keys_since(since).await?.into_iter().map(|k| (k.key.clone(), k)).collect();
        Ok(Self {
            retention,
            stored,
            pending: HashMap::default(),
            records: Vec::new(),
            waiting: Vec::new(),
            next_purge: None,
        })
    }

    fn seen(&self, key: &CommandKey, fingerprint: Fingerprint) -> Seen {
        if let Some(&(f, i)) = self.pending.get(key) {
            return if f == fingerprint { Seen::Pending(i) } else { Seen::Reused };
        }
        match self.stored.get(key) {
            Some(k) if k.fingerprint == fingerprint => Seen::Stored(k.clone()),
            Some(_) => Seen::Reused,
            None => Seen::New,
        }
    }
}

/// The first receipt of a stored key, read back from the log.
async fn receipt_again<S: Store>(store: &S, k: &StoredKey) -> Result<Receipt, EngineError> {
    let mut events = Vec::new();
    if k.count > 0 {
        let stored = store.read_from(Position(k.first.0 - 1), k.count as usize).await?;
        if stored.len() as u64 != k.count || stored.first().map(|s| s.position) != Some(k.first) {
            return Err(StoreError::from(CorruptError::MissingEvents {
                key: k.key.clone(),
                first: k.first,
                count: k.count,
            })
            .into());
        }
        events = stored.into_iter().map(|s| s.record).collect();
    }
    Ok(Receipt { events, position: k.position })
}

type Reply = (oneshot::Sender<Result<Receipt, EngineError>>, Result<Range<usize>, LifecycleError>);

async fn sleep_or_never<C: Clock>(clock: &C, at: Option<DateTime<Utc>>) {
    match at {
        Some(t) => clock.sleep_until(t).await,
        None => std::future::pending().await,
    }
}

impl<T: TravelTime, S: Store, C: Clock> Writer<T, S, C> {
    async fn run(mut self, mut rx: mpsc::Receiver<Job<T>>) {
        // After a round of ticks that changed nothing, wait at least this long
        // before ticking again (a guard; every due tick is expected to change something).
        let mut idle_until: Option<DateTime<Utc>> = None;
        loop {
            let wake = match (self.lc.next_wakeup(), idle_until) {
                (Some(w), Some(i)) => Some(w.max(i)),
                (w, _) => w,
            };
            let first = tokio::select! {
                biased;
                job = rx.recv() => match job {
                    Some(j) => Some(j),
                    None => break,
                },
                () = sleep_or_never(&self.clock, wake) => None,
            };
            let mut jobs: Vec<Job<T>> = first.into_iter().collect();
            while jobs.len() < self.config.max_batch {
                match rx.try_recv() {
                    Ok(j) => jobs.push(j),
                    Err(_) => break,
                }
            }
            let now = self.now();
            self.purge_keys(now).await;
            let mut batch = Vec::new();
            let mut replies: Vec<Reply> = Vec::new();
            let mut settled = Vec::new();
            for job in jobs {
                match job {
                    Job::Command { cmd, key, reply } => {
                        let fingerprint = match &key {
                            Some(_) if !self.store.keeps_keys() => {
                                let _ = reply.send(Err(EngineError::Store(StoreError::KeysUnsupported)));
                                continue;
                            }
                            Some((key, fingerprint)) => {
                                match self.keys.seen(key, *fingerprint) {
                                    Seen::New => Some(*fingerprint),
                                    Seen::Pending(i) => {
                                        self.keys.waiting.push((i, reply));
                                        continue;
                                    }
                                    Seen::Stored(k) => {
                                        // Read back off the writer: a retry never holds up the batch.
                                        let store = Arc::clone(&self.store);
                                        tokio::spawn(async move {
                                            let _ = reply.send(receipt_again(&*store, &k).await);
                                        });
                                        continue;
                                    }
                                    Seen::Reused => {
                                        let _ = reply.send(Err(EngineError::KeyReused { key: key.clone() }));
                                        continue;
                                    }
                                }
                            }
                            None => None,
                        };
                        let res = self.lc.decide(&cmd, now).map(|recs| {
                            let start = batch.len();
                            self.apply_all(&recs);
                            batch.extend(recs);
                            start..batch.len()
                        });
                        // A refusal changed nothing: its key is not kept, and a retry decides again.
                        if let (Some((key, _)), Some(fingerprint), Ok(events)) = (key, fingerprint, &res) {
                            self.keys.pending.insert(key.clone(), (fingerprint, replies.len()));
                            self.keys.records.push(KeyRecord { key, fingerprint, at: now, events: events.clone() });
                        }
                        replies.push((reply, res));
                    }
                    Job::Query(f) => {
                        // A query sees only stored state: store what is pending first.
                        self.flush(&mut batch, &mut replies).await;
                        f(&self.lc);
                    }
                    Job::Settle(done) => settled.push(done),
                }
            }
            let before = batch.len();
            let due: Vec<StreamId> = self.lc.due(now).cloned().collect();
            for stream in due {
                if let Ok(recs) = self.lc.decide(&Command::Tick(stream), now) {
                    self.apply_all(&recs);
                    batch.extend(recs);
                }
            }
            idle_until = (batch.len() == before && self.lc.next_wakeup().is_some_and(|w| w <= now))
                .then(|| now + Duration::seconds(1));
            self.flush(&mut batch, &mut replies).await;
            if self.config.snapshot_every > 0 && self.since_snapshot >= self.config.snapshot_every {
                self.save_snapshot().await;
            }
            for done in settled {
                let _ = done.send(());
            }
        }
        let mut batch = Vec::new();
        self.flush(&mut batch, &mut Vec::new()).await;
        if self.since_snapshot > 0 && self.config.snapshot_every > 0 {
            self.save_snapshot().await;
        }
    }

    /// Saves a snapshot of the state, if the state is exactly the stored log: positions are
    /// gapless from 1, so the state holds every event up to its last position only if it has
    /// applied that many, and nothing may follow it (no other writer has appended events this
    /// engine has not applied). A failure only costs time at the next start, so it is not an
    /// error.
    async fn save_snapshot(&mut self) {
        let position = self.last_position;
        if self.lc.applied() != position.0 {
            return;
        }
        match self.store.read_from(position, 1).await {
            Ok(after) if after.is_empty() => {}
            _ => return,
        }
        let snap = crate::snapshot::encode(&self.lc, position);
        if self.store.save_snapshot(&snap).await.is_ok() {
            self.since_snapshot = 0;
        }
    }

    fn now(&mut self) -> DateTime<Utc> {
        let now = self.clock.now();
        let now = self.last_now.map_or(now, |l| l.max(now));
        self.last_now = Some(now);
        now
    }

    fn apply_all(&mut self, recs: &[Recorded]) {
        for r in recs {
            if let Err(e) = self.lc.apply(r) {
                unreachable!("a decided event does not apply: {e}");
            }
        }
    }

    /// Forgets the keys older than the retention, in the store and here, at
    /// most once per 24th of the retention.
    async fn purge_keys(&mut self, now: DateTime<Utc>) {
        if self.keys.next_purge.is_some_and(|t| now < t) {
            return;
        }
        let retention = self.keys.retention;
        let cutoff = now.checked_sub_signed(retention).unwrap_or(DateTime::<Utc>::MIN_UTC);
        // If the store fails, keep both: a key is never forgotten here while the store still has it.
        if self.store.purge_keys(cutoff).await.is_ok() {
            self.keys.stored.retain(|_, k| k.at >= cutoff);
        }
        let every = (retention / 24).max(Duration::seconds(1));
        self.keys.next_purge = now.checked_add_signed(every);
    }

    /// Stores the pending batch with its keys, then answers every caller.
    async fn flush(&mut self, batch: &mut Vec<Recorded>, replies: &mut Vec<Reply>) {
        let keys = std::mem::take(&mut self.keys.records);
        self.keys.pending.clear();
        let outcome = if batch.is_empty() && keys.is_empty() {
            Ok(Position(0))
        } else {
            match self.store.append_keyed(batch, &keys).await {
                Ok(p) => {
                    self.notify.notify_one();
                    self.since_snapshot += batch.len() as u64;
                    self.last_position = p;
                    let head = Position(p.0.saturating_sub(batch.len() as u64));
                    for k in &keys {
                        self.keys.stored.insert(k.key.clone(), StoredKey::stored(k, head, batch.len()));
                    }
                    Ok(p)
                }
                Err(e) => {
                    // Nothing of the batch is acknowledged; rebuild from what is stored.
                    if let Ok((lc, info)) = replay(&self.factory, &*self.store).await {
                        self.lc = lc;
                        self.last_position = info.position;
                    }
                    // The keys too: the store may have kept the batch after all, or
                    // another writer the same key, and a retry must then find it.
                    let now = self.last_now.unwrap_or_else(|| self.clock.now());
                    if let Ok(k) = Keys::load(&*self.store, now, self.keys.retention).await {
                        self.keys.stored = k.stored;
                    }
                    Err(e)
                }
            }
        };
        // Replies take their events out of the batch (ranges are contiguous and in order).
        let mut events = std::mem::take(batch).into_iter();
        let mut taken = 0;
        let mut answers = Vec::with_capacity(replies.len());
        for (reply, res) in replies.drain(..) {
            let answer = match (&outcome, res) {
                (_, Err(e)) => Err(EngineError::Rejected(e)),
                (Ok(p), Ok(range)) => {
                    if range.start > taken {
                        events.nth(range.start - taken - 1);
                    }
                    taken = range.end;
                    Ok(Receipt { events: events.by_ref().take(range.len()).collect(), position: *p })
                }
                (Err(e), Ok(_)) => Err(EngineError::Store(e.clone())),
            };
            answers.push((reply, answer));
        }
        // Second uses of a key in the batch get the first use's answer.
        for (i, reply) in self.keys.waiting.drain(..) {
            let _ = reply.send(answers[i].1.clone());
        }
        for (reply, answer) in answers {
            let _ = reply.send(answer);
        }
    }
}

async fn run_relay<S: Store, B: Bus>(
    store: Arc<S>,
    bus: B,
    notify: Arc<Notify>,
    mut stop: watch::Receiver<bool>,
    limit: usize,
) {
    loop {
        let stopping = tokio::select! {
            () = notify.notified() => false,
            _ = stop.changed() => true,
        };
        // Publish until the outbox is empty; retry failures after a pause.
        loop {
            match relay_once(&*store, &bus, limit.max(1)).await {
                Ok(0) => break,
                Ok(_) => {}
                Err(()) => {
                    if *stop.borrow() {
                        return;
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            }
        }
        if stopping || *stop.borrow() {
            return;
        }
    }
}

/// Publishes one batch from the outbox and marks it; returns how many events.
async fn relay_once<S: Store, B: Bus>(store: &S, bus: &B, limit: usize) -> Result<usize, ()> {
    let pending = store.unpublished(limit).await.map_err(|_| ())?;
    let Some(last) = pending.last().map(|s| s.position) else { return Ok(0) };
    let msgs: Vec<Published> = pending.iter().map(Published::of).collect();
    bus.publish(&msgs).await.map_err(|_| ())?;
    store.mark_published(last).await.map_err(|_| ())?;
    Ok(pending.len())
}

//! The engine's single writer: takes queued jobs in batches, decides and
//! applies each command on the lifecycle, fires due timers, stores the
//! batch's events (with its command keys) in one append, and only then
//! answers; after a failed append it rebuilds the state from the store.

use std::ops::Range;
use std::sync::Arc;

use backon::{ExponentialBuilder, Retryable as _};
use chrono::{DateTime, Duration, Utc};
use sidan_core::geo::TravelTime;
use sidan_core::lifecycle::{Command, Lifecycle, LifecycleError, Recorded, StreamId};
use tokio::sync::{Notify, mpsc, oneshot};
use tracing::{Instrument as _, debug, debug_span, field, info, warn};

use crate::clock::Clock;
use crate::engine::{EngineConfig, EngineError, Factory, Job, Receipt, StartInfo};
use crate::keys::{CommandKey, Fingerprint, KeyRecord, StoredKey};
use crate::store::{CorruptError, Position, Store, StoreError};

type HashMap<K, V> = foldhash::HashMap<K, V>;

/// Builds the state from the store: from its lifecycle snapshot, if it has one that fits, then
/// the events after it; otherwise from the whole log.
pub(crate) async fn replay<T: TravelTime, S: Store>(
    factory: &Factory<T>,
    store: &S,
) -> Result<(Lifecycle<T>, StartInfo), EngineError> {
    let mut info = StartInfo { snapshot: None, snapshot_unused: None, replayed: 0, position: Position(0) };
    let mut lc = None;
    let mut at = Position(0);
    if let Some(snap) = store.load_snapshot(crate::snapshot::LIFECYCLE_SNAPSHOT).await? {
        match crate::snapshot::restore(factory(), &snap) {
            Ok(restored) => {
                info!(position = snap.position.0, "restored the lifecycle snapshot");
                lc = Some(restored);
                at = snap.position;
                info.snapshot = Some(snap.position);
            }
            Err(e) => {
                warn!(reason = %e, position = snap.position.0, "the stored snapshot is not used; replaying the whole log");
                info.snapshot_unused = Some(e);
            }
        }
    }
    let mut lc = lc.unwrap_or_else(|| factory());
    // The next page is read (and decoded, by the store) while this one is folded.
    let mut chunk = store.read_from(at, REPLAY_PAGE).await?;
    while let Some(last) = chunk.last() {
        at = last.position;
        let (next, folded) = tokio::join!(store.read_from(at, REPLAY_PAGE), async {
            for s in &chunk {
                lc.apply(&s.record)?;
            }
            Ok::<_, sidan_core::lifecycle::ApplyError>(())
        });
        folded?;
        info.replayed += chunk.len() as u64;
        chunk = next?;
    }
    info.position = at;
    Ok((lc, info))
}

/// Events read from the store at a time while replaying.
const REPLAY_PAGE: usize = 4096;

pub(crate) struct Writer<T, S, C> {
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
    /// Set when the state could not be rebuilt after a failed write: it may
    /// hold events that were not stored, so nothing is decided, answered or
    /// saved from it until a rebuild succeeds.
    stale: Option<StoreError>,
}

/// Retries of a failed rebuild before the writer gives up until its next batch.
const REBUILD_RETRIES: usize = 4;

type Sender = oneshot::Sender<Result<Receipt, EngineError>>;

/// The writer's command keys.
pub(crate) struct Keys {
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
    pub(crate) async fn load<S: Store>(store: &S, now: DateTime<Utc>, retention: Duration) -> Result<Self, StoreError> {
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

    /// How many stored keys are kept.
    pub(crate) fn len(&self) -> usize {
        self.stored.len()
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
    /// A writer on the state built at start.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        lc: Lifecycle<T>,
        factory: Factory<T>,
        store: Arc<S>,
        clock: C,
        notify: Arc<Notify>,
        config: EngineConfig,
        started: &StartInfo,
        keys: Keys,
    ) -> Self {
        Self {
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
            stale: None,
        }
    }

    pub(crate) async fn run(mut self, mut rx: mpsc::Receiver<Job<T>>) {
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
            let commands = jobs.iter().filter(|j| matches!(j, Job::Command { .. })).count();
            let span = debug_span!("batch", commands, events = field::Empty, position = field::Empty);
            idle_until = self.batch(jobs).instrument(span).await;
        }
        info!("engine stopping: storing what is decided");
        let mut batch = Vec::new();
        self.flush(&mut batch, &mut Vec::new()).await;
        if self.since_snapshot > 0 && self.config.snapshot_every > 0 {
            self.save_snapshot().await;
        }
    }

    /// Decides a batch of jobs and the timers due, stores the events, then
    /// answers; returns until when to hold off ticking again, if the due
    /// ticks changed nothing.
    async fn batch(&mut self, jobs: Vec<Job<T>>) -> Option<DateTime<Utc>> {
        if let Some(e) = self.still_stale().await {
            for job in jobs {
                match job {
                    Job::Command { reply, .. } => drop(reply.send(Err(EngineError::Store(e.clone())))),
                    Job::Query(f) => f(Err(EngineError::Store(e.clone()))),
                    Job::Settle(done) => drop(done.send(())),
                }
            }
            return None;
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
                        Some((key, fingerprint)) => match self.keys.seen(key, *fingerprint) {
                            Seen::New => Some(*fingerprint),
                            Seen::Pending(i) => {
                                self.keys.waiting.push((i, reply));
                                continue;
                            }
                            Seen::Stored(k) => {
                                // Read back off the writer: a retry never holds up the batch.
                                let store = Arc::clone(&self.store);
                                tokio::spawn(async move {
                                    let again = receipt_again(&*store, &k).await;
                                    if let Err(e) = &again {
                                        warn!(error = %e, "the first receipt of a command key cannot be read back");
                                    }
                                    let _ = reply.send(again);
                                });
                                continue;
                            }
                            Seen::Reused => {
                                let _ = reply.send(Err(EngineError::KeyReused { key: key.clone() }));
                                continue;
                            }
                        },
                        None => None,
                    };
                    // A new request under an id memory may have forgotten: the store knows.
                    if let Some(request) = self.lc.needs_stream_check(&cmd) {
                        match self.store.load(&StreamId::Request(request.clone())).await {
                            Ok(events) if events.is_empty() => {}
                            Ok(_) => {
                                let retired = LifecycleError::Retired { request: request.clone() };
                                replies.push((reply, Err(retired)));
                                continue;
                            }
                            Err(e) => {
                                let _ = reply.send(Err(EngineError::Store(e)));
                                continue;
                            }
                        }
                    }
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
                    match &self.stale {
                        None => f(Ok(&self.lc)),
                        Some(e) => f(Err(EngineError::Store(e.clone()))),
                    }
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
        let idle_until = (batch.len() == before && self.lc.next_wakeup().is_some_and(|w| w <= now))
            .then(|| now + Duration::seconds(1));
        self.flush(&mut batch, &mut replies).await;
        if self.config.snapshot_every > 0 && self.since_snapshot >= self.config.snapshot_every {
            self.save_snapshot().await;
        }
        for done in settled {
            let _ = done.send(());
        }
        idle_until
    }

    /// Rebuilds the state from the store after a failed write, retrying a
    /// failing store a few times with backoff; on failure the state stays
    /// stale (it may hold events that were not stored) and the error is kept.
    async fn rebuild(&mut self) {
        let retry = ExponentialBuilder::default()
            .with_min_delay(std::time::Duration::from_millis(20))
            .with_max_delay(std::time::Duration::from_secs(1))
            .with_max_times(REBUILD_RETRIES)
            .with_jitter();
        let (factory, store) = (&self.factory, &*self.store);
        let rebuilt = (|| replay(factory, store))
            .retry(retry)
            // A log that does not replay will not replay on a second try either.
            .when(|e| matches!(e, EngineError::Store(_)))
            .notify(|e, pause| warn!(error = %e, retry_in_ms = pause.as_millis() as u64, "rebuilding the state failed"))
            .await;
        match rebuilt {
            Ok((lc, info)) => {
                debug!(position = info.position.0, replayed = info.replayed, "state rebuilt from the store");
                self.lc = lc;
                self.last_position = info.position;
                self.stale = None;
            }
            Err(e) => {
                warn!(error = %e, "the state cannot be rebuilt; commands are refused until it is");
                self.stale = Some(match e {
                    EngineError::Store(e) => e,
                    EngineError::Replay(e) => StoreError::from(CorruptError::Replay(e)),
                    _ => StoreError::from(CorruptError::Rebuild),
                });
            }
        }
    }

    /// If the state is stale, tries to rebuild it; the store's error if it is still stale.
    async fn still_stale(&mut self) -> Option<StoreError> {
        if self.stale.is_some() {
            self.rebuild().await;
        }
        self.stale.clone()
    }

    /// Saves a snapshot of the state, if the state is exactly the stored log: positions are
    /// gapless from 1, so the state holds every event up to its last position only if it has
    /// applied that many, and nothing may follow it (no other writer has appended events this
    /// engine has not applied). A failure only costs time at the next start, so it is not an
    /// error.
    async fn save_snapshot(&mut self) {
        let position = self.last_position;
        if !self.store.keeps_snapshots() || self.stale.is_some() || self.lc.applied() != position.0 {
            return;
        }
        match self.store.read_from(position, 1).await {
            Ok(after) if after.is_empty() => {}
            Ok(_) => {
                debug!(position = position.0, "no snapshot: another writer has appended after this engine's state");
                return;
            }
            Err(e) => {
                warn!(error = %e, "no snapshot: the log cannot be read");
                return;
            }
        }
        let snap = crate::snapshot::encode(&self.lc, position);
        match self.store.save_snapshot(&snap).await {
            Ok(_) => {
                info!(position = position.0, bytes = snap.data.len(), "lifecycle snapshot saved");
                self.since_snapshot = 0;
            }
            Err(e) => warn!(error = %e, position = position.0, "the lifecycle snapshot cannot be saved"),
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
        match self.store.purge_keys(cutoff).await {
            Ok(n) => {
                if n > 0 {
                    debug!(purged = n, "old command keys forgotten");
                }
                self.keys.stored.retain(|_, k| k.at >= cutoff);
            }
            Err(e) => warn!(error = %e, "old command keys cannot be purged; kept until the next try"),
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
            let append = debug_span!("append", events = batch.len(), keys = keys.len());
            match self.store.append_keyed(batch, &keys).instrument(append).await {
                Ok(p) => {
                    let span = tracing::Span::current();
                    span.record("events", batch.len());
                    span.record("position", p.0);
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
                    // A conflict is another writer's doing, not a failure of the store.
                    if matches!(e, StoreError::Conflict { .. } | StoreError::KeyExists { .. }) {
                        debug!(error = %e, events = batch.len(), "append refused; rebuilding the state");
                    } else {
                        warn!(error = %e, events = batch.len(), "append failed; nothing of the batch is acknowledged");
                    }
                    // Nothing of the batch is acknowledged; rebuild from what is stored.
                    self.rebuild().await;
                    // The keys too: the store may have kept the batch after all, or
                    // another writer the same key, and a retry must then find it.
                    let now = self.last_now.unwrap_or_else(|| self.clock.now());
                    match Keys::load(&*self.store, now, self.keys.retention).await {
                        Ok(k) => self.keys.stored = k.stored,
                        Err(e) => warn!(error = %e, "command keys cannot be reloaded after a failed append"),
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

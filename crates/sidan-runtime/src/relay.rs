//! The outbox relay: publishes the events the store holds unpublished, in
//! order, then marks them, so every stored event leaves the process at least
//! once (consumers drop duplicates by event id).
//!
//! A failed round (reading the outbox, publishing, or marking) is retried
//! with exponential backoff and jitter, a bounded number of times, each
//! failure logged. If the store or the bus is still down after that, the
//! relay pauses and starts over: the outbox must drain some day, and nothing
//! is lost while it waits, since the events stay unpublished in the store.

use std::sync::Arc;
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable as _};
use tokio::sync::{Notify, watch};
use tracing::{debug, warn};

use crate::bus::{Bus, BusError, Published};
use crate::scopes::Scopes;
use crate::store::{Store, StoreError};

/// The first pause between two attempts; it doubles up to [`MAX_DELAY`].
const MIN_DELAY: Duration = Duration::from_millis(50);
/// The longest pause between two attempts.
const MAX_DELAY: Duration = Duration::from_secs(5);
/// Retries of one round before the relay gives up for [`PAUSE`].
const MAX_RETRIES: usize = 8;
/// How long the relay waits after giving up before it tries again (sooner if new events are stored).
const PAUSE: Duration = Duration::from_secs(30);

/// Why a relay round failed.
#[derive(Debug, thiserror::Error)]
enum RelayError {
    /// The outbox could not be read or marked.
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// The bus refused the batch.
    #[error("bus: {0}")]
    Bus(#[from] BusError),
}

/// Publishes the outbox each time `notify` fires, until `stop` turns true;
/// then publishes what is left (once, without retries) and returns.
pub(crate) async fn run<S: Store, B: Bus>(
    store: Arc<S>,
    bus: B,
    notify: Arc<Notify>,
    mut stop: watch::Receiver<bool>,
    limit: usize,
    scopes: Scopes,
) {
    let scopes = tokio::sync::Mutex::new(scopes);
    let backoff = ExponentialBuilder::default()
        .with_min_delay(MIN_DELAY)
        .with_max_delay(MAX_DELAY)
        .with_max_times(MAX_RETRIES)
        .with_jitter();
    loop {
        let stopping = tokio::select! {
            () = notify.notified() => false,
            _ = stop.changed() => true,
        };
        // Publish until the outbox is empty.
        loop {
            let stop_now = stop.clone();
            let round = (|| relay_once(&*store, &bus, limit.max(1), &scopes))
                .retry(backoff)
                // Stopping: no more retries; what is left goes out at the next start.
                .when(move |_| !*stop_now.borrow())
                .notify(|e, pause| warn!(error = %e, retry_in_ms = pause.as_millis() as u64, "outbox relay failed"))
                .await;
            match round {
                Ok(0) => break,
                Ok(n) => debug!(events = n, "outbox relay published"),
                Err(e) => {
                    if *stop.borrow() {
                        warn!(error = %e, "outbox relay stopped with events unpublished; they go out at the next start");
                        return;
                    }
                    warn!(error = %e, pause_s = PAUSE.as_secs(), "outbox relay gave up for now");
                    tokio::select! {
                        () = tokio::time::sleep(PAUSE) => {}
                        () = notify.notified() => {}
                        _ = stop.changed() => {}
                    }
                }
            }
        }
        if stopping || *stop.borrow() {
            return;
        }
    }
}

/// Publishes one batch from the outbox and marks it; returns how many events.
async fn relay_once<S: Store, B: Bus>(
    store: &S,
    bus: &B,
    limit: usize,
    scopes: &tokio::sync::Mutex<Scopes>,
) -> Result<usize, RelayError> {
    let pending = store.unpublished(limit).await?;
    let Some(last) = pending.last().map(|s| s.position) else { return Ok(0) };
    // Masked: personal data never leaves through the bus. Each message with its units.
    let mut scopes = scopes.lock().await;
    let mut msgs: Vec<Published> = Vec::with_capacity(pending.len());
    for s in &pending {
        let mut m = Published::of(s);
        m.units = scopes.units(store, &s.record).await?;
        msgs.push(m);
    }
    drop(scopes);
    bus.publish(&msgs).await?;
    store.mark_published(last).await?;
    Ok(pending.len())
}

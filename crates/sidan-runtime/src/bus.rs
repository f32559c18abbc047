//! The `Bus` port: events leave the process through it, masked, at least once.
//!
//! Messages carry the event's stable id ([`Recorded::id`]), so a consumer
//! that sees a message twice (a relay that crashed between publishing and
//! marking) can drop the duplicate.

use std::future::Future;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use sidan_core::lifecycle::Recorded;
use tokio::sync::mpsc;

use crate::store::{Position, Stored};

/// An event as published: masked, with its id and global position.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Published {
    /// The event's stable id, `<stream>#<seq>`: the deduplication key.
    pub id: String,
    /// Its position in the log.
    pub position: Position,
    /// The event with personal data masked.
    pub record: Recorded,
}

impl Published {
    /// The message for a stored event, with personal data masked.
    pub fn of(stored: &Stored) -> Self {
        Self { id: stored.record.id(), position: stored.position, record: stored.record.masked() }
    }
}

/// Why a bus operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BusError {
    /// The broker cannot be reached; the batch may be partly published.
    #[error("bus unavailable: {0}")]
    Unavailable(String),
}

/// A subscription: the messages published after it began, in order.
#[derive(Debug)]
pub struct Subscription {
    rx: mpsc::UnboundedReceiver<Published>,
}

impl Subscription {
    /// A subscription fed by an adapter's task.
    pub fn new(rx: mpsc::UnboundedReceiver<Published>) -> Self {
        Self { rx }
    }

    /// The next message; `None` once the bus is gone.
    pub async fn next(&mut self) -> Option<Published> {
        self.rx.recv().await
    }

    /// The next message if one is waiting.
    pub fn try_next(&mut self) -> Option<Published> {
        self.rx.try_recv().ok()
    }
}

/// Where events go after they are stored.
pub trait Bus: Send + Sync + 'static {
    /// Publishes a batch, in order.
    fn publish(&self, batch: &[Published]) -> impl Future<Output = Result<(), BusError>> + Send;

    /// Subscribes to every message published from now on.
    fn subscribe(&self) -> impl Future<Output = Result<Subscription, BusError>> + Send;
}

/// A bus inside the process. Clones share the subscribers.
#[derive(Debug, Clone, Default)]
pub struct MemoryBus {
    subscribers: Arc<Mutex<Vec<mpsc::UnboundedSender<Published>>>>,
}

impl MemoryBus {
    /// A bus with no subscribers.
    pub fn new() -> Self {
        Self::default()
    }
}

impl Bus for MemoryBus {
    async fn publish(&self, batch: &[Published]) -> Result<(), BusError> {
        let mut subs = self.subscribers.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        subs.retain(|tx| batch.iter().all(|m| tx.send(m.clone()).is_ok()));
        Ok(())
    }

    async fn subscribe(&self) -> Result<Subscription, BusError> {
        let (tx, rx) = mpsc::unbounded_channel();
        self.subscribers.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(tx);
        Ok(Subscription::new(rx))
    }
}

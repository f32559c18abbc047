//! The `Bus` port: events leave the process through it, masked, at least once.
//!
//! Messages carry the event's stable id ([`Recorded::id`]), so a consumer
//! that sees a message twice (a relay that crashed between publishing and
//! marking) can drop the duplicate. Outside the process a message is a
//! CloudEvents 1.0 event ([`Published::to_cloudevent`], see
//! [`cloudevent`](crate::cloudevent)).
//!
//! A subscription takes the messages its [`Filter`] selects into a buffer of
//! its own, bounded: a subscriber that falls a whole buffer behind is cut off
//! with [`BusError::Lagged`], naming the first position it missed, rather
//! than letting the bus grow without bound or hold up the others. It then
//! reads the store from there ([`Store::read_from`](crate::Store::read_from))
//! and subscribes again.

use std::future::Future;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use sidan_core::id::{TeamId, UnitId};
use sidan_core::lifecycle::{Event, Recorded};
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
    /// The unit the event belongs to (its request's, pairing's or team's) with the unit's
    /// ancestors, root first; empty for the ledger's events, or one the relay could not place.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub units: Vec<UnitId>,
}

impl Published {
    /// The message for a stored event, with personal data masked (and no units: the relay adds
    /// them).
    pub fn of(stored: &Stored) -> Self {
        Self { id: stored.record.id(), position: stored.position, record: stored.record.masked(), units: Vec::new() }
    }

    /// Its CloudEvents `type`: `sidan.<stream kind>.<event name>`, a ledger entry by its own
    /// name (`sidan.request.offered`, `sidan.ledger.transferred`).
    pub fn event_type(&self) -> String {
        format!("sidan.{}.{}", self.record.stream.kind(), self.event_name())
    }

    /// The last part of its type: the event's name, a ledger entry's own.
    fn event_name(&self) -> &'static str {
        match &self.record.event {
            Event::Ledger { entry } => entry.name(),
            other => other.name(),
        }
    }

    /// The team whose offer the message is about: an offer made to it, accepted, declined,
    /// expired or withdrawn.
    pub fn offer_team(&self) -> Option<&TeamId> {
        match &self.record.event {
            Event::Offered { team, .. }
            | Event::Accepted { team }
            | Event::Declined { team, .. }
            | Event::OfferExpired { team }
            | Event::OfferWithdrawn { team } => Some(team),
            _ => None,
        }
    }
}

/// Which messages a subscription takes.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Filter {
    /// Every message.
    All,
    /// The offers to one team: made, accepted, declined, expired and withdrawn.
    TeamOffers(TeamId),
    /// The messages of one CloudEvents type, like `sidan.request.offered`.
    Type(String),
    /// The messages of one unit's subtree: a station's, an institute's, a county's requests,
    /// pairings and teams (by [`Published::units`]).
    Subtree(UnitId),
}

impl Filter {
    /// Whether the filter takes `msg`.
    pub fn matches(&self, msg: &Published) -> bool {
        match self {
            Filter::All => true,
            Filter::TeamOffers(team) => msg.offer_team() == Some(team),
            Filter::Type(ty) => {
                // `sidan.<kind>.<name>` without building the string.
                let (kind, name) = (msg.record.stream.kind(), msg.event_name());
                ty.strip_prefix("sidan.")
                    .and_then(|rest| rest.strip_prefix(kind))
                    .and_then(|rest| rest.strip_prefix('.'))
                    .is_some_and(|rest| rest == name)
            }
            Filter::Subtree(unit) => msg.units.contains(unit),
        }
    }
}

/// The most messages a subscription may hold unread.
pub const MAX_SUBSCRIPTION_BUFFER: usize = 1 << 20;

/// Why a bus operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BusError {
    /// The broker cannot be reached; the batch may be partly published.
    #[error("bus unavailable: {0}")]
    Unavailable(String),
    /// The subscriber fell a whole buffer behind and was cut off: every message it took before
    /// was delivered; read the store from `missed` on, then subscribe again.
    #[error("subscription lagged: {buffer} messages unread, cut off at position {}", missed.0)]
    Lagged {
        /// The position of the first message it did not get.
        missed: Position,
        /// Its buffer's size.
        buffer: usize,
    },
    /// A subscription's buffer must hold 1 to [`MAX_SUBSCRIPTION_BUFFER`] messages.
    #[error("subscription buffer of {buffer}: it must hold 1 to {MAX_SUBSCRIPTION_BUFFER} messages")]
    BadBuffer {
        /// The size asked for.
        buffer: usize,
    },
}

/// What a subscriber that lagged missed first, shared with its feeder.
type LagMark = Arc<Mutex<Option<Position>>>;

/// A subscription: the messages its filter takes, published after it began, in order.
#[derive(Debug)]
pub struct Subscription {
    rx: mpsc::Receiver<Published>,
    lagged: LagMark,
    buffer: usize,
}

impl Subscription {
    /// The next message; `Ok(None)` once the bus is gone, [`BusError::Lagged`] (after every
    /// message delivered before it) once the subscriber fell behind.
    ///
    /// # Errors
    /// [`BusError::Lagged`]: the subscription ended; see its `missed`.
    pub async fn next(&mut self) -> Result<Option<Published>, BusError> {
        match self.rx.recv().await {
            Some(m) => Ok(Some(m)),
            None => self.ended(),
        }
    }

    /// The next message if one is waiting.
    ///
    /// # Errors
    /// As [`Subscription::next`].
    pub fn try_next(&mut self) -> Result<Option<Published>, BusError> {
        match self.rx.try_recv() {
            Ok(m) => Ok(Some(m)),
            Err(mpsc::error::TryRecvError::Empty) => Ok(None),
            Err(mpsc::error::TryRecvError::Disconnected) => self.ended(),
        }
    }

    fn ended(&self) -> Result<Option<Published>, BusError> {
        match *self.lagged.lock().unwrap_or_else(std::sync::PoisonError::into_inner) {
            Some(missed) => Err(BusError::Lagged { missed, buffer: self.buffer }),
            None => Ok(None),
        }
    }
}

/// The sending half of a [`Subscription`], for a bus adapter's fan-out.
#[derive(Debug)]
pub struct Subscriber {
    filter: Filter,
    tx: mpsc::Sender<Published>,
    lagged: LagMark,
}

impl Subscriber {
    /// A subscription taking what `filter` selects, holding at most `buffer` messages unread,
    /// and the subscriber that feeds it.
    ///
    /// # Errors
    /// [`BusError::BadBuffer`] for a buffer of 0 or over [`MAX_SUBSCRIPTION_BUFFER`].
    pub fn channel(filter: Filter, buffer: usize) -> Result<(Subscriber, Subscription), BusError> {
        if buffer == 0 || buffer > MAX_SUBSCRIPTION_BUFFER {
            return Err(BusError::BadBuffer { buffer });
        }
        let (tx, rx) = mpsc::channel(buffer);
        let lagged = LagMark::default();
        Ok((Subscriber { filter, tx, lagged: Arc::clone(&lagged) }, Subscription { rx, lagged, buffer }))
    }

    /// Offers a message: taken if the filter selects it and there is room. Returns whether the
    /// subscriber is still there: `false` once its subscription was dropped, or it lagged (then
    /// its subscription ends with [`BusError::Lagged`]).
    pub fn offer(&self, msg: &Published) -> bool {
        if !self.filter.matches(msg) {
            return !self.tx.is_closed();
        }
        match self.tx.try_send(msg.clone()) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Closed(_)) => false,
            Err(mpsc::error::TrySendError::Full(_)) => {
                *self.lagged.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(msg.position);
                false
            }
        }
    }
}

/// Where events go after they are stored.
pub trait Bus: Send + Sync + 'static {
    /// Publishes a batch, in order.
    fn publish(&self, batch: &[Published]) -> impl Future<Output = Result<(), BusError>> + Send;

    /// Subscribes to the messages `filter` takes from now on, with room for `buffer` unread.
    fn subscribe(&self, filter: Filter, buffer: usize) -> impl Future<Output = Result<Subscription, BusError>> + Send;
}

/// A bus inside the process. Clones share the subscribers.
#[derive(Debug, Clone, Default)]
pub struct MemoryBus {
    subscribers: Arc<Mutex<Vec<Subscriber>>>,
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
        subs.retain(|s| batch.iter().all(|m| s.offer(m)));
        Ok(())
    }

    async fn subscribe(&self, filter: Filter, buffer: usize) -> Result<Subscription, BusError> {
        let (subscriber, subscription) = Subscriber::channel(filter, buffer)?;
        self.subscribers.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(subscriber);
        Ok(subscription)
    }
}

//! The `Clock` port: what time it is, and waiting for a time.

use std::future::Future;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use tokio::sync::watch;

/// A source of time for the engine.
pub trait Clock: Send + Sync + 'static {
    /// The current time.
    fn now(&self) -> DateTime<Utc>;

    /// Resolves once `now() >= at`.
    fn sleep_until(&self, at: DateTime<Utc>) -> impl Future<Output = ()> + Send;
}

/// The system's wall clock, with tokio timers.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }

    async fn sleep_until(&self, at: DateTime<Utc>) {
        let wait = (at - Utc::now()).to_std().unwrap_or_default();
        tokio::time::sleep(wait).await;
    }
}

/// A clock that moves only when told: for tests and simulations. Clones share the time.
#[derive(Debug, Clone)]
pub struct ManualClock {
    now: Arc<watch::Sender<DateTime<Utc>>>,
}

impl ManualClock {
    /// A clock showing `start`.
    pub fn new(start: DateTime<Utc>) -> Self {
        Self { now: Arc::new(watch::Sender::new(start)) }
    }

    /// Moves the clock forward by `d` (a negative `d` moves it back, as a clock jump would).
    pub fn advance(&self, d: Duration) {
        self.now.send_modify(|t| *t += d);
    }

    /// Sets the clock.
    pub fn set(&self, at: DateTime<Utc>) {
        self.now.send_replace(at);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.now.borrow()
    }

    async fn sleep_until(&self, at: DateTime<Utc>) {
        let mut rx = self.now.subscribe();
        loop {
            if *rx.borrow_and_update() >= at {
                return;
            }
            if rx.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    }
}

//! Timers as data: each request and pairing stream's next wake-up, kept in
//! one ordered queue, and the streams due for a tick.

use chrono::{DateTime, Duration, Utc};

use crate::geo::TravelTime;
use crate::lifecycle::{LEDGER_STREAM, Lifecycle, Phase, RequestState, StreamId, latest_start};

/// A stream that may need a tick: its dense place in the lifecycle's tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(super) enum Wake {
    Request(u32),
    Pairing(u32),
}

impl<T: TravelTime> Lifecycle<T> {
    /// The earliest time a stream needs a [`Command::Tick`](crate::lifecycle::Command::Tick)
    /// (the ledger's when a reservation expires or settled transfers leave memory).
    pub fn next_wakeup(&self) -> Option<DateTime<Utc>> {
        let streams = self.wakeups.first().map(|(t, _)| *t);
        match (streams, self.ledger.next_wakeup()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The streams due for a tick at `now`, earliest first; the ledger last, when one of its
    /// reservations has expired or settled transfers are due to leave memory.
    pub fn due(&self, now: DateTime<Utc>) -> impl Iterator<Item = &StreamId> + '_ {
        let ledger = self.ledger.next_wakeup().is_some_and(|t| t <= now).then_some(&LEDGER_STREAM);
        self.wakeups.iter().take_while(move |(t, _)| *t <= now).map(|(_, w)| self.wake_stream(*w)).chain(ledger)
    }

    pub(super) fn wake_stream(&self, w: Wake) -> &StreamId {
        match w {
            Wake::Request(i) => &self.requests[i as usize].stream,
            Wake::Pairing(i) => &self.pairings[i as usize].stream,
        }
    }

    /// When a completed request's evaluation window closes (then the tick
    /// settles it with the ratings it has); `None` for a request not
    /// completed or in dispute, which waits for the station.
    pub(super) fn evaluation_closes(&self, st: &RequestState) -> Option<DateTime<Utc>> {
        match st.phase {
            Phase::Completed { at, .. } if !st.disputed => {
                Some(at + Duration::hours(i64::from(self.policy_of(&st.request).evaluation_window_h)))
            }
            _ => None,
        }
    }

    fn wake_at(&self, w: Wake) -> Option<DateTime<Utc>> {
        let st = match w {
            Wake::Pairing(i) => return self.pairings[i as usize].wake_at(),
            Wake::Request(i) => &self.requests[i as usize],
        };
        let p = self.policy_of(&st.request);
        match st.phase {
            Phase::Open => {
                let mut w = latest_start(&st.request);
                for o in &st.offers {
                    w = w.min(o.deadline);
                }
                if !st.recruiting {
                    w = w.min(st.scope_since + Duration::minutes(i64::from(p.escalate_after_min)));
                }
                Some(w)
            }
            Phase::Held { .. } => Some(st.request.window().end()),
            Phase::Completed { .. } => self.evaluation_closes(st),
            Phase::CheckedIn { .. } | Phase::Closed | Phase::Cancelled | Phase::Expired | Phase::Unfulfillable => None,
        }
    }

    /// Puts the stream's next wake-up in the queue, in place of its last.
    pub(super) fn reschedule(&mut self, w: Wake) {
        let next = self.wake_at(w);
        let wake = match w {
            Wake::Request(i) => &mut self.requests[i as usize].wake,
            Wake::Pairing(i) => &mut self.pairings[i as usize].wake,
        };
        if *wake == next {
            return;
        }
        if let Some(old) = std::mem::replace(wake, next) {
            self.wakeups.remove(&(old, w));
        }
        if let Some(t) = next {
            self.wakeups.insert((t, w));
        }
    }
}

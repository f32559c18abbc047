//! Bounded memory: an ended request leaves the in-memory lifecycle once the
//! retention of its unit's policy has passed. Its events stay in the log
//! and its figures in the reports; what stays in memory is a 64-bit
//! fingerprint of its id, so that id is never taken again.
//!
//! Retirement is part of the fold: it happens when an event with a later
//! time is applied, so a replay retires the same requests at the same
//! points and the digest of a replay equals the live one.

use std::collections::BTreeSet;

use chrono::{DateTime, Duration, Utc};

use crate::geo::TravelTime;
use crate::id::RequestId;
use crate::lifecycle::Lifecycle;
use crate::lifecycle::wakeup::Wake;

/// Ended requests waiting to leave memory, and the fingerprints of those that left.
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct Retention {
    /// When each ended request leaves memory.
    pub(super) queue: BTreeSet<(DateTime<Utc>, RequestId)>,
    /// The fingerprints of the ids of the requests that left.
    pub(super) retired: foldhash::HashSet<u64>,
}

/// A request id's fingerprint: FNV-1a of its bytes, the same on every machine and replay.
pub(super) fn fingerprint(id: &RequestId) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in id.as_str().bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

impl Retention {
    /// Notes that a request ended at `at` and stays `keep_h` hours more.
    pub(super) fn ended(&mut self, at: DateTime<Utc>, keep_h: u32, id: &RequestId) {
        self.queue.insert((at + Duration::hours(i64::from(keep_h)), id.clone()));
    }

    /// Whether the request left memory (or another of the same fingerprint did: about one
    /// chance in 2^64 per pair of ids).
    pub(super) fn is_retired(&self, id: &RequestId) -> bool {
        !self.retired.is_empty() && self.retired.contains(&fingerprint(id))
    }

    /// How many requests left memory.
    pub(super) fn retired_count(&self) -> usize {
        self.retired.len()
    }
}

impl<T: TravelTime> Lifecycle<T> {
    /// Retires every ended request whose retention passed by `now`.
    pub(super) fn retire_due(&mut self, now: DateTime<Utc>) {
        while let Some((at, _)) = self.retention.queue.first()
            && *at <= now
        {
            let Some((_, id)) = self.retention.queue.pop_first() else { break };
            self.retire(&id);
        }
    }

    /// Removes one ended request from the tables, moving the last request into its slot.
    fn retire(&mut self, id: &RequestId) {
        let Some(i) = self.request_slot.remove(id) else { return };
        let last = self.requests.len() as u32 - 1;
        // An ended request has no wake-up; the one moved keeps its own under its new slot.
        if let Some(t) = self.requests[i as usize].wake.take() {
            self.wakeups.remove(&(t, Wake::Request(i)));
        }
        self.requests.swap_remove(i as usize);
        if i != last {
            let moved = &self.requests[i as usize];
            self.request_slot.insert(moved.request.id().clone(), i);
            if let Some(t) = moved.wake {
                self.wakeups.remove(&(t, Wake::Request(last)));
                self.wakeups.insert((t, Wake::Request(i)));
            }
        }
        self.retention.retired.insert(fingerprint(id));
    }

    /// How many ended requests have left memory.
    pub fn retired(&self) -> usize {
        self.retention.retired_count()
    }

    /// Whether the request ended and left memory (its id is never taken again).
    pub fn is_retired(&self, id: &RequestId) -> bool {
        self.retention.is_retired(id)
    }
}

//! Bounded memory: an ended request leaves the in-memory lifecycle once the
//! retention of its unit's policy has passed. Its events stay in the log
//! and its figures in the reports; what stays in memory is a 64-bit
//! fingerprint of its id, so that the lifecycle refuses the id again, for
//! the memory policy's `retired_ids_days`. After that the fingerprint goes
//! too, and a request reusing the id is refused by the store, whose stream
//! for it exists (the engine asks the store before it decides, see
//! [`Lifecycle::may_have_forgotten`]).
//!
//! Retirement is part of the fold: it happens when an event with a later
//! time is applied, so a replay retires the same requests at the same
//! points and the digest of a replay equals the live one.

use std::collections::{BTreeSet, VecDeque};

use chrono::{DateTime, Duration, Utc};

use crate::geo::TravelTime;
use crate::id::{HouseholdId, RequestId};
use crate::index::TeamIdx;
use crate::lifecycle::wakeup::Wake;
use crate::lifecycle::{Command, Lifecycle, RequestCommand};

/// Ended requests waiting to leave memory, and the fingerprints of those that left.
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct Retention {
    /// When each ended request leaves memory.
    pub(super) queue: BTreeSet<(DateTime<Utc>, RequestId)>,
    /// The fingerprints of the ids of the requests that left, and not yet forgotten.
    pub(super) retired: foldhash::HashSet<u64>,
    /// When each fingerprint is forgotten, earliest first.
    pub(super) forget: VecDeque<(DateTime<Utc>, u64)>,
    /// Whether any fingerprint has been forgotten.
    pub(super) forgot_any: bool,
    /// Every (team, household) service by its time, to be forgotten the memory policy's
    /// `continuity_days` later unless the team served the household again since (ordered by
    /// time, not by arrival, so that a restored lifecycle, which rebuilds it from the team
    /// index, forgets at the same points even if the clock went back).
    /// Derived from the team index (rebuilt on restore), so not part of the digest.
    pub(super) served: BTreeSet<(DateTime<Utc>, TeamIdx, HouseholdId)>,
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

    /// How many ids of requests that left memory are remembered.
    pub(super) fn retired_count(&self) -> usize {
        self.retired.len()
    }
}

impl<T: TravelTime> Lifecycle<T> {
    /// Retires every ended request whose retention passed by `now`, and forgets the ids whose
    /// memory passed.
    pub(super) fn retire_due(&mut self, now: DateTime<Utc>) {
        while let Some((at, _)) = self.retention.queue.first()
            && *at <= now
        {
            let Some((at, id)) = self.retention.queue.pop_first() else { break };
            self.retire(&id, at);
        }
        while let Some(&(at, fp)) = self.retention.forget.front()
            && at <= now
        {
            self.retention.forget.pop_front();
            self.retention.retired.remove(&fp);
            self.retention.forgot_any = true;
        }
        let continuity = self.policies.memory().continuity();
        while let Some((at, _, _)) = self.retention.served.first()
            && *at + continuity <= now
        {
            let Some((at, team, household)) = self.retention.served.pop_first() else { break };
            self.dispatcher.index_mut().forget_served(team, &household, at);
        }
    }

    /// Removes one ended request from the tables, moving the last request into its slot; its
    /// id is remembered until `at` plus the memory policy's `retired_ids_days`.
    fn retire(&mut self, id: &RequestId, at: DateTime<Utc>) {
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
        let fp = fingerprint(id);
        if self.retention.retired.insert(fp) {
            let forget_at = at.checked_add_signed(self.policies.memory().retired_id_memory()).unwrap_or(at);
            self.retention.forget.push_back((forget_at, fp));
        }
    }

    /// How many ids of ended requests that left memory are remembered (for the memory policy's
    /// `retired_ids_days`).
    pub fn retired(&self) -> usize {
        self.retention.retired_count()
    }

    /// Whether the request ended and left memory and its id is still remembered (it is not
    /// taken again).
    pub fn is_retired(&self, id: &RequestId) -> bool {
        self.retention.is_retired(id)
    }

    /// Whether the id of a request that left memory may have been forgotten since: then a new
    /// request's id is not known to be new until the store is asked whether its stream exists.
    pub fn may_have_forgotten(&self) -> bool {
        self.retention.forgot_any
    }

    /// The request a command would create under an id this lifecycle may have forgotten: the
    /// caller asks the store whether the request's stream exists before it decides, and if it
    /// does refuses the command with [`LifecycleError::Retired`](crate::lifecycle::LifecycleError::Retired).
    /// `None` when memory alone decides.
    pub fn needs_stream_check<'c>(&self, cmd: &'c Command) -> Option<&'c RequestId> {
        match cmd {
            Command::Request(RequestCommand::Submit { spec })
                if self.retention.forgot_any
                    && !self.request_slot.contains_key(&spec.id)
                    && !self.retention.is_retired(&spec.id) =>
            {
                Some(&spec.id)
            }
            _ => None,
        }
    }
}

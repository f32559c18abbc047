//! Retention: settled transfers leave memory a set time after they were made, by a
//! [`LedgerEvent::Retired`] that [`Ledger::tick`] decides and [`Ledger::apply`] folds, so a
//! replay retires exactly what the live ledger did. A transfer leaves with everything linked to
//! it (its reversal or original, its redemption partner), once all of it is settled and old;
//! its amounts are carried per account so that [`Ledger::check`] still folds every balance, and
//! its ids are forgotten: a retry is then a new transfer, a reversal finds no original.

use chrono::{DateTime, Duration, Utc};

#[cfg(doc)]
use crate::ledger::LedgerEvent;
use crate::ledger::book::transfer_slot;
use crate::ledger::{Ledger, TransferKind, TransferState};

/// The longest time between two retirements of settled transfers.
pub(super) const RETIRE_EVERY: Duration = Duration::days(1);

impl Ledger {
    /// The same ledger, keeping each settled transfer in memory for `keep` after it was made (or
    /// its reservation could last expire), then letting it go at a [`Ledger::tick`]: the balances
    /// stay, but its id is free again and it can no longer be reversed. `None` keeps every
    /// transfer. A non-positive `keep` is taken as `None`.
    #[must_use]
    pub fn with_retention(mut self, keep: Option<Duration>) -> Self {
        self.set_retention(keep);
        self
    }

    /// Sets how long settled transfers stay in memory; see [`Ledger::with_retention`].
    pub fn set_retention(&mut self, keep: Option<Duration>) {
        self.retention = keep.filter(|k| *k > Duration::zero());
    }

    /// How long settled transfers stay in memory (`None`: for ever).
    pub fn retention(&self) -> Option<Duration> {
        self.retention
    }

    /// When [`Ledger::tick`] next retires settled transfers: a retention after the oldest one in
    /// memory was made, and a day after the last retirement.
    pub fn next_retirement(&self) -> Option<DateTime<Utc>> {
        let keep = self.retention?;
        let (_, front) = self.transfers.iter().next()?;
        let due = front.transfer.at.checked_add_signed(keep)?;
        let every = RETIRE_EVERY.min(keep);
        Some(match self.last_retired.and_then(|t| t.checked_add_signed(every)) {
            Some(next) => due.max(next),
            None => due,
        })
    }

    /// Lets go of every settled transfer whose whole group (itself, its reversal or original,
    /// its redemption partner) was made, and could last expire, at or before `before`. Balances
    /// stay; the ids are forgotten. Scans from the front while transfers are that old.
    pub(super) fn retire(&mut self, before: DateTime<Utc>, at: DateTime<Utc>) {
        let old: Vec<u32> =
            self.transfers.iter().take_while(|(_, r)| r.transfer.at <= before).map(|(s, _)| s).collect();
        let mut group: Vec<u32> = Vec::with_capacity(4);
        for slot in old {
            if self.transfers.get(slot).is_none() {
                continue; // left with an earlier one of its group
            }
            group.clear();
            group.push(slot);
            let mut i = 0;
            let mut due = true;
            while let Some(&s) = group.get(i) {
                i += 1;
                let rec = self.transfers.at(s);
                let t = &rec.transfer;
                let settled = t.at + Duration::seconds(i64::from(t.timeout_s.unwrap_or(0)));
                if rec.state == TransferState::Pending || settled > before {
                    due = false;
                    break;
                }
                let linked = [
                    rec.reversed_by.as_ref(),
                    match &t.kind {
                        TransferKind::Reversal { original, .. } => Some(original),
                        TransferKind::Redemption { partner } => Some(partner),
                        _ => None,
                    },
                ];
                for id in linked.into_iter().flatten() {
                    if let Some(l) = transfer_slot(self, id)
                        && !group.contains(&l)
                    {
                        group.push(l);
                    }
                }
            }
            if due {
                for &s in &group {
                    self.forget(s);
                }
            }
        }
        self.last_retired = Some(at);
    }

    /// Takes one settled transfer out of memory, carrying its amounts.
    fn forget(&mut self, slot: u32) {
        let Some(rec) = self.transfers.take(slot) else { return };
        let t = &rec.transfer;
        self.entries.remove(&t.id);
        if let TransferState::PendingPosted { by } | TransferState::PendingVoided { by, .. } = &rec.state {
            self.entries.remove(by);
        }
        if rec.state.is_posted() {
            let debit = self.account_slot[&t.debit];
            let credit = self.account_slot[&t.credit];
            let d = self.carried.entry(debit).or_default();
            d.debits_posted += t.amount;
            let c = self.carried.entry(credit).or_default();
            c.credits_posted += t.amount;
        }
        self.retired += 1;
    }

    /// How many settled transfers have left memory.
    pub fn retired(&self) -> u64 {
        self.retired
    }
}

//! The ledger's state as plain data, for a snapshot beside the log.
//!
//! The types mirror the ledger's own, but without the internally tagged enums and the
//! skipped fields of the event format, so that compact binary encodings (which do not describe
//! themselves) can carry them too. [`Ledger::snapshot`] and [`Ledger::restore`] convert; the
//! derived indexes (account slots, the expiry queue) are rebuilt on restore.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::id::RequestId;
use crate::ledger::{Account, AccountId, Balance, Transfer, TransferId, TransferKind, TransferRecord, TransferState};
use crate::ledger::{Entry, Ledger};
use crate::time::{from_nanos, nanos};

/// A [`TransferKind`], externally tagged; a service credit names its request by its place in
/// the snapshot's request table (a request's credits all name it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum KindSnap {
    ServiceCredit(u32),
    Redemption(TransferId),
    Withdrawal(RequestId),
    Restock,
    StationTransfer,
    Adjustment(String),
    Reversal(TransferId, String),
}

/// A [`TransferState`], externally tagged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum StateSnap {
    Posted,
    Pending,
    PendingPosted(TransferId),
    PendingVoided(TransferId, Option<String>),
    PendingExpired,
}

impl From<&TransferState> for StateSnap {
    fn from(s: &TransferState) -> Self {
        match s {
            TransferState::Posted => Self::Posted,
            TransferState::Pending => Self::Pending,
            TransferState::PendingPosted { by } => Self::PendingPosted(by.clone()),
            TransferState::PendingVoided { by, reason } => Self::PendingVoided(by.clone(), reason.clone()),
            TransferState::PendingExpired => Self::PendingExpired,
        }
    }
}

impl From<StateSnap> for TransferState {
    fn from(s: StateSnap) -> Self {
        match s {
            StateSnap::Posted => Self::Posted,
            StateSnap::Pending => Self::Pending,
            StateSnap::PendingPosted(by) => Self::PendingPosted { by },
            StateSnap::PendingVoided(by, reason) => Self::PendingVoided { by, reason },
            StateSnap::PendingExpired => Self::PendingExpired,
        }
    }
}

/// One transfer and where it stands. Accounts are slots of the snapshot's account table; the
/// id is left out when it is the one a service credit's request and account give; the time is
/// in nanoseconds since the epoch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct TransferSnap {
    id: Option<TransferId>,
    debit: u32,
    credit: u32,
    amount: u64,
    kind: KindSnap,
    timeout_s: Option<u32>,
    at: i64,
    state: StateSnap,
    reversed_by: Option<TransferId>,
}

/// What an id names, by transfer slot.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
enum EntrySnap {
    Transfer(u32),
    Post(u32),
    Void(u32),
}

/// Every account, transfer and id of a [`Ledger`], as plain data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LedgerSnapshot {
    accounts: Vec<(AccountId, Balance, bool, bool)>,
    /// By account slot, the posted totals of the transfers that left memory.
    carried: Vec<(u32, Balance)>,
    /// The requests service credits name, each once.
    requests: Vec<RequestId>,
    /// The slot of the first transfer in memory.
    first: u32,
    /// From `first` on; `None` for a transfer that left memory behind the front.
    transfers: Vec<Option<TransferSnap>>,
    /// Post and void ids (a transfer's own id is in its record).
    entries: Vec<(TransferId, EntrySnap)>,
    retired: u64,
    /// Nanoseconds since the epoch.
    last_retired: Option<i64>,
    applied: u64,
}

/// Why a ledger snapshot does not restore.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LedgerSnapshotError {
    /// An account kept twice.
    #[error("ledger snapshot: account {account} twice")]
    DuplicateAccount {
        /// The account.
        account: AccountId,
    },
    /// A transfer id (a transfer's, a post's or a void's) kept twice.
    #[error("ledger snapshot: id {id} twice")]
    DuplicateId {
        /// The id.
        id: TransferId,
    },
    /// An account slot past the account table.
    #[error("ledger snapshot: account slot {slot}")]
    AccountSlot {
        /// The slot.
        slot: u32,
    },
    /// A service credit's request slot past the request table.
    #[error("ledger snapshot: request slot {slot}")]
    RequestSlot {
        /// The slot.
        slot: u32,
    },
    /// An id that names a transfer slot past the transfer table.
    #[error("ledger snapshot: id {id} names transfer slot {slot} of {transfers}")]
    TransferSlot {
        /// The id.
        id: TransferId,
        /// The slot it names.
        slot: u32,
        /// The table's length.
        transfers: u32,
    },
    /// A transfer kept without an id, which its kind cannot give.
    #[error("ledger snapshot: transfer slot {slot} has no id")]
    NoId {
        /// The transfer's slot.
        slot: u32,
    },
    /// A pending transfer without a timeout.
    #[error("ledger snapshot: pending {id} has no timeout")]
    NoTimeout {
        /// The transfer.
        id: TransferId,
    },
    /// The transfers in memory start with one that left it.
    #[error("ledger snapshot: the transfers start with one that left memory")]
    LeadingHole,
    /// The transfers' slots run past 2^32.
    #[error("ledger snapshot: {transfers} transfers from slot {first} run past the last slot")]
    SlotOverflow {
        /// The first slot.
        first: u32,
        /// How many transfers (and holes) follow it.
        transfers: usize,
    },
}

impl Ledger {
    /// The ledger as plain data.
    pub fn snapshot(&self) -> LedgerSnapshot {
        let accounts = self.accounts.iter().map(|a| (a.id.clone(), a.balance, a.system, a.closed)).collect();
        let mut requests: Vec<RequestId> = Vec::new();
        let mut request_slot = foldhash::HashMap::<&RequestId, u32>::default();
        let slot_of = |a: &AccountId| self.account_slot.get(a).copied().expect("a transfer's accounts are open");
        let transfers = self
            .transfers
            .rows()
            .map(|r| {
                let r = r?;
                let t = &*r.transfer;
                let kind = match &t.kind {
                    TransferKind::ServiceCredit { request } => {
                        KindSnap::ServiceCredit(*request_slot.entry(request).or_insert_with(|| {
                            requests.push(request.clone());
                            (requests.len() - 1) as u32
                        }))
                    }
                    TransferKind::Redemption { partner } => KindSnap::Redemption(partner.clone()),
                    TransferKind::Withdrawal { request } => KindSnap::Withdrawal(request.clone()),
                    TransferKind::Restock {} => KindSnap::Restock,
                    TransferKind::StationTransfer {} => KindSnap::StationTransfer,
                    TransferKind::Adjustment { reason } => KindSnap::Adjustment(reason.clone()),
                    TransferKind::Reversal { original, reason } => KindSnap::Reversal(original.clone(), reason.clone()),
                };
                let derived = match &t.kind {
                    TransferKind::ServiceCredit { request } => TransferId::service_credit(request, &t.credit),
                    _ => None,
                };
                Some(TransferSnap {
                    id: (derived.as_ref() != Some(&t.id)).then(|| t.id.clone()),
                    debit: slot_of(&t.debit),
                    credit: slot_of(&t.credit),
                    amount: t.amount,
                    kind,
                    timeout_s: t.timeout_s,
                    at: nanos(t.at),
                    state: (&r.state).into(),
                    reversed_by: r.reversed_by.clone(),
                })
            })
            .collect();
        let mut entries: Vec<(TransferId, EntrySnap)> = self
            .entries
            .iter()
            .filter_map(|(id, e)| match *e {
                Entry::Transfer(_) => None,
                Entry::Post(s) => Some((id.clone(), EntrySnap::Post(s))),
                Entry::Void(s) => Some((id.clone(), EntrySnap::Void(s))),
            })
            .collect();
        entries.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        let mut carried: Vec<(u32, Balance)> = self.carried.iter().map(|(s, b)| (*s, *b)).collect();
        carried.sort_unstable_by_key(|(s, _)| *s);
        LedgerSnapshot {
            accounts,
            carried,
            requests,
            first: self.transfers.first(),
            transfers,
            entries,
            retired: self.retired,
            last_retired: self.last_retired.map(nanos),
            applied: self.applied,
        }
    }

    /// The ledger a snapshot was taken of.
    ///
    /// # Errors
    /// If the snapshot does not hold together (a slot out of range, an id twice).
    pub fn restore(snap: LedgerSnapshot) -> Result<Ledger, LedgerSnapshotError> {
        let mut ledger = Ledger {
            applied: snap.applied,
            retired: snap.retired,
            last_retired: snap.last_retired.map(from_nanos),
            transfers: super::Table::starting_at(snap.first),
            ..Ledger::default()
        };
        for (slot, (id, balance, system, closed)) in snap.accounts.into_iter().enumerate() {
            if ledger.account_slot.insert(id.clone(), slot as u32).is_some() {
                return Err(LedgerSnapshotError::DuplicateAccount { account: id });
            }
            ledger.accounts.push(Account { id, balance, system, closed });
        }
        for (slot, balance) in snap.carried {
            if slot as usize >= ledger.accounts.len() {
                return Err(LedgerSnapshotError::AccountSlot { slot });
            }
            ledger.carried.insert(slot, balance);
        }
        let account = |ledger: &Ledger, slot: u32| {
            ledger.accounts.get(slot as usize).map(|a| a.id.clone()).ok_or(LedgerSnapshotError::AccountSlot { slot })
        };
        if matches!(snap.transfers.first(), Some(None)) {
            return Err(LedgerSnapshotError::LeadingHole);
        }
        if u32::try_from(snap.transfers.len()).ok().and_then(|n| snap.first.checked_add(n)).is_none() {
            return Err(LedgerSnapshotError::SlotOverflow { first: snap.first, transfers: snap.transfers.len() });
        }
        ledger.entries.reserve(snap.transfers.len() + snap.entries.len());
        for t in snap.transfers {
            let slot = ledger.transfers.next_slot();
            let Some(t) = t else {
                ledger.transfers.push_hole();
                continue;
            };
            let (debit, credit) = (account(&ledger, t.debit)?, account(&ledger, t.credit)?);
            let kind = match t.kind {
                KindSnap::ServiceCredit(i) => TransferKind::ServiceCredit {
                    request: snap
                        .requests
                        .get(i as usize)
                        .cloned()
                        .ok_or(LedgerSnapshotError::RequestSlot { slot: i })?,
                },
                KindSnap::Redemption(partner) => TransferKind::Redemption { partner },
                KindSnap::Withdrawal(request) => TransferKind::Withdrawal { request },
                KindSnap::Restock => TransferKind::Restock {},
                KindSnap::StationTransfer => TransferKind::StationTransfer {},
                KindSnap::Adjustment(reason) => TransferKind::Adjustment { reason },
                KindSnap::Reversal(original, reason) => TransferKind::Reversal { original, reason },
            };
            let id = match (t.id, &kind) {
                (Some(id), _) => id,
                (None, TransferKind::ServiceCredit { request }) => {
                    TransferId::service_credit(request, &credit).ok_or(LedgerSnapshotError::NoId { slot })?
                }
                (None, _) => return Err(LedgerSnapshotError::NoId { slot }),
            };
            let transfer = Arc::new(Transfer {
                id,
                debit,
                credit,
                amount: t.amount,
                kind,
                timeout_s: t.timeout_s,
                at: from_nanos(t.at),
            });
            let state: TransferState = t.state.into();
            if state == TransferState::Pending {
                let expiry =
                    transfer.expires_at().ok_or_else(|| LedgerSnapshotError::NoTimeout { id: transfer.id.clone() })?;
                ledger.expiries.insert((expiry, slot));
            }
            if ledger.entries.insert(transfer.id.clone(), Entry::Transfer(slot)).is_some() {
                return Err(LedgerSnapshotError::DuplicateId { id: transfer.id.clone() });
            }
            ledger.transfers.push(TransferRecord { transfer, state, reversed_by: t.reversed_by });
        }
        for (id, e) in snap.entries {
            let e = match e {
                EntrySnap::Transfer(s) => Entry::Transfer(s),
                EntrySnap::Post(s) => Entry::Post(s),
                EntrySnap::Void(s) => Entry::Void(s),
            };
            let (Entry::Transfer(s) | Entry::Post(s) | Entry::Void(s)) = e;
            if ledger.transfers.get(s).is_none() {
                let transfers = ledger.transfers.next_slot();
                return Err(LedgerSnapshotError::TransferSlot { id, slot: s, transfers });
            }
            if ledger.entries.insert(id.clone(), e).is_some() {
                return Err(LedgerSnapshotError::DuplicateId { id });
            }
        }
        Ok(ledger)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot(accounts: usize, entries: Vec<(TransferId, EntrySnap)>) -> LedgerSnapshot {
        let account = AccountId::PointsIssuance;
        LedgerSnapshot {
            accounts: vec![(account, Balance::default(), true, false); accounts],
            carried: Vec::new(),
            requests: Vec::new(),
            first: 0,
            transfers: Vec::new(),
            entries,
            retired: 0,
            last_retired: None,
            applied: 0,
        }
    }

    #[test]
    fn a_snapshot_that_does_not_hold_together_says_what_by_type() {
        assert!(Ledger::restore(snapshot(1, Vec::new())).is_ok());
        assert_eq!(
            Ledger::restore(snapshot(2, Vec::new())).err(),
            Some(LedgerSnapshotError::DuplicateAccount { account: AccountId::PointsIssuance })
        );
        let id = TransferId::new("t-1").expect("an id");
        assert_eq!(
            Ledger::restore(snapshot(1, vec![(id.clone(), EntrySnap::Post(5))])).err(),
            Some(LedgerSnapshotError::TransferSlot { id, slot: 5, transfers: 0 })
        );
        let hole = LedgerSnapshot { transfers: vec![None], ..snapshot(1, Vec::new()) };
        assert_eq!(Ledger::restore(hole).err(), Some(LedgerSnapshotError::LeadingHole));
        let t = TransferSnap {
            id: Some(TransferId::new("t-2").expect("an id")),
            debit: 0,
            credit: 0,
            amount: 1,
            kind: KindSnap::Restock,
            timeout_s: None,
            at: 0,
            state: StateSnap::Posted,
            reversed_by: None,
        };
        let past_the_end = LedgerSnapshot { first: u32::MAX, transfers: vec![Some(t)], ..snapshot(1, Vec::new()) };
        assert_eq!(
            Ledger::restore(past_the_end).err(),
            Some(LedgerSnapshotError::SlotOverflow { first: u32::MAX, transfers: 1 })
        );
    }
}

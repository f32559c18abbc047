//! The ledger's state as plain data, for a snapshot beside the log.
//!
//! The types mirror the ledger's own, but without the internally tagged enums and the
//! skipped fields of the event format, so that compact binary encodings (which do not describe
//! themselves) can carry them too. [`Ledger::snapshot`] and [`Ledger::restore`] convert; the
//! derived indexes (account slots, the expiry queue) are rebuilt on restore.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::id::RequestId;
use crate::ledger::types::{
    Account, AccountId, Balance, Transfer, TransferId, TransferKind, TransferRecord, TransferState,
};
use crate::ledger::{Entry, Ledger};

/// A [`TransferKind`], externally tagged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum KindSnap {
    ServiceCredit(RequestId),
    Redemption(TransferId),
    Withdrawal(RequestId),
    Restock,
    StationTransfer,
    Adjustment(String),
    Reversal(TransferId, String),
}

impl From<&TransferKind> for KindSnap {
    fn from(k: &TransferKind) -> Self {
        match k {
            TransferKind::ServiceCredit { request } => Self::ServiceCredit(request.clone()),
            TransferKind::Redemption { partner } => Self::Redemption(partner.clone()),
            TransferKind::Withdrawal { request } => Self::Withdrawal(request.clone()),
            TransferKind::Restock {} => Self::Restock,
            TransferKind::StationTransfer {} => Self::StationTransfer,
            TransferKind::Adjustment { reason } => Self::Adjustment(reason.clone()),
            TransferKind::Reversal { original, reason } => Self::Reversal(original.clone(), reason.clone()),
        }
    }
}

impl From<KindSnap> for TransferKind {
    fn from(k: KindSnap) -> Self {
        match k {
            KindSnap::ServiceCredit(request) => Self::ServiceCredit { request },
            KindSnap::Redemption(partner) => Self::Redemption { partner },
            KindSnap::Withdrawal(request) => Self::Withdrawal { request },
            KindSnap::Restock => Self::Restock {},
            KindSnap::StationTransfer => Self::StationTransfer {},
            KindSnap::Adjustment(reason) => Self::Adjustment { reason },
            KindSnap::Reversal(original, reason) => Self::Reversal { original, reason },
        }
    }
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

/// One transfer and where it stands.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct TransferSnap {
    id: TransferId,
    debit: AccountId,
    credit: AccountId,
    amount: u64,
    kind: KindSnap,
    timeout_s: Option<u32>,
    at: DateTime<Utc>,
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
    transfers: Vec<TransferSnap>,
    /// Post and void ids (a transfer's own id is in its record).
    entries: Vec<(TransferId, EntrySnap)>,
    applied: u64,
}

/// Why a ledger snapshot does not restore.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("ledger snapshot: {0}")]
pub struct LedgerSnapshotError(pub String);

impl Ledger {
    /// The ledger as plain data.
    pub fn snapshot(&self) -> LedgerSnapshot {
        let accounts = self.accounts.iter().map(|a| (a.id.clone(), a.balance, a.system, a.closed)).collect();
        let transfers = self
            .transfers
            .iter()
            .map(|r| {
                let t = &*r.transfer;
                TransferSnap {
                    id: t.id.clone(),
                    debit: t.debit.clone(),
                    credit: t.credit.clone(),
                    amount: t.amount,
                    kind: (&t.kind).into(),
                    timeout_s: t.timeout_s,
                    at: t.at,
                    state: (&r.state).into(),
                    reversed_by: r.reversed_by.clone(),
                }
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
        LedgerSnapshot { accounts, transfers, entries, applied: self.applied }
    }

    /// The ledger a snapshot was taken of.
    ///
    /// # Errors
    /// If the snapshot does not hold together (a slot out of range, an id twice).
    pub fn restore(snap: LedgerSnapshot) -> Result<Ledger, LedgerSnapshotError> {
        let bad = |what: String| LedgerSnapshotError(what);
        let mut ledger = Ledger { applied: snap.applied, ..Ledger::default() };
        for (slot, (id, balance, system, closed)) in snap.accounts.into_iter().enumerate() {
            if ledger.account_slot.insert(id.clone(), slot as u32).is_some() {
                return Err(bad(format!("account {id} twice")));
            }
            ledger.accounts.push(Account { id, balance, system, closed });
        }
        let n = snap.transfers.len() as u32;
        for (slot, t) in snap.transfers.into_iter().enumerate() {
            let slot = slot as u32;
            let transfer = Arc::new(Transfer {
                id: t.id,
                debit: t.debit,
                credit: t.credit,
                amount: t.amount,
                kind: t.kind.into(),
                timeout_s: t.timeout_s,
                at: t.at,
            });
            let state: TransferState = t.state.into();
            if state == TransferState::Pending {
                let expiry =
                    transfer.expires_at().ok_or_else(|| bad(format!("pending {} has no timeout", transfer.id)))?;
                ledger.expiries.insert((expiry, slot));
            }
            if ledger.entries.insert(transfer.id.clone(), Entry::Transfer(slot)).is_some() {
                return Err(bad(format!("id {} twice", transfer.id)));
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
            if s >= n {
                return Err(bad(format!("id {id} names transfer slot {s} of {n}")));
            }
            if ledger.entries.insert(id.clone(), e).is_some() {
                return Err(bad(format!("id {id} twice")));
            }
        }
        ledger.check().map_err(|e| bad(e.to_string()))?;
        Ok(ledger)
    }
}

//! The effect of each event on the books, written once for two books: the ledger itself
//! ([`Ledger::apply`](crate::ledger::Ledger::apply)) and a scratch overlay on top of it, on which
//! `decide` tries a command's events one after the other. Every effect checks everything before
//! it changes anything, so a refused event leaves the book as it was, and a log replays through
//! exactly the checks that admitted it.

use std::collections::hash_map::Entry as MapEntry;
use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::ledger::ids::LedgerRef;
use crate::ledger::{
    AccountId, Balance, LedgerEvent, MAX_AMOUNT, MAX_REASON_LEN, MAX_TIMEOUT_S, Transfer, TransferId, TransferKind,
    TransferRecord, TransferState,
};
use crate::ledger::{Entry, Ledger};
use crate::ledger::{LedgerError, Side, Subject};

type HashMap<K, V> = foldhash::HashMap<K, V>;

/// An account's mutable part.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Acct {
    pub balance: Balance,
    pub system: bool,
    pub closed: bool,
}

/// What the effects read and write.
pub(crate) trait Book {
    fn account_slot(&self, id: &AccountId) -> Option<u32>;
    fn acct(&self, slot: u32) -> Acct;
    fn set_acct(&mut self, slot: u32, acct: Acct);
    fn open(&mut self, id: &AccountId);
    fn entry(&self, id: &TransferId) -> Option<Entry>;
    fn record(&self, slot: u32) -> &TransferRecord;
    /// Records a new transfer under its id.
    fn push(&mut self, t: &Arc<Transfer>, state: TransferState);
    /// Ends a reservation; `by` is the post's or void's id (none for an expiry).
    fn resolve(&mut self, slot: u32, state: TransferState, by: Option<(&TransferId, Entry)>);
    fn set_reversed_by(&mut self, slot: u32, by: &TransferId);
}

impl Book for Ledger {
    fn account_slot(&self, id: &AccountId) -> Option<u32> {
        self.account_slot.get(id).copied()
    }

    fn acct(&self, slot: u32) -> Acct {
        let a = &self.accounts[slot as usize];
        Acct { balance: a.balance, system: a.system, closed: a.closed }
    }

    fn set_acct(&mut self, slot: u32, acct: Acct) {
        let a = &mut self.accounts[slot as usize];
        a.balance = acct.balance;
        a.closed = acct.closed;
    }

    fn open(&mut self, id: &AccountId) {
        let slot = u32::try_from(self.accounts.len()).expect("fewer than 2^32 accounts");
        self.accounts.push(crate::ledger::Account {
            id: id.clone(),
            balance: Balance::default(),
            system: id.is_system(),
            closed: false,
        });
        self.account_slot.insert(id.clone(), slot);
    }

    fn entry(&self, id: &TransferId) -> Option<Entry> {
        self.entries.get(id).copied()
    }

    fn record(&self, slot: u32) -> &TransferRecord {
        self.transfers.at(slot)
    }

    fn push(&mut self, t: &Arc<Transfer>, state: TransferState) {
        let pending = state == TransferState::Pending;
        let slot = self.transfers.push(TransferRecord { transfer: Arc::clone(t), state, reversed_by: None });
        if pending {
            let expires_at = t.expires_at().expect("a pending transfer's expiry was checked");
            self.expiries.insert((expires_at, slot));
        }
        self.entries.insert(t.id.clone(), Entry::Transfer(slot));
    }

    fn resolve(&mut self, slot: u32, state: TransferState, by: Option<(&TransferId, Entry)>) {
        let rec = self.transfers.get_mut(slot).expect("an id names a transfer in memory");
        if rec.state == TransferState::Pending
            && let Some(expires_at) = rec.transfer.expires_at()
        {
            self.expiries.remove(&(expires_at, slot));
        }
        rec.state = state;
        if let Some((id, entry)) = by {
            self.entries.insert(id.clone(), entry);
        }
    }

    fn set_reversed_by(&mut self, slot: u32, by: &TransferId) {
        self.transfers.get_mut(slot).expect("an id names a transfer in memory").reversed_by = Some(by.clone());
    }
}

/// A map for the handful of keys one command touches: a vector scanned in order, turned into a
/// hash map past [`SmallMap::FEW`] entries so that a large command stays linear.
enum SmallMap<K, V> {
    Few(Vec<(K, V)>),
    Many(HashMap<K, V>),
}

impl<K: Eq + std::hash::Hash, V> SmallMap<K, V> {
    const FEW: usize = 16;

    fn new() -> Self {
        SmallMap::Few(Vec::new())
    }

    fn get(&self, k: &K) -> Option<&V> {
        match self {
            SmallMap::Few(v) => v.iter().find(|(key, _)| key == k).map(|(_, v)| v),
            SmallMap::Many(m) => m.get(k),
        }
    }

    fn get_mut(&mut self, k: &K) -> Option<&mut V> {
        match self {
            SmallMap::Few(v) => v.iter_mut().find(|(key, _)| key == k).map(|(_, v)| v),
            SmallMap::Many(m) => m.get_mut(k),
        }
    }

    fn insert(&mut self, k: K, value: V) {
        if let Some(old) = self.get_mut(&k) {
            *old = value;
            return;
        }
        match self {
            SmallMap::Few(v) if v.len() < Self::FEW => v.push((k, value)),
            SmallMap::Few(v) => {
                let mut m: HashMap<K, V> = std::mem::take(v).into_iter().collect();
                m.insert(k, value);
                *self = SmallMap::Many(m);
            }
            SmallMap::Many(m) => {
                m.insert(k, value);
            }
        }
    }

    fn into_vec(self) -> Vec<(K, V)> {
        match self {
            SmallMap::Few(v) => v,
            SmallMap::Many(m) => m.into_iter().collect(),
        }
    }
}

/// The ledger with one command's events tried on it: what changed, by slot; the rest is read
/// through from the ledger. New accounts and transfers get the slots they will have.
pub(crate) struct Overlay<'a> {
    base: &'a Ledger,
    opened: SmallMap<AccountId, u32>,
    accts: SmallMap<u32, Acct>,
    entries: SmallMap<TransferId, Entry>,
    records: SmallMap<u32, TransferRecord>,
    next_account: u32,
    next_transfer: u32,
}

/// What a decision changes, taken out of its overlay to be committed to the ledger.
pub(crate) struct Changes {
    /// New accounts, by slot.
    pub opened: Vec<(AccountId, u32)>,
    /// Every account changed or opened, final state.
    pub accts: Vec<(u32, Acct)>,
    pub entries: Vec<(TransferId, Entry)>,
    /// Every transfer made or changed, final state.
    pub records: Vec<(u32, TransferRecord)>,
}

impl<'a> Overlay<'a> {
    pub(crate) fn new(base: &'a Ledger) -> Self {
        Self {
            base,
            opened: SmallMap::new(),
            accts: SmallMap::new(),
            entries: SmallMap::new(),
            records: SmallMap::new(),
            next_account: u32::try_from(base.accounts.len()).expect("fewer than 2^32 accounts"),
            next_transfer: base.transfers.next_slot(),
        }
    }

    fn record_mut(&mut self, slot: u32) -> &mut TransferRecord {
        if self.records.get(&slot).is_none() {
            self.records.insert(slot, self.base.transfers.at(slot).clone());
        }
        self.records.get_mut(&slot).expect("just inserted")
    }

    /// The changes, new accounts and transfers in slot order.
    pub(crate) fn into_changes(self) -> Changes {
        let mut opened = self.opened.into_vec();
        opened.sort_unstable_by_key(|(_, s)| *s);
        let mut records = self.records.into_vec();
        records.sort_unstable_by_key(|(s, _)| *s);
        Changes { opened, accts: self.accts.into_vec(), entries: self.entries.into_vec(), records }
    }
}

impl Book for Overlay<'_> {
    fn account_slot(&self, id: &AccountId) -> Option<u32> {
        match self.opened.get(id) {
            Some(&s) => Some(s),
            None => self.base.account_slot(id),
        }
    }

    fn acct(&self, slot: u32) -> Acct {
        match self.accts.get(&slot) {
            Some(a) => *a,
            None => self.base.acct(slot),
        }
    }

    fn set_acct(&mut self, slot: u32, acct: Acct) {
        self.accts.insert(slot, acct);
    }

    fn open(&mut self, id: &AccountId) {
        let slot = self.next_account;
        self.next_account += 1;
        self.opened.insert(id.clone(), slot);
        self.accts.insert(slot, Acct { balance: Balance::default(), system: id.is_system(), closed: false });
    }

    fn entry(&self, id: &TransferId) -> Option<Entry> {
        match self.entries.get(id) {
            Some(&e) => Some(e),
            None => self.base.entry(id),
        }
    }

    fn record(&self, slot: u32) -> &TransferRecord {
        match self.records.get(&slot) {
            Some(r) => r,
            None => self.base.record(slot),
        }
    }

    fn push(&mut self, t: &Arc<Transfer>, state: TransferState) {
        let slot = self.next_transfer;
        self.next_transfer += 1;
        self.entries.insert(t.id.clone(), Entry::Transfer(slot));
        self.records.insert(slot, TransferRecord { transfer: Arc::clone(t), state, reversed_by: None });
    }

    fn resolve(&mut self, slot: u32, state: TransferState, by: Option<(&TransferId, Entry)>) {
        self.record_mut(slot).state = state;
        if let Some((id, entry)) = by {
            self.entries.insert(id.clone(), entry);
        }
    }

    fn set_reversed_by(&mut self, slot: u32, by: &TransferId) {
        self.record_mut(slot).reversed_by = Some(by.clone());
    }
}

/// Applies one event to a book, or says why it does not fit and changes nothing. `ids_new`: the
/// caller has just checked that the ids the event introduces are unused (`decide` has).
pub(crate) fn effect<B: Book>(b: &mut B, ev: &LedgerEvent, ids_new: bool) -> Result<(), LedgerError> {
    match ev {
        LedgerEvent::AccountOpened { account, .. } => {
            if b.account_slot(account).is_some() {
                return Err(LedgerError::AccountExists { account: account.clone() });
            }
            b.open(account);
            Ok(())
        }
        LedgerEvent::AccountClosed { account, reason, .. } => close(b, account, reason),
        LedgerEvent::Transferred { transfer } => transferred(b, transfer, ids_new),
        LedgerEvent::Posted { id, pending, at } => resolve(b, id, pending, *at, None, ids_new),
        LedgerEvent::Voided { id, pending, reason, at } => {
            resolve(b, id, pending, *at, Some(reason.as_deref()), ids_new)
        }
        LedgerEvent::Expired { pending, at } => expire(b, pending, *at),
        // Memory only: `Ledger::apply` retires; a decision never makes one.
        LedgerEvent::Retired { .. } => Ok(()),
    }
}

/// A required reason: not blank, at most [`MAX_REASON_LEN`] bytes.
pub(crate) fn check_reason(subject: impl FnOnce() -> Subject, reason: &str) -> Result<(), LedgerError> {
    if reason.trim().is_empty() {
        return Err(LedgerError::ReasonMissing { subject: subject() });
    }
    if reason.len() > MAX_REASON_LEN {
        return Err(LedgerError::TextTooLong { subject: subject(), len: reason.len() });
    }
    Ok(())
}

fn close<B: Book>(b: &mut B, account: &AccountId, reason: &str) -> Result<(), LedgerError> {
    check_reason(|| Subject::Account(account.clone()), reason)?;
    let slot = b.account_slot(account).ok_or_else(|| LedgerError::UnknownAccount { account: account.clone() })?;
    let mut a = b.acct(slot);
    if a.closed {
        return Err(LedgerError::AccountClosed { account: account.clone() });
    }
    if a.balance.debits_pending > 0 || a.balance.credits_pending > 0 {
        return Err(LedgerError::CloseWithPending { account: account.clone() });
    }
    if !a.system && a.balance.posted() != 0 {
        return Err(LedgerError::CloseWithBalance { account: account.clone(), held: a.balance.posted() });
    }
    a.closed = true;
    b.set_acct(slot, a);
    Ok(())
}

/// The checks that need nothing but the transfer itself, in the documented order.
fn check_static(t: &Transfer) -> Result<(), LedgerError> {
    let id = &t.id;
    if id.is_reserved() && !matches!(t.kind, TransferKind::ServiceCredit { .. }) {
        return Err(LedgerError::ReservedId { id: id.clone() });
    }
    if t.amount == 0 {
        return Err(LedgerError::AmountZero { transfer: id.clone() });
    }
    if t.amount > MAX_AMOUNT {
        return Err(LedgerError::AmountTooLarge { transfer: id.clone(), amount: t.amount });
    }
    if let Some(timeout_s) = t.timeout_s
        && (timeout_s == 0 || timeout_s > MAX_TIMEOUT_S || t.expires_at().is_none())
    {
        return Err(LedgerError::BadTimeout { transfer: id.clone(), timeout_s });
    }
    if t.debit == t.credit {
        return Err(LedgerError::SameAccount { transfer: id.clone(), account: t.debit.clone() });
    }
    if t.debit.ledger_ref() != t.credit.ledger_ref() {
        return Err(LedgerError::LedgerMismatch {
            transfer: id.clone(),
            debit: t.debit.ledger(),
            credit: t.credit.ledger(),
        });
    }
    check_kind(t)
}

/// Which accounts each kind may debit and credit, its reason, and a service credit's id.
fn check_kind(t: &Transfer) -> Result<(), LedgerError> {
    use AccountId as A;
    let kind = t.kind.kind_name();
    let not_allowed = |side, account: &AccountId| LedgerError::AccountNotAllowed {
        transfer: t.id.clone(),
        kind,
        side,
        account: account.clone(),
    };
    let same_station = t.debit.station() == t.credit.station();
    let (debit_ok, credit_ok) = match &t.kind {
        TransferKind::ServiceCredit { .. } => (
            matches!(t.debit, A::PointsIssuance | A::MinutesIssuance),
            matches!(t.credit, A::VolunteerPoints(_) | A::VolunteerMinutes(_) | A::TeamPoints(_)),
        ),
        TransferKind::Redemption { .. } => match t.debit {
            A::VolunteerPoints(_) => (true, matches!(t.credit, A::Till(_))),
            A::Shelf { .. } => (true, matches!(t.credit, A::StockConsumed { .. }) && same_station),
            _ => (false, true),
        },
        TransferKind::Withdrawal { .. } => {
            (matches!(t.debit, A::VolunteerMinutes(_)), matches!(t.credit, A::MinutesSpent))
        }
        TransferKind::Restock {} => {
            (matches!(t.debit, A::StockReceipt { .. }), matches!(t.credit, A::Shelf { .. }) && same_station)
        }
        // The same station's shelf of the same item, or its own till, is the same account (refused above).
        TransferKind::StationTransfer {} => match t.debit {
            A::Shelf { .. } => (true, matches!(t.credit, A::Shelf { .. })),
            A::Till(_) => (true, matches!(t.credit, A::Till(_))),
            _ => (false, true),
        },
        TransferKind::Adjustment { reason } | TransferKind::Reversal { reason, .. } => {
            check_reason(|| Subject::Transfer(t.id.clone()), reason)?;
            (true, true)
        }
    };
    if !debit_ok {
        return Err(not_allowed(Side::Debit, &t.debit));
    }
    if !credit_ok {
        return Err(not_allowed(Side::Credit, &t.credit));
    }
    if let TransferKind::ServiceCredit { request } = &t.kind {
        let expected = TransferId::service_credit(request, &t.credit).expect("the credit account was checked");
        if expected != t.id {
            return Err(LedgerError::ServiceCreditId { transfer: t.id.clone(), expected });
        }
    }
    Ok(())
}

fn open_account<B: Book>(b: &B, account: &AccountId) -> Result<(u32, Acct), LedgerError> {
    let slot = b.account_slot(account).ok_or_else(|| LedgerError::UnknownAccount { account: account.clone() })?;
    let a = b.acct(slot);
    if a.closed {
        return Err(LedgerError::AccountClosed { account: account.clone() });
    }
    Ok((slot, a))
}

fn add(transfer: &TransferId, account: &AccountId, total: u64, amount: u64) -> Result<u64, LedgerError> {
    total
        .checked_add(amount)
        .ok_or_else(|| LedgerError::Overflow { transfer: transfer.clone(), account: account.clone() })
}

/// The transfer an id names, if it names one.
pub(crate) fn transfer_slot<B: Book>(b: &B, id: &TransferId) -> Option<u32> {
    match b.entry(id) {
        Some(Entry::Transfer(s)) => Some(s),
        _ => None,
    }
}

/// The checks on a reversal's original, in the documented order.
pub(crate) fn check_reversible(rec: &TransferRecord) -> Result<(), LedgerError> {
    let original = &rec.transfer.id;
    if matches!(rec.transfer.kind, TransferKind::Reversal { .. }) {
        return Err(LedgerError::ReverseOfReversal { original: original.clone() });
    }
    if let Some(by) = &rec.reversed_by {
        return Err(LedgerError::AlreadyReversed { original: original.clone(), by: by.clone() });
    }
    Ok(())
}

fn transferred<B: Book>(b: &mut B, t: &Arc<Transfer>, id_new: bool) -> Result<(), LedgerError> {
    if !id_new && b.entry(&t.id).is_some() {
        return Err(LedgerError::AlreadyExists { id: t.id.clone() });
    }
    check_static(t)?;
    let (d, mut da) = open_account(b, &t.debit)?;
    let (c, mut ca) = open_account(b, &t.credit)?;
    let reversed = match &t.kind {
        TransferKind::Reversal { original, .. } => {
            let slot = transfer_slot(b, original)
                .ok_or_else(|| LedgerError::OriginalNotFound { original: original.clone() })?;
            let rec = b.record(slot);
            check_reversible(rec)?;
            let o = &rec.transfer;
            if !rec.state.is_posted()
                || t.timeout_s.is_some()
                || o.debit != t.credit
                || o.credit != t.debit
                || o.amount != t.amount
            {
                return Err(LedgerError::ReversalMismatch { transfer: t.id.clone() });
            }
            Some(slot)
        }
        _ => None,
    };
    if !da.system && i128::from(t.amount) > da.balance.available() {
        return Err(LedgerError::InsufficientBalance {
            transfer: t.id.clone(),
            account: t.debit.clone(),
            available: u64::try_from(da.balance.available().max(0)).unwrap_or(u64::MAX),
            asked: t.amount,
        });
    }
    let pending = t.timeout_s.is_some();
    if pending {
        da.balance.debits_pending = add(&t.id, &t.debit, da.balance.debits_pending, t.amount)?;
        ca.balance.credits_pending = add(&t.id, &t.credit, ca.balance.credits_pending, t.amount)?;
    } else {
        da.balance.debits_posted = add(&t.id, &t.debit, da.balance.debits_posted, t.amount)?;
        ca.balance.credits_posted = add(&t.id, &t.credit, ca.balance.credits_posted, t.amount)?;
    }
    b.set_acct(d, da);
    b.set_acct(c, ca);
    b.push(t, if pending { TransferState::Pending } else { TransferState::Posted });
    if let Some(slot) = reversed {
        b.set_reversed_by(slot, &t.id);
    }
    Ok(())
}

/// Whether a pending transfer can still be posted or voided at `at`; the checks in the documented order.
pub(crate) fn check_pending(rec: &TransferRecord, at: DateTime<Utc>) -> Result<(), LedgerError> {
    let pending = &rec.transfer.id;
    let expires_at = || rec.transfer.expires_at().unwrap_or(DateTime::<Utc>::MAX_UTC);
    match &rec.state {
        TransferState::Pending => {}
        TransferState::Posted => return Err(LedgerError::NotPending { pending: pending.clone() }),
        TransferState::PendingPosted { by } => {
            return Err(LedgerError::PendingAlreadyPosted { pending: pending.clone(), by: by.clone() });
        }
        TransferState::PendingVoided { by, .. } => {
            return Err(LedgerError::PendingAlreadyVoided { pending: pending.clone(), by: by.clone() });
        }
        TransferState::PendingExpired => {
            return Err(LedgerError::PendingExpired { pending: pending.clone(), expires_at: expires_at() });
        }
    }
    if at >= expires_at() {
        return Err(LedgerError::PendingExpired { pending: pending.clone(), expires_at: expires_at() });
    }
    Ok(())
}

/// A post (`void` = `None`) or a void (`Some(reason)`, a reason for a reversal).
fn resolve<B: Book>(
    b: &mut B,
    id: &TransferId,
    pending: &TransferId,
    at: DateTime<Utc>,
    void: Option<Option<&str>>,
    id_new: bool,
) -> Result<(), LedgerError> {
    if !id_new && b.entry(id).is_some() {
        return Err(LedgerError::AlreadyExists { id: id.clone() });
    }
    if id.is_reserved() {
        return Err(LedgerError::ReservedId { id: id.clone() });
    }
    if let Some(Some(reason)) = void {
        check_reason(|| Subject::Transfer(id.clone()), reason)?;
    }
    let slot = transfer_slot(b, pending).ok_or_else(|| LedgerError::PendingNotFound { pending: pending.clone() })?;
    let rec = b.record(slot);
    check_pending(rec, at)?;
    let (amount, post) = (rec.transfer.amount, void.is_none());
    let (d, c) = accounts_of(b, &rec.transfer);
    let (mut da, mut ca) = (b.acct(d), b.acct(c));
    da.balance.debits_pending -= amount;
    ca.balance.credits_pending -= amount;
    if post {
        let t = &b.record(slot).transfer;
        da.balance.debits_posted = add(id, &t.debit, da.balance.debits_posted, amount)?;
        ca.balance.credits_posted = add(id, &t.credit, ca.balance.credits_posted, amount)?;
    }
    b.set_acct(d, da);
    b.set_acct(c, ca);
    let (state, entry) = match void {
        None => (TransferState::PendingPosted { by: id.clone() }, Entry::Post(slot)),
        Some(reason) => {
            (TransferState::PendingVoided { by: id.clone(), reason: reason.map(str::to_owned) }, Entry::Void(slot))
        }
    };
    b.resolve(slot, state, Some((id, entry)));
    Ok(())
}

fn accounts_of<B: Book>(b: &B, t: &Transfer) -> (u32, u32) {
    let slot = |a: &AccountId| b.account_slot(a).expect("a recorded transfer's accounts are open");
    (slot(&t.debit), slot(&t.credit))
}

fn expire<B: Book>(b: &mut B, pending: &TransferId, at: DateTime<Utc>) -> Result<(), LedgerError> {
    let slot = transfer_slot(b, pending).ok_or_else(|| LedgerError::PendingNotFound { pending: pending.clone() })?;
    let rec = b.record(slot);
    let expires_at = rec.transfer.expires_at();
    match check_pending(rec, at) {
        Err(LedgerError::PendingExpired { .. }) if rec.state == TransferState::Pending => {}
        Err(e) => return Err(e),
        Ok(()) => {
            return Err(LedgerError::PendingNotExpired {
                pending: pending.clone(),
                expires_at: expires_at.unwrap_or(DateTime::<Utc>::MAX_UTC),
            });
        }
    }
    let amount = rec.transfer.amount;
    let (d, c) = accounts_of(b, &rec.transfer);
    let (mut da, mut ca) = (b.acct(d), b.acct(c));
    da.balance.debits_pending -= amount;
    ca.balance.credits_pending -= amount;
    b.set_acct(d, da);
    b.set_acct(c, ca);
    b.resolve(slot, TransferState::PendingExpired, None);
    Ok(())
}

/// What a command does to a redemption leg, for the pairing check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum LegAction {
    Create,
    Post,
    Void,
    Reverse,
}

/// The legs of a redemption are made, posted, voided and reversed together: every leg a
/// command's events touch has its partner touched the same way by the same command, and a new
/// pair is one points leg and one goods leg of one station, with one timeout.
pub(crate) fn check_pairs<B: Book>(b: &B, events: &[LedgerEvent]) -> Result<(), LedgerError> {
    let partner_of = |id: &TransferId| -> Option<TransferId> {
        let slot = transfer_slot(b, id)?;
        match &b.record(slot).transfer.kind {
            TransferKind::Redemption { partner } => Some(partner.clone()),
            _ => None,
        }
    };
    let mut legs: Vec<(TransferId, LegAction, TransferId)> = Vec::new();
    for ev in events {
        let (leg, action) = match ev {
            LedgerEvent::Transferred { transfer } => match &transfer.kind {
                TransferKind::Redemption { .. } => (&transfer.id, LegAction::Create),
                TransferKind::Reversal { original, .. } => (original, LegAction::Reverse),
                _ => continue,
            },
            LedgerEvent::Posted { pending, .. } => (pending, LegAction::Post),
            LedgerEvent::Voided { pending, .. } => (pending, LegAction::Void),
            _ => continue,
        };
        if let Some(partner) = partner_of(leg) {
            legs.push((leg.clone(), action, partner));
        }
    }
    let mut done: HashMap<(TransferId, LegAction), TransferId> = HashMap::default();
    for (leg, action, partner) in &legs {
        if let MapEntry::Vacant(v) = done.entry((leg.clone(), *action)) {
            v.insert(partner.clone());
        }
    }
    for (leg, action, partner) in &legs {
        let unpaired = || LedgerError::RedemptionUnpaired { transfer: leg.clone(), partner: partner.clone() };
        // A leg that names itself fails here or, when made, the shape check below (two equal legs).
        if done.get(&(partner.clone(), *action)) != Some(leg) {
            return Err(unpaired());
        }
        if *action == LegAction::Create {
            let (Some(a), Some(p)) = (transfer_slot(b, leg), transfer_slot(b, partner)) else {
                return Err(unpaired());
            };
            let (a, p) = (&b.record(a).transfer, &b.record(p).transfer);
            let points = |t: &Transfer| t.debit.ledger_ref() == LedgerRef::Points;
            if points(a) == points(p) || a.credit.station() != p.credit.station() || a.timeout_s != p.timeout_s {
                return Err(unpaired());
            }
        }
    }
    Ok(())
}

//! The incentive ledger: points (积分), time-bank minutes (时间银行) and love-supermarket stock
//! (爱心超市), kept by double entry as an event-sourced, sans-IO state machine.
//!
//! The model is TigerBeetle's. An [`Account`] keeps four totals ([`Balance`]: debits and credits,
//! pending and posted); a [`Transfer`] moves a positive integer amount from a debit account to a
//! credit account of the same ledger ([`LedgerId`]: points, minutes, or the units of one item).
//! Volunteers', teams' and shelves' accounts may never be debited beyond their posted credits,
//! counting pending reservations; only system accounts (issuance, tills, stock receipt and
//! consumption, the time-bank sink) may go below zero. Transfers are never changed or deleted: a
//! correction is an adjustment or a [reversal](LedgerOp::Reverse), a new transfer linked to the
//! original.
//!
//! A transfer with a timeout is pending, a reservation (a redemption waiting to be picked up);
//! it is posted or voided at most once, or expires by [`Ledger::tick`], which releases it.
//! Every transfer, post, void and reversal carries an id, the idempotency key: a retry with the
//! same content is a no-op, with other content a [`LedgerError::ExistsWithDifferent`] naming the
//! field. Service credits have ids derived from the request and the account
//! ([`TransferId::service_credit`]), so a request credits each volunteer at most once.
//!
//! [`Ledger::decide`] takes a [`LedgerCommand`] (operations that succeed or fail together) and
//! the caller's `now`, and returns the events to append, or a typed [`LedgerError`] and nothing
//! else. [`Ledger::apply`] folds one event into the state, checking that it fits; replaying the
//! log rebuilds the ledger exactly ([`Ledger::digest`]). Balances are the fold of the transfers
//! ([`Ledger::check`], [`Ledger::recompute_from`]). See docs/ledger.md.

mod book;
mod credit;
mod error;
mod ids;
mod retention;
mod snapshot;
mod table;
mod types;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};

pub use credit::{CreditInput, CreditPolicy, CreditPolicyError, MAX_MULTIPLIER_PCT, MAX_RATE, service_credit};
pub use error::{InvariantViolation, LedgerApplyError, LedgerError, Side, Subject, TransferField};
pub use snapshot::{LedgerSnapshot, LedgerSnapshotError};
pub use types::{
    Account, AccountId, AccountIdError, Balance, ItemId, LedgerCommand, LedgerEvent, LedgerId, LedgerOp, MAX_AMOUNT,
    MAX_OPS, MAX_REASON_LEN, MAX_TIMEOUT_S, Redemption, SERVICE_CREDIT_PREFIX, TRANSFER_ID_MAX_LEN, Transfer,
    TransferId, TransferIdError, TransferKind, TransferKindName, TransferRecord, TransferSpec, TransferState,
};

use book::{Book, Changes, Overlay, check_pairs, check_pending, check_reason, check_reversible, effect, transfer_slot};
use table::Table;

type HashMap<K, V> = foldhash::HashMap<K, V>;

/// What an id names: a transfer, or the post or void of the pending transfer at a slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Entry {
    Transfer(u32),
    Post(u32),
    Void(u32),
}

/// What an id did, as a retry of it is answered: the transfer it made, or the pending transfer it
/// posted or voided (a reversal of a pending transfer is its void).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome<'a> {
    /// The id is a transfer (a reversal of a posted transfer is one).
    Transfer(&'a TransferRecord),
    /// The id posted this pending transfer.
    Posted(&'a TransferRecord),
    /// The id voided this pending transfer.
    Voided(&'a TransferRecord),
}

/// Every account and transfer of the points, time-bank and stock ledgers.
#[derive(Debug, Clone, Default)]
pub struct Ledger {
    accounts: Vec<Account>,
    account_slot: HashMap<AccountId, u32>,
    /// The transfers in memory, by slot.
    transfers: Table,
    entries: HashMap<TransferId, Entry>,
    /// Every pending transfer by expiry, earliest first (then in the order made).
    expiries: BTreeSet<(DateTime<Utc>, u32)>,
    /// By account slot, the posted totals of the transfers that left memory (for [`Ledger::check`]).
    carried: HashMap<u32, Balance>,
    /// How many transfers left memory.
    retired: u64,
    /// When the last [`LedgerEvent::Retired`] was applied.
    last_retired: Option<DateTime<Utc>>,
    /// How long a settled transfer stays in memory (`None`: for ever). Configuration, not state:
    /// it decides when [`Ledger::tick`] retires; the event says what, so a replay needs none.
    retention: Option<Duration>,
    applied: u64,
}

impl Ledger {
    /// An empty ledger: no account is open.
    pub fn new() -> Self {
        Self::default()
    }

    /// Decides what `cmd` causes at `now`: the events to append, in order, or why it is refused.
    /// Operations are tried in order, each seeing the effects of those before; if one is refused
    /// the whole command is, and nothing changes. An operation whose id already names the same
    /// thing (a retry) adds no event.
    ///
    /// # Errors
    /// A typed refusal; see [`LedgerError`] and docs/ledger.md for the order of the checks.
    pub fn decide(&self, cmd: &LedgerCommand, now: DateTime<Utc>) -> Result<Vec<LedgerEvent>, LedgerError> {
        self.try_command(cmd, now).map(|(events, _)| events)
    }

    /// Tries a command's events on a scratch overlay of the ledger.
    fn try_command(
        &self,
        cmd: &LedgerCommand,
        now: DateTime<Utc>,
    ) -> Result<(Vec<LedgerEvent>, Overlay<'_>), LedgerError> {
        if cmd.ops.len() > MAX_OPS {
            return Err(LedgerError::TooManyOps { ops: cmd.ops.len() });
        }
        let mut book = Overlay::new(self);
        let mut events = Vec::with_capacity(cmd.ops.len());
        for op in &cmd.ops {
            if let Some(ev) = decide_op(&book, op, now)? {
                effect(&mut book, &ev, true)?;
                events.push(ev);
            }
        }
        check_pairs(&book, &events)?;
        Ok((events, book))
    }

    /// Folds one event into the ledger. It decides nothing, but checks that the event fits (a
    /// log the ledger did not write is refused, and the ledger is left as it was).
    ///
    /// # Errors
    /// The event does not fit; see [`LedgerApplyError`].
    pub fn apply(&mut self, ev: &LedgerEvent) -> Result<(), LedgerApplyError> {
        match ev {
            LedgerEvent::Retired { before, at } => self.retire(*before, *at),
            _ => effect(self, ev, false).map_err(|error| LedgerApplyError {
                index: self.applied,
                event: ev.name(),
                error,
            })?,
        }
        self.applied += 1;
        Ok(())
    }

    /// Decides, then applies: the convenience for simulations, tests and benchmarks. Rather
    /// than fold the events again, it keeps what the decision already worked out on its scratch
    /// overlay, which is the same state (the model test checks, after every step, that a replica
    /// folding the events has the same digest).
    ///
    /// # Errors
    /// The refusal from [`Ledger::decide`].
    pub fn execute(&mut self, cmd: &LedgerCommand, now: DateTime<Utc>) -> Result<Vec<LedgerEvent>, LedgerError> {
        let (events, book) = self.try_command(cmd, now)?;
        let changes = book.into_changes();
        self.commit(changes, events.len());
        Ok(events)
    }

    /// Writes a decision's changes into the ledger.
    fn commit(&mut self, changes: Changes, n_events: usize) {
        let Changes { opened, accts, entries, records } = changes;
        for (id, slot) in opened {
            debug_assert_eq!(slot as usize, self.accounts.len(), "new accounts come in slot order");
            self.accounts.push(Account {
                system: id.is_system(),
                id: id.clone(),
                balance: Balance::default(),
                closed: false,
            });
            self.account_slot.insert(id, slot);
        }
        for (slot, acct) in accts {
            self.set_acct(slot, acct);
        }
        for (slot, rec) in records {
            let pending = rec.state == TransferState::Pending;
            let expiry = |rec: &TransferRecord| {
                (rec.transfer.expires_at().expect("a pending transfer's expiry was checked"), slot)
            };
            match self.transfers.get_mut(slot) {
                Some(old) => {
                    if old.state == TransferState::Pending && !pending {
                        self.expiries.remove(&expiry(old));
                    }
                    *old = rec;
                }
                None => {
                    debug_assert_eq!(slot, self.transfers.next_slot(), "new transfers come in slot order");
                    if pending {
                        self.expiries.insert(expiry(&rec));
                    }
                    self.transfers.push(rec);
                }
            }
        }
        self.entries.extend(entries);
        self.applied += n_events as u64;
    }

    fn apply_decided(&mut self, events: &[LedgerEvent]) {
        for ev in events {
            if let Err(e) = self.apply(ev) {
                unreachable!("a decided event does not apply: {e}");
            }
        }
    }

    /// What is due at `now`: every pending transfer whose timeout has passed, in timeout order
    /// (then in the order made; the legs of a redemption expire together); then, with a
    /// retention, the retirement of the transfers settled before `now` less the retention, at
    /// most once a day. Nothing changes until the events are applied.
    pub fn tick(&self, now: DateTime<Utc>) -> Vec<LedgerEvent> {
        let mut events: Vec<LedgerEvent> = self
            .expiries
            .iter()
            .take_while(|(t, _)| *t <= now)
            .map(|&(_, slot)| LedgerEvent::Expired { pending: self.transfers.at(slot).transfer.id.clone(), at: now })
            .collect();
        if let (Some(keep), Some(due)) = (self.retention, self.next_retirement())
            && due <= now
            && let Some(before) = now.checked_sub_signed(keep)
        {
            events.push(LedgerEvent::Retired { before, at: now });
        }
        events
    }

    /// When the next [`Ledger::tick`] has something to do: a reservation expires, or settled
    /// transfers leave memory.
    pub fn next_wakeup(&self) -> Option<DateTime<Utc>> {
        match (self.next_expiry(), self.next_retirement()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// [`Ledger::tick`], then applies what it decided (expiries, a retirement); returns them.
    pub fn execute_tick(&mut self, now: DateTime<Utc>) -> Vec<LedgerEvent> {
        let events = self.tick(now);
        self.apply_decided(&events);
        events
    }

    /// When the next pending transfer expires: the time of the next useful [`Ledger::tick`].
    pub fn next_expiry(&self) -> Option<DateTime<Utc>> {
        self.expiries.first().map(|(t, _)| *t)
    }

    /// An account's totals; zero for an account never opened.
    pub fn balance(&self, account: &AccountId) -> Balance {
        self.account(account).map(|a| a.balance).unwrap_or_default()
    }

    /// An account.
    pub fn account(&self, account: &AccountId) -> Option<&Account> {
        self.account_slot.get(account).map(|&s| &self.accounts[s as usize])
    }

    /// Every account, in the order opened.
    pub fn accounts(&self) -> impl ExactSizeIterator<Item = &Account> {
        self.accounts.iter()
    }

    /// A transfer and where it stands.
    pub fn transfer(&self, id: &TransferId) -> Option<&TransferRecord> {
        transfer_slot(self, id).map(|s| self.transfers.at(s))
    }

    /// Every transfer in memory, in the order made.
    pub fn transfers(&self) -> impl Iterator<Item = &TransferRecord> {
        self.transfers.iter().map(|(_, r)| r)
    }

    /// How many transfers are in memory.
    pub fn transfers_in_memory(&self) -> usize {
        self.transfers.len()
    }

    /// What an id did: the answer to a retry of it.
    pub fn outcome(&self, id: &TransferId) -> Option<Outcome<'_>> {
        Some(match self.entries.get(id)? {
            Entry::Transfer(s) => Outcome::Transfer(self.transfers.at(*s)),
            Entry::Post(s) => Outcome::Posted(self.transfers.at(*s)),
            Entry::Void(s) => Outcome::Voided(self.transfers.at(*s)),
        })
    }

    /// How many pending transfers wait to be posted, voided or expired.
    pub fn pending(&self) -> usize {
        self.expiries.len()
    }

    /// How many events have been applied.
    pub fn applied(&self) -> u64 {
        self.applied
    }

    /// A digest of the whole state (accounts, transfers, ids, expiries), equal for equal states:
    /// replaying a log must give the live ledger's digest, and a refused command must leave it.
    pub fn digest(&self) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut h = std::hash::DefaultHasher::new();
        self.accounts.hash(&mut h);
        self.transfers.hash(&mut h);
        let mut entries: Vec<(&TransferId, &Entry)> = self.entries.iter().collect();
        entries.sort_unstable();
        entries.hash(&mut h);
        self.expiries.hash(&mut h);
        let mut carried: Vec<(&u32, &Balance)> = self.carried.iter().collect();
        carried.sort_unstable_by_key(|(s, _)| **s);
        carried.hash(&mut h);
        (self.retired, self.last_retired).hash(&mut h);
        self.applied.hash(&mut h);
        h.finish()
    }

    /// A ledger rebuilt from a log.
    ///
    /// # Errors
    /// An event does not fit.
    pub fn replay<'a>(events: impl IntoIterator<Item = &'a LedgerEvent>) -> Result<Ledger, LedgerApplyError> {
        let mut ledger = Ledger::new();
        for ev in events {
            ledger.apply(ev)?;
        }
        Ok(ledger)
    }

    /// Every account's totals, folded from a log by the plainest arithmetic and no checks (it
    /// saturates rather than fail on a log that does not add up): the audit's second opinion, to
    /// compare with [`Ledger::balance`].
    pub fn recompute_from<'a>(events: impl IntoIterator<Item = &'a LedgerEvent>) -> BTreeMap<AccountId, Balance> {
        let mut balances: BTreeMap<AccountId, Balance> = BTreeMap::new();
        let mut pending: HashMap<&TransferId, &Transfer> = HashMap::default();
        fn bal<'m>(m: &'m mut BTreeMap<AccountId, Balance>, a: &AccountId) -> &'m mut Balance {
            m.entry(a.clone()).or_default()
        }
        for ev in events {
            match ev {
                LedgerEvent::AccountOpened { account, .. } => {
                    bal(&mut balances, account);
                }
                LedgerEvent::AccountClosed { .. } | LedgerEvent::Retired { .. } => {}
                LedgerEvent::Transferred { transfer: t } => {
                    let pend = t.timeout_s.is_some();
                    if pend {
                        pending.insert(&t.id, t);
                    }
                    let d = bal(&mut balances, &t.debit);
                    let d = if pend { &mut d.debits_pending } else { &mut d.debits_posted };
                    *d = d.saturating_add(t.amount);
                    let c = bal(&mut balances, &t.credit);
                    let c = if pend { &mut c.credits_pending } else { &mut c.credits_posted };
                    *c = c.saturating_add(t.amount);
                }
                LedgerEvent::Posted { pending: p, .. }
                | LedgerEvent::Voided { pending: p, .. }
                | LedgerEvent::Expired { pending: p, .. } => {
                    let Some(t) = pending.remove(p) else { continue };
                    let d = bal(&mut balances, &t.debit);
                    d.debits_pending = d.debits_pending.saturating_sub(t.amount);
                    let c = bal(&mut balances, &t.credit);
                    c.credits_pending = c.credits_pending.saturating_sub(t.amount);
                    if matches!(ev, LedgerEvent::Posted { .. }) {
                        let d = bal(&mut balances, &t.debit);
                        d.debits_posted = d.debits_posted.saturating_add(t.amount);
                        let c = bal(&mut balances, &t.credit);
                        c.credits_posted = c.credits_posted.saturating_add(t.amount);
                    }
                }
            }
        }
        balances
    }

    /// Checks the ledger's invariants (reliability.md 17–22) against its own records: every
    /// balance is the fold of its transfers (those in memory, and the totals carried from those
    /// that left); per ledger, Σ debits = Σ credits, posted and
    /// pending; no non-system account is below zero counting pending; every pending transfer
    /// is scheduled to expire and nothing else is; every id names what it made; reversals and
    /// redemption legs are linked both ways. O(accounts + transfers); for tests and audits.
    ///
    /// # Errors
    /// The first invariant found broken (a bug).
    pub fn check(&self) -> Result<(), InvariantViolation> {
        let fail = |s: String| Err(InvariantViolation(s));
        let mut fold = vec![Balance::default(); self.accounts.len()];
        for (&slot, carried) in &self.carried {
            match fold.get_mut(slot as usize) {
                Some(f) => *f = *carried,
                None => return fail(format!("amounts carried for account slot {slot}, past the accounts")),
            }
        }
        let mut expiries = BTreeSet::new();
        let mut n_ids = self.transfers.len();
        for (slot, rec) in self.transfers.iter() {
            let t = &rec.transfer;
            let (Some(&d), Some(&c)) = (self.account_slot.get(&t.debit), self.account_slot.get(&t.credit)) else {
                return fail(format!("{}: an account is not open", t.id));
            };
            if self.entries.get(&t.id) != Some(&Entry::Transfer(slot)) {
                return fail(format!("{}: its id does not name it", t.id));
            }
            let (d, c) = (&mut fold[d as usize], c as usize);
            match &rec.state {
                TransferState::Posted | TransferState::PendingPosted { .. } => {
                    d.debits_posted += t.amount;
                    fold[c].credits_posted += t.amount;
                }
                TransferState::Pending => {
                    d.debits_pending += t.amount;
                    fold[c].credits_pending += t.amount;
                    match t.expires_at() {
                        Some(e) => expiries.insert((e, slot)),
                        None => return fail(format!("{}: pending without an expiry", t.id)),
                    };
                }
                TransferState::PendingVoided { .. } | TransferState::PendingExpired => {}
            }
            let resolved = match &rec.state {
                TransferState::PendingPosted { by } => Some((by, Entry::Post(slot))),
                TransferState::PendingVoided { by, .. } => Some((by, Entry::Void(slot))),
                _ => None,
            };
            if let Some((by, entry)) = resolved {
                n_ids += 1;
                if self.entries.get(by) != Some(&entry) {
                    return fail(format!("{}: resolved by {by}, which does not name it", t.id));
                }
            }
            if t.timeout_s.is_some() == (rec.state == TransferState::Posted) {
                return fail(format!("{}: state {:?} does not fit its timeout", t.id, rec.state));
            }
            if let Some(by) = &rec.reversed_by {
                let ok = self.transfer(by).is_some_and(|r| {
                    matches!(&r.transfer.kind, TransferKind::Reversal { original, .. } if *original == t.id)
                        && r.transfer.debit == t.credit
                        && r.transfer.credit == t.debit
                        && r.transfer.amount == t.amount
                });
                if !ok || !rec.state.is_posted() {
                    return fail(format!("{}: reversed by {by}, which is not its reversal", t.id));
                }
            }
            match &t.kind {
                TransferKind::Reversal { original, .. }
                    if self.transfer(original).and_then(|o| o.reversed_by.as_ref()) != Some(&t.id) =>
                {
                    return fail(format!("{}: reverses {original}, which does not know it", t.id));
                }
                TransferKind::Redemption { partner } => {
                    let same =
                        |a: &TransferState, b: &TransferState| std::mem::discriminant(a) == std::mem::discriminant(b);
                    let ok = self.transfer(partner).is_some_and(|p| {
                        matches!(&p.transfer.kind, TransferKind::Redemption { partner } if *partner == t.id)
                            && same(&p.state, &rec.state)
                            && p.reversed_by.is_some() == rec.reversed_by.is_some()
                    });
                    if !ok {
                        return fail(format!("{}: its redemption partner {partner} does not match it", t.id));
                    }
                }
                _ => {}
            }
        }
        if n_ids != self.entries.len() {
            return fail(format!("{} ids for {n_ids} transfers, posts and voids", self.entries.len()));
        }
        if expiries != self.expiries {
            return fail("the expiry schedule is not the set of pending transfers".into());
        }
        let mut sums: BTreeMap<LedgerId, [u128; 4]> = BTreeMap::new();
        for (a, f) in self.accounts.iter().zip(&fold) {
            if a.balance != *f {
                return fail(format!("{}: balance {:?}, its transfers fold to {f:?}", a.id, a.balance));
            }
            if self.account_slot.get(&a.id).map(|&s| &self.accounts[s as usize].id) != Some(&a.id) {
                return fail(format!("{}: not found by its id", a.id));
            }
            if a.system != a.id.is_system() {
                return fail(format!("{}: system flag {}", a.id, a.system));
            }
            if !a.system && a.balance.available() < 0 {
                return fail(format!("{}: below zero counting pending: {:?}", a.id, a.balance));
            }
            let s = sums.entry(a.id.ledger()).or_default();
            let b = a.balance;
            for (acc, v) in s.iter_mut().zip([b.debits_pending, b.debits_posted, b.credits_pending, b.credits_posted]) {
                *acc += u128::from(v);
            }
        }
        if self.account_slot.len() != self.accounts.len() {
            return fail("the account index does not match the accounts".into());
        }
        for (ledger, [dp, dpo, cp, cpo]) in sums {
            if dp != cp || dpo != cpo {
                return fail(format!("ledger {ledger}: debits {dp}/{dpo}, credits {cp}/{cpo} (pending/posted)"));
            }
        }
        Ok(())
    }
}

/// One operation: its event, `None` for a retry, or why it is refused.
fn decide_op<B: Book>(b: &B, op: &LedgerOp, now: DateTime<Utc>) -> Result<Option<LedgerEvent>, LedgerError> {
    match op {
        LedgerOp::Open { account } => match b.account_slot(account) {
            Some(s) if b.acct(s).closed => Err(LedgerError::AccountClosed { account: account.clone() }),
            Some(_) => Ok(None),
            None => Ok(Some(LedgerEvent::AccountOpened { account: account.clone(), at: now })),
        },
        LedgerOp::Close { account, reason } => match b.account_slot(account) {
            None => Err(LedgerError::UnknownAccount { account: account.clone() }),
            Some(s) if b.acct(s).closed => Ok(None),
            Some(_) => {
                Ok(Some(LedgerEvent::AccountClosed { account: account.clone(), reason: reason.clone(), at: now }))
            }
        },
        LedgerOp::Transfer { transfer: spec } => {
            if let Some(e) = b.entry(&spec.id) {
                return same_transfer(b, e, spec).map(|()| None);
            }
            if let TransferKind::Reversal { .. } = spec.kind {
                return Err(LedgerError::KindNotAllowed { transfer: spec.id.clone(), kind: spec.kind.kind_name() });
            }
            Ok(Some(LedgerEvent::Transferred { transfer: Arc::new(Transfer::from_spec(spec, now)) }))
        }
        LedgerOp::Post { id, pending } => {
            if let Some(e) = b.entry(id) {
                return same_resolution(b, id, e, pending, false).map(|()| None);
            }
            Ok(Some(LedgerEvent::Posted { id: id.clone(), pending: pending.clone(), at: now }))
        }
        LedgerOp::Void { id, pending } => {
            if let Some(e) = b.entry(id) {
                return same_resolution(b, id, e, pending, true).map(|()| None);
            }
            Ok(Some(LedgerEvent::Voided { id: id.clone(), pending: pending.clone(), reason: None, at: now }))
        }
        LedgerOp::Reverse { id, original, reason } => {
            if let Some(e) = b.entry(id) {
                return same_reversal(b, id, e, original, reason).map(|()| None);
            }
            decide_reverse(b, id, original, reason, now).map(Some)
        }
    }
}

fn differ(id: &TransferId, field: TransferField) -> LedgerError {
    LedgerError::ExistsWithDifferent { id: id.clone(), field }
}

/// A retried transfer: the fields compared in order, the first that differs named.
fn same_transfer<B: Book>(b: &B, e: Entry, spec: &TransferSpec) -> Result<(), LedgerError> {
    let Entry::Transfer(slot) = e else { return Err(differ(&spec.id, TransferField::Operation)) };
    let t = &b.record(slot).transfer;
    let field = if matches!(t.kind, TransferKind::Reversal { .. }) {
        TransferField::Operation
    } else if t.debit != spec.debit {
        TransferField::Debit
    } else if t.credit != spec.credit {
        TransferField::Credit
    } else if t.amount != spec.amount {
        TransferField::Amount
    } else if t.kind != spec.kind {
        TransferField::Kind
    } else if t.timeout_s != spec.timeout_s {
        TransferField::Timeout
    } else {
        return Ok(());
    };
    Err(differ(&spec.id, field))
}

/// A retried post (`void` false) or void.
fn same_resolution<B: Book>(
    b: &B,
    id: &TransferId,
    e: Entry,
    pending: &TransferId,
    void: bool,
) -> Result<(), LedgerError> {
    let slot = match (e, void) {
        (Entry::Post(s), false) => s,
        (Entry::Void(s), true) if matches!(b.record(s).state, TransferState::PendingVoided { reason: None, .. }) => s,
        _ => return Err(differ(id, TransferField::Operation)),
    };
    if b.record(slot).transfer.id != *pending {
        return Err(differ(id, TransferField::Pending));
    }
    Ok(())
}

/// A retried reversal: of a posted transfer (a reversal transfer) or of a pending one (a void with a reason).
fn same_reversal<B: Book>(
    b: &B,
    id: &TransferId,
    e: Entry,
    original: &TransferId,
    reason: &str,
) -> Result<(), LedgerError> {
    let (was_original, was_reason) = match e {
        Entry::Transfer(s) => match &b.record(s).transfer.kind {
            TransferKind::Reversal { original, reason } => (original, reason.as_str()),
            _ => return Err(differ(id, TransferField::Operation)),
        },
        Entry::Void(s) => {
            let rec = b.record(s);
            match &rec.state {
                TransferState::PendingVoided { reason: Some(reason), .. } => (&rec.transfer.id, reason.as_str()),
                _ => return Err(differ(id, TransferField::Operation)),
            }
        }
        Entry::Post(_) => return Err(differ(id, TransferField::Operation)),
    };
    if was_original != original {
        return Err(differ(id, TransferField::Original));
    }
    if was_reason != reason {
        return Err(differ(id, TransferField::Reason));
    }
    Ok(())
}

/// A new reversal: a void if the original is pending, else the mirror transfer.
fn decide_reverse<B: Book>(
    b: &B,
    id: &TransferId,
    original: &TransferId,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<LedgerEvent, LedgerError> {
    if id.is_reserved() {
        return Err(LedgerError::ReservedId { id: id.clone() });
    }
    check_reason(|| Subject::Transfer(id.clone()), reason)?;
    let slot =
        transfer_slot(b, original).ok_or_else(|| LedgerError::OriginalNotFound { original: original.clone() })?;
    let rec = b.record(slot);
    if rec.state == TransferState::Pending {
        check_pending(rec, now)?;
        return Ok(LedgerEvent::Voided {
            id: id.clone(),
            pending: original.clone(),
            reason: Some(reason.to_owned()),
            at: now,
        });
    }
    if !rec.state.is_posted() {
        // Voided or expired: nothing to reverse; say which.
        check_pending(rec, now)?;
    }
    check_reversible(rec)?;
    let o = &rec.transfer;
    Ok(LedgerEvent::Transferred {
        transfer: Arc::new(Transfer {
            id: id.clone(),
            debit: o.credit.clone(),
            credit: o.debit.clone(),
            amount: o.amount,
            kind: TransferKind::Reversal { original: original.clone(), reason: reason.to_owned() },
            timeout_s: None,
            at: now,
        }),
    })
}

#[cfg(test)]
mod tests;

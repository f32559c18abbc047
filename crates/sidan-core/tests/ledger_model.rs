//! A state-machine test of the ledger against a small reference model.
//!
//! Random sequences of 1–150 operations drive a [`Ledger`] over a small universe of accounts
//! (three volunteers, a team, two stations with rice and oil, the system accounts, and one
//! account never opened): service credits, adjustments, restocks, redemptions (some reserved,
//! some racing for the last items), withdrawals, moves between stations, malformed transfers,
//! posts, voids, reversals (of reversals too), exact retries of earlier commands, retries with
//! one field changed, and the clock moving on with its expiries. The model written here (plain
//! maps, cloned per command for all-or-nothing) predicts every command's events or its error
//! code, from the rules of docs/ledger.md; after every step the harness checks that the ledger
//! agrees, and reliability.md's ledger invariants 17–22 and 28:
//!
//! - 17: per ledger, Σ debits = Σ credits, posted and pending (summed here, from the balances);
//! - 18: no volunteer, team or shelf account below zero counting pending;
//! - 19: a transfer, once recorded, never changes (only its resolution and reversal link);
//! - 20: each pending transfer resolves (post, void, expiry) at most once, never after its timeout;
//! - 21: a request credits each account at most once; banked minutes = minutes of the services credited;
//! - 22: balances equal the fold of the transfers ([`Ledger::check`], [`Ledger::recompute_from`]);
//! - 28: a refused command leaves the ledger's digest unchanged;
//!
//! and that the log, through JSON, folds into a replica with the live digest at every step.
//! At the end, the whole log is replayed into a fresh ledger, and the operations are run a second
//! time for a byte-identical log.
//!
//! Cases follow `PROPTEST_CASES` (256 by default; CI asks for 1024). A failure prints the
//! operations; proptest keeps the failing seed in ledger_model.proptest-regressions.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{FileFailurePersistence, TestRunner};

use sidan_core::id::{RequestId, TeamId, UnitId, VolunteerId};
use sidan_core::ledger::{
    AccountId, Balance, CreditInput, CreditPolicy, ItemId, Ledger, LedgerCommand, LedgerError, LedgerEvent, LedgerOp,
    MAX_AMOUNT, MAX_OPS, MAX_REASON_LEN, MAX_TIMEOUT_S, Redemption, Transfer, TransferId, TransferKind, TransferRecord,
    TransferSpec, TransferState, service_credit,
};
use sidan_core::testkit::t0;

// ---------------------------------------------------------------------------
// The universe
// ---------------------------------------------------------------------------

static VOLUNTEERS: [&str; 3] = ["v0", "v1", "v2"];
/// Shelves as (station, item).
static SHELVES: [(&str, &str); 3] = [("s0", "rice"), ("s1", "rice"), ("s0", "oil")];
static REQUESTS: [&str; 4] = ["q0", "q1", "q2", "q3"];
static TIMEOUTS_S: [u32; 4] = [30, 120, 300, 600];

fn vol(i: usize) -> VolunteerId {
    VolunteerId::new(VOLUNTEERS[i % VOLUNTEERS.len()]).expect("id")
}

fn unit(s: &str) -> UnitId {
    UnitId::new(s).expect("id")
}

fn item(s: &str) -> ItemId {
    ItemId::new(s).expect("id")
}

fn tid(s: &str) -> TransferId {
    TransferId::new(s).expect("id")
}

fn shelf(i: usize) -> AccountId {
    let (s, it) = SHELVES[i % SHELVES.len()];
    AccountId::Shelf { station: unit(s), item: item(it) }
}

fn team() -> TeamId {
    TeamId::new("t0").expect("id")
}

/// Every account of the universe; the last is never opened by the prelude.
fn accounts() -> Vec<AccountId> {
    let mut a = vec![AccountId::PointsIssuance, AccountId::MinutesIssuance, AccountId::MinutesSpent];
    for i in 0..VOLUNTEERS.len() {
        a.push(AccountId::VolunteerPoints(vol(i)));
        a.push(AccountId::VolunteerMinutes(vol(i)));
    }
    a.push(AccountId::TeamPoints(team()));
    for s in ["s0", "s1"] {
        a.push(AccountId::Till(unit(s)));
    }
    for (s, it) in SHELVES {
        a.push(AccountId::Shelf { station: unit(s), item: item(it) });
        a.push(AccountId::StockReceipt { station: unit(s), item: item(it) });
        a.push(AccountId::StockConsumed { station: unit(s), item: item(it) });
    }
    a.push(AccountId::VolunteerPoints(VolunteerId::new("v9").expect("id")));
    a
}

// ---------------------------------------------------------------------------
// Operations
// ---------------------------------------------------------------------------

/// Which id an operation uses: a new one, or one used before (a retry or a clash).
#[derive(Debug, Clone, Copy)]
enum IdSel {
    Fresh,
    Old(usize),
    /// An id of the form reserved for service credits.
    Reserved,
}

/// A reason: fine, blank, or one byte too long.
#[derive(Debug, Clone, Copy)]
enum Reason {
    Ok,
    Blank,
    Long,
}

#[derive(Debug, Clone)]
enum Op {
    Open(usize),
    Close(usize, Reason),
    Credit {
        request: usize,
        minutes: u32,
        volunteers: u8,
        team: bool,
        flags: u8,
    },
    Adjust {
        debit: usize,
        credit: usize,
        amount: u64,
        reason: Reason,
        timeout: Option<u32>,
        twice: bool,
    },
    Restock {
        shelf: usize,
        amount: u64,
    },
    Redeem {
        volunteer: usize,
        shelf: usize,
        points: u64,
        quantity: u64,
        timeout: Option<u32>,
    },
    /// Two reservations of everything left on a shelf, one after the other.
    Race {
        shelf: usize,
        volunteers: (usize, usize),
    },
    Withdraw {
        volunteer: usize,
        amount: u64,
        timeout: Option<u32>,
    },
    Move {
        from: usize,
        to: usize,
        amount: u64,
    },
    /// A transfer of any kind between any accounts, often malformed.
    Raw {
        debit: usize,
        credit: usize,
        amount: u64,
        kind: usize,
        timeout: Option<u32>,
        id: IdSel,
    },
    Post {
        target: usize,
        id: IdSel,
    },
    Void {
        target: usize,
        id: IdSel,
    },
    Reverse {
        target: usize,
        id: IdSel,
        reason: Reason,
    },
    /// Post, void or reverse both legs of a redemption made earlier.
    Settle {
        redemption: usize,
        action: u8,
    },
    /// An earlier command again, unchanged.
    Retry(usize),
    /// An earlier command again with one field of its first operation changed.
    RetryChanged(usize, u8),
    Advance {
        seconds: u32,
    },
    TooMany,
}

fn reason() -> impl Strategy<Value = Reason> {
    prop_oneof![8 => Just(Reason::Ok), 1 => Just(Reason::Blank), 1 => Just(Reason::Long)]
}

fn id_sel() -> impl Strategy<Value = IdSel> {
    prop_oneof![12 => Just(IdSel::Fresh), 3 => any::<usize>().prop_map(IdSel::Old), 1 => Just(IdSel::Reserved)]
}

fn timeout() -> impl Strategy<Value = Option<u32>> {
    prop_oneof![2 => Just(None), 3 => proptest::sample::select(&TIMEOUTS_S[..]).prop_map(Some)]
}

fn op() -> impl Strategy<Value = Op> {
    let n_acc = accounts().len();
    let minutes = proptest::sample::select(&[0u32, 30, 45, 60, 100, 180][..]);
    let raw_amount = proptest::sample::select(&[0, 1, 5, 50, MAX_AMOUNT, MAX_AMOUNT + 1][..]);
    let raw_timeout = prop_oneof![4 => timeout(), 1 => Just(Some(0)), 1 => Just(Some(MAX_TIMEOUT_S + 1))];
    prop_oneof![
        1 => (0..n_acc).prop_map(Op::Open),
        1 => (0..n_acc, reason()).prop_map(|(a, r)| Op::Close(a, r)),
        6 => (0..REQUESTS.len(), minutes, any::<u8>(), any::<bool>(), 0u8..8).prop_map(
            |(request, minutes, volunteers, team, flags)| Op::Credit { request, minutes, volunteers, team, flags }
        ),
        3 => (0..n_acc, 0..n_acc, 1u64..60, reason(), timeout(), proptest::bool::weighted(0.2)).prop_map(
            |(debit, credit, amount, reason, timeout, twice)| {
                Op::Adjust { debit, credit, amount, reason, timeout, twice }
            }
        ),
        3 => (0..SHELVES.len(), 1u64..4).prop_map(|(shelf, amount)| Op::Restock { shelf, amount }),
        5 => (0..VOLUNTEERS.len(), 0..SHELVES.len(), 1u64..30, 1u64..3, timeout()).prop_map(
            |(volunteer, shelf, points, quantity, timeout)| Op::Redeem { volunteer, shelf, points, quantity, timeout }
        ),
        2 => (0..SHELVES.len(), (0..VOLUNTEERS.len(), 0..VOLUNTEERS.len()))
            .prop_map(|(shelf, volunteers)| Op::Race { shelf, volunteers }),
        2 => (0..VOLUNTEERS.len(), 1u64..120, timeout())
            .prop_map(|(volunteer, amount, timeout)| Op::Withdraw { volunteer, amount, timeout }),
        1 => (0..SHELVES.len(), 0..SHELVES.len(), 1u64..3).prop_map(|(from, to, amount)| Op::Move { from, to, amount }),
        4 => (0..n_acc, 0..n_acc, raw_amount, 0usize..9, raw_timeout, id_sel()).prop_map(
            |(debit, credit, amount, kind, timeout, id)| Op::Raw { debit, credit, amount, kind, timeout, id }
        ),
        4 => (any::<usize>(), id_sel()).prop_map(|(target, id)| Op::Post { target, id }),
        3 => (any::<usize>(), id_sel()).prop_map(|(target, id)| Op::Void { target, id }),
        3 => (any::<usize>(), id_sel(), reason()).prop_map(|(target, id, reason)| Op::Reverse { target, id, reason }),
        4 => (any::<usize>(), 0u8..3).prop_map(|(redemption, action)| Op::Settle { redemption, action }),
        3 => any::<usize>().prop_map(Op::Retry),
        3 => (any::<usize>(), 0u8..6).prop_map(|(c, f)| Op::RetryChanged(c, f)),
        3 => proptest::sample::select(&[0u32, 10, 60, 200, 700][..]).prop_map(|seconds| Op::Advance { seconds }),
        1 => Just(Op::TooMany),
    ]
}

// ---------------------------------------------------------------------------
// The reference model
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq)]
enum MState {
    Posted,
    Pending,
    PendingPosted(TransferId),
    PendingVoided(TransferId, Option<String>),
    PendingExpired,
}

#[derive(Debug, Clone)]
struct MTransfer {
    t: Transfer,
    state: MState,
    reversed_by: Option<TransferId>,
    /// Creation order, for the expiry order's ties.
    seq: usize,
}

#[derive(Debug, Clone, PartialEq)]
enum MRes {
    Post,
    /// A void; with a reason, a reversal of a pending transfer.
    Void(Option<String>),
}

#[derive(Debug, Clone, Default)]
struct Model {
    /// Balance and closed flag.
    accounts: BTreeMap<AccountId, (Balance, bool)>,
    transfers: BTreeMap<TransferId, MTransfer>,
    /// Posts and voids by their id: the pending transfer and which.
    resolutions: BTreeMap<TransferId, (TransferId, MRes)>,
}

type Refusal = &'static str;

fn system(a: &AccountId) -> bool {
    matches!(
        a,
        AccountId::PointsIssuance
            | AccountId::MinutesIssuance
            | AccountId::MinutesSpent
            | AccountId::Till(_)
            | AccountId::StockReceipt { .. }
            | AccountId::StockConsumed { .. }
    )
}

fn station(a: &AccountId) -> Option<&UnitId> {
    match a {
        AccountId::Shelf { station, .. }
        | AccountId::StockReceipt { station, .. }
        | AccountId::StockConsumed { station, .. }
        | AccountId::Till(station) => Some(station),
        _ => None,
    }
}

fn available(b: &Balance) -> i128 {
    i128::from(b.credits_posted) - i128::from(b.debits_posted) - i128::from(b.debits_pending)
}

fn expires_at(t: &Transfer) -> DateTime<Utc> {
    t.at + Duration::seconds(i64::from(t.timeout_s.expect("pending")))
}

fn bad_reason(r: &str) -> Option<Refusal> {
    if r.trim().is_empty() {
        Some("reason_missing")
    } else if r.len() > MAX_REASON_LEN {
        Some("text_too_long")
    } else {
        None
    }
}

/// The table of docs/ledger.md: may a transfer of this kind debit `d` and credit `c`?
/// `Err(true)` = the debit side is refused, `Err(false)` = the credit side.
fn kind_allows(kind: &TransferKind, d: &AccountId, c: &AccountId) -> Result<(), bool> {
    use AccountId as A;
    let debit_ok = match kind {
        TransferKind::ServiceCredit { .. } => matches!(d, A::PointsIssuance | A::MinutesIssuance),
        TransferKind::Redemption { .. } => matches!(d, A::VolunteerPoints(_) | A::Shelf { .. }),
        TransferKind::Withdrawal { .. } => matches!(d, A::VolunteerMinutes(_)),
        TransferKind::Restock {} => matches!(d, A::StockReceipt { .. }),
        TransferKind::StationTransfer {} => matches!(d, A::Shelf { .. } | A::Till(_)),
        _ => true,
    };
    if !debit_ok {
        return Err(true);
    }
    let credit_ok = match (kind, d, c) {
        (TransferKind::ServiceCredit { .. }, _, A::VolunteerPoints(_) | A::VolunteerMinutes(_) | A::TeamPoints(_)) => {
            true
        }
        (TransferKind::ServiceCredit { .. }, _, _) => false,
        (TransferKind::Redemption { .. }, A::VolunteerPoints(_), A::Till(_)) => true,
        (TransferKind::Redemption { .. }, A::Shelf { station: s, .. }, A::StockConsumed { station: t, .. }) => s == t,
        (TransferKind::Redemption { .. }, _, _) => false,
        (TransferKind::Withdrawal { .. }, _, c) => *c == A::MinutesSpent,
        (TransferKind::Restock {}, A::StockReceipt { station: s, .. }, A::Shelf { station: t, .. }) => s == t,
        (TransferKind::Restock {}, _, _) => false,
        (TransferKind::StationTransfer {}, A::Shelf { station: s, .. }, A::Shelf { station: t, .. }) => s != t,
        (TransferKind::StationTransfer {}, A::Till(s), A::Till(t)) => s != t,
        (TransferKind::StationTransfer {}, _, _) => false,
        _ => true,
    };
    if credit_ok { Ok(()) } else { Err(false) }
}

fn service_credit_id(request: &RequestId, c: &AccountId) -> String {
    match c {
        AccountId::VolunteerPoints(v) => format!("sc/{request}/vp/{v}"),
        AccountId::VolunteerMinutes(v) => format!("sc/{request}/vm/{v}"),
        AccountId::TeamPoints(t) => format!("sc/{request}/tp/{t}"),
        other => panic!("no service credit into {other}"),
    }
}

impl Model {
    /// The events of `cmd` at `now`, or the code of its refusal (and no change).
    fn execute(&mut self, cmd: &LedgerCommand, now: DateTime<Utc>) -> Result<Vec<LedgerEvent>, Refusal> {
        if cmd.ops.len() > MAX_OPS {
            return Err("too_many_ops");
        }
        let mut m = self.clone();
        let mut events = Vec::new();
        for op in &cmd.ops {
            m.op(op, now, &mut events)?;
        }
        m.pairs(&events)?;
        *self = m;
        Ok(events)
    }

    fn op(&mut self, op: &LedgerOp, now: DateTime<Utc>, out: &mut Vec<LedgerEvent>) -> Result<(), Refusal> {
        match op {
            LedgerOp::Open { account } => match self.accounts.get(account) {
                Some((_, true)) => Err("account_closed"),
                Some(_) => Ok(()),
                None => {
                    self.accounts.insert(account.clone(), (Balance::default(), false));
                    out.push(LedgerEvent::AccountOpened { account: account.clone(), at: now });
                    Ok(())
                }
            },
            LedgerOp::Close { account, reason } => {
                let Some((b, closed)) = self.accounts.get_mut(account) else { return Err("unknown_account") };
                if *closed {
                    return Ok(());
                }
                if let Some(e) = bad_reason(reason) {
                    return Err(e);
                }
                if b.debits_pending > 0 || b.credits_pending > 0 {
                    return Err("close_with_pending");
                }
                if !system(account) && b.credits_posted != b.debits_posted {
                    return Err("close_with_balance");
                }
                *closed = true;
                out.push(LedgerEvent::AccountClosed { account: account.clone(), reason: reason.clone(), at: now });
                Ok(())
            }
            LedgerOp::Transfer { transfer: s } => {
                if let Some(mt) = self.transfers.get(&s.id) {
                    let t = &mt.t;
                    return if matches!(t.kind, TransferKind::Reversal { .. })
                        || t.debit != s.debit
                        || t.credit != s.credit
                        || t.amount != s.amount
                        || t.kind != s.kind
                        || t.timeout_s != s.timeout_s
                    {
                        Err("exists_with_different")
                    } else {
                        Ok(())
                    };
                }
                if self.resolutions.contains_key(&s.id) {
                    return Err("exists_with_different");
                }
                if matches!(s.kind, TransferKind::Reversal { .. }) {
                    return Err("kind_not_allowed");
                }
                let t = Transfer {
                    id: s.id.clone(),
                    debit: s.debit.clone(),
                    credit: s.credit.clone(),
                    amount: s.amount,
                    kind: s.kind.clone(),
                    timeout_s: s.timeout_s,
                    at: now,
                };
                self.create(t, out)
            }
            LedgerOp::Post { id, pending } => {
                if self.transfers.contains_key(id) {
                    return Err("exists_with_different");
                }
                if let Some((p, res)) = self.resolutions.get(id) {
                    return if *res != MRes::Post || p != pending { Err("exists_with_different") } else { Ok(()) };
                }
                self.resolve(id, pending, None, now, out)
            }
            LedgerOp::Void { id, pending } => {
                if self.transfers.contains_key(id) {
                    return Err("exists_with_different");
                }
                if let Some((p, res)) = self.resolutions.get(id) {
                    return if *res != MRes::Void(None) || p != pending {
                        Err("exists_with_different")
                    } else {
                        Ok(())
                    };
                }
                self.resolve(id, pending, Some(None), now, out)
            }
            LedgerOp::Reverse { id, original, reason } => {
                if let Some(mt) = self.transfers.get(id) {
                    return match &mt.t.kind {
                        TransferKind::Reversal { original: o, reason: r } if o == original && r == reason => Ok(()),
                        _ => Err("exists_with_different"),
                    };
                }
                if let Some((p, res)) = self.resolutions.get(id) {
                    return match res {
                        MRes::Void(Some(r)) if p == original && r == reason => Ok(()),
                        _ => Err("exists_with_different"),
                    };
                }
                if id.as_str().starts_with("sc/") {
                    return Err("reserved_id");
                }
                if let Some(e) = bad_reason(reason) {
                    return Err(e);
                }
                let Some(mt) = self.transfers.get(original) else { return Err("original_not_found") };
                match &mt.state {
                    MState::Pending => self.resolve(id, original, Some(Some(reason.clone())), now, out),
                    MState::PendingVoided(..) => Err("pending_already_voided"),
                    MState::PendingExpired => Err("pending_expired"),
                    MState::Posted | MState::PendingPosted(_) => {
                        if matches!(mt.t.kind, TransferKind::Reversal { .. }) {
                            return Err("reverse_of_reversal");
                        }
                        if mt.reversed_by.is_some() {
                            return Err("already_reversed");
                        }
                        let t = Transfer {
                            id: id.clone(),
                            debit: mt.t.credit.clone(),
                            credit: mt.t.debit.clone(),
                            amount: mt.t.amount,
                            kind: TransferKind::Reversal { original: original.clone(), reason: reason.clone() },
                            timeout_s: None,
                            at: now,
                        };
                        self.create(t, out)?;
                        self.transfers.get_mut(original).expect("exists").reversed_by = Some(id.clone());
                        Ok(())
                    }
                }
            }
            other => panic!("the harness sends no {other:?}"),
        }
    }

    fn create(&mut self, t: Transfer, out: &mut Vec<LedgerEvent>) -> Result<(), Refusal> {
        let reserved = t.id.as_str().starts_with("sc/");
        if reserved && !matches!(t.kind, TransferKind::ServiceCredit { .. }) {
            return Err("reserved_id");
        }
        if t.amount == 0 {
            return Err("amount_zero");
        }
        if t.amount > MAX_AMOUNT {
            return Err("amount_too_large");
        }
        if let Some(s) = t.timeout_s
            && (s == 0 || s > MAX_TIMEOUT_S)
        {
            return Err("bad_timeout");
        }
        if t.debit == t.credit {
            return Err("same_account");
        }
        if t.debit.ledger() != t.credit.ledger() {
            return Err("ledger_mismatch");
        }
        if let TransferKind::Adjustment { reason } | TransferKind::Reversal { reason, .. } = &t.kind
            && let Some(e) = bad_reason(reason)
        {
            return Err(e);
        }
        if kind_allows(&t.kind, &t.debit, &t.credit).is_err() {
            return Err("account_not_allowed");
        }
        if let TransferKind::ServiceCredit { request } = &t.kind
            && service_credit_id(request, &t.credit) != t.id.as_str()
        {
            return Err("service_credit_id");
        }
        for a in [&t.debit, &t.credit] {
            match self.accounts.get(a) {
                None => return Err("unknown_account"),
                Some((_, true)) => return Err("account_closed"),
                Some(_) => {}
            }
        }
        let debit = &mut self.accounts.get_mut(&t.debit).expect("open").0;
        if !system(&t.debit) && available(debit) < i128::from(t.amount) {
            return Err("insufficient_balance");
        }
        let pending = t.timeout_s.is_some();
        if pending {
            debit.debits_pending += t.amount;
        } else {
            debit.debits_posted += t.amount;
        }
        let credit = &mut self.accounts.get_mut(&t.credit).expect("open").0;
        if pending {
            credit.credits_pending += t.amount;
        } else {
            credit.credits_posted += t.amount;
        }
        let seq = self.transfers.len();
        let state = if pending { MState::Pending } else { MState::Posted };
        self.transfers.insert(t.id.clone(), MTransfer { t: t.clone(), state, reversed_by: None, seq });
        out.push(LedgerEvent::Transferred { transfer: Arc::new(t) });
        Ok(())
    }

    /// A post (`void` None) or a void (with a reason for a reversal).
    fn resolve(
        &mut self,
        id: &TransferId,
        pending: &TransferId,
        void: Option<Option<String>>,
        now: DateTime<Utc>,
        out: &mut Vec<LedgerEvent>,
    ) -> Result<(), Refusal> {
        if id.as_str().starts_with("sc/") {
            return Err("reserved_id");
        }
        if let Some(Some(r)) = &void
            && let Some(e) = bad_reason(r)
        {
            return Err(e);
        }
        let Some(mt) = self.transfers.get_mut(pending) else { return Err("pending_not_found") };
        match mt.state {
            MState::Pending => {}
            MState::Posted => return Err("not_pending"),
            MState::PendingPosted(_) => return Err("pending_already_posted"),
            MState::PendingVoided(..) => return Err("pending_already_voided"),
            MState::PendingExpired => return Err("pending_expired"),
        }
        if now >= expires_at(&mt.t) {
            return Err("pending_expired");
        }
        let (d, c, amount) = (mt.t.debit.clone(), mt.t.credit.clone(), mt.t.amount);
        mt.state = match &void {
            None => MState::PendingPosted(id.clone()),
            Some(r) => MState::PendingVoided(id.clone(), r.clone()),
        };
        let post = void.is_none();
        let db = &mut self.accounts.get_mut(&d).expect("open").0;
        db.debits_pending -= amount;
        if post {
            db.debits_posted += amount;
        }
        let cb = &mut self.accounts.get_mut(&c).expect("open").0;
        cb.credits_pending -= amount;
        if post {
            cb.credits_posted += amount;
        }
        self.resolutions.insert(id.clone(), (pending.clone(), void.clone().map_or(MRes::Post, MRes::Void)));
        out.push(match void {
            None => LedgerEvent::Posted { id: id.clone(), pending: pending.clone(), at: now },
            Some(reason) => LedgerEvent::Voided { id: id.clone(), pending: pending.clone(), reason, at: now },
        });
        Ok(())
    }

    /// Redemption legs go together.
    fn pairs(&self, events: &[LedgerEvent]) -> Result<(), Refusal> {
        let partner = |id: &TransferId| match &self.transfers.get(id)?.t.kind {
            TransferKind::Redemption { partner } => Some(partner.clone()),
            _ => None,
        };
        let mut touched: Vec<(TransferId, u8, TransferId)> = Vec::new();
        for ev in events {
            let (leg, action) = match ev {
                LedgerEvent::Transferred { transfer } => match &transfer.kind {
                    TransferKind::Redemption { .. } => (transfer.id.clone(), 0),
                    TransferKind::Reversal { original, .. } => (original.clone(), 3),
                    _ => continue,
                },
                LedgerEvent::Posted { pending, .. } => (pending.clone(), 1),
                LedgerEvent::Voided { pending, .. } => (pending.clone(), 2),
                _ => continue,
            };
            if let Some(p) = partner(&leg) {
                touched.push((leg, action, p));
            }
        }
        for (leg, action, p) in &touched {
            if p == leg || !touched.iter().any(|(l2, a2, p2)| l2 == p && a2 == action && p2 == leg) {
                return Err("redemption_unpaired");
            }
            if *action == 0 {
                let (a, b) = (&self.transfers[leg].t, &self.transfers[p].t);
                let points = |t: &Transfer| {
                    matches!(
                        t.debit,
                        AccountId::VolunteerPoints(_)
                            | AccountId::TeamPoints(_)
                            | AccountId::PointsIssuance
                            | AccountId::Till(_)
                    )
                };
                if points(a) == points(b) || station(&a.credit) != station(&b.credit) || a.timeout_s != b.timeout_s {
                    return Err("redemption_unpaired");
                }
            }
        }
        Ok(())
    }

    /// The expiries due at `now`, in timeout order then creation order; applied.
    fn tick(&mut self, now: DateTime<Utc>) -> Vec<LedgerEvent> {
        let mut due: Vec<(DateTime<Utc>, usize, TransferId)> = self
            .transfers
            .values()
            .filter(|mt| mt.state == MState::Pending && expires_at(&mt.t) <= now)
            .map(|mt| (expires_at(&mt.t), mt.seq, mt.t.id.clone()))
            .collect();
        due.sort();
        let mut out = Vec::new();
        for (_, _, id) in due {
            let mt = self.transfers.get_mut(&id).expect("exists");
            mt.state = MState::PendingExpired;
            let (d, c, amount) = (mt.t.debit.clone(), mt.t.credit.clone(), mt.t.amount);
            self.accounts.get_mut(&d).expect("open").0.debits_pending -= amount;
            self.accounts.get_mut(&c).expect("open").0.credits_pending -= amount;
            out.push(LedgerEvent::Expired { pending: id, at: now });
        }
        out
    }
}

// ---------------------------------------------------------------------------
// The harness
// ---------------------------------------------------------------------------

struct Harness {
    ledger: Ledger,
    /// Fed every event through JSON, as a store would.
    replica: Ledger,
    model: Model,
    log: Vec<LedgerEvent>,
    now: DateTime<Utc>,
    accounts: Vec<AccountId>,
    /// Every command sent, for retries.
    sent: Vec<LedgerCommand>,
    /// Every id used, for targets and clashes.
    ids: Vec<TransferId>,
    redemptions: Vec<Redemption>,
    fresh: usize,
    /// Pending transfers resolved so far (invariant 20).
    resolved: BTreeSet<TransferId>,
    /// Minutes credited per (request, volunteer) by service credits (invariant 21).
    credited: BTreeMap<(RequestId, VolunteerId), u64>,
    /// The service being credited, and its minutes.
    service: Option<(RequestId, u64)>,
    /// The records as first made (invariant 19).
    made: BTreeMap<TransferId, Transfer>,
    /// Which refusal codes and events were seen, for the coverage test.
    seen: BTreeSet<&'static str>,
}

impl Harness {
    fn new() -> Self {
        let mut h = Harness {
            ledger: Ledger::new(),
            replica: Ledger::new(),
            model: Model::default(),
            log: Vec::new(),
            now: t0(),
            accounts: accounts(),
            sent: Vec::new(),
            ids: Vec::new(),
            redemptions: Vec::new(),
            fresh: 0,
            resolved: BTreeSet::new(),
            credited: BTreeMap::new(),
            service: None,
            made: BTreeMap::new(),
            seen: BTreeSet::new(),
        };
        let n = h.accounts.len() - 1;
        let prelude = LedgerCommand::open(h.accounts[..n].iter().cloned());
        if let Err(e) | Ok(Err(e)) = h.send(prelude).map(|r| r.map_err(|e| e.to_string())) {
            panic!("the prelude runs: {e}");
        }
        h
    }

    fn fresh_id(&mut self, prefix: &str) -> TransferId {
        self.fresh += 1;
        tid(&format!("{prefix}{}", self.fresh))
    }

    fn pick(&mut self, sel: IdSel, prefix: &str) -> TransferId {
        match sel {
            IdSel::Old(i) if !self.ids.is_empty() => self.ids[i % self.ids.len()].clone(),
            IdSel::Reserved => tid("sc/q-raw/vp/v0"),
            _ => self.fresh_id(prefix),
        }
    }

    fn target(&self, i: usize) -> TransferId {
        if self.ids.is_empty() { tid("nothing") } else { self.ids[i % self.ids.len()].clone() }
    }

    fn reason(r: Reason) -> String {
        match r {
            Reason::Ok => "correction".into(),
            Reason::Blank => " ".into(),
            Reason::Long => "x".repeat(MAX_REASON_LEN + 1),
        }
    }

    fn op(&mut self, op: &Op) -> Result<(), String> {
        match *op {
            Op::Open(a) => self.send(LedgerCommand::open([self.accounts[a].clone()])).map(drop),
            Op::Close(a, r) => self
                .send(LedgerCommand::new(vec![LedgerOp::Close {
                    account: self.accounts[a].clone(),
                    reason: Self::reason(r),
                }]))
                .map(drop),
            Op::Credit { request, minutes, volunteers, team: with_team, flags } => {
                let vols: Vec<VolunteerId> =
                    (0..VOLUNTEERS.len()).filter(|i| volunteers & (1 << i) != 0).map(vol).collect();
                let input = CreditInput {
                    request: RequestId::new(REQUESTS[request]).expect("id"),
                    minutes,
                    volunteers: vols,
                    team: with_team.then(team),
                    urgent: flags & 1 != 0,
                    night: flags & 2 != 0,
                    holiday: flags & 4 != 0,
                };
                let specs = service_credit(&CreditPolicy::default(), &input);
                self.service = Some((input.request.clone(), u64::from(minutes)));
                let sent = self.send(LedgerCommand::transfers(specs)).map(drop);
                self.service = None;
                sent
            }
            Op::Adjust { debit, credit, amount, reason, timeout, twice } => {
                let mut specs = Vec::new();
                for _ in 0..(1 + usize::from(twice)) {
                    specs.push(TransferSpec {
                        id: self.fresh_id("a"),
                        debit: self.accounts[debit].clone(),
                        credit: self.accounts[credit].clone(),
                        amount,
                        kind: TransferKind::Adjustment { reason: Self::reason(reason) },
                        timeout_s: timeout,
                    });
                }
                self.send(LedgerCommand::transfers(specs)).map(drop)
            }
            Op::Restock { shelf: s, amount } => {
                let (st, it) = SHELVES[s];
                let spec = TransferSpec {
                    id: self.fresh_id("r"),
                    debit: AccountId::StockReceipt { station: unit(st), item: item(it) },
                    credit: shelf(s),
                    amount,
                    kind: TransferKind::Restock {},
                    timeout_s: None,
                };
                self.send(LedgerCommand::transfer(spec)).map(drop)
            }
            Op::Redeem { volunteer, shelf: s, points, quantity, timeout } => {
                self.redeem(volunteer, s, points, quantity, timeout).map(drop)
            }
            Op::Race { shelf: s, volunteers: (a, b) } => {
                let left = self.ledger.balance(&shelf(s)).available();
                let Ok(quantity @ 1..) = u64::try_from(left) else { return Ok(()) };
                let first = self.redeem(a, s, 1, quantity, Some(300))?;
                let second = self.redeem(b, s, 1, quantity, Some(300))?;
                if first && second {
                    return Err(format!("two reservations of the last {quantity} on {} both succeeded", shelf(s)));
                }
                Ok(())
            }
            Op::Withdraw { volunteer, amount, timeout } => {
                let spec = TransferSpec {
                    id: self.fresh_id("w"),
                    debit: AccountId::VolunteerMinutes(vol(volunteer)),
                    credit: AccountId::MinutesSpent,
                    amount,
                    kind: TransferKind::Withdrawal { request: RequestId::new("q-family").expect("id") },
                    timeout_s: timeout,
                };
                self.send(LedgerCommand::transfer(spec)).map(drop)
            }
            Op::Move { from, to, amount } => {
                let spec = TransferSpec {
                    id: self.fresh_id("m"),
                    debit: shelf(from),
                    credit: shelf(to),
                    amount,
                    kind: TransferKind::StationTransfer {},
                    timeout_s: None,
                };
                self.send(LedgerCommand::transfer(spec)).map(drop)
            }
            Op::Raw { debit, credit, amount, kind, timeout, id } => {
                let (d, c, kind_idx) = (self.accounts[debit].clone(), self.accounts[credit].clone(), kind);
                // Not one of REQUESTS: these credits are not services the harness counts (invariant 21).
                let q = RequestId::new("q-raw").expect("id");
                let kind = match kind {
                    0 => TransferKind::ServiceCredit { request: q.clone() },
                    1 => TransferKind::Redemption { partner: self.target(debit) },
                    2 => TransferKind::Withdrawal { request: q.clone() },
                    3 => TransferKind::Restock {},
                    4 => TransferKind::StationTransfer {},
                    5 => TransferKind::Adjustment { reason: "raw".into() },
                    6 => TransferKind::Adjustment { reason: String::new() },
                    7 => TransferKind::Reversal { original: self.target(credit), reason: "raw".into() },
                    _ => TransferKind::ServiceCredit { request: q.clone() },
                };
                // Kind 0 is a service credit with its derived id (when the account can have one); kind 8
                // one with any id.
                let id = match (kind_idx, TransferId::service_credit(&q, &c)) {
                    (0, Some(derived)) if !matches!(id, IdSel::Old(_)) => derived,
                    _ => self.pick(id, "x"),
                };
                let spec = TransferSpec { id, debit: d, credit: c, amount, kind, timeout_s: timeout };
                self.send(LedgerCommand::transfer(spec)).map(drop)
            }
            Op::Post { target, id } => {
                let (pending, id) = (self.target(target), self.pick(id, "p"));
                self.send(LedgerCommand::new(vec![LedgerOp::Post { id, pending }])).map(drop)
            }
            Op::Void { target, id } => {
                let (pending, id) = (self.target(target), self.pick(id, "v"));
                self.send(LedgerCommand::new(vec![LedgerOp::Void { id, pending }])).map(drop)
            }
            Op::Reverse { target, id, reason } => {
                let (original, id) = (self.target(target), self.pick(id, "rv"));
                self.send(LedgerCommand::new(vec![LedgerOp::Reverse { id, original, reason: Self::reason(reason) }]))
                    .map(drop)
            }
            Op::Settle { redemption, action } => {
                if self.redemptions.is_empty() {
                    return Ok(());
                }
                let r = self.redemptions[redemption % self.redemptions.len()].clone();
                let id = self.fresh_id("st");
                let cmd = match action {
                    0 => r.post(&id),
                    1 => r.void(&id),
                    _ => r.reverse(&id, "returned"),
                }
                .expect("short ids");
                self.send(cmd).map(drop)
            }
            Op::Retry(i) => {
                let cmd = self.sent[i % self.sent.len()].clone();
                self.send(cmd).map(drop)
            }
            Op::RetryChanged(i, field) => {
                let mut cmd = self.sent[i % self.sent.len()].clone();
                let other = self.accounts[usize::from(field) % self.accounts.len()].clone();
                match cmd.ops.first_mut() {
                    Some(LedgerOp::Transfer { transfer: s }) => match field {
                        0 => s.amount += 1,
                        1 => s.timeout_s = if s.timeout_s.is_some() { None } else { Some(60) },
                        2 => s.debit = other,
                        3 => s.credit = other,
                        4 => s.kind = TransferKind::Adjustment { reason: "changed".into() },
                        _ => s.amount = s.amount.saturating_sub(1),
                    },
                    Some(LedgerOp::Post { pending, .. } | LedgerOp::Void { pending, .. }) => {
                        *pending = self.target(usize::from(field));
                    }
                    Some(LedgerOp::Reverse { reason, original, .. }) => {
                        if field % 2 == 0 {
                            reason.push('!');
                        } else {
                            *original = self.target(usize::from(field));
                        }
                    }
                    _ => return Ok(()),
                }
                self.send(cmd).map(drop)
            }
            Op::Advance { seconds } => {
                self.now += Duration::seconds(i64::from(seconds));
                self.tick()
            }
            Op::TooMany => {
                let cmd = LedgerCommand::open(std::iter::repeat_n(AccountId::PointsIssuance, MAX_OPS + 1));
                self.send(cmd).map(drop)
            }
        }
    }

    /// A redemption with a fresh id; whether it was accepted.
    fn redeem(
        &mut self,
        volunteer: usize,
        s: usize,
        points: u64,
        quantity: u64,
        timeout: Option<u32>,
    ) -> Result<bool, String> {
        let (st, it) = SHELVES[s];
        let r = Redemption {
            id: self.fresh_id("rd"),
            volunteer: vol(volunteer),
            station: unit(st),
            item: item(it),
            points,
            quantity,
            timeout_s: timeout,
        };
        let ok = self.send(r.command().expect("short ids"))?.is_ok();
        if ok {
            self.redemptions.push(r);
        }
        Ok(ok)
    }

    /// Sends one command to the ledger and the model and checks that they agree. The outer
    /// error is a broken property; the inner result is the ledger's answer.
    fn send(&mut self, cmd: LedgerCommand) -> Result<Result<Vec<LedgerEvent>, LedgerError>, String> {
        for op in &cmd.ops {
            match op {
                LedgerOp::Transfer { transfer } => self.ids.push(transfer.id.clone()),
                LedgerOp::Post { id, .. } | LedgerOp::Void { id, .. } | LedgerOp::Reverse { id, .. } => {
                    self.ids.push(id.clone());
                }
                _ => {}
            }
        }
        self.sent.push(cmd.clone());
        let before = self.ledger.digest();
        let got = self.ledger.execute(&cmd, self.now);
        let want = self.model.execute(&cmd, self.now);
        match (&got, &want) {
            (Ok(g), Ok(w)) if g == w => {}
            (Err(e), Err(code)) if e.code() == *code => {}
            _ => return Err(format!("ledger {got:?}\n  model {want:?}")),
        }
        match &got {
            Ok(events) => self.absorb(events)?,
            Err(e) => {
                self.seen.insert(e.code());
                if self.ledger.digest() != before {
                    return Err(format!("refused ({e}) but the ledger changed"));
                }
            }
        }
        self.check()?;
        Ok(got)
    }

    fn tick(&mut self) -> Result<(), String> {
        let want = self.model.tick(self.now);
        let got = self.ledger.execute_tick(self.now);
        if got != want {
            return Err(format!("tick at {}: ledger {got:?}\n  model {want:?}", self.now));
        }
        self.absorb(&got)?;
        self.check()
    }

    /// Logs events, feeds the replica through JSON, and checks each resolution is the first.
    fn absorb(&mut self, events: &[LedgerEvent]) -> Result<(), String> {
        for ev in events {
            self.seen.insert(ev.name());
            let json = serde_json::to_string(ev).map_err(|e| e.to_string())?;
            let back: LedgerEvent = serde_json::from_str(&json).map_err(|e| format!("{json}: {e}"))?;
            if back != *ev {
                return Err(format!("{json} does not round-trip"));
            }
            self.replica.apply(&back).map_err(|e| e.to_string())?;
            match ev {
                LedgerEvent::Posted { pending, at, .. }
                | LedgerEvent::Voided { pending, at, .. }
                | LedgerEvent::Expired { pending, at } => {
                    if !self.resolved.insert(pending.clone()) {
                        return Err(format!("{pending} resolved twice"));
                    }
                    let t = &self.made[pending];
                    let expires = expires_at(t);
                    if matches!(ev, LedgerEvent::Expired { .. }) != (*at >= expires) {
                        return Err(format!("{pending} (expiring {expires}) resolved by {} at {at}", ev.name()));
                    }
                }
                LedgerEvent::Transferred { transfer } => {
                    self.made.insert(transfer.id.clone(), Transfer::clone(transfer));
                    if let (TransferKind::ServiceCredit { request }, AccountId::VolunteerMinutes(v)) =
                        (&transfer.kind, &transfer.credit)
                        && REQUESTS.contains(&request.as_str())
                    {
                        // 21: the minutes of the service being credited, once per (request, volunteer).
                        match &self.service {
                            Some((r, minutes)) if r == request && *minutes == transfer.amount => {}
                            other => {
                                return Err(format!(
                                    "{} banks {}, the service is {other:?}",
                                    transfer.id, transfer.amount
                                ));
                            }
                        }
                        if self.credited.insert((request.clone(), v.clone()), transfer.amount).is_some() {
                            return Err(format!("{} credited twice", transfer.id));
                        }
                    }
                }
                _ => {}
            }
            self.log.push(ev.clone());
        }
        Ok(())
    }

    /// The invariants, after every step.
    fn check(&self) -> Result<(), String> {
        let l = &self.ledger;
        l.check().map_err(|e| e.to_string())?;
        if self.replica.digest() != l.digest() {
            return Err("the replica fed through JSON differs from the live ledger".into());
        }
        // The model's balances and account states.
        if l.accounts().len() != self.model.accounts.len() {
            return Err(format!("{} accounts, the model has {}", l.accounts().len(), self.model.accounts.len()));
        }
        let mut sums: BTreeMap<String, [u128; 4]> = BTreeMap::new();
        for (id, (b, closed)) in &self.model.accounts {
            let a = l.account(id).ok_or_else(|| format!("{id} missing"))?;
            if a.balance != *b || a.closed != *closed {
                return Err(format!("{id}: ledger {:?} closed {}, model {b:?} closed {closed}", a.balance, a.closed));
            }
            // 18: nothing but system accounts below zero, counting pending.
            if !system(id) && available(b) < 0 {
                return Err(format!("{id} below zero: {b:?}"));
            }
            let s = sums.entry(id.ledger().to_string()).or_default();
            for (acc, v) in s.iter_mut().zip([b.debits_pending, b.debits_posted, b.credits_pending, b.credits_posted]) {
                *acc += u128::from(v);
            }
        }
        // 17: double entry per ledger.
        for (ledger, [dp, dpo, cp, cpo]) in sums {
            if dp != cp || dpo != cpo {
                return Err(format!("ledger {ledger}: debits {dp}/{dpo} vs credits {cp}/{cpo}"));
            }
        }
        if l.transfers_in_memory() != self.model.transfers.len() {
            return Err(format!("{} transfers, the model has {}", l.transfers_in_memory(), self.model.transfers.len()));
        }
        for (id, mt) in &self.model.transfers {
            let rec = l.transfer(id).ok_or_else(|| format!("{id} missing"))?;
            let state = match &mt.state {
                MState::Posted => TransferState::Posted,
                MState::Pending => TransferState::Pending,
                MState::PendingPosted(by) => TransferState::PendingPosted { by: by.clone() },
                MState::PendingVoided(by, reason) => {
                    TransferState::PendingVoided { by: by.clone(), reason: reason.clone() }
                }
                MState::PendingExpired => TransferState::PendingExpired,
            };
            let want = TransferRecord { transfer: Arc::new(mt.t.clone()), state, reversed_by: mt.reversed_by.clone() };
            if *rec != want {
                return Err(format!("{id}: ledger {rec:?}\n  model {want:?}"));
            }
            // 19: the record is the one first made.
            if self.made.get(id) != Some(&*rec.transfer) {
                return Err(format!("{id} changed since it was made"));
            }
        }
        // 21: banked minutes from service = minutes of the services credited, once per request.
        let mut banked: BTreeMap<VolunteerId, u64> = BTreeMap::new();
        for rec in l.transfers() {
            if let (TransferKind::ServiceCredit { request }, AccountId::VolunteerMinutes(v)) =
                (&rec.transfer.kind, &rec.transfer.credit)
                && REQUESTS.contains(&request.as_str())
            {
                *banked.entry(v.clone()).or_default() += rec.transfer.amount;
            }
        }
        let mut served: BTreeMap<VolunteerId, u64> = BTreeMap::new();
        for ((_, v), m) in &self.credited {
            *served.entry(v.clone()).or_default() += m;
        }
        if banked != served {
            return Err(format!("banked {banked:?}, served {served:?}"));
        }
        Ok(())
    }

    /// The end of a case: the whole log replayed into a fresh ledger, and the plain fold.
    fn finish(&self) -> Result<(), String> {
        let replayed = Ledger::replay(&self.log).map_err(|e| e.to_string())?;
        if replayed.digest() != self.ledger.digest() {
            return Err("the replayed log differs from the live ledger".into());
        }
        let folded = Ledger::recompute_from(&self.log);
        for a in self.ledger.accounts() {
            if folded.get(&a.id) != Some(&a.balance) {
                return Err(format!("{}: balance {:?}, the log folds to {:?}", a.id, a.balance, folded.get(&a.id)));
            }
        }
        Ok(())
    }
}

fn run(ops: &[Op]) -> (Harness, Result<(), String>) {
    let mut h = Harness::new();
    for (i, op) in ops.iter().enumerate() {
        if let Err(e) = h.op(op) {
            return (h, Err(format!("op #{i} {op:?}:\n  {e}")));
        }
    }
    let end = h.finish().map_err(|e| format!("at the end: {e}"));
    (h, end)
}

fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|s| s.parse().ok()).unwrap_or(256);
    ProptestConfig {
        cases,
        // Failing seeds are kept next to this file, in ledger_model.proptest-regressions, and replayed first.
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource("proptest-regressions"))),
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn ledger_follows_the_model(ops in vec(op(), 1..=150)) {
        let (first, outcome) = run(&ops);
        outcome.map_err(TestCaseError::fail)?;
        // The same operations give a byte-identical log.
        let (second, outcome) = run(&ops);
        outcome.map_err(TestCaseError::fail)?;
        let a = serde_json::to_string(&first.log).expect("the log serialises");
        let b = serde_json::to_string(&second.log).expect("the log serialises");
        prop_assert!(a == b, "two runs of the same operations gave different logs");
    }
}

/// The generator is not vacuous: random runs reach every event and every refusal the ledger can
/// give to a command (all but an overflow, which needs 2^64 points, and the replay-only errors).
#[test]
fn ledger_random_runs_reach_every_event_and_refusal() {
    let mut runner = TestRunner::deterministic();
    let strategy = vec(op(), 100..=150);
    let mut seen = BTreeSet::new();
    for _ in 0..64 {
        let ops = strategy.new_tree(&mut runner).expect("a case").current();
        let (h, _) = run(&ops);
        seen.extend(h.seen);
    }
    let all = [
        "account_opened",
        "account_closed",
        "transferred",
        "posted",
        "voided",
        "expired",
        "too_many_ops",
        "reserved_id",
        "amount_zero",
        "amount_too_large",
        "bad_timeout",
        "same_account",
        "ledger_mismatch",
        "kind_not_allowed",
        "account_not_allowed",
        "service_credit_id",
        "reason_missing",
        "text_too_long",
        "unknown_account",
        "account_closed",
        "close_with_pending",
        "close_with_balance",
        "insufficient_balance",
        "exists_with_different",
        "pending_not_found",
        "not_pending",
        "pending_already_posted",
        "pending_already_voided",
        "pending_expired",
        "original_not_found",
        "reverse_of_reversal",
        "already_reversed",
        "redemption_unpaired",
    ];
    let missing: Vec<&str> = all.iter().copied().filter(|k| !seen.contains(k)).collect();
    assert!(missing.is_empty(), "never reached: {missing:?}");
}

/// Two reservations of the last bag of rice: exactly one wins, whichever comes first; the
/// other wins once the first expires.
#[test]
fn ledger_gives_the_last_item_to_exactly_one_reservation() {
    let ops = [
        Op::Credit { request: 0, minutes: 60, volunteers: 0b011, team: false, flags: 0 },
        Op::Restock { shelf: 0, amount: 1 },
        Op::Race { shelf: 0, volunteers: (0, 1) },
        Op::Advance { seconds: 700 },
        Op::Race { shelf: 0, volunteers: (1, 0) },
        Op::Settle { redemption: 1, action: 0 },
    ];
    let (h, outcome) = run(&ops);
    outcome.expect("the model agrees");
    assert_eq!(h.redemptions.len(), 2, "one reservation per race");
    assert_eq!(h.ledger.balance(&shelf(0)).available(), 0);
    let consumed = AccountId::StockConsumed { station: unit("s0"), item: item("rice") };
    assert_eq!(h.ledger.balance(&consumed).posted(), 1);
}

//! Accounts, transfers, operations and events of the ledger.

use std::fmt;
use std::sync::Arc;

use borsh::{BorshDeserialize, BorshSerialize};
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::id::{RequestId, UnitId, VolunteerId};
pub use crate::ledger::ids::*;
/// An account's four running totals (TigerBeetle's model). What the account holds is
/// `credits_posted − debits_posted`; what can still be debited from it is that less
/// `debits_pending`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Balance {
    /// Reserved by pending transfers debiting the account.
    pub debits_pending: u64,
    /// Debited by posted transfers.
    pub debits_posted: u64,
    /// Reserved by pending transfers crediting the account (not yet spendable).
    pub credits_pending: u64,
    /// Credited by posted transfers.
    pub credits_posted: u64,
}

impl Balance {
    /// `credits_posted − debits_posted`: what the account holds (negative only for system accounts).
    pub fn posted(&self) -> i128 {
        i128::from(self.credits_posted) - i128::from(self.debits_posted)
    }

    /// `credits_posted − debits_posted − debits_pending`: what can still be debited.
    pub fn available(&self) -> i128 {
        self.posted() - i128::from(self.debits_pending)
    }
}

/// An account as the ledger keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Account {
    /// Its id.
    pub id: AccountId,
    /// Its totals.
    pub balance: Balance,
    /// A system account (may go below zero); fixed by the kind of account when it is opened.
    pub system: bool,
    /// Closed: no new transfer may touch it.
    pub closed: bool,
}

/// What a transfer is for. The kind fixes which accounts it may debit and credit (see
/// docs/ledger.md); a reversal is made only by [`LedgerOp::Reverse`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, BorshSerialize, BorshDeserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
#[non_exhaustive]
pub enum TransferKind {
    /// Hours or points for service on a request: issuance → a volunteer's or the team's account.
    /// Its id must be [`TransferId::service_credit`] of the request and the credited account.
    ServiceCredit {
        /// The request served.
        request: RequestId,
    },
    /// One leg of a love-supermarket redemption: points volunteer → till, or goods shelf →
    /// consumed. The two legs are created, posted, voided and reversed together, in one command.
    Redemption {
        /// The other leg.
        partner: TransferId,
    },
    /// Banked minutes spent on a service for the volunteer or the family: volunteer minutes → spent.
    Withdrawal {
        /// The request the minutes pay for.
        request: RequestId,
    },
    /// Goods received by a station: receipt → shelf of the same station.
    Restock {},
    /// Records moved between stations: a shelf to another station's shelf of the same item, or a
    /// till to another station's till.
    StationTransfer {},
    /// An administrator's correction between any two accounts of one ledger.
    Adjustment {
        /// Why (required, at most [`MAX_REASON_LEN`] bytes).
        reason: String,
    },
    /// The reversal of a posted transfer: its accounts swapped, its amount; made by
    /// [`LedgerOp::Reverse`], never submitted as a transfer.
    Reversal {
        /// The transfer reversed.
        original: TransferId,
        /// Why (required, at most [`MAX_REASON_LEN`] bytes).
        reason: String,
    },
}

impl TransferKind {
    /// The kind's name, as in its serialised `type`.
    pub fn name(&self) -> &'static str {
        self.kind_name().as_str()
    }

    /// The kind without its data.
    pub fn kind_name(&self) -> TransferKindName {
        match self {
            TransferKind::ServiceCredit { .. } => TransferKindName::ServiceCredit,
            TransferKind::Redemption { .. } => TransferKindName::Redemption,
            TransferKind::Withdrawal { .. } => TransferKindName::Withdrawal,
            TransferKind::Restock {} => TransferKindName::Restock,
            TransferKind::StationTransfer {} => TransferKindName::StationTransfer,
            TransferKind::Adjustment { .. } => TransferKindName::Adjustment,
            TransferKind::Reversal { .. } => TransferKindName::Reversal,
        }
    }
}

/// A [`TransferKind`] without its data, as errors name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, BorshSerialize, BorshDeserialize)]
#[serde(rename_all = "snake_case")]
#[allow(missing_docs)]
pub enum TransferKindName {
    ServiceCredit,
    Redemption,
    Withdrawal,
    Restock,
    StationTransfer,
    Adjustment,
    Reversal,
}

impl TransferKindName {
    /// The name, as in a transfer kind's serialised `type`.
    pub fn as_str(self) -> &'static str {
        match self {
            TransferKindName::ServiceCredit => "service_credit",
            TransferKindName::Redemption => "redemption",
            TransferKindName::Withdrawal => "withdrawal",
            TransferKindName::Restock => "restock",
            TransferKindName::StationTransfer => "station_transfer",
            TransferKindName::Adjustment => "adjustment",
            TransferKindName::Reversal => "reversal",
        }
    }
}

impl fmt::Display for TransferKindName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A transfer as asked for: one amount from a debit account to a credit account of the same
/// ledger. With a `timeout_s` it is pending (a reservation) until posted, voided or expired.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransferSpec {
    /// The idempotency key.
    pub id: TransferId,
    /// The account debited.
    pub debit: AccountId,
    /// The account credited.
    pub credit: AccountId,
    /// How much, in the ledger's unit (points, minutes, items): 1..=[`MAX_AMOUNT`].
    pub amount: u64,
    /// What for.
    pub kind: TransferKind,
    /// Pending, expiring this many seconds after it is made (1..=[`MAX_TIMEOUT_S`]); posted at once if absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_s: Option<u32>,
}

/// A transfer as recorded: the spec and when it was made. Never changed once recorded.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, BorshSerialize, BorshDeserialize)]
#[serde(deny_unknown_fields)]
pub struct Transfer {
    /// The idempotency key.
    pub id: TransferId,
    /// The account debited.
    pub debit: AccountId,
    /// The account credited.
    pub credit: AccountId,
    /// How much.
    pub amount: u64,
    /// What for.
    pub kind: TransferKind,
    /// Pending for this many seconds, if two-phase.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_s: Option<u32>,
    /// When it was made (the `now` of its command).
    #[borsh(serialize_with = "crate::binary::at::serialize", deserialize_with = "crate::binary::at::deserialize")]
    pub at: DateTime<Utc>,
}

impl Transfer {
    /// The record of `spec` made at `at`.
    pub fn from_spec(spec: &TransferSpec, at: DateTime<Utc>) -> Self {
        Transfer {
            id: spec.id.clone(),
            debit: spec.debit.clone(),
            credit: spec.credit.clone(),
            amount: spec.amount,
            kind: spec.kind.clone(),
            timeout_s: spec.timeout_s,
            at,
        }
    }

    /// The ledger it moves within.
    pub fn ledger(&self) -> LedgerId {
        self.debit.ledger()
    }

    /// When a pending transfer expires: it can be posted or voided only before this instant.
    /// `None` for a single-phase transfer, or past the end of time.
    pub fn expires_at(&self) -> Option<DateTime<Utc>> {
        self.timeout_s.and_then(|t| self.at.checked_add_signed(Duration::seconds(i64::from(t))))
    }
}

/// Where a transfer stands.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case", deny_unknown_fields)]
pub enum TransferState {
    /// Single-phase: posted when made.
    Posted,
    /// A reservation waiting to be posted or voided.
    Pending,
    /// A reservation that was posted.
    PendingPosted {
        /// The post's id.
        by: TransferId,
    },
    /// A reservation that was voided (by a void, or by the reversal of a pending transfer).
    PendingVoided {
        /// The void's (or reversal's) id.
        by: TransferId,
        /// The reason, for a reversal.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// A reservation whose timeout passed; nothing moved.
    PendingExpired,
}

impl TransferState {
    /// Whether the transfer's amount is posted (single-phase, or pending then posted).
    pub fn is_posted(&self) -> bool {
        matches!(self, TransferState::Posted | TransferState::PendingPosted { .. })
    }
}

/// A transfer with where it stands.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TransferRecord {
    /// The transfer, as made (shared with the event that made it).
    pub transfer: Arc<Transfer>,
    /// Posted, pending, or how the reservation ended.
    pub state: TransferState,
    /// The reversal of a posted transfer, if it has one.
    pub reversed_by: Option<TransferId>,
}

/// One operation of a command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
#[non_exhaustive]
pub enum LedgerOp {
    /// Open an account (a no-op if it is open; an error if it was closed).
    Open {
        /// The account.
        account: AccountId,
    },
    /// Close an account: no pending transfer may touch it and, unless it is a system account, it
    /// must hold nothing. A no-op if it is closed.
    Close {
        /// The account.
        account: AccountId,
        /// Why (required).
        reason: String,
    },
    /// Make a transfer, posted or pending.
    Transfer {
        /// The transfer.
        transfer: TransferSpec,
    },
    /// Post a pending transfer in full.
    Post {
        /// This post's idempotency key.
        id: TransferId,
        /// The pending transfer.
        pending: TransferId,
    },
    /// Void a pending transfer: its reservation is released.
    Void {
        /// This void's idempotency key.
        id: TransferId,
        /// The pending transfer.
        pending: TransferId,
    },
    /// Reverse a transfer: a posted one by a new, linked transfer the other way (at most once,
    /// never a reversal); a pending one by voiding it.
    Reverse {
        /// The reversal's idempotency key.
        id: TransferId,
        /// The transfer reversed.
        original: TransferId,
        /// Why (required).
        reason: String,
    },
}

/// A command: operations applied together, every one or none (a linked chain).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct LedgerCommand {
    /// The operations, in order; each sees the effects of those before it.
    pub ops: Vec<LedgerOp>,
}

impl LedgerCommand {
    /// A command of these operations.
    pub fn new(ops: Vec<LedgerOp>) -> Self {
        Self { ops }
    }

    /// A command of one transfer.
    pub fn transfer(spec: TransferSpec) -> Self {
        Self { ops: vec![LedgerOp::Transfer { transfer: spec }] }
    }

    /// A command of transfers linked together.
    pub fn transfers(specs: impl IntoIterator<Item = TransferSpec>) -> Self {
        Self { ops: specs.into_iter().map(|transfer| LedgerOp::Transfer { transfer }).collect() }
    }

    /// A command opening these accounts (each a no-op if already open).
    pub fn open(accounts: impl IntoIterator<Item = AccountId>) -> Self {
        Self { ops: accounts.into_iter().map(|account| LedgerOp::Open { account }).collect() }
    }
}

/// What happened to the ledger: the only thing the log stores.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, BorshSerialize, BorshDeserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
#[non_exhaustive]
pub enum LedgerEvent {
    /// An account was opened, with a zero balance.
    AccountOpened {
        /// The account.
        account: AccountId,
        /// When.
        #[borsh(serialize_with = "crate::binary::at::serialize", deserialize_with = "crate::binary::at::deserialize")]
        at: DateTime<Utc>,
    },
    /// An account was closed.
    AccountClosed {
        /// The account.
        account: AccountId,
        /// Why.
        reason: String,
        /// When.
        #[borsh(serialize_with = "crate::binary::at::serialize", deserialize_with = "crate::binary::at::deserialize")]
        at: DateTime<Utc>,
    },
    /// A transfer was made (posted, or pending).
    Transferred {
        /// The transfer (shared with the ledger's record of it).
        transfer: Arc<Transfer>,
    },
    /// A pending transfer was posted.
    Posted {
        /// The post's id.
        id: TransferId,
        /// The pending transfer.
        pending: TransferId,
        /// When.
        #[borsh(serialize_with = "crate::binary::at::serialize", deserialize_with = "crate::binary::at::deserialize")]
        at: DateTime<Utc>,
    },
    /// A pending transfer was voided: by a void, or by a reversal (which gives a reason).
    Voided {
        /// The void's (or reversal's) id.
        id: TransferId,
        /// The pending transfer.
        pending: TransferId,
        /// The reversal's reason.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
        /// When.
        #[borsh(serialize_with = "crate::binary::at::serialize", deserialize_with = "crate::binary::at::deserialize")]
        at: DateTime<Utc>,
    },
    /// A pending transfer's timeout passed; its reservation is released.
    Expired {
        /// The pending transfer.
        pending: TransferId,
        /// When the expiry was observed (at or after the transfer's expiry time).
        #[borsh(serialize_with = "crate::binary::at::serialize", deserialize_with = "crate::binary::at::deserialize")]
        at: DateTime<Utc>,
    },
    /// Settled transfers made (and whose reservations could last expire) at or before `before`
    /// left memory, each with everything linked to it (its reversal or original, its redemption
    /// partner); balances are unchanged, the ids are forgotten (no retry, no reversal of them).
    /// Nothing moves: the log keeps every transfer.
    Retired {
        /// The transfers settled at or before this instant.
        #[borsh(serialize_with = "crate::binary::at::serialize", deserialize_with = "crate::binary::at::deserialize")]
        before: DateTime<Utc>,
        /// When.
        #[borsh(serialize_with = "crate::binary::at::serialize", deserialize_with = "crate::binary::at::deserialize")]
        at: DateTime<Utc>,
    },
}

impl LedgerEvent {
    /// The event's name, as in its serialised `type`.
    pub fn name(&self) -> &'static str {
        match self {
            LedgerEvent::AccountOpened { .. } => "account_opened",
            LedgerEvent::AccountClosed { .. } => "account_closed",
            LedgerEvent::Transferred { .. } => "transferred",
            LedgerEvent::Posted { .. } => "posted",
            LedgerEvent::Voided { .. } => "voided",
            LedgerEvent::Expired { .. } => "expired",
            LedgerEvent::Retired { .. } => "retired",
        }
    }
}

/// A love-supermarket redemption (爱心超市兑换): `points` from the volunteer to the station's till
/// and `quantity` units of the item from the station's shelf to its consumption account, as two
/// linked transfers `<id>/points` and `<id>/goods`. With a `timeout_s` both are reservations
/// (the goods are set aside for pick-up), posted or voided together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redemption {
    /// The redemption's id; the legs are `<id>/points` and `<id>/goods`.
    pub id: TransferId,
    /// Who redeems.
    pub volunteer: VolunteerId,
    /// The station whose supermarket hands the goods out.
    pub station: UnitId,
    /// The item.
    pub item: ItemId,
    /// The price, in points.
    pub points: u64,
    /// How many units.
    pub quantity: u64,
    /// Pick-up timeout, for a reservation.
    pub timeout_s: Option<u32>,
}

impl Redemption {
    fn leg_ids(&self) -> Result<(TransferId, TransferId), TransferIdError> {
        Ok((self.id.with_suffix("points")?, self.id.with_suffix("goods")?))
    }

    /// The two legs, points first.
    ///
    /// # Errors
    /// The id is too long for the legs' suffixes.
    pub fn transfers(&self) -> Result<[TransferSpec; 2], TransferIdError> {
        let (p, g) = self.leg_ids()?;
        Ok([
            TransferSpec {
                id: p.clone(),
                debit: AccountId::VolunteerPoints(self.volunteer.clone()),
                credit: AccountId::Till(self.station.clone()),
                amount: self.points,
                kind: TransferKind::Redemption { partner: g.clone() },
                timeout_s: self.timeout_s,
            },
            TransferSpec {
                id: g,
                debit: AccountId::Shelf { station: self.station.clone(), item: self.item.clone() },
                credit: AccountId::StockConsumed { station: self.station.clone(), item: self.item.clone() },
                amount: self.quantity,
                kind: TransferKind::Redemption { partner: p },
                timeout_s: self.timeout_s,
            },
        ])
    }

    /// The command making the redemption.
    ///
    /// # Errors
    /// The id is too long for the legs' suffixes.
    pub fn command(&self) -> Result<LedgerCommand, TransferIdError> {
        Ok(LedgerCommand::transfers(self.transfers()?))
    }

    /// The command posting a reserved redemption (the goods were picked up); the posts are `<id>/points` and
    /// `<id>/goods` of `id`.
    ///
    /// # Errors
    /// An id is too long for the suffixes.
    pub fn post(&self, id: &TransferId) -> Result<LedgerCommand, TransferIdError> {
        let (p, g) = self.leg_ids()?;
        Ok(LedgerCommand::new(vec![
            LedgerOp::Post { id: id.with_suffix("points")?, pending: p },
            LedgerOp::Post { id: id.with_suffix("goods")?, pending: g },
        ]))
    }

    /// The command voiding a reserved redemption (not picked up; the goods go back on the shelf).
    ///
    /// # Errors
    /// An id is too long for the suffixes.
    pub fn void(&self, id: &TransferId) -> Result<LedgerCommand, TransferIdError> {
        let (p, g) = self.leg_ids()?;
        Ok(LedgerCommand::new(vec![
            LedgerOp::Void { id: id.with_suffix("points")?, pending: p },
            LedgerOp::Void { id: id.with_suffix("goods")?, pending: g },
        ]))
    }

    /// The command reversing a redemption (goods returned, points refunded).
    ///
    /// # Errors
    /// An id is too long for the suffixes.
    pub fn reverse(&self, id: &TransferId, reason: &str) -> Result<LedgerCommand, TransferIdError> {
        let (p, g) = self.leg_ids()?;
        Ok(LedgerCommand::new(vec![
            LedgerOp::Reverse { id: id.with_suffix("points")?, original: p, reason: reason.to_owned() },
            LedgerOp::Reverse { id: id.with_suffix("goods")?, original: g, reason: reason.to_owned() },
        ]))
    }
}

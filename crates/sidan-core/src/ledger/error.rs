//! Why the ledger refuses a command, and why an event does not apply.

use std::fmt;

use borsh::{BorshDeserialize, BorshSerialize};
use chrono::{DateTime, Utc};

use serde::{Deserialize, Serialize};

use crate::ledger::{
    AccountId, LedgerId, MAX_AMOUNT, MAX_OPS, MAX_REASON_LEN, MAX_TIMEOUT_S, TransferId, TransferKindName,
};

/// A side of a transfer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, BorshSerialize, BorshDeserialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    /// The account debited.
    Debit,
    /// The account credited.
    Credit,
}

impl fmt::Display for Side {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Side::Debit => "debit",
            Side::Credit => "credit",
        })
    }
}

/// What a reason or a text belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, BorshSerialize, BorshDeserialize)]
#[serde(rename_all = "snake_case")]
pub enum Subject {
    /// A transfer, post, void or reversal.
    Transfer(TransferId),
    /// An account (a closing).
    Account(AccountId),
}

impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Subject::Transfer(t) => write!(f, "transfer {t}"),
            Subject::Account(a) => write!(f, "account {a}"),
        }
    }
}

/// The part of an operation that differs from what an id already names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, BorshSerialize, BorshDeserialize)]
#[serde(rename_all = "snake_case")]
pub enum TransferField {
    /// The id names another kind of operation (a transfer, a post, a void, a reversal).
    Operation,
    /// The debit account.
    Debit,
    /// The credit account.
    Credit,
    /// The amount.
    Amount,
    /// The kind (or its cause, partner or reason).
    Kind,
    /// The timeout (pending or not, and for how long).
    Timeout,
    /// The pending transfer posted or voided.
    Pending,
    /// The transfer reversed.
    Original,
    /// The reversal's reason.
    Reason,
}

impl fmt::Display for TransferField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TransferField::Operation => "operation",
            TransferField::Debit => "debit",
            TransferField::Credit => "credit",
            TransferField::Amount => "amount",
            TransferField::Kind => "kind",
            TransferField::Timeout => "timeout_s",
            TransferField::Pending => "pending",
            TransferField::Original => "original",
            TransferField::Reason => "reason",
        })
    }
}

/// Why the ledger refuses a command (nothing changes), or why an event does not fit the state.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize, BorshSerialize, BorshDeserialize)]
#[serde(tag = "code", rename_all = "snake_case", deny_unknown_fields)]
#[non_exhaustive]
pub enum LedgerError {
    /// The command holds more than [`MAX_OPS`] operations.
    #[error("{ops} operations in one command, at most {MAX_OPS} are allowed")]
    TooManyOps {
        /// How many it holds.
        ops: usize,
    },
    /// An id of the form reserved for service credits on anything else.
    #[error("{id}: ids starting with sc/ are reserved for service credits")]
    ReservedId {
        /// The id.
        id: TransferId,
    },
    /// A transfer of nothing.
    #[error("transfer {transfer}: the amount must be at least 1")]
    AmountZero {
        /// The transfer.
        transfer: TransferId,
    },
    /// A transfer of more than [`MAX_AMOUNT`].
    #[error("transfer {transfer}: amount {amount} is over the limit of {MAX_AMOUNT}")]
    AmountTooLarge {
        /// The transfer.
        transfer: TransferId,
        /// The amount asked.
        amount: u64,
    },
    /// A pending transfer's timeout outside 1..=[`MAX_TIMEOUT_S`] seconds.
    #[error("transfer {transfer}: timeout {timeout_s} s is not in 1..={MAX_TIMEOUT_S}")]
    BadTimeout {
        /// The transfer.
        transfer: TransferId,
        /// The timeout asked.
        timeout_s: u32,
    },
    /// The debit and the credit account are the same.
    #[error("transfer {transfer}: debits and credits the same account {account}")]
    SameAccount {
        /// The transfer.
        transfer: TransferId,
        /// The account.
        account: AccountId,
    },
    /// The two accounts are kept in different ledgers.
    #[error("transfer {transfer}: the debit account is on ledger {debit}, the credit account on {credit}")]
    LedgerMismatch {
        /// The transfer.
        transfer: TransferId,
        /// The debit account's ledger.
        debit: LedgerId,
        /// The credit account's ledger.
        credit: LedgerId,
    },
    /// A kind of transfer that cannot be asked for directly (a reversal: use the reverse operation).
    #[error("transfer {transfer}: a {kind} is made by its own operation, not submitted as a transfer")]
    KindNotAllowed {
        /// The transfer.
        transfer: TransferId,
        /// The kind.
        kind: TransferKindName,
    },
    /// The kind of transfer may not touch this account on this side.
    #[error("transfer {transfer}: a {kind} may not {side} {account}")]
    AccountNotAllowed {
        /// The transfer.
        transfer: TransferId,
        /// The kind.
        kind: TransferKindName,
        /// Which side.
        side: Side,
        /// The account.
        account: AccountId,
    },
    /// A service credit whose id is not the one derived from its request and account.
    #[error("transfer {transfer}: a service credit for this request and account must have the id {expected}")]
    ServiceCreditId {
        /// The transfer.
        transfer: TransferId,
        /// The id it must have.
        expected: TransferId,
    },
    /// An adjustment, reversal or closing without a reason.
    #[error("{subject}: a reason is required")]
    ReasonMissing {
        /// What lacks a reason.
        subject: Subject,
    },
    /// A reason longer than [`MAX_REASON_LEN`] bytes.
    #[error("{subject}: the reason is {len} bytes, at most {MAX_REASON_LEN} are allowed")]
    TextTooLong {
        /// What the text belongs to.
        subject: Subject,
        /// Its length in bytes.
        len: usize,
    },
    /// The account was never opened.
    #[error("account {account} is not open")]
    UnknownAccount {
        /// The account.
        account: AccountId,
    },
    /// The account is closed.
    #[error("account {account} is closed")]
    AccountClosed {
        /// The account.
        account: AccountId,
    },
    /// A closing while pending transfers touch the account.
    #[error("account {account} cannot be closed: pending transfers touch it")]
    CloseWithPending {
        /// The account.
        account: AccountId,
    },
    /// A closing of a non-system account that still holds something.
    #[error("account {account} cannot be closed: it holds {held}")]
    CloseWithBalance {
        /// The account.
        account: AccountId,
        /// What it holds (credits posted − debits posted).
        held: i128,
    },
    /// The debit would take a non-system account below zero, counting pending reservations.
    #[error("transfer {transfer}: account {account} has {available} available, {asked} asked")]
    InsufficientBalance {
        /// The transfer.
        transfer: TransferId,
        /// The account.
        account: AccountId,
        /// What it could give: credits posted − debits posted − debits pending.
        available: u64,
        /// The amount asked.
        asked: u64,
    },
    /// A total of the account would pass `u64::MAX`.
    #[error("transfer {transfer}: a total of account {account} would overflow")]
    Overflow {
        /// The transfer.
        transfer: TransferId,
        /// The account.
        account: AccountId,
    },
    /// The id is taken by an operation with other content (the retry is not the same request).
    #[error("{id} exists with a different {field}")]
    ExistsWithDifferent {
        /// The id.
        id: TransferId,
        /// The first field that differs.
        field: TransferField,
    },
    /// A post or void of an id that names no transfer.
    #[error("{pending}: no such transfer to post or void")]
    PendingNotFound {
        /// The id asked for.
        pending: TransferId,
    },
    /// A post or void of a single-phase transfer.
    #[error("{pending} is not a pending transfer")]
    NotPending {
        /// The transfer.
        pending: TransferId,
    },
    /// A post, void or reversal of a pending transfer that was posted.
    #[error("{pending} was already posted by {by}")]
    PendingAlreadyPosted {
        /// The pending transfer.
        pending: TransferId,
        /// The post.
        by: TransferId,
    },
    /// A post, void or reversal of a pending transfer that was voided.
    #[error("{pending} was already voided by {by}")]
    PendingAlreadyVoided {
        /// The pending transfer.
        pending: TransferId,
        /// The void (or reversal).
        by: TransferId,
    },
    /// A post, void or reversal of a pending transfer at or after its expiry.
    #[error("{pending} expired at {expires_at}")]
    PendingExpired {
        /// The pending transfer.
        pending: TransferId,
        /// When it expired.
        #[borsh(serialize_with = "crate::binary::at::serialize", deserialize_with = "crate::binary::at::deserialize")]
        expires_at: DateTime<Utc>,
    },
    /// A reversal of an id that names no transfer.
    #[error("{original}: no such transfer to reverse")]
    OriginalNotFound {
        /// The id asked for.
        original: TransferId,
    },
    /// A reversal of a reversal (make a new transfer instead).
    #[error("{original} is a reversal and cannot be reversed")]
    ReverseOfReversal {
        /// The reversal.
        original: TransferId,
    },
    /// A second reversal of a transfer.
    #[error("{original} was already reversed by {by}")]
    AlreadyReversed {
        /// The transfer.
        original: TransferId,
        /// Its reversal.
        by: TransferId,
    },
    /// A redemption leg without its partner leg in the same command, doing the same.
    #[error("redemption leg {transfer}: its partner {partner} must be made, posted, voided or reversed with it")]
    RedemptionUnpaired {
        /// The leg.
        transfer: TransferId,
        /// Its partner.
        partner: TransferId,
    },
    /// (Replay only) an event that creates an account that exists.
    #[error("account {account} is already open")]
    AccountExists {
        /// The account.
        account: AccountId,
    },
    /// (Replay only) an event that reuses an id.
    #[error("{id} exists")]
    AlreadyExists {
        /// The id.
        id: TransferId,
    },
    /// (Replay only) an expiry before the transfer's timeout.
    #[error("{pending} does not expire until {expires_at}")]
    PendingNotExpired {
        /// The pending transfer.
        pending: TransferId,
        /// When it expires.
        #[borsh(serialize_with = "crate::binary::at::serialize", deserialize_with = "crate::binary::at::deserialize")]
        expires_at: DateTime<Utc>,
    },
    /// (Replay only) a reversal whose accounts or amount do not mirror the original.
    #[error("{transfer} does not mirror the transfer it reverses")]
    ReversalMismatch {
        /// The reversal.
        transfer: TransferId,
    },
}

impl LedgerError {
    /// A stable snake_case code for the error (for APIs and tests), e.g. `insufficient_balance`.
    pub fn code(&self) -> &'static str {
        match self {
            LedgerError::TooManyOps { .. } => "too_many_ops",
            LedgerError::ReservedId { .. } => "reserved_id",
            LedgerError::AmountZero { .. } => "amount_zero",
            LedgerError::AmountTooLarge { .. } => "amount_too_large",
            LedgerError::BadTimeout { .. } => "bad_timeout",
            LedgerError::SameAccount { .. } => "same_account",
            LedgerError::LedgerMismatch { .. } => "ledger_mismatch",
            LedgerError::KindNotAllowed { .. } => "kind_not_allowed",
            LedgerError::AccountNotAllowed { .. } => "account_not_allowed",
            LedgerError::ServiceCreditId { .. } => "service_credit_id",
            LedgerError::ReasonMissing { .. } => "reason_missing",
            LedgerError::TextTooLong { .. } => "text_too_long",
            LedgerError::UnknownAccount { .. } => "unknown_account",
            LedgerError::AccountClosed { .. } => "account_closed",
            LedgerError::CloseWithPending { .. } => "close_with_pending",
            LedgerError::CloseWithBalance { .. } => "close_with_balance",
            LedgerError::InsufficientBalance { .. } => "insufficient_balance",
            LedgerError::Overflow { .. } => "overflow",
            LedgerError::ExistsWithDifferent { .. } => "exists_with_different",
            LedgerError::PendingNotFound { .. } => "pending_not_found",
            LedgerError::NotPending { .. } => "not_pending",
            LedgerError::PendingAlreadyPosted { .. } => "pending_already_posted",
            LedgerError::PendingAlreadyVoided { .. } => "pending_already_voided",
            LedgerError::PendingExpired { .. } => "pending_expired",
            LedgerError::OriginalNotFound { .. } => "original_not_found",
            LedgerError::ReverseOfReversal { .. } => "reverse_of_reversal",
            LedgerError::AlreadyReversed { .. } => "already_reversed",
            LedgerError::RedemptionUnpaired { .. } => "redemption_unpaired",
            LedgerError::AccountExists { .. } => "account_exists",
            LedgerError::AlreadyExists { .. } => "already_exists",
            LedgerError::PendingNotExpired { .. } => "pending_not_expired",
            LedgerError::ReversalMismatch { .. } => "reversal_mismatch",
        }
    }
}

/// An event that does not fit the ledger: the log is not one the ledger wrote.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("ledger event #{index} ({event}) does not apply: {error}")]
pub struct LedgerApplyError {
    /// The event's place among those applied to this ledger, from 0.
    pub index: u64,
    /// The event's name.
    pub event: &'static str,
    /// What does not fit.
    pub error: LedgerError,
}

/// A broken ledger invariant, found by [`crate::ledger::Ledger::check`]. A bug, never user input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("ledger invariant broken: {0}")]
pub struct InvariantViolation(pub String);

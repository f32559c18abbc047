//! Identifiers, accounts, transfers, operations and events of the ledger.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::id::{ID_MAX_LEN, IdError, RequestId, TeamId, UnitId, VolunteerId};

/// The longest transfer id accepted, in bytes (room for a derived service-credit id of two 64-byte ids).
pub const TRANSFER_ID_MAX_LEN: usize = 200;

/// The largest amount one transfer may move.
pub const MAX_AMOUNT: u64 = 1_000_000_000_000;

/// The longest a pending transfer may wait to be posted or voided, in seconds (90 days).
pub const MAX_TIMEOUT_S: u32 = 90 * 24 * 3600;

/// The longest reason (adjustment, reversal, closing) accepted, in bytes.
pub const MAX_REASON_LEN: usize = 500;

/// The most operations one command may hold.
pub const MAX_OPS: usize = 1024;

/// The prefix of every service-credit id, and of no other id.
pub const SERVICE_CREDIT_PREFIX: &str = "sc/";

fn is_id_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':')
}

/// Why a string is not a valid [`TransferId`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TransferIdError {
    /// The id is empty.
    #[error("transfer id is empty")]
    Empty,
    /// The id is longer than [`TRANSFER_ID_MAX_LEN`] bytes.
    #[error("transfer id is {len} bytes long, at most {TRANSFER_ID_MAX_LEN} are allowed")]
    TooLong {
        /// Its length in bytes.
        len: usize,
    },
    /// The id holds a character outside `A-Z a-z 0-9 - _ . : /`.
    #[error("transfer id contains {ch:?}; only ASCII letters, digits and - _ . : / are allowed")]
    BadChar {
        /// The first offending character.
        ch: char,
    },
}

/// The idempotency key of a transfer, a post, a void or a reversal: 1–200 bytes of
/// `A-Za-z0-9-_.:/`. One id names one thing for ever; a retry with the same id and the
/// same content is a no-op, with other content an error.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TransferId(Arc<str>);

impl TransferId {
    /// Validates `s` and makes an id of it.
    ///
    /// # Errors
    /// Empty, too long, or a character outside the allowed set.
    pub fn new(s: &str) -> Result<Self, TransferIdError> {
        if s.is_empty() {
            return Err(TransferIdError::Empty);
        }
        if s.len() > TRANSFER_ID_MAX_LEN {
            return Err(TransferIdError::TooLong { len: s.len() });
        }
        if let Some(ch) = s.chars().find(|&c| !(is_id_char(c) || c == '/')) {
            return Err(TransferIdError::BadChar { ch });
        }
        Ok(Self(Arc::from(s)))
    }

    /// The id as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The id of the service credit for `request` into `account`: `sc/<request>/vp/<volunteer>`
    /// (points), `sc/<request>/vm/<volunteer>` (banked minutes) or `sc/<request>/tp/<team>` (team
    /// points). `None` for an account that service credits cannot reach. Ids hold no `/`, so two
    /// different causes never share an id: a request credits each account at most once.
    pub fn service_credit(request: &RequestId, account: &AccountId) -> Option<TransferId> {
        let (tag, who) = match account {
            AccountId::VolunteerPoints(v) => ("vp", v.as_str()),
            AccountId::VolunteerMinutes(v) => ("vm", v.as_str()),
            AccountId::TeamPoints(t) => ("tp", t.as_str()),
            _ => return None,
        };
        // At most 3 + 64 + 4 + 64 bytes of valid characters.
        Some(Self(Arc::from(format!("{SERVICE_CREDIT_PREFIX}{request}/{tag}/{who}"))))
    }

    /// `self` with `/<suffix>` appended (the legs of a redemption, their posts and voids).
    ///
    /// # Errors
    /// The result is too long or `suffix` holds a bad character.
    pub fn with_suffix(&self, suffix: &str) -> Result<TransferId, TransferIdError> {
        Self::new(&format!("{self}/{suffix}"))
    }

    pub(crate) fn is_reserved(&self) -> bool {
        self.0.starts_with(SERVICE_CREDIT_PREFIX)
    }
}

impl fmt::Debug for TransferId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TransferId({:?})", &*self.0)
    }
}

impl fmt::Display for TransferId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for TransferId {
    type Err = TransferIdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

impl Serialize for TransferId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for TransferId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Self::new(&s).map_err(serde::de::Error::custom)
    }
}

/// A love-supermarket (爱心超市) item, such as `rice-5kg` or `towel`: 1–64 bytes of
/// `A-Za-z0-9-_.:`, like every other id of the domain.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ItemId(Arc<str>);

impl ItemId {
    /// Validates `s` and makes an id of it.
    ///
    /// # Errors
    /// Empty, longer than [`ID_MAX_LEN`], or a character outside the allowed set.
    pub fn new(s: &str) -> Result<Self, IdError> {
        if s.is_empty() {
            return Err(IdError::Empty);
        }
        if s.len() > ID_MAX_LEN {
            return Err(IdError::TooLong { len: s.len() });
        }
        if let Some(ch) = s.chars().find(|&c| !is_id_char(c)) {
            return Err(IdError::BadChar { ch });
        }
        Ok(Self(Arc::from(s)))
    }

    /// The id as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ItemId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ItemId({:?})", &*self.0)
    }
}

impl fmt::Display for ItemId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for ItemId {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

impl Serialize for ItemId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for ItemId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Self::new(&s).map_err(serde::de::Error::custom)
    }
}

/// A ledger: a unit of account. A transfer moves an amount within one ledger.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LedgerId {
    /// Points (积分), earned by service and redeemed for goods; written `points`.
    Points,
    /// Time-bank (时间银行) minutes, earned by service and spent on services; written `minutes`.
    Minutes,
    /// Units of one love-supermarket item; written `stock/<item>`.
    Stock(ItemId),
}

impl fmt::Display for LedgerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LedgerId::Points => f.write_str("points"),
            LedgerId::Minutes => f.write_str("minutes"),
            LedgerId::Stock(item) => write!(f, "stock/{item}"),
        }
    }
}

impl FromStr for LedgerId {
    type Err = AccountIdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "points" => Ok(LedgerId::Points),
            "minutes" => Ok(LedgerId::Minutes),
            _ => match s.strip_prefix("stock/") {
                Some(item) => ItemId::new(item)
                    .map(LedgerId::Stock)
                    .map_err(|error| AccountIdError::BadId { text: s.to_owned(), error }),
                None => Err(AccountIdError::UnknownForm(s.to_owned())),
            },
        }
    }
}

impl Serialize for LedgerId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for LedgerId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A ledger by reference, to compare two accounts' ledgers without cloning.
#[derive(PartialEq)]
pub(crate) enum LedgerRef<'a> {
    Points,
    Minutes,
    Stock(&'a ItemId),
}

/// An account. Volunteers', teams' and shelves' accounts may never go below zero, counting
/// pending reservations; system accounts (issuance, tills, the time-bank sink, stock receipt and
/// consumption) may. Written as a path, e.g. `volunteer/v-017/points` or `shelf/cz-s03/rice-5kg`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AccountId {
    /// A volunteer's points (积分): `volunteer/<id>/points`.
    VolunteerPoints(VolunteerId),
    /// A volunteer's banked time in minutes (时间银行): `volunteer/<id>/minutes`.
    VolunteerMinutes(VolunteerId),
    /// A team's points: `team/<id>/points`.
    TeamPoints(TeamId),
    /// A station's stock of one item on its love-supermarket shelf (爱心超市): `shelf/<station>/<item>`.
    Shelf {
        /// The station.
        station: UnitId,
        /// The item.
        item: ItemId,
    },
    /// System: where points come from: `issuance/points`.
    PointsIssuance,
    /// System: where banked minutes come from: `issuance/minutes`.
    MinutesIssuance,
    /// System: a station's supermarket till, which receives redeemed points: `till/<station>`.
    Till(UnitId),
    /// System: where banked minutes go when spent on a service (time-bank withdrawals): `spent/minutes`.
    MinutesSpent,
    /// System: where goods received by a station come from: `receipt/<station>/<item>`.
    StockReceipt {
        /// The station.
        station: UnitId,
        /// The item.
        item: ItemId,
    },
    /// System: where goods handed out by a station go: `consumed/<station>/<item>`.
    StockConsumed {
        /// The station.
        station: UnitId,
        /// The item.
        item: ItemId,
    },
}

impl AccountId {
    /// The ledger the account is kept in.
    pub fn ledger(&self) -> LedgerId {
        match self.ledger_ref() {
            LedgerRef::Points => LedgerId::Points,
            LedgerRef::Minutes => LedgerId::Minutes,
            LedgerRef::Stock(item) => LedgerId::Stock(item.clone()),
        }
    }

    pub(crate) fn ledger_ref(&self) -> LedgerRef<'_> {
        match self {
            AccountId::VolunteerPoints(_)
            | AccountId::TeamPoints(_)
            | AccountId::PointsIssuance
            | AccountId::Till(_) => LedgerRef::Points,
            AccountId::VolunteerMinutes(_) | AccountId::MinutesIssuance | AccountId::MinutesSpent => LedgerRef::Minutes,
            AccountId::Shelf { item, .. }
            | AccountId::StockReceipt { item, .. }
            | AccountId::StockConsumed { item, .. } => LedgerRef::Stock(item),
        }
    }

    /// Whether this is a system account, which may go below zero. Every other account's debits
    /// (posted and pending) may never exceed its posted credits.
    pub fn is_system(&self) -> bool {
        matches!(
            self,
            AccountId::PointsIssuance
                | AccountId::MinutesIssuance
                | AccountId::Till(_)
                | AccountId::MinutesSpent
                | AccountId::StockReceipt { .. }
                | AccountId::StockConsumed { .. }
        )
    }

    /// The station a station account (shelf, till, receipt, consumption) belongs to.
    pub fn station(&self) -> Option<&UnitId> {
        match self {
            AccountId::Shelf { station, .. }
            | AccountId::StockReceipt { station, .. }
            | AccountId::StockConsumed { station, .. }
            | AccountId::Till(station) => Some(station),
            _ => None,
        }
    }
}

impl fmt::Display for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AccountId::VolunteerPoints(v) => write!(f, "volunteer/{v}/points"),
            AccountId::VolunteerMinutes(v) => write!(f, "volunteer/{v}/minutes"),
            AccountId::TeamPoints(t) => write!(f, "team/{t}/points"),
            AccountId::Shelf { station, item } => write!(f, "shelf/{station}/{item}"),
            AccountId::PointsIssuance => f.write_str("issuance/points"),
            AccountId::MinutesIssuance => f.write_str("issuance/minutes"),
            AccountId::Till(s) => write!(f, "till/{s}"),
            AccountId::MinutesSpent => f.write_str("spent/minutes"),
            AccountId::StockReceipt { station, item } => write!(f, "receipt/{station}/{item}"),
            AccountId::StockConsumed { station, item } => write!(f, "consumed/{station}/{item}"),
        }
    }
}

/// Why a string is not an account (or a ledger).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AccountIdError {
    /// Not one of the account forms (`volunteer/<id>/points`, `shelf/<station>/<item>`, …).
    #[error(
        "{0:?} is not an account: expected volunteer/<id>/points|minutes, team/<id>/points, \
         shelf|receipt|consumed/<station>/<item>, till/<station>, issuance/points|minutes or spent/minutes"
    )]
    UnknownForm(String),
    /// An id inside it is invalid.
    #[error("{text:?}: {error}")]
    BadId {
        /// The whole text.
        text: String,
        /// What is wrong with the id.
        error: IdError,
    },
}

impl FromStr for AccountId {
    type Err = AccountIdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = |error| AccountIdError::BadId { text: s.to_owned(), error };
        let parts: Vec<&str> = s.split('/').collect();
        Ok(match parts.as_slice() {
            ["volunteer", v, "points"] => AccountId::VolunteerPoints(VolunteerId::new(v).map_err(bad)?),
            ["volunteer", v, "minutes"] => AccountId::VolunteerMinutes(VolunteerId::new(v).map_err(bad)?),
            ["team", t, "points"] => AccountId::TeamPoints(TeamId::new(t).map_err(bad)?),
            ["shelf", st, it] => {
                AccountId::Shelf { station: UnitId::new(st).map_err(bad)?, item: ItemId::new(it).map_err(bad)? }
            }
            ["receipt", st, it] => {
                AccountId::StockReceipt { station: UnitId::new(st).map_err(bad)?, item: ItemId::new(it).map_err(bad)? }
            }
            ["consumed", st, it] => {
                AccountId::StockConsumed { station: UnitId::new(st).map_err(bad)?, item: ItemId::new(it).map_err(bad)? }
            }
            ["till", st] => AccountId::Till(UnitId::new(st).map_err(bad)?),
            ["issuance", "points"] => AccountId::PointsIssuance,
            ["issuance", "minutes"] => AccountId::MinutesIssuance,
            ["spent", "minutes"] => AccountId::MinutesSpent,
            _ => return Err(AccountIdError::UnknownForm(s.to_owned())),
        })
    }
}

impl Serialize for AccountId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for AccountId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

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
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
#[non_exhaustive]
pub enum LedgerEvent {
    /// An account was opened, with a zero balance.
    AccountOpened {
        /// The account.
        account: AccountId,
        /// When.
        at: DateTime<Utc>,
    },
    /// An account was closed.
    AccountClosed {
        /// The account.
        account: AccountId,
        /// Why.
        reason: String,
        /// When.
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
        at: DateTime<Utc>,
    },
    /// A pending transfer's timeout passed; its reservation is released.
    Expired {
        /// The pending transfer.
        pending: TransferId,
        /// When the expiry was observed (at or after the transfer's expiry time).
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

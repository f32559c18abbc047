//! The ledger's identifiers: transfers, items, ledgers and accounts, with their text forms.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use borsh::{BorshDeserialize, BorshSerialize};
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
        let s = <std::borrow::Cow<'de, str> as Deserialize>::deserialize(d)?;
        Self::new(&s).map_err(serde::de::Error::custom)
    }
}

crate::binary::borsh_text_id!(TransferId, TRANSFER_ID_MAX_LEN);

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
        let s = <std::borrow::Cow<'de, str> as Deserialize>::deserialize(d)?;
        Self::new(&s).map_err(serde::de::Error::custom)
    }
}

crate::binary::borsh_text_id!(ItemId, crate::id::ID_MAX_LEN);

/// A ledger: a unit of account. A transfer moves an amount within one ledger.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, BorshSerialize, BorshDeserialize)]
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
        let s = <std::borrow::Cow<'de, str> as Deserialize>::deserialize(d)?;
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
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, BorshSerialize, BorshDeserialize)]
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
        let s = <std::borrow::Cow<'de, str> as Deserialize>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

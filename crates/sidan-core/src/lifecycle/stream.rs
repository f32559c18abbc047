//! The event streams: one per request, per pairing and per team, and the city's ledger.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::id::{IdError, PairingId, RequestId, TeamId};

/// An event stream: the life of one request, of one pairing, of one team's
/// roster entry, or the ledger.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum StreamId {
    /// A request's stream, written `request/<id>`.
    Request(RequestId),
    /// A pairing's stream, written `pairing/<id>`.
    Pairing(PairingId),
    /// A team's roster changes made while the engine runs, written `team/<id>`.
    Team(TeamId),
    /// The city's one ledger stream (points, time bank, stock), written `ledger`.
    Ledger,
}

impl StreamId {
    /// What kind of stream this is: `request`, `pairing`, `team` or `ledger`.
    pub fn kind(&self) -> &'static str {
        match self {
            StreamId::Request(_) => "request",
            StreamId::Pairing(_) => "pairing",
            StreamId::Team(_) => "team",
            StreamId::Ledger => "ledger",
        }
    }
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StreamId::Request(r) => write!(f, "request/{r}"),
            StreamId::Pairing(p) => write!(f, "pairing/{p}"),
            StreamId::Team(t) => write!(f, "team/{t}"),
            StreamId::Ledger => f.write_str("ledger"),
        }
    }
}

/// Why a stream name does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StreamIdError {
    /// Neither `request/<id>`, `pairing/<id>`, `team/<id>` nor `ledger`.
    #[error("stream {0:?} is neither request/<id>, pairing/<id>, team/<id> nor ledger")]
    UnknownKind(String),
    /// The id part is invalid.
    #[error("stream {stream:?}: {error}")]
    BadId {
        /// The whole name.
        stream: String,
        /// What is wrong with the id.
        error: IdError,
    },
}

impl FromStr for StreamId {
    type Err = StreamIdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = |error| StreamIdError::BadId { stream: s.to_owned(), error };
        if s == "ledger" {
            Ok(StreamId::Ledger)
        } else if let Some(id) = s.strip_prefix("request/") {
            RequestId::new(id).map(StreamId::Request).map_err(bad)
        } else if let Some(id) = s.strip_prefix("pairing/") {
            PairingId::new(id).map(StreamId::Pairing).map_err(bad)
        } else if let Some(id) = s.strip_prefix("team/") {
            TeamId::new(id).map(StreamId::Team).map_err(bad)
        } else {
            Err(StreamIdError::UnknownKind(s.to_owned()))
        }
    }
}

impl Serialize for StreamId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for StreamId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

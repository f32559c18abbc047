//! Typed identifiers.
//!
//! Units, skills, services and teams are managed by people and carry short
//! codes (`cz-xinhua-s03`, `elderly-care`); requests and households come from
//! the platform. All are cheap-to-clone, validated strings so that the same id
//! reads the same in files, events, logs and the API, and two kinds of id can
//! never be mixed up.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The longest id accepted, in bytes.
pub const ID_MAX_LEN: usize = 64;

/// Why a string is not a valid id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IdError {
    /// The id is empty.
    #[error("id is empty")]
    Empty,
    /// The id is longer than [`ID_MAX_LEN`] bytes.
    #[error("id is {len} bytes long, at most {ID_MAX_LEN} are allowed")]
    TooLong {
        /// Its length in bytes.
        len: usize,
    },
    /// The id holds a character outside `A-Z a-z 0-9 - _ . :`.
    #[error("id contains {ch:?}; only ASCII letters, digits and - _ . : are allowed")]
    BadChar {
        /// The first offending character.
        ch: char,
    },
}

fn validate(s: &str) -> Result<(), IdError> {
    if s.is_empty() {
        return Err(IdError::Empty);
    }
    if s.len() > ID_MAX_LEN {
        return Err(IdError::TooLong { len: s.len() });
    }
    if let Some(ch) = s.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':'))) {
        return Err(IdError::BadChar { ch });
    }
    Ok(())
}

macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(Arc<str>);

        impl $name {
            /// Validates `s` and makes an id of it.
            pub fn new(s: &str) -> Result<Self, IdError> {
                validate(s)?;
                Ok(Self(Arc::from(s)))
            }

            /// The id as a string slice.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:?})", stringify!($name), &*self.0)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl std::str::FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, IdError> {
                Self::new(s)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                Self::new(&s).map_err(serde::de::Error::custom)
            }
        }

        crate::binary::borsh_text_id!($name, ID_MAX_LEN);
    };
}

string_id!(
    /// A unit of the hierarchy: city, county center, town institute or village station.
    UnitId
);
string_id!(
    /// A skill of the taxonomy.
    SkillId
);
string_id!(
    /// A service of the catalog (what a resident can ask for).
    ServiceId
);
string_id!(
    /// A volunteer team.
    TeamId
);
string_id!(
    /// A resident's request.
    RequestId
);
string_id!(
    /// A household that receives services (the unit of pairing and continuity).
    HouseholdId
);
string_id!(
    /// A one-to-one pairing (结对) of a team with a household.
    PairingId
);
string_id!(
    /// A volunteer, member of a team.
    VolunteerId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_codes_and_rejects_bad_ids() {
        assert_eq!(TeamId::new("cz-xh.s01:t_2").map(|t| t.to_string()), Ok("cz-xh.s01:t_2".to_owned()));
        assert_eq!(TeamId::new(""), Err(IdError::Empty));
        assert_eq!(TeamId::new(&"x".repeat(65)), Err(IdError::TooLong { len: 65 }));
        assert_eq!(TeamId::new("a b"), Err(IdError::BadChar { ch: ' ' }));
        assert_eq!(TeamId::new("站"), Err(IdError::BadChar { ch: '站' }));
    }

    #[test]
    fn serde_round_trip_validates() {
        let id: UnitId = serde_json::from_str("\"cz\"").expect("valid id");
        assert_eq!(serde_json::to_string(&id).expect("serialises"), "\"cz\"");
        assert!(serde_json::from_str::<UnitId>("\"\"").is_err());
    }
}

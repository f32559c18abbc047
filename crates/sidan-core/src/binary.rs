//! The compact binary form of events (borsh): what the embedded store keeps, as it decodes
//! several times faster than JSON. JSON stays the form for people, files and the bus.
//!
//! Every value decoded here is checked as its JSON form is: an id, a score or a text out of
//! its bounds is an error, not a value.

use std::io::{self, Read, Write};

use borsh::{BorshDeserialize, BorshSerialize};
use chrono::{DateTime, Utc};

/// A decoding error carrying why the bytes do not make a value.
pub(crate) fn invalid(e: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e.to_string())
}

/// A text as the binary form holds it (a length, then UTF-8), refused before it is read if
/// longer than `max` bytes.
pub(crate) fn read_str<R: Read>(r: &mut R, max: usize) -> io::Result<String> {
    let len = u32::deserialize_reader(r)? as usize;
    if len > max {
        return Err(invalid(format_args!("a text of {len} bytes where at most {max} are allowed")));
    }
    let mut buf = vec![0; len];
    r.read_exact(&mut buf)?;
    String::from_utf8(buf).map_err(invalid)
}

/// Implements the binary form of an id held as `Arc<str>` in its field `.0`: its text, read
/// back through `new` (so at most `$max` bytes, and checked as its JSON form is).
macro_rules! borsh_text_id {
    ($ty:ty, $max:expr) => {
        impl borsh::BorshSerialize for $ty {
            fn serialize<W: std::io::Write>(&self, w: &mut W) -> std::io::Result<()> {
                borsh::BorshSerialize::serialize(&*self.0, w)
            }
        }
        impl borsh::BorshDeserialize for $ty {
            fn deserialize_reader<R: std::io::Read>(r: &mut R) -> std::io::Result<Self> {
                <$ty>::new(&$crate::binary::read_str(r, $max)?).map_err($crate::binary::invalid)
            }
        }
    };
}
pub(crate) use borsh_text_id;

/// Implements the binary form of a validated type through the plain type it converts to and
/// is checked from (its `TryFrom`), as its serde form does.
macro_rules! borsh_via {
    ($ty:ty, $plain:ty) => {
        impl borsh::BorshSerialize for $ty {
            fn serialize<W: std::io::Write>(&self, w: &mut W) -> std::io::Result<()> {
                borsh::BorshSerialize::serialize(&<$plain>::from(self.clone()), w)
            }
        }
        impl borsh::BorshDeserialize for $ty {
            fn deserialize_reader<R: std::io::Read>(r: &mut R) -> std::io::Result<Self> {
                let plain = <$plain as borsh::BorshDeserialize>::deserialize_reader(r)?;
                <$ty>::try_from(plain).map_err($crate::binary::invalid)
            }
        }
    };
}
pub(crate) use borsh_via;

/// An instant as whole seconds since the epoch and the nanoseconds past them, exact over
/// chrono's whole range (`#[borsh(serialize_with, deserialize_with)]`).
pub(crate) mod at {
    use super::*;

    pub(crate) fn serialize<W: Write>(t: &DateTime<Utc>, w: &mut W) -> io::Result<()> {
        (t.timestamp(), t.timestamp_subsec_nanos()).serialize(w)
    }

    pub(crate) fn deserialize<R: Read>(r: &mut R) -> io::Result<DateTime<Utc>> {
        let (secs, nanos) = <(i64, u32)>::deserialize_reader(r)?;
        DateTime::from_timestamp(secs, nanos)
            .ok_or_else(|| invalid(format_args!("no instant is {secs} s and {nanos} ns after the epoch")))
    }
}

/// A local date and time, as [`at`] of the same wall-clock reading in UTC.
pub(crate) mod naive {
    use chrono::NaiveDateTime;

    use super::*;

    pub(crate) fn serialize<W: Write>(t: &NaiveDateTime, w: &mut W) -> io::Result<()> {
        at::serialize(&t.and_utc(), w)
    }

    pub(crate) fn deserialize<R: Read>(r: &mut R) -> io::Result<NaiveDateTime> {
        Ok(at::deserialize(r)?.naive_utc())
    }
}

#[cfg(test)]
mod tests {
    use chrono::NaiveDate;

    use super::*;

    #[test]
    fn instants_round_trip_exactly_over_chronos_range() {
        let day = |y| NaiveDate::from_ymd_opt(y, 2, 28).expect("a day").and_hms_nano_opt(23, 59, 59, 999_999_999);
        for y in [-200_000, 1600, 1970, 2026, 2400, 200_000] {
            let t = day(y).expect("a time").and_utc();
            let mut bytes = Vec::new();
            at::serialize(&t, &mut bytes).expect("encodes");
            assert_eq!(at::deserialize(&mut bytes.as_slice()).expect("decodes"), t, "{t}");
        }
        let mut bytes = Vec::new();
        (i64::MAX, 0u32).serialize(&mut bytes).expect("encodes");
        assert!(at::deserialize(&mut bytes.as_slice()).is_err(), "past chrono's range is an error");
    }
}

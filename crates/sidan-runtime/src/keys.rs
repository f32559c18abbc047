//! Idempotency keys for commands (reliability.md, invariant 15).
//!
//! A caller that may send a command twice (a retry after a timeout, a
//! double tap, a replayed HTTP request) names it with a [`CommandKey`]: who
//! sends it (the principal) and the caller's own id for it. The engine
//! keeps every key it has acted on, with the command's [`Fingerprint`] and
//! where its events are, in the same atomic append as the events
//! ([`Store::append_keyed`](crate::Store::append_keyed)). The same key with
//! the same command again gets the first receipt and appends nothing; the
//! same key with another command is refused with
//! [`EngineError::KeyReused`](crate::EngineError::KeyReused).
//!
//! Keys are scoped by principal: one user's key is never looked up for
//! another, so a key replayed by someone else is a new command of theirs and
//! cannot reveal the first one's receipt.

use std::fmt;
use std::ops::Range;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use sidan_core::lifecycle::Command;

use crate::store::Position;

/// The longest principal or id, in bytes.
pub const MAX_KEY_PART: usize = 128;

/// Who sent a command and the sender's id for it: the idempotency key.
///
/// Both parts are 1–[`MAX_KEY_PART`] bytes of printable ASCII without spaces
/// (`!` to `~`): user ids, UUIDs, ULIDs and the like.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CommandKey {
    principal: Arc<str>,
    id: Arc<str>,
}

/// Why a [`CommandKey`] was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// A part is empty.
    #[error("the {part} of a command key is empty")]
    Empty {
        /// `principal` or `id`.
        part: &'static str,
    },
    /// A part is longer than [`MAX_KEY_PART`] bytes.
    #[error("the {part} of a command key is {len} bytes long; at most {MAX_KEY_PART} are allowed")]
    TooLong {
        /// `principal` or `id`.
        part: &'static str,
        /// Its length in bytes.
        len: usize,
    },
    /// A part holds a byte outside printable ASCII (`!` to `~`).
    #[error("the {part} of a command key holds {found:?} at byte {at}; use printable ASCII without spaces")]
    NotPrintable {
        /// `principal` or `id`.
        part: &'static str,
        /// The byte offset of the first bad character.
        at: usize,
        /// The character.
        found: char,
    },
}

fn check_part(part: &'static str, s: &str) -> Result<(), KeyError> {
    if s.is_empty() {
        return Err(KeyError::Empty { part });
    }
    if s.len() > MAX_KEY_PART {
        return Err(KeyError::TooLong { part, len: s.len() });
    }
    if let Some((at, found)) = s.char_indices().find(|(_, c)| !c.is_ascii_graphic()) {
        return Err(KeyError::NotPrintable { part, at, found });
    }
    Ok(())
}

impl CommandKey {
    /// A key, checked.
    ///
    /// # Errors
    /// [`KeyError`] naming the part at fault.
    pub fn new(principal: impl AsRef<str>, id: impl AsRef<str>) -> Result<Self, KeyError> {
        let (principal, id) = (principal.as_ref(), id.as_ref());
        check_part("principal", principal)?;
        check_part("id", id)?;
        Ok(Self { principal: principal.into(), id: id.into() })
    }

    /// Who sent the command.
    pub fn principal(&self) -> &str {
        &self.principal
    }

    /// The sender's id for the command.
    pub fn id(&self) -> &str {
        &self.id
    }
}

impl fmt::Debug for CommandKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CommandKey({:?}, {:?})", self.principal, self.id)
    }
}

impl fmt::Display for CommandKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "command {} of {}", self.id, self.principal)
    }
}

/// What a command was: the SHA-256 of its JSON encoding (as `serde_json`
/// writes [`Command`]). Two equal commands have equal fingerprints in any
/// process and any build that encodes them alike.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Fingerprint(pub [u8; 32]);

impl Fingerprint {
    /// The fingerprint of a command.
    pub fn of(cmd: &Command) -> Self {
        let mut hasher = Sha256::new();
        // Writing a command to a hasher cannot fail: commands hold no maps with
        // non-string keys; if it ever did, the error text keeps fingerprints apart.
        if let Err(e) = serde_json::to_writer(HashWriter(&mut hasher), cmd) {
            hasher.update(b"\0unencodable command: ");
            hasher.update(e.to_string().as_bytes());
        }
        Self(hasher.finalize().into())
    }

    /// From its 32 bytes, as a store keeps them; `None` for another length.
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        bytes.try_into().ok().map(Self)
    }

    /// Its 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Fingerprint(")?;
        for b in &self.0[..8] {
            write!(f, "{b:02x}")?;
        }
        f.write_str("…)")
    }
}

struct HashWriter<'a>(&'a mut Sha256);

impl std::io::Write for HashWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A key as handed to [`Store::append_keyed`](crate::Store::append_keyed),
/// with the batch it belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRecord {
    /// The key.
    pub key: CommandKey,
    /// The command it was used for.
    pub fingerprint: Fingerprint,
    /// When the command was decided (engine time): retention counts from here.
    pub at: DateTime<Utc>,
    /// The command's events: indices into the batch (empty for a command
    /// that caused none).
    pub events: Range<usize>,
}

/// A key as a store keeps it: enough to give the first receipt again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredKey {
    /// The key.
    pub key: CommandKey,
    /// The command it was used for.
    pub fingerprint: Fingerprint,
    /// When the command was decided.
    pub at: DateTime<Utc>,
    /// The position of the command's first event; for a command without
    /// events, the position its first event would have had.
    pub first: Position,
    /// How many events the command caused; they sit at `first`, `first + 1`, ….
    pub count: u64,
    /// The position of the append's last event (the receipt's position); the
    /// head of the log before it, for an append of no events.
    pub position: Position,
}

impl StoredKey {
    /// What a store keeps for `record`, written in an append that found the
    /// log at `head` and stored `batch_len` events.
    pub fn stored(record: &KeyRecord, head: Position, batch_len: usize) -> Self {
        Self {
            key: record.key.clone(),
            fingerprint: record.fingerprint,
            at: record.at,
            first: Position(head.0 + 1 + record.events.start as u64),
            count: record.events.len() as u64,
            position: Position(head.0 + batch_len as u64),
        }
    }
}

/// A key's time as stores keep it: RFC 3339 in UTC with nine fractional
/// digits (`2026-11-30T08:00:00.000000000Z`), so that text order is time
/// order. Times outside the years 0000–9999 are clamped to them (a cut-off
/// that far out selects the same keys).
pub fn time_text(at: &DateTime<Utc>) -> String {
    let lo = DateTime::<Utc>::from_timestamp(-62_167_219_200, 0).unwrap_or(DateTime::<Utc>::MIN_UTC);
    let hi = DateTime::<Utc>::from_timestamp(253_402_300_799, 999_999_999).unwrap_or(DateTime::<Utc>::MAX_UTC);
    (*at).clamp(lo, hi).to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

/// Reads back a [`time_text`].
///
/// # Errors
/// The parser's error, if the text is not RFC 3339.
pub fn parse_time_text(text: &str) -> Result<DateTime<Utc>, chrono::ParseError> {
    DateTime::parse_from_rfc3339(text).map(|t| t.with_timezone(&Utc))
}

#[cfg(test)]
mod tests {
    use super::*;
    use sidan_core::id::RequestId;
    use sidan_core::lifecycle::{RequestCommand, Text};

    #[test]
    fn keys_are_checked() {
        assert!(CommandKey::new("user-1", "0b8f7c1e-5d7a-4b1e-9a47-2f3a1e0c9d11").is_ok());
        assert!(CommandKey::new("u", "x".repeat(MAX_KEY_PART)).is_ok());
        assert_eq!(CommandKey::new("", "a"), Err(KeyError::Empty { part: "principal" }));
        assert_eq!(CommandKey::new("u", ""), Err(KeyError::Empty { part: "id" }));
        assert_eq!(
            CommandKey::new("u", "x".repeat(MAX_KEY_PART + 1)),
            Err(KeyError::TooLong { part: "id", len: MAX_KEY_PART + 1 })
        );
        assert_eq!(CommandKey::new("a b", "x"), Err(KeyError::NotPrintable { part: "principal", at: 1, found: ' ' }));
        assert_eq!(CommandKey::new("u", "x\n"), Err(KeyError::NotPrintable { part: "id", at: 1, found: '\n' }));
        assert_eq!(CommandKey::new("u", "编号"), Err(KeyError::NotPrintable { part: "id", at: 0, found: '编' }));
    }

    #[test]
    fn fingerprints_tell_commands_apart_and_are_stable() {
        let cancel = |reason: &str| {
            Command::Request(RequestCommand::Cancel {
                request: RequestId::new("r1").expect("valid id"),
                reason: Text::new(reason).expect("short text"),
            })
        };
        assert_eq!(Fingerprint::of(&cancel("a")), Fingerprint::of(&cancel("a")));
        assert_ne!(Fingerprint::of(&cancel("a")), Fingerprint::of(&cancel("b")));
        // The SHA-256 of `{"request":{"type":"cancel","request":"r1","reason":"a"}}`: a
        // change here makes keys stored by older builds report reuse.
        let json = serde_json::to_string(&cancel("a")).expect("encodes");
        assert_eq!(json, r#"{"request":{"type":"cancel","request":"r1","reason":"a"}}"#);
        assert_eq!(Fingerprint::of(&cancel("a")).0, <[u8; 32]>::from(Sha256::digest(json.as_bytes())));
        let fp = Fingerprint::of(&cancel("a"));
        assert_eq!(Fingerprint::from_slice(fp.as_bytes()), Some(fp));
        assert_eq!(Fingerprint::from_slice(&[0; 31]), None);
    }

    #[test]
    fn key_times_sort_as_text() {
        let t = DateTime::<Utc>::from_timestamp(1_796_000_000, 5).expect("valid");
        let times = [
            DateTime::<Utc>::MIN_UTC,
            t - chrono::Duration::seconds(1),
            t,
            t + chrono::Duration::nanoseconds(1),
            t + chrono::Duration::milliseconds(500),
            t + chrono::Duration::seconds(1),
            DateTime::<Utc>::MAX_UTC,
        ];
        let texts: Vec<String> = times.iter().map(time_text).collect();
        assert!(texts.windows(2).all(|w| w[0] < w[1]), "{texts:?}");
        assert_eq!(texts[0], "0000-01-01T00:00:00.000000000Z");
        assert_eq!(texts[2], "2026-11-30T00:53:20.000000005Z");
        for (t, text) in times[1..6].iter().zip(&texts[1..6]) {
            assert_eq!(parse_time_text(text), Ok(*t));
        }
    }
}

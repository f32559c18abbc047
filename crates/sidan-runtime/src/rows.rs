//! The row encoding the SQL stores share: an event as `(stream, seq, at, kind, body)` columns
//! (the time as RFC 3339 text, the event as JSON or in its compact binary form), and a command
//! key's row. Each store keeps only its driver's code: reading the columns out of its rows and
//! binding them to statements.

use chrono::{DateTime, SecondsFormat, Utc};
use sidan_core::lifecycle::{Event, Recorded, StreamId};

use crate::keys::{CommandKey, Fingerprint, StoredKey, parse_time_text};
use crate::store::{CorruptError, Position, StoreError};

type HashMap<K, V> = foldhash::HashMap<K, V>;

/// An event's time as stored: RFC 3339, UTC, exact to the nanosecond.
pub fn encode_at(at: &DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// An event's body as stored: its JSON.
///
/// # Errors
/// [`CorruptError::EventEncode`] if it does not serialise (it always does).
pub fn encode_event(event: &Event) -> Result<String, StoreError> {
    serde_json::to_string(event).map_err(|e| CorruptError::EventEncode { message: e.to_string() }.into())
}

/// An event's body in its compact binary form ([`Event::to_binary`]), which decodes several
/// times faster than JSON: what the embedded store writes.
///
/// # Errors
/// [`CorruptError::EventEncode`] if it does not encode (a validated event always does).
pub fn encode_event_binary(event: &Event) -> Result<Vec<u8>, StoreError> {
    event.to_binary().map_err(|e| CorruptError::EventEncode { message: e.to_string() }.into())
}

/// An event's body as read from its column.
#[derive(Debug, Clone, Copy)]
pub enum Body<'a> {
    /// JSON text ([`encode_event`]).
    Json(&'a str),
    /// The binary form ([`encode_event_binary`]).
    Binary(&'a [u8]),
}

/// A log position, count or version as stored (SQL integers are signed).
///
/// # Errors
/// [`CorruptError::Negative`] naming `what` if it is negative.
pub fn decode_u64(what: &'static str, value: i64) -> Result<u64, StoreError> {
    u64::try_from(value).map_err(|_| CorruptError::Negative { what, value }.into())
}

/// Turns stored columns back into records. Stream names repeat from row to row: the decoder
/// keeps the ones it has parsed.
#[derive(Debug, Default)]
pub struct RowDecoder {
    names: HashMap<Box<str>, StreamId>,
}

impl RowDecoder {
    /// A decoder with no stream names parsed yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// The record stored as these columns.
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] with the [`CorruptError`] of the column that does not decode.
    pub fn decode(&mut self, stream: &str, seq: i64, at: &str, body: Body<'_>) -> Result<Recorded, StoreError> {
        let stream = match self.names.get(stream) {
            Some(s) => s.clone(),
            None => {
                let s: StreamId =
                    stream.parse().map_err(|source| CorruptError::StreamName { name: stream.to_owned(), source })?;
                self.names.insert(stream.into(), s.clone());
                s
            }
        };
        let at = DateTime::parse_from_rfc3339(at)
            .map_err(|source| CorruptError::EventTime { stream: stream.clone(), seq, text: at.to_owned(), source })?
            .with_timezone(&Utc);
        let event = match body {
            Body::Json(text) => serde_json::from_str(text).map_err(|e| CorruptError::EventBody {
                stream: stream.clone(),
                seq,
                category: e.classify(),
                message: e.to_string(),
            })?,
            Body::Binary(bytes) => Event::from_binary(bytes).map_err(|error| CorruptError::EventBinary {
                stream: stream.clone(),
                seq,
                error,
            })?,
        };
        let seq = u64::try_from(seq).map_err(|_| CorruptError::Seq { stream: stream.clone(), seq })?;
        Ok(Recorded { stream, seq, at, event })
    }
}

/// The columns of a stored command key, as read from its row.
#[derive(Debug, Clone, Copy)]
pub struct KeyRow<'a> {
    /// Who sent the command.
    pub principal: &'a str,
    /// The command's id.
    pub id: &'a str,
    /// The fingerprint's bytes.
    pub fingerprint: &'a [u8],
    /// The key's time, as [`crate::keys::time_text`] wrote it.
    pub at: &'a str,
    /// The position of its command's first event.
    pub first: i64,
    /// How many events its command had.
    pub count: i64,
    /// Its receipt's position.
    pub position: i64,
}

impl KeyRow<'_> {
    /// The stored key these columns hold.
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] if the key, the fingerprint, the time or a position does not decode.
    pub fn decode(&self) -> Result<StoredKey, StoreError> {
        let (principal, id) = (self.principal, self.id);
        let key = CommandKey::new(principal, id).map_err(|source| CorruptError::Key {
            principal: principal.to_owned(),
            id: id.to_owned(),
            source,
        })?;
        let fingerprint = Fingerprint::from_slice(self.fingerprint)
            .ok_or_else(|| CorruptError::Fingerprint { key: key.clone(), len: self.fingerprint.len() })?;
        let at = parse_time_text(self.at).map_err(|source| CorruptError::KeyTime {
            key: key.clone(),
            text: self.at.to_owned(),
            source,
        })?;
        Ok(StoredKey {
            first: Position(decode_u64("position", self.first)?),
            count: decode_u64("count", self.count)?,
            position: Position(decode_u64("position", self.position)?),
            key,
            fingerprint,
            at,
        })
    }
}

#[cfg(test)]
mod tests {
    use sidan_core::lifecycle::{BinaryEventError, EVENT_BINARY_FORMAT};

    use super::*;

    fn corrupt(r: Result<impl std::fmt::Debug, StoreError>) -> CorruptError {
        match r {
            Err(StoreError::Corrupt(c)) => c,
            other => panic!("not corrupt: {other:?}"),
        }
    }

    #[test]
    fn each_column_that_does_not_decode_has_its_own_error() {
        let text = encode_event(&Event::Expired).expect("an event encodes");
        let body = Body::Json(&text);
        let at = encode_at(&DateTime::<Utc>::UNIX_EPOCH);
        let mut rows = RowDecoder::new();
        let ok = rows.decode("ledger", 3, &at, body).expect("valid columns");
        assert_eq!((ok.seq, ok.event), (3, Event::Expired));
        let bytes = encode_event_binary(&Event::Expired).expect("an event encodes");
        let ok = rows.decode("ledger", 3, &at, Body::Binary(&bytes)).expect("valid columns");
        assert_eq!(ok.event, Event::Expired);

        let e = corrupt(rows.decode("nope/x", 1, &at, body));
        assert!(matches!(&e, CorruptError::StreamName { name, .. } if name == "nope/x"), "{e:?}");
        let e = corrupt(rows.decode("ledger", -1, &at, body));
        assert_eq!(e, CorruptError::Seq { stream: StreamId::Ledger, seq: -1 });
        let e = corrupt(rows.decode("ledger", 4, "yesterday", body));
        assert!(matches!(&e, CorruptError::EventTime { seq: 4, text, .. } if text == "yesterday"), "{e:?}");
        let e = corrupt(rows.decode("ledger", 5, &at, Body::Json("{not json")));
        assert!(
            matches!(&e, CorruptError::EventBody { seq: 5, category: serde_json::error::Category::Syntax, .. }),
            "{e:?}"
        );
        let e = corrupt(rows.decode("ledger", 6, &at, Body::Json("{\"no_such_event\": 1}")));
        assert!(matches!(&e, CorruptError::EventBody { category: serde_json::error::Category::Data, .. }), "{e:?}");
        assert!(e.to_string().starts_with("ledger#6: event: "), "{e}");
        let e = corrupt(rows.decode("ledger", 7, &at, Body::Binary(&[99, 1, 2])));
        assert!(
            matches!(&e, CorruptError::EventBinary { seq: 7, error: BinaryEventError::Format { found: 99 }, .. }),
            "{e:?}"
        );
        let e = corrupt(rows.decode("ledger", 8, &at, Body::Binary(&[EVENT_BINARY_FORMAT, 250])));
        assert!(matches!(&e, CorruptError::EventBinary { error: BinaryEventError::Body { .. }, .. }), "{e:?}");
        assert_eq!(corrupt(decode_u64("position", -2)), CorruptError::Negative { what: "position", value: -2 });
    }

    #[test]
    fn a_key_row_that_does_not_decode_says_which_column() {
        let fingerprint = [7u8; 32];
        let at = crate::keys::time_text(&DateTime::<Utc>::UNIX_EPOCH);
        let row = KeyRow {
            principal: "alice",
            id: "c-1",
            fingerprint: &fingerprint,
            at: &at,
            first: 1,
            count: 2,
            position: 2,
        };
        let key = row.decode().expect("valid columns").key;
        assert!(matches!(corrupt(KeyRow { principal: "", ..row }.decode()), CorruptError::Key { .. }));
        let short = [7u8; 3];
        assert_eq!(
            corrupt(KeyRow { fingerprint: &short, ..row }.decode()),
            CorruptError::Fingerprint { key: key.clone(), len: 3 }
        );
        assert!(matches!(corrupt(KeyRow { at: "then", ..row }.decode()), CorruptError::KeyTime { .. }));
        assert_eq!(corrupt(KeyRow { count: -1, ..row }.decode()), CorruptError::Negative { what: "count", value: -1 });
    }
}

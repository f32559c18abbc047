//! The row encoding the SQL stores share: an event as `(stream, seq, at, kind, body)` columns
//! (the time as RFC 3339 text, the event as JSON), and a command key's row. Each store keeps
//! only its driver's code: reading the columns out of its rows and binding them to statements.

use chrono::{DateTime, SecondsFormat, Utc};
use sidan_core::lifecycle::{Event, Recorded, StreamId};

use crate::keys::{CommandKey, Fingerprint, StoredKey, parse_time_text};
use crate::store::{Position, StoreError};

type HashMap<K, V> = foldhash::HashMap<K, V>;

/// An event's time as stored: RFC 3339, UTC, exact to the nanosecond.
pub fn encode_at(at: &DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// An event's body as stored: its JSON.
///
/// # Errors
/// [`StoreError::Corrupt`] if it does not serialise (it always does).
pub fn encode_event(event: &Event) -> Result<String, StoreError> {
    serde_json::to_string(event).map_err(|e| StoreError::Corrupt(format!("cannot encode: {e}")))
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
    /// [`StoreError::Corrupt`] naming the column that does not decode.
    pub fn decode(&mut self, stream: &str, seq: i64, at: &str, body: &str) -> Result<Recorded, StoreError> {
        let stream = match self.names.get(stream) {
            Some(s) => s.clone(),
            None => {
                let s: StreamId = stream.parse().map_err(|e| StoreError::Corrupt(format!("stream {stream:?}: {e}")))?;
                self.names.insert(stream.into(), s.clone());
                s
            }
        };
        let at = DateTime::parse_from_rfc3339(at)
            .map_err(|e| StoreError::Corrupt(format!("{stream}#{seq}: time {at:?}: {e}")))?
            .with_timezone(&Utc);
        let event: Event =
            serde_json::from_str(body).map_err(|e| StoreError::Corrupt(format!("{stream}#{seq}: event: {e}")))?;
        let seq = u64::try_from(seq).map_err(|_| StoreError::Corrupt(format!("{stream}: seq {seq}")))?;
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
    /// [`StoreError::Corrupt`] if the key, the fingerprint or the time does not decode.
    pub fn decode(&self) -> Result<StoredKey, StoreError> {
        let (principal, id) = (self.principal, self.id);
        let key = CommandKey::new(principal, id)
            .map_err(|e| StoreError::Corrupt(format!("command key {principal:?} {id:?}: {e}")))?;
        let fingerprint = Fingerprint::from_slice(self.fingerprint)
            .ok_or_else(|| StoreError::Corrupt(format!("{key}: a fingerprint of {} bytes", self.fingerprint.len())))?;
        let at = parse_time_text(self.at).map_err(|e| StoreError::Corrupt(format!("{key}: {e}")))?;
        Ok(StoredKey {
            key,
            fingerprint,
            at,
            first: Position(self.first as u64),
            count: self.count as u64,
            position: Position(self.position as u64),
        })
    }
}

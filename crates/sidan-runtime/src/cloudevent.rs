//! A published event as a CloudEvents 1.0 event, the form it takes outside the process (the
//! JSON event format, structured mode; see docs/messaging.md):
//!
//! - `id`: the event's stable id, `<stream>#<seq>` (the deduplication key);
//! - `source`: the deployment, a URI-reference the embedder chooses (`/sidan/cangzhou`);
//! - `type`: `sidan.<stream kind>.<event name>` ([`Published::event_type`]);
//! - `subject`: the request, pairing or team the event is about; for the ledger the account
//!   (opened, closed, or credited by a transfer), or the pending transfer posted, voided or
//!   expired; none for a retirement;
//! - `time`: when it happened; `datacontenttype`: `application/json`;
//! - `data`: the event, masked (no phone number or address leaves);
//! - extensions `sidanstream` (the stream, `request/r-1`), `sidanseq` (its number in the stream),
//!   `sidanposition` (its position in the log) and, when the event has a unit, `sidanunits` (the
//!   unit and its ancestors, root first, joined by `/`: `cz/cz-xh/cz-xh-jd/cz-xh-jd-bj`).

use cloudevents::event::{Data, ExtensionValue};
use cloudevents::{AttributesReader, EventBuilder, EventBuilderV10};
use sidan_core::id::UnitId;
use sidan_core::ledger::LedgerEvent;
use sidan_core::lifecycle::{Event, Recorded, StreamId};

use crate::bus::Published;
use crate::store::Position;

pub use cloudevents::Event as CloudEvent;

/// The extension attribute holding the stream.
pub const EXT_STREAM: &str = "sidanstream";
/// The extension attribute holding the event's number in its stream.
pub const EXT_SEQ: &str = "sidanseq";
/// The extension attribute holding the event's position in the log.
pub const EXT_POSITION: &str = "sidanposition";
/// The extension attribute holding the event's unit and its ancestors, root first, joined by `/`.
pub const EXT_UNITS: &str = "sidanunits";
/// The content type of `data`.
pub const DATA_CONTENT_TYPE: &str = "application/json";

/// Why a CloudEvent cannot be made or read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CloudEventError {
    /// The event cannot be built (an empty source).
    #[error("cloudevent: {0}")]
    Build(String),
    /// The JSON is not a CloudEvent.
    #[error("cloudevent JSON: {0}")]
    Json(String),
    /// An attribute the message needs is missing or of the wrong type.
    #[error("cloudevent: attribute `{0}` missing or not of its type")]
    Attribute(&'static str),
    /// The stream attribute does not name a stream.
    #[error("cloudevent: `{EXT_STREAM}` {0:?} is not a stream")]
    Stream(String),
    /// `data` is not an event.
    #[error("cloudevent data: {0}")]
    Data(String),
}

/// The subject of a record: what its event is about.
fn subject(record: &Recorded) -> Option<String> {
    match (&record.stream, &record.event) {
        (StreamId::Request(id), _) => Some(id.to_string()),
        (StreamId::Pairing(id), _) => Some(id.to_string()),
        (StreamId::Team(id), _) => Some(id.to_string()),
        (StreamId::Ledger, Event::Ledger { entry }) => match entry {
            LedgerEvent::AccountOpened { account, .. } | LedgerEvent::AccountClosed { account, .. } => {
                Some(account.to_string())
            }
            LedgerEvent::Transferred { transfer } => Some(transfer.credit.to_string()),
            LedgerEvent::Posted { pending, .. }
            | LedgerEvent::Voided { pending, .. }
            | LedgerEvent::Expired { pending, .. } => Some(pending.to_string()),
            _ => None,
        },
        (StreamId::Ledger, _) => None,
    }
}

fn int(v: u64) -> ExtensionValue {
    ExtensionValue::Integer(i64::try_from(v).unwrap_or(i64::MAX))
}

impl Published {
    /// The message as a CloudEvents 1.0 event from `source` (see the module's documentation).
    ///
    /// # Errors
    /// [`CloudEventError::Build`] for an empty source; [`CloudEventError::Data`] if the event
    /// does not serialise (it always does).
    pub fn to_cloudevent(&self, source: &str) -> Result<CloudEvent, CloudEventError> {
        let data = serde_json::to_value(&self.record.event).map_err(|e| CloudEventError::Data(e.to_string()))?;
        let mut b = EventBuilderV10::new()
            .id(self.id.clone())
            .source(source)
            .ty(self.event_type())
            .time(self.record.at)
            .data(DATA_CONTENT_TYPE, data)
            .extension(EXT_STREAM, self.record.stream.to_string())
            .extension(EXT_SEQ, int(self.record.seq))
            .extension(EXT_POSITION, int(self.position.0));
        if let Some(s) = subject(&self.record) {
            b = b.subject(s);
        }
        if !self.units.is_empty() {
            let path: Vec<&str> = self.units.iter().map(UnitId::as_str).collect();
            b = b.extension(EXT_UNITS, path.join("/"));
        }
        b.build().map_err(|e| CloudEventError::Build(e.to_string()))
    }

    /// The message as CloudEvents structured JSON from `source`.
    ///
    /// # Errors
    /// As [`Published::to_cloudevent`].
    pub fn to_cloudevent_json(&self, source: &str) -> Result<Vec<u8>, CloudEventError> {
        let ce = self.to_cloudevent(source)?;
        serde_json::to_vec(&ce).map_err(|e| CloudEventError::Json(e.to_string()))
    }

    /// The message a CloudEvent made by [`Published::to_cloudevent`] carries.
    ///
    /// # Errors
    /// A [`CloudEventError`] naming what is missing or wrong.
    pub fn from_cloudevent(ce: &CloudEvent) -> Result<Published, CloudEventError> {
        let ext_int = |name: &'static str| match ce.extension(name) {
            Some(ExtensionValue::Integer(v)) => u64::try_from(*v).map_err(|_| CloudEventError::Attribute(name)),
            _ => Err(CloudEventError::Attribute(name)),
        };
        let stream = match ce.extension(EXT_STREAM) {
            Some(ExtensionValue::String(s)) => s.parse::<StreamId>().map_err(|_| CloudEventError::Stream(s.clone()))?,
            _ => return Err(CloudEventError::Attribute(EXT_STREAM)),
        };
        let at = *ce.time().ok_or(CloudEventError::Attribute("time"))?;
        let event: Event = match ce.data() {
            Some(Data::Json(v)) => {
                serde_json::from_value(v.clone()).map_err(|e| CloudEventError::Data(e.to_string()))?
            }
            Some(Data::String(s)) => serde_json::from_str(s).map_err(|e| CloudEventError::Data(e.to_string()))?,
            Some(Data::Binary(b)) => serde_json::from_slice(b).map_err(|e| CloudEventError::Data(e.to_string()))?,
            None => return Err(CloudEventError::Attribute("data")),
        };
        let units = match ce.extension(EXT_UNITS) {
            None => Vec::new(),
            Some(ExtensionValue::String(s)) => s
                .split('/')
                .map(|u| UnitId::new(u).map_err(|_| CloudEventError::Attribute(EXT_UNITS)))
                .collect::<Result<_, _>>()?,
            Some(_) => return Err(CloudEventError::Attribute(EXT_UNITS)),
        };
        let record = Recorded { stream, seq: ext_int(EXT_SEQ)?, at, event };
        Ok(Published { id: ce.id().to_owned(), position: Position(ext_int(EXT_POSITION)?), record, units })
    }

    /// The message in CloudEvents structured JSON.
    ///
    /// # Errors
    /// As [`Published::from_cloudevent`], and [`CloudEventError::Json`] for bytes that are not a
    /// CloudEvent.
    pub fn from_cloudevent_json(bytes: &[u8]) -> Result<Published, CloudEventError> {
        let ce: CloudEvent = serde_json::from_slice(bytes).map_err(|e| CloudEventError::Json(e.to_string()))?;
        Self::from_cloudevent(&ce)
    }
}

//! Events: what happened, the only thing the log stores.

use std::sync::Arc;

use borsh::{BorshDeserialize, BorshSerialize};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::id::{PairingId, RequestId, TeamId, UnitId};
use crate::ledger::{LedgerError, LedgerEvent};
use crate::lifecycle::PairingSpec;
use crate::lifecycle::command::{DeclineReason, RaterRole};
use crate::lifecycle::stream::StreamId;
use crate::lifecycle::value::{Score, ServiceMinutes, Tags, Text, Volunteers};
use crate::request::RequestSpec;
use crate::team::{TeamChange, TeamSpec};

/// How an offer was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, BorshSerialize, BorshDeserialize)]
#[serde(rename_all = "snake_case")]
pub enum OfferMode {
    /// To the best eligible team of the current scope.
    Ranked,
    /// To the team paired with the household (结对), first.
    Paired,
    /// One of the simultaneous offers of an emergency (应急).
    Emergency,
    /// Part of a recruitment order (招募令) to every eligible team.
    Recruitment,
}

/// Why the dispatch scope was widened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, BorshSerialize, BorshDeserialize)]
#[serde(rename_all = "snake_case")]
pub enum WidenReason {
    /// No eligible team was left in the scope.
    NoCandidates,
    /// Too many declines or expired offers in the scope.
    Misses,
    /// Too long in the scope without a holder.
    Timeout,
}

/// What happened: the only thing the log stores.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, BorshSerialize, BorshDeserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
#[non_exhaustive]
pub enum Event {
    /// A request was accepted for dispatch at `scope`.
    Submitted {
        /// The request, contact included (masked on the bus).
        spec: Arc<RequestSpec>,
        /// The first dispatch scope.
        scope: UnitId,
        /// The pairing that generated it, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pairing: Option<PairingId>,
    },
    /// An offer went to a team; it reserves one unit of the team's capacity.
    Offered {
        /// The team.
        team: TeamId,
        /// It must answer before this instant.
        #[borsh(serialize_with = "crate::binary::at::serialize", deserialize_with = "crate::binary::at::deserialize")]
        deadline: DateTime<Utc>,
        /// How it was chosen.
        mode: OfferMode,
    },
    /// The team took the offer and now holds the request.
    Accepted {
        /// The team.
        team: TeamId,
    },
    /// The team turned the offer down.
    Declined {
        /// The team.
        team: TeamId,
        /// Why.
        reason: DeclineReason,
    },
    /// The offer's deadline passed unanswered.
    OfferExpired {
        /// The team.
        team: TeamId,
    },
    /// The offer was taken back (another team accepted, or the request ended).
    OfferWithdrawn {
        /// The team.
        team: TeamId,
    },
    /// Dispatch moved to a wider scope.
    ScopeWidened {
        /// The new scope.
        scope: UnitId,
        /// Why.
        reason: WidenReason,
    },
    /// A recruitment order (招募令) went to every eligible team of the widest scope.
    RecruitmentIssued {
        /// The scope.
        scope: UnitId,
        /// Number of teams offered.
        teams: u32,
    },
    /// The holding team arrived.
    CheckedIn {
        /// The team.
        team: TeamId,
    },
    /// The holding team did not come; it is released and the request dispatched again if time allows.
    NoShow {
        /// The team.
        team: TeamId,
    },
    /// The service was given.
    Completed {
        /// The team.
        team: TeamId,
        /// Minutes of service.
        minutes: ServiceMinutes,
        /// The volunteers present, sorted.
        volunteers: Volunteers,
        /// Whether a third party is to review it (回访抽检).
        #[serde(default)]
        sampled: bool,
    },
    /// A party rated the service.
    Evaluated {
        /// Who.
        role: RaterRole,
        /// The rating.
        score: Score,
        /// Tags from the fixed list.
        #[serde(default, skip_serializing_if = "Tags::is_empty")]
        tags: Tags,
        /// Free text.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        comment: Option<Text>,
    },
    /// The resident says the service did not take place: credits are frozen until the station resolves it.
    Disputed {
        /// Who raised it.
        by: RaterRole,
    },
    /// The station resolved the dispute.
    DisputeResolved {
        /// Whether the service took place.
        served: bool,
        /// The station's finding.
        note: Text,
    },
    /// The ratings are settled: the combined score moves the team's reputation;
    /// if served, the volunteers' hours and points follow.
    Settled {
        /// Combined score in thousandths of a point, 1000..=5000.
        combined_milli: u32,
        /// Roles that did not rate, counted at the default score.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        defaulted: Vec<RaterRole>,
        /// Whether the service took place (false only after a dispute found it did not).
        served: bool,
    },
    /// Terminal: completed and evaluated (or the evaluation window passed).
    Closed,
    /// Terminal: withdrawn by the resident.
    Cancelled {
        /// Why.
        reason: Text,
    },
    /// Terminal: the window passed before anyone served it.
    Expired,
    /// Terminal: nobody in the widest scope could or would serve it.
    Unfulfillable,
    /// A pairing began.
    Paired {
        /// The pairing, contact included (masked on the bus).
        spec: Box<PairingSpec>,
    },
    /// A pairing ended.
    Unpaired {
        /// Why.
        reason: Text,
    },
    /// A pairing's slot produced a request.
    VisitScheduled {
        /// The slot's start.
        #[borsh(serialize_with = "crate::binary::at::serialize", deserialize_with = "crate::binary::at::deserialize")]
        slot: DateTime<Utc>,
        /// The request made for it.
        request: RequestId,
    },
    /// A pairing's slot passed before it could be scheduled (the engine was down).
    VisitSkipped {
        /// The slot's start.
        #[borsh(serialize_with = "crate::binary::at::serialize", deserialize_with = "crate::binary::at::deserialize")]
        slot: DateTime<Utc>,
    },
    /// The service credits of a settled request could not be made (an account was closed,
    /// say); the request closes anyway and the station corrects the ledger by an adjustment.
    CreditFailed {
        /// The ledger's refusal.
        error: LedgerError,
    },
    /// A team joined the roster while the engine runs (on its `team/<id>` stream).
    TeamAdded {
        /// Its declaration.
        spec: Box<TeamSpec>,
    },
    /// A team's declaration changed.
    TeamChanged {
        /// What changed.
        change: TeamChange,
    },
    /// A team stopped taking offers.
    TeamDeactivated {
        /// Why.
        reason: Text,
    },
    /// A deactivated team takes offers again.
    TeamReactivated,
    /// Something happened to the ledger (on the `ledger` stream only).
    Ledger {
        /// The ledger's own event.
        entry: LedgerEvent,
    },
}

impl Event {
    /// The event with personal data masked, as it may leave the process (bus, logs, reports):
    /// the resident's contact masked and their home's location coarsened ([`Location::coarse`]).
    ///
    /// [`Location::coarse`]: crate::geo::Location::coarse
    pub fn masked(&self) -> Event {
        match self {
            Event::Submitted { spec, scope, pairing } => Event::Submitted {
                spec: Arc::new(RequestSpec {
                    contact: spec.contact.masked_contact(),
                    location: spec.location.coarse(),
                    ..(**spec).clone()
                }),
                scope: scope.clone(),
                pairing: pairing.clone(),
            },
            Event::Paired { spec } => Event::Paired {
                spec: Box::new(PairingSpec {
                    contact: spec.contact.masked_contact(),
                    location: spec.location.coarse(),
                    ..(**spec).clone()
                }),
            },
            other => other.clone(),
        }
    }

    /// The event's name, as in its serialised `type`.
    pub fn name(&self) -> &'static str {
        match self {
            Event::Submitted { .. } => "submitted",
            Event::Offered { .. } => "offered",
            Event::Accepted { .. } => "accepted",
            Event::Declined { .. } => "declined",
            Event::OfferExpired { .. } => "offer_expired",
            Event::OfferWithdrawn { .. } => "offer_withdrawn",
            Event::ScopeWidened { .. } => "scope_widened",
            Event::RecruitmentIssued { .. } => "recruitment_issued",
            Event::CheckedIn { .. } => "checked_in",
            Event::NoShow { .. } => "no_show",
            Event::Completed { .. } => "completed",
            Event::Evaluated { .. } => "evaluated",
            Event::Disputed { .. } => "disputed",
            Event::DisputeResolved { .. } => "dispute_resolved",
            Event::Settled { .. } => "settled",
            Event::Closed => "closed",
            Event::Cancelled { .. } => "cancelled",
            Event::Expired => "expired",
            Event::Unfulfillable => "unfulfillable",
            Event::Paired { .. } => "paired",
            Event::Unpaired { .. } => "unpaired",
            Event::VisitScheduled { .. } => "visit_scheduled",
            Event::VisitSkipped { .. } => "visit_skipped",
            Event::CreditFailed { .. } => "credit_failed",
            Event::TeamAdded { .. } => "team_added",
            Event::TeamChanged { .. } => "team_changed",
            Event::TeamDeactivated { .. } => "team_deactivated",
            Event::TeamReactivated => "team_reactivated",
            Event::Ledger { .. } => "ledger",
        }
    }
}

/// The format of [`Event::to_binary`]: its first byte. A build that changes how an existing
/// event is laid out (a variant or a field removed or reordered, a field added) bumps it, so a
/// body of another layout is refused by name rather than misread. A variant appended at the end
/// of an enum leaves every stored body as it was, and the format with it.
pub const EVENT_BINARY_FORMAT: u8 = 1;

/// Why bytes are not an event's binary form.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BinaryEventError {
    /// No bytes at all.
    #[error("an empty event body")]
    Empty,
    /// Written in a layout this build does not read.
    #[error("event body format {found}, this build reads {EVENT_BINARY_FORMAT}")]
    Format {
        /// The body's first byte.
        found: u8,
    },
    /// The bytes after the format byte are not an event, or have bytes left over.
    #[error("not an event: {message}")]
    Body {
        /// What the decoder found wrong.
        message: String,
    },
    /// The event holds a value the binary form cannot carry (a NaN).
    #[error("the event does not encode: {message}")]
    Encode {
        /// What the encoder found wrong.
        message: String,
    },
}

impl Event {
    /// The event's compact binary form: [`EVENT_BINARY_FORMAT`], then the event in borsh. It
    /// decodes several times faster than JSON, which stays the form for people and the bus.
    ///
    /// # Errors
    /// [`BinaryEventError::Encode`] if a number is NaN (no validated event holds one).
    pub fn to_binary(&self) -> Result<Vec<u8>, BinaryEventError> {
        let mut out = Vec::with_capacity(64);
        out.push(EVENT_BINARY_FORMAT);
        borsh::to_writer(&mut out, self).map_err(|e| BinaryEventError::Encode { message: e.to_string() })?;
        Ok(out)
    }

    /// The event whose [binary form](Event::to_binary) `bytes` are. Every value is checked as
    /// its JSON form is (ids, scores, texts, locations, windows).
    ///
    /// # Errors
    /// [`BinaryEventError`]: empty, another format, or not an event.
    pub fn from_binary(bytes: &[u8]) -> Result<Event, BinaryEventError> {
        match bytes.split_first() {
            None => Err(BinaryEventError::Empty),
            Some((&EVENT_BINARY_FORMAT, body)) => {
                borsh::from_slice(body).map_err(|e| BinaryEventError::Body { message: e.to_string() })
            }
            Some((&found, _)) => Err(BinaryEventError::Format { found }),
        }
    }
}

/// An event with its place in its stream: what `decide` returns and the store keeps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Recorded {
    /// The stream.
    pub stream: StreamId,
    /// Its sequence number in the stream, from 1, gapless.
    pub seq: u64,
    /// When it was decided (the `now` of the command).
    pub at: DateTime<Utc>,
    /// What happened.
    pub event: Event,
}

impl Recorded {
    /// The event's stable id, `<stream>#<seq>`: unique, and the same on every replay.
    pub fn id(&self) -> String {
        format!("{}#{}", self.stream, self.seq)
    }

    /// The record with personal data masked.
    pub fn masked(&self) -> Recorded {
        Recorded { stream: self.stream.clone(), seq: self.seq, at: self.at, event: self.event.masked() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The layout is pinned: a change to it must bump [`EVENT_BINARY_FORMAT`], or stored logs
    /// would be misread.
    #[test]
    fn the_binary_layout_is_pinned() {
        let team = TeamId::new("t1").expect("an id");
        let bytes = Event::Accepted { team }.to_binary().expect("encodes");
        assert_eq!(bytes, [EVENT_BINARY_FORMAT, 2, 2, 0, 0, 0, b't', b'1']);
        assert_eq!(Event::Closed.to_binary().expect("encodes"), [EVENT_BINARY_FORMAT, 15]);
        // An instant is whole seconds (i64) then nanoseconds (u32); a unit variant is its index.
        let deadline = DateTime::<Utc>::UNIX_EPOCH + chrono::Duration::nanoseconds(1_000_000_005);
        let team = TeamId::new("t1").expect("an id");
        let offered = Event::Offered { team, deadline, mode: OfferMode::Emergency }.to_binary().expect("encodes");
        let mut want = vec![EVENT_BINARY_FORMAT, 1, 2, 0, 0, 0, b't', b'1'];
        want.extend([1, 0, 0, 0, 0, 0, 0, 0, 5, 0, 0, 0, 2]);
        assert_eq!(offered, want);
        // The ledger's events nest: variant 28, then the ledger event's and the account's indexes.
        let opened = LedgerEvent::AccountOpened {
            account: crate::ledger::AccountId::PointsIssuance,
            at: DateTime::<Utc>::UNIX_EPOCH,
        };
        let mut want = vec![EVENT_BINARY_FORMAT, 28, 0, 4];
        want.extend([0; 12]);
        assert_eq!(Event::Ledger { entry: opened }.to_binary().expect("encodes"), want);
    }

    #[test]
    fn a_binary_body_is_checked_as_json_is() {
        // Evaluated (variant 11) by the resident (0), with no tags (a u32 0) and no comment (0).
        let rated = |score: u8| Event::from_binary(&[EVENT_BINARY_FORMAT, 11, 0, score, 0, 0, 0, 0, 0]);
        assert!(matches!(rated(5), Ok(Event::Evaluated { score, .. }) if score == Score::new(5).expect("valid")));
        assert!(matches!(rated(9), Err(BinaryEventError::Body { .. })), "{:?}", rated(9));
        assert!(matches!(rated(0), Err(BinaryEventError::Body { .. })));
        let bad_id = Event::from_binary(&[EVENT_BINARY_FORMAT, 2, 2, 0, 0, 0, b'/', b'x']);
        assert!(matches!(bad_id, Err(BinaryEventError::Body { .. })), "{bad_id:?}");
        let trailing = Event::from_binary(&[EVENT_BINARY_FORMAT, 15, 0]);
        assert!(matches!(trailing, Err(BinaryEventError::Body { .. })), "{trailing:?}");
        assert_eq!(Event::from_binary(&[]), Err(BinaryEventError::Empty));
        assert_eq!(Event::from_binary(&[0, 15]), Err(BinaryEventError::Format { found: 0 }));
    }
}

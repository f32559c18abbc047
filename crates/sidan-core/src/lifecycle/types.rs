//! Commands, events and the streams they belong to.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::id::{IdError, PairingId, RequestId, TeamId, UnitId, VolunteerId};
use crate::ledger::{LedgerCommand, LedgerEvent};
use crate::lifecycle::evaluation::Tag;
use crate::lifecycle::pairing::PairingSpec;
use crate::request::RequestSpec;

/// The longest free text (a reason, a comment) a command may carry, in bytes.
pub const MAX_TEXT_LEN: usize = 500;

/// The most volunteers one completion may list.
pub const MAX_VOLUNTEERS: usize = 200;

/// The longest service one completion may record, in minutes (24 hours).
pub const MAX_SERVICE_MIN: u32 = 24 * 60;

/// An event stream: the life of one request, of one pairing, or the ledger.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum StreamId {
    /// A request's stream, written `request/<id>`.
    Request(RequestId),
    /// A pairing's stream, written `pairing/<id>`.
    Pairing(PairingId),
    /// The city's one ledger stream (points, time bank, stock), written `ledger`.
    Ledger,
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StreamId::Request(r) => write!(f, "request/{r}"),
            StreamId::Pairing(p) => write!(f, "pairing/{p}"),
            StreamId::Ledger => f.write_str("ledger"),
        }
    }
}

/// Why a stream name does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StreamIdError {
    /// Neither `request/<id>`, `pairing/<id>` nor `ledger`.
    #[error("stream {0:?} is neither request/<id>, pairing/<id> nor ledger")]
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

/// Why a team declines an offer.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum DeclineReason {
    /// No volunteer is free at that time.
    NoVolunteers,
    /// Too far away.
    TooFar,
    /// The service is outside what the team does.
    NotOurService,
    /// Anything else, in words.
    Other(String),
}

/// Who rates a completed request (多元评单).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RaterRole {
    /// The resident who asked.
    Resident,
    /// The station the request was made at.
    Station,
    /// The team that served (rating the request and its own work).
    Team,
    /// An independent third party.
    ThirdParty,
}

impl RaterRole {
    /// Every role, in order.
    pub const ALL: [RaterRole; 4] = [RaterRole::Resident, RaterRole::Station, RaterRole::Team, RaterRole::ThirdParty];
}

/// How an offer was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WidenReason {
    /// No eligible team was left in the scope.
    NoCandidates,
    /// Too many declines or expired offers in the scope.
    Misses,
    /// Too long in the scope without a holder.
    Timeout,
}

/// A command: what a resident, a team, a station or the engine's timer asks for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
#[non_exhaustive]
pub enum Command {
    /// A resident asks for a service (群众点单).
    Submit {
        /// The request.
        spec: RequestSpec,
    },
    /// A team takes an offer (团队接单).
    Accept {
        /// The request.
        request: RequestId,
        /// The team.
        team: TeamId,
    },
    /// A team turns an offer down.
    Decline {
        /// The request.
        request: RequestId,
        /// The team.
        team: TeamId,
        /// Why.
        reason: DeclineReason,
    },
    /// The holding team arrives.
    CheckIn {
        /// The request.
        request: RequestId,
        /// The team.
        team: TeamId,
    },
    /// The holding team has served the request.
    Complete {
        /// The request.
        request: RequestId,
        /// The team.
        team: TeamId,
        /// Minutes of service.
        minutes: u32,
        /// The volunteers present.
        volunteers: Vec<VolunteerId>,
    },
    /// A party rates a completed request (多元评单).
    Evaluate {
        /// The request.
        request: RequestId,
        /// Who rates.
        role: RaterRole,
        /// The rating, 1 to 5.
        score: u8,
        /// Tags from the fixed list; `not_served` from the resident opens a dispute.
        #[serde(default)]
        tags: Vec<Tag>,
        /// Free text.
        #[serde(default)]
        comment: Option<String>,
    },
    /// The station settles a dispute over whether the service took place.
    ResolveDispute {
        /// The request.
        request: RequestId,
        /// Whether it was served (credits follow) or not.
        served: bool,
        /// The station's finding.
        note: String,
    },
    /// The resident withdraws the request (before check-in).
    Cancel {
        /// The request.
        request: RequestId,
        /// Why.
        reason: String,
    },
    /// The station reports that the holding team did not come.
    ReportNoShow {
        /// The request.
        request: RequestId,
        /// The team.
        team: TeamId,
    },
    /// The engine's timer: do whatever is due on this stream at `now`.
    Tick {
        /// The stream.
        stream: StreamId,
    },
    /// Pair a team with a household (结对).
    Pair {
        /// The pairing.
        spec: PairingSpec,
    },
    /// End a pairing.
    Unpair {
        /// The pairing.
        pairing: PairingId,
        /// Why.
        reason: String,
    },
    /// Operations on the ledger (a redemption, a restock, a time-bank withdrawal, an
    /// adjustment, a reversal, ...), applied together or not at all; see docs/ledger.md.
    Ledger {
        /// The operations.
        command: LedgerCommand,
    },
}

/// The kind of a command, for the state × command table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[allow(missing_docs)]
pub enum CommandKind {
    Submit,
    Accept,
    Decline,
    CheckIn,
    Complete,
    Evaluate,
    ResolveDispute,
    Cancel,
    ReportNoShow,
    Tick,
}

impl CommandKind {
    /// Every request command kind.
    pub const ALL: [CommandKind; 10] = [
        CommandKind::Submit,
        CommandKind::Accept,
        CommandKind::Decline,
        CommandKind::CheckIn,
        CommandKind::Complete,
        CommandKind::Evaluate,
        CommandKind::ResolveDispute,
        CommandKind::Cancel,
        CommandKind::ReportNoShow,
        CommandKind::Tick,
    ];
}

impl Command {
    /// The stream the command is addressed to.
    pub fn stream(&self) -> StreamId {
        match self {
            Command::Submit { spec } => StreamId::Request(spec.id.clone()),
            Command::Accept { request, .. }
            | Command::Decline { request, .. }
            | Command::CheckIn { request, .. }
            | Command::Complete { request, .. }
            | Command::Evaluate { request, .. }
            | Command::ResolveDispute { request, .. }
            | Command::Cancel { request, .. }
            | Command::ReportNoShow { request, .. } => StreamId::Request(request.clone()),
            Command::Tick { stream } => stream.clone(),
            Command::Pair { spec } => StreamId::Pairing(spec.id.clone()),
            Command::Unpair { pairing, .. } => StreamId::Pairing(pairing.clone()),
            Command::Ledger { .. } => StreamId::Ledger,
        }
    }

    /// The kind of a request command; `None` for pairing and ledger commands.
    pub fn request_kind(&self) -> Option<CommandKind> {
        Some(match self {
            Command::Submit { .. } => CommandKind::Submit,
            Command::Accept { .. } => CommandKind::Accept,
            Command::Decline { .. } => CommandKind::Decline,
            Command::CheckIn { .. } => CommandKind::CheckIn,
            Command::Complete { .. } => CommandKind::Complete,
            Command::Evaluate { .. } => CommandKind::Evaluate,
            Command::ResolveDispute { .. } => CommandKind::ResolveDispute,
            Command::Cancel { .. } => CommandKind::Cancel,
            Command::ReportNoShow { .. } => CommandKind::ReportNoShow,
            Command::Tick { stream: StreamId::Request(_) } => CommandKind::Tick,
            Command::Tick { stream: StreamId::Pairing(_) | StreamId::Ledger }
            | Command::Pair { .. }
            | Command::Unpair { .. }
            | Command::Ledger { .. } => {
                return None;
            }
        })
    }
}

/// What happened: the only thing the log stores.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
        minutes: u32,
        /// The volunteers present.
        volunteers: Vec<VolunteerId>,
        /// Whether a third party is to review it (回访抽检).
        #[serde(default)]
        sampled: bool,
    },
    /// A party rated the service.
    Evaluated {
        /// Who.
        role: RaterRole,
        /// 1 to 5.
        score: u8,
        /// Tags from the fixed list.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        tags: Vec<Tag>,
        /// Free text.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        comment: Option<String>,
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
        note: String,
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
        reason: String,
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
        reason: String,
    },
    /// A pairing's slot produced a request.
    VisitScheduled {
        /// The slot's start.
        slot: DateTime<Utc>,
        /// The request made for it.
        request: RequestId,
    },
    /// A pairing's slot passed before it could be scheduled (the engine was down).
    VisitSkipped {
        /// The slot's start.
        slot: DateTime<Utc>,
    },
    /// The service credits of a settled request could not be made (an account was closed,
    /// say); the request closes anyway and the station corrects the ledger by an adjustment.
    CreditFailed {
        /// The ledger's refusal, in words.
        error: String,
    },
    /// Something happened to the ledger (on the `ledger` stream only).
    Ledger {
        /// The ledger's own event.
        entry: LedgerEvent,
    },
}

impl Event {
    /// The event with personal data masked, as it may leave the process (bus, logs, reports).
    pub fn masked(&self) -> Event {
        match self {
            Event::Submitted { spec, scope, pairing } => Event::Submitted {
                spec: Arc::new(RequestSpec { contact: spec.contact.masked_contact(), ..(**spec).clone() }),
                scope: scope.clone(),
                pairing: pairing.clone(),
            },
            Event::Paired { spec } => Event::Paired {
                spec: Box::new(PairingSpec { contact: spec.contact.masked_contact(), ..(**spec).clone() }),
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
            Event::Ledger { .. } => "ledger",
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

//! Events: what happened, the only thing the log stores.

use std::sync::Arc;

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
            Event::TeamAdded { .. } => "team_added",
            Event::TeamChanged { .. } => "team_changed",
            Event::TeamDeactivated { .. } => "team_deactivated",
            Event::TeamReactivated => "team_reactivated",
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

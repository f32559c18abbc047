//! A request's state, the state × command table, and the lifecycle's errors.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::id::{HouseholdId, PairingId, RequestId, TeamId, UnitId};
use crate::index::TeamIdx;
use crate::lifecycle::ScheduleError;
use crate::lifecycle::{CommandKind, OfferMode, RaterRole};
use crate::request::{ContactError, Request, RequestError};
use crate::team::TeamError;
use crate::units::UnitIdx;

/// Where a request is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Phase {
    /// Being dispatched: no holder, zero or more open offers.
    Open,
    /// Accepted by a team, not yet served.
    Held {
        /// The holder.
        team: TeamIdx,
    },
    /// The holder has arrived.
    CheckedIn {
        /// The holder.
        team: TeamIdx,
    },
    /// Served; evaluations are being taken.
    Completed {
        /// The team that served.
        team: TeamIdx,
        /// When.
        at: DateTime<Utc>,
    },
    /// Terminal: completed and evaluated.
    Closed,
    /// Terminal: withdrawn by the resident.
    Cancelled,
    /// Terminal: the window passed.
    Expired,
    /// Terminal: nobody could serve it.
    Unfulfillable,
}

/// The phase without its data, and `New` for a request not yet submitted:
/// the rows of the state × command table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[allow(missing_docs)]
pub enum PhaseKind {
    New,
    Open,
    Held,
    CheckedIn,
    Completed,
    Closed,
    Cancelled,
    Expired,
    Unfulfillable,
}

impl PhaseKind {
    /// Every row of the table.
    pub const ALL: [PhaseKind; 9] = [
        PhaseKind::New,
        PhaseKind::Open,
        PhaseKind::Held,
        PhaseKind::CheckedIn,
        PhaseKind::Completed,
        PhaseKind::Closed,
        PhaseKind::Cancelled,
        PhaseKind::Expired,
        PhaseKind::Unfulfillable,
    ];

    /// Whether nothing can change any more.
    pub fn is_terminal(self) -> bool {
        matches!(self, PhaseKind::Closed | PhaseKind::Cancelled | PhaseKind::Expired | PhaseKind::Unfulfillable)
    }
}

impl std::fmt::Display for PhaseKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = match self {
            PhaseKind::New => "new",
            PhaseKind::Open => "open",
            PhaseKind::Held => "held",
            PhaseKind::CheckedIn => "checked in",
            PhaseKind::Completed => "completed",
            PhaseKind::Closed => "closed",
            PhaseKind::Cancelled => "cancelled",
            PhaseKind::Expired => "expired",
            PhaseKind::Unfulfillable => "unfulfillable",
        };
        f.write_str(s)
    }
}

impl Phase {
    /// Its row in the table.
    pub fn kind(&self) -> PhaseKind {
        match self {
            Phase::Open => PhaseKind::Open,
            Phase::Held { .. } => PhaseKind::Held,
            Phase::CheckedIn { .. } => PhaseKind::CheckedIn,
            Phase::Completed { .. } => PhaseKind::Completed,
            Phase::Closed => PhaseKind::Closed,
            Phase::Cancelled => PhaseKind::Cancelled,
            Phase::Expired => PhaseKind::Expired,
            Phase::Unfulfillable => PhaseKind::Unfulfillable,
        }
    }

    /// The team holding the request (accepted, checked in), if any.
    pub fn holder(&self) -> Option<TeamIdx> {
        match self {
            Phase::Held { team } | Phase::CheckedIn { team } => Some(*team),
            _ => None,
        }
    }
}

/// An offer still waiting for an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct OpenOffer {
    /// The team.
    pub team: TeamIdx,
    /// It must answer before this instant.
    pub deadline: DateTime<Utc>,
    /// How it was chosen.
    pub mode: OfferMode,
}

/// One request's state, folded from its stream.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestState {
    /// Its stream, `request/<id>`.
    pub stream: crate::lifecycle::StreamId,
    /// The validated request.
    pub request: Request,
    /// Where it is.
    pub phase: Phase,
    /// Events in its stream.
    pub version: u64,
    /// The current dispatch scope.
    pub scope: UnitIdx,
    /// Declines and expiries at the current scope.
    pub misses: u32,
    /// When dispatch entered the current scope.
    pub scope_since: DateTime<Utc>,
    /// Offers waiting for an answer, in the order made.
    pub offers: Vec<OpenOffer>,
    /// Teams never to be offered this request again (declined, let expire, no-show), sorted.
    pub excluded: Vec<TeamIdx>,
    /// Every team ever offered this request, sorted (no team is offered twice).
    pub offered: Vec<TeamIdx>,
    /// Whether a recruitment order went out.
    pub recruiting: bool,
    /// The pairing that made it.
    pub pairing: Option<PairingId>,
    /// Ratings received, by role.
    pub evaluations: Vec<(RaterRole, u8)>,
    /// Whether a third party reviews it (decided at completion).
    pub sampled: bool,
    /// Whether a dispute is open (credits frozen until the station resolves it).
    pub disputed: bool,
    /// The minutes and volunteers of the completion, for the credits.
    pub service: Option<(u32, Vec<crate::id::VolunteerId>)>,
    /// When the stream next needs a tick (kept in step with the wake-up queue).
    pub(crate) wake: Option<DateTime<Utc>>,
}

impl RequestState {
    /// Whether `team` has an open offer.
    pub fn open_offer(&self, team: TeamIdx) -> Option<&OpenOffer> {
        self.offers.iter().find(|o| o.team == team)
    }

    /// The request's household.
    pub fn household(&self) -> Option<&HouseholdId> {
        self.request.household()
    }
}

/// Why a command is refused. Every refusal changes nothing.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum LifecycleError {
    /// The evaluation window of the request closed (it settles with the defaults).
    #[error("request {request}: its evaluation window closed at {closed}")]
    EvaluationClosed {
        /// The request.
        request: RequestId,
        /// When the window closed.
        closed: DateTime<Utc>,
    },
    /// The ledger refuses the command; see [`LedgerError`](crate::ledger::LedgerError).
    #[error("ledger: {0}")]
    Ledger(#[from] crate::ledger::LedgerError),
    /// No request with this id was submitted.
    #[error("request {request}: unknown")]
    UnknownRequest {
        /// The request.
        request: RequestId,
    },
    /// A request with this id exists already.
    #[error("request {request}: already submitted")]
    DuplicateRequest {
        /// The request.
        request: RequestId,
    },
    /// The id has the form of a pairing's visit (`<pairing>:<YYYYMMDDTHHMM>`), which only a
    /// pairing may use.
    #[error("request {request}: ids of the form <pairing>:<YYYYMMDDTHHMM> are kept for pairing visits")]
    ReservedRequestId {
        /// The request.
        request: RequestId,
    },
    /// The submission is invalid.
    #[error(transparent)]
    InvalidRequest(#[from] RequestError),
    /// The window's latest start is not after `now`.
    #[error("request {request}: its window ends at {end}, too soon to serve it")]
    WindowPassed {
        /// The request.
        request: RequestId,
        /// The window's end.
        end: DateTime<Utc>,
    },
    /// The window starts too far ahead.
    #[error("request {request}: its window starts more than {max_days} days ahead")]
    OverHorizon {
        /// The request.
        request: RequestId,
        /// The horizon.
        max_days: i64,
    },
    /// No team with this id exists.
    #[error("team {team}: unknown")]
    UnknownTeam {
        /// The team.
        team: TeamId,
    },
    /// The request has ended.
    #[error("request {request}: already {phase}")]
    Terminal {
        /// The request.
        request: RequestId,
        /// How it ended.
        phase: PhaseKind,
    },
    /// The command does not fit the request's phase.
    #[error("request {request}: cannot {command:?} while {phase}")]
    WrongPhase {
        /// The request.
        request: RequestId,
        /// The command.
        command: CommandKind,
        /// The phase.
        phase: PhaseKind,
    },
    /// Another team holds the request.
    #[error("request {request}: already taken")]
    AlreadyTaken {
        /// The request.
        request: RequestId,
    },
    /// The team has no open offer for the request.
    #[error("request {request}: team {team} has no open offer")]
    NotOffered {
        /// The request.
        request: RequestId,
        /// The team.
        team: TeamId,
    },
    /// The offer's deadline has passed.
    #[error("request {request}: the offer to team {team} expired at {deadline}")]
    OfferExpired {
        /// The request.
        request: RequestId,
        /// The team.
        team: TeamId,
        /// The deadline.
        deadline: DateTime<Utc>,
    },
    /// The team does not hold the request.
    #[error("request {request}: team {team} does not hold it")]
    NotHolder {
        /// The request.
        request: RequestId,
        /// The team.
        team: TeamId,
    },
    /// This role has rated the request already.
    #[error("request {request}: already rated by the {role:?}")]
    AlreadyEvaluated {
        /// The request.
        request: RequestId,
        /// The role.
        role: RaterRole,
    },
    /// The request ended and left memory; its id cannot be used again.
    #[error("request {request}: ended and retired; its id cannot be used again")]
    Retired {
        /// The request.
        request: RequestId,
    },
    /// A pairing's contact has a field too long.
    #[error("pairing {pairing}: {error}")]
    BadContact {
        /// The pairing.
        pairing: PairingId,
        /// Which field, and its length.
        error: ContactError,
    },
    /// A roster change does not fit the team index (unknown skill, reach out of range,
    /// duplicate id, ...).
    #[error("{0}")]
    Team(#[from] TeamError),
    /// The team is deactivated already.
    #[error("team {team} is not active")]
    TeamInactive {
        /// The team.
        team: TeamId,
    },
    /// The team is active already.
    #[error("team {team} is active already")]
    TeamActive {
        /// The team.
        team: TeamId,
    },
    /// A change of a team that changes nothing.
    #[error("team {team}: the change names no field")]
    EmptyChange {
        /// The team.
        team: TeamId,
    },
    /// No pairing with this id exists.
    #[error("pairing {pairing}: unknown")]
    UnknownPairing {
        /// The pairing.
        pairing: PairingId,
    },
    /// A pairing with this id exists already.
    #[error("pairing {pairing}: already exists")]
    DuplicatePairing {
        /// The pairing.
        pairing: PairingId,
    },
    /// The household is paired already.
    #[error("household {household} is already paired by {pairing}")]
    HouseholdPaired {
        /// The household.
        household: HouseholdId,
        /// Its pairing.
        pairing: PairingId,
    },
    /// The pairing has ended.
    #[error("pairing {pairing}: already ended")]
    PairingEnded {
        /// The pairing.
        pairing: PairingId,
    },
    /// The pairing's unit or service is unknown.
    #[error("pairing {pairing}: unknown {what} {id}")]
    PairingUnknownRef {
        /// The pairing.
        pairing: PairingId,
        /// `unit` or `service`.
        what: &'static str,
        /// The id.
        id: String,
    },
    /// The pairing's schedule is invalid.
    #[error("pairing {pairing}: {error}")]
    BadSchedule {
        /// The pairing.
        pairing: PairingId,
        /// What is wrong.
        error: ScheduleError,
    },
    /// A third-party rating of a request not sampled for review.
    #[error("request {request}: not sampled for a third-party review")]
    NotSampled {
        /// The request.
        request: RequestId,
    },
    /// A dispute resolution without a dispute.
    #[error("request {request}: no dispute is open")]
    NotDisputed {
        /// The request.
        request: RequestId,
    },
    /// The unit has no ancestor to widen to (internal consistency).
    #[error("unit {unit}: not in the hierarchy")]
    UnknownUnit {
        /// The unit.
        unit: UnitId,
    },
}

/// The state × command table: whether `command` may be given in `phase`,
/// and the typed refusal when not. Finer checks (which team, which deadline)
/// follow in `decide`.
pub fn check(request: &RequestId, phase: PhaseKind, command: CommandKind) -> Result<(), LifecycleError> {
    use CommandKind as C;
    use PhaseKind as P;
    let wrong = || LifecycleError::WrongPhase { request: request.clone(), command, phase };
    let taken = || LifecycleError::AlreadyTaken { request: request.clone() };
    let ended = || LifecycleError::Terminal { request: request.clone(), phase };
    match (phase, command) {
        (P::New, C::Submit) => Ok(()),
        (P::New, _) => Err(LifecycleError::UnknownRequest { request: request.clone() }),
        (_, C::Submit) => Err(LifecycleError::DuplicateRequest { request: request.clone() }),
        // The timer may fire in any phase; in a terminal one it does nothing.
        (_, C::Tick) => Ok(()),
        (P::Open, C::Accept | C::Decline | C::Cancel) => Ok(()),
        (P::Open, C::CheckIn | C::Complete | C::Evaluate | C::ResolveDispute | C::ReportNoShow) => Err(wrong()),
        (P::Held, C::CheckIn | C::Cancel | C::ReportNoShow) => Ok(()),
        (P::Held, C::Accept | C::Decline) => Err(taken()),
        (P::Held, C::Complete | C::Evaluate | C::ResolveDispute) => Err(wrong()),
        (P::CheckedIn, C::Complete) => Ok(()),
        (P::CheckedIn, C::Accept | C::Decline) => Err(taken()),
        (P::CheckedIn, C::CheckIn | C::Evaluate | C::ResolveDispute | C::Cancel | C::ReportNoShow) => Err(wrong()),
        (P::Completed, C::Evaluate | C::ResolveDispute) => Ok(()),
        (P::Completed, C::Accept | C::Decline) => Err(taken()),
        (P::Completed, C::CheckIn | C::Complete | C::Cancel | C::ReportNoShow) => Err(wrong()),
        (P::Closed | P::Cancelled | P::Expired | P::Unfulfillable, _) => Err(ended()),
    }
}

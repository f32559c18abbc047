//! Commands, split by the stream they address: what a resident, a team, a
//! station, an admin or the engine's timer asks for.

use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};

use crate::id::{PairingId, RequestId, TeamId};
use crate::ledger::LedgerCommand;
use crate::lifecycle::PairingSpec;
use crate::lifecycle::stream::StreamId;
use crate::lifecycle::value::{Score, ServiceMinutes, Tags, Text, Volunteers};
use crate::request::RequestSpec;
use crate::team::{TeamChange, TeamSpec};

/// Why a team declines an offer.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, BorshSerialize, BorshDeserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum DeclineReason {
    /// No volunteer is free at that time.
    NoVolunteers,
    /// Too far away.
    TooFar,
    /// The service is outside what the team does.
    NotOurService,
    /// Anything else, in words.
    Other(Text),
}

/// Who rates a completed request (多元评单).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, BorshSerialize, BorshDeserialize,
)]
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

/// A command, by the stream it addresses. One router
/// ([`Lifecycle::decide`](crate::lifecycle::Lifecycle::decide)) sends each
/// kind to its own decision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
#[non_exhaustive]
pub enum Command {
    /// To one request's stream.
    Request(RequestCommand),
    /// To one pairing's stream.
    Pairing(PairingCommand),
    /// To the ledger stream: operations applied together or not at all (a
    /// redemption, a restock, a time-bank withdrawal, an adjustment, a
    /// reversal, ...); see docs/ledger.md.
    Ledger(LedgerCommand),
    /// To one team's roster stream: the roster changed while the engine runs.
    Roster(RosterCommand),
    /// The engine's timer: do whatever is due on this stream at `now`.
    Tick(StreamId),
}

impl Command {
    /// The stream the command is addressed to.
    pub fn stream(&self) -> StreamId {
        match self {
            Command::Request(c) => StreamId::Request(c.request().clone()),
            Command::Pairing(c) => StreamId::Pairing(c.pairing().clone()),
            Command::Ledger(_) => StreamId::Ledger,
            Command::Roster(c) => StreamId::Team(c.team().clone()),
            Command::Tick(stream) => stream.clone(),
        }
    }
}

impl From<RequestCommand> for Command {
    fn from(c: RequestCommand) -> Self {
        Command::Request(c)
    }
}

impl From<PairingCommand> for Command {
    fn from(c: PairingCommand) -> Self {
        Command::Pairing(c)
    }
}

impl From<LedgerCommand> for Command {
    fn from(c: LedgerCommand) -> Self {
        Command::Ledger(c)
    }
}

impl From<RosterCommand> for Command {
    fn from(c: RosterCommand) -> Self {
        Command::Roster(c)
    }
}

/// A command to one request (点单, 接单, 评单 and the station's actions).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
#[non_exhaustive]
pub enum RequestCommand {
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
        minutes: ServiceMinutes,
        /// The volunteers present.
        volunteers: Volunteers,
    },
    /// A party rates a completed request (多元评单).
    Evaluate {
        /// The request.
        request: RequestId,
        /// Who rates.
        role: RaterRole,
        /// The rating.
        score: Score,
        /// Tags from the fixed list; `not_served` from the resident opens a dispute.
        #[serde(default)]
        tags: Tags,
        /// Free text.
        #[serde(default)]
        comment: Option<Text>,
    },
    /// The station settles a dispute over whether the service took place.
    ResolveDispute {
        /// The request.
        request: RequestId,
        /// Whether it was served (credits follow) or not.
        served: bool,
        /// The station's finding.
        note: Text,
    },
    /// The resident withdraws the request (before check-in).
    Cancel {
        /// The request.
        request: RequestId,
        /// Why.
        reason: Text,
    },
    /// The station reports that the holding team did not come.
    ReportNoShow {
        /// The request.
        request: RequestId,
        /// The team.
        team: TeamId,
    },
}

impl RequestCommand {
    /// The request addressed.
    pub fn request(&self) -> &RequestId {
        match self {
            RequestCommand::Submit { spec } => &spec.id,
            RequestCommand::Accept { request, .. }
            | RequestCommand::Decline { request, .. }
            | RequestCommand::CheckIn { request, .. }
            | RequestCommand::Complete { request, .. }
            | RequestCommand::Evaluate { request, .. }
            | RequestCommand::ResolveDispute { request, .. }
            | RequestCommand::Cancel { request, .. }
            | RequestCommand::ReportNoShow { request, .. } => request,
        }
    }

    /// Its column in the state × command table.
    pub fn kind(&self) -> CommandKind {
        match self {
            RequestCommand::Submit { .. } => CommandKind::Submit,
            RequestCommand::Accept { .. } => CommandKind::Accept,
            RequestCommand::Decline { .. } => CommandKind::Decline,
            RequestCommand::CheckIn { .. } => CommandKind::CheckIn,
            RequestCommand::Complete { .. } => CommandKind::Complete,
            RequestCommand::Evaluate { .. } => CommandKind::Evaluate,
            RequestCommand::ResolveDispute { .. } => CommandKind::ResolveDispute,
            RequestCommand::Cancel { .. } => CommandKind::Cancel,
            RequestCommand::ReportNoShow { .. } => CommandKind::ReportNoShow,
        }
    }
}

/// A command to one pairing (结对).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
#[non_exhaustive]
pub enum PairingCommand {
    /// Pair a team with a household.
    Pair {
        /// The pairing.
        spec: Box<PairingSpec>,
    },
    /// End a pairing.
    Unpair {
        /// The pairing.
        pairing: PairingId,
        /// Why.
        reason: Text,
    },
}

impl PairingCommand {
    /// The pairing addressed.
    pub fn pairing(&self) -> &PairingId {
        match self {
            PairingCommand::Pair { spec } => &spec.id,
            PairingCommand::Unpair { pairing, .. } => pairing,
        }
    }
}

/// A change to the roster of teams (an admin's), on the team's own stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
#[non_exhaustive]
pub enum RosterCommand {
    /// A new team joins.
    AddTeam {
        /// Its declaration.
        spec: Box<TeamSpec>,
    },
    /// A team's skills, base, reach, capacity or availability change.
    ChangeTeam {
        /// The team.
        team: TeamId,
        /// What changes.
        change: TeamChange,
    },
    /// A team stops taking offers: its open offers are withdrawn and their
    /// requests dispatched again; what it already holds stays with it.
    Deactivate {
        /// The team.
        team: TeamId,
        /// Why.
        reason: Text,
    },
    /// A deactivated team takes offers again.
    Reactivate {
        /// The team.
        team: TeamId,
    },
}

impl RosterCommand {
    /// The team addressed.
    pub fn team(&self) -> &TeamId {
        match self {
            RosterCommand::AddTeam { spec } => &spec.id,
            RosterCommand::ChangeTeam { team, .. }
            | RosterCommand::Deactivate { team, .. }
            | RosterCommand::Reactivate { team } => team,
        }
    }
}

/// The kind of a request command, for the state × command table.
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

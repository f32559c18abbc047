//! The lifecycle's state as plain data, so that a store can keep it beside the log and a
//! reader can start from it instead of replaying every event.
//!
//! A snapshot holds what the events built: every request's and pairing's folded state, the
//! teams' loads, jobs, reputations and households, the no-shows, the standings and the ledger.
//! It does not hold what comes from configuration (the city, the teams' declarations, the
//! policies): [`Lifecycle::restore`] takes those fresh and refuses a snapshot made for another
//! city or team table ([`SnapshotError::OtherCity`]) or in another format, so the caller falls
//! back to a full replay. Derived indexes (id → slot maps, the wake-up queue) are rebuilt.
//! Teams and units are kept as their dense indexes, checked by the fingerprint.
//!
//! The types avoid internally tagged enums and skipped fields, so a compact binary encoding
//! (one that does not describe itself) can carry them; the runtime chooses the encoding.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::dispatch::Dispatcher;
use crate::geo::TravelTime;
use crate::id::{PairingId, RequestId, TeamId, UnitId, VolunteerId};
use crate::index::{TeamDynamics, TeamIdx};
use crate::ledger::{Ledger, LedgerSnapshot, LedgerSnapshotError};
use crate::lifecycle::wakeup::Wake;
use crate::lifecycle::{ApplyProblem, PairingSpec, PairingState, Schedule, ScheduleError};
use crate::lifecycle::{Event, Lifecycle, OfferMode, PolicyBook, RaterRole, Recorded, StreamId, Text};
use crate::lifecycle::{OpenOffer, Phase, RequestState};
use crate::reputation::Standing;
use crate::request::{Request, RequestError, RequestSpec};
use crate::team::{TeamChange, TeamSpec};
use crate::time::{from_nanos, nanos};
use crate::units::UnitIdx;

/// The snapshot format this build writes and reads.
pub const SNAPSHOT_FORMAT: u32 = 3;

/// A [`Phase`] with plain indexes.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
enum PhaseSnap {
    Open,
    Held(u32),
    CheckedIn(u32),
    Completed(u32, i64),
    Closed,
    Cancelled,
    Expired,
    Unfulfillable,
}

impl From<Phase> for PhaseSnap {
    fn from(p: Phase) -> Self {
        match p {
            Phase::Open => Self::Open,
            Phase::Held { team } => Self::Held(team.0),
            Phase::CheckedIn { team } => Self::CheckedIn(team.0),
            Phase::Completed { team, at } => Self::Completed(team.0, nanos(at)),
            Phase::Closed => Self::Closed,
            Phase::Cancelled => Self::Cancelled,
            Phase::Expired => Self::Expired,
            Phase::Unfulfillable => Self::Unfulfillable,
        }
    }
}

impl PhaseSnap {
    fn phase(self) -> Phase {
        match self {
            Self::Open => Phase::Open,
            Self::Held(t) => Phase::Held { team: TeamIdx(t) },
            Self::CheckedIn(t) => Phase::CheckedIn { team: TeamIdx(t) },
            Self::Completed(t, at) => Phase::Completed { team: TeamIdx(t), at: from_nanos(at) },
            Self::Closed => Phase::Closed,
            Self::Cancelled => Phase::Cancelled,
            Self::Expired => Phase::Expired,
            Self::Unfulfillable => Phase::Unfulfillable,
        }
    }

    fn team(self) -> Option<u32> {
        match self {
            Self::Held(t) | Self::CheckedIn(t) | Self::Completed(t, _) => Some(t),
            _ => None,
        }
    }
}

/// One request's folded state (instants in nanoseconds since the epoch).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct RequestSnap {
    spec: Arc<RequestSpec>,
    phase: PhaseSnap,
    version: u64,
    scope: u32,
    misses: u32,
    scope_since: i64,
    offers: Vec<(u32, i64, OfferMode)>,
    excluded: Vec<u32>,
    offered: Vec<u32>,
    recruiting: bool,
    pairing: Option<PairingId>,
    evaluations: Vec<(RaterRole, u8)>,
    sampled: bool,
    disputed: bool,
    service: Option<(u32, Vec<VolunteerId>)>,
}

/// One pairing's folded state (its schedule is compiled again from the spec).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct PairingSnap {
    spec: PairingSpec,
    active: bool,
    cursor: Option<DateTime<Utc>>,
    next: Option<DateTime<Utc>>,
    version: u64,
}

/// A roster event, in a form a compact encoding can carry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum RosterEventSnap {
    Added(Box<TeamSpec>),
    Changed(TeamChange),
    Deactivated(Text),
    Reactivated,
}

/// One roster event with its stream position and time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct RosterSnap {
    team: TeamId,
    seq: u64,
    at: i64,
    event: RosterEventSnap,
}

impl RosterSnap {
    fn of(rec: &Recorded) -> Option<Self> {
        let StreamId::Team(team) = &rec.stream else { return None };
        let event = match &rec.event {
            Event::TeamAdded { spec } => RosterEventSnap::Added(spec.clone()),
            Event::TeamChanged { change } => RosterEventSnap::Changed(change.clone()),
            Event::TeamDeactivated { reason } => RosterEventSnap::Deactivated(reason.clone()),
            Event::TeamReactivated => RosterEventSnap::Reactivated,
            _ => return None,
        };
        Some(Self { team: team.clone(), seq: rec.seq, at: nanos(rec.at), event })
    }

    fn recorded(self) -> Recorded {
        let event = match self.event {
            RosterEventSnap::Added(spec) => Event::TeamAdded { spec },
            RosterEventSnap::Changed(change) => Event::TeamChanged { change },
            RosterEventSnap::Deactivated(reason) => Event::TeamDeactivated { reason },
            RosterEventSnap::Reactivated => Event::TeamReactivated,
        };
        Recorded { stream: StreamId::Team(self.team), seq: self.seq, at: from_nanos(self.at), event }
    }
}

/// Everything the events of a lifecycle built, as plain data; see the [module docs](self).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LifecycleSnapshot {
    /// [`SNAPSHOT_FORMAT`] of the build that wrote it.
    pub format: u32,
    /// A fingerprint of the units and teams (ids, in index order) it was made for.
    pub fingerprint: u64,
    /// How many events it covers.
    pub applied: u64,
    requests: Vec<RequestSnap>,
    pairings: Vec<PairingSnap>,
    teams: Vec<TeamDynamics>,
    no_shows: Vec<(u32, u32)>,
    standings: Vec<(u32, Standing)>,
    ledger: LedgerSnapshot,
    /// The roster changed at run time, applied again over the city file's teams.
    roster: Vec<RosterSnap>,
    /// Ended requests waiting to leave memory, and the fingerprints of those that left.
    retention_queue: Vec<(i64, RequestId)>,
    /// The fingerprints remembered, with the instants (nanoseconds) they are forgotten at, in that order.
    retired: Vec<(i64, u64)>,
    forgot_any: bool,
}

/// Why a snapshot cannot be restored. The caller replays the whole log instead.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum SnapshotError {
    /// Written by a build with another format.
    #[error("snapshot format {found}, this build reads {SNAPSHOT_FORMAT}")]
    Format {
        /// The snapshot's format.
        found: u32,
    },
    /// Made for other units or teams than the lifecycle's.
    #[error("snapshot made for another city or team table")]
    OtherCity,
    /// A roster event kept in it is not on a team stream.
    #[error("snapshot: a roster event on {stream}, not a team stream")]
    RosterStream {
        /// The event's stream.
        stream: StreamId,
    },
    /// A roster event kept in it does not apply.
    #[error("snapshot: roster event on {stream}: {problem}")]
    Roster {
        /// The team's stream.
        stream: StreamId,
        /// Why it does not apply.
        problem: Box<ApplyProblem>,
    },
    /// A team index past the team table.
    #[error("snapshot: team index {index}, the table holds {teams}")]
    TeamIndex {
        /// The index.
        index: u32,
        /// The table's length.
        teams: u32,
    },
    /// A request that is not valid in the city.
    #[error("snapshot: request {id}: {error}")]
    Request {
        /// The request.
        id: RequestId,
        /// Why the city refuses it.
        error: RequestError,
    },
    /// A request's scope past the unit table.
    #[error("snapshot: request {id}: unit index {index}")]
    UnitIndex {
        /// The request.
        id: RequestId,
        /// The index.
        index: u32,
    },
    /// A request kept twice.
    #[error("snapshot: request {id} twice")]
    DuplicateRequest {
        /// The request.
        id: RequestId,
    },
    /// A pairing whose unit is not in the city.
    #[error("snapshot: pairing {id}: unit {unit} is not in the city")]
    PairingUnit {
        /// The pairing.
        id: PairingId,
        /// Its unit.
        unit: UnitId,
    },
    /// A pairing whose schedule does not compile.
    #[error("snapshot: pairing {id}: {error}")]
    Schedule {
        /// The pairing.
        id: PairingId,
        /// Why.
        error: ScheduleError,
    },
    /// A pairing kept twice.
    #[error("snapshot: pairing {id} twice")]
    DuplicatePairing {
        /// The pairing.
        id: PairingId,
    },
    /// The ledger's part does not restore.
    #[error(transparent)]
    Ledger(#[from] LedgerSnapshotError),
}

/// FNV-1a, 64 bits: stable across builds and machines.
fn fnv(h: u64, bytes: &[u8]) -> u64 {
    bytes.iter().fold(h, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

/// A fingerprint of the units and of the first `n_teams` teams (those of the city file) a
/// lifecycle's indexes refer to.
fn fingerprint<T: TravelTime>(d: &Dispatcher<T>, n_teams: usize) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325;
    for (_, u) in d.city().units().iter() {
        h = fnv(fnv(h, u.id.as_str().as_bytes()), &[0]);
    }
    h = fnv(h, &[1]);
    for t in d.index().records().iter().take(n_teams) {
        h = fnv(fnv(h, t.id.as_str().as_bytes()), &[0]);
    }
    h
}

impl<T: TravelTime> Lifecycle<T> {
    /// The state as plain data, to restore with [`Lifecycle::restore`].
    pub fn snapshot(&self) -> LifecycleSnapshot {
        let requests = self
            .requests
            .iter()
            .map(|st| RequestSnap {
                spec: Arc::clone(st.request.shared_spec()),
                phase: st.phase.into(),
                version: st.version,
                scope: st.scope.0,
                misses: st.misses,
                scope_since: nanos(st.scope_since),
                offers: st.offers.iter().map(|o| (o.team.0, nanos(o.deadline), o.mode)).collect(),
                excluded: st.excluded.iter().map(|t| t.0).collect(),
                offered: st.offered.iter().map(|t| t.0).collect(),
                recruiting: st.recruiting,
                pairing: st.pairing.clone(),
                evaluations: st.evaluations.clone(),
                sampled: st.sampled,
                disputed: st.disputed,
                service: st.service.clone(),
            })
            .collect();
        let pairings = self
            .pairings
            .iter()
            .map(|p| PairingSnap {
                spec: p.spec.clone(),
                active: p.active,
                cursor: p.cursor,
                next: p.next,
                version: p.version,
            })
            .collect();
        let index = self.dispatcher.index();
        let teams = (0..index.len() as u32).map(|i| index.dynamics(TeamIdx(i))).collect();
        let mut no_shows: Vec<(u32, u32)> = self.no_shows.iter().map(|(t, n)| (t.0, *n)).collect();
        no_shows.sort_unstable();
        let mut standings: Vec<(u32, Standing)> = self.standings.iter().map(|(t, s)| (t.0, *s)).collect();
        standings.sort_unstable_by_key(|s| s.0);
        let roster: Vec<RosterSnap> = self.roster.log.iter().filter_map(RosterSnap::of).collect();
        let added = roster.iter().filter(|r| matches!(r.event, RosterEventSnap::Added(_))).count();
        let retired: Vec<(i64, u64)> = self.retention.forget.iter().map(|(t, fp)| (nanos(*t), *fp)).collect();
        LifecycleSnapshot {
            format: SNAPSHOT_FORMAT,
            fingerprint: fingerprint(&self.dispatcher, index.len() - added),
            applied: self.applied,
            requests,
            pairings,
            teams,
            no_shows,
            standings,
            ledger: self.ledger.snapshot(),
            roster,
            retention_queue: self.retention.queue.iter().map(|(t, id)| (nanos(*t), id.clone())).collect(),
            retired,
            forgot_any: self.retention.forgot_any,
        }
    }

    /// The lifecycle a snapshot was taken of, over a fresh dispatcher (the same city and team
    /// table) and the policies. Replaying the events after the snapshot's position then gives
    /// the state a full replay would (the digests are equal; tested).
    ///
    /// # Errors
    /// Another format, another city or team table, or a snapshot that does not hold together.
    pub fn restore(
        dispatcher: Dispatcher<T>,
        policies: PolicyBook,
        snap: LifecycleSnapshot,
    ) -> Result<Self, SnapshotError> {
        if snap.format != SNAPSHOT_FORMAT {
            return Err(SnapshotError::Format { found: snap.format });
        }
        if snap.fingerprint != fingerprint(&dispatcher, dispatcher.index().len()) {
            return Err(SnapshotError::OtherCity);
        }
        let n_units = dispatcher.city().units().len() as u32;
        let mut lc = Lifecycle::new(dispatcher, policies);
        for r in snap.roster {
            let rec = r.recorded();
            let team = match &rec.stream {
                StreamId::Team(t) => t.clone(),
                other => return Err(SnapshotError::RosterStream { stream: other.clone() }),
            };
            lc.apply_roster(&team, &rec)
                .map_err(|problem| SnapshotError::Roster { stream: rec.stream.clone(), problem: Box::new(problem) })?;
        }
        if snap.teams.len() != lc.dispatcher.index().len() {
            return Err(SnapshotError::OtherCity);
        }
        let n_teams = lc.dispatcher.index().len() as u32;
        let team = |t: u32| {
            if t < n_teams { Ok(TeamIdx(t)) } else { Err(SnapshotError::TeamIndex { index: t, teams: n_teams }) }
        };
        lc.applied = snap.applied;
        lc.requests.reserve(snap.requests.len());
        for r in snap.requests {
            let id = r.spec.id.clone();
            let request = Request::from_shared(r.spec, lc.dispatcher.city())
                .map_err(|error| SnapshotError::Request { id: id.clone(), error })?;
            if let Some(t) = r.phase.team() {
                team(t)?;
            }
            if r.scope >= n_units {
                return Err(SnapshotError::UnitIndex { id, index: r.scope });
            }
            let mut offers = Vec::with_capacity(r.offers.len());
            for (t, deadline, mode) in r.offers {
                offers.push(OpenOffer { team: team(t)?, deadline: from_nanos(deadline), mode });
            }
            let excluded = r.excluded.into_iter().map(team).collect::<Result<Vec<_>, _>>()?;
            let offered = r.offered.into_iter().map(team).collect::<Result<Vec<_>, _>>()?;
            let slot = lc.requests.len() as u32;
            if lc.request_slot.insert(id.clone(), slot).is_some() {
                return Err(SnapshotError::DuplicateRequest { id });
            }
            lc.requests.push(RequestState {
                stream: StreamId::Request(id),
                request,
                phase: r.phase.phase(),
                version: r.version,
                scope: UnitIdx(r.scope),
                misses: r.misses,
                scope_since: from_nanos(r.scope_since),
                offers,
                excluded,
                offered,
                recruiting: r.recruiting,
                pairing: r.pairing,
                evaluations: r.evaluations,
                sampled: r.sampled,
                disputed: r.disputed,
                service: r.service,
                wake: None,
            });
            lc.reschedule(Wake::Request(slot));
        }
        for p in snap.pairings {
            let units = lc.dispatcher.city().units();
            let unit = units
                .idx(&p.spec.unit)
                .ok_or_else(|| SnapshotError::PairingUnit { id: p.spec.id.clone(), unit: p.spec.unit.clone() })?;
            let schedule = Schedule::compile(&p.spec, units.get(unit).tz)
                .map_err(|error| SnapshotError::Schedule { id: p.spec.id.clone(), error })?;
            let id = p.spec.id.clone();
            if p.active {
                lc.household_pairing.insert(p.spec.household.clone(), id.clone());
            }
            let slot = lc.pairings.len() as u32;
            if lc.pairing_slot.insert(id.clone(), slot).is_some() {
                return Err(SnapshotError::DuplicatePairing { id });
            }
            lc.pairings.push(PairingState {
                stream: StreamId::Pairing(id),
                spec: p.spec,
                schedule,
                active: p.active,
                cursor: p.cursor,
                next: p.next,
                version: p.version,
                wake: None,
            });
            lc.reschedule(Wake::Pairing(slot));
        }
        for (i, d) in snap.teams.into_iter().enumerate() {
            lc.dispatcher.index_mut().set_dynamics(TeamIdx(i as u32), d);
        }
        for (t, n) in snap.no_shows {
            lc.no_shows.insert(team(t)?, n);
        }
        for (t, s) in snap.standings {
            lc.standings.insert(team(t)?, s);
        }
        lc.ledger = Ledger::restore(snap.ledger)?.with_retention(Some(lc.policies.memory().ledger_retention()));
        lc.retention.queue = snap.retention_queue.into_iter().map(|(t, id)| (from_nanos(t), id)).collect();
        lc.retention.retired = snap.retired.iter().map(|(_, fp)| *fp).collect();
        lc.retention.forget = snap.retired.into_iter().map(|(t, fp)| (from_nanos(t), fp)).collect();
        lc.retention.forgot_any = snap.forgot_any;
        // The services to forget, in the order they were served (a later one supersedes).
        lc.retention.served = lc
            .dispatcher
            .index()
            .records()
            .iter()
            .enumerate()
            .flat_map(|(i, t)| {
                t.households_served
                    .iter()
                    .filter_map(move |s| s.last.map(|at| (at, TeamIdx(i as u32), s.household.clone())))
            })
            .collect();
        Ok(lc)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lifecycle::{Command, LifecyclePolicy, RequestCommand};
    use crate::request::Urgency;
    use crate::testkit::{request, t0, tiny_city};

    fn fresh() -> (Dispatcher, PolicyBook) {
        let (city, index) = tiny_city();
        (Dispatcher::new(city, index), PolicyBook::uniform(LifecyclePolicy::default()).expect("valid"))
    }

    #[test]
    fn a_snapshot_of_another_format_or_city_is_refused() {
        let (d, p) = fresh();
        let mut lc = Lifecycle::new(d, p);
        let spec = request("r", "c1-i1-s1", "home-care", Urgency::Normal, 2, 4);
        lc.execute(&Command::Request(RequestCommand::Submit { spec }), t0()).expect("submits");
        let snap = lc.snapshot();
        let (d, p) = fresh();
        let back = Lifecycle::restore(d, p, snap.clone()).expect("restores");
        assert_eq!(back.digest(), lc.digest());
        let (d, p) = fresh();
        let other = LifecycleSnapshot { format: SNAPSHOT_FORMAT + 1, ..snap.clone() };
        assert_eq!(Lifecycle::restore(d, p, other).err(), Some(SnapshotError::Format { found: SNAPSHOT_FORMAT + 1 }));
        let (d, p) = fresh();
        let other = LifecycleSnapshot { fingerprint: snap.fingerprint ^ 1, ..snap.clone() };
        assert_eq!(Lifecycle::restore(d, p, other).err(), Some(SnapshotError::OtherCity));

        // A snapshot that does not hold together says what is wrong, by type.
        let (d, p) = fresh();
        let twice =
            LifecycleSnapshot { requests: vec![snap.requests[0].clone(), snap.requests[0].clone()], ..snap.clone() };
        let id = RequestId::new("r").expect("an id");
        assert_eq!(Lifecycle::restore(d, p, twice).err(), Some(SnapshotError::DuplicateRequest { id: id.clone() }));
        let (d, p) = fresh();
        let mut far = snap.requests[0].clone();
        far.scope = 999;
        let far = LifecycleSnapshot { requests: vec![far], ..snap };
        assert_eq!(Lifecycle::restore(d, p, far).err(), Some(SnapshotError::UnitIndex { id, index: 999 }));
    }
}

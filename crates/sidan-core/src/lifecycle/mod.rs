//! The request lifecycle (点单 → 派单 → 接单 → 评单) as an event-sourced,
//! sans-IO state machine.
//!
//! [`Lifecycle::decide`] takes a [`Command`] and the caller's `now` and
//! returns the events it causes, or a typed [`LifecycleError`] and nothing
//! else. [`Lifecycle::apply`] folds one event into the state; it never
//! decides anything, so replaying a log rebuilds the state exactly. The
//! runtime drives both: it persists what `decide` returns, then applies it.
//!
//! A request moves through the phases of [`Phase`]; which command fits which
//! phase is the explicit table [`state::check`]. Dispatch is part of
//! deciding: a submission, a decline, an expiry or a no-show is followed, in
//! the same decision, by the next offer, a wider scope (station → institute
//! → county → city), a recruitment order (招募令) to every eligible team, or
//! `Unfulfillable`. An emergency goes to several teams at once; the first
//! acceptance withdraws every other offer in the same decision. An offer
//! reserves a unit of the team's capacity until it is answered, so an
//! acceptance never overfills a team.
//!
//! Timers are data: every stream has a next wake-up time
//! ([`Lifecycle::next_wakeup`], [`Lifecycle::due`]); the runtime sends
//! [`Command::Tick`] for each due stream.
//!
//! The work is split by job: [`command`], [`event`], [`stream`] and
//! [`value`] are the vocabulary; `request_decide` and `request_apply` a
//! request's decisions and fold; `escalation` the offers and the widening
//! of scope; `credits` the settlement's ledger credits and the ledger
//! stream; `pairing_stream` the pairings' decisions and fold; `roster` the
//! teams changed while the engine runs; `wakeup` the timers; `retention`
//! the requests that leave memory once ended.

mod command;
mod credits;
mod escalation;
pub mod evaluation;
mod event;
mod pairing;
mod pairing_stream;
mod policy;
mod policy_file;
mod request_apply;
mod request_decide;
mod retention;
mod roster;
mod snapshot;
mod state;
mod stream;
mod value;
mod wakeup;

use std::collections::BTreeSet;

type HashMap<K, V> = foldhash::HashMap<K, V>;

use chrono::{DateTime, Utc};

use crate::dispatch::Dispatcher;
use crate::geo::{StraightLine, TravelTime};
use crate::id::{HouseholdId, PairingId, RequestId, TeamId, UnitId};
use crate::index::TeamIdx;
use crate::ledger::{Ledger, LedgerApplyError};
use crate::request::{Request, RequestError};
use crate::team::TeamError;

pub use command::{Command, CommandKind, DeclineReason, PairingCommand, RaterRole, RequestCommand, RosterCommand};
pub use event::{BinaryEventError, EVENT_BINARY_FORMAT, Event, OfferMode, Recorded, WidenReason};
pub use pairing::{
    MAX_PAIRING_ID_LEN, MAX_SLOTS_PER_TICK, PairingSpec, PairingState, Schedule, ScheduleError, visit_request,
    visit_request_id,
};
pub use policy::{LifecyclePolicy, MAX_DEADLINE_S, MAX_MEMORY_DAYS, MAX_RETENTION_H, MemoryPolicy, PolicyBook};
pub use policy_file::{PolicyFileError, TextPosition};
pub use snapshot::{LifecycleSnapshot, SNAPSHOT_FORMAT, SnapshotError};
pub use state::{LifecycleError, OpenOffer, Phase, PhaseKind, RequestState, check};
pub use stream::{StreamId, StreamIdError};
pub use value::{
    MAX_SERVICE_MIN, MAX_TEXT_LEN, MAX_VOLUNTEERS, Score, ServiceMinutes, Tags, Text, ValueError, Volunteers,
};

/// How far ahead a request's window may start, in days.
pub const HORIZON_DAYS: i64 = 366;

/// Why an event cannot be applied: the log does not fit the state.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ApplyError {
    /// The sequence number is not the next one of the stream.
    #[error("{stream}: expected seq {expected}, got {got}")]
    OutOfOrder {
        /// The stream.
        stream: StreamId,
        /// The next sequence number.
        expected: u64,
        /// The one given.
        got: u64,
    },
    /// The event does not fit the stream's state.
    #[error("{stream} seq {seq}: {problem}")]
    Invalid {
        /// The stream.
        stream: StreamId,
        /// The sequence number.
        seq: u64,
        /// What does not fit.
        problem: Box<ApplyProblem>,
    },
}

/// What about an event does not fit the state.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ApplyProblem {
    /// The event is not one this stream takes in its present phase.
    #[error("{event} does not fit a stream in phase {phase}")]
    NotAllowed {
        /// The event's name.
        event: &'static str,
        /// The stream's phase: a request's, or `new` for a stream not yet begun.
        phase: PhaseKind,
    },
    /// The event belongs to another kind of stream.
    #[error("{event} is not an event of a {stream} stream")]
    WrongStream {
        /// The event's name.
        event: &'static str,
        /// The kind of stream it was found on.
        stream: &'static str,
    },
    /// A stream's first event for a stream that exists, or naming another id.
    #[error("a first event for a stream that exists, or of another id")]
    Exists,
    /// An event for a stream that was never begun.
    #[error("no such stream was begun")]
    NotBegun,
    /// A request that ended and left memory (see `retention`) gets an event.
    #[error("the request ended and was retired")]
    Retired,
    /// A team not in the index.
    #[error("unknown team {0}")]
    UnknownTeam(TeamId),
    /// A unit not in the hierarchy.
    #[error("unknown unit {0}")]
    UnknownUnit(UnitId),
    /// The submitted request does not validate against the city.
    #[error("{0}")]
    Request(#[from] RequestError),
    /// A pairing's schedule does not compile.
    #[error("{0}")]
    Schedule(#[from] ScheduleError),
    /// A roster change does not fit the team index.
    #[error("{0}")]
    Team(#[from] TeamError),
    /// The ledger refuses its event.
    #[error("{0}")]
    Ledger(#[from] LedgerApplyError),
    /// A pairing's slot is not its next one.
    #[error("slot {slot} is not the pairing's next")]
    NotNextSlot {
        /// The slot given.
        slot: DateTime<Utc>,
    },
}

/// The lifecycle of every request, pairing and roster change of one city.
#[derive(Debug, Clone)]
pub struct Lifecycle<T = StraightLine> {
    dispatcher: Dispatcher<T>,
    policies: PolicyBook,
    requests: Vec<RequestState>,
    request_slot: HashMap<RequestId, u32>,
    pairings: Vec<PairingState>,
    pairing_slot: HashMap<PairingId, u32>,
    household_pairing: HashMap<HouseholdId, PairingId>,
    no_shows: HashMap<TeamIdx, u32>,
    standings: HashMap<TeamIdx, crate::reputation::Standing>,
    /// Every stream's next wake-up, earliest first.
    wakeups: BTreeSet<(DateTime<Utc>, wakeup::Wake)>,
    /// Points, time bank and stock: the `ledger` stream, folded.
    ledger: Ledger,
    /// The roster changes applied, in order, and each team stream's version.
    roster: roster::Roster,
    /// Ended requests waiting to leave memory, and those that left.
    retention: retention::Retention,
    applied: u64,
}

/// The ledger's stream, for [`Lifecycle::due`] to hand out by reference.
static LEDGER_STREAM: StreamId = StreamId::Ledger;

/// A stream's dense place in the lifecycle's tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Slot {
    Request(u32),
    Pairing(u32),
    Team(TeamIdx),
    Ledger,
}

/// Appends events to one stream, numbering them.
struct Out<'a> {
    recs: &'a mut Vec<Recorded>,
    stream: StreamId,
    next_seq: u64,
    at: DateTime<Utc>,
}

impl Out<'_> {
    fn push(&mut self, event: Event) {
        self.recs.push(Recorded { stream: self.stream.clone(), seq: self.next_seq, at: self.at, event });
        self.next_seq += 1;
    }
}

/// The latest instant the request can still start.
fn latest_start(req: &Request) -> DateTime<Utc> {
    req.window().end() - chrono::Duration::minutes(i64::from(req.duration_min()))
}

fn insert_sorted(v: &mut Vec<TeamIdx>, t: TeamIdx) {
    if let Err(pos) = v.binary_search(&t) {
        v.insert(pos, t);
    }
}

impl<T: TravelTime> Lifecycle<T> {
    /// An empty lifecycle over a dispatcher (city, teams) and per-unit policies.
    pub fn new(dispatcher: Dispatcher<T>, policies: PolicyBook) -> Self {
        let ledger = Ledger::new().with_retention(Some(policies.memory().ledger_retention()));
        Self {
            dispatcher,
            policies,
            requests: Vec::new(),
            request_slot: HashMap::default(),
            pairings: Vec::new(),
            pairing_slot: HashMap::default(),
            household_pairing: HashMap::default(),
            no_shows: HashMap::default(),
            standings: HashMap::default(),
            wakeups: BTreeSet::new(),
            ledger,
            roster: roster::Roster::default(),
            retention: retention::Retention::default(),
            applied: 0,
        }
    }

    /// The dispatcher and the policies, giving the lifecycle up (to restore a snapshot over them).
    pub fn into_parts(self) -> (Dispatcher<T>, PolicyBook) {
        (self.dispatcher, self.policies)
    }

    /// The dispatcher, with team loads as of the last applied event.
    pub fn dispatcher(&self) -> &Dispatcher<T> {
        &self.dispatcher
    }

    /// The policies.
    pub fn policies(&self) -> &PolicyBook {
        &self.policies
    }

    /// A request's state.
    pub fn request(&self, id: &RequestId) -> Option<&RequestState> {
        self.request_slot.get(id).map(|&i| &self.requests[i as usize])
    }

    /// Every request, in no particular order.
    pub fn requests(&self) -> impl Iterator<Item = &RequestState> {
        self.requests.iter()
    }

    /// A pairing's state.
    pub fn pairing(&self, id: &PairingId) -> Option<&PairingState> {
        self.pairing_slot.get(id).map(|&i| &self.pairings[i as usize])
    }

    /// The ledger: points, time-bank minutes and love-supermarket stock, as of the last applied event.
    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    /// How many no-shows are recorded against a team.
    pub fn no_shows(&self, team: TeamIdx) -> u32 {
        self.no_shows.get(&team).copied().unwrap_or(0)
    }

    /// A team's standing from its settled evaluations.
    pub fn standing(&self, team: TeamIdx) -> crate::reputation::Standing {
        self.standings.get(&team).copied().unwrap_or_default()
    }

    /// How standings become reputations: the default policy's prior, a
    /// strength of five observations and a half-life of 180 days.
    pub fn reputation_model(&self) -> crate::reputation::ReputationModel {
        crate::reputation::ReputationModel {
            prior: self.policies.default_policy().scoring.reputation_prior,
            strength: 5.0,
            half_life_days: 180.0,
        }
    }

    /// How many events have been applied.
    pub fn applied(&self) -> u64 {
        self.applied
    }

    /// The version (number of events) of a stream; 0 if it has none.
    pub fn version(&self, stream: &StreamId) -> u64 {
        self.slot(stream).map_or(0, |s| self.version_of(s))
    }

    fn slot(&self, stream: &StreamId) -> Option<Slot> {
        match stream {
            StreamId::Request(r) => self.request_slot.get(r).map(|&i| Slot::Request(i)),
            StreamId::Pairing(p) => self.pairing_slot.get(p).map(|&i| Slot::Pairing(i)),
            StreamId::Team(t) => self.dispatcher.index().idx(t).map(Slot::Team),
            StreamId::Ledger => Some(Slot::Ledger),
        }
    }

    fn version_of(&self, slot: Slot) -> u64 {
        match slot {
            Slot::Request(i) => self.requests[i as usize].version,
            Slot::Pairing(i) => self.pairings[i as usize].version,
            Slot::Team(t) => self.roster.version(t),
            Slot::Ledger => self.ledger.applied(),
        }
    }

    fn team_idx(&self, team: &TeamId) -> Result<TeamIdx, LifecycleError> {
        self.dispatcher.index().idx(team).ok_or_else(|| LifecycleError::UnknownTeam { team: team.clone() })
    }

    fn team_id(&self, idx: TeamIdx) -> TeamId {
        self.dispatcher.index().get(idx).id.clone()
    }

    fn policy_of(&self, req: &Request) -> &LifecyclePolicy {
        self.policies.for_unit(req.unit())
    }

    /// Decides what `cmd` causes at `now`: the events to append, in order, or
    /// why it is refused. Nothing changes until the events are applied.
    ///
    /// # Errors
    /// A typed refusal; see [`LifecycleError`].
    pub fn decide(&self, cmd: &Command, now: DateTime<Utc>) -> Result<Vec<Recorded>, LifecycleError> {
        let mut recs = Vec::new();
        let stream = cmd.stream();
        let mut out = Out { recs: &mut recs, next_seq: self.version(&stream) + 1, stream, at: now };
        match cmd {
            Command::Request(c) => self.decide_request(c, now, &mut out)?,
            Command::Pairing(c) => self.decide_pairing(c, &mut out)?,
            Command::Ledger(c) => self.decide_ledger(Some(c), now, &mut out)?,
            Command::Roster(c) => self.decide_roster(c, now, &mut out)?,
            Command::Tick(StreamId::Request(id)) => self.tick_request(id, now, &mut out)?,
            Command::Tick(StreamId::Pairing(id)) => self.tick_pairing(id, now, &mut out)?,
            Command::Tick(StreamId::Ledger) => self.decide_ledger(None, now, &mut out)?,
            // A team's stream has no timer: nothing is ever due on it.
            Command::Tick(StreamId::Team(_)) => {}
        }
        Ok(recs)
    }

    /// Decides, then applies: the convenience for simulations and tests.
    ///
    /// # Errors
    /// The refusal from [`Lifecycle::decide`].
    pub fn execute(&mut self, cmd: &Command, now: DateTime<Utc>) -> Result<Vec<Recorded>, LifecycleError> {
        let recs = self.decide(cmd, now)?;
        for r in &recs {
            if let Err(e) = self.apply(r) {
                unreachable!("a decided event does not apply: {e}");
            }
        }
        Ok(recs)
    }

    /// Folds one event into the state.
    ///
    /// # Errors
    /// If the event does not fit: wrong sequence number, unknown team, or an
    /// event the stream's state cannot take. The state is unchanged then.
    pub fn apply(&mut self, rec: &Recorded) -> Result<(), ApplyError> {
        let slot = self.slot(&rec.stream);
        let expected = slot.map_or(0, |s| self.version_of(s)) + 1;
        if rec.seq != expected {
            return Err(ApplyError::OutOfOrder { stream: rec.stream.clone(), expected, got: rec.seq });
        }
        let invalid =
            |problem| ApplyError::Invalid { stream: rec.stream.clone(), seq: rec.seq, problem: Box::new(problem) };
        match &rec.stream {
            StreamId::Request(id) => {
                let i = self.apply_request(id, slot, rec).map_err(invalid)?;
                self.reschedule(wakeup::Wake::Request(i));
            }
            StreamId::Pairing(id) => {
                let i = self.apply_pairing(id, slot, rec).map_err(invalid)?;
                self.reschedule(wakeup::Wake::Pairing(i));
            }
            StreamId::Team(id) => self.apply_roster(id, rec).map_err(invalid)?,
            StreamId::Ledger => self.apply_ledger(rec).map_err(invalid)?,
        }
        self.applied += 1;
        self.retire_due(rec.at);
        Ok(())
    }

    /// A digest of the whole state (requests, pairings, team loads, the ledger), equal for
    /// equal states: replaying a log must give the live state's digest.
    pub fn digest(&self) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut h = std::hash::DefaultHasher::new();
        let mut reqs: Vec<&RequestState> = self.requests.iter().collect();
        reqs.sort_by(|a, b| a.request.id().cmp(b.request.id()));
        for st in reqs {
            (st.request.id(), st.phase, st.version, st.scope, st.misses, st.scope_since).hash(&mut h);
            (&st.offers, &st.excluded, &st.offered, st.recruiting, &st.pairing, &st.evaluations).hash(&mut h);
            (st.sampled, st.disputed, &st.service).hash(&mut h);
        }
        let mut ps: Vec<&PairingState> = self.pairings.iter().collect();
        ps.sort_by(|a, b| a.spec.id.cmp(&b.spec.id));
        for p in ps {
            (&p.spec.id, p.active, p.cursor, p.next, p.version).hash(&mut h);
        }
        for t in self.dispatcher.index().records() {
            (&t.id, t.load, t.recent_jobs, &t.households_served, &t.paired_households).hash(&mut h);
            (t.active, t.capacity, t.declared_skills, t.reach_m.to_bits(), t.base.lat().to_bits()).hash(&mut h);
        }
        self.roster.log.len().hash(&mut h);
        self.retention.queue.hash(&mut h);
        (&self.retention.forget, self.retention.forgot_any).hash(&mut h);
        let mut ss: Vec<_> =
            self.standings.iter().map(|(t, s)| (t, s.sum.to_bits(), s.weight.to_bits(), s.count)).collect();
        ss.sort();
        ss.hash(&mut h);
        let mut ns: Vec<_> = self.no_shows.iter().collect();
        ns.sort();
        ns.hash(&mut h);
        let mut wakes: Vec<(DateTime<Utc>, &StreamId)> =
            self.wakeups.iter().map(|(t, w)| (*t, self.wake_stream(*w))).collect();
        wakes.sort();
        wakes.hash(&mut h);
        self.ledger.digest().hash(&mut h);
        h.finish()
    }
}

#[cfg(test)]
mod tests;

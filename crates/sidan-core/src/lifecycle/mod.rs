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

pub mod evaluation;
pub mod pairing;
pub mod policy;
pub mod policy_file;
pub mod snapshot;
pub mod state;
pub mod types;

use std::collections::BTreeSet;
use std::sync::Arc;

type HashMap<K, V> = foldhash::HashMap<K, V>;

use chrono::{DateTime, Duration, Utc};

use crate::dispatch::{Dispatcher, RankQuery, Ranked};
use crate::geo::{StraightLine, TravelTime};
use crate::id::{HouseholdId, PairingId, RequestId, TeamId};
use crate::index::TeamIdx;
use crate::ledger::{self, AccountId, CreditInput, Ledger, LedgerCommand, LedgerOp};
use crate::request::{Contact, Request, RequestSpec, Urgency};
use crate::units::{UnitIdx, UnitTree};

pub use pairing::{PairingSpec, PairingState, Schedule, ScheduleError};
pub use policy::{LifecyclePolicy, PolicyBook};
pub use policy_file::PolicyFileError;
pub use snapshot::{LifecycleSnapshot, SNAPSHOT_FORMAT, SnapshotError};
pub use state::{LifecycleError, OpenOffer, Phase, PhaseKind, RequestState, check};
pub use types::{
    Command, CommandKind, DeclineReason, Event, MAX_SERVICE_MIN, MAX_TEXT_LEN, MAX_VOLUNTEERS, OfferMode, RaterRole,
    Recorded, StreamId, WidenReason,
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
        problem: String,
    },
}

/// The lifecycle of every request and pairing of one city.
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
    wakeups: BTreeSet<(DateTime<Utc>, Slot)>,
    /// Points, time bank and stock: the `ledger` stream, folded.
    ledger: Ledger,
    applied: u64,
}

/// The ledger's stream, for [`Lifecycle::due`] to hand out by reference.
static LEDGER_STREAM: StreamId = StreamId::Ledger;

/// A stream's dense place in the lifecycle's tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Slot {
    Request(u32),
    Pairing(u32),
    Ledger,
}

/// Where dispatch stands while one decision is being made: the request's
/// dispatch fields with the decision's own events folded in.
struct Cursor {
    scope: UnitIdx,
    misses: u32,
    since: DateTime<Utc>,
    open: usize,
    offered: Vec<TeamIdx>,
    recruiting: bool,
}

impl Cursor {
    fn of(st: &RequestState) -> Self {
        Self {
            scope: st.scope,
            misses: st.misses,
            since: st.scope_since,
            open: st.offers.len(),
            offered: st.offered.clone(),
            recruiting: st.recruiting,
        }
    }
}

/// Every eligible team of one county (or the city) for one request, best
/// first, with the unit it was searched in; filled on first use.
#[derive(Default)]
struct Pool(Option<(UnitIdx, Vec<Ranked>)>);

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

fn text(field: &'static str, s: &str) -> Result<(), LifecycleError> {
    if s.len() > MAX_TEXT_LEN {
        return Err(LifecycleError::BadValue {
            field,
            problem: format!("{} bytes, at most {MAX_TEXT_LEN} are allowed", s.len()),
        });
    }
    Ok(())
}

fn check_contact(c: &Contact) -> Result<(), LifecycleError> {
    text("contact.name", &c.name)?;
    text("contact.phone", &c.phone)?;
    text("contact.community", &c.community)?;
    text("contact.detail", &c.detail)
}

/// The latest instant the request can still start.
fn latest_start(req: &Request) -> DateTime<Utc> {
    req.window().end() - Duration::minutes(i64::from(req.duration_min()))
}

/// The first scope of a request made at `unit`: the nearest unit at or above
/// it whose level is `kind` or wider.
fn start_scope(units: &UnitTree, unit: UnitIdx, kind: crate::units::UnitKind) -> UnitIdx {
    std::iter::once(unit).chain(units.ancestors(unit)).find(|&u| units.get(u).kind <= kind).unwrap_or(unit)
}

fn insert_sorted(v: &mut Vec<TeamIdx>, t: TeamIdx) {
    if let Err(pos) = v.binary_search(&t) {
        v.insert(pos, t);
    }
}

impl<T: TravelTime> Lifecycle<T> {
    /// An empty lifecycle over a dispatcher (city, teams) and per-unit policies.
    pub fn new(dispatcher: Dispatcher<T>, policies: PolicyBook) -> Self {
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
            ledger: Ledger::new(),
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
            StreamId::Ledger => Some(Slot::Ledger),
        }
    }

    fn version_of(&self, slot: Slot) -> u64 {
        match slot {
            Slot::Request(i) => self.requests[i as usize].version,
            Slot::Pairing(i) => self.pairings[i as usize].version,
            Slot::Ledger => self.ledger.applied(),
        }
    }

    fn stream_of(&self, slot: Slot) -> &StreamId {
        match slot {
            Slot::Request(i) => &self.requests[i as usize].stream,
            Slot::Pairing(i) => &self.pairings[i as usize].stream,
            Slot::Ledger => &LEDGER_STREAM,
        }
    }

    /// The earliest time a stream needs a [`Command::Tick`] (the ledger's when a reservation
    /// expires).
    pub fn next_wakeup(&self) -> Option<DateTime<Utc>> {
        let streams = self.wakeups.first().map(|(t, _)| *t);
        match (streams, self.ledger.next_expiry()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The streams due for a tick at `now`, earliest first; the ledger last, when one of its
    /// reservations has expired.
    pub fn due(&self, now: DateTime<Utc>) -> impl Iterator<Item = &StreamId> + '_ {
        let ledger = self.ledger.next_expiry().is_some_and(|t| t <= now).then_some(&LEDGER_STREAM);
        self.wakeups.iter().take_while(move |(t, _)| *t <= now).map(|(_, s)| self.stream_of(*s)).chain(ledger)
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
        match (cmd.request_kind(), &out.stream) {
            (Some(kind), _) => self.decide_request(cmd, kind, now, &mut out)?,
            (None, StreamId::Ledger) => self.decide_ledger(cmd, now, &mut out)?,
            (None, _) => self.decide_pairing(cmd, now, &mut out)?,
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

    fn decide_request(
        &self,
        cmd: &Command,
        kind: CommandKind,
        now: DateTime<Utc>,
        out: &mut Out<'_>,
    ) -> Result<(), LifecycleError> {
        let StreamId::Request(id) = out.stream.clone() else { unreachable!("request commands address requests") };
        let st = self.request(&id);
        check(&id, st.map_or(PhaseKind::New, |s| s.phase.kind()), kind)?;
        let Some(st) = st else {
            let Command::Submit { spec } = cmd else { unreachable!("the table admits only Submit for a new request") };
            return self.decide_submit(spec, None, now, out);
        };
        match cmd {
            Command::Submit { .. } => unreachable!("the table refuses Submit for a known request"),
            Command::Accept { team, .. } => {
                let t = self.answerable(st, team, now)?;
                out.push(Event::Accepted { team: team.clone() });
                for o in st.offers.iter().filter(|o| o.team != t) {
                    out.push(Event::OfferWithdrawn { team: self.team_id(o.team) });
                }
            }
            Command::Decline { team, reason, .. } => {
                if let DeclineReason::Other(s) = reason {
                    text("reason", s)?;
                }
                self.answerable(st, team, now)?;
                out.push(Event::Declined { team: team.clone(), reason: reason.clone() });
                let mut cur = Cursor::of(st);
                cur.open -= 1;
                cur.misses += 1;
                self.dispatch_from(&st.request, &mut cur, now, out);
            }
            Command::CheckIn { team, .. } => {
                self.holder(st, team)?;
                let end = st.request.window().end();
                if now >= end {
                    // Refused by the clock itself, before the tick records the no-show.
                    return Err(LifecycleError::WindowPassed { request: id.clone(), end });
                }
                out.push(Event::CheckedIn { team: team.clone() });
            }
            Command::Complete { team, minutes, volunteers, .. } => {
                self.holder(st, team)?;
                if *minutes == 0 || *minutes > MAX_SERVICE_MIN {
                    return Err(LifecycleError::BadValue {
                        field: "minutes",
                        problem: format!("{minutes} is not in 1..={MAX_SERVICE_MIN}"),
                    });
                }
                if volunteers.len() > MAX_VOLUNTEERS {
                    return Err(LifecycleError::BadValue {
                        field: "volunteers",
                        problem: format!("{} listed, at most {MAX_VOLUNTEERS} are allowed", volunteers.len()),
                    });
                }
                let mut sorted = volunteers.clone();
                sorted.sort();
                if sorted.windows(2).any(|w| w[0] == w[1]) {
                    return Err(LifecycleError::BadValue {
                        field: "volunteers",
                        problem: "a volunteer is listed twice".into(),
                    });
                }
                let sampled = evaluation::sampled(&id, self.policy_of(&st.request).third_party_sample_rate);
                out.push(Event::Completed { team: team.clone(), minutes: *minutes, volunteers: sorted, sampled });
            }
            Command::Evaluate { role, score, tags, comment, .. } => {
                if let Some(closed) = self.evaluation_closes(st)
                    && now >= closed
                {
                    // Refused by the clock itself, before the tick settles with the defaults.
                    return Err(LifecycleError::EvaluationClosed { request: id.clone(), closed });
                }
                if !(1..=5).contains(score) {
                    return Err(LifecycleError::BadValue {
                        field: "score",
                        problem: format!("{score} is not in 1..=5"),
                    });
                }
                if tags.len() > evaluation::MAX_TAGS {
                    return Err(LifecycleError::BadValue {
                        field: "tags",
                        problem: format!("{} tags, at most {} are allowed", tags.len(), evaluation::MAX_TAGS),
                    });
                }
                if let Some(c) = comment {
                    text("comment", c)?;
                }
                if st.evaluations.iter().any(|(r, _)| r == role) {
                    return Err(LifecycleError::AlreadyEvaluated { request: id.clone(), role: *role });
                }
                if *role == RaterRole::ThirdParty && !st.sampled {
                    return Err(LifecycleError::NotSampled { request: id.clone() });
                }
                let mut tags = tags.clone();
                tags.sort();
                tags.dedup();
                let disputes = *role == RaterRole::Resident && tags.contains(&evaluation::Tag::NotServed);
                out.push(Event::Evaluated { role: *role, score: *score, tags, comment: comment.clone() });
                if disputes && !st.disputed {
                    out.push(Event::Disputed { by: *role });
                } else if !st.disputed {
                    let mut ratings = st.evaluations.clone();
                    ratings.push((*role, *score));
                    let expected = evaluation::expected_roles(st.sampled);
                    if expected.iter().all(|r| ratings.iter().any(|(g, _)| g == r)) {
                        self.settle(st, &ratings, true, out);
                    }
                }
            }
            Command::ResolveDispute { served, note, .. } => {
                if !st.disputed {
                    return Err(LifecycleError::NotDisputed { request: id.clone() });
                }
                text("note", note)?;
                out.push(Event::DisputeResolved { served: *served, note: note.clone() });
                self.settle(st, &st.evaluations, *served, out);
            }
            Command::Cancel { reason, .. } => {
                text("reason", reason)?;
                for o in &st.offers {
                    out.push(Event::OfferWithdrawn { team: self.team_id(o.team) });
                }
                out.push(Event::Cancelled { reason: reason.clone() });
            }
            Command::ReportNoShow { team, .. } => {
                let t = self.holder(st, team)?;
                out.push(Event::NoShow { team: team.clone() });
                if now >= latest_start(&st.request) {
                    out.push(Event::Expired);
                } else {
                    let mut cur = Cursor::of(st);
                    cur.misses += 1;
                    insert_sorted(&mut cur.offered, t);
                    self.dispatch_from(&st.request, &mut cur, now, out);
                }
            }
            Command::Tick { .. } => self.tick_request(st, now, out),
            Command::Pair { .. } | Command::Unpair { .. } | Command::Ledger { .. } => {
                unreachable!("pairing and ledger commands have no request kind")
            }
        }
        Ok(())
    }

    /// The team's open offer may still be answered at `now` (accept iff `now < deadline`).
    fn answerable(&self, st: &RequestState, team: &TeamId, now: DateTime<Utc>) -> Result<TeamIdx, LifecycleError> {
        let request = st.request.id();
        let t = self.team_idx(team)?;
        let offer = st
            .open_offer(t)
            .ok_or_else(|| LifecycleError::NotOffered { request: request.clone(), team: team.clone() })?;
        if now >= offer.deadline {
            return Err(LifecycleError::OfferExpired {
                request: request.clone(),
                team: team.clone(),
                deadline: offer.deadline,
            });
        }
        Ok(t)
    }

    fn holder(&self, st: &RequestState, team: &TeamId) -> Result<TeamIdx, LifecycleError> {
        let t = self.team_idx(team)?;
        if st.phase.holder() != Some(t) {
            return Err(LifecycleError::NotHolder { request: st.request.id().clone(), team: team.clone() });
        }
        Ok(t)
    }

    /// Settles the ratings and closes the request. A served request credits its volunteers and
    /// its team on the ledger stream, in the same decision, so the credits are appended with the
    /// settlement or not at all.
    fn settle(&self, st: &RequestState, ratings: &[(RaterRole, u8)], served: bool, out: &mut Out<'_>) {
        let p = self.policy_of(&st.request);
        let s = evaluation::settle(ratings, evaluation::expected_roles(st.sampled), p);
        out.push(Event::Settled { combined_milli: s.combined_milli, defaulted: s.defaulted, served });
        let mut credits = Vec::new();
        if served {
            match self.ledger.decide(&self.credit_command(st), out.at) {
                Ok(events) => credits = events,
                Err(e) => out.push(Event::CreditFailed { error: e.to_string() }),
            }
        }
        out.push(Event::Closed);
        for (seq, entry) in (self.ledger.applied() + 1..).zip(credits) {
            out.recs.push(Recorded { stream: StreamId::Ledger, seq, at: out.at, event: Event::Ledger { entry } });
        }
    }

    /// The ledger command crediting a completed request: open every account it touches (a no-op
    /// for those open), then the transfers of [`ledger::service_credit`]. The service counts as
    /// at night when it started (completion minus its minutes, in the unit's time zone) between
    /// 22:00 and 06:00, and as on a holiday when that local date is one of the policy book's.
    fn credit_command(&self, st: &RequestState) -> LedgerCommand {
        let (Phase::Completed { team, at }, Some((minutes, volunteers))) = (st.phase, &st.service) else {
            return LedgerCommand::default();
        };
        let req = &st.request;
        let tz = self.dispatcher.city().units().get(req.unit()).tz;
        let start = (at - Duration::minutes(i64::from(*minutes))).with_timezone(&tz);
        let hour = chrono::Timelike::hour(&start);
        let input = CreditInput {
            request: req.id().clone(),
            minutes: *minutes,
            volunteers: volunteers.clone(),
            team: Some(self.team_id(team)),
            urgent: req.urgency() != Urgency::Normal,
            night: !(6..22).contains(&hour),
            holiday: self.policies.is_holiday(start.date_naive()),
        };
        let transfers = ledger::service_credit(&self.policy_of(req).credit, &input);
        let mut accounts: Vec<AccountId> = Vec::with_capacity(transfers.len() + 2);
        for t in &transfers {
            for a in [&t.debit, &t.credit] {
                // An open account needs no `open` (it would be a no-op); a closed one gets it, so
                // that the ledger refuses the credit with the reason.
                let open = self.ledger.account(a).is_some_and(|acct| !acct.closed);
                if !open && !accounts.contains(a) {
                    accounts.push(a.clone());
                }
            }
        }
        let mut ops: Vec<LedgerOp> = accounts.into_iter().map(|account| LedgerOp::Open { account }).collect();
        ops.extend(transfers.into_iter().map(|transfer| LedgerOp::Transfer { transfer }));
        LedgerCommand::new(ops)
    }

    /// Decides a ledger command, or the ledger's tick (the reservations whose timeout passed).
    fn decide_ledger(&self, cmd: &Command, now: DateTime<Utc>, out: &mut Out<'_>) -> Result<(), LifecycleError> {
        let events = match cmd {
            Command::Ledger { command } => self.ledger.decide(command, now)?,
            Command::Tick { .. } => self.ledger.tick(now),
            _ => unreachable!("only ledger commands and ticks address the ledger stream"),
        };
        for entry in events {
            out.push(Event::Ledger { entry });
        }
        Ok(())
    }

    fn decide_submit(
        &self,
        spec: &RequestSpec,
        pairing: Option<(&PairingId, TeamIdx)>,
        now: DateTime<Utc>,
        out: &mut Out<'_>,
    ) -> Result<(), LifecycleError> {
        check_contact(&spec.contact)?;
        let req = Request::new(spec.clone(), self.dispatcher.city())?;
        let spec = req.shared_spec();
        if now >= latest_start(&req) {
            return Err(LifecycleError::WindowPassed { request: spec.id.clone(), end: spec.window.end() });
        }
        if spec.window.start() > now + Duration::days(HORIZON_DAYS) {
            return Err(LifecycleError::OverHorizon { request: spec.id.clone(), max_days: HORIZON_DAYS });
        }
        let units = self.dispatcher.city().units();
        let policy = self.policy_of(&req);
        let kind = if req.urgency() == Urgency::Emergency { policy.emergency_start_scope } else { policy.start_scope };
        let scope = start_scope(units, req.unit(), kind);
        out.push(Event::Submitted {
            spec: Arc::clone(spec),
            scope: units.get(scope).id.clone(),
            pairing: pairing.map(|(p, _)| p.clone()),
        });
        let mut cur = Cursor { scope, misses: 0, since: now, open: 0, offered: Vec::new(), recruiting: false };
        if let Some((_, team)) = pairing {
            let q = RankQuery { k: 1, scope: Some(units.county_of(req.unit())), ..RankQuery::default() };
            if self.dispatcher.check_team(&req, now, &RankQuery { policy: Some(policy.scoring), ..q }, team).is_some() {
                self.offer(&req, &mut cur, team, OfferMode::Paired, now, out);
                return Ok(());
            }
        }
        self.dispatch_from(&req, &mut cur, now, out);
        Ok(())
    }

    fn offer(
        &self,
        req: &Request,
        cur: &mut Cursor,
        team: TeamIdx,
        mode: OfferMode,
        now: DateTime<Utc>,
        out: &mut Out<'_>,
    ) {
        let p = self.policy_of(req);
        let secs = match mode {
            OfferMode::Recruitment => p.recruitment_deadline_s,
            OfferMode::Emergency => p.emergency_offer_deadline_s,
            OfferMode::Ranked | OfferMode::Paired => p.offer_deadline_for(req.urgency()),
        };
        let deadline = (now + Duration::seconds(i64::from(secs))).min(latest_start(req));
        out.push(Event::Offered { team: self.team_id(team), deadline, mode });
        insert_sorted(&mut cur.offered, team);
        cur.open += 1;
    }

    /// After a submission or an answer: top the open offers up to the target
    /// (one, or the fan-out of an emergency), widening the scope when the
    /// thresholds say so or nobody is left, and ending in a recruitment order
    /// or `Unfulfillable`.
    fn dispatch_from(&self, req: &Request, cur: &mut Cursor, now: DateTime<Utc>, out: &mut Out<'_>) {
        let p = self.policy_of(req);
        if cur.recruiting {
            if cur.open == 0 {
                out.push(Event::Unfulfillable);
            }
            return;
        }
        let emergency = req.urgency() == Urgency::Emergency;
        let target = if emergency { p.emergency_fanout as usize } else { 1 };
        let mut need = target.saturating_sub(cur.open);
        let reason = if cur.misses >= p.escalate_after_misses {
            Some(WidenReason::Misses)
        } else if now >= cur.since + Duration::minutes(i64::from(p.escalate_after_min)) {
            Some(WidenReason::Timeout)
        } else {
            None
        };
        let mut pool = Pool::default();
        if let Some(r) = reason {
            if !self.widen_with(&mut pool, req, cur, r, now, out) {
                return;
            }
            need = need.max(1);
        }
        if need == 0 {
            return;
        }
        let mode = if emergency { OfferMode::Emergency } else { OfferMode::Ranked };
        loop {
            let found = self.pick(&mut pool, req, cur, need, now);
            if !found.is_empty() {
                for idx in found {
                    self.offer(req, cur, idx, mode, now, out);
                }
                return;
            }
            if !self.widen_with(&mut pool, req, cur, WidenReason::NoCandidates, now, out) {
                return;
            }
        }
    }

    /// The best `k` eligible teams of the cursor's scope, not offered before.
    ///
    /// The pool holds every eligible team of the scope's county (or of the
    /// city, once dispatch reaches it), best first, computed once per
    /// decision and level: widening inside a county costs a filter, not
    /// another search.
    fn pick(&self, pool: &mut Pool, req: &Request, cur: &Cursor, k: usize, now: DateTime<Utc>) -> Vec<TeamIdx> {
        let units = self.dispatcher.city().units();
        let root = units.county_of(cur.scope);
        if pool.0.as_ref().is_none_or(|(r, _)| *r != root) {
            let q = RankQuery {
                k: usize::MAX,
                scope: Some(root),
                exclude: cur.offered.clone(),
                policy: Some(self.policy_of(req).scoring),
            };
            pool.0 = Some((root, self.dispatcher.rank_all(req, now, &q)));
        }
        let index = self.dispatcher.index();
        let all = pool.0.as_ref().map_or(&[][..], |(_, v)| v.as_slice());
        all.iter()
            .map(|r| r.idx)
            .filter(|&t| cur.offered.binary_search(&t).is_err() && units.is_in_subtree(index.get(t).unit, cur.scope))
            .take(k)
            .collect()
    }

    /// Widens the scope one level. Reaching the widest scope (the city)
    /// issues the recruitment order (招募令) instead of ranked offers.
    /// Returns whether dispatch should go on at the new scope.
    fn widen_with(
        &self,
        pool: &mut Pool,
        req: &Request,
        cur: &mut Cursor,
        reason: WidenReason,
        now: DateTime<Utc>,
        out: &mut Out<'_>,
    ) -> bool {
        let units = self.dispatcher.city().units();
        if let Some(parent) = units.get(cur.scope).parent {
            out.push(Event::ScopeWidened { scope: units.get(parent).id.clone(), reason });
            cur.scope = parent;
            cur.misses = 0;
            cur.since = now;
            if units.get(parent).parent.is_some() {
                return true;
            }
        }
        let all = self.pick(pool, req, cur, usize::MAX, now);
        if all.is_empty() && cur.open == 0 {
            out.push(Event::Unfulfillable);
            return false;
        }
        out.push(Event::RecruitmentIssued { scope: units.get(cur.scope).id.clone(), teams: all.len() as u32 });
        cur.recruiting = true;
        for idx in all {
            self.offer(req, cur, idx, OfferMode::Recruitment, now, out);
        }
        false
    }

    fn tick_request(&self, st: &RequestState, now: DateTime<Utc>, out: &mut Out<'_>) {
        match st.phase {
            Phase::Open => {
                if now >= latest_start(&st.request) {
                    for o in &st.offers {
                        out.push(Event::OfferWithdrawn { team: self.team_id(o.team) });
                    }
                    out.push(Event::Expired);
                    return;
                }
                let p = self.policy_of(&st.request);
                let mut due: Vec<&OpenOffer> = st.offers.iter().filter(|o| o.deadline <= now).collect();
                let timeout = now >= st.scope_since + Duration::minutes(i64::from(p.escalate_after_min));
                if due.is_empty() && (st.recruiting || !timeout) {
                    // Nothing is due (an early or repeated tick).
                    return;
                }
                let mut cur = Cursor::of(st);
                due.sort_by_key(|o| (o.deadline, o.team));
                for o in due {
                    out.push(Event::OfferExpired { team: self.team_id(o.team) });
                    cur.open -= 1;
                    cur.misses += 1;
                }
                self.dispatch_from(&st.request, &mut cur, now, out);
            }
            Phase::Held { team } => {
                if now >= st.request.window().end() {
                    out.push(Event::NoShow { team: self.team_id(team) });
                    out.push(Event::Expired);
                }
            }
            Phase::Completed { .. } => {
                if self.evaluation_closes(st).is_some_and(|closed| now >= closed) {
                    self.settle(st, &st.evaluations, true, out);
                }
            }
            Phase::CheckedIn { .. } | Phase::Closed | Phase::Cancelled | Phase::Expired | Phase::Unfulfillable => {}
        }
    }

    fn decide_pairing(&self, cmd: &Command, now: DateTime<Utc>, out: &mut Out<'_>) -> Result<(), LifecycleError> {
        match cmd {
            Command::Pair { spec } => {
                if self.pairing_slot.contains_key(&spec.id) {
                    return Err(LifecycleError::DuplicatePairing { pairing: spec.id.clone() });
                }
                self.team_idx(&spec.team)?;
                let city = self.dispatcher.city();
                let unknown = |what, id: &dyn std::fmt::Display| LifecycleError::PairingUnknownRef {
                    pairing: spec.id.clone(),
                    what,
                    id: id.to_string(),
                };
                let unit = city.units().idx(&spec.unit).ok_or_else(|| unknown("unit", &spec.unit))?;
                city.service(&spec.service).ok_or_else(|| unknown("service", &spec.service))?;
                if let Some(p) = self.household_pairing.get(&spec.household) {
                    return Err(LifecycleError::HouseholdPaired {
                        household: spec.household.clone(),
                        pairing: p.clone(),
                    });
                }
                check_contact(&spec.contact)?;
                Schedule::compile(spec, city.units().get(unit).tz)
                    .map_err(|error| LifecycleError::BadSchedule { pairing: spec.id.clone(), error })?;
                out.push(Event::Paired { spec: Box::new(spec.clone()) });
            }
            Command::Unpair { pairing, reason } => {
                let p =
                    self.pairing(pairing).ok_or_else(|| LifecycleError::UnknownPairing { pairing: pairing.clone() })?;
                if !p.active {
                    return Err(LifecycleError::PairingEnded { pairing: pairing.clone() });
                }
                text("reason", reason)?;
                out.push(Event::Unpaired { reason: reason.clone() });
            }
            Command::Tick { stream: StreamId::Pairing(pairing) } => {
                let p =
                    self.pairing(pairing).ok_or_else(|| LifecycleError::UnknownPairing { pairing: pairing.clone() })?;
                self.tick_pairing(p, now, out);
            }
            _ => unreachable!("request commands are decided by decide_request"),
        }
        Ok(())
    }

    fn tick_pairing(&self, p: &PairingState, now: DateTime<Utc>, out: &mut Out<'_>) {
        if !p.active {
            return;
        }
        let team = self.dispatcher.index().idx(&p.spec.team);
        let mut next = p.next;
        let mut visits = Vec::new();
        for _ in 0..pairing::MAX_SLOTS_PER_TICK {
            let Some(slot) = next else { break };
            if p.schedule.release_at(slot) > now {
                break;
            }
            let spec = pairing::visit_request(&p.spec, &p.schedule, slot);
            match (spec, team) {
                (Some(spec), Some(team)) if !self.request_slot.contains_key(&spec.id) => {
                    // Decide the visit's request on its own stream; a refusal (window
                    // already too close) skips the slot instead.
                    let mut recs = Vec::new();
                    let mut vout =
                        Out { recs: &mut recs, stream: StreamId::Request(spec.id.clone()), next_seq: 1, at: now };
                    if self.decide_submit(&spec, Some((&p.spec.id, team)), now, &mut vout).is_ok() {
                        out.push(Event::VisitScheduled { slot, request: spec.id.clone() });
                        visits.extend(recs);
                        // One visit per decision: its offers reserve capacity only once
                        // applied, so the next slot is decided on the next tick (the
                        // pairing stays due) against the updated loads.
                        break;
                    } else {
                        out.push(Event::VisitSkipped { slot });
                    }
                }
                _ => out.push(Event::VisitSkipped { slot }),
            }
            next = p.schedule.next_slot(Some(slot));
        }
        out.recs.extend(visits);
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
        let slot = match &rec.stream {
            StreamId::Request(id) => self.apply_request(id, slot, rec)?,
            StreamId::Pairing(id) => self.apply_pairing(id, slot, rec)?,
            StreamId::Ledger => {
                let Event::Ledger { entry } = &rec.event else {
                    return Err(Self::invalid(rec, format!("{} on the ledger stream", rec.event.name())));
                };
                self.ledger.apply(entry).map_err(|e| Self::invalid(rec, e.to_string()))?;
                self.applied += 1;
                return Ok(());
            }
        };
        self.applied += 1;
        self.reschedule(slot);
        Ok(())
    }

    fn invalid(rec: &Recorded, problem: impl Into<String>) -> ApplyError {
        ApplyError::Invalid { stream: rec.stream.clone(), seq: rec.seq, problem: problem.into() }
    }

    fn apply_request(&mut self, id: &RequestId, slot: Option<Slot>, rec: &Recorded) -> Result<Slot, ApplyError> {
        let idx_of = |lc: &Self, team: &TeamId| {
            lc.dispatcher.index().idx(team).ok_or_else(|| Self::invalid(rec, format!("unknown team {team}")))
        };
        if let Event::Submitted { spec, scope, pairing } = &rec.event {
            if slot.is_some() || spec.id != *id {
                return Err(Self::invalid(rec, "submission of an existing or different request"));
            }
            let request = Request::from_shared(Arc::clone(spec), self.dispatcher.city())
                .map_err(|e| Self::invalid(rec, e.to_string()))?;
            let scope = self
                .dispatcher
                .city()
                .units()
                .idx(scope)
                .ok_or_else(|| Self::invalid(rec, format!("unknown unit {scope}")))?;
            let i = self.requests.len() as u32;
            self.request_slot.insert(id.clone(), i);
            self.requests.push(RequestState {
                stream: rec.stream.clone(),
                request,
                phase: Phase::Open,
                version: 1,
                scope,
                misses: 0,
                scope_since: rec.at,
                offers: Vec::new(),
                excluded: Vec::new(),
                offered: Vec::new(),
                recruiting: false,
                pairing: pairing.clone(),
                evaluations: Vec::new(),
                sampled: false,
                disputed: false,
                service: None,
                wake: None,
            });
            return Ok(Slot::Request(i));
        }
        let team = match &rec.event {
            Event::Offered { team, .. }
            | Event::Accepted { team }
            | Event::Declined { team, .. }
            | Event::OfferExpired { team }
            | Event::OfferWithdrawn { team }
            | Event::CheckedIn { team }
            | Event::NoShow { team }
            | Event::Completed { team, .. } => Some(idx_of(self, team)?),
            _ => None,
        };
        let units_scope = match &rec.event {
            Event::ScopeWidened { scope, .. } => Some(
                self.dispatcher
                    .city()
                    .units()
                    .idx(scope)
                    .ok_or_else(|| Self::invalid(rec, format!("unknown unit {scope}")))?,
            ),
            _ => None,
        };
        let Some(Slot::Request(i)) = slot else {
            return Err(Self::invalid(rec, "event for a request never submitted"));
        };
        let st = &mut self.requests[i as usize];
        let phase = st.phase.kind();
        let bad = |what: &str| Self::invalid(rec, format!("{what} while {phase}"));
        // Load changes to make once the request's own state is updated.
        let mut load: Option<(TeamIdx, i32)> = None;
        let mut job: Option<(TeamIdx, Option<HouseholdId>)> = None;
        let mut rep: Option<(TeamIdx, f64)> = None;
        let open_pos = |st: &RequestState, t: TeamIdx| st.offers.iter().position(|o| o.team == t);
        match (&rec.event, team) {
            (Event::Offered { deadline, mode, .. }, Some(t)) => {
                if phase != PhaseKind::Open || st.offered.binary_search(&t).is_ok() {
                    return Err(bad("a second offer to one team, or an offer"));
                }
                st.offers.push(OpenOffer { team: t, deadline: *deadline, mode: *mode });
                insert_sorted(&mut st.offered, t);
                load = Some((t, 1));
            }
            (Event::Accepted { .. }, Some(t)) => {
                let pos = open_pos(st, t).filter(|_| phase == PhaseKind::Open).ok_or_else(|| bad("acceptance"))?;
                st.offers.remove(pos);
                st.phase = Phase::Held { team: t };
            }
            (Event::Declined { .. } | Event::OfferExpired { .. }, Some(t)) => {
                let pos = open_pos(st, t).ok_or_else(|| bad("an answer without an offer"))?;
                st.offers.remove(pos);
                insert_sorted(&mut st.excluded, t);
                st.misses += 1;
                load = Some((t, -1));
            }
            (Event::OfferWithdrawn { .. }, Some(t)) => {
                let pos = open_pos(st, t).ok_or_else(|| bad("a withdrawal without an offer"))?;
                st.offers.remove(pos);
                load = Some((t, -1));
            }
            (Event::ScopeWidened { .. }, _) => {
                st.scope = units_scope.ok_or_else(|| bad("widening"))?;
                st.misses = 0;
                st.scope_since = rec.at;
            }
            (Event::RecruitmentIssued { .. }, _) => st.recruiting = true,
            (Event::CheckedIn { .. }, Some(t)) if st.phase == (Phase::Held { team: t }) => {
                st.phase = Phase::CheckedIn { team: t };
            }
            (Event::NoShow { .. }, Some(t)) if st.phase == (Phase::Held { team: t }) => {
                st.phase = Phase::Open;
                insert_sorted(&mut st.excluded, t);
                st.misses += 1;
                load = Some((t, -1));
                *self.no_shows.entry(t).or_insert(0) += 1;
            }
            (Event::Completed { minutes, volunteers, sampled, .. }, Some(t))
                if st.phase == (Phase::CheckedIn { team: t }) =>
            {
                st.phase = Phase::Completed { team: t, at: rec.at };
                st.sampled = *sampled;
                st.service = Some((*minutes, volunteers.clone()));
                load = Some((t, -1));
                job = Some((t, st.household().cloned()));
            }
            (Event::Evaluated { role, score, .. }, _) if phase == PhaseKind::Completed => {
                st.evaluations.push((*role, *score));
            }
            (Event::Disputed { .. }, _) if phase == PhaseKind::Completed && !st.disputed => st.disputed = true,
            (Event::DisputeResolved { .. }, _) if phase == PhaseKind::Completed && st.disputed => st.disputed = false,
            (Event::Settled { combined_milli, served, .. }, _) if phase == PhaseKind::Completed => {
                if let Phase::Completed { team, .. } = st.phase {
                    let x = if *served { crate::reputation::observation_of(*combined_milli) } else { 0.0 };
                    rep = Some((team, x));
                }
            }
            (Event::CreditFailed { .. }, _) if phase == PhaseKind::Completed => {}
            (Event::Closed, _) if phase == PhaseKind::Completed => st.phase = Phase::Closed,
            (Event::Cancelled { .. }, _) if matches!(phase, PhaseKind::Open | PhaseKind::Held) => {
                if let Some(t) = st.phase.holder() {
                    load = Some((t, -1));
                }
                st.phase = Phase::Cancelled;
            }
            (Event::Expired, _) if phase == PhaseKind::Open => st.phase = Phase::Expired,
            (Event::Unfulfillable, _) if phase == PhaseKind::Open => st.phase = Phase::Unfulfillable,
            (e, _) => return Err(bad(e.name())),
        }
        st.version += 1;
        if let Some((t, d)) = load {
            self.dispatcher.index_mut().adjust_load(t, d);
        }
        if let Some((t, h)) = job {
            let id = self.team_id(t);
            // The team exists: its index came from this dispatcher.
            let _ = self.dispatcher.index_mut().record_job(&id, h.as_ref());
        }
        if let Some((t, x)) = rep {
            let model = self.reputation_model();
            let standing = self.standings.entry(t).or_default();
            model.observe(standing, x, rec.at);
            let value = model.value(standing, rec.at);
            let id = self.team_id(t);
            // The team exists and the value is in [0, 1] by construction.
            let _ = self.dispatcher.index_mut().set_reputation(&id, value);
        }
        Ok(Slot::Request(i))
    }

    fn apply_pairing(&mut self, id: &PairingId, slot: Option<Slot>, rec: &Recorded) -> Result<Slot, ApplyError> {
        let existing = match slot {
            Some(Slot::Pairing(i)) => Some(i as usize),
            _ => None,
        };
        match &rec.event {
            Event::Paired { spec } => {
                if existing.is_some() || spec.id != *id {
                    return Err(Self::invalid(rec, "a pairing that exists, or of another id"));
                }
                let units = self.dispatcher.city().units();
                let unit =
                    units.idx(&spec.unit).ok_or_else(|| Self::invalid(rec, format!("unknown unit {}", spec.unit)))?;
                let schedule =
                    Schedule::compile(spec, units.get(unit).tz).map_err(|e| Self::invalid(rec, e.to_string()))?;
                let team = self
                    .dispatcher
                    .index()
                    .idx(&spec.team)
                    .ok_or_else(|| Self::invalid(rec, format!("unknown team {}", spec.team)))?;
                let next = schedule.next_slot(None);
                self.household_pairing.insert(spec.household.clone(), id.clone());
                self.dispatcher.index_mut().set_paired(team, &spec.household, true);
                let i = self.pairings.len() as u32;
                self.pairing_slot.insert(id.clone(), i);
                self.pairings.push(PairingState {
                    stream: rec.stream.clone(),
                    spec: (**spec).clone(),
                    schedule,
                    active: true,
                    cursor: None,
                    next,
                    version: 1,
                    wake: None,
                });
                return Ok(Slot::Pairing(i));
            }
            Event::Unpaired { .. } => {
                let p = existing
                    .map(|i| &mut self.pairings[i])
                    .filter(|p| p.active)
                    .ok_or_else(|| Self::invalid(rec, "no active pairing"))?;
                p.active = false;
                p.version += 1;
                let (household, team) = (p.spec.household.clone(), p.spec.team.clone());
                self.household_pairing.remove(&household);
                if let Some(t) = self.dispatcher.index().idx(&team) {
                    self.dispatcher.index_mut().set_paired(t, &household, false);
                }
            }
            Event::VisitScheduled { slot, .. } | Event::VisitSkipped { slot } => {
                let p = existing.map(|i| &mut self.pairings[i]).ok_or_else(|| Self::invalid(rec, "no such pairing"))?;
                if p.next != Some(*slot) {
                    return Err(Self::invalid(rec, format!("slot {slot} is not the pairing's next")));
                }
                p.cursor = Some(*slot);
                p.next = p.schedule.next_slot(Some(*slot));
                p.version += 1;
            }
            e => return Err(Self::invalid(rec, format!("{} on a pairing stream", e.name()))),
        }
        existing.map(|i| Slot::Pairing(i as u32)).ok_or_else(|| Self::invalid(rec, "no such pairing"))
    }

    /// When a completed request's evaluation window closes (then the tick
    /// settles it with the ratings it has); `None` for a request not
    /// completed or in dispute, which waits for the station.
    fn evaluation_closes(&self, st: &RequestState) -> Option<DateTime<Utc>> {
        match st.phase {
            Phase::Completed { at, .. } if !st.disputed => {
                Some(at + Duration::hours(i64::from(self.policy_of(&st.request).evaluation_window_h)))
            }
            _ => None,
        }
    }

    fn wake_at(&self, slot: Slot) -> Option<DateTime<Utc>> {
        let st = match slot {
            Slot::Pairing(i) => return self.pairings[i as usize].wake_at(),
            Slot::Ledger => return None,
            Slot::Request(i) => &self.requests[i as usize],
        };
        let p = self.policy_of(&st.request);
        match st.phase {
            Phase::Open => {
                let mut w = latest_start(&st.request);
                for o in &st.offers {
                    w = w.min(o.deadline);
                }
                if !st.recruiting {
                    w = w.min(st.scope_since + Duration::minutes(i64::from(p.escalate_after_min)));
                }
                Some(w)
            }
            Phase::Held { .. } => Some(st.request.window().end()),
            Phase::Completed { .. } => self.evaluation_closes(st),
            Phase::CheckedIn { .. } | Phase::Closed | Phase::Cancelled | Phase::Expired | Phase::Unfulfillable => None,
        }
    }

    fn reschedule(&mut self, slot: Slot) {
        let next = self.wake_at(slot);
        let wake = match slot {
            Slot::Request(i) => &mut self.requests[i as usize].wake,
            Slot::Pairing(i) => &mut self.pairings[i as usize].wake,
            Slot::Ledger => return,
        };
        if *wake == next {
            return;
        }
        if let Some(old) = std::mem::replace(wake, next) {
            self.wakeups.remove(&(old, slot));
        }
        if let Some(t) = next {
            self.wakeups.insert((t, slot));
        }
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
            (t.load, t.recent_jobs, &t.households_served, &t.paired_households).hash(&mut h);
        }
        let mut ss: Vec<_> =
            self.standings.iter().map(|(t, s)| (t, s.sum.to_bits(), s.weight.to_bits(), s.count)).collect();
        ss.sort();
        ss.hash(&mut h);
        let mut ns: Vec<_> = self.no_shows.iter().collect();
        ns.sort();
        ns.hash(&mut h);
        let mut wakes: Vec<(DateTime<Utc>, &StreamId)> =
            self.wakeups.iter().map(|(t, s)| (*t, self.stream_of(*s))).collect();
        wakes.sort();
        wakes.hash(&mut h);
        self.ledger.digest().hash(&mut h);
        h.finish()
    }
}

#[cfg(test)]
mod tests;

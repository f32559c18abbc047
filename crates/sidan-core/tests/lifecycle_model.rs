//! A state-machine test of the request lifecycle against a small reference model.
//!
//! Random sequences of 1–200 operations, legal and illegal, drive a
//! [`Lifecycle`] over the tiny test city (`testkit::tiny_city`). The model
//! written here (phase, holder, open offers, teams ever offered, scope,
//! ratings, sampling and dispute per request; open offers + holds per team;
//! pairings) predicts whether each command is legal, and folds every event
//! the lifecycle emits, checking it against reliability.md's invariants 1–8,
//! 10, 11–13, 23 and 28 before the event is applied. At the end of a case the clock runs on until every
//! request has ended, the whole log is replayed into a fresh lifecycle, and
//! the same operations are run a second time for a byte-identical log.
//!
//! Cases follow `PROPTEST_CASES` (256 by default; CI asks for 1024). A
//! failure prints the operations; proptest keeps the failing seed in its
//! regressions file so that it replays.

use std::borrow::Borrow;
use std::collections::{BTreeMap, BTreeSet, HashSet};

use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::select;
use proptest::strategy::ValueTree;
use proptest::test_runner::{FileFailurePersistence, TestRunner};

use sidan_core::city::City;
use sidan_core::dispatch::{Dispatcher, RankQuery};
use sidan_core::geo::Location;
use sidan_core::id::{HouseholdId, PairingId, RequestId, ServiceId, TeamId, UnitId, VolunteerId};
use sidan_core::index::TeamIdx;
use sidan_core::ledger::{AccountId, LedgerEvent, TransferKind};
use sidan_core::lifecycle::evaluation::{MAX_TAGS, Tag};
use sidan_core::lifecycle::{
    Command, DeclineReason, Event, HORIZON_DAYS, Lifecycle, LifecyclePolicy, MAX_SERVICE_MIN, MAX_TEXT_LEN,
    MAX_VOLUNTEERS, MemoryPolicy, OfferMode, PairingCommand, PairingSpec, PhaseKind, PolicyBook, RaterRole, Recorded,
    RequestCommand, RosterCommand, Score, ServiceMinutes, StreamId, Text, ValueError, Volunteers, WidenReason,
};
use sidan_core::request::{BeneficiaryGroup, Contact, Request, RequestSpec, Urgency};
use sidan_core::team::TeamChange;
use sidan_core::testkit::{HOME, t0, tiny_city};
use sidan_core::time::TimeWindow;
use sidan_core::units::{UnitIdx, UnitKind};

// ---------------------------------------------------------------------------
// Operations
// ---------------------------------------------------------------------------

static REQUESTS: [&str; 8] = ["q0", "q1", "q2", "q3", "q4", "q5", "q6", "q7"];
static UNITS: [&str; 11] =
    ["cz", "c1", "c1-i1", "c1-i1-s1", "c1-i1-s2", "c1-i2", "c1-i2-s1", "c1-i2-s2", "c2", "c2-i1", "c2-i1-s1"];
/// The tiny city's teams and one unknown id.
static TEAMS: [&str; 12] = ["c1-s1-a", "c1-s1-b", "c1-s2", "c1-i2", "c2", "r1", "r2", "r3", "r4", "r5", "r6", "ghost"];
static SERVICES: [&str; 3] = ["home-care", "rescue", "haircut"];
/// Services of submissions, weighted: `haircut` (no team has the skill) ends at once.
static SUBMITTED_SERVICES: [&str; 6] = ["home-care", "home-care", "home-care", "rescue", "rescue", "haircut"];
static URGENCIES: [Urgency; 4] = [Urgency::Normal, Urgency::Normal, Urgency::Urgent, Urgency::Emergency];
/// Latitude offsets of a request from `HOME`: next door, at the edge of the teams' 30 km reach, beyond it.
static DISTANCES: [f64; 7] = [0.001, 0.001, 0.001, 0.001, 0.001, 0.28, 0.5];
static HOUSEHOLDS: [&str; 4] = ["hp0", "hp1", "hp2", "h-q0"];
/// A pairing's recurrence rule, relative to the weekday of its first slot.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Rule {
    /// `FREQ=WEEKLY;BYDAY=<the first slot's day>`.
    Weekly,
    /// `FREQ=WEEKLY;BYDAY=<that day>,<two days later>`.
    WeeklyTwice,
    /// `FREQ=WEEKLY;BYDAY=<three days after the first slot's day>`.
    WeeklyOther,
    Daily,
    Every6h,
    /// `FREQ=SOMETIMES`: refused.
    Invalid,
}
static RULES: [Rule; 6] =
    [Rule::Weekly, Rule::WeeklyTwice, Rule::WeeklyOther, Rule::Daily, Rule::Every6h, Rule::Invalid];
static LEADS_H: [u32; 7] = [0, 2, 12, 24, 48, 336, 1000];
static WINDOWS_MIN: [u32; 5] = [0, 30, 60, 180, 240];
static POLICIES: [fn() -> LifecyclePolicy; 3] = [policy_default, policy_hasty, policy_patient];

fn policy_default() -> LifecyclePolicy {
    LifecyclePolicy::default()
}

/// Short deadlines, one miss widens, a small emergency fan-out, every completion sampled for review.
fn policy_hasty() -> LifecyclePolicy {
    LifecyclePolicy {
        offer_deadline_s: 600,
        urgent_offer_deadline_s: 300,
        emergency_offer_deadline_s: 120,
        emergency_fanout: 2,
        recruitment_deadline_s: 3600,
        escalate_after_misses: 1,
        escalate_after_min: 30,
        evaluation_window_h: 6,
        missing_rating_score: 2,
        third_party_sample_rate: 1.0,
        ..LifecyclePolicy::default()
    }
}

/// Long deadlines, dispatch starting at the institute, emergencies at the station, a wide fan-out, no
/// third-party review.
fn policy_patient() -> LifecyclePolicy {
    LifecyclePolicy {
        offer_deadline_s: 4 * 3600,
        recruitment_deadline_s: 12 * 3600,
        emergency_fanout: 8,
        start_scope: UnitKind::Institute,
        emergency_start_scope: UnitKind::Station,
        escalate_after_misses: 2,
        escalate_after_min: 240,
        evaluation_window_h: 24,
        third_party_sample_rate: 0.0,
        ..LifecyclePolicy::default()
    }
}

/// Which request a command addresses.
#[derive(Debug, Clone, Copy)]
enum ReqSel {
    /// One of `REQUESTS`.
    Id(usize),
    /// The n-th (modulo) of the requests not yet ended, at run time; `REQUESTS[n]` if there is none.
    Live(usize),
    /// The n-th (modulo) request a pairing made, at run time; `REQUESTS[n]` if there is none.
    Visit(usize),
    /// The n-th (modulo) of the requests being evaluated (completed), at run time; `REQUESTS[n]` if none.
    Rated(usize),
}

/// Which team a command names.
#[derive(Debug, Clone, Copy)]
enum TeamSel {
    /// The n-th (modulo) of the teams with an open offer for the request or holding it, at run time;
    /// `TEAMS[n]` if there is none.
    Involved(usize),
    /// That team (or an unknown one).
    Any(&'static str),
}

/// Something wrong with a submission.
#[derive(Debug, Clone, Copy)]
enum Flaw {
    None,
    LongDetail,
    UnknownUnit,
    UnknownService,
    ZeroDuration,
    DurationOverWindow,
    OverHorizon,
}

/// The tags of a rating.
#[derive(Debug, Clone, Copy)]
enum Tags {
    None,
    /// `[punctual, friendly]`.
    Good,
    /// `[not_served]`: from the resident, a dispute.
    NotServed,
    /// `[late, impolite, late]`: a repeat, folded away.
    Mixed,
    /// One more than `MAX_TAGS`: refused.
    TooMany,
}

#[derive(Debug, Clone, Copy)]
enum Reason {
    NoVolunteers,
    TooFar,
    Other,
    TooLong,
}

#[derive(Debug, Clone)]
enum Op {
    Submit {
        req: usize,
        unit: &'static str,
        service: &'static str,
        urgency: Urgency,
        start_min: i64,
        len_h: i64,
        dlat: f64,
        flaw: Flaw,
    },
    Accept {
        req: ReqSel,
        team: TeamSel,
    },
    Decline {
        req: ReqSel,
        team: TeamSel,
        reason: Reason,
    },
    CheckIn {
        req: ReqSel,
        team: TeamSel,
    },
    Complete {
        req: ReqSel,
        team: TeamSel,
        minutes: u32,
        volunteers: Vec<u8>,
    },
    Evaluate {
        req: ReqSel,
        role: RaterRole,
        score: u8,
        tags: Tags,
        long_comment: bool,
    },
    ResolveDispute {
        req: ReqSel,
        served: bool,
        long_note: bool,
    },
    Cancel {
        req: ReqSel,
        long_reason: bool,
    },
    NoShow {
        req: ReqSel,
        team: TeamSel,
    },
    /// An explicit tick of a request stream, due or not.
    Tick {
        req: ReqSel,
    },
    /// An admin turns a team off (its open offers go to others) or on again.
    Roster {
        team: &'static str,
        active: bool,
    },
    /// An admin changes a team's capacity.
    Capacity {
        team: &'static str,
        capacity: u32,
    },
    /// Time passes; every due stream is ticked, in order, until none is due.
    Advance {
        minutes: i64,
    },
    /// Time passes and the timer is late: nothing is ticked.
    Wait {
        minutes: i64,
    },
    Pair {
        pairing: usize,
        team: &'static str,
        household: &'static str,
        unit: &'static str,
        service: &'static str,
        rule: Rule,
        day: i64,
        hour: u32,
        lead_h: u32,
        window_min: u32,
    },
    Unpair {
        pairing: usize,
    },
}

impl Op {
    /// Whether the op carries a value its type refuses: a long text, too many tags, a score or
    /// minutes out of range, too many or repeated volunteers.
    fn bad_value(&self) -> bool {
        match self {
            Op::Decline { reason, .. } => matches!(reason, Reason::TooLong),
            Op::Complete { minutes, volunteers, .. } => {
                let distinct: BTreeSet<_> = volunteers.iter().collect();
                !(1..=MAX_SERVICE_MIN).contains(minutes)
                    || volunteers.len() > MAX_VOLUNTEERS
                    || distinct.len() != volunteers.len()
            }
            Op::Evaluate { score, tags, long_comment, .. } => {
                !(1..=5).contains(score) || matches!(tags, Tags::TooMany) || *long_comment
            }
            Op::ResolveDispute { long_note, .. } => *long_note,
            Op::Cancel { long_reason, .. } => *long_reason,
            _ => false,
        }
    }
}

fn req_sel() -> impl Strategy<Value = ReqSel> {
    prop_oneof![
        3 => (0..REQUESTS.len()).prop_map(ReqSel::Id),
        4 => (0..REQUESTS.len()).prop_map(ReqSel::Live),
        1 => (0..REQUESTS.len()).prop_map(ReqSel::Visit),
    ]
}

/// For ratings and disputes: mostly a request being evaluated.
fn rated_sel() -> impl Strategy<Value = ReqSel> {
    prop_oneof![1 => req_sel(), 3 => (0..REQUESTS.len()).prop_map(ReqSel::Rated)]
}

fn team_sel() -> impl Strategy<Value = TeamSel> {
    prop_oneof![7 => (0..4usize).prop_map(TeamSel::Involved), 3 => select(&TEAMS[..]).prop_map(TeamSel::Any)]
}

fn flaw() -> impl Strategy<Value = Flaw> {
    prop_oneof![
        30 => Just(Flaw::None),
        1 => Just(Flaw::LongDetail),
        1 => Just(Flaw::UnknownUnit),
        1 => Just(Flaw::UnknownService),
        1 => Just(Flaw::ZeroDuration),
        1 => Just(Flaw::DurationOverWindow),
        1 => Just(Flaw::OverHorizon),
    ]
}

fn reason() -> impl Strategy<Value = Reason> {
    prop_oneof![
        4 => Just(Reason::NoVolunteers),
        2 => Just(Reason::TooFar),
        2 => Just(Reason::Other),
        1 => Just(Reason::TooLong),
    ]
}

fn tags() -> impl Strategy<Value = Tags> {
    prop_oneof![
        4 => Just(Tags::None),
        3 => Just(Tags::Good),
        2 => Just(Tags::NotServed),
        1 => Just(Tags::Mixed),
        1 => Just(Tags::TooMany),
    ]
}

fn minutes_passing() -> impl Strategy<Value = i64> {
    prop_oneof![5 => 1i64..=15, 3 => 15i64..=90, 1 => 90i64..=720]
}

fn service_minutes() -> impl Strategy<Value = u32> {
    prop_oneof![1 => Just(0u32), 8 => 1u32..=MAX_SERVICE_MIN, 1 => (MAX_SERVICE_MIN + 1)..=3000]
}

fn op() -> impl Strategy<Value = Op> {
    let submit = (
        0..REQUESTS.len(),
        select(&UNITS[..]),
        select(&SUBMITTED_SERVICES[..]),
        select(&URGENCIES[..]),
        -120i64..2880,
        1i64..=8,
        select(&DISTANCES[..]),
        flaw(),
    )
        .prop_map(|(req, unit, service, urgency, start_min, len_h, dlat, flaw)| Op::Submit {
            req,
            unit,
            service,
            urgency,
            start_min,
            len_h,
            dlat,
            flaw,
        });
    let pair =
        (
            0..3usize,
            select(&TEAMS[..]),
            select(&HOUSEHOLDS[..]),
            select(&UNITS[..]),
            select(&SERVICES[..]),
            select(&RULES[..]),
            -1i64..4,
            0u32..24,
            select(&LEADS_H[..]),
            select(&WINDOWS_MIN[..]),
        )
            .prop_map(|(pairing, team, household, unit, service, rule, day, hour, lead_h, window_min)| {
                Op::Pair { pairing, team, household, unit, service, rule, day, hour, lead_h, window_min }
            });
    prop_oneof![
        14 => submit,
        20 => (req_sel(), team_sel()).prop_map(|(req, team)| Op::Accept { req, team }),
        8 => (req_sel(), team_sel(), reason()).prop_map(|(req, team, reason)| Op::Decline { req, team, reason }),
        8 => (req_sel(), team_sel()).prop_map(|(req, team)| Op::CheckIn { req, team }),
        8 => (req_sel(), team_sel(), service_minutes(), vec(0u8..3, 0..3))
            .prop_map(|(req, team, minutes, volunteers)| Op::Complete { req, team, minutes, volunteers }),
        8 => (rated_sel(), select(&RaterRole::ALL[..]), 0u8..=6, tags(), prop::bool::weighted(0.05))
            .prop_map(|(req, role, score, tags, long_comment)| Op::Evaluate { req, role, score, tags, long_comment }),
        2 => (rated_sel(), any::<bool>(), prop::bool::weighted(0.1))
            .prop_map(|(req, served, long_note)| Op::ResolveDispute { req, served, long_note }),
        3 => (req_sel(), prop::bool::weighted(0.1)).prop_map(|(req, long_reason)| Op::Cancel { req, long_reason }),
        3 => (req_sel(), team_sel()).prop_map(|(req, team)| Op::NoShow { req, team }),
        2 => req_sel().prop_map(|req| Op::Tick { req }),
        14 => minutes_passing().prop_map(|minutes| Op::Advance { minutes }),
        2 => (1i64..=40).prop_map(|minutes| Op::Wait { minutes }),
        3 => pair,
        1 => (0..3usize).prop_map(|pairing| Op::Unpair { pairing }),
        2 => (select(&TEAMS[..]), prop::bool::weighted(0.4)).prop_map(|(team, active)| Op::Roster { team, active }),
        1 => (select(&TEAMS[..]), 0u32..=3).prop_map(|(team, capacity)| Op::Capacity { team, capacity }),
    ]
}

// ---------------------------------------------------------------------------
// The reference model
// ---------------------------------------------------------------------------

type Res<T = ()> = Result<T, String>;

macro_rules! ensure {
    ($cond:expr, $($arg:tt)+) => {
        {
            let holds: bool = $cond;
            if !holds {
                return Err(format!($($arg)+));
            }
        }
    };
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum MPhase {
    Open,
    Held(TeamIdx),
    CheckedIn(TeamIdx),
    Completed(DateTime<Utc>),
    Ended(PhaseKind),
}

impl MPhase {
    fn kind(self) -> PhaseKind {
        match self {
            MPhase::Open => PhaseKind::Open,
            MPhase::Held(_) => PhaseKind::Held,
            MPhase::CheckedIn(_) => PhaseKind::CheckedIn,
            MPhase::Completed(_) => PhaseKind::Completed,
            MPhase::Ended(k) => k,
        }
    }

    fn holder(self) -> Option<TeamIdx> {
        match self {
            MPhase::Held(t) | MPhase::CheckedIn(t) => Some(t),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct MOffer {
    team: TeamIdx,
    deadline: DateTime<Utc>,
}

#[derive(Debug, Clone)]
struct MReq {
    request: Request,
    phase: MPhase,
    /// Open offers, in the order made.
    offers: Vec<MOffer>,
    /// Every team ever offered the request.
    ever: BTreeSet<TeamIdx>,
    /// Teams that declined, let an offer expire, or did not show.
    excluded: BTreeSet<TeamIdx>,
    scope: UnitIdx,
    since: DateTime<Utc>,
    misses: u32,
    recruiting: bool,
    ratings: BTreeMap<RaterRole, u8>,
    /// Whether a third party reviews it (from its completion).
    sampled: bool,
    /// Whether the resident disputes that it was served.
    disputed: bool,
    pairing: Option<PairingId>,
    /// The minutes and the distinct volunteers of the completion.
    service: Option<(u32, BTreeSet<VolunteerId>)>,
}

impl MReq {
    fn offer(&self, t: TeamIdx) -> Option<&MOffer> {
        self.offers.iter().find(|o| o.team == t)
    }

    fn take_offer(&mut self, t: TeamIdx) -> Option<MOffer> {
        let pos = self.offers.iter().position(|o| o.team == t)?;
        Some(self.offers.remove(pos))
    }
}

#[derive(Debug, Clone)]
struct MPairing {
    team: TeamId,
    household: HouseholdId,
    active: bool,
    last_slot: Option<DateTime<Utc>>,
    lead: Duration,
}

/// What one decision did to one request.
#[derive(Debug, Default)]
struct Notes {
    submitted: bool,
    /// The decision ran dispatch for the request (a submission, a miss, a widening).
    dispatched: bool,
    accepted: bool,
    withdrew: bool,
    /// A decline, an expiry or a no-show.
    miss: bool,
    /// A new offer or a recruitment order.
    progressed: bool,
    /// The teams eligible when a recruitment order went out in this decision.
    recruited: Option<BTreeSet<TeamIdx>>,
    recruit_offers: BTreeSet<TeamIdx>,
    last_expiry: Option<(DateTime<Utc>, TeamIdx)>,
    /// The ratings were settled.
    settled: bool,
    /// They were settled as served: credits follow on the ledger stream.
    served: bool,
}

struct Model {
    policy: LifecyclePolicy,
    now: DateTime<Utc>,
    reqs: BTreeMap<RequestId, MReq>,
    /// Requests made by pairings, in order.
    visits: Vec<RequestId>,
    pairings: BTreeMap<PairingId, MPairing>,
    /// Open offers + holds per team.
    load: Vec<u32>,
    /// Per team, the load it held when its capacity was lowered under it: it keeps what it
    /// holds (and takes no offer) until it is under the new capacity.
    over: Vec<u32>,
    /// The last sequence number per stream.
    seqs: BTreeMap<StreamId, u64>,
    /// Minutes banked per volunteer: the minutes of every request settled as served they were present at.
    banked: BTreeMap<VolunteerId, u64>,
    /// Every (request, account) credited: once each (invariant 21).
    credited: BTreeSet<(RequestId, AccountId)>,
    /// When each transfer still in the ledger's memory was made, in order (every transfer here
    /// is a posted service credit, linked to none: each leaves alone).
    ledger_memory: std::collections::VecDeque<DateTime<Utc>>,
    /// When the ledger last retired settled transfers.
    last_retired: Option<DateTime<Utc>>,
}

fn latest_start(req: &Request) -> DateTime<Utc> {
    req.window().end() - Duration::minutes(i64::from(req.duration_min()))
}

/// The roles expected to rate a completed request: the third party only if it was sampled.
fn expected_roles(sampled: bool) -> &'static [RaterRole] {
    const ALL: [RaterRole; 4] = [RaterRole::Resident, RaterRole::Station, RaterRole::Team, RaterRole::ThirdParty];
    if sampled { &ALL } else { &ALL[..3] }
}

fn text_ok(s: &str) -> bool {
    s.len() <= MAX_TEXT_LEN
}

fn team_idx(lc: &Lifecycle, team: &TeamId) -> Res<TeamIdx> {
    lc.dispatcher().index().idx(team).ok_or_else(|| format!("an event names the unknown team {team}"))
}

/// Whether `check_team` (the dispatcher's single-team eligibility check) admits `t` for `st` at `scope`,
/// excluding every team offered the request before.
fn eligible(lc: &Lifecycle, st: &MReq, scope: UnitIdx, t: TeamIdx, now: DateTime<Utc>) -> bool {
    let q = RankQuery { k: 1, scope: Some(scope), exclude: st.ever.iter().copied().collect(), policy: None };
    lc.dispatcher().check_team(&st.request, now, &q, t).is_some()
}

fn eligible_set(lc: &Lifecycle, st: &MReq, scope: UnitIdx, now: DateTime<Utc>) -> BTreeSet<TeamIdx> {
    (0..lc.dispatcher().index().len())
        .map(|i| TeamIdx(u32::try_from(i).expect("few teams")))
        .filter(|t| !st.ever.contains(t) && eligible(lc, st, scope, *t, now))
        .collect()
}

fn team_name(lc: &Lifecycle, t: TeamIdx) -> String {
    lc.dispatcher().index().get(t).id.to_string()
}

impl Model {
    fn new(policy: LifecyclePolicy, teams: usize) -> Self {
        Self {
            policy,
            now: t0(),
            reqs: BTreeMap::new(),
            visits: Vec::new(),
            pairings: BTreeMap::new(),
            load: vec![0; teams],
            over: vec![0; teams],
            seqs: BTreeMap::new(),
            banked: BTreeMap::new(),
            credited: BTreeSet::new(),
            ledger_memory: std::collections::VecDeque::new(),
            last_retired: None,
        }
    }

    /// When the ledger next retires settled transfers: a retention after the oldest in memory,
    /// and a day after the last retirement (docs/ledger.md).
    fn next_retirement(&self) -> Option<DateTime<Utc>> {
        let due = *self.ledger_memory.front()? + MemoryPolicy::default().ledger_retention();
        Some(self.last_retired.map_or(due, |t| due.max(t + Duration::days(1))))
    }

    fn submit_ok(&self, city: &City, spec: &RequestSpec) -> bool {
        let c = &spec.contact;
        if self.reqs.contains_key(&spec.id) || ![&c.name, &c.phone, &c.community, &c.detail].iter().all(|s| text_ok(s))
        {
            return false;
        }
        let Some(service) = city.service(&spec.service) else { return false };
        if city.units().idx(&spec.unit).is_none() {
            return false;
        }
        let dur = spec.duration_min.unwrap_or(service.default_duration_min);
        if dur == 0 || i64::from(dur) > spec.window.minutes() {
            return false;
        }
        let latest = spec.window.end() - Duration::minutes(i64::from(dur));
        self.now < latest && spec.window.start() <= self.now + Duration::days(HORIZON_DAYS)
    }

    fn pair_ok(&self, lc: &Lifecycle, spec: &PairingSpec) -> bool {
        let city = lc.dispatcher().city();
        !self.pairings.contains_key(&spec.id)
            && lc.dispatcher().index().idx(&spec.team).is_some()
            && city.units().idx(&spec.unit).is_some()
            && city.service(&spec.service).is_some()
            && !self.pairings.values().any(|p| p.active && p.household == spec.household)
            && !spec.rule.contains("SOMETIMES")
            && (1..=1440).contains(&spec.window_min)
            && spec.lead_h <= 720
    }

    /// The model's prediction: may `cmd` be given now?
    fn legal(&self, lc: &Lifecycle, cmd: &Command) -> bool {
        let now = self.now;
        let index = lc.dispatcher().index();
        let with = |r: &RequestId, t: &TeamId| self.reqs.get(r).zip(index.idx(t));
        let offered = |r: &RequestId, t: &TeamId| {
            with(r, t).is_some_and(|(st, t)| st.phase == MPhase::Open && st.offer(t).is_some_and(|o| now < o.deadline))
        };
        match cmd {
            Command::Request(RequestCommand::Submit { spec }) => self.submit_ok(lc.dispatcher().city(), spec),
            Command::Request(RequestCommand::Accept { request, team }) => offered(request, team),
            Command::Request(RequestCommand::Decline { request, team, .. }) => offered(request, team),
            Command::Request(RequestCommand::CheckIn { request, team }) => with(request, team)
                .is_some_and(|(st, t)| st.phase == MPhase::Held(t) && self.now < st.request.window().end()),
            Command::Request(RequestCommand::ReportNoShow { request, team }) => {
                with(request, team).is_some_and(|(st, t)| st.phase == MPhase::Held(t))
            }
            // Values (minutes, volunteers, scores, tags, texts) are valid by their types: the
            // ops that make invalid ones are refused when the command is built (see `command`).
            Command::Request(RequestCommand::Complete { request, team, .. }) => {
                with(request, team).is_some_and(|(st, t)| st.phase == MPhase::CheckedIn(t))
            }
            Command::Request(RequestCommand::Evaluate { request, role, .. }) => {
                self.reqs.get(request).is_some_and(|st| {
                    let window = Duration::hours(i64::from(self.policy.evaluation_window_h));
                    // A request in dispute stays open for ratings until the dispute is resolved.
                    matches!(st.phase, MPhase::Completed(at) if st.disputed || self.now < at + window)
                        && !st.ratings.contains_key(role)
                        && (*role != RaterRole::ThirdParty || st.sampled)
                })
            }
            Command::Request(RequestCommand::ResolveDispute { request, .. }) => {
                self.reqs.get(request).is_some_and(|st| matches!(st.phase, MPhase::Completed(_)) && st.disputed)
            }
            Command::Request(RequestCommand::Cancel { request, .. }) => {
                self.reqs.get(request).is_some_and(|st| matches!(st.phase, MPhase::Open | MPhase::Held(_)))
            }
            Command::Tick(StreamId::Request(r)) => self.reqs.contains_key(r),
            Command::Tick(StreamId::Pairing(p)) => self.pairings.contains_key(p),
            Command::Tick(StreamId::Ledger) => self.next_retirement().is_some_and(|t| t <= self.now),
            Command::Pairing(PairingCommand::Pair { spec }) => self.pair_ok(lc, spec),
            Command::Pairing(PairingCommand::Unpair { pairing, .. }) => {
                self.pairings.get(pairing).is_some_and(|p| p.active)
            }
            Command::Roster(RosterCommand::Deactivate { team, .. }) => {
                index.idx(team).is_some_and(|t| index.get(t).active)
            }
            Command::Roster(RosterCommand::Reactivate { team }) => {
                index.idx(team).is_some_and(|t| !index.get(t).active)
            }
            Command::Roster(RosterCommand::ChangeTeam { team, change }) => {
                index.idx(team).is_some() && change.capacity.is_some_and(|c| c >= 1)
            }
            _ => false,
        }
    }

    /// Folds one decision into the model, checking every event against the lifecycle *before* it is applied.
    fn fold(&mut self, lc: &Lifecycle, cmd: &Command, recs: &[Recorded]) -> Res {
        let target = cmd.stream();
        let mut notes: BTreeMap<RequestId, Notes> = BTreeMap::new();
        let mut announced: BTreeSet<RequestId> = BTreeSet::new();
        // A team turned off: every request with an open offer to it is dispatched again.
        let off = match cmd {
            Command::Roster(RosterCommand::Deactivate { team, .. }) => lc.dispatcher().index().idx(team),
            _ => None,
        };
        let redispatched: BTreeSet<RequestId> = match off {
            Some(t) => self.reqs.iter().filter(|(_, st)| st.offer(t).is_some()).map(|(r, _)| r.clone()).collect(),
            None => BTreeSet::new(),
        };
        for rec in recs {
            ensure!(rec.at == self.now, "{}: recorded at {}, decided at {}", rec.id(), rec.at, self.now);
            let last = self.seqs.entry(rec.stream.clone()).or_insert(0);
            ensure!(rec.seq == *last + 1, "{}: seq {} follows {}", rec.stream, rec.seq, last);
            *last = rec.seq;
            match &rec.stream {
                StreamId::Pairing(p) => {
                    ensure!(rec.stream == target, "{}: an event on a stream the command did not address", rec.id());
                    self.fold_pairing(p, cmd, &rec.event, &mut announced)
                        .map_err(|e| format!("{}: {}: {e}", rec.id(), rec.event.name()))?;
                }
                StreamId::Ledger => {
                    self.fold_ledger(cmd, &rec.event, &notes).map_err(|e| format!("{}: {e}", rec.id()))?;
                }
                StreamId::Team(_) => {
                    ensure!(rec.stream == target, "{}: an event on a stream the command did not address", rec.id());
                    let fits = matches!(
                        (&rec.event, cmd),
                        (Event::TeamDeactivated { .. }, Command::Roster(RosterCommand::Deactivate { .. }))
                            | (Event::TeamReactivated, Command::Roster(RosterCommand::Reactivate { .. }))
                            | (Event::TeamChanged { .. }, Command::Roster(RosterCommand::ChangeTeam { .. }))
                    );
                    ensure!(fits, "{}: {} caused by {cmd:?}", rec.id(), rec.event.name());
                    if let (Event::TeamChanged { .. }, Command::Roster(RosterCommand::ChangeTeam { team, .. })) =
                        (&rec.event, cmd)
                    {
                        let t = team_idx(lc, team)?;
                        self.over[t.0 as usize] = self.load[t.0 as usize];
                    }
                }
                StreamId::Request(r) => {
                    ensure!(
                        rec.stream == target || announced.contains(r) || redispatched.contains(r),
                        "{}: an event on a stream the command did not address",
                        rec.id()
                    );
                    let n = notes.entry(r.clone()).or_default();
                    self.fold_request(lc, cmd, r, &rec.event, n)
                        .map_err(|e| format!("{}: {}: {e}", rec.id(), rec.event.name()))?;
                }
            }
        }
        for r in &announced {
            ensure!(notes.get(r).is_some_and(|n| n.submitted), "visit {r} was announced but not submitted");
        }
        for (r, n) in &notes {
            self.after_decision(lc, cmd, r, n).map_err(|e| format!("request/{r} after the decision: {e}"))?;
        }
        Ok(())
    }

    /// A ledger event in a request decision: a service credit of a request settled as served
    /// in it, or the opening of an account one credits.
    fn fold_ledger(&mut self, cmd: &Command, ev: &Event, notes: &BTreeMap<RequestId, Notes>) -> Res {
        let Event::Ledger { entry } = ev else { return Err(format!("{} on the ledger stream", ev.name())) };
        match entry {
            LedgerEvent::AccountOpened { .. } => Ok(()),
            // Settled transfers leave memory a retention after they were made, at most once a day.
            LedgerEvent::Retired { before, at } => {
                ensure!(matches!(cmd, Command::Tick(StreamId::Ledger)), "a retirement caused by {cmd:?}");
                ensure!(*at == self.now, "a retirement at {at}, decided at {}", self.now);
                ensure!(self.next_retirement().is_some_and(|t| t <= self.now), "a retirement not due");
                ensure!(*before == self.now - MemoryPolicy::default().ledger_retention(), "retires before {before}");
                while self.ledger_memory.front().is_some_and(|t| t <= before) {
                    self.ledger_memory.pop_front();
                }
                self.last_retired = Some(*at);
                Ok(())
            }
            LedgerEvent::Transferred { transfer } => {
                self.ledger_memory.push_back(transfer.at);
                let TransferKind::ServiceCredit { request } = &transfer.kind else {
                    return Err(format!("a {} transfer in a request decision", transfer.kind.name()));
                };
                ensure!(notes.get(request).is_some_and(|n| n.served), "a credit for {request}, not settled as served");
                ensure!(
                    self.credited.insert((request.clone(), transfer.credit.clone())),
                    "{} credited twice for {request}",
                    transfer.credit
                );
                let (minutes, present) =
                    self.reqs.get(request).and_then(|st| st.service.clone()).ok_or("no service")?;
                match &transfer.credit {
                    AccountId::VolunteerMinutes(v) => {
                        ensure!(present.contains(v), "{v} banks minutes of {request} without being present");
                        ensure!(
                            transfer.amount == u64::from(minutes),
                            "{v} banks {} of {minutes} minutes",
                            transfer.amount
                        );
                    }
                    AccountId::VolunteerPoints(v) => ensure!(present.contains(v), "{v} earns points of {request}"),
                    AccountId::TeamPoints(_) => {}
                    other => return Err(format!("a service credit to {other}")),
                }
                Ok(())
            }
            other => Err(format!("ledger {} in a request decision", other.name())),
        }
    }

    fn fold_pairing(&mut self, p: &PairingId, cmd: &Command, ev: &Event, announced: &mut BTreeSet<RequestId>) -> Res {
        let now = self.now;
        match ev {
            Event::Paired { spec } => {
                // `Borrow` reads the spec whether the event boxes it or not.
                let spec: &PairingSpec = spec.borrow();
                ensure!(
                    matches!(cmd, Command::Pairing(PairingCommand::Pair { spec: s }) if **s == *spec),
                    "not the pairing asked for"
                );
                ensure!(!self.pairings.contains_key(p), "the pairing exists");
                self.pairings.insert(
                    p.clone(),
                    MPairing {
                        team: spec.team.clone(),
                        household: spec.household.clone(),
                        active: true,
                        last_slot: None,
                        lead: Duration::hours(i64::from(spec.lead_h)),
                    },
                );
            }
            Event::Unpaired { .. } => {
                ensure!(matches!(cmd, Command::Pairing(PairingCommand::Unpair { .. })), "caused by {cmd:?}");
                let mp = self.pairings.get_mut(p).ok_or("unknown pairing")?;
                ensure!(mp.active, "already ended");
                mp.active = false;
            }
            Event::VisitScheduled { slot, .. } | Event::VisitSkipped { slot } => {
                ensure!(matches!(cmd, Command::Tick(_)), "caused by {cmd:?}");
                let mp = self.pairings.get_mut(p).ok_or("unknown pairing")?;
                ensure!(mp.active, "a visit of an ended pairing");
                // Invariant 10: each slot once, in order, never before its release.
                ensure!(mp.last_slot.is_none_or(|l| *slot > l), "slot {slot} is not after {:?}", mp.last_slot);
                ensure!(*slot - mp.lead <= now, "slot {slot} handled before its release");
                mp.last_slot = Some(*slot);
                if let Event::VisitScheduled { request, .. } = ev {
                    let expected = format!("{p}:{}", slot.format("%Y%m%dT%H%M"));
                    ensure!(request.as_str() == expected, "visit request {request}, expected {expected}");
                    ensure!(announced.insert(request.clone()), "visit {request} announced twice");
                    ensure!(!self.reqs.contains_key(request), "visit {request} exists already");
                }
            }
            other => return Err(format!("{} on a pairing stream", other.name())),
        }
        Ok(())
    }

    fn fold_request(&mut self, lc: &Lifecycle, cmd: &Command, r: &RequestId, ev: &Event, n: &mut Notes) -> Res {
        let now = self.now;
        let city = lc.dispatcher().city();
        let units = city.units();
        let index = lc.dispatcher().index();
        if let Event::Submitted { spec, scope, pairing } = ev {
            let spec: &RequestSpec = spec.borrow();
            ensure!(!self.reqs.contains_key(r), "submitted twice");
            ensure!(spec.id == *r, "the spec is of {}", spec.id);
            match (cmd, pairing) {
                (Command::Request(RequestCommand::Submit { spec: asked }), None) => {
                    ensure!(asked == spec, "not the spec submitted")
                }
                (Command::Tick(StreamId::Pairing(p)), Some(q)) if p == q => {
                    let mp = self.pairings.get(p).ok_or("made by an unknown pairing")?;
                    ensure!(mp.active, "made by an ended pairing");
                    ensure!(spec.household.as_ref() == Some(&mp.household), "not the pairing's household");
                }
                _ => return Err(format!("a submission {cmd:?} cannot cause")),
            }
            let request = Request::new(spec.clone(), city).map_err(|e| format!("an invalid request: {e}"))?;
            let scope = units.idx(scope).ok_or_else(|| format!("unknown scope {scope}"))?;
            let kind = if spec.urgency == Urgency::Emergency {
                self.policy.emergency_start_scope
            } else {
                self.policy.start_scope
            };
            let unit = request.unit();
            let first = std::iter::once(unit).chain(units.ancestors(unit)).find(|&u| units.get(u).kind <= kind);
            ensure!(Some(scope) == first, "first scope {scope:?}, expected {first:?}");
            ensure!(now < latest_start(&request), "submitted too late to be served");
            if pairing.is_some() {
                self.visits.push(r.clone());
            }
            self.reqs.insert(
                r.clone(),
                MReq {
                    request,
                    phase: MPhase::Open,
                    offers: Vec::new(),
                    ever: BTreeSet::new(),
                    excluded: BTreeSet::new(),
                    scope,
                    since: now,
                    misses: 0,
                    recruiting: false,
                    ratings: BTreeMap::new(),
                    sampled: false,
                    disputed: false,
                    pairing: pairing.clone(),
                    service: None,
                },
            );
            n.submitted = true;
            n.dispatched = true;
            return Ok(());
        }
        let policy = self.policy;
        let st = self.reqs.get(r).ok_or("an event before the submission")?;
        // Invariants 2/3: a terminal state is absorbing.
        ensure!(!st.phase.kind().is_terminal(), "an event after the terminal {}", st.phase.kind());
        let phase = st.phase;
        let urgency = st.request.urgency();
        match ev {
            Event::Offered { team, deadline, mode } => {
                let t = team_idx(lc, team)?;
                let rec = index.get(t);
                ensure!(phase == MPhase::Open, "an offer while {}", phase.kind());
                // Invariants 5/8: eligible, never offered before.
                ensure!(!st.ever.contains(&t), "{team} was offered this request before");
                ensure!(rec.active, "{team} is inactive");
                ensure!(
                    self.load[t.0 as usize] < rec.capacity,
                    "{team} is full: {} open offers + holds, capacity {}",
                    self.load[t.0 as usize],
                    rec.capacity
                );
                ensure!(st.request.skills().is_subset(&rec.skills), "{team} lacks a skill");
                let d = rec.base.distance_m(st.request.location());
                ensure!(d <= rec.reach_m, "{team} reaches {} m, the request is {d} m away", rec.reach_m);
                let scope = match mode {
                    OfferMode::Paired => {
                        let mp = st.pairing.as_ref().and_then(|p| self.pairings.get(p));
                        ensure!(mp.is_some_and(|mp| mp.team == *team), "a paired offer to a team not paired");
                        ensure!(st.ever.is_empty(), "a paired offer that is not the first");
                        units.county_of(st.request.unit())
                    }
                    OfferMode::Emergency => {
                        ensure!(urgency == Urgency::Emergency, "an emergency offer of a {urgency:?} request");
                        ensure!(!st.recruiting, "an emergency offer after the recruitment order");
                        st.scope
                    }
                    OfferMode::Ranked => {
                        ensure!(urgency != Urgency::Emergency, "a ranked offer of an emergency");
                        ensure!(!st.recruiting, "a ranked offer after the recruitment order");
                        st.scope
                    }
                    OfferMode::Recruitment => {
                        let set = n.recruited.as_ref().ok_or("a recruitment offer without an order in the decision")?;
                        ensure!(set.contains(&t), "a recruitment offer to {team}, not eligible at the order");
                        n.recruit_offers.insert(t);
                        st.scope
                    }
                };
                ensure!(units.is_in_subtree(rec.unit, scope), "{team} is outside the scope {}", units.get(scope).id);
                ensure!(eligible(lc, st, scope, t, now), "check_team refuses {team} at {}", units.get(scope).id);
                // Invariant 6: the deadline is the policy's, never past the latest start.
                let secs = match mode {
                    OfferMode::Recruitment => policy.recruitment_deadline_s,
                    OfferMode::Emergency => policy.emergency_offer_deadline_s,
                    _ => policy.offer_deadline_for(urgency),
                };
                let expected = (now + Duration::seconds(i64::from(secs))).min(latest_start(&st.request));
                ensure!(*deadline == expected && *deadline > now, "deadline {deadline}, expected {expected}");
                let st = self.reqs.get_mut(r).ok_or("gone")?;
                st.offers.push(MOffer { team: t, deadline: *deadline });
                st.ever.insert(t);
                self.load[t.0 as usize] += 1;
                n.progressed = true;
            }
            Event::Accepted { team } => {
                let t = team_idx(lc, team)?;
                ensure!(
                    matches!(cmd, Command::Request(RequestCommand::Accept { team: c, .. }) if c == team),
                    "caused by {cmd:?}"
                );
                // Invariant 1: one holder.
                ensure!(phase == MPhase::Open, "accepted while {} (holder {:?})", phase.kind(), phase.holder());
                let st = self.reqs.get_mut(r).ok_or("gone")?;
                let o = st.take_offer(t).ok_or_else(|| format!("{team} has no open offer"))?;
                ensure!(now < o.deadline, "accepted at {now}, the deadline was {}", o.deadline);
                st.phase = MPhase::Held(t);
                n.accepted = true;
            }
            Event::Declined { team, .. } | Event::OfferExpired { team } => {
                let t = team_idx(lc, team)?;
                ensure!(phase == MPhase::Open, "an answer while {}", phase.kind());
                let declined = matches!(ev, Event::Declined { .. });
                if declined {
                    ensure!(
                        matches!(cmd, Command::Request(RequestCommand::Decline { team: c, .. }) if c == team),
                        "caused by {cmd:?}"
                    );
                } else {
                    ensure!(matches!(cmd, Command::Tick(_)), "caused by {cmd:?}");
                }
                let st = self.reqs.get_mut(r).ok_or("gone")?;
                let o = st.take_offer(t).ok_or_else(|| format!("{team} has no open offer"))?;
                // Invariant 6: declined only before the deadline, expired only after it, in deadline order.
                if declined {
                    ensure!(now < o.deadline, "declined at {now}, the deadline was {}", o.deadline);
                } else {
                    ensure!(o.deadline <= now, "expired at {now}, before the deadline {}", o.deadline);
                    let key = (o.deadline, t);
                    ensure!(n.last_expiry.is_none_or(|l| l <= key), "expiries out of deadline order");
                    n.last_expiry = Some(key);
                }
                st.excluded.insert(t);
                st.misses += 1;
                self.load[t.0 as usize] -= 1;
                n.miss = true;
                n.dispatched = true;
            }
            Event::OfferWithdrawn { team } => {
                let t = team_idx(lc, team)?;
                ensure!(
                    matches!(
                        cmd,
                        Command::Request(RequestCommand::Accept { .. })
                            | Command::Request(RequestCommand::Cancel { .. })
                            | Command::Tick(_)
                            | Command::Roster(RosterCommand::Deactivate { .. })
                    ),
                    "caused by {cmd:?}"
                );
                let by_roster = matches!(cmd, Command::Roster(_));
                if let Command::Roster(RosterCommand::Deactivate { team: off, .. }) = cmd {
                    // Its own offers; or every offer of a request past its latest start, which expires.
                    let late = self.now >= latest_start(&st.request);
                    ensure!(team == off || late, "{team} withdrawn when {off} was turned off");
                }
                let st = self.reqs.get_mut(r).ok_or("gone")?;
                st.take_offer(t).ok_or_else(|| format!("{team} has no open offer"))?;
                self.load[t.0 as usize] -= 1;
                n.withdrew = true;
                // The request is dispatched again in the same decision.
                n.dispatched |= by_roster;
            }
            Event::ScopeWidened { scope, reason } => {
                ensure!(phase == MPhase::Open, "widened while {}", phase.kind());
                ensure!(!st.recruiting, "widened after the recruitment order");
                let new = units.idx(scope).ok_or_else(|| format!("unknown scope {scope}"))?;
                ensure!(units.get(st.scope).parent == Some(new), "{scope} is not the parent of the scope");
                match reason {
                    WidenReason::Misses => ensure!(st.misses >= policy.escalate_after_misses, "{} misses", st.misses),
                    WidenReason::Timeout => ensure!(
                        st.misses < policy.escalate_after_misses
                            && now >= st.since + Duration::minutes(i64::from(policy.escalate_after_min)),
                        "a timeout at {now}, in the scope since {}",
                        st.since
                    ),
                    WidenReason::NoCandidates => {
                        let left = eligible_set(lc, st, st.scope, now);
                        ensure!(left.is_empty(), "no candidates, but check_team admits {left:?}");
                    }
                }
                let st = self.reqs.get_mut(r).ok_or("gone")?;
                st.scope = new;
                st.misses = 0;
                st.since = now;
                n.dispatched = true;
            }
            Event::RecruitmentIssued { scope, teams } => {
                ensure!(phase == MPhase::Open, "recruiting while {}", phase.kind());
                ensure!(!st.recruiting, "a second recruitment order");
                ensure!(units.idx(scope) == Some(st.scope), "recruiting at {scope}, not the scope");
                ensure!(units.get(st.scope).parent.is_none(), "recruiting below the widest scope");
                let set = eligible_set(lc, st, st.scope, now);
                ensure!(set.len() == *teams as usize, "{teams} teams recruited, check_team admits {set:?}");
                ensure!(!set.is_empty() || !st.offers.is_empty(), "an order to nobody, with no offer open");
                n.recruited = Some(set);
                self.reqs.get_mut(r).ok_or("gone")?.recruiting = true;
                n.progressed = true;
            }
            Event::CheckedIn { team } => {
                let t = team_idx(lc, team)?;
                ensure!(
                    matches!(cmd, Command::Request(RequestCommand::CheckIn { team: c, .. }) if c == team),
                    "caused by {cmd:?}"
                );
                ensure!(phase == MPhase::Held(t), "checked in while {} by {:?}", phase.kind(), phase.holder());
                self.reqs.get_mut(r).ok_or("gone")?.phase = MPhase::CheckedIn(t);
            }
            Event::NoShow { team } => {
                let t = team_idx(lc, team)?;
                ensure!(phase == MPhase::Held(t), "a no-show while {} by {:?}", phase.kind(), phase.holder());
                let reported =
                    matches!(cmd, Command::Request(RequestCommand::ReportNoShow { team: c, .. }) if c == team);
                let timed = matches!(cmd, Command::Tick(_)) && now >= st.request.window().end();
                ensure!(reported || timed, "caused by {cmd:?}");
                let st = self.reqs.get_mut(r).ok_or("gone")?;
                st.phase = MPhase::Open;
                st.excluded.insert(t);
                st.misses += 1;
                self.load[t.0 as usize] -= 1;
                n.miss = true;
                n.dispatched = true;
            }
            Event::Completed { team, minutes, sampled, .. } => {
                let t = team_idx(lc, team)?;
                ensure!(
                    matches!(cmd, Command::Request(RequestCommand::Complete { team: c, minutes: m, .. }) if c == team && m == minutes),
                    "caused by {cmd:?}"
                );
                ensure!(phase == MPhase::CheckedIn(t), "completed while {} by {:?}", phase.kind(), phase.holder());
                let rate = policy.third_party_sample_rate;
                ensure!((rate > 0.0 || !sampled) && (rate < 1.0 || *sampled), "sampled = {sampled} at the rate {rate}");
                let Command::Request(RequestCommand::Complete { volunteers, .. }) = cmd else {
                    return Err(format!("caused by {cmd:?}"));
                };
                let st = self.reqs.get_mut(r).ok_or("gone")?;
                st.phase = MPhase::Completed(now);
                st.sampled = *sampled;
                st.service = Some((minutes.get(), volunteers.iter().cloned().collect()));
                self.load[t.0 as usize] -= 1;
            }
            Event::Evaluated { role, score, tags, .. } => {
                let Command::Request(RequestCommand::Evaluate { role: c, score: s, tags: asked, .. }) = cmd else {
                    return Err(format!("caused by {cmd:?}"));
                };
                ensure!(c == role && s == score && asked == tags, "not the rating given: {cmd:?}");
                ensure!(matches!(phase, MPhase::Completed(_)), "evaluated while {}", phase.kind());
                ensure!(*role != RaterRole::ThirdParty || st.sampled, "a third-party rating, not sampled");
                let st = self.reqs.get_mut(r).ok_or("gone")?;
                ensure!(st.ratings.insert(*role, score.get()).is_none(), "{role:?} rated twice");
            }
            Event::Disputed { by } => {
                let disputes = matches!(cmd, Command::Request(RequestCommand::Evaluate { role: RaterRole::Resident, tags, .. })
                    if tags.contains(Tag::NotServed));
                ensure!(disputes && *by == RaterRole::Resident, "disputed by {by:?} after {cmd:?}");
                ensure!(matches!(phase, MPhase::Completed(_)) && !st.disputed, "disputed while {}", phase.kind());
                self.reqs.get_mut(r).ok_or("gone")?.disputed = true;
            }
            Event::DisputeResolved { served, .. } => {
                ensure!(
                    matches!(cmd, Command::Request(RequestCommand::ResolveDispute { served: s, .. }) if s == served),
                    "caused by {cmd:?}"
                );
                ensure!(matches!(phase, MPhase::Completed(_)) && st.disputed, "resolved while {}", phase.kind());
                self.reqs.get_mut(r).ok_or("gone")?.disputed = false;
            }
            Event::Settled { combined_milli, defaulted, served } => {
                let MPhase::Completed(at) = phase else { return Err(format!("settled while {}", phase.kind())) };
                ensure!(!st.disputed, "settled with a dispute open");
                let expected = expected_roles(st.sampled);
                let all_rated = expected.iter().all(|role| st.ratings.contains_key(role));
                let window_over = now >= at + Duration::hours(i64::from(policy.evaluation_window_h));
                let (cause, want_served) = match cmd {
                    Command::Request(RequestCommand::Evaluate { .. }) => (all_rated, true),
                    Command::Tick(_) => (window_over, true),
                    Command::Request(RequestCommand::ResolveDispute { served, .. }) => (true, *served),
                    _ => (false, true),
                };
                ensure!(cause, "settled by {cmd:?} with ratings {:?}", st.ratings);
                ensure!(*served == want_served, "served = {served} after {cmd:?}");
                let missing: Vec<RaterRole> =
                    expected.iter().copied().filter(|role| !st.ratings.contains_key(role)).collect();
                ensure!(*defaulted == missing, "defaulted {defaulted:?}, missing were {missing:?}");
                // The combined score is a weighted mean of scores pulled towards their median: within their range.
                let scores: Vec<u32> = expected
                    .iter()
                    .map(|role| u32::from(st.ratings.get(role).copied().unwrap_or(policy.missing_rating_score)))
                    .collect();
                let (lo, hi) = (scores.iter().min().copied(), scores.iter().max().copied());
                let (lo, hi) = (lo.unwrap_or(1) * 1000, hi.unwrap_or(5) * 1000);
                ensure!((lo..=hi).contains(combined_milli), "combined {combined_milli} outside the scores {scores:?}");
                n.settled = true;
                n.served = *served;
                if *served {
                    let (minutes, present) = st.service.clone().ok_or("settled without a service")?;
                    for v in present {
                        *self.banked.entry(v).or_insert(0) += u64::from(minutes);
                    }
                }
            }
            Event::Closed => {
                ensure!(matches!(phase, MPhase::Completed(_)), "closed while {}", phase.kind());
                ensure!(n.settled, "closed without settling");
                self.reqs.get_mut(r).ok_or("gone")?.phase = MPhase::Ended(PhaseKind::Closed);
            }
            Event::Cancelled { .. } => {
                ensure!(matches!(cmd, Command::Request(RequestCommand::Cancel { .. })), "caused by {cmd:?}");
                ensure!(matches!(phase, MPhase::Open | MPhase::Held(_)), "cancelled while {}", phase.kind());
                ensure!(st.offers.is_empty(), "cancelled with offers open");
                if let Some(t) = phase.holder() {
                    self.load[t.0 as usize] -= 1;
                }
                self.reqs.get_mut(r).ok_or("gone")?.phase = MPhase::Ended(PhaseKind::Cancelled);
            }
            Event::Expired => {
                ensure!(
                    matches!(
                        cmd,
                        Command::Tick(_)
                            | Command::Request(RequestCommand::ReportNoShow { .. })
                            | Command::Roster(RosterCommand::Deactivate { .. })
                    ),
                    "caused by {cmd:?}"
                );
                ensure!(phase == MPhase::Open, "expired while {}", phase.kind());
                ensure!(st.offers.is_empty(), "expired with offers open");
                ensure!(now >= latest_start(&st.request), "expired at {now}, before its latest start");
                self.reqs.get_mut(r).ok_or("gone")?.phase = MPhase::Ended(PhaseKind::Expired);
            }
            Event::Unfulfillable => {
                ensure!(phase == MPhase::Open, "unfulfillable while {}", phase.kind());
                ensure!(st.offers.is_empty(), "unfulfillable with offers open");
                if !st.recruiting {
                    ensure!(units.get(st.scope).parent.is_none(), "unfulfillable below the widest scope");
                    let left = eligible_set(lc, st, st.scope, now);
                    ensure!(left.is_empty(), "unfulfillable, but check_team admits {left:?}");
                }
                self.reqs.get_mut(r).ok_or("gone")?.phase = MPhase::Ended(PhaseKind::Unfulfillable);
            }
            other => return Err(format!("{} on a request stream", other.name())),
        }
        Ok(())
    }

    fn after_decision(&self, lc: &Lifecycle, cmd: &Command, r: &RequestId, n: &Notes) -> Res {
        let st = self.reqs.get(r).ok_or("unknown")?;
        let p = &self.policy;
        // Invariants 1/2: an acceptance leaves no offer open; withdrawals only when the request is taken or ends.
        if n.accepted {
            ensure!(st.offers.is_empty(), "accepted, but {} offers stay open", st.offers.len());
        }
        if n.withdrew && !matches!(cmd, Command::Roster(RosterCommand::Deactivate { .. })) {
            ensure!(st.phase != MPhase::Open, "offers withdrawn from an open request");
        }
        if let Some(set) = &n.recruited {
            ensure!(n.recruit_offers == *set, "the order went to {:?}, eligible were {set:?}", n.recruit_offers);
        }
        if n.settled {
            ensure!(st.phase == MPhase::Ended(PhaseKind::Closed), "settled, then {}", st.phase.kind());
        }
        if matches!(st.phase, MPhase::Completed(_)) && !st.disputed {
            let all_rated = expected_roles(st.sampled).iter().all(|role| st.ratings.contains_key(role));
            ensure!(!all_rated, "every expected role rated, not settled: {:?}", st.ratings);
        }
        if st.phase == MPhase::Open {
            // Liveness (invariant 8): an open request is always being offered to someone. After a decline,
            // an expiry or a no-show this means a new offer, a recruitment order or an end, unless another
            // offer is still open.
            ensure!(!st.offers.is_empty(), "open with no offer (miss {}, progressed {})", n.miss, n.progressed);
            if n.miss && !st.recruiting {
                ensure!(st.misses < p.escalate_after_misses, "{} misses and not widened", st.misses);
            }
            // Dispatch tops the open offers up to the target (one, or the emergency fan-out) while the
            // scope has eligible teams; `lc` has not applied the decision yet, as dispatch saw it.
            let target = if st.request.urgency() == Urgency::Emergency { p.emergency_fanout as usize } else { 1 };
            if n.dispatched && !st.recruiting && st.offers.len() < target {
                let left = eligible_set(lc, st, st.scope, self.now);
                ensure!(left.is_empty(), "{} of {target} offers open, check_team admits {left:?}", st.offers.len());
            }
            if matches!(cmd, Command::Tick(_)) {
                self.timers_ok(r, st)?;
            }
        } else if n.miss {
            ensure!(n.progressed || st.phase.kind().is_terminal(), "a miss, then {}", st.phase.kind());
        }
        Ok(())
    }

    /// After a tick, nothing the stream's timers cover is overdue.
    fn timers_ok(&self, r: &RequestId, st: &MReq) -> Res {
        let now = self.now;
        let p = &self.policy;
        match st.phase {
            MPhase::Open => {
                ensure!(now < latest_start(&st.request), "{r}: open past its latest start");
                for o in &st.offers {
                    ensure!(
                        now < o.deadline,
                        "{r}: the offer to {:?} is open past its deadline {}",
                        o.team,
                        o.deadline
                    );
                }
                if !st.recruiting {
                    let until = st.since + Duration::minutes(i64::from(p.escalate_after_min));
                    ensure!(now < until, "{r}: in its scope since {} and not widened", st.since);
                }
            }
            MPhase::Held(_) => ensure!(now < st.request.window().end(), "{r}: held past the window's end"),
            MPhase::Completed(at) => ensure!(
                st.disputed || now < at + Duration::hours(i64::from(p.evaluation_window_h)),
                "{r}: not closed after the evaluation window"
            ),
            MPhase::CheckedIn(_) | MPhase::Ended(_) => {}
        }
        Ok(())
    }

    /// After every applied decision: the model agrees with the lifecycle's own state.
    fn agrees(&self, lc: &Lifecycle, touched: &BTreeSet<RequestId>) -> Res {
        // Bounded memory: the ledger holds exactly the transfers the model has not seen retired.
        let held = lc.ledger().transfers_in_memory();
        ensure!(
            held == self.ledger_memory.len(),
            "the ledger holds {held} transfers, the model {}",
            self.ledger_memory.len()
        );
        ensure!(lc.ledger().next_retirement() == self.next_retirement(), "the ledger retires at another time");
        let index = lc.dispatcher().index();
        // Invariant 7: open offers + holds within capacity, and equal to the index's load.
        for (i, rec) in index.records().iter().enumerate() {
            let m = self.load[i];
            let bound = rec.capacity.max(self.over[i]);
            ensure!(m <= bound, "team {}: {m} open offers + holds, capacity {}", rec.id, rec.capacity);
            ensure!(m == rec.load, "team {}: the model counts {m}, the index's load is {}", rec.id, rec.load);
        }
        for r in touched {
            let st = self.reqs.get(r).ok_or_else(|| format!("{r}: unknown to the model"))?;
            let got = lc.request(r).ok_or_else(|| format!("{r}: unknown to the lifecycle"))?;
            let offers: Vec<TeamIdx> = got.offers.iter().map(|o| o.team).collect();
            let mine: Vec<TeamIdx> = st.offers.iter().map(|o| o.team).collect();
            ensure!(
                got.phase.kind() == st.phase.kind(),
                "{r}: phase {}, the model says {}",
                got.phase.kind(),
                st.phase.kind()
            );
            ensure!(
                got.phase.holder() == st.phase.holder(),
                "{r}: holder {:?} vs {:?}",
                got.phase.holder(),
                st.phase.holder()
            );
            ensure!(offers == mine, "{r}: open offers {offers:?}, the model has {mine:?}");
            ensure!(
                got.offered.iter().copied().eq(st.ever.iter().copied()),
                "{r}: offered {:?} vs {:?}",
                got.offered,
                st.ever
            );
            ensure!(got.excluded.iter().copied().eq(st.excluded.iter().copied()), "{r}: excluded {:?}", got.excluded);
            ensure!(got.scope == st.scope && got.recruiting == st.recruiting, "{r}: scope or recruiting differs");
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// The harness: operations → commands, run against the lifecycle and the model
// ---------------------------------------------------------------------------

fn rule_text(rule: Rule, first: NaiveDate) -> String {
    const DAYS: [&str; 7] = ["MO", "TU", "WE", "TH", "FR", "SA", "SU"];
    let day = |plus: usize| DAYS[(first.weekday().num_days_from_monday() as usize + plus) % 7];
    match rule {
        Rule::Weekly => format!("FREQ=WEEKLY;BYDAY={}", day(0)),
        Rule::WeeklyTwice => format!("FREQ=WEEKLY;BYDAY={},{}", day(0), day(2)),
        Rule::WeeklyOther => format!("FREQ=WEEKLY;BYDAY={}", day(3)),
        Rule::Daily => "FREQ=DAILY".into(),
        Rule::Every6h => "FREQ=HOURLY;INTERVAL=6".into(),
        Rule::Invalid => "FREQ=SOMETIMES".into(),
    }
}

fn lifecycle(policy: LifecyclePolicy) -> Lifecycle {
    let (city, index) = tiny_city();
    Lifecycle::new(Dispatcher::new(city, index), PolicyBook::uniform(policy).expect("a valid policy"))
}

fn rid(s: &str) -> RequestId {
    RequestId::new(s).expect("a valid id")
}

fn contact() -> Contact {
    Contact {
        name: "张桂兰".into(),
        phone: "13812345678".into(),
        community: "运河区水月寺社区".into(),
        detail: "7号楼3单元402".into(),
    }
}

fn command_name(cmd: &Command) -> &'static str {
    match cmd {
        Command::Request(RequestCommand::Submit { .. }) => "submit",
        Command::Request(RequestCommand::Accept { .. }) => "accept",
        Command::Request(RequestCommand::Decline { .. }) => "decline",
        Command::Request(RequestCommand::CheckIn { .. }) => "check_in",
        Command::Request(RequestCommand::Complete { .. }) => "complete",
        Command::Request(RequestCommand::Evaluate { .. }) => "evaluate",
        Command::Request(RequestCommand::ResolveDispute { .. }) => "resolve_dispute",
        Command::Request(RequestCommand::Cancel { .. }) => "cancel",
        Command::Request(RequestCommand::ReportNoShow { .. }) => "report_no_show",
        Command::Tick(_) => "tick",
        Command::Pairing(PairingCommand::Pair { .. }) => "pair",
        Command::Pairing(PairingCommand::Unpair { .. }) => "unpair",
        Command::Roster(RosterCommand::Deactivate { .. }) => "deactivate",
        Command::Roster(RosterCommand::Reactivate { .. }) => "reactivate",
        Command::Roster(RosterCommand::ChangeTeam { .. }) => "change_team",
        _ => "other",
    }
}

fn names(recs: &[Recorded]) -> String {
    recs.iter().map(|r| format!("{} {:?}", r.id(), r.event)).collect::<Vec<_>>().join("\n    ")
}

struct Harness {
    lc: Lifecycle,
    m: Model,
    log: Vec<Recorded>,
    /// Every event name seen, and how often each kind of command was decided (kind, accepted), for the
    /// coverage test.
    seen: BTreeSet<&'static str>,
    outcomes: BTreeMap<(&'static str, bool), usize>,
}

impl Harness {
    fn new(policy: LifecyclePolicy) -> Self {
        let lc = lifecycle(policy);
        let teams = lc.dispatcher().index().len();
        Self { lc, m: Model::new(policy, teams), log: Vec::new(), seen: BTreeSet::new(), outcomes: BTreeMap::new() }
    }

    fn request_id(&self, sel: ReqSel) -> RequestId {
        match sel {
            ReqSel::Id(i) => rid(REQUESTS[i]),
            ReqSel::Live(i) => {
                let live: Vec<&RequestId> =
                    self.m.reqs.iter().filter(|(_, st)| !st.phase.kind().is_terminal()).map(|(r, _)| r).collect();
                if live.is_empty() { rid(REQUESTS[i]) } else { live[i % live.len()].clone() }
            }
            ReqSel::Visit(i) if !self.m.visits.is_empty() => self.m.visits[i % self.m.visits.len()].clone(),
            ReqSel::Visit(i) => rid(REQUESTS[i]),
            ReqSel::Rated(i) => {
                let rated: Vec<&RequestId> = self
                    .m
                    .reqs
                    .iter()
                    .filter(|(_, st)| matches!(st.phase, MPhase::Completed(_)))
                    .map(|(r, _)| r)
                    .collect();
                if rated.is_empty() { rid(REQUESTS[i]) } else { rated[i % rated.len()].clone() }
            }
        }
    }

    fn team_id(&self, sel: TeamSel, r: &RequestId) -> TeamId {
        let name = match sel {
            TeamSel::Involved(i) => {
                let involved: Vec<TeamIdx> = self
                    .m
                    .reqs
                    .get(r)
                    .map(|st| st.offers.iter().map(|o| o.team).chain(st.phase.holder()).collect())
                    .unwrap_or_default();
                if involved.is_empty() {
                    TEAMS[i % TEAMS.len()].to_owned()
                } else {
                    team_name(&self.lc, involved[i % involved.len()])
                }
            }
            TeamSel::Any(t) => t.to_owned(),
        };
        TeamId::new(&name).expect("a valid id")
    }

    /// The command an op makes, or the error of the value it could not be built with.
    fn command(&self, op: &Op) -> Result<Command, ValueError> {
        let text = |long: bool, s: &str| Text::new(if long { "x".repeat(MAX_TEXT_LEN + 1) } else { s.to_owned() });
        let now = self.m.now;
        Ok(match op {
            Op::Submit { req, unit, service, urgency, start_min, len_h, dlat, flaw } => {
                let start = now + Duration::minutes(*start_min);
                let mut spec = RequestSpec {
                    id: rid(REQUESTS[*req]),
                    unit: UnitId::new(unit).expect("a valid id"),
                    service: ServiceId::new(service).expect("a valid id"),
                    extra_skills: Vec::new(),
                    location: Location::new(HOME.0 + dlat, HOME.1 + 0.001).expect("a valid location"),
                    window: TimeWindow::new(start, start + Duration::hours(*len_h)).expect("a valid window"),
                    duration_min: None,
                    urgency: *urgency,
                    group: BeneficiaryGroup::Elderly,
                    household: Some(HouseholdId::new(&format!("h-{}", REQUESTS[*req])).expect("a valid id")),
                    contact: contact(),
                };
                match flaw {
                    Flaw::None => {}
                    Flaw::LongDetail => spec.contact.detail = "x".repeat(MAX_TEXT_LEN + 1),
                    Flaw::UnknownUnit => spec.unit = UnitId::new("nowhere").expect("a valid id"),
                    Flaw::UnknownService => spec.service = ServiceId::new("juggling").expect("a valid id"),
                    Flaw::ZeroDuration => spec.duration_min = Some(0),
                    Flaw::DurationOverWindow => {
                        spec.duration_min = Some(u32::try_from(len_h * 60 + 1).expect("small"));
                    }
                    Flaw::OverHorizon => {
                        let far = now + Duration::days(HORIZON_DAYS + 1);
                        spec.window = TimeWindow::new(far, far + Duration::hours(*len_h)).expect("a valid window");
                    }
                }
                Command::Request(RequestCommand::Submit { spec })
            }
            Op::Accept { req, team } => {
                let request = self.request_id(*req);
                Command::Request(RequestCommand::Accept { team: self.team_id(*team, &request), request })
            }
            Op::Decline { req, team, reason } => {
                let request = self.request_id(*req);
                let reason = match reason {
                    Reason::NoVolunteers => DeclineReason::NoVolunteers,
                    Reason::TooFar => DeclineReason::TooFar,
                    Reason::Other => DeclineReason::Other(text(false, "下雨")?),
                    Reason::TooLong => DeclineReason::Other(text(true, "")?),
                };
                Command::Request(RequestCommand::Decline { team: self.team_id(*team, &request), request, reason })
            }
            Op::CheckIn { req, team } => {
                let request = self.request_id(*req);
                Command::Request(RequestCommand::CheckIn { team: self.team_id(*team, &request), request })
            }
            Op::Complete { req, team, minutes, volunteers } => {
                let request = self.request_id(*req);
                let volunteers = Volunteers::new(
                    volunteers.iter().map(|v| VolunteerId::new(&format!("v{v}")).expect("a valid id")).collect(),
                )?;
                Command::Request(RequestCommand::Complete {
                    team: self.team_id(*team, &request),
                    request,
                    minutes: ServiceMinutes::new(*minutes)?,
                    volunteers,
                })
            }
            Op::Evaluate { req, role, score, tags, long_comment } => Command::Request(RequestCommand::Evaluate {
                request: self.request_id(*req),
                role: *role,
                score: Score::new(*score)?,
                tags: sidan_core::lifecycle::Tags::new(match tags {
                    Tags::None => Vec::new(),
                    Tags::Good => vec![Tag::Punctual, Tag::Friendly],
                    Tags::NotServed => vec![Tag::NotServed],
                    Tags::Mixed => vec![Tag::Late, Tag::Impolite, Tag::Late],
                    Tags::TooMany => vec![Tag::Punctual; MAX_TAGS + 1],
                })?,
                comment: Some(text(*long_comment, "很好")?),
            }),
            Op::ResolveDispute { req, served, long_note } => Command::Request(RequestCommand::ResolveDispute {
                request: self.request_id(*req),
                served: *served,
                note: text(*long_note, "回访核实")?,
            }),
            Op::Cancel { req, long_reason } => Command::Request(RequestCommand::Cancel {
                request: self.request_id(*req),
                reason: text(*long_reason, "不需要了")?,
            }),
            Op::NoShow { req, team } => {
                let request = self.request_id(*req);
                Command::Request(RequestCommand::ReportNoShow { team: self.team_id(*team, &request), request })
            }
            Op::Tick { req } => Command::Tick(StreamId::Request(self.request_id(*req))),
            Op::Pair { pairing, team, household, unit, service, rule, day, hour, lead_h, window_min } => {
                // The first slot: `day` days from today (Beijing time, no DST) at `hour`.
                let date = (now + Duration::hours(8)).date_naive() + Duration::days(*day);
                Command::Pairing(PairingCommand::Pair {
                    spec: Box::new(PairingSpec {
                        id: PairingId::new(&format!("p{pairing}")).expect("a valid id"),
                        team: TeamId::new(team).expect("a valid id"),
                        household: HouseholdId::new(household).expect("a valid id"),
                        unit: UnitId::new(unit).expect("a valid id"),
                        service: ServiceId::new(service).expect("a valid id"),
                        location: Location::new(HOME.0 + 0.001, HOME.1 + 0.001).expect("a valid location"),
                        contact: contact(),
                        group: BeneficiaryGroup::Elderly,
                        rule: rule_text(*rule, date),
                        first: date.and_hms_opt(*hour, 0, 0).expect("a time"),
                        window_min: *window_min,
                        duration_min: Some(60),
                        lead_h: *lead_h,
                    }),
                })
            }
            Op::Unpair { pairing } => Command::Pairing(PairingCommand::Unpair {
                pairing: PairingId::new(&format!("p{pairing}")).expect("a valid id"),
                reason: text(false, "搬家")?,
            }),
            Op::Roster { team, active } => {
                let team = TeamId::new(team).expect("a valid id");
                Command::Roster(if *active {
                    RosterCommand::Reactivate { team }
                } else {
                    RosterCommand::Deactivate { team, reason: text(false, "休假")? }
                })
            }
            Op::Capacity { team, capacity } => Command::Roster(RosterCommand::ChangeTeam {
                team: TeamId::new(team).expect("a valid id"),
                change: TeamChange { capacity: Some(*capacity), ..TeamChange::default() },
            }),
            Op::Advance { .. } | Op::Wait { .. } => unreachable!("time is not a command"),
        })
    }

    fn op(&mut self, op: &Op) -> Res {
        match op {
            Op::Advance { minutes } => {
                self.m.now += Duration::minutes(*minutes);
                self.tick_due()?;
                self.timers_ok()
            }
            Op::Wait { minutes } => {
                self.m.now += Duration::minutes(*minutes);
                Ok(())
            }
            _ => {
                let cmd = match self.command(op) {
                    Ok(cmd) => cmd,
                    Err(e) => {
                        // An invalid value never becomes a command; only the ops meant to
                        // make one may fail here.
                        ensure!(op.bad_value(), "{op:?} made no command: {e}");
                        *self.outcomes.entry(("bad_value", false)).or_default() += 1;
                        return Ok(());
                    }
                };
                let due = match &cmd {
                    Command::Tick(stream) => self.lc.due(self.m.now).any(|s| s == stream),
                    _ => false,
                };
                let recs = self.step(&cmd)?;
                if matches!(cmd, Command::Tick(_)) {
                    let acted = !recs.is_empty();
                    ensure!(due == acted, "a tick did {} while due = {due}", names(&recs));
                }
                Ok(())
            }
        }
    }

    /// Decides `cmd`, checks the outcome against the model, applies it.
    fn step(&mut self, cmd: &Command) -> Res<Vec<Recorded>> {
        let now = self.m.now;
        let legal = self.m.legal(&self.lc, cmd);
        let before = self.lc.digest();
        let applied = self.lc.applied();
        match self.lc.decide(cmd, now) {
            Err(e) => {
                ensure!(!legal, "at {now} the model says {cmd:?} is legal; decide refused it: {e}");
                // Invariant 28: a refusal changes nothing.
                ensure!(
                    self.lc.digest() == before && self.lc.applied() == applied,
                    "the refusal of {cmd:?} changed the state"
                );
                *self.outcomes.entry((command_name(cmd), false)).or_default() += 1;
                Ok(Vec::new())
            }
            Ok(recs) => {
                ensure!(legal, "at {now} the model says {cmd:?} is illegal; decide gave\n    {}", names(&recs));
                self.m
                    .fold(&self.lc, cmd, &recs)
                    .map_err(|e| format!("at {now}, {cmd:?}:\n  {e}\n  decision:\n    {}", names(&recs)))?;
                let mut touched = BTreeSet::new();
                for rec in &recs {
                    self.lc.apply(rec).map_err(|e| format!("a decided event does not apply: {e}"))?;
                    if let StreamId::Request(r) = &rec.stream {
                        touched.insert(r.clone());
                    }
                    self.seen.insert(rec.event.name());
                    if let Event::Ledger { entry } = &rec.event {
                        self.seen.insert(entry.name());
                    }
                }
                self.m
                    .agrees(&self.lc, &touched)
                    .map_err(|e| format!("at {now}, after {cmd:?}:\n  {e}\n  decision:\n    {}", names(&recs)))?;
                self.log.extend(recs.iter().cloned());
                *self.outcomes.entry((command_name(cmd), true)).or_default() += 1;
                Ok(recs)
            }
        }
    }

    /// Ticks every due stream, earliest first, until none is due.
    fn tick_due(&mut self) -> Res {
        for _ in 0..100 {
            let due: Vec<StreamId> = self.lc.due(self.m.now).cloned().collect();
            if due.is_empty() {
                return Ok(());
            }
            for stream in due {
                let recs = self.step(&Command::Tick(stream.clone()))?;
                ensure!(!recs.is_empty(), "{stream} was due at {} but its tick did nothing", self.m.now);
            }
        }
        Err(format!("streams are still due at {} after 100 rounds of ticks", self.m.now))
    }

    fn timers_ok(&self) -> Res {
        for (r, st) in &self.m.reqs {
            self.m.timers_ok(r, st)?;
        }
        Ok(())
    }

    /// Serves what is checked in, ends the pairings, runs the clock until nothing waits, then checks
    /// that every request ended, the replayed log gives the same state, and the log's identities.
    fn finish(&mut self) -> Res {
        let checked_in: Vec<(RequestId, TeamIdx)> = self
            .m
            .reqs
            .iter()
            .filter_map(|(r, st)| match st.phase {
                MPhase::CheckedIn(t) => Some((r.clone(), t)),
                _ => None,
            })
            .collect();
        for (request, t) in checked_in {
            let team = TeamId::new(&team_name(&self.lc, t)).expect("a valid id");
            let volunteers = vec![VolunteerId::new("v1").expect("a valid id")];
            let volunteers = Volunteers::new(volunteers).expect("one volunteer");
            let minutes = ServiceMinutes::new(60).expect("an hour");
            let cmd = Command::Request(RequestCommand::Complete { request, team, minutes, volunteers });
            ensure!(self.m.legal(&self.lc, &cmd), "the model refuses {cmd:?}");
            self.step(&cmd)?;
        }
        let disputed: Vec<RequestId> = self
            .m
            .reqs
            .iter()
            .filter(|(_, st)| matches!(st.phase, MPhase::Completed(_)) && st.disputed)
            .map(|(r, _)| r.clone())
            .collect();
        for request in disputed {
            self.step(&Command::Request(RequestCommand::ResolveDispute {
                request,
                served: true,
                note: Text::new("the test ends").expect("short"),
            }))?;
        }
        let active: Vec<PairingId> =
            self.m.pairings.iter().filter(|(_, p)| p.active).map(|(id, _)| id.clone()).collect();
        for pairing in active {
            self.step(&Command::Pairing(PairingCommand::Unpair {
                pairing,
                reason: Text::new("the test ends").expect("short"),
            }))?;
        }
        let end = self.m.now + Duration::days(40);
        while let Some(t) = self.lc.next_wakeup() {
            ensure!(t <= end, "something still waits at {t}, past {end}");
            self.m.now = self.m.now.max(t);
            self.tick_due()?;
            self.timers_ok()?;
        }
        // Invariant 2: every request ended, in exactly one terminal state, the same in model and lifecycle.
        // An ended request may have left the lifecycle's memory (retention); it is then retired.
        let retired = self.m.reqs.keys().filter(|r| self.lc.is_retired(r)).count();
        ensure!(
            self.lc.requests().count() + retired == self.m.reqs.len(),
            "the lifecycle and the model know different requests"
        );
        ensure!(self.lc.retired() == retired, "{} retired, {retired} of the model's", self.lc.retired());
        for (r, st) in &self.m.reqs {
            let kind = st.phase.kind();
            ensure!(kind.is_terminal(), "{r} is still {kind} at the end");
            if self.lc.is_retired(r) {
                ensure!(self.lc.request(r).is_none(), "{r} is retired and still in memory");
                continue;
            }
            let got = self.lc.request(r).map(|s| s.phase.kind());
            ensure!(got == Some(kind), "{r}: the lifecycle says {got:?}, the model {kind}");
        }
        ensure!(self.m.load.iter().all(|&l| l == 0), "loads left at the end: {:?}", self.m.load);
        // Invariants 17–22 on the credits: balanced, derivable, and banked minutes equal the
        // minutes of service settled as served.
        let ledger = self.lc.ledger();
        ledger.check().map_err(|e| e.to_string())?;
        for (v, minutes) in &self.m.banked {
            let got = ledger.balance(&AccountId::VolunteerMinutes(v.clone())).posted();
            ensure!(got == i128::from(*minutes), "{v} holds {got} minutes, served {minutes}");
        }
        let holders = ledger.accounts().filter(|a| matches!(a.id, AccountId::VolunteerMinutes(_))).count();
        ensure!(holders == self.m.banked.len(), "{holders} time-bank accounts for {} volunteers", self.m.banked.len());
        // Every event survives its two stored forms, JSON and binary, unchanged.
        for rec in &self.log {
            let json = serde_json::to_string(&rec.event).map_err(|e| e.to_string())?;
            let from_json: Event = serde_json::from_str(&json).map_err(|e| format!("{json}: {e}"))?;
            ensure!(from_json == rec.event, "{} changes through JSON", rec.id());
            let bytes = rec.event.to_binary().map_err(|e| format!("{}: {e}", rec.id()))?;
            let from_binary = Event::from_binary(&bytes).map_err(|e| format!("{}: {e}", rec.id()))?;
            ensure!(from_binary == rec.event, "{} changes through the binary form", rec.id());
        }
        // Invariant 12: replaying the log gives the live state.
        let mut again = lifecycle(self.m.policy);
        for rec in &self.log {
            again.apply(rec).map_err(|e| format!("replay: {e}"))?;
        }
        ensure!(again.digest() == self.lc.digest(), "the replayed state differs from the live one");
        // A snapshot taken anywhere in the log, restored (through an encoding) and caught up on
        // the rest of the log, gives the live state too.
        for cut in [0, self.log.len() / 3, self.log.len() / 2, self.log.len()] {
            let mut head = lifecycle(self.m.policy);
            for rec in &self.log[..cut] {
                head.apply(rec).map_err(|e| format!("replay: {e}"))?;
            }
            let json = serde_json::to_vec(&head.snapshot()).map_err(|e| e.to_string())?;
            let snap: sidan_core::lifecycle::LifecycleSnapshot =
                serde_json::from_slice(&json).map_err(|e| e.to_string())?;
            ensure!(snap == head.snapshot(), "the snapshot at {cut} changes through JSON");
            let (city, index) = tiny_city();
            let policies = PolicyBook::uniform(self.m.policy).expect("a valid policy");
            let mut restored = Lifecycle::restore(Dispatcher::new(city, index), policies, snap)
                .map_err(|e| format!("restore at {cut}: {e}"))?;
            ensure!(restored.digest() == head.digest(), "the snapshot at {cut} restores another state");
            for rec in &self.log[cut..] {
                restored.apply(rec).map_err(|e| format!("catching up from {cut}: {e}"))?;
            }
            ensure!(restored.digest() == self.lc.digest(), "restored at {cut} and caught up, the state differs");
            ensure!(restored.next_wakeup() == self.lc.next_wakeup(), "restored at {cut}: another wake-up");
        }
        ensure!(again.applied() == self.log.len() as u64, "replay applied {} of {}", again.applied(), self.log.len());
        // Invariant 11: unique ids, gapless per-stream sequence numbers from 1.
        let mut ids = HashSet::new();
        let mut next: BTreeMap<&StreamId, u64> = BTreeMap::new();
        for rec in &self.log {
            ensure!(ids.insert(rec.id()), "event id {} repeats", rec.id());
            let n = next.entry(&rec.stream).or_insert(1);
            ensure!(rec.seq == *n, "{}: seq {} where {} was next", rec.stream, rec.seq, n);
            *n += 1;
        }
        Ok(())
    }
}

/// Runs `ops` and the final checks; the harness is returned with the outcome for its log and coverage.
fn run(policy: usize, ops: &[Op]) -> (Harness, Res) {
    let mut h = Harness::new(POLICIES[policy]());
    for (i, op) in ops.iter().enumerate() {
        if let Err(e) = h.op(op) {
            return (h, Err(format!("op #{i} {op:?}:\n  {e}")));
        }
    }
    let end = h.finish().map_err(|e| format!("at the end: {e}"));
    (h, end)
}

fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|s| s.parse().ok()).unwrap_or(256);
    ProptestConfig {
        cases,
        // Failing seeds are kept next to this file, in lifecycle_model.proptest-regressions, and replayed first.
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource("proptest-regressions"))),
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn lifecycle_follows_the_model(policy in 0..POLICIES.len(), ops in vec(op(), 1..=200)) {
        let (first, outcome) = run(policy, &ops);
        outcome.map_err(TestCaseError::fail)?;
        // Invariant 13: the same operations give a byte-identical log.
        let (second, outcome) = run(policy, &ops);
        outcome.map_err(TestCaseError::fail)?;
        let a = serde_json::to_string(&first.log).expect("the log serialises");
        let b = serde_json::to_string(&second.log).expect("the log serialises");
        prop_assert!(a == b, "two runs of the same operations gave different logs");
    }
}

/// Found by the model: one pairing tick that releases two slots decides both visits against the state
/// before the tick, so the paired team c1-s2 (capacity 1) is offered both (invariant 7). Kept as a
/// fixed case, failing until the core is fixed.
#[test]
fn one_tick_releasing_two_slots_respects_capacity() {
    let ops = [
        Op::Pair {
            pairing: 0,
            team: "c1-s2",
            household: "hp0",
            unit: "c1-i1-s2",
            service: "home-care",
            rule: Rule::Weekly,
            day: 0,
            hour: 12,
            lead_h: 336,
            window_min: 180,
        },
        Op::Advance { minutes: 1 },
    ];
    if let (_, Err(e)) = run(0, &ops) {
        panic!("{e}");
    }
}

/// The generator is not vacuous: random runs reach every event, and every kind of command is both
/// accepted and refused. (Whether the runs hold the invariants is `lifecycle_follows_the_model`'s
/// business; a failing run still counts for coverage up to its failure.)
#[test]
fn random_runs_reach_every_event() {
    let mut runner = TestRunner::deterministic();
    let strategy = (0..POLICIES.len(), vec(op(), 150..=200));
    let mut seen = BTreeSet::new();
    let mut outcomes: BTreeMap<(&str, bool), usize> = BTreeMap::new();
    for _ in 0..48 {
        let (policy, ops) = strategy.new_tree(&mut runner).expect("a case").current();
        let (h, _) = run(policy, &ops);
        seen.extend(h.seen);
        for (k, n) in h.outcomes {
            *outcomes.entry(k).or_default() += n;
        }
    }
    let all = [
        "submitted",
        "offered",
        "accepted",
        "declined",
        "offer_expired",
        "offer_withdrawn",
        "scope_widened",
        "recruitment_issued",
        "checked_in",
        "no_show",
        "completed",
        "evaluated",
        "disputed",
        "dispute_resolved",
        "settled",
        "closed",
        "cancelled",
        "expired",
        "unfulfillable",
        "paired",
        "unpaired",
        "visit_scheduled",
        "visit_skipped",
        "account_opened",
        "transferred",
        "retired",
    ];
    let missing: Vec<_> = all.iter().filter(|e| !seen.contains(*e)).collect();
    assert!(missing.is_empty(), "no random run emitted {missing:?}");
    let kinds = [
        "submit",
        "accept",
        "decline",
        "check_in",
        "complete",
        "evaluate",
        "resolve_dispute",
        "cancel",
        "report_no_show",
        "tick",
        "pair",
        "unpair",
    ];
    for kind in kinds {
        for ok in [true, false] {
            assert!(
                outcomes.contains_key(&(kind, ok)),
                "no {kind} was ever {}",
                if ok { "accepted" } else { "refused" }
            );
        }
    }
}

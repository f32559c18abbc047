//! Online dispatch (平台派单): rank the eligible teams for one request.
//!
//! A team is eligible when it is active, its unit lies in the dispatch scope
//! (the request's county by default), its skills cover the request's, it has
//! spare capacity, it has not declined this request, the request lies within
//! its reach, and its availability holds the request's duration inside the
//! part of the window that is still ahead of `now`. Eligible teams are scored
//! by the [`ScoringPolicy`] and the best `k` returned, ties broken by team id.
//!
//! [`Dispatcher::rank`] is the fast path. [`Dispatcher::explain`] also says,
//! for each nearby team that was not eligible, every reason why.
//! [`Dispatcher::rank_brute_force`] scans all teams; it is the reference the
//! index is tested and benchmarked against.

use std::cmp::Ordering;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde::Serialize;

use crate::city::City;
use crate::geo::{StraightLine, TravelTime};
use crate::id::{SkillId, TeamId, UnitId};
use crate::index::{TeamIdx, TeamIndex, TeamRecord};
use crate::request::Request;
use crate::score::{ScoreTerms, ScoringPolicy};
use crate::time::local_minute_ceil;
use crate::units::UnitIdx;

/// The options of one ranking.
#[derive(Debug, Clone, Default)]
pub struct RankQuery {
    /// How many teams to return.
    pub k: usize,
    /// The unit whose subtree teams must belong to; the request's county when `None`.
    pub scope: Option<UnitIdx>,
    /// Teams never to offer this request to (they declined it or let an offer expire).
    pub exclude: Vec<TeamIdx>,
    /// The scoring policy to use instead of the dispatcher's (a unit's own weights).
    pub policy: Option<ScoringPolicy>,
}

impl RankQuery {
    /// The top `k` in the default scope, excluding nobody.
    pub fn top(k: usize) -> Self {
        Self { k, ..Self::default() }
    }
}

/// One ranked team.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Ranked {
    /// The team.
    pub team: TeamId,
    /// Its dense index.
    #[serde(skip)]
    pub idx: TeamIdx,
    /// Its score (higher is better).
    pub score: f64,
    /// Great-circle distance from its base, in metres.
    pub distance_m: f64,
    /// Travel time from its base, in seconds.
    pub travel_s: f64,
    /// The terms of its score.
    pub terms: ScoreTerms,
}

/// Why a team is not eligible for a request.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Rejection {
    /// The team takes no offers.
    Inactive,
    /// Its unit lies outside the dispatch scope.
    OutOfScope {
        /// Its unit.
        unit: UnitId,
        /// The scope.
        scope: UnitId,
    },
    /// It lacks skills.
    MissingSkills {
        /// The missing skills.
        skills: Vec<SkillId>,
    },
    /// It holds as many requests as it can.
    AtCapacity {
        /// Requests held.
        load: u32,
        /// Its capacity.
        capacity: u32,
    },
    /// It declined this request (or let an offer of it expire) before.
    Declined,
    /// The request lies beyond its reach.
    OutOfReach {
        /// Distance from its base in metres.
        distance_m: f64,
        /// Its reach in metres.
        reach_m: f64,
    },
    /// Its availability holds the duration nowhere in the remaining window.
    Unavailable,
}

/// A nearby team that was not eligible, with every reason.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Rejected {
    /// The team.
    pub team: TeamId,
    /// Distance from its base, in metres.
    pub distance_m: f64,
    /// Every reason it is not eligible.
    pub reasons: Vec<Rejection>,
}

/// A ranking that explains itself.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Explanation {
    /// The request.
    pub request: crate::id::RequestId,
    /// The scope used.
    pub scope: UnitId,
    /// The best eligible teams, best first.
    pub ranked: Vec<Ranked>,
    /// Nearby teams that are not eligible: those with the needed skills
    /// first, then the rest, nearest first in each group.
    pub rejected: Vec<Rejected>,
}

/// A batch window turned into an assignment problem over the online
/// eligibility rules.
#[derive(Debug, Clone)]
pub struct BatchWindow {
    /// The problem: one row per request, one column per team in `teams`.
    pub problem: crate::batch::BatchProblem,
    /// The team behind each column.
    pub teams: Vec<TeamIdx>,
}

impl BatchWindow {
    /// The team assigned to each request by `plan`, in request order.
    pub fn assigned(&self, plan: &crate::batch::BatchPlan) -> Vec<Option<TeamIdx>> {
        plan.assignment.iter().map(|a| a.map(|c| self.teams[c as usize])).collect()
    }
}

/// Priority of a request in a batch: emergencies first, then urgent requests.
pub fn batch_priority(u: crate::request::Urgency) -> u32 {
    match u {
        crate::request::Urgency::Normal => 1,
        crate::request::Urgency::Urgent => 2,
        crate::request::Urgency::Emergency => 4,
    }
}

/// Per-query facts computed once and shared by every candidate.
struct Ctx<'a> {
    city: &'a City,
    req: &'a Request,
    scope: UnitIdx,
    scope_iv: (u32, u32),
    exclude: &'a [TeamIdx],
    policy: &'a ScoringPolicy,
    now: DateTime<Utc>,
    /// The local window of the last time zone seen (nearly every team shares one).
    tz_cache: std::cell::Cell<Option<(Tz, i64, i64)>>,
    req_closure_len: u32,
}

impl Ctx<'_> {
    fn local_window(&self, tz: Tz) -> (i64, i64) {
        if let Some((t, a, b)) = self.tz_cache.get()
            && t == tz
        {
            return (a, b);
        }
        let w = self.req.window();
        let (ls, le) = w.to_local_minutes(tz);
        let ls = ls.max(local_minute_ceil(self.now, tz));
        self.tz_cache.set(Some((tz, ls, le)));
        (ls, le)
    }
}

/// Online dispatch over a city and its team index.
#[derive(Debug, Clone)]
pub struct Dispatcher<T = StraightLine> {
    city: City,
    index: TeamIndex,
    policy: ScoringPolicy,
    travel: T,
}

fn better(a: &Ranked, b: &Ranked) -> Ordering {
    b.score.total_cmp(&a.score).then_with(|| a.team.cmp(&b.team))
}

impl Dispatcher<StraightLine> {
    /// A dispatcher with the default policy and straight-line travel.
    pub fn new(city: City, index: TeamIndex) -> Self {
        Self { city, index, policy: ScoringPolicy::default(), travel: StraightLine::default() }
    }
}

impl<T: TravelTime> Dispatcher<T> {
    /// A dispatcher with a chosen policy and travel-time model.
    pub fn with_policy(
        city: City,
        index: TeamIndex,
        policy: ScoringPolicy,
        travel: T,
    ) -> Result<Self, crate::score::PolicyError> {
        policy.validate()?;
        Ok(Self { city, index, policy, travel })
    }

    /// The city.
    pub fn city(&self) -> &City {
        &self.city
    }

    /// The team index.
    pub fn index(&self) -> &TeamIndex {
        &self.index
    }

    /// The team index, for incremental updates (load, availability, moves).
    pub fn index_mut(&mut self) -> &mut TeamIndex {
        &mut self.index
    }

    /// The city and the team index, for changes that need both (adding a team).
    pub fn city_and_index_mut(&mut self) -> (&mut City, &mut TeamIndex) {
        (&mut self.city, &mut self.index)
    }

    /// The scoring policy.
    pub fn policy(&self) -> &ScoringPolicy {
        &self.policy
    }

    fn ctx<'a>(&'a self, req: &'a Request, q: &'a RankQuery, now: DateTime<Utc>) -> Ctx<'a> {
        let units = self.city.units();
        let scope = q.scope.unwrap_or_else(|| units.county_of(req.unit()));
        let req_closure_len = self.city.skills().closure_of_set(&req.skills()).len();
        Ctx {
            city: &self.city,
            req,
            scope,
            scope_iv: units.subtree_interval(scope),
            exclude: &q.exclude,
            policy: q.policy.as_ref().unwrap_or(&self.policy),
            now,
            tz_cache: std::cell::Cell::new(None),
            req_closure_len,
        }
    }

    /// Scores `t` if it is eligible. The order of the checks puts the cheap ones first.
    fn evaluate(&self, cx: &Ctx<'_>, idx: TeamIdx, t: &TeamRecord, scratch: &mut Vec<(i64, i64)>) -> Option<Ranked> {
        if !t.active || t.load >= t.capacity || !cx.req.skills().is_subset(&t.skills) {
            return None;
        }
        let pre = cx.city.units().preorder(t.unit);
        if pre < cx.scope_iv.0 || pre >= cx.scope_iv.1 || cx.exclude.contains(&idx) {
            return None;
        }
        let distance_m = t.base.distance_m(cx.req.location());
        if distance_m > t.reach_m {
            return None;
        }
        let (ls, le) = cx.local_window(t.tz);
        if !t.availability.fits(ls, le, i64::from(cx.req.duration_min()), scratch) {
            return None;
        }
        Some(self.score(cx, idx, t, distance_m))
    }

    fn score(&self, cx: &Ctx<'_>, idx: TeamIdx, t: &TeamRecord, distance_m: f64) -> Ranked {
        let p = cx.policy;
        let travel_s = self.travel.travel_s(t.base, cx.req.location(), distance_m);
        let continuity = match cx.req.household() {
            Some(h) if t.paired_households.binary_search(h).is_ok() => p.continuity_paired,
            Some(h) if t.has_served(h) => p.continuity_served_before,
            _ => 0.0,
        };
        let terms = ScoreTerms {
            proximity: 1.0 - (travel_s / 60.0 / p.max_travel_min).min(1.0),
            reputation: t.reputation.unwrap_or(p.reputation_prior),
            fairness: 1.0 / (1.0 + f64::from(t.load + t.recent_jobs) / f64::from(t.capacity)),
            continuity,
            specificity: f64::from(cx.req_closure_len) / f64::from(t.skills.len().max(1)),
        };
        Ranked { team: t.id.clone(), idx, score: p.combine(&terms, cx.req.urgency()), distance_m, travel_s, terms }
    }

    fn push_top(top: &mut Vec<Ranked>, k: usize, r: Ranked) {
        if k == 0 {
            return;
        }
        if top.len() == k && better(&r, &top[k - 1]) != Ordering::Less {
            return;
        }
        let pos = top.partition_point(|x| better(x, &r) == Ordering::Less);
        top.insert(pos, r);
        top.truncate(k);
    }

    /// The best `q.k` eligible teams for `req` at `now`, best first.
    pub fn rank(&self, req: &Request, now: DateTime<Utc>, q: &RankQuery) -> Vec<Ranked> {
        let cx = self.ctx(req, q, now);
        let mut top = Vec::with_capacity(q.k.min(64) + 1);
        let mut scratch = Vec::new();
        let skills = self.city.skills();
        self.index.for_each_candidate(
            req.location(),
            &req.skills(),
            |s| skills.narrower_or_self(s),
            |idx, t| {
                if let Some(r) = self.evaluate(&cx, idx, t, &mut scratch) {
                    Self::push_top(&mut top, q.k, r);
                }
            },
        );
        top
    }

    /// Whether the team at `idx` is eligible for `req` under `q` (its `k` is
    /// ignored), and its score if so.
    pub fn check_team(&self, req: &Request, now: DateTime<Utc>, q: &RankQuery, idx: TeamIdx) -> Option<Ranked> {
        let cx = self.ctx(req, q, now);
        let t = self.index.get(idx);
        self.evaluate(&cx, idx, t, &mut Vec::new())
    }

    /// Every eligible team for `req` under `q` (its `k` is ignored), best
    /// first: the same order as [`Dispatcher::rank`], so the best `k` of any
    /// narrower scope are the first `k` of this list that lie in it.
    pub fn rank_all(&self, req: &Request, now: DateTime<Utc>, q: &RankQuery) -> Vec<Ranked> {
        let cx = self.ctx(req, q, now);
        let mut all = Vec::new();
        let mut scratch = Vec::new();
        let skills = self.city.skills();
        self.index.for_each_candidate(
            req.location(),
            &req.skills(),
            |s| skills.narrower_or_self(s),
            |idx, t| {
                if let Some(r) = self.evaluate(&cx, idx, t, &mut scratch) {
                    all.push(r);
                }
            },
        );
        all.sort_by(better);
        all
    }

    /// The same ranking by scanning every team: the reference for tests and benchmarks.
    pub fn rank_brute_force(&self, req: &Request, now: DateTime<Utc>, q: &RankQuery) -> Vec<Ranked> {
        let cx = self.ctx(req, q, now);
        let mut all: Vec<Ranked> = Vec::new();
        let mut scratch = Vec::new();
        for (i, t) in self.index.records().iter().enumerate() {
            if let Some(r) = self.evaluate(&cx, TeamIdx(i as u32), t, &mut scratch) {
                all.push(r);
            }
        }
        all.sort_by(better);
        all.truncate(q.k);
        all
    }

    /// Builds the batch problem of a window of requests: each request's best
    /// `candidates` eligible teams (the online rules, at `now`) become its
    /// edges, costed in millimetres of great-circle distance; each team
    /// offers its spare capacity; priorities follow [`batch_priority`].
    pub fn batch_window(
        &self,
        requests: &[Request],
        now: DateTime<Utc>,
        candidates: usize,
    ) -> Result<BatchWindow, crate::batch::BatchError> {
        let mut column: std::collections::BTreeMap<TeamIdx, u32> = std::collections::BTreeMap::new();
        let mut edges = Vec::new();
        for (r, req) in requests.iter().enumerate() {
            for c in self.rank(req, now, &RankQuery::top(candidates)) {
                let next = column.len() as u32;
                let col = *column.entry(c.idx).or_insert(next);
                edges.push(crate::batch::BatchEdge::new(r as u32, col, (c.distance_m * 1000.0).round() as i64));
            }
        }
        let mut teams = vec![TeamIdx(0); column.len()];
        for (&t, &c) in &column {
            teams[c as usize] = t;
        }
        let capacity = teams
            .iter()
            .map(|&t| {
                let rec = self.index.get(t);
                rec.capacity.saturating_sub(rec.load)
            })
            .collect();
        let priority = requests.iter().map(|r| batch_priority(r.urgency())).collect();
        let problem = crate::batch::BatchProblem::new(priority, capacity, &edges)?;
        Ok(BatchWindow { problem, teams })
    }

    /// Every reason `t` is not eligible (empty if it is).
    fn reasons(&self, cx: &Ctx<'_>, idx: TeamIdx, t: &TeamRecord, distance_m: f64) -> Vec<Rejection> {
        let units = self.city.units();
        let mut out = Vec::new();
        if !t.active {
            out.push(Rejection::Inactive);
        }
        if !units.is_in_subtree(t.unit, cx.scope) {
            out.push(Rejection::OutOfScope {
                unit: units.get(t.unit).id.clone(),
                scope: units.get(cx.scope).id.clone(),
            });
        }
        let missing = cx.req.skills().difference(&t.skills);
        if !missing.is_empty() {
            out.push(Rejection::MissingSkills { skills: self.city.skills().ids(&missing) });
        }
        if t.load >= t.capacity {
            out.push(Rejection::AtCapacity { load: t.load, capacity: t.capacity });
        }
        if cx.exclude.contains(&idx) {
            out.push(Rejection::Declined);
        }
        if distance_m > t.reach_m {
            out.push(Rejection::OutOfReach { distance_m, reach_m: t.reach_m });
        }
        let (ls, le) = cx.local_window(t.tz);
        if !t.availability.fits(ls, le, i64::from(cx.req.duration_min()), &mut Vec::new()) {
            out.push(Rejection::Unavailable);
        }
        out
    }

    /// The ranking with its reasons: the top `q.k`, and for up to
    /// `max_rejected` teams based within `radius_m` of the request that are
    /// not eligible, every reason why (near misses first).
    pub fn explain(
        &self,
        req: &Request,
        now: DateTime<Utc>,
        q: &RankQuery,
        radius_m: f64,
        max_rejected: usize,
    ) -> Explanation {
        let cx = self.ctx(req, q, now);
        let ranked = self.rank(req, now, q);
        let mut rejected = Vec::new();
        self.index.for_each_within(req.location(), radius_m, |idx, t, d| {
            let reasons = self.reasons(&cx, idx, t, d);
            if !reasons.is_empty() {
                rejected.push(Rejected { team: t.id.clone(), distance_m: d, reasons });
            }
        });
        // Near misses (teams with the skills) first: they are the informative ones.
        let lacks = |r: &Rejected| r.reasons.iter().any(|x| matches!(x, Rejection::MissingSkills { .. }));
        rejected.sort_by(|a, b| {
            lacks(a).cmp(&lacks(b)).then(a.distance_m.total_cmp(&b.distance_m)).then_with(|| a.team.cmp(&b.team))
        });
        rejected.truncate(max_rejected);
        Explanation { request: req.id().clone(), scope: self.city.units().get(cx.scope).id.clone(), ranked, rejected }
    }
}

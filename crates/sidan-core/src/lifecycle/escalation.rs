//! Escalation: the offers of one decision, topped up to the target, the
//! scope widened station → institute → county → city when the thresholds
//! say so or nobody is left, and the recruitment order (招募令) at the top.

use chrono::{DateTime, Duration, Utc};

use crate::dispatch::{RankQuery, Ranked};
use crate::geo::TravelTime;
use crate::index::TeamIdx;
use crate::lifecycle::{Event, Lifecycle, OfferMode, Out, RequestState, WidenReason, insert_sorted, latest_start};
use crate::request::{Request, Urgency};
use crate::units::UnitIdx;

/// Where dispatch stands while one decision is being made: the request's
/// dispatch fields with the decision's own events folded in.
pub(super) struct Cursor {
    pub(super) scope: UnitIdx,
    pub(super) misses: u32,
    pub(super) since: DateTime<Utc>,
    pub(super) open: usize,
    pub(super) offered: Vec<TeamIdx>,
    pub(super) recruiting: bool,
    /// Teams offered other requests earlier in the same decision (a roster change that
    /// dispatches several requests again): their capacity is taken until the events apply.
    pub(super) reserved: Vec<TeamIdx>,
}

impl Cursor {
    /// A new request's cursor, at its first scope.
    pub(super) fn new(scope: UnitIdx, now: DateTime<Utc>) -> Self {
        Self { scope, misses: 0, since: now, open: 0, offered: Vec::new(), recruiting: false, reserved: Vec::new() }
    }

    /// A request's cursor as its state stands.
    pub(super) fn of(st: &RequestState) -> Self {
        Self {
            scope: st.scope,
            misses: st.misses,
            since: st.scope_since,
            open: st.offers.len(),
            offered: st.offered.clone(),
            recruiting: st.recruiting,
            reserved: Vec::new(),
        }
    }
}

/// Every eligible team of one county (or the city) for one request, best
/// first, with the unit it was searched in; filled on first use.
#[derive(Default)]
struct Pool(Option<(UnitIdx, Vec<Ranked>)>);

impl<T: TravelTime> Lifecycle<T> {
    pub(super) fn offer(
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
        cur.reserved.push(team);
        cur.open += 1;
    }

    /// After a submission or an answer: top the open offers up to the target
    /// (one, or the fan-out of an emergency), widening the scope when the
    /// thresholds say so or nobody is left, and ending in a recruitment order
    /// or `Unfulfillable`.
    pub(super) fn dispatch_from(&self, req: &Request, cur: &mut Cursor, now: DateTime<Utc>, out: &mut Out<'_>) {
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
        let has_room = |t: TeamIdx| {
            let rec = index.get(t);
            let taken = cur.reserved.iter().filter(|&&r| r == t).count() as u32;
            taken == 0 || rec.load + taken < rec.capacity
        };
        all.iter()
            .map(|r| r.idx)
            .filter(|&t| {
                cur.offered.binary_search(&t).is_err()
                    && units.is_in_subtree(index.get(t).unit, cur.scope)
                    && has_room(t)
            })
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
}

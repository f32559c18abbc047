//! A request's decisions: submission, the answers to an offer, check-in,
//! completion, ratings, disputes, cancellation, no-shows and its timer.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};

use crate::dispatch::RankQuery;
use crate::geo::TravelTime;
use crate::id::{PairingId, RequestId, TeamId};
use crate::index::TeamIdx;
use crate::lifecycle::escalation::Cursor;
use crate::lifecycle::{
    CommandKind, Event, HORIZON_DAYS, Lifecycle, LifecycleError, OfferMode, OpenOffer, Out, Phase, PhaseKind,
    RaterRole, RequestCommand, RequestState, check, evaluation, insert_sorted, latest_start,
};
use crate::request::{Request, RequestSpec, Urgency};
use crate::units::{UnitIdx, UnitKind, UnitTree};

/// The first scope of a request made at `unit`: the nearest unit at or above
/// it whose level is `kind` or wider.
fn start_scope(units: &UnitTree, unit: UnitIdx, kind: UnitKind) -> UnitIdx {
    std::iter::once(unit).chain(units.ancestors(unit)).find(|&u| units.get(u).kind <= kind).unwrap_or(unit)
}

impl<T: TravelTime> Lifecycle<T> {
    /// The request's state, after the state × command table admitted `kind` in its phase.
    fn admitted(&self, id: &RequestId, kind: CommandKind) -> Result<Option<&RequestState>, LifecycleError> {
        if self.retention.is_retired(id) {
            return Err(LifecycleError::Retired { request: id.clone() });
        }
        let st = self.request(id);
        check(id, st.map_or(PhaseKind::New, |s| s.phase.kind()), kind)?;
        Ok(st)
    }

    pub(super) fn decide_request(
        &self,
        cmd: &RequestCommand,
        now: DateTime<Utc>,
        out: &mut Out<'_>,
    ) -> Result<(), LifecycleError> {
        let id = cmd.request();
        let st = match (self.admitted(id, cmd.kind())?, cmd) {
            (None, RequestCommand::Submit { spec }) if crate::lifecycle::pairing::is_visit_request_id(&spec.id) => {
                return Err(LifecycleError::ReservedRequestId { request: spec.id.clone() });
            }
            (None, RequestCommand::Submit { spec }) => return self.decide_submit(spec, None, now, out),
            // The table refuses both; its refusals are returned above.
            (Some(_), RequestCommand::Submit { .. }) => {
                return Err(LifecycleError::DuplicateRequest { request: id.clone() });
            }
            (None, _) => return Err(LifecycleError::UnknownRequest { request: id.clone() }),
            (Some(st), _) => st,
        };
        match cmd {
            RequestCommand::Submit { .. } => {}
            RequestCommand::Accept { team, .. } => {
                let t = self.answerable(st, team, now)?;
                out.push(Event::Accepted { team: team.clone() });
                for o in st.offers.iter().filter(|o| o.team != t) {
                    out.push(Event::OfferWithdrawn { team: self.team_id(o.team) });
                }
            }
            RequestCommand::Decline { team, reason, .. } => {
                self.answerable(st, team, now)?;
                out.push(Event::Declined { team: team.clone(), reason: reason.clone() });
                let mut cur = Cursor::of(st);
                cur.open -= 1;
                cur.misses += 1;
                self.dispatch_from(&st.request, &mut cur, now, out);
            }
            RequestCommand::CheckIn { team, .. } => {
                self.holder(st, team)?;
                let end = st.request.window().end();
                if now >= end {
                    // Refused by the clock itself, before the tick records the no-show.
                    return Err(LifecycleError::WindowPassed { request: id.clone(), end });
                }
                out.push(Event::CheckedIn { team: team.clone() });
            }
            RequestCommand::Complete { team, minutes, volunteers, .. } => {
                self.holder(st, team)?;
                let sampled = evaluation::sampled(id, self.policy_of(&st.request).third_party_sample_rate);
                out.push(Event::Completed {
                    team: team.clone(),
                    minutes: *minutes,
                    volunteers: volunteers.clone(),
                    sampled,
                });
            }
            RequestCommand::Evaluate { role, score, tags, comment, .. } => {
                if let Some(closed) = self.evaluation_closes(st)
                    && now >= closed
                {
                    // Refused by the clock itself, before the tick settles with the defaults.
                    return Err(LifecycleError::EvaluationClosed { request: id.clone(), closed });
                }
                if st.evaluations.iter().any(|(r, _)| r == role) {
                    return Err(LifecycleError::AlreadyEvaluated { request: id.clone(), role: *role });
                }
                if *role == RaterRole::ThirdParty && !st.sampled {
                    return Err(LifecycleError::NotSampled { request: id.clone() });
                }
                let disputes = *role == RaterRole::Resident && tags.contains(evaluation::Tag::NotServed);
                out.push(Event::Evaluated { role: *role, score: *score, tags: tags.clone(), comment: comment.clone() });
                if disputes && !st.disputed {
                    out.push(Event::Disputed { by: *role });
                } else if !st.disputed {
                    let mut ratings = st.evaluations.clone();
                    ratings.push((*role, score.get()));
                    let expected = evaluation::expected_roles(st.sampled);
                    if expected.iter().all(|r| ratings.iter().any(|(g, _)| g == r)) {
                        self.settle(st, &ratings, true, out);
                    }
                }
            }
            RequestCommand::ResolveDispute { served, note, .. } => {
                if !st.disputed {
                    return Err(LifecycleError::NotDisputed { request: id.clone() });
                }
                out.push(Event::DisputeResolved { served: *served, note: note.clone() });
                self.settle(st, &st.evaluations, *served, out);
            }
            RequestCommand::Cancel { reason, .. } => {
                for o in &st.offers {
                    out.push(Event::OfferWithdrawn { team: self.team_id(o.team) });
                }
                out.push(Event::Cancelled { reason: reason.clone() });
            }
            RequestCommand::ReportNoShow { team, .. } => {
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

    pub(super) fn decide_submit(
        &self,
        spec: &RequestSpec,
        pairing: Option<(&PairingId, TeamIdx)>,
        now: DateTime<Utc>,
        out: &mut Out<'_>,
    ) -> Result<(), LifecycleError> {
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
        let mut cur = Cursor::new(scope, now);
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

    /// The request's timer: offers expire, the scope widens, a request past its window
    /// expires, a holder that never came is a no-show, an evaluation window closes.
    pub(super) fn tick_request(
        &self,
        id: &RequestId,
        now: DateTime<Utc>,
        out: &mut Out<'_>,
    ) -> Result<(), LifecycleError> {
        let Some(st) = self.admitted(id, CommandKind::Tick)? else {
            return Err(LifecycleError::UnknownRequest { request: id.clone() });
        };
        match st.phase {
            Phase::Open => {
                if now >= latest_start(&st.request) {
                    for o in &st.offers {
                        out.push(Event::OfferWithdrawn { team: self.team_id(o.team) });
                    }
                    out.push(Event::Expired);
                    return Ok(());
                }
                let p = self.policy_of(&st.request);
                let mut due: Vec<&OpenOffer> = st.offers.iter().filter(|o| o.deadline <= now).collect();
                let timeout = now >= st.scope_since + Duration::minutes(i64::from(p.escalate_after_min));
                if due.is_empty() && (st.recruiting || !timeout) {
                    // Nothing is due (an early or repeated tick).
                    return Ok(());
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
        Ok(())
    }
}

//! A request's fold: each event of its stream applied to its state, the
//! team loads, jobs and reputations it moves.

use std::sync::Arc;

use crate::geo::TravelTime;
use crate::id::{HouseholdId, RequestId, TeamId};
use crate::index::TeamIdx;
use crate::lifecycle::{
    ApplyProblem, Event, Lifecycle, OpenOffer, Phase, PhaseKind, Recorded, RequestState, Slot, insert_sorted,
};
use crate::request::Request;

fn st_phase_is_terminal(st: &RequestState) -> bool {
    st.phase.kind().is_terminal()
}

impl<T: TravelTime> Lifecycle<T> {
    pub(super) fn apply_request(
        &mut self,
        id: &RequestId,
        slot: Option<Slot>,
        rec: &Recorded,
    ) -> Result<u32, ApplyProblem> {
        let idx_of = |lc: &Self, team: &TeamId| {
            lc.dispatcher.index().idx(team).ok_or_else(|| ApplyProblem::UnknownTeam(team.clone()))
        };
        if self.retention.is_retired(id) {
            return Err(ApplyProblem::Retired);
        }
        if let Event::Submitted { spec, scope, pairing } = &rec.event {
            if slot.is_some() || spec.id != *id {
                return Err(ApplyProblem::Exists);
            }
            let request = Request::from_shared(Arc::clone(spec), self.dispatcher.city())?;
            let scope =
                self.dispatcher.city().units().idx(scope).ok_or_else(|| ApplyProblem::UnknownUnit(scope.clone()))?;
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
            return Ok(i);
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
                self.dispatcher.city().units().idx(scope).ok_or_else(|| ApplyProblem::UnknownUnit(scope.clone()))?,
            ),
            _ => None,
        };
        let Some(Slot::Request(i)) = slot else {
            return Err(ApplyProblem::NotBegun);
        };
        let st = &mut self.requests[i as usize];
        let phase = st.phase.kind();
        let bad = || ApplyProblem::NotAllowed { event: rec.event.name(), phase };
        // Load changes to make once the request's own state is updated.
        let mut load: Option<(TeamIdx, i32)> = None;
        let mut job: Option<(TeamIdx, Option<HouseholdId>)> = None;
        let mut rep: Option<(TeamIdx, f64)> = None;
        let open_pos = |st: &RequestState, t: TeamIdx| st.offers.iter().position(|o| o.team == t);
        match (&rec.event, team) {
            (Event::Offered { deadline, mode, .. }, Some(t)) => {
                if phase != PhaseKind::Open || st.offered.binary_search(&t).is_ok() {
                    return Err(bad());
                }
                st.offers.push(OpenOffer { team: t, deadline: *deadline, mode: *mode });
                insert_sorted(&mut st.offered, t);
                load = Some((t, 1));
            }
            (Event::Accepted { .. }, Some(t)) => {
                let pos = open_pos(st, t).filter(|_| phase == PhaseKind::Open).ok_or_else(bad)?;
                st.offers.remove(pos);
                st.phase = Phase::Held { team: t };
            }
            (Event::Declined { .. } | Event::OfferExpired { .. }, Some(t)) => {
                let pos = open_pos(st, t).ok_or_else(bad)?;
                st.offers.remove(pos);
                insert_sorted(&mut st.excluded, t);
                st.misses += 1;
                load = Some((t, -1));
            }
            (Event::OfferWithdrawn { .. }, Some(t)) => {
                let pos = open_pos(st, t).ok_or_else(bad)?;
                st.offers.remove(pos);
                load = Some((t, -1));
            }
            (Event::ScopeWidened { .. }, _) => {
                st.scope = units_scope.ok_or_else(bad)?;
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
                st.service = Some((minutes.get(), volunteers.to_vec()));
                load = Some((t, -1));
                job = Some((t, st.household().cloned()));
            }
            (Event::Evaluated { role, score, .. }, _) if phase == PhaseKind::Completed => {
                st.evaluations.push((*role, score.get()));
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
            _ => return Err(bad()),
        }
        st.version += 1;
        if let Some((t, d)) = load {
            self.dispatcher.index_mut().adjust_load(t, d);
        }
        if let Some((t, h)) = job {
            let id = self.team_id(t);
            // The team exists: its index came from this dispatcher.
            let _ = self.dispatcher.index_mut().record_job(&id, h.as_ref(), rec.at);
            if let Some(h) = h {
                self.retention.served.insert((crate::index::served_time(rec.at), t, h));
            }
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
        if st_phase_is_terminal(&self.requests[i as usize]) {
            let st = &self.requests[i as usize];
            let keep = self.policy_of(&st.request).retention_h;
            self.retention.ended(rec.at, keep, id);
        }
        Ok(i)
    }
}

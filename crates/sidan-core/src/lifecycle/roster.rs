//! The roster at run time: teams added, changed, deactivated and
//! reactivated while the engine runs, each on its own `team/<id>` stream,
//! and the team index updated incrementally as the events are applied.
//!
//! A deactivated team's open offers are withdrawn in the same decision, and
//! each of their requests is dispatched again in it, in the order of their
//! ids; an offer made to one of them takes the team's capacity for the
//! next. What the team already holds stays with it.

use chrono::{DateTime, Utc};

use crate::geo::TravelTime;
use crate::id::TeamId;
use crate::index::TeamIdx;
use crate::lifecycle::escalation::Cursor;
use crate::lifecycle::{
    ApplyProblem, Event, HashMap, Lifecycle, LifecycleError, Out, Recorded, RosterCommand, StreamId, latest_start,
};

/// The roster changes applied: each team stream's version, and every event in order (a
/// snapshot carries them, to rebuild the team index over the city file's teams).
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct Roster {
    versions: HashMap<TeamIdx, u64>,
    pub(super) log: Vec<Recorded>,
}

impl Roster {
    /// The version of a team's stream; 0 for a team never changed at run time.
    pub(super) fn version(&self, t: TeamIdx) -> u64 {
        self.versions.get(&t).copied().unwrap_or(0)
    }
}

impl<T: TravelTime> Lifecycle<T> {
    pub(super) fn decide_roster(
        &self,
        cmd: &RosterCommand,
        now: DateTime<Utc>,
        out: &mut Out<'_>,
    ) -> Result<(), LifecycleError> {
        let city = self.dispatcher.city();
        let index = self.dispatcher.index();
        match cmd {
            RosterCommand::AddTeam { spec } => {
                index.check_new(city, spec)?;
                out.push(Event::TeamAdded { spec: spec.clone() });
            }
            RosterCommand::ChangeTeam { team, change } => {
                if change.is_empty() {
                    return Err(LifecycleError::EmptyChange { team: team.clone() });
                }
                index.check_change(city, team, change)?;
                out.push(Event::TeamChanged { change: change.clone() });
            }
            RosterCommand::Deactivate { team, reason } => {
                let t = self.team_idx(team)?;
                if !index.get(t).active {
                    return Err(LifecycleError::TeamInactive { team: team.clone() });
                }
                out.push(Event::TeamDeactivated { reason: reason.clone() });
                self.withdraw_offers_to(t, team, now, out);
            }
            RosterCommand::Reactivate { team } => {
                let t = self.team_idx(team)?;
                if index.get(t).active {
                    return Err(LifecycleError::TeamActive { team: team.clone() });
                }
                out.push(Event::TeamReactivated);
            }
        }
        Ok(())
    }

    /// Withdraws every open offer to `t` and dispatches its request again, in the order of
    /// the requests' ids.
    fn withdraw_offers_to(&self, t: TeamIdx, team: &TeamId, now: DateTime<Utc>, out: &mut Out<'_>) {
        let mut offered: Vec<_> = self.requests.iter().filter(|st| st.open_offer(t).is_some()).collect();
        offered.sort_by(|a, b| a.request.id().cmp(b.request.id()));
        let mut reserved = Vec::new();
        for st in offered {
            let mut rout = Out { recs: &mut *out.recs, stream: st.stream.clone(), next_seq: st.version + 1, at: now };
            if now >= latest_start(&st.request) {
                // Past its latest start (its timer is late): it expires, as its tick would have it.
                for o in &st.offers {
                    rout.push(Event::OfferWithdrawn { team: self.team_id(o.team) });
                }
                rout.push(Event::Expired);
                continue;
            }
            rout.push(Event::OfferWithdrawn { team: team.clone() });
            let mut cur = Cursor::of(st);
            cur.open -= 1;
            cur.reserved = reserved;
            self.dispatch_from(&st.request, &mut cur, now, &mut rout);
            reserved = cur.reserved;
        }
    }

    /// Folds an event of a team's stream into the team index.
    pub(super) fn apply_roster(&mut self, id: &TeamId, rec: &Recorded) -> Result<(), ApplyProblem> {
        let (city, index) = self.dispatcher.city_and_index_mut();
        let city = &*city;
        let t = match &rec.event {
            Event::TeamAdded { spec } => {
                if spec.id != *id {
                    return Err(ApplyProblem::Exists);
                }
                index.insert(city, spec)?
            }
            Event::TeamChanged { change } => {
                index.change(city, id, change)?;
                index.idx(id).ok_or_else(|| ApplyProblem::UnknownTeam(id.clone()))?
            }
            Event::TeamDeactivated { .. } | Event::TeamReactivated => {
                index.set_active(id, matches!(rec.event, Event::TeamReactivated))?;
                index.idx(id).ok_or_else(|| ApplyProblem::UnknownTeam(id.clone()))?
            }
            e => return Err(ApplyProblem::WrongStream { event: e.name(), stream: StreamId::Team(id.clone()).kind() }),
        };
        *self.roster.versions.entry(t).or_insert(0) += 1;
        self.roster.log.push(rec.clone());
        Ok(())
    }
}

//! A pairing's stream (结对): pairing and unpairing, and the timer that
//! turns each slot of the schedule into a request of its own.

use chrono::{DateTime, Utc};

use crate::geo::TravelTime;
use crate::id::PairingId;
use crate::lifecycle::{
    ApplyProblem, Event, Lifecycle, LifecycleError, Out, PairingCommand, PairingState, PhaseKind, Recorded, Schedule,
    Slot, StreamId, pairing,
};

impl<T: TravelTime> Lifecycle<T> {
    pub(super) fn decide_pairing(&self, cmd: &PairingCommand, out: &mut Out<'_>) -> Result<(), LifecycleError> {
        match cmd {
            PairingCommand::Pair { spec } => {
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
                spec.contact.check().map_err(|error| LifecycleError::BadContact { pairing: spec.id.clone(), error })?;
                Schedule::compile(spec, city.units().get(unit).tz)
                    .map_err(|error| LifecycleError::BadSchedule { pairing: spec.id.clone(), error })?;
                out.push(Event::Paired { spec: spec.clone() });
            }
            PairingCommand::Unpair { pairing, reason } => {
                let p =
                    self.pairing(pairing).ok_or_else(|| LifecycleError::UnknownPairing { pairing: pairing.clone() })?;
                if !p.active {
                    return Err(LifecycleError::PairingEnded { pairing: pairing.clone() });
                }
                out.push(Event::Unpaired { reason: reason.clone() });
            }
        }
        Ok(())
    }

    /// The pairing's timer: the request of each slot whose lead time has come.
    pub(super) fn tick_pairing(
        &self,
        pairing: &PairingId,
        now: DateTime<Utc>,
        out: &mut Out<'_>,
    ) -> Result<(), LifecycleError> {
        let p = self.pairing(pairing).ok_or_else(|| LifecycleError::UnknownPairing { pairing: pairing.clone() })?;
        if !p.active {
            return Ok(());
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
                // A request with the visit's id may have ended and left memory: skip the slot.
                (Some(spec), Some(team))
                    if !self.request_slot.contains_key(&spec.id) && !self.retention.is_retired(&spec.id) =>
                {
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
        Ok(())
    }

    pub(super) fn apply_pairing(
        &mut self,
        id: &PairingId,
        slot: Option<Slot>,
        rec: &Recorded,
    ) -> Result<u32, ApplyProblem> {
        let existing = match slot {
            Some(Slot::Pairing(i)) => Some(i as usize),
            _ => None,
        };
        match &rec.event {
            Event::Paired { spec } => {
                if existing.is_some() || spec.id != *id {
                    return Err(ApplyProblem::Exists);
                }
                let units = self.dispatcher.city().units();
                let unit = units.idx(&spec.unit).ok_or_else(|| ApplyProblem::UnknownUnit(spec.unit.clone()))?;
                let schedule = Schedule::compile(spec, units.get(unit).tz)?;
                let team = self
                    .dispatcher
                    .index()
                    .idx(&spec.team)
                    .ok_or_else(|| ApplyProblem::UnknownTeam(spec.team.clone()))?;
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
                return Ok(i);
            }
            Event::Unpaired { .. } => {
                let p = existing
                    .map(|i| &mut self.pairings[i])
                    .filter(|p| p.active)
                    .ok_or(ApplyProblem::NotAllowed { event: rec.event.name(), phase: PhaseKind::Closed })?;
                p.active = false;
                p.version += 1;
                let (household, team) = (p.spec.household.clone(), p.spec.team.clone());
                self.household_pairing.remove(&household);
                if let Some(t) = self.dispatcher.index().idx(&team) {
                    self.dispatcher.index_mut().set_paired(t, &household, false);
                }
            }
            Event::VisitScheduled { slot, .. } | Event::VisitSkipped { slot } => {
                let p = existing.map(|i| &mut self.pairings[i]).ok_or(ApplyProblem::NotBegun)?;
                if p.next != Some(*slot) {
                    return Err(ApplyProblem::NotNextSlot { slot: *slot });
                }
                p.cursor = Some(*slot);
                p.next = p.schedule.next_slot(Some(*slot));
                p.version += 1;
            }
            e => return Err(ApplyProblem::WrongStream { event: e.name(), stream: rec.stream.kind() }),
        }
        existing.map(|i| i as u32).ok_or(ApplyProblem::NotBegun)
    }
}

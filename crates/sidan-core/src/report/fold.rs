//! Events to per-request tallies: the fold remembers, for each submitted
//! request, its unit, period and what became of it, and counts each ledger
//! movement at the unit and period it belongs to. The roll-up
//! ([`super::rollup`]) turns the tallies into rows.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::interning::{Interner, Recent, Slots};
use super::{Granularity, HashMap, LedgerFigures, Outcome, Period};
use crate::city::City;
use crate::id::{RequestId, ServiceId, TeamId, UnitId, VolunteerId};
use crate::ledger::{AccountId, ItemId, LedgerEvent, Transfer, TransferId, TransferKind};
use crate::lifecycle::{Event, Recorded, StreamId};
use crate::units::UnitIdx;

/// No team (an interned team number that none has).
pub(super) const NO_TEAM: u32 = u32::MAX;

/// What the fold remembers of a request. Services, teams and volunteers are
/// interned as dense numbers; the volunteers present are a range of the
/// builder's `volunteers` arena.
#[derive(Debug, Clone)]
pub(super) struct Req {
    pub(super) unit: UnitIdx,
    pub(super) period: u32,
    pub(super) service: u32,
    pub(super) submitted: DateTime<Utc>,
    /// Minutes from submission to the first acceptance.
    pub(super) to_accept: Option<u32>,
    /// Minutes from submission to the first arrival.
    pub(super) to_service: Option<u32>,
    pub(super) state: Outcome,
    pub(super) recruitment: bool,
    pub(super) disputed: bool,
    pub(super) offers: u32,
    pub(super) escalations: u32,
    pub(super) no_shows: u32,
    pub(super) minutes: u32,
    pub(super) team: u32,
    pub(super) volunteers: (u32, u32),
    pub(super) ratings: u32,
    /// Of the latest settlement: the combined score, the ratings counted at
    /// the default, and whether it found the request not served.
    pub(super) combined_milli: Option<u32>,
    pub(super) defaulted: u32,
    pub(super) not_served: bool,
}

/// Folds events into a report.
#[derive(Debug)]
pub struct ReportBuilder<'a> {
    pub(super) city: &'a City,
    pub(super) granularity: Granularity,
    /// The slot of each request id: its place in `requests`.
    pub(super) slots: Slots,
    pub(super) requests: Vec<Req>,
    /// The request of the previous event and its slot (a request's events often come together).
    pub(super) last: Option<(RequestId, u32)>,
    pub(super) units: Recent<UnitId, UnitIdx>,
    /// Slots in submission order; a request submitted twice counts twice.
    pub(super) order: Vec<u32>,
    pub(super) periods: Vec<Period>,
    pub(super) services: Interner<ServiceId>,
    pub(super) teams: Interner<TeamId>,
    pub(super) volunteer_ids: Interner<VolunteerId>,
    pub(super) volunteers: Vec<u32>,
    /// The city's one root unit, where ledger movements naming no unit count.
    pub(super) root: Option<UnitIdx>,
    /// Ledger figures of (period, unit), the unit's own movements only.
    pub(super) ledger: HashMap<(u32, UnitIdx), LedgerFigures>,
    /// The last unit and instant a period was found for, and that period.
    pub(super) last_period: Option<(UnitIdx, DateTime<Utc>, u32)>,
    /// Reservations not yet posted, voided or expired.
    pub(super) pending: HashMap<TransferId, Arc<Transfer>>,
    /// Posted changes of each shelf (station, item), per period.
    pub(super) shelves: BTreeMap<(UnitIdx, ItemId), BTreeMap<u32, i64>>,
}

fn minutes_between(a: DateTime<Utc>, b: DateTime<Utc>) -> u32 {
    u32::try_from((b - a).num_minutes().max(0)).unwrap_or(u32::MAX)
}

impl<'a> ReportBuilder<'a> {
    /// An empty fold over `city`'s units.
    pub fn new(city: &'a City, granularity: Granularity) -> Self {
        Self {
            city,
            granularity,
            slots: Slots::default(),
            requests: Vec::new(),
            last: None,
            units: Recent::new(),
            order: Vec::new(),
            periods: Vec::new(),
            services: Interner::new(),
            teams: Interner::new(),
            volunteer_ids: Interner::new(),
            volunteers: Vec::new(),
            root: {
                let mut roots = city.units().iter().filter(|(_, u)| u.parent.is_none()).map(|(i, _)| i);
                match (roots.next(), roots.next()) {
                    (Some(r), None) => Some(r),
                    _ => None,
                }
            },
            ledger: HashMap::default(),
            last_period: None,
            pending: HashMap::default(),
            shelves: BTreeMap::new(),
        }
    }

    /// The period of `at` in `unit`'s time zone.
    fn period_at(&mut self, unit: UnitIdx, at: DateTime<Utc>) -> u32 {
        match self.last_period {
            Some((u, t, p)) if u == unit && t == at => p,
            _ => {
                let tz = self.city.units().get(unit).tz;
                let p = self.period(Period::of(at, tz, self.granularity));
                self.last_period = Some((unit, at, p));
                p
            }
        }
    }

    /// The ledger figures of `unit` in the period of `at`.
    fn ledger_at(&mut self, unit: UnitIdx, at: DateTime<Utc>) -> &mut LedgerFigures {
        let p = self.period_at(unit, at);
        self.ledger.entry((p, unit)).or_default()
    }

    /// The unit of a submitted request.
    fn request_unit(&mut self, id: &RequestId) -> Option<UnitIdx> {
        self.slot(id).map(|s| self.requests[s as usize].unit)
    }

    /// The known station of a station account.
    fn station_of(&mut self, a: &AccountId) -> Option<UnitIdx> {
        a.station().and_then(|s| self.unit(s))
    }

    /// The unit a transfer's movements count at: a service credit's or a
    /// withdrawal's request (a service credit's for its reversal), else the
    /// station of the debit or else of the credit account, else the city.
    fn owner(&mut self, t: &Transfer) -> Option<UnitIdx> {
        let by_request = match &t.kind {
            TransferKind::ServiceCredit { request } | TransferKind::Withdrawal { request } => {
                Some(self.request_unit(request))
            }
            TransferKind::Reversal { original, .. } => {
                credited_request(original).map(|r| self.slots.get(r).map(|s| self.requests[s as usize].unit))
            }
            _ => None,
        };
        let unit = match by_request {
            Some(u) => u,
            None => match self.station_of(&t.debit) {
                Some(u) => Some(u),
                None => self.station_of(&t.credit),
            },
        };
        unit.or(self.root)
    }

    /// Counts a transfer's amount as moved (posted) at `at`.
    fn moved(&mut self, t: &Transfer, at: DateTime<Utc>) {
        let amount = i64::try_from(t.amount).unwrap_or(i64::MAX);
        for (account, sign) in [(&t.debit, -1), (&t.credit, 1)] {
            if let AccountId::Shelf { station, item } = account
                && let Some(u) = self.unit(station)
            {
                let p = self.period_at(u, at);
                *self.shelves.entry((u, item.clone())).or_default().entry(p).or_default() += sign * amount;
            }
        }
        let Some(unit) = self.owner(t) else { return };
        let f = self.ledger_at(unit, at);
        match &t.kind {
            TransferKind::ServiceCredit { .. } => match t.credit {
                AccountId::VolunteerMinutes(_) => f.minutes_banked += t.amount,
                _ => f.points_credited += t.amount,
            },
            TransferKind::Withdrawal { .. } => f.minutes_withdrawn += t.amount,
            TransferKind::Redemption { .. } => match &t.credit {
                AccountId::Till(_) => f.points_redeemed += t.amount,
                AccountId::StockConsumed { item, .. } => {
                    f.goods.entry(item.clone()).or_default().handed_out += t.amount
                }
                _ => {}
            },
            TransferKind::Restock {} => {
                if let AccountId::Shelf { item, .. } = &t.credit {
                    f.goods.entry(item.clone()).or_default().received += t.amount;
                }
            }
            TransferKind::StationTransfer {} => {}
            TransferKind::Adjustment { .. } => {
                f.adjustments += 1;
                *f.adjustments_net.entry(t.ledger()).or_default() += held_change(t, amount);
            }
            TransferKind::Reversal { .. } => {
                f.reversals += 1;
                *f.reversals_net.entry(t.ledger()).or_default() += held_change(t, amount);
            }
        }
    }

    fn add_ledger(&mut self, at: DateTime<Utc>, e: &LedgerEvent) {
        match e {
            LedgerEvent::Transferred { transfer } => {
                if transfer.timeout_s.is_some() {
                    self.pending.insert(transfer.id.clone(), Arc::clone(transfer));
                } else {
                    self.moved(transfer, at);
                }
            }
            LedgerEvent::Posted { pending, .. } => {
                if let Some(t) = self.pending.remove(pending) {
                    self.moved(&t, at);
                }
            }
            LedgerEvent::Voided { pending, .. } | LedgerEvent::Expired { pending, .. } => {
                let Some(t) = self.pending.remove(pending) else { return };
                let Some(unit) = self.owner(&t) else { return };
                let f = self.ledger_at(unit, at);
                if matches!(e, LedgerEvent::Voided { .. }) {
                    f.reservations_voided += 1;
                } else {
                    f.reservations_expired += 1;
                }
            }
            LedgerEvent::AccountOpened { .. } | LedgerEvent::AccountClosed { .. } | LedgerEvent::Retired { .. } => {}
        }
    }

    /// The slot of a known request.
    fn slot(&mut self, id: &RequestId) -> Option<u32> {
        if let Some((last, s)) = &self.last
            // The same allocation or the same text.
            && (std::ptr::eq(last.as_str(), id.as_str()) || last == id)
        {
            return Some(*s);
        }
        let s = self.slots.get(id.as_str())?;
        self.last = Some((id.clone(), s));
        Some(s)
    }

    fn period(&mut self, p: Period) -> u32 {
        let i = self.periods.iter().rposition(|q| *q == p).unwrap_or_else(|| {
            self.periods.push(p);
            self.periods.len() - 1
        });
        i as u32
    }

    fn unit(&mut self, id: &UnitId) -> Option<UnitIdx> {
        if let Some(u) = self.units.get(id) {
            return Some(u);
        }
        let u = self.city.units().idx(id)?;
        self.units.put(id, u);
        Some(u)
    }

    fn submit(&mut self, id: &RequestId, rec: &Recorded, spec: &crate::request::RequestSpec) {
        let Some(unit) = self.unit(&spec.unit) else { return };
        let tz = self.city.units().get(unit).tz;
        let period = self.period(Period::of(rec.at, tz, self.granularity));
        let req = Req {
            unit,
            period,
            service: self.services.get(&spec.service),
            submitted: rec.at,
            to_accept: None,
            to_service: None,
            state: Outcome::Open,
            recruitment: false,
            disputed: false,
            offers: 0,
            escalations: 0,
            no_shows: 0,
            minutes: 0,
            team: NO_TEAM,
            volunteers: (0, 0),
            ratings: 0,
            combined_milli: None,
            defaulted: 0,
            not_served: false,
        };
        let (slot, new) = self.slots.get_or_insert(id.as_str());
        if new {
            self.requests.push(req);
        } else {
            // Submitted again: the request starts over (and counts once more).
            self.requests[slot as usize] = req;
        }
        self.last = Some((id.clone(), slot));
        self.order.push(slot);
    }

    /// Folds one event (events of unknown requests or units are ignored).
    pub fn add(&mut self, rec: &Recorded) {
        if let Event::Ledger { entry } = &rec.event {
            self.add_ledger(rec.at, entry);
            return;
        }
        let StreamId::Request(id) = &rec.stream else { return };
        if let Event::Submitted { spec, .. } = &rec.event {
            self.submit(id, rec, spec);
            return;
        }
        let Some(slot) = self.slot(id) else { return };
        let r = &mut self.requests[slot as usize];
        match &rec.event {
            Event::Accepted { .. } => r.to_accept = r.to_accept.or_else(|| Some(minutes_between(r.submitted, rec.at))),
            Event::CheckedIn { .. } => {
                r.to_service = r.to_service.or_else(|| Some(minutes_between(r.submitted, rec.at)));
            }
            Event::ScopeWidened { .. } => r.escalations += 1,
            Event::RecruitmentIssued { .. } => r.recruitment = true,
            Event::NoShow { .. } => r.no_shows += 1,
            Event::Completed { team, minutes, volunteers, .. } => {
                r.minutes = minutes.get();
                r.team = self.teams.get(team);
                let start = self.volunteers.len();
                for v in volunteers.iter() {
                    let i = self.volunteer_ids.get(v);
                    self.volunteers.push(i);
                }
                let len = self.volunteers.len() - start;
                r.volunteers = (start as u32, len as u32);
            }
            Event::Disputed { .. } => r.disputed = true,
            Event::Offered { .. } => r.offers += 1,
            Event::Evaluated { .. } => r.ratings += 1,
            Event::Settled { combined_milli, defaulted, served, .. } => {
                r.combined_milli = Some(*combined_milli);
                r.defaulted = u32::try_from(defaulted.len()).unwrap_or(u32::MAX);
                r.not_served = !served;
                if !served {
                    // Found not served: no hours, no active volunteers.
                    r.minutes = 0;
                    r.volunteers = (0, 0);
                    r.team = NO_TEAM;
                }
            }
            Event::Closed => r.state = Outcome::Closed,
            Event::Cancelled { .. } => r.state = Outcome::Cancelled,
            Event::Expired => r.state = Outcome::Expired,
            Event::Unfulfillable => r.state = Outcome::Unfulfillable,
            _ => {}
        }
    }
}

/// The request of a service-credit id (`sc/<request>/…`).
fn credited_request(id: &TransferId) -> Option<&str> {
    id.as_str().strip_prefix(crate::ledger::SERVICE_CREDIT_PREFIX)?.split('/').next()
}

/// A transfer's change to what non-system accounts (volunteers, teams, shelves) hold.
fn held_change(t: &Transfer, amount: i64) -> i64 {
    let into = if t.credit.is_system() { 0 } else { amount };
    let out = if t.debit.is_system() { 0 } else { amount };
    into - out
}

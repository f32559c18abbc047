//! Per-request tallies to rows: each request into its own unit's
//! accumulator for its period, ledger movements and stock beside them, then
//! every accumulator into its parent's, deepest units first, and for each
//! unit above the stations the ranking of its best stations.

use super::fold::{NO_TEAM, Req};
use super::{
    HashMap, LedgerFigures, Outcome, Percentiles, Report, ReportBuilder, ServiceCounts, StationRank, UnitReport,
};
use crate::units::{UnitIdx, UnitKind};

/// The numbers of one unit and period, its subtree included once rolled up.
#[derive(Debug)]
struct Acc {
    period: u32,
    unit: UnitIdx,
    /// The accumulator of the parent unit for the same period, once rolled up.
    parent: Option<u32>,
    requests: u64,
    by_state: [u64; Outcome::ALL.len()],
    /// Sorted by interned service.
    by_service: Vec<(u32, ServiceCounts)>,
    to_accept: Vec<u32>,
    to_service: Vec<u32>,
    minutes: u64,
    /// Interned volunteers and teams; sorted and deduplicated once rolled up.
    volunteers: Vec<u32>,
    teams: Vec<u32>,
    combined_sum: u64,
    settled: u64,
    not_served: u64,
    ratings: u64,
    defaulted: u64,
    disputes: u64,
    offers: u64,
    escalations: u64,
    recruitment: u64,
    no_shows: u64,
    ledger: LedgerFigures,
}

impl Acc {
    fn new(period: u32, unit: UnitIdx) -> Self {
        Self {
            period,
            unit,
            parent: None,
            requests: 0,
            by_state: [0; Outcome::ALL.len()],
            by_service: Vec::new(),
            to_accept: Vec::new(),
            to_service: Vec::new(),
            minutes: 0,
            volunteers: Vec::new(),
            teams: Vec::new(),
            combined_sum: 0,
            settled: 0,
            not_served: 0,
            ratings: 0,
            defaulted: 0,
            disputes: 0,
            offers: 0,
            escalations: 0,
            recruitment: 0,
            no_shows: 0,
            ledger: LedgerFigures::default(),
        }
    }

    fn service(&mut self, service: u32) -> &mut ServiceCounts {
        let i = match self.by_service.binary_search_by_key(&service, |s| s.0) {
            Ok(i) => i,
            Err(i) => {
                self.by_service.insert(i, (service, ServiceCounts::default()));
                i
            }
        };
        &mut self.by_service[i].1
    }

    /// Counts one request (the volunteers present given apart).
    fn add(&mut self, r: &Req, volunteers: &[u32]) {
        self.requests += 1;
        self.by_state[r.state.index()] += 1;
        let s = self.service(r.service);
        s.requests += 1;
        s.closed += u64::from(r.state == Outcome::Closed);
        s.unfulfillable += u64::from(r.state == Outcome::Unfulfillable);
        self.to_accept.extend(r.to_accept);
        self.to_service.extend(r.to_service);
        self.minutes += u64::from(r.minutes);
        self.volunteers.extend_from_slice(volunteers);
        if r.team != NO_TEAM {
            self.teams.push(r.team);
        }
        if let Some(c) = r.combined_milli {
            self.combined_sum += u64::from(c);
            self.settled += 1;
            self.defaulted += u64::from(r.defaulted);
            self.not_served += u64::from(r.not_served);
        }
        self.ratings += u64::from(r.ratings);
        self.disputes += u64::from(r.disputed);
        self.offers += u64::from(r.offers);
        self.escalations += u64::from(r.escalations);
        self.recruitment += u64::from(r.recruitment);
        self.no_shows += u64::from(r.no_shows);
    }

    /// Reduces the sets to their distinct members (once all of the subtree is in).
    fn seal(&mut self) {
        self.volunteers.sort_unstable();
        self.volunteers.dedup();
        self.teams.sort_unstable();
        self.teams.dedup();
    }

    /// Adds a sealed child's numbers.
    fn absorb(&mut self, c: &Acc) {
        self.requests += c.requests;
        for (a, b) in self.by_state.iter_mut().zip(c.by_state) {
            *a += b;
        }
        for &(service, ref n) in &c.by_service {
            let s = self.service(service);
            s.requests += n.requests;
            s.closed += n.closed;
            s.unfulfillable += n.unfulfillable;
        }
        self.to_accept.extend_from_slice(&c.to_accept);
        self.to_service.extend_from_slice(&c.to_service);
        self.minutes += c.minutes;
        self.volunteers.extend_from_slice(&c.volunteers);
        self.teams.extend_from_slice(&c.teams);
        self.combined_sum += c.combined_sum;
        self.settled += c.settled;
        self.not_served += c.not_served;
        self.ratings += c.ratings;
        self.defaulted += c.defaulted;
        self.disputes += c.disputes;
        self.offers += c.offers;
        self.escalations += c.escalations;
        self.recruitment += c.recruitment;
        self.no_shows += c.no_shows;
        self.ledger.absorb(&c.ledger);
    }

    fn fulfilment(&self) -> f64 {
        let base = self.requests.saturating_sub(self.by_state[Outcome::Cancelled.index()]);
        if base == 0 { 0.0 } else { self.by_state[Outcome::Closed.index()] as f64 / base as f64 }
    }

    fn satisfaction(&self) -> Option<f64> {
        (self.settled > 0).then(|| self.combined_sum as f64 / 1000.0 / self.settled as f64)
    }
}

/// A station's figures, waiting for its superiors' rankings.
#[derive(Debug, Clone, Copy)]
struct Rank {
    station: UnitIdx,
    requests: u64,
    fulfilment: f64,
    satisfaction: Option<f64>,
}

impl ReportBuilder<'_> {
    /// Builds the report: every unit with at least one request in a period,
    /// its numbers including its whole subtree.
    pub fn build(mut self) -> Report {
        let units = self.city.units();
        // Each request into its own unit's accumulator...
        let mut accs: Vec<Acc> = Vec::new();
        let mut at: HashMap<(u32, UnitIdx), u32> = HashMap::default();
        let mut depth_of = vec![u8::MAX; units.len()];
        let mut depth = |u: UnitIdx| -> usize {
            let d = &mut depth_of[u.0 as usize];
            if *d == u8::MAX {
                *d = u8::try_from(units.ancestors(u).count()).unwrap_or(u8::MAX - 1);
            }
            usize::from(*d)
        };
        let mut by_depth: Vec<Vec<u32>> = Vec::new();
        let mut acc_of = |accs: &mut Vec<Acc>, by_depth: &mut Vec<Vec<u32>>, period: u32, unit: UnitIdx| -> u32 {
            *at.entry((period, unit)).or_insert_with(|| {
                let i = accs.len() as u32;
                accs.push(Acc::new(period, unit));
                let d = depth(unit);
                if by_depth.len() <= d {
                    by_depth.resize_with(d + 1, Vec::new);
                }
                by_depth[d].push(i);
                i
            })
        };
        let mut prev: Option<(u32, UnitIdx, u32)> = None;
        for &slot in &self.order {
            let r = &self.requests[slot as usize];
            let i = match prev {
                Some((p, u, i)) if p == r.period && u == r.unit => i,
                _ => acc_of(&mut accs, &mut by_depth, r.period, r.unit),
            };
            prev = Some((r.period, r.unit, i));
            let (start, len) = r.volunteers;
            accs[i as usize].add(r, &self.volunteers[start as usize..(start + len) as usize]);
        }
        // The ledger's movements into their units' accumulators...
        let mut ledger: Vec<((u32, UnitIdx), LedgerFigures)> = std::mem::take(&mut self.ledger).into_iter().collect();
        ledger.sort_unstable_by_key(|((p, u), _)| (*p, u.0));
        for ((period, unit), f) in ledger {
            let i = acc_of(&mut accs, &mut by_depth, period, unit);
            accs[i as usize].ledger = f;
        }
        // ... and each shelf's stock at the end of every period from its first movement on ...
        let mut periods: Vec<u32> = (0..self.periods.len() as u32).collect();
        periods.sort_by_key(|&p| self.periods[p as usize]);
        for ((unit, item), deltas) in std::mem::take(&mut self.shelves) {
            let mut on_hand = 0i64;
            let mut started = false;
            for &p in &periods {
                if let Some(d) = deltas.get(&p) {
                    on_hand += d;
                    started = true;
                }
                if started {
                    let i = acc_of(&mut accs, &mut by_depth, p, unit);
                    accs[i as usize].ledger.goods.entry(item.clone()).or_default().on_hand = on_hand;
                }
            }
        }
        // ... then rolled up the hierarchy, deepest units first.
        let mut d = by_depth.len();
        while d > 0 {
            d -= 1;
            let level = std::mem::take(&mut by_depth[d]);
            for &i in &level {
                let a = &mut accs[i as usize];
                a.seal();
                let Some(parent) = units.get(a.unit).parent else { continue };
                let period = a.period;
                let p = acc_of(&mut accs, &mut by_depth, period, parent);
                accs[i as usize].parent = Some(p);
                let [child, up] =
                    accs.get_disjoint_mut([i as usize, p as usize]).expect("a unit is not its own parent");
                up.absorb(child);
            }
        }
        // Station figures for the rankings.
        let mut ranks: Vec<Vec<Rank>> = (0..accs.len()).map(|_| Vec::new()).collect();
        for a in &accs {
            if units.get(a.unit).kind == UnitKind::Station && a.requests > 0 {
                let rank = Rank {
                    station: a.unit,
                    requests: a.requests,
                    fulfilment: a.fulfilment(),
                    satisfaction: a.satisfaction(),
                };
                let mut up = a.parent;
                while let Some(p) = up {
                    ranks[p as usize].push(rank);
                    up = accs[p as usize].parent;
                }
            }
        }
        let mut rows: Vec<(u32, UnitReport)> = accs
            .into_iter()
            .zip(ranks)
            .map(|(mut a, mut ranking)| {
                ranking.sort_by(|x, y| {
                    y.fulfilment
                        .total_cmp(&x.fulfilment)
                        .then(y.satisfaction.unwrap_or(0.0).total_cmp(&x.satisfaction.unwrap_or(0.0)))
                        .then(y.requests.cmp(&x.requests))
                        .then_with(|| units.get(x.station).id.cmp(&units.get(y.station).id))
                });
                ranking.truncate(10);
                let unit = units.get(a.unit);
                let report = UnitReport {
                    unit: unit.id.clone(),
                    kind: unit.kind,
                    period: self.periods[a.period as usize],
                    requests: a.requests,
                    by_state: Outcome::ALL.into_iter().zip(a.by_state).collect(),
                    by_service: a
                        .by_service
                        .iter()
                        .map(|(s, n)| (self.services.keys[*s as usize].clone(), n.clone()))
                        .collect(),
                    fulfilment: a.fulfilment(),
                    to_accept_min: Percentiles::of(&mut a.to_accept),
                    to_service_min: Percentiles::of(&mut a.to_service),
                    minutes_served: a.minutes,
                    active_volunteers: a.volunteers.len() as u64,
                    active_teams: a.teams.len() as u64,
                    satisfaction: a.satisfaction(),
                    settled: a.settled,
                    not_served: a.not_served,
                    ratings: a.ratings,
                    defaulted_ratings: a.defaulted,
                    disputes: a.disputes,
                    offers: a.offers,
                    escalations: a.escalations,
                    recruitment_orders: a.recruitment,
                    no_shows: a.no_shows,
                    ledger: std::mem::take(&mut a.ledger),
                    station_ranking: ranking
                        .into_iter()
                        .map(|s| StationRank {
                            station: units.get(s.station).id.clone(),
                            requests: s.requests,
                            fulfilment: s.fulfilment,
                            satisfaction: s.satisfaction,
                        })
                        .collect(),
                };
                (units.preorder(a.unit), report)
            })
            .collect();
        rows.sort_by(|(x, a), (y, b)| a.period.cmp(&b.period).then(x.cmp(y)));
        Report { granularity: self.granularity, units: rows.into_iter().map(|(_, r)| r).collect() }
    }
}

//! The spatial team index.
//!
//! Team bases live in R-trees (`rstar`), one per (declared skill, reach
//! class). A request asks only the trees of the skills that satisfy its
//! rarest needed skill, and in each only the box of a spherical cap of the
//! class's largest reach around the request; the exact haversine test against
//! each team's own reach follows. A team with several declared skills sits in
//! several trees and is visited once, from the first tree that can hold it.
//!
//! Team records are stored densely, in Z-order of their bases at build time,
//! so the candidates of one query sit close together in memory. Load,
//! availability, location, reach and reputation are updated in place;
//! a move or a reach change touches only that team's tree entry.

use foldhash::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use rstar::primitives::GeomWithData;
use rstar::{AABB, RTree};

use crate::city::City;
use crate::geo::{EARTH_RADIUS_M, Location, unit_xyz};
use crate::id::{HouseholdId, TeamId};
use crate::skills::SkillSet;
use crate::team::{MAX_REACH_KM, TeamChange, TeamError, TeamKind, TeamProblem, TeamSpec};
use crate::time::{Availability, AvailabilitySpec};
use crate::units::UnitIdx;

mod served;

pub use served::Served;
pub(crate) use served::served_time;
use served::sort_served;

/// Dense index of a team inside a [`TeamIndex`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TeamIdx(pub u32);

/// Upper bounds of the reach classes, in metres. Coarse on purpose: each
/// leaf carries its team's reach, so teams in a box but out of reach are
/// dropped without touching their records, and fewer trees mean fewer walks.
const REACH_CLASSES_M: [f64; 6] = [2e3, 5e3, 12e3, 30e3, 80e3, MAX_REACH_KM * 1e3];
const N_CLASSES: usize = REACH_CLASSES_M.len();

/// What a tree leaf carries besides the base: enough to drop a team that is
/// out of reach without reading its record.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Leaf {
    idx: u32,
    /// The team's reach in metres.
    reach_m: f32,
    /// The base on the unit sphere.
    xyz: [f32; 3],
}

/// A tree leaf: the base as `[lon, lat]` and its [`Leaf`] data.
type Point = GeomWithData<[f64; 2], Leaf>;

/// Wider nodes than rstar's default (6): shallower trees and fewer pointer
/// hops per query, at the price of slower single inserts.
#[derive(Debug, Clone, Copy)]
struct Params;

impl rstar::RTreeParams for Params {
    const MIN_SIZE: usize = 8;
    const MAX_SIZE: usize = 24;
    const REINSERTION_COUNT: usize = 6;
    type DefaultInsertionStrategy = rstar::RStarInsertionStrategy;
}

type Tree = RTree<Point, Params>;

/// A team as the dispatcher sees it.
#[derive(Debug, Clone)]
pub struct TeamRecord {
    /// Its id.
    pub id: TeamId,
    /// Display name.
    pub name: String,
    /// Its unit.
    pub unit: UnitIdx,
    /// Its kind.
    pub kind: TeamKind,
    /// Its base.
    pub base: Location,
    /// Its reach in metres.
    pub reach_m: f64,
    /// Its skills and every broader skill they satisfy.
    pub skills: SkillSet,
    /// The skills it declared.
    pub declared_skills: SkillSet,
    /// Number of volunteers.
    pub members: u32,
    /// Requests it can hold at once.
    pub capacity: u32,
    /// Requests it holds now.
    pub load: u32,
    /// Requests served recently.
    pub recent_jobs: u32,
    /// Reputation in [0, 1], if rated.
    pub reputation: Option<f64>,
    /// When it can serve (shared between teams with the same declaration).
    pub availability: Arc<Availability>,
    /// The time zone of its availability (its unit's).
    pub tz: Tz,
    /// Households served before, sorted by household, each with when it was last served (the
    /// lifecycle forgets one a while after: the memory policy's `continuity_days`).
    pub households_served: Vec<Served>,
    /// Households paired with it, sorted.
    pub paired_households: Vec<HouseholdId>,
    /// Whether it takes offers.
    pub active: bool,
    class: u8,
}

/// The part of a team the lifecycle changes as events are applied (the rest comes from the
/// city's team file): what a snapshot keeps per team.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TeamDynamics {
    /// Requests it holds now (offers out plus requests held).
    pub load: u32,
    /// Requests served recently.
    pub recent_jobs: u32,
    /// Reputation in [0, 1], if rated.
    pub reputation: Option<f64>,
    /// Households served before, sorted by household, with when last (seconds since the epoch;
    /// `None`: declared in the team file).
    pub households_served: Vec<(HouseholdId, Option<i64>)>,
    /// Households paired with it, sorted.
    pub paired_households: Vec<HouseholdId>,
}

/// The team table and its spatial index.
#[derive(Debug, Clone, Default)]
pub struct TeamIndex {
    teams: Vec<TeamRecord>,
    by_id: HashMap<TeamId, TeamIdx>,
    /// One tree per (declared skill, reach class), at `skill * N_CLASSES + class`.
    trees: Vec<Tree>,
    /// The largest reach present in each tree (never shrinks between rebuilds).
    tree_reach_m: Vec<f64>,
    /// Number of teams that declared each skill.
    skill_count: Vec<u32>,
    /// Identical availability declarations share one compiled copy.
    interned: foldhash::HashSet<Arc<Availability>>,
}

fn class_of(reach_m: f64) -> u8 {
    REACH_CLASSES_M.iter().position(|&b| reach_m <= b).unwrap_or(REACH_CLASSES_M.len() - 1) as u8
}

fn point(rec: &TeamRecord, idx: u32) -> Point {
    let [x, y, z] = unit_xyz(rec.base);
    let leaf = Leaf { idx, reach_m: rec.reach_m as f32, xyz: [x as f32, y as f32, z as f32] };
    GeomWithData::new([rec.base.lon(), rec.base.lat()], leaf)
}

/// Whether a leaf might be within its reach of the point `at_xyz` on the
/// unit sphere. The chord never exceeds the arc, so `R·chord > reach` proves
/// the team out of reach; the margin covers `f32` rounding (a few metres),
/// and the exact haversine test follows for the teams that pass.
fn maybe_in_reach(leaf: &Leaf, at_xyz: [f64; 3]) -> bool {
    let d2: f64 = (0..3).map(|i| (f64::from(leaf.xyz[i]) - at_xyz[i]).powi(2)).sum();
    let reach = (f64::from(leaf.reach_m) + 10.0) / EARTH_RADIUS_M;
    d2 <= reach * reach
}

/// Interleaves the bits of quantised coordinates: a Z-order key.
fn z_order(loc: Location) -> u64 {
    let q = |v: f64, lo: f64, span: f64| (((v - lo) / span) * f64::from(u32::MAX)) as u32;
    let (x, y) = (q(loc.lon(), -180.0, 360.0), q(loc.lat(), -90.0, 180.0));
    let spread = |v: u32| {
        let mut v = u64::from(v);
        v = (v | (v << 16)) & 0x0000_FFFF_0000_FFFF;
        v = (v | (v << 8)) & 0x00FF_00FF_00FF_00FF;
        v = (v | (v << 4)) & 0x0F0F_0F0F_0F0F_0F0F;
        v = (v | (v << 2)) & 0x3333_3333_3333_3333;
        (v | (v << 1)) & 0x5555_5555_5555_5555
    };
    spread(x) | (spread(y) << 1)
}

/// The lon/lat boxes (one, or two across the antimeridian) that contain every
/// point within `radius_m` of `at`.
pub fn cap_boxes(at: Location, radius_m: f64) -> [Option<AABB<[f64; 2]>>; 2] {
    let ang = radius_m / EARTH_RADIUS_M;
    let dlat = ang.to_degrees();
    let (lat, lon) = (at.lat(), at.lon());
    let (lat_lo, lat_hi) = ((lat - dlat).max(-90.0), (lat + dlat).min(90.0));
    let full = |lo, hi| [Some(AABB::from_corners([-180.0, lo], [180.0, hi])), None];
    if ang >= std::f64::consts::PI || lat - dlat <= -90.0 || lat + dlat >= 90.0 {
        return full(lat_lo, lat_hi);
    }
    let s = ang.sin() / lat.to_radians().cos();
    if s >= 1.0 {
        return full(lat_lo, lat_hi);
    }
    // Pad by a micro-degree against rounding at the box edge.
    let dlon = s.asin().to_degrees() + 1e-6;
    let (lo, hi) = (lon - dlon, lon + dlon);
    let b = |lo, hi| Some(AABB::from_corners([lo, lat_lo], [hi, lat_hi]));
    if lo < -180.0 {
        [b(lo + 360.0, 180.0), b(-180.0, hi)]
    } else if hi > 180.0 {
        [b(lo, 180.0), b(-180.0, hi - 360.0)]
    } else {
        [b(lo, hi), None]
    }
}

fn validate(city: &City, spec: &TeamSpec, availability: Arc<Availability>) -> Result<TeamRecord, TeamError> {
    let err = |field, problem| TeamError { team: spec.id.clone(), field, problem };
    let unit = city.units().idx(&spec.unit).ok_or_else(|| err("unit", TeamProblem::UnknownUnit(spec.unit.clone())))?;
    let (declared_skills, skills) = city.skills().resolve(&spec.skills).map_err(|e| err("skills", e.into()))?;
    if !(spec.reach_km.is_finite() && spec.reach_km > 0.0 && spec.reach_km <= MAX_REACH_KM) {
        return Err(err("reach_km", TeamProblem::BadReach(spec.reach_km)));
    }
    if spec.members == 0 {
        return Err(err("members", TeamProblem::Zero));
    }
    if spec.capacity == 0 {
        return Err(err("capacity", TeamProblem::Zero));
    }
    if spec.load > spec.capacity {
        return Err(err("load", TeamProblem::LoadOverCapacity { load: spec.load, capacity: spec.capacity }));
    }
    if let Some(r) = spec.reputation
        && !(0.0..=1.0).contains(&r)
    {
        return Err(err("reputation", TeamProblem::BadReputation(r)));
    }
    let sorted = |v: &[HouseholdId]| {
        let mut v = v.to_vec();
        v.sort();
        v.dedup();
        v
    };
    let reach_m = spec.reach_km * 1000.0;
    Ok(TeamRecord {
        id: spec.id.clone(),
        name: spec.name.clone(),
        unit,
        kind: spec.kind,
        base: spec.base,
        reach_m,
        skills,
        declared_skills,
        members: spec.members,
        capacity: spec.capacity,
        load: spec.load,
        recent_jobs: spec.recent_jobs,
        reputation: spec.reputation,
        availability,
        tz: city.units().get(unit).tz,
        households_served: sort_served(
            spec.households_served.iter().map(|h| Served { household: h.clone(), last: None }).collect(),
        ),
        paired_households: sorted(&spec.paired_households),
        active: spec.active,
        class: class_of(reach_m),
    })
}

impl TeamIndex {
    /// Validates the teams and bulk-loads the index. An error carries the
    /// position of the offending spec.
    pub fn build(city: &City, specs: &[TeamSpec]) -> Result<Self, (usize, TeamError)> {
        let mut records = Vec::with_capacity(specs.len());
        // Identical declarations compile once.
        let mut compiled: HashMap<&AvailabilitySpec, Arc<Availability>> = HashMap::default();
        for (i, spec) in specs.iter().enumerate() {
            let av = match compiled.get(&spec.availability) {
                Some(av) => Arc::clone(av),
                None => {
                    let av = Arc::new(Availability::compile(&spec.availability).map_err(|e| {
                        (i, TeamError { team: spec.id.clone(), field: "availability", problem: e.into() })
                    })?);
                    compiled.insert(&spec.availability, Arc::clone(&av));
                    av
                }
            };
            records.push(Some(validate(city, spec, av).map_err(|e| (i, e))?));
        }
        // Store teams in Z-order of their bases so one query's candidates sit together.
        let mut order: Vec<(u64, u32)> = specs.iter().enumerate().map(|(i, s)| (z_order(s.base), i as u32)).collect();
        order.sort_unstable();
        let mut by_id: HashMap<TeamId, TeamIdx> = HashMap::with_capacity_and_hasher(specs.len(), Default::default());
        for (new, &(_, old)) in order.iter().enumerate() {
            if let Some(prev) = by_id.insert(specs[old as usize].id.clone(), TeamIdx(new as u32)) {
                let later = old.max(order[prev.0 as usize].1) as usize;
                let e = TeamError { team: specs[later].id.clone(), field: "id", problem: TeamProblem::DuplicateId };
                return Err((later, e));
            }
        }
        let records: Vec<TeamRecord> =
            order.iter().map(|&(_, old)| records[old as usize].take().expect("each position is taken once")).collect();
        let mut index = Self::empty();
        index.interned = compiled.into_values().collect();
        let mut per_tree: Vec<Vec<Point>> = vec![Vec::new(); index.trees.len()];
        for (i, r) in records.iter().enumerate() {
            for s in r.declared_skills.iter() {
                let t = s.0 as usize * N_CLASSES + r.class as usize;
                per_tree[t].push(point(r, i as u32));
                index.tree_reach_m[t] = index.tree_reach_m[t].max(r.reach_m);
                index.skill_count[s.0 as usize] += 1;
            }
        }
        index.trees = per_tree.into_iter().map(RTree::bulk_load_with_params).collect();
        index.by_id = by_id;
        index.teams = records;
        Ok(index)
    }

    fn empty() -> Self {
        let n = crate::skills::MAX_SKILLS * N_CLASSES;
        Self {
            teams: Vec::new(),
            by_id: HashMap::default(),
            trees: (0..n).map(|_| RTree::new_with_params()).collect(),
            tree_reach_m: vec![0.0; n],
            skill_count: vec![0; crate::skills::MAX_SKILLS],
            interned: foldhash::HashSet::default(),
        }
    }

    fn intern(&mut self, av: &Arc<Availability>) -> Arc<Availability> {
        if let Some(k) = self.interned.get(av) {
            return Arc::clone(k);
        }
        self.interned.insert(Arc::clone(av));
        Arc::clone(av)
    }

    /// Adds one team without rebuilding.
    pub fn insert(&mut self, city: &City, spec: &TeamSpec) -> Result<TeamIdx, TeamError> {
        if self.by_id.contains_key(&spec.id) {
            return Err(TeamError { team: spec.id.clone(), field: "id", problem: TeamProblem::DuplicateId });
        }
        if self.trees.is_empty() {
            *self = Self::empty();
        }
        let av = Availability::compile(&spec.availability).map_err(|e| TeamError {
            team: spec.id.clone(),
            field: "availability",
            problem: e.into(),
        })?;
        let av = self.intern(&Arc::new(av));
        let rec = validate(city, spec, av)?;
        let idx = TeamIdx(u32::try_from(self.teams.len()).expect("fewer than 2^32 teams"));
        self.place(idx, &rec);
        self.by_id.insert(rec.id.clone(), idx);
        self.teams.push(rec);
        Ok(idx)
    }

    fn place(&mut self, idx: TeamIdx, rec: &TeamRecord) {
        for s in rec.declared_skills.iter() {
            let t = s.0 as usize * N_CLASSES + rec.class as usize;
            self.trees[t].insert(point(rec, idx.0));
            self.tree_reach_m[t] = self.tree_reach_m[t].max(rec.reach_m);
            self.skill_count[s.0 as usize] += 1;
        }
    }

    fn unplace(&mut self, idx: TeamIdx) {
        let rec = &self.teams[idx.0 as usize];
        for s in rec.declared_skills.iter() {
            let t = s.0 as usize * N_CLASSES + rec.class as usize;
            let removed = self.trees[t].remove(&point(rec, idx.0));
            debug_assert!(removed.is_some(), "a team sits in one tree per declared skill");
            self.skill_count[s.0 as usize] -= 1;
        }
    }

    /// Number of teams.
    pub fn len(&self) -> usize {
        self.teams.len()
    }

    /// Whether there are no teams.
    pub fn is_empty(&self) -> bool {
        self.teams.is_empty()
    }

    /// The dense index of a team.
    pub fn idx(&self, id: &TeamId) -> Option<TeamIdx> {
        self.by_id.get(id).copied()
    }

    /// The record of a team.
    ///
    /// # Panics
    /// If `idx` does not come from this index.
    pub fn get(&self, idx: TeamIdx) -> &TeamRecord {
        &self.teams[idx.0 as usize]
    }

    /// All records, in index order.
    pub fn records(&self) -> &[TeamRecord] {
        &self.teams
    }

    fn record_mut(&mut self, id: &TeamId) -> Result<(TeamIdx, &mut TeamRecord), TeamError> {
        let idx = self.idx(id).ok_or_else(|| TeamError {
            team: id.clone(),
            field: "id",
            problem: TeamProblem::UnknownTeam,
        })?;
        Ok((idx, &mut self.teams[idx.0 as usize]))
    }

    /// What the lifecycle changes in the team at `idx`: its load, jobs, reputation and households.
    ///
    /// # Panics
    /// If `idx` does not come from this index.
    pub fn dynamics(&self, idx: TeamIdx) -> TeamDynamics {
        let t = &self.teams[idx.0 as usize];
        TeamDynamics {
            load: t.load,
            recent_jobs: t.recent_jobs,
            reputation: t.reputation,
            households_served: t
                .households_served
                .iter()
                .map(|s| (s.household.clone(), s.last.map(|at| at.timestamp())))
                .collect(),
            paired_households: t.paired_households.clone(),
        }
    }

    /// Restores what [`TeamIndex::dynamics`] gave (lists are kept sorted and deduplicated).
    ///
    /// # Panics
    /// If `idx` does not come from this index.
    pub fn set_dynamics(&mut self, idx: TeamIdx, d: TeamDynamics) {
        let t = &mut self.teams[idx.0 as usize];
        let sorted = |mut v: Vec<HouseholdId>| {
            v.sort_unstable();
            v.dedup();
            v
        };
        t.load = d.load;
        t.recent_jobs = d.recent_jobs;
        t.reputation = d.reputation.filter(|r| (0.0..=1.0).contains(r));
        t.households_served = sort_served(
            d.households_served
                .into_iter()
                .map(|(household, last)| Served { household, last: last.and_then(|s| DateTime::from_timestamp(s, 0)) })
                .collect(),
        );
        t.paired_households = sorted(d.paired_households);
    }

    /// Sets how many requests a team holds now.
    pub fn set_load(&mut self, id: &TeamId, load: u32) -> Result<(), TeamError> {
        self.record_mut(id)?.1.load = load;
        Ok(())
    }

    /// Adds `delta` to the load of the team at `idx` (offers out plus requests held), saturating at 0.
    ///
    /// # Panics
    /// If `idx` does not come from this index.
    pub fn adjust_load(&mut self, idx: TeamIdx, delta: i32) {
        let rec = &mut self.teams[idx.0 as usize];
        rec.load = rec.load.saturating_add_signed(delta);
    }

    /// Marks the team at `idx` as paired (or no longer paired) with `household`.
    ///
    /// # Panics
    /// If `idx` does not come from this index.
    pub fn set_paired(&mut self, idx: TeamIdx, household: &HouseholdId, paired: bool) {
        let list = &mut self.teams[idx.0 as usize].paired_households;
        match (list.binary_search(household), paired) {
            (Err(pos), true) => list.insert(pos, household.clone()),
            (Ok(pos), false) => {
                list.remove(pos);
            }
            _ => {}
        }
    }

    /// Sets how many requests a team can hold.
    pub fn set_capacity(&mut self, id: &TeamId, capacity: u32) -> Result<(), TeamError> {
        if capacity == 0 {
            return Err(TeamError { team: id.clone(), field: "capacity", problem: TeamProblem::Zero });
        }
        self.record_mut(id)?.1.capacity = capacity;
        Ok(())
    }

    /// Counts one more recently served request, served at `at` (to the second).
    pub fn record_job(
        &mut self,
        id: &TeamId,
        household: Option<&HouseholdId>,
        at: DateTime<Utc>,
    ) -> Result<(), TeamError> {
        let (_, rec) = self.record_mut(id)?;
        rec.recent_jobs += 1;
        let at = served_time(at);
        if let Some(h) = household {
            match rec.households_served.binary_search_by(|s| s.household.cmp(h)) {
                Ok(i) => {
                    let s = &mut rec.households_served[i];
                    if s.last.is_some() {
                        s.last = Some(at);
                    }
                }
                Err(i) => rec.households_served.insert(i, Served { household: h.clone(), last: Some(at) }),
            }
        }
        Ok(())
    }

    /// Sets a team's reputation.
    pub fn set_reputation(&mut self, id: &TeamId, reputation: f64) -> Result<(), TeamError> {
        if !(0.0..=1.0).contains(&reputation) {
            return Err(TeamError {
                team: id.clone(),
                field: "reputation",
                problem: TeamProblem::BadReputation(reputation),
            });
        }
        self.record_mut(id)?.1.reputation = Some(reputation);
        Ok(())
    }

    /// Replaces a team's availability.
    pub fn set_availability(&mut self, id: &TeamId, spec: &AvailabilitySpec) -> Result<(), TeamError> {
        let av = Availability::compile(spec).map_err(|e| TeamError {
            team: id.clone(),
            field: "availability",
            problem: e.into(),
        })?;
        let av = self.intern(&Arc::new(av));
        self.record_mut(id)?.1.availability = av;
        Ok(())
    }

    /// Turns offers to a team on or off.
    pub fn set_active(&mut self, id: &TeamId, active: bool) -> Result<(), TeamError> {
        self.record_mut(id)?.1.active = active;
        Ok(())
    }

    /// Whether `spec` would be accepted by [`TeamIndex::insert`], changing nothing.
    ///
    /// # Errors
    /// The first field at fault, as `insert` would report it.
    pub fn check_new(&self, city: &City, spec: &TeamSpec) -> Result<(), TeamError> {
        if self.by_id.contains_key(&spec.id) {
            return Err(TeamError { team: spec.id.clone(), field: "id", problem: TeamProblem::DuplicateId });
        }
        let av = Availability::compile(&spec.availability).map_err(|e| TeamError {
            team: spec.id.clone(),
            field: "availability",
            problem: e.into(),
        })?;
        validate(city, spec, Arc::new(av)).map(|_| ())
    }

    /// Whether `change` fits the team, changing nothing: the skills are in the taxonomy, the
    /// reach in range, the capacity at least one, the availability valid.
    ///
    /// # Errors
    /// The first field at fault.
    pub fn check_change(&self, city: &City, id: &TeamId, change: &TeamChange) -> Result<(), TeamError> {
        let err = |field, problem| TeamError { team: id.clone(), field, problem };
        self.idx(id).ok_or_else(|| err("id", TeamProblem::UnknownTeam))?;
        if let Some(skills) = &change.skills {
            city.skills().resolve(skills).map_err(|e| err("skills", e.into()))?;
        }
        if let Some(r) = change.reach_km
            && !(r.is_finite() && r > 0.0 && r <= MAX_REACH_KM)
        {
            return Err(err("reach_km", TeamProblem::BadReach(r)));
        }
        if change.capacity == Some(0) {
            return Err(err("capacity", TeamProblem::Zero));
        }
        if let Some(av) = &change.availability {
            Availability::compile(av).map_err(|e| err("availability", e.into()))?;
        }
        Ok(())
    }

    /// Applies a change checked by [`TeamIndex::check_change`], re-indexing only that team.
    ///
    /// # Errors
    /// As [`TeamIndex::check_change`]; nothing changes then.
    pub fn change(&mut self, city: &City, id: &TeamId, change: &TeamChange) -> Result<(), TeamError> {
        self.check_change(city, id, change)?;
        let idx = self.idx(id).ok_or_else(|| TeamError {
            team: id.clone(),
            field: "id",
            problem: TeamProblem::UnknownTeam,
        })?;
        if let Some(av) = &change.availability {
            self.set_availability(id, av)?;
        }
        if let Some(c) = change.capacity {
            self.teams[idx.0 as usize].capacity = c;
        }
        let skills = match &change.skills {
            Some(skills) => Some(city.skills().resolve(skills).map_err(|e| TeamError {
                team: id.clone(),
                field: "skills",
                problem: e.into(),
            })?),
            None => None,
        };
        if skills.is_some() || change.base.is_some() || change.reach_km.is_some() {
            self.unplace(idx);
            let rec = &mut self.teams[idx.0 as usize];
            if let Some((declared, all)) = skills {
                rec.declared_skills = declared;
                rec.skills = all;
            }
            if let Some(base) = change.base {
                rec.base = base;
            }
            if let Some(r) = change.reach_km {
                rec.reach_m = r * 1000.0;
                rec.class = class_of(rec.reach_m);
            }
            let rec = rec.clone();
            self.place(idx, &rec);
        }
        Ok(())
    }

    /// Moves a team's base and sets its reach, re-indexing only that team.
    pub fn relocate(&mut self, id: &TeamId, base: Location, reach_km: f64) -> Result<(), TeamError> {
        if !(reach_km.is_finite() && reach_km > 0.0 && reach_km <= MAX_REACH_KM) {
            return Err(TeamError { team: id.clone(), field: "reach_km", problem: TeamProblem::BadReach(reach_km) });
        }
        let (idx, _) = self.record_mut(id)?;
        self.unplace(idx);
        let rec = &mut self.teams[idx.0 as usize];
        rec.base = base;
        rec.reach_m = reach_km * 1000.0;
        rec.class = class_of(rec.reach_m);
        let rec = rec.clone();
        self.place(idx, &rec);
        Ok(())
    }

    /// Calls `visit` with every team that declared a skill satisfying the
    /// rarest member of `needed` and that is about within its reach of `at`:
    /// a superset of the teams within reach of `at` that have the needed
    /// skills, each once. `narrower` maps a skill to itself
    /// and every narrower skill (see [`SkillTaxonomy::narrower_or_self`]).
    ///
    /// [`SkillTaxonomy::narrower_or_self`]: crate::skills::SkillTaxonomy::narrower_or_self
    pub fn for_each_candidate(
        &self,
        at: Location,
        needed: &SkillSet,
        narrower: impl Fn(crate::skills::SkillIdx) -> SkillSet,
        mut visit: impl FnMut(TeamIdx, &TeamRecord),
    ) {
        if self.teams.is_empty() {
            return;
        }
        // Search the skill with the fewest declaring teams.
        let Some(via) = needed
            .iter()
            .map(|r| {
                let via = narrower(r);
                (via.iter().map(|s| self.skill_count[s.0 as usize]).sum::<u32>(), via)
            })
            .min_by_key(|(n, _)| *n)
            .map(|(_, via)| via)
        else {
            // A request needing no skill can go to any team: visit each once.
            return self.for_each_within(at, MAX_REACH_KM * 1e3, |i, r, _| visit(i, r));
        };
        let at_xyz = unit_xyz(at);
        for s in via.iter() {
            for class in 0..N_CLASSES {
                let t = s.0 as usize * N_CLASSES + class;
                let tree = &self.trees[t];
                if tree.size() == 0 {
                    continue;
                }
                for bx in cap_boxes(at, self.tree_reach_m[t]).into_iter().flatten() {
                    for p in tree.locate_in_envelope(&bx) {
                        if !maybe_in_reach(&p.data, at_xyz) {
                            continue;
                        }
                        let rec = &self.teams[p.data.idx as usize];
                        // A team declaring several skills of `via` is visited from the first.
                        if rec.declared_skills.intersection(&via).first() == Some(s) {
                            visit(TeamIdx(p.data.idx), rec);
                        }
                    }
                }
            }
        }
    }

    /// Calls `visit` with every team within `radius_m` of `at` by base
    /// distance (teams that declared no skill are not indexed and not visited).
    pub fn for_each_within(&self, at: Location, radius_m: f64, mut visit: impl FnMut(TeamIdx, &TeamRecord, f64)) {
        let boxes = cap_boxes(at, radius_m);
        for (t, tree) in self.trees.iter().enumerate() {
            if tree.size() == 0 {
                continue;
            }
            let s = crate::skills::SkillIdx((t / N_CLASSES) as u16);
            for bx in boxes.iter().flatten() {
                for p in tree.locate_in_envelope(bx) {
                    let rec = &self.teams[p.data.idx as usize];
                    if rec.declared_skills.first() != Some(s) {
                        continue;
                    }
                    let d = rec.base.distance_m(at);
                    if d <= radius_m {
                        visit(TeamIdx(p.data.idx), rec, d);
                    }
                }
            }
        }
    }

    /// Approximate heap and inline bytes of the spatial trees (not the team table).
    pub fn spatial_bytes(&self) -> usize {
        // rstar stores leaves inline in parent nodes: one Point per entry, plus
        // about one node (envelope + Vec header) per `fanout` entries.
        let leaf = std::mem::size_of::<Point>();
        let node = std::mem::size_of::<rstar::ParentNode<Point>>() + std::mem::size_of::<AABB<[f64; 2]>>();
        let fanout = <Params as rstar::RTreeParams>::MAX_SIZE * 3 / 4;
        let n: usize = self.trees.iter().map(|t| t.size()).sum();
        n * leaf + n.div_ceil(fanout) * node + self.trees.len() * std::mem::size_of::<Tree>()
    }

    /// Approximate bytes of the team table (records, ids, availability, households).
    pub fn table_bytes(&self) -> usize {
        let base = std::mem::size_of::<TeamRecord>() + std::mem::size_of::<(TeamId, TeamIdx)>() * 2;
        self.teams
            .iter()
            .map(|r| {
                base + r.id.as_str().len()
                    + 16
                    + r.name.len()
                    + r.households_served.len() * std::mem::size_of::<Served>()
                    + r.paired_households.len() * std::mem::size_of::<HouseholdId>()
            })
            .sum::<usize>()
            + self.interned.iter().map(|a| a.heap_bytes() + std::mem::size_of::<Availability>()).sum::<usize>()
    }
}

#[cfg(test)]
mod tests;

//! The batch problem file of `sidan solve`: parsing with field paths in every
//! error, validation, the candidate graph (built with a spatial index, never
//! an n × m scan) and the plan's JSON form. The format is documented in
//! `docs/formats.md`.

use std::collections::BTreeMap;

use chrono::{DateTime, FixedOffset};
use rstar::RTree;
use rstar::primitives::GeomWithData;
use serde::{Deserialize, Serialize};
use sidan_core::batch::{BatchEdge, BatchError, BatchPlan, BatchProblem};
use sidan_core::geo::{EARTH_RADIUS_M, haversine_m};

/// Largest problem file accepted, in bytes.
pub const MAX_PROBLEM_FILE_BYTES: usize = 256 * 1024 * 1024;

/// Score penalty per skill a team has beyond what the request asks for, in
/// metres: keeps specialists free for the requests that need them.
pub const SPARE_SKILL_PENALTY_M: f64 = 500.0;

/// A batch problem file: the teams and the requests of one window.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ProblemFile {
    /// The teams that may serve.
    pub teams: Vec<TeamEntry>,
    /// The requests to serve.
    pub requests: Vec<RequestEntry>,
}

/// A position in WGS84 degrees.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LatLon {
    /// Latitude, −90..=90.
    pub lat: f64,
    /// Longitude, −180..=180.
    pub lon: f64,
}

/// A half-open time interval `[start, end)` with offsets (RFC 3339).
#[derive(Debug, Clone, Copy, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Interval {
    /// Start instant.
    pub start: DateTime<FixedOffset>,
    /// End instant, after `start`.
    pub end: DateTime<FixedOffset>,
}

impl Interval {
    /// Length of the overlap with `other`, in whole seconds (0 if none).
    fn overlap_s(&self, other: &Interval) -> i64 {
        let start = self.start.max(other.start);
        let end = self.end.min(other.end);
        (end - start).num_seconds().max(0)
    }
}

/// A team of the batch.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TeamEntry {
    /// Unique id among the teams.
    pub id: String,
    /// Where the team starts from.
    pub location: LatLon,
    /// Skills the team has.
    pub skills: Vec<String>,
    /// How many requests of the batch it can take (≥ 0).
    pub capacity: u32,
    /// How far it travels, great-circle, in kilometres (≥ 0).
    pub reach_km: f64,
    /// When it is available.
    pub availability: Vec<Interval>,
}

/// A request of the batch.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RequestEntry {
    /// Unique id among the requests.
    pub id: String,
    /// Where the service takes place.
    pub location: LatLon,
    /// Skills the service needs; a team must have all of them.
    pub skills: Vec<String>,
    /// When the service may take place.
    pub window: Interval,
    /// How long it takes, in minutes (> 0, and it fits in the window).
    pub duration_min: u32,
    /// Weight in the first objective (≥ 0; 0 is never served).
    pub priority: u32,
}

/// What a pair costs in the second objective.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum Objective {
    /// The great-circle distance.
    #[default]
    Distance,
    /// The distance, made dearer near the team's reach and for teams whose
    /// extra skills are wasted: `d · (1 + d / reach) + 500 m · spare skills`.
    Score,
}

/// Why a problem file is not a valid batch. The message names the entry and
/// the field, e.g. `requests[3].window.start`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProblemFileError {
    /// The text is not JSON of the right shape (syntax, types, unknown or
    /// missing fields).
    #[error("{path}: {message}")]
    Parse {
        /// Where in the document, e.g. `teams[0].capacity` (`.` for the top).
        path: String,
        /// What went wrong.
        message: String,
    },
    /// A value is well-typed but not allowed.
    #[error("{path}: {message}")]
    Invalid {
        /// The entry and field.
        path: String,
        /// What is wrong with it.
        message: String,
    },
    /// The file is too large.
    #[error("the file has {0} bytes, more than the {MAX_PROBLEM_FILE_BYTES} allowed")]
    TooLarge(usize),
    /// The candidate graph could not be built.
    #[error("candidate graph: {0}")]
    Graph(#[from] BatchError),
}

fn invalid(path: String, message: impl Into<String>) -> ProblemFileError {
    ProblemFileError::Invalid { path, message: message.into() }
}

impl ProblemFile {
    /// Parses and validates a problem file.
    pub fn from_json(text: &str) -> Result<Self, ProblemFileError> {
        if text.len() > MAX_PROBLEM_FILE_BYTES {
            return Err(ProblemFileError::TooLarge(text.len()));
        }
        let de = &mut serde_json::Deserializer::from_str(text);
        let file: ProblemFile = serde_path_to_error::deserialize(de).map_err(|e| {
            let path = e.path().to_string();
            ProblemFileError::Parse { path, message: e.into_inner().to_string() }
        })?;
        file.validate()?;
        Ok(file)
    }

    /// Checks every value that the types alone do not rule out.
    ///
    /// Entries are named `teams[i]` / `requests[i]` and fields by their path.
    pub fn validate(&self) -> Result<(), ProblemFileError> {
        let mut team_ids = BTreeMap::new();
        for (i, team) in self.teams.iter().enumerate() {
            let at = format!("teams[{i}]");
            check_unique_id(&mut team_ids, "teams", i, &team.id)?;
            check_location(&team.location, &format!("{at}.location"))?;
            check_skills(&team.skills, &format!("{at}.skills"))?;
            if !team.reach_km.is_finite() || team.reach_km < 0.0 {
                return Err(invalid(
                    format!("{at}.reach_km"),
                    format!("{} is not a finite distance ≥ 0", team.reach_km),
                ));
            }
            for (j, slot) in team.availability.iter().enumerate() {
                check_interval(slot, &format!("{at}.availability[{j}]"))?;
            }
        }
        let mut request_ids = BTreeMap::new();
        for (i, req) in self.requests.iter().enumerate() {
            let at = format!("requests[{i}]");
            check_unique_id(&mut request_ids, "requests", i, &req.id)?;
            check_location(&req.location, &format!("{at}.location"))?;
            check_skills(&req.skills, &format!("{at}.skills"))?;
            check_interval(&req.window, &format!("{at}.window"))?;
            if req.duration_min == 0 {
                return Err(invalid(format!("{at}.duration_min"), "must be at least 1 minute"));
            }
            let window_s = (req.window.end - req.window.start).num_seconds();
            if i64::from(req.duration_min) * 60 > window_s {
                return Err(invalid(
                    format!("{at}.duration_min"),
                    format!("{} minutes do not fit in the window of {} minutes", req.duration_min, window_s / 60),
                ));
            }
        }
        Ok(())
    }

    /// Builds the sparse candidate graph: an edge for every pair that is
    /// feasible (skills ⊆ team's, great-circle distance ≤ reach, and one
    /// availability interval overlapping the window by at least the
    /// duration). Costs are integer millimetres of distance, or of the score
    /// for [`Objective::Score`]. Teams find requests within their reach
    /// through an R-tree on 3-D unit-sphere points, so the work grows with
    /// the number of nearby pairs, not with teams × requests.
    pub fn candidate_graph(&self, objective: Objective) -> Result<CandidateGraph, ProblemFileError> {
        let skill_idx = self.skill_index();
        let n_words = skill_idx.len().div_ceil(64).max(1);
        let bits = |skills: &[String]| -> Option<Vec<u64>> {
            let mut words = vec![0u64; n_words];
            for s in skills {
                let i = *skill_idx.get(s.as_str())?;
                words[i / 64] |= 1 << (i % 64);
            }
            Some(words)
        };
        let team_bits: Vec<Vec<u64>> =
            self.teams.iter().map(|t| bits(&t.skills).expect("every team skill is in the index")).collect();
        // A request needing a skill no team has gets no candidates.
        let request_bits: Vec<Option<Vec<u64>>> = self.requests.iter().map(|r| bits(&r.skills)).collect();

        let points: Vec<GeomWithData<[f64; 3], u32>> =
            self.requests.iter().enumerate().map(|(i, r)| GeomWithData::new(unit_xyz(r.location), i as u32)).collect();
        let tree = RTree::bulk_load(points);

        let mut edges = Vec::new();
        let mut distance_mm = Vec::new();
        for (t_idx, team) in self.teams.iter().enumerate() {
            if team.capacity == 0 {
                continue;
            }
            let reach_m = team.reach_km * 1000.0;
            // Chord length on the unit sphere for the reach, padded so that
            // rounding never drops a pair at the limit; the exact haversine
            // test below decides.
            let angle = (reach_m / EARTH_RADIUS_M).min(std::f64::consts::PI);
            let chord = 2.0 * (angle / 2.0).sin() * (1.0 + 1e-9) + 1e-9;
            let mut found: Vec<u32> =
                tree.locate_within_distance(unit_xyz(team.location), chord * chord).map(|p| p.data).collect();
            // The tree's order is not part of any contract: sort for
            // deterministic edge order.
            found.sort_unstable();
            for r_idx in found {
                let req = &self.requests[r_idx as usize];
                let d_m = haversine_m(req.location.lat, req.location.lon, team.location.lat, team.location.lon);
                if d_m > reach_m {
                    continue;
                }
                let Some(need) = &request_bits[r_idx as usize] else {
                    continue;
                };
                let have = &team_bits[t_idx];
                if need.iter().zip(have).any(|(n, h)| n & !h != 0) {
                    continue;
                }
                let duration_s = i64::from(req.duration_min) * 60;
                if !team.availability.iter().any(|slot| slot.overlap_s(&req.window) >= duration_s) {
                    continue;
                }
                let cost_m = match objective {
                    Objective::Distance => d_m,
                    Objective::Score => {
                        let near_limit = if reach_m > 0.0 { d_m * d_m / reach_m } else { 0.0 };
                        let spare: u32 = need.iter().zip(have).map(|(n, h)| (h & !n).count_ones()).sum();
                        d_m + near_limit + SPARE_SKILL_PENALTY_M * f64::from(spare)
                    }
                };
                edges.push(BatchEdge::new(r_idx, t_idx as u32, to_mm(cost_m)));
                distance_mm.push(to_mm(d_m));
            }
        }
        let priority = self.requests.iter().map(|r| r.priority).collect();
        let capacity = self.teams.iter().map(|t| t.capacity).collect();
        let problem = BatchProblem::new(priority, capacity, &edges)?;
        // Real distances per edge, looked up by (request, team) for the plan.
        let mut distance = BTreeMap::new();
        for (e, d) in edges.iter().zip(distance_mm) {
            distance.insert((e.request_idx, e.team_idx), d);
        }
        Ok(CandidateGraph { problem, distance_mm: distance, objective })
    }

    fn skill_index(&self) -> BTreeMap<&str, usize> {
        let mut idx = BTreeMap::new();
        for team in &self.teams {
            for s in &team.skills {
                let next = idx.len();
                idx.entry(s.as_str()).or_insert(next);
            }
        }
        idx
    }

    /// Turns a solver's plan into the file's plan, with ids and metres.
    pub fn plan(&self, graph: &CandidateGraph, plan: &BatchPlan) -> PlanFile {
        let mut assignments = Vec::new();
        let mut unassigned = Vec::new();
        let mut total_distance_mm = 0i64;
        for (r_idx, team) in plan.assignment.iter().enumerate() {
            let req = &self.requests[r_idx];
            match team {
                Some(t_idx) => {
                    let d_mm = graph.distance_mm[&(r_idx as u32, *t_idx)];
                    total_distance_mm += d_mm;
                    let score = (graph.objective == Objective::Score).then(|| {
                        from_mm(graph.problem.edge_cost(r_idx, *t_idx).expect("the plan uses edges of the graph"))
                    });
                    assignments.push(AssignmentEntry {
                        request: req.id.clone(),
                        team: self.teams[*t_idx as usize].id.clone(),
                        distance_m: from_mm(d_mm),
                        score,
                    });
                }
                None => unassigned.push(req.id.clone()),
            }
        }
        PlanFile {
            assignments,
            unassigned,
            served_priority: plan.served_priority,
            total_distance_m: from_mm(total_distance_mm),
            total_score: (graph.objective == Objective::Score).then(|| from_mm(plan.total_cost)),
        }
    }
}

fn check_id(id: &str, path: &str) -> Result<(), ProblemFileError> {
    if id.trim().is_empty() {
        return Err(invalid(path.to_owned(), "must not be empty"));
    }
    Ok(())
}

fn check_location(loc: &LatLon, path: &str) -> Result<(), ProblemFileError> {
    if !loc.lat.is_finite() || !(-90.0..=90.0).contains(&loc.lat) {
        return Err(invalid(format!("{path}.lat"), format!("{} is not a latitude in [-90, 90]", loc.lat)));
    }
    if !loc.lon.is_finite() || !(-180.0..=180.0).contains(&loc.lon) {
        return Err(invalid(format!("{path}.lon"), format!("{} is not a longitude in [-180, 180]", loc.lon)));
    }
    Ok(())
}

fn check_skills(skills: &[String], path: &str) -> Result<(), ProblemFileError> {
    for (i, s) in skills.iter().enumerate() {
        if s.trim().is_empty() {
            return Err(invalid(format!("{path}[{i}]"), "a skill must not be empty"));
        }
    }
    Ok(())
}

fn check_interval(slot: &Interval, path: &str) -> Result<(), ProblemFileError> {
    if slot.start >= slot.end {
        return Err(invalid(
            path.to_owned(),
            format!("start {} is not before end {}", slot.start.to_rfc3339(), slot.end.to_rfc3339()),
        ));
    }
    Ok(())
}

fn unit_xyz(loc: LatLon) -> [f64; 3] {
    let (lat, lon) = (loc.lat.to_radians(), loc.lon.to_radians());
    [lat.cos() * lon.cos(), lat.cos() * lon.sin(), lat.sin()]
}

/// Metres to integer millimetres, the solver's cost unit.
fn to_mm(m: f64) -> i64 {
    (m * 1000.0).round() as i64
}

fn from_mm(mm: i64) -> f64 {
    mm as f64 / 1000.0
}

/// The candidate graph of a problem file, ready for the solvers.
#[derive(Debug, Clone)]
pub struct CandidateGraph {
    /// The solver's view: priorities, capacities, edges with integer costs.
    pub problem: BatchProblem,
    distance_mm: BTreeMap<(u32, u32), i64>,
    objective: Objective,
}

/// One served request in a plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AssignmentEntry {
    /// The request's id.
    pub request: String,
    /// The team's id.
    pub team: String,
    /// Great-circle distance from the team to the request, in metres
    /// (rounded to the millimetre).
    pub distance_m: f64,
    /// The pair's score cost, with `--objective score` only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score: Option<f64>,
}

/// The plan written by `sidan solve`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanFile {
    /// Served requests, in the order of the problem file.
    pub assignments: Vec<AssignmentEntry>,
    /// Ids of the requests left unserved, in the order of the problem file.
    pub unassigned: Vec<String>,
    /// Σ priority of the served requests.
    pub served_priority: u64,
    /// Σ distance of the assignments, in metres.
    pub total_distance_m: f64,
    /// Σ score of the assignments, with `--objective score` only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_score: Option<f64>,
}

/// Checks that `id` is valid and not used by an earlier entry of `list`.
fn check_unique_id<'a>(
    seen: &mut BTreeMap<&'a str, usize>,
    list: &str,
    i: usize,
    id: &'a str,
) -> Result<(), ProblemFileError> {
    let field = format!("{list}[{i}].id");
    check_id(id, &field)?;
    if let Some(first) = seen.insert(id, i) {
        return Err(invalid(field, format!("duplicate id {id:?}, first used by {list}[{first}]")));
    }
    Ok(())
}

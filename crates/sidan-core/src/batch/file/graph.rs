//! The candidate graph of a problem file (found with an R-tree, never an
//! n × m scan) and the plan's file form.

use std::collections::BTreeMap;

use rstar::RTree;
use rstar::primitives::GeomWithData;
use serde::Serialize;

use super::{AssignmentEntry, Checked, PlanFile, ProblemFile, ProblemFileError};
use crate::batch::{BatchEdge, BatchPlan, BatchProblem};
use crate::geo::{EARTH_RADIUS_M, unit_xyz};

/// Score penalty per skill a team has beyond what the request asks for, in
/// metres: keeps specialists free for the requests that need them.
pub const SPARE_SKILL_PENALTY_M: f64 = 500.0;

/// What a pair costs in the second objective.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Objective {
    /// The great-circle distance.
    #[default]
    Distance,
    /// The distance, made dearer near the team's reach and for teams whose
    /// extra skills are wasted: `d · (1 + d / reach) + 500 m · spare skills`.
    Score,
}

/// The candidate graph of a problem file, ready for the solvers.
#[derive(Debug, Clone)]
pub struct CandidateGraph {
    /// The solver's view: priorities, capacities, edges with integer costs.
    pub problem: BatchProblem,
    /// Real distance of every edge, by `(request, team)`, for the plan.
    distance_mm: BTreeMap<(u32, u32), i64>,
    objective: Objective,
}

impl ProblemFile {
    /// Validates the file and builds the sparse candidate graph: an edge for
    /// every pair that is feasible (skills ⊆ team's, great-circle distance
    /// ≤ reach, and one availability interval overlapping the window by at
    /// least the duration). Costs are integer millimetres of distance, or of
    /// the score for [`Objective::Score`]. Teams find requests within their
    /// reach through an R-tree on 3-D unit-sphere points, so the work grows
    /// with the number of nearby pairs, not with teams × requests.
    pub fn candidate_graph(&self, objective: Objective) -> Result<CandidateGraph, ProblemFileError> {
        let checked = self.check()?;
        let Checked { team_at, team_skills, request_at, request_skills } = &checked;
        let points: Vec<GeomWithData<[f64; 3], u32>> =
            request_at.iter().enumerate().map(|(i, &at)| GeomWithData::new(unit_xyz(at), i as u32)).collect();
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
                tree.locate_within_distance(unit_xyz(team_at[t_idx]), chord * chord).map(|p| p.data).collect();
            // The tree's order is not part of any contract: sort for
            // deterministic edge order.
            found.sort_unstable();
            let have = &team_skills[t_idx];
            for r_idx in found {
                let req = &self.requests[r_idx as usize];
                let d_m = request_at[r_idx as usize].distance_m(team_at[t_idx]);
                if d_m > reach_m {
                    continue;
                }
                let Some(need) = &request_skills[r_idx as usize] else {
                    continue;
                };
                if !need.is_subset(have) {
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
                        let spare = have.difference(need).len();
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
        let distance_mm = edges.iter().zip(distance_mm).map(|(e, d)| ((e.request_idx, e.team_idx), d)).collect();
        Ok(CandidateGraph { problem, distance_mm, objective })
    }

    /// Turns a solver's plan on `graph` (built from this file) into the
    /// file's plan, with ids and metres.
    ///
    /// # Panics
    /// If the plan uses a pair that is not an edge of `graph` (a plan of
    /// another problem: a bug in the caller).
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

/// Metres to integer millimetres, the solver's cost unit.
fn to_mm(m: f64) -> i64 {
    (m * 1000.0).round() as i64
}

fn from_mm(mm: i64) -> f64 {
    mm as f64 / 1000.0
}

//! The batch problem file of `sidan solve`: the JSON form of one window's
//! teams and requests, its validation into the core's types (every error a
//! typed [`ProblemFileError`] naming the entry and the field), the candidate
//! graph ([`graph`]) and the plan's JSON form. The format is documented in
//! `docs/formats.md`.
//!
//! Parsing is pure: it takes text and returns the file or an error. Reading
//! the file, and naming it in the message, is the caller's job.

mod graph;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use chrono::{DateTime, FixedOffset};
use serde::{Deserialize, Serialize};

pub use self::graph::{CandidateGraph, Objective, SPARE_SKILL_PENALTY_M};
use super::BatchError;
use crate::geo::LatLon;
use crate::geo::{Location, LocationError};
use crate::skills::{MAX_SKILLS, SkillIdx, SkillSet};

/// Largest problem file accepted, in bytes.
pub const MAX_PROBLEM_FILE_BYTES: usize = 256 * 1024 * 1024;

/// A batch problem file: the teams and the requests of one window.
///
/// The fields are the file's, unchecked: [`ProblemFile::from_json`] and
/// [`ProblemFile::validate`] check them, and [`ProblemFile::candidate_graph`]
/// checks them again, so a file built in code cannot slip past.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ProblemFile {
    /// The teams that may serve.
    pub teams: Vec<TeamEntry>,
    /// The requests to serve.
    pub requests: Vec<RequestEntry>,
}

/// A half-open time interval `[start, end)` with offsets (RFC 3339).
///
/// Not a [`crate::time::TimeWindow`]: a request's window in the engine is at
/// most 31 days long, while the file's intervals (availability above all)
/// have no upper bound, and its errors print the instants with the offsets
/// the file gave.
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
    pub fn overlap_s(&self, other: &Interval) -> i64 {
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

/// Why a problem file is not a valid batch. The message starts with the
/// entry and the field, e.g. `requests[3].window.start: …`; [`Self::path`]
/// gives them alone.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ProblemFileError {
    /// The text is not JSON of the right shape (syntax, types, unknown or
    /// missing fields).
    #[error("{path}: {message}")]
    Parse {
        /// Where in the document, e.g. `teams[0].capacity` (`.` for the top).
        path: String,
        /// What the parser said.
        message: String,
    },
    /// The file is too large.
    #[error("the file has {0} bytes, more than the {MAX_PROBLEM_FILE_BYTES} allowed")]
    TooLarge(usize),
    /// An id is empty or blank.
    #[error("{path}: must not be empty")]
    EmptyId {
        /// The field, e.g. `teams[2].id`.
        path: String,
    },
    /// An id is used by an earlier entry of the same list.
    #[error("{path}: duplicate id {id:?}, first used by {first}")]
    DuplicateId {
        /// The field of the later use, e.g. `teams[2].id`.
        path: String,
        /// The id.
        id: String,
        /// The entry that used it first, e.g. `teams[0]`.
        first: String,
    },
    /// A coordinate is not finite or out of range.
    #[error("{path}: {source}")]
    Location {
        /// The coordinate, e.g. `requests[1].location.lat`.
        path: String,
        /// What is wrong with it.
        source: LocationError,
    },
    /// A skill is empty or blank.
    #[error("{path}: a skill must not be empty")]
    EmptySkill {
        /// The skill, e.g. `requests[0].skills[1]`.
        path: String,
    },
    /// The teams have more distinct skills than a [`SkillSet`] holds.
    #[error("{path}: the teams have more than {MAX_SKILLS} distinct skills")]
    TooManySkills {
        /// The first skill past the limit, e.g. `teams[40].skills[3]`.
        path: String,
    },
    /// A reach is negative or not finite.
    #[error("{path}: {reach_km} is not a finite distance ≥ 0")]
    Reach {
        /// The field, e.g. `teams[0].reach_km`.
        path: String,
        /// The value given.
        reach_km: f64,
    },
    /// An interval does not start before it ends.
    #[error("{path}: start {} is not before end {}", .start.to_rfc3339(), .end.to_rfc3339())]
    ReversedInterval {
        /// The interval, e.g. `requests[3].window`.
        path: String,
        /// Its start.
        start: DateTime<FixedOffset>,
        /// Its end.
        end: DateTime<FixedOffset>,
    },
    /// A request takes zero minutes.
    #[error("{path}: must be at least 1 minute")]
    ZeroDuration {
        /// The field, e.g. `requests[0].duration_min`.
        path: String,
    },
    /// A request's duration is longer than its window.
    #[error("{path}: {duration_min} minutes do not fit in the window of {window_min} minutes")]
    DurationExceedsWindow {
        /// The field, e.g. `requests[0].duration_min`.
        path: String,
        /// The duration given.
        duration_min: u32,
        /// The window's length in whole minutes.
        window_min: i64,
    },
    /// The candidate graph could not be built.
    #[error("candidate graph: {0}")]
    Graph(#[from] BatchError),
}

impl ProblemFileError {
    /// The entry and field the error is about (`.` for the whole document),
    /// or `None` when it is about the file as a whole.
    pub fn path(&self) -> Option<&str> {
        match self {
            Self::Parse { path, .. }
            | Self::EmptyId { path }
            | Self::DuplicateId { path, .. }
            | Self::Location { path, .. }
            | Self::EmptySkill { path }
            | Self::TooManySkills { path }
            | Self::Reach { path, .. }
            | Self::ReversedInterval { path, .. }
            | Self::ZeroDuration { path }
            | Self::DurationExceedsWindow { path, .. } => Some(path),
            Self::TooLarge(_) | Self::Graph(_) => None,
        }
    }
}

/// A checked file in the core's types, index for index with the file's
/// lists: what the candidate graph is built from.
struct Checked {
    team_at: Vec<Location>,
    team_skills: Vec<SkillSet>,
    request_at: Vec<Location>,
    /// `None` for a request that needs a skill no team has: it gets no
    /// candidates.
    request_skills: Vec<Option<SkillSet>>,
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
        self.check().map(|_| ())
    }

    /// Validates the file into the core's types: locations, skill sets over
    /// the teams' skills (in order of first use), checked intervals.
    fn check(&self) -> Result<Checked, ProblemFileError> {
        let mut skill_bit: BTreeMap<&str, SkillIdx> = BTreeMap::new();
        let mut team_ids = BTreeMap::new();
        let mut team_at = Vec::with_capacity(self.teams.len());
        let mut team_skills = Vec::with_capacity(self.teams.len());
        for (i, team) in self.teams.iter().enumerate() {
            let at = format!("teams[{i}]");
            check_unique_id(&mut team_ids, "teams", i, &team.id)?;
            team_at.push(check_location(team.location, &at)?);
            let mut set = SkillSet::EMPTY;
            for (j, s) in team.skills.iter().enumerate() {
                check_skill(s, || format!("{at}.skills[{j}]"))?;
                let bit = match skill_bit.get(s.as_str()) {
                    Some(&bit) => bit,
                    None if skill_bit.len() == MAX_SKILLS => {
                        return Err(ProblemFileError::TooManySkills { path: format!("{at}.skills[{j}]") });
                    }
                    None => {
                        let bit = SkillIdx(skill_bit.len() as u16);
                        skill_bit.insert(s, bit);
                        bit
                    }
                };
                set.insert(bit);
            }
            team_skills.push(set);
            if !team.reach_km.is_finite() || team.reach_km < 0.0 {
                return Err(ProblemFileError::Reach { path: format!("{at}.reach_km"), reach_km: team.reach_km });
            }
            for (j, slot) in team.availability.iter().enumerate() {
                check_interval(slot, || format!("{at}.availability[{j}]"))?;
            }
        }
        let mut request_ids = BTreeMap::new();
        let mut request_at = Vec::with_capacity(self.requests.len());
        let mut request_skills = Vec::with_capacity(self.requests.len());
        for (i, req) in self.requests.iter().enumerate() {
            let at = format!("requests[{i}]");
            check_unique_id(&mut request_ids, "requests", i, &req.id)?;
            request_at.push(check_location(req.location, &at)?);
            let mut need = Some(SkillSet::EMPTY);
            for (j, s) in req.skills.iter().enumerate() {
                check_skill(s, || format!("{at}.skills[{j}]"))?;
                match skill_bit.get(s.as_str()) {
                    Some(&bit) => {
                        if let Some(set) = need.as_mut() {
                            set.insert(bit);
                        }
                    }
                    None => need = None,
                }
            }
            request_skills.push(need);
            check_interval(&req.window, || format!("{at}.window"))?;
            if req.duration_min == 0 {
                return Err(ProblemFileError::ZeroDuration { path: format!("{at}.duration_min") });
            }
            let window_s = (req.window.end - req.window.start).num_seconds();
            if i64::from(req.duration_min) * 60 > window_s {
                return Err(ProblemFileError::DurationExceedsWindow {
                    path: format!("{at}.duration_min"),
                    duration_min: req.duration_min,
                    window_min: window_s / 60,
                });
            }
        }
        Ok(Checked { team_at, team_skills, request_at, request_skills })
    }
}

/// The entry's location, or the error naming its bad coordinate.
fn check_location(loc: LatLon, entry: &str) -> Result<Location, ProblemFileError> {
    loc.location().map_err(|source| ProblemFileError::Location {
        path: format!("{entry}.location.{}", source.coordinate()),
        source,
    })
}

fn check_skill(skill: &str, path: impl FnOnce() -> String) -> Result<(), ProblemFileError> {
    if skill.trim().is_empty() {
        return Err(ProblemFileError::EmptySkill { path: path() });
    }
    Ok(())
}

fn check_interval(slot: &Interval, path: impl FnOnce() -> String) -> Result<(), ProblemFileError> {
    if slot.start >= slot.end {
        return Err(ProblemFileError::ReversedInterval { path: path(), start: slot.start, end: slot.end });
    }
    Ok(())
}

/// Checks that `id` is not blank and not used by an earlier entry of `list`.
fn check_unique_id<'a>(
    seen: &mut BTreeMap<&'a str, usize>,
    list: &str,
    i: usize,
    id: &'a str,
) -> Result<(), ProblemFileError> {
    let path = || format!("{list}[{i}].id");
    if id.trim().is_empty() {
        return Err(ProblemFileError::EmptyId { path: path() });
    }
    if let Some(first) = seen.insert(id, i) {
        return Err(ProblemFileError::DuplicateId {
            path: path(),
            id: id.to_owned(),
            first: format!("{list}[{first}]"),
        });
    }
    Ok(())
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
    /// The pair's score cost, with [`Objective::Score`] only.
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
    /// Σ score of the assignments, with [`Objective::Score`] only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_score: Option<f64>,
}

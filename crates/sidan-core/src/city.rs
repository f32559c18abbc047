//! A city's static data (units, skills, services) and the JSON city file that
//! also lists its teams.
//!
//! Parsing is pure: it takes text and returns a typed error that names the
//! entry (`teams[3] (t-0003)`) and the field (`base.lat`). Reading the file
//! and naming it is the caller's job (the `sidan` facade does both).

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::catalog::ServiceSpec;
use crate::id::{ServiceId, SkillId, UnitId};
use crate::index::TeamIndex;
use crate::skills::{SkillError, SkillSpec, SkillTaxonomy};
use crate::team::{MAX_REACH_KM, TeamProblem, TeamSpec};
use crate::time::AvailabilityError;
use crate::units::{UnitSpec, UnitTree};

/// The largest city file accepted, in bytes.
pub const MAX_CITY_FILE_BYTES: usize = 512 * 1024 * 1024;

/// The city file: everything needed to start dispatching.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CityFile {
    /// The unit hierarchy, in any order.
    pub units: Vec<UnitSpec>,
    /// The skill taxonomy.
    pub skills: Vec<SkillSpec>,
    /// The service catalog.
    pub services: Vec<ServiceSpec>,
    /// The teams.
    #[serde(default)]
    pub teams: Vec<TeamSpec>,
}

/// Why a city file cannot be loaded.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum CityError {
    /// The text is not valid JSON of the expected shape (a bad id, location or
    /// time literal is refused here too, by the type that parses it).
    #[error("at {path} (line {line}, column {column}): {message}")]
    Syntax {
        /// Path of the offending value, like `teams[3].base.lat`.
        path: String,
        /// Line of the error.
        line: usize,
        /// Column of the error.
        column: usize,
        /// What the parser said.
        message: String,
    },
    /// The file is larger than [`MAX_CITY_FILE_BYTES`].
    #[error("the file is {0} bytes, at most {MAX_CITY_FILE_BYTES} are accepted")]
    TooLarge(usize),
    /// An entry is well-formed but invalid.
    #[error("entry {entry}, field `{field}`: {problem}")]
    Invalid {
        /// The entry, like `teams[3] (t-0003)`.
        entry: String,
        /// The field, like `reach_km`.
        field: String,
        /// Which check the entry fails.
        problem: CityProblem,
    },
}

/// Which check an entry of a city file fails (the `problem` of [`CityError::Invalid`]).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum CityProblem {
    /// The unit hierarchy refuses the unit: a duplicate id, an unknown parent, a parent of the wrong level.
    #[error("{0}")]
    Hierarchy(crate::units::UnitError),
    /// The skill taxonomy is invalid: a duplicate skill, a cycle, too many skills.
    #[error("{0}")]
    Taxonomy(SkillError),
    /// Another entry of the same list (`service`, `team`) has this id.
    #[error("a {list} with this id already exists")]
    DuplicateId {
        /// The kind of entry: `service` or `team`.
        list: &'static str,
    },
    /// The entry names a unit the hierarchy does not have.
    #[error("unknown unit {0}")]
    UnknownUnit(UnitId),
    /// The entry names a skill the taxonomy does not have (a team's or service's skill, a broader skill).
    #[error("unknown skill {0}")]
    UnknownSkill(SkillId),
    /// A service lists no skill.
    #[error("a service needs at least one skill")]
    NoSkills,
    /// A count is below its minimum (a capacity or a duration of 0).
    #[error("must be at least {min}")]
    TooSmall {
        /// The smallest accepted value.
        min: u32,
    },
    /// The reach is not a finite number in `(0, max_km]`.
    #[error("reach {reach_km} km is not in (0, {max_km}]")]
    BadReach {
        /// The reach declared.
        reach_km: f64,
        /// The largest accepted, [`MAX_REACH_KM`](crate::team::MAX_REACH_KM).
        max_km: f64,
    },
    /// The reputation is not in `[0, 1]`.
    #[error("reputation {0} is not in [0, 1]")]
    BadReputation(f64),
    /// The current load exceeds the capacity.
    #[error("load {load} exceeds capacity {capacity}")]
    LoadOverCapacity {
        /// The load.
        load: u32,
        /// The capacity.
        capacity: u32,
    },
    /// The availability declaration is invalid (a bad weekly slot or dated exception).
    #[error("{0}")]
    Availability(AvailabilityError),
    /// The entry names a team the index does not have.
    #[error("no such team")]
    UnknownTeam,
}

impl From<SkillError> for CityProblem {
    /// An unknown skill named by a record is [`CityProblem::UnknownSkill`]; the rest is the taxonomy's.
    fn from(e: SkillError) -> Self {
        match e {
            SkillError::UnknownSkill(id) => Self::UnknownSkill(id),
            other => Self::Taxonomy(other),
        }
    }
}

impl From<TeamProblem> for CityProblem {
    // No `_` arm: a new team check must say which city check it is.
    fn from(p: TeamProblem) -> Self {
        match p {
            TeamProblem::DuplicateId => Self::DuplicateId { list: "team" },
            TeamProblem::UnknownUnit(u) => Self::UnknownUnit(u),
            TeamProblem::Skill(e) => e.into(),
            TeamProblem::BadReach(reach_km) => Self::BadReach { reach_km, max_km: MAX_REACH_KM },
            TeamProblem::Zero => Self::TooSmall { min: 1 },
            TeamProblem::LoadOverCapacity { load, capacity } => Self::LoadOverCapacity { load, capacity },
            TeamProblem::BadReputation(r) => Self::BadReputation(r),
            TeamProblem::Availability(e) => Self::Availability(e),
            TeamProblem::UnknownTeam => Self::UnknownTeam,
        }
    }
}

impl CityError {
    fn invalid(entry: String, field: &str, problem: impl Into<CityProblem>) -> Self {
        Self::Invalid { entry, field: field.to_owned(), problem: problem.into() }
    }
}

impl CityFile {
    /// Parses a city file from JSON text.
    pub fn from_json(text: &str) -> Result<Self, CityError> {
        if text.len() > MAX_CITY_FILE_BYTES {
            return Err(CityError::TooLarge(text.len()));
        }
        let de = &mut serde_json::Deserializer::from_str(text);
        serde_path_to_error::deserialize(de).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner();
            CityError::Syntax { path, line: inner.line(), column: inner.column(), message: inner.to_string() }
        })
    }

    /// Validates the file and builds the city and its team index.
    pub fn build(self) -> Result<(City, TeamIndex), CityError> {
        let city = City::new(&self.units, self.skills, self.services)?;
        let index = TeamIndex::build(&city, &self.teams)
            .map_err(|(i, e)| CityError::invalid(format!("teams[{i}] ({})", e.team), e.field, e.problem))?;
        Ok((city, index))
    }
}

/// A city's static data: the unit hierarchy, the skill taxonomy and the service catalog.
#[derive(Debug, Clone, Default)]
pub struct City {
    units: UnitTree,
    skills: SkillTaxonomy,
    services: Vec<ServiceSpec>,
    service_by_id: HashMap<ServiceId, usize>,
}

impl City {
    /// Validates and assembles a city.
    pub fn new(units: &[UnitSpec], skills: Vec<SkillSpec>, services: Vec<ServiceSpec>) -> Result<Self, CityError> {
        let units = UnitTree::build(units).map_err(|(i, e)| {
            let field = match e {
                crate::units::UnitError::DuplicateUnit(_) => "id",
                _ => "parent",
            };
            CityError::invalid(format!("units[{i}] ({})", units[i].id), field, CityProblem::Hierarchy(e))
        })?;
        let skill_ids: Vec<_> = skills.iter().map(|s| s.id.clone()).collect();
        let skills = SkillTaxonomy::build(skills).map_err(|(i, e)| {
            let entry = skill_ids.get(i).map_or_else(|| "skills".to_owned(), |id| format!("skills[{i}] ({id})"));
            let field = match e {
                crate::skills::SkillError::DuplicateSkill(_) => "id",
                _ => "broader",
            };
            CityError::invalid(entry, field, e)
        })?;
        let mut service_by_id = HashMap::new();
        for (i, s) in services.iter().enumerate() {
            let entry = || format!("services[{i}] ({})", s.id);
            if service_by_id.insert(s.id.clone(), i).is_some() {
                return Err(CityError::invalid(entry(), "id", CityProblem::DuplicateId { list: "service" }));
            }
            if s.skills.is_empty() {
                return Err(CityError::invalid(entry(), "skills", CityProblem::NoSkills));
            }
            if let Err(e) = skills.set_of(&s.skills) {
                return Err(CityError::invalid(entry(), "skills", e));
            }
            if s.default_duration_min == 0 {
                return Err(CityError::invalid(entry(), "default_duration_min", CityProblem::TooSmall { min: 1 }));
            }
        }
        Ok(Self { units, skills, services, service_by_id })
    }

    /// The unit hierarchy.
    pub fn units(&self) -> &UnitTree {
        &self.units
    }

    /// Adds units at run time (the hierarchy grows; teams keep their places).
    pub fn units_mut(&mut self) -> &mut UnitTree {
        &mut self.units
    }

    /// The skill taxonomy.
    pub fn skills(&self) -> &SkillTaxonomy {
        &self.skills
    }

    /// The service catalog.
    pub fn services(&self) -> &[ServiceSpec] {
        &self.services
    }

    /// A service by id.
    pub fn service(&self, id: &ServiceId) -> Option<&ServiceSpec> {
        self.service_by_id.get(id).map(|&i| &self.services[i])
    }
}

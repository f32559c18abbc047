//! Volunteer teams ("8+N": standing teams of public bodies, grassroots
//! troupes, professional and special teams) as declared and as validated.

use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};

use crate::geo::Location;
use crate::id::{HouseholdId, SkillId, TeamId, UnitId};
use crate::time::AvailabilitySpec;

/// The longest reach a team may declare, in km.
pub const MAX_REACH_KM: f64 = 500.0;

/// What kind of team this is.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default, BorshSerialize, BorshDeserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum TeamKind {
    /// A standing team formed by a public body (the "8").
    #[default]
    Standing,
    /// A grassroots troupe.
    Troupe,
    /// Professional volunteers (emergency rescue, psychological counselling).
    Professional,
    /// A special team (street patrol, free haircuts).
    Special,
}

/// A team as declared in a city file or by an admin.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, BorshSerialize, BorshDeserialize)]
#[serde(deny_unknown_fields)]
pub struct TeamSpec {
    /// Its id.
    pub id: TeamId,
    /// Its display name.
    pub name: String,
    /// The unit it belongs to.
    pub unit: UnitId,
    /// Its kind.
    #[serde(default)]
    pub kind: TeamKind,
    /// Where it sets out from.
    pub base: Location,
    /// How far from its base it serves, in km.
    pub reach_km: f64,
    /// Its skills (each also satisfies its broader categories).
    pub skills: Vec<SkillId>,
    /// Number of volunteers.
    pub members: u32,
    /// How many requests it can hold at once.
    pub capacity: u32,
    /// How many requests it holds now.
    #[serde(default)]
    pub load: u32,
    /// When it can serve; absent means at any time.
    #[serde(default = "AvailabilitySpec::always")]
    pub availability: AvailabilitySpec,
    /// Reputation in [0, 1]; absent means the policy's prior.
    #[serde(default)]
    pub reputation: Option<f64>,
    /// Requests served in the recent period (for fairness).
    #[serde(default)]
    pub recent_jobs: u32,
    /// Households it has served before (for continuity).
    #[serde(default)]
    pub households_served: Vec<HouseholdId>,
    /// Households it is paired with one-to-one (结对).
    #[serde(default)]
    pub paired_households: Vec<HouseholdId>,
    /// Whether it takes offers at all.
    #[serde(default = "yes")]
    pub active: bool,
}

/// A change to a team's declaration while the engine runs; each field given
/// replaces the team's, the others stay.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, BorshSerialize, BorshDeserialize)]
#[serde(deny_unknown_fields)]
pub struct TeamChange {
    /// New skills (each also satisfies its broader categories).
    #[serde(default)]
    pub skills: Option<Vec<SkillId>>,
    /// A new base.
    #[serde(default)]
    pub base: Option<Location>,
    /// A new reach, in km.
    #[serde(default)]
    pub reach_km: Option<f64>,
    /// A new capacity (requests held at once); below the present load, the
    /// team keeps what it holds and gets no offer until it is under it.
    #[serde(default)]
    pub capacity: Option<u32>,
    /// New availability.
    #[serde(default)]
    pub availability: Option<AvailabilitySpec>,
}

impl TeamChange {
    /// Whether nothing is changed.
    pub fn is_empty(&self) -> bool {
        self.skills.is_none()
            && self.base.is_none()
            && self.reach_km.is_none()
            && self.capacity.is_none()
            && self.availability.is_none()
    }
}

fn yes() -> bool {
    true
}

/// Why a team declaration is invalid. `field` names the offending field.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("team {team}, field `{field}`: {problem}")]
pub struct TeamError {
    /// The team.
    pub team: TeamId,
    /// The field at fault.
    pub field: &'static str,
    /// What is wrong.
    pub problem: TeamProblem,
}

/// What is wrong with a team field.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum TeamProblem {
    /// Another team has this id.
    #[error("a team with this id already exists")]
    DuplicateId,
    /// The unit is not in the hierarchy.
    #[error("unknown unit {0}")]
    UnknownUnit(UnitId),
    /// A skill is not in the taxonomy.
    #[error("{0}")]
    Skill(#[from] crate::skills::SkillError),
    /// The reach is not a finite number in (0, MAX_REACH_KM].
    #[error("reach {0} km is not in (0, {MAX_REACH_KM}]")]
    BadReach(f64),
    /// A count that must be positive is zero.
    #[error("must be at least 1")]
    Zero,
    /// The current load exceeds the capacity.
    #[error("load {load} exceeds capacity {capacity}")]
    LoadOverCapacity {
        /// The load.
        load: u32,
        /// The capacity.
        capacity: u32,
    },
    /// The reputation is not in [0, 1].
    #[error("reputation {0} is not in [0, 1]")]
    BadReputation(f64),
    /// The availability declaration is invalid.
    #[error("{0}")]
    Availability(#[from] crate::time::AvailabilityError),
    /// The team is not known to the index.
    #[error("no such team")]
    UnknownTeam,
}

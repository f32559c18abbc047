//! What a team remembers of the households it served: for the continuity term of the score,
//! each household with when it was last served, forgotten the memory policy's
//! `continuity_days` later (households declared in the team file are kept).

use chrono::{DateTime, Utc};

use crate::id::HouseholdId;
use crate::index::{TeamIdx, TeamIndex, TeamRecord};

/// A household a team served, and when last.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Served {
    /// The household.
    pub household: HouseholdId,
    /// When the team last served it; `None` for one declared in the team file, never forgotten.
    pub last: Option<DateTime<Utc>>,
}

/// The instant a service is recorded at: to the second, as a snapshot keeps it.
pub(crate) fn served_time(at: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp(at.timestamp(), 0).unwrap_or(at)
}

/// Sorts a team's served households by household, keeping one entry each: the declared one
/// (`None`, never forgotten) if any, else the latest.
pub(super) fn sort_served(mut v: Vec<Served>) -> Vec<Served> {
    v.sort_unstable_by(|a, b| {
        a.household.cmp(&b.household).then(b.last.is_none().cmp(&a.last.is_none())).then(b.last.cmp(&a.last))
    });
    v.dedup_by(|later, first| later.household == first.household);
    v
}

impl TeamRecord {
    /// Whether the team has served `household` (within the memory policy's `continuity_days`, or
    /// as declared in the team file).
    pub fn has_served(&self, household: &HouseholdId) -> bool {
        self.households_served.binary_search_by(|s| s.household.cmp(household)).is_ok()
    }
}

impl TeamIndex {
    /// Forgets that the team at `idx` served `household`, if it was last served at `at` (so a
    /// later service keeps it). Returns whether it was forgotten.
    ///
    /// # Panics
    /// If `idx` does not come from this index.
    pub fn forget_served(&mut self, idx: TeamIdx, household: &HouseholdId, at: DateTime<Utc>) -> bool {
        let served = &mut self.teams[idx.0 as usize].households_served;
        match served.binary_search_by(|s| s.household.cmp(household)) {
            Ok(i) if served[i].last == Some(at) => {
                served.remove(i);
                true
            }
            _ => false,
        }
    }
}

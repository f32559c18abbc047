//! The service catalog: what residents can ask for, and the skills each
//! service needs.

use serde::{Deserialize, Serialize};

use crate::id::{ServiceId, SkillId};

/// A service as described in a city file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceSpec {
    /// Its id.
    pub id: ServiceId,
    /// Its display name.
    pub name: String,
    /// The skills a team needs to serve it.
    pub skills: Vec<SkillId>,
    /// The usual length of one service, in minutes.
    pub default_duration_min: u32,
}

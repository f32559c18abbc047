//! Residents' requests (群众点单), validated against a city, and the private
//! contact data they carry.

use std::sync::Arc;

use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};

use crate::city::City;
use crate::geo::Location;
use crate::id::{HouseholdId, RequestId, ServiceId, SkillId, UnitId};
use crate::skills::SkillSet;
use crate::time::TimeWindow;
use crate::units::UnitIdx;

/// How urgent a request is.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    Default,
    BorshSerialize,
    BorshDeserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Urgency {
    /// Ordinary service.
    #[default]
    Normal,
    /// Needed soon; nearness weighs more.
    Urgent,
    /// Offered to several teams at once; first acceptance wins.
    Emergency,
}

/// Who the service is for.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    Default,
    BorshSerialize,
    BorshDeserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum BeneficiaryGroup {
    /// Any resident.
    #[default]
    General,
    /// Older people.
    Elderly,
    /// Children and minors (sensitive personal data).
    Children,
    /// People with disabilities.
    Disabled,
    /// Households in hardship (sensitive personal data).
    Hardship,
}

/// A resident's contact details: personal data shown in clear only to the
/// team that accepted the request. `Debug` prints them masked.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, BorshSerialize, BorshDeserialize)]
#[serde(deny_unknown_fields)]
pub struct Contact {
    /// Name.
    pub name: String,
    /// Phone number.
    pub phone: String,
    /// The community (village, neighbourhood) part of the address, shown masked.
    pub community: String,
    /// The rest of the address (building, door), never shown masked.
    pub detail: String,
}

/// The longest contact field accepted, in bytes.
pub const MAX_CONTACT_FIELD_LEN: usize = 500;

/// A field of a [`Contact`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[allow(missing_docs)]
pub enum ContactField {
    Name,
    Phone,
    Community,
    Detail,
}

/// A contact field longer than [`MAX_CONTACT_FIELD_LEN`] bytes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("contact field {field:?} is {len} bytes, at most {MAX_CONTACT_FIELD_LEN} are allowed")]
pub struct ContactError {
    /// The field.
    pub field: ContactField,
    /// Its length in bytes.
    pub len: usize,
}

impl Contact {
    /// Whether every field fits [`MAX_CONTACT_FIELD_LEN`].
    ///
    /// # Errors
    /// The first field too long.
    pub fn check(&self) -> Result<(), ContactError> {
        let fields = [
            (ContactField::Name, &self.name),
            (ContactField::Phone, &self.phone),
            (ContactField::Community, &self.community),
            (ContactField::Detail, &self.detail),
        ];
        match fields.into_iter().find(|(_, v)| v.len() > MAX_CONTACT_FIELD_LEN) {
            Some((field, v)) => Err(ContactError { field, len: v.len() }),
            None => Ok(()),
        }
    }

    /// The contact with personal data masked: `138****1234`, the address cut
    /// to community level, the name to its first character.
    pub fn masked(&self) -> MaskedContact {
        MaskedContact { name: mask_name(&self.name), phone: mask_phone(&self.phone), community: self.community.clone() }
    }
}

impl Contact {
    /// The same contact with every field masked and the address detail dropped,
    /// for records that keep the contact's shape but leave the process.
    pub fn masked_contact(&self) -> Contact {
        Contact {
            name: mask_name(&self.name),
            phone: mask_phone(&self.phone),
            community: self.community.clone(),
            detail: String::new(),
        }
    }
}

impl std::fmt::Debug for Contact {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.masked().fmt(f)
    }
}

/// A masked contact, safe for logs, events, reports and other teams.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MaskedContact {
    /// First character of the name, then `*`.
    pub name: String,
    /// The phone with its middle digits masked.
    pub phone: String,
    /// The community only.
    pub community: String,
}

/// Masks a phone number, keeping the first three and last four digits.
pub fn mask_phone(phone: &str) -> String {
    let chars: Vec<char> = phone.chars().collect();
    if chars.len() <= 7 {
        return "*".repeat(chars.len());
    }
    let head: String = chars[..3].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{head}****{tail}")
}

fn mask_name(name: &str) -> String {
    let mut it = name.chars();
    match it.next() {
        Some(c) => format!("{c}{}", "*".repeat(it.count().max(1))),
        None => String::new(),
    }
}

/// A request as submitted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, BorshSerialize, BorshDeserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestSpec {
    /// Its id.
    pub id: RequestId,
    /// The unit (usually a station) it was made at.
    pub unit: UnitId,
    /// The service asked for.
    pub service: ServiceId,
    /// Skills needed beyond the service's own.
    #[serde(default)]
    pub extra_skills: Vec<SkillId>,
    /// Where the service takes place.
    pub location: Location,
    /// When it may take place.
    pub window: TimeWindow,
    /// Expected length in minutes; absent means the service's default.
    #[serde(default)]
    pub duration_min: Option<u32>,
    /// How urgent it is.
    #[serde(default)]
    pub urgency: Urgency,
    /// Who it is for.
    #[serde(default)]
    pub group: BeneficiaryGroup,
    /// The household served, if any.
    #[serde(default)]
    pub household: Option<HouseholdId>,
    /// The requester's contact details.
    pub contact: Contact,
}

/// Why a request is rejected at submission.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RequestError {
    /// The unit is not in the hierarchy.
    #[error("request {request}: unknown unit {unit}")]
    UnknownUnit {
        /// The request.
        request: RequestId,
        /// The unit.
        unit: UnitId,
    },
    /// The service is not in the catalog.
    #[error("request {request}: unknown service {service}")]
    UnknownService {
        /// The request.
        request: RequestId,
        /// The service.
        service: ServiceId,
    },
    /// An extra skill is not in the taxonomy.
    #[error("request {request}: unknown skill {skill}")]
    UnknownSkill {
        /// The request.
        request: RequestId,
        /// The skill.
        skill: SkillId,
    },
    /// A contact field is too long.
    #[error("request {request}: {error}")]
    BadContact {
        /// The request.
        request: RequestId,
        /// Which field, and its length.
        error: ContactError,
    },
    /// The duration is zero or longer than the window.
    #[error("request {request}: duration {duration_min} min does not fit a window of {window_min} min")]
    BadDuration {
        /// The request.
        request: RequestId,
        /// The duration.
        duration_min: u32,
        /// The window length.
        window_min: i64,
    },
}

/// A validated request, with its unit and skills resolved against a city.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    spec: Arc<RequestSpec>,
    unit: UnitIdx,
    skills: SkillSet,
    duration_min: u32,
}

impl Request {
    /// Validates a submission against the city.
    pub fn new(spec: RequestSpec, city: &City) -> Result<Self, RequestError> {
        Self::from_shared(Arc::new(spec), city)
    }

    /// Validates a shared submission (an event's) without copying it.
    pub fn from_shared(spec: Arc<RequestSpec>, city: &City) -> Result<Self, RequestError> {
        spec.contact.check().map_err(|error| RequestError::BadContact { request: spec.id.clone(), error })?;
        let unit = city
            .units()
            .idx(&spec.unit)
            .ok_or_else(|| RequestError::UnknownUnit { request: spec.id.clone(), unit: spec.unit.clone() })?;
        let service = city
            .service(&spec.service)
            .ok_or_else(|| RequestError::UnknownService { request: spec.id.clone(), service: spec.service.clone() })?;
        let mut skills = city.skills().set_of(&service.skills).expect("catalog skills are validated at load");
        for s in &spec.extra_skills {
            let idx = city
                .skills()
                .idx(s)
                .map_err(|_| RequestError::UnknownSkill { request: spec.id.clone(), skill: s.clone() })?;
            skills.insert(idx);
        }
        let duration_min = spec.duration_min.unwrap_or(service.default_duration_min);
        let window_min = spec.window.minutes();
        if duration_min == 0 || i64::from(duration_min) > window_min {
            return Err(RequestError::BadDuration { request: spec.id.clone(), duration_min, window_min });
        }
        Ok(Self { spec, unit, skills, duration_min })
    }

    /// The request as submitted.
    pub fn spec(&self) -> &RequestSpec {
        &self.spec
    }

    /// The request as submitted, shared.
    pub fn shared_spec(&self) -> &Arc<RequestSpec> {
        &self.spec
    }

    /// Its id.
    pub fn id(&self) -> &RequestId {
        &self.spec.id
    }

    /// Its unit.
    pub fn unit(&self) -> UnitIdx {
        self.unit
    }

    /// The skills it needs (service skills plus extras, not their closure).
    pub fn skills(&self) -> SkillSet {
        self.skills
    }

    /// Its expected length in minutes.
    pub fn duration_min(&self) -> u32 {
        self.duration_min
    }

    /// Where it takes place.
    pub fn location(&self) -> Location {
        self.spec.location
    }

    /// When it may take place.
    pub fn window(&self) -> TimeWindow {
        self.spec.window
    }

    /// How urgent it is.
    pub fn urgency(&self) -> Urgency {
        self.spec.urgency
    }

    /// The household served.
    pub fn household(&self) -> Option<&HouseholdId> {
        self.spec.household.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_personal_data() {
        assert_eq!(mask_phone("13812341234"), "138****1234");
        assert_eq!(mask_phone("12345"), "*****");
        let c = Contact {
            name: "王小明".into(),
            phone: "13912345678".into(),
            community: "新华区建设北街社区".into(),
            detail: "3号楼2单元501".into(),
        };
        let dbg = format!("{c:?}");
        assert!(!dbg.contains("13912345678") && !dbg.contains("501") && !dbg.contains("小明"), "{dbg}");
        assert!(dbg.contains("139****5678"));
    }
}

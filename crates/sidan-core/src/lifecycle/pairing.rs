//! One-to-one pairings (结对): a team bound to a household, serving it on a
//! schedule given as an iCalendar recurrence rule (RFC 5545 `RRULE`).
//!
//! Each slot of the schedule becomes one request, made `lead_h` hours ahead
//! and offered to the paired team first; if that team declines or cannot
//! serve, the request goes through normal dispatch. A slot produces its
//! request exactly once: the request id is derived from the pairing and the
//! slot, and the pairing's cursor only moves forward.

use borsh::{BorshDeserialize, BorshSerialize};
use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use crate::geo::Location;
use crate::id::{HouseholdId, PairingId, RequestId, ServiceId, TeamId, UnitId};
use crate::request::{BeneficiaryGroup, Contact, RequestSpec, Urgency};
use crate::time::TimeWindow;

/// The longest pairing id: a slot's request id appends `:YYYYMMDDTHHMM`.
pub const MAX_PAIRING_ID_LEN: usize = 48;

/// The most slots one tick turns into requests (the rest wait for the next tick).
pub const MAX_SLOTS_PER_TICK: usize = 16;

fn default_lead_h() -> u32 {
    24
}

/// A pairing as an admin declares it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, BorshSerialize, BorshDeserialize)]
#[serde(deny_unknown_fields)]
pub struct PairingSpec {
    /// Its id (at most [`MAX_PAIRING_ID_LEN`] bytes).
    pub id: PairingId,
    /// The team.
    pub team: TeamId,
    /// The household.
    pub household: HouseholdId,
    /// The unit the visits' requests are made at.
    pub unit: UnitId,
    /// The service given at each visit.
    pub service: ServiceId,
    /// Where the household lives.
    pub location: Location,
    /// The household's contact (masked outside the serving team).
    pub contact: Contact,
    /// Who the household is.
    #[serde(default)]
    pub group: BeneficiaryGroup,
    /// The recurrence, an RFC 5545 `RRULE` value such as `FREQ=WEEKLY;BYDAY=SA`.
    pub rule: String,
    /// The local start of the first slot (the rule's `DTSTART`), in the unit's time zone.
    #[borsh(
        serialize_with = "crate::binary::naive::serialize",
        deserialize_with = "crate::binary::naive::deserialize"
    )]
    pub first: NaiveDateTime,
    /// The length of each slot's window, in minutes.
    pub window_min: u32,
    /// Expected length of each visit; the service's default when absent.
    #[serde(default)]
    pub duration_min: Option<u32>,
    /// How many hours before a slot its request is made.
    #[serde(default = "default_lead_h")]
    pub lead_h: u32,
}

/// Why a pairing is rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ScheduleError {
    /// The id is too long to derive request ids from.
    #[error("pairing id is {len} bytes long, at most {MAX_PAIRING_ID_LEN} are allowed")]
    IdTooLong {
        /// Its length.
        len: usize,
    },
    /// The rule does not parse or validate.
    #[error("rule {rule:?}: {problem}")]
    BadRule {
        /// The rule.
        rule: String,
        /// What is wrong.
        problem: String,
    },
    /// The first slot's local time does not exist in the time zone (a DST gap).
    #[error("first slot {first} does not exist in {tz}")]
    NoSuchLocalTime {
        /// The local time.
        first: NaiveDateTime,
        /// The zone.
        tz: Tz,
    },
    /// The window is empty or longer than a day.
    #[error("window_min {0} is not in 1..=1440")]
    BadWindow(u32),
    /// The lead time is longer than 30 days.
    #[error("lead_h {0} is not in 0..=720")]
    BadLead(u32),
}

/// A compiled schedule.
#[derive(Debug, Clone)]
pub struct Schedule {
    set: rrule::RRuleSet,
    tz: Tz,
    window_min: u32,
    lead: chrono::Duration,
}

impl PartialEq for Schedule {
    fn eq(&self, other: &Self) -> bool {
        self.set.to_string() == other.set.to_string()
            && self.tz == other.tz
            && self.window_min == other.window_min
            && self.lead == other.lead
    }
}

impl Schedule {
    /// Compiles a pairing's schedule in the time zone `tz` of its unit.
    ///
    /// # Errors
    /// A bad id length, rule, first slot, window or lead time.
    pub fn compile(spec: &PairingSpec, tz: Tz) -> Result<Self, ScheduleError> {
        if spec.id.as_str().len() > MAX_PAIRING_ID_LEN {
            return Err(ScheduleError::IdTooLong { len: spec.id.as_str().len() });
        }
        if spec.window_min == 0 || spec.window_min > 1440 {
            return Err(ScheduleError::BadWindow(spec.window_min));
        }
        if spec.lead_h > 720 {
            return Err(ScheduleError::BadLead(spec.lead_h));
        }
        let bad = |problem: String| ScheduleError::BadRule { rule: spec.rule.clone(), problem };
        if spec.rule.contains(['\n', '\r', ':']) {
            return Err(bad("give only the RRULE value, like FREQ=WEEKLY;BYDAY=SA".into()));
        }
        let rtz = rrule::Tz::Tz(tz);
        let start = rtz
            .from_local_datetime(&spec.first)
            .single()
            .ok_or(ScheduleError::NoSuchLocalTime { first: spec.first, tz })?;
        let rule: rrule::RRule<rrule::Unvalidated> =
            spec.rule.parse().map_err(|e: rrule::RRuleError| bad(e.to_string()))?;
        let set = rule.build(start).map_err(|e| bad(e.to_string()))?;
        Ok(Self { set, tz, window_min: spec.window_min, lead: chrono::Duration::hours(i64::from(spec.lead_h)) })
    }

    /// The first slot strictly after `after` (or the first slot at all), if the rule has one.
    pub fn next_slot(&self, after: Option<DateTime<Utc>>) -> Option<DateTime<Utc>> {
        // `all` is inclusive of `after`, so ask for two and keep the first strictly later one.
        let set = match after {
            Some(t) => self.set.clone().after(t.with_timezone(&rrule::Tz::Tz(self.tz))),
            None => self.set.clone(),
        };
        set.all(2).dates.into_iter().map(|d| d.with_timezone(&Utc)).find(|d| after.is_none_or(|a| *d > a))
    }

    /// When the request for `slot` is made.
    pub fn release_at(&self, slot: DateTime<Utc>) -> DateTime<Utc> {
        slot - self.lead
    }

    /// The window of the visit at `slot`.
    pub fn window(&self, slot: DateTime<Utc>) -> Option<TimeWindow> {
        TimeWindow::new(slot, slot + chrono::Duration::minutes(i64::from(self.window_min))).ok()
    }
}

/// The id of the request made for `slot` of `pairing`: `<pairing>:<YYYYMMDDTHHMM>` (UTC).
pub fn visit_request_id(pairing: &PairingId, slot: DateTime<Utc>) -> RequestId {
    // Pairing ids are at most MAX_PAIRING_ID_LEN bytes of id characters, so this is a valid id.
    RequestId::new(&format!("{pairing}:{}", slot.format("%Y%m%dT%H%M")))
        .unwrap_or_else(|_| unreachable!("pairing ids are validated at creation"))
}

/// Whether `id` has the form of a visit's id, `<pairing>:<YYYYMMDDTHHMM>`: such ids are kept
/// for the pairings' visits, so a visit never meets a resident's request under its id.
pub fn is_visit_request_id(id: &RequestId) -> bool {
    let Some((pairing, slot)) = id.as_str().rsplit_once(':') else { return false };
    let b = slot.as_bytes();
    !pairing.is_empty() && b.len() == 13 && b[8] == b'T' && b[..8].iter().chain(&b[9..]).all(u8::is_ascii_digit)
}

/// The request a slot produces.
pub fn visit_request(spec: &PairingSpec, schedule: &Schedule, slot: DateTime<Utc>) -> Option<RequestSpec> {
    Some(RequestSpec {
        id: visit_request_id(&spec.id, slot),
        unit: spec.unit.clone(),
        service: spec.service.clone(),
        extra_skills: Vec::new(),
        location: spec.location,
        window: schedule.window(slot)?,
        duration_min: spec.duration_min,
        urgency: Urgency::Normal,
        group: spec.group,
        household: Some(spec.household.clone()),
        contact: spec.contact.clone(),
    })
}

/// A pairing's state, folded from its stream.
#[derive(Debug, Clone, PartialEq)]
pub struct PairingState {
    /// Its stream, `pairing/<id>`.
    pub stream: crate::lifecycle::StreamId,
    /// As declared.
    pub spec: PairingSpec,
    /// Its schedule.
    pub schedule: Schedule,
    /// Whether it still binds the team and household.
    pub active: bool,
    /// The last slot handled (scheduled or skipped).
    pub cursor: Option<DateTime<Utc>>,
    /// The next slot not yet handled.
    pub next: Option<DateTime<Utc>>,
    /// Events in its stream.
    pub version: u64,
    /// When the stream next needs a tick (kept in step with the wake-up queue).
    pub(crate) wake: Option<DateTime<Utc>>,
}

impl PairingState {
    /// When the next slot's request is due, if the pairing is active.
    pub fn wake_at(&self) -> Option<DateTime<Utc>> {
        if !self.active {
            return None;
        }
        self.next.map(|s| self.schedule.release_at(s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(rule: &str) -> PairingSpec {
        PairingSpec {
            id: PairingId::new("p1").expect("id"),
            team: TeamId::new("t1").expect("id"),
            household: HouseholdId::new("h1").expect("id"),
            unit: UnitId::new("s1").expect("id"),
            service: ServiceId::new("home-care").expect("id"),
            location: Location::new(38.3, 116.8).expect("loc"),
            contact: Contact {
                name: "李".into(),
                phone: "13800001111".into(),
                community: "c".into(),
                detail: "d".into(),
            },
            group: BeneficiaryGroup::Elderly,
            rule: rule.into(),
            first: NaiveDateTime::parse_from_str("2026-12-05T09:00:00", "%Y-%m-%dT%H:%M:%S").expect("time"),
            window_min: 120,
            duration_min: Some(60),
            lead_h: 24,
        }
    }

    #[test]
    fn weekly_slots_in_local_time() {
        let s = Schedule::compile(&spec("FREQ=WEEKLY;BYDAY=SA"), chrono_tz::Asia::Shanghai).expect("compiles");
        let first = s.next_slot(None).expect("a first slot");
        assert_eq!(first.to_rfc3339(), "2026-12-05T01:00:00+00:00");
        let second = s.next_slot(Some(first)).expect("a second slot");
        assert_eq!(second - first, chrono::Duration::days(7));
        assert_eq!(s.release_at(first).to_rfc3339(), "2026-12-04T01:00:00+00:00");
        assert_eq!(visit_request_id(&PairingId::new("p1").expect("id"), first).as_str(), "p1:20261205T0100");
    }

    #[test]
    fn bad_rules_are_typed_errors() {
        let tz = chrono_tz::Asia::Shanghai;
        assert!(matches!(Schedule::compile(&spec("FREQ=SOMETIMES"), tz), Err(ScheduleError::BadRule { .. })));
        assert!(matches!(Schedule::compile(&spec("DTSTART:x"), tz), Err(ScheduleError::BadRule { .. })));
        let mut s = spec("FREQ=DAILY");
        s.window_min = 0;
        assert_eq!(Schedule::compile(&s, tz).err(), Some(ScheduleError::BadWindow(0)));
        let mut s = spec("FREQ=DAILY;COUNT=2");
        s.id = PairingId::new(&"p".repeat(49)).expect("id");
        assert_eq!(Schedule::compile(&s, tz).err(), Some(ScheduleError::IdTooLong { len: 49 }));
        let s = Schedule::compile(&spec("FREQ=DAILY;COUNT=2"), tz).expect("compiles");
        let a = s.next_slot(None).expect("first");
        let b = s.next_slot(Some(a)).expect("second");
        assert_eq!(s.next_slot(Some(b)), None);
    }
}

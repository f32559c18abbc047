//! A small, hand-made city for tests, examples and embedders' own tests.
//!
//! ```text
//! cz (city)
//! ├── c1 (county)
//! │   ├── c1-i1 (institute)
//! │   │   ├── c1-i1-s1 (station)   teams c1-s1-a, c1-s1-b (elder care, capacity 2); r1, r2 (rescue)
//! │   │   └── c1-i1-s2 (station)   team c1-s2 (elder care); r3 (rescue)
//! │   └── c1-i2 (institute)
//! │       ├── c1-i2-s1 (station)   team c1-i2 (elder care); r4 (rescue)
//! │       └── c1-i2-s2 (station)   no team
//! └── c2 (county)
//!     └── c2-i1 (institute)
//!         └── c2-i1-s1 (station)   team c2 (elder care); r5, r6 (rescue)
//! ```
//!
//! Every team is based within a few kilometres of [`HOME`], reaches 30 km and
//! is always available. Services: `home-care` (needs `elder-care`, a
//! narrower `care`), `rescue` (needs `rescue`), `haircut` (needs `barber`,
//! which no team has).

use chrono::{DateTime, Duration, TimeZone, Utc};

use crate::city::{City, CityFile};
use crate::geo::Location;
use crate::id::{HouseholdId, RequestId, ServiceId, UnitId};
use crate::index::TeamIndex;
use crate::request::{BeneficiaryGroup, Contact, RequestSpec, Urgency};
use crate::time::TimeWindow;

/// The place every team of the tiny city is near (Cangzhou).
pub const HOME: (f64, f64) = (38.304, 116.839);

/// Monday 2026-11-30 08:00 Beijing time: the tests' "now".
pub fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 30, 0, 0, 0).single().unwrap_or_default()
}

/// The tiny city file (see the module docs).
pub fn tiny_city_file() -> CityFile {
    let unit = |id: &str, kind: &str, parent: Option<&str>| serde_json::json!({"id": id, "name": id, "kind": kind, "parent": parent});
    let team = |id: &str, unit: &str, skill: &str, capacity: u32, i: f64| {
        serde_json::json!({
            "id": id, "name": id, "unit": unit,
            "base": {"lat": HOME.0 + 0.004 * i, "lon": HOME.1 - 0.003 * i},
            "reach_km": 30.0, "skills": [skill], "members": 6, "capacity": capacity,
        })
    };
    let v = serde_json::json!({
        "units": [
            unit("cz", "city", None),
            unit("c1", "county", Some("cz")),
            unit("c1-i1", "institute", Some("c1")),
            unit("c1-i1-s1", "station", Some("c1-i1")),
            unit("c1-i1-s2", "station", Some("c1-i1")),
            unit("c1-i2", "institute", Some("c1")),
            unit("c1-i2-s1", "station", Some("c1-i2")),
            unit("c1-i2-s2", "station", Some("c1-i2")),
            unit("c2", "county", Some("cz")),
            unit("c2-i1", "institute", Some("c2")),
            unit("c2-i1-s1", "station", Some("c2-i1")),
        ],
        "skills": [
            {"id": "care", "name": "care"},
            {"id": "elder-care", "name": "elder care", "broader": ["care"]},
            {"id": "rescue", "name": "rescue"},
            {"id": "barber", "name": "barber"},
        ],
        "services": [
            {"id": "home-care", "name": "home care", "skills": ["elder-care"], "default_duration_min": 60},
            {"id": "rescue", "name": "emergency rescue", "skills": ["rescue"], "default_duration_min": 90},
            {"id": "haircut", "name": "free haircut", "skills": ["barber"], "default_duration_min": 30},
        ],
        "teams": [
            team("c1-s1-a", "c1-i1-s1", "elder-care", 2, 0.0),
            team("c1-s1-b", "c1-i1-s1", "elder-care", 2, 1.0),
            team("c1-s2", "c1-i1-s2", "elder-care", 1, 2.0),
            team("c1-i2", "c1-i2-s1", "elder-care", 1, 3.0),
            team("c2", "c2-i1-s1", "elder-care", 1, 4.0),
            team("r1", "c1-i1-s1", "rescue", 1, 0.5),
            team("r2", "c1-i1-s1", "rescue", 1, 1.5),
            team("r3", "c1-i1-s2", "rescue", 1, 2.5),
            team("r4", "c1-i2-s1", "rescue", 1, 3.5),
            team("r5", "c2-i1-s1", "rescue", 1, 4.5),
            team("r6", "c2-i1-s1", "rescue", 1, 5.5),
        ],
    });
    serde_json::from_value(v).unwrap_or_else(|e| unreachable!("the tiny city is valid: {e}"))
}

/// The tiny city and its team index.
pub fn tiny_city() -> (City, TeamIndex) {
    tiny_city_file().build().unwrap_or_else(|e| unreachable!("the tiny city is valid: {e}"))
}

/// A request for `service` at `unit`, near [`HOME`], whose window opens
/// `start_h` hours after [`t0`] and lasts `len_h` hours.
pub fn request(id: &str, unit: &str, service: &str, urgency: Urgency, start_h: i64, len_h: i64) -> RequestSpec {
    let start = t0() + Duration::hours(start_h);
    RequestSpec {
        id: RequestId::new(id).unwrap_or_else(|e| unreachable!("test ids are valid: {e}")),
        unit: UnitId::new(unit).unwrap_or_else(|e| unreachable!("test ids are valid: {e}")),
        service: ServiceId::new(service).unwrap_or_else(|e| unreachable!("test ids are valid: {e}")),
        extra_skills: Vec::new(),
        location: Location::new(HOME.0 + 0.001, HOME.1 + 0.001).unwrap_or_else(|e| unreachable!("{e}")),
        window: TimeWindow::new(start, start + Duration::hours(len_h)).unwrap_or_else(|e| unreachable!("{e}")),
        duration_min: None,
        urgency,
        group: BeneficiaryGroup::Elderly,
        household: Some(HouseholdId::new(&format!("h-{id}")).unwrap_or_else(|e| unreachable!("{e}"))),
        contact: Contact {
            name: "张桂兰".into(),
            phone: "13812345678".into(),
            community: "运河区水月寺社区".into(),
            detail: "7号楼3单元402".into(),
        },
    }
}

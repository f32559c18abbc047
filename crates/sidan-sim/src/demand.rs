//! Residents' requests: a seeded stream spread over the stations, weighted by
//! the catalog's relative demand, in daytime windows.

use chrono::{DateTime, Duration, TimeZone, Utc};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sidan_core::city::City;
use sidan_core::geo::Location;
use sidan_core::id::{HouseholdId, RequestId};
use sidan_core::request::{BeneficiaryGroup, Contact, RequestSpec, Urgency};
use sidan_core::time::TimeWindow;
use sidan_core::units::UnitKind;

use crate::catalog::SERVICES;

/// What requests to generate.
#[derive(Debug, Clone, PartialEq)]
pub struct DemandConfig {
    /// The seed.
    pub seed: u64,
    /// Number of requests.
    pub requests: usize,
    /// The first day windows may start on (local midnight, UTC+8).
    pub start: DateTime<Utc>,
    /// Windows start within this many days of `start`.
    pub days: u32,
    /// Share of urgent requests.
    pub urgent_share: f64,
    /// Share of emergencies.
    pub emergency_share: f64,
    /// Number of distinct households.
    pub households: u32,
}

impl Default for DemandConfig {
    fn default() -> Self {
        Self {
            seed: 7,
            requests: 100,
            start: Utc.with_ymd_and_hms(2026, 11, 30, 16, 0, 0).single().expect("valid date"),
            days: 7,
            urgent_share: 0.08,
            emergency_share: 0.02,
            households: 5_000,
        }
    }
}

const KM_PER_DEG: f64 = 111.195;

/// Generates requests at the city's stations (each request within 3 km of its station's office).
pub fn generate_requests(city: &City, cfg: &DemandConfig) -> Vec<RequestSpec> {
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
    let stations: Vec<_> = city
        .units()
        .iter()
        .filter(|(_, u)| u.kind == UnitKind::Station && u.location.is_some())
        .map(|(_, u)| (u.id.clone(), u.location.expect("filtered on location")))
        .collect();
    assert!(!stations.is_empty(), "demand needs stations with locations");
    let total_weight: u32 = SERVICES.iter().map(|s| s.4).sum();
    (0..cfg.requests)
        .map(|i| {
            let (unit, at) = stations[rng.random_range(0..stations.len())].clone();
            let lat = (at.lat() + rng.random_range(-3.0..3.0) / KM_PER_DEG).clamp(-89.9, 89.9);
            let lon = at.lon() + rng.random_range(-3.0..3.0) / (KM_PER_DEG * lat.to_radians().cos());
            let location = Location::new(lat, (lon + 540.0).rem_euclid(360.0) - 180.0).expect("in range");
            let mut pick = rng.random_range(0..total_weight);
            let service = SERVICES
                .iter()
                .find(|s| {
                    if pick < s.4 {
                        return true;
                    }
                    pick -= s.4;
                    false
                })
                .expect("pick is below the total weight");
            let u: f64 = rng.random();
            let urgency = if service.0 == "emergency-rescue" || u < cfg.emergency_share {
                Urgency::Emergency
            } else if u < cfg.emergency_share + cfg.urgent_share {
                Urgency::Urgent
            } else {
                Urgency::Normal
            };
            let day = rng.random_range(0..cfg.days.max(1));
            let start = cfg.start + Duration::days(i64::from(day)) + Duration::hours(rng.random_range(7..19));
            let hours = if urgency == Urgency::Normal { rng.random_range(3..8) } else { 4 };
            // The window always holds the service's usual length, plus an hour.
            let hours = hours.max(i64::from(service.3.div_ceil(60)) + 1);
            let window = TimeWindow::new(start, start + Duration::hours(hours)).expect("positive and short");
            let household = rng.random_range(0..cfg.households.max(1));
            let community = format!("{unit} community");
            RequestSpec {
                id: format!("r{i:07}").parse::<RequestId>().expect("valid id"),
                unit,
                service: service.0.parse().expect("catalog ids are valid"),
                extra_skills: Vec::new(),
                location,
                window,
                duration_min: None,
                urgency,
                group: match service.0 {
                    "elderly-day-care" | "home-care" => BeneficiaryGroup::Elderly,
                    "weekend-childcare" | "exam-day-support" => BeneficiaryGroup::Children,
                    "hardship-aid" => BeneficiaryGroup::Hardship,
                    _ => BeneficiaryGroup::General,
                },
                household: Some(format!("h{household:06}").parse::<HouseholdId>().expect("valid id")),
                contact: Contact {
                    name: "居民".into(),
                    phone: format!("13{:09}", rng.random_range(0..1_000_000_000u64)),
                    community,
                    detail: format!("Building {}, door {}", rng.random_range(1..30), rng.random_range(101..1802)),
                },
            }
        })
        .collect()
}

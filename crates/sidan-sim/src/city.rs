//! A seeded city: counties on a grid, institutes and stations clustered
//! inside them, and teams based around the stations.
//!
//! The area grows with the number of teams at a fixed density (Cangzhou has
//! about 6,000 teams on 14,000 km², 0.42 per km²), so a query sees about the
//! same number of nearby teams in a county and in a province-sized instance.

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sidan_core::city::CityFile;
use sidan_core::geo::Location;
use sidan_core::id::{SkillId, TeamId, UnitId};
use sidan_core::team::{TeamKind, TeamSpec};
use sidan_core::time::{AvailabilitySpec, ClockTime, DatedException, Day, WeeklySlot};
use sidan_core::units::{UnitKind, UnitSpec};

use crate::catalog::{service_specs, skill_specs};

/// What city to generate.
#[derive(Debug, Clone, PartialEq)]
pub struct CityConfig {
    /// The seed.
    pub seed: u64,
    /// Number of teams.
    pub teams: usize,
    /// Number of counties; `None` means one per 370 teams (at least one).
    pub counties: Option<usize>,
    /// Institutes per county.
    pub institutes_per_county: usize,
    /// Stations per institute.
    pub stations_per_institute: usize,
    /// Teams per km².
    pub density_per_km2: f64,
    /// Centre of the city.
    pub center: (f64, f64),
}

impl Default for CityConfig {
    fn default() -> Self {
        Self {
            seed: 1,
            teams: 370,
            counties: None,
            institutes_per_county: 6,
            stations_per_institute: 8,
            density_per_km2: 0.42,
            center: (38.30, 116.84),
        }
    }
}

const KM_PER_DEG: f64 = 111.195;

fn offset(center: (f64, f64), dx_km: f64, dy_km: f64) -> Location {
    let lat = (center.0 + dy_km / KM_PER_DEG).clamp(-89.9, 89.9);
    let lon = center.1 + dx_km / (KM_PER_DEG * lat.to_radians().cos());
    let lon = (lon + 540.0).rem_euclid(360.0) - 180.0;
    Location::new(lat, lon).expect("clamped into range")
}

fn ids(xs: &[&str]) -> Vec<SkillId> {
    xs.iter().map(|x| x.parse().expect("catalog ids are valid")).collect()
}

/// Skill profiles per team kind.
fn profile(kind: TeamKind, rng: &mut ChaCha8Rng) -> Vec<SkillId> {
    const STANDING: &[&[&str]] = &[
        &["elderly-care", "home-care", "hardship-aid"],
        &["health-check"],
        &["exam-support", "admissions-advice", "reading"],
        &["farming-tech"],
        &["lecture", "anti-fraud"],
        &["child-care", "reading"],
        &["street-patrol", "anti-fraud"],
        &["home-care", "elderly-care"],
        &["elderly-care", "emotional-support"],
    ];
    const TROUPE: &[&[&str]] = &[&["folk-arts"], &["folk-arts", "reading"], &["reading", "child-care"]];
    const PROFESSIONAL: &[&[&str]] =
        &[&["emergency-rescue"], &["psychological-counselling"], &["health-check", "psychological-counselling"]];
    const SPECIAL: &[&[&str]] = &[&["street-patrol"], &["hairdressing"], &["hairdressing", "elderly-care"]];
    let table = match kind {
        TeamKind::Standing => STANDING,
        TeamKind::Troupe => TROUPE,
        TeamKind::Professional => PROFESSIONAL,
        TeamKind::Special => SPECIAL,
    };
    ids(table[rng.random_range(0..table.len())])
}

fn slot(days: &[Day], start: u16, end: u16) -> WeeklySlot {
    WeeklySlot {
        days: days.to_vec(),
        start: ClockTime::from_minutes(start * 60).expect("hour in range"),
        end: ClockTime::from_minutes(end * 60).expect("hour in range"),
    }
}

fn availability(kind: TeamKind, rng: &mut ChaCha8Rng) -> AvailabilitySpec {
    use Day::*;
    let weekdays = [Mon, Tue, Wed, Thu, Fri];
    let weekend = [Sat, Sun];
    let mut spec = match (kind, rng.random_range(0..4u8)) {
        (TeamKind::Professional, 0 | 1) => AvailabilitySpec::always(),
        (_, 0) => AvailabilitySpec { weekly: vec![slot(&weekdays, 18, 21), slot(&weekend, 8, 18)], exceptions: vec![] },
        (_, 1) => AvailabilitySpec { weekly: vec![slot(&weekdays, 8, 17)], exceptions: vec![] },
        (_, 2) => AvailabilitySpec { weekly: vec![slot(&Day::ALL, 7, 21)], exceptions: vec![] },
        _ => {
            AvailabilitySpec { weekly: vec![slot(&[Mon, Wed, Fri], 9, 12), slot(&weekend, 14, 20)], exceptions: vec![] }
        }
    };
    if rng.random_bool(0.1) {
        // A blocked day in the first weeks of December 2026.
        let day = rng.random_range(1..15u32);
        let date = chrono::NaiveDate::from_ymd_opt(2026, 12, day).expect("valid date");
        spec.exceptions.push(DatedException {
            start: date.and_hms_opt(0, 0, 0).expect("valid time"),
            end: date.and_hms_opt(23, 59, 0).expect("valid time"),
            available: false,
        });
    }
    spec
}

/// Generates a city file: units with office locations, the standard
/// taxonomy and catalog, and `cfg.teams` teams.
pub fn generate_city(cfg: &CityConfig) -> CityFile {
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
    let n_counties = cfg.counties.unwrap_or((cfg.teams / 370).max(1)).max(1);
    let area_km2 = (cfg.teams.max(1) as f64 / cfg.density_per_km2).max(100.0);
    let side_km = area_km2.sqrt();
    let grid = (n_counties as f64).sqrt().ceil() as usize;
    let cell_km = side_km / grid as f64;
    let root: UnitId = "cz".parse().expect("valid id");
    let mut units = vec![UnitSpec {
        id: root.clone(),
        name: "City".into(),
        kind: UnitKind::City,
        parent: None,
        tz: None,
        location: Some(offset(cfg.center, 0.0, 0.0)),
    }];
    let mut stations: Vec<(UnitId, (f64, f64))> = Vec::new();
    let mut counties: Vec<(UnitId, (f64, f64))> = Vec::new();
    for c in 0..n_counties {
        let (gx, gy) = ((c % grid) as f64, (c / grid) as f64);
        let cx = (gx + 0.5) * cell_km - side_km / 2.0;
        let cy = (gy + 0.5) * cell_km - side_km / 2.0;
        let cid: UnitId = format!("cz-c{c:04}").parse().expect("valid id");
        units.push(UnitSpec {
            id: cid.clone(),
            name: format!("County {c}"),
            kind: UnitKind::County,
            parent: Some(root.clone()),
            tz: None,
            location: Some(offset(cfg.center, cx, cy)),
        });
        counties.push((cid.clone(), (cx, cy)));
        for i in 0..cfg.institutes_per_county {
            let ix = cx + rng.random_range(-0.45..0.45) * cell_km;
            let iy = cy + rng.random_range(-0.45..0.45) * cell_km;
            let iid: UnitId = format!("{cid}-i{i}").parse().expect("valid id");
            units.push(UnitSpec {
                id: iid.clone(),
                name: format!("Institute {c}.{i}"),
                kind: UnitKind::Institute,
                parent: Some(cid.clone()),
                tz: None,
                location: Some(offset(cfg.center, ix, iy)),
            });
            for s in 0..cfg.stations_per_institute {
                let spread = (cell_km / 4.0).min(6.0);
                let sx = ix + rng.random_range(-spread..spread);
                let sy = iy + rng.random_range(-spread..spread);
                let sid: UnitId = format!("{iid}-s{s}").parse().expect("valid id");
                units.push(UnitSpec {
                    id: sid.clone(),
                    name: format!("Station {c}.{i}.{s}"),
                    kind: UnitKind::Station,
                    parent: Some(iid.clone()),
                    tz: None,
                    location: Some(offset(cfg.center, sx, sy)),
                });
                stations.push((sid, (sx, sy)));
            }
        }
    }
    let mut teams = Vec::with_capacity(cfg.teams);
    for t in 0..cfg.teams {
        let kind = match rng.random_range(0..100u8) {
            0..65 => TeamKind::Standing,
            65..80 => TeamKind::Troupe,
            80..90 => TeamKind::Professional,
            _ => TeamKind::Special,
        };
        // Professional teams are county-level; the rest belong to a station.
        let (unit, (ux, uy)) = if kind == TeamKind::Professional {
            counties[rng.random_range(0..counties.len())].clone()
        } else {
            stations[rng.random_range(0..stations.len())].clone()
        };
        let base = offset(cfg.center, ux + rng.random_range(-2.0..2.0), uy + rng.random_range(-2.0..2.0));
        let reach_km: f64 = match kind {
            TeamKind::Standing => rng.random_range(4.0..10.0),
            TeamKind::Troupe => rng.random_range(3.0..8.0),
            TeamKind::Professional => rng.random_range(15.0..40.0),
            TeamKind::Special => rng.random_range(5.0..12.0),
        };
        let capacity = rng.random_range(1..=5u32);
        teams.push(TeamSpec {
            id: format!("t{t:07}").parse::<TeamId>().expect("valid id"),
            name: format!("Team {t}"),
            unit,
            kind,
            base,
            reach_km: (reach_km * 10.0).round() / 10.0,
            skills: profile(kind, &mut rng),
            members: rng.random_range(5..60),
            capacity,
            load: rng.random_range(0..=capacity),
            availability: availability(kind, &mut rng),
            reputation: rng.random_bool(0.8).then(|| (rng.random_range(0.3..1.0f64) * 100.0).round() / 100.0),
            recent_jobs: rng.random_range(0..12),
            households_served: Vec::new(),
            paired_households: Vec::new(),
            active: rng.random_bool(0.97),
        });
    }
    CityFile { units, skills: skill_specs(), services: service_specs(), teams }
}

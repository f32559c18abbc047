//! Locations, great-circle distance and travel time.
//!
//! A [`Location`] can only be built from finite, in-range coordinates, so the
//! rest of the engine never sees NaN. Distances use the haversine formula on a
//! sphere of the mean Earth radius; road-network travel times plug in through
//! the [`TravelTime`] trait.

use serde::{Deserialize, Serialize};

/// Mean Earth radius in metres (IUGG), used by every distance in the engine.
pub const EARTH_RADIUS_M: f64 = 6_371_008.8;

/// Why a pair of coordinates is not a location.
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum LocationError {
    /// The latitude is NaN or infinite.
    #[error("latitude {0} is not a finite number")]
    LatNotFinite(f64),
    /// The longitude is NaN or infinite.
    #[error("longitude {0} is not a finite number")]
    LonNotFinite(f64),
    /// The latitude lies outside [-90, 90].
    #[error("latitude {0} is outside [-90, 90]")]
    LatOutOfRange(f64),
    /// The longitude lies outside [-180, 180].
    #[error("longitude {0} is outside [-180, 180]")]
    LonOutOfRange(f64),
}

impl LocationError {
    /// Which coordinate is wrong: `"lat"` or `"lon"`, as a file names it.
    pub fn coordinate(&self) -> &'static str {
        match self {
            Self::LatNotFinite(_) | Self::LatOutOfRange(_) => "lat",
            Self::LonNotFinite(_) | Self::LonOutOfRange(_) => "lon",
        }
    }
}

/// Coordinates as a file writes them, `{"lat": …, "lon": …}`, not yet
/// checked: the wire form of a [`Location`], for formats whose errors name
/// the coordinate (a [`Location`] read from JSON directly is checked as it
/// is read).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LatLon {
    /// Latitude in degrees, −90..=90 once checked.
    pub lat: f64,
    /// Longitude in degrees, −180..=180 once checked.
    pub lon: f64,
}

impl LatLon {
    /// The location these coordinates name, if they are finite and in range.
    pub fn location(self) -> Result<Location, LocationError> {
        Location::new(self.lat, self.lon)
    }
}

impl From<Location> for LatLon {
    fn from(loc: Location) -> Self {
        Self { lat: loc.lat, lon: loc.lon }
    }
}

/// A validated WGS84 position in degrees.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Location {
    lat: f64,
    lon: f64,
}

impl Location {
    /// Makes a location, rejecting NaN, infinities and out-of-range values.
    pub fn new(lat: f64, lon: f64) -> Result<Self, LocationError> {
        if !lat.is_finite() {
            return Err(LocationError::LatNotFinite(lat));
        }
        if !lon.is_finite() {
            return Err(LocationError::LonNotFinite(lon));
        }
        if !(-90.0..=90.0).contains(&lat) {
            return Err(LocationError::LatOutOfRange(lat));
        }
        if !(-180.0..=180.0).contains(&lon) {
            return Err(LocationError::LonOutOfRange(lon));
        }
        Ok(Self { lat, lon })
    }

    /// Latitude in degrees.
    pub fn lat(self) -> f64 {
        self.lat
    }

    /// Longitude in degrees.
    pub fn lon(self) -> f64 {
        self.lon
    }

    /// The location to three decimals of a degree (about 110 m north–south): enough to see the
    /// neighbourhood, not the door. What a masked event shows of a resident's home.
    pub fn coarse(self) -> Location {
        let round = |v: f64| (v * 1000.0).round() / 1000.0;
        // Rounding keeps a value within its range (±90 and ±180 are multiples of 0.001).
        Self { lat: round(self.lat), lon: round(self.lon) }
    }

    /// Great-circle (haversine) distance to `other`, in metres.
    pub fn distance_m(self, other: Location) -> f64 {
        haversine_m(self.lat, self.lon, other.lat, other.lon)
    }
}

impl<'de> Deserialize<'de> for Location {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        LatLon::deserialize(d)?.location().map_err(serde::de::Error::custom)
    }
}

impl borsh::BorshSerialize for Location {
    fn serialize<W: std::io::Write>(&self, w: &mut W) -> std::io::Result<()> {
        borsh::BorshSerialize::serialize(&(self.lat, self.lon), w)
    }
}

impl borsh::BorshDeserialize for Location {
    fn deserialize_reader<R: std::io::Read>(r: &mut R) -> std::io::Result<Self> {
        let (lat, lon) = <(f64, f64) as borsh::BorshDeserialize>::deserialize_reader(r)?;
        Location::new(lat, lon).map_err(crate::binary::invalid)
    }
}

/// The point of the unit sphere at `loc` (x towards 0° E on the equator, z
/// towards the north pole). The chord between two such points never exceeds
/// the arc, so R-trees over them find everything within a distance by a
/// ball query padded to the chord, before the exact haversine test.
pub fn unit_xyz(loc: Location) -> [f64; 3] {
    let (lat, lon) = (loc.lat.to_radians(), loc.lon.to_radians());
    [lat.cos() * lon.cos(), lat.cos() * lon.sin(), lat.sin()]
}

/// Haversine distance between two points given in degrees, in metres.
pub fn haversine_m(lat1: f64, lon1: f64, lat2: f64, lon2: f64) -> f64 {
    let (p1, p2) = (lat1.to_radians(), lat2.to_radians());
    let dp = p2 - p1;
    let dl = (lon2 - lon1).to_radians();
    let a = (dp * 0.5).sin().powi(2) + p1.cos() * p2.cos() * (dl * 0.5).sin().powi(2);
    2.0 * EARTH_RADIUS_M * a.sqrt().min(1.0).asin()
}

/// Travel time between two places: the seam where road-network routing plugs in.
pub trait TravelTime {
    /// Seconds needed to travel from `from` to `to`, given their great-circle
    /// distance `distance_m` (already computed by the caller).
    fn travel_s(&self, from: Location, to: Location, distance_m: f64) -> f64;
}

/// Straight-line travel at a constant speed, with a detour factor for roads.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StraightLine {
    /// Average speed in km/h.
    pub speed_kmh: f64,
    /// Road distance divided by great-circle distance (≥ 1).
    pub detour_factor: f64,
}

impl Default for StraightLine {
    fn default() -> Self {
        Self { speed_kmh: 30.0, detour_factor: 1.3 }
    }
}

impl TravelTime for StraightLine {
    fn travel_s(&self, _from: Location, _to: Location, distance_m: f64) -> f64 {
        distance_m * self.detour_factor / (self.speed_kmh / 3.6)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn rejects_bad_coordinates() {
        assert!(matches!(Location::new(f64::NAN, 0.0), Err(LocationError::LatNotFinite(_))));
        assert!(matches!(Location::new(0.0, f64::INFINITY), Err(LocationError::LonNotFinite(_))));
        assert!(matches!(Location::new(90.5, 0.0), Err(LocationError::LatOutOfRange(_))));
        assert!(matches!(Location::new(0.0, -180.1), Err(LocationError::LonOutOfRange(_))));
        assert!(Location::new(-90.0, 180.0).is_ok());
        assert!(serde_json::from_str::<Location>(r#"{"lat": 91, "lon": 0}"#).is_err());
        assert!(serde_json::from_str::<Location>(r#"{"lat": 1, "lon": 0, "alt": 3}"#).is_err());
    }

    #[test]
    fn lat_lon_is_the_unchecked_wire_form() {
        let raw: LatLon = serde_json::from_str(r#"{"lat": 91, "lon": 0}"#).expect("any numbers parse");
        assert_eq!(raw.location(), Err(LocationError::LatOutOfRange(91.0)));
        assert_eq!(raw.location().expect_err("out of range").coordinate(), "lat");
        assert_eq!(LocationError::LonNotFinite(f64::NAN).coordinate(), "lon");
        let at = Location::new(38.3, 116.8).expect("valid");
        assert_eq!(LatLon::from(at).location(), Ok(at));
        assert!(serde_json::from_str::<LatLon>(r#"{"lat": 1, "lon": 0, "alt": 3}"#).is_err());
    }

    #[test]
    fn unit_points_lie_on_the_sphere_with_chords_below_arcs() {
        let a = Location::new(38.3037, 116.8388).expect("valid");
        let b = Location::new(-33.9, 151.2).expect("valid");
        let (pa, pb) = (unit_xyz(a), unit_xyz(b));
        let norm: f64 = pa.iter().map(|v| v * v).sum();
        assert!((norm - 1.0).abs() < 1e-12);
        assert_eq!(unit_xyz(Location::new(90.0, 0.0).expect("valid"))[2], 1.0);
        let chord = (0..3).map(|i| (pa[i] - pb[i]).powi(2)).sum::<f64>().sqrt();
        let arc = a.distance_m(b) / EARTH_RADIUS_M;
        assert!(chord <= arc && (2.0 * (arc / 2.0).sin() - chord).abs() < 1e-9, "{chord} vs {arc}");
    }

    #[test]
    fn known_distance() {
        // Cangzhou station to Beijing South, about 180 km.
        let a = Location::new(38.3037, 116.8388).expect("valid");
        let b = Location::new(39.8652, 116.3786).expect("valid");
        let d = a.distance_m(b);
        assert!((d - 178_000.0).abs() < 3_000.0, "{d}");
    }

    proptest! {
        #[test]
        fn distance_is_a_symmetric_metric(
            la in -90.0..90.0f64, lo in -180.0..180.0f64,
            lb in -90.0..90.0f64, lob in -180.0..180.0f64,
        ) {
            let a = Location::new(la, lo).expect("in range");
            let b = Location::new(lb, lob).expect("in range");
            let d = a.distance_m(b);
            prop_assert!((0.0..=std::f64::consts::PI * EARTH_RADIUS_M + 1.0).contains(&d));
            prop_assert!((d - b.distance_m(a)).abs() < 1e-6);
            prop_assert!(a.distance_m(a) < 1e-6);
        }
    }
}

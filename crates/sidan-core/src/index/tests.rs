use super::*;
use proptest::prelude::*;

proptest! {
    /// Every point within the radius lies in one of the boxes.
    #[test]
    fn cap_boxes_contain_the_cap(
        lat in -89.9..89.9f64, lon in -180.0..180.0f64,
        radius_km in 0.1..600.0f64, bearing in 0.0..std::f64::consts::TAU, frac in 0.0..1.0f64,
    ) {
        let at = Location::new(lat, lon).expect("in range");
        // Walk `frac * radius` along `bearing` on the sphere.
        let d = frac * radius_km * 1000.0 / EARTH_RADIUS_M;
        let (p1, l1) = (lat.to_radians(), lon.to_radians());
        let p2 = (p1.sin() * d.cos() + p1.cos() * d.sin() * bearing.cos()).asin();
        let l2 = l1 + (bearing.sin() * d.sin() * p1.cos()).atan2(d.cos() - p1.sin() * p2.sin());
        let lon2 = (l2.to_degrees() + 540.0).rem_euclid(360.0) - 180.0;
        let q = [lon2, p2.to_degrees()];
        let inside = cap_boxes(at, radius_km * 1000.0).into_iter().flatten().any(|b| {
            let (lo, hi) = (b.lower(), b.upper());
            lo[0] - 1e-9 <= q[0] && q[0] <= hi[0] + 1e-9 && lo[1] - 1e-9 <= q[1] && q[1] <= hi[1] + 1e-9
        });
        prop_assert!(inside, "{q:?} not in boxes of {at:?} r={radius_km}");
    }
}

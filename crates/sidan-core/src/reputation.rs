//! Team reputation from settled evaluations (多元评单 → standing in dispatch).
//!
//! Each settled request gives its team one observation `x` in `[0, 1]` (the
//! combined rating mapped from 1..=5; a request found not served counts 0).
//! The standing is a Bayesian average with exponential time decay:
//!
//! ```text
//! S = Σ xᵢ·½^(Δtᵢ/h),  W = Σ ½^(Δtᵢ/h)          (Δtᵢ: age of observation i, h: half-life)
//! reputation = (m·prior + S) / (m + W)
//! ```
//!
//! `prior` and `m` (its strength, in observations) keep a new team near the
//! prior until it has a record, and the decay lets a team recover from an old
//! bad spell. Both sums are updated in O(1) per observation by decaying them
//! to the new observation's time first, so the value is a pure function of the
//! evaluations in the log.
//!
//! Robustness to one extreme rater is handled where ratings are combined (see
//! [`crate::lifecycle::evaluation`]): each role's score is clamped to within
//! 1.5 points of the request's median before weighting, so one rater who
//! always gives 1 (or 5) moves each observation by at most its weight × 1.5/4.

use chrono::{DateTime, Utc};

/// The decayed sums of one team's observations.
#[derive(Debug, Clone, Copy, PartialEq, Default, serde::Serialize, serde::Deserialize)]
pub struct Standing {
    /// Σ decayed observations.
    pub sum: f64,
    /// Σ decay weights.
    pub weight: f64,
    /// Time of the last observation.
    pub last: Option<DateTime<Utc>>,
    /// Number of observations.
    pub count: u32,
}

/// How standings turn into reputations.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReputationModel {
    /// The value of a team without observations, in `[0, 1]`.
    pub prior: f64,
    /// How many observations the prior is worth.
    pub strength: f64,
    /// Days after which an observation counts half.
    pub half_life_days: f64,
}

impl ReputationModel {
    fn decay(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> f64 {
        let days = (to - from).num_seconds().max(0) as f64 / 86_400.0;
        0.5f64.powf(days / self.half_life_days)
    }

    /// Adds an observation `x` (clamped to `[0, 1]`) made at `at`. Observations
    /// must come in time order (they do: the log's); an earlier one counts as if made at the last.
    pub fn observe(&self, s: &mut Standing, x: f64, at: DateTime<Utc>) {
        let at = s.last.map_or(at, |l| l.max(at));
        let d = s.last.map_or(1.0, |l| self.decay(l, at));
        s.sum = s.sum * d + x.clamp(0.0, 1.0);
        s.weight = s.weight * d + 1.0;
        s.last = Some(at);
        s.count += 1;
    }

    /// The reputation at `at`.
    pub fn value(&self, s: &Standing, at: DateTime<Utc>) -> f64 {
        let d = s.last.map_or(1.0, |l| self.decay(l, at));
        (self.strength * self.prior + s.sum * d) / (self.strength + s.weight * d)
    }
}

/// Maps a combined rating in thousandths of a point (1000..=5000) to `[0, 1]`.
pub fn observation_of(combined_milli: u32) -> f64 {
    ((f64::from(combined_milli) / 1000.0 - 1.0) / 4.0).clamp(0.0, 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    fn t(days: i64) -> DateTime<Utc> {
        crate::testkit::t0() + Duration::days(days)
    }

    const M: ReputationModel = ReputationModel { prior: 0.6, strength: 5.0, half_life_days: 180.0 };

    #[test]
    fn starts_at_the_prior_and_moves_with_evidence() {
        let mut s = Standing::default();
        assert_eq!(M.value(&s, t(0)), 0.6);
        for d in 0..20 {
            M.observe(&mut s, 1.0, t(d));
        }
        let good = M.value(&s, t(20));
        assert!(good > 0.9 && good < 1.0, "{good}");
        // One bad observation moves it a little, not to the bottom.
        M.observe(&mut s, 0.0, t(21));
        let after = M.value(&s, t(21));
        assert!(after < good && after > 0.85, "{after}");
    }

    #[test]
    fn old_evidence_fades_toward_the_prior() {
        let mut s = Standing::default();
        for d in 0..10 {
            M.observe(&mut s, 0.0, t(d));
        }
        let bad = M.value(&s, t(10));
        let later = M.value(&s, t(10 + 2 * 365));
        assert!(bad < 0.3 && later > 0.5 && later < 0.6, "{bad} → {later}");
        // The incremental sums equal the sums recomputed from scratch.
        let direct: f64 = (0..10).map(|d| 0.5f64.powf((9 - d) as f64 / 180.0)).sum();
        assert!((s.weight - direct).abs() < 1e-9);
    }

    #[test]
    fn observations_map_ratings() {
        assert_eq!(observation_of(1000), 0.0);
        assert_eq!(observation_of(5000), 1.0);
        assert_eq!(observation_of(3000), 0.5);
    }
}

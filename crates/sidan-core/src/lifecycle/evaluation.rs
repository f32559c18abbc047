//! 多元评单: how the ratings of a completed request are combined.
//!
//! The resident, the station, the team (a self-report) and, for a sampled
//! share of requests, a third-party reviewer (回访抽检) each rate 1..=5 with
//! tags from a fixed list. When every expected role has rated, or the
//! evaluation window closes, the ratings are *settled*: a role that did not
//! rate counts `missing_rating_score` and is flagged; each score is clamped to
//! within 1.5 points of the median of the request's scores (so one rater who
//! always gives 1 or 5 cannot swing the result alone); the combined score is
//! the weighted mean with the per-role weights of the unit's policy, in
//! thousandths of a point.
//!
//! A resident's rating tagged `not_served` against a request the team marked
//! completed is a dispute: the request stays open for evaluation, credits are
//! frozen, and nothing settles until the station resolves it.

use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};

use crate::id::RequestId;
use crate::lifecycle::LifecyclePolicy;
use crate::lifecycle::RaterRole;

/// The fixed list of tags a rating may carry.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, BorshSerialize, BorshDeserialize,
)]
#[serde(rename_all = "snake_case")]
#[allow(missing_docs)]
pub enum Tag {
    Punctual,
    Professional,
    Friendly,
    Thorough,
    Late,
    Impolite,
    Incomplete,
    /// The resident says the service did not take place: opens a dispute.
    NotServed,
}

/// The most tags one rating may carry.
pub const MAX_TAGS: usize = 8;

/// The settled evaluation of a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settlement {
    /// The combined score in thousandths of a point, 1000..=5000.
    pub combined_milli: u32,
    /// Roles that did not rate and were counted at the default score.
    pub defaulted: Vec<RaterRole>,
}

/// The roles expected to rate: the third party only if the request was sampled.
pub fn expected_roles(sampled: bool) -> &'static [RaterRole] {
    if sampled { &RaterRole::ALL } else { &RaterRole::ALL[..3] }
}

/// Whether a request is sampled for a third-party review, at `rate` in [0, 1]:
/// a fixed function of its id (FNV-1a), so replays and other engines agree.
pub fn sampled(request: &RequestId, rate: f64) -> bool {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in request.as_str().bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    ((h >> 11) as f64 / (1u64 << 53) as f64) < rate
}

fn weight(p: &LifecyclePolicy, role: RaterRole) -> f64 {
    match role {
        RaterRole::Resident => p.rating_weight_resident,
        RaterRole::Station => p.rating_weight_station,
        RaterRole::Team => p.rating_weight_team,
        RaterRole::ThirdParty => p.rating_weight_third_party,
    }
}

/// Settles the ratings given (`ratings`) against the roles expected.
pub fn settle(ratings: &[(RaterRole, u8)], expected: &[RaterRole], p: &LifecyclePolicy) -> Settlement {
    let mut scores: Vec<(RaterRole, f64)> = Vec::new();
    let mut defaulted = Vec::new();
    for &role in expected {
        match ratings.iter().find(|(r, _)| *r == role) {
            Some((_, s)) => scores.push((role, f64::from(*s))),
            None => {
                defaulted.push(role);
                scores.push((role, f64::from(p.missing_rating_score)));
            }
        }
    }
    let mut sorted: Vec<f64> = scores.iter().map(|(_, s)| *s).collect();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    let median = if n == 0 {
        f64::from(p.missing_rating_score)
    } else if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
    };
    let (mut num, mut den) = (0.0, 0.0);
    for (role, s) in &scores {
        let w = weight(p, *role);
        num += w * s.clamp(median - 1.5, median + 1.5);
        den += w;
    }
    let combined = if den > 0.0 { num / den } else { median };
    Settlement { combined_milli: (combined * 1000.0).round().clamp(1000.0, 5000.0) as u32, defaulted }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_defaults_and_clamping() {
        let p = LifecyclePolicy::default();
        let all5 = [(RaterRole::Resident, 5), (RaterRole::Station, 5), (RaterRole::Team, 5)];
        assert_eq!(settle(&all5, expected_roles(false), &p), Settlement { combined_milli: 5000, defaulted: vec![] });
        // A missing station rating counts the default and is flagged.
        let two = [(RaterRole::Resident, 5), (RaterRole::Team, 5)];
        let s = settle(&two, expected_roles(false), &p);
        assert_eq!(s.defaulted, vec![RaterRole::Station]);
        assert!(s.combined_milli < 5000 && s.combined_milli > 4000, "{s:?}");
        // One extreme rater is clamped to within 1.5 of the median.
        let harsh =
            [(RaterRole::Resident, 5), (RaterRole::Station, 1), (RaterRole::Team, 5), (RaterRole::ThirdParty, 5)];
        let s = settle(&harsh, expected_roles(true), &p);
        let w = &p;
        let total =
            w.rating_weight_resident + w.rating_weight_station + w.rating_weight_team + w.rating_weight_third_party;
        let naive = (5.0 * (total - w.rating_weight_station) + 1.0 * w.rating_weight_station) / total;
        let clamped = (5.0 * (total - w.rating_weight_station) + 3.5 * w.rating_weight_station) / total;
        assert_eq!(s.combined_milli, (clamped * 1000.0).round() as u32);
        assert!(f64::from(s.combined_milli) / 1000.0 > naive);
    }

    #[test]
    fn sampling_is_a_fixed_share() {
        let ids: Vec<RequestId> = (0..20_000).map(|i| RequestId::new(&format!("r{i:07}")).expect("id")).collect();
        let n = ids.iter().filter(|r| sampled(r, 0.1)).count();
        assert!((1_700..2_300).contains(&n), "{n} of 20000 sampled at 10%");
        assert_eq!(ids.iter().filter(|r| sampled(r, 0.0)).count(), 0);
        assert_eq!(ids.iter().filter(|r| sampled(r, 1.0)).count(), ids.len());
    }
}

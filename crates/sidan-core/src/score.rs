//! The scoring policy: how eligible teams are ordered.
//!
//! Each eligible team gets five terms, each in `[0, 1]` with 1 the best:
//!
//! | term | value |
//! | --- | --- |
//! | proximity | `1 - min(1, travel_min / max_travel_min)` from the [`TravelTime`](crate::geo::TravelTime) port |
//! | reputation | the team's reputation, or `reputation_prior` for a team without one |
//! | fairness | `1 / (1 + (load + recent_jobs) / capacity)`: busy teams yield to idle ones |
//! | continuity | `paired` if paired with the household, `served_before` if it served it, else 0 |
//! | specificity | `|needed skills and their broader categories| / |team's skill closure|`: specialists first, generalists stay free |
//!
//! The score is `Σ weight × term`, with the proximity weight multiplied by the
//! request's urgency factor. Ties are broken by team id, ascending.

use serde::{Deserialize, Serialize};

use crate::request::Urgency;

/// Weights of the five terms.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Weights {
    /// Weight of proximity.
    pub proximity: f64,
    /// Weight of reputation.
    pub reputation: f64,
    /// Weight of fairness.
    pub fairness: f64,
    /// Weight of continuity.
    pub continuity: f64,
    /// Weight of specificity.
    pub specificity: f64,
}

impl Default for Weights {
    fn default() -> Self {
        Self { proximity: 0.35, reputation: 0.25, fairness: 0.15, continuity: 0.15, specificity: 0.10 }
    }
}

/// Multipliers of the proximity weight per urgency.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UrgencyFactors {
    /// For normal requests.
    pub normal: f64,
    /// For urgent requests.
    pub urgent: f64,
    /// For emergencies.
    pub emergency: f64,
}

impl Default for UrgencyFactors {
    fn default() -> Self {
        Self { normal: 1.0, urgent: 2.0, emergency: 4.0 }
    }
}

impl UrgencyFactors {
    /// The factor for an urgency.
    pub fn factor(&self, u: Urgency) -> f64 {
        match u {
            Urgency::Normal => self.normal,
            Urgency::Urgent => self.urgent,
            Urgency::Emergency => self.emergency,
        }
    }
}

/// The scoring policy.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ScoringPolicy {
    /// Term weights.
    pub weights: Weights,
    /// Travel time at which proximity reaches 0, in minutes.
    pub max_travel_min: f64,
    /// Proximity weight multipliers.
    pub urgency: UrgencyFactors,
    /// Reputation of a team that has none yet.
    pub reputation_prior: f64,
    /// Continuity of a team paired with the household.
    pub continuity_paired: f64,
    /// Continuity of a team that served the household before.
    pub continuity_served_before: f64,
}

impl Default for ScoringPolicy {
    fn default() -> Self {
        Self {
            weights: Weights::default(),
            max_travel_min: 45.0,
            urgency: UrgencyFactors::default(),
            reputation_prior: 0.6,
            continuity_paired: 1.0,
            continuity_served_before: 0.5,
        }
    }
}

/// Why a policy is invalid: the key and the problem.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("policy key `{key}`: {problem}")]
pub struct PolicyError {
    /// The offending key, like `weights.proximity`.
    pub key: &'static str,
    /// What is wrong.
    pub problem: PolicyProblem,
}

/// What is wrong with a policy value.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyProblem {
    /// A weight or factor that must be finite and ≥ 0.
    #[error("{value} is not a finite number ≥ 0")]
    NotNonNegative {
        /// The value given.
        value: f64,
    },
    /// A number that must be finite and > 0.
    #[error("{value} is not a finite number > 0")]
    NotPositive {
        /// The value given.
        value: f64,
    },
    /// A share or probability that must lie in [0, 1].
    #[error("{value} is not in [0, 1]")]
    NotFraction {
        /// The value given.
        value: f64,
    },
    /// A count or duration outside its bounds.
    #[error("{value} is not in {min}..={max}{unit}")]
    OutOfRange {
        /// The value given.
        value: u64,
        /// The least allowed.
        min: u64,
        /// The most allowed.
        max: u64,
        /// The unit, with a leading space (` seconds`), or empty.
        unit: &'static str,
    },
    /// A count below its least value.
    #[error("{value} is below {min}")]
    BelowMinimum {
        /// The value given.
        value: u64,
        /// The least allowed.
        min: u64,
    },
    /// The resident's, the station's and the team's rating weights are all 0.
    #[error("the resident, station and team weights are all 0")]
    NoRatingWeight,
    /// A service-credit rate or multiplier out of bounds.
    #[error(transparent)]
    Credit(#[from] crate::ledger::CreditPolicyError),
}

impl PolicyProblem {
    pub(crate) fn range(value: impl Into<u64>, min: u64, max: u64, unit: &'static str) -> Self {
        PolicyProblem::OutOfRange { value: value.into(), min, max, unit }
    }
}

impl ScoringPolicy {
    /// Checks every value: weights and factors finite and ≥ 0, terms in range.
    pub fn validate(&self) -> Result<(), PolicyError> {
        let w = &self.weights;
        let u = &self.urgency;
        let non_negative = [
            ("weights.proximity", w.proximity),
            ("weights.reputation", w.reputation),
            ("weights.fairness", w.fairness),
            ("weights.continuity", w.continuity),
            ("weights.specificity", w.specificity),
            ("urgency.normal", u.normal),
            ("urgency.urgent", u.urgent),
            ("urgency.emergency", u.emergency),
        ];
        for (key, v) in non_negative {
            if !(v.is_finite() && v >= 0.0) {
                return Err(PolicyError { key, problem: PolicyProblem::NotNonNegative { value: v } });
            }
        }
        if !(self.max_travel_min.is_finite() && self.max_travel_min > 0.0) {
            return Err(PolicyError {
                key: "max_travel_min",
                problem: PolicyProblem::NotPositive { value: self.max_travel_min },
            });
        }
        let unit = [
            ("reputation_prior", self.reputation_prior),
            ("continuity_paired", self.continuity_paired),
            ("continuity_served_before", self.continuity_served_before),
        ];
        for (key, v) in unit {
            if !(0.0..=1.0).contains(&v) {
                return Err(PolicyError { key, problem: PolicyProblem::NotFraction { value: v } });
            }
        }
        Ok(())
    }

    /// Combines the terms into a score for a request of urgency `u`.
    pub fn combine(&self, t: &ScoreTerms, u: Urgency) -> f64 {
        let w = &self.weights;
        w.proximity * self.urgency.factor(u) * t.proximity
            + w.reputation * t.reputation
            + w.fairness * t.fairness
            + w.continuity * t.continuity
            + w.specificity * t.specificity
    }
}

/// The five terms of a team's score, each in `[0, 1]`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ScoreTerms {
    /// Nearness by travel time.
    pub proximity: f64,
    /// Standing from evaluations.
    pub reputation: f64,
    /// Spare capacity against recent work.
    pub fairness: f64,
    /// Pairing with or past service to the household.
    pub continuity: f64,
    /// How specialised the team is for this request.
    pub specificity: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_names_the_key() {
        assert_eq!(ScoringPolicy::default().validate(), Ok(()));
        let mut p = ScoringPolicy::default();
        p.weights.fairness = f64::NAN;
        assert_eq!(p.validate().map_err(|e| e.key), Err("weights.fairness"));
        let p = ScoringPolicy { max_travel_min: 0.0, ..ScoringPolicy::default() };
        assert_eq!(p.validate().map_err(|e| e.key), Err("max_travel_min"));
        let p = ScoringPolicy { reputation_prior: 1.5, ..ScoringPolicy::default() };
        assert_eq!(p.validate().map_err(|e| e.key), Err("reputation_prior"));
        let bad: Result<ScoringPolicy, _> = serde_json::from_str(r#"{"weights": {"proximty": 1}}"#);
        assert!(bad.is_err());
    }

    #[test]
    fn urgency_raises_proximity_weight() {
        let p = ScoringPolicy::default();
        let near = ScoreTerms { proximity: 1.0, reputation: 0.0, fairness: 0.0, continuity: 0.0, specificity: 0.0 };
        let good = ScoreTerms { proximity: 0.0, reputation: 1.0, fairness: 1.0, continuity: 0.0, specificity: 0.0 };
        assert!(p.combine(&near, Urgency::Normal) < p.combine(&good, Urgency::Normal));
        assert!(p.combine(&near, Urgency::Emergency) > p.combine(&good, Urgency::Emergency));
    }
}

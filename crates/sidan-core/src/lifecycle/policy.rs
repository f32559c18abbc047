//! Lifecycle policy: deadlines, escalation thresholds and scoring weights,
//! resolved per unit.
//!
//! A [`PolicyBook`] holds one resolved [`LifecyclePolicy`] per unit. The file
//! format that fills it (defaults, then overrides inherited down the unit
//! hierarchy) lives in [`super::policy_file`].

use serde::{Deserialize, Serialize};

use std::collections::BTreeSet;

use chrono::NaiveDate;

use crate::ledger::{CreditPolicy, CreditPolicyError};
use crate::score::{PolicyError, PolicyProblem, ScoringPolicy};
use crate::units::{UnitIdx, UnitKind, UnitTree};

/// Everything the lifecycle needs to know about deadlines and escalation,
/// as it applies to requests made at one unit.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LifecyclePolicy {
    /// How long a team has to answer an ordinary offer, in seconds.
    pub offer_deadline_s: u32,
    /// How long a team has to answer an offer of an urgent request, in seconds.
    pub urgent_offer_deadline_s: u32,
    /// How long a team has to answer an emergency offer, in seconds.
    pub emergency_offer_deadline_s: u32,
    /// How many teams an emergency is offered to at once.
    pub emergency_fanout: u32,
    /// How long teams have to answer a recruitment order (招募令), in seconds.
    pub recruitment_deadline_s: u32,
    /// The narrowest scope dispatch starts at: the request unit's ancestor of this kind.
    pub start_scope: UnitKind,
    /// The narrowest scope an emergency starts at.
    pub emergency_start_scope: UnitKind,
    /// Widen the scope after this many declines or expired offers at the current scope.
    pub escalate_after_misses: u32,
    /// Widen the scope after this many minutes at the current scope without a holder.
    pub escalate_after_min: u32,
    /// How long after completion evaluations are taken before the request closes, in hours.
    pub evaluation_window_h: u32,
    /// How long an ended request stays in the engine's memory, in hours; then it leaves (its
    /// events stay in the log and its figures in the reports) and its id is never taken again.
    pub retention_h: u32,
    /// Weight of the resident's rating in the combined score.
    pub rating_weight_resident: f64,
    /// Weight of the station's rating.
    pub rating_weight_station: f64,
    /// Weight of the team's self-report.
    pub rating_weight_team: f64,
    /// Weight of the third-party reviewer's rating.
    pub rating_weight_third_party: f64,
    /// The score (1..=5) counted for a rating missing when the window closes; it is flagged.
    pub missing_rating_score: u8,
    /// Share of completed requests sampled for a third-party review (回访抽检), in [0, 1].
    pub third_party_sample_rate: f64,
    /// How the teams of a scope are ordered.
    pub scoring: ScoringPolicy,
    /// How a served request is credited to the volunteers and the team (points, banked minutes).
    pub credit: CreditPolicy,
}

impl Default for LifecyclePolicy {
    fn default() -> Self {
        Self {
            offer_deadline_s: 30 * 60,
            urgent_offer_deadline_s: 10 * 60,
            emergency_offer_deadline_s: 3 * 60,
            emergency_fanout: 5,
            recruitment_deadline_s: 4 * 3600,
            start_scope: UnitKind::Station,
            emergency_start_scope: UnitKind::County,
            escalate_after_misses: 3,
            escalate_after_min: 60,
            evaluation_window_h: 72,
            retention_h: 7 * 24,
            rating_weight_resident: 0.4,
            rating_weight_station: 0.25,
            rating_weight_team: 0.1,
            rating_weight_third_party: 0.25,
            missing_rating_score: 4,
            third_party_sample_rate: 0.1,
            scoring: ScoringPolicy::default(),
            credit: CreditPolicy::default(),
        }
    }
}

/// How long the engine keeps, city-wide, what it no longer needs in memory. The log keeps
/// everything; this bounds only the state folded from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MemoryPolicy {
    /// How long a settled transfer stays in memory, in days. Within it, a retry of its id is
    /// recognised and it can be reversed; after it, its id is free and a correction is an
    /// adjustment. Balances never leave.
    pub ledger_days: u32,
    /// How long a retired request's id is remembered in memory, in days. Within it, a request
    /// reusing the id is refused by the lifecycle; after it, by the store (whose stream for the id
    /// exists).
    pub retired_ids_days: u32,
    /// How long a team counts as having served a household (the continuity term of the score,
    /// `scoring.continuity_served_before`), in days after it last did. Households declared in
    /// the team file count for ever.
    pub continuity_days: u32,
}

impl Default for MemoryPolicy {
    fn default() -> Self {
        Self { ledger_days: 30, retired_ids_days: 30, continuity_days: 90 }
    }
}

/// Checks that a count lies in `1..=max`; the error names the key.
fn one_to(key: &'static str, v: u32, max: u32, unit: &'static str) -> Result<(), PolicyError> {
    if v == 0 || v > max {
        return Err(PolicyError { key, problem: PolicyProblem::range(v, 1, max.into(), unit) });
    }
    Ok(())
}

/// The longest a [`MemoryPolicy`] may keep anything: ten years, in days.
pub const MAX_MEMORY_DAYS: u32 = 3660;

impl MemoryPolicy {
    /// Checks every value; the error names the key.
    pub fn validate(&self) -> Result<(), PolicyError> {
        let keys = [
            ("memory.ledger_days", self.ledger_days),
            ("memory.retired_ids_days", self.retired_ids_days),
            ("memory.continuity_days", self.continuity_days),
        ];
        keys.into_iter().try_for_each(|(key, v)| one_to(key, v, MAX_MEMORY_DAYS, " days"))
    }

    /// How long a settled transfer stays in memory.
    pub fn ledger_retention(&self) -> chrono::Duration {
        chrono::Duration::days(i64::from(self.ledger_days))
    }

    /// How long a retired request's id is remembered.
    pub fn retired_id_memory(&self) -> chrono::Duration {
        chrono::Duration::days(i64::from(self.retired_ids_days))
    }

    /// How long a team counts as having served a household after it last did.
    pub fn continuity(&self) -> chrono::Duration {
        chrono::Duration::days(i64::from(self.continuity_days))
    }
}

/// The longest an ended request may stay in memory: a year and a day, in hours.
pub const MAX_RETENTION_H: u32 = 366 * 24;

/// The largest deadline or window any key accepts: 30 days in seconds.
pub const MAX_DEADLINE_S: u32 = 30 * 24 * 3600;

impl LifecyclePolicy {
    /// Checks every value; the error names the key.
    pub fn validate(&self) -> Result<(), PolicyError> {
        let deadlines = [
            ("offer_deadline_s", self.offer_deadline_s),
            ("urgent_offer_deadline_s", self.urgent_offer_deadline_s),
            ("emergency_offer_deadline_s", self.emergency_offer_deadline_s),
            ("recruitment_deadline_s", self.recruitment_deadline_s),
        ];
        for (key, v) in deadlines {
            one_to(key, v, MAX_DEADLINE_S, " seconds")?;
        }
        if !(1..=64).contains(&self.emergency_fanout) {
            return Err(PolicyError {
                key: "emergency_fanout",
                problem: PolicyProblem::range(self.emergency_fanout, 1, 64, ""),
            });
        }
        if self.escalate_after_misses == 0 {
            return Err(PolicyError {
                key: "escalate_after_misses",
                problem: PolicyProblem::BelowMinimum { value: 0, min: 1 },
            });
        }
        one_to("escalate_after_min", self.escalate_after_min, MAX_DEADLINE_S / 60, " minutes")?;
        one_to("evaluation_window_h", self.evaluation_window_h, MAX_DEADLINE_S / 3600, " hours")?;
        one_to("retention_h", self.retention_h, MAX_RETENTION_H, " hours")?;
        let weights = [
            ("rating_weight_resident", self.rating_weight_resident),
            ("rating_weight_station", self.rating_weight_station),
            ("rating_weight_team", self.rating_weight_team),
            ("rating_weight_third_party", self.rating_weight_third_party),
        ];
        for (key, v) in weights {
            if !(v.is_finite() && v >= 0.0) {
                return Err(PolicyError { key, problem: PolicyProblem::NotNonNegative { value: v } });
            }
        }
        if self.rating_weight_resident + self.rating_weight_station + self.rating_weight_team <= 0.0 {
            return Err(PolicyError { key: "rating_weight_resident", problem: PolicyProblem::NoRatingWeight });
        }
        if !(1..=5).contains(&self.missing_rating_score) {
            return Err(PolicyError {
                key: "missing_rating_score",
                problem: PolicyProblem::range(self.missing_rating_score, 1, 5, ""),
            });
        }
        if !(0.0..=1.0).contains(&self.third_party_sample_rate) {
            return Err(PolicyError {
                key: "third_party_sample_rate",
                problem: PolicyProblem::NotFraction { value: self.third_party_sample_rate },
            });
        }
        self.scoring.validate().map_err(|e| PolicyError { key: scoring_key(e.key), problem: e.problem })?;
        self.credit.validate().map_err(|e| PolicyError { key: credit_key(&e), problem: PolicyProblem::Credit(e) })
    }

    /// The offer deadline for a request of this urgency, in seconds.
    pub fn offer_deadline_for(&self, u: crate::request::Urgency) -> u32 {
        match u {
            crate::request::Urgency::Normal => self.offer_deadline_s,
            crate::request::Urgency::Urgent => self.urgent_offer_deadline_s,
            crate::request::Urgency::Emergency => self.emergency_offer_deadline_s,
        }
    }
}

/// The `credit.` key a credit policy error is about.
fn credit_key(e: &CreditPolicyError) -> &'static str {
    let field = match e {
        CreditPolicyError::RateTooHigh { field, .. } | CreditPolicyError::BadMultiplier { field, .. } => *field,
    };
    match field {
        "points_per_hour" => "credit.points_per_hour",
        "team_points_per_hour" => "credit.team_points_per_hour",
        "urgent_pct" => "credit.urgent_pct",
        "night_pct" => "credit.night_pct",
        "holiday_pct" => "credit.holiday_pct",
        _ => "credit",
    }
}

/// Prefixes a scoring key with `scoring.` (keys are `'static`, so the known ones are listed).
fn scoring_key(key: &'static str) -> &'static str {
    match key {
        "weights.proximity" => "scoring.weights.proximity",
        "weights.reputation" => "scoring.weights.reputation",
        "weights.fairness" => "scoring.weights.fairness",
        "weights.continuity" => "scoring.weights.continuity",
        "weights.specificity" => "scoring.weights.specificity",
        "urgency.normal" => "scoring.urgency.normal",
        "urgency.urgent" => "scoring.urgency.urgent",
        "urgency.emergency" => "scoring.urgency.emergency",
        "max_travel_min" => "scoring.max_travel_min",
        "reputation_prior" => "scoring.reputation_prior",
        "continuity_paired" => "scoring.continuity_paired",
        "continuity_served_before" => "scoring.continuity_served_before",
        other => other,
    }
}

/// One resolved policy per unit.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PolicyBook {
    /// Indexed by [`UnitIdx`]; units added after the book was built use the last entry's root default.
    per_unit: Vec<LifecyclePolicy>,
    default: LifecyclePolicy,
    /// Public holidays of the city, local dates (service on them earns `credit.holiday_pct`).
    holidays: BTreeSet<NaiveDate>,
    /// What leaves memory when, city-wide.
    memory: MemoryPolicy,
}

impl PolicyBook {
    /// The same policy for every unit.
    ///
    /// # Errors
    /// If the policy is invalid.
    pub fn uniform(policy: LifecyclePolicy) -> Result<Self, PolicyError> {
        policy.validate()?;
        Ok(Self { per_unit: Vec::new(), default: policy, holidays: BTreeSet::new(), memory: MemoryPolicy::default() })
    }

    /// A book from already resolved per-unit policies (index = [`UnitIdx`]).
    ///
    /// # Errors
    /// If any policy is invalid.
    pub fn from_resolved(default: LifecyclePolicy, per_unit: Vec<LifecyclePolicy>) -> Result<Self, PolicyError> {
        default.validate()?;
        for p in &per_unit {
            p.validate()?;
        }
        Ok(Self { per_unit, default, holidays: BTreeSet::new(), memory: MemoryPolicy::default() })
    }

    /// The policy that applies to requests made at `unit`.
    pub fn for_unit(&self, unit: UnitIdx) -> &LifecyclePolicy {
        self.per_unit.get(unit.0 as usize).unwrap_or(&self.default)
    }

    /// The same book with these public holidays (local dates).
    #[must_use]
    pub fn with_holidays(mut self, holidays: impl IntoIterator<Item = NaiveDate>) -> Self {
        self.holidays = holidays.into_iter().collect();
        self
    }

    /// The same book with this memory policy.
    ///
    /// # Errors
    /// If the memory policy is invalid.
    pub fn with_memory(mut self, memory: MemoryPolicy) -> Result<Self, PolicyError> {
        memory.validate()?;
        self.memory = memory;
        Ok(self)
    }

    /// What leaves memory when.
    pub fn memory(&self) -> &MemoryPolicy {
        &self.memory
    }

    /// Whether a local date is a public holiday.
    pub fn is_holiday(&self, date: NaiveDate) -> bool {
        self.holidays.contains(&date)
    }

    /// The public holidays, in order.
    pub fn holidays(&self) -> impl Iterator<Item = NaiveDate> + '_ {
        self.holidays.iter().copied()
    }

    /// The policy used for units the book does not list.
    pub fn default_policy(&self) -> &LifecyclePolicy {
        &self.default
    }

    /// How many units have a resolved entry.
    pub fn len(&self) -> usize {
        self.per_unit.len()
    }

    /// Whether no unit has an entry of its own.
    pub fn is_empty(&self) -> bool {
        self.per_unit.is_empty()
    }

    /// Whether the book has one entry per unit of `tree`.
    pub fn covers(&self, tree: &UnitTree) -> bool {
        self.per_unit.is_empty() || self.per_unit.len() == tree.len()
    }
}

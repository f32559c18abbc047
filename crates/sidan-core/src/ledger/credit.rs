//! Service credit: what a completed service earns, as transfers.
//!
//! Every volunteer present banks the service's minutes (time bank: hours served are hours
//! banked, integers, in minutes). Points are a pool for the group: minutes × points per hour ×
//! the multipliers that apply (urgent, night, holiday; they compound), rounded once to the
//! nearest point (halves up), then split among the volunteers: each gets the quotient, and the
//! remainder goes one point each to the next volunteers in id order, starting at a place fixed
//! by the request id, so the shares always sum to the pool and nobody is favoured across
//! requests. The team may earn points of its own at its own rate. All arithmetic is integer.

use serde::{Deserialize, Serialize};

use crate::id::{RequestId, TeamId, VolunteerId};
use crate::ledger::{AccountId, TransferId, TransferKind, TransferSpec};

/// The highest points-per-hour rate a policy may set.
pub const MAX_RATE: u32 = 10_000;

/// The highest multiplier a policy may set, in percent (×10).
pub const MAX_MULTIPLIER_PCT: u32 = 1_000;

/// How service is credited, per unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CreditPolicy {
    /// Points per hour of service for the group of volunteers present, split among them.
    pub points_per_hour: u32,
    /// Points per hour of service for the team's own account; 0 for none.
    pub team_points_per_hour: u32,
    /// Multiplier for urgent and emergency requests, in percent (150 = ×1.5).
    pub urgent_pct: u32,
    /// Multiplier for service at night, in percent.
    pub night_pct: u32,
    /// Multiplier for service on a holiday, in percent.
    pub holiday_pct: u32,
}

impl Default for CreditPolicy {
    fn default() -> Self {
        Self { points_per_hour: 10, team_points_per_hour: 2, urgent_pct: 150, night_pct: 120, holiday_pct: 200 }
    }
}

/// Why a credit policy is invalid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CreditPolicyError {
    /// A rate above [`MAX_RATE`].
    #[error("{field} = {value}: at most {MAX_RATE} points per hour are allowed")]
    RateTooHigh {
        /// The field.
        field: &'static str,
        /// Its value.
        value: u32,
    },
    /// A multiplier outside 1..=[`MAX_MULTIPLIER_PCT`] percent.
    #[error("{field} = {value}: a multiplier must be in 1..={MAX_MULTIPLIER_PCT} percent")]
    BadMultiplier {
        /// The field.
        field: &'static str,
        /// Its value.
        value: u32,
    },
}

/// A completed service, as the credit sees it. Whether it was urgent, at night or on a holiday
/// is the caller's to say (from the request's urgency, the unit's time zone and its calendar).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreditInput {
    /// The request served: the cause, part of every credit's id.
    pub request: RequestId,
    /// Minutes of service.
    pub minutes: u32,
    /// The volunteers present (duplicates count once).
    pub volunteers: Vec<VolunteerId>,
    /// The team that served, for its own points.
    pub team: Option<TeamId>,
    /// Urgent or emergency.
    pub urgent: bool,
    /// At night.
    pub night: bool,
    /// On a holiday.
    pub holiday: bool,
}

/// 60 minutes × 100 % for each of the three multipliers.
const DENOMINATOR: u128 = 60 * 100 * 100 * 100;

impl CreditPolicy {
    /// Checks rates and multipliers.
    ///
    /// # Errors
    /// The first field out of range.
    pub fn validate(&self) -> Result<(), CreditPolicyError> {
        for (field, value) in
            [("points_per_hour", self.points_per_hour), ("team_points_per_hour", self.team_points_per_hour)]
        {
            if value > MAX_RATE {
                return Err(CreditPolicyError::RateTooHigh { field, value });
            }
        }
        for (field, value) in
            [("urgent_pct", self.urgent_pct), ("night_pct", self.night_pct), ("holiday_pct", self.holiday_pct)]
        {
            if value == 0 || value > MAX_MULTIPLIER_PCT {
                return Err(CreditPolicyError::BadMultiplier { field, value });
            }
        }
        Ok(())
    }

    /// minutes × rate × multipliers / (60 × 100³), rounded to the nearest integer, halves up.
    fn points_at(&self, rate: u32, input: &CreditInput) -> u64 {
        let pct = |on: bool, pct: u32| if on { u128::from(pct) } else { 100 };
        let numerator = u128::from(input.minutes)
            * u128::from(rate)
            * pct(input.urgent, self.urgent_pct)
            * pct(input.night, self.night_pct)
            * pct(input.holiday, self.holiday_pct);
        u64::try_from((numerator + DENOMINATOR / 2) / DENOMINATOR).unwrap_or(u64::MAX)
    }

    /// The group's points for a service, before the split.
    pub fn points_total(&self, input: &CreditInput) -> u64 {
        self.points_at(self.points_per_hour, input)
    }

    /// The team's own points for a service.
    pub fn team_points(&self, input: &CreditInput) -> u64 {
        self.points_at(self.team_points_per_hour, input)
    }
}

/// FNV-1a, 64 bits: a hash that is the same on every machine and in every version.
fn fnv1a(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

/// Splits `total` into `n` shares that sum to it exactly: each gets `total / n`, and the
/// remainder goes one each to the shares `start`, `start + 1`, … (wrapping). Empty for `n = 0`.
pub fn split(total: u64, n: usize, start: usize) -> Vec<u64> {
    if n == 0 {
        return Vec::new();
    }
    let n64 = n as u64;
    let (base, rem) = (total / n64, (total % n64) as usize);
    let start = start % n;
    (0..n).map(|i| base + u64::from((i + n - start) % n < rem)).collect()
}

/// The transfers that credit a completed service: for each volunteer (in id order) the
/// minutes, then the share of the points; then the team's points. Zero amounts are left out. Each
/// id is [`TransferId::service_credit`] of the request and the account, so submitting the result
/// twice credits nothing twice. Pure and total: an invalid policy only gives odd amounts (call
/// [`CreditPolicy::validate`] when loading it).
pub fn service_credit(policy: &CreditPolicy, input: &CreditInput) -> Vec<TransferSpec> {
    let mut volunteers: Vec<&VolunteerId> = input.volunteers.iter().collect();
    volunteers.sort_unstable();
    volunteers.dedup();
    let start = (fnv1a(input.request.as_str()) % (volunteers.len().max(1) as u64)) as usize;
    let shares = split(policy.points_total(input), volunteers.len(), start);
    let mut out = Vec::with_capacity(volunteers.len() * 2 + 1);
    let mut credit = |debit: AccountId, credit: AccountId, amount: u64| {
        if amount == 0 {
            return;
        }
        let id = TransferId::service_credit(&input.request, &credit).expect("service credits reach this account");
        out.push(TransferSpec {
            id,
            debit,
            credit,
            amount,
            kind: TransferKind::ServiceCredit { request: input.request.clone() },
            timeout_s: None,
        });
    };
    for (v, share) in volunteers.into_iter().zip(shares) {
        credit(AccountId::MinutesIssuance, AccountId::VolunteerMinutes(v.clone()), u64::from(input.minutes));
        credit(AccountId::PointsIssuance, AccountId::VolunteerPoints(v.clone()), share);
    }
    if let Some(team) = &input.team {
        credit(AccountId::PointsIssuance, AccountId::TeamPoints(team.clone()), policy.team_points(input));
    }
    out
}

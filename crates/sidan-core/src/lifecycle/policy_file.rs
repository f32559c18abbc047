//! The lifecycle policy file: defaults and per-unit overrides in TOML,
//! resolved down the unit hierarchy into a [`PolicyBook`].
//!
//! ```toml
//! holidays = ["2026-10-01", "2026-10-02"] # local dates; service on them earns credit.holiday_pct
//!
//! [defaults]                      # any subset of the keys; the rest keep their built-in defaults
//! offer_deadline_s = 1800
//!
//! [units."cz-xh"]                 # a county: applies to its whole subtree
//! emergency_fanout = 8
//! scoring.weights.proximity = 0.5 # the other weights are inherited, not reset
//!
//! [units."cz-xh-jd-bj"]           # a station under it: overrides again on top
//! offer_deadline_s = 3600
//! ```
//!
//! A unit's policy is its parent's resolved policy with the unit's own
//! overrides applied key by key; a root's parent is the `[defaults]` table
//! applied to [`LifecyclePolicy::default`]. Every key is optional at every
//! level, nested scoring keys included, so an override never resets a key it
//! does not name. Unknown keys, wrong types and unknown units are errors that
//! name the key path (`units."cz-s1".scoring.weights.proximty`), so a typo
//! never silently becomes a default; values are validated after resolution and
//! the error names the unit and the key. The format and every key are
//! documented in `docs/policy.md`, with a complete example in
//! `examples/policy.toml`.

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Range;

use chrono::NaiveDate;
use serde::Deserialize;
use serde_path_to_error::Segment;

use crate::id::UnitId;
use crate::ledger::CreditPolicy;
use crate::lifecycle::policy::{LifecyclePolicy, PolicyBook};
use crate::score::{PolicyError, ScoringPolicy, UrgencyFactors, Weights};
use crate::units::{UnitIdx, UnitKind, UnitTree};

/// A partial [`LifecyclePolicy`]: every key optional, applied on top of a base policy.
///
/// Field names and meanings are those of [`LifecyclePolicy`]; `None` keeps the base value.
#[derive(Debug, Clone, Copy, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyPatch {
    /// See [`LifecyclePolicy::offer_deadline_s`].
    pub offer_deadline_s: Option<u32>,
    /// See [`LifecyclePolicy::urgent_offer_deadline_s`].
    pub urgent_offer_deadline_s: Option<u32>,
    /// See [`LifecyclePolicy::emergency_offer_deadline_s`].
    pub emergency_offer_deadline_s: Option<u32>,
    /// See [`LifecyclePolicy::emergency_fanout`].
    pub emergency_fanout: Option<u32>,
    /// See [`LifecyclePolicy::recruitment_deadline_s`].
    pub recruitment_deadline_s: Option<u32>,
    /// See [`LifecyclePolicy::start_scope`].
    pub start_scope: Option<UnitKind>,
    /// See [`LifecyclePolicy::emergency_start_scope`].
    pub emergency_start_scope: Option<UnitKind>,
    /// See [`LifecyclePolicy::escalate_after_misses`].
    pub escalate_after_misses: Option<u32>,
    /// See [`LifecyclePolicy::escalate_after_min`].
    pub escalate_after_min: Option<u32>,
    /// See [`LifecyclePolicy::evaluation_window_h`].
    pub evaluation_window_h: Option<u32>,
    /// See [`LifecyclePolicy::retention_h`].
    pub retention_h: Option<u32>,
    /// See [`LifecyclePolicy::rating_weight_resident`].
    pub rating_weight_resident: Option<f64>,
    /// See [`LifecyclePolicy::rating_weight_station`].
    pub rating_weight_station: Option<f64>,
    /// See [`LifecyclePolicy::rating_weight_team`].
    pub rating_weight_team: Option<f64>,
    /// See [`LifecyclePolicy::rating_weight_third_party`].
    pub rating_weight_third_party: Option<f64>,
    /// See [`LifecyclePolicy::missing_rating_score`].
    pub missing_rating_score: Option<u8>,
    /// See [`LifecyclePolicy::third_party_sample_rate`].
    pub third_party_sample_rate: Option<f64>,
    /// Overrides of the scoring policy, key by key.
    #[serde(default)]
    pub scoring: ScoringPatch,
    /// Overrides of the credit policy, key by key.
    #[serde(default)]
    pub credit: CreditPatch,
}

/// A partial [`CreditPolicy`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreditPatch {
    /// See [`CreditPolicy::points_per_hour`].
    pub points_per_hour: Option<u32>,
    /// See [`CreditPolicy::team_points_per_hour`].
    pub team_points_per_hour: Option<u32>,
    /// See [`CreditPolicy::urgent_pct`].
    pub urgent_pct: Option<u32>,
    /// See [`CreditPolicy::night_pct`].
    pub night_pct: Option<u32>,
    /// See [`CreditPolicy::holiday_pct`].
    pub holiday_pct: Option<u32>,
}

/// A partial [`ScoringPolicy`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScoringPatch {
    /// Overrides of the term weights, weight by weight.
    #[serde(default)]
    pub weights: WeightsPatch,
    /// See [`ScoringPolicy::max_travel_min`].
    pub max_travel_min: Option<f64>,
    /// Overrides of the urgency factors, factor by factor.
    #[serde(default)]
    pub urgency: UrgencyPatch,
    /// See [`ScoringPolicy::reputation_prior`].
    pub reputation_prior: Option<f64>,
    /// See [`ScoringPolicy::continuity_paired`].
    pub continuity_paired: Option<f64>,
    /// See [`ScoringPolicy::continuity_served_before`].
    pub continuity_served_before: Option<f64>,
}

/// A partial [`Weights`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WeightsPatch {
    /// See [`Weights::proximity`].
    pub proximity: Option<f64>,
    /// See [`Weights::reputation`].
    pub reputation: Option<f64>,
    /// See [`Weights::fairness`].
    pub fairness: Option<f64>,
    /// See [`Weights::continuity`].
    pub continuity: Option<f64>,
    /// See [`Weights::specificity`].
    pub specificity: Option<f64>,
}

/// A partial [`UrgencyFactors`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UrgencyPatch {
    /// See [`UrgencyFactors::normal`].
    pub normal: Option<f64>,
    /// See [`UrgencyFactors::urgent`].
    pub urgent: Option<f64>,
    /// See [`UrgencyFactors::emergency`].
    pub emergency: Option<f64>,
}

fn set<T>(slot: &mut T, value: Option<T>) {
    if let Some(v) = value {
        *slot = v;
    }
}

// The `apply` methods destructure their patch without `..`, so a key added to
// a patch that is not applied is a compile error; the `From` impls below do the
// same for the policies, so a key added to a policy but not to its patch is one too.

impl PolicyPatch {
    /// Overwrites the keys this patch sets, leaving the others as they are.
    pub fn apply(&self, base: &mut LifecyclePolicy) {
        let Self {
            offer_deadline_s,
            urgent_offer_deadline_s,
            emergency_offer_deadline_s,
            emergency_fanout,
            recruitment_deadline_s,
            start_scope,
            emergency_start_scope,
            escalate_after_misses,
            escalate_after_min,
            evaluation_window_h,
            retention_h,
            rating_weight_resident,
            rating_weight_station,
            rating_weight_team,
            rating_weight_third_party,
            missing_rating_score,
            third_party_sample_rate,
            scoring,
            credit,
        } = *self;
        set(&mut base.offer_deadline_s, offer_deadline_s);
        set(&mut base.urgent_offer_deadline_s, urgent_offer_deadline_s);
        set(&mut base.emergency_offer_deadline_s, emergency_offer_deadline_s);
        set(&mut base.emergency_fanout, emergency_fanout);
        set(&mut base.recruitment_deadline_s, recruitment_deadline_s);
        set(&mut base.start_scope, start_scope);
        set(&mut base.emergency_start_scope, emergency_start_scope);
        set(&mut base.escalate_after_misses, escalate_after_misses);
        set(&mut base.escalate_after_min, escalate_after_min);
        set(&mut base.evaluation_window_h, evaluation_window_h);
        set(&mut base.retention_h, retention_h);
        set(&mut base.rating_weight_resident, rating_weight_resident);
        set(&mut base.rating_weight_station, rating_weight_station);
        set(&mut base.rating_weight_team, rating_weight_team);
        set(&mut base.rating_weight_third_party, rating_weight_third_party);
        set(&mut base.missing_rating_score, missing_rating_score);
        set(&mut base.third_party_sample_rate, third_party_sample_rate);
        scoring.apply(&mut base.scoring);
        credit.apply(&mut base.credit);
    }

    /// Whether the patch sets no key at all.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

impl ScoringPatch {
    /// Overwrites the keys this patch sets, leaving the others as they are.
    pub fn apply(&self, base: &mut ScoringPolicy) {
        let Self { weights, max_travel_min, urgency, reputation_prior, continuity_paired, continuity_served_before } =
            *self;
        weights.apply(&mut base.weights);
        set(&mut base.max_travel_min, max_travel_min);
        urgency.apply(&mut base.urgency);
        set(&mut base.reputation_prior, reputation_prior);
        set(&mut base.continuity_paired, continuity_paired);
        set(&mut base.continuity_served_before, continuity_served_before);
    }
}

impl CreditPatch {
    /// Overwrites the keys this patch sets, leaving the others as they are.
    pub fn apply(&self, base: &mut CreditPolicy) {
        let Self { points_per_hour, team_points_per_hour, urgent_pct, night_pct, holiday_pct } = *self;
        set(&mut base.points_per_hour, points_per_hour);
        set(&mut base.team_points_per_hour, team_points_per_hour);
        set(&mut base.urgent_pct, urgent_pct);
        set(&mut base.night_pct, night_pct);
        set(&mut base.holiday_pct, holiday_pct);
    }
}

/// The patch that sets every key to this policy's value.
impl From<CreditPolicy> for CreditPatch {
    fn from(p: CreditPolicy) -> Self {
        let CreditPolicy { points_per_hour, team_points_per_hour, urgent_pct, night_pct, holiday_pct } = p;
        Self {
            points_per_hour: Some(points_per_hour),
            team_points_per_hour: Some(team_points_per_hour),
            urgent_pct: Some(urgent_pct),
            night_pct: Some(night_pct),
            holiday_pct: Some(holiday_pct),
        }
    }
}

impl WeightsPatch {
    /// Overwrites the weights this patch sets, leaving the others as they are.
    pub fn apply(&self, base: &mut Weights) {
        let Self { proximity, reputation, fairness, continuity, specificity } = *self;
        set(&mut base.proximity, proximity);
        set(&mut base.reputation, reputation);
        set(&mut base.fairness, fairness);
        set(&mut base.continuity, continuity);
        set(&mut base.specificity, specificity);
    }
}

impl UrgencyPatch {
    /// Overwrites the factors this patch sets, leaving the others as they are.
    pub fn apply(&self, base: &mut UrgencyFactors) {
        let Self { normal, urgent, emergency } = *self;
        set(&mut base.normal, normal);
        set(&mut base.urgent, urgent);
        set(&mut base.emergency, emergency);
    }
}

/// The patch that sets every key to this policy's value.
impl From<LifecyclePolicy> for PolicyPatch {
    fn from(p: LifecyclePolicy) -> Self {
        let LifecyclePolicy {
            offer_deadline_s,
            urgent_offer_deadline_s,
            emergency_offer_deadline_s,
            emergency_fanout,
            recruitment_deadline_s,
            start_scope,
            emergency_start_scope,
            escalate_after_misses,
            escalate_after_min,
            evaluation_window_h,
            retention_h,
            rating_weight_resident,
            rating_weight_station,
            rating_weight_team,
            rating_weight_third_party,
            missing_rating_score,
            third_party_sample_rate,
            scoring,
            credit,
        } = p;
        Self {
            offer_deadline_s: Some(offer_deadline_s),
            urgent_offer_deadline_s: Some(urgent_offer_deadline_s),
            emergency_offer_deadline_s: Some(emergency_offer_deadline_s),
            emergency_fanout: Some(emergency_fanout),
            recruitment_deadline_s: Some(recruitment_deadline_s),
            start_scope: Some(start_scope),
            emergency_start_scope: Some(emergency_start_scope),
            escalate_after_misses: Some(escalate_after_misses),
            escalate_after_min: Some(escalate_after_min),
            evaluation_window_h: Some(evaluation_window_h),
            retention_h: Some(retention_h),
            rating_weight_resident: Some(rating_weight_resident),
            rating_weight_station: Some(rating_weight_station),
            rating_weight_team: Some(rating_weight_team),
            rating_weight_third_party: Some(rating_weight_third_party),
            missing_rating_score: Some(missing_rating_score),
            third_party_sample_rate: Some(third_party_sample_rate),
            scoring: scoring.into(),
            credit: credit.into(),
        }
    }
}

/// The patch that sets every key to this policy's value.
impl From<ScoringPolicy> for ScoringPatch {
    fn from(p: ScoringPolicy) -> Self {
        let ScoringPolicy {
            weights,
            max_travel_min,
            urgency,
            reputation_prior,
            continuity_paired,
            continuity_served_before,
        } = p;
        let Weights { proximity, reputation, fairness, continuity, specificity } = weights;
        let UrgencyFactors { normal, urgent, emergency } = urgency;
        Self {
            weights: WeightsPatch {
                proximity: Some(proximity),
                reputation: Some(reputation),
                fairness: Some(fairness),
                continuity: Some(continuity),
                specificity: Some(specificity),
            },
            max_travel_min: Some(max_travel_min),
            urgency: UrgencyPatch { normal: Some(normal), urgent: Some(urgent), emergency: Some(emergency) },
            reputation_prior: Some(reputation_prior),
            continuity_paired: Some(continuity_paired),
            continuity_served_before: Some(continuity_served_before),
        }
    }
}

/// The whole file: `[defaults]` and `[units."<id>"]` tables, both optional.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyFile {
    /// Public holidays of the city, as local dates `YYYY-MM-DD`.
    #[serde(default)]
    holidays: Vec<NaiveDate>,
    #[serde(default)]
    defaults: PolicyPatch,
    #[serde(default)]
    units: BTreeMap<String, PolicyPatch>,
    /// The byte span of each unit id as written, for error positions.
    #[serde(skip)]
    unit_spans: Vec<(String, Range<usize>)>,
}

/// A place in the policy file, both counted from 1 (the column in characters).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TextPosition {
    /// The line.
    pub line: usize,
    /// The column, in characters.
    pub column: usize,
}

impl TextPosition {
    /// The position of byte `offset` of `text`, or `None` if it is not a character boundary of it.
    fn of(text: &str, offset: usize) -> Option<Self> {
        let before = text.get(..offset)?;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let line = before.matches('\n').count() + 1;
        let column = before[line_start..].chars().count() + 1;
        Some(Self { line, column })
    }
}

impl fmt::Display for TextPosition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}, column {}", self.line, self.column)
    }
}

/// Renders an optional position as ` (line L, column C)`, or nothing.
struct At<'a>(&'a Option<TextPosition>);

impl fmt::Display for At<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(p) => write!(f, " ({p})"),
            None => Ok(()),
        }
    }
}

/// Why a policy file cannot be loaded. Every variant but [`Syntax`](Self::Syntax)
/// names the key path, like `units."cz-s1".scoring.weights.proximity`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyFileError {
    /// The text is not valid TOML (a duplicate table or key is a syntax error too).
    #[error("policy file is not valid TOML{}: {message}", At(.at))]
    Syntax {
        /// What the parser says.
        message: String,
        /// Where, if known.
        at: Option<TextPosition>,
    },
    /// A key the format does not have.
    #[error("`{path}`: unknown key{}{}", Hint(.hint), At(.at))]
    UnknownKey {
        /// The full key path, ending with the unknown key.
        path: String,
        /// The keys allowed there, as the parser lists them (`expected one of ...`), if it does.
        hint: Option<String>,
        /// Where, if known.
        at: Option<TextPosition>,
    },
    /// A value of the wrong type, or out of the range of its type (a negative count, an unknown unit kind).
    #[error("`{path}`: {message}{}", At(.at))]
    BadValue {
        /// The full key path.
        path: String,
        /// What is wrong, as the parser says it.
        message: String,
        /// Where, if known.
        at: Option<TextPosition>,
    },
    /// A `[units."<id>"]` table names no unit of the hierarchy.
    #[error("`{path}`: unknown unit{}", At(.at))]
    UnknownUnit {
        /// The unit id as written.
        unit: String,
        /// `units."<id>"`.
        path: String,
        /// Where the id is written, if known.
        at: Option<TextPosition>,
    },
    /// A resolved policy holds an invalid value.
    ///
    /// Units are checked parents first, so the unit named is the one whose own
    /// table sets the offending key (or `defaults`, when `unit` is `None`).
    #[error("`{path}`: {problem}")]
    InvalidValue {
        /// The unit whose resolved policy is invalid; `None` for the defaults.
        unit: Option<UnitId>,
        /// The key inside the policy, like `scoring.weights.proximity`.
        key: &'static str,
        /// The full key path: `defaults.<key>` or `units."<id>".<key>`.
        path: String,
        /// What is wrong with the value.
        problem: String,
    },
}

/// Renders an optional hint as `, <hint>`, or nothing.
struct Hint<'a>(&'a Option<String>);

impl fmt::Display for Hint<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(h) => write!(f, ", {h}"),
            None => Ok(()),
        }
    }
}

impl PolicyFileError {
    /// The full key path the error is about, like `units."cz-c1".emergency_fanout`;
    /// `None` for a syntax error.
    pub fn path(&self) -> Option<&str> {
        match self {
            Self::Syntax { .. } => None,
            Self::UnknownKey { path, .. }
            | Self::BadValue { path, .. }
            | Self::UnknownUnit { path, .. }
            | Self::InvalidValue { path, .. } => Some(path),
        }
    }

    /// Where in the text the error is, when the parser knows.
    pub fn position(&self) -> Option<TextPosition> {
        match self {
            Self::Syntax { at, .. }
            | Self::UnknownKey { at, .. }
            | Self::BadValue { at, .. }
            | Self::UnknownUnit { at, .. } => *at,
            Self::InvalidValue { .. } => None,
        }
    }

    fn invalid(unit: Option<&UnitId>, e: PolicyError) -> Self {
        let path = match unit {
            Some(id) => format!("{}.{}", unit_path(id.as_str()), e.key),
            None => format!("defaults.{}", e.key),
        };
        Self::InvalidValue { unit: unit.cloned(), key: e.key, path, problem: e.problem }
    }
}

/// `units."<id>"`, quoted as TOML writes it.
fn unit_path(id: &str) -> String {
    format!("units.{id:?}")
}

/// Renders a deserialization path as a TOML key path, quoting the unit id after `units`.
fn render_path(path: &serde_path_to_error::Path) -> String {
    let mut out = String::new();
    let mut under_units = false;
    for (i, segment) in path.iter().enumerate() {
        if i > 0 && !matches!(segment, Segment::Seq { .. }) {
            out.push('.');
        }
        match segment {
            Segment::Map { key } if i == 1 && under_units => out.push_str(&format!("{key:?}")),
            Segment::Map { key } => out.push_str(key),
            Segment::Enum { variant } => out.push_str(variant),
            Segment::Seq { index } => out.push_str(&format!("[{index}]")),
            Segment::Unknown => out.push('?'),
        }
        under_units = i == 0 && matches!(segment, Segment::Map { key } if key == "units");
    }
    out
}

/// The byte span of each `[units."<id>"]` key, for error positions.
fn unit_key_spans(root: &toml::de::DeTable<'_>) -> Vec<(String, Range<usize>)> {
    let Some((_, units)) = root.iter().find(|(k, _)| k.get_ref() == "units") else {
        return Vec::new();
    };
    match units.get_ref() {
        toml::de::DeValue::Table(t) => t.iter().map(|(k, _)| (k.get_ref().to_string(), k.span())).collect(),
        _ => Vec::new(),
    }
}

fn parse(text: &str) -> Result<PolicyFile, PolicyFileError> {
    let at = |span: Option<Range<usize>>| span.and_then(|s| TextPosition::of(text, s.start));
    let root = toml::de::DeTable::parse(text)
        .map_err(|e| PolicyFileError::Syntax { message: e.message().trim().to_owned(), at: at(e.span()) })?;
    let spans = unit_key_spans(root.get_ref());
    let mut file: PolicyFile = serde_path_to_error::deserialize(toml::Deserializer::from(root)).map_err(|e| {
        let path = render_path(e.path());
        let inner = e.into_inner();
        let message = inner.message().trim().to_owned();
        let at = at(inner.span());
        // serde phrases every unknown field as "unknown field `<name>`, expected ..."; the
        // path already ends with the field, since serde_path_to_error records the key first.
        match message.strip_prefix("unknown field `") {
            Some(rest) => {
                let hint = rest.split_once("`, ").map(|(_, hint)| hint.to_owned());
                PolicyFileError::UnknownKey { path, hint, at }
            }
            None => PolicyFileError::BadValue { path, message, at },
        }
    })?;
    file.unit_spans = spans;
    Ok(file)
}

impl PolicyBook {
    /// Loads a policy file (see the [module docs](crate::lifecycle::policy_file)) for the units of `units`.
    ///
    /// # Errors
    /// A TOML syntax error, an unknown key, a value of the wrong type, a table
    /// for a unit `units` does not have, or a resolved policy that is invalid;
    /// each names the key path (see [`PolicyFileError::path`]).
    pub fn from_toml(text: &str, units: &UnitTree) -> Result<PolicyBook, PolicyFileError> {
        let file = parse(text)?;
        let idx_of = |id: &str| UnitId::new(id).ok().and_then(|uid| units.idx(&uid));
        let offset_of = |id: &str| file.unit_spans.iter().find(|(k, _)| k == id).map(|(_, span)| span.start);
        // Report the first unknown unit in file order, not in key order.
        let unknown =
            file.units.keys().filter(|id| idx_of(id).is_none()).min_by_key(|id| offset_of(id).unwrap_or(usize::MAX));
        if let Some(id) = unknown {
            let at = offset_of(id).and_then(|offset| TextPosition::of(text, offset));
            return Err(PolicyFileError::UnknownUnit { unit: id.clone(), path: unit_path(id), at });
        }
        let overrides: BTreeMap<UnitIdx, PolicyPatch> =
            file.units.iter().filter_map(|(id, patch)| Some((idx_of(id)?, *patch))).collect();
        Ok(Self::from_patches(&file.defaults, &overrides, units)?.with_holidays(file.holidays))
    }

    /// Resolves defaults and per-unit overrides down the hierarchy: a unit's
    /// policy is its parent's with its own patch applied; a root's parent is
    /// `defaults` applied to [`LifecyclePolicy::default`].
    ///
    /// # Errors
    /// If the defaults or any unit's resolved policy is invalid, naming the unit and the key.
    ///
    /// # Panics
    /// If `overrides` names a unit index `units` does not have.
    pub fn from_patches(
        defaults: &PolicyPatch,
        overrides: &BTreeMap<UnitIdx, PolicyPatch>,
        units: &UnitTree,
    ) -> Result<PolicyBook, PolicyFileError> {
        let mut root = LifecyclePolicy::default();
        defaults.apply(&mut root);
        root.validate().map_err(|e| PolicyFileError::invalid(None, e))?;
        assert!(
            overrides.keys().all(|idx| (idx.0 as usize) < units.len()),
            "an override names a unit index the tree does not have"
        );
        // A unit is inserted after its parent (`UnitTree::add` needs the parent present), so in
        // index order each parent is resolved, and validated, before its children.
        let mut per_unit: Vec<LifecyclePolicy> = Vec::with_capacity(units.len());
        for (idx, unit) in units.iter() {
            let mut policy = match unit.parent {
                None => root,
                Some(p) => *per_unit.get(p.0 as usize).expect("a unit's parent precedes it in index order"),
            };
            if let Some(patch) = overrides.get(&idx) {
                patch.apply(&mut policy);
            }
            policy.validate().map_err(|e| PolicyFileError::invalid(Some(&unit.id), e))?;
            per_unit.push(policy);
        }
        PolicyBook::from_resolved(root, per_unit).map_err(|e| PolicyFileError::invalid(None, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    use crate::units::UnitSpec;

    fn spec(id: &str, kind: UnitKind, parent: Option<&str>) -> UnitSpec {
        UnitSpec {
            id: UnitId::new(id).expect("valid id"),
            name: id.to_owned(),
            kind,
            parent: parent.map(|p| UnitId::new(p).expect("valid id")),
            tz: None,
            location: None,
        }
    }

    /// cz ─┬─ cz-c1 ── cz-i1 ─┬─ cz-s1
    ///     │                  └─ cz-s2
    ///     └─ cz-c2 ── cz-i2 ── cz-s3
    fn tree() -> UnitTree {
        use UnitKind::*;
        UnitTree::build(&[
            spec("cz-s1", Station, Some("cz-i1")),
            spec("cz", City, None),
            spec("cz-c1", County, Some("cz")),
            spec("cz-i1", Institute, Some("cz-c1")),
            spec("cz-s2", Station, Some("cz-i1")),
            spec("cz-c2", County, Some("cz")),
            spec("cz-i2", Institute, Some("cz-c2")),
            spec("cz-s3", Station, Some("cz-i2")),
        ])
        .expect("valid tree")
    }

    fn policy<'b>(book: &'b PolicyBook, units: &UnitTree, id: &str) -> &'b LifecyclePolicy {
        book.for_unit(units.idx(&UnitId::new(id).expect("valid id")).expect("known unit"))
    }

    fn load_err(text: &str) -> PolicyFileError {
        PolicyBook::from_toml(text, &tree()).expect_err("the file is invalid")
    }

    #[test]
    fn empty_file_gives_the_built_in_defaults_everywhere() {
        let units = tree();
        let book = PolicyBook::from_toml("", &units).expect("valid");
        assert_eq!(book.len(), units.len());
        assert_eq!(*book.default_policy(), LifecyclePolicy::default());
        for (idx, _) in units.iter() {
            assert_eq!(*book.for_unit(idx), LifecyclePolicy::default());
        }
    }

    #[test]
    fn overrides_inherit_across_three_levels() {
        let units = tree();
        let text = r#"
            [defaults]
            offer_deadline_s = 1200
            start_scope = "institute"

            [units."cz-c1"]
            offer_deadline_s = 900
            emergency_fanout = 8

            [units."cz-i1"]
            escalate_after_misses = 2

            [units."cz-s1"]
            offer_deadline_s = 600
            start_scope = "station"
        "#;
        let book = PolicyBook::from_toml(text, &units).expect("valid");
        let d = LifecyclePolicy::default();
        let expect = |offer, fanout, misses, scope| LifecyclePolicy {
            offer_deadline_s: offer,
            emergency_fanout: fanout,
            escalate_after_misses: misses,
            start_scope: scope,
            ..d
        };
        use UnitKind::*;
        assert_eq!(*book.default_policy(), expect(1200, d.emergency_fanout, d.escalate_after_misses, Institute));
        assert_eq!(*policy(&book, &units, "cz"), expect(1200, d.emergency_fanout, d.escalate_after_misses, Institute));
        assert_eq!(*policy(&book, &units, "cz-c1"), expect(900, 8, d.escalate_after_misses, Institute));
        assert_eq!(*policy(&book, &units, "cz-i1"), expect(900, 8, 2, Institute));
        assert_eq!(*policy(&book, &units, "cz-s1"), expect(600, 8, 2, Station));
        // A sibling inherits from the institute, not from cz-s1.
        assert_eq!(*policy(&book, &units, "cz-s2"), expect(900, 8, 2, Institute));
        // The other county sees none of cz-c1's overrides.
        for id in ["cz-c2", "cz-i2", "cz-s3"] {
            assert_eq!(
                *policy(&book, &units, id),
                expect(1200, d.emergency_fanout, d.escalate_after_misses, Institute)
            );
        }
    }

    #[test]
    fn partial_nested_override_keeps_sibling_keys() {
        let units = tree();
        let text = r#"
            [defaults.scoring]
            max_travel_min = 30
            weights.fairness = 0.2

            [units."cz-c1".scoring.weights]
            proximity = 0.5

            [units."cz-s1"]
            scoring.urgency.emergency = 6.0
        "#;
        let book = PolicyBook::from_toml(text, &units).expect("valid");
        let defaults = ScoringPolicy {
            max_travel_min: 30.0,
            weights: Weights { fairness: 0.2, ..Weights::default() },
            ..ScoringPolicy::default()
        };
        assert_eq!(policy(&book, &units, "cz-c2").scoring, defaults);
        let county = policy(&book, &units, "cz-c1").scoring;
        assert_eq!(county.weights, Weights { proximity: 0.5, ..defaults.weights });
        assert_eq!(county.weights.fairness, 0.2, "a weight set in the defaults survives a county's other weight");
        assert_eq!(county.max_travel_min, 30.0);
        assert_eq!(county.urgency, UrgencyFactors::default());
        let station = policy(&book, &units, "cz-s1").scoring;
        assert_eq!(station.weights, county.weights);
        assert_eq!(station.urgency, UrgencyFactors { emergency: 6.0, ..UrgencyFactors::default() });
        assert_eq!(policy(&book, &units, "cz-s2").scoring, county);
    }

    #[test]
    fn syntax_errors_give_line_and_column() {
        let e = load_err("[defaults]\noffer_deadline_s = \n");
        assert!(matches!(e, PolicyFileError::Syntax { at: Some(TextPosition { line: 2, .. }), .. }), "{e:?}");
        assert_eq!(e.path(), None);
        let e = load_err("[units.\"cz-s1\"]\nemergency_fanout = 3\n[units.\"cz-s1\"]\n");
        assert!(matches!(e, PolicyFileError::Syntax { at: Some(TextPosition { line: 3, .. }), .. }), "{e:?}");
        assert!(e.to_string().starts_with("policy file is not valid TOML (line 3, column"), "{e}");
    }

    #[test]
    fn unknown_keys_name_their_full_path() {
        let e = load_err("[units.\"cz-s1\".scoring.weights]\nproximty = 0.4\n");
        assert_eq!(e.path(), Some(r#"units."cz-s1".scoring.weights.proximty"#));
        assert_eq!(e.position(), Some(TextPosition { line: 2, column: 1 }));
        assert!(matches!(&e, PolicyFileError::UnknownKey { hint: Some(h), .. } if h.contains("`proximity`")), "{e:?}");
        let shown = e.to_string();
        assert!(
            shown.starts_with(r#"`units."cz-s1".scoring.weights.proximty`: unknown key, expected one of"#),
            "{shown}"
        );
        assert!(shown.ends_with("(line 2, column 1)"), "{shown}");

        let e = load_err("[defaults]\nemergency_fan_out = 3\n");
        assert_eq!(e.path(), Some("defaults.emergency_fan_out"));
        let e = load_err("[default]\nemergency_fanout = 3\n");
        assert_eq!(e.path(), Some("default"));
        assert!(matches!(e, PolicyFileError::UnknownKey { .. }));
        let e = load_err("[units.\"cz-c1\"]\nscoring.urgency.critical = 3\n");
        assert_eq!(e.path(), Some(r#"units."cz-c1".scoring.urgency.critical"#));
        assert_eq!(e.position().map(|p| p.line), Some(2));
    }

    #[test]
    fn wrong_types_name_their_full_path() {
        let cases = [
            ("[defaults]\noffer_deadline_s = \"30 min\"\n", "defaults.offer_deadline_s", "invalid type"),
            ("[defaults]\nescalate_after_misses = -1\n", "defaults.escalate_after_misses", "invalid value"),
            ("[defaults]\nemergency_fanout = 4.5\n", "defaults.emergency_fanout", "invalid type"),
            ("[units.\"cz-i2\"]\nstart_scope = \"town\"\n", r#"units."cz-i2".start_scope"#, "unknown variant"),
            (
                "[units.\"cz-c2\".scoring]\nmax_travel_min = true\n",
                r#"units."cz-c2".scoring.max_travel_min"#,
                "invalid type",
            ),
            ("[units.\"cz-c2\"]\nscoring = 3\n", r#"units."cz-c2".scoring"#, "invalid type"),
            ("units = [1, 2]\n", "units", "invalid type"),
        ];
        for (text, path, message_start) in cases {
            let e = load_err(text);
            assert!(
                matches!(&e, PolicyFileError::BadValue { message, .. } if message.starts_with(message_start)),
                "{e:?}"
            );
            assert_eq!(e.path(), Some(path), "{text}");
            assert!(e.position().is_some(), "{text}: {e:?}");
            assert!(e.to_string().starts_with(&format!("`{path}`: {message_start}")), "{e}");
        }
    }

    #[test]
    fn unknown_units_are_errors() {
        let e = load_err("[units.\"cz-c1\"]\nemergency_fanout = 8\n\n[units.nope]\nemergency_fanout = 3\n");
        assert_eq!(
            e,
            PolicyFileError::UnknownUnit {
                unit: "nope".into(),
                path: r#"units."nope""#.into(),
                at: Some(TextPosition { line: 4, column: 8 }),
            }
        );
        assert_eq!(e.to_string(), r#"`units."nope"`: unknown unit (line 4, column 8)"#);
        // The first in file order is reported, whatever the key order.
        let e = load_err("[units.zz]\n[units.cz]\n[units.aa]\n");
        assert_eq!(e.path(), Some(r#"units."zz""#));
        // Not even a valid id: still an unknown unit, not a panic.
        let e = load_err("[units.\"a b\"]\n");
        assert_eq!(e.path(), Some(r#"units."a b""#));
        assert!(matches!(e, PolicyFileError::UnknownUnit { .. }));
    }

    #[test]
    fn invalid_values_name_the_unit_and_the_key() {
        let e = load_err("[units.\"cz-c1\"]\nemergency_fanout = 0\n");
        assert_eq!(e.path(), Some(r#"units."cz-c1".emergency_fanout"#));
        assert!(
            matches!(&e, PolicyFileError::InvalidValue { unit: Some(u), key: "emergency_fanout", .. } if u.as_str() == "cz-c1")
        );
        assert_eq!(e.to_string(), r#"`units."cz-c1".emergency_fanout`: 0 is not in 1..=64"#);

        // Checked parents first: the unit named is the one that sets the bad value, not a descendant.
        let e = load_err(
            "[units.\"cz-s1\".scoring.weights]\nproximity = -1\n[units.\"cz-i1\".scoring]\nreputation_prior = 2\n",
        );
        assert_eq!(e.path(), Some(r#"units."cz-i1".scoring.reputation_prior"#));

        let e = load_err("[defaults.scoring.urgency]\nurgent = nan\n");
        assert_eq!(e.path(), Some("defaults.scoring.urgency.urgent"));
        assert!(matches!(e, PolicyFileError::InvalidValue { unit: None, key: "scoring.urgency.urgent", .. }));

        let e = load_err("[defaults]\nevaluation_window_h = 721\n");
        assert_eq!(e.to_string(), "`defaults.evaluation_window_h`: 721 is not in 1..=720 hours");
        // An invalid default is an error even if every unit overrides it.
        let e = load_err("[defaults]\nemergency_fanout = 65\n[units.cz]\nemergency_fanout = 5\n");
        assert_eq!(e.path(), Some("defaults.emergency_fanout"));
    }

    /// A policy in which every key differs from its default (and every float from the others).
    fn all_changed() -> LifecyclePolicy {
        LifecyclePolicy {
            offer_deadline_s: 11,
            urgent_offer_deadline_s: 12,
            emergency_offer_deadline_s: 13,
            emergency_fanout: 14,
            recruitment_deadline_s: 15,
            start_scope: UnitKind::City,
            emergency_start_scope: UnitKind::Institute,
            escalate_after_misses: 16,
            escalate_after_min: 17,
            evaluation_window_h: 18,
            retention_h: 19,
            rating_weight_resident: 0.31,
            rating_weight_station: 0.32,
            rating_weight_team: 0.33,
            rating_weight_third_party: 0.34,
            missing_rating_score: 2,
            third_party_sample_rate: 0.35,
            scoring: ScoringPolicy {
                weights: Weights { proximity: 1.1, reputation: 1.2, fairness: 1.3, continuity: 1.4, specificity: 1.5 },
                max_travel_min: 1.6,
                urgency: UrgencyFactors { normal: 1.7, urgent: 1.8, emergency: 1.9 },
                reputation_prior: 0.21,
                continuity_paired: 0.22,
                continuity_served_before: 0.23,
            },
            credit: CreditPolicy {
                points_per_hour: 41,
                team_points_per_hour: 42,
                urgent_pct: 143,
                night_pct: 144,
                holiday_pct: 145,
            },
        }
    }

    #[test]
    fn patches_cover_every_key_of_the_policy() {
        let changed = all_changed();
        let mut p = LifecyclePolicy::default();
        PolicyPatch::from(changed).apply(&mut p);
        assert_eq!(p, changed);
        PolicyPatch::default().apply(&mut p);
        assert_eq!(p, changed);
        assert!(PolicyPatch::default().is_empty() && !PolicyPatch::from(changed).is_empty());

        // The keys LifecyclePolicy serialises are exactly the keys a patch reads.
        let text = toml::to_string(&changed).expect("a policy serialises");
        let patch: PolicyPatch = toml::from_str(&text).expect("a serialised policy is a valid patch");
        assert_eq!(patch, PolicyPatch::from(changed));
        let book = PolicyBook::from_toml(
            &format!("[defaults]\n{text}")
                .replace("[scoring", "[defaults.scoring")
                .replace("[credit", "[defaults.credit"),
            &tree(),
        )
        .expect("valid");
        assert_eq!(*book.default_policy(), changed);
    }

    #[test]
    fn the_example_file_loads_and_inherits() {
        use UnitKind::*;
        let text = include_str!("../../../../examples/policy.toml");
        let units = UnitTree::build(&[
            spec("cz", City, None),
            spec("cz-xh", County, Some("cz")),
            spec("cz-xh-jd", Institute, Some("cz-xh")),
            spec("cz-xh-jd-bj", Station, Some("cz-xh-jd")),
            spec("cz-xh-jd-nj", Station, Some("cz-xh-jd")),
            spec("cz-yh", County, Some("cz")),
        ])
        .expect("valid tree");
        let book = PolicyBook::from_toml(text, &units).expect("the example is valid");
        let october = |d| NaiveDate::from_ymd_opt(2026, 10, d).expect("a date");
        assert_eq!(book.holidays().collect::<Vec<_>>(), [october(1), october(2), october(3)]);
        assert!(book.is_holiday(october(2)) && !book.is_holiday(october(4)));

        // The example's [defaults] table lists every key, at its built-in default.
        let file = parse(text).expect("parses");
        assert_eq!(file.defaults, PolicyPatch::from(LifecyclePolicy::default()), "keep the example complete");
        assert_eq!(*book.default_policy(), LifecyclePolicy::default());
        assert_eq!(*policy(&book, &units, "cz"), LifecyclePolicy::default());
        assert_eq!(*policy(&book, &units, "cz-yh"), LifecyclePolicy::default());

        let county = *policy(&book, &units, "cz-xh");
        assert_ne!(county, LifecyclePolicy::default());
        assert_eq!(county.emergency_fanout, 8);
        assert_eq!(county.scoring.weights.proximity, 0.5);
        assert_eq!(county.scoring.weights.reputation, Weights::default().reputation);
        assert_eq!(*policy(&book, &units, "cz-xh-jd"), county);
        assert_eq!(*policy(&book, &units, "cz-xh-jd-nj"), county);

        let station = *policy(&book, &units, "cz-xh-jd-bj");
        assert_eq!(station.offer_deadline_s, 3600);
        assert_eq!(station.start_scope, Institute);
        assert_eq!(station.emergency_fanout, 8, "inherited from the county");
        assert_eq!(station.scoring.weights, county.scoring.weights);
        assert_eq!(station.scoring.continuity_served_before, 0.7);
    }

    /// Every key with a few valid TOML literals, and how the reference model sets it.
    type KeyCase = (&'static str, &'static [&'static str], fn(&mut LifecyclePolicy, &str));

    fn int(v: &str) -> u32 {
        v.parse().expect("an integer literal")
    }

    fn float(v: &str) -> f64 {
        v.parse().expect("a number literal")
    }

    fn kind(v: &str) -> UnitKind {
        match v {
            "\"city\"" => UnitKind::City,
            "\"county\"" => UnitKind::County,
            "\"institute\"" => UnitKind::Institute,
            "\"station\"" => UnitKind::Station,
            other => panic!("not a unit kind literal: {other}"),
        }
    }

    const KINDS: &[&str] = &["\"city\"", "\"county\"", "\"institute\"", "\"station\""];

    fn keys() -> Vec<KeyCase> {
        vec![
            ("offer_deadline_s", &["1", "900", "2592000"], |p, v| p.offer_deadline_s = int(v)),
            ("urgent_offer_deadline_s", &["1", "300"], |p, v| p.urgent_offer_deadline_s = int(v)),
            ("emergency_offer_deadline_s", &["60", "120"], |p, v| p.emergency_offer_deadline_s = int(v)),
            ("emergency_fanout", &["1", "7", "64"], |p, v| p.emergency_fanout = int(v)),
            ("recruitment_deadline_s", &["3600", "86400"], |p, v| p.recruitment_deadline_s = int(v)),
            ("start_scope", KINDS, |p, v| p.start_scope = kind(v)),
            ("emergency_start_scope", KINDS, |p, v| p.emergency_start_scope = kind(v)),
            ("escalate_after_misses", &["1", "4294967295"], |p, v| p.escalate_after_misses = int(v)),
            ("escalate_after_min", &["1", "43200"], |p, v| p.escalate_after_min = int(v)),
            ("evaluation_window_h", &["1", "720"], |p, v| p.evaluation_window_h = int(v)),
            ("retention_h", &["1", "8784"], |p, v| p.retention_h = int(v)),
            ("rating_weight_resident", &["0.4", "1"], |p, v| p.rating_weight_resident = float(v)),
            ("rating_weight_station", &["0", "0.25"], |p, v| p.rating_weight_station = float(v)),
            ("rating_weight_team", &["0", "0.1"], |p, v| p.rating_weight_team = float(v)),
            ("rating_weight_third_party", &["0", "0.5"], |p, v| p.rating_weight_third_party = float(v)),
            ("missing_rating_score", &["1", "3", "5"], |p, v| p.missing_rating_score = int(v) as u8),
            ("third_party_sample_rate", &["0", "0.1", "1"], |p, v| p.third_party_sample_rate = float(v)),
            ("scoring.weights.proximity", &["0", "0.5", "3"], |p, v| p.scoring.weights.proximity = float(v)),
            ("scoring.weights.reputation", &["0.0", "1.25"], |p, v| p.scoring.weights.reputation = float(v)),
            ("scoring.weights.fairness", &["0.3", "2"], |p, v| p.scoring.weights.fairness = float(v)),
            ("scoring.weights.continuity", &["0", "0.05"], |p, v| p.scoring.weights.continuity = float(v)),
            ("scoring.weights.specificity", &["0.4", "1e-3"], |p, v| p.scoring.weights.specificity = float(v)),
            ("scoring.max_travel_min", &["0.5", "90"], |p, v| p.scoring.max_travel_min = float(v)),
            ("scoring.urgency.normal", &["0", "1.5"], |p, v| p.scoring.urgency.normal = float(v)),
            ("scoring.urgency.urgent", &["3", "2.5"], |p, v| p.scoring.urgency.urgent = float(v)),
            ("scoring.urgency.emergency", &["8", "10.0"], |p, v| p.scoring.urgency.emergency = float(v)),
            ("scoring.reputation_prior", &["0", "1", "0.45"], |p, v| p.scoring.reputation_prior = float(v)),
            ("scoring.continuity_paired", &["0.9", "1.0"], |p, v| p.scoring.continuity_paired = float(v)),
            ("scoring.continuity_served_before", &["0", "0.25"], |p, v| p.scoring.continuity_served_before = float(v)),
        ]
    }

    /// One override: (key index, value index), both reduced modulo the table sizes.
    type Overrides = Vec<(usize, usize)>;

    /// The overrides as a TOML table body, one dotted key per line (the last setting of a key wins).
    fn settings(keys: &[KeyCase], overrides: &Overrides) -> BTreeMap<usize, &'static str> {
        overrides
            .iter()
            .map(|&(k, v)| {
                let k = k % keys.len();
                (k, keys[k].1[v % keys[k].1.len()])
            })
            .collect()
    }

    proptest! {
        /// Resolution equals folding the defaults, then the overrides of the unit's ancestors from the
        /// root down, then its own, onto the built-in defaults, one key at a time.
        #[test]
        fn resolution_matches_folding_ancestors_then_self(
            parents in proptest::collection::vec(0usize..1000, 0..12),
            defaults in proptest::collection::vec((0usize..100, 0usize..10), 0..4),
            placed in proptest::collection::vec((0usize..100, proptest::collection::vec((0usize..100, 0usize..10), 0..4)), 0..8),
        ) {
            use UnitKind::*;
            // A random forest of up to two cities, with each unit's parent among the earlier non-stations.
            let mut specs = vec![spec("u0", City, None)];
            for (i, p) in parents.iter().enumerate() {
                let id = format!("u{}", i + 1);
                if p % 7 == 0 && specs.iter().filter(|s| s.kind == City).count() < 2 {
                    specs.push(spec(&id, City, None));
                    continue;
                }
                let choices: Vec<&UnitSpec> = specs.iter().filter(|s| s.kind != Station).collect();
                let parent = choices[p % choices.len()];
                let kind = match parent.kind { City => County, County => Institute, _ => Station };
                let parent = parent.id.to_string();
                specs.push(spec(&id, kind, Some(&parent)));
            }
            let units = UnitTree::build(&specs).expect("valid tree");
            let keys = keys();

            let mut per_unit: BTreeMap<UnitIdx, Overrides> = BTreeMap::new();
            for (u, o) in placed {
                per_unit.entry(UnitIdx((u % units.len()) as u32)).or_default().extend(o);
            }
            let mut text = String::from("[defaults]\n");
            for (k, v) in settings(&keys, &defaults) {
                text.push_str(&format!("{} = {v}\n", keys[k].0));
            }
            for (idx, o) in &per_unit {
                text.push_str(&format!("\n[units.\"{}\"]\n", units.get(*idx).id));
                for (k, v) in settings(&keys, o) {
                    text.push_str(&format!("{} = {v}\n", keys[k].0));
                }
            }
            let book = PolicyBook::from_toml(&text, &units).map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;

            let fold = |p: &mut LifecyclePolicy, o: &Overrides| {
                for (k, v) in settings(&keys, o) {
                    (keys[k].2)(p, v);
                }
            };
            let mut root = LifecyclePolicy::default();
            fold(&mut root, &defaults);
            prop_assert_eq!(book.default_policy(), &root);
            for (idx, _) in units.iter() {
                let mut chain: Vec<UnitIdx> = units.ancestors(idx).collect();
                chain.reverse();
                chain.push(idx);
                let mut expect = root;
                for u in chain {
                    if let Some(o) = per_unit.get(&u) {
                        fold(&mut expect, o);
                    }
                }
                prop_assert_eq!(book.for_unit(idx), &expect, "unit {}\n{}", units.get(idx).id, text);
            }
        }
    }
}

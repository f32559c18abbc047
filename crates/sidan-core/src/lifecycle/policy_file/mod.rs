//! The lifecycle policy file: defaults and per-unit overrides in TOML,
//! resolved down the unit hierarchy into a [`PolicyBook`].
//!
//! ```toml
//! holidays = ["2026-10-01", "2026-10-02"] # local dates; service on them earns credit.holiday_pct
//!
//! [memory]                        # city-wide: how long the engine keeps what it no longer needs
//! ledger_days = 30                # settled transfers (retry and reversal window)
//! retired_ids_days = 30           # ids of requests that left memory
//! continuity_days = 90            # a team counts as having served a household
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
//! A unit's table is its parent's merged table with the unit's own keys on
//! top, nested tables merged key by key (see [`merge`]); a root's parent is
//! `[defaults]`. The merged table is deserialised once per unit that has a
//! table of its own into [`LifecyclePolicy`], whose serde defaults fill the
//! keys no level names; a unit without a table shares its parent's policy.
//! So an override never resets a key it does not name. Unknown keys, wrong
//! types and unknown units are errors that name the key path
//! (`units."cz-s1".scoring.weights.proximty`), so a typo never silently
//! becomes a default; values are validated per unit, parents first, and the
//! error names the unit and the key. The format and every key are documented
//! in `docs/policy.md`, with a complete example in `examples/policy.toml`.

mod merge;

use std::collections::BTreeMap;
use std::fmt;

use chrono::NaiveDate;
use serde::Deserialize;
use serde_path_to_error::Segment;
use toml::de::{DeTable, DeValue};

use crate::id::UnitId;
use crate::lifecycle::PolicyBook;
use crate::lifecycle::policy::MemoryPolicy;
use crate::score::PolicyError;
use crate::units::{UnitIdx, UnitTree};

/// The whole file as far as its shape goes: which top-level keys exist and
/// that `defaults` and each `units` entry are tables. The tables' keys are
/// read afterwards, per unit, from the spanned document (see [`merge`]).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileShape {
    /// Public holidays of the city, as local dates `YYYY-MM-DD`.
    #[serde(default)]
    holidays: Vec<NaiveDate>,
    /// What leaves memory when, city-wide.
    #[serde(default)]
    memory: MemoryPolicy,
    /// Read for its type only: its keys are checked when the defaults are deserialised.
    #[serde(default, rename = "defaults")]
    _defaults: toml::Table,
    /// Read for the types of its entries only, as above.
    #[serde(default, rename = "units")]
    _units: BTreeMap<String, toml::Table>,
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
        problem: crate::score::PolicyProblem,
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
/// Renders a deserialization path as a TOML key path after `prefix` (empty
/// for the document), quoting the unit id that follows a top-level `units`.
fn render_path(prefix: &str, path: &serde_path_to_error::Path) -> String {
    let mut out = prefix.to_owned();
    let mut under_units = false;
    for (i, segment) in path.iter().enumerate() {
        if !out.is_empty() && !matches!(segment, Segment::Seq { .. }) {
            out.push('.');
        }
        match segment {
            Segment::Map { key } if i == 1 && under_units => out.push_str(&format!("{key:?}")),
            Segment::Map { key } => out.push_str(key),
            Segment::Enum { variant } => out.push_str(variant),
            Segment::Seq { index } => out.push_str(&format!("[{index}]")),
            Segment::Unknown => out.push('?'),
        }
        under_units = prefix.is_empty() && i == 0 && matches!(segment, Segment::Map { key } if key == "units");
    }
    out
}

/// The error for a value of `text` that does not deserialise, its path rendered after `prefix`.
fn deserialize_error(text: &str, prefix: &str, e: serde_path_to_error::Error<toml::de::Error>) -> PolicyFileError {
    let path = render_path(prefix, e.path());
    let inner = e.into_inner();
    let message = inner.message().trim().to_owned();
    let at = inner.span().and_then(|s| TextPosition::of(text, s.start));
    // serde phrases every unknown field as "unknown field `<name>`, expected ..."; the
    // path already ends with the field, since serde_path_to_error records the key first.
    match message.strip_prefix("unknown field `") {
        Some(rest) => {
            let hint = rest.split_once("`, ").map(|(_, hint)| hint.to_owned());
            PolicyFileError::UnknownKey { path, hint, at }
        }
        None => PolicyFileError::BadValue { path, message, at },
    }
}

/// The table under top-level `key`, if the document has one (the shape pass made sure it is a table).
fn table<'d, 'i>(root: &'d DeTable<'i>, key: &str) -> Option<&'d toml::Spanned<DeValue<'i>>> {
    root.iter().find(|(k, _)| k.get_ref() == key).map(|(_, v)| v)
}

impl PolicyBook {
    /// Loads a policy file (see the [module docs](crate::lifecycle::policy_file)) for the units of `units`.
    ///
    /// # Errors
    /// A TOML syntax error, an unknown key, a value of the wrong type, a table
    /// for a unit `units` does not have, or a resolved policy that is invalid;
    /// each names the key path (see [`PolicyFileError::path`]).
    pub fn from_toml(text: &str, units: &UnitTree) -> Result<PolicyBook, PolicyFileError> {
        let root = DeTable::parse(text).map_err(|e| PolicyFileError::Syntax {
            message: e.message().trim().to_owned(),
            at: e.span().and_then(|s| TextPosition::of(text, s.start)),
        })?;
        let shape: FileShape = serde_path_to_error::deserialize(toml::Deserializer::from(root.clone()))
            .map_err(|e| deserialize_error(text, "", e))?;
        let root = root.into_inner();

        let empty = toml::Spanned::new(0..0, DeValue::Table(DeTable::new()));
        let defaults = table(&root, "defaults").unwrap_or(&empty);
        let mut own: BTreeMap<UnitIdx, (&str, &toml::Spanned<DeValue<'_>>)> = BTreeMap::new();
        if let Some(DeValue::Table(listed)) = table(&root, "units").map(toml::Spanned::get_ref) {
            // Report the first unknown unit in file order, whatever the key order.
            let mut by_position: Vec<_> = listed.iter().collect();
            by_position.sort_by_key(|(k, _)| k.span().start);
            for (key, value) in by_position {
                let id = key.get_ref().as_ref();
                match UnitId::new(id).ok().and_then(|uid| units.idx(&uid)) {
                    Some(idx) => {
                        own.insert(idx, (id, value));
                    }
                    None => {
                        let at = TextPosition::of(text, key.span().start);
                        return Err(PolicyFileError::UnknownUnit { unit: id.to_owned(), path: unit_path(id), at });
                    }
                }
            }
        }
        merge::resolve(text, defaults, &own, units)?.with_holidays(shape.holidays).with_memory(shape.memory).map_err(
            |e| PolicyFileError::InvalidValue { unit: None, key: e.key, path: e.key.to_owned(), problem: e.problem },
        )
    }
}

#[cfg(test)]
mod tests;

//! Resolution of the policy file down the unit hierarchy: TOML tables merged
//! from the root down, then deserialised once per unit into a [`LifecyclePolicy`].
//!
//! The tables are merged in their spanned form ([`DeTable`], the parser's
//! `toml::Table` with byte spans), so a key inherited from an ancestor still
//! points at the line that wrote it when an error is reported.

use std::collections::BTreeMap;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::{PolicyFileError, deserialize_error, unit_path};
use crate::lifecycle::{LifecyclePolicy, PolicyBook};
use crate::units::{UnitIdx, UnitTree};

/// Lays `over` on top of `base`: a key of `over` replaces the same key of
/// `base`, except that where both values are tables they are merged, recursively.
pub(super) fn merge<'i>(base: &mut DeTable<'i>, over: &DeTable<'i>) {
    for (key, value) in over {
        if let (Some(slot), DeValue::Table(nested)) = (base.get_mut(key), value.get_ref())
            && let DeValue::Table(inherited) = slot.get_mut()
        {
            merge(inherited, nested);
            continue;
        }
        // Remove first, so the key keeps the span of the table that sets it.
        base.remove(key);
        base.insert(key.clone(), value.clone());
    }
}

/// The table inside a value the shape pass has checked to be a table.
fn as_table<'d, 'i>(value: &'d Spanned<DeValue<'i>>) -> &'d DeTable<'i> {
    match value.get_ref() {
        DeValue::Table(t) => t,
        _ => unreachable!("the shape pass rejects a `defaults` or `units` entry that is not a table"),
    }
}

/// Deserialises one merged table into a policy and validates it; errors are
/// prefixed with `prefix` (`defaults` or `units."<id>"`) and name `unit`.
fn policy_of(
    text: &str,
    prefix: &str,
    unit: Option<&crate::id::UnitId>,
    table: &Spanned<DeTable<'_>>,
) -> Result<LifecyclePolicy, PolicyFileError> {
    let policy: LifecyclePolicy = serde_path_to_error::deserialize(toml::Deserializer::from(table.clone()))
        .map_err(|e| deserialize_error(text, prefix, e))?;
    policy.validate().map_err(|e| PolicyFileError::invalid(unit, e))?;
    Ok(policy)
}

/// Resolves the defaults and each unit's own table (by index, with the id as
/// written) down the hierarchy into a book.
///
/// Units are visited in index order, where a parent precedes its children
/// (`UnitTree::add` needs the parent present), so an error is reported at
/// the first level that brings the offending key: the defaults, then the
/// unit whose own table sets it, never a descendant that inherits it.
pub(super) fn resolve(
    text: &str,
    defaults: &Spanned<DeValue<'_>>,
    own: &BTreeMap<UnitIdx, (&str, &Spanned<DeValue<'_>>)>,
    units: &UnitTree,
) -> Result<PolicyBook, PolicyFileError> {
    let defaults = Spanned::new(defaults.span(), as_table(defaults).clone());
    let root = policy_of(text, "defaults", None, &defaults)?;
    // The merged tables of the units that have a table of their own; every
    // other unit shares the nearest such ancestor's (or the defaults').
    let mut merged: Vec<Spanned<DeTable<'_>>> = Vec::with_capacity(own.len());
    let mut merged_of: Vec<Option<usize>> = Vec::with_capacity(units.len());
    let mut per_unit: Vec<LifecyclePolicy> = Vec::with_capacity(units.len());
    for (idx, unit) in units.iter() {
        let parent = unit.parent.map(|p| p.0 as usize);
        let inherited_table = parent.and_then(|p| merged_of[p]);
        let inherited_policy = parent.map_or(root, |p| per_unit[p]);
        let Some(&(id, value)) = own.get(&idx) else {
            merged_of.push(inherited_table);
            per_unit.push(inherited_policy);
            continue;
        };
        let mut table = inherited_table.map_or_else(|| defaults.get_ref().clone(), |t| merged[t].get_ref().clone());
        merge(&mut table, as_table(value));
        let table = Spanned::new(value.span(), table);
        per_unit.push(policy_of(text, &unit_path(id), Some(&unit.id), &table)?);
        merged_of.push(Some(merged.len()));
        merged.push(table);
    }
    PolicyBook::from_resolved(root, per_unit).map_err(|e| PolicyFileError::invalid(None, e))
}

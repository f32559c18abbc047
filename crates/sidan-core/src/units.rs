//! The unit hierarchy: city → county center (中心) → town institute (所) →
//! village station (站).
//!
//! Every request and team belongs to one unit, and an admin sees only its
//! unit's subtree. Subtree membership is answered in O(1) from pre-order
//! (Euler tour) intervals, recomputed when a unit is added.

use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use crate::id::UnitId;

/// The time zone a unit has when neither it nor an ancestor names one.
pub const DEFAULT_TZ: Tz = chrono_tz::Asia::Shanghai;

/// The level of a unit in the hierarchy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnitKind {
    /// A city (the root).
    City,
    /// A county or district civilization-practice center (中心).
    County,
    /// A town or street institute (所).
    Institute,
    /// A village or community station (站).
    Station,
}

impl UnitKind {
    /// The kind a parent of this kind must have, or `None` for a root.
    pub fn parent_kind(self) -> Option<UnitKind> {
        match self {
            UnitKind::City => None,
            UnitKind::County => Some(UnitKind::City),
            UnitKind::Institute => Some(UnitKind::County),
            UnitKind::Station => Some(UnitKind::Institute),
        }
    }
}

/// A unit as described in a city file or by an admin.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnitSpec {
    /// Its id.
    pub id: UnitId,
    /// Its display name.
    pub name: String,
    /// Its level.
    pub kind: UnitKind,
    /// Its parent; absent only for a city.
    #[serde(default)]
    pub parent: Option<UnitId>,
    /// Its IANA time zone; inherited from the parent when absent.
    #[serde(default)]
    pub tz: Option<Tz>,
    /// Where the unit's office is, if known.
    #[serde(default)]
    pub location: Option<crate::geo::Location>,
}

/// Dense index of a unit inside a [`UnitTree`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UnitIdx(pub u32);

/// A unit inside the tree.
#[derive(Debug, Clone, PartialEq)]
pub struct Unit {
    /// Its id.
    pub id: UnitId,
    /// Its display name.
    pub name: String,
    /// Its level.
    pub kind: UnitKind,
    /// Its parent, `None` for a city.
    pub parent: Option<UnitIdx>,
    /// Its effective time zone (own or inherited).
    pub tz: Tz,
    /// Where its office is, if known.
    pub location: Option<crate::geo::Location>,
    children: Vec<UnitIdx>,
}

/// Why a unit cannot be added to the hierarchy.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UnitError {
    /// Another unit already has this id.
    #[error("unit {0} is defined twice")]
    DuplicateUnit(UnitId),
    /// The named parent does not exist.
    #[error("unit {unit}: parent {parent} is not a known unit")]
    UnknownParent {
        /// The unit being added.
        unit: UnitId,
        /// The missing parent.
        parent: UnitId,
    },
    /// A non-city unit has no parent, or a city has one.
    #[error("unit {unit}: a {kind:?} {expectation}")]
    BadParentPresence {
        /// The unit being added.
        unit: UnitId,
        /// Its kind.
        kind: UnitKind,
        /// What was expected.
        expectation: &'static str,
    },
    /// The parent's level is not the one right above the unit's.
    #[error("unit {unit}: a {kind:?} must sit under a {expected:?}, but {parent} is a {found:?}")]
    BadParentKind {
        /// The unit being added.
        unit: UnitId,
        /// Its kind.
        kind: UnitKind,
        /// Its parent.
        parent: UnitId,
        /// The kind the parent should have.
        expected: UnitKind,
        /// The kind the parent has.
        found: UnitKind,
    },
}

/// The hierarchy of units.
#[derive(Debug, Clone, Default)]
pub struct UnitTree {
    units: Vec<Unit>,
    by_id: foldhash::HashMap<UnitId, UnitIdx>,
    /// Pre-order entry and exit positions: `b` is in the subtree of `a` iff
    /// `enter[a] <= enter[b] < exit[a]`.
    enter: Vec<u32>,
    exit: Vec<u32>,
}

impl UnitTree {
    /// An empty hierarchy.
    pub fn new() -> Self {
        Self::default()
    }

    /// Builds a hierarchy from specs given in any order (parents may follow children).
    pub fn build(specs: &[UnitSpec]) -> Result<Self, (usize, UnitError)> {
        let mut tree = Self::new();
        let mut pending: Vec<usize> = (0..specs.len()).collect();
        let mut seen = std::collections::HashSet::new();
        for (i, s) in specs.iter().enumerate() {
            if !seen.insert(&s.id) {
                return Err((i, UnitError::DuplicateUnit(s.id.clone())));
            }
        }
        // Repeatedly add the specs whose parent is already present; each pass adds
        // at least one or the rest name unknown parents (or form a cycle).
        while !pending.is_empty() {
            let before = pending.len();
            let mut rest = Vec::new();
            for &i in &pending {
                let s = &specs[i];
                let ready = s.parent.as_ref().is_none_or(|p| tree.by_id.contains_key(p));
                if ready {
                    tree.insert(s).map_err(|e| (i, e))?;
                } else {
                    rest.push(i);
                }
            }
            if rest.len() == before {
                let i = rest[0];
                let s = &specs[i];
                let parent = s.parent.clone().expect("only units with a parent wait");
                return Err((i, UnitError::UnknownParent { unit: s.id.clone(), parent }));
            }
            pending = rest;
        }
        tree.reindex();
        Ok(tree)
    }

    /// Adds one unit whose parent is already present.
    pub fn add(&mut self, spec: &UnitSpec) -> Result<UnitIdx, UnitError> {
        let idx = self.insert(spec)?;
        self.reindex();
        Ok(idx)
    }

    fn insert(&mut self, spec: &UnitSpec) -> Result<UnitIdx, UnitError> {
        if self.by_id.contains_key(&spec.id) {
            return Err(UnitError::DuplicateUnit(spec.id.clone()));
        }
        let parent = match (spec.kind.parent_kind(), &spec.parent) {
            (None, None) => None,
            (None, Some(_)) => {
                return Err(UnitError::BadParentPresence {
                    unit: spec.id.clone(),
                    kind: spec.kind,
                    expectation: "is a root and has no parent",
                });
            }
            (Some(_), None) => {
                return Err(UnitError::BadParentPresence {
                    unit: spec.id.clone(),
                    kind: spec.kind,
                    expectation: "needs a parent",
                });
            }
            (Some(expected), Some(pid)) => {
                let &p = self
                    .by_id
                    .get(pid)
                    .ok_or_else(|| UnitError::UnknownParent { unit: spec.id.clone(), parent: pid.clone() })?;
                let found = self.units[p.0 as usize].kind;
                if found != expected {
                    return Err(UnitError::BadParentKind {
                        unit: spec.id.clone(),
                        kind: spec.kind,
                        parent: pid.clone(),
                        expected,
                        found,
                    });
                }
                Some(p)
            }
        };
        let tz = spec.tz.or_else(|| parent.map(|p| self.units[p.0 as usize].tz)).unwrap_or(DEFAULT_TZ);
        let idx = UnitIdx(u32::try_from(self.units.len()).expect("fewer than 2^32 units"));
        self.units.push(Unit {
            id: spec.id.clone(),
            name: spec.name.clone(),
            kind: spec.kind,
            parent,
            tz,
            location: spec.location,
            children: Vec::new(),
        });
        if let Some(p) = parent {
            self.units[p.0 as usize].children.push(idx);
        }
        self.by_id.insert(spec.id.clone(), idx);
        Ok(idx)
    }

    fn reindex(&mut self) {
        let n = self.units.len();
        self.enter = vec![0; n];
        self.exit = vec![0; n];
        let mut clock = 0u32;
        // Iterative DFS: (node, next child position).
        let mut stack: Vec<(UnitIdx, usize)> = Vec::new();
        for root in (0..n).filter(|&i| self.units[i].parent.is_none()) {
            stack.push((UnitIdx(root as u32), 0));
            self.enter[root] = clock;
            clock += 1;
            while let Some(top) = stack.last_mut() {
                let (node, pos) = *top;
                let children = &self.units[node.0 as usize].children;
                if pos < children.len() {
                    top.1 += 1;
                    let child = children[pos];
                    self.enter[child.0 as usize] = clock;
                    clock += 1;
                    stack.push((child, 0));
                } else {
                    self.exit[node.0 as usize] = clock;
                    stack.pop();
                }
            }
        }
    }

    /// Number of units.
    pub fn len(&self) -> usize {
        self.units.len()
    }

    /// Whether the hierarchy is empty.
    pub fn is_empty(&self) -> bool {
        self.units.is_empty()
    }

    /// The index of the unit with this id.
    pub fn idx(&self, id: &UnitId) -> Option<UnitIdx> {
        self.by_id.get(id).copied()
    }

    /// The unit at `idx`.
    ///
    /// # Panics
    /// If `idx` does not come from this tree.
    pub fn get(&self, idx: UnitIdx) -> &Unit {
        &self.units[idx.0 as usize]
    }

    /// All units in insertion order.
    pub fn iter(&self) -> impl Iterator<Item = (UnitIdx, &Unit)> {
        self.units.iter().enumerate().map(|(i, u)| (UnitIdx(i as u32), u))
    }

    /// The strict ancestors of `idx`, nearest first.
    pub fn ancestors(&self, idx: UnitIdx) -> impl Iterator<Item = UnitIdx> + '_ {
        std::iter::successors(self.get(idx).parent, |&p| self.get(p).parent)
    }

    /// Whether `node` lies in the subtree rooted at `root` (a unit is in its own subtree).
    pub fn is_in_subtree(&self, node: UnitIdx, root: UnitIdx) -> bool {
        let (r, n) = (root.0 as usize, node.0 as usize);
        self.enter[r] <= self.enter[n] && self.enter[n] < self.exit[r]
    }

    /// The pre-order interval of `root`'s subtree (for fast scope checks).
    pub fn subtree_interval(&self, root: UnitIdx) -> (u32, u32) {
        (self.enter[root.0 as usize], self.exit[root.0 as usize])
    }

    /// The pre-order position of `node`.
    pub fn preorder(&self, node: UnitIdx) -> u32 {
        self.enter[node.0 as usize]
    }

    /// Every unit of the subtree rooted at `root`, `root` first, in pre-order.
    pub fn subtree(&self, root: UnitIdx) -> Vec<UnitIdx> {
        let mut out = Vec::new();
        let mut stack = vec![root];
        while let Some(u) = stack.pop() {
            out.push(u);
            stack.extend(self.get(u).children.iter().rev().copied());
        }
        out
    }

    /// The nearest unit of `kind` at or above `idx`, if any.
    pub fn ancestor_of_kind(&self, idx: UnitIdx, kind: UnitKind) -> Option<UnitIdx> {
        std::iter::once(idx).chain(self.ancestors(idx)).find(|&u| self.get(u).kind == kind)
    }

    /// The county a unit belongs to (the unit itself for a county; a city maps to itself).
    pub fn county_of(&self, idx: UnitIdx) -> UnitIdx {
        self.ancestor_of_kind(idx, UnitKind::County).unwrap_or(idx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn spec(id: &str, kind: UnitKind, parent: Option<&str>) -> UnitSpec {
        UnitSpec {
            id: UnitId::new(id).expect("valid"),
            name: id.to_owned(),
            kind,
            parent: parent.map(|p| UnitId::new(p).expect("valid")),
            tz: None,
            location: None,
        }
    }

    fn sample() -> UnitTree {
        use UnitKind::*;
        UnitTree::build(&[
            spec("s1", Station, Some("i1")),
            spec("cz", City, None),
            spec("c1", County, Some("cz")),
            spec("i1", Institute, Some("c1")),
            spec("c2", County, Some("cz")),
            spec("i2", Institute, Some("c2")),
        ])
        .expect("valid tree")
    }

    fn ix(t: &UnitTree, id: &str) -> UnitIdx {
        t.idx(&UnitId::new(id).expect("valid")).expect("known")
    }

    #[test]
    fn subtree_and_ancestors() {
        let t = sample();
        let (cz, c1, i1, s1, c2, i2) =
            (ix(&t, "cz"), ix(&t, "c1"), ix(&t, "i1"), ix(&t, "s1"), ix(&t, "c2"), ix(&t, "i2"));
        assert!(t.is_in_subtree(s1, cz) && t.is_in_subtree(s1, c1) && t.is_in_subtree(s1, s1));
        assert!(!t.is_in_subtree(s1, c2) && !t.is_in_subtree(i2, c1) && !t.is_in_subtree(cz, c1));
        assert_eq!(t.ancestors(s1).collect::<Vec<_>>(), vec![i1, c1, cz]);
        assert_eq!(t.county_of(s1), c1);
        assert_eq!(t.county_of(cz), cz);
        assert_eq!(t.subtree(c1), vec![c1, i1, s1]);
        assert_eq!(t.get(s1).tz, DEFAULT_TZ);
    }

    #[test]
    fn rejects_bad_hierarchies() {
        use UnitKind::*;
        let dup = UnitTree::build(&[spec("cz", City, None), spec("cz", City, None)]);
        assert!(matches!(dup, Err((1, UnitError::DuplicateUnit(_)))));
        let orphan = UnitTree::build(&[spec("cz", City, None), spec("c1", County, Some("nope"))]);
        assert!(matches!(orphan, Err((1, UnitError::UnknownParent { .. }))));
        let skip = UnitTree::build(&[spec("cz", City, None), spec("s", Station, Some("cz"))]);
        assert!(matches!(skip, Err((1, UnitError::BadParentKind { .. }))));
        let rootless = UnitTree::build(&[spec("c1", County, None)]);
        assert!(matches!(rootless, Err((0, UnitError::BadParentPresence { .. }))));
        let cycle = UnitTree::build(&[spec("a", Institute, Some("b")), spec("b", County, Some("a"))]);
        assert!(matches!(cycle, Err((_, UnitError::UnknownParent { .. }))));
        let mut t = sample();
        assert!(t.add(&spec("s1", Station, Some("i2"))).is_err());
        let s2 = t.add(&spec("s2", Station, Some("i2"))).expect("valid add");
        assert!(t.is_in_subtree(s2, ix(&t, "c2")) && !t.is_in_subtree(s2, ix(&t, "c1")));
    }

    proptest! {
        /// The interval test agrees with walking the parent chain.
        #[test]
        fn interval_membership_matches_parent_walk(parents in proptest::collection::vec(0usize..1000, 1..60)) {
            use UnitKind::*;
            let mut specs = vec![spec("u0", City, None)];
            let mut kinds = vec![City];
            for (i, p) in parents.iter().enumerate() {
                let id = format!("u{}", i + 1);
                // Pick a parent among earlier non-station units.
                let choices: Vec<usize> = (0..specs.len()).filter(|&j| kinds[j] != Station).collect();
                let pj = choices[p % choices.len()];
                let kind = match kinds[pj] { City => County, County => Institute, _ => Station };
                specs.push(spec(&id, kind, Some(&format!("u{pj}"))));
                kinds.push(kind);
            }
            let t = UnitTree::build(&specs).expect("valid");
            for a in 0..t.len() {
                for b in 0..t.len() {
                    let (a, b) = (UnitIdx(a as u32), UnitIdx(b as u32));
                    let walk = a == b || t.ancestors(a).any(|x| x == b);
                    prop_assert_eq!(t.is_in_subtree(a, b), walk);
                }
            }
        }
    }
}

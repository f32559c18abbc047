//! The skill taxonomy: a DAG in which a specific skill satisfies its broader
//! categories ("psychological counselling" satisfies "emotional support"), and
//! fixed-size skill bitsets so eligibility is a handful of AND instructions.

use petgraph::algo::{tarjan_scc, toposort};
use petgraph::graph::{DiGraph, NodeIndex};
use serde::{Deserialize, Serialize};

use crate::id::SkillId;

/// The largest taxonomy a [`SkillSet`] can hold.
pub const MAX_SKILLS: usize = 256;

/// A set of skills as a 256-bit bitset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct SkillSet([u64; MAX_SKILLS / 64]);

impl SkillSet {
    /// The empty set.
    pub const EMPTY: SkillSet = SkillSet([0; MAX_SKILLS / 64]);

    /// Adds the skill at dense index `bit`.
    pub fn insert(&mut self, bit: SkillIdx) {
        self.0[bit.0 as usize / 64] |= 1 << (bit.0 % 64);
    }

    /// Whether the skill at dense index `bit` is in the set.
    pub fn contains(&self, bit: SkillIdx) -> bool {
        self.0[bit.0 as usize / 64] & (1 << (bit.0 % 64)) != 0
    }

    /// Whether every skill of `self` is in `other`.
    pub fn is_subset(&self, other: &SkillSet) -> bool {
        self.0.iter().zip(&other.0).all(|(a, b)| a & !b == 0)
    }

    /// The union of two sets.
    pub fn union(&self, other: &SkillSet) -> SkillSet {
        let mut out = *self;
        for (a, b) in out.0.iter_mut().zip(&other.0) {
            *a |= b;
        }
        out
    }

    /// Number of skills in the set.
    pub fn len(&self) -> u32 {
        self.0.iter().map(|w| w.count_ones()).sum()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.0.iter().all(|&w| w == 0)
    }

    /// The skills of `self` missing from `other`.
    pub fn difference(&self, other: &SkillSet) -> SkillSet {
        let mut out = *self;
        for (a, b) in out.0.iter_mut().zip(&other.0) {
            *a &= !b;
        }
        out
    }

    /// The dense indices in the set, ascending.
    pub fn iter(&self) -> impl Iterator<Item = SkillIdx> + '_ {
        self.0.iter().enumerate().flat_map(|(i, &w)| {
            let mut w = w;
            std::iter::from_fn(move || {
                if w == 0 {
                    return None;
                }
                let b = w.trailing_zeros();
                w &= w - 1;
                Some(SkillIdx((i * 64) as u16 + b as u16))
            })
        })
    }
}

/// Dense index of a skill inside a [`SkillTaxonomy`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SkillIdx(pub u16);

/// A skill as described in a city file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SkillSpec {
    /// Its id.
    pub id: SkillId,
    /// Its display name.
    pub name: String,
    /// The broader categories this skill satisfies.
    #[serde(default)]
    pub broader: Vec<SkillId>,
}

/// Why a taxonomy is invalid, or a skill unknown.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SkillError {
    /// Two skills share an id.
    #[error("skill {0} is defined twice")]
    DuplicateSkill(SkillId),
    /// A skill names a broader skill that does not exist, or a record names an unknown skill.
    #[error("unknown skill {0}")]
    UnknownSkill(SkillId),
    /// The broader-than relation has a cycle.
    #[error("the skill taxonomy has a cycle: {}", cycle_text(.skills))]
    Cycle {
        /// The skills on the cycle in order, each naming the next as
        /// broader (the last names the first), starting from the one
        /// declared first.
        skills: Vec<SkillId>,
    },
    /// More skills than a [`SkillSet`] holds.
    #[error("the taxonomy has {0} skills, at most {MAX_SKILLS} are supported")]
    TooManySkills(usize),
}

/// `a → b → c → a` for the cycle `[a, b, c]`.
fn cycle_text(skills: &[SkillId]) -> String {
    let mut text = String::new();
    for id in skills.iter().chain(skills.first()) {
        if !text.is_empty() {
            text.push_str(" → ");
        }
        text.push_str(id.as_str());
    }
    text
}

/// A cycle of `graph` (edges from a skill to its broader skills, `parents`
/// the same as lists), as skill indices in order along it: the shortest
/// through the lowest index that lies on any cycle. Only called when
/// `graph` has a cycle.
fn find_cycle(graph: &DiGraph<(), ()>, parents: &[Vec<usize>]) -> Vec<usize> {
    // A strongly connected component holds a cycle when it has more than
    // one skill, or one that names itself.
    let start = tarjan_scc(graph)
        .into_iter()
        .filter(|scc| scc.len() > 1 || parents[scc[0].index()].contains(&scc[0].index()))
        .filter_map(|scc| scc.iter().map(|node| node.index()).min())
        .min()
        .expect("the toposort found a cycle");
    // Breadth first from `start` until an edge leads back to it.
    let mut pred = vec![usize::MAX; parents.len()];
    let mut queue = std::collections::VecDeque::from([start]);
    while let Some(x) = queue.pop_front() {
        for &p in &parents[x] {
            if p == start {
                let mut cycle = vec![x];
                while *cycle.last().expect("not empty") != start {
                    cycle.push(pred[*cycle.last().expect("not empty")]);
                }
                cycle.reverse();
                return cycle;
            }
            if pred[p] == usize::MAX {
                pred[p] = x;
                queue.push_back(p);
            }
        }
    }
    unreachable!("start lies on a cycle, so a path leads back to it")
}

/// The skill taxonomy with each skill's closure (itself and everything broader).
#[derive(Debug, Clone, Default)]
pub struct SkillTaxonomy {
    specs: Vec<SkillSpec>,
    by_id: foldhash::HashMap<SkillId, SkillIdx>,
    closure: Vec<SkillSet>,
    /// For each skill, itself and every narrower skill that satisfies it.
    narrower: Vec<SkillSet>,
}

impl SkillSet {
    /// The lowest dense index in the set.
    pub fn first(&self) -> Option<SkillIdx> {
        self.0
            .iter()
            .enumerate()
            .find(|(_, w)| **w != 0)
            .map(|(i, w)| SkillIdx((i * 64) as u16 + w.trailing_zeros() as u16))
    }

    /// The intersection of two sets.
    pub fn intersection(&self, other: &SkillSet) -> SkillSet {
        let mut out = *self;
        for (a, b) in out.0.iter_mut().zip(&other.0) {
            *a &= b;
        }
        out
    }
}

impl SkillTaxonomy {
    /// Validates the specs (unique ids, known broader skills, no cycle) and
    /// computes closures. An error carries the index of the offending spec
    /// (for a cycle, the first declared of the skills on it).
    pub fn build(specs: Vec<SkillSpec>) -> Result<Self, (usize, SkillError)> {
        if specs.len() > MAX_SKILLS {
            return Err((MAX_SKILLS, SkillError::TooManySkills(specs.len())));
        }
        let mut by_id = foldhash::HashMap::default();
        for (i, s) in specs.iter().enumerate() {
            if by_id.insert(s.id.clone(), SkillIdx(i as u16)).is_some() {
                return Err((i, SkillError::DuplicateSkill(s.id.clone())));
            }
        }
        let mut parents: Vec<Vec<usize>> = Vec::with_capacity(specs.len());
        for (i, s) in specs.iter().enumerate() {
            let mut ps = Vec::new();
            for b in &s.broader {
                let p = by_id.get(b).ok_or_else(|| (i, SkillError::UnknownSkill(b.clone())))?;
                ps.push(p.0 as usize);
            }
            parents.push(ps);
        }
        let n = specs.len();
        // An edge from each skill to each of its broader skills.
        let mut graph: DiGraph<(), ()> = DiGraph::with_capacity(n, parents.iter().map(Vec::len).sum());
        for _ in 0..n {
            graph.add_node(());
        }
        for (i, ps) in parents.iter().enumerate() {
            for &p in ps {
                graph.add_edge(NodeIndex::new(i), NodeIndex::new(p), ());
            }
        }
        let order = toposort(&graph, None).map_err(|_| {
            let cycle = find_cycle(&graph, &parents);
            (cycle[0], SkillError::Cycle { skills: cycle.iter().map(|&i| specs[i].id.clone()).collect() })
        })?;
        // The order puts every skill before its broader ones: the broadest
        // get their closures first.
        let mut closure = vec![SkillSet::EMPTY; n];
        for node in order.iter().rev() {
            let i = node.index();
            let mut set = SkillSet::EMPTY;
            set.insert(SkillIdx(i as u16));
            for &p in &parents[i] {
                set = set.union(&closure[p]);
            }
            closure[i] = set;
        }
        let mut narrower = vec![SkillSet::EMPTY; n];
        for (i, c) in closure.iter().enumerate() {
            for b in c.iter() {
                narrower[b.0 as usize].insert(SkillIdx(i as u16));
            }
        }
        Ok(Self { specs, by_id, closure, narrower })
    }

    /// A set and every broader skill its members satisfy.
    pub fn closure_of_set(&self, set: &SkillSet) -> SkillSet {
        set.iter().fold(SkillSet::EMPTY, |acc, b| acc.union(&self.closure[b.0 as usize]))
    }

    /// A skill and every narrower skill that satisfies it.
    pub fn narrower_or_self(&self, idx: SkillIdx) -> SkillSet {
        self.narrower[idx.0 as usize]
    }

    /// Number of skills.
    pub fn len(&self) -> usize {
        self.specs.len()
    }

    /// Whether the taxonomy is empty.
    pub fn is_empty(&self) -> bool {
        self.specs.is_empty()
    }

    /// The dense index of a skill.
    pub fn idx(&self, id: &SkillId) -> Result<SkillIdx, SkillError> {
        self.by_id.get(id).copied().ok_or_else(|| SkillError::UnknownSkill(id.clone()))
    }

    /// The spec of a skill.
    pub fn spec(&self, idx: SkillIdx) -> &SkillSpec {
        &self.specs[idx.0 as usize]
    }

    /// The set of exactly these skills.
    pub fn set_of(&self, ids: &[SkillId]) -> Result<SkillSet, SkillError> {
        let mut set = SkillSet::EMPTY;
        for id in ids {
            set.insert(self.idx(id)?);
        }
        Ok(set)
    }

    /// The declared set and its closure, resolving each id once.
    pub fn resolve(&self, ids: &[SkillId]) -> Result<(SkillSet, SkillSet), SkillError> {
        let (mut declared, mut closure) = (SkillSet::EMPTY, SkillSet::EMPTY);
        for id in ids {
            let i = self.idx(id)?;
            declared.insert(i);
            closure = closure.union(&self.closure[i.0 as usize]);
        }
        Ok((declared, closure))
    }

    /// These skills and every broader skill they satisfy.
    pub fn closure_of(&self, ids: &[SkillId]) -> Result<SkillSet, SkillError> {
        let mut set = SkillSet::EMPTY;
        for id in ids {
            set = set.union(&self.closure[self.idx(id)?.0 as usize]);
        }
        Ok(set)
    }

    /// The ids of the skills in a set, in taxonomy order.
    pub fn ids(&self, set: &SkillSet) -> Vec<SkillId> {
        set.iter().map(|b| self.specs[b.0 as usize].id.clone()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(id: &str, broader: &[&str]) -> SkillSpec {
        SkillSpec {
            id: SkillId::new(id).expect("valid"),
            name: id.into(),
            broader: broader.iter().map(|b| SkillId::new(b).expect("valid")).collect(),
        }
    }

    fn ids(xs: &[&str]) -> Vec<SkillId> {
        xs.iter().map(|x| SkillId::new(x).expect("valid")).collect()
    }

    #[test]
    fn specific_skill_satisfies_broader() {
        let t = SkillTaxonomy::build(vec![
            s("counselling", &["emotional-support", "professional"]),
            s("emotional-support", &["care"]),
            s("care", &[]),
            s("professional", &[]),
            s("haircut", &[]),
        ])
        .expect("valid");
        let team = t.closure_of(&ids(&["counselling"])).expect("known");
        assert!(t.set_of(&ids(&["care", "emotional-support"])).expect("known").is_subset(&team));
        assert!(!t.set_of(&ids(&["haircut"])).expect("known").is_subset(&team));
        assert_eq!(team.len(), 4);
        let care = t.idx(&SkillId::new("care").expect("valid")).expect("known");
        assert_eq!(t.ids(&t.narrower_or_self(care)), ids(&["counselling", "emotional-support", "care"]));
        assert_eq!(t.closure_of_set(&t.set_of(&ids(&["counselling"])).expect("known")), team);
        assert_eq!(team.first(), Some(SkillIdx(0)));
        assert_eq!(t.set_of(&ids(&["nope"])), Err(SkillError::UnknownSkill(SkillId::new("nope").expect("valid"))));
    }

    #[test]
    fn rejects_cycles_duplicates_unknowns() {
        assert_eq!(
            SkillTaxonomy::build(vec![s("a", &["b"]), s("b", &["c"]), s("c", &["a"])]).map(|_| ()),
            Err((0, SkillError::Cycle { skills: ids(&["a", "b", "c"]) }))
        );
        assert_eq!(
            SkillTaxonomy::build(vec![s("a", &["a"])]).map(|_| ()),
            Err((0, SkillError::Cycle { skills: ids(&["a"]) }))
        );
        assert!(matches!(
            SkillTaxonomy::build(vec![s("a", &[]), s("a", &[])]),
            Err((1, SkillError::DuplicateSkill(_)))
        ));
        assert!(matches!(SkillTaxonomy::build(vec![s("a", &["zz"])]), Err((0, SkillError::UnknownSkill(_)))));
        let many: Vec<_> = (0..257).map(|i| s(&format!("k{i}"), &[])).collect();
        assert!(matches!(SkillTaxonomy::build(many), Err((_, SkillError::TooManySkills(257)))));
    }

    #[test]
    fn a_cycle_error_names_the_skills_on_the_cycle_in_order() {
        // care ← counselling → therapy → listening → counselling, beside
        // an acyclic part; "haircut" comes first but is on no cycle.
        let specs = vec![
            s("haircut", &[]),
            s("care", &[]),
            s("therapy", &["listening", "care"]),
            s("counselling", &["care", "therapy"]),
            s("listening", &["counselling"]),
        ];
        let err = SkillTaxonomy::build(specs).map(|_| ()).expect_err("a cycle");
        // Starts at the first declared skill on the cycle, follows the
        // broader-than edges, and lists no skill off the cycle.
        assert_eq!(err, (2, SkillError::Cycle { skills: ids(&["therapy", "listening", "counselling"]) }));
        assert_eq!(err.1.to_string(), "the skill taxonomy has a cycle: therapy → listening → counselling → therapy");
        // The shortest cycle through that skill, when there are several.
        let err = SkillTaxonomy::build(vec![s("a", &["b", "c"]), s("b", &["c"]), s("c", &["a"])])
            .map(|_| ())
            .expect_err("a cycle");
        assert_eq!(err, (0, SkillError::Cycle { skills: ids(&["a", "c"]) }));
    }
}

//! Ids to dense indexes: the fold numbers services, teams and volunteers in
//! order of first sight, remembers the units and ids it has seen by address,
//! and keeps request ids as slots in one text buffer.

use std::hash::BuildHasher as _;

use super::HashMap;
use crate::id::{ServiceId, TeamId, UnitId, VolunteerId};

/// The ids the fold interns: each reads as a shared string.
pub(super) trait Text: Clone + Eq + std::hash::Hash {
    fn text(&self) -> &str;
}

macro_rules! text {
    ($($t:ty),*) => {
        $(impl Text for $t {
            fn text(&self) -> &str {
                self.as_str()
            }
        })*
    };
}
text!(UnitId, ServiceId, TeamId, VolunteerId);

/// How many allocations a [`Recent`] table remembers before it starts over.
const RECENT: usize = 1 << 16;

/// Id allocations already seen and what they map to, keyed by address.
///
/// Ids are shared strings, and a log built in memory repeats the same
/// allocations (a unit's, a service's or a team's id cloned into every event),
/// so most lookups are answered without reading or hashing the text. The table
/// holds a clone of each id it remembers, so an address in it cannot be taken
/// by another string meanwhile; a log whose every id is a fresh allocation
/// (read from a store) fills it up, and it starts over.
#[derive(Debug)]
pub(super) struct Recent<K, V> {
    seen: HashMap<usize, (K, V)>,
}

impl<K: Text, V: Copy> Recent<K, V> {
    pub(super) fn new() -> Self {
        Self { seen: HashMap::default() }
    }

    pub(super) fn get(&self, k: &K) -> Option<V> {
        match self.seen.get(&(k.text().as_ptr() as usize)) {
            Some((held, v)) if std::ptr::eq(held.text(), k.text()) => Some(*v),
            _ => None,
        }
    }

    pub(super) fn put(&mut self, k: &K, v: V) {
        if self.seen.len() >= RECENT {
            self.seen.clear();
        }
        self.seen.insert(k.text().as_ptr() as usize, (k.clone(), v));
    }
}

/// Dense numbers for the distinct values of an id, in order of first sight.
#[derive(Debug)]
pub(super) struct Interner<K> {
    idx: HashMap<K, u32>,
    /// The distinct ids, by their number.
    pub(super) keys: Vec<K>,
    recent: Recent<K, u32>,
}

impl<K: Text> Interner<K> {
    pub(super) fn new() -> Self {
        Self { idx: HashMap::default(), keys: Vec::new(), recent: Recent::new() }
    }

    pub(super) fn get(&mut self, k: &K) -> u32 {
        if let Some(i) = self.recent.get(k) {
            return i;
        }
        let i = match self.idx.get(k) {
            Some(&i) => i,
            None => {
                let i = u32::try_from(self.keys.len()).unwrap_or_else(|_| unreachable!("fewer than 2^32 distinct ids"));
                self.idx.insert(k.clone(), i);
                self.keys.push(k.clone());
                i
            }
        };
        self.recent.put(k, i);
        i
    }
}

/// No slot.
const NO_SLOT: u32 = u32::MAX;

/// Request ids to dense slots. The ids' text is copied into one buffer rather
/// than a clone of every id kept (releasing half a million shared strings at
/// the end would cost as much as a good part of the fold).
#[derive(Debug, Default)]
pub(super) struct Slots {
    hasher: foldhash::fast::RandomState,
    text: String,
    /// Where each slot's id ends in `text` (it starts where the previous one ends).
    ends: Vec<usize>,
    /// The latest slot of each hash of an id...
    heads: HashMap<u64, u32>,
    /// ... and, for each slot, the previous slot with the same hash.
    chain: Vec<u32>,
}

impl Slots {
    pub(super) fn text_of(&self, i: u32) -> &str {
        let i = i as usize;
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.text[start..self.ends[i]]
    }

    pub(super) fn find(&self, hash: u64, id: &str) -> Option<u32> {
        let mut i = self.heads.get(&hash).copied()?;
        while i != NO_SLOT {
            if self.text_of(i) == id {
                return Some(i);
            }
            i = self.chain[i as usize];
        }
        None
    }

    pub(super) fn get(&self, id: &str) -> Option<u32> {
        self.find(self.hasher.hash_one(id), id)
    }

    /// The slot of `id`, and whether it is new.
    pub(super) fn get_or_insert(&mut self, id: &str) -> (u32, bool) {
        self.get_or_insert_hashed(self.hasher.hash_one(id), id)
    }

    pub(super) fn get_or_insert_hashed(&mut self, hash: u64, id: &str) -> (u32, bool) {
        if let Some(i) = self.find(hash, id) {
            return (i, false);
        }
        let i = u32::try_from(self.ends.len()).unwrap_or_else(|_| unreachable!("fewer than 2^32 requests"));
        self.text.push_str(id);
        self.ends.push(self.text.len());
        self.chain.push(self.heads.insert(hash, i).unwrap_or(NO_SLOT));
        (i, true)
    }
}

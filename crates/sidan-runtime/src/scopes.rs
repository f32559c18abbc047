//! Where each event belongs in the unit hierarchy, for the bus: the relay gives every message
//! the unit of its request, pairing or team with that unit's ancestors ([`Published::units`]),
//! so that a subscriber can take one unit's subtree ([`Filter::Subtree`](crate::Filter)) and a
//! broker can route by county.
//!
//! The relay learns a request's or pairing's unit from its first event (`submitted`, `paired`)
//! and forgets it at its last (closed, cancelled, expired, unfulfillable, unpaired); a team's
//! from the city's roster at start and from `team_added`. A stream it has not seen (the relay
//! started again in the middle of it) is placed from its first stored event. Units added to the
//! hierarchy after the engine started are placed without ancestors.

use foldhash::HashMap;
use sidan_core::id::{TeamId, UnitId};
use sidan_core::lifecycle::{Event, Recorded, StreamId};
use sidan_core::units::{UnitIdx, UnitTree};

use crate::store::{Store, StoreError};

/// The units of the streams the relay is publishing.
#[derive(Debug, Clone, Default)]
pub(crate) struct Scopes {
    tree: UnitTree,
    teams: HashMap<TeamId, UnitId>,
    open: HashMap<StreamId, UnitId>,
}

/// The unit a stream's first event names.
fn first_unit(rec: &Recorded) -> Option<&UnitId> {
    match &rec.event {
        Event::Submitted { spec, .. } => Some(&spec.unit),
        Event::Paired { spec } => Some(&spec.unit),
        Event::TeamAdded { spec } => Some(&spec.unit),
        _ => None,
    }
}

/// Whether a stream ends with this event.
fn last(event: &Event) -> bool {
    matches!(
        event,
        Event::Closed | Event::Cancelled { .. } | Event::Expired | Event::Unfulfillable | Event::Unpaired { .. }
    )
}

impl Scopes {
    /// The hierarchy and the teams' units as the engine starts.
    pub(crate) fn new(tree: UnitTree, teams: impl IntoIterator<Item = (TeamId, UnitIdx)>) -> Self {
        let teams = teams.into_iter().map(|(t, u)| (t, tree.get(u).id.clone())).collect();
        Self { tree, teams, open: HashMap::default() }
    }

    /// The unit `rec` belongs to with its ancestors, root first; empty for the ledger or a
    /// stream whose first event names no unit.
    ///
    /// # Errors
    /// The store cannot read the first event of a stream not seen before: the relay's round
    /// fails and is tried again, rather than publish a message it could not place.
    pub(crate) async fn units<S: Store>(&mut self, store: &S, rec: &Recorded) -> Result<Vec<UnitId>, StoreError> {
        let unit = match &rec.stream {
            StreamId::Ledger => None,
            StreamId::Team(team) => {
                if let Some(u) = first_unit(rec) {
                    self.teams.insert(team.clone(), u.clone());
                }
                self.teams.get(team).cloned()
            }
            stream => {
                if let Some(u) = first_unit(rec) {
                    self.open.insert(stream.clone(), u.clone());
                }
                let unit = match self.open.get(stream) {
                    Some(u) => Some(u.clone()),
                    None => store.load(stream).await?.first().and_then(first_unit).cloned(),
                };
                if last(&rec.event) {
                    self.open.remove(stream);
                } else if let Some(u) = &unit {
                    self.open.entry(stream.clone()).or_insert_with(|| u.clone());
                }
                unit
            }
        };
        Ok(unit.map(|u| self.path(u)).unwrap_or_default())
    }

    /// A unit with its ancestors, root first.
    fn path(&self, unit: UnitId) -> Vec<UnitId> {
        let Some(idx) = self.tree.idx(&unit) else { return vec![unit] };
        let mut path: Vec<UnitId> = self.tree.ancestors(idx).map(|a| self.tree.get(a).id.clone()).collect();
        path.reverse();
        path.push(unit);
        path
    }

    /// How many request and pairing streams are held open.
    #[cfg(test)]
    fn open(&self) -> usize {
        self.open.len()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use sidan_core::id::TeamId;
    use sidan_core::lifecycle::{Event, Recorded, StreamId};
    use sidan_core::request::Urgency;
    use sidan_core::testkit::{request, t0, tiny_city};

    use super::*;
    use crate::store::MemoryStore;

    fn scopes() -> Scopes {
        let (city, index) = tiny_city();
        Scopes::new(city.units().clone(), index.records().iter().map(|t| (t.id.clone(), t.unit)))
    }

    fn path(ids: &[&str]) -> Vec<UnitId> {
        ids.iter().map(|u| UnitId::new(u).expect("an id")).collect()
    }

    fn rec(stream: StreamId, seq: u64, event: Event) -> Recorded {
        Recorded { stream, seq, at: t0(), event }
    }

    #[tokio::test]
    async fn each_event_is_placed_with_its_units_ancestors() {
        let store = MemoryStore::new();
        let mut s = scopes();
        let spec = request("r1", "c1-i1-s1", "home-care", Urgency::Normal, 2, 4);
        let stream = StreamId::Request(spec.id.clone());
        let scope = UnitId::new("c1-i1-s1").expect("an id");
        let submitted = rec(stream.clone(), 1, Event::Submitted { spec: Arc::new(spec), scope, pairing: None });
        let station = path(&["cz", "c1", "c1-i1", "c1-i1-s1"]);
        assert_eq!(s.units(&store, &submitted).await.expect("placed"), station);
        assert_eq!(
            s.units(&store, &rec(stream.clone(), 2, Event::Expired)).await.expect("placed"),
            station,
            "its last event"
        );
        assert_eq!(s.open(), 0, "a stream that ended is forgotten");
        // A team's events by the team's unit; the ledger's by none.
        let team = StreamId::Team(TeamId::new("c1-s1-a").expect("an id"));
        assert_eq!(s.units(&store, &rec(team, 1, Event::TeamReactivated)).await.expect("placed"), station);
        let ledger = rec(
            StreamId::Ledger,
            1,
            Event::Ledger { entry: sidan_core::ledger::LedgerEvent::Retired { before: t0(), at: t0() } },
        );
        assert!(s.units(&store, &ledger).await.expect("placed").is_empty());
        // A relay that starts again in the middle of a stream reads its first event from the store.
        store.append(std::slice::from_ref(&submitted)).await.expect("appends");
        let mut fresh = scopes();
        assert_eq!(fresh.units(&store, &rec(stream, 2, Event::Closed)).await.expect("placed"), station);
    }
}

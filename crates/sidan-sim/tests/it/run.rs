//! The city simulation over the engine: deterministic, complete, consistent
//! with a replay of its own log, and summarised by the core report's figures.

use sidan_core::city::City;
use sidan_core::dispatch::Dispatcher;
use sidan_core::index::TeamIndex;
use sidan_core::ledger::AccountId;
use sidan_core::lifecycle::{Event, Lifecycle, PhaseKind, PolicyBook, Recorded, StreamId};
use sidan_core::report::Outcome;
use sidan_runtime::MemoryStore;
use sidan_sim::{
    BehaviourConfig, CityConfig, DemandConfig, SimOutcome, generate_city, generate_requests, read_all, run,
};

fn city(seed: u64) -> (City, TeamIndex) {
    generate_city(&CityConfig { seed, teams: 500, ..CityConfig::default() }).build().expect("valid city")
}

fn simulate(seed: u64, store: MemoryStore) -> SimOutcome {
    let (city, index) = city(seed);
    let demand = DemandConfig { seed, requests: 400, days: 3, ..DemandConfig::default() };
    let requests = generate_requests(&city, &demand);
    let behaviour = BehaviourConfig { seed, ..BehaviourConfig::default() };
    let start = demand.start - chrono::Duration::days(2);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    rt.block_on(run(city, index, PolicyBook::default(), requests, behaviour, start, store)).expect("runs")
}

fn log_of(store: &MemoryStore) -> Vec<Recorded> {
    let rt = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
    rt.block_on(read_all(store)).expect("reads").into_iter().map(|s| s.record).collect()
}

/// A lifecycle with the whole log applied.
fn replay(seed: u64, log: &[Recorded]) -> Lifecycle {
    let (city, index) = city(seed);
    let mut lc = Lifecycle::new(Dispatcher::new(city, index), PolicyBook::default());
    for r in log {
        lc.apply(r).expect("the log replays");
    }
    lc
}

/// Whether `text` holds a mainland mobile number: a run of exactly eleven
/// digits starting with 1 that is not the fraction of a decimal number.
fn has_phone_number(text: &str) -> bool {
    let b = text.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if !b[i].is_ascii_digit() {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        let fraction = start > 0 && b[start - 1] == b'.';
        if i - start == 11 && b[start] == b'1' && !fraction {
            return true;
        }
    }
    false
}

#[test]
fn the_phone_number_check_finds_one_and_only_one() {
    assert!(has_phone_number(r#"{"contact":"13812345678"}"#));
    assert!(!has_phone_number(r#"{"fulfilment":0.13812345678}"#));
    assert!(!has_phone_number(r#"{"n":138123456789,"m":1381234567}"#));
}

#[test]
fn same_seed_same_log_and_every_request_ends() {
    for seed in [1, 2, 3] {
        let store = MemoryStore::new();
        let a = simulate(seed, store.clone());
        let b = simulate(seed, MemoryStore::new());
        assert_eq!(a.log_hash, b.log_hash, "seed {seed}: the log is byte-identical");
        let c = a.report.city.as_ref().expect("a city row");
        assert_eq!(c.requests, 400);
        assert_eq!(c.outcome(Outcome::Open), 0, "seed {seed}: every request reached a terminal state");
        let ends = [Outcome::Closed, Outcome::Cancelled, Outcome::Expired, Outcome::Unfulfillable];
        assert_eq!(ends.iter().map(|&o| c.outcome(o)).sum::<u64>(), c.requests);
        assert!(c.outcome(Outcome::Closed) > c.requests / 2, "seed {seed}: most requests are served: {c:?}");
        // Replaying the stored log gives a lifecycle where every request is terminal.
        let initial: Vec<u32> = city(seed).1.records().iter().map(|t| t.load).collect();
        let lc = replay(seed, &log_of(&store));
        assert!(lc.requests().all(|r| r.phase.kind().is_terminal() || r.phase.kind() == PhaseKind::CheckedIn));
        let after: Vec<u32> = lc.dispatcher().index().records().iter().map(|t| t.load).collect();
        assert_eq!(after, initial, "every reservation and hold is released");
        // The report never carries a phone number.
        let json = serde_json::to_string(&a).expect("serialises");
        assert!(!has_phone_number(&json), "{json}");
    }
    assert_ne!(simulate(1, MemoryStore::new()).log_hash, simulate(2, MemoryStore::new()).log_hash);
}

#[test]
fn the_summary_holds_the_figures_counted_from_the_log() {
    let store = MemoryStore::new();
    let outcome = simulate(6, store.clone());
    let log = log_of(&store);
    let s = &outcome.report;
    let c = s.city.as_ref().expect("a city row");
    // Every request the simulation submits is at a station of the city, so every event of the
    // requests' streams counts at the city.
    let (mut offers, mut ratings, mut defaulted, mut not_served, mut minutes) = (0u64, 0u64, 0u64, 0u64, 0u64);
    let mut served_minutes: std::collections::HashMap<&StreamId, u64> = Default::default();
    for r in &log {
        match &r.event {
            Event::Offered { .. } => offers += 1,
            Event::Evaluated { .. } => ratings += 1,
            Event::Completed { minutes: m, .. } => {
                served_minutes.insert(&r.stream, u64::from(m.get()));
            }
            Event::Settled { defaulted: d, served, .. } => {
                defaulted += d.len() as u64;
                if !served {
                    not_served += 1;
                    served_minutes.remove(&r.stream);
                }
            }
            _ => {}
        }
    }
    minutes += served_minutes.values().sum::<u64>();
    assert_eq!((c.offers, c.ratings, c.defaulted_ratings), (offers, ratings, defaulted));
    assert_eq!((c.not_served, c.minutes_served), (not_served, minutes));
    assert!(offers > 0 && ratings > 0 && defaulted > 0 && minutes > 0, "the run exercises them: {c:?}");
    // The counties add up to the city.
    let sum = |f: &dyn Fn(&sidan_core::report::UnitReport) -> u64| s.counties.iter().map(f).sum::<u64>();
    assert_eq!(sum(&|u| u.requests), c.requests);
    assert_eq!(sum(&|u| u.offers), c.offers);
    assert_eq!(sum(&|u| u.minutes_served), c.minutes_served);
    for o in Outcome::ALL {
        assert_eq!(sum(&|u| u.outcome(o)), c.outcome(o), "{o}");
    }
    // The services' figures are the city row's.
    let worst = s.most_unfulfillable();
    assert_eq!(worst.iter().map(|w| w.1).sum::<u64>(), c.outcome(Outcome::Unfulfillable));
    assert!(worst.windows(2).all(|w| w[0].1 >= w[1].1), "most first: {worst:?}");
}

#[test]
fn the_simulation_uses_the_ledger_and_reports_it_as_the_ledger_holds_it() {
    let store = MemoryStore::new();
    let outcome = simulate(5, store.clone());
    let l = &outcome.report.city.as_ref().expect("a city row").ledger;
    // Replay the log: the report's whole-run figures are the ledger's final balances.
    let lc = replay(5, &log_of(&store));
    let ledger = lc.ledger();
    ledger.check().expect("the ledger balances");
    let held = |f: &dyn Fn(&AccountId) -> bool| -> i128 {
        ledger.accounts().filter(|a| f(&a.id)).map(|a| a.balance.posted()).sum()
    };
    // No adjustments in the simulation: every point and minute issued is a service credit.
    assert_eq!(i128::from(l.points_credited), -held(&|a| *a == AccountId::PointsIssuance));
    assert_eq!(i128::from(l.minutes_banked), -held(&|a| *a == AccountId::MinutesIssuance));
    assert_eq!(i128::from(l.points_redeemed), held(&|a| matches!(a, AccountId::Till(_))));
    assert_eq!(i128::from(l.minutes_withdrawn), held(&|a| *a == AccountId::MinutesSpent));
    for (item, g) in &l.goods {
        let on = |a: &AccountId| matches!(a, AccountId::Shelf { item: i, .. } if i == item);
        assert_eq!(i128::from(g.on_hand), held(&on), "{item} on the shelves");
        assert_eq!(g.on_hand, g.received as i64 - g.handed_out as i64, "{item}: nothing else moves goods");
    }
    // The run does exercise it.
    assert!(l.points_credited > 0 && l.minutes_banked > 0, "{l:?}");
    assert!(l.points_redeemed > 0 && l.goods.values().any(|g| g.handed_out > 0), "{l:?}");
    assert!(l.goods.values().all(|g| g.on_hand > 0), "goods are left on the shelves: {l:?}");
    assert_eq!(ledger.pending(), 0, "every reservation was picked up or expired");
}

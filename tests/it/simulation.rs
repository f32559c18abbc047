//! The city simulation over the engine: deterministic, complete, and
//! consistent with a replay of its own log.

use sidan::core::dispatch::Dispatcher;
use sidan::core::lifecycle::{Lifecycle, PhaseKind, PolicyBook};
use sidan::runtime::MemoryStore;
use sidan::sim::{BehaviourConfig, CityConfig, DemandConfig, generate_city, generate_requests};
use sidan::simulation::{SimOutcome, read_all, run};

fn simulate(seed: u64, store: MemoryStore) -> SimOutcome {
    let (city, index) =
        generate_city(&CityConfig { seed, teams: 500, ..CityConfig::default() }).build().expect("valid city");
    let demand = DemandConfig { seed, requests: 400, days: 3, ..DemandConfig::default() };
    let requests = generate_requests(&city, &demand);
    let behaviour = BehaviourConfig { seed, ..BehaviourConfig::default() };
    let start = demand.start - chrono::Duration::days(2);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    rt.block_on(run(city, index, PolicyBook::default(), requests, behaviour, start, store)).expect("runs")
}

#[test]
fn same_seed_same_log_and_every_request_ends() {
    for seed in [1, 2, 3] {
        let store = MemoryStore::new();
        let a = simulate(seed, store.clone());
        let b = simulate(seed, MemoryStore::new());
        assert_eq!(a.log_hash, b.log_hash, "seed {seed}: the log is byte-identical");
        let c = &a.report.city;
        assert_eq!(c.requests, 400);
        assert_eq!(c.open, 0, "seed {seed}: every request reached a terminal state");
        assert_eq!(c.closed + c.cancelled + c.expired + c.unfulfillable, c.requests);
        assert!(c.closed > c.requests / 2, "seed {seed}: most requests are served: {c:?}");
        // Replaying the stored log gives a lifecycle where every request is terminal.
        let (city, index) =
            generate_city(&CityConfig { seed, teams: 500, ..CityConfig::default() }).build().expect("valid city");
        let initial: Vec<u32> = index.records().iter().map(|t| t.load).collect();
        let mut lc = Lifecycle::new(Dispatcher::new(city, index), PolicyBook::default());
        let rt = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
        let log = rt.block_on(read_all(&store)).expect("reads");
        for s in &log {
            lc.apply(&s.record).expect("the log replays");
        }
        assert!(lc.requests().all(|r| r.phase.kind().is_terminal() || r.phase.kind() == PhaseKind::CheckedIn));
        let after: Vec<u32> = lc.dispatcher().index().records().iter().map(|t| t.load).collect();
        assert_eq!(after, initial, "every reservation and hold is released");
        // The report never carries a phone number.
        let json = serde_json::to_string(&a).expect("serialises");
        assert!(
            !json.chars().collect::<Vec<_>>().windows(11).any(|w| w[0] == '1' && w.iter().all(char::is_ascii_digit))
        );
    }
    assert_ne!(simulate(1, MemoryStore::new()).log_hash, simulate(2, MemoryStore::new()).log_hash);
}

#[test]
fn reports_come_as_json_and_csv_with_the_same_numbers() {
    let outcome = simulate(4, MemoryStore::new());
    let q = &outcome.quarterly;
    let mut buf = Vec::new();
    sidan::report_csv::write(q, &mut buf).expect("writes");
    let mut rd = csv::Reader::from_reader(buf.as_slice());
    let header = rd.headers().expect("header").clone();
    assert_eq!(header.iter().collect::<Vec<_>>(), sidan::report_csv::HEADER);
    let rows: Vec<csv::StringRecord> = rd.records().collect::<Result<_, _>>().expect("parses");
    assert_eq!(rows.len(), q.units.len());
    let city = rows.iter().find(|r| &r[2] == "city").expect("a city row");
    assert_eq!(city[3].parse::<u64>().expect("a count"), outcome.report.city.requests);
    assert_eq!(city[4].parse::<u64>().expect("a count"), outcome.report.city.closed);
    // Every county's requests add up to the city's.
    let counties: u64 = rows.iter().filter(|r| &r[2] == "county").map(|r| r[3].parse::<u64>().expect("count")).sum();
    assert_eq!(counties, outcome.report.city.requests);
}

#[test]
fn the_simulation_uses_the_ledger_and_reports_it_as_the_ledger_holds_it() {
    use sidan::core::ledger::AccountId;
    let store = MemoryStore::new();
    let outcome = simulate(5, store.clone());
    let l = &outcome.report.ledger;
    // Replay the log: the report's whole-run figures are the ledger's final balances.
    let (city, index) =
        generate_city(&CityConfig { seed: 5, teams: 500, ..CityConfig::default() }).build().expect("valid city");
    let mut lc = Lifecycle::new(Dispatcher::new(city, index), PolicyBook::default());
    let rt = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
    for s in &rt.block_on(read_all(&store)).expect("reads") {
        lc.apply(&s.record).expect("the log replays");
    }
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
    // The CSVs carry the same figures.
    let mut buf = Vec::new();
    sidan::report_csv::write(&outcome.quarterly, &mut buf).expect("writes");
    let mut rd = csv::Reader::from_reader(buf.as_slice());
    let col = |name: &str| sidan::report_csv::HEADER.iter().position(|h| *h == name).expect("a column");
    let rows: Vec<csv::StringRecord> = rd.records().collect::<Result<_, _>>().expect("parses");
    let sum = |name: &str| -> u64 {
        rows.iter().filter(|r| &r[2] == "city").map(|r| r[col(name)].parse::<u64>().expect("a count")).sum()
    };
    assert_eq!(sum("points_credited"), l.points_credited);
    assert_eq!(sum("points_redeemed"), l.points_redeemed);
    let mut buf = Vec::new();
    sidan::report_csv::write_stock(&outcome.quarterly, &mut buf).expect("writes");
    let mut rd = csv::Reader::from_reader(buf.as_slice());
    assert_eq!(rd.headers().expect("header").iter().collect::<Vec<_>>(), sidan::report_csv::STOCK_HEADER);
    let stock: Vec<csv::StringRecord> = rd.records().collect::<Result<_, _>>().expect("parses");
    for (item, g) in &l.goods {
        let handed: u64 = stock
            .iter()
            .filter(|r| &r[2] == "city" && &r[3] == item.as_str())
            .map(|r| r[5].parse::<u64>().expect("a count"))
            .sum();
        assert_eq!(handed, g.handed_out, "{item} handed out, over the quarters");
    }
}

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

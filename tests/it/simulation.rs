//! The city simulation through the facade: its reports come out as CSV with
//! the same numbers as the summary and the JSON. (The driver itself is
//! tested in `sidan-sim`.)

use sidan::core::lifecycle::PolicyBook;
use sidan::core::report::{Outcome, UnitReport};
use sidan::runtime::MemoryStore;
use sidan::sim::{BehaviourConfig, CityConfig, DemandConfig, SimOutcome, generate_city, generate_requests, run};

fn simulate(seed: u64) -> SimOutcome {
    let (city, index) =
        generate_city(&CityConfig { seed, teams: 500, ..CityConfig::default() }).build().expect("valid city");
    let demand = DemandConfig { seed, requests: 400, days: 3, ..DemandConfig::default() };
    let requests = generate_requests(&city, &demand);
    let behaviour = BehaviourConfig { seed, ..BehaviourConfig::default() };
    let start = demand.start - chrono::Duration::days(2);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    rt.block_on(run(city, index, PolicyBook::default(), requests, behaviour, start, MemoryStore::new())).expect("runs")
}

fn city_row(o: &SimOutcome) -> &UnitReport {
    o.report.city.as_ref().expect("a city row")
}

#[test]
fn reports_come_as_json_and_csv_with_the_same_numbers() {
    let outcome = simulate(4);
    let q = &outcome.quarterly;
    let mut buf = Vec::new();
    sidan::core::report::csv::write(q, &mut buf).expect("writes");
    let mut rd = csv::Reader::from_reader(buf.as_slice());
    let header = rd.headers().expect("header").clone();
    assert_eq!(header.iter().collect::<Vec<_>>(), sidan::core::report::csv::HEADER);
    let rows: Vec<csv::StringRecord> = rd.records().collect::<Result<_, _>>().expect("parses");
    assert_eq!(rows.len(), q.units.len());
    let col = |name: &str| sidan::core::report::csv::HEADER.iter().position(|h| *h == name).expect("a column");
    let city = rows.iter().find(|r| &r[2] == "city").expect("a city row");
    let c = city_row(&outcome);
    let n = |name: &str| city[col(name)].parse::<u64>().expect("a count");
    assert_eq!(n("requests"), c.requests);
    assert_eq!(n("closed"), c.outcome(Outcome::Closed));
    assert_eq!((n("offers"), n("ratings"), n("defaulted_ratings")), (c.offers, c.ratings, c.defaulted_ratings));
    assert_eq!(city[col("hours_served")], format!("{:.2}", c.minutes_served as f64 / 60.0));
    // Every county's requests add up to the city's.
    let counties: u64 = rows.iter().filter(|r| &r[2] == "county").map(|r| r[3].parse::<u64>().expect("count")).sum();
    assert_eq!(counties, c.requests);
    // The JSON names outcomes as before: snake_case keys of `by_state`.
    let json = serde_json::to_value(q).expect("serialises");
    let by_state = &json["units"][0]["by_state"];
    assert_eq!(by_state["closed"].as_u64(), Some(q.units[0].outcome(Outcome::Closed)));
    assert_eq!(by_state.as_object().map(|m| m.len()), Some(Outcome::ALL.len()));
}

#[test]
fn the_ledger_figures_come_as_csv_with_the_same_numbers() {
    let outcome = simulate(5);
    let l = &city_row(&outcome).ledger;
    let mut buf = Vec::new();
    sidan::core::report::csv::write(&outcome.quarterly, &mut buf).expect("writes");
    let mut rd = csv::Reader::from_reader(buf.as_slice());
    let col = |name: &str| sidan::core::report::csv::HEADER.iter().position(|h| *h == name).expect("a column");
    let rows: Vec<csv::StringRecord> = rd.records().collect::<Result<_, _>>().expect("parses");
    let sum = |name: &str| -> u64 {
        rows.iter().filter(|r| &r[2] == "city").map(|r| r[col(name)].parse::<u64>().expect("a count")).sum()
    };
    assert!(l.points_credited > 0 && l.points_redeemed > 0, "the run exercises the ledger: {l:?}");
    assert_eq!(sum("points_credited"), l.points_credited);
    assert_eq!(sum("points_redeemed"), l.points_redeemed);
    let mut buf = Vec::new();
    sidan::core::report::csv::write_stock(&outcome.quarterly, &mut buf).expect("writes");
    let mut rd = csv::Reader::from_reader(buf.as_slice());
    assert_eq!(rd.headers().expect("header").iter().collect::<Vec<_>>(), sidan::core::report::csv::STOCK_HEADER);
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

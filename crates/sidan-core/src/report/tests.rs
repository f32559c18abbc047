//! The report against hand counts of a small fixture, and its helpers.

use super::interning::Slots;
use super::*;
use crate::dispatch::Dispatcher;
use crate::id::{RequestId, ServiceId, TeamId, UnitId, VolunteerId};
use crate::ledger::{AccountId, ItemId, LedgerId, TransferId, TransferKind};
use crate::ledger::{LedgerCommand, LedgerOp, Redemption, TransferSpec};
use crate::lifecycle::{
    Command, Lifecycle, LifecyclePolicy, PolicyBook, RaterRole, RequestCommand, Score, ServiceMinutes, Tags, Text,
    Volunteers,
};
use crate::lifecycle::{Event, StreamId};
use crate::request::Urgency;
use crate::testkit::{request, t0, tiny_city};
use chrono::Duration;

fn offered(recs: &[Recorded]) -> TeamId {
    recs.iter()
        .find_map(|r| match &r.event {
            Event::Offered { team, .. } => Some(team.clone()),
            _ => None,
        })
        .expect("an offer")
}

/// A hand-computed fixture: four requests over two months.
fn fixture() -> (City, Vec<Recorded>) {
    let (city, index) = tiny_city();
    let p = LifecyclePolicy { third_party_sample_rate: 0.0, ..LifecyclePolicy::default() };
    let mut lc = Lifecycle::new(Dispatcher::new(city.clone(), index), PolicyBook::uniform(p).expect("valid"));
    let mut log = Vec::new();
    let mut run = |lc: &mut Lifecycle, c: Command, at| {
        let recs = lc.execute(&c, at).expect("legal");
        log.extend(recs.clone());
        recs
    };
    let t = t0(); // 2026-11-30 08:00 in Beijing
    let v = |s: &str| VolunteerId::new(s).expect("id");
    // r1: served at station c1-i1-s1, accepted after 10 min, arrival after 120 min, all fives.
    let recs = run(
        &mut lc,
        Command::Request(RequestCommand::Submit {
            spec: request("r1", "c1-i1-s1", "home-care", Urgency::Normal, 2, 4),
        }),
        t,
    );
    let team = offered(&recs);
    let r1 = RequestId::new("r1").expect("id");
    run(
        &mut lc,
        Command::Request(RequestCommand::Accept { request: r1.clone(), team: team.clone() }),
        t + Duration::minutes(10),
    );
    run(
        &mut lc,
        Command::Request(RequestCommand::CheckIn { request: r1.clone(), team: team.clone() }),
        t + Duration::minutes(120),
    );
    let done = Command::Request(RequestCommand::Complete {
        request: r1.clone(),
        team,
        minutes: ServiceMinutes::new(90).expect("valid minutes"),
        volunteers: Volunteers::new(vec![v("v1"), v("v2")]).expect("valid volunteers"),
    });
    run(&mut lc, done, t + Duration::minutes(210));
    for role in [RaterRole::Resident, RaterRole::Station, RaterRole::Team] {
        let c = Command::Request(RequestCommand::Evaluate {
            request: r1.clone(),
            role,
            score: Score::new(5).expect("valid score"),
            tags: Tags::new(vec![]).expect("valid tags"),
            comment: None,
        });
        run(&mut lc, c, t + Duration::minutes(300));
    }
    // r2: at station c1-i1-s2, cancelled.
    run(
        &mut lc,
        Command::Request(RequestCommand::Submit {
            spec: request("r2", "c1-i1-s2", "home-care", Urgency::Normal, 3, 4),
        }),
        t,
    );
    let cancel = Command::Request(RequestCommand::Cancel {
        request: RequestId::new("r2").expect("id"),
        reason: Text::new("recovered").expect("short text"),
    });
    run(&mut lc, cancel, t + Duration::minutes(5));
    // r3: a haircut nobody can give: unfulfillable at once.
    run(
        &mut lc,
        Command::Request(RequestCommand::Submit { spec: request("r3", "c1-i1-s1", "haircut", Urgency::Normal, 3, 4) }),
        t,
    );
    // r4: in county c2, submitted on 1 December (local), accepted after 29 min, still held.
    let dec = t + Duration::days(1);
    let recs = run(
        &mut lc,
        Command::Request(RequestCommand::Submit {
            spec: request("r4", "c2-i1-s1", "home-care", Urgency::Normal, 30, 4),
        }),
        dec,
    );
    let r4 = RequestId::new("r4").expect("id");
    run(
        &mut lc,
        Command::Request(RequestCommand::Accept { request: r4, team: offered(&recs) }),
        dec + Duration::minutes(29),
    );
    // The ledger: r1's credits were written with its settlement (90 min, v1 and v2: 15 points
    // split, 3 for the team, 90 minutes each). Station c1-i1-s1 receives 10 bags of rice; v1
    // redeems one for 5 points (reserved, then picked up); v2 reserves two for 5 points and
    // never comes (expired in December); an administrator gives v2 2 points (the city's row).
    let ledger = |ops: Vec<LedgerOp>| Command::Ledger(LedgerCommand::new(ops));
    let (s1, rice) = (UnitId::new("c1-i1-s1").expect("id"), ItemId::new("rice").expect("id"));
    let shelf = AccountId::Shelf { station: s1.clone(), item: rice.clone() };
    let receipt = AccountId::StockReceipt { station: s1.clone(), item: rice.clone() };
    let tid = |s: &str| TransferId::new(s).expect("id");
    let mut ops: Vec<LedgerOp> = [
        receipt.clone(),
        shelf.clone(),
        AccountId::Till(s1.clone()),
        AccountId::StockConsumed { station: s1.clone(), item: rice.clone() },
    ]
    .into_iter()
    .map(|account| LedgerOp::Open { account })
    .collect();
    let restock = TransferSpec {
        id: tid("in-1"),
        debit: receipt,
        credit: shelf,
        amount: 10,
        kind: TransferKind::Restock {},
        timeout_s: None,
    };
    ops.push(LedgerOp::Transfer { transfer: restock });
    run(&mut lc, ledger(ops), t + Duration::minutes(400));
    let redeem = |id: &str, who: &str, quantity| Redemption {
        id: tid(id),
        volunteer: v(who),
        station: s1.clone(),
        item: rice.clone(),
        points: 5,
        quantity,
        timeout_s: Some(3600),
    };
    let (red1, red2) = (redeem("red1", "v1", 1), redeem("red2", "v2", 2));
    run(&mut lc, Command::Ledger(red1.command().expect("ids")), t + Duration::minutes(410));
    run(&mut lc, Command::Ledger(red1.post(&tid("pick1")).expect("ids")), t + Duration::minutes(420));
    run(&mut lc, Command::Ledger(red2.command().expect("ids")), t + Duration::minutes(430));
    let gift = TransferSpec {
        id: tid("adj-1"),
        debit: AccountId::PointsIssuance,
        credit: AccountId::VolunteerPoints(v("v2")),
        amount: 2,
        kind: TransferKind::Adjustment { reason: "a missed credit".into() },
        timeout_s: None,
    };
    run(&mut lc, ledger(vec![LedgerOp::Transfer { transfer: gift }]), t + Duration::minutes(440));
    run(&mut lc, Command::Tick(StreamId::Ledger), dec + Duration::minutes(60));
    (city, log)
}

fn row<'r>(r: &'r Report, unit: &str, period: &str) -> &'r UnitReport {
    r.units
        .iter()
        .find(|u| u.unit.as_str() == unit && u.period.to_string() == period)
        .unwrap_or_else(|| panic!("no row for {unit} {period}"))
}

#[test]
fn monthly_numbers_match_the_hand_count() {
    let (city, log) = fixture();
    let m = report(&city, &log, Granularity::Month);
    let s1 = row(&m, "c1-i1-s1", "2026-11");
    assert_eq!((s1.requests, s1.outcome(Outcome::Closed), s1.outcome(Outcome::Unfulfillable)), (2, 1, 1));
    assert_eq!(s1.fulfilment, 0.5);
    assert_eq!(s1.to_accept_min, Percentiles { n: 1, p50: Some(10), p90: Some(10) });
    assert_eq!(s1.to_service_min, Percentiles { n: 1, p50: Some(120), p90: Some(120) });
    assert_eq!((s1.minutes_served, s1.hours_served(), s1.active_volunteers, s1.active_teams), (90, 1.5, 2, 1));
    // r1 was offered once and rated by all three roles; r3 was never offered.
    assert_eq!((s1.offers, s1.ratings, s1.defaulted_ratings, s1.not_served), (1, 3, 0, 0));
    assert_eq!(s1.satisfaction, Some(5.0));
    assert_eq!(
        s1.by_service[&ServiceId::new("haircut").expect("id")],
        ServiceCounts { requests: 1, closed: 0, unfulfillable: 1 }
    );
    let inst = row(&m, "c1-i1", "2026-11");
    assert_eq!((inst.requests, inst.outcome(Outcome::Cancelled)), (3, 1));
    assert_eq!(inst.fulfilment, 0.5, "closed 1 of the 2 not cancelled");
    assert_eq!(inst.station_ranking.first().map(|s| s.station.as_str()), Some("c1-i1-s1"));
    assert_eq!(row(&m, "cz", "2026-11").requests, 3);
    let dec = row(&m, "cz", "2026-12");
    assert_eq!((dec.requests, dec.outcome(Outcome::Open)), (1, 1));
    assert_eq!(dec.to_accept_min.p50, Some(29));
    assert!(m.units.iter().all(|u| u.unit.as_str() != "c2" || u.period.to_string() == "2026-12"));
    // The quarter holds all four; the city's numbers are the sum of the counties'.
    let q = report(&city, &log, Granularity::Quarter);
    let cz = row(&q, "cz", "2026-Q4");
    assert_eq!(cz.requests, 4);
    assert_eq!(cz.requests, row(&q, "c1", "2026-Q4").requests + row(&q, "c2", "2026-Q4").requests);
    assert_eq!(cz.to_accept_min, Percentiles { n: 2, p50: Some(10), p90: Some(29) });
    // Rows come in period, then hierarchy order; the JSON names periods as written.
    let json = serde_json::to_string(&q).expect("serialises");
    assert!(json.contains("\"period\":\"2026-Q4\""));
    assert_eq!(q.units[0].unit.as_str(), "cz");
}

#[test]
fn ledger_figures_match_the_hand_count() {
    let (city, log) = fixture();
    let m = report(&city, &log, Granularity::Month);
    let rice = ItemId::new("rice").expect("id");
    let s1 = &row(&m, "c1-i1-s1", "2026-11").ledger;
    assert_eq!((s1.points_credited, s1.minutes_banked), (18, 180), "15 points split, 3 for the team, 2 x 90 min");
    assert_eq!(s1.points_redeemed, 5, "red1 picked up; red2 still reserved");
    assert_eq!(s1.goods[&rice], ItemFigures { received: 10, handed_out: 1, on_hand: 9 });
    assert_eq!((s1.adjustments, s1.reservations_expired), (0, 0));
    // The adjustment names no station: it counts at the city.
    let cz = &row(&m, "cz", "2026-11").ledger;
    assert_eq!((cz.adjustments, cz.adjustments_net.get(&LedgerId::Points)), (1, Some(&2)));
    assert_eq!((cz.points_credited, cz.points_redeemed, cz.goods[&rice].on_hand), (18, 5, 9));
    assert_eq!(row(&m, "c1", "2026-11").ledger.adjustments, 0);
    // December: no request at the station, but its stock and red2's two legs expiring.
    let dec = row(&m, "c1-i1-s1", "2026-12");
    assert_eq!(dec.requests, 0);
    assert_eq!(dec.ledger.goods[&rice], ItemFigures { received: 0, handed_out: 0, on_hand: 9 });
    assert_eq!((dec.ledger.reservations_expired, dec.ledger.points_credited), (2, 0));
    assert_eq!(row(&m, "cz", "2026-12").ledger.goods[&rice].on_hand, 9);
    // A station without requests in a period stays out of the ranking.
    assert!(row(&m, "c1-i1", "2026-12").station_ranking.is_empty());
    // The quarter holds it all.
    let q = report(&city, &log, Granularity::Quarter);
    let cz = &row(&q, "cz", "2026-Q4").ledger;
    assert_eq!((cz.points_credited, cz.minutes_banked, cz.points_redeemed, cz.reservations_expired), (18, 180, 5, 2));
    assert_eq!(cz.goods[&rice], ItemFigures { received: 10, handed_out: 1, on_hand: 9 });
    let json = serde_json::to_string(&q).expect("serialises");
    assert!(json.contains("\"adjustments_net\":{\"points\":2}"), "{json}");
}

#[test]
fn percentiles_are_nearest_rank() {
    let mut v = vec![5, 1, 4, 2, 3, 10, 9, 8, 7, 6];
    assert_eq!(Percentiles::of(&mut v), Percentiles { n: 10, p50: Some(5), p90: Some(9) });
    assert_eq!(Percentiles::of(&mut []), Percentiles { n: 0, p50: None, p90: None });
}

#[test]
fn request_slots_tell_ids_with_the_same_hash_apart() {
    let mut s = Slots::default();
    assert_eq!(s.get_or_insert_hashed(7, "r1"), (0, true));
    assert_eq!(s.get_or_insert_hashed(7, "r22"), (1, true));
    assert_eq!(s.get_or_insert_hashed(9, "r3"), (2, true));
    assert_eq!(s.get_or_insert_hashed(7, "r1"), (0, false));
    assert_eq!(s.get_or_insert_hashed(7, "r22"), (1, false));
    assert_eq!((s.find(7, "r3"), s.find(9, "r3"), s.find(7, "r4")), (None, Some(2), None));
    assert_eq!((s.text_of(0), s.text_of(1), s.text_of(2)), ("r1", "r22", "r3"));
    let mut s = Slots::default();
    for i in 0..1000 {
        assert_eq!(s.get_or_insert(&format!("q{i}")), (i, true));
    }
    assert!((0..1000).all(|i| s.get(&format!("q{i}")) == Some(i)));
    assert_eq!(s.get("q1000"), None);
}

#[test]
fn selection_gives_the_sorted_percentiles() {
    let mut x: u32 = 7;
    for n in 0..300 {
        let v: Vec<u32> = (0..n)
            .map(|_| {
                x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                (x >> 16) % 40
            })
            .collect();
        let mut sorted = v.clone();
        sorted.sort_unstable();
        let at = |p: f64| (!sorted.is_empty()).then(|| sorted[((p * n as f64).ceil() as usize).clamp(1, n) - 1]);
        let expected = Percentiles { n: n as u64, p50: at(0.5), p90: at(0.9) };
        assert_eq!(Percentiles::of(&mut v.clone()), expected, "{v:?}");
    }
}

//! The bus port: events as CloudEvents, subscriptions by filter with bounded buffers, and a
//! clear error for a subscriber that falls behind.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use sidan_core::dispatch::Dispatcher;
use sidan_core::id::{TeamId, UnitId};
use sidan_core::lifecycle::{
    Command, Event, LifecyclePolicy, OfferMode, PolicyBook, Recorded, RequestCommand, StreamId,
};
use sidan_core::request::Urgency;
use sidan_core::testkit::{request, t0, tiny_city};
use sidan_runtime::{
    Bus, BusError, CloudEventError, Engine, Filter, MAX_SUBSCRIPTION_BUFFER, ManualClock, MemoryBus, MemoryStore,
    Position, Published, Stored,
};

fn team(s: &str) -> TeamId {
    TeamId::new(s).expect("an id")
}

fn msg(position: u64, stream: StreamId, seq: u64, event: Event) -> Published {
    Published::of(&Stored { position: Position(position), record: Recorded { stream, seq, at: t0(), event } })
}

fn submitted(id: &str) -> Published {
    let spec = request(id, "c1-i1-s1", "home-care", Urgency::Normal, 2, 4);
    let stream = StreamId::Request(spec.id.clone());
    let scope = UnitId::new("c1-i1-s1").expect("an id");
    msg(1, stream, 1, Event::Submitted { spec: Arc::new(spec), scope, pairing: None })
}

fn offered(position: u64, request: &str, to: &str) -> Published {
    let stream = StreamId::Request(request.parse().expect("an id"));
    let deadline: DateTime<Utc> = t0() + Duration::minutes(30);
    msg(position, stream, 2, Event::Offered { team: team(to), deadline, mode: OfferMode::Ranked })
}

#[test]
fn an_event_leaves_as_a_masked_cloudevent_and_comes_back() {
    let m = submitted("r1");
    let json = m.to_cloudevent_json("/sidan/test").expect("encodes");
    let v: serde_json::Value = serde_json::from_slice(&json).expect("JSON");
    assert_eq!(v["specversion"], "1.0");
    assert_eq!(v["id"], "request/r1#1");
    assert_eq!(v["source"], "/sidan/test");
    assert_eq!(v["type"], "sidan.request.submitted");
    assert_eq!(v["subject"], "r1");
    assert_eq!(v["datacontenttype"], "application/json");
    assert_eq!(v["sidanposition"], 1);
    assert_eq!(v["sidanseq"], 1);
    assert_eq!(v["sidanstream"], "request/r1");
    assert!(v["time"].as_str().is_some_and(|t| t.starts_with("2026-")), "{v}");
    let text = String::from_utf8(json.clone()).expect("UTF-8");
    assert!(!text.contains("13812345678"), "a phone number leaves through the bus: {text}");
    assert!(v["data"]["type"] == "submitted", "{v}");
    // A consumer reads the message back, exactly.
    assert_eq!(Published::from_cloudevent_json(&json).expect("decodes"), m);
    // The ledger's events are typed by their own names.
    let ledger = msg(
        9,
        StreamId::Ledger,
        3,
        Event::Ledger {
            entry: sidan_core::ledger::LedgerEvent::Retired { before: t0() - Duration::days(30), at: t0() },
        },
    );
    assert_eq!(ledger.event_type(), "sidan.ledger.retired");
    let back = Published::from_cloudevent_json(&ledger.to_cloudevent_json("/s").expect("encodes")).expect("decodes");
    assert_eq!(back, ledger);
}

#[test]
fn a_message_that_is_not_ours_is_refused_by_type() {
    assert!(matches!(Published::from_cloudevent_json(b"{}"), Err(CloudEventError::Json(_))));
    let m = submitted("r1");
    assert!(matches!(m.to_cloudevent_json(""), Err(CloudEventError::Build(_))), "an empty source");
    let mut v: serde_json::Value = serde_json::from_slice(&m.to_cloudevent_json("/s").expect("encodes")).expect("JSON");
    v.as_object_mut().expect("an object").remove("sidanposition");
    let bytes = serde_json::to_vec(&v).expect("JSON");
    assert_eq!(Published::from_cloudevent_json(&bytes), Err(CloudEventError::Attribute("sidanposition")));
    v["sidanposition"] = 4.into();
    v["sidanstream"] = "nowhere".into();
    let bytes = serde_json::to_vec(&v).expect("JSON");
    assert_eq!(Published::from_cloudevent_json(&bytes), Err(CloudEventError::Stream("nowhere".into())));
}

#[tokio::test]
async fn subscriptions_take_what_their_filter_selects() {
    let bus = MemoryBus::new();
    let mut all = bus.subscribe(Filter::All, 16).await.expect("subscribes");
    let mut a = bus.subscribe(Filter::TeamOffers(team("c1-s1-a")), 16).await.expect("subscribes");
    let mut offers = bus.subscribe(Filter::Type("sidan.request.offered".into()), 16).await.expect("subscribes");
    let mut i1 = bus.subscribe(Filter::Subtree(UnitId::new("c1-i1").expect("an id")), 16).await.expect("subscribes");
    let mut i2 = bus.subscribe(Filter::Subtree(UnitId::new("c1-i2").expect("an id")), 16).await.expect("subscribes");
    let mut batch = [submitted("r1"), offered(2, "r1", "c1-s1-a"), offered(3, "r1", "c1-s1-b")];
    for m in &mut batch {
        m.units = ["cz", "c1", "c1-i1", "c1-i1-s1"].iter().map(|u| UnitId::new(u).expect("an id")).collect();
    }
    bus.publish(&batch).await.expect("publishes");
    let drain = |s: &mut sidan_runtime::Subscription| {
        let mut got = Vec::new();
        while let Some(m) = s.try_next().expect("not lagged") {
            got.push(m.position.0);
        }
        got
    };
    assert_eq!(drain(&mut all), [1, 2, 3]);
    assert_eq!(drain(&mut a), [2]);
    assert_eq!(drain(&mut offers), [2, 3]);
    assert_eq!(drain(&mut i1), [1, 2, 3]);
    assert!(drain(&mut i2).is_empty(), "another institute's subtree");
    // The units travel as an extension and come back.
    let json = batch[0].to_cloudevent_json("/s").expect("encodes");
    let v: serde_json::Value = serde_json::from_slice(&json).expect("JSON");
    assert_eq!(v["sidanunits"], "cz/c1/c1-i1/c1-i1-s1");
    assert_eq!(Published::from_cloudevent_json(&json).expect("decodes"), batch[0]);
}

#[tokio::test]
async fn a_subscriber_that_falls_a_buffer_behind_is_cut_off_with_where_to_resume() {
    let bus = MemoryBus::new();
    let mut slow = bus.subscribe(Filter::All, 2).await.expect("subscribes");
    let mut fast = bus.subscribe(Filter::All, 16).await.expect("subscribes");
    let batch: Vec<Published> = (1..=5).map(|p| offered(p, "r1", "c1-s1-a")).collect();
    bus.publish(&batch).await.expect("publishes: a slow subscriber holds up nobody");
    // What fitted is delivered, then the error names the first position missed.
    assert_eq!(slow.next().await.expect("delivered").map(|m| m.position), Some(Position(1)));
    assert_eq!(slow.next().await.expect("delivered").map(|m| m.position), Some(Position(2)));
    assert_eq!(slow.next().await, Err(BusError::Lagged { missed: Position(3), buffer: 2 }));
    for p in 1..=5 {
        assert_eq!(fast.try_next().expect("not lagged").map(|m| m.position), Some(Position(p)));
    }
    // The bus forgot the slow one; the fast one still gets what follows.
    bus.publish(&[offered(6, "r1", "c1-s1-a")]).await.expect("publishes");
    assert_eq!(fast.try_next().expect("not lagged").map(|m| m.position), Some(Position(6)));
    for buffer in [0, MAX_SUBSCRIPTION_BUFFER + 1] {
        assert_eq!(bus.subscribe(Filter::All, buffer).await.err(), Some(BusError::BadBuffer { buffer }));
    }
}

/// Through the engine: a team's subscription sees its own offers, masked.
#[tokio::test]
async fn a_team_sees_its_offers_through_the_engine() {
    let (city, index) = tiny_city();
    let bus = MemoryBus::new();
    let engine = Engine::builder(Dispatcher::new(city, index))
        .policies(PolicyBook::uniform(LifecyclePolicy::default()).expect("valid policy"))
        .store(MemoryStore::new())
        .bus(bus.clone())
        .clock(ManualClock::new(t0()))
        .start()
        .await
        .expect("starts");
    let spec = request("r1", "c1-i1-s1", "home-care", Urgency::Normal, 2, 4);
    let receipt = engine.execute(Command::Request(RequestCommand::Submit { spec })).await.expect("submits");
    let to = receipt
        .events
        .iter()
        .find_map(|r| match &r.event {
            Event::Offered { team, .. } => Some(team.clone()),
            _ => None,
        })
        .expect("offered");
    let mut sub = bus.subscribe(Filter::TeamOffers(to.clone()), 8).await.expect("subscribes");
    let accept = RequestCommand::Accept { request: "r1".parse().expect("an id"), team: to.clone() };
    engine.execute(Command::Request(accept)).await.expect("accepts");
    let m = tokio::time::timeout(std::time::Duration::from_secs(5), sub.next())
        .await
        .expect("published in time")
        .expect("not lagged")
        .expect("the bus is open");
    assert_eq!(m.event_type(), "sidan.request.accepted");
    assert_eq!(m.offer_team(), Some(&to));
    let station: Vec<&str> = m.units.iter().map(UnitId::as_str).collect();
    assert_eq!(station, ["cz", "c1", "c1-i1", "c1-i1-s1"], "the relay places the event in its request's station");
    engine.shutdown().await;
}

//! The command-key (idempotency) checks of the conformance suite, and their helpers.

use chrono::Duration;
use chrono::{DateTime, Utc};
use sidan_core::lifecycle::{Command, LifecyclePolicy, Recorded, RequestCommand, Text};
use sidan_core::request::Urgency;
use sidan_core::testkit::{request, t0};
use sidan_runtime::{
    CommandKey, EngineError, Fingerprint, KeyRecord, ManualClock, Position, Receipt, Store, StoreError, StoredKey,
};

use crate::{Harness, check_log_shape, event, events, offered, read_all, rid, stream, tiny_builder};

/// A command key.
///
/// # Panics
/// If the parts are not valid key parts.
pub fn key(principal: &str, id: &str) -> CommandKey {
    CommandKey::new(principal, id).expect("test keys are valid")
}

/// A key record for a batch: the key `principal`/`id`, a fingerprint of
/// `tag` repeated, decided at `at`, for the batch's events `events`.
pub fn key_record(principal: &str, id: &str, tag: u8, at: DateTime<Utc>, events: std::ops::Range<usize>) -> KeyRecord {
    KeyRecord { key: key(principal, id), fingerprint: Fingerprint([tag; 32]), at, events }
}

/// What a store should keep for `record`, appended at `head` in a batch of `len`.
pub fn kept(record: &KeyRecord, head: u64, len: usize) -> StoredKey {
    StoredKey::stored(record, Position(head), len)
}

/// Every key a store keeps.
///
/// # Panics
/// If the store fails.
pub async fn all_keys<S: Store>(store: &S) -> Vec<StoredKey> {
    store.keys_since(DateTime::<Utc>::MIN_UTC).await.expect("keys_since")
}

/// A batch's keys are kept by the same append as its events: each with
/// the position of its command's first event, how many there are and the
/// append's last position, read back exactly (time to the nanosecond). A
/// command of no events keeps its key too, alone or in a batch of none. An
/// append refused for any reason keeps none of its keys; a plain `append`
/// leaves the keys alone.
pub async fn keys_are_atomic_with_events<H: Harness>(h: &mut H) {
    let store = h.fresh().await;
    let (a, b) = (stream("a"), stream("b"));
    let at = t0() + Duration::nanoseconds(123_456_789);
    assert!(store.keeps_keys(), "the store says it keeps keys");
    assert_eq!(store.append(&events(&a, 1, 2, 0)).await, Ok(Position(2)));
    assert!(all_keys(&store).await.is_empty());

    // Three commands in one batch: two events, none, one.
    let batch = vec![event(&a, 3, 0), event(&a, 4, 0), event(&b, 1, 0)];
    let keys = [
        key_record("alice", "c-1", 1, at, 0..2),
        key_record("alice", "c-2", 2, at, 2..2),
        key_record("bob", "c-1", 3, at + Duration::nanoseconds(1), 2..3),
    ];
    assert_eq!(store.append_keyed(&batch, &keys).await, Ok(Position(5)));
    let want: Vec<StoredKey> = keys.iter().map(|k| kept(k, 2, 3)).collect();
    assert_eq!(
        want.iter().map(|k| (k.first.0, k.count, k.position.0)).collect::<Vec<_>>(),
        [(3, 2, 5), (5, 0, 5), (5, 1, 5)]
    );
    assert_eq!(all_keys(&store).await, want, "every key, exactly, in time order");
    for (k, part) in want.iter().zip([&batch[0..2], &batch[2..2], &batch[2..3]]) {
        let back = store.read_from(Position(k.first.0 - 1), k.count as usize).await.expect("read_from");
        assert_eq!(back.iter().map(|s| s.record.clone()).collect::<Vec<_>>(), part, "{}: its events", k.key);
    }

    // A command of no events in a batch of none: the key is kept, the head returned.
    let alone = key_record("carol", "tick-1", 4, at, 0..0);
    assert_eq!(store.append_keyed(&[], std::slice::from_ref(&alone)).await, Ok(Position(5)));
    let mut want = want;
    want.insert(2, kept(&alone, 5, 0));
    assert_eq!(all_keys(&store).await, want, "ordered by time, then principal");

    // Refused appends keep none of their keys and write nothing.
    let log = read_all(&store).await;
    let stale = key_record("dave", "c-1", 5, at, 0..1);
    assert_eq!(
        store.append_keyed(&[event(&a, 4, 9)], std::slice::from_ref(&stale)).await,
        Err(StoreError::Conflict { stream: a.clone(), expected: 3, actual: 4 })
    );
    assert_eq!(
        store.append_keyed(&[event(&b, 3, 9)], std::slice::from_ref(&stale)).await,
        Err(StoreError::Conflict { stream: b.clone(), expected: 2, actual: 1 })
    );
    let outside = key_record("dave", "c-1", 5, at, 0..2);
    assert_eq!(
        store.append_keyed(&[event(&b, 2, 9)], std::slice::from_ref(&outside)).await,
        Err(StoreError::KeyOutsideBatch { key: key("dave", "c-1"), start: 0, end: 2, len: 1 })
    );
    assert_eq!(read_all(&store).await, log, "nothing was written");
    assert_eq!(all_keys(&store).await, want, "no key was kept");

    // Plain appends and keyed ones interleave; the head moves on.
    assert_eq!(store.append(&[event(&b, 2, 0)]).await, Ok(Position(6)));
    let later = key_record("dave", "c-1", 5, at, 0..1);
    assert_eq!(store.append_keyed(&[event(&b, 3, 0)], std::slice::from_ref(&later)).await, Ok(Position(7)));
    want.push(kept(&later, 6, 1));
    want.sort_by(|x, y| (x.at, &x.key).cmp(&(y.at, &y.key)));
    assert_eq!(all_keys(&store).await, want);
    check_log_shape(&read_all(&store).await);
}

/// A key already kept refuses the whole append with
/// [`StoreError::KeyExists`], whatever else the batch holds, before any
/// version check; so does a key twice in one append. Nothing is written:
/// not the events, not the batch's other keys. The same id under another
/// principal is another key.
pub async fn duplicate_keys_write_nothing<H: Harness>(h: &mut H) {
    let store = h.fresh().await;
    let (a, b) = (stream("a"), stream("b"));
    let at = t0();
    let first = key_record("alice", "x", 1, at, 0..1);
    assert_eq!(store.append_keyed(&[event(&a, 1, 0)], std::slice::from_ref(&first)).await, Ok(Position(1)));
    let log = read_all(&store).await;
    let keys = all_keys(&store).await;
    let exists = |p: &str, i: &str| Err::<Position, _>(StoreError::KeyExists { key: key(p, i) });

    // The same key again, in a good batch with another, new key.
    let again = [key_record("bob", "y", 2, at, 0..1), key_record("alice", "x", 1, at, 1..2)];
    assert_eq!(store.append_keyed(&[event(&b, 1, 0), event(&a, 2, 0)], &again).await, exists("alice", "x"));
    // With another command's fingerprint, or none of its events.
    let other = key_record("alice", "x", 9, at + Duration::hours(1), 0..0);
    assert_eq!(store.append_keyed(&[], std::slice::from_ref(&other)).await, exists("alice", "x"));
    // Before a version conflict of the same batch.
    let stale = key_record("alice", "x", 1, at, 0..1);
    assert_eq!(store.append_keyed(&[event(&a, 1, 5)], std::slice::from_ref(&stale)).await, exists("alice", "x"));
    // A key twice in one append.
    let twice = [key_record("carol", "z", 3, at, 0..1), key_record("carol", "z", 4, at, 1..1)];
    assert_eq!(store.append_keyed(&[event(&b, 1, 0)], &twice).await, exists("carol", "z"));
    assert_eq!(read_all(&store).await, log, "no event was written");
    assert_eq!(all_keys(&store).await, keys, "no key was kept");

    // Another principal's key with the same id is a key of its own.
    let bobs = key_record("bob", "x", 1, at, 0..1);
    assert_eq!(store.append_keyed(&[event(&a, 2, 0)], std::slice::from_ref(&bobs)).await, Ok(Position(2)));
    assert_eq!(all_keys(&store).await.len(), 2);
    check_log_shape(&read_all(&store).await);
}

/// Eight writers on four separate handles append to streams of their own,
/// all with one key, 20 rounds: exactly one wins each round, the others get
/// [`StoreError::KeyExists`]; only the winner's event is stored, and the
/// kept key points at it.
pub async fn concurrent_keyed_appenders_one_winner<H: Harness>(h: &mut H) {
    let first = h.fresh().await;
    let mut handles = vec![first];
    for _ in 0..3 {
        handles.push(h.reopen().await);
    }
    for round in 0..20u64 {
        let id = format!("round-{round}");
        let tasks: Vec<_> = (0..8u64)
            .map(|w| {
                let store = handles[w as usize % handles.len()].clone();
                let rec = event(&stream(&format!("w{w}-r{round}")), 1, w);
                let k = key_record("racer", &id, w as u8, t0(), 0..1);
                tokio::spawn(async move { (w, rec.clone(), store.append_keyed(&[rec], &[k]).await) })
            })
            .collect();
        let mut winners = Vec::new();
        for t in tasks {
            match t.await.expect("task") {
                (w, rec, Ok(p)) => winners.push((w, rec, p)),
                (_, _, Err(StoreError::KeyExists { key: k })) => assert_eq!(k, key("racer", &id), "round {round}"),
                (_, _, Err(e)) => panic!("round {round}: unexpected error {e}"),
            }
        }
        assert_eq!(winners.len(), 1, "round {round}: exactly one winner");
        let (w, rec, p) = winners.pop().expect("one winner");
        let keys = all_keys(&handles[1]).await;
        let k = keys.iter().find(|k| k.key.id() == id).expect("the key is kept");
        assert_eq!((k.fingerprint, k.first, k.count, k.position), (Fingerprint([w as u8; 32]), p, 1, p));
        let back = handles[2].read_from(Position(p.0 - 1), 1).await.expect("read_from");
        assert_eq!(back[0].record, rec, "round {round}: the winner's event is at the key's position");
    }
    let log = read_all(&handles[0]).await;
    assert_eq!(log.len(), 20, "one event per round");
    check_log_shape(&log);
    assert_eq!(all_keys(&handles[3]).await.len(), 20);
}

/// Keys survive dropping every handle and opening the storage again, and a
/// kept key still refuses its reuse there.
pub async fn keys_survive_reopen<H: Harness>(h: &mut H) {
    let store = h.fresh().await;
    let a = stream("a");
    let at = t0() + Duration::nanoseconds(7);
    let one = key_record("alice", "k1", 1, at, 0..2);
    store.append_keyed(&events(&a, 1, 2, 0), std::slice::from_ref(&one)).await.expect("append_keyed");
    let none = key_record("alice", "k2", 2, at + Duration::seconds(1), 0..0);
    store.append_keyed(&[], std::slice::from_ref(&none)).await.expect("append_keyed");
    let keys = all_keys(&store).await;
    assert_eq!(keys, vec![kept(&one, 0, 2), kept(&none, 2, 0)]);
    drop(store);
    let again = h.reopen().await;
    assert_eq!(all_keys(&again).await, keys, "the keys survive");
    let reuse = key_record("alice", "k1", 1, at, 0..1);
    assert_eq!(
        again.append_keyed(&[event(&a, 3, 0)], std::slice::from_ref(&reuse)).await,
        Err(StoreError::KeyExists { key: key("alice", "k1") })
    );
    let three = key_record("alice", "k3", 3, at, 0..1);
    assert_eq!(again.append_keyed(&[event(&a, 3, 0)], std::slice::from_ref(&three)).await, Ok(Position(3)));
    if h.durable() {
        drop(again);
        let third = h.reopen().await;
        assert_eq!(all_keys(&third).await.len(), 3);
        assert_eq!(read_all(&third).await.len(), 3);
    }
}

/// `keys_since(t)` gives the keys decided at or after `t` (to the
/// nanosecond), ordered by time, then principal and id in byte order;
/// `purge_keys(t)` forgets the ones before `t`, says how many, and a
/// forgotten key can be used again.
pub async fn keys_since_filters_and_purges<H: Harness>(h: &mut H) {
    let store = h.fresh().await;
    let s = stream("s");
    let at = |minutes: i64, nanos: i64| t0() + Duration::minutes(minutes) + Duration::nanoseconds(nanos);
    let mut seq = 0;
    let mut all = Vec::new();
    // Appended out of time order, several per append, principals out of byte order.
    for (m, principals) in [(5, vec!["b", "a", "A"]), (0, vec!["x"]), (9, vec!["x"]), (3, vec!["x", "y"])] {
        let head = seq;
        let batch: Vec<Recorded> = principals
            .iter()
            .map(|_| {
                seq += 1;
                event(&s, seq, 0)
            })
            .collect();
        let keys: Vec<KeyRecord> = principals
            .iter()
            .enumerate()
            .map(|(i, p)| key_record(p, &format!("m{m}"), 1, at(m, 0), i..i + 1))
            .collect();
        store.append_keyed(&batch, &keys).await.expect("append_keyed");
        all.extend(keys.iter().map(|k| kept(k, head, batch.len())));
    }
    let nano = key_record("n", "late", 1, at(3, 1), 0..0);
    store.append_keyed(&[], std::slice::from_ref(&nano)).await.expect("append_keyed");
    all.push(kept(&nano, seq, 0));
    all.sort_by(|x, y| (x.at, &x.key).cmp(&(y.at, &y.key)));
    let names =
        |keys: &[StoredKey]| keys.iter().map(|k| format!("{}/{}", k.key.principal(), k.key.id())).collect::<Vec<_>>();
    assert_eq!(names(&all), ["x/m0", "x/m3", "y/m3", "n/late", "A/m5", "a/m5", "b/m5", "x/m9"]);
    assert_eq!(all_keys(&store).await, all);
    assert_eq!(store.keys_since(at(3, 0)).await.expect("keys_since"), all[1..]);
    assert_eq!(store.keys_since(at(3, 1)).await.expect("keys_since"), all[3..], "to the nanosecond");
    assert_eq!(store.keys_since(at(9, 1)).await.expect("keys_since"), []);

    assert_eq!(store.purge_keys(at(3, 1)).await, Ok(3));
    assert_eq!(all_keys(&store).await, all[3..], "the older keys are gone");
    assert_eq!(store.purge_keys(at(3, 1)).await, Ok(0), "a second purge finds nothing");
    let log = read_all(&store).await;
    assert_eq!(log.len() as u64, seq, "a purge keeps the events");
    // A forgotten key is new again; a kept one is not.
    let reuse = key_record("x", "m3", 2, at(60, 0), 0..1);
    assert!(store.append_keyed(&[event(&s, seq + 1, 0)], std::slice::from_ref(&reuse)).await.is_ok());
    let kept_one = key_record("x", "m9", 2, at(60, 0), 0..0);
    assert_eq!(
        store.append_keyed(&[], std::slice::from_ref(&kept_one)).await,
        Err(StoreError::KeyExists { key: key("x", "m9") })
    );
}

/// An engine on the store: a keyed submission, retried, gives one receipt
/// and one set of events; after a shutdown and a start on the
/// storage opened again, the retry still gets the first receipt (read back
/// from the store) and appends nothing, another command under the key is
/// [`EngineError::KeyReused`], and a keyed command of no events keeps its
/// receipt too.
pub async fn engine_keys_survive_restart<H: Harness>(h: &mut H) {
    let policy = LifecyclePolicy::default();
    let store = h.fresh().await;
    let clock = ManualClock::new(t0());
    let start = |store: H::Store, clock: ManualClock| async move {
        tiny_builder(policy).store(store).clock(clock).start().await.expect("starts")
    };
    let engine = start(store.clone(), clock.clone()).await;
    let submit = Command::Request(RequestCommand::Submit {
        spec: request("k1", "c1-i1-s1", "home-care", Urgency::Normal, 2, 3),
    });
    let tick = Command::Tick(stream("k1"));
    let (k1, k2) = (key("resident-7", "submit-1"), key("resident-7", "tick-1"));
    let first = engine.execute_keyed(k1.clone(), submit.clone()).await.expect("submits");
    assert!(!offered(&first.events).is_empty(), "the submission is offered");
    assert_eq!(engine.execute_keyed(k1.clone(), submit.clone()).await, Ok(first.clone()), "a retry");
    let nothing = engine.execute_keyed(k2.clone(), tick.clone()).await.expect("ticks");
    assert_eq!(nothing, Receipt { events: Vec::new(), position: first.position }, "nothing was due");
    let log = read_all(&store).await;
    let live = engine.query(|lc| lc.digest()).await.expect("queries");
    engine.shutdown().await;
    drop(store);

    let again = h.reopen().await;
    let engine = start(again.clone(), clock).await;
    assert_eq!(engine.execute_keyed(k1.clone(), submit.clone()).await, Ok(first), "the retry after a restart");
    assert_eq!(engine.execute_keyed(k2.clone(), tick).await, Ok(nothing));
    let cancel = Command::Request(RequestCommand::Cancel {
        request: rid("k1"),
        reason: Text::new("changed my mind").expect("short text"),
    });
    assert_eq!(engine.execute_keyed(k1.clone(), cancel).await, Err(EngineError::KeyReused { key: k1 }));
    assert_eq!(read_all(&again).await, log, "nothing was appended");
    assert_eq!(engine.query(|lc| lc.digest()).await.expect("queries"), live);
    engine.shutdown().await;
}

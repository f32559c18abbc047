//! `sidan events` prints a store's log as JSON lines, contacts masked unless asked; `sidan
//! simulate --db FILE` refuses to replace a file of the user's unless told to.

use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Command, Output, Stdio};

use sidan::core::{Event, Recorded};
use sidan_store_tests::TempDir;

fn sidan(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sidan")).args(args).output().expect("the sidan binary runs")
}

fn simulate(db: &Path, extra: &[&str]) -> Output {
    let db = db.to_str().expect("a UTF-8 path");
    let mut args = vec!["simulate", "--teams", "300", "--requests", "60", "--days", "1", "--db", db];
    args.extend_from_slice(extra);
    sidan(&args)
}

#[test]
fn events_are_printed_as_json_lines_with_contacts_masked() {
    let dir = TempDir::new("events-cli");
    let db = dir.path().join("city.db");
    let out = simulate(&db, &[]);
    assert!(out.status.success(), "simulate: {}", String::from_utf8_lossy(&out.stderr));

    let print = |extra: &[&str]| -> Vec<serde_json::Value> {
        let mut args = vec!["events", db.to_str().expect("UTF-8")];
        args.extend_from_slice(extra);
        let out = sidan(&args);
        assert!(out.status.success(), "events: {}", String::from_utf8_lossy(&out.stderr));
        let text = String::from_utf8(out.stdout).expect("UTF-8");
        text.lines().map(|l| serde_json::from_str(l).expect("each line is JSON")).collect()
    };
    let (masked, revealed) = (print(&[]), print(&["--reveal-contacts"]));
    assert!(masked.len() > 60, "a day of 60 requests makes more events: {}", masked.len());
    assert_eq!(masked.len(), revealed.len());
    let mut submitted = 0;
    for (i, (m, r)) in masked.iter().zip(&revealed).enumerate() {
        assert_eq!(m["position"], i as u64 + 1, "positions are gapless from 1");
        let m: Recorded = serde_json::from_value(m["record"].clone()).expect("a record");
        let r: Recorded = serde_json::from_value(r["record"].clone()).expect("a record");
        if let (Event::Submitted { spec: ms, .. }, Event::Submitted { spec: rs, .. }) = (&m.event, &r.event) {
            submitted += 1;
            assert_eq!(ms.contact, rs.contact.masked_contact(), "{}: masked unless asked", m.id());
            assert_ne!(ms.contact.phone, rs.contact.phone, "{}: the phone is hidden", m.id());
            assert_eq!(ms.location, rs.location.coarse(), "{}: the home is shown to about 100 m", m.id());
            assert!(ms.location.distance_m(rs.location) < 80.0, "{}", m.id());
        } else {
            assert_eq!(m, r, "only contacts differ");
        }
    }
    assert_eq!(submitted, 60, "every request's submission is printed");

    let out = sidan(&["events", db.to_str().expect("UTF-8"), "--after", "5", "--limit", "3", "--reveal-contacts"]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).expect("UTF-8");
    let positions: Vec<u64> = text
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("JSON")["position"].as_u64().expect("n"))
        .collect();
    assert_eq!(positions, [6, 7, 8]);

    // A reader that stops early (`| head -1`) ends the command quietly.
    let mut child = Command::new(env!("CARGO_BIN_EXE_sidan"))
        .args(["events", db.to_str().expect("UTF-8")])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("runs");
    let mut first = String::new();
    BufReader::new(child.stdout.take().expect("piped")).read_line(&mut first).expect("reads a line");
    let out = child.wait_with_output().expect("finishes");
    assert!(first.starts_with("{\"position\":1,"), "{first}");
    assert!(out.status.success(), "a closed pipe is not an error: {}", String::from_utf8_lossy(&out.stderr));
    assert!(out.stderr.is_empty(), "{}", String::from_utf8_lossy(&out.stderr));

    // As the bus publishes them: CloudEvents, masked, one per event, read back exactly.
    let clouds = print(&["--cloudevents", "/sidan/test"]);
    assert_eq!(clouds.len(), masked.len());
    for (ce, m) in clouds.iter().zip(&masked) {
        assert_eq!((&ce["specversion"], &ce["source"]), (&"1.0".into(), &"/sidan/test".into()));
        assert_eq!(ce["sidanposition"], m["position"]);
        let back = sidan::runtime::Published::from_cloudevent_json(ce.to_string().as_bytes()).expect("decodes");
        let m: Recorded = serde_json::from_value(m["record"].clone()).expect("a record");
        assert_eq!(back.record, m, "the CloudEvent carries the masked record");
        assert!(
            ce["type"].as_str().is_some_and(|t| t == format!("sidan.{}.{}", m.stream.kind(), back.record.event.name())
                || t.starts_with("sidan.ledger."))
        );
    }
    let both = sidan(&["events", db.to_str().expect("UTF-8"), "--cloudevents", "/s", "--reveal-contacts"]);
    assert!(!both.status.success(), "contacts never leave as CloudEvents");

    let missing = dir.path().join("nothing.db");
    let out = sidan(&["events", missing.to_str().expect("UTF-8")]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no such store file"));
    assert!(!missing.exists(), "a missing store is not created");
}

#[test]
fn simulate_does_not_replace_a_users_file_unless_told() {
    let dir = TempDir::new("events-cli-replace");
    let db = dir.path().join("mine.db");
    std::fs::write(&db, b"precious").expect("writes");
    let out = simulate(&db, &[]);
    assert!(!out.status.success(), "an existing file is refused");
    assert!(String::from_utf8_lossy(&out.stderr).contains("--replace-db"), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(std::fs::read(&db).expect("still there"), b"precious");
    let out = simulate(&db, &["--replace-db"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_ne!(std::fs::read(&db).expect("a store now"), b"precious");
}

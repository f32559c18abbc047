//! `sidan simulate --store postgres`: a tiny simulation on the PostgreSQL
//! test server (`SIDAN_PG_URL`, by default `postgres://postgres@127.0.0.1:5432`;
//! skipped when no server answers, unless `SIDAN_REQUIRE_SERVICES=1`), plain
//! and over TLS.

use std::process::{Command, Output};

use sidan::store_postgres::{PgConfig, PgStore};
use sidan_store_tests::pg::{PgScratch, pg_or_skip, services_required};

fn sidan(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sidan")).args(args).output().expect("the binary runs")
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime")
}

/// The simulation's arguments, small enough for a test.
fn simulate<'a>(store: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args =
        vec!["simulate", "--store", store, "--teams", "300", "--requests", "60", "--days", "2", "--seed", "7"];
    args.extend_from_slice(extra);
    args
}

/// The text after `before` up to `after` in the report's engine line.
fn between<'a>(text: &'a str, before: &str, after: &str) -> &'a str {
    let line = text.lines().find(|l| l.starts_with("engine: ")).unwrap_or_else(|| panic!("no engine line:\n{text}"));
    let from = line.find(before).map(|i| i + before.len()).unwrap_or_else(|| panic!("{before:?} in {line}"));
    let rest = &line[from..];
    &rest[..rest.find(after).unwrap_or_else(|| panic!("{after:?} in {line}"))]
}

fn run_ok(args: &[&str]) -> String {
    let out = sidan(args);
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("utf-8")
}

#[test]
fn simulate_writes_the_same_log_to_postgresql_as_to_memory() {
    let rt = runtime();
    let Some(scratch) = rt.block_on(pg_or_skip("simulate_on_postgresql")) else { return };
    let pg = simulate("postgres", &["--pg-url", scratch.url(), "--pg-schema", scratch.schema()]);
    let text = run_ok(&pg);
    assert!(text.contains(&format!("PostgreSQL store, schema {}", scratch.schema())), "{text}");
    let events: u64 = between(&text, "; ", " events stored").parse().expect("a count");
    assert!(events > 60, "every request leaves a few events: {events}");
    // The events are in the schema, and the log is the one the memory store gets.
    let store = rt
        .block_on(PgStore::open(&PgConfig::new(scratch.url()).with_schema(scratch.schema())))
        .expect("the schema opens");
    assert_eq!(rt.block_on(store.head()).expect("reads").0, events);
    let memory = run_ok(&simulate("memory", &[]));
    assert_eq!(between(&text, "log hash ", ";"), between(&memory, "log hash ", ";"), "same seed, same log");
    // A second run into a schema that holds events is refused, and changes nothing.
    let again = sidan(&pg);
    assert_eq!(again.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&again.stderr).contains("already holds"), "{again:?}");
    assert_eq!(rt.block_on(store.head()).expect("reads").0, events);
}

/// The Debian server's own certificate (for `localhost`), when the server uses TLS.
const SNAKEOIL: &str = "/etc/ssl/certs/ssl-cert-snakeoil.pem";

/// A URL for `localhost` with `sslmode=require`, if the test server is the default one with TLS on.
fn tls_url(scratch: &PgScratch, rt: &tokio::runtime::Runtime) -> Option<String> {
    let plain = scratch.url();
    let why = if !plain.starts_with("postgres://postgres@127.0.0.1:5432/") {
        Some(format!("SIDAN_PG_URL={plain} is not the local default server"))
    } else if !std::path::Path::new(SNAKEOIL).exists() {
        Some(format!("{SNAKEOIL} is missing"))
    } else {
        let ssl = rt.block_on(async {
            let (client, conn) = tokio_postgres::connect(plain, tokio_postgres::NoTls).await.ok()?;
            tokio::spawn(conn);
            client.query_one("SHOW ssl", &[]).await.ok().map(|r| r.get::<_, String>(0))
        });
        (ssl.as_deref() != Some("on")).then(|| "the server does not use TLS".to_owned())
    };
    if let Some(why) = why {
        assert!(!services_required(), "TLS test: {why} and SIDAN_REQUIRE_SERVICES=1");
        eprintln!("SKIPPED simulate_on_postgresql_over_tls: {why}");
        return None;
    }
    Some(format!("{}?sslmode=require", plain.replace("@127.0.0.1:", "@localhost:")))
}

#[test]
fn simulate_on_postgresql_over_tls_checks_the_certificate() {
    let rt = runtime();
    let Some(scratch) = rt.block_on(pg_or_skip("simulate_on_postgresql_over_tls")) else { return };
    let Some(url) = tls_url(&scratch, &rt) else { return };
    // The server's self-signed certificate is not among the Mozilla roots: refused.
    let untrusted = sidan(&simulate("postgres", &["--pg-url", &url, "--pg-schema", scratch.schema()]));
    assert_eq!(untrusted.status.code(), Some(2), "{untrusted:?}");
    assert!(String::from_utf8_lossy(&untrusted.stderr).contains("cannot connect"), "{untrusted:?}");
    // Trusted through --pg-ca-file: the simulation runs over TLS.
    let args = simulate("postgres", &["--pg-url", &url, "--pg-schema", scratch.schema(), "--pg-ca-file", SNAKEOIL]);
    let text = run_ok(&args);
    assert!(text.contains("PostgreSQL store"), "{text}");
}

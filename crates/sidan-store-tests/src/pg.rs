//! PostgreSQL scaffolding for tests: the server's address, a fresh schema
//! per test (dropped afterwards), and the rule for an unreachable server.
//!
//! The server is `SIDAN_PG_URL`, by default [`DEFAULT_PG_URL`]. When it
//! cannot be reached, [`pg_or_skip`] returns `None` and prints why, so the
//! test can skip; with `SIDAN_REQUIRE_SERVICES=1` (as `.ci/run` sets) it
//! panics instead, and the test fails.

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio_postgres::NoTls;

/// The server the tests use unless `SIDAN_PG_URL` says otherwise.
pub const DEFAULT_PG_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// `SIDAN_PG_URL`, or [`DEFAULT_PG_URL`].
pub fn pg_url() -> String {
    std::env::var("SIDAN_PG_URL").ok().filter(|u| !u.is_empty()).unwrap_or_else(|| DEFAULT_PG_URL.to_owned())
}

/// Whether an unreachable service must fail a test (`SIDAN_REQUIRE_SERVICES=1`).
pub fn services_required() -> bool {
    std::env::var("SIDAN_REQUIRE_SERVICES").is_ok_and(|v| v == "1")
}

/// A fresh, empty schema on the test server, dropped (with everything in it) on drop.
#[derive(Debug)]
pub struct PgScratch {
    url: String,
    schema: String,
}

impl PgScratch {
    /// The server's URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The schema's name (lower case letters, digits and `_`: no quoting needed).
    pub fn schema(&self) -> &str {
        &self.schema
    }
}

async fn connect(url: &str) -> Result<tokio_postgres::Client, String> {
    let connecting = tokio_postgres::connect(url, NoTls);
    let (client, connection) = tokio::time::timeout(Duration::from_secs(10), connecting)
        .await
        .map_err(|_| "no answer within 10 s".to_owned())?
        .map_err(|e| e.to_string())?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(client)
}

/// A fresh schema for the test `test`, or `None` (with a message on stderr)
/// when the server cannot be reached and services are not required.
///
/// # Panics
/// When the server cannot be reached and `SIDAN_REQUIRE_SERVICES=1`, or
/// when it answers but the schema cannot be created.
pub async fn pg_or_skip(test: &str) -> Option<PgScratch> {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let url = pg_url();
    let client = match connect(&url).await {
        Ok(c) => c,
        Err(e) if services_required() => {
            panic!("{test}: PostgreSQL at {url} is unreachable ({e}) and SIDAN_REQUIRE_SERVICES=1")
        }
        Err(e) => {
            // Straight to stderr: libtest would swallow `eprintln!` of a passing test.
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED {test}: PostgreSQL at {url} is unreachable ({e}); \
                 set SIDAN_PG_URL to point at a server, or SIDAN_REQUIRE_SERVICES=1 to fail instead"
            );
            return None;
        }
    };
    let name: String =
        test.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '_' }).take(32).collect();
    let schema = format!("sidan_t_{name}_{}_{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
    client
        .batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}"))
        .await
        .unwrap_or_else(|e| panic!("{test}: cannot create schema {schema}: {e}"));
    Some(PgScratch { url, schema })
}

impl Drop for PgScratch {
    fn drop(&mut self) {
        let (url, schema) = (self.url.clone(), self.schema.clone());
        // Drop may run inside a runtime (or while a test unwinds): use a thread of our own.
        let dropped = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
            rt.block_on(async {
                let client = connect(&url).await?;
                client
                    .batch_execute(&format!("SET lock_timeout = '20s'; DROP SCHEMA IF EXISTS {schema} CASCADE"))
                    .await
                    .map_err(|e| e.to_string())
            })
        })
        .join();
        match dropped {
            Ok(Ok(())) => {}
            Ok(Err(e)) => eprintln!("warning: cannot drop test schema {}: {e}", self.schema),
            Err(_) => eprintln!("warning: dropping test schema {} panicked", self.schema),
        }
    }
}

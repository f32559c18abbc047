//! The store conformance suite (`sidan-store-tests`) on PostgreSQL: each
//! test works in fresh schemas, dropped afterwards. Without a server the
//! tests skip, unless `SIDAN_REQUIRE_SERVICES=1`.

use sidan_store_postgres::{PgConfig, PgStore};
use sidan_store_tests::Harness;
use sidan_store_tests::pg::{PgScratch, pg_or_skip};

/// `fresh` makes a new schema, `reopen` opens a new pool on the last one.
struct PgHarness {
    test: &'static str,
    spare: Option<PgScratch>,
    scratches: Vec<PgScratch>,
}

impl PgHarness {
    fn config(&self) -> PgConfig {
        let s = self.scratches.last().expect("fresh was called first");
        PgConfig::new(s.url()).with_schema(s.schema())
    }
}

impl Harness for PgHarness {
    type Store = PgStore;

    fn durable(&self) -> bool {
        true
    }

    async fn fresh(&mut self) -> PgStore {
        let scratch = match self.spare.take() {
            Some(s) => s,
            None => pg_or_skip(self.test).await.expect("the server answered a moment ago"),
        };
        self.scratches.push(scratch);
        PgStore::open(&self.config()).await.expect("opens a new schema")
    }

    async fn reopen(&mut self) -> PgStore {
        PgStore::open(&self.config()).await.expect("opens the schema again")
    }
}

async fn harness(test: &'static str) -> Option<PgHarness> {
    let spare = pg_or_skip(test).await?;
    Some(PgHarness { test, spare: Some(spare), scratches: Vec::new() })
}

sidan_store_tests::conformance_tests!(harness);

//! The store conformance suite (`sidan-store-tests`) on SQLite files.

use std::path::PathBuf;

use sidan_store_sqlite::{SqliteConfig, SqliteStore};
use sidan_store_tests::{Harness, TempDir};

/// A folder of store files: `fresh` makes a new file, `reopen` opens the last one again.
struct SqliteHarness {
    dir: TempDir,
    n: usize,
    last: PathBuf,
}

impl Harness for SqliteHarness {
    type Store = SqliteStore;

    fn durable(&self) -> bool {
        true
    }

    async fn fresh(&mut self) -> SqliteStore {
        self.n += 1;
        self.last = self.dir.path().join(format!("store-{}.db", self.n));
        SqliteStore::open(&self.last, SqliteConfig::default()).expect("opens a new file")
    }

    async fn reopen(&mut self) -> SqliteStore {
        SqliteStore::open(&self.last, SqliteConfig::default()).expect("opens the file again")
    }
}

async fn harness(test: &'static str) -> Option<SqliteHarness> {
    Some(SqliteHarness { dir: TempDir::new(test), n: 0, last: PathBuf::new() })
}

sidan_store_tests::conformance_tests!(harness);

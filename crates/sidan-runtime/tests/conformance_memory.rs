//! The store conformance suite (`sidan-store-tests`) on [`MemoryStore`]:
//! the reference every durable adapter is held to.
//!
//! [`MemoryStore`]: sidan_runtime::MemoryStore

use sidan_store_tests::MemoryHarness;

async fn harness(_test: &'static str) -> Option<MemoryHarness> {
    Some(MemoryHarness::default())
}

sidan_store_tests::conformance_tests!(harness);

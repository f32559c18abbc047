//! The ledger's throughput in the pure core: `Ledger::execute` (decide + apply) and the
//! expiry tick, one thread, one command per transfer or per linked pair.
//!
//! Two workloads over 100,000 volunteers (points and minutes accounts each) and 1,000 station
//! shelves, every account opened and funded before the clock starts:
//!
//! - `posted`: single-phase transfers between random accounts: half service credits (issuance →
//!   a volunteer's banked minutes, with derived ids), half adjustments between two volunteers'
//!   points.
//! - `mixed`: per round, a love-supermarket redemption reserved for pick-up (two linked pending
//!   transfers), a service credit, and the redemption of 20 rounds before settled: picked up
//!   (two posts, 70 %), not picked up (two voids, 20 %) or left to expire (10 %, released by the
//!   tick that runs every 100 rounds).
//!
//! `posted` also runs as `decide` then `apply` of each event (the runtime's path, which folds
//! the events again after storing them) beside `execute` (which keeps the decision's overlay).
//! Throughput counts transfer operations: transfers made, posts, voids and expiries.
//! Run with `cargo bench --bench ledger`; `benches/ledger_report.py` writes the medians into
//! docs/benchmarks.md.

use std::time::Duration;

use chrono::{DateTime, Utc};
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use sidan::core::id::{RequestId, UnitId, VolunteerId};
use sidan::core::ledger::{
    AccountId, ItemId, Ledger, LedgerCommand, LedgerEvent, LedgerOp, Redemption, TransferId, TransferKind, TransferSpec,
};

const VOLUNTEERS: usize = 100_000;
const STATIONS: usize = 1_000;
const POSTED: usize = 200_000;
const ROUNDS: usize = 50_000;
const SETTLE_AFTER: usize = 20;

fn start() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-03-01T08:00:00Z").expect("a valid time").with_timezone(&Utc)
}

fn tid(s: String) -> TransferId {
    TransferId::new(&s).expect("a valid id")
}

fn volunteer(i: usize) -> VolunteerId {
    VolunteerId::new(&format!("v{i:06}")).expect("a valid id")
}

fn station(i: usize) -> UnitId {
    UnitId::new(&format!("s{i:04}")).expect("a valid id")
}

fn rice() -> ItemId {
    ItemId::new("rice-5kg").expect("a valid id")
}

/// A SplitMix64 stream: the workload is the same on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Every account opened; every volunteer with 10,000 points and 600 minutes; every shelf with
/// 10,000 bags of rice.
fn funded() -> Ledger {
    let mut l = Ledger::new();
    let now = start();
    let system = [AccountId::PointsIssuance, AccountId::MinutesIssuance, AccountId::MinutesSpent];
    l.execute(&LedgerCommand::open(system), now).expect("opens");
    let adjust = |id: String, debit, credit, amount| TransferSpec {
        id: tid(id),
        debit,
        credit,
        amount,
        kind: TransferKind::Adjustment { reason: "opening balance".into() },
        timeout_s: None,
    };
    for i in 0..VOLUNTEERS {
        let (p, m) = (AccountId::VolunteerPoints(volunteer(i)), AccountId::VolunteerMinutes(volunteer(i)));
        let mut cmd = LedgerCommand::open([p.clone(), m.clone()]);
        cmd.ops
            .push(LedgerOp::Transfer { transfer: adjust(format!("open-p{i}"), AccountId::PointsIssuance, p, 10_000) });
        cmd.ops.push(LedgerOp::Transfer { transfer: adjust(format!("open-m{i}"), AccountId::MinutesIssuance, m, 600) });
        l.execute(&cmd, now).expect("funds a volunteer");
    }
    for s in 0..STATIONS {
        let shelf = AccountId::Shelf { station: station(s), item: rice() };
        let receipt = AccountId::StockReceipt { station: station(s), item: rice() };
        let accounts = [shelf.clone(), receipt.clone(), AccountId::StockConsumed { station: station(s), item: rice() }];
        let mut cmd = LedgerCommand::open(accounts.into_iter().chain([AccountId::Till(station(s))]));
        cmd.ops.push(LedgerOp::Transfer {
            transfer: TransferSpec {
                id: tid(format!("stock-{s}")),
                debit: receipt,
                credit: shelf,
                amount: 10_000,
                kind: TransferKind::Restock {},
                timeout_s: None,
            },
        });
        l.execute(&cmd, now).expect("stocks a shelf");
    }
    l
}

/// A service credit of 1–120 minutes into a random volunteer's time bank.
fn credit(rng: &mut Rng, request: usize) -> LedgerCommand {
    let request = RequestId::new(&format!("q{request}")).expect("a valid id");
    let account = AccountId::VolunteerMinutes(volunteer(rng.below(VOLUNTEERS)));
    LedgerCommand::transfer(TransferSpec {
        id: TransferId::service_credit(&request, &account).expect("a creditable account"),
        debit: AccountId::MinutesIssuance,
        credit: account,
        amount: 1 + rng.below(120) as u64,
        kind: TransferKind::ServiceCredit { request },
        timeout_s: None,
    })
}

fn posted_workload() -> Vec<LedgerCommand> {
    let mut rng = Rng(7);
    (0..POSTED)
        .map(|i| {
            if i % 2 == 0 {
                return credit(&mut rng, i);
            }
            let a = rng.below(VOLUNTEERS);
            let b = (a + 1 + rng.below(VOLUNTEERS - 1)) % VOLUNTEERS;
            LedgerCommand::transfer(TransferSpec {
                id: tid(format!("t{i}")),
                debit: AccountId::VolunteerPoints(volunteer(a)),
                credit: AccountId::VolunteerPoints(volunteer(b)),
                amount: 1 + rng.below(5) as u64,
                kind: TransferKind::Adjustment { reason: "thanks".into() },
                timeout_s: None,
            })
        })
        .collect()
}

/// One step of the mixed workload, at its time: a command, or a tick.
enum Step {
    Command(DateTime<Utc>, LedgerCommand),
    Tick(DateTime<Utc>),
}

/// Rounds are one second apart; a redemption waits 60 s for pick-up and is settled 20 s later,
/// or expires.
fn mixed_workload() -> Vec<Step> {
    let mut rng = Rng(11);
    let mut steps = Vec::new();
    let mut redemptions: Vec<Redemption> = Vec::with_capacity(ROUNDS);
    for round in 0..ROUNDS {
        let now = start() + chrono::Duration::seconds(round as i64);
        let r = Redemption {
            id: tid(format!("r{round}")),
            volunteer: volunteer(rng.below(VOLUNTEERS)),
            station: station(rng.below(STATIONS)),
            item: rice(),
            points: 10 + rng.below(90) as u64,
            quantity: 1,
            timeout_s: Some(60),
        };
        steps.push(Step::Command(now, r.command().expect("short ids")));
        redemptions.push(r);
        steps.push(Step::Command(now, credit(&mut rng, POSTED + round)));
        if round >= SETTLE_AFTER {
            let r = &redemptions[round - SETTLE_AFTER];
            let id = tid(format!("settle{round}"));
            match rng.below(10) {
                0..=6 => steps.push(Step::Command(now, r.post(&id).expect("short ids"))),
                7 | 8 => steps.push(Step::Command(now, r.void(&id).expect("short ids"))),
                _ => {}
            }
        }
        if round % 100 == 99 {
            steps.push(Step::Tick(now));
        }
    }
    steps.push(Step::Tick(start() + chrono::Duration::seconds(ROUNDS as i64 + 60)));
    steps
}

/// The runtime's path: decide, (store), then fold the events.
fn run_posted_apply(l: &mut Ledger, cmds: &[LedgerCommand]) -> usize {
    let mut n = 0;
    let now = start();
    for cmd in cmds {
        let events = l.decide(cmd, now).expect("funded accounts");
        for ev in &events {
            l.apply(ev).expect("a decided event applies");
        }
        n += events.len();
    }
    n
}

fn run_posted(l: &mut Ledger, cmds: &[LedgerCommand]) -> usize {
    let mut n = 0;
    let now = start();
    for cmd in cmds {
        n += l.execute(cmd, now).expect("funded accounts").len();
    }
    n
}

/// Runs the mixed workload; returns the number of events, each handed to `sink`.
fn run_mixed(l: &mut Ledger, steps: &[Step], sink: &mut impl FnMut(&[LedgerEvent])) -> usize {
    let mut n = 0;
    for step in steps {
        let events = match step {
            Step::Command(now, cmd) => l.execute(cmd, *now).expect("funded accounts and stocked shelves"),
            Step::Tick(now) => l.execute_tick(*now),
        };
        n += events.len();
        sink(&events);
    }
    n
}

fn count(events: impl Iterator<Item = LedgerEvent>) -> usize {
    events
        .filter(|e| {
            matches!(
                e,
                LedgerEvent::Transferred { .. }
                    | LedgerEvent::Posted { .. }
                    | LedgerEvent::Voided { .. }
                    | LedgerEvent::Expired { .. }
            )
        })
        .count()
}

fn bench(c: &mut Criterion) {
    let base = funded();
    let posted = posted_workload();
    let mixed = mixed_workload();

    // Count once, and check the workloads do what they say.
    let mut l = base.clone();
    let posted_ops = run_posted(&mut l, &posted);
    l.check().expect("the invariants hold");
    let mut l2 = base.clone();
    assert_eq!(run_posted_apply(&mut l2, &posted), posted_ops);
    assert_eq!(l2.digest(), l.digest(), "execute and decide + apply reach the same state");
    let mut l = base.clone();
    let mut all = Vec::new();
    let mixed_ops = run_mixed(&mut l, &mixed, &mut |events| all.extend_from_slice(events));
    l.check().expect("the invariants hold");
    assert_eq!(count(all.iter().cloned()), mixed_ops);
    let by_kind = |name: &str| all.iter().filter(|e| e.name() == name).count();
    let (made, posts, voids, expiries) =
        (by_kind("transferred"), by_kind("posted"), by_kind("voided"), by_kind("expired"));
    assert!(posts > 0 && voids > 0 && expiries > 0, "the mixed workload settles every way");

    let mut g = c.benchmark_group("ledger");
    g.sample_size(10).measurement_time(Duration::from_secs(10));
    g.throughput(Throughput::Elements(posted_ops as u64));
    g.bench_function("posted", |b| {
        // The ledger is returned so that dropping it is not timed.
        b.iter_batched(
            || base.clone(),
            |mut l| {
                run_posted(&mut l, &posted);
                l
            },
            BatchSize::LargeInput,
        )
    });
    g.bench_function("posted_decide_apply", |b| {
        b.iter_batched(
            || base.clone(),
            |mut l| {
                run_posted_apply(&mut l, &posted);
                l
            },
            BatchSize::LargeInput,
        )
    });
    g.throughput(Throughput::Elements(mixed_ops as u64));
    g.bench_function("mixed", |b| {
        b.iter_batched(
            || base.clone(),
            |mut l| {
                run_mixed(&mut l, &mixed, &mut |_| {});
                l
            },
            BatchSize::LargeInput,
        )
    });
    g.finish();

    let line = format!(
        "volunteers={VOLUNTEERS} stations={STATIONS} accounts={} posted_ops={posted_ops} mixed_ops={mixed_ops} \
         mixed_commands={} rounds={ROUNDS} made={made} posts={posts} voids={voids} expiries={expiries}\n",
        base.accounts().len(),
        mixed.iter().filter(|s| matches!(s, Step::Command(..))).count(),
    );
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
    let path = target.join("criterion/ledger-counts.txt");
    if let Err(e) = std::fs::write(&path, &line) {
        eprintln!("cannot write {}: {e}", path.display());
    }
    eprint!("ledger: {line}");
}

criterion_group!(benches, bench);
criterion_main!(benches);

//! Retention of settled transfers changes memory, never money: random runs of grants,
//! restocks, redemptions (reserved or not, posted, voided, expired), reversals and retries on two
//! ledgers, one keeping every transfer and one retiring settled transfers two hours after they
//! were made.
//!
//! - Invariants 17–22 hold on the retiring ledger after every step ([`Ledger::check`], with the
//!   totals carried from what left), and its balances are the audit's fold of its log.
//! - Both ledgers decide every command alike while the retiring one still knows every id the
//!   command names; once one of them has left, the retiring ledger may only differ in the way
//!   documented (a retry is a new transfer, a reversal finds no original).
//! - Replaying the retiring ledger's log (through JSON) and restoring its snapshot give its state.
//! - Once everything is settled and a retention has passed, nothing is left in memory.

use chrono::{DateTime, Duration, Utc};
use proptest::collection::vec;
use proptest::prelude::*;

use sidan_core::id::{UnitId, VolunteerId};
use sidan_core::ledger::{
    AccountId, ItemId, Ledger, LedgerCommand, LedgerError, LedgerEvent, LedgerOp, Redemption, TransferId, TransferKind,
    TransferSpec,
};
use sidan_core::testkit::t0;

const KEEP_H: i64 = 2;

#[derive(Debug, Clone)]
enum Op {
    Grant { vol: usize, amount: u64 },
    Restock { station: usize, amount: u64 },
    Redeem { vol: usize, station: usize, points: u64, reserve: bool },
    Resolve { k: usize, post: bool },
    Reverse { k: usize },
    Retry { k: usize },
    Advance { minutes: u32 },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0..3usize, 1..50u64).prop_map(|(vol, amount)| Op::Grant { vol, amount }),
        1 => (0..2usize, 1..5u64).prop_map(|(station, amount)| Op::Restock { station, amount }),
        3 => (0..3usize, 0..2usize, 1..20u64, any::<bool>())
            .prop_map(|(vol, station, points, reserve)| Op::Redeem { vol, station, points, reserve }),
        2 => (any::<usize>(), any::<bool>()).prop_map(|(k, post)| Op::Resolve { k, post }),
        2 => any::<usize>().prop_map(|k| Op::Reverse { k }),
        2 => any::<usize>().prop_map(|k| Op::Retry { k }),
        3 => (1..90u32).prop_map(|minutes| Op::Advance { minutes }),
    ]
}

fn vol(i: usize) -> VolunteerId {
    VolunteerId::new(&format!("v{i}")).expect("an id")
}

fn station(i: usize) -> UnitId {
    UnitId::new(&format!("s{i}")).expect("an id")
}

fn item() -> ItemId {
    ItemId::new("rice").expect("an id")
}

fn tid(s: String) -> TransferId {
    TransferId::new(&s).expect("an id")
}

struct Run {
    keeps: Ledger,
    retires: Ledger,
    log: Vec<LedgerEvent>,
    now: DateTime<Utc>,
    sent: Vec<LedgerCommand>,
    /// Every transfer id made, for reversals.
    made: Vec<TransferId>,
    redemptions: Vec<Redemption>,
    next: usize,
    /// Whether some command was decided differently, because an id it named had left memory.
    diverged: bool,
}

impl Run {
    fn new() -> Self {
        let keeps = Ledger::new();
        let retires = Ledger::new().with_retention(Some(Duration::hours(KEEP_H)));
        let mut run = Run {
            keeps,
            retires,
            log: Vec::new(),
            now: t0(),
            sent: Vec::new(),
            made: Vec::new(),
            redemptions: Vec::new(),
            next: 0,
            diverged: false,
        };
        let mut accounts = vec![AccountId::PointsIssuance];
        for v in 0..3 {
            accounts.push(AccountId::VolunteerPoints(vol(v)));
        }
        for s in 0..2 {
            accounts.push(AccountId::Till(station(s)));
            accounts.push(AccountId::Shelf { station: station(s), item: item() });
            accounts.push(AccountId::StockReceipt { station: station(s), item: item() });
            accounts.push(AccountId::StockConsumed { station: station(s), item: item() });
        }
        run.send(LedgerCommand::open(accounts)).expect("opens");
        run
    }

    fn fresh(&mut self, prefix: &str) -> TransferId {
        self.next += 1;
        tid(format!("{prefix}-{}", self.next))
    }

    /// Every id a command names: its own, and the transfers it acts on.
    fn named(cmd: &LedgerCommand) -> Vec<(TransferId, bool)> {
        let mut ids = Vec::new();
        for op in &cmd.ops {
            match op {
                LedgerOp::Transfer { transfer } => ids.push((transfer.id.clone(), false)),
                LedgerOp::Post { id, pending } | LedgerOp::Void { id, pending } => {
                    ids.push((id.clone(), false));
                    ids.push((pending.clone(), true));
                }
                LedgerOp::Reverse { id, original, .. } => {
                    ids.push((id.clone(), false));
                    ids.push((original.clone(), true));
                }
                _ => {}
            }
        }
        ids
    }

    fn send(&mut self, cmd: LedgerCommand) -> Result<(), String> {
        // Whether the retiring ledger still knows everything the keeping one knows of these ids.
        let knows = Self::named(&cmd).iter().all(|(id, target)| {
            if *target {
                self.keeps.transfer(id).is_none() || self.retires.transfer(id).is_some()
            } else {
                self.keeps.outcome(id).is_none() || self.retires.outcome(id).is_some()
            }
        });
        let a = self.keeps.execute(&cmd, self.now);
        let b = self.retires.execute(&cmd, self.now);
        // Once the ledgers differ, balances may, and so may any later decision.
        if knows && !self.diverged {
            if a != b {
                return Err(format!("{cmd:?} at {}: keeping {a:?}, retiring {b:?}", self.now));
            }
        } else if !self.diverged {
            // The first difference may only be the documented one: an id that left is not
            // remembered (a retry is decided as a new transfer, a reversal or post finds nothing).
            if let Err(e @ (LedgerError::ExistsWithDifferent { .. } | LedgerError::AlreadyExists { .. })) = &b {
                return Err(format!("{cmd:?}: an id that left memory is still known: {e:?}"));
            }
            self.diverged = a != b;
        }
        if let Ok(events) = &b {
            for ev in events {
                if let LedgerEvent::Transferred { transfer } = ev {
                    self.made.push(transfer.id.clone());
                }
            }
            self.log.extend(events.iter().cloned());
        }
        self.sent.push(cmd);
        self.check()
    }

    fn tick(&mut self) -> Result<(), String> {
        self.keeps.execute_tick(self.now);
        let events = self.retires.execute_tick(self.now);
        self.log.extend(events);
        self.check()
    }

    fn check(&self) -> Result<(), String> {
        self.retires.check().map_err(|e| format!("retiring ledger: {e}"))?;
        let audit = Ledger::recompute_from(&self.log);
        for a in self.retires.accounts() {
            let folded = audit.get(&a.id).copied().unwrap_or_default();
            if folded != a.balance {
                return Err(format!("{}: balance {:?}, the log folds to {folded:?}", a.id, a.balance));
            }
            if !self.diverged && self.keeps.balance(&a.id) != a.balance {
                return Err(format!("{}: the ledgers' balances differ", a.id));
            }
        }
        Ok(())
    }

    fn op(&mut self, op: &Op) -> Result<(), String> {
        match *op {
            Op::Grant { vol: v, amount } => {
                let id = self.fresh("g");
                let transfer = TransferSpec {
                    id,
                    debit: AccountId::PointsIssuance,
                    credit: AccountId::VolunteerPoints(vol(v)),
                    amount,
                    kind: TransferKind::Adjustment { reason: "grant".into() },
                    timeout_s: None,
                };
                self.send(LedgerCommand::transfers([transfer]))
            }
            Op::Restock { station: s, amount } => {
                let id = self.fresh("r");
                let transfer = TransferSpec {
                    id,
                    debit: AccountId::StockReceipt { station: station(s), item: item() },
                    credit: AccountId::Shelf { station: station(s), item: item() },
                    amount,
                    kind: TransferKind::Restock {},
                    timeout_s: None,
                };
                self.send(LedgerCommand::transfers([transfer]))
            }
            Op::Redeem { vol: v, station: s, points, reserve } => {
                let red = Redemption {
                    id: self.fresh("x"),
                    volunteer: vol(v),
                    station: station(s),
                    item: item(),
                    points,
                    quantity: 1,
                    timeout_s: reserve.then_some(1800),
                };
                let cmd = red.command().map_err(|e| e.to_string())?;
                self.redemptions.push(red);
                self.send(cmd)
            }
            Op::Resolve { k, post } => {
                let Some(red) = self.redemptions.get(k % self.redemptions.len().max(1)).cloned() else { return Ok(()) };
                let id = self.fresh(if post { "p" } else { "v" });
                let cmd = if post { red.post(&id) } else { red.void(&id) }.map_err(|e| e.to_string())?;
                self.send(cmd)
            }
            Op::Reverse { k } => {
                let Some(original) = self.made.get(k % self.made.len().max(1)).cloned() else { return Ok(()) };
                let id = self.fresh("rev");
                self.send(LedgerCommand::new(vec![LedgerOp::Reverse { id, original, reason: "a mistake".into() }]))
            }
            Op::Retry { k } => {
                let Some(cmd) = self.sent.get(k % self.sent.len()).cloned() else { return Ok(()) };
                self.send(cmd)
            }
            Op::Advance { minutes } => {
                self.now += Duration::minutes(i64::from(minutes));
                self.tick()
            }
        }
    }

    /// Replays the log, restores the snapshot, then lets everything settle and leave.
    fn finish(&mut self) -> Result<(), String> {
        let json = serde_json::to_string(&self.log).map_err(|e| e.to_string())?;
        let back: Vec<LedgerEvent> = serde_json::from_str(&json).map_err(|e| e.to_string())?;
        let replayed = Ledger::replay(&back).map_err(|e| e.to_string())?;
        if replayed.digest() != self.retires.digest() {
            return Err("the replayed log gives another state".into());
        }
        let restored = Ledger::restore(self.retires.snapshot()).map_err(|e| e.to_string())?;
        if restored.digest() != self.retires.digest() {
            return Err("the restored snapshot gives another state".into());
        }
        // Every reservation expires within the hour; a retention and a day later all has left.
        for _ in 0..3 {
            self.now += Duration::hours(KEEP_H) + Duration::minutes(31);
            self.tick()?;
        }
        let held = self.retires.transfers_in_memory();
        if held != 0 || self.retires.pending() != 0 {
            return Err(format!("{held} transfers still in memory after everything settled"));
        }
        // Every transfer made left, once (a retry after its id left is a new transfer).
        let made = self.log.iter().filter(|e| matches!(e, LedgerEvent::Transferred { .. })).count() as u64;
        if self.retires.retired() != made {
            return Err(format!("{made} transfers made, {} retired", self.retires.retired()));
        }
        Ok(())
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(
        std::env::var("PROPTEST_CASES").ok().and_then(|s| s.parse().ok()).unwrap_or(128)
    ))]

    #[test]
    fn retention_changes_memory_not_money(ops in vec(op(), 1..=200)) {
        let mut run = Run::new();
        for (i, op) in ops.iter().enumerate() {
            run.op(op).map_err(|e| TestCaseError::fail(format!("op #{i} {op:?}: {e}")))?;
        }
        run.finish().map_err(|e| TestCaseError::fail(format!("at the end: {e}")))?;
    }
}

/// A reversal within the retention works; after it the original is gone, and a retry of its id
/// is a new transfer.
#[test]
fn a_settled_transfer_leaves_memory_a_retention_after_it_was_made() {
    let mut l = Ledger::new().with_retention(Some(Duration::hours(KEEP_H)));
    let v = AccountId::VolunteerPoints(vol(0));
    l.execute(&LedgerCommand::open([AccountId::PointsIssuance, v.clone()]), t0()).expect("opens");
    let grant = TransferSpec {
        id: tid("g-1".into()),
        debit: AccountId::PointsIssuance,
        credit: v.clone(),
        amount: 10,
        kind: TransferKind::Adjustment { reason: "grant".into() },
        timeout_s: None,
    };
    l.execute(&LedgerCommand::transfers([grant.clone()]), t0()).expect("grants");
    assert_eq!(l.next_retirement(), Some(t0() + Duration::hours(KEEP_H)));
    // Not yet due: nothing leaves, a retry is recognised.
    assert!(l.tick(t0() + Duration::minutes(119)).is_empty());
    assert_eq!(l.execute(&LedgerCommand::transfers([grant.clone()]), t0() + Duration::minutes(119)), Ok(vec![]));
    // Due: the grant leaves, the balance stays.
    let at = t0() + Duration::hours(KEEP_H);
    let events = l.execute_tick(at);
    assert_eq!(events, [LedgerEvent::Retired { before: t0(), at }]);
    assert_eq!((l.transfers_in_memory(), l.retired()), (0, 1));
    assert_eq!(l.balance(&v).posted(), 10);
    l.check().expect("sound");
    let reverse = LedgerOp::Reverse { id: tid("rev".into()), original: grant.id.clone(), reason: "late".into() };
    assert_eq!(
        l.execute(&LedgerCommand::new(vec![reverse]), at),
        Err(LedgerError::OriginalNotFound { original: grant.id.clone() })
    );
    let again = l.execute(&LedgerCommand::transfers([grant]), at).expect("a new transfer");
    assert_eq!(again.len(), 1);
    assert_eq!(l.balance(&v).posted(), 20);
    assert_eq!(l.next_retirement(), Some(at + Duration::hours(KEEP_H)));
}

/// A transfer leaves only with everything linked to it, once all of it is settled and old: a
/// redemption's two legs together, a reversal with its original.
#[test]
fn linked_transfers_leave_together() {
    let mut l = Ledger::new().with_retention(Some(Duration::hours(KEEP_H)));
    let s = station(0);
    let shelf = AccountId::Shelf { station: s.clone(), item: item() };
    let receipt = AccountId::StockReceipt { station: s.clone(), item: item() };
    let v = AccountId::VolunteerPoints(vol(0));
    let accounts = [
        AccountId::PointsIssuance,
        v.clone(),
        AccountId::Till(s.clone()),
        shelf.clone(),
        receipt.clone(),
        AccountId::StockConsumed { station: s.clone(), item: item() },
    ];
    l.execute(&LedgerCommand::open(accounts), t0()).expect("opens");
    let stock = TransferSpec {
        id: tid("r-1".into()),
        debit: receipt,
        credit: shelf,
        amount: 5,
        kind: TransferKind::Restock {},
        timeout_s: None,
    };
    let grant = TransferSpec {
        id: tid("g-1".into()),
        debit: AccountId::PointsIssuance,
        credit: v,
        amount: 10,
        kind: TransferKind::Adjustment { reason: "grant".into() },
        timeout_s: None,
    };
    l.execute(&LedgerCommand::transfers([stock, grant]), t0()).expect("restocks and grants");
    let red = Redemption {
        id: tid("x-1".into()),
        volunteer: vol(0),
        station: s,
        item: item(),
        points: 4,
        quantity: 1,
        timeout_s: None,
    };
    l.execute(&red.command().expect("a command"), t0()).expect("redeems");
    // The grant is reversed an hour later: it waits for its reversal to be as old.
    let later = t0() + Duration::hours(1);
    let rev = LedgerOp::Reverse { id: tid("rev".into()), original: tid("g-1".into()), reason: "no".into() };
    // The volunteer spent 4 of the 10, and a reversal takes the whole amount back.
    let refused = l.execute(&LedgerCommand::new(vec![rev.clone()]), later);
    assert!(matches!(refused, Err(LedgerError::InsufficientBalance { .. })), "{refused:?}");
    l.execute(&red.reverse(&tid("xr".into()), "returned").expect("a command"), later).expect("the goods come back");
    l.execute(&LedgerCommand::new(vec![rev]), later).expect("reverses");
    assert_eq!(l.transfers_in_memory(), 7);
    // At two hours the restock leaves; the grant waits for its reversal, the redemption for its reversals.
    l.execute_tick(t0() + Duration::hours(KEEP_H));
    assert_eq!(l.transfers_in_memory(), 6);
    assert!(l.transfer(&tid("g-1".into())).is_some() && l.transfer(&tid("x-1/points".into())).is_some());
    l.check().expect("sound");
    // A retention after the reversals, and a retention after the last retirement, the rest leaves, together.
    assert_eq!(l.next_retirement(), Some(t0() + Duration::hours(2 * KEEP_H)));
    l.execute_tick(t0() + Duration::hours(2 * KEEP_H));
    assert_eq!((l.transfers_in_memory(), l.retired()), (0, 7));
    l.check().expect("sound");
    assert_eq!(l.next_retirement(), None);
}

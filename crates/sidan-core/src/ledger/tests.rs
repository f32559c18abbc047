//! Unit tests of the ledger: each rule with the error it gives, the credit formula, serde.
//! The random state-machine test against a reference model is `tests/ledger_model.rs`.

use chrono::{DateTime, Duration, Utc};
use proptest::prelude::*;

use super::credit::split;
use super::*;
use crate::id::{RequestId, TeamId, UnitId, VolunteerId};
use crate::testkit::t0;

fn tid(s: &str) -> TransferId {
    TransferId::new(s).expect("valid transfer id")
}

fn vp(v: &str) -> AccountId {
    AccountId::VolunteerPoints(VolunteerId::new(v).expect("id"))
}

fn vm(v: &str) -> AccountId {
    AccountId::VolunteerMinutes(VolunteerId::new(v).expect("id"))
}

fn unit(s: &str) -> UnitId {
    UnitId::new(s).expect("id")
}

fn item(s: &str) -> ItemId {
    ItemId::new(s).expect("id")
}

fn shelf(st: &str, it: &str) -> AccountId {
    AccountId::Shelf { station: unit(st), item: item(it) }
}

fn receipt(st: &str, it: &str) -> AccountId {
    AccountId::StockReceipt { station: unit(st), item: item(it) }
}

fn consumed(st: &str, it: &str) -> AccountId {
    AccountId::StockConsumed { station: unit(st), item: item(it) }
}

fn till(st: &str) -> AccountId {
    AccountId::Till(unit(st))
}

fn adjust(id: &str, debit: AccountId, credit: AccountId, amount: u64) -> TransferSpec {
    TransferSpec {
        id: tid(id),
        debit,
        credit,
        amount,
        kind: TransferKind::Adjustment { reason: "opening balance".into() },
        timeout_s: None,
    }
}

fn spec(id: &str, debit: AccountId, credit: AccountId, amount: u64, kind: TransferKind) -> TransferSpec {
    TransferSpec { id: tid(id), debit, credit, amount, kind, timeout_s: None }
}

/// A ledger with the system accounts, volunteers v1 and v2 (points and minutes), station s1's
/// shelf of rice, and 100 points for v1, 60 minutes for v1 and `stock` bags of rice on the shelf.
fn setup(stock: u64) -> Ledger {
    let mut l = Ledger::new();
    let accounts = [
        AccountId::PointsIssuance,
        AccountId::MinutesIssuance,
        AccountId::MinutesSpent,
        vp("v1"),
        vp("v2"),
        vm("v1"),
        vm("v2"),
        till("s1"),
        shelf("s1", "rice"),
        receipt("s1", "rice"),
        consumed("s1", "rice"),
    ];
    l.execute(&LedgerCommand::open(accounts), t0()).expect("opens");
    l.execute(&LedgerCommand::transfer(adjust("seed-p", AccountId::PointsIssuance, vp("v1"), 100)), t0())
        .expect("seeds points");
    l.execute(&LedgerCommand::transfer(adjust("seed-m", AccountId::MinutesIssuance, vm("v1"), 60)), t0())
        .expect("seeds minutes");
    if stock > 0 {
        l.execute(
            &LedgerCommand::transfer(spec(
                "seed-s",
                receipt("s1", "rice"),
                shelf("s1", "rice"),
                stock,
                TransferKind::Restock {},
            )),
            t0(),
        )
        .expect("seeds stock");
    }
    l.check().expect("invariants");
    l
}

/// Runs a command expecting a refusal; checks that nothing changed and returns the error.
fn refused(l: &mut Ledger, cmd: &LedgerCommand, now: DateTime<Utc>) -> LedgerError {
    let before = l.digest();
    let err = l.execute(cmd, now).expect_err("refused");
    assert_eq!(l.digest(), before, "a refused command changed the ledger");
    err
}

fn one(l: &mut Ledger, op: LedgerOp, now: DateTime<Utc>) -> Result<Vec<LedgerEvent>, LedgerError> {
    l.execute(&LedgerCommand::new(vec![op]), now)
}

fn redemption(id: &str, volunteer: &str, points: u64, quantity: u64, timeout_s: Option<u32>) -> Redemption {
    Redemption {
        id: tid(id),
        volunteer: VolunteerId::new(volunteer).expect("id"),
        station: unit("s1"),
        item: item("rice"),
        points,
        quantity,
        timeout_s,
    }
}

#[test]
fn account_ids_round_trip_as_paths() {
    let all = [
        vp("v1"),
        vm("v1"),
        AccountId::TeamPoints(TeamId::new("t1").expect("id")),
        shelf("s1", "rice"),
        AccountId::PointsIssuance,
        AccountId::MinutesIssuance,
        till("s1"),
        AccountId::MinutesSpent,
        receipt("s1", "rice"),
        consumed("s1", "rice"),
    ];
    let texts = [
        "volunteer/v1/points",
        "volunteer/v1/minutes",
        "team/t1/points",
        "shelf/s1/rice",
        "issuance/points",
        "issuance/minutes",
        "till/s1",
        "spent/minutes",
        "receipt/s1/rice",
        "consumed/s1/rice",
    ];
    let system = [false, false, false, false, true, true, true, true, true, true];
    for ((a, text), sys) in all.iter().zip(texts).zip(system) {
        assert_eq!(a.to_string(), text);
        assert_eq!(text.parse::<AccountId>().as_ref(), Ok(a));
        assert_eq!(serde_json::to_string(a).expect("serialises"), format!("\"{text}\""));
        assert_eq!(a.is_system(), sys, "{a}");
    }
    assert_eq!(vp("v").ledger(), LedgerId::Points);
    assert_eq!(vm("v").ledger(), LedgerId::Minutes);
    assert_eq!(shelf("s", "oil").ledger().to_string(), "stock/oil");
    assert_eq!("stock/oil".parse::<LedgerId>(), Ok(LedgerId::Stock(item("oil"))));
    assert_eq!(till("s9").station(), Some(&unit("s9")));
    assert_eq!(vp("v").station(), None);
    for bad in ["", "volunteer/v1", "volunteer/v1/hours", "shelf/s1", "issuance/stock", "till/s1/x", "x/y/z"] {
        assert!(matches!(bad.parse::<AccountId>(), Err(AccountIdError::UnknownForm(_))), "{bad:?}");
    }
    assert!(matches!("shelf/s 1/rice".parse::<AccountId>(), Err(AccountIdError::BadId { .. })));
    assert!(serde_json::from_str::<AccountId>("\"volunteer//points\"").is_err());
}

#[test]
fn transfer_ids_are_validated_and_service_credit_ids_reserved() {
    assert_eq!(TransferId::new(""), Err(TransferIdError::Empty));
    assert_eq!(TransferId::new(&"x".repeat(201)), Err(TransferIdError::TooLong { len: 201 }));
    assert!(TransferId::new(&"x".repeat(200)).is_ok());
    assert_eq!(TransferId::new("a b"), Err(TransferIdError::BadChar { ch: ' ' }));
    assert_eq!(tid("r1").with_suffix("points"), Ok(tid("r1/points")));
    let q = RequestId::new("q-1").expect("id");
    assert_eq!(TransferId::service_credit(&q, &vp("v1")), Some(tid("sc/q-1/vp/v1")));
    assert_eq!(TransferId::service_credit(&q, &vm("v1")), Some(tid("sc/q-1/vm/v1")));
    assert_eq!(
        TransferId::service_credit(&q, &AccountId::TeamPoints(TeamId::new("t").expect("id"))),
        Some(tid("sc/q-1/tp/t"))
    );
    assert_eq!(TransferId::service_credit(&q, &till("s1")), None);
    // The longest ids still make a valid service-credit id.
    let long = "x".repeat(64);
    let id = TransferId::service_credit(&RequestId::new(&long).expect("id"), &vp(&long)).expect("reachable");
    assert_eq!(TransferId::new(id.as_str()), Ok(id));
    assert!(ItemId::new("rice/5kg").is_err());
}

#[test]
fn a_posted_transfer_moves_both_sides_and_balances() {
    let mut l = setup(0);
    let events = l.execute(&LedgerCommand::transfer(adjust("a1", vp("v1"), vp("v2"), 30)), t0()).expect("transfers");
    assert_eq!(events.len(), 1);
    assert_eq!(
        l.balance(&vp("v1")),
        Balance { debits_pending: 0, debits_posted: 30, credits_pending: 0, credits_posted: 100 }
    );
    assert_eq!(l.balance(&vp("v2")).posted(), 30);
    assert_eq!(l.balance(&AccountId::PointsIssuance).posted(), -100);
    assert_eq!(l.balance(&vp("nobody")), Balance::default());
    let rec = l.transfer(&tid("a1")).expect("recorded");
    assert_eq!(rec.state, TransferState::Posted);
    assert_eq!(rec.transfer.ledger(), LedgerId::Points);
    assert!(matches!(l.outcome(&tid("a1")), Some(Outcome::Transfer(_))));
    l.check().expect("invariants");
}

#[test]
fn accounts_are_opened_explicitly_and_closed_for_good() {
    let mut l = setup(0);
    let stranger = vp("v9");
    let err = refused(&mut l, &LedgerCommand::transfer(adjust("x", vp("v1"), stranger.clone(), 1)), t0());
    assert_eq!(err, LedgerError::UnknownAccount { account: stranger.clone() });
    // Opening is idempotent.
    assert_eq!(l.execute(&LedgerCommand::open([stranger.clone()]), t0()).expect("opens").len(), 1);
    assert_eq!(l.execute(&LedgerCommand::open([stranger.clone()]), t0()).expect("no-op"), vec![]);
    assert_eq!(l.account(&stranger).map(|a| (a.system, a.closed)), Some((false, false)));
    assert_eq!(l.account(&till("s1")).map(|a| a.system), Some(true));
    // Closing: a reason, no pending, nothing held.
    let close = |reason: &str| LedgerOp::Close { account: vp("v1"), reason: reason.into() };
    let subject = Subject::Account(vp("v1"));
    assert_eq!(one(&mut l, close(" "), t0()), Err(LedgerError::ReasonMissing { subject: subject.clone() }));
    assert_eq!(
        one(&mut l, close(&"r".repeat(501)), t0()),
        Err(LedgerError::TextTooLong { subject: subject.clone(), len: 501 })
    );
    assert_eq!(one(&mut l, close("left"), t0()), Err(LedgerError::CloseWithBalance { account: vp("v1"), held: 100 }));
    let mut pending = adjust("hold", vp("v1"), vp("v2"), 100);
    pending.timeout_s = Some(60);
    l.execute(&LedgerCommand::transfer(pending), t0()).expect("reserves");
    assert_eq!(one(&mut l, close("left"), t0()), Err(LedgerError::CloseWithPending { account: vp("v1") }));
    one(&mut l, LedgerOp::Post { id: tid("hold-post"), pending: tid("hold") }, t0()).expect("posts");
    assert_eq!(one(&mut l, close("left"), t0()).expect("closes").len(), 1);
    assert_eq!(one(&mut l, close("left"), t0()).expect("no-op"), vec![]);
    assert_eq!(
        one(&mut l, LedgerOp::Close { account: vp("v404"), reason: "x".into() }, t0()),
        Err(LedgerError::UnknownAccount { account: vp("v404") })
    );
    assert_eq!(
        refused(&mut l, &LedgerCommand::open([vp("v1")]), t0()),
        LedgerError::AccountClosed { account: vp("v1") }
    );
    assert_eq!(
        refused(&mut l, &LedgerCommand::transfer(adjust("late", AccountId::PointsIssuance, vp("v1"), 1)), t0()),
        LedgerError::AccountClosed { account: vp("v1") }
    );
    // A system account may close holding something.
    assert!(one(&mut l, LedgerOp::Close { account: AccountId::PointsIssuance, reason: "end".into() }, t0()).is_ok());
    l.check().expect("invariants");
}

#[test]
fn malformed_transfers_are_refused_with_their_reason() {
    let mut l = setup(5);
    let x = tid("x");
    let cases: Vec<(TransferSpec, LedgerError)> = vec![
        (adjust("x", vp("v1"), vp("v2"), 0), LedgerError::AmountZero { transfer: x.clone() }),
        (
            adjust("x", vp("v1"), vp("v2"), MAX_AMOUNT + 1),
            LedgerError::AmountTooLarge { transfer: x.clone(), amount: MAX_AMOUNT + 1 },
        ),
        (
            TransferSpec { timeout_s: Some(0), ..adjust("x", vp("v1"), vp("v2"), 1) },
            LedgerError::BadTimeout { transfer: x.clone(), timeout_s: 0 },
        ),
        (
            TransferSpec { timeout_s: Some(MAX_TIMEOUT_S + 1), ..adjust("x", vp("v1"), vp("v2"), 1) },
            LedgerError::BadTimeout { transfer: x.clone(), timeout_s: MAX_TIMEOUT_S + 1 },
        ),
        (adjust("x", vp("v1"), vp("v1"), 1), LedgerError::SameAccount { transfer: x.clone(), account: vp("v1") }),
        (
            adjust("x", vp("v1"), vm("v2"), 1),
            LedgerError::LedgerMismatch { transfer: x.clone(), debit: LedgerId::Points, credit: LedgerId::Minutes },
        ),
        (
            TransferSpec {
                kind: TransferKind::Adjustment { reason: "  ".into() },
                ..adjust("x", vp("v1"), vp("v2"), 1)
            },
            LedgerError::ReasonMissing { subject: Subject::Transfer(x.clone()) },
        ),
        (
            TransferSpec {
                kind: TransferKind::Adjustment { reason: "é".repeat(251) },
                ..adjust("x", vp("v1"), vp("v2"), 1)
            },
            LedgerError::TextTooLong { subject: Subject::Transfer(x.clone()), len: 502 },
        ),
        (
            spec("x", vp("v2"), vp("v1"), 1, TransferKind::Reversal { original: tid("seed-p"), reason: "r".into() }),
            LedgerError::KindNotAllowed { transfer: x.clone(), kind: TransferKindName::Reversal },
        ),
        (
            adjust("sc/q1/vp/v1", AccountId::PointsIssuance, vp("v1"), 1),
            LedgerError::ReservedId { id: tid("sc/q1/vp/v1") },
        ),
        (
            adjust("x", vp("v1"), vp("v2"), 101),
            LedgerError::InsufficientBalance { transfer: x.clone(), account: vp("v1"), available: 100, asked: 101 },
        ),
        (
            adjust("x", shelf("s1", "rice"), consumed("s1", "rice"), 6),
            LedgerError::InsufficientBalance {
                transfer: x.clone(),
                account: shelf("s1", "rice"),
                available: 5,
                asked: 6,
            },
        ),
    ];
    for (s, want) in cases {
        assert_eq!(refused(&mut l, &LedgerCommand::transfer(s.clone()), t0()), want, "{s:?}");
    }
    // The codes are stable.
    assert_eq!(LedgerError::AmountZero { transfer: x.clone() }.code(), "amount_zero");
    assert_eq!(
        LedgerError::InsufficientBalance { transfer: x.clone(), account: vp("v1"), available: 0, asked: 1 }.to_string(),
        "transfer x: account volunteer/v1/points has 0 available, 1 asked"
    );
}

#[test]
fn each_kind_touches_only_its_accounts() {
    let mut l = setup(5);
    let team = AccountId::TeamPoints(TeamId::new("t1").expect("id"));
    l.execute(&LedgerCommand::open([till("s2"), shelf("s2", "rice"), team.clone(), consumed("s2", "rice")]), t0())
        .expect("opens");
    let q = RequestId::new("q1").expect("id");
    let credit = TransferKind::ServiceCredit { request: q.clone() };
    let not_allowed = |id: &str, kind: TransferKindName, side: Side, account: AccountId| {
        LedgerError::AccountNotAllowed { transfer: tid(id), kind, side, account }
    };
    let cases = vec![
        (
            spec("sc/q1/vp/v1", till("s1"), vp("v1"), 1, credit.clone()),
            not_allowed("sc/q1/vp/v1", TransferKindName::ServiceCredit, Side::Debit, till("s1")),
        ),
        (
            spec("sc/q1/vp/v1", AccountId::PointsIssuance, till("s1"), 1, credit.clone()),
            not_allowed("sc/q1/vp/v1", TransferKindName::ServiceCredit, Side::Credit, till("s1")),
        ),
        (
            spec("sc/q1/vp/v2", AccountId::PointsIssuance, vp("v1"), 1, credit.clone()),
            LedgerError::ServiceCreditId { transfer: tid("sc/q1/vp/v2"), expected: tid("sc/q1/vp/v1") },
        ),
        (
            spec("w", vp("v1"), till("s1"), 1, TransferKind::Withdrawal { request: q.clone() }),
            not_allowed("w", TransferKindName::Withdrawal, Side::Debit, vp("v1")),
        ),
        (
            spec("w", vm("v1"), AccountId::MinutesIssuance, 1, TransferKind::Withdrawal { request: q.clone() }),
            not_allowed("w", TransferKindName::Withdrawal, Side::Credit, AccountId::MinutesIssuance),
        ),
        (
            spec("r", receipt("s1", "rice"), shelf("s2", "rice"), 1, TransferKind::Restock {}),
            not_allowed("r", TransferKindName::Restock, Side::Credit, shelf("s2", "rice")),
        ),
        (
            spec("r", shelf("s1", "rice"), shelf("s2", "rice"), 1, TransferKind::Restock {}),
            not_allowed("r", TransferKindName::Restock, Side::Debit, shelf("s1", "rice")),
        ),
        (
            spec("m", shelf("s1", "rice"), consumed("s1", "rice"), 1, TransferKind::StationTransfer {}),
            not_allowed("m", TransferKindName::StationTransfer, Side::Credit, consumed("s1", "rice")),
        ),
        (
            spec("m", vp("v1"), vp("v2"), 1, TransferKind::StationTransfer {}),
            not_allowed("m", TransferKindName::StationTransfer, Side::Debit, vp("v1")),
        ),
        (
            spec("m", till("s1"), team.clone(), 1, TransferKind::StationTransfer {}),
            not_allowed("m", TransferKindName::StationTransfer, Side::Credit, team.clone()),
        ),
        (
            spec("g", shelf("s1", "rice"), consumed("s2", "rice"), 1, TransferKind::Redemption { partner: tid("p") }),
            not_allowed("g", TransferKindName::Redemption, Side::Credit, consumed("s2", "rice")),
        ),
        (
            spec("g", vp("v1"), vp("v2"), 1, TransferKind::Redemption { partner: tid("p") }),
            not_allowed("g", TransferKindName::Redemption, Side::Credit, vp("v2")),
        ),
        (
            spec("g", AccountId::PointsIssuance, till("s1"), 1, TransferKind::Redemption { partner: tid("p") }),
            not_allowed("g", TransferKindName::Redemption, Side::Debit, AccountId::PointsIssuance),
        ),
    ];
    for (s, want) in cases {
        assert_eq!(refused(&mut l, &LedgerCommand::transfer(s.clone()), t0()), want, "{s:?}");
    }
    // What each kind is for.
    let ok = [
        spec("sc/q1/vp/v2", AccountId::PointsIssuance, vp("v2"), 3, credit.clone()),
        spec("sc/q1/tp/t1", AccountId::PointsIssuance, team.clone(), 1, credit.clone()),
        spec("w", vm("v1"), AccountId::MinutesSpent, 45, TransferKind::Withdrawal { request: q.clone() }),
        spec("r", receipt("s1", "rice"), shelf("s1", "rice"), 2, TransferKind::Restock {}),
        spec("m", shelf("s1", "rice"), shelf("s2", "rice"), 4, TransferKind::StationTransfer {}),
        spec("m2", till("s1"), till("s2"), 4, TransferKind::StationTransfer {}),
    ];
    for s in ok {
        l.execute(&LedgerCommand::transfer(s.clone()), t0()).unwrap_or_else(|e| panic!("{s:?}: {e}"));
    }
    assert_eq!(l.balance(&vm("v1")).available(), 15);
    assert_eq!(l.balance(&shelf("s1", "rice")).available(), 3);
    assert_eq!(l.balance(&shelf("s2", "rice")).available(), 4);
    assert_eq!(l.balance(&till("s2")).posted(), 4);
    // A volunteer cannot withdraw more minutes than banked.
    let over = spec("w2", vm("v1"), AccountId::MinutesSpent, 16, TransferKind::Withdrawal { request: q });
    assert_eq!(
        refused(&mut l, &LedgerCommand::transfer(over), t0()),
        LedgerError::InsufficientBalance { transfer: tid("w2"), account: vm("v1"), available: 15, asked: 16 }
    );
    l.check().expect("invariants");
}

#[test]
fn a_retry_is_a_no_op_and_a_changed_retry_names_the_field() {
    let mut l = setup(5);
    let mut base = adjust("a1", vp("v1"), vp("v2"), 10);
    base.timeout_s = Some(600);
    l.execute(&LedgerCommand::transfer(base.clone()), t0()).expect("reserves");
    let digest = l.digest();
    // Same content, later: nothing new, same record.
    let later = t0() + Duration::seconds(5);
    assert_eq!(l.execute(&LedgerCommand::transfer(base.clone()), later).expect("retry"), vec![]);
    assert_eq!(l.digest(), digest);
    assert_eq!(l.transfer(&tid("a1")).map(|r| r.transfer.at), Some(t0()));
    let changed = |f: &dyn Fn(&mut TransferSpec)| {
        let mut s = base.clone();
        f(&mut s);
        LedgerCommand::transfer(s)
    };
    let field = |e| match e {
        LedgerError::ExistsWithDifferent { id, field } if id == tid("a1") => field,
        other => panic!("{other:?}"),
    };
    type Change<'a> = &'a dyn Fn(&mut TransferSpec);
    let cases: [(Change<'_>, TransferField); 6] = [
        (&|s| s.debit = vp("v2"), TransferField::Debit),
        (&|s| s.credit = till("s1"), TransferField::Credit),
        (&|s| s.amount = 11, TransferField::Amount),
        (&|s| s.amount = 0, TransferField::Amount),
        (&|s| s.kind = TransferKind::Adjustment { reason: "other".into() }, TransferField::Kind),
        (&|s| s.timeout_s = None, TransferField::Timeout),
    ];
    for (f, want) in cases {
        assert_eq!(field(refused(&mut l, &changed(f), later)), want);
    }
    // A post id reused as a transfer, a transfer id reused as a post, a void or a reversal.
    one(&mut l, LedgerOp::Post { id: tid("p1"), pending: tid("a1") }, later).expect("posts");
    assert_eq!(one(&mut l, LedgerOp::Post { id: tid("p1"), pending: tid("a1") }, later), Ok(vec![]));
    let op = |l: &mut Ledger, op| field2(refused(l, &LedgerCommand::new(vec![op]), later)).1;
    assert_eq!(
        op(&mut l, LedgerOp::Transfer { transfer: adjust("p1", vp("v1"), vp("v2"), 1) }),
        TransferField::Operation
    );
    assert_eq!(op(&mut l, LedgerOp::Void { id: tid("p1"), pending: tid("a1") }), TransferField::Operation);
    assert_eq!(
        op(&mut l, LedgerOp::Reverse { id: tid("p1"), original: tid("a1"), reason: "x".into() }),
        TransferField::Operation
    );
    assert_eq!(op(&mut l, LedgerOp::Post { id: tid("a1"), pending: tid("a1") }), TransferField::Operation);
    assert_eq!(op(&mut l, LedgerOp::Post { id: tid("p1"), pending: tid("seed-p") }), TransferField::Pending);
    // Reversals: of a posted transfer (a transfer) and of a pending one (a void with a reason).
    one(&mut l, LedgerOp::Reverse { id: tid("rv1"), original: tid("a1"), reason: "wrong".into() }, later)
        .expect("reverses");
    assert_eq!(
        one(&mut l, LedgerOp::Reverse { id: tid("rv1"), original: tid("a1"), reason: "wrong".into() }, later),
        Ok(vec![])
    );
    assert_eq!(
        op(&mut l, LedgerOp::Reverse { id: tid("rv1"), original: tid("seed-p"), reason: "wrong".into() }),
        TransferField::Original
    );
    assert_eq!(
        op(&mut l, LedgerOp::Reverse { id: tid("rv1"), original: tid("a1"), reason: "other".into() }),
        TransferField::Reason
    );
    assert_eq!(
        op(&mut l, LedgerOp::Transfer { transfer: adjust("rv1", vp("v2"), vp("v1"), 10) }),
        TransferField::Operation
    );
    let mut hold = adjust("h2", vp("v1"), vp("v2"), 5);
    hold.timeout_s = Some(60);
    l.execute(&LedgerCommand::transfer(hold.clone()), later).expect("reserves");
    let mut h3 = hold.clone();
    h3.id = tid("h3");
    l.execute(&LedgerCommand::transfer(h3), later).expect("reserves");
    one(&mut l, LedgerOp::Reverse { id: tid("rv2"), original: tid("h2"), reason: "no".into() }, later).expect("voids");
    assert!(matches!(l.outcome(&tid("rv2")), Some(Outcome::Voided(r)) if r.transfer.id == tid("h2")));
    assert_eq!(
        one(&mut l, LedgerOp::Reverse { id: tid("rv2"), original: tid("h2"), reason: "no".into() }, later),
        Ok(vec![])
    );
    assert_eq!(op(&mut l, LedgerOp::Void { id: tid("rv2"), pending: tid("h2") }), TransferField::Operation);
    assert_eq!(
        op(&mut l, LedgerOp::Reverse { id: tid("rv2"), original: tid("h2"), reason: "yes".into() }),
        TransferField::Reason
    );
    assert_eq!(
        op(&mut l, LedgerOp::Reverse { id: tid("rv2"), original: tid("a1"), reason: "no".into() }),
        TransferField::Original
    );
    one(&mut l, LedgerOp::Void { id: tid("v3"), pending: tid("h3") }, later).expect("voids");
    assert_eq!(one(&mut l, LedgerOp::Void { id: tid("v3"), pending: tid("h3") }, later), Ok(vec![]));
    assert_eq!(op(&mut l, LedgerOp::Void { id: tid("v3"), pending: tid("h2") }), TransferField::Pending);
    assert_eq!(
        op(&mut l, LedgerOp::Reverse { id: tid("v3"), original: tid("h3"), reason: "no".into() }),
        TransferField::Operation
    );
    assert_eq!(op(&mut l, LedgerOp::Post { id: tid("v3"), pending: tid("h3") }), TransferField::Operation);
    // Same id twice in one command: the second is the first's retry.
    let twice = LedgerCommand::transfers([adjust("d1", vp("v1"), vp("v2"), 1), adjust("d1", vp("v1"), vp("v2"), 1)]);
    assert_eq!(l.execute(&twice, later).expect("one transfer").len(), 1);
    let clash = LedgerCommand::transfers([adjust("d2", vp("v1"), vp("v2"), 1), adjust("d2", vp("v1"), vp("v2"), 2)]);
    assert_eq!(field2(refused(&mut l, &clash, later)), (tid("d2"), TransferField::Amount));
    l.check().expect("invariants");
}

fn field2(e: LedgerError) -> (TransferId, TransferField) {
    match e {
        LedgerError::ExistsWithDifferent { id, field } => (id, field),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_pending_transfer_resolves_once_and_not_after_its_timeout() {
    let mut l = setup(3);
    let hold = |id: &str, amount, timeout_s| TransferSpec {
        timeout_s: Some(timeout_s),
        ..adjust(id, vp("v1"), vp("v2"), amount)
    };
    l.execute(&LedgerCommand::transfers([hold("h1", 40, 60), hold("h2", 40, 60)]), t0()).expect("reserves");
    assert_eq!(
        l.balance(&vp("v1")),
        Balance { debits_pending: 80, debits_posted: 0, credits_pending: 0, credits_posted: 100 }
    );
    assert_eq!(l.balance(&vp("v2")).credits_pending, 80);
    assert_eq!(l.balance(&vp("v2")).available(), 0, "pending credits are not spendable");
    // Pending debits count: 20 left.
    assert_eq!(
        refused(&mut l, &LedgerCommand::transfer(adjust("x", vp("v1"), vp("v2"), 21)), t0()),
        LedgerError::InsufficientBalance { transfer: tid("x"), account: vp("v1"), available: 20, asked: 21 }
    );
    let at = |s| t0() + Duration::seconds(s);
    one(&mut l, LedgerOp::Post { id: tid("p1"), pending: tid("h1") }, at(59)).expect("posts before the timeout");
    assert_eq!(
        one(&mut l, LedgerOp::Post { id: tid("p1b"), pending: tid("h1") }, at(59)),
        Err(LedgerError::PendingAlreadyPosted { pending: tid("h1"), by: tid("p1") })
    );
    assert_eq!(
        one(&mut l, LedgerOp::Void { id: tid("v1"), pending: tid("h1") }, at(59)),
        Err(LedgerError::PendingAlreadyPosted { pending: tid("h1"), by: tid("p1") })
    );
    // At the timeout exactly it is expired, even before the tick.
    assert_eq!(
        one(&mut l, LedgerOp::Post { id: tid("p2"), pending: tid("h2") }, at(60)),
        Err(LedgerError::PendingExpired { pending: tid("h2"), expires_at: at(60) })
    );
    assert_eq!(
        one(&mut l, LedgerOp::Void { id: tid("v2"), pending: tid("h2") }, at(61)),
        Err(LedgerError::PendingExpired { pending: tid("h2"), expires_at: at(60) })
    );
    assert_eq!(l.next_expiry(), Some(at(60)));
    assert_eq!(l.tick(at(59)), vec![]);
    let expired = l.execute_tick(at(60));
    assert_eq!(expired, vec![LedgerEvent::Expired { pending: tid("h2"), at: at(60) }]);
    assert_eq!(l.transfer(&tid("h2")).map(|r| &r.state), Some(&TransferState::PendingExpired));
    assert_eq!(l.next_expiry(), None);
    assert_eq!(l.execute_tick(at(999)), vec![]);
    assert_eq!(
        one(&mut l, LedgerOp::Post { id: tid("p2"), pending: tid("h2") }, at(61)),
        Err(LedgerError::PendingExpired { pending: tid("h2"), expires_at: at(60) })
    );
    assert_eq!(
        l.balance(&vp("v1")),
        Balance { debits_pending: 0, debits_posted: 40, credits_pending: 0, credits_posted: 100 }
    );
    // Post and void of what is not a pending transfer.
    assert_eq!(
        one(&mut l, LedgerOp::Post { id: tid("p3"), pending: tid("seed-p") }, at(61)),
        Err(LedgerError::NotPending { pending: tid("seed-p") })
    );
    assert_eq!(
        one(&mut l, LedgerOp::Void { id: tid("p3"), pending: tid("nothing") }, at(61)),
        Err(LedgerError::PendingNotFound { pending: tid("nothing") })
    );
    assert_eq!(
        one(&mut l, LedgerOp::Void { id: tid("p3"), pending: tid("p1") }, at(61)),
        Err(LedgerError::PendingNotFound { pending: tid("p1") }),
        "a post's id names no transfer"
    );
    assert_eq!(
        one(&mut l, LedgerOp::Post { id: tid("sc/x"), pending: tid("h1") }, at(61)),
        Err(LedgerError::ReservedId { id: tid("sc/x") })
    );
    // Void releases; a voided transfer stays voided.
    l.execute(&LedgerCommand::transfer(hold("h4", 10, 60)), at(100)).expect("reserves");
    one(&mut l, LedgerOp::Void { id: tid("v4"), pending: tid("h4") }, at(100)).expect("voids");
    assert_eq!(
        one(&mut l, LedgerOp::Post { id: tid("p4"), pending: tid("h4") }, at(100)),
        Err(LedgerError::PendingAlreadyVoided { pending: tid("h4"), by: tid("v4") })
    );
    assert_eq!(l.balance(&vp("v1")).available(), 60);
    assert_eq!(l.pending(), 0);
    // Made and posted in one command.
    let both = LedgerCommand::new(vec![
        LedgerOp::Transfer { transfer: hold("h5", 10, 60) },
        LedgerOp::Post { id: tid("p5"), pending: tid("h5") },
    ]);
    assert_eq!(l.execute(&both, at(200)).expect("both").len(), 2);
    assert_eq!(l.balance(&vp("v1")).available(), 50);
    l.check().expect("invariants");
}

#[test]
fn expiries_come_in_timeout_order() {
    let mut l = setup(0);
    let hold = |id: &str, timeout_s| TransferSpec { timeout_s: Some(timeout_s), ..adjust(id, vp("v1"), vp("v2"), 1) };
    l.execute(&LedgerCommand::transfers([hold("c", 300), hold("a", 100), hold("b", 200), hold("a2", 100)]), t0())
        .expect("reserves");
    let order: Vec<TransferId> = l
        .execute_tick(t0() + Duration::seconds(250))
        .into_iter()
        .map(|e| match e {
            LedgerEvent::Expired { pending, .. } => pending,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(order, vec![tid("a"), tid("a2"), tid("b")]);
    assert_eq!(l.pending(), 1);
    assert_eq!(l.balance(&vp("v1")).debits_pending, 1);
    l.check().expect("invariants");
}

#[test]
fn two_reservations_of_the_last_item_one_wins() {
    let mut l = setup(1);
    let a = redemption("ra", "v1", 10, 1, Some(900));
    let b = redemption("rb", "v1", 10, 1, Some(900));
    l.execute(&a.command().expect("ids"), t0()).expect("the first reserves the bag");
    let err = refused(&mut l, &b.command().expect("ids"), t0());
    assert_eq!(
        err,
        LedgerError::InsufficientBalance {
            transfer: tid("rb/goods"),
            account: shelf("s1", "rice"),
            available: 0,
            asked: 1
        }
    );
    // Neither leg of the loser moved: its points are not reserved either.
    assert_eq!(l.balance(&vp("v1")).debits_pending, 10);
    // Not picked up: the bag goes back on the shelf and the other can have it.
    l.execute_tick(t0() + Duration::seconds(900));
    assert_eq!(l.balance(&shelf("s1", "rice")).available(), 1);
    assert_eq!(l.balance(&vp("v1")).available(), 100);
    l.execute(&b.command().expect("ids"), t0() + Duration::seconds(901)).expect("now it reserves");
    l.execute(&b.post(&tid("pick-b")).expect("ids"), t0() + Duration::seconds(1000)).expect("picked up");
    assert_eq!(l.balance(&shelf("s1", "rice")).posted(), 0);
    assert_eq!(l.balance(&consumed("s1", "rice")).posted(), 1);
    assert_eq!(l.balance(&till("s1")).posted(), 10);
    assert_eq!(l.balance(&vp("v1")).posted(), 90);
    l.check().expect("invariants");
}

#[test]
fn the_legs_of_a_redemption_go_together() {
    let mut l = setup(2);
    let r = redemption("r1", "v2", 10, 1, Some(600));
    // v2 has no points: the goods leg is not taken either.
    assert_eq!(
        refused(&mut l, &r.command().expect("ids"), t0()),
        LedgerError::InsufficientBalance { transfer: tid("r1/points"), account: vp("v2"), available: 0, asked: 10 }
    );
    let r = redemption("r1", "v1", 10, 1, Some(600));
    let [points, goods] = r.transfers().expect("ids");
    // One leg alone, or legs that do not name each other, are refused.
    assert_eq!(
        refused(&mut l, &LedgerCommand::transfer(points.clone()), t0()),
        LedgerError::RedemptionUnpaired { transfer: tid("r1/points"), partner: tid("r1/goods") }
    );
    let mut stray = goods.clone();
    stray.id = tid("r1/other");
    assert_eq!(
        refused(&mut l, &LedgerCommand::transfers([points.clone(), stray]), t0()),
        LedgerError::RedemptionUnpaired { transfer: tid("r1/points"), partner: tid("r1/goods") }
    );
    let mut late = goods.clone();
    late.timeout_s = Some(601);
    assert_eq!(
        refused(&mut l, &LedgerCommand::transfers([points.clone(), late]), t0()),
        LedgerError::RedemptionUnpaired { transfer: tid("r1/points"), partner: tid("r1/goods") }
    );
    let mut two_points = points.clone();
    two_points.id = tid("r1/goods");
    two_points.kind = TransferKind::Redemption { partner: tid("r1/points") };
    assert_eq!(
        refused(&mut l, &LedgerCommand::transfers([points.clone(), two_points]), t0()),
        LedgerError::RedemptionUnpaired { transfer: tid("r1/points"), partner: tid("r1/goods") }
    );
    let mut selfish = points.clone();
    selfish.kind = TransferKind::Redemption { partner: tid("r1/points") };
    assert_eq!(
        refused(&mut l, &LedgerCommand::transfer(selfish), t0()),
        LedgerError::RedemptionUnpaired { transfer: tid("r1/points"), partner: tid("r1/points") }
    );
    l.execute(&r.command().expect("ids"), t0()).expect("reserves");
    assert_eq!(l.execute(&r.command().expect("ids"), t0()).expect("retry"), vec![], "a retry is a no-op");
    // Post one leg alone: refused.
    let post_one = LedgerCommand::new(vec![LedgerOp::Post { id: tid("x"), pending: tid("r1/points") }]);
    assert_eq!(
        refused(&mut l, &post_one, t0()),
        LedgerError::RedemptionUnpaired { transfer: tid("r1/points"), partner: tid("r1/goods") }
    );
    let mixed = LedgerCommand::new(vec![
        LedgerOp::Post { id: tid("x"), pending: tid("r1/points") },
        LedgerOp::Void { id: tid("y"), pending: tid("r1/goods") },
    ]);
    assert_eq!(
        refused(&mut l, &mixed, t0()),
        LedgerError::RedemptionUnpaired { transfer: tid("r1/points"), partner: tid("r1/goods") }
    );
    // Void both: everything back.
    l.execute(&r.void(&tid("gone")).expect("ids"), t0()).expect("voids");
    assert_eq!(l.balance(&shelf("s1", "rice")).available(), 2);
    assert_eq!(l.balance(&vp("v1")).available(), 100);
    // A posted redemption, then returned: reversed together.
    let r2 = redemption("r2", "v1", 30, 2, None);
    l.execute(&r2.command().expect("ids"), t0()).expect("redeems at once");
    assert_eq!(l.balance(&shelf("s1", "rice")).available(), 0);
    let reverse_one = LedgerCommand::new(vec![LedgerOp::Reverse {
        id: tid("back"),
        original: tid("r2/goods"),
        reason: "returned".into(),
    }]);
    assert_eq!(
        refused(&mut l, &reverse_one, t0()),
        LedgerError::RedemptionUnpaired { transfer: tid("r2/goods"), partner: tid("r2/points") }
    );
    l.execute(&r2.reverse(&tid("back"), "returned").expect("ids"), t0()).expect("reverses");
    assert_eq!(l.balance(&shelf("s1", "rice")).available(), 2);
    assert_eq!(l.balance(&vp("v1")).available(), 100);
    assert_eq!(l.transfer(&tid("r2/points")).and_then(|r| r.reversed_by.clone()), Some(tid("back/points")));
    l.check().expect("invariants");
}

#[test]
fn a_transfer_is_reversed_once_and_a_reversal_never() {
    let mut l = setup(0);
    l.execute(&LedgerCommand::transfer(adjust("gift", vp("v1"), vp("v2"), 30)), t0()).expect("transfers");
    let rev = |id: &str, original: &str, reason: &str| {
        LedgerCommand::new(vec![LedgerOp::Reverse { id: tid(id), original: tid(original), reason: reason.into() }])
    };
    assert_eq!(
        refused(&mut l, &rev("r0", "gift", ""), t0()),
        LedgerError::ReasonMissing { subject: Subject::Transfer(tid("r0")) }
    );
    assert_eq!(
        refused(&mut l, &rev("r0", "nothing", "x"), t0()),
        LedgerError::OriginalNotFound { original: tid("nothing") }
    );
    assert_eq!(refused(&mut l, &rev("sc/r0", "gift", "x"), t0()), LedgerError::ReservedId { id: tid("sc/r0") });
    let events = l.execute(&rev("r1", "gift", "sent to the wrong volunteer"), t0()).expect("reverses");
    let LedgerEvent::Transferred { transfer } = &events[0] else { panic!("{events:?}") };
    assert_eq!((&transfer.debit, &transfer.credit, transfer.amount), (&vp("v2"), &vp("v1"), 30));
    assert_eq!(l.balance(&vp("v2")).posted(), 0);
    assert_eq!(l.balance(&vp("v1")).posted(), 100);
    assert_eq!(l.transfer(&tid("gift")).map(|r| r.state.clone()), Some(TransferState::Posted), "never edited");
    assert_eq!(
        refused(&mut l, &rev("r2", "gift", "again"), t0()),
        LedgerError::AlreadyReversed { original: tid("gift"), by: tid("r1") }
    );
    assert_eq!(refused(&mut l, &rev("r2", "r1", "undo"), t0()), LedgerError::ReverseOfReversal { original: tid("r1") });
    // A reversal that would overdraw: v2 spent the points.
    l.execute(&LedgerCommand::transfer(adjust("gift2", vp("v1"), vp("v2"), 30)), t0()).expect("transfers");
    l.execute(&LedgerCommand::transfer(adjust("spent", vp("v2"), vp("v1"), 25)), t0()).expect("transfers");
    assert_eq!(
        refused(&mut l, &rev("r3", "gift2", "wrong"), t0()),
        LedgerError::InsufficientBalance { transfer: tid("r3"), account: vp("v2"), available: 5, asked: 30 }
    );
    // Pending: a void; voided or expired: nothing to reverse.
    let hold = |id: &str| TransferSpec { timeout_s: Some(60), ..adjust(id, vp("v1"), vp("v2"), 5) };
    l.execute(&LedgerCommand::transfers([hold("h1"), hold("h2")]), t0()).expect("reserves");
    let ev = l.execute(&rev("r4", "h1", "cancelled"), t0()).expect("voids");
    assert_eq!(
        ev,
        vec![LedgerEvent::Voided { id: tid("r4"), pending: tid("h1"), reason: Some("cancelled".into()), at: t0() }]
    );
    assert_eq!(
        refused(&mut l, &rev("r5", "h1", "again"), t0()),
        LedgerError::PendingAlreadyVoided { pending: tid("h1"), by: tid("r4") }
    );
    l.execute_tick(t0() + Duration::seconds(60));
    let expires_at = t0() + Duration::seconds(60);
    assert_eq!(
        refused(&mut l, &rev("r5", "h2", "late"), t0() + Duration::seconds(61)),
        LedgerError::PendingExpired { pending: tid("h2"), expires_at }
    );
    // A posted pending transfer is reversed like a single-phase one.
    l.execute(&LedgerCommand::transfer(hold("h3")), t0()).expect("reserves");
    one(&mut l, LedgerOp::Post { id: tid("p3"), pending: tid("h3") }, t0()).expect("posts");
    l.execute(&rev("r6", "h3", "mistake"), t0()).expect("reverses");
    assert_eq!(l.transfer(&tid("h3")).and_then(|r| r.reversed_by.clone()), Some(tid("r6")));
    l.check().expect("invariants");
}

#[test]
fn a_command_is_all_or_nothing() {
    let mut l = setup(0);
    let cmd = LedgerCommand::transfers([
        adjust("ok1", vp("v1"), vp("v2"), 60),
        adjust("ok2", vp("v1"), vp("v2"), 30),
        adjust("too-much", vp("v1"), vp("v2"), 20),
    ]);
    assert_eq!(
        refused(&mut l, &cmd, t0()),
        LedgerError::InsufficientBalance { transfer: tid("too-much"), account: vp("v1"), available: 10, asked: 20 }
    );
    assert!(l.transfer(&tid("ok1")).is_none());
    // Accounts opened within a command can be used by it.
    let cmd = LedgerCommand::new(vec![
        LedgerOp::Open { account: vp("v7") },
        LedgerOp::Transfer { transfer: adjust("to7", vp("v1"), vp("v7"), 5) },
    ]);
    assert_eq!(l.execute(&cmd, t0()).expect("opens and transfers").len(), 2);
    assert_eq!(l.execute(&LedgerCommand::default(), t0()), Ok(vec![]));
    let many = LedgerCommand::open((0..=MAX_OPS).map(|i| vp(&format!("v{i}"))));
    assert_eq!(refused(&mut l, &many, t0()), LedgerError::TooManyOps { ops: MAX_OPS + 1 });
    l.check().expect("invariants");
}

fn input(request: &str, minutes: u32, volunteers: &[&str]) -> CreditInput {
    CreditInput {
        request: RequestId::new(request).expect("id"),
        minutes,
        volunteers: volunteers.iter().map(|v| VolunteerId::new(v).expect("id")).collect(),
        team: None,
        urgent: false,
        night: false,
        holiday: false,
    }
}

#[test]
fn the_credit_formula_is_exact() {
    let p = CreditPolicy::default();
    p.validate().expect("the default is valid");
    assert_eq!(p.points_total(&input("q", 60, &["a"])), 10);
    assert_eq!(p.points_total(&input("q", 90, &["a"])), 15);
    // 7.5 rounds up, 7.4999 down.
    assert_eq!(p.points_total(&input("q", 45, &["a"])), 8);
    assert_eq!(CreditPolicy { points_per_hour: 1, ..p }.points_total(&input("q", 29, &["a"])), 0);
    assert_eq!(CreditPolicy { points_per_hour: 1, ..p }.points_total(&input("q", 30, &["a"])), 1);
    let all = CreditInput { urgent: true, night: true, holiday: true, ..input("q", 60, &["a"]) };
    // 10 × 1.5 × 1.2 × 2 = 36.
    assert_eq!(p.points_total(&all), 36);
    assert_eq!(p.points_total(&CreditInput { urgent: true, ..input("q", 60, &["a"]) }), 15);
    assert_eq!(p.points_total(&CreditInput { night: true, ..input("q", 60, &["a"]) }), 12);
    assert_eq!(p.points_total(&CreditInput { holiday: true, ..input("q", 60, &["a"]) }), 20);
    assert_eq!(p.team_points(&all), 7, "2 × 3.6 = 7.2");
    assert_eq!(
        CreditPolicy { points_per_hour: u32::MAX, urgent_pct: u32::MAX, ..p }
            .points_total(&CreditInput { urgent: true, ..input("q", u32::MAX, &["a"]) }),
        u64::MAX,
        "saturates instead of wrapping"
    );
    assert_eq!(
        CreditPolicy { points_per_hour: 10_001, ..p }.validate(),
        Err(CreditPolicyError::RateTooHigh { field: "points_per_hour", value: 10_001 })
    );
    assert_eq!(
        CreditPolicy { team_points_per_hour: 10_001, ..p }.validate(),
        Err(CreditPolicyError::RateTooHigh { field: "team_points_per_hour", value: 10_001 })
    );
    assert_eq!(
        CreditPolicy { night_pct: 0, ..p }.validate(),
        Err(CreditPolicyError::BadMultiplier { field: "night_pct", value: 0 })
    );
    assert_eq!(
        CreditPolicy { holiday_pct: 1001, ..p }.validate(),
        Err(CreditPolicyError::BadMultiplier { field: "holiday_pct", value: 1001 })
    );
    assert!(CreditPolicy { urgent_pct: 1000, points_per_hour: 10_000, ..p }.validate().is_ok());
    assert_eq!(split(10, 3, 0), vec![4, 3, 3]);
    assert_eq!(split(10, 3, 1), vec![3, 4, 3]);
    assert_eq!(split(11, 3, 2), vec![4, 3, 4]);
    assert_eq!(split(11, 3, 5), vec![4, 3, 4]);
    assert_eq!(split(2, 4, 3), vec![1, 0, 0, 1]);
    assert_eq!(split(5, 0, 0), Vec::<u64>::new());
}

#[test]
fn service_credit_banks_minutes_and_splits_points_once_per_cause() {
    let p = CreditPolicy::default();
    let team = TeamId::new("t1").expect("id");
    let inp = CreditInput { team: Some(team.clone()), ..input("q7", 100, &["v2", "v1", "v3", "v1"]) };
    let specs = service_credit(&p, &inp);
    // 100 min × 10/h = 16.67 → 17 points over 3 volunteers; minutes in full to each.
    let amounts: Vec<(String, u64)> = specs.iter().map(|s| (s.id.to_string(), s.amount)).collect();
    let points: u64 =
        specs.iter().filter(|s| matches!(s.credit, AccountId::VolunteerPoints(_))).map(|s| s.amount).sum();
    assert_eq!(points, 17);
    assert_eq!(amounts.len(), 7);
    assert_eq!(amounts[0], ("sc/q7/vm/v1".into(), 100));
    assert_eq!(amounts[2], ("sc/q7/vm/v2".into(), 100));
    assert_eq!(amounts[4], ("sc/q7/vm/v3".into(), 100));
    assert_eq!(amounts[6], ("sc/q7/tp/t1".into(), 3));
    assert!(amounts.iter().all(|(id, _)| id.starts_with("sc/q7/")));
    // The remainder point goes to different volunteers for different requests.
    let without_extra = |request: &str| {
        service_credit(&p, &input(request, 100, &["v1", "v2", "v3"]))
            .into_iter()
            .find(|s| s.amount == 5)
            .map(|s| s.credit)
    };
    let left_out: std::collections::BTreeSet<_> = (0..30).filter_map(|i| without_extra(&format!("q{i}"))).collect();
    assert_eq!(left_out.len(), 3, "the remainder rotates with the request");
    // Zero amounts are left out.
    let tiny = service_credit(
        &CreditPolicy { points_per_hour: 1, team_points_per_hour: 0, ..p },
        &input("q", 30, &["a", "b"]),
    );
    assert_eq!(tiny.iter().filter(|s| s.credit.ledger() == LedgerId::Points).count(), 1);
    assert_eq!(service_credit(&p, &input("q", 0, &["a"])), vec![]);
    assert_eq!(service_credit(&p, &input("q", 60, &[])), vec![]);
    // Applied: once per cause.
    let mut l = setup(0);
    l.execute(&LedgerCommand::open([vp("v3"), vm("v3"), AccountId::TeamPoints(team.clone())]), t0()).expect("opens");
    let cmd = LedgerCommand::transfers(specs.clone());
    assert_eq!(l.execute(&cmd, t0()).expect("credits").len(), 7);
    assert_eq!(l.execute(&cmd, t0()).expect("retry"), vec![], "the same credit twice is a no-op");
    let again = service_credit(&CreditPolicy { points_per_hour: 20, ..p }, &inp);
    let err = refused(&mut l, &LedgerCommand::transfers(again), t0());
    assert!(matches!(err, LedgerError::ExistsWithDifferent { field: TransferField::Amount, .. }), "{err:?}");
    assert_eq!(l.balance(&vm("v3")).posted(), 100);
    assert_eq!(l.balance(&vm("v1")).posted(), 160);
    l.check().expect("invariants");
}

proptest! {
    #[test]
    fn split_sums_to_the_total_and_shares_differ_by_at_most_one(
        total in 0u64..1_000_000,
        n in 1usize..50,
        start in 0usize..100,
    ) {
        let shares = split(total, n, start);
        prop_assert_eq!(shares.len(), n);
        prop_assert_eq!(shares.iter().sum::<u64>(), total);
        let (lo, hi) = (shares.iter().min().copied().unwrap_or(0), shares.iter().max().copied().unwrap_or(0));
        prop_assert!(hi - lo <= 1);
        prop_assert_eq!(lo, total / n as u64);
        // The extra points start at `start` and run on without a gap.
        let rem = (total % n as u64) as usize;
        for k in 0..n {
            prop_assert_eq!(shares[(start + k) % n] == lo + 1, k < rem && hi > lo);
        }
    }

    #[test]
    fn credits_sum_to_the_pool(minutes in 0u32..2000, n in 0usize..12, flags in 0u8..8, rate in 0u32..100) {
        let names: Vec<String> = (0..n).map(|i| format!("v{i}")).collect();
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let (urgent, night, holiday) = (flags & 1 != 0, flags & 2 != 0, flags & 4 != 0);
        let inp = CreditInput { urgent, night, holiday, ..input("q", minutes, &refs) };
        let p = CreditPolicy { points_per_hour: rate, ..CreditPolicy::default() };
        let specs = service_credit(&p, &inp);
        let points: u64 = specs.iter().filter(|s| s.credit.ledger() == LedgerId::Points).map(|s| s.amount).sum();
        let expected = if n == 0 { 0 } else { p.points_total(&inp) };
        prop_assert_eq!(points, expected);
        let minutes_total: u64 =
            specs.iter().filter(|s| s.credit.ledger() == LedgerId::Minutes).map(|s| s.amount).sum();
        prop_assert_eq!(minutes_total, u64::from(minutes) * n as u64);
        prop_assert!(specs.iter().all(|s| s.amount > 0));
    }
}

#[test]
fn events_and_commands_round_trip_through_json() {
    let mut l = setup(3);
    let mut log = Vec::new();
    let r = redemption("r1", "v1", 10, 1, Some(60));
    log.extend(l.execute(&r.command().expect("ids"), t0()).expect("reserves"));
    log.extend(l.execute(&r.post(&tid("p")).expect("ids"), t0()).expect("posts"));
    log.extend(
        l.execute(
            &LedgerCommand::new(vec![LedgerOp::Reverse {
                id: tid("rv"),
                original: tid("seed-m"),
                reason: "typo".into(),
            }]),
            t0(),
        )
        .expect("reverses"),
    );
    let json = serde_json::to_string(&log).expect("serialises");
    let back: Vec<LedgerEvent> = serde_json::from_str(&json).expect("deserialises");
    assert_eq!(back, log);
    assert!(json.contains(r#""type":"transferred""#) && json.contains(r#""debit":"volunteer/v1/points""#), "{json}");
    let cmd = r.reverse(&tid("rr"), "returned").expect("ids");
    let text = serde_json::to_string(&cmd).expect("serialises");
    assert_eq!(serde_json::from_str::<LedgerCommand>(&text).expect("deserialises"), cmd);
    let with = |kind: &str, extra: &str| {
        format!(
            concat!(
                r#"{{"ops":[{{"op":"transfer","transfer":{{"id":"a","debit":"volunteer/v1/points","#,
                r#""credit":"volunteer/v2/points","amount":3,"kind":{}{}}}}}]}}"#
            ),
            kind, extra
        )
    };
    let parsed: LedgerCommand =
        serde_json::from_str(&with(r#"{"type":"adjustment","reason":"fix"}"#, "")).expect("a command");
    assert_eq!(
        parsed,
        LedgerCommand::transfer(TransferSpec {
            kind: TransferKind::Adjustment { reason: "fix".into() },
            ..adjust("a", vp("v1"), vp("v2"), 3)
        })
    );
    // Unknown fields are refused at every level.
    for bad in [
        r#"{"ops":[],"extra":1}"#.to_owned(),
        r#"{"ops":[{"op":"open","account":"till/s1","x":1}]}"#.to_owned(),
        with(r#"{"type":"restock"}"#, r#","memo":"x""#),
        with(r#"{"type":"restock","x":1}"#, ""),
        with(r#"{"type":"station_transfer","x":1}"#, ""),
        r#"{"ops":[{"op":"teleport"}]}"#.to_owned(),
    ] {
        assert!(serde_json::from_str::<LedgerCommand>(&bad).is_err(), "{bad}");
    }
    assert!(serde_json::from_str::<LedgerCommand>(&with(r#"{"type":"restock"}"#, "")).is_ok());
    let ev = r#"{"type":"expired","pending":"a","at":"2026-01-01T00:00:00Z","by":"me"}"#;
    assert!(serde_json::from_str::<LedgerEvent>(ev).is_err());
    // Replay from the round-tripped log (on top of the setup's log) gives the same ledger.
    let mut full = setup_log(3);
    full.extend(back);
    let replayed = Ledger::replay(&full).expect("replays");
    assert_eq!(replayed.digest(), l.digest());
    let recomputed = Ledger::recompute_from(&full);
    assert_eq!(recomputed.len(), l.accounts().len());
    for a in l.accounts() {
        assert_eq!(recomputed.get(&a.id), Some(&a.balance), "{}", a.id);
    }
}

/// The events of [`setup`].
fn setup_log(stock: u64) -> Vec<LedgerEvent> {
    let l = setup(stock);
    let mut log = Vec::new();
    // Rebuild the setup's events by replaying its commands on a fresh ledger, recording them.
    let mut fresh = Ledger::new();
    for a in l.accounts() {
        log.extend(fresh.execute(&LedgerCommand::open([a.id.clone()]), t0()).expect("opens"));
    }
    for r in l.transfers() {
        let t = &r.transfer;
        let s = TransferSpec {
            id: t.id.clone(),
            debit: t.debit.clone(),
            credit: t.credit.clone(),
            amount: t.amount,
            kind: t.kind.clone(),
            timeout_s: t.timeout_s,
        };
        log.extend(fresh.execute(&LedgerCommand::transfer(s), t.at).expect("transfers"));
    }
    assert_eq!(fresh.digest(), l.digest());
    log
}

#[test]
fn apply_refuses_a_log_that_does_not_fit() {
    let mut l = setup(2);
    let before = l.digest();
    let later = t0() + Duration::seconds(1);
    let bad = [
        LedgerEvent::AccountOpened { account: vp("v1"), at: t0() },
        LedgerEvent::Posted { id: tid("p"), pending: tid("nothing"), at: t0() },
        LedgerEvent::Transferred {
            transfer: Transfer::from_spec(&adjust("seed-p", vp("v1"), vp("v2"), 1), t0()).into(),
        },
        LedgerEvent::Transferred { transfer: Transfer::from_spec(&adjust("big", vp("v2"), vp("v1"), 1), t0()).into() },
        LedgerEvent::Transferred {
            transfer: std::sync::Arc::new(Transfer {
                id: tid("rv"),
                debit: vp("v1"),
                credit: AccountId::PointsIssuance,
                amount: 99,
                kind: TransferKind::Reversal { original: tid("seed-p"), reason: "x".into() },
                timeout_s: None,
                at: t0(),
            }),
        },
        LedgerEvent::AccountClosed { account: vp("v9"), reason: "x".into(), at: t0() },
    ];
    let codes: Vec<&str> = bad.iter().map(|e| l.apply(e).expect_err("refused").error.code()).collect();
    assert_eq!(
        codes,
        [
            "account_exists",
            "pending_not_found",
            "already_exists",
            "insufficient_balance",
            "reversal_mismatch",
            "unknown_account"
        ]
    );
    let mut hold = adjust("h", vp("v1"), vp("v2"), 1);
    hold.timeout_s = Some(60);
    let reserve = l.decide(&LedgerCommand::transfer(hold), t0()).expect("decides");
    assert_eq!(l.digest(), before, "refused events and decisions change nothing");
    l.apply(&reserve[0]).expect("applies");
    let early = LedgerEvent::Expired { pending: tid("h"), at: later };
    let err = l.apply(&early).expect_err("too early");
    assert_eq!(
        err.error,
        LedgerError::PendingNotExpired { pending: tid("h"), expires_at: t0() + Duration::seconds(60) }
    );
    assert_eq!(err.index, l.applied());
    assert!(err.to_string().contains("(expired) does not apply"), "{err}");
    let double = LedgerEvent::Expired { pending: tid("seed-p"), at: later };
    assert_eq!(l.apply(&double).expect_err("not pending").error.code(), "not_pending");
    l.check().expect("invariants");
}

#[test]
fn errors_say_what_is_wrong() {
    let x = tid("x");
    let cases: Vec<(LedgerError, &str)> = vec![
        (
            LedgerError::AccountNotAllowed {
                transfer: x.clone(),
                kind: TransferKindName::Restock,
                side: Side::Debit,
                account: vp("v1"),
            },
            "transfer x: a restock may not debit volunteer/v1/points",
        ),
        (
            LedgerError::AccountNotAllowed {
                transfer: x.clone(),
                kind: TransferKindName::Restock,
                side: Side::Credit,
                account: till("s"),
            },
            "transfer x: a restock may not credit till/s",
        ),
        (LedgerError::ReasonMissing { subject: Subject::Account(till("s")) }, "account till/s: a reason is required"),
        (LedgerError::ReasonMissing { subject: Subject::Transfer(x.clone()) }, "transfer x: a reason is required"),
        (
            LedgerError::LedgerMismatch {
                transfer: x.clone(),
                debit: LedgerId::Points,
                credit: LedgerId::Stock(item("oil")),
            },
            "transfer x: the debit account is on ledger points, the credit account on stock/oil",
        ),
        (LedgerError::TooManyOps { ops: 2000 }, "2000 operations in one command, at most 1024 are allowed"),
        (LedgerError::PendingAlreadyVoided { pending: x.clone(), by: tid("v") }, "x was already voided by v"),
        (
            LedgerError::CloseWithBalance { account: vp("v1"), held: 3 },
            "account volunteer/v1/points cannot be closed: it holds 3",
        ),
    ];
    let fields = [
        (TransferField::Operation, "operation"),
        (TransferField::Debit, "debit"),
        (TransferField::Credit, "credit"),
        (TransferField::Amount, "amount"),
        (TransferField::Kind, "kind"),
        (TransferField::Timeout, "timeout_s"),
        (TransferField::Pending, "pending"),
        (TransferField::Original, "original"),
        (TransferField::Reason, "reason"),
    ];
    for (e, text) in cases {
        assert_eq!(e.to_string(), text);
    }
    for (field, name) in fields {
        assert_eq!(
            LedgerError::ExistsWithDifferent { id: x.clone(), field }.to_string(),
            format!("x exists with a different {name}")
        );
    }
    assert_eq!("points".parse::<LedgerId>(), Ok(LedgerId::Points));
    assert_eq!("minutes".parse::<LedgerId>(), Ok(LedgerId::Minutes));
    assert_eq!(LedgerId::Minutes.to_string(), "minutes");
    assert_eq!(serde_json::to_string(&LedgerId::Stock(item("oil"))).expect("serialises"), "\"stock/oil\"");
    assert_eq!(serde_json::from_str::<LedgerId>("\"points\"").expect("parses"), LedgerId::Points);
    assert!(matches!("hours".parse::<LedgerId>(), Err(AccountIdError::UnknownForm(_))));
    assert!(matches!("stock/".parse::<LedgerId>(), Err(AccountIdError::BadId { .. })));
    assert_eq!(ItemId::new(""), Err(crate::id::IdError::Empty));
    assert_eq!(ItemId::new(&"i".repeat(65)), Err(crate::id::IdError::TooLong { len: 65 }));
    assert_eq!(ItemId::new("rice 5kg"), Err(crate::id::IdError::BadChar { ch: ' ' }));
    assert_eq!(item("rice").as_str(), "rice");
    assert_eq!(format!("{:?}", item("rice")), "ItemId(\"rice\")");
    assert_eq!(format!("{:?}", tid("t/1")), "TransferId(\"t/1\")");
    assert_eq!("t/1".parse::<TransferId>(), Ok(tid("t/1")));
    assert_eq!("rice".parse::<ItemId>(), Ok(item("rice")));
    assert!(serde_json::from_str::<TransferId>("\"a b\"").is_err());
    assert!(serde_json::from_str::<ItemId>("\"a/b\"").is_err());
    assert_eq!(TransferKind::Withdrawal { request: RequestId::new("q").expect("id") }.name(), "withdrawal");
    assert_eq!(TransferKind::ServiceCredit { request: RequestId::new("q").expect("id") }.name(), "service_credit");
}

#[test]
fn the_digest_and_the_outcome_follow_the_state() {
    let mut l = setup(1);
    let d0 = l.digest();
    let mut hold = adjust("h", vp("v1"), vp("v2"), 5);
    hold.timeout_s = Some(60);
    l.execute(&LedgerCommand::transfer(hold), t0()).expect("reserves");
    let d1 = l.digest();
    assert_ne!(d0, d1);
    one(&mut l, LedgerOp::Post { id: tid("p"), pending: tid("h") }, t0()).expect("posts");
    assert_ne!(l.digest(), d1);
    assert!(matches!(l.outcome(&tid("p")), Some(Outcome::Posted(r)) if r.transfer.id == tid("h")));
    assert!(l.outcome(&tid("nothing")).is_none());
    assert_eq!(l.transfers_in_memory(), 4);
    assert_eq!(l.applied(), 11 + 3 + 2, "opened, seeded, reserved and posted");
    // Equal states, equal digests; the digest sees every part of the state.
    let copy = l.clone();
    assert_eq!(copy.digest(), l.digest());
    let mut other = copy.clone();
    other.applied += 1;
    assert_ne!(other.digest(), l.digest());
    let mut other = copy.clone();
    other.entries.remove(&tid("p"));
    assert_ne!(other.digest(), l.digest());
    let mut other = copy.clone();
    other.expiries.insert((t0(), 0));
    assert_ne!(other.digest(), l.digest());
}

/// `check` finds each kind of corruption (the ledger's fields are private: only a bug could do this).
#[test]
fn check_finds_a_broken_ledger() {
    let mut l = setup(2);
    let mut hold = adjust("h", vp("v1"), vp("v2"), 5);
    hold.timeout_s = Some(60);
    l.execute(&LedgerCommand::transfer(hold), t0()).expect("reserves");
    l.execute(&redemption("r", "v1", 10, 1, None).command().expect("ids"), t0()).expect("redeems");
    let rev = LedgerOp::Reverse { id: tid("rv"), original: tid("seed-m"), reason: "typo".into() };
    one(&mut l, rev, t0()).expect("reverses");
    let mut hold2 = adjust("h2", vp("v1"), vp("v2"), 1);
    hold2.timeout_s = Some(60);
    l.execute(&LedgerCommand::transfer(hold2), t0()).expect("reserves");
    one(&mut l, LedgerOp::Void { id: tid("v"), pending: tid("h2") }, t0()).expect("voids");
    l.check().expect("a sound ledger");
    let slot = |l: &Ledger, id: &str| match l.entries[&tid(id)] {
        Entry::Transfer(s) => s,
        other => panic!("{other:?}"),
    };
    type Break = Box<dyn Fn(&mut Ledger)>;
    let breaks: Vec<(&str, Break)> = vec![
        ("balance", Box::new(|l| l.accounts[3].balance.credits_posted += 1)),
        ("pending balance", Box::new(|l| l.accounts[3].balance.debits_pending += 1)),
        (
            "below zero",
            Box::new(|l| {
                l.accounts[4].balance.debits_posted += 1;
                l.accounts[0].balance.credits_posted += 1;
            }),
        ),
        ("system flag", Box::new(|l| l.accounts[0].system = false)),
        (
            "account index",
            Box::new(|l| {
                l.account_slot.insert(vp("v2"), 3);
            }),
        ),
        (
            "extra account index",
            Box::new(|l| {
                l.account_slot.insert(vp("v77"), 3);
            }),
        ),
        ("expiry missing", Box::new(|l| l.expiries.clear())),
        (
            "expiry extra",
            Box::new(|l| {
                l.expiries.insert((t0(), 0));
            }),
        ),
        (
            "id missing",
            Box::new(|l| {
                l.entries.remove(&tid("seed-p"));
            }),
        ),
        (
            "id extra",
            Box::new(|l| {
                l.entries.insert(tid("ghost"), Entry::Post(0));
            }),
        ),
        (
            "void id",
            Box::new(|l| {
                l.entries.insert(tid("v"), Entry::Post(0));
            }),
        ),
        (
            "state",
            Box::new(move |l| {
                let s = slot(l, "seed-p");
                l.transfers.get_mut(s).expect("in memory").state = TransferState::Pending;
            }),
        ),
        (
            "state of a pending",
            Box::new(move |l| {
                let s = slot(l, "h");
                l.transfers.get_mut(s).expect("in memory").state = TransferState::Posted;
            }),
        ),
        (
            "reversal link",
            Box::new(move |l| {
                let s = slot(l, "seed-m");
                l.transfers.get_mut(s).expect("in memory").reversed_by = None;
            }),
        ),
        (
            "wrong reversal link",
            Box::new(move |l| {
                let s = slot(l, "seed-p");
                l.transfers.get_mut(s).expect("in memory").reversed_by = Some(tid("rv"));
            }),
        ),
        (
            "redemption partner",
            Box::new(move |l| {
                let s = slot(l, "r/points");
                std::sync::Arc::make_mut(&mut l.transfers.get_mut(s).expect("in memory").transfer).kind =
                    TransferKind::Redemption { partner: tid("seed-p") };
            }),
        ),
        (
            "redemption state",
            Box::new(move |l| {
                let s = slot(l, "r/goods");
                l.transfers.get_mut(s).expect("in memory").state = TransferState::PendingExpired;
            }),
        ),
        (
            "account of a transfer",
            Box::new(move |l| {
                let s = slot(l, "seed-p");
                std::sync::Arc::make_mut(&mut l.transfers.get_mut(s).expect("in memory").transfer).credit = vp("v404");
            }),
        ),
    ];
    for (what, f) in breaks {
        let mut broken = l.clone();
        f(&mut broken);
        assert!(broken.check().is_err(), "check misses a broken {what}");
    }
}

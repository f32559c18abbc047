//! The volunteers at the love supermarket: every station is stocked at the
//! start; volunteers credited with points now and then reserve goods they can
//! afford (most picked up, the rest left to expire), and a few spend banked
//! time, all as ledger commands. What they know of their points, minutes and
//! the shelves they read from the log, like their app would.

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};
use sidan_core::city::City;
use sidan_core::id::{RequestId, UnitId, VolunteerId};
use sidan_core::ledger::{
    AccountId, ItemId, LedgerCommand, LedgerEvent, LedgerOp, Redemption, TransferId, TransferKind, TransferSpec,
};
use sidan_core::lifecycle::{Command, Event, StreamId};
use sidan_core::units::UnitKind;
use sidan_runtime::Stored;

use crate::behaviour::Behaviour;

/// The love supermarket's items: id, price in points, units each station receives at the start
/// (up to half as many again).
const ITEMS: [(&str, u64, u64); 3] = [("towel", 8, 12), ("cooking-oil", 20, 6), ("rice-5kg", 30, 4)];

/// How long goods stay reserved for pick-up.
const PICK_UP_S: u32 = 48 * 3600;

/// Banked minutes a withdrawal spends, and what a volunteer must hold to make one.
const WITHDRAWAL_MIN: u64 = 60;
const WITHDRAWAL_FLOOR_MIN: u64 = 180;

/// What the simulated volunteers know of their points, banked time and the shelves: counted
/// from the log, with what they have already decided to spend taken off.
#[derive(Debug, Default)]
pub(crate) struct Shop {
    points: HashMap<VolunteerId, u64>,
    minutes: HashMap<VolunteerId, u64>,
    /// Units each (station, item) is believed to have left.
    stock: HashMap<(UnitId, usize), u64>,
    /// Each request's unit.
    unit_of: HashMap<RequestId, UnitId>,
    /// The latest request submitted at each unit (what a withdrawal pays for).
    latest: HashMap<UnitId, RequestId>,
    /// Redemptions made, by the id of their goods leg, with their item.
    made: HashMap<TransferId, (Redemption, usize)>,
    next: u64,
}

impl Shop {
    fn id(&mut self, prefix: &str) -> Option<TransferId> {
        self.next += 1;
        TransferId::new(&format!("{prefix}-{}", self.next)).ok()
    }

    /// The start: every station receives each item.
    pub(crate) fn stock_stations(&mut self, city: &City, b: &mut Behaviour) -> Vec<Command> {
        let mut out = Vec::new();
        for (_, u) in city.units().iter().filter(|(_, u)| u.kind == UnitKind::Station) {
            let mut ops = vec![LedgerOp::Open { account: AccountId::Till(u.id.clone()) }];
            for (i, (item, _, base)) in ITEMS.iter().enumerate() {
                let (Ok(item), Some(id)) = (ItemId::new(item), self.id("restock")) else { continue };
                let (station, qty) = (u.id.clone(), b.restock(*base));
                let shelf = AccountId::Shelf { station: station.clone(), item: item.clone() };
                let receipt = AccountId::StockReceipt { station: station.clone(), item: item.clone() };
                let consumed = AccountId::StockConsumed { station: station.clone(), item };
                for account in [receipt.clone(), shelf.clone(), consumed] {
                    ops.push(LedgerOp::Open { account });
                }
                let kind = TransferKind::Restock {};
                let transfer = TransferSpec { id, debit: receipt, credit: shelf, amount: qty, kind, timeout_s: None };
                ops.push(LedgerOp::Transfer { transfer });
                self.stock.insert((station, i), qty);
            }
            out.push(Command::Ledger(LedgerCommand::new(ops)));
        }
        out
    }

    /// What the volunteers do about one stored event.
    pub(crate) fn observe(
        &mut self,
        s: &Stored,
        now: DateTime<Utc>,
        b: &mut Behaviour,
        schedule: &mut dyn FnMut(DateTime<Utc>, Command),
    ) {
        let entry = match (&s.record.stream, &s.record.event) {
            (StreamId::Request(r), Event::Submitted { spec, .. }) => {
                self.unit_of.insert(r.clone(), spec.unit.clone());
                self.latest.insert(spec.unit.clone(), r.clone());
                return;
            }
            (_, Event::Ledger { entry }) => entry,
            _ => return,
        };
        match entry {
            LedgerEvent::Transferred { transfer } => match (&transfer.kind, &transfer.credit) {
                (TransferKind::ServiceCredit { request }, AccountId::VolunteerPoints(v)) => {
                    *self.points.entry(v.clone()).or_default() += transfer.amount;
                    let Some(station) = self.unit_of.get(request).cloned() else { return };
                    if let Some(after) = b.redeem_after() {
                        self.redeem(v, station, now + after, b, schedule);
                    }
                }
                (TransferKind::ServiceCredit { request }, AccountId::VolunteerMinutes(v)) => {
                    let held = self.minutes.entry(v.clone()).or_default();
                    *held += transfer.amount;
                    if *held < WITHDRAWAL_FLOOR_MIN {
                        return;
                    }
                    let Some(after) = b.withdraw_after() else { return };
                    *held -= WITHDRAWAL_MIN;
                    // The hour pays for the latest request at the volunteer's station, as if
                    // it were their family's.
                    let unit = self.unit_of.get(request).cloned();
                    let Some(paid) = unit.and_then(|u| self.latest.get(&u).cloned()) else { return };
                    let Some(id) = self.id("withdrawal") else { return };
                    let transfer = TransferSpec {
                        id,
                        debit: AccountId::VolunteerMinutes(v.clone()),
                        credit: AccountId::MinutesSpent,
                        amount: WITHDRAWAL_MIN,
                        kind: TransferKind::Withdrawal { request: paid },
                        timeout_s: None,
                    };
                    let ops =
                        vec![LedgerOp::Open { account: AccountId::MinutesSpent }, LedgerOp::Transfer { transfer }];
                    schedule(now + after, Command::Ledger(LedgerCommand::new(ops)));
                }
                (TransferKind::Redemption { .. }, AccountId::StockConsumed { .. }) if transfer.timeout_s.is_some() => {
                    let Some((red, _)) = self.made.get(&transfer.id) else { return };
                    let timeout = Duration::seconds(i64::from(PICK_UP_S));
                    let Some(after) = b.pick_up(timeout) else { return };
                    let Ok(post) = red.id.with_suffix("pick-up").and_then(|id| red.post(&id)) else { return };
                    schedule(now + after, Command::Ledger(post));
                }
                _ => {}
            },
            // Not picked up: the goods are back on the shelf, the points with the volunteer.
            LedgerEvent::Expired { pending, .. } => {
                let Some((red, item)) = self.made.get(pending) else { return };
                *self.stock.entry((red.station.clone(), *item)).or_default() += red.quantity;
                *self.points.entry(red.volunteer.clone()).or_default() += red.points;
            }
            _ => {}
        }
    }

    /// Reserves one item the volunteer can afford and the station has, if any.
    fn redeem(
        &mut self,
        v: &VolunteerId,
        station: UnitId,
        at: DateTime<Utc>,
        b: &mut Behaviour,
        schedule: &mut dyn FnMut(DateTime<Utc>, Command),
    ) {
        let points = self.points.get(v).copied().unwrap_or(0);
        let can: Vec<usize> = (0..ITEMS.len())
            .filter(|&i| ITEMS[i].1 <= points && self.stock.get(&(station.clone(), i)).is_some_and(|&n| n > 0))
            .collect();
        if can.is_empty() {
            return;
        }
        let i = can[b.pick(can.len())];
        let (Ok(item), Some(id)) = (ItemId::new(ITEMS[i].0), self.id("redeem")) else { return };
        let red = Redemption {
            id,
            volunteer: v.clone(),
            station: station.clone(),
            item,
            points: ITEMS[i].1,
            quantity: 1,
            timeout_s: Some(PICK_UP_S),
        };
        let (Ok(command), Ok(goods)) = (red.command(), red.id.with_suffix("goods")) else { return };
        *self.points.entry(v.clone()).or_default() -= ITEMS[i].1;
        *self.stock.entry((station, i)).or_default() -= 1;
        self.made.insert(goods, (red, i));
        schedule(at, Command::Ledger(command));
    }
}

//! The transfers in memory, by slot. Slots count up from the ledger's first transfer and are
//! never reused; settled transfers leave memory once their retention has passed (see
//! [`Ledger::tick`](crate::ledger::Ledger::tick)), mostly from the front. A transfer retired with
//! one made later (a reversal, a redemption's other leg) leaves a hole until the front reaches it.

use std::collections::VecDeque;

use crate::ledger::TransferRecord;

/// The transfers in memory, by slot.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub(crate) struct Table {
    /// The slot of `rows[0]`: how many transfers left memory from the front.
    first: u32,
    /// From `first` on; `None` for a transfer that left memory behind the front.
    rows: VecDeque<Option<TransferRecord>>,
    /// How many rows are `Some`.
    live: usize,
}

impl Table {
    /// An empty table whose next slot is `first` (a restored ledger's).
    pub(crate) fn starting_at(first: u32) -> Self {
        Self { first, rows: VecDeque::new(), live: 0 }
    }

    /// The slot of the front row (every earlier slot left memory).
    pub(crate) fn first(&self) -> u32 {
        self.first
    }

    /// The slot the next transfer gets.
    pub(crate) fn next_slot(&self) -> u32 {
        self.first + u32::try_from(self.rows.len()).expect("fewer than 2^32 transfers")
    }

    /// How many transfers are in memory.
    pub(crate) fn len(&self) -> usize {
        self.live
    }

    /// The transfer at `slot`, if it is in memory.
    pub(crate) fn get(&self, slot: u32) -> Option<&TransferRecord> {
        let i = slot.checked_sub(self.first)?;
        self.rows.get(i as usize)?.as_ref()
    }

    /// The transfer at `slot`, which an id names (so it is in memory).
    pub(crate) fn at(&self, slot: u32) -> &TransferRecord {
        self.get(slot).expect("an id names a transfer in memory")
    }

    /// The transfer at `slot`, if it is in memory, to change.
    pub(crate) fn get_mut(&mut self, slot: u32) -> Option<&mut TransferRecord> {
        let i = slot.checked_sub(self.first)?;
        self.rows.get_mut(i as usize)?.as_mut()
    }

    /// Adds the next transfer; returns its slot.
    pub(crate) fn push(&mut self, rec: TransferRecord) -> u32 {
        let slot = self.next_slot();
        self.rows.push_back(Some(rec));
        self.live += 1;
        slot
    }

    /// Leaves a hole at the next slot (a restored snapshot's transfer that had left memory).
    pub(crate) fn push_hole(&mut self) {
        // A hole at the front is no row at all.
        if self.rows.is_empty() {
            self.first += 1;
        } else {
            self.rows.push_back(None);
        }
    }

    /// Takes the transfer at `slot` out of memory.
    pub(crate) fn take(&mut self, slot: u32) -> Option<TransferRecord> {
        let i = slot.checked_sub(self.first)?;
        let rec = self.rows.get_mut(i as usize)?.take()?;
        self.live -= 1;
        while matches!(self.rows.front(), Some(None)) {
            self.rows.pop_front();
            self.first += 1;
        }
        Some(rec)
    }

    /// Every transfer in memory with its slot, in slot order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (u32, &TransferRecord)> {
        (self.first..).zip(&self.rows).filter_map(|(s, r)| r.as_ref().map(|r| (s, r)))
    }

    /// Every row from the front, holes as `None`, for a snapshot.
    pub(crate) fn rows(&self) -> impl ExactSizeIterator<Item = Option<&TransferRecord>> {
        self.rows.iter().map(Option::as_ref)
    }
}

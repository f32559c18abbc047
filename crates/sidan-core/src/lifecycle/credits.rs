//! Credits: a served settlement's hours and points, written on the ledger
//! stream in the same decision, and the ledger stream's own commands.

use chrono::{DateTime, Duration, Utc};

use crate::geo::TravelTime;
use crate::ledger::{self, AccountId, CreditInput, LedgerCommand, LedgerError, LedgerOp, TransferKind};
use crate::lifecycle::{
    ApplyProblem, Event, Lifecycle, LifecycleError, Out, Phase, RaterRole, Recorded, RequestState, StreamId, evaluation,
};
use crate::request::Urgency;

impl<T: TravelTime> Lifecycle<T> {
    /// Settles the ratings and closes the request. A served request credits its volunteers and
    /// its team on the ledger stream, in the same decision, so the credits are appended with the
    /// settlement or not at all.
    pub(super) fn settle(&self, st: &RequestState, ratings: &[(RaterRole, u8)], served: bool, out: &mut Out<'_>) {
        let p = self.policy_of(&st.request);
        let s = evaluation::settle(ratings, evaluation::expected_roles(st.sampled), p);
        out.push(Event::Settled { combined_milli: s.combined_milli, defaulted: s.defaulted, served });
        let mut credits = Vec::new();
        if served {
            match self.ledger.decide(&self.credit_command(st), out.at) {
                Ok(events) => credits = events,
                Err(error) => out.push(Event::CreditFailed { error }),
            }
        }
        out.push(Event::Closed);
        for (seq, entry) in (self.ledger.applied() + 1..).zip(credits) {
            out.recs.push(Recorded { stream: StreamId::Ledger, seq, at: out.at, event: Event::Ledger { entry } });
        }
    }

    /// The ledger command crediting a completed request: open every account it touches (a no-op
    /// for those open), then the transfers of [`ledger::service_credit`]. The service counts as
    /// at night when it started (completion minus its minutes, in the unit's time zone) between
    /// 22:00 and 06:00, and as on a holiday when that local date is one of the policy book's.
    fn credit_command(&self, st: &RequestState) -> LedgerCommand {
        let (Phase::Completed { team, at }, Some((minutes, volunteers))) = (st.phase, &st.service) else {
            return LedgerCommand::default();
        };
        let req = &st.request;
        let tz = self.dispatcher.city().units().get(req.unit()).tz;
        let start = (at - Duration::minutes(i64::from(*minutes))).with_timezone(&tz);
        let hour = chrono::Timelike::hour(&start);
        let input = CreditInput {
            request: req.id().clone(),
            minutes: *minutes,
            volunteers: volunteers.clone(),
            team: Some(self.team_id(team)),
            urgent: req.urgency() != Urgency::Normal,
            night: !(6..22).contains(&hour),
            holiday: self.policies.is_holiday(start.date_naive()),
        };
        let transfers = ledger::service_credit(&self.policy_of(req).credit, &input);
        let mut accounts: Vec<AccountId> = Vec::with_capacity(transfers.len() + 2);
        for t in &transfers {
            for a in [&t.debit, &t.credit] {
                // An open account needs no `open` (it would be a no-op); a closed one gets it, so
                // that the ledger refuses the credit with the reason.
                let open = self.ledger.account(a).is_some_and(|acct| !acct.closed);
                if !open && !accounts.contains(a) {
                    accounts.push(a.clone());
                }
            }
        }
        let mut ops: Vec<LedgerOp> = accounts.into_iter().map(|account| LedgerOp::Open { account }).collect();
        ops.extend(transfers.into_iter().map(|transfer| LedgerOp::Transfer { transfer }));
        LedgerCommand::new(ops)
    }

    /// Decides a ledger command, or the ledger's tick (`None`: the reservations whose timeout
    /// passed).
    pub(super) fn decide_ledger(
        &self,
        cmd: Option<&LedgerCommand>,
        now: DateTime<Utc>,
        out: &mut Out<'_>,
    ) -> Result<(), LifecycleError> {
        let events = match cmd {
            Some(command) => {
                // Service credits are made by a served settlement only, once per request; one
                // sent as a command could credit a request again once its ids left memory.
                let credit = command.ops.iter().find_map(|op| match op {
                    LedgerOp::Transfer { transfer } if matches!(transfer.kind, TransferKind::ServiceCredit { .. }) => {
                        Some(transfer)
                    }
                    _ => None,
                });
                if let Some(t) = credit {
                    return Err(LedgerError::KindNotAllowed { transfer: t.id.clone(), kind: t.kind.kind_name() }.into());
                }
                self.ledger.decide(command, now)?
            }
            None => self.ledger.tick(now),
        };
        for entry in events {
            out.push(Event::Ledger { entry });
        }
        Ok(())
    }

    /// Folds an event of the ledger stream.
    pub(super) fn apply_ledger(&mut self, rec: &Recorded) -> Result<(), ApplyProblem> {
        let Event::Ledger { entry } = &rec.event else {
            return Err(ApplyProblem::WrongStream { event: rec.event.name(), stream: rec.stream.kind() });
        };
        self.ledger.apply(entry)?;
        Ok(())
    }
}

//! Unit tests of the lifecycle: the state × command table, each escalation
//! step, emergencies, deadlines, pairings and replay.

use chrono::{DateTime, Duration, NaiveDate, NaiveDateTime, Utc};

use super::*;
use crate::dispatch::Dispatcher;
use crate::id::{HouseholdId, ServiceId, SkillId, UnitId, VolunteerId};
use crate::ledger::{AccountId, ItemId, LedgerCommand, LedgerOp, Redemption, TransferId, TransferKind, TransferSpec};
use crate::request::{ContactError, ContactField, RequestError, RequestSpec, Urgency};
use crate::team::{TeamChange, TeamError, TeamSpec};
use crate::testkit::{request, t0, tiny_city};

fn lifecycle(p: LifecyclePolicy) -> Lifecycle {
    let (city, index) = tiny_city();
    Lifecycle::new(Dispatcher::new(city, index), PolicyBook::uniform(p).expect("valid policy"))
}

fn rid(s: &str) -> RequestId {
    RequestId::new(s).expect("id")
}

fn tid(s: &str) -> TeamId {
    TeamId::new(s).expect("id")
}

fn names(recs: &[Recorded]) -> Vec<&'static str> {
    recs.iter().map(|r| r.event.name()).collect()
}

fn offers(recs: &[Recorded]) -> Vec<(String, OfferMode)> {
    recs.iter()
        .filter_map(|r| match &r.event {
            Event::Offered { team, mode, .. } => Some((team.to_string(), *mode)),
            _ => None,
        })
        .collect()
}

fn widened(recs: &[Recorded]) -> Vec<(String, WidenReason)> {
    recs.iter()
        .filter_map(|r| match &r.event {
            Event::ScopeWidened { scope, reason } => Some((scope.to_string(), *reason)),
            _ => None,
        })
        .collect()
}

/// Runs every due tick at `now`, returning the events.
fn tick_all(lc: &mut Lifecycle, now: DateTime<Utc>) -> Vec<Recorded> {
    let due: Vec<StreamId> = lc.due(now).cloned().collect();
    let mut all = Vec::new();
    for s in due {
        all.extend(lc.execute(&Command::Tick(s), now).expect("ticks never fail"));
    }
    all
}

fn holder_of(lc: &Lifecycle, r: &str) -> Option<String> {
    lc.request(&rid(r))?.phase.holder().map(|t| lc.dispatcher().index().get(t).id.to_string())
}

fn open_teams(lc: &Lifecycle, r: &str) -> Vec<String> {
    let st = lc.request(&rid(r)).expect("known");
    st.offers.iter().map(|o| lc.dispatcher().index().get(o.team).id.to_string()).collect()
}

/// Drives a fresh request `r` into the phase `kind`, returning the lifecycle,
/// the time, and the team that got the first offer.
fn in_phase(kind: PhaseKind) -> (Lifecycle, DateTime<Utc>, Option<TeamId>) {
    let mut lc = lifecycle(LifecyclePolicy::default());
    let now = t0();
    let service = if kind == PhaseKind::Unfulfillable { "haircut" } else { "home-care" };
    if kind == PhaseKind::New {
        return (lc, now, Some(tid("c1-s1-a")));
    }
    let recs = lc.execute(
        &Command::Request(RequestCommand::Submit { spec: request("r", "c1-i1-s1", service, Urgency::Normal, 2, 4) }),
        now,
    );
    let recs = recs.expect("submits");
    let team = offers(&recs).first().map(|(t, _)| tid(t));
    let r = rid("r");
    let go = |lc: &mut Lifecycle, c: Command| lc.execute(&c, now).expect("drives the request");
    let t = || team.clone().expect("an offer was made");
    let steps = [PhaseKind::Held, PhaseKind::CheckedIn, PhaseKind::Completed, PhaseKind::Closed];
    match kind {
        PhaseKind::Open | PhaseKind::Unfulfillable => {}
        PhaseKind::Cancelled => {
            go(
                &mut lc,
                Command::Request(RequestCommand::Cancel {
                    request: r.clone(),
                    reason: Text::new("no longer needed").expect("short text"),
                }),
            );
        }
        PhaseKind::Expired => {
            let later = t0() + Duration::hours(10);
            tick_all(&mut lc, later);
            return (lc, later, team);
        }
        _ => {
            for step in steps {
                match step {
                    PhaseKind::Held => {
                        go(&mut lc, Command::Request(RequestCommand::Accept { request: r.clone(), team: t() }))
                    }
                    PhaseKind::CheckedIn => {
                        go(&mut lc, Command::Request(RequestCommand::CheckIn { request: r.clone(), team: t() }))
                    }
                    PhaseKind::Completed => go(
                        &mut lc,
                        Command::Request(RequestCommand::Complete {
                            request: r.clone(),
                            team: t(),
                            minutes: ServiceMinutes::new(60).expect("valid minutes"),
                            volunteers: Volunteers::new(vec![VolunteerId::new("v1").expect("id")])
                                .expect("valid volunteers"),
                        }),
                    ),
                    _ => {
                        let sampled = lc.request(&r).is_some_and(|s| s.sampled);
                        for role in evaluation::expected_roles(sampled) {
                            let role = *role;
                            go(
                                &mut lc,
                                Command::Request(RequestCommand::Evaluate {
                                    request: r.clone(),
                                    role,
                                    score: Score::new(5).expect("valid score"),
                                    tags: Tags::new(vec![]).expect("valid tags"),
                                    comment: None,
                                }),
                            );
                        }
                        Vec::new()
                    }
                };
                if step == kind {
                    break;
                }
            }
        }
    }
    assert_eq!(lc.request(&r).map_or(PhaseKind::New, |s| s.phase.kind()), kind, "fixture reached {kind}");
    (lc, now, team)
}

fn command_of(kind: CommandKind, team: TeamId) -> Command {
    let request = rid("r");
    match kind {
        CommandKind::Submit => Command::Request(RequestCommand::Submit { spec: request_spec() }),
        CommandKind::Accept => Command::Request(RequestCommand::Accept { request, team }),
        CommandKind::Decline => {
            Command::Request(RequestCommand::Decline { request, team, reason: DeclineReason::NoVolunteers })
        }
        CommandKind::CheckIn => Command::Request(RequestCommand::CheckIn { request, team }),
        CommandKind::Complete => Command::Request(RequestCommand::Complete {
            request,
            team,
            minutes: ServiceMinutes::new(45).expect("valid minutes"),
            volunteers: Volunteers::default(),
        }),
        CommandKind::Evaluate => Command::Request(RequestCommand::Evaluate {
            request,
            role: RaterRole::Resident,
            score: Score::new(4).expect("valid score"),
            tags: Tags::new(vec![]).expect("valid tags"),
            comment: None,
        }),
        CommandKind::ResolveDispute => Command::Request(RequestCommand::ResolveDispute {
            request,
            served: true,
            note: Text::new("visited").expect("short text"),
        }),
        CommandKind::Cancel => Command::Request(RequestCommand::Cancel {
            request,
            reason: Text::new("changed plans").expect("short text"),
        }),
        CommandKind::ReportNoShow => Command::Request(RequestCommand::ReportNoShow { request, team }),
        CommandKind::Tick => Command::Tick(StreamId::Request(request)),
    }
}

fn request_spec() -> RequestSpec {
    request("r", "c1-i1-s1", "home-care", Urgency::Normal, 2, 4)
}

#[test]
fn the_table_covers_every_phase_and_command() {
    let mut allowed = 0;
    for phase in PhaseKind::ALL {
        for kind in CommandKind::ALL {
            let (mut lc, now, team) = in_phase(phase);
            let team = team.unwrap_or_else(|| tid("c1-s1-a"));
            let cmd = command_of(kind, team);
            let before = lc.digest();
            let table = check(&rid("r"), phase, kind);
            let decided = lc.decide(&cmd, now);
            match (&table, &decided) {
                (Err(t), Err(d)) => assert_eq!(t, d, "{phase} × {kind:?}: the refusal is the table's"),
                (Ok(()), Ok(_)) => allowed += 1,
                // The table admits a resolution in `completed`; without a dispute, decide refuses it.
                (Ok(()), Err(LifecycleError::NotDisputed { .. })) if kind == CommandKind::ResolveDispute => {}
                _ => panic!("{phase} × {kind:?}: table says {table:?}, decide says {decided:?}"),
            }
            if decided.is_err() {
                assert!(lc.execute(&cmd, now).is_err());
                assert_eq!(lc.digest(), before, "{phase} × {kind:?}: a refusal changes nothing");
            }
        }
    }
    // New: submit; Open: accept, decline, cancel; Held: check-in, cancel, no-show;
    // CheckedIn: complete; Completed: evaluate; and tick everywhere but New.
    assert_eq!(allowed, 1 + 3 + 3 + 1 + 1 + 8);
}

#[test]
fn finer_refusals_are_typed() {
    let (lc, now, team) = in_phase(PhaseKind::Open);
    let team = team.expect("offered");
    let r = rid("r");
    let other = tid("c2");
    assert_eq!(
        lc.decide(&Command::Request(RequestCommand::Accept { request: r.clone(), team: other.clone() }), now),
        Err(LifecycleError::NotOffered { request: r.clone(), team: other })
    );
    let ghost = tid("ghost");
    assert_eq!(
        lc.decide(&Command::Request(RequestCommand::Accept { request: r.clone(), team: ghost.clone() }), now),
        Err(LifecycleError::UnknownTeam { team: ghost })
    );
    let deadline = lc.request(&r).expect("known").offers[0].deadline;
    assert!(
        lc.decide(
            &Command::Request(RequestCommand::Accept { request: r.clone(), team: team.clone() }),
            deadline - Duration::milliseconds(1)
        )
        .is_ok()
    );
    assert_eq!(
        lc.decide(&Command::Request(RequestCommand::Accept { request: r.clone(), team: team.clone() }), deadline),
        Err(LifecycleError::OfferExpired { request: r.clone(), team: team.clone(), deadline })
    );
    let (lc, now, team) = in_phase(PhaseKind::Held);
    let team = team.expect("held");
    assert_eq!(
        lc.decide(&Command::Request(RequestCommand::Accept { request: r.clone(), team: team.clone() }), now),
        Err(LifecycleError::AlreadyTaken { request: r.clone() })
    );
    assert_eq!(
        lc.decide(
            &Command::Request(RequestCommand::Complete {
                request: r.clone(),
                team: team.clone(),
                minutes: ServiceMinutes::new(30).expect("valid minutes"),
                volunteers: Volunteers::new(vec![]).expect("valid volunteers")
            }),
            now
        ),
        Err(LifecycleError::WrongPhase { request: r.clone(), command: CommandKind::Complete, phase: PhaseKind::Held })
    );
    let (lc, now, team) = in_phase(PhaseKind::CheckedIn);
    let team = team.expect("checked in");
    // Values out of range never become commands: their types refuse them, so `decide` sees
    // only valid ones (and JSON with such values does not decode).
    let _ = (lc, now, team);
    assert_eq!(ServiceMinutes::new(0), Err(ValueError::MinutesOutOfRange { minutes: 0 }));
    let v = VolunteerId::new("v").expect("id");
    assert_eq!(Volunteers::new(vec![v.clone(), v.clone()]), Err(ValueError::DuplicateVolunteer { volunteer: v }));
    assert_eq!(Score::new(0), Err(ValueError::ScoreOutOfRange { score: 0 }));
    assert_eq!(Score::new(6), Err(ValueError::ScoreOutOfRange { score: 6 }));
    let json = format!(r#"{{"request":{{"type":"complete","request":"{r}","team":"t","minutes":0,"volunteers":[]}}}}"#);
    assert!(serde_json::from_str::<Command>(&json).is_err(), "zero minutes do not decode");
}

#[test]
fn bad_submissions_change_nothing() {
    let mut lc = lifecycle(LifecyclePolicy::default());
    let now = t0();
    let before = lc.digest();
    let mut late = request("late", "c1-i1-s1", "home-care", Urgency::Normal, -3, 2);
    assert!(matches!(
        lc.execute(&Command::Request(RequestCommand::Submit { spec: late.clone() }), now),
        Err(LifecycleError::WindowPassed { .. })
    ));
    late.window = TimeWindow::new(now + Duration::days(400), now + Duration::days(401)).expect("window");
    assert!(matches!(
        lc.execute(&Command::Request(RequestCommand::Submit { spec: late }), now),
        Err(LifecycleError::OverHorizon { .. })
    ));
    let mut unknown = request("u", "nowhere", "home-care", Urgency::Normal, 1, 2);
    assert!(matches!(
        lc.execute(&Command::Request(RequestCommand::Submit { spec: unknown.clone() }), now),
        Err(LifecycleError::InvalidRequest(_))
    ));
    unknown.unit = UnitId::new("c1-i1-s1").expect("id");
    unknown.service = ServiceId::new("juggling").expect("id");
    assert!(matches!(
        lc.execute(&Command::Request(RequestCommand::Submit { spec: unknown }), now),
        Err(LifecycleError::InvalidRequest(_))
    ));
    let mut big = request("big", "c1-i1-s1", "home-care", Urgency::Normal, 1, 2);
    big.contact.detail = "x".repeat(MAX_TEXT_LEN + 1);
    assert!(matches!(
        lc.execute(&Command::Request(RequestCommand::Submit { spec: big }), now),
        Err(LifecycleError::InvalidRequest(RequestError::BadContact {
            error: ContactError { field: ContactField::Detail, len },
            ..
        })) if len == MAX_TEXT_LEN + 1
    ));
    assert_eq!(lc.digest(), before);
    let ok = request("ok", "c1-i1-s1", "home-care", Urgency::Normal, 1, 2);
    lc.execute(&Command::Request(RequestCommand::Submit { spec: ok.clone() }), now).expect("valid");
    let after = lc.digest();
    assert_eq!(
        lc.execute(&Command::Request(RequestCommand::Submit { spec: ok }), now),
        Err(LifecycleError::DuplicateRequest { request: rid("ok") })
    );
    assert_eq!(lc.digest(), after);
}

use crate::time::TimeWindow;

#[test]
fn declines_widen_station_institute_county_city_then_recruit_then_unfulfillable() {
    let p = LifecyclePolicy { escalate_after_misses: 2, escalate_after_min: 600, ..LifecyclePolicy::default() };
    let mut lc = lifecycle(p);
    let now = t0();
    let r = rid("r");
    let recs = lc.execute(
        &Command::Request(RequestCommand::Submit {
            spec: request("r", "c1-i1-s1", "home-care", Urgency::Normal, 20, 4),
        }),
        now,
    );
    let recs = recs.expect("submits");
    assert_eq!(names(&recs), ["submitted", "offered"]);
    let mut seen = Vec::new();
    let mut all = recs;
    // Decline whatever is offered until the request ends.
    for _ in 0..20 {
        let open = open_teams(&lc, "r");
        if open.is_empty() {
            break;
        }
        for t in open {
            seen.push(t.clone());
            let recs = lc
                .execute(
                    &Command::Request(RequestCommand::Decline {
                        request: r.clone(),
                        team: tid(&t),
                        reason: DeclineReason::NoVolunteers,
                    }),
                    now,
                )
                .expect("declines");
            all.extend(recs);
        }
    }
    assert_eq!(lc.request(&r).expect("known").phase, Phase::Unfulfillable);
    let w = widened(&all);
    assert_eq!(
        w,
        [
            ("c1-i1".to_owned(), WidenReason::Misses),
            ("c1".to_owned(), WidenReason::NoCandidates),
            ("cz".to_owned(), WidenReason::NoCandidates),
        ],
        "two declines at the station widen to the institute; the rest have nobody new"
    );
    // Station: c1-s1-a, c1-s1-b; institute: c1-s2; county: c1-i2; city: c2 by recruitment.
    let mut sorted = seen.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), seen.len(), "no team is offered twice: {seen:?}");
    assert_eq!(seen.len(), 5);
    assert!(names(&all).contains(&"recruitment_issued"));
    assert_eq!(offers(&all).last(), Some(&("c2".to_owned(), OfferMode::Recruitment)));
    assert_eq!(names(&all).last(), Some(&"unfulfillable"));
    for t in lc.dispatcher().index().records() {
        assert_eq!(t.load, 0, "every reservation is released");
    }
}

#[test]
fn timeout_widens_and_keeps_the_first_offer_open() {
    let p = LifecyclePolicy { offer_deadline_s: 3 * 3600, escalate_after_min: 60, ..LifecyclePolicy::default() };
    let mut lc = lifecycle(p);
    let now = t0();
    lc.execute(
        &Command::Request(RequestCommand::Submit {
            spec: request("r", "c1-i1-s1", "home-care", Urgency::Normal, 20, 4),
        }),
        now,
    )
    .expect("submits");
    let first = open_teams(&lc, "r");
    assert_eq!(lc.next_wakeup(), Some(now + Duration::minutes(60)));
    assert!(tick_all(&mut lc, now + Duration::minutes(59)).is_empty(), "nothing due before the timeout");
    let recs = tick_all(&mut lc, now + Duration::minutes(60));
    assert_eq!(widened(&recs), [("c1-i1".to_owned(), WidenReason::Timeout)]);
    assert_eq!(offers(&recs).len(), 1);
    let open = open_teams(&lc, "r");
    assert_eq!(open.len(), 2);
    assert_eq!(open[0], first[0]);
    // Either may take it; the first acceptance withdraws the other.
    let recs = lc
        .execute(
            &Command::Request(RequestCommand::Accept { request: rid("r"), team: tid(&open[1]) }),
            now + Duration::minutes(61),
        )
        .expect("accepts");
    assert_eq!(names(&recs), ["accepted", "offer_withdrawn"]);
    assert_eq!(holder_of(&lc, "r").as_deref(), Some(open[1].as_str()));
}

#[test]
fn expiry_counts_as_a_miss_and_redispatches() {
    let p = LifecyclePolicy { offer_deadline_s: 600, escalate_after_misses: 3, ..LifecyclePolicy::default() };
    let mut lc = lifecycle(p);
    let now = t0();
    lc.execute(
        &Command::Request(RequestCommand::Submit {
            spec: request("r", "c1-i1-s1", "home-care", Urgency::Normal, 20, 4),
        }),
        now,
    )
    .expect("submits");
    let first = open_teams(&lc, "r");
    let recs = tick_all(&mut lc, now + Duration::minutes(10));
    assert_eq!(names(&recs), ["offer_expired", "offered"]);
    let second = open_teams(&lc, "r");
    assert_ne!(first, second);
    let st = lc.request(&rid("r")).expect("known");
    assert_eq!(st.misses, 1);
    let late = lc.decide(
        &Command::Request(RequestCommand::Accept { request: rid("r"), team: tid(&first[0]) }),
        now + Duration::minutes(11),
    );
    assert!(matches!(late, Err(LifecycleError::NotOffered { .. })), "an expired offer can never be accepted");
}

#[test]
fn nobody_nearby_goes_straight_to_a_wider_scope() {
    let mut lc = lifecycle(LifecyclePolicy::default());
    let now = t0();
    // Station c1-i2-s2 has no team; institute c1-i2 has c1-i2.
    let recs = lc
        .execute(
            &Command::Request(RequestCommand::Submit {
                spec: request("r", "c1-i2-s2", "home-care", Urgency::Normal, 20, 4),
            }),
            now,
        )
        .expect("submits");
    assert_eq!(widened(&recs), [("c1-i2".to_owned(), WidenReason::NoCandidates)]);
    assert_eq!(offers(&recs), [("c1-i2".to_owned(), OfferMode::Ranked)]);
    // Nobody anywhere has the skill: unfulfillable at once.
    let recs = lc
        .execute(
            &Command::Request(RequestCommand::Submit {
                spec: request("h", "c1-i1-s1", "haircut", Urgency::Normal, 20, 4),
            }),
            now,
        )
        .expect("submits");
    assert_eq!(names(&recs).last(), Some(&"unfulfillable"));
    assert!(!names(&recs).contains(&"recruitment_issued"));
}

#[test]
fn emergency_fans_out_and_one_acceptance_withdraws_the_rest() {
    let p = LifecyclePolicy { emergency_fanout: 3, ..LifecyclePolicy::default() };
    let mut lc = lifecycle(p);
    let now = t0();
    let recs = lc
        .execute(
            &Command::Request(RequestCommand::Submit {
                spec: request("e", "c1-i1-s1", "rescue", Urgency::Emergency, 0, 3),
            }),
            now,
        )
        .expect("submits");
    let made = offers(&recs);
    assert_eq!(made.len(), 3);
    assert!(made.iter().all(|(_, m)| *m == OfferMode::Emergency));
    let deadline = lc.request(&rid("e")).expect("known").offers[0].deadline;
    assert_eq!(deadline, now + Duration::seconds(i64::from(p.emergency_offer_deadline_s)));
    // One declines: the fan-out is topped up.
    let recs = lc
        .execute(
            &Command::Request(RequestCommand::Decline {
                request: rid("e"),
                team: tid(&made[0].0),
                reason: DeclineReason::TooFar,
            }),
            now,
        )
        .expect("declines");
    assert_eq!(names(&recs), ["declined", "offered"]);
    let open = open_teams(&lc, "e");
    assert_eq!(open.len(), 3);
    let recs = lc
        .execute(&Command::Request(RequestCommand::Accept { request: rid("e"), team: tid(&open[2]) }), now)
        .expect("accepts");
    assert_eq!(names(&recs), ["accepted", "offer_withdrawn", "offer_withdrawn"]);
    for t in &open[..2] {
        assert_eq!(
            lc.decide(&Command::Request(RequestCommand::Accept { request: rid("e"), team: tid(t) }), now),
            Err(LifecycleError::AlreadyTaken { request: rid("e") })
        );
    }
    let loads: u32 = lc.dispatcher().index().records().iter().map(|t| t.load).sum();
    assert_eq!(loads, 1, "only the holder keeps a reservation");
}

#[test]
fn no_show_is_recorded_and_redispatched_while_time_allows() {
    let mut lc = lifecycle(LifecyclePolicy::default());
    let now = t0();
    lc.execute(
        &Command::Request(RequestCommand::Submit {
            spec: request("r", "c1-i1-s1", "home-care", Urgency::Normal, 1, 6),
        }),
        now,
    )
    .expect("submits");
    let team = tid(&open_teams(&lc, "r")[0]);
    lc.execute(&Command::Request(RequestCommand::Accept { request: rid("r"), team: team.clone() }), now)
        .expect("accepts");
    let recs = lc
        .execute(
            &Command::Request(RequestCommand::ReportNoShow { request: rid("r"), team: team.clone() }),
            now + Duration::hours(2),
        )
        .expect("reports");
    assert_eq!(names(&recs)[0], "no_show");
    assert!(offers(&recs).iter().all(|(t, _)| *t != team.to_string()));
    assert_eq!(lc.no_shows(lc.dispatcher().index().idx(&team).expect("known")), 1);
    // The next holder never checks in: at the window's end it is a no-show and the request expires.
    let next = tid(&open_teams(&lc, "r")[0]);
    lc.execute(&Command::Request(RequestCommand::Accept { request: rid("r"), team: next }), now + Duration::hours(2))
        .expect("accepts");
    let recs = tick_all(&mut lc, now + Duration::hours(7));
    assert_eq!(names(&recs), ["no_show", "expired"]);
    let loads: u32 = lc.dispatcher().index().records().iter().map(|t| t.load).sum();
    assert_eq!(loads, 0);
}

#[test]
fn completed_requests_close_after_all_ratings_or_the_window() {
    let (mut lc, now, _) = in_phase(PhaseKind::Completed);
    let closes_at = now + Duration::hours(72);
    assert_eq!(lc.next_wakeup(), Some(closes_at));
    lc.execute(
        &Command::Request(RequestCommand::Evaluate {
            request: rid("r"),
            role: RaterRole::Resident,
            score: Score::new(5).expect("valid score"),
            tags: Tags::new(vec![]).expect("valid tags"),
            comment: None,
        }),
        now,
    )
    .expect("rates");
    assert_eq!(
        lc.decide(
            &Command::Request(RequestCommand::Evaluate {
                request: rid("r"),
                role: RaterRole::Resident,
                score: Score::new(3).expect("valid score"),
                tags: Tags::new(vec![]).expect("valid tags"),
                comment: None
            }),
            now
        ),
        Err(LifecycleError::AlreadyEvaluated { request: rid("r"), role: RaterRole::Resident })
    );
    let recs = tick_all(&mut lc, closes_at);
    assert_eq!(names(&on_request(&recs)), ["settled", "closed"]);
    let Event::Settled { defaulted, served, .. } = &recs[0].event else { panic!("settled first") };
    assert!(*served && defaulted.contains(&RaterRole::Station) && defaulted.contains(&RaterRole::Team));
    // Nothing waits but the ledger's retirement of the credits, a month on.
    let retire = lc.ledger().next_retirement().expect("the credits leave memory in time");
    assert_eq!(lc.next_wakeup(), Some(retire));
    assert_eq!(retire, closes_at + lc.policies().memory().ledger_retention());
}

/// The events of the request streams only (the ledger's are left out).
fn on_request(recs: &[Recorded]) -> Vec<Recorded> {
    recs.iter().filter(|r| matches!(r.stream, StreamId::Request(_))).cloned().collect()
}

fn vid(s: &str) -> VolunteerId {
    VolunteerId::new(s).expect("id")
}

fn posted(lc: &Lifecycle, account: &AccountId) -> i128 {
    lc.ledger().balance(account).posted()
}

/// Settles `r` (completed by `in_phase`: 60 minutes, volunteer v1) at the end of its window.
fn settle_at_window_end(lc: &mut Lifecycle, now: DateTime<Utc>) -> Vec<Recorded> {
    tick_all(lc, now + Duration::hours(72))
}

#[test]
fn a_served_request_credits_its_volunteers_and_team_in_the_same_decision() {
    let (mut lc, now, team) = in_phase(PhaseKind::Completed);
    let team = team.expect("held by a team");
    let recs = settle_at_window_end(&mut lc, now);
    // One decision: the settlement and the credits, each stream numbered from its own version.
    let ledger: Vec<&Recorded> = recs.iter().filter(|r| r.stream == StreamId::Ledger).collect();
    assert!(!ledger.is_empty());
    assert!(ledger.iter().zip(1..).all(|(r, seq)| r.seq == seq && r.at == recs[0].at));
    // 60 minutes from 07:00 local time (not night, not a holiday), normal urgency: 10 points
    // per hour for the volunteers, 2 for the team; the volunteer banks the 60 minutes.
    assert_eq!(posted(&lc, &AccountId::VolunteerMinutes(vid("v1"))), 60);
    assert_eq!(posted(&lc, &AccountId::VolunteerPoints(vid("v1"))), 10);
    assert_eq!(posted(&lc, &AccountId::TeamPoints(team)), 2);
    assert_eq!(posted(&lc, &AccountId::PointsIssuance), -12);
    lc.ledger().check().expect("the ledger balances");
    assert_eq!(lc.ledger().applied(), ledger.len() as u64);
}

#[test]
fn holidays_and_urgency_multiply_the_points_but_not_the_minutes() {
    let (mut lc, now, team) = in_phase(PhaseKind::Completed);
    let team = team.expect("held by a team");
    let day = NaiveDate::from_ymd_opt(2026, 11, 30).expect("a date");
    let policies = lc.policies().clone().with_holidays([day]);
    lc.policies = policies;
    assert!(lc.policies().is_holiday(day));
    settle_at_window_end(&mut lc, now);
    assert_eq!(posted(&lc, &AccountId::VolunteerMinutes(vid("v1"))), 60);
    assert_eq!(posted(&lc, &AccountId::VolunteerPoints(vid("v1"))), 20);
    assert_eq!(posted(&lc, &AccountId::TeamPoints(team)), 4);
}

#[test]
fn a_dispute_resolved_as_not_served_credits_nothing() {
    let (mut lc, now, _) = in_phase(PhaseKind::Completed);
    lc.execute(&evaluate("r", RaterRole::Resident, 1, vec![evaluation::Tag::NotServed]), now).expect("disputes");
    // Frozen: the window passing settles nothing while the dispute is open.
    assert!(settle_at_window_end(&mut lc, now).is_empty());
    let recs = lc
        .execute(
            &Command::Request(RequestCommand::ResolveDispute {
                request: rid("r"),
                served: false,
                note: Text::new("nobody came").expect("short text"),
            }),
            now,
        )
        .expect("resolves");
    assert_eq!(names(&recs), ["dispute_resolved", "settled", "closed"]);
    assert_eq!(lc.ledger().applied(), 0);
    assert_eq!(posted(&lc, &AccountId::VolunteerMinutes(vid("v1"))), 0);
}

#[test]
fn a_closed_account_turns_the_credit_into_a_flag_and_the_request_still_closes() {
    let (mut lc, now, _) = in_phase(PhaseKind::Completed);
    let v1 = AccountId::VolunteerMinutes(vid("v1"));
    let close = LedgerCommand::new(vec![
        LedgerOp::Open { account: v1.clone() },
        LedgerOp::Close { account: v1, reason: "left the platform".into() },
    ]);
    lc.execute(&Command::Ledger(close), now).expect("closes the account");
    let before = lc.ledger().digest();
    let recs = settle_at_window_end(&mut lc, now);
    assert_eq!(names(&recs), ["settled", "credit_failed", "closed"]);
    assert_eq!(lc.ledger().digest(), before, "no credit at all, not a partial one");
    assert_eq!(lc.request(&rid("r")).map(|s| s.phase.kind()), Some(PhaseKind::Closed));
}

#[test]
fn ledger_commands_and_reservation_expiry_run_through_the_lifecycle() {
    let (mut lc, now, _) = in_phase(PhaseKind::Completed);
    settle_at_window_end(&mut lc, now);
    let later = now + Duration::hours(80);
    let station = UnitId::new("c1-i1-s1").expect("id");
    let item = ItemId::new("rice").expect("id");
    let shelf = AccountId::Shelf { station: station.clone(), item: item.clone() };
    let receipt = AccountId::StockReceipt { station: station.clone(), item: item.clone() };
    let restock = LedgerCommand::new(vec![
        LedgerOp::Open { account: receipt.clone() },
        LedgerOp::Open { account: shelf.clone() },
        LedgerOp::Open { account: AccountId::Till(station.clone()) },
        LedgerOp::Open { account: AccountId::StockConsumed { station: station.clone(), item: item.clone() } },
        LedgerOp::Transfer {
            transfer: TransferSpec {
                id: TransferId::new("restock-1").expect("id"),
                debit: receipt,
                credit: shelf.clone(),
                amount: 3,
                kind: TransferKind::Restock {},
                timeout_s: None,
            },
        },
    ]);
    let recs = lc.execute(&Command::Ledger(restock.clone()), later).expect("restocks");
    assert!(recs.iter().all(|r| r.stream == StreamId::Ledger && matches!(r.event, Event::Ledger { .. })));
    // A retry of the same command is a no-op: no event, same state.
    assert_eq!(lc.execute(&Command::Ledger(restock), later).expect("a retry"), []);
    assert_eq!(posted(&lc, &shelf), 3);
    // A redemption reserved for pick-up within an hour: the points and the rice are set aside.
    let redeem = Redemption {
        id: TransferId::new("redeem-1").expect("id"),
        volunteer: vid("v1"),
        station,
        item,
        points: 8,
        quantity: 1,
        timeout_s: Some(3600),
    };
    lc.execute(&Command::Ledger(redeem.command().expect("valid ids")), later).expect("reserves");
    assert_eq!(lc.ledger().balance(&shelf).available(), 2);
    // Too many points for what is left: refused, nothing changes.
    let greedy = Redemption { id: TransferId::new("redeem-2").expect("id"), points: 3, ..redeem.clone() };
    let before = lc.digest();
    assert!(matches!(
        lc.execute(&Command::Ledger(greedy.command().expect("valid ids")), later),
        Err(LifecycleError::Ledger(_))
    ));
    assert_eq!(lc.digest(), before);
    // Not picked up: the ledger wakes the runtime, and its tick releases the reservation.
    let expiry = later + Duration::hours(1);
    assert_eq!(lc.next_wakeup(), Some(expiry));
    assert_eq!(lc.due(expiry).collect::<Vec<_>>(), [&StreamId::Ledger]);
    let recs = tick_all(&mut lc, expiry);
    assert_eq!(recs.len(), 2, "both legs expire");
    assert_eq!(lc.ledger().balance(&shelf).available(), 3);
    assert_eq!(lc.ledger().balance(&AccountId::VolunteerPoints(vid("v1"))).available(), 10);
    // Nothing waits but the ledger's retirement of what it settled, a month on.
    assert_eq!(lc.next_wakeup(), lc.ledger().next_retirement());
    assert!(lc.next_wakeup().is_some_and(|t| t > expiry + Duration::days(29)));
}

fn pairing_spec(id: &str, team: &str, household: &str) -> PairingSpec {
    PairingSpec {
        id: PairingId::new(id).expect("id"),
        team: tid(team),
        household: HouseholdId::new(household).expect("id"),
        unit: UnitId::new("c1-i1-s1").expect("id"),
        service: ServiceId::new("home-care").expect("id"),
        location: request("x", "c1-i1-s1", "home-care", Urgency::Normal, 1, 2).location,
        contact: request("x", "c1-i1-s1", "home-care", Urgency::Normal, 1, 2).contact,
        group: crate::request::BeneficiaryGroup::Elderly,
        rule: "FREQ=WEEKLY;BYDAY=TH".into(),
        first: NaiveDateTime::parse_from_str("2026-12-03T09:00:00", "%Y-%m-%dT%H:%M:%S").expect("time"),
        window_min: 180,
        duration_min: Some(60),
        lead_h: 24,
    }
}

#[test]
fn pairing_offers_each_slot_to_the_paired_team_first_once() {
    let mut lc = lifecycle(LifecyclePolicy::default());
    let now = t0();
    // c1-i2 is not the best-ranked team for the station, but it is paired.
    lc.execute(&Command::Pairing(PairingCommand::Pair { spec: Box::new(pairing_spec("p1", "c1-i2", "h-wang")) }), now)
        .expect("pairs");
    assert_eq!(
        lc.decide(&Command::Pairing(PairingCommand::Pair { spec: Box::new(pairing_spec("p2", "c2", "h-wang")) }), now),
        Err(LifecycleError::HouseholdPaired {
            household: HouseholdId::new("h-wang").expect("id"),
            pairing: PairingId::new("p1").expect("id"),
        })
    );
    // Thursday 09:00 Beijing = 01:00 UTC; made 24 h ahead.
    let release = lc.next_wakeup().expect("a slot is scheduled");
    assert_eq!(release.to_rfc3339(), "2026-12-02T01:00:00+00:00");
    assert!(tick_all(&mut lc, release - Duration::minutes(1)).is_empty());
    let recs = tick_all(&mut lc, release);
    assert_eq!(names(&recs), ["visit_scheduled", "submitted", "offered"]);
    assert_eq!(offers(&recs), [("c1-i2".to_owned(), OfferMode::Paired)]);
    assert!(tick_all(&mut lc, release).is_empty(), "a slot makes its request once");
    let req = rid("p1:20261203T0100");
    let recs = lc
        .execute(
            &Command::Request(RequestCommand::Decline {
                request: req.clone(),
                team: tid("c1-i2"),
                reason: DeclineReason::NoVolunteers,
            }),
            release,
        )
        .expect("declines");
    assert_eq!(names(&recs), ["declined", "offered"]);
    assert_eq!(offers(&recs)[0].1, OfferMode::Ranked);
    // The next week's slot follows.
    assert_eq!(
        lc.pairing(&PairingId::new("p1").expect("id")).expect("known").next.map(|t| t.to_rfc3339()),
        Some("2026-12-10T01:00:00+00:00".to_owned())
    );
    lc.execute(
        &Command::Pairing(PairingCommand::Unpair {
            pairing: PairingId::new("p1").expect("id"),
            reason: Text::new("moved").expect("short text"),
        }),
        release,
    )
    .expect("unpairs");
    lc.execute(&Command::Pairing(PairingCommand::Pair { spec: Box::new(pairing_spec("p2", "c2", "h-wang")) }), release)
        .expect("the household is free again");
}

#[test]
fn replaying_the_log_rebuilds_the_state() {
    let mut lc = lifecycle(LifecyclePolicy { emergency_fanout: 2, ..LifecyclePolicy::default() });
    let mut log = Vec::new();
    let now = t0();
    log.extend(
        lc.execute(
            &Command::Pairing(PairingCommand::Pair { spec: Box::new(pairing_spec("p1", "c1-s2", "h-li")) }),
            now,
        )
        .expect("pairs"),
    );
    for (i, (unit, service, urgency)) in [
        ("c1-i1-s1", "home-care", Urgency::Normal),
        ("c1-i2-s2", "home-care", Urgency::Urgent),
        ("c2-i1-s1", "rescue", Urgency::Emergency),
        ("c1-i1-s2", "haircut", Urgency::Normal),
    ]
    .into_iter()
    .enumerate()
    {
        let spec = request(&format!("q{i}"), unit, service, urgency, 3 + i as i64, 5);
        log.extend(lc.execute(&Command::Request(RequestCommand::Submit { spec }), now).expect("submits"));
    }
    let open = open_teams(&lc, "q0");
    log.extend(
        lc.execute(&Command::Request(RequestCommand::Accept { request: rid("q0"), team: tid(&open[0]) }), now)
            .expect("accepts"),
    );
    for h in [1, 2, 30, 50, 100] {
        log.extend(tick_all(&mut lc, now + Duration::hours(h)));
    }
    let mut again = lifecycle(LifecyclePolicy { emergency_fanout: 2, ..LifecyclePolicy::default() });
    for r in &log {
        again.apply(r).expect("the log applies");
    }
    assert_eq!(again.digest(), lc.digest());
    assert_eq!(again.applied(), log.len() as u64);
    // Out-of-order and foreign events are refused.
    let mut third = lifecycle(LifecyclePolicy::default());
    let second = log.iter().find(|r| r.seq == 2).expect("a second event");
    assert!(matches!(third.apply(second), Err(ApplyError::OutOfOrder { .. })));
    // Events serialise and come back equal.
    let text = serde_json::to_string(&log).expect("serialises");
    let back: Vec<Recorded> = serde_json::from_str(&text).expect("parses");
    assert_eq!(back, log);
}

#[test]
fn masked_events_hide_contacts() {
    let mut lc = lifecycle(LifecyclePolicy::default());
    let recs = lc
        .execute(
            &Command::Request(RequestCommand::Submit {
                spec: request("r", "c1-i1-s1", "home-care", Urgency::Normal, 2, 4),
            }),
            t0(),
        )
        .expect("submits");
    let clear = serde_json::to_string(&recs[0]).expect("serialises");
    assert!(clear.contains("13812345678"));
    let masked = serde_json::to_string(&recs[0].masked()).expect("serialises");
    assert!(!masked.contains("13812345678") && !masked.contains("402") && !masked.contains("桂兰"), "{masked}");
    assert!(masked.contains("138****5678"));
}

/// Renders the state × command table as markdown: `ok` or the refusal.
fn table_markdown() -> String {
    let r = rid("r");
    let mut s = String::from("| phase \\ command |");
    for c in CommandKind::ALL {
        s.push_str(&format!(" {} |", serde_json::to_string(&c).expect("names").trim_matches('"')));
    }
    s.push_str("\n| --- |");
    for _ in CommandKind::ALL {
        s.push_str(" --- |");
    }
    s.push('\n');
    for p in PhaseKind::ALL {
        s.push_str(&format!("| {} |", serde_json::to_string(&p).expect("names").trim_matches('"')));
        for c in CommandKind::ALL {
            let cell = match check(&r, p, c) {
                Ok(()) => "**ok**",
                Err(LifecycleError::UnknownRequest { .. }) => "unknown_request",
                Err(LifecycleError::DuplicateRequest { .. }) => "duplicate_request",
                Err(LifecycleError::AlreadyTaken { .. }) => "already_taken",
                Err(LifecycleError::WrongPhase { .. }) => "wrong_phase",
                Err(LifecycleError::Terminal { .. }) => "terminal",
                Err(e) => panic!("the table gives an unexpected refusal: {e}"),
            };
            s.push_str(&format!(" {cell} |"));
        }
        s.push('\n');
    }
    s
}

#[test]
fn the_table_in_the_docs_is_the_code() {
    let doc = include_str!("../../../../docs/lifecycle.md");
    let table = table_markdown();
    assert!(doc.contains(&table), "docs/lifecycle.md must contain the table as the code has it:\n{table}");
}

fn evaluate(r: &str, role: RaterRole, score: u8, tags: Vec<evaluation::Tag>) -> Command {
    Command::Request(RequestCommand::Evaluate {
        request: rid(r),
        role,
        score: Score::new(score).expect("a valid score"),
        tags: Tags::new(tags).expect("valid tags"),
        comment: None,
    })
}

#[test]
fn a_dispute_freezes_settlement_until_the_station_resolves_it() {
    let (mut lc, now, team) = in_phase(PhaseKind::Completed);
    let team = lc.dispatcher().index().idx(&team.expect("served")).expect("known");
    let recs = lc
        .execute(&evaluate("r", RaterRole::Resident, 1, vec![evaluation::Tag::NotServed, evaluation::Tag::Late]), now)
        .expect("rates");
    assert_eq!(names(&recs), ["evaluated", "disputed"]);
    for role in [RaterRole::Station, RaterRole::Team] {
        let recs = lc.execute(&evaluate("r", role, 5, vec![]), now).expect("rates");
        assert_eq!(names(&recs), ["evaluated"], "nothing settles while disputed");
    }
    assert!(tick_all(&mut lc, now + Duration::hours(100)).is_empty(), "the window does not close a dispute");
    assert!(lc.request(&rid("r")).expect("known").disputed);
    let recs = lc
        .execute(
            &Command::Request(RequestCommand::ResolveDispute {
                request: rid("r"),
                served: false,
                note: Text::new("household confirms").expect("short text"),
            }),
            now,
        )
        .expect("resolves");
    assert_eq!(names(&recs), ["dispute_resolved", "settled", "closed"]);
    assert!(matches!(recs[1].event, Event::Settled { served: false, .. }));
    let rep = lc.dispatcher().index().get(team).reputation.expect("rated");
    assert!(rep < 0.6, "a service found not given lowers the standing: {rep}");
    assert!(matches!(
        lc.decide(
            &Command::Request(RequestCommand::ResolveDispute {
                request: rid("r"),
                served: true,
                note: Text::default()
            }),
            now
        ),
        Err(LifecycleError::Terminal { .. })
    ));
}

#[test]
fn third_party_ratings_only_for_sampled_requests() {
    let (lc, now, _) = in_phase(PhaseKind::Completed);
    let st = lc.request(&rid("r")).expect("known");
    let res = lc.decide(&evaluate("r", RaterRole::ThirdParty, 4, vec![]), now);
    if st.sampled {
        assert!(res.is_ok());
    } else {
        assert_eq!(res, Err(LifecycleError::NotSampled { request: rid("r") }));
    }
    let too_many = vec![evaluation::Tag::Punctual; evaluation::MAX_TAGS + 1];
    assert_eq!(Tags::new(too_many), Err(ValueError::TooManyTags { count: evaluation::MAX_TAGS + 1 }));
}

#[test]
fn settled_ratings_move_the_standing_used_in_dispatch() {
    let mut lc = lifecycle(LifecyclePolicy::default());
    let mut now = t0();
    let good = tid("c1-s1-a");
    let idx = lc.dispatcher().index().idx(&good).expect("known");
    for i in 0..12 {
        let id = format!("g{i}");
        let r = rid(&id);
        let recs = lc
            .execute(
                &Command::Request(RequestCommand::Submit {
                    spec: request(&id, "c1-i1-s1", "home-care", Urgency::Normal, 2 + 6 * i, 4),
                }),
                now,
            )
            .expect("submits");
        let team = tid(&offers(&recs)[0].0);
        for c in [
            Command::Request(RequestCommand::Accept { request: r.clone(), team: team.clone() }),
            Command::Request(RequestCommand::CheckIn { request: r.clone(), team: team.clone() }),
            Command::Request(RequestCommand::Complete {
                request: r.clone(),
                team: team.clone(),
                minutes: ServiceMinutes::new(60).expect("valid minutes"),
                volunteers: Volunteers::new(vec![]).expect("valid volunteers"),
            }),
        ] {
            lc.execute(&c, now).expect("serves");
        }
        let score = if team == good { 5 } else { 2 };
        for role in [RaterRole::Resident, RaterRole::Station, RaterRole::Team] {
            lc.execute(&evaluate(&id, role, score, vec![]), now).expect("rates");
        }
        if lc.request(&r).expect("known").sampled {
            lc.execute(&evaluate(&id, RaterRole::ThirdParty, score, vec![]), now).expect("rates");
        }
        assert_eq!(lc.request(&r).expect("known").phase, Phase::Closed);
        now += Duration::hours(6);
    }
    let rep = lc.dispatcher().index().get(idx).reputation.expect("rated");
    let s = lc.standing(idx);
    assert!(s.count > 0 && rep > 0.6, "five-star service raises the standing: {rep} after {} ratings", s.count);
    assert!((lc.reputation_model().value(&s, s.last.expect("rated")) - rep).abs() < 1e-12);
}

#[test]
fn the_clock_itself_refuses_a_late_check_in_or_rating() {
    // Held, the window over, the tick not yet run: checking in is refused, nothing changes.
    let (mut lc, _, team) = in_phase(PhaseKind::Held);
    let team = team.expect("held by a team");
    let end = lc.request(&rid("r")).expect("known").request.window().end();
    let before = lc.digest();
    assert_eq!(
        lc.decide(&Command::Request(RequestCommand::CheckIn { request: rid("r"), team: team.clone() }), end),
        Err(LifecycleError::WindowPassed { request: rid("r"), end })
    );
    assert_eq!(lc.digest(), before);
    lc.execute(&Command::Request(RequestCommand::CheckIn { request: rid("r"), team }), end - Duration::milliseconds(1))
        .expect("in time");

    // Completed, the evaluation window over: a rating is refused, the tick settles with defaults.
    let (mut lc, now, _) = in_phase(PhaseKind::Completed);
    let closed = now + Duration::hours(72);
    let rate = |score| {
        Command::Request(RequestCommand::Evaluate {
            request: rid("r"),
            role: RaterRole::Station,
            score,
            tags: Tags::new(vec![]).expect("valid tags"),
            comment: None,
        })
    };
    assert_eq!(
        lc.decide(&rate(Score::new(4).expect("valid")), closed),
        Err(LifecycleError::EvaluationClosed { request: rid("r"), closed })
    );
    lc.execute(&rate(Score::new(4).expect("valid")), closed - Duration::milliseconds(1)).expect("in time");
}

#[test]
fn a_disputed_request_takes_ratings_after_its_window() {
    // In dispute, the request waits for the station, not for the clock: the
    // window has no end, so a late rating is still taken.
    let (mut lc, now, _) = in_phase(PhaseKind::Completed);
    lc.execute(&evaluate("r", RaterRole::Resident, 1, vec![evaluation::Tag::NotServed]), now).expect("disputes");
    let late = now + Duration::hours(72);
    lc.execute(&evaluate("r", RaterRole::Station, 4, vec![]), late).expect("a rating during a dispute is not late");
}

fn barber_team(id: &str) -> TeamSpec {
    let v = serde_json::json!({
        "id": id, "name": id, "unit": "c1-i1-s1",
        "base": {"lat": crate::testkit::HOME.0, "lon": crate::testkit::HOME.1},
        "reach_km": 30.0, "skills": ["barber"], "members": 3, "capacity": 1,
    });
    serde_json::from_value(v).expect("a valid team")
}

fn roster(cmd: RosterCommand) -> Command {
    Command::Roster(cmd)
}

/// Replays `log` into a fresh lifecycle and checks it ends in the live state, and that a
/// snapshot of the live state restores to it too.
fn replays_to(lc: &Lifecycle, log: &[Recorded]) {
    let mut fresh = lifecycle(*lc.policies().default_policy());
    for rec in log {
        fresh.apply(rec).expect("the log applies");
    }
    assert_eq!(fresh.digest(), lc.digest(), "a replay gives the live state");
    let (city, index) = tiny_city();
    let back = Lifecycle::restore(Dispatcher::new(city, index), lc.policies().clone(), lc.snapshot())
        .expect("the snapshot restores");
    assert_eq!(back.digest(), lc.digest(), "a snapshot gives the live state");
}

#[test]
fn a_team_added_at_run_time_is_offered_what_nobody_could_serve_before() {
    let mut lc = lifecycle(LifecyclePolicy::default());
    let now = t0();
    let mut log = Vec::new();
    let haircut = |id: &str| {
        Command::Request(RequestCommand::Submit { spec: request(id, "c1-i1-s1", "haircut", Urgency::Normal, 3, 4) })
    };
    let recs = lc.execute(&haircut("h1"), now).expect("submits");
    assert_eq!(names(&recs).last(), Some(&"unfulfillable"), "no barber yet");
    log.extend(recs);
    let recs =
        lc.execute(&roster(RosterCommand::AddTeam { spec: Box::new(barber_team("barber-1")) }), now).expect("adds");
    assert_eq!(names(&recs), ["team_added"]);
    assert_eq!(recs[0].stream, StreamId::Team(tid("barber-1")));
    log.extend(recs);
    let recs = lc.execute(&haircut("h2"), now).expect("submits");
    assert_eq!(offers(&recs), [("barber-1".to_owned(), OfferMode::Ranked)]);
    log.extend(recs);
    // The same team twice is refused, naming the field.
    assert!(matches!(
        lc.decide(&roster(RosterCommand::AddTeam { spec: Box::new(barber_team("barber-1")) }), now),
        Err(LifecycleError::Team(TeamError { field: "id", .. }))
    ));
    replays_to(&lc, &log);
}

#[test]
fn a_deactivated_team_loses_its_offers_and_the_requests_go_to_others() {
    let mut lc = lifecycle(LifecyclePolicy::default());
    let now = t0();
    let mut log = Vec::new();
    let submit =
        Command::Request(RequestCommand::Submit { spec: request("r", "c1-i1-s1", "home-care", Urgency::Normal, 2, 4) });
    let recs = lc.execute(&submit, now).expect("submits");
    let (first, _) = offers(&recs).first().cloned().expect("an offer");
    log.extend(recs);
    let off = roster(RosterCommand::Deactivate { team: tid(&first), reason: Text::new("on leave").expect("short") });
    let recs = lc.execute(&off, now).expect("deactivates");
    // The offer is withdrawn and the request offered to another team in the same decision.
    assert_eq!(names(&recs), ["team_deactivated", "offer_withdrawn", "offered"]);
    assert_eq!(recs[1].stream, StreamId::Request(rid("r")));
    assert_eq!(recs[2].stream, StreamId::Request(rid("r")));
    let again = offers(&recs);
    assert_ne!(again[0].0, first, "never the deactivated team");
    log.extend(recs);
    assert_eq!(open_teams(&lc, "r"), [again[0].0.clone()]);
    assert_eq!(
        lc.decide(&off, now),
        Err(LifecycleError::TeamInactive { team: tid(&first) }),
        "deactivating twice is refused"
    );
    let on = roster(RosterCommand::Reactivate { team: tid(&first) });
    log.extend(lc.execute(&on, now).expect("reactivates"));
    assert_eq!(lc.decide(&on, now), Err(LifecycleError::TeamActive { team: tid(&first) }));
    assert!(lc.dispatcher().index().get(lc.dispatcher().index().idx(&tid(&first)).expect("known")).active);
    replays_to(&lc, &log);
}

#[test]
fn a_team_changed_at_run_time_is_reindexed_and_bad_changes_are_refused() {
    let mut lc = lifecycle(LifecyclePolicy::default());
    let now = t0();
    let mut log = Vec::new();
    let change = |team: &str, change: TeamChange| roster(RosterCommand::ChangeTeam { team: tid(team), change });
    // c1-s1-a learns to cut hair: the haircut nobody could give goes to it.
    let skills = TeamChange {
        skills: Some(vec![SkillId::new("elder-care").expect("id"), SkillId::new("barber").expect("id")]),
        ..TeamChange::default()
    };
    log.extend(lc.execute(&change("c1-s1-a", skills), now).expect("changes"));
    let recs = lc
        .execute(
            &Command::Request(RequestCommand::Submit {
                spec: request("h", "c1-i1-s1", "haircut", Urgency::Normal, 3, 4),
            }),
            now,
        )
        .expect("submits");
    assert_eq!(offers(&recs), [("c1-s1-a".to_owned(), OfferMode::Ranked)]);
    log.extend(recs);
    // Moved far away, with a short reach, it is no longer a candidate here.
    let far = TeamChange {
        base: Some(crate::geo::Location::new(30.0, 110.0).expect("a location")),
        reach_km: Some(5.0),
        capacity: Some(3),
        ..TeamChange::default()
    };
    log.extend(lc.execute(&change("c1-s1-a", far), now).expect("moves"));
    let recs = lc
        .execute(
            &Command::Request(RequestCommand::Submit {
                spec: request("r", "c1-i1-s1", "home-care", Urgency::Normal, 3, 4),
            }),
            now,
        )
        .expect("submits");
    assert!(offers(&recs).iter().all(|(t, _)| t != "c1-s1-a"), "{:?}", offers(&recs));
    log.extend(recs);
    let idx = lc.dispatcher().index().idx(&tid("c1-s1-a")).expect("known");
    assert_eq!(lc.dispatcher().index().get(idx).capacity, 3);
    // Refusals name the field and change nothing.
    let before = lc.digest();
    let unknown = TeamChange { skills: Some(vec![SkillId::new("juggling").expect("id")]), ..TeamChange::default() };
    assert!(matches!(
        lc.decide(&change("c1-s1-a", unknown), now),
        Err(LifecycleError::Team(TeamError { field: "skills", .. }))
    ));
    let zero = TeamChange { capacity: Some(0), ..TeamChange::default() };
    assert!(matches!(
        lc.decide(&change("c1-s1-a", zero), now),
        Err(LifecycleError::Team(TeamError { field: "capacity", .. }))
    ));
    let reach = TeamChange { reach_km: Some(f64::NAN), ..TeamChange::default() };
    assert!(matches!(
        lc.decide(&change("c1-s1-a", reach), now),
        Err(LifecycleError::Team(TeamError { field: "reach_km", .. }))
    ));
    assert_eq!(
        lc.decide(&change("c1-s1-a", TeamChange::default()), now),
        Err(LifecycleError::EmptyChange { team: tid("c1-s1-a") })
    );
    assert!(matches!(
        lc.decide(&change("nobody", TeamChange { capacity: Some(2), ..TeamChange::default() }), now),
        Err(LifecycleError::Team(TeamError { field: "id", .. }))
    ));
    assert_eq!(lc.digest(), before);
    replays_to(&lc, &log);
}

#[test]
fn ended_requests_leave_memory_after_the_retention_and_their_ids_stay_taken() {
    let policy = LifecyclePolicy { retention_h: 24, ..LifecyclePolicy::default() };
    let mut lc = lifecycle(policy);
    let now = t0();
    let mut log = Vec::new();
    let submit = |id: &str, start_h| {
        Command::Request(RequestCommand::Submit {
            spec: request(id, "c1-i1-s1", "home-care", Urgency::Normal, start_h, 4),
        })
    };
    log.extend(lc.execute(&submit("a", 2), now).expect("submits"));
    log.extend(lc.execute(&submit("b", 2), now).expect("submits"));
    let cancel =
        Command::Request(RequestCommand::Cancel { request: rid("a"), reason: Text::new("not needed").expect("short") });
    log.extend(lc.execute(&cancel, now).expect("cancels"));
    // Before the retention passes, the ended request is still in memory.
    let soon = now + Duration::hours(23);
    log.extend(lc.execute(&submit("c", 30), soon).expect("submits"));
    assert!(lc.request(&rid("a")).is_some());
    // The first event after it retires it; the open ones stay.
    let later = now + Duration::hours(25);
    log.extend(lc.execute(&submit("d", 30), later).expect("submits"));
    assert!(lc.request(&rid("a")).is_none());
    assert!(lc.is_retired(&rid("a")) && !lc.is_retired(&rid("c")));
    assert_eq!(lc.retired(), 1);
    assert!(lc.request(&rid("c")).is_some() && lc.request(&rid("d")).is_some());
    // Its id is never taken again, and commands to it say why.
    assert_eq!(lc.decide(&submit("a", 40), later), Err(LifecycleError::Retired { request: rid("a") }));
    assert_eq!(lc.decide(&cancel, later), Err(LifecycleError::Retired { request: rid("a") }));
    // The wake-up queue still serves the requests moved into the freed slot.
    assert!(lc.due(later + Duration::days(3)).any(|s| *s == StreamId::Request(rid("d"))));
    assert_eq!(lc.needs_stream_check(&submit("a", 40)), None, "memory alone answers for now");
    replays_to(&lc, &log);
    // The memory policy's `retired_ids_days` after it left, its id is forgotten with the first
    // event after; a new request under it is then for the store to refuse (its stream exists).
    let forgotten = now + Duration::hours(24) + lc.policies().memory().retired_id_memory();
    let before_forgetting = forgotten - Duration::seconds(1);
    log.extend(lc.execute(&submit("e", 760), before_forgetting).expect("submits"));
    assert!(lc.is_retired(&rid("a")) && !lc.may_have_forgotten());
    log.extend(lc.execute(&submit("f", 760), forgotten).expect("submits"));
    assert!(!lc.is_retired(&rid("a")) && lc.may_have_forgotten());
    assert_eq!(lc.needs_stream_check(&submit("a", 40)), Some(&rid("a")));
    assert_eq!(lc.needs_stream_check(&submit("f", 40)), None, "a request in memory is known");
    assert_eq!(lc.needs_stream_check(&cancel), None, "only a new request asks");
    replays_to(&lc, &log);
}

#[test]
fn requests_dispatched_again_in_one_decision_respect_each_others_offers() {
    let mut lc = lifecycle(LifecyclePolicy::default());
    let now = t0();
    let mut log = Vec::new();
    // With c1-s1-b off, both requests go to c1-s1-a (capacity 2) ...
    let b_off = roster(RosterCommand::Deactivate { team: tid("c1-s1-b"), reason: Text::new("away").expect("short") });
    log.extend(lc.execute(&b_off, now).expect("deactivates"));
    let mut first = Vec::new();
    for id in ["r", "s"] {
        let spec = request(id, "c1-i1-s1", "home-care", Urgency::Normal, 2, 4);
        let recs = lc.execute(&Command::Request(RequestCommand::Submit { spec }), now).expect("submits");
        first.extend(offers(&recs).into_iter().map(|(t, _)| t));
        log.extend(recs);
    }
    assert_eq!(first, ["c1-s1-a", "c1-s1-a"]);
    // ... then c1-s1-b comes back with room for one.
    let one = TeamChange { capacity: Some(1), ..TeamChange::default() };
    log.extend(
        lc.execute(&roster(RosterCommand::ChangeTeam { team: tid("c1-s1-b"), change: one }), now).expect("changes"),
    );
    log.extend(lc.execute(&roster(RosterCommand::Reactivate { team: tid("c1-s1-b") }), now).expect("reactivates"));
    let off =
        roster(RosterCommand::Deactivate { team: tid("c1-s1-a"), reason: Text::new("bus broke").expect("short") });
    let recs = lc.execute(&off, now).expect("deactivates");
    let again: Vec<String> = offers(&recs).into_iter().map(|(t, _)| t).collect();
    assert_eq!(again.len(), 2, "{:?}", names(&recs));
    assert_ne!(again[0], again[1], "c1-s1-b has room for one of them only: {again:?}");
    log.extend(recs);
    for t in lc.dispatcher().index().records() {
        assert!(t.load <= t.capacity, "{} holds {} of {}", t.id, t.load, t.capacity);
    }
    replays_to(&lc, &log);
}

/// Serves a request of `household` at `now` (submit, accept, check in, complete), logging it;
/// returns the team that served.
fn serve_household(
    lc: &mut Lifecycle,
    log: &mut Vec<Recorded>,
    id: &str,
    household: &HouseholdId,
    now: DateTime<Utc>,
) -> TeamId {
    let start_h = (now - t0()).num_hours() + 2;
    let mut spec = request(id, "c1-i1-s1", "home-care", Urgency::Normal, start_h, 4);
    spec.household = Some(household.clone());
    let recs = lc.execute(&Command::Request(RequestCommand::Submit { spec }), now).expect("submits");
    let team = tid(&offers(&recs)[0].0);
    log.extend(recs);
    let r = rid(id);
    for c in [
        RequestCommand::Accept { request: r.clone(), team: team.clone() },
        RequestCommand::CheckIn { request: r.clone(), team: team.clone() },
        RequestCommand::Complete {
            request: r.clone(),
            team: team.clone(),
            minutes: ServiceMinutes::new(60).expect("valid minutes"),
            volunteers: Volunteers::new(vec![]).expect("valid volunteers"),
        },
    ] {
        log.extend(lc.execute(&Command::Request(c), now).expect("serves"));
    }
    team
}

#[test]
fn a_team_counts_as_having_served_a_household_for_the_continuity_window() {
    let mut lc = lifecycle(LifecyclePolicy::default());
    let mut log = Vec::new();
    let regular = HouseholdId::new("h-regular").expect("id");
    let window = lc.policies().memory().continuity();
    let first = t0();
    let team = serve_household(&mut lc, &mut log, "a", &regular, first);
    let idx = lc.dispatcher().index().idx(&team).expect("known");
    let served = |lc: &Lifecycle| lc.dispatcher().index().get(idx).has_served(&regular);
    assert!(served(&lc));
    // Served again before the window ends (by whichever team is offered): the window restarts.
    let again = first + window - Duration::days(1);
    let second = serve_household(&mut lc, &mut log, "b", &regular, again);
    let (snapshot, cut) = (lc.snapshot(), log.len());
    // The first service's window passes: the team still counts if it served the second time.
    let other = HouseholdId::new("h-other").expect("id");
    serve_household(&mut lc, &mut log, "c", &other, first + window + Duration::hours(1));
    assert_eq!(served(&lc), second == team, "forgotten unless served again");
    let idx2 = lc.dispatcher().index().idx(&second).expect("known");
    assert!(lc.dispatcher().index().get(idx2).has_served(&regular));
    replays_to(&lc, &log);
    // The second service's window passes too: no team counts any more.
    serve_household(&mut lc, &mut log, "d", &other, again + window + Duration::hours(1));
    assert!(!lc.dispatcher().index().get(idx2).has_served(&regular) && !served(&lc));
    replays_to(&lc, &log);
    // A lifecycle restored from the snapshot in between forgets the same services at the same points.
    let (city, index) = tiny_city();
    let mut back = Lifecycle::restore(Dispatcher::new(city, index), lc.policies().clone(), snapshot).expect("restores");
    for rec in &log[cut..] {
        back.apply(rec).expect("the rest of the log applies");
    }
    assert_eq!(back.digest(), lc.digest());
}

#[test]
fn households_declared_in_the_team_file_count_for_ever() {
    let (city, mut index) = tiny_city();
    let declared = HouseholdId::new("h-declared").expect("id");
    let team = tid("c1-s1-a");
    let idx = index.idx(&team).expect("known");
    let mut d = index.dynamics(idx);
    d.households_served.push((declared.clone(), None));
    index.set_dynamics(idx, d);
    let mut lc =
        Lifecycle::new(Dispatcher::new(city, index), PolicyBook::uniform(LifecyclePolicy::default()).expect("valid"));
    let mut log = Vec::new();
    let later = t0() + lc.policies().memory().continuity() * 3;
    serve_household(&mut lc, &mut log, "a", &declared, t0());
    serve_household(&mut lc, &mut log, "b", &HouseholdId::new("h-other").expect("id"), later);
    assert!(lc.dispatcher().index().get(idx).has_served(&declared));
}

/// Service credits come from a served settlement only: one sent as a ledger command is refused,
/// so a request never credits an account twice, even after its credits left memory.
#[test]
fn a_service_credit_sent_as_a_ledger_command_is_refused() {
    let (mut lc, now, _) = in_phase(PhaseKind::Completed);
    let recs = settle_at_window_end(&mut lc, now);
    let credit = recs
        .iter()
        .find_map(|r| match &r.event {
            Event::Ledger { entry: crate::ledger::LedgerEvent::Transferred { transfer } } => Some(transfer.clone()),
            _ => None,
        })
        .expect("a credit");
    let again = TransferSpec {
        id: credit.id.clone(),
        debit: credit.debit.clone(),
        credit: credit.credit.clone(),
        amount: credit.amount,
        kind: credit.kind.clone(),
        timeout_s: None,
    };
    let before = lc.digest();
    let later = now + Duration::days(40);
    assert_eq!(
        lc.decide(&Command::Ledger(LedgerCommand::transfers([again])), later),
        Err(LifecycleError::Ledger(crate::ledger::LedgerError::KindNotAllowed {
            transfer: credit.id.clone(),
            kind: credit.kind.kind_name()
        }))
    );
    assert_eq!(lc.digest(), before);
}

/// Ids of the form of a pairing's visit are kept for the visits.
#[test]
fn a_resident_request_may_not_take_a_visit_id() {
    use crate::lifecycle::pairing::is_visit_request_id;
    for (id, visit) in
        [("p1:20261205T0100", true), ("p1:20261205T010", false), ("p1:2026120XT0100", false), ("r-1", false)]
    {
        assert_eq!(is_visit_request_id(&rid(id)), visit, "{id}");
    }
    let mut lc = lifecycle(LifecyclePolicy::default());
    let spec = request("p1:20261205T0100", "c1-i1-s1", "home-care", Urgency::Normal, 2, 4);
    assert_eq!(
        lc.execute(&Command::Request(RequestCommand::Submit { spec }), t0()),
        Err(LifecycleError::ReservedRequestId { request: rid("p1:20261205T0100") })
    );
}

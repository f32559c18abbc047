//! How the simulated teams and residents act on what the log tells them:
//! teams answer offers, arrive (or not), serve and rate; residents cancel,
//! rate and dispute; stations resolve disputes. Each reaction is a command
//! scheduled for a later instant, drawn from the seeded [`Behaviour`].

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};
use sidan_core::id::{RequestId, ServiceId, TeamId, VolunteerId};
use sidan_core::lifecycle::{
    Command, Event, OfferMode, RequestCommand, Score, ServiceMinutes, StreamId, Tags, Text, Volunteers,
};
use sidan_core::request::Urgency;
use sidan_runtime::Stored;

use crate::behaviour::{Answer, Behaviour};

/// What the driver remembers of a request to act on it.
#[derive(Debug, Clone)]
pub(crate) struct Known {
    urgency: Urgency,
    window_start: DateTime<Utc>,
    window_end: DateTime<Utc>,
    duration_min: u32,
}

/// What the simulated parties know of the city.
pub(crate) struct Parties<'a> {
    pub(crate) members: &'a HashMap<TeamId, u32>,
    pub(crate) durations: &'a HashMap<ServiceId, u32>,
}

/// Decides what the simulated parties do about one stored event.
pub(crate) fn react(
    s: &Stored,
    now: DateTime<Utc>,
    b: &mut Behaviour,
    known: &mut HashMap<RequestId, Known>,
    parties: &Parties<'_>,
    schedule: &mut dyn FnMut(DateTime<Utc>, Command),
) {
    let StreamId::Request(request) = &s.record.stream else { return };
    let request = request.clone();
    match &s.record.event {
        Event::Submitted { spec, .. } => {
            let duration_min =
                spec.duration_min.or_else(|| parties.durations.get(&spec.service).copied()).unwrap_or(60);
            let k = Known {
                urgency: spec.urgency,
                window_start: spec.window.start(),
                window_end: spec.window.end(),
                duration_min,
            };
            if let Some(f) = b.cancel() {
                let wait = (k.window_start - now).max(Duration::minutes(10));
                let at = now + Duration::seconds((wait.num_seconds() as f64 * f) as i64);
                schedule(
                    at,
                    Command::Request(RequestCommand::Cancel {
                        request: request.clone(),
                        reason: Text::new("no longer needed").expect("short text"),
                    }),
                );
            }
            known.insert(request, k);
        }
        Event::Offered { team, deadline, mode } => {
            let Some(k) = known.get(&request) else { return };
            match b.answer(k.urgency, *mode == OfferMode::Recruitment) {
                Answer::Accept(after) if now + after < *deadline => {
                    schedule(now + after, Command::Request(RequestCommand::Accept { request, team: team.clone() }));
                }
                Answer::Decline(after, reason) if now + after < *deadline => {
                    schedule(
                        now + after,
                        Command::Request(RequestCommand::Decline { request, team: team.clone(), reason }),
                    );
                }
                _ => {}
            }
        }
        Event::Accepted { team } => {
            let Some(k) = known.get(&request) else { return };
            let slack = (k.window_end - k.window_start).num_minutes() - i64::from(k.duration_min);
            if b.no_show() {
                // The station notices an hour into the window.
                let at = (k.window_start + Duration::hours(1)).max(now);
                schedule(at, Command::Request(RequestCommand::ReportNoShow { request, team: team.clone() }));
            } else {
                let at = k.window_start.max(now) + b.arrival_delay(slack / 2);
                schedule(at, Command::Request(RequestCommand::CheckIn { request, team: team.clone() }));
            }
        }
        Event::CheckedIn { team } => {
            let Some(k) = known.get(&request) else { return };
            let minutes = b.service_minutes(k.duration_min);
            let n = b.volunteers(parties.members.get(team).copied().unwrap_or(1));
            let volunteers = (1..=n).filter_map(|i| VolunteerId::new(&format!("{team}-v{i}")).ok()).collect();
            let at = now + Duration::minutes(i64::from(minutes));
            // The behaviour draws minutes and teams of sizes the types accept; a draw they
            // refuse would be a bug of the model, and the team simply does not report.
            let (Ok(minutes), Ok(volunteers)) = (ServiceMinutes::new(minutes), Volunteers::new(volunteers)) else {
                return;
            };
            schedule(
                at,
                Command::Request(RequestCommand::Complete { request, team: team.clone(), minutes, volunteers }),
            );
        }
        Event::Completed { sampled, .. } => {
            for (role, score, tags, after) in b.ratings(*sampled) {
                let (Ok(score), Ok(tags)) = (Score::new(score), Tags::new(tags)) else { continue };
                schedule(
                    now + after,
                    Command::Request(RequestCommand::Evaluate {
                        request: request.clone(),
                        role,
                        score,
                        tags,
                        comment: None,
                    }),
                );
            }
        }
        Event::Disputed { .. } => {
            let (served, after) = b.resolve_dispute();
            let note = if served { "the household confirmed the visit" } else { "no visit took place" };
            schedule(
                now + after,
                Command::Request(RequestCommand::ResolveDispute {
                    request,
                    served,
                    note: Text::new(note).unwrap_or_default(),
                }),
            );
        }
        _ => {}
    }
}

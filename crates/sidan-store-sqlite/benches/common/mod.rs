//! The workload the store benches share: a generated city's requests, each through its whole
//! life in the core, as the log a store writes and an engine replays.

#![allow(dead_code)]

use chrono::{DateTime, Utc};
use sidan_core::dispatch::Dispatcher;
use sidan_core::geo::StraightLine;
use sidan_core::id::{TeamId, VolunteerId};
use sidan_core::lifecycle::{
    Command, Event, Lifecycle, PolicyBook, RaterRole, Recorded, RequestCommand, Score, ServiceMinutes, Tags, Volunteers,
};
use sidan_core::request::RequestSpec;
use sidan_runtime::{Engine, EngineBuilder};
use sidan_sim::{CityConfig, DemandConfig, generate_city, generate_requests};

/// Teams in the generated city.
pub const TEAMS: usize = 6_000;

/// A number from the environment, or `default`.
pub fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

pub fn offered(events: &[Recorded]) -> Option<TeamId> {
    events.iter().find_map(|r| match &r.event {
        Event::Offered { team, .. } => Some(team.clone()),
        _ => None,
    })
}

/// The commands that follow an accepted offer (as in the lifecycle bench).
pub fn after_offer(spec: &RequestSpec, team: &TeamId) -> Vec<Command> {
    let request = spec.id.clone();
    let mut cmds = vec![
        Command::Request(RequestCommand::Accept { request: request.clone(), team: team.clone() }),
        Command::Request(RequestCommand::CheckIn { request: request.clone(), team: team.clone() }),
        Command::Request(RequestCommand::Complete {
            request: request.clone(),
            team: team.clone(),
            minutes: ServiceMinutes::new(60).expect("valid minutes"),
            volunteers: Volunteers::new(vec![VolunteerId::new("v1").expect("id"), VolunteerId::new("v2").expect("id")])
                .expect("valid volunteers"),
        }),
    ];
    for role in RaterRole::ALL {
        cmds.push(Command::Request(RequestCommand::Evaluate {
            request: request.clone(),
            role,
            score: Score::new(5).expect("valid score"),
            tags: Tags::new(vec![]).expect("valid tags"),
            comment: None,
        }));
    }
    cmds
}

pub struct World {
    pub dispatcher: Dispatcher<StraightLine>,
    pub specs: Vec<RequestSpec>,
    pub now: DateTime<Utc>,
}

pub fn world(requests: usize) -> World {
    let file = generate_city(&CityConfig { seed: 42, teams: TEAMS, ..CityConfig::default() });
    let (city, index) = file.build().expect("generated city is valid");
    let demand = DemandConfig { seed: 9, requests, ..DemandConfig::default() };
    let specs = generate_requests(&city, &demand);
    let now = demand.start - chrono::Duration::hours(2);
    World { dispatcher: Dispatcher::new(city, index), specs, now }
}

impl World {
    pub fn builder(&self) -> EngineBuilder<StraightLine> {
        Engine::builder(self.dispatcher.clone())
    }

    pub fn lifecycle(&self) -> Lifecycle<StraightLine> {
        Lifecycle::new(self.dispatcher.clone(), PolicyBook::default())
    }
}

/// Every request's whole life through the core, until `events` events: the log to store.
pub fn log_of(w: &World, events: usize) -> Vec<Recorded> {
    let mut lc = w.lifecycle();
    let mut log = Vec::with_capacity(events + 16);
    for (i, spec) in w.specs.iter().enumerate() {
        if log.len() >= events {
            break;
        }
        let now = w.now + chrono::Duration::milliseconds(i as i64);
        let recs = lc
            .execute(&Command::Request(RequestCommand::Submit { spec: spec.clone() }), now)
            .expect("generated requests are valid");
        let team = offered(&recs);
        log.extend(recs);
        if let Some(team) = team {
            // Some evaluations are refused (the request closes once the sampled roles rated).
            for cmd in after_offer(spec, &team) {
                log.extend(lc.execute(&cmd, now).unwrap_or_default());
            }
        }
    }
    assert!(log.len() >= events, "the demand holds {events} events: {}", log.len());
    log.truncate(events);
    // A batch boundary may split a stream; that is fine, the order per stream is kept.
    log
}

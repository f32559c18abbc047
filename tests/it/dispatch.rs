//! Properties of online dispatch on random generated cities:
//! (a) no ineligible team is ever ranked (design invariant 3), checked by an
//!     oracle written from the team declarations, independent of the index;
//! (b) the index ranking equals a brute-force scan (same teams, same order).

use chrono::{DateTime, Duration, Utc};
use proptest::prelude::*;
use sidan::core::city::{City, CityFile};
use sidan::core::dispatch::{Dispatcher, RankQuery};
use sidan::core::geo::Location;
use sidan::core::index::TeamIdx;
use sidan::core::request::Request;
use sidan::core::team::TeamSpec;
use sidan::core::time::Availability;
use sidan::sim::{CityConfig, DemandConfig, generate_city, generate_requests};

/// A random city anywhere on Earth, including near the antimeridian and the poles.
fn city_config() -> impl Strategy<Value = CityConfig> {
    let center = prop_oneof![
        Just((38.30, 116.84)),
        (-70.0..70.0f64, -180.0..180.0f64),
        (-10.0..10.0f64, prop_oneof![Just(179.95), Just(-179.95)]),
        (80.0..84.0f64, -180.0..180.0f64),
    ];
    (any::<u64>(), 5usize..400, 1usize..4, center, 0.05..3.0f64).prop_map(|(seed, teams, counties, center, density)| {
        CityConfig {
            seed,
            teams,
            counties: Some(counties),
            institutes_per_county: 2,
            stations_per_institute: 3,
            density_per_km2: density,
            center,
        }
    })
}

/// The eligibility rule of design.md invariant 3, from the declarations alone.
fn oracle_eligible(
    city: &City,
    spec: &TeamSpec,
    req: &Request,
    now: DateTime<Utc>,
    scope: &sidan::core::id::UnitId,
) -> bool {
    let units = city.units();
    let team_unit = units.idx(&spec.unit).expect("known unit");
    let scope_idx = units.idx(scope).expect("known scope");
    let in_scope = team_unit == scope_idx || units.ancestors(team_unit).any(|u| u == scope_idx);
    let closure = city.skills().closure_of(&spec.skills).expect("known skills");
    let skills_ok = req.skills().iter().all(|s| closure.contains(s));
    let reach_ok = spec.base.distance_m(req.location()) <= spec.reach_km * 1000.0;
    let av = Availability::compile(&spec.availability).expect("valid availability");
    let tz = units.get(team_unit).tz;
    let (ls, le) = req.window().to_local_minutes(tz);
    let ls = ls.max(sidan::core::time::local_minute_ceil(now, tz));
    let mut run = 0;
    let mut avail_ok = false;
    for m in ls..le {
        run = if av.is_available_at(m) { run + 1 } else { 0 };
        avail_ok |= run >= i64::from(req.duration_min());
    }
    spec.active && spec.load < spec.capacity && in_scope && skills_ok && reach_ok && avail_ok
}

struct Case {
    file: CityFile,
    dispatcher: Dispatcher,
    requests: Vec<Request>,
}

fn case(cfg: &CityConfig, n_requests: usize, seed: u64) -> Case {
    let file = generate_city(cfg);
    let (city, index) = file.clone().build().expect("generated cities are valid");
    let demand = DemandConfig { seed, requests: n_requests, days: 3, ..DemandConfig::default() };
    let requests = generate_requests(&city, &demand)
        .into_iter()
        .map(|s| Request::new(s, &city).expect("generated requests are valid"))
        .collect();
    Case { file, dispatcher: Dispatcher::new(city, index), requests }
}

// Case counts follow PROPTEST_CASES (256 by default).
proptest! {
    #[test]
    fn ranking_is_eligible_and_equals_brute_force(
        cfg in city_config(),
        seed in any::<u64>(),
        k in 1usize..12,
        now_offset_h in 0i64..60,
        wide_scope in any::<bool>(),
        n_excluded in 0usize..6,
    ) {
        let c = case(&cfg, 12, seed);
        let d = &c.dispatcher;
        let now = DemandConfig::default().start + Duration::hours(now_offset_h);
        let root = d.city().units().idx(&"cz".parse().expect("valid")).expect("root exists");
        for req in &c.requests {
            // Exclude a few of the teams that would otherwise rank first.
            let base_q = RankQuery { k: n_excluded, scope: wide_scope.then_some(root), ..RankQuery::default() };
            let exclude: Vec<TeamIdx> = d.rank(req, now, &base_q).iter().map(|r| r.idx).collect();
            let q = RankQuery { k, scope: wide_scope.then_some(root), exclude: exclude.clone(), ..RankQuery::default() };
            let fast = d.rank(req, now, &q);
            let slow = d.rank_brute_force(req, now, &q);
            prop_assert_eq!(&fast, &slow);
            // `rank_all` is the same order, complete: its first k are `rank`'s.
            let all = d.rank_all(req, now, &q);
            prop_assert_eq!(&all[..fast.len()], &fast[..]);
            prop_assert_eq!(all.len(), d.rank_brute_force(req, now, &RankQuery { k: usize::MAX, ..q.clone() }).len());
            let scope = d.city().units().get(q.scope.unwrap_or_else(|| d.city().units().county_of(req.unit()))).id.clone();
            for r in &fast {
                let spec = c.file.teams.iter().find(|t| t.id == r.team).expect("ranked team exists");
                prop_assert!(oracle_eligible(d.city(), spec, req, now, &scope), "{} is not eligible for {}", r.team, req.id());
                prop_assert!(!exclude.contains(&r.idx), "{} declined {}", r.team, req.id());
            }
            // Completeness: the oracle's eligible set, sized to k, is what was ranked.
            let n_oracle = c.file.teams.iter().filter(|t| {
                let idx = d.index().idx(&t.id).expect("indexed");
                !exclude.contains(&idx) && oracle_eligible(d.city(), t, req, now, &scope)
            }).count();
            prop_assert_eq!(fast.len(), n_oracle.min(k));
            prop_assert!(fast.windows(2).all(|w| w[0].score > w[1].score || (w[0].score == w[1].score && w[0].team < w[1].team)));
        }
    }

    /// Incremental updates (moves, load, availability, new teams) keep the
    /// index equal to a brute-force scan.
    #[test]
    fn incremental_updates_keep_index_exact(cfg in city_config(), seed in any::<u64>(), moves in proptest::collection::vec((any::<prop::sample::Index>(), -0.3..0.3f64, -0.3..0.3f64, 0.5..60.0f64, 0u32..4), 1..20)) {
        let mut c = case(&cfg, 8, seed);
        let now = DemandConfig::default().start;
        let n = c.dispatcher.index().len();
        for (i, dlat, dlon, reach, load) in moves {
            let t = c.dispatcher.index().get(TeamIdx(i.index(n) as u32)).clone();
            let lat = (t.base.lat() + dlat).clamp(-89.0, 89.0);
            let lon = (t.base.lon() + dlon + 540.0).rem_euclid(360.0) - 180.0;
            let idx = c.dispatcher.index_mut();
            idx.relocate(&t.id, Location::new(lat, lon).expect("in range"), reach).expect("valid move");
            idx.set_load(&t.id, load).expect("known team");
        }
        let mut extra = c.file.teams[0].clone();
        extra.id = "t-new".parse().expect("valid");
        let (city, index) = c.dispatcher.city_and_index_mut();
        index.insert(city, &extra).expect("new team");
        prop_assert!(index.insert(city, &extra).is_err(), "duplicate id accepted");
        for req in &c.requests {
            let q = RankQuery::top(8);
            prop_assert_eq!(c.dispatcher.rank(req, now, &q), c.dispatcher.rank_brute_force(req, now, &q));
        }
    }
}

#[test]
fn a_request_whose_window_has_passed_gets_nobody() {
    let c = case(&CityConfig::default(), 5, 3);
    let late = DemandConfig::default().start + Duration::days(30);
    for req in &c.requests {
        assert!(c.dispatcher.rank(req, late, &RankQuery::top(5)).is_empty());
    }
    // Earlier, someone is eligible for at least one of them.
    let early = DemandConfig::default().start;
    assert!(c.requests.iter().any(|r| !c.dispatcher.rank(r, early, &RankQuery::top(5)).is_empty()));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Design invariant 9: batch assignment over the online candidate search
    /// never breaks eligibility or capacity, serves at least the priority the
    /// greedy baseline serves, and one team's spare capacity bounds its share.
    #[test]
    fn batch_window_is_safe_and_at_least_greedy(seed in any::<u64>(), teams in 20usize..300, n in 1usize..80) {
        use sidan::core::batch::{solve_greedy, solve_optimal};
        let cfg = CityConfig { seed, teams, counties: Some(1), ..CityConfig::default() };
        let c = case(&cfg, n, seed ^ 0x5eed);
        let d = &c.dispatcher;
        let now = DemandConfig::default().start;
        let window = d.batch_window(&c.requests, now, 8).expect("valid problem");
        let plan = solve_optimal(&window.problem);
        let greedy = solve_greedy(&window.problem);
        prop_assert!(plan.served_priority >= greedy.served_priority);
        let mut taken = std::collections::BTreeMap::<TeamIdx, u32>::new();
        for (req, team) in c.requests.iter().zip(window.assigned(&plan)) {
            let Some(team) = team else { continue };
            let eligible: Vec<TeamIdx> = d.rank(req, now, &RankQuery::top(usize::MAX)).iter().map(|r| r.idx).collect();
            prop_assert!(eligible.contains(&team), "{} got an ineligible team", req.id());
            *taken.entry(team).or_default() += 1;
        }
        for (t, n) in taken {
            let rec = d.index().get(t);
            prop_assert!(rec.load + n <= rec.capacity, "{} over capacity", rec.id);
        }
    }
}

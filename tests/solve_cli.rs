//! `sidan solve`: bad files fail with one message naming the entry and the
//! field, exit code 2 and nothing on stdout; good files give a feasible plan;
//! the spatial candidate search agrees with a brute-force scan of all pairs.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use proptest::prelude::*;
use sidan::core::batch::file::{Interval, Objective, PlanFile, ProblemFile, RequestEntry, TeamEntry};
use sidan::core::batch::{solve_exhaustive, solve_greedy, solve_optimal};
use sidan::core::geo::LatLon;
use sidan::core::geo::haversine_m;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/solve").join(name)
}

fn solve(args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_sidan"))
        .arg("solve")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the sidan binary runs");
    let mut pipe = child.stdin.take().expect("stdin is piped");
    if let Some(bytes) = stdin {
        pipe.write_all(bytes).expect("writing stdin");
    }
    drop(pipe);
    child.wait_with_output().expect("sidan finishes")
}

#[test]
fn malformed_files_fail_with_the_entry_and_field_named() {
    let cases = [
        ("bad_capacity_type.json", "teams[1].capacity", "expected u32"),
        ("negative_capacity.json", "teams[0].capacity", "-1"),
        ("nan_latitude.json", "requests[2].location.lat", "NaN"),
        ("nan_literal.json", "requests[1].location.lat", "expected value"),
        ("latitude_out_of_range.json", "teams[1].location.lat", "[-90, 90]"),
        ("reversed_window.json", "requests[3].window", "not before end"),
        ("reversed_availability.json", "teams[1].availability[0]", "not before end"),
        ("duplicate_team_id.json", "teams[1].id", "duplicate id \"t1\""),
        ("duplicate_request_id.json", "requests[3].id", "duplicate id \"r2\""),
        ("unknown_team_field.json", "teams[0].colour", "unknown field `colour`"),
        ("unknown_top_field.json", "window", "unknown field `window`"),
        ("bad_time.json", "requests[1].window.start", "invalid"),
        ("zero_duration.json", "requests[0].duration_min", "at least 1 minute"),
        ("duration_exceeds_window.json", "requests[0].duration_min", "do not fit"),
        ("negative_reach.json", "teams[0].reach_km", "-2.5"),
        ("missing_priority.json", "requests[2]", "missing field `priority`"),
        ("negative_priority.json", "requests[1].priority", "-3"),
        ("empty_skill.json", "requests[0].skills[1]", "must not be empty"),
        ("truncated.json", "teams[0].availability[0].end", "EOF"),
    ];
    for (file, path, detail) in cases {
        let out = solve(&[fixture(file).to_str().expect("utf-8 path")], None);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{file}: exit code; stderr: {stderr}");
        assert!(out.stdout.is_empty(), "{file}: nothing on stdout");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{file}: one message: {stderr}");
        assert!(stderr.contains(&format!(": {path}: ")), "{file}: names {path}: {stderr}");
        assert!(stderr.contains(detail), "{file}: says {detail:?}: {stderr}");
        assert!(stderr.contains(file), "{file}: names the file: {stderr}");
    }
}

#[test]
fn missing_file_and_missing_argument_are_bad_input() {
    let out = solve(&["/nonexistent/problem.json"], None);
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/problem.json"));
    let out = solve(&[], None);
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
}

#[test]
fn the_example_is_solved_from_a_path_an_option_and_stdin() {
    let path = fixture("example.json");
    let path = path.to_str().expect("utf-8 path");
    let text = std::fs::read(path).expect("fixture exists");
    let by_path = solve(&[path], None);
    let by_option = solve(&["--input", path], None);
    let by_stdin = solve(&["-"], Some(&text));
    for out in [&by_path, &by_option, &by_stdin] {
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert!(out.stderr.is_empty());
    }
    assert_eq!(by_path.stdout, by_option.stdout);
    assert_eq!(by_path.stdout, by_stdin.stdout);
    let plan: PlanFile = serde_json::from_slice(&by_path.stdout).expect("plan is JSON");
    let file = ProblemFile::from_json(std::str::from_utf8(&text).expect("utf-8")).expect("valid");
    check_plan(&file, &plan);
    // r4 is 45 km from every team: nobody can reach it.
    assert_eq!(plan.unassigned, vec!["r4".to_owned()]);
    assert_eq!(plan.served_priority, 6);
}

#[test]
fn modes_and_objectives_are_selectable() {
    let path = fixture("example.json");
    let path = path.to_str().expect("utf-8 path");
    for mode in ["optimal", "greedy"] {
        for objective in ["distance", "score"] {
            let out = solve(&[path, "--mode", mode, "--objective", objective], None);
            assert!(out.status.success(), "{mode}/{objective}");
            let plan: PlanFile = serde_json::from_slice(&out.stdout).expect("plan is JSON");
            assert_eq!(plan.total_score.is_some(), objective == "score");
        }
    }
    let out = solve(&[path, "--mode", "fastest"], None);
    assert_eq!(out.status.code(), Some(2), "clap rejects an unknown mode");
    assert!(out.stdout.is_empty());
}

/// Checks a plan against the problem with no help from the library's graph:
/// skills, reach, time and capacity, and the reported totals.
fn check_plan(file: &ProblemFile, plan: &PlanFile) {
    let mut load = std::collections::BTreeMap::new();
    let mut priority = 0u64;
    let mut total_m = 0.0;
    for a in &plan.assignments {
        let req = file.requests.iter().find(|r| r.id == a.request).expect("known request");
        let team = file.teams.iter().find(|t| t.id == a.team).expect("known team");
        assert!(feasible(team, req), "{} → {} is feasible", a.request, a.team);
        let d = haversine_m(req.location.lat, req.location.lon, team.location.lat, team.location.lon);
        assert!((d - a.distance_m).abs() < 1e-3, "distance reported to the millimetre");
        *load.entry(&a.team).or_insert(0u32) += 1;
        priority += u64::from(req.priority);
        total_m += a.distance_m;
    }
    for (team, n) in load {
        let cap = file.teams.iter().find(|t| &t.id == team).expect("known").capacity;
        assert!(n <= cap, "{team} within capacity");
    }
    assert_eq!(priority, plan.served_priority);
    assert!((total_m - plan.total_distance_m).abs() < 1e-3 * plan.assignments.len().max(1) as f64);
    let n_listed = plan.assignments.len() + plan.unassigned.len();
    assert_eq!(n_listed, file.requests.len(), "every request listed once");
}

fn feasible(team: &TeamEntry, req: &RequestEntry) -> bool {
    let skills = req.skills.iter().all(|s| team.skills.contains(s));
    let d = haversine_m(req.location.lat, req.location.lon, team.location.lat, team.location.lon);
    let reach = d <= team.reach_km * 1000.0;
    let time = team.availability.iter().any(|slot| {
        let start = slot.start.max(req.window.start);
        let end = slot.end.min(req.window.end);
        (end - start).num_seconds() >= i64::from(req.duration_min) * 60
    });
    skills && reach && time && team.capacity > 0
}

fn at(hour: u32) -> chrono::DateTime<chrono::FixedOffset> {
    use chrono::TimeZone;
    chrono::FixedOffset::east_opt(8 * 3600)
        .expect("valid offset")
        .with_ymd_and_hms(2026, 12, 1, hour, 0, 0)
        .single()
        .expect("valid time")
}

const SKILLS: [&str; 3] = ["elderly-care", "haircut", "counselling"];

fn problem_file() -> impl Strategy<Value = ProblemFile> {
    let place = (38.25f64..38.35, 116.80f64..116.90).prop_map(|(lat, lon)| LatLon { lat, lon });
    let skills = proptest::sample::subsequence(SKILLS.to_vec(), 0..=3)
        .prop_map(|s| s.into_iter().map(str::to_owned).collect::<Vec<_>>());
    let span = (6u32..20, 1u32..6).prop_map(|(h, len)| Interval { start: at(h), end: at((h + len).min(23)) });
    let team = (place.clone(), skills.clone(), 0u32..3, 0.5f64..6.0, proptest::collection::vec(span.clone(), 0..3));
    let request = (place, skills, span, 1u32..120, 0u32..4);
    (proptest::collection::vec(team, 1..6), proptest::collection::vec(request, 0..7)).prop_map(|(teams, requests)| {
        ProblemFile {
            teams: teams
                .into_iter()
                .enumerate()
                .map(|(i, (location, skills, capacity, reach_km, availability))| TeamEntry {
                    id: format!("t{i}"),
                    location,
                    skills,
                    capacity,
                    reach_km,
                    availability,
                })
                .collect(),
            requests: requests
                .into_iter()
                .enumerate()
                .map(|(i, (location, skills, window, duration_min, priority))| {
                    let window_min = ((window.end - window.start).num_minutes()) as u32;
                    RequestEntry {
                        id: format!("r{i}"),
                        location,
                        skills,
                        window,
                        duration_min: duration_min.min(window_min),
                        priority,
                    }
                })
                .collect(),
        }
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// The R-tree candidate search finds exactly the feasible pairs that a
    /// scan of every pair finds, and the plans built on it are feasible.
    #[test]
    fn candidate_graph_matches_brute_force(file in problem_file()) {
        file.validate().expect("generated file is valid");
        let graph = file.candidate_graph(Objective::Distance).expect("graph builds");
        for (r, req) in file.requests.iter().enumerate() {
            let mut found: Vec<u32> = graph.problem.candidates(r).map(|(t, _)| t).collect();
            found.sort_unstable();
            let expected: Vec<u32> = file
                .teams
                .iter()
                .enumerate()
                .filter(|(_, team)| feasible(team, req))
                .map(|(t, _)| t as u32)
                .collect();
            prop_assert_eq!(found, expected, "candidates of {}", req.id);
        }
        let optimal = solve_optimal(&graph.problem);
        let greedy = solve_greedy(&graph.problem);
        let exhaustive = solve_exhaustive(&graph.problem);
        prop_assert_eq!(optimal.served_priority, exhaustive.served_priority);
        prop_assert_eq!(optimal.total_cost, exhaustive.total_cost);
        prop_assert!(optimal.served_priority >= greedy.served_priority);
        check_plan(&file, &file.plan(&graph, &optimal));
        check_plan(&file, &file.plan(&graph, &greedy));
    }
}

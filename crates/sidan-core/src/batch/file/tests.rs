//! The problem file's typed errors, with the entry and field of each, and
//! the candidate graph's costs. The command-line behaviour (messages, exit
//! codes, the R-tree against a scan of every pair) is tested in the
//! facade's `tests/solve_cli.rs`.

use super::*;
use crate::batch::solve_optimal;

const EXAMPLE: &str = r#"{"teams": [
  {"id": "t1", "location": {"lat": 38.30, "lon": 116.84}, "skills": ["elderly-care"],
   "capacity": 2, "reach_km": 8.0,
   "availability": [{"start": "2026-12-01T08:00:00+08:00", "end": "2026-12-01T12:00:00+08:00"}]},
  {"id": "t2", "location": {"lat": 38.31, "lon": 116.86}, "skills": ["elderly-care", "haircut", "counselling"],
   "capacity": 1, "reach_km": 5.0,
   "availability": [{"start": "2026-12-01T08:00:00+08:00", "end": "2026-12-01T18:00:00+08:00"}]}],
 "requests": [
  {"id": "r1", "location": {"lat": 38.31, "lon": 116.85}, "skills": ["elderly-care"],
   "window": {"start": "2026-12-01T09:00:00+08:00", "end": "2026-12-01T11:00:00+08:00"},
   "duration_min": 60, "priority": 2},
  {"id": "r2", "location": {"lat": 38.305, "lon": 116.855}, "skills": ["haircut"],
   "window": {"start": "2026-12-01T13:00:00+08:00", "end": "2026-12-01T15:00:00+08:00"},
   "duration_min": 30, "priority": 1}]}"#;

fn example() -> ProblemFile {
    ProblemFile::from_json(EXAMPLE).expect("the example is valid")
}

/// The error of `file` after `edit`, which must be invalid.
fn error_after(edit: impl FnOnce(&mut ProblemFile)) -> ProblemFileError {
    let mut file = example();
    edit(&mut file);
    let err = file.validate().expect_err("the edit makes the file invalid");
    // The graph refuses the same file with the same error, never panics.
    let graph_err = file.candidate_graph(Objective::Distance).expect_err("invalid");
    assert_eq!(graph_err.to_string(), err.to_string());
    err
}

#[test]
fn each_invalid_value_has_its_own_error_and_path() {
    let err = error_after(|f| f.requests[1].location.lon = 181.0);
    assert_eq!(
        err,
        ProblemFileError::Location {
            path: "requests[1].location.lon".into(),
            source: LocationError::LonOutOfRange(181.0)
        }
    );
    assert_eq!(err.to_string(), "requests[1].location.lon: longitude 181 is outside [-180, 180]");

    let err = error_after(|f| f.teams[0].location.lat = f64::NAN);
    assert!(matches!(&err, ProblemFileError::Location { source: LocationError::LatNotFinite(_), .. }), "{err:?}");
    assert_eq!(err.path(), Some("teams[0].location.lat"));

    let err = error_after(|f| f.teams[1].id = "t1".into());
    assert_eq!(
        err,
        ProblemFileError::DuplicateId { path: "teams[1].id".into(), id: "t1".into(), first: "teams[0]".into() }
    );
    assert_eq!(err.to_string(), "teams[1].id: duplicate id \"t1\", first used by teams[0]");

    assert_eq!(
        error_after(|f| f.requests[0].id = " ".into()),
        ProblemFileError::EmptyId { path: "requests[0].id".into() }
    );
    assert_eq!(
        error_after(|f| f.teams[1].skills[2] = String::new()),
        ProblemFileError::EmptySkill { path: "teams[1].skills[2]".into() }
    );
    assert_eq!(
        error_after(|f| f.teams[0].reach_km = -2.5),
        ProblemFileError::Reach { path: "teams[0].reach_km".into(), reach_km: -2.5 }
    );
    let err = error_after(|f| f.teams[1].availability[0].end = f.teams[1].availability[0].start);
    assert!(matches!(&err, ProblemFileError::ReversedInterval { path, .. } if path == "teams[1].availability[0]"));
    assert!(err.to_string().ends_with("start 2026-12-01T08:00:00+08:00 is not before end 2026-12-01T08:00:00+08:00"));
    assert_eq!(
        error_after(|f| f.requests[1].duration_min = 0),
        ProblemFileError::ZeroDuration { path: "requests[1].duration_min".into() }
    );
    assert_eq!(
        error_after(|f| f.requests[0].duration_min = 121),
        ProblemFileError::DurationExceedsWindow {
            path: "requests[0].duration_min".into(),
            duration_min: 121,
            window_min: 120
        }
    );
}

#[test]
fn parse_errors_name_the_field_and_size_is_bounded() {
    let text = EXAMPLE.replace(r#""capacity": 1"#, r#""capacity": "one""#);
    let err = ProblemFile::from_json(&text).expect_err("a string capacity");
    assert!(matches!(&err, ProblemFileError::Parse { path, .. } if path == "teams[1].capacity"), "{err:?}");
    let huge = " ".repeat(MAX_PROBLEM_FILE_BYTES + 1);
    assert_eq!(ProblemFile::from_json(&huge), Err(ProblemFileError::TooLarge(MAX_PROBLEM_FILE_BYTES + 1)));
    assert_eq!(ProblemFileError::TooLarge(1).path(), None);
}

#[test]
fn more_team_skills_than_a_skill_set_holds_is_an_error() {
    let mut file = example();
    file.teams[0].skills = (0..MAX_SKILLS).map(|i| format!("s{i}")).collect();
    file.teams[1].skills = vec!["s0".into()];
    file.validate().expect("exactly as many skills as a set holds");
    file.teams[1].skills.push("s7".into());
    file.validate().expect("a skill seen before takes no new bit");
    file.teams[1].skills.insert(1, "one-too-many".into());
    assert_eq!(file.validate(), Err(ProblemFileError::TooManySkills { path: "teams[1].skills[1]".into() }));
}

#[test]
fn the_graph_checks_skills_reach_and_time() {
    let file = example();
    let graph = file.candidate_graph(Objective::Distance).expect("valid");
    let edges = |r| graph.problem.candidates(r).map(|(t, _)| t).collect::<Vec<_>>();
    // r1 needs elderly care: both teams have it and reach it.
    assert_eq!(edges(0).len(), 2);
    // r2 needs a haircut: only t2.
    assert_eq!(edges(1), vec![1]);
    let plan = file.plan(&graph, &solve_optimal(&graph.problem));
    assert_eq!(plan.served_priority, 3);
    assert!(plan.unassigned.is_empty());
    assert_eq!(plan.total_score, None);

    // A skill no team has: no candidates, not an error.
    let mut file = example();
    file.requests[1].skills.push("plumbing".into());
    let graph = file.candidate_graph(Objective::Distance).expect("valid");
    assert_eq!(graph.problem.candidates(1).count(), 0);
}

#[test]
fn the_score_charges_spare_skills_and_the_limit_of_reach() {
    let file = example();
    let distance = file.candidate_graph(Objective::Distance).expect("valid");
    let score = file.candidate_graph(Objective::Score).expect("valid");
    let d_mm = distance.problem.edge_cost(1, 1).expect("r2 – t2");
    let s_mm = score.problem.edge_cost(1, 1).expect("r2 – t2");
    // t2 has two skills r2 does not need; its reach is 5 km.
    let d_m = d_mm as f64 / 1000.0;
    let expected_m = d_m + d_m * d_m / 5000.0 + 2.0 * SPARE_SKILL_PENALTY_M;
    assert!((s_mm as f64 / 1000.0 - expected_m).abs() < 2e-3, "{s_mm} mm vs {expected_m} m");
    let plan = file.plan(&score, &solve_optimal(&score.problem));
    assert!(plan.total_score.expect("score objective") > plan.total_distance_m);
    assert!(plan.assignments.iter().all(|a| a.score.is_some()));
}

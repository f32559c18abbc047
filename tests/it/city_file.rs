//! Loading city files: every validation names the file, the entry and the field.

use std::path::PathBuf;

use sidan::core::city::{CityError, CityProblem};
use sidan::core::skills::SkillError;
use sidan::core::team::MAX_REACH_KM;
use sidan::core::units::UnitError;
use sidan::sim::{CityConfig, generate_city};

fn write(name: &str, text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sidan-it-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write fixture");
    path
}

fn small() -> serde_json::Value {
    let file = generate_city(&CityConfig { teams: 6, ..CityConfig::default() });
    serde_json::to_value(&file).expect("serialises")
}

/// Loads a mutated city and returns the error text.
fn error_of(name: &str, mutate: impl FnOnce(&mut serde_json::Value)) -> String {
    let mut v = small();
    mutate(&mut v);
    let path = write(name, &v.to_string());
    let err = sidan::load_city(&path).expect_err("the mutation makes the file invalid");
    let text = err.to_string();
    assert!(text.contains(name), "error does not name the file: {text}");
    text
}

#[test]
fn a_valid_file_loads() {
    let path = write("ok.json", &small().to_string());
    let (city, index) = sidan::load_city(&path).expect("valid");
    assert_eq!(index.len(), 6);
    assert_eq!(city.services().len(), 17);
}

/// A fixture name, how to break the file, and what the error must mention.
type Case = (&'static str, Box<dyn FnOnce(&mut serde_json::Value)>, &'static [&'static str]);

#[test]
fn bad_values_name_entry_and_field() {
    let cases: Vec<Case> = vec![
        (
            "nan.json",
            Box::new(|v| v["teams"][2]["base"]["lat"] = serde_json::json!(123.0)),
            &["teams[2].base", "latitude"],
        ),
        ("reach.json", Box::new(|v| v["teams"][1]["reach_km"] = serde_json::json!(-1.0)), &["teams[1]", "reach_km"]),
        (
            "skill.json",
            Box::new(|v| v["teams"][0]["skills"] = serde_json::json!(["juggling"])),
            &["teams[0]", "skills", "juggling"],
        ),
        (
            "unit.json",
            Box::new(|v| v["teams"][3]["unit"] = serde_json::json!("nowhere")),
            &["teams[3]", "unit", "nowhere"],
        ),
        (
            "dup.json",
            Box::new(|v| {
                let t = v["teams"][0].clone();
                v["teams"].as_array_mut().expect("array").push(t);
            }),
            &["teams[6]", "id"],
        ),
        ("cap.json", Box::new(|v| v["teams"][4]["capacity"] = serde_json::json!(0)), &["teams[4]", "capacity"]),
        ("neg.json", Box::new(|v| v["teams"][4]["capacity"] = serde_json::json!(-2)), &["teams[4].capacity"]),
        ("field.json", Box::new(|v| v["teams"][0]["colour"] = serde_json::json!("red")), &["teams[0]", "colour"]),
        (
            "cycle.json",
            Box::new(|v| v["skills"][0]["broader"] = serde_json::json!(["elderly-care"])),
            &["skills", "cycle"],
        ),
        (
            "parent.json",
            Box::new(|v| v["units"][1]["parent"] = serde_json::json!("atlantis")),
            &["units[1]", "parent", "atlantis"],
        ),
        (
            "service.json",
            Box::new(|v| v["services"][0]["skills"] = serde_json::json!(["nope"])),
            &["services[0]", "skills"],
        ),
        (
            "slot.json",
            Box::new(|v| {
                v["teams"][0]["availability"] =
                    serde_json::json!({"weekly": [{"days": ["mon"], "start": "25:00", "end": "10:00"}]})
            }),
            &["teams[0].availability.weekly[0].start"],
        ),
        (
            "window.json",
            Box::new(
                |v| v["teams"][0]["availability"] = serde_json::json!({"exceptions": [{"start": "2026-12-02T00:00:00", "end": "2026-12-01T00:00:00", "available": true}]}),
            ),
            &["teams[0]", "availability", "exception 0"],
        ),
    ];
    for (name, mutate, needles) in cases {
        let text = error_of(name, mutate);
        for n in needles {
            assert!(text.contains(n), "{name}: {text:?} lacks {n:?}");
        }
    }
}

#[test]
fn unreadable_and_malformed_files_are_errors() {
    let missing = sidan::load_city(std::path::Path::new("/nonexistent/city.json")).expect_err("missing");
    assert!(missing.to_string().contains("/nonexistent/city.json"));
    let path = write("trunc.json", "{\"units\": [");
    let err = sidan::load_city(&path).expect_err("truncated").to_string();
    assert!(err.contains("trunc.json") && err.contains("line 1"), "{err}");
}

/// Loads a mutated city and returns the typed problem of its `Invalid` error.
fn problem_of(name: &str, mutate: impl FnOnce(&mut serde_json::Value)) -> (String, String, CityProblem) {
    let mut v = small();
    mutate(&mut v);
    let path = write(name, &v.to_string());
    match sidan::load_city(&path) {
        Err(sidan::LoadCityError::Invalid { source: CityError::Invalid { entry, field, problem }, .. }) => {
            (entry, field, problem)
        }
        other => panic!("{name}: not an invalid entry: {other:?}"),
    }
}

#[test]
fn invalid_entries_say_which_check_failed() {
    let (entry, field, problem) = problem_of("t-unit.json", |v| v["teams"][3]["unit"] = serde_json::json!("nowhere"));
    assert!(entry.starts_with("teams[3]"), "{entry}");
    assert_eq!(field, "unit");
    assert!(matches!(&problem, CityProblem::UnknownUnit(u) if u.as_str() == "nowhere"), "{problem:?}");

    let (_, field, problem) = problem_of("t-reach.json", |v| v["teams"][1]["reach_km"] = serde_json::json!(-1.0));
    assert_eq!(field, "reach_km");
    assert_eq!(problem, CityProblem::BadReach { reach_km: -1.0, max_km: MAX_REACH_KM });
    assert_eq!(problem.to_string(), "reach -1 km is not in (0, 500]");

    let (_, _, problem) = problem_of("t-skill.json", |v| v["services"][0]["skills"] = serde_json::json!(["nope"]));
    assert!(matches!(&problem, CityProblem::UnknownSkill(s) if s.as_str() == "nope"), "{problem:?}");

    let (entry, field, problem) = problem_of("t-dup.json", |v| {
        let t = v["teams"][0].clone();
        v["teams"].as_array_mut().expect("array").push(t);
    });
    assert!(entry.starts_with("teams[6]"), "{entry}");
    assert_eq!((field.as_str(), problem), ("id", CityProblem::DuplicateId { list: "team" }));

    let (_, field, problem) = problem_of("t-cap.json", |v| v["teams"][4]["capacity"] = serde_json::json!(0));
    assert_eq!((field.as_str(), problem), ("capacity", CityProblem::TooSmall { min: 1 }));

    let (_, _, problem) =
        problem_of("t-cycle.json", |v| v["skills"][0]["broader"] = serde_json::json!(["elderly-care"]));
    assert!(matches!(problem, CityProblem::Taxonomy(SkillError::Cycle { .. })), "{problem:?}");

    let (entry, field, problem) =
        problem_of("t-parent.json", |v| v["units"][1]["parent"] = serde_json::json!("atlantis"));
    assert!(entry.starts_with("units[1]"), "{entry}");
    assert_eq!(field, "parent");
    assert!(matches!(problem, CityProblem::Hierarchy(UnitError::UnknownParent { .. })), "{problem:?}");

    let (_, _, problem) = problem_of(
        "t-window.json",
        |v| v["teams"][0]["availability"] = serde_json::json!({"exceptions": [{"start": "2026-12-02T00:00:00", "end": "2026-12-01T00:00:00", "available": true}]}),
    );
    assert!(matches!(problem, CityProblem::Availability(_)), "{problem:?}");
}

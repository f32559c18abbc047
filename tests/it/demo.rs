//! The main job as a user runs it: `sidan demo`.

use std::process::Command;

fn sidan(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_sidan")).args(args).output().expect("the binary runs")
}

#[test]
fn demo_ranks_explains_and_masks() {
    let out = sidan(&["demo", "--requests", "3", "--teams", "200"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).expect("utf-8");
    assert_eq!(text.matches("Request r").count(), 3, "{text}");
    assert!(text.contains("rank team"), "{text}");
    assert!(text.contains("not eligible nearby"), "{text}");
    // Phones appear only masked: no run of 11 digits starting with 1[3-9].
    let clear_phone = text
        .as_bytes()
        .windows(11)
        .any(|w| w.iter().all(u8::is_ascii_digit) && w[0] == b'1' && (b'3'..=b'9').contains(&w[1]));
    assert!(!clear_phone, "a clear phone number leaked: {text}");
}

#[test]
fn demo_json_is_valid_and_ranked_in_order() {
    let out = sidan(&["demo", "--requests", "2", "--json", "-k", "4"]);
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("valid JSON");
    for ex in v.as_array().expect("an array") {
        let scores: Vec<f64> =
            ex["ranked"].as_array().expect("ranked").iter().map(|r| r["score"].as_f64().expect("score")).collect();
        assert!(scores.len() <= 4 && scores.windows(2).all(|w| w[0] >= w[1]), "{scores:?}");
    }
}

#[test]
fn bad_policy_and_arguments_are_clear_errors() {
    let dir = std::env::temp_dir().join(format!("sidan-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let policy = dir.join("policy.json");
    std::fs::write(&policy, r#"{"weights": {"proximity": -1}}"#).expect("write");
    let out = sidan(&["demo", "--policy", policy.to_str().expect("utf-8 path")]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("weights.proximity") && err.contains("policy.json"), "{err}");
    assert!(out.stdout.is_empty());
    std::fs::write(&policy, r#"{"wieghts": {}}"#).expect("write");
    let out = sidan(&["demo", "--policy", policy.to_str().expect("utf-8 path")]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("wieghts"));
    let out = sidan(&["demo", "--radius-km", "NaN"]);
    assert_eq!(out.status.code(), Some(2));
}

use super::*;
use crate::ledger::CreditPolicy;
use crate::lifecycle::LifecyclePolicy;
use crate::score::{PolicyProblem, ScoringPolicy, UrgencyFactors, Weights};
use crate::units::UnitKind;
use proptest::prelude::*;

use crate::units::UnitSpec;

fn spec(id: &str, kind: UnitKind, parent: Option<&str>) -> UnitSpec {
    UnitSpec {
        id: UnitId::new(id).expect("valid id"),
        name: id.to_owned(),
        kind,
        parent: parent.map(|p| UnitId::new(p).expect("valid id")),
        tz: None,
        location: None,
    }
}

/// cz ─┬─ cz-c1 ── cz-i1 ─┬─ cz-s1
///     │                  └─ cz-s2
///     └─ cz-c2 ── cz-i2 ── cz-s3
fn tree() -> UnitTree {
    use UnitKind::*;
    UnitTree::build(&[
        spec("cz-s1", Station, Some("cz-i1")),
        spec("cz", City, None),
        spec("cz-c1", County, Some("cz")),
        spec("cz-i1", Institute, Some("cz-c1")),
        spec("cz-s2", Station, Some("cz-i1")),
        spec("cz-c2", County, Some("cz")),
        spec("cz-i2", Institute, Some("cz-c2")),
        spec("cz-s3", Station, Some("cz-i2")),
    ])
    .expect("valid tree")
}

fn policy<'b>(book: &'b PolicyBook, units: &UnitTree, id: &str) -> &'b LifecyclePolicy {
    book.for_unit(units.idx(&UnitId::new(id).expect("valid id")).expect("known unit"))
}

fn load_err(text: &str) -> PolicyFileError {
    PolicyBook::from_toml(text, &tree()).expect_err("the file is invalid")
}

#[test]
fn empty_file_gives_the_built_in_defaults_everywhere() {
    let units = tree();
    let book = PolicyBook::from_toml("", &units).expect("valid");
    assert_eq!(book.len(), units.len());
    assert_eq!(*book.default_policy(), LifecyclePolicy::default());
    for (idx, _) in units.iter() {
        assert_eq!(*book.for_unit(idx), LifecyclePolicy::default());
    }
}

#[test]
fn overrides_inherit_across_three_levels() {
    let units = tree();
    let text = r#"
        [defaults]
        offer_deadline_s = 1200
        start_scope = "institute"

        [units."cz-c1"]
        offer_deadline_s = 900
        emergency_fanout = 8

        [units."cz-i1"]
        escalate_after_misses = 2

        [units."cz-s1"]
        offer_deadline_s = 600
        start_scope = "station"
    "#;
    let book = PolicyBook::from_toml(text, &units).expect("valid");
    let d = LifecyclePolicy::default();
    let expect = |offer, fanout, misses, scope| LifecyclePolicy {
        offer_deadline_s: offer,
        emergency_fanout: fanout,
        escalate_after_misses: misses,
        start_scope: scope,
        ..d
    };
    use UnitKind::*;
    assert_eq!(*book.default_policy(), expect(1200, d.emergency_fanout, d.escalate_after_misses, Institute));
    assert_eq!(*policy(&book, &units, "cz"), expect(1200, d.emergency_fanout, d.escalate_after_misses, Institute));
    assert_eq!(*policy(&book, &units, "cz-c1"), expect(900, 8, d.escalate_after_misses, Institute));
    assert_eq!(*policy(&book, &units, "cz-i1"), expect(900, 8, 2, Institute));
    assert_eq!(*policy(&book, &units, "cz-s1"), expect(600, 8, 2, Station));
    // A sibling inherits from the institute, not from cz-s1.
    assert_eq!(*policy(&book, &units, "cz-s2"), expect(900, 8, 2, Institute));
    // The other county sees none of cz-c1's overrides.
    for id in ["cz-c2", "cz-i2", "cz-s3"] {
        assert_eq!(*policy(&book, &units, id), expect(1200, d.emergency_fanout, d.escalate_after_misses, Institute));
    }
}

#[test]
fn partial_nested_override_keeps_sibling_keys() {
    let units = tree();
    let text = r#"
        [defaults.scoring]
        max_travel_min = 30
        weights.fairness = 0.2

        [units."cz-c1".scoring.weights]
        proximity = 0.5

        [units."cz-s1"]
        scoring.urgency.emergency = 6.0
    "#;
    let book = PolicyBook::from_toml(text, &units).expect("valid");
    let defaults = ScoringPolicy {
        max_travel_min: 30.0,
        weights: Weights { fairness: 0.2, ..Weights::default() },
        ..ScoringPolicy::default()
    };
    assert_eq!(policy(&book, &units, "cz-c2").scoring, defaults);
    let county = policy(&book, &units, "cz-c1").scoring;
    assert_eq!(county.weights, Weights { proximity: 0.5, ..defaults.weights });
    assert_eq!(county.weights.fairness, 0.2, "a weight set in the defaults survives a county's other weight");
    assert_eq!(county.max_travel_min, 30.0);
    assert_eq!(county.urgency, UrgencyFactors::default());
    let station = policy(&book, &units, "cz-s1").scoring;
    assert_eq!(station.weights, county.weights);
    assert_eq!(station.urgency, UrgencyFactors { emergency: 6.0, ..UrgencyFactors::default() });
    assert_eq!(policy(&book, &units, "cz-s2").scoring, county);
}

#[test]
fn syntax_errors_give_line_and_column() {
    let e = load_err("[defaults]\noffer_deadline_s = \n");
    assert!(matches!(e, PolicyFileError::Syntax { at: Some(TextPosition { line: 2, .. }), .. }), "{e:?}");
    assert_eq!(e.path(), None);
    let e = load_err("[units.\"cz-s1\"]\nemergency_fanout = 3\n[units.\"cz-s1\"]\n");
    assert!(matches!(e, PolicyFileError::Syntax { at: Some(TextPosition { line: 3, .. }), .. }), "{e:?}");
    assert!(e.to_string().starts_with("policy file is not valid TOML (line 3, column"), "{e}");
}

#[test]
fn unknown_keys_name_their_full_path() {
    let e = load_err("[units.\"cz-s1\".scoring.weights]\nproximty = 0.4\n");
    assert_eq!(e.path(), Some(r#"units."cz-s1".scoring.weights.proximty"#));
    assert_eq!(e.position(), Some(TextPosition { line: 2, column: 1 }));
    assert!(matches!(&e, PolicyFileError::UnknownKey { hint: Some(h), .. } if h.contains("`proximity`")), "{e:?}");
    let shown = e.to_string();
    assert!(shown.starts_with(r#"`units."cz-s1".scoring.weights.proximty`: unknown key, expected one of"#), "{shown}");
    assert!(shown.ends_with("(line 2, column 1)"), "{shown}");

    let e = load_err("[defaults]\nemergency_fan_out = 3\n");
    assert_eq!(e.path(), Some("defaults.emergency_fan_out"));
    let e = load_err("[default]\nemergency_fanout = 3\n");
    assert_eq!(e.path(), Some("default"));
    assert!(matches!(e, PolicyFileError::UnknownKey { .. }));
    let e = load_err("[units.\"cz-c1\"]\nscoring.urgency.critical = 3\n");
    assert_eq!(e.path(), Some(r#"units."cz-c1".scoring.urgency.critical"#));
    assert_eq!(e.position().map(|p| p.line), Some(2));
}

#[test]
fn wrong_types_name_their_full_path() {
    let cases = [
        ("[defaults]\noffer_deadline_s = \"30 min\"\n", "defaults.offer_deadline_s", "invalid type"),
        ("[defaults]\nescalate_after_misses = -1\n", "defaults.escalate_after_misses", "invalid value"),
        ("[defaults]\nemergency_fanout = 4.5\n", "defaults.emergency_fanout", "invalid type"),
        ("[units.\"cz-i2\"]\nstart_scope = \"town\"\n", r#"units."cz-i2".start_scope"#, "unknown variant"),
        (
            "[units.\"cz-c2\".scoring]\nmax_travel_min = true\n",
            r#"units."cz-c2".scoring.max_travel_min"#,
            "invalid type",
        ),
        ("[units.\"cz-c2\"]\nscoring = 3\n", r#"units."cz-c2".scoring"#, "invalid type"),
        ("units = [1, 2]\n", "units", "invalid type"),
    ];
    for (text, path, message_start) in cases {
        let e = load_err(text);
        assert!(matches!(&e, PolicyFileError::BadValue { message, .. } if message.starts_with(message_start)), "{e:?}");
        assert_eq!(e.path(), Some(path), "{text}");
        assert!(e.position().is_some(), "{text}: {e:?}");
        assert!(e.to_string().starts_with(&format!("`{path}`: {message_start}")), "{e}");
    }
}

#[test]
fn unknown_units_are_errors() {
    let e = load_err("[units.\"cz-c1\"]\nemergency_fanout = 8\n\n[units.nope]\nemergency_fanout = 3\n");
    assert_eq!(
        e,
        PolicyFileError::UnknownUnit {
            unit: "nope".into(),
            path: r#"units."nope""#.into(),
            at: Some(TextPosition { line: 4, column: 8 }),
        }
    );
    assert_eq!(e.to_string(), r#"`units."nope"`: unknown unit (line 4, column 8)"#);
    // The first in file order is reported, whatever the key order.
    let e = load_err("[units.zz]\n[units.cz]\n[units.aa]\n");
    assert_eq!(e.path(), Some(r#"units."zz""#));
    // Not even a valid id: still an unknown unit, not a panic.
    let e = load_err("[units.\"a b\"]\n");
    assert_eq!(e.path(), Some(r#"units."a b""#));
    assert!(matches!(e, PolicyFileError::UnknownUnit { .. }));
}

#[test]
fn invalid_values_name_the_unit_and_the_key() {
    let e = load_err("[units.\"cz-c1\"]\nemergency_fanout = 0\n");
    assert_eq!(e.path(), Some(r#"units."cz-c1".emergency_fanout"#));
    assert!(
        matches!(&e, PolicyFileError::InvalidValue { unit: Some(u), key: "emergency_fanout", .. } if u.as_str() == "cz-c1")
    );
    assert_eq!(e.to_string(), r#"`units."cz-c1".emergency_fanout`: 0 is not in 1..=64"#);

    // Checked parents first: the unit named is the one that sets the bad value, not a descendant.
    let e = load_err(
        "[units.\"cz-s1\".scoring.weights]\nproximity = -1\n[units.\"cz-i1\".scoring]\nreputation_prior = 2\n",
    );
    assert_eq!(e.path(), Some(r#"units."cz-i1".scoring.reputation_prior"#));

    let e = load_err("[defaults.scoring.urgency]\nurgent = nan\n");
    assert_eq!(e.path(), Some("defaults.scoring.urgency.urgent"));
    assert!(matches!(
        e,
        PolicyFileError::InvalidValue {
            unit: None,
            key: "scoring.urgency.urgent",
            problem: PolicyProblem::NotNonNegative { value },
            ..
        } if value.is_nan()
    ));

    let e = load_err("[defaults]\nevaluation_window_h = 721\n");
    assert_eq!(e.to_string(), "`defaults.evaluation_window_h`: 721 is not in 1..=720 hours");
    assert!(matches!(
        e,
        PolicyFileError::InvalidValue {
            problem: PolicyProblem::OutOfRange { value: 721, min: 1, max: 720, unit: " hours" },
            ..
        }
    ));
    let e = load_err("[defaults]\nescalate_after_misses = 0\n");
    assert!(matches!(
        e,
        PolicyFileError::InvalidValue { problem: PolicyProblem::BelowMinimum { value: 0, min: 1 }, .. }
    ));
    let e = load_err("[defaults.credit]\nurgent_pct = 0\n");
    assert!(matches!(&e, PolicyFileError::InvalidValue { problem: PolicyProblem::Credit(_), .. }), "{e:?}");
    // An invalid default is an error even if every unit overrides it.
    let e = load_err("[defaults]\nemergency_fanout = 65\n[units.cz]\nemergency_fanout = 5\n");
    assert_eq!(e.path(), Some("defaults.emergency_fanout"));
}

/// A policy in which every key differs from its default (and every float from the others).
fn all_changed() -> LifecyclePolicy {
    LifecyclePolicy {
        offer_deadline_s: 11,
        urgent_offer_deadline_s: 12,
        emergency_offer_deadline_s: 13,
        emergency_fanout: 14,
        recruitment_deadline_s: 15,
        start_scope: UnitKind::City,
        emergency_start_scope: UnitKind::Institute,
        escalate_after_misses: 16,
        escalate_after_min: 17,
        evaluation_window_h: 18,
        retention_h: 19,
        rating_weight_resident: 0.31,
        rating_weight_station: 0.32,
        rating_weight_team: 0.33,
        rating_weight_third_party: 0.34,
        missing_rating_score: 2,
        third_party_sample_rate: 0.35,
        scoring: ScoringPolicy {
            weights: Weights { proximity: 1.1, reputation: 1.2, fairness: 1.3, continuity: 1.4, specificity: 1.5 },
            max_travel_min: 1.6,
            urgency: UrgencyFactors { normal: 1.7, urgent: 1.8, emergency: 1.9 },
            reputation_prior: 0.21,
            continuity_paired: 0.22,
            continuity_served_before: 0.23,
        },
        credit: CreditPolicy {
            points_per_hour: 41,
            team_points_per_hour: 42,
            urgent_pct: 143,
            night_pct: 144,
            holiday_pct: 145,
        },
    }
}

#[test]
fn every_key_of_the_policy_is_read_from_the_file() {
    let changed = all_changed();
    // The keys LifecyclePolicy serialises are exactly the keys the file reads.
    let text = toml::to_string(&changed).expect("a policy serialises");
    let as_defaults =
        format!("[defaults]\n{text}").replace("[scoring", "[defaults.scoring").replace("[credit", "[defaults.credit");
    let units = tree();
    let book = PolicyBook::from_toml(&as_defaults, &units).expect("valid");
    assert_eq!(*book.default_policy(), changed);
    assert_eq!(*policy(&book, &units, "cz-s3"), changed);

    // The same keys as one county's table: its subtree has them all, the rest none.
    let as_county = format!("[units.\"cz-c1\"]\n{text}")
        .replace("[scoring", "[units.\"cz-c1\".scoring")
        .replace("[credit", "[units.\"cz-c1\".credit");
    let book = PolicyBook::from_toml(&as_county, &units).expect("valid");
    assert_eq!(*policy(&book, &units, "cz-s2"), changed);
    assert_eq!(*policy(&book, &units, "cz-c2"), LifecyclePolicy::default());
}

/// The dotted paths of every non-table value of a table.
fn leaf_keys(table: &toml::Table, prefix: &str, out: &mut Vec<String>) {
    for (k, v) in table {
        let path = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
        match v {
            toml::Value::Table(t) => leaf_keys(t, &path, out),
            _ => out.push(path),
        }
    }
}

#[test]
fn merging_overrides_keys_and_merges_nested_tables() {
    let parse = |t: &'static str| DeTable::parse(t).expect("valid TOML").into_inner();
    let mut base = parse("a = 1\nb = 2\n[t]\nx = 1\ny = 2\n[u]\nz = 1\n");
    merge::merge(&mut base, &parse("b = 3\nu = 4\n[t]\ny = 5\n[v]\nw = 6\n"));
    let text = format!("{:?}", toml::Table::deserialize(toml::Deserializer::from(toml::Spanned::new(0..0, base))));
    assert_eq!(
        text,
        format!("{:?}", toml::from_str::<toml::Table>("a = 1\nb = 3\nu = 4\n[t]\nx = 1\ny = 5\n[v]\nw = 6\n"))
    );
}

#[test]
fn the_example_file_loads_and_inherits() {
    use UnitKind::*;
    let text = include_str!("../../../../../examples/policy.toml");
    let units = UnitTree::build(&[
        spec("cz", City, None),
        spec("cz-xh", County, Some("cz")),
        spec("cz-xh-jd", Institute, Some("cz-xh")),
        spec("cz-xh-jd-bj", Station, Some("cz-xh-jd")),
        spec("cz-xh-jd-nj", Station, Some("cz-xh-jd")),
        spec("cz-yh", County, Some("cz")),
    ])
    .expect("valid tree");
    let book = PolicyBook::from_toml(text, &units).expect("the example is valid");
    let october = |d| NaiveDate::from_ymd_opt(2026, 10, d).expect("a date");
    assert_eq!(book.holidays().collect::<Vec<_>>(), [october(1), october(2), october(3)]);
    assert!(book.is_holiday(october(2)) && !book.is_holiday(october(4)));
    assert_eq!(*book.memory(), crate::lifecycle::MemoryPolicy::default());

    // The example's [defaults] table lists every key, at its built-in default.
    let example: toml::Table = toml::from_str(text).expect("parses");
    let Some(toml::Value::Table(defaults)) = example.get("defaults") else { panic!("the example has [defaults]") };
    let (mut listed, mut every) = (Vec::new(), Vec::new());
    leaf_keys(defaults, "", &mut listed);
    leaf_keys(&toml::Table::try_from(LifecyclePolicy::default()).expect("a policy serialises"), "", &mut every);
    listed.sort();
    every.sort();
    assert_eq!(listed, every, "keep the example complete");
    assert_eq!(*book.default_policy(), LifecyclePolicy::default());
    assert_eq!(*policy(&book, &units, "cz"), LifecyclePolicy::default());
    assert_eq!(*policy(&book, &units, "cz-yh"), LifecyclePolicy::default());

    let county = *policy(&book, &units, "cz-xh");
    assert_ne!(county, LifecyclePolicy::default());
    assert_eq!(county.emergency_fanout, 8);
    assert_eq!(county.scoring.weights.proximity, 0.5);
    assert_eq!(county.scoring.weights.reputation, Weights::default().reputation);
    assert_eq!(*policy(&book, &units, "cz-xh-jd"), county);
    assert_eq!(*policy(&book, &units, "cz-xh-jd-nj"), county);

    let station = *policy(&book, &units, "cz-xh-jd-bj");
    assert_eq!(station.offer_deadline_s, 3600);
    assert_eq!(station.start_scope, Institute);
    assert_eq!(station.emergency_fanout, 8, "inherited from the county");
    assert_eq!(station.scoring.weights, county.scoring.weights);
    assert_eq!(station.scoring.continuity_served_before, 0.7);
}

/// Every key with a few valid TOML literals, and how the reference model sets it.
type KeyCase = (&'static str, &'static [&'static str], fn(&mut LifecyclePolicy, &str));

fn int(v: &str) -> u32 {
    v.parse().expect("an integer literal")
}

fn float(v: &str) -> f64 {
    v.parse().expect("a number literal")
}

fn kind(v: &str) -> UnitKind {
    match v {
        "\"city\"" => UnitKind::City,
        "\"county\"" => UnitKind::County,
        "\"institute\"" => UnitKind::Institute,
        "\"station\"" => UnitKind::Station,
        other => panic!("not a unit kind literal: {other}"),
    }
}

const KINDS: &[&str] = &["\"city\"", "\"county\"", "\"institute\"", "\"station\""];

fn keys() -> Vec<KeyCase> {
    vec![
        ("offer_deadline_s", &["1", "900", "2592000"], |p, v| p.offer_deadline_s = int(v)),
        ("urgent_offer_deadline_s", &["1", "300"], |p, v| p.urgent_offer_deadline_s = int(v)),
        ("emergency_offer_deadline_s", &["60", "120"], |p, v| p.emergency_offer_deadline_s = int(v)),
        ("emergency_fanout", &["1", "7", "64"], |p, v| p.emergency_fanout = int(v)),
        ("recruitment_deadline_s", &["3600", "86400"], |p, v| p.recruitment_deadline_s = int(v)),
        ("start_scope", KINDS, |p, v| p.start_scope = kind(v)),
        ("emergency_start_scope", KINDS, |p, v| p.emergency_start_scope = kind(v)),
        ("escalate_after_misses", &["1", "4294967295"], |p, v| p.escalate_after_misses = int(v)),
        ("escalate_after_min", &["1", "43200"], |p, v| p.escalate_after_min = int(v)),
        ("evaluation_window_h", &["1", "720"], |p, v| p.evaluation_window_h = int(v)),
        ("retention_h", &["1", "8784"], |p, v| p.retention_h = int(v)),
        ("rating_weight_resident", &["0.4", "1"], |p, v| p.rating_weight_resident = float(v)),
        ("rating_weight_station", &["0", "0.25"], |p, v| p.rating_weight_station = float(v)),
        ("rating_weight_team", &["0", "0.1"], |p, v| p.rating_weight_team = float(v)),
        ("rating_weight_third_party", &["0", "0.5"], |p, v| p.rating_weight_third_party = float(v)),
        ("missing_rating_score", &["1", "3", "5"], |p, v| p.missing_rating_score = int(v) as u8),
        ("third_party_sample_rate", &["0", "0.1", "1"], |p, v| p.third_party_sample_rate = float(v)),
        ("scoring.weights.proximity", &["0", "0.5", "3"], |p, v| p.scoring.weights.proximity = float(v)),
        ("scoring.weights.reputation", &["0.0", "1.25"], |p, v| p.scoring.weights.reputation = float(v)),
        ("scoring.weights.fairness", &["0.3", "2"], |p, v| p.scoring.weights.fairness = float(v)),
        ("scoring.weights.continuity", &["0", "0.05"], |p, v| p.scoring.weights.continuity = float(v)),
        ("scoring.weights.specificity", &["0.4", "1e-3"], |p, v| p.scoring.weights.specificity = float(v)),
        ("scoring.max_travel_min", &["0.5", "90"], |p, v| p.scoring.max_travel_min = float(v)),
        ("scoring.urgency.normal", &["0", "1.5"], |p, v| p.scoring.urgency.normal = float(v)),
        ("scoring.urgency.urgent", &["3", "2.5"], |p, v| p.scoring.urgency.urgent = float(v)),
        ("scoring.urgency.emergency", &["8", "10.0"], |p, v| p.scoring.urgency.emergency = float(v)),
        ("scoring.reputation_prior", &["0", "1", "0.45"], |p, v| p.scoring.reputation_prior = float(v)),
        ("scoring.continuity_paired", &["0.9", "1.0"], |p, v| p.scoring.continuity_paired = float(v)),
        ("scoring.continuity_served_before", &["0", "0.25"], |p, v| p.scoring.continuity_served_before = float(v)),
    ]
}

/// One override: (key index, value index), both reduced modulo the table sizes.
type Overrides = Vec<(usize, usize)>;

/// The overrides as a TOML table body, one dotted key per line (the last setting of a key wins).
fn settings(keys: &[KeyCase], overrides: &Overrides) -> BTreeMap<usize, &'static str> {
    overrides
        .iter()
        .map(|&(k, v)| {
            let k = k % keys.len();
            (k, keys[k].1[v % keys[k].1.len()])
        })
        .collect()
}

proptest! {
    /// Resolution equals folding the defaults, then the overrides of the unit's ancestors from the
    /// root down, then its own, onto the built-in defaults, one key at a time.
    #[test]
    fn resolution_matches_folding_ancestors_then_self(
        parents in proptest::collection::vec(0usize..1000, 0..12),
        defaults in proptest::collection::vec((0usize..100, 0usize..10), 0..4),
        placed in proptest::collection::vec((0usize..100, proptest::collection::vec((0usize..100, 0usize..10), 0..4)), 0..8),
    ) {
        use UnitKind::*;
        // A random forest of up to two cities, with each unit's parent among the earlier non-stations.
        let mut specs = vec![spec("u0", City, None)];
        for (i, p) in parents.iter().enumerate() {
            let id = format!("u{}", i + 1);
            if p % 7 == 0 && specs.iter().filter(|s| s.kind == City).count() < 2 {
                specs.push(spec(&id, City, None));
                continue;
            }
            let choices: Vec<&UnitSpec> = specs.iter().filter(|s| s.kind != Station).collect();
            let parent = choices[p % choices.len()];
            let kind = match parent.kind { City => County, County => Institute, _ => Station };
            let parent = parent.id.to_string();
            specs.push(spec(&id, kind, Some(&parent)));
        }
        let units = UnitTree::build(&specs).expect("valid tree");
        let keys = keys();

        let mut per_unit: BTreeMap<UnitIdx, Overrides> = BTreeMap::new();
        for (u, o) in placed {
            per_unit.entry(UnitIdx((u % units.len()) as u32)).or_default().extend(o);
        }
        let mut text = String::from("[defaults]\n");
        for (k, v) in settings(&keys, &defaults) {
            text.push_str(&format!("{} = {v}\n", keys[k].0));
        }
        for (idx, o) in &per_unit {
            text.push_str(&format!("\n[units.\"{}\"]\n", units.get(*idx).id));
            for (k, v) in settings(&keys, o) {
                text.push_str(&format!("{} = {v}\n", keys[k].0));
            }
        }
        let book = PolicyBook::from_toml(&text, &units).map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;

        let fold = |p: &mut LifecyclePolicy, o: &Overrides| {
            for (k, v) in settings(&keys, o) {
                (keys[k].2)(p, v);
            }
        };
        let mut root = LifecyclePolicy::default();
        fold(&mut root, &defaults);
        prop_assert_eq!(book.default_policy(), &root);
        for (idx, _) in units.iter() {
            let mut chain: Vec<UnitIdx> = units.ancestors(idx).collect();
            chain.reverse();
            chain.push(idx);
            let mut expect = root;
            for u in chain {
                if let Some(o) = per_unit.get(&u) {
                    fold(&mut expect, o);
                }
            }
            prop_assert_eq!(book.for_unit(idx), &expect, "unit {}\n{}", units.get(idx).id, text);
        }
    }
}

#[test]
fn key_errors_name_the_unit_that_writes_the_key_not_its_descendants() {
    // cz-s1 is listed first, but its ancestors are read first.
    let e = load_err("[units.\"cz-s1\"]\noffer_deadline_s = 5\n[units.\"cz-c1\"]\nbogus = 1\n");
    assert_eq!(e.path(), Some(r#"units."cz-c1".bogus"#));
    assert_eq!(e.position(), Some(TextPosition { line: 4, column: 1 }));
    // A wrong type a child would override is still the parent's error.
    let e = load_err("[units.\"cz-c1\"]\nemergency_fanout = \"x\"\n[units.\"cz-i1\"]\nemergency_fanout = 3\n");
    assert_eq!(e.path(), Some(r#"units."cz-c1".emergency_fanout"#));
    assert!(matches!(e, PolicyFileError::BadValue { at: Some(TextPosition { line: 2, .. }), .. }), "{e:?}");
    // A table where a value is expected, and a value where a table is expected.
    let e = load_err("[units.\"cz-i1\"]\noffer_deadline_s = { a = 1 }\n");
    assert_eq!(e.path(), Some(r#"units."cz-i1".offer_deadline_s"#));
    let e = load_err("[defaults]\ncredit = 1\n");
    assert_eq!(e.path(), Some("defaults.credit"));
    let e = load_err("defaults = 1\n");
    assert!(matches!(&e, PolicyFileError::BadValue { path, .. } if path == "defaults"), "{e:?}");
    let e = load_err("[units]\n\"cz-c1\" = 1\n");
    assert_eq!(e.path(), Some(r#"units."cz-c1""#));
}

#[test]
fn the_memory_table_is_city_wide_and_checked() {
    let units = tree();
    let book = PolicyBook::from_toml("[memory]\nledger_days = 90\n", &units).expect("valid");
    assert_eq!(book.memory().ledger_days, 90);
    assert_eq!(book.memory().retired_ids_days, 30, "a key left out keeps its default");
    match load_err("[memory]\nretired_ids_days = 0\n") {
        PolicyFileError::InvalidValue { unit: None, path, problem, .. } => {
            assert_eq!(path, "memory.retired_ids_days");
            assert_eq!(problem, PolicyProblem::range(0u32, 1, 3660, " days"));
        }
        other => panic!("{other:?}"),
    }
    let err = load_err("[memory]\nledger_dayz = 9\n");
    assert_eq!(err.path(), Some("memory.ledger_dayz"), "{err}");
}

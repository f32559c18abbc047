//! `sidan demo`: load a generated county and show, for a few requests, the
//! ranked teams with the terms of their scores and why nearby teams were not
//! eligible.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use sidan::core::dispatch::{Dispatcher, Explanation, RankQuery, Rejection};
use sidan::core::geo::StraightLine;
use sidan::core::request::Request;
use sidan::core::score::ScoringPolicy;
use sidan::sim::{CityConfig, DemandConfig, generate_city, generate_requests};

/// Arguments of `sidan demo`.
#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Load this city file instead of generating one.
    #[arg(long)]
    city: Option<PathBuf>,
    /// Write the generated city file here.
    #[arg(long)]
    save_city: Option<PathBuf>,
    /// Number of teams of the generated county.
    #[arg(long, default_value_t = 370)]
    teams: usize,
    /// Seed of the generated city and requests.
    #[arg(long, default_value_t = 2026)]
    seed: u64,
    /// Number of requests to rank.
    #[arg(long, default_value_t = 4)]
    requests: usize,
    /// Teams to show per request.
    #[arg(long, short, default_value_t = 5)]
    k: usize,
    /// Radius around a request in which ineligible teams are explained, in km.
    #[arg(long, default_value_t = 8.0)]
    radius_km: f64,
    /// Scoring policy file (JSON; see docs/ARCHITECTURE.md and the `score` module).
    #[arg(long)]
    policy: Option<PathBuf>,
    /// Print the explanations as JSON instead of text.
    #[arg(long)]
    json: bool,
}

/// Runs `sidan demo`.
pub fn run(args: &DemoArgs) -> ExitCode {
    match demo(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn demo(args: &DemoArgs) -> anyhow::Result<()> {
    if !(args.radius_km.is_finite() && args.radius_km > 0.0) {
        anyhow::bail!("--radius-km must be a positive number, got {}", args.radius_km);
    }
    let (city, index) = match &args.city {
        Some(path) => sidan::load_city(path)?,
        None => {
            let file = generate_city(&CityConfig { seed: args.seed, teams: args.teams, ..CityConfig::default() });
            if let Some(path) = &args.save_city {
                let text = serde_json::to_string_pretty(&file)?;
                std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
            }
            file.build().context("the generated city is invalid")?
        }
    };
    let n_teams = index.len();
    let n_units = city.units().len();
    let demand = DemandConfig { seed: args.seed, requests: args.requests, ..DemandConfig::default() };
    let specs = generate_requests(&city, &demand);
    let policy = match &args.policy {
        Some(path) => {
            let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
            let de = &mut serde_json::Deserializer::from_str(&text);
            let policy: ScoringPolicy = serde_path_to_error::deserialize(de)
                .map_err(|e| anyhow::anyhow!("{}: at `{}`: {}", path.display(), e.path(), e.inner()))?;
            policy.validate().map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
            policy
        }
        None => ScoringPolicy::default(),
    };
    let dispatcher = Dispatcher::with_policy(city, index, policy, StraightLine::default())?;
    let now = demand.start;
    let mut out = String::new();
    if !args.json {
        writeln!(out, "sidan demo: {n_teams} teams, {n_units} units, seed {}, now {now}\n", args.seed)?;
    }
    let mut all = Vec::new();
    for spec in specs {
        let req = Request::new(spec, dispatcher.city()).context("a generated request is invalid")?;
        let ex = dispatcher.explain(&req, now, &RankQuery::top(args.k), args.radius_km * 1000.0, 8);
        if args.json {
            all.push(ex);
        } else {
            render(&mut out, &dispatcher, &req, &ex)?;
        }
    }
    if args.json {
        out = serde_json::to_string_pretty(&all)?;
    }
    println!("{out}");
    Ok(())
}

fn render(out: &mut String, d: &Dispatcher, req: &Request, ex: &Explanation) -> anyhow::Result<()> {
    let s = req.spec();
    let tz = d.city().units().get(req.unit()).tz;
    let w = req.window();
    writeln!(
        out,
        "Request {} · {} at {} · {} – {} ({}) · {} min · {:?}",
        s.id,
        s.service,
        s.unit,
        w.start().with_timezone(&tz).format("%a %Y-%m-%d %H:%M"),
        w.end().with_timezone(&tz).format("%H:%M"),
        tz,
        req.duration_min(),
        s.urgency,
    )?;
    let c = s.contact.masked();
    writeln!(out, "  contact (masked): {} {} · {}", c.name, c.phone, c.community)?;
    writeln!(
        out,
        "  needs: {}",
        d.city().skills().ids(&req.skills()).iter().map(|x| x.as_str()).collect::<Vec<_>>().join(", ")
    )?;
    writeln!(out, "  scope: {} · {} shown", ex.scope, ex.ranked.len())?;
    if ex.ranked.is_empty() {
        writeln!(out, "  no eligible team: the request would be escalated")?;
    } else {
        writeln!(out, "  rank team       score  dist km  travel min   prox   rep  fair  cont  spec")?;
        for (i, r) in ex.ranked.iter().enumerate() {
            let t = &r.terms;
            writeln!(
                out,
                "  {:>4} {:<10} {:>6.3} {:>8.1} {:>11.1}  {:>5.2} {:>5.2} {:>5.2} {:>5.2} {:>5.2}",
                i + 1,
                r.team,
                r.score,
                r.distance_m / 1000.0,
                r.travel_s / 60.0,
                t.proximity,
                t.reputation,
                t.fairness,
                t.continuity,
                t.specificity
            )?;
        }
    }
    if !ex.rejected.is_empty() {
        writeln!(out, "  not eligible nearby ({} shown, teams with the skills first):", ex.rejected.len())?;
        for r in &ex.rejected {
            let why: Vec<String> = r.reasons.iter().map(describe).collect();
            writeln!(out, "    {:<10} {:>5.1} km  {}", r.team, r.distance_m / 1000.0, why.join("; "))?;
        }
    }
    writeln!(out)?;
    Ok(())
}

fn describe(r: &Rejection) -> String {
    match r {
        Rejection::Inactive => "inactive".into(),
        Rejection::OutOfScope { unit, scope } => format!("unit {unit} outside scope {scope}"),
        Rejection::MissingSkills { skills } => {
            format!("lacks {}", skills.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", "))
        }
        Rejection::AtCapacity { load, capacity } => format!("at capacity ({load}/{capacity})"),
        Rejection::Declined => "declined before".into(),
        Rejection::OutOfReach { distance_m, reach_m } => {
            format!("beyond reach ({:.1} km > {:.1} km)", distance_m / 1000.0, reach_m / 1000.0)
        }
        Rejection::Unavailable => "not available in the window".into(),
        other => format!("{other:?}"),
    }
}

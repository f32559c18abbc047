//! `sidan simulate`: the main job. A seeded city runs for a week: residents
//! submit requests, the engine dispatches them through its store, simulated
//! teams answer, serve and rate, and the report says what became of them.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use sidan::core::lifecycle::PolicyBook;
use sidan::core::report::{Outcome, UnitReport};
use sidan::runtime::MemoryStore;
use sidan::sim::{BehaviourConfig, CityConfig, DemandConfig, SimOutcome, generate_city, generate_requests};
use sidan::store_postgres::{PgConfig, PgStore};
use sidan::store_sqlite::{SqliteConfig, SqliteStore, Synchronous};

/// Arguments of `sidan simulate`.
#[derive(Debug, clap::Args)]
pub struct SimulateArgs {
    /// Load this city file instead of generating one.
    #[arg(long)]
    city: Option<PathBuf>,
    /// Number of teams of the generated city (Cangzhou has about 6,000).
    #[arg(long, default_value_t = 6_000)]
    teams: usize,
    /// Number of requests over the simulated days.
    #[arg(long, default_value_t = 5_000)]
    requests: usize,
    /// Days over which requests' windows start.
    #[arg(long, default_value_t = 7)]
    days: u32,
    /// Seed of the city, the requests and the simulated behaviour.
    #[arg(long, default_value_t = 2026)]
    seed: u64,
    /// Per-unit lifecycle policy file (TOML; see docs/policy.md).
    #[arg(long)]
    policy: Option<PathBuf>,
    /// Where the events go: `sqlite` (the embedded default store, a file),
    /// `postgres` (see `--pg-url`) or `memory`.
    #[arg(long, default_value = "sqlite")]
    store: StoreKind,
    /// The PostgreSQL server for `--store postgres`; `sslmode=require` in it
    /// connects with TLS and checks the server's certificate.
    #[arg(long, env = "SIDAN_PG_URL", default_value = sidan::store_postgres::DEFAULT_URL)]
    pg_url: String,
    /// The PostgreSQL schema the simulation writes to (created if missing; it must hold no events).
    #[arg(long, default_value = "sidan_simulate")]
    pg_schema: String,
    /// Trust the certificate authorities in this PEM file for PostgreSQL's
    /// TLS, instead of the Mozilla roots.
    #[arg(long)]
    pg_ca_file: Option<PathBuf>,
    /// The SQLite file; a file in the temporary directory by default (replaced at each run). An
    /// existing file of your own is refused unless `--replace-db` is given.
    #[arg(long)]
    db: Option<PathBuf>,
    /// Delete the existing `--db` file (and its `-wal`, `-shm`) and start a new one.
    #[arg(long, requires = "db")]
    replace_db: bool,
    /// Fsync every commit (`full`: durable across power loss) or only at checkpoints (`normal`:
    /// durable across a crash of the program, much faster).
    #[arg(long, default_value = "normal")]
    durability: Durability,
    /// Write the report as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Write the monthly statistics and the quarterly bulletin per unit
    /// (JSON and CSV) into this directory.
    #[arg(long)]
    out: Option<PathBuf>,
}

/// Which store the simulation writes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum StoreKind {
    /// The embedded SQLite store.
    Sqlite,
    /// A PostgreSQL database.
    Postgres,
    /// In memory only.
    Memory,
}

/// How durable each SQLite commit is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Durability {
    /// `PRAGMA synchronous = FULL`.
    Full,
    /// `PRAGMA synchronous = NORMAL`.
    Normal,
}

/// Runs `sidan simulate`.
pub fn run(args: &SimulateArgs) -> ExitCode {
    match simulate(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn simulate(args: &SimulateArgs) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let (city, index) = match &args.city {
        Some(path) => sidan::load_city(path)?,
        None => generate_city(&CityConfig { seed: args.seed, teams: args.teams, ..CityConfig::default() })
            .build()
            .context("the generated city is invalid")?,
    };
    let policies = match &args.policy {
        Some(path) => {
            let text = std::fs::read_to_string(path).with_context(|| format!("{}", path.display()))?;
            PolicyBook::from_toml(&text, city.units()).with_context(|| format!("{}", path.display()))?
        }
        None => PolicyBook::default(),
    };
    let demand = DemandConfig { seed: args.seed, requests: args.requests, days: args.days, ..DemandConfig::default() };
    let requests = generate_requests(&city, &demand);
    let start = demand.start - chrono::Duration::days(2);
    let behaviour = BehaviourConfig { seed: args.seed, ..BehaviourConfig::default() };
    let (n_teams, n_units) = (index.len(), city.units().len());
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let (outcome, where_) = match args.store {
        StoreKind::Memory => {
            let store = MemoryStore::new();
            (
                rt.block_on(sidan::sim::run(city, index, policies, requests, behaviour, start, store))?,
                "in-memory store".to_owned(),
            )
        }
        StoreKind::Sqlite => {
            let path = args
                .db
                .clone()
                .unwrap_or_else(|| std::env::temp_dir().join(format!("sidan-simulate-{}.db", args.seed)));
            anyhow::ensure!(
                args.db.is_none() || args.replace_db || !path.exists(),
                "{} exists: pass --replace-db to delete it and start a new store there",
                path.display()
            );
            for suffix in ["", "-wal", "-shm"] {
                let p = PathBuf::from(format!("{}{suffix}", path.display()));
                if p.exists() {
                    std::fs::remove_file(&p).with_context(|| format!("{}", p.display()))?;
                }
            }
            let synchronous = match args.durability {
                Durability::Full => Synchronous::Full,
                Durability::Normal => Synchronous::Normal,
            };
            let store = SqliteStore::open(&path, SqliteConfig { synchronous, ..SqliteConfig::default() })
                .with_context(|| format!("{}", path.display()))?;
            let outcome = rt.block_on(sidan::sim::run(city, index, policies, requests, behaviour, start, store))?;
            (outcome, format!("SQLite store {} (synchronous {:?})", path.display(), args.durability).to_lowercase())
        }
        StoreKind::Postgres => {
            let mut config = PgConfig::new(args.pg_url.clone()).with_schema(args.pg_schema.clone());
            config.ca_file.clone_from(&args.pg_ca_file);
            let store = rt.block_on(PgStore::open(&config)).context("PostgreSQL")?;
            let head = rt.block_on(store.head())?;
            anyhow::ensure!(
                head.0 == 0,
                "PostgreSQL schema {} already holds {} events: choose another --pg-schema, or drop it",
                args.pg_schema,
                head.0
            );
            let outcome = rt.block_on(sidan::sim::run(city, index, policies, requests, behaviour, start, store))?;
            (outcome, format!("PostgreSQL store, schema {}", args.pg_schema))
        }
    };
    print_report(&outcome, n_teams, n_units, args, &where_, started.elapsed());
    if let Some(dir) = &args.out {
        std::fs::create_dir_all(dir).with_context(|| format!("{}", dir.display()))?;
        for (name, report) in [("monthly", &outcome.monthly), ("quarterly", &outcome.quarterly)] {
            let json = dir.join(format!("{name}.json"));
            std::fs::write(&json, serde_json::to_string_pretty(report)?)
                .with_context(|| format!("{}", json.display()))?;
            let csv = dir.join(format!("{name}.csv"));
            let file = std::fs::File::create(&csv).with_context(|| format!("{}", csv.display()))?;
            sidan::core::report::csv::write(report, file).with_context(|| format!("{}", csv.display()))?;
            let csv = dir.join(format!("{name}-stock.csv"));
            let file = std::fs::File::create(&csv).with_context(|| format!("{}", csv.display()))?;
            sidan::core::report::csv::write_stock(report, file).with_context(|| format!("{}", csv.display()))?;
        }
        println!(
            "\nMonthly statistics and quarterly bulletin per unit written to {} (JSON, CSV, and goods per item in *-stock.csv)",
            dir.display()
        );
    }
    if let Some(path) = &args.json {
        let text = serde_json::to_string_pretty(&outcome)?;
        std::fs::write(path, text).with_context(|| format!("{}", path.display()))?;
        println!("\nReport written to {}", path.display());
    }
    Ok(())
}

fn pct(x: f64) -> String {
    format!("{:.1}%", 100.0 * x)
}

fn minutes(m: Option<u32>) -> String {
    m.map_or_else(
        || "-".to_owned(),
        |m| if m < 90 { format!("{m} min") } else { format!("{:.1} h", f64::from(m) / 60.0) },
    )
}

fn row(name: &str, u: &UnitReport) -> String {
    format!(
        "{name:<10} {:>7} {:>7} {:>8} {:>8} {:>7} {:>9} {:>7} {:>6} {:>9} {:>9} {:>7}",
        u.requests,
        u.outcome(Outcome::Closed),
        u.outcome(Outcome::Cancelled),
        u.outcome(Outcome::Expired),
        u.outcome(Outcome::Unfulfillable),
        pct(u.fulfilment),
        u.escalations,
        u.recruitment_orders,
        minutes(u.to_accept_min.p50),
        minutes(u.to_accept_min.p90),
        u.satisfaction.map_or_else(|| "-".to_owned(), |r| format!("{r:.2}")),
    )
}

fn print_report(
    o: &SimOutcome,
    teams: usize,
    units: usize,
    args: &SimulateArgs,
    store: &str,
    took: std::time::Duration,
) {
    let summary = &o.report;
    println!(
        "sidan simulate: seed {}, {teams} teams, {units} units, {} requests over {} days",
        args.seed,
        summary.city.as_ref().map_or(0, |c| c.requests),
        args.days
    );
    println!("engine: {store}; {} events stored; log hash {}; {:.1} s", o.events, o.log_hash, took.as_secs_f64());
    let Some(c) = &summary.city else {
        println!("nothing happened: no request was submitted and no station was stocked");
        return;
    };
    println!();
    println!(
        "{:<10} {:>7} {:>7} {:>8} {:>8} {:>7} {:>9} {:>7} {:>6} {:>9} {:>9} {:>7}",
        "county",
        "reqs",
        "closed",
        "cancel",
        "expired",
        "unfulf",
        "fulfilled",
        "widened",
        "recruit",
        "accept50",
        "accept90",
        "rating"
    );
    for county in &summary.counties {
        println!("{}", row(county.unit.as_str(), county));
    }
    println!("{}", row("city", c));
    println!();
    let worst = summary.most_unfulfillable();
    if !worst.is_empty() {
        let w: Vec<String> = worst.iter().take(5).map(|(s, n, of)| format!("{s} {n}/{of}")).collect();
        println!("most unfulfillable services (unfulfillable/requests): {}", w.join(", "));
    }
    println!(
        "offers {}, no-shows {}, service {:.0} h, ratings {} ({} missing, counted at the default), disputes {} ({} found not served), still open {}",
        c.offers,
        c.no_shows,
        c.hours_served(),
        c.ratings,
        c.defaulted_ratings,
        c.disputes,
        c.not_served,
        c.outcome(Outcome::Open)
    );
    let l = &c.ledger;
    println!(
        "ledger: points issued {} and {} minutes banked by service credits; points redeemed {}; reservation legs expired {}, voided {} (two legs a redemption); {} banked minutes spent",
        l.points_credited,
        l.minutes_banked,
        l.points_redeemed,
        l.reservations_expired,
        l.reservations_voided,
        l.minutes_withdrawn
    );
    let goods: Vec<String> = l
        .goods
        .iter()
        .map(|(item, g)| format!("{item} {} in, {} out, {} left", g.received, g.handed_out, g.on_hand))
        .collect();
    if !goods.is_empty() {
        println!("love supermarkets (all stations): {}", goods.join("; "));
    }
    if !o.refused.is_empty() {
        let r: Vec<String> = o.refused.iter().map(|(k, v)| format!("{k} {v}")).collect();
        println!("refused commands (simulated parties acting late or twice): {}", r.join(", "));
    }
}

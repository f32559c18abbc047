//! `sidan events`: the event log of a SQLite store as JSON lines, one event per line with its
//! position, whatever form its body is stored in. Contacts are masked unless asked for. With
//! `--cloudevents SOURCE`, each line is the CloudEvent the bus would publish (always masked),
//! without `sidanunits`: placing an event in the unit hierarchy needs the city.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use sidan::runtime::{Position, Published, Store as _};
use sidan::store_sqlite::{SqliteConfig, SqliteStore};

/// Arguments of `sidan events`.
#[derive(Debug, clap::Args)]
pub struct EventsArgs {
    /// The SQLite store's file (it must exist).
    db: PathBuf,
    /// Print from the event after this position.
    #[arg(long, default_value_t = 0)]
    after: u64,
    /// Print at most this many events.
    #[arg(long)]
    limit: Option<u64>,
    /// Show residents' contacts and homes in full, as the serving team's admins may see them
    /// (masked, a home's location is shown to about 100 m).
    #[arg(long, conflicts_with = "cloudevents")]
    reveal_contacts: bool,
    /// Print each event as the CloudEvent the bus publishes, from this source (a URI-reference
    /// naming the deployment, like `/sidan/cangzhou`); contacts are masked.
    #[arg(long, value_name = "SOURCE")]
    cloudevents: Option<String>,
}

/// Prints the events; exit code 1 with a message on stderr if the store cannot be read.
pub fn run(args: &EventsArgs) -> ExitCode {
    match print(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sidan events: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn print(args: &EventsArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.db.is_file(), "{}: no such store file", args.db.display());
    let store = SqliteStore::open(&args.db, SqliteConfig::default()).with_context(|| args.db.display().to_string())?;
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let (mut at, mut left) = (Position(args.after), args.limit.unwrap_or(u64::MAX));
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    while left > 0 {
        let page = rt.block_on(store.read_from(at, left.min(4096) as usize))?;
        let Some(last) = page.last() else { break };
        at = last.position;
        left -= page.len() as u64;
        for s in &page {
            let line = match &args.cloudevents {
                Some(source) => {
                    let ce = Published::of(s).to_cloudevent_json(source)?;
                    String::from_utf8(ce).context("a CloudEvent is UTF-8")?
                }
                None => {
                    let record = if args.reveal_contacts { s.record.clone() } else { s.record.masked() };
                    serde_json::json!({ "position": s.position.0, "record": record }).to_string()
                }
            };
            if let Err(e) = writeln!(out, "{line}") {
                return quiet_on_closed_pipe(e);
            }
        }
    }
    out.flush().or_else(quiet_on_closed_pipe)
}

/// A reader that stops reading (`sidan events db | head`) is not an error.
fn quiet_on_closed_pipe(e: std::io::Error) -> anyhow::Result<()> {
    if e.kind() == std::io::ErrorKind::BrokenPipe { Ok(()) } else { Err(e.into()) }
}

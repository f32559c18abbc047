//! `sidan solve`: batch assignment from a problem file.
//!
//! Reads the file (or stdin) and prints the plan as JSON on stdout; the
//! file's model, its validation and the candidate graph are the core's
//! (`sidan::core::batch::file`). Bad input gives one message on stderr
//! naming the file, the entry and the field, exit code 2, and nothing on
//! stdout.

use std::io::{Read, Write};
use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::process::ExitCode;

use sidan::batch_parallel::solve_optimal_parallel;
use sidan::core::batch::file::{MAX_PROBLEM_FILE_BYTES, Objective, ProblemFile};
use sidan::core::batch::solve_greedy;

/// Which solver to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    /// The exact optimum (min-cost flow by successive shortest paths).
    Optimal,
    /// Highest priority first, each to its nearest team with room.
    Greedy,
}

/// What the second objective minimises (the core's [`Objective`], as a
/// command-line value).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ObjectiveArg {
    /// The great-circle distance.
    Distance,
    /// The distance, made dearer near the team's reach and for teams whose
    /// extra skills are wasted: `d · (1 + d / reach) + 500 m · spare skills`.
    Score,
}

impl From<ObjectiveArg> for Objective {
    fn from(arg: ObjectiveArg) -> Self {
        match arg {
            ObjectiveArg::Distance => Objective::Distance,
            ObjectiveArg::Score => Objective::Score,
        }
    }
}

/// Arguments of `sidan solve`.
#[derive(Debug, clap::Args)]
pub struct SolveArgs {
    /// Problem file (JSON, see docs/formats.md); `-` reads stdin.
    #[arg(value_name = "FILE", conflicts_with = "input")]
    path: Option<PathBuf>,
    /// Problem file, as an option.
    #[arg(long, short, value_name = "FILE")]
    input: Option<PathBuf>,
    /// Exact optimum or the greedy baseline.
    #[arg(long, value_enum, default_value_t = Mode::Optimal)]
    mode: Mode,
    /// What the second objective minimises.
    #[arg(long, value_enum, default_value_t = ObjectiveArg::Distance)]
    objective: ObjectiveArg,
    /// Pretty-print the plan.
    #[arg(long)]
    pretty: bool,
    /// Threads for the optimum: the batch's connected components (towns
    /// with no candidate across them) are solved apart, largest first.
    /// Defaults to the number of CPUs; the plan does not depend on it.
    #[arg(long, value_name = "N")]
    threads: Option<NonZeroUsize>,
}

/// Exit code for bad input.
const EXIT_BAD_INPUT: u8 = 2;

/// Runs `sidan solve`.
pub fn run(args: &SolveArgs) -> ExitCode {
    let Some(path) = args.path.as_ref().or(args.input.as_ref()) else {
        eprintln!("sidan solve: no problem file given (pass FILE, --input FILE, or - for stdin)");
        return ExitCode::from(EXIT_BAD_INPUT);
    };
    let name = path.display().to_string();
    let text = match read_input(path) {
        Ok(text) => text,
        Err(e) => {
            eprintln!("sidan solve: {name}: {e}");
            return ExitCode::from(EXIT_BAD_INPUT);
        }
    };
    let parsed = ProblemFile::from_json(&text).and_then(|file| {
        let graph = file.candidate_graph(args.objective.into())?;
        Ok((file, graph))
    });
    let (file, graph) = match parsed {
        Ok(parsed) => parsed,
        Err(e) => {
            eprintln!("sidan solve: {name}: {e}");
            return ExitCode::from(EXIT_BAD_INPUT);
        }
    };
    let plan = match args.mode {
        Mode::Optimal => {
            let threads =
                args.threads.or_else(|| std::thread::available_parallelism().ok()).unwrap_or(NonZeroUsize::MIN);
            solve_optimal_parallel(&graph.problem, threads)
        }
        Mode::Greedy => solve_greedy(&graph.problem),
    };
    let out = file.plan(&graph, &plan);
    let json = if args.pretty { serde_json::to_string_pretty(&out) } else { serde_json::to_string(&out) }
        .expect("a plan always serialises");
    let mut stdout = std::io::stdout().lock();
    match writeln!(stdout, "{json}").and_then(|()| stdout.flush()) {
        Ok(()) => ExitCode::SUCCESS,
        // A closed pipe (e.g. `| head`) is the reader's choice, not an error.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sidan solve: writing the plan: {e}");
            ExitCode::FAILURE
        }
    }
}

fn read_input(path: &PathBuf) -> std::io::Result<String> {
    let limit = MAX_PROBLEM_FILE_BYTES as u64 + 1;
    let mut text = String::new();
    if path.as_os_str() == "-" {
        std::io::stdin().lock().take(limit).read_to_string(&mut text)?;
    } else {
        std::fs::File::open(path)?.take(limit).read_to_string(&mut text)?;
    }
    Ok(text)
}

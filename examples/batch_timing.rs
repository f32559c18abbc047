//! Times the batch solvers on an instance file written by
//! `benches/batch_compare/gen.py`; the Rust side of the side-by-side
//! benchmark (`benches/batch_compare/run.sh`).
//!
//! ```text
//! cargo run --release --example batch_timing -- INSTANCE [REPS]
//! ```
//!
//! Prints one JSON object: the optimum of each solver and the median wall
//! time over `REPS` runs of building the problem (validation + CSR) and of
//! solving it, separately.

use std::time::Instant;

use anyhow::{Context, Result, bail, ensure};
use sidan::core::batch::{BatchEdge, BatchPlan, BatchProblem, solve_greedy, solve_optimal};

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let path = args.next().context("usage: batch_timing INSTANCE [REPS]")?;
    let reps: usize = match args.next() {
        Some(s) => s.parse().context("REPS must be a positive integer")?,
        None => 5,
    };
    ensure!(reps > 0, "REPS must be a positive integer");
    let bytes = std::fs::read(&path).with_context(|| format!("reading {path}"))?;
    let (priority, capacity, edges) = parse(&bytes).with_context(|| format!("parsing {path}"))?;

    let mut build_s = Vec::new();
    let mut problem = None;
    for _ in 0..reps {
        let start = Instant::now();
        let p = BatchProblem::new(priority.clone(), capacity.clone(), &edges)?;
        build_s.push(start.elapsed().as_secs_f64());
        problem = Some(p);
    }
    let problem = problem.context("at least one rep")?;
    let (optimal, optimal_s) = time(reps, || solve_optimal(&problem));
    let (greedy, greedy_s) = time(reps, || solve_greedy(&problem));
    let out = serde_json::json!({
        "n_requests": problem.n_requests(),
        "n_teams": problem.n_teams(),
        "n_edges": problem.n_edges(),
        "build_s": median(build_s),
        "optimal": summary(&optimal, optimal_s),
        "greedy": summary(&greedy, greedy_s),
    });
    println!("{out}");
    Ok(())
}

fn summary(plan: &BatchPlan, times: Vec<f64>) -> serde_json::Value {
    serde_json::json!({
        "served_priority": plan.served_priority,
        "total_cost": plan.total_cost,
        "n_served": plan.n_served,
        "solve_s": median(times),
    })
}

fn time(reps: usize, mut f: impl FnMut() -> BatchPlan) -> (BatchPlan, Vec<f64>) {
    let mut times = Vec::with_capacity(reps);
    let mut plan = None;
    for _ in 0..reps {
        let start = Instant::now();
        let p = f();
        times.push(start.elapsed().as_secs_f64());
        plan = Some(p);
    }
    (plan.expect("reps > 0"), times)
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

fn parse(bytes: &[u8]) -> Result<(Vec<u32>, Vec<u32>, Vec<BatchEdge>)> {
    let mut cur = Cursor { bytes, pos: 0 };
    if cur.take(4)? != b"SDNB" {
        bail!("not a batch instance (bad magic)");
    }
    let version = cur.u32()?;
    ensure!(version == 1, "unknown instance version {version}");
    let n = cur.u32()? as usize;
    let m = cur.u32()? as usize;
    let e = usize::try_from(cur.u64()?)?;
    let priority = (0..n).map(|_| cur.u32()).collect::<Result<Vec<_>>>()?;
    let capacity = (0..m).map(|_| cur.u32()).collect::<Result<Vec<_>>>()?;
    let er = (0..e).map(|_| cur.u32()).collect::<Result<Vec<_>>>()?;
    let et = (0..e).map(|_| cur.u32()).collect::<Result<Vec<_>>>()?;
    let ec = (0..e).map(|_| cur.i64()).collect::<Result<Vec<_>>>()?;
    ensure!(cur.pos == bytes.len(), "trailing bytes");
    let edges = (0..e).map(|i| BatchEdge::new(er[i], et[i], ec[i])).collect();
    Ok((priority, capacity, edges))
}

struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Cursor<'_> {
    fn take(&mut self, len: usize) -> Result<&[u8]> {
        let end = self.pos.checked_add(len).context("length overflow")?;
        let s = self.bytes.get(self.pos..end).context("file is truncated")?;
        self.pos = end;
        Ok(s)
    }
    fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into()?))
    }
    fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into()?))
    }
    fn i64(&mut self) -> Result<i64> {
        Ok(i64::from_le_bytes(self.take(8)?.try_into()?))
    }
}

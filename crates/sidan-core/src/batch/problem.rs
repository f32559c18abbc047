//! The sparse candidate graph of a batch: validation, the CSR layout the
//! solvers walk, and the split into connected components.

use petgraph::unionfind::UnionFind;

use super::BatchError;

/// One candidate pair of a batch: request `request_idx` may be served by team
/// `team_idx` at `cost`.
///
/// Costs are non-negative integers so the lexicographic objective (priority
/// first, cost second) is exact. The CLI uses millimetres of great-circle
/// distance; any unit works as long as it is the same across the batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BatchEdge {
    /// Index of the request, `0..n_requests`.
    pub request_idx: u32,
    /// Index of the team, `0..n_teams`.
    pub team_idx: u32,
    /// Cost of serving the request with the team (≥ 0).
    pub cost: i64,
}

impl BatchEdge {
    /// Shorthand constructor.
    pub fn new(request_idx: u32, team_idx: u32, cost: i64) -> Self {
        Self { request_idx, team_idx, cost }
    }
}

/// A validated batch: requests with priorities, teams with capacities and the
/// sparse candidate edges between them, stored row-wise (CSR) with each
/// request's candidates sorted by `(cost, team_idx)`.
///
/// Duplicate `(request, team)` edges are merged, keeping the cheapest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchProblem {
    pub(crate) priority: Vec<u32>,
    pub(crate) capacity: Vec<u32>,
    /// `row_start[r]..row_start[r + 1]` indexes `adj` for request `r`.
    pub(crate) row_start: Vec<u32>,
    /// The candidates of all requests, row after row.
    pub(crate) adj: Vec<Candidate>,
    /// Σ over requests of the largest candidate cost: an upper bound on any
    /// plan's total cost.
    pub(crate) cost_bound: i64,
}

/// One entry of a request's row: a candidate team and its cost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Candidate {
    pub(crate) cost: i64,
    pub(crate) team: u32,
}

/// A connected piece of a [`BatchProblem`] and where its indices came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchComponent {
    /// The sub-problem, with indices local to it.
    pub problem: BatchProblem,
    /// `request_idx[local] = global` request index.
    pub request_idx: Vec<u32>,
    /// `team_idx[local] = global` team index.
    pub team_idx: Vec<u32>,
}

impl BatchProblem {
    /// Validates the batch and lays the edges out for the solvers.
    ///
    /// Fails on an edge whose index is out of range or whose cost is negative,
    /// when there are more than `u32::MAX` edges, or when the summed costs
    /// could overflow `i64`.
    pub fn new(request_priority: Vec<u32>, team_capacity: Vec<u32>, edges: &[BatchEdge]) -> Result<Self, BatchError> {
        let n_requests = request_priority.len();
        let n_teams = team_capacity.len();
        if n_requests >= u32::MAX as usize {
            return Err(BatchError::TooManyRequests { n_requests });
        }
        if n_teams >= u32::MAX as usize {
            return Err(BatchError::TooManyTeams { n_teams });
        }
        if edges.len() >= u32::MAX as usize {
            return Err(BatchError::TooManyEdges { n_edges: edges.len() });
        }
        // Counting sort by request: O(E), no comparison sort over all edges.
        let mut row_start = vec![0u32; n_requests + 1];
        for (edge_idx, e) in edges.iter().enumerate() {
            if e.request_idx as usize >= n_requests {
                return Err(BatchError::RequestOutOfRange { edge_idx, request_idx: e.request_idx, n_requests });
            }
            if e.team_idx as usize >= n_teams {
                return Err(BatchError::TeamOutOfRange { edge_idx, team_idx: e.team_idx, n_teams });
            }
            if e.cost < 0 {
                return Err(BatchError::NegativeCost { edge_idx, cost: e.cost });
            }
            row_start[e.request_idx as usize + 1] += 1;
        }
        for r in 0..n_requests {
            row_start[r + 1] += row_start[r];
        }
        let mut fill = row_start.clone();
        let mut pairs = vec![(0i64, 0u32); edges.len()];
        for e in edges {
            let slot = &mut fill[e.request_idx as usize];
            pairs[*slot as usize] = (e.cost, e.team_idx);
            *slot += 1;
        }
        // Sort each row by (cost, team) and drop repeated teams (the first,
        // cheapest copy survives). `last_row[t]` remembers the last row that
        // used team t, so the check is O(1) without clearing between rows.
        let mut last_row = vec![u32::MAX; n_teams];
        let mut adj = Vec::with_capacity(edges.len());
        let mut new_start = Vec::with_capacity(n_requests + 1);
        new_start.push(0u32);
        let mut cost_bound: i128 = 0;
        for r in 0..n_requests {
            let row = &mut pairs[row_start[r] as usize..row_start[r + 1] as usize];
            row.sort_unstable();
            let mut row_max = 0i64;
            for &(c, t) in row.iter() {
                if last_row[t as usize] == r as u32 {
                    continue;
                }
                last_row[t as usize] = r as u32;
                adj.push(Candidate { cost: c, team: t });
                row_max = c;
            }
            cost_bound += i128::from(row_max);
            new_start.push(adj.len() as u32);
        }
        let cost_bound = i64::try_from(cost_bound).map_err(|_| BatchError::CostOverflow { cost_bound })?;
        Ok(Self { priority: request_priority, capacity: team_capacity, row_start: new_start, adj, cost_bound })
    }

    /// Number of requests.
    pub fn n_requests(&self) -> usize {
        self.priority.len()
    }

    /// Number of teams.
    pub fn n_teams(&self) -> usize {
        self.capacity.len()
    }

    /// Number of distinct candidate edges.
    pub fn n_edges(&self) -> usize {
        self.adj.len()
    }

    /// Priority of each request.
    pub fn request_priority(&self) -> &[u32] {
        &self.priority
    }

    /// Capacity of each team.
    pub fn team_capacity(&self) -> &[u32] {
        &self.capacity
    }

    /// Request `request_idx`'s candidates as `(team_idx, cost)`, cheapest first.
    ///
    /// # Panics
    /// If `request_idx` is out of range.
    pub fn candidates(&self, request_idx: usize) -> impl Iterator<Item = (u32, i64)> + '_ {
        self.adj[self.row(request_idx)].iter().map(|c| (c.team, c.cost))
    }

    /// Cost of the `(request, team)` edge, if there is one.
    pub fn edge_cost(&self, request_idx: usize, team_idx: u32) -> Option<i64> {
        self.candidates(request_idx).find(|&(t, _)| t == team_idx).map(|(_, c)| c)
    }

    pub(crate) fn row(&self, request_idx: usize) -> std::ops::Range<usize> {
        self.row_start[request_idx] as usize..self.row_start[request_idx + 1] as usize
    }

    /// Connected component of every request and team, numbered in order of
    /// first appearance (requests first, then teams). Returns
    /// `(request_component, team_component, n_components)`; an isolated
    /// request or team is a component of its own.
    pub fn components(&self) -> (Vec<u32>, Vec<u32>, usize) {
        let n = self.n_requests();
        // Requests are nodes 0..n, teams n.. after them.
        let mut uf = UnionFind::<usize>::new(n + self.n_teams());
        for r in 0..n {
            for c in &self.adj[self.row(r)] {
                uf.union(r, n + c.team as usize);
            }
        }
        // Labels by first appearance, so they do not depend on which member
        // the union-find keeps as a root.
        let mut label = vec![u32::MAX; n + self.n_teams()];
        let mut next = 0u32;
        let mut of = |x: usize, uf: &mut UnionFind<usize>| {
            let root = uf.find_mut(x);
            if label[root] == u32::MAX {
                label[root] = next;
                next += 1;
            }
            label[root]
        };
        let req: Vec<u32> = (0..n).map(|r| of(r, &mut uf)).collect();
        let team: Vec<u32> = (0..self.n_teams()).map(|t| of(n + t, &mut uf)).collect();
        (req, team, next as usize)
    }

    /// Splits the batch into its connected components (each with at least one
    /// request and one edge), so that each piece can be solved on its own —
    /// per county, per worker or per instance — and the plans merged with
    /// [`super::BatchPlan::merge_components`]. Requests without any candidate
    /// and teams without any candidate are left out.
    pub fn split(&self) -> Vec<BatchComponent> {
        let (req_comp, team_comp, n_comp) = self.components();
        self.split_along(&req_comp, &team_comp, n_comp)
    }

    /// [`Self::split`] along components already computed by
    /// [`Self::components`] (for a caller that looked at them first).
    ///
    /// # Panics
    ///
    /// When the slices are not one label per request and per team of this
    /// batch, or a label is not below `n_comp`.
    pub fn split_along(&self, req_comp: &[u32], team_comp: &[u32], n_comp: usize) -> Vec<BatchComponent> {
        assert_eq!(req_comp.len(), self.n_requests(), "one component label per request");
        assert_eq!(team_comp.len(), self.n_teams(), "one component label per team");
        let mut parts: Vec<BatchComponent> = Vec::new();
        let mut part_of = vec![u32::MAX; n_comp];
        let mut local_team = vec![u32::MAX; self.n_teams()];
        let mut edges_of: Vec<Vec<BatchEdge>> = Vec::new();
        for (r, &comp) in req_comp.iter().enumerate() {
            let range = self.row(r);
            if range.is_empty() {
                continue;
            }
            let c = comp as usize;
            if part_of[c] == u32::MAX {
                part_of[c] = parts.len() as u32;
                parts.push(BatchComponent {
                    problem: BatchProblem::empty(),
                    request_idx: Vec::new(),
                    team_idx: Vec::new(),
                });
                edges_of.push(Vec::new());
            }
            let p = part_of[c] as usize;
            let local_r = parts[p].request_idx.len() as u32;
            parts[p].request_idx.push(r as u32);
            for (t, cost) in self.candidates(r) {
                debug_assert_eq!(team_comp[t as usize], comp);
                if local_team[t as usize] == u32::MAX {
                    local_team[t as usize] = parts[p].team_idx.len() as u32;
                    parts[p].team_idx.push(t);
                }
                edges_of[p].push(BatchEdge::new(local_r, local_team[t as usize], cost));
            }
        }
        for (part, edges) in parts.iter_mut().zip(edges_of) {
            let priority = part.request_idx.iter().map(|&r| self.priority[r as usize]).collect();
            let capacity = part.team_idx.iter().map(|&t| self.capacity[t as usize]).collect();
            part.problem =
                BatchProblem::new(priority, capacity, &edges).expect("a component of a valid problem is valid");
        }
        parts
    }

    fn empty() -> Self {
        Self { priority: Vec::new(), capacity: Vec::new(), row_start: vec![0], adj: Vec::new(), cost_bound: 0 }
    }
}

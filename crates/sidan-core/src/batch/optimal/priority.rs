//! The check that a plan serves the largest total priority: what makes the
//! trial solve at a small leave-out price exact.

use crate::batch::{BatchProblem, priority_order};

/// Whether the plan `team_of` serves the largest total priority possible.
///
/// The requests a plan can serve together form a matroid (a transversal
/// one, teams' slots being its ground set's partners), and priority is a
/// weight on them, so a plan serves the most priority exactly when no
/// left-out request `r` reaches, along an alternating path (a candidate
/// team, one of its members, one of that member's candidates, …), a team
/// with room or a served request of lower priority than `r`'s: that path
/// is the only kind of exchange that gains priority. Sources go in
/// priority order, highest first, and a team reached once is not entered
/// again: whatever it leads to was already checked against a priority at
/// least as high. O(edges).
pub(crate) fn serves_most_priority(problem: &BatchProblem, team_of: &[u32]) -> bool {
    let n_teams = problem.n_teams();
    // Members of each team, CSR.
    let mut start = vec![0u32; n_teams + 1];
    for &t in team_of {
        if (t as usize) < n_teams {
            start[t as usize + 1] += 1;
        }
    }
    for t in 0..n_teams {
        start[t + 1] += start[t];
    }
    let mut fill = start.clone();
    let mut members = vec![0u32; start[n_teams] as usize];
    for (r, &t) in team_of.iter().enumerate() {
        if (t as usize) < n_teams {
            members[fill[t as usize] as usize] = r as u32;
            fill[t as usize] += 1;
        }
    }
    let mut reached = vec![false; n_teams];
    let mut stack: Vec<u32> = Vec::new();
    for source in priority_order(problem) {
        if (team_of[source as usize] as usize) < n_teams {
            continue;
        }
        let p = problem.priority[source as usize];
        stack.push(source);
        while let Some(r) = stack.pop() {
            for c in &problem.adj[problem.row(r as usize)] {
                let tu = c.team as usize;
                if reached[tu] || c.team == team_of[r as usize] {
                    continue;
                }
                reached[tu] = true;
                let load = start[tu + 1] - start[tu];
                if load < problem.capacity[tu] {
                    return false;
                }
                for &member in &members[start[tu] as usize..start[tu + 1] as usize] {
                    if problem.priority[member as usize] < p {
                        return false;
                    }
                    stack.push(member);
                }
            }
        }
    }
    true
}

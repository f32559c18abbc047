//! What became of a request, as the reports count it.

use serde::{Deserialize, Serialize};

/// A request's outcome at the end of a report's log: one of the terminal
/// states, or still open.
///
/// Serialised as its snake_case name (`"closed"`, `"open"`, ...). The variants
/// are declared in the order their names sort, so a map keyed by outcome
/// writes its keys in alphabetical order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Outcome {
    /// Cancelled by the resident.
    Cancelled,
    /// Served, evaluated and closed.
    Closed,
    /// The window passed before it was served.
    Expired,
    /// Not yet terminal when the log ends.
    Open,
    /// Nobody could serve it.
    Unfulfillable,
}

impl Outcome {
    /// Every outcome, in declaration (and name) order.
    pub const ALL: [Outcome; 5] =
        [Outcome::Cancelled, Outcome::Closed, Outcome::Expired, Outcome::Open, Outcome::Unfulfillable];

    /// The snake_case name, as serialised.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Cancelled => "cancelled",
            Outcome::Closed => "closed",
            Outcome::Expired => "expired",
            Outcome::Open => "open",
            Outcome::Unfulfillable => "unfulfillable",
        }
    }

    /// The outcome's place in [`Outcome::ALL`], for per-outcome arrays.
    pub(super) fn index(self) -> usize {
        self as usize
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::Outcome;

    #[test]
    fn outcomes_serialise_as_their_names_in_name_order() {
        for (i, o) in Outcome::ALL.into_iter().enumerate() {
            assert_eq!(o.index(), i);
            assert_eq!(serde_json::to_string(&o).expect("serialises"), format!("\"{o}\""));
            assert_eq!(serde_json::from_str::<Outcome>(&format!("\"{}\"", o.as_str())).expect("parses"), o);
        }
        let names: Vec<&str> = Outcome::ALL.iter().map(|o| o.as_str()).collect();
        let mut sorted = names.clone();
        sorted.sort_unstable();
        assert_eq!(names, sorted, "a map keyed by outcome writes its keys in name order");
    }
}

//! One logged query, as the resolver describes it.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

/// How the resolver answered a query.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Cached,
    Answered,
    Forwarded,
    Blocked,
    Stale,
    Failed,
    Refused,
    Local,
}

impl Outcome {
    pub const ALL: [Outcome; 8] = [
        Outcome::Cached,
        Outcome::Answered,
        Outcome::Forwarded,
        Outcome::Blocked,
        Outcome::Stale,
        Outcome::Failed,
        Outcome::Refused,
        Outcome::Local,
    ];

    /// The lowercase name, the same as the serde form; also the form stored
    /// in the database so that `sqlite3` users can read it.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Cached => "cached",
            Outcome::Answered => "answered",
            Outcome::Forwarded => "forwarded",
            Outcome::Blocked => "blocked",
            Outcome::Stale => "stale",
            Outcome::Failed => "failed",
            Outcome::Refused => "refused",
            Outcome::Local => "local",
        }
    }

    /// The inverse of [`Outcome::as_str`].
    pub fn from_name(name: &str) -> Option<Outcome> {
        Outcome::ALL.into_iter().find(|o| o.as_str() == name)
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One query as logged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// Unix epoch milliseconds.
    pub time_ms: i64,
    pub client: IpAddr,
    /// The client's policy zone, if known.
    pub zone: Option<String>,
    /// Filtering group.
    pub group: String,
    /// Dotted, lowercase, no trailing dot ("." for the root).
    pub name: String,
    /// "A", "AAAA", "TYPE65534", ...
    pub qtype: String,
    pub outcome: Outcome,
    /// "NOERROR", "NXDOMAIN", ...
    pub rcode: String,
    /// The blocking or allowing list that decided, if any.
    pub list: Option<String>,
    /// The rule that decided, e.g. "||ads.example.com^".
    pub rule: Option<String>,
    pub upstream: Option<String>,
    pub latency_us: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcome_names_round_trip() {
        for o in Outcome::ALL {
            assert_eq!(Outcome::from_name(o.as_str()), Some(o));
            assert_eq!(o.as_str(), o.as_str().to_lowercase());
        }
        assert_eq!(Outcome::from_name("Blocked"), None);
    }
}

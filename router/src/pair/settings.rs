//! `[pair]`, checked: this node's part in a primary/standby pair.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// How often the standby asks when `interval` is not set.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(10);
/// Where the standby keeps the primary's copies by default.
pub const DEFAULT_STATE_DIR: &str = "/var/lib/router/pair";
/// Tokens shorter than this are refused: the token is all that stands
/// between the management network and the configuration.
pub const MIN_TOKEN_LEN: usize = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Primary,
    Standby,
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Role::Primary => "primary",
            Role::Standby => "standby",
        })
    }
}

/// The shared secret; never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(String);

impl Token {
    pub fn new(text: &str) -> Token {
        Token(text.trim().to_string())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Compares without an early exit, so the time taken does not tell an
    /// attacker how much of a guess was right.
    pub fn matches(&self, offered: &str) -> bool {
        let (a, b) = (self.0.as_bytes(), offered.as_bytes());
        let mut diff = a.len() ^ b.len();
        for (i, byte) in a.iter().enumerate() {
            diff |= usize::from(byte ^ b.get(i).copied().unwrap_or(0));
        }
        diff == 0
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(..)")
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct PairConfig {
    pub role: Role,
    /// Where this node serves its configuration to the other.
    pub listen: Option<SocketAddr>,
    /// The other node's listener.
    pub peer: Option<SocketAddr>,
    pub token: Token,
    pub interval: Duration,
    pub state_dir: PathBuf,
    /// This node's addresses on the zones, in place of the policy's.
    pub zone_addresses: policies::NodeAddresses,
}

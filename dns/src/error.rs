//! The crate's one error type.

use std::net::SocketAddr;

/// Everything that can go wrong in the DNS service, as data.
#[derive(Debug, thiserror::Error)]
pub enum DnsError {
    #[error("cannot bind {transport} socket on {addr}: {source}")]
    Bind {
        transport: &'static str,
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("socket error: {0}")]
    Io(#[from] std::io::Error),
    #[error("invalid root hints in {path}: {reason}")]
    RootHints { path: String, reason: String },
    #[error("invalid trust anchor in {path}: {reason}")]
    TrustAnchor { path: String, reason: String },
    #[error("recursor setup failed: {0}")]
    Recursor(String),
    #[error("TLS setup for upstream {upstream} failed: {reason}")]
    Tls { upstream: String, reason: String },
    #[error("invalid local record {name}: {reason}")]
    LocalRecord { name: String, reason: String },
    #[error("the DNS service has stopped")]
    Stopped,
    #[error("too many filter lists: at most {max}")]
    TooManyLists { max: usize },
    #[error("cannot read filter list {list}: {source}")]
    ListRead {
        list: String,
        source: std::io::Error,
    },
    #[error("query log {path}: {reason}")]
    QueryLog { path: String, reason: String },
}

//! The appliance's DNS service: a filtering recursive and forwarding resolver.
//!
//! Layout, from the wire inwards:
//!
//! ```text
//!  clients ──UDP──▶ server::udp  (one thread per core, SO_REUSEPORT, recvmmsg)
//!          ──TCP──▶ server::tcp  (tokio tasks)
//!                      │ fastpath: parse, allow list, rate limit, cache hit
//!                      ▼ miss
//!                 resolve::Dispatcher (coalesces identical misses, owns the
//!                      │              master cache, replicates entries)
//!                      ▼
//!         local records │ forward zones │ recursion (hickory) │ upstreams
//! ```
//!
//! Cache hits never leave the worker thread that received them: each worker
//! owns a replica of the cache, so a hit takes no lock and allocates nothing.

pub mod error;
pub mod fastpath;
pub mod filter;
pub mod querylog;
pub mod resolve;
pub mod server;
pub mod settings;
pub mod stats;

pub use error::DnsError;
pub use hickory_proto::rr::Name;
pub use settings::DnsSettings;

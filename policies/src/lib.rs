//! Zones and firewall policies.
//!
//! Operators declare zones (a VLAN or an interface, with subnets) and the
//! rules between them in TOML policy files. [`load_dir`] reads and checks a
//! directory of them into a [`Policy`], with errors and warnings that name
//! the file, the line and the fix; [`compile`] turns the policy into one
//! nftables table (`inet router`) built on verdict maps; [`nft`] applies it
//! in one transaction and reads its counters back.

mod check;
pub mod compile;
pub mod diff;
mod error;
pub mod eval;
mod load;
mod localize;
pub mod model;
pub mod nft;
mod raw;
mod service;

pub use compile::ir::Ruleset;
pub use compile::{NodeServices, compile};
pub use error::{Diagnostic, PolicyError, Severity};
pub use load::{DEFAULT_ZONE_ACTION, Loaded, Protected, closest, load_dir, parse_files};
pub use localize::{NodeAddresses, localize};
pub use model::Policy;

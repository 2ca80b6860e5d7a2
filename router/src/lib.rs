//! `routerd` and `routerctl`: configuration, the daemon, its control API and
//! metrics. The protocol work lives in the library crates (`dns`, and later
//! `policies`, `bgp`, `vrrp`); this crate wires them to the system.

pub mod bgp;
pub mod cli_docs;
pub mod client;
pub mod config;
pub mod control;
pub mod daemon;
pub mod demo;
pub mod duration;
pub mod filtering;
pub mod firewall;
pub mod links;
pub mod lists;
pub mod metrics;
pub mod notify;
pub mod pair;
pub mod secret;
pub mod table;
pub mod vrrp;
pub mod wireguard;

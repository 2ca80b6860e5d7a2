//! WireGuard site-to-site tunnels: the interfaces routerd declares, kept as
//! the configuration says through `wireguard-control`, with the kernel
//! backend or wireguard-go, their addresses and routes over rtnetlink, and
//! each peer's health.

pub mod health;
pub mod keys;
pub mod manager;
pub mod netlink;
pub mod plan;
pub mod resolve;
pub mod settings;
pub mod status;

//! WireGuard site-to-site tunnels: the interfaces routerd declares, kept as
//! the configuration says through `wireguard-control`, with the kernel
//! backend or wireguard-go, their addresses and routes over rtnetlink, and
//! each peer's health.

pub mod keys;
pub mod settings;

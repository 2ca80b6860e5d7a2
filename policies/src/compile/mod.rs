//! Compilation of a policy to the appliance's nftables table.

mod build;
pub mod ir;
pub mod json;

pub use build::compile;

/// What runs on this node that the policy files do not describe, but that
/// the input chain must let through whatever the zones say.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeServices {
    /// Interfaces with VRRP instances. The other node's adverts (IP
    /// protocol 112) arrive there as input; refused by a zone's default,
    /// they would leave both nodes master of the floating address.
    pub vrrp_interfaces: Vec<String>,
}

//! Compilation of a policy to the appliance's nftables table.

mod build;
pub mod ir;
pub mod json;

pub use build::compile;

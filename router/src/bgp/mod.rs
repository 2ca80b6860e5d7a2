//! The BGP speaker's system side: configuration, sessions over TCP (with
//! MD5 and GTSM), kernel routes and status. The protocol is the `bgp` crate.

pub mod driver;
pub mod kernel;
pub mod settings;
pub mod socket;
pub mod status;

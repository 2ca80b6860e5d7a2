//! The primary/standby pair: the primary serves the shared part of its
//! configuration on the management network, the standby pulls it, checks
//! it against its own file and applies it whole or not at all.

pub mod bundle;
pub mod service;
pub mod settings;
pub mod store;

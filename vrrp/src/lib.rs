//! VRRP version 3 (RFC 5798) without I/O: the advertisement codec
//! ([`packet`]) and the virtual router state machine ([`instance`]).
//!
//! The state machine takes `(now, input)` and returns [`Action`]s: send
//! an advertisement, add or remove the virtual addresses, announce them.
//! The driver in `router/` owns the raw socket (IP protocol 112, TTL 255,
//! 224.0.0.18 and ff02::12), the addresses and the timers.

pub mod error;
pub mod instance;
pub mod packet;

pub use error::VrrpError;
pub use instance::{Action, Instance, OWNER_PRIORITY, Reason, Settings, State, Status};
pub use packet::Advertisement;

//! A minimal BGP-4 speaker as plain state machines: messages in, actions
//! out, timers as inputs. The tokio driver in `router` owns the sockets.

mod attr_store;
pub mod error;
pub mod fsm;
pub mod policy;
mod prefix_index;
mod prefix_map;
pub mod rib;
pub mod rib_out;
pub mod route;
pub mod speaker;
#[cfg(test)]
mod test_support;
pub mod wire;
pub mod wire_fast;

pub use error::{BgpError, Notification};

//! VRRP: the driver around the `vrrp` crate's state machine, with the raw
//! socket, the virtual addresses, their announcements, the appliance's
//! own health checks and the status `routerctl vrrp` shows.

pub mod accept;
pub mod addresses;
pub mod announce;
pub mod driver;
pub mod health;
pub mod settings;
pub mod socket;
pub mod status;

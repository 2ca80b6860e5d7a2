//! What the unit tests of several modules build their routes from.

use std::net::{IpAddr, Ipv4Addr};

use crate::route::{AsPath, Asn, Origin, PathAttributes};

/// IGP origin, the path, next hop 198.51.100.1 and nothing else.
pub(crate) fn attrs(path: &[Asn]) -> PathAttributes {
    PathAttributes {
        origin: Origin::Igp,
        as_path: AsPath::sequence(path.iter().copied()),
        next_hop: IpAddr::V4(Ipv4Addr::new(198, 51, 100, 1)),
        med: None,
        local_pref: None,
        communities: Vec::new(),
    }
}

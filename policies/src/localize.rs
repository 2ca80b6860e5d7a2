//! A node's own addresses on the zones. Two routers that share one policy
//! (a primary and its standby) each need their own address on every zone;
//! the policy files carry one set, and each node replaces it with its own.
//! Only the router's address may change, never the zone's subnets: what
//! the rules mean stays the same on both nodes.

use std::collections::BTreeMap;

use ipnet::IpNet;

use crate::error::{Diagnostic, PolicyError};
use crate::model::Policy;

/// Zone name to this node's addresses on it (with the subnet's prefix).
pub type NodeAddresses = BTreeMap<String, Vec<IpNet>>;

/// Replaces the addresses of each zone named in `addresses`. Every zone
/// named must exist, and the new addresses must cover exactly the subnets
/// the policy gives the zone.
pub fn localize(policy: &mut Policy, addresses: &NodeAddresses) -> Result<(), PolicyError> {
    let mut found = Vec::new();
    for (name, own) in addresses {
        let Some(zone) = policy.zones.iter_mut().find(|z| &z.name == name) else {
            let known: Vec<&str> = policy.zones.iter().map(|z| z.name.as_str()).collect();
            found.push(Diagnostic {
                severity: crate::Severity::Error,
                path: Default::default(),
                line: 0,
                column: 0,
                message: format!(
                    "this node's zone_addresses name zone `{name}`, which the policy does not have (zones: {})",
                    known.join(", ")
                ),
                fix: None,
            });
            continue;
        };
        let mut subnets: Vec<IpNet> = zone.subnets().collect();
        let mut replacing: Vec<IpNet> = own.iter().map(IpNet::trunc).collect();
        subnets.sort();
        subnets.dedup();
        replacing.sort();
        replacing.dedup();
        if subnets != replacing {
            let show = |nets: &[IpNet]| {
                nets.iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            found.push(Diagnostic::error(
                &zone.at,
                format!(
                    "zone `{name}`: this node's addresses ({}) must be in the zone's subnets ({}), one per subnet",
                    show(own),
                    show(&subnets)
                ),
            ));
            continue;
        }
        zone.ipv4 = own
            .iter()
            .filter_map(|net| match net {
                IpNet::V4(net) => Some(*net),
                IpNet::V6(_) => None,
            })
            .collect();
        zone.ipv6 = own
            .iter()
            .filter_map(|net| match net {
                IpNet::V6(net) => Some(*net),
                IpNet::V4(_) => None,
            })
            .collect();
    }
    if found.is_empty() {
        Ok(())
    } else {
        Err(PolicyError::Invalid(found))
    }
}

//! The kernel side of a tunnel over rtnetlink: its link (created here for
//! the kernel backend), MTU, state and addresses, the routes of its peers'
//! allowed IPs in the table routerd owns, and the rule that consults it.

use std::collections::BTreeSet;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use futures_util::TryStreamExt;
use ipnet::IpNet;
use rtnetlink::packet_route::route::{RouteAddress, RouteAttribute, RouteMessage, RouteProtocol};
use rtnetlink::packet_route::rule::{RuleAction, RuleAttribute};
use rtnetlink::{Handle, IpVersion, LinkUnspec, LinkWireguard, RouteMessageBuilder};
use tracing::info;

use crate::links::{AbortOnDrop, address_of, find_link, os_error};

/// One rtnetlink connection, alive as long as this value.
pub struct Netlink {
    handle: Handle,
    _connection: AbortOnDrop,
}

impl std::fmt::Debug for Netlink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Netlink")
    }
}

/// A route routerd wants: a destination on a tunnel interface.
pub type WantedRoute = (IpNet, u32);

impl Netlink {
    pub fn open() -> io::Result<Netlink> {
        let (connection, handle, _) = rtnetlink::new_connection()?;
        Ok(Netlink {
            handle,
            _connection: AbortOnDrop(tokio::spawn(connection)),
        })
    }

    /// The interface's index, or `None` when there is none.
    pub async fn index(&self, name: &str) -> io::Result<Option<u32>> {
        Ok(find_link(&self.handle, name).await?.map(|link| link.index))
    }

    /// Creates a kernel WireGuard interface; EOPNOTSUPP when the kernel has
    /// no WireGuard.
    pub async fn create_kernel_link(&self, name: &str) -> io::Result<()> {
        self.handle
            .link()
            .add(LinkWireguard::new(name).build())
            .execute()
            .await
            .map_err(os_error)
    }

    pub async fn delete_link(&self, index: u32) -> io::Result<()> {
        self.handle
            .link()
            .del(index)
            .execute()
            .await
            .map_err(os_error)
    }

    /// Sets the MTU, brings the link up and makes its addresses exactly
    /// `addresses`: the interface is routerd's alone.
    pub async fn configure_link(
        &self,
        index: u32,
        mtu: u32,
        addresses: &[IpNet],
    ) -> io::Result<()> {
        self.handle
            .link()
            .change(LinkUnspec::new_with_index(index).mtu(mtu).up().build())
            .execute()
            .await
            .map_err(os_error)?;
        let existing: Vec<(IpNet, rtnetlink::packet_route::address::AddressMessage)> = self
            .handle
            .address()
            .get()
            .set_link_index_filter(index)
            .execute()
            .try_filter_map(|message| {
                std::future::ready(Ok(address_of(&message).map(|net| (net, message))))
            })
            .try_collect()
            .await
            .map_err(os_error)?;
        for (net, message) in &existing {
            // Link-local IPv6 addresses are the kernel's own.
            let link_local =
                matches!(net.addr(), IpAddr::V6(v6) if v6.segments()[0] & 0xffc0 == 0xfe80);
            if !addresses.contains(net) && !link_local {
                self.handle
                    .address()
                    .del(message.clone())
                    .execute()
                    .await
                    .map_err(os_error)?;
                info!(interface_index = index, address = %net, "tunnel address removed");
            }
        }
        for net in addresses {
            if !existing.iter().any(|(have, _)| have == net) {
                self.handle
                    .address()
                    .add(index, net.addr(), net.prefix_len())
                    .execute()
                    .await
                    .map_err(os_error)?;
                info!(interface_index = index, address = %net, "tunnel address added");
            }
        }
        Ok(())
    }

    /// Makes the routes of `table` exactly `wanted`: the table is routerd's.
    pub async fn sync_routes(&self, table: u32, wanted: &[WantedRoute]) -> io::Result<()> {
        let mut have: Vec<(WantedRoute, RouteMessage)> = Vec::new();
        for route in crate::links::routes_in_table(&self.handle, table).await? {
            if let Some(key) = route_key(&route) {
                have.push((key, route));
            }
        }
        let wanted_set: BTreeSet<WantedRoute> = wanted.iter().copied().collect();
        for (key, route) in &have {
            if !wanted_set.contains(key) {
                self.handle
                    .route()
                    .del(route.clone())
                    .execute()
                    .await
                    .map_err(os_error)?;
                info!(table, destination = %key.0, "tunnel route removed");
            }
        }
        for &(net, index) in &wanted_set {
            if have.iter().any(|(key, _)| *key == (net, index)) {
                continue;
            }
            let route = RouteMessageBuilder::<IpAddr>::new()
                .destination_prefix(net.addr(), net.prefix_len())
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))?
                .output_interface(index)
                .table_id(table)
                .protocol(RouteProtocol::Static)
                .build();
            self.handle
                .route()
                .add(route)
                .replace()
                .execute()
                .await
                .map_err(os_error)?;
            info!(table, destination = %net, interface_index = index, "tunnel route added");
        }
        Ok(())
    }

    /// Adds `from all lookup TABLE` at `priority`, for IPv4 and IPv6,
    /// unless it is there.
    pub async fn ensure_rule(&self, table: u32, priority: u32) -> io::Result<()> {
        for version in [IpVersion::V4, IpVersion::V6] {
            let rules: Vec<_> = self
                .handle
                .rule()
                .get(version.clone())
                .execute()
                .try_collect()
                .await
                .map_err(os_error)?;
            let present = rules.iter().any(|rule| {
                let rule_table = rule
                    .attributes
                    .iter()
                    .find_map(|a| match a {
                        RuleAttribute::Table(t) => Some(*t),
                        _ => None,
                    })
                    .unwrap_or(u32::from(rule.header.table));
                let rule_priority = rule.attributes.iter().find_map(|a| match a {
                    RuleAttribute::Priority(p) => Some(*p),
                    _ => None,
                });
                rule_table == table
                    && rule_priority == Some(priority)
                    && rule.header.action == RuleAction::ToTable
            });
            if present {
                continue;
            }
            let request = self
                .handle
                .rule()
                .add()
                .table_id(table)
                .priority(priority)
                .action(RuleAction::ToTable);
            let result = match version {
                IpVersion::V4 => request.v4().execute().await,
                IpVersion::V6 => request.v6().execute().await,
            };
            result.map_err(os_error)?;
            info!(
                table,
                priority,
                ?version,
                "routing rule for tunnel routes added"
            );
        }
        Ok(())
    }
}

/// A dumped route as (destination, output interface).
fn route_key(route: &RouteMessage) -> Option<WantedRoute> {
    let mut destination = None;
    let mut oif = None;
    for attribute in &route.attributes {
        match attribute {
            RouteAttribute::Destination(RouteAddress::Inet(v4)) => {
                destination = Some(IpAddr::V4(*v4))
            }
            RouteAttribute::Destination(RouteAddress::Inet6(v6)) => {
                destination = Some(IpAddr::V6(*v6))
            }
            RouteAttribute::Oif(index) => oif = Some(*index),
            _ => {}
        }
    }
    let prefix = route.header.destination_prefix_length;
    let destination = destination.unwrap_or(match route.header.address_family {
        rtnetlink::packet_route::AddressFamily::Inet6 => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        _ => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
    });
    Some((IpNet::new(destination, prefix).ok()?, oif?))
}

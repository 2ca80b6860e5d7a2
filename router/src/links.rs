//! Zone interfaces: creating missing VLAN sub-interfaces on their trunk and
//! bringing each zone's link up with the router's addresses, over rtnetlink.
//!
//! The decisions are pure functions (`vlan_link_message`, `plan_addresses`),
//! tested without root and without a kernel that has 8021q;
//! [`ensure_zone_links`] is the thin driver that asks the kernel what exists
//! and sends only the difference. It never deletes anything: an address the
//! configuration does not declare (an operator's, a DHCP lease) stays.

use std::io;

use futures_util::TryStreamExt;
use ipnet::IpNet;
use rtnetlink::packet_route::address::{AddressAttribute, AddressMessage};
use rtnetlink::packet_route::link::{LinkFlags, LinkMessage, VlanProtocol};
use rtnetlink::{Handle, LinkUnspec, LinkVlan};
use serde::Serialize;
use tracing::{debug, info};

/// One zone's interface as routerd wants it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZoneLink {
    /// The zone's name, for messages.
    pub zone: String,
    /// The interface name, e.g. `eth0.10` or `eth1`.
    pub name: String,
    /// `Some`: a VLAN sub-interface, created on its parent when missing.
    pub vlan: Option<Vlan>,
    /// The router's addresses with their prefix length, e.g.
    /// `192.168.10.1/24`.
    pub addresses: Vec<IpNet>,
}

/// An 802.1Q VLAN on a parent (trunk) interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vlan {
    /// The trunk interface the VLAN rides on, e.g. `eth0`.
    pub parent: String,
    /// The VLAN id, 1 to 4094.
    pub id: u16,
}

/// What [`ensure_zone_links`] changed; empty when everything was in place.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct LinksReport {
    /// VLAN sub-interfaces created.
    pub created: Vec<String>,
    /// Interfaces that were down and were brought up (VLAN parents too).
    pub brought_up: Vec<String>,
    /// Addresses added, in the order they were added.
    pub addresses_added: Vec<AddedAddress>,
}

/// One address [`ensure_zone_links`] put on an interface.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AddedAddress {
    pub zone: String,
    pub interface: String,
    pub address: IpNet,
}

impl LinksReport {
    /// True when nothing had to change.
    pub fn is_empty(&self) -> bool {
        self.created.is_empty() && self.brought_up.is_empty() && self.addresses_added.is_empty()
    }
}

/// Why a zone's link could not be put in place.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error("cannot open an rtnetlink socket")]
    Socket(#[source] io::Error),
    #[error("zone {zone}: {name:?} is not a valid interface name")]
    InvalidName { zone: String, name: String },
    #[error("zone {zone}: VLAN id {id} of {interface} is outside 1-4094")]
    InvalidVlanId {
        zone: String,
        interface: String,
        id: u16,
    },
    #[error("zone {zone}: interface {interface} does not exist")]
    MissingInterface { zone: String, interface: String },
    #[error("zone {zone}: parent interface {parent} of VLAN {interface} does not exist")]
    MissingParent {
        zone: String,
        interface: String,
        parent: String,
    },
    #[error(
        "zone {zone}: the kernel refused creating VLAN {interface} (id {id} on {parent}){hint}",
        hint = vlan_hint(source)
    )]
    CreateVlan {
        zone: String,
        interface: String,
        parent: String,
        id: u16,
        #[source]
        source: io::Error,
    },
    #[error("zone {zone}: {interface} has {existing}, which conflicts with the declared {wanted}")]
    PrefixConflict {
        zone: String,
        interface: String,
        wanted: IpNet,
        existing: IpNet,
    },
    #[error("zone {zone}: adding {address} to {interface} failed")]
    AddAddress {
        zone: String,
        interface: String,
        address: IpNet,
        #[source]
        source: io::Error,
    },
    #[error("zone {zone}: {action} {interface} failed")]
    Netlink {
        zone: String,
        interface: String,
        action: &'static str,
        #[source]
        source: io::Error,
    },
}

/// EOPNOTSUPP is how the kernel says it has no "vlan" link type at all,
/// which otherwise reads like a problem with the request.
fn vlan_hint(source: &io::Error) -> &'static str {
    if source.raw_os_error() == Some(libc::EOPNOTSUPP) {
        ": this kernel has no VLAN support (is the 8021q module available?)"
    } else {
        ""
    }
}

/// Makes every zone's interface exist, be up and carry its addresses.
///
/// Links are handled in order and the first error stops the run; what was
/// done before it stays done, and since a second call changes nothing that
/// is already in place, calling again after fixing the cause finishes the
/// job. Runs on the tokio runtime: the netlink socket is a tokio one.
pub async fn ensure_zone_links(links: &[ZoneLink]) -> Result<LinksReport, LinkError> {
    let (connection, handle, _) = rtnetlink::new_connection().map_err(LinkError::Socket)?;
    let _connection = AbortOnDrop(tokio::spawn(connection));
    let mut report = LinksReport::default();
    for link in links {
        ensure_link(&handle, link, &mut report).await?;
    }
    Ok(report)
}

/// The netlink connection task lives exactly as long as one call, also when
/// the caller drops that call's future midway.
#[derive(Debug)]
pub(crate) struct AbortOnDrop(pub(crate) tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

async fn ensure_link(
    handle: &Handle,
    want: &ZoneLink,
    report: &mut LinksReport,
) -> Result<(), LinkError> {
    let zone = want.zone.as_str();
    let interface = want.name.as_str();
    validate(want)?;
    let existing =
        find_link(handle, interface)
            .await
            .map_err(failed(zone, interface, "looking up"))?;
    // An existing interface is used as it is: the kernel removes a VLAN
    // with its trunk, so the parent only matters when creating one (and
    // the lab models VLAN zones on plain veth interfaces).
    let link = match (existing, &want.vlan) {
        (Some(link), None) => link,
        (Some(link), Some(vlan)) => {
            // A VLAN carries nothing while its trunk is down (after a boot,
            // say): bring the trunk up too, when there is one.
            if let Some(parent) = find_link(handle, &vlan.parent).await.map_err(failed(
                zone,
                &vlan.parent,
                "looking up",
            ))? {
                bring_up(handle, zone, &vlan.parent, parent, report).await?;
            }
            link
        }
        (None, None) => {
            return Err(LinkError::MissingInterface {
                zone: zone.to_owned(),
                interface: interface.to_owned(),
            });
        }
        (None, Some(vlan)) => {
            let parent = find_link(handle, &vlan.parent)
                .await
                .map_err(failed(zone, &vlan.parent, "looking up"))?
                .ok_or_else(|| LinkError::MissingParent {
                    zone: zone.to_owned(),
                    interface: interface.to_owned(),
                    parent: vlan.parent.clone(),
                })?;
            bring_up(handle, zone, &vlan.parent, parent, report).await?;
            create_vlan(handle, zone, interface, vlan, parent.index).await?;
            report.created.push(interface.to_owned());
            // Only gone again if someone deleted it in between.
            find_link(handle, interface)
                .await
                .map_err(failed(zone, interface, "looking up"))?
                .ok_or_else(|| LinkError::MissingInterface {
                    zone: zone.to_owned(),
                    interface: interface.to_owned(),
                })?
        }
    };
    bring_up(handle, zone, interface, link, report).await?;
    ensure_addresses(handle, want, link.index, report).await?;
    debug!(zone, interface, "zone link in place");
    Ok(())
}

/// Adds the declared addresses the link lacks; leaves every other one.
async fn ensure_addresses(
    handle: &Handle,
    want: &ZoneLink,
    index: u32,
    report: &mut LinksReport,
) -> Result<(), LinkError> {
    let zone = want.zone.as_str();
    let interface = want.name.as_str();
    let existing: Vec<IpNet> = handle
        .address()
        .get()
        .set_link_index_filter(index)
        .execute()
        .try_filter_map(|message| std::future::ready(Ok(address_of(&message))))
        .try_collect()
        .await
        .map_err(os_error)
        .map_err(failed(zone, interface, "listing addresses of"))?;
    let missing =
        plan_addresses(&existing, &want.addresses).map_err(|c| LinkError::PrefixConflict {
            zone: zone.to_owned(),
            interface: interface.to_owned(),
            wanted: c.wanted,
            existing: c.existing,
        })?;
    for address in missing {
        handle
            .address()
            .add(index, address.addr(), address.prefix_len())
            .execute()
            .await
            .map_err(|e| LinkError::AddAddress {
                zone: zone.to_owned(),
                interface: interface.to_owned(),
                address,
                source: os_error(e),
            })?;
        info!(zone, interface, %address, "address added");
        report.addresses_added.push(AddedAddress {
            zone: zone.to_owned(),
            interface: interface.to_owned(),
            address,
        });
    }
    Ok(())
}

/// Rejects what the kernel would refuse with a bare EINVAL or ERANGE.
fn validate(want: &ZoneLink) -> Result<(), LinkError> {
    let mut names = std::iter::once(&want.name).chain(want.vlan.as_ref().map(|v| &v.parent));
    if let Some(name) = names.find(|name| !valid_ifname(name)) {
        return Err(LinkError::InvalidName {
            zone: want.zone.clone(),
            name: name.clone(),
        });
    }
    match &want.vlan {
        Some(vlan) if !(1..=4094).contains(&vlan.id) => Err(LinkError::InvalidVlanId {
            zone: want.zone.clone(),
            interface: want.name.clone(),
            id: vlan.id,
        }),
        _ => Ok(()),
    }
}

/// The kernel's `dev_valid_name`: at most IFNAMSIZ - 1 bytes, not `.` or
/// `..`, no `/`, `:` or whitespace.
pub(crate) fn valid_ifname(name: &str) -> bool {
    !name.is_empty()
        && name.len() < 16
        && name != "."
        && name != ".."
        && !name
            .chars()
            .any(|c| c == '/' || c == ':' || c.is_whitespace())
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct LinkState {
    pub(crate) index: u32,
    pub(crate) up: bool,
}

/// The link named `name`, or `None` when there is none.
pub(crate) async fn find_link(handle: &Handle, name: &str) -> Result<Option<LinkState>, io::Error> {
    let mut reply = handle.link().get().match_name(name).execute();
    match reply.try_next().await {
        Ok(Some(message)) => Ok(Some(LinkState {
            index: message.header.index,
            up: message.header.flags.contains(LinkFlags::Up),
        })),
        Ok(None) => Ok(None),
        Err(e) => match os_error(e) {
            e if e.raw_os_error() == Some(libc::ENODEV) => Ok(None),
            e => Err(e),
        },
    }
}

async fn create_vlan(
    handle: &Handle,
    zone: &str,
    interface: &str,
    vlan: &Vlan,
    parent_index: u32,
) -> Result<(), LinkError> {
    handle
        .link()
        .add(vlan_link_message(interface, parent_index, vlan.id))
        .execute()
        .await
        .map_err(|e| LinkError::CreateVlan {
            zone: zone.to_owned(),
            interface: interface.to_owned(),
            parent: vlan.parent.clone(),
            id: vlan.id,
            source: os_error(e),
        })?;
    info!(zone, interface, parent = %vlan.parent, id = vlan.id, "VLAN interface created");
    Ok(())
}

async fn bring_up(
    handle: &Handle,
    zone: &str,
    interface: &str,
    link: LinkState,
    report: &mut LinksReport,
) -> Result<(), LinkError> {
    if link.up {
        return Ok(());
    }
    handle
        .link()
        .change(LinkUnspec::new_with_index(link.index).up().build())
        .execute()
        .await
        .map_err(os_error)
        .map_err(failed(zone, interface, "bringing up"))?;
    info!(zone, interface, "link brought up");
    report.brought_up.push(interface.to_owned());
    Ok(())
}

/// The RTM_NEWLINK body that creates `name` as an 802.1Q sub-interface
/// tagged `id` on the link with index `parent_index`.
fn vlan_link_message(name: &str, parent_index: u32, id: u16) -> LinkMessage {
    // 802.1Q is the kernel's default, but a request that names it cannot
    // turn into 802.1ad (QinQ) if that default ever changes.
    LinkVlan::new(name, parent_index, id)
        .protocol(VlanProtocol::Ieee8021Q)
        .build()
}

/// The interface address a dump entry describes. IPv4 puts the local
/// address in IFA_LOCAL (IFA_ADDRESS is the peer on point-to-point links);
/// IPv6 sends only IFA_ADDRESS.
pub(crate) fn address_of(message: &AddressMessage) -> Option<IpNet> {
    let find = |local: bool| {
        message
            .attributes
            .iter()
            .find_map(|attribute| match attribute {
                AddressAttribute::Local(ip) if local => Some(*ip),
                AddressAttribute::Address(ip) if !local => Some(*ip),
                _ => None,
            })
    };
    let ip = find(true).or_else(|| find(false))?;
    IpNet::new(ip, message.header.prefix_len).ok()
}

/// A declared address whose IP is already on the interface with another
/// prefix length: adding it would fail (IPv6) or leave two subnets (IPv4).
#[derive(Debug, PartialEq, Eq)]
struct Conflict {
    wanted: IpNet,
    existing: IpNet,
}

/// The declared addresses missing from `existing`, in declared order, each
/// once.
fn plan_addresses(existing: &[IpNet], wanted: &[IpNet]) -> Result<Vec<IpNet>, Conflict> {
    let mut have = existing.to_vec();
    let mut add = Vec::new();
    for &address in wanted {
        match have.iter().find(|h| h.addr() == address.addr()) {
            Some(&h) if h == address => {}
            Some(&existing) => {
                return Err(Conflict {
                    wanted: address,
                    existing,
                });
            }
            None => {
                have.push(address);
                add.push(address);
            }
        }
    }
    Ok(add)
}

/// A `map_err` adapter for a request about `interface` that failed.
fn failed(
    zone: &str,
    interface: &str,
    action: &'static str,
) -> impl FnOnce(io::Error) -> LinkError {
    let (zone, interface) = (zone.to_owned(), interface.to_owned());
    move |source| LinkError::Netlink {
        zone,
        interface,
        action,
        source,
    }
}

/// Every IPv4 and IPv6 route of `table`, from one dump per family.
pub(crate) async fn routes_in_table(
    handle: &Handle,
    table: u32,
) -> io::Result<Vec<rtnetlink::packet_route::route::RouteMessage>> {
    use rtnetlink::RouteMessageBuilder;
    use rtnetlink::packet_route::route::RouteAttribute;
    let mut found = Vec::new();
    for template in [
        RouteMessageBuilder::<std::net::Ipv4Addr>::new().build(),
        RouteMessageBuilder::<std::net::Ipv6Addr>::new().build(),
    ] {
        let routes: Vec<_> = handle
            .route()
            .get(template)
            .execute()
            .try_collect()
            .await
            .map_err(os_error)?;
        found.extend(routes.into_iter().filter(|route| {
            // Tables above 255 only appear in the attribute.
            let in_table = route
                .attributes
                .iter()
                .find_map(|a| match a {
                    RouteAttribute::Table(t) => Some(*t),
                    _ => None,
                })
                .unwrap_or(u32::from(route.header.table));
            in_table == table
        }));
    }
    Ok(found)
}

/// rtnetlink's error as the errno the kernel answered, so callers can tell
/// "no such device" from "not supported" without matching its message.
pub(crate) fn os_error(error: rtnetlink::Error) -> io::Error {
    match error {
        rtnetlink::Error::NetlinkError(message) => message.to_io(),
        other => io::Error::other(other.to_string()),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)] // tests
mod tests;

//! Putting the virtual addresses on the interface and taking them off,
//! through rtnetlink. Both are idempotent: adding what is there and
//! removing what is not are not errors, so a restart after SIGKILL (which
//! leaves the addresses behind) starts from a clean slate.

use std::io;

use futures_util::TryStreamExt;
use ipnet::IpNet;
use rtnetlink::Handle;
use rtnetlink::packet_route::address::{AddressAttribute, AddressFlags, AddressMessage};

use crate::links::{AbortOnDrop, address_of, find_link, os_error};

pub struct VirtualAddresses {
    handle: Handle,
    _connection: AbortOnDrop,
    interface: String,
    addresses: Vec<IpNet>,
}

impl std::fmt::Debug for VirtualAddresses {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VirtualAddresses")
            .field("interface", &self.interface)
            .field("addresses", &self.addresses)
            .finish()
    }
}

impl VirtualAddresses {
    pub fn open(interface: &str, addresses: &[IpNet]) -> io::Result<VirtualAddresses> {
        let (connection, handle, _) = rtnetlink::new_connection()?;
        Ok(VirtualAddresses {
            handle,
            _connection: AbortOnDrop(tokio::spawn(connection)),
            interface: interface.to_owned(),
            addresses: addresses.to_vec(),
        })
    }

    async fn index(&self) -> io::Result<u32> {
        find_link(&self.handle, &self.interface)
            .await?
            .map(|link| link.index)
            .ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::NotFound,
                    format!("no interface {}", self.interface),
                )
            })
    }

    /// Whether the interface exists and is administratively up.
    pub async fn interface_up(&self) -> bool {
        matches!(find_link(&self.handle, &self.interface).await, Ok(Some(link)) if link.up)
    }

    pub async fn add(&self) -> io::Result<()> {
        let index = self.index().await?;
        let node: Vec<IpNet> = self
            .dump(index)
            .await?
            .iter()
            .filter_map(address_of)
            .filter(|net| !self.addresses.contains(net))
            .collect();
        for net in &self.addresses {
            let mut request = self
                .handle
                .address()
                .add(index, net.addr(), net.prefix_len());
            let flags = address_flags(net, &node);
            if !flags.is_empty() {
                request
                    .message_mut()
                    .attributes
                    .push(AddressAttribute::Flags(flags));
            }
            match request.execute().await.map_err(os_error) {
                Ok(()) => {}
                Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Every address on the interface.
    async fn dump(&self, index: u32) -> io::Result<Vec<AddressMessage>> {
        let mut dump = self
            .handle
            .address()
            .get()
            .set_link_index_filter(index)
            .execute();
        let mut all = Vec::new();
        while let Some(message) = dump.try_next().await.map_err(os_error)? {
            all.push(message);
        }
        Ok(all)
    }

    pub async fn remove(&self) -> io::Result<()> {
        let index = self.index().await?;
        let ours =
            self.dump(index).await?.into_iter().filter(|message| {
                address_of(message).is_some_and(|net| self.addresses.contains(&net))
            });
        for message in ours {
            match self
                .handle
                .address()
                .del(message)
                .execute()
                .await
                .map_err(os_error)
            {
                Ok(()) => {}
                Err(e) if matches!(e.raw_os_error(), Some(libc::EADDRNOTAVAIL | libc::ENOENT)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

/// Flags for a virtual address, given the node's own addresses on the
/// interface.
fn address_flags(virtual_address: &IpNet, node: &[IpNet]) -> AddressFlags {
    let mut flags = AddressFlags::empty();
    if virtual_address.addr().is_ipv6() {
        // Both nodes hold the address during a split: duplicate address
        // detection would disable it on one of them.
        flags |= AddressFlags::Nodad;
    }
    // Inside a network the node already has an address in, the virtual
    // address gets no route of its own: a route for it (narrower, so
    // preferred) would make it the source of the node's own traffic to
    // that network, and the answers would go to whichever node holds it.
    if node.iter().any(|own| {
        own.prefix_len() <= virtual_address.prefix_len() && own.contains(&virtual_address.trunc())
    }) {
        flags |= AddressFlags::Noprefixroute;
    }
    flags
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(text: &str) -> IpNet {
        text.parse().unwrap_or_else(|_| panic!("{text}"))
    }

    #[test]
    fn a_virtual_address_inside_the_nodes_network_gets_no_route() {
        let node = [net("10.53.0.90/16"), net("fd00:53::90/64")];
        let flags = |vip: &str| address_flags(&net(vip), &node);
        assert_eq!(flags("10.53.0.250/24"), AddressFlags::Noprefixroute);
        assert_eq!(flags("10.53.0.250/16"), AddressFlags::Noprefixroute);
        assert_eq!(flags("10.53.0.250/32"), AddressFlags::Noprefixroute);
        // Wider than the node's network, or elsewhere: its route is the
        // only way to the rest of it.
        assert_eq!(flags("10.53.0.250/8"), AddressFlags::empty());
        assert_eq!(flags("192.168.1.1/24"), AddressFlags::empty());
        assert_eq!(
            flags("fd00:53::250/64"),
            AddressFlags::Nodad | AddressFlags::Noprefixroute
        );
        assert_eq!(flags("fd00:54::250/64"), AddressFlags::Nodad);
    }
}

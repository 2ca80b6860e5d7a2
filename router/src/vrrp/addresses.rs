//! Putting the virtual addresses on the interface and taking them off,
//! through rtnetlink. Both are idempotent: adding what is there and
//! removing what is not are not errors, so a restart after SIGKILL (which
//! leaves the addresses behind) starts from a clean slate.

use std::io;

use futures_util::TryStreamExt;
use ipnet::IpNet;
use rtnetlink::Handle;
use rtnetlink::packet_route::address::{AddressAttribute, AddressFlags};

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
        for net in &self.addresses {
            let mut request = self
                .handle
                .address()
                .add(index, net.addr(), net.prefix_len());
            if net.addr().is_ipv6() {
                // Both nodes hold the address during a split: duplicate
                // address detection would disable it on one of them.
                request
                    .message_mut()
                    .attributes
                    .push(AddressAttribute::Flags(AddressFlags::Nodad));
            }
            match request.execute().await.map_err(os_error) {
                Ok(()) => {}
                Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    pub async fn remove(&self) -> io::Result<()> {
        let index = self.index().await?;
        let mut dump = self
            .handle
            .address()
            .get()
            .set_link_index_filter(index)
            .execute();
        let mut ours = Vec::new();
        while let Some(message) = dump.try_next().await.map_err(os_error)? {
            if address_of(&message).is_some_and(|net| self.addresses.contains(&net)) {
                ours.push(message);
            }
        }
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

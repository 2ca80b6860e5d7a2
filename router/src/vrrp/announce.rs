//! Telling the link that virtual addresses now live here (RFC 5798 6.4.2):
//! one gratuitous ARP per IPv4 address, one unsolicited neighbour
//! advertisement per IPv6 address, with the interface's own MAC address.
//!
//! The frames are built by pure functions ([`gratuitous_arp`],
//! [`unsolicited_na`]); the senders only look up the interface and write
//! them out. ARP goes through an `AF_PACKET` datagram socket, so the kernel
//! adds the Ethernet header (broadcast destination, the interface's MAC as
//! source); the advertisement through a raw ICMPv6 socket, which has the
//! kernel fill in the ICMPv6 checksum and the IPv6 header (source: the
//! interface's link-local address).
//!
//! The interface index and MAC come from ioctls on the sending socket, not
//! from `/sys/class/net`: sysfs shows the network namespace it was mounted
//! in, the socket the one the caller runs in.
#![allow(unsafe_code)] // reason: sockaddr_ll for AF_PACKET and the SIOCGIFINDEX / SIOCGIFHWADDR ioctls, which socket2 does not wrap

use std::io;
use std::mem::{size_of, zeroed};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddrV6};
use std::os::fd::AsRawFd;

use socket2::{Domain, Protocol, SockAddr, SockAddrStorage, Socket, Type};

use crate::links::valid_ifname;

/// An Ethernet (MAC) address.
pub type Mac = [u8; 6];

/// The length of an ARP message for Ethernet and IPv4.
pub const ARP_LEN: usize = 28;
/// The length of a neighbour advertisement with one Target Link-Layer
/// Address option for an Ethernet address.
pub const NA_LEN: usize = 32;

/// ff02::1, where unsolicited advertisements go (RFC 4861 7.2.6).
pub const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);

const ETH_P_ARP: u16 = 0x0806;
const BROADCAST: Mac = [0xff; 6];
const ICMPV6_NEIGHBOUR_ADVERTISEMENT: u8 = 136;
const NA_FLAG_ROUTER: u8 = 0x80;
const NA_FLAG_OVERRIDE: u8 = 0x20;
const OPTION_TARGET_LINK_LAYER_ADDRESS: u8 = 2;

/// Sends one gratuitous ARP per address out of `interface`. Every address
/// gets its try; the first failure is returned.
pub fn announce_ipv4(interface: &str, addresses: &[Ipv4Addr]) -> io::Result<()> {
    check_name(interface)?;
    // Protocol 0: the socket only sends. Bound to ETH_P_ARP it would also
    // queue every ARP frame that arrives, unread, until it is closed.
    let socket = Socket::new(Domain::PACKET, Type::DGRAM, None)?;
    socket.set_nonblocking(true)?;
    let link = link_of(&socket, interface)?;
    socket.bind(&packet_address(link.index, 0, [0; 6]))?;
    let to = packet_address(link.index, ETH_P_ARP, BROADCAST);
    send_each(
        addresses.iter().map(|&ip| gratuitous_arp(link.mac, ip)),
        |frame| socket.send_to(frame, &to),
    )
}

/// Sends one unsolicited neighbour advertisement per address out of
/// `interface`, to ff02::1 with hop limit 255. The Router flag follows the
/// interface's IPv6 `forwarding` setting, as it does in the kernel's own
/// advertisements: hosts drop a neighbour from their default routers when
/// an advertisement says it is no router (RFC 4861 7.2.5), and RFC 5798
/// 6.4.2 has a virtual router set it. Every address gets its try; the first
/// failure is returned.
pub fn announce_ipv6(interface: &str, addresses: &[Ipv6Addr]) -> io::Result<()> {
    check_name(interface)?;
    let socket = Socket::new(Domain::IPV6, Type::RAW, Some(Protocol::ICMPV6))?;
    socket.set_nonblocking(true)?;
    let link = link_of(&socket, interface)?;
    socket.bind_device(Some(interface.as_bytes()))?;
    socket.set_multicast_if_v6(link.index)?;
    // Receivers drop neighbour discovery that was not sent with 255
    // (RFC 4861 7.1.2): proof it comes from the link.
    socket.set_multicast_hops_v6(255)?;
    socket.set_unicast_hops_v6(255)?;
    socket.set_multicast_loop_v6(false)?;
    let router = ipv6_forwarding(interface)?;
    let to = SockAddr::from(SocketAddrV6::new(ALL_NODES, 0, 0, link.index));
    send_each(
        addresses
            .iter()
            .map(|&ip| unsolicited_na(link.mac, ip, router)),
        |packet| socket.send_to(packet, &to),
    )
}

/// A gratuitous ARP for `ip` from `mac`: an ARP request whose sender and
/// target protocol addresses are both `ip`, the target hardware address
/// zero (RFC 5227 2.3's ARP Announcement).
pub fn gratuitous_arp(mac: Mac, ip: Ipv4Addr) -> [u8; ARP_LEN] {
    let mut frame = [0u8; ARP_LEN];
    // Hardware type Ethernet, protocol IPv4, address lengths 6 and 4.
    frame[..6].copy_from_slice(&[0x00, 0x01, 0x08, 0x00, 6, 4]);
    // Operation: request.
    frame[6..8].copy_from_slice(&1u16.to_be_bytes());
    frame[8..14].copy_from_slice(&mac);
    frame[14..18].copy_from_slice(&ip.octets());
    // Target hardware address 18..24 stays zero.
    frame[24..28].copy_from_slice(&ip.octets());
    frame
}

/// An unsolicited neighbour advertisement for `ip` at `mac` (RFC 4861
/// 4.4, 7.2.6): Override set, Solicited clear, Router as `router` says, a
/// Target Link-Layer Address option. The checksum is left zero for the
/// kernel to fill.
pub fn unsolicited_na(mac: Mac, ip: Ipv6Addr, router: bool) -> [u8; NA_LEN] {
    let mut packet = [0u8; NA_LEN];
    packet[0] = ICMPV6_NEIGHBOUR_ADVERTISEMENT;
    // Code 0, checksum 2..4 zero.
    packet[4] = NA_FLAG_OVERRIDE | if router { NA_FLAG_ROUTER } else { 0 };
    packet[8..24].copy_from_slice(&ip.octets());
    packet[24] = OPTION_TARGET_LINK_LAYER_ADDRESS;
    // The option's length in units of 8 bytes.
    packet[25] = 1;
    packet[26..32].copy_from_slice(&mac);
    packet
}

/// Whether IPv6 forwarding is on for `interface`, from procfs, which (unlike
/// sysfs) answers for the caller's network namespace.
pub fn ipv6_forwarding(interface: &str) -> io::Result<bool> {
    check_name(interface)?;
    let path = format!("/proc/sys/net/ipv6/conf/{interface}/forwarding");
    let value = std::fs::read_to_string(&path)
        .map_err(|e| io::Error::new(e.kind(), format!("reading {path}: {e}")))?;
    Ok(value.trim() != "0")
}

/// An interface as the announcements need it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Link {
    pub index: u32,
    pub mac: Mac,
}

/// The index and Ethernet address of `interface`, asked through `socket`
/// (any socket: the answer is for its network namespace). Fails with
/// [`io::ErrorKind::Unsupported`] for an interface without an Ethernet
/// address (a WireGuard or other layer-3 tunnel), where there is no one to
/// announce to.
pub fn link_of(socket: &Socket, interface: &str) -> io::Result<Link> {
    let index = interface_index(socket, interface)?;
    let mut request = interface_request(interface);
    ioctl(socket, libc::SIOCGIFHWADDR, &mut request)?;
    // SAFETY: SIOCGIFHWADDR succeeded, so the kernel wrote the hardware
    // address member.
    let hardware = unsafe { request.ifr_ifru.ifru_hwaddr };
    if hardware.sa_family != libc::ARPHRD_ETHER {
        return Err(io::Error::new(
            io::ErrorKind::Unsupported,
            format!(
                "interface {interface} has no Ethernet address (hardware type {})",
                hardware.sa_family
            ),
        ));
    }
    let mut mac = [0u8; 6];
    for (byte, &data) in mac.iter_mut().zip(&hardware.sa_data) {
        *byte = data as u8;
    }
    Ok(Link { index, mac })
}

/// The index of `interface`, asked through `socket` (any socket: the answer
/// is for its network namespace). A missing interface is
/// [`io::ErrorKind::NotFound`] (ENODEV).
pub fn interface_index(socket: &Socket, interface: &str) -> io::Result<u32> {
    check_name(interface)?;
    let mut request = interface_request(interface);
    ioctl(socket, libc::SIOCGIFINDEX, &mut request).map_err(|e| {
        if e.raw_os_error() == Some(libc::ENODEV) {
            io::Error::new(io::ErrorKind::NotFound, format!("no interface {interface}"))
        } else {
            e
        }
    })?;
    // SAFETY: SIOCGIFINDEX succeeded, so the kernel wrote the index member.
    let index = unsafe { request.ifr_ifru.ifru_ifindex };
    u32::try_from(index).map_err(|_| io::Error::other("negative interface index"))
}

/// A `sockaddr_ll` for interface `index`, EtherType `protocol` and
/// link-layer destination `destination`.
pub fn packet_address(index: u32, protocol: u16, destination: Mac) -> SockAddr {
    let mut storage = SockAddrStorage::zeroed();
    // SAFETY: sockaddr_ll is one of this platform's sockaddr types, and
    // smaller than the storage.
    let address = unsafe { storage.view_as::<libc::sockaddr_ll>() };
    address.sll_family = libc::AF_PACKET as libc::c_ushort;
    address.sll_protocol = protocol.to_be();
    address.sll_ifindex = index as libc::c_int;
    address.sll_halen = 6;
    address.sll_addr[..6].copy_from_slice(&destination);
    // SAFETY: the storage holds an initialised sockaddr_ll, whose size is
    // the length given.
    unsafe { SockAddr::new(storage, size_of::<libc::sockaddr_ll>() as libc::socklen_t) }
}

fn check_name(interface: &str) -> io::Result<()> {
    if valid_ifname(interface) && !interface.contains('\0') {
        Ok(())
    } else {
        Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{interface:?} is not a valid interface name"),
        ))
    }
}

/// An ifreq naming `interface`, which [`check_name`] has found shorter than
/// IFNAMSIZ, so the name stays NUL-terminated.
fn interface_request(interface: &str) -> libc::ifreq {
    // SAFETY: all-zero bytes are a valid ifreq (an empty name, a zero union).
    let mut request: libc::ifreq = unsafe { zeroed() };
    for (slot, &byte) in request.ifr_name.iter_mut().zip(interface.as_bytes()) {
        *slot = byte as libc::c_char;
    }
    request
}

fn ioctl(socket: &Socket, request: libc::c_ulong, ifreq: &mut libc::ifreq) -> io::Result<()> {
    // SAFETY: a valid fd and a pointer to an ifreq the kernel reads the name
    // from and writes its answer into, as both requests expect.
    let result =
        unsafe { libc::ioctl(socket.as_raw_fd(), request as _, std::ptr::from_mut(ifreq)) };
    if result < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Sends every message, all of it each, and returns the first failure.
fn send_each<const N: usize>(
    messages: impl Iterator<Item = [u8; N]>,
    send: impl Fn(&[u8]) -> io::Result<usize>,
) -> io::Result<()> {
    let mut result = Ok(());
    for message in messages {
        let outcome = match send(&message) {
            Ok(sent) if sent == N => Ok(()),
            Ok(sent) => Err(io::Error::new(
                io::ErrorKind::WriteZero,
                format!("sent {sent} of {N} bytes"),
            )),
            Err(e) => Err(e),
        };
        if result.is_ok() {
            result = outcome;
        }
    }
    result
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests
mod tests {
    use super::*;

    const MAC: Mac = [0x02, 0x00, 0x5e, 0x10, 0x20, 0x30];

    #[test]
    fn vrrp_gratuitous_arp_is_a_request_from_and_for_the_address() {
        let frame = gratuitous_arp(MAC, Ipv4Addr::new(192, 168, 1, 53));
        #[rustfmt::skip]
        let expected: [u8; ARP_LEN] = [
            0x00, 0x01,                         // hardware: Ethernet
            0x08, 0x00,                         // protocol: IPv4
            6, 4,                               // address lengths
            0x00, 0x01,                         // operation: request
            0x02, 0x00, 0x5e, 0x10, 0x20, 0x30, // sender MAC
            192, 168, 1, 53,                    // sender IP
            0, 0, 0, 0, 0, 0,                   // target MAC: unknown
            192, 168, 1, 53,                    // target IP: the same
        ];
        assert_eq!(frame, expected);
    }

    #[test]
    fn vrrp_unsolicited_na_overrides_with_the_target_link_layer_address() {
        let target: Ipv6Addr = "fd00::53".parse().unwrap();
        #[rustfmt::skip]
        let expected: [u8; NA_LEN] = [
            136, 0,                             // type, code
            0, 0,                               // checksum: the kernel's
            0x20, 0, 0, 0,                      // O set; R, S clear
            0xfd, 0, 0, 0, 0, 0, 0, 0,          // target fd00::53
            0, 0, 0, 0, 0, 0, 0, 0x53,
            2, 1,                               // option 2, 8 bytes
            0x02, 0x00, 0x5e, 0x10, 0x20, 0x30, // the MAC
        ];
        assert_eq!(unsolicited_na(MAC, target, false), expected);
        let mut as_router = expected;
        as_router[4] = 0xa0;
        assert_eq!(unsolicited_na(MAC, target, true), as_router);
    }

    #[test]
    fn vrrp_announcements_refuse_bad_interface_names() {
        for name in ["", "a/b", "sixteen-chars-xx", "nul\0"] {
            let error = announce_ipv4(name, &[Ipv4Addr::LOCALHOST]).unwrap_err();
            assert_eq!(error.kind(), io::ErrorKind::InvalidInput, "{name:?}");
            let error = announce_ipv6(name, &[Ipv6Addr::LOCALHOST]).unwrap_err();
            assert_eq!(error.kind(), io::ErrorKind::InvalidInput, "{name:?}");
        }
    }

    #[test]
    fn vrrp_every_message_gets_its_try_and_the_first_error_is_kept() {
        let tries = std::cell::Cell::new(0);
        let result = send_each([[1u8; 2], [2; 2], [3; 2]].into_iter(), |m| {
            tries.set(tries.get() + 1);
            match m[0] {
                1 => Ok(2),
                2 => Err(io::Error::from(io::ErrorKind::OutOfMemory)),
                _ => Ok(1),
            }
        });
        assert_eq!(tries.get(), 3);
        assert_eq!(result.unwrap_err().kind(), io::ErrorKind::OutOfMemory);
    }
}

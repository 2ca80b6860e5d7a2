//! The raw VRRP socket of one interface: IP protocol 112, joined to
//! 224.0.0.18 or ff02::12, TTL / hop limit 255 both ways (RFC 5798 5.1.1.3,
//! 5.1.2.3). It only moves bytes: the advertisement codec is
//! `vrrp::packet`, which needs the IP source and destination this module
//! reads off each packet for its checksum pseudo-header.
//!
//! The two families differ in what the kernel hands over:
//! - IPv4 raw sockets receive the whole IP header, as it arrived (network
//!   byte order, options included): [`parse_ipv4`] reads it. Sends go
//!   without `IP_HDRINCL`, so the kernel builds the header.
//! - IPv6 raw sockets receive only the payload: the source comes from the
//!   sender address, the destination from an `IPV6_PKTINFO` control message
//!   and the hop limit from an `IPV6_HOPLIMIT` one.
//!
//! Sends carry `IP_PKTINFO` / `IPV6_PKTINFO`, naming the interface and the
//! source: the interface's primary IPv4 address or its link-local IPv6
//! address (RFC 5798 5.1.1.1, 5.1.2.1), which [`VrrpSocket::local_address`]
//! reports for the pseudo-header and the tie-break. The socket is not bound
//! to that address: a bound raw socket would only receive packets sent to
//! it, not to the group. `IPV6_CHECKSUM` stays off, so the kernel neither
//! fills nor checks the VRRP checksum.
//!
//! [`interface_source`] finds that address with one RTM_GETADDR dump on a
//! blocking netlink socket, so [`VrrpSocket::open`] is a plain function.
#![allow(unsafe_code)] // reason: recvmsg/sendmsg with PKTINFO and HOPLIMIT control messages, IPV6_RECVPKTINFO and AsyncFd::register, which neither std nor socket2 covers

use std::io::{self, IoSlice};
use std::mem::{size_of, size_of_val, zeroed};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV6};
use std::ops::Range;
use std::os::fd::AsRawFd;

use ::vrrp::packet::{GROUP_V4, GROUP_V6, PROTOCOL, TTL};
use rtnetlink::packet_core::{
    NLM_F_DUMP, NLM_F_DUMP_INTR, NLM_F_REQUEST, NetlinkHeader, NetlinkMessage, NetlinkPayload,
};
use rtnetlink::packet_route::RouteNetlinkMessage;
use rtnetlink::packet_route::address::{AddressHeaderFlags, AddressMessage};
use socket2::{Domain, InterfaceIndexOrAddress, Protocol, SockAddr, Socket, Type};
use tokio::io::unix::AsyncFd;

use super::announce::interface_index;
use crate::links::{address_of, valid_ifname};

/// A buffer this long takes any advertisement with its IP header: a
/// 60-byte IPv4 header at most, the 8-byte VRRP header and 255 IPv6
/// addresses. Shorter buffers work until a longer packet arrives, which
/// [`VrrpSocket::recv`] then reports as [`BadPacket::Oversized`].
pub const RECV_BUFFER_LEN: usize = 60 + 8 + 255 * 16;

/// Room for the IPV6_PKTINFO (40 bytes with its header) and IPV6_HOPLIMIT
/// (24) control messages, as u64s for the alignment cmsghdr needs.
const CONTROL_WORDS: usize = 16;

/// The address family of a virtual router.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Family {
    V4,
    V6,
}

impl Family {
    /// The family of `address`.
    pub fn of(address: IpAddr) -> Family {
        match address {
            IpAddr::V4(_) => Family::V4,
            IpAddr::V6(_) => Family::V6,
        }
    }

    /// The VRRP multicast group: 224.0.0.18 or ff02::12.
    pub fn group(self) -> IpAddr {
        match self {
            Family::V4 => IpAddr::V4(GROUP_V4),
            Family::V6 => IpAddr::V6(GROUP_V6),
        }
    }
}

/// One packet as [`VrrpSocket::recv`] read it into the caller's buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// The IP source address: the sender, and the checksum's pseudo-header.
    pub source: IpAddr,
    /// The IP destination: the group, or one of our addresses for a
    /// unicast advertisement.
    pub destination: IpAddr,
    /// The TTL or hop limit it arrived with; RFC 5798 7.1 drops anything
    /// below 255 (that check is the caller's).
    pub ttl: u8,
    /// Where the VRRP message lies in the buffer given to `recv`, after
    /// the IP header; always within the buffer.
    pub payload: Range<usize>,
}

/// Why a received packet was dropped. [`VrrpSocket::recv`] returns these
/// inside an [`io::Error`] of kind [`io::ErrorKind::InvalidData`]: one
/// packet is lost, the socket stays usable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadPacket {
    #[error("{0} bytes are too short for an IPv4 header")]
    ShortHeader(usize),
    #[error("IP version {0} on an IPv4 socket")]
    NotIpv4(u8),
    #[error("IPv4 header length {0} is below the 20-byte minimum")]
    BadHeaderLength(usize),
    #[error("IPv4 header of {header} bytes in a packet of {received}")]
    HeaderPastEnd { header: usize, received: usize },
    #[error("IPv4 total length {total} is shorter than its {header}-byte header")]
    TotalBelowHeader { total: usize, header: usize },
    #[error("IPv4 total length {total} is more than the {received} bytes received")]
    TotalPastEnd { total: usize, received: usize },
    #[error("IP protocol {0}, not VRRP (112)")]
    NotVrrp(u8),
    #[error("longer than the {0}-byte receive buffer")]
    Oversized(usize),
    #[error("the kernel's control messages were cut short")]
    ControlTruncated,
    #[error("no {0} control message with the packet")]
    MissingControl(&'static str),
    #[error("the sender address is not IPv6")]
    NoSender,
    #[error("hop limit {0} out of range")]
    BadHopLimit(i32),
}

impl From<BadPacket> for io::Error {
    fn from(bad: BadPacket) -> io::Error {
        io::Error::new(io::ErrorKind::InvalidData, bad)
    }
}

/// An IPv4 header, as [`parse_ipv4`] found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ipv4Header {
    pub source: Ipv4Addr,
    pub destination: Ipv4Addr,
    pub ttl: u8,
    pub protocol: u8,
    /// Where the payload lies in the packet: from the end of the header
    /// (options included) to the total length.
    pub payload: Range<usize>,
}

/// Reads the IPv4 header at the start of `packet`, as an IPv4 raw socket
/// delivers it. Never reads past `packet`; every length field is checked
/// against the bytes that are there.
pub fn parse_ipv4(packet: &[u8]) -> Result<Ipv4Header, BadPacket> {
    let fixed: &[u8; 20] = packet
        .get(..20)
        .and_then(|h| h.try_into().ok())
        .ok_or(BadPacket::ShortHeader(packet.len()))?;
    let version = fixed[0] >> 4;
    if version != 4 {
        return Err(BadPacket::NotIpv4(version));
    }
    let header = usize::from(fixed[0] & 0x0f) * 4;
    if header < 20 {
        return Err(BadPacket::BadHeaderLength(header));
    }
    if header > packet.len() {
        return Err(BadPacket::HeaderPastEnd {
            header,
            received: packet.len(),
        });
    }
    let total = usize::from(u16::from_be_bytes([fixed[2], fixed[3]]));
    if total < header {
        return Err(BadPacket::TotalBelowHeader { total, header });
    }
    // Bytes past the total length would be link-layer padding, which the
    // kernel trims; fewer mean the packet was cut.
    if total > packet.len() {
        return Err(BadPacket::TotalPastEnd {
            total,
            received: packet.len(),
        });
    }
    Ok(Ipv4Header {
        ttl: fixed[8],
        protocol: fixed[9],
        source: Ipv4Addr::new(fixed[12], fixed[13], fixed[14], fixed[15]),
        destination: Ipv4Addr::new(fixed[16], fixed[17], fixed[18], fixed[19]),
        payload: header..total,
    })
}

/// A raw VRRP socket bound to one interface, for one address family.
#[derive(Debug)]
pub struct VrrpSocket {
    fd: AsyncFd<Socket>,
    family: Family,
    interface: String,
    index: u32,
    local: IpAddr,
}

impl VrrpSocket {
    /// Opens the VRRP socket of `interface` for `family`, sending from the
    /// address [`interface_source`] finds. Fails when the interface does
    /// not exist ([`io::ErrorKind::NotFound`]), has no such address (yet: a
    /// link-local address is only usable once duplicate address detection
    /// is over; [`io::ErrorKind::AddrNotAvailable`]), or the process lacks
    /// CAP_NET_RAW. Must be called within a tokio runtime; the address
    /// lookup is one netlink dump, answered by the kernel at once.
    pub fn open(interface: &str, family: Family) -> io::Result<VrrpSocket> {
        let (index, source) = interface_source(interface, family)?;
        VrrpSocket::with_source(interface, index, source)
    }

    /// Opens the VRRP socket of `interface` (index `index`), sending from
    /// `source`, which decides the family and must be an address of the
    /// interface (the kernel refuses sends from anything else). Must be
    /// called within a tokio runtime.
    pub fn with_source(interface: &str, index: u32, source: IpAddr) -> io::Result<VrrpSocket> {
        if !valid_ifname(interface) {
            return Err(invalid_name(interface));
        }
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(io::Error::other(
                "the VRRP socket must be opened within a tokio runtime",
            ));
        }
        let family = Family::of(source);
        let protocol = Some(Protocol::from(i32::from(PROTOCOL)));
        let socket = match source {
            IpAddr::V4(source) => {
                let socket = Socket::new(Domain::IPV4, Type::RAW, protocol)?;
                socket.bind_device(Some(interface.as_bytes()))?;
                socket.join_multicast_v4_n(&GROUP_V4, &InterfaceIndexOrAddress::Index(index))?;
                socket.set_multicast_if_v4(&source)?;
                socket.set_multicast_ttl_v4(u32::from(TTL))?;
                socket.set_ttl_v4(u32::from(TTL))?;
                socket.set_multicast_loop_v4(false)?;
                // Only the groups this socket joined, not every socket's.
                socket.set_multicast_all_v4(false)?;
                socket
            }
            IpAddr::V6(_) => {
                let socket = Socket::new(Domain::IPV6, Type::RAW, protocol)?;
                socket.bind_device(Some(interface.as_bytes()))?;
                socket.join_multicast_v6(&GROUP_V6, index)?;
                socket.set_multicast_if_v6(index)?;
                socket.set_multicast_hops_v6(u32::from(TTL))?;
                socket.set_unicast_hops_v6(u32::from(TTL))?;
                socket.set_multicast_loop_v6(false)?;
                socket.set_multicast_all_v6(false)?;
                socket.set_recv_hoplimit_v6(true)?;
                set_int_option(&socket, libc::IPPROTO_IPV6, libc::IPV6_RECVPKTINFO, 1)?;
                socket
            }
        };
        socket.set_nonblocking(true)?;
        // SAFETY: the Socket owns its descriptor, open until the AsyncFd
        // drops it, and as_raw_fd always returns that one.
        let fd = unsafe { AsyncFd::register(socket) }.map_err(|e| e.into_parts().1)?;
        Ok(VrrpSocket {
            fd,
            family,
            interface: interface.to_owned(),
            index,
            local: source,
        })
    }

    /// The address advertisements leave from: the IP source of the
    /// checksum's pseudo-header, and the tie-breaker between equal
    /// priorities (RFC 5798 6.4.3).
    pub fn local_address(&self) -> IpAddr {
        self.local
    }

    /// The family of the socket.
    pub fn family(&self) -> Family {
        self.family
    }

    /// The multicast group advertisements go to.
    pub fn group(&self) -> IpAddr {
        self.family.group()
    }

    /// The interface name.
    pub fn interface(&self) -> &str {
        &self.interface
    }

    /// The interface index.
    pub fn index(&self) -> u32 {
        self.index
    }

    /// Waits for the next packet and returns it with its IP source,
    /// destination and TTL. A packet that cannot be read (cut short, longer
    /// than `buf`, see [`RECV_BUFFER_LEN`]) is an error of kind
    /// [`io::ErrorKind::InvalidData`] carrying a [`BadPacket`]: drop it
    /// and call again.
    pub async fn recv(&self, buf: &mut [u8]) -> io::Result<Received> {
        let got = loop {
            let mut guard = self.fd.readable().await?;
            match guard.try_io(|fd| recv_raw(fd.get_ref(), buf, self.family)) {
                Ok(result) => break result?,
                Err(_would_block) => continue,
            }
        };
        if got.truncated {
            return Err(BadPacket::Oversized(buf.len()).into());
        }
        if got.control_truncated {
            return Err(BadPacket::ControlTruncated.into());
        }
        let data = buf.get(..got.len).unwrap_or_default();
        match self.family {
            Family::V4 => {
                let header = parse_ipv4(data)?;
                if header.protocol != PROTOCOL {
                    return Err(BadPacket::NotVrrp(header.protocol).into());
                }
                Ok(Received {
                    source: IpAddr::V4(header.source),
                    destination: IpAddr::V4(header.destination),
                    ttl: header.ttl,
                    payload: header.payload,
                })
            }
            Family::V6 => {
                let Some(SocketAddr::V6(source)) = got.from else {
                    return Err(BadPacket::NoSender.into());
                };
                let destination = got
                    .destination
                    .ok_or(BadPacket::MissingControl("IPV6_PKTINFO"))?;
                let hop_limit = got
                    .hop_limit
                    .ok_or(BadPacket::MissingControl("IPV6_HOPLIMIT"))?;
                let ttl = u8::try_from(hop_limit).map_err(|_| BadPacket::BadHopLimit(hop_limit))?;
                Ok(Received {
                    source: IpAddr::V6(*source.ip()),
                    destination: IpAddr::V6(destination),
                    ttl,
                    payload: 0..data.len(),
                })
            }
        }
    }

    /// Sends `payload` (an encoded advertisement) to `destination`, the
    /// group or a unicast peer, from [`Self::local_address`] out of this
    /// socket's interface, with TTL / hop limit 255. Once that address is
    /// gone from the interface the kernel refuses rather than pick another
    /// (ENETUNREACH for IPv4, EINVAL for IPv6): open the socket again.
    pub async fn send(&self, payload: &[u8], destination: IpAddr) -> io::Result<()> {
        if Family::of(destination) != self.family {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "cannot send to {destination} from the {:?} VRRP socket of {}",
                    self.family, self.interface
                ),
            ));
        }
        let sent = loop {
            let mut guard = self.fd.writable().await?;
            match guard
                .try_io(|fd| send_raw(fd.get_ref(), payload, destination, self.local, self.index))
            {
                Ok(result) => break result?,
                Err(_would_block) => continue,
            }
        };
        if sent != payload.len() {
            return Err(io::Error::new(
                io::ErrorKind::WriteZero,
                format!("sent {sent} of {} bytes", payload.len()),
            ));
        }
        Ok(())
    }
}

/// The index of `interface` and the address its advertisements leave
/// from: the primary IPv4 address (the first one not flagged secondary,
/// as the kernel lists them), or the link-local IPv6 address. Of several
/// link-local addresses the oldest is taken (the kernel lists newer ones
/// of a scope first), so a virtual link-local address added later by VRRP
/// itself is not picked; tentative ones (DAD not over) and ones that failed
/// DAD are skipped, since the kernel refuses to send from them. Answers for
/// the calling thread's network namespace.
pub fn interface_source(interface: &str, family: Family) -> io::Result<(u32, IpAddr)> {
    if !valid_ifname(interface) {
        return Err(invalid_name(interface));
    }
    // Any socket answers the index ioctl.
    let probe = Socket::new(Domain::IPV4, Type::DGRAM, None)?;
    let index = interface_index(&probe, interface)?;
    let candidates: Vec<Candidate> = dump_addresses()?
        .iter()
        .filter(|message| message.header.index == index)
        .filter_map(|message| {
            let flags = message.header.flags;
            Some(Candidate {
                address: address_of(message)?.addr(),
                secondary: flags.contains(AddressHeaderFlags::Secondary),
                unusable: flags
                    .intersects(AddressHeaderFlags::Tentative | AddressHeaderFlags::Dadfailed),
            })
        })
        .collect();
    let source = choose_source(family, &candidates).ok_or_else(|| {
        let what = match family {
            Family::V4 => "no IPv4 address",
            Family::V6 => {
                "no usable link-local IPv6 address (is duplicate address detection still running?)"
            }
        };
        io::Error::new(
            io::ErrorKind::AddrNotAvailable,
            format!("interface {interface} has {what}"),
        )
    })?;
    Ok((index, source))
}

/// Every address of every interface, in the kernel's order, from an
/// RTM_GETADDR dump on a blocking netlink socket: the kernel answers a
/// dump at once, so this is fine to call from async code, and it needs no
/// runtime (unlike rtnetlink's connection, which `links` uses). A dump the
/// kernel marks as interrupted (addresses changed meanwhile) is repeated.
fn dump_addresses() -> io::Result<Vec<AddressMessage>> {
    let mut attempts = 0;
    loop {
        attempts += 1;
        match dump_addresses_once()? {
            (addresses, false) => return Ok(addresses),
            (addresses, true) if attempts >= 3 => return Ok(addresses),
            (_, true) => {}
        }
    }
}

/// One dump: the addresses, and whether the kernel flagged it interrupted.
fn dump_addresses_once() -> io::Result<(Vec<AddressMessage>, bool)> {
    use rtnetlink::sys::protocols::NETLINK_ROUTE;
    use rtnetlink::sys::{Socket as NetlinkSocket, SocketAddr as NetlinkAddr};

    let mut socket = NetlinkSocket::new(NETLINK_ROUTE)?;
    socket.bind_auto()?;
    socket.connect(&NetlinkAddr::new(0, 0))?;
    let mut header = NetlinkHeader::default();
    header.flags = NLM_F_REQUEST | NLM_F_DUMP;
    header.sequence_number = 1;
    let mut request = NetlinkMessage::new(
        header,
        NetlinkPayload::InnerMessage(RouteNetlinkMessage::GetAddress(AddressMessage::default())),
    );
    request.finalize();
    let mut bytes = vec![0; request.buffer_len()];
    request.serialize(&mut bytes);
    socket.send(&bytes, 0)?;

    let mut found = Vec::new();
    let mut interrupted = false;
    let mut buf: Vec<u8> = Vec::with_capacity(1 << 16);
    loop {
        buf.clear();
        socket.recv(&mut buf, 0)?;
        let mut rest: &[u8] = &buf;
        while !rest.is_empty() {
            let message =
                NetlinkMessage::<RouteNetlinkMessage>::deserialize(rest).map_err(|e| {
                    io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("netlink address dump: {e}"),
                    )
                })?;
            interrupted |= message.header.flags & NLM_F_DUMP_INTR != 0;
            let length = message.header.length as usize;
            match message.payload {
                NetlinkPayload::Done(_) => return Ok((found, interrupted)),
                NetlinkPayload::Error(error) => return Err(error.to_io()),
                NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewAddress(address)) => {
                    found.push(address);
                }
                _ => {}
            }
            // Messages are padded to 4 bytes; the header alone is 16.
            rest = rest
                .get(length.next_multiple_of(4).max(16)..)
                .unwrap_or_default();
        }
    }
}

/// One address of an interface, in the kernel's dump order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Candidate {
    address: IpAddr,
    /// IFA_F_SECONDARY: an IPv4 address in the subnet of an earlier one.
    secondary: bool,
    /// IFA_F_TENTATIVE or IFA_F_DADFAILED: not usable as a source.
    unusable: bool,
}

/// The rule of [`interface_source`], on the kernel's address list.
fn choose_source(family: Family, candidates: &[Candidate]) -> Option<IpAddr> {
    match family {
        Family::V4 => candidates
            .iter()
            .find(|c| c.address.is_ipv4() && !c.secondary && !c.unusable)
            .map(|c| c.address),
        Family::V6 => candidates
            .iter()
            .rev()
            .find(|c| match c.address {
                IpAddr::V6(a) => a.is_unicast_link_local() && !c.unusable,
                IpAddr::V4(_) => false,
            })
            .map(|c| c.address),
    }
}

fn invalid_name(interface: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("{interface:?} is not a valid interface name"),
    )
}

/// What one recvmsg call returned.
#[derive(Debug, Default)]
struct RawRecv {
    len: usize,
    /// MSG_TRUNC: the packet was longer than the buffer.
    truncated: bool,
    /// MSG_CTRUNC: control messages did not fit.
    control_truncated: bool,
    from: Option<SocketAddr>,
    /// IPv6: the IPV6_PKTINFO destination.
    destination: Option<Ipv6Addr>,
    /// IPv6: the IPV6_HOPLIMIT value.
    hop_limit: Option<i32>,
}

fn recv_raw(socket: &Socket, buf: &mut [u8], family: Family) -> io::Result<RawRecv> {
    let mut control = [0u64; CONTROL_WORDS];
    let control_len = match family {
        // IPv4 reads everything from the IP header.
        Family::V4 => 0,
        Family::V6 => size_of_val(&control),
    };
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: try_init hands a zeroed sockaddr_storage and its size; the
    // msghdr points at it, at `iov` (which points at `buf`) and at
    // `control`, all alive and of the lengths given, for the duration of
    // the call. The kernel sets the address length it wrote.
    let (mut got, from) = unsafe {
        SockAddr::try_init(|storage, storage_len| {
            let mut msg: libc::msghdr = zeroed();
            msg.msg_name = storage.cast();
            msg.msg_namelen = *storage_len;
            msg.msg_iov = &raw mut iov;
            msg.msg_iovlen = 1;
            if control_len > 0 {
                msg.msg_control = control.as_mut_ptr().cast();
                msg.msg_controllen = control_len as _;
            }
            let received = libc::recvmsg(socket.as_raw_fd(), &raw mut msg, 0);
            if received < 0 {
                return Err(io::Error::last_os_error());
            }
            *storage_len = msg.msg_namelen;
            let mut got = RawRecv {
                len: usize::try_from(received).unwrap_or(0),
                truncated: msg.msg_flags & libc::MSG_TRUNC != 0,
                control_truncated: msg.msg_flags & libc::MSG_CTRUNC != 0,
                ..RawRecv::default()
            };
            if control_len > 0 {
                read_control(&msg, &mut got);
            }
            Ok(got)
        })?
    };
    got.from = from.as_socket();
    Ok(got)
}

/// Picks IPV6_PKTINFO and IPV6_HOPLIMIT out of the control messages
/// recvmsg left in `msg`.
///
/// # Safety
/// `msg` must come from a successful recvmsg, its control pointer and
/// length describing a buffer the kernel filled, aligned for cmsghdr.
unsafe fn read_control(msg: &libc::msghdr, got: &mut RawRecv) {
    // SAFETY: the CMSG macros walk the buffer the kernel filled within
    // msg_controllen and return null past its end; each data read is
    // unaligned and of a size the kernel's cmsg_len covers (checked).
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(msg);
        while !cmsg.is_null() {
            let header = &*cmsg;
            let data = libc::CMSG_DATA(cmsg);
            let data_len = header.cmsg_len.saturating_sub(libc::CMSG_LEN(0) as usize);
            match (header.cmsg_level, header.cmsg_type) {
                (libc::IPPROTO_IPV6, libc::IPV6_PKTINFO)
                    if data_len >= size_of::<libc::in6_pktinfo>() =>
                {
                    let info = data.cast::<libc::in6_pktinfo>().read_unaligned();
                    got.destination = Some(Ipv6Addr::from(info.ipi6_addr.s6_addr));
                }
                (libc::IPPROTO_IPV6, libc::IPV6_HOPLIMIT)
                    if data_len >= size_of::<libc::c_int>() =>
                {
                    got.hop_limit = Some(data.cast::<libc::c_int>().read_unaligned());
                }
                _ => {}
            }
            cmsg = libc::CMSG_NXTHDR(msg, cmsg);
        }
    }
}

/// One sendmsg of `payload` to `destination` with a PKTINFO control
/// message naming `source` and the interface `index`.
fn send_raw(
    socket: &Socket,
    payload: &[u8],
    destination: IpAddr,
    source: IpAddr,
    index: u32,
) -> io::Result<usize> {
    // The scope tells the kernel which link a link-local destination is
    // on; it must agree with the PKTINFO interface, and is ignored for
    // addresses that need none.
    let to = match destination {
        IpAddr::V4(d) => SockAddr::from(SocketAddr::new(IpAddr::V4(d), 0)),
        IpAddr::V6(d) => SockAddr::from(SocketAddrV6::new(d, 0, 0, index)),
    };
    let mut control = [0u64; CONTROL_WORDS];
    let iov = [IoSlice::new(payload)];
    // SAFETY: the msghdr points at `to`, `iov` (which points at `payload`)
    // and `control`, all alive for the call. The one control message is
    // written through CMSG_FIRSTHDR within CMSG_SPACE of its data, which
    // fits the 128 bytes of `control`; the data write is unaligned.
    let sent = unsafe {
        let mut msg: libc::msghdr = zeroed();
        msg.msg_name = to.as_ptr().cast_mut().cast();
        msg.msg_namelen = to.len();
        msg.msg_iov = iov.as_ptr().cast_mut().cast();
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr().cast();
        let (level, kind, data_len) = match source {
            IpAddr::V4(_) => (
                libc::IPPROTO_IP,
                libc::IP_PKTINFO,
                size_of::<libc::in_pktinfo>(),
            ),
            IpAddr::V6(_) => (
                libc::IPPROTO_IPV6,
                libc::IPV6_PKTINFO,
                size_of::<libc::in6_pktinfo>(),
            ),
        };
        let space = libc::CMSG_SPACE(data_len as libc::c_uint) as usize;
        debug_assert!(space <= size_of_val(&control));
        msg.msg_controllen = space as _;
        let cmsg = libc::CMSG_FIRSTHDR(&raw const msg);
        (*cmsg).cmsg_level = level;
        (*cmsg).cmsg_type = kind;
        (*cmsg).cmsg_len = libc::CMSG_LEN(data_len as libc::c_uint) as _;
        let data = libc::CMSG_DATA(cmsg);
        match source {
            IpAddr::V4(s) => data
                .cast::<libc::in_pktinfo>()
                .write_unaligned(libc::in_pktinfo {
                    ipi_ifindex: index as libc::c_int,
                    // The source; ipi_addr is only meaningful on receive.
                    ipi_spec_dst: libc::in_addr {
                        s_addr: u32::from(s).to_be(),
                    },
                    ipi_addr: libc::in_addr { s_addr: 0 },
                }),
            IpAddr::V6(s) => data
                .cast::<libc::in6_pktinfo>()
                .write_unaligned(libc::in6_pktinfo {
                    ipi6_addr: libc::in6_addr {
                        s6_addr: s.octets(),
                    },
                    ipi6_ifindex: index as _,
                }),
        }
        libc::sendmsg(socket.as_raw_fd(), &raw const msg, 0)
    };
    if sent < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(usize::try_from(sent).unwrap_or(0))
}

fn set_int_option(
    socket: &Socket,
    level: libc::c_int,
    option: libc::c_int,
    value: libc::c_int,
) -> io::Result<()> {
    // SAFETY: a valid fd and a pointer to an int with its size.
    let result = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            level,
            option,
            (&raw const value).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if result < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)] // tests
#[path = "socket_tests.rs"]
mod tests;

//! Batched UDP receive and send with `recvmmsg(2)` and `sendmmsg(2)`.
//!
//! This is the crate's only `unsafe` code: the two system calls take arrays
//! of raw pointers into buffers that this module owns. Batching lets one
//! system call carry up to [`BATCH`] packets in each direction, which is
//! where a cache-hit server spends most of its time.
#![allow(unsafe_code)] // reason: recvmmsg/sendmmsg have no safe wrapper in std or socket2

use std::io;
use std::mem::{size_of, zeroed};
use std::net::{SocketAddr, SocketAddrV4, SocketAddrV6, UdpSocket};
use std::os::fd::AsRawFd;

/// Packets per system call.
pub const BATCH: usize = 32;
/// Largest query we accept over UDP; anything longer is cut and then fails
/// to parse, which is what a hostile oversized packet deserves.
pub const RECV_BUF: usize = 4096;

/// Received packets of one `recvmmsg` call.
pub struct RecvBatch {
    bufs: Vec<u8>,
    addrs: Vec<libc::sockaddr_storage>,
    iovecs: Vec<libc::iovec>,
    headers: Vec<libc::mmsghdr>,
    count: usize,
}

impl std::fmt::Debug for RecvBatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecvBatch")
            .field("count", &self.count)
            .finish()
    }
}

impl Default for RecvBatch {
    fn default() -> Self {
        Self::new()
    }
}

impl RecvBatch {
    pub fn new() -> Self {
        // SAFETY: sockaddr_storage, iovec and mmsghdr are plain C structs for
        // which all-zero bytes are a valid value.
        let (addrs, iovecs, headers) = unsafe {
            (
                vec![zeroed::<libc::sockaddr_storage>(); BATCH],
                vec![zeroed::<libc::iovec>(); BATCH],
                vec![zeroed::<libc::mmsghdr>(); BATCH],
            )
        };
        Self {
            bufs: vec![0; BATCH * RECV_BUF],
            addrs,
            iovecs,
            headers,
            count: 0,
        }
    }

    /// Blocks until at least one packet arrives (or the socket's read
    /// timeout passes), then takes whatever else is already queued.
    pub fn recv(&mut self, socket: &UdpSocket) -> io::Result<usize> {
        self.count = 0;
        for i in 0..BATCH {
            self.iovecs[i] = libc::iovec {
                iov_base: self.bufs[i * RECV_BUF..].as_mut_ptr().cast(),
                iov_len: RECV_BUF,
            };
            let header = &mut self.headers[i];
            header.msg_hdr.msg_name = (&raw mut self.addrs[i]).cast();
            header.msg_hdr.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            header.msg_hdr.msg_iov = &raw mut self.iovecs[i];
            header.msg_hdr.msg_iovlen = 1;
            header.msg_hdr.msg_control = std::ptr::null_mut();
            header.msg_hdr.msg_controllen = 0;
            header.msg_hdr.msg_flags = 0;
            header.msg_len = 0;
        }
        // SAFETY: every header points at an iovec and an address slot owned
        // by `self`, which outlives the call; lengths match the buffers.
        let received = unsafe {
            libc::recvmmsg(
                socket.as_raw_fd(),
                self.headers.as_mut_ptr(),
                BATCH as libc::c_uint,
                libc::MSG_WAITFORONE,
                std::ptr::null_mut(),
            )
        };
        if received < 0 {
            return Err(io::Error::last_os_error());
        }
        self.count = usize::try_from(received).unwrap_or(0);
        Ok(self.count)
    }

    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Packet `i` and its sender; `None` for an address family we do not serve.
    pub fn packet(&self, i: usize) -> Option<(&[u8], SocketAddr)> {
        if i >= self.count {
            return None;
        }
        let len = (self.headers[i].msg_len as usize).min(RECV_BUF);
        let data = &self.bufs[i * RECV_BUF..i * RECV_BUF + len];
        let addr = from_storage(&self.addrs[i], self.headers[i].msg_hdr.msg_namelen)?;
        Some((data, addr))
    }
}

/// Largest reply that may ride in a coalesced send: segments of up to this
/// size fit the IPv6 minimum MTU with room for headers, so none needs
/// fragmenting whatever the path.
const GSO_MAX_SEGMENT: usize = 1200;
/// Room for one `UDP_SEGMENT` control message (CMSG_SPACE of a u16 is 24
/// bytes on 64-bit Linux), as u64s for the alignment cmsghdr needs.
const CONTROL_WORDS: usize = 4;

/// Responses queued for one `sendmmsg` call.
///
/// Replies to the same client socket with the same length go out as one
/// message with UDP generic segmentation offload (`UDP_SEGMENT`): the
/// kernel carries them through routing, netfilter and the device as one
/// packet and cuts them into datagrams as late as it can. A client with
/// many queries in flight (a forwarder, a load generator) is answered for
/// a fraction of the per-packet cost; lone queries go out as before.
pub struct SendBatch {
    bufs: Vec<Vec<u8>>,
    peers: Vec<SocketAddr>,
    addrs: Vec<libc::sockaddr_storage>,
    iovecs: Vec<libc::iovec>,
    headers: Vec<libc::mmsghdr>,
    controls: Vec<[u64; CONTROL_WORDS]>,
    /// Per message: the replies it carries, as a range of `order`.
    messages: Vec<(usize, usize)>,
    /// Reply indices grouped so that each message's replies are adjacent.
    order: Vec<usize>,
    count: usize,
    /// Answers of the last flush that left in a message with others.
    segmented: usize,
    /// Off once the kernel has refused a segmented send on this socket
    /// (a device without checksum offload, an IPsec route).
    coalesce: bool,
}

impl std::fmt::Debug for SendBatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SendBatch")
            .field("count", &self.count)
            .field("coalesce", &self.coalesce)
            .finish()
    }
}

impl Default for SendBatch {
    fn default() -> Self {
        Self::new(true)
    }
}

impl SendBatch {
    /// An empty batch; `coalesce` allows segmented sends.
    pub fn new(coalesce: bool) -> Self {
        // SAFETY: as in RecvBatch::new, all-zero C structs are valid.
        let (addrs, iovecs, headers) = unsafe {
            (
                vec![zeroed::<libc::sockaddr_storage>(); BATCH],
                vec![zeroed::<libc::iovec>(); BATCH],
                vec![zeroed::<libc::mmsghdr>(); BATCH],
            )
        };
        Self {
            bufs: (0..BATCH).map(|_| Vec::with_capacity(RECV_BUF)).collect(),
            peers: Vec::with_capacity(BATCH),
            addrs,
            iovecs,
            headers,
            controls: vec![[0; CONTROL_WORDS]; BATCH],
            messages: Vec::with_capacity(BATCH),
            order: Vec::with_capacity(BATCH),
            count: 0,
            segmented: 0,
            coalesce,
        }
    }

    /// The buffer for the next response, cleared; `None` when the batch is full.
    pub fn next_buf(&mut self) -> Option<&mut Vec<u8>> {
        let buf = self.bufs.get_mut(self.count)?;
        buf.clear();
        Some(buf)
    }

    /// Queues the buffer last returned by [`Self::next_buf`] for `peer`.
    pub fn commit(&mut self, peer: SocketAddr) {
        if self.count < BATCH {
            self.peers.push(peer);
            self.count += 1;
        }
    }

    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// How many answers of the last flush left in a segmented send.
    pub fn segmented(&self) -> usize {
        self.segmented
    }

    /// Sends everything queued and empties the batch. Packets the kernel
    /// refuses (full buffers, unreachable peers) are dropped, as UDP allows.
    pub fn flush(&mut self, socket: &UdpSocket) -> io::Result<()> {
        self.group();
        let messages = self.messages.len();
        for m in 0..messages {
            self.build_message(m);
        }
        let mut sent = 0;
        let mut result = Ok(());
        self.segmented = 0;
        while sent < messages {
            // SAFETY: headers[sent..messages] point at iovecs, buffers,
            // addresses and control data owned by `self`, valid for the
            // duration of the call.
            let n = unsafe {
                libc::sendmmsg(
                    socket.as_raw_fd(),
                    self.headers[sent..].as_mut_ptr(),
                    (messages - sent) as libc::c_uint,
                    0,
                )
            };
            if n >= 0 {
                let done = usize::try_from(n).unwrap_or(0).max(1);
                self.segmented += self.messages[sent..(sent + done).min(messages)]
                    .iter()
                    .filter(|(_, replies)| *replies > 1)
                    .map(|(_, replies)| replies)
                    .sum::<usize>();
                sent += done;
                continue;
            }
            let error = io::Error::last_os_error();
            if error.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            let (first, replies) = self.messages[sent];
            if replies > 1 {
                if refuses_segmentation(&error) {
                    // This socket's route cannot take segmented sends.
                    self.coalesce = false;
                }
                // Whatever went wrong with the whole, each reply gets its
                // own chance (a small MTU, for one, needs fragments).
                for &reply in &self.order[first..first + replies] {
                    if let Err(e) = socket.send_to(&self.bufs[reply], self.peers[reply]) {
                        result = Err(e);
                    }
                }
            } else {
                result = Err(error);
            }
            // Skip the message the kernel refused and carry on.
            sent += 1;
        }
        self.count = 0;
        self.peers.clear();
        result
    }

    /// Orders the replies into messages: each reply joins the first
    /// earlier one with the same peer and length, up to the batch size.
    fn group(&mut self) {
        self.order.clear();
        self.messages.clear();
        let mut taken = [false; BATCH];
        for i in 0..self.count {
            if taken[i] {
                continue;
            }
            let first = self.order.len();
            self.order.push(i);
            let len = self.bufs[i].len();
            if self.coalesce && (1..=GSO_MAX_SEGMENT).contains(&len) {
                let peer = self.peers[i];
                for (j, done) in taken.iter_mut().enumerate().take(self.count).skip(i + 1) {
                    if !*done && self.bufs[j].len() == len && self.peers[j] == peer {
                        *done = true;
                        self.order.push(j);
                    }
                }
            }
            self.messages.push((first, self.order.len() - first));
        }
    }

    /// Fills header `m` (and its iovecs and control data) for message `m`.
    fn build_message(&mut self, m: usize) {
        let (first, replies) = self.messages[m];
        for slot in first..first + replies {
            let reply = self.order[slot];
            self.iovecs[slot] = libc::iovec {
                iov_base: self.bufs[reply].as_mut_ptr().cast(),
                iov_len: self.bufs[reply].len(),
            };
        }
        let lead = self.order[first];
        let name_len = to_storage(self.peers[lead], &mut self.addrs[m]);
        let segment = self.bufs[lead].len();
        let (control, control_len) = if replies > 1 {
            let control = &mut self.controls[m];
            (
                control.as_mut_ptr().cast(),
                write_segment_size(control, segment),
            )
        } else {
            (std::ptr::null_mut(), 0)
        };
        let header = &mut self.headers[m];
        header.msg_hdr.msg_name = (&raw mut self.addrs[m]).cast();
        header.msg_hdr.msg_namelen = name_len;
        // SAFETY: `first + replies <= BATCH`, the length of `iovecs`.
        header.msg_hdr.msg_iov = unsafe { self.iovecs.as_mut_ptr().add(first) };
        header.msg_hdr.msg_iovlen = replies;
        header.msg_hdr.msg_control = control;
        header.msg_hdr.msg_controllen = control_len;
        header.msg_hdr.msg_flags = 0;
        header.msg_len = 0;
    }
}

/// Writes a `UDP_SEGMENT` control message for segments of `size` bytes
/// into `control`; returns the length to put in `msg_controllen`.
fn write_segment_size(control: &mut [u64; CONTROL_WORDS], size: usize) -> usize {
    *control = [0; CONTROL_WORDS];
    let size = u16::try_from(size).unwrap_or(u16::MAX);
    // SAFETY: CMSG_SPACE/CMSG_LEN are arithmetic; the header and its data
    // fit in the 32 aligned bytes of `control` (24 are needed).
    unsafe {
        let space = libc::CMSG_SPACE(size_of::<u16>() as libc::c_uint) as usize;
        debug_assert!(space <= size_of::<[u64; CONTROL_WORDS]>());
        let header = control.as_mut_ptr().cast::<libc::cmsghdr>();
        (*header).cmsg_level = libc::SOL_UDP;
        (*header).cmsg_type = libc::UDP_SEGMENT;
        (*header).cmsg_len = libc::CMSG_LEN(size_of::<u16>() as libc::c_uint) as usize;
        libc::CMSG_DATA(header).cast::<u16>().write_unaligned(size);
        space
    }
}

/// Whether a send failed because the route cannot take UDP segmentation
/// offload, rather than for the reasons any datagram can fail.
fn refuses_segmentation(error: &io::Error) -> bool {
    matches!(
        error.raw_os_error(),
        Some(libc::EIO | libc::EINVAL | libc::EOPNOTSUPP | libc::ENOPROTOOPT)
    )
}

fn from_storage(storage: &libc::sockaddr_storage, len: libc::socklen_t) -> Option<SocketAddr> {
    let len = len as usize;
    match i32::from(storage.ss_family) {
        libc::AF_INET if len >= size_of::<libc::sockaddr_in>() => {
            // SAFETY: the family says the storage holds a sockaddr_in, and
            // sockaddr_storage is large and aligned enough for it.
            let sin = unsafe { &*(std::ptr::from_ref(storage).cast::<libc::sockaddr_in>()) };
            Some(SocketAddr::V4(SocketAddrV4::new(
                u32::from_be(sin.sin_addr.s_addr).into(),
                u16::from_be(sin.sin_port),
            )))
        }
        libc::AF_INET6 if len >= size_of::<libc::sockaddr_in6>() => {
            // SAFETY: as above, for sockaddr_in6.
            let sin6 = unsafe { &*(std::ptr::from_ref(storage).cast::<libc::sockaddr_in6>()) };
            Some(SocketAddr::V6(SocketAddrV6::new(
                sin6.sin6_addr.s6_addr.into(),
                u16::from_be(sin6.sin6_port),
                sin6.sin6_flowinfo,
                sin6.sin6_scope_id,
            )))
        }
        _ => None,
    }
}

fn to_storage(addr: SocketAddr, storage: &mut libc::sockaddr_storage) -> libc::socklen_t {
    match addr {
        SocketAddr::V4(v4) => {
            // SAFETY: sockaddr_storage is large and aligned enough for a
            // sockaddr_in; we write a fully initialised value.
            let sin = unsafe { &mut *(std::ptr::from_mut(storage).cast::<libc::sockaddr_in>()) };
            *sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: v4.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from(*v4.ip()).to_be(),
                },
                sin_zero: [0; 8],
            };
            size_of::<libc::sockaddr_in>() as libc::socklen_t
        }
        SocketAddr::V6(v6) => {
            // SAFETY: as above, for sockaddr_in6.
            let sin6 = unsafe { &mut *(std::ptr::from_mut(storage).cast::<libc::sockaddr_in6>()) };
            *sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: v6.port().to_be(),
                sin6_flowinfo: v6.flowinfo(),
                sin6_addr: libc::in6_addr {
                    s6_addr: v6.ip().octets(),
                },
                sin6_scope_id: v6.scope_id(),
            };
            size_of::<libc::sockaddr_in6>() as libc::socklen_t
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests
mod tests {
    use super::*;

    #[test]
    fn batches_round_trip_over_loopback() {
        let server = UdpSocket::bind("127.0.0.1:0").unwrap();
        let client = UdpSocket::bind("127.0.0.1:0").unwrap();
        for i in 0..5u8 {
            client
                .send_to(&[i; 20], server.local_addr().unwrap())
                .unwrap();
        }
        let mut recv = RecvBatch::new();
        let mut got = 0;
        while got < 5 {
            got += recv.recv(&server).unwrap();
        }
        let (data, from) = recv.packet(0).unwrap();
        assert_eq!(from, client.local_addr().unwrap());
        assert_eq!(data.len(), 20);

        let mut send = SendBatch::new(false);
        for i in 0..3u8 {
            send.next_buf().unwrap().extend_from_slice(&[i; 7]);
            send.commit(client.local_addr().unwrap());
        }
        send.flush(&server).unwrap();
        let mut buf = [0u8; 64];
        for i in 0..3u8 {
            let (n, _) = client.recv_from(&mut buf).unwrap();
            assert_eq!(&buf[..n], &[i; 7]);
        }
    }

    /// Queues answers of two sizes for two clients: `a` gets 7-byte
    /// answers 0, 1, 2 and 5 and a 9-byte answer 4; `b` a 7-byte answer 3.
    fn queue_mixed(send: &mut SendBatch, a: SocketAddr, b: SocketAddr) {
        for (i, peer, len) in [
            (0, a, 7),
            (1, a, 7),
            (2, a, 7),
            (3, b, 7),
            (4, a, 9),
            (5, a, 7),
        ] {
            send.next_buf().unwrap().extend_from_slice(&vec![i; len]);
            send.commit(peer);
        }
    }

    fn datagrams(socket: &UdpSocket, count: usize) -> Vec<Vec<u8>> {
        socket
            .set_read_timeout(Some(std::time::Duration::from_secs(2)))
            .unwrap();
        let mut buf = [0u8; 64];
        (0..count)
            .map(|_| {
                let (n, _) = socket.recv_from(&mut buf).unwrap();
                buf[..n].to_vec()
            })
            .collect()
    }

    #[test]
    fn equal_answers_to_one_client_leave_together_and_arrive_apart() {
        let server = UdpSocket::bind("127.0.0.1:0").unwrap();
        let a = UdpSocket::bind("127.0.0.1:0").unwrap();
        let b = UdpSocket::bind("127.0.0.1:0").unwrap();
        let mut send = SendBatch::new(true);
        queue_mixed(&mut send, a.local_addr().unwrap(), b.local_addr().unwrap());
        send.flush(&server).unwrap();
        // a's four 7-byte answers made one message; b's and the 9-byte one
        // went alone.
        assert_eq!(send.messages, vec![(0, 4), (4, 1), (5, 1)]);
        assert_eq!(send.segmented(), 4);
        assert!(send.coalesce);
        let got = datagrams(&a, 5);
        let want: Vec<Vec<u8>> = [(0, 7), (1, 7), (2, 7), (5, 7), (4, 9)]
            .map(|(i, len)| vec![i; len])
            .to_vec();
        assert_eq!(got, want);
        assert_eq!(datagrams(&b, 1), vec![vec![3u8; 7]]);
        assert!(send.is_empty());
    }

    #[test]
    fn a_socket_that_refuses_segmentation_still_gets_every_answer_out() {
        let server = UdpSocket::bind("127.0.0.1:0").unwrap();
        // Without UDP checksums the kernel refuses segmented sends (EINVAL).
        let on: libc::c_int = 1;
        // SAFETY: a valid socket and a c_int option value of the right size.
        let set = unsafe {
            libc::setsockopt(
                server.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_NO_CHECK,
                (&raw const on).cast(),
                size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        assert_eq!(set, 0);
        let a = UdpSocket::bind("127.0.0.1:0").unwrap();
        let b = UdpSocket::bind("127.0.0.1:0").unwrap();
        let mut send = SendBatch::new(true);
        queue_mixed(&mut send, a.local_addr().unwrap(), b.local_addr().unwrap());
        send.flush(&server).unwrap();
        assert!(!send.coalesce, "the refusal turns coalescing off");
        assert_eq!(send.segmented(), 0);
        let mut got = datagrams(&a, 5);
        got.sort();
        let mut want: Vec<Vec<u8>> = [(0, 7), (1, 7), (2, 7), (4, 9), (5, 7)]
            .map(|(i, len)| vec![i; len])
            .to_vec();
        want.sort();
        assert_eq!(got, want);
        assert_eq!(datagrams(&b, 1), vec![vec![3u8; 7]]);

        // The next batch goes out one message per answer.
        queue_mixed(&mut send, a.local_addr().unwrap(), b.local_addr().unwrap());
        send.flush(&server).unwrap();
        assert_eq!(send.messages.len(), 6);
        assert_eq!(datagrams(&a, 5).len(), 5);
    }
}

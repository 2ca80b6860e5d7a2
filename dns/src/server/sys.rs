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

/// Responses queued for one `sendmmsg` call.
pub struct SendBatch {
    bufs: Vec<Vec<u8>>,
    peers: Vec<SocketAddr>,
    addrs: Vec<libc::sockaddr_storage>,
    iovecs: Vec<libc::iovec>,
    headers: Vec<libc::mmsghdr>,
    count: usize,
}

impl std::fmt::Debug for SendBatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SendBatch")
            .field("count", &self.count)
            .finish()
    }
}

impl Default for SendBatch {
    fn default() -> Self {
        Self::new()
    }
}

impl SendBatch {
    pub fn new() -> Self {
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
            count: 0,
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

    /// Sends everything queued and empties the batch. Packets the kernel
    /// refuses (full buffers, unreachable peers) are dropped, as UDP allows.
    pub fn flush(&mut self, socket: &UdpSocket) -> io::Result<()> {
        let total = self.count;
        for i in 0..total {
            let len = to_storage(self.peers[i], &mut self.addrs[i]);
            self.iovecs[i] = libc::iovec {
                iov_base: self.bufs[i].as_mut_ptr().cast(),
                iov_len: self.bufs[i].len(),
            };
            let header = &mut self.headers[i];
            header.msg_hdr.msg_name = (&raw mut self.addrs[i]).cast();
            header.msg_hdr.msg_namelen = len;
            header.msg_hdr.msg_iov = &raw mut self.iovecs[i];
            header.msg_hdr.msg_iovlen = 1;
            header.msg_hdr.msg_control = std::ptr::null_mut();
            header.msg_hdr.msg_controllen = 0;
            header.msg_hdr.msg_flags = 0;
            header.msg_len = 0;
        }
        let mut sent = 0;
        let mut result = Ok(());
        while sent < total {
            // SAFETY: headers[sent..total] point at buffers and addresses
            // owned by `self`, valid for the duration of the call.
            let n = unsafe {
                libc::sendmmsg(
                    socket.as_raw_fd(),
                    self.headers[sent..].as_mut_ptr(),
                    (total - sent) as libc::c_uint,
                    0,
                )
            };
            if n < 0 {
                let error = io::Error::last_os_error();
                if error.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                // Skip the packet the kernel refused and carry on.
                sent += 1;
                result = Err(error);
                continue;
            }
            sent += usize::try_from(n).unwrap_or(0).max(1);
        }
        self.count = 0;
        self.peers.clear();
        result
    }
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

        let mut send = SendBatch::new();
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
}

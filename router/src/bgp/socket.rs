//! The socket options BGP sessions need that std and socket2 do not offer:
//! TCP MD5 signatures (RFC 2385) and the TTL floor of GTSM (RFC 5082).
#![allow(unsafe_code)] // reason: setsockopt with structs that no safe wrapper covers

use std::io;
use std::mem::size_of;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::AsRawFd;

use socket2::{SockAddr, Socket};

/// The kernel's `struct tcp_md5sig` (include/uapi/linux/tcp.h).
#[repr(C)]
struct TcpMd5Sig {
    addr: libc::sockaddr_storage,
    flags: u8,
    prefix_len: u8,
    key_len: u16,
    ifindex: libc::c_int,
    key: [u8; 80],
}

/// Signs (and requires signatures on) every segment exchanged with `peer`
/// on this socket; on a listener, for connections from `peer`. An empty
/// key removes it.
pub fn set_md5(socket: &Socket, peer: IpAddr, key: &[u8]) -> io::Result<()> {
    if key.len() > 80 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "TCP MD5 keys are at most 80 bytes",
        ));
    }
    let address = SockAddr::from(SocketAddr::new(peer, 0));
    // SAFETY: all-zero bytes are a valid tcp_md5sig; the address copy is
    // bounded by sockaddr_storage's size, which SockAddr never exceeds.
    let mut sig: TcpMd5Sig = unsafe { std::mem::zeroed() };
    let len = (address.len() as usize).min(size_of::<libc::sockaddr_storage>());
    // SAFETY: both pointers are valid for `len` bytes and do not overlap.
    unsafe {
        std::ptr::copy_nonoverlapping(
            address.as_ptr().cast::<u8>(),
            (&raw mut sig.addr).cast::<u8>(),
            len,
        );
    }
    sig.key_len = key.len() as u16;
    sig.key[..key.len()].copy_from_slice(key);
    // SAFETY: a valid fd, a pointer to a fully initialised struct and its size.
    let result = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_MD5SIG,
            (&raw const sig).cast(),
            size_of::<TcpMd5Sig>() as libc::socklen_t,
        )
    };
    if result < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// GTSM for a directly connected peer: send with TTL (hop limit) 255 and
/// drop anything that arrives with less, so a spoofer further away cannot
/// reach the session.
pub fn set_gtsm(socket: &Socket, family_v6: bool) -> io::Result<()> {
    let (level, option) = if family_v6 {
        socket.set_unicast_hops_v6(255)?;
        (libc::IPPROTO_IPV6, libc::IPV6_MINHOPCOUNT)
    } else {
        socket.set_ttl_v4(255)?;
        (libc::IPPROTO_IP, libc::IP_MINTTL)
    };
    let floor: libc::c_int = 255;
    // SAFETY: a valid fd and a pointer to an int with its size.
    let result = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            level,
            option,
            (&raw const floor).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if result < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests
mod tests {
    use super::*;
    use socket2::{Domain, Protocol, Type};

    #[test]
    fn the_kernel_takes_md5_keys_and_ttl_floors() {
        let socket = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP)).unwrap();
        set_md5(&socket, "127.0.0.2".parse().unwrap(), b"s3cret").unwrap();
        set_gtsm(&socket, false).unwrap();
        assert_eq!(socket.ttl_v4().unwrap(), 255);
        assert!(set_md5(&socket, "127.0.0.2".parse().unwrap(), &[b'x'; 81]).is_err());
        let v6 = Socket::new(Domain::IPV6, Type::STREAM, Some(Protocol::TCP)).unwrap();
        set_md5(&v6, "::1".parse().unwrap(), b"s3cret").unwrap();
        set_gtsm(&v6, true).unwrap();
    }
}

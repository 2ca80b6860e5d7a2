//! Unit tests of the VRRP socket: the IPv4 header parser and the source
//! choice, which are pure and tested on bytes, and what needs no kernel.
//! The socket and the announcements against the kernel, in a lab of two
//! network namespaces, are the integration test `tests/vrrp_socket.rs`.

use std::io;
use std::net::{IpAddr, Ipv4Addr};

use super::*;

// ---------------------------------------------------------------------
// The IPv4 header parser.

/// An IPv4 header with one 4-byte option (IHL 6), TTL 255, protocol 112,
/// from 192.168.1.2 to 224.0.0.18, before a 12-byte payload.
fn packet_with_option() -> Vec<u8> {
    let mut packet = vec![
        0x46, 0xc0, 0, 36, // version 4, IHL 6, DSCP CS6, total length 36
        0x12, 0x34, 0, 0, // identification, flags, fragment offset
        255, 112, 0, 0, // TTL, protocol, header checksum (unchecked)
        192, 168, 1, 2, // source
        224, 0, 0, 18, // destination
        0x94, 0x04, 0, 0, // router alert option
    ];
    packet.extend_from_slice(&[0x31, 1, 100, 1, 0, 100, 0, 0, 192, 168, 1, 53]);
    packet
}

#[test]
fn vrrp_ipv4_header_with_options_yields_addresses_ttl_and_payload() {
    let packet = packet_with_option();
    let header = parse_ipv4(&packet).unwrap();
    assert_eq!(
        header,
        Ipv4Header {
            source: Ipv4Addr::new(192, 168, 1, 2),
            destination: Ipv4Addr::new(224, 0, 0, 18),
            ttl: 255,
            protocol: 112,
            payload: 24..36,
        }
    );
}

#[test]
fn vrrp_ipv4_payload_ends_at_the_total_length_not_the_buffer() {
    let mut padded = packet_with_option();
    padded.extend_from_slice(&[0; 10]);
    assert_eq!(parse_ipv4(&padded).unwrap().payload, 24..36);
}

#[test]
fn vrrp_ipv4_every_truncation_is_refused_without_panicking() {
    let packet = packet_with_option();
    for cut in 0..packet.len() {
        let result = parse_ipv4(&packet[..cut]);
        assert!(result.is_err(), "{cut} bytes accepted: {result:?}");
    }
    assert_eq!(parse_ipv4(&packet[..19]), Err(BadPacket::ShortHeader(19)));
    assert_eq!(
        parse_ipv4(&packet[..22]),
        Err(BadPacket::HeaderPastEnd {
            header: 24,
            received: 22
        })
    );
    assert_eq!(
        parse_ipv4(&packet[..30]),
        Err(BadPacket::TotalPastEnd {
            total: 36,
            received: 30
        })
    );
}

#[test]
fn vrrp_ipv4_hostile_length_fields_are_refused() {
    let packet = packet_with_option();
    let with = |at: usize, byte: u8| {
        let mut p = packet.clone();
        p[at] = byte;
        parse_ipv4(&p)
    };
    assert_eq!(with(0, 0x66), Err(BadPacket::NotIpv4(6)));
    assert_eq!(with(0, 0x44), Err(BadPacket::BadHeaderLength(16)));
    assert_eq!(with(0, 0x40), Err(BadPacket::BadHeaderLength(0)));
    assert_eq!(
        with(0, 0x4f),
        Err(BadPacket::HeaderPastEnd {
            header: 60,
            received: 36
        })
    );
    assert_eq!(
        with(3, 20),
        Err(BadPacket::TotalBelowHeader {
            total: 20,
            header: 24
        })
    );
    let mut huge = packet.clone();
    huge[2..4].copy_from_slice(&u16::MAX.to_be_bytes());
    assert!(matches!(
        parse_ipv4(&huge),
        Err(BadPacket::TotalPastEnd { total: 65535, .. })
    ));
    // A header-only packet is well formed; its empty payload is the
    // codec's to refuse.
    let mut bare = packet[..24].to_vec();
    bare[3] = 24;
    assert_eq!(parse_ipv4(&bare).unwrap().payload, 24..24);
}

#[test]
fn vrrp_ipv4_parser_survives_random_bytes() {
    // xorshift: deterministic, no seed to report on failure.
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for _ in 0..20_000 {
        let len = (next() % 80) as usize;
        let mut bytes: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        if let Some(first) = bytes.first_mut() {
            // Mostly version 4, so the length checks are reached.
            *first = 0x40 | (*first & 0x0f);
        }
        if let Ok(header) = parse_ipv4(&bytes) {
            assert!(header.payload.start >= 20);
            assert!(header.payload.start <= header.payload.end);
            assert!(header.payload.end <= bytes.len());
        }
    }
}

#[test]
fn vrrp_bad_packets_are_invalid_data() {
    let error = io::Error::from(BadPacket::Oversized(64));
    assert_eq!(error.kind(), io::ErrorKind::InvalidData);
    assert_eq!(error.to_string(), "longer than the 64-byte receive buffer");
}

// ---------------------------------------------------------------------
// The source address choice.

fn candidate(address: &str, secondary: bool, unusable: bool) -> Candidate {
    Candidate {
        address: address.parse().unwrap(),
        secondary,
        unusable,
    }
}

#[test]
fn vrrp_ipv4_source_is_the_first_primary_address() {
    let list = [
        candidate("fe80::1", false, false),
        candidate("192.168.1.2", false, false),
        candidate("192.168.1.53", true, false),
        candidate("10.0.0.1", false, false),
    ];
    assert_eq!(
        choose_source(Family::V4, &list),
        Some("192.168.1.2".parse().unwrap())
    );
    assert_eq!(choose_source(Family::V4, &list[2..3]), None);
    assert_eq!(choose_source(Family::V4, &[]), None);
}

#[test]
fn vrrp_ipv6_source_is_the_oldest_usable_link_local_address() {
    // Dump order: global before link-local, newer before older.
    let list = [
        candidate("fd00::1", false, false),
        candidate("fe80::53", false, false),
        candidate("fe80::2", false, false),
        candidate("fe80::dead", false, true),
    ];
    assert_eq!(
        choose_source(Family::V6, &list),
        Some("fe80::2".parse().unwrap()),
        "the tentative one is skipped, the virtual fe80::53 added later is not taken"
    );
    assert_eq!(choose_source(Family::V6, &list[..1]), None);
    assert_eq!(choose_source(Family::V6, &list[3..]), None);
    assert_eq!(
        choose_source(Family::V6, &[candidate("10.0.0.1", false, false)]),
        None
    );
}

#[test]
fn vrrp_socket_outside_a_runtime_is_an_error_not_a_panic() {
    let error = VrrpSocket::with_source("lo", 1, IpAddr::V4(Ipv4Addr::LOCALHOST)).unwrap_err();
    assert!(error.to_string().contains("tokio runtime"), "{error}");
    let error = VrrpSocket::with_source("no/such", 1, IpAddr::V4(Ipv4Addr::LOCALHOST)).unwrap_err();
    assert_eq!(error.kind(), io::ErrorKind::InvalidInput);
}

/// Compiles only if the socket's futures can move between threads, as a
/// driver task spawned on the multi-threaded runtime needs.
fn futures_are_send(socket: &VrrpSocket, buf: &mut [u8]) {
    fn send<T: Send>(_: &T) {}
    send(&socket.recv(buf));
    send(&socket.send(&[], IpAddr::V4(Ipv4Addr::LOCALHOST)));
}

#[test]
fn vrrp_socket_futures_are_send() {
    let _ = futures_are_send;
}

#[test]
fn vrrp_families_know_their_groups() {
    assert_eq!(Family::V4.group(), "224.0.0.18".parse::<IpAddr>().unwrap());
    assert_eq!(Family::V6.group(), "ff02::12".parse::<IpAddr>().unwrap());
    assert_eq!(Family::of(Family::V6.group()), Family::V6);
}

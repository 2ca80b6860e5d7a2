//! VRRP version 3 advertisements (RFC 5798 section 5): encode and decode,
//! with the checksum over the IPv4 or IPv6 pseudo-header.
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |Version| Type  | Virtual Rtr ID|   Priority    |Count IPvX Addr|
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |(rsvd) |     Max Adver Int     |          Checksum             |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                       IPvX Address(es)                        |
//! ```
//!
//! The IP header (TTL or hop limit 255, source, destination) is the
//! driver's: it reads them from the socket and passes the addresses in.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::error::VrrpError;

/// IP protocol number of VRRP.
pub const PROTOCOL: u8 = 112;
/// The multicast group for IPv4 advertisements, 224.0.0.18.
pub const GROUP_V4: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 18);
/// The multicast group for IPv6 advertisements, ff02::12.
pub const GROUP_V6: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x12);
/// The TTL or hop limit every advertisement is sent with and must arrive
/// with (RFC 5798 5.1.1.3, 5.1.2.3): proof it was not routed.
pub const TTL: u8 = 255;

const VERSION: u8 = 3;
const TYPE_ADVERTISEMENT: u8 = 1;
const HEADER_LEN: usize = 8;
/// Max Adver Int is 12 bits of centiseconds.
pub const MAX_INTERVAL_CENTIS: u16 = 0x0fff;

/// One advertisement, as sent or received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Advertisement {
    pub vrid: u8,
    /// 0 means the master is leaving (RFC 5798 6.4.3); 255 the owner.
    pub priority: u8,
    /// Centiseconds, 1 to 4095.
    pub max_advert_interval: u16,
    /// The virtual addresses, all of the family of the packet's IP header.
    pub addresses: Vec<IpAddr>,
}

impl Advertisement {
    /// The encoded length in bytes.
    pub fn encoded_len(&self) -> usize {
        HEADER_LEN
            + self
                .addresses
                .iter()
                .map(|a| if a.is_ipv4() { 4 } else { 16 })
                .sum::<usize>()
    }

    /// Writes the advertisement as sent from `source` to `destination`
    /// (the pseudo-header of the checksum) into `out`, replacing its
    /// contents. Fails when an address is not of the source's family,
    /// when there are more than 255 addresses or none, or when the
    /// interval does not fit 12 bits.
    pub fn encode(
        &self,
        source: IpAddr,
        destination: IpAddr,
        out: &mut Vec<u8>,
    ) -> Result<(), VrrpError> {
        if source.is_ipv4() != destination.is_ipv4() {
            return Err(VrrpError::Encode(
                "source and destination of different families",
            ));
        }
        if self
            .addresses
            .iter()
            .any(|a| a.is_ipv4() != source.is_ipv4())
        {
            return Err(VrrpError::Encode(
                "a virtual address of another family than the packet",
            ));
        }
        let count = u8::try_from(self.addresses.len())
            .map_err(|_| VrrpError::Encode("more than 255 virtual addresses"))?;
        if count == 0 {
            return Err(VrrpError::Encode("no virtual address"));
        }
        if self.max_advert_interval == 0 || self.max_advert_interval > MAX_INTERVAL_CENTIS {
            return Err(VrrpError::Encode(
                "advertisement interval outside 1 to 4095 centiseconds",
            ));
        }
        out.clear();
        out.push(VERSION << 4 | TYPE_ADVERTISEMENT);
        out.push(self.vrid);
        out.push(self.priority);
        out.push(count);
        out.extend_from_slice(&self.max_advert_interval.to_be_bytes());
        out.extend_from_slice(&[0, 0]);
        for address in &self.addresses {
            match address {
                IpAddr::V4(a) => out.extend_from_slice(&a.octets()),
                IpAddr::V6(a) => out.extend_from_slice(&a.octets()),
            }
        }
        let sum = checksum(source, destination, out);
        out[6..8].copy_from_slice(&sum.to_be_bytes());
        Ok(())
    }

    /// Reads an advertisement that came from `source` to `destination`.
    /// Everything RFC 5798 7.1 asks of the VRRP part is checked here:
    /// version, type, length against the address count, checksum; the
    /// TTL and the VRID's instance are the caller's.
    pub fn decode(
        packet: &[u8],
        source: IpAddr,
        destination: IpAddr,
    ) -> Result<Advertisement, VrrpError> {
        let header: &[u8; HEADER_LEN] = packet
            .get(..HEADER_LEN)
            .and_then(|h| h.try_into().ok())
            .ok_or(VrrpError::Malformed("shorter than the 8-byte header"))?;
        let version = header[0] >> 4;
        if version != VERSION {
            return Err(VrrpError::Version(version));
        }
        if header[0] & 0x0f != TYPE_ADVERTISEMENT {
            return Err(VrrpError::Malformed("not an advertisement (type 1)"));
        }
        if source.is_ipv4() != destination.is_ipv4() {
            return Err(VrrpError::Malformed(
                "source and destination of different families",
            ));
        }
        let count = usize::from(header[3]);
        let width = if source.is_ipv4() { 4 } else { 16 };
        let body = &packet[HEADER_LEN..];
        if body.len() < count * width {
            return Err(VrrpError::Malformed("shorter than its address count says"));
        }
        // Trailing bytes past the addresses would be covered by the sender's
        // checksum only if it counted them; refuse rather than guess.
        if body.len() != count * width {
            return Err(VrrpError::Malformed("longer than its address count says"));
        }
        if count == 0 {
            return Err(VrrpError::Malformed("no virtual address"));
        }
        if checksum(source, destination, packet) != 0 {
            return Err(VrrpError::Checksum);
        }
        let max_advert_interval = u16::from_be_bytes([header[4], header[5]]) & MAX_INTERVAL_CENTIS;
        let addresses = body
            .chunks_exact(width)
            .map(|chunk| match <[u8; 4]>::try_from(chunk) {
                Ok(v4) => IpAddr::V4(v4.into()),
                Err(_) => {
                    let mut v6 = [0u8; 16];
                    v6.copy_from_slice(chunk);
                    IpAddr::V6(v6.into())
                }
            })
            .collect();
        Ok(Advertisement {
            vrid: header[1],
            priority: header[2],
            max_advert_interval,
            addresses,
        })
    }
}

/// The Internet checksum of `message` with the pseudo-header of RFC 5798
/// 5.2.8 (the IPv6 one of RFC 2460 8.1, and its IPv4 equivalent). Over a
/// message that carries its checksum the result is 0.
fn checksum(source: IpAddr, destination: IpAddr, message: &[u8]) -> u16 {
    let mut sum: u64 = 0;
    let mut add = |bytes: &[u8]| {
        let mut pairs = bytes.chunks_exact(2);
        for pair in &mut pairs {
            sum += u64::from(u16::from_be_bytes([pair[0], pair[1]]));
        }
        if let [last] = pairs.remainder() {
            sum += u64::from(u16::from_be_bytes([*last, 0]));
        }
    };
    let length = message.len() as u64;
    match (source, destination) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            add(&s.octets());
            add(&d.octets());
            add(&[0, PROTOCOL]);
            add(&(length as u16).to_be_bytes());
        }
        (s, d) => {
            add(&v6_octets(s));
            add(&v6_octets(d));
            add(&(length as u32).to_be_bytes());
            add(&[0, 0, 0, PROTOCOL]);
        }
    }
    add(message);
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

fn v6_octets(address: IpAddr) -> [u8; 16] {
    match address {
        IpAddr::V4(a) => a.to_ipv6_mapped().octets(),
        IpAddr::V6(a) => a.octets(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests
mod tests {
    use super::*;

    fn v4(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    /// RFC 5798 5.1's layout, written out by hand: version 3, type 1,
    /// VRID 51, priority 100, one address, 100 centiseconds, checksum
    /// left zero, 192.168.1.53.
    const KEEPALIVED_V4: [u8; 12] = [
        0x31, 0x33, 0x64, 0x01, 0x00, 0x64, 0x00, 0x00, 192, 168, 1, 53,
    ];

    fn with_checksum(mut packet: Vec<u8>, source: IpAddr, destination: IpAddr) -> Vec<u8> {
        packet[6] = 0;
        packet[7] = 0;
        let sum = checksum(source, destination, &packet);
        packet[6..8].copy_from_slice(&sum.to_be_bytes());
        packet
    }

    #[test]
    fn ipv4_round_trip_matches_the_wire_layout() {
        let (source, group) = (v4("192.168.1.2"), IpAddr::V4(GROUP_V4));
        let adv = Advertisement {
            vrid: 51,
            priority: 100,
            max_advert_interval: 100,
            addresses: vec![v4("192.168.1.53")],
        };
        let mut out = Vec::new();
        adv.encode(source, group, &mut out).unwrap();
        assert_eq!(out.len(), adv.encoded_len());
        assert_eq!(out[..6], KEEPALIVED_V4[..6]);
        assert_eq!(out[8..], KEEPALIVED_V4[8..]);
        assert_eq!(
            out,
            with_checksum(KEEPALIVED_V4.to_vec(), source, group),
            "the checksum covers the pseudo-header"
        );
        assert_eq!(Advertisement::decode(&out, source, group).unwrap(), adv);
    }

    /// An advertisement keepalived 2.2.7 (`vrrp_version 3`) sent in the
    /// lab from 10.53.0.90 to 224.0.0.18, captured with tcpdump by the
    /// keepalived harness (tests/src/keepalived.rs, GOLDEN_ADVERT_V4),
    /// IP header removed: VRID 51, priority 150, 20 cs, 10.53.0.250.
    const KEEPALIVED_CAPTURED: [u8; 12] = [
        0x31, 0x33, 0x96, 0x01, 0x00, 0x14, 0x42, 0x6a, 0x0a, 0x35, 0x00, 0xfa,
    ];

    #[test]
    fn a_real_keepalived_advert_decodes_and_we_encode_the_same_bytes() {
        let (source, group) = (v4("10.53.0.90"), IpAddr::V4(GROUP_V4));
        let adv = Advertisement::decode(&KEEPALIVED_CAPTURED, source, group).unwrap();
        assert_eq!(
            adv,
            Advertisement {
                vrid: 51,
                priority: 150,
                max_advert_interval: 20,
                addresses: vec![v4("10.53.0.250")],
            }
        );
        let mut out = Vec::new();
        adv.encode(source, group, &mut out).unwrap();
        assert_eq!(out, KEEPALIVED_CAPTURED);
    }

    #[test]
    fn ipv6_round_trip_with_several_addresses() {
        let source: IpAddr = "fe80::1".parse().unwrap();
        let group = IpAddr::V6(GROUP_V6);
        let adv = Advertisement {
            vrid: 7,
            priority: 255,
            max_advert_interval: 25,
            addresses: vec!["fe80::53".parse().unwrap(), "fd00::53".parse().unwrap()],
        };
        let mut out = Vec::new();
        adv.encode(source, group, &mut out).unwrap();
        assert_eq!(out.len(), 8 + 32);
        assert_eq!(out[0], 0x31);
        assert_eq!(out[3], 2);
        assert_eq!(Advertisement::decode(&out, source, group).unwrap(), adv);
    }

    #[test]
    fn the_checksum_binds_the_addresses_of_the_ip_header() {
        let (source, group) = (v4("192.168.1.2"), IpAddr::V4(GROUP_V4));
        let packet = with_checksum(KEEPALIVED_V4.to_vec(), source, group);
        assert!(Advertisement::decode(&packet, source, group).is_ok());
        assert_eq!(
            Advertisement::decode(&packet, v4("192.168.1.3"), group),
            Err(VrrpError::Checksum)
        );
        let mut flipped = packet.clone();
        flipped[2] ^= 1;
        assert_eq!(
            Advertisement::decode(&flipped, source, group),
            Err(VrrpError::Checksum)
        );
    }

    #[test]
    fn malformed_advertisements_are_refused_with_a_reason() {
        let (source, group) = (v4("192.168.1.2"), IpAddr::V4(GROUP_V4));
        let good = with_checksum(KEEPALIVED_V4.to_vec(), source, group);
        let decode = |p: &[u8]| Advertisement::decode(p, source, group);
        assert!(matches!(decode(&good[..7]), Err(VrrpError::Malformed(_))));
        assert!(matches!(decode(&good[..11]), Err(VrrpError::Malformed(_))));
        let mut version2 = good.clone();
        version2[0] = 0x21;
        assert_eq!(decode(&version2), Err(VrrpError::Version(2)));
        let mut other_type = good.clone();
        other_type[0] = 0x32;
        assert!(matches!(decode(&other_type), Err(VrrpError::Malformed(_))));
        let mut longer = good.clone();
        longer.extend_from_slice(&[0, 0, 0, 0]);
        assert!(matches!(decode(&longer), Err(VrrpError::Malformed(_))));
        let mut no_address = good[..8].to_vec();
        no_address[3] = 0;
        assert!(matches!(decode(&no_address), Err(VrrpError::Malformed(_))));
    }

    #[test]
    fn encoding_refuses_what_the_wire_cannot_carry() {
        let (source, group) = (v4("192.168.1.2"), IpAddr::V4(GROUP_V4));
        let mut out = Vec::new();
        let mut adv = Advertisement {
            vrid: 1,
            priority: 100,
            max_advert_interval: 4096,
            addresses: vec![v4("192.168.1.53")],
        };
        assert!(adv.encode(source, group, &mut out).is_err());
        adv.max_advert_interval = 100;
        adv.addresses.push("fd00::53".parse().unwrap());
        assert!(adv.encode(source, group, &mut out).is_err());
        adv.addresses.clear();
        assert!(adv.encode(source, group, &mut out).is_err());
    }
}

//! A decoder for the UPDATE a full table arrives in, by the hundred
//! thousand: IPv4 prefixes in the message body, ORIGIN, AS_PATH of 4-octet
//! ASes, NEXT_HOP, and maybe MED, LOCAL_PREF, ATOMIC_AGGREGATE, AGGREGATOR
//! and COMMUNITIES. Decoding it through `bgpkit-parser` copies the message
//! and allocates for every attribute and prefix list; this reads the bytes
//! in place.
//!
//! It gives up (`None`) on anything else, and on anything bgpkit would
//! warn about: then `wire::decode` takes the bgpkit path, which holds all
//! of the RFC 7606 handling. So whatever this accepts, bgpkit accepts
//! without a warning, and both give the same `ReceivedUpdate` (a
//! differential test and the fuzz target check it). Where bgpkit has a
//! quirk, this falls back rather than copying it: a /0 prefix (bgpkit
//! reads a zero octet as the start of an ADD-PATH NLRI), an attribute list
//! with a few stray octets at its end (bgpkit ignores them), duplicate
//! attributes.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use ipnet::{IpNet, Ipv4Net};

use crate::route::{AsPath, Origin, PathAttributes, Segments, Update};
use crate::wire::{HEADER_LEN, ReceivedUpdate, TYPE_UPDATE};

/// Attribute flags (RFC 4271 4.3).
const OPTIONAL: u8 = 0x80;
const TRANSITIVE: u8 = 0x40;
const PARTIAL: u8 = 0x20;
const EXTENDED: u8 = 0x10;

const ORIGIN: u8 = 1;
const AS_PATH: u8 = 2;
const NEXT_HOP: u8 = 3;
const MED: u8 = 4;
const LOCAL_PREF: u8 = 5;
const ATOMIC_AGGREGATE: u8 = 6;
const AGGREGATOR: u8 = 7;
const COMMUNITIES: u8 = 8;

const AS_SET: u8 = 1;
const AS_SEQUENCE: u8 = 2;

/// One framed UPDATE of a session with 4-octet ASes, when it has the
/// common shape; `None` leaves it to the full decoder.
pub fn decode_update(message: &[u8]) -> Option<ReceivedUpdate> {
    let (header, body) = message.split_at_checked(HEADER_LEN)?;
    let length = usize::from(u16::from_be_bytes([header[16], header[17]]));
    if header[..16] != [0xff; 16] || length != message.len() || header[18] != TYPE_UPDATE {
        return None;
    }
    let (withdrawn, rest) = section(body)?;
    let (attributes, nlri) = section(rest)?;
    let withdrawn = prefixes(withdrawn)?;
    let announced = prefixes(nlri)?;
    let update = if announced.is_empty() {
        // A withdrawal with attributes, or End-of-RIB: rare, and
        // bgpkit's warnings decide what they mean.
        if withdrawn.is_empty() || !attributes.is_empty() {
            return None;
        }
        Update {
            withdrawn,
            announced,
            attributes: None,
        }
    } else {
        Update {
            withdrawn,
            announced,
            attributes: Some(Arc::new(path_attributes(attributes)?)),
        }
    };
    Some(ReceivedUpdate {
        updates: vec![update],
        treated_as_withdraw: None,
        end_of_rib: false,
    })
}

/// A field with a 2-octet length in front, and what follows it.
fn section(bytes: &[u8]) -> Option<(&[u8], &[u8])> {
    let (length, rest) = bytes.split_first_chunk::<2>()?;
    rest.split_at_checked(usize::from(u16::from_be_bytes(*length)))
}

/// IPv4 prefixes, each a length octet and the significant octets, host
/// bits kept as sent (as bgpkit keeps them).
fn prefixes(mut bytes: &[u8]) -> Option<Vec<IpNet>> {
    // At least two octets a prefix (no /0 here).
    let mut out = Vec::with_capacity(bytes.len() / 2);
    while let Some((&bits, rest)) = bytes.split_first() {
        if bits == 0 || bits > 32 {
            return None;
        }
        let (significant, rest) = rest.split_at_checked(usize::from(bits).div_ceil(8))?;
        let mut octets = [0u8; 4];
        octets[..significant.len()].copy_from_slice(significant);
        out.push(IpNet::V4(Ipv4Net::new(Ipv4Addr::from(octets), bits).ok()?));
        bytes = rest;
    }
    Some(out)
}

/// The attributes of an announcement, all of ORIGIN, AS_PATH and NEXT_HOP
/// present, each attribute once and with the flags and length RFC 4271
/// gives it.
fn path_attributes(mut bytes: &[u8]) -> Option<PathAttributes> {
    let mut seen = 0u16;
    let (mut origin, mut as_path, mut next_hop) = (None, None, None);
    let (mut med, mut local_pref) = (None, None);
    while !bytes.is_empty() {
        let (&[flags, kind], rest) = bytes.split_first_chunk::<2>()?;
        let (length, rest) = if flags & EXTENDED != 0 {
            let (length, rest) = rest.split_first_chunk::<2>()?;
            (usize::from(u16::from_be_bytes(*length)), rest)
        } else {
            let (&length, rest) = rest.split_first()?;
            (usize::from(length), rest)
        };
        let (value, rest) = rest.split_at_checked(length)?;
        bytes = rest;
        if !(ORIGIN..=COMMUNITIES).contains(&kind) || seen & (1 << kind) != 0 {
            return None;
        }
        seen |= 1 << kind;
        let category = flags & (OPTIONAL | TRANSITIVE);
        let partial = flags & PARTIAL != 0;
        // Well-known attributes: transitive, never partial, fixed lengths.
        let well_known = |size: Option<usize>| {
            category == TRANSITIVE && !partial && size.is_none_or(|size| size == length)
        };
        match kind {
            ORIGIN if well_known(Some(1)) => {
                origin = Some(match value.first()? {
                    0 => Origin::Igp,
                    1 => Origin::Egp,
                    2 => Origin::Incomplete,
                    _ => return None,
                });
            }
            AS_PATH if well_known(None) => as_path = Some(path(value)?),
            NEXT_HOP if well_known(Some(4)) => {
                next_hop = Some(IpAddr::V4(Ipv4Addr::from(*value.first_chunk::<4>()?)));
            }
            MED if category == OPTIONAL && !partial && length == 4 => {
                med = Some(u32::from_be_bytes(*value.first_chunk::<4>()?));
            }
            LOCAL_PREF if well_known(Some(4)) => {
                local_pref = Some(u32::from_be_bytes(*value.first_chunk::<4>()?));
            }
            ATOMIC_AGGREGATE if well_known(Some(0)) => {}
            // Optional transitive and not used here: with the right flags
            // (partial allowed) a broken AGGREGATOR is discarded (RFC 7606
            // 7.7) and cannot change the outcome.
            AGGREGATOR if category == OPTIONAL | TRANSITIVE => {}
            // A COMMUNITIES of a length that is not a non-zero multiple of
            // 4 makes the UPDATE treat-as-withdraw (RFC 7606 7.8): the
            // full decoder decides that.
            COMMUNITIES if category == OPTIONAL | TRANSITIVE && length > 0 && length % 4 == 0 => {}
            _ => return None,
        }
    }
    Some(PathAttributes {
        origin: origin?,
        as_path: as_path?,
        next_hop: next_hop?,
        med,
        local_pref,
        communities: Vec::new(),
    })
}

/// AS_PATH of 4-octet ASes: AS_SEQUENCE and AS_SET segments, none empty.
fn path(mut bytes: &[u8]) -> Option<AsPath> {
    let mut words = Vec::with_capacity(bytes.len() / 4 + 1);
    while let Some((&[kind, count], rest)) = bytes.split_first_chunk::<2>() {
        let set = match kind {
            AS_SEQUENCE => false,
            AS_SET => true,
            _ => return None,
        };
        if count == 0 {
            return None;
        }
        let (asns, rest) = rest.split_at_checked(usize::from(count) * 4)?;
        words.push(Segments::header(set, usize::from(count)));
        words.extend(
            asns.chunks_exact(4)
                .map(|asn| u32::from_be_bytes([asn[0], asn[1], asn[2], asn[3]])),
        );
        bytes = rest;
    }
    // A lone octet left over: a truncated segment header.
    if !bytes.is_empty() {
        return None;
    }
    Some(AsPath {
        segments: Segments::from_words(&words),
    })
}

#[cfg(test)]
#[path = "wire_fast_tests.rs"]
mod tests;

//! Answers for blocked names, written by the worker itself: a blocked
//! query never reaches the dispatcher, the cache or an upstream.
//!
//! Every mode but REFUSED carries an SOA in the authority section when it
//! has no answer records, so that clients cache the negative answer for the
//! group's block TTL (RFC 2308), and an EDNS client gets the Extended DNS
//! Error "Blocked" (RFC 8914, info-code 15) so tools can tell a block from
//! a real NXDOMAIN.

use std::net::{Ipv4Addr, Ipv6Addr};

use super::wire::{HEADER_LEN, QueryView, RCODE_NOERROR, RCODE_NXDOMAIN, RCODE_REFUSED};
use crate::settings::BlockMode;

const TYPE_A: u16 = 1;
const TYPE_AAAA: u16 = 28;
const TYPE_SOA: u16 = 6;
/// RFC 8914 option code and the "Blocked" info-code.
const OPTION_EDE: u16 = 15;
const EDE_BLOCKED: u16 = 15;
/// Address records in one blocked answer, whatever the configuration says.
pub const MAX_BLOCK_ADDRESSES: usize = 8;

/// Writes the blocked answer to `q` into `out` (cleared first).
pub fn blocked_response(
    q: &QueryView,
    query_packet: &[u8],
    mode: &BlockMode,
    ttl: u32,
    our_payload: u16,
    out: &mut Vec<u8>,
) {
    out.clear();
    let (rcode, v4, v6): (u8, &[Ipv4Addr], &[Ipv6Addr]) = match mode {
        BlockMode::NxDomain => (RCODE_NXDOMAIN, &[], &[]),
        BlockMode::Refused => (RCODE_REFUSED, &[], &[]),
        BlockMode::NullAddress => (
            RCODE_NOERROR,
            &[Ipv4Addr::UNSPECIFIED],
            &[Ipv6Addr::UNSPECIFIED],
        ),
        BlockMode::Address { v4, v6 } => (RCODE_NOERROR, v4, v6),
    };
    let answers: usize = match q.qtype {
        TYPE_A if rcode == RCODE_NOERROR => v4.len().min(MAX_BLOCK_ADDRESSES),
        TYPE_AAAA if rcode == RCODE_NOERROR => v6.len().min(MAX_BLOCK_ADDRESSES),
        _ => 0,
    };
    let soa = answers == 0 && rcode != RCODE_REFUSED;
    let with_opt = q.edns.is_some();
    out.extend_from_slice(&q.id.to_be_bytes());
    out.push(0x80 | ((q.opcode & 0x0F) << 3) | u8::from(q.rd));
    out.push(0x80 | if q.cd { 0x10 } else { 0 } | rcode);
    for count in [1, answers, usize::from(soa), usize::from(with_opt)] {
        out.extend_from_slice(&(count as u16).to_be_bytes());
    }
    match query_packet.get(q.question_range()) {
        Some(question) => out.extend_from_slice(question),
        None => {
            out.truncate(HEADER_LEN);
            out[4..12].fill(0);
            return;
        }
    }
    let ttl = ttl.to_be_bytes();
    let record = |out: &mut Vec<u8>, rtype: u16, rdata: &[u8]| {
        // The owner is the question's name, by pointer.
        out.extend_from_slice(&[0xC0, 0x0C]);
        out.extend_from_slice(&rtype.to_be_bytes());
        out.extend_from_slice(&[0, 1]);
        out.extend_from_slice(&ttl);
        out.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
        out.extend_from_slice(rdata);
    };
    match q.qtype {
        TYPE_A => v4
            .iter()
            .take(answers)
            .for_each(|a| record(out, TYPE_A, &a.octets())),
        TYPE_AAAA => v6
            .iter()
            .take(answers)
            .for_each(|a| record(out, TYPE_AAAA, &a.octets())),
        _ => {}
    }
    if soa {
        // A zone of its own at the blocked name: MNAME and RNAME the root,
        // MINIMUM the block TTL, which is what negative caching uses.
        let mut rdata = [0u8; 22];
        let fields = [1u32, 1800, 900, 604_800, u32::from_be_bytes(ttl)];
        for (i, value) in fields.iter().enumerate() {
            rdata[2 + i * 4..6 + i * 4].copy_from_slice(&value.to_be_bytes());
        }
        record(out, TYPE_SOA, &rdata);
    }
    if let Some(edns) = q.edns {
        let payload = our_payload.to_be_bytes();
        out.extend_from_slice(&[0, 0, 41, payload[0], payload[1], 0, 0]);
        out.push(if edns.do_bit { 0x80 } else { 0 });
        // Flags low byte, then RDLENGTH: one 6-byte option.
        out.extend_from_slice(&[0, 0, 6]);
        out.extend_from_slice(&OPTION_EDE.to_be_bytes());
        out.extend_from_slice(&2u16.to_be_bytes());
        out.extend_from_slice(&EDE_BLOCKED.to_be_bytes());
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests
mod tests {
    use hickory_proto::op::{Message, ResponseCode};
    use hickory_proto::rr::{RData, RecordType};

    use super::*;
    use crate::fastpath::wire::parse_query;

    fn query(qtype: u16, edns: bool) -> Vec<u8> {
        let mut p = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, u8::from(edns)];
        p.extend_from_slice(b"\x03Ads\x07example\x03com\x00");
        p.extend_from_slice(&qtype.to_be_bytes());
        p.extend_from_slice(&[0, 1]);
        if edns {
            p.extend_from_slice(&[0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 0]);
        }
        p
    }

    fn answer(mode: &BlockMode, qtype: u16, edns: bool) -> Message {
        let packet = query(qtype, edns);
        let q = parse_query(&packet).unwrap();
        let mut out = Vec::new();
        blocked_response(&q, &packet, mode, 42, 1232, &mut out);
        Message::from_vec(&out).unwrap()
    }

    #[test]
    fn null_address_answers_a_and_aaaa_and_nodata_otherwise() {
        let m = answer(&BlockMode::NullAddress, TYPE_A, false);
        assert_eq!(m.metadata.response_code, ResponseCode::NoError);
        assert_eq!(m.metadata.id, 0x1234);
        assert!(m.metadata.recursion_desired && m.metadata.recursion_available);
        assert_eq!(m.queries[0].name().to_string(), "Ads.example.com.");
        assert_eq!(m.answers.len(), 1);
        assert_eq!(m.answers[0].data, RData::A(Ipv4Addr::UNSPECIFIED.into()));
        assert_eq!(m.answers[0].ttl, 42);
        let m = answer(&BlockMode::NullAddress, TYPE_AAAA, false);
        assert_eq!(m.answers[0].data, RData::AAAA(Ipv6Addr::UNSPECIFIED.into()));
        let m = answer(&BlockMode::NullAddress, 16, false);
        assert!(m.answers.is_empty());
        assert_eq!(m.authorities[0].record_type(), RecordType::SOA);
    }

    #[test]
    fn nxdomain_carries_an_soa_with_the_block_ttl() {
        let m = answer(&BlockMode::NxDomain, TYPE_A, false);
        assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
        assert!(m.answers.is_empty());
        let soa = &m.authorities[0];
        assert_eq!(soa.ttl, 42);
        match &soa.data {
            RData::SOA(soa) => assert_eq!(soa.minimum, 42),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn refused_and_custom_addresses() {
        let m = answer(&BlockMode::Refused, TYPE_A, false);
        assert_eq!(m.metadata.response_code, ResponseCode::Refused);
        assert!(m.answers.is_empty() && m.authorities.is_empty());
        let mode = BlockMode::Address {
            v4: vec![Ipv4Addr::new(10, 0, 10, 1), Ipv4Addr::new(10, 0, 10, 2)],
            v6: Vec::new(),
        };
        let m = answer(&mode, TYPE_A, false);
        assert_eq!(m.answers.len(), 2);
        assert_eq!(
            m.answers[1].data,
            RData::A(Ipv4Addr::new(10, 0, 10, 2).into())
        );
        let m = answer(&mode, TYPE_AAAA, false);
        assert!(m.answers.is_empty());
        assert_eq!(m.authorities.len(), 1);
    }

    #[test]
    fn edns_clients_get_the_blocked_extended_error() {
        let m = answer(&BlockMode::NxDomain, TYPE_A, true);
        let edns = m.edns.unwrap();
        assert_eq!(edns.max_payload(), 1232);
        let packet = query(TYPE_A, true);
        let q = parse_query(&packet).unwrap();
        let mut out = Vec::new();
        blocked_response(&q, &packet, &BlockMode::NxDomain, 42, 1232, &mut out);
        let opt = [0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 6, 0, 15, 0, 2, 0, 15];
        assert!(out.ends_with(&opt), "{out:?}");
        // Nothing after the OPT record: the counts and lengths add up.
        let soa_end = out.len() - opt.len();
        let without_opt = Message::from_vec(&out[..soa_end]);
        assert!(without_opt.is_err() || m.authorities.len() == 1);
    }
}

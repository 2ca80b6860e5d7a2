//! Allocation-free builders for the responses the fast path makes up itself:
//! error replies (REFUSED for clients outside the allow list, FORMERR,
//! NOTIMP, SERVFAIL, BADVERS) and the RFC 8482 answer to qtype ANY.
//!
//! All of them write into the worker's reusable output buffer (cleared
//! first), so once it has grown to a few hundred bytes nothing allocates.

use super::answer::push_opt;
use super::wire::{HEADER_LEN, QueryView, RCODE_FORMERR, TYPE_HINFO};

/// TTL of the synthesised ANY answer (RFC 8482 section 4.2 suggests 3600).
pub const ANY_TTL: u32 = 3600;

/// Writes a 12-byte header. `flags2`/`flags3` are bytes 2 and 3.
fn header(out: &mut Vec<u8>, id: u16, flags2: u8, flags3: u8, counts: [u16; 4]) {
    out.extend_from_slice(&id.to_be_bytes());
    out.push(flags2);
    out.push(flags3);
    for c in counts {
        out.extend_from_slice(&c.to_be_bytes());
    }
}

/// Response flag bytes for `q`: QR=1, opcode and RD echoed, RA=1 (we are a
/// recursive resolver), CD echoed, the given 4-bit RCODE.
fn response_flags(q: &QueryView, rcode: u8) -> (u8, u8) {
    let f2 = 0x80 | ((q.opcode & 0x0F) << 3) | u8::from(q.rd);
    let f3 = 0x80 | if q.cd { 0x10 } else { 0 } | (rcode & 0x0F);
    (f2, f3)
}

/// Copies the client's question bytes (original case) into `out`.
fn push_question(out: &mut Vec<u8>, q: &QueryView, query_packet: &[u8]) -> bool {
    match query_packet.get(q.question_range()) {
        Some(question) => {
            out.extend_from_slice(question);
            true
        }
        None => false,
    }
}

/// An error response to a parsed query: the question echoed, and an OPT
/// record if the query had EDNS. `rcode` may be an extended RCODE (above
/// 15, e.g. [`super::wire::RCODE_BADVERS`]); its upper 8 bits go in the OPT
/// record, which is then always included (RFC 6891 6.1.3).
pub fn error_response(
    q: &QueryView,
    query_packet: &[u8],
    rcode: u16,
    our_payload: u16,
    out: &mut Vec<u8>,
) {
    out.clear();
    let ext = (rcode >> 4) as u8;
    let (f2, f3) = response_flags(q, (rcode & 0x0F) as u8);
    let with_opt = q.edns.is_some() || ext != 0;
    header(out, q.id, f2, f3, [1, 0, 0, u16::from(with_opt)]);
    if !push_question(out, q, query_packet) {
        // Cannot happen for a view parsed from `query_packet`; keep the
        // message consistent anyway.
        out[5] = 0;
    }
    if with_opt {
        push_opt(out, our_payload, ext, q.do_bit());
    }
}

/// A header-only response (QDCOUNT=0) for a query whose header parsed but
/// whose body did not: ID, opcode and RD copied from the packet.
///
/// Returns false, writing nothing, for packets that must be dropped: shorter
/// than a header, or responses (QR=1).
pub fn header_only(query_packet: &[u8], rcode: u8, out: &mut Vec<u8>) -> bool {
    out.clear();
    let Some(h) = query_packet.get(..HEADER_LEN) else {
        return false;
    };
    if h[2] & 0x80 != 0 {
        return false;
    }
    let f2 = 0x80 | (h[2] & 0x79); // opcode + RD
    let f3 = 0x80 | (h[3] & 0x10) | (rcode & 0x0F);
    header(out, u16::from_be_bytes([h[0], h[1]]), f2, f3, [0; 4]);
    true
}

/// [`header_only`] with FORMERR.
pub fn formerr(query_packet: &[u8], out: &mut Vec<u8>) -> bool {
    header_only(query_packet, RCODE_FORMERR, out)
}

/// The RFC 8482 answer to qtype ANY: one HINFO record (CPU "RFC8482", OS
/// "") with TTL 3600 owned by the query name (a pointer to offset 12).
/// Refusing ANY this way keeps it from being used for amplification while
/// still giving the client a positive answer.
pub fn any_response(q: &QueryView, query_packet: &[u8], our_payload: u16, out: &mut Vec<u8>) {
    out.clear();
    let (f2, f3) = response_flags(q, 0);
    let with_opt = q.edns.is_some();
    header(out, q.id, f2, f3, [1, 1, 0, u16::from(with_opt)]);
    if !push_question(out, q, query_packet) {
        // Inconsistent view/packet pair: header only, no counts.
        out[4..12].fill(0);
        return;
    }
    let class = q.qclass.to_be_bytes();
    let ttl = ANY_TTL.to_be_bytes();
    out.extend_from_slice(&[0xC0, 0x0C, 0, TYPE_HINFO as u8, class[0], class[1]]);
    out.extend_from_slice(&ttl);
    out.extend_from_slice(&[0, 9, 7]);
    out.extend_from_slice(b"RFC8482");
    out.push(0);
    if let Some(e) = q.edns {
        push_opt(out, our_payload, 0, e.do_bit);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)] // tests
mod tests {
    use super::*;
    use crate::fastpath::wire::{
        RCODE_BADVERS, RCODE_NOTIMP, RCODE_REFUSED, RCODE_SERVFAIL, parse_query,
    };
    use hickory_proto::op::{Message, MessageType, ResponseCode};
    use hickory_proto::rr::{RData, RecordType};

    fn sample(edns_version: Option<u8>) -> Vec<u8> {
        let mut p = vec![0xab, 0xcd, 0x01, 0x10, 0, 1, 0, 0, 0, 0, 0, 0];
        p.extend_from_slice(b"\x03Www\x07Example\x03COM\x00");
        p.extend_from_slice(&[0, 255, 0, 1]);
        if let Some(v) = edns_version {
            p[11] = 1;
            p.extend_from_slice(&[0, 0, 41, 0x10, 0x00, 0, v, 0x80, 0, 0, 0]);
        }
        p
    }

    #[test]
    fn errors() {
        let mut out = Vec::new();
        for edns in [None, Some(0)] {
            let qp = sample(edns);
            let q = parse_query(&qp).unwrap();
            for (rc, want) in [
                (RCODE_SERVFAIL, ResponseCode::ServFail),
                (RCODE_REFUSED, ResponseCode::Refused),
                (RCODE_NOTIMP, ResponseCode::NotImp),
                (RCODE_FORMERR, ResponseCode::FormErr),
            ] {
                error_response(&q, &qp, u16::from(rc), 1232, &mut out);
                let m = Message::from_vec(&out).unwrap();
                assert_eq!(m.metadata.id, 0xabcd);
                assert_eq!(m.metadata.message_type, MessageType::Response);
                assert_eq!(m.metadata.response_code, want);
                assert!(m.metadata.recursion_desired && m.metadata.checking_disabled);
                assert_eq!(m.queries[0].name().to_string(), "Www.Example.COM.");
                assert_eq!(m.edns.is_some(), edns.is_some());
            }
        }
        let qp = sample(Some(1));
        let q = parse_query(&qp).unwrap();
        assert!(q.needs_badvers());
        error_response(&q, &qp, RCODE_BADVERS, 1232, &mut out);
        let m = Message::from_vec(&out).unwrap();
        // BADVERS and BADSIG share the value 16; hickory decodes it as BADSIG.
        assert_eq!(u16::from(m.metadata.response_code), RCODE_BADVERS);
        assert_eq!(out[3] & 0x0F, 0);
        let e = m.edns.unwrap();
        assert_eq!(e.version(), 0);
        assert_eq!(e.max_payload(), 1232);
    }

    #[test]
    fn header_only_replies() {
        let mut out = Vec::new();
        let mut qp = sample(None);
        qp[5] = 7;
        assert!(formerr(&qp, &mut out));
        assert_eq!(out.len(), 12);
        let m = Message::from_vec(&out).unwrap();
        assert_eq!(m.metadata.response_code, ResponseCode::FormErr);
        assert_eq!(m.metadata.id, 0xabcd);
        assert!(m.queries.is_empty());
        assert!(!formerr(&qp[..11], &mut out));
        qp[2] |= 0x80;
        assert!(!formerr(&qp, &mut out));
        assert!(out.is_empty());
    }

    #[test]
    fn any() {
        let mut out = Vec::new();
        for edns in [None, Some(0)] {
            let qp = sample(edns);
            let q = parse_query(&qp).unwrap();
            assert_eq!(q.qtype, 255);
            any_response(&q, &qp, 1232, &mut out);
            let m = Message::from_vec(&out).unwrap();
            assert_eq!(m.metadata.response_code, ResponseCode::NoError);
            assert_eq!(m.answers.len(), 1);
            let r = &m.answers[0];
            assert_eq!(r.record_type(), RecordType::HINFO);
            assert_eq!(r.ttl, ANY_TTL);
            assert_eq!(r.name.to_string(), "Www.Example.COM.");
            match &r.data {
                RData::HINFO(h) => {
                    assert_eq!(&*h.cpu, b"RFC8482");
                    assert!(h.os.is_empty());
                }
                other => panic!("{other:?}"),
            }
            assert_eq!(m.edns.is_some(), edns.is_some());
        }
    }
}

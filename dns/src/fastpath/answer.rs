//! Cached answers kept in wire form, served by memcpy plus a few patches.
//!
//! The slow path (resolver) produces a full response message; we store its
//! bytes once, minus the OPT record, together with the offset of every TTL
//! field. Serving a hit is then: copy the bytes into the worker's reusable
//! output buffer, patch the ID and a few flag bits, copy the client's question
//! bytes over ours (so 0x20 case randomisation round-trips), rewrite the TTLs
//! and append our OPT. No parsing and no allocation per hit.
//!
//! Because names are never moved, compression pointers in the stored
//! message stay valid: the question is replaced by bytes of the same length
//! (same name modulo case), and the OPT we strip is required to be the last
//! record, so nothing points past it.

use std::time::{Duration, Instant};

use super::wire::{
    HEADER_LEN, MAX_NAME_LEN, QueryView, RCODE_NOERROR, RCODE_NXDOMAIN, TYPE_OPT, TYPE_SOA,
    WireError, be16, be32, read_name_lower, skip_name,
};

/// A CNAME record.
const TYPE_CNAME: u16 = 5;

/// TTL written into every record of a stale answer (RFC 8767 section 4).
pub const STALE_TTL: u32 = 30;

/// Length of the OPT record we append: root name, type, class, TTL, rdlen.
const OPT_LEN: usize = 11;

/// Outcome of [`CachedAnswer::write_response`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Served {
    /// The whole answer was written.
    Full,
    /// The answer did not fit the client's limit: a TC=1 response (header,
    /// question, OPT) was written instead.
    Truncated,
}

impl Served {
    /// True for [`Served::Truncated`].
    pub fn is_truncated(self) -> bool {
        matches!(self, Served::Truncated)
    }
}

/// A response message in wire form, ready to be replayed.
#[derive(Debug, Clone)]
pub struct CachedAnswer {
    /// The response without OPT, ID zeroed, TTLs already clamped.
    wire: Box<[u8]>,
    /// Offset of each record's TTL field in `wire`.
    ttl_offsets: Box<[u16]>,
    question_end: u16,
    rcode: u8,
    ad: bool,
    inserted: Instant,
    ttl: u32,
    /// Targets of the answer's CNAME records, lowercased wire names back to
    /// back: filtering checks them on every hit (CNAME inspection).
    cname_chain: Box<[u8]>,
}

/// How TTLs are rewritten when serving.
#[derive(Clone, Copy)]
enum TtlMode {
    /// Subtract this many seconds (saturating).
    Elapsed(u32),
    /// Write this value into every record.
    Fixed(u32),
}

/// RFC 2181 8: a TTL with the top bit set is treated as zero.
fn sane_ttl(ttl: u32) -> u32 {
    if ttl > i32::MAX as u32 { 0 } else { ttl }
}

impl CachedAnswer {
    /// Builds a cache entry from a full response message (for instance the
    /// output of hickory's `Message::to_vec`).
    ///
    /// Only NOERROR and NXDOMAIN responses with at least one record are
    /// cacheable; negative answers (NXDOMAIN, or NOERROR with an empty answer
    /// section) need an SOA in the authority section and live for
    /// min(SOA TTL, SOA MINIMUM) (RFC 2308 section 5). Positive answers live
    /// for the smallest TTL of any record. The lifetime and every stored
    /// record TTL are clamped to `ttl_clamp = (min, max)`; in negative
    /// answers no record TTL exceeds the negative lifetime.
    pub fn from_response(
        wire: &[u8],
        now: Instant,
        ttl_clamp: (u32, u32),
    ) -> Result<CachedAnswer, WireError> {
        let header = wire.get(..HEADER_LEN).ok_or(WireError::TooShort)?;
        if wire.len() > usize::from(u16::MAX) {
            return Err(WireError::NotCacheable("message longer than 65535 bytes"));
        }
        let flags = u16::from_be_bytes([header[2], header[3]]);
        if flags & 0x8000 == 0 {
            return Err(WireError::NotCacheable("not a response"));
        }
        if flags & 0x7800 != 0 {
            return Err(WireError::NotCacheable("opcode is not QUERY"));
        }
        if flags & 0x0200 != 0 {
            return Err(WireError::NotCacheable("truncated (TC=1)"));
        }
        let rcode = (flags & 0x000F) as u8;
        if rcode != RCODE_NOERROR && rcode != RCODE_NXDOMAIN {
            return Err(WireError::NotCacheable("rcode is not NOERROR or NXDOMAIN"));
        }
        if be16(wire, 4)? != 1 {
            return Err(WireError::QuestionCount);
        }
        let an = usize::from(be16(wire, 6)?);
        let ns = usize::from(be16(wire, 8)?);
        let ar = usize::from(be16(wire, 10)?);

        // The question must be stored uncompressed so that the client's
        // question (same length) can be copied over it.
        let mut pos = HEADER_LEN;
        let mut name_len = 0usize;
        loop {
            let &l = wire.get(pos).ok_or(WireError::Truncated)?;
            match l & 0xC0 {
                0x00 => {}
                0xC0 => return Err(WireError::CompressedQuestion),
                _ => return Err(WireError::BadLabel),
            }
            name_len += 1 + usize::from(l);
            if name_len > MAX_NAME_LEN {
                return Err(WireError::NameTooLong);
            }
            pos += 1 + usize::from(l);
            if l == 0 {
                break;
            }
        }
        pos += 4;
        if pos > wire.len() {
            return Err(WireError::Truncated);
        }
        let question_end = pos;

        let negative = rcode == RCODE_NXDOMAIN || an == 0;
        let (lo, hi) = (ttl_clamp.0.min(ttl_clamp.1), ttl_clamp.1);
        let mut ttl_offsets = Vec::with_capacity(an + ns + ar);
        let mut min_ttl = u32::MAX;
        let mut soa_negative: Option<u32> = None;
        let mut opt: Option<(usize, usize)> = None;
        let mut cname_chain = Vec::new();

        for i in 0..an + ns + ar {
            let start = pos;
            pos = skip_name(wire, pos)?;
            let rtype = be16(wire, pos)?;
            let ttl_off = pos + 4;
            let ttl = be32(wire, ttl_off)?;
            let rdlen = usize::from(be16(wire, pos + 8)?);
            let rdata_start = pos + 10;
            let end = rdata_start + rdlen;
            if end > wire.len() {
                return Err(WireError::Truncated);
            }
            if rtype == TYPE_OPT {
                if i < an + ns {
                    return Err(WireError::BadOpt);
                }
                if opt.is_some() {
                    return Err(WireError::DuplicateOpt);
                }
                if wire.get(start) != Some(&0) {
                    return Err(WireError::BadOpt);
                }
                if ttl >> 24 != 0 {
                    return Err(WireError::NotCacheable("extended rcode"));
                }
                opt = Some((start, end));
            } else {
                if rtype == TYPE_CNAME && i < an {
                    read_name_lower(wire, rdata_start, &mut cname_chain)?;
                }
                let ttl = sane_ttl(ttl);
                if rtype == TYPE_SOA && (an..an + ns).contains(&i) && negative {
                    let p = skip_name(wire, rdata_start)?;
                    let p = skip_name(wire, p)?;
                    // serial, refresh, retry, expire, minimum
                    if p + 20 != end {
                        return Err(WireError::Truncated);
                    }
                    let minimum = sane_ttl(be32(wire, p + 16)?);
                    let neg = ttl.min(minimum);
                    soa_negative = Some(soa_negative.map_or(neg, |s: u32| s.min(neg)));
                }
                min_ttl = min_ttl.min(ttl);
                let off = u16::try_from(ttl_off)
                    .map_err(|_| WireError::NotCacheable("message longer than 65535 bytes"))?;
                ttl_offsets.push(off);
            }
            pos = end;
        }
        if pos != wire.len() {
            return Err(WireError::TrailingBytes);
        }
        if ttl_offsets.is_empty() {
            return Err(WireError::NotCacheable("no records"));
        }
        let lifetime = if negative {
            let Some(soa) = soa_negative else {
                return Err(WireError::NotCacheable("negative answer without SOA"));
            };
            soa.min(min_ttl)
        } else {
            min_ttl
        };
        let lifetime = lifetime.clamp(lo, hi);
        if lifetime == 0 {
            return Err(WireError::NotCacheable("zero TTL"));
        }

        let mut stored = wire.to_vec();
        if let Some((start, end)) = opt {
            // Stripping from the middle would shift names that later
            // compression pointers may target; resolvers put OPT last.
            if end != stored.len() {
                return Err(WireError::NotCacheable("OPT is not the last record"));
            }
            stored.truncate(start);
            let arcount = (ar - 1) as u16;
            stored[10..12].copy_from_slice(&arcount.to_be_bytes());
        }
        stored[0] = 0;
        stored[1] = 0;
        let cap = if negative { lifetime } else { u32::MAX };
        for &off in &ttl_offsets {
            let off = usize::from(off);
            let ttl = sane_ttl(be32(&stored, off)?).clamp(lo, hi).min(cap);
            if let Some(dst) = stored.get_mut(off..off + 4) {
                dst.copy_from_slice(&ttl.to_be_bytes());
            }
        }

        Ok(CachedAnswer {
            wire: stored.into_boxed_slice(),
            ttl_offsets: ttl_offsets.into_boxed_slice(),
            question_end: question_end as u16,
            rcode,
            ad: flags & 0x0020 != 0,
            inserted: now,
            ttl: lifetime,
            cname_chain: cname_chain.into_boxed_slice(),
        })
    }

    /// The targets of the answer's CNAMEs (lowercased wire names, back to
    /// back; empty for most answers).
    pub fn cname_chain(&self) -> &[u8] {
        &self.cname_chain
    }

    /// The stored message (no OPT, ID 0, TTLs as at insertion).
    pub fn wire(&self) -> &[u8] {
        &self.wire
    }

    /// Header RCODE (NOERROR or NXDOMAIN).
    pub fn rcode(&self) -> u8 {
        self.rcode
    }

    /// Whether the upstream answer had AD set (validated secure).
    pub fn ad(&self) -> bool {
        self.ad
    }

    /// When the entry was built.
    pub fn inserted(&self) -> Instant {
        self.inserted
    }

    /// Lifetime in seconds from `inserted`.
    pub fn ttl(&self) -> u32 {
        self.ttl
    }

    /// Negative answer (NXDOMAIN or NODATA).
    pub fn is_negative(&self) -> bool {
        self.rcode == RCODE_NXDOMAIN || self.wire.get(6..8) == Some(&[0, 0])
    }

    /// Time since insertion.
    pub fn age(&self, now: Instant) -> Duration {
        now.saturating_duration_since(self.inserted)
    }

    fn elapsed_secs(&self, now: Instant) -> u32 {
        u32::try_from(self.age(now).as_secs()).unwrap_or(u32::MAX)
    }

    /// Seconds left before expiry, `None` once expired.
    pub fn remaining_ttl(&self, now: Instant) -> Option<u32> {
        self.ttl
            .checked_sub(self.elapsed_secs(now))
            .filter(|&r| r > 0)
    }

    /// True once the lifetime has run out.
    pub fn is_expired(&self, now: Instant) -> bool {
        self.remaining_ttl(now).is_none()
    }

    /// Seconds since expiry (0 while fresh); used for the serve-stale window.
    pub fn expired_for(&self, now: Instant) -> u32 {
        self.elapsed_secs(now).saturating_sub(self.ttl)
    }

    /// Writes the answer to `q` into `out` (cleared first).
    ///
    /// `query_packet` is the packet `q` was parsed from. `max_udp` is 0 for
    /// TCP (limit 65535), else the UDP size cap (e.g. `max_udp_payload`);
    /// `our_payload` is the size we advertise in our OPT. The UDP limit is
    /// 512 without EDNS, else `min(client payload, our_payload, max_udp)`,
    /// and never below 512. Oversized answers become TC=1 responses.
    ///
    /// Allocation-free once `out` has enough capacity.
    pub fn write_response(
        &self,
        q: &QueryView,
        query_packet: &[u8],
        now: Instant,
        max_udp: u16,
        our_payload: u16,
        out: &mut Vec<u8>,
    ) -> Served {
        let mode = TtlMode::Elapsed(self.elapsed_secs(now));
        self.write(q, query_packet, mode, max_udp, our_payload, out)
    }

    /// Like [`write_response`](Self::write_response) but every TTL is
    /// [`STALE_TTL`] (RFC 8767 serve-stale).
    pub fn write_stale_response(
        &self,
        q: &QueryView,
        query_packet: &[u8],
        max_udp: u16,
        our_payload: u16,
        out: &mut Vec<u8>,
    ) -> Served {
        let mode = TtlMode::Fixed(STALE_TTL);
        self.write(q, query_packet, mode, max_udp, our_payload, out)
    }

    fn write(
        &self,
        q: &QueryView,
        query_packet: &[u8],
        mode: TtlMode,
        max_udp: u16,
        our_payload: u16,
        out: &mut Vec<u8>,
    ) -> Served {
        out.clear();
        let limit = udp_limit(q, max_udp, our_payload);
        let opt_len = if q.edns.is_some() { OPT_LEN } else { 0 };
        let truncated = self.wire.len() + opt_len > limit;
        let qend = usize::from(self.question_end);
        if truncated {
            out.extend_from_slice(&self.wire[..qend]);
        } else {
            out.extend_from_slice(&self.wire);
        }

        // Header: ID, RD from the query, AD only for DO/AD-aware clients
        // (RFC 6840 5.8), CD echoed, TC on truncation.
        out[0..2].copy_from_slice(&q.id.to_be_bytes());
        let mut f2 = out[2] & !0x03;
        if q.rd {
            f2 |= 0x01;
        }
        if truncated {
            f2 |= 0x02;
        }
        out[2] = f2;
        let mut f3 = out[3] & !0x70;
        if self.ad && (q.ad || q.do_bit()) {
            f3 |= 0x20;
        }
        if q.cd {
            f3 |= 0x10;
        }
        out[3] = f3;

        // The client's question, original case. Same length whenever the key
        // matched; otherwise keep ours rather than corrupt the message.
        if let (Some(src), Some(dst)) = (
            query_packet.get(q.question_range()),
            out.get_mut(HEADER_LEN..qend),
        ) && src.len() == dst.len()
        {
            dst.copy_from_slice(src);
        }

        let mut arcount = if truncated {
            out[6..10].fill(0);
            0
        } else {
            for &off in self.ttl_offsets.iter() {
                let off = usize::from(off);
                if let Some(dst) = out.get_mut(off..off + 4) {
                    let new = match mode {
                        TtlMode::Fixed(t) => t,
                        TtlMode::Elapsed(e) => {
                            let orig = u32::from_be_bytes([dst[0], dst[1], dst[2], dst[3]]);
                            orig.saturating_sub(e)
                        }
                    };
                    dst.copy_from_slice(&new.to_be_bytes());
                }
            }
            u16::from_be_bytes([out[10], out[11]])
        };
        if let Some(edns) = q.edns {
            push_opt(out, our_payload, 0, edns.do_bit);
            arcount += 1;
        }
        out[10..12].copy_from_slice(&arcount.to_be_bytes());
        if truncated {
            Served::Truncated
        } else {
            Served::Full
        }
    }
}

/// The largest response we may send to `q` (see
/// [`CachedAnswer::write_response`]).
pub fn udp_limit(q: &QueryView, max_udp: u16, our_payload: u16) -> usize {
    if max_udp == 0 {
        return usize::from(u16::MAX);
    }
    match q.edns {
        None => 512,
        Some(e) => usize::from(e.udp_payload.min(our_payload).min(max_udp).max(512)),
    }
}

/// Appends an OPT RR: root owner, our payload size, extended RCODE high
/// bits, version 0, DO as given, no options.
pub(crate) fn push_opt(out: &mut Vec<u8>, payload: u16, ext_rcode: u8, do_bit: bool) {
    let p = payload.to_be_bytes();
    out.extend_from_slice(&[
        0,
        0,
        41,
        p[0],
        p[1],
        ext_rcode,
        0,
        if do_bit { 0x80 } else { 0 },
        0,
        0,
        0,
    ]);
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)] // tests
pub(crate) mod tests {
    use super::*;
    use crate::fastpath::wire::parse_query;
    use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
    use hickory_proto::rr::rdata::{A, CNAME, SOA};
    use hickory_proto::rr::{Name, RData, Record, RecordType};
    use rand::{Rng, SeedableRng, rngs::StdRng};
    use std::net::Ipv4Addr;
    use std::str::FromStr;

    fn name(s: &str) -> Name {
        Name::from_str(s).unwrap()
    }

    fn query(qname: &str, rt: RecordType, edns: Option<(u16, bool)>) -> Vec<u8> {
        let mut m = Message::new(0x4242, MessageType::Query, OpCode::Query);
        m.metadata.recursion_desired = true;
        m.add_query(Query::query(name(qname), rt));
        if let Some((payload, do_bit)) = edns {
            let mut e = Edns::new();
            e.set_max_payload(payload);
            e.set_dnssec_ok(do_bit);
            m.set_edns(e);
        }
        m.to_vec().unwrap()
    }

    /// A response with a CNAME and `n` A records, AD set, EDNS.
    pub(crate) fn a_response(qname: &str, n: usize, ttl: u32) -> Vec<u8> {
        let mut m = Message::new(7, MessageType::Response, OpCode::Query);
        m.metadata.recursion_desired = true;
        m.metadata.recursion_available = true;
        m.metadata.authentic_data = true;
        m.add_query(Query::query(name(qname), RecordType::A));
        m.add_answer(Record::from_rdata(
            name(qname),
            ttl + 100,
            RData::CNAME(CNAME(name("target.example.net."))),
        ));
        for i in 0..n {
            m.add_answer(Record::from_rdata(
                name("target.example.net."),
                ttl + i as u32,
                RData::A(A(Ipv4Addr::new(192, 0, 2, i as u8))),
            ));
        }
        let mut e = Edns::new();
        e.set_max_payload(1232);
        m.set_edns(e);
        m.to_vec().unwrap()
    }

    fn nx_response(soa_ttl: u32, minimum: u32) -> Vec<u8> {
        let mut m = Message::new(7, MessageType::Response, OpCode::Query);
        m.metadata.response_code = ResponseCode::NXDomain;
        m.add_query(Query::query(name("nope.example.com."), RecordType::A));
        m.add_authority(Record::from_rdata(
            name("example.com."),
            soa_ttl,
            RData::SOA(SOA::new(
                name("ns.example.com."),
                name("host.example.com."),
                1,
                2,
                3,
                4,
                minimum,
            )),
        ));
        m.to_vec().unwrap()
    }

    #[test]
    fn positive_roundtrip() {
        let t0 = Instant::now();
        let resp = a_response("www.example.com.", 3, 300);
        let ans = CachedAnswer::from_response(&resp, t0, (0, 86400)).unwrap();
        assert_eq!(ans.ttl(), 300);
        assert!(ans.ad());
        assert!(!ans.is_negative());
        // The CNAME target, expanded from its compressed form, for filtering.
        assert_eq!(ans.cname_chain(), b"\x06target\x07example\x03net\x00");
        // OPT stripped.
        assert!(Message::from_vec(ans.wire()).unwrap().edns.is_none());

        let mut qp = query("www.example.com.", RecordType::A, Some((4096, true)));
        // hickory lowercases questions on emit: randomise the case by hand.
        for (i, b) in qp[12..29].iter_mut().enumerate() {
            if i % 2 == 0 {
                *b = b.to_ascii_uppercase();
            }
        }
        let q = parse_query(&qp).unwrap();
        let mut out = Vec::new();
        let now = t0 + Duration::from_millis(10_500);
        let served = ans.write_response(&q, &qp, now, 1232, 1232, &mut out);
        assert_eq!(served, Served::Full);
        let m = Message::from_vec(&out).unwrap();
        assert_eq!(m.metadata.id, 0x4242);
        assert!(m.metadata.recursion_desired);
        assert!(m.metadata.authentic_data);
        assert_eq!(m.queries[0].name().to_string(), "wWw.eXaMpLe.cOm.");
        assert_eq!(&out[q.question_range()], &qp[q.question_range()]);
        assert_eq!(m.answers.len(), 4);
        assert_eq!(m.answers[0].ttl, 390);
        assert_eq!(m.answers[1].ttl, 290);
        assert_eq!(m.answers[3].ttl, 292);
        let e = m.edns.unwrap();
        assert_eq!(e.max_payload(), 1232);
        assert!(e.flags().dnssec_ok);
        assert_eq!(ans.remaining_ttl(now), Some(290));
        assert_eq!(ans.age(now).as_secs(), 10);

        // Without DO/AD the AD bit is cleared; without EDNS no OPT.
        let qp = query("www.example.com.", RecordType::A, None);
        let q = parse_query(&qp).unwrap();
        ans.write_response(&q, &qp, now, 1232, 1232, &mut out);
        let m = Message::from_vec(&out).unwrap();
        assert!(!m.metadata.authentic_data);
        assert!(m.edns.is_none());

        // Stale: fixed 30 s.
        ans.write_stale_response(&q, &qp, 1232, 1232, &mut out);
        let m = Message::from_vec(&out).unwrap();
        assert!(m.answers.iter().all(|r| r.ttl == STALE_TTL));

        // Expiry.
        let later = t0 + Duration::from_secs(300);
        assert!(ans.is_expired(later));
        assert_eq!(ans.expired_for(later + Duration::from_secs(5)), 5);
        ans.write_response(&q, &qp, later, 1232, 1232, &mut out);
        let m = Message::from_vec(&out).unwrap();
        assert_eq!(m.answers[1].ttl, 0);
    }

    #[test]
    fn truncation() {
        let t0 = Instant::now();
        let resp = a_response("big.example.com.", 40, 60);
        let ans = CachedAnswer::from_response(&resp, t0, (0, 86400)).unwrap();
        assert!(ans.wire().len() > 512);
        // No EDNS: 512 limit.
        let qp = query("big.example.com.", RecordType::A, None);
        let q = parse_query(&qp).unwrap();
        let mut out = Vec::new();
        assert!(
            ans.write_response(&q, &qp, t0, 1232, 1232, &mut out)
                .is_truncated()
        );
        let m = Message::from_vec(&out).unwrap();
        assert!(m.metadata.truncation);
        assert!(m.answers.is_empty() && m.authorities.is_empty());
        assert_eq!(m.queries.len(), 1);
        // TCP: full.
        assert_eq!(
            ans.write_response(&q, &qp, t0, 0, 1232, &mut out),
            Served::Full
        );
        assert_eq!(Message::from_vec(&out).unwrap().answers.len(), 41);
        // EDNS 4096 but our payload 1232 -> fits? 40 A records ~ 700 bytes.
        let qp = query("big.example.com.", RecordType::A, Some((4096, false)));
        let q = parse_query(&qp).unwrap();
        assert_eq!(
            ans.write_response(&q, &qp, t0, 1232, 1232, &mut out),
            Served::Full
        );
        assert!(out.len() <= 1232);
        // EDNS payload 100 is treated as 512.
        let qp = query("big.example.com.", RecordType::A, Some((100, true)));
        let q = parse_query(&qp).unwrap();
        assert!(
            ans.write_response(&q, &qp, t0, 1232, 1232, &mut out)
                .is_truncated()
        );
        let m = Message::from_vec(&out).unwrap();
        assert!(m.metadata.truncation);
        assert!(m.edns.unwrap().flags().dnssec_ok);
    }

    #[test]
    fn negative_and_clamps() {
        let t0 = Instant::now();
        let ans = CachedAnswer::from_response(&nx_response(3600, 900), t0, (0, 86400)).unwrap();
        assert_eq!(ans.ttl(), 900);
        assert!(ans.is_negative());
        assert_eq!(ans.rcode(), 3);
        let qp = query("nope.example.com.", RecordType::A, None);
        let q = parse_query(&qp).unwrap();
        let mut out = Vec::new();
        ans.write_response(&q, &qp, t0, 512, 512, &mut out);
        let m = Message::from_vec(&out).unwrap();
        assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
        assert_eq!(m.authorities[0].ttl, 900);

        let ans = CachedAnswer::from_response(&nx_response(60, 900), t0, (0, 86400)).unwrap();
        assert_eq!(ans.ttl(), 60);
        let ans = CachedAnswer::from_response(&nx_response(60, 900), t0, (120, 86400)).unwrap();
        assert_eq!(ans.ttl(), 120);
        let ans = CachedAnswer::from_response(&a_response("x.example.", 1, 100_000), t0, (0, 3600))
            .unwrap();
        assert_eq!(ans.ttl(), 3600);
        assert_eq!(
            CachedAnswer::from_response(&a_response("x.example.", 1, 0), t0, (0, 3600))
                .unwrap_err(),
            WireError::NotCacheable("zero TTL")
        );

        // NODATA with SOA: negative TTL, NOERROR.
        let mut nx = Message::from_vec(&nx_response(600, 30)).unwrap();
        nx.metadata.response_code = ResponseCode::NoError;
        let nodata = CachedAnswer::from_response(&nx.to_vec().unwrap(), t0, (0, 86400)).unwrap();
        assert_eq!((nodata.ttl(), nodata.rcode()), (30, 0));
        assert!(nodata.is_negative());

        // NODATA without SOA and SERVFAIL are not cached.
        let mut m = Message::new(7, MessageType::Response, OpCode::Query);
        m.add_query(Query::query(name("x.example."), RecordType::AAAA));
        assert!(CachedAnswer::from_response(&m.to_vec().unwrap(), t0, (0, 10)).is_err());
        m.metadata.response_code = ResponseCode::ServFail;
        assert!(CachedAnswer::from_response(&m.to_vec().unwrap(), t0, (0, 10)).is_err());
        // A query is not a response.
        let qp = query("x.example.", RecordType::A, None);
        assert!(CachedAnswer::from_response(&qp, t0, (0, 10)).is_err());
    }

    #[test]
    fn write_does_not_reallocate() {
        let t0 = Instant::now();
        let ans =
            CachedAnswer::from_response(&a_response("a.example.", 2, 60), t0, (0, 86400)).unwrap();
        let qp = query("a.example.", RecordType::A, Some((1232, false)));
        let q = parse_query(&qp).unwrap();
        let mut out = Vec::with_capacity(1500);
        let ptr = out.as_ptr();
        for _ in 0..10 {
            ans.write_response(&q, &qp, t0, 1232, 1232, &mut out);
        }
        assert_eq!(out.as_ptr(), ptr);
    }

    #[test]
    fn fuzz_from_response_no_panic() {
        let mut rng = StdRng::seed_from_u64(42);
        let t0 = Instant::now();
        let bases = [a_response("www.example.com.", 3, 300), nx_response(300, 60)];
        let qp = query("www.example.com.", RecordType::A, Some((1232, true)));
        let q = parse_query(&qp).unwrap();
        let mut buf = Vec::new();
        let mut out = Vec::new();
        let mut ok = 0;
        for i in 0..100_000 {
            buf.clear();
            if i % 4 == 0 {
                let n = rng.random_range(0..120);
                buf.extend((0..n).map(|_| rng.random::<u8>()));
            } else {
                buf.extend_from_slice(&bases[i % 2]);
                for _ in 0..rng.random_range(1..4) {
                    let at = rng.random_range(0..buf.len());
                    match rng.random_range(0..3) {
                        0 => buf[at] = rng.random(),
                        1 => buf.truncate(at.max(1)),
                        _ => buf.insert(at, rng.random()),
                    }
                }
            }
            if let Ok(a) = CachedAnswer::from_response(&buf, t0, (0, 86400)) {
                ok += 1;
                a.write_response(&q, &qp, t0, 1232, 1232, &mut out);
                a.write_response(&q, &qp, t0, 0, 1232, &mut out);
            }
        }
        assert!(ok > 0);
    }
}

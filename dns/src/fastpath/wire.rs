//! Zero-allocation parsing of incoming DNS queries.
//!
//! The UDP worker calls [`parse_query`] on every packet before anything else,
//! so it works on the borrowed packet only: the question name is copied
//! (lowercased) into a fixed array inside [`QueryView`], which is `Copy` and
//! lives on the stack. Nothing here allocates or panics on hostile input;
//! every index is bounds-checked through `get`.
//!
//! The parser is deliberately strict about shape (one question, no answer or
//! authority records, at most one OPT, no trailing bytes): anything a stub
//! resolver would not send is either answered with FORMERR or dropped, and it
//! never reaches the cache or the resolver.

use std::ops::Range;

/// Length of the fixed DNS header.
pub const HEADER_LEN: usize = 12;
/// Longest wire-format name (RFC 1035 2.3.4), root label included.
pub const MAX_NAME_LEN: usize = 255;
/// Longest label.
pub const MAX_LABEL_LEN: usize = 63;
/// Size of a [`KeyBuf`]: name + qtype + qclass + flag byte + view byte.
pub const KEY_MAX: usize = MAX_NAME_LEN + 6;

/// Record type of the EDNS(0) OPT pseudo-RR.
pub const TYPE_OPT: u16 = 41;
/// Record type SOA.
pub const TYPE_SOA: u16 = 6;
/// Record type HINFO (used for the RFC 8482 ANY answer).
pub const TYPE_HINFO: u16 = 13;
/// Query type ANY.
pub const TYPE_ANY: u16 = 255;

/// Flag bit in the cache key: the query set DO.
pub const KEY_FLAG_DO: u8 = 0x01;
/// Flag bit in the cache key: the query set CD.
pub const KEY_FLAG_CD: u8 = 0x02;
/// View bit of a question rewritten for safe search; the low bits are the
/// upstream view.
pub const VIEW_SAFE_SEARCH: u8 = 0x80;

/// Errors from the wire-format parsers in [`crate::fastpath`].
///
/// [`WireError::reply_rcode`] tells the UDP worker what to do with a query
/// that failed to parse: drop it, or answer with a header-only error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// Shorter than a DNS header: no ID to answer to.
    #[error("packet shorter than the 12-byte DNS header")]
    TooShort,
    /// QR=1: a response. Never answer those (reflection loops).
    #[error("packet is a response (QR=1)")]
    NotAQuery,
    /// A non-QUERY opcode whose body is not a plain question.
    #[error("unsupported opcode {0}")]
    UnsupportedOpcode(u8),
    /// The message ends inside a name, a question or a record.
    #[error("message truncated inside a name or record")]
    Truncated,
    /// QDCOUNT is not 1.
    #[error("expected exactly one question")]
    QuestionCount,
    /// A query carrying answer or authority records.
    #[error("query carries answer or authority records")]
    UnexpectedRecords,
    /// The additional section of a query is not a single OPT record.
    #[error("query additional section is not a single OPT record")]
    BadAdditional,
    /// OPT record with a non-root owner or malformed options.
    #[error("malformed OPT record")]
    BadOpt,
    /// More than one OPT record (RFC 6891 6.1.1).
    #[error("more than one OPT record")]
    DuplicateOpt,
    /// Compression pointer in a question that must be uncompressed.
    #[error("compression pointer in the question name")]
    CompressedQuestion,
    /// A name longer than 255 bytes.
    #[error("name longer than 255 bytes")]
    NameTooLong,
    /// A length byte of 64..=191: label type 0b01 or 0b10 (obsolete
    /// extended labels), i.e. a label longer than 63 bytes.
    #[error("label longer than 63 bytes or unsupported label type")]
    BadLabel,
    /// A compression pointer that does not point strictly backwards, or a
    /// pointer chain that is too long.
    #[error("invalid compression pointer")]
    BadPointer,
    /// Bytes after the last declared record.
    #[error("trailing bytes after the last record")]
    TrailingBytes,
    /// A response that must not be cached (reason given).
    #[error("response not cacheable: {0}")]
    NotCacheable(&'static str),
}

impl WireError {
    /// What to answer for a query that failed with this error: `None` means
    /// drop silently (no trustworthy header, or a response), otherwise the
    /// RCODE of a header-only reply (see [`crate::fastpath::synth::header_only`]).
    pub fn reply_rcode(&self) -> Option<u8> {
        match self {
            WireError::TooShort | WireError::NotAQuery => None,
            WireError::UnsupportedOpcode(_) => Some(RCODE_NOTIMP),
            _ => Some(RCODE_FORMERR),
        }
    }
}

/// RCODE NOERROR.
pub const RCODE_NOERROR: u8 = 0;
/// RCODE FORMERR.
pub const RCODE_FORMERR: u8 = 1;
/// RCODE SERVFAIL.
pub const RCODE_SERVFAIL: u8 = 2;
/// RCODE NXDOMAIN.
pub const RCODE_NXDOMAIN: u8 = 3;
/// RCODE NOTIMP.
pub const RCODE_NOTIMP: u8 = 4;
/// RCODE REFUSED.
pub const RCODE_REFUSED: u8 = 5;
/// Extended RCODE BADVERS (RFC 6891), carried partly in the OPT TTL.
pub const RCODE_BADVERS: u16 = 16;

/// EDNS(0) parameters of a query's OPT record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Edns {
    /// Requestor's UDP payload size, as sent (may be below 512).
    pub udp_payload: u16,
    /// DNSSEC OK.
    pub do_bit: bool,
    /// EDNS version; anything but 0 must be answered with BADVERS.
    pub version: u8,
}

impl Edns {
    /// The payload size we may use toward this client: values below 512 are
    /// treated as 512 (RFC 6891 6.2.3).
    pub fn effective_payload(&self) -> u16 {
        self.udp_payload.max(512)
    }
}

/// A parsed query, borrowed from nothing: fixed-size and `Copy`.
#[derive(Clone, Copy)]
pub struct QueryView {
    /// Message ID.
    pub id: u16,
    /// OPCODE (0 = QUERY; anything else should get NOTIMP).
    pub opcode: u8,
    /// Recursion desired.
    pub rd: bool,
    /// Checking disabled.
    pub cd: bool,
    /// Authentic data (RFC 6840 5.7: "I understand AD").
    pub ad: bool,
    /// Query type.
    pub qtype: u16,
    /// Query class.
    pub qclass: u16,
    /// The OPT record, if any.
    pub edns: Option<Edns>,
    name: [u8; MAX_NAME_LEN],
    name_len: u8,
    question_end: u16,
}

impl std::fmt::Debug for QueryView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueryView")
            .field("id", &self.id)
            .field("opcode", &self.opcode)
            .field("rd", &self.rd)
            .field("cd", &self.cd)
            .field("ad", &self.ad)
            .field("name", &NameDisplay(self.name_wire()))
            .field("qtype", &self.qtype)
            .field("qclass", &self.qclass)
            .field("edns", &self.edns)
            .finish()
    }
}

/// Formats a wire name as dotted text (for `Debug`/logging only).
struct NameDisplay<'a>(&'a [u8]);

impl std::fmt::Debug for NameDisplay<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut pos = 0;
        let mut wrote = false;
        while let Some(&len) = self.0.get(pos) {
            if len == 0 {
                break;
            }
            let label = self
                .0
                .get(pos + 1..pos + 1 + usize::from(len))
                .unwrap_or(&[]);
            for &b in label {
                if b.is_ascii_graphic() && b != b'.' && b != b'\\' {
                    write!(f, "{}", char::from(b))?;
                } else {
                    write!(f, "\\{b:03}")?;
                }
            }
            f.write_str(".")?;
            wrote = true;
            pos += 1 + usize::from(len);
        }
        if !wrote {
            f.write_str(".")?;
        }
        Ok(())
    }
}

impl QueryView {
    /// The question name in wire form, lowercased, root label included.
    pub fn name_wire(&self) -> &[u8] {
        &self.name[..usize::from(self.name_len)]
    }

    /// Byte range of the question section (name, type, class) in the packet
    /// this view was parsed from: copy it into responses to keep the client's
    /// original (0x20-randomised) case.
    pub fn question_range(&self) -> Range<usize> {
        HEADER_LEN..usize::from(self.question_end)
    }

    /// Length of the question section in bytes.
    pub fn question_len(&self) -> usize {
        usize::from(self.question_end) - HEADER_LEN
    }

    /// DNSSEC OK bit (false without EDNS).
    pub fn do_bit(&self) -> bool {
        self.edns.is_some_and(|e| e.do_bit)
    }

    /// True when the query carries an EDNS version we do not implement: the
    /// caller must answer BADVERS ([`crate::fastpath::synth::error_response`]
    /// with [`RCODE_BADVERS`]).
    pub fn needs_badvers(&self) -> bool {
        self.edns.is_some_and(|e| e.version != 0)
    }
}

#[inline]
pub(crate) fn be16(buf: &[u8], pos: usize) -> Result<u16, WireError> {
    match buf.get(pos..pos + 2) {
        Some(&[a, b]) => Ok(u16::from_be_bytes([a, b])),
        _ => Err(WireError::Truncated),
    }
}

#[inline]
pub(crate) fn be32(buf: &[u8], pos: usize) -> Result<u32, WireError> {
    match buf.get(pos..pos + 4) {
        Some(&[a, b, c, d]) => Ok(u32::from_be_bytes([a, b, c, d])),
        _ => Err(WireError::Truncated),
    }
}

/// Parses an uncompressed name at `pos`, lowercasing it into `out`.
/// Returns (position after the name, name length).
fn parse_question_name(
    packet: &[u8],
    mut pos: usize,
    out: &mut [u8; MAX_NAME_LEN],
) -> Result<(usize, usize), WireError> {
    let mut len = 0usize;
    loop {
        let &l = packet.get(pos).ok_or(WireError::Truncated)?;
        match l & 0xC0 {
            0x00 => {}
            0xC0 => return Err(WireError::CompressedQuestion),
            _ => return Err(WireError::BadLabel),
        }
        let l = usize::from(l);
        if len + 1 + l > MAX_NAME_LEN {
            return Err(WireError::NameTooLong);
        }
        let label = packet.get(pos..pos + 1 + l).ok_or(WireError::Truncated)?;
        let dst = out
            .get_mut(len..len + 1 + l)
            .ok_or(WireError::NameTooLong)?;
        for (d, s) in dst.iter_mut().zip(label) {
            *d = s.to_ascii_lowercase();
        }
        // The length byte itself is below 64, so lowercasing left it intact.
        len += 1 + l;
        pos += 1 + l;
        if l == 0 {
            return Ok((pos, len));
        }
    }
}

/// Skips a (possibly compressed) name in place, validating any pointer chain:
/// every pointer must point strictly backwards, and the expanded name must
/// not exceed 255 bytes. Returns the position just after the name.
pub(crate) fn skip_name(buf: &[u8], start: usize) -> Result<usize, WireError> {
    walk_name(buf, start, None)
}

/// Appends the (possibly compressed) name at `start`, expanded and
/// lowercased, to `out`. Pointers are validated as in [`skip_name`].
pub(crate) fn read_name_lower(
    buf: &[u8],
    start: usize,
    out: &mut Vec<u8>,
) -> Result<(), WireError> {
    walk_name(buf, start, Some(out)).map(|_| ())
}

/// [`skip_name`], copying the expanded name into `out` when given.
fn walk_name(buf: &[u8], start: usize, mut out: Option<&mut Vec<u8>>) -> Result<usize, WireError> {
    let mut pos = start;
    let mut end = None;
    let mut expanded = 0usize;
    // Strictly-backwards pointers make loops impossible; the hop cap bounds
    // the work on a chain of pointers to pointers anyway.
    let mut hops = 0u32;
    let mut limit = start; // pointers must target below this
    loop {
        let &l = buf.get(pos).ok_or(WireError::Truncated)?;
        match l & 0xC0 {
            0x00 => {
                // The top bits are 00, so l <= MAX_LABEL_LEN.
                let l = usize::from(l);
                expanded += 1 + l;
                if expanded > MAX_NAME_LEN {
                    return Err(WireError::NameTooLong);
                }
                let label = buf.get(pos..pos + 1 + l).ok_or(WireError::Truncated)?;
                if let Some(out) = out.as_deref_mut() {
                    out.extend(label.iter().map(u8::to_ascii_lowercase));
                }
                pos += 1 + l;
                if l == 0 {
                    return Ok(end.unwrap_or(pos));
                }
            }
            0xC0 => {
                let &l2 = buf.get(pos + 1).ok_or(WireError::Truncated)?;
                let target = (usize::from(l & 0x3F) << 8) | usize::from(l2);
                if end.is_none() {
                    end = Some(pos + 2);
                }
                hops += 1;
                if target >= limit || hops > 127 {
                    return Err(WireError::BadPointer);
                }
                limit = target;
                pos = target;
            }
            _ => return Err(WireError::BadLabel),
        }
    }
}

/// Parses a DNS query without allocating.
///
/// Drop-worthy errors ([`WireError::reply_rcode`] is `None`) come only from
/// the header; everything after it yields FORMERR (or NOTIMP for other
/// opcodes), so the caller can always answer with the ID from bytes 0..2.
pub fn parse_query(packet: &[u8]) -> Result<QueryView, WireError> {
    let Some(header) = packet.get(..HEADER_LEN) else {
        return Err(WireError::TooShort);
    };
    let flags = u16::from_be_bytes([header[2], header[3]]);
    if flags & 0x8000 != 0 {
        return Err(WireError::NotAQuery);
    }
    let opcode = ((flags >> 11) & 0x0F) as u8;
    match parse_body(packet, flags, opcode) {
        Err(_) if opcode != 0 => Err(WireError::UnsupportedOpcode(opcode)),
        r => r,
    }
}

fn parse_body(packet: &[u8], flags: u16, opcode: u8) -> Result<QueryView, WireError> {
    let qdcount = be16(packet, 4)?;
    let ancount = be16(packet, 6)?;
    let nscount = be16(packet, 8)?;
    let arcount = be16(packet, 10)?;
    if qdcount != 1 {
        return Err(WireError::QuestionCount);
    }
    if ancount != 0 || nscount != 0 {
        return Err(WireError::UnexpectedRecords);
    }
    if arcount > 1 {
        return Err(WireError::BadAdditional);
    }
    let mut view = QueryView {
        id: u16::from_be_bytes([packet[0], packet[1]]),
        opcode,
        rd: flags & 0x0100 != 0,
        ad: flags & 0x0020 != 0,
        cd: flags & 0x0010 != 0,
        qtype: 0,
        qclass: 0,
        edns: None,
        name: [0; MAX_NAME_LEN],
        name_len: 0,
        question_end: 0,
    };
    let (pos, name_len) = parse_question_name(packet, HEADER_LEN, &mut view.name)?;
    view.qtype = be16(packet, pos)?;
    view.qclass = be16(packet, pos + 2)?;
    let mut pos = pos + 4;
    // At most 12 + 255 + 4, always fits.
    view.question_end = u16::try_from(pos).map_err(|_| WireError::NameTooLong)?;
    view.name_len = u8::try_from(name_len).map_err(|_| WireError::NameTooLong)?;

    if arcount == 1 {
        // OPT owner must be the root name (RFC 6891 6.1.2).
        if packet.get(pos) != Some(&0) {
            return Err(match packet.get(pos) {
                None => WireError::Truncated,
                Some(_) => WireError::BadAdditional,
            });
        }
        let rtype = be16(packet, pos + 1)?;
        if rtype != TYPE_OPT {
            return Err(WireError::BadAdditional);
        }
        let udp_payload = be16(packet, pos + 3)?;
        let ttl = be32(packet, pos + 5)?;
        let rdlen = usize::from(be16(packet, pos + 9)?);
        let rdata = packet
            .get(pos + 11..pos + 11 + rdlen)
            .ok_or(WireError::Truncated)?;
        check_options(rdata)?;
        pos += 11 + rdlen;
        view.edns = Some(Edns {
            udp_payload,
            version: (ttl >> 16) as u8,
            do_bit: ttl & 0x8000 != 0,
        });
    }
    if pos != packet.len() {
        return Err(WireError::TrailingBytes);
    }
    Ok(view)
}

/// Checks that EDNS options are well-formed TLVs filling the RDATA exactly.
fn check_options(mut rdata: &[u8]) -> Result<(), WireError> {
    while !rdata.is_empty() {
        let len = usize::from(be16(rdata, 2).map_err(|_| WireError::BadOpt)?);
        rdata = rdata.get(4 + len..).ok_or(WireError::BadOpt)?;
    }
    Ok(())
}

/// Fixed-size buffer for [`cache_key`].
#[derive(Clone)]
pub struct KeyBuf([u8; KEY_MAX]);

impl KeyBuf {
    /// A zeroed buffer; reuse one per worker.
    pub const fn new() -> Self {
        KeyBuf([0; KEY_MAX])
    }
}

impl Default for KeyBuf {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for KeyBuf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyBuf")
    }
}

/// [`cache_key_in`] view 0: the service's own resolution.
pub fn cache_key<'a>(q: &QueryView, out: &'a mut KeyBuf) -> &'a [u8] {
    cache_key_in(q, 0, out)
}

/// Writes the cache key of `q` into `out` and returns it:
/// lowercased wire name, qtype, qclass, a flag byte
/// ([`KEY_FLAG_DO`] | [`KEY_FLAG_CD`]) and the view byte: groups that
/// resolve through their own upstreams, or rewrite names for safe search,
/// get answers no other group may be served (see [`VIEW_SAFE_SEARCH`]).
///
/// DO is in the key because DO=1 answers carry RRSIGs that DO=0 clients
/// must not get; CD because a CD=1 answer may hold data that failed
/// validation and must never be served to a CD=0 client.
pub fn cache_key_in<'a>(q: &QueryView, view: u8, out: &'a mut KeyBuf) -> &'a [u8] {
    let name = q.name_wire();
    let n = name.len();
    let buf = &mut out.0;
    buf[..n].copy_from_slice(name);
    buf[n..n + 2].copy_from_slice(&q.qtype.to_be_bytes());
    buf[n + 2..n + 4].copy_from_slice(&q.qclass.to_be_bytes());
    let mut flags = 0;
    if q.do_bit() {
        flags |= KEY_FLAG_DO;
    }
    if q.cd {
        flags |= KEY_FLAG_CD;
    }
    buf[n + 4] = flags;
    buf[n + 5] = view;
    &buf[..n + 6]
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)] // tests
mod tests {
    use super::*;
    use hickory_proto::op::{Edns as HEdns, Message, MessageType, OpCode, Query};
    use hickory_proto::rr::{Name, RecordType};
    use hickory_proto::serialize::binary::BinEncodable;
    use rand::{Rng, SeedableRng, rngs::StdRng};
    use std::str::FromStr;

    /// Hand-written query for "Www.Example.COM" A, RD, with OPT 1232 DO.
    pub(crate) fn sample_query() -> Vec<u8> {
        let mut p = vec![0xab, 0xcd, 0x01, 0x20, 0, 1, 0, 0, 0, 0, 0, 1];
        p.extend_from_slice(b"\x03Www\x07Example\x03COM\x00");
        p.extend_from_slice(&[0, 1, 0, 1]);
        p.extend_from_slice(&[0, 0, 41, 0x04, 0xd0, 0, 0, 0x80, 0, 0, 0]);
        p
    }

    #[test]
    fn parses_sample() {
        let p = sample_query();
        let q = parse_query(&p).unwrap();
        assert_eq!(q.id, 0xabcd);
        assert!(q.rd && q.ad && !q.cd);
        assert_eq!(q.opcode, 0);
        assert_eq!(q.name_wire(), b"\x03www\x07example\x03com\x00");
        assert_eq!((q.qtype, q.qclass), (1, 1));
        assert_eq!(q.question_range(), 12..33);
        assert_eq!(
            q.edns,
            Some(Edns {
                udp_payload: 1232,
                do_bit: true,
                version: 0
            })
        );
        assert!(!q.needs_badvers());
        let mut kb = KeyBuf::new();
        let key = cache_key(&q, &mut kb);
        assert_eq!(
            key,
            b"\x03www\x07example\x03com\x00\x00\x01\x00\x01\x01\x00"
        );
        let key = cache_key_in(&q, 3 | VIEW_SAFE_SEARCH, &mut kb);
        assert_eq!(key.last(), Some(&0x83));
    }

    #[test]
    fn header_errors_are_dropped() {
        assert_eq!(parse_query(&[0; 11]).unwrap_err(), WireError::TooShort);
        let mut p = sample_query();
        p[2] |= 0x80;
        let e = parse_query(&p).unwrap_err();
        assert_eq!(e, WireError::NotAQuery);
        assert_eq!(e.reply_rcode(), None);
    }

    #[test]
    fn body_errors_are_formerr() {
        let base = sample_query();
        type Mutation = Box<dyn Fn(&mut Vec<u8>)>;
        let cases: Vec<(Mutation, WireError)> = vec![
            (Box::new(|p| p[5] = 2), WireError::QuestionCount),
            (Box::new(|p| p[5] = 0), WireError::QuestionCount),
            (Box::new(|p| p[7] = 1), WireError::UnexpectedRecords),
            (Box::new(|p| p[9] = 1), WireError::UnexpectedRecords),
            (Box::new(|p| p[11] = 2), WireError::BadAdditional),
            (Box::new(|p| p.push(0)), WireError::TrailingBytes),
            (Box::new(|p| p.truncate(p.len() - 1)), WireError::Truncated),
            (Box::new(|p| p[11] = 0), WireError::TrailingBytes),
            (Box::new(|p| p[12] = 0xC0), WireError::CompressedQuestion),
            (Box::new(|p| p[12] = 0x40), WireError::BadLabel),
            (Box::new(|p| p[33] = 1), WireError::BadAdditional),
            (Box::new(|p| p[35] = 6), WireError::BadAdditional),
            (Box::new(|p| p[43] = 4), WireError::Truncated),
        ];
        for (i, (f, want)) in cases.iter().enumerate() {
            let mut p = base.clone();
            f(&mut p);
            let e = parse_query(&p).unwrap_err();
            assert_eq!(e, *want, "case {i}");
            assert_eq!(e.reply_rcode(), Some(RCODE_FORMERR), "case {i}");
        }
    }

    #[test]
    fn other_opcode_is_notimp() {
        let mut p = sample_query();
        p[2] = 0x28; // opcode 5 (UPDATE)
        p[9] = 1; // an update section record: not a plain question
        let e = parse_query(&p).unwrap_err();
        assert_eq!(e, WireError::UnsupportedOpcode(5));
        assert_eq!(e.reply_rcode(), Some(RCODE_NOTIMP));
        // A well-shaped NOTIFY parses; the caller answers NOTIMP itself.
        let mut p = sample_query();
        p[2] = 0x20; // opcode 4
        assert_eq!(parse_query(&p).unwrap().opcode, 4);
    }

    #[test]
    fn name_limits() {
        let mut p = vec![0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        p.push(64);
        p.extend_from_slice(&[b'a'; 64]);
        p.extend_from_slice(&[0, 0, 1, 0, 1]);
        // 64 has bits 0b01: rejected as a bad label type before length.
        assert_eq!(parse_query(&p).unwrap_err(), WireError::BadLabel);

        // 4 labels of 63 = 256 bytes + root > 255.
        let mut p = vec![0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        for _ in 0..4 {
            p.push(63);
            p.extend_from_slice(&[b'a'; 63]);
        }
        p.extend_from_slice(&[0, 0, 1, 0, 1]);
        assert_eq!(parse_query(&p).unwrap_err(), WireError::NameTooLong);

        // 3*64 + 62 + 1 = 255: the longest legal name.
        let mut p = vec![0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        for _ in 0..3 {
            p.push(63);
            p.extend_from_slice(&[b'A'; 63]);
        }
        p.push(61);
        p.extend_from_slice(&[b'b'; 61]);
        p.extend_from_slice(&[0, 0, 1, 0, 1]);
        let q = parse_query(&p).unwrap();
        assert_eq!(q.name_wire().len(), 255);
        assert!(q.name_wire()[1..64].iter().all(|&b| b == b'a'));
        let mut kb = KeyBuf::new();
        assert_eq!(cache_key(&q, &mut kb).len(), KEY_MAX);

        // Root name.
        let p = [0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 1];
        let q = parse_query(&p).unwrap();
        assert_eq!(q.name_wire(), &[0]);
        assert!(format!("{q:?}").contains("name: ."));
    }

    #[test]
    fn badvers_exposed() {
        let mut p = sample_query();
        p[39] = 1; // OPT TTL: ext-rcode, VERSION=1
        let q = parse_query(&p).unwrap();
        assert!(q.needs_badvers());
        assert_eq!(q.edns.unwrap().version, 1);
    }

    #[test]
    fn opt_options_validated() {
        let mut p = sample_query();
        // rdlen 8 with one cookie option of 8 bytes -> declared 12, truncated
        p[43] = 8;
        p.extend_from_slice(&[0, 10, 0, 8, 1, 2, 3, 4]);
        assert_eq!(parse_query(&p).unwrap_err(), WireError::BadOpt);
        let mut p = sample_query();
        p[43] = 12;
        p.extend_from_slice(&[0, 10, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8]);
        assert!(parse_query(&p).is_ok());
    }

    #[test]
    fn matches_hickory() {
        for (name, rt, do_bit, payload, cd) in [
            ("ExAmple.ORG.", RecordType::AAAA, false, 4096u16, false),
            ("a.b.c.d.e.", RecordType::MX, true, 512, true),
            (".", RecordType::NS, true, 1232, false),
            ("xn--bcher-kva.example.", RecordType::TXT, false, 0, true),
        ] {
            let mut m = Message::new(0x1234, MessageType::Query, OpCode::Query);
            m.metadata.recursion_desired = true;
            m.metadata.checking_disabled = cd;
            m.add_query(Query::query(Name::from_str(name).unwrap(), rt));
            if payload != 0 {
                let mut e = HEdns::new();
                e.set_max_payload(payload);
                e.set_dnssec_ok(do_bit);
                m.set_edns(e);
            }
            let wire = m.to_vec().unwrap();
            let q = parse_query(&wire).unwrap();
            assert_eq!(q.id, 0x1234);
            assert!(q.rd);
            assert_eq!(q.cd, cd);
            assert_eq!(q.qtype, u16::from(rt));
            assert_eq!(q.qclass, 1);
            let back = Message::from_vec(&wire).unwrap();
            let mut lower = back.queries[0].name().to_lowercase().to_bytes().unwrap();
            // hickory emits the root label; to_bytes too.
            if lower.last() != Some(&0) {
                lower.push(0);
            }
            assert_eq!(q.name_wire(), &lower[..]);
            match back.edns {
                Some(e) => {
                    let ours = q.edns.unwrap();
                    assert_eq!(ours.udp_payload, e.max_payload().max(512));
                    assert_eq!(ours.do_bit, e.flags().dnssec_ok);
                }
                None => assert!(q.edns.is_none()),
            }
            // The question range covers name, type and class exactly.
            assert_eq!(q.question_range().end, 12 + q.name_wire().len() + 4);
            assert_eq!(q.question_len(), q.name_wire().len() + 4);
        }
    }

    #[test]
    fn skip_name_pointers() {
        let mut b = vec![0u8; 12];
        b.extend_from_slice(b"\x03foo\x00"); // 12..17
        b.extend_from_slice(&[3, b'b', b'a', b'r', 0xC0, 12]); // 17..23
        b.extend_from_slice(&[0xC0, 17]); // 23..25
        assert_eq!(skip_name(&b, 12).unwrap(), 17);
        assert_eq!(skip_name(&b, 17).unwrap(), 23);
        assert_eq!(skip_name(&b, 23).unwrap(), 25);
        // Self pointer and forward pointer are rejected.
        let mut b2 = b.clone();
        b2.extend_from_slice(&[0xC0, 25]);
        assert_eq!(skip_name(&b2, 25).unwrap_err(), WireError::BadPointer);
        let mut b3 = b.clone();
        b3.extend_from_slice(&[0xC0, 40]);
        assert_eq!(skip_name(&b3, 25).unwrap_err(), WireError::BadPointer);
    }

    /// Random and mutated inputs never panic.
    #[test]
    fn fuzz_no_panic() {
        let mut rng = StdRng::seed_from_u64(0x5eed);
        let base = sample_query();
        let mut buf = Vec::new();
        for i in 0..200_000 {
            buf.clear();
            if i % 2 == 0 {
                let n = rng.random_range(0..80);
                buf.extend((0..n).map(|_| rng.random::<u8>()));
                if buf.len() > 3 {
                    buf[2] &= 0x7f;
                }
            } else {
                buf.extend_from_slice(&base);
                for _ in 0..rng.random_range(1..4) {
                    let at = rng.random_range(0..buf.len());
                    match rng.random_range(0..3) {
                        0 => buf[at] = rng.random(),
                        1 => buf.truncate(at),
                        _ => buf.insert(at, rng.random()),
                    }
                    if buf.is_empty() {
                        break;
                    }
                }
            }
            if let Ok(q) = parse_query(&buf) {
                let mut kb = KeyBuf::new();
                let _ = cache_key(&q, &mut kb);
                assert!(q.question_range().end <= buf.len());
            }
        }
    }
}

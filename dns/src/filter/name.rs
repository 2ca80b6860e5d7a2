//! Names as lists write them and as the wire carries them: normalisation
//! of list entries, and conversions between dotted and wire form.

use std::net::{Ipv4Addr, Ipv6Addr};

/// Longest dotted name (no trailing dot); its wire form is 255 bytes.
pub const MAX_NAME: usize = 253;

/// Most labels a wire name of 255 bytes can hold (plus the root).
pub const MAX_LABELS: usize = 128;

/// Names hosts files map to loopback for the system's own sake: blocking
/// them would break the machine, so hosts and plain lists never do.
const HOSTS_BOILERPLATE: [&str; 12] = [
    "localhost",
    "localhost.localdomain",
    "local",
    "broadcasthost",
    "ip6-localhost",
    "ip6-loopback",
    "ip6-localnet",
    "ip6-mcastprefix",
    "ip6-allnodes",
    "ip6-allrouters",
    "ip6-allhosts",
    "0.0.0.0",
];

/// True for the loopback and multicast names hosts files carry for the
/// system (`localhost`, `ip6-allnodes`, ...), in any case, with or without
/// a trailing dot.
pub fn is_hosts_boilerplate(name: &str) -> bool {
    let name = name.strip_suffix('.').unwrap_or(name);
    HOSTS_BOILERPLATE
        .iter()
        .any(|b| b.eq_ignore_ascii_case(name))
}

/// True when `text` is an IP address (an IPv6 zone like `%lo0` allowed,
/// as macOS hosts files write `fe80::1%lo0`).
pub fn is_address(text: &str) -> bool {
    if text.parse::<Ipv4Addr>().is_ok() {
        return true;
    }
    let v6 = text.split_once('%').map_or(text, |(addr, _)| addr);
    v6.parse::<Ipv6Addr>().is_ok()
}

/// Normalises a list entry: lowercase, no trailing dot, IDNs in punycode.
///
/// Returns `raw` itself when it is already normal (the common case, so a
/// list loads without an allocation per line), else the normal form written
/// into `buf`. The error is a reason for the malformed-line report.
pub fn normalize<'a>(raw: &'a str, buf: &'a mut String) -> Result<&'a str, &'static str> {
    let trimmed = raw.strip_suffix('.').unwrap_or(raw);
    if trimmed.is_ascii() {
        if !trimmed.bytes().any(|b| b.is_ascii_uppercase()) {
            check(trimmed)?;
            return Ok(trimmed);
        }
        buf.clear();
        buf.push_str(trimmed);
        buf.make_ascii_lowercase();
    } else {
        let ascii = idna::domain_to_ascii_cow(trimmed.as_bytes(), idna::AsciiDenyList::EMPTY)
            .map_err(|_| "not a valid international name")?;
        buf.clear();
        buf.push_str(ascii.strip_suffix('.').unwrap_or(&ascii));
    }
    let name: &'a String = buf;
    check(name)?;
    Ok(name)
}

/// Whether a lowercase ASCII name is one a DNS query can ask for.
///
/// Lenient where real lists are odd but harmless: underscores, labels
/// starting or ending with `-`, all-numeric labels and single-label names
/// pass; what could never be a query name does not.
fn check(name: &str) -> Result<(), &'static str> {
    if name.is_empty() {
        return Err("empty name");
    }
    if name.len() > MAX_NAME {
        return Err("name longer than 253 characters");
    }
    if is_address(name) {
        return Err("an address, not a name");
    }
    for label in name.split('.') {
        if label.is_empty() {
            return Err("empty label");
        }
        if label.len() > 63 {
            return Err("label longer than 63 characters");
        }
        for b in label.bytes() {
            match b {
                b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' => {}
                b'*' => return Err("wildcard inside a name"),
                b'/' | b':' | b'^' | b'|' | b'$' | b'#' => return Err("not a DNS rule"),
                _ => return Err("invalid character in a name"),
            }
        }
    }
    Ok(())
}

/// Writes the wire form of a dotted name (no trailing dot; empty is the
/// root) into `out`; `None` when it does not fit in 255 bytes or has an
/// empty or overlong label.
pub fn to_wire<'a>(name: &str, out: &'a mut [u8; 256]) -> Option<&'a [u8]> {
    let mut pos = 0;
    if !name.is_empty() {
        for label in name.split('.') {
            let len = u8::try_from(label.len())
                .ok()
                .filter(|&l| (1..=63).contains(&l))?;
            *out.get_mut(pos)? = len;
            out.get_mut(pos + 1..pos + 1 + label.len())?
                .copy_from_slice(label.as_bytes());
            pos += 1 + label.len();
        }
    }
    *out.get_mut(pos)? = 0;
    out.get(..pos + 1).filter(|w| w.len() <= 255)
}

/// The start of every label of a wire name, first (the whole name) to
/// last, root excluded. Stops at the root, at the end of `wire`, or at a
/// length byte that points past it, so a malformed name yields a prefix.
pub fn label_offsets(wire: &[u8], out: &mut [u8; MAX_LABELS]) -> usize {
    let mut pos = 0usize;
    let mut count = 0;
    while let Some(&len) = wire.get(pos) {
        if len == 0 || count == MAX_LABELS || pos + 1 + usize::from(len) > wire.len() {
            break;
        }
        let Ok(offset) = u8::try_from(pos) else {
            break;
        };
        out[count] = offset;
        count += 1;
        pos += 1 + usize::from(len);
    }
    count
}

/// The dotted text of a wire name, without the trailing dot (empty for the
/// root), as regex rules see it. Bytes are copied as they are.
pub fn wire_to_text<'a>(wire: &[u8], out: &'a mut [u8; 256]) -> &'a [u8] {
    let mut pos = 0usize;
    let mut len_out = 0usize;
    while let Some(&len) = wire.get(pos) {
        let Some(label) = wire.get(pos + 1..pos + 1 + usize::from(len)) else {
            break;
        };
        if len == 0 {
            break;
        }
        let dot = usize::from(len_out > 0);
        let Some(dest) = out.get_mut(len_out + dot..len_out + dot + label.len()) else {
            break;
        };
        dest.copy_from_slice(label);
        if dot == 1 {
            out[len_out] = b'.';
        }
        len_out += dot + label.len();
        pos += 1 + label.len();
    }
    &out[..len_out]
}

/// [`wire_to_text`] as a `String`, for messages (bytes that are not UTF-8
/// are replaced).
pub fn wire_to_string(wire: &[u8]) -> String {
    let mut buf = [0u8; 256];
    String::from_utf8_lossy(wire_to_text(wire, &mut buf)).into_owned()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)] // tests
mod tests {
    use super::*;

    fn norm(raw: &str) -> Result<String, &'static str> {
        let mut buf = String::new();
        normalize(raw, &mut buf).map(str::to_owned)
    }

    #[test]
    fn normalises_case_dot_and_idn() {
        assert_eq!(norm("Ads.Example.COM.").unwrap(), "ads.example.com");
        assert_eq!(norm("ads.example.com").unwrap(), "ads.example.com");
        assert_eq!(norm("bücher.example").unwrap(), "xn--bcher-kva.example");
        assert_eq!(norm("BÜCHER.example.").unwrap(), "xn--bcher-kva.example");
        assert_eq!(norm("_dmarc.example.com").unwrap(), "_dmarc.example.com");
        assert_eq!(norm("-odd-.example.com").unwrap(), "-odd-.example.com");
        assert_eq!(norm("zip").unwrap(), "zip");
    }

    #[test]
    fn borrows_when_already_normal() {
        let raw = String::from("ads.example.com");
        let mut buf = String::new();
        let out = normalize(&raw, &mut buf).unwrap();
        assert_eq!(out.as_ptr(), raw.as_ptr());
    }

    #[test]
    fn rejects_what_cannot_be_a_query_name() {
        assert_eq!(norm("1.2.3.4"), Err("an address, not a name"));
        assert_eq!(norm("::1"), Err("an address, not a name"));
        assert_eq!(norm("a..b"), Err("empty label"));
        assert_eq!(norm("."), Err("empty name"));
        assert_eq!(norm(""), Err("empty name"));
        assert_eq!(norm("a b"), Err("invalid character in a name"));
        assert_eq!(norm("example.com/ads"), Err("not a DNS rule"));
        assert_eq!(norm("example.com:443"), Err("not a DNS rule"));
        assert_eq!(norm("a.*.com"), Err("wildcard inside a name"));
        let long_label = format!("{}.com", "a".repeat(64));
        assert_eq!(norm(&long_label), Err("label longer than 63 characters"));
        let long_name = vec!["abcdefghi"; 26].join(".");
        assert_eq!(long_name.len(), 259);
        assert_eq!(norm(&long_name), Err("name longer than 253 characters"));
        let max = format!("{0}.{0}.{0}.{1}", "a".repeat(63), "b".repeat(61));
        assert_eq!(max.len(), 253);
        assert_eq!(norm(&max).unwrap(), max);
    }

    #[test]
    fn boilerplate_and_addresses() {
        assert!(is_hosts_boilerplate("LocalHost."));
        assert!(is_hosts_boilerplate("0.0.0.0"));
        assert!(!is_hosts_boilerplate("localhost.example"));
        assert!(is_address("fe80::1%lo0"));
        assert!(is_address("0:0:0:0:0:0:0:0"));
        assert!(!is_address("example.com"));
    }

    #[test]
    fn wire_round_trip() {
        let mut buf = [0u8; 256];
        let wire = to_wire("ads.example.com", &mut buf).unwrap().to_vec();
        assert_eq!(wire, b"\x03ads\x07example\x03com\x00");
        assert_eq!(to_wire("", &mut buf).unwrap(), b"\x00");
        assert_eq!(to_wire("a..b", &mut buf), None);
        let mut offsets = [0u8; MAX_LABELS];
        let n = label_offsets(&wire, &mut offsets);
        assert_eq!(&offsets[..n], &[0, 4, 12]);
        let mut text = [0u8; 256];
        assert_eq!(wire_to_text(&wire, &mut text), b"ads.example.com");
        assert_eq!(wire_to_string(b"\x00"), "");
        let max = format!("{0}.{0}.{0}.{1}", "a".repeat(63), "b".repeat(61));
        let wire = to_wire(&max, &mut buf).unwrap();
        assert_eq!(wire.len(), 255);
        assert_eq!(wire_to_text(wire, &mut text), max.as_bytes());
    }

    #[test]
    fn malformed_wire_is_bounded() {
        let mut offsets = [0u8; MAX_LABELS];
        let mut text = [0u8; 256];
        for wire in [
            &b""[..],
            b"\x05ab",
            b"\x03abc",
            b"\x03abc\x40xyz",
            &[1u8; 300],
            &[63u8; 600],
        ] {
            let n = label_offsets(wire, &mut offsets);
            assert!(n <= MAX_LABELS);
            let t = wire_to_text(wire, &mut text);
            assert!(t.len() <= 256);
        }
        assert_eq!(label_offsets(b"\x03abc", &mut offsets), 1);
        assert_eq!(label_offsets(b"\x05ab", &mut offsets), 0);
    }
}

//! Client allow list, checked on every packet before anything else is done
//! for the client.
//!
//! The configured networks are aggregated (overlaps and adjacent networks
//! merged) and stored as sorted, disjoint integer ranges per family, so a
//! check is a binary search over a handful of `u32`/`u128` pairs: no
//! allocation, no string or `IpNet` arithmetic on the hot path.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

/// Networks whose clients may query.
#[derive(Debug, Clone, Default)]
pub struct AllowList {
    /// Sorted, disjoint, non-adjacent inclusive ranges.
    v4: Box<[(u32, u32)]>,
    v6: Box<[(u128, u128)]>,
}

impl AllowList {
    /// Builds the list from networks; duplicates and overlaps are fine.
    ///
    /// IPv4-mapped IPv6 networks (`::ffff:a.b.c.d/n`, n >= 96) are added to
    /// the IPv4 table, since clients with such addresses are checked as IPv4.
    pub fn new<I: IntoIterator<Item = IpNet>>(nets: I) -> Self {
        let mut v4 = Vec::new();
        let mut v6 = Vec::new();
        for net in nets {
            match net {
                IpNet::V4(n) => v4.push(n),
                IpNet::V6(n) => {
                    let mapped = n.network().to_ipv4_mapped();
                    match mapped {
                        Some(a) if n.prefix_len() >= 96 => {
                            if let Ok(n4) = Ipv4Net::new(a, n.prefix_len() - 96) {
                                v4.push(n4.trunc());
                            }
                        }
                        _ => v6.push(n),
                    }
                }
            }
        }
        let v4 = Ipv4Net::aggregate(&v4)
            .into_iter()
            .map(|n| (u32::from(n.network()), u32::from(n.broadcast())))
            .collect::<Vec<_>>();
        let v6 = Ipv6Net::aggregate(&v6)
            .into_iter()
            .map(|n| (u128::from(n.network()), u128::from(n.broadcast())))
            .collect::<Vec<_>>();
        AllowList {
            v4: merge(v4, |x| x.checked_add(1)).into_boxed_slice(),
            v6: merge(v6, |x| x.checked_add(1)).into_boxed_slice(),
        }
    }

    /// The built-in default: loopback (127/8, ::1), RFC 1918, CGNAT
    /// (100.64/10), ULA (fc00::/7) and link-local (169.254/16, fe80::/10).
    /// An appliance must never be an open resolver by default.
    pub fn default_private() -> Self {
        let v4 = [
            (Ipv4Addr::new(127, 0, 0, 0), 8),
            (Ipv4Addr::new(10, 0, 0, 0), 8),
            (Ipv4Addr::new(172, 16, 0, 0), 12),
            (Ipv4Addr::new(192, 168, 0, 0), 16),
            (Ipv4Addr::new(100, 64, 0, 0), 10),
            (Ipv4Addr::new(169, 254, 0, 0), 16),
        ];
        let v6 = [
            (Ipv6Addr::LOCALHOST, 128),
            (Ipv6Addr::new(0xfc00, 0, 0, 0, 0, 0, 0, 0), 7),
            (Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0), 10),
        ];
        let nets = v4
            .into_iter()
            .filter_map(|(a, p)| Ipv4Net::new(a, p).ok().map(IpNet::V4))
            .chain(
                v6.into_iter()
                    .filter_map(|(a, p)| Ipv6Net::new(a, p).ok().map(IpNet::V6)),
            );
        Self::new(nets)
    }

    /// Whether `ip` is inside one of the networks. IPv4-mapped IPv6
    /// addresses (as seen on dual-stack sockets) are checked as IPv4.
    #[inline]
    pub fn allows(&self, ip: IpAddr) -> bool {
        match ip {
            IpAddr::V4(a) => contains(&self.v4, u32::from(a)),
            IpAddr::V6(a) => match a.to_ipv4_mapped() {
                Some(a4) => contains(&self.v4, u32::from(a4)),
                None => contains(&self.v6, u128::from(a)),
            },
        }
    }

    /// True when no client is allowed.
    pub fn is_empty(&self) -> bool {
        self.v4.is_empty() && self.v6.is_empty()
    }

    /// Number of disjoint ranges after aggregation.
    pub fn len(&self) -> usize {
        self.v4.len() + self.v6.len()
    }
}

/// Merges overlapping or adjacent inclusive ranges (aggregation leaves
/// adjacent networks that no single prefix covers as separate entries).
fn merge<T: Copy + Ord>(mut ranges: Vec<(T, T)>, succ: fn(T) -> Option<T>) -> Vec<(T, T)> {
    ranges.sort_unstable();
    let mut out: Vec<(T, T)> = Vec::with_capacity(ranges.len());
    for (s, e) in ranges {
        if let Some(last) = out.last_mut()
            && (s <= last.1 || succ(last.1) == Some(s))
        {
            last.1 = last.1.max(e);
            continue;
        }
        out.push((s, e));
    }
    out
}

#[inline]
fn contains<T: Copy + Ord>(ranges: &[(T, T)], x: T) -> bool {
    // First range starting after x; the candidate is the one before it.
    let i = ranges.partition_point(|r| r.0 <= x);
    i > 0 && ranges.get(i - 1).is_some_and(|r| x <= r.1)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)] // tests
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn default_private() {
        let a = AllowList::default_private();
        for ok in [
            "127.0.0.1",
            "127.255.255.255",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "100.64.0.1",
            "100.127.255.255",
            "169.254.3.4",
            "::1",
            "fd00::1",
            "fc00::1",
            "fe80::1",
            "febf::1",
            "::ffff:192.168.1.1",
            "::ffff:127.0.0.1",
        ] {
            assert!(a.allows(ip(ok)), "{ok}");
        }
        for no in [
            "8.8.8.8",
            "172.32.0.1",
            "172.15.255.255",
            "100.128.0.1",
            "192.169.0.1",
            "11.0.0.0",
            "2001:db8::1",
            "::2",
            "fec0::1",
            "::ffff:8.8.8.8",
            "0.0.0.0",
            "255.255.255.255",
        ] {
            assert!(!a.allows(ip(no)), "{no}");
        }
    }

    #[test]
    fn custom_and_merging() {
        let nets: Vec<IpNet> = [
            "0.0.0.0/1",
            "128.0.0.0/1",
            "2001:db8::/32",
            "::ffff:1.2.3.0/120",
        ]
        .iter()
        .map(|s| s.parse().unwrap())
        .collect();
        let a = AllowList::new(nets);
        assert!(a.allows(ip("0.0.0.0")));
        assert!(a.allows(ip("255.255.255.255")));
        assert!(a.allows(ip("2001:db8:ffff::1")));
        assert!(!a.allows(ip("2001:db9::1")));
        assert_eq!(a.v4.len(), 1);

        let a = AllowList::new(["::ffff:1.2.3.0/120".parse::<IpNet>().unwrap()]);
        assert!(a.allows(ip("1.2.3.4")));
        assert!(a.allows(ip("::ffff:1.2.3.4")));
        assert!(!a.allows(ip("1.2.4.4")));

        let a = AllowList::new([
            "10.0.0.0/24".parse::<IpNet>().unwrap(),
            "10.0.1.0/25".parse().unwrap(),
            "10.0.1.128/25".parse().unwrap(),
            "10.0.2.0/24".parse().unwrap(),
        ]);
        assert_eq!(a.len(), 1);
        assert!(a.allows(ip("10.0.2.255")));
        assert!(!a.allows(ip("10.0.3.0")));

        let a = AllowList::new(Vec::new());
        assert!(a.is_empty());
        assert!(!a.allows(ip("127.0.0.1")));
    }
}

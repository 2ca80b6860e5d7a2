//! Routes as the speaker reasons about them: a prefix and its path
//! attributes, independent of how they came off the wire.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use ipnet::IpNet;

/// A 4-octet AS number (RFC 6793).
pub type Asn = u32;

/// ORIGIN (RFC 4271 5.1.1); lower is preferred.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Origin {
    Igp = 0,
    Egp = 1,
    Incomplete = 2,
}

/// One AS_PATH segment.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Segment {
    Sequence(Vec<Asn>),
    Set(Vec<Asn>),
}

/// AS_PATH, with 4-octet AS numbers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct AsPath {
    pub segments: Vec<Segment>,
}

impl AsPath {
    pub fn sequence(asns: impl IntoIterator<Item = Asn>) -> AsPath {
        let asns: Vec<Asn> = asns.into_iter().collect();
        if asns.is_empty() {
            return AsPath::default();
        }
        AsPath {
            segments: vec![Segment::Sequence(asns)],
        }
    }

    /// The length the decision process compares: each AS of a sequence
    /// counts, a whole set counts one (RFC 4271 9.1.2.2).
    pub fn len(&self) -> usize {
        self.segments
            .iter()
            .map(|s| match s {
                Segment::Sequence(asns) => asns.len(),
                Segment::Set(asns) => usize::from(!asns.is_empty()),
            })
            .sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The AS the route came from: the first of the path.
    pub fn first(&self) -> Option<Asn> {
        match self.segments.first()? {
            Segment::Sequence(asns) => asns.first().copied(),
            Segment::Set(_) => None,
        }
    }

    /// Whether `asn` appears anywhere (loop detection).
    pub fn contains(&self, asn: Asn) -> bool {
        self.segments.iter().any(|s| match s {
            Segment::Sequence(asns) | Segment::Set(asns) => asns.contains(&asn),
        })
    }

    /// The path with `asn` put in front, as an eBGP speaker sends it.
    pub fn prepended(&self, asn: Asn) -> AsPath {
        let mut segments = self.segments.clone();
        match segments.first_mut() {
            Some(Segment::Sequence(asns)) if asns.len() < 255 => asns.insert(0, asn),
            _ => segments.insert(0, Segment::Sequence(vec![asn])),
        }
        AsPath { segments }
    }
}

impl std::fmt::Display for AsPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut first = true;
        for segment in &self.segments {
            let (open, close, asns) = match segment {
                Segment::Sequence(asns) => ("", "", asns),
                Segment::Set(asns) => ("{", "}", asns),
            };
            if !first {
                f.write_str(" ")?;
            }
            first = false;
            let list: Vec<String> = asns.iter().map(ToString::to_string).collect();
            write!(f, "{open}{}{close}", list.join(" "))?;
        }
        Ok(())
    }
}

/// The path attributes the decision process and the kernel need.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PathAttributes {
    pub origin: Origin,
    pub as_path: AsPath,
    pub next_hop: IpAddr,
    pub med: Option<u32>,
    /// Only meaningful on iBGP sessions and inside the speaker.
    pub local_pref: Option<u32>,
    pub communities: Vec<u32>,
}

/// Where a route came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Source {
    /// Originated from this speaker's configuration.
    Local,
    /// Learned from a peer.
    Peer(PeerInfo),
}

/// What the decision process needs to know about a peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PeerInfo {
    pub address: IpAddr,
    pub router_id: Ipv4Addr,
    pub asn: Asn,
    /// The peer is in another AS.
    pub ebgp: bool,
}

/// A candidate route for a prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub prefix: IpNet,
    /// Shared: one UPDATE's attributes serve all its prefixes.
    pub attributes: Arc<PathAttributes>,
    pub source: Source,
}

/// The routing content of one UPDATE, whatever address families it carried.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Update {
    pub withdrawn: Vec<IpNet>,
    pub announced: Vec<IpNet>,
    /// Present when `announced` is not empty.
    pub attributes: Option<Arc<PathAttributes>>,
}

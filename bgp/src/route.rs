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

/// One AS_PATH segment, as built and pushed; `Segments` stores it packed.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Segment {
    Sequence(Vec<Asn>),
    Set(Vec<Asn>),
}

/// A stored segment, borrowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SegmentRef<'a> {
    Sequence(&'a [Asn]),
    Set(&'a [Asn]),
}

impl SegmentRef<'_> {
    pub fn asns(&self) -> &[Asn] {
        match self {
            SegmentRef::Sequence(asns) | SegmentRef::Set(asns) => asns,
        }
    }

    pub fn to_owned(&self) -> Segment {
        match self {
            SegmentRef::Sequence(asns) => Segment::Sequence(asns.to_vec()),
            SegmentRef::Set(asns) => Segment::Set(asns.to_vec()),
        }
    }
}

/// Marks a header word as an AS_SET's; the low bits are the AS count.
const SET: u32 = 1 << 31;
/// Words (segment headers and ASes) kept without an allocation: a
/// sequence of up to four ASes, most paths on the Internet and all of a
/// homelab's.
const INLINE: usize = 5;

/// The segments of a path packed into one run of words, each segment a
/// header word (`SET` flag, AS count) followed by its ASes. Short paths
/// sit inline; longer ones take a single boxed slice. A path is stored
/// once per distinct attribute set, and at a full table with a few
/// hundred thousand distinct paths a `Vec` of `Vec`s (two allocations
/// per path) costs more than the path itself.
#[derive(Clone)]
pub struct Segments(Words);

#[derive(Clone)]
enum Words {
    /// The first `len` words are the path; the rest are zero.
    Inline(u8, [u32; INLINE]),
    /// Longer than `INLINE`, never shorter: one representation per path,
    /// so that equality and hashing can look at the words alone.
    Heap(Box<[u32]>),
}

impl Default for Segments {
    fn default() -> Segments {
        Segments(Words::Inline(0, [0; INLINE]))
    }
}

impl Segments {
    /// A path from its packed words (segment headers from `header`), as
    /// the wire decoder builds it without a `Vec` per segment.
    pub(crate) fn from_words(words: &[u32]) -> Segments {
        if words.len() <= INLINE {
            let mut inline = [0; INLINE];
            inline[..words.len()].copy_from_slice(words);
            Segments(Words::Inline(words.len() as u8, inline))
        } else {
            Segments(Words::Heap(words.into()))
        }
    }

    /// The header word of a segment of `count` ASes (at most `SET - 1`).
    pub(crate) fn header(set: bool, count: usize) -> u32 {
        let flag = if set { SET } else { 0 };
        flag | count.min((SET - 1) as usize) as u32
    }

    fn words(&self) -> &[u32] {
        match &self.0 {
            Words::Inline(len, words) => &words[..usize::from(*len)],
            Words::Heap(words) => words,
        }
    }

    /// Appends a segment. One of more ASes than a header can count is
    /// cut, which no 4096-byte message could carry anyway.
    pub fn push(&mut self, segment: Segment) {
        self.push_words(&segment_words(&segment));
    }

    /// Puts a segment in front.
    pub fn insert_first(&mut self, segment: Segment) {
        let mut words = segment_words(&segment);
        words.extend_from_slice(self.words());
        *self = Segments::from_words(&words);
    }

    fn push_words(&mut self, segment: &[u32]) {
        let mut words = self.words().to_vec();
        words.extend_from_slice(segment);
        *self = Segments::from_words(&words);
    }

    pub fn iter(&self) -> SegmentIter<'_> {
        SegmentIter(self.words())
    }

    pub fn first(&self) -> Option<SegmentRef<'_>> {
        self.iter().next()
    }

    pub fn len(&self) -> usize {
        self.iter().count()
    }

    pub fn is_empty(&self) -> bool {
        self.words().is_empty()
    }
}

fn segment_words(segment: &Segment) -> Vec<u32> {
    let (flag, asns) = match segment {
        Segment::Sequence(asns) => (0, asns),
        Segment::Set(asns) => (SET, asns),
    };
    let asns = &asns[..asns.len().min((SET - 1) as usize)];
    let mut words = Vec::with_capacity(asns.len() + 1);
    words.push(flag | asns.len() as u32);
    words.extend_from_slice(asns);
    words
}

impl FromIterator<Segment> for Segments {
    fn from_iter<I: IntoIterator<Item = Segment>>(segments: I) -> Segments {
        let mut words = Vec::new();
        for segment in segments {
            words.extend_from_slice(&segment_words(&segment));
        }
        Segments::from_words(&words)
    }
}

impl PartialEq for Segments {
    fn eq(&self, other: &Segments) -> bool {
        self.words() == other.words()
    }
}

impl Eq for Segments {}

impl std::hash::Hash for Segments {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.words().hash(state);
    }
}

impl std::fmt::Debug for Segments {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// The segments of a path in order.
#[derive(Debug, Clone)]
pub struct SegmentIter<'a>(&'a [u32]);

impl<'a> Iterator for SegmentIter<'a> {
    type Item = SegmentRef<'a>;

    fn next(&mut self) -> Option<SegmentRef<'a>> {
        let (&header, rest) = self.0.split_first()?;
        let count = ((header & !SET) as usize).min(rest.len());
        let (asns, rest) = rest.split_at(count);
        self.0 = rest;
        Some(if header & SET == 0 {
            SegmentRef::Sequence(asns)
        } else {
            SegmentRef::Set(asns)
        })
    }
}

impl<'a> IntoIterator for &'a Segments {
    type Item = SegmentRef<'a>;
    type IntoIter = SegmentIter<'a>;

    fn into_iter(self) -> SegmentIter<'a> {
        self.iter()
    }
}

/// AS_PATH, with 4-octet AS numbers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct AsPath {
    pub segments: Segments,
}

impl AsPath {
    pub fn sequence(asns: impl IntoIterator<Item = Asn>) -> AsPath {
        let asns: Vec<Asn> = asns.into_iter().collect();
        if asns.is_empty() {
            return AsPath::default();
        }
        AsPath {
            segments: std::iter::once(Segment::Sequence(asns)).collect(),
        }
    }

    /// The length the decision process compares: each AS of a sequence
    /// counts, a whole set counts one (RFC 4271 9.1.2.2).
    pub fn len(&self) -> usize {
        self.segments
            .iter()
            .map(|s| match s {
                SegmentRef::Sequence(asns) => asns.len(),
                SegmentRef::Set(asns) => usize::from(!asns.is_empty()),
            })
            .sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The AS the route came from: the first of the path.
    pub fn first(&self) -> Option<Asn> {
        match self.segments.first()? {
            SegmentRef::Sequence(asns) => asns.first().copied(),
            SegmentRef::Set(_) => None,
        }
    }

    /// Whether `asn` appears anywhere (loop detection).
    pub fn contains(&self, asn: Asn) -> bool {
        self.segments.iter().any(|s| s.asns().contains(&asn))
    }

    /// The path with `asn` put in front, as an eBGP speaker sends it.
    pub fn prepended(&self, asn: Asn) -> AsPath {
        let mut segments = self.segments.clone();
        match segments.first() {
            Some(SegmentRef::Sequence(asns)) if asns.len() < 255 => {
                let mut first = Vec::with_capacity(asns.len() + 1);
                first.push(asn);
                first.extend_from_slice(asns);
                let rest = segments.iter().skip(1).map(|s| s.to_owned());
                segments = std::iter::once(Segment::Sequence(first))
                    .chain(rest)
                    .collect();
            }
            _ => segments.insert_first(Segment::Sequence(vec![asn])),
        }
        AsPath { segments }
    }
}

impl std::fmt::Display for AsPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut first = true;
        for segment in &self.segments {
            let (open, close, asns) = match segment {
                SegmentRef::Sequence(asns) => ("", "", asns),
                SegmentRef::Set(asns) => ("{", "}", asns),
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

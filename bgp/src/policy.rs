//! Import and export policy: prefix lists, an AS-path length limit,
//! attribute rewrites, the RFC 8212 defaults, loop detection and the
//! max-prefix limit. Pure functions over routes; the session driver decides
//! what to do with a verdict.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use ipnet::IpNet;

use crate::error::BgpError;
use crate::route::{Asn, PathAttributes, Route};

/// What a prefix-list entry does with the prefixes it matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    Permit,
    Deny,
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Action::Permit => "permit",
            Action::Deny => "deny",
        })
    }
}

/// `permit|deny PREFIX [ge N] [le M]`, with Cisco/BIRD semantics: a route
/// matches when the entry's prefix covers it and its length is within
/// `ge..=le`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PrefixListEntry {
    action: Action,
    prefix: IpNet,
    ge: u8,
    le: u8,
}

impl PrefixListEntry {
    /// Without `ge` and `le` the entry matches its prefix exactly; `ge`
    /// alone opens the range up to the family's longest prefix; `le` alone
    /// starts it at the entry's own length.
    pub fn new(
        action: Action,
        prefix: IpNet,
        ge: Option<u8>,
        le: Option<u8>,
    ) -> Result<PrefixListEntry, BgpError> {
        if prefix.trunc() != prefix {
            return Err(BgpError::HostBits { prefix });
        }
        let len = prefix.prefix_len();
        let max = prefix.max_prefix_len();
        let (ge, le) = match (ge, le) {
            (None, None) => (len, len),
            (Some(ge), None) => (ge, max),
            (None, Some(le)) => (len, le),
            (Some(ge), Some(le)) => (ge, le),
        };
        if !(len <= ge && ge <= le && le <= max) {
            return Err(BgpError::BadRange { prefix, ge, le });
        }
        Ok(PrefixListEntry {
            action,
            prefix,
            ge,
            le,
        })
    }

    pub fn action(&self) -> Action {
        self.action
    }

    pub fn prefix(&self) -> IpNet {
        self.prefix
    }

    /// The accepted prefix lengths, defaults resolved.
    pub fn lengths(&self) -> std::ops::RangeInclusive<u8> {
        self.ge..=self.le
    }

    pub fn matches(&self, prefix: &IpNet) -> bool {
        // `contains` is false across address families.
        self.lengths().contains(&prefix.prefix_len()) && self.prefix.contains(prefix)
    }
}

impl FromStr for PrefixListEntry {
    type Err = BgpError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let syntax = |reason| BgpError::PrefixListSyntax {
            text: text.to_owned(),
            reason,
        };
        let mut words = text.split_whitespace();
        let action = match words.next() {
            Some("permit") => Action::Permit,
            Some("deny") => Action::Deny,
            _ => return Err(syntax("expected permit or deny first")),
        };
        let prefix: IpNet = words
            .next()
            .ok_or_else(|| syntax("missing prefix"))?
            .parse()
            .map_err(|_| syntax("invalid prefix, expected ADDRESS/LENGTH"))?;
        let (mut ge, mut le) = (None, None);
        while let Some(keyword) = words.next() {
            let slot = match keyword {
                "ge" => &mut ge,
                "le" => &mut le,
                _ => return Err(syntax("expected ge or le after the prefix")),
            };
            if slot.is_some() {
                return Err(syntax("ge or le given twice"));
            }
            let value = words
                .next()
                .and_then(|v| v.parse::<u8>().ok())
                .ok_or_else(|| syntax("ge and le take a prefix length"))?;
            *slot = Some(value);
        }
        PrefixListEntry::new(action, prefix, ge, le)
    }
}

impl fmt::Display for PrefixListEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.action, self.prefix)?;
        let len = self.prefix.prefix_len();
        if self.ge != len {
            write!(f, " ge {}", self.ge)?;
        }
        if self.le != len {
            write!(f, " le {}", self.le)?;
        }
        Ok(())
    }
}

/// Entries in order: the first match decides, no match denies.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct PrefixList {
    entries: Vec<PrefixListEntry>,
}

impl PrefixList {
    pub fn new(entries: Vec<PrefixListEntry>) -> PrefixList {
        PrefixList { entries }
    }

    /// One entry per item, in the `FromStr` syntax.
    pub fn parse<'a>(lines: impl IntoIterator<Item = &'a str>) -> Result<PrefixList, BgpError> {
        let entries = lines
            .into_iter()
            .map(str::parse)
            .collect::<Result<_, _>>()?;
        Ok(PrefixList { entries })
    }

    pub fn entries(&self) -> &[PrefixListEntry] {
        &self.entries
    }

    /// The deciding entry and its index, if any matches.
    pub fn first_match(&self, prefix: &IpNet) -> Option<(usize, &PrefixListEntry)> {
        self.entries
            .iter()
            .enumerate()
            .find(|(_, entry)| entry.matches(prefix))
    }

    pub fn check(&self, prefix: &IpNet) -> Result<(), Rejection> {
        match self.first_match(prefix) {
            Some((_, entry)) if entry.action == Action::Permit => Ok(()),
            Some((index, _)) => Err(Rejection::PrefixDenied { entry: index + 1 }),
            None => Err(Rejection::PrefixNotListed),
        }
    }

    pub fn permits(&self, prefix: &IpNet) -> bool {
        self.check(prefix).is_ok()
    }
}

/// One direction's policy for a session. The default accepts everything
/// and changes nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Policy {
    /// Only prefixes this list permits pass; `None` passes every prefix.
    pub prefixes: Option<PrefixList>,
    /// Longer paths (as `AsPath::len` counts) are rejected.
    pub max_as_path_len: Option<usize>,
    /// On export, only toward iBGP peers: LOCAL_PREF never leaves the AS.
    pub set_local_pref: Option<u32>,
    /// On export this is the only MED an eBGP peer sees (received MEDs
    /// are not propagated to other ASes, RFC 4271 5.1.4).
    pub set_med: Option<u32>,
}

impl Policy {
    pub fn check_prefix(&self, prefix: &IpNet) -> Result<(), Rejection> {
        match &self.prefixes {
            Some(list) => list.check(prefix),
            None => Ok(()),
        }
    }

    pub fn check_attributes(&self, attributes: &PathAttributes) -> Result<(), Rejection> {
        match self.max_as_path_len {
            Some(max) if attributes.as_path.len() > max => Err(Rejection::AsPathTooLong {
                len: attributes.as_path.len(),
                max,
            }),
            _ => Ok(()),
        }
    }

    /// The rewrites, as on import. Returns the same `Arc` when nothing
    /// changes so that routes keep sharing their attributes.
    pub fn rewrite(&self, attributes: &Arc<PathAttributes>) -> Arc<PathAttributes> {
        let local_pref = self.set_local_pref.or(attributes.local_pref);
        let med = self.set_med.or(attributes.med);
        if local_pref == attributes.local_pref && med == attributes.med {
            return Arc::clone(attributes);
        }
        let mut rewritten = PathAttributes::clone(attributes);
        rewritten.local_pref = local_pref;
        rewritten.med = med;
        Arc::new(rewritten)
    }

    /// Checks and rewrites one route; the rejection says why for logs and
    /// `routerctl`.
    pub fn evaluate(&self, route: &Route) -> Result<Route, Rejection> {
        self.check_prefix(&route.prefix)?;
        self.check_attributes(&route.attributes)?;
        Ok(Route {
            attributes: self.rewrite(&route.attributes),
            ..route.clone()
        })
    }
}

/// A session's filter in one direction once RFC 8212 has been applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Filter<'a> {
    AcceptAll,
    RejectAll,
    Apply(&'a Policy),
}

impl<'a> Filter<'a> {
    /// RFC 8212: an eBGP session without a policy imports (or exports)
    /// nothing, so that a forgotten filter cannot leak a table. iBGP
    /// sessions trust the rest of the AS and accept everything.
    pub fn new(ebgp: bool, configured: Option<&'a Policy>) -> Filter<'a> {
        match (configured, ebgp) {
            (Some(policy), _) => Filter::Apply(policy),
            (None, true) => Filter::RejectAll,
            (None, false) => Filter::AcceptAll,
        }
    }

    pub fn check_prefix(&self, prefix: &IpNet) -> Result<(), Rejection> {
        match self {
            Filter::AcceptAll => Ok(()),
            Filter::RejectAll => Err(Rejection::NoPolicy),
            Filter::Apply(policy) => policy.check_prefix(prefix),
        }
    }

    pub fn check_attributes(&self, attributes: &PathAttributes) -> Result<(), Rejection> {
        match self {
            Filter::AcceptAll => Ok(()),
            Filter::RejectAll => Err(Rejection::NoPolicy),
            Filter::Apply(policy) => policy.check_attributes(attributes),
        }
    }

    pub fn policy(&self) -> Option<&'a Policy> {
        match self {
            Filter::Apply(policy) => Some(policy),
            Filter::AcceptAll | Filter::RejectAll => None,
        }
    }
}

/// Everything a session applies to what it receives. Split into an
/// attribute part and a prefix part because one UPDATE shares its
/// attributes among hundreds of prefixes: the attribute part runs once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Import<'a> {
    local_asn: Asn,
    ebgp: bool,
    filter: Filter<'a>,
}

impl<'a> Import<'a> {
    pub fn new(local_asn: Asn, ebgp: bool, policy: Option<&'a Policy>) -> Import<'a> {
        Import {
            local_asn,
            ebgp,
            filter: Filter::new(ebgp, policy),
        }
    }

    /// Loop detection, the policy's attribute checks and its rewrites.
    pub fn attributes(
        &self,
        attributes: &Arc<PathAttributes>,
    ) -> Result<Arc<PathAttributes>, Rejection> {
        if attributes.as_path.contains(self.local_asn) {
            return Err(Rejection::Loop(self.local_asn));
        }
        self.filter.check_attributes(attributes)?;
        // RFC 4271 5.1.5: LOCAL_PREF from an external peer is ignored.
        let stripped;
        let attributes = if self.ebgp && attributes.local_pref.is_some() {
            let mut copy = PathAttributes::clone(attributes);
            copy.local_pref = None;
            stripped = Arc::new(copy);
            &stripped
        } else {
            attributes
        };
        Ok(match self.filter.policy() {
            Some(policy) => policy.rewrite(attributes),
            None => Arc::clone(attributes),
        })
    }

    pub fn prefix(&self, prefix: &IpNet) -> Result<(), Rejection> {
        self.filter.check_prefix(prefix)
    }

    pub fn evaluate(&self, route: &Route) -> Result<Route, Rejection> {
        self.prefix(&route.prefix)?;
        let attributes = self.attributes(&route.attributes)?;
        Ok(Route {
            attributes,
            ..route.clone()
        })
    }

    pub fn import(&self, route: &Route) -> Option<Route> {
        self.evaluate(route).ok()
    }
}

/// Why a route was not imported or not exported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Rejection {
    /// An eBGP session with no policy in this direction (RFC 8212).
    NoPolicy,
    /// The AS path already holds our AS.
    Loop(Asn),
    /// Denied by the prefix-list entry with this 1-based number.
    PrefixDenied {
        entry: usize,
    },
    /// No prefix-list entry matched.
    PrefixNotListed,
    AsPathTooLong {
        len: usize,
        max: usize,
    },
    /// Export: the route came from this peer.
    SplitHorizon,
    /// Export: learned over iBGP, and iBGP peers are not re-advertised to
    /// each other without route reflection.
    IbgpToIbgp,
    /// Export: the eBGP peer's AS is in the path, so it would drop it.
    PeerAsInPath(Asn),
    /// Export: no address of ours in this family to put as next hop.
    NoNextHop {
        ipv6: bool,
    },
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rejection::NoPolicy => f.write_str("eBGP session without a policy (RFC 8212)"),
            Rejection::Loop(asn) => write!(f, "AS path contains our AS {asn}"),
            Rejection::PrefixDenied { entry } => write!(f, "denied by prefix-list entry {entry}"),
            Rejection::PrefixNotListed => f.write_str("no prefix-list entry matches"),
            Rejection::AsPathTooLong { len, max } => {
                write!(f, "AS path length {len} is over the limit of {max}")
            }
            Rejection::SplitHorizon => f.write_str("learned from this peer"),
            Rejection::IbgpToIbgp => f.write_str("iBGP-learned, not sent to iBGP peers"),
            Rejection::PeerAsInPath(asn) => write!(f, "peer AS {asn} is in the AS path"),
            Rejection::NoNextHop { ipv6 } => write!(
                f,
                "no local {} address for next hop",
                if *ipv6 { "IPv6" } else { "IPv4" }
            ),
        }
    }
}

/// The outcome of the max-prefix check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrefixLimit {
    Within,
    /// The session must be closed with Cease, subcode 1 "Maximum Number of
    /// Prefixes Reached" (RFC 4486).
    Exceeded {
        accepted: usize,
        limit: usize,
    },
}

/// `accepted` counts prefixes after import policy (the Adj-RIB-In's size):
/// a peer is not punished for routes we filter anyway.
pub fn check_prefix_limit(accepted: usize, limit: Option<usize>) -> PrefixLimit {
    match limit {
        Some(limit) if accepted > limit => PrefixLimit::Exceeded { accepted, limit },
        _ => PrefixLimit::Within,
    }
}

#[cfg(test)]
#[path = "policy_tests.rs"]
mod tests;

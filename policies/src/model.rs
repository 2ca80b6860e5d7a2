//! The checked policy: zones, zone pair policies, rules, address sets and
//! port forwards, each with where it was written.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use serde::{Deserialize, Serialize};

/// The name rules use for the router itself as a destination.
pub const ROUTER: &str = "router";
/// The name that matches every zone in `from` and `to`.
pub const ANY_ZONE: &str = "any";
/// The SSH port the management zone must reach when none is given.
pub const DEFAULT_SSH_PORT: u16 = 22;

/// Where something was written: file, 1-based line and column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub path: Arc<PathBuf>,
    pub line: usize,
    pub column: usize,
}

impl Serialize for Location {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.path.display(), self.line, self.column)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Accept,
    Drop,
    Reject,
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Action::Accept => "accept",
            Action::Drop => "drop",
            Action::Reject => "reject",
        })
    }
}

/// The whole policy, merged from every file of the directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Policy {
    pub management: Option<Management>,
    pub zones: Vec<Zone>,
    pub pairs: Vec<PairPolicy>,
    pub address_sets: Vec<AddressSet>,
    pub rules: Vec<Rule>,
    pub port_forwards: Vec<PortForward>,
}

impl Policy {
    pub fn zone(&self, name: &str) -> Option<&Zone> {
        self.zones.iter().find(|zone| zone.name == name)
    }

    pub fn address_set(&self, name: &str) -> Option<&AddressSet> {
        self.address_sets.iter().find(|set| set.name == name)
    }

    /// The networks address conditions stand for, sets expanded.
    pub fn networks(&self, wanted: &[AddressMatch]) -> Vec<IpNet> {
        wanted
            .iter()
            .flat_map(|wanted| match wanted {
                AddressMatch::Net(net) => vec![*net],
                AddressMatch::Set(name) => self
                    .address_set(name)
                    .map(|set| set.addresses.clone())
                    .unwrap_or_default(),
            })
            .collect()
    }

    /// The zone whose subnets hold `addr`.
    pub fn zone_of_address(&self, addr: IpAddr) -> Option<&Zone> {
        self.zones
            .iter()
            .find(|zone| zone.subnets().any(|net| net.contains(&addr)))
    }

    /// Rules by the zone pair (or zone and router) they apply to, each
    /// group in policy order. Rules within one zone are left out: that
    /// traffic never passes the router.
    pub fn rules_by_pair(&self) -> BTreeMap<PairKey, Vec<&Rule>> {
        let mut groups: BTreeMap<PairKey, Vec<&Rule>> = BTreeMap::new();
        for rule in &self.rules {
            for from in &rule.from {
                for to in &rule.to {
                    let to = match to {
                        Destination::Router => None,
                        Destination::Zone(zone) if zone == from => continue,
                        Destination::Zone(zone) => Some(zone.clone()),
                    };
                    groups
                        .entry(PairKey {
                            from: from.clone(),
                            to,
                        })
                        .or_default()
                        .push(rule);
                }
            }
        }
        groups
    }

    /// The policy for traffic from `from` to `to`, when one is declared.
    pub fn pair(&self, from: &str, to: &str) -> Option<&PairPolicy> {
        self.pairs
            .iter()
            .find(|pair| pair.from == from && pair.to == to)
    }
}

/// A zone and where its traffic goes: another zone, or (`None`) the router.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PairKey {
    pub from: String,
    pub to: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Management {
    pub zone: String,
    pub ssh_port: u16,
    pub at: Location,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Vlan {
    pub parent: String,
    pub id: u16,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Zone {
    pub name: String,
    pub description: String,
    /// Set for a zone on a VLAN of `parent`; its interface is `parent.id`.
    pub vlan: Option<Vlan>,
    pub interface: String,
    /// The router's addresses on the zone, with the subnet's prefix length.
    pub ipv4: Vec<Ipv4Net>,
    pub ipv6: Vec<Ipv6Net>,
    pub input: Action,
    pub forward: Action,
    pub masquerade: bool,
    pub intercept_dns: bool,
    pub at: Location,
}

impl Zone {
    /// The zone's subnets, derived from the router's addresses.
    pub fn subnets(&self) -> impl Iterator<Item = IpNet> + '_ {
        self.ipv4
            .iter()
            .map(|net| IpNet::V4(net.trunc()))
            .chain(self.ipv6.iter().map(|net| IpNet::V6(net.trunc())))
    }

    /// The router's own addresses with their prefix lengths.
    pub fn router_addresses(&self) -> impl Iterator<Item = IpNet> + '_ {
        self.ipv4
            .iter()
            .map(|net| IpNet::V4(*net))
            .chain(self.ipv6.iter().map(|net| IpNet::V6(*net)))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PairPolicy {
    pub from: String,
    pub to: String,
    pub action: Action,
    pub at: Location,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AddressSet {
    pub name: String,
    pub addresses: Vec<IpNet>,
    pub at: Location,
}

/// Where a rule's traffic goes: the router itself or a zone.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Destination {
    Router,
    Zone(String),
}

impl fmt::Display for Destination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Destination::Router => f.write_str(ROUTER),
            Destination::Zone(zone) => f.write_str(zone),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    Tcp,
    Udp,
}

impl Transport {
    pub fn name(self) -> &'static str {
        match self {
            Transport::Tcp => "tcp",
            Transport::Udp => "udp",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum IcmpFamily {
    V4,
    V6,
}

/// What a rule matches above the network layer.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Service {
    Ports {
        transport: Transport,
        first: u16,
        last: u16,
    },
    Icmp {
        family: IcmpFamily,
        /// nft's name for the type, e.g. `echo-request`.
        kind: String,
    },
}

impl Service {
    /// Whether every packet `other` matches, this matches too.
    pub fn covers(&self, other: &Service) -> bool {
        match (self.port_range(), other.port_range()) {
            (Some((t1, f1, l1)), Some((t2, f2, l2))) => t1 == t2 && f1 <= f2 && l2 <= l1,
            _ => self == other,
        }
    }

    /// Whether some packet matches both.
    pub fn overlaps(&self, other: &Service) -> bool {
        match (self.port_range(), other.port_range()) {
            (Some((t1, f1, l1)), Some((t2, f2, l2))) => t1 == t2 && f1 <= l2 && f2 <= l1,
            _ => self == other,
        }
    }

    fn port_range(&self) -> Option<(Transport, u16, u16)> {
        match self {
            Service::Ports {
                transport,
                first,
                last,
            } => Some((*transport, *first, *last)),
            Service::Icmp { .. } => None,
        }
    }
}

impl fmt::Display for Service {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Service::Ports {
                transport,
                first,
                last,
            } if first == last => write!(f, "{}/{first}", transport.name()),
            Service::Ports {
                transport,
                first,
                last,
            } => write!(f, "{}/{first}-{last}", transport.name()),
            Service::Icmp {
                family: IcmpFamily::V4,
                kind,
            } => write!(f, "icmp/{kind}"),
            Service::Icmp {
                family: IcmpFamily::V6,
                kind,
            } => write!(f, "icmpv6/{kind}"),
        }
    }
}

/// An address condition: a network or a named set.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AddressMatch {
    Net(IpNet),
    Set(String),
}

impl fmt::Display for AddressMatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AddressMatch::Net(net) => write!(f, "{net}"),
            AddressMatch::Set(name) => write!(f, "@{name}"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Per {
    Second,
    Minute,
    Hour,
    Day,
}

impl Per {
    pub fn name(self) -> &'static str {
        match self {
            Per::Second => "second",
            Per::Minute => "minute",
            Per::Hour => "hour",
            Per::Day => "day",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct Limit {
    pub rate: u32,
    pub per: Per,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rule {
    pub name: String,
    /// Source zones, expanded (`any` becomes every zone).
    pub from: Vec<String>,
    pub to: Vec<Destination>,
    /// Empty: every protocol.
    pub services: Vec<Service>,
    pub source: Vec<AddressMatch>,
    pub destination: Vec<AddressMatch>,
    pub action: Action,
    pub log: Option<String>,
    pub limit: Option<Limit>,
    pub at: Location,
}

impl Rule {
    /// A rule is plain when it only names zones, services and an action:
    /// such rules become elements of verdict maps rather than rules.
    pub fn is_plain(&self) -> bool {
        self.source.is_empty()
            && self.destination.is_empty()
            && self.log.is_none()
            && self.limit.is_none()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PortForward {
    pub name: String,
    pub from: String,
    pub transport: Transport,
    pub port: u16,
    pub to: IpAddr,
    pub to_port: u16,
    pub at: Location,
}

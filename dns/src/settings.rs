//! Checked settings of the DNS service.
//!
//! These are the validated form of the `[dns]` section of the appliance's
//! configuration: the daemon parses and checks its TOML file, then hands the
//! resolver only values that are already known to be good. Defaults for
//! every field live here, in [`DnsSettings::default`] and friends, and
//! nowhere else.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use hickory_proto::rr::Name;
use ipnet::IpNet;

/// Whether misses are resolved from the root or sent to upstreams.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Recursive,
    Forward,
}

/// The DNS service as configured.
#[derive(Debug, Clone, PartialEq)]
pub struct DnsSettings {
    pub listen: Vec<SocketAddr>,
    pub allow: Vec<IpNet>,
    pub mode: Mode,
    /// UDP worker threads per listen address; 0 means one per core.
    pub workers: usize,
    pub max_udp_payload: u16,
    /// Replies to one client socket of equal size leave as one segmented
    /// send (UDP GSO) when the route allows it.
    pub udp_segmentation: bool,
    pub rate_limit_qps: u32,
    pub rate_limit_burst: u32,
    pub cache: CacheSettings,
    pub recursion: RecursionSettings,
    pub upstreams: Vec<Upstream>,
    pub forward_zones: Vec<ForwardZone>,
    pub local_records: Vec<LocalRecord>,
    pub filter: FilterSettings,
    /// Listen addresses that come and go (VRRP virtual addresses): bound
    /// with IP_FREEBIND, so the service starts and answers on them as soon
    /// as the address arrives.
    pub floating: Vec<IpAddr>,
}

/// Filtering as configured: which lists exist, the groups that pick among
/// them, and the zones that key the groups.
#[derive(Debug, Clone, PartialEq)]
pub struct FilterSettings {
    /// In configuration order; a list's position is its index in the
    /// compiled set.
    pub lists: Vec<FilterList>,
    /// `groups[0]` is the default group, for clients no other group claims.
    pub groups: Vec<GroupSettings>,
    /// The policy zones and their networks: a client's zone is the one
    /// whose network holds its address.
    pub zones: Vec<ZoneNetworks>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilterList {
    pub name: String,
    /// Domain rules match the name only, not its subdomains.
    pub exact: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZoneNetworks {
    pub name: String,
    pub networks: Vec<IpNet>,
}

/// A filtering group: the lists and answers for a set of clients.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupSettings {
    pub name: String,
    /// Policy zones whose clients belong here.
    pub zones: Vec<String>,
    /// Client addresses or networks named explicitly; they win over zones.
    pub clients: Vec<IpNet>,
    /// Names of the lists in [`FilterSettings::lists`] this group uses.
    pub lists: Vec<String>,
    pub block_mode: BlockMode,
    /// TTL of blocked answers, in seconds.
    pub block_ttl: u32,
    /// Rewrite the common search engines and video sites to their
    /// enforced safe-search addresses.
    pub safe_search: bool,
    /// `None`: the service's own resolution (recursion or its upstreams).
    pub upstreams: Option<Vec<Upstream>>,
}

/// What a blocked name gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlockMode {
    NxDomain,
    /// `0.0.0.0` for A, `::` for AAAA, no data for other types.
    NullAddress,
    Refused,
    /// These addresses for A and AAAA (no data for a family left empty).
    Address {
        v4: Vec<Ipv4Addr>,
        v6: Vec<Ipv6Addr>,
    },
}

/// The default group's name.
pub const DEFAULT_GROUP: &str = "default";

impl Default for GroupSettings {
    fn default() -> Self {
        Self {
            name: DEFAULT_GROUP.to_string(),
            zones: Vec::new(),
            clients: Vec::new(),
            lists: Vec::new(),
            block_mode: BlockMode::NullAddress,
            block_ttl: 10,
            safe_search: false,
            upstreams: None,
        }
    }
}

impl Default for FilterSettings {
    fn default() -> Self {
        Self {
            lists: Vec::new(),
            groups: vec![GroupSettings::default()],
            zones: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct CacheSettings {
    pub max_entries: usize,
    pub min_ttl: u32,
    pub max_ttl: u32,
    pub prefetch: bool,
    pub serve_stale: bool,
    /// How long past expiry an entry may still be served when resolution fails.
    pub max_stale: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RecursionSettings {
    /// `None`: the IANA root servers compiled in.
    pub root_hints: Option<PathBuf>,
    pub dnssec: bool,
    /// `None`: the IANA root key compiled into hickory.
    pub trust_anchor: Option<PathBuf>,
    /// Strict QNAME minimisation when true, relaxed when false.
    pub qname_minimisation: bool,
    pub case_randomisation: bool,
    pub allow_servers: Vec<IpNet>,
}

/// How an upstream is spoken to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// UDP, retried over TCP when the answer is truncated.
    Udp,
    Tcp,
    /// DNS over TLS (RFC 7858).
    Tls,
    /// DNS over HTTPS (RFC 8484), HTTP/2 POST to `/dns-query`.
    Https,
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Udp => "udp",
            Protocol::Tcp => "tcp",
            Protocol::Tls => "tls",
            Protocol::Https => "https",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Upstream {
    pub address: SocketAddr,
    pub protocol: Protocol,
    /// Name checked against the server's certificate (TLS and HTTPS).
    pub tls_name: Option<String>,
    /// Extra PEM trust roots for a private TLS or HTTPS upstream.
    pub ca_file: Option<PathBuf>,
}

impl Upstream {
    /// How the upstream is shown in status and logs, e.g. `tls://1.1.1.1:853`.
    pub fn label(&self) -> String {
        format!("{}://{}", self.protocol.as_str(), self.address)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ForwardZone {
    pub zone: Name,
    pub upstreams: Vec<Upstream>,
}

/// The data of a local record.
#[derive(Debug, Clone, PartialEq)]
pub enum LocalData {
    A(Ipv4Addr),
    Aaaa(Ipv6Addr),
    Cname(Name),
    Txt(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct LocalRecord {
    pub name: Name,
    pub data: LocalData,
    pub ttl: u32,
}

impl DnsSettings {
    /// True when `other` would answer every question the same way, so a
    /// cache filled under one is valid under the other. Listen addresses,
    /// allow lists and rate limits do not change answers; cache TTL clamps
    /// are applied at insertion, so entries stay within the old ones.
    pub fn same_answers(&self, other: &DnsSettings) -> bool {
        self.mode == other.mode
            && self.recursion == other.recursion
            && self.upstreams == other.upstreams
            && self.forward_zones == other.forward_zones
            && self.local_records == other.local_records
            && self.views() == other.views()
    }

    /// The distinct upstream sets of the groups, in group order: a group's
    /// answers come from view 0 (the service's own resolution) or from
    /// view `i + 1`, the `i`-th entry here.
    pub fn views(&self) -> Vec<&[Upstream]> {
        let mut views: Vec<&[Upstream]> = Vec::new();
        for group in &self.filter.groups {
            if let Some(upstreams) = &group.upstreams
                && !views.contains(&upstreams.as_slice())
            {
                views.push(upstreams);
            }
        }
        views
    }

    /// The view a group's questions are resolved in (see [`Self::views`]).
    pub fn view_of(&self, group: &GroupSettings) -> u8 {
        let Some(upstreams) = &group.upstreams else {
            return 0;
        };
        self.views()
            .iter()
            .position(|v| *v == upstreams.as_slice())
            .and_then(|i| u8::try_from(i + 1).ok())
            .unwrap_or(0)
    }
}

/// How long one upstream or authoritative exchange may take before the
/// next upstream is tried or stale data is served.
pub const UPSTREAM_TIMEOUT: Duration = Duration::from_millis(1500);

/// The default allow list: loopback, RFC 1918, CGNAT, ULA and link-local.
pub fn default_allow() -> Vec<IpNet> {
    [
        "127.0.0.0/8",
        "::1/128",
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "100.64.0.0/10",
        "fc00::/7",
        "169.254.0.0/16",
        "fe80::/10",
    ]
    .iter()
    .filter_map(|s| s.parse().ok())
    .collect()
}

impl Default for CacheSettings {
    fn default() -> Self {
        Self {
            max_entries: 100_000,
            min_ttl: 0,
            max_ttl: 86_400,
            prefetch: true,
            serve_stale: true,
            max_stale: 86_400,
        }
    }
}

impl Default for RecursionSettings {
    fn default() -> Self {
        Self {
            root_hints: None,
            dnssec: true,
            trust_anchor: None,
            qname_minimisation: true,
            case_randomisation: true,
            allow_servers: Vec::new(),
        }
    }
}

impl Default for DnsSettings {
    fn default() -> Self {
        Self {
            listen: vec![
                SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 53),
                SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), 53),
            ],
            allow: default_allow(),
            mode: Mode::Recursive,
            workers: 0,
            max_udp_payload: 1232,
            udp_segmentation: true,
            rate_limit_qps: 200,
            rate_limit_burst: 400,
            cache: CacheSettings::default(),
            recursion: RecursionSettings::default(),
            upstreams: Vec::new(),
            forward_zones: Vec::new(),
            local_records: Vec::new(),
            filter: FilterSettings::default(),
            floating: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_resolution_settings_invalidate_the_cache() {
        let base = DnsSettings::default();
        let mut tuned = base.clone();
        tuned.allow.clear();
        tuned.rate_limit_qps = 0;
        tuned.listen.truncate(1);
        assert!(base.same_answers(&tuned));
        let mut local = base.clone();
        local.local_records.push(LocalRecord {
            name: Name::root(),
            data: LocalData::Txt("x".into()),
            ttl: 1,
        });
        assert!(!base.same_answers(&local));
        let mut validating = base.clone();
        validating.recursion.dnssec = false;
        assert!(!base.same_answers(&validating));
    }
}

//! The configuration file as written: serde structs that mirror the TOML.
//!
//! Values whose syntax serde can check (addresses, networks, enums) are
//! typed here, so a typo is reported by the TOML parser with its line and
//! column. Everything that needs more than syntax is checked in
//! [`super::check`], using the spans kept by [`Spanned`].

use std::net::SocketAddr;
use std::path::PathBuf;

use ipnet::IpNet;
use serde::Deserialize;
use toml::Spanned;

/// The whole file. Every section may be left out.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// The DNS service.
    #[serde(default)]
    pub dns: RawDns,
    /// The control API that `routerctl` talks to.
    #[serde(default)]
    pub control: RawControl,
    /// The Prometheus endpoint.
    #[serde(default)]
    pub metrics: RawMetrics,
    /// Zones and firewall policies; absent: routerd leaves nftables alone.
    pub policies: Option<RawPolicies>,
    /// WireGuard tunnels; absent: routerd leaves WireGuard alone.
    #[serde(default)]
    pub wireguard: RawWireguard,
    /// The BGP speaker; absent: no BGP.
    pub bgp: Option<Spanned<RawBgp>>,
    /// VRRP floating addresses; absent: none.
    pub vrrp: Option<Spanned<RawVrrp>>,
    /// The other node of a primary/standby pair; absent: a single node.
    pub pair: Option<Spanned<RawPair>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPair {
    /// "primary" (serves its configuration) or "standby" (pulls it).
    pub role: Spanned<String>,
    /// `ip:port` on the management zone where this node serves its
    /// configuration to the other; required on the primary.
    pub listen: Option<Spanned<SocketAddr>>,
    /// The other node's `listen`; required on the standby.
    pub peer: Option<Spanned<SocketAddr>>,
    /// The shared token, in a file of mode 0600 (same on both nodes).
    pub token_file: Spanned<PathBuf>,
    /// How often the standby asks the primary for its version.
    pub interval: Option<Spanned<String>>,
    /// Where the standby keeps the primary's copies.
    pub state_dir: Option<PathBuf>,
    /// This node's own addresses on the policy's zones, replacing those
    /// the (shared) policy files give: `{ admin = ["192.168.10.3/24"] }`.
    pub zone_addresses: Option<Spanned<std::collections::BTreeMap<String, Vec<IpNet>>>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDns {
    /// Addresses served over UDP and TCP.
    pub listen: Option<Spanned<Vec<SocketAddr>>>,
    /// Client networks allowed to query; others get REFUSED.
    pub allow: Option<Vec<IpNet>>,
    /// Recursion from the roots, or forwarding to `upstreams`.
    pub mode: Option<Spanned<RawMode>>,
    /// UDP worker threads; 0 means one per core.
    pub workers: Option<Spanned<usize>>,
    /// Largest UDP answer sent (and EDNS0 payload size advertised).
    pub max_udp_payload: Option<Spanned<u16>>,
    /// Send equal-sized answers to one client socket as one segmented
    /// (UDP GSO) send.
    pub udp_segmentation: Option<bool>,
    /// Per-client queries per second; 0 disables the limit.
    pub rate_limit_qps: Option<u32>,
    /// Per-client burst allowance on top of the rate.
    pub rate_limit_burst: Option<Spanned<u32>>,
    /// The answer cache.
    #[serde(default)]
    pub cache: RawCache,
    /// Recursion from the root hints.
    #[serde(default)]
    pub recursion: RawRecursion,
    /// Upstreams for forward mode, tried in order.
    #[serde(default)]
    pub upstreams: Vec<Spanned<RawUpstream>>,
    /// Zones forwarded to their own upstreams whatever the mode.
    #[serde(default)]
    pub forward_zones: Vec<Spanned<RawForwardZone>>,
    /// Records answered locally.
    #[serde(default)]
    pub local_records: Vec<Spanned<RawLocalRecord>>,
    /// Blocklists, allowlists and the groups that use them.
    #[serde(default)]
    pub filter: RawFilter,
    /// The query log.
    #[serde(default)]
    pub query_log: RawQueryLog,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFilter {
    /// Where the last good copy of every list is kept.
    pub lists_dir: Option<PathBuf>,
    /// How often URL lists are fetched again, e.g. "24h", unless a list says.
    pub refresh: Option<Spanned<String>>,
    /// A new copy with this much fewer rules than the last is refused.
    pub max_shrink_percent: Option<Spanned<u8>>,
    /// Largest list accepted, in MiB.
    pub max_list_mb: Option<Spanned<u64>>,
    #[serde(default)]
    pub lists: Vec<Spanned<RawList>>,
    #[serde(default)]
    pub groups: Vec<Spanned<RawGroup>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawList {
    /// Letters, digits, `-` and `_`; groups refer to the list by it.
    pub name: Spanned<String>,
    /// An http:// or https:// address.
    pub url: Option<Spanned<String>>,
    /// A local file.
    pub path: Option<Spanned<PathBuf>>,
    /// Extra PEM trust roots for an https list on a private server.
    pub ca_file: Option<PathBuf>,
    /// Rules match the name only, not its subdomains.
    #[serde(default)]
    pub exact: bool,
    /// Overrides `[dns.filter] refresh`.
    pub refresh: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawGroup {
    /// `default` configures the group of clients no other group claims.
    pub name: Spanned<String>,
    /// Policy zones whose clients are in the group.
    #[serde(default)]
    pub zones: Vec<Spanned<String>>,
    /// Client addresses ("192.168.40.20") or networks ("192.168.40.16/28"),
    /// which win over zones.
    #[serde(default)]
    pub clients: Vec<Spanned<String>>,
    /// Names of `[[dns.filter.lists]]`.
    #[serde(default)]
    pub lists: Vec<Spanned<String>>,
    /// nxdomain, null, refused or address.
    pub block_mode: Option<RawBlockMode>,
    /// The answers of block_mode = "address".
    pub block_addresses: Option<Spanned<Vec<std::net::IpAddr>>>,
    /// TTL of blocked answers, seconds.
    pub block_ttl: Option<u32>,
    /// Enforce safe search on the common search engines and video sites.
    pub safe_search: Option<bool>,
    /// Upstreams for this group's queries instead of the service's own.
    pub upstreams: Option<Vec<RawUpstream>>,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum RawBlockMode {
    Nxdomain,
    Null,
    Refused,
    Address,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawQueryLog {
    /// Record queries at all.
    pub enabled: Option<bool>,
    /// The SQLite file; "" keeps the log in memory only.
    pub path: Option<PathBuf>,
    /// Days of history kept; 0 keeps it until the size cap.
    pub retention_days: Option<u32>,
    /// Cap of the database file, in MiB.
    pub max_size_mb: Option<Spanned<u64>>,
    /// Queries kept in memory for live viewing.
    pub memory_entries: Option<Spanned<usize>>,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum RawMode {
    Recursive,
    Forward,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCache {
    /// Entries per worker replica.
    pub max_entries: Option<Spanned<usize>>,
    /// Lower clamp of cached TTLs, in seconds.
    pub min_ttl: Option<u32>,
    /// Upper clamp of cached TTLs, in seconds.
    pub max_ttl: Option<Spanned<u32>>,
    /// Refresh popular entries before they expire.
    pub prefetch: Option<bool>,
    /// Serve expired entries when resolution fails (RFC 8767).
    pub serve_stale: Option<bool>,
    /// How long past expiry an entry may be served, in seconds.
    pub max_stale: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRecursion {
    /// Root hints in zone-file format; default: the IANA root servers.
    pub root_hints: Option<Spanned<PathBuf>>,
    /// Validate DNSSEC.
    pub dnssec: Option<bool>,
    /// DNSKEY or DS records of the root in zone-file format.
    pub trust_anchor: Option<Spanned<PathBuf>>,
    /// Ask each server only for the next label (RFC 9156): strict when
    /// true, relaxed (falls back to the full name) when false.
    pub qname_minimisation: Option<bool>,
    /// Randomise the case of outgoing names (0x20) against spoofing.
    pub case_randomisation: Option<bool>,
    /// Private networks whose authoritative servers may be queried.
    pub allow_servers: Option<Vec<IpNet>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawUpstream {
    /// `ip:port` of the upstream.
    pub address: SocketAddr,
    /// udp, tcp, tls or https.
    #[serde(default = "default_protocol")]
    pub protocol: RawProtocol,
    /// Certificate name for tls and https.
    pub tls_name: Option<String>,
    /// Extra PEM trust roots for tls and https.
    pub ca_file: Option<PathBuf>,
}

fn default_protocol() -> RawProtocol {
    RawProtocol::Udp
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum RawProtocol {
    Udp,
    Tcp,
    Tls,
    Https,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawForwardZone {
    /// The zone, e.g. `home.arpa` or `168.192.in-addr.arpa`.
    pub zone: String,
    /// Where its queries go, tried in order.
    pub upstreams: Vec<RawUpstream>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLocalRecord {
    /// Owner name, e.g. `nas.home.arpa`.
    pub name: Spanned<String>,
    /// A, AAAA, CNAME or TXT.
    #[serde(rename = "type")]
    pub rtype: RawRecordType,
    /// Address, target name or text, as the type requires.
    pub value: Spanned<String>,
    /// Seconds.
    pub ttl: Option<u32>,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "UPPERCASE")]
pub enum RawRecordType {
    A,
    Aaaa,
    Cname,
    Txt,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawControl {
    /// Path of the control socket.
    pub socket: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPolicies {
    /// The directory of policy files (`*.toml`, merged in name order).
    pub dir: Option<Spanned<PathBuf>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMetrics {
    /// `ip:port` to serve `/metrics` on; unset: no listener.
    pub listen: Option<SocketAddr>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawWireguard {
    /// auto (kernel when it has WireGuard, else wireguard-go), kernel or userspace.
    pub backend: Option<RawWgBackend>,
    /// The routing table routerd owns for tunnel routes.
    pub route_table: Option<Spanned<u32>>,
    /// Priority of the rule that sends lookups to `route_table`.
    pub rule_priority: Option<u32>,
    /// The wireguard-go binary for the userspace backend.
    pub userspace_binary: Option<PathBuf>,
    #[serde(default)]
    pub tunnels: Vec<Spanned<RawTunnel>>,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum RawWgBackend {
    Auto,
    Kernel,
    Userspace,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTunnel {
    /// The interface name, at most 15 bytes.
    pub interface: Spanned<String>,
    /// Base64 private key (`routerctl wg genkey`), mode 0600 or stricter.
    pub private_key_file: Spanned<PathBuf>,
    /// UDP port; unset: the kernel picks one (fine for a site that only dials out).
    pub listen_port: Option<Spanned<u16>>,
    /// The router's addresses on the tunnel, with prefix length.
    #[serde(default)]
    pub addresses: Vec<IpNet>,
    pub mtu: Option<Spanned<u32>>,
    /// The firewall zone the interface belongs to.
    pub zone: Option<Spanned<String>>,
    /// table (a route per allowed IP in `route_table`), bgp or none.
    pub routes: Option<RawRoutes>,
    /// A peer from which nothing was received for this long is stale.
    pub stale_after: Option<Spanned<String>>,
    #[serde(default)]
    pub peers: Vec<Spanned<RawPeer>>,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum RawRoutes {
    Table,
    Bgp,
    None,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPeer {
    /// Letters, digits, `-`, `_` and `.`; how status names the peer.
    pub name: Spanned<String>,
    /// Base64 public key.
    pub public_key: Spanned<String>,
    /// Base64 preshared key, mode 0600 or stricter.
    pub preshared_key_file: Option<Spanned<PathBuf>>,
    /// `host:port`; the host may be a DNS name.
    pub endpoint: Option<Spanned<String>>,
    /// Addresses routed to the peer and accepted from it.
    pub allowed_ips: Spanned<Vec<IpNet>>,
    /// Seconds between keepalives; unset or 0: none.
    pub persistent_keepalive: Option<u16>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBgp {
    /// This site's AS number (4-octet allowed).
    pub asn: Spanned<u32>,
    /// The BGP identifier: an IPv4 address of this router.
    pub router_id: Spanned<std::net::Ipv4Addr>,
    /// Addresses to accept sessions on (port 179 unless given); empty:
    /// no listener, sessions are only dialled.
    #[serde(default)]
    pub listen: Vec<Spanned<String>>,
    /// Offered hold time, seconds: 0 or at least 3.
    pub hold_time: Option<Spanned<u16>>,
    /// Wait between connection attempts, e.g. "5s".
    pub connect_retry: Option<Spanned<String>>,
    /// The kernel routing table best routes go to.
    pub kernel_table: Option<Spanned<u32>>,
    /// Install best routes in the kernel (default true).
    pub kernel: Option<bool>,
    /// This site's networks, announced to the peers.
    #[serde(default)]
    pub networks: Vec<IpNet>,
    #[serde(default)]
    pub peers: Vec<Spanned<RawBgpPeer>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBgpPeer {
    /// Letters, digits, `-`, `_` and `.`.
    pub name: Spanned<String>,
    pub address: Spanned<std::net::IpAddr>,
    pub remote_asn: Spanned<u32>,
    /// TCP port of the peer; default 179.
    pub port: Option<u16>,
    /// Our source address toward the peer.
    pub local_address: Option<std::net::IpAddr>,
    /// Only accept the peer's connection, never dial.
    #[serde(default)]
    pub passive: bool,
    /// TCP MD5 signature key (RFC 2385) in a file of mode 0600.
    pub md5_password_file: Option<Spanned<PathBuf>>,
    /// GTSM (RFC 5082): accept only packets that come with TTL 255.
    #[serde(default)]
    pub gtsm: bool,
    /// More accepted prefixes than this end the session (Cease/1).
    pub max_prefixes: Option<Spanned<u32>>,
    pub import: Option<Spanned<RawBgpPolicy>>,
    pub export: Option<Spanned<RawBgpPolicy>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBgpPolicy {
    /// Prefix-list entries, first match wins, no match denies:
    /// "permit 10.61.0.0/16 le 24", "deny 0.0.0.0/0 le 32".
    pub prefixes: Option<Vec<String>>,
    /// Routes with longer AS paths are refused.
    pub max_as_path_len: Option<usize>,
    /// LOCAL_PREF given to imported routes.
    pub local_pref: Option<u32>,
    /// MED sent with exported routes.
    pub med: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawVrrp {
    #[serde(default)]
    pub instances: Vec<Spanned<RawVrrpInstance>>,
    /// The appliance's own health checks, shared by the instances.
    #[serde(default)]
    pub checks: RawVrrpChecks,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawVrrpInstance {
    /// Letters, digits, `-`, `_` and `.`.
    pub name: Spanned<String>,
    /// The interface the virtual addresses live on.
    pub interface: Spanned<String>,
    /// Virtual router id, 1 to 255, the same on every node of the pair.
    pub vrid: Spanned<u8>,
    /// 1 to 254; 255 only for the node that owns the addresses.
    pub priority: Spanned<u8>,
    /// Between adverts, 10ms to 40950ms; default 100ms.
    pub advert_interval: Option<Spanned<String>>,
    /// Take over from a lower-priority master (default true).
    pub preempt: Option<bool>,
    /// After start, wait this long before preempting.
    pub preempt_delay: Option<Spanned<String>>,
    /// Virtual addresses with prefix length, e.g. "192.168.10.53/24".
    pub addresses: Spanned<Vec<IpNet>>,
    /// Send adverts to these peers instead of the multicast group.
    #[serde(default)]
    pub unicast_peers: Vec<std::net::IpAddr>,
    /// A program run on every transition: NAME OLD NEW REASON.
    pub notify: Option<Spanned<PathBuf>>,
    /// Seconds until the second round of gratuitous ARPs; "0s": none.
    pub announce_again_after: Option<Spanned<String>>,
    /// Gratuitous ARPs / neighbour advertisements per round, 1 to 10.
    pub announce_repeat: Option<Spanned<u8>>,
    /// A failed check lowers the priority by this much instead of putting
    /// the instance in Fault.
    pub check_weight: Option<Spanned<u8>>,
    /// Accept traffic to the virtual addresses when master (default
    /// true; false: only ARP and neighbour discovery, RFC 5798's
    /// Accept_Mode off).
    pub accept: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawVrrpChecks {
    /// How often the checks run, e.g. "200ms".
    pub interval: Option<Spanned<String>>,
    /// Failures in a row before a check counts as failed.
    pub fall: Option<Spanned<u32>>,
    /// Successes in a row before it counts as passing again.
    pub rise: Option<Spanned<u32>>,
    /// How long a recursion probe may take.
    pub probe_timeout: Option<Spanned<String>>,
    /// How long the fast-path probe (a cache hit) may take.
    pub fast_path_timeout: Option<Spanned<String>>,
    /// A name asked of the resolver as is (answered from the cache: the
    /// fast path).
    pub fast_path_probe: Option<Spanned<String>>,
    /// A zone asked with a fresh random label each time (recursion).
    pub recursion_probe: Option<Spanned<String>>,
    /// The instance's interface must be up (default true).
    pub interface: Option<bool>,
    /// A stale WireGuard peer fails the checks (default false).
    pub wireguard: Option<bool>,
    /// A BGP session not Established fails the checks (default false).
    pub bgp: Option<bool>,
    /// Track scripts: exit status 0 passes.
    #[serde(default)]
    pub scripts: Vec<Spanned<RawVrrpScript>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawVrrpScript {
    /// Letters, digits, `-`, `_` and `.`.
    pub name: Spanned<String>,
    /// The program (absolute, or relative to this file's directory).
    pub command: Spanned<PathBuf>,
    #[serde(default)]
    pub args: Vec<String>,
    /// How often it runs (default 1s).
    pub interval: Option<Spanned<String>>,
    /// Longer runs are killed and fail (default 2s).
    pub timeout: Option<Spanned<String>>,
    pub fall: Option<Spanned<u32>>,
    pub rise: Option<Spanned<u32>>,
}

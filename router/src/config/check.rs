//! From raw structs to checked settings: every rule that serde cannot
//! express, each failure located at the value that broke it.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use dns::Name;
use dns::settings::{
    CacheSettings, DnsSettings, ForwardZone, LocalData, LocalRecord, Mode, Protocol,
    RecursionSettings, Upstream, ZoneNetworks,
};
use toml::Spanned;

use super::raw::{RawConfig, RawMode, RawProtocol, RawRecordType, RawUpstream};
use super::{Config, ConfigError, DEFAULT_CONTROL_SOCKET, DEFAULT_POLICIES_DIR, line_column};

/// Names of peers and instances: letters, digits, `-`, `_` and `.`, up to
/// 64 characters (they appear in status, metrics labels and hook
/// arguments).
pub(super) fn valid_object_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// Default TTL of local records, in seconds.
const LOCAL_RECORD_TTL: u32 = 300;

pub(super) struct Checker<'a> {
    text: &'a str,
    path: &'a Path,
    /// Absolute paths are read below this directory instead of `/`: a
    /// standby checking the primary's file against its copies of the
    /// primary's files.
    root: Option<&'a Path>,
    /// Every path the file refers to, as resolved.
    referenced: std::cell::RefCell<Vec<PathBuf>>,
}

impl Checker<'_> {
    pub(super) fn error_at<T>(
        &self,
        spanned: &Spanned<T>,
        message: impl Into<String>,
    ) -> ConfigError {
        let (line, column) = line_column(self.text, spanned.span().start);
        ConfigError {
            path: self.path.to_path_buf(),
            line,
            column,
            message: message.into(),
        }
    }

    pub(super) fn error(&self, message: impl Into<String>) -> ConfigError {
        ConfigError {
            path: self.path.to_path_buf(),
            line: 0,
            column: 0,
            message: message.into(),
        }
    }

    /// Relative paths in the file are relative to the file's directory.
    pub(super) fn resolve(&self, path: &Path) -> PathBuf {
        let resolved = match (path.is_absolute(), self.root) {
            (true, Some(root)) => root.join(path.strip_prefix("/").unwrap_or(path)),
            (true, None) => path.to_path_buf(),
            (false, _) => self
                .path
                .parent()
                .unwrap_or_else(|| Path::new("."))
                .join(path),
        };
        self.referenced.borrow_mut().push(resolved.clone());
        resolved
    }
}

/// Checks a parsed file. `text` and `path` locate errors.
pub fn check(raw: RawConfig, text: &str, path: &Path) -> Result<Config, ConfigError> {
    check_below(raw, text, path, None).0
}

/// [`check`], reading absolute paths below `root` when it is given, and
/// returning every path the file refers to (files and directories, as
/// resolved), whether the check passed or not.
pub fn check_below(
    raw: RawConfig,
    text: &str,
    path: &Path,
    root: Option<&Path>,
) -> (Result<Config, ConfigError>, Vec<PathBuf>) {
    let checker = Checker {
        text,
        path,
        root,
        referenced: Default::default(),
    };
    let result = check_with(raw, &checker);
    (result, checker.referenced.into_inner())
}

fn check_with(raw: RawConfig, checker: &Checker<'_>) -> Result<Config, ConfigError> {
    let defaults = DnsSettings::default();
    let dns = raw.dns;

    let listen = match &dns.listen {
        Some(listen) => {
            if listen.get_ref().is_empty() {
                return Err(checker.error_at(
                    listen,
                    "`listen` is empty: expected at least one address such as \"127.0.0.1:53\"",
                ));
            }
            let mut seen = HashSet::new();
            for addr in listen.get_ref() {
                if !seen.insert(addr) {
                    return Err(checker.error_at(listen, format!("`{addr}` is listed twice")));
                }
            }
            listen.get_ref().clone()
        }
        None => defaults.listen.clone(),
    };

    let mode = match dns.mode.as_ref().map(|m| *m.get_ref()) {
        Some(RawMode::Forward) => Mode::Forward,
        Some(RawMode::Recursive) | None => Mode::Recursive,
    };
    if mode == Mode::Forward && dns.upstreams.is_empty() {
        let message =
            "mode = \"forward\" needs at least one [[dns.upstreams]] entry with an `address`";
        return Err(match &dns.mode {
            Some(spanned) => checker.error_at(spanned, message),
            None => checker.error(message),
        });
    }

    let max_udp_payload = match &dns.max_udp_payload {
        Some(size) if *size.get_ref() < 512 => {
            return Err(checker.error_at(
                size,
                format!(
                    "max_udp_payload = {} is below 512, the smallest size DNS allows",
                    size.get_ref()
                ),
            ));
        }
        Some(size) => *size.get_ref(),
        None => defaults.max_udp_payload,
    };

    let rate_limit_qps = dns.rate_limit_qps.unwrap_or(defaults.rate_limit_qps);
    let rate_limit_burst = match &dns.rate_limit_burst {
        Some(burst) if rate_limit_qps > 0 && *burst.get_ref() < rate_limit_qps => {
            return Err(checker.error_at(
                burst,
                format!(
                    "rate_limit_burst = {} is below rate_limit_qps = {rate_limit_qps}: the burst must allow at least one second of queries",
                    burst.get_ref()
                ),
            ));
        }
        Some(burst) => *burst.get_ref(),
        None => defaults
            .rate_limit_burst
            .max(rate_limit_qps.saturating_mul(2)),
    };

    let workers = match &dns.workers {
        Some(w) if *w.get_ref() > 256 => {
            return Err(checker.error_at(w, "workers must be between 0 (one per core) and 256"));
        }
        Some(w) => *w.get_ref(),
        None => defaults.workers,
    };

    let cache = check_cache(checker, &dns.cache)?;
    let recursion = check_recursion(checker, &dns.recursion, mode)?;

    let upstreams = dns
        .upstreams
        .iter()
        .map(|u| check_upstream(checker, u.get_ref(), u))
        .collect::<Result<Vec<_>, _>>()?;

    let mut forward_zones = Vec::new();
    let mut zone_names = HashSet::new();
    for zone in &dns.forward_zones {
        let raw = zone.get_ref();
        let name = parse_name(&raw.zone).map_err(|reason| {
            checker.error_at(
                zone,
                format!("zone `{}` is not a domain name: {reason}", raw.zone),
            )
        })?;
        if !zone_names.insert(name.to_lowercase()) {
            return Err(checker.error_at(zone, format!("zone `{name}` is declared twice")));
        }
        if raw.upstreams.is_empty() {
            return Err(checker.error_at(
                zone,
                format!("forward zone `{name}` has no upstreams: expected upstreams = [{{ address = \"ip:53\" }}]"),
            ));
        }
        let upstreams = raw
            .upstreams
            .iter()
            .map(|u| check_upstream(checker, u, zone))
            .collect::<Result<Vec<_>, _>>()?;
        forward_zones.push(ForwardZone {
            zone: name,
            upstreams,
        });
    }

    let local_records = dns
        .local_records
        .iter()
        .map(|record| check_local_record(checker, record))
        .collect::<Result<Vec<_>, _>>()?;

    let control_socket = raw
        .control
        .socket
        .map(|p| checker.resolve(&p))
        .unwrap_or_else(|| PathBuf::from(DEFAULT_CONTROL_SOCKET));

    let policies_dir = raw.policies.map(|policies| {
        policies
            .dir
            .map(|dir| checker.resolve(dir.get_ref()))
            .unwrap_or_else(|| checker.resolve(Path::new(DEFAULT_POLICIES_DIR)))
    });

    let pair = raw
        .pair
        .as_ref()
        .map(|pair| super::pair::check_pair(checker, pair))
        .transpose()?;
    let own_addresses = pair
        .as_ref()
        .map(|p| p.zone_addresses.clone())
        .unwrap_or_default();
    let (zones, zone_links, zones_error) = match &policies_dir {
        Some(dir) => policy_zones(dir, &own_addresses),
        None => (Vec::new(), Vec::new(), None),
    };
    let zone_names = match (&policies_dir, &zones_error) {
        (None, _) => PolicyZones::NoPolicies,
        // The firewall reports why the policy does not load.
        (Some(_), Some(_)) => PolicyZones::Unreadable,
        (Some(_), None) => PolicyZones::Known(zone_links),
    };
    let wireguard = super::wireguard::check_wireguard(checker, &raw.wireguard, &zone_names)?;
    let bgp = raw
        .bgp
        .as_ref()
        .map(|bgp| super::bgp::check_bgp(checker, bgp))
        .transpose()?;
    let vrrp = raw
        .vrrp
        .as_ref()
        .map(|vrrp| super::vrrp::check_vrrp(checker, vrrp))
        .transpose()?;
    // The DNS service binds the virtual addresses it listens on before it
    // holds them: they come and go with the VRRP state.
    let floating: Vec<std::net::IpAddr> = vrrp
        .iter()
        .flat_map(|v| v.instances.iter().flat_map(|i| i.virtual_ips()))
        .filter(|ip| listen.iter().any(|l| l.ip() == *ip))
        .collect();
    // Accept mode off drops what comes to the addresses: DNS on one of
    // them would never answer.
    if let (Some(vrrp), Some(spanned)) = (&vrrp, &raw.vrrp)
        && let Some((instance, ip)) = vrrp.instances.iter().filter(|i| !i.accept).find_map(|i| {
            i.virtual_ips()
                .into_iter()
                .find(|ip| floating.contains(ip))
                .map(|ip| (i, ip))
        })
    {
        return Err(checker.error_at(
            spanned,
            format!(
                "instance {}: accept = false drops traffic to {ip}, which [dns] listen serves: keep accept = true (the default) or take {ip} out of listen",
                instance.name
            ),
        ));
    }
    let (filter_settings, filter) =
        super::filter::check_filter(checker, &dns.filter, zones, zones_error.as_deref())?;
    let query_log = super::filter::check_query_log(checker, &dns.query_log)?;

    Ok(Config {
        dns: DnsSettings {
            listen,
            allow: dns.allow.unwrap_or(defaults.allow),
            mode,
            workers,
            max_udp_payload,
            udp_segmentation: dns.udp_segmentation.unwrap_or(defaults.udp_segmentation),
            rate_limit_qps,
            rate_limit_burst,
            cache,
            recursion,
            upstreams,
            forward_zones,
            local_records,
            filter: filter_settings,
            floating,
        },
        control_socket,
        metrics_listen: raw.metrics.listen,
        policies_dir,
        filter,
        query_log,
        wireguard,
        bgp,
        vrrp,
        pair,
    })
}

/// The zones the policy files declare, for settings that name one.
pub(super) enum PolicyZones {
    NoPolicies,
    Unreadable,
    Known(Vec<TunnelZone>),
}

/// What a tunnel's zone must agree with.
pub(super) struct TunnelZone {
    pub(super) name: String,
    pub(super) interface: String,
    pub(super) addresses: Vec<ipnet::IpNet>,
}

/// The policy's zones and their networks, for filtering groups and the
/// query log, and their interfaces and router addresses, for tunnels;
/// with the reason when the policy does not load.
fn policy_zones(
    dir: &Path,
    own_addresses: &policies::NodeAddresses,
) -> (Vec<ZoneNetworks>, Vec<TunnelZone>, Option<String>) {
    let loaded = policies::load_dir(dir, &policies::Protected::default()).and_then(|mut loaded| {
        policies::localize(&mut loaded.policy, own_addresses)?;
        Ok(loaded)
    });
    match loaded {
        Ok(loaded) => (
            loaded
                .policy
                .zones
                .iter()
                .map(|zone| ZoneNetworks {
                    name: zone.name.clone(),
                    networks: zone.subnets().collect(),
                })
                .collect(),
            loaded
                .policy
                .zones
                .iter()
                .map(|zone| TunnelZone {
                    name: zone.name.clone(),
                    interface: zone.interface.clone(),
                    addresses: zone.router_addresses().collect(),
                })
                .collect(),
            None,
        ),
        Err(e) => (Vec::new(), Vec::new(), Some(e.to_string())),
    }
}

fn check_cache(
    checker: &Checker<'_>,
    raw: &super::raw::RawCache,
) -> Result<CacheSettings, ConfigError> {
    let defaults = CacheSettings::default();
    let min_ttl = raw.min_ttl.unwrap_or(defaults.min_ttl);
    let max_ttl = match &raw.max_ttl {
        Some(max) if *max.get_ref() < min_ttl => {
            return Err(checker.error_at(
                max,
                format!("max_ttl = {} is below min_ttl = {min_ttl}", max.get_ref()),
            ));
        }
        Some(max) => *max.get_ref(),
        None => defaults.max_ttl.max(min_ttl),
    };
    let max_entries = match &raw.max_entries {
        Some(n) if *n.get_ref() == 0 => {
            return Err(checker.error_at(n, "max_entries must be at least 1"));
        }
        Some(n) => *n.get_ref(),
        None => defaults.max_entries,
    };
    Ok(CacheSettings {
        max_entries,
        min_ttl,
        max_ttl,
        prefetch: raw.prefetch.unwrap_or(defaults.prefetch),
        serve_stale: raw.serve_stale.unwrap_or(defaults.serve_stale),
        max_stale: raw.max_stale.unwrap_or(defaults.max_stale),
    })
}

fn check_recursion(
    checker: &Checker<'_>,
    raw: &super::raw::RawRecursion,
    mode: Mode,
) -> Result<RecursionSettings, ConfigError> {
    let defaults = RecursionSettings::default();
    let root_hints = match &raw.root_hints {
        Some(hints) => {
            let path = checker.resolve(hints.get_ref());
            // Only read when used: a forwarder does not need valid hints.
            if mode == Mode::Recursive {
                dns::resolve::recursive::read_root_hints(&path)
                    .map_err(|e| checker.error_at(hints, e.to_string()))?;
            }
            Some(path)
        }
        None => defaults.root_hints,
    };
    let trust_anchor = match &raw.trust_anchor {
        Some(anchor) => {
            let path = checker.resolve(anchor.get_ref());
            if mode == Mode::Recursive {
                dns::resolve::recursive::read_trust_anchor(&path)
                    .map_err(|e| checker.error_at(anchor, e.to_string()))?;
            }
            Some(path)
        }
        None => defaults.trust_anchor,
    };
    Ok(RecursionSettings {
        root_hints,
        dnssec: raw.dnssec.unwrap_or(defaults.dnssec),
        trust_anchor,
        qname_minimisation: raw
            .qname_minimisation
            .unwrap_or(defaults.qname_minimisation),
        case_randomisation: raw
            .case_randomisation
            .unwrap_or(defaults.case_randomisation),
        allow_servers: raw.allow_servers.clone().unwrap_or(defaults.allow_servers),
    })
}

pub(super) fn check_upstream<T>(
    checker: &Checker<'_>,
    raw: &RawUpstream,
    at: &Spanned<T>,
) -> Result<Upstream, ConfigError> {
    let protocol = match raw.protocol {
        RawProtocol::Udp => Protocol::Udp,
        RawProtocol::Tcp => Protocol::Tcp,
        RawProtocol::Tls => Protocol::Tls,
        RawProtocol::Https => Protocol::Https,
    };
    let encrypted = matches!(protocol, Protocol::Tls | Protocol::Https);
    if !encrypted && (raw.tls_name.is_some() || raw.ca_file.is_some()) {
        return Err(checker.error_at(
            at,
            format!(
                "upstream {}: tls_name and ca_file only apply to protocol = \"tls\" or \"https\"",
                raw.address
            ),
        ));
    }
    if encrypted && raw.tls_name.is_none() {
        return Err(checker.error_at(
            at,
            format!(
                "upstream {} uses {}: add tls_name = \"the name on its certificate\"",
                raw.address,
                protocol.as_str()
            ),
        ));
    }
    let ca_file = raw.ca_file.as_ref().map(|p| checker.resolve(p));
    if let Some(ca) = &ca_file
        && !ca.is_file()
    {
        return Err(checker.error_at(
            at,
            format!("ca_file {} does not exist or is not a file", ca.display()),
        ));
    }
    Ok(Upstream {
        address: raw.address,
        protocol,
        tls_name: raw.tls_name.clone(),
        ca_file,
    })
}

fn check_local_record(
    checker: &Checker<'_>,
    record: &Spanned<super::raw::RawLocalRecord>,
) -> Result<LocalRecord, ConfigError> {
    let raw = record.get_ref();
    let name = parse_name(raw.name.get_ref()).map_err(|reason| {
        checker.error_at(
            &raw.name,
            format!(
                "local record name `{}` is not a domain name: {reason}",
                raw.name.get_ref()
            ),
        )
    })?;
    let value = raw.value.get_ref();
    let bad_value = |expected: &str| {
        checker.error_at(
            &raw.value,
            format!("local record {name}: value `{value}` is not {expected}"),
        )
    };
    let data = match raw.rtype {
        RawRecordType::A => LocalData::A(value.parse().map_err(|_| bad_value("an IPv4 address"))?),
        RawRecordType::Aaaa => {
            LocalData::Aaaa(value.parse().map_err(|_| bad_value("an IPv6 address"))?)
        }
        RawRecordType::Cname => {
            LocalData::Cname(parse_name(value).map_err(|_| bad_value("a domain name"))?)
        }
        RawRecordType::Txt => {
            if value.len() > 255 {
                return Err(bad_value("text of at most 255 bytes"));
            }
            LocalData::Txt(value.clone())
        }
    };
    Ok(LocalRecord {
        name,
        data,
        ttl: raw.ttl.unwrap_or(LOCAL_RECORD_TTL),
    })
}

/// A domain name as written in the file, made fully qualified.
fn parse_name(text: &str) -> Result<Name, String> {
    if text.is_empty() {
        return Err("it is empty".into());
    }
    let mut name = Name::from_utf8(text).map_err(|e| e.to_string())?;
    name.set_fqdn(true);
    Ok(name)
}

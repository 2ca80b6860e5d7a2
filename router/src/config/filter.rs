//! `[dns.filter]` and `[dns.query_log]`: lists, groups and the log, checked.

use std::collections::HashSet;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use dns::settings::{
    BlockMode, DEFAULT_GROUP, FilterList, FilterSettings, GroupSettings, ZoneNetworks,
};
use toml::Spanned;

use super::check::{Checker, check_upstream};
use super::raw::{RawBlockMode, RawFilter, RawGroup, RawList, RawQueryLog};
use super::{ConfigError, DEFAULT_STATE_DIR};
use crate::lists::{self, ListSource, Location};

/// How often URL lists are fetched again unless configured.
pub const DEFAULT_REFRESH: Duration = Duration::from_secs(24 * 3600);
/// Local files are looked at this often unless configured.
pub const DEFAULT_FILE_REFRESH: Duration = Duration::from_secs(60);
/// Shortest refresh interval accepted: list servers ask for politeness.
const MIN_REFRESH: Duration = Duration::from_secs(10);

/// The lists as the daemon fetches them.
#[derive(Debug, Clone, PartialEq)]
pub struct FilterConfig {
    /// Where the last good copies live.
    pub lists_dir: PathBuf,
    pub lists: Vec<ConfiguredList>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ConfiguredList {
    pub source: ListSource,
    pub refresh: Duration,
}

/// `[dns.query_log]`, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryLogConfig {
    pub enabled: bool,
    /// `None`: memory only.
    pub path: Option<PathBuf>,
    pub retention_days: u32,
    pub max_bytes: u64,
    pub memory_entries: usize,
}

impl QueryLogConfig {
    pub fn settings(&self) -> dns::querylog::LogSettings {
        dns::querylog::LogSettings {
            path: self.path.clone(),
            ring_entries: self.memory_entries,
            retention_days: self.retention_days,
            max_bytes: self.max_bytes,
            ..dns::querylog::LogSettings::default()
        }
    }
}

pub(super) fn check_query_log(
    checker: &Checker<'_>,
    raw: &RawQueryLog,
) -> Result<QueryLogConfig, ConfigError> {
    let defaults = dns::querylog::LogSettings::default();
    let path = match &raw.path {
        Some(path) if path.as_os_str().is_empty() => None,
        Some(path) => Some(checker.resolve(path)),
        None => Some(Path::new(DEFAULT_STATE_DIR).join("querylog.sqlite")),
    };
    let max_bytes = match &raw.max_size_mb {
        Some(mb) if *mb.get_ref() == 0 => {
            return Err(checker.error_at(mb, "max_size_mb must be at least 1"));
        }
        Some(mb) => mb.get_ref().saturating_mul(1024 * 1024),
        None => defaults.max_bytes,
    };
    let memory_entries = match &raw.memory_entries {
        Some(n) if *n.get_ref() > 10_000_000 => {
            return Err(checker.error_at(n, "memory_entries above 10000000 would not fit a Pi"));
        }
        Some(n) => *n.get_ref(),
        None => defaults.ring_entries,
    };
    Ok(QueryLogConfig {
        enabled: raw.enabled.unwrap_or(true),
        path,
        retention_days: raw.retention_days.unwrap_or(defaults.retention_days),
        max_bytes,
        memory_entries,
    })
}

/// Checks `[dns.filter]`; `zones` are the policy's zones (empty without
/// `[policies]`), `zones_error` why they could not be read, if so.
pub(super) fn check_filter(
    checker: &Checker<'_>,
    raw: &RawFilter,
    zones: Vec<ZoneNetworks>,
    zones_error: Option<&str>,
) -> Result<(FilterSettings, FilterConfig), ConfigError> {
    let default_refresh = match &raw.refresh {
        Some(text) => parse_refresh(checker, text)?,
        None => DEFAULT_REFRESH,
    };
    let max_shrink_percent = match &raw.max_shrink_percent {
        Some(p) if *p.get_ref() > 100 => {
            return Err(checker.error_at(p, "max_shrink_percent is a percentage: 0 to 100"));
        }
        Some(p) => *p.get_ref(),
        None => lists::DEFAULT_MAX_SHRINK_PERCENT,
    };
    let max_bytes = match &raw.max_list_mb {
        Some(mb) if *mb.get_ref() == 0 => {
            return Err(checker.error_at(mb, "max_list_mb must be at least 1"));
        }
        Some(mb) => mb.get_ref().saturating_mul(1024 * 1024),
        None => lists::DEFAULT_MAX_BYTES,
    };
    if raw.lists.len() > dns::filter::MAX_LISTS {
        return Err(checker.error(format!(
            "{} lists: at most {} are supported",
            raw.lists.len(),
            dns::filter::MAX_LISTS
        )));
    }
    let mut configured = Vec::new();
    let mut names = HashSet::new();
    for list in &raw.lists {
        let checked = check_list(checker, list, default_refresh)?;
        if !names.insert(checked.source.name.clone()) {
            return Err(checker.error_at(
                &list.get_ref().name,
                format!("list `{}` is declared twice", checked.source.name),
            ));
        }
        configured.push(ConfiguredList {
            source: ListSource {
                max_shrink_percent,
                max_bytes,
                ..checked.source
            },
            refresh: checked.refresh,
        });
    }
    let list_names: Vec<&str> = configured.iter().map(|l| l.source.name.as_str()).collect();
    let zone_names: Vec<&str> = zones.iter().map(|z| z.name.as_str()).collect();

    let mut groups = vec![GroupSettings::default()];
    let mut group_names = HashSet::new();
    for group in &raw.groups {
        let checked = check_group(checker, group, &list_names, &zone_names, zones_error)?;
        if !group_names.insert(checked.name.clone()) {
            return Err(checker.error_at(
                &group.get_ref().name,
                format!("group `{}` is declared twice", checked.name),
            ));
        }
        if checked.name == DEFAULT_GROUP {
            if !checked.zones.is_empty() || !checked.clients.is_empty() {
                return Err(checker.error_at(
                    &group.get_ref().name,
                    "the default group has every client no other group claims: it takes no `zones` or `clients`",
                ));
            }
            groups[0] = checked;
        } else {
            groups.push(checked);
        }
    }
    if groups.len() > dns::filter::MAX_GROUPS {
        return Err(checker.error(format!(
            "{} groups: at most {} are supported",
            groups.len(),
            dns::filter::MAX_GROUPS
        )));
    }
    // A zone in two groups would make a client's group depend on order.
    let mut claimed: HashSet<&str> = HashSet::new();
    for (group, raw_group) in groups.iter().skip(1).zip(
        raw.groups
            .iter()
            .filter(|g| g.get_ref().name.get_ref() != DEFAULT_GROUP),
    ) {
        for (zone, spanned) in group.zones.iter().zip(&raw_group.get_ref().zones) {
            if !claimed.insert(zone) {
                return Err(checker.error_at(
                    spanned,
                    format!(
                        "zone `{zone}` is already in another group: a zone belongs to one group"
                    ),
                ));
            }
        }
    }
    let lists_dir = raw.lists_dir.as_ref().map_or_else(
        || Path::new(DEFAULT_STATE_DIR).join("lists"),
        |dir| checker.resolve(dir),
    );
    Ok((
        FilterSettings {
            lists: configured
                .iter()
                .map(|l| FilterList {
                    name: l.source.name.clone(),
                    exact: l.source.exact,
                })
                .collect(),
            groups,
            zones,
        },
        FilterConfig {
            lists_dir,
            lists: configured,
        },
    ))
}

fn check_list(
    checker: &Checker<'_>,
    spanned: &Spanned<RawList>,
    default_refresh: Duration,
) -> Result<ConfiguredList, ConfigError> {
    let raw = spanned.get_ref();
    let name = raw.name.get_ref();
    if !lists::valid_list_name(name) {
        return Err(checker.error_at(
            &raw.name,
            format!(
                "list name `{name}`: expected letters, digits, `-` and `_` only (it names a file)"
            ),
        ));
    }
    let (location, refresh) = match (&raw.url, &raw.path) {
        (Some(url), None) => {
            let text = url.get_ref();
            if !(text.starts_with("http://") || text.starts_with("https://")) {
                return Err(checker.error_at(
                    url,
                    format!("url `{text}`: expected an http:// or https:// address"),
                ));
            }
            let location = Location::Url {
                url: text.clone(),
                ca_file: raw.ca_file.as_ref().map(|p| checker.resolve(p)),
            };
            (location, default_refresh)
        }
        (None, Some(path)) => {
            if raw.ca_file.is_some() {
                return Err(checker.error_at(spanned, "ca_file only applies to https lists"));
            }
            (
                Location::File(checker.resolve(path.get_ref())),
                DEFAULT_FILE_REFRESH,
            )
        }
        _ => {
            return Err(checker.error_at(
                spanned,
                format!("list `{name}`: expected exactly one of `url` or `path`"),
            ));
        }
    };
    let refresh = match &raw.refresh {
        Some(text) => parse_refresh(checker, text)?,
        None => refresh,
    };
    let source = ListSource::new(name.clone(), location)
        .map_err(|e| checker.error_at(&raw.name, e.to_string()))?;
    Ok(ConfiguredList {
        source: ListSource {
            exact: raw.exact,
            ..source
        },
        refresh,
    })
}

fn check_group(
    checker: &Checker<'_>,
    spanned: &Spanned<RawGroup>,
    list_names: &[&str],
    zone_names: &[&str],
    zones_error: Option<&str>,
) -> Result<GroupSettings, ConfigError> {
    let raw = spanned.get_ref();
    let name = raw.name.get_ref().clone();
    if name.is_empty() {
        return Err(checker.error_at(&raw.name, "a group needs a name"));
    }
    let defaults = GroupSettings::default();
    let mut lists = Vec::new();
    for list in &raw.lists {
        if !list_names.contains(&list.get_ref().as_str()) {
            return Err(checker.error_at(
                list,
                format!(
                    "group `{name}` uses list `{}`, which no [[dns.filter.lists]] declares{}",
                    list.get_ref(),
                    did_you_mean(list.get_ref(), list_names)
                ),
            ));
        }
        lists.push(list.get_ref().clone());
    }
    let mut zones = Vec::new();
    for zone in &raw.zones {
        if !zone_names.contains(&zone.get_ref().as_str()) {
            let why = match zones_error {
                Some(error) => format!(", and the policy files could not be read: {error}"),
                None if zone_names.is_empty() => {
                    ": zones come from the policy files, and [policies] is not configured"
                        .to_string()
                }
                None => did_you_mean(zone.get_ref(), zone_names),
            };
            return Err(checker.error_at(
                zone,
                format!(
                    "group `{name}` names zone `{}`, which the policy does not declare{why}",
                    zone.get_ref()
                ),
            ));
        }
        zones.push(zone.get_ref().clone());
    }
    let block_mode = match (raw.block_mode, &raw.block_addresses) {
        (Some(RawBlockMode::Address), Some(addresses)) => {
            let v4: Vec<_> = addresses
                .get_ref()
                .iter()
                .filter_map(|a| match a {
                    IpAddr::V4(v4) => Some(*v4),
                    IpAddr::V6(_) => None,
                })
                .collect();
            let v6: Vec<_> = addresses
                .get_ref()
                .iter()
                .filter_map(|a| match a {
                    IpAddr::V6(v6) => Some(*v6),
                    IpAddr::V4(_) => None,
                })
                .collect();
            let max = dns::fastpath::blocked::MAX_BLOCK_ADDRESSES;
            if v4.is_empty() && v6.is_empty() || v4.len() > max || v6.len() > max {
                return Err(checker.error_at(
                    addresses,
                    format!("block_addresses: expected 1 to {max} addresses per family"),
                ));
            }
            BlockMode::Address { v4, v6 }
        }
        (Some(RawBlockMode::Address), None) => {
            return Err(checker.error_at(
                spanned,
                format!("group `{name}`: block_mode = \"address\" needs block_addresses = [\"10.0.10.1\"]"),
            ));
        }
        (_, Some(addresses)) => {
            return Err(checker.error_at(
                addresses,
                "block_addresses only apply with block_mode = \"address\"",
            ));
        }
        (Some(RawBlockMode::Nxdomain), None) => BlockMode::NxDomain,
        (Some(RawBlockMode::Null), None) => BlockMode::NullAddress,
        (Some(RawBlockMode::Refused), None) => BlockMode::Refused,
        (None, None) => defaults.block_mode,
    };
    let upstreams = match &raw.upstreams {
        Some(upstreams) if upstreams.is_empty() => {
            return Err(checker.error_at(
                spanned,
                format!("group `{name}`: upstreams is empty; leave it out to use the service's own resolution"),
            ));
        }
        Some(upstreams) => Some(
            upstreams
                .iter()
                .map(|u| check_upstream(checker, u, spanned))
                .collect::<Result<Vec<_>, _>>()?,
        ),
        None => None,
    };
    let mut clients = Vec::new();
    for client in &raw.clients {
        let text = client.get_ref().trim();
        let net = text
            .parse::<ipnet::IpNet>()
            .or_else(|_| text.parse::<IpAddr>().map(ipnet::IpNet::from))
            .map_err(|_| {
                checker.error_at(
                    client,
                    format!("client `{text}`: expected an address (192.168.40.20) or a network (192.168.40.16/28)"),
                )
            })?;
        clients.push(net);
    }
    Ok(GroupSettings {
        name,
        zones,
        clients,
        lists,
        block_mode,
        block_ttl: raw.block_ttl.unwrap_or(defaults.block_ttl),
        safe_search: raw.safe_search.unwrap_or(defaults.safe_search),
        upstreams,
    })
}

/// Parses "90s", "15m", "24h" or "7d", at least [`MIN_REFRESH`].
fn parse_refresh(checker: &Checker<'_>, text: &Spanned<String>) -> Result<Duration, ConfigError> {
    let value = text.get_ref();
    let duration = crate::duration::parse(value)
        .map_err(|e| checker.error_at(text, format!("refresh: {e}")))?;
    if duration < MIN_REFRESH {
        return Err(checker.error_at(
            text,
            format!(
                "refresh \"{value}\" is shorter than {} s",
                MIN_REFRESH.as_secs()
            ),
        ));
    }
    Ok(duration)
}

fn did_you_mean(name: &str, known: &[&str]) -> String {
    match policies::closest(name, known) {
        Some(close) => format!(" (did you mean `{close}`?)"),
        None if known.is_empty() => String::new(),
        None => format!(" (known: {})", known.join(", ")),
    }
}

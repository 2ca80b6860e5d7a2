//! Filtering groups: which group a client is in, and what the group's
//! blocked answers look like. Built with the compiled lists into one
//! immutable [`Filter`] that the serving side swaps atomically.

use std::io::BufRead;
use std::net::IpAddr;

use ipnet::IpNet;
use tracing::warn;

use super::list::ListSummary;
use super::set::{FilterSet, FilterSetBuilder, ListMask, Match};
use crate::settings::{BlockMode, DnsSettings, FilterList};

/// A client's zone index when no zone holds its address.
pub const NO_ZONE: u16 = u16::MAX;
/// Most groups a configuration may declare (the default included).
pub const MAX_GROUPS: usize = 64;

/// One group as the serving side needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct Group {
    pub name: String,
    pub block_mode: BlockMode,
    pub block_ttl: u32,
    pub safe_search: bool,
    /// Where its questions are resolved ([`DnsSettings::views`]).
    pub view: u8,
    /// False when the group uses no list: nothing to look up.
    pub filters: bool,
    pub lists: Vec<String>,
}

/// Who a client is, for filtering and logging.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Client {
    /// Index into [`Filter::zones`], or [`NO_ZONE`].
    pub zone: u16,
    pub group: u8,
}

/// See [`Filter::screen`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Screened {
    Blocked(Match),
    /// The view byte of the cache key ([`crate::fastpath::wire::cache_key_in`]).
    View(u8),
}

/// How a list fared when the filter was built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListLoad {
    pub name: String,
    /// `None` when no copy of the list was available.
    pub summary: Option<ListSummary>,
    pub error: Option<String>,
}

/// Networks as (network, mask) integers, most specific first, so that
/// the first match is the longest prefix and a test is one AND.
#[derive(Debug, Clone, Default)]
struct NetTable<T> {
    v4: Vec<(u32, u32, T)>,
    v6: Vec<(u128, u128, T)>,
}

impl<T: Copy> NetTable<T> {
    fn new(mut nets: Vec<(IpNet, T)>) -> Self {
        nets.sort_by_key(|(net, _)| std::cmp::Reverse(net.prefix_len()));
        let mut table = NetTable {
            v4: Vec::new(),
            v6: Vec::new(),
        };
        for (net, value) in nets {
            match net {
                IpNet::V4(n) => {
                    table
                        .v4
                        .push((u32::from(n.network()), u32::from(n.netmask()), value))
                }
                IpNet::V6(n) => {
                    table
                        .v6
                        .push((u128::from(n.network()), u128::from(n.netmask()), value))
                }
            }
        }
        table
    }

    fn find(&self, ip: IpAddr) -> Option<T> {
        match ip {
            IpAddr::V4(ip) => {
                let ip = u32::from(ip);
                self.v4
                    .iter()
                    .find(|(net, mask, _)| ip & mask == *net)
                    .map(|(_, _, v)| *v)
            }
            IpAddr::V6(ip) => {
                let ip = u128::from(ip);
                self.v6
                    .iter()
                    .find(|(net, mask, _)| ip & mask == *net)
                    .map(|(_, _, v)| *v)
            }
        }
    }
}

/// Client networks to groups and zones.
#[derive(Debug, Clone, Default)]
struct ClientMap {
    /// Addresses and networks named by a group.
    explicit: NetTable<u8>,
    /// Zone networks with their zone index.
    zones: NetTable<u16>,
    /// Zone index to group.
    zone_group: Vec<u8>,
}

impl ClientMap {
    fn classify(&self, ip: IpAddr) -> Client {
        let zone = self.zones.find(ip).unwrap_or(NO_ZONE);
        let group = match self.explicit.find(ip) {
            Some(group) => group,
            None => self.zone_group.get(usize::from(zone)).copied().unwrap_or(0),
        };
        Client { zone, group }
    }
}

/// The compiled lists with the groups that use them: everything a query
/// needs to be filtered. Immutable; a refresh builds a new one.
#[derive(Debug)]
pub struct Filter {
    pub set: FilterSet,
    pub groups: Vec<Group>,
    /// Zone names, indexed by [`Client::zone`].
    pub zones: Vec<String>,
    clients: ClientMap,
}

impl Default for Filter {
    /// No lists and one default group that filters nothing.
    fn default() -> Self {
        Self::build(&DnsSettings::default(), |_| None).0
    }
}

impl Filter {
    /// Builds the filter for `settings`; `open` gives the stored copy of a
    /// list with its size in bytes, or `None` when there is none yet (the
    /// list is then empty and reported as such, and everything else still
    /// filters).
    pub fn build(
        settings: &DnsSettings,
        mut open: impl FnMut(&FilterList) -> Option<(Box<dyn BufRead>, u64)>,
    ) -> (Filter, Vec<ListLoad>) {
        let filter = &settings.filter;
        let mut builder = FilterSetBuilder::new();
        let mut loads = Vec::new();
        let mut readers: Vec<_> = filter.lists.iter().map(&mut open).collect();
        // About one rule per 25 bytes of a list: reserving up front saves
        // growing the entry table, and the memory it briefly doubles.
        let bytes: u64 = readers.iter().flatten().map(|(_, size)| size).sum();
        builder.reserve(usize::try_from(bytes / 25).unwrap_or(0));
        for (list, reader) in filter.lists.iter().zip(readers.iter_mut()) {
            let options = super::ParseOptions { exact: list.exact };
            let (summary, error) = match reader.take() {
                Some((reader, _)) => match builder.add_list(&list.name, reader, options) {
                    Ok(summary) => (Some(summary), None),
                    Err(e) => (None, Some(e.to_string())),
                },
                None => {
                    // Keep the indices aligned with the settings.
                    let empty: &[u8] = &[];
                    let _ = builder.add_list(&list.name, empty, options);
                    (None, Some("no copy of the list yet".to_string()))
                }
            };
            if let Some(error) = &error {
                warn!(list = %list.name, %error, "filter list not loaded");
            }
            loads.push(ListLoad {
                name: list.name.clone(),
                summary,
                error,
            });
        }
        let mut groups = Vec::new();
        let mut masks = Vec::new();
        let zones: Vec<String> = filter.zones.iter().map(|z| z.name.clone()).collect();
        let mut zone_group = vec![0; zones.len()];
        let mut explicit = Vec::new();
        for (index, group) in filter.groups.iter().enumerate().take(MAX_GROUPS) {
            let Ok(id) = u8::try_from(index) else {
                break;
            };
            let mut mask = ListMask::default();
            for name in &group.lists {
                let index = filter.lists.iter().position(|l| &l.name == name);
                if let Some(index) = index.and_then(|i| u8::try_from(i).ok()) {
                    mask.insert(index);
                }
            }
            for zone in &group.zones {
                if let Some(z) = zones.iter().position(|n| n == zone) {
                    zone_group[z] = id;
                }
            }
            explicit.extend(group.clients.iter().map(|net| (*net, id)));
            groups.push(Group {
                name: group.name.clone(),
                block_mode: group.block_mode.clone(),
                block_ttl: group.block_ttl,
                safe_search: group.safe_search,
                view: settings.view_of(group),
                filters: mask != ListMask::default(),
                lists: group.lists.clone(),
            });
            masks.push(mask);
        }
        if groups.is_empty() {
            groups.push(Group {
                name: crate::settings::DEFAULT_GROUP.to_string(),
                block_mode: BlockMode::NullAddress,
                block_ttl: 0,
                safe_search: false,
                view: 0,
                filters: false,
                lists: Vec::new(),
            });
            masks.push(ListMask::default());
        }
        let mut zone_nets = Vec::new();
        for (index, zone) in filter.zones.iter().enumerate() {
            let Ok(index) = u16::try_from(index) else {
                break;
            };
            zone_nets.extend(zone.networks.iter().map(|net| (*net, index)));
        }
        let clients = ClientMap {
            explicit: NetTable::new(explicit),
            zones: NetTable::new(zone_nets),
            zone_group,
        };
        let filter = Filter {
            set: builder.build(&masks),
            groups,
            zones,
            clients,
        };
        (filter, loads)
    }

    /// The zone and group of a client.
    pub fn classify(&self, ip: IpAddr) -> Client {
        self.clients.classify(ip)
    }

    /// The group with this index; the default group for an unknown one.
    pub fn group(&self, index: u8) -> &Group {
        self.groups
            .get(usize::from(index))
            .or_else(|| self.groups.first())
            .unwrap_or(&NO_FILTERING)
    }

    /// What a client's question gets before any lookup: the rule that
    /// blocks it, or the view its answer comes from (the group's upstreams,
    /// and safe search where the group enforces it on this name).
    pub fn screen(&self, who: Client, name_wire: &[u8]) -> Screened {
        if let Some(found) = self.check(who.group, name_wire)
            && found.blocks()
        {
            return Screened::Blocked(found);
        }
        let group = self.group(who.group);
        let mut view = group.view;
        if group.safe_search && super::safesearch::target(name_wire).is_some() {
            view |= crate::fastpath::wire::VIEW_SAFE_SEARCH;
        }
        Screened::View(view)
    }

    /// The rule that decides `name_wire` for `group`, if any.
    pub fn check(&self, group: u8, name_wire: &[u8]) -> Option<Match> {
        if !self.group(group).filters {
            return None;
        }
        self.set.check(usize::from(group), name_wire)
    }

    /// The first name of a CNAME chain (given as concatenated wire names)
    /// that `group` blocks, with the rule that blocks it.
    pub fn check_chain<'a>(&self, group: u8, chain: &'a [u8]) -> Option<(&'a [u8], Match)> {
        if !self.group(group).filters {
            return None;
        }
        let mut rest = chain;
        while !rest.is_empty() {
            let len = wire_name_len(rest)?;
            let (name, tail) = rest.split_at(len);
            if let Some(found) = self.set.check(usize::from(group), name)
                && found.blocks()
            {
                return Some((name, found));
            }
            rest = tail;
        }
        None
    }

    /// The name of a zone index, if it has one.
    pub fn zone_name(&self, zone: u16) -> Option<&str> {
        self.zones.get(usize::from(zone)).map(String::as_str)
    }
}

static NO_FILTERING: Group = Group {
    name: String::new(),
    block_mode: BlockMode::NxDomain,
    block_ttl: 0,
    safe_search: false,
    view: 0,
    filters: false,
    lists: Vec::new(),
};

/// Length of the uncompressed wire name at the start of `wire`.
fn wire_name_len(wire: &[u8]) -> Option<usize> {
    let mut pos = 0;
    loop {
        let len = usize::from(*wire.get(pos)?);
        if len > 63 {
            return None;
        }
        pos += 1 + len;
        if len == 0 {
            return (pos <= wire.len()).then_some(pos);
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests
mod tests {
    use super::*;
    use crate::settings::{GroupSettings, ZoneNetworks};

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    fn settings() -> DnsSettings {
        let mut settings = DnsSettings::default();
        settings.filter.zones = vec![
            ZoneNetworks {
                name: "trusted".into(),
                networks: vec![net("10.0.20.0/24"), net("fd00:20::/64")],
            },
            ZoneNetworks {
                name: "iot".into(),
                networks: vec![net("10.0.40.0/24")],
            },
            ZoneNetworks {
                name: "lab".into(),
                networks: vec![net("10.0.0.0/8")],
            },
        ];
        settings.filter.groups.push(GroupSettings {
            name: "strict".into(),
            zones: vec!["iot".into()],
            clients: vec![net("10.0.20.7/32")],
            ..GroupSettings::default()
        });
        settings
    }

    #[test]
    fn clients_belong_to_the_zone_holding_their_address() {
        let (filter, _) = Filter::build(&settings(), |_| None);
        let at = |ip: &str| {
            let client = filter.classify(ip.parse().unwrap());
            (
                filter.zone_name(client.zone).map(str::to_string),
                filter.group(client.group).name.clone(),
            )
        };
        assert_eq!(at("10.0.20.5"), (Some("trusted".into()), "default".into()));
        assert_eq!(at("fd00:20::9"), (Some("trusted".into()), "default".into()));
        assert_eq!(at("10.0.40.5"), (Some("iot".into()), "strict".into()));
        // The /24 is more specific than the /8 that also holds it.
        assert_eq!(at("10.9.0.1"), (Some("lab".into()), "default".into()));
        assert_eq!(at("192.0.2.1"), (None, "default".into()));
        // Named clients win over their zone's group.
        assert_eq!(at("10.0.20.7"), (Some("trusted".into()), "strict".into()));
    }

    #[test]
    fn chain_names_are_split_on_their_root_label() {
        assert_eq!(wire_name_len(b"\x01a\x02bc\x00\x01d\x00"), Some(6));
        assert_eq!(wire_name_len(b"\x01a"), None);
        assert_eq!(wire_name_len(b"\xc0\x0c"), None);
    }
}

//! From a checked [`Policy`] to a [`Ruleset`] whose size does not grow
//! with the number of zone pairs.
//!
//! Rules that only name zones, services and an action ("plain" rules) and
//! zone pair policies become elements of verdict maps keyed by interface
//! names, protocol and port: a packet pays for a few hash lookups whatever
//! the number of zones. Rules with addresses, logging or rate limits keep
//! their order in one chain per zone pair, reached through a verdict map
//! and looked at first. A plain rule that a later chained rule could also
//! match is kept in the chain, in its place, so that the first matching
//! rule still decides, exactly as [`crate::eval::decide`] reads the policy.

use std::collections::BTreeMap;

use ipnet::IpNet;

use super::NodeServices;
use super::ir::{
    BaseChain, Chain, Field, Hook, KeyType, MapElement, NamedSet, Rhs, Rule, Ruleset, Stmt, Value,
    Verdict, VerdictMap,
};
use crate::model::{
    Action, AddressMatch, IcmpFamily, PairKey, Policy, Rule as PolicyRule, Service, Transport,
};

const REJECT_CHAIN: &str = "reject_packet";
const PRIORITY_FILTER: i32 = 0;
const PRIORITY_DSTNAT: i32 = -100;
const PRIORITY_SRCNAT: i32 = 100;
/// ICMPv6 that IPv6 cannot work without (RFC 4890), whatever the rules say.
const ICMPV6_FORWARD: &[&str] = &[
    "destination-unreachable",
    "packet-too-big",
    "time-exceeded",
    "parameter-problem",
];
const ICMPV6_INPUT: &[&str] = &[
    "destination-unreachable",
    "packet-too-big",
    "time-exceeded",
    "parameter-problem",
    "nd-router-solicit",
    "nd-router-advert",
    "nd-neighbor-solicit",
    "nd-neighbor-advert",
    "mld-listener-query",
    "mld-listener-report",
];

/// The IP protocol number of VRRP (RFC 5798 section 5.1.1.4).
const IPPROTO_VRRP: u8 = 112;

pub fn compile(policy: &Policy, node: &NodeServices) -> Ruleset {
    let mut ruleset = Ruleset {
        sets: address_sets(policy),
        maps: Vec::new(),
        chains: Vec::new(),
    };
    let mut input = Direction::new("input", vec![KeyType::Ifname]);
    let mut forward = Direction::new("forward", vec![KeyType::Ifname, KeyType::Ifname]);
    for (key, rules) in policy.rules_by_pair() {
        let direction = if key.to.is_none() {
            &mut input
        } else {
            &mut forward
        };
        direction.add_group(policy, &key, &rules);
    }
    for pair in &policy.pairs {
        let (Some(from), Some(to)) = (policy.zone(&pair.from), policy.zone(&pair.to)) else {
            continue;
        };
        forward.add_any(
            vec![
                Value::Ifname(from.interface.clone()),
                Value::Ifname(to.interface.clone()),
            ],
            verdict(pair.action),
            format!("policy:{}>{}", pair.from, pair.to),
        );
    }
    for zone in &policy.zones {
        let key = vec![Value::Ifname(zone.interface.clone())];
        input.defaults.push(MapElement {
            key: key.clone(),
            verdict: verdict(zone.input),
            comment: format!("default:{}", zone.name),
        });
        forward.defaults.push(MapElement {
            key,
            verdict: verdict(zone.forward),
            comment: format!("default:{}", zone.name),
        });
    }
    ruleset.sets.push(interface_set(
        "dns_intercept",
        policy.zones.iter().filter(|zone| zone.intercept_dns),
    ));
    ruleset.sets.push(interface_set(
        "masquerade_out",
        policy.zones.iter().filter(|zone| zone.masquerade),
    ));
    ruleset.sets.push(NamedSet {
        name: "vrrp".into(),
        key: KeyType::Ifname,
        interval: false,
        elements: node
            .vrrp_interfaces
            .iter()
            .map(|name| Value::Ifname(name.clone()))
            .collect(),
    });

    let mut input_chain = base_chain("input", Hook::Input, PRIORITY_FILTER, false);
    input_chain.rules.push(rule(
        vec![
            Stmt::Match(vec![Field::Iif], Rhs::Value(Value::Symbol("lo".into()))),
            Stmt::Verdict(Verdict::Accept),
        ],
        None,
    ));
    input_chain.rules.push(connection_state());
    input_chain.rules.push(icmpv6_essentials(ICMPV6_INPUT));
    input_chain.rules.push(rule(
        vec![
            Stmt::Match(vec![Field::Iifname], Rhs::Set("vrrp".into())),
            Stmt::Match(
                vec![Field::L4proto],
                Rhs::Value(Value::Protocol(IPPROTO_VRRP)),
            ),
            Stmt::Counter,
            Stmt::Verdict(Verdict::Accept),
        ],
        Some("vrrp".into()),
    ));
    input_chain.rules.push(rule(
        dns_from_intercepting_zones(Stmt::Verdict(Verdict::Accept)),
        Some("dns-intercept".into()),
    ));
    input.finish(&mut input_chain, &mut ruleset);

    let mut forward_chain = base_chain("forward", Hook::Forward, PRIORITY_FILTER, false);
    forward_chain.rules.push(connection_state());
    forward_chain.rules.push(icmpv6_essentials(ICMPV6_FORWARD));
    forward_chain.rules.push(rule(
        vec![
            Stmt::Match(
                vec![Field::CtStatus],
                Rhs::Value(Value::Symbol("dnat".into())),
            ),
            Stmt::Counter,
            Stmt::Verdict(Verdict::Accept),
        ],
        Some("port-forwards".into()),
    ));
    forward.finish(&mut forward_chain, &mut ruleset);

    let mut prerouting = base_chain("prerouting", Hook::Prerouting, PRIORITY_DSTNAT, true);
    prerouting.rules.push(rule(
        dns_from_intercepting_zones(Stmt::Redirect),
        Some("dns-intercept".into()),
    ));
    for forward in &policy.port_forwards {
        let Some(zone) = policy.zone(&forward.from) else {
            continue;
        };
        prerouting.rules.push(rule(
            vec![
                Stmt::Match(
                    vec![Field::Iifname],
                    Rhs::Value(Value::Ifname(zone.interface.clone())),
                ),
                Stmt::Match(
                    vec![Field::L4proto],
                    Rhs::Value(Value::Symbol(forward.transport.name().into())),
                ),
                Stmt::Match(vec![Field::Dport], Rhs::Value(Value::Port(forward.port))),
                Stmt::Counter,
                Stmt::Dnat(forward.to, forward.to_port),
            ],
            Some(format!("forward:{}", forward.name)),
        ));
    }
    let mut postrouting = base_chain("postrouting", Hook::Postrouting, PRIORITY_SRCNAT, true);
    postrouting.rules.push(rule(
        vec![
            Stmt::Match(vec![Field::Oifname], Rhs::Set("masquerade_out".into())),
            // IPv6 hosts have global addresses of their own: no NAT66.
            Stmt::Match(
                vec![Field::Nfproto],
                Rhs::Value(Value::Symbol("ipv4".into())),
            ),
            Stmt::Counter,
            Stmt::Masquerade,
        ],
        Some("masquerade".into()),
    ));

    let reject = Chain {
        name: REJECT_CHAIN.into(),
        base: None,
        rules: vec![
            rule(
                vec![
                    Stmt::Match(
                        vec![Field::L4proto],
                        Rhs::Value(Value::Symbol("tcp".into())),
                    ),
                    Stmt::RejectTcpReset,
                ],
                None,
            ),
            rule(vec![Stmt::Reject], None),
        ],
    };
    let mut chains = vec![input_chain, forward_chain, prerouting, postrouting, reject];
    chains.append(&mut ruleset.chains);
    ruleset.chains = chains;
    ruleset
}

/// First and last port, inclusive.
type PortRange = (u16, u16);

/// The maps and chains of one direction: to the router, or through it.
struct Direction {
    name: &'static str,
    prefix_types: Vec<KeyType>,
    ordered: Vec<MapElement>,
    /// Single ports: a hash lookup, whatever the number of elements.
    ports: Vec<MapElement>,
    /// Port ranges: an interval map, whose lookups slow as it grows, so
    /// only ranges go there.
    port_ranges: Vec<MapElement>,
    /// Port ranges already claimed, by key prefix and transport: later
    /// rules only get what is left, so map elements never overlap.
    claimed: BTreeMap<(Vec<Value>, Transport), Vec<PortRange>>,
    icmp: Vec<MapElement>,
    icmpv6: Vec<MapElement>,
    any: Vec<MapElement>,
    defaults: Vec<MapElement>,
    chains: Vec<Chain>,
}

impl Direction {
    fn new(name: &'static str, prefix_types: Vec<KeyType>) -> Direction {
        Direction {
            name,
            prefix_types,
            ordered: Vec::new(),
            ports: Vec::new(),
            port_ranges: Vec::new(),
            claimed: BTreeMap::new(),
            icmp: Vec::new(),
            icmpv6: Vec::new(),
            any: Vec::new(),
            defaults: Vec::new(),
            chains: Vec::new(),
        }
    }

    fn add_group(&mut self, policy: &Policy, key: &PairKey, rules: &[&PolicyRule]) {
        let Some(from) = policy.zone(&key.from) else {
            return;
        };
        let mut prefix = vec![Value::Ifname(from.interface.clone())];
        if let Some(to) = &key.to {
            let Some(to) = policy.zone(to) else { return };
            prefix.push(Value::Ifname(to.interface.clone()));
        }
        // Walk backwards: a plain rule must stay in order when any chained
        // rule after it could match the same packets.
        let mut chained = vec![false; rules.len()];
        for i in (0..rules.len()).rev() {
            chained[i] = !rules[i].is_plain()
                || (i + 1..rules.len())
                    .any(|later| chained[later] && services_overlap(rules[i], rules[later]));
        }
        let mut chain_rules = Vec::new();
        for (rule, chained) in rules.iter().zip(&chained) {
            if *chained {
                chain_rules.extend(chain_rule(policy, rule));
            } else {
                self.add_plain(&prefix, rule);
            }
        }
        if !chain_rules.is_empty() {
            let name = match &key.to {
                Some(to) => format!("{}_{}_{}", self.name, key.from, to),
                None => format!("{}_{}", self.name, key.from),
            };
            self.ordered.push(MapElement {
                key: prefix,
                verdict: Verdict::Jump(name.clone()),
                comment: format!("ordered:{name}"),
            });
            self.chains.push(Chain {
                name,
                base: None,
                rules: chain_rules,
            });
        }
    }

    fn add_plain(&mut self, prefix: &[Value], rule: &PolicyRule) {
        let comment = format!("rule:{}", rule.name);
        if self.any.iter().any(|element| element.key == prefix) {
            return; // an earlier rule took everything: this one never matches
        }
        if rule.services.is_empty() {
            self.add_any(prefix.to_vec(), verdict(rule.action), comment);
            return;
        }
        for service in &rule.services {
            match service {
                Service::Ports {
                    transport,
                    first,
                    last,
                } => {
                    let claimed = self
                        .claimed
                        .entry((prefix.to_vec(), *transport))
                        .or_default();
                    for (first, last) in unclaimed(claimed, *first, *last) {
                        claimed.push((first, last));
                        let mut key = prefix.to_vec();
                        key.push(Value::Symbol(transport.name().into()));
                        key.push(Value::Ports(first, last));
                        let map = if first == last {
                            &mut self.ports
                        } else {
                            &mut self.port_ranges
                        };
                        map.push(MapElement {
                            key,
                            verdict: verdict(rule.action),
                            comment: comment.clone(),
                        });
                    }
                }
                Service::Icmp { family, kind } => {
                    let map = match family {
                        IcmpFamily::V4 => &mut self.icmp,
                        IcmpFamily::V6 => &mut self.icmpv6,
                    };
                    let mut key = prefix.to_vec();
                    key.push(Value::Symbol(kind.clone()));
                    if map.iter().all(|element| element.key != key) {
                        map.push(MapElement {
                            key,
                            verdict: verdict(rule.action),
                            comment: comment.clone(),
                        });
                    }
                }
            }
        }
    }

    /// Everything between a zone and a destination: the first such entry
    /// wins, so a rule written before a zone pair policy takes precedence.
    fn add_any(&mut self, key: Vec<Value>, verdict: Verdict, comment: String) {
        if self.any.iter().all(|element| element.key != key) {
            self.any.push(MapElement {
                key,
                verdict,
                comment,
            });
        }
    }

    /// Adds the lookups to the base chain and the maps and chains they use.
    fn finish(self, base: &mut Chain, ruleset: &mut Ruleset) {
        let prefix_fields: Vec<Field> = if self.prefix_types.len() == 1 {
            vec![Field::Iifname]
        } else {
            vec![Field::Iifname, Field::Oifname]
        };
        let with = |extra: &[Field]| {
            let mut fields = prefix_fields.clone();
            fields.extend_from_slice(extra);
            fields
        };
        let types_with = |extra: &[KeyType]| {
            let mut types = self.prefix_types.clone();
            types.extend_from_slice(extra);
            types
        };
        let maps = [
            ("ordered", with(&[]), types_with(&[]), false, self.ordered),
            (
                "ports",
                with(&[Field::L4proto, Field::Dport]),
                types_with(&[KeyType::InetProto, KeyType::InetService]),
                false,
                self.ports,
            ),
            (
                "port_ranges",
                with(&[Field::L4proto, Field::Dport]),
                types_with(&[KeyType::InetProto, KeyType::InetService]),
                true,
                self.port_ranges,
            ),
            (
                "icmp",
                with(&[Field::IcmpType]),
                types_with(&[KeyType::IcmpType]),
                false,
                self.icmp,
            ),
            (
                "icmpv6",
                with(&[Field::Icmpv6Type]),
                types_with(&[KeyType::Icmpv6Type]),
                false,
                self.icmpv6,
            ),
            ("any", with(&[]), types_with(&[]), false, self.any),
            (
                "defaults",
                vec![Field::Iifname],
                vec![KeyType::Ifname],
                false,
                self.defaults,
            ),
        ];
        for (suffix, fields, key, interval, elements) in maps {
            let name = format!("{}_{suffix}", self.name);
            base.rules
                .push(rule(vec![Stmt::Vmap(fields, name.clone())], None));
            ruleset.maps.push(VerdictMap {
                name,
                key,
                interval,
                elements,
            });
        }
        ruleset.chains.extend(self.chains);
    }
}

/// The parts of `first..=last` not yet claimed.
fn unclaimed(claimed: &[(u16, u16)], first: u16, last: u16) -> Vec<(u16, u16)> {
    let mut free = vec![(first, last)];
    for &(taken_first, taken_last) in claimed {
        free = free
            .into_iter()
            .flat_map(|(a, b)| {
                let mut left = Vec::new();
                if b < taken_first || a > taken_last {
                    left.push((a, b));
                } else {
                    if a < taken_first {
                        left.push((a, taken_first - 1));
                    }
                    if b > taken_last {
                        left.push((taken_last + 1, b));
                    }
                }
                left
            })
            .collect();
    }
    free
}

fn services_overlap(a: &PolicyRule, b: &PolicyRule) -> bool {
    if a.services.is_empty() || b.services.is_empty() {
        return true;
    }
    a.services
        .iter()
        .any(|x| b.services.iter().any(|y| x.overlaps(y)))
}

/// One policy rule as chain rules: one per address family it needs and
/// per kind of service, in the rule's place.
fn chain_rule(policy: &Policy, rule: &PolicyRule) -> Vec<Rule> {
    let mut out = Vec::new();
    let constrained = !rule.source.is_empty() || !rule.destination.is_empty();
    let families: &[Option<bool>] = if constrained {
        &[Some(false), Some(true)]
    } else {
        &[None]
    };
    for family in families {
        let mut addresses = Vec::new();
        if let Some(v6) = family {
            let (saddr, daddr) = if *v6 {
                (Field::Saddr6, Field::Daddr6)
            } else {
                (Field::Saddr4, Field::Daddr4)
            };
            let Some(source) = address_match(policy, &rule.source, *v6, saddr) else {
                continue;
            };
            let Some(destination) = address_match(policy, &rule.destination, *v6, daddr) else {
                continue;
            };
            addresses.extend(source);
            addresses.extend(destination);
        }
        for service in service_matches(&rule.services, *family) {
            let mut stmts = addresses.clone();
            stmts.extend(service);
            if let Some(limit) = rule.limit {
                stmts.push(Stmt::Limit(limit));
            }
            if let Some(prefix) = &rule.log {
                stmts.push(Stmt::Log(prefix.clone()));
            }
            stmts.push(Stmt::Counter);
            stmts.push(Stmt::Verdict(verdict(rule.action)));
            out.push(Rule {
                stmts,
                comment: Some(format!("rule:{}", rule.name)),
            });
        }
    }
    out
}

/// The match for one side's addresses in one family: `Some(None)` when
/// the side is unconstrained, `None` when it has nothing in this family.
fn address_match(
    policy: &Policy,
    wanted: &[AddressMatch],
    v6: bool,
    field: Field,
) -> Option<Option<Stmt>> {
    if wanted.is_empty() {
        return Some(None);
    }
    if let [AddressMatch::Set(name)] = wanted {
        let set = policy.address_set(name)?;
        if !set.addresses.iter().any(|net| is_v6(net) == v6) {
            return None;
        }
        return Some(Some(Stmt::Match(vec![field], Rhs::Set(set_name(name, v6)))));
    }
    let nets: Vec<Vec<Value>> = policy
        .networks(wanted)
        .into_iter()
        .filter(|net| is_v6(net) == v6)
        .map(|net| vec![Value::Net(net)])
        .collect();
    if nets.is_empty() {
        return None;
    }
    Some(Some(Stmt::Match(vec![field], Rhs::Anonymous(nets))))
}

/// The service matches of a chained rule, one per kind; an empty list
/// means one rule without a service match.
fn service_matches(services: &[Service], v6: Option<bool>) -> Vec<Vec<Stmt>> {
    if services.is_empty() {
        return vec![Vec::new()];
    }
    let mut out = Vec::new();
    for transport in [Transport::Tcp, Transport::Udp] {
        let ports: Vec<Vec<Value>> = services
            .iter()
            .filter_map(|service| match service {
                Service::Ports {
                    transport: t,
                    first,
                    last,
                } if *t == transport => Some(vec![Value::Ports(*first, *last)]),
                _ => None,
            })
            .collect();
        if !ports.is_empty() {
            out.push(vec![
                Stmt::Match(
                    vec![Field::L4proto],
                    Rhs::Value(Value::Symbol(transport.name().into())),
                ),
                Stmt::Match(vec![Field::Dport], Rhs::Anonymous(ports)),
            ]);
        }
    }
    for (family, field) in [
        (IcmpFamily::V4, Field::IcmpType),
        (IcmpFamily::V6, Field::Icmpv6Type),
    ] {
        if v6.is_some_and(|v6| v6 != (family == IcmpFamily::V6)) {
            continue;
        }
        let kinds: Vec<Vec<Value>> = services
            .iter()
            .filter_map(|service| match service {
                Service::Icmp { family: f, kind } if *f == family => {
                    Some(vec![Value::Symbol(kind.clone())])
                }
                _ => None,
            })
            .collect();
        if !kinds.is_empty() {
            out.push(vec![Stmt::Match(vec![field], Rhs::Anonymous(kinds))]);
        }
    }
    out
}

fn is_v6(net: &IpNet) -> bool {
    matches!(net, IpNet::V6(_))
}

fn set_name(name: &str, v6: bool) -> String {
    format!("set_{name}_{}", if v6 { "v6" } else { "v4" })
}

fn address_sets(policy: &Policy) -> Vec<NamedSet> {
    let mut sets = Vec::new();
    for set in &policy.address_sets {
        for v6 in [false, true] {
            let elements: Vec<Value> = set
                .addresses
                .iter()
                .filter(|net| is_v6(net) == v6)
                .map(|net| Value::Net(*net))
                .collect();
            if !elements.is_empty() {
                sets.push(NamedSet {
                    name: set_name(&set.name, v6),
                    key: if v6 {
                        KeyType::Ipv6Addr
                    } else {
                        KeyType::Ipv4Addr
                    },
                    interval: true,
                    elements,
                });
            }
        }
    }
    sets
}

fn interface_set<'a>(name: &str, zones: impl Iterator<Item = &'a crate::model::Zone>) -> NamedSet {
    NamedSet {
        name: name.into(),
        key: KeyType::Ifname,
        interval: false,
        elements: zones
            .map(|zone| Value::Ifname(zone.interface.clone()))
            .collect(),
    }
}

fn verdict(action: Action) -> Verdict {
    match action {
        Action::Accept => Verdict::Accept,
        Action::Drop => Verdict::Drop,
        Action::Reject => Verdict::Goto(REJECT_CHAIN.into()),
    }
}

fn rule(stmts: Vec<Stmt>, comment: Option<String>) -> Rule {
    Rule { stmts, comment }
}

fn base_chain(name: &str, hook: Hook, priority: i32, accept_by_default: bool) -> Chain {
    Chain {
        name: name.into(),
        base: Some(BaseChain {
            nat: matches!(hook, Hook::Prerouting | Hook::Postrouting),
            hook,
            priority,
            accept_by_default,
        }),
        rules: Vec::new(),
    }
}

/// DNS over UDP or TCP from a zone with `intercept_dns`, counted, then `last`.
fn dns_from_intercepting_zones(last: Stmt) -> Vec<Stmt> {
    vec![
        Stmt::Match(vec![Field::Iifname], Rhs::Set("dns_intercept".into())),
        Stmt::Match(
            vec![Field::L4proto, Field::Dport],
            Rhs::Anonymous(vec![
                vec![Value::Symbol("udp".into()), Value::Port(53)],
                vec![Value::Symbol("tcp".into()), Value::Port(53)],
            ]),
        ),
        Stmt::Counter,
        last,
    ]
}

fn connection_state() -> Rule {
    rule(
        vec![Stmt::InlineVmap(
            Field::CtState,
            vec![
                (Value::Symbol("established".into()), Verdict::Accept),
                (Value::Symbol("related".into()), Verdict::Accept),
                (Value::Symbol("invalid".into()), Verdict::Drop),
            ],
        )],
        None,
    )
}

fn icmpv6_essentials(kinds: &[&str]) -> Rule {
    rule(
        vec![
            Stmt::Match(
                vec![Field::Icmpv6Type],
                Rhs::Anonymous(
                    kinds
                        .iter()
                        .map(|kind| vec![Value::Symbol((*kind).into())])
                        .collect(),
                ),
            ),
            Stmt::Verdict(Verdict::Accept),
        ],
        None,
    )
}

//! The same policy as a hand-written nft ruleset would put it: one chain
//! per zone pair, reached by one `iifname . oifname` rule each from the
//! forward chain, and one nft rule per policy rule in it, then the pair's
//! default. No named sets, no verdict maps: what the compiled form is
//! measured against. A rule listing several ports or addresses is one nft
//! rule with anonymous sets (`tcp dport { 80, 443 }`), or, with
//! [`Layout::OnePerPort`], one nft rule per port and address, with no set
//! at all.
//!
//! The fixed parts (loopback, connection state, the ICMPv6 IPv6 needs,
//! port forwards' conntrack status, the NAT chains, the reject chain) are
//! the compiled form's, so the two differ only in how the policy's rules
//! are laid out. The table is the same `inet router`, replaced whole in
//! one transaction (`delete table` then the new table: `flush table`
//! would leave named sets' elements behind).

use std::fmt::Write as _;

use anyhow::{Result, bail};
use ipnet::IpNet;
use policies::model::{
    Action, AddressMatch, IcmpFamily, PairKey, Policy, Rule, Service, Transport,
};

/// ICMPv6 that IPv6 cannot work without, as the compiled form lets it in.
const ICMPV6_FORWARD: &str =
    "destination-unreachable, packet-too-big, time-exceeded, parameter-problem";
const ICMPV6_INPUT: &str = "destination-unreachable, packet-too-big, time-exceeded, \
     parameter-problem, nd-router-solicit, nd-router-advert, nd-neighbor-solicit, \
     nd-neighbor-advert, mld-listener-query, mld-listener-report";
const CT_STATE: &str = "ct state vmap { established : accept, related : accept, invalid : drop }";
/// Rules of the forward chain before the first zone pair jump.
const FORWARD_PREAMBLE: usize = 3;

/// How a policy rule with several ports or addresses is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// One nft rule per policy rule, with anonymous sets.
    OnePerRule,
    /// One nft rule per port (or range) and address.
    OnePerPort,
}

/// The naive ruleset as an `nft -f` script.
#[derive(Debug, Clone)]
pub struct Naive {
    pub text: String,
    /// nft rules in it.
    pub rules: usize,
    pub chains: usize,
    /// Rules a packet from `path.0` to `path.1` accepted by `path_rule` is
    /// matched against in the forward hook, the accepting one included.
    pub path_depth: usize,
}

/// Writes `policy` in the naive layout. Only what the benchmark's
/// generator produces beyond rules and defaults is refused: masquerade,
/// DNS interception and port forwards.
pub fn render(
    policy: &Policy,
    path: (&str, &str),
    path_rule: &str,
    layout: Layout,
) -> Result<Naive> {
    if policy.zones.iter().any(|z| z.masquerade || z.intercept_dns)
        || !policy.port_forwards.is_empty()
    {
        bail!("the naive form does not render masquerade, DNS interception or port forwards");
    }
    let mut out = Script::default();
    out.text
        .push_str("table inet router\ndelete table inet router\ntable inet router {\n");

    let by_pair = policy.rules_by_pair();

    out.chain_start(
        "input",
        Some("type filter hook input priority 0; policy drop;"),
    );
    out.rule("iif \"lo\" accept");
    out.rule(CT_STATE);
    out.rule(&format!("icmpv6 type {{ {ICMPV6_INPUT} }} accept"));
    for zone in &policy.zones {
        out.rule(&format!(
            "iifname \"{}\" jump in_{}",
            zone.interface, zone.name
        ));
    }
    out.chain_end();
    for zone in &policy.zones {
        out.chain_start(&format!("in_{}", zone.name), None);
        let key = PairKey {
            from: zone.name.clone(),
            to: None,
        };
        for rule in by_pair.get(&key).into_iter().flatten() {
            for line in rule_lines(policy, rule, layout) {
                out.rule(&line);
            }
        }
        out.rule(&format!("counter {}", verdict(zone.input)));
        out.chain_end();
    }

    out.chain_start(
        "forward",
        Some("type filter hook forward priority 0; policy drop;"),
    );
    out.rule(CT_STATE);
    out.rule(&format!("icmpv6 type {{ {ICMPV6_FORWARD} }} accept"));
    out.rule("ct status dnat counter accept");
    let mut jumps = 0;
    let mut path_depth = None;
    let mut pair_chains = String::new();
    for from in &policy.zones {
        for to in &policy.zones {
            if from.name == to.name {
                continue;
            }
            let chain = format!("fw_{}_{}", from.name, to.name);
            out.rule(&format!(
                "iifname \"{}\" oifname \"{}\" jump {chain}",
                from.interface, to.interface
            ));
            jumps += 1;
            let mut pair = Script::default();
            pair.chain_start(&chain, None);
            let rules = by_pair.get(&PairKey {
                from: from.name.clone(),
                to: Some(to.name.clone()),
            });
            for rule in rules.into_iter().flatten() {
                if (from.name.as_str(), to.name.as_str()) == path && rule.name == path_rule {
                    path_depth.get_or_insert(FORWARD_PREAMBLE + jumps + pair.rules + 1);
                }
                for line in rule_lines(policy, rule, layout) {
                    pair.rule(&line);
                }
            }
            let default = policy
                .pair(&from.name, &to.name)
                .map_or(from.forward, |pair| pair.action);
            pair.rule(&format!("counter {}", verdict(default)));
            pair.chain_end();
            out.rules += pair.rules;
            out.chains += pair.chains;
            pair_chains.push_str(&pair.text);
        }
    }
    for zone in &policy.zones {
        out.rule(&format!(
            "iifname \"{}\" counter {}",
            zone.interface,
            verdict(zone.forward)
        ));
    }
    out.chain_end();
    out.text.push_str(&pair_chains);

    out.chain_start(
        "prerouting",
        Some("type nat hook prerouting priority -100; policy accept;"),
    );
    out.chain_end();
    out.chain_start(
        "postrouting",
        Some("type nat hook postrouting priority 100; policy accept;"),
    );
    out.chain_end();
    out.chain_start("reject_packet", None);
    out.rule("meta l4proto tcp reject with tcp reset");
    out.rule("reject");
    out.chain_end();
    out.text.push_str("}\n");

    let Some(path_depth) = path_depth else {
        bail!(
            "rule {path_rule} is not among the rules from {} to {}",
            path.0,
            path.1
        );
    };
    Ok(Naive {
        text: out.text,
        rules: out.rules,
        chains: out.chains,
        path_depth,
    })
}

#[derive(Default)]
struct Script {
    text: String,
    rules: usize,
    chains: usize,
}

impl Script {
    fn chain_start(&mut self, name: &str, base: Option<&str>) {
        let _ = writeln!(self.text, "\tchain {name} {{");
        if let Some(base) = base {
            let _ = writeln!(self.text, "\t\t{base}");
        }
        self.chains += 1;
    }

    fn rule(&mut self, line: &str) {
        let _ = writeln!(self.text, "\t\t{line}");
        self.rules += 1;
    }

    fn chain_end(&mut self) {
        self.text.push_str("\t}\n");
    }
}

fn verdict(action: Action) -> &'static str {
    match action {
        Action::Accept => "accept",
        Action::Drop => "drop",
        Action::Reject => "goto reject_packet",
    }
}

/// One policy rule as nft rules: one, unless it mixes address families
/// or ICMP with ports (each such part is a rule of its own, as the
/// compiled form's chains do it).
fn rule_lines(policy: &Policy, rule: &Rule, layout: Layout) -> Vec<String> {
    let mut tail = String::new();
    if let Some(limit) = rule.limit {
        let _ = write!(tail, "limit rate {}/{} ", limit.rate, limit.per.name());
    }
    if let Some(prefix) = &rule.log {
        let _ = write!(tail, "log prefix \"{prefix}\" ");
    }
    let _ = write!(tail, "counter {}", verdict(rule.action));

    // (address matches, family: None for both)
    let mut prefixes: Vec<(String, Option<bool>)> = Vec::new();
    if rule.source.is_empty() && rule.destination.is_empty() {
        prefixes.push((String::new(), None));
    } else {
        for (v6, saddr, daddr) in [
            (false, "ip saddr", "ip daddr"),
            (true, "ip6 saddr", "ip6 daddr"),
        ] {
            let source = nets(policy, &rule.source, v6);
            let destination = nets(policy, &rule.destination, v6);
            if (!rule.source.is_empty() && source.is_empty())
                || (!rule.destination.is_empty() && destination.is_empty())
            {
                continue;
            }
            for source in matches(saddr, &source, layout) {
                for destination in matches(daddr, &destination, layout) {
                    prefixes.push((format!("{source}{destination}"), Some(v6)));
                }
            }
        }
    }

    let mut lines = Vec::new();
    for (prefix, family) in prefixes {
        for service in service_matches(&rule.services, family, layout) {
            lines.push(format!("{prefix}{service}{tail}"));
        }
    }
    lines
}

fn nets(policy: &Policy, wanted: &[AddressMatch], v6: bool) -> Vec<String> {
    policy
        .networks(wanted)
        .into_iter()
        .filter(|net| matches!(net, IpNet::V6(_)) == v6)
        .map(|net| {
            if net.prefix_len() == net.max_prefix_len() {
                net.addr().to_string()
            } else {
                net.to_string()
            }
        })
        .collect()
}

/// `KEYWORD VALUES ` as one match, or one match per value; one empty
/// match when there are no values (the side is not constrained).
fn matches(keyword: &str, values: &[String], layout: Layout) -> Vec<String> {
    match (values, layout) {
        ([], _) => vec![String::new()],
        (_, Layout::OnePerRule) => vec![format!("{keyword} {} ", one_or_set(values))],
        (_, Layout::OnePerPort) => values.iter().map(|v| format!("{keyword} {v} ")).collect(),
    }
}

fn one_or_set(items: &[String]) -> String {
    match items {
        [one] => one.clone(),
        many => format!("{{ {} }}", many.join(", ")),
    }
}

/// The service part of each nft rule for `services` (with a trailing
/// space), in the address family `family` when the rule has addresses.
fn service_matches(services: &[Service], family: Option<bool>, layout: Layout) -> Vec<String> {
    if services.is_empty() {
        return vec![String::new()];
    }
    let ports = |wanted: Transport| -> Vec<String> {
        services
            .iter()
            .filter_map(|service| match service {
                Service::Ports {
                    transport,
                    first,
                    last,
                } if *transport == wanted => Some(if first == last {
                    first.to_string()
                } else {
                    format!("{first}-{last}")
                }),
                _ => None,
            })
            .collect()
    };
    let (tcp, udp) = (ports(Transport::Tcp), ports(Transport::Udp));
    let mut out = Vec::new();
    match (tcp.is_empty(), udp.is_empty()) {
        _ if layout == Layout::OnePerPort => {
            out.extend(
                matches("tcp dport", &tcp, layout)
                    .into_iter()
                    .filter(|m| !m.is_empty()),
            );
            out.extend(
                matches("udp dport", &udp, layout)
                    .into_iter()
                    .filter(|m| !m.is_empty()),
            );
        }
        (false, true) => out.push(format!("tcp dport {} ", one_or_set(&tcp))),
        (true, false) => out.push(format!("udp dport {} ", one_or_set(&udp))),
        (false, false) => {
            let entries: Vec<String> = tcp
                .iter()
                .map(|port| format!("tcp . {port}"))
                .chain(udp.iter().map(|port| format!("udp . {port}")))
                .collect();
            out.push(format!(
                "meta l4proto . th dport {{ {} }} ",
                entries.join(", ")
            ));
        }
        (true, true) => {}
    }
    for (wanted, keyword) in [(IcmpFamily::V4, "icmp"), (IcmpFamily::V6, "icmpv6")] {
        if family.is_some_and(|v6| v6 != (wanted == IcmpFamily::V6)) {
            continue;
        }
        let kinds: Vec<String> = services
            .iter()
            .filter_map(|service| match service {
                Service::Icmp { family, kind } if *family == wanted => Some(kind.clone()),
                _ => None,
            })
            .collect();
        if !kinds.is_empty() {
            out.extend(matches(&format!("{keyword} type"), &kinds, layout));
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)] // test code
mod tests {
    use std::path::Path;

    use super::*;
    use crate::generate::{PATH_RULE, Shape, generate};

    #[test]
    fn one_chain_per_pair_and_the_path_rule_last_of_the_last_pair() {
        let generated = generate(Shape {
            zones: 4,
            rules: 40,
            addressed_percent: 10,
            seed: 1,
            rule_files: 1,
        });
        let files: Vec<(&Path, &str)> = generated
            .files
            .iter()
            .map(|(name, text)| (Path::new(name.as_str()), text.as_str()))
            .collect();
        let loaded = policies::parse_files(&files, &policies::Protected::default())
            .expect("the generated policy validates");
        let naive =
            render(&loaded.policy, ("z4", "z3"), PATH_RULE, Layout::OnePerRule).expect("renders");
        // input + forward + 4 zone chains + 12 pair chains + nat + reject.
        assert_eq!(naive.chains, 2 + 4 + 12 + 3);
        assert!(
            naive
                .text
                .contains("iifname \"z4\" oifname \"z3\" jump fw_z4_z3\n")
        );
        let pair = naive
            .text
            .split("chain fw_z4_z3 {")
            .nth(1)
            .and_then(|rest| rest.split("\n\t}\n").next())
            .expect("the pair's chain");
        let lines: Vec<&str> = pair
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();
        assert_eq!(
            lines[lines.len() - 2],
            "udp dport 9999 counter accept",
            "{pair}"
        );
        // 3 preamble rules, the 12th (last) jump, then the pair's rules.
        assert_eq!(naive.path_depth, 3 + 12 + lines.len() - 1);
    }

    #[test]
    fn mixed_services_stay_one_rule() {
        let services = [
            Service::Ports {
                transport: Transport::Udp,
                first: 53,
                last: 53,
            },
            Service::Ports {
                transport: Transport::Tcp,
                first: 1000,
                last: 2000,
            },
        ];
        assert_eq!(
            service_matches(&services, None, Layout::OnePerRule),
            ["meta l4proto . th dport { tcp . 1000-2000, udp . 53 } "]
        );
        assert_eq!(
            service_matches(&services, None, Layout::OnePerPort),
            ["tcp dport 1000-2000 ", "udp dport 53 "]
        );
    }
}

//! The compiled ruleset: a small model of the nft objects we emit, which
//! renders both to nft's JSON (to apply) and to nft text (to read).

use std::fmt::Write as _;
use std::net::IpAddr;

use ipnet::IpNet;

use crate::model::Limit;

/// The table the appliance owns; nothing else on the host is touched.
pub const TABLE: &str = "router";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ruleset {
    pub sets: Vec<NamedSet>,
    pub maps: Vec<VerdictMap>,
    pub chains: Vec<Chain>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyType {
    Ifname,
    InetProto,
    InetService,
    Ipv4Addr,
    Ipv6Addr,
    IcmpType,
    Icmpv6Type,
}

impl KeyType {
    pub fn nft_name(self) -> &'static str {
        match self {
            KeyType::Ifname => "ifname",
            KeyType::InetProto => "inet_proto",
            KeyType::InetService => "inet_service",
            KeyType::Ipv4Addr => "ipv4_addr",
            KeyType::Ipv6Addr => "ipv6_addr",
            KeyType::IcmpType => "icmp_type",
            KeyType::Icmpv6Type => "icmpv6_type",
        }
    }
}

/// A value in a match, a set or a map key.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Value {
    /// An interface name (quoted in nft text).
    Ifname(String),
    /// A keyword nft knows: `tcp`, `echo-request`, `established`, `dnat`.
    Symbol(String),
    Port(u16),
    Ports(u16, u16),
    /// An IP protocol by number: names come from /etc/protocols, which a
    /// minimal system may lack.
    Protocol(u8),
    Net(IpNet),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Iifname,
    Oifname,
    Iif,
    Nfproto,
    L4proto,
    Dport,
    IcmpType,
    Icmpv6Type,
    Saddr4,
    Daddr4,
    Saddr6,
    Daddr6,
    CtState,
    CtStatus,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Accept,
    Drop,
    Goto(String),
    Jump(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rhs {
    Value(Value),
    /// An anonymous set; each entry has one value per key field.
    Anonymous(Vec<Vec<Value>>),
    /// A named set.
    Set(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stmt {
    Match(Vec<Field>, Rhs),
    /// A lookup in a named verdict map.
    Vmap(Vec<Field>, String),
    /// A lookup in an inline verdict map.
    InlineVmap(Field, Vec<(Value, Verdict)>),
    Limit(Limit),
    Log(String),
    Counter,
    Verdict(Verdict),
    RejectTcpReset,
    Reject,
    Masquerade,
    Redirect,
    Dnat(IpAddr, u16),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub stmts: Vec<Stmt>,
    pub comment: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hook {
    Prerouting,
    Input,
    Forward,
    Output,
    Postrouting,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BaseChain {
    pub nat: bool,
    pub hook: Hook,
    pub priority: i32,
    pub accept_by_default: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chain {
    pub name: String,
    pub base: Option<BaseChain>,
    pub rules: Vec<Rule>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamedSet {
    pub name: String,
    pub key: KeyType,
    pub interval: bool,
    pub elements: Vec<Value>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MapElement {
    pub key: Vec<Value>,
    pub verdict: Verdict,
    /// Says which rule or policy the element came from; `stats` sums
    /// element counters by it.
    pub comment: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerdictMap {
    pub name: String,
    pub key: Vec<KeyType>,
    pub interval: bool,
    pub elements: Vec<MapElement>,
}

impl Ruleset {
    /// How many rules the ruleset holds: what a packet may walk through.
    pub fn rule_count(&self) -> usize {
        self.chains.iter().map(|chain| chain.rules.len()).sum()
    }

    pub fn element_count(&self) -> usize {
        self.maps
            .iter()
            .map(|map| map.elements.len())
            .sum::<usize>()
            + self
                .sets
                .iter()
                .map(|set| set.elements.len())
                .sum::<usize>()
    }

    /// The ruleset as `nft list table inet router` would print it.
    pub fn to_text(&self) -> String {
        let mut out = format!("table inet {TABLE} {{\n");
        for set in &self.sets {
            let _ = writeln!(out, "\tset {} {{", set.name);
            let _ = writeln!(out, "\t\ttype {}", set.key.nft_name());
            if set.interval {
                out.push_str("\t\tflags interval\n");
            }
            if !set.elements.is_empty() {
                let elements: Vec<String> = set.elements.iter().map(value_text).collect();
                let _ = writeln!(out, "\t\telements = {{ {} }}", elements.join(", "));
            }
            out.push_str("\t}\n\n");
        }
        for map in &self.maps {
            let key: Vec<&str> = map.key.iter().map(|key| key.nft_name()).collect();
            let _ = writeln!(out, "\tmap {} {{", map.name);
            let _ = writeln!(out, "\t\ttype {} : verdict", key.join(" . "));
            if map.interval {
                out.push_str("\t\tflags interval\n");
            }
            out.push_str("\t\tcounter\n");
            if !map.elements.is_empty() {
                out.push_str("\t\telements = {");
                for (i, element) in map.elements.iter().enumerate() {
                    let key: Vec<String> = element.key.iter().map(value_text).collect();
                    let _ = write!(
                        out,
                        "{}\n\t\t\t{} counter comment \"{}\" : {}",
                        if i == 0 { "" } else { "," },
                        key.join(" . "),
                        element.comment,
                        verdict_text(&element.verdict)
                    );
                }
                out.push_str(" }\n");
            }
            out.push_str("\t}\n\n");
        }
        for (i, chain) in self.chains.iter().enumerate() {
            if i > 0 {
                out.push('\n');
            }
            let _ = writeln!(out, "\tchain {} {{", chain.name);
            if let Some(base) = &chain.base {
                let _ = writeln!(
                    out,
                    "\t\ttype {} hook {} priority {}; policy {};",
                    if base.nat { "nat" } else { "filter" },
                    hook_name(base.hook),
                    base.priority,
                    if base.accept_by_default {
                        "accept"
                    } else {
                        "drop"
                    }
                );
            }
            for rule in &chain.rules {
                let stmts: Vec<String> = rule.stmts.iter().map(stmt_text).collect();
                out.push_str("\t\t");
                out.push_str(&stmts.join(" "));
                if let Some(comment) = &rule.comment {
                    let _ = write!(out, " comment \"{comment}\"");
                }
                out.push('\n');
            }
            out.push_str("\t}\n");
        }
        out.push_str("}\n");
        out
    }
}

pub fn hook_name(hook: Hook) -> &'static str {
    match hook {
        Hook::Prerouting => "prerouting",
        Hook::Input => "input",
        Hook::Forward => "forward",
        Hook::Output => "output",
        Hook::Postrouting => "postrouting",
    }
}

fn value_text(value: &Value) -> String {
    match value {
        Value::Ifname(name) => format!("\"{name}\""),
        Value::Symbol(symbol) => symbol.clone(),
        Value::Port(port) => port.to_string(),
        Value::Protocol(number) => number.to_string(),
        Value::Ports(first, last) if first == last => first.to_string(),
        Value::Ports(first, last) => format!("{first}-{last}"),
        Value::Net(net) if net.prefix_len() == net.max_prefix_len() => net.addr().to_string(),
        Value::Net(net) => net.to_string(),
    }
}

fn field_text(field: Field) -> &'static str {
    match field {
        Field::Iifname => "iifname",
        Field::Oifname => "oifname",
        Field::Iif => "iif",
        Field::Nfproto => "meta nfproto",
        Field::L4proto => "meta l4proto",
        Field::Dport => "th dport",
        Field::IcmpType => "icmp type",
        Field::Icmpv6Type => "icmpv6 type",
        Field::Saddr4 => "ip saddr",
        Field::Daddr4 => "ip daddr",
        Field::Saddr6 => "ip6 saddr",
        Field::Daddr6 => "ip6 daddr",
        Field::CtState => "ct state",
        Field::CtStatus => "ct status",
    }
}

fn fields_text(fields: &[Field]) -> String {
    let names: Vec<&str> = fields.iter().map(|field| field_text(*field)).collect();
    names.join(" . ")
}

fn verdict_text(verdict: &Verdict) -> String {
    match verdict {
        Verdict::Accept => "accept".into(),
        Verdict::Drop => "drop".into(),
        Verdict::Goto(chain) => format!("goto {chain}"),
        Verdict::Jump(chain) => format!("jump {chain}"),
    }
}

fn stmt_text(stmt: &Stmt) -> String {
    match stmt {
        Stmt::Match(fields, Rhs::Value(value)) => {
            format!("{} {}", fields_text(fields), value_text(value))
        }
        Stmt::Match(fields, Rhs::Anonymous(entries)) => {
            let entries: Vec<String> = entries
                .iter()
                .map(|entry| {
                    let values: Vec<String> = entry.iter().map(value_text).collect();
                    values.join(" . ")
                })
                .collect();
            format!("{} {{ {} }}", fields_text(fields), entries.join(", "))
        }
        Stmt::Match(fields, Rhs::Set(name)) => format!("{} @{name}", fields_text(fields)),
        Stmt::Vmap(fields, map) => format!("{} vmap @{map}", fields_text(fields)),
        Stmt::InlineVmap(field, entries) => {
            let entries: Vec<String> = entries
                .iter()
                .map(|(value, verdict)| {
                    format!("{} : {}", value_text(value), verdict_text(verdict))
                })
                .collect();
            format!("{} vmap {{ {} }}", field_text(*field), entries.join(", "))
        }
        Stmt::Limit(limit) => format!("limit rate {}/{}", limit.rate, limit.per.name()),
        Stmt::Log(prefix) => format!("log prefix \"{prefix}\""),
        Stmt::Counter => "counter".into(),
        Stmt::Verdict(verdict) => verdict_text(verdict),
        Stmt::RejectTcpReset => "reject with tcp reset".into(),
        Stmt::Reject => "reject".into(),
        Stmt::Masquerade => "masquerade".into(),
        Stmt::Redirect => "redirect".into(),
        Stmt::Dnat(IpAddr::V4(addr), port) => format!("dnat ip to {addr}:{port}"),
        Stmt::Dnat(IpAddr::V6(addr), port) => format!("dnat ip6 to [{addr}]:{port}"),
    }
}

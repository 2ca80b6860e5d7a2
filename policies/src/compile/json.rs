//! The compiled ruleset as one nft JSON transaction, built with the
//! `nftables` crate's schema types.

use std::borrow::Cow;
use std::collections::HashSet;
use std::net::IpAddr;

use nftables::batch::Batch;
use nftables::expr::{
    self, Expression, Meta, MetaKey, NamedExpression, Payload, PayloadField, Prefix, SetItem,
};
use nftables::schema::{self, NfListObject, SetFlag, SetTypeValue};
use nftables::stmt::{self, AnonymousCounter, Counter, Operator, Statement};
use nftables::types::{NfChainPolicy, NfChainType, NfFamily, NfHook, RejectCode};

use super::ir::{
    Chain, Field, Hook, KeyType, MapElement, NamedSet, Rhs, Rule, Ruleset, Stmt, TABLE, Value,
    Verdict, VerdictMap,
};

const FAMILY: NfFamily = NfFamily::INet;

/// Replaces the appliance's table whole, in one transaction: the table is
/// added (so deleting it cannot fail), deleted, and built anew. Deleting
/// rather than flushing matters: a flush leaves named sets' elements in
/// place, and emptying large sets element by element takes seconds.
pub fn replace_table(ruleset: &Ruleset) -> serde_json::Value {
    let mut batch = Batch::new();
    batch.add(NfListObject::Table(table()));
    batch.delete(NfListObject::Table(table()));
    add_contents(&mut batch, ruleset);
    let mut json = serde_json::to_value(batch.to_nftables()).unwrap_or_default();
    patch_key_types(&mut json, ruleset);
    json
}

/// Removes the appliance's table, if present.
pub fn remove_table() -> serde_json::Value {
    let mut batch = Batch::new();
    batch.add(NfListObject::Table(table()));
    batch.delete(NfListObject::Table(table()));
    serde_json::to_value(batch.to_nftables()).unwrap_or_default()
}

/// The crate's set types lack `icmp_type`, `icmpv6_type` and `verdict`,
/// and maps cannot declare element counters: sets and maps are written
/// with a placeholder type and patched here, from the same ruleset.
fn patch_key_types(json: &mut serde_json::Value, ruleset: &Ruleset) {
    let Some(commands) = json
        .get_mut("nftables")
        .and_then(serde_json::Value::as_array_mut)
    else {
        return;
    };
    for command in commands {
        let Some(add) = command.get_mut("add") else {
            continue;
        };
        if let Some(map) = add.get_mut("map") {
            let name = map
                .get("name")
                .and_then(|n| n.as_str())
                .unwrap_or_default()
                .to_string();
            if let Some(ir) = ruleset.maps.iter().find(|m| m.name == name) {
                map["type"] = type_json(&ir.key);
                map["map"] = serde_json::Value::from("verdict");
                // Per-element counters need the map to declare them; the
                // crate has no field for that.
                map["stmt"] = serde_json::json!([{ "counter": null }]);
            }
            // The crate writes `accept` and `drop` as bare strings, which
            // nft reads as symbols; as map data it wants `{"accept": null}`.
            for element in map
                .get_mut("elem")
                .and_then(serde_json::Value::as_array_mut)
                .into_iter()
                .flatten()
            {
                if let Some(data) = element.get_mut(1)
                    && let Some(verdict) = data.as_str().map(str::to_string)
                {
                    *data = serde_json::json!({ verdict: null });
                }
            }
        } else if let Some(set) = add.get_mut("set") {
            let name = set
                .get("name")
                .and_then(|n| n.as_str())
                .unwrap_or_default()
                .to_string();
            if let Some(ir) = ruleset.sets.iter().find(|s| s.name == name) {
                set["type"] = type_json(&[ir.key]);
            }
        }
    }
}

fn type_json(keys: &[KeyType]) -> serde_json::Value {
    match keys {
        [single] => serde_json::Value::from(single.nft_name()),
        _ => serde_json::Value::from(keys.iter().map(|k| k.nft_name()).collect::<Vec<_>>()),
    }
}

fn table() -> schema::Table<'static> {
    schema::Table {
        family: FAMILY,
        name: TABLE.into(),
        handle: None,
    }
}

fn add_contents(batch: &mut Batch<'static>, ruleset: &Ruleset) {
    batch.add(NfListObject::Table(table()));
    for set in &ruleset.sets {
        batch.add(NfListObject::Set(Box::new(named_set(set))));
    }
    // Chains before maps: map elements jump to them.
    for chain in &ruleset.chains {
        batch.add(NfListObject::Chain(chain_object(chain)));
    }
    for map in &ruleset.maps {
        batch.add(NfListObject::Map(Box::new(verdict_map(map))));
    }
    for chain in &ruleset.chains {
        for rule in &chain.rules {
            batch.add(NfListObject::Rule(rule_object(&chain.name, rule)));
        }
    }
}

fn set_type(keys: &[KeyType]) -> SetTypeValue<'static> {
    let types: Vec<schema::SetType> = keys.iter().map(|key| key_type(*key)).collect();
    match types.as_slice() {
        [single] => SetTypeValue::Single(*single),
        _ => SetTypeValue::Concatenated(Cow::Owned(types)),
    }
}

/// The crate's type where it has one; [`patch_key_types`] writes the rest.
fn key_type(key: KeyType) -> schema::SetType {
    match key {
        KeyType::Ifname => schema::SetType::Ifname,
        KeyType::InetProto => schema::SetType::InetProto,
        KeyType::InetService => schema::SetType::InetService,
        KeyType::Ipv4Addr => schema::SetType::Ipv4Addr,
        KeyType::Ipv6Addr => schema::SetType::Ipv6Addr,
        KeyType::IcmpType | KeyType::Icmpv6Type => schema::SetType::Mark,
    }
}

fn flags(interval: bool) -> Option<HashSet<SetFlag>> {
    interval.then(|| HashSet::from([SetFlag::Interval]))
}

fn named_set(set: &NamedSet) -> schema::Set<'static> {
    schema::Set {
        family: FAMILY,
        table: TABLE.into(),
        name: set.name.clone().into(),
        set_type: set_type(&[set.key]),
        flags: flags(set.interval),
        elem: (!set.elements.is_empty())
            .then(|| Cow::Owned(set.elements.iter().map(value).collect())),
        ..schema::Set::default()
    }
}

fn verdict_map(map: &VerdictMap) -> schema::Map<'static> {
    schema::Map {
        family: FAMILY,
        table: TABLE.into(),
        name: map.name.clone().into(),
        set_type: set_type(&map.key),
        map: SetTypeValue::Single(schema::SetType::Mark),
        flags: flags(map.interval),
        elem: (!map.elements.is_empty())
            .then(|| Cow::Owned(map.elements.iter().map(map_element).collect())),
        ..schema::Map::default()
    }
}

fn map_element(element: &MapElement) -> Expression<'static> {
    let key = Expression::Named(NamedExpression::Elem(expr::Elem {
        val: Box::new(concat(element.key.iter().map(value).collect())),
        timeout: None,
        expires: None,
        comment: Some(element.comment.clone().into()),
        counter: Some(Counter::Anonymous(Some(AnonymousCounter::default()))),
    }));
    Expression::List(vec![key, verdict(&element.verdict)])
}

fn concat(mut values: Vec<Expression<'static>>) -> Expression<'static> {
    if values.len() == 1
        && let Some(single) = values.pop()
    {
        return single;
    }
    Expression::Named(NamedExpression::Concat(values))
}

fn chain_object(chain: &Chain) -> schema::Chain<'static> {
    let mut object = schema::Chain {
        family: FAMILY,
        table: TABLE.into(),
        name: chain.name.clone().into(),
        ..schema::Chain::default()
    };
    if let Some(base) = &chain.base {
        object._type = Some(if base.nat {
            NfChainType::NAT
        } else {
            NfChainType::Filter
        });
        object.hook = Some(match base.hook {
            Hook::Prerouting => NfHook::Prerouting,
            Hook::Input => NfHook::Input,
            Hook::Forward => NfHook::Forward,
            Hook::Output => NfHook::Output,
            Hook::Postrouting => NfHook::Postrouting,
        });
        object.prio = Some(base.priority);
        object.policy = Some(if base.accept_by_default {
            NfChainPolicy::Accept
        } else {
            NfChainPolicy::Drop
        });
    }
    object
}

fn rule_object(chain: &str, rule: &Rule) -> schema::Rule<'static> {
    schema::Rule {
        family: FAMILY,
        table: TABLE.into(),
        chain: chain.to_string().into(),
        expr: Cow::Owned(rule.stmts.iter().map(statement).collect()),
        handle: None,
        index: None,
        comment: rule.comment.clone().map(Cow::Owned),
    }
}

fn value(value: &Value) -> Expression<'static> {
    match value {
        Value::Ifname(name) => Expression::String(name.clone().into()),
        Value::Symbol(symbol) => Expression::String(symbol.clone().into()),
        Value::Port(port) => Expression::Number(u32::from(*port)),
        Value::Protocol(number) => Expression::Number(u32::from(*number)),
        Value::Ports(first, last) if first == last => Expression::Number(u32::from(*first)),
        Value::Ports(first, last) => Expression::Range(Box::new(expr::Range {
            range: [
                Expression::Number(u32::from(*first)),
                Expression::Number(u32::from(*last)),
            ],
        })),
        Value::Net(net) if net.prefix_len() == net.max_prefix_len() => {
            Expression::String(net.addr().to_string().into())
        }
        Value::Net(net) => Expression::Named(NamedExpression::Prefix(Prefix {
            addr: Box::new(Expression::String(net.network().to_string().into())),
            len: u32::from(net.prefix_len()),
        })),
    }
}

fn field(field: Field) -> Expression<'static> {
    let meta = |key| Expression::Named(NamedExpression::Meta(Meta { key }));
    let payload = |protocol: &'static str, name: &'static str| {
        Expression::Named(NamedExpression::Payload(Payload::PayloadField(
            PayloadField {
                protocol: protocol.into(),
                field: name.into(),
            },
        )))
    };
    let ct = |key: &'static str| {
        Expression::Named(NamedExpression::CT(expr::CT {
            key: key.into(),
            family: None,
            dir: None,
        }))
    };
    match field {
        Field::Iifname => meta(MetaKey::Iifname),
        Field::Oifname => meta(MetaKey::Oifname),
        Field::Iif => meta(MetaKey::Iif),
        Field::Nfproto => meta(MetaKey::Nfproto),
        Field::L4proto => meta(MetaKey::L4proto),
        Field::Dport => payload("th", "dport"),
        Field::IcmpType => payload("icmp", "type"),
        Field::Icmpv6Type => payload("icmpv6", "type"),
        Field::Saddr4 => payload("ip", "saddr"),
        Field::Daddr4 => payload("ip", "daddr"),
        Field::Saddr6 => payload("ip6", "saddr"),
        Field::Daddr6 => payload("ip6", "daddr"),
        Field::CtState => ct("state"),
        Field::CtStatus => ct("status"),
    }
}

fn fields(fields: &[Field]) -> Expression<'static> {
    concat(fields.iter().map(|f| field(*f)).collect())
}

fn verdict(verdict: &Verdict) -> Expression<'static> {
    Expression::Verdict(match verdict {
        Verdict::Accept => expr::Verdict::Accept,
        Verdict::Drop => expr::Verdict::Drop,
        Verdict::Goto(chain) => expr::Verdict::Goto(stmt::JumpTarget {
            target: chain.clone().into(),
        }),
        Verdict::Jump(chain) => expr::Verdict::Jump(stmt::JumpTarget {
            target: chain.clone().into(),
        }),
    })
}

fn verdict_statement(verdict: &Verdict) -> Statement<'static> {
    match verdict {
        Verdict::Accept => Statement::Accept(None),
        Verdict::Drop => Statement::Drop(None),
        Verdict::Goto(chain) => Statement::Goto(stmt::JumpTarget {
            target: chain.clone().into(),
        }),
        Verdict::Jump(chain) => Statement::Jump(stmt::JumpTarget {
            target: chain.clone().into(),
        }),
    }
}

fn statement(statement: &Stmt) -> Statement<'static> {
    match statement {
        Stmt::Match(keys, rhs) => {
            let right = match rhs {
                Rhs::Value(v) => value(v),
                Rhs::Set(name) => Expression::String(format!("@{name}").into()),
                Rhs::Anonymous(entries) => Expression::Named(NamedExpression::Set(
                    entries
                        .iter()
                        .map(|entry| SetItem::Element(concat(entry.iter().map(value).collect())))
                        .collect(),
                )),
            };
            // A status is a set of flags: `in` tests the bit, `==` would
            // demand that no other flag be set.
            let op = match rhs {
                Rhs::Value(_) if *keys != [Field::CtStatus] => Operator::EQ,
                _ => Operator::IN,
            };
            Statement::Match(stmt::Match {
                left: fields(keys),
                right,
                op,
            })
        }
        Stmt::Vmap(keys, map) => Statement::VerdictMap(stmt::VerdictMap {
            key: fields(keys),
            data: Expression::String(format!("@{map}").into()),
        }),
        Stmt::InlineVmap(key, entries) => Statement::VerdictMap(stmt::VerdictMap {
            key: field(*key),
            data: Expression::Named(NamedExpression::Set(
                entries
                    .iter()
                    .map(|(v, target)| {
                        SetItem::MappingStatement(value(v), verdict_statement(target))
                    })
                    .collect(),
            )),
        }),
        Stmt::Limit(limit) => Statement::Limit(stmt::Limit {
            rate: limit.rate,
            rate_unit: None,
            per: Some(limit.per.name().into()),
            burst: None,
            burst_unit: None,
            inv: None,
        }),
        Stmt::Log(prefix) => Statement::Log(Some(stmt::Log {
            prefix: Some(prefix.clone().into()),
            ..stmt::Log::new(None)
        })),
        Stmt::Counter => Statement::Counter(Counter::Anonymous(None)),
        Stmt::Verdict(target) => verdict_statement(target),
        Stmt::RejectTcpReset => Statement::Reject(Some(stmt::Reject::new(
            Some(stmt::RejectType::TCPReset),
            None,
        ))),
        Stmt::Reject => Statement::Reject(Some(stmt::Reject::new(
            Some(stmt::RejectType::ICMPX),
            Some(RejectCode::PortUnreach),
        ))),
        Stmt::Masquerade => Statement::Masquerade(None),
        Stmt::Redirect => Statement::Redirect(None),
        Stmt::Dnat(addr, port) => Statement::DNAT(Some(stmt::NAT {
            addr: Some(Expression::String(addr.to_string().into())),
            family: Some(match addr {
                IpAddr::V4(_) => stmt::NATFamily::IP,
                IpAddr::V6(_) => stmt::NATFamily::IP6,
            }),
            port: Some(Expression::Number(u32::from(*port))),
            flags: None,
        })),
    }
}

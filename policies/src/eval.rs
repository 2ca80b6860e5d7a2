//! The meaning of a policy, as plain code: which rule decides a packet.
//!
//! The compiled ruleset must agree with this; validation uses it to find
//! lockouts, and tests use it as the reference.

use std::net::IpAddr;

use serde::Serialize;

use crate::model::{
    Action, AddressMatch, Destination, IcmpFamily, Policy, Rule, Service, Transport,
};

/// What a packet carries above the network layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Payload {
    Port(Transport, u16),
    Icmp(IcmpFamily, String),
    Other,
}

/// A new connection's first packet, as the router sees it.
#[derive(Debug, Clone)]
pub struct Packet<'a> {
    pub from: &'a str,
    pub to: &'a Destination,
    pub payload: Payload,
    pub source: Option<IpAddr>,
    pub destination: Option<IpAddr>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DecidedBy {
    Rule(String),
    Pair { from: String, to: String },
    ZoneDefault(String),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Decision {
    pub action: Action,
    pub by: DecidedBy,
}

/// The first rule that matches, else the zone pair's policy, else the
/// source zone's default for that direction.
pub fn decide(policy: &Policy, packet: &Packet<'_>) -> Decision {
    if let Some(rule) = policy
        .rules
        .iter()
        .find(|rule| matches(policy, rule, packet))
    {
        return Decision {
            action: rule.action,
            by: DecidedBy::Rule(rule.name.clone()),
        };
    }
    if let Destination::Zone(to) = packet.to
        && let Some(pair) = policy.pair(packet.from, to)
    {
        return Decision {
            action: pair.action,
            by: DecidedBy::Pair {
                from: pair.from.clone(),
                to: pair.to.clone(),
            },
        };
    }
    let zone = policy.zone(packet.from);
    let action = match (zone, packet.to) {
        (Some(zone), Destination::Router) => zone.input,
        (Some(zone), Destination::Zone(_)) => zone.forward,
        (None, _) => Action::Drop,
    };
    Decision {
        action,
        by: DecidedBy::ZoneDefault(packet.from.to_string()),
    }
}

/// Whether `rule` matches `packet`; a rule's rate limit is taken as met.
pub fn matches(policy: &Policy, rule: &Rule, packet: &Packet<'_>) -> bool {
    rule.from.iter().any(|zone| zone == packet.from)
        && rule.to.contains(packet.to)
        && (rule.services.is_empty()
            || rule
                .services
                .iter()
                .any(|service| service_matches(service, &packet.payload)))
        && addresses_match(policy, &rule.source, packet.source)
        && addresses_match(policy, &rule.destination, packet.destination)
}

fn service_matches(service: &Service, payload: &Payload) -> bool {
    match (service, payload) {
        (
            Service::Ports {
                transport,
                first,
                last,
            },
            Payload::Port(packet_transport, port),
        ) => transport == packet_transport && (first..=last).contains(&port),
        (Service::Icmp { family, kind }, Payload::Icmp(packet_family, packet_kind)) => {
            family == packet_family && kind == packet_kind
        }
        _ => false,
    }
}

fn addresses_match(policy: &Policy, wanted: &[AddressMatch], addr: Option<IpAddr>) -> bool {
    if wanted.is_empty() {
        return true;
    }
    let Some(addr) = addr else { return false };
    wanted.iter().any(|wanted| match wanted {
        AddressMatch::Net(net) => net.contains(&addr),
        AddressMatch::Set(name) => policy
            .address_set(name)
            .is_some_and(|set| set.addresses.iter().any(|net| net.contains(&addr))),
    })
}

//! Checks across the whole policy: overlaps, shadowed rules, port forwards
//! that lead nowhere, and lockouts of the management zone.

use std::net::IpAddr;

use crate::error::Diagnostic;
use crate::eval::{self, DecidedBy, Packet, Payload};
use crate::load::Protected;
use crate::model::{Action, AddressMatch, Destination, Policy, Rule, Transport};

pub fn check(policy: &Policy, protected: &Protected) -> Vec<Diagnostic> {
    let mut found = Vec::new();
    overlapping_subnets(policy, &mut found);
    port_forwards(policy, &mut found);
    rules_inside_a_zone(policy, &mut found);
    shadowed_rules(policy, &mut found);
    lockout(policy, protected, &mut found);
    found
}

fn overlapping_subnets(policy: &Policy, found: &mut Vec<Diagnostic>) {
    for (i, zone) in policy.zones.iter().enumerate() {
        for earlier in &policy.zones[..i] {
            for net in zone.subnets() {
                if let Some(other) = earlier
                    .subnets()
                    .find(|other| other.contains(&net) || net.contains(other))
                {
                    found.push(
                        Diagnostic::error(
                            &zone.at,
                            format!(
                                "zone \"{}\" subnet {net} overlaps zone \"{}\" subnet {other} ({})",
                                zone.name, earlier.name, earlier.at
                            ),
                        )
                        .with_fix("give each zone a subnet of its own"),
                    );
                }
            }
        }
    }
}

fn port_forwards(policy: &Policy, found: &mut Vec<Diagnostic>) {
    for forward in &policy.port_forwards {
        match policy.zone_of_address(forward.to) {
            None => {
                let subnets: Vec<String> = policy
                    .zones
                    .iter()
                    .flat_map(|zone| {
                        zone.subnets()
                            .map(move |net| format!("{net} ({})", zone.name))
                    })
                    .collect();
                found.push(
                    Diagnostic::error(
                        &forward.at,
                        format!(
                            "port forward \"{}\" goes to {}, which is outside every zone",
                            forward.name, forward.to
                        ),
                    )
                    .with_fix(format!(
                        "forward to a host in one of: {}",
                        subnets.join(", ")
                    )),
                );
            }
            Some(zone) if zone.name == forward.from => found.push(Diagnostic::warning(
                &forward.at,
                format!(
                    "port forward \"{}\" leads back into zone \"{}\", where it came from",
                    forward.name, zone.name
                ),
            )),
            Some(_) => {}
        }
        if policy.port_forwards.iter().any(|other| {
            !std::ptr::eq(other, forward)
                && other.from == forward.from
                && other.transport == forward.transport
                && other.port == forward.port
                && other.at.line < forward.at.line
                && other.at.path == forward.at.path
        }) {
            found.push(Diagnostic::error(
                &forward.at,
                format!(
                    "port forward \"{}\": {}/{} from \"{}\" is already forwarded",
                    forward.name,
                    forward.transport.name(),
                    forward.port,
                    forward.from
                ),
            ));
        }
    }
}

fn rules_inside_a_zone(policy: &Policy, found: &mut Vec<Diagnostic>) {
    for rule in &policy.rules {
        if rule.from.len() == 1 && rule.to == [Destination::Zone(rule.from[0].clone())] {
            found.push(
                Diagnostic::warning(
                    &rule.at,
                    format!(
                        "rule \"{}\" is about traffic inside zone \"{}\", which never passes through the router",
                        rule.name, rule.from[0]
                    ),
                )
                .with_fix("remove it, or split the zone"),
            );
        }
    }
}

/// A rule is shadowed when an earlier rule without a rate limit matches
/// everything it does.
fn shadowed_rules(policy: &Policy, found: &mut Vec<Diagnostic>) {
    for (i, rule) in policy.rules.iter().enumerate() {
        if let Some(earlier) = policy.rules[..i]
            .iter()
            .find(|earlier| covers(earlier, rule))
        {
            found.push(
                Diagnostic::warning(
                    &rule.at,
                    format!(
                        "rule \"{}\" can never match: rule \"{}\" ({}) matches all its traffic first",
                        rule.name, earlier.name, earlier.at
                    ),
                )
                .with_fix(format!(
                    "move \"{}\" above \"{}\", or remove it",
                    rule.name, earlier.name
                )),
            );
        }
    }
}

fn covers(earlier: &Rule, rule: &Rule) -> bool {
    let services_covered = earlier.services.is_empty()
        || (!rule.services.is_empty()
            && rule
                .services
                .iter()
                .all(|service| earlier.services.iter().any(|e| e.covers(service))));
    earlier.limit.is_none()
        && rule.from.iter().all(|zone| earlier.from.contains(zone))
        && rule.to.iter().all(|to| earlier.to.contains(to))
        && services_covered
        && addresses_cover(&earlier.source, &rule.source)
        && addresses_cover(&earlier.destination, &rule.destination)
}

fn addresses_cover(earlier: &[AddressMatch], later: &[AddressMatch]) -> bool {
    if earlier.is_empty() {
        return true;
    }
    !later.is_empty()
        && later.iter().all(|wanted| {
            earlier.iter().any(|e| match (e, wanted) {
                (AddressMatch::Net(e), AddressMatch::Net(w)) => e.contains(w),
                _ => e == wanted,
            })
        })
}

/// The management zone must keep SSH (and any other protected port) to
/// the router. Rules may allow only some hosts, so every source address a
/// rule names is tried as well as an anonymous host of the zone.
fn lockout(policy: &Policy, protected: &Protected, found: &mut Vec<Diagnostic>) {
    let Some(management) = &policy.management else {
        if let Some(zone) = policy.zones.first() {
            found.push(
                Diagnostic::warning(
                    &zone.at,
                    "no [management] section: nothing stops a policy from locking you out",
                )
                .with_fix("add [management] with zone = \"<the zone you administer from>\""),
            );
        }
        return;
    };
    let Some(zone) = policy.zone(&management.zone) else {
        found.push(
            Diagnostic::error(
                &management.at,
                format!("unknown management zone \"{}\"", management.zone),
            )
            .with_fix("name one of the [[zone]] sections"),
        );
        return;
    };
    let mut sources: Vec<Option<IpAddr>> = vec![None];
    for rule in &policy.rules {
        sources.extend(
            policy
                .networks(&rule.source)
                .iter()
                .filter(|net| zone.subnets().any(|subnet| subnet.contains(*net)))
                .map(|net| Some(net.addr())),
        );
    }
    let ssh = (management.ssh_port, "SSH".to_string());
    for (port, what) in std::iter::once(&ssh).chain(&protected.tcp_ports) {
        let router = Destination::Router;
        let decisions: Vec<_> = sources
            .iter()
            .map(|source| {
                eval::decide(
                    policy,
                    &Packet {
                        from: &zone.name,
                        to: &router,
                        payload: Payload::Port(Transport::Tcp, *port),
                        source: *source,
                        destination: None,
                    },
                )
            })
            .collect();
        if decisions.iter().any(|d| d.action == Action::Accept) {
            continue;
        }
        let Some(decision) = decisions.first() else {
            continue;
        };
        let (at, by) = match &decision.by {
            DecidedBy::Rule(name) => (
                policy
                    .rules
                    .iter()
                    .find(|rule| &rule.name == name)
                    .map(|rule| rule.at.clone()),
                format!("rule \"{name}\" would {} it", decision.action),
            ),
            _ => (
                Some(zone.at.clone()),
                format!("zone \"{}\" has input = \"{}\"", zone.name, zone.input),
            ),
        };
        let at = at.unwrap_or_else(|| management.at.clone());
        found.push(
            Diagnostic::error(
                &at,
                format!(
                    "refused: this policy cuts the management zone \"{}\" off from the router's {what} (tcp/{port}): {by}",
                    zone.name
                ),
            )
            .with_fix(format!(
                "add a rule before it: from = \"{}\", to = \"router\", service = \"tcp/{port}\", action = \"accept\"",
                zone.name
            )),
        );
    }
}

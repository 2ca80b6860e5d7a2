//! What changes between two policies: in zone terms, and as nft text.

use similar::{ChangeTag, TextDiff};

use crate::model::{Policy, Rule, Zone};

/// Lines such as `+ zone iot`, `~ zone guests: forward reject -> drop`,
/// `- rule old-camera`; empty when nothing changes.
pub fn zone_terms(old: Option<&Policy>, new: &Policy) -> Vec<String> {
    let empty = Policy {
        management: None,
        zones: Vec::new(),
        pairs: Vec::new(),
        address_sets: Vec::new(),
        rules: Vec::new(),
        port_forwards: Vec::new(),
    };
    let old = old.unwrap_or(&empty);
    let mut lines = Vec::new();
    for zone in &new.zones {
        match old.zone(&zone.name) {
            None => lines.push(format!("+ zone {}", zone_summary(zone))),
            Some(before) => {
                let changes = zone_changes(before, zone);
                if !changes.is_empty() {
                    lines.push(format!("~ zone {}: {}", zone.name, changes.join(", ")));
                }
            }
        }
    }
    for zone in &old.zones {
        if new.zone(&zone.name).is_none() {
            lines.push(format!("- zone {}", zone_summary(zone)));
        }
    }
    for pair in &new.pairs {
        match old.pair(&pair.from, &pair.to) {
            None => lines.push(format!(
                "+ policy {} -> {}: {}",
                pair.from, pair.to, pair.action
            )),
            Some(before) if before.action != pair.action => lines.push(format!(
                "~ policy {} -> {}: {} -> {}",
                pair.from, pair.to, before.action, pair.action
            )),
            Some(_) => {}
        }
    }
    for pair in &old.pairs {
        if new.pair(&pair.from, &pair.to).is_none() {
            lines.push(format!(
                "- policy {} -> {}: {}",
                pair.from, pair.to, pair.action
            ));
        }
    }
    for set in &new.address_sets {
        match old.address_set(&set.name) {
            None => lines.push(format!("+ address set @{}", set.name)),
            Some(before) if before.addresses != set.addresses => {
                lines.push(format!("~ address set @{}: addresses changed", set.name));
            }
            Some(_) => {}
        }
    }
    for set in &old.address_sets {
        if new.address_set(&set.name).is_none() {
            lines.push(format!("- address set @{}", set.name));
        }
    }
    let old_order: Vec<&str> = old.rules.iter().map(|rule| rule.name.as_str()).collect();
    let new_order: Vec<&str> = new.rules.iter().map(|rule| rule.name.as_str()).collect();
    for rule in &new.rules {
        match old.rules.iter().find(|before| before.name == rule.name) {
            None => lines.push(format!("+ rule {}", rule_summary(rule))),
            Some(before) if !same_rule(before, rule) => {
                lines.push(format!("~ rule {}", rule_summary(rule)));
            }
            Some(_) => {}
        }
    }
    for rule in &old.rules {
        if !new.rules.iter().any(|after| after.name == rule.name) {
            lines.push(format!("- rule {}", rule_summary(rule)));
        }
    }
    let kept_old: Vec<&&str> = old_order.iter().filter(|n| new_order.contains(n)).collect();
    let kept_new: Vec<&&str> = new_order.iter().filter(|n| old_order.contains(n)).collect();
    if kept_old != kept_new {
        lines.push("~ rule order changed".into());
    }
    for forward in &new.port_forwards {
        let before = old.port_forwards.iter().find(|f| f.name == forward.name);
        let summary = format!(
            "port forward {}: {} {}/{} -> {}:{}",
            forward.name,
            forward.from,
            forward.transport.name(),
            forward.port,
            forward.to,
            forward.to_port
        );
        match before {
            None => lines.push(format!("+ {summary}")),
            Some(before)
                if (
                    before.from.as_str(),
                    before.transport,
                    before.port,
                    before.to,
                    before.to_port,
                ) != (
                    forward.from.as_str(),
                    forward.transport,
                    forward.port,
                    forward.to,
                    forward.to_port,
                ) =>
            {
                lines.push(format!("~ {summary}"));
            }
            Some(_) => {}
        }
    }
    for forward in &old.port_forwards {
        if !new.port_forwards.iter().any(|f| f.name == forward.name) {
            lines.push(format!("- port forward {}", forward.name));
        }
    }
    lines
}

fn zone_summary(zone: &Zone) -> String {
    let subnets: Vec<String> = zone.subnets().map(|net| net.to_string()).collect();
    format!(
        "{} ({}{}{}; input {}, forward {})",
        zone.name,
        zone.interface,
        if subnets.is_empty() { "" } else { ", " },
        subnets.join(", "),
        zone.input,
        zone.forward
    )
}

fn zone_changes(before: &Zone, after: &Zone) -> Vec<String> {
    let mut changes = Vec::new();
    if before.interface != after.interface {
        changes.push(format!(
            "interface {} -> {}",
            before.interface, after.interface
        ));
    }
    if before.ipv4 != after.ipv4 || before.ipv6 != after.ipv6 {
        let show = |zone: &Zone| {
            zone.router_addresses()
                .map(|net| net.to_string())
                .collect::<Vec<_>>()
                .join(" ")
        };
        changes.push(format!("addresses {} -> {}", show(before), show(after)));
    }
    if before.input != after.input {
        changes.push(format!("input {} -> {}", before.input, after.input));
    }
    if before.forward != after.forward {
        changes.push(format!("forward {} -> {}", before.forward, after.forward));
    }
    if before.masquerade != after.masquerade {
        changes.push(format!(
            "masquerade {} -> {}",
            before.masquerade, after.masquerade
        ));
    }
    if before.intercept_dns != after.intercept_dns {
        changes.push(format!(
            "intercept_dns {} -> {}",
            before.intercept_dns, after.intercept_dns
        ));
    }
    changes
}

fn rule_summary(rule: &Rule) -> String {
    let to: Vec<String> = rule.to.iter().map(ToString::to_string).collect();
    let services: Vec<String> = rule.services.iter().map(ToString::to_string).collect();
    let mut text = format!(
        "{}: {} -> {}{}{} {}",
        rule.name,
        rule.from.join(","),
        to.join(","),
        if services.is_empty() { "" } else { " " },
        services.join(","),
        rule.action
    );
    if !rule.source.is_empty() {
        let source: Vec<String> = rule.source.iter().map(ToString::to_string).collect();
        text.push_str(&format!(" from {}", source.join(",")));
    }
    if !rule.destination.is_empty() {
        let destination: Vec<String> = rule.destination.iter().map(ToString::to_string).collect();
        text.push_str(&format!(" to {}", destination.join(",")));
    }
    text
}

fn same_rule(a: &Rule, b: &Rule) -> bool {
    (
        &a.from,
        &a.to,
        &a.services,
        &a.source,
        &a.destination,
        a.action,
        &a.log,
        &a.limit,
    ) == (
        &b.from,
        &b.to,
        &b.services,
        &b.source,
        &b.destination,
        b.action,
        &b.log,
        &b.limit,
    )
}

/// A unified diff of two nft listings; empty when they are the same.
pub fn text(old: &str, new: &str) -> String {
    let diff = TextDiff::from_lines(old, new);
    let mut out = String::new();
    for (i, group) in diff.grouped_ops(2).into_iter().enumerate() {
        if i > 0 {
            out.push_str("@@\n");
        }
        for op in group {
            for change in diff.iter_changes(&op) {
                let sign = match change.tag() {
                    ChangeTag::Delete => '-',
                    ChangeTag::Insert => '+',
                    ChangeTag::Equal => ' ',
                };
                out.push(sign);
                out.push_str(change.value());
                if !change.value().ends_with('\n') {
                    out.push('\n');
                }
            }
        }
    }
    out
}

//! Reading a policy directory: every `*.toml` file, in name order, merged
//! into one [`Policy`] after each value is checked where it was written.

use std::collections::HashSet;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use toml::Spanned;

use crate::error::{Diagnostic, PolicyError, Severity};
use crate::model::{
    ANY_ZONE, Action, AddressMatch, AddressSet, DEFAULT_SSH_PORT, Destination, Location,
    Management, PairPolicy, Policy, PortForward, ROUTER, Rule, Transport, Vlan, Zone,
};
use crate::raw::{self, OneOrMany, RawFile};
use crate::{check, service};

/// What a zone does with traffic no rule or pair policy decided.
pub const DEFAULT_ZONE_ACTION: Action = Action::Reject;
/// nft's limit on interface names, less the terminating NUL.
const MAX_INTERFACE_NAME: usize = 15;
/// nft's limit on log prefixes.
const MAX_LOG_PREFIX: usize = 127;

/// A policy that passed every check, with the warnings it raised.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub policy: Policy,
    pub warnings: Vec<Diagnostic>,
    /// The files read, in the order their contents were merged.
    pub files: Vec<PathBuf>,
}

/// What the policy must leave reachable beyond SSH: the router's own
/// services on TCP ports (a primary's pair listener).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Protected {
    pub tcp_ports: Vec<(u16, String)>,
}

/// Reads, merges and checks every `*.toml` file in `dir`.
pub fn load_dir(dir: &Path, protected: &Protected) -> Result<Loaded, PolicyError> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|source| PolicyError::Directory {
            path: dir.to_path_buf(),
            source,
        })?
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "toml") && path.is_file())
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(PolicyError::Invalid(vec![Diagnostic {
            severity: Severity::Error,
            path: dir.to_path_buf(),
            line: 0,
            column: 0,
            message: "no policy files (*.toml) here; an empty policy would cut every zone off"
                .into(),
            fix: Some("copy policies/examples/homelab.toml here and edit it".into()),
        }]));
    }
    let mut sources = Vec::new();
    let mut found = Vec::new();
    for path in &files {
        match std::fs::read_to_string(path) {
            Ok(text) => sources.push((path.clone(), text)),
            Err(e) => found.push(Diagnostic {
                severity: Severity::Error,
                path: path.clone(),
                line: 0,
                column: 0,
                message: format!("cannot read: {e}"),
                fix: None,
            }),
        }
    }
    let texts: Vec<(&Path, &str)> = sources
        .iter()
        .map(|(path, text)| (path.as_path(), text.as_str()))
        .collect();
    match parse_files(&texts, protected) {
        Ok(loaded) if found.is_empty() => Ok(Loaded { files, ..loaded }),
        Ok(_) => Err(PolicyError::Invalid(found)),
        Err(PolicyError::Invalid(more)) => {
            found.extend(more);
            Err(PolicyError::Invalid(found))
        }
        Err(other) => Err(other),
    }
}

/// Parses, merges and checks policy texts given with their paths.
pub fn parse_files(files: &[(&Path, &str)], protected: &Protected) -> Result<Loaded, PolicyError> {
    let mut builder = Builder::default();
    let mut parsed = Vec::new();
    for (path, text) in files {
        let source = Source::new(path, text);
        match toml::from_str::<RawFile>(text) {
            Ok(raw) => parsed.push((source, raw)),
            Err(e) => {
                let at = source.at(e.span().unwrap_or(0..0));
                builder
                    .found
                    .push(Diagnostic::error(&at, e.message().trim().to_string()));
            }
        }
    }
    // Zones and sets first, from every file, so rules may use them wherever
    // they are declared.
    for (source, raw) in &parsed {
        builder.management(source, raw.management.as_ref());
        for zone in &raw.zone {
            builder.zone(source, zone);
        }
        for set in &raw.address_set {
            builder.address_set(source, set);
        }
    }
    for (source, raw) in &parsed {
        for pair in &raw.policy {
            builder.pair(source, pair);
        }
        for rule in &raw.rule {
            builder.rule(source, rule);
        }
        for forward in &raw.port_forward {
            builder.port_forward(source, forward);
        }
    }
    let policy = Policy {
        management: builder.management,
        zones: builder.zones,
        pairs: builder.pairs,
        address_sets: builder.address_sets,
        rules: builder.rules,
        port_forwards: builder.port_forwards,
    };
    let mut found = builder.found;
    if !found.iter().any(|d| d.severity == Severity::Error) {
        found.extend(check::check(&policy, protected));
    }
    if found.iter().any(|d| d.severity == Severity::Error) {
        return Err(PolicyError::Invalid(found));
    }
    Ok(Loaded {
        policy,
        warnings: found,
        files: files.iter().map(|(path, _)| path.to_path_buf()).collect(),
    })
}

struct Source<'a> {
    path: Arc<PathBuf>,
    text: &'a str,
    /// Byte offsets where lines start: a location is a binary search, not
    /// a scan from the top (policies run to thousands of rules).
    line_starts: Vec<usize>,
}

impl<'a> Source<'a> {
    fn new(path: &Path, text: &'a str) -> Source<'a> {
        let line_starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(at, _)| at + 1))
            .collect();
        Source {
            path: Arc::new(path.to_path_buf()),
            text,
            line_starts,
        }
    }

    fn at(&self, span: Range<usize>) -> Location {
        let offset = span.start.min(self.text.len());
        let line = self.line_starts.partition_point(|start| *start <= offset);
        let start = self
            .line_starts
            .get(line.saturating_sub(1))
            .copied()
            .unwrap_or(0);
        let column = self
            .text
            .get(start..offset)
            .map_or(0, |before| before.chars().count())
            + 1;
        Location {
            path: self.path.clone(),
            line,
            column,
        }
    }

    fn of<T>(&self, spanned: &Spanned<T>) -> Location {
        self.at(spanned.span())
    }
}

#[derive(Default)]
struct Builder {
    management: Option<Management>,
    zones: Vec<Zone>,
    pairs: Vec<PairPolicy>,
    address_sets: Vec<AddressSet>,
    rules: Vec<Rule>,
    port_forwards: Vec<PortForward>,
    found: Vec<Diagnostic>,
}

impl Builder {
    fn error(&mut self, at: &Location, message: impl Into<String>) {
        self.found.push(Diagnostic::error(at, message));
    }

    /// Whether a declared name is plain and new; `first` is where the same
    /// name was declared before, if it was.
    fn fresh_name(
        &mut self,
        what: &str,
        name: &str,
        at: &Location,
        first: Option<Location>,
    ) -> bool {
        if let Err(message) = check_name(name, what) {
            self.error(at, message);
            return false;
        }
        if let Some(first) = first {
            self.error(
                at,
                format!("{what} \"{name}\" is declared twice; the first is at {first}"),
            );
            return false;
        }
        true
    }

    fn management(&mut self, source: &Source<'_>, raw: Option<&Spanned<raw::RawManagement>>) {
        let Some(raw) = raw else { return };
        let at = source.of(raw);
        if let Some(first) = &self.management {
            let message = format!(
                "a second [management] section; the first is at {}",
                first.at
            );
            self.error(&at, message);
            return;
        }
        let raw = raw.get_ref();
        self.management = Some(Management {
            zone: raw.zone.get_ref().clone(),
            ssh_port: raw.ssh_port.unwrap_or(DEFAULT_SSH_PORT),
            at: source.of(&raw.zone),
        });
    }

    fn zone(&mut self, source: &Source<'_>, raw: &Spanned<raw::RawZone>) {
        let at = source.of(raw);
        let raw = raw.get_ref();
        let name = raw.name.get_ref().clone();
        let name_at = source.of(&raw.name);
        if name == ROUTER || name == ANY_ZONE {
            self.found.push(
                Diagnostic::error(&name_at, format!("\"{name}\" is reserved in rules"))
                    .with_fix("give the zone another name"),
            );
            return;
        }
        let first = self
            .zones
            .iter()
            .find(|zone| zone.name == name)
            .map(|zone| zone.at.clone());
        if !self.fresh_name("zone", &name, &name_at, first) {
            return;
        }
        let (vlan, interface) = match (&raw.vlan, &raw.interface) {
            (Some(vlan), None) => {
                let vlan_at = source.of(vlan);
                let vlan = vlan.get_ref();
                if !(1..=4094).contains(&vlan.id) {
                    let message =
                        format!("VLAN id {} is out of range; expected 1 to 4094", vlan.id);
                    self.error(&vlan_at, message);
                    return;
                }
                let interface = format!("{}.{}", vlan.parent, vlan.id);
                (
                    Some(Vlan {
                        parent: vlan.parent.clone(),
                        id: vlan.id,
                    }),
                    (interface, vlan_at),
                )
            }
            (None, Some(interface)) => (None, (interface.get_ref().clone(), source.of(interface))),
            (Some(_), Some(interface)) => {
                self.found.push(
                    Diagnostic::error(
                        &source.of(interface),
                        format!("zone \"{name}\" has both `vlan` and `interface`"),
                    )
                    .with_fix("keep `vlan` for a VLAN on a trunk, `interface` for a plain port"),
                );
                return;
            }
            (None, None) => {
                self.found.push(
                    Diagnostic::error(&at, format!("zone \"{name}\" names no interface")).with_fix(
                        "add `vlan = { parent = \"eth0\", id = 10 }` or `interface = \"eth1\"`",
                    ),
                );
                return;
            }
        };
        let (interface, interface_at) = interface;
        if interface.is_empty()
            || interface.len() > MAX_INTERFACE_NAME
            || interface.contains(['/', ' ', '"'])
        {
            let message = format!(
                "\"{interface}\" is not an interface name: 1 to {MAX_INTERFACE_NAME} characters, no '/', space or quote"
            );
            self.error(&interface_at, message);
            return;
        }
        if let Some(other) = self.zones.iter().find(|zone| zone.interface == interface) {
            let message = format!(
                "interface {interface} already belongs to zone \"{}\" ({})",
                other.name, other.at
            );
            self.error(&interface_at, message);
            return;
        }
        for net in &raw.ipv4 {
            if net.get_ref().addr() == net.get_ref().network() && net.get_ref().prefix_len() < 31 {
                let message = format!(
                    "{} is the subnet's own address; write the router's address on it, such as {}/{}",
                    net.get_ref(),
                    first_host(net.get_ref()),
                    net.get_ref().prefix_len()
                );
                self.error(&source.of(net), message);
            }
        }
        self.zones.push(Zone {
            name,
            description: raw.description.clone().unwrap_or_default(),
            vlan,
            interface,
            ipv4: raw.ipv4.iter().map(|net| *net.get_ref()).collect(),
            ipv6: raw.ipv6.iter().map(|net| *net.get_ref()).collect(),
            input: raw.input.unwrap_or(DEFAULT_ZONE_ACTION),
            forward: raw.forward.unwrap_or(DEFAULT_ZONE_ACTION),
            masquerade: raw.masquerade,
            intercept_dns: raw.intercept_dns,
            at: name_at,
        });
    }

    fn address_set(&mut self, source: &Source<'_>, raw: &Spanned<raw::RawAddressSet>) {
        let raw = raw.get_ref();
        let name = raw.name.get_ref().clone();
        let name_at = source.of(&raw.name);
        let first = self
            .address_sets
            .iter()
            .find(|set| set.name == name)
            .map(|set| set.at.clone());
        if !self.fresh_name("address set", &name, &name_at, first) {
            return;
        }
        let addresses_at = source.of(&raw.addresses);
        let mut addresses = Vec::new();
        for text in raw.addresses.get_ref() {
            match service::parse_net(text) {
                Ok(net) => addresses.push(net),
                Err(message) => self.error(&addresses_at, message),
            }
        }
        if addresses.is_empty() {
            self.error(&addresses_at, format!("address set \"{name}\" is empty"));
        }
        self.address_sets.push(AddressSet {
            name,
            addresses,
            at: name_at,
        });
    }

    /// Resolves zone names, `any` expanding to every zone.
    fn zones_named(
        &mut self,
        names: &Spanned<OneOrMany>,
        source: &Source<'_>,
    ) -> Option<Vec<String>> {
        let at = source.of(names);
        let names = list(names);
        if names.is_empty() {
            self.error(
                &at,
                "an empty list of zones; name at least one zone, or \"any\"",
            );
            return None;
        }
        let mut zones = Vec::new();
        for name in names {
            if name == ANY_ZONE {
                zones.extend(self.zones.iter().map(|zone| zone.name.clone()));
            } else if self.zones.iter().any(|zone| zone.name == name) {
                zones.push(name);
            } else {
                let diagnostic = self.unknown_zone(&at, &name);
                self.found.push(diagnostic);
                return None;
            }
        }
        let mut seen = HashSet::new();
        zones.retain(|zone| seen.insert(zone.clone()));
        Some(zones)
    }

    fn unknown_zone(&self, at: &Location, name: &str) -> Diagnostic {
        let known: Vec<&str> = self.zones.iter().map(|zone| zone.name.as_str()).collect();
        let fix = match closest(name, &known) {
            Some(close) => format!("did you mean \"{close}\"?"),
            None if known.is_empty() => "declare it in a [[zone]] section".to_string(),
            None => format!(
                "declare it in a [[zone]] section, or use one of: {}, {ROUTER}, {ANY_ZONE}",
                known.join(", ")
            ),
        };
        Diagnostic::error(at, format!("unknown zone \"{name}\"")).with_fix(fix)
    }

    fn pair(&mut self, source: &Source<'_>, raw: &Spanned<raw::RawPairPolicy>) {
        let raw = raw.get_ref();
        let to_at = source.of(&raw.to);
        if list(&raw.to).iter().any(|name| name == ROUTER) {
            self.found.push(
                Diagnostic::error(&to_at, "a zone pair policy cannot target the router").with_fix(
                    "set `input` on the source zone, or write a [[rule]] with to = \"router\"",
                ),
            );
            return;
        }
        let (Some(from), Some(to)) = (
            self.zones_named(&raw.from, source),
            self.zones_named(&raw.to, source),
        ) else {
            return;
        };
        let at = source.of(&raw.from);
        for from in &from {
            for to in &to {
                if from == to {
                    continue;
                }
                if let Some(first) = self
                    .pairs
                    .iter()
                    .find(|pair| &pair.from == from && &pair.to == to)
                {
                    let message = format!(
                        "a second policy from \"{from}\" to \"{to}\"; the first is at {}",
                        first.at
                    );
                    self.error(&at, message);
                    continue;
                }
                self.pairs.push(PairPolicy {
                    from: from.clone(),
                    to: to.clone(),
                    action: raw.action,
                    at: at.clone(),
                });
            }
        }
    }

    fn rule(&mut self, source: &Source<'_>, raw: &Spanned<raw::RawRule>) {
        let raw = raw.get_ref();
        let name = raw.name.get_ref().clone();
        let at = source.of(&raw.name);
        let first = self
            .rules
            .iter()
            .find(|rule| rule.name == name)
            .map(|rule| rule.at.clone());
        if !self.fresh_name("rule", &name, &at, first) {
            return;
        }
        let Some(from) = self.zones_named(&raw.from, source) else {
            return;
        };
        let to_at = source.of(&raw.to);
        let mut to = Vec::new();
        let to_names = list(&raw.to);
        if to_names.is_empty() {
            self.error(&to_at, "an empty list of destinations");
            return;
        }
        for name in to_names {
            if name == ROUTER {
                to.push(Destination::Router);
            } else if name == ANY_ZONE {
                to.extend(
                    self.zones
                        .iter()
                        .map(|zone| Destination::Zone(zone.name.clone())),
                );
            } else if self.zones.iter().any(|zone| zone.name == name) {
                to.push(Destination::Zone(name));
            } else {
                let diagnostic = self.unknown_zone(&to_at, &name);
                self.found.push(diagnostic);
                return;
            }
        }
        let mut seen = HashSet::new();
        to.retain(|destination| seen.insert(destination.clone()));
        let mut services = Vec::new();
        if let Some(raw_services) = &raw.service {
            let service_at = source.of(raw_services);
            for text in list(raw_services) {
                match service::parse_service(&text) {
                    Ok(parsed) => services.extend(parsed),
                    Err(message) => self.error(&service_at, message),
                }
            }
        }
        let source_match = self.addresses(raw.source.as_ref(), source);
        let destination_match = self.addresses(raw.destination.as_ref(), source);
        let log = raw.log.as_ref().and_then(|log| {
            let text = log.get_ref();
            if text.len() > MAX_LOG_PREFIX || text.contains(['"', '\\', '\n']) {
                let message = format!(
                    "a log prefix is at most {MAX_LOG_PREFIX} characters without quotes or backslashes"
                );
                self.error(&source.of(log), message);
                None
            } else {
                Some(text.clone())
            }
        });
        let limit =
            raw.limit
                .as_ref()
                .and_then(|limit| match service::parse_limit(limit.get_ref()) {
                    Ok(limit) => Some(limit),
                    Err(message) => {
                        self.error(&source.of(limit), message);
                        None
                    }
                });
        self.rules.push(Rule {
            name,
            from,
            to,
            services,
            source: source_match,
            destination: destination_match,
            action: raw.action,
            log,
            limit,
            at,
        });
    }

    fn addresses(
        &mut self,
        raw: Option<&Spanned<OneOrMany>>,
        source: &Source<'_>,
    ) -> Vec<AddressMatch> {
        let Some(raw) = raw else { return Vec::new() };
        let at = source.of(raw);
        let mut matches = Vec::new();
        for text in list(raw) {
            match service::parse_address(&text) {
                Ok(AddressMatch::Set(name))
                    if self.address_sets.iter().all(|set| set.name != name) =>
                {
                    let known: Vec<&str> = self
                        .address_sets
                        .iter()
                        .map(|set| set.name.as_str())
                        .collect();
                    let fix = match closest(&name, &known) {
                        Some(close) => format!("did you mean \"@{close}\"?"),
                        None => "declare it in an [[address_set]] section".into(),
                    };
                    self.found.push(
                        Diagnostic::error(&at, format!("unknown address set \"@{name}\""))
                            .with_fix(fix),
                    );
                }
                Ok(parsed) => matches.push(parsed),
                Err(message) => self.error(&at, message),
            }
        }
        matches
    }

    fn port_forward(&mut self, source: &Source<'_>, raw: &Spanned<raw::RawPortForward>) {
        let raw = raw.get_ref();
        let name = raw.name.get_ref().clone();
        let at = source.of(&raw.name);
        let first = self
            .port_forwards
            .iter()
            .find(|f| f.name == name)
            .map(|f| f.at.clone());
        if !self.fresh_name("port forward", &name, &at, first) {
            return;
        }
        let from = raw.from.get_ref().clone();
        if self.zones.iter().all(|zone| zone.name != from) {
            let diagnostic = self.unknown_zone(&source.of(&raw.from), &from);
            self.found.push(diagnostic);
            return;
        }
        let transport = match raw.protocol.get_ref().as_str() {
            "tcp" => Transport::Tcp,
            "udp" => Transport::Udp,
            other => {
                let message = format!("protocol \"{other}\": expected \"tcp\" or \"udp\"");
                self.error(&source.of(&raw.protocol), message);
                return;
            }
        };
        let to_at = source.of(&raw.to);
        let to = match raw.to.get_ref().parse::<std::net::IpAddr>() {
            Ok(to) => to,
            Err(_) => {
                let message = format!(
                    "expected the address of the host to forward to, found \"{}\"",
                    raw.to.get_ref()
                );
                self.error(&to_at, message);
                return;
            }
        };
        let ports = std::iter::once(&raw.port).chain(raw.to_port.as_ref());
        if let Some(zero) = ports.into_iter().find(|port| *port.get_ref() == 0) {
            self.error(&source.of(zero), "port 0: expected 1 to 65535");
            return;
        }
        self.port_forwards.push(PortForward {
            name,
            from,
            transport,
            port: *raw.port.get_ref(),
            to,
            to_port: raw
                .to_port
                .as_ref()
                .map_or(*raw.port.get_ref(), |port| *port.get_ref()),
            at,
        });
    }
}

fn list(raw: &Spanned<OneOrMany>) -> Vec<String> {
    match raw.get_ref() {
        OneOrMany::One(one) => vec![one.clone()],
        OneOrMany::Many(many) => many.clone(),
    }
}

/// Names become parts of nft chain names and comments: keep them plain.
fn check_name(name: &str, what: &str) -> Result<(), String> {
    let plain = !name.is_empty()
        && name.len() <= 32
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
        && name.starts_with(|c: char| c.is_ascii_lowercase());
    if plain {
        Ok(())
    } else {
        Err(format!(
            "{what} name \"{name}\": expected 1 to 32 lower-case letters, digits, '-' or '_', starting with a letter"
        ))
    }
}

fn first_host(net: &ipnet::Ipv4Net) -> std::net::Ipv4Addr {
    std::net::Ipv4Addr::from(u32::from(net.network()).saturating_add(1))
}

/// The known name closest to a misspelt one, when it is close enough
/// (two edits at most).
pub fn closest<'a>(name: &str, known: &[&'a str]) -> Option<&'a str> {
    known
        .iter()
        .map(|candidate| (edit_distance(name, candidate), *candidate))
        .filter(|(distance, _)| *distance <= 2)
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, candidate)| candidate)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != *cb);
            current.push(substitution.min(previous[j + 1] + 1).min(current[j] + 1));
        }
        previous = current;
    }
    previous[b.len()]
}

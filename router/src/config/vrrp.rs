//! `[vrrp]`: floating addresses and the checks that move them, checked
//! into [`crate::vrrp::settings`].

use std::collections::HashSet;
use std::time::Duration;

use toml::Spanned;

use super::ConfigError;
use super::check::{Checker, valid_object_name};
use super::raw::{RawVrrp, RawVrrpChecks, RawVrrpInstance, RawVrrpScript};
use crate::vrrp::settings::{
    ChecksConfig, DEFAULT_ADVERT_INTERVAL, DEFAULT_ANNOUNCE_AGAIN_AFTER, DEFAULT_ANNOUNCE_REPEAT,
    DEFAULT_SCRIPT_INTERVAL, DEFAULT_SCRIPT_TIMEOUT, InstanceConfig, ScriptCheck, VrrpConfig,
};

pub(super) fn check_vrrp(
    checker: &Checker<'_>,
    spanned: &Spanned<RawVrrp>,
) -> Result<VrrpConfig, ConfigError> {
    let raw = spanned.get_ref();
    let mut instances: Vec<InstanceConfig> = Vec::new();
    let mut names = HashSet::new();
    let mut vrids = HashSet::new();
    for instance in &raw.instances {
        let checked = check_instance(checker, instance)?;
        if !names.insert(checked.name.clone()) {
            return Err(checker.error_at(
                &instance.get_ref().name,
                format!("instance name \"{}\" is used twice", checked.name),
            ));
        }
        // One VRID per interface and family: two instances with the same
        // one would answer each other's adverts.
        if !vrids.insert((checked.interface.clone(), checked.vrid, checked.is_ipv4())) {
            return Err(checker.error_at(
                &instance.get_ref().vrid,
                format!(
                    "vrid {} is already used on {} for this address family",
                    checked.vrid, checked.interface
                ),
            ));
        }
        if let Some(other) = instances.iter().find(|other| {
            other
                .addresses
                .iter()
                .any(|a| checked.addresses.iter().any(|b| a.addr() == b.addr()))
        }) {
            return Err(checker.error_at(
                &instance.get_ref().addresses,
                format!(
                    "instance {}: a virtual address is also in instance {}",
                    checked.name, other.name
                ),
            ));
        }
        instances.push(checked);
    }
    Ok(VrrpConfig {
        instances,
        checks: check_checks(checker, &raw.checks)?,
    })
}

fn duration(
    checker: &Checker<'_>,
    text: &Spanned<String>,
    what: &str,
) -> Result<Duration, ConfigError> {
    crate::duration::parse(text.get_ref())
        .map_err(|e| checker.error_at(text, format!("{what}: {e}")))
}

fn check_instance(
    checker: &Checker<'_>,
    spanned: &Spanned<RawVrrpInstance>,
) -> Result<InstanceConfig, ConfigError> {
    let raw = spanned.get_ref();
    let name = raw.name.get_ref().clone();
    if !valid_object_name(&name) {
        return Err(checker.error_at(
            &raw.name,
            format!("instance name \"{name}\": expected letters, digits, `-`, `_` or `.`"),
        ));
    }
    let interface = raw.interface.get_ref().clone();
    if !crate::links::valid_ifname(&interface) {
        return Err(checker.error_at(
            &raw.interface,
            format!("instance {name}: \"{interface}\" is not an interface name"),
        ));
    }
    let vrid = *raw.vrid.get_ref();
    if vrid == 0 {
        return Err(checker.error_at(&raw.vrid, "vrid must be 1 to 255"));
    }
    let priority = *raw.priority.get_ref();
    if priority == 0 {
        return Err(checker.error_at(
            &raw.priority,
            "priority must be 1 to 254, or 255 for the node that owns the addresses",
        ));
    }
    let advert_interval = match &raw.advert_interval {
        Some(text) => {
            let interval = duration(checker, text, "advert_interval")?;
            let centis = interval.as_millis() / 10;
            if interval.as_millis() % 10 != 0
                || !(1..=u128::from(vrrp::packet::MAX_INTERVAL_CENTIS)).contains(&centis)
            {
                return Err(checker.error_at(
                    text,
                    "advert_interval must be a multiple of 10ms from 10ms to 40950ms (VRRPv3 counts centiseconds)",
                ));
            }
            interval
        }
        None => DEFAULT_ADVERT_INTERVAL,
    };
    let preempt_delay = match &raw.preempt_delay {
        Some(text) => duration(checker, text, "preempt_delay")?,
        None => Duration::ZERO,
    };
    let addresses = raw.addresses.get_ref().clone();
    let Some(first) = addresses.first() else {
        return Err(checker.error_at(
            &raw.addresses,
            format!("instance {name}: at least one virtual address, e.g. \"192.168.10.53/24\""),
        ));
    };
    if addresses
        .iter()
        .any(|a| a.addr().is_ipv4() != first.addr().is_ipv4())
    {
        return Err(checker.error_at(
            &raw.addresses,
            format!("instance {name}: IPv4 and IPv6 addresses need one instance each (RFC 5798)"),
        ));
    }
    if let Some(bad) = addresses.iter().find(|a| {
        let ip = a.addr();
        ip.is_unspecified() || ip.is_multicast() || ip.is_loopback()
    }) {
        return Err(checker.error_at(
            &raw.addresses,
            format!("instance {name}: {bad} cannot be a virtual address"),
        ));
    }
    if addresses.len() > 255 {
        return Err(checker.error_at(&raw.addresses, "at most 255 virtual addresses"));
    }
    if let Some(peer) = raw
        .unicast_peers
        .iter()
        .find(|p| p.is_ipv4() != first.addr().is_ipv4() || p.is_multicast() || p.is_unspecified())
    {
        return Err(checker.error_at(
            &raw.addresses,
            format!("instance {name}: unicast peer {peer} must be a unicast address of the virtual addresses' family"),
        ));
    }
    let announce_again_after = match &raw.announce_again_after {
        Some(text) => duration(checker, text, "announce_again_after")?,
        None => DEFAULT_ANNOUNCE_AGAIN_AFTER,
    };
    let announce_repeat = match &raw.announce_repeat {
        Some(n) if !(1..=10).contains(n.get_ref()) => {
            return Err(checker.error_at(n, "announce_repeat must be 1 to 10"));
        }
        Some(n) => *n.get_ref(),
        None => DEFAULT_ANNOUNCE_REPEAT,
    };
    let check_weight = match &raw.check_weight {
        Some(w) if *w.get_ref() == 0 || *w.get_ref() >= priority => {
            return Err(checker.error_at(
                w,
                format!(
                    "check_weight must be 1 to {} (below the priority)",
                    priority.saturating_sub(1)
                ),
            ));
        }
        Some(w) => Some(*w.get_ref()),
        None => None,
    };
    Ok(InstanceConfig {
        name,
        interface,
        vrid,
        priority,
        advert_interval,
        preempt: raw.preempt.unwrap_or(true),
        preempt_delay,
        addresses,
        unicast_peers: raw.unicast_peers.clone(),
        notify: raw.notify.as_ref().map(|p| checker.resolve(p.get_ref())),
        announce_again_after,
        announce_repeat,
        check_weight,
        accept: raw.accept.unwrap_or(true),
    })
}

fn check_checks(checker: &Checker<'_>, raw: &RawVrrpChecks) -> Result<ChecksConfig, ConfigError> {
    let defaults = ChecksConfig::default();
    let interval = match &raw.interval {
        Some(text) => {
            let interval = duration(checker, text, "checks.interval")?;
            if interval < Duration::from_millis(10) {
                return Err(checker.error_at(text, "checks.interval must be at least 10ms"));
            }
            interval
        }
        None => defaults.interval,
    };
    let count = |value: &Option<Spanned<u32>>, what: &str, default: u32| {
        count(checker, value, &format!("checks.{what}"), default)
    };
    let probe_timeout = match &raw.probe_timeout {
        Some(text) => duration(checker, text, "checks.probe_timeout")?,
        None => defaults.probe_timeout,
    };
    let fast_path_timeout = match &raw.fast_path_timeout {
        Some(text) => duration(checker, text, "checks.fast_path_timeout")?,
        None => defaults.fast_path_timeout,
    };
    let name =
        |value: &Option<Spanned<String>>, what: &str| -> Result<Option<String>, ConfigError> {
            let Some(text) = value else { return Ok(None) };
            let name = text.get_ref().trim_end_matches('.');
            let valid = !name.is_empty()
                && name.len() <= 200
                && name.split('.').all(|label| {
                    !label.is_empty()
                        && label.len() <= 63
                        && label
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
                });
            if valid {
                Ok(Some(name.to_ascii_lowercase()))
            } else {
                Err(checker.error_at(
                    text,
                    format!("checks.{what}: \"{}\" is not a domain name", text.get_ref()),
                ))
            }
        };
    Ok(ChecksConfig {
        interval,
        fall: count(&raw.fall, "fall", defaults.fall)?,
        rise: count(&raw.rise, "rise", defaults.rise)?,
        probe_timeout,
        fast_path_timeout,
        fast_path_probe: name(&raw.fast_path_probe, "fast_path_probe")?,
        recursion_probe: name(&raw.recursion_probe, "recursion_probe")?,
        interface: raw.interface.unwrap_or(defaults.interface),
        wireguard: raw.wireguard.unwrap_or(defaults.wireguard),
        bgp: raw.bgp.unwrap_or(defaults.bgp),
        scripts: check_scripts(checker, &raw.scripts)?,
    })
}

/// fall and rise counts: 1 to 100.
fn count(
    checker: &Checker<'_>,
    value: &Option<Spanned<u32>>,
    what: &str,
    default: u32,
) -> Result<u32, ConfigError> {
    match value {
        Some(n) if !(1..=100).contains(n.get_ref()) => {
            Err(checker.error_at(n, format!("{what} must be 1 to 100")))
        }
        Some(n) => Ok(*n.get_ref()),
        None => Ok(default),
    }
}

fn check_scripts(
    checker: &Checker<'_>,
    raw: &[Spanned<RawVrrpScript>],
) -> Result<Vec<ScriptCheck>, ConfigError> {
    let mut scripts: Vec<ScriptCheck> = Vec::new();
    for spanned in raw {
        let script = spanned.get_ref();
        let name = script.name.get_ref().clone();
        if !valid_object_name(&name) {
            return Err(checker.error_at(
                &script.name,
                format!("script name \"{name}\": expected letters, digits, `-`, `_` or `.`"),
            ));
        }
        if scripts.iter().any(|s| s.name == name) {
            return Err(checker.error_at(
                &script.name,
                format!("script name \"{name}\" is used twice"),
            ));
        }
        let command = checker.resolve(script.command.get_ref());
        if !command.is_file() {
            return Err(checker.error_at(
                &script.command,
                format!("script {name}: {} is not a file", command.display()),
            ));
        }
        let interval = match &script.interval {
            Some(text) => duration(checker, text, "interval")?,
            None => DEFAULT_SCRIPT_INTERVAL,
        };
        let timeout = match &script.timeout {
            Some(text) => duration(checker, text, "timeout")?,
            None => DEFAULT_SCRIPT_TIMEOUT,
        };
        if interval.is_zero() || timeout.is_zero() {
            return Err(checker.error_at(
                &script.name,
                format!("script {name}: interval and timeout must be above 0"),
            ));
        }
        scripts.push(ScriptCheck {
            fall: count(checker, &script.fall, &format!("script {name}: fall"), 2)?,
            rise: count(checker, &script.rise, &format!("script {name}: rise"), 2)?,
            name,
            command,
            args: script.args.clone(),
            interval,
            timeout,
        });
    }
    Ok(scripts)
}

//! `[bgp]`: the speaker and its peers, checked into
//! [`crate::bgp::settings`]. Password files are read here, so a loose or
//! missing one fails `routerd check`.

use std::net::{IpAddr, SocketAddr};

use bgp::policy::{Policy, PrefixList};
use toml::Spanned;

use super::ConfigError;
use super::check::Checker;
use super::raw::{RawBgp, RawBgpPeer, RawBgpPolicy};
use crate::bgp::settings::{
    BGP_PORT, BgpConfig, DEFAULT_CONNECT_RETRY, DEFAULT_HOLD_TIME, DEFAULT_KERNEL_TABLE,
    Md5Password, PeerConfig,
};

/// The kernel's limit on a TCP MD5 key (TCP_MD5SIG_MAXKEYLEN).
const MD5_MAX_KEY: usize = 80;

pub(super) fn check_bgp(
    checker: &Checker<'_>,
    spanned: &Spanned<RawBgp>,
) -> Result<BgpConfig, ConfigError> {
    let raw = spanned.get_ref();
    let asn = *raw.asn.get_ref();
    if asn == 0 || asn == u32::from(bgp::wire::AS_TRANS) {
        return Err(checker.error_at(&raw.asn, format!("asn = {asn} is reserved: pick a private AS such as 64512-65534 or 4200000000-4294967294")));
    }
    let router_id = *raw.router_id.get_ref();
    if router_id.is_unspecified() || router_id.is_broadcast() {
        return Err(checker.error_at(
            &raw.router_id,
            "router_id must be a unicast IPv4 address of this router",
        ));
    }
    let mut listen = Vec::new();
    for text in &raw.listen {
        let addr = text
            .get_ref()
            .parse::<SocketAddr>()
            .or_else(|_| text.get_ref().parse::<IpAddr>().map(|ip| SocketAddr::new(ip, BGP_PORT)))
            .map_err(|_| {
                checker.error_at(text, format!("listen: \"{}\" is not an address: expected \"10.62.0.1\" or \"10.62.0.1:179\"", text.get_ref()))
            })?;
        if addr.ip().is_unspecified() {
            return Err(checker.error_at(text, "listen on this router's own addresses, not on every address: a BGP speaker should only be reachable where its peers are"));
        }
        listen.push(addr);
    }
    let hold_time = match &raw.hold_time {
        Some(hold) if matches!(*hold.get_ref(), 1 | 2) => {
            return Err(checker.error_at(
                hold,
                "hold_time must be 0 (no keepalives) or at least 3 seconds (RFC 4271)",
            ));
        }
        Some(hold) => *hold.get_ref(),
        None => DEFAULT_HOLD_TIME,
    };
    let connect_retry = match &raw.connect_retry {
        Some(text) => {
            let retry = crate::duration::parse(text.get_ref())
                .map_err(|e| checker.error_at(text, format!("connect_retry: {e}")))?;
            if retry.is_zero() {
                return Err(checker.error_at(text, "connect_retry must be at least 1s"));
            }
            retry
        }
        None => DEFAULT_CONNECT_RETRY,
    };
    let kernel_table = match &raw.kernel_table {
        Some(table) if matches!(*table.get_ref(), 0 | 253 | 255) => {
            return Err(checker.error_at(table, "kernel_table: 0, 253 (default) and 255 (local) are not for routes; use 254 (main) or a table of your own"));
        }
        Some(table) => *table.get_ref(),
        None => DEFAULT_KERNEL_TABLE,
    };
    for net in &raw.networks {
        if net.trunc() != *net {
            return Err(checker.error_at(
                spanned,
                format!(
                    "networks: {net} has host bits set: did you mean {}?",
                    net.trunc()
                ),
            ));
        }
    }
    let mut peers: Vec<PeerConfig> = Vec::new();
    for raw_peer in &raw.peers {
        let peer = check_peer(checker, raw_peer)?;
        if let Some(other) = peers.iter().find(|p| p.address == peer.address) {
            return Err(checker.error_at(
                &raw_peer.get_ref().address,
                format!(
                    "peer {} has the same address as peer {}",
                    peer.name, other.name
                ),
            ));
        }
        if let Some(other) = peers.iter().find(|p| p.name == peer.name) {
            return Err(checker.error_at(
                &raw_peer.get_ref().name,
                format!("peer name \"{}\" is used twice", other.name),
            ));
        }
        peers.push(peer);
    }
    Ok(BgpConfig {
        asn,
        router_id,
        listen,
        hold_time,
        connect_retry,
        kernel_table,
        kernel: raw.kernel.unwrap_or(true),
        networks: raw.networks.clone(),
        peers,
    })
}

fn check_peer(
    checker: &Checker<'_>,
    spanned: &Spanned<RawBgpPeer>,
) -> Result<PeerConfig, ConfigError> {
    let raw = spanned.get_ref();
    let name = raw.name.get_ref().clone();
    if !super::check::valid_object_name(&name) {
        return Err(checker.error_at(
            &raw.name,
            format!("peer name \"{name}\": expected letters, digits, `-`, `_` or `.`"),
        ));
    }
    let address = *raw.address.get_ref();
    if address.is_unspecified() || address.is_multicast() {
        return Err(checker.error_at(
            &raw.address,
            format!("peer {name}: {address} is not a peer's address"),
        ));
    }
    if *raw.remote_asn.get_ref() == 0 {
        return Err(checker.error_at(
            &raw.remote_asn,
            format!("peer {name}: remote_asn 0 is reserved"),
        ));
    }
    let md5_password = match &raw.md5_password_file {
        Some(file) => {
            let text = crate::secret::read_secret_file(&checker.resolve(file.get_ref()))
                .map_err(|e| checker.error_at(file, format!("peer {name}: {e}")))?;
            let password = text.trim_end_matches(['\n', '\r']).to_string();
            if password.is_empty() || password.len() > MD5_MAX_KEY {
                return Err(checker.error_at(
                    file,
                    format!(
                        "peer {name}: the MD5 password must be 1 to {MD5_MAX_KEY} bytes, found {}",
                        password.len()
                    ),
                ));
            }
            Some(Md5Password(password))
        }
        None => None,
    };
    if let Some(max) = &raw.max_prefixes
        && *max.get_ref() == 0
    {
        return Err(checker.error_at(max, format!("peer {name}: max_prefixes must be at least 1")));
    }
    let import = raw
        .import
        .as_ref()
        .map(|p| check_policy(checker, &name, "import", p))
        .transpose()?;
    let export = raw
        .export
        .as_ref()
        .map(|p| check_policy(checker, &name, "export", p))
        .transpose()?;
    Ok(PeerConfig {
        name,
        address,
        remote_asn: *raw.remote_asn.get_ref(),
        port: raw.port.unwrap_or(BGP_PORT),
        local_address: raw.local_address,
        passive: raw.passive,
        md5_password,
        gtsm: raw.gtsm,
        max_prefixes: raw.max_prefixes.as_ref().map(|m| *m.get_ref()),
        import,
        export,
    })
}

fn check_policy(
    checker: &Checker<'_>,
    peer: &str,
    direction: &str,
    spanned: &Spanned<RawBgpPolicy>,
) -> Result<Policy, ConfigError> {
    let raw = spanned.get_ref();
    let prefixes = match &raw.prefixes {
        Some(lines) => Some(
            PrefixList::parse(lines.iter().map(String::as_str))
                .map_err(|e| checker.error_at(spanned, format!("peer {peer}, {direction}: {e}")))?,
        ),
        None => None,
    };
    Ok(Policy {
        prefixes,
        max_as_path_len: raw.max_as_path_len,
        set_local_pref: raw.local_pref,
        set_med: raw.med,
    })
}

//! `[pair]`: checked into [`PairConfig`].

use std::path::PathBuf;

use toml::Spanned;

use super::ConfigError;
use super::check::Checker;
use super::raw::RawPair;
use crate::pair::settings::{
    DEFAULT_INTERVAL, DEFAULT_STATE_DIR, MIN_TOKEN_LEN, PairConfig, Role, Token,
};

pub(super) fn check_pair(
    checker: &Checker<'_>,
    spanned: &Spanned<RawPair>,
) -> Result<PairConfig, ConfigError> {
    let raw = spanned.get_ref();
    let role = match raw.role.get_ref().as_str() {
        "primary" => Role::Primary,
        "standby" => Role::Standby,
        other => {
            return Err(checker.error_at(
                &raw.role,
                format!("role = \"{other}\": expected \"primary\" or \"standby\""),
            ));
        }
    };
    let listen = raw.listen.as_ref().map(|l| *l.get_ref());
    let peer = raw.peer.as_ref().map(|p| *p.get_ref());
    if role == Role::Primary && listen.is_none() {
        return Err(checker.error_at(
            spanned,
            "the primary needs `listen`: an address on the management zone such as \"192.168.10.2:8054\", where the standby fetches its configuration",
        ));
    }
    if role == Role::Standby && peer.is_none() {
        return Err(checker.error_at(
            spanned,
            "the standby needs `peer`: the primary's `listen` address, such as \"192.168.10.2:8054\"",
        ));
    }
    let token_path = checker.resolve(raw.token_file.get_ref());
    let text = crate::secret::read_secret_file(&token_path)
        .map_err(|e| checker.error_at(&raw.token_file, e))?;
    let token = Token::new(&text);
    if token.as_str().len() < MIN_TOKEN_LEN || token.as_str().chars().any(char::is_whitespace) {
        return Err(checker.error_at(
            &raw.token_file,
            format!(
                "the token in {} must be one word of at least {MIN_TOKEN_LEN} characters (e.g. `openssl rand -hex 32`)",
                token_path.display()
            ),
        ));
    }
    let interval = match &raw.interval {
        Some(text) => {
            let interval = crate::duration::parse(text.get_ref())
                .map_err(|e| checker.error_at(text, format!("interval: {e}")))?;
            if interval < std::time::Duration::from_secs(1) {
                return Err(checker.error_at(text, "interval must be at least 1s"));
            }
            interval
        }
        None => DEFAULT_INTERVAL,
    };
    let state_dir = raw
        .state_dir
        .as_ref()
        .map(|dir| checker.resolve(dir))
        .unwrap_or_else(|| PathBuf::from(DEFAULT_STATE_DIR));
    let zone_addresses = raw
        .zone_addresses
        .as_ref()
        .map(|z| z.get_ref().clone())
        .unwrap_or_default();
    for (zone, addresses) in &zone_addresses {
        if addresses.is_empty()
            && let Some(spanned) = &raw.zone_addresses
        {
            return Err(checker.error_at(
                spanned,
                format!("zone_addresses: zone `{zone}` has no address: expected e.g. [\"192.168.10.3/24\"]"),
            ));
        }
    }
    Ok(PairConfig {
        role,
        listen,
        peer,
        token,
        interval,
        state_dir,
        zone_addresses,
    })
}

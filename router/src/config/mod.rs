//! The appliance's configuration: one TOML file, parsed into [`raw`]
//! structs, then checked into a [`Config`] that holds only valid values.
//! The daemon never sees a raw struct.

mod bgp;
mod check;
pub mod filter;
mod pair;
pub mod raw;
mod vrrp;
mod wireguard;

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

pub use check::{check, check_below};

/// Where the daemon looks for its configuration by default.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/router/router.toml";
/// Where the control socket lives by default.
pub const DEFAULT_CONTROL_SOCKET: &str = "/run/router/control.sock";

/// Where routerd keeps what it must not lose: list copies, the query log.
pub const DEFAULT_STATE_DIR: &str = "/var/lib/router";

/// Where policy files live when `[policies]` names no directory.
pub const DEFAULT_POLICIES_DIR: &str = "/etc/router/policies";

/// The checked configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub dns: dns::DnsSettings,
    pub control_socket: PathBuf,
    pub metrics_listen: Option<SocketAddr>,
    /// `Some`: routerd owns the `inet router` nftables table and fills it
    /// from the policy files here.
    pub policies_dir: Option<PathBuf>,
    pub filter: filter::FilterConfig,
    pub query_log: filter::QueryLogConfig,
    pub wireguard: crate::wireguard::settings::WireguardConfig,
    /// `None` when there is no `[bgp]`.
    pub bgp: Option<crate::bgp::settings::BgpConfig>,
    /// `None` when there is no `[vrrp]`.
    pub vrrp: Option<crate::vrrp::settings::VrrpConfig>,
    /// `None` when there is no `[pair]`.
    pub pair: Option<crate::pair::settings::PairConfig>,
}

/// A configuration error, located in its file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub path: PathBuf,
    /// 1-based; 0 when the error is about the file as a whole.
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.path.display(), self.message)
        } else {
            write!(
                f,
                "{}:{}:{}: {}",
                self.path.display(),
                self.line,
                self.column,
                self.message
            )
        }
    }
}

impl std::error::Error for ConfigError {}

/// Reads and checks the configuration file at `path`; on a standby, with
/// the shared part replaced by the primary's copy in use, if there is one.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let local = load_local(path)?;
    let standby = local
        .pair
        .as_ref()
        .filter(|pair| pair.role == crate::pair::settings::Role::Standby);
    let Some(pair) = standby else {
        return Ok(local);
    };
    let store = crate::pair::store::Store::new(&pair.state_dir);
    match store.current() {
        Some(manifest) => {
            crate::pair::bundle::overlay(local, &store.current_files(), &manifest.config_path)
        }
        None => Ok(local),
    }
}

/// Reads and checks the configuration file at `path` alone.
pub fn load_local(path: &Path) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
        path: path.to_path_buf(),
        line: 0,
        column: 0,
        message: format!("cannot read the configuration: {e}"),
    })?;
    parse(&text, path)
}

/// Parses and checks configuration text; `path` is used in errors and to
/// resolve relative file names.
pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
    let raw = parse_raw(text, path)?;
    check(raw, text, path)
}

/// The file as written, before any check; `path` is used in errors.
pub fn parse_raw(text: &str, path: &Path) -> Result<raw::RawConfig, ConfigError> {
    toml::from_str(text).map_err(|e| {
        let (line, column) = e
            .span()
            .map(|span| line_column(text, span.start))
            .unwrap_or((0, 0));
        ConfigError {
            path: path.to_path_buf(),
            line,
            column,
            message: e.message().trim().to_string(),
        }
    })
}

/// 1-based line and column of a byte offset.
pub(crate) fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before.rfind('\n').map_or(before.chars().count(), |nl| {
        before[nl + 1..].chars().count()
    }) + 1;
    (line, column)
}

#[cfg(test)]
mod bgp_tests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod vrrp_tests;
#[cfg(test)]
mod wireguard_tests;

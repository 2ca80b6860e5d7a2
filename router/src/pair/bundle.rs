//! What the primary gives the standby: the shared part of its
//! configuration file and every file that part refers to, versioned by
//! content hash.
//!
//! Shared: `[dns]` (resolver, upstreams, local records, filter lists and
//! groups) and `[policies]` with the policy files. Everything else is the
//! node's own: `[dns] listen` (its addresses), `[dns.query_log]` and
//! `lists_dir` (its data), `[control]`, `[metrics]`, `[wireguard]` (keys),
//! `[bgp]` (router id, sessions), `[vrrp]` (priorities) and `[pair]`.

use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::config::raw::RawConfig;
use crate::config::{self, Config, ConfigError};

/// Refuse bundles beyond these: a mistake (a list directory of gigabytes)
/// must not fill the standby's disk.
pub const MAX_FILES: usize = 4096;
pub const MAX_BYTES: usize = 256 << 20;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BundleFile {
    /// Absolute, as on the primary.
    pub path: PathBuf,
    pub content: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bundle {
    /// Hex SHA-256 of `config_path` and the files (see [`version_of`]).
    pub version: String,
    /// The primary's configuration file; one of `files`.
    pub config_path: PathBuf,
    pub files: Vec<BundleFile>,
}

#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error("{0}")]
    Config(#[from] ConfigError),
    #[error("{}: {message}", path.display())]
    File { path: PathBuf, message: String },
    #[error("the bundle is malformed: {0}")]
    Malformed(String),
}

impl Bundle {
    /// Reads the primary's file at `config_path`, checks its shared part
    /// and gathers the files it refers to. A part that does not check is
    /// an error: a broken change on the primary is never handed out.
    pub fn collect(config_path: &Path) -> Result<Bundle, BundleError> {
        let config_path = std::path::absolute(config_path).map_err(|e| BundleError::File {
            path: config_path.to_path_buf(),
            message: e.to_string(),
        })?;
        let text = read(&config_path)?;
        let raw = config::parse_raw(&text, &config_path)?;
        let (checked, referenced) =
            config::check_below(shared_part(raw), &text, &config_path, None);
        let checked = checked?;
        let mut paths = vec![config_path.clone()];
        for path in referenced {
            if path.is_file() {
                paths.push(path);
            }
        }
        if let Some(dir) = &checked.policies_dir {
            policies::load_dir(dir, &policies::Protected::default()).map_err(|e| {
                BundleError::File {
                    path: dir.clone(),
                    message: e.to_string(),
                }
            })?;
            paths.extend(policy_files(dir)?);
        }
        paths.sort();
        paths.dedup();
        if paths.len() > MAX_FILES {
            return Err(BundleError::Malformed(format!(
                "{} files: more than {MAX_FILES}",
                paths.len()
            )));
        }
        let mut files = Vec::with_capacity(paths.len());
        let mut total = 0;
        for path in paths {
            let content = read(&path)?;
            total += content.len();
            if total > MAX_BYTES {
                return Err(BundleError::Malformed(format!(
                    "more than {} MiB of files",
                    MAX_BYTES >> 20
                )));
            }
            files.push(BundleFile { path, content });
        }
        let version = version_of(&config_path, &files);
        Ok(Bundle {
            version,
            config_path,
            files,
        })
    }

    /// Whether the bundle is what its version says and every path is one
    /// the standby can store: absolute, without `..`.
    pub fn verify(&self) -> Result<(), BundleError> {
        if self.files.len() > MAX_FILES {
            return Err(BundleError::Malformed(format!(
                "{} files: more than {MAX_FILES}",
                self.files.len()
            )));
        }
        let total: usize = self.files.iter().map(|f| f.content.len()).sum();
        if total > MAX_BYTES {
            return Err(BundleError::Malformed(format!(
                "more than {} MiB of files",
                MAX_BYTES >> 20
            )));
        }
        for file in &self.files {
            if !is_plain_absolute(&file.path) {
                return Err(BundleError::Malformed(format!(
                    "file path {} is not a plain absolute path",
                    file.path.display()
                )));
            }
        }
        if !self.files.iter().any(|f| f.path == self.config_path) {
            return Err(BundleError::Malformed(
                "the configuration file itself is missing".into(),
            ));
        }
        let version = version_of(&self.config_path, &self.files);
        if version != self.version {
            return Err(BundleError::Malformed(format!(
                "content hash {version} does not match the announced version {}",
                self.version
            )));
        }
        Ok(())
    }

    /// The first 12 hex digits, for people.
    pub fn short(version: &str) -> &str {
        version.get(..12).unwrap_or(version)
    }
}

/// The part of a configuration the pair shares; the rest left empty.
pub fn shared_part(raw: RawConfig) -> RawConfig {
    let mut dns = raw.dns;
    dns.listen = None;
    dns.query_log = Default::default();
    dns.filter.lists_dir = None;
    RawConfig {
        dns,
        policies: raw.policies,
        ..RawConfig::default()
    }
}

/// This node's configuration with the shared part replaced by the one in
/// `files`, the primary's files stored below that directory (the primary's
/// `/etc/router/x` at `files/etc/router/x`).
pub fn overlay(local: Config, files: &Path, config_path: &Path) -> Result<Config, ConfigError> {
    let copy = below(files, config_path);
    let text = std::fs::read_to_string(&copy).map_err(|e| ConfigError {
        path: copy.clone(),
        line: 0,
        column: 0,
        message: format!("cannot read the primary's configuration: {e}"),
    })?;
    let raw = config::parse_raw(&text, &copy)?;
    let (shared, _) = config::check_below(shared_part(raw), &text, &copy, Some(files));
    let shared = shared?;
    let mut effective = local;
    effective.dns = dns::settings::DnsSettings {
        listen: effective.dns.listen,
        floating: effective.dns.floating,
        ..shared.dns
    };
    effective.filter = config::filter::FilterConfig {
        lists_dir: effective.filter.lists_dir,
        ..shared.filter
    };
    effective.policies_dir = shared.policies_dir;
    Ok(effective)
}

/// Where the primary's `path` is stored below `files`.
pub fn below(files: &Path, path: &Path) -> PathBuf {
    files.join(path.strip_prefix("/").unwrap_or(path))
}

/// SHA-256 over the configuration path and each file's path and content,
/// in path order, each length-prefixed so no two bundles hash alike.
pub fn version_of(config_path: &Path, files: &[BundleFile]) -> String {
    let mut sorted: Vec<&BundleFile> = files.iter().collect();
    sorted.sort_by(|a, b| a.path.cmp(&b.path));
    let mut hash = ring::digest::Context::new(&ring::digest::SHA256);
    let mut field = |bytes: &[u8]| {
        hash.update(&(bytes.len() as u64).to_be_bytes());
        hash.update(bytes);
    };
    field(config_path.as_os_str().as_encoded_bytes());
    for file in sorted {
        field(file.path.as_os_str().as_encoded_bytes());
        field(file.content.as_bytes());
    }
    hash.finish()
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn is_plain_absolute(path: &Path) -> bool {
    let mut components = path.components();
    components.next() == Some(Component::RootDir)
        && components.all(|c| matches!(c, Component::Normal(_)))
}

fn read(path: &Path) -> Result<String, BundleError> {
    std::fs::read_to_string(path).map_err(|e| BundleError::File {
        path: path.to_path_buf(),
        message: format!("cannot read: {e}"),
    })
}

/// The files `policies::load_dir` reads.
fn policy_files(dir: &Path) -> Result<Vec<PathBuf>, BundleError> {
    let entries = std::fs::read_dir(dir).map_err(|e| BundleError::File {
        path: dir.to_path_buf(),
        message: e.to_string(),
    })?;
    Ok(entries
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "toml") && path.is_file())
        .collect())
}

#[cfg(test)]
#[path = "bundle_tests.rs"]
mod tests;

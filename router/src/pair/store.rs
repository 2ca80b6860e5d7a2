//! The standby's copies of the primary's configuration: one directory per
//! version under `versions/`, and `current`, a symlink to the one in use,
//! replaced with a rename so a crash leaves the old or the new version
//! whole, never a mix.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::bundle::{Bundle, below};

const MANIFEST: &str = "manifest.json";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub version: String,
    /// The primary's configuration file, as on the primary.
    pub config_path: PathBuf,
    /// When this copy was stored (seconds since the epoch).
    pub stored_unix: u64,
}

#[derive(Debug, thiserror::Error)]
#[error("{}: {message}", path.display())]
pub struct StoreError {
    pub path: PathBuf,
    pub message: String,
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |e| StoreError {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

#[derive(Debug, Clone)]
pub struct Store {
    dir: PathBuf,
}

impl Store {
    pub fn new(dir: &Path) -> Store {
        Store {
            dir: dir.to_path_buf(),
        }
    }

    /// Where the version in use keeps the primary's files: a path that
    /// stays the same across versions, so the running configuration's
    /// paths (the policy directory, list files) follow each new version.
    pub fn current_files(&self) -> PathBuf {
        self.current_link().join("files")
    }

    pub fn version_dir(&self, version: &str) -> PathBuf {
        self.dir.join("versions").join(version)
    }

    fn current_link(&self) -> PathBuf {
        self.dir.join("current")
    }

    /// The version in use, if any.
    pub fn current(&self) -> Option<Manifest> {
        read_manifest(&self.current_link())
    }

    pub fn manifest(&self, version: &str) -> Option<Manifest> {
        read_manifest(&self.version_dir(version))
    }

    /// Writes a verified bundle as a version directory (not yet in use).
    pub fn stage(&self, bundle: &Bundle) -> Result<PathBuf, StoreError> {
        let versions = self.dir.join("versions");
        std::fs::create_dir_all(&versions).map_err(io_error(&versions))?;
        let incoming = versions.join(format!(".incoming-{}", bundle.version));
        if incoming.exists() {
            std::fs::remove_dir_all(&incoming).map_err(io_error(&incoming))?;
        }
        let files = incoming.join("files");
        for file in &bundle.files {
            let path = below(&files, &file.path);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).map_err(io_error(parent))?;
            }
            std::fs::write(&path, &file.content).map_err(io_error(&path))?;
        }
        let manifest = Manifest {
            version: bundle.version.clone(),
            config_path: bundle.config_path.clone(),
            stored_unix: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
        };
        let path = incoming.join(MANIFEST);
        let json = serde_json::to_vec_pretty(&manifest).map_err(|e| StoreError {
            path: path.clone(),
            message: e.to_string(),
        })?;
        std::fs::write(&path, json).map_err(io_error(&path))?;
        let target = self.version_dir(&bundle.version);
        if target.exists() {
            std::fs::remove_dir_all(&target).map_err(io_error(&target))?;
        }
        std::fs::rename(&incoming, &target).map_err(io_error(&target))?;
        Ok(target)
    }

    /// Puts a staged version in use; returns the one it replaced.
    pub fn commit(&self, version: &str) -> Result<Option<String>, StoreError> {
        let previous = self.current().map(|m| m.version);
        self.point_at(Some(version))?;
        Ok(previous)
    }

    /// Goes back to `previous` (`None`: no copy in use, the node's own
    /// file alone).
    pub fn restore(&self, previous: Option<&str>) -> Result<(), StoreError> {
        self.point_at(previous)
    }

    fn point_at(&self, version: Option<&str>) -> Result<(), StoreError> {
        let link = self.current_link();
        let Some(version) = version else {
            return match std::fs::remove_file(&link) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io_error(&link)(e)),
                _ => Ok(()),
            };
        };
        let fresh = self.dir.join(".current.new");
        let _ = std::fs::remove_file(&fresh);
        let target = Path::new("versions").join(version);
        std::os::unix::fs::symlink(&target, &fresh).map_err(io_error(&fresh))?;
        std::fs::rename(&fresh, &link).map_err(io_error(&link))
    }

    /// Removes every version but `keep`.
    pub fn prune(&self, keep: &[&str]) {
        let versions = self.dir.join("versions");
        let Ok(entries) = std::fs::read_dir(&versions) else {
            return;
        };
        for entry in entries.filter_map(Result::ok) {
            let name = entry.file_name();
            if !keep.iter().any(|k| name.to_str() == Some(*k)) {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }
}

fn read_manifest(dir: &Path) -> Option<Manifest> {
    let bytes = std::fs::read(dir.join(MANIFEST)).ok()?;
    serde_json::from_slice(&bytes).ok()
}

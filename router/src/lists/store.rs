//! Crash-safe files: everything is written to a temporary file in the same
//! directory, synced, and renamed over its destination, so a reader (or a
//! reboot) only ever sees the old or the new content, never a mix.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use tracing::debug;

/// Temporary files are `.<name>.<pid>.<n>.tmp`: hidden, and, since list
/// names have no dots, never mistaken for another list's.
const TEMP_SUFFIX: &str = ".tmp";

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// A temporary file that is removed unless it is persisted.
#[derive(Debug)]
pub(crate) struct TempFile {
    path: PathBuf,
    persisted: bool,
}

impl TempFile {
    /// Creates a fresh temporary file for list `name` in `dir`.
    pub fn create(dir: &Path, name: &str) -> io::Result<(Self, File)> {
        loop {
            let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
            let path = dir.join(format!(".{name}.{}.{n}{TEMP_SUFFIX}", std::process::id()));
            match OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(file) => {
                    let temp = TempFile {
                        path,
                        persisted: false,
                    };
                    return Ok((temp, file));
                }
                // Left by an earlier process that had the same pid.
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            }
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Renames the (already synced) file over `dest` and syncs the
    /// directory, so the rename itself survives a power cut.
    pub fn persist(mut self, dest: &Path) -> io::Result<()> {
        fs::rename(&self.path, dest)?;
        self.persisted = true;
        sync_dir(dest)
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.persisted
            && let Err(e) = fs::remove_file(&self.path)
            && e.kind() != io::ErrorKind::NotFound
        {
            debug!(path = %self.path.display(), error = %e, "cannot remove a temporary list file");
        }
    }
}

/// Writes `bytes` to `dest` atomically.
pub(crate) fn write_atomic(dir: &Path, name: &str, dest: &Path, bytes: &[u8]) -> io::Result<()> {
    let (temp, mut file) = TempFile::create(dir, name)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    drop(file);
    temp.persist(dest)
}

fn sync_dir(path: &Path) -> io::Result<()> {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => File::open(dir)?.sync_all(),
        _ => File::open(".")?.sync_all(),
    }
}

/// Removes temporary files of list `name` that an earlier process left
/// behind when it crashed. This process's own are skipped: another store on
/// the same directory may be writing them right now.
pub(crate) fn remove_stale_temps(dir: &Path, name: &str) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    let prefix = format!(".{name}.");
    let own = format!(".{name}.{}.", std::process::id());
    for entry in entries.flatten() {
        let file_name = entry.file_name();
        let Some(file_name) = file_name.to_str() else {
            continue;
        };
        if file_name.starts_with(&prefix)
            && !file_name.starts_with(&own)
            && file_name.ends_with(TEMP_SUFFIX)
        {
            match fs::remove_file(entry.path()) {
                Ok(()) => debug!(file = file_name, "removed a stale temporary list file"),
                Err(e) => {
                    debug!(file = file_name, error = %e, "cannot remove a stale temporary list file")
                }
            }
        }
    }
}

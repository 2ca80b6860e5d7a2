//! Secrets in files: keys and passwords that only their owner may read.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// Reads a secret file, refusing one that others than its owner may read
/// or write: a leaked key lets anyone impersonate this router.
pub fn read_secret_file(path: &Path) -> Result<String, String> {
    let metadata = std::fs::metadata(path)
        .map_err(|e| format!("cannot read key file {}: {e}", path.display()))?;
    let mode = metadata.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(format!(
            "key file {} has mode {mode:04o}: expected 0600 or stricter (chmod 600 {})",
            path.display(),
            path.display()
        ));
    }
    std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read key file {}: {e}", path.display()))
}

//! Deciding whether an end-to-end test can run here.
//!
//! The lab needs root (network namespaces) and a handful of external tools.
//! On a developer machine without them the tests skip with a note; in CI,
//! `REQUIRE_E2E=1` turns a skip into a failure so a broken runner image is
//! noticed instead of silently passing.

use std::io::Write;
use std::path::{Path, PathBuf};

/// True when the lab itself can run: root and `ip`.
pub fn e2e_enabled() -> bool {
    require(&[])
}

/// True when the lab can run and every tool in `tools` is available.
///
/// Tools are looked up in `PATH` and the sbin directories (NSD and unbound
/// live in /usr/sbin). The pseudo-tool `routerd` means the daemon binary
/// that [`crate::routerd::binary`] finds, `routerctl` the CLI that
/// [`crate::routerd::routerctl_binary`] finds.
///
/// When something is missing: panics if `REQUIRE_E2E=1`, otherwise prints
/// why the test is skipped and returns false.
pub fn require(tools: &[&str]) -> bool {
    let missing = missing(tools);
    if missing.is_empty() {
        return true;
    }
    let why = missing.join(", ");
    if std::env::var("REQUIRE_E2E").as_deref() == Ok("1") {
        panic!("REQUIRE_E2E=1 but the e2e lab cannot run here: missing {why}");
    }
    // Written to the real stderr, not through eprintln!, so the note is
    // visible even though the test harness captures output of passing tests.
    let _ = writeln!(
        std::io::stderr(),
        "e2e: skipping test: missing {why} (set REQUIRE_E2E=1 to fail instead)"
    );
    false
}

/// What is missing to run a test needing `tools`, in words.
pub fn missing(tools: &[&str]) -> Vec<String> {
    let mut missing = Vec::new();
    if !is_root() {
        missing.push("root privileges (for network namespaces)".to_string());
    }
    for tool in std::iter::once(&"ip").chain(tools) {
        if *tool == "routerd" {
            if let Err(e) = crate::routerd::binary() {
                missing.push(format!("the routerd binary ({e})"));
            }
        } else if *tool == "routerctl" {
            if let Err(e) = crate::routerd::routerctl_binary() {
                missing.push(format!("the routerctl binary ({e})"));
            }
        } else if find_tool(tool).is_none() {
            missing.push(format!("`{tool}`"));
        }
    }
    missing
}

/// Full path of an external tool, searching `PATH` then the sbin
/// directories, which a non-login environment often leaves out of `PATH`.
pub fn find_tool(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/local/sbin", "/usr/sbin", "/sbin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|p| is_executable(p))
}

/// Like [`find_tool`], but an error naming the tool when it is absent.
pub fn tool(name: &str) -> anyhow::Result<PathBuf> {
    find_tool(name).ok_or_else(|| anyhow::anyhow!("`{name}` not found in PATH or sbin"))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// Effective uid 0, read from /proc (calling geteuid would need `unsafe`).
fn is_root() -> bool {
    let Ok(status) = std::fs::read_to_string("/proc/self/status") else {
        return false;
    };
    status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1))
        == Some("0")
}

//! Helpers shared by router's integration tests that need a network
//! namespace lab: finding `ip`, checking for root, and running a program.
//!
//! Each test file includes this with `mod support;`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

/// `ip`, when this machine can run the namespace lab; `None` after saying
/// why not, as "`area`: skipping `test`: ...". With REQUIRE_E2E=1 a missing
/// piece fails the test instead.
pub fn lab_tool(area: &str, test: &str) -> Option<PathBuf> {
    let ip = ["/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"]
        .map(PathBuf::from)
        .into_iter()
        .find(|path| path.is_file());
    let mut missing = Vec::new();
    if !is_root() {
        missing.push("root privileges (for network namespaces)");
    }
    if ip.is_none() {
        missing.push("`ip` (iproute2)");
    }
    if missing.is_empty() {
        return ip;
    }
    let why = missing.join(", ");
    if std::env::var("REQUIRE_E2E").as_deref() == Ok("1") {
        panic!("REQUIRE_E2E=1 but the {area} test {test} cannot run here: missing {why}");
    }
    // The real stderr, so the note shows although the harness captures output.
    let _ = writeln!(
        std::io::stderr(),
        "{area}: skipping {test}: missing {why} (set REQUIRE_E2E=1 to fail instead)"
    );
    None
}

/// Effective uid 0, read from /proc (geteuid would need `unsafe`).
pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status").is_ok_and(|status| {
        status
            .lines()
            .find_map(|line| line.strip_prefix("Uid:"))
            .and_then(|ids| ids.split_whitespace().nth(1))
            == Some("0")
    })
}

/// Runs `program args` and returns its standard output; panics, with its
/// standard error, when it fails.
pub fn run<S: AsRef<str>>(program: &Path, args: &[S]) -> String {
    let args: Vec<&str> = args.iter().map(AsRef::as_ref).collect();
    let output = Command::new(program).args(&args).output().unwrap();
    assert!(
        output.status.success(),
        "{} {} failed: {}",
        program.display(),
        args.join(" "),
        String::from_utf8_lossy(&output.stderr).trim()
    );
    String::from_utf8(output.stdout).unwrap()
}

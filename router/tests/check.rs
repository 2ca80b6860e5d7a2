//! `routerd check` refuses a configuration whose policy does not load,
//! naming the policy file and line, and accepts it once the policy is
//! mended. (The daemon itself starts with such a policy and keeps the
//! kernel's last good ruleset, so the configuration alone passes.)
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests

use std::path::Path;
use std::process::Command;

fn check(config: &Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_routerd"))
        .args(["check", "--config"])
        .arg(config)
        .output()
        .unwrap()
}

#[test]
fn a_policy_that_does_not_load_fails_the_check() {
    let dir = tempfile::tempdir().unwrap();
    let policies = dir.path().join("policies");
    std::fs::create_dir(&policies).unwrap();
    let config = dir.path().join("router.toml");
    std::fs::write(
        &config,
        format!(
            "[dns]\nlisten = [\"127.0.0.1:5353\"]\n\n[policies]\ndir = \"{}\"\n",
            policies.display()
        ),
    )
    .unwrap();
    let zone = "[[zone]]\nname = \"lan\"\ninterface = \"eth1\"\nipv4 = [\"192.168.1.1/24\"]\n";
    let policy = policies.join("home.toml");
    // A rule toward a zone nobody defined.
    std::fs::write(
        &policy,
        format!("{zone}\n[[rule]]\nname = \"out\"\nfrom = \"lan\"\nto = \"nowhere\"\naction = \"accept\"\n"),
    )
    .unwrap();
    let out = check(&config);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!("{}:", policy.display())) && stderr.contains("nowhere"),
        "{stderr}"
    );

    std::fs::write(&policy, zone).unwrap();
    let out = check(&config);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

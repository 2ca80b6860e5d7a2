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

/// A primary's pair listener is one of the router's own services: a policy
/// that cuts the management zone off from it would leave the standby
/// without the primary's configuration, so the check refuses it, naming
/// the zone and the port, and passes once a rule lets it through.
#[test]
fn a_policy_that_shuts_out_the_pair_listener_fails_the_check() {
    use std::os::unix::fs::PermissionsExt;

    let dir = tempfile::tempdir().unwrap();
    let policies = dir.path().join("policies");
    std::fs::create_dir(&policies).unwrap();
    let token = dir.path().join("pair.token");
    std::fs::write(&token, "check-pair-token-0123456789abcdef\n").unwrap();
    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o600)).unwrap();
    let config = dir.path().join("router.toml");
    std::fs::write(
        &config,
        format!(
            "[dns]\nlisten = [\"127.0.0.1:5353\"]\n\n[policies]\ndir = \"{}\"\n\n[pair]\nrole = \"primary\"\nlisten = \"192.168.10.2:8054\"\ntoken_file = \"{}\"\nstate_dir = \"{}\"\n",
            policies.display(),
            token.display(),
            dir.path().join("pair").display()
        ),
    )
    .unwrap();
    let admin = "[management]\nzone = \"admin\"\n\n[[zone]]\nname = \"admin\"\ninterface = \"eth1\"\nipv4 = [\"192.168.10.2/24\"]\ninput = \"reject\"\n\n[[rule]]\nname = \"ssh\"\nfrom = \"admin\"\nto = \"router\"\nservice = \"ssh\"\naction = \"accept\"\n";
    let policy = policies.join("pair.toml");
    std::fs::write(&policy, admin).unwrap();
    let out = check(&config);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!("{}:", policy.display()))
            && stderr.contains("pair listener (tcp/8054)")
            && stderr.contains("\"admin\""),
        "{stderr}"
    );

    std::fs::write(
        &policy,
        format!("{admin}\n[[rule]]\nname = \"pair\"\nfrom = \"admin\"\nto = \"router\"\nservice = \"tcp/8054\"\naction = \"accept\"\n"),
    )
    .unwrap();
    let out = check(&config);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

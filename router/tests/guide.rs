//! docs/pi-pair.md cannot rot: the configuration files it has the reader
//! write (docs/examples/: the primary's, the standby's, grandma's site and
//! the pair's policy) pass the same checks as `routerd check`, with the
//! key and token files the guide makes in place, and every TOML snippet in
//! the guide is a verbatim piece of one of those files. The package's
//! /etc/router/router.toml passes too.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn secret(path: &Path, content: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, content).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

/// A scratch root with what the guide puts in /etc/router on a node:
/// the pair's token, a WireGuard key, the pair's policy.
fn node_root() -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    let etc = root.path().join("etc/router");
    // `openssl rand -hex 32`, `routerctl wg genkey`.
    for (name, content) in [
        (
            "pair.token",
            "3f8a1c0e9b7d4a2f6e5c1b0a9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d0e\n",
        ),
        (
            "wg-grandma.key",
            "yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=\n",
        ),
        (
            "wg-home-a.key",
            "yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=\n",
        ),
        (
            "wg-home-b.key",
            "QEFCQ0RFRkdISUpLTE1OT1BRUlNUVVZXWFlaW1xdXl8=\n",
        ),
    ] {
        secret(&etc.join(name), content);
    }
    std::fs::create_dir_all(etc.join("policies")).unwrap();
    std::fs::copy(
        repo().join("docs/examples/policies/pair.toml"),
        etc.join("policies/pair.toml"),
    )
    .unwrap();
    root
}

/// `routerd check` on `file`, as installed at /etc/router/router.toml
/// under `root`.
fn check(file: &str, root: &Path) -> router::config::Config {
    let text = read(&repo().join(file));
    let path = Path::new("/etc/router/router.toml");
    let raw = router::config::parse_raw(&text, path).unwrap_or_else(|e| panic!("{file}: {e}"));
    let (config, _) = router::config::check_below(raw, &text, path, Some(root));
    config.unwrap_or_else(|e| panic!("{file}: {e}"))
}

/// The policy check `routerd check` runs (without nft), with what this
/// node's configuration adds: its zone addresses, its VRRP interfaces and
/// its pair listener.
fn check_policy(root: &Path, config: &router::config::Config) {
    let dir = root.join("etc/router/policies");
    let node = router::firewall::NodeFirewall::of(config);
    let report = router::firewall::check_dir(&dir, None, None, &node);
    assert!(
        report.ok,
        "{}: {:?}",
        dir.display(),
        report
            .diagnostics
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
    );
}

#[test]
fn the_guides_node_configurations_check() {
    let root = node_root();
    let primary = check("docs/examples/primary.toml", root.path());
    check_policy(root.path(), &primary);
    let pair = primary.pair.as_ref().unwrap();
    assert_eq!(pair.role.to_string(), "primary");
    let primary_vrrp = primary.vrrp.as_ref().unwrap();

    let standby = check("docs/examples/standby.toml", root.path());
    check_policy(root.path(), &standby);
    let pair_b = standby.pair.as_ref().unwrap();
    assert_eq!(pair_b.role.to_string(), "standby");
    // The standby asks where the primary listens.
    assert_eq!(pair_b.peer, pair.listen);
    // The same instances on both, the primary preferred.
    let standby_vrrp = standby.vrrp.as_ref().unwrap();
    assert_eq!(primary_vrrp.instances.len(), standby_vrrp.instances.len());
    for (a, b) in primary_vrrp.instances.iter().zip(&standby_vrrp.instances) {
        assert_eq!(
            (&a.name, &a.interface, a.vrid, &a.addresses),
            (&b.name, &b.interface, b.vrid, &b.addresses)
        );
        assert!(a.priority > b.priority, "{}", a.name);
    }
    // Every floating address is served by DNS on both.
    for config in [&primary, &standby] {
        assert_eq!(config.dns.floating.len(), primary_vrrp.instances.len());
    }

    let grandma = check("docs/examples/grandma.toml", root.path());
    assert_eq!(grandma.bgp.as_ref().unwrap().peers.len(), 2);
}

#[test]
fn the_packaged_configuration_checks() {
    let head = read(&repo().join("packaging/router.toml.head"));
    let example = read(&repo().join("examples/router.toml"));
    let text = format!("{head}{example}");
    let config = router::config::parse(&text, Path::new("/etc/router/router.toml")).unwrap();
    // Loopback only: a fresh install serves nobody else.
    assert!(config.dns.listen.iter().all(|a| a.ip().is_loopback()));
    assert!(config.policies_dir.is_none() && config.vrrp.is_none() && config.pair.is_none());
}

/// The ```toml blocks of docs/pi-pair.md.
fn toml_snippets(guide: &str) -> Vec<String> {
    let mut snippets = Vec::new();
    let mut current: Option<Vec<&str>> = None;
    for line in guide.lines() {
        match &mut current {
            None if line.trim_start() == "```toml" => current = Some(Vec::new()),
            Some(lines) if line.trim_start() == "```" => {
                snippets.push(lines.join("\n"));
                current = None;
            }
            Some(lines) => lines.push(line),
            None => {}
        }
    }
    snippets
}

#[test]
fn every_toml_snippet_in_the_guide_comes_from_a_checked_file() {
    let guide = read(&repo().join("docs/pi-pair.md"));
    let files: Vec<(String, String)> = [
        "docs/examples/primary.toml",
        "docs/examples/standby.toml",
        "docs/examples/grandma.toml",
        "docs/examples/policies/pair.toml",
    ]
    .iter()
    .map(|f| (f.to_string(), read(&repo().join(f))))
    .collect();
    for (file, _) in &files {
        assert!(guide.contains(file), "the guide does not name {file}");
    }
    let snippets = toml_snippets(&guide);
    assert!(snippets.len() >= 5, "{} TOML snippets", snippets.len());
    for snippet in snippets {
        assert!(
            files.iter().any(|(_, text)| text.contains(&snippet)),
            "this snippet of docs/pi-pair.md is in none of docs/examples/: copy it from there\n{snippet}"
        );
    }
}

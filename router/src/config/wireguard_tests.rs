#![allow(clippy::unwrap_used, clippy::expect_used)] // tests

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use super::*;
use crate::wireguard::keys;
use crate::wireguard::settings::{Endpoint, RouteMode};

/// A directory with key files and a config that names them relatively.
struct Site {
    dir: tempfile::TempDir,
}

impl Site {
    fn new() -> Site {
        let site = Site {
            dir: tempfile::tempdir().unwrap(),
        };
        site.key("a.key", 0o600);
        site.key("b.key", 0o600);
        site
    }

    fn key(&self, name: &str, mode: u32) -> String {
        let private = keys::generate_private();
        let path = self.dir.path().join(name);
        std::fs::write(&path, format!("{private}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        private
    }

    fn path(&self) -> PathBuf {
        self.dir.path().join("router.toml")
    }

    fn parse(&self, text: &str) -> Result<Config, ConfigError> {
        parse(text, &self.path())
    }
}

fn public() -> String {
    keys::public_of(&keys::generate_private()).unwrap()
}

fn tunnel(peers: &str) -> String {
    format!(
        "[[wireguard.tunnels]]\ninterface = \"wg-home\"\nprivate_key_file = \"a.key\"\nlisten_port = 51820\naddresses = [\"10.62.0.1/24\"]\n{peers}"
    )
}

fn peer(name: &str, key: &str, allowed: &str) -> String {
    format!(
        "\n[[wireguard.tunnels.peers]]\nname = \"{name}\"\npublic_key = \"{key}\"\nallowed_ips = [{allowed}]\n"
    )
}

#[test]
fn a_tunnel_with_peers_is_checked_into_settings() {
    let site = Site::new();
    let text = format!(
        "{}endpoint = \"Grandma.example.org:51820\"\npersistent_keepalive = 25\n{}endpoint = \"192.0.2.7:51820\"\npersistent_keepalive = 0\n",
        tunnel(&peer(
            "grandma",
            &public(),
            "\"10.62.0.2/32\", \"192.168.50.0/24\""
        )),
        peer("cloud", &public(), "\"10.62.0.3/32\""),
    );
    let config = site.parse(&text).unwrap();
    let wg = &config.wireguard;
    assert_eq!(wg.route_table, 200);
    let tunnel = &wg.tunnels[0];
    assert_eq!(tunnel.interface, "wg-home");
    assert_eq!(tunnel.mtu, 1420);
    assert_eq!(tunnel.routes, RouteMode::Table);
    assert_eq!(tunnel.stale_after.as_secs(), 180);
    assert_eq!(
        tunnel.peers[0].endpoint,
        Some(Endpoint::Name {
            host: "grandma.example.org".into(),
            port: 51820
        })
    );
    assert_eq!(tunnel.peers[0].persistent_keepalive, Some(25));
    assert_eq!(tunnel.peers[1].persistent_keepalive, None);
    // The private key never shows in a printed configuration.
    let private = std::fs::read_to_string(site.dir.path().join("a.key")).unwrap();
    assert!(!format!("{config:?}").contains(private.trim()));
}

/// The error for `text`, which must name the file and a line.
fn error(site: &Site, text: &str) -> ConfigError {
    let error = site.parse(text).unwrap_err();
    assert_eq!(error.path, site.path());
    assert!(error.line > 0, "{error}");
    error
}

#[test]
fn key_problems_name_the_file_and_the_fix() {
    let site = Site::new();
    site.key("loose.key", 0o644);
    let text = tunnel("").replace("a.key", "loose.key");
    let e = error(&site, &text);
    assert_eq!(e.line, 3);
    assert!(
        e.message.contains("loose.key") && e.message.contains("0600"),
        "{e}"
    );

    let e = error(&site, &tunnel("").replace("a.key", "missing.key"));
    assert!(e.message.contains("missing.key"), "{e}");

    std::fs::write(site.dir.path().join("short.key"), "c2hvcnQ=\n").unwrap();
    std::fs::set_permissions(
        site.dir.path().join("short.key"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    let e = error(&site, &tunnel("").replace("a.key", "short.key"));
    assert!(e.message.contains("32 bytes of base64"), "{e}");

    let e = error(&site, &tunnel(&peer("x", "not-a-key", "\"10.62.0.2/32\"")));
    assert!(
        e.message.contains("public_key") && e.message.contains("32 bytes"),
        "{e}"
    );
}

#[test]
fn duplicate_keys_are_refused() {
    let site = Site::new();
    let key = public();
    let text = tunnel(&format!(
        "{}{}",
        peer("one", &key, "\"10.62.0.2/32\""),
        peer("two", &key, "\"10.62.0.3/32\"")
    ));
    let e = error(&site, &text);
    assert!(e.message.contains("same public key"), "{e}");

    // The tunnel's own public key as a peer.
    let own =
        keys::public_of(&std::fs::read_to_string(site.dir.path().join("a.key")).unwrap()).unwrap();
    let e = error(&site, &tunnel(&peer("me", &own, "\"10.62.0.2/32\"")));
    assert!(e.message.contains("own public key"), "{e}");

    // Two tunnels with one private key.
    let second = "\n[[wireguard.tunnels]]\ninterface = \"wg-two\"\nprivate_key_file = \"a.key\"\n";
    let e = error(&site, &format!("{}{second}", tunnel("")));
    assert!(e.message.contains("same private key"), "{e}");
}

#[test]
fn overlapping_allowed_ips_are_refused() {
    let site = Site::new();
    let text = tunnel(&format!(
        "{}{}",
        peer("one", &public(), "\"10.62.0.2/32\", \"192.168.50.0/24\""),
        peer("two", &public(), "\"10.62.0.3/32\", \"192.168.50.128/25\"")
    ));
    let e = error(&site, &text);
    assert!(
        e.message.contains("192.168.50.128/25") && e.message.contains("overlaps peer one"),
        "{e}"
    );

    // Across tunnels too, when both install routes.
    let second = format!(
        "\n[[wireguard.tunnels]]\ninterface = \"wg-two\"\nprivate_key_file = \"b.key\"\n{}",
        peer("three", &public(), "\"192.168.50.0/24\"")
    );
    let first = tunnel(&peer("one", &public(), "\"192.168.50.0/24\""));
    let e = error(&site, &format!("{first}{second}"));
    assert!(
        e.message.contains("overlaps peer one of tunnel wg-home"),
        "{e}"
    );

    let e = error(
        &site,
        &tunnel(&peer("one", &public(), "\"192.168.50.1/24\"")),
    );
    assert!(e.message.contains("did you mean 192.168.50.0/24"), "{e}");

    let e = error(&site, &tunnel(&peer("all", &public(), "\"0.0.0.0/0\"")));
    assert!(
        e.message.contains("routes = \\\"none\\\"") || e.message.contains("routes = \"none\""),
        "{e}"
    );
}

#[test]
fn names_ports_and_endpoints_are_checked() {
    let site = Site::new();
    let e = error(&site, &tunnel("").replace("wg-home", "a-name-far-too-long"));
    assert!(e.message.contains("at most 15 bytes"), "{e}");

    let two = format!(
        "{}\n[[wireguard.tunnels]]\ninterface = \"wg-home\"\nprivate_key_file = \"b.key\"\n",
        tunnel("")
    );
    let e = error(&site, &two);
    assert!(e.message.contains("declared twice"), "{e}");

    let port = format!(
        "{}\n[[wireguard.tunnels]]\ninterface = \"wg-two\"\nprivate_key_file = \"b.key\"\nlisten_port = 51820\n",
        tunnel("")
    );
    let e = error(&site, &port);
    assert!(e.message.contains("listen_port 51820"), "{e}");

    let bad_endpoint = format!(
        "{}endpoint = \"grandma.example.org\"\n",
        tunnel(&peer("grandma", &public(), "\"10.62.0.2/32\""))
    );
    let e = error(&site, &bad_endpoint);
    assert!(e.message.contains("expected host:port"), "{e}");

    let e = error(&site, &format!("{}zone = \"sites\"\n", tunnel("")));
    assert!(e.message.contains("[policies]"), "{e}");

    let e = error(&site, "[wireguard]\nroute_table = 254\n");
    assert!(e.message.contains("kernel uses itself"), "{e}");

    let e = error(
        &site,
        &tunnel("").replace("listen_port = 51820", "stale_after = \"soon\""),
    );
    assert!(e.message.contains("stale_after"), "{e}");
}

#[test]
fn unknown_keys_in_a_peer_are_refused() {
    let site = Site::new();
    let text = format!(
        "{}persistentkeepalive = 25\n",
        tunnel(&peer("grandma", &public(), "\"10.62.0.2/32\""))
    );
    let e = error(&site, &text);
    assert!(
        e.message.contains("unknown field `persistentkeepalive`"),
        "{e}"
    );
}

#[test]
fn a_tunnel_zone_must_be_the_policy_zone_on_that_interface() {
    let site = Site::new();
    let policies = site.dir.path().join("policies");
    std::fs::create_dir(&policies).unwrap();
    std::fs::write(
        policies.join("zones.toml"),
        "[management]\nzone = \"admin\"\n\n[[zone]]\nname = \"admin\"\ninterface = \"eth1\"\nipv4 = [\"192.168.10.1/24\"]\ninput = \"accept\"\nforward = \"accept\"\n\n[[zone]]\nname = \"sites\"\ninterface = \"wg-home\"\nipv4 = [\"10.62.0.1/24\"]\ninput = \"reject\"\nforward = \"reject\"\n",
    )
    .unwrap();
    let with_zone = |zone: &str, addresses: &str| {
        format!(
            "[policies]\ndir = \"policies\"\n\n{}",
            tunnel("").replace(
                "addresses = [\"10.62.0.1/24\"]\n",
                &format!("{addresses}zone = \"{zone}\"\n")
            )
        )
    };
    // The zone's router addresses become the tunnel's.
    let config = site.parse(&with_zone("sites", "")).unwrap();
    let tunnel = &config.wireguard.tunnels[0];
    assert_eq!(tunnel.zone.as_deref(), Some("sites"));
    assert_eq!(tunnel.addresses, vec!["10.62.0.1/24".parse().unwrap()]);

    let e = error(&site, &with_zone("admin", ""));
    assert!(e.message.contains("is on interface eth1"), "{e}");
    let e = error(&site, &with_zone("iot", ""));
    assert!(
        e.message.contains("not declared") && e.message.contains("sites"),
        "{e}"
    );
    let e = error(
        &site,
        &with_zone("sites", "addresses = [\"10.63.0.1/24\"]\n"),
    );
    assert!(e.message.contains("differ from zone"), "{e}");
}

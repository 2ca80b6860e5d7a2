#![allow(clippy::unwrap_used, clippy::expect_used)] // tests

use std::os::unix::fs::PermissionsExt;

use super::*;

fn parse_in(dir: &std::path::Path, text: &str) -> Result<Config, ConfigError> {
    parse(text, &dir.join("router.toml"))
}

const BASE: &str = "[bgp]\nasn = 65001\nrouter_id = \"10.62.0.1\"\nlisten = [\"10.62.0.1\"]\nnetworks = [\"10.61.1.0/24\"]\n";

#[test]
fn a_speaker_with_peers_and_policies_is_checked_into_settings() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("md5"), "s3cret\n").unwrap();
    std::fs::set_permissions(
        dir.path().join("md5"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    let text = format!(
        "{BASE}\n[[bgp.peers]]\nname = \"site-b\"\naddress = \"10.62.0.2\"\nremote_asn = 65002\nmd5_password_file = \"md5\"\ngtsm = true\nmax_prefixes = 100\nimport = {{ prefixes = [\"permit 10.61.0.0/16 le 24\"], local_pref = 200 }}\nexport = {{ prefixes = [\"permit 10.61.1.0/24\"] }}\n"
    );
    let config = parse_in(dir.path(), &text).unwrap();
    let bgp = config.bgp.unwrap();
    assert_eq!(bgp.asn, 65001);
    assert_eq!(bgp.listen, vec!["10.62.0.1:179".parse().unwrap()]);
    assert_eq!(bgp.hold_time, 90);
    assert_eq!(bgp.kernel_table, 254);
    let peer = &bgp.peers[0];
    assert!(peer.ebgp(bgp.asn));
    assert_eq!(peer.md5_password.as_ref().unwrap().0, "s3cret");
    assert!(!format!("{peer:?}").contains("s3cret"));
    let import = peer.import.as_ref().unwrap();
    assert_eq!(import.set_local_pref, Some(200));
    assert!(
        import
            .prefixes
            .as_ref()
            .unwrap()
            .permits(&"10.61.2.0/24".parse().unwrap())
    );
    assert!(
        !import
            .prefixes
            .as_ref()
            .unwrap()
            .permits(&"10.62.0.0/24".parse().unwrap())
    );
}

#[test]
fn bgp_mistakes_name_the_line_and_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (BASE.replace("65001", "0"), "reserved"),
        (
            BASE.replace("\"10.62.0.1\"]", "\"0.0.0.0\"]"),
            "own addresses",
        ),
        (format!("{BASE}hold_time = 2\n"), "at least 3"),
        (format!("{BASE}kernel_table = 255\n"), "kernel_table"),
        (
            BASE.replace("10.61.1.0/24", "10.61.1.1/24"),
            "did you mean 10.61.1.0/24",
        ),
        (
            format!(
                "{BASE}\n[[bgp.peers]]\nname = \"b\"\naddress = \"10.62.0.2\"\nremote_asn = 65002\nimport = {{ prefixes = [\"allow 10.0.0.0/8\"] }}\n"
            ),
            "permit or deny",
        ),
        (
            format!(
                "{BASE}\n[[bgp.peers]]\nname = \"b\"\naddress = \"10.62.0.2\"\nremote_asn = 65002\n\n[[bgp.peers]]\nname = \"c\"\naddress = \"10.62.0.2\"\nremote_asn = 65003\n"
            ),
            "same address",
        ),
        (
            format!(
                "{BASE}\n[[bgp.peers]]\nname = \"b\"\naddress = \"10.62.0.2\"\nremote_asn = 65002\nmd5_password_file = \"missing\"\n"
            ),
            "missing",
        ),
    ];
    for (text, expected) in cases {
        let error = parse_in(dir.path(), &text).unwrap_err();
        assert!(error.line > 0, "{error}");
        assert!(error.message.contains(expected), "{expected}: {error}");
    }
}

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests

use std::path::Path;

use super::*;

fn parse_str(text: &str) -> Result<Config, ConfigError> {
    parse(text, Path::new("/etc/router/router.toml"))
}

#[test]
fn the_annotated_example_is_valid_and_matches_the_defaults() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/router.toml");
    let config = load(&path).unwrap();
    let defaults = dns::DnsSettings::default();
    // The example documents the defaults: keep the two in step.
    assert_eq!(config.dns, defaults);
    assert_eq!(config.control_socket, Path::new(DEFAULT_CONTROL_SOCKET));
    assert_eq!(config.metrics_listen, None);
}

#[test]
fn an_empty_file_gives_the_defaults() {
    let config = parse_str("").unwrap();
    assert_eq!(config.dns, dns::DnsSettings::default());
}

#[test]
fn unknown_keys_are_rejected_with_line_and_column() {
    let error = parse_str("[dns]\nlisten = [\"127.0.0.1:53\"]\nlisen = 1\n").unwrap_err();
    assert_eq!((error.line, error.column), (3, 1));
    assert!(error.message.contains("unknown field `lisen`"), "{error}");
    assert!(
        error
            .to_string()
            .starts_with("/etc/router/router.toml:3:1: ")
    );
}

#[test]
fn bad_values_name_what_was_expected() {
    let error = parse_str("[dns]\nlisten = [\"127.0.0.1\"]\n").unwrap_err();
    assert_eq!(error.line, 2);
    assert!(error.message.contains("socket address"), "{error}");

    let error = parse_str("[dns]\nmode = \"recurse\"\n").unwrap_err();
    assert_eq!(error.line, 2);
    assert!(error.message.contains("recursive"), "{error}");
}

#[test]
fn forward_mode_needs_upstreams() {
    let error = parse_str("[dns]\nmode = \"forward\"\n").unwrap_err();
    assert_eq!(error.line, 2);
    assert!(error.message.contains("[[dns.upstreams]]"), "{error}");
}

#[test]
fn encrypted_upstreams_need_a_tls_name() {
    let error = parse_str(
        "[dns]\nmode = \"forward\"\n\n[[dns.upstreams]]\naddress = \"192.0.2.1:853\"\nprotocol = \"tls\"\n",
    )
    .unwrap_err();
    // Located at the `[[dns.upstreams]]` entry.
    assert_eq!(error.line, 4, "{error}");
    assert!(error.message.contains("tls_name"), "{error}");
}

#[test]
fn local_records_are_checked_against_their_type() {
    let error = parse_str(
        "[[dns.local_records]]\nname = \"nas.home.arpa\"\ntype = \"A\"\nvalue = \"fd00::1\"\n",
    )
    .unwrap_err();
    assert_eq!((error.line, error.column), (4, 9), "{error}");
    assert!(error.message.contains("IPv4"), "{error}");

    let config = parse_str(
        "[[dns.local_records]]\nname = \"nas.home.arpa\"\ntype = \"AAAA\"\nvalue = \"fd00::1\"\nttl = 60\n",
    )
    .unwrap();
    assert_eq!(config.dns.local_records.len(), 1);
    assert_eq!(config.dns.local_records[0].ttl, 60);
    assert!(config.dns.local_records[0].name.is_fqdn());
}

#[test]
fn missing_root_hints_name_the_hints_file() {
    let error =
        parse_str("[dns.recursion]\nroot_hints = \"/nonexistent/root.hints\"\n").unwrap_err();
    assert_eq!(error.line, 2);
    assert!(error.message.contains("/nonexistent/root.hints"), "{error}");
}

#[test]
fn numbers_out_of_range_are_rejected() {
    let error = parse_str("[dns]\nmax_udp_payload = 100\n").unwrap_err();
    assert!(error.message.contains("512"), "{error}");
    let error = parse_str("[dns.cache]\nmin_ttl = 600\nmax_ttl = 60\n").unwrap_err();
    assert_eq!(error.line, 3);
    let error = parse_str("[dns]\nrate_limit_qps = 100\nrate_limit_burst = 10\n").unwrap_err();
    assert_eq!(error.line, 3);
}

#[test]
fn duplicate_forward_zones_are_rejected() {
    let text = "[[dns.forward_zones]]\nzone = \"home.arpa\"\nupstreams = [{ address = \"10.0.0.1:53\" }]\n\n[[dns.forward_zones]]\nzone = \"HOME.arpa.\"\nupstreams = [{ address = \"10.0.0.2:53\" }]\n";
    let error = parse_str(text).unwrap_err();
    assert_eq!(error.line, 5, "{error}");
    assert!(error.message.contains("twice"), "{error}");
}

#[test]
fn relative_paths_are_relative_to_the_file() {
    let dir = std::env::temp_dir().join(format!("router-config-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("root.hints"),
        ". 3600 IN NS a.root.lab.\na.root.lab. 3600 IN A 10.53.0.2\n",
    )
    .unwrap();
    let config = parse(
        "[dns.recursion]\nroot_hints = \"root.hints\"\n",
        &dir.join("router.toml"),
    )
    .unwrap();
    assert_eq!(
        config.dns.recursion.root_hints,
        Some(dir.join("root.hints"))
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

const LISTS: &str = r#"
[dns.filter]
lists_dir = "/var/lib/router/lists"

[[dns.filter.lists]]
name = "ads"
url = "https://lists.example.net/hosts.txt"
refresh = "12h"

[[dns.filter.lists]]
name = "local"
path = "lists/local.txt"
exact = true
"#;

#[test]
fn filter_lists_and_groups_are_checked_into_settings() {
    let text = format!(
        "{LISTS}
[[dns.filter.groups]]
name = \"default\"
lists = [\"ads\"]
block_mode = \"nxdomain\"
block_ttl = 30

[[dns.filter.groups]]
name = \"kids\"
clients = [\"192.168.20.31\", \"192.168.20.0/28\"]
lists = [\"ads\", \"local\"]
safe_search = true
block_mode = \"address\"
block_addresses = [\"192.168.10.1\", \"fd00:10::1\"]
"
    );
    let config = parse_str(&text).unwrap();
    let filter = &config.dns.filter;
    assert_eq!(filter.lists.len(), 2);
    assert!(filter.lists[1].exact);
    assert_eq!(filter.groups.len(), 2);
    assert_eq!(filter.groups[0].name, "default");
    assert_eq!(
        filter.groups[0].block_mode,
        dns::settings::BlockMode::NxDomain
    );
    assert_eq!(filter.groups[0].block_ttl, 30);
    let kids = &filter.groups[1];
    assert_eq!(kids.clients[0].to_string(), "192.168.20.31/32");
    assert!(kids.safe_search);
    assert!(matches!(
        &kids.block_mode,
        dns::settings::BlockMode::Address { v4, v6 } if v4.len() == 1 && v6.len() == 1
    ));
    let lists = &config.filter.lists;
    assert_eq!(lists[0].refresh, std::time::Duration::from_secs(12 * 3600));
    assert_eq!(
        lists[1].source.location,
        crate::lists::Location::File("/etc/router/lists/local.txt".into())
    );
}

#[test]
fn filter_mistakes_are_located_and_explained() {
    let cases: [(&str, &str, usize); 7] = [
        (
            "[[dns.filter.groups]]\nname = \"kids\"\nlists = [\"adz\"]\n",
            "did you mean `ads`",
            3,
        ),
        (
            "[[dns.filter.groups]]\nname = \"kids\"\nzones = [\"iot\"]\n",
            "[policies] is not configured",
            3,
        ),
        (
            "[[dns.filter.groups]]\nname = \"kids\"\nblock_addresses = [\"10.0.0.1\"]\n",
            "only apply with block_mode = \"address\"",
            3,
        ),
        (
            "[[dns.filter.groups]]\nname = \"kids\"\nblock_mode = \"address\"\n",
            "needs block_addresses",
            1,
        ),
        (
            "[[dns.filter.groups]]\nname = \"kids\"\nclients = [\"192.168.1\"]\n",
            "expected an address",
            3,
        ),
        (
            "[[dns.filter.lists]]\nname = \"ads\"\npath = \"x.txt\"\n",
            "declared twice",
            2,
        ),
        (
            "[[dns.filter.lists]]\nname = \"more\"\nurl = \"ftp://x.example/l\"\n",
            "http:// or https://",
            3,
        ),
    ];
    for (extra, expected, line) in cases {
        let text = format!("{LISTS}\n{extra}");
        let error = parse_str(&text).unwrap_err();
        assert!(error.message.contains(expected), "{extra}: {error}");
        let first = LISTS.lines().count() + 1;
        assert_eq!(error.line, first + line, "{extra}: {error}");
    }
    let error = parse_str("[dns.filter]\nrefresh = \"5s\"\n").unwrap_err();
    assert!(error.message.contains("shorter than"), "{error}");
    let error = parse_str("[dns.filter]\nrefresh = \"soon\"\n").unwrap_err();
    assert!(error.message.contains("expected a duration"), "{error}");
    let error = parse_str("[[dns.filter.lists]]\nname = \"a b\"\npath = \"x\"\n").unwrap_err();
    assert!(error.message.contains("letters, digits"), "{error}");
}

#[test]
fn pair_needs_its_addresses_and_a_private_token() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("pair.token");
    std::fs::write(&token, "0123456789abcdef0123456789abcdef\n").unwrap();
    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o600)).unwrap();
    let path = dir.path().join("router.toml");
    let parse = |pair: &str| super::parse(&format!("[pair]\n{pair}"), &path);

    let ok = parse(&format!(
        "role = \"primary\"\nlisten = \"192.168.10.2:8054\"\ntoken_file = \"{}\"\n",
        token.display()
    ))
    .unwrap();
    let pair = ok.pair.unwrap();
    assert_eq!(pair.role, crate::pair::settings::Role::Primary);
    assert!(pair.zone_addresses.is_empty());

    let standby = parse(&format!(
        "role = \"standby\"\npeer = \"192.168.10.2:8054\"\ntoken_file = \"{}\"\nzone_addresses = {{ admin = [\"192.168.10.3/24\", \"fd00:10::3/64\"] }}\n",
        token.display()
    ))
    .unwrap();
    assert_eq!(standby.pair.unwrap().zone_addresses["admin"].len(), 2);
    let error = parse(&format!(
        "role = \"standby\"\npeer = \"192.168.10.2:8054\"\ntoken_file = \"{}\"\nzone_addresses = {{ admin = [] }}\n",
        token.display()
    ))
    .unwrap_err();
    assert!(
        error.message.contains("zone `admin` has no address"),
        "{error}"
    );
    assert_eq!(error.line, 5, "{error}");
    assert!(
        !format!("{pair:?}").contains("0123456789"),
        "the token is never printed"
    );

    let error = parse(&format!(
        "role = \"primary\"\ntoken_file = \"{}\"\n",
        token.display()
    ))
    .unwrap_err();
    assert!(
        error.message.contains("the primary needs `listen`"),
        "{error}"
    );
    let error = parse(&format!(
        "role = \"standby\"\ntoken_file = \"{}\"\n",
        token.display()
    ))
    .unwrap_err();
    assert!(
        error.message.contains("the standby needs `peer`"),
        "{error}"
    );
    let error = parse(&format!(
        "role = \"leader\"\npeer = \"192.168.10.2:8054\"\ntoken_file = \"{}\"\n",
        token.display()
    ))
    .unwrap_err();
    assert_eq!(
        (
            error.line,
            error.message.contains("\"primary\" or \"standby\"")
        ),
        (2, true),
        "{error}"
    );

    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o644)).unwrap();
    let error = parse(&format!(
        "role = \"standby\"\npeer = \"192.168.10.2:8054\"\ntoken_file = \"{}\"\n",
        token.display()
    ))
    .unwrap_err();
    assert!(error.message.contains("expected 0600"), "{error}");
    assert_eq!(error.line, 4, "{error}");

    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::write(&token, "short\n").unwrap();
    let error = parse(&format!(
        "role = \"standby\"\npeer = \"192.168.10.2:8054\"\ntoken_file = \"{}\"\n",
        token.display()
    ))
    .unwrap_err();
    assert!(error.message.contains("at least 16 characters"), "{error}");
}

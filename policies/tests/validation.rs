//! Validation that teaches: each mistake an operator makes is reported
//! with its file, line and a fix, and a policy with errors is refused.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use policies::eval::{DecidedBy, Packet, Payload, decide};
use policies::model::{Action, Destination, Transport};
use policies::{Diagnostic, PolicyError, Protected, Severity, parse_files};

const ZONES: &str = r#"
[management]
zone = "admin"

[[zone]]
name = "admin"
vlan = { parent = "eth0", id = 10 }
ipv4 = ["192.168.10.1/24"]
input = "accept"

[[zone]]
name = "iot"
vlan = { parent = "eth0", id = 40 }
ipv4 = ["192.168.40.1/24"]
ipv6 = ["fd00:40::1/64"]
input = "drop"
forward = "drop"

[[zone]]
name = "wan"
interface = "eth1"
"#;

fn load(extra: &str) -> Result<policies::Loaded, PolicyError> {
    let text = format!("{ZONES}\n{extra}");
    parse_files(
        &[(Path::new("/etc/router/policies/home.toml"), &text)],
        &Protected::default(),
    )
}

fn errors(extra: &str) -> Vec<Diagnostic> {
    match load(extra) {
        Err(PolicyError::Invalid(found)) => found
            .into_iter()
            .filter(|d| d.severity == Severity::Error)
            .collect(),
        Err(other) => panic!("unexpected error: {other}"),
        Ok(_) => panic!("the policy was accepted:\n{extra}"),
    }
}

fn one_error(extra: &str, expected: &str) -> Diagnostic {
    let found = errors(extra);
    assert_eq!(found.len(), 1, "{found:#?}");
    let error = found.into_iter().next().unwrap();
    assert!(
        error.message.contains(expected),
        "expected \"{expected}\" in: {error}"
    );
    assert_eq!(error.path, Path::new("/etc/router/policies/home.toml"));
    error
}

/// The 1-based line of the first line of `extra` holding `needle`.
fn line_of(extra: &str, needle: &str) -> usize {
    let offset = ZONES.lines().count() + 1;
    offset + extra.lines().position(|l| l.contains(needle)).unwrap() + 1
}

#[test]
fn an_unknown_zone_names_the_line_and_the_closest_zone() {
    let extra = "[[rule]]\nname = \"cams\"\nfrom = \"admin\"\nto = \"iott\"\naction = \"accept\"\n";
    let error = one_error(extra, "unknown zone \"iott\"");
    assert_eq!(error.line, line_of(extra, "to = \"iott\""));
    assert_eq!(error.fix.as_deref(), Some("did you mean \"iot\"?"));
}

#[test]
fn overlapping_subnets_are_refused() {
    let extra =
        "[[zone]]\nname = \"guests\"\ninterface = \"eth2\"\nipv4 = [\"192.168.40.129/25\"]\n";
    let error = one_error(extra, "overlaps zone \"iot\" subnet 192.168.40.0/24");
    assert_eq!(error.line, line_of(extra, "name = \"guests\""));
}

#[test]
fn a_duplicate_vlan_id_on_the_same_trunk_is_refused() {
    let extra = "[[zone]]\nname = \"guests\"\nvlan = { parent = \"eth0\", id = 40 }\n";
    let error = one_error(extra, "interface eth0.40 already belongs to zone \"iot\"");
    assert_eq!(error.line, line_of(extra, "vlan ="));
}

#[test]
fn a_port_forward_outside_every_zone_is_refused() {
    let extra = "[[port_forward]]\nname = \"web\"\nfrom = \"wan\"\nprotocol = \"tcp\"\nport = 443\nto = \"10.9.9.9\"\n";
    let error = one_error(extra, "outside every zone");
    assert!(error.fix.unwrap().contains("192.168.40.0/24 (iot)"));
}

#[test]
fn a_shadowed_rule_is_a_warning_that_names_both_rules() {
    let extra = r#"
[[rule]]
name = "iot-anything-to-wan"
from = "iot"
to = "wan"
action = "accept"

[[rule]]
name = "iot-no-smtp"
from = "iot"
to = "wan"
service = "tcp/25"
action = "drop"
"#;
    let loaded = load(extra).unwrap();
    assert_eq!(loaded.warnings.len(), 1, "{:#?}", loaded.warnings);
    let warning = &loaded.warnings[0];
    assert_eq!(warning.severity, Severity::Warning);
    assert!(warning.message.contains("\"iot-no-smtp\" can never match"));
    assert!(warning.message.contains("iot-anything-to-wan"));
    assert_eq!(warning.line, line_of(extra, "name = \"iot-no-smtp\""));
    assert!(
        warning
            .fix
            .as_ref()
            .unwrap()
            .contains("move \"iot-no-smtp\" above")
    );
}

#[test]
fn cutting_the_management_zone_off_ssh_is_refused() {
    let extra = "[[rule]]\nname = \"lock\"\nfrom = \"admin\"\nto = \"router\"\nservice = \"tcp/1-1024\"\naction = \"drop\"\n";
    let error = one_error(
        extra,
        "cuts the management zone \"admin\" off from the router's SSH",
    );
    assert_eq!(error.line, line_of(extra, "name = \"lock\""));
    assert!(error.fix.unwrap().contains("service = \"tcp/22\""));
}

#[test]
fn a_lockout_through_the_zone_default_is_refused_but_one_allowed_host_is_enough() {
    let strict = ZONES.replace(
        "ipv4 = [\"192.168.10.1/24\"]\ninput = \"accept\"",
        "ipv4 = [\"192.168.10.1/24\"]\ninput = \"drop\"",
    );
    let path = Path::new("p.toml");
    let refused = parse_files(&[(path, &strict)], &Protected::default()).unwrap_err();
    assert!(
        refused
            .to_string()
            .contains("zone \"admin\" has input = \"drop\""),
        "{refused}"
    );
    let with_laptop = format!(
        "{strict}\n[[rule]]\nname = \"laptop-ssh\"\nfrom = \"admin\"\nto = \"router\"\nsource = \"192.168.10.5\"\nservice = \"ssh\"\naction = \"accept\"\n"
    );
    parse_files(&[(path, &with_laptop)], &Protected::default()).unwrap();
}

#[test]
fn protected_ports_beyond_ssh_are_checked_too() {
    let protected = Protected {
        tcp_ports: vec![(8080, "control API".into())],
    };
    let text = format!(
        "{ZONES}\n[[rule]]\nname = \"no-web\"\nfrom = \"admin\"\nto = \"router\"\nservice = \"tcp/8080\"\naction = \"reject\"\n"
    );
    let refused = parse_files(&[(Path::new("p.toml"), &text)], &protected).unwrap_err();
    assert!(
        refused.to_string().contains("control API (tcp/8080)"),
        "{refused}"
    );
}

#[test]
fn syntax_errors_point_at_the_value() {
    let extra = "[[rule]]\nname = \"x\"\nfrom = \"iot\"\nto = \"wan\"\nservice = \"tcp/99999\"\naction = \"accept\"\n";
    let error = one_error(extra, "expected 1 to 65535");
    assert_eq!(error.line, line_of(extra, "service ="));
    let extra = "[[rule]]\nname = \"x\"\nfrom = \"iot\"\nto = \"wan\"\naction = \"allow\"\n";
    let error = one_error(extra, "unknown variant `allow`");
    assert_eq!(error.line, line_of(extra, "action ="));
    let extra = "[[zone]]\nname = \"lab\"\ninterface = \"eth3\"\ncolour = \"blue\"\n";
    one_error(extra, "unknown field `colour`");
}

#[test]
fn rules_from_several_files_merge_in_name_order() {
    let first = Path::new("/p/10-zones.toml");
    let second = Path::new("/p/20-rules.toml");
    let rules = "[[rule]]\nname = \"iot-dns\"\nfrom = \"iot\"\nto = \"router\"\nservice = \"dns\"\naction = \"accept\"\n";
    let loaded = parse_files(&[(first, ZONES), (second, rules)], &Protected::default()).unwrap();
    assert_eq!(loaded.policy.rules[0].at.path.as_path(), second);
    let bad = "[[rule]]\nname = \"iot-dns\"\nfrom = \"iot\"\nto = \"routr\"\naction = \"accept\"\n";
    let error = parse_files(&[(first, ZONES), (second, bad)], &Protected::default()).unwrap_err();
    let found = error.diagnostics();
    assert_eq!(found[0].path, second);
    assert_eq!(found[0].line, 4);
}

#[test]
fn the_first_matching_rule_decides_then_the_pair_then_the_zone() {
    let extra = r#"
[[policy]]
from = "iot"
to = "wan"
action = "accept"

[[rule]]
name = "no-smtp"
from = "iot"
to = "wan"
service = "tcp/25"
action = "reject"
"#;
    let policy = load(extra).unwrap().policy;
    let wan = Destination::Zone("wan".into());
    let router = Destination::Router;
    let packet = |to, payload| Packet {
        from: "iot",
        to,
        payload,
        source: None,
        destination: None,
    };
    let smtp = decide(&policy, &packet(&wan, Payload::Port(Transport::Tcp, 25)));
    assert_eq!(smtp.action, Action::Reject);
    assert_eq!(smtp.by, DecidedBy::Rule("no-smtp".into()));
    let web = decide(&policy, &packet(&wan, Payload::Port(Transport::Tcp, 443)));
    assert_eq!(web.action, Action::Accept);
    assert!(matches!(web.by, DecidedBy::Pair { .. }));
    let to_router = decide(&policy, &packet(&router, Payload::Port(Transport::Tcp, 22)));
    assert_eq!(to_router.action, Action::Drop);
    assert_eq!(to_router.by, DecidedBy::ZoneDefault("iot".into()));
}

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests

use std::time::Duration;

use super::*;

fn parse_text(text: &str) -> Result<Config, ConfigError> {
    parse(text, std::path::Path::new("/etc/router/router.toml"))
}

const DNS: &str = "[dns]\nlisten = [\"192.168.10.2:53\", \"192.168.10.53:53\"]\n";

const INSTANCE: &str = "[[vrrp.instances]]\nname = \"dns\"\ninterface = \"eth0.10\"\nvrid = 53\npriority = 150\naddresses = [\"192.168.10.53/24\"]\n";

#[test]
fn an_instance_is_checked_with_defaults_and_its_address_floats_in_dns() {
    let text = format!(
        "{DNS}\n[vrrp.checks]\nfast_path_probe = \"Example.LAB.\"\nrecursion_probe = \"lab\"\n\n{INSTANCE}advert_interval = \"200ms\"\nnotify = \"notify.sh\"\nunicast_peers = [\"192.168.10.3\"]\n"
    );
    let config = parse_text(&text).unwrap();
    let vrrp = config.vrrp.unwrap();
    let instance = &vrrp.instances[0];
    assert_eq!(instance.vrid, 53);
    assert_eq!(instance.advert_interval, Duration::from_millis(200));
    assert!(instance.preempt);
    assert_eq!(
        instance.notify.as_deref(),
        Some(std::path::Path::new("/etc/router/notify.sh"))
    );
    assert_eq!(vrrp.checks.fast_path_probe.as_deref(), Some("example.lab"));
    assert_eq!(vrrp.checks.fall, 2);
    assert!(!vrrp.checks.wireguard && !vrrp.checks.bgp);
    // The fast path is a cache hit: its probe gives up much sooner than
    // the recursion probe's.
    assert_eq!(vrrp.checks.fast_path_timeout, Duration::from_millis(50));
    assert_eq!(vrrp.checks.probe_timeout, Duration::from_millis(500));
    let tuned = parse_text(&text.replace(
        "[vrrp.checks]\n",
        "[vrrp.checks]\nfast_path_timeout = \"20ms\"\n",
    ))
    .unwrap();
    assert_eq!(
        tuned.vrrp.unwrap().checks.fast_path_timeout,
        Duration::from_millis(20)
    );
    // The DNS service binds the virtual address before it has it.
    assert_eq!(
        config.dns.floating,
        vec!["192.168.10.53".parse::<std::net::IpAddr>().unwrap()]
    );
}

#[test]
fn vrrp_mistakes_name_the_line_and_the_fix() {
    let cases = [
        (
            INSTANCE.replace("vrid = 53", "vrid = 0"),
            "vrid must be 1 to 255",
        ),
        (
            INSTANCE.replace("priority = 150", "priority = 0"),
            "priority must be 1 to 254",
        ),
        (
            format!("{INSTANCE}advert_interval = \"5ms\"\n"),
            "multiple of 10ms",
        ),
        (format!("{INSTANCE}advert_interval = \"41s\"\n"), "40950ms"),
        (
            INSTANCE.replace(
                "[\"192.168.10.53/24\"]",
                "[\"192.168.10.53/24\", \"fd00::53/64\"]",
            ),
            "one instance each",
        ),
        (
            INSTANCE.replace("[\"192.168.10.53/24\"]", "[]"),
            "at least one virtual address",
        ),
        (
            INSTANCE.replace("eth0.10", "eth 0"),
            "not an interface name",
        ),
        (
            format!("{INSTANCE}check_weight = 200\n"),
            "below the priority",
        ),
        (
            format!(
                "{INSTANCE}\n{}",
                INSTANCE
                    .replace("\"dns\"", "\"dns2\"")
                    .replace("192.168.10.53", "192.168.10.54")
            ),
            "vrid 53 is already used on eth0.10",
        ),
        (
            format!("{INSTANCE}\n{}", INSTANCE.replace("vrid = 53", "vrid = 54")),
            "used twice",
        ),
        (
            format!("{INSTANCE}unicast_peers = [\"fd00::3\"]\n"),
            "unicast peer",
        ),
        (
            format!("[vrrp.checks]\nfall = 0\n\n{INSTANCE}"),
            "checks.fall",
        ),
        (
            format!("[vrrp.checks]\nrecursion_probe = \"not a name\"\n\n{INSTANCE}"),
            "not a domain name",
        ),
        (format!("{INSTANCE}colour = \"red\"\n"), "unknown field"),
        (
            format!(
                "[[vrrp.checks.scripts]]\nname = \"uplink\"\ncommand = \"/nonexistent/check\"\n\n{INSTANCE}"
            ),
            "is not a file",
        ),
        (
            format!(
                "[[vrrp.checks.scripts]]\nname = \"uplink\"\ncommand = \"/bin/sh\"\nfall = 0\n\n{INSTANCE}"
            ),
            "script uplink: fall must be 1 to 100",
        ),
    ];
    for (text, expected) in cases {
        let error = parse_text(&text).unwrap_err();
        assert!(error.line > 0, "{expected}: {error}");
        assert!(error.message.contains(expected), "{expected}: {error}");
    }
}

#[test]
fn track_scripts_and_appliance_checks_are_read() {
    let text = format!(
        "[vrrp.checks]\nwireguard = true\nbgp = true\n\n[[vrrp.checks.scripts]]\nname = \"uplink\"\ncommand = \"/bin/sh\"\nargs = [\"-c\", \"ping -c1 -W1 192.168.10.1\"]\ninterval = \"500ms\"\nfall = 3\n\n{INSTANCE}check_weight = 60\n"
    );
    let vrrp = parse_text(&text).unwrap().vrrp.unwrap();
    assert!(vrrp.checks.wireguard && vrrp.checks.bgp);
    let script = &vrrp.checks.scripts[0];
    assert_eq!(script.name, "uplink");
    assert_eq!(script.args.len(), 2);
    assert_eq!(script.interval, Duration::from_millis(500));
    assert_eq!(script.timeout, Duration::from_secs(2));
    assert_eq!((script.fall, script.rise), (3, 2));
    assert_eq!(vrrp.instances[0].check_weight, Some(60));
}

#[test]
fn accept_mode_off_is_refused_on_an_address_dns_serves() {
    let text = format!("{DNS}\n{INSTANCE}accept = false\n");
    let error = parse_text(&text).unwrap_err();
    assert!(
        error
            .message
            .contains("accept = false drops traffic to 192.168.10.53"),
        "{error}"
    );
    let gateway = text.replace(", \"192.168.10.53:53\"", "");
    let config = parse_text(&gateway).unwrap();
    assert!(!config.vrrp.unwrap().instances[0].accept);
}

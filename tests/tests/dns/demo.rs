//! `routerd demo`, the README's first step, in a namespace of its own: it
//! serves 127.53.0.0/16 on that namespace's loopback only.

use std::net::{IpAddr, Ipv4Addr};
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::time::Duration;

use e2e::json::Value;
use e2e::routerd::routerctl;
use e2e::{Lab, Query, wait_until};

const RESOLVER: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 53, 53, 53));

#[test]
fn demo_answers_and_reports_status() {
    if !e2e::require(&["dig", "routerd", "routerctl", "timeout"]) {
        return;
    }
    let lab = Lab::new().unwrap();
    // Any lab address: the demo only uses the namespace's loopback.
    let host = lab.add_host("demo", Ipv4Addr::new(10, 53, 0, 60)).unwrap();
    let routerd = e2e::routerd::binary().unwrap();
    let mut demo = host
        .spawn_with_env(
            "routerd-demo",
            &routerd.to_string_lossy(),
            &["demo"],
            &[("NO_COLOR", "1")],
        )
        .unwrap();

    // It prints where its control socket is.
    let socket = wait_until(Duration::from_secs(10), "the demo's instructions", || {
        demo.log().lines().find_map(|line| {
            let rest = line.trim().strip_prefix("routerctl --socket ")?;
            Some(PathBuf::from(rest.strip_suffix(" status")?))
        })
    });
    let socket = socket.unwrap_or_else(|e| {
        panic!(
            "{e}; demo running: {}; log:\n{}",
            demo.is_running(),
            demo.log()
        )
    });
    let log = demo.log();
    for hint in ["dig @127.53.53.53 www.home.demo", "nope.home.demo"] {
        assert!(
            log.contains(hint),
            "the demo should suggest `{hint}`:\n{log}"
        );
    }

    let ask = |name: &str, rtype: &str| {
        host.dig(RESOLVER, &Query::new(name, rtype).timeout(5))
            .unwrap()
    };
    let ready = wait_until(Duration::from_secs(10), "the demo resolver", || {
        host.dig(RESOLVER, &Query::new("www.home.demo", "A").timeout(2))
            .ok()
            .filter(|a| a.status == "NOERROR")
    });
    let www = ready.unwrap_or_else(|e| panic!("{e}; log:\n{}", demo.log()));
    assert_eq!(www.answers("A"), ["192.0.2.80"], "{}", www.raw);
    assert!(www.ra(), "{}", www.raw);
    let aaaa = ask("www.home.demo", "AAAA");
    assert_eq!(aaaa.answers("AAAA"), ["2001:db8::80"], "{}", aaaa.raw);
    let media = ask("media.home.demo", "A");
    assert_eq!(media.status, "NOERROR", "{}", media.raw);
    assert_eq!(media.names("CNAME"), ["nas.home.demo."], "{}", media.raw);
    assert_eq!(media.answers("A"), ["192.0.2.10"], "{}", media.raw);
    let nope = ask("nope.home.demo", "A");
    assert_eq!(nope.status, "NXDOMAIN", "{}", nope.raw);
    assert!(nope.answer.is_empty(), "{}", nope.raw);
    let txt = ask("home.demo", "TXT");
    assert_eq!(
        txt.answers("TXT"),
        ["\"hello from the routerd demo\""],
        "{}",
        txt.raw
    );

    // routerctl against the socket the demo printed.
    let mode = std::fs::metadata(&socket).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "socket mode {mode:o}");
    let out = routerctl(&host, &socket, &["status"]).unwrap();
    assert!(out.success, "{out}");
    assert!(out.stdout.contains("DNS"), "{out}");
    let mode_row = out
        .stdout
        .lines()
        .find(|l| l.trim_start().starts_with("mode"));
    assert!(mode_row.is_some_and(|l| l.contains("recursive")), "{out}");
    assert!(out.stdout.contains("127.53.53.53:53"), "{out}");
    let out = routerctl(&host, &socket, &["status", "--json"]).unwrap();
    assert!(out.success, "{out}");
    let status = e2e::json::parse(&out.stdout).unwrap();
    assert_eq!(
        status.get("dns.resolver.mode").and_then(Value::as_str),
        Some("recursive")
    );
    assert!(
        status.get("dns.totals.udp_queries").and_then(Value::as_u64) >= Some(5),
        "{status:?}"
    );
    assert!(
        status.get("dns.cache_entries").and_then(Value::as_u64) > Some(0),
        "{status:?}"
    );

    // Ctrl-C (or SIGTERM) stops it and cleans up after itself.
    demo.check_running().unwrap();
    let pid = demo.pid().to_string();
    let stop = host.exec("kill", &["-s", "INT", &pid]).unwrap();
    assert!(stop.status.success());
    let exited = wait_until(Duration::from_secs(5), "the demo to exit", || {
        (!demo.is_running()).then_some(())
    });
    assert!(exited.is_ok(), "{exited:?}; log:\n{}", demo.log_tail(10));
    let dir = socket.parent().unwrap();
    assert!(!dir.exists(), "the demo left {} behind", dir.display());
}

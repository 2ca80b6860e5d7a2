//! The operator's view of a running routerd: `routerctl status` (tables
//! and JSON), the control socket, and the Prometheus endpoint.

use std::net::{IpAddr, SocketAddr};
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::time::Duration;

use e2e::dns_hierarchy::data;
use e2e::json::Value;
use e2e::routerd::routerctl;
use e2e::{DigResult, Lab, Query, Routerd, RouterdConfig, Server, addr, wait_until};

use crate::common::{CTL_TOOLS, Setup, setup};

fn q(name: &str, rtype: &str) -> Query {
    Query::new(name, rtype).timeout(5)
}

fn ask(s: &Setup, r: &Routerd, query: Query) -> DigResult {
    s.client.dig(r.addr(), &query).unwrap()
}

fn num(status: &Value, path: &str) -> u64 {
    status
        .get(path)
        .and_then(Value::as_u64)
        .unwrap_or_else(|| panic!("no integer at {path} in status: {status:?}"))
}

/// The row of a `routerctl status` table whose first cell is `key`.
fn row<'a>(text: &'a str, key: &str) -> &'a str {
    text.lines()
        .find(|l| l.trim_start().starts_with(key))
        .unwrap_or_else(|| panic!("no `{key}` row in status:\n{text}"))
}

#[test]
fn routerctl_status_matches_reality_after_queries() {
    if !e2e::require(CTL_TOOLS) {
        return;
    }
    let s = setup();
    let mut r = RouterdConfig::recursive(&s.dns).start(&s.router).unwrap();

    let before = r.status_json().unwrap();
    let udp0 = num(&before, "dns.totals.udp_queries");
    let tcp0 = num(&before, "dns.totals.tcp_queries");
    let hits0 = num(&before, "dns.totals.cache_hits");

    // One miss, then hits; one query over TCP.
    for _ in 0..4 {
        let a = ask(&s, &r, q("www.plain.lab", "A").udp());
        assert_eq!(a.answers("A"), [data::PLAIN_A], "{}", a.raw);
    }
    let a = ask(&s, &r, q("www.plain.lab", "AAAA").tcp());
    assert_eq!(a.answers("AAAA"), [data::PLAIN_AAAA], "{}", a.raw);

    let status = r.status_json().unwrap();
    assert_eq!(
        status.get("dns.resolver.mode").and_then(Value::as_str),
        Some("recursive"),
        "{status:?}"
    );
    assert_eq!(
        status.get("dns.resolver.dnssec").and_then(Value::as_bool),
        Some(true),
        "{status:?}"
    );
    let listen: Vec<&str> = status
        .get("dns.listen")
        .and_then(Value::as_array)
        .unwrap_or_default()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(listen, [format!("{}:53", addr::ROUTER)], "{status:?}");
    let udp = num(&status, "dns.totals.udp_queries") - udp0;
    let tcp = num(&status, "dns.totals.tcp_queries") - tcp0;
    assert_eq!(udp, 4, "udp_queries counted {udp} of 4: {status:?}");
    assert_eq!(tcp, 1, "tcp_queries counted {tcp} of 1: {status:?}");
    let hits = num(&status, "dns.totals.cache_hits") - hits0;
    assert!(
        hits >= 3,
        "3 repeated queries, {hits} cache hits: {status:?}"
    );
    assert!(num(&status, "dns.cache_entries") > 0, "{status:?}");
    let ratio = status.get("dns.hit_ratio").and_then(Value::as_f64);
    assert!(ratio.is_some_and(|r| r > 0.0 && r <= 1.0), "{status:?}");
    assert!(
        status.get("last_reload_error").is_some_and(Value::is_null),
        "{status:?}"
    );
    assert_eq!(num(&status, "reloads"), 0);
    let config = status.get("config").and_then(Value::as_str);
    assert_eq!(config, Some(&*r.config.to_string_lossy()), "{status:?}");

    // The queries-per-second figure is sampled every second.
    let qps = wait_until(Duration::from_secs(4), "qps > 0 in status", || {
        let status = r.status_json().ok()?;
        status
            .get("dns.qps")
            .and_then(Value::as_f64)
            .filter(|q| *q > 0.0)
    });
    assert!(qps.is_ok(), "{qps:?}");

    // The same figures as tables.
    let out = r.routerctl(&["status"]).unwrap();
    assert!(out.success, "{out}");
    let text = &out.stdout;
    assert!(text.contains("DNS"), "{text}");
    assert!(
        row(text, "mode").contains("recursive (DNSSEC validating)"),
        "{text}"
    );
    let entries = row(text, "cache entries");
    let n: u64 = entries
        .split_whitespace()
        .last()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("cache entries row: {entries:?}"));
    assert!(n > 0, "{text}");
    assert!(row(text, "hit ratio").contains('%'), "{text}");
    row(text, "queries/s");
    assert!(
        !text.contains("UPSTREAM"),
        "no upstreams when recursing: {text}"
    );
    r.check_running().unwrap();
}

#[test]
fn routerctl_shows_upstream_going_down() {
    if !e2e::require(CTL_TOOLS) {
        return;
    }
    let mut s = setup();
    let fwd1 = s.dns.addr(Server::Fwd1);
    let fwd2 = s.dns.addr(Server::Fwd2);
    let mut r = RouterdConfig::forward(&s.dns, &[fwd1, fwd2])
        .start(&s.router)
        .unwrap();
    let label1 = format!("udp://{fwd1}:53");
    let label2 = format!("udp://{fwd2}:53");

    let who = ask(&s, &r, q("first.fwd.lab", "TXT"));
    assert_eq!(who.answers("TXT"), ["\"fwd1\""], "{}", who.raw);
    let status = r.status_json().unwrap();
    assert_eq!(
        status.get("dns.resolver.mode").and_then(Value::as_str),
        Some("forward")
    );
    let up = |status: &Value, i: usize, field: &str| -> Value {
        status
            .get(&format!("dns.resolver.upstreams.{i}.{field}"))
            .cloned()
            .unwrap_or_else(|| panic!("no upstream {i} {field}: {status:?}"))
    };
    assert_eq!(up(&status, 0, "upstream").as_str(), Some(&*label1));
    assert_eq!(up(&status, 1, "upstream").as_str(), Some(&*label2));
    assert_eq!(
        up(&status, 0, "healthy").as_bool(),
        Some(true),
        "{status:?}"
    );
    assert!(up(&status, 0, "queries").as_u64() >= Some(1), "{status:?}");
    let text = r.routerctl(&["status"]).unwrap();
    assert!(text.success, "{text}");
    assert!(row(&text.stdout, "mode").contains("forward"), "{text}");
    assert!(row(&text.stdout, &label1).contains(" up "), "{text}");

    // fwd1 dies; the next query fails over to fwd2.
    s.dns.stop(Server::Fwd1);
    let who = ask(&s, &r, q("second.fwd.lab", "TXT").tries(2));
    assert_eq!(who.answers("TXT"), ["\"fwd2\""], "{}", who.raw);

    let status = r.status_json().unwrap();
    assert_eq!(
        up(&status, 0, "healthy").as_bool(),
        Some(false),
        "a failed upstream must be shown unhealthy: {status:?}"
    );
    assert!(up(&status, 0, "failures").as_u64() >= Some(1), "{status:?}");
    assert!(
        up(&status, 0, "last_error").as_str().is_some(),
        "{status:?}"
    );
    assert_eq!(
        up(&status, 1, "healthy").as_bool(),
        Some(true),
        "{status:?}"
    );
    assert!(up(&status, 1, "queries").as_u64() >= Some(1), "{status:?}");

    let text = r.routerctl(&["status"]).unwrap();
    assert!(text.success, "{text}");
    assert!(row(&text.stdout, &label1).contains("DOWN"), "{text}");
    assert!(row(&text.stdout, &label2).contains(" up "), "{text}");
    r.check_running().unwrap();
}

#[test]
fn routerctl_without_daemon_says_not_running() {
    if !e2e::require(&["routerctl", "timeout"]) {
        return;
    }
    let lab = Lab::new().unwrap();
    let host = lab.add_host("admin", addr::CLIENT).unwrap();
    let socket = lab.dir().join("nothing-here.sock");
    for args in [&["status"][..], &["status", "--json"], &["reload"]] {
        let out = routerctl(&host, &socket, args).unwrap();
        assert!(!out.success, "{args:?}: {out}");
        assert_eq!(out.code, Some(1), "{args:?}: {out}");
        assert!(
            out.stderr.contains("routerd is not running"),
            "{args:?}: {out}"
        );
        assert!(out.stdout.trim().is_empty(), "{args:?}: {out}");
    }
}

#[test]
fn control_socket_is_private_and_removed_on_exit() {
    if !e2e::require(CTL_TOOLS) {
        return;
    }
    let s = setup();
    let mut r = RouterdConfig::recursive(&s.dns).start(&s.router).unwrap();
    let meta = std::fs::metadata(&r.control_socket).unwrap();
    assert!(meta.file_type().is_socket(), "{meta:?}");
    assert_eq!(
        meta.permissions().mode() & 0o7777,
        0o600,
        "control socket mode {:o}",
        meta.permissions().mode()
    );
    assert_eq!(meta.uid(), 0, "owned by root");

    // SIGTERM: a clean stop removes the socket, and routerctl says so.
    r.signal("TERM").unwrap();
    let stopped = wait_until(Duration::from_secs(5), "routerd to exit", || {
        (!r.daemon.is_running()).then_some(())
    });
    assert!(stopped.is_ok(), "{stopped:?}");
    assert!(
        !r.control_socket.exists(),
        "socket {} left behind",
        r.control_socket.display()
    );
    let out = r.routerctl(&["status"]).unwrap();
    assert!(!out.success, "{out}");
    assert!(out.stderr.contains("routerd is not running"), "{out}");
}

/// The value of one series (`name{labels}` exactly as exposed) in a
/// Prometheus text page.
fn metric(page: &str, series: &str) -> Option<f64> {
    page.lines().find_map(|line| {
        let value = line.strip_prefix(series)?.strip_prefix(' ')?;
        value.split_whitespace().next()?.parse().ok()
    })
}

fn scrape(s: &Setup, at: SocketAddr) -> String {
    let probe = env!("CARGO_BIN_EXE_e2e-probe");
    let out = s
        .client
        .exec(probe, &["http-get", &at.to_string(), "/metrics"])
        .unwrap();
    let page = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "GET /metrics failed: {page}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(page.starts_with("HTTP/1.1 200"), "{page}");
    page
}

#[test]
fn metrics_endpoint_counts_queries() {
    if !e2e::require(CTL_TOOLS) {
        return;
    }
    let s = setup();
    let at = SocketAddr::new(IpAddr::V4(addr::ROUTER), 9153);
    let mut r = RouterdConfig::recursive(&s.dns)
        .with(|c| c.metrics_listen = Some(at))
        .start(&s.router)
        .unwrap();
    const UDP: &str = "router_dns_queries_total{transport=\"udp\"}";
    const HITS: &str = "router_dns_cache_hits_total";
    const INF: &str = "router_dns_answer_latency_seconds_bucket{le=\"+Inf\"}";

    // The figures are refreshed every second: wait for the first ones.
    let first = wait_until(Duration::from_secs(4), "first metrics", || {
        let page = scrape(&s, at);
        metric(&page, UDP).map(|udp| (udp, page))
    });
    let (udp0, page) = first.unwrap();
    let hits0 = metric(&page, HITS).unwrap_or_else(|| panic!("no {HITS}:\n{page}"));

    for _ in 0..5 {
        let a = ask(&s, &r, q("www.plain.lab", "A").udp());
        assert_eq!(a.answers("A"), [data::PLAIN_A], "{}", a.raw);
    }
    let grown = wait_until(Duration::from_secs(4), "udp queries to grow by 5", || {
        let page = scrape(&s, at);
        (metric(&page, UDP)? >= udp0 + 5.0).then_some(page)
    });
    let page = grown.unwrap_or_else(|e| panic!("{e}:\n{}", scrape(&s, at)));
    let hits = metric(&page, HITS).unwrap() - hits0;
    assert!(
        hits >= 4.0,
        "4 repeated queries, {hits} cache hits:\n{page}"
    );
    assert!(
        page.contains("# TYPE router_dns_answer_latency_seconds histogram"),
        "{page}"
    );
    // Prometheus buckets are cumulative: non-decreasing, none above
    // _count, and +Inf equal to it (histogram_quantile relies on this).
    let buckets: Vec<f64> = page
        .lines()
        .filter_map(|l| l.strip_prefix("router_dns_answer_latency_seconds_bucket{le="))
        .filter_map(|l| l.split_whitespace().last()?.parse().ok())
        .collect();
    assert!(buckets.len() >= 3, "latency histogram buckets:\n{page}");
    let count = metric(&page, "router_dns_answer_latency_seconds_count").unwrap();
    assert!(count >= 5.0, "{page}");
    assert!(
        buckets.windows(2).all(|w| w[0] <= w[1]),
        "buckets must be cumulative:\n{page}"
    );
    let inf = metric(&page, INF).unwrap_or_else(|| panic!("no {INF}:\n{page}"));
    assert_eq!(
        inf, count,
        "the +Inf bucket must equal _count (every answer is in it once):\n{page}"
    );
    assert!(
        buckets.iter().all(|b| *b <= count),
        "no bucket may hold more answers than _count:\n{page}"
    );
    assert!(
        metric(&page, "router_dns_cache_entries").unwrap() > 0.0,
        "{page}"
    );
    r.check_running().unwrap();
}

/// While the first upstream is down, clients are not kept waiting on it:
/// it is skipped, and a background probe, not a client query, finds out
/// when it is back; then it is preferred again.
#[test]
fn a_down_upstream_is_skipped_and_its_recovery_noticed() {
    if !e2e::require(CTL_TOOLS) {
        return;
    }
    let mut s = setup();
    let fwd1 = s.dns.addr(Server::Fwd1);
    let fwd2 = s.dns.addr(Server::Fwd2);
    let r = RouterdConfig::forward(&s.dns, &[fwd1, fwd2])
        .start(&s.router)
        .unwrap();
    let healthy = |r: &Routerd| {
        r.status_json()
            .unwrap()
            .get("dns.resolver.upstreams.0.healthy")
            .and_then(Value::as_bool)
    };

    s.dns.stop(Server::Fwd1);
    let first = ask(&s, &r, q("down-0.fwd.lab", "TXT").tries(2));
    assert_eq!(first.answers("TXT"), ["\"fwd2\""], "{}", first.raw);
    assert_eq!(healthy(&r), Some(false));
    // Distinct names, so each one is a miss that goes upstream, over more
    // than two probe intervals: none may wait for the dead upstream.
    for i in 1..=12 {
        let started = std::time::Instant::now();
        let a = ask(&s, &r, q(&format!("down-{i}.fwd.lab"), "TXT"));
        assert_eq!(a.answers("TXT"), ["\"fwd2\""], "{}", a.raw);
        assert!(
            started.elapsed() < Duration::from_millis(800),
            "query {i} waited {:?} for the dead upstream",
            started.elapsed()
        );
        std::thread::sleep(Duration::from_millis(400));
    }

    s.dns.start_server(Server::Fwd1).unwrap();
    wait_until(
        Duration::from_secs(8),
        "the probe to find fwd1 back",
        || (healthy(&r) == Some(true)).then_some(()),
    )
    .unwrap();
    let back = ask(&s, &r, q("back.fwd.lab", "TXT"));
    assert_eq!(back.answers("TXT"), ["\"fwd1\""], "{}", back.raw);
}

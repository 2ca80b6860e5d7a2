//! Forwarding over DNS-over-TLS and DNS-over-HTTPS to an Unbound in the
//! lab (recursing from the lab root), with a private CA made at test time,
//! and proof that certificates are really checked.

use e2e::dns_hierarchy::data;
use e2e::json::Value;
use e2e::routerd::Upstream;
use e2e::tls::TlsFiles;
use e2e::unbound::{Unbound, unbound_has_doh};
use e2e::{DigResult, Host, Query, Routerd, RouterdConfig, addr};

use crate::common::{CTL_TOOLS, Setup, setup};

/// The name on the upstream's certificate.
const TLS_NAME: &str = "resolver.lab";

/// Tools: the routerd lab, routerctl, unbound, openssl and kdig.
fn tools() -> Vec<&'static str> {
    [CTL_TOOLS, &["unbound", "openssl", "kdig"]].concat()
}

/// Field order is drop order: unbound before the lab.
struct Encrypted {
    unbound: Unbound,
    tls: TlsFiles,
    host: Host,
    s: Setup,
}

fn encrypted_setup() -> Encrypted {
    let s = setup();
    let host = s.lab.add_host("upstream", addr::REFERENCE).unwrap();
    let tls = TlsFiles::generate(&s.lab.dir().join("tls"), TLS_NAME).unwrap();
    let unbound = Unbound::start_encrypted(&host, &s.dns, &tls).unwrap();
    Encrypted {
        unbound,
        tls,
        host,
        s,
    }
}

/// DoH needs unbound with libnghttp2 (Debian's has it). Without it the
/// DoH tests skip, unless REQUIRE_E2E=1.
fn require_doh() -> bool {
    if unbound_has_doh() {
        return true;
    }
    assert!(
        std::env::var("REQUIRE_E2E").as_deref() != Ok("1"),
        "REQUIRE_E2E=1 but unbound is built without libnghttp2 (no DoH)"
    );
    eprintln!("e2e: skipping: unbound has no DoH support (libnghttp2)");
    false
}

fn forward_to(e: &Encrypted, upstream: Upstream) -> Routerd {
    RouterdConfig::forward(&e.s.dns, &[])
        .with(|c| c.upstreams = vec![upstream])
        .start(&e.s.router)
        .unwrap()
}

fn ask(e: &Encrypted, r: &Routerd, name: &str) -> DigResult {
    e.s.client
        .dig(r.addr(), &Query::new(name, "A").timeout(5))
        .unwrap()
}

fn upstream_status(r: &Routerd) -> Value {
    let status = r.status_json().unwrap();
    status
        .get("dns.resolver.upstreams.0")
        .cloned()
        .unwrap_or_else(|| panic!("no upstream in {status:?}"))
}

/// kdig against the lab's Unbound itself: proves the lab's DoT and DoH
/// server and certificates are right, whatever routerd does.
#[test]
fn lab_unbound_serves_dot_and_doh() {
    if !e2e::require(&tools()) {
        return;
    }
    let e = encrypted_setup();
    let server = format!("@{}", e.host.v4);
    let ca = format!("+tls-ca={}", e.tls.ca_cert.display());
    let hostname = format!("+tls-hostname={TLS_NAME}");
    let mut modes = vec!["+tls"];
    if unbound_has_doh() {
        modes.push("+https");
    }
    for mode in modes {
        let out =
            e.s.client
                .exec(
                    "kdig",
                    &[
                        &server,
                        mode,
                        &ca,
                        &hostname,
                        "+timeout=3",
                        "www.plain.lab",
                        "A",
                    ],
                )
                .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains("NOERROR") && text.contains(data::PLAIN_A),
            "kdig {mode}: {text}{}\nunbound log:\n{}",
            String::from_utf8_lossy(&out.stderr),
            e.unbound.daemon.log_tail(20)
        );
    }
}

#[test]
fn forward_over_tls() {
    if !e2e::require(&tools()) {
        return;
    }
    let e = encrypted_setup();
    let upstream = Upstream::tls(e.host.v4.into(), TLS_NAME, Some(&e.tls.ca_cert));
    let mut r = forward_to(&e, upstream);
    for name in ["www.plain.lab", "c1.plain.lab", "www.plain.lab"] {
        let a = ask(&e, &r, name);
        assert_eq!(a.status, "NOERROR", "{}", a.raw);
        assert!(!a.answers("A").is_empty(), "{}", a.raw);
    }
    let nx = ask(&e, &r, "nope.plain.lab");
    assert_eq!(nx.status, "NXDOMAIN", "{}", nx.raw);
    let up = assert_healthy(&r, &format!("tls://{}:853", addr::REFERENCE));
    assert!(
        up.get("queries").and_then(Value::as_u64) >= Some(3),
        "{up:?}"
    );
    r.check_running().unwrap();
}

/// The single upstream is `label`, healthy, without failures.
fn assert_healthy(r: &Routerd, label: &str) -> Value {
    let up = upstream_status(r);
    assert_eq!(up.get("upstream").and_then(Value::as_str), Some(label));
    assert_eq!(
        up.get("healthy").and_then(Value::as_bool),
        Some(true),
        "{up:?}"
    );
    assert_eq!(
        up.get("failures").and_then(Value::as_u64),
        Some(0),
        "{up:?}"
    );
    up
}

#[test]
fn forward_over_https() {
    if !e2e::require(&tools()) || !require_doh() {
        return;
    }
    let e = encrypted_setup();
    let upstream = Upstream::https(e.host.v4.into(), TLS_NAME, Some(&e.tls.ca_cert));
    let mut r = forward_to(&e, upstream);
    for name in ["www.plain.lab", "c1.plain.lab", "v4only.plain.lab"] {
        let a = ask(&e, &r, name);
        assert_eq!(a.status, "NOERROR", "{}", a.raw);
        assert!(!a.answers("A").is_empty(), "{}", a.raw);
    }
    let a = ask(&e, &r, "www.plain.lab");
    assert_eq!(a.answers("A"), [data::PLAIN_A], "{}", a.raw);
    assert_healthy(&r, &format!("https://{}:443", addr::REFERENCE));
    r.check_running().unwrap();
}

/// A certificate for another name, or from a CA routerd does not trust,
/// must not be accepted: the upstream is reported down, queries fail.
#[test]
fn upstream_certificates_are_verified() {
    if !e2e::require(&tools()) {
        return;
    }
    let e = encrypted_setup();
    let ip = e.host.v4.into();
    let ca = Some(e.tls.ca_cert.as_path());
    let mut cases = vec![
        ("DoT, wrong name", Upstream::tls(ip, "other.lab", ca)),
        ("DoT, untrusted CA", Upstream::tls(ip, TLS_NAME, None)),
    ];
    if unbound_has_doh() {
        cases.push(("DoH, wrong name", Upstream::https(ip, "other.lab", ca)));
        cases.push(("DoH, untrusted CA", Upstream::https(ip, TLS_NAME, None)));
    }
    for (case, upstream) in cases {
        let mut r = forward_to(&e, upstream);
        let a = ask(&e, &r, "www.plain.lab");
        assert_eq!(
            a.status, "SERVFAIL",
            "{case}: an unverifiable upstream must not answer: {}",
            a.raw
        );
        assert!(a.answers("A").is_empty(), "{case}: {}", a.raw);
        let up = upstream_status(&r);
        assert_eq!(
            up.get("healthy").and_then(Value::as_bool),
            Some(false),
            "{case}: {up:?}"
        );
        let error = up.get("last_error").and_then(Value::as_str).unwrap_or("");
        assert!(
            error.to_ascii_lowercase().contains("certificate"),
            "{case}: last_error should say what is wrong: {up:?}"
        );
        r.check_running().unwrap();
        drop(r);
    }
}

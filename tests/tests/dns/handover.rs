//! What a reload must not cost the house: answers it already had (the
//! cache carries over when the new configuration answers the same way),
//! and queries that arrive while it happens (the sockets carry over).

use std::time::Duration;

use e2e::dns_hierarchy::data;
use e2e::{Query, Routerd, RouterdConfig};

use e2e::dnsperf::{expect_nothing_lost, steady_load};

use crate::common::{CTL_TOOLS, Setup, setup};

fn a(s: &Setup, r: &Routerd, name: &str) -> (String, Vec<String>) {
    // Long enough for routerd to give up on unreachable servers (10 s).
    match s.client.dig(r.addr(), &Query::new(name, "A").timeout(12)) {
        Ok(d) => (
            d.status.clone(),
            d.answers("A").iter().map(|s| s.to_string()).collect(),
        ),
        Err(error) => (format!("no answer: {error}"), Vec::new()),
    }
}

fn reload(r: &Routerd, config: &RouterdConfig) {
    r.rewrite_config(config).unwrap();
    let out = r.routerctl(&["reload"]).unwrap();
    assert!(out.success, "{out}");
}

#[test]
fn reload_keeps_the_cache_unless_answers_change() {
    if !e2e::require(CTL_TOOLS) {
        return;
    }
    let mut s = setup();
    let config = RouterdConfig::recursive(&s.dns).with(|c| c.serve_stale = false);
    let r = config.start(&s.router).unwrap();
    assert_eq!(a(&s, &r, "www.plain.lab").1, [data::PLAIN_A]);

    // With every authoritative server down, only the cache can answer.
    s.dns.stop_all();
    let tuned = config.clone().with(|c| {
        c.allow.push("192.0.2.0/24".into());
        c.rate_limit_qps = 1000;
        c.rate_limit_burst = 2000;
    });
    reload(&r, &tuned);
    assert_eq!(
        a(&s, &r, "www.plain.lab").1,
        [data::PLAIN_A],
        "a reload that changes no answer keeps the cache"
    );

    // New local data may shadow cached answers: the cache starts afresh.
    let changed = tuned.local_record("nas.home.arpa", "A", "10.53.7.7", 300);
    reload(&r, &changed);
    let (status, answers) = a(&s, &r, "www.plain.lab");
    assert!(answers.is_empty(), "{status} {answers:?}");
    assert_eq!(status, "SERVFAIL");
    assert_eq!(a(&s, &r, "nas.home.arpa").1, ["10.53.7.7"]);
}

#[test]
fn no_query_is_lost_while_reloading() {
    if !e2e::require(&[CTL_TOOLS, &["dnsperf"]].concat()) {
        return;
    }
    let s = setup();
    let config = RouterdConfig::recursive(&s.dns).with(|c| c.rate_limit_qps = 0);
    let r = config.start(&s.router).unwrap();
    let names = ["www.plain.lab", "c1.plain.lab", "www.secure.lab"];
    for name in names {
        assert!(!a(&s, &r, name).1.is_empty(), "{name}");
    }
    let queries = s.lab.dir().join("handover-queries.txt");
    let text: String = names.iter().map(|n| format!("{n} A\n")).collect();
    std::fs::write(&queries, text).unwrap();

    // A steady 3000 queries/s for 4 s, bounded in count too, while the
    // configuration is reloaded three times underneath.
    let load = steady_load(&s.client, r.addr(), &queries, 4, 3000, 10_000).unwrap();
    for round in 0..3 {
        std::thread::sleep(Duration::from_millis(800));
        let variant = config.clone().with(|c| {
            c.allow.push(format!("192.0.2.{round}/32"));
        });
        reload(&r, &variant);
    }
    expect_nothing_lost(load, 5000, "reloads");
    let status = r.status_json().unwrap();
    assert_eq!(
        status.get("reloads").and_then(e2e::json::Value::as_u64),
        Some(3)
    );
}

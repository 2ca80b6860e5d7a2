//! What each zone's clients get for the same names, and why.

use e2e::json::Value;
use e2e::zones_lab::Zone;

use crate::common::*;

const NULL_V4: &str = "0.0.0.0";

#[test]
fn each_zone_gets_its_groups_answers() {
    if !e2e::require(TOOLS) {
        return;
    }
    let f = filter_lab(GROUPS, "", "");

    // A name only the strict list blocks: iot's group has it, NXDOMAIN.
    assert_eq!(
        ask(&f, Zone::Admin, TRACKER.0, "A"),
        ("NOERROR".into(), vec![TRACKER.1.into()])
    );
    assert_eq!(
        ask(&f, Zone::Iot, TRACKER.0, "A"),
        ("NXDOMAIN".into(), vec![])
    );
    // trusted's group resolves through its own upstream.
    assert_eq!(
        ask(&f, Zone::Trusted, TRACKER.0, "A"),
        ("NOERROR".into(), vec![family(TRACKER.1)])
    );

    // A name on the ads list: each group answers in its own block mode.
    assert_eq!(
        ask(&f, Zone::Admin, ADS.0, "A"),
        ("NOERROR".into(), vec![NULL_V4.into()])
    );
    assert_eq!(
        ask(&f, Zone::Admin, ADS.0, "AAAA"),
        ("NOERROR".into(), vec!["::".into()])
    );
    assert_eq!(ask(&f, Zone::Iot, ADS.0, "A"), ("NXDOMAIN".into(), vec![]));
    assert_eq!(
        ask(&f, Zone::Trusted, ADS.0, "A"),
        ("NOERROR".into(), vec![FAMILY_BLOCK.into()])
    );
    // The camera is named by address: its group wins over its zone's.
    assert_eq!(
        ask_as_camera(&f, ADS.0),
        ("NOERROR".into(), vec![ADS.1.into()])
    );
    assert_eq!(
        ask_as_camera(&f, TRACKER.0),
        ("NOERROR".into(), vec![TRACKER.1.into()])
    );

    // Regex rules of the strict list.
    assert_eq!(
        ask(&f, Zone::Iot, REGEX_HIT.0, "A"),
        ("NXDOMAIN".into(), vec![])
    );
    assert_eq!(
        ask(&f, Zone::Admin, REGEX_HIT.0, "A"),
        ("NOERROR".into(), vec![REGEX_HIT.1.into()])
    );

    // Names on no list go through untouched everywhere, each group's
    // answers from its own upstream and its own cache entries.
    for _ in 0..2 {
        for zone in [Zone::Admin, Zone::Iot, Zone::Guests] {
            assert_eq!(
                ask(&f, zone, WWW.0, "A"),
                ("NOERROR".into(), vec![WWW.1.into()]),
                "{zone:?}"
            );
        }
        assert_eq!(
            ask(&f, Zone::Trusted, WWW.0, "A"),
            ("NOERROR".into(), vec![family(WWW.1)])
        );
    }
}

#[test]
fn exceptions_and_important_rules_take_precedence() {
    if !e2e::require(TOOLS) {
        return;
    }
    let f = filter_lab(GROUPS, "", "");
    // `@@||ok.ads.filter.test^` beats the block of its parent.
    assert_eq!(
        ask(&f, Zone::Admin, OK_ADS.0, "A"),
        ("NOERROR".into(), vec![OK_ADS.1.into()])
    );
    assert_eq!(ask(&f, Zone::Admin, ADS.0, "A").1, [NULL_V4]);
    // `$important` beats the allow list's exception.
    assert_eq!(
        ask(&f, Zone::Admin, MUST.0, "A"),
        ("NOERROR".into(), vec![NULL_V4.into()])
    );

    // `routerctl dns why` names the list, the rule and its line.
    let why = f.ctl_json(&["dns", "why", MUST.0, "--client", "192.168.10.10"]);
    assert_eq!(
        why.get("verdict").and_then(Value::as_str),
        Some("blocked"),
        "{why:?}"
    );
    assert_eq!(why.get("zone").and_then(Value::as_str), Some("admin"));
    assert_eq!(why.get("group").and_then(Value::as_str), Some("default"));
    let rules = why.get("rules").and_then(Value::as_array).unwrap();
    let decider = &rules[0];
    assert_eq!(decider.get("list").and_then(Value::as_str), Some("ads"));
    assert_eq!(
        decider.get("rule").and_then(Value::as_str),
        Some("||must.filter.test^$important")
    );
    assert_eq!(
        decider.get("line").and_then(Value::as_u64),
        Some(4),
        "{why:?}"
    );
    // The exception it outranks is listed too.
    assert!(
        rules
            .iter()
            .any(|r| r.get("list").and_then(Value::as_str) == Some("allow")
                && r.get("action").and_then(Value::as_str) == Some("allow")),
        "{why:?}"
    );

    let why = f.ctl_json(&["dns", "why", OK_ADS.0]);
    assert_eq!(
        why.get("verdict").and_then(Value::as_str),
        Some("allowed"),
        "{why:?}"
    );
    let text = f.routerd.routerctl(&["dns", "why", OK_ADS.0]).unwrap();
    assert!(text.success, "{text}");
    assert!(text.stdout.contains("ALLOWED"), "{text}");
    assert!(text.stdout.contains("@@||ok.ads.filter.test^"), "{text}");
    let why = f.ctl_json(&["dns", "why", WWW.0]);
    assert_eq!(
        why.get("verdict").and_then(Value::as_str),
        Some("unlisted"),
        "{why:?}"
    );
}

#[test]
fn cname_chains_through_blocked_names_are_blocked() {
    if !e2e::require(TOOLS) {
        return;
    }
    let f = filter_lab(GROUPS, "", "");
    // shop -> cdn -> pixel, and the ads list blocks pixel: blocked from
    // the first (resolved) answer and from the cached one after it.
    for round in 0..2 {
        assert_eq!(
            ask(&f, Zone::Admin, SHOP, "A"),
            ("NOERROR".into(), vec![NULL_V4.into()]),
            "round {round}"
        );
        assert_eq!(
            ask(&f, Zone::Iot, SHOP, "A"),
            ("NXDOMAIN".into(), vec![]),
            "round {round}"
        );
    }
    // The camera's group has no lists: the chain's own address, from the
    // same cache entry the iot host was just refused.
    assert_eq!(
        ask_as_camera(&f, SHOP),
        ("NOERROR".into(), vec![PIXEL_A.into()])
    );

    // The log says which name of the chain was blocked, by which rule.
    let blocked = log_entries(&f, &["--blocked", "--name", "shop"]);
    assert!(!blocked.is_empty());
    for entry in &blocked {
        assert_eq!(
            entry.get("list").and_then(Value::as_str),
            Some("ads"),
            "{entry:?}"
        );
        assert_eq!(
            entry.get("rule").and_then(Value::as_str),
            Some("||pixel.filter.test^")
        );
    }
}

#[test]
fn safe_search_rewrites_for_its_group_only() {
    if !e2e::require(TOOLS) {
        return;
    }
    let f = filter_lab(GROUPS, "", "");
    let rewritten = chain(&f, Zone::Trusted, GOOGLE.0);
    assert_eq!(
        rewritten,
        [
            ("CNAME".to_string(), format!("{}.", SAFE_GOOGLE.0)),
            ("A".to_string(), family(SAFE_GOOGLE.1))
        ],
    );
    assert_eq!(
        ask(&f, Zone::Admin, GOOGLE.0, "A"),
        ("NOERROR".into(), vec![GOOGLE.1.into()])
    );
    // Asked again (from the cache), still separate.
    assert_eq!(chain(&f, Zone::Trusted, GOOGLE.0).len(), 2);
    assert_eq!(ask(&f, Zone::Admin, GOOGLE.0, "A").1, [GOOGLE.1]);
    let why = f.ctl_json(&["dns", "why", GOOGLE.0, "--client", "192.168.20.10"]);
    assert_eq!(
        why.get("safe_search").and_then(Value::as_str),
        Some(SAFE_GOOGLE.0)
    );
}

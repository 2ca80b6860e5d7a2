//! Refreshing lists: a broken copy never replaces a good one, and a good
//! one is swapped in without losing a query.

use std::time::Duration;

use e2e::json::Value;
use e2e::zones_lab::Zone;

use e2e::dnsperf::{expect_nothing_lost, steady_load};

use crate::common::*;

/// What `routerctl dns refresh` did to the ads list, and the list's status.
fn refresh_ads(f: &FilterLab) -> (String, Value) {
    let body = f.ctl_json(&["dns", "refresh"]);
    let outcome = body
        .get("lists.ads")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let lists = f.ctl_json(&["dns", "lists"]);
    let ads = lists
        .get("lists")
        .and_then(Value::as_array)
        .and_then(|l| {
            l.iter()
                .find(|l| l.get("name").and_then(Value::as_str) == Some("ads"))
        })
        .cloned()
        .unwrap();
    (outcome, ads)
}

#[test]
fn broken_lists_keep_the_last_good_copy() {
    if !e2e::require(TOOLS) {
        return;
    }
    let f = filter_lab(GROUPS, "max_list_mb = 1", "");
    assert_eq!(ask(&f, Zone::Admin, ADS.0, "A").1, ["0.0.0.0"]);
    // The ads list's one bad line is counted and shown with its number.
    let (_, status) = refresh_ads(&f);
    assert_eq!(
        status.get("malformed").and_then(Value::as_u64),
        Some(1),
        "{status:?}"
    );
    let samples = status
        .get("malformed_samples")
        .and_then(Value::as_array)
        .unwrap();
    let first = samples[0].as_str().unwrap();
    assert!(first.starts_with("line 6: "), "{first}");
    assert!(first.contains("this line is not a rule"), "{first}");

    let mut enormous = String::from(ADS_LIST);
    for i in 0..80_000 {
        enormous.push_str(&format!("0.0.0.0 host{i}.enormous.example\n"));
    }
    let mut binary: Vec<u8> = (0..4096u32).map(|i| (i * 7 % 256) as u8).collect();
    binary[10] = 0;
    let cases: [(&str, Vec<u8>, &str); 5] = [
        ("binary", binary, "binary"),
        ("empty", Vec::new(), "empty"),
        (
            "html",
            b"<!DOCTYPE html><html><body>rate limited</body></html>\n".to_vec(),
            "HTML",
        ),
        (
            "corrupt",
            b"{\"json\": true}\nnot a list at all\n".repeat(50),
            "not a list",
        ),
        ("enormous", enormous.into_bytes(), "larger than"),
    ];
    for (label, content, reason) in cases {
        std::fs::write(f.list("ads"), content).unwrap();
        let (outcome, status) = refresh_ads(&f);
        assert!(outcome.contains("kept"), "{label}: {outcome} {status:?}");
        assert!(outcome.contains(reason), "{label}: {outcome}");
        let stored_error = status
            .get("stored.last_error")
            .and_then(Value::as_str)
            .unwrap_or_default();
        assert!(stored_error.contains(reason), "{label}: {status:?}");
        // The previous copy still decides.
        assert_eq!(ask(&f, Zone::Admin, ADS.0, "A").1, ["0.0.0.0"], "{label}");
        assert_eq!(
            status.get("rules").and_then(Value::as_u64),
            Some(4),
            "{label}: {status:?}"
        );
    }
    // The same breakage is in `routerctl dns lists` for a human.
    let out = f.routerd.routerctl(&["dns", "lists"]).unwrap();
    assert!(out.stdout.contains("larger than"), "{out}");

    // A good list is taken, and decides at once.
    let good = ADS_LIST.replace("0.0.0.0 ads.filter.test", "0.0.0.0 www.filter.test");
    std::fs::write(f.list("ads"), good).unwrap();
    let (outcome, _) = refresh_ads(&f);
    assert!(outcome.contains("updated"), "{outcome}");
    assert_eq!(ask(&f, Zone::Admin, WWW.0, "A").1, ["0.0.0.0"]);
    assert_eq!(ask(&f, Zone::Admin, ADS.0, "A").1, [ADS.1]);
}

#[test]
fn no_query_is_lost_while_a_list_is_swapped() {
    if !e2e::require(&[TOOLS, &["dnsperf"]].concat()) {
        return;
    }
    // A list big enough that compiling it takes a while.
    let big: String = (0..200_000)
        .map(|i| format!("0.0.0.0 host{i}.big{}.example\n", i % 97))
        .collect();
    let f = filter_lab(GROUPS, "", "");
    let queries = f.lab.dir().join("filter-queries.txt");
    let names = [WWW.0, ADS.0, TRACKER.0, SHOP, OK_ADS.0];
    let text: String = names.iter().map(|n| format!("{n} A\n")).collect();
    std::fs::write(&queries, text).unwrap();

    let load = steady_load(
        f.host(Zone::Admin),
        router(Zone::Admin),
        &queries,
        5,
        3000,
        10_000,
    )
    .unwrap();
    for round in 0..3 {
        std::thread::sleep(Duration::from_millis(700));
        let list = format!("{ADS_LIST}0.0.0.0 round{round}.filter.test\n{big}");
        std::fs::write(f.list("ads"), list).unwrap();
        let (outcome, _) = refresh_ads(&f);
        assert!(outcome.contains("updated"), "round {round}: {outcome}");
    }
    expect_nothing_lost(load, 5000, "list swaps");
    // The last copy is the one in force.
    assert_eq!(
        ask(&f, Zone::Admin, "round2.filter.test", "A").1,
        ["0.0.0.0"]
    );
    assert_eq!(
        ask(&f, Zone::Admin, "host77.big77.example", "A").1,
        ["0.0.0.0"]
    );
}

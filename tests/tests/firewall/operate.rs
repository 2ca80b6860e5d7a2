//! The operator's side: `routerctl policy check`, `apply --confirm` with
//! its rollback, `confirm`, `stats`, and policies that must be refused,
//! each checked by the traffic it lets through or not.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use e2e::traffic::{Verdict, expect_all};
use e2e::wait_until;
use e2e::zones_lab::{NAS_V4, Zone};

use crate::policy::{Homelab, PLAIN, SSH, TOOLS, homelab, ping, tcp};

fn policy_file(h: &Homelab) -> PathBuf {
    h.lab.dir().join("policies").join("homelab.toml")
}

/// homelab.toml with trusted allowed into iot, which it is not.
fn with_trusted_to_iot(h: &Homelab) -> String {
    let text = std::fs::read_to_string(policy_file(h)).unwrap();
    format!("{text}\n[[policy]]\nfrom = \"trusted\"\nto = \"iot\"\naction = \"accept\"\n")
}

fn ctl(h: &Homelab, args: &[&str]) -> e2e::routerd::Ctl {
    h.routerd.routerctl(args).unwrap()
}

/// Trusted's view of an iot host on a port no rule names.
fn expect_trusted_to_iot(h: &Homelab, verdict: Verdict) {
    expect_all(&[(
        h.host(Zone::Trusted),
        tcp(Zone::Iot.host_v4(), PLAIN),
        verdict,
    )])
    .unwrap();
}

#[test]
fn operate_commit_confirm_rolls_back_after_its_timeout_and_stays_after_confirm() {
    if !e2e::require(TOOLS) {
        return;
    }
    let h = homelab();
    expect_trusted_to_iot(&h, Verdict::Rejected);
    std::fs::write(policy_file(&h), with_trusted_to_iot(&h)).unwrap();

    // Not confirmed: the new policy holds for its window, then the old
    // ruleset comes back by itself.
    let applied = ctl(&h, &["policy", "apply", "--confirm", "4s"]);
    assert!(applied.success, "{applied:?}");
    assert!(
        applied.stdout.contains("rolls back in 4s"),
        "{}",
        applied.stdout
    );
    let started = Instant::now();
    expect_trusted_to_iot(&h, Verdict::Accepted);
    let show = ctl(&h, &["policy", "show"]);
    assert!(
        show.stdout.contains("AWAITING CONFIRMATION"),
        "{}",
        show.stdout
    );
    wait_until(Duration::from_secs(10), "the rollback", || {
        let status = ctl(&h, &["status", "--json"]);
        status
            .stdout
            .contains("not confirmed in time")
            .then_some(())
    })
    .unwrap();
    assert!(started.elapsed() >= Duration::from_secs(4));
    expect_trusted_to_iot(&h, Verdict::Rejected);

    // Confirmed: it stays past its window.
    let applied = ctl(&h, &["policy", "apply", "--confirm", "3s"]);
    assert!(applied.success, "{applied:?}");
    let confirmed = ctl(&h, &["policy", "confirm"]);
    assert!(confirmed.success, "{confirmed:?}");
    std::thread::sleep(Duration::from_secs(4));
    expect_trusted_to_iot(&h, Verdict::Accepted);
    let again = ctl(&h, &["policy", "confirm"]);
    assert!(!again.success);
    assert!(
        again.stderr.contains("no apply awaits confirmation"),
        "{again:?}"
    );
}

#[test]
fn operate_a_broken_policy_leaves_traffic_as_it_was() {
    if !e2e::require(TOOLS) {
        return;
    }
    let h = homelab();
    let good = std::fs::read_to_string(policy_file(&h)).unwrap();
    let broken = good.replace("to = [\"wan\", \"servers\"]", "to = [\"wan\", \"servres\"]");
    assert_ne!(good, broken);
    let line = broken.lines().position(|l| l.contains("servres")).unwrap() + 1;
    std::fs::write(policy_file(&h), &broken).unwrap();

    let applied = ctl(&h, &["policy", "apply"]);
    assert!(!applied.success);
    let expected = format!("homelab.toml:{line}:");
    assert!(applied.stderr.contains(&expected), "{}", applied.stderr);
    assert!(
        applied.stderr.contains("unknown zone \"servres\""),
        "{}",
        applied.stderr
    );
    assert!(
        applied.stderr.contains("did you mean \"servers\"?"),
        "{}",
        applied.stderr
    );
    let reloaded = ctl(&h, &["reload"]);
    assert!(!reloaded.success, "{reloaded:?}");

    expect_all(&[
        (h.host(Zone::Trusted), tcp(NAS_V4, PLAIN), Verdict::Accepted),
        (h.host(Zone::Guests), tcp(NAS_V4, PLAIN), Verdict::Rejected),
        (h.host(Zone::Guests), ping(NAS_V4), Verdict::Accepted),
    ])
    .unwrap();
}

#[test]
fn operate_a_lockout_attempt_is_refused_with_a_clear_message() {
    if !e2e::require(TOOLS) {
        return;
    }
    let h = homelab();
    let good = std::fs::read_to_string(policy_file(&h)).unwrap();
    let lockout = format!(
        "{good}\n[[rule]]\nname = \"tidy-up\"\nfrom = \"admin\"\nto = \"router\"\nservice = \"tcp/1-1024\"\naction = \"drop\"\n"
    );
    std::fs::write(policy_file(&h), lockout).unwrap();
    let applied = ctl(&h, &["policy", "apply"]);
    assert!(!applied.success);
    assert!(
        applied.stderr.contains(
            "refused: this policy cuts the management zone \"admin\" off from the router's SSH (tcp/22): rule \"tidy-up\" would drop it"
        ),
        "{}",
        applied.stderr
    );
    assert!(
        applied.stderr.contains("fix: add a rule before it"),
        "{}",
        applied.stderr
    );
    let checked = ctl(&h, &["policy", "check"]);
    assert!(!checked.success);
    expect_all(&[(
        h.host(Zone::Admin),
        tcp(Zone::Admin.router_v4(), SSH),
        Verdict::Accepted,
    )])
    .unwrap();
}

#[test]
fn operate_check_shows_the_change_in_zone_terms_and_as_nft_text() {
    if !e2e::require(TOOLS) {
        return;
    }
    let h = homelab();
    let unchanged = ctl(&h, &["policy", "check"]);
    assert!(unchanged.success, "{unchanged:?}");
    assert!(
        unchanged.stdout.contains("policy OK: 6 zones"),
        "{}",
        unchanged.stdout
    );
    assert!(
        unchanged
            .stdout
            .contains("No changes against the running policy."),
        "{}",
        unchanged.stdout
    );

    std::fs::write(policy_file(&h), with_trusted_to_iot(&h)).unwrap();
    let changed = ctl(&h, &["policy", "check"]);
    assert!(changed.success, "{changed:?}");
    let out = &changed.stdout;
    assert!(out.contains("+ policy trusted -> iot: accept"), "{out}");
    assert!(
        out.contains(
            "+\t\t\t\"eth0.20\" . \"eth0.40\" counter comment \"policy:trusted>iot\" : accept"
        ),
        "{out}"
    );
    // Checking applies nothing.
    expect_trusted_to_iot(&h, Verdict::Rejected);
}

#[test]
fn operate_stats_count_packets_per_rule_and_zone_pair() {
    if !e2e::require(TOOLS) {
        return;
    }
    let h = homelab();
    expect_all(&[
        (h.host(Zone::Trusted), tcp(NAS_V4, PLAIN), Verdict::Accepted),
        (h.host(Zone::Guests), ping(NAS_V4), Verdict::Accepted),
        (h.host(Zone::Guests), tcp(NAS_V4, PLAIN), Verdict::Rejected),
    ])
    .unwrap();
    let stats = ctl(&h, &["--json", "policy", "stats"]);
    assert!(stats.success, "{stats:?}");
    let stats: serde_json::Value = serde_json::from_str(&stats.stdout).unwrap();
    for counter in [
        "policy:trusted>servers",
        "rule:ping-the-servers",
        "rule:guests-not-to-the-nas",
    ] {
        let packets = stats["counters"][counter]["packets"].as_u64().unwrap_or(0);
        assert!(packets >= 1, "{counter}: {stats:#}");
    }
    let table = ctl(&h, &["policy", "stats"]);
    assert!(
        table.stdout.contains("rule:ping-the-servers"),
        "{}",
        table.stdout
    );
}

#[test]
fn operate_reload_applies_a_changed_policy_and_leaves_other_tables_alone() {
    if !e2e::require(TOOLS) {
        return;
    }
    let h = homelab();
    let router = h.lab.router();
    router
        .run(
            "nft",
            &["add table inet operator; add chain inet operator keep; add rule inet operator keep counter"],
        )
        .unwrap();
    std::fs::write(policy_file(&h), with_trusted_to_iot(&h)).unwrap();
    let reloaded = ctl(&h, &["reload"]);
    assert!(reloaded.success, "{reloaded:?}");
    expect_trusted_to_iot(&h, Verdict::Accepted);
    let tables = router.run("nft", &["list", "tables"]).unwrap();
    assert!(tables.contains("table inet operator"), "{tables}");
    assert!(tables.contains("table inet router"), "{tables}");
    let kept = router
        .run("nft", &["list", "chain", "inet", "operator", "keep"])
        .unwrap();
    assert!(kept.contains("counter"), "{kept}");
}

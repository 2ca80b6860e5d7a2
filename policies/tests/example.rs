//! The shipped example loads, compiles and is accepted by nft.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)] // reason: test harness

use std::path::Path;

use policies::{Protected, load_dir};

#[test]
fn homelab_example_loads_without_warnings() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let loaded = load_dir(&dir, &Protected::default()).unwrap_or_else(|e| panic!("{e}"));
    for warning in &loaded.warnings {
        println!("{warning}");
    }
    assert!(loaded.warnings.is_empty());
    assert_eq!(loaded.policy.zones.len(), 6);
    // The rule count does not depend on the policy's size; what grows is
    // the number of map elements.
    let ruleset = policies::compile(&loaded.policy, &policies::NodeServices::default());
    assert!(ruleset.rule_count() < 40, "{}", ruleset.to_text());
}

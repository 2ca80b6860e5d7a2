//! Hostile lists: a list is downloaded from wherever its URL points, so
//! parsing it, compiling it and checking names against it must hold up
//! against any bytes.
#![no_main]

use dns::filter::list::{locate, parse};
use dns::filter::name::{normalize, to_wire};
use dns::filter::{FilterSetBuilder, ListMask, ParseOptions, Pattern, Scope};
use libfuzzer_sys::fuzz_target;

/// Rules checked against the compiled set per input, to keep runs fast.
const CHECKED: usize = 64;

fuzz_target!(|data: &[u8]| {
    let options = ParseOptions::default();
    let mut rules = Vec::new();
    let mut first = None;
    let mut emitted = 0u64;
    let summary = parse(data, options, |rule| {
        emitted += 1;
        if first.is_none() {
            first = Some((rule.line, rule.action, rule.important, owned(rule.pattern)));
        }
        if let Pattern::Domain(name, scope) = rule.pattern {
            let mut buf = String::new();
            assert_eq!(normalize(name, &mut buf), Ok(name), "not normal: {name:?}");
            if rules.len() < CHECKED {
                rules.push((name.to_string(), scope));
            }
        }
    })
    .expect("reading a slice cannot fail");
    assert_eq!(summary.rules, emitted);
    assert!(summary.malformed <= summary.lines);
    assert!(summary.samples.len() <= 5);
    assert!(
        summary
            .samples
            .iter()
            .all(|s| s.text.chars().count() <= 100)
    );

    if let Some((line, action, important, (text, scope))) = &first {
        let pattern = match scope {
            Some(scope) => Pattern::Domain(text, *scope),
            None => Pattern::Regex(text),
        };
        let found = locate(data, options, *action, *important, pattern).expect("slice");
        assert_eq!(found.map(|f| f.0), Some(*line));
    }

    let mut builder = FilterSetBuilder::new();
    builder.add_list("fuzz", data, options).expect("one list");
    builder
        .add_list("fuzz exact", data, ParseOptions { exact: true })
        .expect("two lists");
    let set = builder.build(&[
        ListMask::default().with(0),
        ListMask::default().with(0).with(1),
    ]);
    let mut buf = [0u8; 256];
    for (name, scope) in &rules {
        let queried = match scope {
            Scope::Subdomains => format!("x.{name}"),
            Scope::Exact | Scope::Subtree => name.clone(),
        };
        let Some(wire) = to_wire(&queried, &mut buf) else {
            continue;
        };
        // Every name a list names is decided by some rule of it.
        assert!(set.check(0, wire).is_some(), "{queried} undecided");
        let all = set.matches(1, wire);
        assert_eq!(set.check(1, wire), all.first().copied());
        for m in &all {
            let _ = m.rule_text(wire, &set);
        }
    }
    let _ = set.check(0, data);
    let _ = set.matches(1, data);
});

/// A pattern as (text, scope); `None` for a regex.
fn owned(pattern: Pattern<'_>) -> (String, Option<Scope>) {
    match pattern {
        Pattern::Domain(name, scope) => (name.to_string(), Some(scope)),
        Pattern::Regex(source) => (source.to_string(), None),
    }
}

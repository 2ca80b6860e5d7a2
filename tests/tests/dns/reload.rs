//! Changing the configuration of a running routerd: `routerctl reload`,
//! SIGHUP, broken files (refused, the old configuration keeps serving),
//! and `routerd check`.

use std::path::Path;
use std::time::Duration;

use e2e::dns_hierarchy::data;
use e2e::json::Value;
use e2e::routerd::routerd_check;
use e2e::{Query, Routerd, RouterdConfig, wait_until};

use crate::common::{CTL_TOOLS, Setup, setup};

const NAS: &str = "10.53.7.7";
const PRINTER: &str = "10.53.7.8";
const SCANNER: &str = "10.53.7.9";

fn base(s: &Setup) -> RouterdConfig {
    RouterdConfig::recursive(&s.dns).local_record("nas.home.arpa", "A", NAS, 300)
}

/// The lab, the base config, and routerd running it (its local record
/// already answering).
fn start_base() -> (Setup, RouterdConfig, Routerd) {
    let s = setup();
    let config = base(&s);
    let r = config.start(&s.router).unwrap();
    assert_eq!(a(&s, &r, "nas.home.arpa"), [NAS]);
    (s, config, r)
}

/// The A records routerd gives for `name` (empty on any failure).
fn a(s: &Setup, r: &Routerd, name: &str) -> Vec<String> {
    match s.client.dig(r.addr(), &Query::new(name, "A").timeout(5)) {
        Ok(d) => {
            let answers: Vec<String> = d.answers("A").iter().map(|s| s.to_string()).collect();
            if answers.is_empty() {
                // Shown only when an assertion about it fails.
                eprintln!("no A answer for {name}:\n{}", d.raw);
            }
            answers
        }
        Err(error) => {
            eprintln!("no answer for {name}: {error}");
            Vec::new()
        }
    }
}

/// `file:line:column` (1-based, as routerd reports it) of `needle` in
/// the first occurrence of `context` in `text`.
fn location(path: &Path, text: &str, context: &str, needle: &str) -> String {
    let offset = text
        .find(context)
        .and_then(|c| Some(c + context.find(needle)?))
        .unwrap_or_else(|| panic!("{needle:?} in {context:?} not in config:\n{text}"));
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let column = offset - before.rfind('\n').map_or(0, |nl| nl + 1) + 1;
    format!("{}:{line}:{column}", path.display())
}

/// `text` with `line` inserted right after the line `after`.
fn insert_after(text: &str, after: &str, line: &str) -> String {
    let at = text
        .find(&format!("{after}\n"))
        .unwrap_or_else(|| panic!("{after:?} not in config:\n{text}"))
        + after.len()
        + 1;
    format!("{}{line}\n{}", &text[..at], &text[at..])
}

fn status(r: &Routerd) -> Value {
    r.status_json().unwrap()
}

/// After one reload that added `name`: it answers, and so do the old
/// local record and recursion.
fn assert_reloaded(s: &Setup, r: &Routerd, name: &str, ip: &str) {
    assert_eq!(a(s, r, name), [ip]);
    assert_eq!(a(s, r, "nas.home.arpa"), [NAS]);
    assert_eq!(a(s, r, "www.plain.lab"), [data::PLAIN_A]);
    let st = status(r);
    assert_eq!(st.get("reloads").and_then(Value::as_u64), Some(1), "{st:?}");
}

#[test]
fn routerctl_reload_applies_new_local_record() {
    if !e2e::require(CTL_TOOLS) {
        return;
    }
    let (s, config, mut r) = start_base();
    assert!(a(&s, &r, "printer.home.arpa").is_empty());
    assert_eq!(a(&s, &r, "www.plain.lab"), [data::PLAIN_A]);
    let local_before = status(&r)
        .get("dns.resolver.local_records")
        .and_then(Value::as_u64);

    let new = config
        .clone()
        .local_record("printer.home.arpa", "A", PRINTER, 300);
    r.rewrite_config(&new).unwrap();
    let out = r.routerctl(&["reload"]).unwrap();
    assert!(out.success, "{out}");
    assert!(out.stdout.contains("configuration reloaded"), "{out}");

    assert_reloaded(&s, &r, "printer.home.arpa", PRINTER);
    let st = status(&r);
    assert!(st.get("last_reload_error").is_some_and(Value::is_null));
    // Two A records, each with its derived PTR.
    let records = st.get("dns.resolver.local_records").and_then(Value::as_u64);
    assert!(records > local_before, "{local_before:?} -> {st:?}");

    // The same file again changes nothing.
    let out = r.routerctl(&["reload"]).unwrap();
    assert!(out.success, "{out}");
    assert!(out.stdout.contains("unchanged"), "{out}");
    assert_eq!(status(&r).get("reloads").and_then(Value::as_u64), Some(1));
    r.check_running().unwrap();
}

#[test]
fn sighup_reloads_the_config() {
    if !e2e::require(CTL_TOOLS) {
        return;
    }
    let (s, config, mut r) = start_base();
    assert!(a(&s, &r, "scanner.home.arpa").is_empty());

    let new = config
        .clone()
        .local_record("scanner.home.arpa", "A", SCANNER, 300);
    r.rewrite_config(&new).unwrap();
    r.signal("HUP").unwrap();
    let answered = wait_until(
        Duration::from_secs(5),
        "the new record after SIGHUP",
        || (a(&s, &r, "scanner.home.arpa") == [SCANNER]).then_some(()),
    );
    assert!(answered.is_ok(), "{answered:?}");
    // Once the new configuration has answered, the old one never does
    // again (a reload stops the old workers before the new ones start).
    for _ in 0..10 {
        assert_eq!(a(&s, &r, "scanner.home.arpa"), [SCANNER]);
    }
    assert_reloaded(&s, &r, "scanner.home.arpa", SCANNER);
    r.check_running().unwrap();
}

#[test]
fn broken_reload_is_refused_and_old_config_kept() {
    if !e2e::require(CTL_TOOLS) {
        return;
    }
    let (s, config, mut r) = start_base();
    let good = config
        .clone()
        .local_record("printer.home.arpa", "A", PRINTER, 300)
        .to_toml(&r.control_socket);

    // An unknown key (a typo), next to a valid change that must not apply.
    let typo = insert_after(&good, "[dns]", "listen_adress = [\"10.53.0.53:53\"]");
    r.write_config_text(&typo).unwrap();
    let at = location(&r.config, &typo, "listen_adress", "listen_adress");
    let out = r.routerctl(&["reload"]).unwrap();
    assert!(!out.success, "a broken file must be refused: {out}");
    assert!(out.stderr.contains(&at), "expected {at} in: {out}");
    assert!(out.stderr.contains("listen_adress"), "{out}");
    assert_eq!(a(&s, &r, "nas.home.arpa"), [NAS], "old config still serves");
    assert!(
        a(&s, &r, "printer.home.arpa").is_empty(),
        "nothing of the broken file applies"
    );
    assert_eq!(a(&s, &r, "www.plain.lab"), [data::PLAIN_A]);
    let st = status(&r);
    let error = st.get("last_reload_error").and_then(Value::as_str);
    assert!(
        error.is_some_and(|e| e.contains(&at)),
        "last_reload_error should name {at}: {st:?}"
    );
    assert_eq!(st.get("reloads").and_then(Value::as_u64), Some(0), "{st:?}");
    let text = r.routerctl(&["status"]).unwrap();
    assert!(text.stdout.contains("last reload failed"), "{text}");
    assert!(text.stdout.contains(&at), "{text}");

    // A bad value, through SIGHUP this time.
    let bad = good.replace("max_udp_payload = 1232", "max_udp_payload = 100");
    assert_ne!(bad, good);
    r.write_config_text(&bad).unwrap();
    let at = location(&r.config, &bad, "max_udp_payload = 100", "100");
    r.signal("HUP").unwrap();
    let error = wait_until(Duration::from_secs(5), "the SIGHUP reload error", || {
        let st = r.status_json().ok()?;
        let error = st.get("last_reload_error")?.as_str()?.to_string();
        error.contains(&at).then_some(error)
    });
    assert!(error.is_ok(), "{error:?}; status: {:?}", r.status_json());
    assert!(error.unwrap().contains("max_udp_payload"));
    assert_eq!(a(&s, &r, "nas.home.arpa"), [NAS]);
    assert!(a(&s, &r, "printer.home.arpa").is_empty());
    r.check_running().unwrap();

    // Fixed: the reload goes through and the error is cleared.
    r.write_config_text(&good).unwrap();
    let out = r.routerctl(&["reload"]).unwrap();
    assert!(out.success, "{out}");
    assert_eq!(a(&s, &r, "printer.home.arpa"), [PRINTER]);
    assert_eq!(a(&s, &r, "nas.home.arpa"), [NAS]);
    let st = status(&r);
    assert!(
        st.get("last_reload_error").is_some_and(Value::is_null),
        "{st:?}"
    );
    assert_eq!(st.get("reloads").and_then(Value::as_u64), Some(1), "{st:?}");
    r.check_running().unwrap();
}

#[test]
fn routerd_check_reports_file_line_column() {
    if !e2e::require(CTL_TOOLS) {
        return;
    }
    let s = setup();
    let socket = s.lab.dir().join("check.sock");
    let good = base(&s).to_toml(&socket);
    let path = s.lab.dir().join("check.toml");

    std::fs::write(&path, &good).unwrap();
    let out = routerd_check(&s.router, &path).unwrap();
    assert!(out.success, "{out}");
    assert!(out.stdout.contains("valid"), "{out}");
    assert!(!socket.exists(), "check must not start anything");

    let cases = [
        // An unknown key.
        (
            insert_after(&good, "[dns.cache]", "max_entrys = 10"),
            ("max_entrys = 10", "max_entrys"),
            "max_entrys",
        ),
        // A value of the wrong kind.
        (
            good.replace("mode = \"recursive\"", "mode = \"recursing\""),
            ("mode = \"recursing\"", "\"recursing\""),
            "recursing",
        ),
        // A value out of range.
        (
            good.replace("max_udp_payload = 1232", "max_udp_payload = 100"),
            ("max_udp_payload = 100", "100"),
            "max_udp_payload",
        ),
        // A local record that is not an address.
        (
            good.replace("value = \"10.53.7.7\"", "value = \"10.53.7\""),
            ("value = \"10.53.7\"", "\"10.53.7\""),
            "10.53.7",
        ),
    ];
    for (text, (context, needle), mentions) in cases {
        assert_ne!(text, good);
        std::fs::write(&path, &text).unwrap();
        let out = routerd_check(&s.router, &path).unwrap();
        let at = location(&path, &text, context, needle);
        assert_eq!(out.code, Some(1), "{out}\nfile:\n{text}");
        let line = location_line(&out.stderr, &path);
        assert!(
            line.starts_with(&at),
            "expected {at}: ... as the error, got: {out}"
        );
        assert!(line.contains(mentions), "{out}");
    }

    // Not TOML at all (an unterminated string): still on its line.
    let text = insert_after(&good, "[dns]", "workers = \"2");
    std::fs::write(&path, &text).unwrap();
    let out = routerd_check(&s.router, &path).unwrap();
    assert_eq!(out.code, Some(1), "{out}");
    let at = location(&path, &text, "workers = \"2", "workers");
    let (at_line, _) = at.rsplit_once(':').unwrap();
    assert!(
        location_line(&out.stderr, &path).starts_with(&format!("{at_line}:")),
        "expected {at_line}:COLUMN: ..., got: {out}"
    );

    let missing = s.lab.dir().join("missing.toml");
    let out = routerd_check(&s.router, &missing).unwrap();
    assert_eq!(out.code, Some(1), "{out}");
    assert!(out.stderr.contains(&*missing.to_string_lossy()), "{out}");
}

/// The first stderr line mentioning the config file.
fn location_line<'a>(stderr: &'a str, path: &Path) -> &'a str {
    let p = path.to_string_lossy();
    stderr
        .lines()
        .find(|l| l.contains(&*p))
        .map(|l| &l[l.find(&*p).unwrap_or(0)..])
        .unwrap_or(stderr)
}

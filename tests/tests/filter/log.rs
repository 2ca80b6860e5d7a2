//! The query log: what it records, across a restart, within retention.

use e2e::json::Value;
use e2e::zones_lab::Zone;

use crate::common::*;

/// The query log in the lab dir, kept two days.
const LOG: &str = "[dns.query_log]\nretention_days = 2\npath = ";

fn log_toml(f_dir: &std::path::Path) -> String {
    format!(
        "{LOG}{:?}\n",
        f_dir.join("querylog.sqlite").to_string_lossy()
    )
}

#[test]
fn the_query_log_survives_a_restart_and_keeps_to_its_retention() {
    if !e2e::require(&[TOOLS, &["sqlite3"]].concat()) {
        return;
    }
    let dir = std::env::temp_dir().join(format!("filter-log-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut f = filter_lab(GROUPS, "", &log_toml(&dir));
    assert_eq!(ask(&f, Zone::Iot, TRACKER.0, "A").0, "NXDOMAIN");
    assert_eq!(ask(&f, Zone::Admin, WWW.0, "A").1, [WWW.1]);
    assert_eq!(ask(&f, Zone::Admin, WWW.0, "A").1, [WWW.1]);

    let blocked = log_entries(&f, &["--blocked", "--zone", "iot"]);
    let tracker = blocked
        .iter()
        .find(|e| e.get("name").and_then(Value::as_str) == Some(TRACKER.0))
        .unwrap_or_else(|| panic!("{blocked:?}"));
    assert_eq!(
        tracker.get("client").and_then(Value::as_str),
        Some("192.168.40.10")
    );
    assert_eq!(tracker.get("group").and_then(Value::as_str), Some("strict"));
    assert_eq!(tracker.get("list").and_then(Value::as_str), Some("strict"));
    assert_eq!(
        tracker.get("rule").and_then(Value::as_str),
        Some("||tracker.filter.test^")
    );
    assert_eq!(
        tracker.get("rcode").and_then(Value::as_str),
        Some("NXDOMAIN")
    );
    let admin = log_entries(&f, &["--client", "192.168.10.10", "--name", "www"]);
    let outcomes: Vec<&str> = admin
        .iter()
        .filter_map(|e| e.get("outcome").and_then(Value::as_str))
        .collect();
    assert!(outcomes.contains(&"forwarded"), "{admin:?}");
    assert!(outcomes.contains(&"cached"), "{admin:?}");
    assert!(
        admin
            .iter()
            .any(|e| e.get("upstream").and_then(Value::as_str) == Some("udp://100.64.0.2:53")),
        "{admin:?}"
    );
    let top = f.ctl_json(&["dns", "top", "--window", "1h"]);
    assert!(
        top.get("blocked").and_then(Value::as_u64) >= Some(1),
        "{top:?}"
    );

    // Restart, with a row from three days ago slipped into the file: the
    // history is still there, the old row is gone.
    f.routerd.daemon.stop();
    let db = dir.join("querylog.sqlite");
    let old_ms = (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64)
        - 3 * 86_400_000;
    let insert = format!(
        "INSERT INTO queries (time_ms, client, zone, group_name, name, qtype, outcome, rcode, latency_us) \
         VALUES ({old_ms}, '192.168.10.10', 'admin', 'default', 'ancient.filter.test', 'A', 'cached', 'NOERROR', 1);"
    );
    let out = std::process::Command::new("sqlite3")
        .arg(&db)
        .arg(&insert)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    f.restart();
    let all = log_entries(&f, &[]);
    assert!(
        all.iter()
            .any(|e| e.get("name").and_then(Value::as_str) == Some(TRACKER.0)),
        "the log lost its history across the restart: {all:?}"
    );
    assert!(
        !all.iter()
            .any(|e| e.get("name").and_then(Value::as_str) == Some("ancient.filter.test")),
        "a row older than the retention survived: {all:?}"
    );
    let count = std::process::Command::new("sqlite3")
        .arg(&db)
        .arg("SELECT count(*) FROM queries WHERE name = 'ancient.filter.test';")
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&count.stdout).trim(), "0");
    drop(f);
    let _ = std::fs::remove_dir_all(&dir);
}

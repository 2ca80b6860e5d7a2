//! Tests of the query log as a whole, each in its own temporary directory.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use super::*;

/// A directory removed when the test ends, pass or fail.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "dns-querylog-{}-{}-{}-{}",
            std::process::id(),
            name,
            N.fetch_add(1, Ordering::Relaxed),
            writer::now_ms(),
        ));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    /// The database path, one level down so `open` has a directory to make.
    fn db(&self) -> PathBuf {
        self.0.join("sub").join("queries.db")
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

const BASE_MS: i64 = 1_700_000_000_000;

fn settings(path: &Path) -> LogSettings {
    LogSettings {
        path: Some(path.to_path_buf()),
        // Retention is tested on its own; the fixed timestamps here are old.
        retention_days: 0,
        flush_interval: Duration::from_millis(20),
        ..LogSettings::default()
    }
}

/// Varied entries: 4 clients (one IPv6), zones on even ones, 10 names,
/// every fifth blocked.
fn entry(i: usize, time_ms: i64) -> Entry {
    let client = if i % 4 == 3 {
        IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 3))
    } else {
        IpAddr::V4(Ipv4Addr::new(10, 0, 0, (i % 4) as u8))
    };
    let blocked = i.is_multiple_of(5);
    Entry {
        time_ms,
        client,
        zone: i.is_multiple_of(2).then(|| "lan".to_string()),
        group: "default".into(),
        name: format!("host{}.example.com", i % 10),
        qtype: if i.is_multiple_of(3) { "AAAA" } else { "A" }.into(),
        outcome: if blocked {
            Outcome::Blocked
        } else {
            Outcome::Answered
        },
        rcode: if blocked { "NXDOMAIN" } else { "NOERROR" }.into(),
        list: blocked.then(|| "ads".to_string()),
        rule: blocked.then(|| format!("||host{}.example.com^", i % 10)),
        upstream: (!blocked).then(|| "9.9.9.9:53".to_string()),
        latency_us: i as u32,
    }
}

fn entries(range: std::ops::Range<usize>) -> Vec<Entry> {
    range.map(|i| entry(i, BASE_MS + i as i64)).collect()
}

fn seqs(v: &[(u64, Entry)]) -> Vec<u64> {
    v.iter().map(|(s, _)| *s).collect()
}

#[test]
fn defaults_live_in_settings() {
    let s = LogSettings::default();
    assert_eq!(s.path, None);
    assert_eq!(s.ring_entries, 10_000);
    assert_eq!(s.retention_days, 7);
    assert_eq!(s.max_bytes, 256 * 1024 * 1024);
    assert_eq!(s.flush_interval, Duration::from_secs(1));
}

#[test]
fn search_applies_each_filter_like_the_ring() {
    let dir = TempDir::new("search");
    let log = QueryLog::open(settings(&dir.db())).unwrap();
    let all = entries(0..100);
    log.append(all[..60].to_vec());
    log.append(all[60..].to_vec());
    let newest_first: Vec<Entry> = all.iter().rev().cloned().collect();

    let filters = [
        LogFilter::default(),
        LogFilter {
            client: Some("10.0.0.1".parse().unwrap()),
            ..LogFilter::default()
        },
        LogFilter {
            client: Some("fd00::3".parse().unwrap()),
            ..LogFilter::default()
        },
        LogFilter {
            zone: Some("lan".into()),
            ..LogFilter::default()
        },
        LogFilter {
            blocked: true,
            ..LogFilter::default()
        },
        LogFilter {
            name: Some("HOST3.Example.com.".into()),
            ..LogFilter::default()
        },
        LogFilter {
            name: Some("st7".into()),
            ..LogFilter::default()
        },
        LogFilter {
            since_ms: Some(BASE_MS + 90),
            ..LogFilter::default()
        },
        LogFilter {
            until_ms: Some(BASE_MS + 10),
            ..LogFilter::default()
        },
        LogFilter {
            zone: Some("lan".into()),
            blocked: true,
            since_ms: Some(BASE_MS + 20),
            until_ms: Some(BASE_MS + 80),
            ..LogFilter::default()
        },
    ];
    for filter in &filters {
        let expected: Vec<Entry> = newest_first
            .iter()
            .filter(|e| filter.matches(e))
            .cloned()
            .collect();
        assert!(!expected.is_empty(), "{filter:?} matches nothing");
        assert_eq!(log.search(filter, 1000).unwrap(), expected, "{filter:?}");
        let (recent, _) = log.recent(filter, None, 1000);
        let mut from_ring: Vec<Entry> = recent.into_iter().map(|(_, e)| e).collect();
        from_ring.reverse();
        assert_eq!(from_ring, expected, "ring disagrees for {filter:?}");
    }
    // Spot checks that the filters mean what they say.
    let f = LogFilter {
        since_ms: Some(BASE_MS + 90),
        ..LogFilter::default()
    };
    assert_eq!(log.search(&f, 1000).unwrap().len(), 10);
    let f = LogFilter {
        until_ms: Some(BASE_MS + 10),
        ..LogFilter::default()
    };
    assert_eq!(log.search(&f, 1000).unwrap().len(), 10);
    let f = LogFilter {
        name: Some("host3.example.com".into()),
        ..LogFilter::default()
    };
    assert_eq!(log.search(&f, 1000).unwrap().len(), 10);
    let f = LogFilter {
        name: Some("nowhere".into()),
        ..LogFilter::default()
    };
    assert!(log.search(&f, 1000).unwrap().is_empty());
    // Newest first, and the limit keeps the newest.
    let two = log.search(&LogFilter::default(), 2).unwrap();
    assert_eq!(two, vec![all[99].clone(), all[98].clone()]);
    assert!(log.search(&LogFilter::default(), 0).unwrap().is_empty());

    let stats = log.stats();
    assert_eq!(
        (stats.appended, stats.written, stats.dropped),
        (100, 100, 0)
    );
    assert_eq!(stats.rows, 100);
    assert!(stats.db_bytes > 0);
    assert_eq!(stats.last_error, None);
    log.close();
}

#[test]
fn search_includes_entries_not_yet_committed() {
    let dir = TempDir::new("unflushed");
    let log = QueryLog::open(LogSettings {
        flush_interval: Duration::from_secs(3600),
        ..settings(&dir.db())
    })
    .unwrap();
    log.append(entries(0..5));
    assert_eq!(log.search(&LogFilter::default(), 10).unwrap().len(), 5);
}

#[test]
fn recent_follows_with_after_seq() {
    let log = QueryLog::open(LogSettings::default()).unwrap();
    let (none, newest) = log.recent(&LogFilter::default(), None, 100);
    assert!(none.is_empty());
    assert_eq!(newest, 0);

    log.append(entries(0..10));
    let (all, newest) = log.recent(&LogFilter::default(), None, 100);
    assert_eq!(seqs(&all), (1..=10).collect::<Vec<_>>());
    assert_eq!(all[0].1, entry(0, BASE_MS));
    assert_eq!(newest, 10);

    let (after, newest) = log.recent(&LogFilter::default(), Some(7), 100);
    assert_eq!(seqs(&after), vec![8, 9, 10]);
    assert_eq!(newest, 10);

    // The limit keeps the newest, still newest last.
    let (limited, _) = log.recent(&LogFilter::default(), None, 3);
    assert_eq!(seqs(&limited), vec![8, 9, 10]);

    // A poll with nothing new returns nothing but still the newest number.
    let (nothing, newest) = log.recent(&LogFilter::default(), Some(10), 100);
    assert!(nothing.is_empty());
    assert_eq!(newest, 10);

    log.append(entries(10..12));
    let blocked = LogFilter {
        blocked: true,
        ..LogFilter::default()
    };
    let (hits, newest) = log.recent(&blocked, Some(newest), 100);
    assert_eq!(seqs(&hits), vec![11]); // entry 10 is blocked, 11 is not
    assert_eq!(newest, 12);
}

#[test]
fn ring_is_bounded_and_evicts_the_oldest() {
    let dir = TempDir::new("ring");
    let log = QueryLog::open(LogSettings {
        ring_entries: 5,
        ..settings(&dir.db())
    })
    .unwrap();
    log.append(entries(0..7));
    log.append(entries(7..12));
    let (all, newest) = log.recent(&LogFilter::default(), None, 100);
    assert_eq!(seqs(&all), vec![8, 9, 10, 11, 12]);
    assert_eq!(all[4].1, entry(11, BASE_MS + 11));
    assert_eq!(newest, 12);
    // The database keeps what the ring evicted.
    assert_eq!(log.search(&LogFilter::default(), 100).unwrap().len(), 12);
}

#[test]
fn reopen_keeps_rows_refills_the_ring_and_continues_numbering() {
    let dir = TempDir::new("reopen");
    // A long flush interval: only close can have written the rows.
    let s = LogSettings {
        ring_entries: 10,
        flush_interval: Duration::from_secs(3600),
        ..settings(&dir.db())
    };
    let log = QueryLog::open(s.clone()).unwrap();
    log.append(entries(0..30));
    let clone = log.clone();
    drop(clone);
    log.close();
    // The last connection closed cleanly: SQLite removed its WAL file.
    assert!(!dir.db().with_extension("db-wal").exists());

    let log = QueryLog::open(s.clone()).unwrap();
    let (ring, newest) = log.recent(&LogFilter::default(), None, 100);
    assert_eq!(seqs(&ring), (21..=30).collect::<Vec<_>>());
    let expected: Vec<Entry> = entries(20..30);
    assert_eq!(
        ring.into_iter().map(|(_, e)| e).collect::<Vec<_>>(),
        expected
    );
    assert_eq!(newest, 30);
    log.append(entries(30..31));
    let (after, newest) = log.recent(&LogFilter::default(), Some(30), 100);
    assert_eq!(seqs(&after), vec![31]);
    assert_eq!(newest, 31);
    assert_eq!(log.search(&LogFilter::default(), 100).unwrap().len(), 31);
    assert_eq!(log.stats().rows, 31);
    // Dropping the last handle also writes everything.
    log.append(entries(31..40));
    drop(log);

    let log = QueryLog::open(s).unwrap();
    assert_eq!(log.search(&LogFilter::default(), 100).unwrap().len(), 40);
    assert_eq!(log.recent(&LogFilter::default(), None, 100).1, 40);
}

#[test]
fn retention_removes_old_rows_at_open() {
    let dir = TempDir::new("retention");
    let s = LogSettings {
        retention_days: 1,
        ..settings(&dir.db())
    };
    let now = writer::now_ms();
    let day = 86_400_000;
    let old: Vec<Entry> = (0..50)
        .map(|i| entry(i, now - 3 * day + i as i64))
        .collect();
    let new: Vec<Entry> = (50..60)
        .map(|i| entry(i, now - day / 2 + i as i64))
        .collect();
    let log = QueryLog::open(s.clone()).unwrap();
    log.append(old);
    log.append(new.clone());
    // Retention runs at open and hourly, so these stay for now.
    assert_eq!(log.search(&LogFilter::default(), 100).unwrap().len(), 60);
    log.close();

    let log = QueryLog::open(s).unwrap();
    let (ring, _) = log.recent(&LogFilter::default(), None, 100);
    assert_eq!(ring.into_iter().map(|(_, e)| e).collect::<Vec<_>>(), new);
    let mut found = log.search(&LogFilter::default(), 100).unwrap();
    found.reverse();
    assert_eq!(found, new);
    assert_eq!(log.stats().rows, 10);
}

#[test]
fn size_cap_trims_the_oldest_rows_and_shrinks_the_file() {
    let dir = TempDir::new("cap");
    let cap = 256 * 1024;
    let log = QueryLog::open(LogSettings {
        max_bytes: cap,
        ..settings(&dir.db())
    })
    .unwrap();
    for chunk in 0..20 {
        log.append(entries(chunk * 1000..(chunk + 1) * 1000));
        log.flush().unwrap();
    }
    let stats = log.stats();
    assert_eq!(stats.written, 20_000);
    assert!(stats.rows > 0 && stats.rows < 20_000, "{stats:?}");
    assert!(stats.db_bytes <= cap, "{stats:?}");
    let on_disk = std::fs::metadata(dir.db()).unwrap().len();
    assert!(on_disk <= cap, "file is {on_disk} bytes");
    // The newest rows are the ones kept.
    let newest = log.search(&LogFilter::default(), 1).unwrap();
    assert_eq!(newest, vec![entry(19_999, BASE_MS + 19_999)]);
    let kept = log.search(&LogFilter::default(), 100_000).unwrap();
    assert_eq!(kept.len() as u64, stats.rows);
    assert_eq!(stats.last_error, None);
}

#[test]
fn top_counts_over_the_window() {
    let dir = TempDir::new("top");
    let db_log = QueryLog::open(settings(&dir.db())).unwrap();
    let ring_log = QueryLog::open(LogSettings::default()).unwrap();
    let now = BASE_MS + 1_000_000;
    let mut batch = Vec::new();
    // 40 entries inside the last minute, 20 before it.
    for i in 0..40 {
        batch.push(entry(i, now - 59_000 + i as i64));
    }
    for i in 0..20 {
        batch.push(entry(i, now - 61_000 - i as i64));
    }
    // One exactly at the window's open end (excluded) and one at now.
    batch.push(entry(1, now - 60_000));
    batch.push(entry(5, now));
    db_log.append(batch.clone());
    ring_log.append(batch);

    let top = db_log.top(Duration::from_secs(60), 3, now).unwrap();
    assert_eq!(top.window_secs, 60);
    assert_eq!(top.queries, 41);
    // i % 5 == 0 for i in 0..40 is 8, plus the one at now.
    assert_eq!(top.blocked, 9);
    // host5 has i = 5, 15, 25, 35 and the one at now; the rest 4 each.
    assert_eq!(
        top.top_names,
        vec![
            ("host5.example.com".to_string(), 5),
            ("host0.example.com".to_string(), 4),
            ("host1.example.com".to_string(), 4),
        ]
    );
    assert_eq!(
        top.top_blocked,
        vec![
            ("host5.example.com".to_string(), 5),
            ("host0.example.com".to_string(), 4)
        ]
    );
    assert_eq!(top.top_clients.len(), 3);
    assert_eq!(top.top_clients[0], ("10.0.0.1".parse().unwrap(), 11));

    let from_ring = ring_log.top(Duration::from_secs(60), 3, now).unwrap();
    assert_eq!(from_ring.queries, top.queries);
    assert_eq!(from_ring.blocked, top.blocked);
    assert_eq!(from_ring.top_names, top.top_names);
    assert_eq!(from_ring.top_blocked, top.top_blocked);
    assert_eq!(from_ring.top_clients[0], top.top_clients[0]);

    let empty = db_log.top(Duration::from_secs(60), 3, BASE_MS).unwrap();
    assert_eq!((empty.queries, empty.blocked), (0, 0));
    assert!(empty.top_names.is_empty() && empty.top_clients.is_empty());
}

fn open_error(path: &Path) -> String {
    match QueryLog::open(settings(path)) {
        Ok(_) => panic!("opened {}", path.display()),
        Err(DnsError::QueryLog { path: p, reason }) => {
            assert_eq!(p, path.display().to_string());
            reason
        }
        Err(e) => panic!("unexpected error {e}"),
    }
}

#[test]
fn a_corrupt_file_is_an_error_naming_the_path_and_is_left_alone() {
    let dir = TempDir::new("corrupt");
    let path = dir.db();
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let garbage: Vec<u8> = (0..8192u32).map(|i| (i * 7919 % 251) as u8).collect();
    std::fs::write(&path, &garbage).unwrap();
    let reason = open_error(&path);
    assert!(reason.contains("not a database"), "{reason}");
    assert_eq!(std::fs::read(&path).unwrap(), garbage);
}

#[test]
fn foreign_or_newer_databases_are_errors() {
    let dir = TempDir::new("foreign");
    let newer = dir.0.join("newer.db");
    let conn = Connection::open(&newer).unwrap();
    conn.execute_batch("PRAGMA user_version = 99;").unwrap();
    drop(conn);
    let reason = open_error(&newer);
    assert!(reason.contains("newer"), "{reason}");

    let foreign = dir.0.join("foreign.db");
    let conn = Connection::open(&foreign).unwrap();
    conn.execute_batch("CREATE TABLE mine (x INTEGER); INSERT INTO mine VALUES (1);")
        .unwrap();
    drop(conn);
    let reason = open_error(&foreign);
    assert!(reason.contains("not a query log"), "{reason}");
    let conn = Connection::open(&foreign).unwrap();
    let x: i64 = conn
        .query_row("SELECT x FROM mine", [], |r| r.get(0))
        .unwrap();
    assert_eq!(x, 1);
}

#[test]
fn a_new_database_is_wal_with_incremental_vacuum() {
    let dir = TempDir::new("pragmas");
    let log = QueryLog::open(settings(&dir.db())).unwrap();
    let conn = Connection::open(dir.db()).unwrap();
    let mode: String = conn
        .pragma_query_value(None, "journal_mode", |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    let vacuum: i64 = conn
        .pragma_query_value(None, "auto_vacuum", |r| r.get(0))
        .unwrap();
    assert_eq!(vacuum, 2); // incremental
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    assert_eq!(version, store::SCHEMA_VERSION);
    drop(log);
}

/// A log whose writer waits for the returned sender before starting.
fn blocked_log(
    path: &Path,
    channel_batches: usize,
    max_pending: usize,
) -> (QueryLog, mpsc::Sender<()>) {
    let (gate_tx, gate_rx) = mpsc::channel();
    let log = QueryLog::open_tuned(
        settings(path),
        Tuning {
            channel_batches,
            max_pending_entries: max_pending,
            start_gate: Some(gate_rx),
        },
    )
    .unwrap();
    (log, gate_tx)
}

#[test]
fn batches_are_dropped_from_the_database_when_the_channel_is_full() {
    let dir = TempDir::new("full");
    let (log, gate) = blocked_log(&dir.db(), 1, 1_000);
    log.append(entries(0..3)); // fills the one slot
    log.append(entries(3..5)); // dropped
    log.append(entries(5..9)); // dropped
    let stats = log.stats();
    assert_eq!((stats.appended, stats.dropped), (9, 6));
    // The ring has everything.
    assert_eq!(log.recent(&LogFilter::default(), None, 100).0.len(), 9);

    gate.send(()).unwrap();
    log.flush().unwrap();
    let mut found = log.search(&LogFilter::default(), 100).unwrap();
    found.reverse();
    assert_eq!(found, entries(0..3));
    let stats = log.stats();
    assert_eq!((stats.written, stats.dropped), (3, 6));
    // Once the writer catches up, batches go through again.
    log.append(entries(9..10));
    log.flush().unwrap();
    assert_eq!(log.stats().written, 4);
}

#[test]
fn batches_are_dropped_beyond_the_pending_entry_budget() {
    let dir = TempDir::new("budget");
    let (log, gate) = blocked_log(&dir.db(), 100, 5);
    log.append(entries(0..3));
    log.append(entries(3..6)); // 6 pending would exceed 5
    log.append(entries(6..8)); // 5 pending: fits
    assert_eq!(log.stats().dropped, 3);
    gate.send(()).unwrap();
    log.flush().unwrap();
    assert_eq!(log.stats().written, 5);
}

#[test]
fn a_ring_only_log_answers_from_memory() {
    let log = QueryLog::open(LogSettings {
        ring_entries: 50,
        ..LogSettings::default()
    })
    .unwrap();
    log.append(entries(0..100));
    log.flush().unwrap();
    let blocked = LogFilter {
        blocked: true,
        ..LogFilter::default()
    };
    let found = log.search(&blocked, 3).unwrap();
    assert_eq!(
        found,
        vec![
            entry(95, BASE_MS + 95),
            entry(90, BASE_MS + 90),
            entry(85, BASE_MS + 85)
        ]
    );
    let stats = log.stats();
    assert_eq!((stats.appended, stats.written, stats.dropped), (100, 0, 0));
    assert!(format!("{log:?}").contains("ring_len: 50"));
}

/// Rows a second through the store directly, the writer's part of the work.
fn insert_rate(rows: usize) -> f64 {
    let dir = TempDir::new("rate");
    let mut conn = store::open_writer(&dir.db()).unwrap();
    let all: Vec<(u64, Arc<Entry>)> = (0..rows)
        .map(|i| (i as u64 + 1, Arc::new(entry(i, BASE_MS + i as i64))))
        .collect();
    let start = Instant::now();
    for chunk in all.chunks(writer::BATCH_ROWS) {
        store::insert(&mut conn, chunk).unwrap();
    }
    rows as f64 / start.elapsed().as_secs_f64()
}

#[test]
fn inserts_are_fast_enough_even_unoptimised() {
    // Debug builds run SQLite unoptimised too; the real figure comes from
    // the ignored test below in release mode.
    let rate = insert_rate(50_000);
    assert!(rate > 10_000.0, "{rate:.0} rows/s");
}

/// `cargo test -p dns --release --lib querylog -- --ignored --nocapture`
#[test]
#[ignore = "a measurement; run in release mode"]
fn insert_rate_release() {
    let rate = insert_rate(1_000_000);
    eprintln!("store insert: {rate:.0} rows/s");

    // The whole path: append, channel, writer, commit.
    let dir = TempDir::new("pipeline");
    let log = QueryLog::open_tuned(
        settings(&dir.db()),
        Tuning {
            channel_batches: 1 << 16,
            max_pending_entries: usize::MAX,
            start_gate: None,
        },
    )
    .unwrap();
    let batches: Vec<Vec<Entry>> = (0..500)
        .map(|b| entries(b * 1000..(b + 1) * 1000))
        .collect();
    let start = Instant::now();
    for batch in batches {
        log.append(batch);
    }
    let appended = start.elapsed();
    log.flush().unwrap();
    let total = start.elapsed();
    let stats = log.stats();
    assert_eq!(stats.written, 500_000);
    eprintln!(
        "pipeline: append {:.0} entries/s, append+write {:.0} rows/s",
        500_000.0 / appended.as_secs_f64(),
        500_000.0 / total.as_secs_f64()
    );
    assert!(rate > 100_000.0, "{rate:.0} rows/s");
}

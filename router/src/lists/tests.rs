use std::io::Cursor;

use dns::filter::{ListSummary, Malformed};

use super::url::{HttpUrl, Scheme};
use super::validate::{Inspection, count_content_lines, judge, sniff};
use super::*;

#[test]
fn list_names_are_file_safe() {
    for good in ["ads", "a", "Ads_2-x", &"x".repeat(MAX_LIST_NAME_LEN)] {
        assert!(valid_list_name(good), "{good}");
    }
    for bad in [
        "",
        ".",
        "..",
        "../etc",
        "a/b",
        "a.b",
        "a b",
        "ads\0",
        "é",
        &"x".repeat(MAX_LIST_NAME_LEN + 1),
    ] {
        assert!(!valid_list_name(bad), "{bad:?}");
    }
}

#[test]
fn sources_are_checked_at_construction() {
    let file = Location::File("/etc/router/lists/local.txt".into());
    let source = ListSource::new("local", file.clone()).unwrap();
    assert_eq!(source.max_shrink_percent, 50);
    assert_eq!(source.max_bytes, 64 * 1024 * 1024);
    assert_eq!(source.timeout, Duration::from_secs(30));
    assert!(!source.exact);

    let error = ListSource::new("../passwd", file).unwrap_err();
    assert_eq!(error, ListError::InvalidName("../passwd".into()));
    assert!(error.to_string().contains("letters, digits, '-' or '_'"));

    let error = ListSource::new(
        "ads",
        Location::Url {
            url: "ftp://lists.example/hosts".into(),
            ca_file: None,
        },
    )
    .unwrap_err();
    assert!(error.to_string().contains("only http and https"), "{error}");
}

#[test]
fn urls_parse() {
    let url = HttpUrl::parse("https://Lists.Example/hosts.txt?v=2#top").unwrap();
    assert_eq!(url.scheme, Scheme::Https);
    assert_eq!(url.host, "lists.example");
    assert_eq!(url.port, 443);
    assert_eq!(url.path, "/hosts.txt?v=2");
    assert_eq!(url.host_header(), "lists.example");
    assert_eq!(url.to_string(), "https://lists.example/hosts.txt?v=2");

    let url = HttpUrl::parse("http://127.0.0.1:8080").unwrap();
    assert_eq!(
        (url.host.as_str(), url.port, url.path.as_str()),
        ("127.0.0.1", 8080, "/")
    );
    assert_eq!(url.host_header(), "127.0.0.1:8080");

    let url = HttpUrl::parse("HTTP://[::1]:81?x").unwrap();
    assert_eq!(url.scheme, Scheme::Http);
    assert_eq!(
        (url.host.as_str(), url.port, url.path.as_str()),
        ("::1", 81, "/?x")
    );
    assert_eq!(url.host_header(), "[::1]:81");
    assert_eq!(url.authority(), "[::1]:81");

    let url = HttpUrl::parse("https://[2001:db8::1]/l").unwrap();
    assert_eq!((url.host.as_str(), url.port), ("2001:db8::1", 443));
    assert_eq!(url.host_header(), "[2001:db8::1]");

    let url = HttpUrl::parse("http://host:/x").unwrap();
    assert_eq!(url.port, 80);

    for (bad, why) in [
        ("lists.example/hosts", "expected http:// or https://"),
        ("file:///etc/hosts", "only http and https"),
        ("http://user:pw@lists.example/", "credentials"),
        ("http:///hosts", "bad host"),
        ("http://host:0/", "bad host or port"),
        ("http://host:65536/", "bad host or port"),
        ("http://host:x/", "bad host or port"),
        ("http://[::1/", "bad host"),
        ("http://[nope]/", "bad host"),
        ("http://ho st/", "bad host"),
        ("http://host/a b", "spaces"),
        ("http://host/a\tb", "percent-encode"),
    ] {
        let error = HttpUrl::parse(bad).unwrap_err();
        assert!(error.to_string().contains(why), "{bad}: {error}");
    }
}

#[test]
fn redirect_locations_resolve_like_a_browser() {
    let base = HttpUrl::parse("https://lists.example:8443/a/b/hosts.txt?v=1").unwrap();
    let join = |location: &str| base.join(location).unwrap().to_string();
    assert_eq!(join("http://other.example/x"), "http://other.example/x");
    assert_eq!(join("//cdn.example/x"), "https://cdn.example/x");
    assert_eq!(join("/root.txt"), "https://lists.example:8443/root.txt");
    assert_eq!(join("c.txt"), "https://lists.example:8443/a/b/c.txt");
    assert_eq!(
        join("../c.txt?q=1"),
        "https://lists.example:8443/a/c.txt?q=1"
    );
    assert_eq!(join("./"), "https://lists.example:8443/a/b/");
    assert_eq!(join("../../../../x"), "https://lists.example:8443/x");
    assert_eq!(join("?v=2"), "https://lists.example:8443/a/b/hosts.txt?v=2");
    assert_eq!(
        join("c.txt?next=http://x/y"),
        "https://lists.example:8443/a/b/c.txt?next=http://x/y"
    );
    assert!(base.join("gopher://x/").is_err());
    assert!(base.join("a b").is_err());
}

#[test]
fn binary_and_html_are_recognised() {
    assert_eq!(sniff(b"0.0.0.0 a.example\n").ok(), Some(()));
    assert!(matches!(
        sniff(b"0.0.0.0 a\0.example\n"),
        Err(Refusal::Binary)
    ));
    let mut late_nul = vec![b'#'; 64 * 1024];
    late_nul.push(0);
    assert!(
        sniff(&late_nul).is_ok(),
        "only the first 64 KiB are sniffed"
    );

    for page in [
        &b"<!DOCTYPE html><html><body>Log in to the WiFi</body></html>"[..],
        b"\xEF\xBB\xBF\r\n  <HTML lang=en>",
        b"<!-- portal -->\n<html>",
        b"<?xml version=\"1.0\"?>\n<!doctype HTML>",
    ] {
        assert!(matches!(sniff(page), Err(Refusal::Html)), "{page:?}");
    }
    assert!(sniff(b"# served as <html> by mistake? never\n||a.example^\n").is_ok());
    assert!(sniff(b"<b>bold</b> but no page\n").is_ok());
}

fn inspection(rules: u64, malformed: u64, lines: u64, content_lines: u64) -> Inspection {
    Inspection {
        summary: ListSummary {
            lines,
            rules,
            malformed,
            samples: (0..malformed.min(5))
                .map(|i| Malformed {
                    line: u32::try_from(i + 1).unwrap(),
                    text: format!("garbage {i}"),
                    reason: "not a domain",
                })
                .collect(),
        },
        content_lines,
    }
}

fn reason(result: Result<(), Refusal>) -> String {
    result.unwrap_err().to_string()
}

#[test]
fn judgement_of_candidates() {
    // A first copy: anything that is a list at all.
    assert!(judge(&inspection(0, 0, 0, 0), None, 50).is_ok());
    assert!(judge(&inspection(0, 0, 3, 0), None, 50).is_ok());
    assert!(judge(&inspection(1, 1, 2, 0), None, 50).is_ok());

    assert_eq!(
        reason(judge(&inspection(1, 4, 5, 0), None, 50)),
        "not a list: 4 of 5 lines malformed (line 1: \"garbage 0\": not a domain; \
         line 2: \"garbage 1\": not a domain; line 3: \"garbage 2\": not a domain)"
    );
    assert_eq!(
        reason(judge(&inspection(0, 0, 2, 2), Some(10), 50)),
        "not a list: none of its 2 lines is a rule"
    );
    assert_eq!(
        reason(judge(&inspection(0, 0, 1, 0), Some(10), 100)),
        "empty: no rules, while the previous copy had 10"
    );
    assert!(judge(&inspection(0, 0, 1, 0), Some(0), 50).is_ok());

    // The bound is rules < previous * (100 - x) / 100.
    assert!(judge(&inspection(500, 0, 500, 0), Some(1000), 50).is_ok());
    assert_eq!(
        reason(judge(&inspection(499, 0, 499, 0), Some(1000), 50)),
        "shrank from 1000 to 499 rules, more than 50%"
    );
    assert!(judge(&inspection(900, 0, 900, 0), Some(1000), 10).is_ok());
    assert!(judge(&inspection(899, 0, 899, 0), Some(1000), 10).is_err());
    assert!(judge(&inspection(999, 0, 999, 0), Some(1000), 0).is_err());
    assert!(judge(&inspection(1, 0, 1, 0), Some(u64::MAX), 100).is_ok());
    assert!(judge(&inspection(1, 0, 1, 0), Some(1000), 200).is_ok());
    assert!(judge(&inspection(5000, 0, 5000, 0), Some(10), 50).is_ok());
}

#[test]
fn content_lines_skip_blanks_and_comments() {
    let text = "# hosts\n\n! adblock\n[Adblock Plus 2.0]\n  \t\nlocalhost\r\nbroadcasthost";
    assert_eq!(count_content_lines(Cursor::new(text)).unwrap(), 2);
    assert_eq!(count_content_lines(Cursor::new("")).unwrap(), 0);
}

#[test]
fn temp_files_vanish_unless_persisted() {
    let tmp = test_dir();
    let dir = tmp.path().to_path_buf();
    let (temp, file) = store::TempFile::create(&dir, "ads").unwrap();
    let path = temp.path().to_path_buf();
    drop(file);
    assert!(path.exists());
    drop(temp);
    assert!(!path.exists());

    let (temp, mut file) = store::TempFile::create(&dir, "ads").unwrap();
    file.write_all(b"x").unwrap();
    temp.persist(&dir.join("ads.list")).unwrap();
    assert_eq!(std::fs::read(dir.join("ads.list")).unwrap(), b"x");
    assert_eq!(entries(&dir), ["ads.list"]);
}

#[test]
fn only_other_processes_stale_temps_are_removed() {
    let tmp = test_dir();
    let dir = tmp.path().to_path_buf();
    let pid = std::process::id();
    for name in [
        ".ads.1.0.tmp".to_owned(),
        format!(".ads.{pid}.7.tmp"),
        ".ads-2.1.0.tmp".to_owned(),
        "ads.list".to_owned(),
    ] {
        std::fs::write(dir.join(name), b"").unwrap();
    }
    store::remove_stale_temps(&dir, "ads");
    assert_eq!(
        entries(&dir),
        [
            ".ads-2.1.0.tmp".to_owned(),
            format!(".ads.{pid}.7.tmp"),
            "ads.list".to_owned()
        ]
    );
}

#[test]
fn outcomes_read_well() {
    assert_eq!(RefreshOutcome::Unchanged.to_string(), "unchanged");
    let updated = RefreshOutcome::Updated {
        rules: 120,
        previous_rules: Some(100),
        malformed: 2,
    };
    assert_eq!(
        updated.to_string(),
        "updated: 120 rules (was 100), 2 malformed lines skipped"
    );
    assert_eq!(
        serde_json::to_value(&updated).unwrap(),
        serde_json::json!({"outcome": "updated", "rules": 120, "previous_rules": 100, "malformed": 2})
    );
    let kept = RefreshOutcome::Kept {
        reason: "HTTP 500 Internal Server Error from http://x/".into(),
    };
    assert_eq!(
        kept.to_string(),
        "kept the previous copy: HTTP 500 Internal Server Error from http://x/"
    );
}

#[tokio::test]
async fn invalid_names_are_refused_by_refresh_too() {
    let tmp = test_dir();
    let dir = tmp.path().to_path_buf();
    let store = ListStore::new(dir.clone());
    let source = ListSource {
        name: "../escape".into(),
        location: Location::File(dir.join("x")),
        exact: false,
        max_shrink_percent: 50,
        max_bytes: 10,
        timeout: Duration::from_secs(1),
    };
    let outcome = store.refresh(&source).await;
    let RefreshOutcome::Kept { reason } = outcome else {
        panic!("{outcome:?}");
    };
    assert!(reason.contains("not valid"), "{reason}");
    assert!(store.current("../escape").is_none());
    assert!(store.meta("../escape").is_none());
    assert!(entries(&dir).is_empty());
}

fn test_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("router-lists-unit")
        .tempdir()
        .unwrap()
}

fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

//! List sources against real sockets: a scripted HTTP/1.1 server (plain and
//! TLS) on 127.0.0.1 that this test starts itself, and files in a temporary
//! directory. Nothing here talks to any other host.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use router::lists::{ListMeta, ListSource, ListStore, Location, RefreshOutcome};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

/// One scripted response.
#[derive(Debug, Clone)]
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    framing: Framing,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Framing {
    ContentLength,
    /// No length: the body ends when the connection closes.
    UntilClose,
    /// Read the request, then answer nothing for a long time.
    Stall,
}

impl Reply {
    fn ok(body: impl Into<Vec<u8>>) -> Self {
        Reply {
            status: 200,
            headers: Vec::new(),
            body: body.into(),
            framing: Framing::ContentLength,
        }
    }

    fn status(status: u16) -> Self {
        Reply {
            status,
            ..Reply::ok("")
        }
    }

    fn redirect(status: u16, location: &str) -> Self {
        Reply::status(status).header("Location", location)
    }

    fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    fn framing(mut self, framing: Framing) -> Self {
        self.framing = framing;
        self
    }
}

/// What the server was sent: the path and the headers (names lowercase).
#[derive(Debug, Clone)]
struct Received {
    path: String,
    headers: HashMap<String, String>,
}

impl Received {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }
}

#[derive(Debug, Default)]
struct Script {
    replies: VecDeque<Reply>,
    received: Vec<Received>,
}

/// A one-request-per-connection HTTP/1.1 server on 127.0.0.1.
#[derive(Debug)]
struct TestServer {
    addr: SocketAddr,
    scheme: &'static str,
    script: Arc<Mutex<Script>>,
    task: JoinHandle<()>,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TestServer {
    async fn plain() -> Self {
        Self::start(None).await
    }

    async fn tls(acceptor: TlsAcceptor) -> Self {
        Self::start(Some(acceptor)).await
    }

    async fn start(tls: Option<TlsAcceptor>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let script = Arc::new(Mutex::new(Script::default()));
        let scheme = if tls.is_some() { "https" } else { "http" };
        let shared = script.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    continue;
                };
                let script = shared.clone();
                let tls = tls.clone();
                tokio::spawn(async move {
                    match tls {
                        None => serve(tcp, &script).await,
                        // A client that rejects the certificate ends here.
                        Some(acceptor) => {
                            if let Ok(stream) = acceptor.accept(tcp).await {
                                serve(stream, &script).await;
                            }
                        }
                    }
                });
            }
        });
        TestServer {
            addr,
            scheme,
            script,
            task,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}://{}{path}", self.scheme, self.addr)
    }

    fn push(&self, reply: Reply) {
        self.script.lock().unwrap().replies.push_back(reply);
    }

    fn received(&self) -> Vec<Received> {
        self.script.lock().unwrap().received.clone()
    }

    fn pending(&self) -> usize {
        self.script.lock().unwrap().replies.len()
    }
}

async fn serve<S: AsyncRead + AsyncWrite + Unpin>(mut stream: S, script: &Mutex<Script>) {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() > 16 * 1024 || stream.read(&mut byte).await.unwrap_or(0) == 0 {
            return;
        }
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let mut lines = head.split("\r\n");
    let request_line = lines.next().unwrap_or_default();
    let path = request_line
        .split(' ')
        .nth(1)
        .unwrap_or_default()
        .to_owned();
    assert!(request_line.starts_with("GET "), "{request_line}");
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
        .collect();
    let reply = {
        let mut script = script.lock().unwrap();
        script.received.push(Received { path, headers });
        script.replies.pop_front()
    };
    let reply = reply.unwrap_or_else(|| Reply::status(599).header("X-Test", "no scripted reply"));
    if reply.framing == Framing::Stall {
        tokio::time::sleep(Duration::from_secs(60)).await;
        return;
    }
    let mut response = format!(
        "HTTP/1.1 {} Scripted\r\nConnection: close\r\n",
        reply.status
    );
    if reply.framing == Framing::ContentLength {
        response.push_str(&format!("Content-Length: {}\r\n", reply.body.len()));
    }
    for (name, value) in &reply.headers {
        response.push_str(&format!("{name}: {value}\r\n"));
    }
    response.push_str("\r\n");
    let mut bytes = response.into_bytes();
    bytes.extend_from_slice(&reply.body);
    // The client may hang up early (an oversized body): not a test failure.
    let _ = stream.write_all(&bytes).await;
    let _ = stream.shutdown().await;
}

/// A hosts-format list of `n` rules.
fn hosts(n: usize) -> String {
    let mut list = String::from("# test list\n\n");
    for i in 0..n {
        list.push_str(&format!("0.0.0.0 ads{i}.example\n"));
    }
    list
}

fn url_source(name: &str, url: String) -> ListSource {
    let mut source = ListSource::new(name, Location::Url { url, ca_file: None }).unwrap();
    source.timeout = Duration::from_secs(10);
    source
}

fn kept(outcome: RefreshOutcome) -> String {
    match outcome {
        RefreshOutcome::Kept { reason } => reason,
        other => panic!("expected Kept, got {other:?}"),
    }
}

fn hash(content: &[u8]) -> String {
    format!("{:032x}", xxhash_rust::xxh3::xxh3_128(content))
}

/// The file names in `dir`, sorted: only lists and their metadata, never a
/// temporary file.
fn files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

fn temp_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("router-lists")
        .tempdir()
        .unwrap()
}

/// The stored copy is exactly `content`, its fields are those of `good`,
/// and the failed attempt is recorded with `reason`.
fn assert_kept(store: &ListStore, name: &str, content: &str, good: &ListMeta, reason: &str) {
    let current = store
        .current(name)
        .expect("the last good copy is still there");
    assert_eq!(std::fs::read_to_string(current).unwrap(), content);
    let meta = store.meta(name).unwrap();
    assert_eq!(meta.last_error.as_deref(), Some(reason));
    assert!(meta.checked_at_ms >= good.checked_at_ms);
    let restored = ListMeta {
        checked_at_ms: good.checked_at_ms,
        last_error: good.last_error.clone(),
        ..meta
    };
    assert_eq!(&restored, good, "the last good copy's metadata changed");
}

#[tokio::test]
async fn first_download_then_not_modified() {
    let dir = temp_dir();
    let store = ListStore::new(dir.path().join("lists"));
    let server = TestServer::plain().await;
    let list = hosts(4);
    let last_modified = "Wed, 21 Oct 2015 07:28:00 GMT";
    server.push(
        Reply::ok(list.clone())
            .header("ETag", "\"v1\"")
            .header("Last-Modified", last_modified),
    );
    let source = url_source("ads", server.url("/hosts.txt"));
    assert!(store.current("ads").is_none());
    assert!(store.meta("ads").is_none());

    let outcome = store.refresh(&source).await;
    assert_eq!(
        outcome,
        RefreshOutcome::Updated {
            rules: 4,
            previous_rules: None,
            malformed: 0
        }
    );
    let current = store.current("ads").unwrap();
    assert_eq!(current, dir.path().join("lists/ads.list"));
    assert_eq!(std::fs::read_to_string(&current).unwrap(), list);
    let meta = store.meta("ads").unwrap();
    assert_eq!(meta.etag.as_deref(), Some("\"v1\""));
    assert_eq!(meta.last_modified.as_deref(), Some(last_modified));
    assert_eq!((meta.rules, meta.malformed), (4, 0));
    assert_eq!(meta.bytes, list.len() as u64);
    assert_eq!(meta.hash, hash(list.as_bytes()));
    assert_eq!(meta.last_error, None);
    assert_eq!(meta.source, Some(source.location.to_string()));
    assert!(meta.fetched_at_ms > 0);
    assert_eq!(meta.checked_at_ms, meta.fetched_at_ms);
    let meta_file: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("lists/ads.meta.json")).unwrap())
            .unwrap();
    assert_eq!(meta_file["rules"], 4);

    let first = &server.received()[0];
    assert_eq!(first.path, "/hosts.txt");
    assert_eq!(first.header("host"), Some(&*server.addr.to_string()));
    assert!(
        first.header("user-agent").unwrap().starts_with("routerd/"),
        "{first:?}"
    );
    assert_eq!(first.header("accept-encoding"), Some("identity"));
    assert_eq!(first.header("if-none-match"), None);
    assert_eq!(first.header("if-modified-since"), None);

    server.push(Reply::status(304).header("ETag", "\"v1\""));
    tokio::time::sleep(Duration::from_millis(5)).await;
    assert_eq!(store.refresh(&source).await, RefreshOutcome::Unchanged);
    let second = &server.received()[1];
    assert_eq!(second.header("if-none-match"), Some("\"v1\""));
    assert_eq!(second.header("if-modified-since"), Some(last_modified));
    let after = store.meta("ads").unwrap();
    assert!(after.checked_at_ms > meta.checked_at_ms);
    assert_eq!(
        ListMeta {
            checked_at_ms: meta.checked_at_ms,
            ..after
        },
        meta
    );
    assert_eq!(std::fs::read_to_string(&current).unwrap(), list);

    // The same bytes again, without a 304: unchanged too, new validators kept.
    server.push(Reply::ok(list.clone()).header("ETag", "\"v2\""));
    assert_eq!(store.refresh(&source).await, RefreshOutcome::Unchanged);
    let after = store.meta("ads").unwrap();
    assert_eq!(after.etag.as_deref(), Some("\"v2\""));
    assert_eq!(after.last_modified, None);
    assert_eq!(after.fetched_at_ms, meta.fetched_at_ms);

    assert_eq!(
        files(&dir.path().join("lists")),
        ["ads.list", "ads.meta.json"]
    );
}

#[tokio::test]
async fn refused_candidates_keep_the_previous_copy() {
    let dir = temp_dir();
    let store = ListStore::new(dir.path().to_path_buf());
    let server = TestServer::plain().await;
    let mut source = url_source("ads", server.url("/hosts.txt"));
    source.max_bytes = 4096;
    let good = hosts(10);
    server.push(Reply::ok(good.clone()).header("ETag", "\"good\""));
    assert!(matches!(
        store.refresh(&source).await,
        RefreshOutcome::Updated { rules: 10, .. }
    ));
    let good_meta = store.meta("ads").unwrap();

    let big = hosts(200);
    assert!(big.len() > 4096);
    let cases = [
        (
            Reply::status(500),
            format!(
                "HTTP 500 Internal Server Error from {}",
                server.url("/hosts.txt")
            ),
        ),
        (
            Reply::status(404),
            format!("HTTP 404 Not Found from {}", server.url("/hosts.txt")),
        ),
        (Reply::ok(big.clone()), "larger than 4096 bytes".to_owned()),
        (
            Reply::ok(big).framing(Framing::UntilClose),
            "larger than 4096 bytes".to_owned(),
        ),
        (
            Reply::ok(&b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03hosts"[..]),
            "binary file, not a list".to_owned(),
        ),
        (
            Reply::ok(&b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03hosts"[..])
                .header("Content-Encoding", "gzip"),
            "sent compressed (gzip) although uncompressed was asked for".to_owned(),
        ),
        (
            Reply::ok("<!DOCTYPE html>\n<html><body>Please log in</body></html>\n"),
            "an HTML page, not a list".to_owned(),
        ),
        (
            Reply::ok(""),
            "empty: no rules, while the previous copy had 10".to_owned(),
        ),
        (
            Reply::ok("# nothing here any more\n"),
            "empty: no rules, while the previous copy had 10".to_owned(),
        ),
        (
            Reply::ok(hosts(4)),
            "shrank from 10 to 4 rules, more than 50%".to_owned(),
        ),
    ];
    for (reply, reason) in cases {
        server.push(reply);
        assert_eq!(kept(store.refresh(&source).await), reason);
        assert_kept(&store, "ads", &good, &good_meta, &reason);
        // Still conditional: the stored validators were not replaced.
        let last = server.received().pop().unwrap();
        assert_eq!(last.header("if-none-match"), Some("\"good\""));
        assert_eq!(files(dir.path()), ["ads.list", "ads.meta.json"]);
    }

    // Garbage: the parser's malformed lines are quoted.
    server.push(Reply::ok(
        "{\"domains\": [\n\"this is json\",\n\"not a list\"]}\n0.0.0.0 ok.example\n",
    ));
    let reason = kept(store.refresh(&source).await);
    assert!(reason.starts_with("not a list: "), "{reason}");
    assert!(reason.contains("lines malformed (line 1: "), "{reason}");
    assert_kept(&store, "ads", &good, &good_meta, &reason);

    // A shrink within the bound is accepted, and clears the error.
    let smaller = hosts(5);
    server.push(Reply::ok(smaller.clone()));
    assert_eq!(
        store.refresh(&source).await,
        RefreshOutcome::Updated {
            rules: 5,
            previous_rules: Some(10),
            malformed: 0
        }
    );
    let meta = store.meta("ads").unwrap();
    assert_eq!((meta.rules, meta.last_error, meta.etag), (5, None, None));
    assert_eq!(
        std::fs::read_to_string(store.current("ads").unwrap()).unwrap(),
        smaller
    );
    assert_eq!(files(dir.path()), ["ads.list", "ads.meta.json"]);
}

#[tokio::test]
async fn first_fetch_failure_is_recorded_without_a_copy() {
    let dir = temp_dir();
    let store = ListStore::new(dir.path().to_path_buf());
    let server = TestServer::plain().await;
    let source = url_source("ads", server.url("/hosts.txt"));
    server.push(Reply::status(503));
    let reason = kept(store.refresh(&source).await);
    assert!(
        reason.starts_with("HTTP 503 Service Unavailable"),
        "{reason}"
    );
    assert!(store.current("ads").is_none());
    let meta = store.meta("ads").unwrap();
    assert_eq!(meta.last_error.as_deref(), Some(&*reason));
    assert_eq!(
        (meta.fetched_at_ms, meta.rules, meta.hash.as_str()),
        (0, 0, "")
    );
    assert!(meta.checked_at_ms > 0);

    // No copy yet: no conditional headers, and the first good list is taken.
    server.push(Reply::ok(hosts(1)));
    assert_eq!(
        store.refresh(&source).await,
        RefreshOutcome::Updated {
            rules: 1,
            previous_rules: None,
            malformed: 0
        }
    );
    assert_eq!(server.received()[1].header("if-none-match"), None);
    assert_eq!(files(dir.path()), ["ads.list", "ads.meta.json"]);
}

#[tokio::test]
async fn a_new_source_is_not_held_to_the_old_ones_size() {
    let dir = temp_dir();
    let store = ListStore::new(dir.path().to_path_buf());
    let server = TestServer::plain().await;
    server.push(Reply::ok(hosts(10)).header("ETag", "\"old\""));
    store
        .refresh(&url_source("ads", server.url("/big.txt")))
        .await;

    // The operator now points "ads" at a much smaller list.
    let small = url_source("ads", server.url("/small.txt"));
    server.push(Reply::ok(hosts(2)));
    assert_eq!(
        store.refresh(&small).await,
        RefreshOutcome::Updated {
            rules: 2,
            previous_rules: Some(10),
            malformed: 0
        }
    );
    assert_eq!(server.received()[1].header("if-none-match"), None);
    let meta = store.meta("ads").unwrap();
    assert_eq!(meta.source, Some(server.url("/small.txt")));

    // From then on the new source is guarded as usual.
    server.push(Reply::ok(""));
    assert!(kept(store.refresh(&small).await).starts_with("empty"));
}

#[tokio::test]
async fn redirects_are_followed() {
    let dir = temp_dir();
    let store = ListStore::new(dir.path().to_path_buf());
    let server = TestServer::plain().await;
    server.push(Reply::redirect(302, "moved/hosts.txt"));
    server.push(Reply::redirect(301, &server.url("/final?v=1")));
    server.push(Reply::redirect(308, "/final?v=2"));
    server.push(Reply::ok(hosts(3)).header("ETag", "\"r\""));
    let source = url_source("ads", server.url("/lists/start"));
    assert!(matches!(
        store.refresh(&source).await,
        RefreshOutcome::Updated { rules: 3, .. }
    ));
    let paths: Vec<String> = server.received().into_iter().map(|r| r.path).collect();
    assert_eq!(
        paths,
        [
            "/lists/start",
            "/lists/moved/hosts.txt",
            "/final?v=1",
            "/final?v=2"
        ]
    );
    assert_eq!(store.meta("ads").unwrap().etag.as_deref(), Some("\"r\""));

    // Five redirects are followed, a sixth is one too many.
    for _ in 0..6 {
        server.push(Reply::redirect(307, "/loop"));
    }
    assert_eq!(kept(store.refresh(&source).await), "more than 5 redirects");
    assert_eq!(server.received().len(), 4 + 6);
    assert_eq!(server.pending(), 0);

    server.push(Reply::status(302));
    let reason = kept(store.refresh(&source).await);
    assert!(reason.contains("without a Location"), "{reason}");
}

#[tokio::test]
async fn an_unreachable_server_keeps_the_last_good_copy_across_restarts() {
    let dir = temp_dir();
    let server = TestServer::plain().await;
    let good = hosts(7);
    server.push(Reply::ok(good.clone()));
    let store = ListStore::new(dir.path().to_path_buf());
    assert!(matches!(
        store.refresh(&url_source("ads", server.url("/h"))).await,
        RefreshOutcome::Updated { rules: 7, .. }
    ));
    let good_meta = store.meta("ads").unwrap();
    drop(store);

    // A port nobody listens on: connection refused.
    let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let closed_addr = closed.local_addr().unwrap();
    drop(closed);

    // As after a reboot without internet: the filter is built from the copy.
    let store = ListStore::new(dir.path().to_path_buf());
    assert_eq!(
        std::fs::read_to_string(store.current("ads").unwrap()).unwrap(),
        good
    );
    let source = url_source("ads", format!("http://{closed_addr}/h"));
    let reason = kept(store.refresh(&source).await);
    assert!(
        reason.starts_with(&format!("cannot connect to {closed_addr}: ")),
        "{reason}"
    );
    assert_kept(&store, "ads", &good, &good_meta, &reason);
    assert_eq!(files(dir.path()), ["ads.list", "ads.meta.json"]);
}

#[tokio::test]
async fn a_silent_server_times_out() {
    let dir = temp_dir();
    let store = ListStore::new(dir.path().to_path_buf());
    let server = TestServer::plain().await;
    let mut source = url_source("ads", server.url("/h"));
    source.timeout = Duration::from_millis(300);
    server.push(Reply::ok(hosts(2)));
    assert!(matches!(
        store.refresh(&source).await,
        RefreshOutcome::Updated { .. }
    ));
    let good_meta = store.meta("ads").unwrap();

    server.push(Reply::ok("").framing(Framing::Stall));
    let started = std::time::Instant::now();
    let reason = kept(store.refresh(&source).await);
    assert_eq!(reason, "timed out after 300ms");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_kept(&store, "ads", &hosts(2), &good_meta, &reason);
    assert_eq!(files(dir.path()), ["ads.list", "ads.meta.json"]);
}

#[tokio::test]
async fn a_broken_local_file_keeps_the_last_good_copy() {
    let dir = temp_dir();
    let store = ListStore::new(dir.path().join("store"));
    let file = dir.path().join("local.txt");
    let mut source = ListSource::new("local", Location::File(file.clone())).unwrap();
    source.max_bytes = 4096;

    let reason = kept(store.refresh(&source).await);
    assert!(
        reason.starts_with(&format!("cannot read {}: ", file.display())),
        "{reason}"
    );
    assert!(store.current("local").is_none());

    let good = "# mine\nblocked.example\n||tracker.example^\n0.0.0.0 ads.example\n";
    std::fs::write(&file, good).unwrap();
    assert_eq!(
        store.refresh(&source).await,
        RefreshOutcome::Updated {
            rules: 3,
            previous_rules: None,
            malformed: 0
        }
    );
    assert_eq!(store.refresh(&source).await, RefreshOutcome::Unchanged);
    let good_meta = store.meta("local").unwrap();
    assert_eq!(good_meta.hash, hash(good.as_bytes()));
    assert_eq!(
        (good_meta.etag.as_deref(), good_meta.last_error.as_deref()),
        (None, None)
    );

    // A bad edit: mostly not rules.
    std::fs::write(&file, "blocked.example\nwhat is this\n?? ??\n").unwrap();
    let reason = kept(store.refresh(&source).await);
    assert!(
        reason.starts_with("not a list: 2 of 3 lines malformed"),
        "{reason}"
    );
    assert_kept(&store, "local", good, &good_meta, &reason);

    std::fs::write(&file, vec![b'#'; 5000]).unwrap();
    let reason = kept(store.refresh(&source).await);
    assert_eq!(reason, "larger than 4096 bytes");
    assert_kept(&store, "local", good, &good_meta, &reason);

    std::fs::remove_file(&file).unwrap();
    let reason = kept(store.refresh(&source).await);
    assert!(reason.starts_with("cannot read"), "{reason}");
    assert_kept(&store, "local", good, &good_meta, &reason);

    let fixed = format!("{good}more.example\n");
    std::fs::write(&file, &fixed).unwrap();
    assert_eq!(
        store.refresh(&source).await,
        RefreshOutcome::Updated {
            rules: 4,
            previous_rules: Some(3),
            malformed: 0
        }
    );
    assert_eq!(
        std::fs::read_to_string(store.current("local").unwrap()).unwrap(),
        fixed
    );
    assert_eq!(
        files(&dir.path().join("store")),
        ["local.list", "local.meta.json"]
    );
}

#[tokio::test]
async fn lost_metadata_is_rebuilt_from_the_stored_copy() {
    let dir = temp_dir();
    let store = ListStore::new(dir.path().to_path_buf());
    let server = TestServer::plain().await;
    let source = url_source("ads", server.url("/h"));
    let good = hosts(10);
    server.push(Reply::ok(good.clone()).header("ETag", "\"e\""));
    store.refresh(&source).await;
    std::fs::remove_file(dir.path().join("ads.meta.json")).unwrap();
    // Leftovers of a crash while writing.
    std::fs::write(dir.path().join(".ads.1.0.tmp"), "half a li").unwrap();

    server.push(Reply::ok(hosts(3)));
    assert_eq!(
        kept(store.refresh(&source).await),
        "shrank from 10 to 3 rules, more than 50%"
    );
    // Without metadata there is no validator to send.
    assert_eq!(server.received()[1].header("if-none-match"), None);
    let meta = store.meta("ads").unwrap();
    assert_eq!((meta.rules, meta.hash.clone()), (10, hash(good.as_bytes())));
    assert_eq!(files(dir.path()), ["ads.list", "ads.meta.json"]);
}

/// A self-signed certificate for 127.0.0.1 and localhost, its PEM written
/// to `dir`, and an acceptor serving it.
fn tls_acceptor(dir: &Path) -> (TlsAcceptor, std::path::PathBuf) {
    let certified =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
            .unwrap();
    let ca_file = dir.join("ca.pem");
    std::fs::write(&ca_file, certified.cert.pem()).unwrap();
    let cert: CertificateDer<'static> = certified.cert.der().clone();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
        certified.signing_key.serialize_der(),
    ));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)
        .unwrap();
    (TlsAcceptor::from(Arc::new(config)), ca_file)
}

#[tokio::test]
async fn https_with_a_private_ca() {
    let dir = temp_dir();
    let (acceptor, ca_file) = tls_acceptor(dir.path());
    let store = ListStore::new(dir.path().join("lists"));
    let server = TestServer::tls(acceptor).await;
    let list = hosts(6);
    server.push(Reply::ok(list.clone()).header("ETag", "\"tls\""));
    let mut source = url_source("secure", server.url("/hosts.txt"));
    source.location = Location::Url {
        url: server.url("/hosts.txt"),
        ca_file: Some(ca_file.clone()),
    };
    assert_eq!(
        store.refresh(&source).await,
        RefreshOutcome::Updated {
            rules: 6,
            previous_rules: None,
            malformed: 0
        }
    );
    assert_eq!(
        std::fs::read_to_string(store.current("secure").unwrap()).unwrap(),
        list
    );
    let received = server.received();
    assert_eq!(received[0].header("host"), Some(&*server.addr.to_string()));

    // Without the CA the certificate is not trusted, and nothing is stored.
    let untrusting = url_source("untrusting", server.url("/hosts.txt"));
    let reason = kept(store.refresh(&untrusting).await);
    assert!(
        reason.starts_with("TLS handshake with 127.0.0.1 failed: ")
            && reason.to_lowercase().contains("certificate"),
        "{reason}"
    );
    assert!(store.current("untrusting").is_none());
    assert_eq!(server.received().len(), 1, "no request without trust");

    // An https list must not be redirected to plain http.
    server.push(Reply::redirect(302, "http://127.0.0.1:9/hosts.txt"));
    let reason = kept(store.refresh(&source).await);
    assert_eq!(
        reason,
        format!(
            "refusing the redirect from {} to plain http http://127.0.0.1:9/hosts.txt",
            server.url("/hosts.txt")
        )
    );

    // An unusable CA file is reported as such.
    std::fs::write(&ca_file, "not a certificate\n").unwrap();
    let reason = kept(store.refresh(&source).await);
    assert!(
        reason.starts_with(&format!("CA file {}: ", ca_file.display())),
        "{reason}"
    );
    assert_eq!(
        std::fs::read_to_string(store.current("secure").unwrap()).unwrap(),
        list
    );
    assert_eq!(
        files(&dir.path().join("lists")),
        ["secure.list", "secure.meta.json", "untrusting.meta.json"]
    );
}

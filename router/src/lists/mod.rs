//! Filter list sources: local files and HTTP(S) URLs, fetched with
//! conditional requests, validated, and kept on disk as the last good copy.
//!
//! ```text
//!  source ──fetch──▶ <dir>/.<name>.<pid>.<n>.tmp ──sniff, parse, judge──▶ rename
//!                     (streamed, size-bounded,                        over <dir>/<name>.list
//!                      hashed on the way)                             + <dir>/<name>.meta.json
//! ```
//!
//! A candidate replaces the stored copy only when it passes every check, so
//! a boot without internet, a dead mirror, a captive portal's HTML, or a
//! list that lost most of its rules overnight all leave the filter built
//! from the last good copy, and the reason is kept in the metadata.

mod http;
mod store;
mod url;
mod validate;

use std::collections::HashMap;
use std::fmt;
use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use tracing::{debug, info, warn};
use xxhash_rust::xxh3::Xxh3Default;

use self::http::{Download, Fetched, Validators};
use self::store::{TempFile, remove_stale_temps, write_atomic};
use self::url::{HttpUrl, UrlError};
use self::validate::{inspect, judge};

/// A new copy with fewer than (100 - this)% of the previous rules is refused.
pub const DEFAULT_MAX_SHRINK_PERCENT: u8 = 50;
/// Larger downloads and files are refused.
pub const DEFAULT_MAX_BYTES: u64 = 64 * 1024 * 1024;
/// The bound on a whole download, redirects included.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// List names become file names; this leaves room for the suffixes within
/// every file system's 255-byte limit.
pub const MAX_LIST_NAME_LEN: usize = 128;

/// Whether `name` can name a list: 1 to [`MAX_LIST_NAME_LEN`] ASCII
/// letters, digits, `-` and `_`, since it becomes a file name.
pub fn valid_list_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_LIST_NAME_LEN
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Why a list source cannot be set up.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ListError {
    #[error(
        "list name {0:?} is not valid: use 1 to {MAX_LIST_NAME_LEN} letters, digits, '-' or '_' (it names the list's files)"
    )]
    InvalidName(String),
    #[error("list {name}: {reason}")]
    InvalidUrl { name: String, reason: String },
}

/// Where a list comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    File(PathBuf),
    Url {
        url: String,
        /// Extra PEM roots, trusted besides the web PKI.
        ca_file: Option<PathBuf>,
    },
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::File(path) => write!(f, "{}", path.display()),
            Location::Url { url, .. } => f.write_str(url),
        }
    }
}

/// One configured list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListSource {
    pub name: String,
    pub location: Location,
    /// Domain rules match the name only, not its subdomains.
    pub exact: bool,
    /// A new copy with fewer than (100 - this)% of the previous rules is
    /// refused; 100 disables the check.
    pub max_shrink_percent: u8,
    pub max_bytes: u64,
    /// Bounds a download as a whole; local files are not bounded.
    pub timeout: Duration,
}

impl ListSource {
    /// A source with the default limits, after checking its name and URL.
    pub fn new(name: impl Into<String>, location: Location) -> Result<Self, ListError> {
        let name = name.into();
        if !valid_list_name(&name) {
            return Err(ListError::InvalidName(name));
        }
        if let Location::Url { url, .. } = &location {
            HttpUrl::parse(url).map_err(|e| ListError::InvalidUrl {
                name: name.clone(),
                reason: e.to_string(),
            })?;
        }
        Ok(ListSource {
            name,
            location,
            exact: false,
            max_shrink_percent: DEFAULT_MAX_SHRINK_PERCENT,
            max_bytes: DEFAULT_MAX_BYTES,
            timeout: DEFAULT_TIMEOUT,
        })
    }
}

/// What is known about a list: its last good copy, and the last attempt.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ListMeta {
    pub etag: Option<String>,
    pub last_modified: Option<String>,
    /// When the stored copy was written (ms since the epoch); 0 while
    /// there has never been a good copy.
    pub fetched_at_ms: i64,
    /// When the last refresh was attempted, whatever its outcome.
    pub checked_at_ms: i64,
    pub rules: u64,
    pub malformed: u64,
    pub bytes: u64,
    /// xxh3-128 of the content, 32 hex digits; empty without a good copy.
    pub hash: String,
    /// Why the last attempt kept the stored copy; `None` after a success.
    pub last_error: Option<String>,
    /// Where the stored copy came from (a path or URL). When the operator
    /// points the list elsewhere, the new source's first copy is not held
    /// to the old one's rule count or validators.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

impl ListMeta {
    fn without_copy() -> Self {
        ListMeta {
            etag: None,
            last_modified: None,
            fetched_at_ms: 0,
            checked_at_ms: 0,
            rules: 0,
            malformed: 0,
            bytes: 0,
            hash: String::new(),
            last_error: None,
            source: None,
        }
    }

    /// Whether this describes a stored copy, not only failed attempts.
    fn describes_copy(&self) -> bool {
        !self.hash.is_empty()
    }
}

/// What a refresh did.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum RefreshOutcome {
    /// 304 Not Modified, or the same content as the stored copy.
    Unchanged,
    /// The stored copy was replaced (or created).
    Updated {
        rules: u64,
        previous_rules: Option<u64>,
        malformed: u64,
    },
    /// The previous copy was kept (or none existed), and why.
    Kept { reason: String },
}

impl fmt::Display for RefreshOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RefreshOutcome::Unchanged => f.write_str("unchanged"),
            RefreshOutcome::Updated {
                rules,
                previous_rules,
                malformed,
            } => {
                write!(f, "updated: {rules} rules")?;
                if let Some(previous) = previous_rules {
                    write!(f, " (was {previous})")?;
                }
                if *malformed > 0 {
                    write!(f, ", {malformed} malformed lines skipped")?;
                }
                Ok(())
            }
            RefreshOutcome::Kept { reason } => write!(f, "kept the previous copy: {reason}"),
        }
    }
}

/// Why a candidate did not replace the stored copy. Its text is the
/// `reason` users see.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Refusal {
    #[error("{0}")]
    InvalidName(ListError),
    #[error(transparent)]
    Url(#[from] UrlError),
    #[error("cannot resolve {host}: {source}")]
    Resolve { host: String, source: io::Error },
    #[error("{host} has no addresses")]
    NoAddress { host: String },
    #[error("cannot connect to {target}: {source}")]
    Connect { target: String, source: io::Error },
    #[error("{host:?} cannot be checked against a certificate")]
    ServerName { host: String },
    #[error("TLS handshake with {host} failed: {source}")]
    Tls { host: String, source: io::Error },
    #[error("CA file {}: {reason}", path.display())]
    CaFile { path: PathBuf, reason: String },
    #[error("TLS setup failed: {0}")]
    TlsConfig(String),
    #[error("cannot build the request for {url}: {reason}")]
    Request { url: String, reason: String },
    #[error("HTTP exchange with {host} failed: {detail}")]
    Http { host: String, detail: String },
    #[error("HTTP {status} from {url}")]
    Status { status: String, url: String },
    #[error("HTTP 304 Not Modified, but there is no stored copy")]
    NotModifiedWithoutCopy,
    #[error("HTTP {status} redirect from {url} without a Location")]
    RedirectWithoutLocation { status: u16, url: String },
    #[error("more than {} redirects", http::MAX_REDIRECTS)]
    TooManyRedirects,
    #[error("refusing the redirect from {from} to plain http {to}")]
    Downgrade { from: String, to: String },
    #[error("sent compressed ({encoding}) although uncompressed was asked for")]
    Encoded { encoding: String },
    #[error("larger than {max} bytes")]
    TooLarge { max: u64 },
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    #[error("cannot read {}: {source}", path.display())]
    ReadSource { path: PathBuf, source: io::Error },
    #[error("cannot write the downloaded copy: {0}")]
    Write(io::Error),
    #[error("cannot check the downloaded copy {}: {source}", path.display())]
    Inspect { path: PathBuf, source: io::Error },
    #[error("cannot store the list in {}: {source}", dir.display())]
    Store { dir: PathBuf, source: io::Error },
    #[error("the list check stopped unexpectedly: {0}")]
    Task(String),
    #[error("binary file, not a list")]
    Binary,
    #[error("an HTML page, not a list")]
    Html,
    #[error("not a list: {malformed} of {lines} lines malformed{samples}")]
    Malformed {
        malformed: u64,
        lines: u64,
        /// Ready to append: empty, or ` (line 3: "…": reason; …)`.
        samples: String,
    },
    #[error("not a list: none of its {lines} lines is a rule")]
    NoRules { lines: u64 },
    #[error("empty: no rules, while the previous copy had {previous}")]
    Empty { previous: u64 },
    #[error("shrank from {previous} to {rules} rules, more than {percent}%")]
    Shrank {
        previous: u64,
        rules: u64,
        percent: u8,
    },
}

impl From<tokio::task::JoinError> for Refusal {
    fn from(e: tokio::task::JoinError) -> Self {
        Refusal::Task(e.to_string())
    }
}

/// The directory of stored lists, e.g. `/var/lib/router/lists`.
#[derive(Debug)]
pub struct ListStore {
    dir: PathBuf,
    /// One refresh of a list at a time, so the metadata of concurrent ones
    /// cannot interleave; different lists refresh in parallel.
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl ListStore {
    /// A store in `dir`, created on the first refresh.
    pub fn new(dir: PathBuf) -> Self {
        ListStore {
            dir,
            locks: Mutex::new(HashMap::new()),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Path of the last good copy of a list, if any (what the filter is
    /// built from).
    pub fn current(&self, name: &str) -> Option<PathBuf> {
        if !valid_list_name(name) {
            return None;
        }
        let path = self.list_path(name);
        path.is_file().then_some(path)
    }

    /// Metadata of the last good copy and of the last attempt.
    pub fn meta(&self, name: &str) -> Option<ListMeta> {
        if !valid_list_name(name) {
            return None;
        }
        read_meta(&self.meta_path(name))
    }

    /// Fetches (conditionally), validates and, only if valid, atomically
    /// replaces the stored copy.
    pub async fn refresh(&self, source: &ListSource) -> RefreshOutcome {
        let name = source.name.as_str();
        if !valid_list_name(name) {
            let reason = Refusal::InvalidName(ListError::InvalidName(name.to_owned())).to_string();
            warn!(list = name, %reason, "filter list not refreshed");
            return RefreshOutcome::Kept { reason };
        }
        let lock = self.lock(name);
        let _guard = lock.lock().await;
        let previous = self.previous(source).await;
        match self.try_refresh(source, previous.as_ref()).await {
            Ok(outcome) => outcome,
            Err(refusal) => {
                let reason = refusal.to_string();
                warn!(
                    list = name,
                    source = %source.location,
                    %reason,
                    kept_previous = previous.is_some(),
                    "filter list refresh refused; keeping the last good copy"
                );
                self.record_failure(name, previous, &reason).await;
                RefreshOutcome::Kept { reason }
            }
        }
    }

    fn list_path(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.list"))
    }

    fn meta_path(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.meta.json"))
    }

    fn lock(&self, name: &str) -> Arc<tokio::sync::Mutex<()>> {
        // Only plain map insertions happen under this lock: a panic cannot
        // leave it inconsistent.
        let mut locks = self.locks.lock().unwrap_or_else(PoisonError::into_inner);
        locks.entry(name.to_owned()).or_default().clone()
    }

    /// The metadata of the stored copy, rebuilt from the copy itself when
    /// the metadata is missing or unreadable (a crash between the two
    /// renames, or a copy put there by hand).
    async fn previous(&self, source: &ListSource) -> Option<ListMeta> {
        let list = self.list_path(&source.name);
        let meta = self.meta_path(&source.name);
        let exact = source.exact;
        let name = source.name.clone();
        let found = tokio::task::spawn_blocking(move || {
            if !list.is_file() {
                return None;
            }
            if let Some(meta) = read_meta(&meta).filter(ListMeta::describes_copy) {
                return Some(meta);
            }
            match describe_copy(&list, exact) {
                Ok(meta) => {
                    info!(list = name, rules = meta.rules, "rebuilt the metadata of a stored filter list");
                    Some(meta)
                }
                Err(reason) => {
                    warn!(list = name, %reason, "the stored copy of a filter list is unusable; treating it as absent");
                    None
                }
            }
        })
        .await;
        found.unwrap_or_default()
    }

    async fn try_refresh(
        &self,
        source: &ListSource,
        previous: Option<&ListMeta>,
    ) -> Result<RefreshOutcome, Refusal> {
        let name = source.name.clone();
        let dir = self.dir.clone();
        let (temp, file) = tokio::task::spawn_blocking(move || {
            std::fs::create_dir_all(&dir)?;
            remove_stale_temps(&dir, &name);
            TempFile::create(&dir, &name)
        })
        .await?
        .map_err(|source| Refusal::Store {
            dir: self.dir.clone(),
            source,
        })?;

        let location = source.location.to_string();
        // Metadata rebuilt from a copy does not know its source: it is
        // assumed to be the configured one, which keeps every check.
        let same_source =
            previous.filter(|meta| meta.source.as_deref().is_none_or(|s| s == location));
        if previous.is_some() && same_source.is_none() {
            info!(list = source.name, source = %location, "filter list source changed");
        }

        let fetched = match &source.location {
            Location::File(path) => {
                let path = path.clone();
                let max_bytes = source.max_bytes;
                tokio::task::spawn_blocking(move || copy_file(&path, file, max_bytes)).await??
            }
            Location::Url { url, ca_file } => {
                let conditional = same_source.map(|meta| Validators {
                    etag: meta.etag.clone(),
                    last_modified: meta.last_modified.clone(),
                });
                let download = Download {
                    url,
                    ca_file: ca_file.as_deref(),
                    conditional: conditional.as_ref(),
                    max_bytes: source.max_bytes,
                };
                let mut file = tokio::fs::File::from_std(file);
                tokio::time::timeout(source.timeout, download.run(&mut file))
                    .await
                    .map_err(|_| Refusal::Timeout(source.timeout))??
            }
        };

        let now = now_ms();
        let (validators, bytes, hash) = match fetched {
            Fetched::NotModified(validators) => {
                let Some(previous) = same_source else {
                    return Err(Refusal::NotModifiedWithoutCopy);
                };
                let mut meta = previous.clone();
                // A 304 may carry fresher validators; absent ones stay.
                meta.etag = validators.etag.or(meta.etag);
                meta.last_modified = validators.last_modified.or(meta.last_modified);
                meta.source = Some(location);
                return Ok(self.unchanged(source, meta, now).await);
            }
            Fetched::Body {
                validators,
                bytes,
                hash,
            } => (validators, bytes, format!("{hash:032x}")),
        };

        if let Some(previous) = previous
            && previous.hash == hash
        {
            let mut meta = previous.clone();
            meta.etag = validators.etag;
            meta.last_modified = validators.last_modified;
            meta.source = Some(location);
            return Ok(self.unchanged(source, meta, now).await);
        }

        let path = temp.path().to_path_buf();
        let exact = source.exact;
        let inspection = tokio::task::spawn_blocking(move || inspect(&path, exact)).await??;
        judge(
            &inspection,
            same_source.map(|meta| meta.rules),
            source.max_shrink_percent,
        )?;

        let meta = ListMeta {
            etag: validators.etag,
            last_modified: validators.last_modified,
            fetched_at_ms: now,
            checked_at_ms: now,
            rules: inspection.summary.rules,
            malformed: inspection.summary.malformed,
            bytes,
            hash,
            last_error: None,
            source: Some(location),
        };
        let dir = self.dir.clone();
        let list_path = self.list_path(&source.name);
        tokio::task::spawn_blocking(move || temp.persist(&list_path))
            .await?
            .map_err(|source| Refusal::Store {
                dir: dir.clone(),
                source,
            })?;
        // The copy is in place from here on: a failure to record its
        // metadata must not report it as kept.
        if let Err(e) = self.write_meta(&source.name, &meta).await {
            warn!(list = source.name, error = %e, "filter list updated, but its metadata could not be written");
            let _ = tokio::fs::remove_file(self.meta_path(&source.name)).await;
        }
        let previous_rules = previous.map(|meta| meta.rules);
        info!(
            list = source.name,
            source = %source.location,
            rules = meta.rules,
            previous_rules,
            malformed = meta.malformed,
            bytes,
            "filter list updated"
        );
        Ok(RefreshOutcome::Updated {
            rules: meta.rules,
            previous_rules,
            malformed: meta.malformed,
        })
    }

    async fn unchanged(&self, source: &ListSource, mut meta: ListMeta, now: i64) -> RefreshOutcome {
        meta.checked_at_ms = now;
        meta.last_error = None;
        if let Err(e) = self.write_meta(&source.name, &meta).await {
            warn!(list = source.name, error = %e, "cannot record a filter list check");
        }
        debug!(list = source.name, source = %source.location, "filter list unchanged");
        RefreshOutcome::Unchanged
    }

    /// Records a refused attempt; the stored copy's own fields stay.
    async fn record_failure(&self, name: &str, previous: Option<ListMeta>, reason: &str) {
        let mut meta = previous.unwrap_or_else(ListMeta::without_copy);
        meta.checked_at_ms = now_ms();
        meta.last_error = Some(reason.to_owned());
        if let Err(e) = self.write_meta(name, &meta).await {
            warn!(list = name, error = %e, "cannot record a failed filter list refresh");
        }
    }

    async fn write_meta(&self, name: &str, meta: &ListMeta) -> io::Result<()> {
        let bytes = serde_json::to_vec_pretty(meta).map_err(io::Error::other)?;
        let dir = self.dir.clone();
        let dest = self.meta_path(name);
        let name = name.to_owned();
        tokio::task::spawn_blocking(move || {
            std::fs::create_dir_all(&dir)?;
            write_atomic(&dir, &name, &dest, &bytes)
        })
        .await
        .map_err(io::Error::other)?
    }
}

fn read_meta(path: &Path) -> Option<ListMeta> {
    let bytes = std::fs::read(path).ok()?;
    match serde_json::from_slice(&bytes) {
        Ok(meta) => Some(meta),
        Err(e) => {
            warn!(path = %path.display(), error = %e, "unreadable filter list metadata, ignored");
            None
        }
    }
}

/// Copies a local list into the temporary file, bounded and hashed like a
/// download.
fn copy_file(path: &Path, mut out: File, max_bytes: u64) -> Result<Fetched, Refusal> {
    let read_error = |source| Refusal::ReadSource {
        path: path.to_path_buf(),
        source,
    };
    let mut input = File::open(path).map_err(read_error)?;
    let mut hasher = Xxh3Default::new();
    let mut buffer = vec![0; 64 * 1024];
    let mut bytes: u64 = 0;
    loop {
        let n = match input.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(read_error(e)),
        };
        bytes = bytes.saturating_add(n as u64);
        if bytes > max_bytes {
            return Err(Refusal::TooLarge { max: max_bytes });
        }
        let chunk = &buffer[..n];
        hasher.update(chunk);
        out.write_all(chunk).map_err(Refusal::Write)?;
    }
    out.sync_all().map_err(Refusal::Write)?;
    Ok(Fetched::Body {
        validators: Validators::default(),
        bytes,
        hash: hasher.digest128(),
    })
}

/// Metadata for a stored copy that has none: hashed and parsed again.
fn describe_copy(path: &Path, exact: bool) -> Result<ListMeta, Refusal> {
    let read_error = |source| Refusal::ReadSource {
        path: path.to_path_buf(),
        source,
    };
    let mut file = File::open(path).map_err(read_error)?;
    let modified = file
        .metadata()
        .and_then(|m| m.modified())
        .map_or_else(|_| now_ms(), system_time_ms);
    let mut hasher = Xxh3Default::new();
    let mut buffer = vec![0; 64 * 1024];
    let mut bytes: u64 = 0;
    loop {
        match file.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => {
                bytes = bytes.saturating_add(n as u64);
                hasher.update(&buffer[..n]);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(read_error(e)),
        }
    }
    let inspection = inspect(path, exact)?;
    Ok(ListMeta {
        etag: None,
        last_modified: None,
        fetched_at_ms: modified,
        checked_at_ms: modified,
        rules: inspection.summary.rules,
        malformed: inspection.summary.malformed,
        bytes,
        hash: format!("{:032x}", hasher.digest128()),
        last_error: None,
        source: None,
    })
}

fn now_ms() -> i64 {
    system_time_ms(SystemTime::now())
}

fn system_time_ms(time: SystemTime) -> i64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)] // tests
mod tests;

//! The query log: a bounded in-memory ring for live viewing and SQLite for
//! history, both fed off the hot path.
//!
//! ```text
//!  logger thread ──append(Vec<Entry>)──▶ ring (Mutex, bounded, numbered)
//!                                   └──▶ bounded channel ──▶ writer thread ──▶ SQLite (WAL)
//!  recent()  ◀── ring                                              │
//!  search(), top() ◀── reader connection ◀─────────────────────────┘
//! ```
//!
//! [`QueryLog::append`] never touches the disk: it numbers the entries, puts
//! them in the ring and offers the batch to the writer thread. When the
//! writer falls behind the batch is dropped from the database side only
//! (counted in [`LogStats::dropped`]); the ring still shows it.
//!
//! The writer commits once per flush interval or per 10 000 entries, and it
//! alone enforces retention (at open, hourly, and when the size cap is hit)
//! and the size cap (deleting the oldest rows, then giving the pages back
//! with incremental vacuum).
//!
//! Sequence numbers are the rows' ids in the database, so they continue
//! across restarts and a `--follow` client keeps its place.
//!
//! # Errors at open
//!
//! [`QueryLog::open`] fails, naming the path, when the file cannot be created
//! or read, is not an SQLite database (corrupt), is some other program's
//! database, or has a schema version newer than this build knows. The file
//! is never deleted or changed in that case. The daemon is expected to log
//! the error and carry on with a ring-only log (`LogSettings { path: None,
//! .. }`), saying why in its status, so that live viewing still works while
//! the user decides what to do with the file.

mod entry;
mod query;
mod ring;
mod store;
mod writer;

#[cfg(test)]
mod tests;

use std::fmt;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{self, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::Connection;
use serde::Serialize;

pub use entry::{Entry, Outcome};
pub use query::{LogFilter, Top};

use crate::error::DnsError;
use ring::Ring;
use writer::{Msg, Shared, Writer};

/// How long [`QueryLog::flush`] waits for the writer before giving up.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(30);

/// Batches the channel to the writer holds.
const CHANNEL_BATCHES: usize = 1024;

/// Entries waiting for the writer at most, whatever the batch sizes; about
/// half a second at peak load. Beyond it batches are dropped, so a stalled
/// disk costs a bounded amount of memory.
const MAX_PENDING_ENTRIES: usize = 100_000;

/// Where and how much to log.
#[derive(Debug, Clone)]
pub struct LogSettings {
    /// The SQLite file; `None` keeps only the in-memory ring.
    pub path: Option<PathBuf>,
    /// Entries the ring holds.
    pub ring_entries: usize,
    /// Days of history kept; 0 keeps rows until the size cap removes them.
    pub retention_days: u32,
    /// Cap on the database file's size in bytes.
    pub max_bytes: u64,
    /// Longest an appended entry waits before it is committed.
    pub flush_interval: Duration,
}

impl Default for LogSettings {
    fn default() -> LogSettings {
        LogSettings {
            path: None,
            ring_entries: 10_000,
            retention_days: 7,
            max_bytes: 256 * 1024 * 1024,
            flush_interval: Duration::from_secs(1),
        }
    }
}

/// Counters for status pages. `appended` counts every entry given to
/// [`QueryLog::append`]; each then ends up `written` or `dropped` (channel
/// full or a failed write), or is still on its way.
#[derive(Debug, Clone, Default, Serialize)]
pub struct LogStats {
    pub appended: u64,
    pub written: u64,
    pub dropped: u64,
    /// Rows in the database.
    pub rows: u64,
    /// The database's size (pages in use or free, including those still in
    /// the WAL).
    pub db_bytes: u64,
    pub last_error: Option<String>,
}

/// Internal knobs, fixed in production and small in tests.
struct Tuning {
    channel_batches: usize,
    max_pending_entries: usize,
    #[cfg(test)]
    start_gate: Option<mpsc::Receiver<()>>,
}

impl Default for Tuning {
    fn default() -> Tuning {
        Tuning {
            channel_batches: CHANNEL_BATCHES,
            max_pending_entries: MAX_PENDING_ENTRIES,
            #[cfg(test)]
            start_gate: None,
        }
    }
}

/// The query log. Cheap to clone; the writer thread stops (after writing
/// everything it was given) when the last clone is dropped.
#[derive(Clone)]
pub struct QueryLog {
    inner: Arc<Inner>,
}

struct Inner {
    path: Option<PathBuf>,
    ring: Mutex<Ring>,
    /// `None` without a database.
    tx: Option<SyncSender<Msg>>,
    reader: Option<Mutex<Connection>>,
    writer: Option<JoinHandle<()>>,
    shared: Arc<Shared>,
    max_pending_entries: usize,
}

impl fmt::Debug for QueryLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ring = self.inner.ring();
        f.debug_struct("QueryLog")
            .field("path", &self.inner.path)
            .field("ring_len", &ring.len())
            .field("last_seq", &ring.last_seq())
            .finish_non_exhaustive()
    }
}

impl QueryLog {
    /// Opens the log: creates the file's directory, opens or creates the
    /// database, refills the ring with the newest rows and starts the writer
    /// thread, whose first job is retention. See the module documentation
    /// for what fails and what the daemon should do then.
    pub fn open(settings: LogSettings) -> Result<QueryLog, DnsError> {
        QueryLog::open_tuned(settings, Tuning::default())
    }

    fn open_tuned(settings: LogSettings, tuning: Tuning) -> Result<QueryLog, DnsError> {
        let shared = Arc::new(Shared::default());
        let Some(path) = settings.path.clone() else {
            return Ok(QueryLog {
                inner: Arc::new(Inner {
                    path: None,
                    ring: Mutex::new(Ring::new(settings.ring_entries, 0)),
                    tx: None,
                    reader: None,
                    writer: None,
                    shared,
                    max_pending_entries: tuning.max_pending_entries,
                }),
            });
        };
        let conn = store::open_writer(&path)?;
        let last_seq = store::max_seq(&conn).map_err(|e| store::error(&path, "cannot read", e))?;
        let ring = refill(&conn, &settings, last_seq, &path);
        let reader = store::open_reader(&path)?;
        let (tx, rx) = mpsc::sync_channel(tuning.channel_batches);
        #[cfg_attr(not(test), allow(unused_mut))]
        let mut writer = Writer::new(conn, path.clone(), &settings, Arc::clone(&shared));
        #[cfg(test)]
        {
            writer.start_gate = tuning.start_gate;
        }
        let handle = std::thread::Builder::new()
            .name("querylog-writer".into())
            .spawn(move || writer.run(rx))
            .map_err(|e| store::error(&path, "cannot start the writer thread", e))?;
        tracing::info!(
            path = %path.display(),
            last_seq,
            ring = ring.len(),
            "query log opened"
        );
        Ok(QueryLog {
            inner: Arc::new(Inner {
                path: Some(path),
                ring: Mutex::new(ring),
                tx: Some(tx),
                reader: Some(Mutex::new(reader)),
                writer: Some(handle),
                shared,
                max_pending_entries: tuning.max_pending_entries,
            }),
        })
    }

    /// Logs a batch. Never blocks on the disk: the ring always takes the
    /// entries; the database side drops the batch when the writer is behind.
    pub fn append(&self, entries: Vec<Entry>) {
        if entries.is_empty() {
            return;
        }
        let n = entries.len();
        let shared = &self.inner.shared;
        shared.appended.fetch_add(n as u64, Ordering::Relaxed);
        let entries: Vec<Arc<Entry>> = entries.into_iter().map(Arc::new).collect();
        // Numbering and sending under one lock keeps the channel in sequence
        // order, so rows go into the table in rowid order.
        let mut ring = self.inner.ring();
        let batch: Vec<(u64, Arc<Entry>)> = entries
            .into_iter()
            .map(|e| (ring.push(Arc::clone(&e)), e))
            .collect();
        let Some(tx) = &self.inner.tx else {
            return;
        };
        let pending = shared.pending.fetch_add(n, Ordering::Relaxed);
        let sent = pending + n <= self.inner.max_pending_entries
            && match tx.try_send(Msg::Batch(batch)) {
                Ok(()) => true,
                Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => false,
            };
        drop(ring);
        if sent {
            shared.dropping.store(false, Ordering::Relaxed);
            return;
        }
        shared.pending.fetch_sub(n, Ordering::Relaxed);
        shared.dropped.fetch_add(n as u64, Ordering::Relaxed);
        if !shared.dropping.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                path = ?self.inner.path,
                entries = n,
                "query log writer is behind; dropping batches from the database"
            );
        }
    }

    /// Up to `limit` of the newest ring entries matching `filter`, newest
    /// last, with their sequence numbers; only those numbered above
    /// `after_seq` if given. Also returns the newest sequence number handed
    /// out, which a `--follow` poller passes back as `after_seq`.
    pub fn recent(
        &self,
        filter: &LogFilter,
        after_seq: Option<u64>,
        limit: usize,
    ) -> (Vec<(u64, Entry)>, u64) {
        let (hits, newest) = {
            let ring = self.inner.ring();
            (ring.recent(filter, after_seq, limit), ring.last_seq())
        };
        // Entries are cloned outside the lock so that append never waits for
        // a large copy.
        let hits = hits
            .into_iter()
            .map(|(seq, e)| (seq, (*e).clone()))
            .collect();
        (hits, newest)
    }

    /// Up to `limit` entries matching `filter`, newest first, from the
    /// database after writing out everything appended so far. Without a
    /// database, from the ring.
    pub fn search(&self, filter: &LogFilter, limit: usize) -> Result<Vec<Entry>, DnsError> {
        if self.inner.reader.is_none() {
            let needle = filter.name_needle();
            let ring = self.inner.ring();
            let hits: Vec<Arc<Entry>> = ring
                .iter()
                .rev()
                .filter(|(_, e)| filter.matches_with(e, needle.as_deref()))
                .take(limit)
                .map(|(_, e)| Arc::clone(e))
                .collect();
            drop(ring);
            return Ok(hits.into_iter().map(|e| (*e).clone()).collect());
        }
        self.flush_for_reading();
        let Some(reader) = self.reader() else {
            return Ok(Vec::new());
        };
        query::search_db(&reader, filter, limit).map_err(|e| self.error("search failed", e))
    }

    /// Counts and top lists over the `window` ending at `now_ms`, i.e. the
    /// entries with `now_ms - window < time_ms <= now_ms`.
    pub fn top(&self, window: Duration, n: usize, now_ms: i64) -> Result<Top, DnsError> {
        if self.inner.reader.is_none() {
            let ring = self.inner.ring();
            return Ok(query::top_in_memory(
                ring.iter().map(|(_, e)| &**e),
                window,
                n,
                now_ms,
            ));
        }
        self.flush_for_reading();
        let Some(reader) = self.reader() else {
            return Ok(query::top_in_memory(std::iter::empty(), window, n, now_ms));
        };
        query::top_in_db(&reader, window, n, now_ms).map_err(|e| self.error("top failed", e))
    }

    /// Waits until everything appended so far (and not dropped) is in the
    /// database. Fails if the writer has stopped, takes over
    /// [`FLUSH_TIMEOUT`], or a write failed since the previous flush.
    pub fn flush(&self) -> Result<(), DnsError> {
        let Some(tx) = &self.inner.tx else {
            return Ok(());
        };
        let (reply_tx, reply_rx) = mpsc::sync_channel(1);
        tx.send(Msg::Flush(reply_tx))
            .map_err(|_| self.error("flush failed", "the writer thread has stopped"))?;
        match reply_rx.recv_timeout(FLUSH_TIMEOUT) {
            Ok(result) => result.map_err(|reason| self.error("flush failed", reason)),
            Err(RecvTimeoutError::Timeout) => Err(self.error(
                "flush failed",
                format!("the writer did not finish within {FLUSH_TIMEOUT:?}"),
            )),
            Err(RecvTimeoutError::Disconnected) => {
                Err(self.error("flush failed", "the writer thread has stopped"))
            }
        }
    }

    pub fn stats(&self) -> LogStats {
        let s = &self.inner.shared;
        LogStats {
            appended: s.appended.load(Ordering::Relaxed),
            written: s.written.load(Ordering::Relaxed),
            dropped: s.dropped.load(Ordering::Relaxed),
            rows: s.rows.load(Ordering::Relaxed),
            db_bytes: s.db_bytes.load(Ordering::Relaxed),
            last_error: s.last_error(),
        }
    }

    /// Flushes and drops this handle; when it is the last one, also stops
    /// the writer thread and waits for it. Dropping the last handle without
    /// `close` loses nothing either; `close` only makes the point explicit
    /// and flushes even while other handles live.
    pub fn close(self) {
        if let Err(e) = self.flush() {
            tracing::warn!(error = %e, "query log flush at close failed");
        }
    }

    /// The database file, if any.
    pub fn path(&self) -> Option<&std::path::Path> {
        self.inner.path.as_deref()
    }

    fn reader(&self) -> Option<std::sync::MutexGuard<'_, Connection>> {
        self.inner
            .reader
            .as_ref()
            .map(|r| r.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// Reads still answer when the writer is in trouble: what is already in
    /// the database is better than nothing, and the failure is in the stats.
    fn flush_for_reading(&self) {
        if let Err(e) = self.flush() {
            tracing::warn!(error = %e, "query log read without a complete flush");
        }
    }

    fn error(&self, what: &str, e: impl fmt::Display) -> DnsError {
        DnsError::QueryLog {
            path: self
                .inner
                .path
                .as_deref()
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
            reason: format!("{what}: {e}"),
        }
    }
}

impl Inner {
    fn ring(&self) -> std::sync::MutexGuard<'_, Ring> {
        self.ring.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        // The writer's connection should be the last to close: SQLite then
        // checkpoints and removes the WAL file.
        self.reader = None;
        // Shutdown comes after every batch in the channel, so the writer
        // commits them all before it exits.
        if let Some(tx) = self.tx.take() {
            let _ = tx.send(Msg::Shutdown);
        }
        if let Some(handle) = self.writer.take()
            && handle.join().is_err()
        {
            tracing::error!(path = ?self.path, "query log writer thread panicked");
        }
    }
}

/// The ring as it was before a restart: the newest rows within retention.
/// A failure here leaves the ring empty instead of failing the open, since
/// the database itself is usable.
fn refill(
    conn: &Connection,
    settings: &LogSettings,
    last_seq: u64,
    path: &std::path::Path,
) -> Ring {
    let mut ring = Ring::new(settings.ring_entries, last_seq);
    let since =
        writer::retention_cutoff(settings.retention_days, writer::now_ms()).unwrap_or(i64::MIN);
    match store::newest(conn, settings.ring_entries, since) {
        Ok(rows) => {
            for (seq, entry) in rows {
                ring.restore(seq, entry);
            }
        }
        Err(e) => tracing::warn!(
            path = %path.display(),
            error = %e,
            "cannot refill the query log ring from the database"
        ),
    }
    ring
}

//! The writer thread: the only code that writes the database. It batches
//! appended entries into transactions and enforces retention and the size
//! cap, so that neither ever costs the threads that append.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rusqlite::Connection;

use super::LogSettings;
use super::entry::Entry;
use super::store;

/// How often retention runs besides at open and when the size cap is hit.
const RETENTION_EVERY: Duration = Duration::from_secs(3600);

/// Rows per transaction at most; also what makes the writer commit before
/// the flush interval is up.
pub(crate) const BATCH_ROWS: usize = 10_000;

/// The size cap is enforced down to this share of it, so that trimming
/// happens in occasional large steps and not on every commit.
const TRIM_TO_PERCENT: u64 = 90;

/// Bound on trimming rounds per enforcement, in case deleting rows stops
/// freeing pages (it should not; the bound only keeps a bug from spinning).
const MAX_TRIM_ROUNDS: usize = 64;

pub(crate) enum Msg {
    Batch(Vec<(u64, Arc<Entry>)>),
    /// Commit everything received so far, then answer.
    Flush(SyncSender<Result<(), String>>),
    Shutdown,
}

/// Counters shared between the log's handles and the writer thread.
#[derive(Debug, Default)]
pub(crate) struct Shared {
    pub(crate) appended: AtomicU64,
    pub(crate) written: AtomicU64,
    pub(crate) dropped: AtomicU64,
    pub(crate) rows: AtomicU64,
    pub(crate) db_bytes: AtomicU64,
    /// Entries sent to the writer and not yet taken off the channel.
    pub(crate) pending: AtomicUsize,
    /// Whether the last batch was dropped, so that a run of drops logs once.
    pub(crate) dropping: AtomicBool,
    pub(crate) last_error: Mutex<Option<String>>,
}

impl Shared {
    pub(crate) fn last_error(&self) -> Option<String> {
        self.last_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Records an error; true when it differs from the previous one, so that
    /// a persistent failure is logged once and not on every commit.
    fn set_error(&self, message: &str) -> bool {
        let mut last = self
            .last_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let new = last.as_deref() != Some(message);
        if new {
            *last = Some(message.to_string());
        }
        new
    }
}

pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// The oldest `time_ms` retention keeps, or `None` when it keeps everything.
pub(crate) fn retention_cutoff(retention_days: u32, now_ms: i64) -> Option<i64> {
    (retention_days > 0).then(|| now_ms.saturating_sub(i64::from(retention_days) * 86_400_000))
}

pub(crate) struct Writer {
    conn: Connection,
    path: PathBuf,
    retention_days: u32,
    max_bytes: u64,
    flush_interval: Duration,
    batch_rows: usize,
    shared: Arc<Shared>,
    buf: Vec<(u64, Arc<Entry>)>,
    /// When the oldest buffered entry arrived.
    buffered_since: Option<Instant>,
    next_retention: Instant,
    rows: u64,
    /// A write failure not yet reported to a flush.
    unreported: Option<String>,
    /// Holds the thread before it starts, so tests can fill the channel.
    #[cfg(test)]
    pub(crate) start_gate: Option<Receiver<()>>,
}

impl Writer {
    pub(crate) fn new(
        conn: Connection,
        path: PathBuf,
        settings: &LogSettings,
        shared: Arc<Shared>,
    ) -> Writer {
        Writer {
            conn,
            path,
            retention_days: settings.retention_days,
            max_bytes: settings.max_bytes,
            flush_interval: settings.flush_interval,
            batch_rows: BATCH_ROWS,
            shared,
            buf: Vec::new(),
            buffered_since: None,
            next_retention: Instant::now(),
            rows: 0,
            unreported: None,
            #[cfg(test)]
            start_gate: None,
        }
    }

    pub(crate) fn run(mut self, rx: Receiver<Msg>) {
        #[cfg(test)]
        if let Some(gate) = self.start_gate.take() {
            let _ = gate.recv();
        }
        self.start();
        loop {
            let deadline = match self.buffered_since {
                Some(t) => (t + self.flush_interval).min(self.next_retention),
                None => self.next_retention,
            };
            match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(Msg::Batch(batch)) => {
                    self.shared
                        .pending
                        .fetch_sub(batch.len(), Ordering::Relaxed);
                    if self.buffered_since.is_none() {
                        self.buffered_since = Some(Instant::now());
                    }
                    self.buf.extend(batch);
                    if self.buf.len() >= self.batch_rows {
                        self.commit();
                    }
                }
                Ok(Msg::Flush(reply)) => {
                    self.commit();
                    let _ = reply.send(self.unreported.take().map_or(Ok(()), Err));
                }
                Ok(Msg::Shutdown) | Err(RecvTimeoutError::Disconnected) => {
                    self.commit();
                    break;
                }
                Err(RecvTimeoutError::Timeout) => {}
            }
            if self
                .buffered_since
                .is_some_and(|t| t.elapsed() >= self.flush_interval)
            {
                self.commit();
            }
            if Instant::now() >= self.next_retention {
                self.retention();
            }
        }
        tracing::debug!(path = %self.path.display(), "query log writer stopped");
    }

    /// Retention at open, done here so that opening a large log never makes
    /// the caller wait for a long delete.
    fn start(&mut self) {
        match store::count(&self.conn) {
            Ok(rows) => self.set_rows(rows),
            Err(e) => self.fail("cannot count rows", &e),
        }
        self.retention();
        self.enforce_cap();
    }

    fn set_rows(&mut self, rows: u64) {
        self.rows = rows;
        self.shared.rows.store(rows, Ordering::Relaxed);
    }

    fn fail(&mut self, what: &str, e: &dyn std::fmt::Display) {
        let message = format!("{what}: {e}");
        if self.shared.set_error(&message) {
            tracing::warn!(path = %self.path.display(), error = %message, "query log write failed");
        } else {
            tracing::debug!(path = %self.path.display(), error = %message, "query log write failed");
        }
        self.unreported = Some(message);
    }

    /// Writes the buffer, one transaction per `batch_rows`.
    fn commit(&mut self) {
        self.buffered_since = None;
        if self.buf.is_empty() {
            return;
        }
        let buf = std::mem::take(&mut self.buf);
        for chunk in buf.chunks(self.batch_rows) {
            let n = chunk.len() as u64;
            match store::insert(&mut self.conn, chunk) {
                Ok(()) => {
                    self.shared.written.fetch_add(n, Ordering::Relaxed);
                    self.set_rows(self.rows + n);
                }
                Err(e) => {
                    self.shared.dropped.fetch_add(n, Ordering::Relaxed);
                    self.fail("cannot write", &e);
                }
            }
        }
        // Keep the allocation for the next round.
        self.buf = buf;
        self.buf.clear();
        self.enforce_cap();
    }

    fn retention(&mut self) {
        self.next_retention = Instant::now() + RETENTION_EVERY;
        let Some(cutoff) = retention_cutoff(self.retention_days, now_ms()) else {
            return;
        };
        match store::delete_older(&self.conn, cutoff) {
            Ok(0) => {}
            Ok(deleted) => {
                self.set_rows(self.rows.saturating_sub(deleted));
                tracing::info!(
                    path = %self.path.display(),
                    deleted,
                    retention_days = self.retention_days,
                    "query log retention removed old rows"
                );
                self.shrink();
            }
            Err(e) => self.fail("retention failed", &e),
        }
    }

    /// Keeps the file under `max_bytes`: first by age, then by deleting the
    /// oldest rows down to [`TRIM_TO_PERCENT`] of the cap.
    fn enforce_cap(&mut self) {
        let allocated = match store::sizes(&self.conn) {
            Ok((allocated, _)) => allocated,
            Err(e) => return self.fail("cannot read the database size", &e),
        };
        self.shared.db_bytes.store(allocated, Ordering::Relaxed);
        if allocated <= self.max_bytes {
            return;
        }
        self.retention();
        let target = self.max_bytes / 100 * TRIM_TO_PERCENT;
        let mut trimmed = 0;
        for _ in 0..MAX_TRIM_ROUNDS {
            let used = match store::sizes(&self.conn) {
                Ok((_, used)) => used,
                Err(e) => return self.fail("cannot read the database size", &e),
            };
            if used <= target || self.rows == 0 {
                break;
            }
            // Rows take roughly equal space, so delete the share of rows that
            // is over target; rounding up and a floor keep rounds few.
            let over = u128::from(used - target);
            let share = u128::from(self.rows) * over / u128::from(used) + 1;
            let n = u64::try_from(share).unwrap_or(u64::MAX).max(100);
            match store::delete_oldest(&self.conn, n) {
                Ok(0) => break,
                Ok(deleted) => {
                    trimmed += deleted;
                    self.set_rows(self.rows.saturating_sub(deleted));
                }
                Err(e) => return self.fail("cannot trim", &e),
            }
        }
        self.shrink();
        if trimmed > 0 {
            tracing::info!(
                path = %self.path.display(),
                deleted = trimmed,
                max_bytes = self.max_bytes,
                db_bytes = self.shared.db_bytes.load(Ordering::Relaxed),
                "query log over its size cap; removed the oldest rows"
            );
        }
    }

    fn shrink(&mut self) {
        if let Err(e) = store::shrink(&self.conn) {
            self.fail("cannot shrink the database", &e);
        }
        if let Ok((allocated, _)) = store::sizes(&self.conn) {
            self.shared.db_bytes.store(allocated, Ordering::Relaxed);
        }
    }
}

//! The SQLite side: opening and validating the file, the schema, and the
//! writes the writer thread makes (inserts and the two kinds of trimming).

use std::fmt::Display;
use std::fmt::Write as _;
use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rusqlite::types::Type;
use rusqlite::{Connection, Row, params};

use super::entry::{Entry, Outcome};
use crate::error::DnsError;

/// The schema this build reads and writes, kept in `PRAGMA user_version`.
pub(crate) const SCHEMA_VERSION: i64 = 1;

/// How long a statement waits for the other connection (the writer for
/// readers, readers for the writer's checkpoints) before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Rows deleted per statement when trimming, so that one trim never turns
/// into a single huge transaction (and a WAL as large as the table).
const DELETE_CHUNK: u64 = 50_000;

/// The columns in the order [`entry_from_row`] reads them.
pub(crate) const COLUMNS: &str = "id, time_ms, client, zone, group_name, name, qtype, outcome, \
     rcode, list, rule, upstream, latency_us";

const INSERT: &str = "INSERT INTO queries (id, time_ms, client, zone, group_name, name, qtype, \
     outcome, rcode, list, rule, upstream, latency_us) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)";

// `id` is the log's sequence number, so that a reopened log continues its
// numbering and the newest rows are found by rowid without a sort. Indexes
// are few on purpose: every one costs on each insert.
const SCHEMA: &str = "
CREATE TABLE queries (
    id         INTEGER PRIMARY KEY,
    time_ms    INTEGER NOT NULL,
    client     TEXT NOT NULL,
    zone       TEXT,
    group_name TEXT NOT NULL,
    name       TEXT NOT NULL,
    qtype      TEXT NOT NULL,
    outcome    TEXT NOT NULL,
    rcode      TEXT NOT NULL,
    list       TEXT,
    rule       TEXT,
    upstream   TEXT,
    latency_us INTEGER NOT NULL
);
CREATE INDEX queries_time ON queries (time_ms);
CREATE INDEX queries_outcome_time ON queries (outcome, time_ms);
";

/// A [`DnsError::QueryLog`] naming `path`.
pub(crate) fn error(path: &Path, what: &str, e: impl Display) -> DnsError {
    DnsError::QueryLog {
        path: path.display().to_string(),
        reason: format!("{what}: {e}"),
    }
}

/// Opens (creating if needed) the database at `path` for writing, checks or
/// creates its schema. Never modifies a file that is not a query log.
pub(crate) fn open_writer(path: &Path) -> Result<Connection, DnsError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| error(path, "cannot create its directory", e))?;
    }
    let conn = Connection::open(path).map_err(|e| error(path, "cannot open", e))?;
    conn.busy_timeout(BUSY_TIMEOUT)
        .map_err(|e| error(path, "cannot configure", e))?;
    // SQLite opens lazily; this is the first read of the file, so garbage
    // shows up here as "file is not a database".
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .map_err(|e| error(path, "cannot read the database (corrupt or not SQLite?)", e))?;
    match version {
        0 => create_schema(&conn, path)?,
        SCHEMA_VERSION => {}
        v if v > SCHEMA_VERSION => {
            return Err(error(
                path,
                "unsupported schema",
                format!("version {v} is newer than this build's {SCHEMA_VERSION}"),
            ));
        }
        v => {
            return Err(error(
                path,
                "unsupported schema",
                format!("unknown version {v}"),
            ));
        }
    }
    configure(&conn, path)?;
    // Compiling the statements checks that a file claiming our version has
    // the columns we need, so a mismatch fails here and not on every write.
    conn.prepare_cached(INSERT)
        .and_then(|_| conn.prepare(&format!("SELECT {COLUMNS} FROM queries LIMIT 0")))
        .map_err(|e| error(path, "schema mismatch", e))?;
    Ok(conn)
}

fn create_schema(conn: &Connection, path: &Path) -> Result<(), DnsError> {
    let tables: i64 = conn
        .query_row("SELECT count(*) FROM sqlite_schema", [], |r| r.get(0))
        .map_err(|e| error(path, "cannot read the database (corrupt or not SQLite?)", e))?;
    if tables > 0 {
        return Err(error(
            path,
            "not a query log",
            "the database has tables but no query log schema version; refusing to change it",
        ));
    }
    // auto_vacuum only takes effect before the first table exists, and
    // without it deleted rows would never give disk space back.
    conn.pragma_update(None, "auto_vacuum", "INCREMENTAL")
        .map_err(|e| error(path, "cannot configure", e))?;
    conn.execute_batch(&format!(
        "BEGIN; {SCHEMA} PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;"
    ))
    .map_err(|e| {
        // Leave no half-open transaction behind on the connection.
        let _ = conn.execute_batch("ROLLBACK");
        error(path, "cannot create the schema", e)
    })
}

fn configure(conn: &Connection, path: &Path) -> Result<(), DnsError> {
    let mode: String = conn
        .pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))
        .map_err(|e| error(path, "cannot enable WAL", e))?;
    if !mode.eq_ignore_ascii_case("wal") {
        // Some file systems cannot do WAL; the log still works, only slower.
        tracing::warn!(path = %path.display(), mode, "query log database is not in WAL mode");
    }
    // NORMAL in WAL mode can lose the last commits on power loss but never
    // corrupts; for a query log that trade is right.
    conn.pragma_update(None, "synchronous", "NORMAL")
        .map_err(|e| error(path, "cannot configure", e))
}

/// A second connection for searches, so that they never wait for the writer
/// thread (WAL lets readers and the writer run at once).
pub(crate) fn open_reader(path: &Path) -> Result<Connection, DnsError> {
    let conn = Connection::open(path).map_err(|e| error(path, "cannot open", e))?;
    conn.busy_timeout(BUSY_TIMEOUT)
        .and_then(|_| conn.pragma_update(None, "query_only", true))
        .map_err(|e| error(path, "cannot configure", e))?;
    Ok(conn)
}

/// Reads a row selected with [`COLUMNS`].
pub(crate) fn entry_from_row(r: &Row<'_>) -> rusqlite::Result<(i64, Entry)> {
    let client: String = r.get(2)?;
    let client = client
        .parse::<IpAddr>()
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(2, Type::Text, Box::new(e)))?;
    let outcome: String = r.get(7)?;
    let outcome = Outcome::from_name(&outcome).ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(
            7,
            Type::Text,
            format!("unknown outcome {outcome:?}").into(),
        )
    })?;
    let entry = Entry {
        time_ms: r.get(1)?,
        client,
        zone: r.get(3)?,
        group: r.get(4)?,
        name: r.get(5)?,
        qtype: r.get(6)?,
        outcome,
        rcode: r.get(8)?,
        list: r.get(9)?,
        rule: r.get(10)?,
        upstream: r.get(11)?,
        latency_us: r.get(12)?,
    };
    Ok((r.get(0)?, entry))
}

/// The highest sequence number stored (0 when empty).
pub(crate) fn max_seq(conn: &Connection) -> rusqlite::Result<u64> {
    let id: Option<i64> = conn.query_row("SELECT max(id) FROM queries", [], |r| r.get(0))?;
    Ok(id.and_then(|id| u64::try_from(id).ok()).unwrap_or(0))
}

/// The newest `n` rows not older than `since_ms`, oldest first, with their
/// sequence numbers: what the ring held before a restart.
pub(crate) fn newest(
    conn: &Connection,
    n: usize,
    since_ms: i64,
) -> rusqlite::Result<Vec<(u64, Entry)>> {
    let mut stmt = conn.prepare(&format!(
        "SELECT {COLUMNS} FROM queries WHERE time_ms >= ?1 ORDER BY id DESC LIMIT ?2"
    ))?;
    let limit = i64::try_from(n).unwrap_or(i64::MAX);
    let mut rows = Vec::with_capacity(n.min(100_000));
    for row in stmt.query_map(params![since_ms, limit], entry_from_row)? {
        let (id, entry) = row?;
        rows.push((u64::try_from(id).unwrap_or(0), entry));
    }
    rows.reverse();
    Ok(rows)
}

pub(crate) fn count(conn: &Connection) -> rusqlite::Result<u64> {
    conn.query_row("SELECT count(*) FROM queries", [], |r| r.get(0))
}

/// Inserts `rows` in one transaction.
pub(crate) fn insert(conn: &mut Connection, rows: &[(u64, Arc<Entry>)]) -> rusqlite::Result<()> {
    let tx = conn.transaction()?;
    {
        let mut stmt = tx.prepare_cached(INSERT)?;
        let mut client = String::with_capacity(48);
        for (seq, e) in rows {
            let id = i64::try_from(*seq)
                .map_err(|err| rusqlite::Error::ToSqlConversionFailure(Box::new(err)))?;
            client.clear();
            // Writing into a String cannot fail.
            let _ = write!(client, "{}", e.client);
            stmt.execute(params![
                id,
                e.time_ms,
                client,
                e.zone,
                e.group,
                e.name,
                e.qtype,
                e.outcome.as_str(),
                e.rcode,
                e.list,
                e.rule,
                e.upstream,
                e.latency_us,
            ])?;
        }
    }
    tx.commit()
}

/// Deletes rows older than `before_ms`; returns how many.
pub(crate) fn delete_older(conn: &Connection, before_ms: i64) -> rusqlite::Result<u64> {
    let mut stmt = conn.prepare_cached(
        "DELETE FROM queries WHERE id IN \
         (SELECT id FROM queries WHERE time_ms < ?1 LIMIT ?2)",
    )?;
    let chunk = i64::try_from(DELETE_CHUNK).unwrap_or(i64::MAX);
    let mut total = 0;
    loop {
        let n = stmt.execute(params![before_ms, chunk])? as u64;
        total += n;
        if n < DELETE_CHUNK {
            return Ok(total);
        }
    }
}

/// Deletes the `n` oldest rows (by sequence); returns how many.
pub(crate) fn delete_oldest(conn: &Connection, n: u64) -> rusqlite::Result<u64> {
    let mut stmt = conn.prepare_cached(
        "DELETE FROM queries WHERE id IN (SELECT id FROM queries ORDER BY id LIMIT ?1)",
    )?;
    let mut total = 0;
    while total < n {
        let chunk = (n - total).min(DELETE_CHUNK);
        let deleted = stmt.execute([i64::try_from(chunk).unwrap_or(i64::MAX)])? as u64;
        total += deleted;
        if deleted < chunk {
            break;
        }
    }
    Ok(total)
}

/// Sizes of the database in bytes: `(allocated, in use)`. Allocated is the
/// file's logical size (including pages still only in the WAL); in use
/// leaves out free pages that incremental vacuum can give back.
pub(crate) fn sizes(conn: &Connection) -> rusqlite::Result<(u64, u64)> {
    let pages: u64 = conn.pragma_query_value(None, "page_count", |r| r.get(0))?;
    let free: u64 = conn.pragma_query_value(None, "freelist_count", |r| r.get(0))?;
    let size: u64 = conn.pragma_query_value(None, "page_size", |r| r.get(0))?;
    Ok((pages * size, pages.saturating_sub(free) * size))
}

/// Gives free pages back to the file system.
pub(crate) fn shrink(conn: &Connection) -> rusqlite::Result<()> {
    // The pragma frees one page per result row, so it has to be stepped to
    // the end (execute_batch would stop after the first).
    let mut stmt = conn.prepare("PRAGMA incremental_vacuum")?;
    let mut rows = stmt.query([])?;
    while rows.next()?.is_some() {}
    drop(rows);
    drop(stmt);
    // In WAL mode the main file is only truncated when a checkpoint copies
    // everything back; TRUNCATE also empties the WAL file. It is best effort:
    // a reader in the way leaves it partial, and the next trim retries.
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
}

//! The questions asked of the log: filters and top lists. Each has an
//! in-memory form (for the ring, and for a log without a database) and an SQL
//! form, and the two must agree.

use std::cmp::Reverse;
use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::time::Duration;

use rusqlite::types::Value;
use rusqlite::{Connection, params_from_iter};
use serde::{Deserialize, Serialize};

use super::entry::{Entry, Outcome};
use super::store::{COLUMNS, entry_from_row};

/// Which entries to show. Every field set narrows the result.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct LogFilter {
    pub client: Option<IpAddr>,
    pub zone: Option<String>,
    /// Only [`Outcome::Blocked`] entries.
    pub blocked: bool,
    /// A substring of the query name, case-insensitive; a trailing dot is
    /// ignored so that a pasted FQDN still matches.
    pub name: Option<String>,
    /// Inclusive lower bound on `time_ms`.
    pub since_ms: Option<i64>,
    /// Exclusive upper bound on `time_ms`.
    pub until_ms: Option<i64>,
}

impl LogFilter {
    /// Whether `entry` passes the filter.
    pub fn matches(&self, entry: &Entry) -> bool {
        self.matches_with(entry, self.name_needle().as_deref())
    }

    /// [`LogFilter::matches`] with the name needle computed once by the
    /// caller, for loops over many entries.
    pub(crate) fn matches_with(&self, entry: &Entry, needle: Option<&str>) -> bool {
        self.client.is_none_or(|c| entry.client == c)
            && self
                .zone
                .as_deref()
                .is_none_or(|z| entry.zone.as_deref() == Some(z))
            && (!self.blocked || entry.outcome == Outcome::Blocked)
            && needle.is_none_or(|n| entry.name.contains(n))
            && self.since_ms.is_none_or(|s| entry.time_ms >= s)
            && self.until_ms.is_none_or(|u| entry.time_ms < u)
    }

    /// The name filter as compared: stored names are lowercase without a
    /// trailing dot. `None` when it filters nothing.
    pub(crate) fn name_needle(&self) -> Option<String> {
        let name = self.name.as_deref()?;
        let name = match name.strip_suffix('.') {
            Some(stripped) if !stripped.is_empty() => stripped,
            _ => name,
        };
        (!name.is_empty()).then(|| name.to_ascii_lowercase())
    }

    /// The filter as an SQL `WHERE` clause (empty when it filters nothing)
    /// and its parameters, numbered from `?1`.
    pub(crate) fn sql_where(&self) -> (String, Vec<Value>) {
        let mut terms: Vec<String> = Vec::new();
        let mut params: Vec<Value> = Vec::new();
        let mut push = |sql: &str, value: Value| {
            params.push(value);
            terms.push(sql.replace('?', &format!("?{}", params.len())));
        };
        if let Some(client) = self.client {
            push("client = ?", Value::Text(client.to_string()));
        }
        if let Some(zone) = &self.zone {
            push("zone = ?", Value::Text(zone.clone()));
        }
        if self.blocked {
            push("outcome = ?", Value::Text(Outcome::Blocked.as_str().into()));
        }
        // instr, not LIKE: names may contain '_' and '%' is legal in labels.
        if let Some(needle) = self.name_needle() {
            push("instr(name, ?) > 0", Value::Text(needle));
        }
        if let Some(since) = self.since_ms {
            push("time_ms >= ?", Value::Integer(since));
        }
        if let Some(until) = self.until_ms {
            push("time_ms < ?", Value::Integer(until));
        }
        if terms.is_empty() {
            (String::new(), params)
        } else {
            (format!("WHERE {}", terms.join(" AND ")), params)
        }
    }
}

/// What the log saw over a window of time.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Top {
    pub window_secs: u64,
    pub queries: u64,
    pub blocked: u64,
    /// The most queried names, most first; ties by name.
    pub top_names: Vec<(String, u64)>,
    /// The most blocked names, most first; ties by name.
    pub top_blocked: Vec<(String, u64)>,
    /// The busiest clients, most first.
    pub top_clients: Vec<(IpAddr, u64)>,
}

/// The window `(now - window, now]` as bounds on `time_ms`.
pub(crate) fn window_bounds(window: Duration, now_ms: i64) -> (i64, i64) {
    let span = i64::try_from(window.as_millis()).unwrap_or(i64::MAX);
    (now_ms.saturating_sub(span), now_ms)
}

/// [`Top`] over entries held in memory.
pub(crate) fn top_in_memory<'a>(
    entries: impl Iterator<Item = &'a Entry>,
    window: Duration,
    n: usize,
    now_ms: i64,
) -> Top {
    let (after, upto) = window_bounds(window, now_ms);
    let mut top = Top {
        window_secs: window.as_secs(),
        queries: 0,
        blocked: 0,
        top_names: Vec::new(),
        top_blocked: Vec::new(),
        top_clients: Vec::new(),
    };
    let mut names: HashMap<&str, u64> = HashMap::new();
    let mut blocked: HashMap<&str, u64> = HashMap::new();
    let mut clients: HashMap<IpAddr, u64> = HashMap::new();
    for e in entries.filter(|e| e.time_ms > after && e.time_ms <= upto) {
        top.queries += 1;
        *names.entry(&e.name).or_default() += 1;
        *clients.entry(e.client).or_default() += 1;
        if e.outcome == Outcome::Blocked {
            top.blocked += 1;
            *blocked.entry(&e.name).or_default() += 1;
        }
    }
    top.top_names = most(names, n, |s| s.to_string());
    top.top_blocked = most(blocked, n, |s| s.to_string());
    top.top_clients = most(clients, n, |c| c);
    top
}

fn most<K: Ord + Hash, T>(
    counts: HashMap<K, u64>,
    n: usize,
    out: impl Fn(K) -> T,
) -> Vec<(T, u64)> {
    let mut v: Vec<(K, u64)> = counts.into_iter().collect();
    v.sort_unstable_by(|a, b| (Reverse(a.1), &a.0).cmp(&(Reverse(b.1), &b.0)));
    v.truncate(n);
    v.into_iter().map(|(k, c)| (out(k), c)).collect()
}

/// [`Top`] from the database.
pub(crate) fn top_in_db(
    conn: &Connection,
    window: Duration,
    n: usize,
    now_ms: i64,
) -> rusqlite::Result<Top> {
    let (after, upto) = window_bounds(window, now_ms);
    let limit = i64::try_from(n).unwrap_or(i64::MAX);
    let blocked = Outcome::Blocked.as_str();
    let count = |sql: &str, params: &[&dyn rusqlite::ToSql]| -> rusqlite::Result<u64> {
        conn.prepare_cached(sql)?.query_row(params, |r| r.get(0))
    };
    let queries = count(
        "SELECT count(*) FROM queries WHERE time_ms > ?1 AND time_ms <= ?2",
        &[&after, &upto],
    )?;
    let blocked_count = count(
        "SELECT count(*) FROM queries WHERE outcome = ?3 AND time_ms > ?1 AND time_ms <= ?2",
        &[&after, &upto, &blocked],
    )?;
    let mut top_names = Vec::new();
    let mut stmt = conn.prepare_cached(
        "SELECT name, count(*) AS c FROM queries WHERE time_ms > ?1 AND time_ms <= ?2 \
         GROUP BY name ORDER BY c DESC, name LIMIT ?3",
    )?;
    for row in stmt.query_map((after, upto, limit), |r| Ok((r.get(0)?, r.get(1)?)))? {
        top_names.push(row?);
    }
    let mut top_blocked = Vec::new();
    let mut stmt = conn.prepare_cached(
        "SELECT name, count(*) AS c FROM queries \
         WHERE outcome = ?4 AND time_ms > ?1 AND time_ms <= ?2 \
         GROUP BY name ORDER BY c DESC, name LIMIT ?3",
    )?;
    for row in stmt.query_map((after, upto, limit, blocked), |r| {
        Ok((r.get(0)?, r.get(1)?))
    })? {
        top_blocked.push(row?);
    }
    let mut top_clients = Vec::new();
    let mut stmt = conn.prepare_cached(
        "SELECT client, count(*) AS c FROM queries WHERE time_ms > ?1 AND time_ms <= ?2 \
         GROUP BY client ORDER BY c DESC, client LIMIT ?3",
    )?;
    for row in stmt.query_map((after, upto, limit), |r| {
        let text: String = r.get(0)?;
        let client = text.parse::<IpAddr>().map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
        })?;
        Ok((client, r.get(1)?))
    })? {
        top_clients.push(row?);
    }
    Ok(Top {
        window_secs: window.as_secs(),
        queries,
        blocked: blocked_count,
        top_names,
        top_blocked,
        top_clients,
    })
}

/// Matching rows from the database, newest first.
pub(crate) fn search_db(
    conn: &Connection,
    filter: &LogFilter,
    limit: usize,
) -> rusqlite::Result<Vec<Entry>> {
    let (clause, mut params) = filter.sql_where();
    params.push(Value::Integer(i64::try_from(limit).unwrap_or(i64::MAX)));
    let sql = format!(
        "SELECT {COLUMNS} FROM queries {clause} ORDER BY time_ms DESC, id DESC LIMIT ?{}",
        params.len()
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(params_from_iter(params), |r| {
        entry_from_row(r).map(|(_, e)| e)
    })?;
    rows.collect()
}

//! Query-log capture. The hot path only copies a few fixed-size fields and
//! the question's wire name into a per-batch buffer; a logger thread turns
//! batches into [`Entry`] values (strings, rule texts, zone and group
//! names) and hands them to the [`QueryLog`]. When the logger falls behind,
//! whole batches are dropped and counted rather than slowing answers down.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hickory_proto::rr::RecordType;
use tracing::warn;

use crate::filter::{Client, Filter, Match};
use crate::querylog::{Entry, Outcome, QueryLog};
use crate::stats::bump;

/// Batches queued for the logger thread before batches are dropped.
const QUEUE: usize = 1024;

/// Where workers send their records. Cheap to clone.
#[derive(Debug, Clone)]
pub struct LogSink {
    tx: SyncSender<LogBatch>,
    dropped: Arc<AtomicU64>,
}

impl LogSink {
    /// Starts the logger thread feeding `log`; it ends when every sink is
    /// dropped.
    pub fn start(log: QueryLog) -> std::io::Result<LogSink> {
        let (tx, rx) = std::sync::mpsc::sync_channel(QUEUE);
        std::thread::Builder::new()
            .name("dns-querylog".into())
            .spawn(move || run(rx, &log))?;
        Ok(LogSink {
            tx,
            dropped: Arc::new(AtomicU64::new(0)),
        })
    }

    /// Records dropped because the logger was behind.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Queues a batch; never blocks.
    pub fn send(&self, batch: LogBatch) {
        if batch.records.is_empty() {
            return;
        }
        let count = batch.records.len() as u64;
        match self.tx.try_send(batch) {
            Ok(()) => {}
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                bump(&self.dropped, count);
            }
        }
    }
}

/// One query, as captured.
#[derive(Debug, Clone)]
struct Record {
    client: IpAddr,
    who: Client,
    qtype: u16,
    outcome: Outcome,
    rcode: u8,
    /// Byte range of the question's name in [`LogBatch::names`].
    name: (u32, u8),
    /// The rule that decided, and the range of the name it matched (the
    /// question's, or a CNAME target's).
    matched: Option<(Match, (u32, u8))>,
    upstream: Option<Box<str>>,
    latency_us: u32,
}

/// Records of one worker batch (or one dispatcher event).
#[derive(Debug)]
pub struct LogBatch {
    filter: Arc<Filter>,
    time_ms: i64,
    records: Vec<Record>,
    names: Vec<u8>,
}

/// What to record about one query.
#[derive(Debug, Clone, Copy)]
pub struct Captured<'a> {
    pub client: IpAddr,
    pub who: Client,
    pub name_wire: &'a [u8],
    pub qtype: u16,
    pub outcome: Outcome,
    pub rcode: u8,
    /// The deciding rule and the wire name it matched.
    pub matched: Option<(Match, &'a [u8])>,
}

impl LogBatch {
    pub fn new(filter: Arc<Filter>) -> Self {
        LogBatch {
            filter,
            time_ms: now_ms(),
            records: Vec::new(),
            names: Vec::new(),
        }
    }

    pub fn push(&mut self, query: Captured<'_>, upstream: Option<&str>, latency: Duration) {
        let name = self.store(query.name_wire);
        let matched = query.matched.map(|(m, wire)| (m, self.store(wire)));
        self.records.push(Record {
            client: query.client,
            who: query.who,
            qtype: query.qtype,
            outcome: query.outcome,
            rcode: query.rcode,
            name,
            matched,
            upstream: upstream.map(Box::from),
            latency_us: u32::try_from(latency.as_micros()).unwrap_or(u32::MAX),
        });
    }

    /// Sets the latency of every record pushed since `from` (a worker learns
    /// it once its whole batch is sent).
    pub fn set_latency(&mut self, from: usize, latency: Duration) {
        let us = u32::try_from(latency.as_micros()).unwrap_or(u32::MAX);
        for record in self.records.iter_mut().skip(from) {
            record.latency_us = us;
        }
    }

    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    fn store(&mut self, wire: &[u8]) -> (u32, u8) {
        let start = u32::try_from(self.names.len()).unwrap_or(u32::MAX);
        let len = u8::try_from(wire.len()).unwrap_or(u8::MAX);
        self.names.extend_from_slice(&wire[..usize::from(len)]);
        (start, len)
    }

    fn name(&self, (start, len): (u32, u8)) -> &[u8] {
        let start = start as usize;
        self.names
            .get(start..start + usize::from(len))
            .unwrap_or(&[])
    }

    fn entries(&self) -> Vec<Entry> {
        let filter = &self.filter;
        self.records
            .iter()
            .map(|record| {
                let (list, rule) = match &record.matched {
                    Some((m, wire)) => (
                        filter
                            .set
                            .lists()
                            .get(usize::from(m.list))
                            .map(|l| l.name.clone()),
                        Some(m.rule_text(self.name(*wire), &filter.set)),
                    ),
                    None => (None, None),
                };
                Entry {
                    time_ms: self.time_ms,
                    client: record.client,
                    zone: filter.zone_name(record.who.zone).map(str::to_string),
                    group: filter.group(record.who.group).name.clone(),
                    name: dotted(self.name(record.name)),
                    qtype: RecordType::from(record.qtype).to_string(),
                    outcome: record.outcome,
                    rcode: rcode_name(record.rcode),
                    list,
                    rule,
                    upstream: record.upstream.as_deref().map(str::to_string),
                    latency_us: record.latency_us,
                }
            })
            .collect()
    }
}

fn run(rx: Receiver<LogBatch>, log: &QueryLog) {
    while let Ok(batch) = rx.recv() {
        log.append(batch.entries());
    }
    if let Err(error) = log.flush() {
        warn!(%error, "query log not flushed at shutdown");
    }
}

/// The mnemonic of an RCODE, as dig prints it.
fn rcode_name(rcode: u8) -> String {
    match rcode {
        0 => "NOERROR".into(),
        1 => "FORMERR".into(),
        2 => "SERVFAIL".into(),
        3 => "NXDOMAIN".into(),
        4 => "NOTIMP".into(),
        5 => "REFUSED".into(),
        other => format!("RCODE{other}"),
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// A wire name as dotted lowercase text without the trailing dot ("." for
/// the root); bytes outside printable ASCII are escaped as `\DDD`.
pub fn dotted(wire: &[u8]) -> String {
    let mut text = String::with_capacity(wire.len());
    let mut pos = 0;
    while let Some(&len) = wire.get(pos) {
        if len == 0 {
            break;
        }
        let label = wire.get(pos + 1..pos + 1 + usize::from(len)).unwrap_or(&[]);
        if !text.is_empty() {
            text.push('.');
        }
        for &b in label {
            if b.is_ascii_graphic() && b != b'.' && b != b'\\' {
                text.push(char::from(b.to_ascii_lowercase()));
            } else {
                text.push_str(&format!("\\{b:03}"));
            }
        }
        pos += 1 + usize::from(len);
    }
    if text.is_empty() {
        text.push('.');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_print_dotted() {
        assert_eq!(dotted(b"\x03www\x07Example\x03com\x00"), "www.example.com");
        assert_eq!(dotted(b"\x00"), ".");
        assert_eq!(dotted(b"\x03a b\x00"), "a\\032b");
    }
}

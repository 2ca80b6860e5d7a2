//! Time to the first blocked answer, measured from the client's side.
//!
//! The driver runs itself (`blocklist probe`) in the client namespace: it
//! asks one name every 10 ms over UDP and reports on stdout the first
//! answer of each kind, then `hit` at the first answer of the awaited
//! kind. The driver timestamps those lines as they arrive, against the
//! instant it spawned the server, so every server is timed the same way
//! by the same clock; a line through a pipe costs microseconds, well
//! under the 10 ms between queries.

use std::io::{BufRead, BufReader, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::process::{Child, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use benches::check_stop;
use e2e::Host;
use e2e::probe::query_packet;

/// Time between two queries.
const INTERVAL: Duration = Duration::from_millis(10);
/// How long the probe may take to start and bind its socket.
const READY_WAIT: Duration = Duration::from_secs(10);
/// How often the driver looks at the server and Ctrl-C while waiting.
const POLL: Duration = Duration::from_millis(50);

/// What an answer to the probe's A query says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Answer {
    /// NOERROR with the name's real address: resolved, not blocked.
    Data,
    /// NOERROR with 0.0.0.0: blocked, null mode.
    Null,
    /// NOERROR without an address.
    Nodata,
    /// NXDOMAIN: blocked, since the probe name exists in the lab.
    Nxdomain,
    Servfail,
    Refused,
    /// Any other response code.
    Other,
}

impl Answer {
    pub fn name(self) -> &'static str {
        match self {
            Answer::Data => "data",
            Answer::Null => "null",
            Answer::Nodata => "nodata",
            Answer::Nxdomain => "nxdomain",
            Answer::Servfail => "servfail",
            Answer::Refused => "refused",
            Answer::Other => "other",
        }
    }

    fn from_name(name: &str) -> Option<Answer> {
        [
            Answer::Data,
            Answer::Null,
            Answer::Nodata,
            Answer::Nxdomain,
            Answer::Servfail,
            Answer::Refused,
            Answer::Other,
        ]
        .into_iter()
        .find(|a| a.name() == name)
    }
}

/// Reads a response to an A query: its kind, or `None` for anything
/// that is not a well-formed response.
pub fn classify(packet: &[u8]) -> Option<Answer> {
    let header = packet.get(..12)?;
    if header[2] & 0x80 == 0 {
        return None;
    }
    let rcode = header[3] & 0x0f;
    let questions = u16::from_be_bytes([header[4], header[5]]);
    let answers = u16::from_be_bytes([header[6], header[7]]);
    match rcode {
        0 => {}
        2 => return Some(Answer::Servfail),
        3 => return Some(Answer::Nxdomain),
        5 => return Some(Answer::Refused),
        _ => return Some(Answer::Other),
    }
    let mut at = 12;
    for _ in 0..questions {
        at = skip_name(packet, at)? + 4;
    }
    let mut found = None;
    for _ in 0..answers {
        at = skip_name(packet, at)?;
        let fixed = packet.get(at..at + 10)?;
        let rtype = u16::from_be_bytes([fixed[0], fixed[1]]);
        let len = usize::from(u16::from_be_bytes([fixed[8], fixed[9]]));
        let data = packet.get(at + 10..at + 10 + len)?;
        at += 10 + len;
        if rtype == 1 && len == 4 {
            let addr = Ipv4Addr::new(data[0], data[1], data[2], data[3]);
            found = Some(if addr.is_unspecified() {
                Answer::Null
            } else {
                Answer::Data
            });
        }
    }
    Some(found.unwrap_or(Answer::Nodata))
}

/// The offset just past the name at `at` (labels, or a compression
/// pointer that ends it).
fn skip_name(packet: &[u8], mut at: usize) -> Option<usize> {
    loop {
        let len = *packet.get(at)?;
        match len {
            0 => return Some(at + 1),
            l if l & 0xc0 == 0xc0 => return Some(at + 2),
            l => at += 1 + usize::from(l),
        }
    }
}

/// The `probe` subcommand, inside the client namespace: asks `server`
/// for `name`/A every [`INTERVAL`] until an answer of kind `until`, at
/// most for `limit`.
pub fn run(server: IpAddr, name: &str, until: Answer, limit: Duration) -> Result<()> {
    let bind = match server {
        IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
    };
    let socket = UdpSocket::bind(SocketAddr::new(bind, 0))?;
    socket.connect(SocketAddr::new(server, 53))?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "ready")?;
    out.flush()?;
    let started = Instant::now();
    let mut seen: Vec<Answer> = Vec::new();
    let mut buf = [0u8; 4096];
    let mut id: u16 = 0;
    while started.elapsed() < limit {
        id = id.wrapping_add(1);
        // Refused until the server binds its port (ICMP unreachable):
        // that is what is being waited for, not an error.
        let _ = socket.send(&query_packet(id, name, 1));
        let next = Instant::now() + INTERVAL;
        loop {
            let now = Instant::now();
            if now >= next {
                break;
            }
            socket.set_read_timeout(Some(next - now))?;
            let Ok(n) = socket.recv(&mut buf) else {
                continue;
            };
            // Late answers to earlier queries count too: what is timed is
            // when the server first gave this answer.
            let Some(answer) = buf.get(..n).and_then(classify) else {
                continue;
            };
            if !seen.contains(&answer) {
                seen.push(answer);
                writeln!(out, "answer {}", answer.name())?;
                out.flush()?;
            }
            if answer == until {
                writeln!(out, "hit")?;
                out.flush()?;
                return Ok(());
            }
        }
    }
    bail!(
        "no {} answer for {name} from {server} within {limit:?} (seen: {seen:?})",
        until.name()
    )
}

/// What a probe saw, timed from the server's spawn.
#[derive(Debug, Clone)]
pub struct Seen {
    /// The first answer of any kind, and when.
    pub first: (Answer, Duration),
    /// When the awaited answer came.
    pub hit: Duration,
}

/// The driver's side: a probe process started and waiting in the client
/// namespace, its lines timestamped on arrival by a reader thread; killed
/// on drop if it is still running.
#[derive(Debug)]
pub struct Probe {
    child: Child,
    lines: Receiver<(Instant, String)>,
}

impl Probe {
    /// Starts a probe on `client` against `server` and waits until its
    /// socket is ready, so that the server can be spawned next.
    pub fn start(
        client: &Host,
        server: IpAddr,
        name: &str,
        until: Answer,
        limit: Duration,
    ) -> Result<Probe> {
        let exe = std::env::current_exe().context("locating this binary")?;
        let mut child = client
            .command(&exe.to_string_lossy())
            .args(["probe", "--server", &server.to_string(), "--name", name])
            .args(["--until", until.name(), "--limit"])
            .arg(limit.as_secs().max(1).to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .context("spawning the probe")?;
        let stdout = child.stdout.take().context("the probe's stdout")?;
        let (send, lines) = mpsc::channel();
        std::thread::Builder::new()
            .name("probe-reader".into())
            .spawn(move || {
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    if send
                        .send((Instant::now(), line.trim().to_string()))
                        .is_err()
                    {
                        break;
                    }
                }
            })?;
        let mut probe = Probe { child, lines };
        match probe.lines.recv_timeout(READY_WAIT) {
            Ok((_, line)) if line == "ready" => Ok(probe),
            Ok((_, line)) => bail!("the probe said {line:?} instead of ready"),
            Err(_) => {
                let status = probe.child.try_wait()?;
                bail!("the probe did not get ready within {READY_WAIT:?} ({status:?})")
            }
        }
    }

    /// Waits for the awaited answer, times from `spawned`; gives up when
    /// the probe's own limit runs out, on Ctrl-C, or as soon as
    /// `server_alive` says the server has exited.
    pub fn wait(
        mut self,
        spawned: Instant,
        mut server_alive: impl FnMut() -> bool,
    ) -> Result<Seen> {
        let mut first = None;
        loop {
            check_stop()?;
            let (at, line) = match self.lines.recv_timeout(POLL) {
                Ok(received) => received,
                Err(RecvTimeoutError::Timeout) if server_alive() => continue,
                Err(RecvTimeoutError::Timeout) => bail!("the server exited"),
                Err(RecvTimeoutError::Disconnected) => {
                    let status = self.child.wait()?;
                    bail!("the probe ended ({status}) without its answer");
                }
            };
            let at = at.saturating_duration_since(spawned);
            if line == "hit" {
                let first = first.context("the probe hit before any answer")?;
                let _ = self.child.wait();
                return Ok(Seen { first, hit: at });
            }
            match line.strip_prefix("answer ").and_then(Answer::from_name) {
                Some(answer) => {
                    first.get_or_insert((answer, at));
                }
                None => bail!("unexpected line from the probe: {line:?}"),
            }
        }
    }
}

impl Drop for Probe {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A response to `query_packet(7, "x.lab", 1)` with `rcode` and the
    /// given A records (owner as a compression pointer).
    fn response(rcode: u8, addrs: &[[u8; 4]]) -> Vec<u8> {
        let mut p = query_packet(7, "x.lab", 1);
        p[2] |= 0x80;
        p[3] = 0x80 | rcode;
        p[7] = addrs.len() as u8;
        for a in addrs {
            p.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4]);
            p.extend_from_slice(a);
        }
        p
    }

    #[test]
    fn classifies_answers() {
        assert_eq!(
            classify(&response(0, &[[10, 201, 0, 1]])),
            Some(Answer::Data)
        );
        assert_eq!(classify(&response(0, &[[0, 0, 0, 0]])), Some(Answer::Null));
        assert_eq!(classify(&response(0, &[])), Some(Answer::Nodata));
        assert_eq!(classify(&response(3, &[])), Some(Answer::Nxdomain));
        assert_eq!(classify(&response(2, &[])), Some(Answer::Servfail));
        assert_eq!(classify(&query_packet(7, "x.lab", 1)), None);
        let mut cut = response(0, &[[1, 2, 3, 4]]);
        cut.truncate(cut.len() - 2);
        assert_eq!(classify(&cut), None);
        assert_eq!(Answer::from_name("nxdomain"), Some(Answer::Nxdomain));
    }
}

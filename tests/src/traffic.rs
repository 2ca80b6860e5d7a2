//! Traffic probes for firewall tests: does a packet from one namespace get
//! through, get rejected, or get dropped?
//!
//! Every probe runs inside a host's namespace through the `e2e-traffic`
//! helper binary (or `ping`) and is bounded by [`PROBE_TIMEOUT`]. The
//! answer is a [`Verdict`]:
//!
//! - [`Verdict::Accepted`]: the TCP handshake completed, the UDP reply or
//!   the echo reply came back;
//! - [`Verdict::Rejected`]: the attempt failed fast: a TCP reset or an ICMP
//!   error came back (what a firewall's "reject" sends), or the source had
//!   no route at all;
//! - [`Verdict::Dropped`]: nothing came back before the timeout (what a
//!   firewall's "drop" looks like).
//!
//! A "rejected" verdict only means the firewall rejected if something
//! listens at the destination: a closed port answers with a reset too. So
//! every test starts a [`Listener`] where it probes ([`tcp_listen`] on the
//! wildcard address, [`udp_echo`] on every address of the host), and a
//! wrongly accepted probe then shows up as `Accepted`.
//!
//! Listeners greet every client with `LABEL PEER` (TCP: one line on
//! connect; UDP: the reply datagram), where PEER is the source address the
//! server saw: [`tcp_greeting`] and [`udp_request`] return it as
//! [`Seen`], which is how tests check masquerade and port forwards.
//!
//! UDP caveat: a connected UDP socket learns only of "hard" ICMP errors
//! (port unreachable, administratively prohibited); a host-unreachable
//! reject of a UDP probe reads as `Dropped`. TCP sees every ICMP error.

use std::fmt;
use std::io::{BufRead, BufReader, ErrorKind, Write};
use std::net::{IpAddr, Ipv6Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};

use crate::process::Daemon;
use crate::{Host, wait_until};

/// How long a probe waits for an answer before calling it dropped.
///
/// A lab round trip takes microseconds, but 1 s would not do for TCP: on a
/// veth the ICMP error that rejects a SYN can come back while `connect()`
/// still holds the socket lock (the receiving softirq runs as the SYN is
/// sent), and the kernel then only notes it as a soft error. Seen for
/// IPv6. The connect fails only when the SYN retransmitted after 1 s draws
/// the next error, so the timeout must outlast that retransmission.
pub const PROBE_TIMEOUT: Duration = Duration::from_millis(1500);

/// What became of a probe; see the module documentation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Got through, and the answer came back.
    Accepted,
    /// Failed fast: a TCP reset, an ICMP error, or no route at the source.
    Rejected,
    /// No answer within [`PROBE_TIMEOUT`].
    Dropped,
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Verdict::Accepted => "accepted",
            Verdict::Rejected => "rejected",
            Verdict::Dropped => "dropped",
        })
    }
}

/// What a listener told the client: its label and the client's address as
/// the listener saw it (after any NAT on the way).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    /// The label the listener was started with (e.g. "nas").
    pub label: String,
    /// The source address and port of the client, as seen by the server.
    pub peer: SocketAddr,
}

/// The result of a probe that can carry an answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exchange {
    /// Got through, rejected or dropped.
    pub verdict: Verdict,
    /// The listener's greeting, when it was accepted and one came.
    pub seen: Option<Seen>,
    /// The error, for a rejected probe (e.g. "Connection refused").
    pub detail: String,
}

/// One probe, for [`check`] and [`expect_all`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Probe {
    /// A TCP connection (handshake only).
    Tcp(SocketAddr),
    /// A UDP datagram to a [`udp_echo`] listener, waiting for its reply.
    Udp(SocketAddr),
    /// One ICMP or ICMPv6 echo request.
    Ping(IpAddr),
}

impl fmt::Display for Probe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Probe::Tcp(to) => write!(f, "tcp {to}"),
            Probe::Udp(to) => write!(f, "udp {to}"),
            Probe::Ping(to) => write!(f, "ping {to}"),
        }
    }
}

// ---------------------------------------------------------------------------
// From the test: run the probes inside a namespace.
// ---------------------------------------------------------------------------

/// The `e2e-traffic` binary: `$E2E_TRAFFIC_BIN`, else next to the test
/// binary's directory (cargo builds a package's bins for its integration
/// tests, into target/<profile>/, one level above target/<profile>/deps/).
pub fn binary() -> Result<PathBuf> {
    crate::process::cargo_binary(
        "e2e-traffic",
        "E2E_TRAFFIC_BIN",
        "cargo build -p e2e --bins",
    )
}

/// Runs `e2e-traffic ARGS` on `host` and parses its one-line verdict.
fn run_probe(host: &Host, args: &[&str]) -> Result<Exchange> {
    let bin = binary()?;
    let out = host.exec(&bin.to_string_lossy(), args)?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        bail!(
            "e2e-traffic {args:?} in {} failed ({}): {stdout}{}",
            host.ns,
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    parse_exchange(stdout.trim())
        .with_context(|| format!("e2e-traffic {args:?} in {} printed {stdout:?}", host.ns))
}

fn timeout_ms() -> String {
    PROBE_TIMEOUT.as_millis().to_string()
}

/// Opens a TCP connection from `from` to `to` and closes it at once.
pub fn tcp_connect(from: &Host, to: SocketAddr) -> Result<Verdict> {
    let target = to.to_string();
    Ok(run_probe(from, &["tcp-connect", &target, &timeout_ms()])?.verdict)
}

/// Opens a TCP connection from `from` to `to` and reads the greeting of a
/// [`tcp_listen`] listener there (so data flows back on the connection).
pub fn tcp_greeting(from: &Host, to: SocketAddr) -> Result<Exchange> {
    let target = to.to_string();
    run_probe(from, &["tcp-greeting", &target, &timeout_ms()])
}

/// Sends one datagram from `from` to a [`udp_echo`] listener at `to` and
/// waits for its reply.
pub fn udp_request(from: &Host, to: SocketAddr) -> Result<Exchange> {
    let target = to.to_string();
    run_probe(from, &["udp-request", &target, &timeout_ms()])
}

/// Sends one echo request (`ping -c1 -W1`, IPv4 or IPv6 by the address).
///
/// iputils ping exits 0 on a reply, 1 when none came (it counts ICMP
/// errors as "+N errors"), 2 on a local failure such as no route.
pub fn ping(from: &Host, to: IpAddr) -> Result<Verdict> {
    let family = if to.is_ipv4() { "-4" } else { "-6" };
    let wait = format!("{:.1}", PROBE_TIMEOUT.as_secs_f64());
    let out = from.exec("ping", &[family, "-n", "-c1", "-W", &wait, &to.to_string()])?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    Ok(match out.status.code() {
        Some(0) => Verdict::Accepted,
        Some(1) if stdout.contains(" errors") || stdout.contains("\nFrom ") => Verdict::Rejected,
        Some(1) => Verdict::Dropped,
        Some(2) => Verdict::Rejected,
        _ => bail!(
            "ping {to} in {} failed ({}): {stdout}{}",
            from.ns,
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ),
    })
}

/// Runs one probe.
pub fn check(from: &Host, probe: Probe) -> Result<Verdict> {
    match probe {
        Probe::Tcp(to) => tcp_connect(from, to),
        Probe::Udp(to) => Ok(udp_request(from, to)?.verdict),
        Probe::Ping(to) => ping(from, to),
    }
}

/// Runs every probe (in parallel: dropped ones each cost the whole
/// timeout) and returns their verdicts in order.
pub fn check_all(probes: &[(&Host, Probe)]) -> Result<Vec<Verdict>> {
    std::thread::scope(|scope| {
        let handles: Vec<_> = probes
            .iter()
            .map(|(host, probe)| scope.spawn(move || check(host, *probe)))
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("probe thread panicked")))
            })
            .collect()
    })
}

/// Runs every probe (in parallel) and compares each verdict with the
/// expected one: an error listing every mismatch, so one failing run shows
/// the whole picture. Hosts are named by their [`Host::name`].
pub fn expect_all(cases: &[(&Host, Probe, Verdict)]) -> Result<()> {
    let probes: Vec<(&Host, Probe)> = cases.iter().map(|(h, p, _)| (*h, *p)).collect();
    let verdicts = check_all(&probes)?;
    let wrong: Vec<String> = cases
        .iter()
        .zip(&verdicts)
        .filter(|((_, _, want), got)| want != *got)
        .map(|((host, probe, want), got)| {
            format!("{} -> {probe}: expected {want}, got {got}", host.name)
        })
        .collect();
    if !wrong.is_empty() {
        bail!(
            "{} of {} probes went wrong:\n  {}",
            wrong.len(),
            cases.len(),
            wrong.join("\n  ")
        );
    }
    Ok(())
}

/// A [`tcp_listen`] or [`udp_echo`] server; stopped on drop.
#[derive(Debug)]
pub struct Listener {
    /// The process guard (its log holds one `LABEL PEER` line per client).
    pub daemon: Daemon,
    label: String,
}

impl Listener {
    /// The client addresses it has seen so far, in order.
    pub fn peers(&self) -> Vec<SocketAddr> {
        self.daemon
            .log()
            .lines()
            .filter_map(|l| parse_seen(l).ok())
            .filter(|s| s.label == self.label)
            .map(|s| s.peer)
            .collect()
    }
}

/// Starts a TCP listener on `on`, on each of `ports` of every address
/// (IPv4 and IPv6: dual-stack sockets on `[::]`), greeting each client
/// with `LABEL PEER`. Returns once it listens.
pub fn tcp_listen(on: &Host, label: &str, ports: &[u16]) -> Result<Listener> {
    let binds: Vec<SocketAddr> = ports
        .iter()
        .map(|p| SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), *p))
        .collect();
    start_listener(on, "tcp-listen", label, &binds)
}

/// Starts a UDP echo server on `on`, one socket per address in `addrs`
/// (so each reply leaves from the address the request went to, which a
/// wildcard socket does not guarantee on a host with several addresses),
/// answering each datagram with `LABEL PEER`. Returns once it listens.
pub fn udp_echo(on: &Host, label: &str, addrs: &[IpAddr], port: u16) -> Result<Listener> {
    let binds: Vec<SocketAddr> = addrs.iter().map(|a| SocketAddr::new(*a, port)).collect();
    start_listener(on, "udp-echo", label, &binds)
}

fn start_listener(on: &Host, mode: &str, label: &str, binds: &[SocketAddr]) -> Result<Listener> {
    if label.is_empty() || label.contains(char::is_whitespace) {
        bail!("listener label {label:?} must be one word");
    }
    if binds.is_empty() {
        bail!("listener {label} needs at least one address");
    }
    let bin = binary()?;
    let binds: Vec<String> = binds.iter().map(ToString::to_string).collect();
    let mut args = vec![mode, label];
    args.extend(binds.iter().map(String::as_str));
    let log_label = format!("{mode}-{label}-{}", on.name);
    let mut daemon = on.spawn(&log_label, &bin.to_string_lossy(), &args)?;
    daemon.set_tail_lines(10);
    wait_until(
        Duration::from_secs(5),
        &format!("{log_label} to listen"),
        || {
            if !daemon.is_running() || daemon.log().contains(READY) {
                Some(())
            } else {
                None
            }
        },
    )?;
    daemon.check_running()?;
    Ok(Listener {
        daemon,
        label: label.to_string(),
    })
}

// ---------------------------------------------------------------------------
// Inside the namespace: what `e2e-traffic` runs.
// ---------------------------------------------------------------------------

/// The line a listener prints once all its sockets are bound.
pub const READY: &str = "e2e-traffic: listening";

/// Connects to `target` within `timeout`; with `greeting`, then reads one
/// line (a [`Seen`]) within `timeout`.
pub fn tcp_probe(target: SocketAddr, timeout: Duration, greeting: bool) -> Exchange {
    let stream = match TcpStream::connect_timeout(&target, timeout) {
        Ok(stream) => stream,
        Err(e) => return failed(&e),
    };
    let mut seen = None;
    if greeting {
        let _ = stream.set_read_timeout(Some(timeout));
        let mut line = String::new();
        if BufReader::new(&stream).read_line(&mut line).is_ok() {
            seen = parse_seen(line.trim()).ok();
        }
    }
    Exchange {
        verdict: Verdict::Accepted,
        seen,
        detail: String::new(),
    }
}

/// Sends one datagram to `target` and waits `timeout` for a reply.
pub fn udp_probe(target: SocketAddr, timeout: Duration) -> Exchange {
    let bind = if target.is_ipv4() {
        SocketAddr::from(([0, 0, 0, 0], 0))
    } else {
        SocketAddr::from(([0u16; 8], 0))
    };
    let attempt = || -> std::io::Result<String> {
        let socket = UdpSocket::bind(bind)?;
        // Connected, so the kernel hands ICMP errors about it to us.
        socket.connect(target)?;
        socket.set_read_timeout(Some(timeout))?;
        socket.send(b"e2e-traffic probe")?;
        let mut buf = [0u8; 512];
        let n = socket.recv(&mut buf)?;
        Ok(String::from_utf8_lossy(&buf[..n]).into_owned())
    };
    match attempt() {
        Ok(reply) => Exchange {
            verdict: Verdict::Accepted,
            seen: parse_seen(reply.trim()).ok(),
            detail: String::new(),
        },
        Err(e) => failed(&e),
    }
}

/// A timeout is a drop; any other error (reset, ICMP error, no route) a
/// reject.
fn failed(e: &std::io::Error) -> Exchange {
    let verdict = match e.kind() {
        ErrorKind::TimedOut | ErrorKind::WouldBlock => Verdict::Dropped,
        _ => Verdict::Rejected,
    };
    Exchange {
        verdict,
        seen: None,
        detail: e.to_string(),
    }
}

/// Serves TCP on `binds`, greeting every client with `LABEL PEER` and
/// logging the same line to stdout; never returns unless binding fails.
pub fn serve_tcp(label: &str, binds: &[SocketAddr]) -> Result<()> {
    let listeners = binds
        .iter()
        .map(|b| TcpListener::bind(b).with_context(|| format!("binding tcp {b}")))
        .collect::<Result<Vec<_>>>()?;
    announce_ready()?;
    std::thread::scope(|scope| {
        for listener in &listeners {
            scope.spawn(move || {
                for stream in listener.incoming().flatten() {
                    let Ok(peer) = stream.peer_addr() else {
                        continue;
                    };
                    let line = format!("{label} {}", canonical(peer));
                    log_line(&line);
                    let mut stream = stream;
                    let _ = writeln!(stream, "{line}");
                }
            });
        }
    });
    Ok(())
}

/// Serves UDP on `binds`, answering every datagram with `LABEL PEER` and
/// logging the same line to stdout; never returns unless binding fails.
pub fn serve_udp(label: &str, binds: &[SocketAddr]) -> Result<()> {
    let sockets = binds
        .iter()
        .map(|b| UdpSocket::bind(b).with_context(|| format!("binding udp {b}")))
        .collect::<Result<Vec<_>>>()?;
    announce_ready()?;
    std::thread::scope(|scope| {
        for socket in &sockets {
            scope.spawn(move || {
                let mut buf = [0u8; 2048];
                loop {
                    let Ok((_, peer)) = socket.recv_from(&mut buf) else {
                        continue;
                    };
                    let line = format!("{label} {}", canonical(peer));
                    log_line(&line);
                    let _ = socket.send_to(line.as_bytes(), peer);
                }
            });
        }
    });
    Ok(())
}

/// Writes to stdout: the listener's log, which [`Listener::peers`] reads.
fn log_line(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

fn announce_ready() -> Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{READY}")?;
    out.flush()?;
    Ok(())
}

/// `::ffff:a.b.c.d` (a v4 client of a dual-stack socket) as `a.b.c.d`.
fn canonical(addr: SocketAddr) -> SocketAddr {
    SocketAddr::new(addr.ip().to_canonical(), addr.port())
}

// ---------------------------------------------------------------------------
// The one-line protocol between `e2e-traffic` and the test.
// ---------------------------------------------------------------------------

/// `accepted [LABEL PEER]`, `rejected DETAIL` or `dropped`.
pub fn format_exchange(x: &Exchange) -> String {
    match (&x.verdict, &x.seen) {
        (Verdict::Accepted, Some(seen)) => format!("accepted {} {}", seen.label, seen.peer),
        (Verdict::Accepted, None) => "accepted".to_string(),
        (Verdict::Rejected, _) => format!("rejected {}", x.detail),
        (Verdict::Dropped, _) => "dropped".to_string(),
    }
}

/// The inverse of [`format_exchange`].
pub fn parse_exchange(line: &str) -> Result<Exchange> {
    let (word, rest) = line.split_once(' ').unwrap_or((line, ""));
    let (verdict, seen, detail) = match word {
        "accepted" if rest.is_empty() => (Verdict::Accepted, None, String::new()),
        "accepted" => (Verdict::Accepted, Some(parse_seen(rest)?), String::new()),
        "rejected" => (Verdict::Rejected, None, rest.to_string()),
        "dropped" => (Verdict::Dropped, None, String::new()),
        _ => bail!("not a probe result: {line:?}"),
    };
    Ok(Exchange {
        verdict,
        seen,
        detail,
    })
}

/// `LABEL PEER`.
fn parse_seen(text: &str) -> Result<Seen> {
    let (label, peer) = text
        .split_once(' ')
        .with_context(|| format!("not `LABEL PEER`: {text:?}"))?;
    Ok(Seen {
        label: label.to_string(),
        peer: peer
            .parse()
            .with_context(|| format!("not an address: {peer:?}"))?,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // test code
mod tests {
    use super::*;

    #[test]
    fn exchange_lines_round_trip() {
        let cases = [
            Exchange {
                verdict: Verdict::Accepted,
                seen: Some(Seen {
                    label: "nas".to_string(),
                    peer: "100.64.0.2:40000".parse().unwrap(),
                }),
                detail: String::new(),
            },
            Exchange {
                verdict: Verdict::Accepted,
                seen: Some(Seen {
                    label: "nas".to_string(),
                    peer: "[fd00:20::10]:40000".parse().unwrap(),
                }),
                detail: String::new(),
            },
            Exchange {
                verdict: Verdict::Accepted,
                seen: None,
                detail: String::new(),
            },
            Exchange {
                verdict: Verdict::Rejected,
                seen: None,
                detail: "Connection refused (os error 111)".to_string(),
            },
            Exchange {
                verdict: Verdict::Dropped,
                seen: None,
                detail: String::new(),
            },
        ];
        for x in cases {
            assert_eq!(parse_exchange(&format_exchange(&x)).unwrap(), x);
        }
        assert!(parse_exchange("maybe").is_err());
        assert!(parse_exchange("accepted nas").is_err());
    }

    #[test]
    fn v4_mapped_peers_are_shown_as_v4() {
        let mapped: SocketAddr = "[::ffff:192.168.20.10]:1234".parse().unwrap();
        assert_eq!(canonical(mapped).to_string(), "192.168.20.10:1234");
    }
}

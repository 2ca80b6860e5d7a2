//! Tiny network clients the lab runs inside a namespace through the
//! `e2e-probe` helper binary: an HTTP GET (for `/metrics`, no curl needed)
//! and a bounded burst of DNS queries over UDP (for rate limits).

use std::collections::HashSet;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// A DNS query in wire form: RD set, one question, no EDNS.
pub fn query_packet(id: u16, name: &str, qtype: u16) -> Vec<u8> {
    let mut p = Vec::with_capacity(32 + name.len());
    p.extend_from_slice(&id.to_be_bytes());
    p.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    for label in name
        .trim_end_matches('.')
        .split('.')
        .filter(|l| !l.is_empty())
    {
        let label = &label.as_bytes()[..label.len().min(63)];
        p.push(label.len() as u8);
        p.extend_from_slice(label);
    }
    p.push(0);
    p.extend_from_slice(&qtype.to_be_bytes());
    p.extend_from_slice(&[0, 1]);
    p
}

/// The id of a response (QR set), if `packet` is one.
pub fn response_id(packet: &[u8]) -> Option<u16> {
    if packet.len() < 12 || packet[2] & 0x80 == 0 {
        return None;
    }
    Some(u16::from_be_bytes([packet[0], packet[1]]))
}

/// What [`udp_burst`] saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Burst {
    /// Queries sent.
    pub sent: usize,
    /// Distinct queries answered.
    pub answered: usize,
    /// Answers that are exactly one whole response: NOERROR, the query's
    /// question, and one A record, the last 4 bytes, with the expected
    /// address (when one was given).
    pub intact: usize,
}

/// Whether `answer` is exactly the one-record NOERROR response to `query`
/// with `address` as its A record: header, the question echoed, and one
/// answer record with a compressed owner name (16 bytes).
fn is_intact(answer: &[u8], query: &[u8], address: std::net::Ipv4Addr) -> bool {
    answer.len() == query.len() + 16
        && answer[3] & 0x0f == 0
        && answer[4..8] == [0, 1, 0, 1]
        && answer[12..query.len()] == query[12..]
        && answer[answer.len() - 4..] == address.octets()
}

/// Sends `count` queries for `name`/A (ids 0..count) from one socket as
/// fast as it can, then collects answers until none came for `wait`
/// (at most 5 s in all). With `expect`, answers are also checked whole.
pub fn udp_burst(
    target: SocketAddr,
    name: &str,
    count: u16,
    wait: Duration,
    expect: Option<std::net::Ipv4Addr>,
) -> Result<Burst> {
    let bind: SocketAddr = if target.is_ipv4() {
        "0.0.0.0:0".parse()?
    } else {
        "[::]:0".parse()?
    };
    let socket = UdpSocket::bind(bind)?;
    socket.connect(target)?;
    let mut sent = 0;
    for id in 0..count {
        if socket.send(&query_packet(id, name, 1)).is_ok() {
            sent += 1;
        }
    }
    socket.set_read_timeout(Some(wait))?;
    let mut answered = HashSet::new();
    let mut intact = 0;
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline && answered.len() < sent {
        match socket.recv(&mut buf) {
            Ok(n) => {
                if let Some(id) = response_id(&buf[..n]) {
                    let whole = expect.is_some_and(|address| {
                        is_intact(&buf[..n], &query_packet(id, name, 1), address)
                    });
                    if answered.insert(id) && whole {
                        intact += 1;
                    }
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                break;
            }
            // ICMP errors surface here; nothing more will come.
            Err(e) => bail!("receiving from {target}: {e}"),
        }
    }
    Ok(Burst {
        sent,
        answered: answered.len(),
        intact,
    })
}

/// One query of a [`udp_steady`] stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sent {
    /// When it was sent, from the start of the stream.
    pub at: Duration,
    pub answered: bool,
}

/// Sends `rate` queries a second for `name`/A to `target` for `duration`,
/// each with its own id, from one unconnected socket (so ICMP errors from
/// a dead server do not end the stream), and waits `timeout` after the
/// last. A query counts as answered when any answer with its id arrives
/// within `timeout` of sending it.
pub fn udp_steady(
    target: SocketAddr,
    name: &str,
    rate: u32,
    duration: Duration,
    timeout: Duration,
) -> Result<Vec<Sent>> {
    let bind: SocketAddr = if target.is_ipv4() {
        "0.0.0.0:0".parse()?
    } else {
        "[::]:0".parse()?
    };
    let socket = UdpSocket::bind(bind)?;
    socket.set_read_timeout(Some(Duration::from_millis(1)))?;
    let interval = Duration::from_secs(1) / rate.max(1);
    let count = (duration.as_secs_f64() * f64::from(rate)).ceil() as usize;
    let start = Instant::now();
    let mut sent: Vec<(Duration, Option<Duration>)> = Vec::with_capacity(count);
    let mut buf = [0u8; 1500];
    let mut receive_until = |deadline: Instant, sent: &mut Vec<(Duration, Option<Duration>)>| {
        while Instant::now() < deadline {
            if let Ok((n, _)) = socket.recv_from(&mut buf)
                && let Some(id) = response_id(&buf[..n])
                && let Some(entry) = sent.get_mut(usize::from(id))
                && entry.1.is_none()
            {
                entry.1 = Some(start.elapsed());
            }
        }
    };
    for i in 0..count.min(usize::from(u16::MAX)) {
        let due = start + interval * i as u32;
        receive_until(due, &mut sent);
        let at = start.elapsed();
        let _ = socket.send_to(&query_packet(i as u16, name, 1), target);
        sent.push((at, None));
    }
    receive_until(Instant::now() + timeout, &mut sent);
    Ok(sent
        .into_iter()
        .map(|(at, answered)| Sent {
            at,
            answered: answered.is_some_and(|when| when - at <= timeout),
        })
        .collect())
}

/// `GET path` over HTTP/1.1 with a 3 s timeout; returns the whole
/// response (status line, headers, body).
pub fn http_get(target: SocketAddr, path: &str) -> Result<String> {
    let timeout = Duration::from_secs(3);
    let mut stream = TcpStream::connect_timeout(&target, timeout)
        .with_context(|| format!("connecting to {target}"))?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {target}\r\nConnection: close\r\nAccept: */*\r\n\r\n"
    )?;
    let mut response = Vec::new();
    stream
        .take(16 << 20)
        .read_to_end(&mut response)
        .with_context(|| format!("reading the answer of {target}"))?;
    Ok(String::from_utf8_lossy(&response).into_owned())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // test code
mod tests {
    use super::{query_packet, response_id};

    #[test]
    fn builds_queries() {
        let p = query_packet(0x1234, "www.plain.lab.", 1);
        assert_eq!(&p[..4], &[0x12, 0x34, 0x01, 0x00]);
        assert_eq!(&p[12..16], &[3, b'w', b'w', b'w']);
        assert_eq!(&p[p.len() - 5..], &[0, 0, 1, 0, 1]);
        assert_eq!(response_id(&p), None);
        let mut r = p.clone();
        r[2] |= 0x80;
        assert_eq!(response_id(&r), Some(0x1234));
    }
}

//! `e2e-upstream ADDR:PORT DELAY_MS TTL IPV4 COUNT_FILE`: a measuring
//! instrument for the resolver's slow path, run in a lab namespace. It
//! answers every A query with IPV4 (TTL seconds), other types with an
//! empty answer, each after DELAY_MS, and after every query it receives
//! rewrites COUNT_FILE with the number of distinct queries so far (a
//! retransmission repeats its message ID and is not counted again). Tests
//! use it to see how many questions routerd really sends upstream
//! (coalescing, prefetch); NSD has no query log to tell them.

use std::collections::HashSet;
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [addr, delay, ttl, ip, count_file] = args.as_slice() else {
        bail!("usage: e2e-upstream ADDR:PORT DELAY_MS TTL IPV4 COUNT_FILE");
    };
    let addr: SocketAddr = addr.parse().context("ADDR:PORT")?;
    let delay = Duration::from_millis(delay.parse().context("DELAY_MS")?);
    let ttl: u32 = ttl.parse().context("TTL")?;
    let ip: Ipv4Addr = ip.parse().context("IPV4")?;
    let count_file = PathBuf::from(count_file);
    let socket = Arc::new(UdpSocket::bind(addr).with_context(|| format!("binding {addr}"))?);
    let mut seen = HashSet::new();
    write_count(&count_file, 0)?;
    let mut buf = [0u8; 1500];
    loop {
        let (len, peer) = socket.recv_from(&mut buf)?;
        if seen.insert(buf[..len].to_vec()) {
            write_count(&count_file, seen.len() as u64)?;
        }
        let Some(reply) = answer(&buf[..len], ttl, ip) else {
            continue;
        };
        let socket = Arc::clone(&socket);
        // Each answer waits on its own thread, so concurrent queries
        // overlap as they would at a slow real server.
        std::thread::spawn(move || {
            std::thread::sleep(delay);
            let _ = socket.send_to(&reply, peer);
        });
    }
}

fn write_count(path: &PathBuf, n: u64) -> anyhow::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, format!("{n}\n"))?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}

/// The reply to a query: header, the question as asked, and one A record
/// (compressed to the question name) when the query asks for A.
fn answer(query: &[u8], ttl: u32, ip: Ipv4Addr) -> Option<Vec<u8>> {
    let header = query.get(..12)?;
    // Question name: labels up to the root, no compression in queries.
    let mut pos = 12;
    loop {
        let len = usize::from(*query.get(pos)?);
        pos += 1;
        if len == 0 {
            break;
        }
        if len > 63 {
            return None;
        }
        pos += len;
    }
    let question_end = pos + 4;
    let question = query.get(12..question_end)?;
    let qtype = u16::from_be_bytes([*query.get(pos)?, *query.get(pos + 1)?]);
    let is_a = qtype == 1;
    let mut reply = Vec::with_capacity(question_end + 16);
    reply.extend_from_slice(&header[..2]);
    // QR, AA, RD copied, RA; NOERROR.
    reply.push(0x84 | (header[2] & 0x01));
    reply.push(0x80);
    reply.extend_from_slice(&[0, 1, 0, u8::from(is_a), 0, 0, 0, 0]);
    reply.extend_from_slice(question);
    if is_a {
        reply.extend_from_slice(&[0xc0, 0x0c, 0, 1, 0, 1]);
        reply.extend_from_slice(&ttl.to_be_bytes());
        reply.extend_from_slice(&[0, 4]);
        reply.extend_from_slice(&ip.octets());
    }
    Some(reply)
}

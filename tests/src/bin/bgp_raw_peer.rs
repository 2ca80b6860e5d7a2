//! A tiny BGP peer speaking hand-built bytes, for the malformed-UPDATE
//! test (RFC 7606). Run inside a lab namespace with `ip netns exec`:
//!
//! ```text
//! bgp_raw_peer ADDR:PORT ASN ROUTER_ID NEXT_HOP
//! ```
//!
//! It connects (from the namespace's own address), sends an OPEN (hold
//! time 9, 4-octet AS and IPv4 unicast capabilities), waits for the
//! peer's OPEN, sends a KEEPALIVE and, once the peer's KEEPALIVE came,
//! prints `established`. From then on it sends a KEEPALIVE every 2 s and
//! reads commands from stdin, one a line:
//!
//! - `good PREFIX`: an UPDATE announcing PREFIX (ORIGIN IGP, AS_PATH ASN,
//!   NEXT_HOP);
//! - `bad-origin PREFIX`: the same with ORIGIN 7 (RFC 7606 3.f:
//!   treat-as-withdraw);
//! - `bad-nlri`: a good attribute set with an NLRI claiming a /40 IPv4
//!   prefix (RFC 7606 5.3: session reset, NOTIFICATION 3/10);
//! - `quit`.
//!
//! Everything it sends or receives is printed on stdout, one line each:
//! `sending UPDATE ...` (before the bytes go), `recv KEEPALIVE`,
//! `recv UPDATE <len> bytes`, `recv NOTIFICATION 3/10 <data hex>`, and
//! `closed` when the peer closes.
#![allow(clippy::print_stdout)] // reason: printing is this program's job

use std::io::{BufRead, Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result, bail};

const USAGE: &str = "usage: bgp_raw_peer ADDR:PORT ASN ROUTER_ID NEXT_HOP";
const HOLD_TIME: u16 = 9;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [target, asn, id, next_hop] = args.as_slice() else {
        bail!(USAGE);
    };
    let target: SocketAddr = target.parse().context("ADDR:PORT")?;
    let asn: u32 = asn.parse().context("ASN")?;
    let id: Ipv4Addr = id.parse().context("ROUTER_ID")?;
    let next_hop: Ipv4Addr = next_hop.parse().context("NEXT_HOP")?;

    let mut stream = TcpStream::connect_timeout(&target, Duration::from_secs(5))
        .with_context(|| format!("connecting to {target}"))?;
    stream.set_nodelay(true)?;
    say(&format!("connected {}", stream.local_addr()?));
    stream.write_all(&open(asn, id))?;
    say("sent OPEN");
    // The peer's OPEN, then its KEEPALIVE.
    stream.set_read_timeout(Some(Duration::from_secs(15)))?;
    let mut established = false;
    let mut sent_keepalive = false;
    while !established {
        let Some((kind, body)) = read_message(&mut stream)? else {
            say("closed");
            return Ok(());
        };
        report(kind, &body);
        match kind {
            1 if !sent_keepalive => {
                stream.write_all(&message(4, &[]))?;
                sent_keepalive = true;
                say("sent KEEPALIVE");
            }
            4 if sent_keepalive => established = true,
            3 => return Ok(()),
            _ => {}
        }
    }
    stream.set_read_timeout(None)?;
    say("established");

    let writer = Arc::new(Mutex::new(stream.try_clone()?));
    // Keepalives, so a quiet test keeps the session up.
    {
        let writer = Arc::clone(&writer);
        std::thread::spawn(move || {
            loop {
                std::thread::sleep(Duration::from_secs(2));
                let mut w = writer.lock().unwrap_or_else(|p| p.into_inner());
                if w.write_all(&message(4, &[])).is_err() {
                    return;
                }
            }
        });
    }
    // Commands.
    {
        let writer = Arc::clone(&writer);
        std::thread::spawn(move || {
            let stdin = std::io::stdin();
            for line in stdin.lock().lines() {
                let Ok(line) = line else { return };
                let words: Vec<&str> = line.split_whitespace().collect();
                let bytes = match words.as_slice() {
                    ["good", prefix] => parse_prefix(prefix).map(|p| update(asn, next_hop, 0, &p)),
                    ["bad-origin", prefix] => {
                        parse_prefix(prefix).map(|p| update(asn, next_hop, 7, &p))
                    }
                    // 40 bits claimed, 5 bytes given: 10.70.9.0.0/40.
                    ["bad-nlri"] => Some(update(asn, next_hop, 0, &[40, 10, 70, 9, 0, 0])),
                    ["quit"] => {
                        let w = writer.lock().unwrap_or_else(|p| p.into_inner());
                        let _ = w.shutdown(Shutdown::Both);
                        return;
                    }
                    _ => None,
                };
                let Some(bytes) = bytes else {
                    say(&format!("bad command {line:?}"));
                    continue;
                };
                // Said before the bytes go: the answer may close the
                // connection, and the process with it, at once.
                say(&format!("sending UPDATE {line}"));
                let mut w = writer.lock().unwrap_or_else(|p| p.into_inner());
                if let Err(e) = w.write_all(&bytes) {
                    say(&format!("send failed: {e}"));
                }
            }
        });
    }
    // Everything the peer sends, until it closes.
    loop {
        match read_message(&mut stream) {
            Ok(Some((kind, body))) => report(kind, &body),
            Ok(None) => {
                say("closed");
                return Ok(());
            }
            Err(e) => {
                say(&format!("closed ({e})"));
                return Ok(());
            }
        }
    }
}

/// Prints a line and flushes (stdout goes to a file the test polls).
fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// Prints what came in.
fn report(kind: u8, body: &[u8]) {
    match kind {
        1 => say(&format!("recv OPEN {}", hex(body))),
        2 => say(&format!("recv UPDATE {} bytes", body.len())),
        3 => {
            let code = body.first().copied().unwrap_or(0);
            let sub = body.get(1).copied().unwrap_or(0);
            say(&format!(
                "recv NOTIFICATION {code}/{sub} {}",
                hex(body.get(2..).unwrap_or_default())
            ));
        }
        4 => say("recv KEEPALIVE"),
        other => say(&format!("recv type {other} {}", hex(body))),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// One message: marker, length, type; `None` on a clean close.
fn read_message(stream: &mut TcpStream) -> Result<Option<(u8, Vec<u8>)>> {
    let mut header = [0u8; 19];
    let mut got = 0;
    while got < header.len() {
        let n = stream.read(&mut header[got..])?;
        if n == 0 {
            return Ok(None);
        }
        got += n;
    }
    if header[..16] != [0xff; 16] {
        bail!("bad marker {}", hex(&header[..16]));
    }
    let len = usize::from(u16::from_be_bytes([header[16], header[17]]));
    if !(19..=4096).contains(&len) {
        bail!("bad length {len}");
    }
    let mut body = vec![0u8; len - 19];
    stream.read_exact(&mut body)?;
    Ok(Some((header[18], body)))
}

/// Wraps `body` in the header.
fn message(kind: u8, body: &[u8]) -> Vec<u8> {
    let mut m = vec![0xff; 16];
    let len = u16::try_from(19 + body.len()).unwrap_or(u16::MAX);
    m.extend_from_slice(&len.to_be_bytes());
    m.push(kind);
    m.extend_from_slice(body);
    m
}

/// OPEN: version 4, AS (AS_TRANS if 4-octet), hold time, id, and the
/// capabilities Multiprotocol IPv4 unicast and 4-octet AS.
fn open(asn: u32, id: Ipv4Addr) -> Vec<u8> {
    let my_as = u16::try_from(asn).unwrap_or(23456);
    let caps: Vec<u8> = [
        vec![1, 4, 0, 1, 0, 1],
        [vec![65, 4], asn.to_be_bytes().to_vec()].concat(),
    ]
    .concat();
    let mut body = vec![4];
    body.extend_from_slice(&my_as.to_be_bytes());
    body.extend_from_slice(&HOLD_TIME.to_be_bytes());
    body.extend_from_slice(&id.octets());
    let param_len = u8::try_from(caps.len() + 2).unwrap_or(0);
    body.push(param_len);
    body.push(2); // capabilities
    body.push(u8::try_from(caps.len()).unwrap_or(0));
    body.extend_from_slice(&caps);
    message(1, &body)
}

/// UPDATE: no withdrawals, ORIGIN `origin`, AS_PATH (one AS_SEQUENCE of
/// `asn`, 4 octets), NEXT_HOP, and `nlri` as given (length byte + bytes).
fn update(asn: u32, next_hop: Ipv4Addr, origin: u8, nlri: &[u8]) -> Vec<u8> {
    let mut attrs = vec![0x40, 1, 1, origin];
    attrs.extend_from_slice(&[0x40, 2, 6, 2, 1]);
    attrs.extend_from_slice(&asn.to_be_bytes());
    attrs.extend_from_slice(&[0x40, 3, 4]);
    attrs.extend_from_slice(&next_hop.octets());
    let mut body = vec![0, 0];
    body.extend_from_slice(&u16::try_from(attrs.len()).unwrap_or(0).to_be_bytes());
    body.extend_from_slice(&attrs);
    body.extend_from_slice(nlri);
    message(2, &body)
}

/// "10.70.9.0/24" as NLRI bytes: length, then the significant octets.
fn parse_prefix(text: &str) -> Option<Vec<u8>> {
    let (addr, len) = text.split_once('/')?;
    let addr: Ipv4Addr = addr.parse().ok()?;
    let len: u8 = len.parse().ok().filter(|l| *l <= 32)?;
    let octets = usize::from(len).div_ceil(8);
    let mut out = vec![len];
    out.extend_from_slice(&addr.octets()[..octets]);
    Some(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // test code
mod tests {
    #[test]
    fn builds_messages() {
        let open = super::open(65002, "10.53.0.60".parse().unwrap());
        assert_eq!(open.len(), 19 + 10 + 2 + 12);
        assert_eq!(&open[16..19], &[0, 43, 1]);
        assert_eq!(&open[19..22], &[4, 0xfd, 0xea]);
        let nlri = super::parse_prefix("10.70.9.0/24").unwrap();
        assert_eq!(nlri, [24, 10, 70, 9]);
        let update = super::update(65002, "10.53.0.60".parse().unwrap(), 7, &nlri);
        // header 19, withdrawn len 2, attrs len 2, attrs 4+9+7, nlri 4.
        assert_eq!(update.len(), 19 + 2 + 2 + 20 + 4);
        assert_eq!(&update[23..27], &[0x40, 1, 1, 7]);
    }
}

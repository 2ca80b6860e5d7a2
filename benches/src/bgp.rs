//! What the BGP benchmark (`src/bin/bgp_load.rs`) needs to talk to its
//! daemons without spawning a client per poll: BIRD's control socket (the
//! line protocol `birdc` speaks) and routerd's control API (`GET /v1/bgp`,
//! what `routerctl bgp --json` prints), both over their Unix sockets, and
//! a process's memory from `/proc`.
//!
//! A Unix socket is a file, so the driver reaches the daemons' sockets in
//! the lab directory from the root namespace: no `ip netns exec` per poll.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, bail};

/// How long one control-socket exchange may take.
const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(30);

/// Sends one command to BIRD's control socket and returns the reply's
/// text with the reply codes stripped (what `birdc` prints). An error
/// when BIRD answers with an error code (8xxx, 9xxx).
///
/// The protocol: a greeting line `0001 BIRD 2.0.12 ready.`, then per
/// command lines `CODE-text` (more follow), ` text` (continuation of the
/// previous code) and a last `CODE text`.
pub fn birdc(socket: &Path, command: &str) -> Result<String> {
    let stream = UnixStream::connect(socket)
        .with_context(|| format!("connecting to BIRD at {}", socket.display()))?;
    stream.set_read_timeout(Some(EXCHANGE_TIMEOUT))?;
    stream.set_write_timeout(Some(EXCHANGE_TIMEOUT))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    if !line.starts_with("0001 ") {
        bail!("unexpected BIRD greeting {line:?}");
    }
    (&stream).write_all(format!("{command}\n").as_bytes())?;
    let mut text = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            bail!("BIRD closed the socket in the middle of the reply to {command:?}");
        }
        let l = line.trim_end_matches('\n');
        let coded = l.len() >= 5 && l.as_bytes()[..4].iter().all(u8::is_ascii_digit);
        if coded {
            let code = &l[..4];
            text.push_str(&l[5..]);
            text.push('\n');
            if l.as_bytes()[4] == b' ' {
                if code.starts_with('8') || code.starts_with('9') {
                    bail!("BIRD: {command}: {}", text.trim());
                }
                return Ok(text);
            }
        } else {
            text.push_str(l.strip_prefix(' ').unwrap_or(l));
            text.push('\n');
        }
    }
}

/// The value after `key` on the first line that starts with it (leading
/// blanks ignored), e.g. `BGP state:` of `show protocols all NAME`.
pub fn field(text: &str, key: &str) -> Option<String> {
    text.lines()
        .map(str::trim)
        .find_map(|l| l.strip_prefix(key))
        .map(|v| v.trim().to_string())
}

/// A BGP protocol's state and imported routes from `show protocols all
/// NAME`: ("Established", 1000000). No `Routes:` line (a protocol that is
/// down) counts 0.
pub fn bird_session(text: &str) -> (String, u64) {
    let state = field(text, "BGP state:").unwrap_or_else(|| "?".to_string());
    let imported = field(text, "Routes:")
        .and_then(|v| v.split_whitespace().next().and_then(|n| n.parse().ok()))
        .unwrap_or(0);
    (state, imported)
}

/// `GET PATH` on routerd's control socket; the body.
pub fn control_get(socket: &Path, path: &str) -> Result<String> {
    let mut stream = UnixStream::connect(socket)
        .with_context(|| format!("connecting to routerd at {}", socket.display()))?;
    stream.set_read_timeout(Some(EXCHANGE_TIMEOUT))?;
    stream.set_write_timeout(Some(EXCHANGE_TIMEOUT))?;
    stream.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: routerd\r\nConnection: close\r\n\r\n").as_bytes(),
    )?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let raw = String::from_utf8_lossy(&raw);
    let (head, body) = raw
        .split_once("\r\n\r\n")
        .with_context(|| format!("no HTTP header end in {raw:?}"))?;
    let status = head.lines().next().unwrap_or_default();
    if !status.contains(" 200") {
        bail!("GET {path}: {status}: {body}");
    }
    let chunked = head.lines().any(|l| {
        l.to_ascii_lowercase()
            .starts_with("transfer-encoding: chunked")
    });
    if chunked {
        dechunk(body)
    } else {
        Ok(body.to_string())
    }
}

/// The body of a chunked HTTP/1.1 response.
fn dechunk(mut rest: &str) -> Result<String> {
    let mut body = String::new();
    loop {
        let (size, after) = rest.split_once("\r\n").context("truncated chunk size")?;
        let size = usize::from_str_radix(size.split(';').next().unwrap_or("").trim(), 16)
            .with_context(|| format!("bad chunk size {size:?}"))?;
        if size == 0 {
            return Ok(body);
        }
        let chunk = after.get(..size).context("truncated chunk")?;
        body.push_str(chunk);
        rest = after.get(size..).unwrap_or("").trim_start_matches("\r\n");
    }
}

/// One peer of routerd's `GET /v1/bgp`: its state and accepted prefixes.
pub fn routerd_session(body: &str, peer: &str) -> Result<(String, u64)> {
    let v: serde_json::Value =
        serde_json::from_str(body).with_context(|| format!("GET /v1/bgp returned {body:?}"))?;
    let p = v["peers"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| p["name"].as_str() == Some(peer))
        .with_context(|| format!("no peer {peer} in {body}"))?;
    Ok((
        p["state"].as_str().unwrap_or("?").to_string(),
        p["prefixes_accepted"].as_u64().unwrap_or(0),
    ))
}

/// `VmRSS` and `VmHWM` (peak) of `pid`, in bytes.
pub fn memory(pid: u32) -> Result<(u64, u64)> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    let kb = |key: &str| -> Result<u64> {
        let v = field(&status, key).with_context(|| format!("no {key} in {path}"))?;
        let n: u64 = v
            .split_whitespace()
            .next()
            .and_then(|n| n.parse().ok())
            .with_context(|| format!("bad {key} {v:?} in {path}"))?;
        Ok(n * 1024)
    };
    Ok((kb("VmRSS:")?, kb("VmHWM:")?))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // reason: test code
mod tests {
    use super::*;

    #[test]
    fn reads_bird_protocol_state() {
        let text = "Name       Proto      Table      State  Since         Info\n\
                    feed       BGP        ---        up     20:37:24.303  Established\n  \
                    BGP state:          Established\n    \
                    Routes:         1000000 imported, 0 exported, 1000000 preferred\n";
        assert_eq!(bird_session(text), ("Established".to_string(), 1_000_000));
        assert_eq!(
            bird_session("  BGP state:          Active\n"),
            ("Active".to_string(), 0)
        );
    }

    #[test]
    fn reads_routerd_peers() {
        let body = r#"{"asn":65001,"peers":[{"name":"feed","state":"Established","prefixes_accepted":42}]}"#;
        assert_eq!(
            routerd_session(body, "feed").unwrap(),
            ("Established".to_string(), 42)
        );
        assert!(routerd_session(body, "other").is_err());
    }

    #[test]
    fn dechunks() {
        assert_eq!(
            dechunk("3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n").unwrap(),
            "abcde"
        );
    }
}

//! Sends a bounded flood of malformed DNS packets over UDP.
//!
//! Usage: `e2e-flood ADDR:PORT COUNT [SEED]`. Runs inside a lab namespace
//! (`ip netns exec`), stops after COUNT packets or 30 seconds, whichever
//! comes first, and prints how many it sent.

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use e2e::malformed::{Rng, packet};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [target, count, rest @ ..] = args.as_slice() else {
        anyhow::bail!("usage: e2e-flood ADDR:PORT COUNT [SEED]");
    };
    let target: SocketAddr = target.parse()?;
    let count: usize = count.parse()?;
    let seed: u64 = rest.first().map(|s| s.parse()).transpose()?.unwrap_or(1);

    let bind: SocketAddr = if target.is_ipv4() {
        "0.0.0.0:0".parse()?
    } else {
        "[::]:0".parse()?
    };
    let socket = UdpSocket::bind(bind)?;
    let mut rng = Rng::new(seed);
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut sent = 0usize;
    for i in 0..count {
        if Instant::now() > deadline {
            break;
        }
        // Errors (e.g. ICMP unreachable reported on a later send) are
        // expected while flooding; keep going.
        if socket.send_to(&packet(&mut rng, i), target).is_ok() {
            sent += 1;
        }
        // A short pause every 500 packets so the flood tests the parser,
        // not the socket buffer size.
        if i % 500 == 499 {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    eprintln!("e2e-flood: sent {sent} of {count} packets to {target}");
    Ok(())
}

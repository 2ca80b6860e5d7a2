//! Small network clients for the lab, run inside a namespace with
//! `ip netns exec`:
//!
//! - `e2e-probe http-get ADDR:PORT PATH` prints the whole HTTP response;
//! - `e2e-probe udp-steady ADDR:PORT NAME RATE SECONDS` sends RATE A
//!   queries a second for SECONDS and prints one line per query:
//!   `MILLISECONDS_SINCE_START 1|0` (answered within 1 s or not).
//! - `e2e-probe udp-burst ADDR:PORT NAME COUNT [ADDRESS]` sends COUNT (at
//!   most 1000) A queries for NAME back to back from one socket and prints
//!   `sent=N answered=M intact=K`; K counts answers that are exactly the
//!   one-record response with ADDRESS (0 without ADDRESS).
#![allow(clippy::print_stdout)] // reason: printing is this program's job

use std::time::Duration;

use e2e::probe::{http_get, udp_burst, udp_steady};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["http-get", target, path] => {
            print!("{}", http_get(target.parse()?, path)?);
        }
        ["udp-steady", target, name, rate, seconds] => {
            let sent = udp_steady(
                target.parse()?,
                name,
                rate.parse::<u32>()?.clamp(1, 2000),
                Duration::from_secs(seconds.parse::<u64>()?.min(60)),
                Duration::from_secs(1),
            )?;
            for query in sent {
                println!("{} {}", query.at.as_millis(), u8::from(query.answered));
            }
        }
        ["udp-burst", target, name, count, expect @ ..] if expect.len() <= 1 => {
            let count: u16 = count.parse()?;
            let expect = expect.first().map(|a| a.parse()).transpose()?;
            let burst = udp_burst(
                target.parse()?,
                name,
                count.min(1000),
                Duration::from_millis(1000),
                expect,
            )?;
            println!(
                "sent={} answered={} intact={}",
                burst.sent, burst.answered, burst.intact
            );
        }
        _ => anyhow::bail!(
            "usage: e2e-probe http-get ADDR:PORT PATH | udp-burst ADDR:PORT NAME COUNT [ADDRESS] | udp-steady ADDR:PORT NAME RATE SECONDS"
        ),
    }
    Ok(())
}

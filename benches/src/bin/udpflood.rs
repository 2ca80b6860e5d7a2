//! The traffic of the policy benchmark (`benches/src/bin/policy/`): one
//! UDP flow sent flat out from one lab host and counted on another.
//!
//! - `udpflood send --to ADDR:PORT`: one socket, one source port, connected
//!   to the receiver, sends small datagrams back to back for `--seconds`
//!   or `--max-packets`, whichever ends first; prints
//!   `sent N errors E elapsed_s T`.
//! - `udpflood recv --bind ADDR:PORT`: prints `ready` once bound, counts
//!   the datagrams of the measured phase (first payload byte 1) until the
//!   flow has been idle for `--idle-ms` or `--seconds` have passed; prints
//!   `received N other M`.
//!
//! The policy driver runs both inside lab namespaces (`ip netns exec`):
//! the addresses are the lab's, and nothing here picks any.

#![allow(clippy::print_stdout)] // reason: the counts on stdout are what the driver reads

use std::io::ErrorKind;
use std::net::{SocketAddr, UdpSocket};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};

/// A small UDP load generator and counter for the namespace lab.
#[derive(Debug, Parser)]
#[command(name = "udpflood")]
struct Args {
    #[command(subcommand)]
    role: Role,
}

#[derive(Debug, Subcommand)]
enum Role {
    /// Sends one flow of datagrams back to back.
    Send {
        /// The receiver's address and port.
        #[arg(long)]
        to: SocketAddr,
        /// The source address and port: one flow for every run.
        #[arg(long, default_value = "0.0.0.0:40000")]
        from: SocketAddr,
        /// How long to send, in seconds.
        #[arg(long, default_value_t = 3.0)]
        seconds: f64,
        /// Stop after this many datagrams even if time remains.
        #[arg(long, default_value_t = 20_000_000)]
        max_packets: u64,
        /// First payload byte: 0 for a warm-up, 1 for a measured run.
        #[arg(long, default_value_t = 1)]
        phase: u8,
        /// Payload size in bytes (at least 9: the phase and a sequence number).
        #[arg(long, default_value_t = 18, value_parser = clap::value_parser!(u16).range(9..=1400))]
        size: u16,
    },
    /// Counts the datagrams of the measured phase.
    Recv {
        /// Where to listen.
        #[arg(long)]
        bind: SocketAddr,
        /// Give up after this many seconds whatever happens.
        #[arg(long, default_value_t = 30.0)]
        seconds: f64,
        /// Stop once measured datagrams have been seen and none came for
        /// this long.
        #[arg(long, default_value_t = 500)]
        idle_ms: u64,
    },
}

fn main() -> ExitCode {
    let args = Args::parse();
    let result = match args.role {
        Role::Send {
            to,
            from,
            seconds,
            max_packets,
            phase,
            size,
        } => send(to, from, seconds, max_packets, phase, size),
        Role::Recv {
            bind,
            seconds,
            idle_ms,
        } => recv(bind, seconds, Duration::from_millis(idle_ms)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("udpflood: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn send(
    to: SocketAddr,
    from: SocketAddr,
    seconds: f64,
    max_packets: u64,
    phase: u8,
    size: u16,
) -> Result<()> {
    let socket = UdpSocket::bind(from).with_context(|| format!("binding {from}"))?;
    socket
        .connect(to)
        .with_context(|| format!("connecting to {to}"))?;
    let mut payload = vec![0u8; usize::from(size)];
    payload[0] = phase;
    let limit = Duration::from_secs_f64(seconds.max(0.0));
    let started = Instant::now();
    let (mut sent, mut errors) = (0u64, 0u64);
    'outer: while sent < max_packets {
        // The clock is read once per batch: a syscall-free check would
        // still cost more than nothing per datagram.
        for _ in 0..64 {
            payload[1..9].copy_from_slice(&sent.to_be_bytes());
            match socket.send(&payload) {
                Ok(_) => sent += 1,
                // ENOBUFS under overload, ECONNREFUSED after an ICMP error:
                // counted, and the flow goes on.
                Err(_) => errors += 1,
            }
            if sent >= max_packets {
                break 'outer;
            }
        }
        if started.elapsed() >= limit {
            break;
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    println!("sent {sent} errors {errors} elapsed_s {elapsed:.6}");
    Ok(())
}

fn recv(bind: SocketAddr, seconds: f64, idle: Duration) -> Result<()> {
    let socket = UdpSocket::bind(bind).with_context(|| format!("binding {bind}"))?;
    socket.set_read_timeout(Some(Duration::from_millis(50)))?;
    println!("ready");
    let deadline = Instant::now() + Duration::from_secs_f64(seconds.max(0.0));
    let mut buf = [0u8; 2048];
    let (mut measured, mut other) = (0u64, 0u64);
    let mut last_measured: Option<Instant> = None;
    loop {
        match socket.recv(&mut buf) {
            Ok(n) if n > 0 && buf[0] == 1 => {
                measured += 1;
                last_measured = Some(Instant::now());
            }
            Ok(_) => other += 1,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) => return Err(e).context("receiving"),
        }
        let now = Instant::now();
        if now >= deadline || last_measured.is_some_and(|at| now.duration_since(at) >= idle) {
            break;
        }
    }
    println!("received {measured} other {other}");
    Ok(())
}

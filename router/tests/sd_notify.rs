//! routerd under a stand-in for systemd: the real binary, started with
//! `NOTIFY_SOCKET` and `WATCHDOG_USEC` as systemd sets them for a
//! `Type=notify` unit with `WatchdogSec=`, says READY=1 once it serves,
//! feeds the watchdog, brackets a reload with RELOADING=1 and READY=1,
//! and says STOPPING=1 on SIGTERM.
//!
//! Everything stays on this machine: DNS on a loopback port, forwarding
//! to a loopback port where nothing listens (and nothing asks anyway), the
//! control socket and the daemon's files in a temporary directory. No
//! root needed.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests

use std::os::unix::net::UnixDatagram;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A free TCP port on loopback that UDP can have too (DNS binds both).
fn free_port() -> u16 {
    loop {
        let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = tcp.local_addr().unwrap().port();
        if std::net::UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn signal(child: &Child, name: &str) {
    let status = Command::new("kill")
        .arg(format!("-{name}"))
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(status.success(), "kill -{name}");
}

/// The next message other than WATCHDOG=1, counting those on the way.
fn next_state(socket: &UnixDatagram, watchdogs: &mut usize) -> String {
    let mut buf = [0u8; 1024];
    loop {
        let n = socket
            .recv(&mut buf)
            .expect("a notification within the timeout");
        let message = String::from_utf8(buf[..n].to_vec()).unwrap();
        if message == "WATCHDOG=1" {
            *watchdogs += 1;
        } else {
            return message;
        }
    }
}

#[test]
fn routerd_notifies_systemd_and_feeds_the_watchdog() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = dir.path().join("router.toml");
    std::fs::write(
        &config,
        format!(
            r#"[dns]
listen = ["127.0.0.1:{port}"]
mode = "forward"
workers = 1

[[dns.upstreams]]
address = "127.0.0.1:9"
protocol = "udp"

[dns.filter]
lists_dir = "{dir}/lists"

[dns.query_log]
enabled = false

[control]
socket = "{dir}/control.sock"
"#,
            dir = dir.path().display()
        ),
    )
    .unwrap();
    let notify_path = dir.path().join("notify.sock");
    let systemd = UnixDatagram::bind(&notify_path).unwrap();
    systemd
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();

    let child = Command::new(env!("CARGO_BIN_EXE_routerd"))
        .arg("--config")
        .arg(&config)
        .env("NOTIFY_SOCKET", &notify_path)
        // Fed every 100 ms.
        .env("WATCHDOG_USEC", "200000")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let daemon = Daemon(child);
    let mut watchdogs = 0;

    let ready = next_state(&systemd, &mut watchdogs);
    assert!(
        ready.starts_with("READY=1\nSTATUS=ready: DNS on 1 address"),
        "{ready:?}"
    );

    // Fed while healthy: a few in half a second.
    let start = Instant::now();
    let mut buf = [0u8; 64];
    while watchdogs < 3 {
        let n = systemd.recv(&mut buf).expect("WATCHDOG=1 keeps coming");
        assert_eq!(&buf[..n], b"WATCHDOG=1");
        watchdogs += 1;
    }
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );

    signal(&daemon.0, "HUP");
    let reloading = next_state(&systemd, &mut watchdogs);
    assert!(reloading.starts_with("RELOADING=1\n"), "{reloading:?}");
    let reloaded = next_state(&systemd, &mut watchdogs);
    assert_eq!(reloaded, "READY=1\nSTATUS=configuration unchanged");

    signal(&daemon.0, "TERM");
    let stopping = next_state(&systemd, &mut watchdogs);
    assert!(stopping.starts_with("STOPPING=1\n"), "{stopping:?}");
    let mut daemon = daemon;
    let status = daemon.0.wait().unwrap();
    assert!(status.success(), "routerd exited with {status}");
}

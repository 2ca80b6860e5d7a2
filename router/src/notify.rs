//! sd_notify(3) for `Type=notify` units: tells systemd when routerd is
//! ready, reloading or stopping, and feeds its watchdog.
//!
//! Each message is one datagram on the Unix socket named by `NOTIFY_SOCKET`
//! (a path, or an abstract name written with a leading `@`). Without
//! `NOTIFY_SOCKET` (routerd started by hand, in the lab, by another
//! supervisor) every call does nothing. The environment is read once, at
//! start, and left as it is: `NotifyAccess=main` (systemd's default) makes
//! systemd ignore whatever a child that inherits it (a hook script) sends.

use std::ffi::OsString;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::time::Duration;

/// Why the notification socket cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error("NOTIFY_SOCKET={0:?} is neither an absolute path nor an abstract name (@name)")]
    BadSocket(String),
    #[error("notifying systemd through {socket}: {source}")]
    Io {
        socket: String,
        #[source]
        source: std::io::Error,
    },
}

/// Where notifications go, if anywhere, and how often the watchdog wants
/// to hear from us.
#[derive(Debug)]
pub struct Notifier {
    target: Option<Target>,
    watchdog: Option<Duration>,
}

#[derive(Debug)]
struct Target {
    socket: UnixDatagram,
    addr: SocketAddr,
    /// As written in `NOTIFY_SOCKET`, for errors.
    name: String,
}

impl Notifier {
    /// Nothing is ever sent.
    pub fn disabled() -> Notifier {
        Notifier {
            target: None,
            watchdog: None,
        }
    }

    /// From this process's environment: `NOTIFY_SOCKET`, `WATCHDOG_USEC`
    /// and `WATCHDOG_PID`.
    pub fn from_env() -> Result<Notifier, NotifyError> {
        Notifier::from_lookup(|name| std::env::var_os(name), std::process::id())
    }

    /// From the variables `lookup` gives, for the process `pid`. The
    /// watchdog is ours when `WATCHDOG_USEC` is set and `WATCHDOG_PID`
    /// is unset or names `pid` (systemd sets both for the main process).
    pub fn from_lookup(
        lookup: impl Fn(&str) -> Option<OsString>,
        pid: u32,
    ) -> Result<Notifier, NotifyError> {
        let Some(socket) = lookup("NOTIFY_SOCKET").filter(|s| !s.is_empty()) else {
            return Ok(Notifier::disabled());
        };
        let name = socket.to_string_lossy().into_owned();
        let bytes = socket.as_bytes();
        let addr = match bytes.split_first() {
            Some((b'@', abstract_name)) => SocketAddr::from_abstract_name(abstract_name),
            Some((b'/', _)) => SocketAddr::from_pathname(&socket),
            _ => return Err(NotifyError::BadSocket(name)),
        }
        .map_err(|source| NotifyError::Io {
            socket: name.clone(),
            source,
        })?;
        let socket = UnixDatagram::unbound().map_err(|source| NotifyError::Io {
            socket: name.clone(),
            source,
        })?;
        let ours = lookup("WATCHDOG_PID")
            .map(|p| p.to_string_lossy().trim().parse::<u32>() == Ok(pid))
            .unwrap_or(true);
        let watchdog = lookup("WATCHDOG_USEC")
            .and_then(|usec| usec.to_string_lossy().trim().parse::<u64>().ok())
            .filter(|&usec| usec > 0 && ours)
            .map(Duration::from_micros);
        Ok(Notifier {
            target: Some(Target { socket, addr, name }),
            watchdog,
        })
    }

    /// Whether messages go anywhere.
    pub fn is_enabled(&self) -> bool {
        self.target.is_some()
    }

    /// How often to send `WATCHDOG=1`: half of `WATCHDOG_USEC`, as
    /// sd_watchdog_enabled(3) advises; `None` when there is no watchdog.
    pub fn watchdog_interval(&self) -> Option<Duration> {
        self.watchdog.map(|timeout| timeout / 2)
    }

    /// Sends `message` (newline-separated `KEY=value` lines) as one
    /// datagram. Does nothing without `NOTIFY_SOCKET`.
    pub fn notify(&self, message: &str) -> Result<(), NotifyError> {
        let Some(target) = &self.target else {
            return Ok(());
        };
        target
            .socket
            .send_to_addr(message.as_bytes(), &target.addr)
            .map(|_| ())
            .map_err(|source| NotifyError::Io {
                socket: target.name.clone(),
                source,
            })
    }

    /// `READY=1`, with a status line for `systemctl status`.
    pub fn ready(&self, status: &str) -> Result<(), NotifyError> {
        self.notify(&format!("READY=1\nSTATUS={}", one_line(status)))
    }

    /// `RELOADING=1`: systemd shows the unit as reloading until the next
    /// [`Notifier::ready`].
    pub fn reloading(&self) -> Result<(), NotifyError> {
        self.notify("RELOADING=1\nSTATUS=reloading the configuration")
    }

    /// `STOPPING=1`.
    pub fn stopping(&self) -> Result<(), NotifyError> {
        self.notify("STOPPING=1\nSTATUS=stopping")
    }

    /// `WATCHDOG=1`: still alive and well.
    pub fn watchdog(&self) -> Result<(), NotifyError> {
        self.notify("WATCHDOG=1")
    }
}

/// A status is one line: a newline would start another assignment.
fn one_line(text: &str) -> String {
    text.replace(['\n', '\r'], " ")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)] // tests

    use std::collections::HashMap;

    use super::*;

    fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<OsString> {
        let vars: HashMap<String, OsString> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), OsString::from(v)))
            .collect();
        move |name| vars.get(name).cloned()
    }

    fn receive(socket: &UnixDatagram) -> String {
        let mut buf = [0u8; 512];
        let n = socket.recv(&mut buf).unwrap();
        String::from_utf8(buf[..n].to_vec()).unwrap()
    }

    #[test]
    fn without_notify_socket_nothing_is_sent() {
        let notifier = Notifier::from_lookup(env(&[("WATCHDOG_USEC", "30000000")]), 1).unwrap();
        assert!(!notifier.is_enabled());
        assert_eq!(notifier.watchdog_interval(), None);
        notifier.ready("up").unwrap();
        notifier.watchdog().unwrap();
    }

    #[test]
    fn messages_reach_a_socket_at_a_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify.sock");
        let systemd = UnixDatagram::bind(&path).unwrap();
        systemd
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let notifier = Notifier::from_lookup(
            env(&[
                ("NOTIFY_SOCKET", path.to_str().unwrap()),
                ("WATCHDOG_USEC", "30000000"),
                ("WATCHDOG_PID", "4242"),
            ]),
            4242,
        )
        .unwrap();
        assert!(notifier.is_enabled());
        assert_eq!(notifier.watchdog_interval(), Some(Duration::from_secs(15)));
        notifier.ready("serving DNS\non 2 addresses").unwrap();
        assert_eq!(
            receive(&systemd),
            "READY=1\nSTATUS=serving DNS on 2 addresses"
        );
        notifier.reloading().unwrap();
        assert!(receive(&systemd).starts_with("RELOADING=1\n"));
        notifier.watchdog().unwrap();
        assert_eq!(receive(&systemd), "WATCHDOG=1");
        notifier.stopping().unwrap();
        assert!(receive(&systemd).starts_with("STOPPING=1\n"));
    }

    #[test]
    fn messages_reach_an_abstract_socket() {
        let name = format!("router-notify-test-{}", std::process::id());
        let addr = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let systemd = UnixDatagram::bind_addr(&addr).unwrap();
        systemd
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let notifier =
            Notifier::from_lookup(env(&[("NOTIFY_SOCKET", &format!("@{name}"))]), 1).unwrap();
        notifier.ready("up").unwrap();
        assert_eq!(receive(&systemd), "READY=1\nSTATUS=up");
        // No WATCHDOG_USEC: no watchdog.
        assert_eq!(notifier.watchdog_interval(), None);
    }

    #[test]
    fn the_watchdog_of_another_process_is_not_ours() {
        let notifier = Notifier::from_lookup(
            env(&[
                ("NOTIFY_SOCKET", "/run/systemd/notify"),
                ("WATCHDOG_USEC", "1000000"),
                ("WATCHDOG_PID", "1"),
            ]),
            2,
        )
        .unwrap();
        assert_eq!(notifier.watchdog_interval(), None);
    }

    #[test]
    fn a_relative_socket_is_refused() {
        let error = Notifier::from_lookup(env(&[("NOTIFY_SOCKET", "notify.sock")]), 1).unwrap_err();
        assert!(matches!(error, NotifyError::BadSocket(_)), "{error}");
    }

    #[test]
    fn a_vanished_socket_is_an_error_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gone.sock");
        let notifier =
            Notifier::from_lookup(env(&[("NOTIFY_SOCKET", path.to_str().unwrap())]), 1).unwrap();
        let error = notifier.ready("up").unwrap_err();
        assert!(error.to_string().contains("gone.sock"), "{error}");
    }
}

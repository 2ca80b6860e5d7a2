//! A peer's health from what the device reports: when it last shook hands
//! and when its byte counter last moved, as routerd saw it. Pure, so the
//! verdicts are tested with made-up clocks.

use std::time::{Duration, Instant};

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Heard from within `stale_after`.
    Up,
    /// Shook hands once, silent for longer than `stale_after`.
    Stale,
    /// Never shook hands.
    Never,
}

/// The verdict for a peer whose last handshake was `handshake_age` ago
/// (`None`: never) and from which bytes last arrived `since_received` ago
/// (`None`: not seen arriving since routerd started watching).
pub fn verdict(
    handshake_age: Option<Duration>,
    since_received: Option<Duration>,
    stale_after: Duration,
) -> Verdict {
    let Some(handshake_age) = handshake_age else {
        return Verdict::Never;
    };
    let heard = since_received.map_or(handshake_age, |r| r.min(handshake_age));
    if heard <= stale_after {
        Verdict::Up
    } else {
        Verdict::Stale
    }
}

/// When a peer's receive counter last grew.
#[derive(Debug, Clone, Copy, Default)]
pub struct Activity {
    /// `None` until the first reading.
    rx_bytes: Option<u64>,
    last_change: Option<Instant>,
}

impl Activity {
    /// Records a new reading of the counter. The first reading only sets
    /// the baseline: bytes counted before routerd looked say nothing about
    /// when they came.
    pub fn observe(&mut self, rx_bytes: u64, now: Instant) {
        let before = self.rx_bytes.replace(rx_bytes);
        if before.is_some_and(|before| before != rx_bytes) {
            self.last_change = Some(now);
        }
    }

    pub fn since_received(&self, now: Instant) -> Option<Duration> {
        self.last_change.map(|at| now.saturating_duration_since(at))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STALE: Duration = Duration::from_secs(10);

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn verdicts_follow_the_last_sign_of_life() {
        assert_eq!(verdict(None, None, STALE), Verdict::Never);
        assert_eq!(verdict(None, Some(secs(1)), STALE), Verdict::Never);
        assert_eq!(verdict(Some(secs(3)), None, STALE), Verdict::Up);
        assert_eq!(verdict(Some(secs(60)), None, STALE), Verdict::Stale);
        // Keepalives keep a peer up between handshakes (every 2 minutes).
        assert_eq!(verdict(Some(secs(100)), Some(secs(2)), STALE), Verdict::Up);
        assert_eq!(
            verdict(Some(secs(100)), Some(secs(11)), STALE),
            Verdict::Stale
        );
    }

    #[test]
    fn activity_counts_only_growth_seen_after_the_first_reading() {
        let start = Instant::now();
        let mut activity = Activity::default();
        activity.observe(5000, start);
        assert_eq!(activity.since_received(start + secs(5)), None);
        activity.observe(5000, start + secs(1));
        assert_eq!(activity.since_received(start + secs(5)), None);
        activity.observe(5100, start + secs(2));
        assert_eq!(activity.since_received(start + secs(5)), Some(secs(3)));
        activity.observe(5100, start + secs(4));
        assert_eq!(activity.since_received(start + secs(9)), Some(secs(7)));

        // A fresh device counts from zero: its first bytes are news.
        let mut fresh = Activity::default();
        fresh.observe(0, start);
        fresh.observe(148, start + secs(1));
        assert_eq!(fresh.since_received(start + secs(1)), Some(secs(0)));
    }
}

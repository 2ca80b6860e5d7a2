//! Per-client rate limiting, owned by one worker thread (no locks, no atomics).
//!
//! Each client has a token bucket of `burst` tokens refilled at `qps` per
//! second, implemented as GCRA: instead of a token count we keep one `u64`
//! per client, the "theoretical arrival time" (TAT) at which its bucket
//! would be full again. A query is allowed when accepting it would not push
//! the TAT more than `burst` intervals ahead of now. A client whose TAT is in
//! the past has a full bucket, which is the same as having no entry at all;
//! such entries are free to be overwritten.
//!
//! Memory is fixed at construction: the table is a 4-way set-associative
//! array (like a CPU cache) of `max_clients` slots rounded up to a power of
//! two. A new client takes an idle slot of its set if there is one, else
//! evicts the entry with the smallest TAT, i.e. the one with the most tokens
//! left. Under a spoofed-source flood the table therefore never grows, and
//! the clients that are actually being limited (TAT far ahead) are the last
//! to be evicted. An evicted client merely starts over with a full bucket.
//! The set index comes from a randomly seeded `foldhash`, so an attacker
//! cannot aim collisions at a given victim's set.
//!
//! With the limiter per worker, a client whose packets are spread across N
//! SO_REUSEPORT workers gets up to N times the limit; the kernel hashes by
//! source address and port, so a single client socket stays on one worker.

use std::hash::BuildHasher;
use std::net::IpAddr;
use std::time::Instant;

use foldhash::fast::RandomState;

const WAYS: usize = 4;

#[derive(Debug, Clone, Copy, Default)]
struct Slot {
    key: u128,
    /// Theoretical arrival time in ns since `epoch`; <= now means idle.
    tat: u64,
}

/// Token-bucket rate limiter keyed by client address.
#[derive(Debug)]
pub struct RateLimiter {
    /// 0 = unlimited.
    interval_ns: u64,
    /// Burst tolerance: `burst * interval_ns`.
    tolerance_ns: u64,
    slots: Box<[Slot]>,
    set_mask: usize,
    hasher: RandomState,
    epoch: Instant,
    evictions: u64,
}

/// Maps a client address to its bucket key.
///
/// IPv6 clients are bucketed by /64: a /64 is the smallest prefix normally
/// assigned to one host or subscriber (SLAAC and privacy addresses hand a
/// single machine an entire /64 and rotate within it), so limiting per /128
/// would let one client multiply its allowance, and churn through the
/// table, just by picking new addresses. IPv4 and IPv4-mapped IPv6 are keyed
/// by the full address in its mapped form (`::ffff:a.b.c.d`), which cannot
/// collide with a /64 key (the low 64 bits of those are zero).
#[inline]
fn client_key(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(a) => u128::from(a.to_ipv6_mapped()),
        IpAddr::V6(a) => match a.to_ipv4_mapped() {
            Some(a4) => u128::from(a4.to_ipv6_mapped()),
            None => u128::from(a) & !u128::from(u64::MAX),
        },
    }
}

impl RateLimiter {
    /// `qps` queries per second with a burst of `burst` (at least 1) per
    /// client; `qps == 0` disables limiting. `max_clients` bounds the table
    /// (rounded up to a power of two, at least 4 slots).
    pub fn new(qps: u32, burst: u32, max_clients: usize) -> Self {
        let interval_ns = if qps == 0 {
            0
        } else {
            1_000_000_000 / u64::from(qps)
        };
        let n = if qps == 0 {
            0
        } else {
            max_clients.clamp(WAYS, 1 << 26).next_power_of_two()
        };
        RateLimiter {
            interval_ns,
            tolerance_ns: interval_ns * u64::from(burst.max(1)),
            slots: vec![Slot::default(); n].into_boxed_slice(),
            set_mask: (n / WAYS).saturating_sub(1),
            hasher: RandomState::default(),
            epoch: Instant::now(),
            evictions: 0,
        }
    }

    /// Whether a query from `ip` at `now` is within its limit (and, if so,
    /// charge it).
    #[inline]
    pub fn check(&mut self, ip: IpAddr, now: Instant) -> bool {
        if self.interval_ns == 0 {
            return true;
        }
        // +1 keeps "now" strictly above the zero TAT of unused slots.
        let now_ns = u64::try_from(now.saturating_duration_since(self.epoch).as_nanos())
            .unwrap_or(u64::MAX - self.tolerance_ns - 1)
            + 1;
        let key = client_key(ip);
        let set = (self.hasher.hash_one(key) as usize) & self.set_mask;
        let Some(ways) = self.slots.get_mut(set * WAYS..set * WAYS + WAYS) else {
            return true;
        };
        let mut victim = 0;
        let mut found = false;
        for (i, s) in ways.iter().enumerate() {
            if s.key == key {
                victim = i;
                found = true;
                break;
            }
            if s.tat < ways[victim].tat {
                victim = i;
            }
        }
        let slot = &mut ways[victim];
        if !found {
            if slot.tat > now_ns {
                self.evictions += 1;
            }
            slot.key = key;
            slot.tat = 0;
        }
        let new_tat = slot.tat.max(now_ns) + self.interval_ns;
        if new_tat - now_ns > self.tolerance_ns {
            return false;
        }
        slot.tat = new_tat;
        true
    }

    /// Clients evicted while still holding fewer than `burst` tokens (a sign
    /// that `max_clients` is too small or that a spoofed flood is running).
    pub fn evictions(&self) -> u64 {
        self.evictions
    }

    /// Table size in slots (0 when unlimited).
    pub fn capacity(&self) -> usize {
        self.slots.len()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)] // tests
mod tests {
    use super::*;
    use std::time::Duration;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn unlimited() {
        let mut r = RateLimiter::new(0, 0, 1000);
        let t = Instant::now();
        assert!((0..10_000).all(|_| r.check(ip("1.2.3.4"), t)));
        assert_eq!(r.capacity(), 0);
    }

    #[test]
    fn burst_then_rate() {
        let mut r = RateLimiter::new(10, 5, 64);
        let t0 = Instant::now();
        let c = ip("192.0.2.1");
        let ok = (0..20).filter(|_| r.check(c, t0)).count();
        assert_eq!(ok, 5);
        // Other clients are unaffected.
        assert!(r.check(ip("192.0.2.2"), t0));
        // 100 ms later exactly one more token.
        let t1 = t0 + Duration::from_millis(100);
        assert!(r.check(c, t1));
        assert!(!r.check(c, t1));
        // After a long idle period, the full burst again, not more.
        let t2 = t0 + Duration::from_secs(60);
        assert_eq!((0..20).filter(|_| r.check(c, t2)).count(), 5);
        // Sustained: 10 qps over 10 s plus the burst.
        let mut ok = 0;
        for ms in 0..10_000u64 {
            if r.check(c, t2 + Duration::from_millis(ms)) {
                ok += 1;
            }
        }
        assert!((99..=101).contains(&ok), "{ok}");
    }

    #[test]
    fn ipv6_by_64_and_mapped() {
        let mut r = RateLimiter::new(1, 2, 64);
        let t = Instant::now();
        assert!(r.check(ip("2001:db8:1:2::1"), t));
        assert!(r.check(ip("2001:db8:1:2:ffff::9"), t));
        assert!(!r.check(ip("2001:db8:1:2::77"), t));
        assert!(r.check(ip("2001:db8:1:3::1"), t));
        assert!(r.check(ip("10.0.0.1"), t));
        assert!(r.check(ip("::ffff:10.0.0.1"), t));
        assert!(!r.check(ip("10.0.0.1"), t));
        assert_eq!(
            client_key(ip("::ffff:10.0.0.1")),
            client_key(ip("10.0.0.1"))
        );
    }

    #[test]
    fn bounded_under_flood() {
        let mut r = RateLimiter::new(1, 3, 1024);
        let t = Instant::now();
        let heavy = ip("192.0.2.200");
        assert_eq!((0..3).filter(|_| r.check(heavy, t)).count(), 3);
        assert!(!r.check(heavy, t));
        // A spoofed flood of a million sources at the same instant.
        for i in 0..1_000_000u32 {
            let a = std::net::Ipv4Addr::from(0x0a00_0000 | i);
            assert!(r.check(IpAddr::V4(a), t));
        }
        assert_eq!(r.capacity(), 1024);
        assert!(r.evictions() > 0);
        // The heavy client had the largest TAT in its set, so it is most
        // likely still limited (it can only have been evicted by ways that
        // were all fuller than it, which new single-query clients are not).
        assert!(!r.check(heavy, t));
    }
}

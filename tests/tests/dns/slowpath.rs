//! The miss path seen from upstream: identical questions in flight are
//! sent once (coalescing), and popular answers are refreshed before they
//! expire (prefetch), so clients never wait for them. Counted with the
//! `e2e-upstream` instrument, which records every query it receives.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use e2e::process::Daemon;
use e2e::{Host, Query, Routerd, RouterdConfig, addr};

use crate::common::{ROUTERD_TOOLS, Setup, setup};

const ANSWER: &str = "10.53.9.9";

struct Counted {
    s: Setup,
    _upstream: Daemon,
    count_file: PathBuf,
    r: Routerd,
}

/// routerd forwarding everything to a counting upstream that answers A
/// queries with `ANSWER` (TTL `ttl`) after `delay_ms`.
fn counted(delay_ms: u64, ttl: u32, workers: u32) -> Counted {
    let s = setup();
    let host: Host = s.lab.add_host("upstream", addr::FWD1).unwrap();
    let count_file = s.lab.dir().join("upstream-count");
    let listen = format!("{}:53", addr::FWD1);
    let delay = delay_ms.to_string();
    let ttl = ttl.to_string();
    let count = count_file.display().to_string();
    let upstream = host
        .spawn(
            "e2e-upstream",
            env!("CARGO_BIN_EXE_e2e-upstream"),
            &[&listen, &delay, &ttl, ANSWER, &count],
        )
        .unwrap();
    e2e::wait_until(Duration::from_secs(5), "the counting upstream", || {
        count_file.exists().then_some(())
    })
    .unwrap();
    let r = RouterdConfig::forward(&s.dns, &[addr::FWD1.into()])
        .with(|c| {
            c.rate_limit_qps = 0;
            c.workers = workers;
        })
        .start(&s.router)
        .unwrap();
    Counted {
        s,
        _upstream: upstream,
        count_file,
        r,
    }
}

impl Counted {
    /// Queries the upstream has received so far.
    fn upstream_queries(&self) -> u64 {
        std::fs::read_to_string(&self.count_file)
            .ok()
            .and_then(|text| text.trim().parse().ok())
            .unwrap_or_else(|| panic!("unreadable {}", self.count_file.display()))
    }

    fn ask(&self, name: &str) -> e2e::DigResult {
        self.s
            .client
            .dig(self.r.addr(), &Query::new(name, "A").timeout(5))
            .unwrap()
    }
}

#[test]
fn identical_questions_in_flight_go_upstream_once() {
    if !e2e::require(ROUTERD_TOOLS) {
        return;
    }
    let c = counted(700, 300, 2);
    // routerd's readiness probe went upstream too.
    let before = c.upstream_queries();
    let server = format!("@{}", c.r.addr());
    let clients: Vec<_> = (0..20)
        .map(|_| {
            c.s.client
                .command("dig")
                .args([
                    server.as_str(),
                    "same.coalesce.lab",
                    "A",
                    "+short",
                    "+timeout=5",
                    "+tries=1",
                ])
                .stdout(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for client in clients {
        let out = client.wait_with_output().unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), ANSWER);
    }
    assert_eq!(
        c.upstream_queries() - before,
        1,
        "20 identical questions in flight must reach the upstream once"
    );
}

#[test]
fn popular_answers_are_refreshed_before_they_expire() {
    if !e2e::require(ROUTERD_TOOLS) {
        return;
    }
    // Prefetch is due once an entry has had a few hits and less than a
    // tenth of its TTL is left: with TTL 12 s, in its last second. Hits
    // are counted per worker (each owns its replica): one worker makes
    // them all count, whichever socket the kernel picks for each query.
    let c = counted(0, 12, 1);
    let name = "popular.prefetch.lab";
    let start = Instant::now();
    let first = c.ask(name);
    assert_eq!(first.answers("A"), [ANSWER], "{}", first.raw);
    let after_first = c.upstream_queries();
    for _ in 0..3 {
        assert_eq!(c.ask(name).answers("A"), [ANSWER]);
    }
    assert_eq!(c.upstream_queries(), after_first, "hits stay in the cache");

    std::thread::sleep(Duration::from_millis(11_300).saturating_sub(start.elapsed()));
    let late = c.ask(name);
    assert_eq!(late.answers("A"), [ANSWER], "{}", late.raw);
    e2e::wait_until(Duration::from_secs(2), "the prefetch upstream", || {
        (c.upstream_queries() == after_first + 1).then_some(())
    })
    .unwrap();

    // Past the first answer's expiry the refreshed entry answers at once,
    // with nothing more sent upstream.
    std::thread::sleep(Duration::from_millis(12_600).saturating_sub(start.elapsed()));
    let refreshed = c.ask(name);
    assert_eq!(refreshed.answers("A"), [ANSWER], "{}", refreshed.raw);
    assert_eq!(c.upstream_queries(), after_first + 1);
    let ttl = refreshed.answer.first().map(|rr| rr.ttl).unwrap_or(0);
    assert!(ttl >= 10, "the refreshed entry's TTL: {}", refreshed.raw);
}

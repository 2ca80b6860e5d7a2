//! The figures as tables (text and markdown), routerd's targets, and the
//! machine and versions they were measured with.

use std::fmt::Write as _;
use std::path::Path;

use benches::cpu_model;
use benches::table::{cores, first_line_of, markdown_table, median, num, ratio, text_table};

use crate::memory::{Memory, mb};
use crate::rounds::{Job, Queries, Run, Summary, per_round};
use crate::servers::Kind;
use crate::starts::Sample;

/// Date, machine, versions and command: the header of every table.
#[derive(Debug, Clone)]
pub struct Environment {
    lines: Vec<(&'static str, String)>,
}

impl Environment {
    pub fn collect(routerd: &Path) -> Environment {
        let unbound = first_line_of("unbound", &["-V"], "Version");
        let dnsmasq = first_line_of("dnsmasq", &["--version"], "version");
        let pdns = first_line_of("pdns_recursor", &["--version"], "PowerDNS Recursor");
        let versions = [
            first_line_of(&routerd.to_string_lossy(), &["--version"], "routerd"),
            format!("unbound {}", unbound.trim_start_matches("Version ")),
            // "Dnsmasq version 2.89  Copyright (c) ..."
            dnsmasq.split("  ").next().unwrap_or("unknown").to_string(),
            // "Nov 21 12:58:02 PowerDNS Recursor 4.8.8 (C) 2001-2022 ..."
            pdns.split_once("PowerDNS")
                .map_or("unknown".to_string(), |(_, v)| {
                    format!("PowerDNS{}", v.split(" (C)").next().unwrap_or(v))
                }),
            format!(
                "dnsperf {}",
                first_line_of("dnsperf", &["-h"], "Version").trim_start_matches("Version ")
            ),
        ];
        Environment {
            lines: vec![
                (
                    "date",
                    first_line_of("date", &["-u", "+%Y-%m-%d %H:%M:%S UTC"], ""),
                ),
                (
                    "machine",
                    format!(
                        "{} x {} cores, {}",
                        cpu_model(),
                        cores(),
                        first_line_of("uname", &["-sr"], "")
                    ),
                ),
                ("versions", versions.join("; ")),
                (
                    "command",
                    // benches/blocklist.sh passes the command as typed.
                    std::env::var("BLOCKLIST_BENCH_COMMAND")
                        .unwrap_or_else(|_| std::env::args().collect::<Vec<_>>().join(" ")),
                ),
            ],
        }
    }

    pub fn print(&self) {
        for (key, value) in &self.lines {
            println!("{:<9} {value}", format!("{key}:"));
        }
    }

    fn markdown(&self) -> String {
        let mut md = String::new();
        for (key, value) in &self.lines {
            let _ = writeln!(md, "- {key}: {value}");
        }
        md
    }
}

/// Everything measured, ready to print.
#[derive(Debug)]
pub struct Results<'a> {
    pub kinds: &'a [Kind],
    pub domains: u64,
    /// How the run was shaped, one line each (list, query files, load).
    pub setup: Vec<String>,
    pub starts: &'a [Sample],
    /// Memory of the measured servers after the rounds.
    pub after: &'a [(Kind, bool, Memory)],
    pub jobs: &'a [Job],
    pub summaries: &'a [Summary],
    pub runs: &'a [Run],
    /// routerd's load with and without list swaps, when measured.
    pub swaps: Option<&'a crate::swaps::SwapRuns>,
}

const SWAP_COLUMNS: [&str; 6] = ["run", "QPS", "QPS/CPU-s", "p99 ms", "lost", "refreshes"];

const START_COLUMNS: [&str; 8] = [
    "server",
    "list",
    "answer after s",
    "RSS MB",
    "peak MB",
    "list costs MB",
    "RSS after rounds MB",
    "peak after rounds MB",
];

const QPS_COLUMNS: [&str; 9] = [
    "server",
    "queries",
    "QPS",
    "QPS/CPU-s",
    "CPU %",
    "p99 ms",
    "lost",
    "wrong rcode",
    "machine %",
];

/// Medians of the cold starts of one server, one variant.
#[derive(Debug, Clone, Copy)]
struct StartFigures {
    starts: usize,
    hit_s: f64,
    rss_mb: f64,
    hwm_mb: f64,
}

impl Results<'_> {
    fn start_figures(&self, kind: Kind, list: bool) -> StartFigures {
        let mine: Vec<&Sample> = self
            .starts
            .iter()
            .filter(|s| s.kind == kind && s.list == list)
            .collect();
        let m = |f: &dyn Fn(&Sample) -> f64| median(mine.iter().map(|s| f(s)).collect());
        StartFigures {
            starts: mine.len(),
            hit_s: m(&|s| s.seen.hit.as_secs_f64()),
            rss_mb: m(&|s| mb(s.memory.rss_kb)),
            hwm_mb: m(&|s| mb(s.memory.hwm_kb)),
        }
    }

    fn after(&self, kind: Kind, list: bool) -> Option<Memory> {
        self.after
            .iter()
            .find(|(k, l, _)| *k == kind && *l == list)
            .map(|(_, _, m)| *m)
    }

    fn job(&self, kind: Kind, list: bool, queries: Queries) -> Option<usize> {
        self.jobs
            .iter()
            .position(|j| j.kind == kind && j.list == list && j.queries == queries)
    }

    fn summary(&self, kind: Kind, list: bool, queries: Queries) -> Option<&Summary> {
        self.job(kind, list, queries)
            .and_then(|i| self.summaries.get(i))
    }

    /// routerd's allowed QPS per CPU-second with the list over without,
    /// round by round: the runs of one round are minutes apart at most,
    /// so these show how much of the medians' difference is the machine.
    fn list_ratio_per_round(&self) -> Vec<String> {
        let (Some(with), Some(without)) = (
            self.job(Kind::Routerd, true, Queries::Allowed),
            self.job(Kind::Routerd, false, Queries::Allowed),
        ) else {
            return Vec::new();
        };
        per_round(with, self.runs)
            .into_iter()
            .zip(per_round(without, self.runs))
            .map(|(w, wo)| ratio(w, wo))
            .collect()
    }

    fn start_rows(&self) -> Vec<Vec<String>> {
        let mut rows = Vec::new();
        for &kind in self.kinds {
            let without = self.start_figures(kind, false);
            for list in [false, true] {
                let f = self.start_figures(kind, list);
                let after = self.after(kind, list);
                let after_mb = |v: fn(&Memory) -> u64| after.map_or(f64::NAN, |m| mb(v(&m)));
                rows.push(vec![
                    format!("{} ({}x)", kind.name(), f.starts),
                    if list { "yes" } else { "no" }.to_string(),
                    num(f.hit_s, 3),
                    num(f.rss_mb, 1),
                    num(f.hwm_mb, 1),
                    if list {
                        num(f.rss_mb - without.rss_mb, 1)
                    } else {
                        String::new()
                    },
                    num(after_mb(|m| m.rss_kb), 1),
                    num(after_mb(|m| m.hwm_kb), 1),
                ]);
            }
        }
        rows
    }

    fn qps_rows(&self) -> Vec<Vec<String>> {
        self.jobs
            .iter()
            .zip(self.summaries)
            .map(|(job, s)| {
                vec![
                    format!(
                        "{}{} ({}x)",
                        job.kind.name(),
                        if job.list { "" } else { ", no list" },
                        s.runs
                    ),
                    job.queries.name().to_string(),
                    num(s.qps, 0),
                    num(s.qps_per_cpu_s, 0),
                    num(s.cpu_pct, 1),
                    num(s.p99_ms, 3),
                    num(s.lost, 0),
                    num(s.wrong, 0),
                    num(s.machine_pct, 1),
                ]
            })
            .collect()
    }

    /// routerd's own report of its builds (medians over the starts).
    fn filter_line(&self) -> Option<String> {
        let built: Vec<_> = self
            .starts
            .iter()
            .filter(|s| s.kind == Kind::Routerd && s.list)
            .filter_map(|s| s.filter)
            .collect();
        let first = built.first()?;
        let m =
            |f: &dyn Fn(&crate::servers::FilterBuilt) -> f64| median(built.iter().map(f).collect());
        Some(format!(
            "routerd's log (\"filter built\", median of {}): {} domains, compiled set {:.1} MB, built in {:.0} ms",
            built.len(),
            first.domains,
            m(&|f| f.bytes as f64) / 1e6,
            m(&|f| f.build_ms as f64),
        ))
    }

    /// routerd against the targets, one line each.
    fn targets(&self) -> Vec<String> {
        let verdict = |ok: bool| if ok { "met" } else { "NOT met" };
        let routerd = self.start_figures(Kind::Routerd, true);
        let peak = self
            .after(Kind::Routerd, true)
            .map_or(routerd.hwm_mb, |m| mb(m.hwm_kb));
        let qps_list = self
            .summary(Kind::Routerd, true, Queries::Allowed)
            .map_or(f64::NAN, |s| s.qps_per_cpu_s);
        let qps_none = self
            .summary(Kind::Routerd, false, Queries::Allowed)
            .map_or(f64::NAN, |s| s.qps_per_cpu_s);
        let mut lines = vec![
            format!(
                "target: load under 1.5 s: first blocked answer after {} s: {}",
                num(routerd.hit_s, 3),
                verdict(routerd.hit_s < 1.5)
            ),
            format!(
                "target: whole process under 64 MB with the list: peak RSS {} MB: {}",
                num(peak, 1),
                verdict(peak < 64.0)
            ),
            format!(
                "target: allowed QPS per CPU-second with the list within 5% of without: {} / {} = {} \
                 (per round: {}): {}",
                num(qps_list, 0),
                num(qps_none, 0),
                ratio(qps_list, qps_none),
                self.list_ratio_per_round().join(" "),
                verdict(qps_list >= 0.95 * qps_none)
            ),
        ];
        for &peer in self.kinds.iter().filter(|k| **k != Kind::Routerd) {
            lines.push(self.versus(peer, peak));
        }
        lines
    }

    /// routerd against one peer on each figure.
    fn versus(&self, peer: Kind, routerd_peak: f64) -> String {
        let r = self.start_figures(Kind::Routerd, true);
        let p = self.start_figures(peer, true);
        let p_peak = self.after(peer, true).map_or(p.hwm_mb, |m| mb(m.hwm_kb));
        let qps = |kind, queries| {
            self.summary(kind, true, queries)
                .map_or(f64::NAN, |s| s.qps_per_cpu_s)
        };
        let figures = [
            ("first blocked answer", r.hit_s, p.hit_s, false),
            ("peak RSS", routerd_peak, p_peak, false),
            (
                "blocked QPS/CPU-s",
                qps(Kind::Routerd, Queries::Blocked),
                qps(peer, Queries::Blocked),
                true,
            ),
            (
                "allowed QPS/CPU-s",
                qps(Kind::Routerd, Queries::Allowed),
                qps(peer, Queries::Allowed),
                true,
            ),
        ];
        let ahead = figures.iter().all(|(_, mine, theirs, higher)| {
            if *higher {
                mine > theirs
            } else {
                mine < theirs
            }
        });
        let parts: Vec<String> = figures
            .iter()
            .map(|(what, mine, theirs, _)| format!("{what} {}", ratio(*mine, *theirs)))
            .collect();
        format!(
            "target: ahead of {} on each figure (routerd/{}: {}): {}",
            peer.name(),
            peer.name(),
            parts.join(", "),
            if ahead { "met" } else { "NOT met" }
        )
    }

    pub fn print(&self) {
        println!("\nstarts and memory (medians of cold starts; MB = 10^6 bytes):");
        print!("{}", text_table(&START_COLUMNS, &self.start_rows()));
        println!("\nQPS (medians of the rounds):");
        print!("{}", text_table(&QPS_COLUMNS, &self.qps_rows()));
        if let Some(line) = self.filter_line() {
            println!("{line}");
        }
        if let Some(rows) = self.swap_rows() {
            println!("\nlist swaps during routerd's allowed-query load:");
            print!("{}", text_table(&SWAP_COLUMNS, &rows));
        }
        for line in self.targets() {
            println!("{line}");
        }
    }

    fn swap_rows(&self) -> Option<Vec<Vec<String>>> {
        let swaps = self.swaps?;
        let mut times = swaps.refresh_s.clone();
        times.sort_by(f64::total_cmp);
        let median = times.get(times.len() / 2).copied().unwrap_or(f64::NAN);
        let row = |label: &str, m: &benches::dnsperf::Measured, refreshes: String| {
            vec![
                label.to_string(),
                format!("{:.0}", m.report.qps),
                format!("{:.0}", m.qps_per_cpu_s()),
                m.report
                    .p99_s
                    .map_or_else(|| "-".to_string(), |s| format!("{:.3}", s * 1e3)),
                m.report.lost.to_string(),
                refreshes,
            ]
        };
        Some(vec![
            row("quiet", &swaps.quiet, "-".into()),
            row(
                "list swapped every 2 s",
                &swaps.swapping,
                format!("{} (median {:.2} s each)", times.len(), median),
            ),
        ])
    }

    pub fn markdown(&self, env: &Environment) -> String {
        let mut md = format!("### Blocklist benchmark: {} domains\n\n", self.domains);
        md.push_str(&env.markdown());
        for line in &self.setup {
            let _ = writeln!(md, "- {line}");
        }
        md.push_str("\nStarts and memory (medians of cold starts; MB = 10^6 bytes):\n\n");
        md.push_str(&markdown_table(&START_COLUMNS, &self.start_rows()));
        md.push_str("\nQPS (medians of the rounds):\n\n");
        md.push_str(&markdown_table(&QPS_COLUMNS, &self.qps_rows()));
        if let Some(rows) = self.swap_rows() {
            md.push_str("\nList swaps during routerd's allowed-query load (one run each):\n\n");
            md.push_str(&markdown_table(&SWAP_COLUMNS, &rows));
        }
        md.push('\n');
        if let Some(line) = self.filter_line() {
            let _ = writeln!(md, "{line}  ");
        }
        for line in self.targets() {
            let _ = writeln!(md, "{line}  ");
        }
        md
    }
}

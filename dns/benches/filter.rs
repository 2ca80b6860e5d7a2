//! Filter benchmarks: building the compiled set from a generated hosts
//! list of a million names, and checking names against it (hits, misses,
//! and a group without lists).
//!
//! `cargo bench -p dns --bench filter` (add `-- --quick` for a short run).
//! Also prints, once, the set's size, one build's time and the peak RSS
//! the build adds.

#![allow(clippy::unwrap_used, clippy::expect_used)] // benchmark setup

use std::fs::File;
use std::hint::black_box;
use std::io::{BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use criterion::Criterion;
use dns::filter::testdata::{generate_list, name};
use dns::filter::{FilterSet, FilterSetBuilder, ListMask, ParseOptions};

const NAMES: usize = 1_000_000;
const SEED: u64 = 1;
/// Names cycled through by the check benchmarks: enough to defeat branch
/// prediction, few enough to stay in cache, like a resolver's busy names.
const WARM: usize = 4096;
/// A sample of the whole list, to see the cost when the set is cold.
const COLD: usize = 1 << 18;

/// Group 0 uses the list, group 1 uses no list.
fn build(path: &Path) -> FilterSet {
    let mut builder = FilterSetBuilder::new();
    let file = BufReader::with_capacity(1 << 16, File::open(path).unwrap());
    builder
        .add_list("generated", file, ParseOptions::default())
        .unwrap();
    builder.build(&[ListMask::default().with(0), ListMask::default()])
}

fn wire(name: &str) -> Vec<u8> {
    let mut buf = [0u8; 256];
    dns::filter::name::to_wire(name, &mut buf).unwrap().to_vec()
}

/// Names under listed names: the listed name itself, or one or two labels
/// more, as queries for blocked trackers look.
fn hits(count: usize) -> Vec<Vec<u8>> {
    let step = (NAMES / count).max(1);
    (0..count)
        .map(|i| {
            let listed = name(SEED, (i * step) as u64);
            match i % 3 {
                0 => wire(&listed),
                1 => wire(&format!("www.{listed}")),
                _ => wire(&format!("a1.img.{listed}")),
            }
        })
        .collect()
}

/// Names of the same shape that are not listed, nor under a listed name.
fn misses(count: usize) -> Vec<Vec<u8>> {
    (0..count)
        .map(|i| wire(&name(SEED, (NAMES + i) as u64)))
        .collect()
}

/// `VmRSS` or `VmHWM` of this process, in KiB.
fn status_kib(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// One build, measured for the report: time, set size, and how far the
/// peak RSS rises above the RSS before it (the peak is reset first).
fn report(path: &Path) {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let before = status_kib("VmRSS:");
    let start = Instant::now();
    let set = build(path);
    let took = start.elapsed();
    let peak = status_kib("VmHWM:");
    eprintln!(
        "filter set of {NAMES} names: built in {:.0} ms, {} entries, heap {:.1} MiB",
        took.as_secs_f64() * 1e3,
        set.domain_entries(),
        set.heap_bytes() as f64 / (1 << 20) as f64,
    );
    if let (Some(before), Some(peak)) = (before, peak) {
        eprintln!(
            "peak RSS during the build: {:.1} MiB above the {:.1} MiB before it",
            (peak.saturating_sub(before)) as f64 / 1024.0,
            before as f64 / 1024.0,
        );
    }
}

fn bench_build(c: &mut Criterion, path: &Path) {
    let mut group = c.benchmark_group("filter_build");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(15));
    group.bench_function("hosts_1m", |b| b.iter(|| black_box(build(path))));
    group.finish();
}

fn bench_check(c: &mut Criterion, set: &FilterSet) {
    let cases = [
        ("hit", 0, hits(WARM), true),
        ("miss", 0, misses(WARM), false),
        ("no_lists", 1, hits(WARM), false),
        ("hit_cold", 0, hits(COLD), true),
        ("miss_cold", 0, misses(COLD), false),
    ];
    for (label, group, names, blocked) in &cases {
        let wrong = names
            .iter()
            .filter(|n| set.check(*group, n).is_some() != *blocked)
            .count();
        assert_eq!(wrong, 0, "{label}: {wrong} names decided wrongly");
    }
    let mut group = c.benchmark_group("filter_check");
    for (label, index, names, _) in &cases {
        let mask = names.len() - 1;
        let mut i = 0;
        group.bench_function(*label, |b| {
            b.iter(|| {
                i = (i + 1) & mask;
                black_box(set.check(*index, black_box(&names[i])))
            })
        });
    }
    group.finish();
}

/// A generated list in the temporary directory, removed when dropped.
struct ListFile(PathBuf);

impl ListFile {
    fn write() -> Self {
        let path = std::env::temp_dir().join(format!(
            "dns-filter-bench-{}-{NAMES}.hosts",
            std::process::id()
        ));
        let mut out = BufWriter::new(File::create(&path).unwrap());
        generate_list(NAMES, SEED, &mut out).unwrap();
        out.flush().unwrap();
        ListFile(path)
    }
}

impl Drop for ListFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn main() {
    let list = ListFile::write();
    report(&list.0);
    let mut c = Criterion::default().configure_from_args();
    bench_build(&mut c, &list.0);
    let set = build(&list.0);
    bench_check(&mut c, &set);
    c.final_summary();
}

//! The results as a markdown table, with the machine they came from.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use crate::Listed;

/// Date, machine and versions, for the table's header.
#[derive(Debug, Clone)]
pub struct Environment {
    pub date: String,
    pub cpu: String,
    pub cores: usize,
    pub kernel: String,
    pub nft: String,
    pub command: String,
}

fn first_line(program: &str, args: &[&str]) -> String {
    let path = e2e::require::find_tool(program).unwrap_or_else(|| PathBuf::from(program));
    Command::new(path)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .ok()
        .and_then(|out| {
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .map(str::trim)
                .find(|l| !l.is_empty())
                .map(str::to_string)
        })
        .unwrap_or_else(|| "unknown".into())
}

impl Environment {
    pub fn collect() -> Environment {
        let cpu = benches::cpu_model();
        Environment {
            date: first_line("date", &["-u", "+%Y-%m-%d %H:%M:%S UTC"]),
            cpu,
            cores: cores(),
            kernel: first_line("uname", &["-sr"]),
            nft: first_line("nft", &["--version"]),
            // benches/policy.sh passes the command as typed.
            command: std::env::var("POLICY_BENCH_COMMAND")
                .unwrap_or_else(|_| std::env::args().collect::<Vec<_>>().join(" ")),
        }
    }
}

/// Cores this process may run on (what `nproc` prints).
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

/// One line of the table; `None` prints as `-`.
#[derive(Debug, Clone)]
pub struct Row {
    pub label: &'static str,
    pub validate_ms: Option<f64>,
    pub compile_ms: Option<f64>,
    pub apply_ms: Option<f64>,
    pub listed: Listed,
    /// Rules (verdict map lookups included) a measured packet is matched
    /// against in the forward hook.
    pub depth: usize,
    pub pps: Option<f64>,
    /// 1e6/pps − 1e6/pps of the empty baseline.
    pub added_us: Option<f64>,
}

fn ms(v: Option<f64>) -> String {
    match v {
        Some(v) if v >= 100.0 => format!("{v:.0}"),
        Some(v) => format!("{v:.1}"),
        None => "-".into(),
    }
}

/// The header lines (`- key: value`), then the table.
pub fn markdown(title: &str, env: &Environment, notes: &[String], rows: &[Row]) -> String {
    let mut md = format!("### {title}\n\n");
    let _ = writeln!(md, "- date: {}", env.date);
    let _ = writeln!(
        md,
        "- machine: {}, nproc {}, {}, {}",
        env.cpu, env.cores, env.kernel, env.nft
    );
    let _ = writeln!(md, "- command: `{}`", env.command);
    for note in notes {
        let _ = writeln!(md, "- {note}");
    }
    md.push_str(
        "\n| ruleset | validate ms | compile ms | apply ms | nft rules | chains | elements \
         | rules on path | forwarded pps | added µs/packet |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for row in rows {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            row.label,
            ms(row.validate_ms),
            ms(row.compile_ms),
            ms(row.apply_ms),
            row.listed.rules,
            row.listed.chains,
            row.listed.elements,
            row.depth,
            row.pps.map_or("-".into(), |pps| format!("{pps:.0}")),
            row.added_us.map_or("-".into(), |us| format!("{us:.2}")),
        );
    }
    md
}

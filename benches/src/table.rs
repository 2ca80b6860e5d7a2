//! The tables the lab benchmarks print: plain text for the terminal,
//! markdown for the README, and the figures' formatting.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::{Command, Stdio};

/// Median of `values` (mean of the middle two for an even count); NaN
/// when nothing finite was measured.
pub fn median(mut values: Vec<f64>) -> f64 {
    values.retain(|v| v.is_finite());
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    if values.len() % 2 == 1 {
        values[mid]
    } else {
        (values[mid - 1] + values[mid]) / 2.0
    }
}

/// A number for the table: `-` when not measured.
pub fn num(v: f64, decimals: usize) -> String {
    if v.is_finite() {
        format!("{v:.decimals$}")
    } else {
        "-".to_string()
    }
}

/// `a / b` as `1.23x`, `-` when either is unknown.
pub fn ratio(a: f64, b: f64) -> String {
    if a.is_finite() && b.is_finite() && b > 0.0 {
        format!("{:.2}x", a / b)
    } else {
        "-".to_string()
    }
}

/// A plain-text table under `columns`: the first column left-aligned,
/// the others (numbers) right-aligned.
pub fn text_table(columns: &[&str], rows: &[Vec<String>]) -> String {
    let header: Vec<String> = columns.iter().map(|c| c.to_string()).collect();
    let all: Vec<&Vec<String>> = std::iter::once(&header).chain(rows).collect();
    let widths: Vec<usize> = (0..columns.len())
        .map(|c| {
            all.iter()
                .map(|r| r.get(c).map_or(0, String::len))
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for (i, row) in all.iter().enumerate() {
        for (c, cell) in row.iter().enumerate() {
            let w = widths.get(c).copied().unwrap_or(0);
            if c == 0 {
                let _ = write!(out, "{cell:<w$}");
            } else {
                let _ = write!(out, "  {cell:>w$}");
            }
        }
        out.push('\n');
        if i == 0 {
            let rule: usize = widths.iter().sum::<usize>() + 2 * (widths.len() - 1);
            out.push_str(&"-".repeat(rule));
            out.push('\n');
        }
    }
    out
}

/// The same table in markdown.
pub fn markdown_table(columns: &[&str], rows: &[Vec<String>]) -> String {
    let mut out = format!("| {} |\n", columns.join(" | "));
    let _ = writeln!(
        out,
        "|{}",
        (0..columns.len())
            .map(|c| if c == 0 { "---|" } else { "---:|" })
            .collect::<String>()
    );
    for row in rows {
        let _ = writeln!(out, "| {} |", row.join(" | "));
    }
    out
}

/// The first line of a command's output (stdout, then stderr) that
/// contains `matching`, or "unknown": how the tables name versions.
pub fn first_line_of(program: &str, args: &[&str], matching: &str) -> String {
    let path = e2e::require::find_tool(program).unwrap_or_else(|| PathBuf::from(program));
    let Ok(out) = Command::new(path).args(args).stdin(Stdio::null()).output() else {
        return "unknown".to_string();
    };
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    text.lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && l.contains(matching))
        .unwrap_or("unknown")
        .to_string()
}

/// Cores this process may run on (what `nproc` prints).
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), 2.5);
        assert_eq!(median(vec![f64::NAN, 1.0]), 1.0);
        assert!(median(vec![]).is_nan());
    }

    #[test]
    fn tables_align_and_convert() {
        let rows = vec![vec!["a".to_string(), "1".to_string()]];
        assert_eq!(
            text_table(&["x", "value"], &rows),
            "x  value\n--------\na      1\n"
        );
        assert_eq!(
            markdown_table(&["x", "value"], &rows),
            "| x | value |\n|---|---:|\n| a | 1 |\n"
        );
        assert_eq!(num(f64::NAN, 1), "-");
        assert_eq!(ratio(3.0, 2.0), "1.50x");
    }
}

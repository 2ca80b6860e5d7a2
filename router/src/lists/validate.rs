//! Deciding whether a candidate copy may replace the stored one.
//!
//! The sniffing and the judgement are pure functions of what was read, so
//! they are tested without files; [`inspect`] is the blocking driver.

use std::fmt::Write as _;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::Path;

use dns::filter::{ListSummary, Malformed, ParseOptions};

use super::Refusal;

/// How much of the start is checked for NUL bytes.
const BINARY_SNIFF: usize = 64 * 1024;
/// How far into the file an HTML page announces itself.
const HTML_SNIFF: usize = 1024;
/// How many malformed lines a refusal quotes.
const SAMPLES_IN_REASON: usize = 3;

/// What was found in a candidate file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Inspection {
    pub summary: ListSummary,
    /// Lines that are neither blank nor comments; only counted when the
    /// parser found nothing at all, since it is only needed then.
    pub content_lines: u64,
}

/// Refuses content that is obviously not a list, from its first bytes.
pub(crate) fn sniff(head: &[u8]) -> Result<(), Refusal> {
    if head[..head.len().min(BINARY_SNIFF)].contains(&0) {
        return Err(Refusal::Binary);
    }
    if looks_like_html(&head[..head.len().min(HTML_SNIFF)]) {
        return Err(Refusal::Html);
    }
    Ok(())
}

/// Captive portals and error pages are the usual HTML that arrives instead
/// of a list. Requiring the content to open with a tag keeps a list whose
/// comment merely mentions `<html>` acceptable.
fn looks_like_html(head: &[u8]) -> bool {
    let head = head.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(head);
    let start = head
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(head.len());
    if head.get(start) != Some(&b'<') {
        return false;
    }
    let lower = head.to_ascii_lowercase();
    contains(&lower, b"<!doctype html") || contains(&lower, b"<html")
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Decides on a parsed candidate, given the rule count of the stored copy.
pub(crate) fn judge(
    inspection: &Inspection,
    previous_rules: Option<u64>,
    max_shrink_percent: u8,
) -> Result<(), Refusal> {
    let summary = &inspection.summary;
    if summary.malformed > summary.rules {
        return Err(Refusal::Malformed {
            malformed: summary.malformed,
            lines: summary.lines.max(summary.malformed),
            samples: describe_samples(&summary.samples),
        });
    }
    if summary.rules == 0 && inspection.content_lines > 0 {
        return Err(Refusal::NoRules {
            lines: inspection.content_lines,
        });
    }
    let Some(previous) = previous_rules else {
        return Ok(());
    };
    if summary.rules == 0 && previous > 0 {
        return Err(Refusal::Empty { previous });
    }
    let percent = max_shrink_percent.min(100);
    let floor = u128::from(previous) * u128::from(100 - percent) / 100;
    if u128::from(summary.rules) < floor {
        return Err(Refusal::Shrank {
            previous,
            rules: summary.rules,
            percent,
        });
    }
    Ok(())
}

fn describe_samples(samples: &[Malformed]) -> String {
    let mut out = String::new();
    for (i, sample) in samples.iter().take(SAMPLES_IN_REASON).enumerate() {
        out.push_str(if i == 0 { " (" } else { "; " });
        let _ = write!(
            out,
            "line {}: {:?}: {}",
            sample.line, sample.text, sample.reason
        );
    }
    if !out.is_empty() {
        out.push(')');
    }
    out
}

/// Sniffs and parses a candidate file. Blocking: run it off the runtime.
pub(crate) fn inspect(path: &Path, exact: bool) -> Result<Inspection, Refusal> {
    let read_error = |source| Refusal::Inspect {
        path: path.to_path_buf(),
        source,
    };
    let mut file = File::open(path).map_err(read_error)?;
    let mut head = Vec::with_capacity(BINARY_SNIFF);
    (&mut file)
        .take(BINARY_SNIFF as u64)
        .read_to_end(&mut head)
        .map_err(read_error)?;
    sniff(&head)?;
    let reader = BufReader::new(io::Cursor::new(head).chain(file));
    let summary =
        dns::filter::list::parse(reader, ParseOptions { exact }, |_| {}).map_err(read_error)?;
    let content_lines = if summary.rules == 0 && summary.malformed == 0 {
        count_content_lines(BufReader::new(File::open(path).map_err(read_error)?))
            .map_err(read_error)?
    } else {
        0
    };
    Ok(Inspection {
        summary,
        content_lines,
    })
}

/// Lines other than blanks and comments (`#` hosts style, `!` and
/// `[Adblock Plus 2.0]` AdBlock style).
pub(crate) fn count_content_lines(mut reader: impl BufRead) -> io::Result<u64> {
    let mut count = 0;
    let mut line = Vec::new();
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line)? == 0 {
            return Ok(count);
        }
        let trimmed = line.trim_ascii();
        let comment = matches!(trimmed.first(), None | Some(b'#' | b'!' | b'['));
        if !comment {
            count += 1;
        }
    }
}

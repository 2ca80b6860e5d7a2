//! Parsing blocklists and allowlists: hosts files, plain domain lists, the
//! AdBlock-style subset DNS lists use, and `/regex/` rules.
//!
//! The format is recognised per line, so mixed lists work:
//!
//! ```text
//!  0.0.0.0 a.com b.com     hosts (any address): each name, Subtree
//!  a.com                   plain: Subtree
//!  ||a.com^   |a.com^      AdBlock: Subtree, Exact (`^`, `^|` optional)
//!  *.a.com    ||*.a.com^   Subdomains
//!  @@||a.com^              exception (Allow)
//!  ||a.com^$important      beats exceptions; any other modifier: malformed
//!  /^ads?\./   @@/x/$important   regex on the dotted name
//!  # !  [Adblock Plus 2.0]  comments, as is ` #...` after hosts/plain text
//! ```
//!
//! With [`ParseOptions::exact`], Subtree rules become Exact.

use std::io::{self, BufRead, Read};

use super::name::{is_address, is_hosts_boilerplate, normalize};

/// What a rule does to the names it matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    Block,
    Allow,
}

/// Which names a domain rule matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    /// The name itself only (`|example.com^`, or any rule of an exact list).
    Exact,
    /// The name and all its subdomains (`||example.com^`, hosts entries).
    Subtree,
    /// Subdomains only (`*.example.com`).
    Subdomains,
}

/// The pattern of a rule, borrowed from the line (or a normalisation buffer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pattern<'a> {
    /// Lowercase ASCII (IDNs in punycode), no trailing dot.
    Domain(&'a str, Scope),
    /// The regex source between the slashes.
    Regex(&'a str),
}

/// One rule of a list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule<'a> {
    /// 1-based line number.
    pub line: u32,
    pub action: Action,
    /// `$important`: beats exceptions.
    pub important: bool,
    pub pattern: Pattern<'a>,
}

/// How a list is read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ParseOptions {
    /// Domain rules match the name only, not its subdomains.
    pub exact: bool,
}

/// A line that was skipped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Malformed {
    pub line: u32,
    /// The line, cut to a readable length.
    pub text: String,
    pub reason: &'static str,
}

/// What parsing a list found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListSummary {
    pub lines: u64,
    pub rules: u64,
    pub malformed: u64,
    /// The first few malformed lines.
    pub samples: Vec<Malformed>,
}

/// How many malformed lines a summary keeps as samples.
pub const MAX_SAMPLES: usize = 5;

/// Sampled lines are cut to this many characters.
const SAMPLE_CHARS: usize = 100;

/// No rule is longer (a name has at most 253 characters, a regex rule a
/// few hundred), and the cap keeps a binary file without newlines from
/// being buffered whole.
const MAX_LINE: u64 = 4096;

/// Compiled-size cap for one regex rule, so that a list cannot make the
/// resolver build a huge automaton.
pub(crate) const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// Compiles a regex rule the way the filter runs it: on the dotted
/// lowercase name, case-insensitively as AdBlock-style lists expect.
pub(crate) fn compile_regex(source: &str) -> Result<regex::bytes::Regex, regex::Error> {
    regex::bytes::RegexBuilder::new(source)
        .case_insensitive(true)
        .size_limit(REGEX_SIZE_LIMIT)
        .build()
}

/// Parses a list, calling `on_rule` for each rule. Malformed lines are
/// counted and sampled, never fatal; only an I/O error fails.
pub fn parse<R: BufRead>(
    reader: R,
    options: ParseOptions,
    mut on_rule: impl FnMut(Rule<'_>),
) -> io::Result<ListSummary> {
    let mut summary = ListSummary::default();
    let mut rules = 0u64;
    let mut emit = |rule: Rule<'_>| {
        rules += 1;
        on_rule(rule);
    };
    let mut lines = Lines::new(reader);
    let mut parser = LineParser::new(options);
    while let Some(line) = lines.next_line()? {
        summary.lines += 1;
        let result = if line.too_long {
            Err("line too long")
        } else {
            parser.line(line.number, line.text, &mut emit)
        };
        if let Err(reason) = result {
            summary.malformed += 1;
            if summary.samples.len() < MAX_SAMPLES {
                summary.samples.push(Malformed {
                    line: line.number,
                    text: String::from_utf8_lossy(line.text)
                        .trim()
                        .chars()
                        .take(SAMPLE_CHARS)
                        .collect(),
                    reason,
                });
            }
        }
    }
    summary.rules = rules;
    Ok(summary)
}

/// The first line (number, text) of a list that produced exactly this rule:
/// what `routerctl dns why` shows as the line that decided. A domain
/// pattern is normalised before comparing.
pub fn locate<R: BufRead>(
    reader: R,
    options: ParseOptions,
    action: Action,
    important: bool,
    pattern: Pattern<'_>,
) -> io::Result<Option<(u32, String)>> {
    let mut buf = String::new();
    let pattern = match pattern {
        Pattern::Domain(name, scope) => match normalize(name, &mut buf) {
            Ok(name) => Pattern::Domain(name, scope),
            Err(_) => return Ok(None),
        },
        regex @ Pattern::Regex(_) => regex,
    };
    let mut lines = Lines::new(reader);
    let mut parser = LineParser::new(options);
    while let Some(line) = lines.next_line()? {
        if line.too_long {
            continue;
        }
        let mut found = false;
        let _ = parser.line(line.number, line.text, &mut |rule: Rule<'_>| {
            found |=
                rule.action == action && rule.important == important && rule.pattern == pattern;
        });
        if found {
            let text = String::from_utf8_lossy(line.text).trim().to_owned();
            return Ok(Some((line.number, text)));
        }
    }
    Ok(None)
}

/// One line, without its line ending.
struct Line<'a> {
    number: u32,
    text: &'a [u8],
    too_long: bool,
}

/// Reads lines as bytes into one reused buffer: invalid UTF-8 is a
/// malformed line, not an I/O error.
struct Lines<R> {
    reader: R,
    buf: Vec<u8>,
    number: u32,
}

impl<R: BufRead> Lines<R> {
    fn new(reader: R) -> Self {
        Lines {
            reader,
            buf: Vec::with_capacity(256),
            number: 0,
        }
    }

    fn next_line(&mut self) -> io::Result<Option<Line<'_>>> {
        self.buf.clear();
        let read = (&mut self.reader)
            .take(MAX_LINE)
            .read_until(b'\n', &mut self.buf)?;
        if read == 0 {
            return Ok(None);
        }
        let mut too_long = false;
        if self.buf.last() != Some(&b'\n') && read as u64 == MAX_LINE {
            too_long = true;
            self.reader.skip_until(b'\n')?;
        }
        self.number = self.number.saturating_add(1);
        let mut text = &self.buf[..];
        text = text.strip_suffix(b"\n").unwrap_or(text);
        text = text.strip_suffix(b"\r").unwrap_or(text);
        if self.number == 1 {
            text = text.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(text);
        }
        Ok(Some(Line {
            number: self.number,
            text,
            too_long,
        }))
    }
}

/// Turns lines into rules; owns the buffer names are normalised into when
/// they are not normal already.
struct LineParser {
    options: ParseOptions,
    buf: String,
}

/// `Ok` for rules, comments and empty lines; the reason for a malformed
/// line. A hosts line with good and bad names emits the good ones and
/// reports the first bad one.
type LineResult = Result<(), &'static str>;

impl LineParser {
    fn new(options: ParseOptions) -> Self {
        LineParser {
            options,
            buf: String::new(),
        }
    }

    fn line(&mut self, number: u32, raw: &[u8], emit: &mut impl FnMut(Rule<'_>)) -> LineResult {
        let text = std::str::from_utf8(raw)
            .map_err(|_| "not UTF-8 text")?
            .trim();
        if text.is_empty()
            || text.starts_with(['#', '!'])
            || (text.starts_with('[') && text.ends_with(']'))
        {
            return Ok(());
        }
        if let Some(rest) = text.strip_prefix("@@") {
            return self.adblock(number, rest, Action::Allow, emit);
        }
        if text.starts_with(['|', '/']) {
            return self.adblock(number, text, Action::Block, emit);
        }
        let text = strip_comment(text);
        if text.contains('#') {
            return Err("not a DNS rule");
        }
        if text.contains(['^', '$']) || text.starts_with('*') {
            return self.adblock(number, text, Action::Block, emit);
        }
        let mut fields = text.split_ascii_whitespace();
        let Some(first) = fields.next() else {
            return Ok(());
        };
        if !is_address(first) {
            if fields.next().is_some() {
                return Err("more than one name on a line");
            }
            return self.plain(number, first, emit);
        }
        let mut result = Err("an address, not a name");
        for name in fields {
            let named = self.plain(number, name, emit);
            if result.is_ok() || result == Err("an address, not a name") {
                result = named;
            }
        }
        result
    }

    /// A name of a hosts or plain list.
    fn plain(&mut self, number: u32, raw: &str, emit: &mut impl FnMut(Rule<'_>)) -> LineResult {
        if is_hosts_boilerplate(raw) {
            return Ok(());
        }
        let scope = if self.options.exact {
            Scope::Exact
        } else {
            Scope::Subtree
        };
        let name = normalize(raw, &mut self.buf)?;
        emit(Rule {
            line: number,
            action: Action::Block,
            important: false,
            pattern: Pattern::Domain(name, scope),
        });
        Ok(())
    }

    /// An AdBlock-style rule, `@@` already removed.
    fn adblock(
        &mut self,
        number: u32,
        body: &str,
        action: Action,
        emit: &mut impl FnMut(Rule<'_>),
    ) -> LineResult {
        if body.starts_with('/') {
            return regex_rule(number, body, action, emit);
        }
        let (pattern, modifiers) = body.split_once('$').unwrap_or((body, ""));
        let important = parse_modifiers(modifiers)?;
        let (pattern, mut scope) = if let Some(rest) = pattern.strip_prefix("||") {
            (rest, Scope::Subtree)
        } else if let Some(rest) = pattern.strip_prefix('|') {
            (rest, Scope::Exact)
        } else {
            // AdBlock reads an unanchored pattern as a substring; matching
            // the name and its subdomains blocks a subset of that, never
            // a name the list's author did not mean.
            (pattern, Scope::Subtree)
        };
        let pattern = pattern.strip_suffix('|').unwrap_or(pattern);
        let mut pattern = pattern.strip_suffix('^').unwrap_or(pattern);
        if let Some(rest) = pattern.strip_prefix("*.") {
            pattern = rest;
            scope = Scope::Subdomains;
        } else if scope == Scope::Subtree && self.options.exact {
            scope = Scope::Exact;
        }
        let name = normalize(pattern, &mut self.buf)?;
        emit(Rule {
            line: number,
            action,
            important,
            pattern: Pattern::Domain(name, scope),
        });
        Ok(())
    }
}

/// `/regex/` or `/regex/$modifiers`, `@@` already removed.
fn regex_rule(
    number: u32,
    body: &str,
    action: Action,
    emit: &mut impl FnMut(Rule<'_>),
) -> LineResult {
    let inner = body.strip_prefix('/').unwrap_or(body);
    let (source, modifiers) = if let Some(source) = inner.strip_suffix('/') {
        (source, "")
    } else if let Some((source, modifiers)) = inner.rsplit_once("/$") {
        (source, modifiers)
    } else {
        return Err("not a DNS rule");
    };
    if source.is_empty() {
        return Err("empty regex");
    }
    let important = parse_modifiers(modifiers)?;
    compile_regex(source).map_err(|_| "regex does not compile")?;
    emit(Rule {
        line: number,
        action,
        important,
        pattern: Pattern::Regex(source),
    });
    Ok(())
}

/// Whether the modifiers say `important`; any other modifier changes what
/// the rule means in ways a DNS filter cannot honour.
fn parse_modifiers(modifiers: &str) -> Result<bool, &'static str> {
    let mut important = false;
    for modifier in modifiers.split(',').map(str::trim) {
        if modifier.eq_ignore_ascii_case("important") {
            important = true;
        } else if !modifier.is_empty() {
            return Err("unsupported modifier");
        }
    }
    Ok(important)
}

/// Cuts a ` #comment`; a `#` not after whitespace is part of the rule
/// (`example.com##.banner` is a cosmetic rule, not a name and a comment).
fn strip_comment(text: &str) -> &str {
    let bytes = text.as_bytes();
    match bytes
        .windows(2)
        .position(|w| w[0].is_ascii_whitespace() && w[1] == b'#')
    {
        Some(at) => text.get(..at).unwrap_or(text).trim_end(),
        None => text,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)] // tests
mod tests {
    use super::*;

    /// A rule with its pattern owned, for comparing.
    #[derive(Debug, Clone, PartialEq, Eq)]
    struct Owned {
        line: u32,
        action: Action,
        important: bool,
        domain: Option<Scope>,
        text: String,
    }

    fn owned(rule: Rule<'_>) -> Owned {
        let (domain, text) = match rule.pattern {
            Pattern::Domain(name, scope) => (Some(scope), name.to_string()),
            Pattern::Regex(source) => (None, source.to_string()),
        };
        Owned {
            line: rule.line,
            action: rule.action,
            important: rule.important,
            domain,
            text,
        }
    }

    fn parse_with(text: &[u8], options: ParseOptions) -> (Vec<Owned>, ListSummary) {
        let mut rules = Vec::new();
        let summary = parse(text, options, |rule| rules.push(owned(rule))).unwrap();
        assert_eq!(summary.rules, rules.len() as u64);
        (rules, summary)
    }

    fn parse_str(text: &str) -> (Vec<Owned>, ListSummary) {
        parse_with(text.as_bytes(), ParseOptions::default())
    }

    /// `(name, scope)` of each domain rule, `(source, None)` of regexes.
    fn patterns(rules: &[Owned]) -> Vec<(&str, Option<Scope>)> {
        rules.iter().map(|r| (r.text.as_str(), r.domain)).collect()
    }

    fn one(line: &str) -> Result<Owned, &'static str> {
        let (rules, summary) = parse_str(line);
        if let Some(sample) = summary.samples.first() {
            assert!(rules.is_empty(), "{line}: {rules:?}");
            return Err(sample.reason);
        }
        assert_eq!(rules.len(), 1, "{line}: {rules:?}");
        Ok(rules[0].clone())
    }

    const SUBTREE: Option<Scope> = Some(Scope::Subtree);

    #[test]
    fn hosts_files() {
        let (rules, summary) = parse_str(
            "# StevenBlack-style header\n\
             127.0.0.1 localhost\n\
             127.0.0.1 localhost.localdomain\n\
             255.255.255.255 broadcasthost\n\
             ::1 localhost ip6-localhost ip6-loopback\n\
             fe80::1%lo0 localhost\n\
             ff02::1 ip6-allnodes\n\
             0.0.0.0 0.0.0.0\n\
             \n\
             0.0.0.0 a.com b.com c.com\n\
             127.0.0.1 x.example\n\
             :: six.example\n\
             ::1 one.example # trailing comment\n\
             0:0:0:0:0:0:0:0 long.example\n\
             192.168.1.10\tnas.example\n\
             0.0.0.0   spaced.example   \n",
        );
        assert_eq!(
            patterns(&rules),
            [
                ("a.com", SUBTREE),
                ("b.com", SUBTREE),
                ("c.com", SUBTREE),
                ("x.example", SUBTREE),
                ("six.example", SUBTREE),
                ("one.example", SUBTREE),
                ("long.example", SUBTREE),
                ("nas.example", SUBTREE),
                ("spaced.example", SUBTREE),
            ]
        );
        assert_eq!(summary.malformed, 0, "{:?}", summary.samples);
        assert_eq!(summary.lines, 16);
        assert_eq!(rules[0].line, 10);
        assert_eq!(rules[2].line, 10);
        assert!(
            rules
                .iter()
                .all(|r| r.action == Action::Block && !r.important)
        );
    }

    #[test]
    fn hosts_line_with_a_bad_name_keeps_the_good_ones() {
        let (rules, summary) = parse_str("0.0.0.0 good.example bad/name also.example\n");
        assert_eq!(
            patterns(&rules),
            [("good.example", SUBTREE), ("also.example", SUBTREE)]
        );
        assert_eq!(summary.malformed, 1);
        assert_eq!(summary.samples[0].reason, "not a DNS rule");
    }

    #[test]
    fn plain_lists() {
        let (rules, summary) = parse_str(
            "example.com\nExample.ORG.\nads.example.net # why\nzip\nbücher.example\n\
             localhost\n_tracker.example\n",
        );
        assert_eq!(
            patterns(&rules),
            [
                ("example.com", SUBTREE),
                ("example.org", SUBTREE),
                ("ads.example.net", SUBTREE),
                ("zip", SUBTREE),
                ("xn--bcher-kva.example", SUBTREE),
                ("_tracker.example", SUBTREE),
            ]
        );
        assert_eq!(summary.malformed, 0);
    }

    #[test]
    fn adblock_rules() {
        let rule = |line| one(line).unwrap();
        let r = rule("||ads.example.com^");
        assert_eq!((r.text.as_str(), r.domain), ("ads.example.com", SUBTREE));
        assert_eq!((r.action, r.important), (Action::Block, false));
        let r = rule("@@||good.example.com^");
        assert_eq!((r.action, r.domain), (Action::Allow, SUBTREE));
        assert_eq!(rule("|exact.example^").domain, Some(Scope::Exact));
        assert_eq!(rule("*.wild.example").domain, Some(Scope::Subdomains));
        assert_eq!(rule("||*.wild.example^").domain, Some(Scope::Subdomains));
        assert_eq!(rule("@@*.wild.example").domain, Some(Scope::Subdomains));
        assert_eq!(rule("||noanchor.example").text, "noanchor.example");
        assert_eq!(rule("||pipe.example^|").text, "pipe.example");
        assert_eq!(rule("||zip^").text, "zip");
        assert_eq!(rule("||UPPER.Example.^").text, "upper.example");
        assert_eq!(rule("||Bücher.example^").text, "xn--bcher-kva.example");
        assert_eq!(rule("unanchored.example^").domain, SUBTREE);
        let r = rule("||imp.example^$important");
        assert_eq!((r.action, r.important), (Action::Block, true));
        let r = rule("@@||imp.example^$important");
        assert_eq!((r.action, r.important), (Action::Allow, true));
        assert!(rule("||imp.example^$important,").important);
        assert!(rule("*.imp.example$important").important);
    }

    #[test]
    fn adblock_comments_and_headers() {
        let (rules, summary) =
            parse_str("[Adblock Plus 2.0]\n! Title: test\n!\n# hash comment\n||a.example^\n");
        assert_eq!(patterns(&rules), [("a.example", SUBTREE)]);
        assert_eq!(summary.malformed, 0);
        assert_eq!(summary.lines, 5);
    }

    #[test]
    fn what_a_dns_filter_cannot_do_is_malformed() {
        for (line, reason) in [
            ("||example.com^$third-party", "unsupported modifier"),
            (
                "||example.com^$important,third-party",
                "unsupported modifier",
            ),
            ("||example.com^$dnstype=AAAA", "unsupported modifier"),
            (
                "||example.com^$client=192.168.0.0/24",
                "unsupported modifier",
            ),
            ("||example.com^$denyallow=x.com", "unsupported modifier"),
            ("||example.com^$badfilter", "unsupported modifier"),
            ("||example.com^$ctag=device_tv", "unsupported modifier"),
            ("||example.com^$dnsrewrite=1.2.3.4", "unsupported modifier"),
            ("@@/x/$client=a", "unsupported modifier"),
            ("||example.com/ads", "not a DNS rule"),
            ("||example.com:8080^", "not a DNS rule"),
            ("example.com##.banner", "not a DNS rule"),
            ("example.com#@#.banner", "not a DNS rule"),
            ("example.com#$#body { x }", "not a DNS rule"),
            ("/ads/banner.gif", "not a DNS rule"),
            ("||a.*.example^", "wildcard inside a name"),
            ("1.2.3.4", "an address, not a name"),
            ("0.0.0.0", "an address, not a name"),
            ("||1.2.3.4^", "an address, not a name"),
            ("::1", "an address, not a name"),
            ("a..example", "empty label"),
            ("two names.example", "more than one name on a line"),
            ("/(unclosed/", "regex does not compile"),
            ("//", "empty regex"),
            ("ex ample", "more than one name on a line"),
            ("a\u{7f}b.example", "invalid character in a name"),
        ] {
            assert_eq!(one(line).map(|r| r.text), Err(reason), "{line}");
        }
    }

    #[test]
    fn regex_rules() {
        let r = one(r"/^ad[0-9]+\./").unwrap();
        assert_eq!((r.text.as_str(), r.domain), (r"^ad[0-9]+\.", None));
        assert_eq!((r.action, r.important), (Action::Block, false));
        let r = one(r"@@/^good\./").unwrap();
        assert_eq!((r.action, r.text.as_str()), (Action::Allow, r"^good\."));
        let r = one(r"/^tracker$/$important").unwrap();
        assert_eq!((r.text.as_str(), r.important), ("^tracker$", true));
        let r = one(r"/a\/b$/").unwrap();
        assert_eq!(r.text, r"a\/b$");
        assert_eq!(
            one("/(a{1000}){1000}/").map(|r| r.text),
            Err("regex does not compile")
        );
    }

    #[test]
    fn exact_lists() {
        let exact = ParseOptions { exact: true };
        let (rules, _) = parse_with(
            b"0.0.0.0 hosts.example\nplain.example\n||anchored.example^\n|bar.example^\n*.sub.example\n/re/\n",
            exact,
        );
        assert_eq!(
            patterns(&rules),
            [
                ("hosts.example", Some(Scope::Exact)),
                ("plain.example", Some(Scope::Exact)),
                ("anchored.example", Some(Scope::Exact)),
                ("bar.example", Some(Scope::Exact)),
                ("sub.example", Some(Scope::Subdomains)),
                ("re", None),
            ]
        );
    }

    #[test]
    fn malformed_lines_are_sampled_with_line_numbers() {
        let mut text = String::new();
        for i in 1..=20 {
            if i % 3 == 0 {
                text.push_str(&format!("bad/{i}\n"));
            } else {
                text.push_str(&format!("good{i}.example\n"));
            }
        }
        text.push_str(&format!("{}/long\n", "x".repeat(300)));
        let (rules, summary) = parse_str(&text);
        assert_eq!(summary.lines, 21);
        assert_eq!(summary.malformed, 7);
        assert_eq!(rules.len(), 14);
        assert_eq!(summary.samples.len(), MAX_SAMPLES);
        let lines: Vec<u32> = summary.samples.iter().map(|s| s.line).collect();
        assert_eq!(lines, [3, 6, 9, 12, 15]);
        assert_eq!(summary.samples[0].text, "bad/3");
        assert_eq!(summary.samples[0].reason, "not a DNS rule");

        let (_, summary) = parse_str(&format!("ok.example\n{}/long\n", "é".repeat(300)));
        assert_eq!(summary.samples[0].line, 2);
        assert_eq!(summary.samples[0].text.chars().count(), 100);
    }

    #[test]
    fn crlf_and_bom() {
        let (rules, summary) = parse_str(
            "\u{feff}0.0.0.0 first.example\r\n||second.example^\r\n# c\r\nthird.example\r\n",
        );
        assert_eq!(
            patterns(&rules),
            [
                ("first.example", SUBTREE),
                ("second.example", SUBTREE),
                ("third.example", SUBTREE),
            ]
        );
        assert_eq!(summary.malformed, 0);
        let (rules, _) = parse_str("\u{feff}bom.example");
        assert_eq!(patterns(&rules), [("bom.example", SUBTREE)]);
    }

    #[test]
    fn invalid_utf8_is_a_malformed_line() {
        let (rules, summary) = parse_with(
            b"a.example\n\xff\xfe.example\nb.example",
            ParseOptions::default(),
        );
        assert_eq!(
            patterns(&rules),
            [("a.example", SUBTREE), ("b.example", SUBTREE)]
        );
        assert_eq!(summary.malformed, 1);
        assert_eq!(summary.samples[0].reason, "not UTF-8 text");
        assert_eq!(summary.samples[0].line, 2);
    }

    #[test]
    fn binary_garbage() {
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let garbage: Vec<u8> = (0..200_000)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (state >> 24) as u8
            })
            .collect();
        let (_, summary) = parse_with(&garbage, ParseOptions::default());
        assert!(summary.lines > 100);
        assert!(summary.malformed > 100);
        assert_eq!(summary.samples.len(), MAX_SAMPLES);
        assert!(
            summary
                .samples
                .iter()
                .all(|s| s.text.chars().count() <= 100)
        );

        let no_newline = vec![b'a'; 100_000];
        let (rules, summary) = parse_with(&no_newline, ParseOptions::default());
        assert!(rules.is_empty());
        assert_eq!(summary.lines, 1);
        assert_eq!(summary.samples[0].reason, "line too long");
        let mut long_then_good = vec![b'b'; 10_000];
        long_then_good.extend_from_slice(b"\ngood.example\n");
        let (rules, summary) = parse_with(&long_then_good, ParseOptions::default());
        assert_eq!(patterns(&rules), [("good.example", SUBTREE)]);
        assert_eq!(rules[0].line, 2);
        assert_eq!(summary.malformed, 1);
    }

    #[test]
    fn locate_finds_the_deciding_line() {
        let list = "! header\n0.0.0.0 a.example b.example\n||c.example^$important\n\
                    @@||c.example^\n/^ad\\d+\\./\nb.example\n";
        let at = |action, important, pattern| {
            locate(
                list.as_bytes(),
                ParseOptions::default(),
                action,
                important,
                pattern,
            )
            .unwrap()
        };
        let block = Action::Block;
        assert_eq!(
            at(block, false, Pattern::Domain("b.example", Scope::Subtree)),
            Some((2, "0.0.0.0 a.example b.example".to_string()))
        );
        assert_eq!(
            at(block, false, Pattern::Domain("B.Example.", Scope::Subtree)),
            Some((2, "0.0.0.0 a.example b.example".to_string()))
        );
        assert_eq!(
            at(block, true, Pattern::Domain("c.example", Scope::Subtree)).map(|l| l.0),
            Some(3)
        );
        assert_eq!(
            at(
                Action::Allow,
                false,
                Pattern::Domain("c.example", Scope::Subtree)
            )
            .map(|l| l.0),
            Some(4)
        );
        assert_eq!(
            at(block, false, Pattern::Regex(r"^ad\d+\.")).map(|l| l.0),
            Some(5)
        );
        assert_eq!(
            at(block, false, Pattern::Domain("c.example", Scope::Subtree)),
            None
        );
        assert_eq!(
            at(block, false, Pattern::Domain("a.example", Scope::Exact)),
            None
        );
        assert_eq!(
            at(block, false, Pattern::Domain("bad name", Scope::Exact)),
            None
        );
        let exact = ParseOptions { exact: true };
        let found = locate(
            list.as_bytes(),
            exact,
            block,
            false,
            Pattern::Domain("a.example", Scope::Exact),
        )
        .unwrap();
        assert_eq!(found.map(|l| l.0), Some(2));
    }
}

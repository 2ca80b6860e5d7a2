//! The compiled filter: every domain rule of every list as a 64-bit
//! fingerprint of its wire-form name, sorted, with a radix directory.
//!
//! An entry is the fingerprint (`u64`) and a `u16` of metadata (list,
//! precedence class, scope): ten bytes, plus four bytes of directory per
//! one or two entries, so a million names take about 12 MB and a lookup is
//! one directory read and a scan of about two keys. A check hashes each
//! suffix of the question's name (a handful) and looks each one up.
//!
//! Names are not stored, so a fingerprint collision would be a false
//! match. The hash is seeded with a random value per build: nobody can
//! choose names that collide with a listed one, and the chance of a chance
//! collision for a million entries is about 2^-44 per lookup, far below
//! everything else that can go wrong with a DNS answer.

use std::io::BufRead;

use regex::bytes::{Regex, RegexSet, RegexSetBuilder};
use xxhash_rust::xxh3::xxh3_64_with_seed;

use super::MAX_LISTS;
use super::list::{self, Action, ListSummary, ParseOptions, Pattern, REGEX_SIZE_LIMIT, Scope};
use super::name::{self, MAX_LABELS};
use crate::error::DnsError;

/// The lists one group uses (up to 256 lists).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ListMask(pub [u64; 4]);

impl ListMask {
    /// Whether list `list` is in the mask.
    pub fn contains(&self, list: u8) -> bool {
        self.0[usize::from(list >> 6)] >> (list & 63) & 1 == 1
    }

    /// Adds list `list`.
    pub fn insert(&mut self, list: u8) {
        self.0[usize::from(list >> 6)] |= 1 << (list & 63);
    }

    /// The mask with list `list` added.
    pub fn with(mut self, list: u8) -> Self {
        self.insert(list);
        self
    }

    pub fn is_empty(&self) -> bool {
        self.0 == [0; 4]
    }
}

/// What the set knows about one list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListInfo {
    pub name: String,
    pub options: ParseOptions,
    pub summary: ListSummary,
}

/// Which rule decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchKind {
    /// A domain rule; `offset` is where the matched suffix starts in the
    /// question's wire name (0: the whole name).
    Domain { scope: Scope, offset: u8 },
    /// The `index`-th regex rule of the set.
    Regex { index: u32 },
}

/// The rule that decides a name, with its list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Match {
    pub action: Action,
    pub important: bool,
    pub list: u8,
    pub kind: MatchKind,
}

impl Match {
    pub fn blocks(&self) -> bool {
        self.action == Action::Block
    }

    /// The rule in canonical AdBlock form (`||ads.example.com^`, `@@||x^`,
    /// `|x^`, `*.x`, `/regex/`, `$important` appended), rebuilt from the
    /// matched suffix of `name_wire`, the name this match was found for.
    pub fn rule_text(&self, name_wire: &[u8], set: &FilterSet) -> String {
        let mut text = String::new();
        if self.action == Action::Allow {
            text.push_str("@@");
        }
        match self.kind {
            MatchKind::Domain { scope, offset } => {
                let suffix = name_wire.get(usize::from(offset)..).unwrap_or(&[]);
                let name = name::wire_to_string(suffix);
                match scope {
                    Scope::Exact => text.push('|'),
                    Scope::Subtree => text.push_str("||"),
                    Scope::Subdomains => text.push_str("*."),
                }
                text.push_str(&name);
                if scope != Scope::Subdomains {
                    text.push('^');
                }
            }
            MatchKind::Regex { index } => {
                text.push('/');
                text.push_str(set.regex_source(index).unwrap_or_default());
                text.push('/');
            }
        }
        if self.important {
            text.push_str("$important");
        }
        text
    }
}

/// Precedence classes, most decisive first.
const CLASSES: usize = 4;

/// Class of a rule: important allow, important block, allow, block.
fn class_of(action: Action, important: bool) -> u8 {
    match (important, action) {
        (true, Action::Allow) => 0,
        (true, Action::Block) => 1,
        (false, Action::Allow) => 2,
        (false, Action::Block) => 3,
    }
}

fn class_rule(class: u8) -> (Action, bool) {
    match class {
        0 => (Action::Allow, true),
        1 => (Action::Block, true),
        2 => (Action::Allow, false),
        _ => (Action::Block, false),
    }
}

/// An entry's metadata: list in bits 0–7, class in 8–9, scope in 10–11.
#[derive(Clone, Copy)]
struct Meta(u16);

impl Meta {
    fn new(list: u8, action: Action, important: bool, scope: Scope) -> Meta {
        let scope = match scope {
            Scope::Exact => 0,
            Scope::Subtree => 1,
            Scope::Subdomains => 2,
        };
        Meta(u16::from(list) | u16::from(class_of(action, important)) << 8 | scope << 10)
    }

    fn list(self) -> u8 {
        (self.0 & 0xff) as u8
    }

    fn class(self) -> u8 {
        (self.0 >> 8 & 3) as u8
    }

    fn scope(self) -> Scope {
        match self.0 >> 10 & 3 {
            0 => Scope::Exact,
            1 => Scope::Subtree,
            _ => Scope::Subdomains,
        }
    }

    /// Whether the rule covers a name whose suffix at `offset` it names.
    fn fits(self, offset: u8) -> bool {
        match self.scope() {
            Scope::Subtree => true,
            Scope::Exact => offset == 0,
            Scope::Subdomains => offset > 0,
        }
    }

    /// Rank among candidates, lowest decides: class, then the longest
    /// suffix, then (for a stable answer) the list and the scope.
    fn rank(self, offset: u8) -> (u8, u8, u8, u16) {
        (self.class(), offset, self.list(), self.0 >> 10)
    }

    fn to_match(self, offset: u8) -> Match {
        let (action, important) = class_rule(self.class());
        Match {
            action,
            important,
            list: self.list(),
            kind: MatchKind::Domain {
                scope: self.scope(),
                offset,
            },
        }
    }
}

/// One `/regex/` rule.
#[derive(Debug)]
struct RegexRule {
    list: u8,
    action: Action,
    important: bool,
    source: Box<str>,
    regex: Regex,
}

/// A group's regexes of one class: the set answers "any?" in one pass; the
/// single regexes (only run after a hit) say which one, since asking the
/// set which one allocates.
#[derive(Debug)]
struct RegexClass {
    /// `None` when the combined set exceeded the size limit.
    set: Option<RegexSet>,
    /// Indices into the set's regex table, in list order.
    members: Box<[u32]>,
}

impl RegexClass {
    fn first_match(&self, text: &[u8], rules: &[RegexRule]) -> Option<u32> {
        if let Some(set) = &self.set
            && !set.is_match(text)
        {
            return None;
        }
        self.members.iter().copied().find(|&index| {
            rules
                .get(index as usize)
                .is_some_and(|rule| rule.regex.is_match(text))
        })
    }
}

/// What one group consults.
#[derive(Debug)]
struct GroupFilter {
    mask: ListMask,
    regex: [Option<RegexClass>; CLASSES],
}

impl GroupFilter {
    fn has_regex(&self) -> bool {
        self.regex.iter().any(Option::is_some)
    }
}

/// Collects lists, then builds a [`FilterSet`].
pub struct FilterSetBuilder {
    seed: u64,
    entries: Vec<(u64, u16)>,
    regexes: Vec<RegexRule>,
    lists: Vec<ListInfo>,
}

impl std::fmt::Debug for FilterSetBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FilterSetBuilder")
            .field("entries", &self.entries.len())
            .field("regexes", &self.regexes.len())
            .field("lists", &self.lists.len())
            .finish()
    }
}

impl Default for FilterSetBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl FilterSetBuilder {
    /// A builder with a fresh random hash seed.
    pub fn new() -> Self {
        Self::with_seed(rand::random())
    }

    /// A builder with a fixed seed: for tests and benchmarks only, since a
    /// known seed lets names be crafted to collide.
    #[doc(hidden)]
    pub fn with_seed(seed: u64) -> Self {
        FilterSetBuilder {
            seed,
            entries: Vec::new(),
            regexes: Vec::new(),
            lists: Vec::new(),
        }
    }

    /// Room for `entries` more domain rules, when the caller can estimate
    /// them (about one per 25 bytes of a hosts file): saves the copies of
    /// growing, and the memory they briefly double.
    pub fn reserve(&mut self, entries: usize) {
        self.entries.reserve(entries);
    }

    /// Parses and adds one list; its index is the number of lists added
    /// before it. A list that fails to read still takes its index (with
    /// no rules), so indices stay those of the configuration.
    pub fn add_list<R: BufRead>(
        &mut self,
        name: &str,
        reader: R,
        options: ParseOptions,
    ) -> Result<ListSummary, DnsError> {
        let Ok(list) = u8::try_from(self.lists.len()) else {
            return Err(DnsError::TooManyLists { max: MAX_LISTS });
        };
        let (entries_before, regexes_before) = (self.entries.len(), self.regexes.len());
        let seed = self.seed;
        let entries = &mut self.entries;
        let regexes = &mut self.regexes;
        let mut wire = [0u8; 256];
        let parsed = list::parse(reader, options, |rule| match rule.pattern {
            Pattern::Domain(domain, scope) => {
                if let Some(wire) = name::to_wire(domain, &mut wire) {
                    let meta = Meta::new(list, rule.action, rule.important, scope);
                    entries.push((xxh3_64_with_seed(wire, seed), meta.0));
                }
            }
            Pattern::Regex(source) => {
                if let Ok(regex) = list::compile_regex(source) {
                    regexes.push(RegexRule {
                        list,
                        action: rule.action,
                        important: rule.important,
                        source: source.into(),
                        regex,
                    });
                }
            }
        });
        let summary = match parsed {
            Ok(summary) => summary,
            Err(source) => {
                self.entries.truncate(entries_before);
                self.regexes.truncate(regexes_before);
                self.lists.push(ListInfo {
                    name: name.to_string(),
                    options,
                    summary: ListSummary::default(),
                });
                return Err(DnsError::ListRead {
                    list: name.to_string(),
                    source,
                });
            }
        };
        self.lists.push(ListInfo {
            name: name.to_string(),
            options,
            summary: summary.clone(),
        });
        Ok(summary)
    }

    /// Builds the set for groups using the lists in `groups`.
    pub fn build(self, groups: &[ListMask]) -> FilterSet {
        let FilterSetBuilder {
            seed,
            mut entries,
            regexes,
            lists,
        } = self;
        entries.sort_unstable();
        entries.dedup();
        // The directory holds u32 positions; no list set comes near that.
        entries.truncate(u32::MAX as usize);
        let bits = directory_bits(entries.len());
        let mut directory = vec![0u32; (1usize << bits) + 1];
        for &(key, _) in &entries {
            directory[bucket(key, bits) + 1] += 1;
        }
        for i in 1..directory.len() {
            directory[i] += directory[i - 1];
        }
        let keys: Box<[u64]> = entries.iter().map(|e| e.0).collect();
        let metas: Box<[u16]> = entries.iter().map(|e| e.1).collect();
        drop(entries);
        let groups = groups
            .iter()
            .map(|&mask| GroupFilter {
                mask,
                regex: std::array::from_fn(|class| regex_class(&regexes, mask, class)),
            })
            .collect();
        FilterSet {
            seed,
            bits,
            keys,
            metas,
            directory: directory.into_boxed_slice(),
            regexes: regexes.into_boxed_slice(),
            groups,
            lists: lists.into_boxed_slice(),
        }
    }
}

/// About one bucket per one to two entries: floor(log2(n)) bits.
fn directory_bits(entries: usize) -> u32 {
    match entries {
        0 | 1 => 0,
        n => (usize::BITS - 1 - n.leading_zeros()).min(30),
    }
}

/// The bucket of a fingerprint: its top `bits` bits.
fn bucket(key: u64, bits: u32) -> usize {
    key.checked_shr(64 - bits).unwrap_or(0) as usize
}

fn regex_class(rules: &[RegexRule], mask: ListMask, class: usize) -> Option<RegexClass> {
    let members: Box<[u32]> = rules
        .iter()
        .enumerate()
        .filter(|(_, r)| {
            mask.contains(r.list) && usize::from(class_of(r.action, r.important)) == class
        })
        .filter_map(|(i, _)| u32::try_from(i).ok())
        .collect();
    if members.is_empty() {
        return None;
    }
    let sources = members
        .iter()
        .filter_map(|&i| rules.get(i as usize).map(|r| &*r.source));
    let set = RegexSetBuilder::new(sources)
        .case_insensitive(true)
        .size_limit(REGEX_SIZE_LIMIT.saturating_mul(members.len()))
        .build()
        .ok();
    Some(RegexClass { set, members })
}

/// See the module documentation.
#[derive(Default)]
pub struct FilterSet {
    seed: u64,
    bits: u32,
    /// Sorted fingerprints.
    keys: Box<[u64]>,
    /// [`Meta`] of each key.
    metas: Box<[u16]>,
    /// Bucket `b` holds `keys[directory[b]..directory[b + 1]]`.
    directory: Box<[u32]>,
    regexes: Box<[RegexRule]>,
    groups: Box<[GroupFilter]>,
    lists: Box<[ListInfo]>,
}

impl std::fmt::Debug for FilterSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FilterSet")
            .field("domain_entries", &self.keys.len())
            .field("regex_rules", &self.regexes.len())
            .field("groups", &self.groups.len())
            .field("lists", &self.lists.len())
            .finish()
    }
}

impl FilterSet {
    /// The deciding rule for `name_wire` (lowercase wire form) in group
    /// `group`, or `None` when no rule of its lists matches.
    ///
    /// Precedence: important allow, important block, allow, block; within
    /// a class the most specific domain rule, and the class's regexes only
    /// when no domain rule of it matched. Allocates nothing.
    pub fn check(&self, group: usize, name_wire: &[u8]) -> Option<Match> {
        let filter = self.groups.get(group)?;
        if filter.mask.is_empty() {
            return None;
        }
        let mut best: Option<(Meta, u8)> = None;
        self.for_each_domain_match(filter.mask, name_wire, |meta, offset| {
            if best.is_none_or(|(b, b_offset)| meta.rank(offset) < b.rank(b_offset)) {
                best = Some((meta, offset));
            }
        });
        let domain = best.map(|(meta, offset)| meta.to_match(offset));
        if !filter.has_regex() {
            return domain;
        }
        let domain_class = best.map_or(CLASSES, |(meta, _)| usize::from(meta.class()));
        let mut classes = filter.regex.iter().take(domain_class).flatten().peekable();
        if classes.peek().is_none() {
            return domain;
        }
        let mut buf = [0u8; 256];
        let text = name::wire_to_text(name_wire, &mut buf);
        for class in classes {
            if let Some(index) = class.first_match(text, &self.regexes) {
                return self.regex_match(index);
            }
        }
        domain
    }

    /// Every rule of `group`'s lists that matches `name_wire`, most
    /// decisive first (the first is what [`FilterSet::check`] returns): for
    /// explanations, not for answering queries.
    pub fn matches(&self, group: usize, name_wire: &[u8]) -> Vec<Match> {
        let Some(filter) = self.groups.get(group) else {
            return Vec::new();
        };
        let mut ranked = Vec::new();
        self.for_each_domain_match(filter.mask, name_wire, |meta, offset| {
            let (class, offset, list, scope) = meta.rank(offset);
            ranked.push((
                (class, 0, u32::from(offset), list, scope),
                meta.to_match(offset),
            ));
        });
        if filter.has_regex() {
            let mut buf = [0u8; 256];
            let text = name::wire_to_text(name_wire, &mut buf);
            for class in filter.regex.iter().flatten() {
                for &index in &class.members {
                    let Some(rule) = self.regexes.get(index as usize) else {
                        continue;
                    };
                    if rule.regex.is_match(text)
                        && let Some(m) = self.regex_match(index)
                    {
                        let class = class_of(rule.action, rule.important);
                        ranked.push(((class, 1, index, rule.list, 0), m));
                    }
                }
            }
        }
        ranked.sort_by_key(|(rank, _)| *rank);
        ranked.into_iter().map(|(_, m)| m).collect()
    }

    /// Calls `found` for each domain rule of a list in `mask` that covers
    /// `name_wire`, with the offset of the suffix it names.
    fn for_each_domain_match(
        &self,
        mask: ListMask,
        name_wire: &[u8],
        mut found: impl FnMut(Meta, u8),
    ) {
        if self.keys.is_empty() || mask.is_empty() {
            return;
        }
        let mut offsets = [0u8; MAX_LABELS];
        let labels = name::label_offsets(name_wire, &mut offsets);
        for &offset in &offsets[..labels] {
            let Some(suffix) = name_wire.get(usize::from(offset)..) else {
                continue;
            };
            let key = xxh3_64_with_seed(suffix, self.seed);
            for &meta in self.metas_of(key) {
                let meta = Meta(meta);
                if mask.contains(meta.list()) && meta.fits(offset) {
                    found(meta, offset);
                }
            }
        }
    }

    /// The metadata of every entry with fingerprint `key`.
    fn metas_of(&self, key: u64) -> &[u16] {
        let b = bucket(key, self.bits);
        let (Some(&start), Some(&end)) = (self.directory.get(b), self.directory.get(b + 1)) else {
            return &[];
        };
        let (start, end) = (start as usize, end as usize);
        let Some(keys) = self.keys.get(start..end) else {
            return &[];
        };
        let Some(first) = keys.iter().position(|&k| k >= key) else {
            return &[];
        };
        let count = keys[first..].iter().take_while(|&&k| k == key).count();
        self.metas
            .get(start + first..start + first + count)
            .unwrap_or_default()
    }

    fn regex_match(&self, index: u32) -> Option<Match> {
        let rule = self.regexes.get(index as usize)?;
        Some(Match {
            action: rule.action,
            important: rule.important,
            list: rule.list,
            kind: MatchKind::Regex { index },
        })
    }

    /// The lists, by index.
    pub fn lists(&self) -> &[ListInfo] {
        &self.lists
    }

    /// Domain rules after removing exact duplicates.
    pub fn domain_entries(&self) -> usize {
        self.keys.len()
    }

    pub fn regex_rules(&self) -> usize {
        self.regexes.len()
    }

    /// The source of regex rule `index` (between the slashes).
    pub fn regex_source(&self, index: u32) -> Option<&str> {
        self.regexes.get(index as usize).map(|r| &*r.source)
    }

    /// The groups the set was built for.
    pub fn groups(&self) -> usize {
        self.groups.len()
    }

    /// Approximate heap use: the entry tables exactly, the regex tables by
    /// their sources (compiled programs and their caches not counted).
    pub fn heap_bytes(&self) -> usize {
        let regexes: usize = self
            .regexes
            .iter()
            .map(|r| size_of::<RegexRule>() + r.source.len())
            .sum();
        let groups: usize = self
            .groups
            .iter()
            .map(|g| {
                size_of::<GroupFilter>()
                    + g.regex
                        .iter()
                        .flatten()
                        .map(|c| c.members.len() * 4)
                        .sum::<usize>()
            })
            .sum();
        let lists: usize = self
            .lists
            .iter()
            .map(|l| size_of::<ListInfo>() + l.name.len())
            .sum();
        self.keys.len() * 8
            + self.metas.len() * 2
            + self.directory.len() * 4
            + regexes
            + groups
            + lists
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)] // tests
mod tests {
    use std::collections::HashMap;
    use std::io::{self, BufReader, Read};

    use proptest::prelude::*;

    use super::*;

    const PLAIN: ParseOptions = ParseOptions { exact: false };

    fn wire(name: &str) -> Vec<u8> {
        let mut buf = [0u8; 256];
        name::to_wire(name, &mut buf).unwrap().to_vec()
    }

    fn set_of(lists: &[(&str, ParseOptions)], groups: &[ListMask]) -> FilterSet {
        let mut builder = FilterSetBuilder::new();
        for (i, (text, options)) in lists.iter().enumerate() {
            let summary = builder
                .add_list(&format!("list{i}"), text.as_bytes(), *options)
                .unwrap();
            assert_eq!(summary.malformed, 0, "{:?}", summary.samples);
        }
        builder.build(groups)
    }

    /// One list, one group using it.
    fn single(text: &str) -> FilterSet {
        set_of(&[(text, PLAIN)], &[ListMask::default().with(0)])
    }

    /// The deciding rule as text, with its list.
    fn decide(set: &FilterSet, group: usize, name: &str) -> Option<(String, u8)> {
        let wire = wire(name);
        set.check(group, &wire)
            .map(|m| (m.rule_text(&wire, set), m.list))
    }

    fn rule(set: &FilterSet, name: &str) -> Option<String> {
        decide(set, 0, name).map(|d| d.0)
    }

    #[test]
    fn scopes() {
        let set = single("||sub.example^\n|exact.example^\n*.wild.example\n");
        let subtree = Some("||sub.example^".to_string());
        assert_eq!(rule(&set, "sub.example"), subtree);
        assert_eq!(rule(&set, "a.sub.example"), subtree);
        assert_eq!(rule(&set, "b.a.sub.example"), subtree);
        assert_eq!(rule(&set, "xsub.example"), None);
        assert_eq!(rule(&set, "example"), None);
        assert_eq!(rule(&set, "exact.example"), Some("|exact.example^".into()));
        assert_eq!(rule(&set, "a.exact.example"), None);
        assert_eq!(rule(&set, "wild.example"), None);
        assert_eq!(rule(&set, "a.wild.example"), Some("*.wild.example".into()));
        assert_eq!(
            rule(&set, "b.a.wild.example"),
            Some("*.wild.example".into())
        );
        let m = set.check(0, &wire("a.sub.example")).unwrap();
        assert_eq!(
            m.kind,
            MatchKind::Domain {
                scope: Scope::Subtree,
                offset: 2
            }
        );
        assert!(m.blocks());
    }

    #[test]
    fn exception_beats_block() {
        let set = single("||ads.example^\n@@||good.ads.example^\n");
        assert_eq!(rule(&set, "x.ads.example"), Some("||ads.example^".into()));
        assert_eq!(
            rule(&set, "a.good.ads.example"),
            Some("@@||good.ads.example^".into())
        );
        // A class beats a more specific rule of a weaker class.
        let set = single("@@||example^\n||ads.example^\n");
        assert_eq!(rule(&set, "ads.example"), Some("@@||example^".into()));
    }

    #[test]
    fn important_beats_exception() {
        let set = single("@@||ads.example^\n||ads.example^$important\n");
        assert_eq!(
            rule(&set, "ads.example"),
            Some("||ads.example^$important".into())
        );
        let set = single("||ads.example^$important\n@@||ok.ads.example^$important\n");
        assert_eq!(
            rule(&set, "ok.ads.example"),
            Some("@@||ok.ads.example^$important".into())
        );
        assert_eq!(
            rule(&set, "no.ads.example"),
            Some("||ads.example^$important".into())
        );
    }

    #[test]
    fn longest_match_is_reported() {
        let set = single("||example.com^\n||ads.example.com^\n0.0.0.0 com\n");
        assert_eq!(
            rule(&set, "x.ads.example.com"),
            Some("||ads.example.com^".into())
        );
        assert_eq!(rule(&set, "www.example.com"), Some("||example.com^".into()));
        let w = wire("x.ads.example.com");
        let all: Vec<String> = set
            .matches(0, &w)
            .iter()
            .map(|m| m.rule_text(&w, &set))
            .collect();
        assert_eq!(all, ["||ads.example.com^", "||example.com^", "||com^"]);
    }

    #[test]
    fn groups_see_only_their_lists() {
        let lists = [("a.example\n", PLAIN), ("b.example\n", PLAIN)];
        let none = ListMask::default();
        let groups = [none.with(0), none.with(1), none.with(0).with(1), none];
        let set = set_of(&lists, &groups);
        assert_eq!(set.groups(), 4);
        let list = |group, name| decide(&set, group, name).map(|d| d.1);
        assert_eq!(list(0, "a.example"), Some(0));
        assert_eq!(list(0, "b.example"), None);
        assert_eq!(list(1, "a.example"), None);
        assert_eq!(list(1, "b.example"), Some(1));
        assert_eq!(list(2, "a.example"), Some(0));
        assert_eq!(list(2, "b.example"), Some(1));
        assert_eq!(list(3, "a.example"), None);
        assert_eq!(list(4, "a.example"), None);
        assert_eq!(set.lists()[1].name, "list1");
    }

    #[test]
    fn regexes_only_after_domain_rules_of_their_class() {
        let set = single("/^ads\\./\n@@||ads.example^\n||ads.other^\n@@/^ads\\.good/\n");
        assert_eq!(rule(&set, "ads.example"), Some("@@||ads.example^".into()));
        assert_eq!(rule(&set, "ads.other"), Some("||ads.other^".into()));
        assert_eq!(rule(&set, "ads.foo"), Some("/^ads\\./".into()));
        assert_eq!(rule(&set, "ads.good.other"), Some("@@/^ads\\.good/".into()));
        assert_eq!(rule(&set, "www.ads.foo"), None);
        let m = set.check(0, &wire("ads.foo")).unwrap();
        assert_eq!(m.kind, MatchKind::Regex { index: 0 });
        assert_eq!(set.regex_source(0), Some("^ads\\."));
        assert_eq!(set.regex_rules(), 2);

        let set = single("@@||ads.example^\n/^ads\\./$important\n");
        assert_eq!(
            rule(&set, "ads.example"),
            Some("/^ads\\./$important".into())
        );
        // Regexes are case-insensitive, like AdBlock lists expect.
        let set = single("/^ADS\\./\n");
        assert_eq!(rule(&set, "ads.example"), Some("/^ADS\\./".into()));
    }

    #[test]
    fn regexes_respect_masks() {
        let lists = [("/^ads\\./\n", PLAIN), ("x.example\n", PLAIN)];
        let none = ListMask::default();
        let set = set_of(&lists, &[none.with(1), none.with(0)]);
        assert_eq!(decide(&set, 0, "ads.example"), None);
        assert_eq!(decide(&set, 1, "ads.example").map(|d| d.1), Some(0));
    }

    #[test]
    fn exact_lists() {
        let exact = ParseOptions { exact: true };
        let set = set_of(
            &[("0.0.0.0 a.example\n*.w.example\n", exact)],
            &[ListMask::default().with(0)],
        );
        assert_eq!(rule(&set, "a.example"), Some("|a.example^".into()));
        assert_eq!(rule(&set, "sub.a.example"), None);
        assert_eq!(rule(&set, "x.w.example"), Some("*.w.example".into()));
        assert!(set.lists()[0].options.exact);
    }

    #[test]
    fn duplicates() {
        let lists = [
            ("dup.example\ndup.example\n||dup.example^\n", PLAIN),
            ("0.0.0.0 dup.example\n", PLAIN),
        ];
        let none = ListMask::default();
        let set = set_of(&lists, &[none.with(0).with(1), none.with(1)]);
        assert_eq!(set.domain_entries(), 2);
        assert_eq!(set.lists()[0].summary.rules, 3);
        assert_eq!(decide(&set, 0, "dup.example").map(|d| d.1), Some(0));
        assert_eq!(decide(&set, 1, "dup.example").map(|d| d.1), Some(1));
        assert_eq!(set.matches(0, &wire("a.dup.example")).len(), 2);
    }

    #[test]
    fn empty_sets_answer_nothing() {
        let w = wire("ads.example");
        let set = FilterSet::default();
        assert_eq!(set.check(0, &w), None);
        assert!(set.matches(0, &w).is_empty());
        assert_eq!(set.heap_bytes(), 0);
        let set = FilterSetBuilder::new().build(&[ListMask::default()]);
        assert_eq!(set.check(0, &w), None);
        let set = single("");
        assert_eq!(set.check(0, &w), None);
        assert_eq!(set.check(0, b"\x00"), None);
    }

    #[test]
    fn malformed_wire_names_do_not_panic() {
        let set = single("||example^\n/x/\n*.a.example\n");
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        for len in 0..600 {
            let garbage: Vec<u8> = (0..len)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    (state % 7) as u8
                })
                .collect();
            let _ = set.check(0, &garbage);
            let _ = set.matches(0, &garbage);
        }
        let mut long = b"\x01a".repeat(200);
        long.extend_from_slice(b"\x07example\x00");
        let _ = set.check(0, &long);
        // A name without its root label still finds its rules.
        assert!(set.check(0, b"\x07example").is_some());
    }

    #[test]
    fn at_most_256_lists() {
        let mut builder = FilterSetBuilder::new();
        for i in 0..256 {
            builder.add_list(&format!("l{i}"), &b""[..], PLAIN).unwrap();
        }
        let err = builder.add_list("one more", &b""[..], PLAIN).unwrap_err();
        assert!(matches!(err, DnsError::TooManyLists { max: 256 }));
        let set = builder.build(&[ListMask([u64::MAX; 4])]);
        assert_eq!(set.lists().len(), 256);
    }

    /// Gives some lines, then fails.
    struct Failing(&'static [u8]);

    impl Read for Failing {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.0.is_empty() {
                return Err(io::Error::other("disk on fire"));
            }
            let n = self.0.len().min(buf.len());
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    #[test]
    fn read_errors_keep_the_list_index() {
        let mut builder = FilterSetBuilder::new();
        let reader = BufReader::new(Failing(b"a.example\nb.example\n"));
        let err = builder.add_list("broken", reader, PLAIN).unwrap_err();
        assert!(matches!(&err, DnsError::ListRead { list, .. } if list == "broken"));
        builder.add_list("ok", &b"c.example\n"[..], PLAIN).unwrap();
        let set = builder.build(&[ListMask::default().with(0).with(1)]);
        assert_eq!(set.lists()[1].name, "ok");
        assert_eq!(decide(&set, 0, "a.example"), None);
        assert_eq!(decide(&set, 0, "c.example").map(|d| d.1), Some(1));
    }

    #[test]
    fn rule_text_parses_back_to_its_rule() {
        let text = "||a.example^\n|b.example^\n*.c.example\n@@||d.example^$important\n\
                    @@*.e.example\n*.f.example$important\n/^g\\d/\n@@/^h/$important\n";
        let set = single(text);
        for name in [
            "a.example",
            "b.example",
            "x.c.example",
            "d.example",
            "x.e.example",
            "x.f.example",
            "g1.example",
            "h.example",
        ] {
            let w = wire(name);
            let m = set.check(0, &w).unwrap();
            let rule_text = m.rule_text(&w, &set);
            let mut back = Vec::new();
            list::parse(rule_text.as_bytes(), PLAIN, |r| {
                back.push((r.action, r.important, format!("{:?}", r.pattern)));
            })
            .unwrap();
            assert_eq!(back.len(), 1, "{rule_text}");
            let (action, important, pattern) = &back[0];
            assert_eq!((*action, *important), (m.action, m.important));
            // The line of the list the match came from.
            let found = list::locate(text.as_bytes(), PLAIN, *action, *important, {
                let mut again = None;
                list::parse(rule_text.as_bytes(), PLAIN, |r| {
                    if let Pattern::Domain(n, s) = r.pattern {
                        again = Some((n.to_string(), Some(s)));
                    } else if let Pattern::Regex(s) = r.pattern {
                        again = Some((s.to_string(), None));
                    }
                })
                .unwrap();
                let (text, scope) = again.unwrap();
                let leaked: &'static str = Box::leak(text.into_boxed_str());
                match scope {
                    Some(scope) => Pattern::Domain(leaked, scope),
                    None => Pattern::Regex(leaked),
                }
            })
            .unwrap();
            assert!(found.is_some(), "{rule_text} ({pattern}) not located");
        }
    }

    #[test]
    fn heap_bytes_counts_the_tables() {
        let text: String = (0..1000).map(|i| format!("n{i}.example\n")).collect();
        let set = single(&text);
        assert_eq!(set.domain_entries(), 1000);
        let bytes = set.heap_bytes();
        // 10 bytes an entry and a directory of 512 + 1 buckets.
        assert!(bytes >= 1000 * 10 + 513 * 4, "{bytes}");
        assert!(bytes < 1000 * 10 + 513 * 4 + 1024, "{bytes}");
    }

    /// What a rule of the reference model is.
    #[derive(Debug, Clone)]
    enum RefPattern {
        Domain(String, Scope),
        Regex(&'static str),
    }

    #[derive(Debug, Clone)]
    struct RefRule {
        action: Action,
        important: bool,
        pattern: RefPattern,
    }

    const LABELS: [&str; 5] = ["a", "b", "ads", "x-y", "c"];
    const REGEXES: [&str; 4] = ["^ads\\.", "b$", "^a\\.b\\.", "x-y"];

    fn ref_rule() -> impl Strategy<Value = RefRule> {
        let name = proptest::collection::vec(proptest::sample::select(&LABELS[..]), 1..4)
            .prop_map(|labels| labels.join("."));
        let scope = prop_oneof![
            Just(Scope::Exact),
            Just(Scope::Subtree),
            Just(Scope::Subdomains)
        ];
        let pattern = prop_oneof![
            4 => (name, scope).prop_map(|(n, s)| RefPattern::Domain(n, s)),
            1 => proptest::sample::select(&REGEXES[..]).prop_map(RefPattern::Regex),
        ];
        (any::<bool>(), proptest::bool::weighted(0.2), pattern).prop_map(
            |(allow, important, pattern)| RefRule {
                action: if allow { Action::Allow } else { Action::Block },
                important,
                pattern,
            },
        )
    }

    /// A line for the rule, in one of the syntaxes that can say it.
    fn line_of(rule: &RefRule, variant: usize) -> String {
        let prefix = if rule.action == Action::Allow {
            "@@"
        } else {
            ""
        };
        let suffix = if rule.important { "$important" } else { "" };
        let plain = rule.action == Action::Block && !rule.important;
        match &rule.pattern {
            RefPattern::Domain(name, Scope::Subtree) if plain && variant.is_multiple_of(3) => {
                format!("0.0.0.0 {name}")
            }
            RefPattern::Domain(name, Scope::Subtree) if plain && variant % 3 == 1 => {
                name.to_uppercase()
            }
            RefPattern::Domain(name, Scope::Subtree) => format!("{prefix}||{name}^{suffix}"),
            RefPattern::Domain(name, Scope::Exact) => format!("{prefix}|{name}^{suffix}"),
            RefPattern::Domain(name, Scope::Subdomains) if variant.is_multiple_of(2) => {
                format!("{prefix}*.{name}{suffix}")
            }
            RefPattern::Domain(name, Scope::Subdomains) => {
                format!("{prefix}||*.{name}^{suffix}")
            }
            RefPattern::Regex(source) => format!("{prefix}/{source}/{suffix}"),
        }
    }

    /// The naive model: a map from names to rules, and a list of regexes.
    struct Reference {
        domains: HashMap<String, Vec<(u8, Action, bool, Scope)>>,
        regexes: Vec<(u8, Action, bool, regex::Regex)>,
    }

    impl Reference {
        fn new(lists: &[(Vec<RefRule>, bool)]) -> Self {
            let mut domains: HashMap<String, Vec<_>> = HashMap::new();
            let mut regexes = Vec::new();
            for (list, (rules, exact)) in lists.iter().enumerate() {
                let list = list as u8;
                for rule in rules {
                    match &rule.pattern {
                        RefPattern::Domain(name, scope) => {
                            let scope = match scope {
                                Scope::Subtree if *exact => Scope::Exact,
                                s => *s,
                            };
                            let entry = (list, rule.action, rule.important, scope);
                            let rules = domains.entry(name.clone()).or_default();
                            if !rules.contains(&entry) {
                                rules.push(entry);
                            }
                        }
                        RefPattern::Regex(source) => {
                            let regex = regex::Regex::new(&format!("(?i){source}")).unwrap();
                            regexes.push((list, rule.action, rule.important, regex));
                        }
                    }
                }
            }
            Reference { domains, regexes }
        }

        fn matches(&self, mask: ListMask, name: &str) -> Vec<Match> {
            let labels: Vec<&str> = name.split('.').collect();
            let mut ranked = Vec::new();
            let mut offset = 0usize;
            for k in 0..labels.len() {
                let suffix = labels[k..].join(".");
                for &(list, action, important, scope) in
                    self.domains.get(&suffix).into_iter().flatten()
                {
                    let fits = match scope {
                        Scope::Exact => k == 0,
                        Scope::Subtree => true,
                        Scope::Subdomains => k > 0,
                    };
                    if fits && mask.contains(list) {
                        let class = class_of(action, important);
                        let scope_code = scope as u8;
                        let m = Match {
                            action,
                            important,
                            list,
                            kind: MatchKind::Domain {
                                scope,
                                offset: offset as u8,
                            },
                        };
                        ranked.push(((class, 0, offset as u32, list, scope_code), m));
                    }
                }
                offset += labels[k].len() + 1;
            }
            for (index, (list, action, important, regex)) in self.regexes.iter().enumerate() {
                if mask.contains(*list) && regex.is_match(name) {
                    let m = Match {
                        action: *action,
                        important: *important,
                        list: *list,
                        kind: MatchKind::Regex {
                            index: index as u32,
                        },
                    };
                    ranked.push((
                        (class_of(*action, *important), 1, index as u32, *list, 0),
                        m,
                    ));
                }
            }
            ranked.sort_by_key(|(rank, _)| *rank);
            ranked.into_iter().map(|(_, m)| m).collect()
        }
    }

    fn lists_strategy() -> impl Strategy<Value = Vec<(Vec<RefRule>, bool)>> {
        proptest::collection::vec(
            (
                proptest::collection::vec(ref_rule(), 0..12),
                proptest::bool::weighted(0.2),
            ),
            1..5,
        )
    }

    fn names_strategy() -> impl Strategy<Value = Vec<String>> {
        proptest::collection::vec(
            proptest::collection::vec(proptest::sample::select(&LABELS[..]), 1..6)
                .prop_map(|labels| labels.join(".")),
            1..40,
        )
    }

    proptest! {
        #[test]
        fn agrees_with_a_naive_model(
            lists in lists_strategy(),
            masks in proptest::collection::vec(any::<u8>(), 1..4),
            names in names_strategy(),
            variant in 0usize..6,
        ) {
            let masks: Vec<ListMask> = masks.iter().map(|&m| ListMask([u64::from(m), 0, 0, 0])).collect();
            let mut builder = FilterSetBuilder::new();
            for (i, (rules, exact)) in lists.iter().enumerate() {
                let text: String = rules
                    .iter()
                    .enumerate()
                    .map(|(j, r)| line_of(r, variant + j) + "\n")
                    .collect();
                let summary = builder
                    .add_list(&format!("l{i}"), text.as_bytes(), ParseOptions { exact: *exact })
                    .unwrap();
                prop_assert_eq!(summary.malformed, 0, "{:?}", summary.samples);
            }
            let set = builder.build(&masks);
            let reference = Reference::new(&lists);
            for name in &names {
                let w = wire(name);
                for (group, &mask) in masks.iter().enumerate() {
                    let expected = reference.matches(mask, name);
                    prop_assert_eq!(set.check(group, &w), expected.first().copied(), "{} in group {}", name, group);
                    prop_assert_eq!(set.matches(group, &w), expected, "{} in group {}", name, group);
                }
            }
        }
    }
}

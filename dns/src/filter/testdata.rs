//! Generated blocklists for benchmarks and load tests: realistic names
//! (2–4 labels, 15–30 characters, varied TLDs), all distinct, the same for
//! the same seed on every machine and with every dependency version, so
//! that other DNS servers can be loaded with exactly the list this crate
//! is measured with.

use std::io::{self, Write};

/// Subdomain labels blocklists are full of.
const PREFIXES: [&str; 40] = [
    "ads",
    "ad",
    "track",
    "tracking",
    "metrics",
    "analytics",
    "telemetry",
    "stats",
    "pixel",
    "cdn",
    "static",
    "img",
    "api",
    "log",
    "logs",
    "beacon",
    "banners",
    "promo",
    "click",
    "clicks",
    "t",
    "s",
    "px",
    "events",
    "collect",
    "sync",
    "tag",
    "tags",
    "data",
    "srv",
    "www",
    "m",
    "mobile",
    "app",
    "go",
    "news",
    "mail",
    "eu",
    "us",
    "edge",
];

/// Suffixes joined to a name with `-`.
const FLAVOURS: [&str; 12] = [
    "cdn", "ads", "media", "track", "net", "online", "group", "tech", "hub", "cloud", "tv", "web",
];

/// Top-level domains, weighted by repetition. No single-label TLD here is
/// the last label of a two-label one, which keeps names distinct.
const TLDS: [&str; 40] = [
    "com", "com", "com", "com", "com", "com", "com", "com", "com", "com", "com", "com", "com",
    "com", "com", "com", "net", "net", "net", "net", "net", "org", "org", "io", "info", "ru", "de",
    "cn", "xyz", "top", "fr", "pl", "biz", "online", "site", "me", "co.uk", "com.br", "com.au",
    "tv",
];

const CONSONANTS: &[u8; 16] = b"bcdfghjklmnprstv";
const VOWELS: &[u8; 4] = b"aeio";

/// Bits of the index permutation: up to 16.7 million distinct short words.
const PERMUTED_BITS: u32 = 24;

/// SplitMix64: a few lines, fixed forever, unlike a library RNG whose
/// stream may change between versions (the benchmarks' generators use it).
#[derive(Debug, Clone)]
pub struct SplitMix64(pub u64);

impl SplitMix64 {
    #[allow(clippy::should_implement_trait)] // reason: not an Iterator: it never ends
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

/// A bijection on the low [`PERMUTED_BITS`] bits, so consecutive indices
/// give unrelated words; larger indices are used as they are (they cannot
/// collide with permuted ones, which stay below 2^24).
fn permute(index: u64, seed: u64) -> u64 {
    let mask = (1u64 << PERMUTED_BITS) - 1;
    if index > mask {
        return index;
    }
    let mut x = (index ^ seed) & mask;
    for multiplier in [0x9e37_79b1u64, 0x85eb_ca77] {
        x = x.wrapping_mul(multiplier) & mask;
        x ^= x >> (PERMUTED_BITS / 2);
    }
    x
}

/// Writes name `index` of the list for `seed` into `out` (cleared first).
///
/// The name is `[prefix.[prefix.]]word.tld`, where the word's leading
/// consonant-vowel syllables spell the permuted index in base 64: two
/// indices never give the same word, hence never the same name.
pub fn write_name(seed: u64, index: u64, out: &mut String) {
    let mut rng = SplitMix64(seed ^ index.wrapping_mul(0xd1b5_4a32_d192_ed03));
    out.clear();
    let depth = match rng.below(20) {
        0..=7 => 0,
        8..=16 => 1,
        _ => 2,
    };
    for _ in 0..depth {
        out.push_str(rng.pick(&PREFIXES));
        if rng.below(6) == 0 {
            out.push_str(&rng.below(100).to_string());
        }
        out.push('.');
    }
    let mut word = permute(index, seed);
    let mut syllables = 0;
    while syllables < 3 || word > 0 {
        let digit = (word & 63) as usize;
        out.push(char::from(CONSONANTS[digit >> 2]));
        out.push(char::from(VOWELS[digit & 3]));
        word >>= 6;
        syllables += 1;
    }
    match rng.below(8) {
        0 | 1 => {
            out.push('-');
            out.push_str(rng.pick(&FLAVOURS));
        }
        2 => out.push_str(&rng.below(1000).to_string()),
        _ => {}
    }
    out.push('.');
    out.push_str(rng.pick(&TLDS));
}

/// Name `index` of the list for `seed`.
pub fn name(seed: u64, index: u64) -> String {
    let mut out = String::new();
    write_name(seed, index, &mut out);
    out
}

/// Writes a hosts-format list of names `0..n` for `seed`
/// (`0.0.0.0 name` lines after a comment header). Names `n..` are not in
/// it, nor under any of its names: use them as misses.
pub fn generate_list(n: usize, seed: u64, out: &mut impl Write) -> io::Result<()> {
    writeln!(out, "# Generated blocklist: {n} names, seed {seed}")?;
    writeln!(out, "#")?;
    let mut name = String::with_capacity(64);
    for index in 0..n as u64 {
        write_name(seed, index, &mut name);
        writeln!(out, "0.0.0.0 {name}")?;
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)] // tests
mod tests {
    use std::collections::HashSet;

    use super::*;
    use crate::filter::list::{ParseOptions, parse};

    #[test]
    fn names_are_distinct_valid_and_realistic() {
        let n = 100_000;
        let mut list = Vec::new();
        generate_list(n, 7, &mut list).unwrap();
        let mut names = HashSet::new();
        let mut total_len = 0;
        let summary = parse(&list[..], ParseOptions::default(), |rule| {
            if let crate::filter::Pattern::Domain(name, _) = rule.pattern {
                total_len += name.len();
                let labels = name.split('.').count();
                assert!((2..=5).contains(&labels), "{name}");
                names.insert(name.to_string());
            }
        })
        .unwrap();
        assert_eq!(summary.malformed, 0, "{:?}", summary.samples);
        assert_eq!(names.len(), n);
        let mean = total_len / n;
        assert!((15..=30).contains(&mean), "mean length {mean}");
        let beyond: Vec<String> = (n as u64..n as u64 + 1000).map(|i| name(7, i)).collect();
        assert!(beyond.iter().all(|b| !names.contains(b)));
    }

    #[test]
    fn deterministic() {
        assert_eq!(name(1, 12345), name(1, 12345));
        assert_ne!(name(1, 12345), name(2, 12345));
        let mut a = Vec::new();
        let mut b = Vec::new();
        generate_list(1000, 3, &mut a).unwrap();
        generate_list(1000, 3, &mut b).unwrap();
        assert_eq!(a, b);
    }
}

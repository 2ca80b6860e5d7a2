//! Safe-search enforcement: the search engines and video sites that offer
//! a DNS-level switch answer their "forced safe" address when their usual
//! names are asked for through it. The answer is a CNAME from the asked
//! name to the enforcing name, plus that name's records.

use std::collections::HashMap;
use std::sync::LazyLock;

/// Google's country domains (the engine redirects users to these).
const GOOGLE_SUFFIXES: &[&str] = &[
    "com", "ad", "ae", "com.af", "com.ag", "al", "am", "co.ao", "com.ar", "as", "at", "com.au",
    "az", "ba", "com.bd", "be", "bf", "bg", "com.bh", "bi", "bj", "com.bn", "com.bo", "com.br",
    "bs", "bt", "co.bw", "by", "com.bz", "ca", "cd", "cf", "cg", "ch", "ci", "co.ck", "cl", "cm",
    "cn", "com.co", "co.cr", "com.cu", "cv", "com.cy", "cz", "de", "dj", "dk", "dm", "com.do",
    "dz", "com.ec", "ee", "com.eg", "es", "com.et", "fi", "com.fj", "fm", "fr", "ga", "ge", "gg",
    "com.gh", "com.gi", "gl", "gm", "gr", "com.gt", "gy", "com.hk", "hn", "hr", "ht", "hu",
    "co.id", "ie", "co.il", "im", "co.in", "iq", "is", "it", "je", "com.jm", "jo", "co.jp",
    "co.ke", "com.kh", "ki", "kg", "co.kr", "com.kw", "kz", "la", "com.lb", "li", "lk", "co.ls",
    "lt", "lu", "lv", "com.ly", "co.ma", "md", "me", "mg", "mk", "ml", "com.mm", "mn", "com.mt",
    "mu", "mv", "mw", "com.mx", "com.my", "co.mz", "com.na", "com.ng", "com.ni", "ne", "nl", "no",
    "com.np", "nr", "nu", "co.nz", "com.om", "com.pa", "com.pe", "com.pg", "com.ph", "com.pk",
    "pl", "pn", "com.pr", "ps", "pt", "com.py", "com.qa", "ro", "ru", "rw", "com.sa", "com.sb",
    "sc", "se", "com.sg", "sh", "si", "sk", "com.sl", "sn", "so", "sm", "sr", "st", "com.sv", "td",
    "tg", "co.th", "com.tj", "tl", "tm", "tn", "to", "com.tr", "tt", "com.tw", "co.tz", "com.ua",
    "co.ug", "co.uk", "com.uy", "co.uz", "com.vc", "co.ve", "co.vi", "com.vn", "vu", "ws", "rs",
    "co.za", "co.zm", "co.zw", "cat",
];

const YOUTUBE: &[&str] = &[
    "www.youtube.com",
    "m.youtube.com",
    "youtubei.googleapis.com",
    "youtube.googleapis.com",
    "www.youtube-nocookie.com",
];

const FIXED: &[(&str, &str)] = &[
    ("www.bing.com", "strict.bing.com"),
    ("duckduckgo.com", "safe.duckduckgo.com"),
    ("www.duckduckgo.com", "safe.duckduckgo.com"),
    ("start.duckduckgo.com", "safe.duckduckgo.com"),
    ("yandex.ru", "familysearch.yandex.ru"),
    ("www.yandex.ru", "familysearch.yandex.ru"),
    ("yandex.com", "familysearch.yandex.ru"),
    ("www.yandex.com", "familysearch.yandex.ru"),
    ("pixabay.com", "safesearch.pixabay.com"),
    ("www.pixabay.com", "safesearch.pixabay.com"),
];

/// Where Google's safe search is enforced.
pub const GOOGLE_TARGET: &str = "forcesafesearch.google.com";
/// YouTube's strict restricted mode.
pub const YOUTUBE_TARGET: &str = "restrict.youtube.com";

static TABLE: LazyLock<HashMap<Box<[u8]>, &'static str>> = LazyLock::new(|| {
    let mut table = HashMap::new();
    for suffix in GOOGLE_SUFFIXES {
        for host in ["www.google", "google"] {
            if let Some(wire) = to_wire(&format!("{host}.{suffix}")) {
                table.insert(wire, GOOGLE_TARGET);
            }
        }
    }
    for name in YOUTUBE {
        if let Some(wire) = to_wire(name) {
            table.insert(wire, YOUTUBE_TARGET);
        }
    }
    for (name, target) in FIXED {
        if let Some(wire) = to_wire(name) {
            table.insert(wire, *target);
        }
    }
    table
});

/// The enforcing name for `name_wire` (lowercase wire form), if it is one
/// of the sites covered.
pub fn target(name_wire: &[u8]) -> Option<&'static str> {
    TABLE.get(name_wire).copied()
}

/// Every name covered, with its target (for documentation and tests).
pub fn covered() -> impl Iterator<Item = (&'static [u8], &'static str)> {
    TABLE.iter().map(|(name, target)| (&**name, *target))
}

fn to_wire(name: &str) -> Option<Box<[u8]>> {
    let mut wire = Vec::with_capacity(name.len() + 2);
    for label in name.split('.') {
        wire.push(u8::try_from(label.len()).ok()?);
        wire.extend_from_slice(label.as_bytes());
    }
    wire.push(0);
    Some(wire.into_boxed_slice())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_common_engines_are_covered() {
        assert_eq!(target(b"\x03www\x06google\x03com\x00"), Some(GOOGLE_TARGET));
        assert_eq!(
            target(b"\x03www\x06google\x02co\x02uk\x00"),
            Some(GOOGLE_TARGET)
        );
        assert_eq!(
            target(b"\x03www\x07youtube\x03com\x00"),
            Some(YOUTUBE_TARGET)
        );
        assert_eq!(
            target(b"\x03www\x04bing\x03com\x00"),
            Some("strict.bing.com")
        );
        assert_eq!(
            target(b"\x0aduckduckgo\x03com\x00"),
            Some("safe.duckduckgo.com")
        );
        assert_eq!(target(b"\x04mail\x06google\x03com\x00"), None);
        assert!(covered().count() > 300);
    }
}

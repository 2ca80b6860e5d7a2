//! Hostile responses: upstream and authoritative answers are decoded into
//! wire-form cache entries, then replayed to clients.
#![no_main]

use std::time::{Duration, Instant};

use dns::fastpath::{CachedAnswer, parse_query};
use libfuzzer_sys::fuzz_target;

/// `www.example.com A` with EDNS (payload 1232, DO set).
const QUERY: [u8; 44] = [
    0x12, 0x34, 0x01, 0x20, 0, 1, 0, 0, 0, 0, 0, 1, 3, b'w', b'w', b'w', 7, b'e', b'x', b'a',
    b'm', b'p', b'l', b'e', 3, b'c', b'o', b'm', 0, 0, 1, 0, 1, 0, 0, 41, 4, 208, 0, 0, 0x80, 0,
    0, 0,
];

fuzz_target!(|response: &[u8]| {
    let now = Instant::now();
    let Ok(answer) = CachedAnswer::from_response(response, now, (0, 86_400)) else {
        return;
    };
    let Ok(query) = parse_query(&QUERY) else {
        return;
    };
    let mut out = Vec::new();
    for max_udp in [0, 512, 1232] {
        answer.write_response(&query, &QUERY, now + Duration::from_secs(5), max_udp, 1232, &mut out);
        answer.write_stale_response(&query, &QUERY, max_udp, 1232, &mut out);
    }
});

//! Hostile queries: whatever arrives on port 53 goes through these
//! functions before anything else looks at it.
#![no_main]

use dns::fastpath::{KeyBuf, cache_key, parse_query, synth};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|packet: &[u8]| {
    let mut out = Vec::new();
    match parse_query(packet) {
        Ok(query) => {
            let mut key = KeyBuf::default();
            let key = cache_key(&query, &mut key);
            assert!(!key.is_empty());
            synth::error_response(&query, packet, 2, 1232, &mut out);
            synth::any_response(&query, packet, 1232, &mut out);
            synth::error_response(&query, packet, 16, 1232, &mut out);
        }
        Err(error) => {
            if let Some(rcode) = error.reply_rcode() {
                synth::header_only(packet, rcode, &mut out);
            }
        }
    }
});

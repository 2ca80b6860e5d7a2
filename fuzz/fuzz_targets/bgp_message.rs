//! Hostile BGP peers: every byte a session receives goes through framing
//! and decoding here before the state machine sees it.
#![no_main]

use bgp::wire::{self, Message};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut rest = data;
    // A stream of messages, as a TCP session delivers them.
    while let Ok(Some(len)) = wire::frame(rest) {
        let (message, tail) = rest.split_at(len);
        // The fast UPDATE decoder must read whatever it accepts exactly as
        // bgpkit does (`decode` below takes it first with 4-octet ASes).
        if let Some(fast) = bgp::wire_fast::decode_update(message) {
            assert_eq!(
                wire::decode_with_bgpkit(message, true),
                Ok(Message::Update(fast))
            );
        }
        for four_octet in [true, false] {
            if let Ok(Message::Update(received)) = wire::decode(message, four_octet) {
                // What was decoded must encode again.
                for update in &received.updates {
                    let _ = wire::encode_update(update, four_octet);
                }
            }
        }
        rest = tail;
    }
});

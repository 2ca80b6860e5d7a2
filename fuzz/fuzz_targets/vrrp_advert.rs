//! Hostile VRRP speakers: every advertisement the raw socket delivers goes
//! through the decoder, and what decodes must re-encode to the same bytes.
#![no_main]

use std::net::IpAddr;

use libfuzzer_sys::fuzz_target;
use vrrp::Advertisement;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, packet)) = data.split_first() else {
        return;
    };
    let (source, destination): (IpAddr, IpAddr) = if selector & 1 == 0 {
        ([192, 168, 1, 2].into(), [224, 0, 0, 18].into())
    } else {
        (
            "fe80::2".parse().unwrap_or(IpAddr::from([0u8; 16])),
            "ff02::12".parse().unwrap_or(IpAddr::from([0u8; 16])),
        )
    };
    if let Ok(adv) = Advertisement::decode(packet, source, destination) {
        let mut out = Vec::new();
        if adv.encode(source, destination, &mut out).is_ok() {
            // Reserved bits are not kept; everything else is.
            assert_eq!(out[1..4], packet[1..4]);
            assert_eq!(out[8..], packet[8..]);
            assert!(Advertisement::decode(&out, source, destination).is_ok());
        }
    }
});

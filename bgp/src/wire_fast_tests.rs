#![allow(clippy::unwrap_used, clippy::expect_used)] // tests

use std::net::IpAddr;

use proptest::prelude::*;
use proptest::strategy::ValueTree;

use super::*;
use crate::route::{Asn, Segment};
use crate::wire::{self, Message, encode_update};

/// The fast decoder took the message, and bgpkit reads it the same.
fn agrees(message: &[u8]) -> ReceivedUpdate {
    let fast = decode_update(message).expect("the fast path declined");
    assert_eq!(
        wire::decode_with_bgpkit(message, true),
        Ok(Message::Update(fast.clone())),
        "{message:02x?}"
    );
    fast
}

/// Whatever the fast decoder accepts, bgpkit reads the same.
fn never_disagrees(message: &[u8]) -> Result<(), TestCaseError> {
    if let Some(fast) = decode_update(message) {
        prop_assert_eq!(
            wire::decode_with_bgpkit(message, true),
            Ok(Message::Update(fast)),
            "{:02x?}",
            message
        );
    }
    Ok(())
}

fn attributes(path: &[Asn], med: Option<u32>, local_pref: Option<u32>) -> Arc<PathAttributes> {
    Arc::new(PathAttributes {
        origin: Origin::Egp,
        as_path: AsPath::sequence(path.iter().copied()),
        next_hop: "192.0.2.1".parse().unwrap(),
        med,
        local_pref,
        communities: Vec::new(),
    })
}

fn nets(texts: &[&str]) -> Vec<IpNet> {
    texts.iter().map(|t| t.parse().unwrap()).collect()
}

#[test]
fn what_we_encode_is_read_the_same_both_ways() {
    let many: Vec<IpNet> = (0..2000u32)
        .map(|i| IpNet::new(IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + (i << 8))), 24).unwrap())
        .collect();
    // Our encoder (bgpkit's) writes no extended lengths: 63 ASes at most.
    let long_path: Vec<Asn> = (0..60).map(|i| 4_200_000_000 + i).collect();
    let with_set = Arc::new(PathAttributes {
        as_path: AsPath {
            segments: [
                Segment::Sequence(vec![65001, 65002]),
                Segment::Set(vec![65003, 4_200_000_000]),
                Segment::Sequence(vec![65004]),
            ]
            .into_iter()
            .collect(),
        },
        ..PathAttributes::clone(&attributes(&[], None, None))
    });
    let cases = [
        Update {
            withdrawn: Vec::new(),
            announced: nets(&[
                "192.168.50.0/24",
                "10.61.2.0/23",
                "10.1.2.3/32",
                "10.0.0.0/8",
            ]),
            attributes: Some(attributes(&[65001, 65002], Some(10), None)),
        },
        Update {
            withdrawn: Vec::new(),
            announced: nets(&["198.51.100.0/25"]),
            attributes: Some(attributes(&[], None, Some(200))),
        },
        Update {
            withdrawn: Vec::new(),
            announced: nets(&["198.51.100.128/25"]),
            attributes: Some(attributes(&long_path, Some(0), Some(100))),
        },
        Update {
            withdrawn: Vec::new(),
            announced: many.clone(),
            attributes: Some(attributes(&[4_200_000_001], None, None)),
        },
        Update {
            withdrawn: Vec::new(),
            announced: nets(&["203.0.113.0/24"]),
            attributes: Some(with_set),
        },
        Update {
            withdrawn: many,
            announced: Vec::new(),
            attributes: None,
        },
    ];
    for update in &cases {
        let mut announced = Vec::new();
        let mut withdrawn = Vec::new();
        for message in encode_update(update, true).unwrap() {
            let received = agrees(&message);
            let [one] = received.updates.as_slice() else {
                panic!("{received:?}");
            };
            assert_eq!(
                one.attributes,
                update
                    .attributes
                    .clone()
                    .filter(|_| !one.announced.is_empty())
            );
            announced.extend(one.announced.iter().copied());
            withdrawn.extend(one.withdrawn.iter().copied());
        }
        assert_eq!(
            (&announced, &withdrawn),
            (&update.announced, &update.withdrawn)
        );
    }
}

/// An UPDATE as BIRD sends one: withdrawals and announcements together,
/// COMMUNITIES, AGGREGATOR, ATOMIC_AGGREGATE and extended lengths.
#[test]
fn the_optional_attributes_we_skip_change_nothing() {
    let mut body = Vec::new();
    body.extend_from_slice(&[0, 4, 24, 10, 0, 0]); // withdrawn 10.0.0.0/24
    let attrs: Vec<u8> = [
        &[0x40, 1, 1, 0][..],
        &[0x50, 2, 0, 10, 2, 2, 0, 0, 0xfd, 0xe9, 0, 0, 0xfd, 0xea],
        &[0x40, 3, 4, 192, 0, 2, 1],
        &[0x80, 4, 4, 0, 0, 0, 5],
        &[0x40, 6, 0],
        &[0xc0, 7, 8, 0, 0, 0xfd, 0xe9, 10, 0, 0, 1],
        &[0xe0, 8, 4, 0xfd, 0xe9, 0, 100],
    ]
    .concat();
    body.extend_from_slice(&(attrs.len() as u16).to_be_bytes());
    body.extend_from_slice(&attrs);
    body.extend_from_slice(&[24, 10, 0, 1, 22, 10, 0, 4]);
    let received = agrees(&message(&body));
    assert_eq!(received.updates[0].withdrawn, nets(&["10.0.0.0/24"]));
    assert_eq!(
        received.updates[0].announced,
        nets(&["10.0.1.0/24", "10.0.4.0/22"])
    );
    let attributes = received.updates[0].attributes.as_ref().unwrap();
    assert_eq!(attributes.as_path, AsPath::sequence([65001, 65002]));
    assert_eq!((attributes.origin, attributes.med), (Origin::Igp, Some(5)));
}

#[test]
fn odd_shapes_are_left_to_bgpkit() {
    let plain = encode_update(
        &Update {
            withdrawn: Vec::new(),
            announced: nets(&["192.168.50.0/24"]),
            attributes: Some(attributes(&[65001], None, None)),
        },
        true,
    )
    .unwrap()
    .remove(0);
    assert!(decode_update(&plain).is_some());
    // A /0 (bgpkit's ADD-PATH guess), an AS_CONFED_SEQUENCE, a
    // duplicate attribute, a partial well-known one, End-of-RIB.
    let default_route = encode_update(
        &Update {
            withdrawn: Vec::new(),
            announced: nets(&["0.0.0.0/0"]),
            attributes: Some(attributes(&[65001], None, None)),
        },
        true,
    )
    .unwrap()
    .remove(0);
    assert!(decode_update(&default_route).is_none());
    let mut confed = plain.clone();
    // Header, withdrawn length, attribute length, ORIGIN (4 octets), then
    // AS_PATH's flags, type, length and the segment type.
    assert_eq!(confed[HEADER_LEN + 4 + 4 + 1], 2);
    confed[HEADER_LEN + 4 + 4 + 3] = 3;
    assert!(decode_update(&confed).is_none());
    let mut partial = plain.clone();
    partial[HEADER_LEN + 4] |= PARTIAL;
    assert!(decode_update(&partial).is_none());
    let eor = wire::encode_end_of_rib(wire::Family::Ipv4, true).unwrap();
    assert!(decode_update(&eor).is_none());
    for bytes in [default_route, confed, partial, eor] {
        assert!(wire::decode(&bytes, true).is_ok());
    }
}

/// A message around an UPDATE body.
fn message(body: &[u8]) -> Vec<u8> {
    let mut message = vec![0xff; 16];
    message.extend_from_slice(&((HEADER_LEN + body.len()) as u16).to_be_bytes());
    message.push(TYPE_UPDATE);
    message.extend_from_slice(body);
    message
}

/// Prefixes as the NLRI encodes them, lengths a little beyond IPv4's.
fn nlri() -> impl Strategy<Value = Vec<u8>> {
    let bits = prop_oneof![8 => 1u8..=32, 1 => 0u8..=34];
    proptest::collection::vec((bits, any::<[u8; 5]>()), 0..5).prop_map(|prefixes| {
        let mut out = Vec::new();
        for (bits, octets) in prefixes {
            out.push(bits);
            out.extend_from_slice(&octets[..usize::from(bits).div_ceil(8).min(5)]);
        }
        out
    })
}

fn segments() -> impl Strategy<Value = Vec<u8>> {
    let segment = (
        prop_oneof![4 => Just(AS_SEQUENCE), 2 => Just(AS_SET), 1 => 0u8..6],
        prop_oneof![4 => 1u8..5, 1 => Just(0u8)],
        any::<[u32; 4]>(),
    );
    proptest::collection::vec(segment, 0..3).prop_map(|segments| {
        let mut out = Vec::new();
        for (kind, count, asns) in segments {
            out.extend_from_slice(&[kind, count]);
            for asn in asns.iter().take(usize::from(count)) {
                out.extend_from_slice(&asn.to_be_bytes());
            }
        }
        out
    })
}

/// One attribute: mostly a proper one, with its usual flags or not.
fn attribute() -> impl Strategy<Value = Vec<u8>> {
    let value = prop_oneof![
        (Just(ORIGIN), (0u8..4).prop_map(|o| vec![o])),
        (Just(AS_PATH), segments()),
        (Just(NEXT_HOP), any::<[u8; 4]>().prop_map(|a| a.to_vec())),
        (Just(MED), any::<[u8; 4]>().prop_map(|a| a.to_vec())),
        (Just(LOCAL_PREF), any::<[u8; 4]>().prop_map(|a| a.to_vec())),
        (Just(ATOMIC_AGGREGATE), Just(Vec::new())),
        (
            Just(AGGREGATOR),
            proptest::collection::vec(any::<u8>(), 0..10)
        ),
        (
            Just(COMMUNITIES),
            proptest::collection::vec(any::<u8>(), 0..10)
        ),
        (any::<u8>(), proptest::collection::vec(any::<u8>(), 0..6)),
    ];
    (
        value,
        prop_oneof![6 => Just(None), 1 => any::<u8>().prop_map(Some)],
        any::<bool>(),
    )
        .prop_map(|((kind, value), flags, extended)| {
            let usual = match kind {
                MED => OPTIONAL,
                AGGREGATOR | COMMUNITIES => OPTIONAL | TRANSITIVE,
                _ => TRANSITIVE,
            };
            let mut flags = flags.unwrap_or(usual);
            if extended {
                flags |= EXTENDED;
            }
            let mut out = vec![flags, kind];
            if flags & EXTENDED != 0 {
                out.extend_from_slice(&(value.len() as u16).to_be_bytes());
            } else {
                out.push(value.len() as u8);
            }
            out.extend_from_slice(&value);
            out
        })
}

/// UPDATE bodies near the shape the fast path takes: the mandatory three
/// most of the time, maybe more, in any order, sometimes broken.
fn update_body() -> impl Strategy<Value = Vec<u8>> {
    let mandatory = (
        (0u8..3).prop_map(|o| vec![TRANSITIVE, ORIGIN, 1, o]),
        segments().prop_map(|s| {
            let mut out = vec![TRANSITIVE, AS_PATH, s.len() as u8];
            out.extend_from_slice(&s);
            out
        }),
        any::<[u8; 4]>().prop_map(|a| [&[TRANSITIVE, NEXT_HOP, 4][..], &a].concat()),
    );
    (
        nlri(),
        prop_oneof![4 => Just(vec![true; 3]), 1 => proptest::collection::vec(any::<bool>(), 3)],
        mandatory,
        prop_oneof![2 => Just(Vec::new()), 1 => proptest::collection::vec(attribute(), 1..4)],
        nlri(),
        prop_oneof![8 => Just(Vec::new()), 1 => proptest::collection::vec(any::<u8>(), 1..3)],
    )
        .prop_map(|(withdrawn, keep, (o, p, n), extra, announced, trailing)| {
            let mut attrs: Vec<u8> = Vec::new();
            for (kept, attr) in keep.iter().zip([o, p, n]) {
                if *kept || keep.iter().all(|k| !k) {
                    attrs.extend_from_slice(&attr);
                }
            }
            for attr in extra {
                attrs.extend_from_slice(&attr);
            }
            attrs.extend_from_slice(&trailing);
            let mut body = Vec::new();
            body.extend_from_slice(&(withdrawn.len() as u16).to_be_bytes());
            body.extend_from_slice(&withdrawn);
            body.extend_from_slice(&(attrs.len() as u16).to_be_bytes());
            body.extend_from_slice(&attrs);
            body.extend_from_slice(&announced);
            body
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4000))]

    #[test]
    fn generated_updates_decode_alike(body in update_body()) {
        never_disagrees(&message(&body))?;
    }

    #[test]
    fn mutated_updates_decode_alike(
        body in update_body(),
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
    ) {
        let mut bytes = message(&body);
        for (at, value) in edits {
            let at = HEADER_LEN + at.index(bytes.len() - HEADER_LEN);
            bytes[at] = value;
        }
        never_disagrees(&bytes)?;
    }
}

/// The generator does reach the fast path, often enough to test it.
#[test]
fn generated_updates_often_take_the_fast_path() {
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let strategy = update_body();
    let mut taken = 0;
    for _ in 0..2000 {
        let body = strategy.new_tree(&mut runner).unwrap().current();
        if decode_update(&message(&body)).is_some() {
            taken += 1;
        }
    }
    assert!(taken > 200, "{taken} of 2000");
}

#![allow(clippy::unwrap_used)] // tests

use super::*;

fn attrs(next_hop: &str, path: &[Asn]) -> Arc<PathAttributes> {
    Arc::new(PathAttributes {
        origin: Origin::Igp,
        as_path: AsPath::sequence(path.iter().copied()),
        next_hop: next_hop.parse().unwrap(),
        med: Some(10),
        local_pref: None,
        communities: Vec::new(),
    })
}

fn net(text: &str) -> IpNet {
    text.parse().unwrap()
}

/// Frames and decodes one whole message.
fn round_trip(bytes: &[u8]) -> Message {
    assert_eq!(frame(bytes).unwrap(), Some(bytes.len()));
    decode(bytes, true).unwrap()
}

#[test]
fn open_round_trips_with_its_capabilities() {
    let bytes = encode_open(
        4_200_000_001,
        90,
        "10.0.0.1".parse().unwrap(),
        &[Family::Ipv4, Family::Ipv6],
    )
    .unwrap();
    let Message::Open(open) = round_trip(&bytes) else {
        panic!("not an OPEN");
    };
    assert_eq!(open.version, 4);
    assert_eq!(open.asn16, AS_TRANS);
    assert_eq!(open.asn(), 4_200_000_001);
    assert_eq!(open.hold_time, 90);
    assert_eq!(open.router_id, Ipv4Addr::new(10, 0, 0, 1));
    assert_eq!(open.families(), vec![Family::Ipv4, Family::Ipv6]);
    assert!(open.capabilities.route_refresh);
}

#[test]
fn keepalive_notification_and_refresh_round_trip() {
    assert_eq!(round_trip(&encode_keepalive()), Message::Keepalive);
    let n = Notification::shutdown(subcode::ADMINISTRATIVE_SHUTDOWN, "moving house");
    assert_eq!(
        round_trip(&encode_notification(&n).unwrap()),
        Message::Notification(n)
    );
    assert_eq!(
        round_trip(&encode_route_refresh(Family::Ipv6).unwrap()),
        Message::RouteRefresh { afi: 2, safi: 1 }
    );
}

#[test]
fn updates_round_trip_for_both_families() {
    for (hop, prefixes) in [
        (
            "10.0.0.1",
            vec![
                net("192.168.50.0/24"),
                net("10.61.2.0/24"),
                net("0.0.0.0/0"),
            ],
        ),
        ("fd00::1", vec![net("fd61:2::/64"), net("2001:db8::/32")]),
    ] {
        let update = Update {
            withdrawn: Vec::new(),
            announced: prefixes.clone(),
            attributes: Some(attrs(hop, &[65001, 65002])),
        };
        let messages = encode_update(&update, true).unwrap();
        assert_eq!(messages.len(), 1);
        let Message::Update(received) = round_trip(&messages[0]) else {
            panic!("not an UPDATE");
        };
        assert_eq!(received.treated_as_withdraw, None);
        assert_eq!(received.updates, vec![update.clone()]);

        let withdraw = Update {
            withdrawn: prefixes,
            announced: Vec::new(),
            attributes: None,
        };
        let messages = encode_update(&withdraw, true).unwrap();
        let Message::Update(received) = round_trip(&messages[0]) else {
            panic!("not an UPDATE");
        };
        assert_eq!(received.updates, vec![withdraw]);
    }
}

#[test]
fn two_octet_sessions_carry_two_octet_paths() {
    let update = Update {
        withdrawn: Vec::new(),
        announced: vec![net("192.168.50.0/24")],
        attributes: Some(attrs("10.0.0.1", &[65001])),
    };
    let bytes = &encode_update(&update, false).unwrap()[0];
    let Message::Update(received) = decode(bytes, false).unwrap() else {
        panic!("not an UPDATE");
    };
    assert_eq!(received.updates, vec![update]);
}

#[test]
fn many_prefixes_are_split_into_messages_within_the_limit() {
    let announced: Vec<IpNet> = (0..3000u32)
        .map(|i| IpNet::new(IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + (i << 8))), 24).unwrap())
        .collect();
    let update = Update {
        withdrawn: Vec::new(),
        announced: announced.clone(),
        attributes: Some(attrs("10.0.0.1", &[65001])),
    };
    let messages = encode_update(&update, true).unwrap();
    assert!(messages.len() > 1);
    let mut seen = Vec::new();
    for message in &messages {
        assert!(message.len() <= MAX_LEN);
        let Message::Update(received) = round_trip(message) else {
            panic!("not an UPDATE");
        };
        seen.extend(received.updates[0].announced.clone());
    }
    assert_eq!(seen, announced);
}

#[test]
fn bad_headers_get_the_notification_rfc_4271_names() {
    let keepalive = encode_keepalive();
    assert_eq!(frame(&keepalive[..10]).unwrap(), None);
    let mut bad = keepalive.clone();
    bad[3] = 0;
    assert_eq!(
        frame(&bad).unwrap_err().subcode,
        subcode::CONNECTION_NOT_SYNCHRONIZED
    );
    let mut bad = keepalive.clone();
    bad[17] = 20;
    assert_eq!(
        frame(&bad).unwrap_err().subcode,
        subcode::BAD_MESSAGE_LENGTH
    );
    let mut bad = keepalive.clone();
    bad[18] = 9;
    let e = frame(&bad).unwrap_err();
    assert_eq!(
        (e.code, e.subcode, e.data),
        (code::MESSAGE_HEADER, subcode::BAD_MESSAGE_TYPE, vec![9])
    );
    let mut long = keepalive;
    long[16..18].copy_from_slice(&5000u16.to_be_bytes());
    long[18] = TYPE_UPDATE;
    assert_eq!(
        frame(&long).unwrap_err().subcode,
        subcode::BAD_MESSAGE_LENGTH
    );
}

/// An UPDATE for 192.168.50.0/24 whose attributes are then broken.
fn encoded_update() -> Vec<u8> {
    let update = Update {
        withdrawn: Vec::new(),
        announced: vec![net("192.168.50.0/24")],
        attributes: Some(attrs("10.0.0.1", &[65001])),
    };
    encode_update(&update, true).unwrap().remove(0)
}

#[test]
fn a_bad_origin_withdraws_the_routes_instead_of_ending_the_session() {
    let mut bytes = encoded_update();
    // Header, withdrawn length (0), attributes length, then ORIGIN first:
    // flags, type, length, value.
    assert_eq!(bytes[24], 1, "ORIGIN is not the first attribute");
    bytes[26] = 7;
    let Message::Update(received) = decode(&bytes, true).unwrap() else {
        panic!("not an UPDATE");
    };
    assert!(received.treated_as_withdraw.is_some(), "{received:?}");
    assert_eq!(received.updates.len(), 1);
    assert_eq!(received.updates[0].withdrawn, vec![net("192.168.50.0/24")]);
    assert!(received.updates[0].announced.is_empty());
}

#[test]
fn an_attribute_that_overruns_its_list_withdraws_the_routes() {
    let mut bytes = encoded_update();
    // The AS_PATH attribute's length now runs past the attribute list;
    // the NLRI is still where the total attribute length says (RFC 7606 4).
    assert_eq!(bytes[27 + 1], 2, "AS_PATH is not the second attribute");
    bytes[27 + 2] = 200;
    let Message::Update(received) = decode(&bytes, true).unwrap() else {
        panic!("not an UPDATE");
    };
    assert!(received.treated_as_withdraw.is_some(), "{received:?}");
    assert_eq!(received.updates[0].withdrawn, vec![net("192.168.50.0/24")]);
}

#[test]
fn an_attribute_list_longer_than_the_message_ends_the_session() {
    let mut bytes = encoded_update();
    // Total path attribute length beyond the message: the NLRI is lost.
    bytes[21..23].copy_from_slice(&4000u16.to_be_bytes());
    let error = decode(&bytes, true).unwrap_err();
    assert_eq!(error.code, code::UPDATE);
}

#[test]
fn an_unparseable_nlri_ends_the_session() {
    let mut bytes = encoded_update();
    // The last prefix claims 40 bits of IPv4.
    let nlri = bytes.len() - 4;
    bytes[nlri] = 40;
    let error = decode(&bytes, true).unwrap_err();
    assert_eq!(
        (error.code, error.subcode),
        (code::UPDATE, subcode::INVALID_NETWORK_FIELD)
    );
}

#[test]
fn an_empty_update_is_end_of_rib() {
    let bytes = encode_end_of_rib(Family::Ipv4, true).unwrap();
    let Message::Update(received) = round_trip(&bytes) else {
        panic!("not an UPDATE");
    };
    assert!(received.end_of_rib);
    assert!(received.updates.is_empty());
}

#[test]
fn truncated_and_garbage_messages_never_panic() {
    let valid = [
        encode_open(
            65001,
            90,
            Ipv4Addr::new(10, 0, 0, 1),
            &[Family::Ipv4, Family::Ipv6],
        )
        .unwrap(),
        encoded_update(),
        encode_notification(&Notification::new(6, 2)).unwrap(),
    ];
    for message in &valid {
        for cut in 0..message.len() {
            let mut bytes = message[..cut].to_vec();
            if bytes.len() >= 18 {
                bytes[16..18].copy_from_slice(&(cut as u16).to_be_bytes());
            }
            let _ = frame(&bytes);
            let _ = decode(&bytes, true);
            let _ = decode(&bytes, false);
        }
        for i in 19..message.len() {
            for value in [0u8, 1, 0x7f, 0x80, 0xff] {
                let mut bytes = message.clone();
                bytes[i] = value;
                let _ = decode(&bytes, true);
            }
        }
    }
}

#[test]
fn long_paths_and_many_ipv6_prefixes_take_the_extended_length() {
    // 100 ASes: 402 bytes of AS_PATH, more than a one-octet length holds.
    let path: Vec<Asn> = (0..100).map(|i| 64_600 + i).collect();
    for four_octet in [true, false] {
        let update = Update {
            withdrawn: Vec::new(),
            announced: vec![net("192.168.50.0/24")],
            attributes: Some(attrs("10.0.0.1", &path)),
        };
        let messages = encode_update(&update, four_octet).unwrap();
        let Message::Update(received) = decode(&messages[0], four_octet).unwrap() else {
            panic!("not an UPDATE");
        };
        assert_eq!(received.treated_as_withdraw, None);
        assert_eq!(received.updates, vec![update]);
    }
    // 300 IPv6 /48s in MP_REACH_NLRI and MP_UNREACH_NLRI.
    let announced: Vec<IpNet> = (0..300u128)
        .map(|i| IpNet::new(IpAddr::V6((0xfd00_u128 << 112 | i << 80).into()), 48).unwrap())
        .collect();
    for update in [
        Update {
            withdrawn: Vec::new(),
            announced: announced.clone(),
            attributes: Some(attrs("fd00::1", &[65001])),
        },
        Update {
            withdrawn: announced.clone(),
            announced: Vec::new(),
            attributes: None,
        },
    ] {
        let mut seen = Vec::new();
        for message in encode_update(&update, true).unwrap() {
            assert!(message.len() <= MAX_LEN);
            let Message::Update(received) = round_trip(&message) else {
                panic!("not an UPDATE");
            };
            assert_eq!(received.treated_as_withdraw, None);
            for part in received.updates {
                seen.extend(part.announced);
                seen.extend(part.withdrawn);
            }
        }
        assert_eq!(seen, announced);
    }
}

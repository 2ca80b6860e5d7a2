#![allow(clippy::unwrap_used)] // tests

use std::collections::VecDeque;

use super::*;
use crate::policy::PrefixList;

fn net(text: &str) -> IpNet {
    text.parse().unwrap()
}

fn allow(lines: &[&str]) -> Option<Policy> {
    Some(Policy {
        prefixes: Some(PrefixList::parse(lines.iter().copied()).unwrap()),
        ..Policy::default()
    })
}

fn speaker(
    asn: Asn,
    id: u8,
    networks: &[&str],
    peer: (&str, Asn, u8),
    max: Option<u32>,
) -> Speaker {
    Speaker::new(
        SpeakerConfig {
            asn,
            router_id: Ipv4Addr::new(10, 0, 0, id),
            hold_time: 9,
            connect_retry: Duration::from_secs(2),
            networks: networks.iter().map(|n| net(n)).collect(),
        },
        vec![PeerSettings {
            name: peer.0.into(),
            address: IpAddr::V4(Ipv4Addr::new(10, 0, 0, peer.2)),
            remote_asn: peer.1,
            passive: false,
            max_prefixes: max,
            import: allow(&["permit 10.61.0.0/16 le 24", "permit fd61::/16 le 64"]),
            export: allow(&["permit 10.61.0.0/16 le 24", "permit fd61::/16 le 64"]),
        }],
    )
}

/// Two speakers on one imaginary TCP connection; returns every output each
/// produced that is not a message for the other.
struct Pair {
    a: Speaker,
    b: Speaker,
    seen_a: Vec<Output>,
    seen_b: Vec<Output>,
}

impl Pair {
    fn up(mut a: Speaker, mut b: Speaker) -> Pair {
        a.start();
        b.start();
        let to_b = a.connected(
            0,
            "10.0.0.1".parse().unwrap(),
            Some("fd00::1".parse().unwrap()),
        );
        let to_a = b.connected(
            0,
            "10.0.0.2".parse().unwrap(),
            Some("fd00::2".parse().unwrap()),
        );
        let mut pair = Pair {
            a,
            b,
            seen_a: Vec::new(),
            seen_b: Vec::new(),
        };
        pair.run(to_b, to_a);
        pair
    }

    fn messages(outputs: &[Output]) -> VecDeque<Vec<u8>> {
        outputs
            .iter()
            .filter_map(|o| match o {
                Output::Peer(_, Action::Send(bytes)) => Some(bytes.clone()),
                _ => None,
            })
            .collect()
    }

    /// Delivers in order until both sides are quiet.
    fn run(&mut self, from_a: Vec<Output>, from_b: Vec<Output>) {
        let mut to_b = Self::messages(&from_a);
        let mut to_a = Self::messages(&from_b);
        self.seen_a.extend(from_a);
        self.seen_b.extend(from_b);
        while !to_a.is_empty() || !to_b.is_empty() {
            if let Some(m) = to_b.pop_front() {
                let out = self.b.event(0, Event::Message(&m));
                to_a.extend(Self::messages(&out));
                self.seen_b.extend(out);
            }
            if let Some(m) = to_a.pop_front() {
                let out = self.a.event(0, Event::Message(&m));
                to_b.extend(Self::messages(&out));
                self.seen_a.extend(out);
            }
        }
    }
}

fn installs(outputs: &[Output]) -> Vec<(IpNet, IpAddr)> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::Install { prefix, next_hop } => Some((*prefix, *next_hop)),
            _ => None,
        })
        .collect()
}

#[test]
fn two_sites_exchange_their_networks_with_next_hop_self() {
    let a = speaker(
        65001,
        1,
        &["10.61.1.0/24", "fd61:1::/64", "192.168.99.0/24"],
        ("b", 65002, 2),
        None,
    );
    let b = speaker(
        65002,
        2,
        &["10.61.2.0/24", "fd61:2::/64"],
        ("a", 65001, 1),
        None,
    );
    let pair = Pair::up(a, b);
    assert_eq!(pair.a.state(0), Some(State::Established));
    assert_eq!(pair.b.state(0), Some(State::Established));
    let mut got = installs(&pair.seen_a);
    got.sort();
    assert_eq!(
        got,
        vec![
            (net("10.61.2.0/24"), "10.0.0.2".parse().unwrap()),
            (net("fd61:2::/64"), "fd00::2".parse().unwrap()),
        ]
    );
    // 192.168.99.0/24 is outside a's export policy.
    let mut got = installs(&pair.seen_b);
    got.sort();
    assert_eq!(
        got,
        vec![
            (net("10.61.1.0/24"), "10.0.0.1".parse().unwrap()),
            (net("fd61:1::/64"), "fd00::1".parse().unwrap()),
        ]
    );
    let status = &pair.a.peers(true)[0];
    assert_eq!(status.state, State::Established);
    assert_eq!((status.prefixes_received, status.prefixes_accepted), (2, 2));
    assert_eq!(status.prefixes_advertised, Some(2));
    let table = pair.a.routes_table(Some(net("10.61.2.0/24")));
    assert_eq!(table.len(), 1);
    assert_eq!(table[0].1[0].peer.as_deref(), Some("b"));
    assert_eq!(
        table[0].1[0].route.attributes.as_path,
        AsPath::sequence([65002])
    );
    assert_eq!(pair.a.kernel_routes().len(), 2);
}

#[test]
fn without_policies_ebgp_exchanges_nothing() {
    let mut a = speaker(65001, 1, &["10.61.1.0/24"], ("b", 65002, 2), None);
    let mut b = speaker(65002, 2, &["10.61.2.0/24"], ("a", 65001, 1), None);
    for s in [&mut a, &mut b] {
        s.peers[0].settings.import = None;
        s.peers[0].settings.export = None;
    }
    let pair = Pair::up(a, b);
    assert!(installs(&pair.seen_a).is_empty());
    assert!(installs(&pair.seen_b).is_empty());
}

/// a accepts at most 2 prefixes; b announces 3.
fn over_the_limit() -> Pair {
    let a = speaker(65001, 1, &[], ("b", 65002, 2), Some(2));
    let b = speaker(
        65002,
        2,
        &["10.61.2.0/24", "10.61.3.0/24", "10.61.4.0/24"],
        ("a", 65001, 1),
        None,
    );
    Pair::up(a, b)
}

#[test]
fn too_many_prefixes_end_the_session_with_cease_1_and_withdraw_everything() {
    let pair = over_the_limit();
    assert_eq!(pair.a.state(0), Some(State::Idle));
    let error = pair.a.peers(true)[0].last_error.clone().unwrap();
    assert!(error.contains("maximum number of prefixes"), "{error}");
    let b_error = pair.b.peers(true)[0].last_error.clone().unwrap();
    assert!(
        b_error.contains("received cease: maximum number of prefixes"),
        "{b_error}"
    );
    // Whatever was installed is removed again.
    let removed = pair
        .seen_a
        .iter()
        .filter(|o| matches!(o, Output::Remove { .. }))
        .count();
    assert_eq!(removed, installs(&pair.seen_a).len());
    assert!(pair.a.kernel_routes().is_empty());
    // No automatic restart after a max-prefix stop: the last word on the
    // connect-retry timer is to stop it.
    let retry = pair.seen_a.iter().rev().find_map(|o| match o {
        Output::Peer(_, a @ Action::StartTimer(crate::fsm::Timer::ConnectRetry, _))
        | Output::Peer(_, a @ Action::StopTimer(crate::fsm::Timer::ConnectRetry)) => {
            Some(a.clone())
        }
        _ => None,
    });
    assert_eq!(
        retry,
        Some(Action::StopTimer(crate::fsm::Timer::ConnectRetry))
    );
}

#[test]
fn a_session_that_drops_withdraws_its_routes_from_the_kernel() {
    let a = speaker(65001, 1, &["10.61.1.0/24"], ("b", 65002, 2), None);
    let b = speaker(65002, 2, &["10.61.2.0/24"], ("a", 65001, 1), None);
    let mut pair = Pair::up(a, b);
    let out = pair.a.event(0, Event::Timer(crate::fsm::Timer::Hold));
    assert!(out.contains(&Output::Remove {
        prefix: net("10.61.2.0/24")
    }));
    assert!(pair.a.kernel_routes().is_empty());
}

#[test]
fn a_reset_brings_a_session_stopped_by_max_prefix_back() {
    let mut pair = over_the_limit();
    assert_eq!(pair.a.state(0), Some(State::Idle));
    let out = pair.a.reset(0);
    assert!(out.contains(&Output::Peer(0, Action::Connect)), "{out:?}");
    assert_eq!(pair.a.state(0), Some(State::Connect));
}

#![allow(clippy::unwrap_used)] // tests

use std::net::IpAddr;
use std::sync::Arc;

use super::*;
use crate::route::{AsPath, Origin, PathAttributes};

fn config(local: Asn, peer: Asn, id: [u8; 4], passive: bool) -> SessionConfig {
    SessionConfig {
        local_asn: local,
        peer_asn: peer,
        router_id: Ipv4Addr::from(id),
        hold_time: 9,
        connect_retry: Duration::from_secs(5),
        passive,
        families: vec![Family::Ipv4, Family::Ipv6],
    }
}

fn sent(actions: &[Action]) -> Vec<Vec<u8>> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Send(bytes) => Some(bytes.clone()),
            _ => None,
        })
        .collect()
}

/// Two sessions brought up over an imaginary connection that, like TCP,
/// delivers each side's messages in order.
fn established() -> (Session, Session) {
    let mut a = Session::new(config(65001, 65002, [10, 0, 0, 1], false));
    let mut b = Session::new(config(65002, 65001, [10, 0, 0, 2], true));
    assert!(a.handle(Event::Start).contains(&Action::Connect));
    assert!(
        !b.handle(Event::Start).contains(&Action::Connect),
        "a passive session dialled"
    );
    assert_eq!(b.state(), State::Active);
    let mut to_b = std::collections::VecDeque::from(sent(&a.handle(Event::Connected)));
    let mut to_a = std::collections::VecDeque::from(sent(&b.handle(Event::Connected)));
    assert_eq!((a.state(), b.state()), (State::OpenSent, State::OpenSent));
    let mut ups = 0;
    while !to_a.is_empty() || !to_b.is_empty() {
        if let Some(message) = to_b.pop_front() {
            let actions = b.handle(Event::Message(&message));
            ups += actions
                .iter()
                .filter(|x| matches!(x, Action::Up(_)))
                .count();
            to_a.extend(sent(&actions));
        }
        if let Some(message) = to_a.pop_front() {
            let actions = a.handle(Event::Message(&message));
            ups += actions
                .iter()
                .filter(|x| matches!(x, Action::Up(_)))
                .count();
            to_b.extend(sent(&actions));
        }
    }
    assert_eq!(ups, 2);
    assert_eq!(
        (a.state(), b.state()),
        (State::Established, State::Established)
    );
    (a, b)
}

#[test]
fn two_speakers_reach_established_and_agree_on_what_they_negotiated() {
    let (a, b) = established();
    let negotiated = a.negotiated().unwrap();
    assert_eq!(negotiated.peer_asn, 65002);
    assert_eq!(negotiated.peer_router_id, Ipv4Addr::new(10, 0, 0, 2));
    assert_eq!(negotiated.hold_time, 9);
    assert!(negotiated.four_octet && negotiated.route_refresh);
    assert_eq!(negotiated.families, vec![Family::Ipv4, Family::Ipv6]);
    assert_eq!(b.negotiated().unwrap().peer_asn, 65001);
}

#[test]
fn updates_in_established_become_routes_and_restart_the_hold_timer() {
    let (mut a, _) = established();
    let update = Update {
        withdrawn: vec!["10.61.9.0/24".parse().unwrap()],
        announced: vec!["10.61.2.0/24".parse().unwrap()],
        attributes: Some(Arc::new(PathAttributes {
            origin: Origin::Igp,
            as_path: AsPath::sequence([65002]),
            next_hop: IpAddr::V4(Ipv4Addr::new(10, 62, 0, 2)),
            med: None,
            local_pref: None,
            communities: Vec::new(),
        })),
    };
    let mut routes = Vec::new();
    for bytes in wire::encode_update(&update, true).unwrap() {
        let actions = a.handle(Event::Message(&bytes));
        assert!(actions.contains(&Action::StartTimer(Timer::Hold, Duration::from_secs(9))));
        routes.extend(actions.into_iter().filter_map(|x| match x {
            Action::Routes(u) => Some(u),
            _ => None,
        }));
    }
    let announced: Vec<_> = routes.iter().flat_map(|u| u.announced.clone()).collect();
    let withdrawn: Vec<_> = routes.iter().flat_map(|u| u.withdrawn.clone()).collect();
    assert_eq!(announced, update.announced);
    assert_eq!(withdrawn, update.withdrawn);
}

#[test]
fn keepalive_timer_sends_keepalives_at_a_third_of_the_hold_time() {
    let (mut a, _) = established();
    let actions = a.handle(Event::Timer(Timer::Keepalive));
    assert_eq!(sent(&actions), vec![wire::encode_keepalive()]);
    assert!(actions.contains(&Action::StartTimer(
        Timer::Keepalive,
        Duration::from_secs(3)
    )));
}

#[test]
fn hold_timer_expiry_tells_the_peer_and_goes_down_to_retry() {
    let (mut a, _) = established();
    let actions = a.handle(Event::Timer(Timer::Hold));
    let notification =
        wire::encode_notification(&Notification::new(code::HOLD_TIMER_EXPIRED, 0)).unwrap();
    assert_eq!(sent(&actions), vec![notification]);
    assert!(actions.contains(&Action::Close));
    assert!(
        actions
            .iter()
            .any(|x| matches!(x, Action::Down(r) if r.contains("hold timer expired")))
    );
    assert!(actions.contains(&Action::StartTimer(
        Timer::ConnectRetry,
        Duration::from_secs(5)
    )));
    assert_eq!(a.state(), State::Idle);
    // Automatic restart when the connect-retry timer fires.
    assert!(
        a.handle(Event::Timer(Timer::ConnectRetry))
            .contains(&Action::Connect)
    );
    assert_eq!(a.state(), State::Connect);
}

#[test]
fn an_open_from_the_wrong_as_is_refused_with_bad_peer_as() {
    let mut a = Session::new(config(65001, 65002, [10, 0, 0, 1], false));
    a.handle(Event::Start);
    a.handle(Event::Connected);
    let wrong = wire::encode_open(65099, 90, Ipv4Addr::new(10, 0, 0, 2), &[Family::Ipv4]).unwrap();
    let actions = a.handle(Event::Message(&wrong));
    let Message::Notification(n) = wire::decode(&sent(&actions)[0], true).unwrap() else {
        panic!("no NOTIFICATION: {actions:?}");
    };
    assert_eq!((n.code, n.subcode), (code::OPEN, subcode::BAD_PEER_AS));
    assert_eq!(a.state(), State::Idle);
    assert!(a.last_error().unwrap().contains("bad peer AS"));
}

#[test]
fn unacceptable_hold_times_and_identifiers_are_refused() {
    for (hold, id, peer, expected) in [
        (2, [10, 0, 0, 2], 65002, subcode::UNACCEPTABLE_HOLD_TIME),
        (90, [0, 0, 0, 0], 65002, subcode::BAD_BGP_IDENTIFIER),
        // iBGP with our own identifier.
        (90, [10, 0, 0, 1], 65001, subcode::BAD_BGP_IDENTIFIER),
    ] {
        let mut a = Session::new(config(65001, peer, [10, 0, 0, 1], false));
        a.handle(Event::Start);
        a.handle(Event::Connected);
        let open = wire::encode_open(peer, hold, Ipv4Addr::from(id), &[Family::Ipv4]).unwrap();
        let actions = a.handle(Event::Message(&open));
        let Message::Notification(n) = wire::decode(&sent(&actions)[0], true).unwrap() else {
            panic!("no NOTIFICATION: {actions:?}");
        };
        assert_eq!((n.code, n.subcode), (code::OPEN, expected));
    }
}

#[test]
fn hold_time_zero_means_no_keepalives_and_no_hold_timer() {
    let mut a = Session::new(SessionConfig {
        hold_time: 0,
        ..config(65001, 65002, [10, 0, 0, 1], false)
    });
    a.handle(Event::Start);
    a.handle(Event::Connected);
    let open = wire::encode_open(65002, 90, Ipv4Addr::new(10, 0, 0, 2), &[Family::Ipv4]).unwrap();
    let actions = a.handle(Event::Message(&open));
    assert!(actions.contains(&Action::StopTimer(Timer::Hold)));
    assert!(
        !actions
            .iter()
            .any(|x| matches!(x, Action::StartTimer(Timer::Keepalive, _)))
    );
}

#[test]
fn stop_sends_the_shutdown_communication_and_does_not_restart() {
    let (mut a, mut b) = established();
    let stop = Notification::shutdown(subcode::ADMINISTRATIVE_SHUTDOWN, "rewiring the shed");
    let actions = a.handle(Event::Stop(stop));
    assert_eq!(a.state(), State::Idle);
    assert!(
        !actions
            .iter()
            .any(|x| matches!(x, Action::StartTimer(Timer::ConnectRetry, _)))
    );
    let message = &sent(&actions)[0];
    let down = b.handle(Event::Message(message));
    assert!(
        down.iter()
            .any(|x| matches!(x, Action::Down(r) if r.contains("rewiring the shed"))),
        "{down:?}"
    );
    assert_eq!(b.state(), State::Idle);
}

#[test]
fn garbage_and_wrong_messages_end_the_session_with_a_notification() {
    let (mut a, _) = established();
    let actions = a.handle(Event::BadHeader(Notification::new(
        code::MESSAGE_HEADER,
        subcode::BAD_MESSAGE_TYPE,
    )));
    assert_eq!(a.state(), State::Idle);
    assert_eq!(sent(&actions).len(), 1);

    let (mut a, _) = established();
    let open = wire::encode_open(65002, 90, Ipv4Addr::new(10, 0, 0, 2), &[Family::Ipv4]).unwrap();
    let actions = a.handle(Event::Message(&open));
    let Message::Notification(n) = wire::decode(&sent(&actions)[0], true).unwrap() else {
        panic!("no NOTIFICATION");
    };
    assert_eq!(n.code, code::FSM);
}

#[test]
fn a_lost_connection_while_connecting_waits_for_the_retry_timer() {
    let mut a = Session::new(config(65001, 65002, [10, 0, 0, 1], false));
    a.handle(Event::Start);
    assert!(a.handle(Event::ConnectionLost).is_empty());
    assert_eq!(a.state(), State::Connect);
    let retry = a.handle(Event::Timer(Timer::ConnectRetry));
    assert!(retry.contains(&Action::Connect));
}

#[test]
fn collisions_keep_the_connection_of_the_higher_identifier() {
    assert!(keep_outgoing(
        Ipv4Addr::new(10, 0, 0, 2),
        Ipv4Addr::new(10, 0, 0, 1)
    ));
    assert!(!keep_outgoing(
        Ipv4Addr::new(10, 0, 0, 1),
        Ipv4Addr::new(10, 0, 0, 2)
    ));
}

#[test]
fn an_idle_session_waiting_to_retry_takes_the_peers_connection() {
    let (mut a, _) = established();
    a.handle(Event::Timer(Timer::Hold));
    assert_eq!(a.state(), State::Idle);
    let actions = a.handle(Event::Connected);
    assert_eq!(a.state(), State::OpenSent);
    assert_eq!(sent(&actions).len(), 1, "no OPEN: {actions:?}");
}

#[test]
fn a_stopped_session_refuses_connections_and_does_not_retry() {
    let (mut a, _) = established();
    a.handle(Event::Stop(Notification::new(
        code::CEASE,
        subcode::ADMINISTRATIVE_SHUTDOWN,
    )));
    assert!(a.handle(Event::Connected).is_empty());
    assert!(a.handle(Event::Timer(Timer::ConnectRetry)).is_empty());
    assert_eq!(a.state(), State::Idle);
    // Start brings it back.
    assert!(a.handle(Event::Start).contains(&Action::Connect));
}

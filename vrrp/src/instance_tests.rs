#![allow(clippy::unwrap_used)] // tests

use super::*;

const SECOND: Duration = Duration::from_secs(1);

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn settings(priority: u8) -> Settings {
    Settings {
        vrid: 51,
        priority,
        advert_interval: 100,
        preempt: true,
        preempt_delay: Duration::ZERO,
        addresses: vec![ip("192.168.1.53")],
        announce_again_after: Duration::from_secs(5),
    }
}

fn instance(priority: u8, local: &str, t0: Instant) -> Instance {
    Instance::new(settings(priority), ip(local), t0).unwrap()
}

fn adv(priority: u8) -> Advertisement {
    Advertisement {
        vrid: 51,
        priority,
        max_advert_interval: 100,
        addresses: vec![ip("192.168.1.53")],
    }
}

fn states(actions: &[Action]) -> Vec<State> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Transition { to, .. } => Some(*to),
            _ => None,
        })
        .collect()
}

/// Runs timers from `from` to `until` in 10 ms steps, collecting actions.
fn run(i: &mut Instance, from: Instant, until: Instant) -> Vec<Action> {
    let mut actions = Vec::new();
    let mut now = from;
    while now <= until {
        if i.next_timeout().is_some_and(|t| t <= now) {
            actions.extend(i.timeout(now));
        }
        now += Duration::from_millis(10);
    }
    actions
}

#[test]
fn settings_outside_the_rfc_ranges_are_refused() {
    let t0 = Instant::now();
    let local = ip("192.168.1.2");
    for change in [
        (|s: &mut Settings| s.vrid = 0) as fn(&mut Settings),
        |s| s.priority = 0,
        |s| s.advert_interval = 0,
        |s| s.advert_interval = 4096,
        |s| s.addresses.clear(),
        |s| s.addresses.push("fd00::53".parse().unwrap()),
    ] {
        let mut s = settings(100);
        change(&mut s);
        assert!(Instance::new(s, local, t0).is_err());
    }
    assert!(Instance::new(settings(100), ip("fe80::2"), t0).is_err());
}

#[test]
fn the_owner_becomes_master_at_once() {
    let t0 = Instant::now();
    let mut i = instance(OWNER_PRIORITY, "192.168.1.2", t0);
    let actions = i.start(t0);
    assert_eq!(
        actions,
        vec![
            Action::AddAddresses,
            Action::Advertise { priority: 255 },
            Action::Announce,
            Action::Transition {
                from: State::Initialize,
                to: State::Master,
                reason: Reason::Owner
            },
        ]
    );
    assert_eq!(i.next_timeout(), Some(t0 + SECOND));
}

#[test]
fn a_backup_that_hears_nothing_takes_over_after_the_master_down_interval() {
    let t0 = Instant::now();
    let mut i = instance(100, "192.168.1.2", t0);
    assert_eq!(states(&i.start(t0)), [State::Backup]);
    // 3 * 1 s + (256 - 100) / 256 * 1 s = 3.609 s (to the 10 ms tick).
    let down = t0 + Duration::from_millis(3600);
    assert_eq!(i.next_timeout(), Some(down));
    assert!(run(&mut i, t0, down - Duration::from_millis(10)).is_empty());
    let actions = i.timeout(down);
    assert_eq!(states(&actions), [State::Master]);
    assert!(actions.contains(&Action::AddAddresses));
    assert!(actions.contains(&Action::Advertise { priority: 100 }));
    assert_eq!(i.status().last_reason, Some(Reason::MasterDown));
    assert_eq!(i.status().master, Some(ip("192.168.1.2")));
}

#[test]
fn adverts_from_a_better_master_keep_a_backup_backup() {
    let t0 = Instant::now();
    let mut i = instance(100, "192.168.1.2", t0);
    i.start(t0);
    let master = ip("192.168.1.1");
    let mut now = t0;
    for _ in 0..20 {
        now += SECOND;
        assert!(i.receive(now, master, &adv(150)).is_empty());
        assert!(i.timeout(now).is_empty());
    }
    let status = i.status();
    assert_eq!(status.state, State::Backup);
    assert_eq!(status.master, Some(master));
    assert_eq!(status.master_priority, Some(150));
    // The master falls silent: takeover 3 intervals plus a skew later.
    let actions = run(&mut i, now, now + Duration::from_secs(4));
    assert_eq!(states(&actions), [State::Master]);
}

#[test]
fn a_backup_learns_the_masters_interval() {
    let t0 = Instant::now();
    let mut i = instance(100, "192.168.1.2", t0);
    i.start(t0);
    let fast = Advertisement {
        max_advert_interval: 20,
        ..adv(150)
    };
    i.receive(t0, ip("192.168.1.1"), &fast);
    assert_eq!(i.status().master_advert_interval, 20);
    // 3 * 200 ms + 156/256 * 200 ms = 721 ms.
    assert_eq!(i.next_timeout(), Some(t0 + Duration::from_millis(720)));
}

#[test]
fn a_master_that_leaves_is_replaced_after_the_skew_only() {
    let t0 = Instant::now();
    let mut i = instance(200, "192.168.1.2", t0);
    i.start(t0);
    i.receive(t0, ip("192.168.1.1"), &adv(250));
    let t1 = t0 + SECOND;
    i.receive(t1, ip("192.168.1.1"), &adv(0));
    // Skew at priority 200 and 1 s: 56/256 s = 210 ms (to the 10 ms tick).
    assert_eq!(i.next_timeout(), Some(t1 + Duration::from_millis(210)));
    let actions = i.timeout(t1 + Duration::from_millis(210));
    assert_eq!(states(&actions), [State::Master]);
    assert_eq!(i.status().last_reason, Some(Reason::MasterLeft));
}

#[test]
fn preempt_takes_over_from_a_lower_master_and_no_preempt_does_not() {
    for preempt in [true, false] {
        let t0 = Instant::now();
        let mut s = settings(200);
        s.preempt = preempt;
        let mut i = Instance::new(s, ip("192.168.1.2"), t0).unwrap();
        i.start(t0);
        let mut now = t0;
        let mut actions = Vec::new();
        for _ in 0..10 {
            now += SECOND;
            actions.extend(i.receive(now, ip("192.168.1.1"), &adv(100)));
            actions.extend(run(&mut i, now, now + SECOND - Duration::from_millis(10)));
        }
        let expected: &[State] = if preempt { &[State::Master] } else { &[] };
        assert_eq!(states(&actions), expected, "preempt = {preempt}");
    }
}

#[test]
fn preempt_delay_holds_a_better_backup_back_for_a_while() {
    let t0 = Instant::now();
    let mut s = settings(200);
    s.preempt_delay = Duration::from_secs(10);
    let mut i = Instance::new(s, ip("192.168.1.2"), t0).unwrap();
    i.start(t0);
    let mut now = t0;
    let mut took_over = None;
    while now < t0 + Duration::from_secs(20) && took_over.is_none() {
        now += SECOND;
        i.receive(now, ip("192.168.1.1"), &adv(100));
        let actions = run(&mut i, now, now + SECOND - Duration::from_millis(10));
        if states(&actions).contains(&State::Master) {
            took_over = Some(now);
        }
    }
    let took_over = took_over.unwrap().duration_since(t0);
    assert!(
        took_over >= Duration::from_secs(10) && took_over <= Duration::from_secs(15),
        "took over after {took_over:?}"
    );
}

#[test]
fn a_master_yields_to_higher_priority_or_an_equal_one_with_a_higher_address() {
    let t0 = Instant::now();
    for (priority, source, yields) in [
        (150, "192.168.1.1", true),
        (100, "192.168.1.3", true),
        (100, "192.168.1.1", false),
        (50, "192.168.1.9", false),
    ] {
        let mut i = instance(100, "192.168.1.2", t0);
        i.start(t0);
        i.timeout(t0 + Duration::from_secs(4));
        assert_eq!(i.state(), State::Master);
        let actions = i.receive(t0 + Duration::from_secs(5), ip(source), &adv(priority));
        if yields {
            assert_eq!(actions[0], Action::RemoveAddresses);
            assert_eq!(states(&actions), [State::Backup]);
            assert_eq!(i.status().master, Some(ip(source)));
        } else {
            assert!(actions.is_empty(), "{priority} from {source}: {actions:?}");
            assert_eq!(i.state(), State::Master);
        }
    }
}

#[test]
fn a_master_advertises_every_interval_and_announces_twice() {
    let t0 = Instant::now();
    let mut i = instance(OWNER_PRIORITY, "192.168.1.2", t0);
    i.start(t0);
    let actions = run(&mut i, t0, t0 + Duration::from_millis(10_500));
    let adverts = actions
        .iter()
        .filter(|a| matches!(a, Action::Advertise { priority: 255 }))
        .count();
    assert_eq!(adverts, 10);
    let announces = actions.iter().filter(|a| **a == Action::Announce).count();
    assert_eq!(announces, 1, "the second round, 5 s after the takeover");
}

#[test]
fn a_lower_priority_is_advertised_at_once_and_lets_a_better_backup_in() {
    let t0 = Instant::now();
    let mut primary = instance(200, "192.168.1.1", t0);
    primary.start(t0);
    primary.timeout(t0 + Duration::from_secs(4));
    assert_eq!(primary.state(), State::Master);
    let now = t0 + Duration::from_millis(4500);
    let actions = primary.set_priority(now, 50);
    assert_eq!(actions, vec![Action::Advertise { priority: 50 }]);
    assert_eq!(primary.status().priority, 50);
    assert_eq!(primary.status().configured_priority, 200);

    // A preempting backup with 100 ignores that advert and takes over
    // when its master down timer runs out.
    let mut standby = instance(100, "192.168.1.2", t0);
    standby.start(t0);
    standby.receive(t0 + SECOND, ip("192.168.1.1"), &adv(200));
    assert!(standby.receive(now, ip("192.168.1.1"), &adv(50)).is_empty());
    let actions = run(&mut standby, now, now + Duration::from_secs(4));
    assert_eq!(states(&actions), [State::Master]);
    // And the primary steps down when it hears the standby's advert.
    let yielded = primary.receive(now + Duration::from_secs(4), ip("192.168.1.2"), &adv(100));
    assert_eq!(states(&yielded), [State::Backup]);
}

#[test]
fn fault_gives_up_the_addresses_and_recovery_starts_over() {
    let t0 = Instant::now();
    let mut i = instance(OWNER_PRIORITY, "192.168.1.2", t0);
    i.start(t0);
    let actions = i.fault(t0 + SECOND, "resolver probe failed".into());
    assert_eq!(
        actions,
        vec![
            Action::Advertise { priority: 0 },
            Action::RemoveAddresses,
            Action::Transition {
                from: State::Master,
                to: State::Fault,
                reason: Reason::Fault("resolver probe failed".into())
            },
        ]
    );
    assert_eq!(i.next_timeout(), None);
    // Adverts are ignored in Fault.
    assert!(
        i.receive(t0 + SECOND, ip("192.168.1.1"), &adv(100))
            .is_empty()
    );
    assert!(i.fault(t0 + SECOND, "again".into()).is_empty());
    let actions = i.recover(t0 + Duration::from_secs(2));
    assert_eq!(states(&actions), [State::Initialize, State::Master]);
    assert_eq!(i.status().transitions, 4);
}

#[test]
fn shutdown_of_a_master_sends_priority_zero() {
    let t0 = Instant::now();
    let mut i = instance(OWNER_PRIORITY, "192.168.1.2", t0);
    i.start(t0);
    let actions = i.shutdown(t0 + SECOND);
    assert_eq!(actions[0], Action::Advertise { priority: 0 });
    assert_eq!(actions[1], Action::RemoveAddresses);
    assert_eq!(i.state(), State::Initialize);
    assert_eq!(i.next_timeout(), None);
    let mut backup = instance(100, "192.168.1.3", t0);
    backup.start(t0);
    let actions = backup.shutdown(t0 + SECOND);
    assert_eq!(states(&actions), [State::Initialize]);
    assert!(!actions.contains(&Action::RemoveAddresses));
}

#[test]
fn adverts_of_other_vrids_and_our_own_echo_are_ignored() {
    let t0 = Instant::now();
    let mut i = instance(100, "192.168.1.2", t0);
    i.start(t0);
    let deadline = i.next_timeout();
    let other = Advertisement {
        vrid: 52,
        ..adv(200)
    };
    i.receive(t0 + SECOND, ip("192.168.1.1"), &other);
    i.receive(t0 + SECOND, ip("192.168.1.2"), &adv(200));
    assert_eq!(i.next_timeout(), deadline);
}

/// Two routers on one link, each delivering its adverts to the other
/// while the link is up: after a split (both master) and the heal,
/// exactly one master remains, the one with the higher priority.
#[test]
fn a_healed_split_leaves_exactly_one_master() {
    let t0 = Instant::now();
    let addrs = [ip("192.168.1.1"), ip("192.168.1.2")];
    let mut routers = [
        Instance::new(settings(200), addrs[0], t0).unwrap(),
        Instance::new(settings(100), addrs[1], t0).unwrap(),
    ];
    let mut link_up = true;
    let mut pending: Vec<(usize, Action)> = Vec::new();
    for (i, r) in routers.iter_mut().enumerate() {
        pending.extend(r.start(t0).into_iter().map(|a| (i, a)));
    }
    let mut now = t0;
    let mut masters_over_time = Vec::new();
    while now < t0 + Duration::from_secs(30) {
        if now == t0 + Duration::from_secs(10) {
            link_up = false;
        }
        if now == t0 + Duration::from_secs(20) {
            link_up = true;
        }
        for (i, r) in routers.iter_mut().enumerate() {
            if r.next_timeout().is_some_and(|t| t <= now) {
                pending.extend(r.timeout(now).into_iter().map(|a| (i, a)));
            }
        }
        while let Some((from, action)) = pending.pop() {
            if let (Action::Advertise { priority }, true) = (action, link_up) {
                let to = 1 - from;
                let advert = routers[from].advertisement(priority);
                let out = routers[to].receive(now, addrs[from], &advert);
                pending.extend(out.into_iter().map(|a| (to, a)));
            }
        }
        if (now - t0).as_millis().is_multiple_of(1000) {
            let masters: Vec<usize> = (0..2)
                .filter(|&i| routers[i].state() == State::Master)
                .collect();
            masters_over_time.push(((now - t0).as_secs(), masters));
        }
        now += Duration::from_millis(10);
    }
    let at = |second: u64| {
        masters_over_time
            .iter()
            .find(|(s, _)| *s == second)
            .map(|(_, m)| m.clone())
            .unwrap()
    };
    assert_eq!(at(9), [0], "the higher priority wins the start");
    assert_eq!(at(19), [0, 1], "cut off, the standby takes over too");
    assert_eq!(at(21), [0], "healed: one master, the primary");
    assert_eq!(at(29), [0]);
}

//! The lab without routerd: two keepalived (VRRPv3) on the lab bridge.

use std::io::Write as _;
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant, SystemTime};

use e2e::Lab;
use e2e::addr::{VRRP_VIP, VRRP_VIP_PREFIX_LEN, VRRP1, VRRP2};
use e2e::keepalived::{
    CAPTURE_TOOLS, GOLDEN_ADVERT_V4, KEEPALIVED_TOOLS, Keepalived, KeepalivedConfig, LAB_INTERFACE,
    State, capture_adverts,
};

/// The virtual router of the lab.
const VRID: u8 = 51;
/// Adverts every 0.2 s: failovers in well under a second.
const ADVERT: Duration = Duration::from_millis(200);
/// Slack on top of the RFC timers for scheduling, the notify script and
/// `ip` polling on a busy runner.
const SLACK: Duration = Duration::from_millis(1000);

/// Writes to the real stderr, so the line shows even when the harness
/// captures the output of a passing test.
fn note(text: &str) {
    let _ = writeln!(std::io::stderr(), "vrrp: {text}");
}

fn vip() -> IpAddr {
    IpAddr::V4(VRRP_VIP)
}

/// The lab's instance at `priority`.
fn config(priority: u8) -> KeepalivedConfig {
    KeepalivedConfig::new(VRID, priority, vip(), VRRP_VIP_PREFIX_LEN)
        .with(|c| c.advert_interval = ADVERT)
}

/// Until `k` is master and holds `vip`; how long that took.
fn wait_master(k: &mut Keepalived, vip: IpAddr, deadline: Duration) -> Duration {
    let start = Instant::now();
    k.wait_for_state(State::Master, deadline).unwrap();
    k.wait_holds(vip, true, deadline.saturating_sub(start.elapsed()))
        .unwrap();
    start.elapsed()
}

#[test]
fn keepalived_fails_over_on_a_crash_and_preempts_back() {
    if !e2e::require(KEEPALIVED_TOOLS) {
        return;
    }
    let lab = Lab::new().unwrap();
    let host1 = lab.add_host("vrrp1", VRRP1).unwrap();
    let host2 = lab.add_host("vrrp2", VRRP2).unwrap();
    let high = config(150);
    let low = config(100);
    // Bounds from the timers of the node that has to act.
    let elect = high.master_down_interval() + SLACK;
    let failover = low.master_down_interval() + SLACK;
    let handover = low.skew_time() + SLACK;
    assert!(failover < Duration::from_secs(2), "{failover:?}");

    // Election: both start as backup, the higher priority's timer runs
    // out first.
    let mut k1 = high.start(&host1).unwrap();
    let mut k2 = low.start(&host2).unwrap();
    let took = wait_master(&mut k1, vip(), elect + Duration::from_secs(1));
    note(&format!("priority 150 master {took:?} after both started"));
    assert_eq!(k2.state().unwrap(), Some(State::Backup));
    assert!(!k2.holds(vip()).unwrap());

    // Crash of the master: the backup takes over after its
    // Master_Down_Interval, counted from the last advert it saw.
    let crash = Instant::now();
    k1.kill();
    k2.wait_holds(vip(), true, failover).unwrap();
    let took = crash.elapsed();
    k2.wait_for_state(State::Master, failover.saturating_sub(took))
        .unwrap();
    note(&format!(
        "failover after SIGKILL: {took:?} (Master_Down_Interval {:?})",
        low.master_down_interval()
    ));
    assert!(took < failover, "{took:?}");
    // A killed keepalived cannot remove its addresses: both hold it now.
    assert!(k1.holds(vip()).unwrap());
    drop(k1);

    // Restart: the stale address goes at startup, the higher priority
    // ignores the lower one's adverts and takes over when its own timer
    // runs out; the old master steps back on the first advert.
    let restart = Instant::now();
    let mut k1 = high.start(&host1).unwrap();
    let took = wait_master(&mut k1, vip(), elect);
    note(&format!(
        "preempted {took:?} after its start ({:?} after the restart began)",
        restart.elapsed()
    ));
    k2.wait_for_state(State::Backup, SLACK).unwrap();
    k2.wait_holds(vip(), false, SLACK).unwrap();
    let states: Vec<State> = k1.transitions().unwrap().iter().map(|t| t.state).collect();
    assert_eq!(states, [State::Backup, State::Master]);

    // Clean stop: priority 0, so the backup waits only its skew time.
    // stop() returns when keepalived has exited (about 1 s), long after
    // the handover: timed by the notify script's clock instead.
    let stop = SystemTime::now();
    k1.stop().unwrap();
    let master = k2.wait_for_state(State::Master, SLACK).unwrap();
    let took = master.at.duration_since(stop).unwrap_or_default();
    note(&format!(
        "handover after SIGTERM: {took:?} (skew time {:?})",
        low.skew_time()
    ));
    assert!(took < handover, "{took:?}");
    k2.wait_holds(vip(), true, SLACK).unwrap();
    assert!(!k1.holds(vip()).unwrap());
    assert_eq!(k1.state().unwrap(), Some(State::Stop));
}

#[test]
fn keepalived_nopreempt_keeps_the_master_over_unicast() {
    if !e2e::require(KEEPALIVED_TOOLS) {
        return;
    }
    let lab = Lab::new().unwrap();
    let host1 = lab.add_host("vrrp1", VRRP1).unwrap();
    let host2 = lab.add_host("vrrp2", VRRP2).unwrap();
    let unicast = |c: &mut KeepalivedConfig, me: Ipv4Addr, peer: Ipv4Addr| {
        c.unicast_src = Some(IpAddr::V4(me));
        c.unicast_peers = vec![IpAddr::V4(peer)];
    };
    let low = config(100).with(|c| unicast(c, VRRP2, VRRP1));
    let high = config(150).with(|c| {
        unicast(c, VRRP1, VRRP2);
        c.preempt = false;
    });

    // The lower priority comes up alone and becomes master.
    let mut k2 = low.start(&host2).unwrap();
    wait_master(&mut k2, vip(), low.master_down_interval() + SLACK);
    // The higher one joins without preempting: it hears the master's
    // unicast adverts and stays backup well past its own timer.
    let k1 = high.start(&host1).unwrap();
    std::thread::sleep(high.master_down_interval() * 3);
    let states: Vec<State> = k1.transitions().unwrap().iter().map(|t| t.state).collect();
    assert_eq!(states, [State::Backup]);
    assert!(!k1.holds(vip()).unwrap());
    assert_eq!(k2.state().unwrap(), Some(State::Master));
    assert!(k2.holds(vip()).unwrap());
}

#[test]
fn keepalived_runs_an_ipv6_instance() {
    if !e2e::require(KEEPALIVED_TOOLS) {
        return;
    }
    let lab = Lab::new().unwrap();
    let host1 = lab.add_host("vrrp1", VRRP1).unwrap();
    let host2 = lab.add_host("vrrp2", VRRP2).unwrap();
    let vip6 = IpAddr::V6(e2e::addr::v6_of(VRRP_VIP));
    let v6 = |priority: u8| {
        KeepalivedConfig::new(VRID, priority, vip6, 64).with(|c| c.advert_interval = ADVERT)
    };
    let (high, low) = (v6(150), v6(100));
    assert!(high.is_ipv6());
    // start() waits for the link-local address (the adverts' source) to
    // finish DAD.
    let mut k1 = high.start(&host1).unwrap();
    let k2 = low.start(&host2).unwrap();
    wait_master(&mut k1, vip6, high.master_down_interval() + SLACK);
    // The backup hears the adverts: it stays backup past its own timer.
    std::thread::sleep(low.master_down_interval() * 2);
    let states: Vec<State> = k2.transitions().unwrap().iter().map(|t| t.state).collect();
    assert_eq!(states, [State::Backup]);
    assert!(!k2.holds(vip6).unwrap());
    assert!(
        !k1.daemon.log().contains("send advert error"),
        "{}",
        k1.daemon.log_tail(20)
    );
}

#[test]
fn keepalived_sends_the_golden_advert() {
    if !e2e::require(&[KEEPALIVED_TOOLS, CAPTURE_TOOLS].concat()) {
        return;
    }
    let lab = Lab::new().unwrap();
    let host1 = lab.add_host("vrrp1", VRRP1).unwrap();
    let host2 = lab.add_host("vrrp2", VRRP2).unwrap();
    let high = config(150);
    let mut k1 = high.start(&host1).unwrap();
    let _k2 = config(100).start(&host2).unwrap();
    wait_master(&mut k1, vip(), high.master_down_interval() + SLACK);
    // Seen from the backup: the master's adverts, which only differ from
    // the golden one in the IP id and hence the IP header checksum.
    let adverts = capture_adverts(&host2, LAB_INTERFACE, 2, Duration::from_secs(3)).unwrap();
    let golden = GOLDEN_ADVERT_V4;
    for advert in adverts {
        assert_eq!(advert.len(), golden.len(), "{advert:02x?}");
        let stable = |p: &[u8]| [&p[..4], &p[6..10], &p[12..]].concat();
        assert_eq!(stable(&advert), stable(&golden), "{advert:02x?}");
    }
}

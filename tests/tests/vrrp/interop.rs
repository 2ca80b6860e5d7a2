//! routerd and keepalived (VRRPv3) as the two nodes of one virtual
//! router: each takes over from the other, both ways.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use e2e::addr::{VRRP1, VRRP2};
use e2e::keepalived::{KEEPALIVED_TOOLS, KeepalivedConfig, State};
use e2e::{DnsHierarchy, Lab};

use super::pair::{VIP, node_config_every, pair_tools, state, vip_on, wait_for_state};

const VRID: u8 = 51;
/// keepalived and routerd both advertise every 200 ms.
const ADVERT: Duration = Duration::from_millis(200);
/// 3 intervals plus the skew of priority 100 (156/256 of one), plus slack
/// for scheduling and polling.
const FAILOVER_BOUND: Duration = Duration::from_millis(600 + 122 + 500);

fn keepalived(priority: u8) -> KeepalivedConfig {
    KeepalivedConfig::new(VRID, priority, IpAddr::V4(VIP), 16).with(|c| c.advert_interval = ADVERT)
}

fn tools() -> Vec<&'static str> {
    [pair_tools().as_slice(), KEEPALIVED_TOOLS].concat()
}

#[test]
fn routerd_backs_up_keepalived_and_takes_over_when_it_dies() {
    if !e2e::require(&tools()) {
        return;
    }
    let lab = Lab::new().unwrap();
    let dns = DnsHierarchy::start(&lab).unwrap();
    let ka_host = lab.add_host("keepalived", VRRP1).unwrap();
    let rd_host = lab.add_host("routerd", VRRP2).unwrap();
    let mut ka = keepalived(150).start(&ka_host).unwrap();
    ka.wait_for_state(State::Master, Duration::from_secs(3))
        .unwrap();
    let rd = node_config_every(&dns, VRRP2, 100, true, 200)
        .start(&rd_host)
        .unwrap();
    wait_for_state(&rd, "backup", Duration::from_secs(2));
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(state(&rd), "backup", "routerd accepts keepalived's adverts");
    let status = rd.routerctl(&["vrrp", "--json"]).unwrap();
    let json = e2e::json::parse(&status.stdout).unwrap();
    assert_eq!(
        json.get("instances.0.master").and_then(|m| m.as_str()),
        Some(VRRP1.to_string().as_str()),
        "{}",
        status.stdout
    );
    assert_eq!(
        json.get("instances.0.bad_packets").and_then(|n| n.as_u64()),
        Some(0),
        "every keepalived advert passed the checksum: {}",
        status.stdout
    );

    let killed = Instant::now();
    ka.kill();
    wait_for_state(&rd, "master", FAILOVER_BOUND);
    let took = killed.elapsed();
    assert!(vip_on(&rd_host, true));
    eprintln!("routerd took over from a killed keepalived in {took:?}");

    // keepalived comes back with the higher priority and preempts.
    let mut ka = keepalived(150).start(&ka_host).unwrap();
    ka.wait_for_state(State::Master, Duration::from_secs(3))
        .unwrap();
    wait_for_state(&rd, "backup", Duration::from_secs(2));
    assert!(!vip_on(&rd_host, false));
}

#[test]
fn keepalived_backs_up_routerd_and_both_handovers_are_clean() {
    if !e2e::require(&tools()) {
        return;
    }
    let lab = Lab::new().unwrap();
    let dns = DnsHierarchy::start(&lab).unwrap();
    let rd_host = lab.add_host("routerd", VRRP1).unwrap();
    let ka_host = lab.add_host("keepalived", VRRP2).unwrap();
    let config = node_config_every(&dns, VRRP1, 150, true, 200);
    let mut rd = config.start(&rd_host).unwrap();
    wait_for_state(&rd, "master", Duration::from_secs(3));
    let mut ka = keepalived(100).start(&ka_host).unwrap();
    ka.wait_for_state(State::Backup, Duration::from_secs(3))
        .unwrap();
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(
        ka.state().unwrap(),
        Some(State::Backup),
        "keepalived accepts routerd's adverts"
    );
    assert!(!ka.holds(IpAddr::V4(VIP)).unwrap());

    // SIGKILL: keepalived notices the silence.
    let killed = Instant::now();
    let _ = std::process::Command::new("kill")
        .args(["-9", &rd.daemon.pid().to_string()])
        .status();
    ka.wait_for_state(State::Master, FAILOVER_BOUND).unwrap();
    eprintln!(
        "keepalived took over from a killed routerd in {:?}",
        killed.elapsed()
    );
    assert!(ka.holds(IpAddr::V4(VIP)).unwrap());

    // routerd comes back and preempts keepalived.
    rd.daemon.stop();
    let mut rd = config.start(&rd_host).unwrap();
    wait_for_state(&rd, "master", Duration::from_secs(3));
    ka.wait_for_state(State::Backup, Duration::from_secs(2))
        .unwrap();
    assert!(vip_on(&rd_host, true));

    // A clean stop sends priority 0: keepalived takes over after its skew
    // time only, well before a master down interval.
    let stopped = Instant::now();
    rd.daemon.stop();
    ka.wait_for_state(State::Master, Duration::from_millis(600))
        .unwrap();
    let took = stopped.elapsed();
    eprintln!("keepalived took over from a stopped routerd in {took:?}");
    assert!(
        !vip_on(&rd_host, false),
        "routerd gave the address up on its way out"
    );
    let _ = rd.check_running();
}

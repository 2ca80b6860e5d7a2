//! The VRRP socket and the announcements against the kernel, in a lab of
//! two network namespaces joined by a veth pair, `va` (10.9.0.1/24) and
//! `vb` (10.9.0.2/24): two routers on one link. Each namespace belongs to
//! one thread that moved itself there with unshare(CLONE_NEWNET); sockets
//! are bound to the namespace of the thread that creates them, and `ip` run
//! from that thread inherits it. Nothing is created in, or sent to, the
//! host's namespace: each thread checks it sits in an empty namespace
//! before anything is set up, and the namespaces die with their threads.
//!
//! The pure parts (the IPv4 header parser, the source choice) are unit
//! tests in `src/vrrp/socket_tests.rs`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests

mod support;

use std::io::{self, Read};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddrV6};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use router::vrrp::announce::{
    ALL_NODES, ARP_LEN, Mac, NA_LEN, announce_ipv4, announce_ipv6, gratuitous_arp, link_of,
    packet_address, unsolicited_na,
};
use router::vrrp::socket::{BadPacket, Family, RECV_BUFFER_LEN, VrrpSocket};
use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use vrrp::Advertisement;

type Job = Box<dyn FnOnce(&tokio::runtime::Runtime) + Send>;
type Outcome<T> = std::thread::Result<T>;

/// A thread alone in a fresh network namespace, running jobs on a
/// current-thread tokio runtime of its own.
struct Netns {
    jobs: Option<mpsc::Sender<Job>>,
    thread: Option<std::thread::JoinHandle<()>>,
    /// /proc/PID/task/TID/ns/net, for `ip link ... netns`.
    path: String,
    ip: PathBuf,
}

/// A job's result, to wait for.
struct Pending<T>(mpsc::Receiver<Outcome<T>>);

impl<T> Pending<T> {
    fn wait(self) -> T {
        match self.0.recv() {
            Ok(Ok(value)) => value,
            Ok(Err(panic)) => std::panic::resume_unwind(panic),
            Err(_) => panic!("the namespace thread died"),
        }
    }
}

impl Netns {
    fn new(ip: PathBuf) -> Netns {
        let (ready_tx, ready_rx) = mpsc::channel();
        let (jobs_tx, jobs_rx) = mpsc::channel::<Job>();
        let ip_for_thread = ip.clone();
        let thread = std::thread::spawn(move || {
            let entered = enter_fresh_netns(&ip_for_thread);
            let failed = entered.is_err();
            let _ = ready_tx.send(entered);
            if failed {
                return;
            }
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            for job in jobs_rx {
                job(&runtime);
            }
        });
        let path = match ready_rx.recv() {
            Ok(Ok(path)) => path,
            Ok(Err(why)) => panic!("cannot set up a network namespace: {why}"),
            Err(_) => panic!("the namespace thread died"),
        };
        Netns {
            jobs: Some(jobs_tx),
            thread: Some(thread),
            path,
            ip,
        }
    }

    /// Starts `make()`'s future on this namespace's thread.
    fn start<T, F>(&self, make: impl FnOnce() -> F + Send + 'static) -> Pending<T>
    where
        T: Send + 'static,
        F: Future<Output = T> + 'static,
    {
        let (tx, rx) = mpsc::channel();
        let job: Job = Box::new(move |runtime| {
            let outcome =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| runtime.block_on(make())));
            let _ = tx.send(outcome);
        });
        self.jobs.as_ref().unwrap().send(job).unwrap();
        Pending(rx)
    }

    /// Runs `make()`'s future on this namespace's thread and waits for it.
    fn run<T, F>(&self, make: impl FnOnce() -> F + Send + 'static) -> T
    where
        T: Send + 'static,
        F: Future<Output = T> + 'static,
    {
        self.start(make).wait()
    }

    /// Runs `ip args` in this namespace; panics when it fails.
    fn ip(&self, args: &[&str]) {
        let ip = self.ip.clone();
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        self.run(move || async move { support::run(&ip, &args) });
    }

    /// Waits until `link` is operationally up. The veth's carrier comes
    /// with the second end, but the kernel activates the queue a moment
    /// later (link watch): until then what is sent is dropped, which lost
    /// the first advert of a test now and then.
    fn wait_running(&self, link: &str) {
        let ip = self.ip.clone();
        let link = link.to_owned();
        self.run(move || async move {
            let deadline = Instant::now() + Duration::from_secs(5);
            loop {
                let out = Command::new(&ip)
                    .args(["-o", "link", "show", "dev", &link])
                    .output()
                    .unwrap_or_else(|e| panic!("{}: {e}", ip.display()));
                if String::from_utf8_lossy(&out.stdout).contains("state UP") {
                    return;
                }
                assert!(Instant::now() < deadline, "{link} did not come up");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        });
    }

    /// Writes a sysctl under /proc/sys/net of this namespace.
    fn sysctl(&self, key: &str, value: &str) {
        let path = format!("/proc/sys/net/{key}");
        let value = value.to_owned();
        self.run(move || async move {
            std::fs::write(&path, &value).unwrap_or_else(|e| panic!("writing {path}: {e}"));
        });
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        // The thread leaves its loop, and the namespace dies with it.
        drop(self.jobs.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Moves this thread into a new network namespace and proves it before
/// anything is created: the namespace changed, `ip` run from here sees
/// only a loopback, and procfs answers for it.
#[allow(unsafe_code)] // reason: unshare(2), the only way to give one thread a namespace of its own
fn enter_fresh_netns(ip: &Path) -> Result<String, String> {
    let here = || std::fs::read_link("/proc/thread-self/ns/net").map_err(|e| e.to_string());
    let before = here()?;
    // SAFETY: unshare takes flags only; CLONE_NEWNET moves this thread,
    // and the processes it starts later, into a new network namespace.
    if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
        return Err(format!("unshare: {}", io::Error::last_os_error()));
    }
    if here()? == before {
        return Err("unshare left the thread in its namespace".into());
    }
    let links = Command::new(ip)
        .args(["-o", "link", "show"])
        .output()
        .map_err(|e| e.to_string())?;
    let links = String::from_utf8_lossy(&links.stdout).into_owned();
    if links.lines().count() != 1 || !links.contains(": lo:") {
        return Err(format!("`ip` does not see a fresh namespace: {links}"));
    }
    let mut conf: Vec<String> = std::fs::read_dir("/proc/sys/net/ipv6/conf")
        .map_err(|e| e.to_string())?
        .filter_map(|entry| Some(entry.ok()?.file_name().to_string_lossy().into_owned()))
        .collect();
    conf.sort();
    if conf != ["all", "default", "lo"] {
        return Err(format!(
            "procfs does not answer for the new namespace: {conf:?}"
        ));
    }
    let task = std::fs::read_link("/proc/thread-self").map_err(|e| e.to_string())?;
    Ok(format!("/proc/{}/ns/net", task.display()))
}

/// Two namespaces, `a` with `va` and `b` with `vb`, the two ends of one
/// veth pair: 10.9.0.1/24 and 10.9.0.2/24, link-local IPv6 addresses
/// without duplicate address detection.
struct Lab {
    a: Netns,
    b: Netns,
}

const A_V4: Ipv4Addr = Ipv4Addr::new(10, 9, 0, 1);
const B_V4: Ipv4Addr = Ipv4Addr::new(10, 9, 0, 2);

impl Lab {
    fn start(test: &str) -> Option<Lab> {
        let ip = support::lab_tool("vrrp", test)?;
        let lab = Lab {
            a: Netns::new(ip.clone()),
            b: Netns::new(ip),
        };
        for ns in [&lab.a, &lab.b] {
            ns.sysctl("ipv6/conf/all/accept_dad", "0");
            ns.sysctl("ipv6/conf/default/accept_dad", "0");
        }
        lab.a.ip(&[
            "link",
            "add",
            "va",
            "type",
            "veth",
            "peer",
            "name",
            "vb",
            "netns",
            &lab.b.path,
        ]);
        for (ns, link, address) in [(&lab.a, "va", A_V4), (&lab.b, "vb", B_V4)] {
            ns.ip(&["addr", "add", &format!("{address}/24"), "dev", link]);
            ns.ip(&["link", "set", link, "up"]);
        }
        lab.a.wait_running("va");
        lab.b.wait_running("vb");
        Some(lab)
    }
}

/// Opens the VRRP socket of `interface`, waiting for its link-local address
/// while the link comes up.
async fn open_waiting(interface: &str, family: Family) -> VrrpSocket {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match VrrpSocket::open(interface, family) {
            Ok(socket) => return socket,
            Err(e) if e.kind() == io::ErrorKind::AddrNotAvailable && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("opening the {family:?} VRRP socket of {interface}: {e}"),
        }
    }
}

/// A received packet, owned.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Packet {
    source: IpAddr,
    destination: IpAddr,
    ttl: u8,
    payload: Vec<u8>,
}

async fn receive(socket: &VrrpSocket, buf_len: usize) -> io::Result<Packet> {
    let mut buf = vec![0u8; buf_len];
    let got = tokio::time::timeout(Duration::from_secs(5), socket.recv(&mut buf))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "nothing within 5 s"))??;
    Ok(Packet {
        source: got.source,
        destination: got.destination,
        ttl: got.ttl,
        payload: buf[got.payload].to_vec(),
    })
}

fn advertisement(addresses: Vec<IpAddr>) -> Advertisement {
    Advertisement {
        vrid: 51,
        priority: 100,
        max_advert_interval: 100,
        addresses,
    }
}

fn encode(adv: &Advertisement, source: IpAddr, destination: IpAddr) -> Vec<u8> {
    let mut out = Vec::new();
    adv.encode(source, destination, &mut out).unwrap();
    out
}

/// What `b` saw in [`exchange`], in order: to the group, unicast, with a
/// low TTL, too long for the buffer, and to the group again.
struct Exchange {
    a_local: IpAddr,
    b_local: IpAddr,
    adv: Advertisement,
    big: Advertisement,
    got: Vec<io::Result<Packet>>,
    /// What `a`'s own socket received meanwhile (multicast loop is off).
    a_heard: Option<io::Result<Packet>>,
}

/// The VRRP sockets of `va` and `vb` exchange five packets; a plain raw
/// socket on `va` sends the third with TTL / hop limit 64.
fn exchange(lab: &Lab, family: Family, virtual_addresses: Vec<IpAddr>) -> Exchange {
    let (b_address_tx, b_address_rx) = tokio::sync::oneshot::channel();
    let receiving = lab.b.start(move || async move {
        let socket = open_waiting("vb", family).await;
        b_address_tx.send(socket.local_address()).unwrap();
        let mut got = Vec::new();
        for buf_len in [
            RECV_BUFFER_LEN,
            RECV_BUFFER_LEN,
            RECV_BUFFER_LEN,
            64,
            RECV_BUFFER_LEN,
        ] {
            got.push(receive(&socket, buf_len).await);
        }
        got
    });
    let b_local = b_address_rx.blocking_recv().unwrap();
    let adv = advertisement(virtual_addresses.clone());
    let big = advertisement(virtual_addresses.iter().cycle().take(30).copied().collect());
    let (adv_a, big_a) = (adv.clone(), big.clone());
    let (a_local, a_heard) = lab.a.run(move || async move {
        let socket = open_waiting("va", family).await;
        let local = socket.local_address();
        let group = socket.group();
        socket
            .send(&encode(&adv_a, local, group), group)
            .await
            .unwrap();
        socket
            .send(&encode(&adv_a, local, b_local), b_local)
            .await
            .unwrap();
        send_with_low_ttl(&socket, &encode(&adv_a, local, b_local), b_local);
        socket
            .send(&encode(&big_a, local, group), group)
            .await
            .unwrap();
        socket
            .send(&encode(&adv_a, local, group), group)
            .await
            .unwrap();
        let heard = tokio::time::timeout(Duration::from_millis(300), receive(&socket, 1500))
            .await
            .ok();
        (local, heard)
    });
    Exchange {
        a_local,
        b_local,
        adv,
        big,
        got: receiving.wait(),
        a_heard,
    }
}

/// Sends `payload` to `to` through a plain raw protocol-112 socket on the
/// same interface, with TTL / hop limit 64: what a packet that crossed a
/// router would look like.
fn send_with_low_ttl(vrrp: &VrrpSocket, payload: &[u8], to: IpAddr) {
    let protocol = Some(Protocol::from(112));
    let (socket, address) = match to {
        IpAddr::V4(_) => {
            let socket = Socket::new(Domain::IPV4, Type::RAW, protocol).unwrap();
            socket.set_ttl_v4(64).unwrap();
            (socket, SockAddr::from(std::net::SocketAddr::new(to, 0)))
        }
        IpAddr::V6(to) => {
            let socket = Socket::new(Domain::IPV6, Type::RAW, protocol).unwrap();
            socket.set_unicast_hops_v6(64).unwrap();
            (
                socket,
                SockAddr::from(SocketAddrV6::new(to, 0, 0, vrrp.index())),
            )
        }
    };
    socket
        .bind_device(Some(vrrp.interface().as_bytes()))
        .unwrap();
    assert_eq!(socket.send_to(payload, &address).unwrap(), payload.len());
}

fn check_exchange(family: Family, x: Exchange) {
    let group = family.group();
    let [to_group, unicast, low_ttl, oversized, again] = <[_; 5]>::try_from(x.got).unwrap();
    let to_group = to_group.unwrap();
    assert_eq!(
        (to_group.source, to_group.destination, to_group.ttl),
        (x.a_local, group, 255)
    );
    assert_eq!(
        Advertisement::decode(&to_group.payload, to_group.source, to_group.destination).unwrap(),
        x.adv
    );
    let unicast = unicast.unwrap();
    assert_eq!(
        (unicast.source, unicast.destination, unicast.ttl),
        (x.a_local, x.b_local, 255)
    );
    assert_eq!(
        Advertisement::decode(&unicast.payload, unicast.source, unicast.destination).unwrap(),
        x.adv
    );
    let low_ttl = low_ttl.unwrap();
    assert_eq!(
        (low_ttl.source, low_ttl.destination, low_ttl.ttl),
        (x.a_local, x.b_local, 64),
        "the TTL is the packet's, not a constant"
    );
    let oversized = oversized.unwrap_err();
    assert_eq!(oversized.kind(), io::ErrorKind::InvalidData);
    assert_eq!(
        oversized
            .get_ref()
            .and_then(|e| e.downcast_ref::<BadPacket>()),
        Some(&BadPacket::Oversized(64)),
        "{oversized}"
    );
    let again = again.unwrap();
    assert_eq!(again, to_group, "the socket reads on after a bad packet");
    assert!(x.big.addresses.len() == 30);
    assert!(
        x.a_heard.is_none(),
        "the sender heard its own packet: {:?}",
        x.a_heard
    );
}

#[test]
fn vrrp_lab_ipv4_advertisements_cross_the_link() {
    let Some(lab) = Lab::start("vrrp_lab_ipv4_advertisements_cross_the_link") else {
        return;
    };
    let virtual_address = IpAddr::V4(Ipv4Addr::new(10, 9, 0, 100));
    let x = exchange(&lab, Family::V4, vec![virtual_address]);
    assert_eq!(x.a_local, IpAddr::V4(A_V4));
    assert_eq!(x.b_local, IpAddr::V4(B_V4));
    check_exchange(Family::V4, x);
}

#[test]
fn vrrp_lab_ipv6_advertisements_cross_the_link() {
    let Some(lab) = Lab::start("vrrp_lab_ipv6_advertisements_cross_the_link") else {
        return;
    };
    let virtual_address: IpAddr = "fe80::53".parse().unwrap();
    let x = exchange(&lab, Family::V6, vec![virtual_address]);
    for local in [x.a_local, x.b_local] {
        match local {
            IpAddr::V6(v6) => assert!(v6.is_unicast_link_local(), "{v6}"),
            IpAddr::V4(v4) => panic!("an IPv4 source {v4} on the IPv6 socket"),
        }
    }
    assert_ne!(x.a_local, x.b_local);
    check_exchange(Family::V6, x);
}

#[test]
fn vrrp_lab_sockets_refuse_what_they_cannot_do() {
    let Some(lab) = Lab::start("vrrp_lab_sockets_refuse_what_they_cannot_do") else {
        return;
    };
    let ip = lab.a.ip.clone();
    lab.a.run(move || async move {
        let error = VrrpSocket::open("nosuch0", Family::V4).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::NotFound, "{error}");
        // lo has 127.0.0.1 once up, but never a link-local address.
        let error = VrrpSocket::open("lo", Family::V6).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::AddrNotAvailable, "{error}");
        let socket = open_waiting("va", Family::V4).await;
        let error = socket
            .send(b"x", "ff02::12".parse().unwrap())
            .await
            .unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::InvalidInput);
        let v6 = open_waiting("va", Family::V6).await;
        // The source address leaves the interface: sends fail, they do
        // not go out from another address.
        let ip_in_a = |args: &[&str]| support::run(&ip, args);
        ip_in_a(&["addr", "add", "10.9.5.1/24", "dev", "va"]);
        ip_in_a(&["addr", "del", "10.9.0.1/24", "dev", "va"]);
        let error = socket.send(b"x", socket.group()).await.unwrap_err();
        assert_eq!(error.raw_os_error(), Some(libc::ENETUNREACH), "{error}");
        ip_in_a(&["link", "set", "va", "addrgenmode", "none"]);
        ip_in_a(&["-6", "addr", "flush", "dev", "va"]);
        let error = v6.send(b"x", v6.group()).await.unwrap_err();
        assert_eq!(error.raw_os_error(), Some(libc::EINVAL), "{error}");
    });
}

/// A blocking packet socket on `interface` for one EtherType, made in the
/// namespace of the thread that calls it, reading with a short timeout.
fn capture(interface: &str, ethertype: u16) -> Socket {
    let protocol = Protocol::from(i32::from(ethertype.to_be()));
    let socket = Socket::new(Domain::PACKET, Type::RAW, Some(protocol)).unwrap();
    let link = link_of(&socket, interface).unwrap();
    socket
        .bind(&packet_address(link.index, ethertype, [0; 6]))
        .unwrap();
    socket
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    socket
}

/// Frames read from `socket` within 5 seconds that `keep` accepts, until
/// there are `count` of them.
fn frames(socket: &Socket, count: usize, keep: impl Fn(&[u8]) -> bool) -> Vec<Vec<u8>> {
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut found = Vec::new();
    let mut buf = [0u8; 2048];
    while found.len() < count && Instant::now() < deadline {
        match (&*socket).read(&mut buf) {
            Ok(n) if keep(&buf[..n]) => found.push(buf[..n].to_vec()),
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) => {}
            Err(e) => panic!("capture: {e}"),
        }
    }
    found
}

fn mac_of(ns: &Netns, interface: &'static str) -> Mac {
    ns.run(move || async move {
        let socket = Socket::new(Domain::IPV4, Type::DGRAM, None).unwrap();
        link_of(&socket, interface).unwrap().mac
    })
}

#[test]
fn vrrp_lab_gratuitous_arp_reaches_the_peer() {
    let Some(lab) = Lab::start("vrrp_lab_gratuitous_arp_reaches_the_peer") else {
        return;
    };
    let va_mac = mac_of(&lab.a, "va");
    let capture = lab.b.run(|| async { capture("vb", 0x0806) });
    let addresses = [Ipv4Addr::new(10, 9, 0, 100), Ipv4Addr::new(10, 9, 0, 101)];
    lab.a
        .run(move || async move { announce_ipv4("va", &addresses) })
        .unwrap();
    let got = frames(&capture, 2, |frame| {
        // Only announcements: sender IP (28..32) = target IP (38..42).
        frame.len() >= 42 && frame[28..32] == frame[38..42]
    });
    assert_eq!(got.len(), 2, "gratuitous ARPs seen on vb: {got:?}");
    for (frame, ip) in got.iter().zip(addresses) {
        assert_eq!(frame[..6], [0xff; 6], "broadcast");
        assert_eq!(frame[6..12], va_mac, "from va");
        assert_eq!(frame[12..14], [0x08, 0x06], "ARP");
        assert_eq!(frame[14..14 + ARP_LEN], gratuitous_arp(va_mac, ip));
    }
}

/// The ICMPv6 checksum over `message` with the pseudo-header of RFC 8200
/// 8.1; 0 when the message carries a correct one.
fn icmpv6_checksum(source: Ipv6Addr, destination: Ipv6Addr, message: &[u8]) -> u16 {
    let mut bytes = Vec::new();
    bytes.extend_from_slice(&source.octets());
    bytes.extend_from_slice(&destination.octets());
    bytes.extend_from_slice(&(message.len() as u32).to_be_bytes());
    bytes.extend_from_slice(&[0, 0, 0, 58]);
    bytes.extend_from_slice(message);
    let mut sum: u32 = bytes
        .chunks(2)
        .map(|pair| u32::from(u16::from_be_bytes([pair[0], *pair.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

#[test]
fn vrrp_lab_unsolicited_neighbour_advertisement_reaches_the_peer() {
    let Some(lab) = Lab::start("vrrp_lab_unsolicited_neighbour_advertisement_reaches_the_peer")
    else {
        return;
    };
    let va_mac = mac_of(&lab.a, "va");
    // A router: the advertisement must say so.
    lab.a.sysctl("ipv6/conf/va/forwarding", "1");
    let va_local = lab
        .a
        .run(|| async { open_waiting("va", Family::V6).await.local_address() });
    let capture = lab.b.run(|| async { capture("vb", 0x86dd) });
    let target: Ipv6Addr = "fd00:9::100".parse().unwrap();
    lab.a
        .run(move || async move { announce_ipv6("va", &[target]) })
        .unwrap();
    let got = frames(&capture, 1, |frame| {
        // IPv6 header at 14, ICMPv6 at 54: type 136 for our target.
        frame.len() >= 54 + NA_LEN
            && frame[20] == 58
            && frame[54] == 136
            && frame[62..78] == target.octets()
    });
    assert_eq!(
        got.len(),
        1,
        "no neighbour advertisement for {target} on vb"
    );
    let frame = &got[0];
    assert_eq!(frame[..6], [0x33, 0x33, 0, 0, 0, 1], "to all nodes");
    assert_eq!(frame[6..12], va_mac, "from va");
    assert_eq!(frame[21], 255, "hop limit");
    let source = Ipv6Addr::from(<[u8; 16]>::try_from(&frame[22..38]).unwrap());
    let destination = Ipv6Addr::from(<[u8; 16]>::try_from(&frame[38..54]).unwrap());
    assert_eq!(IpAddr::V6(source), va_local, "from va's link-local address");
    assert_eq!(destination, ALL_NODES);
    let message = &frame[54..54 + NA_LEN];
    assert_eq!(
        usize::from(u16::from_be_bytes([frame[18], frame[19]])),
        NA_LEN,
        "payload length"
    );
    assert_eq!(
        icmpv6_checksum(source, destination, message),
        0,
        "the kernel's checksum"
    );
    let mut expected = unsolicited_na(va_mac, target, true);
    expected[2..4].copy_from_slice(&message[2..4]);
    assert_eq!(message, expected, "R and O set, S clear, va's MAC");
}

//! `ensure_zone_links` against a real kernel, inside a network namespace of
//! its own so the host's interfaces are never touched.
//!
//! Entering a namespace needs setns(2), which means `unsafe`; instead the
//! outer test re-runs this test binary under `ip netns exec`, selecting the
//! ignored `in_namespace` test and telling it what to do through STEP_ENV.
//! The outer test builds the namespace with `ip` and checks the result with
//! `ip`, so the kernel's own view is the oracle, not rtnetlink's.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests

mod support;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::{Command, Output};

use ipnet::IpNet;
use router::links::{LinkError, LinksReport, Vlan, ZoneLink, ensure_zone_links};
use serde_json::{Value, json};
use support::{lab_tool, run};

/// What the inner run does: "apply" or "errors".
const STEP_ENV: &str = "ROUTER_LINKS_E2E_STEP";
/// Whether this kernel can create VLANs, as `ip` found: "yes" or "no".
const VLAN_ENV: &str = "ROUTER_LINKS_E2E_VLAN";
/// The namespace the inner run must find itself in.
const NETNS_ENV: &str = "ROUTER_LINKS_E2E_NETNS";
/// Marks the inner run's report among the test harness's own output.
const REPORT_MARKER: &str = "LINKS_REPORT ";

#[test]
fn zone_links_in_a_namespace() {
    let Some(ip) = lab_tool("links", "zone_links_in_a_namespace") else {
        return;
    };
    let ns = Netns::create(ip, format!("rlinks{}", std::process::id()));
    ns.ip(&["link", "set", "lo", "up"]);
    ns.ip(&[
        "link", "add", "lan0", "type", "veth", "peer", "name", "lan0p",
    ]);
    // A VLAN modelled by a veth end, as on kernels without 8021q.
    ns.ip(&[
        "link", "add", "trunk0", "type", "veth", "peer", "name", "guest0",
    ]);
    // Not declared: must survive. Declared and present: must not be re-added.
    ns.ip(&["addr", "add", "10.99.0.1/24", "dev", "lan0"]);
    ns.ip(&["addr", "add", "192.168.10.1/24", "dev", "lan0"]);
    let vlan_supported = ns.kernel_creates_vlans();

    let first = ns.run_inner("apply", vlan_supported);
    assert_eq!(
        first,
        json!({
            "created": [],
            "brought_up": ["lan0", "trunk0", "guest0"],
            "addresses_added": [
                {"zone": "lan", "interface": "lan0", "address": "fd00:10::1/64"},
                {"zone": "guest", "interface": "guest0", "address": "192.168.20.1/24"},
                {"zone": "guest", "interface": "guest0", "address": "fd00:20::1/64"},
            ],
        })
    );
    let addresses = ns.addresses();
    for expected in [
        "lan0 10.99.0.1/24",
        "lan0 192.168.10.1/24",
        "lan0 fd00:10::1/64",
        "guest0 192.168.20.1/24",
        "guest0 fd00:20::1/64",
    ] {
        assert!(
            addresses.contains(expected),
            "{expected} missing from {addresses:?}"
        );
    }
    for link in ["lan0", "trunk0", "guest0"] {
        assert!(ns.is_up(link), "{link} is not up");
    }
    assert!(!ns.is_up("lan0p"), "an undeclared link was brought up");

    let second = ns.run_inner("apply", vlan_supported);
    assert_eq!(
        second,
        serde_json::to_value(LinksReport::default()).unwrap()
    );
    assert_eq!(
        ns.addresses(),
        addresses,
        "the second run changed addresses"
    );

    ns.run_inner("errors", vlan_supported);
    if vlan_supported {
        let details = ns.ip(&["-d", "link", "show", "trunk0.30"]);
        assert!(details.contains("vlan protocol 802.1Q id 30"), "{details}");
        assert!(ns.is_up("trunk0.30"));
        assert!(ns.addresses().contains("trunk0.30 192.168.30.1/24"));
    } else {
        assert!(
            !ns.try_ip(&["link", "show", "trunk0.30"]).status.success(),
            "a refused VLAN left an interface behind"
        );
    }
}

/// The inner half, run by `zone_links_in_a_namespace` inside its namespace.
#[tokio::test]
#[ignore = "run by zone_links_in_a_namespace inside its own network namespace"]
async fn in_namespace() {
    // Without the variable this is someone's `cargo test -- --ignored` on the
    // host: do nothing rather than change the host's interfaces.
    let Ok(step) = std::env::var(STEP_ENV) else {
        return;
    };
    assert!(
        in_netns(&std::env::var(NETNS_ENV).unwrap()),
        "refusing to run outside the test's network namespace"
    );
    match step.as_str() {
        "apply" => apply().await,
        "errors" => errors(std::env::var(VLAN_ENV).as_deref() == Ok("yes")).await,
        other => panic!("unknown {STEP_ENV} {other:?}"),
    }
}

fn zone(zone: &str, name: &str, vlan: Option<(&str, u16)>, addresses: &[&str]) -> ZoneLink {
    ZoneLink {
        zone: zone.into(),
        name: name.into(),
        vlan: vlan.map(|(parent, id)| Vlan {
            parent: parent.into(),
            id,
        }),
        addresses: addresses
            .iter()
            .map(|a| a.parse::<IpNet>().unwrap())
            .collect(),
    }
}

async fn apply() {
    let links = [
        zone("lan", "lan0", None, &["192.168.10.1/24", "fd00:10::1/64"]),
        zone(
            "guest",
            "guest0",
            Some(("trunk0", 20)),
            &["192.168.20.1/24", "fd00:20::1/64"],
        ),
    ];
    let report = ensure_zone_links(&links).await.unwrap();
    let report = serde_json::to_string(&report).unwrap();
    #[allow(clippy::print_stdout)] // reason: the outer test reads the report from stdout
    {
        println!("{REPORT_MARKER}{report}");
    }
}

async fn errors(vlan_supported: bool) {
    let missing = ensure_zone_links(&[zone("dmz", "nope0", None, &[])]).await;
    assert_eq!(
        missing.unwrap_err().to_string(),
        "zone dmz: interface nope0 does not exist"
    );

    let orphan = [zone("dmz", "nope0.40", Some(("nope0", 40)), &[])];
    let orphan = ensure_zone_links(&orphan).await.unwrap_err();
    assert!(
        matches!(&orphan, LinkError::MissingParent { parent, .. } if parent == "nope0"),
        "{orphan}"
    );

    let iot = [zone(
        "iot",
        "trunk0.30",
        Some(("trunk0", 30)),
        &["192.168.30.1/24"],
    )];
    let result = ensure_zone_links(&iot).await;
    if vlan_supported {
        let report = result.unwrap();
        assert_eq!(report.created, ["trunk0.30"]);
        assert!(ensure_zone_links(&iot).await.unwrap().is_empty());
        return;
    }
    let error = result.unwrap_err();
    let message = error.to_string();
    let LinkError::CreateVlan { source, .. } = &error else {
        panic!("expected the kernel to refuse the VLAN, got: {message}");
    };
    assert_eq!(source.raw_os_error(), Some(libc::EOPNOTSUPP), "{message}");
    assert!(
        message
            .starts_with("zone iot: the kernel refused creating VLAN trunk0.30 (id 30 on trunk0)"),
        "{message}"
    );
    assert!(message.contains("8021q"), "{message}");
}

/// True when this process's network namespace is the one `ip netns` keeps
/// under `name`: both paths then open the same nsfs inode.
fn in_netns(name: &str) -> bool {
    use std::os::unix::fs::MetadataExt;
    let inode = |path: &str| std::fs::metadata(path).map(|m| (m.dev(), m.ino())).ok();
    let ours = inode("/proc/self/ns/net");
    ours.is_some() && ours == inode(&format!("/run/netns/{name}"))
}

/// A network namespace, deleted with everything in it on drop, also when
/// an assertion fails.
struct Netns {
    ip: PathBuf,
    name: String,
}

impl Netns {
    fn create(ip: PathBuf, name: String) -> Netns {
        // A namespace with our pid in its name can only be a leftover of a
        // crashed earlier process that had the same pid.
        let _ = Command::new(&ip).args(["netns", "delete", &name]).output();
        run(&ip, &["netns", "add", &name]);
        Netns { ip, name }
    }

    fn try_ip(&self, args: &[&str]) -> Output {
        Command::new(&self.ip)
            .args(["-n", &self.name])
            .args(args)
            .output()
            .unwrap()
    }

    fn ip(&self, args: &[&str]) -> String {
        run(&self.ip, &[&["-n", &self.name], args].concat())
    }

    /// Asks `ip` itself, so the test expects of ensure_zone_links exactly
    /// what this kernel allows.
    fn kernel_creates_vlans(&self) -> bool {
        let probe = [
            "link", "add", "link", "trunk0", "name", "probe", "type", "vlan", "id", "99",
        ];
        let created = self.try_ip(&probe).status.success();
        if created {
            self.ip(&["link", "del", "probe"]);
        }
        created
    }

    /// "interface address/prefix" for every address but link-local ones,
    /// which the kernel adds on its own schedule.
    fn addresses(&self) -> BTreeSet<String> {
        self.ip(&["-o", "addr", "show"])
            .lines()
            .filter_map(|line| {
                let fields: Vec<&str> = line.split_whitespace().collect();
                let (device, address) = (fields.get(1)?, fields.get(3)?);
                let device = device.split('@').next()?;
                (!address.starts_with("fe80:")).then(|| format!("{device} {address}"))
            })
            .collect()
    }

    /// Administratively up: UP among the flags in `<...>` (a veth whose peer
    /// is down has no carrier, so its operational state stays down).
    fn is_up(&self, link: &str) -> bool {
        let shown = self.ip(&["link", "show", "dev", link]);
        let flags = shown
            .split_once('<')
            .and_then(|(_, rest)| rest.split_once('>'))
            .map_or("", |(flags, _)| flags);
        flags.split(',').any(|flag| flag == "UP")
    }

    /// Runs `in_namespace` in this namespace; returns the report it printed
    /// (null when it printed none).
    fn run_inner(&self, step: &str, vlan_supported: bool) -> Value {
        let exe = std::env::current_exe().unwrap();
        let output = Command::new(&self.ip)
            .args(["netns", "exec", &self.name])
            .arg(&exe)
            .args(["--exact", "in_namespace", "--ignored", "--nocapture"])
            .env(STEP_ENV, step)
            .env(NETNS_ENV, &self.name)
            .env(VLAN_ENV, if vlan_supported { "yes" } else { "no" })
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            output.status.success() && stdout.contains("1 passed"),
            "inner step {step} failed:\n{stdout}\n{stderr}"
        );
        stdout
            .lines()
            .find_map(|line| line.strip_prefix(REPORT_MARKER))
            .map_or(Value::Null, |json| serde_json::from_str(json).unwrap())
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new(&self.ip)
            .args(["netns", "delete", &self.name])
            .output();
    }
}

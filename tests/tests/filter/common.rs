//! The filtering lab: zones lab, NSD upstream on the wan host, lists and
//! groups in routerd's configuration.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use e2e::dns_hierarchy::serve_zones;
use e2e::routerd::Upstream;
use e2e::zones_lab::{CAMERA, WAN_HOST, Zone, ZonesLab, routerd_config};
use e2e::{Daemon, Query, Routerd, RouterdConfig, wait_until};

/// Tools these tests need.
pub const TOOLS: &[&str] = &[
    "nsd",
    "dig",
    "nft",
    "sysctl",
    "timeout",
    "routerd",
    "routerctl",
];

/// The upstream's zone.
pub const ZONE: &str = "filter.test.";

/// Names and the addresses the upstream gives them.
pub const WWW: (&str, &str) = ("www.filter.test", "10.99.0.1");
pub const ADS: (&str, &str) = ("ads.filter.test", "10.99.0.2");
pub const OK_ADS: (&str, &str) = ("ok.ads.filter.test", "10.99.0.3");
pub const MUST: (&str, &str) = ("must.filter.test", "10.99.0.4");
pub const TRACKER: (&str, &str) = ("tracker.filter.test", "10.99.0.5");
/// shop -> cdn -> pixel, and pixel is on the ads list.
pub const SHOP: &str = "shop.filter.test";
pub const PIXEL_A: &str = "10.99.0.6";
pub const REGEX_HIT: (&str, &str) = ("re7.filter.test", "10.99.0.7");
pub const GOOGLE: (&str, &str) = ("www.google.com", "10.99.1.1");
pub const SAFE_GOOGLE: (&str, &str) = ("forcesafesearch.google.com", "10.99.1.2");
/// The family group's block answer.
pub const FAMILY_BLOCK: &str = "192.168.20.1";

const FILTER_ZONE: &str = "$TTL 300
@ IN SOA ns.filter.test. hostmaster.filter.test. 1 3600 600 86400 5
@ IN NS ns
ns IN A 100.64.0.2
www IN A 10.99.0.1
ads IN A 10.99.0.2
ok.ads IN A 10.99.0.3
must IN A 10.99.0.4
tracker IN A 10.99.0.5
shop IN CNAME cdn
cdn IN CNAME pixel
pixel IN A 10.99.0.6
re7 IN A 10.99.0.7
";

const GOOGLE_ZONE: &str = "$TTL 300
@ IN SOA ns.google.com. hostmaster.google.com. 1 3600 600 86400 5
@ IN NS ns
ns IN A 100.64.0.2
www IN A 10.99.1.1
forcesafesearch IN A 10.99.1.2
";

/// The ads list, hosts format with AdBlock lines mixed in as real lists do.
pub const ADS_LIST: &str = "# ads
0.0.0.0 ads.filter.test
@@||ok.ads.filter.test^
||must.filter.test^$important
||pixel.filter.test^
this line is not a rule
";
pub const ALLOW_LIST: &str = "! exceptions
@@||must.filter.test^
";
pub const STRICT_LIST: &str = "||tracker.filter.test^
/^re[0-9]+\\.filter\\.test$/
";

/// Groups: default (ads + allow, null answers), strict for iot (everything,
/// NXDOMAIN), family for trusted (ads, safe search, its own block
/// address, and its own upstream: the NSD on the servers host, whose
/// answers are in 10.98/16 where the main upstream's are in 10.99/16), and
/// the camera on its own with no lists.
pub const GROUPS: &str = r#"
[[dns.filter.groups]]
name = "default"
lists = ["ads", "allow"]
block_mode = "null"

[[dns.filter.groups]]
name = "strict"
zones = ["iot"]
lists = ["ads", "allow", "strict"]
block_mode = "nxdomain"

[[dns.filter.groups]]
name = "family"
zones = ["trusted"]
lists = ["ads"]
safe_search = true
block_mode = "address"
block_addresses = ["192.168.20.1"]
upstreams = [{ address = "192.168.50.10:53" }]

[[dns.filter.groups]]
name = "cameras"
clients = ["192.168.40.20"]
"#;

/// routerd, the upstream and the lab. Field order is drop order.
pub struct FilterLab {
    pub routerd: Routerd,
    pub config: RouterdConfig,
    pub _upstream: Daemon,
    pub _family_upstream: Daemon,
    pub lists: PathBuf,
    pub lab: ZonesLab,
}

impl FilterLab {
    pub fn host(&self, zone: Zone) -> &e2e::Host {
        self.lab.host(zone)
    }

    /// Where a list's source file is.
    pub fn list(&self, name: &str) -> PathBuf {
        self.lists.join(format!("{name}.txt"))
    }

    /// Stops routerd and starts it again with the same configuration.
    pub fn restart(&mut self) {
        self.routerd.daemon.stop();
        self.routerd = start_routerd(&self.lab, &self.config);
    }

    /// `routerctl --json ARGS`, parsed; panics with its output on failure.
    pub fn ctl_json(&self, args: &[&str]) -> e2e::json::Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let out = self.routerd.routerctl(&all).unwrap();
        assert!(out.success, "routerctl {args:?}: {out}");
        e2e::json::parse(&out.stdout).unwrap()
    }
}

/// The `[dns.filter]` section with three local lists, then `groups`.
pub fn filter_toml(lists: &std::path::Path, groups: &str, extra: &str) -> String {
    let mut toml = format!(
        "[dns.filter]\nlists_dir = {:?}\n{extra}\n",
        lists.join("store").to_string_lossy()
    );
    for name in ["ads", "allow", "strict"] {
        let path = lists.join(format!("{name}.txt"));
        toml.push_str(&format!(
            "\n[[dns.filter.lists]]\nname = \"{name}\"\npath = {:?}\n",
            path.to_string_lossy()
        ));
    }
    toml.push_str(groups);
    toml
}

/// The lab with the lists written and routerd answering with them.
pub fn filter_lab(groups: &str, extra_filter: &str, extra: &str) -> FilterLab {
    let lab = ZonesLab::new().unwrap();
    let policies = lab.install_homelab_policy().unwrap();
    let upstream = serve_zones(
        lab.host(Zone::Wan),
        &lab.dir().join("upstream"),
        "upstream",
        &[(ZONE, FILTER_ZONE), ("google.com.", GOOGLE_ZONE)],
    )
    .unwrap();
    let family_upstream = serve_zones(
        lab.host(Zone::Servers),
        &lab.dir().join("family-upstream"),
        "family",
        &[
            (ZONE, &family(FILTER_ZONE)),
            ("google.com.", &family(GOOGLE_ZONE)),
        ],
    )
    .unwrap();
    let lists = lab.dir().join("lists");
    std::fs::create_dir_all(&lists).unwrap();
    for (name, text) in [
        ("ads", ADS_LIST),
        ("allow", ALLOW_LIST),
        ("strict", STRICT_LIST),
    ] {
        std::fs::write(lists.join(format!("{name}.txt")), text).unwrap();
    }
    let mut config = routerd_config(policies);
    config.upstreams = vec![Upstream::udp(IpAddr::V4(WAN_HOST))];
    config.extra_toml = format!("{}\n{extra}", filter_toml(&lists, groups, extra_filter));
    let routerd = start_routerd(&lab, &config);
    FilterLab {
        routerd,
        config,
        _upstream: upstream,
        _family_upstream: family_upstream,
        lists,
        lab,
    }
}

fn start_routerd(lab: &ZonesLab, config: &RouterdConfig) -> Routerd {
    let routerd = config.start(lab.router()).unwrap();
    // The zones' addresses come with the policy: wait for them.
    let ready = wait_until(Duration::from_secs(10), "routerd on the zones", || {
        let answer = lab
            .host(Zone::Admin)
            .dig(
                router(Zone::Admin),
                &Query::new(WWW.0, "A").timeout(1).tries(1),
            )
            .ok()?;
        (!answer.answers("A").is_empty()).then_some(())
    });
    if let Err(e) = ready {
        panic!("{e:#}\n{}", lab.router_addresses());
    }
    routerd
}

/// What the family group's upstream says where the main one says `text`.
pub fn family(text: &str) -> String {
    text.replace("10.99.", "10.98.")
}

/// The router's address on a zone.
pub fn router(zone: Zone) -> IpAddr {
    IpAddr::V4(zone.router_v4())
}

/// `dig NAME TYPE` from `zone`'s host to the router: (status, answer data
/// of `rtype`, CNAME targets).
pub fn ask(f: &FilterLab, zone: Zone, name: &str, rtype: &str) -> (String, Vec<String>) {
    ask_with(f, zone, Query::new(name, rtype).timeout(2).tries(2), rtype)
}

/// As [`ask`], from the camera's address on the iot host.
pub fn ask_as_camera(f: &FilterLab, name: &str) -> (String, Vec<String>) {
    let query = Query::new(name, "A")
        .timeout(2)
        .tries(2)
        .arg(&format!("-b{CAMERA}"));
    ask_with(f, Zone::Iot, query, "A")
}

fn ask_with(f: &FilterLab, zone: Zone, query: Query, rtype: &str) -> (String, Vec<String>) {
    let answer = f.host(zone).dig(router(zone), &query).unwrap();
    let data = answer
        .answer
        .iter()
        .filter(|rr| rr.rtype == rtype)
        .map(|rr| rr.data.clone())
        .collect();
    (answer.status.clone(), data)
}

/// A name's full answer section as (type, data), for CNAME chains.
pub fn chain(f: &FilterLab, zone: Zone, name: &str) -> Vec<(String, String)> {
    let query = Query::new(name, "A").timeout(2).tries(2);
    let answer = f.host(zone).dig(router(zone), &query).unwrap();
    answer
        .answer
        .iter()
        .map(|rr| (rr.rtype.clone(), rr.data.clone()))
        .collect()
}

/// `routerctl --json dns log ARGS`: one entry per line.
pub fn log_entries(f: &FilterLab, args: &[&str]) -> Vec<e2e::json::Value> {
    let mut all = vec!["--json", "dns", "log", "--limit", "1000"];
    all.extend_from_slice(args);
    let out = f.routerd.routerctl(&all).unwrap();
    assert!(out.success, "routerctl {all:?}: {out}");
    out.stdout
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| e2e::json::parse(l).unwrap())
        .collect()
}

//! The checked `[vrrp]` configuration. Defaults live here.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use ipnet::IpNet;

/// keepalived's default advert is 1 s; a tenth of that fails over in
/// about 0.4 s and costs ten small packets a second.
pub const DEFAULT_ADVERT_INTERVAL: Duration = Duration::from_millis(100);
/// The second round of gratuitous ARPs, as keepalived's
/// `garp_master_delay`.
pub const DEFAULT_ANNOUNCE_AGAIN_AFTER: Duration = Duration::from_secs(5);
/// How many gratuitous ARPs / unsolicited NAs per round
/// (keepalived's `garp_master_repeat`).
pub const DEFAULT_ANNOUNCE_REPEAT: u8 = 3;
/// Health probes: how often, and how many results in a row flip the
/// verdict (keepalived's `fall` and `rise`).
pub const DEFAULT_CHECK_INTERVAL: Duration = Duration::from_millis(200);
pub const DEFAULT_FALL: u32 = 2;
pub const DEFAULT_RISE: u32 = 2;
/// How long a probe query may take before it counts as failed.
pub const DEFAULT_PROBE_TIMEOUT: Duration = Duration::from_millis(500);
pub const DEFAULT_FAST_PATH_TIMEOUT: Duration = Duration::from_millis(50);
/// Track scripts: every second, two seconds to finish.
pub const DEFAULT_SCRIPT_INTERVAL: Duration = Duration::from_secs(1);
pub const DEFAULT_SCRIPT_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VrrpConfig {
    pub instances: Vec<InstanceConfig>,
    pub checks: ChecksConfig,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceConfig {
    pub name: String,
    pub interface: String,
    pub vrid: u8,
    pub priority: u8,
    pub advert_interval: Duration,
    pub preempt: bool,
    pub preempt_delay: Duration,
    /// The virtual addresses with the prefix length they get on the
    /// interface.
    pub addresses: Vec<IpNet>,
    /// Send adverts to these instead of the multicast group.
    pub unicast_peers: Vec<IpAddr>,
    /// Run on every transition with: instance name, old state, new state,
    /// reason.
    pub notify: Option<PathBuf>,
    pub announce_again_after: Duration,
    pub announce_repeat: u8,
    /// What a failed check does: lower the priority by this much, or
    /// (None) put the instance in Fault.
    pub check_weight: Option<u8>,
    /// RFC 5798 Accept_Mode: a master that does not own the addresses
    /// takes traffic addressed to them (true, what serving DNS on them
    /// needs) or drops it (false).
    pub accept: bool,
}

impl InstanceConfig {
    /// The addresses alone, as the protocol carries them.
    pub fn virtual_ips(&self) -> Vec<IpAddr> {
        self.addresses.iter().map(IpNet::addr).collect()
    }

    pub fn is_ipv4(&self) -> bool {
        self.addresses.first().is_some_and(|a| a.addr().is_ipv4())
    }
}

/// The appliance's own health, shared by every instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChecksConfig {
    pub interval: Duration,
    pub fall: u32,
    pub rise: u32,
    /// For the recursion probe, which waits on the DNS hierarchy.
    pub probe_timeout: Duration,
    /// For the fast-path probe: a cache hit on the node's own resolver
    /// takes well under a millisecond, so one that takes this long is a
    /// resolver the house already notices, and waiting longer only delays
    /// the failover.
    pub fast_path_timeout: Duration,
    /// Asked as is: after the first answer it comes from the cache, so
    /// this probes the fast path.
    pub fast_path_probe: Option<String>,
    /// Asked with a fresh random label in front each time, so every probe
    /// recurses (NXDOMAIN is an answer).
    pub recursion_probe: Option<String>,
    /// The instance's interface must be up with carrier.
    pub interface: bool,
    /// A stale WireGuard peer counts as a failed check.
    pub wireguard: bool,
    /// A BGP session that is not Established counts as a failed check.
    pub bgp: bool,
    /// Programs run periodically; exit status 0 passes.
    pub scripts: Vec<ScriptCheck>,
}

/// A track script, as keepalived's `vrrp_script`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptCheck {
    pub name: String,
    pub command: PathBuf,
    pub args: Vec<String>,
    pub interval: Duration,
    /// A run that takes longer is killed and counts as a failure.
    pub timeout: Duration,
    pub fall: u32,
    pub rise: u32,
}

impl Default for ChecksConfig {
    fn default() -> Self {
        ChecksConfig {
            interval: DEFAULT_CHECK_INTERVAL,
            fall: DEFAULT_FALL,
            rise: DEFAULT_RISE,
            probe_timeout: DEFAULT_PROBE_TIMEOUT,
            fast_path_timeout: DEFAULT_FAST_PATH_TIMEOUT,
            fast_path_probe: None,
            recursion_probe: None,
            interface: true,
            wireguard: false,
            bgp: false,
            scripts: Vec::new(),
        }
    }
}

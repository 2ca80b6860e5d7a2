//! dnsmasq as the benchmarks run it: what Pi-hole runs (as FTL), caching
//! and forwarding to the lab's Unbound, single-threaded by design.

use std::net::IpAddr;

/// dnsmasq's command line: in the foreground as root, listening on
/// `listen` only, caching 10 000 entries and forwarding everything to
/// `upstream` with its AD bit passed through; no query logging, no
/// /etc/hosts, no resolv.conf.
pub fn args(listen: IpAddr, upstream: IpAddr) -> Vec<String> {
    let mut args: Vec<String> = [
        "--keep-in-foreground",
        "--log-facility=-",
        "--no-resolv",
        "--no-hosts",
        "--no-poll",
        "--pid-file",
        "--user=root",
        "--bind-interfaces",
        "--cache-size=10000",
        "--dns-forward-max=1000",
        "--proxy-dnssec",
    ]
    .map(String::from)
    .to_vec();
    args.push(format!("--listen-address={listen}"));
    args.push(format!("--server={upstream}"));
    args
}

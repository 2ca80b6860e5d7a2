//! `routerd demo`: the appliance's main job on a fresh machine, with no
//! configuration and no network. A tiny DNS hierarchy (a root, the `demo.`
//! TLD and the `home.demo.` zone) is served on loopback addresses, and the
//! resolver recurses from it exactly as it would from the real roots.
//!
//! Everything stays on 127.53.0.0/16: the recursor is told to use only the
//! demo's root hints, so no packet leaves the machine.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use hickory_server::Server;
use hickory_server::net::runtime::TokioRuntimeProvider;
use hickory_server::proto::rr::{LowerName, Name, RecordSet, RrKey};
use hickory_server::proto::serialize::txt::Parser;
use hickory_server::store::in_memory::InMemoryZoneHandler;
use hickory_server::zone_handler::{AxfrPolicy, Catalog, ZoneHandler, ZoneType};
use tokio::net::{TcpListener, UdpSocket};

use crate::config::Config;

/// Where the resolver answers in the demo.
pub const RESOLVER: Ipv4Addr = Ipv4Addr::new(127, 53, 53, 53);
const ROOT_SERVER: Ipv4Addr = Ipv4Addr::new(127, 53, 0, 1);
const TLD_SERVER: Ipv4Addr = Ipv4Addr::new(127, 53, 0, 2);
const HOME_SERVER: Ipv4Addr = Ipv4Addr::new(127, 53, 0, 3);

const ROOT_ZONE: &str = "
@            86400 IN SOA a.root.demo. hostmaster.demo. 1 1800 900 604800 300
@            86400 IN NS  a.root.demo.
demo.        86400 IN NS  ns.demo.
ns.demo.     86400 IN A   127.53.0.2
a.root.demo. 86400 IN A   127.53.0.1
";

const TLD_ZONE: &str = "
@             3600 IN SOA ns.demo. hostmaster.demo. 1 1800 900 604800 300
@             3600 IN NS  ns.demo.
ns            3600 IN A   127.53.0.2
a.root        3600 IN A   127.53.0.1
home          3600 IN NS  ns-home
ns-home       3600 IN A   127.53.0.3
";

const HOME_ZONE: &str = "
@      300 IN SOA  ns-home.demo. hostmaster.home.demo. 1 1800 900 604800 60
@      300 IN NS   ns-home.demo.
www    300 IN A    192.0.2.80
www    300 IN AAAA 2001:db8::80
nas    300 IN A    192.0.2.10
media  300 IN CNAME nas
@      300 IN TXT  \"hello from the routerd demo\"
";

/// Runs the demo until Ctrl-C.
pub async fn run() -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join(format!("routerd-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let hints = dir.join("root.hints");
    std::fs::write(
        &hints,
        ". 86400 IN NS a.root.demo.\na.root.demo. 86400 IN A 127.53.0.1\n",
    )
    .context("cannot write the demo's root hints")?;

    let mut servers = Vec::new();
    // hickory's authoritative server sends referrals without glue, so the
    // root server also carries `demo.`, where the name servers' addresses
    // live, and every server name sits outside the zone it serves.
    for (address, zones) in [
        (ROOT_SERVER, vec![(".", ROOT_ZONE), ("demo.", TLD_ZONE)]),
        (TLD_SERVER, vec![("demo.", TLD_ZONE)]),
        (HOME_SERVER, vec![("home.demo.", HOME_ZONE)]),
    ] {
        servers.push(serve_zones(address, &zones).await.with_context(|| {
            format!("cannot serve the demo zones on {address}:53 (the demo needs root, and port 53 free on 127.53.0.0/16)")
        })?);
    }

    let config = demo_config(&dir, hints);
    let socket = config.control_socket.clone();
    tracing::info!("demo hierarchy up: root 127.53.0.1, demo. 127.53.0.2, home.demo. 127.53.0.3");
    #[allow(clippy::print_stdout)] // reason: the demo's instructions to the user
    {
        println!();
        println!("routerd demo is answering on {RESOLVER}:53. From another shell, try:");
        println!();
        println!("    dig @{RESOLVER} www.home.demo");
        println!("    dig @{RESOLVER} media.home.demo");
        println!("    dig @{RESOLVER} nope.home.demo   # NXDOMAIN");
        println!("    routerctl --socket {} status", socket.display());
        println!();
        println!("Ctrl-C stops it.");
    }
    let result = crate::daemon::run_with(&dir.join("demo (built in)"), config).await;
    for mut server in servers {
        let _ = server.shutdown_gracefully().await;
    }
    let _ = std::fs::remove_dir_all(&dir);
    result
}

fn demo_config(dir: &std::path::Path, hints: PathBuf) -> Config {
    let mut dns = dns::DnsSettings {
        listen: vec![SocketAddr::new(IpAddr::V4(RESOLVER), 53)],
        workers: 1,
        ..dns::DnsSettings::default()
    };
    dns.recursion.root_hints = Some(hints);
    // The demo zones are unsigned; validating them against the real root
    // key would call every answer bogus.
    dns.recursion.dnssec = false;
    dns.recursion.allow_servers =
        vec![ipnet::IpNet::new(IpAddr::V4(Ipv4Addr::new(127, 53, 0, 0)), 16).unwrap_or_default()];
    Config {
        dns,
        control_socket: dir.join("control.sock"),
        metrics_listen: None,
        policies_dir: None,
        filter: crate::config::filter::FilterConfig {
            lists_dir: dir.join("lists"),
            lists: Vec::new(),
        },
        query_log: crate::config::filter::QueryLogConfig {
            enabled: true,
            path: None,
            retention_days: 1,
            max_bytes: 1 << 20,
            memory_entries: 10_000,
        },
        wireguard: crate::wireguard::settings::WireguardConfig::default(),
        bgp: None,
        vrrp: None,
        pair: None,
    }
}

async fn serve_zones(address: Ipv4Addr, zones: &[(&str, &str)]) -> anyhow::Result<Server<Catalog>> {
    let mut catalog = Catalog::new();
    for (origin, zone) in zones {
        let origin = Name::from_ascii(origin)?;
        let (_, records) = Parser::new(*zone, None, Some(origin.clone()))
            .parse()
            .map_err(|e| anyhow::anyhow!("demo zone {origin}: {e}"))?;
        let records: BTreeMap<RrKey, RecordSet> = records.into_iter().collect();
        let handler = InMemoryZoneHandler::<TokioRuntimeProvider>::new(
            origin.clone(),
            records,
            ZoneType::Primary,
            AxfrPolicy::Deny,
        )
        .map_err(|e| anyhow::anyhow!("demo zone {origin}: {e}"))?;
        let handler: Arc<dyn ZoneHandler> = Arc::new(handler);
        catalog.upsert(LowerName::from(&origin), vec![handler]);
    }
    let addr = SocketAddr::new(IpAddr::V4(address), 53);
    let udp = UdpSocket::bind(addr).await?;
    let tcp = TcpListener::bind(addr).await?;
    let mut server = Server::new(catalog);
    server.register_socket(udp);
    server.register_listener(tcp, Duration::from_secs(5), 8192);
    Ok(server)
}

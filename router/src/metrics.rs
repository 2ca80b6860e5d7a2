//! Prometheus text metrics at `/metrics`.
//!
//! Counters live in the DNS service's per-worker statistics; a collector
//! adds them up at scrape time, so serving a query never touches a shared
//! metrics structure.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tracing::{info, warn};

use crate::daemon::Shared;

#[derive(Debug)]
struct DnsCollector {
    shared: Arc<Shared>,
}

impl Collector for DnsCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Some(snapshot) = self.shared.metrics_snapshot() else {
            return Ok(());
        };
        let totals = &snapshot.totals;

        let mut family = encoder.encode_descriptor(
            "router_dns_queries",
            "DNS queries received, by transport",
            None,
            MetricType::Counter,
        )?;
        for (transport, value) in [("udp", totals.udp_queries), ("tcp", totals.tcp_queries)] {
            family
                .encode_family(&[("transport", transport)])?
                .encode_counter::<prometheus_client::encoding::NoLabelSet, _, u64>(&value, None)?;
        }

        let mut family = encoder.encode_descriptor(
            "router_dns_results",
            "DNS queries by how they were answered",
            None,
            MetricType::Counter,
        )?;
        for (result, value) in [
            ("cache_hit", totals.cache_hits),
            ("resolved", totals.cache_misses),
            ("stale", totals.stale_answers),
            ("refused", totals.refused),
            ("formerr", totals.formerr),
            ("rate_limited", totals.rate_limited),
            ("dropped", totals.dropped),
            ("truncated", totals.truncated),
            ("servfail", totals.servfail),
            ("nxdomain", totals.nxdomain),
        ] {
            family
                .encode_family(&[("result", result)])?
                .encode_counter::<prometheus_client::encoding::NoLabelSet, _, u64>(&value, None)?;
        }

        for (name, help, value) in [
            (
                "router_dns_cache_hits",
                "Answers served from the cache",
                totals.cache_hits,
            ),
            (
                "router_dns_cache_misses",
                "Questions that needed resolution",
                totals.cache_misses,
            ),
            (
                "router_dns_upstream_errors",
                "Resolutions that reached no upstream or authoritative server",
                totals.upstream_errors,
            ),
            (
                "router_dns_prefetches",
                "Popular entries refreshed before expiry",
                totals.prefetches,
            ),
            (
                "router_dns_udp_segmented_answers",
                "UDP answers that left in one segmented (GSO) send with others to the same client",
                totals.udp_segmented,
            ),
        ] {
            let mut counter = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
            counter
                .encode_counter::<prometheus_client::encoding::NoLabelSet, _, u64>(&value, None)?;
        }

        let mut gauge = encoder.encode_descriptor(
            "router_dns_cache_entries",
            "Entries in the master cache",
            None,
            MetricType::Gauge,
        )?;
        gauge.encode_gauge(&(snapshot.cache_entries as i64))?;

        let mut family = encoder.encode_descriptor(
            "router_dns_upstream_up",
            "1 when the upstream answered its last query",
            None,
            MetricType::Gauge,
        )?;
        for (upstream, up) in &snapshot.upstreams {
            family
                .encode_family(&[("upstream", upstream.as_str())])?
                .encode_gauge(&i64::from(*up))?;
        }

        for (name, help, label, counts) in [
            (
                "router_dns_blocked_by_list",
                "Queries blocked, by the list whose rule decided",
                "list",
                &snapshot.blocked_by_list,
            ),
            (
                "router_dns_blocked_by_group",
                "Queries blocked, by the client's filtering group",
                "group",
                &snapshot.blocked_by_group,
            ),
        ] {
            let mut family = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
            for (key, value) in counts {
                family
                    .encode_family(&[(label, key.as_str())])?
                    .encode_counter::<prometheus_client::encoding::NoLabelSet, _, u64>(value, None)?;
            }
        }
        encode_wireguard(&mut encoder, &snapshot.wireguard)?;
        if let Some(vrrp) = &snapshot.vrrp {
            encode_vrrp(&mut encoder, vrrp)?;
        }
        if let Some(bgp) = &snapshot.bgp {
            encode_bgp(&mut encoder, bgp)?;
        }
        let mut family = encoder.encode_descriptor(
            "router_dns_list_rules",
            "Rules in the copy of each list the filter was built from",
            None,
            MetricType::Gauge,
        )?;
        for (list, rules) in &snapshot.list_rules {
            family
                .encode_family(&[("list", list.as_str())])?
                .encode_gauge(&i64::try_from(*rules).unwrap_or(i64::MAX))?;
        }
        let mut counter = encoder.encode_descriptor(
            "router_dns_blocked",
            "Queries answered with a block",
            None,
            MetricType::Counter,
        )?;
        counter.encode_counter::<prometheus_client::encoding::NoLabelSet, _, u64>(
            &totals.blocked,
            None,
        )?;

        let mut histogram = encoder.encode_descriptor(
            "router_dns_answer_latency_seconds",
            "Time from receiving a query to sending its answer",
            None,
            MetricType::Histogram,
        )?;
        // prometheus-client accumulates the buckets itself: hand it the
        // per-bucket counts, not running totals.
        let buckets: Vec<(f64, u64)> = totals
            .latency_buckets
            .iter()
            .enumerate()
            .map(|(i, count)| {
                let bound = dns::stats::LATENCY_BUCKETS_US
                    .get(i)
                    .map_or(f64::INFINITY, |us| *us as f64 / 1e6);
                (bound, *count)
            })
            .collect();
        let count = totals.latency_buckets.iter().sum();
        histogram.encode_histogram::<prometheus_client::encoding::NoLabelSet>(
            totals.latency_sum_us as f64 / 1e6,
            count,
            &buckets,
            None,
        )?;
        Ok(())
    }
}

/// Per peer: handshake age, bytes each way and whether it is up.
fn encode_vrrp(
    encoder: &mut DescriptorEncoder,
    status: &crate::vrrp::status::VrrpStatus,
) -> Result<(), std::fmt::Error> {
    let mut family = encoder.encode_descriptor(
        "router_vrrp_state",
        "1 for the state each VRRP instance is in",
        None,
        MetricType::Gauge,
    )?;
    for instance in &status.instances {
        for state in ["initialize", "backup", "master", "fault", "down"] {
            family
                .encode_family(&[("instance", instance.name.as_str()), ("state", state)])?
                .encode_gauge(&i64::from(instance.state == state))?;
        }
    }
    let mut family = encoder.encode_descriptor(
        "router_vrrp_priority",
        "The priority each VRRP instance advertises now",
        None,
        MetricType::Gauge,
    )?;
    for instance in &status.instances {
        family
            .encode_family(&[("instance", instance.name.as_str())])?
            .encode_gauge(&i64::from(instance.priority))?;
    }
    for (name, help, pick) in [
        (
            "router_vrrp_transitions",
            "State changes of each VRRP instance",
            (|i| i.transitions) as fn(&crate::vrrp::status::InstanceStatus) -> u64,
        ),
        (
            "router_vrrp_bad_packets",
            "VRRP packets refused (TTL, checksum, version, length)",
            |i| i.bad_packets,
        ),
    ] {
        let mut family = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
        for instance in &status.instances {
            family
                .encode_family(&[("instance", instance.name.as_str())])?
                .encode_counter::<prometheus_client::encoding::NoLabelSet, _, u64>(
                    &pick(instance),
                    None,
                )?;
        }
    }
    Ok(())
}

fn encode_wireguard(
    encoder: &mut DescriptorEncoder,
    status: &crate::wireguard::status::WireguardStatus,
) -> Result<(), std::fmt::Error> {
    use crate::wireguard::health::Verdict;
    let peers: Vec<_> = status
        .tunnels
        .iter()
        .flat_map(|t| t.peers.iter().map(move |p| (t.interface.as_str(), p)))
        .collect();
    if peers.is_empty() {
        return Ok(());
    }
    let mut family = encoder.encode_descriptor(
        "router_wireguard_peer_handshake_age_seconds",
        "Seconds since the peer's latest handshake (absent: never)",
        None,
        MetricType::Gauge,
    )?;
    for (tunnel, peer) in &peers {
        if let Some(age) = peer.latest_handshake_secs_ago {
            family
                .encode_family(&[("tunnel", *tunnel), ("peer", peer.name.as_str())])?
                .encode_gauge(&i64::try_from(age).unwrap_or(i64::MAX))?;
        }
    }
    for (name, help, pick) in [
        (
            "router_wireguard_peer_receive_bytes",
            "Bytes received from the peer",
            (|p| p.rx_bytes) as fn(&crate::wireguard::status::PeerStatus) -> u64,
        ),
        (
            "router_wireguard_peer_transmit_bytes",
            "Bytes sent to the peer",
            |p| p.tx_bytes,
        ),
    ] {
        let mut family = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
        for (tunnel, peer) in &peers {
            family
                .encode_family(&[("tunnel", *tunnel), ("peer", peer.name.as_str())])?
                .encode_counter::<prometheus_client::encoding::NoLabelSet, _, u64>(
                    &pick(peer),
                    None,
                )?;
        }
    }
    let mut family = encoder.encode_descriptor(
        "router_wireguard_peer_up",
        "1 when the peer was heard from within its tunnel's stale_after",
        None,
        MetricType::Gauge,
    )?;
    for (tunnel, peer) in &peers {
        family
            .encode_family(&[("tunnel", *tunnel), ("peer", peer.name.as_str())])?
            .encode_gauge(&i64::from(peer.verdict == Verdict::Up))?;
    }
    Ok(())
}

/// Per BGP peer: whether the session is up and its prefix counts.
fn encode_bgp(
    encoder: &mut DescriptorEncoder,
    status: &crate::bgp::status::BgpStatus,
) -> Result<(), std::fmt::Error> {
    let mut family = encoder.encode_descriptor(
        "router_bgp_peer_established",
        "1 when the session with the peer is Established",
        None,
        MetricType::Gauge,
    )?;
    for peer in &status.peers {
        family
            .encode_family(&[("peer", peer.name.as_str())])?
            .encode_gauge(&i64::from(peer.state == "Established"))?;
    }
    for (name, help, pick) in [
        (
            "router_bgp_peer_prefixes_received",
            "Prefixes the peer announces now",
            (|p| p.prefixes_received) as fn(&crate::bgp::status::PeerStatus) -> usize,
        ),
        (
            "router_bgp_peer_prefixes_accepted",
            "Prefixes of the peer that import policy accepted",
            |p| p.prefixes_accepted,
        ),
        (
            "router_bgp_peer_prefixes_advertised",
            "Prefixes advertised to the peer",
            |p| p.prefixes_advertised,
        ),
    ] {
        let mut family = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
        for peer in &status.peers {
            family
                .encode_family(&[("peer", peer.name.as_str())])?
                .encode_gauge(&i64::try_from(pick(peer)).unwrap_or(i64::MAX))?;
        }
    }
    Ok(())
}

async fn metrics(State(registry): State<Arc<Registry>>) -> impl IntoResponse {
    let mut body = String::new();
    match prometheus_client::encoding::text::encode(&mut body, &registry) {
        Ok(()) => (
            StatusCode::OK,
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            body,
        ),
        Err(_) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            [(header::CONTENT_TYPE, "text/plain")],
            "encoding failed\n".to_string(),
        ),
    }
}

/// Binds the metrics listener (separately from serving, so the daemon can
/// fail before it starts anything).
pub async fn bind(addr: SocketAddr) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("cannot bind the metrics listener on {addr}: {e}"))
}

/// Serves `/metrics` on `listener` until the process ends.
pub fn serve(listener: TcpListener, shared: Arc<Shared>) {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(DnsCollector { shared }));
    let app = Router::new()
        .route("/metrics", get(metrics))
        .with_state(Arc::new(registry));
    if let Ok(addr) = listener.local_addr() {
        info!(%addr, "metrics at http://{addr}/metrics");
    }
    tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, app).await {
            warn!(%error, "metrics listener stopped");
        }
    });
}

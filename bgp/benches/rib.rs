//! RIB benchmarks at full-table scale: a million IPv4 /24s from one eBGP
//! peer through import policy, Adj-RIB-In and Loc-RIB; the same prefixes
//! from a second peer with a longer path (no best moves); the first peer's
//! session going down (every best moves); and what a third peer is sent.
//!
//! `cargo bench -p bgp --bench rib`. Each iteration handles the whole
//! million, so the time shown is per million prefixes (and the throughput
//! line per prefix).

#![allow(clippy::unwrap_used, clippy::expect_used)] // benchmark setup

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration;

use bgp::policy::{Import, Policy, PrefixList};
use bgp::rib::{AdjRibIn, BestChange, LocRib};
use bgp::rib_out::{AdjRibOut, NextHops};
use bgp::route::{AsPath, Asn, Origin, PathAttributes, PeerInfo, Update};
use criterion::{BatchSize, Criterion, SamplingMode, Throughput};
use ipnet::{IpNet, Ipv4Net};

const PREFIXES: u32 = 1_000_000;
/// About what fits one 4096-byte UPDATE of /24s.
const PER_UPDATE: usize = 500;
const LOCAL_ASN: Asn = 65000;

fn peer(n: u8, asn: Asn) -> PeerInfo {
    PeerInfo {
        address: IpAddr::V4(Ipv4Addr::new(192, 0, 2, n)),
        router_id: Ipv4Addr::new(10, 0, 0, n),
        asn,
        ebgp: true,
    }
}

/// The table as `from` sends it: UPDATEs of `PER_UPDATE` prefixes, each
/// with its own attributes (a path of `path_len` ASes), as the decoder
/// hands them over.
fn table(from: &PeerInfo, path_len: usize) -> Vec<Update> {
    let prefixes: Vec<IpNet> = (0..PREFIXES)
        .map(|i| {
            let address = Ipv4Addr::from_bits(0x0100_0000 + (i << 8));
            IpNet::V4(Ipv4Net::new(address, 24).unwrap())
        })
        .collect();
    prefixes
        .chunks(PER_UPDATE)
        .enumerate()
        .map(|(n, chunk)| {
            let mut path = vec![from.asn];
            path.extend((1..path_len).map(|k| 4_200_000_000 + ((n * 7 + k) % 1000) as Asn));
            Update {
                withdrawn: Vec::new(),
                announced: chunk.to_vec(),
                attributes: Some(Arc::new(PathAttributes {
                    origin: Origin::Igp,
                    as_path: AsPath::sequence(path),
                    next_hop: from.address,
                    med: None,
                    local_pref: None,
                    communities: vec![(from.asn << 16) | 100],
                })),
            }
        })
        .collect()
}

/// Speaker state: the Loc-RIB and each peer's Adj-RIB-In.
#[derive(Clone)]
struct Ribs {
    loc: LocRib,
    peers: Vec<AdjRibIn>,
}

/// Feeds a peer's UPDATEs through import into its Adj-RIB-In and the
/// Loc-RIB; returns how many bests moved.
fn receive(ribs: &mut Ribs, index: usize, updates: &[Update], policy: &Policy) -> usize {
    let adj = &mut ribs.peers[index];
    let import = Import::new(LOCAL_ASN, adj.peer().ebgp, Some(policy));
    let mut moved = 0;
    for update in updates {
        moved += adj.apply(update, &import, &mut ribs.loc).len();
        // As the speaker does once the changes are exported.
        ribs.loc.sweep();
    }
    moved
}

fn main() {
    let (a, b, c) = (peer(1, 65001), peer(2, 65002), peer(3, 65003));
    let from_a = table(&a, 2);
    let from_b = table(&b, 4);
    let policy = Policy {
        prefixes: Some(PrefixList::parse(["permit 0.0.0.0/0 le 24"]).unwrap()),
        ..Policy::default()
    };
    let empty = Ribs {
        loc: LocRib::new(),
        peers: vec![AdjRibIn::new(a), AdjRibIn::new(b)],
    };
    let mut one = empty.clone();
    assert_eq!(receive(&mut one, 0, &from_a, &policy), PREFIXES as usize);
    let mut two = one.clone();
    assert_eq!(receive(&mut two, 1, &from_b, &policy), 0);
    // The changes name routes in the Loc-RIB that returned them.
    let mut without_a = two.loc.clone();
    let moved: Vec<BestChange> = without_a.remove_peer(a.address);
    assert_eq!(moved.len(), PREFIXES as usize);
    let next_hops = NextHops {
        ipv4: Some(Ipv4Addr::new(192, 0, 2, 100)),
        ipv6: None,
    };
    let to_c = AdjRibOut::new(LOCAL_ASN, c, next_hops, Some(&policy));
    assert_eq!(
        to_c.updates(&without_a, &moved)
            .iter()
            .map(|u| u.announced.len())
            .sum::<usize>(),
        PREFIXES as usize
    );

    let mut crit = Criterion::default().configure_from_args();
    let mut group = crit.benchmark_group("rib_1m_ipv4");
    group
        .sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(8))
        .throughput(Throughput::Elements(u64::from(PREFIXES)));
    // Results are returned, not dropped, so freeing the tables is not timed.
    group.bench_function("insert_first_peer", |bench| {
        bench.iter_batched(
            || empty.clone(),
            |mut ribs| {
                black_box(receive(&mut ribs, 0, &from_a, &policy));
                ribs
            },
            BatchSize::PerIteration,
        )
    });
    group.bench_function("insert_second_peer_longer_path", |bench| {
        bench.iter_batched(
            || one.clone(),
            |mut ribs| {
                black_box(receive(&mut ribs, 1, &from_b, &policy));
                ribs
            },
            BatchSize::PerIteration,
        )
    });
    group.bench_function("remove_first_peer", |bench| {
        bench.iter_batched(
            || two.loc.clone(),
            |mut loc| {
                let moved = loc.remove_peer(a.address);
                (loc, moved)
            },
            BatchSize::PerIteration,
        )
    });
    group.bench_function("export_moved_bests_to_third_peer", |bench| {
        bench.iter(|| to_c.updates(&without_a, black_box(&moved)))
    });
    group.bench_function("export_full_table_to_third_peer", |bench| {
        bench.iter(|| to_c.full_table(black_box(&one.loc)))
    });
    group.finish();
    crit.final_summary();
}

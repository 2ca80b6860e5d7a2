//! Benchmarks of the per-packet fast path: parsing, allow list, rate limit,
//! and the whole cache-hit path (key, lookup, response).
//!
//! `cargo bench -p dns --bench fastpath` (add `-- --quick` for a short run).

#![allow(clippy::unwrap_used, clippy::expect_used)] // benchmark setup

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use dns::fastpath::{
    AllowList, CachedAnswer, KeyBuf, Lookup, RateLimiter, WorkerCache, cache_key, parse_query,
};
use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query};
use hickory_proto::rr::rdata::{A, CNAME};
use hickory_proto::rr::{Name, RData, Record, RecordType};

/// A typical stub query: `www.example.com A`, RD, EDNS 1232, with the
/// question in mixed case as 0x20-randomising forwarders send it.
fn query_packet() -> Vec<u8> {
    let mut m = Message::new(0x1234, MessageType::Query, OpCode::Query);
    m.metadata.recursion_desired = true;
    m.add_query(Query::query(
        Name::from_str("www.example.com.").unwrap(),
        RecordType::A,
    ));
    let mut e = Edns::new();
    e.set_max_payload(1232);
    m.set_edns(e);
    let mut v = m.to_vec().unwrap();
    for b in &mut v[13..16] {
        *b = b.to_ascii_uppercase();
    }
    v
}

/// A realistic answer: a CNAME to a CDN name and two A records, EDNS.
fn response_packet() -> Vec<u8> {
    let mut m = Message::new(0x1234, MessageType::Response, OpCode::Query);
    m.metadata.recursion_desired = true;
    m.metadata.recursion_available = true;
    let qname = Name::from_str("www.example.com.").unwrap();
    let target = Name::from_str("www.example.com.cdn.example.net.").unwrap();
    m.add_query(Query::query(qname.clone(), RecordType::A));
    m.add_answer(Record::from_rdata(
        qname,
        3600,
        RData::CNAME(CNAME(target.clone())),
    ));
    for i in 1..=2 {
        m.add_answer(Record::from_rdata(
            target.clone(),
            300,
            RData::A(A(Ipv4Addr::new(192, 0, 2, i))),
        ));
    }
    let mut e = Edns::new();
    e.set_max_payload(1232);
    m.set_edns(e);
    m.to_vec().unwrap()
}

fn benches(c: &mut Criterion) {
    let qp = query_packet();
    c.bench_function("parse_query", |b| {
        b.iter(|| parse_query(black_box(&qp)).unwrap())
    });

    let t0 = Instant::now();
    let answer = Arc::new(CachedAnswer::from_response(&response_packet(), t0, (0, 86400)).unwrap());
    let q = parse_query(&qp).unwrap();
    let mut kb = KeyBuf::new();
    let mut cache = WorkerCache::new(100_000, 86400);
    // A cache with other entries in it, so the lookup is not trivially hot.
    for i in 0..50_000u32 {
        cache.insert(
            format!("\x05k{i:04}\x03com\x00\x00\x01\x00\x01\x00")
                .into_bytes()
                .into_boxed_slice(),
            answer.clone(),
        );
    }
    cache.insert(cache_key(&q, &mut kb).into(), answer.clone());
    let mut out = Vec::with_capacity(1500);
    let now = t0 + Duration::from_secs(10);

    c.bench_function("write_response", |b| {
        b.iter(|| answer.write_response(black_box(&q), &qp, now, 1232, 1232, &mut out))
    });

    c.bench_function("cache_hit_path", |b| {
        b.iter(|| {
            let q = parse_query(black_box(&qp)).unwrap();
            let key = cache_key(&q, &mut kb);
            match cache.get(key, now) {
                Lookup::Fresh(a, _) => a.write_response(&q, &qp, now, 1232, 1232, &mut out),
                _ => unreachable!(),
            }
        })
    });

    let acl = AllowList::default_private();
    let v4 = IpAddr::V4(Ipv4Addr::new(192, 168, 1, 20));
    let v6 = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1));
    c.bench_function("allowlist_v4", |b| b.iter(|| acl.allows(black_box(v4))));
    c.bench_function("allowlist_v6_denied", |b| {
        b.iter(|| acl.allows(black_box(v6)))
    });

    let mut rl = RateLimiter::new(1_000_000_000, 1_000_000, 100_000);
    let mut i = 0u32;
    c.bench_function("ratelimit_check_1k_clients", |b| {
        b.iter(|| {
            i = i.wrapping_add(1);
            let ip = IpAddr::V4(Ipv4Addr::from(0x0a00_0000 | (i & 1023)));
            rl.check(black_box(ip), now)
        })
    });
}

criterion_group!(fastpath, benches);
criterion_main!(fastpath);

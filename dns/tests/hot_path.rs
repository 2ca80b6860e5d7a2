//! The cache-hit path's promise, checked: once warm, answering from the
//! cache allocates nothing. A counting global allocator (this test binary
//! only) watches the exact sequence a UDP worker runs per packet.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test setup

use std::alloc::{GlobalAlloc, Layout, System};
use std::net::{IpAddr, Ipv4Addr};
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use dns::fastpath::{
    AllowList, CachedAnswer, KeyBuf, Lookup, RateLimiter, WorkerCache, cache_key, parse_query,
};
use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query};
use hickory_proto::rr::rdata::A;
use hickory_proto::rr::{Name, RData, Record, RecordType};

struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator unchanged; only counts calls.
#[allow(unsafe_code)] // reason: a global allocator is an unsafe trait
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as our caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as our caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn message(kind: MessageType, id: u16, name: &str) -> Message {
    let mut m = Message::new(id, kind, OpCode::Query);
    m.metadata.recursion_desired = true;
    m.add_query(Query::query(Name::from_str(name).unwrap(), RecordType::A));
    let mut edns = Edns::new();
    edns.set_max_payload(1232);
    m.set_edns(edns);
    m
}

#[test]
fn a_cache_hit_allocates_nothing() {
    let mut response = message(MessageType::Response, 1, "www.example.com.");
    response.metadata.recursion_available = true;
    response.add_answer(Record::from_rdata(
        Name::from_str("www.example.com.").unwrap(),
        300,
        RData::A(A(Ipv4Addr::new(192, 0, 2, 1))),
    ));
    let now = Instant::now();
    let answer =
        CachedAnswer::from_response(&response.to_vec().unwrap(), now, (0, 86_400)).unwrap();
    // The client asks in its own case, with its own ID.
    let mut query = message(MessageType::Query, 0x4242, "www.example.com.")
        .to_vec()
        .unwrap();
    // hickory writes names in lower case; a 0x20 client would not.
    query[13..16].copy_from_slice(b"WwW");

    let mut cache = WorkerCache::new(1024, 3600);
    let mut key = KeyBuf::default();
    let parsed = parse_query(&query).unwrap();
    cache.insert(Box::from(cache_key(&parsed, &mut key)), Arc::new(answer));
    let allow = AllowList::default_private();
    let mut limiter = RateLimiter::new(0, 0, 1024);
    let client = IpAddr::V4(Ipv4Addr::new(192, 168, 1, 20));
    let mut out = Vec::with_capacity(4096);

    let later = now + Duration::from_secs(5);
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    for _ in 0..1000 {
        assert!(limiter.check(client, later));
        let parsed = parse_query(&query).unwrap();
        assert!(allow.allows(client));
        let key = cache_key(&parsed, &mut key);
        let Lookup::Fresh(cached, _) = cache.get(key, later) else {
            panic!("expected a hit");
        };
        cached.write_response(&parsed, &query, later, 1232, 1232, &mut out);
    }
    let allocations = ALLOCATIONS.load(Ordering::Relaxed) - before;
    assert_eq!(allocations, 0, "allocations on 1000 cache hits");

    // And the answer is the client's: its ID, its case, the TTL aged.
    let served = Message::from_vec(&out).unwrap();
    assert_eq!(served.metadata.id, 0x4242);
    assert_eq!(&query[13..16], b"WwW", "the test query is in mixed case");
    assert_eq!(
        out[12..29],
        query[12..29],
        "the question as the client wrote it"
    );
    assert_eq!(served.answers[0].ttl, 295);
}

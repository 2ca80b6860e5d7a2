//! Allocation-free pieces of the cache-hit path.
//!
//! Per UDP packet the worker does:
//!
//! 1. [`wire::parse_query`]: header and question into a stack-only
//!    [`QueryView`]; drop or header-only error on failure
//!    ([`WireError::reply_rcode`], [`synth::header_only`]).
//! 2. [`acl::AllowList::allows`]: REFUSED ([`synth::error_response`]) for
//!    clients outside the allow list.
//! 3. [`ratelimit::RateLimiter::check`]: drop when over the limit.
//! 4. BADVERS / NOTIMP / ANY ([`synth`]) for queries we answer ourselves.
//! 5. [`wire::cache_key`] + [`cache::WorkerCache::get`]: on a fresh hit,
//!    [`answer::CachedAnswer::write_response`] into a reused buffer.
//!
//! Nothing here locks, allocates per packet, or uses `unsafe`.

#![forbid(unsafe_code)]

pub mod acl;
pub mod answer;
pub mod blocked;
pub mod cache;
pub mod ratelimit;
pub mod synth;
pub mod wire;

pub use acl::AllowList;
pub use answer::{CachedAnswer, STALE_TTL, Served};
pub use cache::{CacheStats, Lookup, Slot, WorkerCache};
pub use ratelimit::RateLimiter;
pub use wire::{Edns, KeyBuf, QueryView, WireError, cache_key, parse_query};

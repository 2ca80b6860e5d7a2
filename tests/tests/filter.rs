//! End-to-end filtering suite: routerd in the zones lab (homelab.toml as
//! its policy, so clients belong to zones by address), forwarding to an
//! NSD on the wan host, with blocklists and allowlists as local files.
//!
//! `groups` checks what each zone's clients get; `lists` checks refreshes
//! (bad copies refused, no query lost while the filter is swapped);
//! `log` checks the query log across restarts and its retention.

// Test harness: a failed unwrap is a failed test, with the message we want.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "filter/common.rs"]
mod common;
#[path = "filter/groups.rs"]
mod groups;
#[path = "filter/lists.rs"]
mod lists;
#[path = "filter/log.rs"]
mod log;

//! Filtering: blocklists and allowlists compiled into one compact set, and
//! the groups that decide which lists apply to which clients.
//!
//! ```text
//!  list files ──list::parse──▶ rules ──set::FilterSetBuilder──▶ FilterSet
//!                                                     (sorted 64-bit fingerprints
//!                                                      of wire-form names + regexes)
//!  client IP ──groups::Groups──▶ group ──FilterSet::check──▶ Match (or none)
//! ```
//!
//! A worker checks the question's name before its cache: a block is
//! answered from the fast path, and an allowed name goes on as usual.

pub mod groups;
pub mod list;
pub mod name;
pub mod safesearch;
pub mod set;
#[doc(hidden)]
pub mod testdata;

pub use groups::{Client, Filter, Group, ListLoad, MAX_GROUPS, NO_ZONE, Screened};

/// Most lists a configuration may declare (a list index is a byte).
pub const MAX_LISTS: usize = 256;
pub use list::{Action, ListSummary, Malformed, ParseOptions, Pattern, Rule, Scope};
pub use set::{FilterSet, FilterSetBuilder, ListInfo, ListMask, Match, MatchKind};

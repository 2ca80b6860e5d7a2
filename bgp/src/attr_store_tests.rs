#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use super::*;
use crate::route::{AsPath, Asn};

fn attrs(path: &[Asn]) -> Arc<PathAttributes> {
    Arc::new(crate::test_support::attrs(path))
}

#[test]
fn equal_sets_share_one_id_and_one_arc() {
    let mut store = AttrStore::default();
    let a = store.intern(attrs(&[65001]));
    let b = store.intern(attrs(&[65002]));
    // Equal to the first but neither the last nor the same Arc.
    let again = store.intern(attrs(&[65001]));
    assert_eq!(a, again);
    assert_ne!(a, b);
    assert_eq!(store.len(), 2);
    assert_eq!(store.get(a).as_path, AsPath::sequence([65001]));
    let first = Arc::clone(store.get(a));
    store.intern(attrs(&[65001]));
    assert!(Arc::ptr_eq(&first, store.get(a)));
}

#[test]
fn sweep_frees_only_unheld_sets_and_reuses_their_ids() {
    let mut store = AttrStore::default();
    let n = 4 * MIN_SWEEP as u32;
    let ids: Vec<AttrId> = (0..n).map(|i| store.intern(attrs(&[65001, i]))).collect();
    for id in &ids {
        store.hold(*id);
    }
    // Unheld sets below the threshold stay.
    for id in &ids[..MIN_SWEEP - 1] {
        store.release(*id);
    }
    store.sweep();
    assert_eq!(store.len(), n as usize);
    // Half of them unheld: swept, the held ones untouched.
    for id in &ids[MIN_SWEEP - 1..n as usize / 2] {
        store.release(*id);
    }
    store.sweep();
    assert_eq!(store.len(), n as usize / 2);
    for (i, id) in ids.iter().enumerate().skip(n as usize / 2) {
        assert_eq!(store.get(*id).as_path, AsPath::sequence([65001, i as u32]));
        // Still found by content after the removals around it.
        assert_eq!(store.intern(attrs(&[65001, i as u32])), *id);
    }
    // A set held twice and released once is still held.
    let twice = ids[n as usize - 1];
    store.hold(twice);
    store.release(twice);
    let fresh = store.intern(attrs(&[1, 2, 3]));
    assert!(
        ids[..n as usize / 2].contains(&fresh),
        "a freed id is reused"
    );
    assert_eq!(store.get(fresh).as_path, AsPath::sequence([1, 2, 3]));
    assert_eq!(store.get(twice).as_path, AsPath::sequence([65001, n - 1]));
}

#[test]
fn a_swept_set_interned_again_is_stored_anew() {
    let mut store = AttrStore::default();
    let ids: Vec<AttrId> = (0..MIN_SWEEP as u32)
        .map(|i| store.intern(attrs(&[i])))
        .collect();
    // The last one interned is also the interner's shortcut.
    store.sweep();
    assert_eq!(store.len(), 0);
    let again = store.intern(attrs(&[MIN_SWEEP as u32 - 1]));
    assert!(ids.contains(&again));
    assert_eq!(
        store.get(again).as_path,
        AsPath::sequence([MIN_SWEEP as u32 - 1])
    );
    assert_eq!(store.len(), 1);
}

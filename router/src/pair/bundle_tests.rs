#![allow(clippy::unwrap_used, clippy::expect_used)] // tests

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::*;
use crate::pair::service::stage_and_commit;
use crate::pair::store::Store;

const TOKEN: &str = "0123456789abcdef0123456789abcdef";

/// A primary's configuration directory and a standby's, side by side.
struct Pair {
    _dir: tempfile::TempDir,
    primary: PathBuf,
    standby: PathBuf,
    state: PathBuf,
}

fn write(path: &Path, text: &str) {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    std::fs::write(path, text).unwrap();
}

fn primary_text(record: &str) -> String {
    format!(
        r#"[dns]
listen = ["127.0.0.1:5353"]
mode = "forward"
upstreams = [{{ address = "127.0.0.1:5300" }}]

[[dns.local_records]]
name = "nas.home.arpa"
type = "A"
value = "{record}"

[[dns.filter.lists]]
name = "house"
path = "lists/house.txt"

[control]
socket = "/run/primary.sock"
"#
    )
}

impl Pair {
    fn new() -> Pair {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_path_buf();
        let token = root.join("pair.token");
        write(&token, TOKEN);
        std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o600)).unwrap();
        let primary = root.join("primary/router.toml");
        write(&primary, &primary_text("192.168.1.10"));
        write(&root.join("primary/lists/house.txt"), "ads.example\n");
        let state = root.join("standby-state");
        let standby = root.join("standby/router.toml");
        write(
            &standby,
            &format!(
                r#"[dns]
listen = ["127.0.0.2:5353"]
mode = "forward"
upstreams = [{{ address = "127.0.0.1:5301" }}]

[control]
socket = "/run/standby.sock"

[pair]
role = "standby"
peer = "127.0.0.1:8054"
token_file = "{}"
state_dir = "{}"
"#,
                token.display(),
                state.display()
            ),
        );
        Pair {
            _dir: dir,
            primary,
            standby,
            state,
        }
    }
}

fn records(config: &crate::config::Config) -> Vec<String> {
    config
        .dns
        .local_records
        .iter()
        .map(|r| format!("{} {:?}", r.name, r.data))
        .collect()
}

#[test]
fn the_bundle_holds_the_file_and_what_it_refers_to() {
    let pair = Pair::new();
    let bundle = Bundle::collect(&pair.primary).unwrap();
    let paths: Vec<&Path> = bundle.files.iter().map(|f| f.path.as_path()).collect();
    assert!(paths.contains(&pair.primary.as_path()), "{paths:?}");
    assert!(
        paths.iter().any(|p| p.ends_with("lists/house.txt")),
        "{paths:?}"
    );
    assert_eq!(bundle.files.len(), 2, "{paths:?}");
    bundle.verify().unwrap();
    // Same files, same version; a changed list, a new one.
    assert_eq!(
        Bundle::collect(&pair.primary).unwrap().version,
        bundle.version
    );
    write(
        &pair.primary.with_file_name("lists/house.txt"),
        "ads.example\ntracker.example\n",
    );
    assert_ne!(
        Bundle::collect(&pair.primary).unwrap().version,
        bundle.version
    );
}

#[test]
fn a_broken_primary_file_is_not_handed_out() {
    let pair = Pair::new();
    write(&pair.primary, &primary_text("not-an-address"));
    let error = Bundle::collect(&pair.primary).unwrap_err().to_string();
    assert!(error.contains("router.toml:"), "{error}");
    assert!(error.contains("not-an-address"), "{error}");
}

#[test]
fn tampered_or_escaping_bundles_are_refused() {
    let pair = Pair::new();
    let bundle = Bundle::collect(&pair.primary).unwrap();
    let mut tampered = bundle.clone();
    tampered.files[0].content.push_str("\n# changed\n");
    assert!(
        tampered
            .verify()
            .unwrap_err()
            .to_string()
            .contains("does not match")
    );
    let mut escaping = bundle.clone();
    escaping.files[0].path = PathBuf::from("/etc/../../root/.ssh/authorized_keys");
    escaping.version = version_of(&escaping.config_path, &escaping.files);
    assert!(
        escaping
            .verify()
            .unwrap_err()
            .to_string()
            .contains("plain absolute")
    );
}

#[test]
fn the_standby_takes_the_shared_part_and_keeps_its_own() {
    let pair = Pair::new();
    let before = crate::config::load(&pair.standby).unwrap();
    assert!(records(&before).is_empty());
    let bundle = Bundle::collect(&pair.primary).unwrap();
    let store = Store::new(&pair.state);
    assert_eq!(
        stage_and_commit(&store, &pair.standby, &bundle).unwrap(),
        None
    );
    assert_eq!(store.current().unwrap().version, bundle.version);

    let after = crate::config::load(&pair.standby).unwrap();
    // The primary's records, upstreams and lists ...
    assert_eq!(records(&after).len(), 1, "{:?}", records(&after));
    assert!(records(&after)[0].contains("192.168.1.10"));
    assert_eq!(
        after.dns.upstreams,
        crate::config::load_local(&pair.primary)
            .unwrap()
            .dns
            .upstreams
    );
    assert_eq!(after.filter.lists.len(), 1);
    // ... read from the standby's copy, under a path that stays the same
    // across versions ...
    let list = format!("{:?}", after.filter.lists[0].source);
    assert!(list.contains("standby-state/current/files"), "{list}");
    // ... and its own addresses, control socket and pair.
    assert_eq!(after.dns.listen, before.dns.listen);
    assert_eq!(after.control_socket, before.control_socket);
    assert_eq!(after.pair, before.pair);
    assert_eq!(after.filter.lists_dir, before.filter.lists_dir);
}

#[test]
fn a_copy_that_does_not_check_leaves_the_last_good_one() {
    let pair = Pair::new();
    let store = Store::new(&pair.state);
    let good = Bundle::collect(&pair.primary).unwrap();
    stage_and_commit(&store, &pair.standby, &good).unwrap();

    // A bundle that verifies but whose file does not check (as if the
    // primary ran another version with other rules).
    let mut broken = good.clone();
    let config = broken
        .files
        .iter_mut()
        .find(|f| f.path == broken.config_path)
        .unwrap();
    config.content = primary_text("not-an-address");
    broken.version = version_of(&broken.config_path, &broken.files);
    broken.verify().unwrap();
    let error = stage_and_commit(&store, &pair.standby, &broken).unwrap_err();
    assert!(error.contains("not-an-address"), "{error}");
    assert_eq!(store.current().unwrap().version, good.version);
    assert!(!store.version_dir(&broken.version).exists());
    let config = crate::config::load(&pair.standby).unwrap();
    assert!(records(&config)[0].contains("192.168.1.10"));

    // A newer good one replaces it, and the old can be restored.
    write(&pair.primary, &primary_text("192.168.1.11"));
    let newer = Bundle::collect(&pair.primary).unwrap();
    let previous = stage_and_commit(&store, &pair.standby, &newer).unwrap();
    assert_eq!(previous.as_deref(), Some(good.version.as_str()));
    assert!(records(&crate::config::load(&pair.standby).unwrap())[0].contains("192.168.1.11"));
    store.restore(previous.as_deref()).unwrap();
    assert!(records(&crate::config::load(&pair.standby).unwrap())[0].contains("192.168.1.10"));
}

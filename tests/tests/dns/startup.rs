//! A daemon that cannot start everything starts nothing: it exits with a
//! message naming what failed, and leaves no socket behind for the next
//! attempt to trip over.

use e2e::RouterdConfig;

use crate::common::{ROUTERD_TOOLS, setup};

#[test]
fn a_failed_start_leaves_nothing_running() {
    if !e2e::require(ROUTERD_TOOLS) {
        return;
    }
    let s = setup();
    // An address the router's namespace does not have: the metrics
    // listener cannot bind, after the control socket already did.
    let config = RouterdConfig::recursive(&s.dns)
        .with(|c| c.metrics_listen = Some("10.53.99.99:9153".parse().unwrap()));
    let control = config.control_socket_on(&s.router);
    let path = RouterdConfig::config_path_on(&s.router);
    std::fs::write(&path, config.to_toml(&control)).unwrap();
    let routerd = e2e::routerd::binary().unwrap();
    let out = s
        .router
        .exec(
            &routerd.to_string_lossy(),
            &["--config", &path.to_string_lossy()],
        )
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("cannot bind the metrics listener on 10.53.99.99:9153"),
        "{stderr}"
    );
    assert!(!control.exists(), "the control socket was left behind");
    // Port 53 was never served: nothing answers there.
    let probe = s.client.dig(
        config.listen[0].ip(),
        &e2e::Query::new("www.plain.lab", "A").timeout(1),
    );
    assert!(probe.is_err(), "{probe:?}");

    // The same file with the problem fixed starts normally.
    let fixed = config.with(|c| c.metrics_listen = None);
    let mut r = fixed.start(&s.router).unwrap();
    r.check_running().unwrap();
}

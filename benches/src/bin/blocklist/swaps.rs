//! What a list refresh costs the queries in flight: routerd with the whole
//! list answers the allowed-names load twice, once quietly and once while
//! its list file changes and `routerctl dns refresh` swaps in a newly
//! compiled set every [`SWAP_EVERY`].

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use benches::dnsperf::{LoadShape, Measured, measure};
use e2e::Host;

use crate::rounds::{Job, Queries, QueryFiles};
use crate::servers::Kind;

/// How often the list is swapped during the measured run.
const SWAP_EVERY: Duration = Duration::from_secs(2);

/// The quiet run and the swapping one, with the swaps' own timings.
#[derive(Debug)]
pub struct SwapRuns {
    pub quiet: Measured,
    pub swapping: Measured,
    /// Wall time of each `routerctl dns refresh` (fetch, compile, swap).
    pub refresh_s: Vec<f64>,
}

/// Runs both, against routerd with the list, if it is among `jobs`.
pub fn measure_swaps(
    client: &Host,
    jobs: &[Job],
    files: &QueryFiles,
    shape: &LoadShape,
    list: &Path,
    socket: &Path,
    dir: &Path,
) -> Result<Option<SwapRuns>> {
    let Some(job) = jobs
        .iter()
        .find(|j| j.kind == Kind::Routerd && j.list && j.queries == Queries::Allowed)
    else {
        return Ok(None);
    };
    let file = files.get(Queries::Allowed);
    // Two versions of the list that differ by one line, prepared before
    // the run so that a swap costs routerd's refresh, not our writing.
    let original = dir.join("swap-a.hosts");
    let changed = dir.join("swap-b.hosts");
    std::fs::copy(list, &original).context("copying the list")?;
    std::fs::copy(list, &changed).context("copying the list")?;
    {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new().append(true).open(&changed)?;
        writeln!(f, "0.0.0.0 swapped.example")?;
    }

    let quiet = measure(
        client,
        job.server(),
        shape,
        &file.path,
        file.queries,
        &dir.join("swap-quiet.out"),
    )?;

    let stop = Arc::new(AtomicBool::new(false));
    let swapper = {
        let stop = Arc::clone(&stop);
        let (list, socket) = (list.to_path_buf(), socket.to_path_buf());
        std::thread::spawn(move || swap_until(&stop, &list, &[changed, original], &socket))
    };
    let swapping = measure(
        client,
        job.server(),
        shape,
        &file.path,
        file.queries,
        &dir.join("swap-busy.out"),
    );
    stop.store(true, Ordering::SeqCst);
    let refresh_s = swapper
        .join()
        .map_err(|_| anyhow::anyhow!("the swapping thread panicked"))??;
    if refresh_s.is_empty() {
        bail!("no swap happened during the run");
    }
    Ok(Some(SwapRuns {
        quiet,
        swapping: swapping?,
        refresh_s,
    }))
}

/// Puts the versions in place in turn and has routerd refresh, until told
/// to stop; returns each refresh's wall time.
fn swap_until(
    stop: &AtomicBool,
    list: &Path,
    versions: &[PathBuf; 2],
    socket: &Path,
) -> Result<Vec<f64>> {
    let routerctl = e2e::routerd::routerctl_binary()?;
    let mut times = Vec::new();
    let mut next = 0;
    // Let the load settle first.
    std::thread::sleep(SWAP_EVERY / 2);
    while !stop.load(Ordering::SeqCst) {
        let staged = list.with_extension("staged");
        let _ = std::fs::remove_file(&staged);
        std::fs::hard_link(&versions[next % 2], &staged)?;
        std::fs::rename(&staged, list)?;
        next += 1;
        let started = Instant::now();
        let out = std::process::Command::new(&routerctl)
            .args([
                "--socket",
                &socket.to_string_lossy(),
                "--json",
                "dns",
                "refresh",
            ])
            .output()
            .context("running routerctl dns refresh")?;
        if !out.status.success() || !String::from_utf8_lossy(&out.stdout).contains("updated") {
            bail!(
                "refresh {next} did not update the list: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        times.push(started.elapsed().as_secs_f64());
        let rest = SWAP_EVERY.saturating_sub(started.elapsed());
        let until = Instant::now() + rest;
        while Instant::now() < until && !stop.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    Ok(times)
}

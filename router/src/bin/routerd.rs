//! `routerd`: the appliance daemon.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};
use router::config::{self, DEFAULT_CONFIG_PATH};
use tracing_subscriber::EnvFilter;

/// Logging when RUST_LOG is unset: our own info, and only problems from
/// hickory, whose recursor logs every failed sub-query as a warning.
const DEFAULT_LOG_FILTER: &str =
    "info,hickory_server=warn,hickory_resolver=error,hickory_net=error";

/// The homelab router and DNS appliance daemon.
#[derive(Debug, Parser)]
#[command(
    name = "routerd",
    version,
    after_long_help = "Files: /etc/router/router.toml (the configuration), /etc/router/policies/ \
(zones and firewall rules), /var/lib/router/ (list copies, the query log, the pair's copies), \
/run/router/control.sock (the control API routerctl talks to). \
The package runs routerd as the systemd unit router.service: `systemctl reload router` \
re-reads the configuration, `journalctl -u router` shows its log."
)]
struct Cli {
    /// Configuration file.
    #[arg(long, short, global = true, env = "ROUTER_CONFIG", default_value = DEFAULT_CONFIG_PATH)]
    config: PathBuf,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the daemon in the foreground (the default).
    Run,
    /// Check the configuration file and the policy it names, and exit: 0
    /// when valid, 1 with the file, line and column of the problems
    /// otherwise.
    Check,
    /// Start a self-contained demo on loopback: a small DNS hierarchy and
    /// the resolver recursing from it. Needs root (it serves port 53).
    Demo,
}

fn main() -> ExitCode {
    if let Some(code) = router::cli_docs::generate_if_asked(Cli::command()) {
        return code;
    }
    let cli = Cli::parse();
    match cli.command.unwrap_or(Command::Run) {
        Command::Check => match config::load(&cli.config) {
            Ok(config) => {
                // The daemon starts with a policy that does not load (the
                // kernel keeps the last good ruleset), so the configuration
                // check lets it through; this command is where the operator
                // hears of it.
                if let Some(dir) = &config.policies_dir {
                    let node = router::firewall::NodeFirewall::of(&config);
                    let report = router::firewall::check_dir(dir, None, None, &node);
                    for diagnostic in &report.diagnostics {
                        eprintln!("{diagnostic}");
                    }
                    if !report.ok {
                        eprintln!("{}: the policy does not load", dir.display());
                        return ExitCode::FAILURE;
                    }
                }
                #[allow(clippy::print_stdout)] // reason: the command's output
                {
                    println!(
                        "{}: valid (DNS {:?} on {} address(es), {} local record(s), {} forward zone(s), {} filter list(s), {} filtering group(s))",
                        cli.config.display(),
                        config.dns.mode,
                        config.dns.listen.len(),
                        config.dns.local_records.len(),
                        config.dns.forward_zones.len(),
                        config.filter.lists.len(),
                        config.dns.filter.groups.len()
                    );
                }
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{e}");
                ExitCode::FAILURE
            }
        },
        Command::Run => run(|runtime| runtime.block_on(router::daemon::run(&cli.config))),
        Command::Demo => run(|runtime| runtime.block_on(router::demo::run())),
    }
}

fn run(body: impl FnOnce(&tokio::runtime::Runtime) -> anyhow::Result<()>) -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| EnvFilter::new(DEFAULT_LOG_FILTER)),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("routerd")
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("routerd: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match body(&runtime) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("routerd: {e:#}");
            ExitCode::FAILURE
        }
    }
}

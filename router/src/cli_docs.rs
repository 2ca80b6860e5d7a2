//! Shell completions and man pages, generated from the binaries' own clap
//! definitions, so they cannot drift from `--help`. The packages run
//! `routerd --generate-docs DIR` and `routerctl --generate-docs DIR` at
//! build time: read before clap parses anything, so the option is in no
//! completion, page or help.

use std::ffi::OsString;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Command;
use clap_complete::Shell;

/// The option the packaging asks with.
pub const OPTION: &str = "--generate-docs";

/// `Some(DIR)` when the arguments (program name first) are exactly
/// `--generate-docs DIR`.
pub fn asked(mut args: impl Iterator<Item = OsString>) -> Option<PathBuf> {
    let _program = args.next();
    let (option, dir) = (args.next()?, args.next()?);
    (option == OPTION && args.next().is_none()).then(|| PathBuf::from(dir))
}

/// For a binary's `main`: writes the docs of `cmd` and says how that went
/// when this process was started as `NAME --generate-docs DIR`.
pub fn generate_if_asked(cmd: Command) -> Option<ExitCode> {
    let dir = asked(std::env::args_os())?;
    let name = cmd.get_name().to_string();
    Some(match generate(cmd, &dir) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{name}: cannot write the docs into {}: {e}", dir.display());
            ExitCode::FAILURE
        }
    })
}

/// Writes, for `cmd` (the top-level command of a binary called `name`):
/// `DIR/completions/bash/NAME`, `DIR/completions/zsh/_NAME`,
/// `DIR/completions/fish/NAME.fish` and, in `DIR/man/`, `NAME.8` with a
/// page per visible subcommand (`NAME-SUB.8`, `NAME-SUB-SUBSUB.8`).
/// Section 8: both are system administration programs.
pub fn generate(cmd: Command, dir: &Path) -> io::Result<()> {
    let name = cmd.get_name().to_string();
    // The names bash-completion, zsh and fish look for in their
    // directories under /usr/share.
    for (shell, subdir, file) in [
        (Shell::Bash, "bash", name.clone()),
        (Shell::Zsh, "zsh", format!("_{name}")),
        (Shell::Fish, "fish", format!("{name}.fish")),
    ] {
        let out = dir.join("completions").join(subdir);
        fs::create_dir_all(&out)?;
        let mut script = Vec::new();
        clap_complete::generate(shell, &mut cmd.clone(), &name, &mut script);
        fs::write(out.join(file), script)?;
    }
    let man = dir.join("man");
    fs::create_dir_all(&man)?;
    let mut cmd = cmd.disable_help_subcommand(true);
    cmd.build();
    manpages(cmd, &man)
}

fn manpages(cmd: Command, dir: &Path) -> io::Result<()> {
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        manpages(sub.clone(), dir)?;
    }
    let version = cmd.get_version().unwrap_or_default().to_string();
    clap_mangen::Man::new(cmd)
        .section("8")
        .source(format!("router {version}"))
        .manual("router")
        .generate_to(dir)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests

    use clap::{Arg, Command};

    use super::*;

    #[test]
    fn pages_per_subcommand_and_completions_per_shell() {
        let cmd = Command::new("tool")
            .version("1.2.3")
            .about("A tool")
            .subcommand(
                Command::new("show")
                    .about("Show things")
                    .subcommand(Command::new("all").about("Everything")),
            )
            .subcommand(Command::new("secret").hide(true))
            .arg(Arg::new("json").long("json").num_args(0));
        let dir = tempfile::tempdir().unwrap();
        generate(cmd, dir.path()).unwrap();
        let mut files: Vec<String> = walk(dir.path())
            .into_iter()
            .map(|p| p.strip_prefix(dir.path()).unwrap().display().to_string())
            .collect();
        files.sort();
        assert_eq!(
            files,
            [
                "completions/bash/tool",
                "completions/fish/tool.fish",
                "completions/zsh/_tool",
                "man/tool-show-all.8",
                "man/tool-show.8",
                "man/tool.8",
            ]
        );
        let page = fs::read_to_string(dir.path().join("man/tool.8")).unwrap();
        assert!(page.contains(".TH tool 8"), "{page}");
        assert!(page.contains("tool\\-show"), "{page}");
        assert!(!page.contains("secret"), "{page}");
        let bash = fs::read_to_string(dir.path().join("completions/bash/tool")).unwrap();
        assert!(bash.contains("--json"), "{bash}");
    }

    #[test]
    fn only_exactly_the_option_and_a_directory_ask() {
        let args = |a: &[&str]| a.iter().map(OsString::from).collect::<Vec<_>>().into_iter();
        assert_eq!(
            asked(args(&["routerctl", "--generate-docs", "out"])),
            Some(PathBuf::from("out"))
        );
        assert_eq!(asked(args(&["routerctl", "status"])), None);
        assert_eq!(asked(args(&["routerctl", "--generate-docs"])), None);
        assert_eq!(
            asked(args(&["routerctl", "--generate-docs", "a", "b"])),
            None
        );
        assert_eq!(
            asked(args(&["routerctl", "--json", "--generate-docs"])),
            None
        );
    }

    fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
        let mut out = Vec::new();
        for entry in fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                out.extend(walk(&path));
            } else {
                out.push(path);
            }
        }
        out
    }
}

//! Errors as data: a finding names its place, what is wrong and the fix.

use std::fmt;
use std::path::PathBuf;

use serde::Serialize;

use crate::model::Location;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The policy is refused.
    Error,
    /// The policy is applied, but probably does not say what was meant.
    Warning,
}

/// One finding about a policy, located in its file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    pub severity: Severity,
    pub path: PathBuf,
    /// 1-based; 0 when the finding is about the file or the directory.
    pub line: usize,
    pub column: usize,
    pub message: String,
    /// What to change, when there is something obvious.
    pub fix: Option<String>,
}

impl Diagnostic {
    pub fn error(at: &Location, message: impl Into<String>) -> Diagnostic {
        Diagnostic::at(Severity::Error, at, message)
    }

    pub fn warning(at: &Location, message: impl Into<String>) -> Diagnostic {
        Diagnostic::at(Severity::Warning, at, message)
    }

    fn at(severity: Severity, at: &Location, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            severity,
            path: at.path.as_ref().clone(),
            line: at.line,
            column: at.column,
            message: message.into(),
            fix: None,
        }
    }

    pub fn with_fix(mut self, fix: impl Into<String>) -> Diagnostic {
        self.fix = Some(fix.into());
        self
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let severity = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        if self.line == 0 {
            write!(f, "{}: {severity}: {}", self.path.display(), self.message)?;
        } else {
            write!(
                f,
                "{}:{}:{}: {severity}: {}",
                self.path.display(),
                self.line,
                self.column,
                self.message
            )?;
        }
        if let Some(fix) = &self.fix {
            write!(f, "\n  fix: {fix}")?;
        }
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("cannot read the policy directory {}: {source}", path.display())]
    Directory {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}", render(.0))]
    Invalid(Vec<Diagnostic>),
    #[error("nft refused the ruleset: {0}")]
    Nft(String),
    #[error("cannot run nft: {0}")]
    NftUnavailable(String),
}

impl PolicyError {
    /// The findings behind an invalid policy, errors and warnings alike.
    pub fn diagnostics(&self) -> &[Diagnostic] {
        match self {
            PolicyError::Invalid(found) => found,
            _ => &[],
        }
    }
}

fn render(found: &[Diagnostic]) -> String {
    let errors = found
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .count();
    let mut text = format!(
        "the policy has {errors} error{}",
        if errors == 1 { "" } else { "s" }
    );
    for diagnostic in found {
        text.push('\n');
        text.push_str(&diagnostic.to_string());
    }
    text
}

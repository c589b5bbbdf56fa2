//! What a command ended with, and the exit code each outcome maps to.
//!
//! | code | meaning |
//! |---|---|
//! | 0 | done; for `plan`, in sync |
//! | 1 | error |
//! | 2 | `plan`: changes pending |
//! | 3 | `bench`/`compare`: a gate failed or a regression was found |
//! | 4 | `apply`: refused because it would lose data |
//! | 64 | usage error: an unknown flag, a missing argument, flags that do not go together |
//!
//! Usage errors have a code of their own (64, `EX_USAGE` of `sysexits.h`)
//! so that a typo in a CI job's `warren plan` is never read as drift (2).

use std::fmt;

/// How a command ended when it did not fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Done, or in sync.
    Success,
    /// Failed; the error has been printed.
    Error,
    /// `plan` found changes to make.
    ChangesPending,
    /// A gate failed or a regression was found.
    GateFailed,
    /// `apply` refused because the plan would lose data.
    Refused,
    /// The command line was wrong; nothing was done.
    Usage,
}

/// The exit codes, as `warren --help` lists them.
pub const EXIT_CODES: &str = "\
Exit codes:
  0   done; for `plan`, in sync
  1   error (the message says what failed)
  2   `plan`: changes pending (drift)
  3   `bench`, `compare`: a gate failed or a regression was found
  4   `apply`: refused because it would lose data (see --allow-data-loss)
  64  usage error: unknown flag, missing argument, flags that do not go together";

impl Outcome {
    /// The process exit code.
    pub fn code(self) -> u8 {
        match self {
            Outcome::Success => 0,
            Outcome::Error => 1,
            Outcome::ChangesPending => 2,
            Outcome::GateFailed => 3,
            Outcome::Refused => 4,
            Outcome::Usage => 64,
        }
    }
}

/// A command line that parsed but cannot run as given, such as flags that do
/// not go together; `run` maps it to exit code 64, like clap's own errors.
#[derive(Debug)]
pub struct Usage(pub String);

impl fmt::Display for Usage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Usage {}

//! Small helpers shared by every case: the result type, `ensure!`, SDK
//! error formatting and the command-line options.

use std::time::{Duration, Instant};

use relaymap::Error;

/// A case's outcome: `Err` carries the reason printed after `FAIL:`.
pub type TestResult = Result<(), String>;

/// Returns `Err(format!(...))` from the enclosing function unless `$cond`.
macro_rules! ensure {
    ($cond:expr, $($fmt:tt)+) => {
        if !$cond {
            return Err(format!($($fmt)+));
        }
    };
}
pub(crate) use ensure;

/// Any displayable error as the case's failure text.
pub fn e2s<E: std::fmt::Display>(e: E) -> String {
    e.to_string()
}

/// The error and its source chain (the SDK's errors keep the io::Error).
pub fn err_chain(e: &Error) -> String {
    let mut s = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(x) = src {
        let more = x.to_string();
        if !s.contains(&more) {
            s.push_str(": ");
            s.push_str(&more);
        }
        src = x.source();
    }
    s
}

/// An SDK result with the error flattened to text.
pub fn sdk<T>(r: relaymap::Result<T>) -> Result<T, String> {
    r.map_err(|e| err_chain(&e))
}

/// Where the load generator's writers come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoadSource {
    /// The case writes `start` to the load generator's control file.
    Start,
    /// Started by someone else (`autostart=1`, or under lockdown where the
    /// control file cannot be opened); the status file is read for counts.
    External,
    /// Started by someone else, no status file (debugfs unmounted): every
    /// CPU with a buffer writes exactly this many records (lossless).
    Count(u64),
}

/// Command-line options common to all cases.
#[derive(Debug, Clone)]
pub struct Opts {
    /// Channel name, opened through /dev/relaymap.
    pub channel: String,
    /// Hard stop: a case that reaches it fails (it never passes by time).
    pub deadline: Instant,
    /// Deliberate consumer slowness between passes (drops, overwrite).
    pub sleep_ms: u64,
    /// Who starts the load generator and where the expected counts come from.
    pub load: LoadSource,
    /// Free arguments of a case (e.g. the error kind of `expect-error`).
    pub args: Vec<String>,
    /// `--dir`: a debugfs channel directory (debugfs/legacy cases).
    pub dir: Option<String>,
    /// `--cpu`, for helper subcommands.
    pub cpu: Option<u32>,
    /// `--holder-pid`, for the exclusive-consumer helper.
    pub holder_pid: Option<i32>,
    /// `--limit`: sub-buffers per `acquire`.
    pub limit: usize,
    /// `--reset`: RESET the channel before consuming (so the kernel's
    /// counters describe this run only).
    pub reset: bool,
    /// `--stop-file PATH` (`count`): stop consuming once PATH exists.
    pub stop_file: Option<String>,
    /// `--out DIR` (`count`): each CPU's records to `DIR/cpuN.out`.
    pub out: Option<String>,
}

impl Opts {
    /// Time left until the deadline (zero when passed).
    pub fn left(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }

    /// `Err` once the deadline has passed, naming what was going on.
    pub fn check_deadline(&self, what: &str) -> TestResult {
        ensure!(Instant::now() < self.deadline, "deadline reached {what}");
        Ok(())
    }
}

//! Which channel a command names, opening it, claiming its CPUs, and the
//! messages that say why that failed.
//!
//! A bare word (`demo`) is a channel name, opened through `/dev/relaymap`:
//! nothing here looks at debugfs then, not even to build a hint (the
//! lockdown pass runs the dumper by name with debugfs refusing every open).
//! An argument with a `/` (or `.`, `..`) is a directory: a debugfs channel
//! dir (`/sys/kernel/debug/relaymap/<name>`), or with feature `sim` a
//! simulated channel dir made by `relaymap-sim`.

use std::fmt;
use std::path::{Path, PathBuf};

use relaymap::{Channel, CpuReader, Error};

use crate::error::Failure;

/// A channel named on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A channel name, opened through `/dev/relaymap`.
    Name(String),
    /// A channel directory (debugfs, or a simulated channel).
    Path(PathBuf),
}

impl Target {
    /// `demo` is a name; `./demo`, `/sys/kernel/debug/relaymap/demo`, `.`
    /// are paths.
    pub fn parse(arg: &str) -> Target {
        if arg.contains('/') || arg == "." || arg == ".." {
            Target::Path(PathBuf::from(arg))
        } else {
            Target::Name(arg.to_string())
        }
    }

    /// `"name"` or `"path"`, for the report.
    pub fn kind(&self) -> &'static str {
        match self {
            Target::Name(_) => "name",
            Target::Path(_) => "path",
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Name(n) => f.write_str(n),
            Target::Path(p) => write!(f, "{}", p.display()),
        }
    }
}

/// Opens the channel as an observer (no CPU is claimed).
pub fn open(t: &Target) -> Result<Channel, Failure> {
    let r = match t {
        Target::Name(n) => Channel::open(n),
        Target::Path(p) => open_path(p),
    };
    r.map_err(|e| open_failure(t, e))
}

#[cfg(feature = "sim")]
fn open_path(p: &Path) -> relaymap::Result<Channel> {
    if relaymap_sim::is_sim_dir(p) {
        return relaymap_sim::open_dir(p);
    }
    Channel::open_path(p)
}

#[cfg(not(feature = "sim"))]
fn open_path(p: &Path) -> relaymap::Result<Channel> {
    Channel::open_path(p)
}

/// Claims every CPU of the channel at once (all or nothing).
pub fn claim_all(t: &Target, ch: &Channel) -> Result<Vec<CpuReader>, Failure> {
    ch.readers().map_err(|e| open_failure(t, e))
}

/// Claims one CPU (one that came online after the start).
pub fn claim(t: &Target, ch: &Channel, cpu: u32) -> Result<CpuReader, Failure> {
    ch.reader(cpu).map_err(|e| open_failure(t, e))
}

/// What to say when opening or claiming `t` failed with `e`: the cause and
/// what to do, and the exit code's category.
pub fn open_failure(t: &Target, e: Error) -> Failure {
    describe(Some(t), e)
}

/// What to say when a device-wide call (LIST, GET_VERSION) failed.
pub fn device_failure(e: Error) -> Failure {
    describe(None, e)
}

/// The channel name a debugfs channel path ends in, for the hint to use it.
fn name_of(t: Option<&Target>) -> String {
    match t {
        Some(Target::Path(p)) => p
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "NAME".into()),
        Some(Target::Name(n)) => n.clone(),
        None => "NAME".into(),
    }
}

/// One sentence: the cause and what to do, in the exit code's category.
/// Messages about a channel given by name start with `channel NAME: `;
/// the SDK's messages about a path already start with the path.
fn describe(t: Option<&Target>, e: Error) -> Failure {
    let ctx = match t {
        Some(Target::Name(n)) => format!("channel {n}: "),
        _ => String::new(),
    };
    let by_name = || {
        format!(
            "give the channel's name ({}) instead of a debugfs path to open it through /dev/relaymap",
            name_of(t)
        )
    };
    match e {
        Error::Busy {
            cpu,
            holder_pid,
            ref holder_comm,
        } => {
            let who = match (holder_pid, holder_comm) {
                (Some(pid), Some(comm)) => format!("pid {pid} ({comm})"),
                (Some(pid), None) => format!("pid {pid}"),
                (None, _) => "another consumer".to_string(),
            };
            let stop = match holder_pid {
                Some(pid) => format!("stop it (kill -INT {pid}) or wait until it exits"),
                None => "stop it or wait until it exits".to_string(),
            };
            let chan = t.map_or(String::new(), |t| format!("channel {t}: "));
            let stat = t.map_or(String::new(), |t| {
                format!(" (`relaymap stat {t}` shows the holders)")
            });
            Failure::Busy(format!(
                "{chan}cpu {cpu} is held by {who}: only one consumer per CPU; {stop}{stat}"
            ))
        }
        Error::ModuleNotLoaded { .. } => Failure::NotFound(with_dir_hint(t, format!("{ctx}{e}"))),
        Error::NoSuchChannel { .. } => Failure::NotFound(with_dir_hint(t, e.to_string())),
        Error::NotAChannel { .. } => Failure::NotFound(e.to_string()),
        Error::DebugfsNotMounted { ref path } => Failure::NotFound(format!(
            "{}: debugfs is not mounted (mount -t debugfs none /sys/kernel/debug), or {}",
            path.display(),
            by_name()
        )),
        Error::Lockdown {
            ref path,
            ref level,
            ..
        } => Failure::PermissionDenied(format!(
            "{}: refused by kernel lockdown ({level}): under lockdown debugfs does not open \
             files that can be mapped; {}",
            path.display(),
            by_name()
        )),
        // A debugfs path: the SDK's hint is written for its API; say it in
        // the command line's terms.
        Error::PermissionDenied {
            ref path,
            ref source,
            ..
        } if matches!(t, Some(Target::Path(_))) => {
            // (The path's text only: nothing is looked up.)
            let how = if path.starts_with("/sys/kernel/debug") {
                format!(
                    ": debugfs is root-only: run as root, or {} as a member of its group",
                    by_name()
                )
            } else {
                String::new()
            };
            Failure::PermissionDenied(format!(
                "{}: permission denied ({source}){how}",
                path.display()
            ))
        }
        Error::PermissionDenied { .. } => Failure::PermissionDenied(format!("{ctx}{e}")),
        // A simulated channel's files, say, that this user may not open.
        Error::Open {
            ref path,
            ref source,
        } if source.kind() == std::io::ErrorKind::PermissionDenied => Failure::PermissionDenied(
            format!("{ctx}{}: permission denied ({source})", path.display()),
        ),
        other => match t {
            Some(t) => Failure::Other(anyhow::Error::new(other).context(format!("channel {t}"))),
            None => Failure::Other(anyhow::Error::new(other)),
        },
    }
}

/// For a name that is also a directory here (a simulated channel made in
/// the current directory, say): point at the path form. Looks only at the
/// current directory, and only after the open failed.
fn with_dir_hint(t: Option<&Target>, msg: String) -> String {
    match t {
        Some(Target::Name(n)) if Path::new(n).is_dir() => {
            format!("{msg}\nhint: ./{n} is a directory here; to open it as a channel directory, pass ./{n}")
        }
        _ => msg,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_paths() {
        assert_eq!(Target::parse("demo"), Target::Name("demo".into()));
        assert_eq!(Target::parse("my-chan_2"), Target::Name("my-chan_2".into()));
        assert_eq!(Target::parse("./demo"), Target::Path("./demo".into()));
        assert_eq!(
            Target::parse("/sys/kernel/debug/relaymap/demo"),
            Target::Path("/sys/kernel/debug/relaymap/demo".into())
        );
        assert_eq!(Target::parse("."), Target::Path(".".into()));
    }
}

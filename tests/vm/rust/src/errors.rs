//! Error cases: 45-sdk-errors (the legacy debugfs view, bad CPUs, a
//! non-root user) and 50-sdk-errors-abi2 (`expect-error KIND`: each ABI 2
//! error variant names the real cause). `expect-error` is also what other
//! passes (lockdown, non-root) call.

use std::path::{Path, PathBuf};

use relaymap::{Channel, Error, DEVICE_PATH};

use crate::consume::open;
use crate::util::{e2s, ensure, err_chain, sdk, Opts, TestResult};

/// Unwraps the error of `r`, printing it; `Err` if it succeeded.
fn failed<T>(r: relaymap::Result<T>, what: &str) -> Result<Error, String> {
    match r {
        Ok(_) => Err(format!("{what}: succeeded, want an error")),
        Err(e) => {
            println!("errors: {what} -> {}", err_chain(&e));
            Ok(e)
        }
    }
}

/// Checks that the message of `e` contains every one of `words`.
fn says(e: &Error, words: &[&str], what: &str) -> TestResult {
    let msg = err_chain(e);
    for w in words {
        ensure!(
            msg.contains(w),
            "{what}: the message does not say {w:?}: {msg}"
        );
    }
    Ok(())
}

fn debugfs_dir(o: &Opts) -> PathBuf {
    o.dir
        .as_ref()
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new("/sys/kernel/debug/relaymap").join(&o.channel))
}

extern "C" {
    fn setgid(gid: u32) -> i32;
    fn setuid(uid: u32) -> i32;
}

/// Drops root for the rest of this (short-lived) process.
fn become_nobody() -> bool {
    // SAFETY: setgid/setuid take plain integers and touch no memory of
    // this process; only its credentials change.
    unsafe { setgid(65534) == 0 && setuid(65534) == 0 }
}

/// 45: clear errors, never a panic, for the legacy view and bad arguments;
/// then the same channel as nobody.
pub fn errors(o: &Opts) -> TestResult {
    let e = failed(
        Channel::open_path("/nonexistent/relaymap"),
        "open_path(missing dir)",
    )?;
    ensure!(matches!(e, Error::NotAChannel { .. }), "missing dir: {e:?}");
    let e = failed(
        Channel::open_path("/sys/kernel/debug"),
        "open_path(debugfs root)",
    )?;
    ensure!(
        matches!(e, Error::NotAChannel { .. }),
        "debugfs root: {e:?}"
    );
    says(&e, &["control"], "debugfs root")?;
    let fake = PathBuf::from("/tmp/relaymap-fake");
    std::fs::create_dir_all(&fake).map_err(e2s)?;
    std::fs::write(fake.join("control"), b"").map_err(e2s)?;
    let e = failed(Channel::open_path(&fake), "open_path(fake control file)")?;
    ensure!(
        matches!(e, Error::NotAChannel { .. }),
        "fake control: {e:?}"
    );

    // The legacy view of a real channel still opens and answers.
    let dbg = Channel::open_path(debugfs_dir(o));
    let dbg = sdk(dbg)?;
    ensure!(
        dbg.name() == o.channel,
        "debugfs view names {:?}",
        dbg.name()
    );
    drop(dbg);

    let ch = open(o)?;
    let e = failed(ch.reader(999), "reader(999)")?;
    ensure!(
        matches!(e, Error::UnknownCpu { cpu: 999 }),
        "cpu 999: {e:?}"
    );
    let e = failed(ch.cursor(999), "cursor(999)")?;
    println!("errors: (cursor(999) is {e:?})");
    let long = "x".repeat(200);
    let e = failed(Channel::open(&long), "open(200-character name)")?;
    ensure!(
        matches!(&e, Error::NoSuchChannel { name, .. } if *name == long),
        "200-character name: want NoSuchChannel, got {e:?}"
    );
    drop(ch);

    if !become_nobody() {
        println!("errors: cannot drop privileges; permission case not checked");
        return Ok(());
    }
    let e = failed(Channel::open(&o.channel), "open(name) as nobody")?;
    match &e {
        Error::PermissionDenied { path, hint, .. } => {
            ensure!(path == Path::new(DEVICE_PATH), "as nobody: path {path:?}");
            ensure!(!hint.is_empty(), "as nobody: no hint");
        }
        _ => return Err(format!("open as nobody: want PermissionDenied, got {e:?}")),
    }
    says(&e, &["root"], "as nobody")?;
    let e = failed(
        Channel::open_path(debugfs_dir(o)),
        "open_path(debugfs) as nobody",
    )?;
    ensure!(
        matches!(e, Error::PermissionDenied { .. }),
        "debugfs as nobody: want PermissionDenied, got {e:?}"
    );
    Ok(())
}

/// `expect-error KIND`: the operation fails with exactly that variant and a
/// message that names the cause and the way out.
pub fn expect_error(o: &Opts) -> TestResult {
    let kind = o.args.first().map(String::as_str).unwrap_or("");
    match kind {
        "module-not-loaded" => {
            ensure!(
                !Path::new(DEVICE_PATH).exists(),
                "{DEVICE_PATH} exists: run this before the module is loaded"
            );
            for (what, e) in [
                ("open(name)", Channel::open(&o.channel).err()),
                ("list_channels()", relaymap::list_channels().err()),
                ("device_abi_version()", relaymap::device_abi_version().err()),
            ] {
                let e = e.ok_or(format!("{what} succeeded without the module"))?;
                println!("expect-error: {what} -> {}", err_chain(&e));
                ensure!(
                    matches!(&e, Error::ModuleNotLoaded { path } if path == Path::new(DEVICE_PATH)),
                    "{what}: want ModuleNotLoaded, got {e:?}"
                );
                says(&e, &[DEVICE_PATH, "not loaded", "insmod"], what)?;
            }
            Ok(())
        }
        "no-such-channel" => {
            let want = &o.channel;
            let listed = sdk(relaymap::list_channels())?;
            println!("expect-error: list_channels() -> {listed:?}");
            ensure!(
                !listed.contains(want),
                "channel {want:?} exists: {listed:?}"
            );
            ensure!(
                !listed.is_empty(),
                "no channel exists; load the module with one"
            );
            let expected = &o.args[1..];
            ensure!(
                expected.is_empty() || listed == expected,
                "list_channels() {listed:?}, want {expected:?}"
            );
            let e = failed(Channel::open(want), "open(no such name)")?;
            match &e {
                Error::NoSuchChannel { name, available } => {
                    ensure!(name == want, "NoSuchChannel names {name:?}");
                    ensure!(
                        *available == listed,
                        "available {available:?} != list {listed:?}"
                    );
                }
                _ => return Err(format!("want NoSuchChannel, got {e:?}")),
            }
            let words: Vec<&str> = listed.iter().map(String::as_str).collect();
            says(&e, &words, "no such channel")
        }
        "debugfs-not-mounted" => {
            let dir = debugfs_dir(o);
            let mounts = std::fs::read_to_string("/proc/mounts").map_err(e2s)?;
            ensure!(
                !mounts
                    .lines()
                    .any(|l| l.split_whitespace().nth(2) == Some("debugfs")),
                "debugfs is mounted: unmount it first"
            );
            let e = failed(
                Channel::open_path(&dir),
                "open_path(debugfs dir) without debugfs",
            )?;
            ensure!(
                matches!(&e, Error::DebugfsNotMounted { path } if *path == dir),
                "want DebugfsNotMounted for {dir:?}, got {e:?}"
            );
            says(
                &e,
                &["debugfs", "mount", "Channel::open"],
                "debugfs not mounted",
            )?;
            // The device path does not need debugfs.
            let ch = open(o)?;
            let r = sdk(ch.readers())?;
            println!(
                "expect-error: without debugfs, open({:?}) works and claims {} CPUs",
                o.channel,
                r.len()
            );
            Ok(())
        }
        "lockdown" => {
            let dir = debugfs_dir(o);
            let level =
                std::fs::read_to_string("/sys/kernel/security/lockdown").unwrap_or_default();
            println!("expect-error: lockdown file: {}", level.trim());
            let e = failed(
                Channel::open_path(&dir),
                "open_path(debugfs dir) under lockdown",
            )?;
            match &e {
                Error::Lockdown { level, .. } => {
                    ensure!(
                        level == "integrity" || level == "confidentiality",
                        "Lockdown level {level:?}"
                    );
                }
                _ => return Err(format!("want Lockdown, got {e:?}")),
            }
            says(&e, &["lockdown", "Channel::open"], "lockdown")?;
            let ch = open(o)?;
            drop(sdk(ch.readers())?);
            println!(
                "expect-error: under lockdown, open({:?}) and readers() work",
                o.channel
            );
            Ok(())
        }
        "permission" => {
            let e = failed(Channel::open(&o.channel), "open(name)")?;
            ensure!(
                matches!(&e, Error::PermissionDenied { path, .. } if path == Path::new(DEVICE_PATH)),
                "want PermissionDenied on {DEVICE_PATH}, got {e:?}"
            );
            says(&e, &["group"], "permission")
        }
        "busy" => {
            let cpu = o.cpu.ok_or("busy: --cpu missing")?;
            let ch = open(o)?;
            let e = failed(ch.reader(cpu), "reader(cpu)")?;
            match &e {
                Error::Busy {
                    cpu: c, holder_pid, ..
                } => {
                    ensure!(*c == cpu, "Busy names cpu {c}");
                    if let Some(want) = o.holder_pid {
                        ensure!(
                            *holder_pid == Some(want),
                            "holder {holder_pid:?}, want {want}"
                        );
                    }
                    Ok(())
                }
                _ => Err(format!("want Busy, got {e:?}")),
            }
        }
        _ => Err(format!(
            "expect-error: unknown kind {kind:?} (module-not-loaded, no-such-channel, \
             debugfs-not-mounted, lockdown, permission, busy)"
        )),
    }
}

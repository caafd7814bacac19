//! `relaymap-dump read-copy`: the classic relay consumer, for comparison.
//! It claims every CPU like the dumper (one consumer fd each), read()s each
//! consumer fd into a buffer and write()s the buffer out: two copies per
//! byte, and not safe with concurrent writers on SMP (the relay read path is
//! unsynchronised against sub-buffer switches, see KERNEL-NOTES). Use it
//! for throughput figures only.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;

use crate::error::{code, Failure};
use crate::report::human;
use crate::target::{self, Target};

/// `read-copy` options.
#[derive(Debug, Args)]
pub struct ReadCopyArgs {
    /// The channel: a name (through /dev/relaymap) or a directory.
    pub channel: String,
    /// Output directory for cpuN.read files, or `-` for one stream on
    /// stdout (e.g. to /dev/null, to time the consumer without the sink).
    #[arg(short = 'o', long = "output", value_name = "DIR|-")]
    pub output: PathBuf,
    /// Stop after this long (default: until SIGINT/SIGTERM).
    #[arg(long, value_parser = crate::args::parse_duration, value_name = "TIME")]
    pub duration: Option<Duration>,
    /// Stop as soon as one pass over every CPU file reads nothing (drain
    /// what is buffered, then exit).
    #[arg(long)]
    pub drain: bool,
    /// read() buffer size.
    #[arg(long, value_parser = crate::args::parse_size, default_value = "1M", value_name = "SIZE")]
    pub buf_size: u64,
}

/// Runs `read-copy`; returns the exit code.
pub fn main(args: ReadCopyArgs) -> i32 {
    match run(&args) {
        Ok(()) => code::OK,
        Err(e) => {
            eprintln!("relaymap-dump read-copy: {e}");
            e.exit_code()
        }
    }
}

fn run(args: &ReadCopyArgs) -> Result<(), Failure> {
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, Arc::clone(&stop))
            .map_err(|e| Failure::Other(e.into()))?;
    }
    let t = Target::parse(&args.channel);
    let ch = target::open(&t)?;
    let readers = target::claim_all(&t, &ch)?;
    let to_stdout = args.output == std::path::Path::new("-");
    if !to_stdout {
        std::fs::create_dir_all(&args.output).map_err(|source| Failure::Output {
            path: args.output.clone(),
            source,
        })?;
    }
    // (cpu, a duplicate of its consumer fd to read() from, the output).
    let mut cpus: Vec<(u32, File, File)> = Vec::new();
    for r in &readers {
        let cpu = r.cpu();
        let input =
            File::from(r.as_fd().try_clone_to_owned().map_err(|e| {
                Failure::Other(anyhow::anyhow!("dup of cpu {cpu}'s consumer fd: {e}"))
            })?);
        let out = if to_stdout {
            // Unbuffered, like the files: a duplicate of fd 1.
            let fd = std::io::stdout()
                .as_fd()
                .try_clone_to_owned()
                .map_err(|e| Failure::Other(e.into()))?;
            File::from(fd)
        } else {
            let path = args.output.join(format!("cpu{cpu}.read"));
            File::create(&path).map_err(|source| Failure::Output { path, source })?
        };
        cpus.push((cpu, input, out));
    }
    let mut buf = vec![0u8; args.buf_size as usize];
    let start = Instant::now();
    let deadline = args.duration.map(|d| start + d);
    let mut bytes = 0u64;
    let mut reads = 0u64;
    while !stop.load(Ordering::Relaxed) && deadline.is_none_or(|t| Instant::now() < t) {
        let mut got = false;
        for (_, input, out) in cpus.iter_mut() {
            let n = match input.read(&mut buf) {
                Ok(n) => n,
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::Interrupted | std::io::ErrorKind::WouldBlock
                    ) =>
                {
                    0
                }
                Err(e) => {
                    return Err(Failure::Other(
                        anyhow::Error::new(e).context("read() of a consumer fd"),
                    ))
                }
            };
            reads += 1;
            if n > 0 {
                got = true;
                out.write_all(&buf[..n])
                    .map_err(|e| Failure::write(args.output.clone(), e))?;
                bytes += n as u64;
            }
        }
        if !got && args.drain {
            break;
        }
        if !got {
            let mut fds: Vec<libc::pollfd> = cpus
                .iter()
                .map(|(_, f, _)| libc::pollfd {
                    fd: f.as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                })
                .collect();
            // SAFETY: `fds` is a valid array of `fds.len()` pollfd structs
            // whose fds stay open (owned by `cpus`) for the call.
            unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, 100) };
        }
    }
    let secs = start.elapsed().as_secs_f64();
    if !to_stdout {
        for (_, _, out) in &cpus {
            out.sync_all()
                .map_err(|e| Failure::write(args.output.clone(), e))?;
        }
    }
    let (user, sys) = crate::report::cpu_user_sys_s();
    let cpu = user + sys;
    let (faults, switches) = crate::report::faults_and_switches();
    eprintln!(
        "read-copy: {} in {:.3} s ({:.1} MB/s), {} read() calls, {:.2} CPU-s ({:.2} user, {}/CPU-s), {faults} page faults, {switches} context switches",
        human(bytes),
        secs,
        bytes as f64 / secs / 1e6,
        reads,
        cpu,
        user,
        human((bytes as f64 / cpu.max(1e-6)) as u64)
    );
    Ok(())
}

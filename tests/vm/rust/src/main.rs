//! relaymap-vmtest: the SDK's integration tests against the real
//! relaymap.ko through /dev/relaymap, run inside the VM harness by
//! tests/vm/guest/tests/4x-*.sh and 5x-*.sh.
//!
//! Each subcommand opens a channel by name (`Channel::open`), claims
//! per-CPU readers, drives the load generator through its debugfs control
//! file (or lets someone else drive it: `--expect-from-loadgen`,
//! `--expect-count N`), consumes at the same time (2 vCPUs: real
//! concurrency), checks every record (load generator checksum and fill,
//! per-CPU seqs), and exits 0 (pass), 1 (fail) or 77 (skip, after printing
//! `skipping: <reason>`). There are no timing assertions: the deadline
//! only stops a hung test, and reaching it fails.

use std::process::ExitCode;
use std::time::{Duration, Instant};

mod async_reader;
mod batches;
mod consume;
mod count;
mod errors;
mod exclusive;
mod loadgen;
mod merge_check;
mod stream;
mod tracker;
mod util;

use util::{LoadSource, Opts};

const USAGE: &str = "\
usage: relaymap-vmtest CASE [options]
cases (tests/vm/guest/tests/NN-*.sh):
  lossless                 40: every record once, counts = load generator's
  drops                    41: gaps = loss.records_dropped = kernel = loadgen dropped
  overwrite                42: laps detected, no torn copy delivered
  flush                    43: flush makes partial sub-buffers visible
  resume                   44: re-open continues at what was handed back
  errors                   45: legacy view and argument errors, as nobody
  hotplug                  46: a CPU that comes online later
  async                    47: AsyncCpuReader under tokio
  exclusive                48: Busy with holder pid/comm, threads, release
  batches                  49: O(1) control calls per sub-buffer, cursors() = 1 call
  expect-error KIND        50: module-not-loaded | no-such-channel [NAMES...] |
                           debugfs-not-mounted | lockdown | permission | busy
  count                    35-38: any writer's records: consume until --stop-file
                           exists or the channel is destroyed and drained, then
                           flush, drain, print records per CPU by (event_id, type)
options:
  --channel NAME           channel to open through /dev/relaymap (default demo)
  --dir DIR                debugfs channel dir (default /sys/kernel/debug/relaymap/NAME)
  --expect-from-loadgen    do not start the load generator (autostart=1, or the
                           control file is refused under lockdown); counts from
                           its status file
  --expect-count N         do not start it, no status file either (debugfs
                           unmounted): every CPU writes N records, lossless
  --limit N                sub-buffers per acquire (default: all ready)
  --reset                  lossless: RESET the channel first (no writer may be
                           registered), so the kernel's counters are this run's
  --timeout-s N            fail after N seconds (default 240)
  --sleep-ms N             consumer pause per pass (drops, overwrite)
  --cpu N, --holder-pid P  for expect-error busy and the helpers
  --stop-file PATH         count: stop once PATH exists
  --out DIR                count: each CPU's records to DIR/cpuN.out (dump layout)";

fn parse() -> Result<(String, Opts), String> {
    let mut args = std::env::args().skip(1);
    let cmd = args.next().ok_or("no case given")?;
    let mut o = Opts {
        channel: "demo".into(),
        deadline: Instant::now(),
        sleep_ms: 0,
        load: LoadSource::Start,
        args: Vec::new(),
        dir: None,
        cpu: None,
        holder_pid: None,
        limit: usize::MAX,
        reset: false,
        stop_file: None,
        out: None,
    };
    let mut timeout = 240u64;
    while let Some(a) = args.next() {
        let mut val = |name: &str| args.next().ok_or(format!("{name} needs a value"));
        fn num<T: std::str::FromStr>(name: &str, v: String) -> Result<T, String> {
            v.parse()
                .map_err(|_| format!("{name}: {v:?} is not a number"))
        }
        match a.as_str() {
            "--channel" => o.channel = val("--channel")?,
            "--dir" => o.dir = Some(val("--dir")?),
            "--expect-from-loadgen" => o.load = LoadSource::External,
            "--reset" => o.reset = true,
            "--expect-count" => {
                o.load = LoadSource::Count(num("--expect-count", val("--expect-count")?)?)
            }
            "--limit" => o.limit = num("--limit", val("--limit")?)?,
            "--timeout-s" => timeout = num("--timeout-s", val("--timeout-s")?)?,
            "--sleep-ms" => o.sleep_ms = num("--sleep-ms", val("--sleep-ms")?)?,
            "--cpu" => o.cpu = Some(num("--cpu", val("--cpu")?)?),
            "--holder-pid" => o.holder_pid = Some(num("--holder-pid", val("--holder-pid")?)?),
            "--stop-file" => o.stop_file = Some(val("--stop-file")?),
            "--out" => o.out = Some(val("--out")?),
            s if s.starts_with("--") => return Err(format!("unknown option {s}")),
            s => o.args.push(s.to_string()),
        }
    }
    ensure_limit(&o)?;
    o.deadline = Instant::now() + Duration::from_secs(timeout);
    Ok((cmd, o))
}

fn ensure_limit(o: &Opts) -> Result<(), String> {
    if o.limit == 0 {
        return Err("--limit must be at least 1".into());
    }
    Ok(())
}

fn main() -> ExitCode {
    let (cmd, o) = match parse() {
        Ok(x) => x,
        Err(e) => {
            eprintln!("relaymap-vmtest: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let r = match cmd.as_str() {
        "lossless" => stream::lossless(&o),
        "drops" => stream::drops(&o),
        "overwrite" => stream::overwrite(&o),
        "flush" => stream::flush(&o),
        "resume" => stream::resume(&o),
        "errors" => errors::errors(&o),
        "hotplug" => stream::hotplug(&o),
        "async" => async_reader::async_lossless(&o),
        "exclusive" => exclusive::exclusive(&o),
        "exclusive-intruder" => exclusive::intruder(&o),
        "claim" => exclusive::claim_and_exit(&o),
        "batches" => batches::batches(&o),
        "expect-error" => errors::expect_error(&o),
        "count" => count::count(&o),
        _ => {
            eprintln!("relaymap-vmtest: unknown case {cmd:?}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match r {
        Ok(()) => {
            println!("{cmd}: ok");
            ExitCode::SUCCESS
        }
        Err(e) => {
            // Never leave the load generator running behind a failure.
            if o.load == LoadSource::Start {
                let _ = loadgen::ctl("stop");
            }
            println!("FAIL: {cmd}: {e}");
            ExitCode::FAILURE
        }
    }
}

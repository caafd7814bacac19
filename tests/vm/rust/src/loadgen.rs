//! The load generator (relaymap_loadgen.ko): start/stop and per-CPU counts
//! through its module parameters `run` and `status` (they work without
//! debugfs and under lockdown), or its debugfs `control`/`status` files
//! where the parameters do not exist.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::util::{ensure, TestResult};

const LG_DIR: &str = "/sys/kernel/debug/relaymap_loadgen";
const PARAMS: &str = "/sys/module/relaymap_loadgen/parameters";

/// One CPU's line of the status file.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct LgCpu {
    /// Records tried: seqs 0..attempts.
    pub attempts: u64,
    /// Records the module accepted.
    pub written: u64,
    /// Records refused because the buffer was full.
    pub dropped: u64,
}

/// The status file.
#[derive(Debug, Default, Clone)]
pub struct LgStatus {
    /// `state running`.
    pub running: bool,
    /// The per-CPU lines.
    pub cpus: BTreeMap<u32, LgCpu>,
}

/// Starts (`start`) or stops (`stop`, returns once every writer ended)
/// the load generator.
pub fn ctl(cmd: &str) -> TestResult {
    let run = Path::new(PARAMS).join("run");
    let (path, what) = if run.exists() {
        (run, if cmd == "start" { "1" } else { "0" })
    } else {
        (Path::new(LG_DIR).join("control"), cmd)
    };
    std::fs::write(&path, what).map_err(|e| format!("loadgen {cmd} ({}): {e}", path.display()))
}

/// Sets a load generator parameter (read at the next start).
pub fn set(key: &str, value: &str) -> TestResult {
    std::fs::write(Path::new(PARAMS).join(key), value)
        .map_err(|e| format!("loadgen parameter {key}={value}: {e}"))
}

/// Parses `key value` pairs after `cpu N`; unknown keys are ignored, so a
/// load generator that reports more counters still parses.
fn parse_cpu_line(words: &[&str], line: &str) -> Result<LgCpu, String> {
    let mut c = LgCpu::default();
    let mut seen = 0;
    for kv in words.chunks(2) {
        let [k, v] = kv else {
            return Err(format!("status line {line:?}: odd number of words"));
        };
        let slot = match *k {
            "attempts" => &mut c.attempts,
            "written" => &mut c.written,
            "dropped" => &mut c.dropped,
            _ => continue,
        };
        *slot = v
            .parse()
            .map_err(|e| format!("status line {line:?}: {k}: {e}"))?;
        seen += 1;
    }
    ensure!(seen == 3, "status line {line:?}: missing a counter");
    Ok(c)
}

/// Reads and parses the status file.
pub fn status() -> Result<LgStatus, String> {
    let param = Path::new(PARAMS).join("status");
    let path = if param.exists() {
        param
    } else {
        Path::new(LG_DIR).join("status")
    };
    let s = std::fs::read_to_string(&path)
        .map_err(|e| format!("loadgen status ({}): {e}", path.display()))?;
    let mut st = LgStatus::default();
    let mut state = false;
    for l in s.lines() {
        let w: Vec<&str> = l.split_whitespace().collect();
        match w.as_slice() {
            ["state", s] => {
                st.running = *s == "running";
                state = true;
            }
            ["cpu", c, rest @ ..] => {
                let cpu = c.parse().map_err(|e| format!("status line {l:?}: {e}"))?;
                st.cpus.insert(cpu, parse_cpu_line(rest, l)?);
            }
            _ => {}
        }
    }
    ensure!(state, "loadgen status has no state line:\n{s}");
    Ok(st)
}

/// Waits until the load generator has finished its count or duration
/// (bounded; the module offers no notification to wait on).
pub fn wait_idle(deadline: Instant) -> Result<LgStatus, String> {
    loop {
        let st = status()?;
        if !st.running {
            return Ok(st);
        }
        ensure!(
            Instant::now() < deadline,
            "load generator still running at the deadline"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_line_with_extra_counters() {
        let l = "cpu 1 attempts 10 written 7 dropped 3 rejected 0";
        let w: Vec<&str> = l.split_whitespace().collect();
        let c = parse_cpu_line(&w[2..], l).unwrap();
        assert_eq!(
            c,
            LgCpu {
                attempts: 10,
                written: 7,
                dropped: 3
            }
        );
        let l = "cpu 1 attempts 10 written 7";
        let w: Vec<&str> = l.split_whitespace().collect();
        assert!(parse_cpu_line(&w[2..], l).is_err());
    }
}

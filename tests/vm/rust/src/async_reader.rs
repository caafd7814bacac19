//! 47-sdk-async: one `AsyncCpuReader` per CPU, each consumed by its own
//! task on a current-thread tokio runtime (the consumer fds in tokio's
//! reactor), while lossless writers run at full speed.

use std::cell::Cell;
use std::rc::Rc;

use relaymap::AsyncCpuReader;

use crate::consume::{check_lossless, open, summary, take, Run, QUIET};
use crate::loadgen;
use crate::tracker::Tracker;
use crate::util::{e2s, ensure, sdk, Opts};

/// What one task saw.
#[derive(Debug)]
struct Task {
    reader: AsyncCpuReader,
    t: Tracker,
    wakeups: u64,
}

/// Awaits one reader until `stop`, then drains it to the end.
async fn consume_cpu(
    mut ar: AsyncCpuReader,
    stop: Rc<Cell<bool>>,
    o: Opts,
) -> Result<Task, String> {
    let mut t = Tracker::new(true);
    let mut wakeups = 0u64;
    loop {
        o.check_deadline("awaiting data")?;
        if stop.get() {
            while take(ar.get_mut(), &mut t, usize::MAX)? > 0 {}
            let cpu = ar.get_mut().cpu();
            ensure!(sdk(ar.get_mut().is_drained())?, "cpu {cpu}: not drained");
            return Ok(Task {
                reader: ar,
                t,
                wakeups,
            });
        }
        // The timeout only lets the task see `stop`; data wakes it.
        if let Ok(r) = tokio::time::timeout(QUIET, ar.readable()).await {
            sdk(r)?;
            wakeups += 1;
            take(ar.get_mut(), &mut t, usize::MAX)?;
        }
    }
}

/// The whole case.
pub fn async_lossless(o: &Opts) -> Result<(), String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
        .map_err(e2s)?;
    let local = tokio::task::LocalSet::new();
    let ch = open(o)?;
    let readers = sdk(ch.readers())?;
    let (tasks, lg) = local.block_on(&rt, async {
        let stop = Rc::new(Cell::new(false));
        let mut handles = Vec::new();
        for r in readers {
            let ar = sdk(AsyncCpuReader::new(r))?;
            handles.push(tokio::task::spawn_local(consume_cpu(
                ar,
                stop.clone(),
                o.clone(),
            )));
        }
        loadgen::ctl("start")?;
        let deadline = o.deadline;
        let lg = tokio::task::spawn_blocking(move || loadgen::wait_idle(deadline))
            .await
            .map_err(e2s)?;
        // Writers done (or failed): make the partial sub-buffers visible,
        // then let every task drain.
        let flushed = sdk(ch.flush(None));
        stop.set(true);
        let mut tasks = Vec::new();
        for h in handles {
            tasks.push(h.await.map_err(e2s)?);
        }
        let lg = lg?;
        flushed?;
        Ok::<_, String>((tasks, lg))
    })?;
    let mut t = Tracker::new(true);
    let mut loss = std::collections::BTreeMap::new();
    let mut wakeups = Vec::new();
    for task in tasks {
        let task = task?;
        let mut r = task.reader.into_inner();
        loss.insert(r.cpu(), r.loss());
        wakeups.push((r.cpu(), task.wakeups));
        ensure!(task.wakeups > 0, "cpu {}: never woken by tokio", r.cpu());
        ensure!(sdk(r.is_drained())?, "cpu {}: not drained", r.cpu());
        t.absorb(task.t);
    }
    let run = Run {
        lg,
        loss,
        ops: ch.control_ops(),
    };
    summary("async", &t, &run);
    println!("async: wakeups per cpu {wakeups:?}");
    check_lossless(&t, &run)
}

//! The records of batches held together for several CPUs, merged by
//! timestamp with the SDK's one merge (`relaymap::merge::Merge`).

use relaymap::merge::Merge;
use relaymap::Batch;

use crate::util::{ensure, sdk, TestResult};

/// Merges every record of `batches` (one per CPU) and checks that the
/// timestamps come out in non-decreasing order, every stream exhausted.
pub fn merged_in_order(batches: &[Batch<'_>]) -> TestResult {
    let streams = batches.iter().map(|b| b.iter().flat_map(|sb| sb.records()));
    let mut last = 0u64;
    let mut n = 0u64;
    let want: u64 = batches
        .iter()
        .flat_map(|b| b.iter())
        .map(|sb| sb.records().count() as u64)
        .sum();
    for (i, r) in Merge::new(streams) {
        let r = sdk(r)?;
        ensure!(
            r.ts_ns >= last,
            "merged order: cpu {}'s record at ts {} after ts {last}",
            batches[i].cpu(),
            r.ts_ns
        );
        last = r.ts_ns;
        n += 1;
    }
    ensure!(n == want, "the merge yielded {n} of {want} records");
    Ok(())
}

//! ABI drift test: compiles a small C program that includes
//! `include/relaymap_abi.h` and prints every size, offset, macro value and
//! ioctl number, then compares each with the Rust mirror in `sdk/src/abi.rs`.
//! Any difference fails.

use std::collections::BTreeMap;
use std::mem::{offset_of, size_of};
use std::path::PathBuf;
use std::process::Command;

use relaymap::abi::*;

const C_PROGRAM: &str = r#"
#include <stdio.h>
#include <stddef.h>
#include "relaymap_abi.h"
#define P(name, v) printf("%s %llu\n", name, (unsigned long long)(v))
#define SZ(t) P("sizeof " #t, sizeof(struct t))
#define OFF(t, f) P("offsetof " #t "." #f, offsetof(struct t, f))
int main(void) {
    P("RELAYMAP_ABI_VERSION", RELAYMAP_ABI_VERSION);
    P("RELAYMAP_SUBBUF_MAGIC", RELAYMAP_SUBBUF_MAGIC);
    P("RELAYMAP_NAME_MAX", RELAYMAP_NAME_MAX);
    P("RELAYMAP_MAX_CPUS", RELAYMAP_MAX_CPUS);
    P("RELAYMAP_SB_FLUSHED", RELAYMAP_SB_FLUSHED);
    P("RELAYMAP_SB_DROPS", RELAYMAP_SB_DROPS);
    P("RELAYMAP_RECORD_ALIGN", RELAYMAP_RECORD_ALIGN);
    P("RELAYMAP_REC_PRINTF", RELAYMAP_REC_PRINTF);
    P("RELAYMAP_REC_LOADGEN", RELAYMAP_REC_LOADGEN);
    P("RELAYMAP_REC_USER", RELAYMAP_REC_USER);
    P("RELAYMAP_FNV_OFFSET", RELAYMAP_FNV_OFFSET);
    P("RELAYMAP_FNV_PRIME", RELAYMAP_FNV_PRIME);
    P("RELAYMAP_IOC_MAGIC", RELAYMAP_IOC_MAGIC);
    P("RELAYMAP_INFO_OVERWRITE", RELAYMAP_INFO_OVERWRITE);
    P("RELAYMAP_ALL_CPUS", (long long)RELAYMAP_ALL_CPUS + 1000);
    P("RELAYMAP_IOC_GET_INFO", RELAYMAP_IOC_GET_INFO);
    P("RELAYMAP_IOC_GET_CURSOR", RELAYMAP_IOC_GET_CURSOR);
    P("RELAYMAP_IOC_PUT_CONSUMED", RELAYMAP_IOC_PUT_CONSUMED);
    P("RELAYMAP_IOC_FLUSH", RELAYMAP_IOC_FLUSH);
    P("RELAYMAP_IOC_RESET", RELAYMAP_IOC_RESET);
    P("RELAYMAP_IOC_GET_STATS", RELAYMAP_IOC_GET_STATS);
    SZ(relaymap_subbuf_header);
    OFF(relaymap_subbuf_header, magic);
    OFF(relaymap_subbuf_header, abi_version);
    OFF(relaymap_subbuf_header, header_size);
    OFF(relaymap_subbuf_header, cpu);
    OFF(relaymap_subbuf_header, flags);
    OFF(relaymap_subbuf_header, seq);
    OFF(relaymap_subbuf_header, ts_begin_ns);
    OFF(relaymap_subbuf_header, ts_end_ns);
    OFF(relaymap_subbuf_header, payload_size);
    OFF(relaymap_subbuf_header, padding);
    OFF(relaymap_subbuf_header, records_dropped);
    OFF(relaymap_subbuf_header, commit);
    SZ(relaymap_record);
    OFF(relaymap_record, size);
    OFF(relaymap_record, type);
    OFF(relaymap_record, flags);
    OFF(relaymap_record, ts_ns);
    SZ(relaymap_loadgen_payload);
    OFF(relaymap_loadgen_payload, seq);
    OFF(relaymap_loadgen_payload, cpu);
    OFF(relaymap_loadgen_payload, checksum);
    SZ(relaymap_info);
    OFF(relaymap_info, size);
    OFF(relaymap_info, abi_version);
    OFF(relaymap_info, header_size);
    OFF(relaymap_info, flags);
    OFF(relaymap_info, subbuf_size);
    OFF(relaymap_info, n_subbufs);
    OFF(relaymap_info, alloc_size);
    OFF(relaymap_info, nr_cpu_ids);
    OFF(relaymap_info, max_record_size);
    OFF(relaymap_info, name);
    OFF(relaymap_info, cpu_mask);
    SZ(relaymap_cursor);
    OFF(relaymap_cursor, size);
    OFF(relaymap_cursor, cpu);
    OFF(relaymap_cursor, produced);
    OFF(relaymap_cursor, consumed);
    OFF(relaymap_cursor, records_dropped);
    OFF(relaymap_cursor, subbufs_lapped);
    SZ(relaymap_consume);
    OFF(relaymap_consume, size);
    OFF(relaymap_consume, cpu);
    OFF(relaymap_consume, count);
    SZ(relaymap_flush);
    OFF(relaymap_flush, size);
    OFF(relaymap_flush, cpu);
    SZ(relaymap_stats);
    OFF(relaymap_stats, size);
    OFF(relaymap_stats, cpu);
    OFF(relaymap_stats, records_written);
    OFF(relaymap_stats, bytes_written);
    OFF(relaymap_stats, records_dropped);
    OFF(relaymap_stats, subbufs_produced);
    OFF(relaymap_stats, subbufs_consumed);
    OFF(relaymap_stats, subbufs_lapped);
    OFF(relaymap_stats, flushes);
    OFF(relaymap_stats, resets);
    return 0;
}
"#;

fn rust_side() -> BTreeMap<String, u64> {
    let mut m = BTreeMap::new();
    let mut p = |k: &str, v: u64| {
        m.insert(k.to_string(), v);
    };
    p("RELAYMAP_ABI_VERSION", RELAYMAP_ABI_VERSION.into());
    p("RELAYMAP_SUBBUF_MAGIC", RELAYMAP_SUBBUF_MAGIC.into());
    p("RELAYMAP_NAME_MAX", RELAYMAP_NAME_MAX as u64);
    p("RELAYMAP_MAX_CPUS", RELAYMAP_MAX_CPUS as u64);
    p("RELAYMAP_SB_FLUSHED", RELAYMAP_SB_FLUSHED.into());
    p("RELAYMAP_SB_DROPS", RELAYMAP_SB_DROPS.into());
    p("RELAYMAP_RECORD_ALIGN", RELAYMAP_RECORD_ALIGN as u64);
    p("RELAYMAP_REC_PRINTF", RELAYMAP_REC_PRINTF.into());
    p("RELAYMAP_REC_LOADGEN", RELAYMAP_REC_LOADGEN.into());
    p("RELAYMAP_REC_USER", RELAYMAP_REC_USER.into());
    p("RELAYMAP_FNV_OFFSET", RELAYMAP_FNV_OFFSET.into());
    p("RELAYMAP_FNV_PRIME", RELAYMAP_FNV_PRIME.into());
    p("RELAYMAP_IOC_MAGIC", RELAYMAP_IOC_MAGIC.into());
    p("RELAYMAP_INFO_OVERWRITE", RELAYMAP_INFO_OVERWRITE.into());
    p(
        "RELAYMAP_ALL_CPUS",
        (i64::from(RELAYMAP_ALL_CPUS) + 1000) as u64,
    );
    p("RELAYMAP_IOC_GET_INFO", RELAYMAP_IOC_GET_INFO.into());
    p("RELAYMAP_IOC_GET_CURSOR", RELAYMAP_IOC_GET_CURSOR.into());
    p(
        "RELAYMAP_IOC_PUT_CONSUMED",
        RELAYMAP_IOC_PUT_CONSUMED.into(),
    );
    p("RELAYMAP_IOC_FLUSH", RELAYMAP_IOC_FLUSH.into());
    p("RELAYMAP_IOC_RESET", RELAYMAP_IOC_RESET.into());
    p("RELAYMAP_IOC_GET_STATS", RELAYMAP_IOC_GET_STATS.into());
    macro_rules! sz {
        ($t:ident) => {
            p(concat!("sizeof ", stringify!($t)), size_of::<$t>() as u64)
        };
    }
    macro_rules! off {
        ($t:ident, $f:ident) => {
            off!($t, $f, $f)
        };
        ($t:ident, $f:ident, $cname:ident) => {
            p(
                concat!("offsetof ", stringify!($t), ".", stringify!($cname)),
                offset_of!($t, $f) as u64,
            )
        };
    }
    sz!(relaymap_subbuf_header);
    off!(relaymap_subbuf_header, magic);
    off!(relaymap_subbuf_header, abi_version);
    off!(relaymap_subbuf_header, header_size);
    off!(relaymap_subbuf_header, cpu);
    off!(relaymap_subbuf_header, flags);
    off!(relaymap_subbuf_header, seq);
    off!(relaymap_subbuf_header, ts_begin_ns);
    off!(relaymap_subbuf_header, ts_end_ns);
    off!(relaymap_subbuf_header, payload_size);
    off!(relaymap_subbuf_header, padding);
    off!(relaymap_subbuf_header, records_dropped);
    off!(relaymap_subbuf_header, commit);
    sz!(relaymap_record);
    off!(relaymap_record, size);
    off!(relaymap_record, type_, type);
    off!(relaymap_record, flags);
    off!(relaymap_record, ts_ns);
    sz!(relaymap_loadgen_payload);
    off!(relaymap_loadgen_payload, seq);
    off!(relaymap_loadgen_payload, cpu);
    off!(relaymap_loadgen_payload, checksum);
    sz!(relaymap_info);
    off!(relaymap_info, size);
    off!(relaymap_info, abi_version);
    off!(relaymap_info, header_size);
    off!(relaymap_info, flags);
    off!(relaymap_info, subbuf_size);
    off!(relaymap_info, n_subbufs);
    off!(relaymap_info, alloc_size);
    off!(relaymap_info, nr_cpu_ids);
    off!(relaymap_info, max_record_size);
    off!(relaymap_info, name);
    off!(relaymap_info, cpu_mask);
    sz!(relaymap_cursor);
    off!(relaymap_cursor, size);
    off!(relaymap_cursor, cpu);
    off!(relaymap_cursor, produced);
    off!(relaymap_cursor, consumed);
    off!(relaymap_cursor, records_dropped);
    off!(relaymap_cursor, subbufs_lapped);
    sz!(relaymap_consume);
    off!(relaymap_consume, size);
    off!(relaymap_consume, cpu);
    off!(relaymap_consume, count);
    sz!(relaymap_flush);
    off!(relaymap_flush, size);
    off!(relaymap_flush, cpu);
    sz!(relaymap_stats);
    off!(relaymap_stats, size);
    off!(relaymap_stats, cpu);
    off!(relaymap_stats, records_written);
    off!(relaymap_stats, bytes_written);
    off!(relaymap_stats, records_dropped);
    off!(relaymap_stats, subbufs_produced);
    off!(relaymap_stats, subbufs_consumed);
    off!(relaymap_stats, subbufs_lapped);
    off!(relaymap_stats, flushes);
    off!(relaymap_stats, resets);
    m
}

#[test]
#[cfg_attr(miri, ignore = "runs cc")]
fn rust_mirror_matches_c_header() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let include = root.join("include");
    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let src = out.join("abi_drift.c");
    let exe = out.join("abi_drift");
    std::fs::write(&src, C_PROGRAM).unwrap();
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let status = Command::new(&cc)
        .arg("-std=c11")
        .arg("-Wall")
        .arg("-Werror")
        .arg("-I")
        .arg(&include)
        .arg(&src)
        .arg("-o")
        .arg(&exe)
        .status()
        .unwrap_or_else(|e| panic!("cannot run {cc} (the ABI drift test needs a C compiler): {e}"));
    assert!(status.success(), "compiling the header failed");
    let output = Command::new(&exe).output().unwrap();
    assert!(output.status.success());
    let c: BTreeMap<String, u64> = String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let (k, v) = l.rsplit_once(' ').unwrap();
            (k.to_string(), v.parse().unwrap())
        })
        .collect();
    let rust = rust_side();
    let mut drift = Vec::new();
    for (k, v) in &c {
        match rust.get(k) {
            Some(r) if r == v => {}
            Some(r) => drift.push(format!("{k}: C {v:#x}, Rust {r:#x}")),
            None => drift.push(format!("{k}: in C, not checked on the Rust side")),
        }
    }
    for k in rust.keys().filter(|k| !c.contains_key(*k)) {
        drift.push(format!("{k}: in Rust, not printed by the C side"));
    }
    assert!(drift.is_empty(), "ABI drift:\n{}", drift.join("\n"));
    assert!(c.len() >= 80, "every item compared ({})", c.len());
}

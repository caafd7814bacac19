/* SPDX-License-Identifier: (GPL-2.0 WITH Linux-syscall-note) OR MIT */
/*
 * relaymap_abi.h - the one definition of the relaymap kernel/user ABI.
 *
 * Included by the kernel module (kmod/) and by userspace (the Rust SDK
 * mirrors it in sdk/src/abi.rs; a test compiles this header and compares
 * every size, offset, magic value and ioctl number with the Rust side).
 *
 * A relaymap channel lives in debugfs at relaymap/<name>/:
 *
 *   cpu0 .. cpuN-1  one relay buffer per CPU (mode 0400). mmap the whole
 *                   file: length exactly info.alloc_size, offset 0,
 *                   PROT_READ, MAP_SHARED. Any other length or a non-zero
 *                   offset is EINVAL; PROT_WRITE with MAP_SHARED is EPERM
 *                   (EACCES on an O_RDONLY open) and the mapping cannot be
 *                   made writable later. An open or mapped file keeps the
 *                   module loaded.
 *   control         the control file (mode 0600): the ioctls below.
 *
 * Each buffer is n_subbufs sub-buffers of subbuf_size bytes. Sub-buffer
 * number s (s counts from 0 and keeps counting across laps) lives at byte
 * (s % n_subbufs) * subbuf_size of the mapping and starts with a
 * struct relaymap_subbuf_header.
 *
 * Reading protocol (no-overwrite mode, the default):
 *   1. RELAYMAP_IOC_GET_CURSOR(cpu) -> produced, consumed.
 *      produced counts sub-buffers whose header is final: the module
 *      publishes it only after it has written the header's commit mark
 *      (with release ordering). relay itself counts a sub-buffer before
 *      its header is written; never use relay's own count.
 *   2. For s in consumed..produced: read the header with acquire ordering
 *      on `commit` (commit == seq + 1 and seq == s), then the payload
 *      [header_size, header_size + payload_size). The kernel does not
 *      touch that sub-buffer again until it is consumed.
 *   3. RELAYMAP_IOC_PUT_CONSUMED(cpu, n) hands n sub-buffers back.
 *
 * Overwrite mode (flight recorder, RELAYMAP_INFO_OVERWRITE): the kernel
 * never waits for the reader. Only the n_subbufs - 1 sub-buffers before
 * `produced` can still be valid, and even those may be rewritten while
 * you read them. Copy the payload first,
 * then re-read `commit` and `seq` (acquire) and keep the copy only if they
 * are unchanged and still name the sub-buffer you expected (a seqlock).
 * A seq larger than expected means the reader was lapped.
 *
 * Clock: every timestamp in this ABI is CLOCK_MONOTONIC in nanoseconds
 * (ktime_get_mono_fast_ns() in the kernel), comparable with
 * clock_gettime(CLOCK_MONOTONIC) in userspace.
 */
#ifndef _UAPI_LINUX_RELAYMAP_ABI_H
#define _UAPI_LINUX_RELAYMAP_ABI_H

#include <linux/types.h>
#include <linux/ioctl.h>

/* Bumped on any incompatible change; GET_INFO reports the kernel's. */
#define RELAYMAP_ABI_VERSION 1

/* "RMSB" little-endian: first word of every sub-buffer header. */
#define RELAYMAP_SUBBUF_MAGIC 0x42534d52U

/* Maximum length of a channel name, including the NUL. */
#define RELAYMAP_NAME_MAX 64
/* CPUs described by relaymap_info.cpu_mask. */
#define RELAYMAP_MAX_CPUS 1024

/* --- Sub-buffer header ------------------------------------------------ */

/* relaymap_subbuf_header.flags */
#define RELAYMAP_SB_FLUSHED (1U << 0) /* closed early by a flush */
#define RELAYMAP_SB_DROPS (1U << 1)   /* records were dropped since the previous sub-buffer closed */

/*
 * At offset 0 of every sub-buffer, written by the module's subbuf_start
 * callback on the CPU that owns the buffer.
 *
 * Lifecycle of sub-buffer seq = s:
 *   open:   commit = 0 is stored first (then smp_wmb), then the other
 *           fields; payload_size, padding, ts_end_ns and records_dropped
 *           are 0 while the sub-buffer is being written.
 *   closed: payload_size, padding, ts_end_ns, records_dropped and flags
 *           are final, then commit = s + 1 is stored with release
 *           ordering (smp_store_release). Only then is it counted in
 *           GET_CURSOR.produced.
 */
struct relaymap_subbuf_header {
	__u32 magic;		/* RELAYMAP_SUBBUF_MAGIC */
	__u16 abi_version;	/* RELAYMAP_ABI_VERSION */
	__u16 header_size;	/* bytes reserved for this header: payload starts here */
	__u32 cpu;		/* CPU that owns this buffer */
	__u32 flags;		/* RELAYMAP_SB_* */
	__u64 seq;		/* sub-buffer number on this CPU, from 0 (resets on RESET) */
	__u64 ts_begin_ns;	/* CLOCK_MONOTONIC when the sub-buffer was opened */
	__u64 ts_end_ns;	/* CLOCK_MONOTONIC when it was closed */
	__u32 payload_size;	/* bytes of data after the header */
	__u32 padding;		/* unused bytes at the end of the sub-buffer */
	__u64 records_dropped;	/* cumulative records dropped on this CPU at close */
	__u64 commit;		/* 0 while open; seq + 1 once closed (release) */
};

/*
 * header_size + payload_size + padding == subbuf_size for every closed
 * sub-buffer.
 */

/* --- Record framing ----------------------------------------------------- */

/*
 * The module's own writers (relaymap_write(), relaymap_printf(),
 * relaymap_reserve()/relaymap_commit() and the load generator) frame the
 * payload as a sequence of records:
 *
 *   offset 0:        struct relaymap_record, then size - 16 bytes of data
 *   offset ALIGN(size, RELAYMAP_RECORD_ALIGN): the next record
 *
 * Iteration stops when fewer than sizeof(struct relaymap_record) bytes of
 * the payload remain. A record whose size is smaller than the record
 * header or runs past payload_size is corrupt. Raw writers
 * (relaymap_write_raw()) put unframed bytes in the payload; a channel is
 * either framed or raw by convention of its writers.
 */
#define RELAYMAP_RECORD_ALIGN 8

struct relaymap_record {
	__u32 size;		/* bytes of this record, header included, unaligned */
	__u16 type;		/* RELAYMAP_REC_* or a writer's own type >= 0x100 */
	__u16 flags;		/* reserved, 0 */
	__u64 ts_ns;		/* CLOCK_MONOTONIC when the record was written */
};

/* relaymap_record.type */
#define RELAYMAP_REC_PRINTF 1	/* data: text, no trailing NUL */
#define RELAYMAP_REC_LOADGEN 2	/* data: struct relaymap_loadgen_payload + fill */
#define RELAYMAP_REC_USER 0x100	/* first type free for other modules */

/*
 * Load generator records (relaymap_loadgen.ko). data is this struct then
 * `size - sizeof(relaymap_record) - sizeof(relaymap_loadgen_payload)`
 * fill bytes, fill[i] = (__u8)(seq * 13 + i * 7 + cpu).
 * checksum is FNV-1a 32 (offset basis 0x811c9dc5, prime 0x01000193) over
 * the 8 little-endian bytes of seq, the 4 of cpu, then the fill bytes.
 * seq counts write attempts on that CPU from 0, so a gap in seq is a
 * record the kernel dropped.
 */
struct relaymap_loadgen_payload {
	__u64 seq;
	__u32 cpu;
	__u32 checksum;
};

#define RELAYMAP_FNV_OFFSET 0x811c9dc5U
#define RELAYMAP_FNV_PRIME 0x01000193U

/* --- Control file ioctls ---------------------------------------------- */

/*
 * Every ioctl struct starts with `size`: the caller sets it to the
 * sizeof() it was compiled with. The kernel rejects a size smaller than
 * the first version of the struct (EINVAL), reads and writes only
 * min(size, kernel's sizeof) bytes and zeroes what it writes before
 * filling it. Newer fields are appended; nothing is ever reordered.
 *
 * Errors common to every ioctl: EFAULT (bad pointer), EINVAL (size too
 * small, reserved field non-zero), ENOTTY (unknown ioctl number).
 */
#define RELAYMAP_IOC_MAGIC 0xB7

/* relaymap_info.flags */
#define RELAYMAP_INFO_OVERWRITE (1U << 0) /* flight-recorder mode */

struct relaymap_info {
	__u32 size;
	__u32 abi_version;	/* RELAYMAP_ABI_VERSION of the module */
	__u32 header_size;	/* sizeof(struct relaymap_subbuf_header) reserved per sub-buffer */
	__u32 flags;		/* RELAYMAP_INFO_* */
	__u64 subbuf_size;
	__u64 n_subbufs;
	__u64 alloc_size;	/* bytes to mmap per CPU file */
	__u32 nr_cpu_ids;	/* CPUs the kernel can have; bits beyond are 0 */
	__u32 max_record_size;	/* largest framed record a writer may emit */
	char name[RELAYMAP_NAME_MAX];	/* channel name, NUL-terminated */
	__u64 cpu_mask[RELAYMAP_MAX_CPUS / 64];	/* bit c set: cpu<c> file exists */
};

struct relaymap_cursor {
	__u32 size;
	__u32 cpu;		/* in */
	__u64 produced;		/* sub-buffers closed and committed */
	__u64 consumed;		/* sub-buffers handed back */
	__u64 records_dropped;	/* records dropped on this CPU (no-overwrite) */
	__u64 subbufs_lapped;	/* unconsumed sub-buffers overwritten (overwrite) */
};

struct relaymap_consume {
	__u32 size;
	__u32 cpu;		/* in */
	__u64 count;		/* in: sub-buffers consumed */
};

#define RELAYMAP_ALL_CPUS (-1)

struct relaymap_flush {
	__u32 size;
	__s32 cpu;		/* in: a CPU or RELAYMAP_ALL_CPUS */
};

struct relaymap_stats {
	__u32 size;
	__s32 cpu;		/* in: a CPU or RELAYMAP_ALL_CPUS for the sum */
	__u64 records_written;	/* records accepted by the module's write API */
	__u64 bytes_written;	/* payload bytes accepted by the module's write API */
	__u64 records_dropped;	/* write attempts dropped because the buffer was full */
	__u64 subbufs_produced;	/* sub-buffers closed and committed since reset */
	__u64 subbufs_consumed;
	__u64 subbufs_lapped;
	__u64 flushes;		/* sub-buffers closed early by FLUSH */
	__u64 resets;		/* RESETs of this channel since creation */
};

/*
 * GET_INFO: geometry and identity of the channel.
 */
#define RELAYMAP_IOC_GET_INFO _IOWR(RELAYMAP_IOC_MAGIC, 0x01, struct relaymap_info)
/*
 * GET_CURSOR: one CPU's published counts.
 *   EINVAL: cpu >= nr_cpu_ids or that CPU has no buffer.
 */
#define RELAYMAP_IOC_GET_CURSOR _IOWR(RELAYMAP_IOC_MAGIC, 0x02, struct relaymap_cursor)
/*
 * PUT_CONSUMED: hand count sub-buffers of one CPU back to the kernel
 * (relay_subbufs_consumed()).
 *   EINVAL: bad cpu, count == 0, or consumed + count > produced.
 */
#define RELAYMAP_IOC_PUT_CONSUMED _IOW(RELAYMAP_IOC_MAGIC, 0x03, struct relaymap_consume)
/*
 * FLUSH: close the current sub-buffer of one CPU, or of all, on the CPU
 * that owns it (safe while writers run), so that partial data becomes
 * visible. A sub-buffer with no payload is not closed.
 *   EINVAL: bad cpu.
 */
#define RELAYMAP_IOC_FLUSH _IOW(RELAYMAP_IOC_MAGIC, 0x04, struct relaymap_flush)
/*
 * RESET: empty every buffer of the channel and restart seq and counters at
 * 0 (relay_reset()). Mapped consumers must re-read their cursors.
 *   EBUSY: a writer is registered on the channel (e.g. the load generator
 *          is running); stop it first.
 */
#define RELAYMAP_IOC_RESET _IO(RELAYMAP_IOC_MAGIC, 0x05)
/*
 * GET_STATS: counters of one CPU or of the whole channel.
 *   EINVAL: bad cpu.
 */
#define RELAYMAP_IOC_GET_STATS _IOWR(RELAYMAP_IOC_MAGIC, 0x06, struct relaymap_stats)

#endif /* _UAPI_LINUX_RELAYMAP_ABI_H */

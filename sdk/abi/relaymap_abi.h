/* SPDX-License-Identifier: (GPL-2.0 WITH Linux-syscall-note) OR MIT */
/*
 * relaymap_abi.h - the one definition of the relaymap kernel/user ABI, version 2.
 *
 * Included by the kernel module (kmod/) and by userspace. The Rust SDK's
 * mirror (sdk/src/abi_sys.rs) is generated from this file by bindgen and
 * committed; a host test regenerates it and fails on a diff.
 *
 * ------------------------------------------------------------------------
 * Compatibility policy
 * ------------------------------------------------------------------------
 * RELAYMAP_ABI_VERSION names the layout of the mapped memory (sub-buffer
 * header, record framing) and the meaning of every ioctl. It is bumped on
 * any change an existing consumer could misread; it is not bumped for
 * appended ioctl struct fields, new ioctls or new flags (those are
 * extensible, below). A consumer checks it once, with
 * RELAYMAP_IOC_GET_VERSION on /dev/relaymap or relaymap_info.abi_version,
 * and refuses to consume a version it does not know: an old consumer on a
 * new module gets a clear "ABI version mismatch" from the SDK, never a
 * misread buffer. Every sub-buffer header carries the version again.
 * Version 1 (the debugfs-only ABI, never released) is not supported by
 * this module or by the SDK.
 *
 * Extensible ioctl structs (the openat2 / copy_struct_from_user() rule):
 * every struct starts with __u32 size, set by the caller to the sizeof()
 * it was compiled with. The command numbers encode the literal size of
 * the struct's *first* version (RELAYMAP_*_SIZE_VER0) and never change;
 * the kernel dispatches on _IOC_NR() and reads `size` instead.
 *   - size < the first version's size: EINVAL.
 *   - size > the kernel's size: the unknown tail must be zero, else E2BIG.
 *   - size > the page size: E2BIG (the kernel scans no further for zeroes).
 *   - The kernel writes back min(size, its sizeof) bytes and sets `size`
 *     to the number it wrote. Fields are only ever appended.
 * Reserved fields and flags must be zero (EINVAL otherwise). The size
 * encoded in a command number is not checked: the kernel reads `size`.
 *
 * ------------------------------------------------------------------------
 * Files
 * ------------------------------------------------------------------------
 *   /dev/relaymap   misc device. Its mode and group are module parameters
 *                   (mode=, group=; default 0600 root:root); kmod/ ships a
 *                   udev rule for a "relaymap" group. Ioctls: GET_VERSION,
 *                   LIST, OPEN_CHANNEL.
 *   channel fd      from OPEN_CHANNEL (O_RDWR|O_CLOEXEC anon inode
 *                   "[relaymap-channel]"). Observer and control operations:
 *                   GET_INFO, GET_CURSOR, GET_CURSORS, FLUSH, RESET,
 *                   GET_STATS, and OPEN_CONSUMER. It keeps the channel alive.
 *   consumer fd     from OPEN_CONSUMER (O_RDONLY|O_CLOEXEC anon inode
 *                   "[relaymap-consumer]"), one per CPU. It holds that
 *                   CPU's consumer claim until closed. mmap, poll, read and
 *                   the ioctls GET_CURSOR (its own CPU) and PUT_CONSUMED.
 *
 * The legacy debug view in debugfs, relaymap/<name>/{control,cpuN}, exists
 * when debugfs is mounted and usable. `control` answers the channel-fd
 * ioctls (including OPEN_CONSUMER); `cpuN` can be mapped and polled by
 * root as an observer but not read() (EINVAL) and never hands anything
 * back.
 * Under lockdown (Secure Boot) debugfs refuses to open both: use
 * /dev/relaymap. Without debugfs the buffers' placeholder files live in
 * securityfs (relaymap/<name>/cpuN, never opened by consumers).
 *
 * Mapping a consumer fd (or a debugfs cpu file): length exactly
 * info.alloc_size, offset 0, PROT_READ, MAP_SHARED. Any other length or
 * a non-zero offset is EINVAL; PROT_WRITE or PROT_EXEC is EPERM (EACCES
 * where the open mode already forbids it), and the mapping can never be
 * made writable or executable later.
 *
 * ------------------------------------------------------------------------
 * Ownership
 * ------------------------------------------------------------------------
 * Consuming is exclusive per CPU: one consumer fd per (channel, CPU) at a
 * time. OPEN_CONSUMER of a CPU someone holds fails with EBUSY;
 * GET_CURSOR(S) then report the holder's pid and comm. PUT_CONSUMED is
 * accepted only on a consumer fd (EPERM on a channel fd). Releasing the
 * consumer file (also by exit or crash) releases the claim: that is when
 * its last fd is closed AND its last mapping is unmapped (a mapping holds
 * the file). What it handed back stays handed back; the rest is delivered
 * to the next consumer. holder_pid is the holder's tgid in the caller's pid
 * namespace (0 if not visible there); holder_comm is the comm of the thread
 * that called OPEN_CONSUMER.
 *
 * Lifetime: channel and consumer fds (and an open debugfs control file)
 * keep the channel alive. When its creator destroys it, the name leaves
 * LIST and OPEN_CHANNEL, RELAYMAP_INFO_DESTROYED and
 * RELAYMAP_CURSOR_DESTROYED are set, and FLUSH, GET_CURSOR(S), GET_STATS
 * and PUT_CONSUMED keep working, so a consumer drains everything that was
 * produced; poll() on a consumer fd then reports EPOLLHUP once that CPU is
 * drained (produced == consumed). The buffers are freed at the last close.
 * Observers (LIST, GET_INFO, GET_CURSOR(S), GET_STATS) never need a claim.
 * FLUSH needs none either. RESET needs no consumer on any CPU (EBUSY).
 *
 * ------------------------------------------------------------------------
 * Byte order
 * ------------------------------------------------------------------------
 * Everything in the mapped buffers and in the ioctl structs is in the
 * byte order of the kernel that wrote it (host order). A CTF reader is
 * told that order in the trace metadata (byte_order = le or be), so a
 * dump can be read on a host of the other order.
 *
 * ------------------------------------------------------------------------
 * Buffers, sub-buffers and the reading protocol
 * ------------------------------------------------------------------------
 * Each CPU buffer is n_subbufs sub-buffers of subbuf_size bytes
 * (subbuf_size a multiple of the page size, so every sub-buffer is page
 * aligned). Sub-buffer number s (counting from 0 across laps) lives at
 * byte (s % n_subbufs) * subbuf_size of the mapping and starts with a
 * struct relaymap_subbuf_header.
 *
 * No-overwrite mode (the default):
 *   1. GET_CURSOR on the consumer fd -> produced, consumed. `produced`
 *      counts sub-buffers whose header is final: the module publishes it
 *      only after storing the header's `commit` with release ordering.
 *   2. For s in consumed..produced: read `commit` with acquire ordering
 *      (commit == s + 1, packet_seq_num == s), then the events. The
 *      kernel does not touch that sub-buffer again until it is consumed.
 *   3. PUT_CONSUMED(n) on the consumer fd hands n sub-buffers back.
 * Overwrite mode (flight recorder, RELAYMAP_INFO_OVERWRITE): the kernel
 * never waits for the reader. Only the n_subbufs - 1 sub-buffers before
 * `produced` can be valid, and even those may be rewritten while read:
 * copy first, then re-read `commit` and `packet_seq_num` (acquire) and
 * keep the copy only if unchanged (a seqlock). A larger seq than expected
 * means the reader was lapped.
 *
 * Clock: every timestamp is CLOCK_MONOTONIC in nanoseconds
 * (ktime_get_mono_fast_ns()), comparable with clock_gettime(CLOCK_MONOTONIC).
 */
#ifndef _UAPI_LINUX_RELAYMAP_ABI_H
#define _UAPI_LINUX_RELAYMAP_ABI_H

#include <linux/types.h>
#include <linux/ioctl.h>

#define RELAYMAP_ABI_VERSION 2

/* The misc device. */
#define RELAYMAP_DEVICE_PATH "/dev/relaymap"

/* Maximum length of a channel name, including the NUL. */
#define RELAYMAP_NAME_MAX 64
/* CPUs described by relaymap_info.cpu_mask. */
#define RELAYMAP_MAX_CPUS 1024
/* Length of relaymap_cursor.holder_comm, including the NUL (TASK_COMM_LEN). */
#define RELAYMAP_COMM_MAX 16

/* --- Sub-buffer header: a CTF 1.8 packet header and packet context ------- */

/* CTF's packet magic: first word of every sub-buffer. */
#define RELAYMAP_CTF_MAGIC 0xC1FC1FC1U

/* relaymap_subbuf_header.flags */
#define RELAYMAP_SB_FLUSHED (1U << 0) /* closed early by a flush */
#define RELAYMAP_SB_DROPS (1U << 1)   /* records were dropped since the previous sub-buffer closed */

/*
 * At offset 0 of every sub-buffer, written by the module on the CPU that
 * owns the buffer. In CTF 1.8 terms (see the metadata in
 * examples/relaymap-dump) bytes [0, 32) are trace.packet.header and
 * [32, 112) stream.packet.context; the events follow at header_size.
 *
 * Lifecycle of sub-buffer s:
 *   open:   commit = 0 is stored first (then smp_wmb), then the other
 *           fields; timestamp_end, content_size, packet_size,
 *           events_discarded and flags are 0 while it is written.
 *   closed: those fields are final, then commit = s + 1 is stored with
 *           release ordering. Only then is s counted in `produced`.
 *
 * A closed sub-buffer holds content_size / 8 bytes of header and events;
 * packet_size / 8 is that rounded up to the page size (never more than
 * subbuf_size), so a consumer can write the first packet_size / 8 bytes
 * of the sub-buffer, whole pages, as one CTF packet.
 */
struct relaymap_subbuf_header {
	/* trace.packet.header */
	__u32 magic;		/* RELAYMAP_CTF_MAGIC */
	__u8 uuid[16];		/* channel instance; new at create and at RESET (== relaymap_info.uuid) */
	__u32 stream_id;	/* 0: the one stream class */
	__u64 stream_instance_id; /* the CPU */
	/* stream.packet.context */
	__u64 timestamp_begin;	/* CLOCK_MONOTONIC ns when the sub-buffer was opened */
	__u64 timestamp_end;	/* CLOCK_MONOTONIC ns when it was closed */
	__u64 content_size;	/* bits: header + events, up to the end of the last event's data */
	__u64 packet_size;	/* bits: content_size rounded up to the page size, <= subbuf_size * 8 */
	__u64 packet_seq_num;	/* s: sub-buffer number on this CPU, from 0 (restarts at RESET) */
	__u64 events_discarded;	/* cumulative records dropped on this CPU at close (buffer full) */
	__u32 cpu_id;		/* CPU that owns this buffer */
	__u32 flags;		/* RELAYMAP_SB_* */
	__u64 events_rejected;	/* cumulative writes refused on this CPU at close (too large) */
	__u16 abi_version;	/* RELAYMAP_ABI_VERSION */
	__u16 header_size;	/* sizeof(struct relaymap_subbuf_header): the first event starts here */
	__u32 reserved;		/* 0 */
	__u64 commit;		/* 0 while open; s + 1 once closed (release) */
};

/* --- Record framing: CTF 1.8 events ----------------------------------- */

/*
 * The module's writers (relaymap_write(), relaymap_printf(),
 * relaymap_reserve()/relaymap_commit(), the load generator) fill a
 * sub-buffer with records:
 *
 *   offset 0:   struct relaymap_record, then len bytes of data
 *   offset ALIGN(16 + len, RELAYMAP_RECORD_ALIGN): the next record
 *
 * The events end at content_size / 8 - header_size bytes: the last
 * record's data ends exactly there (no trailing alignment). A record
 * whose data runs past that end, or an event_id the module does not
 * define, is corrupt. In CTF, bytes [0, 10) are the event header
 * (timestamp, id) and [10, 16 + len) the event fields (type, len, data).
 * Raw writers (relaymap_write_raw()) put unframed bytes in the payload;
 * a channel is either framed or raw by convention of its writers, and
 * only a framed channel's dump is a valid CTF trace.
 */
#define RELAYMAP_RECORD_ALIGN 8

struct relaymap_record {
	__u64 ts_ns;		/* event.header.timestamp: CLOCK_MONOTONIC ns */
	__u16 event_id;		/* event.header.id: RELAYMAP_EVENT_* */
	__u16 type;		/* RELAYMAP_REC_* or a writer's own type >= 0x100 */
	__u32 len;		/* bytes of data after this header */
};

/* relaymap_record.event_id (CTF event classes) */
#define RELAYMAP_EVENT_RECORD 0	/* "relaymap:record": data is binary */
#define RELAYMAP_EVENT_PRINTF 1	/* "relaymap:printf": data is UTF-8 text, no NUL */

/* relaymap_record.type */
#define RELAYMAP_REC_PRINTF 1	/* data: text (event_id RELAYMAP_EVENT_PRINTF); the load
				 * generator's method=printf writes "relaymap_loadgen cpu C seq S" */
#define RELAYMAP_REC_LOADGEN 2	/* data: struct relaymap_loadgen_payload + fill */
#define RELAYMAP_REC_USER 0x100	/* first type free for other modules */

/*
 * Load generator records (relaymap_loadgen.ko). data is this struct then
 * len - sizeof(struct relaymap_loadgen_payload) fill bytes,
 * fill[i] = (__u8)(seq * 13 + i * 7 + cpu).
 * checksum is FNV-1a 32 (offset basis 0x811c9dc5, prime 0x01000193) over
 * the 8 bytes of seq, the 4 of cpu (both in the record's byte order),
 * then the fill bytes. seq counts write attempts on that CPU from 0, so a
 * gap in seq is a record the kernel dropped.
 */
struct relaymap_loadgen_payload {
	__u64 seq;
	__u32 cpu;
	__u32 checksum;
};

#define RELAYMAP_FNV_OFFSET 0x811c9dc5U
#define RELAYMAP_FNV_PRIME 0x01000193U

/* --- Ioctls ------------------------------------------------------------ */

/*
 * Errors common to every ioctl: EFAULT (bad pointer), EINVAL (size below
 * the first version, reserved field or flag non-zero), E2BIG (non-zero
 * tail beyond the kernel's struct), ENOTTY (unknown command, or a command
 * of another kind of fd), EPERM (an operation this fd kind may not do).
 */
#define RELAYMAP_IOC_MAGIC 0xB7

/* relaymap_info.flags */
#define RELAYMAP_INFO_OVERWRITE (1U << 0) /* flight-recorder mode */
#define RELAYMAP_INFO_DESTROYED (1U << 1) /* its creator destroyed it; drain what is left */

struct relaymap_info {
	__u32 size;
	__u32 abi_version;	/* RELAYMAP_ABI_VERSION of the module */
	__u32 header_size;	/* sizeof(struct relaymap_subbuf_header) */
	__u32 flags;		/* RELAYMAP_INFO_* */
	__u64 subbuf_size;	/* bytes per sub-buffer, a multiple of page_size */
	__u64 n_subbufs;
	__u64 alloc_size;	/* bytes to mmap per CPU */
	__u32 nr_cpu_ids;	/* CPUs the kernel can have; bits beyond are 0 */
	__u32 max_record_size;	/* largest framed record, header included */
	__u32 max_data_size;	/* largest data of one record: max_record_size - 16 */
	__u32 page_size;	/* the kernel's page size */
	__u8 uuid[16];		/* channel instance (== every header's uuid) */
	char name[RELAYMAP_NAME_MAX];	/* channel name, NUL-terminated */
	__u64 cpu_mask[RELAYMAP_MAX_CPUS / 64];	/* bit c set: CPU c has a buffer */
};
#define RELAYMAP_INFO_SIZE_VER0 264

/* relaymap_cursor.flags */
#define RELAYMAP_CURSOR_NO_BUFFER (1U << 0) /* this CPU has no buffer (GET_CURSORS) */
#define RELAYMAP_CURSOR_HELD (1U << 1)      /* a consumer fd holds this CPU */
#define RELAYMAP_CURSOR_DESTROYED (1U << 2) /* the channel was destroyed */

struct relaymap_cursor {
	__u32 size;
	__u32 cpu;		/* in (ignored on a consumer fd: its own CPU); out */
	__u64 produced;		/* sub-buffers closed and committed */
	__u64 consumed;		/* sub-buffers handed back */
	__u64 records_dropped;	/* records dropped: buffer full (no-overwrite) */
	__u64 subbufs_lapped;	/* unconsumed sub-buffers overwritten (overwrite) */
	__u64 records_rejected;	/* writes refused: larger than max_data_size */
	__u32 flags;		/* RELAYMAP_CURSOR_* */
	__s32 holder_pid;	/* pid (tgid) of the consumer holding this CPU, 0 if none */
	char holder_comm[RELAYMAP_COMM_MAX];	/* its comm, NUL-terminated */
};
#define RELAYMAP_CURSOR_SIZE_VER0 72

/*
 * GET_CURSORS: the cursors of CPUs first_cpu .. first_cpu + nr - 1 in one
 * call, into an array of nr elements of cursor_size bytes each (the
 * caller's sizeof(struct relaymap_cursor): at least the first version's,
 * at most the page size, a multiple of 4; EINVAL otherwise). Each element
 * gets min(cursor_size, sizeof) bytes with its `size` set to that, the
 * rest of it zeroed. CPUs without a buffer get RELAYMAP_CURSOR_NO_BUFFER.
 * On return nr is the number of elements filled (stops at nr_cpu_ids;
 * first_cpu >= nr_cpu_ids gives nr = 0). `consumed` never exceeds
 * `produced`, here and in every cursor and stats.
 */
struct relaymap_cursors {
	__u32 size;
	__u32 first_cpu;	/* in */
	__u32 nr;		/* in: array capacity; out: elements filled */
	__u32 cursor_size;	/* in: bytes per element */
	__u64 cursors;		/* in: user pointer to the array */
};
#define RELAYMAP_CURSORS_SIZE_VER0 24

struct relaymap_consume {
	__u32 size;
	__u32 reserved;		/* 0 */
	__u64 count;		/* in: sub-buffers consumed */
};
#define RELAYMAP_CONSUME_SIZE_VER0 16

#define RELAYMAP_ALL_CPUS (-1)

struct relaymap_flush {
	__u32 size;
	__s32 cpu;		/* in: a CPU or RELAYMAP_ALL_CPUS */
};
#define RELAYMAP_FLUSH_SIZE_VER0 8

/*
 * Counters: each moves only as described, and only RESET sets them back
 * to 0 (except resets).
 */
struct relaymap_stats {
	__u32 size;
	__s32 cpu;		/* in: a CPU or RELAYMAP_ALL_CPUS for the sum */
	__u64 records_written;	/* records accepted by the module's write API */
	__u64 bytes_written;	/* data bytes accepted by the module's write API */
	__u64 records_dropped;	/* write attempts dropped because the buffer was full (not by try_ writers) */
	__u64 subbufs_produced;	/* sub-buffers closed and committed */
	__u64 subbufs_consumed;	/* sub-buffers handed back by consumers */
	__u64 subbufs_lapped;	/* unconsumed sub-buffers overwritten (overwrite mode) */
	__u64 flushes;		/* sub-buffers closed early by FLUSH */
	__u64 resets;		/* RESETs of this channel since creation (never reset) */
	__u64 records_rejected;	/* writes refused as larger than max_data_size (not by try_ writers) */
};
#define RELAYMAP_STATS_SIZE_VER0 80

/* LIST: names of the channels, in creation order. */
struct relaymap_list {
	__u32 size;
	__u32 nr;		/* in: capacity of names[]; out: channels that exist (may exceed it) */
	__u64 names;		/* in: user pointer to nr * RELAYMAP_NAME_MAX bytes, or 0 to count */
};
#define RELAYMAP_LIST_SIZE_VER0 16

/* OPEN_CHANNEL: returns a channel fd. */
struct relaymap_open_channel {
	__u32 size;
	__u32 flags;		/* 0 */
	char name[RELAYMAP_NAME_MAX];	/* in */
};
#define RELAYMAP_OPEN_CHANNEL_SIZE_VER0 72

/*
 * OPEN_CONSUMER: claim one CPU (returns its consumer fd) or every CPU with
 * a buffer at once (cpu = RELAYMAP_ALL_CPUS: fds[c] receives the fd of
 * CPU c, -1 for CPUs without a buffer; returns 0). All or nothing: if any
 * CPU is held, nothing is claimed and the call fails with EBUSY. For one
 * CPU, nr_fds and fds must be 0 (EINVAL); for ALL, nr_fds < nr_cpu_ids is
 * EINVAL.
 */
struct relaymap_open_consumer {
	__u32 size;
	__s32 cpu;		/* in: a CPU or RELAYMAP_ALL_CPUS */
	__u32 flags;		/* 0 */
	__u32 nr_fds;		/* in: capacity of fds[] for ALL (>= nr_cpu_ids), else 0 */
	__u64 fds;		/* in: user pointer to __s32[nr_fds] for ALL, else 0 */
};
#define RELAYMAP_OPEN_CONSUMER_SIZE_VER0 24

#define RELAYMAP_IOC(dir, nr, size) _IOC(dir, RELAYMAP_IOC_MAGIC, nr, size)
#define RELAYMAP_IOC_RW(nr, size) RELAYMAP_IOC(_IOC_READ | _IOC_WRITE, nr, size)
#define RELAYMAP_IOC_W(nr, size) RELAYMAP_IOC(_IOC_WRITE, nr, size)

/* --- on /dev/relaymap --- */
/* GET_VERSION: returns RELAYMAP_ABI_VERSION; no argument. */
#define RELAYMAP_IOC_GET_VERSION _IO(RELAYMAP_IOC_MAGIC, 0x20)
#define RELAYMAP_IOC_LIST RELAYMAP_IOC_RW(0x21, RELAYMAP_LIST_SIZE_VER0)
/* OPEN_CHANNEL: ENOENT no such channel; returns the fd. */
#define RELAYMAP_IOC_OPEN_CHANNEL RELAYMAP_IOC_W(0x22, RELAYMAP_OPEN_CHANNEL_SIZE_VER0)

/* --- on a channel fd (and the debugfs control file) --- */
#define RELAYMAP_IOC_GET_INFO RELAYMAP_IOC_RW(0x01, RELAYMAP_INFO_SIZE_VER0)
/* GET_CURSOR: EINVAL cpu >= nr_cpu_ids or without a buffer. Also on a consumer fd. */
#define RELAYMAP_IOC_GET_CURSOR RELAYMAP_IOC_RW(0x02, RELAYMAP_CURSOR_SIZE_VER0)
/*
 * PUT_CONSUMED, on a consumer fd only (EPERM elsewhere): hand count
 * sub-buffers back. EINVAL: count == 0 or consumed + count > produced.
 */
#define RELAYMAP_IOC_PUT_CONSUMED RELAYMAP_IOC_W(0x03, RELAYMAP_CONSUME_SIZE_VER0)
/*
 * FLUSH: close the current sub-buffer of one CPU, or of all CPUs in
 * parallel, on the CPU that owns it (safe while writers run). A
 * sub-buffer with no payload is not closed. EINVAL: bad cpu.
 */
#define RELAYMAP_IOC_FLUSH RELAYMAP_IOC_W(0x04, RELAYMAP_FLUSH_SIZE_VER0)
/*
 * RESET: empty every buffer, restart seq and counters at 0, new uuid.
 * EBUSY: a writer is registered, or a consumer fd is open.
 */
#define RELAYMAP_IOC_RESET _IO(RELAYMAP_IOC_MAGIC, 0x05)
#define RELAYMAP_IOC_GET_STATS RELAYMAP_IOC_RW(0x06, RELAYMAP_STATS_SIZE_VER0)
#define RELAYMAP_IOC_GET_CURSORS RELAYMAP_IOC_RW(0x07, RELAYMAP_CURSORS_SIZE_VER0)
/* OPEN_CONSUMER: EBUSY held (see GET_CURSOR.holder_*), EINVAL bad cpu. */
#define RELAYMAP_IOC_OPEN_CONSUMER RELAYMAP_IOC_RW(0x08, RELAYMAP_OPEN_CONSUMER_SIZE_VER0)

#endif /* _UAPI_LINUX_RELAYMAP_ABI_H */

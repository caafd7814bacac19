/* SPDX-License-Identifier: GPL-2.0 */
/*
 * State shared by the files of relaymap.ko.
 */
#ifndef _RELAYMAP_INTERNAL_H
#define _RELAYMAP_INTERNAL_H

#include <linux/kref.h>
#include <linux/list.h>
#include <linux/mutex.h>
#include <linux/relay.h>
#include <linux/sizes.h>

#include "relaymap.h"

#define RELAYMAP_HDR_SIZE	sizeof(struct relaymap_subbuf_header)
#define RELAYMAP_REC_HDR_SIZE	sizeof(struct relaymap_record)

/* Geometry limits checked by relaymap_chan_create(). */
#define RELAYMAP_MIN_SUBBUF	4096UL
#define RELAYMAP_MAX_SUBBUF	((unsigned long)SZ_64M)
#define RELAYMAP_MIN_SUBBUFS	2UL
#define RELAYMAP_MAX_SUBBUFS	4096UL
#define RELAYMAP_MAX_ALLOC	((unsigned long)SZ_1G)

/* Longest relaymap_printf() text; longer text is truncated. */
#define RELAYMAP_PRINTF_MAX	1024

/*
 * Per-CPU state of a channel. Every field except @published is written
 * only by the CPU that owns the buffer with local interrupts disabled
 * (writers, subbuf_start, flush via work_on_cpu), or by the control path
 * while that CPU is offline or the channel has no writers (RESET).
 * Other CPUs read the counters with READ_ONCE().
 */
struct relaymap_cpu {
	/* sub-buffers closed with a final header: release/acquire */
	u64 published;
	u64 records_written;
	u64 bytes_written;
	u64 records_dropped;
	u64 subbufs_lapped;
	u64 flushes;
	/* records_dropped when the last sub-buffer was closed */
	u64 dropped_at_close;
	/* set around relay_switch_subbuf() by FLUSH: mark, do not count */
	bool in_flush;
	/* set around relay_switch_subbuf() by try-writers: do not count */
	bool no_count;
};

struct relaymap_chan {
	struct list_head node;		/* in relaymap_channels */
	struct kref kref;
	char name[RELAYMAP_NAME_MAX];
	size_t subbuf_size;
	size_t n_subbufs;
	bool overwrite;
	bool listed;			/* still in relaymap_channels */
	struct rchan *rchan;
	struct relaymap_cpu __percpu *pcpu;
	struct dentry *dir;
	struct dentry *control;
	struct mutex lock;		/* serialises control operations */
	unsigned int writers;		/* under @lock */
	u64 resets;			/* under @lock */
};

static inline void relaymap_add(u64 *counter, u64 n)
{
	WRITE_ONCE(*counter, *counter + n);
}

/* relaymap_main.c */
struct rchan_buf *relaymap_cpu_buf(struct relaymap_chan *ch, int cpu);

/* relaymap_control.c */
extern const struct file_operations relaymap_control_fops;
int relaymap_flush_locked(struct relaymap_chan *ch, int cpu);
void relaymap_fill_info(struct relaymap_chan *ch, struct relaymap_info *info);

#endif /* _RELAYMAP_INTERNAL_H */

/* SPDX-License-Identifier: GPL-2.0 */
/*
 * State shared by the files of relaymap.ko.
 */
#ifndef _RELAYMAP_INTERNAL_H
#define _RELAYMAP_INTERNAL_H

#include <linux/fs.h>
#include <linux/kref.h>
#include <linux/list.h>
#include <linux/mutex.h>
#include <linux/pid.h>
#include <linux/rcupdate.h>
#include <linux/relay.h>
#include <linux/sched.h>
#include <linux/sizes.h>
#include <linux/uuid.h>
#include <linux/wait.h>
#include <linux/workqueue.h>

#include <relaymap/relaymap.h>

#define RELAYMAP_HDR_SIZE	sizeof(struct relaymap_subbuf_header)
#define RELAYMAP_REC_HDR_SIZE	sizeof(struct relaymap_record)

/* Geometry limits checked by relaymap_chan_create(). */
#define RELAYMAP_MIN_SUBBUF	4096UL
#define RELAYMAP_MAX_SUBBUF	((unsigned long)SZ_64M)
#define RELAYMAP_MIN_SUBBUFS	2UL
#define RELAYMAP_MAX_SUBBUFS	4096UL
#define RELAYMAP_MAX_ALLOC	((unsigned long)SZ_1G)

/* Where the placeholder files relay needs per buffer live. */
enum relaymap_view {
	RELAYMAP_VIEW_DEBUGFS,		/* relaymap/<name>/{cpuN,control} */
	RELAYMAP_VIEW_SECURITYFS,	/* relaymap/<name>/cpuN, never opened */
};

/*
 * The holder of one CPU's consumer claim (OPEN_CONSUMER). Freed after an
 * RCU grace period: GET_CURSOR(S) read the holder's pid and comm under
 * rcu_read_lock() on any CPU.
 */
struct relaymap_consumer {
	struct rcu_head rcu;
	struct pid *pid;		/* tgid of the process that claimed */
	char comm[TASK_COMM_LEN];
	struct mutex lock;		/* serialises PUT_CONSUMED of this fd */
};

/*
 * Per-CPU state of a channel.
 *
 * The fields before @owner are zeroed for a new buffer and at RESET
 * (relaymap_subbuf_start() with no previous sub-buffer). They are written
 * only by the CPU that owns the buffer with local interrupts disabled
 * (writers, subbuf_start, the flush work), or while that CPU is offline,
 * or by RESET (no registered writer, no consumer). Other CPUs read the
 * counters with READ_ONCE() and @published with smp_load_acquire().
 */
struct relaymap_cpu {
	/* sub-buffers closed with a final header: release/acquire */
	u64 published;
	u64 records_written;
	u64 bytes_written;
	u64 records_dropped;
	u64 records_rejected;
	u64 subbufs_lapped;
	u64 flushes;
	/* records_dropped when the last sub-buffer was closed */
	u64 dropped_at_close;
	/*
	 * Alignment padding after the data of the last record written into
	 * the open sub-buffer: subtracted from content_size at close, so
	 * that the content ends exactly at the end of the last record.
	 */
	u32 last_pad;
	/* set around relay_switch_subbuf() by FLUSH: mark, do not count */
	bool in_flush;
	/* set around relay_switch_subbuf() by try-writers: do not count */
	bool no_count;

	/*
	 * The consumer that holds this CPU: set with cmpxchg() under the
	 * channel's @lock (OPEN_CONSUMER), cleared without it when the
	 * consumer fd is released. Read under RCU.
	 */
	struct relaymap_consumer *owner;
	/*
	 * Writers sleeping for space in this CPU's buffer
	 * (relaymap_wait_space(), the _wait writers): woken when sub-buffers
	 * are handed back, when the consumer fd is released, at RESET and at
	 * destroy.
	 */
	wait_queue_head_t space_wait;
	struct work_struct flush_work;	/* FLUSH on this CPU */
	struct relaymap_chan *ch;
	unsigned int cpu;
};

struct relaymap_chan {
	struct list_head node;		/* in relaymap_channels until freed */
	struct kref kref;
	char name[RELAYMAP_NAME_MAX];
	size_t subbuf_size;
	size_t n_subbufs;
	bool overwrite;
	bool listed;			/* under relaymap_lock: found by name */
	bool destroyed;			/* release/acquire: creator destroyed it */
	/*
	 * Channel instance, copied into every sub-buffer header when it is
	 * opened. Changed only under @lock by RESET (no registered writer).
	 */
	uuid_t uuid;
	struct rchan *rchan;
	struct relaymap_cpu __percpu *pcpu;
	struct dentry *dir;		/* placeholder folder, or NULL */
	struct dentry *control;		/* debugfs control file, or NULL */
	/* serialises FLUSH, RESET, OPEN_CONSUMER, writer registration */
	struct mutex lock;
	unsigned int writers;		/* under @lock */
	/*
	 * relaymap_chan_drain_wait() sleepers: woken when a consumer hands
	 * sub-buffers back or releases its claim, and at destroy.
	 */
	wait_queue_head_t drain_wait;
	u64 resets;			/* written under @lock, read with READ_ONCE */
};

static inline void relaymap_add(u64 *counter, u64 n)
{
	WRITE_ONCE(*counter, *counter + n);
}

static inline struct relaymap_cpu *relaymap_pc(struct relaymap_chan *ch,
					       unsigned int cpu)
{
	return per_cpu_ptr(ch->pcpu, cpu);
}

static inline bool relaymap_destroyed(struct relaymap_chan *ch)
{
	/* Pairs with smp_store_release() in relaymap_chan_destroy(). */
	return smp_load_acquire(&ch->destroyed);
}

/* relaymap_main.c */
struct rchan_buf *relaymap_cpu_buf(struct relaymap_chan *ch, int cpu);
int relaymap_list_names(char *names, u32 cap, u32 *total);
void relaymap_wake_consumed(struct relaymap_chan *ch, struct relaymap_cpu *pc);
void relaymap_wake_all(struct relaymap_chan *ch);

/* relaymap_control.c: the channel ioctls, FLUSH, RESET, info */
long relaymap_chan_ioctl(struct relaymap_chan *ch, unsigned int cmd,
			 void __user *arg);
long relaymap_copy_in(void *kbuf, size_t ksize, size_t ver0,
		      void __user *arg, u32 *usize);
long relaymap_copy_out(void __user *arg, void *kbuf, size_t ksize, u32 usize);
long relaymap_ioc_get_cursor(struct relaymap_chan *ch, void __user *arg,
			     int own_cpu);
void relaymap_fill_info(struct relaymap_chan *ch, struct relaymap_info *info);
int relaymap_flush_locked(struct relaymap_chan *ch, int cpu);
void relaymap_flush_workfn(struct work_struct *work);

/* relaymap_consumer.c: consumer fds */
extern struct file_operations relaymap_cpu_fops;
extern struct file_operations relaymap_consumer_fops;
void relaymap_fops_init(void);
long relaymap_ioc_open_consumer(struct relaymap_chan *ch, void __user *arg);
bool relaymap_any_consumer(struct relaymap_chan *ch);
void relaymap_holder(struct relaymap_cpu *pc, struct relaymap_cursor *cur);

/* relaymap_dev.c: /dev/relaymap and the debugfs control file */
extern const struct file_operations relaymap_control_fops;
int relaymap_dev_init(void);
void relaymap_dev_exit(void);

#endif /* _RELAYMAP_INTERNAL_H */

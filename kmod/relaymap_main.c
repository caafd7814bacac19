// SPDX-License-Identifier: GPL-2.0
/*
 * Channel lifecycle, relay callbacks and the placeholder files.
 *
 * Every sub-buffer starts with a struct relaymap_subbuf_header, a CTF 1.8
 * packet header and context. The subbuf_start callback closes the
 * previous sub-buffer (final header, then the commit mark, then the
 * per-CPU published count, both with release ordering) and opens the next
 * one. relay itself counts a sub-buffer as produced before subbuf_start
 * runs, so consumers only ever see our own published count.
 *
 * relay needs a dentry per buffer. They live in debugfs
 * (relaymap/<name>/cpuN, next to the legacy control file) when debugfs is
 * usable, else in securityfs as placeholders nobody opens. (relay's
 * buffer-only mode, relay_open(NULL, ...), is no way out: 6.1's
 * relay_open_buf() frees the buffer when create_buf_file returns NULL.)
 * Consumers never open them: they get their fds from /dev/relaymap
 * (relaymap_dev.c, relaymap_consumer.c).
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/dcache.h>
#include <linux/debugfs.h>
#include <linux/err.h>
#include <linux/ktime.h>
#include <linux/module.h>
#include <linux/percpu.h>
#include <linux/rcupdate.h>
#include <linux/security.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/uuid.h>

#include "relaymap_compat.h"
#include "relaymap_internal.h"

static char *name = "demo";
module_param(name, charp, 0444);
MODULE_PARM_DESC(name, "Default channel created at load; empty for none (default: demo)");

static ulong subbuf_size = 262144;
module_param(subbuf_size, ulong, 0444);
MODULE_PARM_DESC(subbuf_size, "Bytes per sub-buffer of the default channel, a multiple of the page size >= 4096 (default: 262144)");

static ulong n_subbufs = 8;
module_param(n_subbufs, ulong, 0444);
MODULE_PARM_DESC(n_subbufs, "Sub-buffers per CPU of the default channel, >= 2 (default: 8)");

static bool overwrite;
module_param(overwrite, bool, 0444);
MODULE_PARM_DESC(overwrite, "Default channel in flight-recorder (overwrite) mode (default: 0)");

static char *view = "auto";
module_param(view, charp, 0444);
MODULE_PARM_DESC(view, "Where relay's per-buffer files go: auto (debugfs if usable, else securityfs), debugfs or securityfs (default: auto)");

static DEFINE_MUTEX(relaymap_lock);	/* protects relaymap_channels */
static LIST_HEAD(relaymap_channels);
static enum relaymap_view relaymap_view;
static struct dentry *relaymap_root;
static struct relaymap_chan *relaymap_default;

static const char * const relaymap_view_names[] = {
	[RELAYMAP_VIEW_DEBUGFS] = "debugfs",
	[RELAYMAP_VIEW_SECURITYFS] = "securityfs",
};

struct rchan_buf *relaymap_cpu_buf(struct relaymap_chan *ch, int cpu)
{
	if (cpu < 0 || cpu >= nr_cpu_ids || !cpu_possible(cpu))
		return NULL;
	return relaymap_rchan_buf(ch->rchan, cpu);
}

/* Zero the per-CPU counters (the fields before @owner). */
static void relaymap_cpu_zero(struct relaymap_cpu *pc)
{
	memset(pc, 0, offsetof(struct relaymap_cpu, owner));
}

static void relaymap_close_subbuf(struct relaymap_chan *ch,
				  struct relaymap_cpu *pc,
				  struct relaymap_subbuf_header *hdr,
				  size_t produced, size_t prev_padding)
{
	/* Header and records, up to the end of the last record's data. */
	size_t content = ch->subbuf_size - prev_padding - pc->last_pad;
	u32 flags = 0;

	if (pc->in_flush)
		flags |= RELAYMAP_SB_FLUSHED;
	if (pc->records_dropped != pc->dropped_at_close)
		flags |= RELAYMAP_SB_DROPS;
	pc->dropped_at_close = pc->records_dropped;

	hdr->timestamp_end = ktime_get_mono_fast_ns();
	hdr->content_size = (u64)content * 8;
	/* subbuf_size is a multiple of PAGE_SIZE: never more than it. */
	hdr->packet_size = (u64)ALIGN(content, PAGE_SIZE) * 8;
	hdr->events_discarded = pc->records_dropped;
	hdr->events_rejected = pc->records_rejected;
	hdr->flags = flags;
	/*
	 * The header is final: publish it, then count it.
	 * Pairs with the reader's acquire load of commit.
	 */
	smp_store_release(&hdr->commit, (u64)produced);
	/* Pairs with smp_load_acquire() of published (cursors, stats, poll). */
	smp_store_release(&pc->published, (u64)produced);
}

static void relaymap_open_subbuf(struct relaymap_chan *ch,
				 struct relaymap_cpu *pc,
				 struct rchan_buf *buf,
				 struct relaymap_subbuf_header *hdr,
				 size_t seq)
{
	unsigned int cpu = relaymap_buf_cpu(buf);

	WRITE_ONCE(hdr->commit, 0);
	smp_wmb(); /* pairs with the reader's re-check of commit and seq */
	hdr->magic = RELAYMAP_CTF_MAGIC;
	memcpy(hdr->uuid, &ch->uuid, sizeof(hdr->uuid));
	hdr->stream_id = 0;
	hdr->stream_instance_id = cpu;
	hdr->timestamp_begin = ktime_get_mono_fast_ns();
	hdr->timestamp_end = 0;
	hdr->content_size = 0;
	hdr->packet_size = 0;
	hdr->packet_seq_num = seq;
	hdr->events_discarded = 0;
	hdr->cpu_id = cpu;
	hdr->flags = 0;
	hdr->events_rejected = 0;
	hdr->abi_version = RELAYMAP_ABI_VERSION;
	hdr->header_size = RELAYMAP_HDR_SIZE;
	hdr->reserved = 0;
	pc->last_pad = 0;
	subbuf_start_reserve(buf, RELAYMAP_HDR_SIZE);
}

/*
 * Called by relay_switch_subbuf() on the CPU that owns @buf with local
 * interrupts (or at least preemption) disabled, by the flush work on that
 * CPU, and by relay_open(), relay_reset() and CPU hotplug with
 * @prev_subbuf == NULL.
 */
int relaymap_subbuf_start(struct rchan_buf *buf, void *subbuf,
			  void *prev_subbuf, size_t prev_padding)
{
	struct relaymap_chan *ch = relaymap_buf_owner(buf);
	struct relaymap_cpu *pc = relaymap_pc(ch, relaymap_buf_cpu(buf));
	size_t produced = relaymap_buf_produced(buf);

	if (!prev_subbuf) {
		/* New or reset buffer: nothing was produced yet. */
		relaymap_cpu_zero(pc);
	} else if (READ_ONCE(pc->published) != produced) {
		/*
		 * relay counted prev_subbuf as produced and has not called us
		 * for it yet. While the buffer is stuck full we are called
		 * again with the same prev_subbuf: it is closed already.
		 */
		relaymap_close_subbuf(ch, pc, prev_subbuf, produced,
				      prev_padding);
	}

	if (relay_buf_full(buf)) {
		if (!ch->overwrite) {
			if (!pc->in_flush && !pc->no_count)
				relaymap_add(&pc->records_dropped, 1);
			return 0;
		}
		relaymap_add(&pc->subbufs_lapped, 1);
	}

	relaymap_open_subbuf(ch, pc, buf, subbuf, produced);
	return 1;
}

/* securityfs placeholders exist for relay only: nobody opens them. */
static int relaymap_placeholder_open(struct inode *inode, struct file *file)
{
	return -ENXIO;
}

static const struct file_operations relaymap_placeholder_fops = {
	.owner = THIS_MODULE,
	.open = relaymap_placeholder_open,
};

static struct dentry *relaymap_create_buf_file(const char *filename,
					       struct dentry *parent,
					       umode_t mode,
					       struct rchan_buf *buf,
					       int *is_global)
{
	struct dentry *dentry;

	if (relaymap_view == RELAYMAP_VIEW_SECURITYFS) {
		dentry = securityfs_create_file(filename, 0400, parent, buf,
						&relaymap_placeholder_fops);
	} else {
		/*
		 * _unsafe: the file must carry relay's file operations
		 * itself, the full debugfs proxy does not forward mmap. relay
		 * keeps @buf alive with its own kref while the file is open
		 * or mapped, and the open takes a reference to this module
		 * (the fops owner).
		 */
		dentry = debugfs_create_file_unsafe(filename, 0400, parent, buf,
						    &relaymap_cpu_fops);
	}
	if (IS_ERR(dentry))
		return NULL;
	return dentry;
}

static int relaymap_remove_buf_file(struct dentry *dentry)
{
	struct rchan_buf *buf;

	if (!dentry)
		return 0;
	buf = d_inode(dentry)->i_private;
	if (relaymap_view == RELAYMAP_VIEW_SECURITYFS) {
		securityfs_remove(dentry);
		return 0;
	}
	debugfs_remove(dentry);
	/*
	 * relay_close() has finalized @buf, and poll() now reports EPOLLERR,
	 * but relay wakes readers only at a sub-buffer switch: wake root
	 * observers already sleeping in poll() on the debugfs file.
	 */
	if (buf && relaymap_buf_finalized(buf))
		relaymap_buf_wake(buf);
	return 0;
}

static RELAYMAP_RCHAN_CBS_CONST struct rchan_callbacks relaymap_relay_cbs = {
	.subbuf_start = relaymap_compat_subbuf_start,
	.create_buf_file = relaymap_create_buf_file,
	.remove_buf_file = relaymap_remove_buf_file,
};

static int relaymap_check_config(const struct relaymap_chan_config *cfg)
{
	size_t len;

	if (!cfg || !cfg->name) {
		pr_err("channel config without a name\n");
		return -EINVAL;
	}
	len = strnlen(cfg->name, RELAYMAP_NAME_MAX);
	if (len == 0 || len >= RELAYMAP_NAME_MAX || strchr(cfg->name, '/') ||
	    !strcmp(cfg->name, ".") || !strcmp(cfg->name, "..")) {
		pr_err("invalid channel name \"%.*s\": 1..%d characters, no '/'\n",
		       RELAYMAP_NAME_MAX, cfg->name, RELAYMAP_NAME_MAX - 1);
		return -EINVAL;
	}
	if (cfg->subbuf_size < RELAYMAP_MIN_SUBBUF ||
	    cfg->subbuf_size > RELAYMAP_MAX_SUBBUF ||
	    cfg->subbuf_size % PAGE_SIZE) {
		pr_err("%s: invalid subbuf_size %zu: must be a multiple of the page size (%lu) in [%lu, %lu]\n",
		       cfg->name, cfg->subbuf_size, PAGE_SIZE,
		       RELAYMAP_MIN_SUBBUF, RELAYMAP_MAX_SUBBUF);
		return -EINVAL;
	}
	if (cfg->n_subbufs < RELAYMAP_MIN_SUBBUFS ||
	    cfg->n_subbufs > RELAYMAP_MAX_SUBBUFS) {
		pr_err("%s: invalid n_subbufs %zu: must be in [%lu, %lu]\n",
		       cfg->name, cfg->n_subbufs, RELAYMAP_MIN_SUBBUFS,
		       RELAYMAP_MAX_SUBBUFS);
		return -EINVAL;
	}
	if (cfg->subbuf_size * cfg->n_subbufs > RELAYMAP_MAX_ALLOC) {
		pr_err("%s: subbuf_size * n_subbufs = %zu exceeds %lu bytes per CPU\n",
		       cfg->name, cfg->subbuf_size * cfg->n_subbufs,
		       RELAYMAP_MAX_ALLOC);
		return -EINVAL;
	}
	return 0;
}

/* Any channel that still exists, destroyed or not. */
static struct relaymap_chan *relaymap_find_locked(const char *cname)
{
	struct relaymap_chan *ch;

	lockdep_assert_held(&relaymap_lock);
	list_for_each_entry(ch, &relaymap_channels, node)
		if (!strcmp(ch->name, cname))
			return ch;
	return NULL;
}

static int relaymap_view_create(struct relaymap_chan *ch)
{
	struct dentry *d = NULL;

	switch (relaymap_view) {
	case RELAYMAP_VIEW_DEBUGFS:
		d = debugfs_create_dir(ch->name, relaymap_root);
		break;
	case RELAYMAP_VIEW_SECURITYFS:
		d = securityfs_create_dir(ch->name, relaymap_root);
		break;
	}
	if (IS_ERR_OR_NULL(d))
		return d ? PTR_ERR(d) : -ENOMEM;
	ch->dir = d;
	return 0;
}

/* After relay_close(): the cpu files are gone, remove the folder. */
static void relaymap_view_remove(struct relaymap_chan *ch)
{
	if (!ch->dir)
		return;
	if (relaymap_view == RELAYMAP_VIEW_SECURITYFS)
		securityfs_remove(ch->dir);
	else
		debugfs_remove(ch->dir);	/* with the control file */
	ch->dir = NULL;
	ch->control = NULL;
}

/**
 * relaymap_chan_create() - create a channel
 * @cfg: name and geometry; see struct relaymap_chan_config
 *
 * Creates the relay buffers (one per CPU, more as CPUs come online) and
 * lists the channel for /dev/relaymap. With the debugfs view it also
 * creates relaymap/<name>/cpu0..cpuN-1 and relaymap/<name>/control in
 * debugfs. The caller owns one reference, dropped by
 * relaymap_chan_destroy(). Process context.
 *
 * Return: the channel, or ERR_PTR(-EINVAL) for a bad @cfg (the reason is
 * logged), ERR_PTR(-EEXIST) if a channel of that name exists,
 * ERR_PTR(-EBUSY) if one of that name was destroyed but a consumer still
 * holds it (logged), ERR_PTR(-ENOMEM) or another error if relay or the
 * file system of the view failed.
 */
struct relaymap_chan *relaymap_chan_create(const struct relaymap_chan_config *cfg)
{
	struct relaymap_chan *ch, *old;
	unsigned int cpu;
	int err;

	err = relaymap_check_config(cfg);
	if (err)
		return ERR_PTR(err);

	ch = kzalloc(sizeof(*ch), GFP_KERNEL);
	if (!ch)
		return ERR_PTR(-ENOMEM);
	strscpy(ch->name, cfg->name, sizeof(ch->name));
	ch->subbuf_size = cfg->subbuf_size;
	ch->n_subbufs = cfg->n_subbufs;
	ch->overwrite = cfg->overwrite;
	kref_init(&ch->kref);
	mutex_init(&ch->lock);
	INIT_LIST_HEAD(&ch->node);
	uuid_gen(&ch->uuid);

	ch->pcpu = alloc_percpu(struct relaymap_cpu);
	if (!ch->pcpu) {
		err = -ENOMEM;
		goto err_free;
	}
	for_each_possible_cpu(cpu) {
		struct relaymap_cpu *pc = relaymap_pc(ch, cpu);

		pc->ch = ch;
		pc->cpu = cpu;
		init_waitqueue_head(&pc->space_wait);
		INIT_WORK(&pc->flush_work, relaymap_flush_workfn);
	}
	init_waitqueue_head(&ch->drain_wait);

	mutex_lock(&relaymap_lock);
	old = relaymap_find_locked(ch->name);
	if (old) {
		err = -EEXIST;
		if (!old->listed) {
			pr_err("channel %s: the previous channel of this name was destroyed but a consumer still holds it; try again when it is closed\n",
			       ch->name);
			err = -EBUSY;
		}
		goto err_unlock;
	}
	err = relaymap_view_create(ch);
	if (err)
		goto err_unlock;
	ch->rchan = relay_open("cpu", ch->dir, ch->subbuf_size, ch->n_subbufs,
			       &relaymap_relay_cbs, ch);
	if (!ch->rchan) {
		err = -ENOMEM;
		goto err_dir;
	}
	if (relaymap_view == RELAYMAP_VIEW_DEBUGFS) {
		ch->control = debugfs_create_file("control", 0600, ch->dir, ch,
						  &relaymap_control_fops);
		if (IS_ERR_OR_NULL(ch->control)) {
			err = ch->control ? PTR_ERR(ch->control) : -ENOMEM;
			ch->control = NULL;
			goto err_relay;
		}
	}
	list_add_tail(&ch->node, &relaymap_channels);
	ch->listed = true;
	mutex_unlock(&relaymap_lock);

	pr_info("channel %s: %zu x %zu bytes per CPU%s\n", ch->name,
		ch->n_subbufs, ch->subbuf_size,
		ch->overwrite ? ", overwrite" : "");
	return ch;

err_relay:
	relay_close(ch->rchan);
err_dir:
	relaymap_view_remove(ch);
err_unlock:
	mutex_unlock(&relaymap_lock);
	free_percpu(ch->pcpu);
err_free:
	mutex_destroy(&ch->lock);
	kfree(ch);
	return ERR_PTR(err);
}
EXPORT_SYMBOL_GPL(relaymap_chan_create);

/* The last reference is gone: no fd, no writer, no flush in flight. */
static void relaymap_chan_release(struct kref *kref)
{
	struct relaymap_chan *ch = container_of(kref, struct relaymap_chan, kref);

	mutex_lock(&relaymap_lock);
	list_del_init(&ch->node);
	mutex_unlock(&relaymap_lock);

	/*
	 * relay_close() removes the cpu files through remove_buf_file.
	 * Root observers that still have a debugfs cpu file open or mapped
	 * hold relay's own reference to the buffer (and a reference to this
	 * module); consumer fds held a channel reference, so there are none.
	 */
	relay_close(ch->rchan);
	relaymap_view_remove(ch);
	free_percpu(ch->pcpu);
	mutex_destroy(&ch->lock);
	kfree(ch);
}

/**
 * relaymap_chan_destroy() - the creator is done with a channel
 * @ch: the channel from relaymap_chan_create()
 *
 * Writers must be stopped (and unregistered) first. Unlists the channel
 * (relaymap_chan_get(), LIST and OPEN_CHANNEL no longer find it), closes
 * every CPU's open sub-buffer so that everything written is published,
 * marks the channel destroyed (RELAYMAP_INFO_DESTROYED,
 * RELAYMAP_CURSOR_DESTROYED), wakes consumers sleeping in poll() and
 * drops the creator's reference.
 *
 * Consumers that still hold a channel fd, a consumer fd or the debugfs
 * control file keep the channel: they drain what is left, and poll() on
 * a consumer fd reports EPOLLHUP once its CPU is drained. The buffers are
 * freed (and the name is free again) when the last of them is closed.
 * Process context.
 */
void relaymap_chan_destroy(struct relaymap_chan *ch)
{
	unsigned int cpu;

	if (IS_ERR_OR_NULL(ch))
		return;
	mutex_lock(&relaymap_lock);
	ch->listed = false;
	mutex_unlock(&relaymap_lock);

	WARN_ON_ONCE(READ_ONCE(ch->writers));
	relaymap_flush(ch, RELAYMAP_ALL_CPUS);
	/*
	 * After the flush: a consumer that sees destroyed (acquire) also
	 * sees the final published counts, so it never reports drained
	 * before the last sub-buffer.
	 */
	smp_store_release(&ch->destroyed, true);
	for_each_possible_cpu(cpu) {
		struct rchan_buf *buf = relaymap_cpu_buf(ch, cpu);

		if (buf)
			relaymap_buf_wake(buf);
	}
	/* Writers waiting for space (a bug: they should have stopped) give up. */
	relaymap_wake_all(ch);
	relaymap_chan_put(ch);
}
EXPORT_SYMBOL_GPL(relaymap_chan_destroy);

/*
 * Something was handed back on @pc's CPU, or its consumer went away: wake
 * writers waiting for space there and drain_wait(). wq_has_sleeper() has
 * the full barrier that orders the caller's store (consumed count, owner
 * slot) before the look at the queue; it pairs with the one in the
 * sleeper's prepare_to_wait_event(), which comes before its condition
 * check. Any context.
 */
void relaymap_wake_consumed(struct relaymap_chan *ch, struct relaymap_cpu *pc)
{
	if (wq_has_sleeper(&pc->space_wait))
		wake_up_interruptible_all(&pc->space_wait);
	if (wq_has_sleeper(&ch->drain_wait))
		wake_up_interruptible_all(&ch->drain_wait);
}

/* Every CPU's space sleepers and the drain sleepers: RESET, destroy. */
void relaymap_wake_all(struct relaymap_chan *ch)
{
	unsigned int cpu;

	for_each_possible_cpu(cpu)
		relaymap_wake_consumed(ch, relaymap_pc(ch, cpu));
}

/*
 * No consumer holds a CPU that still has published, unconsumed
 * sub-buffers. Lockless: the owner slot (cleared with xchg() at release)
 * and the published count (acquire) against relay's consumed count.
 */
static bool relaymap_drained(struct relaymap_chan *ch)
{
	unsigned int cpu;

	for_each_possible_cpu(cpu) {
		struct rchan_buf *buf = relaymap_cpu_buf(ch, cpu);
		struct relaymap_cpu *pc = relaymap_pc(ch, cpu);

		if (!buf || !READ_ONCE(pc->owner))
			continue;
		/* Pairs with smp_store_release() in relaymap_close_subbuf(). */
		if (smp_load_acquire(&pc->published) > relaymap_buf_consumed(buf))
			return false;
	}
	return true;
}

/**
 * relaymap_chan_drain_wait() - wait until the consumers have drained
 * @ch: the channel
 * @timeout: longest wait in jiffies (e.g. msecs_to_jiffies(5000)); 0 only
 *           checks; MAX_SCHEDULE_TIMEOUT waits without a limit
 *
 * For a driver's exit path, before relaymap_chan_destroy(): "wait up to N
 * seconds for the consumer". Stop the writers and call relaymap_flush(ch,
 * RELAYMAP_ALL_CPUS) first, so that the last partly filled sub-buffers are
 * published and count. The channel is drained when no consumer holds a
 * CPU that has published sub-buffers it has not handed back: every CPU
 * is either handed back up to what it published, or held by nobody
 * (nobody would drain it; a consumer that closes gives up its CPU). The
 * wait wakes when a consumer hands sub-buffers back (PUT_CONSUMED or
 * relay's read()) or releases its consumer fd. Interruptible. Process
 * context.
 *
 * Return: 0 when drained (at once if no consumer holds anything);
 * -ETIMEDOUT if still not drained after @timeout; -ERESTARTSYS if a signal
 * arrived first (e.g. Ctrl-C on the rmmod); -EINVAL for a negative
 * @timeout. Destroying afterwards is correct in every case: a consumer
 * that still holds the channel keeps draining it.
 */
int relaymap_chan_drain_wait(struct relaymap_chan *ch, long timeout)
{
	long ret;

	might_sleep();
	if (timeout < 0)
		return -EINVAL;
	if (relaymap_drained(ch))
		return 0;
	if (!timeout)
		return -ETIMEDOUT;
	ret = wait_event_interruptible_timeout(ch->drain_wait,
					       relaymap_drained(ch), timeout);
	if (ret < 0)
		return ret;
	return ret ? 0 : -ETIMEDOUT;
}
EXPORT_SYMBOL_GPL(relaymap_chan_drain_wait);

/**
 * relaymap_chan_get() - look a channel up by name
 * @cname: channel name
 *
 * Return: the channel with a new reference (drop it with
 * relaymap_chan_put()), or NULL if there is no channel of that name (a
 * destroyed one is not found). Process context.
 */
struct relaymap_chan *relaymap_chan_get(const char *cname)
{
	struct relaymap_chan *ch;

	mutex_lock(&relaymap_lock);
	ch = relaymap_find_locked(cname);
	if (ch && ch->listed)
		kref_get(&ch->kref);
	else
		ch = NULL;
	mutex_unlock(&relaymap_lock);
	return ch;
}
EXPORT_SYMBOL_GPL(relaymap_chan_get);

/**
 * relaymap_chan_put() - drop a reference taken by relaymap_chan_get()
 * @ch: the channel, or NULL
 *
 * May free the channel: process context.
 */
void relaymap_chan_put(struct relaymap_chan *ch)
{
	if (ch)
		kref_put(&ch->kref, relaymap_chan_release);
}
EXPORT_SYMBOL_GPL(relaymap_chan_put);

/*
 * LIST: copy the names of the listed channels, in creation order, into
 * @names (@cap entries of RELAYMAP_NAME_MAX bytes, zeroed by the caller),
 * or only count them if @names is NULL.
 */
int relaymap_list_names(char *names, u32 cap, u32 *total)
{
	struct relaymap_chan *ch;
	u32 n = 0;

	mutex_lock(&relaymap_lock);
	list_for_each_entry(ch, &relaymap_channels, node) {
		if (!ch->listed)
			continue;
		if (names && n < cap)
			strscpy(names + (size_t)n * RELAYMAP_NAME_MAX, ch->name,
				RELAYMAP_NAME_MAX);
		n++;
	}
	mutex_unlock(&relaymap_lock);
	*total = n;
	return 0;
}

/**
 * relaymap_chan_info() - geometry of a channel
 * @ch: the channel
 * @info: filled exactly as RELAYMAP_IOC_GET_INFO fills it
 */
void relaymap_chan_info(struct relaymap_chan *ch, struct relaymap_info *info)
{
	relaymap_fill_info(ch, info);
}
EXPORT_SYMBOL_GPL(relaymap_chan_info);

/**
 * relaymap_max_data_size() - the largest data of one framed record
 * @ch: the channel
 *
 * relaymap_write(), relaymap_reserve() and their try_ variants refuse a
 * larger @len with -EMSGSIZE (NULL for the reserves). Equal to
 * relaymap_info.max_data_size. Any context.
 *
 * Return: subbuf_size - sizeof(struct relaymap_subbuf_header) -
 * sizeof(struct relaymap_record).
 */
size_t relaymap_max_data_size(struct relaymap_chan *ch)
{
	return ch->subbuf_size - RELAYMAP_HDR_SIZE - RELAYMAP_REC_HDR_SIZE;
}
EXPORT_SYMBOL_GPL(relaymap_max_data_size);

/**
 * relaymap_chan_relay() - the relay channel behind a relaymap channel
 * @ch: the channel
 *
 * For writers that call relay_write(), __relay_write() or relay_reserve()
 * themselves. They must frame records as struct relaymap_record with
 * 16 + len a multiple of 8 (the module does not know their padding, so a
 * sub-buffer's content ends after the bytes they wrote), never write
 * more than info.max_record_size bytes at once, and must not call
 * relay_flush(), relay_reset() or relay_close(). Drops are still counted
 * by the module (see relaymap_cpu_dropped()); report records that were
 * written with relaymap_account().
 *
 * Return: the relay channel, valid while the caller holds a reference.
 */
struct rchan *relaymap_chan_relay(struct relaymap_chan *ch)
{
	return ch->rchan;
}
EXPORT_SYMBOL_GPL(relaymap_chan_relay);

/**
 * relaymap_cpu_dropped() - records dropped on one CPU since the last reset
 * @ch: the channel
 * @cpu: the CPU
 *
 * Read on the CPU itself with interrupts disabled, the difference of two
 * calls around a relay write tells whether that write was dropped.
 *
 * Return: the counter, 0 for a CPU that does not exist.
 */
u64 relaymap_cpu_dropped(struct relaymap_chan *ch, int cpu)
{
	if (cpu < 0 || cpu >= nr_cpu_ids || !cpu_possible(cpu))
		return 0;
	return READ_ONCE(relaymap_pc(ch, cpu)->records_dropped);
}
EXPORT_SYMBOL_GPL(relaymap_cpu_dropped);

/**
 * relaymap_writer_register() - announce a writer
 * @ch: the channel
 *
 * While at least one writer is registered, RELAYMAP_IOC_RESET fails with
 * EBUSY. Writing does not require registration, but a writer that may
 * write while a consumer resets the channel must register. Process
 * context.
 *
 * Return: 0.
 */
int relaymap_writer_register(struct relaymap_chan *ch)
{
	mutex_lock(&ch->lock);
	WRITE_ONCE(ch->writers, ch->writers + 1);
	mutex_unlock(&ch->lock);
	return 0;
}
EXPORT_SYMBOL_GPL(relaymap_writer_register);

/**
 * relaymap_writer_unregister() - undo relaymap_writer_register()
 * @ch: the channel
 */
void relaymap_writer_unregister(struct relaymap_chan *ch)
{
	mutex_lock(&ch->lock);
	if (!WARN_ON_ONCE(!ch->writers))
		WRITE_ONCE(ch->writers, ch->writers - 1);
	mutex_unlock(&ch->lock);
}
EXPORT_SYMBOL_GPL(relaymap_writer_unregister);

/* Pick the view: debugfs if usable, else securityfs. */
static int relaymap_view_init(void)
{
	int want = sysfs_match_string(relaymap_view_names, view);
	bool any = sysfs_streq(view, "auto");
	long derr = 0, serr = 0;
	struct dentry *d;

	if (want < 0 && !any) {
		pr_err("view=%s invalid: auto, debugfs or securityfs\n", view);
		return -EINVAL;
	}
	if (any || want == RELAYMAP_VIEW_DEBUGFS) {
		/* ERR_PTR with debugfs=off or CONFIG_DEBUG_FS_ALLOW_NONE. */
		d = debugfs_create_dir("relaymap", NULL);
		if (!IS_ERR_OR_NULL(d)) {
			relaymap_view = RELAYMAP_VIEW_DEBUGFS;
			relaymap_root = d;
			return 0;
		}
		derr = d ? PTR_ERR(d) : -ENOMEM;
	}
	if (any || want == RELAYMAP_VIEW_SECURITYFS) {
		d = securityfs_create_dir("relaymap", NULL);
		if (!IS_ERR_OR_NULL(d)) {
			relaymap_view = RELAYMAP_VIEW_SECURITYFS;
			relaymap_root = d;
			return 0;
		}
		serr = d ? PTR_ERR(d) : -ENOMEM;
	}
	/* relay needs a file per buffer: there is nowhere to put them. */
	pr_err("view=%s: neither debugfs (%ld) nor securityfs (%ld) can hold relay's buffer files\n",
	       view, derr, serr);
	return derr ? derr : serr;
}

static void relaymap_view_exit(void)
{
	if (relaymap_view == RELAYMAP_VIEW_SECURITYFS)
		securityfs_remove(relaymap_root);
	else
		debugfs_remove(relaymap_root);
	relaymap_root = NULL;
}

static int __init relaymap_init(void)
{
	struct relaymap_chan_config cfg = {
		.name = name,
		.subbuf_size = subbuf_size,
		.n_subbufs = n_subbufs,
		.overwrite = overwrite,
	};
	int err;

	BUILD_BUG_ON(sizeof(struct relaymap_subbuf_header) != 112);
	BUILD_BUG_ON(sizeof(struct relaymap_record) != 16);
	BUILD_BUG_ON(RELAYMAP_HDR_SIZE % RELAYMAP_RECORD_ALIGN);
	BUILD_BUG_ON(RELAYMAP_COMM_MAX != TASK_COMM_LEN);

	relaymap_fops_init();
	err = relaymap_view_init();
	if (err)
		return err;

	if (name && name[0]) {
		relaymap_default = relaymap_chan_create(&cfg);
		if (IS_ERR(relaymap_default)) {
			err = PTR_ERR(relaymap_default);
			relaymap_default = NULL;
			pr_err("cannot create the default channel \"%s\": %d\n",
			       name, err);
			goto err_view;
		}
	}
	err = relaymap_dev_init();
	if (err)
		goto err_chan;
	pr_info("ABI %d: /dev/relaymap, buffer files in %s\n",
		RELAYMAP_ABI_VERSION, relaymap_view_names[relaymap_view]);
	return 0;

err_chan:
	relaymap_chan_destroy(relaymap_default);
err_view:
	relaymap_view_exit();
	return err;
}

static void __exit relaymap_exit(void)
{
	struct relaymap_chan *ch;

	relaymap_dev_exit();
	relaymap_chan_destroy(relaymap_default);

	/*
	 * Users of the API and open fds hold a module reference: this
	 * should be empty.
	 */
	for (;;) {
		mutex_lock(&relaymap_lock);
		ch = NULL;
		list_for_each_entry(ch, &relaymap_channels, node)
			if (ch->listed)
				break;
		if (list_entry_is_head(ch, &relaymap_channels, node))
			ch = NULL;
		mutex_unlock(&relaymap_lock);
		if (!ch)
			break;
		pr_warn("channel %s was not destroyed by its creator\n",
			ch->name);
		relaymap_chan_destroy(ch);
	}
	WARN_ON(!list_empty(&relaymap_channels));
	relaymap_view_exit();
	/* Consumer claims are freed by RCU callbacks of this module. */
	rcu_barrier();
}

module_init(relaymap_init);
module_exit(relaymap_exit);

MODULE_LICENSE("GPL");
MODULE_AUTHOR("relaymap developers");
MODULE_DESCRIPTION("Relay channels with a zero-copy mmap ABI through /dev/relaymap");
MODULE_VERSION(RELAYMAP_VERSION);

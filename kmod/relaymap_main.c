// SPDX-License-Identifier: GPL-2.0
/*
 * Channel lifecycle, relay callbacks and debugfs.
 *
 * Every sub-buffer starts with a struct relaymap_subbuf_header. The
 * subbuf_start callback closes the previous sub-buffer (final header, then
 * the commit mark, then the per-CPU published count, both with release
 * ordering) and opens the next one. relay itself counts a sub-buffer as
 * produced before subbuf_start runs, so consumers only ever see our own
 * published count.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/dcache.h>
#include <linux/debugfs.h>
#include <linux/err.h>
#include <linux/ktime.h>
#include <linux/module.h>
#include <linux/percpu.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/wait.h>

#include "relaymap_compat.h"
#include "relaymap_internal.h"

static char *name = "demo";
module_param(name, charp, 0444);
MODULE_PARM_DESC(name, "Default channel created at load; empty for none (default: demo)");

static ulong subbuf_size = 262144;
module_param(subbuf_size, ulong, 0444);
MODULE_PARM_DESC(subbuf_size, "Bytes per sub-buffer of the default channel, >= 4096, multiple of 8 (default: 262144)");

static ulong n_subbufs = 8;
module_param(n_subbufs, ulong, 0444);
MODULE_PARM_DESC(n_subbufs, "Sub-buffers per CPU of the default channel, >= 2 (default: 8)");

static bool overwrite;
module_param(overwrite, bool, 0444);
MODULE_PARM_DESC(overwrite, "Default channel in flight-recorder (overwrite) mode (default: 0)");

static DEFINE_MUTEX(relaymap_lock);	/* protects relaymap_channels */
static LIST_HEAD(relaymap_channels);
static struct dentry *relaymap_root;
static struct relaymap_chan *relaymap_default;

/*
 * The fops of the cpu files: relay_file_operations copied at init, owned by
 * this module (an open or mapped cpu file keeps it loaded), with relay's
 * mmap entry point wrapped (relaymap_compat.h). Not const since it is
 * filled at init; read-only after it.
 */
static struct file_operations relaymap_cpu_fops __ro_after_init;

struct rchan_buf *relaymap_cpu_buf(struct relaymap_chan *ch, int cpu)
{
	if (cpu < 0 || cpu >= nr_cpu_ids || !cpu_possible(cpu))
		return NULL;
	return READ_ONCE(*per_cpu_ptr(ch->rchan->buf, cpu));
}

static void relaymap_close_subbuf(struct relaymap_chan *ch,
				  struct relaymap_cpu *pc,
				  struct relaymap_subbuf_header *hdr,
				  size_t produced, size_t prev_padding)
{
	u32 flags = 0;

	if (pc->in_flush)
		flags |= RELAYMAP_SB_FLUSHED;
	if (pc->records_dropped != pc->dropped_at_close)
		flags |= RELAYMAP_SB_DROPS;
	pc->dropped_at_close = pc->records_dropped;

	hdr->payload_size = ch->subbuf_size - RELAYMAP_HDR_SIZE - prev_padding;
	hdr->padding = prev_padding;
	hdr->ts_end_ns = ktime_get_mono_fast_ns();
	hdr->records_dropped = pc->records_dropped;
	hdr->flags = flags;
	/*
	 * The header is final: publish it, then count it.
	 * Pairs with the reader's acquire load of commit.
	 */
	smp_store_release(&hdr->commit, (u64)produced);
	/* Pairs with smp_load_acquire() of published in the ioctls. */
	smp_store_release(&pc->published, (u64)produced);
}

static void relaymap_open_subbuf(struct rchan_buf *buf,
				 struct relaymap_subbuf_header *hdr)
{
	WRITE_ONCE(hdr->commit, 0);
	smp_wmb(); /* pairs with the reader's re-check of commit and seq */
	hdr->magic = RELAYMAP_SUBBUF_MAGIC;
	hdr->abi_version = RELAYMAP_ABI_VERSION;
	hdr->header_size = RELAYMAP_HDR_SIZE;
	hdr->cpu = buf->cpu;
	hdr->flags = 0;
	hdr->seq = buf->subbufs_produced;
	hdr->ts_begin_ns = ktime_get_mono_fast_ns();
	hdr->ts_end_ns = 0;
	hdr->payload_size = 0;
	hdr->padding = 0;
	hdr->records_dropped = 0;
	subbuf_start_reserve(buf, RELAYMAP_HDR_SIZE);
}

/*
 * Called by relay_switch_subbuf() on the CPU that owns @buf with local
 * interrupts (or at least preemption) disabled, and by relay_open(),
 * relay_reset() and CPU hotplug with @prev_subbuf == NULL.
 */
int relaymap_subbuf_start(struct rchan_buf *buf, void *subbuf,
			  void *prev_subbuf, size_t prev_padding)
{
	struct relaymap_chan *ch = buf->chan->private_data;
	struct relaymap_cpu *pc = per_cpu_ptr(ch->pcpu, buf->cpu);
	size_t produced = buf->subbufs_produced;

	if (!prev_subbuf) {
		/* New or reset buffer: nothing was produced yet. */
		memset(pc, 0, sizeof(*pc));
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

	relaymap_open_subbuf(buf, subbuf);
	return 1;
}

static struct dentry *relaymap_create_buf_file(const char *filename,
					       struct dentry *parent,
					       umode_t mode,
					       struct rchan_buf *buf,
					       int *is_global)
{
	struct dentry *dentry;

	/*
	 * _unsafe: the file must carry relay's file operations itself, the
	 * full debugfs proxy does not forward mmap. relay keeps @buf alive
	 * with its own kref while the file is open or mapped, and debugfs
	 * takes a reference to this module (the fops owner) at open.
	 */
	dentry = debugfs_create_file_unsafe(filename, 0400, parent, buf,
					    &relaymap_cpu_fops);
	if (IS_ERR(dentry))
		return NULL;
	return dentry;
}

static int relaymap_remove_buf_file(struct dentry *dentry)
{
	struct rchan_buf *buf = d_inode(dentry)->i_private;

	debugfs_remove(dentry);
	/*
	 * relay_close() has finalized @buf, and poll() now reports EPOLLERR,
	 * but relay wakes readers only at a sub-buffer switch: wake those
	 * already sleeping in poll() so they see the end of the channel.
	 * (An open cpu file keeps this module loaded, so this matters when
	 * the creator of a channel destroys it under a consumer.)
	 */
	if (buf && buf->finalized)
		wake_up_interruptible_all(&buf->read_wait);
	return 0;
}

static const struct rchan_callbacks relaymap_relay_cbs = {
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
	    cfg->subbuf_size % RELAYMAP_RECORD_ALIGN) {
		pr_err("%s: invalid subbuf_size %zu: must be a multiple of %d in [%lu, %lu]\n",
		       cfg->name, cfg->subbuf_size, RELAYMAP_RECORD_ALIGN,
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

static struct relaymap_chan *relaymap_find_locked(const char *cname)
{
	struct relaymap_chan *ch;

	lockdep_assert_held(&relaymap_lock);
	list_for_each_entry(ch, &relaymap_channels, node)
		if (!strcmp(ch->name, cname))
			return ch;
	return NULL;
}

/**
 * relaymap_chan_create() - create a channel and its debugfs files
 * @cfg: name and geometry; see struct relaymap_chan_config
 *
 * Creates relaymap/<name>/cpu0..cpuN-1 and relaymap/<name>/control in
 * debugfs. The caller owns one reference, dropped by
 * relaymap_chan_destroy(). Process context.
 *
 * Return: the channel, or ERR_PTR(-EINVAL) for a bad @cfg (the reason is
 * logged), ERR_PTR(-EEXIST) if the name is taken, ERR_PTR(-ENOMEM) or
 * another error if debugfs or relay failed.
 */
struct relaymap_chan *relaymap_chan_create(const struct relaymap_chan_config *cfg)
{
	struct relaymap_chan *ch;
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

	ch->pcpu = alloc_percpu(struct relaymap_cpu);
	if (!ch->pcpu) {
		err = -ENOMEM;
		goto err_free;
	}

	mutex_lock(&relaymap_lock);
	if (relaymap_find_locked(ch->name)) {
		err = -EEXIST;
		goto err_unlock;
	}
	ch->dir = debugfs_create_dir(ch->name, relaymap_root);
	if (IS_ERR_OR_NULL(ch->dir)) {
		err = ch->dir ? PTR_ERR(ch->dir) : -ENOMEM;
		ch->dir = NULL;
		goto err_unlock;
	}
	ch->rchan = relay_open("cpu", ch->dir, ch->subbuf_size, ch->n_subbufs,
			       &relaymap_relay_cbs, ch);
	if (!ch->rchan) {
		err = -ENOMEM;
		goto err_dir;
	}
	ch->control = debugfs_create_file("control", 0600, ch->dir, ch,
					  &relaymap_control_fops);
	if (IS_ERR_OR_NULL(ch->control)) {
		err = ch->control ? PTR_ERR(ch->control) : -ENOMEM;
		goto err_relay;
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
	debugfs_remove(ch->dir);
err_unlock:
	mutex_unlock(&relaymap_lock);
	free_percpu(ch->pcpu);
err_free:
	kfree(ch);
	return ERR_PTR(err);
}
EXPORT_SYMBOL_GPL(relaymap_chan_create);

static void relaymap_chan_release(struct kref *kref)
{
	struct relaymap_chan *ch = container_of(kref, struct relaymap_chan, kref);

	/*
	 * relay_close() removes the cpu files through remove_buf_file.
	 * Consumers that still have one open or mapped hold relay's own
	 * reference to the buffer (and a reference to this module).
	 */
	relay_close(ch->rchan);
	debugfs_remove(ch->dir);
	free_percpu(ch->pcpu);
	mutex_destroy(&ch->lock);
	kfree(ch);
}

/**
 * relaymap_chan_destroy() - remove a channel created by relaymap_chan_create()
 * @ch: the channel
 *
 * Unlists the channel (relaymap_chan_get() no longer finds it), removes
 * its control file (waiting for ioctls in flight) and drops the creator's
 * reference. The relay buffers and cpu files go away with the last
 * reference. Writers must be stopped first. Process context.
 */
void relaymap_chan_destroy(struct relaymap_chan *ch)
{
	if (IS_ERR_OR_NULL(ch))
		return;
	mutex_lock(&relaymap_lock);
	if (ch->listed) {
		list_del_init(&ch->node);
		ch->listed = false;
	}
	mutex_unlock(&relaymap_lock);

	debugfs_remove(ch->control);
	ch->control = NULL;
	WARN_ON_ONCE(ch->writers);
	relaymap_chan_put(ch);
}
EXPORT_SYMBOL_GPL(relaymap_chan_destroy);

/**
 * relaymap_chan_get() - look a channel up by name
 * @cname: channel name
 *
 * Return: the channel with a new reference (drop it with
 * relaymap_chan_put()), or NULL if there is none of that name.
 */
struct relaymap_chan *relaymap_chan_get(const char *cname)
{
	struct relaymap_chan *ch;

	mutex_lock(&relaymap_lock);
	ch = relaymap_find_locked(cname);
	if (ch)
		kref_get(&ch->kref);
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
 * relaymap_chan_relay() - the relay channel behind a relaymap channel
 * @ch: the channel
 *
 * For writers that call relay_write(), __relay_write() or relay_reserve()
 * themselves. They must frame records as struct relaymap_record, never
 * write more than info.max_record_size bytes at once, and must not call
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
	return READ_ONCE(per_cpu_ptr(ch->pcpu, cpu)->records_dropped);
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
	ch->writers++;
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
		ch->writers--;
	mutex_unlock(&ch->lock);
}
EXPORT_SYMBOL_GPL(relaymap_writer_unregister);

static int __init relaymap_init(void)
{
	struct relaymap_chan_config cfg = {
		.name = name,
		.subbuf_size = subbuf_size,
		.n_subbufs = n_subbufs,
		.overwrite = overwrite,
	};

	relaymap_cpu_fops_init(&relaymap_cpu_fops, &relay_file_operations);

	relaymap_root = debugfs_create_dir("relaymap", NULL);
	if (IS_ERR_OR_NULL(relaymap_root)) {
		pr_err("cannot create debugfs directory relaymap/\n");
		return relaymap_root ? PTR_ERR(relaymap_root) : -ENOMEM;
	}

	if (name && name[0]) {
		relaymap_default = relaymap_chan_create(&cfg);
		if (IS_ERR(relaymap_default)) {
			int err = PTR_ERR(relaymap_default);

			pr_err("cannot create the default channel \"%s\": %d\n",
			       name, err);
			debugfs_remove(relaymap_root);
			return err;
		}
	}
	return 0;
}

static void __exit relaymap_exit(void)
{
	struct relaymap_chan *ch;

	relaymap_chan_destroy(relaymap_default);

	/* Users of the API hold a module reference: this should be empty. */
	for (;;) {
		mutex_lock(&relaymap_lock);
		ch = list_first_entry_or_null(&relaymap_channels,
					      struct relaymap_chan, node);
		mutex_unlock(&relaymap_lock);
		if (!ch)
			break;
		pr_warn("channel %s was not destroyed by its creator\n",
			ch->name);
		relaymap_chan_destroy(ch);
	}
	debugfs_remove(relaymap_root);
}

module_init(relaymap_init);
module_exit(relaymap_exit);

MODULE_LICENSE("GPL");
MODULE_AUTHOR("relaymap developers");
MODULE_DESCRIPTION("Relay channels with a zero-copy mmap ABI in debugfs");

// SPDX-License-Identifier: GPL-2.0
/*
 * Load generator for relaymap channels.
 *
 * One kthread per online CPU, bound to it, writes RELAYMAP_REC_LOADGEN
 * records (struct relaymap_loadgen_payload + fill, see relaymap_abi.h)
 * into a channel through one of four write paths. Controlled through
 * debugfs relaymap_loadgen/{control,status}; parameters are read at each
 * start.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/atomic.h>
#include <linux/cpu.h>
#include <linux/debugfs.h>
#include <linux/delay.h>
#include <linux/kthread.h>
#include <linux/ktime.h>
#include <linux/math64.h>
#include <linux/module.h>
#include <linux/moduleparam.h>
#include <linux/mutex.h>
#include <linux/relay.h>
#include <linux/sched.h>
#include <linux/seq_file.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/uaccess.h>
#include <linux/workqueue.h>

#include "relaymap.h"

#define LG_MIN_RECORD (sizeof(struct relaymap_record) + \
		       sizeof(struct relaymap_loadgen_payload))
/* Longest single sleep, so that stop is never delayed by much. */
#define LG_MAX_SLEEP_US 10000
/* With a rate: how far behind schedule a writer may catch up. */
#define LG_MAX_LAG_NS (2 * NSEC_PER_MSEC)

static char channel[RELAYMAP_NAME_MAX] = "demo";
module_param_string(channel, channel, sizeof(channel), 0644);
MODULE_PARM_DESC(channel, "relaymap channel to write into (default: demo)");

static uint record_size = 64;
module_param(record_size, uint, 0644);
MODULE_PARM_DESC(record_size, "Bytes per framed record, header included; multiple of 8, >= 32 (default: 64)");

static uint rate;
module_param(rate, uint, 0644);
MODULE_PARM_DESC(rate, "Records per second per CPU; 0 = full speed (default: 0)");

static char mode[16] = "lossless";
module_param_string(mode, mode, sizeof(mode), 0644);
MODULE_PARM_DESC(mode, "lossless (wait while full) or drop (default: lossless)");

static char method[16] = "api";
module_param_string(method, method, sizeof(method), 0644);
MODULE_PARM_DESC(method, "api, reserve, relay_write or __relay_write (default: api)");

static ulong count;
module_param(count, ulong, 0644);
MODULE_PARM_DESC(count, "Records per CPU, then that CPU stops; 0 = until stopped (default: 0)");

static uint duration_ms;
module_param(duration_ms, uint, 0644);
MODULE_PARM_DESC(duration_ms, "Stop after this many ms; 0 = until stopped (default: 0)");

static bool autostart;
module_param(autostart, bool, 0644);
MODULE_PARM_DESC(autostart, "Start at module load (default: 0)");

enum lg_method {
	LG_API,
	LG_RESERVE,
	LG_RELAY_WRITE,
	LG___RELAY_WRITE,
};

static const char * const lg_method_names[] = {
	[LG_API] = "api",
	[LG_RESERVE] = "reserve",
	[LG_RELAY_WRITE] = "relay_write",
	[LG___RELAY_WRITE] = "__relay_write",
};

enum lg_result {
	LG_WRITTEN,
	LG_DROPPED,
	LG_FULL,	/* lossless: nothing written, try again */
};

/* Settings of one run, fixed between start and stop. */
struct lg_run {
	struct relaymap_chan *ch;
	struct rchan *rchan;
	size_t record_size;
	u32 rate;
	bool lossless;
	bool overwrite;
	enum lg_method method;
	u64 count;
	u64 deadline_ns;	/* 0: none */
};

struct lg_cpu {
	struct task_struct *task;
	void *rec;		/* record_size bytes: a whole framed record */
	unsigned int cpu;
	/* written by the thread, read by status */
	u64 written;
	u64 dropped;
};

static struct {
	struct mutex lock;	/* start, stop, reap */
	bool started;		/* threads exist, writer registered */
	atomic_t active;	/* threads still writing */
	struct lg_run run;
	struct lg_cpu *cpus;	/* nr_cpu_ids entries */
	struct work_struct reap;
	struct dentry *dir;
} lg;

/* Payload, fill and checksum exactly as relaymap_abi.h specifies. */
static void lg_fill(void *data, size_t data_len, u64 seq, u32 cpu)
{
	struct relaymap_loadgen_payload *pl = data;
	size_t fill_len = data_len - sizeof(*pl);
	u8 *fill = (u8 *)(pl + 1);
	u32 h = RELAYMAP_FNV_OFFSET;
	u8 b = (u8)(seq * 13 + cpu);
	size_t i;

	for (i = 0; i < 8; i++)
		h = (h ^ (u8)(seq >> (8 * i))) * RELAYMAP_FNV_PRIME;
	for (i = 0; i < 4; i++)
		h = (h ^ (u8)(cpu >> (8 * i))) * RELAYMAP_FNV_PRIME;
	for (i = 0; i < fill_len; i++, b += 7) {
		fill[i] = b;
		h = (h ^ b) * RELAYMAP_FNV_PRIME;
	}
	pl->seq = seq;
	pl->cpu = cpu;
	pl->checksum = h;
}

/*
 * Would a relay write of @len bytes succeed now? Called on the owning CPU
 * with interrupts (or preemption, for __relay_write) disabled; the answer
 * can only get better until they are enabled again, because only the
 * reader changes subbufs_consumed and RESET is refused while we run.
 */
static bool lg_relay_room(const struct lg_run *run, struct rchan_buf *buf,
			  size_t len)
{
	size_t subbuf_size = run->rchan->subbuf_size;
	size_t produced = buf->subbufs_produced;

	if (run->overwrite || buf->offset + len <= subbuf_size)
		return true;
	/* A switch closes the current sub-buffer unless it is stuck full. */
	if (buf->offset != subbuf_size + 1)
		produced++;
	return produced - READ_ONCE(buf->subbufs_consumed) <
	       run->rchan->n_subbufs;
}

static enum lg_result lg_write_relay(const struct lg_run *run,
				     struct lg_cpu *lc)
{
	struct relaymap_record *rec = lc->rec;
	enum lg_result res = LG_WRITTEN;
	unsigned long flags = 0;
	bool irqs = run->method == LG_RELAY_WRITE;
	u64 before;

	if (irqs)
		local_irq_save(flags);
	else
		preempt_disable();

	if (run->lossless &&
	    !lg_relay_room(run, *this_cpu_ptr(run->rchan->buf),
			   run->record_size)) {
		res = LG_FULL;
		goto out;
	}
	before = relaymap_cpu_dropped(run->ch, lc->cpu);
	rec->ts_ns = ktime_get_mono_fast_ns();
	if (irqs)
		relay_write(run->rchan, rec, run->record_size);
	else
		__relay_write(run->rchan, rec, run->record_size);
	if (relaymap_cpu_dropped(run->ch, lc->cpu) != before)
		res = LG_DROPPED;
	else
		relaymap_account(run->ch, run->record_size);
out:
	if (irqs)
		local_irq_restore(flags);
	else
		preempt_enable();
	return res;
}

static enum lg_result lg_write_one(const struct lg_run *run,
				   struct lg_cpu *lc, u64 seq)
{
	size_t data_len = run->record_size - sizeof(struct relaymap_record);
	void *data = (struct relaymap_record *)lc->rec + 1;
	unsigned long flags;
	int ret;

	switch (run->method) {
	case LG_API:
		if (run->lossless) {
			ret = relaymap_try_write(run->ch, RELAYMAP_REC_LOADGEN,
						 data, data_len);
			if (ret == -EAGAIN)
				return LG_FULL;
		} else {
			ret = relaymap_write(run->ch, RELAYMAP_REC_LOADGEN,
					     data, data_len);
		}
		return ret ? LG_DROPPED : LG_WRITTEN;
	case LG_RESERVE:
		if (run->lossless)
			data = relaymap_try_reserve(run->ch,
						    RELAYMAP_REC_LOADGEN,
						    data_len, &flags);
		else
			data = relaymap_reserve(run->ch, RELAYMAP_REC_LOADGEN,
						data_len, &flags);
		if (!data)
			return run->lossless ? LG_FULL : LG_DROPPED;
		lg_fill(data, data_len, seq, lc->cpu);
		relaymap_commit(run->ch, data, flags);
		return LG_WRITTEN;
	default:
		return lg_write_relay(run, lc);
	}
}

static void lg_sleep_ns(u64 ns)
{
	u64 us = div_u64(ns, NSEC_PER_USEC);

	us = clamp_t(u64, us, 10, LG_MAX_SLEEP_US);
	usleep_range(us, us + us / 4 + 10);
}

static int lg_thread(void *arg)
{
	struct lg_cpu *lc = arg;
	const struct lg_run *run = &lg.run;
	size_t data_len = run->record_size - sizeof(struct relaymap_record);
	void *data = (struct relaymap_record *)lc->rec + 1;
	u64 t0 = ktime_get_ns(), n0 = 0;
	bool filled = false;
	u64 seq = 0;

	while (!kthread_should_stop()) {
		u64 now;

		if (run->count && seq >= run->count)
			break;
		/* Only CPU hotplug moves a bound thread: stop, do not lie. */
		if (unlikely(raw_smp_processor_id() != lc->cpu)) {
			pr_warn_once("cpu %u went offline: its writer stops\n",
				     lc->cpu);
			break;
		}
		now = ktime_get_ns();
		if (run->deadline_ns && now >= run->deadline_ns)
			break;
		if (run->rate) {
			u64 due = t0 + mul_u64_u32_div(seq - n0, NSEC_PER_SEC,
						       run->rate);

			if (due > now) {
				lg_sleep_ns(due - now);
				continue;
			}
			/*
			 * Late (preempted, or waiting for room): go on from
			 * now instead of catching up with a burst, so the
			 * rate holds over any interval of a few ms or more.
			 */
			if (now - due > LG_MAX_LAG_NS) {
				t0 = now;
				n0 = seq;
			}
		}
		/* The copying methods write lc->rec, filled once per seq. */
		if (run->method != LG_RESERVE && !filled) {
			lg_fill(data, data_len, seq, lc->cpu);
			filled = true;
		}
		switch (lg_write_one(run, lc, seq)) {
		case LG_FULL:
			/* Lossless: let the reader catch up, keep seq. */
			lg_sleep_ns(50 * NSEC_PER_USEC);
			continue;
		case LG_WRITTEN:
			WRITE_ONCE(lc->written, lc->written + 1);
			break;
		case LG_DROPPED:
			WRITE_ONCE(lc->dropped, lc->dropped + 1);
			break;
		}
		seq++;
		filled = false;
		cond_resched();
	}

	if (atomic_dec_and_test(&lg.active))
		schedule_work(&lg.reap);

	/* Stay around until lg_stop_locked() calls kthread_stop(). */
	set_current_state(TASK_INTERRUPTIBLE);
	while (!kthread_should_stop()) {
		schedule();
		set_current_state(TASK_INTERRUPTIBLE);
	}
	__set_current_state(TASK_RUNNING);
	return 0;
}

static void lg_stop_locked(void)
{
	unsigned int cpu;

	lockdep_assert_held(&lg.lock);
	if (!lg.started)
		return;
	for (cpu = 0; cpu < nr_cpu_ids; cpu++) {
		struct lg_cpu *lc = &lg.cpus[cpu];

		if (lc->task) {
			kthread_stop(lc->task);
			lc->task = NULL;
		}
		kfree(lc->rec);
		lc->rec = NULL;
	}
	relaymap_writer_unregister(lg.run.ch);
	relaymap_chan_put(lg.run.ch);
	memset(&lg.run, 0, sizeof(lg.run));
	lg.started = false;
}

/* All threads finished their count or duration: release the channel. */
static void lg_reap(struct work_struct *work)
{
	mutex_lock(&lg.lock);
	if (lg.started && !atomic_read(&lg.active))
		lg_stop_locked();
	mutex_unlock(&lg.lock);
}

static int lg_parse_settings(struct lg_run *run, char *chname)
{
	int m;

	kernel_param_lock(THIS_MODULE);
	strscpy(chname, channel, RELAYMAP_NAME_MAX);
	run->record_size = record_size;
	run->rate = rate;
	run->count = count;
	run->deadline_ns = duration_ms ?
		ktime_get_ns() + (u64)duration_ms * NSEC_PER_MSEC : 0;
	m = sysfs_match_string(lg_method_names, method);
	if (m < 0)
		pr_err("method \"%s\" invalid: api, reserve, relay_write or __relay_write\n",
		       method);
	if (sysfs_streq(mode, "lossless")) {
		run->lossless = true;
	} else if (!sysfs_streq(mode, "drop")) {
		pr_err("mode \"%s\" invalid: lossless or drop\n", mode);
		m = -EINVAL;
	}
	kernel_param_unlock(THIS_MODULE);
	if (m < 0)
		return -EINVAL;
	run->method = m;
	return 0;
}

static int lg_start(void)
{
	struct relaymap_info *info;
	char chname[RELAYMAP_NAME_MAX];
	struct lg_run run = { };
	struct relaymap_chan *ch;
	unsigned int cpu, n = 0;
	int err;

	err = lg_parse_settings(&run, chname);
	if (err)
		return err;

	ch = relaymap_chan_get(chname);
	if (!ch) {
		pr_err("no relaymap channel \"%s\"\n", chname);
		return -ENOENT;
	}
	info = kmalloc(sizeof(*info), GFP_KERNEL);
	if (!info) {
		err = -ENOMEM;
		goto err_put;
	}
	relaymap_chan_info(ch, info);
	run.overwrite = info->flags & RELAYMAP_INFO_OVERWRITE;
	if (run.record_size < LG_MIN_RECORD ||
	    run.record_size % RELAYMAP_RECORD_ALIGN ||
	    run.record_size > info->max_record_size) {
		pr_err("record_size %zu invalid: multiple of %d in [%zu, %u]\n",
		       run.record_size, RELAYMAP_RECORD_ALIGN, LG_MIN_RECORD,
		       info->max_record_size);
		err = -EINVAL;
	}
	kfree(info);
	if (err)
		goto err_put;
	run.ch = ch;
	run.rchan = relaymap_chan_relay(ch);

	mutex_lock(&lg.lock);
	if (lg.started && !atomic_read(&lg.active))
		lg_stop_locked();	/* the last run ended, not reaped yet */
	if (lg.started) {
		err = -EBUSY;
		goto err_unlock;
	}
	relaymap_writer_register(ch);
	lg.run = run;
	lg.started = true;
	/* Counters describe this run only, also on CPUs that are offline now. */
	for (cpu = 0; cpu < nr_cpu_ids; cpu++) {
		WRITE_ONCE(lg.cpus[cpu].written, 0);
		WRITE_ONCE(lg.cpus[cpu].dropped, 0);
	}

	cpus_read_lock();
	for_each_online_cpu(cpu) {
		struct lg_cpu *lc = &lg.cpus[cpu];
		struct relaymap_record *rec;
		struct task_struct *t;

		lc->cpu = cpu;
		lc->rec = kzalloc(run.record_size, GFP_KERNEL);
		if (!lc->rec) {
			err = -ENOMEM;
			break;
		}
		rec = lc->rec;
		rec->size = run.record_size;
		rec->type = RELAYMAP_REC_LOADGEN;
		t = kthread_create_on_node(lg_thread, lc, cpu_to_node(cpu),
					   "relaymap_lg/%u", cpu);
		if (IS_ERR(t)) {
			err = PTR_ERR(t);
			break;
		}
		kthread_bind(t, cpu);
		lc->task = t;
		n++;
	}
	cpus_read_unlock();

	atomic_set(&lg.active, n);
	for (cpu = 0; cpu < nr_cpu_ids; cpu++)
		if (lg.cpus[cpu].task)
			wake_up_process(lg.cpus[cpu].task);
	if (err) {
		pr_err("cannot start the writer threads: %d\n", err);
		lg_stop_locked();
		goto err_unlock_noput;
	}
	mutex_unlock(&lg.lock);
	pr_info("started on %u CPUs: channel %s, %s, %s, record_size %zu\n",
		n, chname, lg_method_names[run.method],
		run.lossless ? "lossless" : "drop", run.record_size);
	return 0;

err_unlock:
	mutex_unlock(&lg.lock);
err_put:
	relaymap_chan_put(ch);
	return err;
err_unlock_noput:
	mutex_unlock(&lg.lock);
	return err;
}

static void lg_stop(void)
{
	mutex_lock(&lg.lock);
	lg_stop_locked();
	mutex_unlock(&lg.lock);
}

static ssize_t lg_control_write(struct file *file, const char __user *ubuf,
				size_t len, loff_t *ppos)
{
	char cmd[16];
	int err = 0;

	if (len >= sizeof(cmd))
		return -EINVAL;
	if (copy_from_user(cmd, ubuf, len))
		return -EFAULT;
	cmd[len] = '\0';

	if (sysfs_streq(cmd, "start"))
		err = lg_start();
	else if (sysfs_streq(cmd, "stop"))
		lg_stop();
	else
		err = -EINVAL;
	return err ? err : len;
}

static const struct file_operations lg_control_fops = {
	.owner = THIS_MODULE,
	.open = simple_open,
	.write = lg_control_write,
	.llseek = noop_llseek,
};

static int lg_status_show(struct seq_file *m, void *v)
{
	u64 tw = 0, td = 0;
	unsigned int cpu;
	bool running;

	/* Finished threads: let the reaper release the channel first. */
	if (!atomic_read(&lg.active))
		flush_work(&lg.reap);
	running = READ_ONCE(lg.started) && atomic_read(&lg.active);

	seq_printf(m, "state %s\n", running ? "running" : "idle");
	for (cpu = 0; cpu < nr_cpu_ids; cpu++) {
		u64 w = READ_ONCE(lg.cpus[cpu].written);
		u64 d = READ_ONCE(lg.cpus[cpu].dropped);

		if (cpu_online(cpu))
			seq_printf(m, "cpu %u attempts %llu written %llu dropped %llu\n",
				   cpu, w + d, w, d);
		tw += w;
		td += d;
	}
	seq_printf(m, "total attempts %llu written %llu dropped %llu\n",
		   tw + td, tw, td);
	return 0;
}
DEFINE_SHOW_ATTRIBUTE(lg_status);

static int __init lg_init(void)
{
	int err;

	mutex_init(&lg.lock);
	INIT_WORK(&lg.reap, lg_reap);
	lg.cpus = kcalloc(nr_cpu_ids, sizeof(*lg.cpus), GFP_KERNEL);
	if (!lg.cpus)
		return -ENOMEM;

	lg.dir = debugfs_create_dir("relaymap_loadgen", NULL);
	debugfs_create_file("control", 0200, lg.dir, NULL, &lg_control_fops);
	debugfs_create_file("status", 0444, lg.dir, NULL, &lg_status_fops);

	if (autostart) {
		err = lg_start();
		if (err) {
			debugfs_remove(lg.dir);
			kfree(lg.cpus);
			return err;
		}
	}
	return 0;
}

static void __exit lg_exit(void)
{
	debugfs_remove(lg.dir);
	lg_stop();
	cancel_work_sync(&lg.reap);
	kfree(lg.cpus);
}

module_init(lg_init);
module_exit(lg_exit);

MODULE_LICENSE("GPL");
MODULE_AUTHOR("relaymap developers");
MODULE_DESCRIPTION("Load generator for relaymap channels");

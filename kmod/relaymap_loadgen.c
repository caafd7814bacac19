// SPDX-License-Identifier: GPL-2.0
/*
 * Load generator for relaymap channels.
 *
 * One kthread per online CPU, bound to it, writes RELAYMAP_REC_LOADGEN
 * records (struct relaymap_loadgen_payload + fill, see relaymap_abi.h)
 * into a channel through one of five write paths. In lossless mode a
 * writer that finds its buffer full sleeps until the consumer hands a
 * sub-buffer back (relaymap_write_wait(), relaymap_printf_wait(),
 * relaymap_wait_space()), and counts its waits, sleeps and time waiting. Parameters are read at
 * each start. Controlled through the module parameters `run` (write 1 to
 * start, 0 to stop) and `status` (read), which work with no debugfs and
 * under lockdown, and through debugfs relaymap_loadgen/{control,status}
 * where debugfs is usable (under lockdown only status opens: debugfs
 * refuses writable files then).
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
#include <linux/seq_buf.h>
#include <linux/seq_file.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/uaccess.h>
#include <linux/workqueue.h>

#include <relaymap/relaymap.h>

#include "relaymap_compat.h"

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
MODULE_PARM_DESC(method, "api, reserve, relay_write, __relay_write or printf (default: api)");

static ulong count;
module_param(count, ulong, 0644);
MODULE_PARM_DESC(count, "Records per CPU, then that CPU stops; 0 = until stopped (default: 0)");

static uint duration_ms;
module_param(duration_ms, uint, 0644);
MODULE_PARM_DESC(duration_ms, "Stop after this many ms; 0 = until stopped (default: 0)");

static bool autostart;
module_param(autostart, bool, 0644);
MODULE_PARM_DESC(autostart, "Start at module load (default: 0)");

static uint rejects;
module_param(rejects, uint, 0644);
MODULE_PARM_DESC(rejects, "Oversize writes per CPU at the start of a run (relaymap_write() of max_data_size + 1 bytes, counted as rejected; plus as many relaymap_try_write(), counted nowhere) (default: 0)");

static char *create = "";
module_param(create, charp, 0444);
MODULE_PARM_DESC(create, "Create a channel of this name at load and destroy it at unload (a channel creator for tests); empty = none (default: empty)");

static ulong create_subbuf_size = 65536;
module_param(create_subbuf_size, ulong, 0444);
MODULE_PARM_DESC(create_subbuf_size, "subbuf_size of the channel made by create= (default: 65536)");

static ulong create_n_subbufs = 8;
module_param(create_n_subbufs, ulong, 0444);
MODULE_PARM_DESC(create_n_subbufs, "n_subbufs of the channel made by create= (default: 8)");

/* `run` and `status` are below: they need the state. */

enum lg_method {
	LG_API,
	LG_RESERVE,
	LG_RELAY_WRITE,
	LG___RELAY_WRITE,
	LG_PRINTF,
};

static const char * const lg_method_names[] = {
	[LG_API] = "api",
	[LG_RESERVE] = "reserve",
	[LG_RELAY_WRITE] = "relay_write",
	[LG___RELAY_WRITE] = "__relay_write",
	[LG_PRINTF] = "printf",
};

/* The printf method's text; its length varies, so does the padding. */
#define LG_PRINTF_FMT "relaymap_loadgen cpu %u seq %llu"
#define LG_PRINTF_MAX 64

enum lg_result {
	LG_WRITTEN,
	LG_DROPPED,
	LG_FULL,	/* lossless: nothing written, wait for space, try again */
	LG_STOPPED,	/* lossless: the wait ended by kthread_stop() */
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
	u32 rejects;
	size_t max_data;	/* the channel's max_data_size */
};

struct lg_cpu {
	struct task_struct *task;
	void *rec;		/* record_size bytes: a whole framed record */
	unsigned int cpu;
	/* written by the thread, read by status */
	u64 written;
	u64 dropped;
	u64 rejected;
	/* lossless: times the buffer was full and the writer waited for space */
	u64 waits;
	/* voluntary context switches (sleeps) inside those waits */
	u64 sleeps;
	u64 wait_ns;		/* wall time inside those waits */
	u64 cpu_ns;		/* the thread's CPU time (sum_exec_runtime) */
};

static struct {
	struct mutex lock;	/* start, stop, reap */
	bool started;		/* threads exist, writer registered */
	atomic_t active;	/* threads still writing */
	struct lg_run run;
	struct lg_cpu *cpus;	/* nr_cpu_ids entries */
	struct work_struct reap;
	struct dentry *dir;
	struct relaymap_chan *own;	/* made by create= */
} lg;

static u32 lg_fnv(u32 h, const void *p, size_t n)
{
	const u8 *b = p;

	while (n--)
		h = (h ^ *b++) * RELAYMAP_FNV_PRIME;
	return h;
}

/*
 * Payload, fill and checksum exactly as relaymap_abi.h specifies: FNV-1a
 * over the bytes of seq and cpu as they lie in the record (host order),
 * then the fill bytes.
 */
static void lg_fill(void *data, size_t data_len, u64 seq, u32 cpu)
{
	struct relaymap_loadgen_payload *pl = data;
	size_t fill_len = data_len - sizeof(*pl);
	u8 *fill = (u8 *)(pl + 1);
	u32 h = RELAYMAP_FNV_OFFSET;
	u8 b = (u8)(seq * 13 + cpu);
	size_t i;

	h = lg_fnv(h, &seq, sizeof(seq));
	h = lg_fnv(h, &cpu, sizeof(cpu));
	for (i = 0; i < fill_len; i++, b += 7) {
		fill[i] = b;
		h = (h ^ b) * RELAYMAP_FNV_PRIME;
	}
	pl->seq = seq;
	pl->cpu = cpu;
	pl->checksum = h;
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

	/*
	 * With interrupts (or preemption) off on the owning CPU the answer
	 * can only get better until they are on again: only the reader
	 * hands sub-buffers back, and RESET is refused while we run.
	 */
	if (run->lossless &&
	    !relaymap_buf_room(relaymap_rchan_this_buf(run->rchan),
			       run->record_size, run->overwrite)) {
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
		relaymap_account(run->ch, run->record_size -
				 sizeof(struct relaymap_record));
out:
	if (irqs)
		local_irq_restore(flags);
	else
		preempt_enable();
	return res;
}

/* Time, sleeps and CPU of one wait for space; see lg_wait_end(). */
struct lg_wait {
	u64 t0;
	unsigned long nvcsw;
};

/* Counted when it begins: a status with waits > 0 may show one in progress. */
static void lg_wait_begin(struct lg_cpu *lc, struct lg_wait *w)
{
	WRITE_ONCE(lc->waits, lc->waits + 1);
	w->t0 = ktime_get_ns();
	w->nvcsw = current->nvcsw;
}

static void lg_wait_end(struct lg_cpu *lc, const struct lg_wait *w)
{
	WRITE_ONCE(lc->sleeps, lc->sleeps + (current->nvcsw - w->nvcsw));
	WRITE_ONCE(lc->wait_ns, lc->wait_ns + (ktime_get_ns() - w->t0));
}

/* What a sleeping writer's return value means for the loop. */
static enum lg_result lg_wait_result(int ret)
{
	if (!ret)
		return LG_WRITTEN;
	/* kthread_stop() (-EINTR), or the channel went away (-EPIPE). */
	if (ret == -EINTR || ret == -EPIPE || ret == -ERESTARTSYS)
		return LG_STOPPED;
	return LG_DROPPED;
}

/*
 * relaymap_printf() records (event_id RELAYMAP_EVENT_PRINTF). Lossless:
 * relaymap_try_printf(), and when the buffer is full
 * relaymap_printf_wait(), which sleeps until there is room.
 */
static enum lg_result lg_write_printf(const struct lg_run *run,
				      struct lg_cpu *lc, u64 seq)
{
	struct lg_wait w;
	int ret;

	if (!run->lossless)
		return relaymap_printf(run->ch, LG_PRINTF_FMT, lc->cpu, seq) ?
		       LG_DROPPED : LG_WRITTEN;
	ret = relaymap_try_printf(run->ch, LG_PRINTF_FMT, lc->cpu, seq);
	if (ret != -EAGAIN)
		return ret ? LG_DROPPED : LG_WRITTEN;
	lg_wait_begin(lc, &w);
	ret = relaymap_printf_wait(run->ch, MAX_SCHEDULE_TIMEOUT, LG_PRINTF_FMT,
				   lc->cpu, seq);
	lg_wait_end(lc, &w);
	return lg_wait_result(ret);
}

/*
 * method=api, lossless: relaymap_try_write(), and when the buffer is full
 * relaymap_write_wait(), which sleeps until the consumer hands a
 * sub-buffer back.
 */
static enum lg_result lg_write_api_lossless(const struct lg_run *run,
					    struct lg_cpu *lc, void *data,
					    size_t data_len)
{
	struct lg_wait w;
	int ret;

	ret = relaymap_try_write(run->ch, RELAYMAP_REC_LOADGEN, data, data_len);
	if (ret != -EAGAIN)
		return ret ? LG_DROPPED : LG_WRITTEN;
	lg_wait_begin(lc, &w);
	ret = relaymap_write_wait(run->ch, RELAYMAP_REC_LOADGEN, data, data_len,
				  MAX_SCHEDULE_TIMEOUT);
	lg_wait_end(lc, &w);
	return lg_wait_result(ret);
}

/* rejects=N: oversize writes, before the records. */
static void lg_write_rejects(const struct lg_run *run, struct lg_cpu *lc)
{
	u32 i;

	for (i = 0; i < run->rejects && !kthread_should_stop(); i++) {
		/* The data is never read: a too-large write copies nothing. */
		if (relaymap_write(run->ch, RELAYMAP_REC_LOADGEN, lc->rec,
				   run->max_data + 1) == -EMSGSIZE)
			WRITE_ONCE(lc->rejected, lc->rejected + 1);
		WARN_ON_ONCE(relaymap_try_write(run->ch, RELAYMAP_REC_LOADGEN,
						lc->rec, run->max_data + 1) !=
			     -EMSGSIZE);
	}
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
		if (run->lossless)
			return lg_write_api_lossless(run, lc, data, data_len);
		ret = relaymap_write(run->ch, RELAYMAP_REC_LOADGEN, data,
				     data_len);
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
	case LG_PRINTF:
		return lg_write_printf(run, lc, seq);
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
	u64 cpu0 = current->se.sum_exec_runtime;
	bool filled = false, stop = false;
	u64 seq = 0;

	lg_write_rejects(run, lc);
	while (!stop && !kthread_should_stop()) {
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
		if (run->method != LG_RESERVE && run->method != LG_PRINTF &&
		    !filled) {
			lg_fill(data, data_len, seq, lc->cpu);
			filled = true;
		}
		switch (lg_write_one(run, lc, seq)) {
		case LG_FULL: {
			/*
			 * Lossless, reserve and relay's writers: sleep until
			 * this CPU's buffer has room (the thread is bound to
			 * it), keep seq, try again.
			 */
			struct lg_wait w;

			lg_wait_begin(lc, &w);
			stop = relaymap_wait_space(run->ch, lc->cpu,
						   MAX_SCHEDULE_TIMEOUT) != 0;
			lg_wait_end(lc, &w);
			continue;
		}
		case LG_STOPPED:
			/* kthread_stop(), or the channel was destroyed. */
			stop = true;
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
		WRITE_ONCE(lc->cpu_ns, current->se.sum_exec_runtime - cpu0);
		cond_resched();
	}
	WRITE_ONCE(lc->cpu_ns, current->se.sum_exec_runtime - cpu0);
	if (stop && !kthread_should_stop())
		pr_warn("cpu %u: the channel was destroyed under its writer: it stops\n",
			lc->cpu);

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

/* @params_locked: called from a parameter's set (`run`), which holds it. */
static int lg_parse_settings(struct lg_run *run, char *chname,
			     bool params_locked)
{
	int m;

	if (!params_locked)
		kernel_param_lock(THIS_MODULE);
	strscpy(chname, channel, RELAYMAP_NAME_MAX);
	run->record_size = record_size;
	run->rate = rate;
	run->count = count;
	run->rejects = rejects;
	run->deadline_ns = duration_ms ?
		ktime_get_ns() + (u64)duration_ms * NSEC_PER_MSEC : 0;
	m = sysfs_match_string(lg_method_names, method);
	if (m < 0)
		pr_err("method \"%s\" invalid: api, reserve, relay_write, __relay_write or printf\n",
		       method);
	if (sysfs_streq(mode, "lossless")) {
		run->lossless = true;
	} else if (!sysfs_streq(mode, "drop")) {
		pr_err("mode \"%s\" invalid: lossless or drop\n", mode);
		m = -EINVAL;
	}
	if (!params_locked)
		kernel_param_unlock(THIS_MODULE);
	if (m < 0)
		return -EINVAL;
	run->method = m;
	return 0;
}

static int lg_start(bool params_locked)
{
	struct relaymap_info *info;
	char chname[RELAYMAP_NAME_MAX];
	struct lg_run run = { };
	struct relaymap_chan *ch;
	unsigned int cpu, n = 0;
	int err;

	err = lg_parse_settings(&run, chname, params_locked);
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
	run.max_data = info->max_data_size;
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
		WRITE_ONCE(lg.cpus[cpu].rejected, 0);
		WRITE_ONCE(lg.cpus[cpu].waits, 0);
		WRITE_ONCE(lg.cpus[cpu].sleeps, 0);
		WRITE_ONCE(lg.cpus[cpu].wait_ns, 0);
		WRITE_ONCE(lg.cpus[cpu].cpu_ns, 0);
	}

	cpus_read_lock();
	for_each_online_cpu(cpu) {
		struct lg_cpu *lc = &lg.cpus[cpu];
		struct relaymap_record *rec;
		struct task_struct *t;

		lc->cpu = cpu;
		lc->rec = kzalloc(max_t(size_t, run.record_size, LG_PRINTF_MAX),
				  GFP_KERNEL);
		if (!lc->rec) {
			err = -ENOMEM;
			break;
		}
		rec = lc->rec;
		rec->event_id = RELAYMAP_EVENT_RECORD;
		rec->type = RELAYMAP_REC_LOADGEN;
		rec->len = run.record_size - sizeof(*rec);
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
		err = lg_start(false);
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

/* Room for one "cpu" line and the "total" line. */
#define LG_LINE_MAX 256

/*
 * The status text, for debugfs and for the `status` parameter (one page:
 * with very many CPUs the cpu lines that do not fit are left out and
 * counted in a "cpus-not-shown N" line; the total is always there).
 */
static void lg_status_fmt(struct seq_buf *s)
{
	unsigned int cpu, hidden = 0;
	u64 tw = 0, td = 0, tr = 0, twa = 0, ts = 0, twn = 0, tc = 0;
	bool running;

	/* Finished threads: let the reaper release the channel first. */
	if (!atomic_read(&lg.active))
		flush_work(&lg.reap);
	running = READ_ONCE(lg.started) && atomic_read(&lg.active);

	seq_buf_printf(s, "state %s\n", running ? "running" : "idle");
	for (cpu = 0; cpu < nr_cpu_ids; cpu++) {
		const struct lg_cpu *lc = &lg.cpus[cpu];
		u64 w = READ_ONCE(lc->written);
		u64 d = READ_ONCE(lc->dropped);
		u64 r = READ_ONCE(lc->rejected);
		u64 wa = READ_ONCE(lc->waits);
		u64 sl = READ_ONCE(lc->sleeps);
		u64 wn = READ_ONCE(lc->wait_ns);
		u64 c = READ_ONCE(lc->cpu_ns);

		if (!cpu_online(cpu)) {
			/* counted below */
		} else if (s->size - seq_buf_used(s) < 3 * LG_LINE_MAX) {
			hidden++;
		} else {
			seq_buf_printf(s,
				       "cpu %u attempts %llu written %llu dropped %llu rejected %llu waits %llu sleeps %llu wait_us %llu cpu_us %llu\n",
				       cpu, w + d, w, d, r, wa, sl,
				       div_u64(wn, NSEC_PER_USEC),
				       div_u64(c, NSEC_PER_USEC));
		}
		tw += w;
		td += d;
		tr += r;
		twa += wa;
		ts += sl;
		twn += wn;
		tc += c;
	}
	if (hidden)
		seq_buf_printf(s, "cpus-not-shown %u\n", hidden);
	seq_buf_printf(s,
		       "total attempts %llu written %llu dropped %llu rejected %llu waits %llu sleeps %llu wait_us %llu cpu_us %llu\n",
		       tw + td, tw, td, tr, twa, ts, div_u64(twn, NSEC_PER_USEC),
		       div_u64(tc, NSEC_PER_USEC));
}

static int lg_status_show(struct seq_file *m, void *v)
{
	size_t size = (nr_cpu_ids + 3) * LG_LINE_MAX;
	struct seq_buf s;
	char *buf;

	buf = kvmalloc(size, GFP_KERNEL);
	if (!buf)
		return -ENOMEM;
	seq_buf_init(&s, buf, size);
	lg_status_fmt(&s);
	seq_write(m, buf, seq_buf_used(&s));
	kvfree(buf);
	return 0;
}
DEFINE_SHOW_ATTRIBUTE(lg_status);

/*
 * The sysfs control: /sys/module/relaymap_loadgen/parameters/run.
 * Writing 1 starts a run with the current parameters (EBUSY if one is
 * running), 0 stops it and returns when every thread has ended. Reading
 * gives 1 while writers run. Given at load (run=1) it acts like
 * autostart. The parameter lock is held around set.
 */
static bool lg_ready;		/* lg_init() is done */
static bool lg_run_at_load;

static int lg_run_set(const char *val, const struct kernel_param *kp)
{
	bool on;
	int err;

	err = kstrtobool(val, &on);
	if (err)
		return err;
	if (!READ_ONCE(lg_ready)) {
		lg_run_at_load = on;
		return 0;
	}
	if (on)
		return lg_start(true);
	lg_stop();
	return 0;
}

static int lg_run_get(char *buf, const struct kernel_param *kp)
{
	bool running = READ_ONCE(lg_ready) && READ_ONCE(lg.started) &&
		       atomic_read(&lg.active);

	return scnprintf(buf, PAGE_SIZE, "%d\n", running);
}

static const struct kernel_param_ops lg_run_ops = {
	.set = lg_run_set,
	.get = lg_run_get,
};
module_param_cb(run, &lg_run_ops, NULL, 0644);
MODULE_PARM_DESC(run, "Write 1 to start, 0 to stop (returns when the writers ended); reads 1 while running");

/* /sys/module/relaymap_loadgen/parameters/status: the status, read-only. */
static int lg_status_set(const char *val, const struct kernel_param *kp)
{
	return -EPERM;
}

static int lg_status_get(char *buf, const struct kernel_param *kp)
{
	struct seq_buf s;

	if (!READ_ONCE(lg_ready))
		return -ENODEV;
	seq_buf_init(&s, buf, PAGE_SIZE);
	lg_status_fmt(&s);
	return seq_buf_used(&s);
}

static const struct kernel_param_ops lg_status_ops = {
	.set = lg_status_set,
	.get = lg_status_get,
};
module_param_cb(status, &lg_status_ops, NULL, 0444);
MODULE_PARM_DESC(status, "Read-only: state, per-CPU attempts/written/dropped and the total (as debugfs status)");

static int __init lg_init(void)
{
	int err;

	mutex_init(&lg.lock);
	INIT_WORK(&lg.reap, lg_reap);
	lg.cpus = kcalloc(nr_cpu_ids, sizeof(*lg.cpus), GFP_KERNEL);
	if (!lg.cpus)
		return -ENOMEM;

	if (create && create[0]) {
		struct relaymap_chan_config cfg = {
			.name = create,
			.subbuf_size = create_subbuf_size,
			.n_subbufs = create_n_subbufs,
		};

		lg.own = relaymap_chan_create(&cfg);
		if (IS_ERR(lg.own)) {
			err = PTR_ERR(lg.own);
			pr_err("create=%s: cannot create the channel: %d\n",
			       create, err);
			kfree(lg.cpus);
			return err;
		}
	}

	/* An ERR_PTR without debugfs: the files below are then not made. */
	lg.dir = debugfs_create_dir("relaymap_loadgen", NULL);
	debugfs_create_file("control", 0200, lg.dir, NULL, &lg_control_fops);
	debugfs_create_file("status", 0444, lg.dir, NULL, &lg_status_fops);

	/*
	 * The parameters are in sysfs already: under their lock no `run`
	 * write is half done, and later ones see lg_ready.
	 */
	kernel_param_lock(THIS_MODULE);
	WRITE_ONCE(lg_ready, true);
	err = 0;
	if (autostart || lg_run_at_load)
		err = lg_start(true);
	if (err)
		WRITE_ONCE(lg_ready, false);
	kernel_param_unlock(THIS_MODULE);
	if (err) {
		debugfs_remove(lg.dir);
		relaymap_chan_destroy(lg.own);
		kfree(lg.cpus);
		return err;
	}
	return 0;
}

static void __exit lg_exit(void)
{
	/* No `run` write in flight, none after: lg_stop() is the last word. */
	kernel_param_lock(THIS_MODULE);
	WRITE_ONCE(lg_ready, false);
	kernel_param_unlock(THIS_MODULE);
	debugfs_remove(lg.dir);
	lg_stop();
	cancel_work_sync(&lg.reap);
	/* Consumers that still hold it drain it; see relaymap_chan_destroy(). */
	relaymap_chan_destroy(lg.own);
	kfree(lg.cpus);
}

module_init(lg_init);
module_exit(lg_exit);

MODULE_LICENSE("GPL");
MODULE_AUTHOR("relaymap developers");
MODULE_DESCRIPTION("Load generator for relaymap channels");

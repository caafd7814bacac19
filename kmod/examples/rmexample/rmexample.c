// SPDX-License-Identifier: GPL-2.0
/*
 * rmexample - an out-of-tree driver that traces into its own relaymap
 * channel, built against relaymap's installed headers and Module.symvers
 * (kmod/README.md, "Out-of-tree modules"). It writes its own record format
 * from every context a driver has:
 *
 *   - a kthread per CPU (bound to it): binary records with the sleeping,
 *     lossless relaymap_write_wait(), text with relaymap_printf_wait()
 *     (lossless) and relaymap_try_printf() (skips a record when full);
 *   - an hrtimer per CPU, in hardirq context: binary records with
 *     relaymap_write() (a full buffer drops the record and counts it);
 *   - optionally, oversize writes that are refused (-EMSGSIZE).
 *
 * Records (type RMEX_TYPE = RELAYMAP_REC_USER, event_id 0): struct
 * rmex_record below, in host byte order. seq counts the attempts of one
 * kind on one CPU from 0, so a missing seq is a record that was not
 * written (dropped, or skipped by the try writer) and each is counted in
 * the module's own counters. check is FNV-1a 64 (offset basis
 * 0xcbf29ce484222325, prime 0x100000001b3) over the first 16 bytes (seq,
 * cpu, kind as they lie in the record). Text records (event_id 1, type
 * RELAYMAP_REC_PRINTF) read "rmexample cpu C kind K seq S" with kind 3
 * (printf_wait) or 4 (try_printf).
 *
 * Control, all module parameters in /sys/module/rmexample/parameters/
 * (sysfs works without debugfs and under lockdown):
 *   run      write 1: start a run with the current counts, 0: stop it
 *            (returns when everything stopped); reads 1 while running
 *   counts   read-only: what was written, dropped and refused, per CPU
 *   drain    write MS: relaymap_flush() then relaymap_chan_drain_wait()
 *            for up to MS ms; reads "result R ms T" of the last one
 * At unload the channel is flushed, drain_wait()ed for drain_ms_at_exit
 * ms (0: not at all) and destroyed; a consumer that still holds it drains
 * the rest.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/atomic.h>
#include <linux/cpu.h>
#include <linux/cpumask.h>
#include <linux/hrtimer.h>
#include <linux/jiffies.h>
#include <linux/kthread.h>
#include <linux/ktime.h>
#include <linux/module.h>
#include <linux/moduleparam.h>
#include <linux/mutex.h>
#include <linux/slab.h>
#include <linux/smp.h>
#include <linux/version.h>

#include <relaymap/relaymap.h>

#define RMEX_TYPE	RELAYMAP_REC_USER	/* 0x100 */

enum rmex_kind {
	RMEX_THREAD = 1,	/* kthread, relaymap_write_wait() */
	RMEX_TIMER = 2,		/* hrtimer (hardirq), relaymap_write() */
	RMEX_PRINTF = 3,	/* kthread, relaymap_printf_wait() */
	RMEX_TRY_PRINTF = 4,	/* kthread, relaymap_try_printf() */
};

struct rmex_record {
	__u64 seq;
	__u32 cpu;
	__u32 kind;
	__u64 check;
};

#define RMEX_FNV64_OFFSET	0xcbf29ce484222325ULL
#define RMEX_FNV64_PRIME	0x100000001b3ULL
#define RMEX_TEXT_FMT		"rmexample cpu %u kind %u seq %llu"

static char *channel = "rmexample";
module_param(channel, charp, 0444);
MODULE_PARM_DESC(channel, "Name of the channel created at load (default: rmexample)");

static ulong subbuf_size = 16384;
module_param(subbuf_size, ulong, 0444);
MODULE_PARM_DESC(subbuf_size, "Bytes per sub-buffer, a multiple of the page size (default: 16384)");

static ulong n_subbufs = 8;
module_param(n_subbufs, ulong, 0444);
MODULE_PARM_DESC(n_subbufs, "Sub-buffers per CPU (default: 8)");

static ulong thread_records = 10000;
module_param(thread_records, ulong, 0644);
MODULE_PARM_DESC(thread_records, "Binary records per CPU from the kthread, relaymap_write_wait() (default: 10000)");

static ulong printf_records = 1000;
module_param(printf_records, ulong, 0644);
MODULE_PARM_DESC(printf_records, "Text records per CPU from the kthread, relaymap_printf_wait() (default: 1000)");

static ulong try_printf_records = 1000;
module_param(try_printf_records, ulong, 0644);
MODULE_PARM_DESC(try_printf_records, "Text record attempts per CPU from the kthread, relaymap_try_printf() (default: 1000)");

static ulong timer_records = 2000;
module_param(timer_records, ulong, 0644);
MODULE_PARM_DESC(timer_records, "Binary records per CPU from the hrtimer (hardirq), relaymap_write() (default: 2000)");

static uint timer_period_us = 250;
module_param(timer_period_us, uint, 0644);
MODULE_PARM_DESC(timer_period_us, "Period of the hrtimer in microseconds (default: 250)");

static uint oversize;
module_param(oversize, uint, 0644);
MODULE_PARM_DESC(oversize, "Oversize writes per CPU at the start of a run, each with relaymap_write(), relaymap_try_write() and relaymap_write_wait() (default: 0)");

static uint wait_ms = 10000;
module_param(wait_ms, uint, 0644);
MODULE_PARM_DESC(wait_ms, "Timeout of the _wait writers in ms; a record still not written then is dropped and counted (default: 10000)");

static uint drain_ms_at_exit;
module_param(drain_ms_at_exit, uint, 0644);
MODULE_PARM_DESC(drain_ms_at_exit, "At unload, wait up to this many ms for the consumer to drain before the destroy (default: 0)");

/* What one CPU did in the current run; written there, read by `counts`. */
struct rmex_counts {
	u64 thread, thread_dropped;
	u64 printf, printf_dropped;
	u64 try_printf, try_printf_full;
	u64 timer, timer_dropped;
	u64 rejected;		/* -EMSGSIZE from relaymap_write(), _write_wait() */
	u64 try_rejected;	/* -EMSGSIZE from relaymap_try_write() */
};

struct rmex_cpu {
	struct task_struct *task;
	struct hrtimer hrt;
	unsigned int cpu;
	u64 timer_seq;		/* hrtimer attempts (the callback only) */
	struct rmex_counts c;
};

/* Settings of one run, fixed between start and stop. */
struct rmex_run {
	u64 thread_records, printf_records, try_printf_records, timer_records;
	ktime_t period;
	long timeout;		/* jiffies */
	u32 oversize;
};

static struct {
	struct mutex lock;	/* start, stop */
	struct relaymap_chan *ch;
	bool started;		/* writer registered, threads and timers exist */
	atomic_t active;	/* threads and timers still writing */
	struct rmex_run run;
	struct rmex_cpu *cpus;	/* nr_cpu_ids entries */
	int drain_result;
	u64 drain_ms;
	bool ready;		/* init done: parameter writes act */
} rmex;

static u64 rmex_check(u64 seq, u32 cpu, u32 kind)
{
	const struct rmex_record r = { .seq = seq, .cpu = cpu, .kind = kind };
	const u8 *b = (const u8 *)&r;
	u64 h = RMEX_FNV64_OFFSET;
	size_t i;

	for (i = 0; i < offsetof(struct rmex_record, check); i++)
		h = (h ^ b[i]) * RMEX_FNV64_PRIME;
	return h;
}

static void rmex_fill(struct rmex_record *r, u64 seq, u32 cpu, u32 kind)
{
	r->seq = seq;
	r->cpu = cpu;
	r->kind = kind;
	r->check = rmex_check(seq, cpu, kind);
}

static void rmex_inc(u64 *counter)
{
	WRITE_ONCE(*counter, *counter + 1);
}

static void rmex_done(void)
{
	atomic_dec(&rmex.active);
}

/* hardirq: the timer is pinned to its CPU, so the CPU is stable here. */
static enum hrtimer_restart rmex_timer_fn(struct hrtimer *t)
{
	struct rmex_cpu *rc = container_of(t, struct rmex_cpu, hrt);
	struct rmex_record r;
	int ret;

	rmex_fill(&r, rc->timer_seq++, smp_processor_id(), RMEX_TIMER);
	ret = relaymap_write(rmex.ch, RMEX_TYPE, &r, sizeof(r));
	if (!ret)
		rmex_inc(&rc->c.timer);
	else if (ret == -ENOSPC)
		rmex_inc(&rc->c.timer_dropped);
	if (rc->timer_seq >= rmex.run.timer_records) {
		rmex_done();
		return HRTIMER_NORESTART;
	}
	hrtimer_forward_now(t, rmex.run.period);
	return HRTIMER_RESTART;
}

/*
 * hrtimer_setup() replaced hrtimer_init() in 6.13. An out-of-tree module
 * builds for many kernels, so this one version check stays (checkpatch's
 * LINUX_VERSION_CODE warning, on purpose, as in kmod/relaymap_compat.h).
 */
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 13, 0)
static void rmex_timer_init(struct hrtimer *t)
{
	hrtimer_setup(t, rmex_timer_fn, CLOCK_MONOTONIC,
		      HRTIMER_MODE_REL_PINNED_HARD);
}
#else
static void rmex_timer_init(struct hrtimer *t)
{
	hrtimer_init(t, CLOCK_MONOTONIC, HRTIMER_MODE_REL_PINNED_HARD);
	t->function = rmex_timer_fn;
}
#endif

static void rmex_oversize(struct rmex_cpu *rc)
{
	size_t len = relaymap_max_data_size(rmex.ch) + 1;
	void *big = kzalloc(len, GFP_KERNEL);
	u32 i;

	if (!big)
		return;
	for (i = 0; i < rmex.run.oversize; i++) {
		if (relaymap_write(rmex.ch, RMEX_TYPE, big, len) == -EMSGSIZE)
			rmex_inc(&rc->c.rejected);
		if (relaymap_try_write(rmex.ch, RMEX_TYPE, big, len) == -EMSGSIZE)
			rmex_inc(&rc->c.try_rejected);
		if (relaymap_write_wait(rmex.ch, RMEX_TYPE, big, len,
					rmex.run.timeout) == -EMSGSIZE)
			rmex_inc(&rc->c.rejected);
	}
	kfree(big);
}

/*
 * One per CPU, bound to it (kthread_bind()): the CPU in its
 * records stays right across the sleeps of the _wait writers.
 */
static int rmex_thread(void *arg)
{
	struct rmex_cpu *rc = arg;
	const struct rmex_run *run = &rmex.run;
	u64 i, n = max3(run->thread_records, run->printf_records,
			run->try_printf_records);
	u32 cpu = rc->cpu;
	struct rmex_record r;
	int ret;

	/* PINNED: the timer fires on the CPU that starts it, this one. */
	if (run->timer_records)
		hrtimer_start(&rc->hrt, run->period,
			      HRTIMER_MODE_REL_PINNED_HARD);
	if (run->oversize)
		rmex_oversize(rc);

	for (i = 0; i < n && !kthread_should_stop(); i++) {
		if (i < run->thread_records) {
			rmex_fill(&r, i, cpu, RMEX_THREAD);
			ret = relaymap_write_wait(rmex.ch, RMEX_TYPE, &r,
						  sizeof(r), run->timeout);
			if (!ret)
				rmex_inc(&rc->c.thread);
			else if (ret == -ETIMEDOUT)
				rmex_inc(&rc->c.thread_dropped);
			else
				break;	/* -EINTR: kthread_stop() */
		}
		if (i < run->printf_records) {
			ret = relaymap_printf_wait(rmex.ch, run->timeout,
						   RMEX_TEXT_FMT, cpu,
						   RMEX_PRINTF, i);
			if (!ret)
				rmex_inc(&rc->c.printf);
			else if (ret == -ETIMEDOUT)
				rmex_inc(&rc->c.printf_dropped);
			else
				break;
		}
		if (i < run->try_printf_records) {
			ret = relaymap_try_printf(rmex.ch, RMEX_TEXT_FMT, cpu,
						  RMEX_TRY_PRINTF, i);
			if (!ret)
				rmex_inc(&rc->c.try_printf);
			else
				rmex_inc(&rc->c.try_printf_full);
		}
		cond_resched();
	}
	rmex_done();

	/* Stay until rmex_stop_locked() calls kthread_stop(). */
	set_current_state(TASK_INTERRUPTIBLE);
	while (!kthread_should_stop()) {
		schedule();
		set_current_state(TASK_INTERRUPTIBLE);
	}
	__set_current_state(TASK_RUNNING);
	return 0;
}

static void rmex_stop_locked(void)
{
	unsigned int cpu;

	lockdep_assert_held(&rmex.lock);
	if (!rmex.started)
		return;
	for (cpu = 0; cpu < nr_cpu_ids; cpu++) {
		struct rmex_cpu *rc = &rmex.cpus[cpu];

		if (!rc->task)
			continue;
		kthread_stop(rc->task);
		rc->task = NULL;
		/* After the thread: it starts the timer. */
		hrtimer_cancel(&rc->hrt);
	}
	relaymap_writer_unregister(rmex.ch);
	rmex.started = false;
	/* Threads stopped before they ran, timers cancelled: nothing active. */
	atomic_set(&rmex.active, 0);
}

static int rmex_start_locked(void)
{
	struct rmex_run run = {
		.thread_records = thread_records,
		.printf_records = printf_records,
		.try_printf_records = try_printf_records,
		.timer_records = timer_records,
		.period = ns_to_ktime((u64)max_t(uint, timer_period_us, 10) *
				      NSEC_PER_USEC),
		.timeout = msecs_to_jiffies(wait_ms),
		.oversize = oversize,
	};
	unsigned int cpu, n = 0;
	int err = 0;

	lockdep_assert_held(&rmex.lock);
	if (rmex.started) {
		if (atomic_read(&rmex.active))
			return -EBUSY;
		rmex_stop_locked();	/* the last run ended by itself */
	}
	relaymap_writer_register(rmex.ch);
	rmex.run = run;
	rmex.started = true;

	cpus_read_lock();
	for_each_online_cpu(cpu) {
		struct rmex_cpu *rc = &rmex.cpus[cpu];
		struct task_struct *t;

		memset(rc, 0, sizeof(*rc));
		rc->cpu = cpu;
		rmex_timer_init(&rc->hrt);
		/* kthread_create_on_cpu() is not exported on 5.10. */
		t = kthread_create_on_node(rmex_thread, rc, cpu_to_node(cpu),
					   "rmexample/%u", cpu);
		if (IS_ERR(t)) {
			err = PTR_ERR(t);
			break;
		}
		kthread_bind(t, cpu);
		rc->task = t;
		n++;
	}
	cpus_read_unlock();

	/* Each thread, and each timer it starts, ends with rmex_done(). */
	atomic_set(&rmex.active, n * (run.timer_records ? 2 : 1));
	for (cpu = 0; cpu < nr_cpu_ids; cpu++)
		if (rmex.cpus[cpu].task)
			wake_up_process(rmex.cpus[cpu].task);
	if (err) {
		pr_err("cannot start the writer threads: %d\n", err);
		rmex_stop_locked();
		return err;
	}
	pr_info("run: %u CPUs, per CPU %llu thread, %llu printf_wait, %llu try_printf, %llu timer records\n",
		n, run.thread_records, run.printf_records,
		run.try_printf_records, run.timer_records);
	return 0;
}

/* run: 1 starts, 0 stops; reads 1 while writing. Parameter lock held. */
static int rmex_run_set(const char *val, const struct kernel_param *kp)
{
	bool on;
	int err;

	err = kstrtobool(val, &on);
	if (err)
		return err;
	if (!READ_ONCE(rmex.ready))
		return -ENODEV;
	mutex_lock(&rmex.lock);
	if (on)
		err = rmex_start_locked();
	else
		rmex_stop_locked();
	mutex_unlock(&rmex.lock);
	return err;
}

static int rmex_run_get(char *buf, const struct kernel_param *kp)
{
	return sysfs_emit(buf, "%d\n", READ_ONCE(rmex.ready) &&
			  atomic_read(&rmex.active) > 0);
}

static const struct kernel_param_ops rmex_run_ops = {
	.set = rmex_run_set,
	.get = rmex_run_get,
};
module_param_cb(run, &rmex_run_ops, NULL, 0644);
MODULE_PARM_DESC(run, "Write 1 to start a run, 0 to stop it; reads 1 while writing");

static int rmex_counts_line(char *buf, int at, const char *who,
			    const struct rmex_counts *c)
{
	return sysfs_emit_at(buf, at,
			     "%s written %llu thread %llu thread_dropped %llu printf %llu printf_dropped %llu try_printf %llu try_printf_full %llu timer %llu timer_dropped %llu rejected %llu try_rejected %llu\n",
			     who, c->thread + c->printf + c->try_printf + c->timer,
			     c->thread, c->thread_dropped, c->printf,
			     c->printf_dropped, c->try_printf, c->try_printf_full,
			     c->timer, c->timer_dropped, c->rejected,
			     c->try_rejected);
}

/* counts: one line per online CPU (as many as fit in a page), a total. */
static int rmex_counts_get(char *buf, const struct kernel_param *kp)
{
	struct rmex_counts t = { };
	unsigned int cpu;
	char who[24];
	int n;

	if (!READ_ONCE(rmex.ready))
		return -ENODEV;
	n = sysfs_emit(buf, "state %s\n",
		       atomic_read(&rmex.active) > 0 ? "running" : "idle");
	for_each_online_cpu(cpu) {
		const struct rmex_counts *rc = &rmex.cpus[cpu].c;
		struct rmex_counts c = {
			.thread = READ_ONCE(rc->thread),
			.thread_dropped = READ_ONCE(rc->thread_dropped),
			.printf = READ_ONCE(rc->printf),
			.printf_dropped = READ_ONCE(rc->printf_dropped),
			.try_printf = READ_ONCE(rc->try_printf),
			.try_printf_full = READ_ONCE(rc->try_printf_full),
			.timer = READ_ONCE(rc->timer),
			.timer_dropped = READ_ONCE(rc->timer_dropped),
			.rejected = READ_ONCE(rc->rejected),
			.try_rejected = READ_ONCE(rc->try_rejected),
		};

		if (n < PAGE_SIZE - 512) {
			snprintf(who, sizeof(who), "cpu %u", cpu);
			n += rmex_counts_line(buf, n, who, &c);
		}
		t.thread += c.thread;
		t.thread_dropped += c.thread_dropped;
		t.printf += c.printf;
		t.printf_dropped += c.printf_dropped;
		t.try_printf += c.try_printf;
		t.try_printf_full += c.try_printf_full;
		t.timer += c.timer;
		t.timer_dropped += c.timer_dropped;
		t.rejected += c.rejected;
		t.try_rejected += c.try_rejected;
	}
	return n + rmex_counts_line(buf, n, "total", &t);
}

static const struct kernel_param_ops rmex_counts_ops = {
	.get = rmex_counts_get,
};
module_param_cb(counts, &rmex_counts_ops, NULL, 0444);
MODULE_PARM_DESC(counts, "Read-only: records written, dropped and refused per CPU and in total");

/* The flush and drain_wait() a driver does before its destroy. */
static int rmex_flush_and_drain(unsigned int ms, u64 *took_ms)
{
	u64 t0 = ktime_get_ns();
	int ret;

	relaymap_flush(rmex.ch, RELAYMAP_ALL_CPUS);
	ret = relaymap_chan_drain_wait(rmex.ch, msecs_to_jiffies(ms));
	*took_ms = div_u64(ktime_get_ns() - t0, NSEC_PER_MSEC);
	return ret;
}

/*
 * drain: write MS to flush and wait up to MS ms for the consumer to drain
 * (a signal to the writing process ends the wait: -ERESTARTSYS); read the
 * result and how long it took.
 */
static int rmex_drain_set(const char *val, const struct kernel_param *kp)
{
	unsigned int ms;
	u64 took;
	int err;

	err = kstrtouint(val, 0, &ms);
	if (err)
		return err;
	if (!READ_ONCE(rmex.ready))
		return -ENODEV;
	err = rmex_flush_and_drain(ms, &took);
	WRITE_ONCE(rmex.drain_result, err);
	WRITE_ONCE(rmex.drain_ms, took);
	pr_info("drain_wait(%u ms): %d after %llu ms\n", ms, err, took);
	return 0;
}

static int rmex_drain_get(char *buf, const struct kernel_param *kp)
{
	return sysfs_emit(buf, "result %d ms %llu\n", READ_ONCE(rmex.drain_result),
			  READ_ONCE(rmex.drain_ms));
}

static const struct kernel_param_ops rmex_drain_ops = {
	.set = rmex_drain_set,
	.get = rmex_drain_get,
};
module_param_cb(drain, &rmex_drain_ops, NULL, 0644);
MODULE_PARM_DESC(drain, "Write MS: flush, then wait up to MS ms for the consumer to drain; reads the last result");

static int __init rmex_init(void)
{
	const struct relaymap_chan_config cfg = {
		.name = channel,
		.subbuf_size = subbuf_size,
		.n_subbufs = n_subbufs,
	};

	mutex_init(&rmex.lock);
	rmex.cpus = kcalloc(nr_cpu_ids, sizeof(*rmex.cpus), GFP_KERNEL);
	if (!rmex.cpus)
		return -ENOMEM;
	rmex.ch = relaymap_chan_create(&cfg);
	if (IS_ERR(rmex.ch)) {
		int err = PTR_ERR(rmex.ch);

		pr_err("cannot create channel %s: %d\n", channel, err);
		kfree(rmex.cpus);
		return err;
	}
	/* Parameter writes act from now on (they are in sysfs already). */
	kernel_param_lock(THIS_MODULE);
	WRITE_ONCE(rmex.ready, true);
	kernel_param_unlock(THIS_MODULE);
	pr_info("channel %s: max data %zu bytes per record\n", channel,
		relaymap_max_data_size(rmex.ch));
	return 0;
}

static void __exit rmex_exit(void)
{
	int ret = 0;
	u64 took = 0;

	/* No parameter write in flight, none after this. */
	kernel_param_lock(THIS_MODULE);
	WRITE_ONCE(rmex.ready, false);
	kernel_param_unlock(THIS_MODULE);

	mutex_lock(&rmex.lock);
	rmex_stop_locked();
	mutex_unlock(&rmex.lock);
	/* Writers stopped: flush, give the consumer time, destroy. */
	if (drain_ms_at_exit) {
		ret = rmex_flush_and_drain(drain_ms_at_exit, &took);
		pr_info("unload: drain_wait(%u ms): %d after %llu ms\n",
			drain_ms_at_exit, ret, took);
	}
	relaymap_chan_destroy(rmex.ch);
	kfree(rmex.cpus);
}

module_init(rmex_init);
module_exit(rmex_exit);

MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("relaymap example driver: its own record format from kthreads, hrtimers and printf");

// SPDX-License-Identifier: GPL-2.0
/*
 * rmbench_writer: the relaymap producer of tests/vm/bench.
 *
 * One kthread bound to each CPU of the mask `cpus` calls relaymap_write()
 * (drop mode: a full buffer drops the record and the module counts it) in
 * a loop for duration_ms, copying `payload` bytes from one static buffer:
 * the same work per record as the BPF comparator's bpf_ringbuf_output()
 * of a static buffer. relaymap_loadgen.ko writes from a thread on every
 * online CPU and computes a checksum per record; this one has a CPU mask
 * (1 producer next to a reader on another CPU) and no per-byte work.
 *
 *   run       write 1: start (EBUSY while running); 0: stop; reads 1 while
 *             any thread runs
 *   stats     read: "written W dropped D"
 */
#include <linux/atomic.h>
#include <linux/cpumask.h>
#include <linux/kthread.h>
#include <linux/ktime.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/sched.h>
#include <linux/sched/task.h>
#include <relaymap/relaymap.h>

#define RB_MAX_CPUS 64
#define RB_MAX_PAYLOAD 4096

static char channel[RELAYMAP_NAME_MAX] = "bench";
module_param_string(channel, channel, sizeof(channel), 0644);
MODULE_PARM_DESC(channel, "relaymap channel to write into (default: bench)");

static uint payload = 64;
module_param(payload, uint, 0644);
MODULE_PARM_DESC(payload, "Data bytes per record, after the 16-byte record header (default: 64)");

static ulong cpus = 2;
module_param(cpus, ulong, 0644);
MODULE_PARM_DESC(cpus, "Mask of the CPUs that write (default: 0x2, CPU 1)");

static uint duration_ms = 1000;
module_param(duration_ms, uint, 0644);
MODULE_PARM_DESC(duration_ms, "Each thread stops after this many ms (default: 1000)");

struct rb_cpu {
	struct task_struct *task;
	u64 written;
	u64 dropped;
	unsigned int cpu;
};

static struct rb_cpu rb_cpus[RB_MAX_CPUS];
static u8 rb_data[RB_MAX_PAYLOAD];
static DEFINE_MUTEX(rb_lock);
static struct relaymap_chan *rb_chan;
static atomic_t rb_active = ATOMIC_INIT(0);
static u64 rb_deadline_ns;
static uint rb_payload;

static int rb_thread(void *arg)
{
	struct rb_cpu *c = arg;
	u64 written = 0, dropped = 0;
	int i;

	while (!kthread_should_stop() && ktime_get_ns() < rb_deadline_ns) {
		for (i = 0; i < 64; i++) {
			if (relaymap_write(rb_chan, RELAYMAP_REC_USER, rb_data, rb_payload))
				dropped++;
			else
				written++;
		}
		WRITE_ONCE(c->written, written);
		WRITE_ONCE(c->dropped, dropped);
		cond_resched();
	}
	atomic_dec(&rb_active);
	return 0;
}

/* Stop and reap every thread (rb_lock held). */
static void rb_stop_locked(void)
{
	int i;

	for (i = 0; i < RB_MAX_CPUS; i++) {
		if (!rb_cpus[i].task)
			continue;
		kthread_stop(rb_cpus[i].task);
		put_task_struct(rb_cpus[i].task);
		rb_cpus[i].task = NULL;
	}
	if (rb_chan) {
		relaymap_writer_unregister(rb_chan);
		relaymap_chan_put(rb_chan);
		rb_chan = NULL;
	}
}

static int rb_start_locked(void)
{
	unsigned int cpu;
	int ret;

	if (atomic_read(&rb_active))
		return -EBUSY;
	rb_stop_locked();
	if (payload > RB_MAX_PAYLOAD || !cpus)
		return -EINVAL;
	rb_chan = relaymap_chan_get(channel);
	if (IS_ERR(rb_chan)) {
		ret = PTR_ERR(rb_chan);
		rb_chan = NULL;
		return ret;
	}
	ret = relaymap_writer_register(rb_chan);
	if (ret) {
		relaymap_chan_put(rb_chan);
		rb_chan = NULL;
		return ret;
	}
	rb_payload = payload;
	rb_deadline_ns = ktime_get_ns() + (u64)duration_ms * NSEC_PER_MSEC;
	for (cpu = 0; cpu < RB_MAX_CPUS; cpu++) {
		struct rb_cpu *c = &rb_cpus[cpu];
		struct task_struct *t;

		c->written = 0;
		c->dropped = 0;
		if (!(cpus & BIT(cpu)) || cpu >= nr_cpu_ids || !cpu_online(cpu))
			continue;
		c->cpu = cpu;
		t = kthread_create_on_node(rb_thread, c, cpu_to_node(cpu),
					   "rmbench/%u", cpu);
		if (IS_ERR(t)) {
			rb_stop_locked();
			return PTR_ERR(t);
		}
		kthread_bind(t, cpu);
		get_task_struct(t);
		c->task = t;
		atomic_inc(&rb_active);
		wake_up_process(t);
	}
	return 0;
}

static int rb_run_set(const char *val, const struct kernel_param *kp)
{
	bool on;
	int ret = kstrtobool(val, &on);

	if (ret)
		return ret;
	mutex_lock(&rb_lock);
	if (on)
		ret = rb_start_locked();
	else
		rb_stop_locked();
	mutex_unlock(&rb_lock);
	return ret;
}

static int rb_run_get(char *buf, const struct kernel_param *kp)
{
	return sysfs_emit(buf, "%d\n", atomic_read(&rb_active) > 0);
}

static const struct kernel_param_ops rb_run_ops = {
	.set = rb_run_set,
	.get = rb_run_get,
};
module_param_cb(run, &rb_run_ops, NULL, 0644);
MODULE_PARM_DESC(run, "Write 1 to start, 0 to stop; reads 1 while a thread runs");

static int rb_stats_get(char *buf, const struct kernel_param *kp)
{
	u64 written = 0, dropped = 0;
	int i;

	for (i = 0; i < RB_MAX_CPUS; i++) {
		written += READ_ONCE(rb_cpus[i].written);
		dropped += READ_ONCE(rb_cpus[i].dropped);
	}
	return sysfs_emit(buf, "written %llu dropped %llu\n", written, dropped);
}

static const struct kernel_param_ops rb_stats_ops = {
	.get = rb_stats_get,
};
module_param_cb(stats, &rb_stats_ops, NULL, 0444);
MODULE_PARM_DESC(stats, "Read-only: written W dropped D");

static int __init rb_init(void)
{
	int i;

	for (i = 0; i < RB_MAX_PAYLOAD; i++)
		rb_data[i] = (u8)(i * 7 + 1);
	return 0;
}

static void __exit rb_exit(void)
{
	mutex_lock(&rb_lock);
	rb_stop_locked();
	mutex_unlock(&rb_lock);
}

module_init(rb_init);
module_exit(rb_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("relaymap bench producer: relaymap_write() from kthreads on a CPU mask");

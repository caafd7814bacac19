// SPDX-License-Identifier: GPL-2.0
/*
 * The channel ioctls of relaymap_abi.h: on a channel fd from OPEN_CHANNEL
 * and on the legacy debugfs control file. FLUSH and RESET.
 *
 * Versioning (the openat2 rule): the kernel dispatches on _IOC_NR() only
 * and reads the struct's own size field. Below the first version's size
 * is EINVAL; a larger struct must have a zero tail (E2BIG otherwise,
 * copy_struct_from_user()); we write back min(size, our sizeof) bytes
 * and set size to that.
 *
 * Locking: the observers (GET_INFO, GET_CURSOR(S), GET_STATS) and
 * PUT_CONSUMED take no channel-wide lock: they read per-CPU state, the
 * published count with acquire. FLUSH, RESET and OPEN_CONSUMER take the
 * channel's mutex (they exclude each other and the writer count).
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/cpu.h>
#include <linux/cpumask.h>
#include <linux/fs.h>
#include <linux/irqflags.h>
#include <linux/rcupdate.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/uaccess.h>
#include <linux/workqueue.h>

#include "relaymap_compat.h"
#include "relaymap_internal.h"

/*
 * Copy in a versioned struct: its size field first (@usize), then
 * copy_struct_from_user() semantics into @kbuf of @ksize bytes.
 */
long relaymap_copy_in(void *kbuf, size_t ksize, size_t ver0,
		      void __user *arg, u32 *usize)
{
	u32 size;
	int err;

	if (get_user(size, (u32 __user *)arg))
		return -EFAULT;
	if (size < ver0)
		return -EINVAL;
	/* A page is far beyond any version; do not scan more for zeroes. */
	if (size > PAGE_SIZE)
		return -E2BIG;
	err = copy_struct_from_user(kbuf, ksize, arg, size);
	if (err)
		return err;
	*usize = size;
	return 0;
}

/* Copy out min(usize, ksize) bytes; the size field reports that count. */
long relaymap_copy_out(void __user *arg, void *kbuf, size_t ksize, u32 usize)
{
	u32 n = min_t(size_t, usize, ksize);

	*(u32 *)kbuf = n;
	if (copy_to_user(arg, kbuf, n))
		return -EFAULT;
	return 0;
}

void relaymap_fill_info(struct relaymap_chan *ch, struct relaymap_info *info)
{
	unsigned int cpu;

	memset(info, 0, sizeof(*info));
	info->size = sizeof(*info);
	info->abi_version = RELAYMAP_ABI_VERSION;
	info->header_size = RELAYMAP_HDR_SIZE;
	info->flags = ch->overwrite ? RELAYMAP_INFO_OVERWRITE : 0;
	if (relaymap_destroyed(ch))
		info->flags |= RELAYMAP_INFO_DESTROYED;
	info->subbuf_size = ch->subbuf_size;
	info->n_subbufs = ch->n_subbufs;
	info->alloc_size = relaymap_rchan_alloc_size(ch->rchan);
	info->nr_cpu_ids = nr_cpu_ids;
	info->max_record_size = ch->subbuf_size - RELAYMAP_HDR_SIZE;
	info->max_data_size = relaymap_max_data_size(ch);
	info->page_size = PAGE_SIZE;
	/* RESET changes the uuid under the lock. */
	mutex_lock(&ch->lock);
	memcpy(info->uuid, &ch->uuid, sizeof(info->uuid));
	mutex_unlock(&ch->lock);
	strscpy(info->name, ch->name, sizeof(info->name));
	for_each_possible_cpu(cpu) {
		if (cpu >= RELAYMAP_MAX_CPUS)
			break;
		if (relaymap_cpu_buf(ch, cpu))
			info->cpu_mask[cpu / 64] |= 1ULL << (cpu % 64);
	}
}

static long relaymap_ioc_get_info(struct relaymap_chan *ch, void __user *arg)
{
	struct relaymap_info info;
	u32 usize;
	long ret;

	ret = relaymap_copy_in(&info, sizeof(info), RELAYMAP_INFO_SIZE_VER0,
			       arg, &usize);
	if (ret)
		return ret;
	relaymap_fill_info(ch, &info);
	return relaymap_copy_out(arg, &info, sizeof(info), usize);
}

/*
 * The cursor of @cpu, which has a buffer. Lockless: per-CPU counters,
 * the published count with acquire, the holder under RCU.
 */
static void relaymap_fill_cursor(struct relaymap_chan *ch, unsigned int cpu,
				 struct rchan_buf *buf,
				 struct relaymap_cursor *cur)
{
	struct relaymap_cpu *pc = relaymap_pc(ch, cpu);
	u64 produced, consumed;

	memset(cur, 0, sizeof(*cur));
	cur->size = sizeof(*cur);
	cur->cpu = cpu;
	/* Pairs with smp_store_release() in relaymap_close_subbuf(). */
	produced = smp_load_acquire(&pc->published);
	/*
	 * relay's read() moves its consumed count on its own and can pass
	 * ours for a moment (relay counts a sub-buffer before we close it):
	 * never report more consumed than produced.
	 */
	consumed = min_t(u64, relaymap_buf_consumed(buf), produced);
	cur->produced = produced;
	cur->consumed = consumed;
	cur->records_dropped = READ_ONCE(pc->records_dropped);
	cur->subbufs_lapped = READ_ONCE(pc->subbufs_lapped);
	cur->records_rejected = READ_ONCE(pc->records_rejected);
	if (relaymap_destroyed(ch))
		cur->flags |= RELAYMAP_CURSOR_DESTROYED;
	relaymap_holder(pc, cur);
}

/* GET_CURSOR of @cpu (a consumer fd passes its own, ignoring cur.cpu). */
long relaymap_ioc_get_cursor(struct relaymap_chan *ch, void __user *arg,
			     int own_cpu)
{
	struct relaymap_cursor cur;
	struct rchan_buf *buf;
	u32 usize;
	long ret;
	int cpu;

	ret = relaymap_copy_in(&cur, sizeof(cur), RELAYMAP_CURSOR_SIZE_VER0,
			       arg, &usize);
	if (ret)
		return ret;
	cpu = own_cpu >= 0 ? own_cpu : (cur.cpu < nr_cpu_ids ? cur.cpu : -1);
	buf = relaymap_cpu_buf(ch, cpu);
	if (!buf)
		return -EINVAL;
	relaymap_fill_cursor(ch, cpu, buf, &cur);
	return relaymap_copy_out(arg, &cur, sizeof(cur), usize);
}

static long relaymap_ioc_get_cursors(struct relaymap_chan *ch,
				     void __user *arg)
{
	struct relaymap_cursors req;
	struct relaymap_cursor cur;
	u8 __user *out;
	u32 usize, i, n, esize, wsize;
	long ret;

	ret = relaymap_copy_in(&req, sizeof(req), RELAYMAP_CURSORS_SIZE_VER0,
			       arg, &usize);
	if (ret)
		return ret;
	esize = req.cursor_size;
	if (esize < RELAYMAP_CURSOR_SIZE_VER0 || esize > PAGE_SIZE ||
	    esize % sizeof(u32))
		return -EINVAL;
	wsize = min_t(u32, esize, sizeof(cur));
	n = 0;
	if (req.first_cpu < nr_cpu_ids)
		n = min_t(u32, req.nr, nr_cpu_ids - req.first_cpu);
	out = u64_to_user_ptr(req.cursors);

	for (i = 0; i < n; i++) {
		unsigned int cpu = req.first_cpu + i;
		struct rchan_buf *buf = relaymap_cpu_buf(ch, cpu);

		if (buf) {
			relaymap_fill_cursor(ch, cpu, buf, &cur);
		} else {
			memset(&cur, 0, sizeof(cur));
			cur.cpu = cpu;
			cur.flags = RELAYMAP_CURSOR_NO_BUFFER;
			if (relaymap_destroyed(ch))
				cur.flags |= RELAYMAP_CURSOR_DESTROYED;
		}
		cur.size = wsize;
		if (copy_to_user(out, &cur, wsize))
			return -EFAULT;
		/* A newer caller's fields we do not know read as zero. */
		if (esize > wsize && clear_user(out + wsize, esize - wsize))
			return -EFAULT;
		out += esize;
	}
	req.nr = n;
	return relaymap_copy_out(arg, &req, sizeof(req), usize);
}

/* Close the current sub-buffer of @buf; caller is its CPU, irqs off. */
static void relaymap_flush_buf(struct relaymap_cpu *pc, struct rchan_buf *buf)
{
	/* Nothing written yet, or stuck full with no open sub-buffer. */
	if (relaymap_buf_offset(buf) <= RELAYMAP_HDR_SIZE ||
	    relaymap_buf_stuck(buf) || relaymap_buf_finalized(buf))
		return;
	pc->in_flush = true;
	relay_switch_subbuf(buf, 0);
	pc->in_flush = false;
	relaymap_add(&pc->flushes, 1);
}

static void relaymap_flush_here(struct relaymap_cpu *pc)
{
	struct rchan_buf *buf = relaymap_cpu_buf(pc->ch, pc->cpu);
	unsigned long flags;

	if (!buf)
		return;
	local_irq_save(flags);
	relaymap_flush_buf(pc, buf);
	local_irq_restore(flags);
}

/* The flush work, queued on the CPU that owns the buffer. */
void relaymap_flush_workfn(struct work_struct *work)
{
	struct relaymap_cpu *pc = container_of(work, struct relaymap_cpu,
					       flush_work);

	/* Queued under cpus_read_lock() on an online CPU: it runs there. */
	WARN_ON_ONCE(raw_smp_processor_id() != pc->cpu);
	relaymap_flush_here(pc);
}

/*
 * Close the current sub-buffer of one CPU or of all of them.
 *
 * The switch must run on the CPU that owns the buffer: writers only
 * disable interrupts (the module's writers, relay_write()) or only
 * preemption (__relay_write() and relay_reserve() through
 * relaymap_chan_relay()) on their own CPU. An IPI
 * (smp_call_function_single(), as LTTng does) would interrupt a writer of
 * the second kind in the middle of a record. So each CPU gets a work item
 * queued on it (queue_work_on()): it runs in process context on that
 * CPU, where it cannot preempt a writer that disabled preemption, and
 * takes interrupts off for the switch itself. All CPUs' items are queued
 * first and then waited for, so they run in parallel. A CPU that is
 * offline has no writers and is switched from here. cpus_read_lock()
 * keeps the online set stable until every item ran.
 *
 * Each CPU has one work item per channel; a FLUSH that finds it still
 * pending from a concurrent FLUSH (there is none: callers hold ch->lock)
 * would wait for that run, which also happens after the call began.
 */
int relaymap_flush_locked(struct relaymap_chan *ch, int cpu)
{
	unsigned int c;

	lockdep_assert_held(&ch->lock);
	if (cpu != RELAYMAP_ALL_CPUS && !relaymap_cpu_buf(ch, cpu))
		return -EINVAL;

	cpus_read_lock();
	for_each_possible_cpu(c) {
		struct relaymap_cpu *pc = relaymap_pc(ch, c);

		if (cpu != RELAYMAP_ALL_CPUS && c != cpu)
			continue;
		if (!relaymap_cpu_buf(ch, c))
			continue;
		if (cpu_online(c))
			queue_work_on(c, system_highpri_wq, &pc->flush_work);
		else
			relaymap_flush_here(pc);
	}
	for_each_online_cpu(c) {
		if (cpu != RELAYMAP_ALL_CPUS && c != cpu)
			continue;
		flush_work(&relaymap_pc(ch, c)->flush_work);
	}
	cpus_read_unlock();
	return 0;
}

/**
 * relaymap_flush() - close the current sub-buffer so a reader sees it
 * @ch: the channel
 * @cpu: a CPU, or RELAYMAP_ALL_CPUS
 *
 * Runs the switch on the CPU that owns each buffer (all of them in
 * parallel), so it is safe while writers run. A sub-buffer with no
 * payload is left open. Process context.
 *
 * Return: 0, or -EINVAL if @cpu has no buffer.
 */
int relaymap_flush(struct relaymap_chan *ch, int cpu)
{
	int ret;

	mutex_lock(&ch->lock);
	ret = relaymap_flush_locked(ch, cpu);
	mutex_unlock(&ch->lock);
	return ret;
}
EXPORT_SYMBOL_GPL(relaymap_flush);

static long relaymap_ioc_flush(struct relaymap_chan *ch, void __user *arg)
{
	struct relaymap_flush fl;
	u32 usize;
	long ret;

	ret = relaymap_copy_in(&fl, sizeof(fl), RELAYMAP_FLUSH_SIZE_VER0, arg,
			       &usize);
	if (ret)
		return ret;
	return relaymap_flush(ch, fl.cpu);
}

static long relaymap_ioc_reset(struct relaymap_chan *ch)
{
	long ret = 0;

	mutex_lock(&ch->lock);
	/* Consumers are claimed under this lock: none can appear now. */
	if (ch->writers || relaymap_any_consumer(ch)) {
		ret = -EBUSY;
		goto out;
	}
	/* A new instance: the first sub-buffers below get the new uuid. */
	uuid_gen(&ch->uuid);
	/* subbuf_start(prev == NULL) zeroes every CPU's counters. */
	relay_reset(ch->rchan);
	WRITE_ONCE(ch->resets, ch->resets + 1);
	/* Every buffer is empty now (none of its writers is registered). */
	relaymap_wake_all(ch);
out:
	mutex_unlock(&ch->lock);
	return ret;
}

static void relaymap_add_stats(struct relaymap_chan *ch, unsigned int cpu,
			       struct relaymap_stats *st)
{
	struct relaymap_cpu *pc = relaymap_pc(ch, cpu);
	struct rchan_buf *buf = relaymap_cpu_buf(ch, cpu);
	u64 produced;

	if (!buf)
		return;
	st->records_written += READ_ONCE(pc->records_written);
	st->bytes_written += READ_ONCE(pc->bytes_written);
	st->records_dropped += READ_ONCE(pc->records_dropped);
	st->records_rejected += READ_ONCE(pc->records_rejected);
	/* Pairs with smp_store_release() in relaymap_close_subbuf(). */
	produced = smp_load_acquire(&pc->published);
	st->subbufs_produced += produced;
	st->subbufs_consumed += min_t(u64, relaymap_buf_consumed(buf),
				      produced);
	st->subbufs_lapped += READ_ONCE(pc->subbufs_lapped);
	st->flushes += READ_ONCE(pc->flushes);
}

static long relaymap_ioc_get_stats(struct relaymap_chan *ch, void __user *arg)
{
	struct relaymap_stats st;
	unsigned int c;
	u32 usize;
	s32 cpu;
	long ret;

	ret = relaymap_copy_in(&st, sizeof(st), RELAYMAP_STATS_SIZE_VER0, arg,
			       &usize);
	if (ret)
		return ret;
	cpu = st.cpu;
	if (cpu != RELAYMAP_ALL_CPUS && !relaymap_cpu_buf(ch, cpu))
		return -EINVAL;

	memset(&st, 0, sizeof(st));
	st.cpu = cpu;
	if (cpu == RELAYMAP_ALL_CPUS) {
		for_each_possible_cpu(c)
			relaymap_add_stats(ch, c, &st);
	} else {
		relaymap_add_stats(ch, cpu, &st);
	}
	st.resets = READ_ONCE(ch->resets);
	return relaymap_copy_out(arg, &st, sizeof(st), usize);
}

/*
 * The channel ioctls, shared by channel fds and the debugfs control file.
 * The caller holds a channel reference.
 */
long relaymap_chan_ioctl(struct relaymap_chan *ch, unsigned int cmd,
			 void __user *arg)
{
	if (_IOC_TYPE(cmd) != RELAYMAP_IOC_MAGIC)
		return -ENOTTY;
	switch (_IOC_NR(cmd)) {
	case _IOC_NR(RELAYMAP_IOC_GET_INFO):
		return relaymap_ioc_get_info(ch, arg);
	case _IOC_NR(RELAYMAP_IOC_GET_CURSOR):
		return relaymap_ioc_get_cursor(ch, arg, -1);
	case _IOC_NR(RELAYMAP_IOC_GET_CURSORS):
		return relaymap_ioc_get_cursors(ch, arg);
	case _IOC_NR(RELAYMAP_IOC_PUT_CONSUMED):
		/* Only the consumer fd that holds the CPU hands back. */
		return -EPERM;
	case _IOC_NR(RELAYMAP_IOC_FLUSH):
		return relaymap_ioc_flush(ch, arg);
	case _IOC_NR(RELAYMAP_IOC_RESET):
		return relaymap_ioc_reset(ch);
	case _IOC_NR(RELAYMAP_IOC_GET_STATS):
		return relaymap_ioc_get_stats(ch, arg);
	case _IOC_NR(RELAYMAP_IOC_OPEN_CONSUMER):
		return relaymap_ioc_open_consumer(ch, arg);
	default:
		return -ENOTTY;
	}
}

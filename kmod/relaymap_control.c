// SPDX-License-Identifier: GPL-2.0
/*
 * The control file: ioctls of relaymap_abi.h.
 *
 * Every ioctl struct starts with its size as the caller compiled it. We
 * refuse sizes below the first version of the struct, read and write
 * min(size, sizeof) bytes and zero what we write before filling it.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/cpu.h>
#include <linux/cpumask.h>
#include <linux/fs.h>
#include <linux/irqflags.h>
#include <linux/string.h>
#include <linux/uaccess.h>
#include <linux/workqueue.h>

#include "relaymap_internal.h"

/* Sizes of the first version of each ioctl struct. */
#define RELAYMAP_INFO_SIZE_V1		sizeof(struct relaymap_info)
#define RELAYMAP_CURSOR_SIZE_V1		sizeof(struct relaymap_cursor)
#define RELAYMAP_CONSUME_SIZE_V1	sizeof(struct relaymap_consume)
#define RELAYMAP_FLUSH_SIZE_V1		sizeof(struct relaymap_flush)
#define RELAYMAP_STATS_SIZE_V1		sizeof(struct relaymap_stats)

/* Copy in min(size, ksize) bytes, zero the rest; returns the size given. */
static long relaymap_copy_in(void *kbuf, size_t ksize, size_t min_size,
			     void __user *arg, u32 *usize)
{
	u32 size;

	if (get_user(size, (u32 __user *)arg))
		return -EFAULT;
	if (size < min_size)
		return -EINVAL;
	memset(kbuf, 0, ksize);
	if (copy_from_user(kbuf, arg, min_t(size_t, size, ksize)))
		return -EFAULT;
	*usize = size;
	return 0;
}

/* Copy out min(size, ksize) bytes; the size field reports that count. */
static long relaymap_copy_out(void __user *arg, void *kbuf, size_t ksize,
			      u32 usize)
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
	info->subbuf_size = ch->subbuf_size;
	info->n_subbufs = ch->n_subbufs;
	info->alloc_size = ch->rchan->alloc_size;
	info->nr_cpu_ids = nr_cpu_ids;
	info->max_record_size = ch->subbuf_size - RELAYMAP_HDR_SIZE;
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

	ret = relaymap_copy_in(&info, sizeof(info), RELAYMAP_INFO_SIZE_V1, arg,
			       &usize);
	if (ret)
		return ret;
	relaymap_fill_info(ch, &info);
	return relaymap_copy_out(arg, &info, sizeof(info), usize);
}

static long relaymap_ioc_get_cursor(struct relaymap_chan *ch, void __user *arg)
{
	struct relaymap_cursor cur;
	struct relaymap_cpu *pc;
	struct rchan_buf *buf;
	u32 usize, cpu;
	long ret;

	ret = relaymap_copy_in(&cur, sizeof(cur), RELAYMAP_CURSOR_SIZE_V1, arg,
			       &usize);
	if (ret)
		return ret;
	cpu = cur.cpu;
	buf = relaymap_cpu_buf(ch, cpu < nr_cpu_ids ? cpu : -1);
	if (!buf)
		return -EINVAL;
	pc = per_cpu_ptr(ch->pcpu, cpu);

	memset(&cur, 0, sizeof(cur));
	cur.cpu = cpu;
	/* Pairs with smp_store_release() in relaymap_close_subbuf(). */
	cur.produced = smp_load_acquire(&pc->published);
	cur.consumed = READ_ONCE(buf->subbufs_consumed);
	cur.records_dropped = READ_ONCE(pc->records_dropped);
	cur.subbufs_lapped = READ_ONCE(pc->subbufs_lapped);
	return relaymap_copy_out(arg, &cur, sizeof(cur), usize);
}

static long relaymap_ioc_put_consumed(struct relaymap_chan *ch,
				      void __user *arg)
{
	struct relaymap_consume con;
	struct relaymap_cpu *pc;
	struct rchan_buf *buf;
	u64 consumed, count;
	u32 usize;
	long ret;

	ret = relaymap_copy_in(&con, sizeof(con), RELAYMAP_CONSUME_SIZE_V1, arg,
			       &usize);
	if (ret)
		return ret;
	buf = relaymap_cpu_buf(ch, con.cpu < nr_cpu_ids ? con.cpu : -1);
	if (!buf || !con.count)
		return -EINVAL;
	pc = per_cpu_ptr(ch->pcpu, con.cpu);
	consumed = READ_ONCE(buf->subbufs_consumed);
	/* Pairs with smp_store_release() in relaymap_close_subbuf(). */
	if (con.count > smp_load_acquire(&pc->published) - consumed)
		return -EINVAL;

	/* relay ignores a count larger than n_subbufs: hand back in steps. */
	for (count = con.count; count; ) {
		size_t n = min_t(u64, count, ch->n_subbufs);

		relay_subbufs_consumed(ch->rchan, con.cpu, n);
		count -= n;
	}
	return 0;
}

struct relaymap_flush_work {
	struct relaymap_chan *ch;
	struct rchan_buf *buf;
};

/* Close the current sub-buffer of @buf; caller is its CPU, irqs off. */
static void relaymap_flush_buf(struct relaymap_chan *ch, struct rchan_buf *buf)
{
	struct relaymap_cpu *pc = per_cpu_ptr(ch->pcpu, buf->cpu);

	/* Nothing written yet, or stuck full with no open sub-buffer. */
	if (buf->offset <= RELAYMAP_HDR_SIZE ||
	    buf->offset == ch->subbuf_size + 1 || buf->finalized)
		return;
	pc->in_flush = true;
	relay_switch_subbuf(buf, 0);
	pc->in_flush = false;
	relaymap_add(&pc->flushes, 1);
}

static long relaymap_flush_fn(void *arg)
{
	struct relaymap_flush_work *fw = arg;
	unsigned long flags;

	local_irq_save(flags);
	relaymap_flush_buf(fw->ch, fw->buf);
	local_irq_restore(flags);
	return 0;
}

/*
 * Writers only disable interrupts or preemption on their own CPU, so the
 * switch must run on the CPU that owns the buffer: work_on_cpu() gives us
 * process context there, and a writer cannot be interrupted by it.
 * A CPU that is offline has no writers and is switched from here.
 * Called under cpus_read_lock().
 */
static void relaymap_flush_cpu(struct relaymap_chan *ch, unsigned int cpu)
{
	struct relaymap_flush_work fw = { .ch = ch };

	fw.buf = relaymap_cpu_buf(ch, cpu);
	if (!fw.buf)
		return;
	if (cpu_online(cpu))
		work_on_cpu(cpu, relaymap_flush_fn, &fw);
	else
		relaymap_flush_fn(&fw);
}

int relaymap_flush_locked(struct relaymap_chan *ch, int cpu)
{
	unsigned int c;

	lockdep_assert_held(&ch->lock);
	if (cpu != RELAYMAP_ALL_CPUS && !relaymap_cpu_buf(ch, cpu))
		return -EINVAL;

	cpus_read_lock();
	if (cpu == RELAYMAP_ALL_CPUS) {
		for_each_possible_cpu(c)
			relaymap_flush_cpu(ch, c);
	} else {
		relaymap_flush_cpu(ch, cpu);
	}
	cpus_read_unlock();
	return 0;
}

/**
 * relaymap_flush() - close the current sub-buffer so a reader sees it
 * @ch: the channel
 * @cpu: a CPU, or RELAYMAP_ALL_CPUS
 *
 * Runs the switch on the CPU that owns each buffer, so it is safe while
 * writers run. A sub-buffer with no payload is left open. Process context.
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

	ret = relaymap_copy_in(&fl, sizeof(fl), RELAYMAP_FLUSH_SIZE_V1, arg,
			       &usize);
	if (ret)
		return ret;
	return relaymap_flush_locked(ch, fl.cpu);
}

static long relaymap_ioc_reset(struct relaymap_chan *ch)
{
	if (ch->writers)
		return -EBUSY;
	/* subbuf_start(prev == NULL) zeroes every CPU's state. */
	relay_reset(ch->rchan);
	ch->resets++;
	return 0;
}

static void relaymap_add_stats(struct relaymap_chan *ch, unsigned int cpu,
			       struct relaymap_stats *st)
{
	struct relaymap_cpu *pc = per_cpu_ptr(ch->pcpu, cpu);
	struct rchan_buf *buf = relaymap_cpu_buf(ch, cpu);

	if (!buf)
		return;
	st->records_written += READ_ONCE(pc->records_written);
	st->bytes_written += READ_ONCE(pc->bytes_written);
	st->records_dropped += READ_ONCE(pc->records_dropped);
	/* Pairs with smp_store_release() in relaymap_close_subbuf(). */
	st->subbufs_produced += smp_load_acquire(&pc->published);
	st->subbufs_consumed += READ_ONCE(buf->subbufs_consumed);
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

	ret = relaymap_copy_in(&st, sizeof(st), RELAYMAP_STATS_SIZE_V1, arg,
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
	st.resets = ch->resets;
	return relaymap_copy_out(arg, &st, sizeof(st), usize);
}

static long relaymap_control_ioctl(struct file *file, unsigned int cmd,
				   unsigned long arg)
{
	struct relaymap_chan *ch = file->private_data;
	void __user *uarg = (void __user *)arg;
	long ret;

	mutex_lock(&ch->lock);
	switch (cmd) {
	case RELAYMAP_IOC_GET_INFO:
		ret = relaymap_ioc_get_info(ch, uarg);
		break;
	case RELAYMAP_IOC_GET_CURSOR:
		ret = relaymap_ioc_get_cursor(ch, uarg);
		break;
	case RELAYMAP_IOC_PUT_CONSUMED:
		ret = relaymap_ioc_put_consumed(ch, uarg);
		break;
	case RELAYMAP_IOC_FLUSH:
		ret = relaymap_ioc_flush(ch, uarg);
		break;
	case RELAYMAP_IOC_RESET:
		ret = relaymap_ioc_reset(ch);
		break;
	case RELAYMAP_IOC_GET_STATS:
		ret = relaymap_ioc_get_stats(ch, uarg);
		break;
	default:
		ret = -ENOTTY;
		break;
	}
	mutex_unlock(&ch->lock);
	return ret;
}

/*
 * Created with debugfs_create_file(): the full proxy makes
 * debugfs_remove() wait for ioctls in flight and fail later ones, and it
 * pins this module while the file is open.
 */
const struct file_operations relaymap_control_fops = {
	.owner = THIS_MODULE,
	.open = simple_open,
	.unlocked_ioctl = relaymap_control_ioctl,
	.compat_ioctl = compat_ptr_ioctl,
	.llseek = noop_llseek,
};

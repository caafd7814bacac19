// SPDX-License-Identifier: GPL-2.0
/*
 * Consumer fds and the debugfs cpu files.
 *
 * OPEN_CONSUMER on a channel fd claims one CPU (or all of them) and hands
 * out an anon-inode fd per CPU, "[relaymap-consumer]", O_RDONLY. Its
 * private_data is relay's struct rchan_buf with a reference of its own,
 * exactly what relay's file operations expect, so relay's mmap, poll and
 * read work on it unchanged (they use only private_data and the channel's
 * alloc_size) and relay's release drops that reference. The fd also
 * holds a channel reference and the CPU's claim; closing it (also by exit
 * or crash) releases both.
 *
 * The claim is a per-CPU owner slot, set with cmpxchg() under the
 * channel's mutex (so RESET, which needs no consumer, can exclude it) and
 * cleared without it. GET_CURSOR(S) read the holder's pid and comm under
 * RCU, from any fd.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/anon_inodes.h>
#include <linux/cpumask.h>
#include <linux/fcntl.h>
#include <linux/file.h>
#include <linux/fs.h>
#include <linux/module.h>
#include <linux/pid.h>
#include <linux/poll.h>
#include <linux/rcupdate.h>
#include <linux/sched.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/uaccess.h>

#include "relaymap_compat.h"
#include "relaymap_internal.h"

/*
 * Both are copies of relay_file_operations made at init (read-only
 * after it), owned by this module, with relay's mmap entry point wrapped
 * (relaymap_compat.h) and without splice_read.
 *
 * relaymap_cpu_fops: the debugfs cpu files. Root may map and poll them as
 * an observer; read() would move relay's consumed count behind the
 * consumer's back, so it is not there, and nothing is handed back.
 *
 * relaymap_consumer_fops: consumer fds, with relay's read(): the holder
 * may consume that way (see README).
 */
struct file_operations relaymap_cpu_fops __ro_after_init;
struct file_operations relaymap_consumer_fops __ro_after_init;

static struct relaymap_consumer *relaymap_consumer_alloc(void)
{
	struct relaymap_consumer *cons = kzalloc(sizeof(*cons), GFP_KERNEL);

	if (!cons)
		return NULL;
	cons->pid = get_pid(task_tgid(current));
	get_task_comm(cons->comm, current);
	mutex_init(&cons->lock);
	return cons;
}

/* Free a consumer that was never visible in an owner slot. */
static void relaymap_consumer_free(struct relaymap_consumer *cons)
{
	if (!cons)
		return;
	put_pid(cons->pid);
	mutex_destroy(&cons->lock);
	kfree(cons);
}

static void relaymap_consumer_free_rcu(struct rcu_head *rcu)
{
	relaymap_consumer_free(container_of(rcu, struct relaymap_consumer, rcu));
}

/* Under the channel's mutex. */
static int relaymap_claim(struct relaymap_cpu *pc,
			  struct relaymap_consumer *cons)
{
	return cmpxchg(&pc->owner, NULL, cons) ? -EBUSY : 0;
}

static void relaymap_unclaim(struct relaymap_cpu *pc)
{
	struct relaymap_consumer *cons = xchg(&pc->owner, NULL);

	/* GET_CURSOR(S) may still be reading its pid and comm. */
	if (cons)
		call_rcu(&cons->rcu, relaymap_consumer_free_rcu);
}

bool relaymap_any_consumer(struct relaymap_chan *ch)
{
	unsigned int cpu;

	for_each_possible_cpu(cpu)
		if (READ_ONCE(relaymap_pc(ch, cpu)->owner))
			return true;
	return false;
}

/* GET_CURSOR(S): RELAYMAP_CURSOR_HELD and the holder, if there is one. */
void relaymap_holder(struct relaymap_cpu *pc, struct relaymap_cursor *cur)
{
	struct relaymap_consumer *cons;

	rcu_read_lock();
	cons = READ_ONCE(pc->owner);
	if (cons) {
		cur->flags |= RELAYMAP_CURSOR_HELD;
		/* In the caller's pid namespace; 0 if not visible there. */
		cur->holder_pid = pid_vnr(cons->pid);
		strscpy(cur->holder_comm, cons->comm, sizeof(cur->holder_comm));
	}
	rcu_read_unlock();
}

static struct rchan_buf *relaymap_file_buf(struct file *file)
{
	return file->private_data;
}

static struct relaymap_chan *relaymap_file_chan(struct file *file)
{
	return relaymap_buf_owner(relaymap_file_buf(file));
}

static struct relaymap_cpu *relaymap_file_pc(struct file *file)
{
	return relaymap_pc(relaymap_file_chan(file),
			   relaymap_buf_cpu(relaymap_file_buf(file)));
}

/*
 * The consumer file of a CPU the caller has claimed. On success the file
 * owns the claim, a channel reference and a buffer reference (all three
 * dropped by its release). On failure the claim is released.
 */
static struct file *relaymap_consumer_file(struct relaymap_chan *ch,
					   struct relaymap_cpu *pc,
					   struct rchan_buf *buf)
{
	struct file *file;

	kref_get(&ch->kref);
	file = anon_inode_getfile("[relaymap-consumer]",
				  &relaymap_consumer_fops, buf, O_RDONLY);
	if (IS_ERR(file)) {
		relaymap_unclaim(pc);
		/* Not the last reference: the caller's fd holds one. */
		relaymap_chan_put(ch);
		return file;
	}
	/* Dropped by relay's release (relay_file_release), called from ours. */
	relaymap_buf_get(buf);
	return file;
}

static long relaymap_open_one(struct relaymap_chan *ch,
			      struct relaymap_open_consumer *oc,
			      void __user *arg, u32 usize)
{
	struct relaymap_consumer *cons;
	struct relaymap_cpu *pc;
	struct rchan_buf *buf;
	struct file *file;
	long err;
	int fd;

	buf = relaymap_cpu_buf(ch, oc->cpu);
	if (!buf)
		return -EINVAL;
	pc = relaymap_pc(ch, oc->cpu);
	cons = relaymap_consumer_alloc();
	if (!cons)
		return -ENOMEM;
	fd = get_unused_fd_flags(O_CLOEXEC);
	if (fd < 0) {
		relaymap_consumer_free(cons);
		return fd;
	}
	mutex_lock(&ch->lock);
	err = relaymap_claim(pc, cons);
	mutex_unlock(&ch->lock);
	if (err) {
		relaymap_consumer_free(cons);
		goto err_fd;
	}
	file = relaymap_consumer_file(ch, pc, buf);
	if (IS_ERR(file)) {
		err = PTR_ERR(file);
		goto err_fd;
	}
	/* Nothing may fail once the fd is installed. */
	err = relaymap_copy_out(arg, oc, sizeof(*oc), usize);
	if (err) {
		fput(file);
		goto err_fd;
	}
	fd_install(fd, file);
	return fd;

err_fd:
	put_unused_fd(fd);
	return err;
}

/* OPEN_CONSUMER(RELAYMAP_ALL_CPUS): every CPU with a buffer, or none. */
static long relaymap_open_all(struct relaymap_chan *ch,
			      struct relaymap_open_consumer *oc,
			      void __user *arg, u32 usize)
{
	unsigned int n = nr_cpu_ids, cpu;
	struct relaymap_consumer **cons;
	struct file **files;
	bool busy = false;
	long err = 0;
	s32 *fds;

	if (oc->nr_fds < n || !oc->fds)
		return -EINVAL;
	fds = kcalloc(n, sizeof(*fds), GFP_KERNEL);
	files = kcalloc(n, sizeof(*files), GFP_KERNEL);
	cons = kcalloc(n, sizeof(*cons), GFP_KERNEL);
	if (!fds || !files || !cons) {
		err = -ENOMEM;
		goto out_free;
	}
	for (cpu = 0; cpu < n; cpu++)
		fds[cpu] = -1;

	for_each_possible_cpu(cpu) {
		if (!relaymap_cpu_buf(ch, cpu))
			continue;
		cons[cpu] = relaymap_consumer_alloc();
		if (!cons[cpu]) {
			err = -ENOMEM;
			goto out_fds;
		}
		fds[cpu] = get_unused_fd_flags(O_CLOEXEC);
		if (fds[cpu] < 0) {
			err = fds[cpu];
			fds[cpu] = -1;
			goto out_fds;
		}
	}

	/* All or nothing: claim every CPU, or undo the claims made here. */
	mutex_lock(&ch->lock);
	for (cpu = 0; cpu < n; cpu++) {
		if (cons[cpu] && relaymap_claim(relaymap_pc(ch, cpu), cons[cpu])) {
			busy = true;
			break;
		}
	}
	if (busy) {
		while (cpu-- > 0) {
			if (!cons[cpu])
				continue;
			relaymap_unclaim(relaymap_pc(ch, cpu));
			cons[cpu] = NULL;	/* freed after RCU */
		}
	}
	for (cpu = 0; cpu < n && !busy; cpu++)
		cons[cpu] = NULL;		/* now in the owner slots */
	mutex_unlock(&ch->lock);
	if (busy) {
		err = -EBUSY;
		goto out_fds;
	}

	for (cpu = 0; cpu < n; cpu++) {
		struct file *file;

		if (fds[cpu] < 0)
			continue;
		file = relaymap_consumer_file(ch, relaymap_pc(ch, cpu),
					      relaymap_cpu_buf(ch, cpu));
		if (IS_ERR(file)) {
			err = PTR_ERR(file);
			/* Release the claims that have no file yet. */
			while (++cpu < n)
				if (fds[cpu] >= 0)
					relaymap_unclaim(relaymap_pc(ch, cpu));
			goto out_files;
		}
		files[cpu] = file;
	}

	/* Nothing may fail once the fds are installed. */
	if (copy_to_user(u64_to_user_ptr(oc->fds), fds, n * sizeof(*fds))) {
		err = -EFAULT;
		goto out_files;
	}
	err = relaymap_copy_out(arg, oc, sizeof(*oc), usize);
	if (err)
		goto out_files;
	for (cpu = 0; cpu < n; cpu++)
		if (files[cpu])
			fd_install(fds[cpu], files[cpu]);
	goto out_free;

out_files:
	/* Their release drops the claims and references. */
	for (cpu = 0; cpu < n; cpu++)
		if (files[cpu])
			fput(files[cpu]);
out_fds:
	for (cpu = 0; cpu < n; cpu++)
		if (fds[cpu] >= 0)
			put_unused_fd(fds[cpu]);
out_free:
	if (cons)
		for (cpu = 0; cpu < n; cpu++)
			relaymap_consumer_free(cons[cpu]);
	kfree(cons);
	kfree(files);
	kfree(fds);
	return err;
}

long relaymap_ioc_open_consumer(struct relaymap_chan *ch, void __user *arg)
{
	struct relaymap_open_consumer oc;
	u32 usize;
	long ret;

	ret = relaymap_copy_in(&oc, sizeof(oc), RELAYMAP_OPEN_CONSUMER_SIZE_VER0,
			       arg, &usize);
	if (ret)
		return ret;
	if (oc.flags)
		return -EINVAL;
	if (oc.cpu == RELAYMAP_ALL_CPUS)
		return relaymap_open_all(ch, &oc, arg, usize);
	/* fds[] is for ALL only: set for one CPU, it is a caller's mistake. */
	if (oc.nr_fds || oc.fds)
		return -EINVAL;
	return relaymap_open_one(ch, &oc, arg, usize);
}

static long relaymap_ioc_put_consumed(struct file *file, void __user *arg)
{
	struct relaymap_cpu *pc = relaymap_file_pc(file);
	struct rchan_buf *buf = relaymap_file_buf(file);
	/* Ours: only this file's release clears the slot. */
	struct relaymap_consumer *cons = READ_ONCE(pc->owner);
	struct relaymap_consume con;
	u64 produced, consumed;
	u32 usize;
	long ret;

	ret = relaymap_copy_in(&con, sizeof(con), RELAYMAP_CONSUME_SIZE_VER0,
			       arg, &usize);
	if (ret)
		return ret;
	if (con.reserved || !con.count)
		return -EINVAL;
	if (WARN_ON_ONCE(!cons))
		return -EBADF;

	mutex_lock(&cons->lock);
	/* Pairs with smp_store_release() in relaymap_close_subbuf(). */
	produced = smp_load_acquire(&pc->published);
	consumed = relaymap_buf_consumed(buf);
	/*
	 * relay's read() moves consumed on its own and may have passed our
	 * published count: then nothing is left to hand back.
	 */
	if (consumed > produced || con.count > produced - consumed)
		ret = -EINVAL;
	else
		relaymap_buf_hand_back(buf, con.count);
	mutex_unlock(&cons->lock);
	if (!ret)
		relaymap_wake_consumed(relaymap_file_chan(file), pc);
	return ret;
}

/*
 * relay's read() moves relay's consumed count itself: like a PUT_CONSUMED,
 * it may make room for writers waiting for space and end a drain_wait().
 */
static ssize_t relaymap_consumer_read(struct file *file, char __user *ubuf,
				      size_t count, loff_t *ppos)
{
	ssize_t ret = relay_file_operations.read(file, ubuf, count, ppos);

	if (ret > 0)
		relaymap_wake_consumed(relaymap_file_chan(file),
				       relaymap_file_pc(file));
	return ret;
}

static long relaymap_consumer_ioctl(struct file *file, unsigned int cmd,
				    unsigned long arg)
{
	void __user *uarg = (void __user *)arg;

	if (_IOC_TYPE(cmd) != RELAYMAP_IOC_MAGIC)
		return -ENOTTY;
	switch (_IOC_NR(cmd)) {
	case _IOC_NR(RELAYMAP_IOC_GET_CURSOR):
		return relaymap_ioc_get_cursor(relaymap_file_chan(file), uarg,
					       relaymap_buf_cpu(relaymap_file_buf(file)));
	case _IOC_NR(RELAYMAP_IOC_PUT_CONSUMED):
		return relaymap_ioc_put_consumed(file, uarg);
	default:
		return -ENOTTY;
	}
}

/*
 * relay's poll (EPOLLIN when a sub-buffer is ready), plus EPOLLHUP once
 * the creator destroyed the channel and everything this CPU published
 * was handed back: nothing more will come. relaymap_chan_destroy() wakes
 * the sleepers after it set destroyed.
 */
static __poll_t relaymap_consumer_poll(struct file *file,
				       struct poll_table_struct *wait)
{
	struct relaymap_chan *ch = relaymap_file_chan(file);
	struct relaymap_cpu *pc = relaymap_file_pc(file);
	__poll_t mask = relay_file_operations.poll(file, wait);
	u64 published;

	if (!relaymap_destroyed(ch))
		return mask;
	/*
	 * Pairs with smp_store_release() in relaymap_close_subbuf(); after
	 * the acquire of destroyed this is the final count.
	 */
	published = smp_load_acquire(&pc->published);
	if (published <= relaymap_buf_consumed(relaymap_file_buf(file)))
		mask |= EPOLLHUP;
	return mask;
}

static int relaymap_consumer_release(struct inode *inode, struct file *file)
{
	struct relaymap_chan *ch = relaymap_file_chan(file);
	struct relaymap_cpu *pc = relaymap_file_pc(file);

	relaymap_unclaim(pc);
	/* Nobody holds this CPU now: a drain_wait() may be over. */
	relaymap_wake_consumed(ch, pc);
	/* relay_file_release(): drops our buffer reference. */
	relay_file_operations.release(inode, file);
	/* May free the channel (and close relay) after the last consumer. */
	relaymap_chan_put(ch);
	return 0;
}

void relaymap_fops_init(void)
{
	relaymap_buf_fops_init(&relaymap_cpu_fops, THIS_MODULE, false);

	relaymap_buf_fops_init(&relaymap_consumer_fops, THIS_MODULE, true);
	relaymap_consumer_fops.open = NULL;
	relaymap_consumer_fops.poll = relaymap_consumer_poll;
	relaymap_consumer_fops.release = relaymap_consumer_release;
	relaymap_consumer_fops.unlocked_ioctl = relaymap_consumer_ioctl;
	/* relay's read() entry point (.read on every kernel we support). */
	if (relaymap_consumer_fops.read)
		relaymap_consumer_fops.read = relaymap_consumer_read;
	relaymap_consumer_fops.compat_ioctl = compat_ptr_ioctl;
}

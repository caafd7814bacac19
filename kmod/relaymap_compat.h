/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The one place where kernel versions differ, and the only place that
 * touches the fields of relay's struct rchan_buf and struct rchan (they
 * have been stable from 2.6 to 7.x, but they are not an API).
 *
 * Supported: 5.10 .. 7.x. What differs:
 *
 * - relay_open() takes a writable callback table before 5.11 (see
 *   RELAYMAP_RCHAN_CBS_CONST); vm_flags is written directly before 6.3.
 *
 * - The subbuf_start callback: up to 6.16 it receives the padding of the
 *   sub-buffer that was just closed, from 6.17 on it does not and the
 *   padding is read from buf->padding[] (relay_switch_subbuf() has already
 *   stored it and counted the sub-buffer as produced).
 *
 * - The mmap entry point of relay_file_operations: .mmap (a struct
 *   vm_area_struct) on 6.1 and 6.12, .mmap_prepare (a struct vm_area_desc;
 *   file_operations has it since 6.16) on 7.x. Consumer fds and the
 *   debugfs cpu files use a copy of relay_file_operations whose mmap entry
 *   point is wrapped here: relay checks only the length, but its fault
 *   handler adds the file offset, so a mapping at a non-zero offset would
 *   reach past the buffer; and nobody, root included, may get a writable
 *   or executable mapping of the kernel's buffer. The flag accessors
 *   changed too: vm_flags_clear() since 6.3 (a plain vma->vm_flags
 *   before), and vm_area_desc carries a vma_flags_t with vma_desc_*()
 *   helpers on 7.x.
 */
#ifndef _RELAYMAP_COMPAT_H
#define _RELAYMAP_COMPAT_H

#include <linux/fs.h>
#include <linux/kref.h>
#include <linux/mm.h>
#include <linux/relay.h>
#include <linux/version.h>
#include <linux/wait.h>

/* --- struct rchan_buf / struct rchan ---------------------------------- */

/* The private pointer given to relay_open(): our struct relaymap_chan. */
static inline void *relaymap_buf_owner(const struct rchan_buf *buf)
{
	return buf->chan->private_data;
}

static inline unsigned int relaymap_buf_cpu(const struct rchan_buf *buf)
{
	return buf->cpu;
}

/* relay's count of sub-buffers switched away from (ahead of our commit). */
static inline size_t relaymap_buf_produced(const struct rchan_buf *buf)
{
	return READ_ONCE(buf->subbufs_produced);
}

/* Sub-buffers handed back (PUT_CONSUMED, or relay's own read()). */
static inline size_t relaymap_buf_consumed(const struct rchan_buf *buf)
{
	return READ_ONCE(buf->subbufs_consumed);
}

/* Write position inside the current sub-buffer; owning CPU only. */
static inline size_t relaymap_buf_offset(const struct rchan_buf *buf)
{
	return buf->offset;
}

/*
 * relay marks a buffer whose subbuf_start refused a new sub-buffer (full,
 * no-overwrite) with offset = subbuf_size + 1: no sub-buffer is open.
 */
static inline bool relaymap_buf_stuck(const struct rchan_buf *buf)
{
	return buf->offset == buf->chan->subbuf_size + 1;
}

static inline bool relaymap_buf_finalized(const struct rchan_buf *buf)
{
	return READ_ONCE(buf->finalized);
}

/*
 * Claim @len bytes of the current sub-buffer; the caller checked that
 * they fit (offset + len <= subbuf_size). Owning CPU, interrupts off.
 */
static inline void *relaymap_buf_claim(struct rchan_buf *buf, size_t len)
{
	void *p = buf->data + buf->offset;

	buf->offset += len;
	return p;
}

/*
 * Hand @n sub-buffers back, as relay_subbufs_consumed() does, without its
 * limit of n_subbufs per call (a flight recorder's reader can be many
 * laps behind). The caller checked @n against our published count, which
 * never passes relay's produced count, and serialises the callers.
 */
static inline void relaymap_buf_hand_back(struct rchan_buf *buf, size_t n)
{
	WRITE_ONCE(buf->subbufs_consumed, buf->subbufs_consumed + n);
}

/* Take a reference that relay's release (relay_file_release) drops. */
static inline void relaymap_buf_get(struct rchan_buf *buf)
{
	kref_get(&buf->kref);
}

/* Wake everyone sleeping in poll() or read() on @buf. */
static inline void relaymap_buf_wake(struct rchan_buf *buf)
{
	wake_up_interruptible_all(&buf->read_wait);
}

/*
 * Would a write of @len bytes get room now, without being dropped? For a
 * writer on the owning CPU with interrupts (or preemption) disabled: the
 * answer can only get better until they are enabled again, because only
 * the reader moves subbufs_consumed.
 */
static inline bool relaymap_buf_room(const struct rchan_buf *buf, size_t len,
				     bool overwrite)
{
	const struct rchan *chan = buf->chan;
	size_t produced = buf->subbufs_produced;

	if (overwrite || buf->offset + len <= chan->subbuf_size)
		return true;
	/* A switch closes the current sub-buffer unless it is stuck full. */
	if (buf->offset != chan->subbuf_size + 1)
		produced++;
	return produced - READ_ONCE(buf->subbufs_consumed) < chan->n_subbufs;
}

/*
 * Would a write that needs a new sub-buffer get one now? For a writer
 * sleeping for space on another CPU than the buffer's (a hint: only the
 * owning CPU moves offset and subbufs_produced). A buffer stuck full
 * (no sub-buffer open) needs one free sub-buffer, an open one needs a
 * second: the switch closes the current one first. Once the consumer has
 * handed back everything published, both hold.
 */
static inline bool relaymap_buf_can_switch(const struct rchan_buf *buf,
					   bool overwrite)
{
	const struct rchan *chan = buf->chan;
	size_t produced = READ_ONCE(buf->subbufs_produced);
	size_t consumed = READ_ONCE(buf->subbufs_consumed);

	if (overwrite)
		return true;
	if (READ_ONCE(buf->offset) != chan->subbuf_size + 1)
		produced++;
	return produced - consumed < chan->n_subbufs;
}

static inline size_t relaymap_rchan_alloc_size(const struct rchan *chan)
{
	return chan->alloc_size;
}

/* The buffer of the CPU we run on; preemption or interrupts disabled. */
static inline struct rchan_buf *relaymap_rchan_this_buf(struct rchan *chan)
{
	return *this_cpu_ptr(chan->buf);
}

/* The buffer of @cpu (possible, < nr_cpu_ids), NULL if it has none yet. */
static inline struct rchan_buf *relaymap_rchan_buf(struct rchan *chan,
						   unsigned int cpu)
{
	return READ_ONCE(*per_cpu_ptr(chan->buf, cpu));
}

/* --- relay_open()'s callback table ------------------------------------- */

/*
 * const since 5.11. Before, relay_open() takes the table writable and
 * fills in the callbacks left NULL with relay's defaults (buf_mapped and
 * buf_unmapped, called on every mmap and munmap of a buffer, become
 * no-ops; create_buf_file and remove_buf_file are optional there, we set
 * both), so the table must not be in read-only memory.
 */
#if LINUX_VERSION_CODE >= KERNEL_VERSION(5, 11, 0)
#define RELAYMAP_RCHAN_CBS_CONST const
#else
#define RELAYMAP_RCHAN_CBS_CONST
#endif

/* --- subbuf_start ------------------------------------------------------- */

int relaymap_subbuf_start(struct rchan_buf *buf, void *subbuf,
			  void *prev_subbuf, size_t prev_padding);

#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 17, 0)
static inline int relaymap_compat_subbuf_start(struct rchan_buf *buf,
					       void *subbuf, void *prev_subbuf)
{
	size_t padding = 0;

	if (prev_subbuf)
		padding = buf->padding[(buf->subbufs_produced - 1) %
				       buf->chan->n_subbufs];
	return relaymap_subbuf_start(buf, subbuf, prev_subbuf, padding);
}
#else
static inline int relaymap_compat_subbuf_start(struct rchan_buf *buf,
					       void *subbuf, void *prev_subbuf,
					       size_t prev_padding)
{
	return relaymap_subbuf_start(buf, subbuf, prev_subbuf, prev_padding);
}
#endif

/* --- mmap ---------------------------------------------------------------- */

/*
 * A buffer is mapped whole, from offset 0 (relay checks the length), and
 * never writable or executable: -EINVAL for an offset, -EPERM for
 * PROT_WRITE or PROT_EXEC. (On an O_RDONLY fd the kernel already refuses
 * PROT_WRITE with MAP_SHARED with -EACCES before we are called.)
 */
static inline int relaymap_mmap_check(unsigned long pgoff, bool write,
				      bool exec)
{
	if (pgoff)
		return -EINVAL;
	if (write || exec)
		return -EPERM;
	return 0;
}

#if LINUX_VERSION_CODE < KERNEL_VERSION(6, 3, 0)
static inline void relaymap_vma_clear_may(struct vm_area_struct *vma)
{
	vma->vm_flags &= ~(VM_MAYWRITE | VM_MAYEXEC);
}
#else
static inline void relaymap_vma_clear_may(struct vm_area_struct *vma)
{
	vm_flags_clear(vma, VM_MAYWRITE | VM_MAYEXEC);
}
#endif

/* Wraps relay_file_operations.mmap. */
static inline int relaymap_buf_mmap(struct file *file,
				    struct vm_area_struct *vma)
{
	int err = relaymap_mmap_check(vma->vm_pgoff, vma->vm_flags & VM_WRITE,
				      vma->vm_flags & VM_EXEC);

	if (err)
		return err;
	/* mprotect() can never add PROT_WRITE or PROT_EXEC later. */
	relaymap_vma_clear_may(vma);
	return relay_file_operations.mmap(file, vma);
}

#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 16, 0)
#define RELAYMAP_HAVE_MMAP_PREPARE

#ifdef vma_desc_test_all
/* vm_area_desc.vma_flags (7.x) */
static inline bool relaymap_desc_test(const struct vm_area_desc *desc,
				      vma_flag_t bit)
{
	return vma_desc_test(desc, bit);
}

#define RELAYMAP_DESC_WRITE	VMA_WRITE_BIT
#define RELAYMAP_DESC_EXEC	VMA_EXEC_BIT

static inline void relaymap_desc_clear_may(struct vm_area_desc *desc)
{
	vma_desc_clear_flags(desc, VMA_MAYWRITE_BIT, VMA_MAYEXEC_BIT);
}
#else
/* vm_area_desc.vm_flags (6.16 until the vma_flags_t conversion) */
static inline bool relaymap_desc_test(const struct vm_area_desc *desc,
				      vm_flags_t flag)
{
	return desc->vm_flags & flag;
}

#define RELAYMAP_DESC_WRITE	VM_WRITE
#define RELAYMAP_DESC_EXEC	VM_EXEC

static inline void relaymap_desc_clear_may(struct vm_area_desc *desc)
{
	desc->vm_flags &= ~(VM_MAYWRITE | VM_MAYEXEC);
}
#endif

/* Wraps relay_file_operations.mmap_prepare. */
static inline int relaymap_buf_mmap_prepare(struct vm_area_desc *desc)
{
	int err = relaymap_mmap_check(desc->pgoff,
				      relaymap_desc_test(desc, RELAYMAP_DESC_WRITE),
				      relaymap_desc_test(desc, RELAYMAP_DESC_EXEC));

	if (err)
		return err;
	/* mprotect() can never add PROT_WRITE or PROT_EXEC later. */
	relaymap_desc_clear_may(desc);
	return relay_file_operations.mmap_prepare(desc);
}
#endif /* >= 6.16 */

/*
 * A copy of relay_file_operations owned by this module (an open or mapped
 * file keeps it loaded), with whichever mmap entry point relay sets
 * wrapped as above. Without @readable, also without relay's read entry
 * points: they move relay's consumed count on their own and are not safe
 * against a writer on another CPU. splice_read goes either way (gone from
 * relay since 6.8; it never worked through debugfs). The caller sets what
 * else differs (open, release, poll, ioctl).
 */
static inline void
relaymap_buf_fops_init(struct file_operations *fops, struct module *owner,
		       bool readable)
{
	*fops = relay_file_operations;
	fops->owner = owner;
	if (!readable) {
		fops->read = NULL;
		fops->read_iter = NULL;
	}
	fops->splice_read = NULL;
	if (fops->mmap)
		fops->mmap = relaymap_buf_mmap;
#ifdef RELAYMAP_HAVE_MMAP_PREPARE
	if (fops->mmap_prepare)
		fops->mmap_prepare = relaymap_buf_mmap_prepare;
#endif
}

#endif /* _RELAYMAP_COMPAT_H */

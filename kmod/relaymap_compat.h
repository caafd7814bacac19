/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The one place where kernel versions differ. Included by relaymap_main.c
 * only.
 *
 * Supported: 6.1 .. 7.x. Two things differ:
 *
 * - The subbuf_start callback: up to 6.16 it receives the padding of the
 *   sub-buffer that was just closed, from 6.17 on it does not and the
 *   padding is read from buf->padding[] (relay_switch_subbuf() has already
 *   stored it and counted the sub-buffer as produced).
 *
 * - The mmap entry point of relay_file_operations: .mmap (a struct
 *   vm_area_struct) on 6.1 and 6.12, .mmap_prepare (a struct vm_area_desc;
 *   file_operations has it since 6.16) on 7.x. The cpu files use a copy of
 *   relay_file_operations whose mmap entry point is wrapped here: relay
 *   checks only the length, but its fault handler adds the file offset, so
 *   a mapping at a non-zero offset would reach past the buffer. And a root
 *   consumer (who bypasses the 0400 mode) must not get a writable shared
 *   mapping of the kernel's buffer. The flag accessors changed too:
 *   vm_flags_clear() since 6.3 (a plain vma->vm_flags before), and
 *   vm_area_desc carries a vma_flags_t with vma_desc_*() helpers on 7.x.
 */
#ifndef _RELAYMAP_COMPAT_H
#define _RELAYMAP_COMPAT_H

#include <linux/fs.h>
#include <linux/mm.h>
#include <linux/relay.h>
#include <linux/version.h>

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

/*
 * A cpu file is mapped whole, from offset 0 (relay checks the length), and
 * never writable and shared: -EINVAL for an offset, -EPERM for PROT_WRITE
 * with MAP_SHARED (possible only with an O_RDWR open, i.e. for root). A
 * MAP_PRIVATE mapping is copy-on-write and cannot reach the buffer.
 */
static inline int relaymap_mmap_check(unsigned long pgoff, bool shared,
				      bool write)
{
	if (pgoff)
		return -EINVAL;
	if (shared && write)
		return -EPERM;
	return 0;
}

#if LINUX_VERSION_CODE < KERNEL_VERSION(6, 3, 0)
static inline void relaymap_vma_clear_maywrite(struct vm_area_struct *vma)
{
	vma->vm_flags &= ~VM_MAYWRITE;
}
#else
static inline void relaymap_vma_clear_maywrite(struct vm_area_struct *vma)
{
	vm_flags_clear(vma, VM_MAYWRITE);
}
#endif

/* Wraps relay_file_operations.mmap. */
static inline int relaymap_cpu_mmap(struct file *file,
				    struct vm_area_struct *vma)
{
	int err = relaymap_mmap_check(vma->vm_pgoff, vma->vm_flags & VM_SHARED,
				      vma->vm_flags & VM_WRITE);

	if (err)
		return err;
	/* A shared mapping stays read-only: mprotect cannot add PROT_WRITE. */
	if (vma->vm_flags & VM_MAYSHARE)
		relaymap_vma_clear_maywrite(vma);
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

#define RELAYMAP_DESC_SHARED	VMA_SHARED_BIT
#define RELAYMAP_DESC_WRITE	VMA_WRITE_BIT
#define RELAYMAP_DESC_MAYSHARE	VMA_MAYSHARE_BIT

static inline void relaymap_desc_clear_maywrite(struct vm_area_desc *desc)
{
	vma_desc_clear_flags(desc, VMA_MAYWRITE_BIT);
}
#else
/* vm_area_desc.vm_flags (6.16 until the vma_flags_t conversion) */
static inline bool relaymap_desc_test(const struct vm_area_desc *desc,
				      vm_flags_t flag)
{
	return desc->vm_flags & flag;
}

#define RELAYMAP_DESC_SHARED	VM_SHARED
#define RELAYMAP_DESC_WRITE	VM_WRITE
#define RELAYMAP_DESC_MAYSHARE	VM_MAYSHARE

static inline void relaymap_desc_clear_maywrite(struct vm_area_desc *desc)
{
	desc->vm_flags &= ~VM_MAYWRITE;
}
#endif

/* Wraps relay_file_operations.mmap_prepare. */
static inline int relaymap_cpu_mmap_prepare(struct vm_area_desc *desc)
{
	int err = relaymap_mmap_check(desc->pgoff,
				      relaymap_desc_test(desc, RELAYMAP_DESC_SHARED),
				      relaymap_desc_test(desc, RELAYMAP_DESC_WRITE));

	if (err)
		return err;
	/* A shared mapping stays read-only: mprotect cannot add PROT_WRITE. */
	if (relaymap_desc_test(desc, RELAYMAP_DESC_MAYSHARE))
		relaymap_desc_clear_maywrite(desc);
	return relay_file_operations.mmap_prepare(desc);
}
#endif /* >= 6.16 */

/*
 * The fops of the cpu files: a copy of @relay (relay_file_operations) owned
 * by this module, so that an open or mapped cpu file keeps it loaded, with
 * whichever mmap entry point relay sets wrapped as above.
 */
static inline void
relaymap_cpu_fops_init(struct file_operations *fops, const struct file_operations *relay)
{
	*fops = *relay;
	fops->owner = THIS_MODULE;
	if (fops->mmap)
		fops->mmap = relaymap_cpu_mmap;
#ifdef RELAYMAP_HAVE_MMAP_PREPARE
	if (fops->mmap_prepare)
		fops->mmap_prepare = relaymap_cpu_mmap_prepare;
#endif
}

#endif /* _RELAYMAP_COMPAT_H */

/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The one place where kernel versions differ.
 *
 * Supported: 6.1 .. 7.x. The only relay API change that matters to
 * relaymap is the subbuf_start callback: up to 6.16 it receives the
 * padding of the sub-buffer that was just closed, from 6.17 on it does not
 * and the padding is read from buf->padding[] (relay_switch_subbuf() has
 * already stored it and counted the sub-buffer as produced).
 */
#ifndef _RELAYMAP_COMPAT_H
#define _RELAYMAP_COMPAT_H

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

#endif /* _RELAYMAP_COMPAT_H */

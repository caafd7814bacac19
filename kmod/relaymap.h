/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Kernel API of relaymap.ko for other modules.
 *
 * A relaymap channel is a relay channel with one buffer per CPU, exported
 * in debugfs at relaymap/<name>/ together with a control file that speaks
 * the ioctl ABI of relaymap_abi.h. Every sub-buffer starts with a
 * struct relaymap_subbuf_header that the module writes and publishes, so a
 * consumer can mmap the per-CPU files and read closed sub-buffers safely
 * while writers run.
 *
 * Context rules:
 *  - relaymap_chan_create(), relaymap_chan_destroy(), relaymap_chan_get(),
 *    relaymap_chan_put(), relaymap_writer_register(),
 *    relaymap_writer_unregister() and relaymap_flush() sleep: process
 *    context only.
 *  - The write functions may be called from any context except NMI,
 *    including hard and soft interrupt handlers. They disable local
 *    interrupts for the duration of the copy.
 */
#ifndef _RELAYMAP_H
#define _RELAYMAP_H

#include <linux/compiler.h>
#include <linux/types.h>

#include "relaymap_abi.h"

struct rchan;
struct relaymap_chan;

/**
 * struct relaymap_chan_config - geometry of a new channel
 * @name: debugfs directory name under relaymap/, 1..RELAYMAP_NAME_MAX-1
 *        characters, no '/'
 * @subbuf_size: bytes per sub-buffer, >= 4096 and a multiple of 8
 * @n_subbufs: sub-buffers per CPU, >= 2
 * @overwrite: flight-recorder mode: never wait for the reader and
 *             overwrite the oldest unconsumed sub-buffer
 */
struct relaymap_chan_config {
	const char *name;
	size_t subbuf_size;
	size_t n_subbufs;
	bool overwrite;
};

struct relaymap_chan *relaymap_chan_create(const struct relaymap_chan_config *cfg);
void relaymap_chan_destroy(struct relaymap_chan *ch);
struct relaymap_chan *relaymap_chan_get(const char *name);
void relaymap_chan_put(struct relaymap_chan *ch);

void relaymap_chan_info(struct relaymap_chan *ch, struct relaymap_info *info);
struct rchan *relaymap_chan_relay(struct relaymap_chan *ch);

int relaymap_writer_register(struct relaymap_chan *ch);
void relaymap_writer_unregister(struct relaymap_chan *ch);

int relaymap_write(struct relaymap_chan *ch, u16 type, const void *data,
		   size_t len);
int relaymap_try_write(struct relaymap_chan *ch, u16 type, const void *data,
		       size_t len);
int relaymap_write_raw(struct relaymap_chan *ch, const void *data, size_t len);
void *relaymap_reserve(struct relaymap_chan *ch, u16 type, size_t len,
		       unsigned long *flags);
void *relaymap_try_reserve(struct relaymap_chan *ch, u16 type, size_t len,
			   unsigned long *flags);
void relaymap_commit(struct relaymap_chan *ch, void *data, unsigned long flags);
__printf(2, 3)
int relaymap_printf(struct relaymap_chan *ch, const char *fmt, ...);

int relaymap_flush(struct relaymap_chan *ch, int cpu);
u64 relaymap_cpu_dropped(struct relaymap_chan *ch, int cpu);
void relaymap_account(struct relaymap_chan *ch, size_t bytes);

#endif /* _RELAYMAP_H */

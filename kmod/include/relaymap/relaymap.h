/* SPDX-License-Identifier: GPL-2.0 */
/*
 * <relaymap/relaymap.h> - the kernel API of relaymap.ko for other modules
 * (kernel API 2, ABI 2: see relaymap_abi.h, installed next to this file).
 *
 * Out-of-tree modules: `make -C kmod install-dev` installs this header and
 * relaymap_abi.h as <relaymap/relaymap.h> and <relaymap/relaymap_abi.h>
 * under /usr/src/relaymap-<version>/include, and relaymap's Module.symvers
 * as /usr/src/relaymap-<version>/<kernel release>/Module.symvers. A Kbuild
 * file then needs:
 *   ccflags-y += -I/usr/src/relaymap-<version>/include
 *   KBUILD_EXTRA_SYMBOLS := /usr/src/relaymap-<version>/<release>/Module.symvers
 * (kmod/README.md, "Out-of-tree modules", has a complete example).
 *
 * A relaymap channel is a relay channel with one buffer per CPU. Userspace
 * reaches it through /dev/relaymap: OPEN_CHANNEL by name gives a channel
 * fd, OPEN_CONSUMER gives one consumer fd per CPU that maps the buffer
 * read-only. Every sub-buffer starts with a struct relaymap_subbuf_header
 * (a CTF packet header) that the module writes and publishes, so a
 * consumer reads closed sub-buffers safely while writers run.
 *
 * Records: struct relaymap_record { ts_ns, event_id, type, len } and then
 * len bytes of data, each record at an 8-byte aligned offset. Sizes, in
 * DATA bytes (the @len of a write) or RECORD bytes (data + the 16-byte
 * record header), never mixed:
 *  - relaymap_max_data_size(ch) == RELAYMAP_MAX_DATA_SIZE(subbuf_size) ==
 *    relaymap_info.max_data_size: the largest @len of one framed record
 *    (relaymap_write() and friends, relaymap_reserve()).
 *  - RELAYMAP_MAX_RECORD_SIZE(subbuf_size) == relaymap_info.max_record_size
 *    == max data + 16: the largest framed record, header included, and the
 *    largest relaymap_write_raw().
 *  - RELAYMAP_PRINTF_MAX_DATA (1023): the longest text of a printf record
 *    (its @len); longer text is cut. RELAYMAP_PRINTF_MAX (1024) is the
 *    formatting buffer, NUL included.
 *
 * Records land in the buffer of the CPU the writer runs on. A writer that
 * puts the CPU number into its record must disable preemption around
 * reading it and the write (get_cpu() ... relaymap_write() ... put_cpu()).
 * The sleeping writers (_wait) cannot do that: a record that names its CPU
 * and is written with them must come from a thread bound to that CPU
 * (kthread_bind(); kthread_create_on_cpu() is not exported on 5.10).
 *
 * Timeouts are in jiffies (msecs_to_jiffies(), HZ); 0 = do not wait,
 * MAX_SCHEDULE_TIMEOUT = no limit. A wait ends early with -ERESTARTSYS
 * on a signal and, in a kthread, with -EINTR once kthread_stop() was called.
 *
 * Context rules, one line per function:
 *  relaymap_chan_create()          process context, sleeps
 *  relaymap_chan_destroy()         process context, sleeps; writers stopped
 *  relaymap_chan_drain_wait()      process context, sleeps (interruptible)
 *  relaymap_chan_get()             process context, sleeps
 *  relaymap_chan_put()             process context, sleeps (may free)
 *  relaymap_chan_info()            process context, sleeps
 *  relaymap_chan_relay()           any context
 *  relaymap_max_data_size()        any context
 *  relaymap_writer_register()      process context, sleeps
 *  relaymap_writer_unregister()    process context, sleeps
 *  relaymap_flush()                process context, sleeps
 *  relaymap_write()                any context but NMI; irqs off for the copy
 *  relaymap_try_write()            any context but NMI; irqs off for the copy
 *  relaymap_write_wait()           process context, may sleep (interruptible)
 *  relaymap_write_raw()            any context but NMI; irqs off for the copy
 *  relaymap_reserve()              any context but NMI; irqs off until commit
 *  relaymap_try_reserve()          any context but NMI; irqs off until commit
 *  relaymap_commit()               right after the reserve, same CPU, irqs off
 *  relaymap_printf(), _vprintf()   any context but NMI; irqs off to format
 *  relaymap_try_printf(), _try_vprintf()
 *                                  any context but NMI; irqs off to format
 *  relaymap_printf_wait(), _vprintf_wait()
 *                                  process context, may sleep (interruptible)
 *  relaymap_wait_space()           process context, sleeps (interruptible)
 *  relaymap_cpu_dropped()          any context
 *  relaymap_account()              right after a relay write, same CPU,
 *                                  interrupts or preemption still disabled
 *
 * Lifecycle: create -> register writers -> write -> stop and unregister
 * writers -> flush -> (drain_wait: wait for the consumer) -> destroy.
 * Destroy flushes every CPU and hides the channel (LIST and OPEN_CHANNEL no
 * longer find it), but a consumer that still has a channel or consumer fd
 * keeps it: it can flush, drain everything, read cursors and stats
 * (RELAYMAP_INFO_DESTROYED, RELAYMAP_CURSOR_DESTROYED); poll() on a
 * consumer fd reports EPOLLHUP once its CPU is drained. The relay buffers
 * are freed, and the name can be created again, when the last fd is
 * closed.
 */
#ifndef _RELAYMAP_H
#define _RELAYMAP_H

#include <linux/compiler.h>
#if __has_include("linux/stdarg.h")
#include <linux/stdarg.h>
#else
#include <stdarg.h>		/* before 5.15: the compiler's own */
#endif
#include <linux/types.h>

#include "relaymap_abi.h"

/* The release of relaymap.ko this header belongs to (MODULE_VERSION). */
#define RELAYMAP_VERSION	"0.2.0"
/* This API; 2 = drain_wait, the _wait and try_ printf writers, wait_space. */
#define RELAYMAP_KAPI_VERSION	2

/* relaymap_printf() formats into RELAYMAP_PRINTF_MAX bytes, NUL included... */
#define RELAYMAP_PRINTF_MAX		1024
/* ...so the text of a printf record (its data, stored without the NUL) is
 * at most this long; longer text is cut.
 */
#define RELAYMAP_PRINTF_MAX_DATA	(RELAYMAP_PRINTF_MAX - 1)

/* Largest framed record of a channel, header included (info.max_record_size). */
#define RELAYMAP_MAX_RECORD_SIZE(subbuf_size) \
	((subbuf_size) - sizeof(struct relaymap_subbuf_header))
/* Largest data (@len) of one framed record (info.max_data_size). */
#define RELAYMAP_MAX_DATA_SIZE(subbuf_size) \
	(RELAYMAP_MAX_RECORD_SIZE(subbuf_size) - sizeof(struct relaymap_record))

struct rchan;
struct relaymap_chan;

/**
 * struct relaymap_chan_config - geometry of a new channel
 * @name: channel name (LIST, OPEN_CHANNEL, the debugfs folder),
 *        1..RELAYMAP_NAME_MAX-1 characters, no '/'
 * @subbuf_size: bytes per sub-buffer: a multiple of PAGE_SIZE, at least
 *               4096, at most 64 MiB
 * @n_subbufs: sub-buffers per CPU, 2..4096 (at most 1 GiB per CPU)
 * @overwrite: flight-recorder mode: never wait for the reader and
 *             overwrite the oldest unconsumed sub-buffer
 */
struct relaymap_chan_config {
	const char *name;
	size_t subbuf_size;
	size_t n_subbufs;
	bool overwrite;
};

/* Channels (kmod/relaymap_main.c has the full kernel-doc of each). */
struct relaymap_chan *relaymap_chan_create(const struct relaymap_chan_config *cfg);
void relaymap_chan_destroy(struct relaymap_chan *ch);
int relaymap_chan_drain_wait(struct relaymap_chan *ch, long timeout);
struct relaymap_chan *relaymap_chan_get(const char *name);
void relaymap_chan_put(struct relaymap_chan *ch);

void relaymap_chan_info(struct relaymap_chan *ch, struct relaymap_info *info);
size_t relaymap_max_data_size(struct relaymap_chan *ch);
struct rchan *relaymap_chan_relay(struct relaymap_chan *ch);

int relaymap_writer_register(struct relaymap_chan *ch);
void relaymap_writer_unregister(struct relaymap_chan *ch);

/*
 * Writers (kmod/relaymap_write.c). Return values:
 *  0           written
 *  -ENOSPC     buffer full: dropped, counted in records_dropped
 *  -EAGAIN     buffer full (try_ writers): not written, counted nowhere
 *  -EMSGSIZE   larger than the limit: counted in records_rejected
 *              (try_ writers: counted nowhere)
 *  -ETIMEDOUT  (_wait) still full after @timeout: dropped, counted in
 *              records_dropped like relaymap_write()
 *  -ERESTARTSYS, -EINTR  (_wait) a signal, or kthread_stop(): not
 *              written, counted nowhere
 *  -EPIPE      (_wait) the channel was destroyed while waiting: not
 *              written, counted nowhere
 */
int relaymap_write(struct relaymap_chan *ch, u16 type, const void *data,
		   size_t len);
int relaymap_try_write(struct relaymap_chan *ch, u16 type, const void *data,
		       size_t len);
int relaymap_write_wait(struct relaymap_chan *ch, u16 type, const void *data,
			size_t len, long timeout);
int relaymap_write_raw(struct relaymap_chan *ch, const void *data, size_t len);
void *relaymap_reserve(struct relaymap_chan *ch, u16 type, size_t len,
		       unsigned long *flags);
void *relaymap_try_reserve(struct relaymap_chan *ch, u16 type, size_t len,
			   unsigned long *flags);
void relaymap_commit(struct relaymap_chan *ch, void *data, unsigned long flags);

__printf(2, 3)
int relaymap_printf(struct relaymap_chan *ch, const char *fmt, ...);
__printf(2, 0)
int relaymap_vprintf(struct relaymap_chan *ch, const char *fmt, va_list args);
__printf(2, 3)
int relaymap_try_printf(struct relaymap_chan *ch, const char *fmt, ...);
__printf(2, 0)
int relaymap_try_vprintf(struct relaymap_chan *ch, const char *fmt,
			 va_list args);
__printf(3, 4)
int relaymap_printf_wait(struct relaymap_chan *ch, long timeout,
			 const char *fmt, ...);
__printf(3, 0)
int relaymap_vprintf_wait(struct relaymap_chan *ch, long timeout,
			  const char *fmt, va_list args);

int relaymap_wait_space(struct relaymap_chan *ch, int cpu, long timeout);

int relaymap_flush(struct relaymap_chan *ch, int cpu);
u64 relaymap_cpu_dropped(struct relaymap_chan *ch, int cpu);
void relaymap_account(struct relaymap_chan *ch, size_t len);

#endif /* _RELAYMAP_H */

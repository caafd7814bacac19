// SPDX-License-Identifier: GPL-2.0
/*
 * The write API.
 *
 * All writers reserve space in the current CPU's buffer with local
 * interrupts disabled, the same way the inline relay_write() does, so
 * they may be called from any context but NMI and a FLUSH (which runs on
 * the owning CPU) never sees half a record.
 *
 * A framed record is struct relaymap_record { ts_ns, event_id, type, len }
 * and len data bytes, zero-padded to the next 8-byte boundary. The
 * padding of the last record in the open sub-buffer is remembered per CPU
 * (relaymap_cpu.last_pad) so that the sub-buffer's content_size ends
 * exactly at the end of that record's data.
 *
 * Counters: a full buffer counts records_dropped (in subbuf_start), a
 * write larger than the limit counts records_rejected; the try_ variants
 * count neither.
 *
 * Sleeping writers (relaymap_write_wait(), relaymap_printf_wait()) try
 * without counting, and when the buffer of the CPU they tried is full they
 * sleep on that CPU's space_wait queue until a consumer hands a sub-buffer
 * back (or releases the CPU, or RESET, or destroy), then try again on the
 * CPU they run on then. A wait that times out ends with one counted
 * attempt, so a record that is finally given up counts as dropped.
 */
#include <linux/irqflags.h>
#include <linux/kernel.h>
#include <linux/kthread.h>
#include <linux/ktime.h>
#include <linux/percpu.h>
#include <linux/sched.h>
#include <linux/string.h>
#include <linux/wait.h>

#include "relaymap_compat.h"
#include "relaymap_internal.h"

/* Scratch space of relaymap_printf(), used with interrupts disabled. */
static DEFINE_PER_CPU(char [RELAYMAP_PRINTF_MAX], relaymap_printf_buf);

/*
 * Reserve @len bytes in this CPU's buffer. Interrupts must be disabled.
 * Returns NULL if the buffer is full; a full buffer counts one dropped
 * record in subbuf_start unless @count_drop is false.
 */
static void *relaymap_reserve_irqoff(struct relaymap_chan *ch,
				     struct relaymap_cpu *pc, size_t len,
				     bool count_drop)
{
	struct rchan_buf *buf = relaymap_rchan_this_buf(ch->rchan);

	if (unlikely(relaymap_buf_offset(buf) + len > ch->subbuf_size)) {
		pc->no_count = !count_drop;
		len = relay_switch_subbuf(buf, len);
		pc->no_count = false;
		if (!len)
			return NULL;
	}
	return relaymap_buf_claim(buf, len);
}

static void relaymap_count_rejected(struct relaymap_chan *ch)
{
	unsigned long flags;

	local_irq_save(flags);
	relaymap_add(&this_cpu_ptr(ch->pcpu)->records_rejected, 1);
	local_irq_restore(flags);
}

/* Reserve a framed record with room for @len data bytes; irqs off. */
static void *relaymap_reserve_record(struct relaymap_chan *ch,
				     struct relaymap_cpu *pc, u16 event_id,
				     u16 type, size_t len, bool count_drop)
{
	size_t size = RELAYMAP_REC_HDR_SIZE + len;
	size_t total = ALIGN(size, RELAYMAP_RECORD_ALIGN);
	struct relaymap_record *rec;

	rec = relaymap_reserve_irqoff(ch, pc, total, count_drop);
	if (!rec)
		return NULL;
	rec->ts_ns = ktime_get_mono_fast_ns();
	rec->event_id = event_id;
	rec->type = type;
	rec->len = len;
	if (total != size)
		memset((char *)rec + size, 0, total - size);
	/* After the reserve: a switch inside it reset last_pad. */
	pc->last_pad = total - size;
	return rec + 1;
}

static bool relaymap_record_fits(struct relaymap_chan *ch, size_t len)
{
	/*
	 * subbuf_size (a multiple of the page size) and the header size are
	 * multiples of 8, so the aligned record fits too.
	 */
	return len <= relaymap_max_data_size(ch);
}

/* @cpu: set to the CPU whose buffer was tried (for a wait after -EAGAIN). */
static int __relaymap_write(struct relaymap_chan *ch, u16 type,
			    const void *data, size_t len, bool try, int *cpu)
{
	struct relaymap_cpu *pc;
	unsigned long flags;
	void *p;

	if (unlikely(!relaymap_record_fits(ch, len))) {
		if (!try)
			relaymap_count_rejected(ch);
		return -EMSGSIZE;
	}
	local_irq_save(flags);
	*cpu = smp_processor_id();
	pc = this_cpu_ptr(ch->pcpu);
	p = relaymap_reserve_record(ch, pc, RELAYMAP_EVENT_RECORD, type, len,
				    !try);
	if (unlikely(!p)) {
		local_irq_restore(flags);
		return try ? -EAGAIN : -ENOSPC;
	}
	memcpy(p, data, len);
	relaymap_add(&pc->records_written, 1);
	relaymap_add(&pc->bytes_written, len);
	local_irq_restore(flags);
	return 0;
}

/**
 * relaymap_write() - write one framed record
 * @ch: the channel
 * @type: record type, RELAYMAP_REC_USER or above for your own types
 * @data: record data
 * @len: bytes of @data, at most relaymap_max_data_size()
 *
 * Written to the buffer of the CPU the caller runs on (event_id
 * RELAYMAP_EVENT_RECORD). Any context but NMI.
 *
 * Return: 0; -ENOSPC if the buffer is full (the record is dropped and
 * counted in records_dropped); -EMSGSIZE if @len is larger than
 * relaymap_max_data_size() (counted in records_rejected, not as a drop).
 */
int relaymap_write(struct relaymap_chan *ch, u16 type, const void *data,
		   size_t len)
{
	int cpu;

	return __relaymap_write(ch, type, data, len, false, &cpu);
}
EXPORT_SYMBOL_GPL(relaymap_write);

/**
 * relaymap_try_write() - write one framed record unless the buffer is full
 * @ch: the channel
 * @type: record type
 * @data: record data
 * @len: bytes of @data, at most relaymap_max_data_size()
 *
 * For lossless writers that wait and retry. Nothing is counted when it
 * fails. Any context but NMI.
 *
 * Return: 0; -EAGAIN if the buffer is full (retry later); -EMSGSIZE if
 * @len is larger than relaymap_max_data_size().
 */
int relaymap_try_write(struct relaymap_chan *ch, u16 type, const void *data,
		       size_t len)
{
	int cpu;

	return __relaymap_write(ch, type, data, len, true, &cpu);
}
EXPORT_SYMBOL_GPL(relaymap_try_write);

/* A kthread whose kthread_stop() was called: end its waits. */
static bool relaymap_stopping(void)
{
	return (current->flags & PF_KTHREAD) && kthread_should_stop();
}

static bool relaymap_space_or_end(struct relaymap_chan *ch,
				  struct rchan_buf *buf)
{
	return relaymap_buf_can_switch(buf, ch->overwrite) ||
	       relaymap_destroyed(ch) || relaymap_stopping();
}

/*
 * Sleep until @cpu's buffer has room for a new sub-buffer; *@left is the
 * time left in jiffies and is updated (MAX_SCHEDULE_TIMEOUT stays).
 */
static int __relaymap_wait_space(struct relaymap_chan *ch, int cpu,
				 long *left)
{
	struct rchan_buf *buf = relaymap_cpu_buf(ch, cpu);
	long ret;

	if (!buf)
		return -EINVAL;
	if (*left < 0)
		return -EINVAL;
	if (!relaymap_space_or_end(ch, buf)) {
		if (!*left)
			return -ETIMEDOUT;
		/*
		 * The waker stores the consumed count, then wq_has_sleeper()
		 * (a full barrier); prepare_to_wait_event() orders our
		 * queueing before the condition's loads: no lost wakeup.
		 */
		ret = wait_event_interruptible_timeout(relaymap_pc(ch, cpu)->space_wait,
						       relaymap_space_or_end(ch, buf),
						       *left);
		if (ret < 0)
			return ret;
		*left = ret;
		if (!ret)
			return -ETIMEDOUT;
	}
	if (relaymap_destroyed(ch))
		return -EPIPE;
	if (relaymap_stopping())
		return -EINTR;
	return 0;
}

/**
 * relaymap_wait_space() - sleep until a CPU's buffer has room
 * @ch: the channel
 * @cpu: the CPU whose buffer a write found full
 * @timeout: longest wait in jiffies; 0 only checks; MAX_SCHEDULE_TIMEOUT
 *           waits without a limit
 *
 * For lossless writers that use relaymap_try_reserve() or relay's own
 * writers: after a failed attempt on @cpu (with preemption disabled, so
 * that it is the CPU of the attempt), sleep until that buffer can open a
 * new sub-buffer, then try again. Woken when a consumer hands sub-buffers
 * back, releases the CPU, at RESET and at destroy; no polling. In
 * overwrite mode there is always room. Process context, interruptible.
 *
 * Return: 0 (room: try again; another writer of that CPU may take it
 * first); -ETIMEDOUT; -ERESTARTSYS (signal); -EINTR (a kthread whose
 * kthread_stop() was called); -EPIPE (the channel was destroyed);
 * -EINVAL (@cpu has no buffer, or @timeout < 0).
 */
int relaymap_wait_space(struct relaymap_chan *ch, int cpu, long timeout)
{
	might_sleep();
	return __relaymap_wait_space(ch, cpu, &timeout);
}
EXPORT_SYMBOL_GPL(relaymap_wait_space);

/* One record for the sleeping writers: binary data or printf text. */
struct relaymap_wreq {
	u16 type;
	const void *data;
	size_t len;
	const char *fmt;	/* printf if set */
	va_list *args;
};

static int __relaymap_vprintf(struct relaymap_chan *ch, const char *fmt,
			      va_list args, bool try, int *cpu);

static int relaymap_attempt(struct relaymap_chan *ch,
			    const struct relaymap_wreq *req, bool try, int *cpu)
{
	va_list aq;
	int ret;

	if (!req->fmt)
		return __relaymap_write(ch, req->type, req->data, req->len,
					try, cpu);
	va_copy(aq, *req->args);
	ret = __relaymap_vprintf(ch, req->fmt, aq, try, cpu);
	va_end(aq);
	return ret;
}

static int relaymap_write_sleeping(struct relaymap_chan *ch,
				   const struct relaymap_wreq *req,
				   long timeout)
{
	long left = timeout;
	int cpu, ret;

	might_sleep();
	if (timeout < 0)
		return -EINVAL;
	for (;;) {
		/* Not counted: a full buffer is waited for, not dropped. */
		ret = relaymap_attempt(ch, req, true, &cpu);
		if (ret != -EAGAIN)
			break;
		ret = __relaymap_wait_space(ch, cpu, &left);
		if (ret == -ETIMEDOUT) {
			/* Given up: one counted attempt, a drop if still full. */
			ret = relaymap_attempt(ch, req, false, &cpu);
			if (ret == -ENOSPC)
				ret = -ETIMEDOUT;
			break;
		}
		if (ret)
			break;
	}
	return ret;
}

/**
 * relaymap_write_wait() - write one framed record, sleeping for space
 * @ch: the channel
 * @type: record type
 * @data: record data
 * @len: bytes of @data, at most relaymap_max_data_size()
 * @timeout: longest wait in jiffies (MAX_SCHEDULE_TIMEOUT: no limit)
 *
 * Lossless writing from process context: while the buffer of the CPU it
 * tried is full, the caller sleeps (interruptibly) until a consumer hands
 * a sub-buffer back, then tries again on the CPU it runs on then. It never
 * busy-waits. A record that names its CPU must come from a thread bound to
 * that CPU (the CPU can change across a sleep). Process context, may sleep.
 *
 * Return: 0; -EMSGSIZE (too large, counted in records_rejected);
 * -ETIMEDOUT (still full after @timeout: dropped and counted in
 * records_dropped); -ERESTARTSYS (signal) or -EINTR (kthread_stop()): not
 * written, counted nowhere; -EPIPE (destroyed while waiting); -EINVAL
 * (@timeout < 0).
 */
int relaymap_write_wait(struct relaymap_chan *ch, u16 type, const void *data,
			size_t len, long timeout)
{
	struct relaymap_wreq req = { .type = type, .data = data, .len = len };

	if (unlikely(!relaymap_record_fits(ch, len))) {
		relaymap_count_rejected(ch);
		return -EMSGSIZE;
	}
	return relaymap_write_sleeping(ch, &req, timeout);
}
EXPORT_SYMBOL_GPL(relaymap_write_wait);

/**
 * relaymap_write_raw() - write unframed bytes
 * @ch: the channel
 * @data: bytes
 * @len: number of bytes, at most info.max_record_size
 *
 * The bytes are never split across sub-buffers, and they end the
 * sub-buffer's content if nothing follows them. Counted as one record of
 * @len bytes. Any context but NMI.
 *
 * Return: 0; -ENOSPC (full, counted in records_dropped); -EMSGSIZE (too
 * big, counted in records_rejected).
 */
int relaymap_write_raw(struct relaymap_chan *ch, const void *data, size_t len)
{
	struct relaymap_cpu *pc;
	unsigned long flags;
	void *p;

	if (unlikely(len > ch->subbuf_size - RELAYMAP_HDR_SIZE)) {
		relaymap_count_rejected(ch);
		return -EMSGSIZE;
	}
	if (unlikely(!len))
		return 0;
	local_irq_save(flags);
	pc = this_cpu_ptr(ch->pcpu);
	p = relaymap_reserve_irqoff(ch, pc, len, true);
	if (unlikely(!p)) {
		local_irq_restore(flags);
		return -ENOSPC;
	}
	memcpy(p, data, len);
	pc->last_pad = 0;
	relaymap_add(&pc->records_written, 1);
	relaymap_add(&pc->bytes_written, len);
	local_irq_restore(flags);
	return 0;
}
EXPORT_SYMBOL_GPL(relaymap_write_raw);

/**
 * relaymap_account() - count a record written with relay's own writers
 * @ch: the channel
 * @len: data bytes of the record (its relaymap_record.len)
 *
 * For writers that use relaymap_chan_relay() with relay_write(),
 * __relay_write() or relay_reserve(): call it right after a write that
 * was not dropped, on the same CPU and with interrupts (or, for
 * __relay_write(), preemption) still disabled, so that GET_STATS counts
 * the record like one written with relaymap_write(). The bytes written
 * last are taken to end with the record's data (no alignment padding):
 * frame records with 16 + len a multiple of 8.
 */
void relaymap_account(struct relaymap_chan *ch, size_t len)
{
	struct relaymap_cpu *pc = this_cpu_ptr(ch->pcpu);

	pc->last_pad = 0;
	relaymap_add(&pc->records_written, 1);
	relaymap_add(&pc->bytes_written, len);
}
EXPORT_SYMBOL_GPL(relaymap_account);

static void *__relaymap_reserve(struct relaymap_chan *ch, u16 type,
				size_t len, unsigned long *flags, bool try)
{
	void *p;

	if (unlikely(!relaymap_record_fits(ch, len))) {
		if (!try)
			relaymap_count_rejected(ch);
		return NULL;
	}
	local_irq_save(*flags);
	p = relaymap_reserve_record(ch, this_cpu_ptr(ch->pcpu),
				    RELAYMAP_EVENT_RECORD, type, len, !try);
	if (unlikely(!p))
		local_irq_restore(*flags);
	return p;
}

/**
 * relaymap_reserve() - reserve a framed record and fill it in place
 * @ch: the channel
 * @type: record type
 * @len: bytes of record data, at most relaymap_max_data_size()
 * @flags: saved interrupt state, pass it to relaymap_commit()
 *
 * On success local interrupts stay disabled until relaymap_commit():
 * fill the data quickly and do not sleep. The record header (timestamp,
 * event_id, type, len) and the alignment padding are already written.
 * Any context but NMI.
 *
 * Return: pointer to @len bytes of record data, or NULL if the buffer is
 * full (counted in records_dropped) or @len is too big (counted in
 * records_rejected); interrupts are then restored.
 */
void *relaymap_reserve(struct relaymap_chan *ch, u16 type, size_t len,
		       unsigned long *flags)
{
	return __relaymap_reserve(ch, type, len, flags, false);
}
EXPORT_SYMBOL_GPL(relaymap_reserve);

/**
 * relaymap_try_reserve() - relaymap_reserve() for lossless writers
 * @ch: the channel
 * @type: record type
 * @len: bytes of record data
 * @flags: saved interrupt state, pass it to relaymap_commit()
 *
 * Return: as relaymap_reserve(), but a failure is not counted at all:
 * retry later if @len <= relaymap_max_data_size().
 */
void *relaymap_try_reserve(struct relaymap_chan *ch, u16 type, size_t len,
			   unsigned long *flags)
{
	return __relaymap_reserve(ch, type, len, flags, true);
}
EXPORT_SYMBOL_GPL(relaymap_try_reserve);

/**
 * relaymap_commit() - finish a record from relaymap_reserve()
 * @ch: the channel
 * @data: the pointer relaymap_reserve() returned
 * @flags: the interrupt state relaymap_reserve() saved
 */
void relaymap_commit(struct relaymap_chan *ch, void *data, unsigned long flags)
{
	struct relaymap_record *rec = (struct relaymap_record *)data - 1;
	struct relaymap_cpu *pc = this_cpu_ptr(ch->pcpu);

	relaymap_add(&pc->records_written, 1);
	relaymap_add(&pc->bytes_written, rec->len);
	local_irq_restore(flags);
}
EXPORT_SYMBOL_GPL(relaymap_commit);

/*
 * Format into this CPU's scratch buffer and write it as a printf record,
 * all with interrupts disabled. @try: a full buffer is -EAGAIN and counted
 * nowhere (nor is a refusal).
 */
static int __relaymap_vprintf(struct relaymap_chan *ch, const char *fmt,
			      va_list args, bool try, int *cpu)
{
	struct relaymap_cpu *pc;
	unsigned long flags;
	size_t len;
	char *text;
	void *p;

	local_irq_save(flags);
	*cpu = smp_processor_id();
	pc = this_cpu_ptr(ch->pcpu);
	text = this_cpu_ptr(relaymap_printf_buf);
	len = vscnprintf(text, RELAYMAP_PRINTF_MAX, fmt, args);
	if (unlikely(!relaymap_record_fits(ch, len))) {
		if (!try)
			relaymap_add(&pc->records_rejected, 1);
		local_irq_restore(flags);
		return -EMSGSIZE;
	}
	p = relaymap_reserve_record(ch, pc, RELAYMAP_EVENT_PRINTF,
				    RELAYMAP_REC_PRINTF, len, !try);
	if (unlikely(!p)) {
		local_irq_restore(flags);
		return try ? -EAGAIN : -ENOSPC;
	}
	memcpy(p, text, len);
	relaymap_add(&pc->records_written, 1);
	relaymap_add(&pc->bytes_written, len);
	local_irq_restore(flags);
	return 0;
}

/**
 * relaymap_vprintf() - write a text record
 * @ch: the channel
 * @fmt: printf format
 * @args: its arguments
 *
 * A record of event_id RELAYMAP_EVENT_PRINTF and type
 * RELAYMAP_REC_PRINTF. The text is stored without its NUL and cut at
 * RELAYMAP_PRINTF_MAX_DATA bytes. Any context but NMI.
 *
 * Return: 0; -ENOSPC (full, counted in records_dropped); -EMSGSIZE (the
 * text does not fit a sub-buffer, counted in records_rejected).
 */
int relaymap_vprintf(struct relaymap_chan *ch, const char *fmt, va_list args)
{
	int cpu;

	return __relaymap_vprintf(ch, fmt, args, false, &cpu);
}
EXPORT_SYMBOL_GPL(relaymap_vprintf);

/**
 * relaymap_printf() - write a text record
 * @ch: the channel
 * @fmt: printf format
 *
 * As relaymap_vprintf(). Any context but NMI.
 *
 * Return: as relaymap_vprintf().
 */
int relaymap_printf(struct relaymap_chan *ch, const char *fmt, ...)
{
	va_list args;
	int ret;

	va_start(args, fmt);
	ret = relaymap_vprintf(ch, fmt, args);
	va_end(args);
	return ret;
}
EXPORT_SYMBOL_GPL(relaymap_printf);

/**
 * relaymap_try_vprintf() - write a text record unless the buffer is full
 * @ch: the channel
 * @fmt: printf format
 * @args: its arguments
 *
 * Like relaymap_vprintf(), but nothing is counted when it fails. Any
 * context but NMI.
 *
 * Return: 0; -EAGAIN (full: retry later); -EMSGSIZE (too large).
 */
int relaymap_try_vprintf(struct relaymap_chan *ch, const char *fmt,
			 va_list args)
{
	int cpu;

	return __relaymap_vprintf(ch, fmt, args, true, &cpu);
}
EXPORT_SYMBOL_GPL(relaymap_try_vprintf);

/**
 * relaymap_try_printf() - write a text record unless the buffer is full
 * @ch: the channel
 * @fmt: printf format
 *
 * As relaymap_try_vprintf(). Any context but NMI.
 *
 * Return: as relaymap_try_vprintf().
 */
int relaymap_try_printf(struct relaymap_chan *ch, const char *fmt, ...)
{
	va_list args;
	int ret;

	va_start(args, fmt);
	ret = relaymap_try_vprintf(ch, fmt, args);
	va_end(args);
	return ret;
}
EXPORT_SYMBOL_GPL(relaymap_try_printf);

/**
 * relaymap_vprintf_wait() - write a text record, sleeping for space
 * @ch: the channel
 * @timeout: longest wait in jiffies (MAX_SCHEDULE_TIMEOUT: no limit)
 * @fmt: printf format
 * @args: its arguments
 *
 * The lossless relaymap_vprintf(), as relaymap_write_wait() is to
 * relaymap_write(): the text is formatted again for each attempt. Process
 * context, may sleep.
 *
 * Return: as relaymap_write_wait().
 */
int relaymap_vprintf_wait(struct relaymap_chan *ch, long timeout,
			  const char *fmt, va_list args)
{
	struct relaymap_wreq req = { .fmt = fmt };
	va_list aq;
	int ret;

	/* A va_list parameter may be an array type: take a local copy. */
	va_copy(aq, args);
	req.args = &aq;
	ret = relaymap_write_sleeping(ch, &req, timeout);
	va_end(aq);
	return ret;
}
EXPORT_SYMBOL_GPL(relaymap_vprintf_wait);

/**
 * relaymap_printf_wait() - write a text record, sleeping for space
 * @ch: the channel
 * @timeout: longest wait in jiffies (MAX_SCHEDULE_TIMEOUT: no limit)
 * @fmt: printf format
 *
 * As relaymap_vprintf_wait(). Process context, may sleep.
 *
 * Return: as relaymap_write_wait().
 */
int relaymap_printf_wait(struct relaymap_chan *ch, long timeout,
			 const char *fmt, ...)
{
	va_list args;
	int ret;

	va_start(args, fmt);
	ret = relaymap_vprintf_wait(ch, timeout, fmt, args);
	va_end(args);
	return ret;
}
EXPORT_SYMBOL_GPL(relaymap_printf_wait);

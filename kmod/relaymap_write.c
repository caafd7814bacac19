// SPDX-License-Identifier: GPL-2.0
/*
 * The write API.
 *
 * All writers reserve space in the current CPU's buffer with local
 * interrupts disabled, the same way the inline relay_write() does, so
 * they may be called from any context but NMI and a FLUSH (which runs on
 * the owning CPU) never sees half a record.
 */
#include <linux/irqflags.h>
#include <linux/kernel.h>
#include <linux/ktime.h>
#include <linux/percpu.h>
#include <linux/string.h>

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
	struct rchan_buf *buf = *this_cpu_ptr(ch->rchan->buf);
	void *p;

	if (unlikely(buf->offset + len > ch->subbuf_size)) {
		pc->no_count = !count_drop;
		len = relay_switch_subbuf(buf, len);
		pc->no_count = false;
		if (!len)
			return NULL;
	}
	p = buf->data + buf->offset;
	buf->offset += len;
	return p;
}

static void relaymap_count_drop(struct relaymap_chan *ch)
{
	unsigned long flags;

	local_irq_save(flags);
	relaymap_add(&this_cpu_ptr(ch->pcpu)->records_dropped, 1);
	local_irq_restore(flags);
}

/* Reserve a framed record with room for @len data bytes; irqs off. */
static void *relaymap_reserve_record(struct relaymap_chan *ch,
				     struct relaymap_cpu *pc, u16 type,
				     size_t len, bool count_drop)
{
	size_t size = RELAYMAP_REC_HDR_SIZE + len;
	size_t total = ALIGN(size, RELAYMAP_RECORD_ALIGN);
	struct relaymap_record *rec;

	rec = relaymap_reserve_irqoff(ch, pc, total, count_drop);
	if (!rec)
		return NULL;
	rec->size = size;
	rec->type = type;
	rec->flags = 0;
	rec->ts_ns = ktime_get_mono_fast_ns();
	if (total != size)
		memset((char *)rec + size, 0, total - size);
	return rec + 1;
}

static bool relaymap_record_fits(struct relaymap_chan *ch, size_t len)
{
	/* subbuf_size is a multiple of 8: the aligned record fits too. */
	return len <= ch->subbuf_size - RELAYMAP_HDR_SIZE -
		      RELAYMAP_REC_HDR_SIZE;
}

static int __relaymap_write(struct relaymap_chan *ch, u16 type,
			    const void *data, size_t len, bool count_drop)
{
	struct relaymap_cpu *pc;
	unsigned long flags;
	void *p;

	if (unlikely(!relaymap_record_fits(ch, len))) {
		relaymap_count_drop(ch);
		return -EMSGSIZE;
	}
	local_irq_save(flags);
	pc = this_cpu_ptr(ch->pcpu);
	p = relaymap_reserve_record(ch, pc, type, len, count_drop);
	if (unlikely(!p)) {
		local_irq_restore(flags);
		return count_drop ? -ENOSPC : -EAGAIN;
	}
	memcpy(p, data, len);
	relaymap_add(&pc->records_written, 1);
	relaymap_add(&pc->bytes_written,
		     ALIGN(RELAYMAP_REC_HDR_SIZE + len, RELAYMAP_RECORD_ALIGN));
	local_irq_restore(flags);
	return 0;
}

/**
 * relaymap_write() - write one framed record
 * @ch: the channel
 * @type: record type, RELAYMAP_REC_USER or above for your own types
 * @data: record data
 * @len: bytes of @data
 *
 * Any context but NMI.
 *
 * Return: 0; -ENOSPC if the buffer is full (the record is dropped and
 * counted); -EMSGSIZE if the record can never fit a sub-buffer (also
 * counted as dropped).
 */
int relaymap_write(struct relaymap_chan *ch, u16 type, const void *data,
		   size_t len)
{
	return __relaymap_write(ch, type, data, len, true);
}
EXPORT_SYMBOL_GPL(relaymap_write);

/**
 * relaymap_try_write() - write one framed record unless the buffer is full
 * @ch: the channel
 * @type: record type
 * @data: record data
 * @len: bytes of @data
 *
 * For lossless writers that wait and retry. Any context but NMI.
 *
 * Return: 0; -EAGAIN if the buffer is full (nothing is counted: retry
 * later); -EMSGSIZE if the record can never fit (counted as dropped).
 */
int relaymap_try_write(struct relaymap_chan *ch, u16 type, const void *data,
		       size_t len)
{
	return __relaymap_write(ch, type, data, len, false);
}
EXPORT_SYMBOL_GPL(relaymap_try_write);

/**
 * relaymap_write_raw() - write unframed bytes
 * @ch: the channel
 * @data: bytes
 * @len: number of bytes, at most info.max_record_size
 *
 * The bytes are never split across sub-buffers. Counted as one record of
 * @len bytes. Any context but NMI.
 *
 * Return: 0, -ENOSPC (full, counted) or -EMSGSIZE (too big, counted).
 */
int relaymap_write_raw(struct relaymap_chan *ch, const void *data, size_t len)
{
	struct relaymap_cpu *pc;
	unsigned long flags;
	void *p;

	if (unlikely(len > ch->subbuf_size - RELAYMAP_HDR_SIZE)) {
		relaymap_count_drop(ch);
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
	relaymap_add(&pc->records_written, 1);
	relaymap_add(&pc->bytes_written, len);
	local_irq_restore(flags);
	return 0;
}
EXPORT_SYMBOL_GPL(relaymap_write_raw);

/**
 * relaymap_account() - count a record written with relay's own writers
 * @ch: the channel
 * @bytes: bytes the write put into the sub-buffer
 *
 * For writers that use relaymap_chan_relay() with relay_write(),
 * __relay_write() or relay_reserve(): call it right after a write that
 * was not dropped, on the same CPU and with interrupts (or, for
 * __relay_write(), preemption) still disabled, so that GET_STATS counts
 * the record like one written with relaymap_write().
 */
void relaymap_account(struct relaymap_chan *ch, size_t bytes)
{
	struct relaymap_cpu *pc = this_cpu_ptr(ch->pcpu);

	relaymap_add(&pc->records_written, 1);
	relaymap_add(&pc->bytes_written, bytes);
}
EXPORT_SYMBOL_GPL(relaymap_account);

static void *__relaymap_reserve(struct relaymap_chan *ch, u16 type,
				size_t len, unsigned long *flags,
				bool count_drop)
{
	void *p;

	if (unlikely(!relaymap_record_fits(ch, len))) {
		relaymap_count_drop(ch);
		return NULL;
	}
	local_irq_save(*flags);
	p = relaymap_reserve_record(ch, this_cpu_ptr(ch->pcpu), type, len,
				    count_drop);
	if (unlikely(!p))
		local_irq_restore(*flags);
	return p;
}

/**
 * relaymap_reserve() - reserve a framed record and fill it in place
 * @ch: the channel
 * @type: record type
 * @len: bytes of record data
 * @flags: saved interrupt state, pass it to relaymap_commit()
 *
 * On success local interrupts stay disabled until relaymap_commit():
 * fill the data quickly and do not sleep. The record header (size, type,
 * timestamp) is already written. Any context but NMI.
 *
 * Return: pointer to @len bytes of record data, or NULL if the buffer is
 * full or the record too big (dropped and counted; interrupts restored).
 */
void *relaymap_reserve(struct relaymap_chan *ch, u16 type, size_t len,
		       unsigned long *flags)
{
	return __relaymap_reserve(ch, type, len, flags, true);
}
EXPORT_SYMBOL_GPL(relaymap_reserve);

/**
 * relaymap_try_reserve() - relaymap_reserve() for lossless writers
 * @ch: the channel
 * @type: record type
 * @len: bytes of record data
 * @flags: saved interrupt state, pass it to relaymap_commit()
 *
 * Return: as relaymap_reserve(), but a full buffer is not counted as a
 * drop: retry later.
 */
void *relaymap_try_reserve(struct relaymap_chan *ch, u16 type, size_t len,
			   unsigned long *flags)
{
	return __relaymap_reserve(ch, type, len, flags, false);
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
	relaymap_add(&pc->bytes_written,
		     ALIGN(rec->size, RELAYMAP_RECORD_ALIGN));
	local_irq_restore(flags);
}
EXPORT_SYMBOL_GPL(relaymap_commit);

/**
 * relaymap_printf() - write a RELAYMAP_REC_PRINTF text record
 * @ch: the channel
 * @fmt: printf format
 *
 * The text is stored without its NUL and truncated to
 * RELAYMAP_PRINTF_MAX - 1 bytes. Any context but NMI.
 *
 * Return: 0, -ENOSPC (full, counted) or -EMSGSIZE (counted).
 */
int relaymap_printf(struct relaymap_chan *ch, const char *fmt, ...)
{
	struct relaymap_cpu *pc;
	unsigned long flags;
	va_list args;
	size_t len;
	char *text;
	void *p;

	local_irq_save(flags);
	text = this_cpu_ptr(relaymap_printf_buf);
	va_start(args, fmt);
	len = vscnprintf(text, RELAYMAP_PRINTF_MAX, fmt, args);
	va_end(args);
	if (unlikely(!relaymap_record_fits(ch, len))) {
		relaymap_add(&this_cpu_ptr(ch->pcpu)->records_dropped, 1);
		local_irq_restore(flags);
		return -EMSGSIZE;
	}
	pc = this_cpu_ptr(ch->pcpu);
	p = relaymap_reserve_record(ch, pc, RELAYMAP_REC_PRINTF, len, true);
	if (unlikely(!p)) {
		local_irq_restore(flags);
		return -ENOSPC;
	}
	memcpy(p, text, len);
	relaymap_add(&pc->records_written, 1);
	relaymap_add(&pc->bytes_written,
		     ALIGN(RELAYMAP_REC_HDR_SIZE + len, RELAYMAP_RECORD_ALIGN));
	local_irq_restore(flags);
	return 0;
}
EXPORT_SYMBOL_GPL(relaymap_printf);

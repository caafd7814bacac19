/* SPDX-License-Identifier: MIT */
/*
 * rmck_flush - FLUSH makes a partly filled sub-buffer visible while writers run.
 *
 *   rmck_flush -n NAME [--rate R] [--iterations N] [--interval-ms MS]
 *
 * The load generator writes (lossless) at R records/s per CPU (1000). Every
 * MS ms (20), for each CPU: GET_CURSOR, FLUSH(cpu), GET_CURSOR. With a low
 * rate a sub-buffer never fills between two flushes, so each FLUSH that
 * found data must raise `produced` by exactly one before it returns, and
 * that sub-buffer's header must say RELAYMAP_SB_FLUSHED with events in it
 * and room left for at least one more record (content_size / 8 + 64 <=
 * subbuf_size). Everything is drained and
 * verified as it goes. At the end (lg_stop, FLUSH(all)) the stream must be
 * complete (received == loadgen written, seq order, checksums), GET_STATS
 * flushes == FLUSHED headers, and a FLUSH with nothing written must not
 * produce an empty sub-buffer.
 *
 * With --rate 0 (full speed) sub-buffers also fill between flushes, so
 * only the totals are checked (some FLUSHED partial sub-buffers, stream
 * intact).
 */
#include "rmtest.h"

int main(int argc, char **argv)
{
	const char *name = NULL;
	uint64_t rate = 1000, iterations = 150, interval_ms = 20;
	struct rm_chan ch;
	struct rm_drain d[RM_MAXCPU];
	struct lg_status lg;
	uint64_t calls = 0, advanced = 0, noop = 0, multi = 0, bad_hdr = 0;
	uint64_t lat_sum = 0, lat_max = 0, flushed_hdrs = 0, partial = 0;
	uint64_t t0 = rm_now_ns();
	bool strict;

	rm_init(argv[0], 600);
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!strcmp(a, "-n"))
			name = v;
		else if (!strcmp(a, "--rate"))
			rate = rm_argu(a, v);
		else if (!strcmp(a, "--iterations"))
			iterations = rm_argu(a, v);
		else if (!strcmp(a, "--interval-ms"))
			interval_ms = rm_argu(a, v);
		else
			rm_die("unknown option %s", a);
		i++;
	}
	if (!name)
		rm_die("usage: rmck_flush -n NAME [--rate R] [--iterations N] [--interval-ms MS]");
	rm_open(&ch, name, RM_OPEN_MAP);
	if (!lg_present())
		rm_die("relaymap_loadgen is not loaded");
	/* Records one sub-buffer holds vs records written between two flushes. */
	strict = rate > 0 &&
		 rate * interval_ms * 64 * 4 / 1000 < ch.info.subbuf_size - ch.info.header_size;
	rm_note("channel %s: subbuf_size=%llu n_subbufs=%llu cpus=%u rate=%llu iterations=%llu interval_ms=%llu per-flush checks=%s",
		name, (unsigned long long)ch.info.subbuf_size,
		(unsigned long long)ch.info.n_subbufs, ch.ncpus,
		(unsigned long long)rate, (unsigned long long)iterations,
		(unsigned long long)interval_ms, strict ? "strict" : "totals only");
	for (unsigned int i = 0; i < ch.ncpus; i++)
		rm_drain_init(&d[ch.cpus[i]], &ch, ch.cpus[i], 64);

	lg_set("channel", name);
	lg_set("mode", "lossless");
	lg_setu("record_size", 64);
	lg_setu("rate", rate);
	lg_setu("duration_ms", 0);
	lg_setu("count", 0);
	lg_start();
	rm_set_phase("flushing while writing");
	for (uint64_t it = 0; it < iterations; it++) {
		rm_sleep_ms(interval_ms);
		for (unsigned int i = 0; i < ch.ncpus; i++) {
			unsigned int c = ch.cpus[i];
			struct relaymap_cursor c0, c1;
			uint64_t t;

			rm_cursor_x(ch.ctl, c, &c0);
			/* Read what filled up by itself first, so the flush is alone. */
			rm_drain_to(&ch, &d[c], c0.produced);
			t = rm_now_ns();
			rm_flush_x(ch.ctl, (int)c);
			t = rm_now_ns() - t;
			lat_sum += t;
			if (t > lat_max)
				lat_max = t;
			calls++;
			rm_cursor_x(ch.ctl, c, &c1);
			if (c1.produced == c0.produced) {
				noop++;
			} else {
				struct relaymap_subbuf_header h;
				char why[512];

				advanced++;
				if (c1.produced != c0.produced + 1)
					multi++;
				rm_hdr_read(rm_hdr(&ch, c, c1.produced - 1), &h);
				if (rm_hdr_check(&ch, c, c1.produced - 1, &h, why, sizeof(why))) {
					bad_hdr++;
					rm_bad("header after FLUSH: %s", why);
				} else if (strict &&
					   (!(h.flags & RELAYMAP_SB_FLUSHED) ||
					    rm_events_len(&h) == 0 ||
					    rm_events_len(&h) + 64 > ch.info.subbuf_size - ch.info.header_size)) {
					bad_hdr++;
					rm_bad("cpu %u sub-buffer %llu closed by FLUSH: flags=%#x events=%llu bytes (want FLUSHED, 0 < events <= %llu - 64)",
					       c, (unsigned long long)(c1.produced - 1),
					       h.flags, (unsigned long long)rm_events_len(&h),
					       (unsigned long long)(ch.info.subbuf_size - ch.info.header_size));
				}
			}
			rm_drain_to(&ch, &d[c], c1.produced);
		}
	}
	lg_stop();
	rm_set_phase("final");
	rm_flush_x(ch.ctl, RELAYMAP_ALL_CPUS);
	lg_read_status(&lg);
	for (unsigned int i = 0; i < ch.ncpus; i++) {
		unsigned int c = ch.cpus[i];
		struct lg_cpu_status l = lg_cpu(&lg, c);
		struct relaymap_cursor cur, again;
		struct relaymap_stats st;

		rm_drain_once(&ch, &d[c]);
		rm_drain_print(&d[c]);
		rm_cursor_x(ch.ctl, c, &cur);
		rm_stats_x(ch.ctl, (int)c, &st);
		rm_note("cpu %u: loadgen written=%llu dropped=%llu; kernel produced=%llu flushes=%llu",
			c, (unsigned long long)l.written,
			(unsigned long long)l.dropped,
			(unsigned long long)cur.produced,
			(unsigned long long)st.flushes);
		RM_EXPECT_EQ("records received == loadgen written", d[c].st.records, l.written);
		RM_EXPECT_EQ("first record seq", d[c].st.first_seq, 0);
		RM_EXPECT_EQ("seq gaps (lossless)", d[c].st.gap_records, 0);
		RM_EXPECT_EQ("record errors", rm_stream_errors(&d[c].st), 0);
		RM_EXPECT_EQ("header violations", d[c].hdr_violations, 0);
		RM_EXPECT_EQ("kernel records_dropped (lossless)", cur.records_dropped, 0);
		RM_EXPECT_EQ("stats.flushes == FLUSHED headers seen", st.flushes, d[c].flushed_sbs);
		RM_EXPECT_EQ("drained (consumed == produced)", cur.consumed, cur.produced);
		/* Nothing written since: FLUSH must not close an empty sub-buffer. */
		rm_flush_x(ch.ctl, (int)c);
		rm_flush_x(ch.ctl, RELAYMAP_ALL_CPUS);
		rm_cursor_x(ch.ctl, c, &again);
		RM_EXPECT_EQ("produced after FLUSH with nothing written", again.produced, cur.produced);
		flushed_hdrs += d[c].flushed_sbs;
		partial += d[c].flushed_partial;
	}
	rm_note("SUMMARY flush_calls=%llu advanced=%llu noop=%llu more_than_one=%llu bad_headers=%llu flushed_subbufs=%llu flushed_partial=%llu flush_latency_avg_us=%.0f max_us=%.0f elapsed_s=%.2f",
		(unsigned long long)calls, (unsigned long long)advanced,
		(unsigned long long)noop, (unsigned long long)multi,
		(unsigned long long)bad_hdr, (unsigned long long)flushed_hdrs,
		(unsigned long long)partial,
		calls ? (double)lat_sum / (double)calls / 1e3 : 0.0,
		(double)lat_max / 1e3, rm_secs_since(t0));
	if (strict) {
		/* At R records/s and MS ms between flushes almost every flush finds data. */
		if (advanced * 10 < calls * 8)
			rm_bad("only %llu of %llu FLUSH calls made a sub-buffer visible (want >= 80%%)",
			       (unsigned long long)advanced, (unsigned long long)calls);
		RM_EXPECT_EQ("FLUSH raised produced by more than one", multi, 0);
	}
	if (partial == 0)
		rm_bad("no partial sub-buffer closed by FLUSH was seen");
	rm_close(&ch);
	return rm_exit();
}

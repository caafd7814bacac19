/* SPDX-License-Identifier: MIT */
/*
 * rmck_consume - run the load generator into a relaymap channel and consume
 * every CPU buffer through the mmap ABI, one thread per buffer, checking
 * every header at first sight and every record, then compare what was
 * received with the load generator's and the kernel's counts.
 *
 *   rmck_consume -n NAME [options]
 *     --mode lossless|drop   loadgen mode and what is expected (lossless)
 *     --count N              records per CPU (loadgen count); else --duration-ms
 *     --duration-ms D        run the loadgen D ms (when --count is 0)
 *     --record-size S        loadgen record_size (64)
 *     --rate R               loadgen rate per CPU (0 = full speed)
 *     --method M             loadgen method (api)
 *     --pin cross|none       pin the thread reading cpu c to another CPU (cross)
 *     --wait spin|poll       how a consumer waits for data (poll)
 *     --pause-ms P           consumers wait P ms before reading anything
 *     --delay-us U           consumers sleep U us per sub-buffer (slow consumer)
 *     --flushes N            a flusher thread issues N FLUSHes while writers run
 *     --flush-interval-us U  ... sleeping U us between two (default: 200 us every 8)
 *     --min-subbufs N        fail unless at least N sub-buffers were read in all
 *     --reset                RESET the channel first (a used channel, writers stopped)
 *     --offline-before-flush C  after lg_stop, take CPU C offline, then FLUSH(all)
 *                            (its partial sub-buffer is closed from another CPU)
 *
 * Checks (per CPU): every header valid when first read (no stale header),
 * records in seq order with valid checksum and fill, received == loadgen
 * written, missing seqs == loadgen dropped == kernel records_dropped
 * (lossless: all 0), header drop accounting, GET_STATS == GET_CURSOR ==
 * what was read, stats total == sum of CPUs, FLUSHED headers == flushes.
 */
#include "rmtest.h"

static struct rm_chan ch;
static struct rm_drain drains[RM_MAXCPU];
static pthread_t threads[RM_MAXCPU];
static unsigned int pin_cpu[RM_MAXCPU];

static bool opt_pin = true, opt_spin;
static uint64_t opt_pause_ms, opt_delay_us;
static uint64_t final_target[RM_MAXCPU];
static int stop_flag; /* 1: targets set, drain up to them and exit */

static uint64_t flushes_wanted, flushes_done, flush_errors, flush_interval_us;

static void *consumer(void *arg)
{
	struct rm_drain *d = arg;
	unsigned int cpu = d->cpu;
	struct pollfd pfd = { .fd = ch.fd[cpu], .events = POLLIN };

	if (opt_pin)
		rm_pin(pin_cpu[cpu]);
	if (opt_pause_ms)
		rm_sleep_ms(opt_pause_ms);
	for (;;) {
		uint64_t got;

		if (__atomic_load_n(&stop_flag, __ATOMIC_ACQUIRE)) {
			if (d->consumed >= final_target[cpu])
				break;
		}
		got = rm_drain_once(&ch, d);
		if (got)
			continue;
		if (opt_spin)
			continue;
		/* relay wakes pollers at a switch; the published count may lag. */
		if (poll(&pfd, 1, 10) < 0 && errno != EINTR)
			rm_die("poll cpu%u: %s", cpu, strerror(errno));
	}
	return NULL;
}

static void *flusher(void *arg)
{
	unsigned int i = 0;

	(void)arg;
	while (flushes_done < flushes_wanted) {
		/* Rotate: cpu0, cpu1, ..., all. */
		int target = (i % (ch.ncpus + 1)) == ch.ncpus ?
				     RELAYMAP_ALL_CPUS :
				     (int)ch.cpus[i % (ch.ncpus + 1)];
		int err = rm_flush(ch.ctl, target);

		if (err) {
			flush_errors++;
			if (flush_errors < 5)
				rm_bad("FLUSH(%d) while writing: %s", target,
				       strerror(-err));
		}
		flushes_done++;
		i++;
		if (flush_interval_us)
			rm_sleep_us(flush_interval_us);
		else if ((i & 7) == 0)
			rm_sleep_us(200);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	const char *name = NULL, *mode = "lossless", *method = NULL;
	uint64_t count = 0, duration_ms = 0, record_size = 64, rate = 0;
	uint64_t min_subbufs = 1;
	bool lossless, reset = false;
	int offline_cpu = -1;
	pthread_t fl;
	struct lg_status lg;
	struct relaymap_stats tot, sum;
	uint64_t t0, t_write, n_subbufs_all = 0, records_all = 0;
	uint64_t drops_all = 0, flushed_hdrs = 0, gap_all = 0;
	double elapsed;

	rm_init(argv[0], 0);
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!strcmp(a, "-n")) {
			name = v; i++;
		} else if (!strcmp(a, "--mode")) {
			mode = v; i++;
		} else if (!strcmp(a, "--count")) {
			count = rm_argu(a, v); i++;
		} else if (!strcmp(a, "--duration-ms")) {
			duration_ms = rm_argu(a, v); i++;
		} else if (!strcmp(a, "--record-size")) {
			record_size = rm_argu(a, v); i++;
		} else if (!strcmp(a, "--rate")) {
			rate = rm_argu(a, v); i++;
		} else if (!strcmp(a, "--method")) {
			method = v; i++;
		} else if (!strcmp(a, "--pin")) {
			if (!v || (strcmp(v, "cross") && strcmp(v, "none")))
				rm_die("--pin cross|none");
			opt_pin = !strcmp(v, "cross"); i++;
		} else if (!strcmp(a, "--wait")) {
			if (!v || (strcmp(v, "spin") && strcmp(v, "poll")))
				rm_die("--wait spin|poll");
			opt_spin = !strcmp(v, "spin"); i++;
		} else if (!strcmp(a, "--pause-ms")) {
			opt_pause_ms = rm_argu(a, v); i++;
		} else if (!strcmp(a, "--delay-us")) {
			opt_delay_us = rm_argu(a, v); i++;
		} else if (!strcmp(a, "--flushes")) {
			flushes_wanted = rm_argu(a, v); i++;
		} else if (!strcmp(a, "--flush-interval-us")) {
			flush_interval_us = rm_argu(a, v); i++;
		} else if (!strcmp(a, "--min-subbufs")) {
			min_subbufs = rm_argu(a, v); i++;
		} else if (!strcmp(a, "--reset")) {
			reset = true;
		} else if (!strcmp(a, "--offline-before-flush")) {
			offline_cpu = (int)rm_argu(a, v); i++;
		} else {
			rm_die("unknown option %s", a);
		}
	}
	if (!name)
		rm_die("usage: rmck_consume -n NAME [options] (see source)");
	if (strcmp(mode, "lossless") && strcmp(mode, "drop"))
		rm_die("--mode lossless|drop");
	if (!count && !duration_ms)
		rm_die("need --count or --duration-ms");
	lossless = !strcmp(mode, "lossless");
	/* The watchdog: generous, the harness has its own timeout. */
	alarm(count ? 1800 : (unsigned int)(duration_ms / 1000) + 300);

	rm_set_phase("open");
	rm_open(&ch, name, RM_OPEN_MAP);
	if (!lg_present())
		rm_die("relaymap_loadgen is not loaded");
	rm_note("channel %s: subbuf_size=%llu n_subbufs=%llu cpus=%u mode=%s count=%llu duration_ms=%llu record_size=%llu rate=%llu pin=%s wait=%s pause_ms=%llu delay_us=%llu flushes=%llu",
		name, (unsigned long long)ch.info.subbuf_size,
		(unsigned long long)ch.info.n_subbufs, ch.ncpus, mode,
		(unsigned long long)count, (unsigned long long)duration_ms,
		(unsigned long long)record_size, (unsigned long long)rate,
		opt_pin ? "cross" : "none", opt_spin ? "spin" : "poll",
		(unsigned long long)opt_pause_ms,
		(unsigned long long)opt_delay_us,
		(unsigned long long)flushes_wanted);
	if (ch.info.flags & RELAYMAP_INFO_OVERWRITE)
		rm_die("channel is in overwrite mode; rmck_consume is for no-overwrite");

	if (reset) {
		int err = rm_reset(ch.ctl);

		if (err)
			rm_die("RESET before the run: %s", strerror(-err));
	}
	lg_set("channel", name);
	lg_set("mode", mode);
	lg_setu("record_size", record_size);
	lg_setu("rate", rate);
	lg_setu("count", count);
	lg_setu("duration_ms", 0);
	if (method)
		lg_set("method", method);

	for (unsigned int i = 0; i < ch.ncpus; i++) {
		unsigned int c = ch.cpus[i];
		struct rm_drain *d = &drains[c];

		rm_drain_init(d, &ch, c, (uint32_t)record_size);
		if (d->consumed != 0)
			rm_die("cpu %u: channel not fresh (consumed=%llu)", c,
			       (unsigned long long)d->consumed);
		d->delay_us = opt_delay_us;
		d->peek_open = opt_spin;
		d->check_drop_count = true;
		/* The reader of cpu c runs on another CPU than its writer. */
		pin_cpu[c] = rm_other_online_cpu(c);
		if (pthread_create(&threads[c], NULL, consumer, d))
			rm_die("pthread_create");
	}

	rm_set_phase("loadgen running");
	t0 = rm_now_ns();
	lg_start();
	if (flushes_wanted && pthread_create(&fl, NULL, flusher, NULL))
		rm_die("pthread_create flusher");
	if (count) {
		if (!lg_wait_idle(1500 * 1000))
			rm_die("loadgen did not finish %llu records per CPU",
			       (unsigned long long)count);
	} else {
		rm_sleep_ms(duration_ms);
	}
	if (flushes_wanted) {
		/* Writers keep running until the flusher has issued them all. */
		pthread_join(fl, NULL);
		lg_read_status(&lg);
		rm_note("flusher done after %.2f s, loadgen %s", rm_secs_since(t0),
			lg.running ? "still running" : "already idle");
	}
	lg_stop();
	t_write = rm_now_ns() - t0;

	/* Final counts now: the status lists online CPUs only. */
	lg_read_status(&lg);
	if (offline_cpu >= 0) {
		char path[96];
		int err;

		/* FLUSH(all) then closes that CPU's open sub-buffer from another CPU. */
		rm_set_phase("offline cpu%d before the final flush", offline_cpu);
		snprintf(path, sizeof(path), "/sys/devices/system/cpu/cpu%d/online", offline_cpu);
		err = rm_write_text(path, "0");
		if (err)
			rm_die("echo 0 > %s: %s", path, strerror(-err));
		rm_note("cpu%d offline before the final FLUSH(all)", offline_cpu);
	}
	rm_set_phase("final flush and drain");
	rm_flush_x(ch.ctl, RELAYMAP_ALL_CPUS);
	for (unsigned int i = 0; i < ch.ncpus; i++) {
		struct relaymap_cursor cur;

		rm_cursor_x(ch.ctl, ch.cpus[i], &cur);
		final_target[ch.cpus[i]] = cur.produced;
	}
	__atomic_store_n(&stop_flag, 1, __ATOMIC_RELEASE);
	for (unsigned int i = 0; i < ch.ncpus; i++)
		pthread_join(threads[ch.cpus[i]], NULL);
	elapsed = rm_secs_since(t0);

	rm_set_phase("checks");
	if (lg.running)
		rm_bad("loadgen still running after stop");
	memset(&sum, 0, sizeof(sum));
	for (unsigned int i = 0; i < ch.ncpus; i++) {
		unsigned int c = ch.cpus[i];
		struct rm_drain *d = &drains[c];
		struct rm_stream *st = &d->st;
		struct lg_cpu_status l = lg_cpu(&lg, c);
		struct relaymap_cursor cur;
		struct relaymap_stats cs;
		uint64_t missing, tail;

		rm_drain_print(d);
		rm_note("cpu %u: loadgen attempts=%llu written=%llu dropped=%llu",
			c, (unsigned long long)l.attempts,
			(unsigned long long)l.written,
			(unsigned long long)l.dropped);
		rm_cursor_x(ch.ctl, c, &cur);
		rm_stats_x(ch.ctl, (int)c, &cs);
		rm_note("cpu %u: kernel produced=%llu consumed=%llu records_dropped=%llu lapped=%llu; stats written=%llu bytes=%llu dropped=%llu produced=%llu consumed=%llu flushes=%llu",
			c, (unsigned long long)cur.produced,
			(unsigned long long)cur.consumed,
			(unsigned long long)cur.records_dropped,
			(unsigned long long)cur.subbufs_lapped,
			(unsigned long long)cs.records_written,
			(unsigned long long)cs.bytes_written,
			(unsigned long long)cs.records_dropped,
			(unsigned long long)cs.subbufs_produced,
			(unsigned long long)cs.subbufs_consumed,
			(unsigned long long)cs.flushes);

		if (!lg_has_cpu(&lg, c)) {
			/* Offline when loadgen started: no writer there. */
			rm_note("cpu %u: no loadgen thread (CPU offline at start)", c);
			RM_EXPECT_EQ("records from a CPU without a writer", st->records, 0);
			RM_EXPECT_EQ("record errors", rm_stream_errors(st), 0);
			RM_EXPECT_EQ("stale/invalid headers", d->hdr_violations, 0);
			n_subbufs_all += d->subbufs;
			sum.records_written += cs.records_written;
			sum.bytes_written += cs.bytes_written;
			sum.records_dropped += cs.records_dropped;
			sum.subbufs_produced += cs.subbufs_produced;
			sum.subbufs_consumed += cs.subbufs_consumed;
			sum.subbufs_lapped += cs.subbufs_lapped;
			sum.flushes += cs.flushes;
			continue;
		}
		if (l.attempts == 0)
			rm_bad("cpu %u: loadgen reports no attempts", c);
		if (count)
			RM_EXPECT_EQ("loadgen attempts (== count)", l.attempts, count);
		RM_EXPECT_EQ("loadgen attempts == written + dropped", l.attempts,
			     l.written + l.dropped);
		/* Every record the kernel accepted reached the consumer once. */
		RM_EXPECT_EQ("records received == loadgen written", st->records,
			     l.written);
		if (st->records && st->first_seq != 0)
			rm_bad("cpu %u: first record seq %llu, expected 0", c,
			       (unsigned long long)st->first_seq);
		missing = l.attempts - st->records;
		tail = l.attempts > st->next_seq ? l.attempts - st->next_seq : 0;
		if (st->next_seq > l.attempts)
			rm_bad("cpu %u: saw seq %llu but loadgen made only %llu attempts",
			       c, (unsigned long long)st->next_seq - 1,
			       (unsigned long long)l.attempts);
		RM_EXPECT_EQ("seq gaps inside stream + after last record == attempts - received",
			     st->gap_records + tail, missing);
		RM_EXPECT_EQ("kernel records_dropped (GET_CURSOR) == loadgen dropped",
			     cur.records_dropped, l.dropped);
		RM_EXPECT_EQ("records missing in seq == loadgen dropped", missing,
			     l.dropped);
		RM_EXPECT_EQ("stats records_dropped == cursor records_dropped",
			     cs.records_dropped, cur.records_dropped);
		RM_EXPECT_EQ("stats records_written == loadgen written",
			     cs.records_written, l.written);
		RM_EXPECT_EQ("stats subbufs_produced == cursor produced",
			     cs.subbufs_produced, cur.produced);
		RM_EXPECT_EQ("stats subbufs_consumed == cursor consumed",
			     cs.subbufs_consumed, cur.consumed);
		RM_EXPECT_EQ("all produced sub-buffers drained (produced == consumed)",
			     cur.produced, cur.consumed);
		RM_EXPECT_EQ("sub-buffers read == produced", d->subbufs,
			     cur.produced);
		RM_EXPECT_EQ("stats flushes == FLUSHED headers seen", cs.flushes,
			     d->flushed_sbs);
		RM_EXPECT_EQ("stale/invalid headers at first read", d->hdr_violations, 0);
		RM_EXPECT_EQ("timestamp errors (header/record order)", d->ts_errors, 0);
		/*
		 * No check on open_not_final: the writer may close that
		 * sub-buffer right after GET_CURSOR. It is a figure showing
		 * the header check does flag headers that are not final.
		 */
		RM_EXPECT_EQ("record errors (order/frame/type/cpu/checksum/fill)",
			     rm_stream_errors(st), 0);
		if (d->last_hdr_dropped > cur.records_dropped)
			rm_bad("cpu %u: last header records_dropped %llu > kernel total %llu",
			       c, (unsigned long long)d->last_hdr_dropped,
			       (unsigned long long)cur.records_dropped);
		if (lossless) {
			RM_EXPECT_EQ("lossless: loadgen dropped", l.dropped, 0);
			RM_EXPECT_EQ("lossless: kernel records_dropped",
				     cur.records_dropped, 0);
			RM_EXPECT_EQ("lossless: seq gaps", st->gap_records, 0);
			RM_EXPECT_EQ("lossless: headers with DROPS", d->drops_sbs, 0);
			RM_EXPECT_EQ("lossless: header records_dropped",
				     d->last_hdr_dropped, 0);
		}
		sum.records_written += cs.records_written;
		sum.bytes_written += cs.bytes_written;
		sum.records_dropped += cs.records_dropped;
		sum.subbufs_produced += cs.subbufs_produced;
		sum.subbufs_consumed += cs.subbufs_consumed;
		sum.subbufs_lapped += cs.subbufs_lapped;
		sum.flushes += cs.flushes;
		n_subbufs_all += d->subbufs;
		records_all += st->records;
		drops_all += cur.records_dropped;
		gap_all += st->gap_records;
		flushed_hdrs += d->flushed_sbs;
	}
	rm_stats_x(ch.ctl, RELAYMAP_ALL_CPUS, &tot);
	RM_EXPECT_EQ("stats(all).records_written == sum", tot.records_written, sum.records_written);
	RM_EXPECT_EQ("stats(all).bytes_written == sum", tot.bytes_written, sum.bytes_written);
	RM_EXPECT_EQ("stats(all).records_dropped == sum", tot.records_dropped, sum.records_dropped);
	RM_EXPECT_EQ("stats(all).subbufs_produced == sum", tot.subbufs_produced, sum.subbufs_produced);
	RM_EXPECT_EQ("stats(all).subbufs_consumed == sum", tot.subbufs_consumed, sum.subbufs_consumed);
	RM_EXPECT_EQ("stats(all).subbufs_lapped == sum", tot.subbufs_lapped, sum.subbufs_lapped);
	RM_EXPECT_EQ("stats(all).flushes == sum", tot.flushes, sum.flushes);
	{
		uint64_t lw = 0, ld = 0;

		for (unsigned int i = 0; i < lg.n; i++) {
			lw += lg.cpu[i].written;
			ld += lg.cpu[i].dropped;
		}
		RM_EXPECT_EQ("loadgen status: 'total written' == sum of its 'cpu N' lines", lg.written, lw);
		RM_EXPECT_EQ("loadgen status: 'total dropped' == sum of its 'cpu N' lines", lg.dropped, ld);
		RM_EXPECT_EQ("loadgen per-CPU written summed == kernel GET_STATS(all) records_written",
			     lw, tot.records_written);
	}
	if (n_subbufs_all < min_subbufs)
		rm_bad("only %llu sub-buffers read, the test needs >= %llu to mean anything",
		       (unsigned long long)n_subbufs_all,
		       (unsigned long long)min_subbufs);
	if (!lossless && drops_all == 0)
		rm_bad("drop mode: no record was dropped; the consumer was not slow enough to test anything");
	if (!lossless) {
		uint64_t drop_sbs = 0;

		for (unsigned int i = 0; i < ch.ncpus; i++)
			drop_sbs += drains[ch.cpus[i]].drops_sbs;
		if (drop_sbs == 0)
			rm_bad("drop mode: no sub-buffer header has RELAYMAP_SB_DROPS");
	}
	if (flushes_wanted) {
		RM_EXPECT_EQ("FLUSH errors while writing", flush_errors, 0);
		if (flushes_done < flushes_wanted)
			rm_bad("only %llu of %llu flushes issued while writers ran",
			       (unsigned long long)flushes_done,
			       (unsigned long long)flushes_wanted);
	}
	rm_note("SUMMARY mode=%s records=%llu subbufs=%llu dropped=%llu seq_gap_records=%llu flushes_issued=%llu flushed_subbufs=%llu write_phase_s=%.2f elapsed_s=%.2f records_per_s=%.0f",
		mode, (unsigned long long)records_all,
		(unsigned long long)n_subbufs_all,
		(unsigned long long)drops_all, (unsigned long long)gap_all,
		(unsigned long long)flushes_done,
		(unsigned long long)flushed_hdrs, (double)t_write / 1e9, elapsed,
		(double)records_all / ((double)t_write / 1e9));
	rm_close(&ch);
	return rm_exit();
}

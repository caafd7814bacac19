/* SPDX-License-Identifier: MIT */
/*
 * rmck_consume - run the load generator into a relaymap channel and consume
 * every CPU buffer through ABI 2 (/dev/relaymap, OPEN_CHANNEL,
 * OPEN_CONSUMER(ALL), mmap of each consumer fd, PUT_CONSUMED on it), one
 * thread per buffer, checking every header at first sight and every
 * record, then compare what was received with the load generator's and
 * the kernel's counts.
 *
 *   rmck_consume -n NAME [options]
 *     --mode lossless|drop   loadgen mode and what is expected (lossless)
 *     --count N              records per CPU (loadgen count); else --duration-ms
 *     --duration-ms D        run the loadgen D ms (when --count is 0)
 *     --record-size S|max    loadgen record_size (64); max = GET_INFO max_record_size
 *     --rate R               loadgen rate per CPU (0 = full speed)
 *     --method M             loadgen method (api); printf: relaymap_printf() text
 *                            records of varying length (record size not checked)
 *     --rejects R            loadgen rejects: R oversize writes per CPU first (each
 *                            also tried with try_write); all counted as rejected,
 *                            none as dropped
 *     --pin cross|none       pin the thread reading cpu c to another CPU (cross)
 *     --wait spin|poll       how a consumer waits for data (poll)
 *     --pause-ms P           consumers wait P ms before reading anything
 *     --delay-us U           consumers sleep U us per sub-buffer (slow consumer)
 *     --flushes N            a flusher thread issues N FLUSHes while writers run
 *     --flush-interval-us U  ... sleeping U us between two (default: 200 us every 8)
 *     --min-subbufs N        fail unless at least N sub-buffers were read in all
 *     --reset                RESET the channel first (a used channel, writers stopped,
 *                            no consumer fd open), then claim the CPUs
 *     --debugfs              use the legacy debugfs control file as the channel fd
 *     --offline-before-flush C  after lg_stop, take CPU C offline, then FLUSH(all)
 *                            (its partial sub-buffer is closed from another CPU)
 *     --block-ms B           lossless: consumers start only once every writer
 *                            found its buffer full and sleeps (loadgen waits >= 1);
 *                            for B ms the writers' CPU time and voluntary
 *                            context switches (/proc/PID/schedstat, status) must
 *                            not move and nothing may be written
 *     --no-busy-wait         lossless: every writer waited (waits >= 1), and slept
 *                            about once per wait (sleeps <= waits + 2): it sleeps
 *                            until the consumer hands back, never polls
 *
 * Checks (per CPU): every header valid when first read (no stale header),
 * records in seq order with valid checksum and fill, received == loadgen
 * written, missing seqs == loadgen dropped == kernel records_dropped
 * (lossless: all 0), header drop accounting (events_discarded, DROPS),
 * nothing rejected, GET_STATS == GET_CURSOR == what was read, bytes_written
 * == data bytes, stats total == sum of CPUs, FLUSHED headers == flushes.
 */
#include "rmtest.h"

#include <dirent.h>

static struct rm_chan ch;
static struct rm_drain drains[RM_MAXCPU];
static pthread_t threads[RM_MAXCPU];
static unsigned int pin_cpu[RM_MAXCPU];

static bool opt_pin = true, opt_spin, opt_no_busy_wait;
static uint64_t opt_pause_ms, opt_delay_us, opt_block_ms;
static int gate_closed; /* --block-ms: consumers wait until it is 0 */
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
	while (__atomic_load_n(&gate_closed, __ATOMIC_ACQUIRE))
		rm_sleep_ms(1);
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

/* The load generator's writer thread of @cpu ("relaymap_lg/CPU"), or 0. */
static pid_t lg_writer_pid(unsigned int cpu)
{
	char want[32], path[300], comm[64];
	struct dirent *de;
	pid_t pid = 0;
	DIR *d = opendir("/proc");

	if (!d)
		rm_die("opendir /proc: %s", strerror(errno));
	snprintf(want, sizeof(want), "relaymap_lg/%u", cpu);
	while (!pid && (de = readdir(d))) {
		if (de->d_name[0] < '0' || de->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%s/comm", de->d_name);
		if (rm_read_text(path, comm, sizeof(comm)))
			continue;
		comm[strcspn(comm, "\n")] = '\0';
		if (!strcmp(comm, want))
			pid = (pid_t)atoi(de->d_name);
	}
	closedir(d);
	return pid;
}

struct task_sample {
	uint64_t run_ns;	/* /proc/PID/schedstat: time on a CPU */
	uint64_t vcsw;		/* /proc/PID/status: voluntary_ctxt_switches */
	char state;		/* /proc/PID/stat */
};

static void task_sample(pid_t pid, struct task_sample *ts)
{
	char path[64], buf[4096], *p;
	unsigned long long run = 0;

	memset(ts, 0, sizeof(*ts));
	snprintf(path, sizeof(path), "/proc/%d/schedstat", (int)pid);
	if (rm_read_text(path, buf, sizeof(buf)) || sscanf(buf, "%llu", &run) != 1)
		rm_die("read %s (needs CONFIG_SCHED_INFO)", path);
	ts->run_ns = run;
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	if (rm_read_text(path, buf, sizeof(buf)) ||
	    !(p = strstr(buf, "voluntary_ctxt_switches:")))
		rm_die("read %s: no voluntary_ctxt_switches", path);
	ts->vcsw = strtoull(p + strlen("voluntary_ctxt_switches:"), NULL, 10);
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if (rm_read_text(path, buf, sizeof(buf)) || !(p = strrchr(buf, ')')) || !p[1])
		rm_die("read %s", path);
	ts->state = p[2];
}

/*
 * --block-ms: the writers filled their buffers and sleep for space; for
 * B ms nothing may move: no CPU time, no wakeup, no record.
 */
static void measure_blocked(void)
{
	struct task_sample a[RM_MAXCPU], b[RM_MAXCPU];
	pid_t pid[RM_MAXCPU] = { 0 };
	struct lg_status st0, st1;
	uint64_t t0 = rm_now_ns();
	bool all;

	rm_set_phase("writers blocked");
	/* Blocked: it began a wait for space (waits >= 1) and sleeps (S). */
	do {
		lg_read_status(&st0);
		all = st0.n > 0;
		for (unsigned int i = 0; i < st0.n && all; i++) {
			unsigned int c = st0.cpu[i].cpu;

			if (!pid[c])
				pid[c] = lg_writer_pid(c);
			all = pid[c] && st0.cpu[i].waits >= 1;
			if (all) {
				task_sample(pid[c], &a[c]);
				all = a[c].state == 'S';
			}
		}
		if (!all) {
			if (rm_secs_since(t0) > 120)
				rm_die("the writers did not block on a full buffer within 120 s");
			rm_sleep_ms(10);
		}
	} while (!all);
	for (unsigned int i = 0; i < st0.n; i++)
		task_sample(pid[st0.cpu[i].cpu], &a[st0.cpu[i].cpu]);
	lg_read_status(&st0);
	rm_sleep_ms(opt_block_ms);
	lg_read_status(&st1);
	for (unsigned int i = 0; i < st0.n; i++) {
		unsigned int c = st0.cpu[i].cpu;
		struct lg_cpu_status l0 = lg_cpu(&st0, c), l1 = lg_cpu(&st1, c);

		task_sample(pid[c], &b[c]);
		rm_note("cpu %u: writer pid %d blocked on a full buffer for %llu ms (state %c): CPU time %llu ns, voluntary context switches %llu, records written %llu -> %llu",
			c, (int)pid[c], (unsigned long long)opt_block_ms, b[c].state,
			(unsigned long long)(b[c].run_ns - a[c].run_ns),
			(unsigned long long)(b[c].vcsw - a[c].vcsw),
			(unsigned long long)l0.written, (unsigned long long)l1.written);
		RM_EXPECT_EQ("records written while blocked", l1.written, l0.written);
		if (b[c].state != 'S')
			rm_bad("cpu %u: blocked writer in state %c, not S (sleeping)", c, b[c].state);
		/* A sleeping task runs not at all; 1 ms and 2 switches of slack. */
		if (b[c].run_ns - a[c].run_ns > 1000000)
			rm_bad("cpu %u: blocked writer used %llu ns of CPU in %llu ms (busy-wait?)", c,
			       (unsigned long long)(b[c].run_ns - a[c].run_ns),
			       (unsigned long long)opt_block_ms);
		if (b[c].vcsw - a[c].vcsw > 2)
			rm_bad("cpu %u: blocked writer woke %llu times in %llu ms (polling?)", c,
			       (unsigned long long)(b[c].vcsw - a[c].vcsw),
			       (unsigned long long)opt_block_ms);
	}
	rm_set_phase("loadgen running");
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
	uint64_t min_subbufs = 1, rejects = 0;
	bool lossless, reset = false, use_debugfs = false, rs_max = false;
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
			if (v && !strcmp(v, "max"))
				rs_max = true;
			else
				record_size = rm_argu(a, v);
			i++;
		} else if (!strcmp(a, "--rate")) {
			rate = rm_argu(a, v); i++;
		} else if (!strcmp(a, "--method")) {
			method = v; i++;
		} else if (!strcmp(a, "--rejects")) {
			rejects = rm_argu(a, v); i++;
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
		} else if (!strcmp(a, "--debugfs")) {
			use_debugfs = true;
		} else if (!strcmp(a, "--offline-before-flush")) {
			offline_cpu = (int)rm_argu(a, v); i++;
		} else if (!strcmp(a, "--block-ms")) {
			opt_block_ms = rm_argu(a, v); i++;
		} else if (!strcmp(a, "--no-busy-wait")) {
			opt_no_busy_wait = true;
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
	if ((opt_block_ms || opt_no_busy_wait) && !lossless)
		rm_die("--block-ms and --no-busy-wait are for --mode lossless");
	gate_closed = opt_block_ms > 0;
	/* The watchdog: generous, the harness has its own timeout. */
	alarm(count ? 1800 : (unsigned int)(duration_ms / 1000) + 300);

	rm_set_phase("open");
	rm_open(&ch, name, use_debugfs ? RM_OPEN_DEBUGFS : 0);
	if (rs_max)
		record_size = ch.info.max_record_size;
	if (reset) {
		/* Before the claim: RESET is EBUSY while a consumer fd is open. */
		int err = rm_chan_reset(&ch);

		if (err)
			rm_die("RESET before the run: %s", strerror(-err));
	}
	rm_claim(&ch, RM_OPEN_MAP);
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
	if (record_size < RM_LG_MIN_RECORD || record_size > ch.info.max_record_size)
		rm_die("record size %llu outside [%zu, max_record_size %u]",
		       (unsigned long long)record_size, RM_LG_MIN_RECORD,
		       ch.info.max_record_size);

	lg_set("channel", name);
	lg_set("mode", mode);
	lg_setu("record_size", record_size);
	lg_setu("rate", rate);
	lg_setu("count", count);
	lg_setu("duration_ms", 0);
	if (method)
		lg_set("method", method);
	if (rejects || access(LG_PARAMS "/rejects", F_OK) == 0)
		lg_setu("rejects", rejects);

	for (unsigned int i = 0; i < ch.ncpus; i++) {
		unsigned int c = ch.cpus[i];
		struct rm_drain *d = &drains[c];

		rm_drain_init(d, &ch, c, (uint32_t)record_size);
		if (d->consumed != 0)
			rm_die("cpu %u: channel not fresh (consumed=%llu)", c,
			       (unsigned long long)d->consumed);
		d->delay_us = opt_delay_us;
		if (method && !strcmp(method, "printf")) {
			d->st.printf_method = true;
			d->st.record_size = 0;
		}
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
	if (opt_block_ms) {
		measure_blocked();
		__atomic_store_n(&gate_closed, 0, __ATOMIC_RELEASE);
	}
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
		rm_note("cpu %u: loadgen attempts=%llu written=%llu dropped=%llu rejected=%llu waits=%llu sleeps=%llu wait_us=%llu cpu_us=%llu",
			c, (unsigned long long)l.attempts,
			(unsigned long long)l.written,
			(unsigned long long)l.dropped,
			(unsigned long long)l.rejected,
			(unsigned long long)l.waits,
			(unsigned long long)l.sleeps,
			(unsigned long long)l.wait_us,
			(unsigned long long)l.cpu_us);
		if (opt_no_busy_wait && lg_has_cpu(&lg, c)) {
			if (l.waits == 0)
				rm_bad("cpu %u: the writer never waited for space: the consumer was not slow enough to test anything",
				       c);
			if (l.sleeps > l.waits + 2)
				rm_bad("cpu %u: %llu sleeps in %llu waits for space: woken without room (polling?)",
				       c, (unsigned long long)l.sleeps,
				       (unsigned long long)l.waits);
		}
		rm_cursor_x(ch.ctl, c, &cur);
		rm_stats_x(ch.ctl, (int)c, &cs);
		rm_note("cpu %u: kernel produced=%llu consumed=%llu records_dropped=%llu records_rejected=%llu lapped=%llu flags=%#x holder_pid=%d; stats written=%llu bytes=%llu dropped=%llu rejected=%llu produced=%llu consumed=%llu flushes=%llu",
			c, (unsigned long long)cur.produced,
			(unsigned long long)cur.consumed,
			(unsigned long long)cur.records_dropped,
			(unsigned long long)cur.records_rejected,
			(unsigned long long)cur.subbufs_lapped, cur.flags,
			cur.holder_pid,
			(unsigned long long)cs.records_written,
			(unsigned long long)cs.bytes_written,
			(unsigned long long)cs.records_dropped,
			(unsigned long long)cs.records_rejected,
			(unsigned long long)cs.subbufs_produced,
			(unsigned long long)cs.subbufs_consumed,
			(unsigned long long)cs.flushes);
		/* We hold every CPU: the cursor names this process. */
		if (!(cur.flags & RELAYMAP_CURSOR_HELD) || cur.holder_pid != getpid())
			rm_bad("cpu %u: GET_CURSOR flags=%#x holder_pid=%d while this process (pid %d) holds it",
			       c, cur.flags, cur.holder_pid, (int)getpid());

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
			sum.records_rejected += cs.records_rejected;
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
		RM_EXPECT_EQ("stats bytes_written == data bytes of the records received",
			     cs.bytes_written, st->data_bytes);
		if (!st->printf_method)
			RM_EXPECT_EQ("stats bytes_written == records written * data bytes (record_size - 16)",
				     cs.bytes_written, l.written * (record_size - RM_REC_HDR));
		else
			RM_EXPECT_EQ("printf records received == records received", st->printf_records,
				     st->records);
		/* Oversize writes: counted as rejected (relaymap_write), never as dropped. */
		RM_EXPECT_EQ("kernel records_rejected == oversize relaymap_write()s (try_write ones count nowhere)",
			     cur.records_rejected, rejects);
		RM_EXPECT_EQ("loadgen rejected == kernel records_rejected", l.rejected,
			     cur.records_rejected);
		RM_EXPECT_EQ("stats records_rejected == cursor records_rejected",
			     cs.records_rejected, cur.records_rejected);
		RM_EXPECT_EQ("last header events_rejected == kernel records_rejected",
			     d->last_hdr_rejected, cur.records_rejected);
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
			rm_bad("cpu %u: last header events_discarded %llu > kernel total %llu",
			       c, (unsigned long long)d->last_hdr_dropped,
			       (unsigned long long)cur.records_dropped);
		if (lossless) {
			RM_EXPECT_EQ("lossless: loadgen dropped", l.dropped, 0);
			RM_EXPECT_EQ("lossless: kernel records_dropped",
				     cur.records_dropped, 0);
			RM_EXPECT_EQ("lossless: seq gaps", st->gap_records, 0);
			RM_EXPECT_EQ("lossless: headers with DROPS", d->drops_sbs, 0);
			RM_EXPECT_EQ("lossless: header events_discarded",
				     d->last_hdr_dropped, 0);
		}
		sum.records_rejected += cs.records_rejected;
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
	RM_EXPECT_EQ("stats(all).records_rejected == sum", tot.records_rejected, sum.records_rejected);
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
	if (method && !strcmp(method, "printf")) {
		uint64_t unaligned = 0;

		for (unsigned int i = 0; i < ch.ncpus; i++)
			unaligned += drains[ch.cpus[i]].st.unaligned_ends;
		rm_note("printf: %llu sub-buffers whose content ends off the 8-byte grid (content_size exact to the byte)",
			(unsigned long long)unaligned);
		if (unaligned == 0)
			rm_bad("printf method: no sub-buffer ended off the 8-byte grid; the exact content_size end was not exercised");
	}
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

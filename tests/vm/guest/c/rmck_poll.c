/* SPDX-License-Identifier: MIT */
/*
 * rmck_poll - poll() on a consumer fd (OPEN_CONSUMER(ALL) of the channel).
 *
 *   rmck_poll -n NAME [--rate R] [--wakeups N]
 *
 * 1. The load generator writes R records/s per CPU (2000): a sub-buffer
 *    fills every few hundred ms. For every CPU, N times: drain everything,
 *    then poll(POLLIN, 5 s). poll must wake up (no timeout), most waits
 *    must really have blocked (> 5 ms), and after the wakeup GET_CURSOR
 *    must show a new sub-buffer (allowing a short lag: relay wakes the
 *    reader before the module publishes the header).
 * 2. With data present and not consumed, poll(timeout 0) reports POLLIN.
 * 3. After lg_stop, FLUSH(all) and a full drain, poll(300 ms) times out
 *    (returns 0 after >= 300 ms) on every consumer fd.
 * 4. The load generator writes 20 records/s (a sub-buffer would take
 *    minutes to fill): a reader blocked in poll(5 s) is woken by a FLUSH
 *    of its CPU issued 200 ms later from another thread.
 */
#include "rmtest.h"

static struct rm_chan ch;
static unsigned int flush_cpu;

static void *late_flusher(void *arg)
{
	(void)arg;
	rm_sleep_ms(200);
	rm_flush_x(ch.ctl, (int)flush_cpu);
	return NULL;
}

int main(int argc, char **argv)
{
	const char *name = NULL;
	uint64_t rate = 2000, wakeups = 10, flush_woke = 0;
	struct rm_drain d[RM_MAXCPU];
	uint64_t woke = 0, blocked = 0, lag = 0, wait_sum = 0, wait_max = 0;
	uint64_t t0 = rm_now_ns();

	rm_init(argv[0], 300);
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!strcmp(a, "-n"))
			name = v;
		else if (!strcmp(a, "--rate"))
			rate = rm_argu(a, v);
		else if (!strcmp(a, "--wakeups"))
			wakeups = rm_argu(a, v);
		else
			rm_die("unknown option %s", a);
		i++;
	}
	if (!name || !rate)
		rm_die("usage: rmck_poll -n NAME [--rate R (> 0)] [--wakeups N]");
	rm_open(&ch, name, RM_OPEN_MAP);
	if (!lg_present())
		rm_die("relaymap_loadgen is not loaded");
	rm_note("channel %s: subbuf_size=%llu n_subbufs=%llu cpus=%u rate=%llu wakeups=%llu per CPU",
		name, (unsigned long long)ch.info.subbuf_size,
		(unsigned long long)ch.info.n_subbufs, ch.ncpus,
		(unsigned long long)rate, (unsigned long long)wakeups);
	for (unsigned int i = 0; i < ch.ncpus; i++)
		rm_drain_init(&d[ch.cpus[i]], &ch, ch.cpus[i], 64);

	lg_set("channel", name);
	lg_set("mode", "lossless");
	lg_setu("record_size", 64);
	lg_setu("rate", rate);
	lg_setu("duration_ms", 0);
	lg_setu("count", 0);
	lg_start();

	for (unsigned int i = 0; i < ch.ncpus; i++) {
		unsigned int c = ch.cpus[i];

		rm_set_phase("wakeups cpu%u", c);
		for (uint64_t k = 0; k < wakeups; k++) {
			struct pollfd pfd = { .fd = ch.fd[c], .events = POLLIN };
			struct relaymap_cursor cur;
			uint64_t t, w;
			int pr;

			rm_drain_once(&ch, &d[c]);
			t = rm_now_ns();
			pr = poll(&pfd, 1, 5000);
			w = rm_now_ns() - t;
			if (pr < 0)
				rm_die("poll cpu%u: %s", c, strerror(errno));
			if (pr == 0) {
				rm_bad("cpu%u: poll timed out after 5 s although loadgen writes %llu records/s",
				       c, (unsigned long long)rate);
				continue;
			}
			if (!(pfd.revents & POLLIN)) {
				rm_bad("cpu%u: poll returned revents %#x without POLLIN", c,
				       pfd.revents);
				continue;
			}
			woke++;
			wait_sum += w;
			if (w > wait_max)
				wait_max = w;
			if (w > 5000000)
				blocked++;
			/* A new sub-buffer must be (or very soon be) published. */
			for (int spin = 0;; spin++) {
				rm_cursor_x(ch.ctl, c, &cur);
				if (cur.produced > d[c].consumed)
					break;
				if (spin == 0)
					lag++;
				if (spin > 2000) {
					rm_bad("cpu%u: poll said POLLIN but produced stayed %llu == consumed for 2 s",
					       c, (unsigned long long)cur.produced);
					break;
				}
				rm_sleep_ms(1);
			}
		}
	}

	rm_set_phase("ready without consuming");
	rm_flush_x(ch.ctl, RELAYMAP_ALL_CPUS);
	for (unsigned int i = 0; i < ch.ncpus; i++) {
		unsigned int c = ch.cpus[i];
		struct pollfd pfd = { .fd = ch.fd[c], .events = POLLIN };
		struct relaymap_cursor cur;

		rm_cursor_x(ch.ctl, c, &cur);
		if (cur.produced == cur.consumed)
			continue; /* nothing pending right now */
		if (poll(&pfd, 1, 0) != 1 || !(pfd.revents & POLLIN))
			rm_bad("cpu%u: %llu sub-buffers pending but poll(0) revents=%#x",
			       c, (unsigned long long)(cur.produced - cur.consumed),
			       pfd.revents);
	}

	lg_stop();
	rm_set_phase("timeout when idle");
	rm_flush_x(ch.ctl, RELAYMAP_ALL_CPUS);
	for (unsigned int i = 0; i < ch.ncpus; i++) {
		unsigned int c = ch.cpus[i];
		struct pollfd pfd = { .fd = ch.fd[c], .events = POLLIN };
		uint64_t t;
		int pr;

		rm_drain_once(&ch, &d[c]);
		t = rm_now_ns();
		pr = poll(&pfd, 1, 300);
		t = rm_now_ns() - t;
		rm_note("cpu%u: idle poll(300 ms) returned %d revents=%#x after %.0f ms",
			c, pr, pr > 0 ? pfd.revents : 0, (double)t / 1e6);
		if (pr != 0)
			rm_bad("cpu%u: poll with nothing written and everything consumed returned %d (revents %#x), expected a timeout",
			       c, pr, pfd.revents);
		else if (t < 290000000ULL)
			rm_bad("cpu%u: poll timed out after %.0f ms, before its 300 ms", c,
			       (double)t / 1e6);
		rm_drain_print(&d[c]);
		RM_EXPECT_EQ("seq gaps (lossless)", d[c].st.gap_records, 0);
		RM_EXPECT_EQ("record errors", rm_stream_errors(&d[c].st), 0);
		RM_EXPECT_EQ("header violations", d[c].hdr_violations, 0);
	}
	rm_set_phase("FLUSH wakes a poller");
	/* loadgen restarts seq at 0 at each start: new streams. */
	for (unsigned int i = 0; i < ch.ncpus; i++)
		rm_drain_init(&d[ch.cpus[i]], &ch, ch.cpus[i], 64);
	lg_setu("rate", 20);
	lg_start();
	rm_sleep_ms(300); /* a few records on each CPU, far from a full sub-buffer */
	for (unsigned int i = 0; i < ch.ncpus; i++) {
		unsigned int c = ch.cpus[i];
		struct pollfd pfd = { .fd = ch.fd[c], .events = POLLIN };
		pthread_t th;
		uint64_t t;
		int pr;

		rm_drain_once(&ch, &d[c]);
		flush_cpu = c;
		if (pthread_create(&th, NULL, late_flusher, NULL))
			rm_die("pthread_create");
		t = rm_now_ns();
		pr = poll(&pfd, 1, 5000);
		t = rm_now_ns() - t;
		pthread_join(th, NULL);
		rm_note("cpu%u: poll with a FLUSH 200 ms later: returned %d revents=%#x after %.0f ms",
			c, pr, pr > 0 ? pfd.revents : 0, (double)t / 1e6);
		if (pr != 1 || !(pfd.revents & POLLIN))
			rm_bad("cpu%u: a FLUSH of a partial sub-buffer did not wake the poller (rc %d, %.0f ms)",
			       c, pr, (double)t / 1e6);
		else if (t > 2000000000ULL)
			rm_bad("cpu%u: poller woke only after %.0f ms, the FLUSH came at 200 ms", c,
			       (double)t / 1e6);
		else
			flush_woke++;
		rm_drain_once(&ch, &d[c]);
	}
	lg_stop();
	rm_flush_x(ch.ctl, RELAYMAP_ALL_CPUS);
	for (unsigned int i = 0; i < ch.ncpus; i++) {
		unsigned int c = ch.cpus[i];

		rm_drain_once(&ch, &d[c]);
		RM_EXPECT_EQ("record errors (flush phase)", rm_stream_errors(&d[c].st), 0);
		RM_EXPECT_EQ("header violations (flush phase)", d[c].hdr_violations, 0);
	}
	rm_note("SUMMARY flush_woke_poller=%llu/%u", (unsigned long long)flush_woke, ch.ncpus);
	rm_note("SUMMARY wakeups=%llu/%llu blocked_then_woke=%llu published_lag_after_wakeup=%llu wait_avg_ms=%.1f wait_max_ms=%.1f elapsed_s=%.2f",
		(unsigned long long)woke, (unsigned long long)(wakeups * ch.ncpus),
		(unsigned long long)blocked, (unsigned long long)lag,
		woke ? (double)wait_sum / (double)woke / 1e6 : 0.0,
		(double)wait_max / 1e6, rm_secs_since(t0));
	RM_EXPECT_EQ("poll wakeups", woke, wakeups * ch.ncpus);
	if (blocked * 2 < woke)
		rm_bad("only %llu of %llu polls really blocked (> 5 ms): poll may be always ready",
		       (unsigned long long)blocked, (unsigned long long)woke);
	rm_close(&ch);
	return rm_exit();
}

/* SPDX-License-Identifier: MIT */
/*
 * rmck_rmmod - unloading the modules under a consumer that has a channel
 * fd and consumer fds open and mapped.
 *
 *   rmck_rmmod -n NAME
 *
 * An open /dev/relaymap, channel fd or consumer fd, or a mapping of a
 * consumer fd, pins relaymap.ko (their file operations belong to the
 * module): rmmod says "in use".
 *
 * 1. Claim and map every CPU (no MAP_POPULATE: pages keep faulting in
 *    during the refused unloads), let the load generator write 1500
 *    records per CPU, FLUSH(all), consume half of what was produced, all
 *    of one CPU.
 * 2. A thread blocks in poll() on that CPU's empty consumer fd (10 s
 *    timeout). delete_module(relaymap) with everything open fails
 *    (EAGAIN/EBUSY), the channel still answers and the poll is still
 *    blocked. Then the load generator writes 100 more records per CPU and
 *    a FLUSH wakes the poll with POLLIN (no POLLERR).
 * 3. Unload relaymap_loadgen (works), close the channel fd: with the
 *    consumer fds open and mapped, delete_module(relaymap) still fails,
 *    the module and /dev/relaymap stay, GET_CURSOR on a consumer fd still
 *    answers, every page of every mapping is readable and the unconsumed
 *    sub-buffers hold valid headers and records.
 * 4. Close the consumer fds, keep the mappings: delete_module(relaymap)
 *    still fails (a mapping holds the file), the data is still intact.
 * 5. munmap. Then a channel fd alone, and an open /dev/relaymap alone,
 *    each still pin the module. Closed: delete_module(relaymap) works,
 *    /sys/module/relaymap, /dev/relaymap and the debugfs directory are
 *    gone. (The test script then loads it again.)
 *
 * Nothing here waits without a timeout; the whole program has a watchdog.
 */
#include "rmtest.h"

static struct rm_chan ch;
static unsigned int poll_cpu;
static int poll_rc, poll_done;
static short poll_revents;
static uint64_t poll_ns;
static int poll_ready;
static bool debugfs_view; /* the channel had a debugfs directory at the start */

static void *blocked_poller(void *arg)
{
	struct pollfd pfd = { .fd = ch.fd[poll_cpu], .events = POLLIN };
	uint64_t t;

	(void)arg;
	__atomic_store_n(&poll_ready, 1, __ATOMIC_RELEASE);
	t = rm_now_ns();
	poll_rc = poll(&pfd, 1, 10000);
	poll_ns = rm_now_ns() - t;
	poll_revents = pfd.revents;
	__atomic_store_n(&poll_done, 1, __ATOMIC_RELEASE);
	return NULL;
}

/* delete_module(relaymap) must fail with "in use" and leave it loaded. */
static void expect_refused_unload(const char *why)
{
	int err = rm_delete_module("relaymap");
	char path[256];

	if (err == 0) {
		rm_bad("delete_module(relaymap) succeeded %s", why);
		return;
	}
	if (err != -EAGAIN && err != -EBUSY)
		rm_bad("delete_module(relaymap) %s: %s, expected EAGAIN/EWOULDBLOCK or EBUSY",
		       why, strerror(-err));
	else
		rm_note("delete_module(relaymap) %s: %s (ok: in use)", why,
			strerror(-err));
	if (!rm_module_loaded("relaymap"))
		rm_die("relaymap is gone although delete_module failed (%s)", why);
	if (access(RM_DEV, F_OK))
		rm_bad("%s is gone after the refused unload (%s)", RM_DEV, why);
	snprintf(path, sizeof(path), RM_DIR "/%s/cpu%u", ch.name, ch.cpus[0]);
	if (debugfs_view && access(path, F_OK))
		rm_bad("%s is gone after the refused unload (%s)", path, why);
}

/*
 * Every page of every mapping is readable and the unconsumed sub-buffers
 * consumed..produced hold valid headers and records.
 */
static void check_mappings(const char *when, const struct relaymap_cursor *cur,
			   uint64_t *subbufs, uint64_t *records)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);

	for (unsigned int i = 0; i < ch.ncpus; i++) {
		unsigned int c = ch.cpus[i];
		volatile const uint8_t *p = ch.map[c];
		uint64_t sum = 0, n = 0, recs = 0, errs = 0, gaps = 0;
		struct rm_stream st;

		for (size_t off = 0; off < ch.info.alloc_size; off += page)
			sum += p[off];
		rm_stream_init(&st, c, 64);
		for (uint64_t s = cur[c].consumed; s < cur[c].produced; s++) {
			struct relaymap_subbuf_header h;
			struct relaymap_loadgen_payload lp;
			const uint8_t *data;
			char why[512];

			rm_hdr_read(rm_hdr(&ch, c, s), &h);
			if (rm_hdr_check(&ch, c, s, &h, why, sizeof(why))) {
				rm_bad("%s: %s", when, why);
				continue;
			}
			data = rm_slot(&ch, c, s) + h.header_size;
			/*
			 * Each loadgen run counts seq from 0 and ends with a
			 * FLUSH: a sub-buffer that starts at seq 0 starts a
			 * new stream.
			 */
			if (rm_events_len(&h) >= RM_LG_MIN_RECORD) {
				memcpy(&lp, data + sizeof(struct relaymap_record),
				       sizeof(lp));
				if (lp.seq == 0 && st.started) {
					recs += st.records;
					errs += rm_stream_errors(&st);
					gaps += st.gap_records;
					rm_stream_init(&st, c, 64);
				}
			}
			rm_stream_payload(&st, s, data, rm_events_len(&h), NULL);
			n++;
		}
		recs += st.records;
		errs += rm_stream_errors(&st);
		gaps += st.gap_records;
		*subbufs += n;
		*records += recs;
		rm_note("cpu %u %s: %zu pages readable (sum %llu), %llu unconsumed sub-buffers with %llu records valid",
			c, when, (size_t)(ch.info.alloc_size / page),
			(unsigned long long)sum, (unsigned long long)n,
			(unsigned long long)recs);
		if (n != cur[c].produced - cur[c].consumed)
			rm_bad("cpu %u %s: %llu of %llu unconsumed sub-buffers valid", c,
			       when, (unsigned long long)n,
			       (unsigned long long)(cur[c].produced - cur[c].consumed));
		if (recs == 0)
			rm_bad("cpu %u %s: no records in the unconsumed sub-buffers", c, when);
		RM_EXPECT_EQ("record errors in the mapping", errs, 0);
		RM_EXPECT_EQ("seq gaps in the mapping", gaps, 0);
	}
}

static void lg_write(const char *name, unsigned long long count)
{
	lg_set("channel", name);
	lg_set("mode", "lossless");
	lg_setu("record_size", 64);
	lg_setu("rate", 0);
	lg_setu("duration_ms", 0);
	lg_setu("count", count);
	lg_start();
	if (!lg_wait_idle(60000))
		rm_die("loadgen did not finish %llu records per CPU", count);
	lg_stop();
}

int main(int argc, char **argv)
{
	const char *name = argc == 3 && !strcmp(argv[1], "-n") ? argv[2] : NULL;
	struct relaymap_cursor cur[RM_MAXCPU];
	struct relaymap_info info;
	uint64_t t_unload, checked_sbs = 0, checked_recs = 0;
	unsigned int retries = 0;
	char path[256];
	pthread_t th;
	int err;

	rm_init(argv[0], 120);
	if (!name)
		rm_die("usage: rmck_rmmod -n NAME");
	rm_open(&ch, name, RM_OPEN_MAP);
	if (!lg_present())
		rm_die("relaymap_loadgen is not loaded");
	snprintf(path, sizeof(path), RM_DIR "/%s", name);
	debugfs_view = access(path, F_OK) == 0;

	rm_set_phase("write");
	lg_write(name, 1500); /* fits 16 KiB x 8 without a reader */
	rm_flush_x(ch.ctl, RELAYMAP_ALL_CPUS);
	for (unsigned int i = 0; i < ch.ncpus; i++) {
		unsigned int c = ch.cpus[i];

		rm_cursor_x(ch.ctl, c, &cur[c]);
		if (cur[c].produced < 2)
			rm_die("cpu %u: produced %llu, need >= 2", c,
			       (unsigned long long)cur[c].produced);
		rm_put_x(ch.fd[c], c, cur[c].produced / 2);
	}
	/* Poll the first CPU after consuming all of it: poll blocks. */
	poll_cpu = ch.cpus[0];
	rm_cursor_x(ch.ctl, poll_cpu, &cur[poll_cpu]);
	rm_put_x(ch.fd[poll_cpu], poll_cpu, cur[poll_cpu].produced - cur[poll_cpu].consumed);
	if (pthread_create(&th, NULL, blocked_poller, NULL))
		rm_die("pthread_create");
	while (!__atomic_load_n(&poll_ready, __ATOMIC_ACQUIRE))
		rm_sleep_ms(1);
	rm_sleep_ms(100); /* let it block */

	rm_set_phase("unload with everything open");
	expect_refused_unload("with the channel fd and consumer fds open and mapped and a poll() blocked");
	err = rm_get_info(ch.ctl, &info);
	if (err)
		rm_bad("GET_INFO after the refused unload: %s", strerror(-err));
	else if (strcmp(info.name, name))
		rm_bad("GET_INFO after the refused unload: name '%s'", info.name);
	if (__atomic_load_n(&poll_done, __ATOMIC_ACQUIRE))
		rm_bad("the blocked poll() returned %d revents=%#x at the refused unload, nothing was produced",
		       poll_rc, poll_revents);

	rm_set_phase("poll after the refused unload");
	lg_write(name, 100);
	rm_flush_x(ch.ctl, RELAYMAP_ALL_CPUS);
	pthread_join(th, NULL); /* poll() has a 10 s timeout */
	rm_note("poll blocked across the refused unload returned %d revents=%#x after %.0f ms (timeout 10000 ms)",
		poll_rc, poll_rc > 0 ? poll_revents : 0, (double)poll_ns / 1e6);
	if (poll_rc != 1 || !(poll_revents & POLLIN) ||
	    (poll_revents & (POLLERR | POLLHUP | POLLNVAL)))
		rm_bad("blocked poll on cpu%u: rc %d revents %#x, expected 1 with POLLIN and no POLLERR/POLLHUP after new data",
		       poll_cpu, poll_rc, poll_revents);
	for (unsigned int i = 0; i < ch.ncpus; i++) {
		unsigned int c = ch.cpus[i];

		rm_cursor_x(ch.ctl, c, &cur[c]);
		rm_note("cpu %u before the unload attempts: produced=%llu consumed=%llu",
			c, (unsigned long long)cur[c].produced,
			(unsigned long long)cur[c].consumed);
		if (cur[c].produced <= cur[c].consumed)
			rm_die("cpu %u: nothing unconsumed to check", c);
	}

	rm_set_phase("unload with the consumer fds open and mapped");
	err = rm_delete_module("relaymap_loadgen");
	if (err)
		rm_die("delete_module(relaymap_loadgen): %s", strerror(-err));
	close(ch.ctl);
	ch.ctl = -1;
	expect_refused_unload("with the channel fd closed, the consumer fds open and mapped");
	check_mappings("open and mapped, unload refused", cur, &checked_sbs,
		       &checked_recs);
	for (unsigned int i = 0; i < ch.ncpus; i++) {
		unsigned int c = ch.cpus[i];
		struct relaymap_cursor cc;

		/* The consumer fd keeps the channel: its own ioctls still answer. */
		err = rm_get_cursor(ch.fd[c], c, &cc);
		if (err)
			rm_bad("cpu %u: GET_CURSOR on the consumer fd after the channel fd was closed: %s",
			       c, strerror(-err));
		else if (cc.produced != cur[c].produced || cc.consumed != cur[c].consumed)
			rm_bad("cpu %u: GET_CURSOR on the consumer fd: produced %llu consumed %llu, expected %llu %llu",
			       c, (unsigned long long)cc.produced,
			       (unsigned long long)cc.consumed,
			       (unsigned long long)cur[c].produced,
			       (unsigned long long)cur[c].consumed);
	}
	for (unsigned int i = 0; i < ch.ncpus; i++) {
		unsigned int c = ch.cpus[i];
		struct pollfd pfd = { .fd = ch.fd[c], .events = POLLIN };
		int pr = poll(&pfd, 1, 1000);

		if (pr != 1 || !(pfd.revents & POLLIN) ||
		    (pfd.revents & (POLLERR | POLLHUP | POLLNVAL)))
			rm_bad("cpu %u: poll with unconsumed data after the refused unload: rc %d revents %#x, expected POLLIN only",
			       c, pr, pr > 0 ? pfd.revents : 0);
	}

	rm_set_phase("unload with the consumer fds closed, still mapped");
	for (unsigned int i = 0; i < ch.ncpus; i++) {
		unsigned int c = ch.cpus[i];

		close(ch.fd[c]);
		ch.fd[c] = -1;
	}
	expect_refused_unload("with the consumer fds closed but still mapped");
	check_mappings("closed but mapped, unload refused", cur, &checked_sbs,
		       &checked_recs);

	rm_set_phase("unload with a channel fd alone");
	rm_close(&ch);
	{
		int fd = rm_open_channel_x(name), dev;

		expect_refused_unload("with only a channel fd open");
		close(fd);
		rm_set_phase("unload with /dev/relaymap alone");
		dev = rm_dev_open();
		if (dev < 0)
			rm_die("open %s: %s", RM_DEV, strerror(-dev));
		expect_refused_unload("with only /dev/relaymap open");
		close(dev);
	}
	rm_set_phase("unload after munmap and close");
	t_unload = rm_now_ns();
	/* The last fput() runs before munmap() returns; allow a little slack. */
	while ((err = rm_delete_module("relaymap")) == -EAGAIN && retries < 20) {
		retries++;
		rm_sleep_ms(50);
	}
	t_unload = rm_now_ns() - t_unload;
	if (err)
		rm_die("delete_module(relaymap) after munmap and close: %s (%u retries)",
		       strerror(-err), retries);
	if (retries)
		rm_note("delete_module(relaymap) after munmap needed %u retries", retries);
	if (rm_module_loaded("relaymap"))
		rm_bad("/sys/module/relaymap still exists after the unload");
	snprintf(path, sizeof(path), RM_DIR "/%s", name);
	if (access(path, F_OK) == 0)
		rm_bad("%s still exists after the unload", path);
	if (access(RM_DEV, F_OK) == 0)
		rm_bad("%s still exists after the unload", RM_DEV);
	rm_note("relaymap unloaded in %.1f ms once nothing was open or mapped",
		(double)t_unload / 1e6);

	rm_note("SUMMARY unload_ms=%.1f unconsumed_subbufs_checked=%llu records_checked=%llu poll_woken_by_data=%s",
		(double)t_unload / 1e6, (unsigned long long)checked_sbs,
		(unsigned long long)checked_recs,
		poll_rc == 1 && (poll_revents & POLLIN) ? "yes" : "no");
	return rm_exit();
}

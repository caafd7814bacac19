/* SPDX-License-Identifier: MIT */
/*
 * rmck_rmmod - unload the modules under a consumer that still has the CPU
 * files open and mapped.
 *
 *   rmck_rmmod -n NAME
 *
 * 1. Map every CPU file (no MAP_POPULATE: pages fault in after the
 *    unload too), let the load generator write 1500 records per CPU,
 *    FLUSH(all), consume half of what was produced.
 * 2. A thread blocks in poll() on an empty CPU file (3 s timeout).
 * 3. With the control file open: unloading relaymap_loadgen works,
 *    unloading relaymap fails (EAGAIN/EWOULDBLOCK or EBUSY: the open
 *    control file pins the module) and the channel still answers.
 * 4. Close the control file: unloading relaymap works.
 * 5. After the unload: every page of every mapping is readable, the
 *    unconsumed sub-buffers still hold valid headers and records, poll()
 *    returns at once with POLLERR/POLLHUP, read() does not crash, and the
 *    poll() that was blocked before the unload must have been woken by it
 *    (else a reader without a timeout hangs forever).
 * 6. munmap and close. (The test script then loads the module again.)
 */
#include "rmtest.h"

static struct rm_chan ch;
static unsigned int poll_cpu;
static int poll_rc;
static short poll_revents;
static uint64_t poll_ns, poll_started_ns;
static int poll_ready;

static void *blocked_poller(void *arg)
{
	struct pollfd pfd = { .fd = ch.fd[poll_cpu], .events = POLLIN };
	uint64_t t;

	(void)arg;
	__atomic_store_n(&poll_ready, 1, __ATOMIC_RELEASE);
	t = rm_now_ns();
	poll_started_ns = t;
	poll_rc = poll(&pfd, 1, 3000);
	poll_ns = rm_now_ns() - t;
	poll_revents = pfd.revents;
	return NULL;
}

int main(int argc, char **argv)
{
	const char *name = argc == 3 && !strcmp(argv[1], "-n") ? argv[2] : NULL;
	struct relaymap_cursor cur[RM_MAXCPU];
	struct relaymap_info info;
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	uint64_t t_unload, unconsumed_checked = 0, records_checked = 0;
	char path[256];
	pthread_t th;
	int err;

	rm_init(argv[0], 120);
	if (!name)
		rm_die("usage: rmck_rmmod -n NAME");
	rm_open(&ch, name, RM_OPEN_MAP);
	if (!lg_present())
		rm_die("relaymap_loadgen is not loaded");

	rm_set_phase("write");
	lg_set("channel", name);
	lg_set("mode", "lossless");
	lg_setu("record_size", 64);
	lg_setu("rate", 0);
	lg_setu("duration_ms", 0);
	lg_setu("count", 1500); /* fits 16 KiB x 8 without a reader */
	lg_start();
	if (!lg_wait_idle(60000))
		rm_die("loadgen did not finish 1500 records per CPU");
	lg_stop();
	rm_flush_x(ch.ctl, RELAYMAP_ALL_CPUS);
	for (unsigned int i = 0; i < ch.ncpus; i++) {
		unsigned int c = ch.cpus[i];

		rm_cursor_x(ch.ctl, c, &cur[c]);
		if (cur[c].produced < 2)
			rm_die("cpu %u: produced %llu, need >= 2", c,
			       (unsigned long long)cur[c].produced);
		rm_put_x(ch.ctl, c, cur[c].produced / 2);
		rm_cursor_x(ch.ctl, c, &cur[c]);
		rm_note("cpu %u before unload: produced=%llu consumed=%llu", c,
			(unsigned long long)cur[c].produced,
			(unsigned long long)cur[c].consumed);
	}
	/* Poll the first CPU after consuming all of it: poll blocks. */
	poll_cpu = ch.cpus[0];
	rm_put_x(ch.ctl, poll_cpu, cur[poll_cpu].produced - cur[poll_cpu].consumed);
	if (pthread_create(&th, NULL, blocked_poller, NULL))
		rm_die("pthread_create");
	while (!__atomic_load_n(&poll_ready, __ATOMIC_ACQUIRE))
		rm_sleep_ms(1);
	rm_sleep_ms(100); /* let it block */

	rm_set_phase("unload with the control file open");
	err = rm_delete_module("relaymap_loadgen");
	if (err)
		rm_die("delete_module(relaymap_loadgen): %s", strerror(-err));
	err = rm_delete_module("relaymap");
	if (err == 0)
		rm_die("delete_module(relaymap) succeeded although the control file is open");
	rm_note("delete_module(relaymap) with the control file open: %s (expected: EAGAIN/EWOULDBLOCK or EBUSY)",
		strerror(-err));
	if (err != -EAGAIN && err != -EBUSY)
		rm_bad("delete_module(relaymap) with the control file open: %s, expected EAGAIN or EBUSY",
		       strerror(-err));
	if (!rm_module_loaded("relaymap"))
		rm_die("relaymap is gone although delete_module failed");
	err = rm_get_info(ch.ctl, &info);
	if (err)
		rm_bad("GET_INFO after the refused unload: %s", strerror(-err));
	else if (strcmp(info.name, name))
		rm_bad("GET_INFO after the refused unload: name '%s'", info.name);

	rm_set_phase("unload with only the CPU files open");
	close(ch.ctl);
	ch.ctl = -1;
	t_unload = rm_now_ns();
	err = rm_delete_module("relaymap");
	if (err)
		rm_die("delete_module(relaymap) with only the CPU files open and mapped: %s",
		       strerror(-err));
	t_unload = rm_now_ns() - t_unload;
	if (rm_module_loaded("relaymap"))
		rm_bad("/sys/module/relaymap still exists after the unload");
	snprintf(path, sizeof(path), RM_DIR "/%s", name);
	if (access(path, F_OK) == 0)
		rm_bad("%s still exists after the unload", path);
	rm_note("relaymap unloaded in %.1f ms with %u CPU files open and mapped",
		(double)t_unload / 1e6, ch.ncpus);

	rm_set_phase("mapping after unload");
	for (unsigned int i = 0; i < ch.ncpus; i++) {
		unsigned int c = ch.cpus[i];
		volatile const uint8_t *p = ch.map[c];
		uint64_t sum = 0;
		struct rm_stream st;

		for (size_t off = 0; off < ch.info.alloc_size; off += page)
			sum += p[off];
		rm_stream_init(&st, c, 64);
		for (uint64_t s = cur[c].consumed; s < cur[c].produced; s++) {
			struct relaymap_subbuf_header h;
			char why[512];

			rm_hdr_read(rm_hdr(&ch, c, s), &h);
			if (rm_hdr_check(&ch, c, s, &h, why, sizeof(why))) {
				rm_bad("after unload: %s", why);
				continue;
			}
			rm_stream_payload(&st, s, rm_slot(&ch, c, s) + h.header_size,
					  h.payload_size, NULL);
			unconsumed_checked++;
		}
		records_checked += st.records;
		rm_note("cpu %u after unload: %zu pages readable (sum %llu), %llu unconsumed sub-buffers with %llu records still valid",
			c, (size_t)(ch.info.alloc_size / page), (unsigned long long)sum,
			(unsigned long long)(cur[c].produced - cur[c].consumed),
			(unsigned long long)st.records);
		RM_EXPECT_EQ("record errors in the mapping after unload", rm_stream_errors(&st), 0);
		RM_EXPECT_EQ("seq gaps in the mapping after unload", st.gap_records, 0);
	}

	rm_set_phase("poll and read after unload");
	for (unsigned int i = 0; i < ch.ncpus; i++) {
		unsigned int c = ch.cpus[i];
		struct pollfd pfd = { .fd = ch.fd[c], .events = POLLIN };
		uint64_t t = rm_now_ns();
		int pr = poll(&pfd, 1, 2000);
		char buf[4096];
		ssize_t n;

		t = rm_now_ns() - t;
		rm_note("cpu %u after unload: poll returned %d revents=%#x in %.1f ms", c,
			pr, pr > 0 ? pfd.revents : 0, (double)t / 1e6);
		if (pr <= 0 || !(pfd.revents & (POLLERR | POLLHUP)))
			rm_bad("cpu %u: poll after unload: rc %d revents %#x, expected POLLERR or POLLHUP at once",
			       c, pr, pfd.revents);
		n = read(ch.fd[c], buf, sizeof(buf));
		rm_note("cpu %u after unload: read() returned %zd%s%s", c, n,
			n < 0 ? ": " : "", n < 0 ? strerror(errno) : "");
	}
	pthread_join(th, NULL);
	rm_note("poll blocked before the unload returned %d revents=%#x after %.0f ms (its timeout 3000 ms)%s",
		poll_rc, poll_rc > 0 ? poll_revents : 0, (double)poll_ns / 1e6,
		poll_ns < 2500000000ULL ? ": woken by the unload" :
					  ": NOT woken by the unload (a poll without timeout would sleep forever)");
	if (poll_rc < 0)
		rm_bad("blocked poll failed: %d", poll_rc);
	else if (poll_ns >= 2500000000ULL)
		rm_bad("a reader blocked in poll() on cpu%u before the unload was not woken by it: it slept until its own timeout (%.0f ms); with no timeout it would hang forever",
		       poll_cpu, (double)poll_ns / 1e6);

	rm_set_phase("munmap and close");
	rm_close(&ch);
	rm_note("SUMMARY unload_ms=%.1f unconsumed_subbufs_checked=%llu records_checked=%llu blocked_poll_woken=%s",
		(double)t_unload / 1e6, (unsigned long long)unconsumed_checked,
		(unsigned long long)records_checked,
		poll_ns < 2500000000ULL ? "yes" : "no");
	return rm_exit();
}

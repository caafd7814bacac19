/* SPDX-License-Identifier: MIT */
/*
 * rmck_destroy - the creator destroys a channel while a consumer holds it
 * (kmod/relaymap_main.c relaymap_chan_destroy(); issue 9 item 1).
 *
 *   rmck_destroy -n NAME --lg-ko PATH [--count N]
 *
 * NAME was made by the load generator (insmod relaymap_loadgen.ko
 * create=NAME channel=NAME ...); unloading the load generator destroys
 * it. With every CPU claimed and mapped:
 * 1. The load generator writes N records per CPU (lossless; the ring must
 *    hold them all) and stops. The consumer hands back half of each CPU's
 *    sub-buffers, and all of the first CPU's, whose last sub-buffer stays
 *    open (not flushed); a thread blocks in poll() on that CPU.
 * 2. delete_module(relaymap_loadgen): the channel is destroyed under us.
 *    The blocked poll() wakes with POLLIN (destroy closed the open
 *    sub-buffer). OPEN_CHANNEL(NAME) is ENOENT and LIST no longer names
 *    it; GET_INFO says RELAYMAP_INFO_DESTROYED and GET_CURSOR
 *    RELAYMAP_CURSOR_DESTROYED; FLUSH still answers; a channel of the same
 *    name cannot be created while we hold the old one (the load generator
 *    with create=NAME fails to load).
 * 3. Everything written before the destroy is delivered after it: per CPU
 *    records == N, seq 0..N-1, no gap, valid headers; GET_STATS agrees.
 *    poll() says POLLIN (no POLLHUP) while a CPU has data left and
 *    POLLHUP once it is drained.
 * 4. After closing everything, the name is free again: the load generator
 *    with create=NAME loads (and is unloaded again).
 */
#include "rmtest.h"

static struct rm_chan ch;
static unsigned int poll_cpu;
static int poll_rc, poll_ready;
static short poll_revents;
static uint64_t poll_ns;

static void *blocked_poller(void *arg)
{
	struct pollfd pfd = { .fd = ch.fd[poll_cpu], .events = POLLIN };
	uint64_t t;

	(void)arg;
	__atomic_store_n(&poll_ready, 1, __ATOMIC_RELEASE);
	t = rm_now_ns();
	poll_rc = poll(&pfd, 1, 20000);
	poll_ns = rm_now_ns() - t;
	poll_revents = pfd.revents;
	return NULL;
}

static bool listed(const char *name)
{
	static char names[64][RELAYMAP_NAME_MAX];
	struct relaymap_list l;
	int dev = rm_dev_open(), err;
	bool found = false;

	if (dev < 0)
		rm_die("open %s: %s", RM_DEV, strerror(-dev));
	memset(&l, 0, sizeof(l));
	l.size = sizeof(l);
	l.nr = 64;
	l.names = (uint64_t)(uintptr_t)names;
	err = rm_ioctl(dev, RELAYMAP_IOC_LIST, &l);
	if (err)
		rm_die("LIST: %s", strerror(-err));
	for (unsigned int i = 0; i < l.nr && i < 64; i++)
		if (!strncmp(names[i], name, RELAYMAP_NAME_MAX))
			found = true;
	close(dev);
	return found;
}

static short poll_now(unsigned int cpu)
{
	struct pollfd pfd = { .fd = ch.fd[cpu], .events = POLLIN };

	return poll(&pfd, 1, 0) == 1 ? pfd.revents : 0;
}

int main(int argc, char **argv)
{
	const char *name = NULL, *lg_ko = NULL;
	uint64_t count = 5000, after[RM_MAXCPU] = { 0 };
	static struct rm_drain d[RM_MAXCPU];
	struct lg_status lg;
	struct relaymap_info info;
	char cmd[512];
	pthread_t th;
	int err, dev, rc;

	rm_init(argv[0], 240);
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!strcmp(a, "-n"))
			name = v;
		else if (!strcmp(a, "--lg-ko"))
			lg_ko = v;
		else if (!strcmp(a, "--count"))
			count = rm_argu(a, v);
		else
			rm_die("unknown option %s", a);
		i++;
	}
	if (!name || !lg_ko)
		rm_die("usage: rmck_destroy -n NAME --lg-ko PATH [--count N]");
	rm_open(&ch, name, RM_OPEN_MAP);
	if (!lg_present())
		rm_die("relaymap_loadgen is not loaded");
	if (count * 64 > (ch.info.n_subbufs - 1) * (ch.info.subbuf_size - ch.info.header_size))
		rm_die("--count %llu does not fit the ring (%llu x %llu) without a reader",
		       (unsigned long long)count, (unsigned long long)ch.info.n_subbufs,
		       (unsigned long long)ch.info.subbuf_size);

	rm_set_phase("write");
	lg_set("channel", name);
	lg_set("mode", "lossless");
	lg_setu("record_size", 64);
	lg_setu("rate", 0);
	lg_setu("duration_ms", 0);
	lg_setu("count", count);
	lg_start();
	if (!lg_wait_idle(120000))
		rm_die("loadgen did not finish %llu records per CPU", (unsigned long long)count);
	lg_stop();
	lg_read_status(&lg);

	rm_set_phase("consume part");
	for (unsigned int i = 0; i < ch.ncpus; i++) {
		unsigned int c = ch.cpus[i];
		struct relaymap_cursor cur;

		rm_drain_init(&d[c], &ch, c, 64);
		rm_cursor_x(ch.fd[c], c, &cur);
		/* All of the first CPU (its open sub-buffer stays open), half of the others. */
		rm_drain_to(&ch, &d[c], i == 0 ? cur.produced : cur.produced / 2);
		rm_note("cpu %u before destroy: loadgen written %llu, produced %llu, handed back %llu (%llu records)",
			c, (unsigned long long)lg_cpu(&lg, c).written,
			(unsigned long long)cur.produced, (unsigned long long)d[c].consumed,
			(unsigned long long)d[c].st.records);
		after[c] = d[c].st.records;
	}
	poll_cpu = ch.cpus[0];
	if (pthread_create(&th, NULL, blocked_poller, NULL))
		rm_die("pthread_create");
	while (!__atomic_load_n(&poll_ready, __ATOMIC_ACQUIRE))
		rm_sleep_ms(1);
	rm_sleep_ms(100); /* let it block */

	rm_set_phase("destroy");
	if (!listed(name))
		rm_bad("LIST does not name %s before the destroy", name);
	err = rm_delete_module("relaymap_loadgen");
	if (err)
		rm_die("delete_module(relaymap_loadgen) (destroys %s): %s", name, strerror(-err));
	pthread_join(th, NULL);
	rm_note("poll() blocked on cpu %u across the destroy: rc %d revents %#x after %.0f ms",
		poll_cpu, poll_rc, poll_rc > 0 ? poll_revents : 0, (double)poll_ns / 1e6);
	if (poll_rc != 1 || !(poll_revents & POLLIN))
		rm_bad("the destroy did not wake the poller with POLLIN (it closes the open sub-buffer): rc %d revents %#x",
		       poll_rc, poll_revents);
	if (listed(name))
		rm_bad("LIST still names %s after the destroy", name);
	dev = rm_dev_open();
	if (dev < 0)
		rm_die("open %s: %s", RM_DEV, strerror(-dev));
	rc = rm_open_channel_fd(dev, name);
	if (rc != -ENOENT)
		rm_bad("OPEN_CHANNEL(%s) after the destroy: %s, expected ENOENT", name,
		       rc >= 0 ? "success" : strerror(-rc));
	if (rc >= 0)
		close(rc);
	close(dev);
	err = rm_get_info(ch.ctl, &info);
	if (err)
		rm_bad("GET_INFO on the channel fd after the destroy: %s", strerror(-err));
	else if (!(info.flags & RELAYMAP_INFO_DESTROYED))
		rm_bad("GET_INFO flags %#x after the destroy lack RELAYMAP_INFO_DESTROYED", info.flags);
	err = rm_flush(ch.ctl, RELAYMAP_ALL_CPUS);
	if (err)
		rm_bad("FLUSH(all) after the destroy: %s", strerror(-err));
	/* The name is taken while we hold the destroyed channel. */
	snprintf(cmd, sizeof(cmd), "insmod %s create=%s channel=%s 2>/dev/null", lg_ko, name, name);
	rc = system(cmd);
	if (rc == 0) {
		rm_bad("a new channel named %s was created while a consumer holds the destroyed one", name);
		rm_delete_module("relaymap_loadgen");
	} else {
		rm_note("insmod relaymap_loadgen create=%s while we hold the destroyed channel: refused (ok)", name);
	}

	rm_set_phase("drain after destroy");
	for (unsigned int i = 0; i < ch.ncpus; i++) {
		unsigned int c = ch.cpus[i];
		struct relaymap_cursor cur;
		struct relaymap_stats st;
		struct lg_cpu_status l = lg_cpu(&lg, c);
		short rev;

		rm_cursor_x(ch.ctl, c, &cur);
		if (!(cur.flags & RELAYMAP_CURSOR_DESTROYED))
			rm_bad("cpu %u: GET_CURSOR flags %#x after the destroy lack RELAYMAP_CURSOR_DESTROYED",
			       c, cur.flags);
		if (cur.produced > d[c].consumed) {
			rev = poll_now(c);
			if (!(rev & POLLIN) || (rev & POLLHUP))
				rm_bad("cpu %u: %llu sub-buffers left after the destroy but poll revents %#x (want POLLIN, no POLLHUP)",
				       c, (unsigned long long)(cur.produced - d[c].consumed), rev);
		}
		rm_drain_to(&ch, &d[c], cur.produced);
		after[c] = d[c].st.records - after[c];
		rev = poll_now(c);
		if (!(rev & POLLHUP))
			rm_bad("cpu %u: drained after the destroy but poll revents %#x lack POLLHUP", c, rev);
		rm_stats_x(ch.ctl, (int)c, &st);
		rm_drain_print(&d[c]);
		rm_note("cpu %u: %llu records written before the destroy, %llu of them delivered after it; poll when drained: %#x",
			c, (unsigned long long)l.written, (unsigned long long)after[c], rev);
		RM_EXPECT_EQ("records delivered == loadgen written before the destroy", d[c].st.records, l.written);
		RM_EXPECT_EQ("loadgen written == count", l.written, count);
		RM_EXPECT_EQ("first seq", d[c].st.first_seq, 0);
		RM_EXPECT_EQ("next seq", d[c].st.next_seq, count);
		RM_EXPECT_EQ("seq gaps", d[c].st.gap_records, 0);
		RM_EXPECT_EQ("record errors", rm_stream_errors(&d[c].st), 0);
		RM_EXPECT_EQ("stale/invalid headers", d[c].hdr_violations, 0);
		RM_EXPECT_EQ("stats records_written", st.records_written, count);
		RM_EXPECT_EQ("stats records_dropped", st.records_dropped, 0);
		if (after[c] == 0)
			rm_bad("cpu %u: nothing was left to deliver after the destroy: the test proved nothing", c);
	}
	rm_close(&ch);

	rm_set_phase("the name after the last close");
	snprintf(cmd, sizeof(cmd), "insmod %s create=%s channel=%s", lg_ko, name, name);
	rc = system(cmd);
	if (rc != 0) {
		rm_bad("insmod relaymap_loadgen create=%s after the last consumer closed: exit %d", name, rc);
	} else {
		if (!listed(name))
			rm_bad("the new channel %s is not listed", name);
		err = rm_delete_module("relaymap_loadgen");
		if (err)
			rm_bad("delete_module(relaymap_loadgen) of the new creator: %s", strerror(-err));
		rm_note("the name %s is free again once the destroyed channel's last fd is closed", name);
	}
	{
		uint64_t tot = 0;

		for (unsigned int i = 0; i < ch.ncpus; i++)
			tot += after[ch.cpus[i]];
		rm_note("SUMMARY records_written_before_destroy=%llu delivered_after_destroy=%llu cpus=%u",
			(unsigned long long)(count * ch.ncpus), (unsigned long long)tot, ch.ncpus);
	}
	return rm_exit();
}

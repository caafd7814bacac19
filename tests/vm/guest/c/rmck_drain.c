/* SPDX-License-Identifier: MIT */
/*
 * rmck_drain - a consumer that needs neither root nor the load
 * generator's control files: /dev/relaymap, OPEN_CHANNEL,
 * OPEN_CONSUMER(ALL), mmap, FLUSH and PUT_CONSUMED only. For the
 * non-root test (run it through rmck_asuser).
 *
 *   rmck_drain -n NAME --expect N [--timeout-s S]
 *       consume until every CPU delivered N loadgen records (64 bytes),
 *       FLUSHing when nothing new arrives for 200 ms; then exactly N per
 *       CPU, seq 0..N-1, no gap, valid records and headers, and
 *       GET_STATS: records_written N, records_dropped 0, all consumed.
 *       Prints "consuming NAME" once it holds every CPU.
 *   rmck_drain -n NAME --probe
 *       open, GET_INFO, claim every CPU, map, GET_CURSOR, FLUSH, close.
 *   rmck_drain -n NAME --expect-denied
 *       opening /dev/relaymap must fail with EACCES or EPERM.
 *
 * In every mode, when not root: the debugfs view's control and cpu0
 * files must refuse to open, and (probe, expect) a writable mapping of
 * a consumer fd is EACCES.
 */
#include "rmtest.h"

#include <grp.h>

static void identity(void)
{
	gid_t g[32];
	int n = getgroups(32, g);
	char buf[256] = "";

	for (int i = 0; i < n; i++)
		snprintf(buf + strlen(buf), sizeof(buf) - strlen(buf), "%s%u", i ? "," : "",
			 (unsigned int)g[i]);
	rm_note("running as uid=%u gid=%u groups=%s", (unsigned int)getuid(),
		(unsigned int)getgid(), n > 0 ? buf : "(none)");
}

/* Not root: the debugfs files of the channel stay closed to us. */
static void debugfs_refused(const char *name)
{
	char path[256];
	int fd;

	if (geteuid() == 0)
		return;
	rm_control_path(path, sizeof(path), name);
	fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd >= 0) {
		rm_bad("uid %u opened %s", (unsigned int)getuid(), path);
		close(fd);
	} else {
		rm_note("open %s as uid %u: %s (refused: ok)", path, (unsigned int)getuid(),
			strerror(errno));
	}
	rm_cpu_path(path, sizeof(path), name, 0);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		rm_bad("uid %u opened %s", (unsigned int)getuid(), path);
		close(fd);
	} else {
		rm_note("open %s as uid %u: %s (refused: ok)", path, (unsigned int)getuid(),
			strerror(errno));
	}
}

static void no_write_mapping(const struct rm_chan *ch)
{
	int fd = ch->fd[ch->cpus[0]];
	void *p = mmap(NULL, ch->info.alloc_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);

	if (p != MAP_FAILED) {
		rm_bad("a writable shared mapping of a consumer fd succeeded");
		munmap(p, ch->info.alloc_size);
	} else if (errno != EACCES) {
		rm_bad("writable shared mapping of a consumer fd: %s, expected EACCES", strerror(errno));
	}
}

int main(int argc, char **argv)
{
	const char *name = NULL;
	enum { M_EXPECT, M_PROBE, M_DENIED } mode = M_EXPECT;
	uint64_t expect = 0, timeout_s = 120;
	static struct rm_drain d[RM_MAXCPU];
	struct rm_chan ch;
	bool have_mode = false;

	rm_init(argv[0], 0);
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!strcmp(a, "-n")) {
			name = v;
			i++;
		} else if (!strcmp(a, "--expect")) {
			expect = rm_argu(a, v);
			mode = M_EXPECT;
			have_mode = true;
			i++;
		} else if (!strcmp(a, "--timeout-s")) {
			timeout_s = rm_argu(a, v);
			i++;
		} else if (!strcmp(a, "--probe")) {
			mode = M_PROBE;
			have_mode = true;
		} else if (!strcmp(a, "--expect-denied")) {
			mode = M_DENIED;
			have_mode = true;
		} else {
			rm_die("unknown option %s", a);
		}
	}
	if (!name || !have_mode || (mode == M_EXPECT && !expect))
		rm_die("usage: rmck_drain -n NAME --expect N [--timeout-s S] | --probe | --expect-denied");
	alarm((unsigned int)timeout_s + 30);
	identity();
	debugfs_refused(name);

	if (mode == M_DENIED) {
		int dev;

		rm_set_phase("expect denied");
		dev = rm_dev_open();
		if (dev >= 0) {
			struct stat sb;

			fstat(dev, &sb);
			rm_bad("uid %u opened %s (mode %o uid %u gid %u)", (unsigned int)getuid(),
			       RM_DEV, (unsigned int)(sb.st_mode & 07777),
			       (unsigned int)sb.st_uid, (unsigned int)sb.st_gid);
			close(dev);
		} else if (dev != -EACCES && dev != -EPERM) {
			rm_bad("open %s as uid %u: %s, expected EACCES or EPERM", RM_DEV,
			       (unsigned int)getuid(), strerror(-dev));
		} else {
			rm_note("open %s as uid %u: %s (refused: ok)", RM_DEV,
				(unsigned int)getuid(), strerror(-dev));
		}
		return rm_exit();
	}

	rm_set_phase("open");
	rm_open(&ch, name, RM_OPEN_MAP);
	no_write_mapping(&ch);
	if (mode == M_PROBE) {
		struct relaymap_cursor cur;

		rm_cursor_x(ch.fd[ch.cpus[0]], ch.cpus[0], &cur);
		rm_flush_x(ch.ctl, RELAYMAP_ALL_CPUS);
		rm_note("probe: channel %s open, %u CPUs claimed and mapped (%llu bytes each), FLUSH ok, cpu %u produced=%llu",
			name, ch.ncpus, (unsigned long long)ch.info.alloc_size, ch.cpus[0],
			(unsigned long long)cur.produced);
		rm_close(&ch);
		return rm_exit();
	}

	rm_set_phase("consume");
	for (unsigned int i = 0; i < ch.ncpus; i++) {
		rm_drain_init(&d[ch.cpus[i]], &ch, ch.cpus[i], 64);
		d[ch.cpus[i]].check_drop_count = true;
	}
	printf("consuming %s\n", name);
	fflush(stdout);
	{
		uint64_t t0 = rm_now_ns(), last_progress = rm_now_ns();

		for (;;) {
			bool done = true, progress = false;

			for (unsigned int i = 0; i < ch.ncpus; i++) {
				unsigned int c = ch.cpus[i];

				if (rm_drain_once(&ch, &d[c]))
					progress = true;
				if (d[c].st.records < expect)
					done = false;
			}
			if (done)
				break;
			if (progress)
				last_progress = rm_now_ns();
			else if (rm_now_ns() - last_progress > 200000000ULL) {
				rm_flush_x(ch.ctl, RELAYMAP_ALL_CPUS);
				last_progress = rm_now_ns();
			}
			if (rm_now_ns() - t0 > timeout_s * 1000000000ULL) {
				for (unsigned int i = 0; i < ch.ncpus; i++)
					rm_drain_print(&d[ch.cpus[i]]);
				rm_die("not all CPUs delivered %llu records within %llu s",
				       (unsigned long long)expect, (unsigned long long)timeout_s);
			}
			rm_sleep_ms(5);
		}
	}
	rm_set_phase("checks");
	rm_flush_x(ch.ctl, RELAYMAP_ALL_CPUS);
	for (unsigned int i = 0; i < ch.ncpus; i++) {
		unsigned int c = ch.cpus[i];
		struct relaymap_stats st;
		struct relaymap_cursor cur;

		rm_drain_once(&ch, &d[c]);
		rm_drain_print(&d[c]);
		rm_stats_x(ch.ctl, (int)c, &st);
		rm_cursor_x(ch.ctl, c, &cur);
		RM_EXPECT_EQ("records received", d[c].st.records, expect);
		RM_EXPECT_EQ("first seq", d[c].st.first_seq, 0);
		RM_EXPECT_EQ("next seq", d[c].st.next_seq, expect);
		RM_EXPECT_EQ("seq gaps", d[c].st.gap_records, 0);
		RM_EXPECT_EQ("record errors", rm_stream_errors(&d[c].st), 0);
		RM_EXPECT_EQ("stale/invalid headers", d[c].hdr_violations, 0);
		RM_EXPECT_EQ("stats records_written", st.records_written, expect);
		RM_EXPECT_EQ("stats records_dropped", st.records_dropped, 0);
		RM_EXPECT_EQ("everything handed back (produced == consumed)", cur.produced, cur.consumed);
		if (cur.holder_pid != getpid())
			rm_bad("cpu %u: holder_pid %d, expected us (%d)", c, cur.holder_pid, (int)getpid());
	}
	rm_note("SUMMARY uid=%u records_per_cpu=%llu cpus=%u", (unsigned int)getuid(),
		(unsigned long long)expect, ch.ncpus);
	rm_close(&ch);
	return rm_exit();
}

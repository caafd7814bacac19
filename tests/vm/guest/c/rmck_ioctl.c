/* SPDX-License-Identifier: MIT */
/*
 * rmck_ioctl - argument validation of every ioctl on every kind of fd.
 *
 *   rmck_ioctl -n NAME
 *
 * Needs relaymap_loadgen loaded (it writes a few records so that
 * PUT_CONSUMED has something to consume). The fds: /dev/relaymap, a
 * channel fd (OPEN_CHANNEL), the consumer fds of every CPU
 * (OPEN_CONSUMER(ALL)) and, if the debugfs view exists, its control file.
 * Checks:
 *  - bad cpu -> EINVAL for GET_CURSOR, FLUSH, GET_STATS, OPEN_CONSUMER;
 *    GET_CURSOR on a consumer fd ignores the cpu it is given;
 *  - PUT_CONSUMED (consumer fd): count 0, consumed + count > produced
 *    (also with 64-bit overflow) and a non-zero reserved field -> EINVAL,
 *    the cursor unchanged;
 *  - PUT_CONSUMED on a channel fd or the debugfs control file -> EPERM;
 *  - OPEN_CHANNEL: unknown name ENOENT, flags != 0 EINVAL, an
 *    unterminated name refused; OPEN_CONSUMER: flags != 0, nr_fds/fds for
 *    one CPU, nr_fds < nr_cpu_ids for ALL -> EINVAL, a bad fds pointer for
 *    ALL -> EFAULT and nothing claimed, a held CPU -> EBUSY;
 *  - LIST: count-only, a too small array (nr says how many exist), a bad
 *    pointer EFAULT;
 *  - size below the first version -> EINVAL, NULL and unmapped pointers
 *    -> EFAULT, for every struct ioctl; output fields zeroed before being
 *    filled (garbage in gives the same answer as zeroes in);
 *  - every ioctl of one fd kind on another kind -> ENOTTY; unknown
 *    numbers (also random ones) -> ENOTTY on every fd.
 */
#include "rmtest.h"

static struct rm_chan ch;
static unsigned long checks;

/* Expect ioctl(fd, req, arg) to fail with `want` (0 = succeed). Returns the result. */
static int expect_fd(int fd, const char *what, unsigned long req, void *arg, int want)
{
	int r = ioctl(fd, req, arg), got = r < 0 ? -errno : 0;

	checks++;
	if (r >= 0 && want == 0)
		return r;
	if (got == -want)
		return got;
	if (want == 0)
		rm_bad("%s: failed with %s, expected success", what, strerror(-got));
	else if (got == 0)
		rm_bad("%s: succeeded (returned %d), expected %s", what, r, strerror(want));
	else
		rm_bad("%s: failed with %s, expected %s", what, strerror(-got),
		       strerror(want));
	/* A stray success may have made an fd: do not leak a claim. */
	if (r > 2 && (req == RELAYMAP_IOC_OPEN_CONSUMER || req == RELAYMAP_IOC_OPEN_CHANNEL))
		close(r);
	return got;
}

static void expect(const char *what, unsigned long req, void *arg, int want)
{
	expect_fd(ch.ctl, what, req, arg, want);
}

static void cursor_unchanged(unsigned int cpu, const struct relaymap_cursor *before,
			     const char *after_what)
{
	struct relaymap_cursor now;

	rm_cursor_x(ch.ctl, cpu, &now);
	if (now.produced != before->produced || now.consumed != before->consumed)
		rm_bad("cpu %u cursor changed by a refused %s: produced %llu -> %llu, consumed %llu -> %llu",
		       cpu, after_what, (unsigned long long)before->produced,
		       (unsigned long long)now.produced,
		       (unsigned long long)before->consumed,
		       (unsigned long long)now.consumed);
}

/* Is some CPU of the channel held (by anyone)? */
static bool any_held(void)
{
	for (unsigned int i = 0; i < ch.ncpus; i++) {
		struct relaymap_cursor c;

		rm_cursor_x(ch.ctl, ch.cpus[i], &c);
		if (c.flags & RELAYMAP_CURSOR_HELD)
			return true;
	}
	return false;
}

static void check_open_channel(int dev, const char *name)
{
	struct relaymap_open_channel oc;
	char what[160];
	int fd;

	rm_set_phase("OPEN_CHANNEL");
	memset(&oc, 0, sizeof(oc));
	oc.size = sizeof(oc);
	snprintf(oc.name, sizeof(oc.name), "no-such-channel");
	expect_fd(dev, "OPEN_CHANNEL(no-such-channel)", RELAYMAP_IOC_OPEN_CHANNEL, &oc, ENOENT);
	memset(&oc, 0, sizeof(oc));
	oc.size = sizeof(oc);
	expect_fd(dev, "OPEN_CHANNEL(empty name)", RELAYMAP_IOC_OPEN_CHANNEL, &oc, ENOENT);
	snprintf(oc.name, sizeof(oc.name), "%s", name);
	oc.flags = 1;
	expect_fd(dev, "OPEN_CHANNEL(flags 1)", RELAYMAP_IOC_OPEN_CHANNEL, &oc, EINVAL);
	oc.flags = 0x80000000u;
	expect_fd(dev, "OPEN_CHANNEL(flags 1 << 31)", RELAYMAP_IOC_OPEN_CHANNEL, &oc, EINVAL);
	/* No NUL in name[]: refused (the errno is the module's choice). */
	memset(&oc, 0, sizeof(oc));
	oc.size = sizeof(oc);
	memset(oc.name, 'a', sizeof(oc.name));
	fd = ioctl(dev, RELAYMAP_IOC_OPEN_CHANNEL, &oc);
	checks++;
	if (fd >= 0) {
		rm_bad("OPEN_CHANNEL with an unterminated 64-byte name returned fd %d", fd);
		close(fd);
	} else {
		rm_note("OPEN_CHANNEL with an unterminated 64-byte name -> %s (refused: ok)",
			strerror(errno));
	}
	/* The real one: an O_RDWR, close-on-exec fd. */
	memset(&oc, 0, sizeof(oc));
	oc.size = sizeof(oc);
	snprintf(oc.name, sizeof(oc.name), "%s", name);
	fd = expect_fd(dev, "OPEN_CHANNEL(name)", RELAYMAP_IOC_OPEN_CHANNEL, &oc, 0);
	if (fd >= 0) {
		int fl = fcntl(fd, F_GETFL), fdfl = fcntl(fd, F_GETFD);

		if ((fl & O_ACCMODE) != O_RDWR || !(fdfl & FD_CLOEXEC))
			rm_bad("channel fd: flags %#x fd flags %#x, expected O_RDWR and FD_CLOEXEC",
			       fl, fdfl);
		snprintf(what, sizeof(what), "/proc/self/fd/%d", fd);
		{
			char link[128];
			ssize_t n = readlink(what, link, sizeof(link) - 1);

			if (n > 0) {
				link[n] = 0;
				rm_note("channel fd is '%s'", link);
				if (!strstr(link, "relaymap-channel"))
					rm_bad("channel fd links to '%s', expected anon_inode:[relaymap-channel]",
					       link);
			}
		}
		close(fd);
	}
}

static void check_list(int dev)
{
	static char names[2][RELAYMAP_NAME_MAX];
	struct relaymap_list l;
	uint32_t total;

	rm_set_phase("LIST");
	memset(&l, 0, sizeof(l));
	l.size = sizeof(l);
	expect_fd(dev, "LIST(count only)", RELAYMAP_IOC_LIST, &l, 0);
	total = l.nr;
	if (total < 1)
		rm_bad("LIST(count only) says %u channels, expected >= 1", total);
	/* Room for none but a pointer: nr still says how many exist. */
	memset(&l, 0, sizeof(l));
	l.size = sizeof(l);
	l.nr = 0;
	l.names = (uint64_t)(uintptr_t)names;
	expect_fd(dev, "LIST(nr 0, names set)", RELAYMAP_IOC_LIST, &l, 0);
	RM_EXPECT_EQ("LIST(nr 0).nr == channels", l.nr, total);
	memset(&l, 0, sizeof(l));
	l.size = sizeof(l);
	l.nr = 4;
	l.names = 8;
	expect_fd(dev, "LIST(names (void *)8)", RELAYMAP_IOC_LIST, &l, EFAULT);
}

static void check_open_consumer(void)
{
	struct relaymap_open_consumer oc;
	static int32_t fds[RELAYMAP_MAX_CPUS];
	char what[160];
	unsigned int nr = ch.info.nr_cpu_ids;
	int32_t bad[] = { (int32_t)nr, (int32_t)nr + 100, -2, -1000, INT32_MAX, INT32_MIN };

	rm_set_phase("OPEN_CONSUMER");
	for (unsigned int i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		memset(&oc, 0, sizeof(oc));
		oc.size = sizeof(oc);
		oc.cpu = bad[i];
		snprintf(what, sizeof(what), "OPEN_CONSUMER(cpu %d)", bad[i]);
		expect(what, RELAYMAP_IOC_OPEN_CONSUMER, &oc, EINVAL);
	}
	memset(&oc, 0, sizeof(oc));
	oc.size = sizeof(oc);
	oc.cpu = (int32_t)ch.cpus[0];
	oc.flags = 1;
	expect("OPEN_CONSUMER(flags 1)", RELAYMAP_IOC_OPEN_CONSUMER, &oc, EINVAL);
	oc.flags = 0;
	oc.nr_fds = 4;
	oc.fds = (uint64_t)(uintptr_t)fds;
	expect("OPEN_CONSUMER(one cpu, nr_fds 4, fds set)", RELAYMAP_IOC_OPEN_CONSUMER, &oc, EINVAL);
	memset(&oc, 0, sizeof(oc));
	oc.size = sizeof(oc);
	oc.cpu = RELAYMAP_ALL_CPUS;
	oc.nr_fds = nr - 1;
	oc.fds = (uint64_t)(uintptr_t)fds;
	snprintf(what, sizeof(what), "OPEN_CONSUMER(ALL, nr_fds %u < nr_cpu_ids %u)", nr - 1, nr);
	expect(what, RELAYMAP_IOC_OPEN_CONSUMER, &oc, EINVAL);
	oc.nr_fds = 0;
	oc.fds = 0;
	expect("OPEN_CONSUMER(ALL, nr_fds 0, fds 0)", RELAYMAP_IOC_OPEN_CONSUMER, &oc, EINVAL);
	oc.nr_fds = nr;
	oc.fds = 8;
	expect("OPEN_CONSUMER(ALL, fds (void *)8)", RELAYMAP_IOC_OPEN_CONSUMER, &oc, EFAULT);
	if (any_held())
		rm_bad("a failed OPEN_CONSUMER(ALL) (EFAULT on fds) left a CPU claimed");
	oc.fds = (uint64_t)(uintptr_t)fds;
	oc.flags = 1;
	expect("OPEN_CONSUMER(ALL, flags 1)", RELAYMAP_IOC_OPEN_CONSUMER, &oc, EINVAL);
	if (any_held())
		rm_bad("a refused OPEN_CONSUMER left a CPU claimed");
}

int main(int argc, char **argv)
{
	const char *name = argc == 3 && !strcmp(argv[1], "-n") ? argv[2] : NULL;
	unsigned int nr, c0;
	uint32_t bad_u[6];
	int32_t bad_s[6];
	char what[160];
	struct relaymap_cursor cur, before;
	struct relaymap_consume cons;
	struct relaymap_flush fl;
	struct relaymap_stats st;
	struct relaymap_info info;
	unsigned int seed;
	int dev, cfd, dbg;

	rm_init(argv[0], 120);
	if (!name)
		rm_die("usage: rmck_ioctl -n NAME");
	rm_open(&ch, name, 0);
	dev = rm_dev_open();
	if (dev < 0)
		rm_die("open %s: %s", RM_DEV, strerror(-dev));
	dbg = rm_open_control(name);
	rm_note("debugfs control file %s", dbg >= 0 ? "open" : "absent (not checked)");
	nr = ch.info.nr_cpu_ids;
	c0 = ch.cpus[0];
	bad_u[0] = nr;
	bad_u[1] = nr + 1;
	bad_u[2] = RELAYMAP_MAX_CPUS - 1 >= nr ? RELAYMAP_MAX_CPUS - 1 : nr + 7;
	bad_u[3] = RELAYMAP_MAX_CPUS;
	bad_u[4] = 0x7fffffff;
	bad_u[5] = 0xffffffff;
	bad_s[0] = (int32_t)nr;
	bad_s[1] = (int32_t)nr + 100;
	bad_s[2] = -2;
	bad_s[3] = -1000;
	bad_s[4] = INT32_MAX;
	bad_s[5] = INT32_MIN;

	/* /dev/relaymap's own ioctls, and OPEN_CONSUMER before anything is claimed. */
	expect_fd(dev, "GET_VERSION", RELAYMAP_IOC_GET_VERSION, NULL, 0);
	check_open_channel(dev, name);
	check_list(dev);
	check_open_consumer();

	/* Something to consume: a few records per CPU, made visible by FLUSH. */
	rm_set_phase("setup");
	if (!lg_present())
		rm_die("relaymap_loadgen is not loaded");
	lg_set("channel", name);
	lg_set("mode", "lossless");
	lg_setu("record_size", 64);
	lg_setu("rate", 0);
	lg_setu("duration_ms", 0);
	lg_setu("count", 50);
	lg_start();
	if (!lg_wait_idle(60000))
		rm_die("loadgen did not finish");
	lg_stop();
	rm_flush_x(ch.ctl, RELAYMAP_ALL_CPUS);
	rm_claim(&ch, 0);
	cfd = ch.fd[c0];
	rm_cursor_x(ch.ctl, c0, &cur);
	rm_note("cpu %u after 50 records + FLUSH: produced=%llu consumed=%llu", c0,
		(unsigned long long)cur.produced, (unsigned long long)cur.consumed);
	if (cur.produced < 1)
		rm_die("cpu %u: nothing produced after FLUSH; cannot test PUT_CONSUMED bounds", c0);

	rm_set_phase("bad cpu");
	for (unsigned int i = 0; i < 6; i++) {
		memset(&cur, 0, sizeof(cur));
		cur.size = sizeof(cur);
		cur.cpu = bad_u[i];
		snprintf(what, sizeof(what), "GET_CURSOR(cpu %u)", bad_u[i]);
		expect(what, RELAYMAP_IOC_GET_CURSOR, &cur, EINVAL);

		fl = (struct relaymap_flush){ sizeof(fl), bad_s[i] };
		snprintf(what, sizeof(what), "FLUSH(cpu %d)", bad_s[i]);
		expect(what, RELAYMAP_IOC_FLUSH, &fl, EINVAL);

		memset(&st, 0, sizeof(st));
		st.size = sizeof(st);
		st.cpu = bad_s[i];
		snprintf(what, sizeof(what), "GET_STATS(cpu %d)", bad_s[i]);
		expect(what, RELAYMAP_IOC_GET_STATS, &st, EINVAL);

		/* On a consumer fd the cpu given is ignored: its own CPU answers. */
		memset(&cur, 0, sizeof(cur));
		cur.size = sizeof(cur);
		cur.cpu = bad_u[i];
		snprintf(what, sizeof(what), "GET_CURSOR(cpu %u) on the consumer fd of cpu %u",
			 bad_u[i], c0);
		if (expect_fd(cfd, what, RELAYMAP_IOC_GET_CURSOR, &cur, 0) == 0)
			RM_EXPECT_EQ("GET_CURSOR on a consumer fd: cpu out", cur.cpu, c0);
	}
	/* A CPU below nr_cpu_ids without a buffer, if there is one. */
	for (unsigned int c = 0; c < nr && c < RELAYMAP_MAX_CPUS; c++) {
		if (rm_info_has_cpu(&ch.info, c))
			continue;
		memset(&cur, 0, sizeof(cur));
		cur.size = sizeof(cur);
		cur.cpu = c;
		snprintf(what, sizeof(what), "GET_CURSOR(cpu %u, no buffer)", c);
		expect(what, RELAYMAP_IOC_GET_CURSOR, &cur, EINVAL);
		break;
	}
	/* The valid forms work. */
	fl = (struct relaymap_flush){ sizeof(fl), RELAYMAP_ALL_CPUS };
	expect("FLUSH(all)", RELAYMAP_IOC_FLUSH, &fl, 0);
	memset(&st, 0, sizeof(st));
	st.size = sizeof(st);
	st.cpu = RELAYMAP_ALL_CPUS;
	expect("GET_STATS(all)", RELAYMAP_IOC_GET_STATS, &st, 0);
	for (unsigned int i = 0; i < ch.ncpus; i++) {
		fl = (struct relaymap_flush){ sizeof(fl), (int32_t)ch.cpus[i] };
		snprintf(what, sizeof(what), "FLUSH(cpu %u)", ch.cpus[i]);
		expect(what, RELAYMAP_IOC_FLUSH, &fl, 0);
	}
	/* Held: every CPU is ours now. */
	{
		struct relaymap_open_consumer oc;

		memset(&oc, 0, sizeof(oc));
		oc.size = sizeof(oc);
		oc.cpu = (int32_t)c0;
		snprintf(what, sizeof(what), "OPEN_CONSUMER(cpu %u) held by ourselves", c0);
		expect(what, RELAYMAP_IOC_OPEN_CONSUMER, &oc, EBUSY);
	}

	rm_set_phase("PUT_CONSUMED bounds");
	rm_cursor_x(ch.ctl, c0, &before);
	cons = (struct relaymap_consume){ sizeof(cons), 0, 1 };
	expect("PUT_CONSUMED(1) on the channel fd", RELAYMAP_IOC_PUT_CONSUMED, &cons, EPERM);
	cursor_unchanged(c0, &before, "PUT_CONSUMED on the channel fd");
	if (dbg >= 0) {
		expect_fd(dbg, "PUT_CONSUMED(1) on the debugfs control file",
			  RELAYMAP_IOC_PUT_CONSUMED, &cons, EPERM);
		cursor_unchanged(c0, &before, "PUT_CONSUMED on the debugfs control file");
	}
	cons = (struct relaymap_consume){ sizeof(cons), 1, 1 };
	expect_fd(cfd, "PUT_CONSUMED(1, reserved 1)", RELAYMAP_IOC_PUT_CONSUMED, &cons, EINVAL);
	cursor_unchanged(c0, &before, "PUT_CONSUMED(reserved 1)");
	cons = (struct relaymap_consume){ sizeof(cons), 0, 0 };
	expect_fd(cfd, "PUT_CONSUMED(count 0)", RELAYMAP_IOC_PUT_CONSUMED, &cons, EINVAL);
	cursor_unchanged(c0, &before, "PUT_CONSUMED(count 0)");
	cons.count = before.produced - before.consumed + 1;
	snprintf(what, sizeof(what), "PUT_CONSUMED(count %llu = produced - consumed + 1)",
		 (unsigned long long)cons.count);
	expect_fd(cfd, what, RELAYMAP_IOC_PUT_CONSUMED, &cons, EINVAL);
	cursor_unchanged(c0, &before, what);
	cons.count = ch.info.n_subbufs + 1;
	snprintf(what, sizeof(what), "PUT_CONSUMED(count %llu = n_subbufs + 1)",
		 (unsigned long long)cons.count);
	expect_fd(cfd, what, RELAYMAP_IOC_PUT_CONSUMED, &cons, EINVAL);
	cursor_unchanged(c0, &before, what);
	cons.count = UINT64_MAX;
	expect_fd(cfd, "PUT_CONSUMED(count UINT64_MAX, consumed 0)", RELAYMAP_IOC_PUT_CONSUMED, &cons, EINVAL);
	cursor_unchanged(c0, &before, "PUT_CONSUMED(count UINT64_MAX)");
	cons.count = 1;
	expect_fd(cfd, "PUT_CONSUMED(count 1)", RELAYMAP_IOC_PUT_CONSUMED, &cons, 0);
	rm_cursor_x(ch.ctl, c0, &before);
	RM_EXPECT_EQ("consumed after PUT_CONSUMED(1)", before.consumed, 1);
	/* consumed = 1 now: 1 + UINT64_MAX wraps to 0, which must not pass. */
	cons.count = UINT64_MAX;
	expect_fd(cfd, "PUT_CONSUMED(count UINT64_MAX, consumed 1: wraps)", RELAYMAP_IOC_PUT_CONSUMED, &cons, EINVAL);
	cursor_unchanged(c0, &before, "PUT_CONSUMED(count UINT64_MAX) with consumed 1");
	cons.count = UINT64_MAX - before.consumed + 1;
	expect_fd(cfd, "PUT_CONSUMED(count 2^64 - consumed: wraps to 0)", RELAYMAP_IOC_PUT_CONSUMED, &cons, EINVAL);
	cursor_unchanged(c0, &before, "PUT_CONSUMED(count 2^64 - consumed)");
	if (before.produced > before.consumed) {
		cons.count = before.produced - before.consumed;
		snprintf(what, sizeof(what), "PUT_CONSUMED(count %llu = produced - consumed)",
			 (unsigned long long)cons.count);
		expect_fd(cfd, what, RELAYMAP_IOC_PUT_CONSUMED, &cons, 0);
		rm_cursor_x(ch.ctl, c0, &cur);
		RM_EXPECT_EQ("consumed == produced after consuming all", cur.consumed, cur.produced);
		cons.count = 1;
		expect_fd(cfd, "PUT_CONSUMED(1) with nothing left", RELAYMAP_IOC_PUT_CONSUMED, &cons, EINVAL);
	}

	rm_set_phase("size field");
	{
		static const uint32_t small[] = { 0, 1, 4, 7 };
		union {
			struct relaymap_info info;
			struct relaymap_cursor cur;
			struct relaymap_cursors curs;
			struct relaymap_consume cons;
			struct relaymap_flush fl;
			struct relaymap_stats st;
			struct relaymap_list list;
			struct relaymap_open_channel och;
			struct relaymap_open_consumer ocs;
			uint8_t raw[sizeof(struct relaymap_info) + 256];
		} u;
		static struct relaymap_cursor arr[4];
		static char names[4][RELAYMAP_NAME_MAX];
		static int32_t fds[RELAYMAP_MAX_CPUS];
		const struct {
			const char *name;
			int fd;
			unsigned long req;
			uint32_t size;
		} ioc[] = {
			{ "GET_INFO", ch.ctl, RELAYMAP_IOC_GET_INFO, RELAYMAP_INFO_SIZE_VER0 },
			{ "GET_CURSOR", ch.ctl, RELAYMAP_IOC_GET_CURSOR, RELAYMAP_CURSOR_SIZE_VER0 },
			{ "GET_CURSOR (consumer fd)", cfd, RELAYMAP_IOC_GET_CURSOR, RELAYMAP_CURSOR_SIZE_VER0 },
			{ "GET_CURSORS", ch.ctl, RELAYMAP_IOC_GET_CURSORS, RELAYMAP_CURSORS_SIZE_VER0 },
			{ "PUT_CONSUMED", cfd, RELAYMAP_IOC_PUT_CONSUMED, RELAYMAP_CONSUME_SIZE_VER0 },
			{ "FLUSH", ch.ctl, RELAYMAP_IOC_FLUSH, RELAYMAP_FLUSH_SIZE_VER0 },
			{ "GET_STATS", ch.ctl, RELAYMAP_IOC_GET_STATS, RELAYMAP_STATS_SIZE_VER0 },
			{ "LIST", dev, RELAYMAP_IOC_LIST, RELAYMAP_LIST_SIZE_VER0 },
			{ "OPEN_CHANNEL", dev, RELAYMAP_IOC_OPEN_CHANNEL, RELAYMAP_OPEN_CHANNEL_SIZE_VER0 },
			{ "OPEN_CONSUMER", ch.ctl, RELAYMAP_IOC_OPEN_CONSUMER, RELAYMAP_OPEN_CONSUMER_SIZE_VER0 },
		};

		for (unsigned int i = 0; i < sizeof(ioc) / sizeof(ioc[0]); i++) {
			uint32_t sizes[6];
			unsigned int ns = 0;

			for (unsigned int k = 0; k < 4; k++)
				sizes[ns++] = small[k];
			sizes[ns++] = ioc[i].size - 1;
			sizes[ns++] = ioc[i].size / 2;
			for (unsigned int k = 0; k < ns; k++) {
				memset(&u, 0, sizeof(u));
				/* Everything valid but the size. */
				if (ioc[i].req == RELAYMAP_IOC_PUT_CONSUMED)
					u.cons.count = 1;
				if (ioc[i].req == RELAYMAP_IOC_GET_CURSOR)
					u.cur.cpu = c0;
				if (ioc[i].req == RELAYMAP_IOC_GET_CURSORS) {
					u.curs.nr = 4;
					u.curs.cursor_size = sizeof(arr[0]);
					u.curs.cursors = (uint64_t)(uintptr_t)arr;
				}
				if (ioc[i].req == RELAYMAP_IOC_FLUSH)
					u.fl.cpu = (int32_t)c0;
				if (ioc[i].req == RELAYMAP_IOC_GET_STATS)
					u.st.cpu = (int32_t)c0;
				if (ioc[i].req == RELAYMAP_IOC_LIST) {
					u.list.nr = 4;
					u.list.names = (uint64_t)(uintptr_t)names;
				}
				if (ioc[i].req == RELAYMAP_IOC_OPEN_CHANNEL)
					snprintf(u.och.name, sizeof(u.och.name), "%s", name);
				if (ioc[i].req == RELAYMAP_IOC_OPEN_CONSUMER) {
					u.ocs.cpu = RELAYMAP_ALL_CPUS;
					u.ocs.nr_fds = nr;
					u.ocs.fds = (uint64_t)(uintptr_t)fds;
				}
				u.info.size = sizes[k];
				snprintf(what, sizeof(what), "%s with size %u (< first version %u)",
					 ioc[i].name, sizes[k], ioc[i].size);
				expect_fd(ioc[i].fd, what, ioc[i].req, &u, EINVAL);
			}
			snprintf(what, sizeof(what), "%s(NULL)", ioc[i].name);
			expect_fd(ioc[i].fd, what, ioc[i].req, NULL, EFAULT);
			snprintf(what, sizeof(what), "%s((void *)8)", ioc[i].name);
			expect_fd(ioc[i].fd, what, ioc[i].req, (void *)8, EFAULT);
		}
		/* GET_CURSORS: elements smaller than the first cursor version. */
		memset(&u, 0, sizeof(u));
		u.curs.size = sizeof(u.curs);
		u.curs.nr = 4;
		u.curs.cursor_size = RELAYMAP_CURSOR_SIZE_VER0 - 8;
		u.curs.cursors = (uint64_t)(uintptr_t)arr;
		expect("GET_CURSORS(cursor_size < first version)", RELAYMAP_IOC_GET_CURSORS, &u, EINVAL);
		u.curs.cursor_size = sizeof(arr[0]);
		u.curs.cursors = 8;
		expect("GET_CURSORS(cursors (void *)8)", RELAYMAP_IOC_GET_CURSORS, &u, EFAULT);

		/* Garbage in the output fields (size exact): all replaced. */
		memset(&u, 0xa5, sizeof(u));
		u.info.size = sizeof(struct relaymap_info);
		expect("GET_INFO over 0xa5 garbage", RELAYMAP_IOC_GET_INFO, &u, 0);
		info = u.info;
		info.size = ch.info.size;
		if (memcmp(&info, &ch.info, sizeof(info)))
			rm_bad("GET_INFO over 0xa5 garbage differs from GET_INFO over zeroes (output not zeroed before filling?)");

		memset(&u, 0xa5, sizeof(u));
		u.cur.size = sizeof(struct relaymap_cursor);
		u.cur.cpu = c0;
		expect("GET_CURSOR over 0xa5 garbage", RELAYMAP_IOC_GET_CURSOR, &u, 0);
		rm_cursor_x(ch.ctl, c0, &cur);
		if (memcmp(&u.cur, &cur, sizeof(cur)))
			rm_bad("GET_CURSOR over 0xa5 garbage returned other bytes than a clean GET_CURSOR (holder_comm padding or an output not zeroed?)");

		memset(&u, 0xa5, sizeof(u));
		u.st.size = sizeof(struct relaymap_stats);
		u.st.cpu = RELAYMAP_ALL_CPUS;
		expect("GET_STATS over 0xa5 garbage", RELAYMAP_IOC_GET_STATS, &u, 0);
		rm_stats_x(ch.ctl, RELAYMAP_ALL_CPUS, &st);
		if (memcmp(&u.st, &st, sizeof(st)))
			rm_bad("GET_STATS over 0xa5 garbage returned other values than a clean GET_STATS");
	}

	rm_set_phase("ioctls of another fd kind");
	{
		uint8_t buf[1024];
		const struct {
			const char *name;
			unsigned long req;
		} chan_only[] = {
			{ "GET_INFO", RELAYMAP_IOC_GET_INFO },
			{ "GET_CURSORS", RELAYMAP_IOC_GET_CURSORS },
			{ "FLUSH", RELAYMAP_IOC_FLUSH },
			{ "RESET", RELAYMAP_IOC_RESET },
			{ "GET_STATS", RELAYMAP_IOC_GET_STATS },
			{ "OPEN_CONSUMER", RELAYMAP_IOC_OPEN_CONSUMER },
		}, dev_only[] = {
			{ "GET_VERSION", RELAYMAP_IOC_GET_VERSION },
			{ "LIST", RELAYMAP_IOC_LIST },
			{ "OPEN_CHANNEL", RELAYMAP_IOC_OPEN_CHANNEL },
		};

		/* Valid-looking arguments, so only the fd kind is wrong. */
		for (unsigned int i = 0; i < sizeof(chan_only) / sizeof(chan_only[0]); i++) {
			memset(buf, 0, sizeof(buf));
			*(uint32_t *)buf = (uint32_t)_IOC_SIZE(chan_only[i].req);
			snprintf(what, sizeof(what), "%s on a consumer fd", chan_only[i].name);
			expect_fd(cfd, what, chan_only[i].req, buf, ENOTTY);
			memset(buf, 0, sizeof(buf));
			*(uint32_t *)buf = (uint32_t)_IOC_SIZE(chan_only[i].req);
			snprintf(what, sizeof(what), "%s on /dev/relaymap", chan_only[i].name);
			expect_fd(dev, what, chan_only[i].req, buf, ENOTTY);
		}
		for (unsigned int i = 0; i < sizeof(dev_only) / sizeof(dev_only[0]); i++) {
			memset(buf, 0, sizeof(buf));
			*(uint32_t *)buf = (uint32_t)_IOC_SIZE(dev_only[i].req);
			snprintf(what, sizeof(what), "%s on a channel fd", dev_only[i].name);
			expect_fd(ch.ctl, what, dev_only[i].req, buf, ENOTTY);
			memset(buf, 0, sizeof(buf));
			*(uint32_t *)buf = (uint32_t)_IOC_SIZE(dev_only[i].req);
			snprintf(what, sizeof(what), "%s on a consumer fd", dev_only[i].name);
			expect_fd(cfd, what, dev_only[i].req, buf, ENOTTY);
		}
		memset(buf, 0, sizeof(buf));
		*(uint32_t *)buf = RELAYMAP_CONSUME_SIZE_VER0;
		((struct relaymap_consume *)buf)->count = 1;
		expect_fd(dev, "PUT_CONSUMED on /dev/relaymap", RELAYMAP_IOC_PUT_CONSUMED, buf, ENOTTY);
	}

	rm_set_phase("unknown ioctls");
	{
		unsigned long nums[20];
		unsigned int n = 0;
		int fds_kinds[4] = { dev, ch.ctl, cfd, dbg };
		const char *kind[4] = { "/dev/relaymap", "channel fd", "consumer fd", "debugfs control" };

		nums[n++] = _IO(RELAYMAP_IOC_MAGIC, 0x7f);
		nums[n++] = _IO(RELAYMAP_IOC_MAGIC, 0x00);
		nums[n++] = _IOWR(RELAYMAP_IOC_MAGIC, 0x09, struct relaymap_stats);
		nums[n++] = _IOWR(RELAYMAP_IOC_MAGIC, 0x1f, struct relaymap_info);
		nums[n++] = _IOWR(RELAYMAP_IOC_MAGIC, 0x23, struct relaymap_info);
		nums[n++] = _IOWR(RELAYMAP_IOC_MAGIC, 0xff, struct relaymap_info);
		nums[n++] = _IOWR('Z', 0x01, struct relaymap_info);
		nums[n++] = _IOWR('Z', 0x22, struct relaymap_open_channel);
		nums[n++] = 0x12345678;
		seed = (unsigned int)rm_now_ns();
		srand(seed);
		while (n < 20) {
			unsigned int nr_ = (unsigned int)rand() % 0x100;
			unsigned int dir = (unsigned int)rand() % 4;
			unsigned int size = (unsigned int)rand() % 512;

			/* Not a defined command number: 0x01..0x08, 0x20..0x22. */
			if ((nr_ >= 0x01 && nr_ <= 0x08) || (nr_ >= 0x20 && nr_ <= 0x22))
				continue;
			nums[n++] = _IOC(dir, RELAYMAP_IOC_MAGIC, nr_, size);
		}
		rm_note("random ioctl numbers from seed %u", seed);
		for (unsigned int k = 0; k < 4; k++) {
			if (fds_kinds[k] < 0)
				continue;
			for (unsigned int i = 0; i < n; i++) {
				uint8_t buf[1024];

				memset(buf, 0, sizeof(buf));
				snprintf(what, sizeof(what), "unknown ioctl %#lx on the %s",
					 nums[i], kind[k]);
				expect_fd(fds_kinds[k], what, nums[i], buf, ENOTTY);
			}
		}
	}
	/* Still healthy after all that. */
	rm_set_phase("after");
	if (rm_get_info(ch.ctl, &info))
		rm_bad("GET_INFO fails after the error checks");
	if (rm_get_cursor(cfd, c0, &cur))
		rm_bad("GET_CURSOR on the consumer fd fails after the error checks");
	rm_note("SUMMARY %lu ioctl checks", checks);
	if (dbg >= 0)
		close(dbg);
	close(dev);
	rm_close(&ch);
	return rm_exit();
}

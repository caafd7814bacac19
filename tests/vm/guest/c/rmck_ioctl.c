/* SPDX-License-Identifier: MIT */
/*
 * rmck_ioctl - argument validation of every control ioctl.
 *
 *   rmck_ioctl -n NAME
 *
 * Needs relaymap_loadgen loaded (it writes a few records so that
 * PUT_CONSUMED has something to consume). Checks: bad cpu -> EINVAL for
 * GET_CURSOR, PUT_CONSUMED, FLUSH, GET_STATS; PUT_CONSUMED count 0 and
 * consumed + count > produced (also with 64-bit overflow) -> EINVAL and
 * the cursor unchanged; size smaller than v1 -> EINVAL; a larger size
 * works and the kernel writes nothing past its own struct; output
 * fields are zeroed before being filled; bad pointer -> EFAULT; unknown
 * ioctl numbers -> ENOTTY.
 */
#include "rmtest.h"

static struct rm_chan ch;
static unsigned long checks;

/* Expect ioctl(req, arg) to fail with `want` (0 = succeed). */
static void expect(const char *what, unsigned long req, void *arg, int want)
{
	int got = rm_ioctl(ch.ctl, req, arg);

	checks++;
	if (got == -want)
		return;
	if (want == 0)
		rm_bad("%s: failed with %s, expected success", what, strerror(-got));
	else if (got == 0)
		rm_bad("%s: succeeded, expected %s", what, strerror(want));
	else
		rm_bad("%s: failed with %s, expected %s", what, strerror(-got),
		       strerror(want));
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

	rm_init(argv[0], 120);
	if (!name)
		rm_die("usage: rmck_ioctl -n NAME");
	rm_open(&ch, name, 0);
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

		cons = (struct relaymap_consume){ sizeof(cons), bad_u[i], 1 };
		snprintf(what, sizeof(what), "PUT_CONSUMED(cpu %u, 1)", bad_u[i]);
		expect(what, RELAYMAP_IOC_PUT_CONSUMED, &cons, EINVAL);

		fl = (struct relaymap_flush){ sizeof(fl), bad_s[i] };
		snprintf(what, sizeof(what), "FLUSH(cpu %d)", bad_s[i]);
		expect(what, RELAYMAP_IOC_FLUSH, &fl, EINVAL);

		memset(&st, 0, sizeof(st));
		st.size = sizeof(st);
		st.cpu = bad_s[i];
		snprintf(what, sizeof(what), "GET_STATS(cpu %d)", bad_s[i]);
		expect(what, RELAYMAP_IOC_GET_STATS, &st, EINVAL);
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

	rm_set_phase("PUT_CONSUMED bounds");
	rm_cursor_x(ch.ctl, c0, &before);
	cons = (struct relaymap_consume){ sizeof(cons), c0, 0 };
	expect("PUT_CONSUMED(count 0)", RELAYMAP_IOC_PUT_CONSUMED, &cons, EINVAL);
	cursor_unchanged(c0, &before, "PUT_CONSUMED(count 0)");
	cons.count = before.produced - before.consumed + 1;
	snprintf(what, sizeof(what), "PUT_CONSUMED(count %llu = produced - consumed + 1)",
		 (unsigned long long)cons.count);
	expect(what, RELAYMAP_IOC_PUT_CONSUMED, &cons, EINVAL);
	cursor_unchanged(c0, &before, what);
	cons.count = ch.info.n_subbufs + 1;
	snprintf(what, sizeof(what), "PUT_CONSUMED(count %llu = n_subbufs + 1)",
		 (unsigned long long)cons.count);
	expect(what, RELAYMAP_IOC_PUT_CONSUMED, &cons, EINVAL);
	cursor_unchanged(c0, &before, what);
	cons.count = UINT64_MAX;
	expect("PUT_CONSUMED(count UINT64_MAX, consumed 0)", RELAYMAP_IOC_PUT_CONSUMED, &cons, EINVAL);
	cursor_unchanged(c0, &before, "PUT_CONSUMED(count UINT64_MAX)");
	cons.count = 1;
	expect("PUT_CONSUMED(count 1)", RELAYMAP_IOC_PUT_CONSUMED, &cons, 0);
	rm_cursor_x(ch.ctl, c0, &before);
	RM_EXPECT_EQ("consumed after PUT_CONSUMED(1)", before.consumed, 1);
	/* consumed = 1 now: 1 + UINT64_MAX wraps to 0, which must not pass. */
	cons.count = UINT64_MAX;
	expect("PUT_CONSUMED(count UINT64_MAX, consumed 1: wraps)", RELAYMAP_IOC_PUT_CONSUMED, &cons, EINVAL);
	cursor_unchanged(c0, &before, "PUT_CONSUMED(count UINT64_MAX) with consumed 1");
	cons.count = UINT64_MAX - before.consumed + 1;
	expect("PUT_CONSUMED(count 2^64 - consumed: wraps to 0)", RELAYMAP_IOC_PUT_CONSUMED, &cons, EINVAL);
	cursor_unchanged(c0, &before, "PUT_CONSUMED(count 2^64 - consumed)");
	if (before.produced > before.consumed) {
		cons.count = before.produced - before.consumed;
		snprintf(what, sizeof(what), "PUT_CONSUMED(count %llu = produced - consumed)",
			 (unsigned long long)cons.count);
		expect(what, RELAYMAP_IOC_PUT_CONSUMED, &cons, 0);
		rm_cursor_x(ch.ctl, c0, &cur);
		RM_EXPECT_EQ("consumed == produced after consuming all", cur.consumed, cur.produced);
		cons.count = 1;
		expect("PUT_CONSUMED(1) with nothing left", RELAYMAP_IOC_PUT_CONSUMED, &cons, EINVAL);
	}

	rm_set_phase("size field");
	{
		static const uint32_t small[] = { 0, 1, 4, 7 };
		union {
			struct relaymap_info info;
			struct relaymap_cursor cur;
			struct relaymap_consume cons;
			struct relaymap_flush fl;
			struct relaymap_stats st;
			uint8_t raw[sizeof(struct relaymap_info) + 256];
		} u;
		static const struct {
			const char *name;
			unsigned long req;
			uint32_t size;
		} ioc[] = {
			{ "GET_INFO", RELAYMAP_IOC_GET_INFO, sizeof(struct relaymap_info) },
			{ "GET_CURSOR", RELAYMAP_IOC_GET_CURSOR, sizeof(struct relaymap_cursor) },
			{ "PUT_CONSUMED", RELAYMAP_IOC_PUT_CONSUMED, sizeof(struct relaymap_consume) },
			{ "FLUSH", RELAYMAP_IOC_FLUSH, sizeof(struct relaymap_flush) },
			{ "GET_STATS", RELAYMAP_IOC_GET_STATS, sizeof(struct relaymap_stats) },
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
				u.info.size = sizes[k];
				/* cpu 0 / count 1 are valid: only the size is wrong. */
				if (ioc[i].req == RELAYMAP_IOC_PUT_CONSUMED)
					u.cons.count = 1;
				if (ioc[i].req == RELAYMAP_IOC_GET_CURSOR)
					u.cur.cpu = c0;
				if (ioc[i].req == RELAYMAP_IOC_FLUSH)
					u.fl.cpu = (int32_t)c0;
				if (ioc[i].req == RELAYMAP_IOC_GET_STATS)
					u.st.cpu = (int32_t)c0;
				snprintf(what, sizeof(what), "%s with size %u (< v1 size %u)",
					 ioc[i].name, sizes[k], ioc[i].size);
				expect(what, ioc[i].req, &u, EINVAL);
			}
			snprintf(what, sizeof(what), "%s(NULL)", ioc[i].name);
			expect(what, ioc[i].req, NULL, EFAULT);
			snprintf(what, sizeof(what), "%s((void *)8)", ioc[i].name);
			expect(what, ioc[i].req, (void *)8, EFAULT);
		}

		/* A newer caller (bigger size): works, nothing written past the kernel's struct. */
		memset(&u, 0xa5, sizeof(u));
		u.info.size = sizeof(struct relaymap_info) + 128;
		expect("GET_INFO with size + 128", RELAYMAP_IOC_GET_INFO, &u, 0);
		for (size_t k = sizeof(struct relaymap_info); k < sizeof(struct relaymap_info) + 128; k++)
			if (u.raw[k] != 0xa5) {
				rm_bad("GET_INFO with a bigger size wrote byte %zu past its struct (%#x)",
				       k, u.raw[k]);
				break;
			}
		info = u.info;
		RM_EXPECT_EQ("GET_INFO(size + 128).alloc_size", info.alloc_size, ch.info.alloc_size);
		RM_EXPECT_EQ("GET_INFO(size + 128).abi_version", info.abi_version, RELAYMAP_ABI_VERSION);
		if (memcmp(info.cpu_mask, ch.info.cpu_mask, sizeof(info.cpu_mask)) ||
		    strncmp(info.name, ch.info.name, sizeof(info.name)))
			rm_bad("GET_INFO(size + 128) name/cpu_mask differ from a normal GET_INFO");
		/* Garbage in the output fields (size exact): all replaced. */
		memset(&u, 0xa5, sizeof(u));
		u.info.size = sizeof(struct relaymap_info);
		expect("GET_INFO over 0xa5 garbage", RELAYMAP_IOC_GET_INFO, &u, 0);
		info = u.info;
		info.size = ch.info.size;
		if (memcmp(&info, &ch.info, sizeof(info)))
			rm_bad("GET_INFO over 0xa5 garbage differs from GET_INFO over zeroes (output not zeroed before filling?)");

		memset(&u, 0xa5, sizeof(u));
		u.cur.size = sizeof(struct relaymap_cursor) + 64;
		u.cur.cpu = c0;
		expect("GET_CURSOR with size + 64", RELAYMAP_IOC_GET_CURSOR, &u, 0);
		for (size_t k = sizeof(struct relaymap_cursor); k < sizeof(struct relaymap_cursor) + 64; k++)
			if (u.raw[k] != 0xa5) {
				rm_bad("GET_CURSOR with a bigger size wrote byte %zu past its struct", k);
				break;
			}
		rm_cursor_x(ch.ctl, c0, &cur);
		if (u.cur.produced != cur.produced || u.cur.consumed != cur.consumed ||
		    u.cur.records_dropped != cur.records_dropped ||
		    u.cur.subbufs_lapped != cur.subbufs_lapped)
			rm_bad("GET_CURSOR over 0xa5 garbage with size + 64 returned other values than a clean GET_CURSOR");

		memset(&u, 0xa5, sizeof(u));
		u.st.size = sizeof(struct relaymap_stats) + 64;
		u.st.cpu = RELAYMAP_ALL_CPUS;
		expect("GET_STATS with size + 64", RELAYMAP_IOC_GET_STATS, &u, 0);
		for (size_t k = sizeof(struct relaymap_stats); k < sizeof(struct relaymap_stats) + 64; k++)
			if (u.raw[k] != 0xa5) {
				rm_bad("GET_STATS with a bigger size wrote byte %zu past its struct", k);
				break;
			}
		rm_stats_x(ch.ctl, RELAYMAP_ALL_CPUS, &st);
		if (u.st.records_written != st.records_written ||
		    u.st.subbufs_produced != st.subbufs_produced ||
		    u.st.resets != st.resets)
			rm_bad("GET_STATS over 0xa5 garbage returned other values than a clean GET_STATS");

		memset(&u, 0xa5, sizeof(u));
		u.fl.size = sizeof(struct relaymap_flush) + 64;
		u.fl.cpu = RELAYMAP_ALL_CPUS;
		expect("FLUSH with size + 64 (garbage after)", RELAYMAP_IOC_FLUSH, &u, 0);
	}

	rm_set_phase("unknown ioctls");
	{
		unsigned long nums[16];
		unsigned int n = 0;

		nums[n++] = _IO(RELAYMAP_IOC_MAGIC, 0x7f);
		nums[n++] = _IO(RELAYMAP_IOC_MAGIC, 0x00);
		nums[n++] = _IOWR(RELAYMAP_IOC_MAGIC, 0x07, struct relaymap_stats);
		nums[n++] = _IOWR(RELAYMAP_IOC_MAGIC, 0xff, struct relaymap_info);
		nums[n++] = _IOWR('Z', 0x01, struct relaymap_info);
		nums[n++] = 0x12345678;
		seed = (unsigned int)rm_now_ns();
		srand(seed);
		while (n < 14) {
			unsigned int nr_ = 0x08 + (unsigned int)rand() % (0x100 - 0x08);
			unsigned int dir = (unsigned int)rand() % 4;
			unsigned int size = (unsigned int)rand() % 512;

			nums[n++] = _IOC(dir, RELAYMAP_IOC_MAGIC, nr_, size);
		}
		rm_note("random ioctl numbers from seed %u", seed);
		for (unsigned int i = 0; i < n; i++) {
			uint8_t buf[1024];

			memset(buf, 0, sizeof(buf));
			snprintf(what, sizeof(what), "unknown ioctl %#lx", nums[i]);
			expect(what, nums[i], buf, ENOTTY);
		}
	}
	/* Still healthy after all that. */
	rm_set_phase("after");
	if (rm_get_info(ch.ctl, &info))
		rm_bad("GET_INFO fails after the error checks");
	rm_note("SUMMARY %lu ioctl checks", checks);
	rm_close(&ch);
	return rm_exit();
}

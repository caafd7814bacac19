/* SPDX-License-Identifier: MIT */
/*
 * rmck_abiver - the extensible-struct rule of every ioctl
 * (copy_struct_from_user() semantics, relaymap_abi.h "Extensible ioctl
 * structs").
 *
 *   rmck_abiver -n NAME
 *
 * Needs relaymap_loadgen loaded and a no-overwrite channel with room for
 * a few thousand 64-byte records per CPU (e.g. 4096 x 64). For every
 * ioctl that takes a struct (LIST, OPEN_CHANNEL on /dev/relaymap;
 * GET_INFO, GET_CURSOR, GET_CURSORS, FLUSH, GET_STATS, OPEN_CONSUMER of
 * one CPU and of ALL on a channel fd; GET_CURSOR and PUT_CONSUMED on a
 * consumer fd):
 *  - the command number encodes the FIRST version's size
 *    (RELAYMAP_*_SIZE_VER0), magic 0xB7, the documented number and
 *    direction; this build's sizeof equals it;
 *  - size == first version: works (with its effect); a read-write ioctl
 *    sets size to the bytes it wrote (the first version's here);
 *  - size == first version + 8, + 64, + a tail that crosses into the next
 *    page, all with the tail zeroed: works the same, with the same
 *    answer, nothing written past the kernel's struct, size set to the
 *    kernel's size (the caller learns which fields were filled) - the
 *    same command number, as a caller built with a bigger struct uses;
 *  - a non-zero byte anywhere in the tail (first, middle, last, across
 *    the page): E2BIG and no effect (no fd, no claim, nothing consumed
 *    or flushed);
 *  - a tail that runs into an unmapped page: EFAULT, no effect;
 *  - size 0, 4, first version - 1, first version - 4: EINVAL, no effect.
 * Also GET_CURSORS with cursor_size bigger than the first cursor
 * version: elements at the caller's stride, each filled; and GET_VERSION.
 * A command number with the right _IOC_NR but another size is only
 * reported (the header does not define it).
 */
#include "rmtest.h"

#include <stddef.h>

_Static_assert(sizeof(struct relaymap_info) == RELAYMAP_INFO_SIZE_VER0, "info");
_Static_assert(sizeof(struct relaymap_cursor) == RELAYMAP_CURSOR_SIZE_VER0, "cursor");
_Static_assert(sizeof(struct relaymap_cursors) == RELAYMAP_CURSORS_SIZE_VER0, "cursors");
_Static_assert(sizeof(struct relaymap_consume) == RELAYMAP_CONSUME_SIZE_VER0, "consume");
_Static_assert(sizeof(struct relaymap_flush) == RELAYMAP_FLUSH_SIZE_VER0, "flush");
_Static_assert(sizeof(struct relaymap_stats) == RELAYMAP_STATS_SIZE_VER0, "stats");
_Static_assert(sizeof(struct relaymap_list) == RELAYMAP_LIST_SIZE_VER0, "list");
_Static_assert(sizeof(struct relaymap_open_channel) == RELAYMAP_OPEN_CHANNEL_SIZE_VER0, "och");
_Static_assert(sizeof(struct relaymap_open_consumer) == RELAYMAP_OPEN_CONSUMER_SIZE_VER0, "ocs");

enum kind { DEV, CHAN, CONS };
enum id {
	C_LIST, C_OPEN_CHANNEL, C_GET_INFO, C_GET_CURSOR, C_GET_CURSORS, C_FLUSH,
	C_GET_STATS, C_OPEN_CONSUMER_ONE, C_OPEN_CONSUMER_ALL, C_GET_CURSOR_CONS,
	C_PUT_CONSUMED, C_NCASES
};

struct ioc_case {
	const char *name;
	unsigned long cmd;
	uint32_t ver0;
	unsigned int nr;
	unsigned int dir;
	enum kind kind;
};

static const struct ioc_case cases[C_NCASES] = {
	[C_LIST] = { "LIST", RELAYMAP_IOC_LIST, RELAYMAP_LIST_SIZE_VER0, 0x21,
		     _IOC_READ | _IOC_WRITE, DEV },
	[C_OPEN_CHANNEL] = { "OPEN_CHANNEL", RELAYMAP_IOC_OPEN_CHANNEL,
			     RELAYMAP_OPEN_CHANNEL_SIZE_VER0, 0x22, _IOC_WRITE, DEV },
	[C_GET_INFO] = { "GET_INFO", RELAYMAP_IOC_GET_INFO, RELAYMAP_INFO_SIZE_VER0,
			 0x01, _IOC_READ | _IOC_WRITE, CHAN },
	[C_GET_CURSOR] = { "GET_CURSOR", RELAYMAP_IOC_GET_CURSOR,
			   RELAYMAP_CURSOR_SIZE_VER0, 0x02, _IOC_READ | _IOC_WRITE, CHAN },
	[C_GET_CURSORS] = { "GET_CURSORS", RELAYMAP_IOC_GET_CURSORS,
			    RELAYMAP_CURSORS_SIZE_VER0, 0x07, _IOC_READ | _IOC_WRITE, CHAN },
	[C_FLUSH] = { "FLUSH", RELAYMAP_IOC_FLUSH, RELAYMAP_FLUSH_SIZE_VER0, 0x04,
		      _IOC_WRITE, CHAN },
	[C_GET_STATS] = { "GET_STATS", RELAYMAP_IOC_GET_STATS, RELAYMAP_STATS_SIZE_VER0,
			  0x06, _IOC_READ | _IOC_WRITE, CHAN },
	[C_OPEN_CONSUMER_ONE] = { "OPEN_CONSUMER(cpu)", RELAYMAP_IOC_OPEN_CONSUMER,
				  RELAYMAP_OPEN_CONSUMER_SIZE_VER0, 0x08,
				  _IOC_READ | _IOC_WRITE, CHAN },
	[C_OPEN_CONSUMER_ALL] = { "OPEN_CONSUMER(ALL)", RELAYMAP_IOC_OPEN_CONSUMER,
				  RELAYMAP_OPEN_CONSUMER_SIZE_VER0, 0x08,
				  _IOC_READ | _IOC_WRITE, CHAN },
	[C_GET_CURSOR_CONS] = { "GET_CURSOR(consumer fd)", RELAYMAP_IOC_GET_CURSOR,
				RELAYMAP_CURSOR_SIZE_VER0, 0x02, _IOC_READ | _IOC_WRITE, CONS },
	[C_PUT_CONSUMED] = { "PUT_CONSUMED", RELAYMAP_IOC_PUT_CONSUMED,
			     RELAYMAP_CONSUME_SIZE_VER0, 0x03, _IOC_WRITE, CONS },
};

static struct rm_chan ch;
static const char *chan_name;
static int dev = -1, cons_fd = -1;
static unsigned int c0;
static unsigned long checks;
static size_t page;
static uint8_t *area;		/* two pages; the second can be made PROT_NONE */
static char list_names[8][RELAYMAP_NAME_MAX];
static struct relaymap_cursor cursors_arr[RELAYMAP_MAX_CPUS];
static int32_t all_fds[RELAYMAP_MAX_CPUS];

static int fd_of(enum kind k)
{
	return k == DEV ? dev : k == CHAN ? ch.ctl : cons_fd;
}

/* Valid inputs of case id into the struct at p (size set by the caller). */
static void fill(enum id id, void *p)
{
	switch (id) {
	case C_LIST: {
		struct relaymap_list *l = p;

		l->nr = 8;
		l->names = (uint64_t)(uintptr_t)list_names;
		break;
	}
	case C_OPEN_CHANNEL:
		snprintf(((struct relaymap_open_channel *)p)->name, RELAYMAP_NAME_MAX,
			 "%s", chan_name);
		break;
	case C_GET_CURSOR:
	case C_GET_CURSOR_CONS:
		((struct relaymap_cursor *)p)->cpu = c0;
		break;
	case C_GET_CURSORS: {
		struct relaymap_cursors *cs = p;

		cs->first_cpu = 0;
		cs->nr = ch.info.nr_cpu_ids;
		cs->cursor_size = sizeof(struct relaymap_cursor);
		cs->cursors = (uint64_t)(uintptr_t)cursors_arr;
		break;
	}
	case C_FLUSH:
		((struct relaymap_flush *)p)->cpu = (int32_t)c0;
		break;
	case C_GET_STATS:
		((struct relaymap_stats *)p)->cpu = (int32_t)c0;
		break;
	case C_OPEN_CONSUMER_ONE:
		((struct relaymap_open_consumer *)p)->cpu = (int32_t)c0;
		break;
	case C_OPEN_CONSUMER_ALL: {
		struct relaymap_open_consumer *oc = p;

		for (unsigned int c = 0; c < RELAYMAP_MAX_CPUS; c++)
			all_fds[c] = -2;
		oc->cpu = RELAYMAP_ALL_CPUS;
		oc->nr_fds = ch.info.nr_cpu_ids;
		oc->fds = (uint64_t)(uintptr_t)all_fds;
		break;
	}
	case C_PUT_CONSUMED:
		((struct relaymap_consume *)p)->count = 1;
		break;
	default:
		break;
	}
}

/* Held-CPU bitmask (first 64 CPUs) from GET_CURSOR on the channel fd. */
static uint64_t held_mask(void)
{
	uint64_t m = 0;

	for (unsigned int i = 0; i < ch.ncpus && ch.cpus[i] < 64; i++) {
		struct relaymap_cursor c;

		rm_cursor_x(ch.ctl, ch.cpus[i], &c);
		if (c.flags & RELAYMAP_CURSOR_HELD)
			m |= 1ULL << ch.cpus[i];
	}
	return m;
}

static struct relaymap_cursor cursor_c0(void)
{
	struct relaymap_cursor c;

	rm_cursor_x(ch.ctl, c0, &c);
	return c;
}

/* A few records on c0's CPU (every CPU, in fact), not yet flushed. */
static void make_partial(void)
{
	lg_setu("count", 5);
	lg_start();
	if (!lg_wait_idle(60000))
		rm_die("loadgen did not write 5 records");
	lg_stop();
}

/* What the call may change, before it. */
struct state {
	uint64_t held;
	uint64_t produced, consumed;
};

static struct state snap(void)
{
	struct relaymap_cursor c = cursor_c0();

	return (struct state){ held_mask(), c.produced, c.consumed };
}

/* Prepare the world so that a successful call has a visible effect. */
static void prepare(enum id id)
{
	if (id == C_FLUSH)
		make_partial();
}

/*
 * After a call: rc is the ioctl's return (fd for OPEN_*), err its -errno.
 * ok = the call was expected to succeed. Checks the effect (or its
 * absence) and undoes it (closes fds).
 */
static void effect(enum id id, const char *what, int rc, bool ok, const struct state *b)
{
	struct state a = snap();

	switch (id) {
	case C_OPEN_CHANNEL:
		if (rc >= 0) {
			if (!ok)
				rm_bad("%s: returned fd %d although it failed", what, rc);
			close(rc);
		}
		break;
	case C_OPEN_CONSUMER_ONE:
		if (ok) {
			if (rc < 0 || !(a.held & (1ULL << c0)))
				rm_bad("%s: no consumer fd / cpu %u not held after success (rc %d, held %#llx)",
				       what, c0, rc, (unsigned long long)a.held);
		} else if (a.held != b->held) {
			rm_bad("%s: refused but the claims changed: %#llx -> %#llx", what,
			       (unsigned long long)b->held, (unsigned long long)a.held);
		}
		if (rc >= 0)
			close(rc);
		break;
	case C_OPEN_CONSUMER_ALL: {
		unsigned int opened = 0;

		for (unsigned int c = 0; c < ch.info.nr_cpu_ids; c++)
			if (all_fds[c] >= 0) {
				opened++;
				close(all_fds[c]);
			}
		if (ok && opened != ch.ncpus)
			rm_bad("%s: %u consumer fds for %u CPUs", what, opened, ch.ncpus);
		if (!ok && (opened || a.held != b->held))
			rm_bad("%s: refused but %u fds returned / claims %#llx -> %#llx", what,
			       opened, (unsigned long long)b->held, (unsigned long long)a.held);
		break;
	}
	case C_PUT_CONSUMED:
		if (a.consumed != b->consumed + (ok ? 1 : 0))
			rm_bad("%s: consumed %llu -> %llu (expected %s)", what,
			       (unsigned long long)b->consumed, (unsigned long long)a.consumed,
			       ok ? "+1" : "unchanged");
		break;
	case C_FLUSH:
		if (a.produced != b->produced + (ok ? 1 : 0))
			rm_bad("%s: produced %llu -> %llu with a partial sub-buffer open (expected %s)",
			       what, (unsigned long long)b->produced,
			       (unsigned long long)a.produced, ok ? "+1" : "unchanged");
		break;
	default:
		if (a.held != b->held || a.consumed != b->consumed)
			rm_bad("%s: an observer changed the claims or the cursor", what);
		break;
	}
	/* Nothing this program did may leave c0 claimed, except our own consumer fd. */
	if (cons_fd < 0 && held_mask())
		rm_bad("%s: a CPU is still claimed afterwards", what);
}

/*
 * One call of case id with the struct at p (whose size field is `size`,
 * the bytes after the first version as the caller set them). Returns the
 * ioctl's result (fd or 0) or -errno.
 */
static int call(enum id id, void *p, uint32_t size, int want, const char *variant)
{
	const struct ioc_case *k = &cases[id];
	struct state b;
	char what[192];
	int rc, err;

	prepare(id);
	b = snap();
	memcpy(p, &size, sizeof(size));
	snprintf(what, sizeof(what), "%s size %u (%s)", k->name, size, variant);
	rc = ioctl(fd_of(k->kind), k->cmd, p);
	err = rc < 0 ? -errno : 0;
	checks++;
	if (want == 0 && err)
		rm_bad("%s: %s, expected success", what, strerror(-err));
	else if (want && err != -want)
		rm_bad("%s: %s, expected %s", what, err ? strerror(-err) : "success",
		       strerror(want));
	effect(id, what, rc, want == 0 && !err, &b);
	return rc < 0 ? err : rc;
}

/* The answer of a read-write observer, for comparing variants. */
static void answer(enum id id, const void *p, uint8_t *out, size_t *len)
{
	*len = 0;
	switch (id) {
	case C_GET_INFO:
		memcpy(out, (const uint8_t *)p + 4, RELAYMAP_INFO_SIZE_VER0 - 4);
		*len = RELAYMAP_INFO_SIZE_VER0 - 4;
		break;
	case C_GET_STATS: {
		/* records_written .. : writers are stopped, so stable. */
		memcpy(out, (const uint8_t *)p + 8, RELAYMAP_STATS_SIZE_VER0 - 8);
		*len = RELAYMAP_STATS_SIZE_VER0 - 8;
		break;
	}
	case C_LIST: {
		const struct relaymap_list *l = p;

		memcpy(out, &l->nr, sizeof(l->nr));
		memcpy(out + 4, list_names, sizeof(list_names));
		*len = 4 + sizeof(list_names);
		break;
	}
	default:
		break;
	}
}

static void run_case(enum id id)
{
	const struct ioc_case *k = &cases[id];
	uint32_t v0 = k->ver0;
	uint8_t *p, ref[1024], got[1024];
	size_t reflen, gotlen;
	const uint32_t tails[] = { 8, 64 };
	int rc;

	rm_set_phase("%s", k->name);
	/* The command number: first-version size, magic, number, direction. */
	RM_EXPECT_EQ("_IOC_SIZE(cmd) == first version size", _IOC_SIZE(k->cmd), v0);
	RM_EXPECT_EQ("_IOC_TYPE(cmd) == 0xB7", _IOC_TYPE(k->cmd), RELAYMAP_IOC_MAGIC);
	RM_EXPECT_EQ("_IOC_NR(cmd)", _IOC_NR(k->cmd), k->nr);
	RM_EXPECT_EQ("_IOC_DIR(cmd)", _IOC_DIR(k->cmd), k->dir);

	/* First version. */
	p = area;
	memset(area, 0, 2 * page);
	fill(id, p);
	rc = call(id, p, v0, 0, "first version");
	if (rc >= 0 && (k->dir & _IOC_READ))
		RM_EXPECT_EQ("size written back by the first-version call", *(uint32_t *)p, v0);
	answer(id, p, ref, &reflen);

	/* Bigger, zero tail: the same command number, the same answer. */
	for (unsigned int t = 0; t < sizeof(tails) / sizeof(tails[0]); t++) {
		char variant[64];

		memset(area, 0, 2 * page);
		fill(id, p);
		snprintf(variant, sizeof(variant), "first version + %u, tail zero", tails[t]);
		rc = call(id, p, v0 + tails[t], 0, variant);
		if (rc < 0)
			continue;
		if (k->dir & _IOC_READ)
			RM_EXPECT_EQ("size written back with a bigger struct (the kernel's size)",
				     *(uint32_t *)p, v0);
		for (uint32_t i = v0; i < v0 + tails[t]; i++)
			if (p[i]) {
				rm_bad("%s: %s wrote byte %u past the kernel's struct (%#x)",
				       k->name, variant, i, p[i]);
				break;
			}
		answer(id, p, got, &gotlen);
		if (gotlen != reflen || memcmp(got, ref, reflen))
			rm_bad("%s: %s answered differently from the first-version call",
			       k->name, variant);
	}
	/* A tail that crosses into the next page, zero. */
	p = area + page - v0 - 8;
	memset(area, 0, 2 * page);
	fill(id, p);
	call(id, p, v0 + 8 + 24, 0, "tail across a page boundary, zero");

	/* Non-zero tail: E2BIG, no effect. */
	{
		const uint32_t tail = 64, pos[] = { 0, 31, 63 };

		for (unsigned int i = 0; i < sizeof(pos) / sizeof(pos[0]); i++) {
			char variant[64];

			p = area;
			memset(area, 0, 2 * page);
			fill(id, p);
			p[v0 + pos[i]] = 1;
			snprintf(variant, sizeof(variant), "tail byte %u non-zero", pos[i]);
			call(id, p, v0 + tail, E2BIG, variant);
		}
		p = area + page - v0 - 8;
		memset(area, 0, 2 * page);
		fill(id, p);
		area[page + 8] = 0x80; /* in the second page */
		call(id, p, v0 + 8 + 24, E2BIG, "non-zero tail byte in the next page");
	}
	/* A tail running into an unmapped page: EFAULT. */
	p = area + page - v0 - 8;
	memset(area, 0, 2 * page);
	fill(id, p);
	if (mprotect(area + page, page, PROT_NONE))
		rm_die("mprotect: %s", strerror(errno));
	call(id, p, v0 + 8 + 24, EFAULT, "tail in an unmapped page");
	if (mprotect(area + page, page, PROT_READ | PROT_WRITE))
		rm_die("mprotect: %s", strerror(errno));

	/* Smaller than the first version: EINVAL. */
	{
		const uint32_t small[] = { 0, 4, v0 - 4, v0 - 1 };

		for (unsigned int i = 0; i < sizeof(small) / sizeof(small[0]); i++) {
			p = area;
			memset(area, 0, 2 * page);
			fill(id, p);
			call(id, p, small[i], EINVAL, "below the first version");
		}
	}
	/* Same _IOC_NR, another encoded size: only reported. */
	{
		unsigned long other = _IOC(_IOC_DIR(k->cmd), RELAYMAP_IOC_MAGIC,
					   _IOC_NR(k->cmd), v0 + 64);
		int r;

		p = area;
		memset(area, 0, 2 * page);
		fill(id, p);
		prepare(id);
		*(uint32_t *)p = v0 + 64;
		r = ioctl(fd_of(k->kind), other, p);
		rm_note("%s with command %#lx (size %u encoded, not the first version's): %s",
			k->name, other, v0 + 64, r < 0 ? strerror(errno) : "accepted");
		if (r >= 0 && (id == C_OPEN_CHANNEL || id == C_OPEN_CONSUMER_ONE))
			close(r);
		if (r >= 0 && id == C_OPEN_CONSUMER_ALL)
			for (unsigned int c = 0; c < ch.info.nr_cpu_ids; c++)
				if (all_fds[c] >= 0)
					close(all_fds[c]);
	}
}

/* A caller compiled with a bigger struct: same command, size = its sizeof. */
struct relaymap_info_next {
	struct relaymap_info v0;
	uint64_t new_field;
	uint32_t another;
	uint32_t pad;
};

static void check_bigger_caller(void)
{
	struct relaymap_info_next n;
	int err;

	rm_set_phase("caller with a bigger struct");
	memset(&n, 0, sizeof(n));
	n.v0.size = sizeof(n);
	err = rm_ioctl(ch.ctl, RELAYMAP_IOC_GET_INFO, &n);
	checks++;
	if (err) {
		rm_bad("GET_INFO from a caller with a %zu-byte struct: %s", sizeof(n),
		       strerror(-err));
		return;
	}
	RM_EXPECT_EQ("bigger caller: size says what the kernel filled", n.v0.size,
		     RELAYMAP_INFO_SIZE_VER0);
	RM_EXPECT_EQ("bigger caller: new field untouched", n.new_field, 0);
	RM_EXPECT_EQ("bigger caller: alloc_size", n.v0.alloc_size, ch.info.alloc_size);
	rm_note("a caller built with a %zu-byte relaymap_info uses RELAYMAP_IOC_GET_INFO = %#lx: works, size -> %u",
		sizeof(n), (unsigned long)RELAYMAP_IOC_GET_INFO, n.v0.size);
}

/* GET_CURSORS with elements bigger than the first cursor version. */
static void check_cursor_stride(void)
{
	const uint32_t stride = RELAYMAP_CURSOR_SIZE_VER0 + 24;
	unsigned int nr = ch.info.nr_cpu_ids;
	struct relaymap_cursors cs;
	uint8_t *arr = calloc(nr, stride);
	int err;

	rm_set_phase("GET_CURSORS stride");
	if (!arr)
		rm_die("calloc");
	memset(&cs, 0, sizeof(cs));
	cs.size = sizeof(cs);
	cs.nr = nr;
	cs.cursor_size = stride;
	cs.cursors = (uint64_t)(uintptr_t)arr;
	err = rm_ioctl(ch.ctl, RELAYMAP_IOC_GET_CURSORS, &cs);
	checks++;
	if (err) {
		rm_bad("GET_CURSORS with cursor_size %u: %s", stride, strerror(-err));
		free(arr);
		return;
	}
	RM_EXPECT_EQ("GET_CURSORS(stride) filled", cs.nr, nr);
	for (unsigned int c = 0; c < cs.nr && c < nr; c++) {
		struct relaymap_cursor e, one;

		memcpy(&e, arr + (size_t)c * stride, sizeof(e));
		if (e.cpu != c)
			rm_bad("GET_CURSORS with cursor_size %u: element %u says cpu %u",
			       stride, c, e.cpu);
		if (!rm_info_has_cpu(&ch.info, c))
			continue;
		rm_cursor_x(ch.ctl, c, &one);
		if (e.produced != one.produced || e.consumed != one.consumed)
			rm_bad("GET_CURSORS with cursor_size %u: element %u produced %llu consumed %llu, GET_CURSOR says %llu %llu",
			       stride, c, (unsigned long long)e.produced,
			       (unsigned long long)e.consumed,
			       (unsigned long long)one.produced,
			       (unsigned long long)one.consumed);
	}
	rm_note("GET_CURSORS with a %u-byte cursor_size: %u elements at the caller's stride",
		stride, cs.nr);
	free(arr);
}

int main(int argc, char **argv)
{
	struct relaymap_cursor cur;
	int v;

	rm_init(argv[0], 240);
	if (argc != 3 || strcmp(argv[1], "-n"))
		rm_die("usage: rmck_abiver -n NAME");
	chan_name = argv[2];
	page = (size_t)sysconf(_SC_PAGESIZE);
	area = mmap(NULL, 2 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (area == MAP_FAILED)
		rm_die("mmap: %s", strerror(errno));
	rm_open(&ch, chan_name, 0);
	c0 = ch.cpus[0];
	dev = rm_dev_open();
	if (dev < 0)
		rm_die("open %s: %s", RM_DEV, strerror(-dev));
	v = rm_get_version(dev);
	RM_EXPECT_EQ("GET_VERSION", v, RELAYMAP_ABI_VERSION);
	RM_EXPECT_EQ("_IOC_NR(GET_VERSION)", _IOC_NR(RELAYMAP_IOC_GET_VERSION), 0x20);
	RM_EXPECT_EQ("_IOC_SIZE(GET_VERSION)", _IOC_SIZE(RELAYMAP_IOC_GET_VERSION), 0);
	RM_EXPECT_EQ("_IOC_NR(RESET)", _IOC_NR(RELAYMAP_IOC_RESET), 0x05);
	if (ch.info.flags & RELAYMAP_INFO_OVERWRITE)
		rm_die("use a no-overwrite channel");
	if (!lg_present())
		rm_die("relaymap_loadgen is not loaded");
	lg_set("channel", chan_name);
	lg_set("mode", "lossless");
	lg_setu("record_size", 64);
	lg_setu("rate", 0);
	lg_setu("duration_ms", 0);

	/* Nothing claimed: the channel-fd and device cases. */
	for (int id = 0; id < C_NCASES; id++)
		if (cases[id].kind != CONS)
			run_case((enum id)id);
	check_bigger_caller();
	check_cursor_stride();

	/* The consumer-fd cases: sub-buffers to hand back, one per successful PUT. */
	rm_set_phase("setup for PUT_CONSUMED");
	lg_setu("count", 20 * (ch.info.subbuf_size - ch.info.header_size) / 64);
	lg_start();
	if (!lg_wait_idle(120000))
		rm_die("loadgen did not finish");
	lg_stop();
	rm_flush_x(ch.ctl, RELAYMAP_ALL_CPUS);
	cons_fd = rm_open_consumer_fd(ch.ctl, (int)c0);
	if (cons_fd < 0)
		rm_die("OPEN_CONSUMER(cpu %u): %s", c0, strerror(-cons_fd));
	cur = cursor_c0();
	rm_note("cpu %u: produced=%llu consumed=%llu for the PUT_CONSUMED cases", c0,
		(unsigned long long)cur.produced, (unsigned long long)cur.consumed);
	if (cur.produced - cur.consumed < 8)
		rm_die("cpu %u: only %llu sub-buffers to hand back, need 8", c0,
		       (unsigned long long)(cur.produced - cur.consumed));
	run_case(C_GET_CURSOR_CONS);
	run_case(C_PUT_CONSUMED);
	close(cons_fd);
	cons_fd = -1;
	if (held_mask())
		rm_bad("a CPU is still held after closing the consumer fd");

	rm_note("SUMMARY %lu versioned ioctl calls on %d cases", checks, C_NCASES);
	close(dev);
	rm_close(&ch);
	return rm_exit();
}

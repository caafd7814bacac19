/* SPDX-License-Identifier: MIT */
/*
 * rmck_fuzz - random ioctls on every kind of relaymap fd while the load
 * generator writes and a consumer consumes.
 *
 *   rmck_fuzz -n NAME [--count N] [--seconds S] [--min N] [--seed X]
 *     --count N    ioctls to issue (100000)
 *     --seconds S  stop earlier once S seconds have passed (0 = no bound)
 *     --min N      fail unless at least N ioctls were issued (default: all of --count)
 *     --seed X     random seed (default: from the clock; printed either way)
 *
 * The load generator must be running on NAME (the test starts it). The
 * fds: /dev/relaymap (several), channel fds (OPEN_CHANNEL), the debugfs
 * control file and cpu files when they exist, consumer fds this program
 * gets from OPEN_CONSUMER (kept a while, mapped sometimes, then closed),
 * and those of a consumer thread that claims every CPU again and again.
 * Each step is one of (mostly) an ioctl, or a read() of a consumer fd, an
 * mmap of one, a poll, or closing and reopening an fd. An ioctl gets:
 *  - a command: a relaymap one, one with the right magic and random
 *    nr/dir/size, or a fully random number (not one the VFS answers for
 *    every file: types 0, 'T', 'X', 'f', 0x12, 0x15, 0x94);
 *  - an argument: a struct built for the command's number with random
 *    `size` (0, VER0 - 1, VER0, sizeof, VER0 + 4, big, a page, > a page,
 *    random), a zero or non-zero tail, fields from sets of interesting
 *    values (CPUs 0, 1, nr_cpu_ids, 1023, 1024, INT_MAX, -1 = ALL, -2,
 *    INT_MIN, random; counts; flags; names), embedded pointers, or all
 *    random bytes; placed aligned, unaligned, across the end of a mapped
 *    page into a PROT_NONE one, in a read-only page, inside a relay
 *    mapping; or the pointer itself NULL, unmapped, PROT_NONE, a kernel
 *    address (0xffffffff81000000, 0xffff888000000000, ...), non-canonical,
 *    small, random.
 * Never a pointer into this program's own memory except its scratch
 * areas, each followed by a PROT_NONE page (the kernel stops there).
 *
 * Checked while it runs (each a FAIL line):
 *  - errno is one the ABI names (EFAULT, EINVAL, E2BIG, ENOTTY, EPERM,
 *    EBUSY, ENOENT, ENOMEM, EMFILE, EBADF, EAGAIN/EINTR for read);
 *    success returns 0, an fd only from OPEN_CHANNEL / OPEN_CONSUMER, 2
 *    from GET_VERSION; no fd appears that no call returned (a sweep);
 *  - on success: `size` written back = min(size, sizeof), nothing written
 *    outside [arg, arg + size) nor after an array's elements; every
 *    cursor's consumed <= produced, GET_CURSORS elements' size = min(
 *    cursor_size, sizeof) with the rest zero, stats consumed <= produced;
 *    RESET never succeeds while the load generator runs;
 *  - the consumer thread: every sub-buffer it keeps (copied, then its
 *    commit and seq re-read: a seqlock, since anyone may hand it back
 *    under it) has a valid header and verified records in seq order
 *    (gaps are allowed: drops, and what others consumed).
 * At the end, with every fd closed: no CPU held, no fd left, GET_STATS
 * total == sum of the CPUs, the load generator still running. The
 * harness then checks dmesg; the test verifies a lossless run with
 * rmck_consume.
 */
#include "rmtest.h"

#define POOL_MAX 48
#define FD_MAX 4096
#define CONS_TTL 400 /* steps a fuzzer-held consumer fd lives */

enum kind { K_DEV, K_CHAN, K_CTRL, K_CPUFILE, K_CONS, K_NKINDS };
static const char *const kind_name[K_NKINDS] = { "dev", "channel", "control", "cpufile", "consumer" };

struct pfd {
	int fd;
	enum kind kind;
	bool base;	/* opened at start, reopened when closed */
	uint64_t born;
};

static struct rm_chan ch;
static const char *chan_name;
static struct pfd pool[POOL_MAX];
static unsigned int npool;
static bool known[FD_MAX];
static pthread_mutex_t fd_lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t steps, ioctls, reads, mmaps, polls, reopens, adopted, sweeps;
static uint64_t errno_count[256], ret_fd, ret_zero;
static size_t page;
static bool have_debugfs;

/* ---- random numbers ----------------------------------------------------- */

static uint64_t rng_state;

static uint64_t rnd(void)
{
	/* xorshift64* */
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545F4914F6CDD1DULL;
}

static uint64_t below(uint64_t n)
{
	return n ? rnd() % n : 0;
}

static bool chance(unsigned int one_in)
{
	return below(one_in) == 0;
}

/* ---- scratch memory ------------------------------------------------------ */

#define AREA_PAGES 4
static uint8_t *area;	/* AREA_PAGES RW pages, then a PROT_NONE page */
static uint8_t *area2;	/* the same, for the arrays structs point to */
static uint8_t *ro;	/* one read-only page */
/*
 * Unmapped: below vm.mmap_min_addr (65536 by default; nothing here maps
 * there). A page munmap()ed at start would not stay unmapped: the next
 * mmap (a thread's stack) may land in it.
 */
static const uintptr_t hole = 0x1000;
static size_t area_len;

#define PAT1 0xa5
#define PAT2 0x5a

static uint8_t *guarded(size_t *len)
{
	uint8_t *p = mmap(NULL, (AREA_PAGES + 1) * page, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		rm_die("mmap scratch: %s", strerror(errno));
	if (mprotect(p + AREA_PAGES * page, page, PROT_NONE))
		rm_die("mprotect guard: %s", strerror(errno));
	*len = AREA_PAGES * page;
	return p;
}

static void scratch_init(void)
{
	size_t l2;
	char buf[32];

	area = guarded(&area_len);
	area2 = guarded(&l2);
	ro = mmap(NULL, page, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (ro == MAP_FAILED)
		rm_die("mmap: %s", strerror(errno));
	if (!rm_read_text("/proc/sys/vm/mmap_min_addr", buf, sizeof(buf)) &&
	    strtoull(buf, NULL, 10) < hole + 64 * 8 + page)
		rm_die("vm.mmap_min_addr is %s: the unmapped test addresses would be mappable", buf);
}

/* Live mappings of consumer fds (this thread's): pointers may go there. */
#define MAPS_MAX 4
static struct {
	const uint8_t *p;
	uint64_t born;
} maps[MAPS_MAX];

static const uint64_t kernel_addrs[] = {
	0xffffffff81000000ULL, /* kernel text */
	0xffff888000000000ULL, /* direct map */
	0xffffffffff600000ULL, /* vsyscall page */
	0xfffffffffffff000ULL,
	0xfffffffffffffff8ULL,
	0x8000000000000000ULL, /* non-canonical */
	0x0000800000000000ULL, /* just past user space */
	0x00007ffffffff000ULL, /* last user page (unmapped) */
};

/*
 * An embedded pointer (in a struct): into area2 (aligned, unaligned, across
 * its end), or one that must fault. Never into other memory of ours.
 */
static uint64_t embedded_ptr(void)
{
	switch (below(12)) {
	case 0: case 1: case 2: case 3:
		return (uintptr_t)area2 + 8 * below(4);
	case 4:
		return (uintptr_t)area2 + 1 + below(7);
	case 5:
		return (uintptr_t)area2 + area_len - 1 - below(256);
	case 6:
		return (uintptr_t)area2 + area_len; /* PROT_NONE */
	case 7:
		return (uintptr_t)ro + 8 * below(8);
	case 8:
		return kernel_addrs[below(sizeof(kernel_addrs) / sizeof(kernel_addrs[0]))];
	case 9:
		return hole + 8 * below(64);
	case 10: {
		unsigned int i = (unsigned int)below(MAPS_MAX);

		if (maps[i].p)
			return (uintptr_t)maps[i].p + 8 * below(ch.info.alloc_size / 8);
		return 0;
	}
	default:
		return 0;
	}
}

/* ---- commands and structs ---------------------------------------------- */

struct cmd_desc {
	unsigned int nr;
	unsigned int ver0;	/* 0: no struct */
	unsigned int ksize;
	bool rw;		/* copies back */
	unsigned long cmd;
};

static const struct cmd_desc cmds[] = {
	{ 0x01, RELAYMAP_INFO_SIZE_VER0, sizeof(struct relaymap_info), true, RELAYMAP_IOC_GET_INFO },
	{ 0x02, RELAYMAP_CURSOR_SIZE_VER0, sizeof(struct relaymap_cursor), true, RELAYMAP_IOC_GET_CURSOR },
	{ 0x03, RELAYMAP_CONSUME_SIZE_VER0, sizeof(struct relaymap_consume), false, RELAYMAP_IOC_PUT_CONSUMED },
	{ 0x04, RELAYMAP_FLUSH_SIZE_VER0, sizeof(struct relaymap_flush), false, RELAYMAP_IOC_FLUSH },
	{ 0x05, 0, 0, false, RELAYMAP_IOC_RESET },
	{ 0x06, RELAYMAP_STATS_SIZE_VER0, sizeof(struct relaymap_stats), true, RELAYMAP_IOC_GET_STATS },
	{ 0x07, RELAYMAP_CURSORS_SIZE_VER0, sizeof(struct relaymap_cursors), true, RELAYMAP_IOC_GET_CURSORS },
	{ 0x08, RELAYMAP_OPEN_CONSUMER_SIZE_VER0, sizeof(struct relaymap_open_consumer), true, RELAYMAP_IOC_OPEN_CONSUMER },
	{ 0x20, 0, 0, false, RELAYMAP_IOC_GET_VERSION },
	{ 0x21, RELAYMAP_LIST_SIZE_VER0, sizeof(struct relaymap_list), true, RELAYMAP_IOC_LIST },
	{ 0x22, RELAYMAP_OPEN_CHANNEL_SIZE_VER0, sizeof(struct relaymap_open_channel), false, RELAYMAP_IOC_OPEN_CHANNEL },
};
#define NCMDS (sizeof(cmds) / sizeof(cmds[0]))

static const struct cmd_desc *desc_of(unsigned long cmd)
{
	if (_IOC_TYPE(cmd) != RELAYMAP_IOC_MAGIC)
		return NULL;
	for (unsigned int i = 0; i < NCMDS; i++)
		if (cmds[i].nr == _IOC_NR(cmd))
			return &cmds[i];
	return NULL;
}

/* Command types the VFS answers for any file before the driver sees them. */
static bool vfs_type(unsigned int t)
{
	return t == 0 || t == 'T' || t == 'X' || t == 'f' || t == 0x12 || t == 0x15 || t == 0x94;
}

/* The numbers each fd kind answers (relaymap_abi.h, "Files"). */
static const unsigned int kind_nrs[K_NKINDS][8] = {
	[K_DEV] = { 0x20, 0x21, 0x22 },
	[K_CHAN] = { 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08 },
	[K_CTRL] = { 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08 },
	[K_CPUFILE] = { 0 },
	[K_CONS] = { 0x02, 0x03 },
};
static const unsigned int kind_n[K_NKINDS] = { 3, 8, 8, 0, 2 };

static const struct cmd_desc *desc_nr(unsigned int nr)
{
	for (unsigned int i = 0; i < NCMDS; i++)
		if (cmds[i].nr == nr)
			return &cmds[i];
	return NULL;
}

static unsigned long pick_cmd(enum kind k)
{
	const struct cmd_desc *d;
	unsigned long c;
	unsigned int r = (unsigned int)below(20);

	if (r < 11 && kind_n[k]) {
		/* One this fd kind answers: exact, or random direction/size. */
		d = desc_nr(kind_nrs[k][below(kind_n[k])]);
		if (chance(4))
			return _IOC(below(4), RELAYMAP_IOC_MAGIC, d->nr, below(4) ? d->ver0 : below(1 << 14));
		return d->cmd;
	}
	if (r < 14)
		return cmds[below(NCMDS)].cmd; /* maybe another kind's */
	if (r < 16)
		return _IOC(below(4), RELAYMAP_IOC_MAGIC, below(256), below(1 << 14));
	do {
		c = (unsigned long)(uint32_t)rnd();
	} while (vfs_type(_IOC_TYPE(c)));
	return c;
}

static int32_t pick_cpu(void)
{
	switch (below(12)) {
	case 0: case 1: case 2:
		return (int32_t)ch.cpus[below(ch.ncpus)];
	case 3:
		return (int32_t)ch.info.nr_cpu_ids;
	case 4:
		return (int32_t)ch.info.nr_cpu_ids + 1;
	case 5:
		return 1023 + (int32_t)below(3); /* 1023, 1024, 1025 */
	case 6:
		return INT32_MAX;
	case 7: case 8:
		return RELAYMAP_ALL_CPUS;
	case 9:
		return -2;
	case 10:
		return INT32_MIN;
	default:
		return (int32_t)rnd();
	}
}

static uint32_t pick_size(const struct cmd_desc *d)
{
	unsigned int v0 = d ? d->ver0 : 16, ks = d ? d->ksize : 16;

	switch (below(14)) {
	case 0:
		return 0;
	case 1:
		return v0 - 1;
	case 2: case 3: case 4: case 5: case 6:
		return v0;
	case 7:
		return ks;
	case 8:
		return v0 + 4;
	case 9:
		return v0 + 8 * (uint32_t)below(64);
	case 10:
		return (uint32_t)page;
	case 11:
		return (uint32_t)page + 1 + (uint32_t)below(page);
	case 12:
		return UINT32_MAX;
	default:
		return (uint32_t)rnd();
	}
}

static uint64_t pick_u64(void)
{
	switch (below(10)) {
	case 0: return 0;
	case 1: return 1;
	case 2: return 2;
	case 3: return ch.info.n_subbufs;
	case 4: return ch.info.n_subbufs + 1;
	case 5: return UINT64_MAX;
	case 6: return 1ULL << 63;
	case 7: return UINT32_MAX;
	default: return rnd();
	}
}

static uint32_t pick_u32_small(void)
{
	switch (below(8)) {
	case 0: return 0;
	case 1: return 1;
	case 2: return ch.info.nr_cpu_ids;
	case 3: return ch.info.nr_cpu_ids - 1;
	case 4: return 1024;
	case 5: return UINT32_MAX;
	case 6: return 100;
	default: return (uint32_t)rnd();
	}
}

static uint32_t pick_flags(void)
{
	return chance(6) ? (uint32_t)rnd() : 0;
}

/* Fill the struct of `d` (ksize bytes, zeroed) in buf with interesting fields. */
static void fill_fields(const struct cmd_desc *d, uint8_t *buf)
{
	switch (d->nr) {
	case 0x02: {
		struct relaymap_cursor *c = (void *)buf;

		c->cpu = (uint32_t)pick_cpu();
		break;
	}
	case 0x03: {
		struct relaymap_consume *c = (void *)buf;

		c->reserved = pick_flags();
		c->count = pick_u64();
		break;
	}
	case 0x04: {
		struct relaymap_flush *f = (void *)buf;

		f->cpu = pick_cpu();
		break;
	}
	case 0x06: {
		struct relaymap_stats *s = (void *)buf;

		s->cpu = pick_cpu();
		break;
	}
	case 0x07: {
		struct relaymap_cursors *c = (void *)buf;
		static const uint32_t esz[] = { 0, 4, 68, 72, 73, 76, 80, 128, 4096, 4100 };

		c->first_cpu = chance(3) ? (uint32_t)pick_cpu() : 0;
		c->nr = pick_u32_small();
		c->cursor_size = chance(4) ? (uint32_t)rnd() : esz[below(sizeof(esz) / sizeof(esz[0]))];
		c->cursors = embedded_ptr();
		break;
	}
	case 0x08: {
		struct relaymap_open_consumer *o = (void *)buf;

		o->cpu = pick_cpu();
		o->flags = pick_flags();
		if (o->cpu == RELAYMAP_ALL_CPUS || chance(4)) {
			o->nr_fds = pick_u32_small();
			o->fds = embedded_ptr();
		}
		break;
	}
	case 0x21: {
		struct relaymap_list *l = (void *)buf;

		l->nr = pick_u32_small();
		l->names = embedded_ptr();
		break;
	}
	case 0x22: {
		struct relaymap_open_channel *o = (void *)buf;

		o->flags = pick_flags();
		switch (below(5)) {
		case 0: case 1:
			snprintf(o->name, sizeof(o->name), "%s", chan_name);
			break;
		case 2:
			snprintf(o->name, sizeof(o->name), "nosuch%u", (unsigned int)below(10));
			break;
		case 3:
			memset(o->name, 'a' + (int)below(26), sizeof(o->name)); /* unterminated */
			break;
		default:
			break; /* "" */
		}
		break;
	}
	default:
		break;
	}
}

/* What one ioctl was given, for the checks after it. */
struct arg {
	uint8_t *p;		/* the struct's address (in area, ro, a map, or elsewhere) */
	bool in_area;		/* p is in area and the whole [p, p + len) was written */
	size_t len;		/* bytes of struct + tail we placed at p */
	uint32_t size_in;	/* the `size` field we set (if we built one) */
	bool built;		/* a struct of the command's own layout */
	bool tail_dirty;	/* a non-zero byte beyond ksize */
	uint8_t copy[2 * 4096 + 64];	/* what we placed */
};

static struct arg A;

/* Build an argument for `cmd`; returns the pointer to pass. */
static unsigned long build_arg(unsigned long cmd)
{
	const struct cmd_desc *d = desc_of(cmd);
	size_t room = 0, want;
	uint8_t *dst = NULL;

	memset(area, PAT1, area_len);
	memset(area2, PAT2, area_len);
	A.in_area = false;
	A.built = false;
	A.tail_dirty = false;
	A.p = NULL;
	switch (below(28)) {
	case 0:
		return 0;
	case 1:
		return kernel_addrs[below(sizeof(kernel_addrs) / sizeof(kernel_addrs[0]))];
	case 2:
		return hole + below(page); /* below mmap_min_addr */
	case 3:
		return (uintptr_t)area + area_len + below(page); /* PROT_NONE */
	case 4:
		return chance(2) ? rnd() : below(4096);
	case 5: { /* inside a relay mapping (read-only pages of the kernel's) */
		unsigned int i = (unsigned int)below(MAPS_MAX);

		if (maps[i].p)
			return (uintptr_t)maps[i].p + below(ch.info.alloc_size);
		break;
	}
	case 6: /* a struct in a read-only page */
		dst = ro;
		room = page;
		break;
	case 7: /* across the end of a mapped page into PROT_NONE */
		dst = area + area_len - 1 - below(d && d->ksize ? d->ksize + 8 : 64);
		room = (size_t)(area + area_len - dst);
		break;
	case 8: /* unaligned */
		dst = area + 1 + below(7);
		room = area_len - (size_t)(dst - area);
		break;
	default:
		dst = area + 8 * below(8);
		room = area_len - (size_t)(dst - area);
		break;
	}
	if (!dst)
		return 0;
	/* The bytes: a struct of this command's layout, or random ones. */
	if (d && d->ver0 && !chance(8)) {
		size_t ks = d->ksize;
		uint32_t size = pick_size(d);

		want = size > ks ? size : ks;
		if (want > sizeof(A.copy) - 64)
			want = sizeof(A.copy) - 64;
		memset(A.copy, 0, want);
		fill_fields(d, A.copy);
		memcpy(A.copy, &size, sizeof(size));
		if (want > ks && chance(4)) {
			A.copy[ks + below(want - ks)] = (uint8_t)(1 + below(255));
			A.tail_dirty = true;
		}
		A.size_in = size;
		A.built = true;
	} else {
		want = below(sizeof(A.copy) - 64);
		for (size_t i = 0; i < want; i++)
			A.copy[i] = (uint8_t)rnd();
		if (want >= 4 && d && d->ver0 && chance(2)) {
			uint32_t size = pick_size(d);

			memcpy(A.copy, &size, 4);
		}
		/* Embedded pointers in random bytes stay harmless: see embedded_ptr(). */
		if (d && d->nr == 0x07 && want >= 24) {
			uint64_t p = embedded_ptr();

			memcpy(A.copy + 16, &p, 8);
		} else if (d && (d->nr == 0x08 || d->nr == 0x21) && want >= 24) {
			uint64_t p = embedded_ptr();

			memcpy(A.copy + (d->nr == 0x08 ? 16 : 8), &p, 8);
		}
		memcpy(&A.size_in, A.copy, want >= 4 ? 4 : 0);
	}
	A.len = want < room ? want : room;
	A.p = dst;
	if (dst == ro) {
		if (mprotect(ro, page, PROT_READ | PROT_WRITE))
			rm_die("mprotect ro: %s", strerror(errno));
		memset(ro, 0, page);
		memcpy(ro, A.copy, A.len);
		if (mprotect(ro, page, PROT_READ))
			rm_die("mprotect ro: %s", strerror(errno));
	} else {
		memcpy(dst, A.copy, A.len);
		A.in_area = want <= room;
	}
	return (uintptr_t)dst;
}

/* ---- fds ----------------------------------------------------------------- */

static void mark(int fd, bool on)
{
	if (fd >= 0 && fd < FD_MAX)
		known[fd] = on;
}

static bool fd_open(int fd)
{
	return fcntl(fd, F_GETFD) >= 0;
}

static int open_kind(enum kind k, unsigned int cpu)
{
	char path[256];
	int fd = -1;

	switch (k) {
	case K_DEV:
		fd = open(RM_DEV, O_RDWR | O_CLOEXEC);
		break;
	case K_CHAN: {
		int dev = open(RM_DEV, O_RDWR | O_CLOEXEC);

		if (dev < 0)
			rm_die("open %s: %s", RM_DEV, strerror(errno));
		fd = rm_open_channel_fd(dev, chan_name);
		close(dev);
		if (fd < 0)
			rm_die("OPEN_CHANNEL(%s): %s", chan_name, strerror(-fd));
		break;
	}
	case K_CTRL:
		fd = rm_open_control(chan_name);
		break;
	case K_CPUFILE:
		rm_cpu_path(path, sizeof(path), chan_name, cpu);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		break;
	default:
		break;
	}
	return fd;
}

static void pool_add(int fd, enum kind k, bool base)
{
	if (npool == POOL_MAX) {
		/* Make room: close a non-base entry. */
		for (unsigned int i = 0; i < npool; i++) {
			if (!pool[i].base) {
				mark(pool[i].fd, false);
				close(pool[i].fd);
				pool[i] = pool[--npool];
				break;
			}
		}
	}
	if (npool == POOL_MAX) {
		close(fd);
		return;
	}
	mark(fd, true);
	pool[npool++] = (struct pfd){ fd, k, base, steps };
}

static bool tearing_down;

static void pool_close(unsigned int i)
{
	struct pfd e = pool[i];

	mark(e.fd, false);
	close(e.fd);
	pool[i] = pool[--npool];
	if (e.base && !tearing_down) {
		int fd = open_kind(e.kind, 0);

		if (fd < 0)
			rm_die("reopen a %s fd: %s", kind_name[e.kind], strerror(errno));
		pool_add(fd, e.kind, true);
	}
	reopens++;
}

/*
 * A new fd returned by a call: adopt it (consumer fds live CONS_TTL steps).
 * What kind it is comes from the command that made it.
 */
static void adopt(int fd, enum kind k)
{
	if (fd < 3 || fd >= FD_MAX || known[fd] || !fd_open(fd))
		return;
	adopted++;
	pool_add(fd, k, false);
}

/* No fd this program does not know about (a call must not leak one). */
static void sweep(void)
{
	pthread_mutex_lock(&fd_lock);
	for (int fd = 3; fd < FD_MAX; fd++) {
		if (known[fd] || !fd_open(fd))
			continue;
		rm_bad("fd %d is open, but no call returned it (leaked by a failed ioctl?)", fd);
		close(fd);
	}
	sweeps++;
	pthread_mutex_unlock(&fd_lock);
}

/* ---- the consumer thread ---------------------------------------------- */

static int stop_consumer;
static int cons_ctl;
static int cons_fd[RM_MAXCPU];
static const uint8_t *cons_map[RM_MAXCPU];
static struct rm_stream cons_st[RM_MAXCPU];
static uint64_t cons_next[RM_MAXCPU];
static uint64_t c_claims, c_busy, c_subbufs, c_torn, c_put_refused, c_rounds;
static uint8_t *cons_copy;

static void cons_cpu(unsigned int cpu)
{
	struct relaymap_cursor cur;
	uint64_t n = ch.info.n_subbufs, sbs = ch.info.subbuf_size;
	int err = rm_get_cursor(cons_fd[cpu], cpu, &cur);
	char why[512];

	if (err)
		rm_die("consumer: GET_CURSOR on its consumer fd of cpu %u: %s", cpu, strerror(-err));
	if (cur.consumed > cur.produced)
		rm_bad("consumer: cpu %u cursor consumed %llu > produced %llu", cpu,
		       (unsigned long long)cur.consumed, (unsigned long long)cur.produced);
	if (cons_next[cpu] < cur.consumed)
		cons_next[cpu] = cur.consumed; /* someone handed back meanwhile */
	for (uint64_t s = cons_next[cpu]; s < cur.produced; s++) {
		const uint8_t *slot = cons_map[cpu] + (s % n) * sbs;
		const struct relaymap_subbuf_header *live = (const void *)slot;
		struct relaymap_subbuf_header h;
		struct rm_sbrecs r;
		uint64_t len;

		if (cur.produced - s > n) {
			c_torn++; /* lapped: cannot be valid any more */
			continue;
		}
		rm_hdr_read(live, &h); /* commit first, with acquire */
		if (h.commit != s + 1 || h.packet_seq_num != s) {
			c_torn++;
			continue;
		}
		len = h.content_size / 8;
		if (len > sbs)
			len = sbs;
		memcpy(cons_copy, slot, len);
		/*
		 * Seqlock, second half: the kernel stores commit = 0 before it
		 * rewrites a slot handed back; the fence orders the copy
		 * before the re-read.
		 */
		__atomic_thread_fence(__ATOMIC_ACQUIRE);
		if (__atomic_load_n(&live->commit, __ATOMIC_RELAXED) != s + 1 ||
		    __atomic_load_n(&live->packet_seq_num, __ATOMIC_RELAXED) != s) {
			c_torn++;
			continue;
		}
		memcpy(&h, cons_copy, sizeof(h));
		if (rm_hdr_check(&ch, cpu, s, &h, why, sizeof(why))) {
			rm_bad("consumer: a committed header is not valid: %s", why);
			continue;
		}
		rm_stream_payload(&cons_st[cpu], s, cons_copy + h.header_size,
				  rm_events_len(&h), &r);
		c_subbufs++;
	}
	cons_next[cpu] = cur.produced > cons_next[cpu] ? cur.produced : cons_next[cpu];
	if (cur.produced > cur.consumed && rm_put_consumed(cons_fd[cpu], cur.produced - cur.consumed))
		c_put_refused++; /* the fuzzer handed some back, or read() moved it */
}

static void *consumer(void *arg)
{
	static int32_t fds[RELAYMAP_MAX_CPUS];

	(void)arg;
	cons_copy = malloc(ch.info.subbuf_size);
	if (!cons_copy)
		rm_die("malloc");
	while (!__atomic_load_n(&stop_consumer, __ATOMIC_ACQUIRE)) {
		int err;

		pthread_mutex_lock(&fd_lock);
		err = rm_open_consumers_all(cons_ctl, fds, ch.info.nr_cpu_ids);
		if (!err)
			for (unsigned int i = 0; i < ch.ncpus; i++) {
				cons_fd[ch.cpus[i]] = fds[ch.cpus[i]];
				mark(fds[ch.cpus[i]], true);
			}
		pthread_mutex_unlock(&fd_lock);
		if (err == -EBUSY) {
			c_busy++;
			rm_sleep_ms(2);
			continue;
		}
		if (err)
			rm_die("consumer: OPEN_CONSUMER(ALL): %s", strerror(-err));
		c_claims++;
		for (unsigned int i = 0; i < ch.ncpus; i++) {
			unsigned int c = ch.cpus[i];
			void *p = mmap(NULL, ch.info.alloc_size, PROT_READ, MAP_SHARED, cons_fd[c], 0);

			if (p == MAP_FAILED)
				rm_die("consumer: mmap cpu %u: %s", c, strerror(errno));
			cons_map[c] = p;
		}
		for (unsigned int round = 0, rounds = 5 + (unsigned int)(c_claims % 20);
		     round < rounds && !__atomic_load_n(&stop_consumer, __ATOMIC_ACQUIRE); round++) {
			for (unsigned int i = 0; i < ch.ncpus; i++)
				cons_cpu(ch.cpus[i]);
			c_rounds++;
			rm_sleep_ms(3);
		}
		pthread_mutex_lock(&fd_lock);
		for (unsigned int i = 0; i < ch.ncpus; i++) {
			unsigned int c = ch.cpus[i];

			munmap((void *)cons_map[c], ch.info.alloc_size);
			cons_map[c] = NULL;
			mark(cons_fd[c], false);
			close(cons_fd[c]);
			cons_fd[c] = -1;
		}
		pthread_mutex_unlock(&fd_lock);
		/* Room for the fuzzer to claim CPUs too. */
		rm_sleep_ms(1 + (unsigned int)(c_claims % 5));
	}
	return NULL;
}

/* ---- checks after a call ------------------------------------------------ */

static bool errno_ok(int e, bool is_read)
{
	switch (e) {
	case EFAULT: case EINVAL: case E2BIG: case ENOTTY: case EPERM:
	case EBUSY: case ENOENT: case ENOMEM: case EMFILE: case EBADF:
		return true;
	case EAGAIN: case EINTR:
		return is_read;
	default:
		return false;
	}
}

static bool all_bytes(const uint8_t *p, size_t n, uint8_t v)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != v)
			return false;
	return true;
}

static void check_cursor(const struct relaymap_cursor *c, const char *what)
{
	if (c->consumed > c->produced)
		rm_bad("%s: cpu %u consumed %llu > produced %llu", what, c->cpu,
		       (unsigned long long)c->consumed, (unsigned long long)c->produced);
}

/*
 * OPEN_CONSUMER(ALL) succeeded: fds[c] holds an fd for every CPU with a
 * buffer (adopted) and -1 for the others; nothing written after fds[nr_cpu_ids].
 * Read from where the kernel read the struct, whatever built it.
 */
static void adopt_all(void)
{
	struct relaymap_open_consumer in;
	const int32_t *fds;

	if (!A.p)
		return;
	memcpy(&in, A.p, sizeof(in));
	if (in.cpu != RELAYMAP_ALL_CPUS)
		return;
	fds = (const int32_t *)(uintptr_t)in.fds;
	if ((const uint8_t *)fds < area2 ||
	    (const uint8_t *)(fds + ch.info.nr_cpu_ids) > area2 + area_len) {
		rm_bad("OPEN_CONSUMER(ALL) succeeded with fds at %p outside the array area", (const void *)fds);
		return;
	}
	for (unsigned int c = 0; c < ch.info.nr_cpu_ids; c++) {
		if (rm_info_has_cpu(&ch.info, c)) {
			if (fds[c] < 3 || !fd_open(fds[c]))
				rm_bad("OPEN_CONSUMER(ALL): fds[%u] = %d is not an open fd", c, fds[c]);
			else
				adopt(fds[c], K_CONS);
		} else if (fds[c] != -1) {
			rm_bad("OPEN_CONSUMER(ALL): fds[%u] = %d for a CPU without a buffer", c, fds[c]);
		}
	}
	if ((const uint8_t *)(fds + ch.info.nr_cpu_ids) + 16 <= area2 + area_len &&
	    !all_bytes((const uint8_t *)(fds + ch.info.nr_cpu_ids), 16, PAT2))
		rm_bad("OPEN_CONSUMER(ALL): wrote past fds[nr_cpu_ids]");
}

/* Success of a struct command with A in area: what the kernel wrote. */
static void check_success(const struct cmd_desc *d, enum kind k)
{
	uint8_t *p = A.p;
	size_t ks = d->ksize;
	uint32_t out_size;
	size_t after;

	if (!A.built || !A.in_area)
		return;
	/* Nothing before the struct, nothing after what we declared. */
	if (!all_bytes(area, (size_t)(p - area), PAT1))
		rm_bad("nr %#x: bytes before the struct changed", d->nr);
	after = (size_t)(p - area) + A.len;
	if (after < area_len && !all_bytes(area + after, area_len - after > 512 ? 512 : area_len - after, PAT1))
		rm_bad("nr %#x: bytes after the struct (size %u) changed", d->nr, A.size_in);
	if (A.len > ks && memcmp(p + ks, A.copy + ks, A.len - ks))
		rm_bad("nr %#x: the tail beyond sizeof (%zu) changed (size %u)", d->nr, ks, A.size_in);
	if (A.tail_dirty)
		rm_bad("nr %#x: succeeded with a non-zero tail beyond sizeof (expected E2BIG)", d->nr);
	if (A.size_in < d->ver0)
		rm_bad("nr %#x: succeeded with size %u < VER0 %u", d->nr, A.size_in, d->ver0);
	if (A.size_in > page)
		rm_bad("nr %#x: succeeded with size %u > page size", d->nr, A.size_in);
	if (!d->rw)
		return;
	memcpy(&out_size, p, 4);
	if (out_size != (A.size_in < ks ? A.size_in : ks))
		rm_bad("nr %#x: size written back %u, expected min(%u, %zu)", d->nr, out_size, A.size_in, ks);
	switch (d->nr) {
	case 0x02: {
		struct relaymap_cursor c;

		memcpy(&c, p, sizeof(c));
		check_cursor(&c, "GET_CURSOR");
		break;
	}
	case 0x06: {
		struct relaymap_stats s;

		memcpy(&s, p, sizeof(s));
		if (s.subbufs_consumed > s.subbufs_produced)
			rm_bad("GET_STATS(cpu %d): consumed %llu > produced %llu", s.cpu,
			       (unsigned long long)s.subbufs_consumed,
			       (unsigned long long)s.subbufs_produced);
		break;
	}
	case 0x07: {
		struct relaymap_cursors in, out;
		const uint8_t *arr;
		uint32_t w;

		memcpy(&in, A.copy, sizeof(in));
		memcpy(&out, p, sizeof(out));
		arr = (const uint8_t *)(uintptr_t)in.cursors;
		w = in.cursor_size < sizeof(struct relaymap_cursor) ? in.cursor_size : sizeof(struct relaymap_cursor);
		if (out.nr > in.nr || out.nr > ch.info.nr_cpu_ids)
			rm_bad("GET_CURSORS: nr %u out of %u asked, nr_cpu_ids %u", out.nr, in.nr, ch.info.nr_cpu_ids);
		if (out.nr && (arr < area2 || arr + (size_t)out.nr * in.cursor_size > area2 + area_len)) {
			rm_bad("GET_CURSORS: succeeded writing %u x %u bytes at %p outside the array area",
			       out.nr, in.cursor_size, (const void *)arr);
			break;
		}
		for (uint32_t i = 0; i < out.nr && arr; i++) {
			struct relaymap_cursor c;
			const uint8_t *e = arr + (size_t)i * in.cursor_size;

			memset(&c, 0, sizeof(c));
			memcpy(&c, e, w);
			if (c.size != w || c.cpu != in.first_cpu + i)
				rm_bad("GET_CURSORS element %u: size %u cpu %u, expected %u and %u", i, c.size,
				       c.cpu, w, in.first_cpu + i);
			if (in.cursor_size > w && !all_bytes(e + w, in.cursor_size - w, 0))
				rm_bad("GET_CURSORS element %u: bytes after sizeof not zeroed", i);
			check_cursor(&c, "GET_CURSORS");
		}
		if (arr >= area2 && arr < area2 + area_len) {
			size_t end = (size_t)(arr - area2) + (size_t)out.nr * in.cursor_size;

			if (end < area_len && !all_bytes(area2 + end, area_len - end > 256 ? 256 : area_len - end, PAT2))
				rm_bad("GET_CURSORS: wrote past element %u", out.nr);
		}
		break;
	}
	case 0x08:
		break; /* adopt_all() ran already */
	case 0x21: {
		struct relaymap_list in, out;
		const uint8_t *names;
		uint32_t n;

		memcpy(&in, A.copy, sizeof(in));
		memcpy(&out, p, sizeof(out));
		names = (const uint8_t *)(uintptr_t)in.names;
		n = in.nr < out.nr ? in.nr : out.nr;
		if (!names || !n)
			break;
		if (names < area2 || names + (size_t)n * RELAYMAP_NAME_MAX > area2 + area_len) {
			rm_bad("LIST succeeded writing %u names at %p outside the array area", n, (const void *)names);
			break;
		}
		if ((size_t)(names - area2) + (size_t)n * RELAYMAP_NAME_MAX + 64 <= area_len &&
		    !all_bytes(names + (size_t)n * RELAYMAP_NAME_MAX, 64, PAT2))
			rm_bad("LIST: wrote past name %u", n);
		break;
	}
	default:
		break;
	}
	(void)k;
}

/* ---- one step ------------------------------------------------------------ */

static bool lg_running_at_start;

static void do_ioctl(int fd, enum kind k, bool thread_fd)
{
	unsigned long cmd = pick_cmd(k);
	const struct cmd_desc *d = desc_of(cmd);
	unsigned long arg = build_arg(cmd);
	int r = ioctl(fd, cmd, arg), e = r < 0 ? errno : 0;

	ioctls++;
	if (r < 0) {
		errno_count[e & 0xff]++;
		if (!errno_ok(e, false))
			rm_bad("ioctl(%s fd, %#lx, %#lx): unexpected errno %d (%s)", kind_name[k], cmd, arg, e,
			       strerror(e));
		return;
	}
	if (r == 0) {
		ret_zero++;
		if (d && d->nr == 0x05 && lg_running_at_start && (k == K_CHAN || k == K_CTRL))
			rm_bad("RESET succeeded while the load generator runs");
		if (d && d->nr == 0x08 && (k == K_CHAN || k == K_CTRL))
			adopt_all();
		if (d && d->ver0)
			check_success(d, k);
		return;
	}
	/* r > 0: GET_VERSION, or a new fd. */
	if (d && d->nr == 0x20 && k == K_DEV) {
		if (r != RELAYMAP_ABI_VERSION)
			rm_bad("GET_VERSION returned %d", r);
		return;
	}
	if (d && ((d->nr == 0x22 && k == K_DEV) || (d->nr == 0x08 && (k == K_CHAN || k == K_CTRL)))) {
		ret_fd++;
		if (thread_fd || !fd_open(r) || (r < FD_MAX && known[r]))
			rm_bad("ioctl %#lx returned %d, not a new fd", cmd, r);
		else
			adopt(r, d->nr == 0x22 ? K_CHAN : K_CONS);
		if (d->ver0)
			check_success(d, k);
		return;
	}
	rm_bad("ioctl(%s fd, %#lx) returned %d", kind_name[k], cmd, r);
}

static void do_read(int fd)
{
	size_t n;
	uint8_t *p;
	ssize_t r;

	switch (below(4)) {
	case 0: /* into area, possibly running into its PROT_NONE page */
		p = area + below(area_len);
		n = below((size_t)(area + area_len - p) + page);
		break;
	case 1:
		p = (uint8_t *)(uintptr_t)kernel_addrs[below(sizeof(kernel_addrs) / sizeof(kernel_addrs[0]))];
		n = below(1 << 20);
		break;
	case 2:
		p = NULL;
		n = below(1 << 16);
		break;
	default:
		p = ro;
		n = 1 + below(page);
		break;
	}
	reads++;
	r = read(fd, p, n);
	if (r < 0 && !errno_ok(errno, true))
		rm_bad("read(consumer fd, %p, %zu): unexpected errno %d (%s)", (void *)p, n, errno, strerror(errno));
	if (r > (ssize_t)n)
		rm_bad("read returned %zd > %zu", r, n);
}

static void do_mmap(int fd)
{
	static const int prots[] = { PROT_READ, PROT_READ, PROT_READ | PROT_WRITE, PROT_READ | PROT_EXEC, PROT_NONE };
	uint64_t len = ch.info.alloc_size;
	int prot = prots[below(5)], flags = chance(4) ? MAP_PRIVATE : MAP_SHARED;
	off_t off = chance(6) ? (off_t)page : 0;
	unsigned int slot = (unsigned int)below(MAPS_MAX);
	void *p;

	switch (below(6)) {
	case 0: len = page; break;
	case 1: len = len + page; break;
	case 2: len = len - page; break;
	default: break;
	}
	mmaps++;
	p = mmap(NULL, len, prot, flags, fd, off);
	if (p == MAP_FAILED)
		return;
	if (flags == MAP_SHARED && (prot & (PROT_WRITE | PROT_EXEC)))
		rm_bad("mmap of a consumer fd with prot %#x MAP_SHARED succeeded", prot);
	if (len != ch.info.alloc_size || off)
		rm_bad("mmap of a consumer fd: length %llu offset %lld succeeded (alloc_size %llu)",
		       (unsigned long long)len, (long long)off, (unsigned long long)ch.info.alloc_size);
	if (!(prot & PROT_READ) || len != ch.info.alloc_size) {
		munmap(p, len);
		return;
	}
	/* Touch every page (relay's fault handler), then keep it a while. */
	for (uint64_t o = 0; o < len; o += page)
		(void)*(volatile const uint8_t *)((const uint8_t *)p + o);
	if (maps[slot].p)
		munmap((void *)maps[slot].p, ch.info.alloc_size);
	maps[slot].p = p;
	maps[slot].born = steps;
}

static void step(void)
{
	unsigned int i;
	struct pfd *e;

	steps++;
	/* Consumer fds held too long give their CPU back (claims, mappings). */
	for (i = 0; i < npool; i++)
		if (pool[i].kind == K_CONS && steps - pool[i].born > CONS_TTL)
			pool_close(i--);
	for (i = 0; i < MAPS_MAX; i++)
		if (maps[i].p && steps - maps[i].born > CONS_TTL) {
			munmap((void *)maps[i].p, ch.info.alloc_size);
			maps[i].p = NULL;
		}
	if (chance(8)) {
		/* The consumer thread's fds: everything, also PUT_CONSUMED and read(). */
		unsigned int c = ch.cpus[below(ch.ncpus)];

		pthread_mutex_lock(&fd_lock);
		if (cons_fd[c] >= 0) {
			if (chance(10))
				do_read(cons_fd[c]);
			else
				do_ioctl(cons_fd[c], K_CONS, true);
		}
		pthread_mutex_unlock(&fd_lock);
		return;
	}
	e = &pool[below(npool)];
	switch (below(100)) {
	case 0:
		pool_close((unsigned int)(e - pool));
		return;
	case 1: case 2:
		if (e->kind == K_CONS || e->kind == K_CPUFILE)
			do_mmap(e->fd);
		return;
	case 3: case 4:
		if (e->kind == K_CONS) {
			do_read(e->fd);
			return;
		}
		break;
	case 5: {
		struct pollfd pf = { .fd = e->fd, .events = POLLIN | POLLOUT | POLLPRI };

		polls++;
		if (poll(&pf, 1, 0) < 0 && errno != EINTR)
			rm_bad("poll(%s fd): %s", kind_name[e->kind], strerror(errno));
		return;
	}
	default:
		break;
	}
	do_ioctl(e->fd, e->kind, false);
}

/* ---- main ---------------------------------------------------------------- */

int main(int argc, char **argv)
{
	uint64_t count = 100000, seconds = 0, min = 0, seed = 0, t0;
	bool min_set = false;
	struct lg_status lg0, lg1;
	struct relaymap_stats tot, one;
	struct relaymap_cursor curs[RM_MAXCPU];
	unsigned int filled;
	pthread_t th;
	double secs;

	rm_init(argv[0], 0);
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!strcmp(a, "-n")) {
			chan_name = v; i++;
		} else if (!strcmp(a, "--count")) {
			count = rm_argu(a, v); i++;
		} else if (!strcmp(a, "--seconds")) {
			seconds = rm_argu(a, v); i++;
		} else if (!strcmp(a, "--min")) {
			min = rm_argu(a, v); i++;
			min_set = true;
		} else if (!strcmp(a, "--seed")) {
			seed = rm_argu(a, v); i++;
		} else {
			rm_die("unknown option %s (usage: rmck_fuzz -n NAME [--count N] [--seconds S] [--min N] [--seed X])", a);
		}
	}
	if (!chan_name)
		rm_die("usage: rmck_fuzz -n NAME [--count N] [--seconds S] [--min N] [--seed X]");
	if (!min_set)
		min = count;
	if (!seed)
		seed = rm_now_ns() ^ (uint64_t)getpid() << 32;
	rng_state = seed | 1;
	/* Our own watchdog: a call that never returns is a finding too. */
	alarm((unsigned int)(seconds ? seconds : 3600) + 180);
	page = (size_t)sysconf(_SC_PAGESIZE);
	if (page > 4096)
		rm_die("page size %zu: the scratch structs assume 4096", page);

	rm_set_phase("setup");
	for (int fd = 0; fd < 3; fd++)
		mark(fd, true);
	rm_open(&ch, chan_name, 0);
	mark(ch.ctl, true);
	cons_ctl = rm_open_channel_x(chan_name);
	mark(cons_ctl, true);
	for (unsigned int c = 0; c < RM_MAXCPU; c++)
		cons_fd[c] = -1;
	for (unsigned int i = 0; i < ch.ncpus; i++)
		rm_stream_init(&cons_st[ch.cpus[i]], ch.cpus[i], 0);
	scratch_init();
	if (!lg_present())
		rm_die("relaymap_loadgen is not loaded");
	lg_read_status(&lg0);
	lg_running_at_start = lg0.running;
	if (!lg0.running)
		rm_die("the load generator is not running (start it first: lg_start)");
	for (int i = 0; i < 3; i++)
		pool_add(open_kind(K_DEV, 0), K_DEV, true);
	for (int i = 0; i < 3; i++)
		pool_add(open_kind(K_CHAN, 0), K_CHAN, true);
	{
		int fd = open_kind(K_CTRL, 0);

		have_debugfs = fd >= 0;
		if (have_debugfs) {
			pool_add(fd, K_CTRL, true);
			fd = open_kind(K_CPUFILE, ch.cpus[0]);
			if (fd >= 0)
				pool_add(fd, K_CPUFILE, true);
		}
	}
	rm_note("channel %s: cpus=%u nr_cpu_ids=%u subbuf_size=%llu n_subbufs=%llu debugfs=%d seed=%llu count=%llu seconds=%llu",
		chan_name, ch.ncpus, ch.info.nr_cpu_ids, (unsigned long long)ch.info.subbuf_size,
		(unsigned long long)ch.info.n_subbufs, have_debugfs, (unsigned long long)seed,
		(unsigned long long)count, (unsigned long long)seconds);
	if (pthread_create(&th, NULL, consumer, NULL))
		rm_die("pthread_create");

	rm_set_phase("fuzzing");
	t0 = rm_now_ns();
	while (ioctls < count) {
		step();
		if ((steps & 255) == 0) {
			if (seconds && rm_now_ns() - t0 > seconds * 1000000000ULL)
				break;
			if ((steps & 4095) == 0)
				sweep();
		}
		if ((steps % 20000) == 0)
			rm_note("progress: %llu ioctls in %.1f s", (unsigned long long)ioctls, rm_secs_since(t0));
	}
	secs = rm_secs_since(t0);

	rm_set_phase("teardown");
	__atomic_store_n(&stop_consumer, 1, __ATOMIC_RELEASE);
	pthread_join(th, NULL);
	for (unsigned int i = 0; i < MAPS_MAX; i++)
		if (maps[i].p)
			munmap((void *)maps[i].p, ch.info.alloc_size);
	tearing_down = true;
	while (npool)
		pool_close(npool - 1);
	sweep();

	rm_set_phase("after");
	/* Every fd closed: nobody holds a CPU. */
	{
		int err = rm_get_cursors(ch.ctl, 0, ch.info.nr_cpu_ids < RM_MAXCPU ? ch.info.nr_cpu_ids : RM_MAXCPU,
					 curs, &filled);

		if (err)
			rm_die("GET_CURSORS after the fuzzing: %s", strerror(-err));
	}
	for (unsigned int i = 0; i < filled; i++) {
		check_cursor(&curs[i], "GET_CURSORS after");
		if (curs[i].flags & RELAYMAP_CURSOR_HELD)
			rm_bad("cpu %u is still held (pid %d comm %s) after every fd was closed", curs[i].cpu,
			       curs[i].holder_pid, curs[i].holder_comm);
	}
	rm_stats_x(ch.ctl, RELAYMAP_ALL_CPUS, &tot);
	{
		uint64_t w = 0, prod = 0, cons = 0;

		for (unsigned int i = 0; i < ch.ncpus; i++) {
			rm_stats_x(ch.ctl, (int)ch.cpus[i], &one);
			w += one.records_written;
			prod += one.subbufs_produced;
			cons += one.subbufs_consumed;
		}
		/* Writers still run: the total is read first, so it can only be smaller. */
		if (tot.records_written > w || tot.subbufs_produced > prod || tot.subbufs_consumed > cons)
			rm_bad("GET_STATS total (written %llu produced %llu consumed %llu) > sum of CPUs read after it (%llu %llu %llu)",
			       (unsigned long long)tot.records_written, (unsigned long long)tot.subbufs_produced,
			       (unsigned long long)tot.subbufs_consumed, (unsigned long long)w,
			       (unsigned long long)prod, (unsigned long long)cons);
	}
	lg_read_status(&lg1);
	if (!lg1.running)
		rm_bad("the load generator stopped during the fuzzing");
	if (ioctls < min)
		rm_bad("only %llu ioctls in %.0f s, wanted at least %llu", (unsigned long long)ioctls, secs,
		       (unsigned long long)min);
	{
		uint64_t recs = 0, gaps = 0, errs = 0;

		for (unsigned int i = 0; i < ch.ncpus; i++) {
			recs += cons_st[ch.cpus[i]].records;
			gaps += cons_st[ch.cpus[i]].gap_records;
			errs += rm_stream_errors(&cons_st[ch.cpus[i]]);
		}
		rm_note("consumer: claims=%llu busy_retries=%llu rounds=%llu subbufs=%llu records=%llu gap_records=%llu stream_errors=%llu torn_or_lapped=%llu put_refused=%llu",
			(unsigned long long)c_claims, (unsigned long long)c_busy,
			(unsigned long long)c_rounds, (unsigned long long)c_subbufs,
			(unsigned long long)recs, (unsigned long long)gaps,
			(unsigned long long)errs, (unsigned long long)c_torn,
			(unsigned long long)c_put_refused);
		if (!c_claims || !recs)
			rm_bad("the consumer thread never consumed anything (claims %llu records %llu)",
			       (unsigned long long)c_claims, (unsigned long long)recs);
	}
	rm_note("loadgen: written %llu -> %llu, dropped %llu -> %llu",
		(unsigned long long)lg0.written, (unsigned long long)lg1.written,
		(unsigned long long)lg0.dropped, (unsigned long long)lg1.dropped);
	if (lg1.written <= lg0.written)
		rm_bad("the load generator wrote nothing during the fuzzing");
	{
		char hist[512];
		size_t o = 0;

		hist[0] = 0;
		for (int e = 1; e < 256; e++)
			if (errno_count[e] && o < sizeof(hist) - 32)
				o += (size_t)snprintf(hist + o, sizeof(hist) - o, " %s=%llu", strerrorname_np(e) ? strerrorname_np(e) : "?",
						      (unsigned long long)errno_count[e]);
		rm_note("errno:%s", hist);
	}
	rm_note("SUMMARY ioctls=%llu seconds=%.1f rate=%.0f/s ok=%llu fds_returned=%llu adopted=%llu reads=%llu mmaps=%llu polls=%llu reopens=%llu sweeps=%llu seed=%llu",
		(unsigned long long)ioctls, secs, secs > 0 ? (double)ioctls / secs : 0.0,
		(unsigned long long)ret_zero, (unsigned long long)ret_fd, (unsigned long long)adopted,
		(unsigned long long)reads, (unsigned long long)mmaps, (unsigned long long)polls,
		(unsigned long long)reopens, (unsigned long long)sweeps, (unsigned long long)seed);
	rm_close(&ch);
	close(cons_ctl);
	return rm_exit();
}

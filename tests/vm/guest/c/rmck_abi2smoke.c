// SPDX-License-Identifier: MIT OR Apache-2.0
/*
 * rmck_abi2smoke - the kmod engineer's smoke test of ABI 2, end to end
 * through /dev/relaymap (self-contained: no rmtest.h).
 *
 *   rmck_abi2smoke basic debugfs|securityfs|lockdown-debugfs
 *       channel "smoke" (relaymap.ko name=smoke), load generator loaded
 *       with channel=smoke: device, LIST, OPEN_CHANNEL, versioning,
 *       exclusive consumers (EBUSY + holder, all-or-nothing), mmap rules,
 *       headers (CTF fields, commit, content_size ends at the last
 *       record), records (printf and loadgen), PUT_CONSUMED rules,
 *       counters (rejected vs dropped), GET_CURSORS, RESET, the view.
 *   rmck_abi2smoke destroy
 *       channel "lgown" made by relaymap_loadgen create=lgown: destroy
 *       under a consumer (drain after destroy, EPOLLHUP when drained, a
 *       sleeping poller woken), name busy until the last close.
 *   rmck_abi2smoke access GID MODE
 *       /dev/relaymap node mode, and open() as uid 2000 with and
 *       without group GID (GID -1: no group= given).
 *
 * Prints "FAIL: ..." per failed check and exits 1 if any failed.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "relaymap_abi.h"

#define MAXCPU 64
#define LGP "/sys/module/relaymap_loadgen/parameters/"

static int nbad;

#define BAD(...) do { nbad++; printf("FAIL: " __VA_ARGS__); printf("\n"); fflush(stdout); } while (0)
#define CHECK(c, ...) do { if (!(c)) BAD(__VA_ARGS__); } while (0)
#define DIE(...) do { BAD(__VA_ARGS__); exit(1); } while (0)
#define NOTE(...) do { printf("abi2smoke: " __VA_ARGS__); printf("\n"); fflush(stdout); } while (0)

/* ioctl that must fail with errno @e */
#define EXPECT_ERR(e, call, what) do {                                         \
		errno = 0;                                                      \
		long _r = (call);                                               \
		if (_r != -1 || errno != (e))                                   \
			BAD("%s: got %ld errno %d (%s), want %s", what, _r,     \
			    errno, strerror(errno), strerror(e));               \
	} while (0)
#define EXPECT_OK(call, what) do {                                             \
		long _r = (call);                                               \
		if (_r < 0)                                                     \
			BAD("%s: %s", what, strerror(errno));                   \
	} while (0)

/* ---- small helpers ---------------------------------------------------- */

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

static void write_file(const char *path, const char *val)
{
	int fd = open(path, O_WRONLY);

	if (fd < 0 || write(fd, val, strlen(val)) != (ssize_t)strlen(val))
		DIE("write %s to %s: %s", val, path, strerror(errno));
	close(fd);
}

static int read_file(const char *path, char *buf, size_t n)
{
	int fd = open(path, O_RDONLY);
	ssize_t r;

	if (fd < 0)
		return -errno;
	r = read(fd, buf, n - 1);
	close(fd);
	if (r < 0)
		return -errno;
	buf[r] = 0;
	return 0;
}

static void lg_set(const char *k, const char *v)
{
	char p[256];

	snprintf(p, sizeof(p), LGP "%s", k);
	write_file(p, v);
}

struct lgst {
	bool running;
	uint64_t written[MAXCPU], rejected[MAXCPU], dropped[MAXCPU];
	uint64_t tw, td, tr;
};

static void lg_status(struct lgst *st)
{
	char buf[8192], *l, *save;

	memset(st, 0, sizeof(*st));
	if (read_file(LGP "status", buf, sizeof(buf)))
		DIE("read " LGP "status: %s", strerror(errno));
	for (l = strtok_r(buf, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
		unsigned int c;
		unsigned long long a, w, d, r;
		char s[16];

		if (sscanf(l, "state %15s", s) == 1)
			st->running = !strcmp(s, "running");
		else if (sscanf(l, "cpu %u attempts %llu written %llu dropped %llu rejected %llu",
				&c, &a, &w, &d, &r) == 5 && c < MAXCPU) {
			st->written[c] = w;
			st->dropped[c] = d;
			st->rejected[c] = r;
		} else if (sscanf(l, "total attempts %llu written %llu dropped %llu rejected %llu",
				  &a, &w, &d, &r) == 4) {
			st->tw = w;
			st->td = d;
			st->tr = r;
		}
	}
}

static void lg_wait_idle(void)
{
	uint64_t t0 = now_ns();
	struct lgst st;
	struct timespec ts = { 0, 20000000 };

	for (;;) {
		lg_status(&st);
		if (!st.running)
			return;
		if (now_ns() - t0 > 120ull * 1000000000ull)
			DIE("load generator still running after 120 s");
		nanosleep(&ts, NULL);
	}
}

static int dev_open(void)
{
	int fd = open(RELAYMAP_DEVICE_PATH, O_RDWR | O_CLOEXEC);

	if (fd < 0)
		DIE("open %s: %s", RELAYMAP_DEVICE_PATH, strerror(errno));
	return fd;
}

static int open_channel(int dev, const char *name)
{
	struct relaymap_open_channel oc = { .size = sizeof(oc) };

	strncpy(oc.name, name, sizeof(oc.name) - 1);
	return ioctl(dev, RELAYMAP_IOC_OPEN_CHANNEL, &oc);
}

static int open_consumer(int ch, int cpu)
{
	struct relaymap_open_consumer oc = { .size = sizeof(oc), .cpu = cpu };

	return ioctl(ch, RELAYMAP_IOC_OPEN_CONSUMER, &oc);
}

static int get_cursor(int fd, unsigned int cpu, struct relaymap_cursor *c)
{
	memset(c, 0, sizeof(*c));
	c->size = sizeof(*c);
	c->cpu = cpu;
	return ioctl(fd, RELAYMAP_IOC_GET_CURSOR, c);
}

static int put_consumed(int fd, uint64_t n)
{
	struct relaymap_consume c = { .size = sizeof(c), .count = n };

	return ioctl(fd, RELAYMAP_IOC_PUT_CONSUMED, &c);
}

static int flush_cpu(int ch, int cpu)
{
	struct relaymap_flush f = { .size = sizeof(f), .cpu = cpu };

	return ioctl(ch, RELAYMAP_IOC_FLUSH, &f);
}

static void get_info(int ch, struct relaymap_info *info)
{
	memset(info, 0, sizeof(*info));
	info->size = sizeof(*info);
	if (ioctl(ch, RELAYMAP_IOC_GET_INFO, info))
		DIE("GET_INFO: %s", strerror(errno));
}

static void get_stats(int ch, int cpu, struct relaymap_stats *st)
{
	memset(st, 0, sizeof(*st));
	st->size = sizeof(*st);
	st->cpu = cpu;
	if (ioctl(ch, RELAYMAP_IOC_GET_STATS, st))
		DIE("GET_STATS(%d): %s", cpu, strerror(errno));
}

static bool has_cpu(const struct relaymap_info *info, unsigned int c)
{
	return info->cpu_mask[c / 64] & (1ull << (c % 64));
}

static void fd_kind(int fd, const char *want, int accmode)
{
	char p[64], l[128] = "";
	ssize_t n;
	int fl = fcntl(fd, F_GETFL), fdfl = fcntl(fd, F_GETFD);

	snprintf(p, sizeof(p), "/proc/self/fd/%d", fd);
	n = readlink(p, l, sizeof(l) - 1);
	if (n > 0)
		l[n] = 0;
	CHECK(!strcmp(l, want), "fd %d is '%s', want '%s'", fd, l, want);
	CHECK((fl & O_ACCMODE) == accmode, "fd %d access mode %o, want %o", fd,
	      fl & O_ACCMODE, accmode);
	CHECK(fdfl & FD_CLOEXEC, "fd %d has no FD_CLOEXEC", fd);
}

/* ---- headers and records --------------------------------------------- */

struct stream {
	uint64_t recs, printf_recs, bin_recs, data_bytes;
	uint64_t next_bin_seq, next_txt_seq;
	uint64_t subbufs, unaligned_ends, flushed;
	uint64_t last_rejected, last_discarded;
	uint64_t last_end_ts;
};

static uint32_t fnv(uint32_t h, const void *p, size_t n)
{
	const uint8_t *b = p;

	while (n--)
		h = (h ^ *b++) * RELAYMAP_FNV_PRIME;
	return h;
}

static void check_loadgen(const uint8_t *data, uint32_t len, unsigned int cpu,
			  struct stream *st, uint64_t s)
{
	struct relaymap_loadgen_payload pl;
	const uint8_t *fill = data + sizeof(pl);
	uint32_t h = RELAYMAP_FNV_OFFSET;

	if (len < sizeof(pl)) {
		BAD("cpu %u sb %" PRIu64 ": loadgen record of %u bytes", cpu, s, len);
		return;
	}
	memcpy(&pl, data, sizeof(pl));
	h = fnv(h, &pl.seq, 8);
	h = fnv(h, &pl.cpu, 4);
	for (uint32_t i = 0; i < len - sizeof(pl); i++) {
		if (fill[i] != (uint8_t)(pl.seq * 13 + i * 7 + pl.cpu)) {
			BAD("cpu %u seq %" PRIu64 ": fill byte %u wrong", cpu,
			    (uint64_t)pl.seq, i);
			break;
		}
	}
	h = fnv(h, fill, len - sizeof(pl));
	CHECK(h == pl.checksum, "cpu %u seq %" PRIu64 ": checksum %08x, want %08x",
	      cpu, (uint64_t)pl.seq, pl.checksum, h);
	CHECK(pl.cpu == cpu, "record of cpu %u in cpu %u's buffer", pl.cpu, cpu);
	if (pl.seq == 0)
		st->next_bin_seq = 0;	/* a new run */
	CHECK(pl.seq == st->next_bin_seq, "cpu %u: loadgen seq %" PRIu64 ", want %" PRIu64,
	      cpu, (uint64_t)pl.seq, st->next_bin_seq);
	st->next_bin_seq = pl.seq + 1;
	st->bin_recs++;
}

static void check_text(const uint8_t *data, uint32_t len, unsigned int cpu,
		       struct stream *st)
{
	char t[128];
	unsigned int c;
	unsigned long long seq;

	if (len >= sizeof(t) || memchr(data, 0, len)) {
		BAD("cpu %u: printf record of %u bytes (or with a NUL)", cpu, len);
		return;
	}
	memcpy(t, data, len);
	t[len] = 0;
	if (sscanf(t, "relaymap_loadgen cpu %u seq %llu", &c, &seq) != 2) {
		BAD("cpu %u: printf text '%s'", cpu, t);
		return;
	}
	CHECK(c == cpu, "cpu %u: printf text of cpu %u", cpu, c);
	if (seq == 0)
		st->next_txt_seq = 0;
	CHECK(seq == st->next_txt_seq, "cpu %u: printf seq %llu, want %" PRIu64,
	      cpu, seq, st->next_txt_seq);
	st->next_txt_seq = seq + 1;
	st->printf_recs++;
}

/* Check sub-buffer @s of @cpu (closed: s < produced) and walk its records. */
static void check_subbuf(const uint8_t *map, const struct relaymap_info *info,
			 unsigned int cpu, uint64_t s, struct stream *st)
{
	const uint8_t *sb = map + (s % info->n_subbufs) * info->subbuf_size;
	const struct relaymap_subbuf_header *h = (const void *)sb;
	uint64_t commit = __atomic_load_n(&h->commit, __ATOMIC_ACQUIRE);
	uint64_t content, off, last_end = 0;

	if (commit != s + 1) {
		BAD("cpu %u sb %" PRIu64 ": commit %" PRIu64 ", want %" PRIu64,
		    cpu, s, commit, s + 1);
		return;
	}
	CHECK(h->magic == RELAYMAP_CTF_MAGIC, "cpu %u sb %" PRIu64 ": magic %08x", cpu, s, h->magic);
	CHECK(!memcmp(h->uuid, info->uuid, 16), "cpu %u sb %" PRIu64 ": uuid differs from GET_INFO", cpu, s);
	CHECK(h->stream_id == 0, "stream_id %u", h->stream_id);
	CHECK(h->stream_instance_id == cpu && h->cpu_id == cpu,
	      "cpu %u sb %" PRIu64 ": stream_instance_id %" PRIu64 " cpu_id %u", cpu, s,
	      (uint64_t)h->stream_instance_id, h->cpu_id);
	CHECK(h->packet_seq_num == s, "cpu %u: packet_seq_num %" PRIu64 ", want %" PRIu64,
	      cpu, (uint64_t)h->packet_seq_num, s);
	CHECK(h->abi_version == RELAYMAP_ABI_VERSION && h->header_size == sizeof(*h),
	      "abi_version %u header_size %u", h->abi_version, h->header_size);
	CHECK(h->reserved == 0, "reserved %u", h->reserved);
	CHECK(h->timestamp_begin && h->timestamp_begin <= h->timestamp_end,
	      "cpu %u sb %" PRIu64 ": timestamps %" PRIu64 "..%" PRIu64, cpu, s,
	      (uint64_t)h->timestamp_begin, (uint64_t)h->timestamp_end);
	CHECK(h->timestamp_begin >= st->last_end_ts, "cpu %u sb %" PRIu64 ": begins before the previous ended", cpu, s);
	st->last_end_ts = h->timestamp_end;
	CHECK(h->content_size % 8 == 0, "content_size %" PRIu64 " not whole bytes", (uint64_t)h->content_size);
	content = h->content_size / 8;
	CHECK(content > sizeof(*h) && content <= info->subbuf_size,
	      "cpu %u sb %" PRIu64 ": content %" PRIu64 " bytes", cpu, s, content);
	CHECK(h->packet_size == ((content + info->page_size - 1) / info->page_size) * info->page_size * 8,
	      "cpu %u sb %" PRIu64 ": packet_size %" PRIu64 " bits for %" PRIu64 " content bytes",
	      cpu, s, (uint64_t)h->packet_size, content);
	CHECK(h->packet_size <= info->subbuf_size * 8, "packet_size beyond the sub-buffer");
	CHECK(h->events_rejected >= st->last_rejected && h->events_discarded >= st->last_discarded,
	      "cumulative counters went back");
	st->last_rejected = h->events_rejected;
	st->last_discarded = h->events_discarded;
	if (h->flags & RELAYMAP_SB_FLUSHED)
		st->flushed++;
	if (content > info->subbuf_size)
		return;

	for (off = sizeof(*h); off < content;) {
		struct relaymap_record r;

		if (content - off < sizeof(r)) {
			BAD("cpu %u sb %" PRIu64 ": %" PRIu64 " bytes after the last record",
			    cpu, s, content - off);
			break;
		}
		memcpy(&r, sb + off, sizeof(r));
		if (off + sizeof(r) + r.len > content) {
			BAD("cpu %u sb %" PRIu64 " off %" PRIu64 ": record of %u bytes runs past content %" PRIu64,
			    cpu, s, off, r.len, content);
			break;
		}
		CHECK(r.ts_ns >= h->timestamp_begin && r.ts_ns <= h->timestamp_end,
		      "cpu %u sb %" PRIu64 ": record ts outside the packet", cpu, s);
		if (r.event_id == RELAYMAP_EVENT_PRINTF) {
			CHECK(r.type == RELAYMAP_REC_PRINTF, "printf event of type %u", r.type);
			check_text(sb + off + sizeof(r), r.len, cpu, st);
		} else if (r.event_id == RELAYMAP_EVENT_RECORD && r.type == RELAYMAP_REC_LOADGEN) {
			check_loadgen(sb + off + sizeof(r), r.len, cpu, st, s);
		} else {
			BAD("cpu %u sb %" PRIu64 ": event_id %u type %u", cpu, s, r.event_id, r.type);
			break;
		}
		st->recs++;
		st->data_bytes += r.len;
		last_end = off + sizeof(r) + r.len;
		off = (last_end + 7) & ~7ull;
	}
	CHECK(last_end == content, "cpu %u sb %" PRIu64 ": last record ends at %" PRIu64 ", content_size says %" PRIu64,
	      cpu, s, last_end, content);
	if (content % 8)
		st->unaligned_ends++;
	st->subbufs++;
}

struct cons {
	int fd;
	unsigned int cpu;
	const uint8_t *map;
	struct stream st;
};

/* Drain what GET_CURSOR on the consumer fd says is produced; hand it back. */
static uint64_t drain(struct cons *c, const struct relaymap_info *info)
{
	struct relaymap_cursor cur;
	uint64_t s;

	if (get_cursor(c->fd, 9999, &cur))
		DIE("GET_CURSOR on consumer fd of cpu %u: %s", c->cpu, strerror(errno));
	CHECK(cur.cpu == c->cpu, "consumer fd of cpu %u reports cpu %u", c->cpu, cur.cpu);
	CHECK(cur.produced - cur.consumed <= info->n_subbufs, "cpu %u: %" PRIu64 " ready > n_subbufs",
	      c->cpu, (uint64_t)(cur.produced - cur.consumed));
	for (s = cur.consumed; s < cur.produced; s++)
		check_subbuf(c->map, info, c->cpu, s, &c->st);
	if (cur.produced > cur.consumed)
		EXPECT_OK(put_consumed(c->fd, cur.produced - cur.consumed), "PUT_CONSUMED");
	return cur.produced - cur.consumed;
}

static const uint8_t *map_consumer(int fd, const struct relaymap_info *info)
{
	void *m = mmap(NULL, info->alloc_size, PROT_READ, MAP_SHARED, fd, 0);

	if (m == MAP_FAILED)
		DIE("mmap consumer fd: %s", strerror(errno));
	return m;
}

/* ---- basic ------------------------------------------------------------ */

static void test_versioning(int ch, int dev)
{
	struct {
		struct relaymap_info info;
		uint8_t tail[16];
	} big;
	struct {
		struct relaymap_stats st;
		uint8_t tail[8];
	} bst;
	struct relaymap_info info;

	/* Below the first version: EINVAL. */
	memset(&info, 0, sizeof(info));
	info.size = RELAYMAP_INFO_SIZE_VER0 - 8;
	EXPECT_ERR(EINVAL, ioctl(ch, RELAYMAP_IOC_GET_INFO, &info), "GET_INFO size VER0-8");
	/* The first version exactly; bytes after it are not touched. */
	memset(&big, 0xa5, sizeof(big));
	memset(&big.info, 0, RELAYMAP_INFO_SIZE_VER0);
	big.info.size = RELAYMAP_INFO_SIZE_VER0;
	EXPECT_OK(ioctl(ch, RELAYMAP_IOC_GET_INFO, &big), "GET_INFO size VER0");
	CHECK(big.info.size == RELAYMAP_INFO_SIZE_VER0, "GET_INFO VER0: size %u", big.info.size);
	CHECK(big.tail[0] == 0xa5 && big.tail[15] == 0xa5, "GET_INFO wrote past size");
	CHECK(big.info.abi_version == RELAYMAP_ABI_VERSION, "abi %u", big.info.abi_version);
	/* Larger with a zero tail: works, size reports what the kernel wrote. */
	memset(&big, 0, sizeof(big));
	big.info.size = sizeof(big);
	EXPECT_OK(ioctl(ch, RELAYMAP_IOC_GET_INFO, &big), "GET_INFO bigger, zero tail");
	CHECK(big.info.size == sizeof(struct relaymap_info), "bigger GET_INFO: size %u, want %zu",
	      big.info.size, sizeof(struct relaymap_info));
	/* Larger with a non-zero tail: E2BIG. */
	memset(&big, 0, sizeof(big));
	big.info.size = sizeof(big);
	big.tail[7] = 1;
	EXPECT_ERR(E2BIG, ioctl(ch, RELAYMAP_IOC_GET_INFO, &big), "GET_INFO non-zero tail");
	memset(&bst, 0, sizeof(bst));
	bst.st.size = sizeof(bst);
	bst.st.cpu = RELAYMAP_ALL_CPUS;
	bst.tail[0] = 0xff;
	EXPECT_ERR(E2BIG, ioctl(ch, RELAYMAP_IOC_GET_STATS, &bst), "GET_STATS non-zero tail");
	bst.tail[0] = 0;
	EXPECT_OK(ioctl(ch, RELAYMAP_IOC_GET_STATS, &bst), "GET_STATS zero tail");
	CHECK(bst.st.size == sizeof(struct relaymap_stats), "GET_STATS size %u", bst.st.size);
	/* The kernel dispatches on _IOC_NR: another encoded size still works. */
	memset(&big, 0, sizeof(big));
	big.info.size = sizeof(big);
	EXPECT_OK(ioctl(ch, RELAYMAP_IOC_RW(0x01, sizeof(big)), &big), "GET_INFO with a bigger size in the command");
	CHECK(big.info.size == sizeof(struct relaymap_info), "GET_INFO via another command size");
	/* Unknown commands and commands of other fd kinds: ENOTTY. */
	EXPECT_ERR(ENOTTY, ioctl(ch, RELAYMAP_IOC_RW(0x7f, 8), &big), "unknown nr on channel fd");
	EXPECT_ERR(ENOTTY, ioctl(ch, _IOC(_IOC_READ, 'x', 0x01, 8), &big), "foreign magic");
	EXPECT_ERR(ENOTTY, ioctl(dev, RELAYMAP_IOC_GET_INFO, &big), "GET_INFO on /dev/relaymap");
	EXPECT_ERR(ENOTTY, ioctl(ch, RELAYMAP_IOC_LIST, &big), "LIST on a channel fd");
	EXPECT_ERR(EFAULT, ioctl(ch, RELAYMAP_IOC_GET_INFO, (void *)8), "GET_INFO bad pointer");
}

static void test_mmap_rules(int fd, const struct relaymap_info *info, const char *what)
{
	void *m;

	errno = 0;
	m = mmap(NULL, info->alloc_size, PROT_READ, MAP_SHARED, fd, info->page_size);
	CHECK(m == MAP_FAILED && errno == EINVAL, "%s: mmap at offset page: %s", what, strerror(errno));
	errno = 0;
	m = mmap(NULL, info->alloc_size - info->page_size, PROT_READ, MAP_SHARED, fd, 0);
	CHECK(m == MAP_FAILED && errno == EINVAL, "%s: mmap of a shorter length: %s", what, strerror(errno));
	errno = 0;
	m = mmap(NULL, info->alloc_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	CHECK(m == MAP_FAILED && errno == EACCES, "%s: writable shared mmap: %s", what, strerror(errno));
	errno = 0;
	m = mmap(NULL, info->alloc_size, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	CHECK(m == MAP_FAILED && errno == EPERM, "%s: writable private mmap: %s", what, strerror(errno));
	errno = 0;
	m = mmap(NULL, info->alloc_size, PROT_READ | PROT_EXEC, MAP_SHARED, fd, 0);
	CHECK(m == MAP_FAILED && (errno == EPERM || errno == EACCES),
	      "%s: executable mmap: %s", what, strerror(errno));
	m = mmap(NULL, info->alloc_size, PROT_READ, MAP_SHARED, fd, 0);
	if (m == MAP_FAILED) {
		BAD("%s: read-only mmap: %s", what, strerror(errno));
		return;
	}
	errno = 0;
	CHECK(mprotect(m, info->page_size, PROT_READ | PROT_WRITE) && errno == EACCES,
	      "%s: mprotect to writable: %s", what, strerror(errno));
	errno = 0;
	CHECK(mprotect(m, info->page_size, PROT_READ | PROT_EXEC) && errno == EACCES,
	      "%s: mprotect to executable: %s", what, strerror(errno));
	munmap(m, info->alloc_size);
	m = mmap(NULL, info->alloc_size, PROT_READ, MAP_PRIVATE, fd, 0);
	CHECK(m != MAP_FAILED, "%s: read-only private mmap: %s", what, strerror(errno));
	if (m != MAP_FAILED) {
		errno = 0;
		CHECK(mprotect(m, info->page_size, PROT_READ | PROT_WRITE) && errno == EACCES,
		      "%s: mprotect of a private mapping to writable: %s", what, strerror(errno));
		munmap(m, info->alloc_size);
	}
}

/* In a child: the holder is visible, a second claim is refused. */
static int child_busy(const char *name, pid_t holder, unsigned int ncpu)
{
	int dev = dev_open(), ch = open_channel(dev, name);
	struct relaymap_cursor cur;
	int32_t fds[MAXCPU];
	struct relaymap_open_consumer all = {
		.size = sizeof(all), .cpu = RELAYMAP_ALL_CPUS, .nr_fds = MAXCPU,
		.fds = (uintptr_t)fds,
	};

	if (ch < 0)
		DIE("child: OPEN_CHANNEL: %s", strerror(errno));
	EXPECT_ERR(EBUSY, open_consumer(ch, 0), "second OPEN_CONSUMER of cpu 0");
	EXPECT_OK(get_cursor(ch, 0, &cur), "child GET_CURSOR cpu 0");
	CHECK(cur.flags & RELAYMAP_CURSOR_HELD, "cpu 0 not HELD while claimed");
	CHECK(cur.holder_pid == holder, "holder_pid %d, want %d", cur.holder_pid, holder);
	CHECK(!strcmp(cur.holder_comm, "rmck_abi2smoke"), "holder_comm '%s'", cur.holder_comm);
	NOTE("EBUSY for a second consumer; holder pid %d comm %s", cur.holder_pid, cur.holder_comm);
	EXPECT_ERR(EPERM, put_consumed(ch, 1), "PUT_CONSUMED on a channel fd");
	memset(fds, 0x7f, sizeof(fds));
	EXPECT_ERR(EBUSY, ioctl(ch, RELAYMAP_IOC_OPEN_CONSUMER, &all), "OPEN_CONSUMER(ALL) with cpu 0 held");
	for (unsigned int c = 1; c < ncpu; c++) {
		EXPECT_OK(get_cursor(ch, c, &cur), "GET_CURSOR");
		CHECK(!(cur.flags & RELAYMAP_CURSOR_HELD) && cur.holder_pid == 0,
		      "cpu %u claimed by a failed OPEN_CONSUMER(ALL)", c);
	}
	return nbad ? 1 : 0;
}

static void test_view(const char *view, int ch, const struct relaymap_info *info)
{
	const char *dbg = "/sys/kernel/debug/relaymap/smoke";
	const char *sec = "/sys/kernel/security/relaymap/smoke";
	struct stat sb;
	char p[128], b[16];
	int fd;

	(void)ch;
	snprintf(p, sizeof(p), "%s/cpu0", dbg);
	if (!strcmp(view, "debugfs")) {
		CHECK(stat(p, &sb) == 0 && (sb.st_mode & 0777) == 0400, "%s: %s", p, strerror(errno));
		fd = open(p, O_RDONLY);
		if (fd < 0) {
			BAD("open %s: %s", p, strerror(errno));
		} else {
			EXPECT_ERR(EINVAL, read(fd, b, sizeof(b)), "read() on a debugfs cpu file");
			test_mmap_rules(fd, info, "debugfs cpu0");
			close(fd);
		}
		snprintf(p, sizeof(p), "%s/control", dbg);
		fd = open(p, O_RDWR);
		if (fd < 0) {
			BAD("open %s: %s", p, strerror(errno));
		} else {
			struct relaymap_info i2;

			get_info(fd, &i2);
			CHECK(!strcmp(i2.name, "smoke"), "control GET_INFO name %s", i2.name);
			EXPECT_ERR(EPERM, put_consumed(fd, 1), "PUT_CONSUMED on the control file");
			close(fd);
		}
		CHECK(stat(sec, &sb) != 0, "%s exists with the debugfs view", sec);
	} else if (!strcmp(view, "lockdown-debugfs")) {
		/* Under lockdown debugfs refuses files with mmap or ioctl. */
		CHECK(stat(p, &sb) == 0, "%s: %s", p, strerror(errno));
		errno = 0;
		fd = open(p, O_RDONLY);
		CHECK(fd < 0 && errno == EPERM, "open %s under lockdown: %s, want EPERM", p, strerror(errno));
		if (fd >= 0)
			close(fd);
		snprintf(p, sizeof(p), "%s/control", dbg);
		errno = 0;
		fd = open(p, O_RDWR);
		CHECK(fd < 0 && errno == EPERM, "open %s under lockdown: %s, want EPERM", p, strerror(errno));
		if (fd >= 0)
			close(fd);
	} else if (!strcmp(view, "securityfs")) {
		snprintf(p, sizeof(p), "%s/cpu0", sec);
		CHECK(stat(p, &sb) == 0, "%s: %s", p, strerror(errno));
		errno = 0;
		fd = open(p, O_RDONLY);
		CHECK(fd < 0 && errno == ENXIO, "open %s: fd %d %s, want ENXIO", p, fd, strerror(errno));
		if (fd >= 0)
			close(fd);
		CHECK(stat(dbg, &sb) != 0, "%s exists with the securityfs view", dbg);
	} else {
		BAD("unknown view %s", view);
	}
}

static void run_load(const char *method, const char *count, const char *rejects,
		     const char *record_size)
{
	lg_set("method", method);
	lg_set("count", count);
	lg_set("rejects", rejects);
	lg_set("record_size", record_size);
	lg_set("mode", "lossless");
	write_file(LGP "run", "1");
	lg_wait_idle();
}

static int basic(const char *view)
{
	int dev = dev_open(), ch, c0;
	struct relaymap_info info;
	struct relaymap_list lst = { .size = sizeof(lst) };
	char names[8][RELAYMAP_NAME_MAX];
	struct cons cs[MAXCPU];
	unsigned int ncpu = 0, c;
	struct relaymap_stats st;
	struct relaymap_cursor cur;
	struct lgst lgs, lgs1;
	uint64_t recs = 0, bytes = 0, unaligned = 0;
	pid_t pid;
	int status;
	uint8_t uuid0[16];

	CHECK(ioctl(dev, RELAYMAP_IOC_GET_VERSION) == RELAYMAP_ABI_VERSION, "GET_VERSION");
	fd_kind(dev, "/dev/relaymap", O_RDWR);

	/* LIST: count, then names. */
	EXPECT_OK(ioctl(dev, RELAYMAP_IOC_LIST, &lst), "LIST count");
	CHECK(lst.nr == 1, "LIST: %u channels, want 1", lst.nr);
	memset(names, 0, sizeof(names));
	lst.nr = 8;
	lst.names = (uintptr_t)names;
	EXPECT_OK(ioctl(dev, RELAYMAP_IOC_LIST, &lst), "LIST names");
	CHECK(lst.nr == 1 && !strcmp(names[0], "smoke"), "LIST: nr %u first '%s'", lst.nr, names[0]);

	errno = 0;
	CHECK(open_channel(dev, "nosuch") < 0 && errno == ENOENT, "OPEN_CHANNEL nosuch: %s", strerror(errno));
	ch = open_channel(dev, "smoke");
	if (ch < 0)
		DIE("OPEN_CHANNEL smoke: %s", strerror(errno));
	fd_kind(ch, "anon_inode:[relaymap-channel]", O_RDWR);
	get_info(ch, &info);
	CHECK(info.abi_version == 2 && info.header_size == 112, "info abi %u header %u",
	      info.abi_version, info.header_size);
	CHECK(info.page_size == (uint32_t)sysconf(_SC_PAGESIZE), "page_size %u", info.page_size);
	CHECK(info.max_record_size == info.subbuf_size - 112 &&
	      info.max_data_size == info.max_record_size - 16, "max_record_size %u max_data_size %u",
	      info.max_record_size, info.max_data_size);
	CHECK(info.alloc_size == info.subbuf_size * info.n_subbufs, "alloc_size");
	CHECK(!(info.flags & RELAYMAP_INFO_DESTROYED), "DESTROYED on a live channel");
	memcpy(uuid0, info.uuid, 16);
	CHECK(memcmp(uuid0, (uint8_t[16]){ 0 }, 16), "uuid is zero");
	for (c = 0; c < info.nr_cpu_ids && c < MAXCPU; c++)
		if (has_cpu(&info, c))
			ncpu = c + 1;
	CHECK(ncpu >= 1 && ncpu == (unsigned int)sysconf(_SC_NPROCESSORS_ONLN),
	      "cpu_mask covers %u CPUs", ncpu);
	test_versioning(ch, dev);
	test_view(view, ch, &info);

	/* Exclusive consumers. */
	c0 = open_consumer(ch, 0);
	if (c0 < 0)
		DIE("OPEN_CONSUMER cpu 0: %s", strerror(errno));
	fd_kind(c0, "anon_inode:[relaymap-consumer]", O_RDONLY);
	EXPECT_ERR(EINVAL, open_consumer(ch, (int)info.nr_cpu_ids), "OPEN_CONSUMER of cpu nr_cpu_ids");
	EXPECT_ERR(EINVAL, open_consumer(ch, -5), "OPEN_CONSUMER of cpu -5");
	EXPECT_ERR(ENOTTY, ioctl(c0, RELAYMAP_IOC_GET_INFO, &info), "GET_INFO on a consumer fd");
	EXPECT_ERR(ENOTTY, ioctl(c0, RELAYMAP_IOC_FLUSH, &info), "FLUSH on a consumer fd");
	fflush(stdout);
	pid = fork();
	if (pid == 0)
		_exit(child_busy("smoke", getppid(), ncpu));
	waitpid(pid, &status, 0);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child (second consumer) failed");
	test_mmap_rules(c0, &info, "consumer fd");
	memset(cs, 0, sizeof(cs));
	for (c = 0; c < ncpu; c++) {
		cs[c].cpu = c;
		cs[c].fd = c ? open_consumer(ch, c) : c0;
		if (cs[c].fd < 0)
			DIE("OPEN_CONSUMER cpu %u: %s", c, strerror(errno));
		cs[c].map = map_consumer(cs[c].fd, &info);
	}

	/* Load 1: printf records (their lengths vary: padding varies). */
	run_load("printf", "700", "0", "64");
	EXPECT_OK(flush_cpu(ch, RELAYMAP_ALL_CPUS), "FLUSH ALL");
	for (c = 0; c < ncpu; c++)
		drain(&cs[c], &info);
	lg_status(&lgs1);
	/* Load 2: loadgen records through the api with rejected writes. */
	run_load("api", "900", "3", "72");
	lg_status(&lgs);
	EXPECT_OK(flush_cpu(ch, 0), "FLUSH cpu 0");
	EXPECT_ERR(EINVAL, flush_cpu(ch, 4000), "FLUSH cpu 4000");
	EXPECT_OK(flush_cpu(ch, RELAYMAP_ALL_CPUS), "FLUSH ALL");
	for (c = 0; c < ncpu; c++) {
		drain(&cs[c], &info);
		recs += cs[c].st.recs;
		bytes += cs[c].st.data_bytes;
		unaligned += cs[c].st.unaligned_ends;
		CHECK(cs[c].st.printf_recs == lgs1.written[c], "cpu %u: %" PRIu64 " printf records, loadgen wrote %" PRIu64,
		      c, cs[c].st.printf_recs, lgs1.written[c]);
		CHECK(cs[c].st.bin_recs == lgs.written[c], "cpu %u: %" PRIu64 " loadgen records, loadgen wrote %" PRIu64,
		      c, cs[c].st.bin_recs, lgs.written[c]);
		CHECK(cs[c].st.flushed >= 2, "cpu %u: %" PRIu64 " FLUSHED sub-buffers", c, cs[c].st.flushed);
		CHECK(cs[c].st.last_rejected == 3, "cpu %u: header events_rejected %" PRIu64 ", want 3",
		      c, cs[c].st.last_rejected);
		EXPECT_OK(get_cursor(ch, c, &cur), "GET_CURSOR");
		CHECK(cur.produced == cur.consumed && cur.produced == cs[c].st.subbufs,
		      "cpu %u: cursor %" PRIu64 "/%" PRIu64 ", read %" PRIu64, c,
		      (uint64_t)cur.produced, (uint64_t)cur.consumed, cs[c].st.subbufs);
		CHECK(cur.records_rejected == lgs.rejected[c] && cur.records_rejected == 3 &&
		      cur.records_dropped == 0, "cpu %u: cursor rejected %" PRIu64 " dropped %" PRIu64,
		      c, (uint64_t)cur.records_rejected, (uint64_t)cur.records_dropped);
		CHECK((cur.flags & RELAYMAP_CURSOR_HELD) && cur.holder_pid == getpid(), "cpu %u holder", c);
	}
	NOTE("%" PRIu64 " records (%" PRIu64 " data bytes) on %u CPUs; %" PRIu64
	     " sub-buffers end unaligned (content_size = end of the last record)",
	     recs, bytes, ncpu, unaligned);
	CHECK(unaligned > 0, "no sub-buffer ended unaligned: the padding case was not exercised");
	get_stats(ch, RELAYMAP_ALL_CPUS, &st);
	CHECK(st.records_written == recs && st.records_written == lgs1.tw + lgs.tw,
	      "stats records_written %" PRIu64 ", read %" PRIu64, (uint64_t)st.records_written, recs);
	CHECK(st.bytes_written == bytes, "stats bytes_written %" PRIu64 ", data read %" PRIu64,
	      (uint64_t)st.bytes_written, bytes);
	CHECK(st.records_rejected == lgs.tr && st.records_rejected == 3ull * ncpu && st.records_dropped == 0,
	      "stats rejected %" PRIu64 " (loadgen %" PRIu64 ") dropped %" PRIu64,
	      (uint64_t)st.records_rejected, lgs.tr, (uint64_t)st.records_dropped);
	CHECK(st.subbufs_produced == st.subbufs_consumed && st.flushes >= 2ull * ncpu, "stats subbufs/flushes");

	/* PUT_CONSUMED rules. */
	EXPECT_ERR(EINVAL, put_consumed(c0, 1), "PUT_CONSUMED with nothing produced");
	EXPECT_ERR(EINVAL, put_consumed(c0, 0), "PUT_CONSUMED of 0");
	EXPECT_ERR(EINVAL, put_consumed(c0, ~0ull), "PUT_CONSUMED of 2^64-1");
	{
		struct relaymap_consume cn = { .size = sizeof(cn), .reserved = 1, .count = 1 };

		EXPECT_ERR(EINVAL, ioctl(c0, RELAYMAP_IOC_PUT_CONSUMED, &cn), "PUT_CONSUMED reserved != 0");
	}
	EXPECT_ERR(EPERM, put_consumed(ch, 1), "PUT_CONSUMED on the channel fd");

	/* GET_CURSORS with a bigger element: the tail is zeroed. */
	{
		struct big { struct relaymap_cursor c; uint64_t extra[2]; } arr[MAXCPU + 2];
		struct relaymap_cursors req = {
			.size = sizeof(req), .first_cpu = 0, .nr = MAXCPU + 2,
			.cursor_size = sizeof(struct big), .cursors = (uintptr_t)arr,
		};

		memset(arr, 0xee, sizeof(arr));
		EXPECT_OK(ioctl(ch, RELAYMAP_IOC_GET_CURSORS, &req), "GET_CURSORS");
		CHECK(req.nr == info.nr_cpu_ids, "GET_CURSORS filled %u, nr_cpu_ids %u", req.nr, info.nr_cpu_ids);
		for (c = 0; c < req.nr && c < MAXCPU; c++) {
			CHECK(arr[c].c.size == sizeof(struct relaymap_cursor) && arr[c].c.cpu == c &&
			      arr[c].extra[0] == 0 && arr[c].extra[1] == 0, "GET_CURSORS element %u", c);
			if (c < ncpu)
				CHECK(arr[c].c.produced == cs[c].st.subbufs &&
				      arr[c].c.holder_pid == getpid() &&
				      arr[c].c.records_rejected == 3, "GET_CURSORS cpu %u", c);
		}
		req.cursor_size = RELAYMAP_CURSOR_SIZE_VER0 - 8;
		EXPECT_ERR(EINVAL, ioctl(ch, RELAYMAP_IOC_GET_CURSORS, &req), "GET_CURSORS element too small");
	}

	/*
	 * relay's read() on a consumer fd moves relay's consumed count on its
	 * own; PUT_CONSUMED must then refuse instead of wrapping around.
	 */
	{
		static char rbuf[1 << 16];
		ssize_t n;

		run_load("printf", "40", "0", "64");
		EXPECT_OK(flush_cpu(ch, 0), "FLUSH cpu 0");
		EXPECT_OK(get_cursor(c0, 0, &cur), "GET_CURSOR");
		CHECK(cur.produced > cur.consumed, "nothing produced for read()");
		n = read(c0, rbuf, sizeof(rbuf));
		CHECK(n > 0, "read() on a consumer fd: %zd (%s)", n, strerror(errno));
		EXPECT_OK(get_cursor(c0, 0, &cur), "GET_CURSOR after read()");
		CHECK(cur.consumed == cur.produced, "after read(): consumed %" PRIu64 " produced %" PRIu64,
		      (uint64_t)cur.consumed, (uint64_t)cur.produced);
		EXPECT_ERR(EINVAL, put_consumed(c0, 1), "PUT_CONSUMED after read() consumed everything");
		NOTE("read() on the consumer fd returned %zd bytes; PUT_CONSUMED then refused", n);
		for (c = 1; c < ncpu; c++)
			drain(&cs[c], &info);	/* keep the other CPUs empty */
	}

	/* RESET: refused with consumers, then with a writer; works after. */
	EXPECT_ERR(EBUSY, ioctl(ch, RELAYMAP_IOC_RESET), "RESET with consumers open");
	for (c = 0; c < ncpu; c++) {
		munmap((void *)cs[c].map, info.alloc_size);
		close(cs[c].fd);
	}
	EXPECT_OK(get_cursor(ch, 0, &cur), "GET_CURSOR");
	CHECK(!(cur.flags & RELAYMAP_CURSOR_HELD) && cur.holder_pid == 0, "cpu 0 still held after close");
	{
		int32_t fds[MAXCPU];
		struct relaymap_open_consumer all = {
			.size = sizeof(all), .cpu = RELAYMAP_ALL_CPUS, .nr_fds = 1,
			.fds = (uintptr_t)fds,
		};

		EXPECT_ERR(EINVAL, ioctl(ch, RELAYMAP_IOC_OPEN_CONSUMER, &all), "OPEN_CONSUMER(ALL) nr_fds 1");
		all.nr_fds = MAXCPU;
		memset(fds, 0x7f, sizeof(fds));
		EXPECT_OK(ioctl(ch, RELAYMAP_IOC_OPEN_CONSUMER, &all), "OPEN_CONSUMER(ALL)");
		for (c = 0; c < info.nr_cpu_ids && c < MAXCPU; c++) {
			if (c < ncpu) {
				CHECK(fds[c] >= 0, "ALL: cpu %u fd %d", c, fds[c]);
				if (fds[c] >= 0)
					fd_kind(fds[c], "anon_inode:[relaymap-consumer]", O_RDONLY);
				EXPECT_OK(get_cursor(fds[c], 0, &cur), "GET_CURSOR on ALL fd");
				CHECK(cur.cpu == c && (cur.flags & RELAYMAP_CURSOR_HELD), "ALL fd of cpu %u", c);
			} else {
				CHECK(fds[c] == -1, "ALL: cpu %u without a buffer got fd %d", c, fds[c]);
			}
		}
		EXPECT_ERR(EBUSY, open_consumer(ch, 0), "OPEN_CONSUMER after ALL");
		EXPECT_ERR(EBUSY, ioctl(ch, RELAYMAP_IOC_RESET), "RESET with ALL consumers open");
		for (c = 0; c < ncpu; c++)
			close(fds[c]);
	}
	lg_set("count", "0");
	write_file(LGP "run", "1");
	EXPECT_ERR(EBUSY, ioctl(ch, RELAYMAP_IOC_RESET), "RESET while the load generator writes");
	write_file(LGP "run", "0");
	{
		char r[8] = "";

		read_file(LGP "run", r, sizeof(r));
		CHECK(r[0] == '0', "run reads '%s' after stop", r);
	}
	EXPECT_OK(ioctl(ch, RELAYMAP_IOC_RESET), "RESET");
	get_info(ch, &info);
	CHECK(memcmp(uuid0, info.uuid, 16), "uuid unchanged by RESET");
	get_stats(ch, RELAYMAP_ALL_CPUS, &st);
	CHECK(st.records_written == 0 && st.subbufs_produced == 0 && st.records_rejected == 0 &&
	      st.resets == 1, "stats after RESET: written %" PRIu64 " produced %" PRIu64 " resets %" PRIu64,
	      (uint64_t)st.records_written, (uint64_t)st.subbufs_produced, (uint64_t)st.resets);
	close(ch);
	close(dev);
	return 0;
}

/* ---- destroy ---------------------------------------------------------- */

struct poller {
	int fd;
	pid_t tid;
	short revents;
	int ret;
	uint64_t ms;
};

static void *poll_thread(void *arg)
{
	struct poller *p = arg;
	struct pollfd pfd = { .fd = p->fd, .events = POLLIN };
	uint64_t t0 = now_ns();

	__atomic_store_n(&p->tid, (pid_t)syscall(SYS_gettid), __ATOMIC_RELEASE);
	p->ret = poll(&pfd, 1, 60000);
	p->revents = pfd.revents;
	p->ms = (now_ns() - t0) / 1000000;
	return NULL;
}

/* Wait until thread @tid sleeps (state S), bounded. */
static void wait_sleeping(pid_t tid)
{
	char path[64], buf[512], *s;
	struct timespec ts = { 0, 5000000 };

	snprintf(path, sizeof(path), "/proc/self/task/%d/stat", tid);
	for (int i = 0; i < 2000; i++) {
		if (!read_file(path, buf, sizeof(buf)) && (s = strrchr(buf, ')')) && s[2] == 'S')
			return;
		nanosleep(&ts, NULL);
	}
	DIE("poller thread %d never slept", tid);
}

static int sh(const char *cmd)
{
	int st = system(cmd);

	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int destroy(void)
{
	int dev = dev_open(), ch, fds[MAXCPU];
	struct relaymap_info info;
	struct relaymap_cursor cur;
	struct relaymap_list lst = { .size = sizeof(lst) };
	struct cons cs[MAXCPU];
	struct lgst lgs;
	struct pollfd pfd;
	struct poller p;
	pthread_t th;
	unsigned int ncpu = 0, c;
	uint64_t after = 0, written_before = 0;

	ch = open_channel(dev, "lgown");
	if (ch < 0)
		DIE("OPEN_CHANNEL lgown: %s", strerror(errno));
	get_info(ch, &info);
	for (c = 0; c < info.nr_cpu_ids && c < MAXCPU; c++)
		if (has_cpu(&info, c))
			ncpu = c + 1;
	memset(cs, 0, sizeof(cs));
	for (c = 0; c < ncpu; c++) {
		cs[c].cpu = c;
		cs[c].fd = fds[c] = open_consumer(ch, c);
		if (fds[c] < 0)
			DIE("OPEN_CONSUMER %u: %s", c, strerror(errno));
		cs[c].map = map_consumer(fds[c], &info);
	}
	/* Records that stay unflushed in the open sub-buffers until destroy. */
	run_load("api", "500", "0", "64");
	lg_status(&lgs);
	for (c = 0; c < ncpu; c++) {
		drain(&cs[c], &info);
		written_before += lgs.written[c];
	}
	CHECK(sh("rmmod relaymap_loadgen") == 0, "rmmod relaymap_loadgen (destroys lgown)");

	get_info(ch, &info);
	CHECK(info.flags & RELAYMAP_INFO_DESTROYED, "no INFO_DESTROYED after destroy");
	EXPECT_OK(ioctl(dev, RELAYMAP_IOC_LIST, &lst), "LIST");
	CHECK(lst.nr == 0, "LIST shows %u channels after destroy", lst.nr);
	EXPECT_ERR(ENOENT, open_channel(dev, "lgown"), "OPEN_CHANNEL of a destroyed channel");
	for (c = 0; c < ncpu; c++) {
		EXPECT_OK(get_cursor(fds[c], 0, &cur), "GET_CURSOR after destroy");
		CHECK(cur.flags & RELAYMAP_CURSOR_DESTROYED, "cpu %u: no CURSOR_DESTROYED", c);
		CHECK(cur.produced > cur.consumed, "cpu %u: destroy published nothing (%" PRIu64 "/%" PRIu64 ")",
		      c, (uint64_t)cur.produced, (uint64_t)cur.consumed);
		pfd = (struct pollfd){ .fd = fds[c], .events = POLLIN };
		CHECK(poll(&pfd, 1, 0) == 1 && (pfd.revents & POLLIN) && !(pfd.revents & POLLHUP),
		      "cpu %u: poll before draining: revents %#x", c, pfd.revents);
		EXPECT_OK(flush_cpu(ch, c), "FLUSH after destroy");
		drain(&cs[c], &info);
		after += cs[c].st.recs;
		pfd.revents = 0;
		CHECK(poll(&pfd, 1, 0) == 1 && (pfd.revents & POLLHUP) && !(pfd.revents & POLLIN),
		      "cpu %u: poll after draining: revents %#x, want POLLHUP", c, pfd.revents);
	}
	CHECK(after == written_before, "records received %" PRIu64 ", written before destroy %" PRIu64,
	      after, written_before);
	NOTE("destroy under a consumer: %" PRIu64 " records written before destroy, %" PRIu64 " delivered, EPOLLHUP when drained",
	     written_before, after);
	/* The name stays taken until the last fd is closed. */
	CHECK(sh("insmod /relaymap/kmod/relaymap_loadgen.ko create=lgown channel=lgown 2>/dev/null") != 0,
	      "create of lgown succeeded while the destroyed one is still held");
	for (c = 0; c < ncpu; c++) {
		munmap((void *)cs[c].map, info.alloc_size);
		close(fds[c]);
	}
	close(ch);
	CHECK(sh("insmod /relaymap/kmod/relaymap_loadgen.ko create=lgown channel=lgown") == 0,
	      "create of lgown after the last close");

	/* A poller with nothing to drain sleeps; destroy wakes it with HUP. */
	ch = open_channel(dev, "lgown");
	if (ch < 0)
		DIE("OPEN_CHANNEL lgown again: %s", strerror(errno));
	memset(&p, 0, sizeof(p));
	p.fd = open_consumer(ch, 0);
	if (p.fd < 0)
		DIE("OPEN_CONSUMER: %s", strerror(errno));
	pthread_create(&th, NULL, poll_thread, &p);
	while (!__atomic_load_n(&p.tid, __ATOMIC_ACQUIRE))
		sched_yield();
	wait_sleeping(p.tid);
	CHECK(sh("rmmod relaymap_loadgen") == 0, "rmmod relaymap_loadgen");
	pthread_join(th, NULL);
	CHECK(p.ret == 1 && (p.revents & POLLHUP), "sleeping poller: ret %d revents %#x, want POLLHUP",
	      p.ret, p.revents);
	NOTE("sleeping poller woken by destroy after %" PRIu64 " ms, revents %#x", p.ms, p.revents);
	close(p.fd);
	close(ch);
	close(dev);
	return 0;
}

/* ---- access ----------------------------------------------------------- */

/* In a child as uid/gid 2000 with supplementary groups @groups. */
static int try_open_as(gid_t *groups, int ngroups)
{
	int fd;

	if (setgroups(ngroups, groups) || setgid(2000) || setuid(2000))
		_exit(100);
	/* Read access is enough: ioctls do not need a writable open. */
	fd = open(RELAYMAP_DEVICE_PATH, O_RDONLY);
	if (fd < 0)
		_exit(errno == EACCES ? 13 : 101);
	/* Allowed: a non-root consumer, all the way to a mapping. */
	{
		int ch = open_channel(fd, "smoke");
		int c = ch >= 0 ? open_consumer(ch, 0) : -1;
		struct relaymap_info info;
		void *m;

		if (c < 0)
			_exit(102);
		get_info(ch, &info);
		m = mmap(NULL, info.alloc_size, PROT_READ, MAP_SHARED, c, 0);
		_exit(m == MAP_FAILED ? 103 : 0);
	}
}

static int run_as(gid_t *groups, int ngroups)
{
	int st;
	pid_t pid;

	fflush(stdout);
	pid = fork();
	if (pid == 0)
		try_open_as(groups, ngroups);
	waitpid(pid, &st, 0);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int access_test(int gid, unsigned int mode)
{
	struct stat sb;
	gid_t g = (gid_t)gid, other = 4321;
	int r;

	if (stat(RELAYMAP_DEVICE_PATH, &sb))
		DIE("stat %s: %s", RELAYMAP_DEVICE_PATH, strerror(errno));
	CHECK((sb.st_mode & 07777) == mode && sb.st_uid == 0 && sb.st_gid == 0,
	      "/dev/relaymap mode %o uid %u gid %u, want %o root:root", sb.st_mode & 07777,
	      sb.st_uid, sb.st_gid, mode);
	close(dev_open());	/* root */
	r = run_as(&other, 1);
	if (gid >= 0) {
		CHECK(r == 13, "uid 2000 outside group %d: child status %d, want EACCES (13)", gid, r);
		r = run_as(&g, 1);
		CHECK(r == 0, "uid 2000 in group %d: child status %d, want 0 (consumer mapped)", gid, r);
		NOTE("group=%d: member consumes without root, non-member gets EACCES", gid);
	} else {
		CHECK(r == (mode & 0006 ? 0 : 13), "uid 2000 with node mode %o: child status %d", mode, r);
		NOTE("mode %04o: uid 2000 -> child status %d", mode, r);
	}
	return 0;
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	alarm(240);
	if (argc == 3 && !strcmp(argv[1], "basic"))
		basic(argv[2]);
	else if (argc == 2 && !strcmp(argv[1], "destroy"))
		destroy();
	else if (argc == 4 && !strcmp(argv[1], "access"))
		access_test(atoi(argv[2]), (unsigned int)strtoul(argv[3], NULL, 8));
	else
		DIE("usage: %s basic VIEW | destroy | access GID MODE", argv[0]);
	if (nbad) {
		printf("FAIL: abi2smoke %s: %d check(s) failed\n", argv[1], nbad);
		return 1;
	}
	printf("abi2smoke %s: ok\n", argv[1]);
	return 0;
}

/* SPDX-License-Identifier: MIT */
/*
 * rmtest.h - shared code of the relaymap VM test programs (guest/c/).
 *
 * The programs talk to ABI 2 of include/relaymap_abi.h directly (no SDK):
 * /dev/relaymap -> OPEN_CHANNEL (channel fd) -> OPEN_CONSUMER (one
 * consumer fd per CPU, mapped and handed back through PUT_CONSUMED on
 * it). RM_OPEN_DEBUGFS uses the legacy debugfs control file as the
 * channel fd instead. The load generator is driven through its module
 * parameters (`run` and `status` included; debugfs as a fallback), as
 * tests/vm/README.md and kmod/README.md describe. Everything here is
 * static inline so every program is one translation unit.
 *
 * Conventions:
 *  - rm_die() prints "FAIL: <prog>: <what>" and exits 1: a failed check
 *    is never silent. rm_bad() prints the same line and counts it; a
 *    program calls rm_exit() at the end, which fails if any was counted.
 *  - Figures are printed as "<prog>: key=value ..." lines so the test
 *    log shows what was measured.
 *  - Headers are read with an acquire load of `commit` first, pairing
 *    with the module's smp_store_release() of commit when it closes a
 *    sub-buffer (see the header lifecycle in relaymap_abi.h).
 */
#ifndef RMTEST_H
#define RMTEST_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
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
#include <time.h>
#include <unistd.h>

#include "relaymap_abi.h"

#define RM_DEV RELAYMAP_DEVICE_PATH
#define RM_DEBUGFS "/sys/kernel/debug"
#define RM_DIR RM_DEBUGFS "/relaymap"
#define LG_DIR RM_DEBUGFS "/relaymap_loadgen"
#define LG_PARAMS "/sys/module/relaymap_loadgen/parameters"
#define RM_MAXCPU 256 /* plenty for a 2-vCPU guest; checked */

/* ---- reporting ------------------------------------------------------- */

static const char *rm_prog = "rmtest";
static char rm_phase[96] = "start";
static unsigned long rm_nbad;

static inline void rm_set_phase(const char *fmt, ...)
	__attribute__((format(printf, 1, 2)));
static inline void rm_set_phase(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(rm_phase, sizeof(rm_phase), fmt, ap);
	va_end(ap);
}

static inline void rm_vmsg(const char *tag, const char *fmt, va_list ap)
{
	char buf[1024];

	vsnprintf(buf, sizeof(buf), fmt, ap);
	if (tag)
		printf("%s: %s: [%s] %s\n", tag, rm_prog, rm_phase, buf);
	else
		printf("%s: %s\n", rm_prog, buf);
	fflush(stdout);
}

/* A figure or progress line. */
static inline void rm_note(const char *fmt, ...)
	__attribute__((format(printf, 1, 2)));
static inline void rm_note(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	rm_vmsg(NULL, fmt, ap);
	va_end(ap);
}

/* A failed check: reported now, the program goes on, rm_exit() fails. */
static inline void rm_bad(const char *fmt, ...)
	__attribute__((format(printf, 1, 2)));
static inline void rm_bad(const char *fmt, ...)
{
	va_list ap;

	__atomic_add_fetch(&rm_nbad, 1, __ATOMIC_RELAXED);
	va_start(ap, fmt);
	rm_vmsg("FAIL", fmt, ap);
	va_end(ap);
}

/* A failed check after which nothing sensible can follow. */
static inline void rm_die(const char *fmt, ...)
	__attribute__((format(printf, 1, 2), noreturn));
static inline void rm_die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	rm_vmsg("FAIL", fmt, ap);
	va_end(ap);
	exit(1);
}

#define RM_CHECK(cond, ...)                                                    \
	do {                                                                   \
		if (!(cond))                                                   \
			rm_bad(__VA_ARGS__);                                   \
	} while (0)

#define RM_EXPECT_EQ(what, got, want)                                          \
	do {                                                                   \
		unsigned long long _g = (unsigned long long)(got);             \
		unsigned long long _w = (unsigned long long)(want);            \
		if (_g != _w)                                                  \
			rm_bad("%s: got %llu, expected %llu", what, _g, _w);   \
	} while (0)

static inline int rm_exit(void)
{
	if (rm_nbad) {
		printf("FAIL: %s: %lu check(s) failed\n", rm_prog, rm_nbad);
		fflush(stdout);
		exit(1);
	}
	printf("%s: ok\n", rm_prog);
	fflush(stdout);
	exit(0);
}

static void rm_alarm_handler(int sig)
{
	char buf[256];
	int n;

	(void)sig;
	n = snprintf(buf, sizeof(buf),
		     "FAIL: %s: [%s] internal watchdog expired (hang?)\n",
		     rm_prog, rm_phase);
	if (n > 0 && write(1, buf, (size_t)n) < 0)
		_exit(3);
	_exit(3);
}

/* Call first in main(): names the program and arms a watchdog. */
static inline void rm_init(const char *prog, unsigned int watchdog_s)
{
	const char *slash = strrchr(prog, '/');

	rm_prog = slash ? slash + 1 : prog;
	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGALRM, rm_alarm_handler);
	if (watchdog_s)
		alarm(watchdog_s);
}

/* ---- time, CPUs, files ------------------------------------------------- */

static inline uint64_t rm_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static inline double rm_secs_since(uint64_t t0)
{
	return (double)(rm_now_ns() - t0) / 1e9;
}

static inline void rm_sleep_us(uint64_t us)
{
	struct timespec ts = { .tv_sec = (time_t)(us / 1000000),
			       .tv_nsec = (long)(us % 1000000) * 1000 };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static inline void rm_sleep_ms(uint64_t ms)
{
	rm_sleep_us(ms * 1000);
}

/* Pin the calling thread to one CPU. */
static inline void rm_pin(unsigned int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	if (sched_setaffinity(0, sizeof(set), &set) < 0)
		rm_die("sched_setaffinity(cpu %u): %s", cpu, strerror(errno));
}

/* Read a small text file into buf (NUL-terminated); -errno on failure. */
static inline int rm_read_text(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY);
	size_t off = 0;
	ssize_t n;

	if (fd < 0)
		return -errno;
	while (off + 1 < len && (n = read(fd, buf + off, len - 1 - off)) > 0)
		off += (size_t)n;
	if (n < 0 && off == 0) {
		int e = -errno;

		close(fd);
		return e;
	}
	buf[off] = 0;
	close(fd);
	return 0;
}

/* Write a string to a sysfs/debugfs file; -errno on failure. */
static inline int rm_write_text(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY);
	size_t len = strlen(text);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = write(fd, text, len);
	if (n < 0) {
		int e = -errno;

		close(fd);
		return e;
	}
	close(fd);
	return (size_t)n == len ? 0 : -EIO;
}

/* Parse a kernel CPU list ("0-1,3") into a mask of RM_MAXCPU bits. */
static inline int rm_parse_cpulist(const char *s, uint64_t *mask, size_t words)
{
	memset(mask, 0, words * sizeof(*mask));
	while (*s && *s != '\n') {
		char *end;
		unsigned long a = strtoul(s, &end, 10), b = a;

		if (end == s)
			return -EINVAL;
		s = end;
		if (*s == '-') {
			b = strtoul(s + 1, &end, 10);
			s = end;
		}
		for (unsigned long c = a; c <= b; c++)
			if (c < words * 64)
				mask[c / 64] |= 1ULL << (c % 64);
		if (*s == ',')
			s++;
	}
	return 0;
}

static inline void rm_sys_cpus(const char *which, uint64_t *mask, size_t words)
{
	char path[128], buf[256];
	int err;

	snprintf(path, sizeof(path), "/sys/devices/system/cpu/%s", which);
	err = rm_read_text(path, buf, sizeof(buf));
	if (err)
		rm_die("read %s: %s", path, strerror(-err));
	if (rm_parse_cpulist(buf, mask, words))
		rm_die("cannot parse %s: '%s'", path, buf);
}

static inline bool rm_bit(const uint64_t *mask, unsigned int c)
{
	return (mask[c / 64] >> (c % 64)) & 1;
}

/* An online CPU other than `avoid` if there is one, else any online CPU. */
static inline unsigned int rm_other_online_cpu(unsigned int avoid)
{
	uint64_t online[RM_MAXCPU / 64];
	unsigned int any = RM_MAXCPU;

	rm_sys_cpus("online", online, RM_MAXCPU / 64);
	for (unsigned int c = 0; c < RM_MAXCPU; c++) {
		if (!rm_bit(online, c))
			continue;
		if (c != avoid)
			return c;
		any = c;
	}
	if (any == RM_MAXCPU)
		rm_die("no online CPU?");
	return any;
}

/* ---- ioctls: 0 (or a returned fd/value) or -errno ---------------------- */

static inline int rm_ioctl(int fd, unsigned long req, void *arg)
{
	return ioctl(fd, req, arg) < 0 ? -errno : 0;
}

/* open(/dev/relaymap): the fd or -errno. */
static inline int rm_dev_open(void)
{
	int fd = open(RM_DEV, O_RDWR | O_CLOEXEC);

	return fd < 0 ? -errno : fd;
}

/* GET_VERSION on /dev/relaymap: the version or -errno. */
static inline int rm_get_version(int dev)
{
	int v = ioctl(dev, RELAYMAP_IOC_GET_VERSION);

	return v < 0 ? -errno : v;
}

/* OPEN_CHANNEL on /dev/relaymap: a channel fd or -errno. */
static inline int rm_open_channel_fd(int dev, const char *name)
{
	struct relaymap_open_channel oc;
	int fd;

	memset(&oc, 0, sizeof(oc));
	oc.size = sizeof(oc);
	snprintf(oc.name, sizeof(oc.name), "%s", name);
	fd = ioctl(dev, RELAYMAP_IOC_OPEN_CHANNEL, &oc);
	return fd < 0 ? -errno : fd;
}

/* OPEN_CONSUMER of one CPU on a channel fd: a consumer fd or -errno. */
static inline int rm_open_consumer_fd(int ctl, int cpu)
{
	struct relaymap_open_consumer oc;
	int fd;

	memset(&oc, 0, sizeof(oc));
	oc.size = sizeof(oc);
	oc.cpu = cpu;
	fd = ioctl(ctl, RELAYMAP_IOC_OPEN_CONSUMER, &oc);
	return fd < 0 ? -errno : fd;
}

/* OPEN_CONSUMER(ALL): fds[c] = fd of CPU c or -1; 0 or -errno. */
static inline int rm_open_consumers_all(int ctl, int32_t *fds, uint32_t nr)
{
	struct relaymap_open_consumer oc;

	memset(&oc, 0, sizeof(oc));
	oc.size = sizeof(oc);
	oc.cpu = RELAYMAP_ALL_CPUS;
	oc.nr_fds = nr;
	oc.fds = (uint64_t)(uintptr_t)fds;
	return rm_ioctl(ctl, RELAYMAP_IOC_OPEN_CONSUMER, &oc);
}

static inline int rm_get_info(int ctl, struct relaymap_info *info)
{
	memset(info, 0, sizeof(*info));
	info->size = sizeof(*info);
	return rm_ioctl(ctl, RELAYMAP_IOC_GET_INFO, info);
}

/* GET_CURSOR on a channel fd (cpu chosen) or a consumer fd (its own CPU). */
static inline int rm_get_cursor(int fd, unsigned int cpu,
				struct relaymap_cursor *c)
{
	memset(c, 0, sizeof(*c));
	c->size = sizeof(*c);
	c->cpu = cpu;
	return rm_ioctl(fd, RELAYMAP_IOC_GET_CURSOR, c);
}

/* GET_CURSORS: nr cursors from first_cpu into arr; *filled = elements filled. */
static inline int rm_get_cursors(int ctl, unsigned int first_cpu,
				 unsigned int nr, struct relaymap_cursor *arr,
				 unsigned int *filled)
{
	struct relaymap_cursors cs;
	int err;

	memset(arr, 0, nr * sizeof(*arr));
	memset(&cs, 0, sizeof(cs));
	cs.size = sizeof(cs);
	cs.first_cpu = first_cpu;
	cs.nr = nr;
	cs.cursor_size = sizeof(*arr);
	cs.cursors = (uint64_t)(uintptr_t)arr;
	err = rm_ioctl(ctl, RELAYMAP_IOC_GET_CURSORS, &cs);
	if (filled)
		*filled = cs.nr;
	return err;
}

/* PUT_CONSUMED on a consumer fd (its CPU). */
static inline int rm_put_consumed(int cfd, uint64_t n)
{
	struct relaymap_consume c;

	memset(&c, 0, sizeof(c));
	c.size = sizeof(c);
	c.count = n;
	return rm_ioctl(cfd, RELAYMAP_IOC_PUT_CONSUMED, &c);
}

static inline int rm_flush(int ctl, int cpu)
{
	struct relaymap_flush f = { .size = sizeof(f), .cpu = cpu };

	return rm_ioctl(ctl, RELAYMAP_IOC_FLUSH, &f);
}

static inline int rm_reset(int ctl)
{
	return ioctl(ctl, RELAYMAP_IOC_RESET) < 0 ? -errno : 0;
}

static inline int rm_get_stats(int ctl, int cpu, struct relaymap_stats *st)
{
	memset(st, 0, sizeof(*st));
	st->size = sizeof(*st);
	st->cpu = cpu;
	return rm_ioctl(ctl, RELAYMAP_IOC_GET_STATS, st);
}

/* The same, failing the program on error. */
static inline void rm_cursor_x(int fd, unsigned int cpu,
			       struct relaymap_cursor *c)
{
	int err = rm_get_cursor(fd, cpu, c);

	if (err)
		rm_die("GET_CURSOR(cpu %u): %s", cpu, strerror(-err));
}

static inline void rm_put_x(int cfd, unsigned int cpu, uint64_t n)
{
	int err = rm_put_consumed(cfd, n);

	if (err)
		rm_die("PUT_CONSUMED(cpu %u, %" PRIu64 "): %s", cpu, n,
		       strerror(-err));
}

static inline void rm_flush_x(int ctl, int cpu)
{
	int err = rm_flush(ctl, cpu);

	if (err)
		rm_die("FLUSH(cpu %d): %s", cpu, strerror(-err));
}

static inline void rm_stats_x(int ctl, int cpu, struct relaymap_stats *st)
{
	int err = rm_get_stats(ctl, cpu, st);

	if (err)
		rm_die("GET_STATS(cpu %d): %s", cpu, strerror(-err));
}

/* ---- a channel: channel fd, info, per-CPU consumer fds and mappings ---- */

/*
 * A channel as a test program holds it: the channel fd (from OPEN_CHANNEL
 * on /dev/relaymap, or the legacy debugfs control file with
 * RM_OPEN_DEBUGFS), GET_INFO, and once claimed (rm_claim) one consumer fd
 * per CPU from OPEN_CONSUMER(ALL), mapped with RM_OPEN_MAP.
 */
struct rm_chan {
	char name[RELAYMAP_NAME_MAX];
	bool debugfs;			/* ctl is relaymap/<name>/control */
	int ctl;			/* channel fd */
	struct relaymap_info info;
	unsigned int ncpus;		/* CPUs in info.cpu_mask */
	unsigned int cpus[RM_MAXCPU];	/* their ids */
	int fd[RM_MAXCPU];		/* consumer fds by CPU id, -1 if none */
	const uint8_t *map[RM_MAXCPU];	/* by CPU id, NULL if not mapped */
};

#define RM_OPEN_MAP (1 << 0)	  /* claim every CPU and mmap its consumer fd */
#define RM_OPEN_POPULATE (1 << 1) /* ... with MAP_POPULATE */
#define RM_OPEN_CLAIM (1 << 2)	  /* claim every CPU (OPEN_CONSUMER(ALL)), no mmap */
#define RM_OPEN_DEBUGFS (1 << 3)  /* channel fd = the legacy debugfs control file */

static inline bool rm_info_has_cpu(const struct relaymap_info *info,
				   unsigned int cpu)
{
	return cpu < RELAYMAP_MAX_CPUS &&
	       ((info->cpu_mask[cpu / 64] >> (cpu % 64)) & 1);
}

/* The legacy debugfs view of a channel. */
static inline void rm_cpu_path(char *buf, size_t len, const char *name,
			       unsigned int cpu)
{
	snprintf(buf, len, RM_DIR "/%s/cpu%u", name, cpu);
}

static inline void rm_control_path(char *buf, size_t len, const char *name)
{
	snprintf(buf, len, RM_DIR "/%s/control", name);
}

/* open relaymap/<name>/control in debugfs: fd or -1 (errno). */
static inline int rm_open_control(const char *name)
{
	char path[256];

	rm_control_path(path, sizeof(path), name);
	return open(path, O_RDWR | O_CLOEXEC);
}

/* Open channel <name> through /dev/relaymap: the channel fd, or die saying why. */
static inline int rm_open_channel_x(const char *name)
{
	int dev = rm_dev_open(), fd, v;

	if (dev < 0)
		rm_die("open %s: %s%s", RM_DEV, strerror(-dev),
		       dev == -ENOENT ? " (relaymap.ko not loaded?)" : "");
	v = rm_get_version(dev);
	if (v != RELAYMAP_ABI_VERSION)
		rm_die("GET_VERSION on %s: %s%d, this program speaks ABI %d",
		       RM_DEV, v < 0 ? "error " : "", v < 0 ? -v : v,
		       RELAYMAP_ABI_VERSION);
	fd = rm_open_channel_fd(dev, name);
	if (fd < 0)
		rm_die("OPEN_CHANNEL(%s): %s", name, strerror(-fd));
	close(dev);
	return fd;
}

static inline void rm_map_one(struct rm_chan *ch, unsigned int cpu, int flags)
{
	void *p = mmap(NULL, ch->info.alloc_size, PROT_READ,
		       MAP_SHARED | ((flags & RM_OPEN_POPULATE) ? MAP_POPULATE : 0),
		       ch->fd[cpu], 0);

	if (p == MAP_FAILED)
		rm_die("mmap of the consumer fd of cpu %u (%llu bytes): %s", cpu,
		       (unsigned long long)ch->info.alloc_size, strerror(errno));
	ch->map[cpu] = p;
}

/*
 * Claim every CPU of the channel with one OPEN_CONSUMER(ALL) (and mmap
 * each consumer fd with RM_OPEN_MAP). Returns 0 or -errno (EBUSY: held);
 * other failures end the program.
 */
static inline int rm_claim_try(struct rm_chan *ch, int flags)
{
	static int32_t fds[RELAYMAP_MAX_CPUS];
	uint32_t nr = ch->info.nr_cpu_ids;
	int err;

	for (unsigned int c = 0; c < RELAYMAP_MAX_CPUS; c++)
		fds[c] = -2;
	err = rm_open_consumers_all(ch->ctl, fds, nr);
	if (err)
		return err;
	for (unsigned int c = 0; c < nr; c++) {
		bool has = rm_info_has_cpu(&ch->info, c);

		if (has && fds[c] < 0)
			rm_die("OPEN_CONSUMER(ALL): fds[%u] = %d for a CPU with a buffer", c, fds[c]);
		if (!has && fds[c] != -1)
			rm_die("OPEN_CONSUMER(ALL): fds[%u] = %d for a CPU without a buffer, expected -1",
			       c, fds[c]);
		if (has) {
			if (c >= RM_MAXCPU)
				rm_die("cpu %u beyond RM_MAXCPU", c);
			ch->fd[c] = fds[c];
		}
	}
	for (unsigned int c = nr; c < RELAYMAP_MAX_CPUS; c++)
		if (fds[c] != -2)
			rm_die("OPEN_CONSUMER(ALL) with nr_fds %u wrote fds[%u] = %d", nr, c, fds[c]);
	if (flags & RM_OPEN_MAP)
		for (unsigned int i = 0; i < ch->ncpus; i++)
			rm_map_one(ch, ch->cpus[i], flags);
	return 0;
}

static inline void rm_claim(struct rm_chan *ch, int flags)
{
	int err = rm_claim_try(ch, flags);

	if (err)
		rm_die("OPEN_CONSUMER(ALL) on %s: %s", ch->name, strerror(-err));
}

/* Unmap and close every consumer fd (releases the claims). */
static inline void rm_release(struct rm_chan *ch)
{
	for (unsigned int c = 0; c < RM_MAXCPU; c++) {
		if (ch->map[c])
			munmap((void *)ch->map[c], ch->info.alloc_size);
		if (ch->fd[c] >= 0)
			close(ch->fd[c]);
		ch->map[c] = NULL;
		ch->fd[c] = -1;
	}
}

/* GET_INFO again (RESET gives the channel a new uuid); the geometry must not move. */
static inline void rm_refresh_info(struct rm_chan *ch)
{
	struct relaymap_info in;
	int err = rm_get_info(ch->ctl, &in);

	if (err)
		rm_die("GET_INFO on %s: %s", ch->name, strerror(-err));
	if (in.subbuf_size != ch->info.subbuf_size ||
	    in.n_subbufs != ch->info.n_subbufs ||
	    in.alloc_size != ch->info.alloc_size)
		rm_die("GET_INFO on %s: geometry changed", ch->name);
	ch->info = in;
}

/* RESET the channel (no consumer may be open) and re-read its info. */
static inline int rm_chan_reset(struct rm_chan *ch)
{
	int err = rm_reset(ch->ctl);

	if (!err)
		rm_refresh_info(ch);
	return err;
}

/*
 * Open channel <name>: the channel fd (through /dev/relaymap, or the
 * debugfs control file with RM_OPEN_DEBUGFS), GET_INFO, and with
 * RM_OPEN_CLAIM or RM_OPEN_MAP the consumer fds of every CPU.
 */
static inline void rm_open(struct rm_chan *ch, const char *name, int flags)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	int err;

	memset(ch, 0, sizeof(*ch));
	for (unsigned int c = 0; c < RM_MAXCPU; c++)
		ch->fd[c] = -1;
	snprintf(ch->name, sizeof(ch->name), "%s", name);
	ch->debugfs = flags & RM_OPEN_DEBUGFS;
	if (ch->debugfs) {
		ch->ctl = rm_open_control(name);
		if (ch->ctl < 0)
			rm_die("open " RM_DIR "/%s/control: %s", name, strerror(errno));
	} else {
		ch->ctl = rm_open_channel_x(name);
	}
	err = rm_get_info(ch->ctl, &ch->info);
	if (err)
		rm_die("GET_INFO on %s: %s", name, strerror(-err));
	if (ch->info.header_size != sizeof(struct relaymap_subbuf_header) ||
	    ch->info.abi_version != RELAYMAP_ABI_VERSION ||
	    ch->info.page_size != page ||
	    ch->info.subbuf_size % page || ch->info.subbuf_size <= ch->info.header_size ||
	    ch->info.n_subbufs < 2 ||
	    ch->info.alloc_size != ch->info.subbuf_size * ch->info.n_subbufs)
		rm_die("GET_INFO on %s: implausible abi_version=%u header_size=%u "
		       "page_size=%u subbuf_size=%llu n_subbufs=%llu alloc_size=%llu",
		       name, ch->info.abi_version, ch->info.header_size,
		       ch->info.page_size, (unsigned long long)ch->info.subbuf_size,
		       (unsigned long long)ch->info.n_subbufs,
		       (unsigned long long)ch->info.alloc_size);
	for (unsigned int c = 0; c < RELAYMAP_MAX_CPUS; c++) {
		if (!rm_info_has_cpu(&ch->info, c))
			continue;
		if (c >= RM_MAXCPU)
			rm_die("cpu %u in cpu_mask is beyond RM_MAXCPU", c);
		ch->cpus[ch->ncpus++] = c;
	}
	if (ch->ncpus == 0)
		rm_die("GET_INFO on %s: empty cpu_mask", name);
	if (flags & (RM_OPEN_CLAIM | RM_OPEN_MAP))
		rm_claim(ch, flags);
}

static inline void rm_close(struct rm_chan *ch)
{
	rm_release(ch);
	if (ch->ctl >= 0)
		close(ch->ctl);
	ch->ctl = -1;
}

/* ---- sub-buffer headers ---------------------------------------------- */

static inline const uint8_t *rm_slot(const struct rm_chan *ch, unsigned int cpu,
				     uint64_t s)
{
	return ch->map[cpu] + (s % ch->info.n_subbufs) * ch->info.subbuf_size;
}

static inline const struct relaymap_subbuf_header *
rm_hdr(const struct rm_chan *ch, unsigned int cpu, uint64_t s)
{
	return (const struct relaymap_subbuf_header *)rm_slot(ch, cpu, s);
}

static inline uint64_t rm_load_commit(const struct relaymap_subbuf_header *h)
{
	/* Pairs with the module's smp_store_release(&hdr->commit, s + 1). */
	return __atomic_load_n(&h->commit, __ATOMIC_ACQUIRE);
}

#define RM_LD(f) (o->f = __atomic_load_n(&h->f, __ATOMIC_RELAXED))

/*
 * Snapshot a live header: commit first with acquire, then the rest (each
 * field read once). The fields are final if commit == packet_seq_num + 1.
 */
static inline void rm_hdr_read(const struct relaymap_subbuf_header *h,
			       struct relaymap_subbuf_header *o)
{
	o->commit = rm_load_commit(h);
	RM_LD(magic);
	for (int i = 0; i < 16; i++)
		RM_LD(uuid[i]);
	RM_LD(stream_id);
	RM_LD(stream_instance_id);
	RM_LD(timestamp_begin);
	RM_LD(timestamp_end);
	RM_LD(content_size);
	RM_LD(packet_size);
	RM_LD(packet_seq_num);
	RM_LD(events_discarded);
	RM_LD(cpu_id);
	RM_LD(flags);
	RM_LD(events_rejected);
	RM_LD(abi_version);
	RM_LD(header_size);
	RM_LD(reserved);
}
#undef RM_LD

/* Bytes of events after the header of a closed sub-buffer. */
static inline uint64_t rm_events_len(const struct relaymap_subbuf_header *h)
{
	return h->content_size / 8 - h->header_size;
}

static inline void rm_hdr_str(const struct relaymap_subbuf_header *h, char *buf,
			      size_t len)
{
	snprintf(buf, len,
		 "magic=%#x stream_id=%u instance=%llu abi=%u hsize=%u cpu_id=%u flags=%#x "
		 "seq=%llu commit=%llu content_bits=%llu packet_bits=%llu "
		 "discarded=%llu rejected=%llu reserved=%u uuid[0]=%02x",
		 h->magic, h->stream_id, (unsigned long long)h->stream_instance_id,
		 h->abi_version, h->header_size, h->cpu_id, h->flags,
		 (unsigned long long)h->packet_seq_num,
		 (unsigned long long)h->commit,
		 (unsigned long long)h->content_size,
		 (unsigned long long)h->packet_size,
		 (unsigned long long)h->events_discarded,
		 (unsigned long long)h->events_rejected, h->reserved, h->uuid[0]);
}

/*
 * Check a closed header of sub-buffer s of `cpu`. Returns NULL if it is
 * well-formed, else what is wrong (in `why`).
 */
static inline const char *rm_hdr_check(const struct rm_chan *ch,
				       unsigned int cpu, uint64_t s,
				       const struct relaymap_subbuf_header *h,
				       char *why, size_t len)
{
	uint64_t page = ch->info.page_size, content = h->content_size / 8;
	const char *what = NULL;
	char hs[384];

	if (h->magic != RELAYMAP_CTF_MAGIC)
		what = "bad magic";
	else if (h->commit != h->packet_seq_num + 1)
		what = "commit != packet_seq_num + 1";
	else if (h->packet_seq_num != s)
		what = "packet_seq_num != s";
	else if (h->abi_version != RELAYMAP_ABI_VERSION)
		what = "bad abi_version";
	else if (h->header_size != ch->info.header_size)
		what = "header_size != info.header_size";
	else if (memcmp(h->uuid, ch->info.uuid, sizeof(h->uuid)))
		what = "uuid != info.uuid";
	else if (h->stream_id != 0)
		what = "stream_id != 0";
	else if (h->stream_instance_id != cpu || h->cpu_id != cpu)
		what = "stream_instance_id/cpu_id != cpu";
	else if (h->content_size % 8)
		what = "content_size is not whole bytes";
	else if (content < h->header_size || content > ch->info.subbuf_size)
		what = "content_size / 8 outside [header_size, subbuf_size]";
	else if (h->packet_size != ((content + page - 1) / page) * page * 8)
		what = "packet_size != content rounded up to the page, in bits";
	else if (h->packet_size > ch->info.subbuf_size * 8)
		what = "packet_size > subbuf_size * 8";
	else if (h->flags & ~(RELAYMAP_SB_FLUSHED | RELAYMAP_SB_DROPS))
		what = "unknown flags";
	else if (h->reserved != 0)
		what = "reserved != 0";
	else if (h->timestamp_begin == 0 || h->timestamp_end < h->timestamp_begin)
		what = "timestamp_begin 0 or timestamp_end < timestamp_begin";
	if (!what)
		return NULL;
	rm_hdr_str(h, hs, sizeof(hs));
	snprintf(why, len, "cpu %u sub-buffer %llu: %s (%s)", cpu,
		 (unsigned long long)s, what, hs);
	return why;
}

/* ---- records and the load generator's payload --------------------------- */

static inline uint32_t rm_fnv1a(uint32_t h, const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		h ^= p[i];
		h *= RELAYMAP_FNV_PRIME;
	}
	return h;
}

/*
 * The loadgen checksum (relaymap_abi.h): FNV-1a 32 over the 8 bytes of
 * seq and the 4 of cpu in the record's byte order (host order), then the
 * fill bytes.
 */
static inline uint32_t rm_lg_checksum(uint64_t seq, uint32_t cpu,
				      const uint8_t *fill, size_t n)
{
	uint8_t b[12];

	memcpy(b, &seq, 8);
	memcpy(b + 8, &cpu, 4);
	return rm_fnv1a(rm_fnv1a(RELAYMAP_FNV_OFFSET, b, sizeof(b)), fill, n);
}

#define RM_REC_HDR ((uint32_t)sizeof(struct relaymap_record))
#define RM_LG_MIN_RECORD                                                       \
	(sizeof(struct relaymap_record) +                                      \
	 sizeof(struct relaymap_loadgen_payload))

static inline uint64_t rm_align8(uint64_t x)
{
	return (x + RELAYMAP_RECORD_ALIGN - 1) & ~(uint64_t)(RELAYMAP_RECORD_ALIGN - 1);
}

/*
 * Verification state of one CPU's loadgen stream. Owned by one thread.
 * Records must arrive in seq order; a jump forward is a gap (dropped
 * records), anything else (duplicate, going back) is an error.
 */
struct rm_stream {
	unsigned int cpu;
	uint32_t record_size;	/* expected 16 + len of every record, 0 = any */
	bool printf_method;	/* expect the load generator's printf records, not binary ones */
	bool started;
	uint64_t first_seq;
	uint64_t next_seq;	/* seq expected next */
	uint64_t records;	/* valid loadgen records received */
	uint64_t bytes;		/* event bytes walked */
	uint64_t data_bytes;	/* len of the valid records: what bytes_written counts */
	uint64_t printf_records; /* ... of them relaymap_printf() text (method printf) */
	uint64_t unaligned_ends; /* sub-buffers whose content ends off the 8-byte grid */
	uint64_t gap_events;
	uint64_t gap_records;	/* records missing inside the stream */
	uint64_t backwards;	/* duplicate or out-of-order seq */
	uint64_t bad_frame;	/* record header/len runs past content_size */
	uint64_t bad_type;	/* event_id/type/len not the loadgen's */
	uint64_t bad_cpu;	/* payload cpu != buffer's cpu */
	uint64_t bad_csum;	/* checksum mismatch */
	uint64_t bad_fill;	/* fill pattern mismatch */
	uint64_t bad_end;	/* content_size is not the end of the last record's data */
	uint64_t last_ts;	/* ts_ns of the previous record */
	uint64_t ts_backwards;	/* record ts_ns below the previous record's */
	unsigned int reported;	/* detailed messages printed so far */
	bool quiet;		/* count errors only: not a failure by itself */
};

#define RM_REPORT_MAX 8

static inline void rm_stream_init(struct rm_stream *st, unsigned int cpu,
				  uint32_t record_size)
{
	memset(st, 0, sizeof(*st));
	st->cpu = cpu;
	st->record_size = record_size;
}

static inline uint64_t rm_stream_errors(const struct rm_stream *st)
{
	return st->backwards + st->bad_frame + st->bad_type + st->bad_cpu +
	       st->bad_csum + st->bad_fill + st->bad_end + st->ts_backwards;
}

#define RM_STREAM_REPORT(st, ...)                                              \
	do {                                                                   \
		if ((st)->quiet)                                               \
			break;                                                 \
		if ((st)->reported++ < RM_REPORT_MAX)                          \
			rm_bad(__VA_ARGS__);                                   \
		else                                                           \
			__atomic_add_fetch(&rm_nbad, 1, __ATOMIC_RELAXED);    \
	} while (0)

/* What one sub-buffer's events held. */
struct rm_sbrecs {
	uint64_t records;
	uint64_t first_seq, last_seq; /* valid when records > 0 */
	uint64_t max_ts;	      /* largest record ts_ns */
};

/*
 * Walk the records of one sub-buffer's events (len bytes after the
 * header: content_size / 8 - header_size) and verify every loadgen
 * record: { u64 ts_ns; u16 event_id; u16 type; u32 len } + len bytes,
 * the next at ALIGN(16 + len, 8), the last one's data ending exactly at
 * len. Returns false if the framing is corrupt.
 */
static inline bool rm_stream_payload(struct rm_stream *st, uint64_t s,
				     const uint8_t *p, uint64_t len,
				     struct rm_sbrecs *out)
{
	uint64_t off = 0, end = 0;
	struct rm_sbrecs r = { 0, 0, 0, 0 };
	bool ok = true;

	st->bytes += len;
	while (off < len) {
		struct relaymap_record rec;
		struct relaymap_loadgen_payload lp;
		const uint8_t *fill;
		size_t nfill;

		if (len - off < RM_REC_HDR) {
			st->bad_frame++;
			RM_STREAM_REPORT(st,
					 "cpu %u sub-buffer %llu offset %llu: %llu bytes left, less than a record header (events %llu bytes)",
					 st->cpu, (unsigned long long)s,
					 (unsigned long long)off,
					 (unsigned long long)(len - off),
					 (unsigned long long)len);
			ok = false;
			break;
		}
		memcpy(&rec, p + off, sizeof(rec));
		if (rec.len > len - off - RM_REC_HDR) {
			st->bad_frame++;
			RM_STREAM_REPORT(st,
					 "cpu %u sub-buffer %llu offset %llu: record len %u runs past the content end (events %llu bytes)",
					 st->cpu, (unsigned long long)s,
					 (unsigned long long)off, rec.len,
					 (unsigned long long)len);
			ok = false;
			break;
		}
		end = off + RM_REC_HDR + rec.len;
		if (rec.event_id == RELAYMAP_EVENT_PRINTF && rec.type == RELAYMAP_REC_PRINTF) {
			/* The load generator's printf method: "relaymap_loadgen cpu C seq S". */
			char text[80], tail;
			unsigned int tcpu;
			unsigned long long tseq;

			if (rec.len >= sizeof(text) || !rec.len || !st->printf_method) {
				st->bad_type++;
				RM_STREAM_REPORT(st,
						 "cpu %u sub-buffer %llu offset %llu: printf record of %u bytes, not the load generator's (printf method expected: %d)",
						 st->cpu, (unsigned long long)s,
						 (unsigned long long)off, rec.len, st->printf_method);
				goto next;
			}
			memcpy(text, p + off + RM_REC_HDR, rec.len);
			text[rec.len] = 0;
			if (strlen(text) != rec.len ||
			    sscanf(text, "relaymap_loadgen cpu %u seq %llu%c", &tcpu, &tseq,
				   &tail) != 2) {
				st->bad_csum++;
				RM_STREAM_REPORT(st,
						 "cpu %u sub-buffer %llu offset %llu: printf text '%.*s' (len %u) is not 'relaymap_loadgen cpu C seq S'",
						 st->cpu, (unsigned long long)s,
						 (unsigned long long)off, (int)rec.len, text, rec.len);
				goto next;
			}
			lp.seq = tseq;
			lp.cpu = tcpu;
			if (lp.cpu != st->cpu) {
				st->bad_cpu++;
				RM_STREAM_REPORT(st,
						 "cpu %u sub-buffer %llu offset %llu: printf record seq %llu says cpu %u",
						 st->cpu, (unsigned long long)s,
						 (unsigned long long)off,
						 (unsigned long long)lp.seq, lp.cpu);
			}
			st->printf_records++;
			goto counted;
		}
		if (rec.event_id != RELAYMAP_EVENT_RECORD || st->printf_method ||
		    rec.type != RELAYMAP_REC_LOADGEN ||
		    RM_REC_HDR + rec.len < RM_LG_MIN_RECORD ||
		    (st->record_size && RM_REC_HDR + rec.len != st->record_size)) {
			st->bad_type++;
			RM_STREAM_REPORT(st,
					 "cpu %u sub-buffer %llu offset %llu: not a loadgen record: event_id=%u type=%u len=%u (want 16 + len = %u)",
					 st->cpu, (unsigned long long)s,
					 (unsigned long long)off, rec.event_id,
					 rec.type, rec.len, st->record_size);
			goto next;
		}
		memcpy(&lp, p + off + RM_REC_HDR, sizeof(lp));
		fill = p + off + RM_LG_MIN_RECORD;
		nfill = RM_REC_HDR + rec.len - RM_LG_MIN_RECORD;
		if (lp.cpu != st->cpu) {
			st->bad_cpu++;
			RM_STREAM_REPORT(st,
					 "cpu %u sub-buffer %llu offset %llu: record seq %llu says cpu %u",
					 st->cpu, (unsigned long long)s,
					 (unsigned long long)off,
					 (unsigned long long)lp.seq, lp.cpu);
		}
		if (rm_lg_checksum(lp.seq, lp.cpu, fill, nfill) != lp.checksum) {
			st->bad_csum++;
			RM_STREAM_REPORT(st,
					 "cpu %u sub-buffer %llu offset %llu: record seq %llu: bad checksum %#x (computed %#x)",
					 st->cpu, (unsigned long long)s,
					 (unsigned long long)off,
					 (unsigned long long)lp.seq, lp.checksum,
					 rm_lg_checksum(lp.seq, lp.cpu, fill, nfill));
		} else {
			for (size_t i = 0; i < nfill; i++) {
				if (fill[i] != (uint8_t)(lp.seq * 13 + i * 7 + lp.cpu)) {
					st->bad_fill++;
					RM_STREAM_REPORT(st,
							 "cpu %u sub-buffer %llu: record seq %llu: fill[%zu]=%#x, expected %#x",
							 st->cpu, (unsigned long long)s,
							 (unsigned long long)lp.seq, i, fill[i],
							 (uint8_t)(lp.seq * 13 + i * 7 + lp.cpu));
					break;
				}
			}
		}
counted:
		st->data_bytes += rec.len;
		if (!st->started) {
			st->started = true;
			st->first_seq = lp.seq;
			st->next_seq = lp.seq;
		}
		if (lp.seq > st->next_seq) {
			st->gap_events++;
			st->gap_records += lp.seq - st->next_seq;
		} else if (lp.seq < st->next_seq) {
			st->backwards++;
			RM_STREAM_REPORT(st,
					 "cpu %u sub-buffer %llu offset %llu: record seq %llu after %llu (duplicate or out of order)",
					 st->cpu, (unsigned long long)s,
					 (unsigned long long)off,
					 (unsigned long long)lp.seq,
					 (unsigned long long)st->next_seq - 1);
		}
		if (lp.seq >= st->next_seq)
			st->next_seq = lp.seq + 1;
		/* One writer per CPU, in order: CLOCK_MONOTONIC never goes back. */
		if (rec.ts_ns < st->last_ts) {
			st->ts_backwards++;
			RM_STREAM_REPORT(st,
					 "cpu %u sub-buffer %llu: record seq %llu ts_ns %llu < previous record's %llu",
					 st->cpu, (unsigned long long)s,
					 (unsigned long long)lp.seq,
					 (unsigned long long)rec.ts_ns,
					 (unsigned long long)st->last_ts);
		}
		st->last_ts = rec.ts_ns;
		if (rec.ts_ns > r.max_ts)
			r.max_ts = rec.ts_ns;
		st->records++;
		if (!r.records)
			r.first_seq = lp.seq;
		r.last_seq = lp.seq;
		r.records++;
next:
		off = rm_align8(end);
	}
	if (len % RELAYMAP_RECORD_ALIGN)
		st->unaligned_ends++;
	/* content_size ends exactly at the last record's data: no padding counted. */
	if (ok && end != len) {
		st->bad_end++;
		RM_STREAM_REPORT(st,
				 "cpu %u sub-buffer %llu: last record's data ends at %llu but content_size says %llu bytes of events",
				 st->cpu, (unsigned long long)s,
				 (unsigned long long)end, (unsigned long long)len);
	}
	if (out)
		*out = r;
	return ok;
}

/* ---- draining one CPU (no-overwrite mode) ------------------------------ */

/*
 * State of a consumer of one CPU buffer. Walks sub-buffers
 * consumed..produced by the published count, checks every header the
 * moment it is first read (a stale header is counted as a violation),
 * verifies the records and hands the sub-buffers back through the CPU's
 * consumer fd.
 */
struct rm_drain {
	unsigned int cpu;
	struct rm_stream st;
	uint64_t consumed;	  /* next sub-buffer to read (== kernel consumed) */
	uint64_t subbufs;	  /* sub-buffers read */
	uint64_t hdr_checks;	  /* headers checked */
	uint64_t hdr_violations;  /* headers not final/valid at first read */
	uint64_t flushed_sbs;	  /* headers with RELAYMAP_SB_FLUSHED */
	uint64_t flushed_partial; /* ... with room left for another record */
	uint64_t drops_sbs;	  /* headers with RELAYMAP_SB_DROPS */
	uint64_t last_hdr_dropped;	/* events_discarded of the last header */
	uint64_t last_hdr_rejected;	/* events_rejected of the last header */
	uint64_t hdr_dropped_back;     /* events_discarded went down */
	uint64_t hdr_rejected_back;    /* events_rejected went down */
	uint64_t hdr_drop_flag_wrong;  /* DROPS flag vs events_discarded change */
	uint64_t hdr_drop_count_wrong; /* events_discarded vs seq gaps so far */
	uint64_t ts_errors;	  /* header/record timestamps inconsistent */
	uint64_t last_ts_end;	  /* timestamp_end of the previous sub-buffer */
	bool check_drop_count;	  /* stream starts at seq 0 and is drained whole */
	uint64_t full_payload;	  /* max events bytes of one sub-buffer */
	uint64_t delay_us;	  /* sleep per sub-buffer (slow consumer) */
	bool peek_open;		  /* also look at the open sub-buffer `produced` */
	uint64_t open_peeks;	  /* ... how often */
	uint64_t open_not_final;  /* ... and found it not final (as expected) */
	unsigned int reported;
};

static inline void rm_drain_init(struct rm_drain *d, const struct rm_chan *ch,
				 unsigned int cpu, uint32_t record_size)
{
	struct relaymap_cursor cur;

	memset(d, 0, sizeof(*d));
	d->cpu = cpu;
	rm_stream_init(&d->st, cpu, record_size);
	rm_cursor_x(ch->ctl, cpu, &cur);
	d->consumed = cur.consumed;
	d->full_payload = ch->info.subbuf_size - ch->info.header_size;
}

#define RM_DRAIN_REPORT(d, ...)                                                \
	do {                                                                   \
		if ((d)->reported++ < RM_REPORT_MAX)                           \
			rm_bad(__VA_ARGS__);                                   \
		else                                                           \
			__atomic_add_fetch(&rm_nbad, 1, __ATOMIC_RELAXED);    \
	} while (0)

/*
 * Check and verify sub-buffers d->consumed .. produced - 1 of d->cpu
 * without handing them back. Returns how many were read.
 */
static inline uint64_t rm_drain_read(const struct rm_chan *ch, struct rm_drain *d,
				     uint64_t produced)
{
	unsigned int cpu = d->cpu;
	uint64_t from = d->consumed, n;
	char why[512];

	if (produced <= from)
		return 0;
	n = produced - from;
	if (n > ch->info.n_subbufs) {
		RM_DRAIN_REPORT(d, "cpu %u: produced %llu - consumed %llu = %llu > n_subbufs %llu in no-overwrite mode",
				cpu, (unsigned long long)produced,
				(unsigned long long)from, (unsigned long long)n,
				(unsigned long long)ch->info.n_subbufs);
	}
	/* First pass: every newly published header, at once. */
	for (uint64_t s = from; s < produced; s++) {
		struct relaymap_subbuf_header h;

		rm_hdr_read(rm_hdr(ch, cpu, s), &h);
		d->hdr_checks++;
		if (rm_hdr_check(ch, cpu, s, &h, why, sizeof(why))) {
			d->hdr_violations++;
			RM_DRAIN_REPORT(d, "stale/invalid header at first read (produced=%llu): %s",
					(unsigned long long)produced, why);
		}
	}
	/*
	 * Sensitivity probe: the sub-buffer `produced` is open (or not even
	 * started), so the same check must call it not final. This shows
	 * the check above would catch a count published too early.
	 */
	if (d->peek_open) {
		struct relaymap_subbuf_header h;

		rm_hdr_read(rm_hdr(ch, cpu, produced), &h);
		d->open_peeks++;
		if (rm_hdr_check(ch, cpu, produced, &h, why, sizeof(why)))
			d->open_not_final++;
	}
	/* Second pass: the events, which the kernel leaves alone until consumed. */
	for (uint64_t s = from; s < produced; s++) {
		const uint8_t *slot = rm_slot(ch, cpu, s);
		struct relaymap_subbuf_header h;
		struct rm_sbrecs r;
		uint64_t len;
		int tries = 0;

		for (;;) {
			rm_hdr_read((const struct relaymap_subbuf_header *)slot, &h);
			if (!rm_hdr_check(ch, cpu, s, &h, why, sizeof(why)))
				break;
			if (++tries > 100000)
				rm_die("header never became valid: %s", why);
			sched_yield();
		}
		len = rm_events_len(&h);
		if (h.flags & RELAYMAP_SB_FLUSHED) {
			d->flushed_sbs++;
			if (len + (d->st.record_size ? d->st.record_size : RM_LG_MIN_RECORD) <=
			    d->full_payload)
				d->flushed_partial++;
		}
		if (h.events_discarded < d->last_hdr_dropped) {
			d->hdr_dropped_back++;
			RM_DRAIN_REPORT(d, "cpu %u sub-buffer %llu: cumulative events_discarded went back %llu -> %llu",
					cpu, (unsigned long long)s,
					(unsigned long long)d->last_hdr_dropped,
					(unsigned long long)h.events_discarded);
		}
		if (h.events_rejected < d->last_hdr_rejected) {
			d->hdr_rejected_back++;
			RM_DRAIN_REPORT(d, "cpu %u sub-buffer %llu: cumulative events_rejected went back %llu -> %llu",
					cpu, (unsigned long long)s,
					(unsigned long long)d->last_hdr_rejected,
					(unsigned long long)h.events_rejected);
		}
		if (h.flags & RELAYMAP_SB_DROPS)
			d->drops_sbs++;
		if (!!(h.flags & RELAYMAP_SB_DROPS) !=
		    (h.events_discarded > d->last_hdr_dropped)) {
			d->hdr_drop_flag_wrong++;
			RM_DRAIN_REPORT(d, "cpu %u sub-buffer %llu: flag DROPS=%d but events_discarded %llu -> %llu",
					cpu, (unsigned long long)s,
					!!(h.flags & RELAYMAP_SB_DROPS),
					(unsigned long long)d->last_hdr_dropped,
					(unsigned long long)h.events_discarded);
		}
		d->last_hdr_dropped = h.events_discarded;
		d->last_hdr_rejected = h.events_rejected;
		rm_stream_payload(&d->st, s, slot + h.header_size, len, &r);
		/*
		 * Timestamps (CLOCK_MONOTONIC, taken on the owning CPU): the
		 * sub-buffer opens after the previous one closed, closes after
		 * its last record, and before we read it (1 ms of slack
		 * against the vDSO clock).
		 */
		{
			uint64_t now = rm_now_ns();
			const char *bad = NULL;

			if (h.timestamp_begin < d->last_ts_end)
				bad = "timestamp_begin < previous sub-buffer's timestamp_end";
			else if (r.records && r.max_ts > h.timestamp_end)
				bad = "a record's ts_ns > timestamp_end";
			else if (h.timestamp_end > now + 1000000)
				bad = "timestamp_end is in the future of CLOCK_MONOTONIC";
			if (bad) {
				d->ts_errors++;
				RM_DRAIN_REPORT(d, "cpu %u sub-buffer %llu: %s (begin %llu end %llu prev_end %llu max_record_ts %llu now %llu)",
						cpu, (unsigned long long)s, bad,
						(unsigned long long)h.timestamp_begin,
						(unsigned long long)h.timestamp_end,
						(unsigned long long)d->last_ts_end,
						(unsigned long long)r.max_ts,
						(unsigned long long)now);
			}
			d->last_ts_end = h.timestamp_end;
		}
		if (d->check_drop_count && r.records) {
			/* Stream from seq 0: missing so far = last seq + 1 - received. */
			uint64_t missing = r.last_seq + 1 - d->st.records;

			if (h.events_discarded != missing) {
				d->hdr_drop_count_wrong++;
				RM_DRAIN_REPORT(d, "cpu %u sub-buffer %llu: header events_discarded=%llu but the records through seq %llu miss %llu",
						cpu, (unsigned long long)s,
						(unsigned long long)h.events_discarded,
						(unsigned long long)r.last_seq,
						(unsigned long long)missing);
			}
		}
		d->subbufs++;
		if (d->delay_us)
			rm_sleep_us(d->delay_us);
	}
	d->consumed = produced;
	return n;
}

/*
 * Read sub-buffers d->consumed .. produced - 1 of d->cpu and hand them
 * back with one PUT_CONSUMED on its consumer fd. Returns how many.
 */
static inline uint64_t rm_drain_to(const struct rm_chan *ch, struct rm_drain *d,
				   uint64_t produced)
{
	uint64_t n = rm_drain_read(ch, d, produced);

	if (n)
		rm_put_x(ch->fd[d->cpu], d->cpu, n);
	return n;
}

/* One GET_CURSOR on the consumer fd, then drain what it says is produced. */
static inline uint64_t rm_drain_once(const struct rm_chan *ch, struct rm_drain *d)
{
	struct relaymap_cursor cur;

	rm_cursor_x(ch->fd[d->cpu], d->cpu, &cur);
	if (cur.cpu != d->cpu)
		RM_DRAIN_REPORT(d, "GET_CURSOR on the consumer fd of cpu %u says cpu %u",
				d->cpu, cur.cpu);
	if (cur.consumed != d->consumed)
		RM_DRAIN_REPORT(d, "cpu %u: kernel consumed=%llu, consumer expected %llu",
				d->cpu, (unsigned long long)cur.consumed,
				(unsigned long long)d->consumed);
	return rm_drain_to(ch, d, cur.produced);
}

static inline void rm_drain_print(const struct rm_drain *d)
{
	const struct rm_stream *st = &d->st;

	rm_note("cpu %u: subbufs=%llu records=%llu bytes=%llu first_seq=%llu next_seq=%llu "
		"gaps=%llu gap_records=%llu backwards=%llu bad_frame=%llu bad_type=%llu "
		"bad_cpu=%llu bad_csum=%llu bad_fill=%llu bad_content_end=%llu "
		"data_bytes=%llu printf_records=%llu unaligned_content_ends=%llu "
		"hdr_checks=%llu hdr_violations=%llu flushed_sbs=%llu flushed_partial=%llu "
		"drops_sbs=%llu last_hdr_discarded=%llu last_hdr_rejected=%llu "
		"open_subbuf_peeks=%llu open_not_final=%llu ts_errors=%llu ts_backwards=%llu",
		d->cpu, (unsigned long long)d->subbufs,
		(unsigned long long)st->records, (unsigned long long)st->bytes,
		(unsigned long long)st->first_seq,
		(unsigned long long)st->next_seq,
		(unsigned long long)st->gap_events,
		(unsigned long long)st->gap_records,
		(unsigned long long)st->backwards,
		(unsigned long long)st->bad_frame,
		(unsigned long long)st->bad_type,
		(unsigned long long)st->bad_cpu,
		(unsigned long long)st->bad_csum,
		(unsigned long long)st->bad_fill,
		(unsigned long long)st->bad_end,
		(unsigned long long)st->data_bytes,
		(unsigned long long)st->printf_records,
		(unsigned long long)st->unaligned_ends,
		(unsigned long long)d->hdr_checks,
		(unsigned long long)d->hdr_violations,
		(unsigned long long)d->flushed_sbs,
		(unsigned long long)d->flushed_partial,
		(unsigned long long)d->drops_sbs,
		(unsigned long long)d->last_hdr_dropped,
		(unsigned long long)d->last_hdr_rejected,
		(unsigned long long)d->open_peeks,
		(unsigned long long)d->open_not_final,
		(unsigned long long)d->ts_errors,
		(unsigned long long)st->ts_backwards);
}

/* ---- the load generator ------------------------------------------------ */

struct lg_cpu_status {
	unsigned int cpu;
	uint64_t attempts, written, dropped, rejected;
	/* lossless waits for space (0 from load generators without them) */
	uint64_t waits, sleeps, wait_us, cpu_us;
};

struct lg_status {
	bool running;
	unsigned int n;
	struct lg_cpu_status cpu[RM_MAXCPU];
	uint64_t attempts, written, dropped, rejected; /* the "total" line */
};

/*
 * The load generator's control: its sysfs parameters `run` (write 1 to
 * start, 0 to stop; works without debugfs and under lockdown) and
 * `status` when the module has them, else the debugfs control/status of
 * older builds.
 */
static inline bool lg_sysfs(void)
{
	return access(LG_PARAMS "/run", F_OK) == 0;
}

static inline bool lg_present(void)
{
	return lg_sysfs() ? access(LG_PARAMS "/run", W_OK) == 0 :
			    access(LG_DIR "/control", W_OK) == 0;
}

static inline void lg_set(const char *param, const char *value)
{
	char path[256];
	int err;

	snprintf(path, sizeof(path), LG_PARAMS "/%s", param);
	err = rm_write_text(path, value);
	if (err)
		rm_die("set loadgen %s=%s: %s", param, value, strerror(-err));
}

static inline void lg_setu(const char *param, unsigned long long v)
{
	char buf[32];

	snprintf(buf, sizeof(buf), "%llu", v);
	lg_set(param, buf);
}

static inline void lg_control(bool start)
{
	const char *path = lg_sysfs() ? LG_PARAMS "/run" : LG_DIR "/control";
	const char *cmd = lg_sysfs() ? (start ? "1" : "0") : (start ? "start" : "stop");
	int err = rm_write_text(path, cmd);

	if (err)
		rm_die("loadgen %s (%s > %s): %s", start ? "start" : "stop", cmd, path,
		       strerror(-err));
}

static inline void lg_start(void)
{
	lg_control(true);
}

static inline void lg_stop(void)
{
	lg_control(false);
}

/* The number after " KEY " in a status line, if there is one. */
static inline bool lg_field(const char *line, const char *key, uint64_t *v)
{
	char pat[40];
	const char *p;

	snprintf(pat, sizeof(pat), " %s ", key);
	p = strstr(line, pat);
	if (!p)
		return false;
	*v = strtoull(p + strlen(pat), NULL, 10);
	return true;
}

static inline void lg_read_status(struct lg_status *st)
{
	const char *path = lg_sysfs() ? LG_PARAMS "/status" : LG_DIR "/status";
	char buf[8192], *line, *save = NULL;
	int err;

	memset(st, 0, sizeof(*st));
	err = rm_read_text(path, buf, sizeof(buf));
	if (err)
		rm_die("read %s: %s", path, strerror(-err));
	for (line = strtok_r(buf, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		char state[32];
		unsigned int c;
		unsigned long long a, w, d, r = 0;

		/* "rejected N" is optional (older load generators lack it). */
		if (sscanf(line, "state %31s", state) == 1) {
			st->running = strcmp(state, "running") == 0;
		} else if (sscanf(line, "cpu %u attempts %llu written %llu dropped %llu rejected %llu",
				  &c, &a, &w, &d, &r) >= 4) {
			struct lg_cpu_status cs = { c, a, w, d, r, 0, 0, 0, 0 };

			if (st->n >= RM_MAXCPU)
				rm_die("loadgen status: too many cpu lines");
			/* The wait figures, where the load generator has them. */
			lg_field(line, "waits", &cs.waits);
			lg_field(line, "sleeps", &cs.sleeps);
			lg_field(line, "wait_us", &cs.wait_us);
			lg_field(line, "cpu_us", &cs.cpu_us);
			st->cpu[st->n++] = cs;
		} else if (sscanf(line, "total attempts %llu written %llu dropped %llu rejected %llu",
				  &a, &w, &d, &r) >= 3) {
			st->attempts = a;
			st->written = w;
			st->dropped = d;
			st->rejected = r;
		}
	}
}

/* Does loadgen's status have a line for this CPU (it was online)? */
static inline bool lg_has_cpu(const struct lg_status *st, unsigned int cpu)
{
	for (unsigned int i = 0; i < st->n; i++)
		if (st->cpu[i].cpu == cpu)
			return true;
	return false;
}

/* The status of one CPU; all zero if loadgen has no line for it. */
static inline struct lg_cpu_status lg_cpu(const struct lg_status *st,
					  unsigned int cpu)
{
	for (unsigned int i = 0; i < st->n; i++)
		if (st->cpu[i].cpu == cpu)
			return st->cpu[i];
	return (struct lg_cpu_status){ cpu, 0, 0, 0, 0, 0, 0, 0, 0 };
}

/* Wait until loadgen's state is idle (count or duration reached). */
static inline bool lg_wait_idle(unsigned int timeout_ms)
{
	uint64_t t0 = rm_now_ns();
	struct lg_status st;

	for (;;) {
		lg_read_status(&st);
		if (!st.running)
			return true;
		if (rm_now_ns() - t0 > (uint64_t)timeout_ms * 1000000)
			return false;
		rm_sleep_ms(20);
	}
}

/* Parse "key=value" into lg_set(); for --lg options. */
static inline void lg_set_kv(const char *kv)
{
	char key[64];
	const char *eq = strchr(kv, '=');

	if (!eq || eq == kv || (size_t)(eq - kv) >= sizeof(key))
		rm_die("bad loadgen parameter '%s' (want key=value)", kv);
	memcpy(key, kv, (size_t)(eq - kv));
	key[eq - kv] = 0;
	lg_set(key, eq + 1);
}

/* ---- module unload --------------------------------------------------- */

static inline int rm_delete_module(const char *name)
{
	return syscall(__NR_delete_module, name, O_NONBLOCK) < 0 ? -errno : 0;
}

static inline bool rm_module_loaded(const char *name)
{
	char path[128];

	snprintf(path, sizeof(path), "/sys/module/%s", name);
	return access(path, F_OK) == 0;
}

/* ---- small argument helpers --------------------------------------------- */

static inline unsigned long long rm_argu(const char *opt, const char *v)
{
	char *end;
	unsigned long long x;

	if (!v)
		rm_die("option %s needs a value", opt);
	errno = 0;
	x = strtoull(v, &end, 0);
	if (errno || *end || end == v)
		rm_die("option %s: bad number '%s'", opt, v);
	return x;
}

#endif /* RMTEST_H */

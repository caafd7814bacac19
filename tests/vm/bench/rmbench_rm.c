// SPDX-License-Identifier: MIT OR Apache-2.0
/*
 * rmbench_rm: the relaymap side of tests/vm/bench. A consumer written on
 * the ABI (include/relaymap_abi.h) directly: /dev/relaymap, OPEN_CHANNEL
 * by name, OPEN_CONSUMER(ALL), one read-only mapping per CPU, poll() over
 * the consumer fds, GET_CURSOR, the records walked in place (zero copy)
 * and every data byte added up by bench_sum() (sum.c, shared with the
 * BPF side), PUT_CONSUMED. The reader runs pinned to CPU 0.
 *
 * The producer is rmbench_writer.ko (loaded by bench.sh with the CPU mask
 * and payload); this program starts it (parameters/run = 1), so the clock
 * starts with the writers, and stops when they ended and everything is
 * drained (FLUSH, then the rest).
 *
 *   rmbench_rm CHANNEL PRODUCERS PAYLOAD [--put batch|each] [--query all|ready|cursors]
 *
 * --put batch (default): hand the sub-buffers back after the whole batch
 *   of a CPU (what the SDK's batch() does); each: after each sub-buffer.
 * --query all (default): after a wakeup ask every CPU for its cursor;
 *   ready: only the CPUs poll() reported readable; cursors: every CPU's
 *   cursor in one GET_CURSORS call on the channel fd.
 */
#include "bench.h"
#include "sum.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <relaymap_abi.h>

#define RUN_PATH "/sys/module/rmbench_writer/parameters/run"
#define STATS_PATH "/sys/module/rmbench_writer/parameters/stats"

struct cpu {
	int fd;
	int cpu;
	const unsigned char *map;
	uint64_t consumed;
};

static struct relaymap_info info;
static uint64_t n_recs, sum, ctl_calls;
static int put_each, query_ready, query_cursors;

static void die(const char *what)
{
	fprintf(stderr, "rmbench_rm: %s: %s\n", what, strerror(errno));
	exit(1);
}

static int read_file(const char *path, char *buf, size_t n)
{
	int fd = open(path, O_RDONLY);
	ssize_t r;

	if (fd < 0)
		return -1;
	r = read(fd, buf, n - 1);
	close(fd);
	if (r < 0)
		return -1;
	buf[r] = 0;
	return 0;
}

static void write_file(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY);

	if (fd < 0 || write(fd, s, strlen(s)) != (ssize_t)strlen(s))
		die(path);
	close(fd);
}

static void put(struct cpu *c, uint64_t n)
{
	struct relaymap_consume put = { .size = sizeof(put), .count = n };

	if (ioctl(c->fd, RELAYMAP_IOC_PUT_CONSUMED, &put))
		die("PUT_CONSUMED");
	ctl_calls++;
	c->consumed += n;
}

/* One sub-buffer: walk its records, add up their data. */
static void consume_subbuf(const struct cpu *c, uint64_t s)
{
	const unsigned char *sb = c->map + (s % info.n_subbufs) * info.subbuf_size;
	const struct relaymap_subbuf_header *h = (const void *)sb;
	size_t off, end;

	/* Pairs with the module's smp_store_release() of commit. */
	if (__atomic_load_n(&h->commit, __ATOMIC_ACQUIRE) != s + 1 || h->packet_seq_num != s) {
		fprintf(stderr, "rmbench_rm: cpu %d sub-buffer %llu: commit %llu seq %llu\n", c->cpu,
			(unsigned long long)s, (unsigned long long)h->commit,
			(unsigned long long)h->packet_seq_num);
		exit(1);
	}
	end = h->content_size / 8;
	off = h->header_size;
	while (off + sizeof(struct relaymap_record) <= end) {
		const struct relaymap_record *r = (const void *)(sb + off);

		if (off + sizeof(*r) + r->len > end) {
			fprintf(stderr, "rmbench_rm: cpu %d sub-buffer %llu: record at %zu runs past %zu\n",
				c->cpu, (unsigned long long)s, off, end);
			exit(1);
		}
		sum += bench_sum(r + 1, r->len);
		n_recs++;
		off += (sizeof(*r) + r->len + RELAYMAP_RECORD_ALIGN - 1) & ~(size_t)(RELAYMAP_RECORD_ALIGN - 1);
	}
}

/* Everything CPU c has published (per its cursor); returns the sub-buffers taken. */
static uint64_t drain_cursor(struct cpu *c, const struct relaymap_cursor *known)
{
	struct relaymap_cursor cur = { .size = sizeof(cur) };
	uint64_t s;

	if (known) {
		cur = *known;
	} else {
		if (ioctl(c->fd, RELAYMAP_IOC_GET_CURSOR, &cur))
			die("GET_CURSOR");
		ctl_calls++;
	}
	c->consumed = cur.consumed;
	if (cur.produced == cur.consumed)
		return 0;
	for (s = cur.consumed; s < cur.produced; s++) {
		consume_subbuf(c, s);
		if (put_each)
			put(c, 1);
	}
	if (!put_each)
		put(c, cur.produced - cur.consumed);
	return cur.produced - cur.consumed;
}

static uint64_t drain_cpu(struct cpu *c)
{
	return drain_cursor(c, NULL);
}

/* --query cursors: every CPU's cursor in one GET_CURSORS on the channel fd. */
static uint64_t drain_all_cursors(int chfd, struct cpu *cpus, int n)
{
	static struct relaymap_cursor cur[RELAYMAP_MAX_CPUS];
	struct relaymap_cursors q = { .size = sizeof(q), .first_cpu = 0, .nr = info.nr_cpu_ids,
				      .cursor_size = sizeof(cur[0]), .cursors = (uintptr_t)cur };
	uint64_t got = 0;
	int i;

	if (ioctl(chfd, RELAYMAP_IOC_GET_CURSORS, &q))
		die("GET_CURSORS");
	ctl_calls++;
	for (i = 0; i < n; i++) {
		const struct relaymap_cursor *k = &cur[cpus[i].cpu];

		if (cpus[i].cpu < (int)q.nr && k->produced != k->consumed)
			got += drain_cursor(&cpus[i], k);
	}
	return got;
}

int main(int argc, char **argv)
{
	struct relaymap_open_channel oc = { .size = sizeof(oc) };
	struct relaymap_open_consumer ocs = { .size = sizeof(ocs), .cpu = RELAYMAP_ALL_CPUS };
	struct relaymap_flush fl = { .size = sizeof(fl), .cpu = RELAYMAP_ALL_CPUS };
	struct relaymap_stats st = { .size = sizeof(st), .cpu = RELAYMAP_ALL_CPUS }, st0;
	static int fds[RELAYMAP_MAX_CPUS];
	static struct cpu cpus[RELAYMAP_MAX_CPUS];
	static struct pollfd pfd[RELAYMAP_MAX_CPUS];
	unsigned long long w_written = 0, w_dropped = 0;
	uint64_t subbufs = 0, wakeups = 0;
	int dev, chfd, n = 0, producers, i;
	unsigned payload;
	double t0, t1 = 0, c0, c1;
	char buf[128];

	if (argc < 4) {
		fprintf(stderr, "usage: rmbench_rm CHANNEL PRODUCERS PAYLOAD [--put batch|each] [--query all|ready|cursors]\n");
		return 2;
	}
	producers = atoi(argv[2]);
	payload = (unsigned)atoi(argv[3]);
	for (i = 4; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "--put"))
			put_each = !strcmp(argv[i + 1], "each");
		else if (!strcmp(argv[i], "--query")) {
			query_ready = !strcmp(argv[i + 1], "ready");
			query_cursors = !strcmp(argv[i + 1], "cursors");
		}
	}
	pin_self(0);

	dev = open(RELAYMAP_DEVICE_PATH, O_RDONLY | O_CLOEXEC);
	if (dev < 0)
		die(RELAYMAP_DEVICE_PATH);
	snprintf(oc.name, sizeof(oc.name), "%s", argv[1]);
	chfd = ioctl(dev, RELAYMAP_IOC_OPEN_CHANNEL, &oc);
	if (chfd < 0)
		die("OPEN_CHANNEL");
	info.size = sizeof(info);
	if (ioctl(chfd, RELAYMAP_IOC_GET_INFO, &info))
		die("GET_INFO");
	if (info.abi_version != RELAYMAP_ABI_VERSION) {
		fprintf(stderr, "rmbench_rm: module ABI %u, built for %u\n", info.abi_version,
			RELAYMAP_ABI_VERSION);
		return 1;
	}
	ocs.nr_fds = info.nr_cpu_ids;
	ocs.fds = (uintptr_t)fds;
	if (ioctl(chfd, RELAYMAP_IOC_OPEN_CONSUMER, &ocs))
		die("OPEN_CONSUMER(ALL)");
	for (i = 0; i < (int)info.nr_cpu_ids; i++) {
		void *m;

		if (fds[i] < 0)
			continue;
		m = mmap(NULL, info.alloc_size, PROT_READ, MAP_SHARED | MAP_POPULATE, fds[i], 0);
		if (m == MAP_FAILED)
			die("mmap");
		cpus[n] = (struct cpu){ .fd = fds[i], .cpu = i, .map = m };
		pfd[n] = (struct pollfd){ .fd = fds[i], .events = POLLIN };
		n++;
	}

	/* The module's counters are cumulative: this run is the difference. */
	if (ioctl(chfd, RELAYMAP_IOC_GET_STATS, &st))
		die("GET_STATS");
	st0 = st;
	c0 = thread_cpu_s();
	t0 = now_s();
	write_file(RUN_PATH, "1");
	for (;;) {
		int r = poll(pfd, n, 20), running;

		if (r < 0 && errno != EINTR)
			die("poll");
		if (r > 0) {
			uint64_t got = 0;

			wakeups++;
			for (i = 0; i < n && !query_cursors; i++) {
				if (query_ready && !(pfd[i].revents & POLLIN))
					continue;
				got += drain_cpu(&cpus[i]);
			}
			if (query_cursors)
				got = drain_all_cursors(chfd, cpus, n);
			if (got)
				t1 = now_s();
			subbufs += got;
			continue;
		}
		/* A quiet poll: are the writers done? */
		if (read_file(RUN_PATH, buf, sizeof(buf)))
			die(RUN_PATH);
		running = atoi(buf);
		if (!running)
			break;
	}
	/* The writers ended: publish the open sub-buffers, take the rest. */
	if (ioctl(chfd, RELAYMAP_IOC_FLUSH, &fl))
		die("FLUSH");
	for (i = 0; i < n; i++) {
		uint64_t got = drain_cpu(&cpus[i]);

		if (got)
			t1 = now_s();
		subbufs += got;
	}
	c1 = thread_cpu_s();

	if (ioctl(chfd, RELAYMAP_IOC_GET_STATS, &st))
		die("GET_STATS");
	if (read_file(STATS_PATH, buf, sizeof(buf)) ||
	    sscanf(buf, "written %llu dropped %llu", &w_written, &w_dropped) != 2)
		die(STATS_PATH);
	/* Every accepted record must have been delivered, and counted alike. */
	st.records_written -= st0.records_written;
	st.records_dropped -= st0.records_dropped;
	if (n_recs != w_written || st.records_written != w_written || st.records_dropped != w_dropped) {
		fprintf(stderr,
			"rmbench_rm: delivered %llu, writer: written %llu dropped %llu, module: written %llu dropped %llu\n",
			(unsigned long long)n_recs, w_written, w_dropped,
			(unsigned long long)st.records_written, (unsigned long long)st.records_dropped);
		return 1;
	}
	/* Elapsed: from the writers' start to the last delivery (not the quiet poll that ends the run). */
	print_result(put_each ? (query_ready ? "rm-each-ready" : "rm-each") :
				(query_ready ? "rm-ready" : "rm"),
		     producers, payload, n_recs, w_dropped, t1 - t0, c1 - c0, sum,
		     (unsigned)((16 + payload + 7) & ~7u));
	printf("detail side=rm subbufs=%llu wakeups=%llu ctl_calls=%llu ctl_per_subbuf=%.2f\n",
	       (unsigned long long)subbufs, (unsigned long long)wakeups,
	       (unsigned long long)ctl_calls, subbufs ? (double)ctl_calls / subbufs : 0.0);
	return 0;
}

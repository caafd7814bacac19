/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/*
 * consumer.c - the classic relay-apps "audience.c", done right with
 * librelaymap: a channel opened by name through /dev/relaymap, one reader
 * per CPU (each holds its CPU's exclusive consumer claim and its own
 * read-only mapping: zero-copy, no read() copies), one poll over all
 * readers, a batch per ready CPU with one control call each way, every
 * record checked, and a loss report in exact units at the end.
 *
 *   consumer --name NAME [--expect N] [--quiet]
 *   consumer --dir DIR [--expect N] [--quiet]
 *       Consume kernel channel NAME (through /dev/relaymap), or the
 *       channel in directory DIR (debugfs: /sys/kernel/debug/relaymap/NAME,
 *       or a simulated channel), until SIGINT/SIGTERM (or N records), then
 *       flush, drain what is left, and report.
 *
 *   consumer --sim [--cpus N] [--count N] [--record-size B] [--drop]
 *                  [--subbuf-size B] [--n-subbufs N]
 *       (library built with feature `sim`, program with -DRELAYMAP_TESTING)
 *       Create a simulated channel, write --count load generator records
 *       per CPU from one producer thread per CPU while consuming, then check
 *       that what arrived is exactly what was written (and, with --drop,
 *       that every missing record is counted as dropped).
 *
 * Output (one line each, stable for scripts):
 *   consuming CPUS
 *   cpu C records R subbufs S bytes B gaps G
 *   total records R subbufs S bytes B gaps G bad X disorder D
 *   loss records_dropped N records_rejected N subbufs_lapped N subbufs_corrupt N
 *   kernel records_written N records_dropped N subbufs_produced N subbufs_consumed N
 * Exit status 0 when every record verified (and the counts match in --sim
 * mode or with --expect), 1 otherwise, 2 on a usage error, 3 when another
 * consumer holds a CPU of the channel (RELAYMAP_ERR_BUSY; the message
 * names it).
 *
 * Build: cc consumer.c $(pkg-config --cflags --libs relaymap)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "relaymap.h"

#ifdef RELAYMAP_TESTING
#include <pthread.h>
#include <sched.h>
#endif

#define EXIT_BUSY 3

struct cpu_stats {
	uint64_t records, subbufs, bytes;
	uint64_t next_seq; /* next load generator seq expected */
	uint64_t gaps;	   /* load generator seqs never seen (dropped) */
};

struct consumer {
	relaymap_channel *ch;
	relaymap_reader **rd; /* one per CPU, in the order of cpus[] */
	uint32_t *cpus;
	bool *ready;
	size_t n;
	struct cpu_stats *st; /* indexed like rd[] */
	uint64_t records, bad, disorder;
	int quiet;
	int busy; /* opening failed with RELAYMAP_ERR_BUSY */
};

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

/* Prints the failed call, its result code and relaymap's message. */
static int fail(const char *what, relaymap_result rc)
{
	fprintf(stderr, "consumer: %s: %s: %s\n", what,
		relaymap_result_name(rc), relaymap_last_error());
	return -1;
}

#define CHECK(call)                                   \
	do {                                          \
		relaymap_result rc_ = (call);         \
		if (rc_ != RELAYMAP_OK)               \
			return fail(#call, rc_);      \
	} while (0)

static void account(struct consumer *c, size_t k, uint32_t cpu,
		    const relaymap_record_view *r)
{
	struct cpu_stats *s = &c->st[k];
	relaymap_loadgen_record lg;
	bool valid;

	s->records++;
	c->records++;
	if (r->rec_type != RELAYMAP_REC_LOADGEN)
		return;
	if (relaymap_loadgen_parse(r, &lg, &valid) != RELAYMAP_OK || !valid ||
	    lg.cpu != cpu) {
		if (!c->quiet || c->bad < 10)
			fprintf(stderr, "consumer: cpu %u: bad record at offset %zu\n",
				cpu, r->offset);
		c->bad++;
		return;
	}
	if (lg.seq < s->next_seq) {
		if (c->disorder < 10)
			fprintf(stderr, "consumer: cpu %u: seq %" PRIu64
				" after %" PRIu64 "\n", cpu, lg.seq, s->next_seq - 1);
		c->disorder++;
		return;
	}
	s->gaps += lg.seq - s->next_seq;
	s->next_seq = lg.seq + 1;
}

/* One batch of reader k: every ready sub-buffer, every record. Returns the
 * number of sub-buffers consumed, or -1. */
static long consume_reader(struct consumer *c, size_t k)
{
	relaymap_batch b;
	size_t i;

	CHECK(relaymap_reader_acquire(c->rd[k], SIZE_MAX, &b));
	if (b.len == 0)
		return 0; /* nothing outstanding */
	for (i = 0; i < b.len; i++) {
		const relaymap_subbuf *sb = &b.subbufs[i];
		relaymap_record_iter it;
		relaymap_record_view r;
		bool got;

		c->st[k].subbufs++;
		c->st[k].bytes += sb->payload.len;
		CHECK(relaymap_record_iter_init(&it, sb->payload));
		for (;;) {
			relaymap_result rc = relaymap_record_iter_next(&it, &r, &got);

			if (rc != RELAYMAP_OK) {
				/* Corrupt framing: count it, skip the rest. */
				fail("relaymap_record_iter_next", rc);
				c->bad++;
				break;
			}
			if (!got)
				break;
			account(c, k, b.cpu, &r);
		}
	}
	/* One PUT_CONSUMED for the whole batch. */
	CHECK(relaymap_reader_release(c->rd[k]));
	return (long)b.len;
}

/* Waits up to timeout_ms for any reader, then consumes the ready ones (all
 * of them when `all`). Returns sub-buffers consumed or -1. */
static long consume_pass(struct consumer *c, int64_t timeout_ms, int all)
{
	long total = 0;
	size_t k, n_ready = 0;
	relaymap_result rc;

	rc = relaymap_readers_wait((const relaymap_reader *const *)c->rd, c->n,
				   timeout_ms, c->ready, &n_ready);
	if (rc != RELAYMAP_OK)
		return fail("relaymap_readers_wait", rc);
	for (k = 0; k < c->n; k++) {
		long n;

		if (!all && !c->ready[k])
			continue;
		n = consume_reader(c, k);
		if (n < 0)
			return -1;
		total += n;
	}
	return total;
}

/* Flush partial sub-buffers and consume until every reader is drained (the
 * writers must have stopped). */
static int drain(struct consumer *c)
{
	int idle = 0;

	CHECK(relaymap_channel_flush(c->ch, RELAYMAP_ALL_CPUS));
	for (;;) {
		bool drained = true;
		long n = consume_pass(c, 10, 1);
		size_t k;

		if (n < 0)
			return -1;
		for (k = 0; k < c->n && drained; k++)
			CHECK(relaymap_reader_is_drained(c->rd[k], &drained));
		if (drained)
			return 0;
		if (n == 0 && ++idle > 100) {
			fprintf(stderr, "consumer: not drained after 100 idle passes "
				"(is a writer still running?)\n");
			return -1;
		}
	}
}

static void close_consumer(struct consumer *c)
{
	size_t k;

	for (k = 0; c->rd && k < c->n; k++)
		relaymap_reader_close(c->rd[k]);
	relaymap_channel_close(c->ch);
	free(c->rd);
	free(c->cpus);
	free(c->ready);
	free(c->st);
	c->ch = NULL;
	c->rd = NULL;
	c->cpus = NULL;
	c->ready = NULL;
	c->st = NULL;
}

/* Opens the channel (by name, or by directory) and claims every CPU. */
static int open_consumer(struct consumer *c, const char *name, const char *dir)
{
	relaymap_channel_info info;
	relaymap_result rc;
	size_t n = 0;

	if (name)
		CHECK(relaymap_channel_open(name, &c->ch));
	else
		CHECK(relaymap_channel_open_path(dir, &c->ch));
	CHECK(relaymap_channel_get_info(c->ch, &info));
	c->n = info.n_cpus;
	c->rd = calloc(c->n, sizeof(*c->rd));
	c->cpus = calloc(c->n, sizeof(*c->cpus));
	c->ready = calloc(c->n, sizeof(*c->ready));
	c->st = calloc(c->n, sizeof(*c->st));
	if (!c->rd || !c->cpus || !c->ready || !c->st) {
		fprintf(stderr, "consumer: out of memory\n");
		return -1;
	}
	CHECK(relaymap_channel_cpus(c->ch, c->cpus, c->n, &n));
	/* All or nothing: one held CPU and nothing is claimed. */
	rc = relaymap_channel_open_readers(c->ch, c->rd, c->n, &n);
	if (rc != RELAYMAP_OK) {
		c->busy = rc == RELAYMAP_ERR_BUSY;
		memset(c->rd, 0, c->n * sizeof(*c->rd));
		return fail("relaymap_channel_open_readers", rc);
	}
	printf("channel %s: %zu CPUs, %" PRIu64 " x %" PRIu64 " bytes, %s, "
	       "librelaymap %s (header %s)\n",
	       info.name, c->n, info.n_subbufs, info.subbuf_size,
	       info.overwrite ? "overwrite" : "no-overwrite",
	       relaymap_version(), RELAYMAP_VERSION_STRING);
	return 0;
}

/* Prints the report; fills *loss with the sum over the readers. */
static int report(struct consumer *c, relaymap_loss *loss)
{
	struct cpu_stats t = { 0 };
	relaymap_channel_stats ks;
	size_t k;

	memset(loss, 0, sizeof(*loss));
	for (k = 0; k < c->n; k++) {
		const struct cpu_stats *s = &c->st[k];
		relaymap_loss l;

		printf("cpu %u records %" PRIu64 " subbufs %" PRIu64 " bytes %" PRIu64
		       " gaps %" PRIu64 "\n", c->cpus[k], s->records, s->subbufs,
		       s->bytes, s->gaps);
		t.subbufs += s->subbufs;
		t.bytes += s->bytes;
		t.gaps += s->gaps;
		CHECK(relaymap_reader_loss(c->rd[k], &l));
		loss->records_dropped += l.records_dropped;
		loss->records_rejected += l.records_rejected;
		loss->subbufs_lapped += l.subbufs_lapped;
		loss->subbufs_corrupt += l.subbufs_corrupt;
	}
	printf("total records %" PRIu64 " subbufs %" PRIu64 " bytes %" PRIu64
	       " gaps %" PRIu64 " bad %" PRIu64 " disorder %" PRIu64 "\n",
	       c->records, t.subbufs, t.bytes, t.gaps, c->bad, c->disorder);
	printf("loss records_dropped %" PRIu64 " records_rejected %" PRIu64
	       " subbufs_lapped %" PRIu64 " subbufs_corrupt %" PRIu64 "\n",
	       loss->records_dropped, loss->records_rejected,
	       loss->subbufs_lapped, loss->subbufs_corrupt);
	CHECK(relaymap_channel_get_stats(c->ch, RELAYMAP_ALL_CPUS, &ks));
	printf("kernel records_written %" PRIu64 " records_dropped %" PRIu64
	       " subbufs_produced %" PRIu64 " subbufs_consumed %" PRIu64 "\n",
	       ks.records_written, ks.records_dropped, ks.subbufs_produced,
	       ks.subbufs_consumed);
	return 0;
}

/* --name / --dir: consume until a signal (or --expect records), then
 * drain. */
static int run_channel(const char *name, const char *dir, long long expect,
		       int quiet)
{
	struct consumer c = { .quiet = quiet };
	relaymap_loss loss;
	struct sigaction sa;
	int ok;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal; /* no SA_RESTART: the wait returns */
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);

	if (open_consumer(&c, name, dir) < 0) {
		int busy = c.busy;

		close_consumer(&c);
		return busy ? EXIT_BUSY : 1;
	}
	printf("consuming %zu CPUs (SIGINT or SIGTERM to stop)\n", c.n);
	fflush(stdout);
	ok = 1;
	while (!stop && (expect < 0 || c.records < (uint64_t)expect)) {
		if (consume_pass(&c, 200, 0) < 0) {
			ok = 0;
			break;
		}
	}
	ok &= drain(&c) == 0;
	ok &= report(&c, &loss) == 0;
	ok &= c.bad == 0 && c.disorder == 0;
	if (expect >= 0 && c.records != (uint64_t)expect) {
		fprintf(stderr, "consumer: %" PRIu64 " records, expected %lld\n",
			c.records, expect);
		ok = 0;
	}
	close_consumer(&c);
	return ok ? 0 : 1;
}

#ifdef RELAYMAP_TESTING
struct producer {
	pthread_t thread;
	relaymap_sim *sim;
	uint32_t cpu;
	uint64_t count;
	size_t record_size;
	int drop;
	uint64_t written, dropped, refused; /* refused: retried (lossless) */
	int failed;
	int done; /* set (atomically) when the thread has finished */
};

static void *produce(void *arg)
{
	struct producer *p = arg;
	uint64_t seq;

	for (seq = 0; seq < p->count; seq++) {
		for (;;) {
			bool w;
			/*
			 * Drop mode: relaymap_write() (a full buffer drops and
			 * counts). Lossless: relaymap_try_write() (refused, not
			 * counted; retry), as the load generator does.
			 */
			relaymap_result rc = p->drop ?
				relaymap_sim_write_loadgen(p->sim, p->cpu, seq,
							   p->record_size, &w) :
				relaymap_sim_try_write_loadgen(p->sim, p->cpu, seq,
							       p->record_size, &w);

			if (rc != RELAYMAP_OK) {
				fail(p->drop ? "relaymap_sim_write_loadgen" :
					       "relaymap_sim_try_write_loadgen", rc);
				p->failed = 1;
				__atomic_store_n(&p->done, 1, __ATOMIC_RELEASE);
				return NULL;
			}
			if (w) {
				p->written++;
				break;
			}
			if (p->drop) {
				p->dropped++;
				break;
			}
			/* Lossless: the buffer is full, wait for the reader. */
			p->refused++;
			sched_yield();
		}
	}
	__atomic_store_n(&p->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

static int run_sim(uint32_t cpus, uint64_t count, size_t record_size, int drop,
		   uint64_t subbuf_size, uint64_t n_subbufs)
{
	struct consumer c = { 0 };
	struct producer *p;
	relaymap_sim *sim = NULL;
	relaymap_loss loss;
	uint64_t written = 0, dropped = 0, refused = 0;
	uint32_t k;
	int ok = 1, running;

	relaymap_result rc = relaymap_sim_create(NULL, subbuf_size, n_subbufs, cpus,
						 false, &sim);
	if (rc != RELAYMAP_OK)
		return fail("relaymap_sim_create", rc), 1;
	p = calloc(cpus, sizeof(*p));
	if (!p || open_consumer(&c, NULL, relaymap_sim_dir(sim)) < 0) {
		close_consumer(&c);
		free(p);
		relaymap_sim_free(sim);
		return 1;
	}
	printf("simulated producers: %u x %" PRIu64 " records of %zu bytes (%s)\n",
	       cpus, count, record_size, drop ? "drop when full" : "lossless");
	for (k = 0; k < cpus; k++) {
		p[k] = (struct producer){ .sim = sim, .cpu = k, .count = count,
					  .record_size = record_size, .drop = drop };
		if (pthread_create(&p[k].thread, NULL, produce, &p[k]) != 0) {
			fprintf(stderr, "consumer: pthread_create failed\n");
			exit(1);
		}
	}
	/* Consume while the producers run; stop when all have finished. */
	running = 1;
	while (running) {
		running = 0;
		for (k = 0; k < cpus; k++)
			running |= !__atomic_load_n(&p[k].done, __ATOMIC_ACQUIRE);
		if (consume_pass(&c, 50, 0) < 0) {
			ok = 0;
			break;
		}
	}
	for (k = 0; k < cpus; k++) {
		pthread_join(p[k].thread, NULL);
		written += p[k].written;
		dropped += p[k].dropped;
		refused += p[k].refused;
		ok &= !p[k].failed;
	}
	ok &= drain(&c) == 0;
	ok &= report(&c, &loss) == 0;
	printf("producers written %" PRIu64 " dropped %" PRIu64 " refused %" PRIu64
	       "\n", written, dropped, refused);
	ok &= c.bad == 0 && c.disorder == 0;
	for (k = 0; k < cpus; k++) {
		/* The simulated CPUs are 0..cpus-1, so reader k is CPU k. */
		if (c.cpus[k] != k || c.st[k].records != p[k].written) {
			fprintf(stderr, "consumer: cpu %u: received %" PRIu64
				", written %" PRIu64 "\n", k, c.st[k].records,
				p[k].written);
			ok = 0;
		}
	}
	/*
	 * Every dropped write is counted by the kernel (here: the sim);
	 * refused try-writes (lossless retries) are not.
	 */
	if (loss.records_dropped != dropped) {
		fprintf(stderr, "consumer: loss.records_dropped %" PRIu64
			" != dropped %" PRIu64 " (refused %" PRIu64
			" not counted)\n", loss.records_dropped, dropped, refused);
		ok = 0;
	}
	printf("%s\n", ok ? "ok: every record arrived once, in order, verified; "
			    "every loss counted" : "FAILED");
	close_consumer(&c);
	free(p);
	relaymap_sim_free(sim);
	return ok ? 0 : 1;
}
#endif

static void usage(void)
{
	fprintf(stderr,
		"usage: consumer --name NAME [--expect N] [--quiet]\n"
		"       consumer --dir DIR [--expect N] [--quiet]\n"
#ifdef RELAYMAP_TESTING
		"       consumer --sim [--cpus N] [--count N] [--record-size B] [--drop]\n"
		"                      [--subbuf-size B] [--n-subbufs N]\n"
#endif
	);
}

int main(int argc, char **argv)
{
	const char *dir = NULL, *name = NULL;
	long long expect = -1;
	int quiet = 0, sim = 0, drop = 0, i;
	unsigned long long cpus = 2, count = 100000, record_size = 64;
	unsigned long long subbuf_size = 16384, n_subbufs = 8;

	for (i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!strcmp(a, "--quiet")) {
			quiet = 1;
		} else if (!strcmp(a, "--sim")) {
			sim = 1;
		} else if (!strcmp(a, "--drop")) {
			drop = 1;
		} else if (v && !strcmp(a, "--name")) {
			name = v, i++;
		} else if (v && !strcmp(a, "--dir")) {
			dir = v, i++;
		} else if (v && !strcmp(a, "--expect")) {
			expect = strtoll(v, NULL, 0), i++;
		} else if (v && !strcmp(a, "--cpus")) {
			cpus = strtoull(v, NULL, 0), i++;
		} else if (v && !strcmp(a, "--count")) {
			count = strtoull(v, NULL, 0), i++;
		} else if (v && !strcmp(a, "--record-size")) {
			record_size = strtoull(v, NULL, 0), i++;
		} else if (v && !strcmp(a, "--subbuf-size")) {
			subbuf_size = strtoull(v, NULL, 0), i++;
		} else if (v && !strcmp(a, "--n-subbufs")) {
			n_subbufs = strtoull(v, NULL, 0), i++;
		} else {
			usage();
			return 2;
		}
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (!sim && (!name != !dir))
		return run_channel(name, dir, expect, quiet);
#ifdef RELAYMAP_TESTING
	if (sim && !dir && !name)
		return run_sim((uint32_t)cpus, count, (size_t)record_size, drop,
			       subbuf_size, n_subbufs);
#else
	(void)drop, (void)cpus, (void)count, (void)record_size;
	(void)subbuf_size, (void)n_subbufs;
#endif
	usage();
	return 2;
}

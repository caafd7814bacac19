/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/*
 * consumer.c - the classic relay-apps "audience.c", done right with
 * librelaymap: every CPU of a channel, zero-copy through read-only shared
 * mappings (no read() copies), one poll for all CPUs, a batch per CPU with
 * one control call each way, every record checked, and a loss report in
 * exact units at the end.
 *
 *   consumer --dir /sys/kernel/debug/relaymap/NAME [--expect N] [--quiet]
 *       Consume a kernel channel until SIGINT/SIGTERM (or N records), then
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
 *   cpu C records R subbufs S bytes B gaps G
 *   total records R subbufs S bytes B gaps G bad X disorder D
 *   loss records_dropped N subbufs_lapped N subbufs_corrupt N
 * Exit status 0 when every record verified (and the counts match in --sim
 * mode or with --expect), 1 otherwise, 2 on a usage error.
 *
 * Build: cc consumer.c $(pkg-config --cflags --libs relaymap)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "relaymap.h"

#ifdef RELAYMAP_TESTING
#include <pthread.h>
#include <sched.h>
#endif

struct cpu_stats {
	uint64_t records, subbufs, bytes;
	uint64_t next_seq; /* next load generator seq expected */
	uint64_t gaps;	   /* load generator seqs never seen (dropped) */
};

struct consumer {
	relaymap_channel *ch;
	uint32_t cpus[RELAYMAP_MAX_CPUS];
	size_t n_cpus;
	struct cpu_stats *st; /* indexed by CPU number */
	uint32_t max_cpu;
	uint64_t records, bad, disorder;
	int quiet;
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

static void account(struct consumer *c, uint32_t cpu,
		    const relaymap_record_view *r)
{
	struct cpu_stats *s = &c->st[cpu];
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

/* One batch of one CPU: every ready sub-buffer, every record. Returns the
 * number of sub-buffers consumed, or -1. */
static long consume_cpu(struct consumer *c, uint32_t cpu)
{
	relaymap_batch b;
	size_t i;

	CHECK(relaymap_channel_acquire(c->ch, cpu, &b));
	for (i = 0; i < b.len; i++) {
		relaymap_view v;
		relaymap_record_iter it;
		relaymap_record_view r;
		bool got;

		CHECK(relaymap_batch_view(c->ch, i, &v));
		c->st[cpu].subbufs++;
		c->st[cpu].bytes += v.len;
		CHECK(relaymap_record_iter_init(&it, &v));
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
			account(c, cpu, &r);
		}
	}
	/* One PUT_CONSUMED for the whole batch. */
	CHECK(relaymap_batch_release(c->ch));
	return (long)b.len;
}

/* One pass over every CPU; returns sub-buffers consumed or -1. */
static long consume_all(struct consumer *c)
{
	long total = 0;
	size_t k;

	for (k = 0; k < c->n_cpus; k++) {
		long n = consume_cpu(c, c->cpus[k]);

		if (n < 0)
			return -1;
		total += n;
	}
	return total;
}

/* Flush partial sub-buffers and consume until every CPU is drained (the
 * writers must have stopped). */
static int drain(struct consumer *c)
{
	int idle = 0;

	CHECK(relaymap_channel_flush(c->ch, RELAYMAP_ALL_CPUS));
	for (;;) {
		bool drained, ready;
		long n = consume_all(c);

		if (n < 0)
			return -1;
		CHECK(relaymap_channel_is_drained(c->ch, &drained));
		if (drained)
			return 0;
		if (n == 0 && ++idle > 100) {
			fprintf(stderr, "consumer: not drained after 100 idle passes "
				"(is a writer still running?)\n");
			return -1;
		}
		CHECK(relaymap_channel_wait(c->ch, 10, &ready));
	}
}

static int open_consumer(struct consumer *c, const char *dir)
{
	relaymap_channel_info info;
	size_t k;

	CHECK(relaymap_channel_open(dir, RELAYMAP_OPEN_POPULATE, &c->ch));
	CHECK(relaymap_channel_get_info(c->ch, &info));
	CHECK(relaymap_channel_cpus(c->ch, c->cpus, RELAYMAP_MAX_CPUS, &c->n_cpus));
	c->max_cpu = 0;
	for (k = 0; k < c->n_cpus; k++)
		if (c->cpus[k] > c->max_cpu)
			c->max_cpu = c->cpus[k];
	c->st = calloc(c->max_cpu + 1, sizeof(*c->st));
	if (!c->st) {
		fprintf(stderr, "consumer: out of memory\n");
		return -1;
	}
	printf("channel %s: %zu CPUs, %" PRIu64 " x %" PRIu64 " bytes, %s, "
	       "librelaymap %s (header %s)\n",
	       info.name, c->n_cpus, info.n_subbufs, info.subbuf_size,
	       info.overwrite ? "overwrite" : "no-overwrite",
	       relaymap_version(), RELAYMAP_VERSION_STRING);
	return 0;
}

/* Prints the report; fills *loss. */
static int report(struct consumer *c, relaymap_loss *loss)
{
	struct cpu_stats t = { 0 };
	relaymap_channel_stats ks;
	size_t k;

	for (k = 0; k < c->n_cpus; k++) {
		const struct cpu_stats *s = &c->st[c->cpus[k]];

		printf("cpu %u records %" PRIu64 " subbufs %" PRIu64 " bytes %" PRIu64
		       " gaps %" PRIu64 "\n", c->cpus[k], s->records, s->subbufs,
		       s->bytes, s->gaps);
		t.subbufs += s->subbufs;
		t.bytes += s->bytes;
		t.gaps += s->gaps;
	}
	printf("total records %" PRIu64 " subbufs %" PRIu64 " bytes %" PRIu64
	       " gaps %" PRIu64 " bad %" PRIu64 " disorder %" PRIu64 "\n",
	       c->records, t.subbufs, t.bytes, t.gaps, c->bad, c->disorder);
	CHECK(relaymap_channel_loss(c->ch, RELAYMAP_ALL_CPUS, loss));
	printf("loss records_dropped %" PRIu64 " subbufs_lapped %" PRIu64
	       " subbufs_corrupt %" PRIu64 "\n", loss->records_dropped,
	       loss->subbufs_lapped, loss->subbufs_corrupt);
	CHECK(relaymap_channel_get_stats(c->ch, RELAYMAP_ALL_CPUS, &ks));
	printf("kernel records_written %" PRIu64 " records_dropped %" PRIu64
	       " subbufs_produced %" PRIu64 " subbufs_consumed %" PRIu64 "\n",
	       ks.records_written, ks.records_dropped, ks.subbufs_produced,
	       ks.subbufs_consumed);
	return 0;
}

static void close_consumer(struct consumer *c)
{
	relaymap_channel_close(c->ch);
	c->ch = NULL;
	free(c->st);
	c->st = NULL;
}

/* --dir: consume until a signal (or --expect records), then drain. */
static int run_dir(const char *dir, long long expect, int quiet)
{
	struct consumer c = { .quiet = quiet };
	relaymap_loss loss;
	struct sigaction sa;
	int ok;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal; /* no SA_RESTART: the wait returns */
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);

	if (open_consumer(&c, dir) < 0) {
		close_consumer(&c);
		return 1;
	}
	printf("consuming (SIGINT or SIGTERM to stop)\n");
	fflush(stdout);
	while (!stop && (expect < 0 || c.records < (uint64_t)expect)) {
		bool ready;
		relaymap_result rc = relaymap_channel_wait(c.ch, 200, &ready);

		if (rc != RELAYMAP_OK) {
			fail("relaymap_channel_wait", rc);
			break;
		}
		if (consume_all(&c) < 0)
			break;
	}
	ok = drain(&c) == 0;
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
	if (!p || open_consumer(&c, relaymap_sim_dir(sim)) < 0) {
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
		bool ready;

		running = 0;
		for (k = 0; k < cpus; k++)
			running |= !__atomic_load_n(&p[k].done, __ATOMIC_ACQUIRE);
		relaymap_result rc2 = relaymap_channel_wait(c.ch, 50, &ready);

		if (rc2 != RELAYMAP_OK) {
			fail("relaymap_channel_wait", rc2);
			ok = 0;
			break;
		}
		if (consume_all(&c) < 0) {
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
		if (c.st[k].records != p[k].written) {
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
		"usage: consumer --dir DIR [--expect N] [--quiet]\n"
#ifdef RELAYMAP_TESTING
		"       consumer --sim [--cpus N] [--count N] [--record-size B] [--drop]\n"
		"                      [--subbuf-size B] [--n-subbufs N]\n"
#endif
	);
}

int main(int argc, char **argv)
{
	const char *dir = NULL;
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
	if (dir && !sim)
		return run_dir(dir, expect, quiet);
#ifdef RELAYMAP_TESTING
	if (sim && !dir)
		return run_sim((uint32_t)cpus, count, (size_t)record_size, drop,
			       subbuf_size, n_subbufs);
#else
	(void)drop, (void)cpus, (void)count, (void)record_size;
	(void)subbuf_size, (void)n_subbufs;
#endif
	usage();
	return 2;
}

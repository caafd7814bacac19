/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/* Helpers shared by the two consumers of tests/vm/bench. */
#ifndef RMBENCH_BENCH_H
#define RMBENCH_BENCH_H
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

static inline double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* CPU seconds (user + system) of the calling thread. */
static inline double thread_cpu_s(void)
{
	struct rusage ru;

	if (getrusage(RUSAGE_THREAD, &ru))
		return 0;
	return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
	       ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

/* Pin the calling thread to one CPU; exit with a message if it cannot. */
static inline void pin_self(int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	if (sched_setaffinity(0, sizeof(set), &set)) {
		fprintf(stderr, "sched_setaffinity(cpu %d): %s\n", cpu, strerror(errno));
		exit(1);
	}
}

/*
 * The result line both print, one per run, parsed by guest/bench.sh:
 * side, producers, payload, delivered records, dropped, elapsed seconds,
 * reader CPU seconds, payload bytes delivered, the sum (the sink), and the
 * transport's bytes per record (header + payload + alignment).
 */
static inline void print_result(const char *side, int producers, unsigned payload,
				uint64_t delivered, uint64_t dropped, double secs,
				double cpu, uint64_t sum, unsigned rec_bytes)
{
	double att = (double)delivered + (double)dropped;

	printf("result side=%s prod=%d payload=%u recs=%llu dropped=%llu secs=%.4f cpu=%.4f"
	       " rps=%.0f mbps=%.2f drop_pct=%.2f cpu_per_m=%.4f sum=%llu rec_bytes=%u\n",
	       side, producers, payload, (unsigned long long)delivered,
	       (unsigned long long)dropped, secs, cpu, delivered / secs,
	       delivered * (double)payload / secs / 1e6, att > 0 ? 100.0 * dropped / att : 0.0,
	       delivered ? cpu / delivered * 1e6 : 0.0, (unsigned long long)sum, rec_bytes);
}
#endif

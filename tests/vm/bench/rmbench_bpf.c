// SPDX-License-Identifier: MIT OR Apache-2.0
/*
 * rmbench_bpf: the BPF ring buffer side of tests/vm/bench.
 *
 * Producers: one thread pinned to each producer CPU (1 producer: CPU 1;
 * 2: CPUs 0 and 1) calls bpf_prog_test_run_opts() on rmbench_bpf.bpf.c's
 * SEC("syscall") program, 4096 records per call, for SECONDS. One ring
 * buffer of 2 MiB per producer (relaymap's 8 x 256 KiB per CPU).
 * Reader: the main thread, pinned to CPU 0, libbpf ring_buffer__poll(),
 * every record's data added up by bench_sum() (sum.c, shared with the
 * relaymap side).
 *
 *   rmbench_bpf PRODUCERS PAYLOAD SECONDS WAKE_EVERY
 *
 * WAKE_EVERY 0: default wakeups; N: BPF_RB_NO_WAKEUP and a forced wakeup
 * every N bytes of ring; "perf": the perf buffer instead (a raw_tp program,
 * bpf_perf_event_output(), 2 MiB per CPU, libbpf perf_buffer__poll(),
 * libbpf's default of one wakeup per record).
 */
#include "bench.h"
#include "sum.h"

#include <pthread.h>
#include <unistd.h>

#include <bpf/libbpf.h>
#include <bpf/bpf.h>

#include "rmbench_bpf.skel.h"

struct args {
	__u32 iters;
	__u32 size;
	__u64 wake_every;
	__u64 since_wake;
	__u64 ok;
	__u64 fail;
};

struct producer {
	pthread_t th;
	int cpu;
	int prog_fd;
	unsigned payload;
	uint64_t wake_every;
	uint64_t ok, fail;
	int err;
	int done;
	int perf;
};

static volatile int stop;
static uint64_t n_recs, sum;

static void *produce(void *arg)
{
	struct producer *p = arg;
	struct args a = { .iters = 4096, .size = p->payload, .wake_every = p->wake_every };

	pin_self(p->cpu);
	while (p->perf && !__atomic_load_n(&stop, __ATOMIC_RELAXED)) {
		__u64 in[2] = { 4096, p->payload };
		LIBBPF_OPTS(bpf_test_run_opts, opts, .ctx_in = in, .ctx_size_in = sizeof(in));

		if (bpf_prog_test_run_opts(p->prog_fd, &opts)) {
			p->err = errno;
			break;
		}
		p->ok += opts.retval;
		p->fail += 4096 - opts.retval;
	}
	while (!p->perf && !__atomic_load_n(&stop, __ATOMIC_RELAXED)) {
		LIBBPF_OPTS(bpf_test_run_opts, opts, .ctx_in = &a, .ctx_size_in = sizeof(a));

		a.ok = a.fail = 0;
		if (bpf_prog_test_run_opts(p->prog_fd, &opts)) {
			p->err = errno;
			break;
		}
		p->ok += a.ok;
		p->fail += a.fail;
	}
	__atomic_store_n(&p->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

static int on_record(void *ctx, void *data, size_t size)
{
	(void)ctx;
	sum += bench_sum(data, size);
	n_recs++;
	return 0;
}

static uint64_t perf_payload;

/* A perf sample's raw size is the payload plus alignment to 8 (u32 size + data). */
static void on_sample(void *ctx, int cpu, void *data, __u32 size)
{
	(void)ctx;
	(void)cpu;
	(void)size;
	sum += bench_sum(data, perf_payload);
	n_recs++;
}

static void on_lost(void *ctx, int cpu, __u64 n)
{
	(void)ctx;
	(void)cpu;
	(void)n;
}

int main(int argc, char **argv)
{
	struct producer prod[2] = { 0 };
	struct rmbench_bpf_bpf *skel;
	struct ring_buffer *rb = NULL;
	struct perf_buffer *pbuf = NULL;
	uint64_t ok = 0, fail = 0, wake_every;
	int perf;
	double secs, t0, t1 = 0, c0, c1;
	int producers, i, err;
	unsigned payload;

	if (argc != 5) {
		fprintf(stderr, "usage: rmbench_bpf PRODUCERS PAYLOAD SECONDS WAKE_EVERY\n");
		return 2;
	}
	producers = atoi(argv[1]);
	payload = (unsigned)atoi(argv[2]);
	secs = atof(argv[3]);
	perf = !strcmp(argv[4], "perf");
	wake_every = perf ? 0 : strtoull(argv[4], NULL, 0);
	perf_payload = (unsigned)atoi(argv[2]);
	if (producers < 1 || producers > 2 || payload > 2047) {
		fprintf(stderr, "rmbench_bpf: 1 or 2 producers, payload <= 2047\n");
		return 2;
	}
	pin_self(0);

	skel = rmbench_bpf_bpf__open();
	if (!skel) {
		fprintf(stderr, "rmbench_bpf: open: %s\n", strerror(errno));
		return 1;
	}
	bpf_map__set_max_entries(skel->maps.rb, producers * (2u << 20));
	err = rmbench_bpf_bpf__load(skel);
	if (err) {
		fprintf(stderr, "rmbench_bpf: load: %s\n", strerror(-err));
		return 1;
	}
	for (i = 0; i < 2048; i++)
		skel->bss->src[i] = (unsigned char)(i * 7 + 1);
	if (perf)
		pbuf = perf_buffer__new(bpf_map__fd(skel->maps.pb), 512 /* pages: 2 MiB per CPU */,
					on_sample, on_lost, NULL, NULL);
	else
		rb = ring_buffer__new(bpf_map__fd(skel->maps.rb), on_record, NULL, NULL);
	if (!rb && !pbuf) {
		fprintf(stderr, "rmbench_bpf: %s: %s\n", perf ? "perf_buffer__new" : "ring_buffer__new",
			strerror(errno));
		return 1;
	}

	c0 = thread_cpu_s();
	t0 = now_s();
	for (i = 0; i < producers; i++) {
		prod[i] = (struct producer){ .cpu = producers == 1 ? 1 : i,
					     .prog_fd = bpf_program__fd(perf ? skel->progs.produce_perf :
									       skel->progs.produce),
					     .payload = payload, .wake_every = wake_every, .perf = perf };
		if (pthread_create(&prod[i].th, NULL, produce, &prod[i])) {
			fprintf(stderr, "rmbench_bpf: pthread_create failed\n");
			return 1;
		}
	}
	for (;;) {
		int r = perf ? perf_buffer__poll(pbuf, 20) : ring_buffer__poll(rb, 20);

		if (r < 0 && r != -EINTR) {
			fprintf(stderr, "rmbench_bpf: poll: %s\n", strerror(-r));
			return 1;
		}
		/* No wakeup (BPF_RB_NO_WAKEUP between forced ones): look anyway. */
		if (r == 0)
			r = perf ? perf_buffer__consume(pbuf) : ring_buffer__consume(rb);
		if (r > 0)
			t1 = now_s();
		if (!stop && now_s() - t0 >= secs)
			__atomic_store_n(&stop, 1, __ATOMIC_RELAXED);
		if (stop) {
			int done = 0;

			/* Keep reading until every producer's last call returned. */
			for (i = 0; i < producers; i++)
				done += __atomic_load_n(&prod[i].done, __ATOMIC_ACQUIRE);
			if (done < producers)
				continue;
			for (i = 0; i < producers; i++)
				pthread_join(prod[i].th, NULL);
			/* The producers ended: take the rest. */
			if (perf) {
				uint64_t before = n_recs;

				perf_buffer__consume(pbuf);
				if (n_recs != before)
					t1 = now_s();
			} else if (ring_buffer__consume(rb) > 0) {
				t1 = now_s();
			}
			break;
		}
	}
	c1 = thread_cpu_s();
	for (i = 0; i < producers; i++) {
		if (prod[i].err) {
			fprintf(stderr, "rmbench_bpf: bpf_prog_test_run_opts: %s\n", strerror(prod[i].err));
			return 1;
		}
		ok += prod[i].ok;
		fail += prod[i].fail;
	}
	if (n_recs != ok) {
		fprintf(stderr, "rmbench_bpf: delivered %llu, written %llu\n", (unsigned long long)n_recs,
			(unsigned long long)ok);
		return 1;
	}
	/* Ring buffer: 8-byte header; perf: 8-byte perf_event_header + u32 size, 8-aligned. */
	print_result(perf ? "perf" : wake_every ? "bpf-wake" : "bpf", producers, payload, n_recs, fail,
		     t1 - t0, c1 - c0, sum,
		     perf ? (unsigned)((8 + 4 + payload + 7) & ~7u) : (unsigned)((8 + payload + 7) & ~7u));
	ring_buffer__free(rb);
	perf_buffer__free(pbuf);
	rmbench_bpf_bpf__destroy(skel);
	return 0;
}

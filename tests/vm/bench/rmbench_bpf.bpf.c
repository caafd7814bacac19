// SPDX-License-Identifier: GPL-2.0
/*
 * The BPF ring buffer producer of tests/vm/bench: a SEC("syscall")
 * program, run by bpf_prog_test_run_opts() from a thread pinned to each
 * producer CPU, loops bpf_loop() over bpf_ringbuf_output() of `size` bytes
 * of a static buffer (the same copy per record as rmbench_writer.ko's
 * relaymap_write()).
 *
 * Wakeups: wake_every == 0: libbpf's default (flags 0: the kernel wakes
 * the reader when it has caught up). wake_every > 0: BPF_RB_NO_WAKEUP on
 * every record and BPF_RB_FORCE_WAKEUP on the first record after
 * wake_every bytes of ring (8-byte header + data, 8-aligned) since the
 * last wakeup: one wakeup per relaymap sub-buffer's worth of bytes.
 * GPL: bpf_ringbuf_output and bpf_loop need no GPL, but the program is
 * kernel code next to the module.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 2 << 20); /* set by the loader: 2 MiB per producer */
} rb SEC(".maps");

/* The perf buffer comparator's per-CPU buffers (libbpf sizes it to the CPUs). */
struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(key_size, sizeof(int));
	__uint(value_size, sizeof(int));
} pb SEC(".maps");

/* The data every record copies (in .bss: a map value the verifier bounds). */
unsigned char src[2048];

/* In/out, one per bpf_prog_test_run_opts() call (ctx_in, copied back). */
struct args {
	__u32 iters;		/* in: records to try */
	__u32 size;		/* in: data bytes per record, <= 2047 */
	__u64 wake_every;	/* in: 0 = default wakeups, else bytes per forced wakeup */
	__u64 since_wake;	/* in/out: bytes since the last forced wakeup */
	__u64 ok;		/* out: records written */
	__u64 fail;		/* out: records dropped (ring full) */
};

struct loop_ctx {
	__u64 size;
	__u64 step;
	__u64 wake_every;
	__u64 since_wake;
	__u64 ok;
	__u64 fail;
};

static long one(__u32 i, void *data)
{
	struct loop_ctx *c = data;
	__u64 flags = 0;
	__u32 sz = c->size & 2047;

	if (c->wake_every)
		flags = c->since_wake >= c->wake_every ? BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP;
	if (bpf_ringbuf_output(&rb, src, sz, flags)) {
		c->fail++;	/* a failed forced wakeup is tried again on the next record */
	} else {
		c->ok++;
		c->since_wake = flags == BPF_RB_FORCE_WAKEUP ? 0 : c->since_wake + c->step;
	}
	return 0;
}

SEC("syscall")
int produce(struct args *a)
{
	struct loop_ctx c = {
		.size = a->size,
		.step = (a->size + 8 + 7) & ~7ULL,
		.wake_every = a->wake_every,
		.since_wake = a->since_wake,
	};

	bpf_loop(a->iters, one, &c, 0);
	a->since_wake = c.since_wake;
	a->ok = c.ok;
	a->fail = c.fail;
	return 0;
}

/*
 * The perf buffer: bpf_perf_event_output() is not allowed in syscall
 * programs, so the same loop runs as a raw_tp program through
 * bpf_prog_test_run_opts() (on the calling CPU, preemption off). ctx_in
 * is { iters, size }; the return value is the records written.
 */
struct perf_ctx {
	void *ctx;
	__u64 size;
	__u64 ok;
};

static long one_perf(__u32 i, void *data)
{
	struct perf_ctx *c = data;

	if (!bpf_perf_event_output(c->ctx, &pb, BPF_F_CURRENT_CPU, src, c->size & 2047))
		c->ok++;
	return 0;
}

SEC("raw_tp")
int produce_perf(__u64 *ctx)
{
	struct perf_ctx c = { .ctx = ctx, .size = ctx[1] };

	bpf_loop(ctx[0] & 0xffffff, one_perf, &c, 0);
	return c.ok;
}

char LICENSE[] SEC("license") = "GPL";

/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/*
 * api_test.c - the C API's contract from C: version macros vs the library,
 * a NULL for every required pointer is RELAYMAP_ERR_NULL_ARGUMENT (never a
 * crash), errors carry a message and errno, views and batches follow their
 * state rules, corrupt record framing is an error. Built with
 * -fsanitize=address and run under valgrind by tests/host/60-ffi.sh;
 * the channel part needs RELAYMAP_TESTING (library feature `sim`).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "relaymap.h"

static int failures, checks;

#define EXPECT(cond)                                                         \
	do {                                                                 \
		checks++;                                                    \
		if (!(cond)) {                                               \
			failures++;                                          \
			fprintf(stderr, "%s:%d: FAILED: %s (last error: %s)\n", \
				__FILE__, __LINE__, #cond, relaymap_last_error()); \
		}                                                            \
	} while (0)

#define EXPECT_RC(call, want) EXPECT((call) == (want))
#define EXPECT_NULL_ARG(call, arg)                                            \
	do {                                                                  \
		EXPECT_RC(call, RELAYMAP_ERR_NULL_ARGUMENT);                  \
		EXPECT(strstr(relaymap_last_error(), "`" arg "` is NULL") != NULL); \
	} while (0)

#define STR2(x) #x
#define STR(x) STR2(x)

static void test_version(void)
{
	char want[64];

	snprintf(want, sizeof(want), "%d.%d.%d", RELAYMAP_VERSION_MAJOR,
		 RELAYMAP_VERSION_MINOR, RELAYMAP_VERSION_PATCH);
	EXPECT(strcmp(want, RELAYMAP_VERSION_STRING) == 0);
	EXPECT(strcmp(relaymap_version(), RELAYMAP_VERSION_STRING) == 0);
	printf("version %s (header %s)\n", relaymap_version(), RELAYMAP_VERSION_STRING);
}

static void test_errors_without_channel(void)
{
	relaymap_channel *ch = (relaymap_channel *)0x1; /* must become NULL */
	char buf[16];
	size_t n;

	EXPECT(strcmp(relaymap_result_name(RELAYMAP_OK), "RELAYMAP_OK") == 0);
	EXPECT(strcmp(relaymap_result_name(12345), "RELAYMAP_ERR_UNKNOWN_CODE") == 0);

	EXPECT_RC(relaymap_channel_open("/nonexistent/relaymap/x", 0, &ch),
		  RELAYMAP_ERR_NOT_A_CHANNEL);
	EXPECT(ch == NULL);
	EXPECT(strstr(relaymap_last_error(), "relaymap_channel_open: /nonexistent/relaymap/x") != NULL);
	EXPECT(relaymap_last_os_error() == 0 || relaymap_last_os_error() == ENOENT);

	/* copy: truncated, NUL-terminated, full length returned */
	n = relaymap_last_error_copy(buf, sizeof(buf));
	EXPECT(n == strlen(relaymap_last_error()));
	EXPECT(strlen(buf) == sizeof(buf) - 1);
	EXPECT(strncmp(buf, relaymap_last_error(), sizeof(buf) - 1) == 0);
	EXPECT(relaymap_last_error_copy(NULL, 0) == n);

	EXPECT_RC(relaymap_channel_open("/tmp", 0x80, &ch), RELAYMAP_ERR_INVALID_ARGUMENT);
	EXPECT_RC(relaymap_channel_open("", 0, &ch), RELAYMAP_ERR_INVALID_ARGUMENT);
	EXPECT_RC(relaymap_channel_open("/tmp", 0, &ch), RELAYMAP_ERR_NOT_A_CHANNEL);
	EXPECT(strstr(relaymap_last_error(), "no control file") != NULL);

	/* A NULL for every required pointer. */
	relaymap_view v;
	relaymap_batch b;
	relaymap_loss l;
	relaymap_channel_stats s;
	relaymap_channel_info info;
	relaymap_record_iter it;
	relaymap_record_view r;
	relaymap_loadgen_record lg;
	bool flag;
	int32_t fd;
	uint32_t cpus[4];

	EXPECT_NULL_ARG(relaymap_channel_open(NULL, 0, &ch), "dir");
	EXPECT_NULL_ARG(relaymap_channel_open("/tmp", 0, NULL), "out");
	EXPECT_NULL_ARG(relaymap_channel_open_cpus("/tmp", 0, NULL, 2, &ch), "cpus");
	EXPECT_NULL_ARG(relaymap_channel_get_info(NULL, &info), "ch");
	EXPECT_NULL_ARG(relaymap_channel_cpus(NULL, cpus, 4, &n), "ch");
	EXPECT_NULL_ARG(relaymap_channel_fd(NULL, &fd), "ch");
	EXPECT_NULL_ARG(relaymap_channel_wait(NULL, 0, &flag), "ch");
	EXPECT_NULL_ARG(relaymap_channel_next(NULL, -1, &v, &flag), "ch");
	EXPECT_NULL_ARG(relaymap_view_release(NULL, &v), "ch");
	EXPECT_NULL_ARG(relaymap_channel_acquire(NULL, 0, &b), "ch");
	EXPECT_NULL_ARG(relaymap_batch_view(NULL, 0, &v), "ch");
	EXPECT_NULL_ARG(relaymap_batch_release(NULL), "ch");
	EXPECT_NULL_ARG(relaymap_batch_release_until(NULL, 0), "ch");
	EXPECT_NULL_ARG(relaymap_channel_flush(NULL, -1), "ch");
	EXPECT_NULL_ARG(relaymap_channel_is_drained(NULL, &flag), "ch");
	EXPECT_NULL_ARG(relaymap_channel_loss(NULL, -1, &l), "ch");
	EXPECT_NULL_ARG(relaymap_channel_get_stats(NULL, -1, &s), "ch");
	EXPECT_NULL_ARG(relaymap_channel_reset(NULL), "ch");
	EXPECT_NULL_ARG(relaymap_record_iter_init(NULL, &v), "it");
	EXPECT_NULL_ARG(relaymap_record_iter_init(&it, NULL), "view");
	EXPECT_NULL_ARG(relaymap_record_iter_next(NULL, &r, &flag), "it");
	EXPECT_NULL_ARG(relaymap_loadgen_parse(NULL, &lg, &flag), "rec");
	relaymap_channel_close(NULL); /* no-op */
#ifdef RELAYMAP_TESTING
	relaymap_sim *sim = NULL;

	EXPECT_NULL_ARG(relaymap_sim_create(NULL, 4096, 2, 1, false, NULL), "out");
	EXPECT_NULL_ARG(relaymap_sim_write_loadgen(NULL, 0, 0, 64, &flag), "sim");
	EXPECT_NULL_ARG(relaymap_sim_write_record(NULL, 0, 0x100, NULL, 0, &flag), "sim");
	EXPECT_NULL_ARG(relaymap_sim_try_write_loadgen(NULL, 0, 0, 64, &flag), "sim");
	EXPECT_NULL_ARG(relaymap_sim_try_write_record(NULL, 0, 0x100, NULL, 0, &flag), "sim");
	EXPECT_NULL_ARG(relaymap_sim_flush(NULL, -1), "sim");
	EXPECT_NULL_ARG(relaymap_sim_stats(NULL, -1, &s), "sim");
	EXPECT(relaymap_sim_dir(NULL) == NULL);
	relaymap_sim_free(NULL);
	EXPECT_RC(relaymap_sim_create(NULL, 100, 2, 1, false, &sim), RELAYMAP_ERR_SIM);
	EXPECT(sim == NULL);
#endif
}

static void test_corrupt_framing(void)
{
	/* A record claiming 8 bytes (less than its own 16-byte header). */
	uint64_t payload[4] = { 0 };
	relaymap_view v;
	relaymap_record_iter it;
	relaymap_record_view r;
	bool got = true;

	memset(&v, 0, sizeof(v));
	payload[0] = 8; /* size (little-endian u32), type 0 */
	v.data = (const uint8_t *)payload;
	v.len = sizeof(payload);
	EXPECT_RC(relaymap_record_iter_init(&it, &v), RELAYMAP_OK);
	EXPECT_RC(relaymap_record_iter_next(&it, &r, &got), RELAYMAP_ERR_CORRUPT);
	EXPECT(!got);
	EXPECT(strstr(relaymap_last_error(), "offset 0") != NULL ||
	       strstr(relaymap_last_error(), "record") != NULL);
	/* the iteration is over */
	EXPECT_RC(relaymap_record_iter_next(&it, &r, &got), RELAYMAP_OK);
	EXPECT(!got);
}

#ifdef RELAYMAP_TESTING
static int waiter_done;

static void *wait_long(void *ch)
{
	bool ready;
	/* Holds the handle for up to 3 s (nothing is written). */
	relaymap_result rc = relaymap_channel_wait(ch, 3000, &ready);

	__atomic_store_n(&waiter_done, 1, __ATOMIC_RELEASE);
	return (void *)(intptr_t)rc;
}

/* A handle is for one thread at a time: a second thread gets BUSY. Polls
 * until the waiter is inside its call (slow under valgrind or load). */
static void test_busy(relaymap_channel *ch)
{
	relaymap_channel_info info;
	struct timespec ts = { 0, 5 * 1000 * 1000 };
	relaymap_result rc = RELAYMAP_OK;
	pthread_t t;
	void *wrc;

	EXPECT(pthread_create(&t, NULL, wait_long, ch) == 0);
	while (!__atomic_load_n(&waiter_done, __ATOMIC_ACQUIRE)) {
		rc = relaymap_channel_get_info(ch, &info);
		if (rc != RELAYMAP_OK)
			break;
		nanosleep(&ts, NULL);
	}
	EXPECT(rc == RELAYMAP_ERR_BUSY);
	EXPECT(strstr(relaymap_last_error(), "another thread") != NULL);
	pthread_join(t, &wrc);
	EXPECT((relaymap_result)(intptr_t)wrc == RELAYMAP_OK);
	EXPECT_RC(relaymap_channel_get_info(ch, &info), RELAYMAP_OK);
}

static void test_channel(void)
{
	relaymap_sim *sim = NULL;
	relaymap_channel *ch = NULL;
	relaymap_channel_info info;
	relaymap_view v, v2;
	relaymap_batch b;
	relaymap_loss l;
	relaymap_channel_stats s;
	relaymap_record_iter it;
	relaymap_record_view r;
	relaymap_loadgen_record lg;
	uint32_t cpus[4], one = 1, bad = 7;
	size_t n = 0;
	bool got, w, valid, drained;
	int32_t fd = -1;
	uint64_t seq;
	static const char hello[] = "hello";

	EXPECT_RC(relaymap_sim_create(NULL, 4096, 4, 2, false, &sim), RELAYMAP_OK);
	EXPECT(sim && relaymap_sim_dir(sim) != NULL);
	EXPECT_RC(relaymap_channel_open_cpus(relaymap_sim_dir(sim), 0, &bad, 1, &ch),
		  RELAYMAP_ERR_UNKNOWN_CPU);
	EXPECT_RC(relaymap_channel_open_cpus(relaymap_sim_dir(sim), 0, &one, 1, &ch), RELAYMAP_OK);
	EXPECT_RC(relaymap_channel_cpus(ch, cpus, 4, &n), RELAYMAP_OK);
	EXPECT(n == 1 && cpus[0] == 1);
	relaymap_channel_close(ch);
	ch = NULL;

	EXPECT_RC(relaymap_channel_open(relaymap_sim_dir(sim), RELAYMAP_OPEN_POPULATE, &ch),
		  RELAYMAP_OK);
	EXPECT_RC(relaymap_channel_get_info(ch, &info), RELAYMAP_OK);
	EXPECT(info.subbuf_size == 4096 && info.n_subbufs == 4 && info.n_cpus == 2);
	EXPECT(!info.overwrite && info.abi_version == RELAYMAP_ABI_VERSION);
	EXPECT_RC(relaymap_channel_cpus(ch, cpus, 1, &n), RELAYMAP_ERR_BUFFER_TOO_SMALL);
	EXPECT(n == 2);
	EXPECT_RC(relaymap_channel_cpus(ch, NULL, 0, &n), RELAYMAP_ERR_BUFFER_TOO_SMALL);
	EXPECT_RC(relaymap_channel_cpus(ch, cpus, 4, &n), RELAYMAP_OK);
	EXPECT(n == 2 && cpus[0] == 0 && cpus[1] == 1);
	EXPECT_RC(relaymap_channel_fd(ch, &fd), RELAYMAP_OK);
	EXPECT(fd >= 0);

	/* Out-pointer NULLs with a live channel. */
	EXPECT_NULL_ARG(relaymap_channel_get_info(ch, NULL), "info");
	EXPECT_NULL_ARG(relaymap_channel_cpus(ch, cpus, 4, NULL), "n");
	EXPECT_NULL_ARG(relaymap_channel_cpus(ch, NULL, 4, &n), "cpus");
	EXPECT_NULL_ARG(relaymap_channel_wait(ch, 0, NULL), "ready");
	EXPECT_NULL_ARG(relaymap_channel_next(ch, -1, NULL, &got), "view");
	EXPECT_NULL_ARG(relaymap_channel_next(ch, -1, &v, NULL), "got");
	EXPECT_NULL_ARG(relaymap_view_release(ch, NULL), "view");
	EXPECT_NULL_ARG(relaymap_channel_acquire(ch, 0, NULL), "batch");
	EXPECT_NULL_ARG(relaymap_channel_is_drained(ch, NULL), "drained");
	EXPECT_NULL_ARG(relaymap_channel_loss(ch, -1, NULL), "loss");
	EXPECT_NULL_ARG(relaymap_channel_get_stats(ch, -1, NULL), "stats");

	/* Empty channel. */
	EXPECT_RC(relaymap_channel_wait(ch, 0, &got), RELAYMAP_OK);
	EXPECT(!got);
	EXPECT_RC(relaymap_channel_next(ch, RELAYMAP_ALL_CPUS, &v, &got), RELAYMAP_OK);
	EXPECT(!got);
	EXPECT_RC(relaymap_channel_next(ch, 5, &v, &got), RELAYMAP_ERR_UNKNOWN_CPU);
	EXPECT_RC(relaymap_channel_next(ch, -7, &v, &got), RELAYMAP_ERR_INVALID_ARGUMENT);
	EXPECT_RC(relaymap_channel_flush(ch, -2), RELAYMAP_ERR_INVALID_ARGUMENT);
	EXPECT_RC(relaymap_channel_loss(ch, 9, &l), RELAYMAP_ERR_UNKNOWN_CPU);
	EXPECT_RC(relaymap_batch_release(ch), RELAYMAP_ERR_STATE);
	EXPECT_RC(relaymap_batch_view(ch, 0, &v), RELAYMAP_ERR_STATE);

	/* Two sub-buffers on cpu 0: a user record, then load generator ones. */
	EXPECT_RC(relaymap_sim_write_record(sim, 0, RELAYMAP_REC_USER, (const uint8_t *)hello,
					    5, &w), RELAYMAP_OK);
	EXPECT(w);
	EXPECT_RC(relaymap_sim_flush(sim, 0), RELAYMAP_OK);
	for (seq = 0; seq < 3; seq++)
		EXPECT_RC(relaymap_sim_write_loadgen(sim, 0, seq, 64, &w), RELAYMAP_OK);
	EXPECT_RC(relaymap_channel_flush(ch, RELAYMAP_ALL_CPUS), RELAYMAP_OK);
	EXPECT_RC(relaymap_channel_wait(ch, 1000, &got), RELAYMAP_OK);
	EXPECT(got);

	EXPECT_RC(relaymap_channel_next(ch, RELAYMAP_ALL_CPUS, &v, &got), RELAYMAP_OK);
	EXPECT(got && v.cpu == 0 && v.seq == 0 && (v.flags & RELAYMAP_SB_FLUSHED));
	EXPECT(v.len == 24 && v.payload_size == 24);
	EXPECT_RC(relaymap_record_iter_init(&it, &v), RELAYMAP_OK);
	EXPECT_RC(relaymap_record_iter_next(&it, &r, &got), RELAYMAP_OK);
	EXPECT(got && r.rec_type == RELAYMAP_REC_USER && r.len == 5 && r.size == 21);
	EXPECT(memcmp(r.data, "hello", 5) == 0);
	EXPECT_RC(relaymap_loadgen_parse(&r, &lg, &valid), RELAYMAP_OK);
	EXPECT(!valid);
	EXPECT_RC(relaymap_record_iter_next(&it, &r, &got), RELAYMAP_OK);
	EXPECT(!got);
	EXPECT_RC(relaymap_batch_release(ch), RELAYMAP_ERR_STATE); /* a view, not a batch */
	v2 = v;
	v2.seq = 99;
	EXPECT_RC(relaymap_view_release(ch, &v2), RELAYMAP_ERR_STATE);
	EXPECT_RC(relaymap_view_release(ch, &v), RELAYMAP_OK);
	EXPECT_RC(relaymap_view_release(ch, &v), RELAYMAP_ERR_STATE); /* twice */

	/* The second sub-buffer as a batch. */
	EXPECT_RC(relaymap_channel_acquire(ch, 0, &b), RELAYMAP_OK);
	EXPECT(b.len == 1 && b.seq_begin == 1 && b.seq_end == 2 && b.payload_bytes == 192);
	EXPECT_RC(relaymap_batch_view(ch, 1, &v), RELAYMAP_ERR_INVALID_ARGUMENT);
	EXPECT_RC(relaymap_batch_view(ch, 0, &v), RELAYMAP_OK);
	EXPECT_RC(relaymap_view_release(ch, &v), RELAYMAP_ERR_STATE); /* batch view */
	EXPECT_RC(relaymap_record_iter_init(&it, &v), RELAYMAP_OK);
	for (seq = 0;; seq++) {
		EXPECT_RC(relaymap_record_iter_next(&it, &r, &got), RELAYMAP_OK);
		if (!got)
			break;
		EXPECT_RC(relaymap_loadgen_parse(&r, &lg, &valid), RELAYMAP_OK);
		EXPECT(valid && lg.seq == seq && lg.cpu == 0 && lg.fill_len == 32);
	}
	EXPECT(seq == 3);
	/* Keep it: released until its own start, delivered again. */
	EXPECT_RC(relaymap_batch_release_until(ch, 1), RELAYMAP_OK);
	EXPECT_RC(relaymap_channel_is_drained(ch, &drained), RELAYMAP_OK);
	EXPECT(!drained);
	EXPECT_RC(relaymap_channel_acquire(ch, 0, &b), RELAYMAP_OK);
	EXPECT(b.len == 1 && b.seq_begin == 1);
	EXPECT_RC(relaymap_batch_release(ch), RELAYMAP_OK);
	EXPECT_RC(relaymap_channel_is_drained(ch, &drained), RELAYMAP_OK);
	EXPECT(drained);

	/* Fill cpu 1 with nobody reading: drops are counted exactly. */
	for (seq = 0; seq < 400; seq++)
		EXPECT_RC(relaymap_sim_write_loadgen(sim, 1, seq, 64, &w), RELAYMAP_OK);
	EXPECT_RC(relaymap_sim_stats(sim, 1, &s), RELAYMAP_OK);
	EXPECT(s.records_written + s.records_dropped == 400 && s.records_dropped > 0);
	/* Still full: the try variants refuse without counting a drop. */
	{
		uint64_t before = s.records_dropped;

		EXPECT_RC(relaymap_sim_try_write_loadgen(sim, 1, 400, 64, &w), RELAYMAP_OK);
		EXPECT(!w);
		EXPECT_RC(relaymap_sim_try_write_record(sim, 1, RELAYMAP_REC_USER,
							(const uint8_t *)hello, 5, &w), RELAYMAP_OK);
		EXPECT(!w);
		EXPECT_RC(relaymap_sim_stats(sim, 1, &s), RELAYMAP_OK);
		EXPECT(s.records_dropped == before);
		EXPECT(s.records_written + s.records_dropped == 400);
	}
	EXPECT_RC(relaymap_channel_acquire(ch, 1, &b), RELAYMAP_OK);
	EXPECT(b.len > 0);
	EXPECT_RC(relaymap_batch_release(ch), RELAYMAP_OK);
	EXPECT_RC(relaymap_channel_loss(ch, 1, &l), RELAYMAP_OK);
	EXPECT(l.records_dropped == s.records_dropped);
	EXPECT_RC(relaymap_channel_get_stats(ch, RELAYMAP_ALL_CPUS, &s), RELAYMAP_OK);
	EXPECT(s.loss.records_dropped == l.records_dropped);
	EXPECT(s.records_written == 1 + 3 + (400 - l.records_dropped));

	test_busy(ch);

	/* Reset restarts the counters. */
	EXPECT_RC(relaymap_channel_reset(ch), RELAYMAP_OK);
	EXPECT_RC(relaymap_channel_get_stats(ch, RELAYMAP_ALL_CPUS, &s), RELAYMAP_OK);
	EXPECT(s.records_written == 0 && s.resets == 1);

	/* Closing with a view outstanding is fine (not handed back). */
	EXPECT_RC(relaymap_sim_write_loadgen(sim, 0, 0, 64, &w), RELAYMAP_OK);
	EXPECT_RC(relaymap_channel_flush(ch, 0), RELAYMAP_OK);
	EXPECT_RC(relaymap_channel_next(ch, 0, &v, &got), RELAYMAP_OK);
	EXPECT(got);
	relaymap_channel_close(ch);
	relaymap_sim_free(sim);
}
#endif

#ifdef RELAYMAP_TESTING
/* Flight-recorder mode: the writer laps the reader; views are validated
 * copies of the newest sub-buffers, laps are counted exactly. */
static void test_overwrite(void)
{
	relaymap_sim *sim = NULL;
	relaymap_channel *ch = NULL;
	relaymap_channel_info info;
	relaymap_batch b;
	relaymap_view v;
	relaymap_loss l;
	relaymap_record_iter it;
	relaymap_record_view r;
	relaymap_loadgen_record lg;
	uint64_t seq, last = 0, records = 0;
	bool w, got, valid;
	size_t i;

	EXPECT_RC(relaymap_sim_create(NULL, 4096, 4, 1, true, &sim), RELAYMAP_OK);
	EXPECT_RC(relaymap_channel_open(relaymap_sim_dir(sim), 0, &ch), RELAYMAP_OK);
	EXPECT_RC(relaymap_channel_get_info(ch, &info), RELAYMAP_OK);
	EXPECT(info.overwrite);
	for (seq = 0; seq < 1000; seq++) { /* 64 KB into 16 KB */
		EXPECT_RC(relaymap_sim_write_loadgen(sim, 0, seq, 64, &w), RELAYMAP_OK);
		EXPECT(w);
	}
	EXPECT_RC(relaymap_sim_flush(sim, RELAYMAP_ALL_CPUS), RELAYMAP_OK);
	EXPECT_RC(relaymap_channel_acquire(ch, 0, &b), RELAYMAP_OK);
	EXPECT(b.len > 0 && b.len <= 3 && b.lapped > 0);
	EXPECT(b.seq_begin == 0 && b.len + b.lapped + b.corrupt == b.seq_end);
	for (i = 0; i < b.len; i++) {
		EXPECT_RC(relaymap_batch_view(ch, i, &v), RELAYMAP_OK);
		EXPECT_RC(relaymap_record_iter_init(&it, &v), RELAYMAP_OK);
		while (relaymap_record_iter_next(&it, &r, &got) == RELAYMAP_OK && got) {
			EXPECT_RC(relaymap_loadgen_parse(&r, &lg, &valid), RELAYMAP_OK);
			EXPECT(valid && (records == 0 || lg.seq == last + 1));
			last = lg.seq;
			records++;
		}
	}
	EXPECT(last == 999 && records > 0);
	EXPECT_RC(relaymap_batch_release(ch), RELAYMAP_OK);
	EXPECT_RC(relaymap_channel_loss(ch, 0, &l), RELAYMAP_OK);
	EXPECT(l.subbufs_lapped == b.lapped && l.records_dropped == 0);
	relaymap_channel_close(ch);
	relaymap_sim_free(sim);
}
#endif

int main(void)
{
	test_version();
	test_errors_without_channel();
	test_corrupt_framing();
#ifdef RELAYMAP_TESTING
	test_channel();
	test_overwrite();
#else
	printf("channel tests skipped (RELAYMAP_TESTING not defined)\n");
#endif
	printf("api_test: %d checks, %d failed\n", checks, failures);
	return failures ? 1 : 0;
}

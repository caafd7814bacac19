/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/*
 * api_test.c - the C API's contract from C: version macros vs the library,
 * result names vs the header, a NULL for every required pointer is
 * RELAYMAP_ERR_NULL_ARGUMENT (never a crash), errors carry a message and
 * errno (module not loaded, not a channel, busy with the holder's pid),
 * readers follow their state rules (one outstanding batch, exclusive
 * claims, one thread at a time), next() costs O(1) control calls per
 * sub-buffer, corrupt record framing is an error. Built with
 * -fsanitize=address and run under valgrind by tests/host/60-ffi.sh; the
 * channel part needs RELAYMAP_TESTING (library feature `sim`).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

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
#define HAS(needle) (strstr(relaymap_last_error(), (needle)) != NULL)

static void test_version(void)
{
	char want[64];

	snprintf(want, sizeof(want), "%d.%d.%d", RELAYMAP_VERSION_MAJOR,
		 RELAYMAP_VERSION_MINOR, RELAYMAP_VERSION_PATCH);
	EXPECT(strcmp(want, RELAYMAP_VERSION_STRING) == 0);
	EXPECT(strcmp(relaymap_version(), RELAYMAP_VERSION_STRING) == 0);
	printf("version %s (header %s)\n", relaymap_version(), RELAYMAP_VERSION_STRING);
}

/* Every code of the enum has its own name. */
static void test_result_names(void)
{
#define NAME(code) EXPECT(strcmp(relaymap_result_name(code), #code) == 0)
	NAME(RELAYMAP_OK);
	NAME(RELAYMAP_ERR_NULL_ARGUMENT);
	NAME(RELAYMAP_ERR_INVALID_ARGUMENT);
	NAME(RELAYMAP_ERR_PANIC);
	NAME(RELAYMAP_ERR_BUSY);
	NAME(RELAYMAP_ERR_STATE);
	NAME(RELAYMAP_ERR_BUFFER_TOO_SMALL);
	NAME(RELAYMAP_ERR_HANDLE_IN_USE);
	NAME(RELAYMAP_ERR_NOT_A_CHANNEL);
	NAME(RELAYMAP_ERR_PERMISSION_DENIED);
	NAME(RELAYMAP_ERR_IO);
	NAME(RELAYMAP_ERR_ABI_MISMATCH);
	NAME(RELAYMAP_ERR_GEOMETRY);
	NAME(RELAYMAP_ERR_IOCTL);
	NAME(RELAYMAP_ERR_CHANNEL_CLOSED);
	NAME(RELAYMAP_ERR_UNKNOWN_CPU);
	NAME(RELAYMAP_ERR_CORRUPT);
	NAME(RELAYMAP_ERR_SIM);
	NAME(RELAYMAP_ERR_MODULE_NOT_LOADED);
	NAME(RELAYMAP_ERR_NO_SUCH_CHANNEL);
	NAME(RELAYMAP_ERR_LOCKDOWN);
	NAME(RELAYMAP_ERR_DEBUGFS_NOT_MOUNTED);
	NAME(RELAYMAP_ERR_OTHER);
#undef NAME
	EXPECT(strcmp(relaymap_result_name(12345), "RELAYMAP_ERR_UNKNOWN_CODE") == 0);
	EXPECT(strcmp(relaymap_result_name(-1), "RELAYMAP_ERR_UNKNOWN_CODE") == 0);
}

static void test_errors_without_channel(void)
{
	relaymap_channel *ch = (relaymap_channel *)0x1; /* must become NULL */
	char buf[16], names[2 * RELAYMAP_NAME_MAX];
	size_t n;
	uint32_t abi;

	/* No /dev/relaymap (RELAYMAP_DEVICE points nowhere): module not loaded. */
	EXPECT(setenv("RELAYMAP_DEVICE", "/nonexistent/relaymap", 1) == 0);
	EXPECT_RC(relaymap_channel_open("demo", &ch), RELAYMAP_ERR_MODULE_NOT_LOADED);
	EXPECT(ch == NULL);
	EXPECT(HAS("relaymap_channel_open: "));
	EXPECT(HAS("/nonexistent/relaymap"));
	EXPECT(HAS("not loaded"));
	EXPECT_RC(relaymap_list_channels(names, 2, &n), RELAYMAP_ERR_MODULE_NOT_LOADED);
	EXPECT_RC(relaymap_device_abi_version(&abi), RELAYMAP_ERR_MODULE_NOT_LOADED);
	EXPECT(unsetenv("RELAYMAP_DEVICE") == 0);

	ch = (relaymap_channel *)0x1;
	EXPECT_RC(relaymap_channel_open_path("/nonexistent/relaymap/x", &ch),
		  RELAYMAP_ERR_NOT_A_CHANNEL);
	EXPECT(ch == NULL);
	EXPECT(HAS("relaymap_channel_open_path: /nonexistent/relaymap/x"));
	EXPECT(relaymap_last_os_error() == 0 || relaymap_last_os_error() == ENOENT);

	/* copy: truncated, NUL-terminated, full length returned */
	n = relaymap_last_error_copy(buf, sizeof(buf));
	EXPECT(n == strlen(relaymap_last_error()));
	EXPECT(strlen(buf) == sizeof(buf) - 1);
	EXPECT(strncmp(buf, relaymap_last_error(), sizeof(buf) - 1) == 0);
	EXPECT(relaymap_last_error_copy(NULL, 0) == n);

	EXPECT_RC(relaymap_channel_open("", &ch), RELAYMAP_ERR_INVALID_ARGUMENT);
	EXPECT_RC(relaymap_channel_open_path("", &ch), RELAYMAP_ERR_INVALID_ARGUMENT);
	EXPECT_RC(relaymap_channel_open_path("/tmp", &ch), RELAYMAP_ERR_NOT_A_CHANNEL);

	/* A NULL for every required pointer. */
	relaymap_subbuf sb;
	relaymap_batch b;
	relaymap_loss l;
	relaymap_channel_stats s;
	relaymap_channel_info info;
	relaymap_cpu_cursor cur;
	relaymap_record_view r;
	relaymap_loadgen_record lg;
	relaymap_reader *rd;
	const relaymap_reader *rds[1] = { NULL };
	relaymap_slice empty = { NULL, 0 };
	bool flag;
	int32_t fd;
	uint32_t cpus[4], cpu;
	uint64_t ops;

	EXPECT_NULL_ARG(relaymap_channel_open(NULL, &ch), "name");
	EXPECT_NULL_ARG(relaymap_channel_open("demo", NULL), "out");
	EXPECT_NULL_ARG(relaymap_channel_open_path(NULL, &ch), "dir");
	EXPECT_NULL_ARG(relaymap_channel_open_path("/tmp", NULL), "out");
	EXPECT_NULL_ARG(relaymap_channel_get_info(NULL, &info), "ch");
	EXPECT_NULL_ARG(relaymap_channel_cpus(NULL, cpus, 4, &n), "ch");
	EXPECT_NULL_ARG(relaymap_channel_refresh_cpus(NULL, cpus, 4, &n), "ch");
	EXPECT_NULL_ARG(relaymap_channel_cursor(NULL, 0, &cur), "ch");
	EXPECT_NULL_ARG(relaymap_channel_cursors(NULL, &cur, 1, &n), "ch");
	EXPECT_NULL_ARG(relaymap_channel_get_stats(NULL, -1, &s), "ch");
	EXPECT_NULL_ARG(relaymap_channel_flush(NULL, -1), "ch");
	EXPECT_NULL_ARG(relaymap_channel_reset(NULL), "ch");
	EXPECT_NULL_ARG(relaymap_channel_control_ops(NULL, &ops), "ch");
	EXPECT_NULL_ARG(relaymap_reader_open(NULL, 0, &rd), "ch");
	EXPECT_NULL_ARG(relaymap_channel_open_readers(NULL, &rd, 1, &n), "ch");
	EXPECT_NULL_ARG(relaymap_list_channels(names, 2, NULL), "n");
	EXPECT_NULL_ARG(relaymap_list_channels(NULL, 2, &n), "names");
	EXPECT_NULL_ARG(relaymap_device_abi_version(NULL), "version");
	EXPECT_NULL_ARG(relaymap_reader_cpu(NULL, &cpu), "rd");
	EXPECT_NULL_ARG(relaymap_reader_fd(NULL, &fd), "rd");
	EXPECT_NULL_ARG(relaymap_reader_wait(NULL, 0, &flag), "rd");
	EXPECT_NULL_ARG(relaymap_readers_wait(NULL, 1, 0, NULL, &n), "readers");
	EXPECT_NULL_ARG(relaymap_readers_wait(rds, 1, 0, NULL, &n), "readers[0]");
	EXPECT_NULL_ARG(relaymap_readers_wait(rds, 1, 0, NULL, NULL), "n_ready");
	EXPECT_NULL_ARG(relaymap_reader_next(NULL, &sb, &flag), "rd");
	EXPECT_NULL_ARG(relaymap_reader_acquire(NULL, 1, &b), "rd");
	EXPECT_NULL_ARG(relaymap_reader_release(NULL), "rd");
	EXPECT_NULL_ARG(relaymap_reader_release_until(NULL, 0), "rd");
	EXPECT_NULL_ARG(relaymap_reader_cursor(NULL, &cur), "rd");
	EXPECT_NULL_ARG(relaymap_reader_loss(NULL, &l), "rd");
	EXPECT_NULL_ARG(relaymap_reader_is_drained(NULL, &flag), "rd");
	EXPECT_NULL_ARG(relaymap_reader_control_ops(NULL, &ops), "rd");
	EXPECT_NULL_ARG(relaymap_record_iter_init(NULL, empty), "it");
	EXPECT_NULL_ARG(relaymap_record_iter_next(NULL, &r, &flag), "it");
	EXPECT_NULL_ARG(relaymap_loadgen_parse(NULL, &lg, &flag), "rec");
	/* Zero readers: nothing to wait on, nothing ready. */
	EXPECT_RC(relaymap_readers_wait(NULL, 0, 0, NULL, &n), RELAYMAP_OK);
	EXPECT(n == 0);
	relaymap_channel_close(NULL); /* no-ops */
	relaymap_reader_close(NULL);
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
	/* 100 bytes is not a multiple of the page size. */
	EXPECT_RC(relaymap_sim_create(NULL, 100, 2, 1, false, &sim), RELAYMAP_ERR_SIM);
	EXPECT(sim == NULL);
#endif
}

/* Writes a record header (host order, as the kernel does) at p. */
static void put_record(uint8_t *p, uint64_t ts, uint16_t event_id, uint16_t type,
		       uint32_t len)
{
	struct relaymap_record h = { ts, event_id, type, len };

	memcpy(p, &h, sizeof(h));
}

static void test_framing(void)
{
	uint8_t payload[64];
	relaymap_slice s = { payload, 0 };
	relaymap_record_iter it;
	relaymap_record_view r;
	bool got = true;

	/* Two records: "hello" at 0 (next at ALIGN(16 + 5, 8) = 24), an empty
	 * printf record at 24 ending the payload at 40 exactly. */
	memset(payload, 0, sizeof(payload));
	put_record(payload, 11, RELAYMAP_EVENT_RECORD, RELAYMAP_REC_USER, 5);
	memcpy(payload + 16, "hello", 5);
	put_record(payload + 24, 12, RELAYMAP_EVENT_PRINTF, RELAYMAP_REC_PRINTF, 0);
	s.len = 40;
	EXPECT_RC(relaymap_record_iter_init(&it, s), RELAYMAP_OK);
	EXPECT_RC(relaymap_record_iter_next(&it, &r, &got), RELAYMAP_OK);
	EXPECT(got && r.offset == 0 && r.len == 5 && r.ts_ns == 11);
	EXPECT(r.event_id == RELAYMAP_EVENT_RECORD && r.rec_type == RELAYMAP_REC_USER);
	EXPECT(r.data == payload + 16 && memcmp(r.data, "hello", 5) == 0);
	EXPECT_RC(relaymap_record_iter_next(&it, &r, &got), RELAYMAP_OK);
	EXPECT(got && r.offset == 24 && r.len == 0 && r.event_id == RELAYMAP_EVENT_PRINTF);
	EXPECT_RC(relaymap_record_iter_next(&it, &r, &got), RELAYMAP_OK);
	EXPECT(!got);
	EXPECT_RC(relaymap_record_iter_next(&it, &r, &got), RELAYMAP_OK);
	EXPECT(!got);

	/* A record whose data runs past the payload: corrupt, once. */
	put_record(payload + 24, 12, RELAYMAP_EVENT_RECORD, RELAYMAP_REC_USER, 100);
	EXPECT_RC(relaymap_record_iter_init(&it, s), RELAYMAP_OK);
	EXPECT_RC(relaymap_record_iter_next(&it, &r, &got), RELAYMAP_OK);
	EXPECT(got);
	EXPECT_RC(relaymap_record_iter_next(&it, &r, &got), RELAYMAP_ERR_CORRUPT);
	EXPECT(!got && HAS("offset 24"));
	EXPECT_RC(relaymap_record_iter_next(&it, &r, &got), RELAYMAP_OK);
	EXPECT(!got);

	/* An event id the module does not define: corrupt. */
	put_record(payload, 11, 7, RELAYMAP_REC_USER, 5);
	s.len = 21;
	EXPECT_RC(relaymap_record_iter_init(&it, s), RELAYMAP_OK);
	EXPECT_RC(relaymap_record_iter_next(&it, &r, &got), RELAYMAP_ERR_CORRUPT);
	EXPECT(!got && HAS("offset 0"));

	/* An empty payload (or a NULL one) has no records. */
	s.len = 0;
	EXPECT_RC(relaymap_record_iter_init(&it, s), RELAYMAP_OK);
	EXPECT_RC(relaymap_record_iter_next(&it, &r, &got), RELAYMAP_OK);
	EXPECT(!got);
}

#ifdef RELAYMAP_TESTING
static int waiter_done;

static void *wait_long(void *rd)
{
	bool ready;
	/* Holds the reader for up to 3 s (nothing is written). */
	relaymap_result rc = relaymap_reader_wait(rd, 3000, &ready);

	__atomic_store_n(&waiter_done, 1, __ATOMIC_RELEASE);
	return (void *)(intptr_t)rc;
}

/* A reader is for one thread at a time: a second thread gets
 * HANDLE_IN_USE. Polls until the waiter is inside its call (slow under
 * valgrind or load). */
static void test_in_use(relaymap_reader *rd)
{
	struct timespec ts = { 0, 5 * 1000 * 1000 };
	relaymap_result rc = RELAYMAP_OK;
	uint32_t cpu;
	pthread_t t;
	void *wrc;

	EXPECT(pthread_create(&t, NULL, wait_long, rd) == 0);
	while (!__atomic_load_n(&waiter_done, __ATOMIC_ACQUIRE)) {
		rc = relaymap_reader_cpu(rd, &cpu);
		if (rc != RELAYMAP_OK)
			break;
		nanosleep(&ts, NULL);
	}
	EXPECT(rc == RELAYMAP_ERR_HANDLE_IN_USE);
	EXPECT(HAS("another thread"));
	pthread_join(t, &wrc);
	EXPECT((relaymap_result)(intptr_t)wrc == RELAYMAP_OK);
	EXPECT_RC(relaymap_reader_cpu(rd, &cpu), RELAYMAP_OK);
}

/* In another process: cpu 0 is held by `holder`, so a reader of it is
 * refused with the holder's pid; cpu 1 is free. Exit status 0 if so. */
static int other_process(const char *dir, pid_t holder)
{
	relaymap_channel *ch = NULL;
	relaymap_reader *rd = NULL;
	char want[32];
	int ok;

	snprintf(want, sizeof(want), "pid %d", (int)holder);
	if (relaymap_channel_open_path(dir, &ch) != RELAYMAP_OK)
		return 1;
	ok = relaymap_reader_open(ch, 0, &rd) == RELAYMAP_ERR_BUSY && rd == NULL && HAS(want);
	if (!ok)
		fprintf(stderr, "child: %s\n", relaymap_last_error());
	ok &= relaymap_reader_open(ch, 1, &rd) == RELAYMAP_OK;
	relaymap_reader_close(rd);
	relaymap_channel_close(ch);
	return ok ? 0 : 1;
}

static void test_channel(void)
{
	relaymap_sim *sim = NULL;
	relaymap_channel *ch = NULL;
	relaymap_channel_info info;
	relaymap_reader *rd[2] = { NULL, NULL }, *x = NULL;
	relaymap_cpu_cursor cur[4];
	relaymap_subbuf sb;
	relaymap_batch b;
	relaymap_loss l;
	relaymap_channel_stats s;
	relaymap_record_iter it;
	relaymap_record_view r;
	relaymap_loadgen_record lg;
	uint32_t cpus[4], cpu;
	size_t n = 0, n_ready = 0;
	bool got, w, valid, drained, ready[2];
	int32_t fd = -1;
	uint64_t seq, ops;
	char pid[32];
	static const char hello[] = "hello";

	snprintf(pid, sizeof(pid), "pid %d", (int)getpid());
	EXPECT_RC(relaymap_sim_create(NULL, 4096, 4, 2, false, &sim), RELAYMAP_OK);
	EXPECT(sim && relaymap_sim_dir(sim) != NULL);
	EXPECT_RC(relaymap_channel_open_path(relaymap_sim_dir(sim), &ch), RELAYMAP_OK);
	EXPECT_RC(relaymap_channel_get_info(ch, &info), RELAYMAP_OK);
	EXPECT(info.subbuf_size == 4096 && info.n_subbufs == 4 && info.n_cpus == 2);
	EXPECT(!info.overwrite && info.abi_version == RELAYMAP_ABI_VERSION);
	EXPECT(info.header_size == sizeof(struct relaymap_subbuf_header));
	EXPECT(info.max_data_size + sizeof(struct relaymap_record) == info.max_record_size);
	EXPECT_RC(relaymap_channel_cpus(ch, cpus, 1, &n), RELAYMAP_ERR_BUFFER_TOO_SMALL);
	EXPECT(n == 2);
	EXPECT_RC(relaymap_channel_cpus(ch, NULL, 0, &n), RELAYMAP_ERR_BUFFER_TOO_SMALL);
	EXPECT_RC(relaymap_channel_cpus(ch, cpus, 4, &n), RELAYMAP_OK);
	EXPECT(n == 2 && cpus[0] == 0 && cpus[1] == 1);
	EXPECT_RC(relaymap_channel_refresh_cpus(ch, cpus, 4, &n), RELAYMAP_OK);
	EXPECT(n == 0);

	/* Out-pointer NULLs with a live channel. */
	EXPECT_NULL_ARG(relaymap_channel_get_info(ch, NULL), "info");
	EXPECT_NULL_ARG(relaymap_channel_cpus(ch, cpus, 4, NULL), "n");
	EXPECT_NULL_ARG(relaymap_channel_cpus(ch, NULL, 4, &n), "cpus");
	EXPECT_NULL_ARG(relaymap_channel_cursor(ch, 0, NULL), "cursor");
	EXPECT_NULL_ARG(relaymap_channel_cursors(ch, NULL, 4, &n), "cursors");
	EXPECT_NULL_ARG(relaymap_channel_get_stats(ch, -1, NULL), "stats");
	EXPECT_NULL_ARG(relaymap_reader_open(ch, 0, NULL), "out");
	EXPECT_NULL_ARG(relaymap_channel_open_readers(ch, NULL, 2, &n), "readers");
	EXPECT_NULL_ARG(relaymap_channel_open_readers(ch, rd, 2, NULL), "n");

	/* Claims: exclusive per CPU, the holder named; all or nothing. */
	EXPECT_RC(relaymap_reader_open(ch, 5, &x), RELAYMAP_ERR_UNKNOWN_CPU);
	EXPECT(x == NULL);
	EXPECT_RC(relaymap_reader_open(ch, 0, &rd[0]), RELAYMAP_OK);
	EXPECT_RC(relaymap_reader_open(ch, 0, &x), RELAYMAP_ERR_BUSY);
	EXPECT(x == NULL && HAS("cpu 0") && HAS(pid) && HAS("held by"));
	EXPECT(relaymap_last_os_error() == EBUSY);
	EXPECT_RC(relaymap_channel_cursor(ch, 0, &cur[0]), RELAYMAP_OK);
	EXPECT(cur[0].cpu == 0 && cur[0].held && cur[0].holder_pid == (int32_t)getpid());
	EXPECT(strlen(cur[0].holder_comm) > 0);
	EXPECT_RC(relaymap_channel_open_readers(ch, rd, 2, &n), RELAYMAP_ERR_BUSY);
	EXPECT(HAS("cpu 0") && HAS(pid));
	/* Exclusive across processes too. */
	{
		int status = -1;
		pid_t child;

		fflush(NULL);
		child = fork();
		if (child == 0)
			_exit(other_process(relaymap_sim_dir(sim), getppid()));
		EXPECT(child > 0 && waitpid(child, &status, 0) == child);
		EXPECT(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	}
	EXPECT_RC(relaymap_channel_cursors(ch, cur, 4, &n), RELAYMAP_OK);
	EXPECT(n == 2 && cur[0].held && !cur[1].held && cur[1].holder_pid == 0);
	EXPECT_RC(relaymap_channel_cursors(ch, cur, 1, &n), RELAYMAP_ERR_BUFFER_TOO_SMALL);
	EXPECT(n == 2);
	relaymap_reader_close(rd[0]);
	rd[0] = NULL;
	EXPECT_RC(relaymap_channel_open_readers(ch, rd, 1, &n), RELAYMAP_ERR_BUFFER_TOO_SMALL);
	EXPECT(n == 2);
	EXPECT_RC(relaymap_channel_open_readers(ch, rd, 2, &n), RELAYMAP_OK);
	EXPECT(n == 2 && rd[0] && rd[1]);
	EXPECT_RC(relaymap_reader_cpu(rd[1], &cpu), RELAYMAP_OK);
	EXPECT(cpu == 1);
	EXPECT_RC(relaymap_reader_fd(rd[0], &fd), RELAYMAP_OK);
	EXPECT(fd >= 0);
	/* RESET needs no consumer. */
	EXPECT_RC(relaymap_channel_reset(ch), RELAYMAP_ERR_BUSY);

	/* Out-pointer NULLs with a live reader. */
	EXPECT_NULL_ARG(relaymap_reader_cpu(rd[0], NULL), "cpu");
	EXPECT_NULL_ARG(relaymap_reader_fd(rd[0], NULL), "fd");
	EXPECT_NULL_ARG(relaymap_reader_wait(rd[0], 0, NULL), "ready");
	EXPECT_NULL_ARG(relaymap_reader_next(rd[0], NULL, &got), "sb");
	EXPECT_NULL_ARG(relaymap_reader_next(rd[0], &sb, NULL), "got");
	EXPECT_NULL_ARG(relaymap_reader_acquire(rd[0], 1, NULL), "batch");
	EXPECT_NULL_ARG(relaymap_reader_cursor(rd[0], NULL), "cursor");
	EXPECT_NULL_ARG(relaymap_reader_loss(rd[0], NULL), "loss");
	EXPECT_NULL_ARG(relaymap_reader_is_drained(rd[0], NULL), "drained");
	EXPECT_NULL_ARG(relaymap_reader_control_ops(rd[0], NULL), "ops");

	/* Empty channel. */
	EXPECT_RC(relaymap_reader_wait(rd[0], 0, &got), RELAYMAP_OK);
	EXPECT(!got);
	EXPECT_RC(relaymap_readers_wait((const relaymap_reader *const *)rd, 2, 0, ready,
					&n_ready), RELAYMAP_OK);
	EXPECT(n_ready == 0 && !ready[0] && !ready[1]);
	EXPECT_RC(relaymap_reader_next(rd[0], &sb, &got), RELAYMAP_OK);
	EXPECT(!got);
	EXPECT_RC(relaymap_reader_acquire(rd[0], SIZE_MAX, &b), RELAYMAP_OK);
	EXPECT(b.len == 0 && b.seq_begin == b.seq_end && b.cpu == 0);
	EXPECT_RC(relaymap_reader_acquire(rd[0], 0, &b), RELAYMAP_ERR_INVALID_ARGUMENT);
	EXPECT_RC(relaymap_reader_release(rd[0]), RELAYMAP_ERR_STATE);
	EXPECT_RC(relaymap_reader_release_until(rd[0], 0), RELAYMAP_ERR_STATE);
	EXPECT_RC(relaymap_channel_flush(ch, -2), RELAYMAP_ERR_INVALID_ARGUMENT);
	EXPECT_RC(relaymap_reader_is_drained(rd[0], &drained), RELAYMAP_OK);
	EXPECT(drained);

	/* Two sub-buffers on cpu 0: a user record, then load generator ones. */
	EXPECT_RC(relaymap_sim_write_record(sim, 0, RELAYMAP_REC_USER, (const uint8_t *)hello,
					    5, &w), RELAYMAP_OK);
	EXPECT(w);
	EXPECT_RC(relaymap_sim_flush(sim, 0), RELAYMAP_OK);
	for (seq = 0; seq < 3; seq++)
		EXPECT_RC(relaymap_sim_write_loadgen(sim, 0, seq, 64, &w), RELAYMAP_OK);
	EXPECT_RC(relaymap_channel_flush(ch, RELAYMAP_ALL_CPUS), RELAYMAP_OK);
	EXPECT_RC(relaymap_readers_wait((const relaymap_reader *const *)rd, 2, 1000, ready,
					&n_ready), RELAYMAP_OK);
	EXPECT(n_ready == 1 && ready[0] && !ready[1]);
	EXPECT_RC(relaymap_reader_wait(rd[0], 1000, &got), RELAYMAP_OK);
	EXPECT(got);

	EXPECT_RC(relaymap_reader_next(rd[0], &sb, &got), RELAYMAP_OK);
	EXPECT(got && sb.cpu == 0 && sb.seq == 0 && (sb.flags & RELAYMAP_SB_FLUSHED));
	EXPECT(memcmp(sb.uuid, info.uuid, 16) == 0);
	/* The events end at the last record's data: 16 + 5 bytes, no padding;
	 * the packet is whole pages. */
	EXPECT(sb.payload.len == 21 && sb.header_size == info.header_size);
	EXPECT(sb.packet.len == 4096 && sb.packet.ptr + sb.header_size == sb.payload.ptr);
	EXPECT(sb.ts_begin_ns <= sb.ts_end_ns && sb.ts_end_ns > 0);
	EXPECT_RC(relaymap_record_iter_init(&it, sb.payload), RELAYMAP_OK);
	EXPECT_RC(relaymap_record_iter_next(&it, &r, &got), RELAYMAP_OK);
	EXPECT(got && r.rec_type == RELAYMAP_REC_USER && r.len == 5 && r.offset == 0);
	EXPECT(r.event_id == RELAYMAP_EVENT_RECORD && memcmp(r.data, "hello", 5) == 0);
	EXPECT_RC(relaymap_loadgen_parse(&r, &lg, &valid), RELAYMAP_OK);
	EXPECT(!valid);
	EXPECT_RC(relaymap_record_iter_next(&it, &r, &got), RELAYMAP_OK);
	EXPECT(!got);
	/* One outstanding batch per reader. */
	EXPECT_RC(relaymap_reader_next(rd[0], &sb, &got), RELAYMAP_ERR_STATE);
	EXPECT(!got && HAS("outstanding"));
	EXPECT_RC(relaymap_reader_acquire(rd[0], SIZE_MAX, &b), RELAYMAP_ERR_STATE);
	EXPECT_RC(relaymap_reader_is_drained(rd[0], &drained), RELAYMAP_OK);
	EXPECT(!drained);
	EXPECT_RC(relaymap_reader_release(rd[0]), RELAYMAP_OK);
	EXPECT_RC(relaymap_reader_release(rd[0]), RELAYMAP_ERR_STATE); /* twice */

	/* The second sub-buffer as a batch. */
	EXPECT_RC(relaymap_reader_acquire(rd[0], SIZE_MAX, &b), RELAYMAP_OK);
	EXPECT(b.len == 1 && b.seq_begin == 1 && b.seq_end == 2 && b.cpu == 0);
	EXPECT(b.lapped == 0 && b.corrupt == 0 && b.payload_bytes == 192);
	EXPECT(b.subbufs && b.subbufs[0].seq == 1 && b.subbufs[0].payload.len == 192);
	EXPECT_RC(relaymap_record_iter_init(&it, b.subbufs[0].payload), RELAYMAP_OK);
	for (seq = 0;; seq++) {
		EXPECT_RC(relaymap_record_iter_next(&it, &r, &got), RELAYMAP_OK);
		if (!got)
			break;
		EXPECT_RC(relaymap_loadgen_parse(&r, &lg, &valid), RELAYMAP_OK);
		EXPECT(valid && lg.seq == seq && lg.cpu == 0 && lg.fill_len == 32);
	}
	EXPECT(seq == 3);
	/* Keep it: released until its own start, delivered again. */
	EXPECT_RC(relaymap_reader_release_until(rd[0], 1), RELAYMAP_OK);
	EXPECT_RC(relaymap_reader_is_drained(rd[0], &drained), RELAYMAP_OK);
	EXPECT(!drained);
	EXPECT_RC(relaymap_reader_acquire(rd[0], 1, &b), RELAYMAP_OK);
	EXPECT(b.len == 1 && b.seq_begin == 1);
	EXPECT_RC(relaymap_reader_release(rd[0]), RELAYMAP_OK);
	EXPECT_RC(relaymap_reader_is_drained(rd[0], &drained), RELAYMAP_OK);
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
	EXPECT_RC(relaymap_reader_acquire(rd[1], SIZE_MAX, &b), RELAYMAP_OK);
	EXPECT(b.len > 0 && b.cpu == 1);
	EXPECT_RC(relaymap_reader_release(rd[1]), RELAYMAP_OK);
	EXPECT_RC(relaymap_reader_loss(rd[1], &l), RELAYMAP_OK);
	EXPECT(l.records_dropped == s.records_dropped && l.subbufs_lapped == 0);
	EXPECT_RC(relaymap_channel_get_stats(ch, RELAYMAP_ALL_CPUS, &s), RELAYMAP_OK);
	EXPECT(s.records_written == 1 + 3 + (400 - l.records_dropped));
	EXPECT(s.records_dropped == l.records_dropped && s.records_rejected == 0);
	EXPECT(s.subbufs_consumed == 2 + b.len);

	test_in_use(rd[0]);

	/* A reader outlives its channel handle. */
	relaymap_channel_close(ch);
	ch = NULL;
	EXPECT_RC(relaymap_sim_write_loadgen(sim, 0, 3, 64, &w), RELAYMAP_OK);
	EXPECT_RC(relaymap_sim_flush(sim, 0), RELAYMAP_OK);
	EXPECT_RC(relaymap_reader_next(rd[0], &sb, &got), RELAYMAP_OK);
	EXPECT(got && sb.seq == 2);
	/* Closing with a sub-buffer outstanding hands nothing back: the next
	 * reader of the CPU gets it again. */
	relaymap_reader_close(rd[0]);
	rd[0] = NULL;
	EXPECT_RC(relaymap_channel_open_path(relaymap_sim_dir(sim), &ch), RELAYMAP_OK);
	EXPECT_RC(relaymap_reader_open(ch, 0, &rd[0]), RELAYMAP_OK);
	EXPECT_RC(relaymap_reader_next(rd[0], &sb, &got), RELAYMAP_OK);
	EXPECT(got && sb.seq == 2);
	EXPECT_RC(relaymap_reader_release(rd[0]), RELAYMAP_OK);

	/* Reset needs every reader closed; it restarts the counters. */
	relaymap_reader_close(rd[0]);
	relaymap_reader_close(rd[1]);
	EXPECT_RC(relaymap_channel_reset(ch), RELAYMAP_OK);
	EXPECT_RC(relaymap_channel_get_stats(ch, RELAYMAP_ALL_CPUS, &s), RELAYMAP_OK);
	EXPECT(s.records_written == 0 && s.resets == 1);
	EXPECT_RC(relaymap_channel_control_ops(ch, &ops), RELAYMAP_OK);
	EXPECT(ops > 0);
	relaymap_channel_close(ch);
	relaymap_sim_free(sim);
}

/* next() is acquire(1): reading N ready sub-buffers one at a time costs N
 * hand-backs and a constant number of cursor reads, not a rescan per
 * sub-buffer. */
static void test_next_is_o1(void)
{
	enum { N = 48 };
	relaymap_sim *sim = NULL;
	relaymap_channel *ch = NULL;
	relaymap_reader *rd = NULL;
	relaymap_subbuf sb;
	uint64_t before, after, seq;
	bool w, got;
	int k = 0;

	EXPECT_RC(relaymap_sim_create(NULL, 4096, N + 2, 1, false, &sim), RELAYMAP_OK);
	for (seq = 0; seq < N; seq++) {
		EXPECT_RC(relaymap_sim_write_loadgen(sim, 0, seq, 64, &w), RELAYMAP_OK);
		EXPECT_RC(relaymap_sim_flush(sim, 0), RELAYMAP_OK);
	}
	EXPECT_RC(relaymap_channel_open_path(relaymap_sim_dir(sim), &ch), RELAYMAP_OK);
	EXPECT_RC(relaymap_reader_open(ch, 0, &rd), RELAYMAP_OK);
	EXPECT_RC(relaymap_reader_control_ops(rd, &before), RELAYMAP_OK);
	for (;;) {
		EXPECT_RC(relaymap_reader_next(rd, &sb, &got), RELAYMAP_OK);
		if (!got)
			break;
		EXPECT(sb.seq == (uint64_t)k);
		EXPECT_RC(relaymap_reader_release(rd), RELAYMAP_OK);
		k++;
	}
	EXPECT_RC(relaymap_reader_control_ops(rd, &after), RELAYMAP_OK);
	EXPECT(k == N);
	/* N hand-backs, one cursor read that saw all N, one that saw none. */
	EXPECT(after - before <= N + 2);
	printf("next: %d sub-buffers, %llu control calls\n", k,
	       (unsigned long long)(after - before));
	relaymap_reader_close(rd);
	relaymap_channel_close(ch);
	relaymap_sim_free(sim);
}

/* Flight-recorder mode: the writer laps the reader; sub-buffers are
 * validated copies of the newest ones, laps are counted exactly. */
static void test_overwrite(void)
{
	relaymap_sim *sim = NULL;
	relaymap_channel *ch = NULL;
	relaymap_reader *rd = NULL;
	relaymap_channel_info info;
	relaymap_batch b;
	relaymap_loss l;
	relaymap_record_iter it;
	relaymap_record_view r;
	relaymap_loadgen_record lg;
	uint64_t seq, last = 0, records = 0;
	bool w, got, valid;
	size_t i;

	EXPECT_RC(relaymap_sim_create(NULL, 4096, 4, 1, true, &sim), RELAYMAP_OK);
	EXPECT_RC(relaymap_channel_open_path(relaymap_sim_dir(sim), &ch), RELAYMAP_OK);
	EXPECT_RC(relaymap_channel_get_info(ch, &info), RELAYMAP_OK);
	EXPECT(info.overwrite);
	EXPECT_RC(relaymap_reader_open(ch, 0, &rd), RELAYMAP_OK);
	for (seq = 0; seq < 1000; seq++) { /* 64 KB into 16 KB */
		EXPECT_RC(relaymap_sim_write_loadgen(sim, 0, seq, 64, &w), RELAYMAP_OK);
		EXPECT(w);
	}
	EXPECT_RC(relaymap_sim_flush(sim, RELAYMAP_ALL_CPUS), RELAYMAP_OK);
	EXPECT_RC(relaymap_reader_acquire(rd, SIZE_MAX, &b), RELAYMAP_OK);
	EXPECT(b.len > 0 && b.len <= 3 && b.lapped > 0);
	EXPECT(b.seq_begin == 0 && b.len + b.lapped + b.corrupt == b.seq_end);
	for (i = 0; i < b.len; i++) {
		EXPECT_RC(relaymap_record_iter_init(&it, b.subbufs[i].payload), RELAYMAP_OK);
		while (relaymap_record_iter_next(&it, &r, &got) == RELAYMAP_OK && got) {
			EXPECT_RC(relaymap_loadgen_parse(&r, &lg, &valid), RELAYMAP_OK);
			EXPECT(valid && (records == 0 || lg.seq == last + 1));
			last = lg.seq;
			records++;
		}
	}
	EXPECT(last == 999 && records > 0);
	EXPECT_RC(relaymap_reader_release(rd), RELAYMAP_OK);
	EXPECT_RC(relaymap_reader_loss(rd, &l), RELAYMAP_OK);
	EXPECT(l.subbufs_lapped == b.lapped && l.records_dropped == 0);
	relaymap_reader_close(rd);
	relaymap_channel_close(ch);
	relaymap_sim_free(sim);
}
#endif

int main(void)
{
	test_version();
	test_result_names();
	test_errors_without_channel();
	test_framing();
#ifdef RELAYMAP_TESTING
	test_channel();
	test_next_is_o1();
	test_overwrite();
#else
	printf("channel tests skipped (RELAYMAP_TESTING not defined)\n");
#endif
	printf("api_test: %d checks, %d failed\n", checks, failures);
	return failures ? 1 : 0;
}

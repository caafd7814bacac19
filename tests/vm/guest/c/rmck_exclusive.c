/* SPDX-License-Identifier: MIT */
/*
 * rmck_exclusive - consuming is exclusive per CPU, and a claim hands over
 * cleanly (relaymap_abi.h "Ownership").
 *
 *   rmck_exclusive -n NAME [--count N] [--handover K]
 *
 * Needs relaymap_loadgen loaded and a no-overwrite channel (16 KiB x 8
 * with 64-byte records: 254 records per sub-buffer). Processes, each with
 * its own comm (prctl(PR_SET_NAME)) and its own channel fd:
 *
 * 1. All or nothing: "rmck-one" claims the last CPU alone. GET_CURSOR
 *    names it (HELD, pid, comm); OPEN_CONSUMER(ALL) from this process is
 *    EBUSY and leaves every other CPU unclaimed, which a single-CPU
 *    OPEN_CONSUMER then gets. rmck-one exits; its CPU is free.
 * 2. The load generator writes N records per CPU, lossless. "rmck-hold-a"
 *    claims every CPU, checks that a second OPEN_CONSUMER of its own is
 *    EBUSY, and consumes with full verification (headers, records,
 *    checksums, seq order), handing back K sub-buffers per CPU, then reads
 *    sub-buffer K without handing it back. Meanwhile "rmck-intruder"
 *    hammers: OPEN_CONSUMER of each CPU and of ALL (EBUSY every time),
 *    GET_CURSOR(S) (HELD, holder pid and comm of rmck-hold-a), a stray
 *    PUT_CONSUMED on its channel fd and on the debugfs control file
 *    (EPERM every time), FLUSH (allowed). rmck-hold-a checks after every
 *    hand-back that the kernel's consumed count is exactly its own: a
 *    stray PUT_CONSUMED that got through would show there. The holders
 *    sleep 2 ms per sub-buffer and keep their claim until the intruder
 *    made at least 50 rounds, so the attempts meet a live consumer.
 * 3. rmck-hold-a closes its consumer fds (mappings kept: reported only),
 *    then unmaps: every CPU is free, consumed == K, nothing held.
 * 4. "rmck-hold-c" claims every CPU: consumed == K (what was handed back
 *    stays handed back), and its first record is exactly the one after
 *    the last record of sub-buffer K - 1 (sub-buffer K, read by
 *    rmck-hold-a but not handed back, is delivered again). The intruder
 *    runs again, now expecting rmck-hold-c. rmck-hold-c hands back 2K,
 *    reads one more, and is SIGKILLed: after waitpid every CPU is free,
 *    consumed == 2K.
 * 5. This process claims every CPU, continues at the next record, and
 *    drains to the end (loadgen idle, FLUSH(all)). Over the three
 *    consumers: records received (in handed-back sub-buffers) == loadgen
 *    written, seq 0..N-1 without gap or duplicate, 0 dropped.
 */
#include "rmtest.h"

#include <sys/prctl.h>
#include <sys/wait.h>

struct stage {
	uint64_t handed;	/* kernel consumed after the stage */
	uint64_t next_seq;	/* first seq of sub-buffer `handed` */
	uint64_t records;	/* records in the handed-back sub-buffers, cumulative */
};

struct shared {
	int stop_intruder;
	pid_t expect_pid;
	char expect_comm[RELAYMAP_COMM_MAX];
	uint64_t intr_rounds, intr_ebusy, intr_eperm, intr_flushes, intr_holder_ok;
	struct stage st[3][RM_MAXCPU];	/* after rmck-hold-a, rmck-hold-c */
};

static struct shared *sh;

/* Rounds of the intruder each holder waits for (while holding) before it ends. */
#define INTRUDER_ROUNDS 50
/* Each holder sleeps this long per sub-buffer, so the intruder meets it mid-stream. */
#define HOLDER_DELAY_US 2000
static const char *name;
static uint64_t count = 20000, handover = 10;

static void set_comm(const char *comm)
{
	if (prctl(PR_SET_NAME, comm, 0, 0, 0))
		rm_die("prctl(PR_SET_NAME, %s): %s", comm, strerror(errno));
	rm_prog = comm;
}

static void send_byte(int fd, char c)
{
	if (write(fd, &c, 1) != 1)
		rm_die("pipe write: %s", strerror(errno));
}

/* Wait (bounded) for byte `want` on fd. */
static void wait_byte(int fd, char want, const char *what)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	char c;
	int r = poll(&p, 1, 120000);

	if (r != 1)
		rm_die("waiting for %s: %s", what, r == 0 ? "timeout after 120 s" : strerror(errno));
	if (read(fd, &c, 1) != 1)
		rm_die("waiting for %s: the other process is gone", what);
	if (c != want)
		rm_die("waiting for %s: got '%c', expected '%c'", what, c, want);
}

/* Claims of every CPU: (flags & HELD) bit per CPU; holder pids too. */
static uint64_t held_mask(int ctl, const struct rm_chan *ch, pid_t *pids)
{
	uint64_t m = 0;

	for (unsigned int i = 0; i < ch->ncpus; i++) {
		struct relaymap_cursor c;
		unsigned int cpu = ch->cpus[i];

		rm_cursor_x(ctl, cpu, &c);
		if (pids)
			pids[cpu] = c.holder_pid;
		if (c.flags & RELAYMAP_CURSOR_HELD)
			m |= 1ULL << (cpu % 64);
		else if (c.holder_pid || c.holder_comm[0])
			rm_bad("cpu %u: not HELD but holder_pid %d comm '%.16s'", cpu,
			       c.holder_pid, c.holder_comm);
	}
	return m;
}

/* Every CPU free, consumed == want[cpu] (or anything when want is NULL). */
static void expect_free(const struct rm_chan *ch, const struct stage *want, const char *when)
{
	for (unsigned int i = 0; i < ch->ncpus; i++) {
		unsigned int cpu = ch->cpus[i];
		struct relaymap_cursor c;

		rm_cursor_x(ch->ctl, cpu, &c);
		if ((c.flags & RELAYMAP_CURSOR_HELD) || c.holder_pid || c.holder_comm[0])
			rm_bad("%s: cpu %u still claimed: flags %#x holder_pid %d comm '%.16s'",
			       when, cpu, c.flags, c.holder_pid, c.holder_comm);
		if (want && c.consumed != want[cpu].handed)
			rm_bad("%s: cpu %u consumed %llu, the holder had handed back %llu",
			       when, cpu, (unsigned long long)c.consumed,
			       (unsigned long long)want[cpu].handed);
	}
}

/*
 * Consume every CPU of ch (claimed, mapped) until each has handed back
 * `target` sub-buffers (UINT64_MAX with stop_at_end: until the loadgen is
 * idle and everything is drained). Then, with extra_read, read sub-buffer
 * `target` too without handing it back. Results into out[].
 */
static void consume(struct rm_chan *ch, struct rm_drain *d, uint64_t target,
		    bool extra_read, struct stage *out, uint64_t min_rounds)
{
	struct pollfd pfd[RM_MAXCPU];
	bool final = target == UINT64_MAX;
	uint64_t final_target[RM_MAXCPU];
	bool have_final = false;
	uint64_t t0 = rm_now_ns();

	for (unsigned int i = 0; i < ch->ncpus; i++)
		pfd[i] = (struct pollfd){ .fd = ch->fd[ch->cpus[i]], .events = POLLIN };
	for (;;) {
		bool done = true;

		for (unsigned int i = 0; i < ch->ncpus; i++) {
			unsigned int cpu = ch->cpus[i];
			struct relaymap_cursor cur;
			uint64_t upto;

			rm_cursor_x(ch->fd[cpu], cpu, &cur);
			if (cur.consumed != d[cpu].consumed)
				rm_bad("cpu %u: kernel consumed %llu, this consumer handed back up to %llu (a stray PUT_CONSUMED got through?)",
				       cpu, (unsigned long long)cur.consumed,
				       (unsigned long long)d[cpu].consumed);
			upto = cur.produced;
			if (!final && upto > target)
				upto = target;
			if (have_final && upto > final_target[cpu])
				upto = final_target[cpu];
			rm_drain_to(ch, &d[cpu], upto);
			if (final ? !have_final || d[cpu].consumed < final_target[cpu]
				  : d[cpu].consumed < target)
				done = false;
		}
		/*
		 * Hold on (still claiming, the writers blocked on a full ring)
		 * until the intruder has tried often enough: its attempts must
		 * overlap a live consumer.
		 */
		if (done && __atomic_load_n(&sh->intr_rounds, __ATOMIC_ACQUIRE) < min_rounds)
			done = false;
		if (done)
			break;
		if (final && !have_final) {
			struct lg_status lg;

			lg_read_status(&lg);
			if (!lg.running) {
				lg_stop();
				rm_flush_x(ch->ctl, RELAYMAP_ALL_CPUS);
				for (unsigned int i = 0; i < ch->ncpus; i++) {
					struct relaymap_cursor cur;

					rm_cursor_x(ch->ctl, ch->cpus[i], &cur);
					final_target[ch->cpus[i]] = cur.produced;
				}
				have_final = true;
				continue;
			}
		}
		if (rm_now_ns() - t0 > 200ULL * 1000000000ULL)
			rm_die("consuming: no progress to sub-buffer %llu after 200 s",
			       (unsigned long long)target);
		if (poll(pfd, ch->ncpus, 10) < 0 && errno != EINTR)
			rm_die("poll: %s", strerror(errno));
	}
	for (unsigned int i = 0; i < ch->ncpus; i++) {
		unsigned int cpu = ch->cpus[i];

		out[cpu].handed = d[cpu].consumed;
		out[cpu].next_seq = d[cpu].st.next_seq;
		out[cpu].records = d[cpu].st.records;
	}
	if (!extra_read)
		return;
	/* Read sub-buffer `target` as well, and do not hand it back. */
	for (unsigned int i = 0; i < ch->ncpus; i++) {
		unsigned int cpu = ch->cpus[i];
		struct relaymap_cursor cur;
		uint64_t t1 = rm_now_ns();

		for (;;) {
			rm_cursor_x(ch->fd[cpu], cpu, &cur);
			if (cur.produced > target)
				break;
			if (rm_now_ns() - t1 > 120ULL * 1000000000ULL)
				rm_die("cpu %u: sub-buffer %llu never produced", cpu,
				       (unsigned long long)target);
			poll(&pfd[i], 1, 10);
		}
		rm_drain_read(ch, &d[cpu], target + 1);
		rm_note("cpu %u: handed back %llu sub-buffers (%llu records, next seq %llu), read sub-buffer %llu without handing it back",
			cpu, (unsigned long long)out[cpu].handed,
			(unsigned long long)out[cpu].records,
			(unsigned long long)out[cpu].next_seq,
			(unsigned long long)target);
	}
}

/* Drains that continue the stream where the previous holder's hand-back ended. */
static void drains_continue(const struct rm_chan *ch, struct rm_drain *d,
			    const struct stage *prev)
{
	for (unsigned int i = 0; i < ch->ncpus; i++) {
		unsigned int cpu = ch->cpus[i];

		rm_drain_init(&d[cpu], ch, cpu, 64);
		if (!prev)
			continue;
		if (d[cpu].consumed != prev[cpu].handed)
			rm_bad("cpu %u: the new consumer starts at consumed %llu, the previous one handed back %llu",
			       cpu, (unsigned long long)d[cpu].consumed,
			       (unsigned long long)prev[cpu].handed);
		/* The next record must be exactly prev.next_seq: a gap or a repeat fails. */
		d[cpu].st.started = true;
		d[cpu].st.first_seq = prev[cpu].next_seq;
		d[cpu].st.next_seq = prev[cpu].next_seq;
		d[cpu].st.records = prev[cpu].records;
	}
}

static void check_stream(const struct rm_chan *ch, const struct rm_drain *d, const char *who)
{
	for (unsigned int i = 0; i < ch->ncpus; i++) {
		unsigned int cpu = ch->cpus[i];

		RM_EXPECT_EQ("record errors (order/frame/checksum)", rm_stream_errors(&d[cpu].st), 0);
		RM_EXPECT_EQ("seq gaps", d[cpu].st.gap_records, 0);
		RM_EXPECT_EQ("stale/invalid headers", d[cpu].hdr_violations, 0);
		if (d[cpu].st.gap_records || rm_stream_errors(&d[cpu].st))
			rm_bad("%s: cpu %u stream broken", who, cpu);
	}
}

/* ---- the processes ---- */

static void intruder(int up)
{
	struct rm_chan ch;
	int dbg;

	set_comm("rmck-intruder");
	rm_open(&ch, name, 0);
	dbg = rm_open_control(name);
	send_byte(up, 'r');
	while (!__atomic_load_n(&sh->stop_intruder, __ATOMIC_ACQUIRE)) {
		static struct relaymap_cursor arr[RM_MAXCPU];
		unsigned int filled = 0;
		struct relaymap_consume cons;
		int fd, err;

		for (unsigned int i = 0; i < ch.ncpus; i++) {
			unsigned int cpu = ch.cpus[i];
			struct relaymap_cursor c;

			fd = rm_open_consumer_fd(ch.ctl, (int)cpu);
			if (fd >= 0) {
				rm_bad("OPEN_CONSUMER(cpu %u) succeeded while pid %d holds it", cpu,
				       sh->expect_pid);
				close(fd);
			} else if (fd == -EBUSY) {
				__atomic_add_fetch(&sh->intr_ebusy, 1, __ATOMIC_RELAXED);
			} else {
				rm_bad("OPEN_CONSUMER(cpu %u) of a held CPU: %s, expected EBUSY", cpu,
				       strerror(-fd));
			}
			rm_cursor_x(ch.ctl, cpu, &c);
			if ((c.flags & RELAYMAP_CURSOR_HELD) && c.holder_pid == sh->expect_pid &&
			    !strcmp(c.holder_comm, sh->expect_comm))
				__atomic_add_fetch(&sh->intr_holder_ok, 1, __ATOMIC_RELAXED);
			else
				rm_bad("GET_CURSOR(cpu %u): flags %#x holder_pid %d comm '%.16s', expected HELD by %d '%s'",
				       cpu, c.flags, c.holder_pid, c.holder_comm, sh->expect_pid,
				       sh->expect_comm);
		}
		{
			static int32_t fds[RELAYMAP_MAX_CPUS];

			err = rm_open_consumers_all(ch.ctl, fds, ch.info.nr_cpu_ids);
			if (!err) {
				rm_bad("OPEN_CONSUMER(ALL) succeeded while pid %d holds the CPUs",
				       sh->expect_pid);
				for (unsigned int c = 0; c < ch.info.nr_cpu_ids; c++)
					if (fds[c] >= 0)
						close(fds[c]);
			} else if (err == -EBUSY) {
				__atomic_add_fetch(&sh->intr_ebusy, 1, __ATOMIC_RELAXED);
			} else {
				rm_bad("OPEN_CONSUMER(ALL) of held CPUs: %s, expected EBUSY", strerror(-err));
			}
		}
		err = rm_get_cursors(ch.ctl, 0, ch.info.nr_cpu_ids < RM_MAXCPU ? ch.info.nr_cpu_ids : RM_MAXCPU,
				     arr, &filled);
		if (err)
			rm_bad("GET_CURSORS: %s", strerror(-err));
		for (unsigned int i = 0; !err && i < ch.ncpus; i++) {
			unsigned int cpu = ch.cpus[i];

			if (cpu < filled && arr[cpu].holder_pid != sh->expect_pid)
				rm_bad("GET_CURSORS[%u].holder_pid %d, expected %d", cpu,
				       arr[cpu].holder_pid, sh->expect_pid);
		}
		memset(&cons, 0, sizeof(cons));
		cons.size = sizeof(cons);
		cons.count = 1;
		err = rm_ioctl(ch.ctl, RELAYMAP_IOC_PUT_CONSUMED, &cons);
		if (err == -EPERM)
			__atomic_add_fetch(&sh->intr_eperm, 1, __ATOMIC_RELAXED);
		else
			rm_bad("a stray PUT_CONSUMED on a channel fd: %s, expected EPERM",
			       err ? strerror(-err) : "success");
		if (dbg >= 0) {
			err = rm_ioctl(dbg, RELAYMAP_IOC_PUT_CONSUMED, &cons);
			if (err == -EPERM)
				__atomic_add_fetch(&sh->intr_eperm, 1, __ATOMIC_RELAXED);
			else
				rm_bad("a stray PUT_CONSUMED on the debugfs control file: %s, expected EPERM",
				       err ? strerror(-err) : "success");
		}
		/* Observers may FLUSH: no claim needed, nothing lost. */
		if (sh->intr_rounds % 16 == 0) {
			err = rm_flush(ch.ctl, RELAYMAP_ALL_CPUS);
			if (err)
				rm_bad("FLUSH(all) from a non-holder: %s", strerror(-err));
			else
				__atomic_add_fetch(&sh->intr_flushes, 1, __ATOMIC_RELAXED);
		}
		__atomic_add_fetch(&sh->intr_rounds, 1, __ATOMIC_RELEASE);
		rm_sleep_ms(1);
	}
	if (dbg >= 0)
		close(dbg);
	rm_close(&ch);
	rm_exit();
}

/* rmck-hold-a: stage 0. */
static void holder_a(int up, int down)
{
	static struct rm_drain d[RM_MAXCPU];
	struct rm_chan ch;
	int fd, other;

	set_comm("rmck-hold-a");
	rm_open(&ch, name, RM_OPEN_MAP);
	/* A second claim, even by the holder itself, is EBUSY. */
	fd = rm_open_consumer_fd(ch.ctl, (int)ch.cpus[0]);
	if (fd != -EBUSY)
		rm_bad("the holder's own second OPEN_CONSUMER(cpu %u): %s, expected EBUSY",
		       ch.cpus[0], fd >= 0 ? "success" : strerror(-fd));
	if (fd >= 0)
		close(fd);
	other = rm_open_channel_x(name);
	fd = rm_open_consumer_fd(other, (int)ch.cpus[0]);
	if (fd != -EBUSY)
		rm_bad("the holder's OPEN_CONSUMER(cpu %u) on a second channel fd: %s, expected EBUSY",
		       ch.cpus[0], fd >= 0 ? "success" : strerror(-fd));
	if (fd >= 0)
		close(fd);
	close(other);
	drains_continue(&ch, d, NULL);
	for (unsigned int i = 0; i < ch.ncpus; i++)
		d[ch.cpus[i]].delay_us = HOLDER_DELAY_US;
	send_byte(up, 'r');
	wait_byte(down, 'g', "go");
	consume(&ch, d, handover, true, sh->st[0], INTRUDER_ROUNDS);
	check_stream(&ch, d, "rmck-hold-a");
	send_byte(up, 'q');
	wait_byte(down, 'x', "close");
	/* Close the fds but keep the mappings: the file lives on in the VMAs. */
	for (unsigned int i = 0; i < ch.ncpus; i++) {
		close(ch.fd[ch.cpus[i]]);
		ch.fd[ch.cpus[i]] = -1;
	}
	send_byte(up, 'h');
	wait_byte(down, 'u', "unmap");
	rm_release(&ch);
	send_byte(up, 'c');
	rm_close(&ch);
	rm_exit();
}

/* rmck-hold-c: stage 1, killed at the end. */
static void holder_c(int up, int down)
{
	static struct rm_drain d[RM_MAXCPU];
	struct rm_chan ch;

	set_comm("rmck-hold-c");
	rm_open(&ch, name, RM_OPEN_MAP);
	drains_continue(&ch, d, sh->st[0]);
	for (unsigned int i = 0; i < ch.ncpus; i++)
		d[ch.cpus[i]].delay_us = HOLDER_DELAY_US;
	send_byte(up, 'r');
	wait_byte(down, 'g', "go");
	consume(&ch, d, 2 * handover, true, sh->st[1], INTRUDER_ROUNDS);
	check_stream(&ch, d, "rmck-hold-c");
	/* Failures so far must reach the parent although we die by SIGKILL. */
	if (rm_nbad)
		rm_die("%lu check(s) failed before the SIGKILL", rm_nbad);
	send_byte(up, 'q');
	for (;;)
		pause();
}

static pid_t spawn(void (*fn)(int, int), int *up, int *down)
{
	int a[2], b[2];
	pid_t pid;

	if (pipe(a) || pipe(b))
		rm_die("pipe: %s", strerror(errno));
	fflush(stdout);
	pid = fork();
	if (pid < 0)
		rm_die("fork: %s", strerror(errno));
	if (pid == 0) {
		/* The parent's failures are the parent's to report. */
		rm_nbad = 0;
		close(a[0]);
		close(b[1]);
		alarm(280);
		fn(a[1], b[0]);
		_exit(0);
	}
	close(a[1]);
	close(b[0]);
	*up = a[0];
	*down = b[1];
	return pid;
}

static void intruder_fn(int up, int down)
{
	(void)down;
	intruder(up);
}

static int reap(pid_t pid, const char *who)
{
	int status;

	if (waitpid(pid, &status, 0) != pid)
		rm_die("waitpid(%s): %s", who, strerror(errno));
	if (WIFEXITED(status)) {
		if (WEXITSTATUS(status))
			rm_bad("%s exited with status %d", who, WEXITSTATUS(status));
		return 0;
	}
	return WIFSIGNALED(status) ? WTERMSIG(status) : -1;
}

/* Stage 0 of the test: all or nothing with one CPU held elsewhere. */
static void one_cpu_held(struct rm_chan *ch)
{
	unsigned int last = ch->cpus[ch->ncpus - 1];
	static int32_t fds[RELAYMAP_MAX_CPUS];
	int up, down, err;
	pid_t pid, pids[RM_MAXCPU];
	uint64_t held;

	rm_set_phase("all or nothing");
	if (ch->ncpus < 2) {
		rm_note("only one CPU: all-or-nothing needs two, skipped");
		return;
	}
	pid = fork();
	if (pid < 0)
		rm_die("fork: %s", strerror(errno));
	if (pid == 0) {
		struct rm_chan c1;
		int fd;

		rm_nbad = 0;
		set_comm("rmck-one");
		alarm(60);
		rm_open(&c1, name, 0);
		fd = rm_open_consumer_fd(c1.ctl, (int)last);
		if (fd < 0)
			rm_die("OPEN_CONSUMER(cpu %u): %s", last, strerror(-fd));
		printf("rmck-one: holding cpu %u\n", last);
		fflush(stdout);
		pause();
		_exit(0);
	}
	/* Wait (bounded) for its claim. */
	for (int i = 0;; i++) {
		held = held_mask(ch->ctl, ch, pids);
		if (held)
			break;
		if (i > 3000)
			rm_die("rmck-one never claimed cpu %u", last);
		rm_sleep_ms(10);
	}
	RM_EXPECT_EQ("held CPUs with rmck-one holding the last", held, 1ULL << (last % 64));
	{
		struct relaymap_cursor c;

		rm_cursor_x(ch->ctl, last, &c);
		if (c.holder_pid != pid || strcmp(c.holder_comm, "rmck-one"))
			rm_bad("cpu %u: holder %d '%.16s', expected %d 'rmck-one'", last,
			       c.holder_pid, c.holder_comm, (int)pid);
		else
			rm_note("cpu %u: GET_CURSOR names the holder: pid %d comm '%s' (ok)", last,
				c.holder_pid, c.holder_comm);
	}
	for (unsigned int c = 0; c < RELAYMAP_MAX_CPUS; c++)
		fds[c] = -2;
	err = rm_open_consumers_all(ch->ctl, fds, ch->info.nr_cpu_ids);
	if (err != -EBUSY)
		rm_bad("OPEN_CONSUMER(ALL) with cpu %u held elsewhere: %s, expected EBUSY", last,
		       err ? strerror(-err) : "success");
	for (unsigned int c = 0; c < ch->info.nr_cpu_ids; c++)
		if (fds[c] >= 0) {
			rm_bad("a refused OPEN_CONSUMER(ALL) returned fd %d for cpu %u", fds[c], c);
			close(fds[c]);
		}
	held = held_mask(ch->ctl, ch, pids);
	RM_EXPECT_EQ("held CPUs after the refused OPEN_CONSUMER(ALL) (nothing claimed)", held,
		     1ULL << (last % 64));
	/* The free CPUs can still be claimed one by one. */
	for (unsigned int i = 0; i + 1 < ch->ncpus; i++) {
		int fd = rm_open_consumer_fd(ch->ctl, (int)ch->cpus[i]);

		if (fd < 0)
			rm_bad("OPEN_CONSUMER(cpu %u) after the refused ALL: %s", ch->cpus[i],
			       strerror(-fd));
		else
			close(fd);
	}
	rm_note("OPEN_CONSUMER(ALL) with cpu %u held: EBUSY, nothing claimed, the other CPUs free (ok)",
		last);
	kill(pid, SIGTERM);
	reap(pid, "rmck-one");
	expect_free(ch, NULL, "after rmck-one exited");
	(void)up;
	(void)down;
}

int main(int argc, char **argv)
{
	static struct rm_drain d[RM_MAXCPU];
	struct rm_chan ch;
	struct lg_status lg;
	int a_up, a_down, c_up, c_down, i_up, i_down, sig;
	pid_t a, c, in;
	uint64_t t, tot_rounds;

	rm_init(argv[0], 290);
	for (int i = 1; i < argc; i++) {
		const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!strcmp(o, "-n"))
			name = v;
		else if (!strcmp(o, "--count"))
			count = rm_argu(o, v);
		else if (!strcmp(o, "--handover"))
			handover = rm_argu(o, v);
		else
			rm_die("unknown option %s", o);
		i++;
	}
	if (!name)
		rm_die("usage: rmck_exclusive -n NAME [--count N] [--handover K]");
	sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED)
		rm_die("mmap: %s", strerror(errno));
	memset(sh, 0, sizeof(*sh));
	rm_open(&ch, name, 0);
	if (!lg_present())
		rm_die("relaymap_loadgen is not loaded");
	if (ch.info.flags & RELAYMAP_INFO_OVERWRITE)
		rm_die("use a no-overwrite channel");
	if (count * 64 < (2 * handover + 4) * (ch.info.subbuf_size - ch.info.header_size))
		rm_die("--count %llu too small for --handover %llu",
		       (unsigned long long)count, (unsigned long long)handover);
	expect_free(&ch, NULL, "at the start");
	one_cpu_held(&ch);

	/* Stage A with the intruder. */
	rm_set_phase("rmck-hold-a");
	a = spawn(holder_a, &a_up, &a_down);
	wait_byte(a_up, 'r', "rmck-hold-a ready");
	sh->expect_pid = a;
	snprintf(sh->expect_comm, sizeof(sh->expect_comm), "rmck-hold-a");
	in = spawn(intruder_fn, &i_up, &i_down);
	wait_byte(i_up, 'r', "intruder ready");
	lg_set("channel", name);
	lg_set("mode", "lossless");
	lg_setu("record_size", 64);
	lg_setu("rate", 0);
	lg_setu("duration_ms", 0);
	lg_setu("count", count);
	lg_start();
	send_byte(a_down, 'g');
	wait_byte(a_up, 'q', "rmck-hold-a handed back K sub-buffers");
	__atomic_store_n(&sh->stop_intruder, 1, __ATOMIC_RELEASE);
	reap(in, "rmck-intruder");
	rm_note("intruder during rmck-hold-a: rounds=%llu ebusy=%llu eperm=%llu holder_named=%llu flushes=%llu",
		(unsigned long long)sh->intr_rounds, (unsigned long long)sh->intr_ebusy,
		(unsigned long long)sh->intr_eperm, (unsigned long long)sh->intr_holder_ok,
		(unsigned long long)sh->intr_flushes);
	if (sh->intr_rounds < INTRUDER_ROUNDS)
		rm_bad("the intruder ran only %llu rounds while rmck-hold-a held the CPUs",
		       (unsigned long long)sh->intr_rounds);
	/* A stray PUT_CONSUMED from this process too, with the cursor checked. */
	{
		struct relaymap_cursor before, after;
		struct relaymap_consume cons = { sizeof(cons), 0, 1 };
		int err;

		rm_cursor_x(ch.ctl, ch.cpus[0], &before);
		err = rm_ioctl(ch.ctl, RELAYMAP_IOC_PUT_CONSUMED, &cons);
		rm_cursor_x(ch.ctl, ch.cpus[0], &after);
		if (err != -EPERM)
			rm_bad("PUT_CONSUMED on a channel fd while another process holds the CPU: %s, expected EPERM",
			       err ? strerror(-err) : "success");
		RM_EXPECT_EQ("consumed after a refused stray PUT_CONSUMED", after.consumed,
			     before.consumed);
	}

	/* A closes (mapping kept), then unmaps. */
	rm_set_phase("rmck-hold-a closes");
	send_byte(a_down, 'x');
	wait_byte(a_up, 'h', "rmck-hold-a closed its fds");
	{
		uint64_t held = held_mask(ch.ctl, &ch, NULL);

		rm_note("consumer fds closed, mappings kept: %s (the mapping keeps the file open)",
			held ? "CPUs still held" : "CPUs released");
	}
	send_byte(a_down, 'u');
	wait_byte(a_up, 'c', "rmck-hold-a unmapped");
	expect_free(&ch, sh->st[0], "after rmck-hold-a closed and unmapped");
	reap(a, "rmck-hold-a");

	/* Stage C, the intruder again, then SIGKILL. */
	rm_set_phase("rmck-hold-c");
	sh->stop_intruder = 0;
	tot_rounds = sh->intr_rounds;
	sh->intr_rounds = 0;
	c = spawn(holder_c, &c_up, &c_down);
	wait_byte(c_up, 'r', "rmck-hold-c ready");
	sh->expect_pid = c;
	snprintf(sh->expect_comm, sizeof(sh->expect_comm), "rmck-hold-c");
	in = spawn(intruder_fn, &i_up, &i_down);
	wait_byte(i_up, 'r', "intruder ready");
	send_byte(c_down, 'g');
	wait_byte(c_up, 'q', "rmck-hold-c handed back 2K sub-buffers");
	__atomic_store_n(&sh->stop_intruder, 1, __ATOMIC_RELEASE);
	reap(in, "rmck-intruder (2)");
	rm_note("intruder during rmck-hold-c: rounds=%llu", (unsigned long long)sh->intr_rounds);
	if (sh->intr_rounds < INTRUDER_ROUNDS)
		rm_bad("the intruder ran only %llu rounds while rmck-hold-c held the CPUs",
		       (unsigned long long)sh->intr_rounds);
	tot_rounds += sh->intr_rounds;
	kill(c, SIGKILL);
	sig = reap(c, "rmck-hold-c");
	if (sig != SIGKILL)
		rm_bad("rmck-hold-c ended with %d, expected SIGKILL", sig);
	t = rm_now_ns();
	for (int i = 0; held_mask(ch.ctl, &ch, NULL); i++) {
		if (i == 0)
			rm_bad("a CPU is still held right after waitpid() of the SIGKILLed holder");
		if (i > 500)
			rm_die("the SIGKILLed holder's claims were never released");
		rm_sleep_ms(10);
	}
	if (rm_now_ns() - t > 1000000)
		rm_note("claims released %.1f ms after waitpid", (double)(rm_now_ns() - t) / 1e6);
	expect_free(&ch, sh->st[1], "after SIGKILL of rmck-hold-c");

	/* Stage D: this process drains the rest. */
	rm_set_phase("final consumer");
	rm_claim(&ch, RM_OPEN_MAP);
	drains_continue(&ch, d, sh->st[1]);
	consume(&ch, d, UINT64_MAX, false, sh->st[2], 0);
	check_stream(&ch, d, "final consumer");
	lg_read_status(&lg);
	for (unsigned int i = 0; i < ch.ncpus; i++) {
		unsigned int cpu = ch.cpus[i];
		struct lg_cpu_status l = lg_cpu(&lg, cpu);
		struct relaymap_cursor cur;

		rm_cursor_x(ch.ctl, cpu, &cur);
		rm_note("cpu %u: rmck-hold-a handed back %llu (%llu records), rmck-hold-c up to %llu (%llu), final up to %llu (%llu); loadgen written %llu dropped %llu; kernel produced %llu consumed %llu dropped %llu",
			cpu, (unsigned long long)sh->st[0][cpu].handed,
			(unsigned long long)sh->st[0][cpu].records,
			(unsigned long long)sh->st[1][cpu].handed,
			(unsigned long long)sh->st[1][cpu].records,
			(unsigned long long)sh->st[2][cpu].handed,
			(unsigned long long)sh->st[2][cpu].records,
			(unsigned long long)l.written, (unsigned long long)l.dropped,
			(unsigned long long)cur.produced, (unsigned long long)cur.consumed,
			(unsigned long long)cur.records_dropped);
		RM_EXPECT_EQ("records received over three consumers == loadgen written",
			     sh->st[2][cpu].records, l.written);
		RM_EXPECT_EQ("loadgen written == count", l.written, count);
		RM_EXPECT_EQ("last seq + 1 == count", sh->st[2][cpu].next_seq, count);
		RM_EXPECT_EQ("loadgen dropped (lossless)", l.dropped, 0);
		RM_EXPECT_EQ("kernel records_dropped", cur.records_dropped, 0);
		RM_EXPECT_EQ("produced == consumed at the end", cur.produced, cur.consumed);
		RM_EXPECT_EQ("rmck-hold-a handed back K", sh->st[0][cpu].handed, handover);
		RM_EXPECT_EQ("rmck-hold-c handed back up to 2K", sh->st[1][cpu].handed, 2 * handover);
	}
	rm_note("SUMMARY intruder rounds=%llu ebusy=%llu eperm=%llu holder_named=%llu; handover K=%llu; records per CPU=%llu",
		(unsigned long long)tot_rounds, (unsigned long long)sh->intr_ebusy,
		(unsigned long long)sh->intr_eperm, (unsigned long long)sh->intr_holder_ok,
		(unsigned long long)handover, (unsigned long long)count);
	rm_close(&ch);
	return rm_exit();
}

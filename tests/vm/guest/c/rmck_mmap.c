/* SPDX-License-Identifier: MIT */
/*
 * rmck_mmap - the mmap contract of a relaymap consumer fd, and the legacy
 * debugfs view.
 *
 *   rmck_mmap -n NAME [--debugfs]
 *
 * For every CPU's consumer fd (OPEN_CONSUMER(ALL)): mmap(alloc_size,
 * PROT_READ, MAP_SHARED, 0) works and every page of it can be read; any
 * other length or a non-zero offset is refused with EINVAL (alloc_size -
 * 4096, alloc_size + 4096, one page, alloc_size at offset 4096, alloc_size
 * - 4096 at offset 4096, alloc_size at offset alloc_size, also with
 * MAP_PRIVATE); a read-only MAP_PRIVATE mapping works and shows the same
 * bytes; two mappings at once work.
 *
 * Write and exec access, on the consumer fd of the first CPU (always
 * O_RDONLY): no way to write to the kernel's buffer: PROT_WRITE +
 * MAP_SHARED is EACCES; PROT_EXEC (shared or private) is EPERM;
 * mprotect() to PROT_WRITE or PROT_EXEC fails; reopening the fd O_RDWR
 * through /proc/self/fd is refused or gives a file that cannot be mapped
 * writable either; a write through /proc/self/mem (FOLL_FORCE) fails; a
 * writable MAP_PRIVATE mapping is refused or copy-on-write, and the
 * buffer is untouched.
 *
 * The legacy debugfs view (required with --debugfs, else checked if
 * present): the control file answers GET_INFO like the channel fd and
 * refuses PUT_CONSUMED with EPERM; each cpuN file can be mapped read-only
 * by root with the same length/offset rules, shows the very bytes of the
 * consumer fd's mapping and polls POLLIN while data is pending, but
 * read() on it is refused and PROT_WRITE is EPERM even on an O_RDWR open.
 *
 * Then, if the load generator is loaded, it writes a few records, FLUSH
 * makes them visible, and the mapping shows sub-buffer 0 with a valid
 * header and valid records: the mapping is the kernel's buffer, not a copy.
 */
#include "rmtest.h"

#include <sys/wait.h>

/*
 * A mapping that should not exist: what does its last page show? In a
 * child, since the access may raise SIGBUS. With a non-zero offset the
 * last page lies past the end of the relay buffer.
 */
static void probe_last_page(const volatile uint8_t *p, size_t len, off_t off,
			    size_t alloc)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	int status;
	pid_t pid;

	if ((size_t)off + len <= alloc)
		return;
	fflush(stdout);
	pid = fork();
	if (pid < 0)
		return;
	if (pid == 0) {
		uint64_t nz = 0;
		size_t first = (size_t)off >= alloc ? 0 : alloc - (size_t)off;

		/* Page by page: a SIGBUS ends the child, the output says how far. */
		for (size_t o = first; o < len; o += page) {
			uint64_t n = 0;

			for (size_t i = 0; i < page; i++)
				n += p[o + i] != 0;
			nz += n;
			printf("rmck_mmap:   probe: page at file offset %zu (past the %zu-byte buffer) readable: %llu non-zero bytes (kernel memory outside the buffer)\n",
			       (size_t)off + o, alloc, (unsigned long long)n);
			fflush(stdout);
		}
		_exit(0);
	}
	waitpid(pid, &status, 0);
	if (WIFSIGNALED(status))
		rm_note("  probe: reading past the %zu-byte buffer through this mapping ended with signal %d (%s)",
			alloc, WTERMSIG(status), strsignal(WTERMSIG(status)));
}

static void expect_einval_flags(int fd, unsigned int cpu, size_t len,
				off_t off, int flags, const char *what,
				size_t alloc)
{
	void *p = mmap(NULL, len, PROT_READ, flags, fd, off);

	if (p != MAP_FAILED) {
		rm_bad("cpu%u: mmap %s (len=%zu off=%lld) succeeded, expected EINVAL",
		       cpu, what, len, (long long)off);
		probe_last_page(p, len, off, alloc);
		munmap(p, len);
		return;
	}
	if (errno != EINVAL) {
		rm_bad("cpu%u: mmap %s (len=%zu off=%lld): %s, expected EINVAL",
		       cpu, what, len, (long long)off, strerror(errno));
		return;
	}
	rm_note("cpu%u: mmap %s (len=%zu off=%lld) -> EINVAL (ok)", cpu, what,
		len, (long long)off);
}

static void expect_einval(int fd, unsigned int cpu, size_t len, off_t off,
			  const char *what, size_t alloc)
{
	expect_einval_flags(fd, cpu, len, off, MAP_SHARED, what, alloc);
}

static void expect_einval_private(int fd, unsigned int cpu, size_t len,
				  off_t off, const char *what, size_t alloc)
{
	expect_einval_flags(fd, cpu, len, off, MAP_PRIVATE, what, alloc);
}

/* A read-only MAP_PRIVATE mapping works and shows the shared mapping's bytes. */
static void check_private(int fd, unsigned int cpu, size_t alloc, size_t page)
{
	const uint8_t *sh = mmap(NULL, alloc, PROT_READ, MAP_SHARED, fd, 0);
	const uint8_t *pr = mmap(NULL, alloc, PROT_READ, MAP_PRIVATE, fd, 0);

	if (sh == MAP_FAILED || pr == MAP_FAILED) {
		rm_bad("cpu%u: read-only MAP_PRIVATE (%s) next to MAP_SHARED (%s)",
		       cpu, pr == MAP_FAILED ? strerror(errno) : "ok",
		       sh == MAP_FAILED ? "failed" : "ok");
	} else if (memcmp(sh, pr, alloc)) {
		/* Nothing writes now: the bytes must be the same. */
		rm_bad("cpu%u: read-only MAP_PRIVATE mapping differs from the MAP_SHARED one",
		       cpu);
	} else {
		rm_note("cpu%u: read-only MAP_PRIVATE mapping works, %zu pages equal to MAP_SHARED (ok)",
			cpu, alloc / page);
	}
	if (sh != MAP_FAILED)
		munmap((void *)sh, alloc);
	if (pr != MAP_FAILED)
		munmap((void *)pr, alloc);
}

/* A mapping that must be refused with @want_errno. */
static void expect_refused(int fd, const char *what, size_t len, int prot,
			   int flags, int want_errno)
{
	void *p = mmap(NULL, len, prot, flags, fd, 0);

	if (p != MAP_FAILED) {
		rm_bad("%s succeeded, expected %s", what, strerror(want_errno));
		munmap(p, len);
		return;
	}
	if (errno != want_errno) {
		rm_bad("%s: %s, expected %s", what, strerror(errno),
		       strerror(want_errno));
		return;
	}
	rm_note("%s -> %s (ok)", what, strerror(errno));
}

/* mprotect(prot) on a shared read-only mapping must fail. */
static void expect_no_mprotect(int fd, const char *what, size_t len, int prot,
			       const char *protname)
{
	void *p = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, 0);

	if (p == MAP_FAILED) {
		rm_bad("%s: read-only MAP_SHARED mapping: %s", what, strerror(errno));
		return;
	}
	if (mprotect(p, len, prot) == 0)
		rm_bad("%s: mprotect(%s) of a shared read-only mapping succeeded",
		       what, protname);
	else
		rm_note("%s: mprotect(%s) of the shared read-only mapping -> %s (ok)",
			what, protname, strerror(errno));
	munmap(p, len);
}

static void check_write_access(int fd, unsigned int c, size_t alloc)
{
	const volatile uint8_t *ro;
	volatile uint8_t *priv;
	char path[64];
	uint8_t before, x;
	int rw, mem;

	ro = mmap(NULL, alloc, PROT_READ, MAP_SHARED, fd, 0);
	if (ro == MAP_FAILED) {
		rm_bad("cpu%u: read-only MAP_SHARED mapping: %s", c, strerror(errno));
		return;
	}
	before = ro[0];

	if ((fcntl(fd, F_GETFL) & O_ACCMODE) != O_RDONLY)
		rm_bad("cpu%u: the consumer fd is not O_RDONLY (flags %#x)", c,
		       fcntl(fd, F_GETFL));
	if (!(fcntl(fd, F_GETFD) & FD_CLOEXEC))
		rm_bad("cpu%u: the consumer fd has no FD_CLOEXEC", c);
	expect_refused(fd, "consumer fd: mmap(PROT_READ|PROT_WRITE, MAP_SHARED)",
		       alloc, PROT_READ | PROT_WRITE, MAP_SHARED, EACCES);
	expect_refused(fd, "consumer fd: mmap(PROT_READ|PROT_EXEC, MAP_SHARED)",
		       alloc, PROT_READ | PROT_EXEC, MAP_SHARED, EPERM);
	expect_refused(fd, "consumer fd: mmap(PROT_READ|PROT_EXEC, MAP_PRIVATE)",
		       alloc, PROT_READ | PROT_EXEC, MAP_PRIVATE, EPERM);
	expect_no_mprotect(fd, "consumer fd", alloc, PROT_READ | PROT_WRITE, "PROT_READ|PROT_WRITE");
	expect_no_mprotect(fd, "consumer fd", alloc, PROT_READ | PROT_EXEC, "PROT_READ|PROT_EXEC");

	/* Reopening the anon inode read-write through /proc gains nothing. */
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	rw = open(path, O_RDWR | O_CLOEXEC);
	if (rw < 0) {
		rm_note("open(%s, O_RDWR) of the consumer fd: %s (refused: fine)",
			path, strerror(errno));
	} else {
		void *p = mmap(NULL, alloc, PROT_READ | PROT_WRITE, MAP_SHARED, rw, 0);

		if (p != MAP_FAILED) {
			rm_bad("cpu%u: the consumer fd reopened O_RDWR through %s maps PROT_WRITE|MAP_SHARED",
			       c, path);
			munmap(p, alloc);
		} else {
			rm_note("consumer fd reopened O_RDWR through %s: PROT_WRITE mapping -> %s (ok)",
				path, strerror(errno));
		}
		close(rw);
	}

	/* A debugger-style write (FOLL_FORCE) into the shared mapping. */
	mem = open("/proc/self/mem", O_RDWR | O_CLOEXEC);
	if (mem < 0) {
		rm_note("/proc/self/mem: %s (FOLL_FORCE write not tried)", strerror(errno));
	} else {
		x = (uint8_t)~before;
		if (pwrite(mem, &x, 1, (off_t)(uintptr_t)ro) == 1)
			rm_bad("cpu%u: a write through /proc/self/mem into the shared read-only mapping succeeded",
			       c);
		else
			rm_note("write through /proc/self/mem into the shared read-only mapping -> %s (ok)",
				strerror(errno));
		close(mem);
	}

	/* MAP_PRIVATE + PROT_WRITE: refused, or a private copy. */
	priv = mmap(NULL, alloc, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	if (priv == MAP_FAILED) {
		rm_note("writable MAP_PRIVATE mapping of the consumer fd -> %s (refused: fine)",
			strerror(errno));
	} else {
		RM_EXPECT_EQ("first byte through MAP_PRIVATE", priv[0], before);
		priv[0] = (uint8_t)~before;
		RM_EXPECT_EQ("private copy after a write", priv[0], (uint8_t)~before);
		rm_note("writable MAP_PRIVATE mapping works (copy-on-write)");
		munmap((void *)priv, alloc);
	}
	RM_EXPECT_EQ("kernel buffer byte 0 after all write attempts", ro[0], before);
	munmap((void *)ro, alloc);
}

/* The mapping rules on one fd (consumer fd or debugfs cpuN file). */
static void check_lengths(int fd, unsigned int c, size_t alloc, size_t page,
			  const char *kind)
{
	volatile const uint8_t *p;
	uint64_t sum = 0;

	rm_set_phase("%s cpu%u", kind, c);
	p = mmap(NULL, alloc, PROT_READ, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED) {
		rm_bad("cpu%u: mmap of the whole %s (%zu bytes): %s", c, kind,
		       alloc, strerror(errno));
		return;
	}
	/* Touch every page (a SIGBUS/SIGSEGV here kills the test). */
	for (size_t off = 0; off < alloc; off += page)
		sum += p[off] + p[off + page - 1];
	rm_note("cpu%u: mmap of the whole %s (%zu bytes, %zu pages) ok, every page readable (sum %llu)",
		c, kind, alloc, alloc / page, (unsigned long long)sum);
	munmap((void *)p, alloc);

	if (alloc > page)
		expect_einval(fd, c, alloc - page, 0, "alloc_size - 4096", alloc);
	expect_einval(fd, c, alloc + page, 0, "alloc_size + 4096", alloc);
	expect_einval(fd, c, alloc + 16 * page, 0, "alloc_size + 64 KiB", alloc);
	if (alloc > page) {
		expect_einval(fd, c, page, 0, "one page", alloc);
		expect_einval(fd, c, alloc - page, (off_t)page,
			      "alloc_size - 4096 at offset 4096", alloc);
	}
	expect_einval(fd, c, alloc, (off_t)page, "alloc_size at offset 4096", alloc);
	expect_einval(fd, c, alloc, (off_t)alloc, "alloc_size at offset alloc_size", alloc);
	expect_einval(fd, c, alloc, (off_t)(alloc + 256 * page),
		      "alloc_size at offset alloc_size + 1 MiB", alloc);
	expect_einval_private(fd, c, alloc, (off_t)page,
			      "MAP_PRIVATE alloc_size at offset 4096", alloc);
	check_private(fd, c, alloc, page);

	/* A second mapping of the same fd at the same time works too. */
	p = mmap(NULL, alloc, PROT_READ, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED) {
		rm_bad("cpu%u: second whole-%s mmap: %s", c, kind, strerror(errno));
	} else {
		volatile const uint8_t *q = mmap(NULL, alloc, PROT_READ,
						 MAP_SHARED, fd, 0);

		if (q == MAP_FAILED)
			rm_bad("cpu%u: two whole-%s mappings at once: %s", c,
			       kind, strerror(errno));
		else
			munmap((void *)q, alloc);
		munmap((void *)p, alloc);
	}
}

/* debugfs cpuN files of the channel, opened O_RDONLY, by CPU id. */
static int dbg_fd[RM_MAXCPU];

/*
 * The legacy debugfs view without data: control answers like a channel
 * fd, cpuN maps by the same rules, read() is refused, no writable mapping.
 */
static void check_debugfs_static(const struct rm_chan *ch, size_t alloc,
				 size_t page)
{
	struct relaymap_info di;
	struct relaymap_consume cons;
	char path[256];
	int ctl, err, rw;

	rm_set_phase("debugfs control");
	ctl = rm_open_control(ch->name);
	if (ctl < 0) {
		rm_bad("open " RM_DIR "/%s/control: %s", ch->name, strerror(errno));
		return;
	}
	err = rm_get_info(ctl, &di);
	if (err) {
		rm_bad("GET_INFO on the debugfs control file: %s", strerror(-err));
	} else if (memcmp(&di, &ch->info, sizeof(di))) {
		rm_bad("GET_INFO on the debugfs control file differs from GET_INFO on the channel fd");
	} else {
		rm_note("debugfs control: GET_INFO equals the channel fd's (ok)");
	}
	memset(&cons, 0, sizeof(cons));
	cons.size = sizeof(cons);
	cons.count = 1;
	err = rm_ioctl(ctl, RELAYMAP_IOC_PUT_CONSUMED, &cons);
	if (err != -EPERM)
		rm_bad("PUT_CONSUMED on the debugfs control file: %s, expected EPERM",
		       err ? strerror(-err) : "success");
	close(ctl);

	for (unsigned int i = 0; i < ch->ncpus; i++) {
		unsigned int c = ch->cpus[i];
		char buf[256];
		ssize_t n;

		rm_cpu_path(path, sizeof(path), ch->name, c);
		dbg_fd[c] = open(path, O_RDONLY | O_CLOEXEC);
		if (dbg_fd[c] < 0) {
			rm_bad("open %s: %s", path, strerror(errno));
			continue;
		}
		check_lengths(dbg_fd[c], c, alloc, page, "debugfs cpu file");
		n = read(dbg_fd[c], buf, sizeof(buf));
		if (n >= 0)
			rm_bad("read() of %s returned %zd: the debugfs view must refuse read()",
			       path, n);
		else
			rm_note("read() of %s -> %s (refused: ok)", path, strerror(errno));
	}
	rm_set_phase("debugfs cpu file write access");
	rm_cpu_path(path, sizeof(path), ch->name, ch->cpus[0]);
	rw = open(path, O_RDWR | O_CLOEXEC);
	if (rw < 0) {
		rm_note("open(%s, O_RDWR) as uid %u: %s (refused at open: fine)",
			path, getuid(), strerror(errno));
	} else {
		rm_note("open(%s, O_RDWR) as uid %u works (root bypasses mode 0400)",
			path, getuid());
		expect_refused(rw, "debugfs O_RDWR open: mmap(PROT_READ|PROT_WRITE, MAP_SHARED)",
			       alloc, PROT_READ | PROT_WRITE, MAP_SHARED, EPERM);
		expect_refused(rw, "debugfs O_RDWR open: mmap(PROT_WRITE, MAP_SHARED)",
			       alloc, PROT_WRITE, MAP_SHARED, EPERM);
		expect_no_mprotect(rw, "debugfs O_RDWR open", alloc,
				   PROT_READ | PROT_WRITE, "PROT_READ|PROT_WRITE");
		close(rw);
	}
}

int main(int argc, char **argv)
{
	struct rm_chan ch;
	const char *name = NULL;
	size_t alloc, page = (size_t)sysconf(_SC_PAGESIZE);
	bool want_debugfs = false, debugfs_view;
	char path[256];

	rm_init(argv[0], 120);
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "-n") && i + 1 < argc)
			name = argv[++i];
		else if (!strcmp(argv[i], "--debugfs"))
			want_debugfs = true;
		else
			rm_die("usage: rmck_mmap -n NAME [--debugfs]");
	}
	if (!name)
		rm_die("usage: rmck_mmap -n NAME [--debugfs]");
	for (unsigned int c = 0; c < RM_MAXCPU; c++)
		dbg_fd[c] = -1;
	rm_set_phase("open");
	rm_open(&ch, name, RM_OPEN_CLAIM); /* consumer fds, nothing mapped yet */
	alloc = ch.info.alloc_size;
	rm_note("subbuf_size=%llu n_subbufs=%llu alloc_size=%zu page_size=%u cpus=%u",
		(unsigned long long)ch.info.subbuf_size,
		(unsigned long long)ch.info.n_subbufs, alloc, ch.info.page_size,
		ch.ncpus);
	RM_EXPECT_EQ("alloc_size == subbuf_size * n_subbufs", alloc,
		     ch.info.subbuf_size * ch.info.n_subbufs);
	RM_EXPECT_EQ("subbuf_size % page size", ch.info.subbuf_size % page, 0);

	for (unsigned int i = 0; i < ch.ncpus; i++)
		check_lengths(ch.fd[ch.cpus[i]], ch.cpus[i], alloc, page, "consumer fd");

	rm_set_phase("write/exec access");
	check_write_access(ch.fd[ch.cpus[0]], ch.cpus[0], alloc);

	snprintf(path, sizeof(path), RM_DIR "/%s", name);
	debugfs_view = access(path, F_OK) == 0;
	if (want_debugfs && !debugfs_view)
		rm_bad("--debugfs: %s does not exist", path);
	if (debugfs_view)
		check_debugfs_static(&ch, alloc, page);
	else
		rm_note("no debugfs view (%s): legacy view not checked", path);

	if (lg_present()) {
		rm_set_phase("data through the mapping");
		for (unsigned int i = 0; i < ch.ncpus; i++)
			rm_map_one(&ch, ch.cpus[i], 0);
		lg_set("channel", name);
		lg_set("mode", "lossless");
		lg_setu("record_size", 64);
		lg_setu("rate", 0);
		lg_setu("duration_ms", 0);
		lg_setu("count", 100);
		lg_start();
		if (!lg_wait_idle(60000))
			rm_die("loadgen did not write 100 records per CPU");
		lg_stop();
		rm_flush_x(ch.ctl, RELAYMAP_ALL_CPUS);
		for (unsigned int i = 0; i < ch.ncpus; i++) {
			unsigned int c = ch.cpus[i];
			struct rm_drain d;

			if (dbg_fd[c] >= 0) {
				/* The observer's mapping is the same memory, and it polls. */
				struct pollfd pfd = { .fd = dbg_fd[c], .events = POLLIN };
				const uint8_t *o = mmap(NULL, alloc, PROT_READ, MAP_SHARED,
							dbg_fd[c], 0);

				if (o == MAP_FAILED) {
					rm_bad("cpu%u: mmap of the debugfs cpu file: %s", c,
					       strerror(errno));
				} else {
					if (memcmp(o, ch.map[c], alloc))
						rm_bad("cpu%u: the debugfs cpu file's mapping differs from the consumer fd's",
						       c);
					else
						rm_note("cpu%u: debugfs observer mapping == consumer mapping (%zu bytes)",
							c, alloc);
					munmap((void *)o, alloc);
				}
				if (poll(&pfd, 1, 0) != 1 || !(pfd.revents & POLLIN))
					rm_bad("cpu%u: poll(0) on the debugfs cpu file with data pending: revents %#x, expected POLLIN",
					       c, pfd.revents);
			}
			rm_drain_init(&d, &ch, c, 64);
			rm_drain_once(&ch, &d);
			rm_note("cpu%u: through the mapping: subbufs=%llu records=%llu first_seq=%llu flushed=%llu",
				c, (unsigned long long)d.subbufs,
				(unsigned long long)d.st.records,
				(unsigned long long)d.st.first_seq,
				(unsigned long long)d.flushed_sbs);
			RM_EXPECT_EQ("records seen through the mapping", d.st.records, 100);
			RM_EXPECT_EQ("first record seq", d.st.first_seq, 0);
			RM_EXPECT_EQ("seq gaps", d.st.gap_records, 0);
			RM_EXPECT_EQ("record errors", rm_stream_errors(&d.st), 0);
			RM_EXPECT_EQ("header violations", d.hdr_violations, 0);
		}
	} else {
		rm_note("loadgen not loaded: mapping contents not checked");
	}
	for (unsigned int c = 0; c < RM_MAXCPU; c++)
		if (dbg_fd[c] >= 0)
			close(dbg_fd[c]);
	rm_close(&ch);
	return rm_exit();
}

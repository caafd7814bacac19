/* SPDX-License-Identifier: MIT */
/*
 * rmck_mmap - the mmap contract of a relaymap CPU file.
 *
 *   rmck_mmap -n NAME
 *
 * For every CPU file: mmap(alloc_size, PROT_READ, MAP_SHARED, 0) works and
 * every page of it can be read; any other length or a non-zero offset is
 * refused with EINVAL (alloc_size - 4096, alloc_size + 4096, one page,
 * alloc_size at offset 4096, alloc_size - 4096 at offset 4096, alloc_size
 * at offset alloc_size, also with MAP_PRIVATE); a read-only MAP_PRIVATE
 * mapping works and shows the same bytes.
 *
 * Write access, on cpu file of the first CPU: no way to write to the
 * kernel's buffer, not even for root (who can open the 0400 file O_RDWR):
 * PROT_WRITE + MAP_SHARED is EACCES on an O_RDONLY open and EPERM on an
 * O_RDWR open; mprotect(PROT_WRITE) on a shared read-only mapping fails
 * (from either open); a write through /proc/self/mem (FOLL_FORCE) fails;
 * a writable MAP_PRIVATE mapping is copy-on-write and leaves the buffer
 * untouched.
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

/* mprotect(PROT_READ | PROT_WRITE) on a shared read-only mapping must fail. */
static void expect_no_mprotect_write(int fd, const char *what, size_t len)
{
	void *p = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, 0);

	if (p == MAP_FAILED) {
		rm_bad("%s: read-only MAP_SHARED mapping: %s", what, strerror(errno));
		return;
	}
	if (mprotect(p, len, PROT_READ | PROT_WRITE) == 0)
		rm_bad("%s: mprotect(PROT_READ|PROT_WRITE) of a shared read-only mapping succeeded: the kernel buffer is writable",
		       what);
	else
		rm_note("%s: mprotect(PROT_READ|PROT_WRITE) of the shared read-only mapping -> %s (ok)",
			what, strerror(errno));
	munmap(p, len);
}

static void check_write_access(const struct rm_chan *ch, const char *name,
			       unsigned int c, size_t alloc)
{
	const volatile uint8_t *ro;
	volatile uint8_t *priv;
	char path[256];
	uint8_t before, x;
	int fd = ch->fd[c], rw, mem;

	rm_cpu_path(path, sizeof(path), name, c);
	ro = mmap(NULL, alloc, PROT_READ, MAP_SHARED, fd, 0);
	if (ro == MAP_FAILED) {
		rm_bad("cpu%u: read-only MAP_SHARED mapping: %s", c, strerror(errno));
		return;
	}
	before = ro[0];

	expect_refused(fd, "O_RDONLY open: mmap(PROT_READ|PROT_WRITE, MAP_SHARED)",
		       alloc, PROT_READ | PROT_WRITE, MAP_SHARED, EACCES);
	expect_no_mprotect_write(fd, "O_RDONLY open", alloc);

	/* root bypasses the 0400 mode: the mapping must refuse writes itself. */
	rw = open(path, O_RDWR | O_CLOEXEC);
	if (rw < 0) {
		rm_note("open(%s, O_RDWR) as uid %u: %s (refused at open: fine)",
			path, getuid(), strerror(errno));
	} else {
		rm_note("open(%s, O_RDWR) as uid %u works (root bypasses mode 0400)",
			path, getuid());
		expect_refused(rw, "O_RDWR open: mmap(PROT_READ|PROT_WRITE, MAP_SHARED)",
			       alloc, PROT_READ | PROT_WRITE, MAP_SHARED, EPERM);
		expect_refused(rw, "O_RDWR open: mmap(PROT_WRITE, MAP_SHARED)",
			       alloc, PROT_WRITE, MAP_SHARED, EPERM);
		expect_no_mprotect_write(rw, "O_RDWR open", alloc);
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

	/* MAP_PRIVATE: readable, the same bytes; written, a private copy. */
	priv = mmap(NULL, alloc, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	if (priv == MAP_FAILED) {
		rm_bad("cpu%u: writable MAP_PRIVATE mapping: %s", c, strerror(errno));
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

int main(int argc, char **argv)
{
	struct rm_chan ch;
	const char *name = argc == 3 && !strcmp(argv[1], "-n") ? argv[2] : NULL;
	size_t alloc, page = (size_t)sysconf(_SC_PAGESIZE);
	uint64_t expect_alloc;

	rm_init(argv[0], 120);
	if (!name)
		rm_die("usage: rmck_mmap -n NAME");
	rm_set_phase("open");
	rm_open(&ch, name, 0); /* open the CPU files, map nothing yet */
	alloc = ch.info.alloc_size;
	expect_alloc = (ch.info.subbuf_size * ch.info.n_subbufs + page - 1) & ~(uint64_t)(page - 1);
	rm_note("subbuf_size=%llu n_subbufs=%llu alloc_size=%zu (PAGE_ALIGN(subbuf_size*n_subbufs)=%llu) cpus=%u",
		(unsigned long long)ch.info.subbuf_size,
		(unsigned long long)ch.info.n_subbufs, alloc,
		(unsigned long long)expect_alloc, ch.ncpus);
	RM_EXPECT_EQ("alloc_size", alloc, expect_alloc);

	for (unsigned int i = 0; i < ch.ncpus; i++) {
		unsigned int c = ch.cpus[i];
		int fd = ch.fd[c];
		volatile const uint8_t *p;
		uint64_t sum = 0;

		rm_set_phase("cpu%u", c);
		p = mmap(NULL, alloc, PROT_READ, MAP_SHARED, fd, 0);
		if (p == MAP_FAILED) {
			rm_bad("cpu%u: mmap of the whole file (%zu bytes): %s", c,
			       alloc, strerror(errno));
			continue;
		}
		/* Touch every page (a SIGBUS/SIGSEGV here kills the test). */
		for (size_t off = 0; off < alloc; off += page)
			sum += p[off] + p[off + page - 1];
		rm_note("cpu%u: mmap of the whole file (%zu bytes, %zu pages) ok, every page readable (sum %llu)",
			c, alloc, alloc / page, (unsigned long long)sum);
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

		/* A second mapping of the same file at the same time works too. */
		p = mmap(NULL, alloc, PROT_READ, MAP_SHARED, fd, 0);
		if (p == MAP_FAILED) {
			rm_bad("cpu%u: second whole-file mmap: %s", c, strerror(errno));
		} else {
			volatile const uint8_t *q = mmap(NULL, alloc, PROT_READ,
							 MAP_SHARED, fd, 0);

			if (q == MAP_FAILED)
				rm_bad("cpu%u: two whole-file mappings at once: %s",
				       c, strerror(errno));
			else
				munmap((void *)q, alloc);
			munmap((void *)p, alloc);
		}
	}

	rm_set_phase("write access");
	check_write_access(&ch, name, ch.cpus[0], alloc);

	if (lg_present()) {
		rm_set_phase("data through the mapping");
		for (unsigned int i = 0; i < ch.ncpus; i++)
			rm_map_cpu(&ch, ch.cpus[i], RM_OPEN_MAP);
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
	rm_close(&ch);
	return rm_exit();
}

/* SPDX-License-Identifier: MIT */
/*
 * rmck_exwalk - check a dump of an example module's channel record by
 * record: every record exactly once, against the module's own counts.
 *
 *   rmck_exwalk rmexample DIR [--counts FILE] [--rejected N]
 *   rmck_exwalk hello DIR --expect N
 *
 * DIR holds cpuN.out files as `relaymap-dump NAME -o DIR` writes them (and
 * `relaymap-vmtest count --out DIR`): per CPU, that CPU's records in
 * order, each 8-byte aligned ({u64 ts_ns; u16 event_id; u16 type; u32
 * len;} + len bytes, in host order: include/relaymap_abi.h), either as one
 * stream of records or as whole CTF packets back to back (a file that
 * starts with the packet magic: each packet a struct relaymap_subbuf_header,
 * the records up to content_size / 8, zeros up to packet_size / 8). The record
 * formats are read from their description (kmod/examples/rmexample and
 * kmod/README.md), not from the modules' code:
 *
 * rmexample: binary records (event_id 0, type 0x100, len 24) {u64 seq; u32
 *   cpu; u32 kind; u64 check}, kind 1 (kthread) or 2 (hrtimer), check =
 *   FNV-1a 64 over the 16 bytes of seq, cpu, kind; text records (event_id 1,
 *   type 1) "rmexample cpu C kind K seq S", kind 3 (printf_wait) or 4
 *   (try_printf). cpu must be the file's CPU, seq strictly increasing per
 *   (cpu, kind). With --counts (a copy of /sys/module/rmexample/parameters/
 *   counts, read after the run): per CPU and kind, received == the
 *   module's written count and every seq < its attempts (written + dropped
 *   or skipped), so each record the module wrote arrived exactly once.
 * hello: binary records (event_id 0, type 0x100, len 16) {u64 seq; u64
 *   square}, square == seq * seq; over all files every seq 0..N-1 exactly
 *   once; one text record "hello_relaymap: N of N records".
 *
 * Prints `rmck_exwalk: cpu C kind K records R first F last L` per stream
 * and a total; exits 1 after a FAIL line for every failed check.
 */
#include "rmtest.h"

#include <dirent.h>
#include <sys/stat.h>

#define EX_KINDS 5 /* 1..4 */
#define EX_TYPE 0x100

static const char *const kind_name[EX_KINDS] = {
	"?", "thread", "timer", "printf", "try_printf",
};

struct ex_stream {
	uint64_t records, next_seq, first, last;
	bool any;
};

static struct ex_stream streams[RM_MAXCPU][EX_KINDS];
static bool cpu_seen[RM_MAXCPU];
static uint64_t total_records, other_records;

static uint64_t fnv64(const uint8_t *p, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	while (n--)
		h = (h ^ *p++) * 0x100000001b3ULL;
	return h;
}

static uint8_t *read_file(const char *path, size_t *len)
{
	struct stat sb;
	uint8_t *buf;
	size_t got = 0;
	int fd = open(path, O_RDONLY);

	if (fd < 0 || fstat(fd, &sb))
		rm_die("open %s: %s", path, strerror(errno));
	buf = malloc((size_t)sb.st_size + 1);
	if (!buf)
		rm_die("out of memory for %s", path);
	while (got < (size_t)sb.st_size) {
		ssize_t n = read(fd, buf + got, (size_t)sb.st_size - got);

		if (n <= 0)
			rm_die("read %s: %s", path, n ? strerror(errno) : "short");
		got += (size_t)n;
	}
	close(fd);
	*len = got;
	return buf;
}

static void ex_seq(unsigned int cpu, unsigned int kind, uint64_t seq,
		   const char *path, size_t off)
{
	struct ex_stream *s = &streams[cpu][kind];

	if (s->any && seq < s->next_seq)
		rm_bad("%s @%zu: cpu %u %s seq %llu after %llu (duplicate or out of order)",
		       path, off, cpu, kind_name[kind], (unsigned long long)seq,
		       (unsigned long long)s->last);
	if (!s->any)
		s->first = seq;
	s->any = true;
	s->last = seq;
	s->next_seq = seq + 1;
	s->records++;
}

/* rmexample: one record of file @path (CPU @cpu) at @off. */
static void ex_record(unsigned int cpu, const struct relaymap_record *r,
		      const uint8_t *data, const char *path, size_t off)
{
	if (r->event_id == RELAYMAP_EVENT_RECORD && r->type == EX_TYPE && r->len == 24) {
		uint64_t seq, check;
		uint32_t rcpu, kind;

		memcpy(&seq, data, 8);
		memcpy(&rcpu, data + 8, 4);
		memcpy(&kind, data + 12, 4);
		memcpy(&check, data + 16, 8);
		if (check != fnv64(data, 16))
			rm_bad("%s @%zu: bad check %#llx (seq %llu)", path, off,
			       (unsigned long long)check, (unsigned long long)seq);
		else if (rcpu != cpu)
			rm_bad("%s @%zu: record of cpu %u in the file of cpu %u", path, off, rcpu, cpu);
		else if (kind != 1 && kind != 2)
			rm_bad("%s @%zu: binary record of kind %u", path, off, kind);
		else
			ex_seq(cpu, kind, seq, path, off);
		return;
	}
	if (r->event_id == RELAYMAP_EVENT_PRINTF && r->type == RELAYMAP_REC_PRINTF) {
		char text[128], tail;
		unsigned int rcpu, kind;
		unsigned long long seq;

		if (r->len >= sizeof(text)) {
			rm_bad("%s @%zu: text record of %u bytes", path, off, r->len);
			return;
		}
		memcpy(text, data, r->len);
		text[r->len] = '\0';
		if (memchr(text, '\0', r->len) ||
		    sscanf(text, "rmexample cpu %u kind %u seq %llu%c", &rcpu, &kind, &seq, &tail) != 3)
			rm_bad("%s @%zu: text record \"%s\"", path, off, text);
		else if (rcpu != cpu)
			rm_bad("%s @%zu: text of cpu %u in the file of cpu %u", path, off, rcpu, cpu);
		else if (kind != 3 && kind != 4)
			rm_bad("%s @%zu: text record of kind %u", path, off, kind);
		else
			ex_seq(cpu, kind, seq, path, off);
		return;
	}
	other_records++;
	rm_bad("%s @%zu: unexpected record event_id %u type %#x len %u", path, off,
	       r->event_id, r->type, r->len);
}

/* hello: seqs seen, over every file. */
static uint8_t *hello_seen;
static uint64_t hello_n, hello_dups, hello_text;

static void hello_record(const struct relaymap_record *r, const uint8_t *data,
			 const char *path, size_t off)
{
	if (r->event_id == RELAYMAP_EVENT_RECORD && r->type == EX_TYPE && r->len == 16) {
		uint64_t seq, sq;

		memcpy(&seq, data, 8);
		memcpy(&sq, data + 8, 8);
		if (sq != seq * seq)
			rm_bad("%s @%zu: seq %llu square %llu", path, off,
			       (unsigned long long)seq, (unsigned long long)sq);
		else if (seq >= hello_n)
			rm_bad("%s @%zu: seq %llu >= %llu", path, off,
			       (unsigned long long)seq, (unsigned long long)hello_n);
		else if (hello_seen[seq]++)
			hello_dups++;
		return;
	}
	if (r->event_id == RELAYMAP_EVENT_PRINTF && r->type == RELAYMAP_REC_PRINTF) {
		char want[96];

		snprintf(want, sizeof(want), "hello_relaymap: %llu of %llu records",
			 (unsigned long long)hello_n, (unsigned long long)hello_n);
		if (r->len == strlen(want) && !memcmp(data, want, r->len))
			hello_text++;
		else
			rm_bad("%s @%zu: text record \"%.*s\", expected \"%s\"", path, off,
			       (int)r->len, (const char *)data, want);
		return;
	}
	other_records++;
	rm_bad("%s @%zu: unexpected record event_id %u type %#x len %u", path, off,
	       r->event_id, r->type, r->len);
}

/* Records in buf[off, len): one stream, or the events of one packet. */
static void walk_records(const uint8_t *buf, size_t off, size_t len,
			 const char *path, unsigned int cpu, bool hello)
{
	while (off < len) {
		struct relaymap_record r;

		if (len - off < sizeof(r)) {
			rm_bad("%s: %zu bytes at %zu: a record header cut short", path, len - off, off);
			break;
		}
		memcpy(&r, buf + off, sizeof(r));
		if (r.len > len - off - sizeof(r)) {
			rm_bad("%s @%zu: len %u runs past the end (%zu)", path, off, r.len, len);
			break;
		}
		total_records++;
		if (hello)
			hello_record(&r, buf + off + sizeof(r), path, off);
		else
			ex_record(cpu, &r, buf + off + sizeof(r), path, off);
		off += rm_align8(sizeof(r) + r.len);
	}
}

static uint64_t packets;

static void walk_file(const char *path, unsigned int cpu, bool hello)
{
	size_t len, off = 0;
	uint8_t *buf = read_file(path, &len);
	uint32_t magic = 0;

	if (len >= 4)
		memcpy(&magic, buf, 4);
	if (magic != RELAYMAP_CTF_MAGIC) {
		walk_records(buf, 0, len, path, cpu, hello);
		free(buf);
		return;
	}
	/* Whole packets: header, events to content_size, padding to packet_size. */
	while (off < len) {
		struct relaymap_subbuf_header h;
		uint64_t content, size;

		if (len - off < sizeof(h)) {
			rm_bad("%s @%zu: %zu bytes, a packet header cut short", path, off, len - off);
			break;
		}
		memcpy(&h, buf + off, sizeof(h));
		content = h.content_size / 8;
		size = h.packet_size / 8;
		if (h.magic != RELAYMAP_CTF_MAGIC || h.header_size != sizeof(h) ||
		    content < sizeof(h) || size < content || size > len - off || h.cpu_id != cpu) {
			rm_bad("%s @%zu: bad packet header (magic %#x cpu %u header_size %u content %llu packet %llu)",
			       path, off, h.magic, h.cpu_id, h.header_size,
			       (unsigned long long)content, (unsigned long long)size);
			break;
		}
		packets++;
		walk_records(buf + off, sizeof(h), content, path, cpu, hello);
		off += size;
	}
	free(buf);
}

/* "cpu C key value ..." lines of the module's counts; value of @key. */
static bool counts_get(const char *text, const char *who, const char *key,
		       uint64_t *out)
{
	const char *line = text;

	while (line && *line) {
		const char *nl = strchr(line, '\n');
		size_t wl = strlen(who);

		if (!strncmp(line, who, wl) && line[wl] == ' ') {
			char pat[64];
			const char *p;

			snprintf(pat, sizeof(pat), " %s ", key);
			p = strstr(line + wl, pat);
			if (p && (!nl || p < nl)) {
				*out = strtoull(p + strlen(pat), NULL, 10);
				return true;
			}
			return false;
		}
		line = nl ? nl + 1 : NULL;
	}
	return false;
}

static uint64_t counts_x(const char *text, const char *who, const char *key)
{
	uint64_t v;

	if (!counts_get(text, who, key, &v))
		rm_die("counts: no \"%s\" on the \"%s\" line", key, who);
	return v;
}

static void check_counts(const char *counts_path)
{
	static char text[8192];
	static const char *const written_key[EX_KINDS] = {
		NULL, "thread", "timer", "printf", "try_printf",
	};
	static const char *const missed_key[EX_KINDS] = {
		NULL, "thread_dropped", "timer_dropped", "printf_dropped", "try_printf_full",
	};
	int err = rm_read_text(counts_path, text, sizeof(text));

	if (err)
		rm_die("read %s: %s", counts_path, strerror(-err));
	rm_set_phase("counts");
	for (unsigned int cpu = 0; cpu < RM_MAXCPU; cpu++) {
		char who[16];
		uint64_t w, total = 0;

		snprintf(who, sizeof(who), "cpu %u", cpu);
		if (!counts_get(text, who, "written", &w)) {
			for (unsigned int k = 1; k < EX_KINDS; k++)
				if (streams[cpu][k].records)
					rm_bad("cpu %u: %llu %s records, but the module has no cpu %u",
					       cpu, (unsigned long long)streams[cpu][k].records,
					       kind_name[k], cpu);
			continue;
		}
		for (unsigned int k = 1; k < EX_KINDS; k++) {
			const struct ex_stream *s = &streams[cpu][k];
			uint64_t written = counts_x(text, who, written_key[k]);
			uint64_t attempts = written + counts_x(text, who, missed_key[k]);
			char what[96];

			snprintf(what, sizeof(what), "cpu %u %s: records received == module's written",
				 cpu, kind_name[k]);
			RM_EXPECT_EQ(what, s->records, written);
			if (s->any && s->last >= attempts)
				rm_bad("cpu %u %s: seq %llu, but the module made %llu attempts", cpu,
				       kind_name[k], (unsigned long long)s->last,
				       (unsigned long long)attempts);
			total += s->records;
		}
		{
			char what[64];

			snprintf(what, sizeof(what), "cpu %u: records == module's written", cpu);
			RM_EXPECT_EQ(what, total, w);
		}
	}
	RM_EXPECT_EQ("total records == module's total written", total_records,
		     counts_x(text, "total", "written"));
}

int main(int argc, char **argv)
{
	const char *fmt, *dir, *counts = NULL;
	uint64_t expect = 0;
	bool hello;
	struct dirent *de;
	DIR *d;

	rm_init(argv[0], 600);
	if (argc < 3)
		rm_die("usage: rmck_exwalk rmexample DIR [--counts FILE] | hello DIR --expect N");
	fmt = argv[1];
	dir = argv[2];
	for (int i = 3; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!strcmp(a, "--counts"))
			counts = v;
		else if (!strcmp(a, "--expect"))
			expect = rm_argu(a, v);
		else
			rm_die("unknown option %s", a);
		i++;
	}
	if (strcmp(fmt, "rmexample") && strcmp(fmt, "hello"))
		rm_die("format %s: rmexample or hello", fmt);
	hello = !strcmp(fmt, "hello");
	if (hello) {
		if (!expect)
			rm_die("hello needs --expect N");
		hello_n = expect;
		hello_seen = calloc(expect, 1);
		if (!hello_seen)
			rm_die("out of memory");
	}

	rm_set_phase("walk %s", dir);
	d = opendir(dir);
	if (!d)
		rm_die("opendir %s: %s", dir, strerror(errno));
	while ((de = readdir(d))) {
		unsigned int cpu;
		char path[512], tail;

		if (sscanf(de->d_name, "cpu%u.ou%c", &cpu, &tail) != 2 || tail != 't' ||
		    strcmp(strchr(de->d_name, '.'), ".out"))
			continue;
		if (cpu >= RM_MAXCPU)
			rm_die("%s: cpu %u >= %d", de->d_name, cpu, RM_MAXCPU);
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		cpu_seen[cpu] = true;
		walk_file(path, cpu, hello);
	}
	closedir(d);
	if (!total_records)
		rm_bad("no records in %s", dir);

	if (hello) {
		uint64_t missing = 0;

		for (uint64_t s = 0; s < hello_n; s++)
			missing += !hello_seen[s];
		rm_note("hello: %llu records, %llu missing, %llu duplicates, %llu result texts",
			(unsigned long long)total_records, (unsigned long long)missing,
			(unsigned long long)hello_dups, (unsigned long long)hello_text);
		RM_EXPECT_EQ("hello: seqs missing", missing, 0);
		RM_EXPECT_EQ("hello: seqs seen twice", hello_dups, 0);
		RM_EXPECT_EQ("hello: result text records", hello_text, 1);
		return rm_exit();
	}

	for (unsigned int cpu = 0; cpu < RM_MAXCPU; cpu++) {
		if (!cpu_seen[cpu])
			continue;
		for (unsigned int k = 1; k < EX_KINDS; k++) {
			const struct ex_stream *s = &streams[cpu][k];

			rm_note("cpu %u kind %s records %llu first %llu last %llu", cpu, kind_name[k],
				(unsigned long long)s->records, (unsigned long long)s->first,
				(unsigned long long)s->last);
		}
	}
	rm_note("total records %llu (%llu of other formats), %llu CTF packets",
		(unsigned long long)total_records, (unsigned long long)other_records,
		(unsigned long long)packets);
	if (counts)
		check_counts(counts);
	return rm_exit();
}

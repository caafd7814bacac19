/* SPDX-License-Identifier: MIT */
/*
 * rmck_info - GET_VERSION and LIST on /dev/relaymap, GET_INFO against what
 * the channel was made with, the debugfs CPU files (if that view exists)
 * against cpu_mask, GET_CURSORS against GET_CURSOR, and GET_STATS against
 * GET_CURSOR and the load generator.
 *
 *   rmck_info -n NAME --subbuf-size S --n-subbufs N [--overwrite 0|1]
 *           [--cpus LIST] [--stats COUNT]
 *
 *   --cpus LIST   CPUs expected in cpu_mask (default: the online CPUs)
 *   --stats COUNT run the load generator for COUNT records per CPU, consume
 *                 part of them, then check GET_STATS per CPU and in total
 */
#include "rmtest.h"

#define WORDS (RELAYMAP_MAX_CPUS / 64)

static void check_files(const struct relaymap_info *info, const char *name)
{
	char path[256];

	snprintf(path, sizeof(path), RM_DIR "/%s", name);
	if (access(path, F_OK)) {
		rm_note("no debugfs view (%s): cpu files not checked", path);
		return;
	}

	for (unsigned int c = 0; c < RELAYMAP_MAX_CPUS; c++) {
		bool bit = rm_info_has_cpu(info, c);
		bool exists;

		rm_cpu_path(path, sizeof(path), name, c);
		exists = access(path, F_OK) == 0;
		if (bit != exists)
			rm_bad("cpu_mask bit %u is %d but %s %s", c, bit, path,
			       exists ? "exists" : "does not exist");
		if (bit && c >= info->nr_cpu_ids)
			rm_bad("cpu_mask bit %u set but nr_cpu_ids is %u", c,
			       info->nr_cpu_ids);
	}
}

/* GET_VERSION and LIST on /dev/relaymap: the channel is listed by name. */
static void check_device(const char *name)
{
	static char names[64][RELAYMAP_NAME_MAX];
	struct relaymap_list l;
	struct stat sb;
	int dev = rm_dev_open(), v, err;
	bool found = false;

	rm_set_phase("/dev/relaymap");
	if (dev < 0)
		rm_die("open %s: %s", RM_DEV, strerror(-dev));
	if (fstat(dev, &sb) || !S_ISCHR(sb.st_mode))
		rm_bad("%s is not a character device", RM_DEV);
	v = rm_get_version(dev);
	RM_EXPECT_EQ("GET_VERSION", v, RELAYMAP_ABI_VERSION);
	/* Count only (names = 0), then fetch. */
	memset(&l, 0, sizeof(l));
	l.size = sizeof(l);
	err = rm_ioctl(dev, RELAYMAP_IOC_LIST, &l);
	if (err)
		rm_die("LIST (count only): %s", strerror(-err));
	if (l.nr < 1 || l.nr > 64)
		rm_bad("LIST: %u channels (expected 1..64 here)", l.nr);
	memset(names, 0x5a, sizeof(names));
	memset(&l, 0, sizeof(l));
	l.size = sizeof(l);
	l.nr = 64;
	l.names = (uint64_t)(uintptr_t)names;
	err = rm_ioctl(dev, RELAYMAP_IOC_LIST, &l);
	if (err)
		rm_die("LIST: %s", strerror(-err));
	for (unsigned int i = 0; i < l.nr && i < 64; i++) {
		if (strnlen(names[i], RELAYMAP_NAME_MAX) == RELAYMAP_NAME_MAX)
			rm_bad("LIST: name %u is not NUL-terminated", i);
		else if (!strcmp(names[i], name))
			found = true;
		rm_note("LIST[%u] = '%.*s'", i, RELAYMAP_NAME_MAX, names[i]);
	}
	if (!found)
		rm_bad("LIST does not name channel '%s'", name);
	close(dev);
}

/* GET_CURSORS over every CPU == GET_CURSOR of each; NO_BUFFER for the others. */
static void check_cursors(const struct rm_chan *ch)
{
	static struct relaymap_cursor arr[RELAYMAP_MAX_CPUS];
	unsigned int nr = ch->info.nr_cpu_ids, filled = 0;
	int err;

	rm_set_phase("GET_CURSORS");
	err = rm_get_cursors(ch->ctl, 0, RELAYMAP_MAX_CPUS, arr, &filled);
	if (err) {
		rm_bad("GET_CURSORS(0, %d): %s", RELAYMAP_MAX_CPUS, strerror(-err));
		return;
	}
	RM_EXPECT_EQ("GET_CURSORS filled (stops at nr_cpu_ids)", filled, nr);
	for (unsigned int c = 0; c < filled && c < RELAYMAP_MAX_CPUS; c++) {
		struct relaymap_cursor one;

		if (!rm_info_has_cpu(&ch->info, c)) {
			if (!(arr[c].flags & RELAYMAP_CURSOR_NO_BUFFER))
				rm_bad("GET_CURSORS: cpu %u has no buffer but flags %#x lack NO_BUFFER",
				       c, arr[c].flags);
			continue;
		}
		rm_cursor_x(ch->ctl, c, &one);
		if (arr[c].cpu != c || arr[c].produced != one.produced ||
		    arr[c].consumed != one.consumed ||
		    arr[c].records_dropped != one.records_dropped ||
		    arr[c].subbufs_lapped != one.subbufs_lapped ||
		    arr[c].records_rejected != one.records_rejected ||
		    arr[c].flags != one.flags || arr[c].holder_pid != one.holder_pid ||
		    strncmp(arr[c].holder_comm, one.holder_comm, RELAYMAP_COMM_MAX))
			rm_bad("GET_CURSORS[%u] (cpu %u produced %llu consumed %llu flags %#x holder %d '%.16s') != GET_CURSOR (produced %llu consumed %llu flags %#x holder %d '%.16s')",
			       c, arr[c].cpu, (unsigned long long)arr[c].produced,
			       (unsigned long long)arr[c].consumed, arr[c].flags,
			       arr[c].holder_pid, arr[c].holder_comm,
			       (unsigned long long)one.produced,
			       (unsigned long long)one.consumed, one.flags,
			       one.holder_pid, one.holder_comm);
		/* We hold every CPU while this runs. */
		if (!(one.flags & RELAYMAP_CURSOR_HELD) || one.holder_pid != getpid())
			rm_bad("cpu %u: flags %#x holder_pid %d, expected HELD by us (pid %d)",
			       c, one.flags, one.holder_pid, (int)getpid());
	}
	/* A window that starts at the last CPU: 1 element filled. */
	err = rm_get_cursors(ch->ctl, nr - 1, 8, arr, &filled);
	if (err)
		rm_bad("GET_CURSORS(first %u, nr 8): %s", nr - 1, strerror(-err));
	else
		RM_EXPECT_EQ("GET_CURSORS(first nr_cpu_ids - 1, nr 8) filled", filled, 1);
	rm_note("GET_CURSORS checked against GET_CURSOR on %u CPUs", nr);
}

static void run_stats(struct rm_chan *ch, const char *name, uint64_t count)
{
	struct relaymap_stats tot, sum, st;
	struct lg_status lg;

	rm_set_phase("stats");
	if (!lg_present())
		rm_die("--stats needs relaymap_loadgen loaded");
	lg_set("channel", name);
	lg_set("mode", "lossless");
	lg_setu("record_size", 64);
	lg_setu("rate", 0);
	lg_setu("duration_ms", 0);
	lg_setu("count", count);
	lg_start();
	if (!lg_wait_idle(120000))
		rm_die("loadgen did not finish %llu records per CPU",
		       (unsigned long long)count);
	lg_stop();
	rm_flush_x(ch->ctl, RELAYMAP_ALL_CPUS);
	lg_read_status(&lg);
	rm_claim(ch, 0); /* consumer fds, to hand back part of the data */

	memset(&sum, 0, sizeof(sum));
	for (unsigned int i = 0; i < ch->ncpus; i++) {
		unsigned int c = ch->cpus[i];
		struct relaymap_cursor cur;
		struct lg_cpu_status l = lg_cpu(&lg, c);

		/* Hand back half of what is there, so consumed is not trivially 0. */
		rm_cursor_x(ch->ctl, c, &cur);
		if (cur.produced == 0)
			rm_bad("cpu %u: nothing produced after %llu records and FLUSH",
			       c, (unsigned long long)count);
		if (cur.produced / 2)
			rm_put_x(ch->fd[c], c, cur.produced / 2);
		rm_cursor_x(ch->ctl, c, &cur);
		rm_stats_x(ch->ctl, (int)c, &st);
		rm_note("cpu %u: cursor produced=%llu consumed=%llu dropped=%llu lapped=%llu; stats written=%llu bytes=%llu dropped=%llu produced=%llu consumed=%llu lapped=%llu flushes=%llu resets=%llu; loadgen written=%llu",
			c, (unsigned long long)cur.produced,
			(unsigned long long)cur.consumed,
			(unsigned long long)cur.records_dropped,
			(unsigned long long)cur.subbufs_lapped,
			(unsigned long long)st.records_written,
			(unsigned long long)st.bytes_written,
			(unsigned long long)st.records_dropped,
			(unsigned long long)st.subbufs_produced,
			(unsigned long long)st.subbufs_consumed,
			(unsigned long long)st.subbufs_lapped,
			(unsigned long long)st.flushes,
			(unsigned long long)st.resets,
			(unsigned long long)l.written);
		RM_EXPECT_EQ("stats.subbufs_produced == cursor.produced", st.subbufs_produced, cur.produced);
		RM_EXPECT_EQ("stats.subbufs_consumed == cursor.consumed", st.subbufs_consumed, cur.consumed);
		RM_EXPECT_EQ("stats.records_dropped == cursor.records_dropped", st.records_dropped, cur.records_dropped);
		RM_EXPECT_EQ("stats.subbufs_lapped == cursor.subbufs_lapped", st.subbufs_lapped, cur.subbufs_lapped);
		RM_EXPECT_EQ("stats.records_written == loadgen written", st.records_written, l.written);
		RM_EXPECT_EQ("loadgen written == count", l.written, count);
		/* bytes_written counts data bytes: 64-byte records carry 48. */
		RM_EXPECT_EQ("stats.bytes_written == 48 data bytes per 64-byte record",
			     st.bytes_written, st.records_written * (64 - RM_REC_HDR));
		RM_EXPECT_EQ("stats.records_rejected", st.records_rejected, 0);
		if (st.flushes < 1)
			rm_bad("cpu %u: stats.flushes is 0 after FLUSH(all) closed a partial sub-buffer", c);
		sum.records_written += st.records_written;
		sum.bytes_written += st.bytes_written;
		sum.records_dropped += st.records_dropped;
		sum.subbufs_produced += st.subbufs_produced;
		sum.subbufs_consumed += st.subbufs_consumed;
		sum.subbufs_lapped += st.subbufs_lapped;
		sum.flushes += st.flushes;
		sum.resets += st.resets;
		sum.records_rejected += st.records_rejected;
	}
	rm_stats_x(ch->ctl, RELAYMAP_ALL_CPUS, &tot);
	RM_EXPECT_EQ("total records_rejected == sum", tot.records_rejected, sum.records_rejected);
	rm_note("total: written=%llu bytes=%llu dropped=%llu produced=%llu consumed=%llu lapped=%llu flushes=%llu resets=%llu (sum of CPUs: written=%llu produced=%llu consumed=%llu)",
		(unsigned long long)tot.records_written,
		(unsigned long long)tot.bytes_written,
		(unsigned long long)tot.records_dropped,
		(unsigned long long)tot.subbufs_produced,
		(unsigned long long)tot.subbufs_consumed,
		(unsigned long long)tot.subbufs_lapped,
		(unsigned long long)tot.flushes, (unsigned long long)tot.resets,
		(unsigned long long)sum.records_written,
		(unsigned long long)sum.subbufs_produced,
		(unsigned long long)sum.subbufs_consumed);
	RM_EXPECT_EQ("total records_written == sum", tot.records_written, sum.records_written);
	RM_EXPECT_EQ("total bytes_written == sum", tot.bytes_written, sum.bytes_written);
	RM_EXPECT_EQ("total records_dropped == sum", tot.records_dropped, sum.records_dropped);
	RM_EXPECT_EQ("total subbufs_produced == sum", tot.subbufs_produced, sum.subbufs_produced);
	RM_EXPECT_EQ("total subbufs_consumed == sum", tot.subbufs_consumed, sum.subbufs_consumed);
	RM_EXPECT_EQ("total subbufs_lapped == sum", tot.subbufs_lapped, sum.subbufs_lapped);
	RM_EXPECT_EQ("total flushes == sum", tot.flushes, sum.flushes);
	RM_EXPECT_EQ("total records_written == loadgen total written", tot.records_written, lg.written);
	/* resets counts RESETs of the channel: 0 on a fresh channel, however it is summed. */
	RM_EXPECT_EQ("total resets on a fresh channel", tot.resets, 0);
	check_cursors(ch);
	rm_release(ch);
}

int main(int argc, char **argv)
{
	const char *name = NULL, *cpus = NULL;
	uint64_t subbuf_size = 0, n_subbufs = 0, overwrite = 0, stats = 0;
	uint64_t expect[WORDS], possible[WORDS];
	unsigned int max_possible = 0;
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	struct rm_chan ch;
	const struct relaymap_info *in;
	char maskstr[256] = "";
	size_t namelen;

	rm_init(argv[0], 240);
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!strcmp(a, "-n"))
			name = v;
		else if (!strcmp(a, "--subbuf-size"))
			subbuf_size = rm_argu(a, v);
		else if (!strcmp(a, "--n-subbufs"))
			n_subbufs = rm_argu(a, v);
		else if (!strcmp(a, "--overwrite"))
			overwrite = rm_argu(a, v);
		else if (!strcmp(a, "--cpus"))
			cpus = v;
		else if (!strcmp(a, "--stats"))
			stats = rm_argu(a, v);
		else
			rm_die("unknown option %s", a);
		i++;
	}
	if (!name || !subbuf_size || !n_subbufs)
		rm_die("usage: rmck_info -n NAME --subbuf-size S --n-subbufs N [--overwrite 0|1] [--cpus LIST] [--stats COUNT]");

	rm_set_phase("GET_INFO");
	rm_open(&ch, name, 0);
	in = &ch.info;
	for (unsigned int i = 0; i < ch.ncpus; i++)
		snprintf(maskstr + strlen(maskstr), sizeof(maskstr) - strlen(maskstr),
			 "%s%u", i ? "," : "", ch.cpus[i]);
	rm_note("GET_INFO: size=%u abi_version=%u header_size=%u flags=%#x subbuf_size=%llu n_subbufs=%llu alloc_size=%llu nr_cpu_ids=%u max_record_size=%u max_data_size=%u page_size=%u name='%.*s' cpu_mask={%s}",
		in->size, in->abi_version, in->header_size, in->flags,
		(unsigned long long)in->subbuf_size,
		(unsigned long long)in->n_subbufs,
		(unsigned long long)in->alloc_size, in->nr_cpu_ids,
		in->max_record_size, in->max_data_size, in->page_size,
		RELAYMAP_NAME_MAX, in->name, maskstr);
	check_device(name);

	RM_EXPECT_EQ("size (echoed)", in->size, sizeof(*in));
	RM_EXPECT_EQ("abi_version", in->abi_version, RELAYMAP_ABI_VERSION);
	RM_EXPECT_EQ("header_size", in->header_size, 112);
	RM_EXPECT_EQ("header_size == sizeof(struct relaymap_subbuf_header)",
		     in->header_size, sizeof(struct relaymap_subbuf_header));
	RM_EXPECT_EQ("flags", in->flags, overwrite ? RELAYMAP_INFO_OVERWRITE : 0);
	RM_EXPECT_EQ("subbuf_size (module param)", in->subbuf_size, subbuf_size);
	RM_EXPECT_EQ("n_subbufs (module param)", in->n_subbufs, n_subbufs);
	RM_EXPECT_EQ("page_size == sysconf(_SC_PAGESIZE)", in->page_size, page);
	RM_EXPECT_EQ("subbuf_size is a multiple of page_size", in->subbuf_size % page, 0);
	RM_EXPECT_EQ("alloc_size == subbuf_size * n_subbufs", in->alloc_size,
		     subbuf_size * n_subbufs);
	RM_EXPECT_EQ("max_data_size == max_record_size - 16", in->max_data_size,
		     (uint64_t)in->max_record_size - RM_REC_HDR);
	RM_EXPECT_EQ("max_record_size % 8", in->max_record_size % RELAYMAP_RECORD_ALIGN, 0);
	{
		static const uint8_t zero[16];

		if (!memcmp(in->uuid, zero, sizeof(zero)))
			rm_bad("uuid is all zero");
	}
	namelen = strnlen(in->name, RELAYMAP_NAME_MAX);
	if (namelen == RELAYMAP_NAME_MAX)
		rm_bad("name is not NUL-terminated");
	else if (strcmp(in->name, name))
		rm_bad("name '%s', expected '%s'", in->name, name);
	for (size_t i = namelen; i < RELAYMAP_NAME_MAX; i++)
		if (in->name[i]) {
			rm_bad("name byte %zu after the NUL is %#x, not 0", i,
			       (unsigned char)in->name[i]);
			break;
		}
	/* The largest record fits one sub-buffer's event space. */
	if (in->max_record_size < RM_LG_MIN_RECORD ||
	    in->max_record_size > in->subbuf_size - in->header_size)
		rm_bad("max_record_size %u not in [%zu, subbuf_size - header_size = %llu]",
		       in->max_record_size, RM_LG_MIN_RECORD,
		       (unsigned long long)(in->subbuf_size - in->header_size));

	rm_sys_cpus("possible", possible, WORDS);
	for (unsigned int c = 0; c < RELAYMAP_MAX_CPUS; c++)
		if (rm_bit(possible, c))
			max_possible = c;
	RM_EXPECT_EQ("nr_cpu_ids == last possible CPU + 1", in->nr_cpu_ids,
		     max_possible + 1);
	if (cpus) {
		if (rm_parse_cpulist(cpus, expect, WORDS))
			rm_die("bad --cpus '%s'", cpus);
	} else {
		rm_sys_cpus("online", expect, WORDS);
	}
	for (unsigned int w = 0; w < WORDS; w++)
		if (in->cpu_mask[w] != expect[w])
			rm_bad("cpu_mask word %u = %#llx, expected %#llx (%s)", w,
			       (unsigned long long)in->cpu_mask[w],
			       (unsigned long long)expect[w],
			       cpus ? "--cpus" : "online CPUs");
	rm_set_phase("CPU files");
	check_files(in, name);
	if (stats)
		run_stats(&ch, name, stats);
	rm_close(&ch);
	return rm_exit();
}

/* SPDX-License-Identifier: MIT */
/*
 * rmck_info - GET_INFO against what the channel was made with, the CPU files
 * against cpu_mask, and GET_STATS against GET_CURSOR and the load generator.
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
			rm_put_x(ch->ctl, c, cur.produced / 2);
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
		/* Framed records: the module counts payload bytes; 64-byte records. */
		if (st.bytes_written != st.records_written * 64 &&
		    st.bytes_written != st.records_written * (64 - sizeof(struct relaymap_record)))
			rm_bad("cpu %u: stats.bytes_written %llu is neither 64 nor 48 bytes per record (%llu records)",
			       c, (unsigned long long)st.bytes_written,
			       (unsigned long long)st.records_written);
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
	}
	rm_stats_x(ch->ctl, RELAYMAP_ALL_CPUS, &tot);
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
	rm_note("GET_INFO: size=%u abi_version=%u header_size=%u flags=%#x subbuf_size=%llu n_subbufs=%llu alloc_size=%llu nr_cpu_ids=%u max_record_size=%u name='%.*s' cpu_mask={%s}",
		in->size, in->abi_version, in->header_size, in->flags,
		(unsigned long long)in->subbuf_size,
		(unsigned long long)in->n_subbufs,
		(unsigned long long)in->alloc_size, in->nr_cpu_ids,
		in->max_record_size, RELAYMAP_NAME_MAX, in->name, maskstr);

	RM_EXPECT_EQ("size (echoed)", in->size, sizeof(*in));
	RM_EXPECT_EQ("abi_version", in->abi_version, RELAYMAP_ABI_VERSION);
	RM_EXPECT_EQ("header_size", in->header_size, 64);
	RM_EXPECT_EQ("header_size == sizeof(struct relaymap_subbuf_header)",
		     in->header_size, sizeof(struct relaymap_subbuf_header));
	RM_EXPECT_EQ("flags", in->flags, overwrite ? RELAYMAP_INFO_OVERWRITE : 0);
	RM_EXPECT_EQ("subbuf_size (module param)", in->subbuf_size, subbuf_size);
	RM_EXPECT_EQ("n_subbufs (module param)", in->n_subbufs, n_subbufs);
	RM_EXPECT_EQ("alloc_size == PAGE_ALIGN(subbuf_size * n_subbufs)",
		     in->alloc_size,
		     (subbuf_size * n_subbufs + page - 1) & ~(uint64_t)(page - 1));
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

/* SPDX-License-Identifier: MIT */
/*
 * rmck_overwrite - flight-recorder (overwrite) mode, read with the
 * copy-then-validate (seqlock) protocol of relaymap_abi.h: acquire load
 * of commit, copy, acquire fence, re-read commit and packet_seq_num.
 * The CPUs are claimed with OPEN_CONSUMER(ALL); PUT_CONSUMED goes
 * through each consumer fd.
 *
 *   rmck_overwrite -n NAME [--static-ms MS] [--live-ms MS] [--race-ms MS]
 *                  [--record-size S]
 *
 * Phase 1 (static): the load generator writes at full speed while nobody
 * consumes, then stops. Exactly the n_subbufs - 1 sub-buffers before
 * `produced` must be readable and valid; the slot of the one before them
 * must show a later seq (a lap detected through seq); the kernel's
 * subbufs_lapped must equal the sub-buffers the consumer had to skip.
 *
 * Phase 2 (live): the load generator writes at full speed while one reader
 * per CPU buffer (pinned to another CPU) copies sub-buffers, validates
 * each copy by re-reading commit/seq, sometimes sleeps so it gets
 * lapped, and sometimes FLUSHes its CPU (partial sub-buffers). No
 * accepted copy may be torn (bad header, record, checksum or seq order). Kernel laps L and consumer skips K: K <= L <= K + accepted
 * (a sub-buffer accepted but handed back after being overwritten is a lap
 * for the kernel only).
 *
 * End: lg_stop + FLUSH(all); the final drain must end at the loadgen's
 * last record, and records seen + records lost in laps == loadgen written.
 *
 * Phase 3 (race): readers copy the oldest valid sub-buffer, the one the
 * writer reopens next, and wait 0-100 us before re-checking commit/seq.
 * Accepted copies must be intact; some copies must be rejected (else the
 * re-check was never exercised).
 */
#include "rmtest.h"

enum { ACCEPT, LAPPED, REJECT, STALE };

struct ow {
	unsigned int cpu;
	uint8_t *copy;
	uint64_t next;		/* next sub-buffer wanted */
	uint64_t accepted;
	uint64_t accepted_live; /* in phase 2 */
	uint64_t skipped_window; /* fell out of the valid window before a read */
	uint64_t lapped_seq;	/* header showed a later seq (or opening) */
	uint64_t rejected;	/* commit/seq changed during the copy */
	uint64_t stale;		/* s < produced but slot shows an older seq */
	uint64_t torn_accepted;	/* accepted copy that is not valid */
	uint64_t discontig;	/* consecutive sub-buffers, records not contiguous */
	bool have_prev;
	uint64_t prev_s, prev_last_seq;
	struct rm_stream st;	/* records of the current loadgen run */
	uint64_t records_static; /* records read in phase 1 */
	uint64_t last_seen_seq_in_slot; /* for reporting a lap */
	/* phase 3: copying the sub-buffer that is overwritten next */
	uint64_t race_tries, race_accepted, race_gone, race_rejected;
	uint64_t race_rejected_bad; /* rejected copies that were indeed inconsistent */
	uint64_t race_torn_accepted;
	uint64_t race_records;
	uint64_t live_flushes;	/* FLUSHes issued by the live reader */
	uint64_t flushed_seen;	/* accepted copies with RELAYMAP_SB_FLUSHED */
};

static struct rm_chan ch;
static struct ow ows[RM_MAXCPU];
static uint64_t record_size = 64;
static int live_stop;

/* Copy sub-buffer s of cpu and validate the copy (seqlock). */
static int read_one(struct ow *o, uint64_t s)
{
	const struct relaymap_subbuf_header *h = rm_hdr(&ch, o->cpu, s);
	const uint8_t *slot = rm_slot(&ch, o->cpu, s);
	uint64_t c1, seq1, c2, seq2;

	c1 = rm_load_commit(h);
	seq1 = __atomic_load_n(&h->packet_seq_num, __ATOMIC_RELAXED);
	o->last_seen_seq_in_slot = seq1;
	if (c1 != s + 1) {
		/* s was committed once (s < produced): now reopened or later. */
		if (seq1 >= s || c1 == 0 || c1 > s + 1)
			return LAPPED;
		return STALE;
	}
	memcpy(o->copy, slot, ch.info.subbuf_size);
	/* Order the copy before the re-check (the read side of a seqlock). */
	__atomic_thread_fence(__ATOMIC_ACQUIRE);
	c2 = __atomic_load_n(&h->commit, __ATOMIC_RELAXED);
	seq2 = __atomic_load_n(&h->packet_seq_num, __ATOMIC_RELAXED);
	if (c2 != c1 || seq2 != s)
		return REJECT;
	return ACCEPT;
}

/* Verify an accepted copy of sub-buffer s. */
static void check_copy(struct ow *o, uint64_t s)
{
	struct relaymap_subbuf_header h;
	struct rm_sbrecs r;
	char why[512];
	uint64_t errs = rm_stream_errors(&o->st);

	memcpy(&h, o->copy, sizeof(h));
	if (rm_hdr_check(&ch, o->cpu, s, &h, why, sizeof(why))) {
		o->torn_accepted++;
		rm_bad("accepted copy has a bad header: %s", why);
		return;
	}
	if ((h.flags & RELAYMAP_SB_DROPS) || h.events_discarded || h.events_rejected)
		rm_bad("cpu %u sub-buffer %llu: overwrite mode never drops: flags %#x events_discarded %llu events_rejected %llu",
		       o->cpu, (unsigned long long)s, h.flags,
		       (unsigned long long)h.events_discarded,
		       (unsigned long long)h.events_rejected);
	if (h.flags & RELAYMAP_SB_FLUSHED)
		o->flushed_seen++;
	rm_stream_payload(&o->st, s, o->copy + h.header_size, rm_events_len(&h), &r);
	if (rm_stream_errors(&o->st) != errs) {
		o->torn_accepted++;
		rm_bad("cpu %u sub-buffer %llu: accepted copy has bad records (torn copy accepted?)",
		       o->cpu, (unsigned long long)s);
	}
	if (r.records == 0)
		rm_bad("cpu %u sub-buffer %llu: closed sub-buffer without records (events %llu bytes)",
		       o->cpu, (unsigned long long)s, (unsigned long long)rm_events_len(&h));
	if (r.records && o->have_prev && o->prev_s + 1 == s &&
	    r.first_seq != o->prev_last_seq + 1) {
		o->discontig++;
		rm_bad("cpu %u: sub-buffers %llu and %llu both accepted but records jump %llu -> %llu",
		       o->cpu, (unsigned long long)o->prev_s,
		       (unsigned long long)s,
		       (unsigned long long)o->prev_last_seq,
		       (unsigned long long)r.first_seq);
	}
	if (r.records) {
		o->have_prev = true;
		o->prev_s = s;
		o->prev_last_seq = r.last_seq;
	}
	o->accepted++;
}

/* Hand back everything before o->next (count from a fresh cursor). */
static void put_upto(struct ow *o)
{
	struct relaymap_cursor cur;

	rm_cursor_x(ch.ctl, o->cpu, &cur);
	if (o->next > cur.consumed)
		rm_put_x(ch.fd[o->cpu], o->cpu, o->next - cur.consumed);
}

/* Read o->next .. produced - 1, skipping what is out of the window. */
static uint64_t read_batch(struct ow *o, bool live)
{
	struct relaymap_cursor cur;
	uint64_t n1 = ch.info.n_subbufs - 1, got = 0;

	rm_cursor_x(ch.fd[o->cpu], o->cpu, &cur);
	if (cur.produced > n1 && o->next < cur.produced - n1) {
		o->skipped_window += cur.produced - n1 - o->next;
		o->next = cur.produced - n1;
	}
	for (uint64_t s = o->next; s < cur.produced; s++) {
		int rc = read_one(o, s);

		switch (rc) {
		case ACCEPT:
			check_copy(o, s);
			if (live)
				o->accepted_live++;
			got++;
			break;
		case LAPPED:
			o->lapped_seq++;
			break;
		case REJECT:
			o->rejected++;
			break;
		case STALE:
			o->stale++;
			rm_bad("cpu %u sub-buffer %llu < produced %llu: slot still shows older seq %llu",
			       o->cpu, (unsigned long long)s,
			       (unsigned long long)cur.produced,
			       (unsigned long long)o->last_seen_seq_in_slot);
			break;
		}
		o->next = s + 1;
	}
	put_upto(o);
	return got;
}

static void *live_reader(void *arg)
{
	struct ow *o = arg;
	unsigned int it = 0;

	rm_pin(ch.cpus[0] == o->cpu && ch.ncpus > 1 ? ch.cpus[1] : ch.cpus[0]);
	while (!__atomic_load_n(&live_stop, __ATOMIC_ACQUIRE)) {
		read_batch(o, true);
		/* Now and then fall behind so the writer laps us. */
		if (++it % 64 == 0)
			rm_sleep_ms(30);
		else
			rm_sleep_us(200);
		/* And now and then FLUSH: partial sub-buffers in the stream. */
		if (it % 16 == 0) {
			rm_flush_x(ch.ctl, (int)o->cpu);
			o->live_flushes++;
		}
	}
	return NULL;
}

/* Verify a copy on its own: header, records, contiguous seqs. */
static bool copy_valid(const struct ow *o, uint64_t s, bool quiet, uint64_t *records)
{
	struct relaymap_subbuf_header h;
	struct rm_stream st;
	char why[512];

	memcpy(&h, o->copy, sizeof(h));
	if (rm_hdr_check(&ch, o->cpu, s, &h, why, sizeof(why))) {
		if (!quiet)
			rm_bad("race: accepted copy with a bad header: %s", why);
		return false;
	}
	rm_stream_init(&st, o->cpu, (uint32_t)record_size);
	st.quiet = quiet;
	rm_stream_payload(&st, s, o->copy + h.header_size, rm_events_len(&h), NULL);
	if (rm_stream_errors(&st) || st.gap_records || st.records == 0) {
		if (!quiet)
			rm_bad("race: cpu %u sub-buffer %llu: accepted copy is torn: %llu record errors, %llu seq gaps, %llu records",
			       o->cpu, (unsigned long long)s,
			       (unsigned long long)rm_stream_errors(&st),
			       (unsigned long long)st.gap_records,
			       (unsigned long long)st.records);
		return false;
	}
	if (records)
		*records += st.records;
	return true;
}

/*
 * Phase 3: copy the oldest valid sub-buffer (the next one the writer
 * overwrites) over and over, pausing 0-100 us between the copy and the
 * re-check so that the writer often reopens it meanwhile. Accepted copies
 * must be intact; rejected ones show the re-check was needed.
 */
static void *race_reader(void *arg)
{
	struct ow *o = arg;
	uint64_t n1 = ch.info.n_subbufs - 1;
	unsigned int rnd = o->cpu * 7919 + 1;

	rm_pin(rm_other_online_cpu(o->cpu));
	while (!__atomic_load_n(&live_stop, __ATOMIC_ACQUIRE)) {
		const struct relaymap_subbuf_header *h;
		struct relaymap_cursor cur;
		uint64_t s, c1, c2, seq2, until;

		rm_cursor_x(ch.ctl, o->cpu, &cur);
		if (cur.produced <= n1)
			continue;
		s = cur.produced - n1;
		h = rm_hdr(&ch, o->cpu, s);
		o->race_tries++;
		c1 = rm_load_commit(h);
		if (c1 != s + 1) {
			o->race_gone++;
			continue;
		}
		memcpy(o->copy, rm_slot(&ch, o->cpu, s), ch.info.subbuf_size);
		rnd = rnd * 1103515245 + 12345;
		until = rm_now_ns() + (rnd >> 8) % 100000;
		while (rm_now_ns() < until)
			;
		__atomic_thread_fence(__ATOMIC_ACQUIRE);
		c2 = __atomic_load_n(&h->commit, __ATOMIC_RELAXED);
		seq2 = __atomic_load_n(&h->packet_seq_num, __ATOMIC_RELAXED);
		if (c2 != c1 || seq2 != s) {
			o->race_rejected++;
			if (!copy_valid(o, s, true, NULL))
				o->race_rejected_bad++;
			continue;
		}
		o->race_accepted++;
		if (!copy_valid(o, s, false, &o->race_records))
			o->race_torn_accepted++;
	}
	return NULL;
}

static void lg_setup(const char *name)
{
	lg_set("channel", name);
	lg_set("mode", "lossless");
	lg_setu("record_size", record_size);
	lg_setu("rate", 0);
	lg_setu("duration_ms", 0);
	lg_setu("count", 0);
}

int main(int argc, char **argv)
{
	const char *name = NULL;
	uint64_t static_ms = 1500, live_ms = 4000, race_ms = 3000, n;
	pthread_t th[RM_MAXCPU];
	struct lg_status lg;
	uint64_t tot_L = 0, tot_K = 0, tot_acc = 0, tot_rej = 0, tot_rec = 0;
	uint64_t tot_lost = 0, tot_P = 0;
	uint64_t t0 = rm_now_ns();

	rm_init(argv[0], 300);
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!strcmp(a, "-n"))
			name = v;
		else if (!strcmp(a, "--static-ms"))
			static_ms = rm_argu(a, v);
		else if (!strcmp(a, "--live-ms"))
			live_ms = rm_argu(a, v);
		else if (!strcmp(a, "--race-ms"))
			race_ms = rm_argu(a, v);
		else if (!strcmp(a, "--record-size"))
			record_size = rm_argu(a, v);
		else
			rm_die("unknown option %s", a);
		i++;
	}
	if (!name)
		rm_die("usage: rmck_overwrite -n NAME [--static-ms MS] [--live-ms MS] [--race-ms MS] [--record-size S]");
	rm_open(&ch, name, RM_OPEN_MAP);
	n = ch.info.n_subbufs;
	if (!(ch.info.flags & RELAYMAP_INFO_OVERWRITE))
		rm_die("channel %s is not in overwrite mode (GET_INFO flags %#x)", name,
		       ch.info.flags);
	if (!lg_present())
		rm_die("relaymap_loadgen is not loaded");
	rm_note("channel %s: overwrite, subbuf_size=%llu n_subbufs=%llu cpus=%u record_size=%llu",
		name, (unsigned long long)ch.info.subbuf_size,
		(unsigned long long)n, ch.ncpus, (unsigned long long)record_size);
	for (unsigned int i = 0; i < ch.ncpus; i++) {
		struct ow *o = &ows[ch.cpus[i]];

		o->cpu = ch.cpus[i];
		o->copy = malloc(ch.info.subbuf_size);
		if (!o->copy)
			rm_die("malloc");
		rm_stream_init(&o->st, o->cpu, (uint32_t)record_size);
	}

	/* ---- phase 1: nobody consumes ---- */
	rm_set_phase("static: writing, nobody consumes");
	lg_setup(name);
	lg_start();
	rm_sleep_ms(static_ms);
	lg_stop();
	rm_set_phase("static: reading");
	for (unsigned int i = 0; i < ch.ncpus; i++) {
		struct ow *o = &ows[ch.cpus[i]];
		struct relaymap_cursor cur, after;
		uint64_t w, acc0;

		rm_cursor_x(ch.ctl, o->cpu, &cur);
		rm_note("static cpu %u: produced=%llu consumed=%llu lapped=%llu",
			o->cpu, (unsigned long long)cur.produced,
			(unsigned long long)cur.consumed,
			(unsigned long long)cur.subbufs_lapped);
		if (cur.produced <= n) {
			rm_bad("cpu %u: only %llu sub-buffers produced in %llu ms: not enough to lap a %llu-sub-buffer ring",
			       o->cpu, (unsigned long long)cur.produced,
			       (unsigned long long)static_ms, (unsigned long long)n);
			continue;
		}
		w = cur.produced - (n - 1);
		/* The slot of w - 1 now holds the open sub-buffer `produced`. */
		if (read_one(o, w - 1) != LAPPED)
			rm_bad("cpu %u: sub-buffer %llu (out of the window) not detected as lapped",
			       o->cpu, (unsigned long long)(w - 1));
		else if (o->last_seen_seq_in_slot != cur.produced)
			rm_bad("cpu %u: slot of sub-buffer %llu shows seq %llu, expected the open sub-buffer %llu",
			       o->cpu, (unsigned long long)(w - 1),
			       (unsigned long long)o->last_seen_seq_in_slot,
			       (unsigned long long)cur.produced);
		else
			rm_note("cpu %u: lap detected through seq: slot of sub-buffer %llu holds seq %llu",
				o->cpu, (unsigned long long)(w - 1),
				(unsigned long long)o->last_seen_seq_in_slot);
		acc0 = o->accepted;
		o->next = 0;
		read_batch(o, false);
		RM_EXPECT_EQ("static: sub-buffers skipped (out of window)", o->skipped_window, w);
		RM_EXPECT_EQ("static: valid sub-buffers read (n_subbufs - 1)", o->accepted - acc0, n - 1);
		RM_EXPECT_EQ("static: lapped/rejected while writers are stopped",
			     o->lapped_seq + o->rejected, 0);
		/* Laps: every sub-buffer before the window was overwritten unconsumed. */
		RM_EXPECT_EQ("static: kernel subbufs_lapped == sub-buffers the consumer skipped",
			     cur.subbufs_lapped, o->skipped_window);
		rm_note("static cpu %u: skipped=%llu accepted=%llu records=%llu first_record_seq=%llu (records lost to laps %llu)",
			o->cpu, (unsigned long long)o->skipped_window,
			(unsigned long long)(o->accepted - acc0),
			(unsigned long long)o->st.records,
			(unsigned long long)o->st.first_seq,
			(unsigned long long)o->st.first_seq);
		if (o->st.first_seq == 0)
			rm_bad("cpu %u: first record seen has seq 0 although %llu sub-buffers were lapped",
			       o->cpu, (unsigned long long)w);
		rm_cursor_x(ch.ctl, o->cpu, &after);
		RM_EXPECT_EQ("static: consumed after handing back", after.consumed, cur.produced);
		/* FLUSH: the open sub-buffer closes, its successor overwrites a consumed one. */
		rm_flush_x(ch.ctl, (int)o->cpu);
		read_batch(o, false);
		rm_cursor_x(ch.ctl, o->cpu, &after);
		RM_EXPECT_EQ("static: FLUSH closed the open sub-buffer (produced + 1)",
			     after.produced, cur.produced + 1);
		RM_EXPECT_EQ("static: lapped unchanged when only consumed sub-buffers are overwritten",
			     after.subbufs_lapped, cur.subbufs_lapped);
	}

	/* ---- phase 2: live readers ---- */
	rm_set_phase("live");
	/* loadgen restarts seq at 0 at every start: a new stream per CPU. */
	for (unsigned int i = 0; i < ch.ncpus; i++) {
		struct ow *o = &ows[ch.cpus[i]];

		o->records_static = o->st.records;
		rm_stream_init(&o->st, o->cpu, (uint32_t)record_size);
		o->have_prev = false;
	}
	lg_start();
	for (unsigned int i = 0; i < ch.ncpus; i++)
		if (pthread_create(&th[ch.cpus[i]], NULL, live_reader, &ows[ch.cpus[i]]))
			rm_die("pthread_create");
	rm_sleep_ms(live_ms);
	__atomic_store_n(&live_stop, 1, __ATOMIC_RELEASE);
	for (unsigned int i = 0; i < ch.ncpus; i++)
		pthread_join(th[ch.cpus[i]], NULL);
	lg_stop();
	rm_set_phase("final drain");
	rm_flush_x(ch.ctl, RELAYMAP_ALL_CPUS);
	lg_read_status(&lg);
	for (unsigned int i = 0; i < ch.ncpus; i++) {
		struct ow *o = &ows[ch.cpus[i]];
		struct lg_cpu_status l = lg_cpu(&lg, o->cpu);
		struct relaymap_cursor cur;
		uint64_t rej0 = o->rejected + o->lapped_seq, K, L, lost;

		read_batch(o, false);
		RM_EXPECT_EQ("final drain: lapped/rejected with writers stopped",
			     o->rejected + o->lapped_seq, rej0);
		rm_cursor_x(ch.ctl, o->cpu, &cur);
		K = o->skipped_window + o->lapped_seq + o->rejected;
		L = cur.subbufs_lapped;
		lost = o->st.gap_records + o->st.first_seq;
		rm_note("cpu %u: live FLUSHes=%llu, FLUSHED sub-buffers accepted=%llu",
			o->cpu, (unsigned long long)o->live_flushes,
			(unsigned long long)o->flushed_seen);
		rm_note("cpu %u: produced=%llu consumed=%llu kernel_lapped=%llu | consumer accepted=%llu (live %llu) skipped_window=%llu lapped_by_seq=%llu rejected_torn=%llu stale=%llu torn_accepted=%llu discontig=%llu | static records=%llu | live records=%llu lost_in_laps=%llu last_seq=%llu loadgen attempts=%llu written=%llu dropped=%llu",
			o->cpu, (unsigned long long)cur.produced,
			(unsigned long long)cur.consumed, (unsigned long long)L,
			(unsigned long long)o->accepted,
			(unsigned long long)o->accepted_live,
			(unsigned long long)o->skipped_window,
			(unsigned long long)o->lapped_seq,
			(unsigned long long)o->rejected,
			(unsigned long long)o->stale,
			(unsigned long long)o->torn_accepted,
			(unsigned long long)o->discontig,
			(unsigned long long)o->records_static,
			(unsigned long long)o->st.records, (unsigned long long)lost,
			(unsigned long long)(o->st.next_seq - 1),
			(unsigned long long)l.attempts,
			(unsigned long long)l.written,
			(unsigned long long)l.dropped);
		RM_EXPECT_EQ("torn copies accepted", o->torn_accepted, 0);
		RM_EXPECT_EQ("consecutive accepted sub-buffers with non-contiguous records", o->discontig, 0);
		RM_EXPECT_EQ("stale headers (older seq below produced)", o->stale, 0);
		RM_EXPECT_EQ("record errors", rm_stream_errors(&o->st), 0);
		RM_EXPECT_EQ("every sub-buffer accounted (accepted + skipped == produced)",
			     o->accepted + K, cur.produced);
		RM_EXPECT_EQ("consumed == produced at the end", cur.consumed, cur.produced);
		RM_EXPECT_EQ("overwrite mode: kernel records_dropped", cur.records_dropped, 0);
		RM_EXPECT_EQ("overwrite mode: loadgen dropped", l.dropped, 0);
		RM_EXPECT_EQ("final drain ends at the loadgen's last record (next_seq == attempts)",
			     o->st.next_seq, l.attempts);
		RM_EXPECT_EQ("records seen + records lost in laps == loadgen written",
			     o->st.records + lost, l.written);
		if (L < K)
			rm_bad("cpu %u: kernel subbufs_lapped %llu < sub-buffers the consumer lost to laps %llu",
			       o->cpu, (unsigned long long)L, (unsigned long long)K);
		if (L > K + o->accepted_live)
			rm_bad("cpu %u: kernel subbufs_lapped %llu > consumer skips %llu + live accepted %llu",
			       o->cpu, (unsigned long long)L, (unsigned long long)K,
			       (unsigned long long)o->accepted_live);
		if (o->accepted_live == 0)
			rm_bad("cpu %u: live phase accepted nothing", o->cpu);
		tot_L += L;
		tot_K += K;
		tot_acc += o->accepted;
		tot_rej += o->rejected;
		tot_rec += o->records_static + o->st.records;
		tot_lost += lost;
		tot_P += cur.produced;
	}
	if (tot_L == 0)
		rm_bad("no lap happened: the test did not exercise overwrite mode");

	/* ---- phase 3: race the writer for the sub-buffer it overwrites next ---- */
	rm_set_phase("race");
	__atomic_store_n(&live_stop, 0, __ATOMIC_RELEASE);
	lg_start();
	for (unsigned int i = 0; i < ch.ncpus; i++)
		if (pthread_create(&th[ch.cpus[i]], NULL, race_reader, &ows[ch.cpus[i]]))
			rm_die("pthread_create");
	rm_sleep_ms(race_ms);
	__atomic_store_n(&live_stop, 1, __ATOMIC_RELEASE);
	for (unsigned int i = 0; i < ch.ncpus; i++)
		pthread_join(th[ch.cpus[i]], NULL);
	lg_stop();
	{
		uint64_t tries = 0, acc = 0, gone = 0, rej = 0, rej_bad = 0, torn = 0, recs = 0;

		for (unsigned int i = 0; i < ch.ncpus; i++) {
			struct ow *o = &ows[ch.cpus[i]];

			rm_note("race cpu %u: tries=%llu accepted=%llu (records %llu) gone_before_copy=%llu rejected_by_recheck=%llu (of which inconsistent %llu) torn_accepted=%llu",
				o->cpu, (unsigned long long)o->race_tries,
				(unsigned long long)o->race_accepted,
				(unsigned long long)o->race_records,
				(unsigned long long)o->race_gone,
				(unsigned long long)o->race_rejected,
				(unsigned long long)o->race_rejected_bad,
				(unsigned long long)o->race_torn_accepted);
			tries += o->race_tries;
			acc += o->race_accepted;
			gone += o->race_gone;
			rej += o->race_rejected;
			rej_bad += o->race_rejected_bad;
			torn += o->race_torn_accepted;
			recs += o->race_records;
		}
		rm_note("SUMMARY race: tries=%llu accepted=%llu records_verified=%llu gone_before_copy=%llu rejected_by_recheck=%llu rejected_and_inconsistent=%llu torn_accepted=%llu",
			(unsigned long long)tries, (unsigned long long)acc,
			(unsigned long long)recs, (unsigned long long)gone,
			(unsigned long long)rej, (unsigned long long)rej_bad,
			(unsigned long long)torn);
		RM_EXPECT_EQ("race: torn copies accepted", torn, 0);
		if (acc == 0)
			rm_bad("race: no copy was ever accepted");
		if (rej == 0)
			rm_bad("race: the writer never reopened a sub-buffer during a copy; the re-check was not exercised");
	}
	rm_note("SUMMARY produced=%llu accepted=%llu skipped=%llu kernel_lapped=%llu rejected_torn=%llu records=%llu live_records_lost_in_laps=%llu elapsed_s=%.2f",
		(unsigned long long)tot_P, (unsigned long long)tot_acc,
		(unsigned long long)tot_K, (unsigned long long)tot_L,
		(unsigned long long)tot_rej, (unsigned long long)tot_rec,
		(unsigned long long)tot_lost, rm_secs_since(t0));
	rm_close(&ch);
	return rm_exit();
}

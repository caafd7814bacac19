/* SPDX-License-Identifier: MIT */
/*
 * rmck_reset - RELAYMAP_IOC_RESET.
 *
 *   rmck_reset -n NAME
 *
 * 1. While the load generator runs, RESET fails with EBUSY (a registered
 *    writer) with no consumer fd open, and with every CPU claimed; after
 *    lg_stop it is still EBUSY while a consumer fd is open (the second
 *    reason alone). Nothing changes (the stream stays intact).
 * 2. After lg_stop and closing the consumer fds, with data produced and
 *    partly consumed, RESET succeeds although channel fds (ours, a second
 *    one and the debugfs control file) are open: every cursor is back to
 *    0, the counters are 0, resets is counted, the channel has a new uuid,
 *    poll() on fresh consumer fds sees no data.
 * 3. New data after RESET starts at sub-buffer seq 0 in slot 0, carries
 *    the new uuid and is complete and in order; a second RESET works the
 *    same.
 */
#include "rmtest.h"

static struct rm_chan ch;

static void lg_setup(const char *name, uint64_t count, uint64_t rate)
{
	lg_set("channel", name);
	lg_set("mode", "lossless");
	lg_setu("record_size", 64);
	lg_setu("rate", rate);
	lg_setu("duration_ms", 0);
	lg_setu("count", count);
}

static void expect_zero_after_reset(uint64_t resets_before, int round)
{
	struct relaymap_stats tot;

	for (unsigned int i = 0; i < ch.ncpus; i++) {
		unsigned int c = ch.cpus[i];
		struct relaymap_cursor cur;
		struct relaymap_stats st;
		struct pollfd pfd = { .fd = ch.fd[c], .events = POLLIN };
		int pr;

		rm_cursor_x(ch.ctl, c, &cur);
		rm_stats_x(ch.ctl, (int)c, &st);
		RM_EXPECT_EQ("stats.records_rejected after RESET", st.records_rejected, 0);
		RM_EXPECT_EQ("cursor.records_rejected after RESET", cur.records_rejected, 0);
		rm_note("round %d: after RESET cpu %u: produced=%llu consumed=%llu dropped=%llu lapped=%llu; stats written=%llu produced=%llu consumed=%llu flushes=%llu",
			round, c, (unsigned long long)cur.produced,
			(unsigned long long)cur.consumed,
			(unsigned long long)cur.records_dropped,
			(unsigned long long)cur.subbufs_lapped,
			(unsigned long long)st.records_written,
			(unsigned long long)st.subbufs_produced,
			(unsigned long long)st.subbufs_consumed,
			(unsigned long long)st.flushes);
		RM_EXPECT_EQ("cursor.produced after RESET", cur.produced, 0);
		RM_EXPECT_EQ("cursor.consumed after RESET", cur.consumed, 0);
		RM_EXPECT_EQ("cursor.records_dropped after RESET", cur.records_dropped, 0);
		RM_EXPECT_EQ("cursor.subbufs_lapped after RESET", cur.subbufs_lapped, 0);
		RM_EXPECT_EQ("stats.records_written after RESET", st.records_written, 0);
		RM_EXPECT_EQ("stats.bytes_written after RESET", st.bytes_written, 0);
		RM_EXPECT_EQ("stats.subbufs_produced after RESET", st.subbufs_produced, 0);
		RM_EXPECT_EQ("stats.subbufs_consumed after RESET", st.subbufs_consumed, 0);
		RM_EXPECT_EQ("stats.flushes after RESET", st.flushes, 0);
		pr = poll(&pfd, 1, 200);
		if (pr != 0)
			rm_bad("cpu %u: poll after RESET returned %d (revents %#x), expected a timeout (no data)",
			       c, pr, pfd.revents);
	}
	rm_stats_x(ch.ctl, RELAYMAP_ALL_CPUS, &tot);
	RM_EXPECT_EQ("stats(all).resets incremented by RESET", tot.resets, resets_before + 1);
	RM_EXPECT_EQ("stats(all).subbufs_produced after RESET", tot.subbufs_produced, 0);
}

/* Write `count` records per CPU after a RESET and check they start at seq 0. */
static uint64_t fresh_stream(const char *name, uint64_t count, int round)
{
	struct lg_status lg1;
	uint64_t total = 0;

	lg_setup(name, count, 0);
	lg_start();
	if (!lg_wait_idle(120000))
		rm_die("loadgen did not finish %llu records", (unsigned long long)count);
	lg_stop();
	rm_flush_x(ch.ctl, RELAYMAP_ALL_CPUS);
	lg_read_status(&lg1);
	for (unsigned int i = 0; i < ch.ncpus; i++) {
		unsigned int c = ch.cpus[i];
		struct relaymap_subbuf_header h;
		struct rm_drain d;
		char why[512];
		struct lg_cpu_status b = lg_cpu(&lg1, c);
		struct relaymap_cursor cur;

		rm_cursor_x(ch.ctl, c, &cur);
		if (cur.produced == 0) {
			rm_bad("round %d cpu %u: nothing produced after RESET + %llu records + FLUSH",
			       round, c, (unsigned long long)count);
			continue;
		}
		/* Sub-buffer 0 lives in slot 0 again. */
		rm_hdr_read((const struct relaymap_subbuf_header *)ch.map[c], &h);
		if (rm_hdr_check(&ch, c, 0, &h, why, sizeof(why)))
			rm_bad("round %d: first sub-buffer after RESET: %s", round, why);
		rm_drain_init(&d, &ch, c, 64);
		rm_drain_once(&ch, &d);
		rm_note("round %d cpu %u: after RESET: produced=%llu, slot 0 seq=%llu commit=%llu, records=%llu first_record_seq=%llu (loadgen written %llu)",
			round, c, (unsigned long long)cur.produced,
			(unsigned long long)h.packet_seq_num, (unsigned long long)h.commit,
			(unsigned long long)d.st.records,
			(unsigned long long)d.st.first_seq,
			(unsigned long long)b.written);
		RM_EXPECT_EQ("packet_seq_num of the first data after RESET", h.packet_seq_num, 0);
		/* loadgen restarts its counters and seq at every start. */
		RM_EXPECT_EQ("records after RESET == loadgen written in this run",
			     d.st.records, b.written);
		RM_EXPECT_EQ("loadgen written in this run == count", b.written, count);
		RM_EXPECT_EQ("first record seq after RESET", d.st.first_seq, 0);
		RM_EXPECT_EQ("seq gaps after RESET", d.st.gap_records, 0);
		RM_EXPECT_EQ("record errors after RESET", rm_stream_errors(&d.st), 0);
		RM_EXPECT_EQ("header violations after RESET", d.hdr_violations, 0);
		total += d.st.records;
	}
	return total;
}

/* RESET must be refused with EBUSY `n` times; returns how many were. */
static int expect_busy(int n, const char *why)
{
	int ebusy = 0;

	for (int i = 0; i < n; i++) {
		int err = rm_reset(ch.ctl);

		if (err == -EBUSY)
			ebusy++;
		else
			rm_bad("RESET %s: %s, expected EBUSY", why,
			       err ? strerror(-err) : "success");
		rm_sleep_ms(5);
	}
	rm_note("RESET %s: %d of %d -> EBUSY", why, ebusy, n);
	return ebusy;
}

/* RESET with writers stopped and no consumer fd open; checks the new uuid. */
static void reset_ok(const char *what, uint64_t resets_before, int round)
{
	uint8_t old_uuid[16];
	int err;

	memcpy(old_uuid, ch.info.uuid, sizeof(old_uuid));
	err = rm_chan_reset(&ch);
	if (err)
		rm_die("%s: %s", what, strerror(-err));
	if (!memcmp(old_uuid, ch.info.uuid, sizeof(old_uuid)))
		rm_bad("%s: GET_INFO uuid unchanged by RESET (a new channel instance needs a new uuid)",
		       what);
	/* Fresh consumer fds for the poll check and the data after it. */
	rm_claim(&ch, RM_OPEN_MAP);
	expect_zero_after_reset(resets_before, round);
}

int main(int argc, char **argv)
{
	const char *name = argc == 3 && !strcmp(argv[1], "-n") ? argv[2] : NULL;
	struct relaymap_stats tot;
	int err, ebusy = 0, other, dbg;
	uint64_t recs;

	rm_init(argv[0], 240);
	if (!name)
		rm_die("usage: rmck_reset -n NAME");
	rm_open(&ch, name, 0);
	if (!lg_present())
		rm_die("relaymap_loadgen is not loaded");
	if (ch.info.flags & RELAYMAP_INFO_OVERWRITE)
		rm_die("use a no-overwrite channel");

	/* 1. RESET with a registered writer, then with consumers too, then consumers alone. */
	rm_set_phase("RESET while loadgen runs, no consumer");
	lg_setup(name, 0, 2000);
	lg_start();
	rm_sleep_ms(300);
	ebusy += expect_busy(10, "while loadgen runs (no consumer fd open)");
	rm_set_phase("RESET while loadgen runs, every CPU claimed");
	rm_claim(&ch, RM_OPEN_MAP);
	ebusy += expect_busy(10, "while loadgen runs and every CPU is claimed");
	lg_stop();
	rm_set_phase("RESET with a consumer fd open, writers stopped");
	ebusy += expect_busy(3, "with writers stopped but consumer fds open");
	rm_flush_x(ch.ctl, RELAYMAP_ALL_CPUS);
	rm_stats_x(ch.ctl, RELAYMAP_ALL_CPUS, &tot);
	RM_EXPECT_EQ("resets after refused RESETs", tot.resets, 0);
	/* The refused RESETs did not disturb the stream. */
	for (unsigned int i = 0; i < ch.ncpus; i++) {
		unsigned int c = ch.cpus[i];
		struct rm_drain d;
		struct relaymap_cursor cur;

		rm_drain_init(&d, &ch, c, 64);
		rm_cursor_x(ch.ctl, c, &cur);
		/* Leave the last sub-buffer unconsumed: RESET must clear it too. */
		if (cur.produced > 1)
			rm_drain_to(&ch, &d, cur.produced - 1);
		rm_note("before RESET cpu %u: produced=%llu consumed=%llu records read=%llu",
			c, (unsigned long long)cur.produced,
			(unsigned long long)d.consumed,
			(unsigned long long)d.st.records);
		if (cur.produced == 0)
			rm_bad("cpu %u: nothing produced by the loadgen at rate 2000 in 300 ms + FLUSH", c);
		RM_EXPECT_EQ("seq gaps across refused RESETs", d.st.gap_records, 0);
		RM_EXPECT_EQ("record errors across refused RESETs", rm_stream_errors(&d.st), 0);
		RM_EXPECT_EQ("header violations across refused RESETs", d.hdr_violations, 0);
	}
	/* One CPU still claimed (by a single-CPU consumer fd) is enough for EBUSY. */
	rm_release(&ch);
	{
		int cfd = rm_open_consumer_fd(ch.ctl, (int)ch.cpus[0]);

		if (cfd < 0)
			rm_die("OPEN_CONSUMER(cpu %u) after closing the claim: %s", ch.cpus[0],
			       strerror(-cfd));
		ebusy += expect_busy(1, "with one CPU's consumer fd open");
		close(cfd);
	}

	/* 2. RESET with writers stopped, no consumer, channel fds open. */
	rm_set_phase("RESET after lg_stop");
	other = rm_open_channel_x(name);
	dbg = rm_open_control(name);
	rm_note("second channel fd open, debugfs control %s", dbg >= 0 ? "open" : "not open (no debugfs view)");
	reset_ok("RESET after lg_stop with channel fds open", 0, 1);
	close(other);
	if (dbg >= 0)
		close(dbg);

	/* 3. Fresh data starts at seq 0. */
	rm_set_phase("data after RESET");
	recs = fresh_stream(name, 1000, 1);

	/* Again, with nothing consumed this time. */
	rm_set_phase("second RESET");
	rm_stats_x(ch.ctl, RELAYMAP_ALL_CPUS, &tot);
	ebusy += expect_busy(1, "with the consumers of round 1 open");
	rm_release(&ch);
	reset_ok("second RESET", tot.resets, 2);
	recs += fresh_stream(name, 300, 2);
	rm_release(&ch);
	/* And a RESET right after another one is fine. */
	err = rm_reset(ch.ctl);
	if (err)
		rm_bad("third RESET: %s", strerror(-err));
	err = rm_reset(ch.ctl);
	if (err)
		rm_bad("fourth RESET (nothing to reset): %s", strerror(-err));
	rm_stats_x(ch.ctl, RELAYMAP_ALL_CPUS, &tot);
	RM_EXPECT_EQ("resets after 4 RESETs", tot.resets, 4);
	rm_note("SUMMARY ebusy=%d/25 resets=%llu records_after_reset=%llu", ebusy,
		(unsigned long long)tot.resets, (unsigned long long)recs);
	rm_close(&ch);
	return rm_exit();
}

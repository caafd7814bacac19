// SPDX-License-Identifier: MIT OR Apache-2.0
//
// consumer.cpp - the C consumer (consumer.c) in C++ with the RAII wrapper
// relaymap.hpp: the channel is a unique handle, each sub-buffer a View that
// is handed back to the kernel when it goes out of scope, errors are
// exceptions. It takes sub-buffers one at a time with next() (consumer.c
// uses batches), from any CPU, round-robin.
//
//   consumer_cpp --dir /sys/kernel/debug/relaymap/NAME [--expect N]
//   consumer_cpp --sim [--cpus N] [--count N] [--record-size B] [--drop]
//                      [--subbuf-size B] [--n-subbufs N]    (RELAYMAP_TESTING)
//
// Same output lines and exit status as consumer.c.
//
// Build: c++ -std=c++17 consumer.cpp $(pkg-config --cflags --libs relaymap)
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <inttypes.h>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "relaymap.hpp"

namespace {

volatile std::sig_atomic_t stop_requested = 0;

extern "C" void on_signal(int) { stop_requested = 1; }

struct CpuStats {
	uint64_t records = 0, subbufs = 0, bytes = 0, next_seq = 0, gaps = 0;
};

class Consumer {
public:
	explicit Consumer(const std::string &dir) : ch_(dir)
	{
		auto info = ch_.info();
		cpus_ = ch_.cpus();
		for (uint32_t c : cpus_)
			st_[c] = CpuStats{};
		std::printf("channel %s: %zu CPUs, %" PRIu64 " x %" PRIu64 " bytes, %s, "
			    "librelaymap %s (header %s)\n",
			    info.name, cpus_.size(), info.n_subbufs, info.subbuf_size,
			    info.overwrite ? "overwrite" : "no-overwrite", relaymap_version(),
			    RELAYMAP_VERSION_STRING);
	}

	// Takes every ready sub-buffer, one at a time; returns how many.
	uint64_t consume()
	{
		uint64_t n = 0;
		while (auto v = ch_.next()) {
			take(*v);
			n++;
		} // each View is handed back here, when it goes out of scope
		return n;
	}

	// Flushes and consumes until every CPU is drained (writers stopped).
	void drain()
	{
		ch_.flush();
		for (int idle = 0;;) {
			uint64_t n = consume();
			if (ch_.drained())
				return;
			if (n == 0 && ++idle > 100)
				throw std::runtime_error("not drained after 100 idle passes "
							 "(is a writer still running?)");
			ch_.wait(std::chrono::milliseconds(10));
		}
	}

	relaymap_loss report()
	{
		CpuStats t;
		for (uint32_t c : cpus_) {
			const CpuStats &s = st_[c];
			std::printf("cpu %u records %" PRIu64 " subbufs %" PRIu64 " bytes %" PRIu64
				    " gaps %" PRIu64 "\n",
				    c, s.records, s.subbufs, s.bytes, s.gaps);
			t.subbufs += s.subbufs;
			t.bytes += s.bytes;
			t.gaps += s.gaps;
		}
		std::printf("total records %" PRIu64 " subbufs %" PRIu64 " bytes %" PRIu64
			    " gaps %" PRIu64 " bad %" PRIu64 " disorder %" PRIu64 "\n",
			    records_, t.subbufs, t.bytes, t.gaps, bad_, disorder_);
		relaymap_loss l = ch_.loss();
		std::printf("loss records_dropped %" PRIu64 " subbufs_lapped %" PRIu64
			    " subbufs_corrupt %" PRIu64 "\n",
			    l.records_dropped, l.subbufs_lapped, l.subbufs_corrupt);
		relaymap_channel_stats k = ch_.stats();
		std::printf("kernel records_written %" PRIu64 " records_dropped %" PRIu64
			    " subbufs_produced %" PRIu64 " subbufs_consumed %" PRIu64 "\n",
			    k.records_written, k.records_dropped, k.subbufs_produced,
			    k.subbufs_consumed);
		return l;
	}

	bool wait(std::chrono::milliseconds t) { return ch_.wait(t); }
	uint64_t records() const { return records_; }
	bool clean() const { return bad_ == 0 && disorder_ == 0; }
	const CpuStats &cpu(uint32_t c) { return st_[c]; }

private:
	void take(const relaymap::View &v)
	{
		CpuStats &s = st_[v.cpu()];
		s.subbufs++;
		s.bytes += v.size();
		try {
			for (const relaymap_record_view &r : v.records())
				account(s, v.cpu(), r);
		} catch (const relaymap::Error &e) {
			// Corrupt framing: the rest of this payload is skipped.
			std::fprintf(stderr, "consumer_cpp: %s\n", e.what());
			bad_++;
		}
	}

	void account(CpuStats &s, uint32_t cpu, const relaymap_record_view &r)
	{
		s.records++;
		records_++;
		if (r.rec_type != RELAYMAP_REC_LOADGEN)
			return;
		relaymap_loadgen_record lg;
		bool valid = false;
		if (relaymap_loadgen_parse(&r, &lg, &valid) != RELAYMAP_OK || !valid ||
		    lg.cpu != cpu) {
			if (bad_ < 10)
				std::fprintf(stderr, "consumer_cpp: cpu %u: bad record at offset %zu\n",
					     cpu, r.offset);
			bad_++;
			return;
		}
		if (lg.seq < s.next_seq) {
			if (disorder_ < 10)
				std::fprintf(stderr, "consumer_cpp: cpu %u: seq %" PRIu64
					     " after %" PRIu64 "\n", cpu, lg.seq, s.next_seq - 1);
			disorder_++;
			return;
		}
		s.gaps += lg.seq - s.next_seq;
		s.next_seq = lg.seq + 1;
	}

	relaymap::Channel ch_;
	std::vector<uint32_t> cpus_;
	std::map<uint32_t, CpuStats> st_;
	uint64_t records_ = 0, bad_ = 0, disorder_ = 0;
};

int run_dir(const std::string &dir, long long expect)
{
	struct sigaction sa;
	std::memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal; // no SA_RESTART: the wait returns
	sigaction(SIGINT, &sa, nullptr);
	sigaction(SIGTERM, &sa, nullptr);

	Consumer c(dir);
	std::printf("consuming (SIGINT or SIGTERM to stop)\n");
	std::fflush(stdout);
	while (!stop_requested && (expect < 0 || c.records() < uint64_t(expect))) {
		c.wait(std::chrono::milliseconds(200));
		c.consume();
	}
	c.drain();
	c.report();
	bool ok = c.clean();
	if (expect >= 0 && c.records() != uint64_t(expect)) {
		std::fprintf(stderr, "consumer_cpp: %" PRIu64 " records, expected %lld\n",
			     c.records(), expect);
		ok = false;
	}
	return ok ? 0 : 1;
}

#ifdef RELAYMAP_TESTING
struct Producer {
	uint64_t written = 0, dropped = 0, refused = 0;
	std::atomic<bool> done{false};
	std::string error;
};

int run_sim(uint32_t cpus, uint64_t count, size_t record_size, bool drop,
	    uint64_t subbuf_size, uint64_t n_subbufs)
{
	relaymap::Sim sim(subbuf_size, n_subbufs, cpus);
	Consumer c(sim.dir());
	std::printf("simulated producers: %u x %" PRIu64 " records of %zu bytes (%s)\n",
		    cpus, count, record_size, drop ? "drop when full" : "lossless");
	std::vector<Producer> p(cpus);
	std::vector<std::thread> threads;
	for (uint32_t k = 0; k < cpus; k++) {
		threads.emplace_back([&sim, &p, k, count, record_size, drop] {
			Producer &me = p[k];
			try {
				for (uint64_t seq = 0; seq < count; seq++) {
					// Drop mode: write (full: dropped, counted).
					// Lossless: try_write (full: refused, not
					// counted; retry), as the load generator.
					while (!(drop ? sim.write_loadgen(k, seq, record_size)
						      : sim.try_write_loadgen(k, seq, record_size))) {
						if (drop) {
							me.dropped++;
							goto next;
						}
						me.refused++; // lossless: wait for the reader
						std::this_thread::yield();
					}
					me.written++;
				next:;
				}
			} catch (const relaymap::Error &e) {
				me.error = e.what();
			}
			me.done.store(true, std::memory_order_release);
		});
	}
	bool ok = true;
	for (bool running = true; running;) {
		running = false;
		for (const Producer &q : p)
			running |= !q.done.load(std::memory_order_acquire);
		c.wait(std::chrono::milliseconds(50));
		c.consume();
	}
	uint64_t written = 0, dropped = 0, refused = 0;
	for (uint32_t k = 0; k < cpus; k++) {
		threads[k].join();
		written += p[k].written;
		dropped += p[k].dropped;
		refused += p[k].refused;
		if (!p[k].error.empty()) {
			std::fprintf(stderr, "consumer_cpp: producer %u: %s\n", k,
				     p[k].error.c_str());
			ok = false;
		}
	}
	c.drain();
	relaymap_loss loss = c.report();
	std::printf("producers written %" PRIu64 " dropped %" PRIu64 " refused %" PRIu64 "\n",
		    written, dropped, refused);
	ok &= c.clean();
	for (uint32_t k = 0; k < cpus; k++) {
		if (c.cpu(k).records != p[k].written) {
			std::fprintf(stderr, "consumer_cpp: cpu %u: received %" PRIu64
				     ", written %" PRIu64 "\n", k, c.cpu(k).records, p[k].written);
			ok = false;
		}
	}
	// Drops are counted; refused try-writes (lossless retries) are not.
	if (loss.records_dropped != dropped) {
		std::fprintf(stderr, "consumer_cpp: loss.records_dropped %" PRIu64
			     " != dropped %" PRIu64 " (refused %" PRIu64 " not counted)\n",
			     loss.records_dropped, dropped, refused);
		ok = false;
	}
	std::printf("%s\n", ok ? "ok: every record arrived once, in order, verified; "
				 "every loss counted" : "FAILED");
	return ok ? 0 : 1;
}
#endif

void usage()
{
	std::fprintf(stderr, "usage: consumer_cpp --dir DIR [--expect N]\n"
#ifdef RELAYMAP_TESTING
			     "       consumer_cpp --sim [--cpus N] [--count N] [--record-size B] "
			     "[--drop]\n"
			     "                          [--subbuf-size B] [--n-subbufs N]\n"
#endif
	);
}

} // namespace

int main(int argc, char **argv)
{
	std::string dir;
	long long expect = -1;
	bool sim = false, drop = false;
	unsigned long long cpus = 2, count = 100000, record_size = 64;
	unsigned long long subbuf_size = 16384, n_subbufs = 8;
	for (int i = 1; i < argc; i++) {
		std::string a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : nullptr;
		auto num = [&](unsigned long long &out) {
			out = std::strtoull(v, nullptr, 0);
			i++;
		};
		if (a == "--sim")
			sim = true;
		else if (a == "--drop")
			drop = true;
		else if (a == "--quiet")
			;
		else if (v && a == "--dir")
			dir = v, i++;
		else if (v && a == "--expect")
			expect = std::strtoll(v, nullptr, 0), i++;
		else if (v && a == "--cpus")
			num(cpus);
		else if (v && a == "--count")
			num(count);
		else if (v && a == "--record-size")
			num(record_size);
		else if (v && a == "--subbuf-size")
			num(subbuf_size);
		else if (v && a == "--n-subbufs")
			num(n_subbufs);
		else {
			usage();
			return 2;
		}
	}
	std::setvbuf(stdout, nullptr, _IOLBF, 0);
	try {
		if (!dir.empty() && !sim)
			return run_dir(dir, expect);
#ifdef RELAYMAP_TESTING
		if (sim && dir.empty())
			return run_sim(uint32_t(cpus), count, size_t(record_size), drop,
				       subbuf_size, n_subbufs);
#else
		(void)drop, (void)cpus, (void)count, (void)record_size;
		(void)subbuf_size, (void)n_subbufs;
#endif
	} catch (const relaymap::Error &e) {
		std::fprintf(stderr, "consumer_cpp: %s (%s)\n", e.what(),
			     relaymap_result_name(e.code()));
		return 1;
	} catch (const std::exception &e) {
		std::fprintf(stderr, "consumer_cpp: %s\n", e.what());
		return 1;
	}
	usage();
	return 2;
}

// SPDX-License-Identifier: MIT OR Apache-2.0
//
// consumer.cpp - the C consumer (consumer.c) in C++ with the RAII wrapper
// relaymap.hpp, on the per-CPU reader model: the channel and each reader
// are unique handles, every reader is consumed by its own thread (readers
// are independent), one sub-buffer at a time with Reader::next() (acquire
// of one: constant cost per sub-buffer), each Subbuf handed back to the
// kernel when it goes out of scope; errors are exceptions.
//
//   consumer_cpp --name NAME [--expect N]     (through /dev/relaymap)
//   consumer_cpp --dir DIR [--expect N]       (debugfs or simulated channel)
//   consumer_cpp --sim [--cpus N] [--count N] [--record-size B] [--drop]
//                      [--subbuf-size B] [--n-subbufs N]    (RELAYMAP_TESTING)
//
// Same output lines and exit status as consumer.c (3: another consumer
// holds a CPU).
//
// Build: c++ -std=c++17 consumer.cpp $(pkg-config --cflags --libs relaymap) -pthread
#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <inttypes.h>
#include <memory>
#include <pthread.h>
#include <string>
#include <thread>
#include <vector>

#include "relaymap.hpp"

namespace {

constexpr int exit_busy = 3;

// One CPU: its reader, what arrived, and the thread consuming it.
class CpuConsumer {
public:
	explicit CpuConsumer(relaymap::Reader rd) : rd_(std::move(rd)), cpu_(rd_.cpu()) {}

	// Takes every ready sub-buffer, one at a time; returns how many.
	uint64_t consume()
	{
		uint64_t n = 0;
		while (auto sb = rd_.next()) {
			take(*sb);
			n++;
		} // each Subbuf is handed back here, when it goes out of scope
		return n;
	}

	// The thread: wait and consume until `stop`.
	void start(const std::atomic<bool> &stop)
	{
		thread_ = std::thread([this, &stop] {
			try {
				while (!stop.load(std::memory_order_acquire))
					if (rd_.wait(std::chrono::milliseconds(100)))
						consume();
			} catch (const std::exception &e) {
				error_ = e.what();
			}
		});
	}
	void join()
	{
		if (thread_.joinable())
			thread_.join();
	}

	// After the writers stopped and the channel was flushed: consume until
	// drained.
	void drain()
	{
		for (int idle = 0;;) {
			uint64_t n = consume();
			if (rd_.drained())
				return;
			if (n == 0 && ++idle > 100)
				throw std::runtime_error("cpu " + std::to_string(cpu_) +
							 ": not drained after 100 idle passes "
							 "(is a writer still running?)");
			rd_.wait(std::chrono::milliseconds(10));
		}
	}

	uint32_t cpu() const { return cpu_; }
	uint64_t records() const { return records_.load(std::memory_order_relaxed); }
	uint64_t subbufs() const { return subbufs_; }
	uint64_t bytes() const { return bytes_; }
	uint64_t gaps() const { return gaps_; }
	uint64_t bad() const { return bad_; }
	uint64_t disorder() const { return disorder_; }
	const std::string &error() const { return error_; }
	relaymap_loss loss() const { return rd_.loss(); }

private:
	void take(const relaymap::Subbuf &sb)
	{
		subbufs_++;
		bytes_ += sb.size();
		try {
			for (const relaymap_record_view &r : sb.records())
				account(r);
		} catch (const relaymap::Error &e) {
			// Corrupt framing: the rest of this payload is skipped.
			std::fprintf(stderr, "consumer_cpp: %s\n", e.what());
			bad_++;
		}
	}

	void account(const relaymap_record_view &r)
	{
		records_.fetch_add(1, std::memory_order_relaxed);
		if (r.rec_type != RELAYMAP_REC_LOADGEN)
			return;
		relaymap_loadgen_record lg;
		bool valid = false;
		if (relaymap_loadgen_parse(&r, &lg, &valid) != RELAYMAP_OK || !valid ||
		    lg.cpu != cpu_) {
			if (bad_ < 10)
				std::fprintf(stderr, "consumer_cpp: cpu %u: bad record at offset %zu\n",
					     cpu_, r.offset);
			bad_++;
			return;
		}
		if (lg.seq < next_seq_) {
			if (disorder_ < 10)
				std::fprintf(stderr, "consumer_cpp: cpu %u: seq %" PRIu64
					     " after %" PRIu64 "\n", cpu_, lg.seq, next_seq_ - 1);
			disorder_++;
			return;
		}
		gaps_ += lg.seq - next_seq_;
		next_seq_ = lg.seq + 1;
	}

	relaymap::Reader rd_;
	uint32_t cpu_;
	std::thread thread_;
	std::atomic<uint64_t> records_{0};
	uint64_t subbufs_ = 0, bytes_ = 0, next_seq_ = 0, gaps_ = 0, bad_ = 0, disorder_ = 0;
	std::string error_;
};

class Consumer {
public:
	explicit Consumer(relaymap::Channel ch) : ch_(std::move(ch))
	{
		auto info = ch_.info();
		for (relaymap::Reader &rd : ch_.readers()) // all or nothing
			cpus_.push_back(std::make_unique<CpuConsumer>(std::move(rd)));
		std::printf("channel %s: %zu CPUs, %" PRIu64 " x %" PRIu64 " bytes, %s, "
			    "librelaymap %s (header %s)\n",
			    info.name, cpus_.size(), info.n_subbufs, info.subbuf_size,
			    info.overwrite ? "overwrite" : "no-overwrite", relaymap_version(),
			    RELAYMAP_VERSION_STRING);
	}
	~Consumer() { stop(); }

	void start()
	{
		for (auto &c : cpus_)
			c->start(stop_);
	}
	// Stops the threads (idempotent).
	void stop()
	{
		stop_.store(true, std::memory_order_release);
		for (auto &c : cpus_)
			c->join();
	}
	// Stops the threads, flushes, drains every reader (writers stopped).
	void drain()
	{
		stop();
		ch_.flush();
		for (auto &c : cpus_)
			c->drain();
	}

	uint64_t records() const
	{
		uint64_t n = 0;
		for (const auto &c : cpus_)
			n += c->records();
		return n;
	}

	// Prints the report; returns the losses summed over the readers.
	relaymap_loss report(bool &clean) const
	{
		uint64_t subbufs = 0, bytes = 0, gaps = 0, bad = 0, disorder = 0;
		relaymap_loss t{};
		clean = true;
		for (const auto &c : cpus_) {
			std::printf("cpu %u records %" PRIu64 " subbufs %" PRIu64 " bytes %" PRIu64
				    " gaps %" PRIu64 "\n",
				    c->cpu(), c->records(), c->subbufs(), c->bytes(), c->gaps());
			subbufs += c->subbufs();
			bytes += c->bytes();
			gaps += c->gaps();
			bad += c->bad();
			disorder += c->disorder();
			relaymap_loss l = c->loss();
			t.records_dropped += l.records_dropped;
			t.records_rejected += l.records_rejected;
			t.subbufs_lapped += l.subbufs_lapped;
			t.subbufs_corrupt += l.subbufs_corrupt;
			if (!c->error().empty()) {
				std::fprintf(stderr, "consumer_cpp: cpu %u: %s\n", c->cpu(),
					     c->error().c_str());
				clean = false;
			}
		}
		std::printf("total records %" PRIu64 " subbufs %" PRIu64 " bytes %" PRIu64
			    " gaps %" PRIu64 " bad %" PRIu64 " disorder %" PRIu64 "\n",
			    records(), subbufs, bytes, gaps, bad, disorder);
		std::printf("loss records_dropped %" PRIu64 " records_rejected %" PRIu64
			    " subbufs_lapped %" PRIu64 " subbufs_corrupt %" PRIu64 "\n",
			    t.records_dropped, t.records_rejected, t.subbufs_lapped,
			    t.subbufs_corrupt);
		relaymap_channel_stats k = ch_.stats();
		std::printf("kernel records_written %" PRIu64 " records_dropped %" PRIu64
			    " subbufs_produced %" PRIu64 " subbufs_consumed %" PRIu64 "\n",
			    k.records_written, k.records_dropped, k.subbufs_produced,
			    k.subbufs_consumed);
		clean &= bad == 0 && disorder == 0;
		return t;
	}

	size_t size() const { return cpus_.size(); }
	const CpuConsumer &cpu(size_t i) const { return *cpus_[i]; }

private:
	relaymap::Channel ch_;
	std::vector<std::unique_ptr<CpuConsumer>> cpus_;
	std::atomic<bool> stop_{false};
};

int run_channel(const std::string &name, const std::string &dir, long long expect)
{
	// The consumer threads inherit a mask that blocks SIGINT and SIGTERM;
	// this thread takes them with sigtimedwait.
	sigset_t sigs;
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &sigs, nullptr);

	Consumer c(name.empty() ? relaymap::Channel::open_path(dir) : relaymap::Channel::open(name));
	c.start();
	std::printf("consuming %zu CPUs (SIGINT or SIGTERM to stop)\n", c.size());
	std::fflush(stdout);
	const struct timespec tick = {0, 100 * 1000 * 1000};
	while (expect < 0 || c.records() < uint64_t(expect)) {
		int sig = sigtimedwait(&sigs, nullptr, &tick);
		if (sig == SIGINT || sig == SIGTERM)
			break;
	}
	c.drain();
	bool ok = true;
	c.report(ok);
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
	std::string error;
};

int run_sim(uint32_t cpus, uint64_t count, size_t record_size, bool drop,
	    uint64_t subbuf_size, uint64_t n_subbufs)
{
	relaymap::Sim sim(subbuf_size, n_subbufs, cpus);
	Consumer c(relaymap::Channel::open_path(sim.dir()));
	std::printf("simulated producers: %u x %" PRIu64 " records of %zu bytes (%s)\n",
		    cpus, count, record_size, drop ? "drop when full" : "lossless");
	c.start();
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
		});
	}
	bool ok = true;
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
	bool clean = true;
	relaymap_loss loss = c.report(clean);
	ok &= clean;
	std::printf("producers written %" PRIu64 " dropped %" PRIu64 " refused %" PRIu64 "\n",
		    written, dropped, refused);
	for (uint32_t k = 0; k < cpus; k++) {
		// The simulated CPUs are 0..cpus-1, so reader k is CPU k.
		if (c.cpu(k).cpu() != k || c.cpu(k).records() != p[k].written) {
			std::fprintf(stderr, "consumer_cpp: cpu %u: received %" PRIu64
				     ", written %" PRIu64 "\n", k, c.cpu(k).records(), p[k].written);
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
	std::fprintf(stderr, "usage: consumer_cpp --name NAME [--expect N]\n"
			     "       consumer_cpp --dir DIR [--expect N]\n"
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
	std::string dir, name;
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
		else if (v && a == "--name")
			name = v, i++;
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
		if (!sim && (name.empty() != dir.empty()))
			return run_channel(name, dir, expect);
#ifdef RELAYMAP_TESTING
		if (sim && dir.empty() && name.empty())
			return run_sim(uint32_t(cpus), count, size_t(record_size), drop,
				       subbuf_size, n_subbufs);
#else
		(void)drop, (void)cpus, (void)count, (void)record_size;
		(void)subbuf_size, (void)n_subbufs;
#endif
	} catch (const relaymap::Error &e) {
		std::fprintf(stderr, "consumer_cpp: %s (%s)\n", e.what(),
			     relaymap_result_name(e.code()));
		return e.busy() ? exit_busy : 1;
	} catch (const std::exception &e) {
		std::fprintf(stderr, "consumer_cpp: %s\n", e.what());
		return 1;
	}
	usage();
	return 2;
}

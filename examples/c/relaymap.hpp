// SPDX-License-Identifier: MIT OR Apache-2.0
//
// relaymap.hpp - a small header-only C++17 wrapper over librelaymap's C API
// (relaymap.h): unique handles, sub-buffers and batches that are handed
// back to the kernel in their destructors, errors as exceptions.
//
//   auto ch = relaymap::Channel::open("demo");     // through /dev/relaymap
//   std::vector<relaymap::Reader> readers = ch.readers();  // claims every CPU
//   // each reader may go to its own thread:
//   relaymap::Reader &rd = readers[0];
//   while (!done) {
//       if (!rd.wait(std::chrono::milliseconds(200)))
//           continue;
//       while (auto sb = rd.next()) {             // one sub-buffer, O(1)
//           for (const relaymap_record_view &rec : sb->records())
//               use(rec);
//       }                                          // ~Subbuf hands it back
//   }
//
// Lifetimes: a Subbuf or Batch borrows its Reader and must not outlive it;
// a Reader may outlive its Channel. A reader has at most one outstanding
// Subbuf or Batch: next() or acquire() while one is alive throws
// relaymap::Error with RELAYMAP_ERR_STATE. A Reader is for one thread at a
// time; different Readers are independent.
#ifndef RELAYMAP_HPP
#define RELAYMAP_HPP

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "relaymap.h"

namespace relaymap {

// A failed call: the result code, relaymap's message, the errno behind it.
class Error : public std::runtime_error {
public:
	Error(relaymap_result code, const char *what, int os_error)
		: std::runtime_error(what), code_(code), os_error_(os_error) {}
	relaymap_result code() const noexcept { return code_; }
	int os_error() const noexcept { return os_error_; }
	// Another consumer holds a CPU (the message names its pid and command).
	bool busy() const noexcept { return code_ == RELAYMAP_ERR_BUSY; }

private:
	relaymap_result code_;
	int os_error_;
};

inline void check(relaymap_result rc)
{
	if (rc != RELAYMAP_OK)
		throw Error(rc, relaymap_last_error(), relaymap_last_os_error());
}

// The records of a payload, for range-for. Corrupt framing throws Error.
class Records {
public:
	class iterator {
	public:
		iterator() = default;
		explicit iterator(relaymap_slice payload) : end_(false)
		{
			check(relaymap_record_iter_init(&it_, payload));
			advance();
		}
		const relaymap_record_view &operator*() const { return cur_; }
		const relaymap_record_view *operator->() const { return &cur_; }
		iterator &operator++()
		{
			advance();
			return *this;
		}
		bool operator==(const iterator &o) const { return end_ && o.end_; }
		bool operator!=(const iterator &o) const { return !(*this == o); }

	private:
		void advance()
		{
			bool got = false;
			relaymap_result rc = relaymap_record_iter_next(&it_, &cur_, &got);
			end_ = !got;
			check(rc);
		}
		relaymap_record_iter it_{};
		relaymap_record_view cur_{};
		bool end_ = true;
	};

	explicit Records(relaymap_slice payload) : payload_(payload) {}
	iterator begin() const { return iterator(payload_); }
	iterator end() const { return iterator(); }

private:
	relaymap_slice payload_;
};

// One sub-buffer from Reader::next(); handed back when destroyed (or by
// release()). Move-only.
class Subbuf {
public:
	Subbuf(relaymap_reader *rd, const relaymap_subbuf &sb) : rd_(rd), sb_(sb) {}
	Subbuf(Subbuf &&o) noexcept : rd_(std::exchange(o.rd_, nullptr)), sb_(o.sb_) {}
	Subbuf &operator=(Subbuf &&o) noexcept
	{
		if (this != &o) {
			reset();
			rd_ = std::exchange(o.rd_, nullptr);
			sb_ = o.sb_;
		}
		return *this;
	}
	Subbuf(const Subbuf &) = delete;
	Subbuf &operator=(const Subbuf &) = delete;
	~Subbuf() { reset(); }

	// Hands the sub-buffer back now, reporting errors.
	void release()
	{
		if (relaymap_reader *rd = std::exchange(rd_, nullptr))
			check(relaymap_reader_release(rd));
	}

	const relaymap_subbuf &raw() const noexcept { return sb_; }
	const uint8_t *data() const noexcept { return sb_.payload.ptr; }
	size_t size() const noexcept { return sb_.payload.len; }
	uint32_t cpu() const noexcept { return sb_.cpu; }
	uint64_t seq() const noexcept { return sb_.seq; }
	Records records() const { return Records(sb_.payload); }

private:
	void reset() noexcept
	{
		// A destructor must not throw: a failed hand-back is ignored
		// here (release() reports it).
		if (relaymap_reader *rd = std::exchange(rd_, nullptr))
			(void)relaymap_reader_release(rd);
	}
	relaymap_reader *rd_;
	relaymap_subbuf sb_;
};

// Sub-buffers of one CPU taken at once (Reader::acquire()); handed back as
// a whole when destroyed (or by release()). Move-only. Iterable:
// for (const relaymap_subbuf &sb : batch).
class Batch {
public:
	Batch(relaymap_reader *rd, const relaymap_batch &b)
		: rd_(b.len ? rd : nullptr), b_(b) {}
	Batch(Batch &&o) noexcept : rd_(std::exchange(o.rd_, nullptr)), b_(o.b_) {}
	Batch &operator=(Batch &&o) noexcept
	{
		if (this != &o) {
			reset();
			rd_ = std::exchange(o.rd_, nullptr);
			b_ = o.b_;
		}
		return *this;
	}
	Batch(const Batch &) = delete;
	Batch &operator=(const Batch &) = delete;
	~Batch() { reset(); }

	size_t size() const noexcept { return b_.len; }
	bool empty() const noexcept { return b_.len == 0; }
	const relaymap_batch &raw() const noexcept { return b_; }
	const relaymap_subbuf *begin() const noexcept { return b_.subbufs; }
	const relaymap_subbuf *end() const noexcept { return b_.subbufs + b_.len; }
	const relaymap_subbuf &operator[](size_t i) const { return b_.subbufs[i]; }
	// Hands the whole batch back (one control call).
	void release()
	{
		if (relaymap_reader *rd = std::exchange(rd_, nullptr))
			check(relaymap_reader_release(rd));
	}
	// Hands back the sub-buffers below seq; the rest are delivered again.
	void release_until(uint64_t seq)
	{
		if (relaymap_reader *rd = std::exchange(rd_, nullptr))
			check(relaymap_reader_release_until(rd, seq));
	}

private:
	void reset() noexcept
	{
		if (relaymap_reader *rd = std::exchange(rd_, nullptr))
			(void)relaymap_reader_release(rd);
	}
	relaymap_reader *rd_;
	relaymap_batch b_;
};

// The reader of one CPU: its exclusive consumer claim and mapping; closed
// (claim released) when destroyed. Move-only (unique handle).
class Reader {
public:
	explicit Reader(relaymap_reader *rd) : rd_(rd) {}

	uint32_t cpu() const
	{
		uint32_t c = 0;
		check(relaymap_reader_cpu(rd_.get(), &c));
		return c;
	}
	// The consumer fd, for poll/epoll (owned by the reader).
	int fd() const
	{
		int32_t fd = -1;
		check(relaymap_reader_fd(rd_.get(), &fd));
		return fd;
	}
	// true: a sub-buffer may be ready; false: timeout or signal.
	bool wait(std::chrono::milliseconds timeout) const
	{
		bool ready = false;
		check(relaymap_reader_wait(rd_.get(), timeout.count(), &ready));
		return ready;
	}
	// The next sub-buffer (acquire of one), or nothing.
	std::optional<Subbuf> next()
	{
		relaymap_subbuf sb;
		bool got = false;
		check(relaymap_reader_next(rd_.get(), &sb, &got));
		if (!got)
			return std::nullopt;
		return std::optional<Subbuf>(std::in_place, rd_.get(), sb);
	}
	// Up to limit ready sub-buffers at once.
	Batch acquire(size_t limit = SIZE_MAX)
	{
		relaymap_batch b;
		check(relaymap_reader_acquire(rd_.get(), limit, &b));
		return Batch(rd_.get(), b);
	}
	relaymap_cpu_cursor cursor() const
	{
		relaymap_cpu_cursor c;
		check(relaymap_reader_cursor(rd_.get(), &c));
		return c;
	}
	relaymap_loss loss() const
	{
		relaymap_loss l;
		check(relaymap_reader_loss(rd_.get(), &l));
		return l;
	}
	bool drained() const
	{
		bool d = false;
		check(relaymap_reader_is_drained(rd_.get(), &d));
		return d;
	}
	uint64_t control_ops() const
	{
		uint64_t n = 0;
		check(relaymap_reader_control_ops(rd_.get(), &n));
		return n;
	}
	relaymap_reader *get() const noexcept { return rd_.get(); }

private:
	struct Close {
		void operator()(relaymap_reader *r) const noexcept { relaymap_reader_close(r); }
	};
	std::unique_ptr<relaymap_reader, Close> rd_;
};

// One wait (one poll) over many readers: the indices of the ready ones
// (empty: timeout or signal).
inline std::vector<size_t> wait_any(const std::vector<Reader> &readers,
				    std::chrono::milliseconds timeout)
{
	std::vector<const relaymap_reader *> p;
	p.reserve(readers.size());
	for (const Reader &r : readers)
		p.push_back(r.get());
	std::unique_ptr<bool[]> ready(new bool[readers.size() + 1]());
	size_t n = 0;
	check(relaymap_readers_wait(p.data(), p.size(), timeout.count(), ready.get(), &n));
	std::vector<size_t> out;
	for (size_t i = 0; i < readers.size(); i++)
		if (ready[i])
			out.push_back(i);
	return out;
}

// An open channel (observer and controller: it never consumes); closed
// when destroyed. Move-only (unique handle). Thread-safe.
class Channel {
public:
	// By name, through /dev/relaymap.
	static Channel open(const std::string &name)
	{
		relaymap_channel *ch = nullptr;
		check(relaymap_channel_open(name.c_str(), &ch));
		return Channel(ch);
	}
	// A debugfs or simulated channel directory.
	static Channel open_path(const std::string &dir)
	{
		relaymap_channel *ch = nullptr;
		check(relaymap_channel_open_path(dir.c_str(), &ch));
		return Channel(ch);
	}

	relaymap_channel_info info() const
	{
		relaymap_channel_info i;
		check(relaymap_channel_get_info(ch_.get(), &i));
		return i;
	}
	std::vector<uint32_t> cpus() const
	{
		size_t n = 0;
		relaymap_result rc = relaymap_channel_cpus(ch_.get(), nullptr, 0, &n);
		if (rc != RELAYMAP_ERR_BUFFER_TOO_SMALL)
			check(rc);
		std::vector<uint32_t> v(n);
		check(relaymap_channel_cpus(ch_.get(), v.data(), v.size(), &n));
		return v;
	}
	std::vector<relaymap_cpu_cursor> cursors() const
	{
		std::vector<relaymap_cpu_cursor> v(info().n_cpus);
		size_t n = 0;
		check(relaymap_channel_cursors(ch_.get(), v.data(), v.size(), &n));
		v.resize(n);
		return v;
	}
	relaymap_channel_stats stats(int32_t cpu = RELAYMAP_ALL_CPUS) const
	{
		relaymap_channel_stats s;
		check(relaymap_channel_get_stats(ch_.get(), cpu, &s));
		return s;
	}
	void flush(int32_t cpu = RELAYMAP_ALL_CPUS) const
	{
		check(relaymap_channel_flush(ch_.get(), cpu));
	}
	void reset() const { check(relaymap_channel_reset(ch_.get())); }
	// Claims one CPU (Error with busy() if another consumer holds it).
	Reader reader(uint32_t cpu) const
	{
		relaymap_reader *rd = nullptr;
		check(relaymap_reader_open(ch_.get(), cpu, &rd));
		return Reader(rd);
	}
	// Claims every CPU at once (all or nothing), in the order of cpus().
	std::vector<Reader> readers() const
	{
		std::vector<relaymap_reader *> raw(info().n_cpus);
		size_t n = 0;
		check(relaymap_channel_open_readers(ch_.get(), raw.data(), raw.size(), &n));
		std::vector<Reader> v;
		v.reserve(n);
		for (size_t i = 0; i < n; i++)
			v.emplace_back(raw[i]);
		return v;
	}
	relaymap_channel *get() const noexcept { return ch_.get(); }

private:
	explicit Channel(relaymap_channel *ch) : ch_(ch) {}
	struct Close {
		void operator()(relaymap_channel *c) const noexcept { relaymap_channel_close(c); }
	};
	std::unique_ptr<relaymap_channel, Close> ch_;
};

#ifdef RELAYMAP_TESTING
// A simulated channel and its producer (testing API); removed when
// destroyed. Thread-safe writes.
class Sim {
public:
	Sim(uint64_t subbuf_size, uint64_t n_subbufs, uint32_t cpus, bool overwrite = false)
	{
		relaymap_sim *s = nullptr;
		check(relaymap_sim_create(nullptr, subbuf_size, n_subbufs, cpus, overwrite, &s));
		sim_.reset(s);
	}
	std::string dir() const { return relaymap_sim_dir(sim_.get()); }
	// false: the buffer was full and the record was dropped (and counted).
	bool write_loadgen(uint32_t cpu, uint64_t seq, size_t record_size) const
	{
		bool w = false;
		check(relaymap_sim_write_loadgen(sim_.get(), cpu, seq, record_size, &w));
		return w;
	}
	// false: the buffer was full and the record was refused, not counted
	// (relaymap_try_write(): lossless writers retry).
	bool try_write_loadgen(uint32_t cpu, uint64_t seq, size_t record_size) const
	{
		bool w = false;
		check(relaymap_sim_try_write_loadgen(sim_.get(), cpu, seq, record_size, &w));
		return w;
	}
	void flush(int32_t cpu = RELAYMAP_ALL_CPUS) const { check(relaymap_sim_flush(sim_.get(), cpu)); }

private:
	struct Free {
		void operator()(relaymap_sim *s) const noexcept { relaymap_sim_free(s); }
	};
	std::unique_ptr<relaymap_sim, Free> sim_;
};
#endif

} // namespace relaymap

#endif // RELAYMAP_HPP

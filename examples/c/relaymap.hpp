// SPDX-License-Identifier: MIT OR Apache-2.0
//
// relaymap.hpp - a small header-only C++17 wrapper over librelaymap's C API
// (relaymap.h): unique handles, views and batches that are handed back to
// the kernel in their destructors, errors as exceptions.
//
//   relaymap::Channel ch("/sys/kernel/debug/relaymap/demo");
//   while (ch.wait(std::chrono::milliseconds(200)) || !done) {
//       while (auto v = ch.next()) {          // one sub-buffer, any CPU
//           for (const auto &rec : v->records())
//               use(rec);
//       }                                      // ~View hands it back
//   }
//
// Lifetimes: a View or Batch borrows its Channel and must not outlive it.
// A channel has at most one outstanding view or batch: taking the next one
// hands the previous one back, and the old object becomes empty-handed
// (its destructor then does nothing harmful).
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

private:
	relaymap_result code_;
	int os_error_;
};

inline void check(relaymap_result rc)
{
	if (rc != RELAYMAP_OK)
		throw Error(rc, relaymap_last_error(), relaymap_last_os_error());
}

// The records of a view, for range-for. Corrupt framing throws Error.
class Records {
public:
	class iterator {
	public:
		iterator() = default;
		explicit iterator(const relaymap_view &v) : end_(false)
		{
			check(relaymap_record_iter_init(&it_, &v));
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

	explicit Records(const relaymap_view &v) : view_(v) {}
	iterator begin() const { return iterator(view_); }
	iterator end() const { return iterator(); }

private:
	relaymap_view view_;
};

// One sub-buffer from Channel::next(); handed back when destroyed (or by
// release()). Move-only.
class View {
public:
	View(relaymap_channel *ch, const relaymap_view &v) : ch_(ch), v_(v) {}
	View(View &&o) noexcept : ch_(std::exchange(o.ch_, nullptr)), v_(o.v_) {}
	View &operator=(View &&o) noexcept
	{
		if (this != &o) {
			reset();
			ch_ = std::exchange(o.ch_, nullptr);
			v_ = o.v_;
		}
		return *this;
	}
	View(const View &) = delete;
	View &operator=(const View &) = delete;
	~View() { reset(); }

	// Hands the sub-buffer back now, reporting errors.
	void release()
	{
		if (relaymap_channel *ch = std::exchange(ch_, nullptr))
			check(relaymap_view_release(ch, &v_));
	}

	const relaymap_view &raw() const noexcept { return v_; }
	const uint8_t *data() const noexcept { return v_.data; }
	size_t size() const noexcept { return v_.len; }
	uint32_t cpu() const noexcept { return v_.cpu; }
	uint64_t seq() const noexcept { return v_.seq; }
	Records records() const { return Records(v_); }

private:
	void reset() noexcept
	{
		// A destructor must not throw: an error here (the view was
		// already handed back by a later next()) is ignored.
		if (relaymap_channel *ch = std::exchange(ch_, nullptr))
			(void)relaymap_view_release(ch, &v_);
	}
	relaymap_channel *ch_;
	relaymap_view v_;
};

// Every ready sub-buffer of one CPU (Channel::acquire()); handed back as a
// whole when destroyed (or by release()). Move-only.
class Batch {
public:
	Batch(relaymap_channel *ch, const relaymap_batch &b) : ch_(ch), b_(b) {}
	Batch(Batch &&o) noexcept : ch_(std::exchange(o.ch_, nullptr)), b_(o.b_) {}
	Batch &operator=(Batch &&o) noexcept
	{
		if (this != &o) {
			reset();
			ch_ = std::exchange(o.ch_, nullptr);
			b_ = o.b_;
		}
		return *this;
	}
	Batch(const Batch &) = delete;
	Batch &operator=(const Batch &) = delete;
	~Batch() { reset(); }

	size_t size() const noexcept { return b_.len; }
	const relaymap_batch &raw() const noexcept { return b_; }
	// The i-th view; valid while the batch is.
	relaymap_view operator[](size_t i) const
	{
		relaymap_view v;
		check(relaymap_batch_view(ch_, i, &v));
		return v;
	}
	void release()
	{
		if (relaymap_channel *ch = std::exchange(ch_, nullptr))
			check(relaymap_batch_release(ch));
	}

private:
	void reset() noexcept
	{
		if (relaymap_channel *ch = std::exchange(ch_, nullptr))
			(void)relaymap_batch_release(ch);
	}
	relaymap_channel *ch_;
	relaymap_batch b_;
};

// An open channel; closed when destroyed. Move-only (unique handle).
class Channel {
public:
	explicit Channel(const std::string &dir, uint32_t flags = RELAYMAP_OPEN_POPULATE)
	{
		relaymap_channel *ch = nullptr;
		check(relaymap_channel_open(dir.c_str(), flags, &ch));
		ch_.reset(ch);
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
	// true: some CPU may have data; false: timeout or signal.
	bool wait(std::chrono::milliseconds timeout)
	{
		bool ready = false;
		check(relaymap_channel_wait(ch_.get(), timeout.count(), &ready));
		return ready;
	}
	// The next sub-buffer of cpu (default: any CPU, round-robin).
	std::optional<View> next(int32_t cpu = RELAYMAP_ALL_CPUS)
	{
		relaymap_view v;
		bool got = false;
		check(relaymap_channel_next(ch_.get(), cpu, &v, &got));
		if (!got)
			return std::nullopt;
		return std::optional<View>(std::in_place, ch_.get(), v);
	}
	Batch acquire(uint32_t cpu)
	{
		relaymap_batch b;
		check(relaymap_channel_acquire(ch_.get(), cpu, &b));
		return Batch(ch_.get(), b);
	}
	void flush(int32_t cpu = RELAYMAP_ALL_CPUS) { check(relaymap_channel_flush(ch_.get(), cpu)); }
	bool drained()
	{
		bool d = false;
		check(relaymap_channel_is_drained(ch_.get(), &d));
		return d;
	}
	relaymap_loss loss(int32_t cpu = RELAYMAP_ALL_CPUS) const
	{
		relaymap_loss l;
		check(relaymap_channel_loss(ch_.get(), cpu, &l));
		return l;
	}
	relaymap_channel_stats stats(int32_t cpu = RELAYMAP_ALL_CPUS) const
	{
		relaymap_channel_stats s;
		check(relaymap_channel_get_stats(ch_.get(), cpu, &s));
		return s;
	}
	relaymap_channel *get() const noexcept { return ch_.get(); }

private:
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

/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/* The per-byte work of both consumers of tests/vm/bench: one function,
 * compiled once (sum.o, -fno-tree-vectorize) and linked into both. */
#ifndef RMBENCH_SUM_H
#define RMBENCH_SUM_H
#include <stddef.h>
#include <stdint.h>

/* Sum of the bytes p[0..n). */
uint64_t bench_sum(const void *p, size_t n);

#endif

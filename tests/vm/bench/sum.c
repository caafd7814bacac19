// SPDX-License-Identifier: MIT OR Apache-2.0
/*
 * The sink of both consumers: every delivered payload byte is added up.
 * Built once with -O2 -fno-tree-vectorize -fno-tree-slp-vectorize (under
 * QEMU TCG vectorised loops are several times slower than scalar ones and
 * would measure the emulator, not the transport) and linked into both
 * rmbench_rm and rmbench_bpf.
 */
#include "sum.h"

uint64_t bench_sum(const void *p, size_t n)
{
	const unsigned char *b = p;
	uint64_t s = 0;
	size_t i;

	for (i = 0; i < n; i++)
		s += b[i];
	return s;
}

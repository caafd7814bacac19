//! The one timestamp merge of per-CPU record streams (the dumper, `verify`
//! and the C API use it).
//!
//! [`Merge`] takes one iterator per stream (per CPU), each already in
//! timestamp order, and yields `(stream index, item)` by ascending
//! [`MergeKey`]; ties go to the lower stream index, so the output is
//! deterministic. It costs O(log k) per item for k streams.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use crate::records::Record;

/// What the merge orders by (a timestamp in ns).
pub trait MergeKey {
    /// The key.
    fn merge_key(&self) -> u64;
}

impl MergeKey for Record<'_> {
    fn merge_key(&self) -> u64 {
        self.ts_ns
    }
}

impl<T: MergeKey> MergeKey for &T {
    fn merge_key(&self) -> u64 {
        (**self).merge_key()
    }
}

/// Errors sort first (key 0): a corrupt stream surfaces at once.
impl<T: MergeKey, E> MergeKey for Result<T, E> {
    fn merge_key(&self) -> u64 {
        self.as_ref().map_or(0, MergeKey::merge_key)
    }
}

impl<A, T: MergeKey> MergeKey for (A, T) {
    fn merge_key(&self) -> u64 {
        self.1.merge_key()
    }
}

/// A k-way merge by timestamp. See the [module docs](self).
#[derive(Debug)]
pub struct Merge<I: Iterator> {
    iters: Vec<I>,
    heads: Vec<Option<I::Item>>,
    heap: BinaryHeap<Reverse<(u64, usize)>>,
}

impl<I> Merge<I>
where
    I: Iterator,
    I::Item: MergeKey,
{
    /// Merges `streams` (each in ascending key order).
    pub fn new(streams: impl IntoIterator<Item = I>) -> Merge<I> {
        let mut iters: Vec<I> = streams.into_iter().collect();
        let mut heads = Vec::with_capacity(iters.len());
        let mut heap = BinaryHeap::with_capacity(iters.len());
        for (i, it) in iters.iter_mut().enumerate() {
            let h = it.next();
            if let Some(x) = &h {
                heap.push(Reverse((x.merge_key(), i)));
            }
            heads.push(h);
        }
        Merge { iters, heads, heap }
    }
}

impl<I> Iterator for Merge<I>
where
    I: Iterator,
    I::Item: MergeKey,
{
    type Item = (usize, I::Item);

    fn next(&mut self) -> Option<Self::Item> {
        let Reverse((_, i)) = self.heap.pop()?;
        let item = self.heads[i].take()?;
        if let Some(n) = self.iters[i].next() {
            self.heap.push(Reverse((n.merge_key(), i)));
            self.heads[i] = Some(n);
        }
        Some((i, item))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq)]
    struct T(u64);
    impl MergeKey for T {
        fn merge_key(&self) -> u64 {
            self.0
        }
    }

    #[test]
    fn merges_in_order_ties_to_lower_stream() {
        let a = vec![T(1), T(4), T(4), T(9)];
        let b = vec![T(2), T(4), T(10)];
        let c: Vec<T> = vec![];
        let out: Vec<(usize, u64)> = Merge::new([a.into_iter(), b.into_iter(), c.into_iter()])
            .map(|(i, t)| (i, t.0))
            .collect();
        assert_eq!(
            out,
            [(0, 1), (1, 2), (0, 4), (0, 4), (1, 4), (0, 9), (1, 10)]
        );
    }

    #[test]
    fn errors_surface_first() {
        let a: Vec<Result<T, ()>> = vec![Ok(T(5))];
        let b: Vec<Result<T, ()>> = vec![Ok(T(3)), Err(())];
        let out: Vec<_> = Merge::new([a.into_iter(), b.into_iter()]).collect();
        assert_eq!(out[0], (1, Ok(T(3))));
        assert_eq!(out[1], (1, Err(())));
        assert_eq!(out[2], (0, Ok(T(5))));
    }
}

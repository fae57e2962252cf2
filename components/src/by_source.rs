//! Source-major storage of a projection: the rows of one source neuron onto every target
//! block, one after the other.
//!
//! Delivery reads, for every spiking source, its row onto each target block, in a task per
//! block. Stored block after block (one array per block, [`SynapseBlock`]), the rows one
//! spike needs lie in as many arrays as there are blocks, each a short run (tens of synapses)
//! that starts in a cache line and a page of its own. Stored source after source, they lie
//! side by side: the line one block's row ends in is the line the next block's row starts
//! in, and a spike's rows share their pages, so the tasks of one step find in the cache and
//! the TLB much of what another task of the step fetched. The arithmetic and its order do
//! not change: each block still adds its rows in the same order.

use std::borrow::Cow;
use std::mem::MaybeUninit;

use rayon::prelude::*;

use crate::{PackedSynapse, Row, Synapse, SynapseBlock, SynapseStore};

/// Sources per piece of work when blocks are gathered source after source.
const GATHER_SOURCES: usize = 256;

/// A projection's synapses in source-major order. Row `(i, b)`, the synapses from source
/// `i` onto target block `b`, is `offsets[i * n_blocks + b]..offsets[i * n_blocks + b + 1]`
/// of one array, in the order the block holds them.
#[derive(Clone, Debug, PartialEq)]
pub struct BySource {
    n_source: usize,
    n_blocks: usize,
    offsets: Vec<u32>,
    synapses: SynapseStore,
}

impl BySource {
    /// The synapses of `blocks` (one per target block, each with `n_source` rows),
    /// source after source: packed where every block is packed, unpacked otherwise. Fails
    /// where a block has no row pointers (another rank's, in a local build) or the
    /// projection has more synapses than a `u32` offset can index.
    pub fn from_blocks(blocks: &[SynapseBlock], n_source: usize) -> Result<Self, String> {
        let n_blocks = blocks.len();
        if let Some((b, blk)) = blocks
            .iter()
            .enumerate()
            .find(|(_, blk)| blk.row_ptr.len() != n_source + 1)
        {
            return Err(format!(
                "block {b} has {} row pointers for {n_source} sources",
                blk.row_ptr.len()
            ));
        }
        let mut offsets = Vec::with_capacity(n_source * n_blocks + 1);
        offsets.push(0u32);
        let mut at = 0u64;
        for i in 0..n_source {
            for blk in blocks {
                at += u64::from(blk.row_ptr[i + 1] - blk.row_ptr[i]);
                offsets.push(u32::try_from(at).map_err(|_| {
                    format!(
                        "the projection has more than {} synapses, the most one process can hold \
                         in one projection",
                        u32::MAX
                    )
                })?);
            }
        }
        let synapses = if blocks.iter().all(SynapseBlock::is_packed) {
            SynapseStore::Packed(gather(blocks, &offsets, n_source, |row, out| {
                let Row::Packed(r) = row else {
                    unreachable!("every block is packed")
                };
                out.write_copy_of_slice(r);
            }))
        } else {
            SynapseStore::Unpacked(gather(blocks, &offsets, n_source, |row, out| {
                assert_eq!(out.len(), row.len(), "a row fills its place");
                out.iter_mut().zip(row.iter()).for_each(|(o, s)| {
                    o.write(s);
                });
            }))
        };
        Ok(Self {
            n_source,
            n_blocks,
            offsets,
            synapses,
        })
    }

    /// Number of target blocks.
    #[inline]
    pub fn n_blocks(&self) -> usize {
        self.n_blocks
    }

    /// Total number of synapses.
    pub fn len(&self) -> usize {
        *self.offsets.last().unwrap_or(&0) as usize
    }

    /// Whether the projection holds no synapse.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the synapses are packed ([`PackedSynapse`]).
    pub fn is_packed(&self) -> bool {
        matches!(self.synapses, SynapseStore::Packed(_))
    }

    /// Bytes of the synapses and the offsets.
    pub fn memory_bytes(&self) -> usize {
        self.synapses.bytes() + self.offsets.len() * 4
    }

    /// Index range of row `(i, b)` in the array.
    #[inline(always)]
    pub fn range(&self, i: usize, b: usize) -> std::ops::Range<usize> {
        let r = i * self.n_blocks + b;
        self.offsets[r] as usize..self.offsets[r + 1] as usize
    }

    /// The synapses from source `i` onto block `b`.
    #[inline(always)]
    pub fn row(&self, i: usize, b: usize) -> Row<'_> {
        self.synapses.slice(self.range(i, b))
    }

    /// Where the offset of row `(i, b)` is stored (for prefetching; any `i`, `b`).
    #[inline(always)]
    pub fn offset_ptr(&self, i: usize, b: usize) -> *const u32 {
        self.offsets.as_ptr().wrapping_add(i * self.n_blocks + b)
    }

    /// The row pointers block `b` has in the block layout: its row `i` is
    /// `row_ptr[i]..row_ptr[i + 1]` of the block's synapses.
    fn row_ptr(&self, b: usize) -> Vec<u32> {
        let mut row_ptr = Vec::with_capacity(self.n_source + 1);
        row_ptr.push(0u32);
        let mut len = 0u32;
        for i in 0..self.n_source {
            len += self.range(i, b).len() as u32;
            row_ptr.push(len);
        }
        row_ptr
    }

    /// Block `b` as a [`SynapseBlock`] of its own (a copy).
    pub fn to_block(&self, b: usize) -> SynapseBlock {
        let row_ptr = self.row_ptr(b);
        let len = *row_ptr.last().unwrap_or(&0) as usize;
        let synapses = match &self.synapses {
            SynapseStore::Packed(v) => SynapseStore::Packed(self.gather_block(b, v, len)),
            SynapseStore::Unpacked(v) => SynapseStore::Unpacked(self.gather_block(b, v, len)),
        };
        SynapseBlock::from_store(row_ptr, synapses)
    }

    fn gather_block<T: Copy>(&self, b: usize, all: &[T], len: usize) -> Vec<T> {
        let mut out = Vec::with_capacity(len);
        for i in 0..self.n_source {
            out.extend_from_slice(&all[self.range(i, b)]);
        }
        out
    }

    /// Every block as a [`SynapseBlock`] (the block layout).
    pub fn to_blocks(&self) -> Vec<SynapseBlock> {
        (0..self.n_blocks)
            .into_par_iter()
            .map(|b| self.to_block(b))
            .collect()
    }
}

/// The synapses of `blocks` in source-major order (`offsets` from
/// [`BySource::from_blocks`]), each row written by `put`, which must write every element of
/// the place it is given (as long as the row); in parallel over runs of sources, each
/// writing its own part of the array. Nothing is written twice: the array is first
/// touched by these writes, so its pages are faulted in by both threads.
fn gather<T: Copy + Send>(
    blocks: &[SynapseBlock],
    offsets: &[u32],
    n_source: usize,
    put: impl Fn(Row<'_>, &mut [MaybeUninit<T>]) + Sync,
) -> Vec<T> {
    let nb = blocks.len();
    let total = *offsets.last().unwrap_or(&0) as usize;
    // Small pages: in source-major order a spike's rows share their pages, huge pages
    // gained nothing measurable there, and faulting them in made construction slower
    // (docs/performance.md).
    let mut out: Vec<T> = Vec::with_capacity(total);
    let mut parts = Vec::with_capacity(n_source.div_ceil(GATHER_SOURCES));
    let mut rest = &mut out.spare_capacity_mut()[..total];
    for first in (0..n_source).step_by(GATHER_SOURCES) {
        let last = (first + GATHER_SOURCES).min(n_source);
        let len = (offsets[last * nb] - offsets[first * nb]) as usize;
        let (part, tail) = std::mem::take(&mut rest).split_at_mut(len);
        parts.push((first..last, part));
        rest = tail;
    }
    parts.into_par_iter().for_each(|(sources, part)| {
        let base = offsets[sources.start * nb] as usize;
        for i in sources {
            for (b, blk) in blocks.iter().enumerate() {
                let r = i * nb + b;
                let (s, e) = (offsets[r] as usize - base, offsets[r + 1] as usize - base);
                put(blk.row_synapses(i), &mut part[s..e]);
            }
        }
    });
    #[expect(
        unsafe_code,
        reason = "the array is written in parallel before it is read"
    )]
    // SAFETY: the parts tile `0..total`: the runs of sources cover `0..n_source` in order,
    // and a run's part is `offsets[first * nb]..offsets[last * nb]`, with `offsets`
    // ascending from 0 to `total`. Within a part, the places `offsets[r]..offsets[r + 1]` of
    // its rows `r` tile it in turn, and `put` writes every element of each (both callers:
    // a slice copy, which checks the lengths, and a write per synapse of a row as long as
    // its place, asserted). So all `total` elements are initialized, and `T` is `Copy`.
    unsafe {
        out.set_len(total);
    }
    out
}

/// One target block of a projection, in either layout: what readers of a block's
/// synapses (checkpoints, analysis, the GPU upload) see.
#[derive(Clone, Copy, Debug)]
pub enum BlockRef<'a> {
    /// A block stored on its own.
    Block(&'a SynapseBlock),
    /// Block `b` of a source-major projection.
    BySource(&'a BySource, usize),
}

impl<'a> BlockRef<'a> {
    /// Whether the block has rows: false for a block another rank holds (a local build
    /// leaves it without row pointers).
    pub fn has_rows(self) -> bool {
        match self {
            Self::Block(blk) => !blk.row_ptr.is_empty(),
            Self::BySource(..) => true,
        }
    }

    /// The synapses from source `i` (the block must have rows).
    #[inline]
    pub fn row_synapses(self, i: usize) -> Row<'a> {
        match self {
            Self::Block(blk) => blk.row_synapses(i),
            Self::BySource(s, b) => s.row(i, b),
        }
    }

    /// Number of synapses.
    pub fn len(self) -> usize {
        match self {
            Self::Block(blk) => blk.len(),
            Self::BySource(s, b) => (0..s.n_source).map(|i| s.range(i, b).len()).sum(),
        }
    }

    /// Whether the block holds no synapse.
    pub fn is_empty(self) -> bool {
        self.len() == 0
    }

    /// Whether the synapses are packed ([`PackedSynapse`]).
    pub fn is_packed(self) -> bool {
        match self {
            Self::Block(blk) => blk.is_packed(),
            Self::BySource(s, _) => s.is_packed(),
        }
    }

    /// The row pointers of the block layout: row `i` is `row_ptr[i]..row_ptr[i + 1]` of
    /// [`Self::iter`] (empty for a block without rows).
    pub fn row_ptr(self) -> Cow<'a, [u32]> {
        match self {
            Self::Block(blk) => Cow::Borrowed(&blk.row_ptr),
            Self::BySource(s, b) => Cow::Owned(s.row_ptr(b)),
        }
    }

    /// Number of rows: one per source, none for a block without rows.
    fn n_rows(self) -> usize {
        match self {
            Self::Block(blk) => blk.row_ptr.len().saturating_sub(1),
            Self::BySource(s, _) => s.n_source,
        }
    }

    /// Every synapse, unpacked, row after row.
    pub fn iter(self) -> impl Iterator<Item = Synapse> + 'a {
        (0..self.n_rows()).flat_map(move |i| self.row_synapses(i).iter())
    }

    /// The block-local targets, row after row.
    pub fn targets(self) -> impl Iterator<Item = u16> + 'a {
        self.iter().map(|s| s.target)
    }

    /// The delays [steps], row after row.
    pub fn delays(self) -> impl Iterator<Item = u16> + 'a {
        self.iter().map(|s| s.delay)
    }

    /// Bytes of the block's synapses.
    pub fn synapse_bytes(self) -> usize {
        let each = if self.is_packed() {
            std::mem::size_of::<PackedSynapse>()
        } else {
            std::mem::size_of::<Synapse>()
        };
        self.len() * each
    }
}

/// Blocks are equal when they hold the same rows, whatever their layouts.
impl PartialEq for BlockRef<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.row_ptr() == other.row_ptr() && self.iter().eq(other.iter())
    }
}

impl SynapseStore {
    /// The synapses with indices in `range`.
    #[inline(always)]
    pub fn slice(&self, range: std::ops::Range<usize>) -> Row<'_> {
        match self {
            Self::Packed(v) => Row::Packed(&v[range]),
            Self::Unpacked(v) => Row::Unpacked(&v[range]),
        }
    }

    /// Bytes of the synapses.
    pub fn bytes(&self) -> usize {
        match self {
            Self::Packed(v) => std::mem::size_of_val(v.as_slice()),
            Self::Unpacked(v) => std::mem::size_of_val(v.as_slice()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Blocks of `n_source` rows with irregular lengths (some empty), targets and delays
    /// that fit a packed synapse unless `long` is set (one delay of 64 steps).
    fn blocks(n_source: usize, nb: usize, long: bool) -> Vec<SynapseBlock> {
        (0..nb)
            .map(|b| {
                let mut row_ptr = vec![0u32];
                let mut syn = Vec::new();
                for i in 0..n_source {
                    for k in 0..(i * 7 + b * 3) % 5 {
                        syn.push(Synapse {
                            target: ((i * 31 + k * 17 + b) % 1024) as u16,
                            delay: 1 + ((i + k + b) % 40) as u16,
                            weight: (i as f32 - 2.5) * (k as f32 + 0.5) + b as f32,
                        });
                    }
                    row_ptr.push(syn.len() as u32);
                }
                if long && b == nb - 1 {
                    syn[0].delay = 64;
                }
                SynapseBlock::new(row_ptr, syn)
            })
            .collect()
    }

    /// Every row reads back as its block gave it, in both layouts; rows of one source
    /// lie side by side; the blocks come back whole.
    #[test]
    fn rows_read_back_as_their_blocks_hold_them() {
        for long in [false, true] {
            let n_source = 700; // more than one piece of work
            let nb = 3;
            let bl = blocks(n_source, nb, long);
            let s = BySource::from_blocks(&bl, n_source).expect("fits");
            assert_eq!(s.is_packed(), !long);
            assert_eq!(s.len(), bl.iter().map(SynapseBlock::len).sum::<usize>());
            for i in 0..n_source {
                assert_eq!(s.range(i, 0).start, s.offsets[i * nb] as usize);
                for (b, blk) in bl.iter().enumerate() {
                    assert!(
                        s.row(i, b).iter().eq(blk.row_synapses(i).iter()),
                        "row {i} {b}"
                    );
                    if b + 1 < nb {
                        assert_eq!(s.range(i, b).end, s.range(i, b + 1).start);
                    }
                    let r = BlockRef::BySource(&s, b);
                    assert!(r.row_synapses(i).iter().eq(blk.row_synapses(i).iter()));
                }
            }
            for (b, blk) in bl.iter().enumerate() {
                let r = BlockRef::BySource(&s, b);
                assert_eq!(r.len(), blk.len());
                assert_eq!(&*r.row_ptr(), blk.row_ptr.as_slice());
                assert!(r.iter().eq(blk.iter()));
                let back = s.to_block(b);
                // A packed block comes back packed; an unpacked projection unpacks all.
                assert!(back.iter().eq(blk.iter()));
                assert_eq!(back.row_ptr, blk.row_ptr);
                if !long {
                    assert_eq!(&back, blk);
                }
            }
        }
    }

    /// A block without row pointers (another rank's) cannot be stored source-major.
    #[test]
    fn refuses_blocks_without_rows() {
        let mut bl = blocks(10, 2, false);
        bl[1] = SynapseBlock::default();
        let e = BySource::from_blocks(&bl, 10).expect_err("no rows");
        assert!(
            e.contains("block 1 has 0 row pointers for 10 sources"),
            "{e}"
        );
    }
}

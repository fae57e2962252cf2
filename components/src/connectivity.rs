use bevy_ecs::prelude::*;

use crate::{BlockRef, BySource};

/// Connectivity of one projection: compressed sparse rows keyed by presynaptic neuron,
/// split into blocks of target neurons (see [`crate::DELIVERY_BLOCK`]).
///
/// Row `(i, b)` holds the synapses from source neuron `i` onto the targets of block `b`,
/// in construction order (ascending target, then draw order). Each synapse is one record
/// (a 6-byte [`PackedSynapse`] where it fits, else an 8-byte [`Synapse`]), so a row is one
/// run of memory. The rows are stored in one of two layouts ([`Self::by_source`]): block
/// after block (one [`SynapseBlock`] each, the layout built, restored, made plastic and
/// split among MPI ranks), or source after source ([`BySource`], the layout static
/// delivery reads fastest). Both give every reader the same rows. Equality compares the
/// layouts too; `a.blocks().eq(b.blocks())` compares the rows alone.
#[derive(Component, Clone, Debug, Default, PartialEq)]
pub struct Connectivity {
    store: Store,
    /// Longest delay in steps.
    pub max_delay: u16,
    /// Number of source neurons (rows per block).
    pub n_source: usize,
}

/// The two layouts of a projection's rows.
#[derive(Clone, Debug, PartialEq)]
enum Store {
    Blocks(Vec<SynapseBlock>),
    BySource(BySource),
}

impl Default for Store {
    fn default() -> Self {
        Self::Blocks(Vec::new())
    }
}

/// One synapse, unpacked: 8 bytes, aligned to 8 so that none straddles a cache line. The
/// layout of blocks whose delays or targets do not fit a [`PackedSynapse`], and the value
/// every reader of a block gets ([`SynapseBlock::iter`], [`Row::iter`]).
#[repr(C, align(8))]
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Synapse {
    /// Block-local target index.
    pub target: u16,
    /// Delay [steps], at least 1.
    pub delay: u16,
    /// Weight [pA or mV, the target model's input unit].
    pub weight: f32,
}

const _: () = assert!(std::mem::size_of::<Synapse>() == 8);

/// The longest delay [steps] a [`PackedSynapse`] holds.
pub const PACKED_MAX_DELAY: u16 = (1 << PACKED_DELAY_BITS) - 1;
/// Bits of a packed synapse's key that hold the target; the rest hold the delay.
const PACKED_TARGET_BITS: u32 = 10;
const PACKED_DELAY_BITS: u32 = 16 - PACKED_TARGET_BITS;
/// The most targets a block of [`PackedSynapse`]s may address.
pub const PACKED_MAX_TARGETS: usize = 1 << PACKED_TARGET_BITS;

/// One synapse in 6 bytes: the block-local target (10 bits) and the delay (6 bits, up to
/// [`PACKED_MAX_DELAY`] steps) in one `u16`, then the weight, unaligned.
///
/// Delivery reads every field of every synapse of a spiking row, and rows are scattered
/// over gigabytes, so the bytes of a row are most of its cost: a row of 51 synapses touches
/// about 5.8 cache lines packed, 7.3 unpacked ([`Synapse`]). A block is packed when all its
/// delays and targets fit, as in the microcircuit (delays below 6.4 ms at 0.1 ms steps,
/// blocks of 1024 neurons).
#[repr(C, packed(2))]
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct PackedSynapse {
    key: u16,
    weight: f32,
}

const _: () = assert!(std::mem::size_of::<PackedSynapse>() == 6);

impl PackedSynapse {
    /// Packs `s`, or `None` where its target or delay does not fit.
    #[inline]
    pub fn pack(s: Synapse) -> Option<Self> {
        (usize::from(s.target) < PACKED_MAX_TARGETS && s.delay <= PACKED_MAX_DELAY).then_some(
            Self {
                key: s.target | (s.delay << PACKED_TARGET_BITS),
                weight: s.weight,
            },
        )
    }
}

/// What delivery reads of a synapse, in either layout.
pub trait SynapseRecord: Copy {
    /// Block-local target index.
    fn target(self) -> usize;
    /// Delay [steps].
    fn delay(self) -> usize;
    /// Weight.
    fn weight(self) -> f32;
    /// The synapse unpacked.
    #[inline]
    fn unpack(self) -> Synapse {
        Synapse {
            target: self.target() as u16,
            delay: self.delay() as u16,
            weight: self.weight(),
        }
    }
}

impl SynapseRecord for Synapse {
    #[inline(always)]
    fn target(self) -> usize {
        usize::from(self.target)
    }
    #[inline(always)]
    fn delay(self) -> usize {
        usize::from(self.delay)
    }
    #[inline(always)]
    fn weight(self) -> f32 {
        self.weight
    }
}

impl SynapseRecord for PackedSynapse {
    #[inline(always)]
    fn target(self) -> usize {
        usize::from(self.key) & (PACKED_MAX_TARGETS - 1)
    }
    #[inline(always)]
    fn delay(self) -> usize {
        usize::from(self.key >> PACKED_TARGET_BITS)
    }
    #[inline(always)]
    fn weight(self) -> f32 {
        self.weight
    }
}

/// A vector of `len` copies of `value` whose pages Linux is asked to back with transparent
/// huge pages (2 MiB) before they are first written (`madvise(MADV_HUGEPAGE)`, which the
/// default `madvise` mode of `/sys/kernel/mm/transparent_hugepage/enabled` honours).
///
/// For arrays that are read at random over gigabytes, as synapse rows are by delivery:
/// with 4 KiB pages nearly every row starts with a TLB miss, and in a virtual machine
/// each page walk is itself several dependent reads. Elsewhere a plain `vec!`: other
/// systems, or a kernel that declines (the advice changes how memory is backed, never
/// what it holds).
pub fn huge_page_vec<T: Clone>(len: usize, value: T) -> Vec<T> {
    let mut v = Vec::with_capacity(len);
    #[cfg(target_os = "linux")]
    {
        const PAGE: usize = 4096;
        let start = v.as_ptr() as usize;
        let end = start + v.capacity() * std::mem::size_of::<T>();
        let (first, last) = (start.next_multiple_of(PAGE), end & !(PAGE - 1));
        if last > first {
            #[expect(unsafe_code, reason = "madvise is a system call")]
            // SAFETY: the range is whole pages inside `v`'s allocation, which this function
            // owns; MADV_HUGEPAGE changes how the kernel backs those pages, never their
            // contents, and nothing has been written to them yet. A failure is harmless.
            unsafe {
                libc::madvise(
                    first as *mut libc::c_void,
                    last - first,
                    libc::MADV_HUGEPAGE,
                );
            }
        }
    }
    v.resize(len, value);
    v
}

/// A block's synapses, row after row, in one of two layouts chosen when the block is
/// made ([`SynapseBlock::new`]): packed where every synapse fits, unpacked otherwise.
#[derive(Clone, Debug, PartialEq)]
pub enum SynapseStore {
    /// 6 bytes a synapse.
    Packed(Vec<PackedSynapse>),
    /// 8 bytes a synapse.
    Unpacked(Vec<Synapse>),
}

impl Default for SynapseStore {
    fn default() -> Self {
        Self::Packed(Vec::new())
    }
}

/// The synapses of one row (or any run of a block's synapses), in the block's layout.
#[derive(Clone, Copy, Debug)]
pub enum Row<'a> {
    /// Packed synapses.
    Packed(&'a [PackedSynapse]),
    /// Unpacked synapses.
    Unpacked(&'a [Synapse]),
}

impl<'a> Row<'a> {
    /// Number of synapses.
    #[inline]
    pub fn len(self) -> usize {
        match self {
            Self::Packed(r) => r.len(),
            Self::Unpacked(r) => r.len(),
        }
    }

    /// Whether the row is empty.
    #[inline]
    pub fn is_empty(self) -> bool {
        self.len() == 0
    }

    /// The row's memory: its first byte and its length in bytes (for prefetching).
    #[inline]
    pub fn bytes(self) -> (*const u8, usize) {
        match self {
            Self::Packed(r) => (r.as_ptr().cast(), std::mem::size_of_val(r)),
            Self::Unpacked(r) => (r.as_ptr().cast(), std::mem::size_of_val(r)),
        }
    }

    /// The synapses, unpacked.
    pub fn iter(self) -> impl ExactSizeIterator<Item = Synapse> + 'a {
        let (packed, unpacked) = match self {
            Self::Packed(r) => (r, &[][..]),
            Self::Unpacked(r) => (&[][..], r),
        };
        Iter { packed, unpacked }
    }
}

/// The synapses of a block or a row, unpacked, in order (one of the two slices is empty).
struct Iter<'a> {
    packed: &'a [PackedSynapse],
    unpacked: &'a [Synapse],
}

impl Iterator for Iter<'_> {
    type Item = Synapse;

    #[inline]
    fn next(&mut self) -> Option<Synapse> {
        if let Some((s, rest)) = self.packed.split_first() {
            self.packed = rest;
            return Some(s.unpack());
        }
        let (s, rest) = self.unpacked.split_first()?;
        self.unpacked = rest;
        Some(*s)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.packed.len() + self.unpacked.len();
        (n, Some(n))
    }
}

impl ExactSizeIterator for Iter<'_> {}

/// The synapses of one projection onto one block of target neurons.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SynapseBlock {
    /// Row offsets: the synapses of source `i` are `row_ptr[i]..row_ptr[i + 1]`.
    pub row_ptr: Vec<u32>,
    /// The synapses, row after row.
    synapses: SynapseStore,
}

impl SynapseBlock {
    /// A block of `synapses` in rows `row_ptr`: packed where every synapse fits a
    /// [`PackedSynapse`], unpacked otherwise.
    pub fn new(row_ptr: Vec<u32>, synapses: Vec<Synapse>) -> Self {
        // One pass: each synapse is packed once, and the packed array is dropped at the
        // first that does not fit (a delay of 64 steps or more, rare).
        let mut packed = huge_page_vec(synapses.len(), PackedSynapse::default());
        let fits = packed
            .iter_mut()
            .zip(&synapses)
            .all(|(p, &s)| PackedSynapse::pack(s).map(|x| *p = x).is_some());
        let synapses = if fits {
            SynapseStore::Packed(packed)
        } else {
            SynapseStore::Unpacked(synapses)
        };
        Self { row_ptr, synapses }
    }

    /// The synapse array, giving up the block.
    pub fn into_store(self) -> SynapseStore {
        self.synapses
    }

    /// A block of `synapses`, already in the layout they are to keep, in rows `row_ptr`.
    pub fn from_store(row_ptr: Vec<u32>, synapses: SynapseStore) -> Self {
        Self { row_ptr, synapses }
    }

    /// Number of synapses.
    pub fn len(&self) -> usize {
        self.all().len()
    }

    /// Whether the block holds no synapse.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the synapses are packed ([`PackedSynapse`]).
    pub fn is_packed(&self) -> bool {
        matches!(self.synapses, SynapseStore::Packed(_))
    }

    /// Bytes of the synapses.
    pub fn synapse_bytes(&self) -> usize {
        self.all().bytes().1
    }

    /// Every synapse, as one run.
    #[inline]
    pub fn all(&self) -> Row<'_> {
        match &self.synapses {
            SynapseStore::Packed(v) => Row::Packed(v),
            SynapseStore::Unpacked(v) => Row::Unpacked(v),
        }
    }

    /// The synapses with indices in `range`.
    #[inline]
    pub fn slice(&self, range: std::ops::Range<usize>) -> Row<'_> {
        self.synapses.slice(range)
    }

    /// Every synapse, unpacked, in order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = Synapse> + '_ {
        self.all().iter()
    }

    /// Synapse `k`, unpacked.
    #[inline]
    pub fn synapse(&self, k: usize) -> Synapse {
        match &self.synapses {
            SynapseStore::Packed(v) => v[k].unpack(),
            SynapseStore::Unpacked(v) => v[k],
        }
    }

    /// Sets the weight of synapse `k` (plasticity).
    #[inline]
    pub fn set_weight(&mut self, k: usize, w: f32) {
        match &mut self.synapses {
            SynapseStore::Packed(v) => v[k].weight = w,
            SynapseStore::Unpacked(v) => v[k].weight = w,
        }
    }

    /// The block-local targets, in synapse order.
    pub fn targets(&self) -> impl ExactSizeIterator<Item = u16> + '_ {
        self.iter().map(|s| s.target)
    }

    /// The weights, in synapse order.
    pub fn weights(&self) -> impl ExactSizeIterator<Item = f32> + '_ {
        self.iter().map(|s| s.weight)
    }

    /// The delays [steps], in synapse order.
    pub fn delays(&self) -> impl ExactSizeIterator<Item = u16> + '_ {
        self.iter().map(|s| s.delay)
    }

    /// The synapses of source `i`.
    #[inline]
    pub fn row_synapses(&self, i: usize) -> Row<'_> {
        self.slice(self.row(i))
    }

    /// Index range of row `i`.
    #[inline]
    pub fn row(&self, i: usize) -> std::ops::Range<usize> {
        self.row_ptr[i] as usize..self.row_ptr[i + 1] as usize
    }
}

impl Connectivity {
    /// A projection of `n_source` sources stored block after block, with its longest
    /// delay [steps].
    pub fn new(blocks: Vec<SynapseBlock>, n_source: usize, max_delay: u16) -> Self {
        Self {
            store: Store::Blocks(blocks),
            max_delay,
            n_source,
        }
    }

    /// Stores the rows source after source ([`BySource`]), where every block has rows
    /// (none is another rank's) and a `u32` offset can index every synapse. Returns the
    /// blocks it replaced (none where the rows were already stored so), or why it kept the
    /// block layout. Nothing a reader sees changes.
    pub fn store_by_source(&mut self) -> Result<Vec<SynapseBlock>, String> {
        let Store::Blocks(blocks) = &self.store else {
            return Ok(Vec::new());
        };
        let s = BySource::from_blocks(blocks, self.n_source)?;
        match std::mem::replace(&mut self.store, Store::BySource(s)) {
            Store::Blocks(old) => Ok(old),
            Store::BySource(_) => unreachable!("matched above"),
        }
    }

    /// The source-major rows, where the projection is stored that way.
    #[inline]
    pub fn by_source(&self) -> Option<&BySource> {
        match &self.store {
            Store::BySource(s) => Some(s),
            Store::Blocks(_) => None,
        }
    }

    /// Number of target blocks.
    pub fn n_blocks(&self) -> usize {
        match &self.store {
            Store::Blocks(b) => b.len(),
            Store::BySource(s) => s.n_blocks(),
        }
    }

    /// Target block `b`, in either layout.
    #[inline]
    pub fn block(&self, b: usize) -> BlockRef<'_> {
        match &self.store {
            Store::Blocks(v) => BlockRef::Block(&v[b]),
            Store::BySource(s) => BlockRef::BySource(s, b),
        }
    }

    /// Every target block, in order.
    pub fn blocks(&self) -> impl ExactSizeIterator<Item = BlockRef<'_>> + '_ {
        (0..self.n_blocks()).map(|b| self.block(b))
    }

    /// The synapses from source `i` onto block `b` (which must have rows).
    #[inline(always)]
    pub fn row(&self, i: usize, b: usize) -> Row<'_> {
        match &self.store {
            Store::Blocks(v) => v[b].row_synapses(i),
            Store::BySource(s) => s.row(i, b),
        }
    }

    /// Where the start of row `(i, b)` is stored (for prefetching: the address is
    /// computed, never read).
    #[inline(always)]
    pub fn row_start_ptr(&self, i: usize, b: usize) -> *const u32 {
        match &self.store {
            Store::Blocks(v) => v[b].row_ptr.as_ptr().wrapping_add(i),
            Store::BySource(s) => s.offset_ptr(i, b),
        }
    }

    /// The blocks, to change them (plasticity's weights, a rank's row pointers); a
    /// projection stored source after source goes back to the block layout first.
    pub fn blocks_mut(&mut self) -> &mut Vec<SynapseBlock> {
        if let Store::BySource(s) = &self.store {
            self.store = Store::Blocks(s.to_blocks());
        }
        match &mut self.store {
            Store::Blocks(v) => v,
            Store::BySource(_) => unreachable!("just made blocks"),
        }
    }

    /// Total number of synapses.
    pub fn len(&self) -> usize {
        match &self.store {
            Store::Blocks(b) => b.iter().map(SynapseBlock::len).sum(),
            Store::BySource(s) => s.len(),
        }
    }

    /// Whether the projection holds no synapse.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes held by the synapse arrays and row pointers.
    pub fn memory_bytes(&self) -> usize {
        match &self.store {
            Store::Blocks(v) => v
                .iter()
                .map(|b| b.row_ptr.len() * 4 + b.synapse_bytes())
                .sum(),
            Store::BySource(s) => s.memory_bytes(),
        }
    }

    /// Every synapse as `(source, population-local target, weight, delay)`, in block and
    /// row order. Blocks without row pointers (another rank's, in a local build) hold none.
    /// For tests and analysis; not for the hot path.
    pub fn synapses(&self, block_size: usize) -> Vec<(u32, u32, f32, u16)> {
        let mut out = Vec::with_capacity(self.len());
        for (b, blk) in self.blocks().enumerate() {
            if !blk.has_rows() {
                continue;
            }
            for i in 0..self.n_source {
                for s in blk.row_synapses(i).iter() {
                    out.push((
                        i as u32,
                        (b * block_size) as u32 + u32::from(s.target),
                        s.weight,
                        s.delay,
                    ));
                }
            }
        }
        out
    }

    /// Number of incoming synapses of each target neuron.
    pub fn in_degrees(&self, n_target: usize, block_size: usize) -> Vec<u32> {
        let mut deg = vec![0u32; n_target];
        for (b, blk) in self.blocks().enumerate() {
            for t in blk.targets() {
                deg[b * block_size + usize::from(t)] += 1;
            }
        }
        deg
    }

    /// Number of outgoing synapses of each source neuron.
    pub fn out_degrees(&self) -> Vec<u32> {
        let mut deg = vec![0u32; self.n_source];
        for blk in self.blocks().filter(|b| b.has_rows()) {
            for (i, d) in deg.iter_mut().enumerate() {
                *d += blk.row_synapses(i).len() as u32;
            }
        }
        deg
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `huge_page_vec` holds `len` copies of the value, and on Linux with transparent huge
    /// pages its pages are advised for them: `/proc/self/smaps` lists the mapping that
    /// holds the array with the `hg` flag (`VM_HUGEPAGE`). Whether the kernel then backs
    /// them with huge pages depends on the machine's free memory, so that is not asserted.
    #[test]
    fn huge_page_vec_holds_its_values_and_advises_its_pages() {
        let len = 3 << 20; // 18 MiB of 6-byte records: whole 2 MiB pages inside
        let value = PackedSynapse::pack(Synapse {
            target: 5,
            delay: 9,
            weight: -1.25,
        })
        .expect("fits");
        let v = huge_page_vec(len, value);
        assert_eq!(v.len(), len);
        assert!(v.iter().all(|&x| x == value));
        if !cfg!(target_os = "linux")
            || !std::path::Path::new("/sys/kernel/mm/transparent_hugepage").exists()
        {
            return;
        }
        let addr = v.as_ptr() as usize + len * 3; // the middle of the array
        let smaps = std::fs::read_to_string("/proc/self/smaps").expect("smaps");
        let mut inside = false;
        let mut flags = None;
        for line in smaps.lines() {
            if let Some((range, _)) = line.split_once(' ')
                && let Some((lo, hi)) = range.split_once('-')
                && let (Ok(lo), Ok(hi)) =
                    (usize::from_str_radix(lo, 16), usize::from_str_radix(hi, 16))
            {
                inside = (lo..hi).contains(&addr);
            } else if inside && let Some(f) = line.strip_prefix("VmFlags:") {
                flags = Some(f.split_whitespace().map(str::to_owned).collect::<Vec<_>>());
            }
        }
        let flags = flags.expect("the array's mapping in /proc/self/smaps");
        assert!(flags.iter().any(|f| f == "hg"), "VmFlags {flags:?}");
    }

    fn synapses(n: usize, max_target: u16, max_delay: u16) -> Vec<Synapse> {
        (0..n)
            .map(|k| Synapse {
                target: (k as u16 * 7) % (max_target + 1),
                delay: 1 + (k as u16 * 5) % max_delay,
                weight: k as f32 * -0.75 + 3.0,
            })
            .collect()
    }

    /// Blocks whose every target and delay fit are packed, and read back as they were
    /// given; one synapse that does not fit (delay 64, or target 1024) keeps the block
    /// unpacked. Reads and weight writes agree in both layouts.
    #[test]
    fn packs_what_fits_and_keeps_the_rest_unpacked() {
        let fit = synapses(300, 1023, PACKED_MAX_DELAY);
        assert!(
            fit.iter()
                .any(|s| s.delay == PACKED_MAX_DELAY && s.target > 0)
        );
        let row_ptr = vec![0, 100, 100, 300];
        let mut long_delay = fit.clone();
        long_delay[150].delay = PACKED_MAX_DELAY + 1;
        let mut wide_target = fit.clone();
        wide_target[299].target = PACKED_MAX_TARGETS as u16;
        for (syn, packed) in [(fit, true), (long_delay, false), (wide_target, false)] {
            let mut blk = SynapseBlock::new(row_ptr.clone(), syn.clone());
            assert_eq!(blk.is_packed(), packed);
            assert_eq!(blk.iter().collect::<Vec<_>>(), syn);
            assert_eq!(blk.synapse_bytes(), syn.len() * if packed { 6 } else { 8 });
            assert_eq!(blk.row_synapses(1).len(), 0);
            assert_eq!(blk.row_synapses(2).iter().collect::<Vec<_>>(), syn[100..]);
            for k in [0, 150, 299] {
                assert_eq!(blk.synapse(k), syn[k]);
                blk.set_weight(k, -1.5);
                assert_eq!(blk.synapse(k).weight, -1.5);
                assert_eq!(blk.synapse(k).delay, syn[k].delay);
                assert_eq!(blk.synapse(k).target, syn[k].target);
            }
        }
    }
}

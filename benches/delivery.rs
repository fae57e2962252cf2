//! The delivery kernel against its floor, per synaptic event, on blocks shaped like the
//! full microcircuit's: 1024 targets per block, rows of 51 synapses (3,873 synapses per
//! source over 76 blocks), delays of up to 61 steps (a 0.5 MiB ring per block), 25 spiking
//! sources per block and step, and 38 blocks per thread, as one of two threads sees them.
//!
//! - `kernel`: `myelin::systems::delivery::deliver_block`, the engine's kernel, and the
//!   read of the step's slot that sums the pending events in;
//! - `floor/scatter_l1`: the same number of random scatter-adds into a 16 KiB array
//!   (two channels of 1024 floats, L1-resident): the cost of an add with no cache miss;
//! - `floor/stream_rows`: reading the same rows (6 bytes a synapse, packed) and summing the
//!   weights: the cost of streaming the synapses.
//!
//! All run in one process, so their ratios hold on a loaded machine; criterion reports the
//! time for all blocks of one step (divide by the events, printed once, for ns per event).
//!
//! ```text
//! cargo bench --bench delivery
//! ```

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use myelin::engine::rng::{Purpose, Stream};
use myelin_components::{
    Connectivity, Row, Synapse, SynapseBlock, SynapseRecord, SynapticInput, channel_of,
};

const BLOCK: usize = 1024;
const BLOCKS: usize = 38;
const SOURCES: usize = 4096;
const ROW: usize = 51;
const MAX_DELAY: usize = 60;
const SPIKES: usize = 25;

struct Setup {
    conns: Vec<Connectivity>,
    rings: Vec<SynapticInput>,
    spikes: Vec<u32>,
}

fn setup() -> Setup {
    let mut s = Stream::new(1, Purpose::Connect, 0, 0, 0);
    let conns = (0..BLOCKS)
        .map(|_| {
            let (mut row_ptr, mut synapses) = (vec![0u32], Vec::new());
            for _ in 0..SOURCES {
                for _ in 0..ROW {
                    let target = s.below(BLOCK as u32) as u16;
                    let w = 87.8 + 8.8 * s.normal() as f32;
                    let weight = if s.below(5) == 0 { -4.0 * w } else { w };
                    let delay = 1 + s.below(MAX_DELAY as u32) as u16;
                    synapses.push(Synapse {
                        target,
                        delay,
                        weight,
                    });
                }
                row_ptr.push(synapses.len() as u32);
            }
            // Packed, as the engine stores blocks whose delays and targets fit.
            let b = SynapseBlock::new(row_ptr, synapses);
            assert!(b.is_packed());
            // Stored as the engine stores static projections (one block: the same rows).
            let mut c = Connectivity::new(vec![b], SOURCES, MAX_DELAY as u16);
            c.store_by_source().expect("fits");
            c
        })
        .collect();
    let rings = (0..BLOCKS)
        .map(|_| SynapticInput::new(BLOCK, BLOCK, MAX_DELAY))
        .collect();
    let mut spikes: Vec<u32> = (0..SPIKES).map(|_| s.below(SOURCES as u32)).collect();
    spikes.sort_unstable();
    spikes.dedup();
    Setup {
        conns,
        rings,
        spikes,
    }
}

fn delivery(c: &mut Criterion) {
    let mut st = setup();
    let events = (st.spikes.len() * ROW * BLOCKS) as u64;
    println!(
        "delivery: {events} events per iteration ({} spikes x {ROW} synapses x {BLOCKS} blocks)",
        st.spikes.len()
    );
    let mut g = c.benchmark_group("delivery");
    g.throughput(Throughput::Elements(events))
        .measurement_time(Duration::from_secs(5));
    let mut step = 0u64;
    g.bench_function("kernel", |b| {
        b.iter(|| {
            step += 1;
            for (ring, conn) in st.rings.iter_mut().zip(&st.conns) {
                let list = [(conn, st.spikes.as_slice())];
                for mut rb in ring.blocks_mut() {
                    myelin::systems::delivery::deliver_block(&mut rb, &list, black_box(step));
                    // The neurons' read of this step's slot, as in the engine: its pending
                    // events are summed in, then it is cleared.
                    let (ex, inh) = rb.slot_mut(step);
                    black_box(&ex[0]);
                    ex.fill(0.0);
                    inh.fill(0.0);
                }
            }
        })
    });
    // The targets and weights the kernel adds, replayed into an L1-resident array.
    let idx: Vec<(u16, f32)> = st
        .conns
        .iter()
        .flat_map(|c| {
            st.spikes
                .iter()
                .flat_map(move |&i| c.row(i as usize, 0).iter().map(|s| (s.target, s.weight)))
        })
        .collect();
    let mut l1 = vec![0.0f32; 2 * BLOCK];
    g.bench_function("floor/scatter_l1", |b| {
        b.iter(|| {
            for &(t, w) in &idx {
                l1[usize::from(t) + BLOCK * channel_of(w)] += w;
            }
            black_box(&l1);
        })
    });
    g.bench_function("floor/stream_rows", |b| {
        b.iter(|| {
            let mut sum = 0.0f32;
            let mut dsum = 0u32;
            let mut tsum = 0u32;
            for c in &st.conns {
                for &i in &st.spikes {
                    let Row::Packed(row) = c.row(i as usize, 0) else {
                        unreachable!("the blocks are packed")
                    };
                    for &s in row {
                        sum += s.weight();
                        dsum += s.delay() as u32;
                        tsum += s.target() as u32;
                    }
                }
            }
            black_box((sum, dsum, tsum))
        })
    });
    g.finish();
}

criterion_group!(benches, delivery);
criterion_main!(benches);

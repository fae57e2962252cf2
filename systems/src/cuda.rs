//! The CUDA kernel sources of every model family, each beside its CPU kernel, compiled at
//! run time with NVRTC through the engine's backend seam ([`myelin_engine::cuda`]).

use myelin_engine::{BackendError, KernelSource, NetworkSpec, NeuronModel, Simulation};

use crate::neurons::{IafPscAlpha, IafPscDelta, IafPscExp};

/// What in `spec` the CUDA backend does not run yet (plasticity, spike generators, state
/// and weight recorders), or `None`.
pub fn unsupported(spec: &NetworkSpec) -> Option<String> {
    if let Some((j, rule)) = spec.projections.iter().find_map(|j| {
        let rule = &j.plasticity.as_ref()?.model;
        (!crate::plasticity::DEVICE_RULES.contains(&rule.as_str())).then_some((j, rule))
    }) {
        return Some(format!(
            "projection {} learns with {rule}, which has no device kernel (the device runs {})",
            j.display_name(),
            crate::plasticity::DEVICE_RULES.join(", ")
        ));
    }
    if let Some(i) = spec
        .inputs
        .iter()
        .find(|i| i.model != "poisson_generator" && i.model != "dc_generator")
    {
        return Some(format!(
            "input {} onto {} has no device kernel (poisson_generator and dc_generator have)",
            i.model, i.target
        ));
    }
    None
}

/// Puts `sim`'s kernels on the GPU: adds the CUDA step (feature `cuda`), which replaces the
/// CPU's input, neuron-update and delivery systems. Call [`upload`] once the network is
/// built.
pub fn attach(sim: &mut Simulation) -> Result<(), BackendError> {
    #[cfg(feature = "cuda")]
    {
        sim.add_plugins(crate::cuda_step::CudaStepPlugin);
        Ok(())
    }
    #[cfg(not(feature = "cuda"))]
    {
        let _ = sim;
        Err(BackendError::NotCompiledWithCuda)
    }
}

/// Copies the network built in `sim` to device 0 (after [`attach`]); returns the bytes
/// uploaded.
pub fn upload(sim: &mut Simulation) -> Result<usize, BackendError> {
    #[cfg(feature = "cuda")]
    {
        crate::cuda_step::upload(sim.world_mut())
    }
    #[cfg(not(feature = "cuda"))]
    {
        let _ = sim;
        Err(BackendError::NotCompiledWithCuda)
    }
}

/// Every kernel source of the built-in models, inputs, delivery and recording.
pub fn sources() -> Vec<KernelSource> {
    [
        IafPscExp::CUDA_KERNEL,
        IafPscAlpha::CUDA_KERNEL,
        IafPscDelta::CUDA_KERNEL,
        Some(crate::inputs::CUDA_KERNEL),
        Some(crate::delivery::CUDA_KERNEL),
        Some(crate::recording::CUDA_KERNEL),
        Some(crate::plasticity::stdp::CUDA_KERNEL),
    ]
    .into_iter()
    .flatten()
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cuda_tables::{
        DeliveryProjection, FlatCsr, FlatPlastic, NeuronPopulation, PlasticProjection,
        PoissonSource, bitmap_words,
    };
    use crate::neurons::testing::OneNeuron;
    use myelin_components::{Connectivity, Synapse, SynapseBlock};
    use myelin_engine::rng::{self, Purpose, Stream};
    use std::path::PathBuf;
    use std::process::{Command, Stdio};
    use std::sync::OnceLock;

    /// The kernels of the neuron models, the Poisson input and the spike compaction compiled
    /// as host C++ with
    /// `cuda_host_shim.h` and `cuda_host_harness.cpp` (g++; no GPU), built once per test run.
    fn harness() -> &'static PathBuf {
        static H: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
        &H.get_or_init(|| {
            let dir = tempfile::tempdir().expect("temporary folder");
            let mut program = String::from(include_str!("cuda_host_shim.h"));
            program.push_str(myelin_engine::DEVICE_PRELUDE);
            for s in [
                IafPscExp::CUDA_KERNEL.unwrap(),
                IafPscAlpha::CUDA_KERNEL.unwrap(),
                IafPscDelta::CUDA_KERNEL.unwrap(),
                crate::inputs::CUDA_KERNEL,
                crate::recording::CUDA_KERNEL,
                crate::delivery::CUDA_KERNEL,
                crate::plasticity::stdp::CUDA_KERNEL,
            ] {
                program.push_str(&format!("\n#line 1 \"{}\"\n{}", s.file, s.source));
            }
            program.push_str("\n#line 1 \"systems/src/cuda_host_harness.cpp\"\n");
            program.push_str(include_str!("cuda_host_harness.cpp"));
            let src = dir.path().join("kernels.cpp");
            std::fs::write(&src, program).expect("write the program");
            let exe = dir.path().join("kernels");
            // No contraction of multiply-adds and IEEE arithmetic: the operations the Rust
            // kernels perform, in their order.
            let o = Command::new("g++")
                .args(["-std=c++20", "-O1", "-ffp-contract=off", "-pthread", "-o"])
                .arg(&exe)
                .arg(&src)
                .output()
                .expect("g++ runs (the kernels are checked on the host with it)");
            assert!(
                o.status.success(),
                "the kernels do not compile as host C++:\n{}",
                String::from_utf8_lossy(&o.stderr)
            );
            (dir, exe)
        })
        .1
    }

    fn run_harness(args: &[String], stdin: &str) -> String {
        use std::io::Write;
        let mut child = Command::new(harness())
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("the harness starts");
        // Written from a thread: the harness answers line by line, so both pipes fill.
        let mut pipe = child.stdin.take().unwrap();
        let input = stdin.to_string();
        let writer = std::thread::spawn(move || pipe.write_all(input.as_bytes()));
        let o = child.wait_with_output().unwrap();
        writer.join().unwrap().expect("the harness reads its input");
        assert!(
            o.status.success(),
            "harness {args:?} failed: {:?}",
            o.status
        );
        String::from_utf8(o.stdout).unwrap()
    }

    /// The Poisson kernel draws exactly the counts of the CPU for the same seed, input,
    /// neuron and step: the grouped draws below a mean of 30 (integers only, so a GPU draws
    /// them too), and PTRS above (floating point: equal here, on the host's libm).
    #[test]
    fn poisson_kernel_draws_the_cpus_counts() {
        let n = 1500u32;
        for (seed, element, step, lambda) in [
            (12345u64, 3u32, 0u64, 0.8f64),
            (0xDEAD_BEEF_0000_0001, 17, 123_456_789_012, 4.5),
            (7, 0, 42, 29.9),
            (7, 5, 43, 45.0),
            (99, 2, 1 << 33, 250.0),
        ] {
            let th = rng::poisson_thresholds(lambda);
            let mut args: Vec<String> = vec![
                "poisson".into(),
                seed.to_string(),
                step.to_string(),
                n.to_string(),
            ];
            args.extend(th.iter().map(|t| t.to_string()));
            // Tags for the harness: thresholds 1, ring 2, all neurons.
            let source = |start: u64, stop: u64| PoissonSource {
                thresholds: 1,
                ring: 2,
                neurons: 0,
                lambda,
                start,
                stop,
                n_thresholds: th.len() as u32,
                element,
                delay: 1,
                slots: 2,
                n,
                weight: 1.0,
                first_block: 0,
            };
            let counts = |row: PoissonSource| -> Vec<u32> {
                run_harness(&args, &words_text(&row.words()))
                    .lines()
                    .map(|l| l.parse().unwrap())
                    .collect()
            };
            let got = counts(source(step, step + 1));
            assert!(
                counts(source(step + 1, u64::MAX)).iter().all(|&k| k == 0)
                    && counts(source(0, step)).iter().all(|&k| k == 0),
                "an input outside its steps [start, stop) adds nothing"
            );
            let want: Vec<u32> = (0..n)
                .map(|i| {
                    if th.is_empty() {
                        let mut s = Stream::new(seed, Purpose::Poisson, element, i, step);
                        rng::poisson(&mut s, lambda, (-lambda).exp())
                    } else {
                        rng::poisson_count_grouped(seed, Purpose::Poisson, element, i, step, &th)
                    }
                })
                .collect();
            assert_eq!(
                got, want,
                "seed {seed}, input {element}, step {step}, mean {lambda}"
            );
            let mean = want.iter().sum::<u32>() as f64 / f64::from(n);
            assert!(
                (mean - lambda).abs() < 5.0 * (lambda / f64::from(n)).sqrt(),
                "the counts are Poisson of mean {lambda}: {mean}"
            );
        }
    }

    /// A table row as the harness reads it: hexadecimal words.
    fn words_text(words: &[u64]) -> String {
        words.iter().map(|w| format!("{w:x}\n")).collect()
    }

    /// `x` as C's `%a` writes it (exact; `scanf("%a")` reads it back).
    fn c_hex(x: f32) -> String {
        let b = x.to_bits();
        let sign = if b >> 31 == 1 { "-" } else { "" };
        let exp = ((b >> 23) & 0xff) as i32;
        let frac = (b & 0x7f_ffff) << 1;
        match exp {
            0 => format!("{sign}0x0.{frac:06x}p-126"),
            _ => format!("{sign}0x1.{frac:06x}p{}", exp - 127),
        }
    }

    fn parse_c_hex(s: &str) -> f32 {
        let (neg, s) = s.strip_prefix('-').map_or((false, s), |r| (true, r));
        let s = s.strip_prefix("0x").expect("hex float");
        let (m, e) = s.split_once('p').expect("exponent");
        let (int, frac) = m.split_once('.').unwrap_or((m, ""));
        let mut v = u64::from_str_radix(&format!("{int}{frac}"), 16).unwrap() as f64;
        v *= 2f64.powi(e.parse::<i32>().unwrap() - 4 * frac.len() as i32);
        (if neg { -v } else { v }) as f32
    }

    /// Runs `steps` steps of model `M` with `params` on the CPU kernel and on the host-compiled
    /// CUDA kernel with the same inputs (excitatory and inhibitory weights and a current drawn
    /// from a fixed stream) and asserts that every state variable and every spike agree bit
    /// for bit. Returns the number of spikes.
    fn same_trajectory<M: NeuronModel>(params: &[(&str, f64)], steps: usize, scale: f32) -> usize {
        let mut cpu = OneNeuron::<M>::new(params, 0.1);
        let (nreal, nint) = (M::REAL_STATE.len(), M::INT_STATE.len());
        let c = cpu.model.device_constants();
        // Tags for the harness: c 1, real 2, integer 3, ring 4, current 5, words 6.
        let pop = NeuronPopulation {
            c: 1,
            real: 2,
            integer: 3,
            ring: 4,
            current: 5,
            words: 6,
            n: 1,
            slots: 2,
            first_block: 0,
        };
        let mut input = words_text(&pop.words());
        input += &format!("{nreal} {nint} {}\n", c.len());
        for v in 0..nreal {
            input += &format!("{} ", c_hex(cpu.state.real[v][0]));
        }
        for v in 0..nint {
            input += &format!("{} ", cpu.state.int[v][0]);
        }
        for &k in &c {
            input += &format!("{} ", c_hex(k));
        }
        input += "\n";
        let mut s = Stream::new(1, Purpose::Init, 0, 0, 0);
        let mut want = Vec::new();
        for _ in 0..steps {
            let ex = scale * (s.uniform() as f32) * 3.0;
            let inh = -scale * (s.uniform() as f32) * 2.0;
            let cur = (s.uniform() as f32) * 1000.0;
            input += &format!("{} {} {}\n", c_hex(ex), c_hex(inh), c_hex(cur));
            let spiked = cpu.step(ex, inh, cur);
            let mut row: Vec<u32> = (0..nreal).map(|v| cpu.state.real[v][0].to_bits()).collect();
            row.extend((0..nint).map(|v| cpu.state.int[v][0]));
            row.push(u32::from(spiked));
            want.push(row);
        }
        let out = run_harness(
            &["neuron".into(), M::NAME.into(), steps.to_string()],
            &input,
        );
        let got: Vec<Vec<u32>> = out
            .lines()
            .map(|l| {
                let w: Vec<&str> = l.split_whitespace().collect();
                let mut row: Vec<u32> = w[..nreal]
                    .iter()
                    .map(|x| parse_c_hex(x).to_bits())
                    .collect();
                row.extend(w[nreal..].iter().map(|x| x.parse::<u32>().unwrap()));
                row
            })
            .collect();
        assert_eq!(got.len(), steps, "{}: one line per step", M::NAME);
        for (t, (g, w)) in got.iter().zip(&want).enumerate() {
            assert_eq!(
                g,
                w,
                "{}: step {t} differs (state bits, then spike)",
                M::NAME
            );
        }
        want.iter().filter(|r| r[r.len() - 1] == 1).count()
    }

    /// The device kernels of the three neuron models follow their CPU kernels bit for bit
    /// (compiled on the host without contraction; on a GPU, NVRTC with `--fmad=false` keeps
    /// the same operations), through spikes and refractory periods.
    #[test]
    fn neuron_kernels_follow_the_cpu_bit_for_bit() {
        let p = [
            ("C_m", 250.0),
            ("tau_m", 10.0),
            ("tau_syn_ex", 0.5),
            ("tau_syn_in", 0.8),
            ("t_ref", 2.0),
            ("E_L", -65.0),
            ("V_th", -50.0),
            ("V_reset", -65.0),
        ];
        assert!(same_trajectory::<IafPscExp>(&p, 3000, 40.0) > 5);
        assert!(same_trajectory::<IafPscAlpha>(&p, 3000, 15.0) > 5);
        let d = [
            ("tau_m", 20.0),
            ("t_ref", 2.0),
            ("V_th", 20.0),
            ("V_reset", 10.0),
            ("E_L", 0.0),
            ("C_m", 250.0),
        ];
        assert!(same_trajectory::<IafPscDelta>(&d, 3000, 0.4) > 5);
    }

    /// `compact_spikes` turns the bitmap of several populations (each from a word of its
    /// own, as `cuda_step::upload` lays them out) into the ascending list of their spikes and
    /// each population's offset into it: sizes around a word's 32 bits, an empty
    /// population, and one large enough that each of the 1,024 threads scans several words.
    #[test]
    fn compaction_lists_every_populations_spikes_in_order() {
        for (sizes, p_spike) in [
            (vec![1u32, 31, 32, 33, 0, 1000, 5], 0.3),
            (vec![100_000, 7, 40_000], 0.01),
            (vec![64, 64], 0.0),
        ] {
            let mut s = Stream::new(9, Purpose::Init, sizes.len() as u32, 0, 0);
            let pop_word = bitmap_words(&sizes);
            let mut words = vec![0u32; *pop_word.last().unwrap() as usize];
            let (mut first, mut list) = (vec![0u32], Vec::new());
            for (p, &n) in sizes.iter().enumerate() {
                for i in 0..n {
                    if s.uniform() < p_spike {
                        let bit = pop_word[p] * 32 + i;
                        words[(bit / 32) as usize] |= 1 << (bit % 32);
                        list.push(bit);
                    }
                }
                first.push(list.len() as u32);
            }
            let mut input = format!("{}\n", sizes.len());
            for w in &pop_word {
                input += &format!("{w} ");
            }
            input += "\n";
            for w in &words {
                input += &format!("{w:x} ");
            }
            let got: Vec<u32> = run_harness(&["compact".into()], &input)
                .lines()
                .map(|l| l.parse().unwrap())
                .collect();
            let mut want = first;
            want.extend(&list);
            assert_eq!(got, want, "populations of {sizes:?} neurons");
        }
    }

    /// `deliver_static` adds every synapse of the step's spiking rows, of two projections at
    /// once (one stored block after block, one source after source, both read through
    /// `FlatCsr` and the table words of `DeliveryProjection`), into the ring slot `delay`
    /// steps ahead of the right neuron and channel. The expected ring is summed here in
    /// f64 from the connectivity; the device adds in another order, so each slot may differ
    /// by the rounding of its additions: at most 1e-5 of the sum of the magnitudes added.
    #[test]
    fn delivery_adds_every_row_into_the_right_slot() {
        const BLOCK: usize = 1024;
        let (n_target, slots, step) = (2500usize, 6usize, 17u64);
        let n_blocks = n_target.div_ceil(BLOCK);
        let sources = [50u32, 40];
        let pop_word = bitmap_words(&[sources[0], sources[1], n_target as u32]);
        let mut s = Stream::new(3, Purpose::Init, 0, 0, 0);
        let mut projections = Vec::new();
        for (k, &n_source) in sources.iter().enumerate() {
            let mut blocks = Vec::new();
            for b in 0..n_blocks {
                let width = (n_target - b * BLOCK).min(BLOCK);
                let (mut row_ptr, mut syn) = (vec![0u32], Vec::new());
                for _ in 0..n_source {
                    for _ in 0..(s.uniform() * 20.0) as usize {
                        syn.push(Synapse {
                            target: (s.uniform() * width as f64) as u16,
                            delay: 1 + (s.uniform() * 5.0) as u16,
                            weight: (s.uniform() * 4.0 - 1.5) as f32,
                        });
                    }
                    row_ptr.push(syn.len() as u32);
                }
                blocks.push(SynapseBlock::new(row_ptr, syn));
            }
            let mut c = Connectivity::new(blocks, n_source as usize, 5);
            if k == 1 {
                c.store_by_source()
                    .expect("a static projection's rows by source");
                assert!(c.by_source().is_some());
            }
            projections.push(c);
        }
        // The spikes, as compact_spikes lists them: population 2 (the target) is silent.
        let mut spiking: Vec<Vec<u32>> = Vec::new();
        let mut buffer = vec![0u32];
        let mut list = Vec::new();
        for (p, &n) in sources.iter().enumerate() {
            let mine: Vec<u32> = (0..n).filter(|_| s.uniform() < 0.3).collect();
            list.extend(mine.iter().map(|i| pop_word[p] * 32 + i));
            buffer.push(list.len() as u32);
            spiking.push(mine);
        }
        buffer.push(list.len() as u32);
        buffer.extend(&list);
        let ring_len = n_blocks * slots * 2 * BLOCK;
        let mut input = format!("3 {}\n", buffer.len());
        for v in &buffer {
            input += &format!("{v} ");
        }
        input += &format!("\n{ring_len} {}\n", projections.len());
        let (mut want, mut scale) = (vec![0f64; ring_len], vec![0f64; ring_len]);
        for (k, c) in projections.iter().enumerate() {
            let f = FlatCsr::of(c);
            let tag = 6 * k as u64;
            let row = DeliveryProjection {
                row_base: tag + 1,
                row_ptr: tag + 2,
                syn_base: tag + 3,
                target: tag + 4,
                weight: tag + 5,
                delay: tag + 6,
                ring: 6 * projections.len() as u64 + 1,
                n_blocks: n_blocks as u32,
                source: k as u32,
                source_word: pop_word[k],
                slots: slots as u32,
            };
            input += &words_text(&row.words());
            let join = |v: Vec<String>| format!("{} {}\n", v.len(), v.join(" "));
            input += &join(f.row_base.iter().map(u64::to_string).collect());
            input += &join(f.row_ptr.iter().map(u32::to_string).collect());
            input += &join(f.syn_base.iter().map(u64::to_string).collect());
            input += &join(f.target.iter().map(u16::to_string).collect());
            input += &join(f.weight.iter().map(|&w| c_hex(w)).collect());
            input += &join(f.delay.iter().map(u16::to_string).collect());
            for &i in &spiking[k] {
                for b in 0..n_blocks {
                    for syn in c.row(i as usize, b).iter() {
                        let slot = (step + u64::from(syn.delay)) as usize % slots;
                        let ch = usize::from(syn.weight < 0.0);
                        let at =
                            (b * slots + slot) * 2 * BLOCK + ch * BLOCK + usize::from(syn.target);
                        want[at] += f64::from(syn.weight);
                        scale[at] += f64::from(syn.weight.abs());
                    }
                }
            }
        }
        input += &format!("{step}\n");
        let got: Vec<f32> = run_harness(&["deliver".into()], &input)
            .lines()
            .map(parse_c_hex)
            .collect();
        assert_eq!(got.len(), ring_len);
        let added = scale.iter().filter(|&&m| m > 0.0).count();
        assert!(added > 500, "the test adds into many slots: {added}");
        for (at, ((&g, &w), &m)) in got.iter().zip(&want).zip(&scale).enumerate() {
            assert!(
                (f64::from(g) - w).abs() <= 1e-5 * m,
                "ring entry {at}: device {g}, expected {w} (magnitudes {m})"
            );
        }
    }

    /// Largest relative difference of a ring value of the STDP kernels from the CPU's: the
    /// device adds a slot's weights in another order (atomically); all have the sign of
    /// the channel, so each of the at most few dozen additions rounds by half an ulp of the
    /// sum (6e-8): well below 1e-5.
    const PLASTIC_RING_RTOL: f64 = 1e-5;

    /// Runs `steps` steps of random pre- and postsynaptic spikes through a plastic
    /// projection with rule `R` (built from `params`) on the CPU (its deliver, after_delivery,
    /// `record_post` and `catch_up_projection`, with a catch-up every 100 steps) and through
    /// the host-compiled kernels of plasticity/stdp.cu, and asserts that the weights, the
    /// per-synapse and per-source state, the histories and the trace agree bit for bit, and
    /// the ring values within [`PLASTIC_RING_RTOL`]. Sources 0..4 fall silent after step
    /// 100, so their catch-ups read lags beyond the decay table (2,002 steps at dt = 1 ms).
    fn same_plasticity<R: myelin_engine::PlasticityRule>(
        params: &[(&str, f64)],
        device: impl Fn(&R) -> crate::plasticity::stdp::DeviceRule,
        w_range: f64,
        seed: u32,
    ) {
        use crate::plasticity::{catch_up_projection, record_post};
        use myelin_components::{PlasticityState, SynapticInput};
        use myelin_engine::{ParamValue, Params, PlasticStep, PlasticSynapses};
        use std::collections::BTreeMap;
        const BLOCK: usize = 1024;
        const PERIOD: u64 = 100;
        const HIST_CAP: usize = 64;
        let (dt, steps, n_source, n_target, max_delay) = (1.0, 2600u64, 40usize, 1030usize, 5u16);
        let given: BTreeMap<String, ParamValue> = params
            .iter()
            .map(|(k, v)| (k.to_string(), ParamValue::Number(*v)))
            .collect();
        let p = Params::resolve(R::PARAMETERS, &given).expect("valid test parameters");
        let rule = R::new(&p, dt).expect("valid test rule");
        let mut s = Stream::new(5, Purpose::Init, seed, 0, 0);
        // Synapses onto targets 0..50 of block 0 and all 6 of block 1, so that pairings abound.
        let n_blocks = n_target.div_ceil(BLOCK);
        let mut blocks = Vec::new();
        for b in 0..n_blocks {
            let width = (n_target - b * BLOCK).min(50);
            let (mut row_ptr, mut syn) = (vec![0u32], Vec::new());
            for _ in 0..n_source {
                for _ in 0..(s.uniform() * 12.0) as usize {
                    syn.push(myelin_components::Synapse {
                        target: (s.uniform() * width as f64) as u16,
                        delay: 1 + (s.uniform() * f64::from(max_delay)) as u16,
                        weight: (s.uniform() * w_range) as f32,
                    });
                }
                row_ptr.push(syn.len() as u32);
            }
            blocks.push(SynapseBlock::new(row_ptr, syn));
        }
        let mut conn = Connectivity::new(blocks, n_source, max_delay);
        let mut state = myelin_engine::plasticity_state(&rule, dt, &conn, n_target);
        let mut ring = SynapticInput::new(n_target, BLOCK, usize::from(max_delay));

        // The device's table and arrays, as they stand before the first step.
        let dr = device(&rule);
        let f = FlatCsr::of(&conn);
        let initial: Vec<f32> = f.weight.clone();
        let fp = FlatPlastic::of(&state, HIST_CAP).expect("empty histories");
        let consts = dr.constants(state.post.decay);
        let ring_len = n_blocks * ring.slots() * 2 * BLOCK;
        let tag = |present: bool, t: u64| if present { t } else { 0 };
        let row = PlasticProjection {
            row_base: 1,
            row_ptr: 2,
            syn_base: 3,
            target: 4,
            weight: 5,
            delay: 6,
            syn_state: tag(!fp.syn_state.is_empty(), 7),
            t_last: 8,
            paired_until: 9,
            kplus: tag(!fp.kplus.is_empty(), 10),
            history: 11,
            hist_head: 12,
            hist_len: 13,
            trace: 14,
            c: 15,
            decay: 16,
            ring: 17,
            status: 18,
            catch_up_period: PERIOD,
            n_decay: dr.decay.len() as u32,
            pairing: dr.pairing,
            dependence: dr.dependence,
            n_blocks: n_blocks as u32,
            source: 0,
            source_word: 0,
            target_pop: 1,
            target_word: bitmap_words(&[n_source as u32])[1],
            n_source: n_source as u32,
            n_target: n_target as u32,
            slots: ring.slots() as u32,
            tslots: state.post.slots as u32,
            hist_cap: HIST_CAP as u32,
            max_delay: u32::from(max_delay),
        };
        let mut input = words_text(&row.words());
        let mut array = |v: Vec<u64>| {
            input += &format!("{}", v.len());
            for x in v {
                input += &format!(" {x:x}");
            }
            input += "\n";
        };
        array(f.row_base.clone());
        array(f.row_ptr.iter().map(|&x| u64::from(x)).collect());
        array(f.syn_base.clone());
        array(f.target.iter().map(|&x| u64::from(x)).collect());
        array(f.weight.iter().map(|x| u64::from(x.to_bits())).collect());
        array(f.delay.iter().map(|&x| u64::from(x)).collect());
        array(
            fp.syn_state
                .iter()
                .map(|x| u64::from(x.to_bits()))
                .collect(),
        );
        array(fp.t_last.clone());
        array(fp.paired_until.clone());
        array(fp.kplus.iter().map(|x| x.to_bits()).collect());
        array(fp.history.clone());
        array(fp.hist_head.iter().map(|&x| u64::from(x)).collect());
        array(fp.hist_len.iter().map(|&x| u64::from(x)).collect());
        array(fp.trace.iter().map(|x| x.to_bits()).collect());
        array(consts.iter().map(|x| x.to_bits()).collect());
        array(dr.decay.iter().map(|x| x.to_bits()).collect());
        array(vec![0; ring_len]);
        array(vec![0]);

        // The CPU, step by step; the ring slot of the next step is read (and cleared) after
        // each, as the neuron update would read it.
        let mut want_ring: BTreeMap<(u64, usize, usize), f32> = BTreeMap::new();
        for step in 0..steps {
            let pre: Vec<u32> = (0..n_source as u32)
                .filter(|&i| s.uniform() < 0.03 && (i >= 4 || step < 100))
                .collect();
            let post: Vec<u32> = (0..n_target as u32)
                .filter(|&j| (j < 50 || j >= BLOCK as u32) && s.uniform() < 0.04)
                .collect();
            for list in [&pre, &post] {
                input += &format!("{}", list.len());
                for i in list.iter() {
                    input += &format!(" {i}");
                }
                input += "\n";
            }
            if !pre.is_empty() {
                let at = PlasticStep { step, spikes: &pre };
                let PlasticityState {
                    synapse,
                    pre: real,
                    pre_steps,
                    post,
                    ..
                } = &mut state;
                let view = myelin_components::PreView {
                    real: real.iter().map(|c| c.values.as_slice()).collect(),
                    steps: pre_steps.iter().map(|c| c.values.as_slice()).collect(),
                };
                for ((b, block), mut rb) in conn
                    .blocks_mut()
                    .iter_mut()
                    .enumerate()
                    .zip(ring.blocks_mut())
                {
                    let mut syn = PlasticSynapses {
                        block,
                        state: synapse
                            .iter_mut()
                            .map(|c| c.blocks[b].as_mut_slice())
                            .collect(),
                    };
                    rule.deliver(at, &mut syn, &view, &post.view(b), &mut rb);
                }
                rule.after_delivery(at, &mut state);
            }
            record_post(&mut state.post, step + 1, &post);
            if (step + 1).is_multiple_of(PERIOD) {
                catch_up_projection(&rule, &mut conn, &mut state, step, PERIOD);
            }
            for mut rb in ring.blocks_mut() {
                let first = rb.first;
                let (ex, inh) = rb.slot_mut(step + 1);
                for (ch, cells) in [ex, inh].into_iter().enumerate() {
                    for (j, v) in cells.iter_mut().enumerate() {
                        if v.to_bits() != 0 {
                            want_ring.insert((step, first + j, ch), *v);
                        }
                        *v = 0.0;
                    }
                }
            }
        }

        let out = run_harness(&["plastic".into(), steps.to_string()], &input);
        let mut lines = out.lines();
        let mut got_ring: BTreeMap<(u64, usize, usize), f32> = BTreeMap::new();
        for l in lines.by_ref() {
            if l == "end" {
                break;
            }
            let w: Vec<&str> = l.split_whitespace().collect();
            let bits = u32::from_str_radix(w[3], 16).unwrap();
            got_ring.insert(
                (
                    w[0].parse().unwrap(),
                    w[1].parse().unwrap(),
                    w[2].parse().unwrap(),
                ),
                f32::from_bits(bits),
            );
        }
        let mut arrays = lines.map(|l| {
            l.split_whitespace()
                .map(|x| u64::from_str_radix(x, 16).unwrap())
                .collect::<Vec<u64>>()
        });
        let mut next = || arrays.next().expect("the harness prints every array");
        let weight = next();
        let syn_state = next();
        let got = FlatPlastic {
            syn_state: syn_state
                .iter()
                .map(|&x| f32::from_bits(x as u32))
                .collect(),
            t_last: next(),
            paired_until: next(),
            kplus: next().into_iter().map(f64::from_bits).collect(),
            history: next(),
            hist_head: next().into_iter().map(|x| x as u32).collect(),
            hist_len: next().into_iter().map(|x| x as u32).collect(),
            trace: next().into_iter().map(f64::from_bits).collect(),
        };
        let status = next();

        let name = R::NAME;
        let want = FlatCsr::of(&conn);
        let bits32 = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<u32>>();
        let bits64 = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<u64>>();
        let changed = want
            .weight
            .iter()
            .zip(&initial)
            .filter(|(a, b)| a != b)
            .count();
        assert!(
            changed * 2 > want.weight.len(),
            "{name}: the test changes most weights ({changed} of {})",
            want.weight.len()
        );
        let got_w: Vec<u32> = weight.iter().map(|&x| x as u32).collect();
        for (k, (g, w)) in got_w.iter().zip(bits32(&want.weight)).enumerate() {
            assert_eq!(
                *g,
                w,
                "{name}: weight of synapse {k}: device {}, CPU {}",
                f32::from_bits(*g),
                f32::from_bits(w)
            );
        }
        assert_eq!(
            got_w.len(),
            want.weight.len(),
            "{name}: one weight per synapse"
        );
        let cpu = FlatPlastic::of(&state, HIST_CAP).expect("histories within the capacity");
        assert_eq!(
            bits32(&got.syn_state),
            bits32(&cpu.syn_state),
            "{name}: per-synapse state"
        );
        assert_eq!(got.t_last, cpu.t_last, "{name}: t_last");
        assert_eq!(got.paired_until, cpu.paired_until, "{name}: paired_until");
        assert_eq!(bits64(&got.kplus), bits64(&cpu.kplus), "{name}: Kplus");
        assert_eq!(got.histories(), state.post.history, "{name}: histories");
        assert_eq!(bits64(&got.trace), bits64(&cpu.trace), "{name}: trace");
        assert_eq!(status, [0], "{name}: no history overflowed");
        assert!(
            want_ring.len() > 1000,
            "{name}: ring values {}",
            want_ring.len()
        );
        assert_eq!(
            got_ring.keys().collect::<Vec<_>>(),
            want_ring.keys().collect::<Vec<_>>(),
            "{name}: the same (step, neuron, channel) ring values are non-zero"
        );
        for (key, w) in &want_ring {
            let g = got_ring[key];
            assert!(
                (f64::from(g) - f64::from(*w)).abs() <= PLASTIC_RING_RTOL * f64::from(w.abs()),
                "{name}: ring value {key:?}: device {g}, CPU {w}"
            );
        }
    }

    /// The STDP kernels (plasticity/stdp.cu) follow the CPU's rules bit for bit on the
    /// host: every pairing, the bounded weight dependence additive, multiplicative and with
    /// fractional exponents (the power tables), and the power law of `stdp_pl`.
    #[test]
    fn stdp_kernels_follow_the_cpu_bit_for_bit() {
        use crate::plasticity::power_law::StdpPl;
        use crate::plasticity::stdp::{Stdp, StdpNnPreCentered, StdpNnRestr, StdpNnSymm};
        // tau_plus of 1 s in one case: the decay at lags beyond its table (two catch-up
        // periods, exp(-2) there) still moves the weights.
        let bounded = |mu_plus: f64, mu_minus: f64, tau_plus: f64| {
            [
                ("lambda", 0.05),
                ("alpha", 1.1),
                ("mu_plus", mu_plus),
                ("mu_minus", mu_minus),
                ("Wmax", 100.0),
                ("tau_plus", tau_plus),
                ("tau_minus", 30.0),
            ]
        };
        let rule = Stdp::device_rule;
        same_plasticity::<Stdp>(&bounded(0.4, 0.7, 20.0), rule, 100.0, 1);
        same_plasticity::<Stdp>(&bounded(1.0, 1.0, 1000.0), rule, 100.0, 2);
        let rule = StdpNnSymm::device_rule;
        same_plasticity::<StdpNnSymm>(&bounded(0.0, 0.0, 20.0), rule, 100.0, 3);
        let rule = StdpNnPreCentered::device_rule;
        same_plasticity::<StdpNnPreCentered>(&bounded(1.0, 0.3, 20.0), rule, 100.0, 4);
        let rule = StdpNnRestr::device_rule;
        same_plasticity::<StdpNnRestr>(&bounded(0.5, 1.0, 20.0), rule, 100.0, 5);
        same_plasticity::<StdpPl>(
            &[
                ("lambda", 0.1),
                ("alpha", 0.0513),
                ("mu", 0.4),
                ("tau_plus", 15.0),
            ],
            StdpPl::device_rule,
            60.0,
            6,
        );
    }

    /// Every entry point a source declares is defined in it as an `extern "C"` kernel.
    #[test]
    fn every_entry_point_is_defined_in_its_source() {
        for s in sources() {
            for e in s.entries {
                // A neuron model's update kernel comes from the prelude's macro.
                let by_macro = e
                    .strip_suffix("_update")
                    .is_some_and(|m| s.source.contains(&format!("MYELIN_NEURON_KERNEL({m})")));
                assert!(
                    by_macro || s.source.contains(&format!("__global__ void {e}(")),
                    "{}: no kernel {e}",
                    s.file
                );
            }
        }
    }
}

//! `iaf_psc_alpha`: leaky integrate-and-fire with alpha-shaped synaptic currents, exactly
//! integrated as NEST's model of the same name.

use myelin_components::NeuronBlockMut;
use myelin_engine::{KernelSource, NeuronModel, ParamIssue, ParamSpec, Params, Range, VarSpec};

use super::propagators::{p_alpha_d, p_exp, p20, p22};

/// Leaky integrate-and-fire neuron with alpha post-synaptic currents.
///
/// A weight `w` [pA] makes the current `w e/tau_s t exp(-t/tau_s)`, peaking at `w` after
/// `tau_s`. State: `V_m` [mV] (relative to `E_L` in storage), `I_syn_ex`, `dI_syn_ex`,
/// `I_syn_in`, `dI_syn_in` [pA, pA/ms], refractory counter [steps].
#[derive(Clone, Debug)]
pub struct IafPscAlpha {
    e_l: f64,
    theta: f32,
    v_reset: f32,
    i_e: f32,
    ref_steps: u32,
    p33: f32,
    p30: f32,
    ex: AlphaProp,
    inh: AlphaProp,
}

#[derive(Clone, Debug)]
struct AlphaProp {
    p11: f32,
    p21: f32,
    p31: f32,
    p32: f32,
    initial: f32,
}

impl AlphaProp {
    fn new(tau_s: f64, tau_m: f64, c: f64, h: f64) -> Self {
        let p11 = (-h / tau_s).exp();
        Self {
            p11: p11 as f32,
            p21: (h * p11) as f32,
            p31: p_alpha_d(tau_s, tau_m, c, h) as f32,
            p32: p_exp(tau_s, tau_m, c, h) as f32,
            initial: (std::f64::consts::E / tau_s) as f32,
        }
    }
}

impl NeuronModel for IafPscAlpha {
    const NAME: &'static str = "iaf_psc_alpha";
    const PARAMETERS: &'static [ParamSpec] = &[
        ParamSpec::real("C_m", "pF", 250.0, Range::POSITIVE, "membrane capacitance"),
        ParamSpec::real(
            "tau_m",
            "ms",
            10.0,
            Range::POSITIVE,
            "membrane time constant",
        ),
        ParamSpec::real(
            "tau_syn_ex",
            "ms",
            2.0,
            Range::POSITIVE,
            "excitatory synaptic rise time",
        ),
        ParamSpec::real(
            "tau_syn_in",
            "ms",
            2.0,
            Range::POSITIVE,
            "inhibitory synaptic rise time",
        ),
        ParamSpec::real(
            "t_ref",
            "ms",
            2.0,
            Range::NON_NEGATIVE,
            "absolute refractory period",
        ),
        ParamSpec::real("E_L", "mV", -70.0, Range::ANY, "resting potential"),
        ParamSpec::real("V_th", "mV", -55.0, Range::ANY, "spike threshold"),
        ParamSpec::real("V_reset", "mV", -70.0, Range::ANY, "reset potential"),
        ParamSpec::real("I_e", "pA", 0.0, Range::ANY, "constant external current"),
    ];
    const REAL_STATE: &'static [VarSpec] = &[
        VarSpec {
            name: "V_m",
            unit: "mV",
            doc: "membrane potential",
        },
        VarSpec {
            name: "I_syn_ex",
            unit: "pA",
            doc: "excitatory synaptic current",
        },
        VarSpec {
            name: "dI_syn_ex",
            unit: "pA/ms",
            doc: "derivative state of the excitatory current",
        },
        VarSpec {
            name: "I_syn_in",
            unit: "pA",
            doc: "inhibitory synaptic current",
        },
        VarSpec {
            name: "dI_syn_in",
            unit: "pA/ms",
            doc: "derivative state of the inhibitory current",
        },
    ];
    const INT_STATE: &'static [VarSpec] = &[VarSpec {
        name: "refractory",
        unit: "steps",
        doc: "refractory steps remaining",
    }];

    fn new(p: &Params, dt: f64) -> Result<Self, ParamIssue> {
        let (c, tm) = (p.get("C_m"), p.get("tau_m"));
        let e_l = p.get("E_L");
        if p.get("V_reset") >= p.get("V_th") {
            return Err(ParamIssue::new(
                "V_reset",
                format!(
                    "V_reset = {} mV must be below V_th = {} mV",
                    p.get("V_reset"),
                    p.get("V_th")
                ),
            ));
        }
        Ok(Self {
            e_l,
            theta: (p.get("V_th") - e_l) as f32,
            v_reset: (p.get("V_reset") - e_l) as f32,
            i_e: p.get("I_e") as f32,
            ref_steps: (p.get("t_ref") / dt).round() as u32,
            p33: p22(tm, dt) as f32,
            p30: p20(tm, c, dt) as f32,
            ex: AlphaProp::new(p.get("tau_syn_ex"), tm, c, dt),
            inh: AlphaProp::new(p.get("tau_syn_in"), tm, c, dt),
        })
    }

    fn initial(&self, var: usize) -> f64 {
        if var == 0 { self.e_l } else { 0.0 }
    }

    fn offset(&self, var: usize) -> f64 {
        if var == 0 { self.e_l } else { 0.0 }
    }

    const CUDA_KERNEL: Option<KernelSource> = neuron_kernel!("iaf_psc_alpha");

    fn device_constants(&self) -> Vec<f32> {
        vec![
            self.theta,
            self.v_reset,
            self.i_e,
            self.ref_steps as f32,
            self.p33,
            self.p30,
            self.ex.p11,
            self.ex.p21,
            self.ex.p31,
            self.ex.p32,
            self.ex.initial,
            self.inh.p11,
            self.inh.p21,
            self.inh.p31,
            self.inh.p32,
            self.inh.initial,
        ]
    }

    fn update(
        &self,
        b: &mut NeuronBlockMut<'_>,
        input_ex: &[f32],
        input_in: &[f32],
        current: &[f32],
        spikes: &mut Vec<u32>,
    ) {
        let [v, i_ex, di_ex, i_in, di_in] = &mut b.real[..] else {
            unreachable!("iaf_psc_alpha has five real columns")
        };
        let r = &mut b.int[0];
        let (e, h) = (&self.ex, &self.inh);
        let n = v.len();
        let (v, i_ex, di_ex, i_in, di_in, r) = (
            &mut v[..n],
            &mut i_ex[..n],
            &mut di_ex[..n],
            &mut i_in[..n],
            &mut di_in[..n],
            &mut r[..n],
        );
        let (input_ex, input_in, current) = (&input_ex[..n], &input_in[..n], &current[..n]);
        // Two passes, as iaf_psc_exp: a branch-free update the compiler vectorises, then the
        // threshold crossings; the same operations in the same order as one pass.
        for j in 0..n {
            let free = r[j] == 0;
            let vn = (self.i_e + current[j]) * self.p30
                + e.p31 * di_ex[j]
                + e.p32 * i_ex[j]
                + h.p31 * di_in[j]
                + h.p32 * i_in[j]
                + self.p33 * v[j];
            v[j] = if free { vn } else { v[j] };
            r[j] -= u32::from(!free);
            i_ex[j] = e.p21 * di_ex[j] + e.p11 * i_ex[j];
            di_ex[j] = di_ex[j] * e.p11 + e.initial * input_ex[j];
            i_in[j] = h.p21 * di_in[j] + h.p11 * i_in[j];
            di_in[j] = di_in[j] * h.p11 + h.initial * input_in[j];
        }
        for j in 0..n {
            if v[j] >= self.theta {
                r[j] = self.ref_steps;
                v[j] = self.v_reset;
                spikes.push((b.first + j) as u32);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::neurons::testing::OneNeuron;

    /// Tolerance on a PSP [mV] (f32 state, values ~0.1-1 mV).
    const PSP_TOL_MV: f64 = 2e-6;
    /// Tolerance on the membrane under constant current [mV] (see iaf_psc_exp).
    const TRAJECTORY_TOL_MV: f64 = 2e-4;

    /// The PSP of an alpha current `w e/ts t exp(-t/ts)` on a membrane (tau_m, C):
    /// V(t) = w e/(ts C) exp(-t/tm) int_0^t s exp(-(1/ts - 1/tm) s) ds.
    fn alpha_psp(w: f64, ts: f64, tm: f64, c: f64, t: f64) -> f64 {
        let a = 1.0 / ts - 1.0 / tm;
        let integral = (1.0 - (-a * t).exp() * (1.0 + a * t)) / (a * a);
        w * std::f64::consts::E / (ts * c) * (-t / tm).exp() * integral
    }

    #[test]
    fn psp_matches_the_closed_form() {
        // The NEST HPC benchmark's neuron: tau_syn 0.3258 ms.
        let (c, tm, ts, w, dt) = (250.0, 10.0, 0.32582722403722841, 100.0, 0.1);
        let mut n = OneNeuron::<IafPscAlpha>::new(
            &[
                ("C_m", c),
                ("tau_m", tm),
                ("tau_syn_ex", ts),
                ("tau_syn_in", ts),
                ("E_L", 0.0),
                ("V_reset", 0.0),
                ("V_th", 20.0),
            ],
            dt,
        );
        n.step(w as f32, 0.0, 0.0);
        for m in 1..400 {
            n.step(0.0, 0.0, 0.0);
            let exact = alpha_psp(w, ts, tm, c, m as f64 * dt);
            assert!(
                (n.get(0) - exact).abs() < PSP_TOL_MV,
                "step {m}: V {} mV, exact {exact} mV",
                n.get(0)
            );
        }
        // The current peaks at w after tau_s: check I_syn_ex at the step nearest tau_s.
        let mut n = OneNeuron::<IafPscAlpha>::new(&[("tau_syn_ex", 0.5)], dt);
        n.step(w as f32, 0.0, 0.0);
        for _ in 0..5 {
            n.step(0.0, 0.0, 0.0);
        }
        assert!(
            (n.get(1) - w).abs() < 1e-3,
            "alpha current peaks at the weight after tau_syn: {}",
            n.get(1)
        );
    }

    #[test]
    fn constant_current_and_inhibition() {
        let (c, tau, i_e, dt) = (250.0, 10.0, 200.0, 0.1);
        let mut n = OneNeuron::<IafPscAlpha>::new(
            &[("C_m", c), ("tau_m", tau), ("I_e", i_e), ("V_th", 100.0)],
            dt,
        );
        for k in 0..500 {
            n.step(0.0, 0.0, 0.0);
            let exact = -70.0 + i_e * tau / c * (1.0 - (-((k + 1) as f64) * dt / tau).exp());
            assert!(
                (n.get(0) - exact).abs() < TRAJECTORY_TOL_MV,
                "V {} vs {exact}",
                n.get(0)
            );
        }
        let mut n = OneNeuron::<IafPscAlpha>::new(&[("tau_syn_in", 2.0)], dt);
        n.step(0.0, -50.0, 0.0);
        for _ in 0..30 {
            n.step(0.0, 0.0, 0.0);
        }
        let exact = -alpha_psp(50.0, 2.0, 10.0, 250.0, 3.0);
        assert!(
            (n.get(0) + 70.0 - exact).abs() < PSP_TOL_MV,
            "inhibitory PSP {} vs {exact}",
            n.get(0) + 70.0
        );
    }

    #[test]
    fn fires_and_resets() {
        let mut n = OneNeuron::<IafPscAlpha>::new(&[("I_e", 500.0)], 0.1);
        let spikes = (0..1000).filter(|_| n.step(0.0, 0.0, 0.0)).count();
        assert!(
            spikes > 0,
            "I_e 500 pA must drive the neuron over threshold"
        );
    }
}

//! `iaf_psc_delta`: leaky integrate-and-fire with delta synapses (each input is an
//! instantaneous jump of the membrane potential), exactly integrated as NEST's model.

use myelin_components::NeuronBlockMut;
use myelin_engine::{KernelSource, NeuronModel, ParamIssue, ParamSpec, Params, Range, VarSpec};

use super::propagators::{p20, p22};

/// Leaky integrate-and-fire neuron with delta synapses: a weight `w` [mV] makes `V_m`
/// jump by `w` in the step it arrives. Inputs arriving while refractory are discarded
/// (NEST's default, `refractory_input = false`).
#[derive(Clone, Debug)]
pub struct IafPscDelta {
    e_l: f64,
    theta: f32,
    v_reset: f32,
    i_e: f32,
    ref_steps: u32,
    p33: f32,
    p30: f32,
}

impl NeuronModel for IafPscDelta {
    const NAME: &'static str = "iaf_psc_delta";
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
    const REAL_STATE: &'static [VarSpec] = &[VarSpec {
        name: "V_m",
        unit: "mV",
        doc: "membrane potential",
    }];
    const INT_STATE: &'static [VarSpec] = &[VarSpec {
        name: "refractory",
        unit: "steps",
        doc: "refractory steps remaining",
    }];

    fn new(p: &Params, dt: f64) -> Result<Self, ParamIssue> {
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
            p33: p22(p.get("tau_m"), dt) as f32,
            p30: p20(p.get("tau_m"), p.get("C_m"), dt) as f32,
        })
    }

    fn initial(&self, _var: usize) -> f64 {
        self.e_l
    }

    fn offset(&self, _var: usize) -> f64 {
        self.e_l
    }

    const CUDA_KERNEL: Option<KernelSource> = neuron_kernel!("iaf_psc_delta");

    fn device_constants(&self) -> Vec<f32> {
        vec![
            self.theta,
            self.v_reset,
            self.i_e,
            self.ref_steps as f32,
            self.p33,
            self.p30,
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
        let v = &mut b.real[0];
        let r = &mut b.int[0];
        for j in 0..v.len() {
            if r[j] == 0 {
                v[j] = self.p30 * (self.i_e + current[j])
                    + self.p33 * v[j]
                    + (input_ex[j] + input_in[j]);
            } else {
                r[j] -= 1;
            }
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

    /// Tolerance on a decaying jump [mV] (f32 state).
    const JUMP_TOL_MV: f64 = 1e-6;

    #[test]
    fn a_jump_decays_exponentially() {
        let (tau, dt, j) = (20.0, 0.1, 0.1);
        let mut n = OneNeuron::<IafPscDelta>::new(
            &[
                ("tau_m", tau),
                ("E_L", 0.0),
                ("V_reset", 10.0),
                ("V_th", 20.0),
            ],
            dt,
        );
        n.step(j as f32, 0.0, 0.0);
        assert!(
            (n.get(0) - j).abs() < JUMP_TOL_MV,
            "the jump appears in the step it arrives"
        );
        for m in 1..200 {
            n.step(0.0, 0.0, 0.0);
            let exact = j * (-(m as f64) * dt / tau).exp();
            assert!(
                (n.get(0) - exact).abs() < JUMP_TOL_MV,
                "step {m}: V {} vs {exact}",
                n.get(0)
            );
        }
    }

    #[test]
    fn threshold_reset_and_refractory_input_is_discarded() {
        let mut n = OneNeuron::<IafPscDelta>::new(
            &[
                ("E_L", 0.0),
                ("V_reset", 10.0),
                ("V_th", 20.0),
                ("t_ref", 2.0),
            ],
            0.1,
        );
        assert!(
            n.step(25.0, 0.0, 0.0),
            "a 25 mV jump crosses a 20 mV threshold"
        );
        assert_eq!(n.get(0), 10.0, "reset to V_reset");
        for k in 0..20 {
            n.step(5.0, -1.0, 0.0);
            assert_eq!(
                n.get(0),
                10.0,
                "refractory step {k}: input discarded, V clamped"
            );
        }
        n.step(5.0, -1.0, 0.0);
        let expected = 10.0 * (-0.1f64 / 10.0).exp() + 4.0;
        assert!(
            (n.get(0) - expected).abs() < 1e-5,
            "after t_ref input counts again: {} vs {expected}",
            n.get(0)
        );
    }
}

//! The Izhikevich (2003) neuron as a Myelin plugin, defined outside the engine's crates.

use myelin::components::NeuronBlockMut;
use myelin::engine::{NeuronModel, ParamIssue, ParamSpec, Params, Range, VarSpec};

/// Izhikevich's simple model: `v' = 0.04 v^2 + 5 v + 140 - u + I`, `u' = a (b v - u)`;
/// when `v >= V_th`: `v = c`, `u += d`. Integrated as NEST's `izhikevich` (forward Euler
/// of both variables from the values at the start of the step); inputs are delta
/// synapses: a weight [mV] is added to `v`.
pub struct Izhikevich {
    a: f32,
    b: f32,
    c: f32,
    d: f32,
    theta: f32,
    i_e: f32,
    h: f32,
}

impl NeuronModel for Izhikevich {
    const NAME: &'static str = "izhikevich";
    const PARAMETERS: &'static [ParamSpec] = &[
        ParamSpec::real("a", "1/ms", 0.02, Range::POSITIVE, "recovery rate"),
        ParamSpec::real("b", "", 0.2, Range::ANY, "sensitivity of u to v"),
        ParamSpec::real("c", "mV", -65.0, Range::ANY, "reset potential"),
        ParamSpec::real("d", "mV", 8.0, Range::ANY, "recovery jump after a spike"),
        ParamSpec::real("V_th", "mV", 30.0, Range::ANY, "spike cut-off"),
        ParamSpec::real(
            "I_e",
            "pA",
            0.0,
            Range::ANY,
            "constant input (in the model's current unit)",
        ),
    ];
    const REAL_STATE: &'static [VarSpec] = &[
        VarSpec {
            name: "V_m",
            unit: "mV",
            doc: "membrane potential v",
        },
        VarSpec {
            name: "U_m",
            unit: "mV",
            doc: "recovery variable u",
        },
    ];

    fn new(p: &Params, dt: f64) -> Result<Self, ParamIssue> {
        if p.get("c") >= p.get("V_th") {
            return Err(ParamIssue::new(
                "c",
                format!(
                    "reset c = {} mV must be below V_th = {} mV",
                    p.get("c"),
                    p.get("V_th")
                ),
            ));
        }
        Ok(Self {
            a: p.get("a") as f32,
            b: p.get("b") as f32,
            c: p.get("c") as f32,
            d: p.get("d") as f32,
            theta: p.get("V_th") as f32,
            i_e: p.get("I_e") as f32,
            h: dt as f32,
        })
    }

    fn initial(&self, var: usize) -> f64 {
        let v = f64::from(self.c);
        if var == 0 { v } else { f64::from(self.b) * v }
    }

    fn update(
        &self,
        blk: &mut NeuronBlockMut<'_>,
        input_ex: &[f32],
        input_in: &[f32],
        current: &[f32],
        spikes: &mut Vec<u32>,
    ) {
        let [v, u] = &mut blk.real[..] else {
            unreachable!("two real columns")
        };
        for j in 0..v.len() {
            let (v0, u0) = (v[j], u[j]);
            let i = self.i_e + current[j];
            v[j] = v0
                + self.h * (0.04 * v0 * v0 + 5.0 * v0 + 140.0 - u0 + i)
                + input_ex[j]
                + input_in[j];
            u[j] = u0 + self.h * self.a * (self.b * v0 - u0);
            if v[j] >= self.theta {
                v[j] = self.c;
                u[j] += self.d;
                spikes.push((blk.first + j) as u32);
            }
        }
    }
}

//! The description of a network: what to build, kept apart from how it runs (as Arbor's
//! recipes are). Scenes deserialize into these types.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::params::ParamValue;
use crate::rng::Stream;

/// A whole network: time step, seed, and its elements in scene order.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct NetworkSpec {
    /// Time step [ms].
    pub dt: f64,
    /// Seed of every random draw.
    pub seed: u64,
    /// Populations, numbered in this order (global neuron ids follow it).
    pub populations: Vec<PopulationSpec>,
    /// Projections; delivery into one target sums them in this order.
    pub projections: Vec<ProjectionSpec>,
    /// Stimulation devices.
    pub inputs: Vec<InputSpec>,
    /// Spike and state recorders.
    pub recorders: Vec<RecorderSpec>,
}

impl NetworkSpec {
    /// The first projection with a plasticity rule, if any.
    pub fn first_plastic(&self) -> Option<&ProjectionSpec> {
        self.projections.iter().find(|j| j.plasticity.is_some())
    }

    /// The first recorder of something other than spikes (state, weights), if any.
    pub fn first_non_spike_recorder(&self) -> Option<&RecorderSpec> {
        self.recorders
            .iter()
            .find(|r| !matches!(r, RecorderSpec::Spikes { .. }))
    }
}

/// A population of `size` neurons of one model.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename = "Population", deny_unknown_fields)]
pub struct PopulationSpec {
    /// Unique name.
    pub name: String,
    /// Number of neurons.
    pub size: usize,
    /// Scene name of the neuron model, e.g. `"iaf_psc_exp"`.
    pub model: String,
    /// Model parameters by name (defaults for those not given).
    #[serde(default)]
    pub params: BTreeMap<String, ParamValue>,
    /// Initial value distribution of state variables by name (in the variable's unit);
    /// variables not named start at the model's default (e.g. `V_m = E_L`).
    #[serde(default)]
    pub initial: BTreeMap<String, Dist>,
}

fn yes() -> bool {
    true
}

/// A projection: synapses from `source` to `target` drawn by a connectivity rule.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename = "Projection", deny_unknown_fields)]
pub struct ProjectionSpec {
    /// Optional name (default `"SOURCE->TARGET"`).
    #[serde(default)]
    pub name: Option<String>,
    /// Source population name.
    pub source: String,
    /// Target population name.
    pub target: String,
    /// Connectivity rule, e.g. `"fixed_indegree"`.
    pub rule: String,
    /// The rule's parameters, e.g. `{"indegree": 1000}`.
    #[serde(default)]
    pub rule_params: BTreeMap<String, ParamValue>,
    /// Whether a neuron may connect to itself (only matters when source == target).
    #[serde(default = "yes")]
    pub autapses: bool,
    /// Whether a pair of neurons may be connected more than once.
    #[serde(default = "yes")]
    pub multapses: bool,
    /// Weight distribution [pA for current-based models, mV for delta synapses]; its sign
    /// selects the excitatory or inhibitory receptor.
    pub weight: Dist,
    /// Delay distribution [ms], rounded to steps; every delay must be at least one step.
    pub delay: Dist,
    /// Take the synapses (sources, targets, weights, delays) from a checkpoint instead of
    /// drawing them with `rule`, `weight` and `delay` (which are still validated).
    #[serde(default)]
    pub warm_start: Option<WarmStart>,
    /// A learning rule that changes the weights while the network runs (none: static
    /// synapses).
    #[serde(default)]
    pub plasticity: Option<PlasticitySpec>,
}

impl ProjectionSpec {
    /// The projection's name: its `name`, else `"SOURCE->TARGET"`.
    pub fn display_name(&self) -> String {
        self.name
            .clone()
            .unwrap_or_else(|| format!("{}->{}", self.source, self.target))
    }
}

/// A projection's learning rule: a registered plasticity model and its parameters, e.g.
/// `Plasticity(model: "stdp_pl", params: {"lambda": 0.1, "mu": 0.4})`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename = "Plasticity", deny_unknown_fields)]
pub struct PlasticitySpec {
    /// Scene name of the rule, e.g. `"stdp"`, `"stdp_nn_symm"`, `"stdp_pl"`.
    pub model: String,
    /// The rule's parameters (defaults for those not given).
    #[serde(default)]
    pub params: BTreeMap<String, ParamValue>,
}

/// Where a warm-started projection takes its connectivity: a projection of a Myelin
/// checkpoint (e.g. a network trained in an earlier run). The checkpoint's source and
/// target population sizes, time step and block size must match the scene's.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename = "WarmStart", deny_unknown_fields)]
pub struct WarmStart {
    /// The checkpoint file (HDF5); a relative path is taken from the scene file's folder.
    pub checkpoint: String,
    /// The projection's name in the checkpoint (default: this projection's name).
    #[serde(default)]
    pub projection: Option<String>,
}

/// A stimulation device attached to a target population.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename = "Input", deny_unknown_fields)]
pub struct InputSpec {
    /// Scene name of the input model, e.g. `"poisson_generator"`.
    pub model: String,
    /// Target population name.
    pub target: String,
    /// The input's parameters.
    #[serde(default)]
    pub params: BTreeMap<String, ParamValue>,
    /// Which neurons of the target receive it.
    #[serde(default)]
    pub neurons: Selection,
}

/// A recorder.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum RecorderSpec {
    /// Records spike times and senders.
    Spikes {
        /// Recorded population.
        population: String,
        /// Recorded neurons.
        #[serde(default)]
        neurons: Selection,
        /// Name of the output group (default: the population name).
        #[serde(default)]
        label: Option<String>,
    },
    /// Samples a state variable.
    State {
        /// Recorded population.
        population: String,
        /// Variable name, e.g. `"V_m"`.
        variable: String,
        /// Recorded neurons.
        #[serde(default)]
        neurons: Selection,
        /// Sampling interval [ms], a multiple of dt.
        interval: f64,
        /// Name of the output group (default: `"POPULATION_VARIABLE"`).
        #[serde(default)]
        label: Option<String>,
    },
    /// Samples the weights of a projection's synapses (all, or those onto chosen target
    /// neurons).
    Weights {
        /// Recorded projection, by name (`"SOURCE->TARGET"` unless named).
        projection: String,
        /// Sampling interval [ms], a multiple of dt.
        interval: f64,
        /// Target neurons whose incoming synapses are recorded.
        #[serde(default)]
        targets: Selection,
        /// Name of the output group (default: `"PROJECTION_weights"`).
        #[serde(default)]
        label: Option<String>,
    },
}

impl RecorderSpec {
    /// The output group name.
    pub fn label(&self) -> String {
        match self {
            Self::Spikes {
                population, label, ..
            } => label.clone().unwrap_or_else(|| population.clone()),
            Self::State {
                population,
                variable,
                label,
                ..
            } => label
                .clone()
                .unwrap_or_else(|| format!("{population}_{variable}")),
            Self::Weights {
                projection, label, ..
            } => label
                .clone()
                .unwrap_or_else(|| format!("{projection}_weights")),
        }
    }
    /// The recorded population's name (`None` for a weight recorder, which records a
    /// projection).
    pub fn population(&self) -> Option<&str> {
        match self {
            Self::Spikes { population, .. } | Self::State { population, .. } => Some(population),
            Self::Weights { .. } => None,
        }
    }
    /// The recorded neurons (for a weight recorder: the target neurons whose incoming
    /// synapses it records).
    pub fn neurons(&self) -> &Selection {
        match self {
            Self::Spikes { neurons, .. } | Self::State { neurons, .. } => neurons,
            Self::Weights { targets, .. } => targets,
        }
    }
}

/// A subset of a population's neurons.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub enum Selection {
    /// Every neuron.
    #[default]
    All,
    /// The first `n` neurons.
    First(u32),
    /// Neurons `start..end` (end excluded).
    Range(u32, u32),
    /// The listed neurons.
    List(Vec<u32>),
}

impl Selection {
    /// The selected population-local indices, ascending and without duplicates; `None` for
    /// all. Errors name the first index out of bounds.
    pub fn resolve(&self, size: usize) -> Result<Option<Vec<u32>>, String> {
        let out = match self {
            Self::All => return Ok(None),
            Self::First(n) if (*n as usize) <= size => (0..*n).collect(),
            Self::First(n) => return Err(format!("First({n}) exceeds the population size {size}")),
            Self::Range(a, b) if a <= b && (*b as usize) <= size => (*a..*b).collect(),
            Self::Range(a, b) => return Err(format!("Range({a}, {b}) is not within 0..{size}")),
            Self::List(v) => {
                if let Some(bad) = v.iter().find(|&&i| i as usize >= size) {
                    return Err(format!(
                        "neuron {bad} is out of range for a population of {size}"
                    ));
                }
                let mut v = v.clone();
                v.sort_unstable();
                v.dedup();
                v
            }
        };
        Ok(Some(out))
    }
}

/// A distribution of a per-synapse or per-neuron value.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum Dist {
    /// Always this value.
    Constant(f64),
    /// Uniform on [low, high).
    Uniform {
        /// Lower bound.
        low: f64,
        /// Upper bound.
        high: f64,
    },
    /// Normal.
    Normal {
        /// Mean.
        mean: f64,
        /// Standard deviation.
        std: f64,
    },
    /// Normal, redrawn until the value lies in [min, max] (not clipped), as the
    /// microcircuit's weights and delays are.
    NormalRedraw {
        /// Mean.
        mean: f64,
        /// Standard deviation.
        std: f64,
        /// Smallest accepted value.
        #[serde(default = "neg_inf")]
        min: f64,
        /// Largest accepted value.
        #[serde(default = "pos_inf")]
        max: f64,
    },
}

fn neg_inf() -> f64 {
    f64::NEG_INFINITY
}
fn pos_inf() -> f64 {
    f64::INFINITY
}

/// Most redraws [`Dist::NormalRedraw`] tries before it gives up (the range then holds
/// almost no probability mass, which validation rejects).
pub const MAX_REDRAWS: usize = 10_000;

impl Dist {
    /// Checks the distribution's own parameters.
    pub fn check(&self) -> Result<(), String> {
        match *self {
            Self::Constant(x) if !x.is_finite() => Err(format!("Constant({x}) is not finite")),
            Self::Uniform { low, high }
                if !(low < high) || !low.is_finite() || !high.is_finite() =>
            {
                Err(format!(
                    "Uniform needs finite low < high, got low {low}, high {high}"
                ))
            }
            Self::Normal { std, mean } | Self::NormalRedraw { std, mean, .. }
                if !(std >= 0.0) || !std.is_finite() || !mean.is_finite() =>
            {
                Err(format!(
                    "normal distribution needs a finite mean and std >= 0, got mean {mean}, std {std}"
                ))
            }
            Self::NormalRedraw {
                mean,
                std,
                min,
                max,
            } => {
                if !(min < max) {
                    return Err(format!(
                        "NormalRedraw needs min < max, got min {min}, max {max}"
                    ));
                }
                // Mass of [min, max] under N(mean, std): reject ranges more than 6 std away.
                if std == 0.0 && !(min..=max).contains(&mean)
                    || std > 0.0 && ((min - mean) / std > 6.0 || (mean - max) / std > 6.0)
                {
                    return Err(format!(
                        "NormalRedraw(mean {mean}, std {std}) has almost no mass in [{min}, {max}]"
                    ));
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// Smallest value the distribution can produce.
    pub fn lower_bound(&self) -> f64 {
        match *self {
            Self::Constant(x) => x,
            Self::Uniform { low, .. } => low,
            Self::Normal { std, mean } => {
                if std == 0.0 {
                    mean
                } else {
                    f64::NEG_INFINITY
                }
            }
            Self::NormalRedraw { min, mean, std, .. } => {
                if std == 0.0 {
                    mean
                } else {
                    min
                }
            }
        }
    }

    /// Largest value the distribution can produce.
    pub fn upper_bound(&self) -> f64 {
        match *self {
            Self::Constant(x) => x,
            Self::Uniform { high, .. } => high,
            Self::Normal { std, mean } => {
                if std == 0.0 {
                    mean
                } else {
                    f64::INFINITY
                }
            }
            Self::NormalRedraw { max, mean, std, .. } => {
                if std == 0.0 {
                    mean
                } else {
                    max
                }
            }
        }
    }

    /// Appends `n` draws to `out`: the values of `n` calls of [`Self::sample`] on the same
    /// stream, with the kind of distribution matched once rather than once a draw (the
    /// weights and delays of 300 million synapses are drawn this way).
    pub fn sample_into(&self, s: &mut Stream, n: usize, out: &mut Vec<f64>) {
        match *self {
            Self::Constant(x) => out.extend(std::iter::repeat_n(x, n)),
            Self::Uniform { low, high } => out.extend((0..n).map(|_| uniform(s, low, high))),
            Self::Normal { mean, std } => out.extend((0..n).map(|_| normal(s, mean, std))),
            Self::NormalRedraw {
                mean,
                std,
                min,
                max,
            } => out.extend((0..n).map(|_| normal_redraw(s, mean, std, min, max))),
        }
    }

    /// Draws one value.
    #[inline]
    pub fn sample(&self, s: &mut Stream) -> f64 {
        match *self {
            Self::Constant(x) => x,
            Self::Uniform { low, high } => uniform(s, low, high),
            Self::Normal { mean, std } => normal(s, mean, std),
            Self::NormalRedraw {
                mean,
                std,
                min,
                max,
            } => normal_redraw(s, mean, std, min, max),
        }
    }
}

/// One draw of [`Dist::Uniform`].
#[inline(always)]
fn uniform(s: &mut Stream, low: f64, high: f64) -> f64 {
    low + (high - low) * s.uniform()
}

/// One draw of [`Dist::Normal`].
#[inline(always)]
fn normal(s: &mut Stream, mean: f64, std: f64) -> f64 {
    mean + std * s.normal()
}

/// One draw of [`Dist::NormalRedraw`]: the first draw inline, the rare redraws out of line.
#[inline(always)]
fn normal_redraw(s: &mut Stream, mean: f64, std: f64, min: f64, max: f64) -> f64 {
    let x = normal(s, mean, std);
    if x >= min && x <= max {
        x
    } else {
        redraw(s, mean, std, min, max)
    }
}

/// The draws of [`Dist::NormalRedraw`] after a first one out of bounds: up to
/// [`MAX_REDRAWS`] draws in all, then the mean clamped into the bounds.
#[cold]
#[inline(never)]
fn redraw(s: &mut Stream, mean: f64, std: f64, min: f64, max: f64) -> f64 {
    for _ in 1..MAX_REDRAWS {
        let x = normal(s, mean, std);
        if x >= min && x <= max {
            return x;
        }
    }
    mean.clamp(min, max)
}

#[cfg(test)]
mod tests {
    use super::Dist;
    use crate::rng::{Purpose, Stream};

    /// `sample_into` gives, bit for bit, the values of as many calls of `sample` on the
    /// same stream, for every kind of distribution: redraws that are frequent (bounds
    /// half a standard deviation from the mean, about 62 % of first draws out of range),
    /// and bounds that no draw meets, where both fall back to the clamped mean.
    #[test]
    fn sample_into_draws_what_sample_draws() {
        let dists = [
            Dist::Constant(2.5),
            Dist::Uniform {
                low: -1.0,
                high: 3.0,
            },
            Dist::Normal {
                mean: 1.5,
                std: 0.75,
            },
            Dist::NormalRedraw {
                mean: 1.5,
                std: 0.75,
                min: 0.05,
                max: f64::INFINITY,
            },
            Dist::NormalRedraw {
                mean: 0.0,
                std: 1.0,
                min: -0.5,
                max: 0.5,
            },
            Dist::NormalRedraw {
                mean: 0.0,
                std: 1.0,
                min: 40.0,
                max: 41.0,
            },
        ];
        for (k, d) in dists.iter().enumerate() {
            let n = if k == dists.len() - 1 { 3 } else { 20_000 };
            let mut one = Stream::new(7, Purpose::Weight, k as u32, 11, 0);
            let expected: Vec<u64> = (0..n).map(|_| d.sample(&mut one).to_bits()).collect();
            let mut many = Stream::new(7, Purpose::Weight, k as u32, 11, 0);
            let mut got = vec![f64::NAN];
            d.sample_into(&mut many, n, &mut got);
            assert_eq!(got.len(), n + 1, "{d:?}: appends n values");
            let got: Vec<u64> = got[1..].iter().map(|x| x.to_bits()).collect();
            assert_eq!(got, expected, "{d:?}");
            // Both left the stream at the same place.
            assert_eq!(one.next_u32(), many.next_u32(), "{d:?}: stream position");
        }
    }
}

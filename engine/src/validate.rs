//! Validation of a network description against the registry, without building it.

use std::collections::HashMap;

use crate::construct::{RuleContext, delay_steps};
use crate::error::{SpecError, SpecPath};
use crate::network::{NetworkSpec, RecorderSpec};
use crate::params::{ParamIssue, Params};
use crate::registry::ModelRegistry;

fn param_errors<'a>(
    base: &'a SpecPath,
    field: &'static str,
    issues: Vec<ParamIssue>,
) -> impl Iterator<Item = SpecError> + 'a {
    issues.into_iter().map(move |i| {
        let p = base.field(field);
        let p = if i.param.is_empty() {
            p
        } else {
            p.key(i.param)
        };
        SpecError::new(p, i.message)
    })
}

/// Checks a network description: known models and rules, valid parameters, existing
/// populations and variables, positive delays of at least one step, selections in range.
/// Returns every problem found, each with the path of the offending value.
pub fn validate(spec: &NetworkSpec, reg: &ModelRegistry) -> Vec<SpecError> {
    let mut errs = Vec::new();
    let dt = spec.dt;
    if !(dt > 0.0 && dt.is_finite()) {
        errs.push(SpecError::new(
            SpecPath(vec![crate::PathSeg::Field("dt")]),
            format!("time step dt = {dt} ms must be positive"),
        ));
        return errs;
    }
    let mut sizes: HashMap<&str, (usize, &str)> = HashMap::new();
    for (k, p) in spec.populations.iter().enumerate() {
        let at = SpecPath::item("populations", k);
        if p.name.is_empty() {
            errs.push(SpecError::new(at.field("name"), "population name is empty"));
        } else if sizes.insert(&p.name, (p.size, &p.model)).is_some() {
            errs.push(SpecError::new(
                at.field("name"),
                format!("population name \"{}\" is used twice", p.name),
            ));
        }
        if p.size == 0 {
            errs.push(SpecError::new(
                at.field("size"),
                format!("population \"{}\" has size 0", p.name),
            ));
        }
        if p.size > u32::MAX as usize {
            errs.push(SpecError::new(
                at.field("size"),
                format!("population size {} exceeds 2^32 - 1", p.size),
            ));
        }
        let Some(entry) = reg.neurons.get(p.model.as_str()) else {
            errs.push(SpecError::new(
                at.field("model"),
                format!(
                    "unknown neuron model \"{}\"; known: {}",
                    p.model,
                    reg.neuron_names()
                ),
            ));
            continue;
        };
        match Params::resolve(entry.parameters, &p.params) {
            Ok(params) => {
                if let Err(i) = (entry.check)(&params, dt) {
                    errs.extend(param_errors(&at, "params", vec![i]));
                }
            }
            Err(issues) => errs.extend(param_errors(&at, "params", issues)),
        }
        for (var, dist) in &p.initial {
            match entry.variable(var) {
                Some((true, _)) => {
                    if let Err(m) = dist.check() {
                        errs.push(SpecError::new(at.field("initial").key(var.clone()), m));
                    }
                }
                Some((false, _)) => errs.push(SpecError::new(
                    at.field("initial").key(var.clone()),
                    format!("\"{var}\" is an integer variable and cannot be drawn"),
                )),
                None => {
                    let known: Vec<&str> = entry.real.iter().map(|v| v.name).collect();
                    errs.push(SpecError::new(
                        at.field("initial").key(var.clone()),
                        format!(
                            "model \"{}\" has no state variable \"{var}\"; known: {}",
                            p.model,
                            known.join(", ")
                        ),
                    ));
                }
            }
        }
    }
    let pop = |name: &str, at: SpecPath, errs: &mut Vec<SpecError>| -> Option<usize> {
        match sizes.get(name) {
            Some((n, _)) => Some(*n),
            None => {
                let mut known: Vec<&str> = sizes.keys().copied().collect();
                known.sort_unstable();
                errs.push(SpecError::new(
                    at,
                    format!("unknown population \"{name}\"; known: {}", known.join(", ")),
                ));
                None
            }
        }
    };
    for (k, j) in spec.projections.iter().enumerate() {
        let at = SpecPath::item("projections", k);
        let ns = pop(&j.source, at.field("source"), &mut errs);
        let nt = pop(&j.target, at.field("target"), &mut errs);
        if let Err(m) = j.weight.check() {
            errs.push(SpecError::new(at.field("weight"), m));
        }
        check_delay(&j.delay, dt, at.field("delay"), &mut errs);
        let Some(rule) = reg.rules.get(j.rule.as_str()) else {
            errs.push(SpecError::new(
                at.field("rule"),
                format!(
                    "unknown connectivity rule \"{}\"; known: {}",
                    j.rule,
                    reg.rule_names()
                ),
            ));
            continue;
        };
        if let Some(pl) = &j.plasticity {
            check_plasticity(pl, j, dt, reg, &at, &mut errs);
        }
        match Params::resolve(rule.parameters, &j.rule_params) {
            Ok(params) => {
                if let (Some(ns), Some(nt)) = (ns, nt) {
                    let ctx = RuleContext {
                        n_source: ns as u32,
                        n_target: nt as u32,
                        same_population: j.source == j.target,
                        autapses: j.autapses,
                        multapses: j.multapses,
                        seed: spec.seed,
                        projection: k as u32,
                    };
                    if let Err(i) = (rule.check)(&params, &ctx) {
                        errs.extend(param_errors(&at, "rule_params", vec![i]));
                    }
                }
            }
            Err(issues) => errs.extend(param_errors(&at, "rule_params", issues)),
        }
    }
    for (k, inp) in spec.inputs.iter().enumerate() {
        let at = SpecPath::item("inputs", k);
        let n = pop(&inp.target, at.field("target"), &mut errs);
        if let Some(n) = n
            && let Err(m) = inp.neurons.resolve(n)
        {
            errs.push(SpecError::new(at.field("neurons"), m));
        }
        let Some(entry) = reg.inputs.get(inp.model.as_str()) else {
            errs.push(SpecError::new(
                at.field("model"),
                format!(
                    "unknown input model \"{}\"; known: {}",
                    inp.model,
                    reg.input_names()
                ),
            ));
            continue;
        };
        match Params::resolve(entry.parameters, &inp.params) {
            Ok(params) => {
                if let Err(i) = (entry.check)(&params, dt) {
                    errs.extend(param_errors(&at, "params", vec![i]));
                }
            }
            Err(issues) => errs.extend(param_errors(&at, "params", issues)),
        }
    }
    let mut labels = HashMap::new();
    for (k, r) in spec.recorders.iter().enumerate() {
        let at = SpecPath::item("recorders", k);
        if labels.insert(r.label(), k).is_some() {
            errs.push(SpecError::new(
                at.clone(),
                format!(
                    "recorder label \"{}\" is used twice; give one a distinct `label`",
                    r.label()
                ),
            ));
        }
        if let RecorderSpec::Weights {
            projection,
            interval,
            targets,
            ..
        } = r
        {
            let names: Vec<String> = spec.projections.iter().map(|p| p.display_name()).collect();
            let found: Vec<usize> = (0..names.len())
                .filter(|&p| &names[p] == projection)
                .collect();
            match found[..] {
                [p] => {
                    if let Some(&(n, _)) = sizes.get(spec.projections[p].target.as_str())
                        && let Err(m) = targets.resolve(n)
                    {
                        errs.push(SpecError::new(at.field("targets"), m));
                    }
                }
                [] => errs.push(SpecError::new(
                    at.field("projection"),
                    format!(
                        "unknown projection \"{projection}\"; known: {}",
                        names.join(", ")
                    ),
                )),
                _ => errs.push(SpecError::new(
                    at.field("projection"),
                    format!(
                        "{} projections are named \"{projection}\" (projections {found:?}); give the recorded one a distinct `name`",
                        found.len()
                    ),
                )),
            }
            check_interval(*interval, dt, at.field("interval"), &mut errs);
            continue;
        }
        let population = r.population().unwrap_or_default();
        let Some(&(n, model)) = sizes.get(population) else {
            pop(population, at.field("population"), &mut errs);
            continue;
        };
        if let Err(m) = r.neurons().resolve(n) {
            errs.push(SpecError::new(at.field("neurons"), m));
        }
        if let RecorderSpec::State {
            variable, interval, ..
        } = r
        {
            if let Some(entry) = reg.neurons.get(model)
                && entry.variable(variable).is_none()
            {
                let known: Vec<&str> = entry.real.iter().chain(entry.int).map(|v| v.name).collect();
                errs.push(SpecError::new(
                    at.field("variable"),
                    format!(
                        "model \"{model}\" has no state variable \"{variable}\"; known: {}",
                        known.join(", ")
                    ),
                ));
            }
            check_interval(*interval, dt, at.field("interval"), &mut errs);
        }
    }
    errs
}

/// Checks a sampling interval [ms]: a positive multiple of `dt`.
fn check_interval(interval: f64, dt: f64, at: SpecPath, errs: &mut Vec<SpecError>) {
    let steps = interval / dt;
    if !(steps >= 1.0 - 1e-9) || (steps - steps.round()).abs() > 1e-6 {
        errs.push(SpecError::new(
            at,
            format!("sampling interval {interval} ms must be a positive multiple of dt = {dt} ms"),
        ));
    }
}

/// Checks a projection's plasticity: a known rule, valid parameters, and weights the rule
/// can work with.
fn check_plasticity(
    pl: &crate::network::PlasticitySpec,
    j: &crate::network::ProjectionSpec,
    dt: f64,
    reg: &ModelRegistry,
    at: &SpecPath,
    errs: &mut Vec<SpecError>,
) {
    let at_pl = at.field("plasticity");
    let Some(entry) = reg.plasticity.get(pl.model.as_str()) else {
        errs.push(SpecError::new(
            at_pl.field("model"),
            format!(
                "unknown plasticity rule \"{}\"; known: {}",
                pl.model,
                reg.plasticity_names()
            ),
        ));
        return;
    };
    match Params::resolve(entry.parameters, &pl.params) {
        Ok(params) => match (entry.check)(&params, dt) {
            Ok(()) => {
                if j.weight.check().is_ok()
                    && let Err(m) = (entry.check_weights)(
                        &params,
                        dt,
                        j.weight.lower_bound(),
                        j.weight.upper_bound(),
                    )
                {
                    errs.push(SpecError::new(
                        at.field("weight"),
                        format!("plasticity rule \"{}\": {m}", pl.model),
                    ));
                }
            }
            Err(i) => errs.extend(param_errors(&at_pl, "params", vec![i])),
        },
        Err(issues) => errs.extend(param_errors(&at_pl, "params", issues)),
    }
}

fn check_delay(d: &crate::network::Dist, dt: f64, at: SpecPath, errs: &mut Vec<SpecError>) {
    if let Err(m) = d.check() {
        errs.push(SpecError::new(at, m));
        return;
    }
    let lo = d.lower_bound();
    if lo <= 0.0 {
        let what = if lo == f64::NEG_INFINITY {
            "can draw negative delays (use NormalRedraw with a min of at least dt/2)".to_string()
        } else {
            format!("allows a delay of {lo} ms, but delays must be positive")
        };
        errs.push(SpecError::new(at, format!("delay distribution {what}")));
    } else if lo < dt / 2.0 * (1.0 - 1e-9) {
        errs.push(SpecError::new(at, format!("delay {lo} ms is shorter than half a time step (dt = {dt} ms) and would round to zero steps")));
    } else if practical_max(d) / dt > f64::from(u16::MAX) {
        errs.push(SpecError::new(
            at,
            format!(
                "delays up to {} ms exceed the longest delay of {} steps",
                practical_max(d),
                u16::MAX
            ),
        ));
    } else {
        debug_assert!(delay_steps(lo, dt) >= 1);
    }
}

/// The largest value a distribution produces in practice: its upper bound, or for an
/// unbounded normal the mean plus 10 standard deviations (probability below 1e-23).
fn practical_max(d: &crate::network::Dist) -> f64 {
    use crate::network::Dist;
    match *d {
        Dist::Normal { mean, std }
        | Dist::NormalRedraw {
            mean,
            std,
            max: f64::INFINITY,
            ..
        } => mean + 10.0 * std,
        _ => d.upper_bound(),
    }
}

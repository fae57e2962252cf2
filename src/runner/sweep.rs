//! Sweep files: a base scene, a grid over scene parameters and a list of seeds, expanded
//! into one scene per job. Schema: `docs/checkpoints.md` ("Batch runs").

use std::path::{Path, PathBuf};

use myelin_engine::{Dist, ModelRegistry, ParamValue};
use myelin_io::{Scene, parse_scene, sha256_hex};
use serde::Deserialize;

/// A sweep file.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename = "Sweep", deny_unknown_fields)]
pub struct Sweep {
    /// The base scene (relative to the sweep file's folder).
    pub scene: String,
    /// Output folder of the batch (default `out/SWEEP_STEM`).
    #[serde(default)]
    pub out: Option<String>,
    /// The grid: every combination of the parameters' values is one job per seed.
    #[serde(default)]
    pub grid: Vec<GridParam>,
    /// Seeds; each grid point runs once per seed (default: the scene's seed).
    #[serde(default)]
    pub seeds: Vec<u64>,
    /// Simulated time between checkpoints of each job [ms] (default: a tenth of its
    /// duration).
    #[serde(default)]
    pub checkpoint_every: Option<f64>,
    /// Checkpoints kept per job.
    #[serde(default)]
    pub keep: Option<usize>,
    /// Threads per job (default 1).
    #[serde(default)]
    pub threads: Option<usize>,
}

/// One axis of the grid: a path into the scene (or several, set together) and its values.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename = "Param", deny_unknown_fields)]
pub struct GridParam {
    /// Where in the scene, e.g. `populations["E"].params["tau_m"]`.
    #[serde(default)]
    pub path: Option<String>,
    /// Several places that take the same value (instead of `path`), e.g. the rates of
    /// the inputs to E and to I.
    #[serde(default)]
    pub paths: Vec<String>,
    /// The values, one job each.
    pub values: Vec<ParamValue>,
}

impl GridParam {
    /// Every path of the axis.
    pub fn all_paths(&self) -> Vec<&str> {
        self.path
            .iter()
            .map(String::as_str)
            .chain(self.paths.iter().map(String::as_str))
            .collect()
    }

    /// The axis' name: its path, or its paths joined by ` & `.
    pub fn label(&self) -> String {
        self.all_paths().join(" & ")
    }
}

/// One expanded job.
#[derive(Clone, Debug)]
pub struct Job {
    /// Index in the expansion.
    pub id: usize,
    /// Its name and folder name, `job-0003`.
    pub name: String,
    /// `(path, value)` of every grid parameter.
    pub params: Vec<(String, String)>,
    /// Its seed.
    pub seed: u64,
    /// The job's scene text.
    pub source: String,
    /// Hex SHA-256 of it.
    pub hash: String,
    /// Its duration [ms].
    pub duration: f64,
}

/// Checkpoints per job when the sweep gives no interval.
const DEFAULT_CHECKPOINTS_PER_JOB: f64 = 10.0;

/// A loaded sweep: its file, its base scene file and its jobs.
#[derive(Clone, Debug)]
pub struct Expanded {
    /// The sweep.
    pub sweep: Sweep,
    /// The sweep file.
    pub file: PathBuf,
    /// The base scene file.
    pub base: PathBuf,
    /// The jobs, grid order (the first parameter varies slowest), seeds innermost.
    pub jobs: Vec<Job>,
}

impl Expanded {
    /// The checkpoint interval of a job [ms].
    pub fn checkpoint_every(&self, job: &Job) -> f64 {
        self.sweep
            .checkpoint_every
            .unwrap_or(job.duration / DEFAULT_CHECKPOINTS_PER_JOB)
    }

    /// Digest of the job list (names and scene hashes): a batch folder belongs to it.
    pub fn jobs_hash(&self) -> String {
        let text: String = self
            .jobs
            .iter()
            .map(|j| format!("{} {}\n", j.name, j.hash))
            .collect();
        sha256_hex(&text)
    }
}

/// Whether `text` is a sweep file (its top-level struct is named `Sweep`).
pub fn is_sweep(text: &str) -> bool {
    let mut rest = text.trim_start();
    loop {
        if let Some(r) = rest.strip_prefix("//") {
            rest = r
                .split_once('\n')
                .map_or("", |(_, after)| after)
                .trim_start();
        } else if let Some(r) = rest.strip_prefix("/*") {
            rest = r
                .split_once("*/")
                .map_or("", |(_, after)| after)
                .trim_start();
        } else {
            break;
        }
    }
    rest.strip_prefix("Sweep")
        .is_some_and(|r| r.trim_start().starts_with('('))
}

/// Checks every job scene of a sweep against the models of `registry`; the error lists
/// each problem as `SWEEP: JOB (PARAMETERS): PATH: MESSAGE`.
pub fn validate(exp: &Expanded, registry: &ModelRegistry) -> Result<(), String> {
    let mut problems = Vec::new();
    for job in &exp.jobs {
        let scene = parse_scene(&exp.base, &job.source).map_err(|e| e.to_string())?;
        let params: Vec<String> = job
            .params
            .iter()
            .map(|(p, v)| format!("{p} = {v}"))
            .chain(std::iter::once(format!("seed = {}", job.seed)))
            .collect();
        for e in myelin_engine::validate(&scene.network(), registry) {
            problems.push(format!(
                "{}: {} ({}): {e}",
                exp.file.display(),
                job.name,
                params.join(", ")
            ));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("\n"))
    }
}

/// Reads a sweep file and expands it into jobs; errors name the file and what is wrong.
pub fn load(file: &Path) -> Result<Expanded, String> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| format!("{}: cannot read the sweep file: {e}", file.display()))?;
    let opts =
        ron::Options::default().with_default_extension(ron::extensions::Extensions::IMPLICIT_SOME);
    let sweep: Sweep = opts.from_str(&text).map_err(|e| {
        format!(
            "{}:{}:{}: {}",
            file.display(),
            e.span.start.line,
            e.span.start.col,
            e.code
        )
    })?;
    let dir = file.parent().unwrap_or(Path::new(""));
    let base = dir.join(&sweep.scene);
    let base_text = std::fs::read_to_string(&base).map_err(|e| {
        format!(
            "{}: scene {}: cannot read it: {e}",
            file.display(),
            base.display()
        )
    })?;
    let mut scene = parse_scene(&base, &base_text).map_err(|e| e.to_string())?;
    absolutize_warm_starts(&mut scene, base.parent().unwrap_or(Path::new("")));
    let axes: Vec<(Vec<Vec<Seg>>, &GridParam)> = sweep
        .grid
        .iter()
        .enumerate()
        .map(|(k, g)| axis(file, k, g).map(|p| (p, g)))
        .collect::<Result<_, _>>()?;
    let seeds = if sweep.seeds.is_empty() {
        vec![scene.seed]
    } else {
        sweep.seeds.clone()
    };
    let mut jobs = Vec::new();
    for point in grid_points(&axes.iter().map(|(_, g)| g.values.len()).collect::<Vec<_>>()) {
        let mut s = scene.clone();
        let mut params = Vec::new();
        for ((paths, g), &i) in axes.iter().zip(&point) {
            let v = &g.values[i];
            for (path, text) in paths.iter().zip(g.all_paths()) {
                apply(&mut s, path, v)
                    .map_err(|m| format!("{}: grid path {text:?}: {m}", file.display()))?;
            }
            params.push((g.label(), value_text(v)));
        }
        for &seed in &seeds {
            let mut js = s.clone();
            js.seed = seed;
            let id = jobs.len();
            let source = to_ron(&js, &base)?;
            jobs.push(Job {
                id,
                name: format!("job-{id:04}"),
                params: params.clone(),
                seed,
                hash: sha256_hex(&source),
                source,
                duration: js.duration,
            });
        }
    }
    Ok(Expanded {
        sweep,
        file: file.to_path_buf(),
        base,
        jobs,
    })
}

/// The parsed paths of grid axis `k`, checked: one `path` or a list of `paths`, and at
/// least one value.
fn axis(file: &Path, k: usize, g: &GridParam) -> Result<Vec<Vec<Seg>>, String> {
    let at = format!("{}: grid[{k}]", file.display());
    let paths = g.all_paths();
    if paths.is_empty() {
        return Err(format!("{at}: give `path` or `paths`"));
    }
    if g.values.is_empty() {
        return Err(format!("{at} ({}): no values", g.label()));
    }
    paths
        .iter()
        .map(|p| parse_path(p).map_err(|m| format!("{at}: path {p:?}: {m}")))
        .collect()
}

/// Every combination of indices into axes of the given lengths, the first slowest.
fn grid_points(lens: &[usize]) -> Vec<Vec<usize>> {
    let mut out = vec![Vec::new()];
    for &n in lens {
        out = out
            .into_iter()
            .flat_map(|p| {
                (0..n).map(move |i| {
                    let mut q = p.clone();
                    q.push(i);
                    q
                })
            })
            .collect();
    }
    out
}

/// A job scene as RON text, checked to parse back to the same scene.
fn to_ron(scene: &Scene, base: &Path) -> Result<String, String> {
    let config = ron::ser::PrettyConfig::new().struct_names(true);
    let text = ron::ser::to_string_pretty(scene, config)
        .map_err(|e| format!("cannot write a job scene of {} as RON: {e}", base.display()))?;
    let header = format!(
        "// A job of a Myelin batch, expanded from {}.\n",
        base.display()
    );
    let text = header + &text + "\n";
    parse_scene(base, &text).map_err(|e| format!("a job scene does not parse back: {e}"))?;
    Ok(text)
}

/// Makes the warm-start checkpoint paths of `scene` absolute (they are relative to the
/// base scene's folder, and job scenes live elsewhere).
fn absolutize_warm_starts(scene: &mut Scene, dir: &Path) {
    for p in &mut scene.projections {
        if let Some(ws) = &mut p.warm_start {
            let path = dir.join(&ws.checkpoint);
            let abs = std::fs::canonicalize(&path).unwrap_or(path);
            ws.checkpoint = abs.display().to_string();
        }
    }
}

fn value_text(v: &ParamValue) -> String {
    match v {
        ParamValue::Number(x) => format!("{x}"),
        ParamValue::List(l) => format!("{l:?}"),
        ParamValue::Lists(l) => format!("{l:?}"),
    }
}

/// One segment of a sweep path.
#[derive(Clone, Debug, PartialEq)]
pub enum Seg {
    /// `.name` (or the leading name).
    Field(String),
    /// `["key"]`.
    Key(String),
    /// `[3]`.
    Index(usize),
}

/// Parses `populations["E"].params["tau_m"]` into segments.
pub fn parse_path(path: &str) -> Result<Vec<Seg>, String> {
    let c: Vec<char> = path.chars().collect();
    let mut i = 0;
    let mut out = Vec::new();
    let ident = |i: &mut usize| {
        let start = *i;
        while *i < c.len() && (c[*i].is_alphanumeric() || c[*i] == '_') {
            *i += 1;
        }
        c[start..*i].iter().collect::<String>()
    };
    while i < c.len() {
        match c[i] {
            '.' if !out.is_empty() => {
                i += 1;
                let name = ident(&mut i);
                if name.is_empty() {
                    return Err(format!("a name must follow '.' at character {i}"));
                }
                out.push(Seg::Field(name));
            }
            '[' => {
                i += 1;
                if c.get(i) == Some(&'"') {
                    i += 1;
                    let start = i;
                    while i < c.len() && c[i] != '"' {
                        i += 1;
                    }
                    out.push(Seg::Key(c[start..i].iter().collect()));
                    i += 1;
                } else {
                    let digits = ident(&mut i);
                    let k = digits
                        .parse::<usize>()
                        .map_err(|_| format!("[{digits}] is neither an index nor a \"key\""))?;
                    out.push(Seg::Index(k));
                }
                if c.get(i) != Some(&']') {
                    return Err(format!("expected ']' at character {}", i + 1));
                }
                i += 1;
            }
            ch if out.is_empty() && (ch.is_alphabetic() || ch == '_') => {
                out.push(Seg::Field(ident(&mut i)));
            }
            ch => return Err(format!("unexpected '{ch}' at character {}", i + 1)),
        }
    }
    if out.is_empty() {
        return Err("empty path".into());
    }
    Ok(out)
}

/// The name of a field segment.
fn field(s: &Seg) -> Option<&str> {
    match s {
        Seg::Field(f) => Some(f.as_str()),
        _ => None,
    }
}

/// Sets the value at `path` in `scene`.
pub fn apply(scene: &mut Scene, path: &[Seg], v: &ParamValue) -> Result<(), String> {
    match path {
        [Seg::Field(f)] if f == "duration" => {
            let x = number(v)?;
            if !(x > 0.0 && x.is_finite()) {
                return Err(format!("duration {x} ms must be positive"));
            }
            scene.duration = x;
            Ok(())
        }
        [Seg::Field(f)] if f == "seed" => Err("seeds are swept with the `seeds` list".into()),
        [Seg::Field(f), sel, rest @ ..] if f == "populations" => {
            let names: Vec<String> = scene.populations.iter().map(|p| p.name.clone()).collect();
            let k = select(sel, &names, "population")?;
            let p = &mut scene.populations[k];
            match rest {
                [Seg::Field(f)] if f == "size" => {
                    let x = number(v)?;
                    if !(x >= 1.0 && x.fract() == 0.0) {
                        return Err(format!("size {x} must be a positive integer"));
                    }
                    p.size = x as usize;
                    Ok(())
                }
                [Seg::Field(f), Seg::Key(key)] if f == "params" => {
                    p.params.insert(key.clone(), v.clone());
                    Ok(())
                }
                [Seg::Field(f), Seg::Key(key), more @ ..] if f == "initial" => {
                    let d = p.initial.entry(key.clone()).or_insert(Dist::Constant(0.0));
                    set_dist(d, more.first().and_then(field), number(v)?)
                }
                _ => Err("after populations[..] use .size, .params[\"P\"] or .initial[\"V\"]".into()),
            }
        }
        [Seg::Field(f), sel, rest @ ..] if f == "projections" => {
            let names: Vec<String> = scene
                .projections
                .iter()
                .map(|j| {
                    j.name
                        .clone()
                        .unwrap_or_else(|| format!("{}->{}", j.source, j.target))
                })
                .collect();
            let k = select(sel, &names, "projection")?;
            let j = &mut scene.projections[k];
            match rest {
                [Seg::Field(f), more @ ..] if f == "weight" => {
                    set_dist(&mut j.weight, more.first().and_then(field), number(v)?)
                }
                [Seg::Field(f), more @ ..] if f == "delay" => {
                    set_dist(&mut j.delay, more.first().and_then(field), number(v)?)
                }
                [Seg::Field(f), Seg::Key(key)] if f == "rule_params" => {
                    j.rule_params.insert(key.clone(), v.clone());
                    Ok(())
                }
                _ => Err(
                    "after projections[..] use .weight, .delay (optionally .mean, .std, .low, .high, .min, .max) or .rule_params[\"P\"]"
                        .into(),
                ),
            }
        }
        [Seg::Field(f), sel, Seg::Field(g), Seg::Key(key)] if f == "inputs" && g == "params" => {
            let names: Vec<String> = scene
                .inputs
                .iter()
                .map(|i| format!("{}->{}", i.model, i.target))
                .collect();
            let k = select(sel, &names, "input")?;
            scene.inputs[k].params.insert(key.clone(), v.clone());
            Ok(())
        }
        _ => Err(
            "supported paths: duration, populations[..].size|params[\"P\"]|initial[\"V\"], projections[..].weight|delay|rule_params[\"P\"], inputs[..].params[\"P\"]"
                .into(),
        ),
    }
}

/// The index an element selector picks: `[k]` or `["name"]`.
fn select(sel: &Seg, names: &[String], what: &str) -> Result<usize, String> {
    match sel {
        Seg::Index(k) if *k < names.len() => Ok(*k),
        Seg::Index(k) => Err(format!(
            "{what} index {k} is out of range (the scene has {})",
            names.len()
        )),
        Seg::Key(name) => names
            .iter()
            .position(|n| n == name)
            .ok_or_else(|| format!("no {what} named \"{name}\"; known: {}", names.join(", "))),
        Seg::Field(f) => Err(format!("expected [index] or [\"name\"] after .{f}")),
    }
}

fn number(v: &ParamValue) -> Result<f64, String> {
    match v {
        ParamValue::Number(x) => Ok(*x),
        other => Err(format!("expected a number, got {}", value_text(other))),
    }
}

/// Sets a distribution to `Constant(x)` (no field) or one of its fields.
fn set_dist(d: &mut Dist, field: Option<&str>, x: f64) -> Result<(), String> {
    let slot = match (field, &mut *d) {
        (None, _) => {
            *d = Dist::Constant(x);
            return Ok(());
        }
        (Some("low"), Dist::Uniform { low, .. }) => low,
        (Some("high"), Dist::Uniform { high, .. }) => high,
        (Some("mean"), Dist::Normal { mean, .. } | Dist::NormalRedraw { mean, .. }) => mean,
        (Some("std"), Dist::Normal { std, .. } | Dist::NormalRedraw { std, .. }) => std,
        (Some("min"), Dist::NormalRedraw { min, .. }) => min,
        (Some("max"), Dist::NormalRedraw { max, .. }) => max,
        (Some(f), other) => return Err(format!("field .{f} does not apply to {other:?}")),
    };
    *slot = x;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = r#"Scene(
    dt: 0.1, duration: 100.0, seed: 1,
    populations: [
        Population(name: "E", size: 10, model: "iaf_psc_exp", params: { "tau_m": 10.0 }),
        Population(name: "I", size: 5, model: "iaf_psc_exp"),
    ],
    projections: [
        Projection(source: "E", target: "I", rule: "pairwise_bernoulli", rule_params: { "p": 0.5 },
                   weight: NormalRedraw(mean: 1.0, std: 0.5, min: 0.0), delay: Constant(1.0)),
    ],
    inputs: [ Input(model: "dc_generator", target: "E", params: { "amplitude": 300.0 }) ],
)"#;

    fn base() -> Scene {
        parse_scene(Path::new("base.ron"), BASE).unwrap()
    }

    #[test]
    fn paths_parse_into_segments() {
        assert_eq!(
            parse_path(r#"populations["E"].params["tau_m"]"#).unwrap(),
            vec![
                Seg::Field("populations".into()),
                Seg::Key("E".into()),
                Seg::Field("params".into()),
                Seg::Key("tau_m".into())
            ]
        );
        assert_eq!(
            parse_path("projections[0].weight.mean").unwrap(),
            vec![
                Seg::Field("projections".into()),
                Seg::Index(0),
                Seg::Field("weight".into()),
                Seg::Field("mean".into())
            ]
        );
        assert!(parse_path("populations[E]").is_err());
        assert!(parse_path("populations[\"E\"").is_err());
        assert!(parse_path("").is_err());
    }

    #[test]
    fn values_land_where_the_path_says() {
        let mut s = base();
        let n = ParamValue::Number;
        let set = |s: &mut Scene, p: &str, v: ParamValue| apply(s, &parse_path(p).unwrap(), &v);
        set(&mut s, r#"populations["E"].params["tau_m"]"#, n(20.0)).unwrap();
        set(&mut s, "populations[1].size", n(7.0)).unwrap();
        set(&mut s, r#"projections["E->I"].weight.std"#, n(0.25)).unwrap();
        set(&mut s, "projections[0].delay", n(2.0)).unwrap();
        set(&mut s, r#"projections[0].rule_params["p"]"#, n(0.1)).unwrap();
        set(&mut s, r#"inputs[0].params["amplitude"]"#, n(400.0)).unwrap();
        set(&mut s, "duration", n(50.0)).unwrap();
        assert_eq!(s.populations[0].params["tau_m"], n(20.0));
        assert_eq!(s.populations[1].size, 7);
        assert!(matches!(s.projections[0].weight, Dist::NormalRedraw { std, .. } if std == 0.25));
        assert_eq!(s.projections[0].delay, Dist::Constant(2.0));
        assert_eq!(s.inputs[0].params["amplitude"], n(400.0));
        assert_eq!(s.duration, 50.0);
        let err = set(&mut s, "projections[0].weight.low", n(1.0)).unwrap_err();
        assert!(err.contains(".low does not apply"), "{err}");
        let err = set(&mut s, "populations[0].size", n(2.5)).unwrap_err();
        assert!(err.contains("positive integer"), "{err}");
        let err = set(&mut s, "seed", n(2.0)).unwrap_err();
        assert!(err.contains("`seeds` list"), "{err}");
    }

    #[test]
    fn a_sweep_expands_into_jobs_whose_scenes_parse_back() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("base.ron"), BASE).unwrap();
        let sweep = dir.path().join("sweep.ron");
        std::fs::write(
            &sweep,
            r#"// comment first
Sweep(scene: "base.ron",
      grid: [Param(path: "populations[\"E\"].params[\"tau_m\"]", values: [5.0, 15.0, 25.0]),
             Param(path: "projections[0].weight", values: [1.0, 2.0])],
      seeds: [7, 8])"#,
        )
        .unwrap();
        assert!(is_sweep(&std::fs::read_to_string(&sweep).unwrap()));
        assert!(!is_sweep(BASE));
        let exp = load(&sweep).unwrap();
        assert_eq!(exp.jobs.len(), 3 * 2 * 2);
        let j = &exp.jobs[5];
        assert_eq!(j.name, "job-0005");
        assert_eq!(j.seed, 8);
        assert_eq!(j.params[0].1, "15");
        assert_eq!(j.params[1].1, "1");
        let scene = parse_scene(Path::new("job.ron"), &j.source).unwrap();
        assert_eq!(
            scene.populations[0].params["tau_m"],
            ParamValue::Number(15.0)
        );
        assert!(matches!(scene.projections[0].weight, Dist::Constant(w) if w == 1.0));
        let first = parse_scene(Path::new("job.ron"), &exp.jobs[0].source).unwrap();
        assert_eq!(first.seed, 7);
        assert_eq!(exp.checkpoint_every(j), 10.0);
        assert_eq!(exp.jobs_hash(), load(&sweep).unwrap().jobs_hash());
    }

    #[test]
    fn infinite_values_survive_the_ron_round_trip() {
        let mut s = base();
        s.projections[0].weight = Dist::NormalRedraw {
            mean: 1.0,
            std: 0.5,
            min: f64::NEG_INFINITY,
            max: f64::INFINITY,
        };
        let text = to_ron(&s, Path::new("base.ron")).unwrap();
        let back = parse_scene(Path::new("job.ron"), &text).unwrap();
        assert_eq!(back.projections[0].weight, s.projections[0].weight);
    }
}

//! Suite files (RON): which scenes to benchmark, at which scales, threads, ranks and
//! backends, how often and for how long. A suite expands into [`Case`]s, one per
//! combination. Format: `docs/benchmarking.md`; examples: `benches/suites/`.

use std::path::{Path, PathBuf};

use myelin_engine::ParamValue;
use myelin_io::Scene;
use serde::{Deserialize, Serialize};

use super::BenchError;

/// Folder of the suites shipped with Myelin, relative to the repository root.
pub const SUITES_DIR: &str = "benches/suites";

/// Repeats of a case when neither the suite nor the case says.
pub const DEFAULT_REPEATS: usize = 3;

/// A suite file.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename = "Suite", deny_unknown_fields)]
pub struct Suite {
    /// The suite's name (names its store file).
    pub name: String,
    /// What the suite is for.
    #[serde(default)]
    pub description: Option<String>,
    /// Repeats of every case (a case may override).
    #[serde(default)]
    pub repeats: Option<usize>,
    /// The cases.
    pub cases: Vec<CaseSpec>,
}

/// One scene of a suite and the axes it is run over.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename = "Case", deny_unknown_fields)]
pub struct CaseSpec {
    /// The case's name (unique in the suite).
    pub name: String,
    /// The scene file, relative to the suite file's folder.
    pub scene: String,
    /// Simulated time \[ms\] (default: the scene's).
    #[serde(default)]
    pub duration: Option<f64>,
    /// Seed (default: the scene's).
    #[serde(default)]
    pub seed: Option<u64>,
    /// Scale factors (default `[1.0]`); see [`scale_scene`].
    #[serde(default)]
    pub scales: Vec<f64>,
    /// Worker thread counts (default `[1]`).
    #[serde(default)]
    pub threads: Vec<usize>,
    /// MPI rank counts (default `[1]`).
    #[serde(default)]
    pub ranks: Vec<usize>,
    /// Backends (default `["cpu"]`).
    #[serde(default)]
    pub backends: Vec<String>,
    /// Repeats (default: the suite's).
    #[serde(default)]
    pub repeats: Option<usize>,
    /// Peers that run this case when asked for (default: every peer asked for); `[]`
    /// keeps peers off it (e.g. a model NEST lacks).
    #[serde(default)]
    pub peers: Option<Vec<String>>,
    /// Thread counts for the peers (default: `threads`). NEST caps connections per thread,
    /// so large networks need more NEST threads than cores.
    #[serde(default)]
    pub peer_threads: Option<Vec<usize>>,
    /// Options passed on to the peers' runner (e.g. `["--hpc"]`: NEST's `_hpc` synapse
    /// models, as NEST's own HPC benchmark uses them).
    #[serde(default)]
    pub peer_args: Vec<String>,
}

/// One concrete case: a scene with one scale, thread count, rank count and backend.
#[derive(Clone, Debug, PartialEq)]
pub struct Case {
    /// The case's name.
    pub name: String,
    /// The scene file as the suite names it.
    pub scene_ref: String,
    /// The scene file, resolved.
    pub scene: PathBuf,
    /// Simulated time \[ms\] overriding the scene's.
    pub duration: Option<f64>,
    /// Seed overriding the scene's.
    pub seed: Option<u64>,
    /// Scale factor.
    pub scale: f64,
    /// Worker threads.
    pub threads: usize,
    /// MPI ranks.
    pub ranks: usize,
    /// Backend.
    pub backend: String,
    /// Repeats (before command-line overrides).
    pub repeats: usize,
    /// Which simulator runs it: [`super::record::MYELIN`] or a peer's name.
    pub simulator: String,
    /// Options for the peer's runner (empty for Myelin).
    pub peer_args: Vec<String>,
}

impl Case {
    /// A short label: `NAME/SIMULATOR/sSCALE/tTHREADS/rRANKS/BACKEND`.
    pub fn label(&self) -> String {
        format!(
            "{}/{}/s{}/t{}/r{}/{}",
            self.name,
            self.simulator,
            super::record::number_text(self.scale),
            self.threads,
            self.ranks,
            self.backend
        )
    }
}

/// A loaded suite: its file and its definition.
#[derive(Clone, Debug)]
pub struct LoadedSuite {
    /// The suite file.
    pub file: PathBuf,
    /// Its definition.
    pub suite: Suite,
}

/// Finds a suite by name or path: an existing file, else `benches/suites/NAME.ron` under
/// the current folder, else under the repository Myelin was built from.
pub fn find(name: &str) -> Result<PathBuf, BenchError> {
    let direct = PathBuf::from(name);
    if direct.is_file() {
        return Ok(direct);
    }
    let file = format!("{name}.ron");
    let candidates = [
        Path::new(SUITES_DIR).join(&file),
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join(SUITES_DIR)
            .join(&file),
    ];
    for c in &candidates {
        if c.is_file() {
            return Ok(c.clone());
        }
    }
    Err(BenchError::NoSuite {
        name: name.to_string(),
        searched: candidates.iter().map(|c| c.display().to_string()).collect(),
    })
}

impl LoadedSuite {
    /// Reads and checks a suite file.
    pub fn load(file: &Path) -> Result<Self, BenchError> {
        let text = std::fs::read_to_string(file).map_err(|source| BenchError::Read {
            path: file.to_path_buf(),
            source,
        })?;
        let opts = ron::Options::default()
            .with_default_extension(ron::extensions::Extensions::IMPLICIT_SOME);
        let suite: Suite = opts.from_str(&text).map_err(|e| BenchError::SuiteSyntax {
            file: file.to_path_buf(),
            line: e.span.start.line,
            col: e.span.start.col,
            message: e.code.to_string(),
        })?;
        let loaded = Self {
            file: file.to_path_buf(),
            suite,
        };
        loaded.check()?;
        Ok(loaded)
    }

    fn err(&self, message: String) -> BenchError {
        BenchError::Suite {
            file: self.file.clone(),
            message,
        }
    }

    /// Checks names, axes and scene files.
    fn check(&self) -> Result<(), BenchError> {
        let s = &self.suite;
        if s.name.is_empty()
            || !s
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Err(self.err(format!(
                "suite name {:?} must be non-empty letters, digits, '_' or '-' (it names the store file)",
                s.name
            )));
        }
        if s.cases.is_empty() {
            return Err(self.err("the suite has no cases".into()));
        }
        if s.repeats == Some(0) {
            return Err(self.err("repeats must be at least 1".into()));
        }
        for (i, c) in s.cases.iter().enumerate() {
            let at = format!("cases[{i}] ({:?})", c.name);
            if s.cases[..i].iter().any(|d| d.name == c.name) {
                return Err(self.err(format!("{at}: the name is used twice")));
            }
            if let Some(d) = c.duration
                && !(d > 0.0 && d.is_finite())
            {
                return Err(self.err(format!("{at}: duration {d} ms must be positive")));
            }
            if c.scales.iter().any(|&x| !(x > 0.0 && x.is_finite())) {
                return Err(self.err(format!("{at}: scales must be positive")));
            }
            let zero = |v: &[usize]| v.contains(&0);
            if zero(&c.threads)
                || zero(&c.ranks)
                || c.peer_threads.as_deref().is_some_and(zero)
                || c.repeats == Some(0)
            {
                return Err(self.err(format!(
                    "{at}: threads, ranks, peer_threads and repeats must be at least 1"
                )));
            }
            let scene = self.scene_path(c);
            if !scene.is_file() {
                return Err(self.err(format!("{at}: scene {} is not a file", scene.display())));
            }
        }
        Ok(())
    }

    /// A case's scene file, resolved against the suite file's folder.
    pub fn scene_path(&self, c: &CaseSpec) -> PathBuf {
        self.file.parent().unwrap_or(Path::new("")).join(&c.scene)
    }

    /// The cases Myelin runs (names filtered by `only` when not empty), in suite order,
    /// the axes varying scales slowest, then ranks, threads and backends.
    pub fn cases(&self, only: &[String]) -> Vec<Case> {
        self.expand(only, super::record::MYELIN, |c| Some(or(&c.threads, 1)))
    }

    /// The cases a peer runs: those that do not exclude it, with `peer_threads`.
    pub fn peer_cases(&self, peer: &str, only: &[String]) -> Vec<Case> {
        self.expand(only, peer, |c| match &c.peers {
            Some(p) if !p.iter().any(|x| x == peer) => None,
            _ => Some(c.peer_threads.clone().unwrap_or_else(|| or(&c.threads, 1))),
        })
    }

    fn expand(
        &self,
        only: &[String],
        simulator: &str,
        threads: impl Fn(&CaseSpec) -> Option<Vec<usize>>,
    ) -> Vec<Case> {
        let mut out = Vec::new();
        for c in &self.suite.cases {
            if !only.is_empty() && !only.contains(&c.name) {
                continue;
            }
            let Some(threads) = threads(c) else { continue };
            let scales = if c.scales.is_empty() {
                vec![1.0]
            } else {
                c.scales.clone()
            };
            let backends = if c.backends.is_empty() {
                vec!["cpu".to_string()]
            } else {
                c.backends.clone()
            };
            for &scale in &scales {
                for &ranks in &or(&c.ranks, 1) {
                    for &t in &threads {
                        for b in &backends {
                            out.push(Case {
                                name: c.name.clone(),
                                scene_ref: c.scene.clone(),
                                scene: self.scene_path(c),
                                duration: c.duration,
                                seed: c.seed,
                                scale,
                                threads: t,
                                ranks,
                                backend: b.clone(),
                                repeats: c
                                    .repeats
                                    .or(self.suite.repeats)
                                    .unwrap_or(DEFAULT_REPEATS),
                                simulator: simulator.to_string(),
                                peer_args: if simulator == super::record::MYELIN {
                                    Vec::new()
                                } else {
                                    c.peer_args.clone()
                                },
                            });
                        }
                    }
                }
            }
        }
        out
    }
}

fn or(v: &[usize], default: usize) -> Vec<usize> {
    if v.is_empty() {
        vec![default]
    } else {
        v.to_vec()
    }
}

/// Scales a scene by `s` for weak-scaling studies with a constant in-degree (the
/// convention of the HPC benchmark): every population size is multiplied by `s` (rounded,
/// at least 1); `fixed_indegree`'s in-degree and `fixed_outdegree`'s out-degree are kept;
/// `pairwise_bernoulli`'s `p` is divided by `s` (at most 1) and `fixed_total_number`'s `N`
/// multiplied by `s`, so that each neuron keeps its expected number of synapses. Weights,
/// delays, inputs and neuron selections are unchanged (a selection beyond a shrunk
/// population is reported when the scene is validated).
pub fn scale_scene(scene: &mut Scene, s: f64) {
    if s == 1.0 {
        return;
    }
    for p in &mut scene.populations {
        p.size = ((p.size as f64 * s).round() as usize).max(1);
    }
    for j in &mut scene.projections {
        let scale_param = |params: &mut std::collections::BTreeMap<String, ParamValue>,
                           key: &str,
                           f: &dyn Fn(f64) -> f64| {
            if let Some(ParamValue::Number(x)) = params.get_mut(key) {
                *x = f(*x);
            }
        };
        match j.rule.as_str() {
            "pairwise_bernoulli" => scale_param(&mut j.rule_params, "p", &|p| (p / s).min(1.0)),
            "fixed_total_number" => {
                scale_param(&mut j.rule_params, "N", &|n| (n * s).round().max(1.0))
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_suite(dir: &Path, text: &str) -> PathBuf {
        std::fs::write(
            dir.join("scene.ron"),
            "Scene(dt: 0.1, duration: 10.0, seed: 1, populations: [])",
        )
        .unwrap();
        let f = dir.join("suite.ron");
        std::fs::write(&f, text).unwrap();
        f
    }

    #[test]
    fn a_suite_expands_over_its_axes() {
        let dir = tempfile::tempdir().unwrap();
        let f = write_suite(
            dir.path(),
            r#"Suite(name: "t", repeats: 2, cases: [
                Case(name: "a", scene: "scene.ron", duration: 5.0, scales: [1.0, 0.5], threads: [1, 2]),
                Case(name: "b", scene: "scene.ron", repeats: 4, peers: [], ranks: [1]),
                Case(name: "c", scene: "scene.ron", peer_threads: [4], peer_args: ["--hpc"]),
            ])"#,
        );
        let s = LoadedSuite::load(&f).unwrap();
        let cases = s.cases(&[]);
        assert_eq!(cases.len(), 4 + 1 + 1);
        assert_eq!(cases[1].label(), "a/myelin/s1/t2/r1/cpu");
        assert_eq!(cases[2].scale, 0.5);
        assert_eq!(cases[0].repeats, 2);
        assert_eq!(cases[4].repeats, 4);
        assert_eq!(cases[5].repeats, 2);
        let nest = s.peer_cases("nest", &[]);
        assert_eq!(
            nest.iter().map(Case::label).collect::<Vec<_>>(),
            [
                "a/nest/s1/t1/r1/cpu",
                "a/nest/s1/t2/r1/cpu",
                "a/nest/s0.5/t1/r1/cpu",
                "a/nest/s0.5/t2/r1/cpu",
                "c/nest/s1/t4/r1/cpu"
            ]
        );
        assert_eq!(s.cases(&["c".into()]).len(), 1);
        // Peer options go to the peers only.
        assert_eq!(nest[4].peer_args, ["--hpc"]);
        assert!(nest[0].peer_args.is_empty());
        assert!(cases[5].peer_args.is_empty());
    }

    #[test]
    fn bad_suites_are_refused_with_the_case_named() {
        let dir = tempfile::tempdir().unwrap();
        for (text, needle) in [
            (r#"Suite(name: "t", cases: [])"#, "no cases"),
            (
                r#"Suite(name: "a b", cases: [Case(name: "a", scene: "scene.ron")])"#,
                "suite name",
            ),
            (
                r#"Suite(name: "t", cases: [Case(name: "a", scene: "nope.ron")])"#,
                "cases[0] (\"a\"): scene",
            ),
            (
                r#"Suite(name: "t", cases: [Case(name: "a", scene: "scene.ron", threads: [0])])"#,
                "at least 1",
            ),
            (
                r#"Suite(name: "t", cases: [Case(name: "a", scene: "scene.ron"), Case(name: "a", scene: "scene.ron")])"#,
                "used twice",
            ),
            (
                r#"Suite(name: "t", cases: [Case(name: "a", scene: "scene.ron", speed: 2)])"#,
                "suite.ron:1:",
            ),
        ] {
            let f = write_suite(dir.path(), text);
            let err = LoadedSuite::load(&f).unwrap_err().to_string();
            assert!(err.contains(needle), "{text}: {err}");
        }
    }

    #[test]
    fn scaling_keeps_the_in_degree() {
        let mut scene = myelin_io::parse_scene(
            Path::new("s.ron"),
            r#"Scene(dt: 0.1, duration: 10.0, seed: 1,
                populations: [Population(name: "E", size: 1000, model: "iaf_psc_exp")],
                projections: [
                    Projection(source: "E", target: "E", rule: "fixed_indegree", rule_params: { "indegree": 100 }, weight: Constant(1.0), delay: Constant(1.0)),
                    Projection(source: "E", target: "E", rule: "pairwise_bernoulli", rule_params: { "p": 0.1 }, weight: Constant(1.0), delay: Constant(1.0)),
                    Projection(source: "E", target: "E", rule: "fixed_total_number", rule_params: { "N": 5000 }, weight: Constant(1.0), delay: Constant(1.0)),
                ])"#,
        )
        .unwrap();
        scale_scene(&mut scene, 0.5);
        assert_eq!(scene.populations[0].size, 500);
        let p = |k: usize, key: &str| scene.projections[k].rule_params[key].clone();
        assert_eq!(p(0, "indegree"), ParamValue::Number(100.0));
        assert_eq!(p(1, "p"), ParamValue::Number(0.2));
        assert_eq!(p(2, "N"), ParamValue::Number(2500.0));
    }
}

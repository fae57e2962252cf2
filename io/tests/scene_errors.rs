//! Bad scenes are rejected with messages that name the file, the line and column of the
//! offending value, and the value itself.

use std::path::{Path, PathBuf};

use bevy_ecs::world::EntityWorldMut;
use myelin_components::NeuronBlockMut;
use myelin_engine::rng::Stream;
use myelin_engine::{
    ConnectionRule, InputContext, InputEntry, InputModel, ModelRegistry, NeuronEntry, NeuronModel,
    ParamIssue, ParamSpec, Params, Range, RuleContext, RuleEntry, VarSpec,
};
use myelin_io::{SceneError, load_scene, parse_scene};

/// A leaky neuron that never spikes: enough to validate scenes against.
struct Leaky {
    tau_m: f64,
}

impl NeuronModel for Leaky {
    const NAME: &'static str = "leaky";
    const PARAMETERS: &'static [ParamSpec] = &[ParamSpec::real(
        "tau_m",
        "ms",
        10.0,
        Range::POSITIVE,
        "membrane time constant",
    )];
    const REAL_STATE: &'static [VarSpec] = &[VarSpec {
        name: "V_m",
        unit: "mV",
        doc: "membrane potential",
    }];
    fn new(params: &Params, _dt: f64) -> Result<Self, ParamIssue> {
        Ok(Self {
            tau_m: params.get("tau_m"),
        })
    }
    fn initial(&self, _var: usize) -> f64 {
        -70.0
    }
    fn update(
        &self,
        block: &mut NeuronBlockMut<'_>,
        _: &[f32],
        _: &[f32],
        _: &[f32],
        _: &mut Vec<u32>,
    ) {
        let decay = (-0.1 / self.tau_m).exp() as f32;
        for v in block.real[0].iter_mut() {
            *v *= decay;
        }
    }
}

struct Poisson;

impl InputModel for Poisson {
    const NAME: &'static str = "poisson_generator";
    const PARAMETERS: &'static [ParamSpec] = &[ParamSpec::required(
        "rate",
        "Hz",
        Range::NON_NEGATIVE,
        "rate",
    )];
    fn max_delay(_: &Params, _: f64) -> u16 {
        1
    }
    fn spawn(_: &Params, _: &InputContext, _: &mut EntityWorldMut<'_>) {}
}

struct NoSources;

impl ConnectionRule for NoSources {
    fn sources(&self, _: u32, _: &mut Stream, _: &mut Vec<u32>) {}
}

const BERNOULLI: &[ParamSpec] = &[ParamSpec::required(
    "p",
    "",
    Range::PROBABILITY,
    "connection probability",
)];
const INDEGREE: &[ParamSpec] = &[ParamSpec::integer(
    "indegree",
    None,
    Range::NON_NEGATIVE,
    "sources per target",
)];

fn registry() -> ModelRegistry {
    let mut reg = ModelRegistry::default();
    reg.neurons.insert("leaky", NeuronEntry::of::<Leaky>());
    reg.inputs
        .insert("poisson_generator", InputEntry::of::<Poisson>());
    reg.rules.insert(
        "pairwise_bernoulli",
        RuleEntry {
            name: "pairwise_bernoulli",
            parameters: BERNOULLI,
            check: |_, _| Ok(()),
            create: |_, _| Box::new(NoSources),
        },
    );
    reg.rules.insert(
        "fixed_indegree",
        RuleEntry {
            name: "fixed_indegree",
            parameters: INDEGREE,
            check: |p: &Params, ctx: &RuleContext| {
                if !ctx.multapses && p.get("indegree") > f64::from(ctx.eligible_sources()) {
                    return Err(ParamIssue::new(
                        "indegree",
                        format!(
                            "indegree {} exceeds the {} eligible sources",
                            p.get("indegree"),
                            ctx.eligible_sources()
                        ),
                    ));
                }
                Ok(())
            },
            create: |_, _| Box::new(NoSources),
        },
    );
    reg
}

const GOOD: &str = r#"// A small valid scene.
Scene(
    name: "test",
    dt: 0.1,
    duration: 100.0,
    seed: 1,
    populations: [
        (name: "E", size: 80, model: "leaky", params: {"tau_m": 20.0}),
        (name: "I", size: 20, model: "leaky"),
    ],
    projections: [
        (source: "E", target: "I", rule: "pairwise_bernoulli", rule_params: {"p": 0.1},
         weight: Constant(1.0), delay: Constant(1.5)),
        (source: "I", target: "E", rule: "fixed_indegree", rule_params: {"indegree": 5},
         weight: Constant(-4.0), delay: Constant(0.8)),
    ],
    inputs: [
        (model: "poisson_generator", target: "E", params: {"rate": 8.0}),
    ],
    recorders: [
        Spikes(population: "E"),
        State(population: "I", variable: "V_m", interval: 1.0, label: "I_v"),
    ],
)
"#;

/// `GOOD` with `from` replaced by `to` on line `line` (which must hold it).
fn edit(line: usize, from: &str, to: &str) -> String {
    let mut lines: Vec<String> = GOOD.lines().map(String::from).collect();
    assert!(
        lines[line - 1].contains(from),
        "line {line} holds no {from:?}: {}",
        lines[line - 1]
    );
    lines[line - 1] = lines[line - 1].replacen(from, to, 1);
    lines.join("\n") + "\n"
}

/// Writes `text` as a scene file, loads it, and returns the file and the error message.
fn load_err(text: &str) -> (tempfile::TempDir, PathBuf, SceneError) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.ron");
    std::fs::write(&path, text).unwrap();
    let err = load_scene(&path, &registry()).expect_err("the scene must be rejected");
    (dir, path, err)
}

/// Asserts that `text` is rejected with exactly one message line located at
/// `line:col` that contains every one of `needles`.
fn assert_rejected(text: &str, line: usize, col: usize, needles: &[&str]) -> SceneError {
    let (_dir, path, err) = load_err(text);
    let msg = err.to_string();
    let prefix = format!("{}:{line}:{col}: ", path.display());
    assert!(
        msg.starts_with(&prefix),
        "expected the message to start with {prefix:?}, got:\n{msg}"
    );
    assert_eq!(msg.lines().count(), 1, "one error expected, got:\n{msg}");
    for n in needles {
        assert!(msg.contains(n), "expected {n:?} in:\n{msg}");
    }
    err
}

#[test]
fn good_scene_loads() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("good.ron");
    std::fs::write(&path, GOOD).unwrap();
    let loaded = load_scene(&path, &registry()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(loaded.scene.populations.len(), 2);
    assert_eq!(loaded.scene.duration, 100.0);
    assert_eq!(loaded.name(), "test");
    assert_eq!(loaded.source, GOOD);
    assert_eq!(loaded.hash.len(), 64);
    assert!(loaded.hash.chars().all(|c| c.is_ascii_hexdigit()));
    // SHA-256 of the empty string, as a check of the hashing itself.
    assert_eq!(
        myelin_io::sha256_hex(""),
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
    let net = loaded.scene.network();
    assert_eq!(net.dt, 0.1);
    assert_eq!(net.recorders[1].label(), "I_v");
    // Without a name the file stem is used; Some(...) is accepted as well.
    let unnamed = GOOD.replace("name: \"test\",", "description: Some(\"d\"),");
    std::fs::write(&path, unnamed).unwrap();
    let loaded = load_scene(&path, &registry()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(loaded.name(), "good");
    assert_eq!(loaded.scene.description.as_deref(), Some("d"));
}

#[test]
fn unknown_neuron_model() {
    let err = assert_rejected(
        &edit(9, "\"leaky\"", "\"lif\""),
        9,
        38,
        &[
            "populations[1].model",
            "unknown neuron model \"lif\"",
            "known: leaky",
        ],
    );
    let SceneError::Invalid { errors, .. } = err else {
        panic!("expected SceneError::Invalid")
    };
    assert_eq!(
        (errors[0].line, errors[0].col, errors[0].path.as_str()),
        (9, 38, "populations[1].model")
    );
}

#[test]
fn unknown_population_in_projection() {
    assert_rejected(
        &edit(12, "target: \"I\"", "target: \"L9E\""),
        12,
        31,
        &["projections[0].target: unknown population \"L9E\"; known: E, I"],
    );
}

#[test]
fn unknown_population_in_input() {
    assert_rejected(
        &edit(18, "target: \"E\"", "target: \"X\""),
        18,
        46,
        &["inputs[0].target: unknown population \"X\"; known: E, I"],
    );
}

#[test]
fn wrong_type_of_size() {
    let err = assert_rejected(
        &edit(8, "size: 80", "size: \"ten\""),
        8,
        27,
        &["populations[0].size", "\"ten\""],
    );
    assert!(
        matches!(
            err,
            SceneError::Syntax {
                line: 8,
                col: 27,
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn wrong_type_of_dt() {
    assert_rejected(&edit(4, "0.1", "\"x\""), 4, 9, &["dt", "\"x\""]);
}

#[test]
fn negative_delay() {
    assert_rejected(
        &edit(13, "delay: Constant(1.5)", "delay: Constant(-1.0)"),
        13,
        40,
        &["projections[0].delay", "-1 ms", "positive"],
    );
}

#[test]
fn zero_delay() {
    assert_rejected(
        &edit(15, "delay: Constant(0.8)", "delay: Constant(0.0)"),
        15,
        41,
        &["projections[1].delay", "delay of 0 ms", "positive"],
    );
}

#[test]
fn delay_below_half_a_step() {
    assert_rejected(
        &edit(15, "delay: Constant(0.8)", "delay: Constant(0.04)"),
        15,
        41,
        &[
            "projections[1].delay",
            "0.04 ms",
            "half a time step",
            "dt = 0.1 ms",
        ],
    );
}

#[test]
fn probability_out_of_range() {
    assert_rejected(
        &edit(12, "{\"p\": 0.1}", "{\"p\": 1.5}"),
        12,
        83,
        &["projections[0].rule_params.\"p\"", "\"p\" = 1.5", "[0, 1]"],
    );
}

#[test]
fn missing_field() {
    let err = assert_rejected(
        &edit(9, "size: 20, ", ""),
        9,
        9,
        &["populations[1]: missing field `size`"],
    );
    assert!(matches!(err, SceneError::Syntax { .. }), "{err:?}");
}

#[test]
fn unknown_field() {
    let err = assert_rejected(
        &edit(9, "size: 20", "sise: 20"),
        9,
        21,
        &["populations[1]", "sise"],
    );
    assert!(matches!(err, SceneError::Syntax { .. }), "{err:?}");
}

#[test]
fn unknown_top_level_field() {
    assert_rejected(
        &edit(6, "seed: 1,", "seed: 1, speed: 3,"),
        6,
        14,
        &["speed"],
    );
}

#[test]
fn missing_required_parameter_points_at_the_map() {
    assert_rejected(
        &edit(18, "{\"rate\": 8.0}", "{}"),
        18,
        59,
        &[
            "inputs[0].params.\"rate\"",
            "missing required parameter \"rate\"",
        ],
    );
}

#[test]
fn non_positive_duration_and_dt() {
    assert_rejected(
        &edit(5, "100.0", "-5.0"),
        5,
        15,
        &["duration", "-5 ms", "positive"],
    );
    assert_rejected(&edit(4, "0.1", "0.0"), 4, 9, &["dt", "0 ms", "positive"]);
}

#[test]
fn every_problem_is_reported_on_its_own_line() {
    let text =
        edit(12, "target: \"I\"", "target: \"L9E\"").replace("Constant(0.8)", "Constant(0.0)");
    let (_dir, path, err) = load_err(&text);
    let msg = err.to_string();
    let lines: Vec<&str> = msg.lines().collect();
    assert_eq!(lines.len(), 2, "{msg}");
    assert!(
        lines[0].starts_with(&format!("{}:12:31: projections[0].target", path.display())),
        "{msg}"
    );
    assert!(
        lines[1].starts_with(&format!("{}:15:41: projections[1].delay", path.display())),
        "{msg}"
    );
}

#[test]
fn syntax_error_is_located() {
    let err = assert_rejected(
        &edit(8, "size: 80,", "size: 80"),
        8,
        30,
        &["populations[0]: expected comma"],
    );
    assert!(matches!(err, SceneError::Syntax { .. }), "{err:?}");
}

#[test]
fn unreadable_file_names_the_file() {
    let err = load_scene(Path::new("/nonexistent/dir/scene.ron"), &registry()).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.starts_with("/nonexistent/dir/scene.ron: cannot read"),
        "{msg}"
    );
}

#[test]
fn truncated_and_garbled_scenes_never_panic() {
    let reg = registry();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.ron");
    let chars: Vec<char> = GOOD.chars().collect();
    for n in 0..chars.len() {
        let text: String = chars[..n].iter().collect();
        // Every prefix short of the closing parenthesis is incomplete.
        if n + 1 < chars.len() {
            assert!(
                parse_scene(&path, &text).is_err(),
                "prefix of {n} chars parsed"
            );
        }
        // Also with one character replaced by a quote or bracket.
        let mut garbled = chars.clone();
        garbled[n] = ['"', '(', ']', '/', 'r'][n % 5];
        let garbled: String = garbled.into_iter().collect();
        std::fs::write(&path, &garbled).unwrap();
        if let Err(e) = load_scene(&path, &reg) {
            let msg = e.to_string();
            assert!(msg.starts_with(&path.display().to_string()), "{msg}");
        }
    }
    for text in [
        "\u{feff}",
        "\0\0\0",
        "Scene(dt: 1e999999, duration: NaN, seed: -1, populations: [])",
        &"[".repeat(10_000),
    ] {
        let _ = parse_scene(&path, text);
    }
}

//! Parameter tables: every model, input and rule declares its parameters with unit,
//! default and valid range; scene values are checked against them when a scene is loaded.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// A parameter value as written in a scene: a number, a list, or a list of lists.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ParamValue {
    /// A number.
    Number(f64),
    /// A list of numbers (spike times, say).
    List(Vec<f64>),
    /// A list of lists of numbers (one list per neuron).
    Lists(Vec<Vec<f64>>),
}

impl ParamValue {
    fn kind_name(&self) -> &'static str {
        match self {
            Self::Number(_) => "a number",
            Self::List(_) => "a list of numbers",
            Self::Lists(_) => "a list of lists of numbers",
        }
    }
}

/// The kind of value a parameter takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParamKind {
    /// A real number.
    Real,
    /// An integer (written as a number without fractional part).
    Integer,
    /// A list of real numbers, each within the range.
    List,
}

/// A closed, open or half-open interval of valid values.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Range {
    /// Lower bound.
    pub min: f64,
    /// Upper bound.
    pub max: f64,
    /// Whether the lower bound itself is excluded.
    pub min_open: bool,
    /// Whether the upper bound itself is excluded.
    pub max_open: bool,
}

impl Range {
    /// Any finite or infinite number.
    pub const ANY: Self = Self {
        min: f64::NEG_INFINITY,
        max: f64::INFINITY,
        min_open: false,
        max_open: false,
    };
    /// (0, inf).
    pub const POSITIVE: Self = Self {
        min: 0.0,
        max: f64::INFINITY,
        min_open: true,
        max_open: false,
    };
    /// [0, inf).
    pub const NON_NEGATIVE: Self = Self {
        min: 0.0,
        max: f64::INFINITY,
        min_open: false,
        max_open: false,
    };
    /// [0, 1].
    pub const PROBABILITY: Self = Self {
        min: 0.0,
        max: 1.0,
        min_open: false,
        max_open: false,
    };

    /// The closed interval [min, max].
    pub const fn closed(min: f64, max: f64) -> Self {
        Self {
            min,
            max,
            min_open: false,
            max_open: false,
        }
    }

    /// Whether `x` lies in the interval (NaN never does).
    pub fn contains(&self, x: f64) -> bool {
        let lo = if self.min_open {
            x > self.min
        } else {
            x >= self.min
        };
        let hi = if self.max_open {
            x < self.max
        } else {
            x <= self.max
        };
        lo && hi
    }
}

impl fmt::Display for Range {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let l = if self.min_open { '(' } else { '[' };
        let r = if self.max_open { ')' } else { ']' };
        write!(f, "{l}{}, {}{r}", self.min, self.max)
    }
}

/// One entry of a parameter table.
#[derive(Clone, Copy, Debug)]
pub struct ParamSpec {
    /// Name in scenes.
    pub name: &'static str,
    /// Unit, e.g. `"ms"`, `"pA"`, `"mV"`, `"Hz"`, `""` for dimensionless.
    pub unit: &'static str,
    /// Value when the scene gives none; `None` makes the parameter required.
    pub default: Option<f64>,
    /// Valid values.
    pub range: Range,
    /// Kind of value.
    pub kind: ParamKind,
    /// One line of documentation.
    pub doc: &'static str,
}

impl ParamSpec {
    /// A real parameter with a default.
    pub const fn real(
        name: &'static str,
        unit: &'static str,
        default: f64,
        range: Range,
        doc: &'static str,
    ) -> Self {
        Self {
            name,
            unit,
            default: Some(default),
            range,
            kind: ParamKind::Real,
            doc,
        }
    }
    /// A required real parameter.
    pub const fn required(
        name: &'static str,
        unit: &'static str,
        range: Range,
        doc: &'static str,
    ) -> Self {
        Self {
            name,
            unit,
            default: None,
            range,
            kind: ParamKind::Real,
            doc,
        }
    }
    /// An integer parameter; `default` `None` makes it required.
    pub const fn integer(
        name: &'static str,
        default: Option<f64>,
        range: Range,
        doc: &'static str,
    ) -> Self {
        Self {
            name,
            unit: "",
            default,
            range,
            kind: ParamKind::Integer,
            doc,
        }
    }
    /// A list parameter (empty when not given).
    pub const fn list(
        name: &'static str,
        unit: &'static str,
        range: Range,
        doc: &'static str,
    ) -> Self {
        Self {
            name,
            unit,
            default: None,
            range,
            kind: ParamKind::List,
            doc,
        }
    }
}

/// A problem with one parameter (or, with `param` empty, with the table as a whole).
#[derive(Clone, Debug, PartialEq)]
pub struct ParamIssue {
    /// The offending parameter's name.
    pub param: String,
    /// What is wrong, naming the value.
    pub message: String,
}

impl ParamIssue {
    /// An issue with parameter `param`.
    pub fn new(param: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            param: param.into(),
            message: message.into(),
        }
    }
}

/// Parameter values resolved against a table: every parameter present, every value valid.
#[derive(Clone, Debug)]
pub struct Params {
    specs: &'static [ParamSpec],
    values: Vec<ParamValue>,
    given: Vec<bool>,
}

impl Params {
    /// Resolves the values a scene gave against `specs`: fills defaults, rejects unknown
    /// names, missing required values, wrong kinds and values out of range.
    pub fn resolve(
        specs: &'static [ParamSpec],
        given: &BTreeMap<String, ParamValue>,
    ) -> Result<Self, Vec<ParamIssue>> {
        let mut issues = Vec::new();
        for name in given.keys() {
            if !specs.iter().any(|s| s.name == name) {
                let known: Vec<&str> = specs.iter().map(|s| s.name).collect();
                issues.push(ParamIssue::new(
                    name.clone(),
                    format!("unknown parameter \"{name}\"; known: {}", known.join(", ")),
                ));
            }
        }
        let mut values = Vec::with_capacity(specs.len());
        let mut was_given = Vec::with_capacity(specs.len());
        for s in specs {
            let v = match given.get(s.name) {
                Some(v) => {
                    was_given.push(true);
                    v.clone()
                }
                None => {
                    was_given.push(false);
                    match (s.kind, s.default) {
                        (ParamKind::List, _) => ParamValue::List(Vec::new()),
                        (_, Some(d)) => ParamValue::Number(d),
                        (_, None) => {
                            issues.push(ParamIssue::new(
                                s.name,
                                format!(
                                    "missing required parameter \"{}\" [{}]: {}",
                                    s.name, s.unit, s.doc
                                ),
                            ));
                            ParamValue::Number(f64::NAN)
                        }
                    }
                }
            };
            if let Some(msg) = check_value(s, &v) {
                issues.push(ParamIssue::new(s.name, msg));
            }
            values.push(v);
        }
        if issues.is_empty() {
            Ok(Self {
                specs,
                values,
                given: was_given,
            })
        } else {
            Err(issues)
        }
    }

    fn index(&self, name: &str) -> usize {
        self.specs
            .iter()
            .position(|s| s.name == name)
            .unwrap_or_else(|| panic!("bug: parameter \"{name}\" is not in the table"))
    }

    /// The value of a number parameter. Panics if `name` is not in the table (a bug).
    pub fn get(&self, name: &str) -> f64 {
        match &self.values[self.index(name)] {
            ParamValue::Number(x) => *x,
            other => panic!("bug: parameter \"{name}\" is {}", other.kind_name()),
        }
    }

    /// The value of a list parameter. Panics if `name` is not in the table (a bug).
    pub fn list(&self, name: &str) -> &[f64] {
        match &self.values[self.index(name)] {
            ParamValue::List(x) => x,
            other => panic!("bug: parameter \"{name}\" is {}", other.kind_name()),
        }
    }

    /// Whether the scene gave `name` explicitly (rather than by default).
    pub fn given(&self, name: &str) -> bool {
        self.given[self.index(name)]
    }

    /// The table.
    pub fn specs(&self) -> &'static [ParamSpec] {
        self.specs
    }

    /// All values by name, as a scene would write them.
    pub fn to_map(&self) -> BTreeMap<String, ParamValue> {
        self.specs
            .iter()
            .zip(&self.values)
            .map(|(s, v)| (s.name.to_string(), v.clone()))
            .collect()
    }
}

fn check_value(s: &ParamSpec, v: &ParamValue) -> Option<String> {
    let unit = if s.unit.is_empty() {
        String::new()
    } else {
        format!(" {}", s.unit)
    };
    match (s.kind, v) {
        (ParamKind::Real | ParamKind::Integer, ParamValue::Number(x)) => {
            if x.is_nan() {
                return None; // reported as missing
            }
            if s.kind == ParamKind::Integer && (x.fract() != 0.0 || !x.is_finite()) {
                return Some(format!(
                    "parameter \"{}\" must be an integer, got {x}",
                    s.name
                ));
            }
            (!s.range.contains(*x)).then(|| {
                format!(
                    "parameter \"{}\" = {x}{unit} is outside its valid range {}",
                    s.name, s.range
                )
            })
        }
        (ParamKind::List, ParamValue::List(xs)) => {
            xs.iter().find(|x| !s.range.contains(**x)).map(|x| {
                format!(
                    "parameter \"{}\" holds {x}{unit}, outside its valid range {}",
                    s.name, s.range
                )
            })
        }
        (ParamKind::List, ParamValue::Lists(_)) | (ParamKind::List, ParamValue::Number(_)) => {
            Some(format!(
                "parameter \"{}\" must be a list of numbers, got {}",
                s.name,
                v.kind_name()
            ))
        }
        (_, other) => Some(format!(
            "parameter \"{}\" must be a number, got {}",
            s.name,
            other.kind_name()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TABLE: &[ParamSpec] = &[
        ParamSpec::real(
            "tau_m",
            "ms",
            10.0,
            Range::POSITIVE,
            "membrane time constant",
        ),
        ParamSpec::required("p", "", Range::PROBABILITY, "probability"),
        ParamSpec::integer("k", Some(3.0), Range::NON_NEGATIVE, "count"),
    ];

    fn map(kv: &[(&str, ParamValue)]) -> BTreeMap<String, ParamValue> {
        kv.iter().map(|(k, v)| (k.to_string(), v.clone())).collect()
    }

    #[test]
    fn defaults_fill_and_values_resolve() {
        let p = Params::resolve(TABLE, &map(&[("p", ParamValue::Number(0.2))])).unwrap();
        assert_eq!(p.get("tau_m"), 10.0);
        assert_eq!(p.get("p"), 0.2);
        assert_eq!(p.get("k"), 3.0);
        assert!(p.given("p") && !p.given("tau_m"));
    }

    #[test]
    fn bad_values_are_named() {
        let e = Params::resolve(
            TABLE,
            &map(&[
                ("p", ParamValue::Number(1.5)),
                ("tau_m", ParamValue::Number(-1.0)),
                ("k", ParamValue::Number(2.5)),
                ("bogus", ParamValue::Number(1.0)),
            ]),
        )
        .unwrap_err();
        let msgs: Vec<&str> = e.iter().map(|i| i.message.as_str()).collect();
        assert!(
            msgs.iter()
                .any(|m| m.contains("\"p\" = 1.5") && m.contains("[0, 1]")),
            "{msgs:?}"
        );
        assert!(
            msgs.iter()
                .any(|m| m.contains("\"tau_m\" = -1 ms") && m.contains("(0, inf]")),
            "{msgs:?}"
        );
        assert!(
            msgs.iter()
                .any(|m| m.contains("must be an integer, got 2.5")),
            "{msgs:?}"
        );
        assert!(
            msgs.iter()
                .any(|m| m.contains("unknown parameter \"bogus\"")),
            "{msgs:?}"
        );
        let e = Params::resolve(TABLE, &BTreeMap::new()).unwrap_err();
        assert_eq!(
            e[0].param, "p",
            "a missing required parameter is reported by name"
        );
    }
}

//! Errors of the engine: user errors in a network description ([`SpecError`], located by a
//! [`SpecPath`] that the scene loader turns into file, line and column) and build errors.

use std::fmt;

/// One step of a path into a network description.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PathSeg {
    /// A struct field, e.g. `projections`.
    Field(&'static str),
    /// A list index.
    Index(usize),
    /// A map key, e.g. a parameter name.
    Key(String),
}

/// Where in a network description a value sits, e.g. `projections[2].rule_params."p"`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SpecPath(pub Vec<PathSeg>);

impl SpecPath {
    /// The path `field[index]`.
    pub fn item(field: &'static str, index: usize) -> Self {
        Self(vec![PathSeg::Field(field), PathSeg::Index(index)])
    }
    /// This path extended by a field.
    pub fn field(&self, f: &'static str) -> Self {
        let mut p = self.clone();
        p.0.push(PathSeg::Field(f));
        p
    }
    /// This path extended by a map key.
    pub fn key(&self, k: impl Into<String>) -> Self {
        let mut p = self.clone();
        p.0.push(PathSeg::Key(k.into()));
        p
    }
    /// This path extended by a list index.
    pub fn index(&self, i: usize) -> Self {
        let mut p = self.clone();
        p.0.push(PathSeg::Index(i));
        p
    }
}

impl fmt::Display for SpecPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, s) in self.0.iter().enumerate() {
            match s {
                PathSeg::Field(name) if i == 0 => write!(f, "{name}")?,
                PathSeg::Field(name) => write!(f, ".{name}")?,
                PathSeg::Index(k) => write!(f, "[{k}]")?,
                PathSeg::Key(k) => write!(f, ".\"{k}\"")?,
            }
        }
        Ok(())
    }
}

/// A user error in a network description: what is wrong, and where.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct SpecError {
    /// Where the offending value is.
    pub path: SpecPath,
    /// What is wrong, naming the value.
    pub message: String,
}

impl SpecError {
    /// A new error at `path`.
    pub fn new(path: SpecPath, message: impl Into<String>) -> Self {
        Self {
            path,
            message: message.into(),
        }
    }
}

/// Errors while building a network.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The description is invalid (user errors, all of them).
    #[error("invalid network description:\n{}", .0.iter().map(|e| format!("  {e}")).collect::<Vec<_>>().join("\n"))]
    Spec(Vec<SpecError>),
    /// The network was already built into this simulation.
    #[error("a network has already been built into this simulation")]
    AlreadyBuilt,
}

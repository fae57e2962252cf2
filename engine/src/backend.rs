//! The backend seam: where kernels run. The CPU backend (rayon) is always built; the CUDA
//! backend exists behind the `cuda` feature. Without it the same names exist and answer
//! that Myelin was built without CUDA, so callers need no `cfg`.

use std::fmt;
use std::str::FromStr;

/// Where kernels run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Backend {
    /// The CPU, with rayon.
    #[default]
    Cpu,
    /// An NVIDIA GPU, with cudarc.
    Cuda,
}

/// Errors selecting a backend.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// The binary was built without the `cuda` feature.
    #[error(
        "the CUDA backend is not available: Myelin was built without the `cuda` feature (rebuild with `--features cuda`)"
    )]
    NotCompiledWithCuda,
    /// An unknown backend name.
    #[error("unknown backend \"{0}\"; known: cpu, cuda")]
    Unknown(String),
}

impl FromStr for Backend {
    type Err = BackendError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "cpu" => Ok(Self::Cpu),
            "cuda" => Ok(Self::Cuda),
            other => Err(BackendError::Unknown(other.to_string())),
        }
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Cpu => "cpu",
            Self::Cuda => "cuda",
        })
    }
}

impl Backend {
    /// Checks that the backend can run here.
    pub fn ensure_available(self) -> Result<(), BackendError> {
        match self {
            Self::Cpu => Ok(()),
            Self::Cuda => Err(BackendError::NotCompiledWithCuda),
        }
    }
}

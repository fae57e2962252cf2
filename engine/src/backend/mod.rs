//! The backend seam: where kernels run. The CPU backend (rayon) is always built; the CUDA
//! backend exists behind the `cuda` feature. Without it the same names exist and answer
//! that Myelin was built without CUDA, so callers need no `cfg`.
//!
//! CUDA kernels are CUDA C sources ([`KernelSource`]), kept beside the CPU kernel of their
//! model family and compiled at run time with NVRTC ([`cuda::compile`]). Every program is
//! [`DEVICE_PRELUDE`] (the ring-buffer layout and the Philox generator of [`crate::rng`])
//! followed by the family's source.

use std::fmt;
use std::str::FromStr;

#[cfg(feature = "cuda")]
#[path = "cuda.rs"]
pub mod cuda;
#[cfg(not(feature = "cuda"))]
#[path = "stand_in.rs"]
pub mod cuda;

/// The CUDA C every kernel program starts with: the ring-buffer layout
/// ([`myelin_components::SynapticInput`]) and the counter-based generator of
/// [`crate::rng`], so that the GPU draws exactly the numbers the CPU draws.
pub const DEVICE_PRELUDE: &str = concat!(
    include_str!("prelude.cu"),
    "\n",
    include_str!("../rng.cu"),
    "\n"
);

/// What the CUDA backend found on this machine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceInfo {
    /// The device's name.
    pub name: String,
    /// Compute capability (major, minor).
    pub compute_capability: (i32, i32),
    /// Global memory [bytes].
    pub memory_bytes: usize,
}

/// One CUDA C source of a model family, compiled at run time with NVRTC.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KernelSource {
    /// Where the source lives, relative to the workspace root (e.g.
    /// `systems/src/neurons/iaf_psc_exp.cu`): named in compile errors.
    pub file: &'static str,
    /// The `extern "C" __global__` entry points it defines.
    pub entries: &'static [&'static str],
    /// The source, without [`DEVICE_PRELUDE`].
    pub source: &'static str,
    /// Whether floating-point multiply-adds may be fused. Off for kernels that must follow
    /// the CPU's arithmetic operation by operation (neuron updates).
    pub fmad: bool,
}

impl KernelSource {
    /// The whole program NVRTC compiles: [`DEVICE_PRELUDE`] and the source.
    pub fn program(&self) -> String {
        format!(
            "{DEVICE_PRELUDE}\n#line 1 \"{}\"\n{}",
            self.file, self.source
        )
    }
}

/// Where kernels run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Backend {
    /// The CPU, with rayon.
    #[default]
    Cpu,
    /// An NVIDIA GPU, with cudarc.
    Cuda,
}

/// The backend a simulation's kernels run on (absent: the CPU). The CPU systems of the
/// input, neuron-update and delivery phases run only under [`on_cpu`]; a backend's plugin
/// inserts this resource and adds its own systems in their place.
#[derive(bevy_ecs::resource::Resource, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ActiveBackend(pub Backend);

/// Where the GPU's steps spend their time, measured with CUDA events on sampled steps (the
/// CUDA backend keeps it up to date; absent on the CPU). The summary of a run reports it.
#[derive(bevy_ecs::resource::Resource, Clone, Debug, Default, PartialEq)]
pub struct DevicePhaseTimes {
    /// The device's name.
    pub device: String,
    /// Whether the steps that were not sampled ran as one CUDA graph each.
    pub graph: bool,
    /// Steps timed phase by phase.
    pub sampled_steps: u64,
    /// Mean device time per sampled step of each phase [s], in step order.
    pub per_step_s: Vec<(&'static str, f64)>,
    /// Mean device time of a whole step launched as its CUDA graph [s], from events around
    /// the graph on other sampled steps (absent without a graph, or before one was timed).
    pub graph_step_s: Option<f64>,
    /// Seconds the network took to reach the device (part of the construction time).
    pub upload_s: f64,
    /// Seconds of the upload spent compiling and loading the kernels.
    pub compile_s: f64,
    /// Bytes the upload copied.
    pub upload_bytes: u64,
}

/// Run condition: the kernels run on the CPU (no [`ActiveBackend`], or the CPU one).
pub fn on_cpu(backend: Option<bevy_ecs::system::Res<ActiveBackend>>) -> bool {
    backend.is_none_or(|b| b.0 == Backend::Cpu)
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
    /// The CUDA driver library could not be loaded.
    #[error(
        "the CUDA backend needs the NVIDIA driver, and no driver library was found (looked for {searched}; is an NVIDIA driver installed, and its folder on LD_LIBRARY_PATH?)"
    )]
    NoDriver {
        /// The library names that were tried.
        searched: String,
    },
    /// The driver loaded but reports no usable device.
    #[error("the CUDA driver is present but {op} failed: {message}")]
    Driver {
        /// What was being done (e.g. "opening device 0").
        op: String,
        /// The driver's error.
        message: String,
    },
    /// NVRTC, which compiles the kernels, could not be loaded.
    #[error(
        "the CUDA backend compiles its kernels with NVRTC, and libnvrtc was not found (looked for {searched}; install the CUDA toolkit or `pip install nvidia-cuda-nvrtc-cu12` and put its lib folder on LD_LIBRARY_PATH)"
    )]
    NoNvrtc {
        /// The library names that were tried.
        searched: String,
    },
    /// The scene uses something the CUDA backend does not run yet.
    #[error("the CUDA backend cannot run this scene yet: {0}; run it with --backend cpu")]
    Unsupported(String),
    /// A kernel source did not compile.
    #[error("NVRTC could not compile {file}: {message}\n{log}")]
    Compile {
        /// The source file.
        file: String,
        /// NVRTC's error.
        message: String,
        /// The compiler log.
        log: String,
    },
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
            Self::Cuda => {
                cuda::probe()?;
                cuda::nvrtc_available()
            }
        }
    }
}

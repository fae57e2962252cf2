//! The CUDA backend's stand-in, built without the `cuda` feature: the same names as the real
//! module, each answering [`BackendError::NotCompiledWithCuda`].

use super::{BackendError, KernelSource};

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

/// Without the `cuda` feature there is no device to find.
pub fn probe() -> Result<DeviceInfo, BackendError> {
    Err(BackendError::NotCompiledWithCuda)
}

/// Without the `cuda` feature NVRTC is never loaded.
pub fn nvrtc_available() -> Result<(), BackendError> {
    Err(BackendError::NotCompiledWithCuda)
}

/// Without the `cuda` feature nothing is compiled.
pub fn compile(_source: &KernelSource, _arch: &'static str) -> Result<String, BackendError> {
    Err(BackendError::NotCompiledWithCuda)
}

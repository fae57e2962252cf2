//! The CUDA backend's stand-in, built without the `cuda` feature: the same names as the real
//! module, each answering [`BackendError::NotCompiledWithCuda`].

use super::{BackendError, DeviceInfo, KernelSource};

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

//! The CUDA backend (feature `cuda`): cudarc, with the driver and NVRTC loaded at run time.
//!
//! cudarc's loader panics when a library is missing, so every entry point here first asks
//! whether the library can be loaded and answers a [`BackendError`] naming what is missing.

use cudarc::driver::CudaContext;
use cudarc::nvrtc::{CompileError, CompileOptions};

use super::{BackendError, DeviceInfo, KernelSource};

fn searched(names: &[&str]) -> String {
    let mut all: Vec<String> = Vec::new();
    for c in names
        .iter()
        .flat_map(|n| cudarc::get_lib_name_candidates(n))
    {
        if !all.contains(&c) {
            all.push(c);
        }
    }
    all.join(", ")
}

/// Loads the driver and opens device 0: its name, compute capability and memory, or what
/// is missing (no driver library, no device, a driver error).
pub fn probe() -> Result<DeviceInfo, BackendError> {
    #[expect(unsafe_code, reason = "cudarc's presence check loads a shared library")]
    // SAFETY: loading the driver library runs its initialisers, which the driver supports
    // being done at any time; the handle is dropped at once.
    let present = unsafe { cudarc::driver::sys::is_culib_present() };
    if !present {
        return Err(BackendError::NoDriver {
            searched: searched(&["cuda", "nvcuda"]),
        });
    }
    let driver = |op: &str, e: cudarc::driver::DriverError| BackendError::Driver {
        op: op.into(),
        message: e.to_string(),
    };
    let ctx = CudaContext::new(0).map_err(|e| driver("opening device 0", e))?;
    Ok(DeviceInfo {
        name: ctx
            .name()
            .map_err(|e| driver("reading the device name", e))?,
        compute_capability: ctx
            .compute_capability()
            .map_err(|e| driver("reading the compute capability", e))?,
        memory_bytes: ctx
            .total_mem()
            .map_err(|e| driver("reading the memory size", e))?,
    })
}

/// Whether NVRTC can be loaded.
pub fn nvrtc_available() -> Result<(), BackendError> {
    #[expect(unsafe_code, reason = "cudarc's presence check loads a shared library")]
    // SAFETY: as in `probe`: loading NVRTC runs only its own initialisers.
    let present = unsafe { cudarc::nvrtc::sys::is_culib_present() };
    if present {
        Ok(())
    } else {
        Err(BackendError::NoNvrtc {
            searched: searched(&["nvrtc"]),
        })
    }
}

/// Compiles `source` (with [`super::DEVICE_PRELUDE`]) to PTX for the virtual architecture
/// `arch` (e.g. `compute_80`; the driver JIT-compiles it for the device at load time).
pub fn compile(source: &KernelSource, arch: &'static str) -> Result<String, BackendError> {
    nvrtc_available()?;
    let opts = CompileOptions {
        fmad: Some(source.fmad),
        ftz: Some(false),
        prec_div: Some(true),
        prec_sqrt: Some(true),
        arch: Some(arch),
        name: Some(source.file.to_string()),
        options: vec!["--std=c++17".into()],
        ..Default::default()
    };
    let ptx = cudarc::nvrtc::compile_ptx_with_opts(source.program(), opts).map_err(|e| {
        let (message, log) = match &e {
            CompileError::CompileError { nvrtc, log, .. } => {
                (format!("{nvrtc:?}"), log.to_string_lossy().into_owned())
            }
            other => (other.to_string(), String::new()),
        };
        BackendError::Compile {
            file: source.file.to_string(),
            message,
            log,
        }
    })?;
    Ok(ptx.to_src())
}

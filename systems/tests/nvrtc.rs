//! Every kernel source compiles with NVRTC (feature `cuda`; no GPU or driver needed).
//!
//! NVRTC is loaded at run time. Where it is missing the test says so and passes, unless
//! `MYELIN_REQUIRE_NVRTC=1` (CI sets it, after `scripts/install-nvrtc.sh`), where a missing
//! NVRTC fails it.
#![cfg(feature = "cuda")]

use myelin_engine::{BackendError, cuda};

/// A virtual architecture every GPU since Ampere runs (the driver JIT-compiles the PTX).
const ARCH: &str = "compute_80";

fn nvrtc_or_skip() -> bool {
    match cuda::nvrtc_available() {
        Ok(()) => true,
        Err(e) if std::env::var("MYELIN_REQUIRE_NVRTC").as_deref() == Ok("1") => {
            panic!("MYELIN_REQUIRE_NVRTC=1 but: {e}")
        }
        Err(e) => {
            eprintln!("skipped: {e}");
            false
        }
    }
}

#[test]
fn every_kernel_source_compiles_to_ptx_with_its_entry_points() {
    if !nvrtc_or_skip() {
        return;
    }
    let sources = myelin_systems::cuda::sources();
    assert!(sources.len() >= 6, "neurons, inputs, delivery, recording");
    for s in sources {
        let ptx = cuda::compile(&s, ARCH).unwrap_or_else(|e| panic!("{e}"));
        for e in s.entries {
            assert!(
                ptx.contains(&format!(".entry {e}(")),
                "{}: the PTX has no entry {e}",
                s.file
            );
        }
    }
}

/// A source that does not compile is reported with its file and NVRTC's log.
#[test]
fn a_compile_error_names_the_file_and_the_line() {
    if !nvrtc_or_skip() {
        return;
    }
    let bad = myelin_engine::KernelSource {
        file: "systems/src/broken.cu",
        entries: &["broken"],
        source: "extern \"C\" __global__ void broken(float* x) {\n  x[0] = undefined_name;\n}\n",
        fmad: true,
    };
    match cuda::compile(&bad, ARCH) {
        Err(BackendError::Compile { file, log, .. }) => {
            assert_eq!(file, "systems/src/broken.cu");
            assert!(
                log.contains("broken.cu(2)") && log.contains("undefined_name"),
                "log names the line: {log}"
            );
        }
        other => panic!("expected a compile error, got {other:?}"),
    }
}

//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The `myelin` binary built for these tests.
pub fn myelin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_myelin"))
}

/// Runs `myelin ARGS` and returns its output.
pub fn run(args: &[&str]) -> Output {
    myelin()
        .args(args)
        .output()
        .expect("the myelin binary runs")
}

/// Standard error as text.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Path of a scene under `tests/scenes/`.
pub fn scene(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/scenes")
        .join(name)
}

/// Spikes recorded under `/spikes/LABEL`: `(times [ms], senders)`.
pub fn read_spikes(file: &Path, label: &str) -> (Vec<f64>, Vec<u32>) {
    let f = hdf5::File::open(file).expect("recordings open");
    let g = f
        .group(&format!("spikes/{label}"))
        .expect("spike group exists");
    let t = g
        .dataset("times")
        .expect("times")
        .read_raw::<f64>()
        .expect("read times");
    let s = g
        .dataset("senders")
        .expect("senders")
        .read_raw::<u32>()
        .expect("read senders");
    (t, s)
}

/// Every dataset of an HDF5 file as little-endian bytes, by path.
pub fn datasets(path: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(g: &hdf5::Group, at: &str, out: &mut BTreeMap<String, Vec<u8>>) {
        for name in g.member_names().unwrap() {
            let p = format!("{at}/{name}");
            if let Ok(sub) = g.group(&name) {
                walk(&sub, &p, out);
                continue;
            }
            let ds = g.dataset(&name).unwrap();
            let bytes: Vec<u8> = match ds.dtype().unwrap().to_descriptor().unwrap() {
                hdf5::types::TypeDescriptor::Float(hdf5::types::FloatSize::U8) => ds
                    .read_raw::<f64>()
                    .unwrap()
                    .iter()
                    .flat_map(|x| x.to_le_bytes())
                    .collect(),
                hdf5::types::TypeDescriptor::Float(hdf5::types::FloatSize::U4) => ds
                    .read_raw::<f32>()
                    .unwrap()
                    .iter()
                    .flat_map(|x| x.to_le_bytes())
                    .collect(),
                hdf5::types::TypeDescriptor::Unsigned(hdf5::types::IntSize::U4) => ds
                    .read_raw::<u32>()
                    .unwrap()
                    .iter()
                    .flat_map(|x| x.to_le_bytes())
                    .collect(),
                other => panic!("{p}: unexpected type {other}"),
            };
            out.insert(format!("{p} {:?}", ds.shape()), bytes);
        }
    }
    let f = hdf5::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut out = BTreeMap::new();
    walk(&f, "", &mut out);
    out
}

/// Asserts that two run folders hold bit-identical recordings (the same datasets, byte for
/// byte); returns the first folder's datasets.
pub fn same_recordings(a: &Path, b: &Path) -> BTreeMap<String, Vec<u8>> {
    let (da, db) = (
        datasets(&a.join("recordings.h5")),
        datasets(&b.join("recordings.h5")),
    );
    assert_eq!(da.keys().collect::<Vec<_>>(), db.keys().collect::<Vec<_>>());
    for (k, v) in &da {
        assert!(
            v == &db[k],
            "dataset {k} differs between {} and {}",
            a.display(),
            b.display()
        );
    }
    da
}

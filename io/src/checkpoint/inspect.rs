//! `myelin inspect`: what a checkpoint, a recording or any HDF5 file holds.

use std::fmt::Write as _;
use std::path::Path;

use hdf5::{Group, Location, LocationType};

use super::{CHECKPOINT_FORMAT, CheckpointError, open_hdf5, read_checkpoint};

/// Most attributes shown per object in the listing.
const MAX_ATTRS_SHOWN: usize = 12;
/// Longest attribute value shown (longer ones are cut).
const MAX_ATTR_CHARS: usize = 72;

/// A description of the HDF5 file at `path`: for a checkpoint, its run, step and time,
/// populations, projections, inputs, recorder positions and the result of its integrity
/// check; for a recording, its run and recorders; then, for any HDF5 file, every group and
/// dataset with its type, shape and key attributes.
pub fn inspect(path: &Path) -> Result<String, CheckpointError> {
    let file = open_hdf5(path)?;
    let format = super::tree::read_str_attr(&file, "format", false);
    let mut out = String::new();
    let root = file
        .group("/")
        .map_err(|e| super::damaged(path, "open the root group", e))?;
    if format.as_deref() == Some(CHECKPOINT_FORMAT) {
        drop(root);
        drop(file);
        describe_checkpoint(path, &mut out);
        let file = open_hdf5(path)?;
        let root = file
            .group("/")
            .map_err(|e| super::damaged(path, "open the root group", e))?;
        list(&root, "/", &mut out);
    } else if root.attr("format_version").is_ok() && root.link_exists("spikes") {
        describe_recording(path, &root, &mut out);
        list(&root, "/", &mut out);
    } else {
        let _ = writeln!(out, "{}: HDF5 file (not written by Myelin)", path.display());
        list(&root, "/", &mut out);
    }
    Ok(out)
}

fn str_attr(loc: &Location, name: &str) -> Option<String> {
    super::tree::read_str_attr(loc, name, true)
}

fn u64_attr(loc: &Location, name: &str) -> Option<u64> {
    loc.attr(name).and_then(|a| a.read_scalar::<u64>()).ok()
}

fn f64_attr(loc: &Location, name: &str) -> Option<f64> {
    loc.attr(name).and_then(|a| a.read_scalar::<f64>()).ok()
}

fn describe_checkpoint(path: &Path, out: &mut String) {
    let _ = writeln!(out, "{}: Myelin checkpoint", path.display());
    let c = match read_checkpoint(path) {
        Ok(c) => c,
        Err(e) => {
            let _ = writeln!(out, "integrity      FAILED: {e}");
            return;
        }
    };
    let _ = writeln!(out, "integrity      ok (content SHA-256 {})", c.digest);
    let _ = writeln!(
        out,
        "scene          {} (hash {}, from {})",
        c.run.scene_name, c.run.scene_hash, c.run.scene_file
    );
    let _ = writeln!(
        out,
        "time           step {} = {} ms of {} ms (dt {} ms), seed {}",
        c.step,
        c.time_ms(),
        c.run.end_step as f64 * c.dt,
        c.dt,
        c.seed
    );
    let _ = writeln!(out, "written by     myelin {}", c.run.myelin_version);
    let _ = writeln!(out, "run output     {}", c.run.out_dir);
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "{:<14} {:<16} {:>10} {:>12}  state variables",
        "population", "model", "neurons", "spikes"
    );
    for p in &c.populations {
        let vars: Vec<&str> = p
            .real
            .iter()
            .map(|v| v.name.as_str())
            .chain(p.int.iter().map(|v| v.name.as_str()))
            .collect();
        let _ = writeln!(
            out,
            "{:<14} {:<16} {:>10} {:>12}  {}",
            p.name,
            p.model,
            p.size,
            p.spikes_total,
            vars.join(", ")
        );
    }
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "{:<14} {:<20} {:>12} {:>10} {:>7}  plasticity",
        "projection", "source -> target", "synapses", "max delay", "blocks"
    );
    for p in &c.projections {
        let plasticity = p.plasticity.as_ref().map_or_else(
            || "-".to_string(),
            |s| {
                let vars: Vec<&str> = s
                    .synapse
                    .iter()
                    .map(|c| c.name.as_str())
                    .chain(s.pre.iter().map(|c| c.name.as_str()))
                    .chain(s.pre_steps.iter().map(|c| c.name.as_str()))
                    .collect();
                let spikes: usize = s.post.history.iter().map(Vec::len).sum();
                format!(
                    "{} ({}; {spikes} post spikes in the history)",
                    s.rule,
                    vars.join(", ")
                )
            },
        );
        let _ = writeln!(
            out,
            "{:<14} {:<20} {:>12} {:>10} {:>7}  {plasticity}",
            p.name,
            format!("{} -> {}", p.source, p.target),
            p.connectivity.len(),
            p.connectivity.max_delay,
            p.connectivity.n_blocks()
        );
    }
    if !c.inputs.is_empty() {
        let _ = writeln!(out);
        for i in &c.inputs {
            let cursor = i
                .cursor
                .map(|k| format!(", next spike {k}"))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "input {:<8} {} -> {}{cursor}",
                i.index, i.model, i.target
            );
        }
    }
    if !c.recorders.is_empty() {
        let _ = writeln!(out);
        for r in &c.recorders {
            let _ = writeln!(
                out,
                "recorder {:<12} {} of {}: {} rows written",
                r.label, r.kind, r.population, r.rows
            );
        }
    }
    let _ = writeln!(out);
}

fn describe_recording(path: &Path, root: &Group, out: &mut String) {
    let state = if path.to_string_lossy().ends_with(".partial") {
        "unfinished (the run has not completed)"
    } else {
        "complete"
    };
    let _ = writeln!(out, "{}: Myelin recording, {state}", path.display());
    let _ = writeln!(
        out,
        "scene          {} (hash {})",
        str_attr(root, "scene_name").unwrap_or_default(),
        str_attr(root, "scene_hash").unwrap_or_default()
    );
    let _ = writeln!(
        out,
        "run            seed {}, dt {} ms, format_version {}",
        u64_attr(root, "seed").unwrap_or_default(),
        f64_attr(root, "dt").unwrap_or_default(),
        u64_attr(root, "format_version").unwrap_or_default()
    );
    for kind in ["spikes", "state", "weights"] {
        let Ok(g) = root.group(kind) else { continue };
        for label in g.member_names().unwrap_or_default() {
            let Ok(sub) = g.group(&label) else { continue };
            let times = sub.dataset("times").ok();
            let n = times
                .as_ref()
                .map_or(0, |t| t.shape().first().copied().unwrap_or(0));
            let last = times
                .filter(|_| n > 0)
                .and_then(|t| t.read_slice_1d::<f64, _>(n - 1..n).ok())
                .and_then(|a| a.first().copied());
            let until = last
                .map(|t| format!(", last at {t} ms"))
                .unwrap_or_default();
            let pop = str_attr(&sub, "population").unwrap_or_default();
            if kind == "spikes" {
                let _ = writeln!(
                    out,
                    "spikes {label:<14} population {pop}: {n} spikes{until}"
                );
            } else if kind == "weights" {
                let proj = str_attr(&sub, "projection").unwrap_or_default();
                let cols = sub
                    .dataset("values")
                    .ok()
                    .and_then(|v| v.shape().get(1).copied())
                    .unwrap_or(0);
                let _ = writeln!(
                    out,
                    "weights {label:<13} projection {proj}: {n} samples of {cols} synapses{until}"
                );
            } else {
                let var = str_attr(&sub, "variable").unwrap_or_default();
                let cols = sub
                    .dataset("values")
                    .ok()
                    .and_then(|v| v.shape().get(1).copied())
                    .unwrap_or(0);
                let _ = writeln!(
                    out,
                    "state  {label:<14} population {pop}, {var}: {n} samples of {cols} neurons{until}"
                );
            }
        }
    }
    let _ = writeln!(out);
}

/// Lists every group and dataset under `g` (at `path`) with types, shapes and attributes;
/// unreadable items are listed with the error.
fn list(g: &Group, path: &str, out: &mut String) {
    let _ = writeln!(out, "{path}{}", attr_summary(g));
    let names = match g.member_names() {
        Ok(n) => n,
        Err(e) => {
            let _ = writeln!(out, "  (cannot list {path}: {e})");
            return;
        }
    };
    for name in names {
        let at = super::tree::join(path, &name);
        match g.loc_type_by_name(&name) {
            Ok(LocationType::Group) => match g.group(&name) {
                Ok(sub) => list(&sub, &at, out),
                Err(e) => {
                    let _ = writeln!(out, "{at}  (cannot open: {e})");
                }
            },
            Ok(LocationType::Dataset) => match g.dataset(&name) {
                Ok(ds) => {
                    let dtype = ds
                        .dtype()
                        .and_then(|t| t.to_descriptor())
                        .map_or_else(|e| format!("?({e})"), |d| d.to_string());
                    let _ = writeln!(out, "{at}  {dtype} {:?}{}", ds.shape(), attr_summary(&ds));
                }
                Err(e) => {
                    let _ = writeln!(out, "{at}  (cannot open: {e})");
                }
            },
            Ok(_) => {
                let _ = writeln!(out, "{at}  (named datatype)");
            }
            Err(e) => {
                let _ = writeln!(out, "{at}  (cannot open: {e})");
            }
        }
    }
}

/// `  [name=value, ...]` for the attributes of `loc` (digests left out), or nothing.
fn attr_summary(loc: &Location) -> String {
    let names = loc.attr_names().unwrap_or_default();
    let shown: Vec<String> = names
        .iter()
        .filter(|n| *n != super::tree::DATASET_DIGEST_ATTR)
        .take(MAX_ATTRS_SHOWN)
        .map(|n| format!("{n}={}", attr_text(loc, n)))
        .collect();
    if shown.is_empty() {
        String::new()
    } else {
        format!("  [{}]", shown.join(", "))
    }
}

fn attr_text(loc: &Location, name: &str) -> String {
    let text = if let Some(s) = str_attr(loc, name) {
        format!("{s:?}")
    } else if let Some(v) = loc
        .attr(name)
        .ok()
        .and_then(|a| a.dtype().and_then(|t| t.to_descriptor()).ok())
    {
        match v {
            hdf5::types::TypeDescriptor::Float(_) => {
                f64_attr(loc, name).map_or("?".into(), |x| x.to_string())
            }
            hdf5::types::TypeDescriptor::Unsigned(_) => {
                u64_attr(loc, name).map_or("?".into(), |x| x.to_string())
            }
            hdf5::types::TypeDescriptor::Integer(_) => loc
                .attr(name)
                .and_then(|a| a.read_scalar::<i64>())
                .map_or("?".into(), |x| x.to_string()),
            other => format!("<{other}>"),
        }
    } else {
        "?".into()
    };
    if text.chars().count() > MAX_ATTR_CHARS {
        let cut: String = text.chars().take(MAX_ATTR_CHARS).collect();
        format!("{cut}…")
    } else {
        text
    }
}

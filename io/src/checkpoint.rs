//! HDF5 checkpoints: everything a restart needs, in a documented, versioned layout
//! (`io/README.md`, `docs/checkpoints.md`), written atomically and checked on load.
//!
//! - [`write_checkpoint`] captures a running simulation's world into
//!   `checkpoint-STEP.h5` through a temporary file, a flush, an fsync and a rename;
//! - [`read_checkpoint`] reads one back, rejecting what is not an HDF5 file, a truncated
//!   or damaged file, a foreign file, a wrong version, and any dataset or attribute whose
//!   content no longer matches its stored SHA-256;
//! - [`Checkpoint::take_connectivity`] and [`Checkpoint::restore`] put it back into a
//!   freshly built world of the same scene;
//! - [`read_projection`] reads one projection's connectivity, for warm starts.

mod decode;
mod inspect;
mod tree;

use std::path::{Path, PathBuf};

use bevy_ecs::world::World;
use myelin_components::{Connectivity, SynapseBlock};

use crate::recording::RecorderPositions;
use tree::{Attr, Attrs, Tree};

pub use decode::{
    Checkpoint, InputCheckpoint, PopulationCheckpoint, ProjectionCheckpoint, RecorderCheckpoint,
    StateColumn,
};
pub use inspect::inspect;

/// Value of the root attribute `format` of every checkpoint.
pub const CHECKPOINT_FORMAT: &str = "myelin-checkpoint";
/// Version of the checkpoint layout (root attribute `version`) this build writes and reads.
///
/// Version 2: the ring buffers no longer hold Poisson events in flight (an input's events
/// are drawn in the step they arrive), so a version-1 ring would count them twice.
pub const CHECKPOINT_VERSION: u64 = 2;
/// The eight bytes every HDF5 file (without a user block) starts with.
const HDF5_SIGNATURE: [u8; 8] = [0x89, b'H', b'D', b'F', b'\r', b'\n', 0x1a, b'\n'];
/// Prefix and suffix of checkpoint file names: `checkpoint-000000001500.h5`.
const FILE_PREFIX: &str = "checkpoint-";
const FILE_SUFFIX: &str = ".h5";
/// Suffix of the temporary file a checkpoint is written to before its rename.
const TMP_SUFFIX: &str = ".tmp";

/// Why a checkpoint could not be written, read or restored. Every message names the file
/// and says what is wrong.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// A file-system operation failed.
    #[error("{}: cannot {op}: {source}", file.display())]
    Fs {
        /// The file concerned.
        file: PathBuf,
        /// What was being done.
        op: String,
        /// The cause.
        source: std::io::Error,
    },
    /// An HDF5 operation failed while writing.
    #[error("{}: cannot {op}: {message}", file.display())]
    Hdf5 {
        /// The file concerned.
        file: PathBuf,
        /// What was being done, e.g. `write dataset /projections/0/blocks/3/weights`.
        op: String,
        /// HDF5's message.
        message: String,
    },
    /// The file is not an HDF5 file at all.
    #[error("{}: not an HDF5 file ({reason})", file.display())]
    NotHdf5 {
        /// The file.
        file: PathBuf,
        /// What was found instead.
        reason: String,
    },
    /// The file starts like HDF5 but the library cannot open or read it.
    #[error(
        "{}: the HDF5 file is truncated or damaged and cannot be read ({op}: {message})",
        file.display()
    )]
    Damaged {
        /// The file.
        file: PathBuf,
        /// What was being read.
        op: String,
        /// HDF5's message.
        message: String,
    },
    /// An HDF5 file, but not a Myelin checkpoint.
    #[error("{}: not a Myelin checkpoint: {reason}", file.display())]
    Foreign {
        /// The file.
        file: PathBuf,
        /// Why not.
        reason: String,
    },
    /// A Myelin checkpoint of a layout version this build does not read.
    #[error(
        "{}: checkpoint layout version {found} is not supported (this build reads version {supported})",
        file.display()
    )]
    Version {
        /// The file.
        file: PathBuf,
        /// The version found.
        found: String,
        /// The version this build reads.
        supported: u64,
    },
    /// The content does not match its stored SHA-256: the file was corrupted.
    #[error("{}: integrity check failed: {what}; the file is corrupted", file.display())]
    Corrupt {
        /// The file.
        file: PathBuf,
        /// What does not match.
        what: String,
    },
    /// A group, dataset or attribute of the layout is missing or has the wrong type or
    /// shape.
    #[error("{}: {message}", file.display())]
    Layout {
        /// The file.
        file: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The checkpoint does not fit the world (or scene) it is applied to.
    #[error("{}: {message}", file.display())]
    Mismatch {
        /// The checkpoint file.
        file: PathBuf,
        /// What does not fit, naming both values.
        message: String,
    },
}

impl CheckpointError {
    /// Whether the error says the file itself is unusable (damaged, foreign, wrong
    /// version, corrupted), as opposed to a failure to write or a mismatch.
    pub fn is_unusable_file(&self) -> bool {
        matches!(
            self,
            Self::NotHdf5 { .. }
                | Self::Damaged { .. }
                | Self::Foreign { .. }
                | Self::Version { .. }
                | Self::Corrupt { .. }
                | Self::Layout { .. }
        )
    }
}

/// What a checkpoint records about the run it belongs to, beyond the world's state.
#[derive(Clone, Debug, PartialEq)]
pub struct RunInfo {
    /// Scene name.
    pub scene_name: String,
    /// The scene file the run started from (for information; the text is stored).
    pub scene_file: String,
    /// The scene's source text.
    pub scene_source: String,
    /// Hex SHA-256 of the source text.
    pub scene_hash: String,
    /// Step at which the run ends (exclusive: the number of steps of the whole run).
    pub end_step: u64,
    /// Output folder of the run (its recordings and summary).
    pub out_dir: String,
    /// Steps between checkpoints (0: none).
    pub checkpoint_every_steps: u64,
    /// Folder of the run's checkpoints.
    pub checkpoint_dir: String,
    /// Number of checkpoints kept.
    pub keep: u64,
    /// Version of Myelin that wrote the checkpoint.
    pub myelin_version: String,
}

/// Size and timing of a written checkpoint.
#[derive(Clone, Debug, PartialEq)]
pub struct WriteStats {
    /// Final path.
    pub path: PathBuf,
    /// File size [bytes].
    pub bytes: u64,
    /// Number of datasets.
    pub datasets: usize,
    /// Content digest (hex SHA-256).
    pub digest: String,
}

/// The file name of the checkpoint at `step`: `checkpoint-000000001500.h5` (zero-padded so
/// names sort by step).
pub fn checkpoint_file_name(step: u64) -> String {
    format!("{FILE_PREFIX}{step:012}{FILE_SUFFIX}")
}

/// The checkpoints in `dir` as `(step, path)`, oldest first (by the step in the name;
/// temporary files and other files are ignored). A missing folder holds none.
pub fn list_checkpoints(dir: &Path) -> Result<Vec<(u64, PathBuf)>, CheckpointError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(CheckpointError::Fs {
                file: dir.to_path_buf(),
                op: "list the checkpoint folder".into(),
                source,
            });
        }
    };
    let mut out = Vec::new();
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let step = name
            .strip_prefix(FILE_PREFIX)
            .and_then(|s| s.strip_suffix(FILE_SUFFIX))
            .and_then(|s| s.parse::<u64>().ok());
        if let Some(step) = step {
            out.push((step, e.path()));
        }
    }
    out.sort();
    Ok(out)
}

/// Removes all but the newest `keep` checkpoints of `dir` and any temporary file a crash
/// left there. Returns the removed paths.
pub fn prune_checkpoints(dir: &Path, keep: usize) -> Result<Vec<PathBuf>, CheckpointError> {
    let list = list_checkpoints(dir)?;
    let mut removed = Vec::new();
    let drop = list.len().saturating_sub(keep);
    for (_, p) in list.into_iter().take(drop) {
        std::fs::remove_file(&p).map_err(|source| CheckpointError::Fs {
            file: p.clone(),
            op: "remove an old checkpoint".into(),
            source,
        })?;
        removed.push(p);
    }
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with(FILE_PREFIX) && name.ends_with(TMP_SUFFIX) {
                // A leftover of an interrupted write; never a usable checkpoint.
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
    Ok(removed)
}

/// Writes a checkpoint of `world` (a built simulation, between steps, its recorders
/// flushed so that `positions` are what the recording holds) to `path`, atomically: the
/// data goes to `PATH.tmp`, which is flushed, closed, synced to disk and then renamed over
/// `path`, so an interruption never leaves a partial file under a checkpoint's name and
/// never harms an older checkpoint.
pub fn write_checkpoint(
    path: &Path,
    world: &World,
    run: &RunInfo,
    positions: &RecorderPositions,
) -> Result<WriteStats, CheckpointError> {
    let tree =
        decode::capture(world, run, positions).map_err(|message| CheckpointError::Layout {
            file: path.to_path_buf(),
            message: format!("cannot capture the simulation: {message}"),
        })?;
    let digests = tree.dataset_digests();
    let digest = tree.content_digest(&digests);
    let tmp = tmp_path(path);
    let h5err = |file: &Path, op: String, e: hdf5::Error| CheckpointError::Hdf5 {
        file: file.to_path_buf(),
        op,
        message: e.to_string(),
    };
    {
        let file = crate::h5::create(&tmp)
            .map_err(|e| h5err(&tmp, "create the temporary file".into(), e))?;
        let root = file
            .group("/")
            .map_err(|e| h5err(&tmp, "open the root group".into(), e))?;
        tree::write_tree(&root, &tree, &digests, &digest).map_err(|(op, e)| h5err(&tmp, op, e))?;
        drop(root);
        file.flush()
            .map_err(|e| h5err(&tmp, "flush the file".into(), e))?;
        file.close()
            .map_err(|e| h5err(&tmp, "close the file".into(), e))?;
    }
    let fs = |file: &Path, op: &str, source| CheckpointError::Fs {
        file: file.to_path_buf(),
        op: op.into(),
        source,
    };
    std::fs::File::open(&tmp)
        .and_then(|f| f.sync_all())
        .map_err(|e| fs(&tmp, "sync the temporary file to disk", e))?;
    let bytes = std::fs::metadata(&tmp)
        .map_err(|e| fs(&tmp, "read the temporary file's size", e))?
        .len();
    std::fs::rename(&tmp, path).map_err(|e| fs(path, "rename the temporary file into place", e))?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        // Makes the rename itself durable; not all platforms can open a folder.
        let _ = std::fs::File::open(dir).and_then(|d| d.sync_all());
    }
    Ok(WriteStats {
        path: path.to_path_buf(),
        bytes,
        datasets: tree.datasets.len(),
        digest,
    })
}

fn tmp_path(path: &Path) -> PathBuf {
    let mut name = path
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(TMP_SUFFIX);
    path.with_file_name(name)
}

/// Reads and verifies the checkpoint at `path`: every dataset's elements against its
/// `sha256` attribute, and the whole tree (datasets, groups and attributes) against the
/// root's `content_sha256`.
pub fn read_checkpoint(path: &Path) -> Result<Checkpoint, CheckpointError> {
    let file = open_checkpoint(path)?;
    let root = file
        .group("/")
        .map_err(|e| damaged(path, "open the root group", e))?;
    let tree = tree::read_tree(&root).map_err(|(op, message)| CheckpointError::Damaged {
        file: path.to_path_buf(),
        op,
        message,
    })?;
    drop(root);
    drop(file);
    verify(path, &tree)?;
    decode::decode(path, tree)
}

/// Checks every dataset's digest and the content digest of a tree read from `path`.
fn verify(path: &Path, tree: &Tree<'_>) -> Result<(), CheckpointError> {
    let digests = tree.dataset_digests();
    for (p, node) in &tree.datasets {
        let stored = match node.attrs.get(tree::DATASET_DIGEST_ATTR) {
            Some(Attr::Str(s)) => s.as_str(),
            _ => {
                return Err(CheckpointError::Corrupt {
                    file: path.to_path_buf(),
                    what: format!("dataset {p} has no sha256 attribute"),
                });
            }
        };
        if digests.get(p).map(String::as_str) != Some(stored) {
            return Err(CheckpointError::Corrupt {
                file: path.to_path_buf(),
                what: format!("the elements of dataset {p} do not match their stored SHA-256"),
            });
        }
    }
    let stored = match tree
        .groups
        .get("/")
        .and_then(|a| a.get(tree::CONTENT_DIGEST_ATTR))
    {
        Some(Attr::Str(s)) => s.clone(),
        _ => {
            return Err(CheckpointError::Corrupt {
                file: path.to_path_buf(),
                what: "the root has no content_sha256 attribute".into(),
            });
        }
    };
    let actual = tree.content_digest(&digests);
    if actual != stored {
        return Err(CheckpointError::Corrupt {
            file: path.to_path_buf(),
            what: format!(
                "the content SHA-256 is {actual}, the stored one {stored} (an attribute or the structure changed)"
            ),
        });
    }
    Ok(())
}

fn damaged(path: &Path, op: &str, e: hdf5::Error) -> CheckpointError {
    CheckpointError::Damaged {
        file: path.to_path_buf(),
        op: op.into(),
        message: e.to_string(),
    }
}

/// Opens an HDF5 file for reading after checking its signature, reporting a missing,
/// empty, short or non-HDF5 file clearly.
pub(crate) fn open_hdf5(path: &Path) -> Result<hdf5::File, CheckpointError> {
    use std::io::Read;
    let mut f = std::fs::File::open(path).map_err(|source| CheckpointError::Fs {
        file: path.to_path_buf(),
        op: "open the file".into(),
        source,
    })?;
    let mut head = [0u8; 8];
    let mut got = 0;
    while got < head.len() {
        match f.read(&mut head[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(source) => {
                return Err(CheckpointError::Fs {
                    file: path.to_path_buf(),
                    op: "read the file".into(),
                    source,
                });
            }
        }
    }
    if got < head.len() {
        return Err(CheckpointError::NotHdf5 {
            file: path.to_path_buf(),
            reason: format!("the file is only {got} bytes long; truncated?"),
        });
    }
    if head != HDF5_SIGNATURE {
        return Err(CheckpointError::NotHdf5 {
            file: path.to_path_buf(),
            reason: "it does not start with the HDF5 signature".into(),
        });
    }
    crate::h5::open(path).map_err(|e| damaged(path, "open the file", e))
}

/// Opens a file and checks that it is a checkpoint of the version this build reads.
fn open_checkpoint(path: &Path) -> Result<hdf5::File, CheckpointError> {
    let file = open_hdf5(path)?;
    let format = tree::read_str_attr(&file, "format", false);
    match format {
        Some(f) if f == CHECKPOINT_FORMAT => {}
        Some(f) => {
            return Err(CheckpointError::Foreign {
                file: path.to_path_buf(),
                reason: format!("its format attribute is \"{f}\", not \"{CHECKPOINT_FORMAT}\""),
            });
        }
        None => {
            let hint = if file.attr("format_version").is_ok() && file.link_exists("spikes") {
                " (it looks like a Myelin recordings file)"
            } else {
                ""
            };
            return Err(CheckpointError::Foreign {
                file: path.to_path_buf(),
                reason: format!(
                    "it has no string attribute \"format\" = \"{CHECKPOINT_FORMAT}\" at its root{hint}"
                ),
            });
        }
    }
    let version = file.attr("version").and_then(|a| a.read_scalar::<u64>());
    match version {
        Ok(CHECKPOINT_VERSION) => Ok(file),
        Ok(v) => Err(CheckpointError::Version {
            file: path.to_path_buf(),
            found: v.to_string(),
            supported: CHECKPOINT_VERSION,
        }),
        Err(_) => Err(CheckpointError::Version {
            file: path.to_path_buf(),
            found: "(missing or not an unsigned integer)".into(),
            supported: CHECKPOINT_VERSION,
        }),
    }
}

/// One projection's connectivity read from a checkpoint, for a warm start.
#[derive(Clone, Debug)]
pub struct StoredProjection {
    /// The checkpoint file.
    pub file: PathBuf,
    /// Projection name.
    pub name: String,
    /// Source population name (in the checkpoint's scene).
    pub source: String,
    /// Target population name.
    pub target: String,
    /// Source population size.
    pub n_source: usize,
    /// Target population size.
    pub n_target: usize,
    /// Time step of the checkpoint's run [ms] (delays are in its steps).
    pub dt: f64,
    /// Delivery block size of the layout.
    pub block_size: usize,
    /// The synapses.
    pub connectivity: Connectivity,
}

/// Reads the connectivity of the projection named `name` from the checkpoint at `path`,
/// verifying each dataset it reads against its stored SHA-256 (the rest of the file is not
/// read). The error lists the projections the checkpoint holds when `name` is not one.
pub fn read_projection(path: &Path, name: &str) -> Result<StoredProjection, CheckpointError> {
    let file = open_checkpoint(path)?;
    let root = file
        .group("/")
        .map_err(|e| damaged(path, "open the root group", e))?;
    let root_attrs =
        tree::read_attrs(&root, "/").map_err(|(op, message)| CheckpointError::Damaged {
            file: path.to_path_buf(),
            op,
            message,
        })?;
    let projections = root
        .group("projections")
        .map_err(|e| damaged(path, "open group /projections", e))?;
    let mut names = Vec::new();
    let members = projections
        .member_names()
        .map_err(|e| damaged(path, "list group /projections", e))?;
    for member in members {
        let at = format!("/projections/{member}");
        let g = projections
            .group(&member)
            .map_err(|e| damaged(path, &format!("open group {at}"), e))?;
        let attrs =
            tree::read_attrs(&g, &at).map_err(|(op, message)| CheckpointError::Damaged {
                file: path.to_path_buf(),
                op,
                message,
            })?;
        let this = match attrs.get("name") {
            Some(Attr::Str(s)) => s.clone(),
            _ => continue,
        };
        if this != name {
            names.push(this);
            continue;
        }
        let mut part = Tree::default();
        part.groups.insert("/".into(), root_attrs);
        part.groups.insert(at.clone(), attrs);
        read_blocks(path, &g, &at, &mut part)?;
        let digests = part.dataset_digests();
        for (p, node) in &part.datasets {
            let ok = matches!(node.attrs.get(tree::DATASET_DIGEST_ATTR), Some(Attr::Str(s)) if Some(s) == digests.get(p));
            if !ok {
                return Err(CheckpointError::Corrupt {
                    file: path.to_path_buf(),
                    what: format!("the elements of dataset {p} do not match their stored SHA-256"),
                });
            }
        }
        return decode::stored_projection(path, part, &at);
    }
    let known = if names.is_empty() {
        "it holds no projection".to_string()
    } else {
        format!(
            "it holds {}",
            names
                .iter()
                .map(|n| format!("\"{n}\""))
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    Err(CheckpointError::Mismatch {
        file: path.to_path_buf(),
        message: format!("no projection named \"{name}\" ({known})"),
    })
}

/// Reads the block datasets of projection group `g` (at path `at`) into `part`.
fn read_blocks(
    path: &Path,
    g: &hdf5::Group,
    at: &str,
    part: &mut Tree<'static>,
) -> Result<(), CheckpointError> {
    let blocks = g
        .group("blocks")
        .map_err(|e| damaged(path, &format!("open group {at}/blocks"), e))?;
    let members = blocks
        .member_names()
        .map_err(|e| damaged(path, &format!("list group {at}/blocks"), e))?;
    for b in members {
        let bat = format!("{at}/blocks/{b}");
        let bg = blocks
            .group(&b)
            .map_err(|e| damaged(path, &format!("open group {bat}"), e))?;
        part.groups.insert(bat.clone(), Attrs::new());
        for name in decode::BLOCK_DATASETS {
            let dat = format!("{bat}/{name}");
            let ds = bg
                .dataset(name)
                .map_err(|e| damaged(path, &format!("open dataset {dat}"), e))?;
            let node =
                tree::read_node(&ds, &dat).map_err(|(op, message)| CheckpointError::Damaged {
                    file: path.to_path_buf(),
                    op,
                    message,
                })?;
            part.datasets.insert(dat, node);
        }
    }
    Ok(())
}

/// The synapse blocks of a connectivity, for callers that build one by hand.
pub fn connectivity_from_blocks(blocks: Vec<SynapseBlock>, n_source: usize) -> Connectivity {
    let max_delay = blocks
        .iter()
        .flat_map(SynapseBlock::delays)
        .max()
        .unwrap_or(1);
    Connectivity::new(blocks, n_source, max_delay)
}

/// An attribute map from pairs, for the capture code.
pub(crate) fn attrs<const N: usize>(pairs: [(&str, Attr); N]) -> Attrs {
    pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

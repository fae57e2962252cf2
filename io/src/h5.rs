//! Opening HDF5 files without HDF5's advisory file locks.
//!
//! HDF5 (1.10 and later) takes an `flock` on every file it opens, and its POSIX driver
//! opens files without `O_CLOEXEC`. A process that starts a child (a test harness running
//! the CLI, a batch script calling `myelin resume`) while a file is open hands that
//! descriptor, and with it the lock, to the child for the child's whole life: reopening the
//! file in the parent then fails with "unable to lock file, errno = 11" although nothing is
//! using it. Myelin does not rely on these locks: every file is written under a private
//! temporary name (`*.tmp`, `*.partial`) and renamed into place when complete, and a run
//! folder is owned by one run through its own lock file. So every file Myelin opens is
//! opened with HDF5's locking turned off.

use std::path::Path;

use hdf5::{File, FileBuilder, Result};

/// A file builder with HDF5's file locking off and the HDF5 1.8 object formats (every
/// metadata block is checksummed, so a damaged file is reported rather than misread).
pub fn builder() -> FileBuilder {
    let mut b = File::with_options();
    b.with_fapl(|p| p.libver_v18().file_locking(false));
    b
}

/// Opens `path` read-only.
pub fn open(path: &Path) -> Result<File> {
    builder().open(path)
}

/// Opens `path` for reading and writing.
pub fn open_rw(path: &Path) -> Result<File> {
    builder().open_rw(path)
}

/// Creates `path`, truncating a file already there.
pub fn create(path: &Path) -> Result<File> {
    builder().create(path)
}

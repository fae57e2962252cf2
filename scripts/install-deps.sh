#!/usr/bin/env bash
# Installs the system libraries Myelin builds against (Debian/Ubuntu): HDF5 (for the
# hdf5-metno crate) and pkg-config; h5py and h5dump for the tests that read our files as
# other tools would. Idempotent; run as root (or through sudo).
set -euo pipefail
need=()
dpkg -s libhdf5-dev >/dev/null 2>&1 || need+=(libhdf5-dev)
dpkg -s pkg-config >/dev/null 2>&1 || need+=(pkg-config)
dpkg -s hdf5-tools >/dev/null 2>&1 || need+=(hdf5-tools)
dpkg -s python3-h5py >/dev/null 2>&1 || need+=(python3-h5py)
# plotters (PNG/SVG figures of `myelin analyze`) lays out text with fontconfig and FreeType.
dpkg -s libfontconfig1-dev >/dev/null 2>&1 || need+=(libfontconfig1-dev)
dpkg -s libfreetype-dev >/dev/null 2>&1 || need+=(libfreetype-dev)
dpkg -s fonts-dejavu-core >/dev/null 2>&1 || need+=(fonts-dejavu-core)
# Distributed runs (cargo feature `mpi`): Open MPI, and libclang for rsmpi's bindgen.
dpkg -s openmpi-bin >/dev/null 2>&1 || need+=(openmpi-bin)
dpkg -s libopenmpi-dev >/dev/null 2>&1 || need+=(libopenmpi-dev)
dpkg -s libclang-dev >/dev/null 2>&1 || need+=(libclang-dev)
if [ ${#need[@]} -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}"
fi
echo "system dependencies present: libhdf5-dev pkg-config hdf5-tools python3-h5py libfontconfig1-dev libfreetype-dev fonts-dejavu-core openmpi-bin libopenmpi-dev libclang-dev"

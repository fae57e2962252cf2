#!/usr/bin/env python3
"""Exit 0 when two Myelin recordings files hold bit-identical datasets (same names, shapes,
types and bytes), else print every difference and exit 1. Used by scripts/mpi-check.sh to
compare MPI runs with the single-process run."""
import sys

import h5py
import numpy as np


def datasets(path):
    out = {}
    with h5py.File(path, "r") as f:
        def visit(name, obj):
            if isinstance(obj, h5py.Dataset):
                out[name] = obj[()]
        f.visititems(visit)
    return out


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: compare-recordings.py REFERENCE.h5 CANDIDATE.h5")
    ref, cand = datasets(sys.argv[1]), datasets(sys.argv[2])
    problems = []
    for name in sorted(set(ref) | set(cand)):
        if name not in cand:
            problems.append(f"{name}: missing from {sys.argv[2]}")
        elif name not in ref:
            problems.append(f"{name}: not in {sys.argv[1]}")
        else:
            a, b = np.asarray(ref[name]), np.asarray(cand[name])
            if a.shape != b.shape or a.dtype != b.dtype or a.tobytes() != b.tobytes():
                problems.append(
                    f"{name}: differs ({a.shape} {a.dtype} vs {b.shape} {b.dtype})")
    spikes = sum(np.asarray(v).size for k, v in ref.items() if k.endswith("/senders"))
    if problems:
        print(f"MISMATCH {sys.argv[2]} vs {sys.argv[1]}:")
        for p in problems:
            print("  " + p)
        sys.exit(1)
    print(f"identical: {sys.argv[2]} == {sys.argv[1]} ({len(ref)} datasets, {spikes} spikes)")


if __name__ == "__main__":
    main()

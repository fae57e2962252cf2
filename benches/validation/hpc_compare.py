#!/usr/bin/env python3
"""Compares runs of a scene with plasticity in Myelin and NEST (several seeds each): rates,
peak rates and the final weight distributions, per run and over runs (the seed-to-seed
spread is the sampling error of one run).

    myelin check SCENE.ron --json > scene.json
    myelin run SCENE.ron --seed S --out MYELIN_DIR                      # for a few seeds S
    $PYTHON nest_run.py scene.json NEST_DIR --threads 2 --seed S --hpc  # the same seeds
    $PYTHON hpc_compare.py --myelin MYELIN_DIR... --nest NEST_DIR... [--from MS]

Needs numpy, scipy and h5py. Runs of either simulator are read from their recordings.h5
(Myelin's layout; nest_run.py writes the same) and summary.json.
"""
import argparse
import json
import os
import sys

import h5py
import numpy as np


def stats(run_dir, t_from):
    """Per population: mean rate [Hz] over [t_from, end] and the standard error of the mean
    over neurons; per weight recorder: the last sample's weights."""
    out = {"rates": {}, "weights": {}}
    with h5py.File(os.path.join(run_dir, "recordings.h5")) as f:
        dt = float(f.attrs["dt"])
        for label, g in f["spikes"].items():
            t = g["times"][:]
            s = g["senders"][:]
            n = int(g.attrs["recorded_neurons"])
            t_end = float(json.load(open(os.path.join(run_dir, "summary.json")))["duration_ms"])
            keep = t > t_from
            counts = np.bincount(s[keep], minlength=int(g.attrs["n_neurons"]))
            rates = counts * 1000.0 / (t_end - t_from)
            if n < len(rates):
                rates = rates[np.unique(s)] if len(s) else rates[:n]
            out["rates"][label] = (rates.mean(), rates.std(ddof=1) / np.sqrt(len(rates)), len(rates))
            h, _ = np.histogram(t, bins=np.arange(0.0, t_end + 1e-9, 25.0))
            out.setdefault("peak", {})[label] = h.max() * 1000.0 / 25.0 / n
        for label, g in f.get("weights", {}).items():
            out["weights"][label] = (float(g["times"][-1]), g["values"][-1].astype(np.float64))
    return out


def compare(myelin_dirs, nest_dirs, t_from):
    """Prints rates and final weight distributions of Myelin and NEST runs (one or more seeds
    each) side by side; the spread over seeds is the sampling error of one run."""
    from scipy import stats as st
    runs = [("myelin", d, stats(d, t_from)) for d in myelin_dirs] + [("nest", d, stats(d, t_from)) for d in nest_dirs]
    print(f"rates over ({t_from}, end] ms: mean over neurons +- standard error of that mean")
    for label in runs[0][2]["rates"]:
        for sim, d, r in runs:
            m, se, n = r["rates"][label]
            print(f"  {label:<4} {sim:<7} {m:8.3f} +- {se:.3f} Hz  ({n} neurons)  {d}")
    for label in runs[0][2]["weights"]:
        print(f"weights {label} at the end of the run [pA]: mean, std, quantiles 1 %, 50 %, 99 %")
        for sim, d, r in runs:
            t, w = r["weights"][label]
            q = np.quantile(w, [0.01, 0.5, 0.99])
            print(f"  {sim:<7} t={t:g} ms  n={len(w)}  mean {w.mean():.4f} (se {w.std() / np.sqrt(len(w)):.4f})  std {w.std():.4f}"
                  f"  q {q[0]:.3f} {q[1]:.3f} {q[2]:.3f}  {d}")
        ms = [r["weights"][label][1] for sim, _, r in runs if sim == "myelin"]
        ns = [r["weights"][label][1] for sim, _, r in runs if sim == "nest"]
        for i, a in enumerate(ms):
            for j, b in enumerate(ns):
                ks = st.ks_2samp(a, b)
                print(f"  KS myelin[{i}] vs nest[{j}]: D = {ks.statistic:.4f}, p = {ks.pvalue:.3g}")
        for group, xs in (("myelin", ms), ("nest", ns)):
            for i in range(len(xs)):
                for j in range(i + 1, len(xs)):
                    ks = st.ks_2samp(xs[i], xs[j])
                    print(f"  KS {group}[{i}] vs {group}[{j}] (seed to seed): D = {ks.statistic:.4f}, p = {ks.pvalue:.3g}")
    # Per run (seed) statistics, and whether the two simulators' runs come from one
    # distribution (Mann-Whitney U over seeds: the seed-to-seed spread is the sampling error).
    wl = next(iter(runs[0][2]["weights"]), None)
    print("per run: E rate [Hz], peak 25-ms E rate [Hz], final weight mean and std [pA]")
    table = {"myelin": [], "nest": []}
    for sim, d, r in runs:
        row = [r["rates"]["E"][0], r["peak"]["E"]]
        if wl:
            w = r["weights"][wl][1]
            row += [w.mean(), w.std()]
        table[sim].append(row)
        print(f"  {sim:<7} " + "  ".join(f"{x:9.4f}" for x in row) + f"  {d}")
    names = ["E rate", "peak rate", "w mean", "w std"]
    a, b = np.array(table["myelin"]), np.array(table["nest"])
    for k in range(a.shape[1]):
        u = st.mannwhitneyu(a[:, k], b[:, k], alternative="two-sided") if len(a) > 1 and len(b) > 1 else None
        print(f"  {names[k]:<10} myelin {np.median(a[:, k]):9.4f} (median of {len(a)}; {a[:, k].min():.4f} .. {a[:, k].max():.4f})"
              f"   nest {np.median(b[:, k]):9.4f} (median of {len(b)}; {b[:, k].min():.4f} .. {b[:, k].max():.4f})"
              + (f"   Mann-Whitney p = {u.pvalue:.3g}" if u else ""))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--myelin", nargs="+", required=True, help="Myelin output folders (one per seed)")
    ap.add_argument("--nest", nargs="+", required=True, help="NEST output folders (one per seed)")
    ap.add_argument("--from", dest="t_from", type=float, default=50.0,
                    help="rates from this time [ms] (default 50: the HPC benchmark's presimulation)")
    a = ap.parse_args()
    return compare(a.myelin, a.nest, a.t_from)


if __name__ == "__main__":
    sys.exit(main())

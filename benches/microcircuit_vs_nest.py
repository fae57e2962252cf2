#!/usr/bin/env python3
"""Myelin and NEST on one scene (by default the full Potjans-Diesmann microcircuit), run
alternately on the same machine, and one table with the medians and the ratios.

    cargo build --release
    $PYTHON benches/microcircuit_vs_nest.py [--repeats 3] [--out bench-results/mc_vs_nest]
        [--scene scenes/microcircuit.ron] [--myelin-threads 2] [--nest-threads 4]
        [--duration MS] [--python NEST_PYTHON]

Repeat r runs Myelin, then NEST (r even) or NEST, then Myelin (r odd), so that a slow drift
of the machine's load hits both alike. Each run is a fresh process; its peak resident
memory comes from wait4(2), its construction and simulation times from its summary.json
(Myelin's own, and nest_run.py's: wall time around nest.Connect... and nest.Run). The load
average before and after each run is kept: the machines we develop on are shared.

Writes OUT/runs.json (every run) and OUT/table.md (the table, also printed). Needs a NEST
3.x interpreter with h5py (default: $MYELIN_NEST_PYTHON, else python3). The full
microcircuit needs 4 NEST threads (NEST caps connections per thread) and about 15 GB.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))


def run(cmd, log):
    """Runs cmd with output to log; returns (exit code, wall seconds, peak RSS bytes)."""
    t0 = time.time()
    with open(log, "w") as f:
        p = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT)
        _, status, ru = os.wait4(p.pid, 0)
    return os.waitstatus_to_exitcode(status), time.time() - t0, ru.ru_maxrss * 1024


def one(sim, args, scene_json, r):
    out = os.path.join(args.out, f"{sim}-r{r}")
    log = out + ".log"
    if sim == "myelin":
        cmd = [args.myelin, "run", args.scene, "--out", out, "--overwrite", "--quiet",
               "--threads", str(args.myelin_threads)]
        if args.duration:
            cmd += ["--duration", str(args.duration)]
    else:
        cmd = [args.python, os.path.join(ROOT, "benches", "validation", "nest_run.py"), scene_json, out,
               "--threads", str(args.nest_threads)]
        if args.duration:
            cmd += ["--duration", str(args.duration)]
    load_before = os.getloadavg()[0]
    code, wall, rss = run(cmd, log)
    if code != 0:
        sys.exit(f"{sim} run {r} failed (exit {code}); see {log}")
    s = json.load(open(os.path.join(out, "summary.json")))
    rec = {
        "simulator": sim,
        "repeat": r,
        "construction_s": s["construction_s"],
        "simulation_s": s["simulation_s"],
        "real_time_factor": s["real_time_factor"],
        "peak_rss_bytes": rss,
        "wall_s": wall,
        "load_before": load_before,
        "load_after": os.getloadavg()[0],
        "synapses": s.get("synapses"),
    }
    if sim == "myelin":
        rec["phases_s"] = dict(s["phases_s"])
        rec["synapse_bytes"] = s.get("synapse_bytes")
        rec["ring_bytes"] = s.get("ring_bytes")
    print(f"{sim:<6} r{r}: construction {rec['construction_s']:8.2f} s  simulation {rec['simulation_s']:8.2f} s  "
          f"RTF {rec['real_time_factor']:7.2f}  peak {rss / 2**30:6.2f} GiB  load {load_before:.1f} -> {rec['load_after']:.1f}",
          flush=True)
    return rec


def med(runs, key):
    v = [x[key] for x in runs]
    return statistics.median(v), min(v), max(v)


def table(runs, args):
    my = [x for x in runs if x["simulator"] == "myelin"]
    ne = [x for x in runs if x["simulator"] == "nest"]
    rows = [("construction [s]", "construction_s", 1.0), ("simulation [s]", "simulation_s", 1.0),
            ("real-time factor", "real_time_factor", 1.0), ("peak memory [GiB]", "peak_rss_bytes", 2.0**-30)]
    lines = [f"Scene {args.scene}, Myelin {args.myelin_threads} threads, NEST {args.nest_threads} threads, "
             f"{len(my)} and {len(ne)} runs alternated (median, min-max); ratio NEST / Myelin of the medians.", "",
             "| | Myelin | NEST | NEST / Myelin |", "|---|---|---|---|"]
    for name, key, scale in rows:
        a, b = med(my, key), med(ne, key) if ne else (float("nan"),) * 3
        lines.append(f"| {name} | {a[0] * scale:.2f} ({a[1] * scale:.2f}-{a[2] * scale:.2f}) | "
                     f"{b[0] * scale:.2f} ({b[1] * scale:.2f}-{b[2] * scale:.2f}) | {b[0] / a[0]:.2f}x |")
    lines += ["", "Myelin per phase (median over runs) [s]: " + ", ".join(
        f"{p} {statistics.median(x['phases_s'][p] for x in my):.2f}" for p in my[0]["phases_s"]
        if statistics.median(x["phases_s"][p] for x in my) >= 0.01)]
    lines.append("Load average (1 min) around the runs: " + ", ".join(
        f"{x['simulator']} r{x['repeat']} {x['load_before']:.1f}->{x['load_after']:.1f}" for x in runs))
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scene", default=os.path.join(ROOT, "scenes", "microcircuit.ron"))
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", default=os.path.join(ROOT, "bench-results", "mc_vs_nest"))
    ap.add_argument("--myelin", default=os.path.join(ROOT, "target", "release", "myelin"))
    ap.add_argument("--myelin-threads", type=int, default=2)
    ap.add_argument("--nest-threads", type=int, default=4)
    ap.add_argument("--duration", type=float, help="simulated time [ms] (default: the scene's)")
    ap.add_argument("--python", default=os.environ.get("MYELIN_NEST_PYTHON", "python3"))
    ap.add_argument("--no-nest", action="store_true", help="Myelin only (no NEST on this machine)")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    scene_json = os.path.join(args.out, "scene.json")
    with open(scene_json, "w") as f:
        if subprocess.run([args.myelin, "check", args.scene, "--json"], stdout=f).returncode != 0:
            sys.exit(f"myelin check {args.scene} failed")
    runs = []
    for r in range(args.repeats):
        order = ["myelin"] if args.no_nest else (["myelin", "nest"] if r % 2 == 0 else ["nest", "myelin"])
        for sim in order:
            runs.append(one(sim, args, scene_json, r))
            json.dump(runs, open(os.path.join(args.out, "runs.json"), "w"), indent=1)
    text = table(runs, args) if not args.no_nest else table(runs + [], args)
    open(os.path.join(args.out, "table.md"), "w").write(text)
    print(text)


if __name__ == "__main__":
    sys.exit(main())

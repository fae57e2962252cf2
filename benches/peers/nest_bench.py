#!/usr/bin/env python3
"""NEST peer adapter of `myelin bench`: runs a benchmark case in NEST 3.x and appends
records of Myelin's benchmark schema (docs/benchmarking.md) to the same store.

`myelin bench SUITE --peers nest` calls it; by hand:

    python nest_bench.py --probe        # prints the NEST version; exit 3 when NEST is missing
    python nest_bench.py JOB.json       # runs the job's repeats, appends one record each

JOB.json (written by `myelin bench`) holds the validated scene as JSON (`myelin check
--json`), the threads, duration, seed and number of repeats, a scratch folder, the store
file, and the record `template` (suite, case, parameters, machine metadata) that each repeat
fills with its timers and results, and `args`, the case's `peer_args` for nest_run.py (e.g.
`--hpc`). Each repeat runs in a fresh Python process (`--one`),
which builds and simulates the scene with benches/validation/nest_run.py (imported, not
copied) and then reads NEST's own kernel timers. The parent measures the child's peak
memory and CPU time with wait4(2), and the load other processes put on the machine.

Needs NEST 3.x, h5py and numpy; pick the interpreter with `myelin bench --python` or
MYELIN_NEST_PYTHON.
"""
import copy
import datetime
import fcntl
import json
import os
import sys
import time

# NEST prints a banner on import unless told not to.
os.environ.setdefault("PYNEST_QUIET", "1")

HERE = os.path.dirname(os.path.abspath(__file__))
VALIDATION = os.path.join(HERE, "..", "validation")

# Exit status when NEST (or h5py, numpy) cannot be imported.
EXIT_NO_NEST = 3
# Clock ticks per second of /proc/stat (USER_HZ, 100 on every Linux ABI).
USER_HZ = 100.0
# Bytes per unit of ru_maxrss (KiB on Linux).
MAXRSS_UNIT = 1024
# Lines of a failed run's log shown in the error.
LOG_TAIL = 15
# NEST kernel timers read after a run, and the record field each fills.
KERNEL_TIMERS = {
    "time_construction_create": "create_s",
    "time_construction_connect": "connect_s",
}


def probe():
    try:
        import h5py  # noqa: F401
        import numpy  # noqa: F401
        import nest
    except Exception as e:  # ImportError, or NEST failing to start
        print(f"{type(e).__name__}: {e}", file=sys.stderr)
        return EXIT_NO_NEST
    print(f"NEST {nest.__version__}")
    return 0


def machine_busy_s():
    """Busy CPU time of the whole machine so far [s] (first line of /proc/stat)."""
    try:
        with open("/proc/stat") as f:
            cols = [int(x) for x in f.readline().split()[1:9]]
    except (OSError, ValueError):
        return None
    return (sum(cols) - cols[3] - cols[4]) / USER_HZ


def utc_now():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def one(argv):
    """One run in this (fresh) process: nest_run.py, then the kernel timers and spikes."""
    import h5py
    import nest
    import numpy as np

    scene_json, out_dir, result, threads, duration, seed, *extra = argv
    sys.path.insert(0, VALIDATION)
    import nest_run

    sys.argv = ["nest_run.py", scene_json, out_dir, "--threads", threads, "--duration", duration, "--seed", seed, *extra]
    nest_run.main()
    with open(os.path.join(out_dir, "summary.json")) as f:
        summary = json.load(f)
    ks = nest.GetKernelStatus()
    spikes = 0
    with h5py.File(os.path.join(out_dir, "recordings.h5"), "r") as f:
        for g in f["spikes"].values():
            spikes += len(g["times"])
    info = nest.build_info if hasattr(nest, "build_info") else {}
    # Some timers are per thread (arrays): the slowest thread is the wall time.
    timers = {k: float(np.max(ks[k])) for k in list(KERNEL_TIMERS) + ["time_simulate", "time_communicate_prepare"] if k in ks}
    out = {
        "version": nest.__version__,
        "summary": summary,
        "kernel": timers,
        "spikes": spikes,
        "build": {k: str(info.get(k)) for k in ("threads_model", "have_mpi", "have_gsl", "ndebug") if k in info},
    }
    with open(result, "w") as f:
        json.dump(out, f)
    return 0


def tail(path, n=LOG_TAIL):
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-n:])
    except OSError:
        return ""


def append(store_file, record):
    os.makedirs(os.path.dirname(os.path.abspath(store_file)), exist_ok=True)
    line = json.dumps(record, separators=(",", ":")) + "\n"
    with open(store_file, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        f.write(line)
        f.flush()
        fcntl.flock(f, fcntl.LOCK_UN)


def run_job(job_file):
    with open(job_file) as f:
        job = json.load(f)
    template = job["template"]
    duration_s = job["duration_ms"] / 1000.0
    for r in range(job["repeats"]):
        out_dir = os.path.join(job["work_dir"], f"nest-r{r}")
        log = os.path.join(job["work_dir"], f"nest-r{r}.log")
        result = os.path.join(job["work_dir"], f"nest-r{r}.result.json")
        argv = [sys.executable, os.path.abspath(__file__), "--one", job["scene_json"], out_dir, result,
                str(job["threads"]), repr(float(job["duration_ms"])), str(job["seed"]), *job.get("args", [])]
        load = list(os.getloadavg())
        date = utc_now()
        busy0 = machine_busy_s()
        t0 = time.monotonic()
        actions = [
            (os.POSIX_SPAWN_OPEN, 1, log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644),
            (os.POSIX_SPAWN_DUP2, 1, 2),
        ]
        pid = os.posix_spawn(sys.executable, argv, os.environ, file_actions=actions)
        _, status, ru = os.wait4(pid, 0)
        wall = time.monotonic() - t0
        busy1 = machine_busy_s()
        code = os.waitstatus_to_exitcode(status)
        if code != 0:
            print(f"{tail(log)}\nNEST run {r + 1}/{job['repeats']} failed (exit {code}); the end of its log is above", file=sys.stderr)
            return 1
        with open(result) as f:
            res = json.load(f)
        s, k = res["summary"], res["kernel"]
        cpu = ru.ru_utime + ru.ru_stime
        rec = copy.deepcopy(template)
        rec["simulator_version"] = res["version"]
        rec["repeat"] = r
        timers = {
            "wall_s": wall,
            "construction_s": s["construction_s"],
            "create_s": None,
            "connect_s": None,
            "prepare_s": None,
            "simulation_s": s["simulation_s"],
            "inputs_s": None,
            "integrate_s": None,
            "exchange_s": None,
            "deliver_s": None,
            "plasticity_s": None,
            "record_s": None,
            "checkpoint_s": None,
        }
        for name, field in KERNEL_TIMERS.items():
            if isinstance(k.get(name), (int, float)):
                timers[field] = float(k[name])
        if timers["create_s"] is not None and timers["connect_s"] is not None:
            # Devices, Prepare() and Python around the kernel calls.
            timers["prepare_s"] = max(0.0, s["construction_s"] - timers["create_s"] - timers["connect_s"])
        rec["timers"] = timers
        rec["results"] = {
            "real_time_factor": s["simulation_s"] / duration_s if duration_s > 0 else 0.0,
            "peak_rss_bytes": ru.ru_maxrss * MAXRSS_UNIT,
            "neurons": int(s["neurons"]),
            "synapses": int(s["synapses"]),
            "spikes": int(res["spikes"]),
            "cpu_s": cpu,
        }
        meta = rec["meta"]
        meta["date"] = date
        meta["load_avg"] = load
        meta["foreign_load"] = (max(0.0, (busy1 - busy0 - cpu) / wall)
                                if busy0 is not None and busy1 is not None and wall > 0 else None)
        extra = dict(meta.get("extra") or {})
        extra.update({f"nest_{key}": v for key, v in res["build"].items()})
        meta["extra"] = extra
        append(job["store_file"], rec)
        print(f"repeat {r + 1}/{job['repeats']}: construction {s['construction_s']:.3f} s, "
              f"simulation {s['simulation_s']:.3f} s, RTF {rec['results']['real_time_factor']:.3f}, "
              f"peak {ru.ru_maxrss * MAXRSS_UNIT / 2**20:.0f} MiB", flush=True)
        for name in ("recordings.h5", "summary.json"):
            try:
                os.remove(os.path.join(out_dir, name))
            except OSError:
                pass
    return 0


def main():
    args = sys.argv[1:]
    if args == ["--probe"]:
        return probe()
    if len(args) >= 7 and args[0] == "--one":
        return one(args[1:])
    if len(args) == 1 and not args[0].startswith("-"):
        return run_job(args[0])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())

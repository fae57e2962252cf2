#!/usr/bin/env python3
"""Compares two simulators over an ensemble of seeds, one value per run: the right test
when neurons of one run are not independent samples (an oscillating network makes
single-run two-sample tests over neurons anti-conservative).

    python ensemble.py --a 'runs/my_*.json' --b 'runs/nest_*.json' [--markdown]

Each file is `myelin analyze OUT --json` output. Prints per population and measure
(rate, CV, synchrony) the mean +- standard deviation over seeds of each simulator and
Welch's t-test p-value for equal means.
"""
import argparse
import glob
import json
import statistics
import sys

from scipy import stats

MEASURES = [("rate_hz", "rate [Hz]"), ("cv_isi", "CV ISI"), ("synchrony", "synchrony")]


def load(pattern):
    files = sorted(glob.glob(pattern))
    if not files:
        raise SystemExit(f"no files match {pattern}")
    return [json.load(open(f)) for f in files]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--a", required=True, help="glob of the first simulator's analysis JSON files")
    ap.add_argument("--b", required=True, help="glob of the second simulator's")
    ap.add_argument("--names", default="Myelin,NEST")
    ap.add_argument("--markdown", action="store_true")
    args = ap.parse_args()
    a, b = load(args.a), load(args.b)
    na, nb = args.names.split(",")
    rows = []
    for pop in a[0]:
        for key, label in MEASURES:
            xa = [r[pop][key] for r in a]
            xb = [r[pop][key] for r in b]
            t = stats.ttest_ind(xa, xb, equal_var=False)
            rows.append([pop, label, f"{statistics.mean(xa):.3f} ± {statistics.stdev(xa):.3f}", f"{statistics.mean(xb):.3f} ± {statistics.stdev(xb):.3f}", f"{t.pvalue:.2f}"])
    head = ["population", "measure", f"{na} (n={len(a)})", f"{nb} (n={len(b)})", "Welch p"]
    if args.markdown:
        print("| " + " | ".join(head) + " |")
        print("|" + "---|" * len(head))
        for r in rows:
            print("| " + " | ".join(r) + " |")
    else:
        w = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(head)]
        for r in [head] + rows:
            print("  ".join(c.rjust(w[i]) for i, c in enumerate(r)))
    return 0


if __name__ == "__main__":
    sys.exit(main())

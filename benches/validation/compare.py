#!/usr/bin/env python3
"""Side-by-side statistics of a Myelin run and a NEST run of the same scene.

    myelin analyze MYELIN_OUT --json --per-neuron > myelin.json
    myelin analyze NEST_OUT   --json --per-neuron > nest.json
    python compare.py myelin.json nest.json [--published microcircuit] [--markdown]

Prints, per population: the mean rate, CV of ISIs and synchrony of both runs, and
two-sample Kolmogorov-Smirnov tests on the per-neuron rate and CV distributions
(p > 0.05: no evidence that the distributions differ). With `--published microcircuit`
also the published full-scale rates of Potjans & Diesmann (2014) and whether each
population is within 10 % (or 0.3 Hz) of them.
"""
import argparse
import json
import math
import sys

from scipy import stats

PUBLISHED = {
    "microcircuit": dict(zip(["L23E", "L23I", "L4E", "L4I", "L5E", "L5I", "L6E", "L6I"], [0.903, 2.965, 4.414, 5.876, 7.569, 8.633, 1.105, 7.829])),
}
#: REFERENCES.md: a population's rate must be within 10 % or 0.3 Hz of the published one.
REL_TOL, ABS_TOL_HZ = 0.10, 0.3


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("myelin")
    ap.add_argument("nest")
    ap.add_argument("--published", choices=sorted(PUBLISHED))
    ap.add_argument("--markdown", action="store_true")
    a = ap.parse_args()
    m, n = json.load(open(a.myelin)), json.load(open(a.nest))
    pub = PUBLISHED.get(a.published, {})
    head = ["population", "rate Myelin [Hz]", "rate NEST [Hz]", "CV Myelin", "CV NEST", "sync Myelin", "sync NEST", "KS rates D (p)", "KS CV D (p)"]
    if pub:
        head += ["published [Hz]", "Myelin within tol."]
    rows, ok = [], True
    for pop, x in m.items():
        y = n.get(pop)
        if y is None:
            continue
        kr = stats.ks_2samp(x["rates_hz"], y["rates_hz"])
        kc = stats.ks_2samp(x["cvs"], y["cvs"]) if x["cvs"] and y["cvs"] else None
        row = [pop, f"{x['rate_hz']:.3f}", f"{y['rate_hz']:.3f}", f"{x['cv_isi']:.3f}", f"{y['cv_isi']:.3f}", f"{x['synchrony']:.2f}", f"{y['synchrony']:.2f}", f"{kr.statistic:.3f} ({kr.pvalue:.2g})", f"{kc.statistic:.3f} ({kc.pvalue:.2g})" if kc else "-"]
        if pub:
            p = pub[pop]
            within = abs(x["rate_hz"] - p) <= max(REL_TOL * p, ABS_TOL_HZ)
            ok &= within
            row += [f"{p:.3f}", "yes" if within else "NO"]
        rows.append(row)
    if a.markdown:
        print("| " + " | ".join(head) + " |")
        print("|" + "---|" * len(head))
        for r in rows:
            print("| " + " | ".join(r) + " |")
    else:
        w = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(head)]
        print("  ".join(h.rjust(w[i]) for i, h in enumerate(head)))
        for r in rows:
            print("  ".join(c.rjust(w[i]) for i, c in enumerate(r)))
    if pub and not ok:
        print("some populations are outside the published tolerance", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

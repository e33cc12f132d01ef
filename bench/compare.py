#!/usr/bin/env python3
"""ferrite beside PyTorch (and beside burn's own CPU operations), interleaved, several rounds.

Each round runs, for every network: `ferrite bench`, `ferrite bench --burn-ops` and
`bench/pytorch_reference.py`, one after the other, so that all three see the same machine
state; the table reports the median of the rounds. This machine's timings drift by 10-20 %
from minute to minute (a shared VM), which is why single runs are not compared.

    python3 bench/compare.py --rounds 3 [--ferrite target/release/ferrite]
"""
import argparse
import json
import statistics
import subprocess
import sys

ITERS = {"ferrite": 8, "mini-xception": 8, "vgg13": 3}
FIELDS = ["train_images_per_second", "infer_images_per_second", "latency_ms_p50", "peak_rss_mib"]


def run(cmd):
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--ferrite", default="target/release/ferrite", help="the ferrite binary")
    ap.add_argument("--arch", action="append", help="networks (default: all three)")
    args = ap.parse_args()
    archs = args.arch or list(ITERS)
    runs = {(a, who): [] for a in archs for who in ("ferrite", "burn", "pytorch")}
    for r in range(args.rounds):
        for a in archs:
            it = str(ITERS[a])
            runs[(a, "ferrite")].append(run([args.ferrite, "bench", "--arch", a, "--iters", it, "--json"]))
            runs[(a, "burn")].append(run([args.ferrite, "bench", "--arch", a, "--iters", it, "--json", "--burn-ops"]))
            runs[(a, "pytorch")].append(run([sys.executable, "bench/pytorch_reference.py", "--arch", a, "--iters", it, "--json"]))
        print(f"round {r + 1}/{args.rounds} done", file=sys.stderr)

    def med(a, who, field):
        return statistics.median(x[field] for x in runs[(a, who)] if x.get(field) is not None)

    print("| network | train img/s ferrite | burn ops | PyTorch | ratio | infer img/s ferrite | PyTorch | "
          "latency ms ferrite | PyTorch | ratio | peak RSS MiB ferrite | PyTorch |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for a in archs:
        f = {k: med(a, "ferrite", k) for k in FIELDS}
        b = {k: med(a, "burn", k) for k in FIELDS}
        p = {k: med(a, "pytorch", k) for k in FIELDS}
        print(f"| `{a}` | {f['train_images_per_second']:.1f} | {b['train_images_per_second']:.1f} | "
              f"{p['train_images_per_second']:.1f} | **{f['train_images_per_second'] / p['train_images_per_second']:.2f}** | "
              f"{f['infer_images_per_second']:.0f} | {p['infer_images_per_second']:.0f} | "
              f"{f['latency_ms_p50']:.2f} | {p['latency_ms_p50']:.2f} | **{p['latency_ms_p50'] / f['latency_ms_p50']:.2f}** | "
              f"{f['peak_rss_mib']:.0f} | {p['peak_rss_mib']:.0f} |")


if __name__ == "__main__":
    main()

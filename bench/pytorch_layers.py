#!/usr/bin/env python3
"""Each 3x3 convolution of `ferrite` and VGG13 split into its three parts (forward, input
gradient, weight gradient), timed in PyTorch, to set beside our kernels'
`cargo bench --workspace --bench conv_parts` (same shapes, batch 64, same table).

CPU, 2 threads by default; milliseconds per call, median of 7.

    pip install torch
    python3 bench/pytorch_layers.py
"""
import argparse
import time

import torch

BATCH = 64
# (input channels, output channels, side): `ferrite`'s convolutions after its first, then
# VGG13's after its first.
SHAPES = [
    (16, 16, 48), (16, 32, 24), (32, 32, 24), (32, 96, 12), (96, 96, 12), (96, 192, 6), (192, 192, 6),
    (64, 64, 48), (64, 128, 24), (128, 128, 24), (128, 256, 12), (256, 256, 12), (256, 256, 6),
]


def median_ms(f, runs=7):
    f()
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        f()
        times.append(time.perf_counter() - t)
    return sorted(times)[runs // 2] * 1e3


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"batch {BATCH}; ms per call (median of 7); PyTorch {torch.__version__}, "
          f"{torch.backends.cpu.get_cpu_capability()}, {args.threads} threads")
    print()
    print("| conv | fwd | dx | dw | fwd GFLOP/s |")
    print("|---|---:|---:|---:|---:|")
    for cin, cout, side in SHAPES:
        x = torch.randn(BATCH, cin, side, side)
        w = torch.randn(cout, cin, 3, 3)
        g = torch.randn(BATCH, cout, side, side)

        def grads(mask):
            return torch.ops.aten.convolution_backward(
                g, x, w, None, [1, 1], [1, 1], [1, 1], False, [0, 0], 1, mask)

        fwd = median_ms(lambda: torch.nn.functional.conv2d(x, w, padding=1))
        dx = median_ms(lambda: grads([True, False, False]))
        dw = median_ms(lambda: grads([False, True, False]))
        macs = BATCH * cin * cout * 9 * side * side
        print(f"| {cin}→{cout} at {side}x{side} | {fwd:.2f} | {dx:.2f} | {dw:.2f} | {2 * macs / fwd / 1e6:.0f} |")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""The networks of `ferrite info` in PyTorch, timed the way `ferrite bench` times them.

Same layers, same input (1x48x48), same batch; training = forward + backward + SGD step,
inference = eval-mode forward, batch-1 latency = p50/p95 of single-face forwards.
CPU, 2 threads by default. Used for docs/performance.md (ferrite / PyTorch on one machine).

    pip install torch
    python3 bench/pytorch_reference.py --arch ferrite --json
"""
import argparse
import json
import resource
import time

import torch
from torch import nn


def conv_bn_relu(cin, cout, pad=1):
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=pad, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class Residual(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.a = conv_bn_relu(c, c)
        self.conv = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(c)

    def forward(self, x):
        return torch.relu(x + self.bn(self.conv(self.a(x))))


def ferrite(classes):
    pool = nn.MaxPool2d(2)
    return nn.Sequential(
        conv_bn_relu(1, 16), conv_bn_relu(16, 16), pool,
        conv_bn_relu(16, 32), conv_bn_relu(32, 32), pool,
        conv_bn_relu(32, 96), Residual(96), pool,
        conv_bn_relu(96, 192), Residual(192), pool,
        nn.Flatten(), nn.Dropout(0.5), nn.Linear(192 * 3 * 3, classes),
    )


class SeparableBn(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.dw = nn.Conv2d(cin, cin, 3, padding=1, groups=cin, bias=False)
        self.pw = nn.Conv2d(cin, cout, 1, bias=False)
        self.bn = nn.BatchNorm2d(cout)

    def forward(self, x):
        return self.bn(self.pw(self.dw(x)))


class XceptionModule(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride=2, bias=False), nn.BatchNorm2d(cout))
        self.sep1 = SeparableBn(cin, cout)
        self.sep2 = SeparableBn(cout, cout)
        self.pool = nn.MaxPool2d(3, stride=2, padding=1)

    def forward(self, x):
        return self.pool(self.sep2(torch.relu(self.sep1(x)))) + self.shortcut(x)


def mini_xception(classes):
    layers = [conv_bn_relu(1, 8, pad=0), conv_bn_relu(8, 8, pad=0)]
    cin = 8
    for cout in (16, 32, 64, 128):
        layers.append(XceptionModule(cin, cout))
        cin = cout
    layers += [nn.Conv2d(cin, classes, 3, padding=1), nn.AdaptiveAvgPool2d(1), nn.Flatten()]
    return nn.Sequential(*layers)


def vgg13(classes):
    layers, cin = [], 1
    for width, n in ((64, 2), (128, 2), (256, 3), (256, 3)):
        for _ in range(n):
            layers += [nn.Conv2d(cin, width, 3, padding=1), nn.ReLU(inplace=True)]
            cin = width
        layers += [nn.MaxPool2d(2), nn.Dropout(0.25)]
    layers += [nn.Flatten(), nn.Linear(256 * 3 * 3, 1024), nn.ReLU(inplace=True), nn.Dropout(0.5),
               nn.Linear(1024, 1024), nn.ReLU(inplace=True), nn.Dropout(0.5), nn.Linear(1024, classes)]
    return nn.Sequential(*layers)


ARCHS = {"ferrite": ferrite, "mini-xception": mini_xception, "vgg13": vgg13}


def macs(model):
    """Multiply-adds per image of convolutions and linear layers, as `ferrite info` counts them
    (without the batch-norm and pooling terms, which are under 1 %)."""
    total = 0

    def hook(module, inputs, output):
        nonlocal total
        if isinstance(module, nn.Conv2d):
            k = module.kernel_size[0] * module.kernel_size[1] * module.in_channels // module.groups
            total += output.numel() * k
        elif isinstance(module, nn.Linear):
            total += module.in_features * module.out_features

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    model.eval()
    with torch.no_grad():
        model(torch.zeros(1, 1, 48, 48))
    for h in handles:
        h.remove()
    return total


def face_like(n, device):
    i = torch.arange(48, dtype=torch.float32)
    img = (torch.sin(i * 0.07)[None, :] + torch.cos(i * 0.05)[:, None]) * 0.8
    return img.expand(n, 1, 48, 48).contiguous().to(device)


def bench(arch, batch, warmup, iters, classes, device):
    model = ARCHS[arch](classes)
    m = macs(model)
    params = sum(p.numel() for p in model.parameters() if p.requires_grad)
    # `.item()` below waits for the device, so the timings hold on CUDA too.
    model = model.to(device)
    x, y = face_like(batch, device), (torch.arange(batch) % classes).to(device)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    loss_fn = nn.CrossEntropyLoss()
    model.train()
    for i in range(warmup + iters):
        if i == warmup:
            start = time.perf_counter()
        opt.zero_grad()
        loss = loss_fn(model(x), y)
        loss.item()
        loss.backward()
        opt.step()
    train_ips = iters * batch / (time.perf_counter() - start)

    model.eval()
    with torch.no_grad():
        for i in range(warmup + iters):
            if i == warmup:
                start = time.perf_counter()
            model(x)[0, 0].item()
        infer_ips = iters * batch / (time.perf_counter() - start)
        x1 = face_like(1, device)
        for _ in range(max(warmup, 3)):
            model(x1)
        times = []
        for _ in range(iters * 4):
            t = time.perf_counter()
            model(x1)[0, 0].item()
            times.append((time.perf_counter() - t) * 1000)
    times.sort()
    pct = lambda p: times[round((len(times) - 1) * p)]
    return {
        "arch": arch, "batch": batch, "params": params, "macs_per_image": m,
        "train_images_per_second": train_ips, "infer_images_per_second": infer_ips,
        "latency_ms_p50": pct(0.5), "latency_ms_p95": pct(0.95),
        "train_gflops": train_ips * m * 2 * 3 / 1e9, "infer_gflops": infer_ips * m * 2 / 1e9,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "threads": torch.get_num_threads(), "torch": torch.__version__, "device": device,
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--arch", choices=sorted(ARCHS), default="ferrite")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--iters", type=int, default=10)
    ap.add_argument("--classes", type=int, default=7)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu", help="cpu, or cuda to measure PyTorch on the GPU")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    r = bench(a.arch, a.batch, 2, a.iters, a.classes, a.device)
    if a.json:
        print(json.dumps(r, indent=2))
    else:
        print(f"{r['arch']} ({r['params']} params, {r['macs_per_image'] / 1e6:.1f} M MACs/image), batch {r['batch']}, "
              f"{r['threads']} threads, device {r['device']}, torch {r['torch']}")
        print(f"  train      {r['train_images_per_second']:8.1f} img/s  ({r['train_gflops']:.1f} GFLOP/s)")
        print(f"  inference  {r['infer_images_per_second']:8.1f} img/s  ({r['infer_gflops']:.1f} GFLOP/s)")
        print(f"  batch-1    {r['latency_ms_p50']:8.2f} ms p50, {r['latency_ms_p95']:.2f} ms p95")
        print(f"  peak RSS   {r['peak_rss_mib']:8.0f} MiB")


if __name__ == "__main__":
    main()

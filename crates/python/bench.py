"""What the Python layer costs: the same calls timed from Rust and from Python, interleaved.

    python crates/python/bench.py [ROUNDS]      (with the wheel installed; see README, Python)

Each round runs the Rust side (`cargo bench -p ferrite-infer --bench calls`, which also
writes the inputs) and then the Python side on the same inputs: classifying 64 ready
48x48 crops (`Model.classify`), predicting a 640x480 one-face photo from its pixels
(`Model.predict(array)`) and from its file (`Model.predict(path)`), and classifying one
crop, where the cost of a call shows most. Median milliseconds of 30 calls (100 for one
crop) after 3 warm-up calls each; prints a Markdown table and nothing else is
asserted.
"""

import json
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

import ferrite

ROOT = pathlib.Path(__file__).resolve().parents[2]


def median_ms(f, runs=30, warmup=3):
    """Median milliseconds of `runs` calls of `f`, after `warmup` calls."""
    for _ in range(warmup):
        f()
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        f()
        times.append((time.perf_counter() - t) * 1e3)
    return statistics.median(times)


def rust(folder):
    out = subprocess.run(
        ["cargo", "bench", "-q", "-p", "ferrite-infer", "--bench", "calls", "--", str(folder)],
        cwd=ROOT, capture_output=True, text=True, check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def python(model, folder):
    faces = np.fromfile(folder / "faces64.u8", np.uint8).reshape(64, 48, 48)
    photo = folder / "portrait.jpg"
    from PIL import Image

    pixels = np.asarray(Image.open(photo).convert("RGB"))
    return {
        "classify1_ms": median_ms(lambda: model.classify(faces[:1]), runs=100),
        "classify64_ms": median_ms(lambda: model.classify(faces)),
        "predict_pixels_ms": median_ms(lambda: model.predict(pixels)),
        "predict_file_ms": median_ms(lambda: model.predict(photo)),
    }


def main():
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    model = ferrite.Model()
    rows = {k: ([], []) for k in ["classify1_ms", "classify64_ms", "predict_pixels_ms", "predict_file_ms"]}
    with tempfile.TemporaryDirectory() as d:
        folder = pathlib.Path(d)
        for _ in range(rounds):
            r = rust(folder)
            p = python(model, folder)
            for k, (rs, ps) in rows.items():
                rs.append(r[k])
                ps.append(p[k])
    names = {
        "classify1_ms": "classify 1 crop",
        "classify64_ms": "classify 64 crops",
        "predict_pixels_ms": "predict 640x480 photo, pixels",
        "predict_file_ms": "predict 640x480 photo, JPEG file",
    }
    print("| call | Rust ms | Python ms | overhead ms |")
    print("|---|---:|---:|---:|")
    for k, (rs, ps) in rows.items():
        r, p = statistics.median(rs), statistics.median(ps)
        print(f"| {names[k]} | {' / '.join(f'{x:.2f}' for x in rs)} | "
              f"{' / '.join(f'{x:.2f}' for x in ps)} | {p - r:+.2f} |")


if __name__ == "__main__":
    main()

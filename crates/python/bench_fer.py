"""ferrite against the `fer` package (https://pypi.org/project/fer/), on the same machine:
time per photo and accuracy on FER2013's PrivateTest faces.

    pip install fer    # TensorFlow, PyTorch and OpenCV, about 3 GB; not a test dependency
    python crates/python/bench_fer.py speed PHOTO...
    python crates/python/bench_fer.py accuracy ../shared/data/fer2013/fer2013.csv.gz

speed: each photo decoded once (OpenCV), then the median of 5 calls after one warm-up of
`ferrite.Model().predict(rgb)` (built-in model) and of fer's `FER().detect_emotions(bgr)`
(its default OpenCV face detector) and `FER(mtcnn=True)` (its MTCNN detector); faces found.
accuracy: the 3,589 PrivateTest faces, each given whole: ferrite's FER2013 model
(`models/fer2013.safetensors`) through `Model.classify`, fer through `detect_emotions` with
the face's rectangle (its own padding and resizing), with its default quantized TFLite model
and its Keras model, each with its default 10-pixel margin and without. No choice is made
on these numbers.
"""

import csv
import gzip
import pathlib
import statistics
import sys
import time

import numpy as np

import ferrite
from bench import median_ms  # crates/python/bench.py, beside this file

ROOT = pathlib.Path(__file__).resolve().parents[2]
# fer's class order is FER2013's.
FER_ORDER = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]


def fer_class():
    try:
        from fer import FER
    except ImportError:  # fer 25 moved it
        from fer.fer import FER
    return FER


def speed(photos):
    import cv2

    FER = fer_class()

    ours = ferrite.Model()
    detectors = {"fer (OpenCV detector)": FER(), "fer (MTCNN)": FER(mtcnn=True)}
    print("| photo | size | ferrite ms | faces | " + " | ".join(f"{n} ms | faces" for n in detectors) + " |")
    print("|---|---|---:|---:|" + "---:|---:|" * len(detectors))
    totals = {"ferrite": []} | {n: [] for n in detectors}
    for path in photos:
        bgr = cv2.imread(str(path))
        rgb = np.ascontiguousarray(bgr[..., ::-1])
        cells = [pathlib.Path(path).name, f"{bgr.shape[1]}x{bgr.shape[0]}"]
        t = median_ms(lambda: ours.predict(rgb), runs=5, warmup=1)
        totals["ferrite"].append(t)
        cells += [f"{t:.1f}", str(len(ours.predict(rgb)))]
        for name, det in detectors.items():
            t = median_ms(lambda: det.detect_emotions(bgr), runs=5, warmup=1)
            totals[name].append(t)
            cells += [f"{t:.1f}", str(len(det.detect_emotions(bgr)))]
        print("| " + " | ".join(cells) + " |")
    print()
    for name, ts in totals.items():
        print(f"{name}: median {statistics.median(ts):.1f} ms per photo over {len(ts)} photos")


def accuracy(csv_gz):
    FER = fer_class()
    faces, labels = [], []
    with gzip.open(csv_gz, "rt", newline="") as f:
        for row in csv.DictReader(f):
            if row["Usage"] == "PrivateTest":
                faces.append(np.array(row["pixels"].split(), np.uint8).reshape(48, 48))
                labels.append(int(row["emotion"]))
    faces, labels = np.stack(faces), np.array(labels)
    ours = ferrite.Model(ROOT / "models" / "fer2013.safetensors")
    t = time.perf_counter()
    pred = ours.classify(faces).argmax(axis=1)
    ours_s = time.perf_counter() - t
    print(f"ferrite ({ours.info['source']}): {100 * (pred == labels).mean():.2f} % "
          f"of {len(labels)} in {ours_s:.1f} s")
    # fer's default (its quantized TFLite model, 10 pixels of margin added around the box)
    # and its float Keras model, each with its margin and without (the face as given).
    for tflite in (True, False):
        for offsets in ((10, 10), (0, 0)):
            det = FER(use_tflite=tflite, offsets=offsets)
            hits, t = 0, time.perf_counter()
            for face, label in zip(faces, labels):
                bgr = np.repeat(face[..., None], 3, axis=2)
                found = det.detect_emotions(bgr, face_rectangles=[(0, 0, 48, 48)])
                if found:
                    e = found[0]["emotions"]
                    hits += max(FER_ORDER, key=lambda c: e[c]) == FER_ORDER[label]
            model = "TFLite (default)" if tflite else "Keras"
            print(f"fer, {model} model, offsets {offsets}: {100 * hits / len(labels):.2f} % "
                  f"of {len(labels)} in {time.perf_counter() - t:.1f} s")


if __name__ == "__main__":
    if len(sys.argv) < 3 or sys.argv[1] not in ("speed", "accuracy"):
        sys.exit(__doc__)
    if sys.argv[1] == "speed":
        speed(sys.argv[2:])
    else:
        accuracy(sys.argv[2])

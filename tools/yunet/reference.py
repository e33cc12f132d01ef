#!/usr/bin/env python3
"""Reference YuNet detections from onnxruntime, for the fidelity test of ferrite's detector.

    python3 tools/yunet/reference.py ../shared/models/yunet/yunet_n_dynamic.onnx \
        ../shared/data/faces-eval/dlib crates/infer/tests/fixtures/yunet_reference.json

Needs `onnxruntime`, `numpy` and `pillow` (pip); never run by ferrite or its tests, which read
only the JSON it writes. Each image is fed at its own size (no resize, so both sides see the
same pixels up to JPEG decoding), as BGR 0-255 floats padded with zeros at the bottom and right
to a multiple of 32. Decoding is the one in the weights' README (and OpenCV's FaceDetectorYN):
score = sqrt(cls * obj), boxes and landmarks from the cell, then a score threshold and greedy
NMS. Coordinates are in image pixels; boxes are [x, y, width, height].
"""
import json
import os
import sys

import numpy as np
import onnxruntime as ort
from PIL import Image

SCORE_THRESHOLD = 0.5
NMS_IOU = 0.3
STRIDES = (8, 16, 32)
# Left out: Pillow (libjpeg-turbo) and the `image` crate (zune-jpeg) decode this 1986x1545
# JPEG up to 14 grey levels apart (mean 0.16), which moves the landmarks of its largest faces
# by up to 1.7 px, more than the test allows. On Pillow's pixels, saved as PNG, ferrite's
# detector gives these boxes and landmarks to within 1e-4 px: the difference is the decoder's.
DECODER_DEPENDENT = {"bald_guys.jpg"}


def detect(session, rgb):
    h, w = rgb.shape[:2]
    ph, pw = -(-h // 32) * 32, -(-w // 32) * 32
    x = np.zeros((1, 3, ph, pw), np.float32)
    x[0, :, :h, :w] = rgb[:, :, ::-1].transpose(2, 0, 1)
    names = [o.name for o in session.get_outputs()]
    out = dict(zip(names, session.run(names, {"input": x})))
    faces = []
    for s in STRIDES:
        cols = pw // s
        cls, obj = out[f"cls_{s}"][0, :, 0], out[f"obj_{s}"][0, :, 0]
        bbox, kps = out[f"bbox_{s}"][0], out[f"kps_{s}"][0]
        score = np.sqrt(np.clip(cls, 0, 1) * np.clip(obj, 0, 1))
        for i in np.nonzero(score >= SCORE_THRESHOLD)[0]:
            r, c = divmod(int(i), cols)
            cx, cy = (c + bbox[i, 0]) * s, (r + bbox[i, 1]) * s
            bw, bh = np.exp(bbox[i, 2]) * s, np.exp(bbox[i, 3]) * s
            marks = [[float((c + kps[i, 2 * k]) * s), float((r + kps[i, 2 * k + 1]) * s)] for k in range(5)]
            faces.append({"box": [float(cx - bw / 2), float(cy - bh / 2), float(bw), float(bh)],
                          "score": float(score[i]), "landmarks": marks})
    faces.sort(key=lambda f: -f["score"])
    kept = []
    for f in faces:
        if all(iou(f["box"], k["box"]) <= NMS_IOU for k in kept):
            kept.append(f)
    return kept


def iou(a, b):
    ix = max(0.0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / (a[2] * a[3] + b[2] * b[3] - inter)


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    model, folder, dst = sys.argv[1:]
    session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    images = {}
    for name in sorted(os.listdir(folder)):
        if not name.endswith(".jpg") or name in DECODER_DEPENDENT:
            continue
        rgb = np.asarray(Image.open(os.path.join(folder, name)).convert("RGB"))
        images[name] = {"width": rgb.shape[1], "height": rgb.shape[0], "faces": detect(session, rgb)}
    doc = {
        "model": os.path.basename(model),
        "onnxruntime": ort.__version__,
        "score_threshold": SCORE_THRESHOLD,
        "nms_iou": NMS_IOU,
        "images": images,
    }
    os.makedirs(os.path.dirname(dst), exist_ok=True)
    with open(dst, "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    print(f"{dst}: {sum(len(v['faces']) for v in images.values())} faces in {len(images)} images")


if __name__ == "__main__":
    main()

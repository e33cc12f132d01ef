"""The Python package against the command line, on real photos and clips.

Run by `crates/python/test.sh` (which `.ci/run` calls): the wheel built from the workspace
is installed in a virtualenv, and `FERRITE_BIN` names the `ferrite` program of the same
build. Clips come from `../shared/data/video` (read there, never copied): without them the
video tests are skipped, or fail under `FERRITE_REQUIRE_DATA=1`.
"""

import csv
import json
import os
import pathlib
import subprocess
import threading

import numpy as np
import pytest
from PIL import Image

import ferrite

ROOT = pathlib.Path(__file__).resolve().parents[3]
PHOTO = ROOT / "photos" / "solvay-1927.jpg"
FERRITE_BIN = os.environ.get("FERRITE_BIN", str(ROOT / "target" / "release" / "ferrite"))
DATA = pathlib.Path(os.environ.get("FERRITE_DATA_DIR", ROOT.parent / "shared" / "data"))


def clip(name):
    path = DATA / "video" / name
    if not path.exists():
        if os.environ.get("FERRITE_REQUIRE_DATA") == "1":
            pytest.fail(f"{path} missing and FERRITE_REQUIRE_DATA=1")
        pytest.skip(f"SKIPPED: {path} not found")
    return path


def run(*args):
    return subprocess.run([FERRITE_BIN, *map(str, args)], capture_output=True, text=True)


def cli_json(*args):
    out = run("predict", "--json", *args)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


@pytest.fixture(scope="module")
def model():
    return ferrite.Model()


@pytest.fixture(scope="module")
def group_png(tmp_path_factory):
    """The group photo as PNG: both decoders then see the same pixels (JPEG decoders differ)."""
    path = tmp_path_factory.mktemp("photos") / "group.png"
    Image.open(PHOTO).save(path)
    return path


def test_the_built_in_model_is_the_cli_s(model):
    doc = cli_json(PHOTO)
    assert model.classes == doc["model"]["classes"]
    assert model.info["dataset"] == doc["model"]["dataset"]
    assert model.info["arch"] == doc["model"]["arch"]
    assert model.info["input_size"] == [48, 48]
    assert "built-in" in repr(model)


def test_predict_gives_what_predict_json_gives(model, group_png, tmp_path):
    crop = tmp_path / "crop.png"
    Image.open(group_png).crop((820, 200, 980, 380)).save(crop)
    doc = cli_json(PHOTO, group_png, crop)
    want = [image["faces"] for image in doc["images"]]
    assert len(want[0]) == 29
    assert model.predict(PHOTO) == want[0]
    assert model.predict_many([str(PHOTO), group_png, crop]) == want
    # A face crop taken whole, without detection.
    whole = cli_json("--no-detect", crop)["images"][0]["faces"]
    assert model.predict(crop, detect=False) == whole
    assert whole[0]["box"] is None


def test_every_layout_of_the_same_pixels_gives_the_same_faces(model, group_png, tmp_path):
    want = model.predict(group_png)
    assert len(want) == 29
    rgb = np.asarray(Image.open(group_png).convert("RGB"))
    alpha = np.full(rgb.shape[:2] + (1,), 255, np.uint8)
    layouts = {
        "RGB array": (rgb, "RGB"),
        "BGR view (negative strides)": (rgb[..., ::-1], "BGR"),
        "BGR copy (OpenCV)": (np.ascontiguousarray(rgb[..., ::-1]), "BGR"),
        "Fortran order": (np.asfortranarray(rgb), "RGB"),
        "RGBA": (np.concatenate([rgb, alpha], axis=2), "RGB"),
        "PIL image": (Image.open(group_png), "RGB"),
        "bytes": (group_png.read_bytes(), "RGB"),
        "bytearray": (bytearray(group_png.read_bytes()), "RGB"),
        "str path": (str(group_png), "RGB"),
    }
    for name, (image, channels) in layouts.items():
        assert model.predict(image, channels=channels) == want, name
    # Gray: an (H, W) array, an (H, W, 1) array and the gray file agree.
    gray_png = tmp_path / "gray.png"
    Image.open(group_png).convert("L").save(gray_png)
    gray = np.asarray(Image.open(gray_png))
    want_gray = model.predict(gray_png)
    assert len(want_gray) >= 25
    assert model.predict(gray) == want_gray
    assert model.predict(gray[..., None]) == want_gray
    # A palette PIL image is converted, not read as palette indices.
    assert len(model.predict(Image.open(group_png).convert("P"))) >= 25


def face_crops(model, group_png):
    """48x48 gray crops of the faces of the group photo, square around each box."""
    img = Image.open(group_png).convert("L")
    crops = []
    for f in model.predict(group_png):
        b = f["box"]
        side = max(b["width"], b["height"])
        cx, cy = b["x"] + b["width"] / 2, b["y"] + b["height"] / 2
        box = (cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2)
        crops.append(np.asarray(img.crop(tuple(map(round, box))).resize((48, 48))))
    return np.stack(crops)


def test_classify_takes_ready_crops_in_batches(model, group_png, tmp_path):
    crops = face_crops(model, group_png)
    probs = model.classify(crops)
    assert probs.shape == (len(crops), len(model.classes))
    assert probs.dtype == np.float32
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    # The same as one at a time, and as `predict --no-detect` on the crop as a file.
    np.testing.assert_allclose(model.classify(crops[3]), probs[3], atol=1e-5)
    path = tmp_path / "face.png"
    Image.fromarray(crops[3]).save(path)
    cli = cli_json("--no-detect", path)["images"][0]["faces"][0]["probabilities"]
    np.testing.assert_allclose([cli[c] for c in model.classes], probs[3], atol=1e-5)
    # Strided input (every other face).
    np.testing.assert_allclose(model.classify(crops[::2]), probs[::2], atol=1e-5)


def test_bad_input_raises_a_clear_exception(model, tmp_path):
    notes = tmp_path / "notes.jpg"
    notes.write_text("not an image")
    cases = [
        (np.zeros((10, 10), np.float64), TypeError, "uint8"),
        (np.zeros((10, 10, 2), np.uint8), ValueError, "shape"),
        (np.zeros((0, 10, 3), np.uint8), ValueError, "no pixels"),
        (tmp_path / "missing.jpg", FileNotFoundError, "missing.jpg"),
        (notes, ValueError, "not an image format"),
        (b"", ValueError, "empty"),
        (b"\x89PNG\r\n\x1a\n truncated", ValueError, "cannot"),
        (42, TypeError, "expected an image"),
        ([[1, 2], [3, 4]], TypeError, "expected an image"),
    ]
    for image, error, says in cases:
        with pytest.raises(error, match=says):
            model.predict(image)
    # The same message as the command line.
    with pytest.raises(ValueError) as raised:
        model.predict(notes)
    assert str(raised.value) in run("predict", notes).stderr
    with pytest.raises(ValueError, match="channels"):
        model.predict(np.zeros((48, 48, 3), np.uint8), channels="HSV")
    with pytest.raises(ValueError, match="minimum detector score 2 is outside"):
        model.predict(PHOTO, min_score=2.0)
    with pytest.raises(ValueError, match="detect_size"):
        model.predict(PHOTO, detect_size="huge")
    with pytest.raises(ValueError, match="shape"):
        model.classify(np.zeros((2, 32, 32), np.uint8))
    with pytest.raises(TypeError, match="uint8"):
        model.classify(np.zeros((2, 48, 48), np.float32))
    with pytest.raises(FileNotFoundError, match="nope.safetensors"):
        ferrite.Model(tmp_path / "nope.safetensors")
    with pytest.raises(ValueError, match="cannot load model"):
        ferrite.Model(notes)
    with pytest.raises(ValueError):
        ferrite.Model(device="tpu")
    # Still alive, still right.
    assert len(model.predict(PHOTO)) == 29


def test_many_threads_share_one_model(model):
    want = model.predict(PHOTO)
    results, errors = [], []

    def work():
        try:
            for _ in range(3):
                results.append(model.predict(PHOTO))
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(results) == 24
    assert all(r == want for r in results)


def test_the_gil_is_free_while_predicting(model):
    # A pure-Python thread counts while a slow prediction runs: it can only count if the
    # prediction let go of the GIL.
    count, stop = [0], threading.Event()

    def counter():
        while not stop.is_set():
            count[0] += 1

    t = threading.Thread(target=counter)
    t.start()
    try:
        before = count[0]
        model.predict(PHOTO, detect_size="full")
        during = count[0] - before
    finally:
        stop.set()
        t.join()
    assert during > 10_000, f"the counter ran {during} times during predict"


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_video_rows_are_the_cli_s_csv(model, tmp_path):
    path = clip("single_face.mp4")
    rows = list(ferrite.video(path, fps=5))
    out = tmp_path / "rows.csv"
    done = run("video", path, "--fps", 5, "--csv", out)
    assert done.returncode == 0, done.stderr
    want = read_csv(out)
    assert len(rows) == len(want) >= 10
    for r, w in zip(rows, want):
        assert r["frame"] == int(w["frame"])
        assert abs(r["time"] - float(w["time"])) < 1e-6
        assert r["track"] == int(w["track"])
        assert r["emotion"] == w["emotion"]
        for key in ["x", "y", "width", "height", "nose_x", "mouth_left_y"]:
            assert abs(r[key] - float(w[key])) <= 0.051, key
        for c in model.classes:
            assert abs(r[c] - float(w[c])) <= 6e-6, c
    # Keys in the CSV's order, so a DataFrame of the rows has the CSV's columns.
    assert list(rows[0]) == [k for k in want[0] if k != "video"]


def test_video_frames_without_faces_are_rows_too(model):
    rows = list(ferrite.video(clip("no_face.mp4"), fps=4, model=model))
    assert len(rows) >= 10
    assert all(r["track"] is None and r["emotion"] is None for r in rows)
    times = [r["time"] for r in rows]
    assert times == sorted(times)


def test_video_errors_are_clear(tmp_path):
    notes = tmp_path / "notes.mp4"
    notes.write_text("not a video")
    with pytest.raises(FileNotFoundError, match="missing.mp4"):
        ferrite.video(tmp_path / "missing.mp4")
    with pytest.raises(ValueError, match="not a video"):
        ferrite.video(notes)
    with pytest.raises(ValueError, match="fps"):
        ferrite.video(notes, fps=0)


def test_the_type_stub_matches_the_module():
    import ast

    stub = ast.parse((ROOT / "crates" / "python" / "ferrite.pyi").read_text())
    top = {n.name: n for n in stub.body if isinstance(n, (ast.ClassDef, ast.FunctionDef))}
    for name in ["Model", "VideoRows", "video"]:
        assert name in top and hasattr(ferrite, name), name
    methods = {n.name for n in top["Model"].body if isinstance(n, ast.FunctionDef)}
    public = {m for m in dir(ferrite.Model) if not m.startswith("_")}
    assert public == methods - {"__init__"}, (public, methods)


def test_a_list_of_models_is_an_ensemble(tmp_path):
    fer2013 = ROOT / "models" / "fer2013.safetensors"
    single, twice = ferrite.Model(fer2013), ferrite.Model([fer2013, str(fer2013)])
    assert twice.info["models"] == 2 and single.info["models"] == 1
    # A model averaged with itself says what it says alone.
    assert twice.predict(PHOTO) == single.predict(PHOTO)
    with pytest.raises(ValueError, match="share their classes"):
        ferrite.Model([fer2013, ROOT / "models" / "ferplus.safetensors"])
    with pytest.raises(FileNotFoundError):
        ferrite.Model([fer2013, tmp_path / "missing.safetensors"])
    with pytest.raises(TypeError, match="list of paths"):
        ferrite.Model(42)
    with pytest.raises(ValueError, match="empty list"):
        ferrite.Model([])

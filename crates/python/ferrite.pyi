"""ferrite: facial expression recognition on an ordinary CPU, with a built-in model.

    import ferrite
    model = ferrite.Model()                      # the built-in model, no download
    for face in model.predict("photo.jpg"):      # or bytes, a numpy array, a PIL image
        print(face["box"], face["emotion"], face["probability"])
"""

import os
from typing import Any, Iterable, Iterator, Literal, Optional, TypedDict, Union

import numpy as np
import numpy.typing as npt

__version__: str

class Box(TypedDict):
    x: float
    y: float
    width: float
    height: float

class Face(TypedDict):
    """One face, with the fields of `ferrite predict --json`."""

    box: Optional[Box]  # None with detect=False
    score: Optional[float]  # the detector's confidence
    landmarks: Optional[dict[str, list[float]]]  # right_eye, left_eye, nose, mouth_right, mouth_left: [x, y]
    emotion: str  # the most probable class
    probability: float  # its probability
    probabilities: dict[str, float]  # every class

Image = Union[str, os.PathLike[str], bytes, bytearray, npt.NDArray[np.uint8], Any]
"""A path, an image file's bytes, a uint8 array (H, W), (H, W, 1), (H, W, 3) or (H, W, 4), or a PIL image."""

DetectSize = Union[int, Literal["full"]]

class Model:
    """A facial expression model. Safe to share between threads; calls release the GIL."""

    def __init__(
        self,
        path: Optional[Union[str, os.PathLike[str], list[Union[str, os.PathLike[str]]]]] = None,
        device: str = "cpu",
    ) -> None:
        """path: a model file from `ferrite train`, or a list of them run as an ensemble
        (probabilities averaged; same classes), or None: the built-in model.
        device: "cpu", or "gpu" / "gpu:N" in a build with the `gpu` feature."""
    @property
    def classes(self) -> list[str]:
        """The class names, in the order of the probabilities."""
    @property
    def info(self) -> dict[str, Any]:
        """source, models (how many are averaged), arch, dataset, classes, input_size,
        val_split, val_accuracy, epochs, created_by."""
    def predict(
        self,
        image: Image,
        *,
        channels: Literal["RGB", "BGR"] = "RGB",
        detect: bool = True,
        align: bool = True,
        min_face: int = 16,
        min_score: float = 0.6,
        detect_size: Optional[DetectSize] = None,
    ) -> list[Face]:
        """The faces of one image, largest first.

        channels: the order of a colour array's channels ("BGR" for OpenCV arrays).
        detect: False takes the whole image as one face crop.
        align: turn each face upright by its eye line before classifying.
        min_face: smallest face kept, in pixels; min_score: smallest detector score kept.
        detect_size: the longest side the image is searched at (default 640), or "full"
        for crowds of small faces in large photos."""
    def predict_many(
        self,
        images: Iterable[Image],
        *,
        channels: Literal["RGB", "BGR"] = "RGB",
        detect: bool = True,
        align: bool = True,
        min_face: int = 16,
        min_score: float = 0.6,
        detect_size: Optional[DetectSize] = None,
    ) -> list[list[Face]]:
        """`predict` for many images, their faces classified in shared batches."""
    def classify(self, faces: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
        """Probabilities of ready 48x48 gray face crops: (N, 48, 48) -> (N, classes), or
        (48, 48) -> (classes,). No detection, no framing."""

class VideoRows(Iterator[dict[str, Any]]):
    """Rows of a video, made as you iterate: one per sampled frame and face, one per
    sampled frame without a face (face fields None). `pandas.DataFrame(rows)` gives the
    table of `ferrite video --csv`: frame, time, track, x, y, width, height, score, the five
    landmarks' <name>_x and <name>_y, emotion, then one probability per class."""

    def __iter__(self) -> "VideoRows": ...
    def __next__(self) -> dict[str, Any]: ...

def video(
    path: Union[str, os.PathLike[str]],
    *,
    fps: Optional[float] = None,
    start: Optional[float] = None,
    end: Optional[float] = None,
    model: Optional[Model] = None,
    align: bool = True,
    min_face: int = 16,
    min_score: float = 0.6,
    detect_size: Optional[DetectSize] = None,
) -> VideoRows:
    """The rows of a video file (read by the ffmpeg program; GIF/APNG without it).

    fps: frames analysed per second of video, sampled by time (default: every frame).
    start, end: the span, in seconds. model: default the built-in model."""

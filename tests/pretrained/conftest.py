"""Real inputs for the pretrained transformers: packaged photos, rendered text."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import skimage.data
from sklearn.datasets import load_sample_images

RENDERED_TEXT = "Spark reads text"


def png(image_rgb: np.ndarray) -> bytes:
    ok, encoded = cv2.imencode(".png", cv2.cvtColor(image_rgb, cv2.COLOR_RGB2BGR))
    assert ok
    return encoded.tobytes()


@pytest.fixture(scope="session")
def sample_photos() -> dict[str, bytes]:
    """scikit-learn's two JPEG sample photos, by file name."""
    paths = [Path(name) for name in load_sample_images().filenames]
    return {path.name: path.read_bytes() for path in paths}


@pytest.fixture(scope="session")
def astronaut_png() -> bytes:
    """scikit-image's astronaut photo (Eileen Collins): one frontal face."""
    return png(skimage.data.astronaut())


@pytest.fixture(scope="session")
def rendered_text() -> str:
    """The line that ``text_png`` shows."""
    return RENDERED_TEXT


@pytest.fixture(scope="session")
def text_png() -> bytes:
    """A white image with one line of black printed text."""
    image = np.full((120, 600, 3), 255, np.uint8)
    cv2.putText(
        image, RENDERED_TEXT, (20, 75), cv2.FONT_HERSHEY_SIMPLEX, 1.6, (0, 0, 0), 3
    )
    return png(image)


@pytest.fixture(scope="session")
def image_folder(tmp_path_factory, sample_photos, astronaut_png, text_png) -> Path:
    """The photos and the rendered text as files, as a user's folder holds them."""
    folder = tmp_path_factory.mktemp("images")
    for name, data in sample_photos.items():
        (folder / name).write_bytes(data)
    (folder / "astronaut.png").write_bytes(astronaut_png)
    (folder / "text.png").write_bytes(text_png)
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not really a JPEG")
    return folder


@pytest.fixture
def text_frame(spark):
    """Build a one-partition frame of texts, so one worker loads each model."""

    def build(values: list[str | None]):
        rows = [(value,) for value in values]
        return spark.createDataFrame(rows, "text string").coalesce(1)

    return build


@pytest.fixture
def image_frame(spark):
    """Build a one-partition frame of image bytes in a ``content`` column."""

    def build(values: list[bytes | None]):
        rows = [(index, value) for index, value in enumerate(values)]
        frame = spark.createDataFrame(rows, "id int, content binary")
        return frame.coalesce(1)

    return build

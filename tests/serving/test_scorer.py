"""The Spark-free scorer: hashing parity, input checks, unsupported stages."""

from __future__ import annotations

import json
import shutil

import pytest
from pyspark.ml.classification import NaiveBayes
from pyspark.ml.feature import FeatureHasher, HashingTF

import sparktrain
from sparktrain.serving import ExportError, RequestError, Scorer
from sparktrain.serving._features import java_double
from sparktrain.serving._murmur import bucket

TRICKY = [
    "", "a", "ab", "abc", "abcd", "abcde", "abcdefg", "héllo", "日本語", "ß",
    "naïve café", "emoji😀", "don't", "x" * 13, "TAB\tinside", "a=b",
]  # fmt: skip


def test_hashing_matches_spark(spark):
    frame = spark.createDataFrame(
        [(w, [w]) for w in TRICKY], "w string, t array<string>"
    )
    frame = HashingTF(inputCol="t", outputCol="tf", numFeatures=1 << 18).transform(
        frame
    )
    frame = FeatureHasher(
        inputCols=["w"], categoricalCols=["w"], outputCol="fh", numFeatures=1000
    ).transform(frame)

    for row in frame.collect():
        assert row.tf.indices.tolist() == [bucket(row.w, 1 << 18)], row.w
        assert row.fh.indices.tolist() == [bucket(f"w={row.w}", 1000)], row.w


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (1.0, "1.0"),
        (0.25, "0.25"),
        (1e7, "1.0E7"),
        (12345678.9, "1.23456789E7"),
        (1e-4, "1.0E-4"),
        (-2.5e-10, "-2.5E-10"),
        (0.001, "0.001"),
        (-0.0, "-0.0"),
    ],
)
def test_doubles_as_spark_writes_them(value, text):
    assert java_double(value) == text


@pytest.fixture(scope="module")
def scorer(credit_gbt):
    return Scorer.load(credit_gbt)


@pytest.fixture(scope="module")
def record(credit_pdf):
    row = credit_pdf.drop(columns=["Status"]).dropna().iloc[0].to_dict()
    return {k: v.item() if hasattr(v, "item") else v for k, v in row.items()}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"Age": "old"}, "row 0, field 'Age': expected an integer, got a string"),
        ({"Records": None}, "field 'Records': null, but the model never saw it"),
        (
            {"Records": True},
            "field 'Records': expected a string or null|expected a str",
        ),
        ({"Color": "red"}, "field 'Color': unknown field"),
        ({"Amount": [1]}, "field 'Amount': expected an integer, got a list"),
    ],
)
def test_bad_records_name_row_field_and_value(scorer, record, change, message):
    with pytest.raises(RequestError, match=message):
        scorer.predict([{**record, **change}])


def test_label_and_excluded_columns_are_ignored(scorer, record):
    with_label = scorer.predict([{**record, "Status": "good"}])

    assert with_label.predictions == scorer.predict([record]).predictions


def test_unseen_categories_are_scored_or_rejected(scorer, record):
    odd = {**record, "Home": "castle"}

    scored = scorer.predict([odd])
    missing = scorer.predict([{**record, "Home": None}])

    assert scored.unseen == [{"row": 0, "field": "Home", "value": "castle"}]
    assert scored.probabilities.tolist() == missing.probabilities.tolist()
    with pytest.raises(RequestError, match="unseen category 'castle'; expected one of"):
        scorer.predict([odd], unseen="reject")


def test_no_records(scorer):
    with pytest.raises(RequestError, match="no records to score"):
        scorer.predict([])


def test_pandas_frames_with_gaps(scorer, credit_pdf):
    frame = credit_pdf.drop(columns=["Status"]).head(40)

    scored = scorer.predict_pandas(frame)

    assert frame[["Home", "Income"]].isna().any().any()
    assert list(scored.index) == list(frame.index)
    assert (
        scored[["probability_bad", "probability_good"]].sum(axis=1).round(9).eq(1).all()
    )


def test_a_learner_without_a_scorer_is_named(credit_gbt, tmp_path):
    copy = shutil.copytree(credit_gbt, tmp_path / "edited")
    stage = next((copy / "model" / "pipeline" / "stages").glob("*_GBTClassifi*"))
    part = next((stage / "metadata").glob("part-*"))
    metadata = json.loads(part.read_text())
    metadata["class"] = "org.apache.spark.ml.regression.AFTSurvivalRegressionModel"
    part.write_text(json.dumps(metadata))

    with pytest.raises(
        ExportError,
        match=r"stage 'AFTSurvivalRegressionModel' has no Spark-free scorer; "
        r"supported: .*LogisticRegressionModel.*'sparktrain predict'",
    ):
        Scorer.load(copy)


def test_per_class_thresholds_are_refused(credit_frame, fit_and_save):
    _, folder = fit_and_save(
        credit_frame,
        label="Status",
        model=NaiveBayes(modelType="gaussian", thresholds=[0.3, 0.7]),
        task="classification",
        name="credit-naive-bayes-thresholds",
    )

    with pytest.raises(
        ExportError, match=r"stage 'NaiveBayesModel' has per-class thresholds set"
    ):
        Scorer.load(folder)


def test_a_hand_edited_pipeline_is_refused(credit_gbt, tmp_path):
    copy = shutil.copytree(credit_gbt, tmp_path / "edited")
    stage = next((copy / "model" / "pipeline" / "stages").glob("0_SQLTransformer_*"))
    part = next((stage / "metadata").glob("part-*"))
    metadata = json.loads(part.read_text())
    metadata["paramMap"]["statement"] = "SELECT *, 1 AS one FROM __THIS__"
    part.write_text(json.dumps(metadata))

    with pytest.raises(ExportError, match="not the SQL step sparktrain's Featurize"):
        Scorer.load(copy)


@pytest.mark.parametrize(
    ("make", "error", "message"),
    [
        (lambda p: p / "missing", sparktrain.DataNotFoundError, "no model folder at"),
        (lambda p: p, sparktrain.DataError, "is not a sparktrain model folder"),
    ],
)
def test_paths_that_are_not_models(tmp_path, make, error, message):
    with pytest.raises(error, match=message):
        Scorer.load(make(tmp_path))


def test_public_names():
    import sparktrain.serving

    assert set(sparktrain.serving.__all__) == {
        "ExportError",
        "Predictions",
        "RegistryError",
        "RequestError",
        "Scorer",
        "create_app",
        "export_model",
        "registry",
    }
    for name in ("ExportError", "RegistryError", "RequestError"):
        assert issubclass(getattr(sparktrain.serving, name), sparktrain.SparktrainError)


@pytest.fixture(scope="module")
def tweets_scorer(tweets_frame, fit_and_save):
    from sparktrain.libraries import LightGBMClassifier

    _, folder = fit_and_save(
        tweets_frame,
        label="source",
        model=LightGBMClassifier(numIterations=30, numThreads=1),
        task="classification",
        name="tweets-lightgbm",
    )
    return Scorer.load(folder)


def test_dates_as_iso_strings(tweets_scorer, tweets_pdf):
    record = tweets_pdf.drop(columns=["source"]).iloc[0].to_dict()
    as_text = {**record, "day": record["day"].isoformat()}

    assert (
        tweets_scorer.predict([as_text]).probabilities.tolist()
        == tweets_scorer.predict([record]).probabilities.tolist()
    )
    for bad in ("2016-13-01", "03/01/2016", 20160301, "2016-03-01T10:00:00"):
        with pytest.raises(RequestError, match="field 'day': expected a date as"):
            tweets_scorer.predict([{**record, "day": bad}])


def test_one_vs_rest_around_an_unsupported_learner_is_named(
    diamonds_frame, fit_and_save, tmp_path
):
    from pyspark.ml.classification import GBTClassifier

    _, folder = fit_and_save(
        diamonds_frame,
        label="cut",
        model=GBTClassifier(maxIter=5, maxDepth=3),
        task="classification",
        name="diamonds-gbt",
    )
    copy = shutil.copytree(folder, tmp_path / "edited")
    ovr = next((copy / "model" / "pipeline" / "stages").glob("*_OneVsRestModel_*"))
    part = next((ovr / "model_0" / "metadata").glob("part-*"))
    metadata = json.loads(part.read_text())
    metadata["class"] = "org.apache.spark.ml.classification.NaiveBayesModel"
    part.write_text(json.dumps(metadata))

    with pytest.raises(ExportError, match="stage 'NaiveBayesModel' inside one-vs-rest"):
        Scorer.load(copy)


def test_a_perceptron_whose_weights_do_not_fit_its_layers_is_refused(
    credit_frame, fit_and_save, tmp_path
):
    from pyspark.ml.classification import MultilayerPerceptronClassifier

    _, folder = fit_and_save(
        credit_frame,
        label="Status",
        model=MultilayerPerceptronClassifier(maxIter=20),
        task="classification",
        name="credit-multilayer_perceptron",
    )
    copy = shutil.copytree(folder, tmp_path / "edited")
    stage = next((copy / "model" / "pipeline" / "stages").glob("*Multilayer*"))
    part = next((stage / "metadata").glob("part-*"))
    metadata = json.loads(part.read_text())
    layers = metadata["paramMap"]["layers"]
    metadata["paramMap"]["layers"] = [layers[0], layers[1] + 1, *layers[2:]]
    part.write_text(json.dumps(metadata))

    with pytest.raises(ExportError, match=r"holds \d+ weights but layers=\["):
        Scorer.load(copy)


def _schema(spark_type, kind, zone="Europe/Paris"):
    from sparktrain.serving._schema import Schema

    column = {"name": "when", "spark_type": spark_type, "kind": kind, "nulls": 0}
    metadata = {"label_col": "y", "columns": [column], "time_zone": zone}
    return Schema.from_metadata(metadata, {})


@pytest.mark.parametrize(
    ("spark_type", "kind", "zone", "message"),
    [
        ("timestamp_ntz", "datetime", "UTC", r"column 'when' \(timestamp_ntz, used"),
        ("timestamp", "categorical", "UTC", r"\(timestamp, used as categorical\)"),
        ("timestamp", "datetime", None, r"does not record the time zone"),
    ],
)
def test_columns_without_a_spark_free_scorer_are_named(spark_type, kind, zone, message):
    with pytest.raises(ExportError, match=message):
        _schema(spark_type, kind, zone)


@pytest.mark.parametrize(
    ("value", "utc"),
    [
        ("2016-03-01T10:00:00+01:00", "2016-03-01T09:00:00"),
        ("2016-03-01 10:00:00Z", "2016-03-01T10:00:00"),
        ("2016-07-01 10:00:00.25", "2016-07-01T08:00:00.250000"),  # Paris, summer
        ("2016-03-01", "2016-02-29T23:00:00"),
    ],
)
def test_timestamps_without_an_offset_are_in_the_training_zone(value, utc):
    from datetime import UTC

    columns, _ = _schema("timestamp", "datetime").columns([{"when": value}])
    (moment,) = columns["when"]
    assert moment.astimezone(UTC).replace(tzinfo=None).isoformat() == utc


@pytest.mark.parametrize("bad", ["2016-13-01 10:00", "01/03/2016 10:00", 1456790400])
def test_a_bad_timestamp_names_the_field_and_the_form(bad):
    with pytest.raises(
        RequestError, match=r"field 'when': expected a timestamp as 'YYYY-MM-DD"
    ):
        _schema("timestamp", "datetime").columns([{"when": bad}])

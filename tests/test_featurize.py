import datetime
import decimal

import pytest
from pyspark.ml import Pipeline, PipelineModel
from pyspark.ml.classification import LogisticRegression
from pyspark.ml.feature import StringIndexer
from pyspark.ml.linalg import Vectors, VectorUDT
from pyspark.sql import functions as F
from pyspark.sql import types as T

from sparktrain import Featurize, FeaturizeModel
from sparktrain.errors import ColumnNotFoundError, ConfigError, DataError

SCHEMA = T.StructType(
    [
        T.StructField("id", T.LongType()),
        T.StructField("x", T.DoubleType()),
        T.StructField("flag", T.BooleanType()),
        T.StructField("colour", T.StringType()),
        T.StructField("city", T.StringType()),
        T.StructField("note", T.StringType()),
        T.StructField("day", T.DateType()),
        T.StructField("at", T.TimestampType()),
        T.StructField("emb", VectorUDT()),
        T.StructField("price", T.DecimalType(10, 2)),
        T.StructField("same", T.StringType()),
        T.StructField("blank", T.DoubleType()),
        T.StructField("tags", T.ArrayType(T.StringType())),
        T.StructField("y", T.StringType()),
    ]
)


def _row(i: int):
    x = None if i % 10 == 0 else float("inf") if i == 7 else float(i % 7)
    return (
        i,
        x,
        i % 3 == 0,
        "rgb"[i % 3],
        f"city{i % 80}",
        f"the quick brown fox number {i % 13} jumps over the lazy dog",
        datetime.date(2024, 1 + i % 12, 1 + i % 28),
        datetime.datetime(2024, 1, 1, i % 24),
        Vectors.dense([i, 1.0]),
        decimal.Decimal(i) / 4,
        "same",
        None,
        ["a"],
        "ab"[i % 2],
    )


@pytest.fixture(scope="module")
def every_kind(spark):
    return spark.createDataFrame([_row(i) for i in range(200)], SCHEMA)


@pytest.fixture(scope="module")
def fitted(every_kind):
    return Featurize(labelCol="y").fit(every_kind)


def test_every_column_kind_is_decided_with_a_reason(fitted):
    kinds = {d["name"]: d["kind"] for d in fitted.summary()}
    assert kinds == {
        "id": "excluded",
        "x": "numeric",
        "flag": "boolean",
        "colour": "categorical",
        "city": "high_cardinality",
        "note": "text",
        "day": "datetime",
        "at": "datetime",
        "emb": "vector",
        "price": "numeric",
        "same": "excluded",
        "blank": "excluded",
        "tags": "excluded",
    }
    reasons = {d["name"]: d["reason"] for d in fitted.summary()}
    assert "identifier" in reasons["id"]
    assert "constant" in reasons["same"]
    assert "every value is missing" in reasons["blank"]
    assert "array<string>" in reasons["tags"]


def test_feature_names_map_back_to_columns(fitted, every_kind):
    names = fitted.featureNames
    for expected in (
        "x",
        "x is missing",
        "flag",
        "colour=r",
        "day.month",
        "at.hour",
        "at.epoch",
        "price",
        "emb[0]",
    ):
        assert expected in names
    assert any(n.startswith("note[word ") for n in names)
    assert any(n.startswith("hashed(city)[") for n in names)
    assert set(fitted.featureSources) == set(fitted.inputColumns) | {"city"}

    out = fitted.transform(every_kind)
    vector = out.select("features").first()[0]
    assert vector.size == len(names)
    attrs = out.schema["features"].metadata["ml_attr"]["attrs"]["numeric"]
    assert [a["name"] for a in attrs] == names
    assert out.columns == [*every_kind.columns, "features"]


def test_infinity_and_nan_are_imputed(fitted, every_kind):
    names = fitted.featureNames
    rows = fitted.transform(every_kind).where("id IN (7, 10)").collect()
    for row in rows:
        value = row["features"][names.index("x")]
        assert value == value
        assert abs(value) != float("inf")
    missing = {r["id"]: r["features"][names.index("x is missing")] for r in rows}
    assert missing == {7: 1.0, 10: 1.0}


def test_unseen_categories_are_counted(fitted, every_kind):
    odd = every_kind.limit(6).withColumn("colour", F.lit("violet"))
    assert fitted.countUnseen(odd) == {"colour": 6}
    assert fitted.transform(odd).count() == 6


def test_overrides_and_exclusions(every_kind):
    model = Featurize(
        labelCol="y",
        excludeCols=["note", "emb"],
        columnKinds={"id": "categorical", "x": "excluded", "city": "categorical"},
        maxCategories=100,
    ).fit(every_kind)
    kinds = {d["name"]: d["kind"] for d in model.summary()}
    assert "note" not in kinds
    assert "emb" not in kinds
    assert kinds["id"] == "categorical"
    assert kinds["x"] == "excluded"
    assert kinds["city"] == "categorical"


@pytest.mark.parametrize("encoding", ["frequency", "target"])
def test_high_cardinality_encodings(every_kind, encoding):
    frame = every_kind.withColumn("label", (F.col("y") == "a").cast("double"))
    model = Featurize(
        labelCol="label", excludeCols=["y"], highCardinalityEncoding=encoding
    ).fit(frame)
    assert "city" in model.featureNames
    assert model.transform(frame).count() == 200


def test_save_load_and_pipeline_composition(spark, every_kind, fitted, tmp_path):
    fitted.write().overwrite().save(str(tmp_path / "featurize"))
    loaded = FeaturizeModel.load(str(tmp_path / "featurize"))
    assert loaded.featureNames == fitted.featureNames
    assert loaded.summary() == fitted.summary()
    first = fitted.transform(every_kind).select("features").collect()
    assert loaded.transform(every_kind).select("features").collect() == first

    pipeline = Pipeline(
        stages=[
            StringIndexer(inputCol="y", outputCol="label"),
            Featurize(labelCol="y", excludeCols=["label"]),
            LogisticRegression(maxIter=20),
        ]
    )
    pipeline.write().overwrite().save(str(tmp_path / "pipeline"))
    fitted_pipeline = Pipeline.load(str(tmp_path / "pipeline")).fit(every_kind)
    fitted_pipeline.write().overwrite().save(str(tmp_path / "fitted"))
    scored = PipelineModel.load(str(tmp_path / "fitted")).transform(every_kind)
    assert scored.where("prediction IS NOT NULL").count() == 200


def test_awkward_column_names(spark):
    frame = spark.createDataFrame(
        [(float(i), "ab"[i % 2], "xy"[i % 2]) for i in range(40)],
        "`weird name.with dot` double, `ciudad ñ` string, y string",
    )
    model = Featurize(labelCol="y").fit(frame)
    assert model.featureNames[0] == "weird name.with dot"
    assert "ciudad ñ=a" in model.featureNames
    assert model.transform(frame).count() == 40


def test_a_thousand_columns(spark):
    columns = [f"c{i}" for i in range(1000)]
    rows = [tuple(float((r * (i + 1)) % 5) for i in range(1000)) for r in range(30)]
    frame = spark.createDataFrame(rows, columns)
    model = Featurize().fit(frame)
    constant = {f"c{i}" for i in range(4, 1000, 5)}  # (r * 5k) % 5 is always 0
    excluded = {d["name"] for d in model.summary() if d["kind"] == "excluded"}
    assert excluded == constant
    assert len(model.featureNames) == 800
    assert model.transform(frame).select("features").first()[0].size == 800


@pytest.mark.parametrize(
    ("params", "error", "message"),
    [
        (
            {"columnKinds": {"colour": "fancy"}},
            ConfigError,
            r"columnKinds\['colour'\]='fancy' is not a column kind",
        ),
        (
            {"columnKinds": {"tags": "categorical"}},
            ConfigError,
            r"has type array<string>, which cannot be featurized",
        ),
        (
            {"columnKinds": {"colour": "numeric"}},
            ConfigError,
            r"cast it to a number first",
        ),
        (
            {"columnKinds": {"nope": "text"}},
            ColumnNotFoundError,
            r"columnKinds column 'nope' is not in the table",
        ),
        ({"excludeCols": ["colr"]}, ColumnNotFoundError, r"Did you mean 'colour'\?"),
        (
            {"highCardinalityEncoding": "magic"},
            ConfigError,
            r"highCardinalityEncoding='magic'",
        ),
        ({"imputeStrategy": "mode"}, ConfigError, r"imputeStrategy='mode'"),
    ],
)
def test_bad_parameters_are_named(every_kind, params, error, message):
    with pytest.raises(error, match=message):
        Featurize(labelCol="y", **params).fit(every_kind)


def test_no_usable_column(spark):
    frame = spark.createDataFrame(
        [("k", None) for _ in range(10)], "k string, z double"
    )
    with pytest.raises(DataError, match=r"no column can be used as a feature"):
        Featurize().fit(frame)


def test_missing_training_column_at_transform(fitted, every_kind):
    with pytest.raises(DataError, match=r"lacks column\(s\) \['colour'\]"):
        fitted.transform(every_kind.drop("colour"))

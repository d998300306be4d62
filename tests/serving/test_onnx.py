"""Export to ONNX: onnxruntime scores what Spark's batch scoring gives."""

from __future__ import annotations

import json

import numpy as np
import onnxruntime as ort
import pytest
from parity_models import SPARK_CLASSIFIERS as CLASSIFIERS
from parity_models import SPARK_REGRESSORS as REGRESSORS
from parity_models import spark_scores
from pyspark.ml.classification import GBTClassifier, LinearSVC, NaiveBayes
from pyspark.sql import functions as F
from typer.testing import CliRunner

from sparktrain._version import __version__
from sparktrain.cli import app
from sparktrain.libraries import LightGBMClassifier
from sparktrain.serving import ExportError
from sparktrain.serving._export import export_model
from sparktrain.serving._features import (
    FeatureHasher,
    OneHotEncoder,
    Select,
    StringIndexer,
    spark_string,
)
from sparktrain.serving._learners import _Forest
from sparktrain.serving._onnx import Graph, graph_inputs, translate_stage
from sparktrain.serving._onnx_learners import _ensemble
from sparktrain.serving._schema import Field, Schema

PARITY_ROWS = 1000
UNSEEN_ROWS = 10  # rows given a category training never saw
runner = CliRunner()


def _rows(spark, frame, label, unseen_column):
    """Up to 1,000 rows with their gaps, a few given an unseen category."""
    records = [r.asDict() for r in frame.limit(PARITY_ROWS).collect()]
    for record in records[:UNSEEN_ROWS]:
        record[unseen_column] = "never-seen"
    return spark.createDataFrame(records, schema=frame.schema), records


def _feed(session, records):
    feed = {}
    for spec in session.get_inputs():
        values = [r[spec.name] for r in records]
        if spec.type == "tensor(string)":
            column = np.array(["" if v is None else v for v in values], dtype=object)
        else:
            column = np.array([np.nan if v is None else float(v) for v in values])
        feed[spec.name] = column.reshape(-1, 1)
    return feed


def _onnx_scores(folder, records, tmp_path):
    path = export_model(folder, tmp_path / "model.onnx", format="onnx")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(None, _feed(session, records)), strict=True))


def _check_parity(spark, fitted, folder, frame, label, unseen_column, tmp_path, log):
    rows, records = _rows(spark, frame, label, unseen_column)
    assert len(records) == min(PARITY_ROWS, frame.count())
    predictions, probabilities = spark_scores(fitted, rows)

    got = _onnx_scores(folder, [{**r, label: None} for r in records], tmp_path)

    if not fitted.classes:
        want = np.array(predictions)
        log("max_abs_difference", float(np.abs(got["label"] - want).max()))
        np.testing.assert_allclose(got["label"], want, rtol=1e-9, atol=1e-6)
        return
    assert got["label"].tolist() == [str(p) for p in predictions]
    if probabilities is not None:
        difference = float(np.abs(got["probabilities"] - probabilities).max())
        log("max_abs_difference", difference)
        np.testing.assert_allclose(
            got["probabilities"], probabilities, rtol=0, atol=1e-6
        )
    else:
        assert "probabilities" not in got


@pytest.mark.parametrize("name", list(CLASSIFIERS))
def test_classifier_parity(
    name, spark, credit_frame, fit_and_save, tmp_path, record_property
):
    fitted, folder = fit_and_save(
        credit_frame,
        label="Status",
        model=CLASSIFIERS[name](),
        task="classification",
        name=f"credit-{name}",
    )
    _check_parity(
        spark, fitted, folder, credit_frame, "Status", "Home", tmp_path, record_property
    )
    gaps = credit_frame.limit(PARITY_ROWS).where(F.col("Income").isNull()).count()
    assert gaps > 0  # missing values were among the rows scored


@pytest.mark.parametrize("name", list(REGRESSORS))
def test_regressor_parity(
    name, spark, credit_frame, fit_and_save, tmp_path, record_property
):
    frame = credit_frame.where(F.col("Amount").isNotNull())
    fitted, folder = fit_and_save(
        frame,
        label="Amount",
        model=REGRESSORS[name](),
        task="regression",
        name=f"credit-amount-{name}",
    )
    _check_parity(
        spark, fitted, folder, frame, "Amount", "Job", tmp_path, record_property
    )


def test_multinomial_parity(
    spark, diamonds_frame, fit_and_save, tmp_path, record_property
):
    fitted, folder = fit_and_save(
        diamonds_frame,
        label="cut",
        model=CLASSIFIERS["logistic_regression"](),
        task="classification",
        name="diamonds-logistic_regression",
    )
    assert len(fitted.classes) == 5
    assert fitted.learnerModel.numClasses == 5
    _check_parity(
        spark, fitted, folder, diamonds_frame, "cut", "color", tmp_path, record_property
    )


def test_one_vs_rest_parity(
    spark, diamonds_frame, fit_and_save, tmp_path, record_property
):
    """GBT is binary only: three classes wrap it in one-vs-rest, which gives
    labels and no probabilities."""
    frame = diamonds_frame.where(F.col("cut").isin("Ideal", "Premium", "Good"))
    fitted, folder = fit_and_save(
        frame,
        label="cut",
        model=GBTClassifier(maxIter=3, maxDepth=3),
        task="classification",
        name="diamonds-3-gbt",
    )
    assert type(fitted.learnerModel).__name__ == "OneVsRestModel"
    _check_parity(
        spark, fitted, folder, frame, "cut", "color", tmp_path, record_property
    )


def _node(id, left=-1, right=-1, feature=-1, split=(), categories=-1, value=0.0):
    """A tree node as Spark saves it."""
    return {
        "id": id,
        "prediction": value,
        "impurityStats": [1.0],
        "leftChild": left,
        "rightChild": right,
        "split": {
            "featureIndex": feature,
            "leftCategoriesOrThreshold": list(split),
            "numCategories": categories,
        },
    }


def test_categorical_splits_and_one_leaf_trees():
    """Spark sends a category left when it is in the split's set (a value
    that is no category goes right); a tree may be a single leaf."""
    import onnx

    forest = _Forest.from_trees(
        [
            [
                _node(0, 1, 2, feature=0, split=[0.0, 2.0], categories=3),
                _node(1, value=1.0),
                _node(2, 3, 4, feature=1, split=[0.25]),
                _node(3, value=10.0),
                _node(4, value=100.0),
            ],
            [_node(0, value=0.5)],
        ]
    )
    X = np.array([[0, 9], [1, 0.25], [1, 0.2500001], [2, 0], [1.5, 0], [7, 1]])
    graph = Graph(onnx)
    graph.inputs.append(
        onnx.helper.make_tensor_value_info("X", onnx.TensorProto.DOUBLE, ["N", 2])
    )
    total = _ensemble(graph, forest, "X", forest.prediction[:, None])
    graph.op("Identity", total, output="y")
    graph.add_output("y", "DOUBLE", ["N", 1])
    session = ort.InferenceSession(
        graph.model("trees").SerializeToString(), providers=["CPUExecutionProvider"]
    )

    (got,) = session.run(None, {"X": X})

    expected = forest.prediction[forest.leaves(X)].sum(axis=1)
    assert expected.tolist() == [1.5, 10.5, 100.5, 1.5, 10.5, 100.5]
    assert got[:, 0].tolist() == expected.tolist()


@pytest.mark.parametrize(
    ("spark_type", "labels", "values"),
    [
        ("int", ["3", "1", "20"], [3, 1, 20, 7, None]),
        ("double", ["2.5", "1.0E10", "0.001"], [2.5, 1e10, 0.001, 2.0, None]),
        ("boolean", ["true", "false"], [True, False, None]),
    ],
)
def test_numbers_used_as_categories(spark_type, labels, values):
    """A number or boolean column used as a category is indexed by Spark's
    text of its values; the graph compares numbers and gets the same index."""
    import onnx

    indexer = _bare(
        StringIndexer,
        inputs=["n"],
        outputs=["n_idx"],
        indices=[{label: i for i, label in enumerate(labels)}],
    )
    graph = Graph(onnx)
    columns = {"n": graph.add_input("n", strings=False)}
    translate_stage(graph, indexer, columns)
    graph.op("Identity", columns["n_idx"], output="index")
    graph.add_output("index", "DOUBLE", ["N", 1])
    session = ort.InferenceSession(
        graph.model("index").SerializeToString(), providers=["CPUExecutionProvider"]
    )
    feed = np.array([np.nan if v is None else float(v) for v in values])

    (got,) = session.run(None, {"n": feed.reshape(-1, 1)})

    batch = {"n": [spark_string(v, spark_type) for v in values]}
    indexer.apply(batch, len(values))
    assert got[:, 0].tolist() == batch["n_idx"].tolist()
    assert got[-1, 0] == len(labels)  # missing: the reserved index


def test_infinity_is_scored_as_missing(credit_frame, fit_and_save, tmp_path):
    _, folder = fit_and_save(
        credit_frame,
        label="Status",
        model=CLASSIFIERS["logistic_regression"](),
        task="classification",
        name="credit-logistic_regression",
    )
    path = export_model(folder, tmp_path / "m.onnx", format="onnx")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    feed = _feed(session, [r.asDict() for r in credit_frame.limit(20).collect()])

    missing = session.run(None, {**feed, "Income": np.full((20, 1), np.nan)})
    infinite = session.run(
        None, {**feed, "Income": np.array([[np.inf], [-np.inf]] * 10)}
    )
    given = session.run(None, feed)

    np.testing.assert_array_equal(infinite[1], missing[1])
    assert not np.array_equal(given[1], missing[1])


def test_cli_writes_a_file_onnxruntime_loads(credit_gbt, tmp_path):
    out = tmp_path / "credit.onnx"
    result = runner.invoke(
        app, ["export", str(credit_gbt), "--format", "onnx", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output

    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])

    assert [o.name for o in session.get_outputs()] == ["label", "probabilities"]
    inputs = {i.name: i.type for i in session.get_inputs()}
    assert inputs["Home"] == "tensor(string)"
    assert inputs["Income"] == "tensor(double)"
    assert "Status" not in inputs
    props = session.get_modelmeta().custom_metadata_map
    assert json.loads(props["classes"]) == ["bad", "good"]
    assert props["sparktrain_version"] == __version__
    described = {i["name"]: i["type"] for i in json.loads(props["inputs"])}
    assert described == {
        name: kind.removeprefix("tensor(").removesuffix(")")
        for name, kind in inputs.items()
    }


def test_onnx_export_refuses_an_existing_file(credit_gbt, tmp_path):
    (tmp_path / "taken.onnx").write_bytes(b"")
    with pytest.raises(ExportError, match="exists; choose a new file"):
        export_model(credit_gbt, tmp_path / "taken.onnx", format="onnx")


def test_single_node_learner_is_refused(credit_frame, fit_and_save, tmp_path):
    _, folder = fit_and_save(
        credit_frame,
        label="Status",
        model=LightGBMClassifier(numIterations=30, numThreads=1),
        task="classification",
        name="credit-lightgbm",
    )
    with pytest.raises(
        ExportError,
        match=r"learner 'LightGBMClassifier' \(LGBMClassifier\) has no ONNX form: "
        r"it is a single-node model .*--format mlflow",
    ):
        export_model(folder, tmp_path / "m.onnx", format="onnx")
    assert not (tmp_path / "m.onnx").exists()


@pytest.mark.parametrize(
    ("table", "label", "model", "says"),
    [
        (
            "credit_frame",
            "Status",
            lambda: NaiveBayes(modelType="gaussian"),
            r"learner 'naive_bayes' \(NaiveBayes\) has no ONNX form",
        ),
        (  # five classes: one-vs-rest around linear SVC
            "diamonds_frame",
            "cut",
            lambda: LinearSVC(maxIter=5),
            r"learner 'linear_svc' \(LinearSVC\) has no ONNX form",
        ),
    ],
)
def test_learners_outside_the_onnx_export_are_refused(
    request, fit_and_save, tmp_path, table, label, model, says
):
    _, folder = fit_and_save(
        request.getfixturevalue(table),
        label=label,
        model=model(),
        task="classification",
        name=f"{table}-{label}-onnx-refused",
    )
    with pytest.raises(ExportError, match=says + ".*--format mlflow"):
        export_model(folder, tmp_path / "m.onnx", format="onnx")
    assert not (tmp_path / "m.onnx").exists()


def _field(name, spark_type, kind):
    return Field(name=name, spark_type=spark_type, kind=kind, nullable=True)


@pytest.mark.parametrize(
    ("field", "message"),
    [
        (
            _field("text", "string", "text"),
            r"column 'text' has no ONNX form: it is text, featurized by "
            r"RegexTokenizer.*MurmurHash3.*--format mlflow",
        ),
        (
            _field("month", "string", "high_cardinality"),
            r"column 'month' has no ONNX form: .*hashed by FeatureHasher",
        ),
        (
            _field("day", "date", "datetime"),
            r"column 'day' has no ONNX form: it is a date, featurized as its parts",
        ),
        (
            _field("day", "date", "categorical"),
            r"column 'day' has no ONNX form: it is a date used as categorical",
        ),
        (
            _field("label", "double", "numeric"),
            r"input column 'label' has the name of an ONNX output \(label, "
            r"probabilities\); rename the column",
        ),
    ],
    ids=["text", "hashed", "date-parts", "date-category", "output-name"],
)
def test_inputs_the_graph_cannot_take(field, message):
    import onnx

    with pytest.raises(ExportError, match=message):
        graph_inputs(Graph(onnx), Schema([field], []))


def _bare(cls, **attributes):
    stage = cls.__new__(cls)
    stage.__dict__.update(attributes)
    return stage


@pytest.mark.parametrize(
    ("stage", "message"),
    [
        (
            _bare(FeatureHasher),
            r"stage 'FeatureHasher' has no ONNX form: it is not one of the stages "
            r"the ONNX export translates \(ImputerModel, .*\); export it with "
            r"--format mlflow",
        ),
        (
            _bare(OneHotEncoder, keep=False),
            r"stage 'OneHotEncoderModel' has no ONNX form: it has "
            r"handleInvalid='error'",
        ),
        (
            Select([("epoch", "__st_dtepoch_0", "day", "date")]),
            r"column 'day' has no ONNX form: its 'epoch' step \(date\) is not one",
        ),
    ],
    ids=["FeatureHasher", "OneHotEncoder-error", "date-step"],
)
def test_stages_the_graph_cannot_express(stage, message):
    import onnx

    with pytest.raises(ExportError, match=message):
        translate_stage(Graph(onnx), stage, {"day": "day"})

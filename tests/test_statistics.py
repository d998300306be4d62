import numpy as np
import pytest
from pyspark.ml.linalg import Vectors
from sklearn import metrics

from sparktrain import ComputeModelStatistics, ComputePerInstanceStatistics
from sparktrain.errors import ConfigError, DataError

LABELS = ["b", "a", "a", "c", "b", "a", "c", "c", "a", "b"]
PREDICTED = ["b", "a", "c", "c", "a", "a", "c", "b", "a", "b"]
CLASSES = ["a", "b", "c"]


def _probabilities():
    rng = np.random.default_rng(0)
    raw = (
        rng.random((len(LABELS), 3)) + np.eye(3)[[CLASSES.index(p) for p in PREDICTED]]
    )
    return raw / raw.sum(axis=1, keepdims=True)


@pytest.fixture(scope="module")
def scored(spark):
    rows = [
        (y, p, Vectors.dense(q))
        for y, p, q in zip(LABELS, PREDICTED, _probabilities(), strict=True)
    ]
    return spark.createDataFrame(rows, ["y", "prediction", "probability"])


def test_classification_statistics_match_scikit_learn(scored):
    stats = ComputeModelStatistics(labelCol="y").compute(scored)
    assert stats["classes"] == CLASSES
    assert stats["accuracy"] == pytest.approx(metrics.accuracy_score(LABELS, PREDICTED))
    for average in ("macro", "weighted"):
        assert stats[f"f1_{average}"] == pytest.approx(
            metrics.f1_score(LABELS, PREDICTED, average=average)
        )
        assert stats[f"precision_{average}"] == pytest.approx(
            metrics.precision_score(LABELS, PREDICTED, average=average)
        )
        assert stats[f"recall_{average}"] == pytest.approx(
            metrics.recall_score(LABELS, PREDICTED, average=average)
        )
    assert stats["log_loss"] == pytest.approx(
        metrics.log_loss(LABELS, _probabilities(), labels=CLASSES)
    )
    assert (
        stats["confusion_matrix"]
        == metrics.confusion_matrix(LABELS, PREDICTED, labels=CLASSES).tolist()
    )


def test_binary_auc_matches_scikit_learn(spark):
    labels = [0, 1, 1, 0, 1, 0, 1, 1]
    scores = [0.2, 0.7, 0.4, 0.5, 0.9, 0.1, 0.6, 0.3]
    rows = [
        (y, int(s > 0.5), Vectors.dense([1 - s, s]))
        for y, s in zip(labels, scores, strict=True)
    ]
    frame = spark.createDataFrame(rows, ["y", "prediction", "probability"])
    stats = ComputeModelStatistics(labelCol="y").compute(frame)
    assert stats["roc_auc"] == pytest.approx(metrics.roc_auc_score(labels, scores))
    table = ComputeModelStatistics(labelCol="y").transform(frame).first().asDict()
    assert table["roc_auc"] == pytest.approx(stats["roc_auc"])


def test_regression_statistics_match_scikit_learn(spark):
    actual = [3.0, -0.5, 2.0, 7.0, 4.2]
    predicted = [2.5, 0.0, 2.0, 8.0, 4.0]
    frame = spark.createDataFrame(
        list(zip(actual, predicted, strict=True)), ["y", "prediction"]
    )
    stats = ComputeModelStatistics(labelCol="y").compute(frame)
    assert stats["rmse"] == pytest.approx(
        metrics.mean_squared_error(actual, predicted) ** 0.5
    )
    assert stats["mae"] == pytest.approx(metrics.mean_absolute_error(actual, predicted))
    assert stats["r2"] == pytest.approx(metrics.r2_score(actual, predicted))
    per_row = ComputePerInstanceStatistics(labelCol="y").transform(frame)
    residuals = [r["residual"] for r in per_row.collect()]
    assert residuals == pytest.approx(
        [a - p for a, p in zip(actual, predicted, strict=True)]
    )


def test_per_row_log_loss(scored):
    rows = ComputePerInstanceStatistics(labelCol="y").transform(scored).collect()
    expected = [
        -np.log(q[CLASSES.index(y)])
        for y, q in zip(LABELS, _probabilities(), strict=True)
    ]
    assert [r["log_loss"] for r in rows] == pytest.approx(expected)


def test_statistics_errors(spark, scored):
    with pytest.raises(ConfigError, match=r"evaluationMetric='ranking'"):
        ComputeModelStatistics(labelCol="y", evaluationMetric="ranking").compute(scored)
    with pytest.raises(DataError, match=r"regression statistics need a numeric label"):
        ComputeModelStatistics(labelCol="y", evaluationMetric="regression").compute(
            scored
        )
    with pytest.raises(DataError, match=r"labelCol 'label' is not in the table"):
        ComputeModelStatistics().compute(scored)

"""SparkML learners and Spark's own scores, shared by the parity tests.

test_parity (the Spark-free scorer) and test_onnx (onnxruntime) fit the same
models under the same names, so ``fit_and_save`` fits each one once a run.
Few trees and iterations: the parity of the arithmetic is tested, not quality.
"""

from __future__ import annotations

import numpy as np
from pyspark.ml.classification import (
    DecisionTreeClassifier,
    GBTClassifier,
    LogisticRegression,
    RandomForestClassifier,
)
from pyspark.ml.functions import vector_to_array
from pyspark.ml.regression import (
    DecisionTreeRegressor,
    GBTRegressor,
    LinearRegression,
    RandomForestRegressor,
)

SPARK_CLASSIFIERS = {
    "logistic_regression": lambda: LogisticRegression(maxIter=10),
    "decision_tree": lambda: DecisionTreeClassifier(maxDepth=5),
    "random_forest": lambda: RandomForestClassifier(numTrees=5, maxDepth=5),
    "gbt": lambda: GBTClassifier(maxIter=5, maxDepth=3),
}
SPARK_REGRESSORS = {
    "linear_regression": lambda: LinearRegression(maxIter=10),
    "decision_tree": lambda: DecisionTreeRegressor(maxDepth=5),
    "random_forest": lambda: RandomForestRegressor(numTrees=5, maxDepth=5),
    "gbt": lambda: GBTRegressor(maxIter=5, maxDepth=3),
}


def spark_scores(model, frame) -> tuple[list, np.ndarray | None]:
    """Spark's predictions for ``frame``, and its class probabilities (if any)."""
    scored = model.transform(frame)
    probabilistic = "probability" in scored.columns
    rows = scored.select(
        "prediction",
        *([vector_to_array("probability").alias("p")] if probabilistic else []),
    ).collect()
    predictions = [r["prediction"] for r in rows]
    probabilities = np.array([r["p"] for r in rows]) if probabilistic else None
    return predictions, probabilities

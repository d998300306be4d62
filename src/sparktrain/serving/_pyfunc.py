"""The MLflow pyfunc flavour of a sparktrain model: the Spark-free scorer."""

from __future__ import annotations

from typing import Any

from mlflow.pyfunc import PythonModel


class SparktrainPyfunc(PythonModel):
    """Loads the model folder saved among the artifacts and scores pandas
    frames with :class:`~sparktrain.serving.Scorer`: ``prediction`` and
    ``probability_<class>`` columns."""

    def load_context(self, context) -> None:
        from sparktrain.serving._scorer import Scorer

        self.scorer = Scorer.load(context.artifacts["sparktrain_model"])

    def predict(self, context, model_input, params: dict[str, Any] | None = None):
        return self.scorer.predict_pandas(model_input)

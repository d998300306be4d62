"""Export to a native Spark pipeline and to an MLflow model (pyfunc and spark)."""

from __future__ import annotations

import numpy as np
import pytest
from pyspark.ml import PipelineModel
from typer.testing import CliRunner

from sparktrain.cli import app
from sparktrain.serving import ExportError, Scorer
from sparktrain.serving._export import export_model

runner = CliRunner()


def test_spark_export_is_the_native_pipeline(spark, credit_gbt, credit_frame, tmp_path):
    out = export_model(credit_gbt, tmp_path / "spark", format="spark")

    pipeline = PipelineModel.load(str(out))
    original = PipelineModel.load(str(credit_gbt / "model" / "pipeline"))
    rows = credit_frame.limit(50)
    assert [r.prediction for r in pipeline.transform(rows).collect()] == [
        r.prediction for r in original.transform(rows).collect()
    ]


def test_mlflow_export_scores_pandas_without_spark(credit_gbt, credit_pdf, tmp_path):
    import mlflow

    frame = credit_pdf.drop(columns=["Status"]).head(300)
    result = runner.invoke(
        app,
        ["export", str(credit_gbt), "--format", "mlflow", "--out", str(tmp_path / "m")],
    )
    assert result.exit_code == 0, result.output

    scored = mlflow.pyfunc.load_model(str(tmp_path / "m")).predict(frame)

    expected = Scorer.load(credit_gbt).predict_pandas(frame)
    assert list(scored.columns) == ["prediction", "probability_bad", "probability_good"]
    assert scored["prediction"].tolist() == expected["prediction"].tolist()
    np.testing.assert_allclose(
        scored[["probability_bad", "probability_good"]],
        expected[["probability_bad", "probability_good"]],
        atol=1e-12,
    )


def test_mlflow_export_as_a_spark_udf(spark, credit_gbt, credit_frame, tmp_path):
    import mlflow
    from pyspark.ml.functions import vector_to_array

    import sparktrain

    export_model(credit_gbt, tmp_path / "m", format="mlflow")
    udf = mlflow.pyfunc.spark_udf(spark, str(tmp_path / "m"), env_manager="local")
    rows = credit_frame.limit(100)
    inputs = [c for c in rows.columns if c != "Status"]

    scored = rows.select(udf(*inputs).alias("s")).select("s.*").collect()

    expected = (
        sparktrain.load_model(credit_gbt)
        .transform(rows)
        .select("prediction", vector_to_array("probability").alias("p"))
        .collect()
    )
    assert [r.prediction for r in scored] == [r.prediction for r in expected]
    np.testing.assert_allclose(
        [[r.probability_bad, r.probability_good] for r in scored],
        [r.p for r in expected],
        atol=1e-6,
    )


def test_mlflow_export_has_the_spark_flavour(spark, credit_gbt, credit_frame, tmp_path):
    import mlflow
    from mlflow.models import Model

    export_model(credit_gbt, tmp_path / "m", format="mlflow")
    assert set(Model.load(str(tmp_path / "m")).flavors) == {
        "python_function",
        "spark",
    }

    pipeline = mlflow.spark.load_model(str(tmp_path / "m"))

    assert isinstance(pipeline, PipelineModel)
    rows = credit_frame.limit(50)
    original = PipelineModel.load(str(credit_gbt / "model" / "pipeline"))
    assert [r.prediction for r in pipeline.transform(rows).collect()] == [
        r.prediction for r in original.transform(rows).collect()
    ]


def test_unknown_format(credit_gbt, tmp_path):
    expected = r"format='pmml'; expected one of \['spark', 'mlflow', 'onnx'\]"
    with pytest.raises(ExportError, match=expected):
        export_model(credit_gbt, tmp_path / "out", format="pmml")


def test_export_refuses_an_existing_folder(credit_gbt, tmp_path):
    with pytest.raises(ExportError, match="exists; choose a new folder"):
        export_model(credit_gbt, tmp_path, format="spark")

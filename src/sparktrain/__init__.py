"""sparktrain: train, tune and serve machine-learning models on Apache Spark.

The public surface is small and re-exported here::

    import sparktrain

    spark = sparktrain.session()                       # embedded Spark
    table = sparktrain.read_table("data/train.csv")    # counts malformed rows
    result = sparktrain.train(table.frame, label_col="churn", model="gbt")
    sparktrain.save_model(result, "runs/churn")
    scored = sparktrain.load_model("runs/churn").transform(table.frame)
"""

from sparktrain._version import __version__
from sparktrain.automl import AutoML, AutoMLModel
from sparktrain.cluster import LocalCluster, LocalConnectServer
from sparktrain.errors import (
    ClusterError,
    ColumnNotFoundError,
    ConfigError,
    DataError,
    DataNotFoundError,
    JavaError,
    MalformedRowsError,
    MissingExtraError,
    SparktrainError,
)
from sparktrain.featurize import Featurize, FeaturizeModel
from sparktrain.io import ReadReport, Table, read_table
from sparktrain.model import SavedModel, load_model
from sparktrain.pretrained import (
    AnalyzeSentiment,
    DetectFaces,
    DetectLanguage,
    EmbedText,
    ExtractKeyPhrases,
    ReadText,
    RecognizeEntities,
    TagImage,
)
from sparktrain.run import TrainResult, train
from sparktrain.run import save as save_model
from sparktrain.session import info, session
from sparktrain.statistics import ComputeModelStatistics, ComputePerInstanceStatistics
from sparktrain.train import TrainClassifier, TrainedModel, TrainRegressor

__all__ = [
    "AnalyzeSentiment",
    "AutoML",
    "AutoMLModel",
    "ClusterError",
    "ColumnNotFoundError",
    "ComputeModelStatistics",
    "ComputePerInstanceStatistics",
    "ConfigError",
    "DataError",
    "DataNotFoundError",
    "DetectFaces",
    "DetectLanguage",
    "EmbedText",
    "ExtractKeyPhrases",
    "Featurize",
    "FeaturizeModel",
    "JavaError",
    "LocalCluster",
    "LocalConnectServer",
    "MalformedRowsError",
    "MissingExtraError",
    "ReadReport",
    "ReadText",
    "RecognizeEntities",
    "SavedModel",
    "SparktrainError",
    "Table",
    "TagImage",
    "TrainClassifier",
    "TrainRegressor",
    "TrainResult",
    "TrainedModel",
    "__version__",
    "info",
    "load_model",
    "read_table",
    "save_model",
    "session",
    "train",
]

import sparktrain


def test_public_names_are_the_documented_ones():
    assert set(sparktrain.__all__) == {
        "AnalyzeSentiment",
        "AutoML",
        "AutoMLModel",
        "DetectFaces",
        "DetectLanguage",
        "EmbedText",
        "ExtractKeyPhrases",
        "ReadText",
        "RecognizeEntities",
        "TagImage",
        "ComputeModelStatistics",
        "ComputePerInstanceStatistics",
        "Featurize",
        "FeaturizeModel",
        "TrainClassifier",
        "TrainRegressor",
        "TrainResult",
        "TrainedModel",
        "ClusterError",
        "ColumnNotFoundError",
        "ConfigError",
        "DataError",
        "DataNotFoundError",
        "JavaError",
        "LocalCluster",
        "LocalConnectServer",
        "MalformedRowsError",
        "MissingExtraError",
        "ReadReport",
        "SavedModel",
        "SparktrainError",
        "Table",
        "__version__",
        "info",
        "load_model",
        "read_table",
        "save_model",
        "session",
        "train",
    }
    for name in sparktrain.__all__:
        assert getattr(sparktrain, name) is not None


def test_every_error_is_a_sparktrain_error():
    for name in sparktrain.__all__:
        value = getattr(sparktrain, name)
        if isinstance(value, type) and issubclass(value, Exception):
            assert issubclass(value, sparktrain.SparktrainError)

"""``Featurize``: any table to one feature vector, with native SparkML stages.

Numbers, booleans, dates, categories (few or many), free text and existing
vectors each get the usual treatment; identifiers, constants and unsupported
types are excluded with the reason recorded. All the work runs in the JVM;
the Python stage only plans it and keeps the names of the features.
"""

from __future__ import annotations

import logging
from typing import Any

from pyspark import keyword_only
from pyspark.ml import Estimator, Model, PipelineModel
from pyspark.ml.feature import (
    IDF,
    FeatureHasher,
    HashingTF,
    Imputer,
    OneHotEncoder,
    RegexTokenizer,
    SQLTransformer,
    StopWordsRemover,
    StringIndexer,
    TargetEncoder,
    VectorAssembler,
    VectorSizeHint,
)
from pyspark.ml.param import Param, Params, TypeConverters
from pyspark.ml.param.shared import HasLabelCol, HasOutputCol
from pyspark.sql import Column, DataFrame, Observation
from pyspark.sql import functions as F

from sparktrain._persist import CompositeReadable, CompositeWritable
from sparktrain.columns import ColumnDecision, decide, quote, require_column
from sparktrain.errors import ConfigError, DataError

logger = logging.getLogger(__name__)

_NUMERIC_KINDS = ("numeric", "boolean")
_DATE_PARTS = ("year", "month", "dayofmonth", "dayofweek")
_ENCODINGS = ("hash", "frequency", "target")


class _FeaturizeParams(HasLabelCol, HasOutputCol):
    inputCols = Param(
        Params._dummy(),
        "inputCols",
        "columns to featurize; empty means every column but the label",
        typeConverter=TypeConverters.toListString,
    )
    excludeCols = Param(
        Params._dummy(),
        "excludeCols",
        "columns never to use",
        typeConverter=TypeConverters.toListString,
    )
    columnKinds = Param(
        Params._dummy(),
        "columnKinds",
        "per-column kind overrides, e.g. {'zip': 'categorical'}",
    )
    maxCategories = Param(
        Params._dummy(),
        "maxCategories",
        "most distinct values a one-hot encoded column may have",
        typeConverter=TypeConverters.toInt,
    )
    highCardinalityEncoding = Param(
        Params._dummy(),
        "highCardinalityEncoding",
        "encoding of columns over maxCategories: hash, frequency or target",
        typeConverter=TypeConverters.toString,
    )
    numHashFeatures = Param(
        Params._dummy(),
        "numHashFeatures",
        "slots for hashed high-cardinality columns",
        typeConverter=TypeConverters.toInt,
    )
    numTextFeatures = Param(
        Params._dummy(),
        "numTextFeatures",
        "hashed term slots per text column",
        typeConverter=TypeConverters.toInt,
    )
    imputeStrategy = Param(
        Params._dummy(),
        "imputeStrategy",
        "median or mean for missing numbers",
        typeConverter=TypeConverters.toString,
    )
    missingIndicators = Param(
        Params._dummy(),
        "missingIndicators",
        "add an is-missing feature for numbers with gaps",
        typeConverter=TypeConverters.toBoolean,
    )

    def __init__(self) -> None:
        super().__init__()
        self._setDefault(
            inputCols=[],
            excludeCols=[],
            columnKinds={},
            maxCategories=50,
            highCardinalityEncoding="hash",
            numHashFeatures=256,
            numTextFeatures=4096,
            imputeStrategy="median",
            missingIndicators=True,
            outputCol="features",
            labelCol="",
        )


class Featurize(_FeaturizeParams, Estimator, CompositeReadable, CompositeWritable):
    """Turn every usable column of a table into one feature vector.

    Parameters
    ----------
    inputCols : list of str, optional
        Columns to consider; by default every column but ``labelCol``.
    excludeCols : list of str, optional
        Columns never to use.
    labelCol : str, optional
        The label, left out of the features (and used by target encoding).
    outputCol : str
        The assembled vector column, ``"features"`` by default.
    columnKinds : dict, optional
        Kind overrides: ``numeric``, ``categorical``, ``high_cardinality``,
        ``text``, ``datetime`` or ``excluded``.
    maxCategories : int
        Strings with more distinct values are high-cardinality (default 50).
    highCardinalityEncoding : {"hash", "frequency", "target"}
        How high-cardinality strings are encoded.
    numHashFeatures, numTextFeatures : int
        Vector slots for hashed categories and for each text column.
    imputeStrategy : {"median", "mean"}
    missingIndicators : bool
        Add a 0/1 "is missing" feature for every number that has gaps.

    Examples
    --------
    >>> model = Featurize(labelCol="Status").fit(frame)  # doctest: +SKIP
    >>> model.transform(frame).select("features")  # doctest: +SKIP
    >>> model.featureNames[:3]  # doctest: +SKIP
    ['Seniority', 'Time', 'Age']
    """

    @keyword_only
    def __init__(
        self,
        *,
        inputCols: list[str] | None = None,
        excludeCols: list[str] | None = None,
        labelCol: str | None = None,
        outputCol: str | None = None,
        columnKinds: dict[str, str] | None = None,
        maxCategories: int | None = None,
        highCardinalityEncoding: str | None = None,
        numHashFeatures: int | None = None,
        numTextFeatures: int | None = None,
        imputeStrategy: str | None = None,
        missingIndicators: bool | None = None,
    ) -> None:
        super().__init__()
        self._set(**{k: v for k, v in self._input_kwargs.items() if v is not None})

    def _state(self):
        return {}, {}

    def _restore(self, extra, inner) -> None:
        pass

    def _fit(self, dataset: DataFrame) -> FeaturizeModel:
        self._validate()
        columns = self._candidate_columns(dataset)
        decisions, rows = decide(
            dataset,
            columns=columns,
            column_kinds=self.getOrDefault("columnKinds"),
            max_categories=self.getOrDefault("maxCategories"),
        )
        if rows == 0:
            raise DataError(
                "Featurize got a table with no rows; it needs rows to "
                "learn categories and imputation values"
            )
        plan = _Plan(decisions, self, _vector_sizes(dataset, decisions))
        if not plan.assembled:
            reasons = "; ".join(f"{d.name}: {d.reason}" for d in decisions)
            raise DataError(
                f"no column can be used as a feature ({reasons or 'none'}); "
                "add feature columns or change columnKinds/excludeCols"
            )
        pipeline, assembled = _fit_stages(plan.stages(), dataset)
        model = FeaturizeModel()
        model._configure(self, pipeline, decisions, plan.helper_columns(), plan.origin)
        names = _attribute_names(
            assembled.schema[self.getOrDefault("outputCol")].metadata
        )
        model.featureNames, model.featureSources = plan.readable(names)
        for d in decisions:
            logger.info("column %r: %s (%s)", d.name, d.kind, d.reason)
        return model

    def _validate(self) -> None:
        encoding = self.getOrDefault("highCardinalityEncoding")
        if encoding not in _ENCODINGS:
            raise ConfigError(
                f"highCardinalityEncoding={encoding!r}; expected one of "
                f"{list(_ENCODINGS)}"
            )
        if encoding == "target" and not self.getOrDefault("labelCol"):
            raise ConfigError(
                "highCardinalityEncoding='target' needs labelCol, the "
                "numeric label the categories are encoded against"
            )
        strategy = self.getOrDefault("imputeStrategy")
        if strategy not in ("median", "mean"):
            raise ConfigError(
                f"imputeStrategy={strategy!r}; expected 'median' or 'mean'"
            )
        for name in ("maxCategories", "numHashFeatures", "numTextFeatures"):
            if self.getOrDefault(name) < 1:
                raise ConfigError(
                    f"{name}={self.getOrDefault(name)}; expected a positive number"
                )

    def _candidate_columns(self, dataset: DataFrame) -> list[str]:
        label = self.getOrDefault("labelCol")
        excluded = set(self.getOrDefault("excludeCols"))
        for name in [*excluded, *self.getOrDefault("inputCols")]:
            require_column(dataset, name)
        chosen = self.getOrDefault("inputCols") or dataset.columns
        return [
            c
            for c in chosen
            if c != label and c not in excluded and c != self.getOrDefault("outputCol")
        ]


class FeaturizeModel(_FeaturizeParams, Model, CompositeReadable, CompositeWritable):
    """A fitted :class:`Featurize`: transforms tables into the feature vector."""

    def __init__(self) -> None:
        super().__init__()
        self.pipeline: PipelineModel | None = None
        self.decisions: list[ColumnDecision] = []
        self.helperColumns: list[str] = []
        self.featureNames: list[str] = []
        self.featureSources: list[str] = []
        self.categories: dict[str, list[str]] = {}

    def _configure(self, estimator, pipeline, decisions, helpers, origin) -> None:
        self._set(
            **{
                p.name: estimator.getOrDefault(p)
                for p in estimator.params
                if estimator.isDefined(p)
            }
        )
        self.pipeline = pipeline
        self.decisions = decisions
        self.helperColumns = helpers
        self.categories = _categories(pipeline, origin)

    @property
    def inputColumns(self) -> list[str]:
        """The input columns the features are made from."""
        return [d.name for d in self.decisions if d.used]

    def summary(self) -> list[dict[str, Any]]:
        """One dict per input column: its type, kind, and why."""
        return [d.as_dict() for d in self.decisions]

    def _transform(self, dataset: DataFrame) -> DataFrame:
        missing = [c for c in self.inputColumns if c not in dataset.columns]
        if missing:
            raise DataError(
                f"the table lacks column(s) {missing} that Featurize was fitted on; "
                f"it has: {', '.join(dataset.columns)}"
            )
        out = self.pipeline.transform(dataset).drop(*self.helperColumns)
        column = self.getOrDefault("outputCol")
        metadata = {
            "ml_attr": {
                "num_attrs": len(self.featureNames),
                "attrs": {
                    "numeric": [
                        {"idx": i, "name": n} for i, n in enumerate(self.featureNames)
                    ]
                },
            }
        }
        return out.withColumn(column, F.col(column).alias(column, metadata=metadata))

    def countUnseen(self, dataset: DataFrame) -> dict[str, int]:
        """Rows per categorical column whose value was not seen in training,
        counted in a pass of its own (see :meth:`observeUnseen` for none)."""
        checks = unseen_checks(self.categories)
        if not checks:
            return {}
        row = dataset.agg(*checks).first()
        return {name: int(row[name]) for name in self.categories}

    def observeUnseen(self, dataset: DataFrame) -> tuple[DataFrame, Observation | None]:
        """``dataset`` with the unseen categories counted while the next action
        on it (or on anything derived from it) runs, at no extra pass.

        Returns the frame and an :class:`~pyspark.sql.Observation` whose
        ``get`` gives ``{column: rows}`` once that action has finished, or
        ``None`` when the model has no categorical columns.

        Examples
        --------
        >>> watched, unseen = featurizer.observeUnseen(frame)  # doctest: +SKIP
        >>> featurizer.transform(watched).write.parquet("out")  # doctest: +SKIP
        >>> unseen.get  # doctest: +SKIP
        {'Home': 3, 'Job': 0}
        """
        return observe_unseen(dataset, self.categories)

    def _state(self):
        extra = {
            "decisions": [d.as_dict() for d in self.decisions],
            "helperColumns": self.helperColumns,
            "featureNames": self.featureNames,
            "featureSources": self.featureSources,
            "categories": self.categories,
        }
        return extra, {"pipeline": self.pipeline}

    def _restore(self, extra, inner) -> None:
        self.pipeline = inner["pipeline"]
        self.decisions = [ColumnDecision(**d) for d in extra["decisions"]]
        self.helperColumns = extra["helperColumns"]
        self.featureNames = extra["featureNames"]
        self.featureSources = extra["featureSources"]
        self.categories = extra["categories"]


class _Plan:
    """Which helper columns and stages the decisions call for."""

    def __init__(
        self,
        decisions: list[ColumnDecision],
        params: Featurize,
        vector_sizes: dict[str, int],
    ) -> None:
        self.params = params
        self.vector_sizes = vector_sizes
        self.selects: list[str] = []
        self.numeric: list[str] = []  # cleaned numbers to impute
        self.source: dict[str, str] = {}  # helper column -> readable base name
        self.origin: dict[str, str] = {}  # helper column -> input column
        self.categorical: list[str] = []
        self.high: list[str] = []
        self.text: list[str] = []
        self.vectors: list[str] = []
        self.numeric_flags: list[str] = []
        for i, d in enumerate(decisions):
            self._add(i, d)

    def _helper(self, role: str, index: int, decision: ColumnDecision, label: str):
        name = f"__st_{role}{index}"
        self.source[name] = label
        self.origin[name] = decision.name
        return name

    def _add(self, i: int, d: ColumnDecision) -> None:
        column = quote(d.name)
        if d.kind in _NUMERIC_KINDS:
            self._number(i, d, f"CAST({column} AS DOUBLE)", d.name)
        elif d.kind == "datetime":
            for part in _DATE_PARTS + (("hour",) if d.spark_type != "date" else ()):
                self._number(
                    i,
                    d,
                    f"CAST({part}({column}) AS DOUBLE)",
                    f"{d.name}.{part}",
                    role=f"dt{part}_",
                )
            epoch = (
                f"unix_date({column})"
                if d.spark_type == "date"
                else f"unix_seconds(CAST({column} AS TIMESTAMP))"
            )
            self._number(
                i, d, f"CAST({epoch} AS DOUBLE)", f"{d.name}.epoch", role="dtepoch_"
            )
        elif d.kind in ("categorical", "high_cardinality"):
            name = self._helper("cat", i, d, d.name)
            self.selects.append(f"CAST({column} AS STRING) AS {name}")
            (self.categorical if d.kind == "categorical" else self.high).append(name)
        elif d.kind == "text":
            name = self._helper("txt", i, d, d.name)
            self.selects.append(f"COALESCE(CAST({column} AS STRING), '') AS {name}")
            self.text.append(name)
        elif d.kind == "vector":
            self.vectors.append(d.name)
            self.source[d.name] = d.name
            self.origin[d.name] = d.name

    def _number(self, i, d, expression, label, role="num") -> None:
        name = self._helper(role, i, d, label)
        clean = (
            f"CASE WHEN isnan({expression}) OR abs({expression}) = "
            f"double('inf') THEN NULL ELSE {expression} END"
        )
        self.selects.append(f"{clean} AS {name}")
        self.numeric.append(name)
        if d.nulls and self.params.getOrDefault("missingIndicators"):
            flag = self._helper(f"miss{role}", i, d, f"{label} is missing")
            self.selects.append(f"CAST(({clean}) IS NULL AS DOUBLE) AS {flag}")
            self.numeric_flags.append(flag)

    @property
    def imputed(self) -> list[str]:
        return [f"{n}_imp" for n in self.numeric]

    @property
    def assembled(self) -> list[str]:
        columns = [*self.imputed, *self.numeric_flags]
        columns += [f"{c}_ohe" for c in self.categorical]
        if self.high:
            encoding = self.params.getOrDefault("highCardinalityEncoding")
            columns += (
                ["__st_hashed"]
                if encoding == "hash"
                else [f"{c}_{encoding}" for c in self.high]
            )
        columns += [f"{c}_tfidf" for c in self.text]
        return columns + self.vectors

    def helper_columns(self) -> list[str]:
        names = [*self.numeric, *self.numeric_flags, *self.imputed]
        for c in self.categorical:
            names += [c, f"{c}_idx", f"{c}_ohe"]
        encoding = self.params.getOrDefault("highCardinalityEncoding")
        for c in self.high:
            names += [c] if encoding == "hash" else [c, f"{c}_idx", f"{c}_{encoding}"]
        names += ["__st_hashed"] if self.high and encoding == "hash" else []
        for c in self.text:
            names += [c, f"{c}_tokens", f"{c}_words", f"{c}_tf", f"{c}_tfidf"]
        return [n for n in dict.fromkeys(names)]

    def stages(self) -> list:
        p = self.params.getOrDefault
        stages: list = [
            SQLTransformer(
                statement=f"SELECT *, {', '.join(self.selects)} FROM __THIS__"
            )
        ]
        if self.numeric:
            stages.append(
                Imputer(
                    inputCols=self.numeric,
                    outputCols=self.imputed,
                    strategy=p("imputeStrategy"),
                )
            )
        if self.categorical:
            stages += [
                StringIndexer(
                    inputCols=self.categorical,
                    outputCols=[f"{c}_idx" for c in self.categorical],
                    handleInvalid="keep",
                ),
                OneHotEncoder(
                    inputCols=[f"{c}_idx" for c in self.categorical],
                    outputCols=[f"{c}_ohe" for c in self.categorical],
                    handleInvalid="keep",
                    dropLast=False,
                ),
            ]
        stages += self._high_cardinality_stages()
        for c in self.text:
            stages += [
                RegexTokenizer(
                    inputCol=c,
                    outputCol=f"{c}_tokens",
                    pattern=r"\W+",
                    minTokenLength=2,
                ),
                StopWordsRemover(inputCol=f"{c}_tokens", outputCol=f"{c}_words"),
                HashingTF(
                    inputCol=f"{c}_words",
                    outputCol=f"{c}_tf",
                    numFeatures=p("numTextFeatures"),
                ),
                IDF(inputCol=f"{c}_tf", outputCol=f"{c}_tfidf", minDocFreq=2),
            ]
        stages += [
            VectorSizeHint(
                inputCol=c, size=self.vector_sizes[c], handleInvalid="optimistic"
            )
            for c in self.vectors
        ]
        stages.append(
            VectorAssembler(
                inputCols=self.assembled, outputCol=p("outputCol"), handleInvalid="keep"
            )
        )
        return stages

    def _high_cardinality_stages(self) -> list:
        if not self.high:
            return []
        p = self.params.getOrDefault
        encoding = p("highCardinalityEncoding")
        if encoding == "hash":
            return [
                FeatureHasher(
                    inputCols=self.high,
                    categoricalCols=self.high,
                    outputCol="__st_hashed",
                    numFeatures=p("numHashFeatures"),
                )
            ]
        indexed = [f"{c}_idx" for c in self.high]
        indexer = StringIndexer(
            inputCols=self.high,
            outputCols=indexed,
            handleInvalid="keep",
            stringOrderType="frequencyDesc",
        )
        if encoding == "frequency":
            casts = ", ".join(
                f"CAST({c}_idx AS DOUBLE) AS {c}_frequency" for c in self.high
            )
            return [
                indexer,
                SQLTransformer(statement=f"SELECT *, {casts} FROM __THIS__"),
            ]
        return [
            indexer,
            TargetEncoder(
                inputCols=indexed,
                outputCols=[f"{c}_target" for c in self.high],
                labelCol=p("labelCol"),
                handleInvalid="keep",
                targetType="continuous",
            ),
        ]

    def readable(self, names: list[str]) -> tuple[list[str], list[str]]:
        """Map the assembler's attribute names back to input columns."""
        keys = sorted(self.source, key=len, reverse=True)
        hashed_from = ", ".join(self.origin[c] for c in self.high)
        readable, sources = [], []
        for name in names:
            key = next((k for k in keys if name.startswith(k)), None)
            if name.startswith("__st_hashed"):
                readable.append(f"hashed({hashed_from})[{name.rsplit('_', 1)[-1]}]")
                sources.append(hashed_from)
            elif key is None:
                readable.append(name)
                sources.append(name)
            else:
                readable.append(_readable(self.source[key], name[len(key) :]))
                sources.append(self.origin[key])
        return readable, sources


def _readable(base: str, rest: str) -> str:
    if rest.startswith("_ohe_"):
        return f"{base}={rest[len('_ohe_') :]}"
    if rest.startswith("_tfidf_"):
        return f"{base}[word {rest[len('_tfidf_') :]}]"
    if rest in ("", "_imp", "_frequency", "_target"):
        return base
    return f"{base}[{rest.lstrip('_')}]"


def _fit_stages(stages: list, dataset: DataFrame) -> tuple[PipelineModel, DataFrame]:
    """Fit ``stages`` in order, as ``Pipeline.fit`` does, and also return the
    last output, whose vector metadata names the features (no second pass
    through the stages to learn them)."""
    fitted = []
    for stage in stages:
        model = stage.fit(dataset) if isinstance(stage, Estimator) else stage
        dataset = model.transform(dataset)
        fitted.append(model)
    return PipelineModel(stages=fitted), dataset


def _vector_sizes(dataset: DataFrame, decisions: list[ColumnDecision]) -> dict:
    sizes = {}
    for d in decisions:
        if d.kind == "vector":
            first = dataset.where(F.col(quote(d.name)).isNotNull()).first()
            if first is None:
                raise DataError(
                    f"vector column {d.name!r} holds no vectors; "
                    "exclude it with excludeCols"
                )
            sizes[d.name] = first[d.name].size
    return sizes


def _attribute_names(metadata: dict) -> list[str]:
    attrs = metadata.get("ml_attr", {})
    size = attrs.get("num_attrs", 0)
    names = [f"f{i}" for i in range(size)]
    for group in attrs.get("attrs", {}).values():
        for attr in group:
            if attr.get("idx", size) < size:
                names[attr["idx"]] = attr.get("name", names[attr["idx"]])
    return names


def _categories(
    pipeline: PipelineModel, origin: dict[str, str]
) -> dict[str, list[str]]:
    """Input column -> categories seen in training, from the string indexers."""
    found: dict[str, list[str]] = {}
    for stage in pipeline.stages:
        if type(stage).__name__ == "StringIndexerModel":
            for column, labels in zip(
                stage.getInputCols(), stage.labelsArray, strict=True
            ):
                if column in origin:
                    found[origin[column]] = list(labels)
    return found


def training_categories(
    pipeline: PipelineModel, decisions: list[ColumnDecision]
) -> dict[str, list[str]]:
    """Input column -> categories seen in training, for a saved native
    pipeline whose Featurize stages were flattened into it."""
    origin = {f"__st_cat{i}": d.name for i, d in enumerate(decisions)}
    return _categories(pipeline, origin)


def unseen_checks(categories: dict[str, list[str]]) -> list[Column]:
    """One aggregate per column: rows holding a value not in its categories."""
    checks = []
    for name, values in categories.items():
        column = F.col(quote(name))
        unseen = column.isNotNull() & ~column.cast("string").isin(values)
        checks.append(F.coalesce(F.sum(unseen.cast("long")), F.lit(0)).alias(name))
    return checks


def observe_unseen(
    frame: DataFrame, categories: dict[str, list[str]]
) -> tuple[DataFrame, Observation | None]:
    """``frame`` counting unseen categories during its next action."""
    checks = unseen_checks(categories)
    if not checks:
        return frame, None
    observation = Observation()
    return frame.observe(observation, *checks), observation

"""Export a model folder to ONNX: every stage of its :class:`Scorer` (the
NumPy rebuild of the fitted Spark stages) written as ONNX operators.

The graph has one input per raw column, shaped ``[N, 1]``: doubles for
numbers and booleans (NaN for a missing value), strings for string categories
(``''`` for a missing one). Its outputs are ``label`` (the predicted class as
the class's text, or the predicted value) and, for classifiers that give
probabilities, ``probabilities`` ``[N, classes]`` in the model's class order.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from sparktrain._extras import require
from sparktrain._version import __version__
from sparktrain.serving._errors import ExportError
from sparktrain.serving._features import (
    Imputer,
    OneHotEncoder,
    Select,
    StandardScaler,
    StringIndexer,
    VectorAssembler,
    VectorSizeHint,
)
from sparktrain.serving._schema import Field, Schema

#: The operator sets the graph uses: TreeEnsemble is ai.onnx.ml version 5.
OPSETS = {"": 21, "ai.onnx.ml": 5}
OUTPUTS = ("label", "probabilities")
#: What to use instead, appended to every refusal.
OTHER_FORMATS = (
    "export it with --format mlflow (a pyfunc model that scores without Spark) "
    "or --format spark (the native pipeline)"
)
_REFUSED_KINDS = {
    "text": "text, featurized by RegexTokenizer, StopWordsRemover, HashingTF "
    "(MurmurHash3 of each word) and IDF; ONNX operators cannot tokenize with "
    "Java's regular expressions nor compute MurmurHash3",
    "high_cardinality": "a high-cardinality category, hashed by FeatureHasher "
    "with MurmurHash3, which no ONNX operator computes",
    "datetime": "a date, featurized as its parts (year, month, day, weekday, "
    "days since 1970); ONNX has no date type to take it as input",
    "vector": "a vector column; the ONNX graph takes one value per input column",
}


def refusal(subject: str, why: str) -> ExportError:
    """The error for something the ONNX graph cannot express."""
    return ExportError(f"{subject} has no ONNX form: {why}; {OTHER_FORMATS}")


def write_onnx(scorer: Any, target: Path) -> None:
    """Translate ``scorer`` (a loaded :class:`Scorer`) and save it to ``target``."""
    from sparktrain.serving._onnx_learners import translate_learner

    onnx = require("onnx", extra="serve", purpose="Export to ONNX")
    graph = Graph(onnx)
    columns = graph_inputs(graph, scorer.schema)
    for stage in scorer.stages:
        translate_stage(graph, stage, columns)
    translate_learner(graph, scorer, columns[scorer.learner.features])

    model = graph.model(f"sparktrain {scorer.metadata['learner']}")
    onnx.helper.set_model_props(model, model_properties(scorer))
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, str(target))


def model_properties(scorer: Any) -> dict[str, str]:
    """What the ONNX file records about the model in ``metadata_props``."""
    meta = scorer.metadata
    inputs = [
        {
            "name": f.name,
            "type": "string" if _takes_strings(f) else "double",
            "spark_type": f.spark_type,
            "kind": f.kind,
        }
        for f in scorer.schema.fields
    ]
    classes = meta.get("classes", []) if scorer.task == "classification" else []
    return {
        "sparktrain_version": __version__,
        "task": scorer.task,
        "learner": meta["learner"],
        "label_column": meta["label_col"],
        "label_type": meta["label_type"],
        "classes": json.dumps(classes),
        "inputs": json.dumps(inputs),
        "missing_values": "NaN in a double input, '' in a string input",
    }


class Graph:
    """Nodes, constants, inputs and outputs of the graph being built."""

    def __init__(self, onnx: ModuleType) -> None:
        self.onnx = onnx
        self.nodes: list[Any] = []
        self.constants: list[Any] = []
        self.inputs: list[Any] = []
        self.outputs: list[Any] = []
        self.used: set[str] = set()
        self.strings: set[str] = set()  # names of string tensors

    def name(self, hint: str) -> str:
        """A tensor name not used yet."""
        candidate, count = f"st/{hint}", 0
        while candidate in self.used:
            count += 1
            candidate = f"st/{hint}/{count}"
        self.used.add(candidate)
        return candidate

    def add_input(self, name: str, *, strings: bool) -> str:
        element = self._type("STRING" if strings else "DOUBLE")
        self.inputs.append(
            self.onnx.helper.make_tensor_value_info(name, element, ["N", 1])
        )
        self.used.add(name)
        if strings:
            self.strings.add(name)
        return name

    def add_output(self, name: str, element: str, shape: list[Any]) -> None:
        self.outputs.append(
            self.onnx.helper.make_tensor_value_info(name, self._type(element), shape)
        )

    def const(self, values: Any, hint: str = "const", dtype: Any = np.float64) -> str:
        name = self.name(hint)
        array = np.asarray(values, dtype=dtype)
        self.constants.append(self.onnx.numpy_helper.from_array(array, name))
        if array.dtype == object:
            self.strings.add(name)
        return name

    def op(
        self,
        op_type: str,
        *inputs: str,
        output: str | None = None,
        domain: str = "",
        **attributes: Any,
    ) -> str:
        """Add one node; returns the name of its (single) output."""
        name = output or self.name(op_type)
        self.used.add(name)
        self.nodes.append(
            self.onnx.helper.make_node(
                op_type, list(inputs), [name], domain=domain, **attributes
            )
        )
        return name

    def tensor(self, values: Any, dtype: Any) -> Any:
        """An attribute value holding an array (``nodes_splits``, …)."""
        return self.onnx.numpy_helper.from_array(np.asarray(values, dtype=dtype))

    def model(self, name: str) -> Any:
        helper = self.onnx.helper
        graph = helper.make_graph(
            self.nodes, name, self.inputs, self.outputs, initializer=self.constants
        )
        return helper.make_model(
            graph,
            producer_name="sparktrain",
            producer_version=__version__,
            opset_imports=[helper.make_opsetid(d, v) for d, v in OPSETS.items()],
        )

    def _type(self, element: str) -> int:
        return getattr(self.onnx.TensorProto, element)


def graph_inputs(graph: Graph, schema: Schema) -> dict[str, str]:
    """One graph input per field; refuses fields the graph cannot take."""
    columns = {}
    for field in schema.fields:
        if field.kind in _REFUSED_KINDS:
            why = f"it is {_REFUSED_KINDS[field.kind]}"
            raise refusal(f"column {field.name!r}", why)
        if field.spark_type == "date":
            raise refusal(
                f"column {field.name!r}",
                f"it is a date used as {field.kind}, and ONNX has no date type to "
                "take it as input",
            )
        if field.name in OUTPUTS:
            raise ExportError(
                f"input column {field.name!r} has the name of an ONNX output "
                f"({', '.join(OUTPUTS)}); rename the column and train again, or "
                f"{OTHER_FORMATS}"
            )
        columns[field.name] = graph.add_input(field.name, strings=_takes_strings(field))
    return columns


def _takes_strings(field: Field) -> bool:
    return field.spark_type == "string"


def translate_stage(graph: Graph, stage: Any, columns: dict[str, str]) -> None:
    """Add the nodes of one featurization stage; its outputs go in ``columns``."""
    translate = _STAGES.get(type(stage))
    if translate is None:
        raise refusal(
            f"stage {stage.name or type(stage).__name__!r}",
            "it is not one of the stages the ONNX export translates "
            f"({', '.join(sorted(cls.name for cls in _STAGES))})",
        )
    translate(graph, stage, columns)


def _select(graph: Graph, stage: Select, columns: dict[str, str]) -> None:
    """Numbers: infinities become NaN (missing); flags: 1.0 where missing.
    String steps pass the input on: the indexer reads strings or numbers."""
    double = graph.onnx.TensorProto.DOUBLE
    for operation, output, source, spark_type in stage.steps:
        value = columns[source]
        if operation == "number":
            infinite = graph.op("IsInf", value)
            columns[output] = graph.op(
                "Where", infinite, graph.const(np.nan, "nan"), value
            )
        elif operation == "flag":
            columns[output] = graph.op("Cast", graph.op("IsNaN", value), to=double)
        elif operation == "string":
            columns[output] = value
        else:
            raise refusal(
                f"column {source!r}",
                f"its {operation!r} step ({spark_type}) is not"
                " one ONNX operators compute",
            )


def _imputer(graph: Graph, stage: Imputer, columns: dict[str, str]) -> None:
    for source, output, value in zip(
        stage.inputs, stage.outputs, stage.values, strict=True
    ):
        missing = graph.op("IsNaN", columns[source])
        columns[output] = graph.op(
            "Where", missing, graph.const(value, "surrogate"), columns[source]
        )


def _string_indexer(
    graph: Graph, stage: StringIndexer, columns: dict[str, str]
) -> None:
    """Known labels to their index; anything else (missing, unseen) to the
    reserved index ``len(labels)``, as ``handleInvalid='keep'`` does."""
    double = graph.onnx.TensorProto.DOUBLE
    for source, output, index in zip(
        stage.inputs, stage.outputs, stage.indices, strict=True
    ):
        labels = list(index)
        value = columns[source]
        if value in graph.strings:
            encoded = graph.op(
                "LabelEncoder",
                value,
                domain="ai.onnx.ml",
                keys_strings=labels,
                values_int64s=list(range(len(labels))),
                default_int64=len(labels),
            )
            columns[output] = graph.op("Cast", encoded, to=double)
        else:
            columns[output] = _index_numbers(graph, value, labels)


def _index_numbers(graph: Graph, value: str, labels: list[str]) -> str:
    """A number or boolean used as a category: its labels are Spark's text of
    the values, so they are compared as numbers. At most one label matches."""
    keys = [_label_number(label) for label in labels]
    double = graph.onnx.TensorProto.DOUBLE
    hits = graph.op(
        "Cast", graph.op("Equal", value, graph.const([keys], "labels")), to=double
    )
    positions = graph.const(np.arange(len(keys)).reshape(-1, 1), "positions")
    found = graph.op("MatMul", hits, positions)
    missed = graph.op(
        "Sub",
        graph.const(1.0, "one"),
        graph.op("ReduceSum", hits, graph.const([1], "axis", np.int64), keepdims=1),
    )
    reserved = graph.op("Mul", missed, graph.const(float(len(keys)), "reserved"))
    return graph.op("Add", found, reserved)


def _label_number(label: str) -> float:
    if label in ("true", "false"):
        return 1.0 if label == "true" else 0.0
    return float(label)


def _one_hot(graph: Graph, stage: OneHotEncoder, columns: dict[str, str]) -> None:
    """An index outside ``0..size-1`` goes to the last slot (``keep``)."""
    if not stage.keep:
        raise refusal(
            "stage 'OneHotEncoderModel'",
            "it has handleInvalid='error', which fails on an unseen index, and an "
            "ONNX graph cannot fail on a value",
        )
    double = graph.onnx.TensorProto.DOUBLE
    for source, output, size in zip(
        stage.inputs, stage.outputs, stage.sizes, strict=True
    ):
        width = stage._width(size)
        index = columns[source]
        invalid = graph.op(
            "Or",
            graph.op("Less", index, graph.const(0.0, "zero")),
            graph.op("GreaterOrEqual", index, graph.const(float(size), "size")),
        )
        slot = graph.op("Where", invalid, graph.const(float(width - 1), "last"), index)
        slots = graph.const(np.arange(width, dtype=np.float64).reshape(1, -1), "slots")
        columns[output] = graph.op("Cast", graph.op("Equal", slot, slots), to=double)


def _assembler(graph: Graph, stage: VectorAssembler, columns: dict[str, str]) -> None:
    parts = [columns[c] for c in stage.inputs]
    columns[stage.output] = graph.op("Concat", *parts, axis=1)


def _scaler(graph: Graph, stage: StandardScaler, columns: dict[str, str]) -> None:
    features = columns[stage.input]
    if stage.with_mean:
        features = graph.op("Sub", features, graph.const([stage.mean], "mean"))
    if stage.with_std:
        features = graph.op("Mul", features, graph.const([stage.scale], "scale"))
    columns[stage.output] = features


def _nothing(graph: Graph, stage: Any, columns: dict[str, str]) -> None:
    """VectorSizeHint only checks sizes; vector inputs are refused earlier."""


_STAGES = {
    Select: _select,
    Imputer: _imputer,
    StringIndexer: _string_indexer,
    OneHotEncoder: _one_hot,
    VectorAssembler: _assembler,
    StandardScaler: _scaler,
    VectorSizeHint: _nothing,
}

"""The learner at the end of an ONNX graph: linear models as matrix products,
trees as one ai.onnx.ml ``TreeEnsemble`` node, then the ``label`` and
``probabilities`` outputs, with the arithmetic of the NumPy :class:`Scorer`."""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np

from sparktrain.serving._learners import (
    LinearRegression,
    LogisticRegression,
    OneVsRest,
    SingleNode,
    _Forest,
    _normalize,
    _Trees,
)
from sparktrain.serving._onnx import Graph, refusal

#: ``nodes_modes`` of TreeEnsemble: Spark sends ``x <= threshold`` left, and
#: a category left when it is in the split's set.
_BRANCH_LEQ, _BRANCH_MEMBER = 0, 6
_COVERED = (
    "LogisticRegressionModel, LinearRegressionModel, DecisionTree*, RandomForest*, "
    "GBT* (classification and regression), OneVsRestModel"
)


def translate_learner(graph: Graph, scorer: Any, features: str) -> None:
    """Add the learner's nodes and the graph outputs."""
    learner = scorer.learner
    classes = list(scorer.metadata.get("classes", []))
    if isinstance(learner, SingleNode):
        library = type(learner.scorer.fitted).__name__
        raise refusal(
            f"learner {scorer.metadata['learner']!r} ({library})",
            "it is a single-node model (LightGBM, XGBoost, scikit-learn or torch) "
            f"scored from its pickled object; the ONNX export covers {_COVERED}",
        )
    inner = learner.models if isinstance(learner, OneVsRest) else [learner]
    if not all(
        isinstance(m, (LinearRegression, LogisticRegression, _Trees)) for m in inner
    ):
        raise refusal(
            f"learner {scorer.metadata['learner']!r} "
            f"({', '.join(sorted({type(m).__name__ for m in inner}))})",
            f"the ONNX export covers {_COVERED}; the Spark-free scorer "
            "(--format mlflow) scores it",
        )
    if scorer.task == "regression":
        value = _regression(graph, learner, features)
        graph.op("Reshape", value, graph.const([-1], "flat", np.int64), output="label")
        graph.add_output("label", "DOUBLE", ["N"])
    elif isinstance(learner, OneVsRest):
        margins = [_margin(graph, model, features) for model in learner.models]
        winner = graph.op(
            "ArgMax", graph.op("Concat", *margins, axis=1), axis=1, keepdims=0
        )
        _label(graph, winner, classes)
    else:
        winner, probability = _classification(graph, learner, features)
        _label(graph, winner, classes)
        graph.op("Identity", probability, output="probabilities")
        graph.add_output("probabilities", "DOUBLE", ["N", len(classes)])


def _label(graph: Graph, winner: str, classes: list[str]) -> None:
    """The class text at each row's class index."""
    texts = graph.const(classes, "classes", dtype=object)
    graph.op("Gather", texts, winner, axis=0, output="label")
    graph.add_output("label", "STRING", ["N"])


def _regression(graph: Graph, learner: Any, features: str) -> str:
    if isinstance(learner, LinearRegression):
        coefficients = graph.const(learner.coefficients.reshape(-1, 1), "coefficients")
        product = graph.op("MatMul", features, coefficients)
        return graph.op("Add", product, graph.const(learner.intercept, "intercept"))
    forest = learner.forest
    if learner.kind == "forest":
        total = _ensemble(graph, forest, features, forest.prediction[:, None])
        count = graph.const(float(len(forest.roots)), "trees")
        return graph.op("Div", total, count)
    weighted = forest.prediction * learner.weights[_tree_of(forest)]
    return _ensemble(graph, forest, features, weighted[:, None])


def _classification(graph: Graph, learner: Any, features: str) -> tuple[str, str]:
    """The winning class index (int64, ``[N]``) and the probabilities."""
    if isinstance(learner, LogisticRegression):
        return _logistic(graph, learner, features)
    forest = learner.forest
    if learner.kind == "gbt":
        positive = _sigmoid(graph, _gbt_margin(graph, learner, features), scale=2.0)
        probability = _two_classes(graph, positive)
    else:
        votes = _ensemble(graph, forest, features, _normalize(forest.stats))
        total = graph.op(
            "ReduceSum", votes, graph.const([1], "axis", np.int64), keepdims=1
        )
        probability = graph.op("Div", votes, total)
    return graph.op("ArgMax", probability, axis=1, keepdims=0), probability


def _logistic(graph: Graph, learner: LogisticRegression, features: str):
    margins = _linear(graph, learner, features)
    if not learner.multinomial:
        negative = _sigmoid(graph, margins, scale=-1.0)
        probability = graph.op(
            "Concat",
            negative,
            graph.op("Sub", graph.const(1.0, "one"), negative),
            axis=1,
        )
        positive = graph.op(
            "Slice",
            probability,
            graph.const([1], "start", np.int64),
            graph.const([2], "end", np.int64),
            graph.const([1], "axis", np.int64),
        )
        above = graph.op("Greater", positive, graph.const(learner.threshold, "cut"))
        winner = graph.op("Reshape", above, graph.const([-1], "flat", np.int64))
        int64 = graph.onnx.TensorProto.INT64
        return graph.op("Cast", winner, to=int64), probability
    axis = graph.const([1], "axis", np.int64)
    highest = graph.op("ReduceMax", margins, axis, keepdims=1)
    shifted = graph.op("Exp", graph.op("Sub", margins, highest))
    total = graph.op("ReduceSum", shifted, axis, keepdims=1)
    probability = graph.op("Mul", shifted, graph.op("Reciprocal", total))
    return graph.op("ArgMax", probability, axis=1, keepdims=0), probability


def _linear(graph: Graph, learner: LogisticRegression, features: str) -> str:
    coefficients = graph.const(learner.coefficients.T, "coefficients")
    product = graph.op("MatMul", features, coefficients)
    return graph.op("Add", product, graph.const([learner.intercepts], "intercepts"))


def _sigmoid(graph: Graph, margin: str, *, scale: float) -> str:
    """``1 / (1 + exp(-scale * margin))``, spelled out as NumPy computes it."""
    power = graph.op("Exp", graph.op("Mul", margin, graph.const(-scale, "scale")))
    return graph.op("Reciprocal", graph.op("Add", graph.const(1.0, "one"), power))


def _two_classes(graph: Graph, positive: str) -> str:
    negative = graph.op("Sub", graph.const(1.0, "one"), positive)
    return graph.op("Concat", negative, positive, axis=1)


def _gbt_margin(graph: Graph, learner: _Trees, features: str) -> str:
    forest = learner.forest
    weighted = forest.prediction * learner.weights[_tree_of(forest)]
    return _ensemble(graph, forest, features, weighted[:, None])


def _margin(graph: Graph, model: Any, features: str) -> str:
    """The raw score of class 1 of one binary classifier in one-vs-rest (the
    Scorer accepts binary logistic regression and GBT there, nothing else)."""
    if isinstance(model, LogisticRegression):
        return graph.op(
            "Slice",
            _linear(graph, model, features),
            graph.const([0], "start", np.int64),
            graph.const([1], "end", np.int64),
            graph.const([1], "axis", np.int64),
        )
    return _gbt_margin(graph, model, features)


def _tree_of(forest: _Forest) -> np.ndarray:
    """The tree each node belongs to (trees are stored one after another)."""
    return np.searchsorted(forest.roots, np.arange(len(forest.left)), side="right") - 1


def _ensemble(graph: Graph, forest: _Forest, features: str, values: np.ndarray) -> str:
    """One TreeEnsemble summing ``values[leaf, target]`` over the trees:
    ``[N, targets]``. A leaf holds one target, so each tree is written once
    per target."""
    nodes = _EnsembleNodes()
    for target in range(values.shape[1]):
        bounds = [*forest.roots.tolist(), len(forest.left)]
        for start, end in itertools.pairwise(bounds):
            nodes.add_tree(forest, np.arange(start, end), values[:, target], target)
    attributes = nodes.attributes(graph)
    return graph.op(
        "TreeEnsemble",
        features,
        domain="ai.onnx.ml",
        n_targets=values.shape[1],
        aggregate_function=1,  # SUM
        post_transform=0,  # NONE
        **attributes,
    )


class _EnsembleNodes:
    """The ``nodes_*``, ``leaf_*`` and ``membership_values`` lists."""

    def __init__(self) -> None:
        self.features: list[int] = []
        self.modes: list[int] = []
        self.splits: list[float] = []
        self.true: list[int] = []
        self.true_leaf: list[int] = []
        self.false: list[int] = []
        self.false_leaf: list[int] = []
        self.members: list[float] = []
        self.roots: list[int] = []
        self.targets: list[int] = []
        self.weights: list[float] = []

    def add_tree(
        self, forest: _Forest, ids: np.ndarray, values: np.ndarray, target: int
    ) -> None:
        inner = [int(i) for i in ids if forest.left[i] >= 0]
        leaves = [int(i) for i in ids if forest.left[i] < 0]
        node_at = {n: len(self.features) + k for k, n in enumerate(inner)}
        leaf_at = {n: len(self.weights) + k for k, n in enumerate(leaves)}
        for leaf in leaves:
            self.targets.append(target)
            self.weights.append(float(values[leaf]))
        if not inner:  # a tree that is one leaf: a split whose sides agree
            self.roots.append(len(self.features))
            self._node(0, _BRANCH_LEQ, 0.0, (leaf_at[leaves[0]], 1), None)
            return
        self.roots.append(node_at[int(ids[0])])
        for n in inner:
            sides = [
                (leaf_at[c], 1) if forest.left[c] < 0 else (node_at[c], 0)
                for c in (int(forest.left[n]), int(forest.right[n]))
            ]
            if forest.categorical[n]:
                chosen = np.flatnonzero(forest.left_set[n]).astype(np.float64)
                self.members += [*chosen.tolist(), np.nan]
                self._node(int(forest.feature[n]), _BRANCH_MEMBER, 0.0, *sides)
            else:
                threshold = float(forest.threshold[n])
                self._node(int(forest.feature[n]), _BRANCH_LEQ, threshold, *sides)

    def _node(self, feature, mode, split, true, false) -> None:
        false = false or true
        self.features.append(feature)
        self.modes.append(mode)
        self.splits.append(split)
        self.true.append(true[0])
        self.true_leaf.append(true[1])
        self.false.append(false[0])
        self.false_leaf.append(false[1])

    def attributes(self, graph: Graph) -> dict[str, Any]:
        attributes = {
            "tree_roots": self.roots,
            "nodes_featureids": self.features,
            "nodes_modes": graph.tensor(self.modes, np.uint8),
            "nodes_splits": graph.tensor(self.splits, np.float64),
            "nodes_truenodeids": self.true,
            "nodes_trueleafs": self.true_leaf,
            "nodes_falsenodeids": self.false,
            "nodes_falseleafs": self.false_leaf,
            "leaf_targetids": self.targets,
            "leaf_weights": graph.tensor(self.weights, np.float64),
        }
        if self.members:
            attributes["membership_values"] = graph.tensor(self.members, np.float64)
        return attributes

"""Learners in NumPy: linear models, naive Bayes, factorization machines,
multilayer perceptrons and trees from their saved Spark data, single-node
libraries (LightGBM, XGBoost, scikit-learn) from their pickled
objects.

``predict`` takes the feature matrix (dense, or CSR for wide sparse rows)
and returns the prediction (a class index for classifiers, a value for
regressors) and, for classifiers, the class probabilities.
"""

from __future__ import annotations

import itertools
import math
import pickle
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import sparse, special

from sparktrain.serving._errors import ExportError
from sparktrain.serving._features import to_dense
from sparktrain.serving._files import SavedStage, matrix, read_metadata, vector

_CHUNK_ROWS = 2048
Output = tuple[np.ndarray, np.ndarray | None]


class Learner:
    """A fitted learner; ``features`` is the column it reads, and
    ``probabilistic`` whether a classifier gives class probabilities."""

    features = ""
    probabilistic = True

    def predict(self, X: Any) -> Output:
        raise NotImplementedError

    def margin(self, X: Any) -> np.ndarray:
        """The raw score of class 1 of a binary classifier (what one-vs-rest
        compares across classes)."""
        raise NotImplementedError


class LogisticRegression(Learner):
    """Binary: the sigmoid of the margin, class 1 when its probability is over
    ``threshold``. Multinomial: softmax, the most probable class."""

    def __init__(self, saved: SavedStage) -> None:
        self.features = saved.param("featuresCol")
        row = saved.rows()[0]
        self.coefficients = matrix(row["coefficientMatrix"])
        self.intercepts = vector(row["interceptVector"])
        self.multinomial = bool(row["isMultinomial"])
        self.threshold = float(saved.param("threshold", 0.5))
        _refuse_thresholds(saved)

    def margin(self, X: Any) -> np.ndarray:
        return (np.asarray(X @ self.coefficients.T) + self.intercepts)[:, -1]

    def predict(self, X: Any) -> Output:
        margins = np.asarray(X @ self.coefficients.T) + self.intercepts
        if not self.multinomial:
            negative = 1.0 / (1.0 + np.exp(margins[:, 0]))
            probability = np.column_stack([negative, 1.0 - negative])
            return (probability[:, 1] > self.threshold).astype(np.float64), probability
        shifted = np.exp(margins - margins.max(axis=1, keepdims=True))
        probability = shifted * (1.0 / shifted.sum(axis=1, keepdims=True))
        return probability.argmax(axis=1).astype(np.float64), probability


class LinearRegression(Learner):
    def __init__(self, saved: SavedStage) -> None:
        self.features = saved.param("featuresCol")
        row = saved.rows()[0]
        self.coefficients = vector(row["coefficients"])
        self.intercept = float(row["intercept"])

    def predict(self, X: Any) -> Output:
        return np.asarray(X @ self.coefficients).ravel() + self.intercept, None


def _refuse_thresholds(saved: SavedStage) -> None:
    if saved.param("thresholds") is not None:
        raise ExportError(
            f"stage {saved.short_name!r} has per-class thresholds set; only "
            "models without them have a Spark-free scorer"
        )


def _softmax(raw: np.ndarray) -> np.ndarray:
    shifted = np.exp(raw - raw.max(axis=1, keepdims=True))
    return shifted * (1.0 / shifted.sum(axis=1, keepdims=True))


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


#: The mean from the linear predictor, per link function of Spark's GLM.
_INVERSE_LINKS = {
    "identity": lambda eta: eta,
    "log": np.exp,
    "logit": lambda eta: 1.0 / (1.0 + np.exp(-eta)),
    "inverse": lambda eta: 1.0 / eta,
    "probit": special.ndtr,
    "cloglog": lambda eta: 1.0 - np.exp(-np.exp(eta)),
    "sqrt": lambda eta: eta * eta,
}
_DEFAULT_LINKS = {
    "gaussian": "identity",
    "binomial": "logit",
    "poisson": "log",
    "gamma": "inverse",
}


class GeneralizedLinearRegression(Learner):
    """The family's (or the given) inverse link of the linear predictor."""

    def __init__(self, saved: SavedStage) -> None:
        if saved.param("offsetCol"):
            raise ExportError(
                "stage 'GeneralizedLinearRegressionModel' reads an offset column "
                f"({saved.param('offsetCol')!r}); only models without one have "
                "a Spark-free scorer"
            )
        self.features = saved.param("featuresCol")
        row = saved.rows()[0]
        self.coefficients = vector(row["coefficients"])
        self.intercept = float(row["intercept"])
        family = saved.param("family", "gaussian").lower()
        if family == "tweedie":
            power = saved.param("linkPower")
            if power is None:
                power = 1.0 - float(saved.param("variancePower", 0.0))
            self.inverse = (
                np.exp if power == 0 else (lambda eta: np.power(eta, 1.0 / power))
            )
        else:
            link = (saved.param("link") or _DEFAULT_LINKS[family]).lower()
            self.inverse = _INVERSE_LINKS[link]

    def predict(self, X: Any) -> Output:
        eta = np.asarray(X @ self.coefficients).ravel() + self.intercept
        return self.inverse(eta), None


class IsotonicRegression(Learner):
    """Piecewise linear between the fitted boundaries of one feature, flat
    beyond them."""

    def __init__(self, saved: SavedStage) -> None:
        self.features = saved.param("featuresCol")
        self.index = int(saved.param("featureIndex", 0))
        row = saved.rows()[0]
        self.boundaries = np.asarray(row["boundaries"], dtype=np.float64)
        self.values = np.asarray(row["predictions"], dtype=np.float64)

    def predict(self, X: Any) -> Output:
        column = to_dense(X[:, [self.index]]).ravel()
        return np.interp(column, self.boundaries, self.values), None


class LinearSVC(Learner):
    """Class 1 when the margin is over ``threshold``; no probabilities."""

    probabilistic = False

    def __init__(self, saved: SavedStage) -> None:
        self.features = saved.param("featuresCol")
        row = saved.rows()[0]
        self.coefficients = vector(row["coefficients"])
        self.intercept = float(row["intercept"])
        self.threshold = float(saved.param("threshold", 0.0))

    def margin(self, X: Any) -> np.ndarray:
        return np.asarray(X @ self.coefficients).ravel() + self.intercept

    def predict(self, X: Any) -> Output:
        return (self.margin(X) > self.threshold).astype(np.float64), None


class NaiveBayes(Learner):
    """Log prior plus the log likelihood of the features under each class
    (multinomial, Bernoulli, complement or Gaussian), normalized."""

    def __init__(self, saved: SavedStage) -> None:
        _refuse_thresholds(saved)
        self.features = saved.param("featuresCol")
        row = saved.rows()[0]
        self.kind = saved.param("modelType", "multinomial")
        self.log_prior = vector(row["pi"])
        self.theta = matrix(row["theta"])  # classes x features
        if self.kind == "gaussian":
            self.variance = matrix(row["sigma"])
        elif self.kind == "bernoulli":
            self.log_absent = np.log1p(-np.exp(self.theta))

    def predict(self, X: Any) -> Output:
        X = to_dense(X)
        if self.kind == "gaussian":
            raw = np.column_stack(
                [
                    -0.5
                    * (
                        ((X - self.theta[c]) ** 2 / self.variance[c]).sum(axis=1)
                        + np.log(self.variance[c]).sum()
                    )
                    for c in range(len(self.log_prior))
                ]
            )
            raw += self.log_prior
        elif self.kind == "bernoulli":
            raw = X @ (self.theta - self.log_absent).T
            raw += self.log_prior + self.log_absent.sum(axis=1)
        elif self.kind == "complement":
            raw = X @ self.theta.T
        else:
            raw = X @ self.theta.T + self.log_prior
        return raw.argmax(axis=1).astype(np.float64), _softmax(raw)


class FactorizationMachine(Learner):
    """Intercept, linear terms and pairwise interactions through the factors;
    a classifier's probability is the sigmoid of that score."""

    def __init__(self, saved: SavedStage, task: str) -> None:
        if task == "classification":
            _refuse_thresholds(saved)
        self.features = saved.param("featuresCol")
        self.task = task
        row = saved.rows()[0]
        self.intercept = float(row["intercept"])
        self.linear = vector(row["linear"])
        self.factors = matrix(row["factors"])  # features x factor size

    def margin(self, X: Any) -> np.ndarray:
        X = to_dense(X)
        projected = X @ self.factors
        pairs = 0.5 * (projected**2 - (X**2) @ (self.factors**2)).sum(axis=1)
        return X @ self.linear + pairs + self.intercept

    def predict(self, X: Any) -> Output:
        score = self.margin(X)
        if self.task == "regression":
            return score, None
        positive = _sigmoid(score)
        probability = np.column_stack([1.0 - positive, positive])
        return (score > 0).astype(np.float64), probability


class MultilayerPerceptron(Learner):
    """Affine layers with sigmoids between them, softmax on top. Spark keeps
    all weights in one vector: per layer, the out x in matrix column by
    column, then the biases."""

    def __init__(self, saved: SavedStage) -> None:
        _refuse_thresholds(saved)
        self.features = saved.param("featuresCol")
        weights = vector(saved.rows()[0]["weights"])
        sizes = saved.param("layers")
        pairs = list(itertools.pairwise(sizes))
        needed = sum(inputs * outputs + outputs for inputs, outputs in pairs)
        if needed != len(weights):
            raise ExportError(
                f"stage {saved.short_name!r} holds {len(weights)} weights but "
                f"layers={sizes} need {needed}; the saved model is damaged"
            )
        self.layers = []
        at = 0
        for inputs, outputs in pairs:
            layer = weights[at : at + inputs * outputs].reshape(inputs, outputs)
            at += inputs * outputs
            self.layers.append((layer, weights[at : at + outputs]))
            at += outputs

    def predict(self, X: Any) -> Output:
        out = to_dense(X)
        for index, (weights, bias) in enumerate(self.layers):
            out = out @ weights + bias
            if index < len(self.layers) - 1:
                out = _sigmoid(out)
        return out.argmax(axis=1).astype(np.float64), _softmax(out)


@dataclass
class _Forest:
    """Every tree of a model as one set of arrays, so all trees are walked
    together, one level per step, for all rows at once."""

    roots: np.ndarray
    left: np.ndarray  # child positions, -1 at leaves
    right: np.ndarray
    feature: np.ndarray
    threshold: np.ndarray  # NaN where the split is categorical or a leaf
    categorical: np.ndarray  # whether a node splits on categories
    left_set: np.ndarray  # node x category: does the category go left
    prediction: np.ndarray
    stats: np.ndarray  # impurity statistics (class counts for classifiers)

    @classmethod
    def from_trees(cls, trees: list[list[dict[str, Any]]]) -> _Forest:
        nodes, roots = [], []
        for tree in trees:
            tree = sorted(tree, key=lambda n: n["id"])
            offset = len(nodes) - tree[0]["id"]
            roots.append(len(nodes))
            for n in tree:
                nodes.append(
                    {
                        **n,
                        "leftChild": n["leftChild"] + offset
                        if n["leftChild"] >= 0
                        else -1,
                        "rightChild": n["rightChild"] + offset
                        if n["rightChild"] >= 0
                        else -1,
                    }
                )
        split = [n["split"] for n in nodes]
        inner = np.array([n["leftChild"] >= 0 for n in nodes])
        categorical = inner & np.array([s["numCategories"] >= 0 for s in split])
        most = max([s["numCategories"] for s in split] + [1])
        left_set = np.zeros((len(nodes), most), dtype=bool)
        for i in np.flatnonzero(categorical):
            chosen = np.asarray(split[i]["leftCategoriesOrThreshold"], dtype=np.int64)
            left_set[i, chosen] = True
        threshold = np.full(len(nodes), math.nan)
        continuous = np.flatnonzero(inner & ~categorical)
        threshold[continuous] = [
            split[i]["leftCategoriesOrThreshold"][0] for i in continuous
        ]
        width = max(len(n["impurityStats"]) for n in nodes)
        stats = np.zeros((len(nodes), width))
        for i, n in enumerate(nodes):
            stats[i, : len(n["impurityStats"])] = n["impurityStats"]
        return cls(
            roots=np.array(roots),
            left=np.array([n["leftChild"] for n in nodes]),
            right=np.array([n["rightChild"] for n in nodes]),
            feature=np.array([max(s["featureIndex"], 0) for s in split]),
            threshold=threshold,
            categorical=categorical,
            left_set=left_set,
            prediction=np.array([n["prediction"] for n in nodes]),
            stats=stats,
        )

    def leaves(self, X: np.ndarray) -> np.ndarray:
        """Rows x trees: the leaf each row of dense ``X`` reaches in each tree.

        Continuous features go left when ``x <= threshold``, categorical ones
        when the category is in the left set, as in Spark's ``predictImpl``.
        """
        node = np.tile(self.roots, (len(X), 1))
        width = self.left_set.shape[1]
        rows, trees = np.nonzero(self.left[node] >= 0)
        while len(rows):
            current = node[rows, trees]
            values = X[rows, self.feature[current]]
            go_left = values <= self.threshold[current]
            split = self.categorical[current]
            if split.any():
                category = values[split]
                known = (category >= 0) & (category < width)
                known &= category == np.floor(category)
                slots = np.where(known, category, 0).astype(np.int64)
                go_left[split] = known & self.left_set[current[split], slots]
            moved = np.where(go_left, self.left[current], self.right[current])
            node[rows, trees] = moved
            inner = self.left[moved] >= 0
            rows, trees = rows[inner], trees[inner]
        return node


class _Trees(Learner):
    """Decision trees, random forests and gradient-boosted trees."""

    def __init__(self, saved: SavedStage, kind: str, task: str) -> None:
        self.features = saved.param("featuresCol")
        self.kind, self.task = kind, task
        if kind == "tree":
            self.forest = _Forest.from_trees([saved.rows()])
            self.weights = np.ones(1)
            return
        by_tree: dict[int, list] = {}
        for row in saved.rows():
            by_tree.setdefault(row["treeID"], []).append(row["nodeData"])
        self.forest = _Forest.from_trees([by_tree[t] for t in sorted(by_tree)])
        weights = {r["_1"]: r["_3"] for r in saved.rows("treesMetadata")}
        self.weights = np.array([weights[t] for t in sorted(by_tree)])

    def predict(self, X: Any) -> Output:
        chunks = range(0, max(X.shape[0], 1), _CHUNK_ROWS)
        outputs = [self._dense(to_dense(X[s : s + _CHUNK_ROWS])) for s in chunks]
        prediction = np.concatenate([o[0] for o in outputs])
        if outputs[0][1] is None:
            return prediction, None
        return prediction, np.vstack([o[1] for o in outputs])

    def margin(self, X: Any) -> np.ndarray:
        chunks = range(0, max(X.shape[0], 1), _CHUNK_ROWS)
        return np.concatenate(
            [
                self.forest.prediction[
                    self.forest.leaves(to_dense(X[s : s + _CHUNK_ROWS]))
                ]
                @ self.weights
                for s in chunks
            ]
        )

    def _dense(self, X: np.ndarray) -> Output:
        leaves = self.forest.leaves(X)
        if self.task == "regression":
            values = self.forest.prediction[leaves]
            if self.kind == "forest":
                return values.sum(axis=1) / values.shape[1], None
            return values @ self.weights, None
        if self.kind == "gbt":
            margin = self.forest.prediction[leaves] @ self.weights
            positive = 1.0 / (1.0 + np.exp(-2.0 * margin))
            probability = np.column_stack([1.0 - positive, positive])
        else:
            votes = _normalize(self.forest.stats[leaves]).sum(axis=1)
            probability = _normalize(votes)
        return probability.argmax(axis=1).astype(np.float64), probability


def _normalize(counts: np.ndarray) -> np.ndarray:
    total = counts.sum(axis=-1, keepdims=True)
    return np.divide(counts, total, out=np.zeros_like(counts), where=total != 0)


class SingleNode(Learner):
    """A LightGBM, XGBoost or scikit-learn model as the Arrow UDF scores it:
    the same dense-or-CSR choice of matrix, the same class mapping."""

    def __init__(self, saved: SavedStage) -> None:
        from sparktrain.libraries._base import Scorer

        self.features = saved.param("featuresCol")
        info = saved.metadata["sparktrain"]
        objects = {r["name"]: r["payload"] for r in saved.rows("objects")}
        # The model folder is trusted as Spark's own loader trusts it.
        fitted = pickle.loads(objects["fitted"])
        self.scorer = Scorer(fitted, info["task"], info["classes"], info["numFeatures"])
        self.booster = _lightgbm_booster(fitted)

    def predict(self, X: Any) -> Output:
        from sparktrain.libraries._matrix import SPARSE_MAX_DENSITY, SPARSE_MIN_WIDTH

        width = X.shape[1]
        if sparse.issparse(X):
            density = X.nnz / max(1, X.shape[0] * width)
            if width < SPARSE_MIN_WIDTH or density > SPARSE_MAX_DENSITY:
                X = X.toarray()
        if self.booster is not None:
            prediction, probability = self._booster_predict(X)
        else:
            prediction, probability = self.scorer.predict(X)
        if probability is None:
            return prediction, None
        classes = self.scorer.classes
        full = np.zeros((len(probability), self.scorer.num_classes))
        full[:, classes] = probability
        index = np.asarray(classes, dtype=np.float64)[probability.argmax(axis=1)]
        return index, full

    def _booster_predict(self, X: Any) -> Output:
        """What LightGBM's ``predict_proba``/``predict`` return, from the
        booster they call, without the scikit-learn wrapper's checks (half a
        millisecond per call, most of a one-row request)."""
        values = self.booster.predict(X)
        if self.scorer.task == "regression":
            return np.asarray(values, dtype=float), None
        if values.ndim == 1:
            values = np.column_stack([1.0 - values, values])
        return None, np.asarray(values, dtype=float)


def _lightgbm_booster(fitted: Any) -> Any:
    """The booster of a LightGBM scikit-learn model with a built-in
    objective, else None (other models go through their own ``predict``)."""
    module = type(fitted).__module__
    if not module.startswith("lightgbm") or not hasattr(fitted, "booster_"):
        return None
    if callable(getattr(fitted, "_objective", None)) or callable(fitted.objective):
        return None
    return fitted.booster_


class OneVsRest(Learner):
    """One binary classifier per class; the class whose classifier gives the
    highest raw score wins. Spark gives no probabilities for it."""

    probabilistic = False

    def __init__(self, saved: SavedStage) -> None:
        self.features = saved.param("featuresCol")
        count = int(saved.metadata["numClasses"])
        self.models = []
        for index in range(count):
            folder = saved.folder / f"model_{index}"
            inner = SavedStage(folder, read_metadata(folder))
            if inner.short_name not in _BINARY_MARGINS:
                raise ExportError(
                    f"stage {inner.short_name!r} inside one-vs-rest has no "
                    f"Spark-free scorer; supported: {', '.join(_BINARY_MARGINS)}"
                )
            self.models.append(load_learner(inner))

    def predict(self, X: Any) -> Output:
        raw = np.column_stack([model.margin(X) for model in self.models])
        return raw.argmax(axis=1).astype(np.float64), None


#: Binary classifiers whose margin one-vs-rest compares across classes.
_BINARY_MARGINS = (
    "GBTClassificationModel",
    "LogisticRegressionModel",
    "LinearSVCModel",
    "FMClassificationModel",
)


_SPARK_LEARNERS = {
    "LogisticRegressionModel": lambda s: LogisticRegression(s),
    "LinearRegressionModel": lambda s: LinearRegression(s),
    "DecisionTreeClassificationModel": lambda s: _Trees(s, "tree", "classification"),
    "RandomForestClassificationModel": lambda s: _Trees(s, "forest", "classification"),
    "GBTClassificationModel": lambda s: _Trees(s, "gbt", "classification"),
    "DecisionTreeRegressionModel": lambda s: _Trees(s, "tree", "regression"),
    "RandomForestRegressionModel": lambda s: _Trees(s, "forest", "regression"),
    "GBTRegressionModel": lambda s: _Trees(s, "gbt", "regression"),
    "OneVsRestModel": lambda s: OneVsRest(s),
    "LinearSVCModel": lambda s: LinearSVC(s),
    "NaiveBayesModel": lambda s: NaiveBayes(s),
    "FMClassificationModel": lambda s: FactorizationMachine(s, "classification"),
    "FMRegressionModel": lambda s: FactorizationMachine(s, "regression"),
    "MultilayerPerceptronClassificationModel": lambda s: MultilayerPerceptron(s),
    "GeneralizedLinearRegressionModel": lambda s: GeneralizedLinearRegression(s),
    "IsotonicRegressionModel": lambda s: IsotonicRegression(s),
}
SUPPORTED = [
    *_SPARK_LEARNERS,
    "sparktrain single-node models (LightGBM, XGBoost, scikit-learn)",
]


def is_learner(saved: SavedStage) -> bool:
    return saved.short_name in _SPARK_LEARNERS or _is_single_node(saved)


def _is_single_node(saved: SavedStage) -> bool:
    info = saved.metadata.get("sparktrain")
    return isinstance(info, dict) and "library" in info and "objects" in saved.metadata


def load_learner(saved: SavedStage) -> Learner:
    """The Spark-free learner for a saved learner stage."""
    if _is_single_node(saved):
        return SingleNode(saved)
    build = _SPARK_LEARNERS.get(saved.short_name)
    if build is None:
        raise ExportError(
            f"stage {saved.short_name!r} has no Spark-free scorer; supported "
            f"learners: {', '.join(SUPPORTED)}. Score it on Spark with "
            "'sparktrain predict', or train one of these"
        )
    return build(saved)

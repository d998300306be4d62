"""The MLflow registry: register, list, show, promote, and models:/ URIs."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

import sparktrain
from sparktrain.cli import app
from sparktrain.serving import RegistryError, Scorer, registry

runner = CliRunner()


def said(result) -> str:
    return " ".join(result.output.split())


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    folder = tmp_path_factory.mktemp("registry")
    return f"sqlite:///{folder / 'mlflow.db'}"


@pytest.fixture(scope="module")
def registered(store, credit_gbt, credit_tree):
    """Version 1: the GBT; version 2: the decision tree; champion → 2."""
    first = registry.register(credit_gbt, name="credit", tracking_uri=store)
    second = registry.register(credit_tree, name="credit", tracking_uri=store)
    registry.promote("credit", 2, alias="champion", tracking_uri=store)
    return first, second


def test_versions_and_aliases_round_trip(store, registered):
    first, second = registered

    shown = registry.show("credit", tracking_uri=store)

    assert (first["version"], second["version"]) == (1, 2)
    assert shown["aliases"] == {"champion": 2}
    assert [v["learner"] for v in shown["versions"]] == ["gbt", "decision_tree"]
    assert [v["aliases"] for v in shown["versions"]] == [[], ["champion"]]
    assert registry.list_models(tracking_uri=store) == [
        {
            "name": "credit",
            "latest_version": 2,
            "versions": 2,
            "aliases": {"champion": 2},
        }
    ]


def test_promoting_moves_the_alias(store, registered):
    assert registry.promote("credit", 1, alias="challenger", tracking_uri=store) is None
    assert registry.promote("credit", 1, alias="champion", tracking_uri=store) == 2
    folder, info = registry.resolve("models:/credit@champion", tracking_uri=store)
    assert info == {"name": "credit", "version": 1, "alias": "champion"}
    assert Scorer.load(folder).metadata["learner"] == "gbt"

    registry.promote("credit", 2, alias="champion", tracking_uri=store)
    folder, _ = registry.resolve("models:/credit@champion", tracking_uri=store)
    assert Scorer.load(folder).metadata["learner"] == "decision_tree"


def test_load_model_takes_registry_uris(spark, store, registered, credit_frame):
    by_version = sparktrain.load_model("models:/credit/1", tracking_uri=store)
    by_alias = sparktrain.load_model("models:/credit@champion", tracking_uri=store)

    assert by_version.metadata["learner"] == "gbt"
    assert by_alias.metadata["learner"] == "decision_tree"
    scored = by_version.transform(credit_frame.limit(5)).select("prediction").collect()
    assert {r.prediction for r in scored} <= {"bad", "good"}


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("models:/nobody@champion", "no registered model 'nobody'.*registered: credit"),
        ("models:/credit@nightly", "has no alias 'nightly'.*champion"),
        ("models:/credit/99", "has no version 99 \\(versions: 1, 2\\)"),
        ("models:/credit", "is not models:/NAME@ALIAS or models:/NAME/VERSION"),
    ],
)
def test_unknown_names_versions_and_aliases(store, registered, uri, message):
    with pytest.raises(RegistryError, match=message):
        registry.resolve(uri, tracking_uri=store)


def test_bad_alias_and_bad_folder(store, registered, tmp_path):
    with pytest.raises(RegistryError, match="alias '1st' is not a valid alias"):
        registry.promote("credit", 1, alias="1st", tracking_uri=store)
    with pytest.raises(RegistryError, match="has no version 7"):
        registry.promote("credit", 7, alias="champion", tracking_uri=store)
    with pytest.raises(sparktrain.DataError, match="is not a sparktrain model folder"):
        registry.register(tmp_path, name="credit", tracking_uri=store)


def test_models_commands(store, registered, credit_gbt):
    def run(*arguments):
        return runner.invoke(app, [*arguments, "--tracking-uri", store])

    added = run("models", "register", str(credit_gbt), "--name", "churn")
    promoted = run("models", "promote", "churn", "1", "--alias", "champion")
    listed = run("models", "list")
    shown = run("models", "show", "churn")
    missing = run("models", "show", "nobody")

    assert added.exit_code == 0, added.output
    assert "registered churn version 1" in said(added)
    assert "models:/churn/1" in said(added)
    assert "churn@champion → version 1" in said(promoted)
    assert "churn" in said(listed)
    assert "champion → 1" in said(listed)
    assert "gbt" in said(shown)
    assert missing.exit_code == 1
    assert "no registered model 'nobody'" in said(missing)

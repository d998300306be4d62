"""What ``sparktrain train --budget`` shows: live progress, guardrails, the
leaderboard. The only AutoML module that draws on the terminal."""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn
from rich.table import Table

from sparktrain.automl import job

LEADERBOARD_ROWS = 10


class LiveProgress:
    """A bar over the time budget with trials done and the best score so far."""

    def __init__(self, console: Console, budget: float, metric: str) -> None:
        self.budget = budget
        self.started = time.monotonic()
        self.progress = Progress(
            TextColumn("[bold]AutoML[/]"),
            BarColumn(),
            TextColumn("{task.fields[trials]} trials · best {task.fields[metric]} "),
            TextColumn("{task.fields[best]} · {task.fields[left]} s left"),
            console=console,
            transient=False,
        )
        self.task = self.progress.add_task(
            "automl",
            total=budget,
            trials=0,
            best="-",
            left=f"{budget:.0f}",
            metric=metric,
        )
        self._stop = threading.Event()

    def on_trial(self, record: Any, progress: dict[str, Any]) -> None:
        best = progress["best"]
        self.progress.update(
            self.task,
            trials=progress["trials"],
            best="-" if best is None else f"{best:.4f}",
        )

    def _tick(self) -> None:
        while not self._stop.wait(0.5):
            elapsed = time.monotonic() - self.started
            self.progress.update(
                self.task,
                completed=min(elapsed, self.budget),
                left=f"{max(0.0, self.budget - elapsed):.0f}",
            )

    @contextmanager
    def running(self):
        ticker = threading.Thread(target=self._tick, daemon=True)
        with self.progress:
            ticker.start()
            try:
                yield self
            finally:
                self._stop.set()
                ticker.join()


def print_guardrails(console: Console, guardrails: list[dict[str, Any]]) -> None:
    if not guardrails:
        console.print("guardrails: nothing to report")
        return
    table = Table(title="guardrails")
    for heading in ("check", "column", "finding", "action"):
        table.add_column(heading)
    for g in guardrails:
        table.add_row(g["check"], g["column"] or "", g["message"], g["action"])
    console.print(table)


def print_leaderboard(console: Console, summary: dict[str, Any]) -> None:
    rows = summary["leaderboard"]
    table = Table(title=f"leaderboard ({len(rows)} trials, {summary['metric']})")
    for heading in (
        "rank",
        "trial",
        "learner",
        "preprocessing",
        "score",
        "rows",
        "s",
        "state",
    ):
        table.add_column(
            heading, justify="right" if heading in ("score", "s") else "left"
        )
    for r in rows[:LEADERBOARD_ROWS]:
        score = "" if r["score"] is None else f"{r['score']:.4f}"
        table.add_row(
            str(r["rank"]),
            str(r["trial"]),
            r["learner"],
            r["preprocessing"],
            score,
            f"{r['share']:.0%}",
            f"{r['fit_seconds']:.1f}",
            r["state"] if not r["reason"] else f"{r['state']}: {r['reason'][:40]}",
        )
    console.print(table)
    if summary["ensemble"]:
        weights = ", ".join(
            f"trial {n} (weight {w:.2f})"
            for n, w in summary["ensemble"]["weights"].items()
        )
        console.print(
            f"ensemble of {weights}: validation {summary['ensemble']['score']:.4f}"
        )


def run_in_console(console: Console, frame, *, label: str, out_dir, **params) -> Any:
    """Run AutoML with a live progress bar, then print what it found."""
    live = LiveProgress(console, params["timeBudget"], params.get("metric") or "score")
    with live.running():
        model = job.run(
            frame, label=label, out_dir=out_dir, on_trial=live.on_trial, **params
        )
    summary = model.summary
    print_guardrails(console, summary["guardrails"])
    print_leaderboard(console, summary)
    execution = summary["execution"]
    console.print(f"trials ran {execution['mode']}: {execution['reason']}")
    console.print(f"validation: {summary['validation']['reason']}")
    console.print(
        f"best: {model.info['learner']}, {summary['metric']} "
        f"{summary['best']['score']:.4f} in {summary['seconds']:.1f} s"
    )
    console.print(f"model written to [bold]{out_dir}[/]")
    if summary["mlflow_run_id"]:
        console.print(
            f"MLflow run [bold]{summary['mlflow_run_id']}[/] at "
            f"{summary['tracking_uri']} (mlflow ui --backend-store-uri "
            f"{summary['tracking_uri']})"
        )
    return model

"""Time-to-score curves: each system's best validation score against time."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def plot(outcomes: list[dict[str, Any]], *, dataset: str | None, out: Path) -> Path:
    """Draw one line per system for ``dataset`` (the first one by default).

    Systems score their trials in their own validation metric, so each line
    is drawn on its own axis, side by side, with the metric in its title.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    dataset = dataset or outcomes[0]["dataset"]
    drawn = [o for o in outcomes if o["dataset"] == dataset and o.get("curve")]
    if not drawn:
        raise ValueError(
            f"no time-to-score curve for dataset {dataset!r} in these results; "
            "systems that ran no search (lightgbm-default) have none"
        )
    figure, axes = plt.subplots(
        1, len(drawn), figsize=(4 * len(drawn), 3.2), squeeze=False
    )
    for axis, outcome in zip(axes[0], drawn, strict=True):
        seconds, scores = zip(*outcome["curve"], strict=True)
        axis.step(seconds, scores, where="post", marker="o", markersize=3)
        axis.set_title(f"{outcome['system']} (seed {outcome['seed']})", fontsize=9)
        axis.set_xlabel("seconds")
        axis.set_ylabel(outcome.get("curve_metric") or "validation score", fontsize=8)
        axis.axvline(outcome["budget"], color="grey", linestyle=":")
    figure.suptitle(f"{dataset}: best validation score so far", fontsize=10)
    figure.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=100)
    plt.close(figure)
    return out

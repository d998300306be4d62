"""LightGBM through sparktrain's single-node stages against LightGBM on its own.

Three measurements, each against its peer in the same process:

1. *small data*: ``LightGBMClassifier(mode='local').fit(frame)`` on an
   assembled, cached and counted DataFrame (embedded ``local[2]``, JVM start
   excluded) against ``lightgbm.LGBMClassifier().fit(X, y)`` on the same
   NumPy table, same parameters, same threads;
2. *trial-parallel throughput*: ``fitMultiple`` over a grid of LightGBM
   parameters on ``local[2]`` (``spark.task.cpus=1``, so one thread per fit)
   against the same fits one after another on the driver, with one thread
   each and with LightGBM's default threads;
3. *batch scoring*: ``model.transform(frame)`` written to the ``noop`` sink,
   on ``local[1]`` and ``local[2]``, against ``predict_proba`` on a NumPy
   matrix of the same rows with one thread and with two. The model is fitted
   with ``numThreads=1``, so each Spark task scores with one thread too.

The small-data and trial tables come from
``sklearn.datasets.make_classification`` (20 features, 10 informative, two
classes, 3 % of labels flipped). The scoring table is generated in Spark
(``spark.range`` and ``randn`` columns, a label from a noisy formula), cached
and counted before timing, so nothing is collected to score it.

Each measurement runs in its own Python process (one SparkContext per
process), warms up once, then alternates the contenders for ``--repeats``
rounds and reports medians. Alongside the times it prints where sparktrain's
time goes: the steps of collecting the table, the fit itself, and the parts
of scoring (reading the cache, moving vectors to Python, converting them,
predicting).

Usage::

    .venv/bin/python benchmarks/single_node.py --repeats 5 --markdown out.md
    .venv/bin/python benchmarks/single_node.py --quick
"""

from __future__ import annotations

import argparse
import copy
import itertools
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

import numpy as np
import pyarrow as pa

SEED = 42
WIDTH = 20
RESULT_TAG = "RESULT "
QUICK = {
    "small_rows": [10_000],
    "trial_rows": 20_000,
    "trials": 4,
    "score_rows": 100_000,
    "score_train_rows": 20_000,
    "repeats": 2,
    "slow_repeats": 1,
}


# -- tables ---------------------------------------------------------------


def numpy_table(rows: int) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import make_classification

    X, y = make_classification(
        n_samples=rows,
        n_features=WIDTH,
        n_informative=10,
        n_redundant=4,
        flip_y=0.03,
        random_state=SEED,
    )
    return np.ascontiguousarray(X, dtype=np.float64), y.astype(np.int64)


def spark_table(spark, X: np.ndarray, y: np.ndarray):
    """The same rows as an assembled, cached, counted DataFrame."""
    import pandas as pd
    from pyspark.ml.feature import VectorAssembler

    names = [f"f{i}" for i in range(X.shape[1])]
    pandas = pd.DataFrame(X, columns=names).assign(label=y.astype(float))
    assembler = VectorAssembler(inputCols=names, outputCol="features")
    frame = assembler.transform(spark.createDataFrame(pandas))
    frame = frame.select("features", "label").cache()
    frame.count()
    return frame


def scoring_table(spark, rows: int, partitions: int):
    """Rows generated in Spark, identical whatever the master (fixed partitions)."""
    from pyspark.ml.feature import VectorAssembler
    from pyspark.sql import functions as F

    names = [f"f{i}" for i in range(WIDTH)]
    frame = spark.range(0, rows, 1, partitions).select(
        "id", *[F.randn(seed=i).alias(name) for i, name in enumerate(names)]
    )
    signal = F.col("f0") + F.col("f1") * F.col("f2") - F.abs(F.col("f3"))
    noise = 0.5 * F.randn(seed=WIDTH)
    frame = frame.withColumn("label", (signal + noise > 0).cast("double"))
    assembler = VectorAssembler(inputCols=names, outputCol="features")
    frame = assembler.transform(frame).select("id", "features", "label").cache()
    frame.count()
    return frame


def to_numpy(frame) -> np.ndarray:
    """The features column as a dense matrix (untimed set-up for the peers)."""
    from pyspark.ml.functions import vector_to_array

    table = frame.select(vector_to_array("features").alias("x")).toArrow()
    column = table.column("x").combine_chunks()
    flat = column.flatten().to_numpy(zero_copy_only=False)
    return flat.reshape(len(column), -1)


# -- timing ---------------------------------------------------------------


def timed(function: Callable[[], object]) -> float:
    started = time.perf_counter()
    function()
    return time.perf_counter() - started


def progress(message: str) -> None:
    sys.stderr.write(f"  [{time.strftime('%H:%M:%S')}] {message}\n")


def alternate(contenders: dict[str, Callable], repeats: int) -> dict[str, list]:
    """Warm each up once, then time all ``repeats`` times, alternating order."""
    for name, function in contenders.items():
        progress(f"warm-up: {name} {timed(function):.2f} s")
    times = {name: [] for name in contenders}
    order = list(contenders.items())
    for repeat in range(repeats):
        for name, function in order if repeat % 2 == 0 else order[::-1]:
            times[name].append(timed(function))
        progress(f"repeat {repeat + 1}: " + runs([t[-1] for t in times.values()]))
    return times


def median(values: list[float]) -> float:
    return statistics.median(values)


def lgbm(trees: int, threads: int | None, **params):
    import lightgbm

    return lightgbm.LGBMClassifier(
        n_estimators=trees, n_jobs=threads, random_state=SEED, verbose=-1, **params
    )


def start_spark(master: str, cores_per_task: int = 1):
    import sparktrain

    return sparktrain.session(
        master=master,
        conf={
            "spark.task.cpus": str(cores_per_task),
            "spark.sql.shuffle.partitions": "4",
        },
    )


# -- 1. small data --------------------------------------------------------


def small_data(args) -> dict:
    spark = start_spark("local[2]")
    return {"tables": [small_table(spark, rows, args) for rows in args.small_rows]}


def small_table(spark, rows: int, args) -> dict:
    from sparktrain.libraries import LightGBMClassifier

    X, y = numpy_table(rows)
    frame = spark_table(spark, X, y)
    estimator = LightGBMClassifier(
        mode="local", numThreads=args.threads, numIterations=args.trees
    )
    models = []
    contenders = {
        "sparktrain": lambda: models.append(estimator.fit(frame)),
        "lightgbm": lambda: lgbm(args.trees, args.threads).fit(X, y),
    }
    times = alternate(contenders, args.repeats)
    fits = [m.info["fitSeconds"] for m in models[1:]]
    steps = collect_steps(frame, args.repeats)
    frame.unpersist()
    return {"rows": rows, "times": times, "fit": fits, "steps": steps}


def collect_steps(frame, repeats: int) -> dict[str, list[float]]:
    """The steps of ``collect`` one by one, as the local fit runs them."""
    from pyspark.sql import functions as F

    from sparktrain.libraries._matrix import (
        _estimate_bytes,
        cached_row_count,
        to_matrix,
        vector_width,
    )

    selected = frame.select(
        F.col("features").alias("x"), F.col("label").cast("double").alias("y")
    )
    steps = {"row count": [], "size estimate": [], "toArrow": [], "to_matrix": []}
    for _ in range(repeats + 1):
        marks = [time.perf_counter()]
        rows = cached_row_count(selected)
        if rows is None:
            rows = selected.count()
        marks.append(time.perf_counter())
        _estimate_bytes(selected, rows, True, vector_width(frame, "features"))
        marks.append(time.perf_counter())
        table = selected.toArrow()
        marks.append(time.perf_counter())
        to_matrix(table.column("x"))
        marks.append(time.perf_counter())
        for name, seconds in zip(steps, np.diff(marks), strict=True):
            steps[name].append(float(seconds))
    return {name: values[1:] for name, values in steps.items()}


# -- 2. trial-parallel throughput -----------------------------------------


def grid(trials: int) -> list[dict]:
    leaves = [15, 31, 63, 127]
    rates = [0.05, 0.1, 0.2, 0.3]
    pairs = itertools.product(rates, leaves)
    return [{"numLeaves": n, "learningRate": r} for r, n in pairs][:trials]


def trial_parallel(args) -> dict:
    from sparktrain.libraries import LightGBMClassifier

    spark = start_spark("local[2]")
    X, y = numpy_table(args.trial_rows)
    frame = spark_table(spark, X, y)
    estimator = LightGBMClassifier(numIterations=args.trees)
    settings = grid(args.trials)
    maps = [{estimator.getParam(k): v for k, v in s.items()} for s in settings]
    models = []

    def parallel():
        models.append([m for _, m in estimator.fitMultiple(frame, maps)])

    def sequential(threads):
        for setting in settings:
            trial_model(args.trees, threads, setting).fit(X, y)

    contenders = {
        "fitMultiple, local[2]": parallel,
        "sequential, 1 thread": lambda: sequential(1),
    }
    times = alternate(contenders, args.repeats)
    # LightGBM is warm by now; all-core fits can be very slow on a busy machine.
    default = [timed(lambda: sequential(None)) for _ in range(args.slow_repeats)]
    times["sequential, default threads"] = default
    progress(f"sequential, default threads: {runs(default)}")
    return {
        "trials": len(settings),
        "rows": args.trial_rows,
        "times": times,
        "in_task_fits": [[m.info["fitSeconds"] for m in ms] for ms in models[1:]],
        "modes": sorted({m.info["mode"] for ms in models for m in ms}),
        "collect": collect_total(frame, args.repeats),
    }


def trial_model(trees: int, threads: int | None, setting: dict):
    return lgbm(
        trees,
        threads,
        num_leaves=setting["numLeaves"],
        learning_rate=setting["learningRate"],
    )


def collect_total(frame, repeats: int) -> list[float]:
    from sparktrain.libraries._matrix import collect

    def once():
        collect(frame, features_col="features", label_col="label", max_bytes=1 << 40)

    once()
    return [timed(once) for _ in range(repeats)]


# -- 3. batch scoring -----------------------------------------------------


def scoring(args) -> dict:
    from pyspark.sql import functions as F

    from sparktrain.libraries import LightGBMClassifier

    spark = start_spark(args.master)
    frame = scoring_table(spark, args.score_rows, args.partitions)
    train = frame.where(F.col("id") < args.score_train_rows)
    model = LightGBMClassifier(
        mode="local", numThreads=1, numIterations=args.trees
    ).fit(train)
    X = to_numpy(frame)
    one, two = (copy.deepcopy(model.fitted).set_params(n_jobs=n) for n in (1, 2))

    def spark_score():
        model.transform(frame).write.format("noop").mode("overwrite").save()

    contenders = {
        f"transform, {args.master}": spark_score,
        "predict_proba, 1 thread": lambda: one.predict_proba(X),
        "predict_proba, 2 threads": lambda: two.predict_proba(X),
    }
    times = alternate(contenders, args.repeats)
    return {
        "master": args.master,
        "rows": args.score_rows,
        "times": times,
        "breakdown": scoring_breakdown(spark, frame, model, X, args.repeats),
    }


def scoring_breakdown(spark, frame, model, X, repeats: int) -> dict[str, list]:
    """Where the scoring time goes, one layer at a time."""
    from pyspark.ml.functions import vector_to_array
    from pyspark.sql import functions as F

    @F.arrow_udf("double")
    def touch(vectors: pa.Array) -> pa.Array:
        return pa.array(np.zeros(len(vectors)))

    def noop(result):
        result.write.format("noop").mode("overwrite").save()

    arrays = frame.select(vector_to_array("features").alias("a")).cache()
    arrays.count()
    parts = {
        "read the cached input": lambda: noop(frame),
        "empty Arrow UDF on the vectors": lambda: noop(
            frame.withColumn("z", touch("features"))
        ),
        "empty Arrow UDF on the same values cached as array<double>": lambda: noop(
            arrays.withColumn("z", touch("a"))
        ),
    }
    times = alternate(parts, repeats)
    arrays.unpersist()
    times.update(in_process_scoring(spark, frame, model, X, repeats))
    return times


def in_process_scoring(spark, frame, model, X, repeats: int) -> dict[str, list]:
    """The scorer's own steps on Arrow batches of Spark's size, in this process."""
    from sparktrain.libraries._matrix import to_matrix

    size = int(spark.conf.get("spark.sql.execution.arrow.maxRecordsPerBatch"))
    vectors = frame.select("features").toArrow().column("features")
    batches = [vectors.slice(i, size).combine_chunks() for i in range(0, len(X), size)]
    scorer = model.scorer()
    fitted = model.fitted
    steps = {
        "to_matrix, per batch": lambda: [to_matrix(b) for b in batches],
        "predict_proba, per batch": lambda: [
            fitted.predict_proba(X[i : i + size]) for i in range(0, len(X), size)
        ],
        "Scorer.score, per batch (all of the above + output)": lambda: [
            scorer.score(b) for b in batches
        ],
    }
    return alternate(steps, repeats)


# -- driver: run each part in its own process, report ---------------------


def child(args) -> None:
    parts = {"small": small_data, "trials": trial_parallel, "scoring": scoring}
    result = parts[args.child](args)
    result["load"] = os.getloadavg()[0]
    print(RESULT_TAG + json.dumps(result), flush=True)


def spawn(args, part: str, master: str = "local[2]") -> dict:
    command = [sys.executable, os.path.abspath(__file__), "--child", part]
    command += ["--master", master, *forwarded(args)]
    load = os.getloadavg()[0]
    print(f"running {part} on {master} (load average {load:.1f})", flush=True)
    output = subprocess.run(command, stdout=subprocess.PIPE, text=True)
    lines = [x for x in output.stdout.splitlines() if x.startswith(RESULT_TAG)]
    if output.returncode or not lines:
        raise SystemExit(f"{part} on {master} failed (exit {output.returncode})")
    result = json.loads(lines[-1][len(RESULT_TAG) :])
    result["load_before"] = load
    return result


def forwarded(args) -> list[str]:
    return [
        "--small-rows",
        ",".join(map(str, args.small_rows)),
        *("--trial-rows", str(args.trial_rows), "--trials", str(args.trials)),
        *("--score-rows", str(args.score_rows)),
        *("--score-train-rows", str(args.score_train_rows)),
        *("--partitions", str(args.partitions), "--trees", str(args.trees)),
        *("--threads", str(args.threads), "--repeats", str(args.repeats)),
        *("--slow-repeats", str(args.slow_repeats)),
    ]


def runs(values: list[float]) -> str:
    return ", ".join(f"{v:.2f}" for v in values)


def small_report(result: dict) -> list[str]:
    lines = [
        "| rows | sparktrain `fit(df)` s | `LGBMClassifier.fit(X, y)` s | ratio |",
        "|---|---|---|---|",
    ]
    details = []
    for table in result["tables"]:
        ours = median(table["times"]["sparktrain"])
        theirs = median(table["times"]["lightgbm"])
        lines.append(
            f"| {table['rows']:,} | {ours:.3f} | {theirs:.3f} | "
            f"**{ours / theirs:.2f}** |"
        )
        steps = {k: median(v) for k, v in table["steps"].items()}
        fit = median(table["fit"])
        rest = ours - fit - sum(steps.values())
        parts = [f"{k} {v:.3f}" for k, v in steps.items()]
        details.append(
            f"- {table['rows']:,} rows: sparktrain runs "
            f"{runs(table['times']['sparktrain'])}; lightgbm runs "
            f"{runs(table['times']['lightgbm'])}. Breakdown (medians, s): "
            f"{', '.join(parts)}, LightGBM fit inside sparktrain {fit:.3f}, "
            f"rest {rest:.3f}"
        )
    return [*lines, "", *details]


def trials_report(result: dict) -> list[str]:
    times = {k: median(v) for k, v in result["times"].items()}
    parallel = times["fitMultiple, local[2]"]
    lines = [
        f"{result['trials']} fits, {result['rows']:,} rows "
        f"(fit modes seen: {', '.join(result['modes'])}):",
        "",
        "| | median s | fits/min | fitMultiple speed-up over it | runs |",
        "|---|---|---|---|---|",
    ]
    for name, seconds in times.items():
        rate = 60 * result["trials"] / seconds
        lines.append(
            f"| {name} | {seconds:.2f} | {rate:.1f} | "
            f"**{seconds / parallel:.2f}** | {runs(result['times'][name])} |"
        )
    collect = median(result["collect"])
    fits = sorted(result["in_task_fits"], key=sum)
    middle = fits[len(fits) // 2]
    busiest = makespan(middle, cores=2)
    lines += [
        "",
        f"- fitMultiple, middle run: {parallel:.2f} s = collecting the table "
        f"{collect:.2f} s + the busier core's LightGBM fits {busiest:.2f} s "
        f"(fits summed {sum(middle):.2f} s; per fit {runs(middle)}) + the rest "
        f"(broadcast, tasks, models back) {parallel - collect - busiest:.2f} s",
    ]
    return lines


def makespan(seconds: list[float], cores: int) -> float:
    """When the last of the fits ends, tasks taken in order by the first free core."""
    free = [0.0] * cores
    for task in seconds:
        free[free.index(min(free))] += task
    return max(free)


def scoring_report(results: list[dict]) -> list[str]:
    lines = [
        "| | rows/s | vs `predict_proba` 1 thread | vs 2 threads | runs (s) |",
        "|---|---|---|---|---|",
    ]
    details = []
    for result in results:
        times = {k: median(v) for k, v in result["times"].items()}
        one, two = times["predict_proba, 1 thread"], times["predict_proba, 2 threads"]
        for name, seconds in times.items():
            lines.append(
                f"| {name} (in the {result['master']} process) | "
                f"{result['rows'] / seconds:,.0f} | **{one / seconds:.2f}** | "
                f"{two / seconds:.2f} | {runs(result['times'][name])} |"
            )
        parts = [f"{k} {median(v):.2f}" for k, v in result["breakdown"].items()]
        details.append(f"- {result['master']}, medians (s): {'; '.join(parts)}")
    return [*lines, "", *details]


def report(args, results: dict) -> str:
    lines = [
        f"{time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, {versions()}; "
        f"{args.trees} trees, {args.repeats} repeats, medians.",
        "",
    ]
    if "small" in results:
        lines += ["Small data", "", *small_report(results["small"]), ""]
    if "trials" in results:
        lines += ["Trial-parallel", "", *trials_report(results["trials"]), ""]
    if "scoring" in results:
        lines += ["Batch scoring", "", *scoring_report(results["scoring"]), ""]
    loads = [
        f"{name} {r['load_before']:.1f}->{r['load']:.1f}"
        for name, part in results.items()
        for r in (part if isinstance(part, list) else [part])
    ]
    lines.append(f"Load average (1 min) before->after each part: {', '.join(loads)}")
    return "\n".join(lines) + "\n"


def versions() -> str:
    import lightgbm
    import pyspark

    return f"pyspark {pyspark.__version__}, lightgbm {lightgbm.__version__}"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )

    def sizes(text: str) -> list[int]:
        return [int(v) for v in text.split(",")]

    parser.add_argument("--parts", default="small,trials,scoring")
    parser.add_argument("--small-rows", type=sizes, default=[10_000, 100_000])
    parser.add_argument("--trial-rows", type=int, default=100_000)
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument("--score-rows", type=int, default=1_000_000)
    parser.add_argument("--score-train-rows", type=int, default=100_000)
    parser.add_argument("--partitions", type=int, default=8)
    parser.add_argument("--trees", type=int, default=100)
    parser.add_argument(
        "--threads", type=int, default=1, help="threads per small-data fit, both sides"
    )
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--slow-repeats",
        type=int,
        default=1,
        help="runs of the sequential fits with LightGBM's default threads",
    )
    parser.add_argument("--quick", action="store_true", help="small sizes, 2 runs")
    parser.add_argument("--markdown", help="also write the report to this file")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--master", default="local[2]", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.quick:
        for name, value in QUICK.items():
            setattr(args, name, value)
    return args


def main() -> None:
    args = parse_args()
    if args.child:
        child(args)
        return
    results = {}
    parts = args.parts.split(",")
    if "small" in parts:
        results["small"] = spawn(args, "small")
    if "trials" in parts:
        results["trials"] = spawn(args, "trials")
    if "scoring" in parts:
        results["scoring"] = [
            spawn(args, "scoring", master) for master in ("local[1]", "local[2]")
        ]
    text = report(args, results)
    print(text)
    if args.markdown:
        with open(args.markdown, "w") as handle:
            handle.write(text)


if __name__ == "__main__":
    main()

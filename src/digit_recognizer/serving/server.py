"""`digit-recognizer serve`: a page to draw a digit on, and a JSON API, over the trained ensemble.

Decoding and the models run in a small thread pool, off the event loop, so one big upload never stalls
the page or other clients; when the pool's queue is full the server answers 503 at once.
"""

from __future__ import annotations

import asyncio
import errno
import signal
import socket
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Annotated

import anyio
import numpy as np
from fastapi import FastAPI, HTTPException, Request, UploadFile
from fastapi.exception_handlers import request_validation_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field, ValidationError
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from swagger_ui_bundle import swagger_ui_path

from digit_recognizer.errors import UserError, os_reason
from digit_recognizer.serving.inference import EnsemblePredictor, ensemble_weights
from digit_recognizer.serving.preprocess import FORMATS, ImageTooLarge, NoInk, load_image, picture_warnings, to_mnist


@dataclass(frozen=True)
class Limits:
    """What one server accepts; docs/serve.md states the same numbers."""

    body_bytes: int = 2 << 20  # request body
    body_seconds: float = 10.0  # to receive the whole body
    header_bytes: int = 16 << 10  # headers not ended within this many bytes get 400 (h11_max_incomplete_event_size)
    workers: int = 2  # requests decoded and predicted at once (2 about doubles 1's throughput: BENCHMARKS.md)
    queued: int = 32  # requests waiting for a worker beyond those; more get 503
    connections: int = 64  # open connections (uvicorn's limit_concurrency); more get 503
    idle_seconds: float = 5.0  # a connection that sends nothing, before or between requests, is closed
    shutdown_seconds: int = 5  # on Ctrl-C or SIGTERM, requests still running after this are cancelled


LIMITS = Limits()
PROBABILITY_DECIMALS = 4

GreyLevel = Annotated[float, Field(strict=True, ge=0, le=255, allow_inf_nan=False)]  # strict: no "9", no true


class Pixels(BaseModel):
    """The JSON body of /api/predict."""

    pixels: list[GreyLevel] | list[list[GreyLevel]] = Field(
        description="784 grey levels 0..255, row by row (or 28 rows of 28); light ink on dark, as in MNIST and "
        "Kaggle's CSVs. Used as given, without preprocessing.",
        examples=[[0] * 784],
    )


PREDICT_BODY = {  # beside the multipart form that `file` declares: image bodies and JSON, which FastAPI's
    "requestBody": {  # parameters cannot declare on the same URL
        "required": True,
        "content": {
            **{kind: {"schema": {"type": "string", "format": "binary"}} for kind in FORMATS},
            "application/json": {"schema": Pixels.model_json_schema()},
        },
    }
}
PREDICT_RESPONSES: dict[int | str, dict] = {
    200: {
        "description": f"probabilities rounded to {PROBABILITY_DECIMALS} decimals; `warnings` if any (pixels that "
        "look scaled to 0..1, a picture unlike a pen-drawn digit on plain paper)"
    },
    400: {"description": "not an image of the type sent, or malformed JSON or multipart"},
    408: {"description": f"the body took longer than {LIMITS.body_seconds:g} s to arrive"},
    413: {"description": f"body over {LIMITS.body_bytes} bytes, or an image over 4096x4096 pixels"},
    415: {"description": "unsupported content type"},
    422: {"description": "no ink found, wrong number of pixels, or values that are not numbers in 0..255"},
    503: {"description": "too many requests waiting; try again shortly"},
}


class BodyLimits:
    """ASGI middleware: a body over `body_bytes` gets 413, one that takes over `body_seconds` to arrive gets 408,
    both as JSON with one line in `detail`, before anything parses the body.

    Not FastAPI's `max_body_size` (Starlette's RequestBodyLimitMiddleware): when the declared Content-Length is
    over the limit, its send wrapper replaces whatever the app answers, exception handlers included, by plain
    text "Content Too Large", which names no limit and breaks the API's JSON errors. Nothing in FastAPI,
    Starlette or uvicorn bounds the time a body takes (a client trickling bytes holds a connection forever)."""

    def __init__(self, app: ASGIApp, limits: Limits) -> None:
        self.app, self.limits = app, limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        limits = self.limits
        declared = Headers(scope=scope).get("content-length", "")
        if declared.isdigit() and int(declared) > limits.body_bytes:
            detail = f"body of {declared} bytes is over the {limits.body_bytes}-byte limit"
            return await JSONResponse({"detail": detail}, 413)(scope, receive, send)
        deadline = anyio.current_time() + limits.body_seconds
        size, complete = 0, False

        async def limited_receive() -> Message:
            nonlocal size, complete
            if complete:  # later receives wait for the client to disconnect, which has no deadline
                return await receive()
            try:
                with anyio.fail_after(max(0.0, deadline - anyio.current_time())):
                    message = await receive()
            except TimeoutError:
                raise HTTPException(408, f"the body did not arrive within {limits.body_seconds:g} s") from None
            size += len(message.get("body", b""))
            if size > limits.body_bytes:
                raise HTTPException(413, f"body is over the {limits.body_bytes}-byte limit")
            complete = message["type"] != "http.request" or not message.get("more_body", False)
            return message

        await self.app(scope, limited_receive, send)


def create_app(predictor: EnsemblePredictor, limits: Limits = LIMITS) -> FastAPI:
    app = FastAPI(
        title="digit-recognizer",
        description="Draw a digit and see what the trained models read. POST /api/predict takes an image or 784 pixels.",
        docs_url=None,  # served below from swagger-ui-bundle's files, not from a CDN: /docs works offline
        redoc_url=None,
    )
    app.add_middleware(BodyLimits, limits=limits)

    @app.exception_handler(RequestValidationError)
    async def not_a_file(request: Request, error: RequestValidationError) -> JSONResponse:
        """FastAPI's own check of the form: a `file` field sent as text gets one line, as every other error."""
        if all(e["loc"] == ("body", "file") for e in error.errors()):
            return JSONResponse(
                {"detail": "the multipart body's file field is not a file (curl -F file=@digit.png)"}, 400
            )
        return await request_validation_exception_handler(request, error)

    app.mount("/docs-static", StaticFiles(directory=swagger_ui_path), name="docs-static")

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url,
            title="digit-recognizer API",
            swagger_js_url="/docs-static/swagger-ui-bundle.js",
            swagger_css_url="/docs-static/swagger-ui.css",
            swagger_favicon_url="/docs-static/favicon-32x32.png",
        )

    # Dedicated threads rather than anyio's shared pool: torch's OpenMP keeps a team of threads per calling
    # thread, so calls from ever-changing threads leave idle teams spinning on the cores.
    workers = ThreadPoolExecutor(max_workers=limits.workers, thread_name_prefix="predict")
    # Requests holding or waiting for a worker. uvicorn's limit_concurrency cannot shed these alone: it counts
    # every connection and request (the page's, the docs'), so a busy model would also refuse the page.
    admitted = anyio.CapacityLimiter(limits.workers + limits.queued)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def page() -> str:
        return resources.files("digit_recognizer.serving.web").joinpath("index.html").read_text()

    @app.get("/api/models")
    def models() -> dict:
        """The architectures in the ensemble, their fold counts and ensemble weights."""
        weights = ensemble_weights(predictor.combiner)
        return {
            "method": predictor.combiner.method,
            "architectures": [
                {"name": name, "folds": len(predictor.models[name]), "weight": weight}
                for name, weight in weights.items()
            ],
        }

    @app.post("/api/predict", openapi_extra=PREDICT_BODY, responses=PREDICT_RESPONSES)
    async def predict(request: Request, file: UploadFile | None = None) -> dict:
        """Probabilities of the ensemble and of each architecture, and the 28x28 input the models saw."""
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type not in (*FORMATS, "application/json", "multipart/form-data"):
            raise HTTPException(
                415,
                f"send {', '.join(FORMATS)}, multipart/form-data or application/json, not {content_type or 'nothing'}",
            )
        if content_type == "multipart/form-data":  # FastAPI parsed the form into `file`
            if file is None:
                raise HTTPException(400, "the multipart body holds no file")
            kind = (file.content_type or "").lower()
            content_type, body = (kind if kind in FORMATS else "image/*"), await file.read()
        else:
            body = await request.body()
        try:
            admitted.acquire_nowait()
        except anyio.WouldBlock:
            raise HTTPException(
                503, f"{admitted.borrowed_tokens} requests are being served; try again shortly", {"Retry-After": "1"}
            ) from None
        try:
            return await asyncio.get_running_loop().run_in_executor(workers, _answer, predictor, content_type, body)
        finally:
            admitted.release()

    return app


def _answer(predictor: EnsemblePredictor, content_type: str, body: bytes) -> dict:
    """Decode the request and run every model (in a worker thread)."""
    if content_type == "application/json":
        digit, warnings = _pixels_from_json(body)
        warnings += picture_warnings(digit)
    else:
        try:
            grey = load_image(body, "uploaded image", content_type)
            digit, warnings = to_mnist(grey), picture_warnings(grey)
        except ImageTooLarge as error:
            raise HTTPException(413, str(error)) from None
        except NoInk as error:
            raise HTTPException(422, str(error)) from None
        except UserError as error:
            raise HTTPException(400, str(error)) from None
    result = predictor.predict(digit[None])
    ensemble = result.ensemble[0]

    def rounded(probabilities: np.ndarray) -> list[float]:  # float64 first: float32 would print 0.1234000027
        return probabilities.astype(np.float64).round(PROBABILITY_DECIMALS).tolist()

    return {
        "digit": int(ensemble.argmax()),
        "probability": round(float(ensemble.max()), PROBABILITY_DECIMALS),
        "ensemble": rounded(ensemble),
        "architectures": {name: rounded(p[0]) for name, p in result.architectures.items()},
        "ensemble_method": predictor.combiner.method,
        "weights": ensemble_weights(predictor.combiner),
        "calibrated": {name: rounded(p[0]) for name, p in result.calibrated.items()},
        "input": digit.tolist(),
        "warnings": warnings,
    }


def _pixels_from_json(body: bytes) -> tuple[np.ndarray, list[str]]:
    """{"pixels": 784 numbers, or 28 rows of 28} -> (28, 28) uint8, and warnings about how it looks."""
    try:
        pixels = Pixels.model_validate_json(body).pixels
    except ValidationError as error:
        kinds = {e["type"] for e in error.errors()}
        if kinds & {"json_invalid", "missing", "model_type"}:
            raise HTTPException(400, 'expected JSON {"pixels": [784 numbers]}') from None
        if kinds == {"list_type"}:
            raise HTTPException(422, "expected 784 pixels, or 28 rows of 28") from None
        raise HTTPException(422, "pixel values must be numbers in 0..255") from None
    rows = pixels if pixels and isinstance(pixels[0], list) else [pixels]
    if [len(row) for row in rows] not in ([784], [28] * 28):
        raise HTTPException(422, "expected 784 pixels, or 28 rows of 28")
    digit = np.asarray(rows, dtype=np.float64).reshape(28, 28)
    if digit.max() == 0:
        raise HTTPException(422, "no ink found: every pixel is 0")
    warnings = []
    if digit.max() <= 1:
        warnings.append("every pixel is within 0..1: the models expect grey levels 0..255 (multiply by 255)")
    return np.rint(digit).astype(np.uint8), warnings


def uvicorn_config(app: FastAPI, host: str, port: int, limits: Limits = LIMITS):  # -> uvicorn.Config
    """uvicorn with the connection limits: at most `connections` open, idle ones closed after `idle_seconds`."""
    import uvicorn
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class IdleClosingH11Protocol(H11Protocol):
        """uvicorn's timeout_keep_alive starts only after a response; this starts it when a connection opens too,
        so one that never sends a request is closed as well (half-open connections otherwise stay forever).
        It sets uvicorn's own keep-alive timer, an internal: pyproject.toml pins uvicorn's minor version."""

        def connection_made(self, transport) -> None:
            super().connection_made(transport)
            self.timeout_keep_alive_task = self.loop.call_later(
                self.timeout_keep_alive, self.timeout_keep_alive_handler
            )

    return uvicorn.Config(
        app,
        host=host,
        port=port,
        http=IdleClosingH11Protocol,
        limit_concurrency=limits.connections,
        timeout_keep_alive=limits.idle_seconds,
        h11_max_incomplete_event_size=limits.header_bytes,
        timeout_graceful_shutdown=limits.shutdown_seconds,
        log_level="warning",
    )


def check_port(host: str, port: int) -> None:
    """A UserError saying in one line why serve cannot listen on host:port (a port taken, a bad address), if so.

    uvicorn itself only logs the OSError, after serve has said where it serves. A trial bind, closed again:
    uvicorn then binds for itself (a socket made here would need IPPROTO_TCP, else asyncio leaves Nagle's
    algorithm on every connection: a third fewer requests a second in benchmarks/load_test.py)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family) as trial:
        trial.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            trial.bind((host, port))
        except OSError as error:
            if error.errno == errno.EADDRINUSE:
                raise UserError(f"port {port} on {host} is taken: choose another with --port") from None
            raise UserError(
                f"cannot listen on {host} port {port} ({os_reason(error)}): see --host and --port"
            ) from None


def serve(host: str, port: int, project: Path | None = None) -> None:
    """`digit-recognizer serve`: the draw page and the API over the project's trained ensemble, until stopped."""
    import uvicorn

    check_port(host, port)  # before loading torch and every fold model
    app = create_app(EnsemblePredictor.load(project))
    print(f"serving on http://{host}:{port} (API docs at /docs)", flush=True)
    # Python's own Ctrl-C handler makes asyncio.run cancel the server and raise KeyboardInterrupt once uvicorn
    # hands the signal back, a traceback; with the default action uvicorn shuts down and the signal then ends
    # the process, quietly, as SIGTERM does.
    previous = signal.signal(signal.SIGINT, signal.SIG_DFL)
    try:
        uvicorn.Server(uvicorn_config(app, host, port)).run()
    finally:
        signal.signal(signal.SIGINT, previous)

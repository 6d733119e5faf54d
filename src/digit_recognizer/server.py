"""`digit-recognizer serve`: a page to draw a digit on, and a JSON API, over the trained ensemble."""

from __future__ import annotations

from importlib import resources

import numpy as np
from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse

from digit_recognizer.errors import UserError
from digit_recognizer.inference import EnsemblePredictor
from digit_recognizer.preprocess import ImageTooLarge, load_image, to_mnist

MAX_BODY_BYTES = 2 << 20
IMAGE_TYPES = {"image/png", "image/jpeg", "image/gif", "image/bmp", "image/webp"}

PREDICT_DOC = {
    "requestBody": {
        "required": True,
        "content": {
            "image/png": {"schema": {"type": "string", "format": "binary"}},
            "image/jpeg": {"schema": {"type": "string", "format": "binary"}},
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["pixels"],
                    "properties": {
                        "pixels": {
                            "description": "784 grey levels 0..255, row by row (or 28 rows of 28); light ink on dark, "
                            "as in MNIST and Kaggle's CSVs. Used as given, without preprocessing.",
                            "type": "array",
                            "items": {"oneOf": [{"type": "number"}, {"type": "array", "items": {"type": "number"}}]},
                        }
                    },
                },
                "example": {"pixels": [0] * 784},
            },
        },
    },
    "responses": {
        "400": {"description": "not an image, or malformed JSON"},
        "413": {"description": f"body larger than {MAX_BODY_BYTES} bytes or image larger than 4096x4096"},
        "415": {"description": "unsupported content type"},
        "422": {"description": "wrong number of pixels or values outside 0..255"},
    },
}


def create_app(predictor: EnsemblePredictor) -> FastAPI:
    app = FastAPI(
        title="digit-recognizer",
        description="Draw a digit and see what the trained models read. POST /api/predict takes an image or 784 pixels.",
    )

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def page() -> str:
        return resources.files("digit_recognizer.web").joinpath("index.html").read_text()

    @app.get("/api/models")
    def models() -> dict:
        """The architectures in the ensemble, their fold counts and ensemble weights."""
        combiner = predictor.combiner
        weights = [None] * len(combiner.architectures) if combiner.weights is None else combiner.weights.tolist()
        return {
            "method": combiner.method,
            "architectures": [
                {"name": name, "folds": len(predictor.models[name]), "weight": weight}
                for name, weight in zip(combiner.architectures, weights, strict=True)
            ],
        }

    @app.post("/api/predict", openapi_extra=PREDICT_DOC)
    async def predict(request: Request) -> dict:
        """Probabilities of the ensemble and of each architecture, and the 28x28 input the models saw."""
        body = await _read_limited(request)
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type in IMAGE_TYPES:
            try:
                digit = to_mnist(load_image(body, "uploaded image"))
            except ImageTooLarge as error:
                raise HTTPException(413, str(error)) from None
            except UserError as error:
                raise HTTPException(400, str(error)) from None
        elif content_type == "application/json":
            digit = _pixels_from_json(body)
        else:
            raise HTTPException(415, f"send image/png, image/jpeg or application/json, not {content_type or 'nothing'}")
        result = predictor.predict(digit[None])
        ensemble = result.ensemble[0]
        return {
            "digit": int(ensemble.argmax()),
            "probability": float(ensemble.max()),
            "ensemble": ensemble.round(5).tolist(),
            "architectures": {name: p[0].round(5).tolist() for name, p in result.architectures.items()},
            "input": digit.tolist(),
        }

    return app


async def _read_limited(request: Request) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise HTTPException(413, f"body of {declared} bytes is over the {MAX_BODY_BYTES}-byte limit")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise HTTPException(413, f"body is over the {MAX_BODY_BYTES}-byte limit")
        chunks.append(chunk)
    return b"".join(chunks)


def _pixels_from_json(body: bytes) -> np.ndarray:
    import json

    try:
        pixels = json.loads(body)["pixels"]
        values = np.asarray(pixels, dtype=np.float64)
    except (ValueError, KeyError, TypeError):
        raise HTTPException(400, 'expected JSON {"pixels": [784 numbers]}') from None
    if values.size != 784 or values.shape not in ((784,), (28, 28)):
        raise HTTPException(422, f"expected 784 pixels (or 28x28), got shape {list(values.shape)}")
    if not np.isfinite(values).all() or values.min() < 0 or values.max() > 255:
        raise HTTPException(422, "pixel values must be numbers in 0..255")
    return np.rint(values).astype(np.uint8).reshape(28, 28)

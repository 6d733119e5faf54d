"""predict and serve: MNIST-style preprocessing, the JSON API's answers and refusals, and the real page."""

from __future__ import annotations

import io
import json
import os
import shutil
import socket
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient
from PIL import Image

from digit_recognizer.cli import main as cli_main
from digit_recognizer.ensemble import Combiner
from digit_recognizer.fold_run import train_fold
from digit_recognizer.inference import EnsemblePredictor
from digit_recognizer.preprocess import to_mnist
from digit_recognizer.server import MAX_BODY_BYTES, create_app
from digit_recognizer.training import FitConfig

from .conftest import REPO

BROWSER_MODULES = REPO / "tests" / ".browser" / "node_modules"


@pytest.fixture(scope="module")
def project(sample_prepared, tmp_path_factory) -> Path:
    """A project folder holding what `dvc repro` would leave for serving: one trained LeNet and its combiner."""
    root = tmp_path_factory.mktemp("served")
    config = FitConfig(epochs=4, batch_size=64, optimizer="adam", lr=3e-3, rotate=10, zoom=0.1, shift=0.1)
    net = {"channels": [16, 32], "hidden": [120, 84]}
    train_fold("lenet", 0, net, config, sample_prepared, root / "data" / "train" / "lenet-0", 0, torch.device("cpu"))
    combiner = Combiner("mean", architectures=["lenet"]).fit(np.zeros((1, 1, 10)), np.zeros(1, dtype=int))
    (root / "data" / "ensemble").mkdir(parents=True)
    import pickle

    (root / "data" / "ensemble" / "combiner.pkl").write_bytes(pickle.dumps(combiner))
    return root


@pytest.fixture(scope="module")
def predictor(project) -> EnsemblePredictor:
    return EnsemblePredictor.load(project / "data" / "train", project / "data" / "ensemble")


@pytest.fixture(scope="module")
def client(predictor) -> TestClient:
    return TestClient(create_app(predictor))


def sample_test_digits(sample_prepared, n: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """The first n test digits of the embedded sample and their withheld labels."""
    return sample_prepared.test_images[:n], sample_prepared.test_labels[:n]


def png_bytes(image: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()


def as_photo(digit: np.ndarray, scale: int, offset: tuple[int, int], dark_on_light: bool) -> np.ndarray:
    """A digit as a person might photograph it: bigger, off-centre on a larger page, either polarity."""
    big = np.asarray(Image.fromarray(digit).resize((28 * scale, 28 * scale), Image.Resampling.BILINEAR))
    page = np.zeros((400, 500), dtype=np.uint8)
    page[offset[0] : offset[0] + big.shape[0], offset[1] : offset[1] + big.shape[1]] = big
    return 255 - page if dark_on_light else page


def test_preprocessing_recovers_an_mnist_digit_from_a_photo(sample_prepared):
    digit = sample_prepared.test_images[3]
    for scale, offset, dark in [(5, (10, 300), True), (12, (0, 0), False), (3, (300, 20), True)]:
        recovered = to_mnist(as_photo(digit, scale, offset, dark))
        assert recovered.shape == (28, 28) and recovered.dtype == np.uint8
        correlation = np.corrcoef(recovered.ravel().astype(float), digit.ravel().astype(float))[0, 1]
        assert correlation > 0.8
    assert not to_mnist(np.full((50, 50), 255.0)).any()  # a blank page stays blank


def test_predict_command_reads_image_files(project, sample_prepared, tmp_path, monkeypatch, capsys):
    digits, labels = sample_test_digits(sample_prepared)
    files = []
    for i, digit in enumerate(digits):
        photo = as_photo(digit, scale=3 + i % 6, offset=(20 * (i % 4), 40 * (i % 5)), dark_on_light=i % 2 == 0)
        path = tmp_path / f"digit{i}.{'png' if i % 3 else 'jpg'}"
        Image.fromarray(photo).save(path)
        files.append(str(path))
    monkeypatch.chdir(project)
    assert cli_main(["predict", *files]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    read = [int(line.split(": ")[1].split()[0]) for line in lines]
    assert sum(r == label for r, label in zip(read, labels, strict=True)) >= 9


def test_predict_and_serve_say_what_to_run_first(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert cli_main(["serve"]) == 1
    assert "run `dvc repro` first" in capsys.readouterr().err


def test_api_reads_png_and_pixels(client, sample_prepared):
    digits, labels = sample_test_digits(sample_prepared)
    response = client.post("/api/predict", content=png_bytes(255 - digits[0]), headers={"Content-Type": "image/png"})
    assert response.status_code == 200
    body = response.json()
    assert body["digit"] == labels[0] and len(body["ensemble"]) == 10 and set(body["architectures"]) == {"lenet"}
    assert np.asarray(body["input"]).shape == (28, 28)
    response = client.post("/api/predict", json={"pixels": digits[1].ravel().tolist()})
    assert response.status_code == 200 and response.json()["digit"] == labels[1]
    assert response.json()["input"] == digits[1].tolist()  # pixels are used as given
    nested = client.post("/api/predict", json={"pixels": digits[2].tolist()})
    assert nested.json()["digit"] == labels[2]


BAD_REQUESTS = {
    "not an image": (
        {"content": b"hello, not a PNG", "headers": {"Content-Type": "image/png"}},
        400,
        "not a readable image",
    ),
    "too many pixels": ({"json": {"pixels": [0] * 785}}, 422, "expected 784 pixels"),
    "too few pixels": ({"json": {"pixels": [[0] * 28] * 27}}, 422, "expected 784 pixels"),
    "pixel above 255": ({"json": {"pixels": [0] * 783 + [256]}}, 422, "0..255"),
    "negative pixel": ({"json": {"pixels": [-1] + [0] * 783}}, 422, "0..255"),
    "text pixels": ({"json": {"pixels": ["a"] * 784}}, 400, "pixels"),
    "no pixels key": ({"json": {"image": [0] * 784}}, 400, "pixels"),
    "broken json": ({"content": b"{", "headers": {"Content-Type": "application/json"}}, 400, "pixels"),
    "body too large": (
        {"content": b"0" * (MAX_BODY_BYTES + 1), "headers": {"Content-Type": "image/png"}},
        413,
        "limit",
    ),
    "wrong content type": ({"content": b"1,2,3", "headers": {"Content-Type": "text/csv"}}, 415, "text/csv"),
}


@pytest.mark.parametrize("case", BAD_REQUESTS, ids=list(BAD_REQUESTS))
def test_api_refuses_bad_input_with_one_line_and_keeps_serving(client, case):
    request, status, reason = BAD_REQUESTS[case]
    response = client.post("/api/predict", **request)
    assert response.status_code == status
    detail = response.json()["detail"]
    assert reason in detail and "\n" not in detail
    assert client.post("/api/predict", json={"pixels": [0] * 784}).status_code == 200


def test_api_refuses_huge_images(client):
    huge = png_bytes(np.zeros((4100, 300), dtype=np.uint8))
    response = client.post("/api/predict", content=huge, headers={"Content-Type": "image/png"})
    assert response.status_code == 413 and "larger than 4096x4096" in response.json()["detail"]


def test_api_is_documented(client):
    spec = client.get("/openapi.json").json()
    body = spec["paths"]["/api/predict"]["post"]["requestBody"]["content"]
    assert {"image/png", "application/json"} <= set(body)
    assert client.get("/api/models").json()["architectures"] == [{"name": "lenet", "folds": 1, "weight": 1.0}]
    assert "<canvas" in client.get("/").text


def test_bounded_load_on_loopback(predictor):
    """200 requests from 8 concurrent clients against a real uvicorn server: none fails."""
    import httpx

    with running_server(predictor) as url:
        payload = {"pixels": [0] * 392 + [255] * 392}

        def work(_: int) -> int:
            with httpx.Client(base_url=url, timeout=30) as http:
                return sum(http.post("/api/predict", json=payload).status_code == 200 for _ in range(25))

        with ThreadPoolExecutor(8) as pool:
            assert sum(pool.map(work, range(8))) == 200


class running_server:
    """uvicorn on a free loopback port in a background thread."""

    def __init__(self, predictor: EnsemblePredictor):
        import uvicorn

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        config = uvicorn.Config(create_app(predictor), host="127.0.0.1", port=self.port, log_level="warning")
        self.server = uvicorn.Server(config)

    def __enter__(self) -> str:
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.time() + 20
        while not self.server.started and time.time() < deadline:
            time.sleep(0.05)
        return f"http://127.0.0.1:{self.port}"

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def strokes_of(digit: np.ndarray) -> list[list[float]]:
    """A digit as pen strokes: one horizontal stroke per run of ink in each pixel row, in canvas units 0..1."""
    strokes = []
    for row in range(28):
        ink = np.flatnonzero(digit[row] > 100)
        if not ink.size:
            continue
        runs = np.split(ink, np.flatnonzero(np.diff(ink) > 1) + 1)
        for run in runs:
            y = (row + 0.5) / 28
            strokes.append([(run[0] + 0.5) / 28, y, (run[-1] + 0.5) / 28, y])
    return strokes


def test_browser_draws_real_digits_and_the_page_reads_them(predictor, sample_prepared, tmp_path):
    chromium = shutil.which("chromium")
    if not chromium or not (BROWSER_MODULES / "playwright-core").exists():
        message = "needs Debian's chromium and tests/.browser/node_modules/playwright-core (.ci/run installs both)"
        if os.environ.get("REQUIRE_BROWSER"):
            pytest.fail(message)
        pytest.skip(message)
    digits, labels = sample_test_digits(sample_prepared)
    strokes_file = tmp_path / "strokes.json"
    strokes_file.write_text(json.dumps([strokes_of(d) for d in digits]))
    screenshot = REPO / "docs" / "serve.png" if os.environ.get("UPDATE_SCREENSHOTS") else tmp_path / "serve.png"
    screenshot.parent.mkdir(exist_ok=True)
    with running_server(predictor) as url:
        result = subprocess.run(
            [
                "node",
                str(REPO / "tests" / "browser" / "draw_digits.mjs"),
                url + "/",
                str(strokes_file),
                str(screenshot),
            ],
            capture_output=True,
            text=True,
            timeout=300,
            env={**os.environ, "BROWSER_MODULES": str(BROWSER_MODULES), "CHROMIUM": chromium},
        )
    assert result.returncode == 0, result.stderr[-3000:]
    outcome = json.loads(result.stdout.strip().splitlines()[-1])
    assert outcome["errors"] == []
    correct = sum(r == label for r, label in zip(outcome["read"], labels, strict=True))
    assert correct >= 9, f"read {outcome['read']}, truth {labels.tolist()}"
    assert screenshot.stat().st_size > 20_000

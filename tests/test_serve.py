"""predict and serve: MNIST-style preprocessing, the JSON API's answers and refusals, and the real page."""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient
from PIL import Image

from digit_recognizer.atomic import write_json
from digit_recognizer.cli import main as cli_main
from digit_recognizer.ensemble.combine import Combiner
from digit_recognizer.params import FitConfig
from digit_recognizer.serving.inference import EnsemblePredictor
from digit_recognizer.serving.preprocess import NoInk, to_mnist
from digit_recognizer.serving.server import LIMITS, Limits, create_app, uvicorn_config
from digit_recognizer.training.fold_run import train_fold

from .conftest import REPO
from .junk_pictures import flag_pictures, junk_corpus, real_photos

BROWSER_MODULES = REPO / "tests" / ".browser" / "node_modules"


@pytest.fixture(scope="module")
def project(sample_prepared, tmp_path_factory) -> Path:
    """A project folder holding what `dvc repro` would leave for serving: one trained LeNet and its combiner."""
    root = tmp_path_factory.mktemp("served")
    config = FitConfig(epochs=4, batch_size=64, optimizer="adam", lr=3e-3, rotate=10, zoom=0.1, shift=0.1)
    net = {"channels": [16, 32], "hidden": [120, 84]}
    train_fold("lenet", 0, net, config, sample_prepared, root / "data" / "train" / "lenet-0", 0, torch.device("cpu"))
    (root / "dvc.yaml").write_text("stages: {}\n")
    combiner = Combiner("mean", architectures=["lenet"]).fit(np.zeros((1, 1, 10)), np.zeros(1, dtype=int))
    saved = {**combiner.to_json(), "models": {"lenet": ["data/train/lenet-0/model.pt"]}}
    write_json(root / "data" / "ensemble" / "combiner.json", saved)
    return root


@pytest.fixture(scope="module")
def predictor(project) -> EnsemblePredictor:
    return EnsemblePredictor.load(project)


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
    with pytest.raises(NoInk, match="no ink found"):
        to_mnist(np.full((50, 50), 255.0))  # a blank page is refused, not read as some digit


def test_predict_command_reads_image_files(project, sample_prepared, tmp_path, monkeypatch, capsys):
    digits, labels = sample_test_digits(sample_prepared)
    files = []
    for i, digit in enumerate(digits):
        photo = as_photo(digit, scale=3 + i % 6, offset=(20 * (i % 4), 40 * (i % 5)), dark_on_light=i % 2 == 0)
        path = tmp_path / f"digit{i}.{'png' if i % 3 else 'jpg'}"
        Image.fromarray(photo).save(path)
        files.append(str(path))
    (project / "docs").mkdir(exist_ok=True)
    monkeypatch.chdir(project / "docs")  # a subfolder: the project is found above it, as git and dvc find theirs
    assert cli_main(["predict", *files]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    read = [int(line.split(": ")[1].split()[0]) for line in lines]
    assert sum(r == label for r, label in zip(read, labels, strict=True)) >= 9


def test_predict_and_serve_say_what_to_run_first(project, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert cli_main(["serve"]) == 1
    assert "is not inside the project (no dvc.yaml here or above)" in capsys.readouterr().err
    (tmp_path / "dvc.yaml").write_text("stages: {}\n")
    assert cli_main(["serve"]) == 1
    assert "run `dvc repro` first" in capsys.readouterr().err
    digit = tmp_path / "digit.png"
    Image.fromarray(np.full((28, 28), 255, dtype=np.uint8)).save(digit)
    assert cli_main(["predict", "--project", str(project), str(digit)]) == 1  # found through --project
    err = capsys.readouterr().err
    assert "dvc repro" not in err and "digit.png: no ink found" in err  # the ensemble loaded; a blank page is refused


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


def png_declaring(width: int, height: int) -> bytes:
    """A PNG header that declares a huge picture (a decompression bomb's first bytes) and no real data."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64))


def encoded(image: np.ndarray, format: str) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format=format)
    return buffer.getvalue()


def pixel_json(text: str) -> dict:
    return {"content": text.encode(), "headers": {"Content-Type": "application/json"}}


def image_request(data: bytes, content_type: str = "image/png") -> dict:
    return {"content": data, "headers": {"Content-Type": content_type}}


BLANK = np.full((200, 200), 255, dtype=np.uint8)
DIGIT = np.zeros((28, 28), dtype=np.uint8)
DIGIT[6:22, 13:15] = 255  # a one
BAD_REQUESTS = {
    "not an image": (image_request(b"hello, not a PNG"), 400, "not a PNG image"),
    "truncated PNG": (image_request(encoded(DIGIT, "PNG")[:60]), 400, "damaged or truncated PNG"),
    "TIFF sent as PNG": (image_request(encoded(DIGIT, "TIFF")), 400, "not a PNG image"),
    "ICO sent as PNG": (image_request(encoded(np.repeat(DIGIT, 2, 0), "ICO")), 400, "not a PNG image"),
    "JPEG sent as PNG": (image_request(encoded(DIGIT, "JPEG")), 400, "not a PNG image"),
    "decompression bomb": (image_request(png_declaring(30_000, 30_000)), 413, "too many pixels"),
    "over 4096 pixels wide": (image_request(png_declaring(5000, 10)), 413, "larger than 4096x4096"),
    "blank canvas": (image_request(encoded(BLANK, "PNG")), 422, "no ink found"),
    "all-black picture": (image_request(encoded(BLANK * 0, "PNG")), 422, "no ink found"),
    "blank pixels": ({"json": {"pixels": [0] * 784}}, 422, "no ink found"),
    "too many pixels": ({"json": {"pixels": [0] * 785}}, 422, "expected 784 pixels"),
    "too few pixels": ({"json": {"pixels": [[0] * 28] * 27}}, 422, "expected 784 pixels"),
    "ragged rows": ({"json": {"pixels": [[0] * 28] * 27 + [[0] * 27 + [[0]]]}}, 422, "numbers in 0..255"),
    "pixel above 255": ({"json": {"pixels": [0] * 783 + [256]}}, 422, "0..255"),
    "negative pixel": ({"json": {"pixels": [-1] + [0] * 783}}, 422, "0..255"),
    "huge integer pixel": (pixel_json('{"pixels": [1' + "0" * 400 + "" + ", 0" * 783 + "]}"), 422, "0..255"),
    "1e400 pixel": (pixel_json('{"pixels": [1e400' + ", 0" * 783 + "]}"), 422, "0..255"),
    "NaN pixel": (pixel_json('{"pixels": [NaN' + ", 0" * 783 + "]}"), 422, "0..255"),
    "text pixels": ({"json": {"pixels": ["9"] * 784}}, 422, "numbers in 0..255"),
    "boolean pixels": ({"json": {"pixels": [True] * 784}}, 422, "numbers in 0..255"),
    "100k-deep nesting": (pixel_json('{"pixels": ' + "[" * 100_000 + "]" * 100_000 + "}"), 400, "pixels"),
    "no pixels key": ({"json": {"image": [0] * 784}}, 400, "pixels"),
    "broken json": (pixel_json("{"), 400, "pixels"),
    "multipart without a file": ({"data": {"note": "hi"}, "files": {"x": ("", b"")}}, 400, "no file"),
    "multipart file as text": ({"data": {"file": "hi"}, "files": {"x": ("", b"")}}, 400, "not a file"),
    "body too large": (image_request(b"0" * (LIMITS.body_bytes + 1)), 413, "limit"),
    "wrong content type": ({"content": b"1,2,3", "headers": {"Content-Type": "text/csv"}}, 415, "text/csv"),
}


@pytest.mark.parametrize("case", BAD_REQUESTS, ids=list(BAD_REQUESTS))
def test_api_refuses_bad_input_with_one_line_and_keeps_serving(client, case):
    request, status, reason = BAD_REQUESTS[case]
    response = client.post("/api/predict", **request)
    assert response.status_code == status, response.text
    detail = response.json()["detail"]
    assert reason in detail and "\n" not in detail
    assert client.post("/api/predict", json={"pixels": DIGIT.tolist()}).status_code == 200


def test_api_reads_multipart_uploads_and_warns_about_0_to_1_pixels(client, sample_prepared):
    digits, labels = sample_test_digits(sample_prepared)
    upload = {"file": ("digit.png", png_bytes(255 - digits[0]), "image/png")}  # what `curl -F file=@...` sends
    response = client.post("/api/predict", files=upload)
    assert response.status_code == 200 and response.json()["digit"] == labels[0]
    assert response.json()["warnings"] == []
    scaled = (digits[1] / 255).ravel().tolist()  # the PyTorch habit: pixels in 0..1
    warnings = client.post("/api/predict", json={"pixels": scaled}).json()["warnings"]
    assert len(warnings) == 1 and "0..1" in warnings[0] and "0..255" in warnings[0]
    probabilities = client.post("/api/predict", json={"pixels": digits[1].tolist()}).json()["ensemble"]
    assert all(round(p, 4) == p for p in probabilities)  # rounded for people, as the API docs say


def test_predict_all_and_the_api_show_each_architecture_as_the_ensemble_combines_it(
    project, sample_prepared, tmp_path, capsys
):
    weighted = tmp_path / "weighted"
    shutil.copytree(project, weighted)
    saved_path = weighted / "data" / "ensemble" / "combiner.json"
    saved = json.loads(saved_path.read_text())
    saved.update(method="weighted", temperatures=[2.0], weights=[1.0])  # softened, as for an over-confident model
    write_json(saved_path, saved)
    digit = sample_prepared.test_images[0]
    Image.fromarray(255 - digit).save(tmp_path / "digit.png")
    assert cli_main(["predict", "--all", "--project", str(weighted), str(tmp_path / "digit.png")]) == 0
    line = capsys.readouterr().out.strip()
    ensemble = re.search(r"\.png: (\d) \(([\d.]+)%\)", line)
    lenet = re.search(r"  lenet (\d) \((\d+)% calibrated, weight 1\)", line)
    assert ensemble and lenet, line
    assert lenet[1] == ensemble[1] and abs(float(lenet[2]) - float(ensemble[2])) <= 0.5  # one model, weight 1
    body = TestClient(create_app(EnsemblePredictor.load(weighted))).post(
        "/api/predict", json={"pixels": digit.tolist()}
    )
    body = body.json()
    assert np.allclose(body["calibrated"]["lenet"], body["ensemble"], atol=2e-4)
    assert max(body["architectures"]["lenet"]) > max(body["ensemble"]) + 0.01  # raw, as before: sharper
    assert body["weights"] == {"lenet": 1.0} and body["ensemble_method"] == "weighted"


def test_only_the_file_field_gets_the_not_a_file_answer(predictor):
    app = create_app(predictor)

    @app.get("/twice")
    def twice(n: int) -> int:
        return 2 * n

    response = TestClient(app).get("/twice", params={"n": "x"})
    assert response.status_code == 422 and "file" not in response.text  # FastAPI's own answer


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


class SlowPredictor:
    """The real predictor, made to take `seconds` per request, as a big upload or a slow CPU would."""

    def __init__(self, predictor: EnsemblePredictor, seconds: float):
        self.inner, self.seconds = predictor, seconds
        self.models, self.combiner = predictor.models, predictor.combiner

    def predict(self, images):
        time.sleep(self.seconds)
        return self.inner.predict(images)


def test_slow_requests_neither_block_the_page_nor_pile_up(predictor):
    import httpx

    limits = Limits(workers=1, queued=1)
    with running_server(SlowPredictor(predictor, 1.5), limits) as url:
        payload = {"pixels": DIGIT.tolist()}

        def post(_: int) -> int:
            with httpx.Client(base_url=url, timeout=30) as http:
                return http.post("/api/predict", json=payload).status_code

        with ThreadPoolExecutor(4) as pool:
            statuses = pool.map(post, range(4))
            time.sleep(0.5)
            start = time.perf_counter()
            page = httpx.get(url + "/", timeout=5)  # served while the models are busy
            page_seconds = time.perf_counter() - start
            statuses = sorted(statuses)
    assert page.status_code == 200 and page_seconds < 1.0
    assert statuses == [200, 200, 503, 503]  # one predicting, one queued, the rest shed at once


def test_idle_connections_and_slow_bodies_are_cut_off(predictor):
    limits = Limits(idle_seconds=1, body_seconds=1)
    with running_server(predictor, limits) as url:
        port = int(url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=10) as silent:
            start = time.perf_counter()
            assert silent.recv(100) == b""  # closed by the server
            assert time.perf_counter() - start < 5
        with socket.create_connection(("127.0.0.1", port), timeout=10) as slow:
            slow.sendall(b"POST /api/predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n")
            slow.sendall(b'Content-Length: 5000\r\n\r\n{"pix')  # and then nothing more
            assert slow.recv(200).startswith(b"HTTP/1.1 408")
        with socket.create_connection(("127.0.0.1", port), timeout=10) as huge:
            huge.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nX-Padding: " + b"a" * limits.header_bytes)  # never ending
            assert huge.recv(200).startswith(b"HTTP/1.1 400")


class running_server:
    """uvicorn on a free loopback port in a background thread."""

    def __init__(self, predictor: EnsemblePredictor, limits: Limits = LIMITS):
        import uvicorn

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        app = create_app(predictor, limits)
        self.server = uvicorn.Server(uvicorn_config(app, "127.0.0.1", self.port, limits))

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


@pytest.mark.slow  # a browser
def test_browser_draws_real_digits_and_the_page_reads_them(predictor, sample_prepared, tmp_path):
    chromium = shutil.which("chromium")
    if not chromium or not (BROWSER_MODULES / "playwright-core").exists():
        message = "needs Debian's chromium and tests/.browser/node_modules/playwright-core (.ci/run installs both)"
        if os.environ.get("REQUIRE_BROWSER"):
            pytest.fail(message)
        pytest.skip(message)
    digits, labels = sample_test_digits(sample_prepared)
    block = [[0.3, y, 0.7, y] for y in np.linspace(0.3, 0.7, 15)]  # a filled square: no digit, the API warns
    strokes_file = tmp_path / "strokes.json"
    strokes_file.write_text(json.dumps([block] + [strokes_of(d) for d in digits]))
    # UPDATE_SCREENSHOTS=1 re-takes docs/serve-1200.png and docs/serve-390.png (a laptop's window, a phone's)
    prefix = (REPO / "docs" if os.environ.get("UPDATE_SCREENSHOTS") else tmp_path) / "serve"
    with running_server(predictor) as url:
        result = subprocess.run(
            [
                "node",
                str(REPO / "tests" / "browser" / "draw_digits.mjs"),
                url + "/",
                str(strokes_file),
                str(prefix),
            ],
            capture_output=True,
            text=True,
            timeout=300,
            env={**os.environ, "BROWSER_MODULES": str(BROWSER_MODULES), "CHROMIUM": chromium},
        )
    assert result.returncode == 0, result.stderr[-3000:]
    outcome = json.loads(result.stdout.strip().splitlines()[-1])
    assert outcome["errors"] == []
    assert "solid block" in outcome["warnings"][0]  # the page shows the API's warning beside its reading
    assert outcome["warnings"][1:] == [""] * len(digits)
    correct = sum(r == label for r, label in zip(outcome["read"][1:], labels, strict=True))
    assert correct >= 9, f"read {outcome['read'][1:]}, truth {labels.tolist()}"
    assert outcome["emptyHeadings"] == 0  # no "ensemble" heading before anything is drawn
    assert outcome["fits"] == {"1200": True, "390": True}  # no horizontal scrollbar on a laptop or a phone
    for width in (1200, 390):
        assert Path(f"{prefix}-{width}.png").stat().st_size > 20_000


@pytest.mark.slow  # a browser
def test_api_docs_page_renders_with_no_network(predictor):
    """Swagger UI's files come from the package (swagger-ui-bundle), not a CDN: /docs renders offline."""
    import httpx

    chromium = shutil.which("chromium")
    if not chromium:
        if os.environ.get("REQUIRE_BROWSER"):
            pytest.fail("needs Debian's chromium (.ci/run installs it)")
        pytest.skip("needs Debian's chromium (.ci/run installs it)")
    with running_server(predictor) as url:
        page = httpx.get(url + "/docs").text
        assert "/docs-static/swagger-ui-bundle.js" in page and "cdn." not in page
        assert httpx.get(url + "/docs-static/swagger-ui-bundle.js").status_code == 200
        dom = subprocess.run(
            [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
             "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1", "--virtual-time-budget=15000",
             "--dump-dom", url + "/docs"],
            capture_output=True, text=True, timeout=120,
        ).stdout  # fmt: skip
    assert "opblock" in dom and "/api/predict" in dom  # the operations were drawn from /openapi.json


def test_predict_reads_every_file_and_names_the_ones_it_cannot(project, predictor, sample_prepared, tmp_path, capsys):
    digits, labels = sample_test_digits(sample_prepared, 50)
    threes = [d for d, label in zip(digits, labels, strict=True) if label == 3]
    three = next(d for d in threes if predictor.predict(d[None]).ensemble[0].argmax() == 3)
    Image.fromarray(BLANK).save(tmp_path / "blank.png")
    Image.fromarray(as_photo(three, 5, (10, 10), True)).save(tmp_path / "three.png")
    (tmp_path / "notes.png").write_text("not a picture")
    names = ("blank.png", "missing.png", "three.png", "notes.png")
    assert cli_main(["predict", "--project", str(project), *(str(tmp_path / n) for n in names)]) == 1
    out, err = capsys.readouterr()
    assert out.splitlines()[0].startswith(f"{tmp_path / 'three.png'}: 3 (") and len(out.splitlines()) == 1
    blank, missing, notes = err.splitlines()
    assert blank == f"error: {tmp_path / 'blank.png'}: no ink found: the picture is blank (one grey level)"
    assert missing == f"error: {tmp_path / 'missing.png'}: cannot be read (No such file or directory)"
    assert notes.startswith(f"error: {tmp_path / 'notes.png'}: not a PNG")


ISSUE_JUNK = ("one grey pixel", "gaussian noise", "noisy gradient photo")


def test_the_issues_junk_is_flagged_by_predict_and_the_api(project, client, sample_prepared, tmp_path, capsys):
    corpus = junk_corpus()
    files = [tmp_path / f"{name.replace(' ', '-')}.png" for name in ISSUE_JUNK]
    for name, path in zip(ISSUE_JUNK, files, strict=True):
        Image.fromarray(corpus[name]).save(path)
    assert cli_main(["predict", "--project", str(project), *map(str, files)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3 and all("  [warning: " in line for line in lines)
    for name in ISSUE_JUNK:
        response = client.post("/api/predict", **image_request(png_bytes(corpus[name])))
        assert response.status_code == 200 and len(response.json()["warnings"]) == 1, name
    digits, _ = sample_test_digits(sample_prepared)
    for digit in digits:  # real digits: no warning, as a photo or as pixels
        assert client.post("/api/predict", **image_request(png_bytes(255 - digit))).json()["warnings"] == []
        assert client.post("/api/predict", json={"pixels": digit.tolist()}).json()["warnings"] == []


def test_junk_corpus_detection_and_false_alarms_on_real_digits(sample_prepared):
    """The figures in BENCHMARKS.md (benchmarks/ood.py prints them for all 5,000 sample digits)."""
    junk = junk_corpus()
    flags = dict(zip(junk, flag_pictures(list(junk.values())), strict=True))
    must = [n for n in junk if n.startswith(("one ", "gaussian", "light gaussian", "dark gaussian", "noisy"))]
    assert len(must) == 9 and all(flags[n] for n in must)
    assert flags["filled rectangle"] and flags["checkerboard"]
    assert sum(bool(f) for f in flags.values()) >= 11
    real = sample_prepared.train_images[:400]
    assert not any(flag_pictures(list(real))), "a real digit, as pixels, was flagged"
    assert not any(flag_pictures(real_photos(real))), "a photographed real digit was flagged"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve_command(project: Path, port: int) -> subprocess.Popen:
    """`digit-recognizer serve` in a process of its own, as a person starts it in a terminal."""
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    command = ["-m", "digit_recognizer.cli", "serve", "--project", str(project), "--port", str(port)]
    return subprocess.Popen(
        [sys.executable, *command], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )


def wait_until_listening(port: int, process: subprocess.Popen) -> None:
    deadline = time.time() + 60
    while time.time() < deadline and process.poll() is None:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise AssertionError(f"serve did not start: {process.communicate(timeout=10)}")


def test_one_ctrl_c_stops_serve_quietly(project):
    import httpx

    port = free_port()
    server = serve_command(project, port)
    try:
        wait_until_listening(port, server)
        assert httpx.post(f"http://127.0.0.1:{port}/api/predict", json={"pixels": DIGIT.tolist()}).status_code == 200
        server.send_signal(signal.SIGINT)  # what a terminal's Ctrl-C sends
        _, err = server.communicate(timeout=15)  # a generous bound: it takes about a second
    finally:
        server.kill()
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    assert server.returncode == -signal.SIGINT, (server.returncode, err)  # ended by the signal, as SIGTERM ends it


def test_serve_on_a_busy_port_says_so_in_one_line(project):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        server = serve_command(project, port)
        out, err = server.communicate(timeout=60)
    assert server.returncode == 1
    assert "serving on" not in out
    assert err.strip().splitlines() == [f"error: port {port} on 127.0.0.1 is taken: choose another with --port"]

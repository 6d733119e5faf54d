"""scores: a timing stands only beside the predictions it was measured for."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

from digit_recognizer.report.scores import NOT_TIMED, NOT_TIMED_NOTE, format_scores, score_rows
from digit_recognizer.training.timings import record_timing

SCORES = {"cv_accuracy": 0.98, "cv_accuracy_se": 0.001, "cv_accuracy_std": 0.002, "cv_log_loss": 0.07}


def make_project(root: Path) -> None:
    (root / "data").mkdir()
    (root / "data" / "metrics.json").write_text(json.dumps({"lenet": {**SCORES, "weight": 1.0}, "ensemble": SCORES}))


def train(root: Path, epochs: int, seconds: float) -> bytes:
    """What `dvc repro` does for one fold: new predictions, then the stage records how long they took."""
    run = root / "data" / "train" / "lenet-0"
    run.mkdir(parents=True, exist_ok=True)
    np.savez(run / "predictions.npz", oof=np.full((3, 10), epochs, dtype=np.float32))
    timing = {"train_seconds": seconds, "images_per_second": 1000 / seconds, "device": "cpu", "threads": 2}
    record_timing(root / "data" / "timings" / "lenet-0.json", timing, run)
    return (run / "predictions.npz").read_bytes()


def restore(root: Path, predictions: bytes) -> None:
    """What `dvc checkout` / `dvc exp apply` does: the fold's outputs come back from the cache, nothing trains."""
    (root / "data" / "train" / "lenet-0" / "predictions.npz").write_bytes(predictions)


def lenet_timing(root: Path) -> tuple[str, str]:
    (row,) = [r for r in score_rows(root, ["lenet"], [0]) if r[0] == "lenet"]
    return row[-2], row[-1]


def test_going_back_to_a_cached_run_shows_its_own_timing_not_the_last_experiments(tmp_path):
    make_project(tmp_path)
    long_run = train(tmp_path, epochs=24, seconds=480)
    assert lenet_timing(tmp_path) == ("480", "2")
    train(tmp_path, epochs=2, seconds=40)  # the 2-epoch experiment
    assert lenet_timing(tmp_path) == ("40", "25")
    restore(tmp_path, long_run)  # back to the 24-epoch lenet, from the cache
    assert lenet_timing(tmp_path) == ("480", "2")

    restore(tmp_path, b"predictions made on another machine")
    assert lenet_timing(tmp_path) == (NOT_TIMED, NOT_TIMED)
    lines = format_scores(score_rows(tmp_path, ["lenet"], [0])).splitlines()
    assert lines[-1] == NOT_TIMED_NOTE and lines[1].split()[-2:] == [NOT_TIMED, NOT_TIMED]

    shutil.rmtree(tmp_path / "data" / "timings")  # a teammate's clone, restored from the run-cache
    restore(tmp_path, long_run)
    assert lenet_timing(tmp_path) == (NOT_TIMED, NOT_TIMED)


def test_the_timing_file_keeps_the_latest_runs_fields(tmp_path):
    make_project(tmp_path)
    train(tmp_path, epochs=24, seconds=480)
    train(tmp_path, epochs=2, seconds=40)
    saved = json.loads((tmp_path / "data" / "timings" / "lenet-0.json").read_text())
    assert saved["train_seconds"] == 40 and len(saved["predictions_md5"]) == 32 and len(saved["runs"]) == 2


def test_no_note_when_every_row_is_timed():
    rows = [("lenet", "98%", "", "", "", "", "480", "2"), ("ensemble", "99%", "", "", "", "", "", "")]
    assert NOT_TIMED_NOTE not in format_scores(rows) and NOT_TIMED_NOTE not in format_scores(rows, markdown=True)

"""`digit-recognizer repro` on a one-stage pipeline that trains nothing, and the timings it keeps."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from digit_recognizer import paths
from digit_recognizer.parallel.progress import write_timings
from digit_recognizer.parallel.run import repro_in_parallel
from digit_recognizer.parallel.task import read_timings
from digit_recognizer.training.timings import record_timing, timing_of

from .conftest import run


def train(root: Path, seed: int, seconds: float) -> bytes:
    """What the train stage does in `root`: new predictions for mlp-0, and the timing of the run that made them."""
    run_dir = root / paths.train_run_dir("mlp", 0)
    run_dir.mkdir(parents=True, exist_ok=True)
    np.savez(run_dir / "predictions.npz", oof=np.full((3, 10), seed, dtype=np.float32))
    timing = {"train_seconds": seconds, "images_per_second": 1000 / seconds, "device": "cpu", "threads": 1}
    record_timing(root / paths.timing_file("mlp", 0), timing, run_dir)
    return (run_dir / "predictions.npz").read_bytes()


def test_a_fold_trained_in_a_checkout_joins_the_workspaces_timings_without_losing_earlier_runs(tmp_path):
    workspace, checkout = tmp_path / "workspace", tmp_path / "checkout"
    baseline = train(workspace, seed=1, seconds=480)  # `dvc repro` here, then `dvc exp save -n baseline`
    experiment = train(checkout, seed=2, seconds=40)  # `digit-recognizer repro` retrains mlp-0 in a checkout
    write_timings(workspace, read_timings(checkout))

    (workspace / paths.train_run_dir("mlp", 0) / "predictions.npz").write_bytes(experiment)  # the final repro
    assert timing_of(workspace, "mlp", 0)["train_seconds"] == 40
    (workspace / paths.train_run_dir("mlp", 0) / "predictions.npz").write_bytes(baseline)  # `dvc exp apply baseline`
    assert timing_of(workspace, "mlp", 0)["train_seconds"] == 480


def test_a_run_that_succeeds_returns_exit_status_0(tmp_path):
    (tmp_path / "dvc.yaml").write_text("stages:\n  hello:\n    cmd: echo hello > hello.txt\n    outs: [hello.txt]\n")
    run("git", "init", "-q", cwd=tmp_path)
    run("dvc", "init", "-q", cwd=tmp_path)
    run("git", "add", "-A", cwd=tmp_path)
    run("git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "one stage", cwd=tmp_path)
    out = io.StringIO()
    assert repro_in_parallel(tmp_path, jobs=1, out=out) == 0, out.getvalue()
    assert (tmp_path / "hello.txt").read_text() == "hello\n"
    assert "done     hello" in out.getvalue() and "the workspace is up to date" in out.getvalue()

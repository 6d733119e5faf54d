"""The DVC pipeline end to end in a temporary git repo on a tiny configuration, and the experiment workflow."""

from __future__ import annotations

import json
import shutil
import subprocess

import numpy as np
import pytest
import yaml

from digit_recognizer.prepare import read_submission

from .conftest import REPO

pytestmark = pytest.mark.slow

TINY_MODELS = {
    "lstm": {"net": {"hidden": 24}, "epochs": 1, "lr": 0.01},
    "lenet": {"net": {"channels": [4, 8], "hidden": [32, 16]}, "epochs": 1, "lr": 0.003},
    "cnn3": {"net": {"channels": [4, 8, 8], "hidden": 16}, "epochs": 1, "lr": 0.003},
    "mlp": {"net": {"hidden": [32, 32, 16, 16]}, "epochs": 1, "lr": 0.003},
    "cnn": {"net": {"channels": [4, 8], "dense": 16, "dropout": 0.1}, "epochs": 1, "lr": 0.003},
}


def run(*args: str, cwd) -> str:
    result = subprocess.run(args, cwd=cwd, capture_output=True, text=True)
    assert result.returncode == 0, f"{' '.join(args)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result.stdout


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """A copy of this repo's pipeline with tiny params, run once with `dvc repro` and committed."""
    root = tmp_path_factory.mktemp("project")
    for name in ("dvc.yaml", "params.yaml", ".dvcignore"):
        shutil.copy(REPO / name, root / name)
    for folder in ("stages", "src"):
        shutil.copytree(REPO / folder, root / folder, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["data"]["source"] = "sample"
    params["cv"].update(folds=2, fold_ids=[0, 1])
    for name, tiny in TINY_MODELS.items():
        params["models"][name] = {**params["models"][name], **tiny, "batch_size": 64, "patience": 0}
    params["train"]["num_threads"] = 2
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    run("git", "init", "-q", cwd=root)
    run("dvc", "init", "-q", cwd=root)
    run("git", "add", "-A", cwd=root)
    run("git", "commit", "-qm", "tiny pipeline", cwd=root)
    run("dvc", "repro", cwd=root)
    run("git", "add", "-A", cwd=root)
    run("git", "commit", "-qm", "tiny pipeline: results", cwd=root)
    return root


def test_repro_writes_a_valid_submission_and_metrics(project):
    labels = read_submission(project / "submissions" / "submission.csv", n_rows=1000)
    answers = read_submission(project / "data" / "raw" / "answers.csv", n_rows=1000)
    metrics = json.loads((project / "data" / "metrics.json").read_text())
    assert set(metrics) == {"ensemble", *TINY_MODELS}
    for scores in metrics.values():
        assert set(scores["fold_accuracy"]) == {"0", "1"}
        assert 0.1 < scores["cv_accuracy"] <= 1
    # the sample's answer key scores the submission as Kaggle's leaderboard would
    assert metrics["ensemble"]["sample_leaderboard_accuracy"] == pytest.approx((labels == answers).mean())
    weights = [metrics[name]["weight"] for name in TINY_MODELS]
    assert sum(weights) == pytest.approx(1, abs=1e-3) and min(weights) >= 0
    ensemble_test = np.load(project / "data" / "ensemble" / "test.npy")
    np.testing.assert_array_equal(ensemble_test.argmax(1), labels)
    for name in TINY_MODELS:
        for fold in (0, 1):
            assert (project / "data" / "train" / f"{name}-{fold}" / "model.pt").exists()
    assert "up to date" in run("dvc", "status", cwd=project)


def test_changing_one_architecture_reruns_only_its_folds(project):
    params_path = project / "params.yaml"
    original = params_path.read_text()
    params = yaml.safe_load(original)
    params["models"]["lenet"]["lr"] = 0.002
    params_path.write_text(yaml.safe_dump(params, sort_keys=False))
    try:
        status = json.loads(run("dvc", "status", "--json", cwd=project))
    finally:
        params_path.write_text(original)
    # only lenet's folds are stale; the ensemble follows once their outputs actually change
    assert sorted(status) == ["train@lenet-0", "train@lenet-1"]


def test_experiment_shows_which_architecture_moved(project):
    run("dvc", "exp", "run", "-S", "models.lenet.epochs=2", cwd=project)
    params_diff = json.loads(run("dvc", "params", "diff", "--json", cwd=project))
    assert list(params_diff["params.yaml"]) == ["models.lenet.epochs"]
    assert params_diff["params.yaml"]["models.lenet.epochs"]["new"] == 2
    metrics_diff = json.loads(run("dvc", "metrics", "diff", "--json", cwd=project))["data/metrics.json"]
    assert "lenet.cv_accuracy" in metrics_diff and "ensemble.cv_accuracy" in metrics_diff
    assert not any(key.startswith(("mlp.", "cnn.", "cnn3.", "lstm.")) for key in metrics_diff if "weight" not in key)
    shown = run(
        "dvc", "exp", "show", "--csv", "--keep", "models.lenet.epochs", "--keep", "lenet.cv_accuracy", cwd=project
    )
    assert "models.lenet.epochs" in shown and "lenet.cv_accuracy" in shown

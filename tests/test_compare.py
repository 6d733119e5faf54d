"""compare from a fresh clone: the committed dvc.lock names another machine's outputs, and the error says what
to run; the loop it names (repro, `dvc exp save -n baseline`, an experiment) then compares. A stand-in
pipeline writes the files compare reads in a second, with bytes that differ on every run as on another CPU."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

STAND_IN = """
import os
from pathlib import Path

import numpy as np
import yaml

params = yaml.safe_load(Path("params.yaml").read_text())
rng = np.random.default_rng(0)
labels = rng.integers(0, 10, 400)
folds = np.arange(400) % 2
noise = np.random.default_rng()  # unseeded: each run's bytes differ, as another machine's would
for folder in ("data/prepared", "data/train", "data/ensemble"):
    os.makedirs(folder, exist_ok=True)
np.save("data/prepared/train_labels.npy", labels)
np.save("data/prepared/folds.npy", folds)
for arch in params["architectures"]:
    right = rng.random(400) < params["quality"]
    guess = np.where(right, labels, (labels + 1) % 10)
    probabilities = np.eye(10)[guess] * 0.9 + 0.01 + noise.random((400, 10)) * 1e-6
    for fold in (0, 1):
        os.makedirs(f"data/train/{arch}-{fold}", exist_ok=True)
        index = np.flatnonzero(folds == fold)
        np.savez(f"data/train/{arch}-{fold}/predictions.npz", oof_index=index, oof=probabilities[index], test=probabilities[:5])
np.save("data/ensemble/oof.npy", probabilities)
"""


def run(*args: str, cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(args, cwd=cwd, capture_output=True, text=True)
    if check:
        assert result.returncode == 0, f"{' '.join(args)}:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}"
    return result


def dvc(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return run(sys.executable, "-m", "dvc", *args, cwd=cwd)


def compare(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return run(sys.executable, "-m", "digit_recognizer.cli", "compare", *args, cwd=cwd, check=False)


@pytest.fixture(scope="module")
def elsewhere(tmp_path_factory) -> Path:
    """The project as another machine committed it: code, params and a dvc.lock whose outputs stayed there."""
    root = tmp_path_factory.mktemp("elsewhere")
    (root / "stand_in.py").write_text(STAND_IN)
    (root / "params.yaml").write_text("architectures: [lenet, cnn]\nquality: 0.8\n")
    (root / "dvc.yaml").write_text(
        "stages:\n  run:\n"
        f"    cmd: {sys.executable} stand_in.py\n"
        "    deps: [stand_in.py]\n    params: [architectures, quality]\n"
        "    outs: [data/prepared, data/train, data/ensemble]\n"
    )
    run("git", "init", "-q", cwd=root)
    run("git", "config", "user.email", "t@example.com", cwd=root)
    run("git", "config", "user.name", "t", cwd=root)
    dvc("init", "-q", cwd=root)
    dvc("repro", "-q", cwd=root)
    run("git", "add", "-A", cwd=root)
    run("git", "commit", "-qm", "results made elsewhere", cwd=root)
    return root


def test_a_fresh_clone_is_told_how_to_make_a_baseline_and_that_loop_compares(elsewhere, tmp_path):
    clone = tmp_path / "clone"
    run("git", "clone", "-q", str(elsewhere), str(clone), cwd=tmp_path)
    for name, value in (("user.email", "t@example.com"), ("user.name", "t")):
        run("git", "config", name, value, cwd=clone)
    dvc("repro", "-q", cwd=clone)  # this machine's own run: other bytes than the committed dvc.lock names
    for args in ([], ["HEAD", "workspace"]):
        result = compare(*args, cwd=clone)
        assert result.returncode == 1 and result.stderr.count("\n") == 1, result.stderr
        error = result.stderr
        assert error.startswith("error: HEAD: data/") and "is not in this machine's DVC cache" in error
        assert "`dvc exp save -n baseline`" in error and "`digit-recognizer compare baseline <experiment>`" in error
        assert "Traceback" not in error and "Error" not in error  # no exception class names

    dvc("exp", "save", "-n", "baseline", cwd=clone)
    dvc("exp", "run", "-q", "-n", "better", "-S", "quality=0.95", cwd=clone)
    by_default = compare(cwd=clone)  # the saved baseline against the workspace, which holds `better` now
    assert by_default.returncode == 0, by_default.stderr
    assert by_default.stdout.startswith("A = baseline (") and "B = workspace:" in by_default.stdout
    result = compare("baseline", "better", cwd=clone)
    assert result.returncode == 0, result.stderr
    first = result.stdout.splitlines()[0]
    assert first.startswith("A = baseline (") and "B = better (" in first  # which runs were compared
    assert "B better" in result.stdout

    # --project: from outside the project, and from a subfolder of it
    elsewhere_cwd = tmp_path / "outside"
    elsewhere_cwd.mkdir()
    assert compare("--project", str(clone), "baseline", "better", cwd=elsewhere_cwd).stdout == result.stdout
    assert compare("--project", str(clone / "data"), "baseline", "better", cwd=elsewhere_cwd).returncode == 0
    outside = compare("--project", str(elsewhere_cwd), cwd=tmp_path)
    assert outside.returncode == 1 and "pass --project" in outside.stderr


def test_a_workspace_that_never_ran_says_run_dvc_repro(elsewhere, tmp_path):
    clone = tmp_path / "clone"
    run("git", "clone", "-q", str(elsewhere), str(clone), cwd=tmp_path)
    result = compare("workspace", "workspace", cwd=clone)
    assert result.returncode == 1
    assert result.stderr.startswith("error: workspace: data/") and "run `dvc repro` first" in result.stderr

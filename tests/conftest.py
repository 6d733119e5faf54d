"""Shared fixtures: real digits from the embedded sample, written once per test session."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import yaml

from digit_recognizer.data.prepare import prepare
from digit_recognizer.data.prepared import Prepared, load_prepared
from digit_recognizer.data.sample_data import write_sample_competition

REPO = Path(__file__).resolve().parents[1]
SHARED_MINI = REPO.parent / "shared" / "data" / "digit-recognizer-mini.zip"

# oneDNN's and ATen's AVX2 kernels, as on a CPU without native bfloat16 (most laptops): set for a subprocess, it
# makes oneDNN report no native bfloat16 on any x86 host, and changes nothing on a host that has none.
AVX2_ONLY = {"ONEDNN_MAX_CPU_ISA": "AVX2", "ATEN_CPU_CAPABILITY": "avx2"}

# Each architecture's network at a size that trains in seconds on 2 cores (the `net` kwargs of build_model).
TINY_NETS = {
    "lstm": {"hidden": 32},
    "lenet": {"channels": [4, 8], "hidden": [32, 16]},
    "cnn3": {"channels": [8, 8, 16], "hidden": 32},
    "mlp": {"hidden": [64, 32, 32, 16]},
    "cnn": {"channels": [8, 16], "dense": 32, "dropout": 0.1},
}


# The pipeline's params.yaml `models` sections at a size whose whole `dvc repro` takes about a minute.
TINY_MODELS = {
    "lstm": {"net": {"hidden": 24}, "epochs": 1, "lr": 0.01},
    "lenet": {"net": {"channels": [4, 8], "hidden": [32, 16]}, "epochs": 1, "lr": 0.003},
    "cnn3": {"net": {"channels": [4, 8, 8], "hidden": 16, "deskew": True}, "epochs": 1, "lr": 0.003},
    "mlp": {"net": {"hidden": [32, 32, 16, 16]}, "epochs": 1, "lr": 0.003},
    "cnn": {
        "net": {"channels": [4, 8], "dense": 16, "dropout": 0.1},
        "epochs": 2,
        "lr": 0.003,
        "val_fraction": 0.2,
        "patience": 1,
        "restore_best": True,  # the inner validation split, end to end
    },
}


def run(*args: str, cwd) -> str:
    result = subprocess.run(args, cwd=cwd, capture_output=True, text=True)
    assert result.returncode == 0, f"{' '.join(args)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result.stdout


def make_tiny_project(root: Path, architectures: list[str] | None = None, num_threads: int = 2) -> Path:
    """A copy of this repo's pipeline in a new git repo at `root`, with tiny params and 2 folds, committed
    (not run). architectures: the `architectures` list and the pseudo-label teachers (default: all five)."""
    for name in ("dvc.yaml", "params.yaml", ".dvcignore"):
        shutil.copy(REPO / name, root / name)
    shutil.copytree(REPO / ".dvc" / "plots", root / "plots-templates")
    for folder in ("stages", "src"):
        shutil.copytree(REPO / folder, root / folder, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    for skeleton in ("data/pseudo/.gitignore", "submissions/.gitkeep"):  # folders a clone has before any run
        (root / skeleton).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO / skeleton, root / skeleton)
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["data"]["source"] = "sample"
    params["cv"].update(folds=2, fold_ids=[0, 1])
    for name, tiny in TINY_MODELS.items():
        params["models"][name] = {**params["models"][name], **tiny, "batch_size": 64}
    if architectures is not None:
        params["architectures"] = list(architectures)
        params["pseudo_label"]["teachers"] = list(architectures)
    params["train"]["num_threads"] = num_threads
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    run("git", "init", "-q", cwd=root)
    run("dvc", "init", "-q", cwd=root)
    shutil.copytree(root / "plots-templates", root / ".dvc" / "plots")
    shutil.copy(REPO / ".dvc" / "config", root / ".dvc" / "config")  # the offline plots page template
    shutil.rmtree(root / "plots-templates")
    run("git", "add", "-A", cwd=root)
    run("git", "commit", "-qm", "tiny pipeline", cwd=root)
    return root


@pytest.fixture(scope="session")
def sample_raw(tmp_path_factory) -> Path:
    """The embedded sample competition (4,000 train + 1,000 test real MNIST digits) as Kaggle CSVs."""
    raw = tmp_path_factory.mktemp("raw")
    write_sample_competition(raw, test_rows=1000, seed=0)
    return raw


@pytest.fixture(scope="session")
def sample_prepared(sample_raw, tmp_path_factory) -> Prepared:
    out = tmp_path_factory.mktemp("prepared") / "prepared"
    prepare(sample_raw, out, n_folds=5, seed=42)
    return load_prepared(out)


@pytest.fixture
def raw_copy(sample_raw, tmp_path) -> Path:
    """A private copy of the sample's CSVs that a test may damage."""
    dest = tmp_path / "raw"
    shutil.copytree(sample_raw, dest)
    return dest


@pytest.fixture
def kaggle_env(tmp_path, monkeypatch) -> Path:
    """No real Kaggle credentials or config leak in; returns the (empty) config dir."""
    config = tmp_path / "kaggle-config"
    config.mkdir()
    for name in ("KAGGLE_USERNAME", "KAGGLE_KEY", "KAGGLE_API_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(config))
    return config


def subset(data: Prepared, rows: np.ndarray) -> Prepared:
    """A smaller Prepared with the given training rows (folds kept)."""
    return Prepared(
        data.train_images[rows], data.train_labels[rows], data.test_images, data.folds[rows], data.test_labels
    )

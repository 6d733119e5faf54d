"""How long each fold took to train, kept beside DVC's outputs (data/timings/<model>-<fold>.json, out of every
hash) and tied to the predictions it was measured for: each record carries the md5 of the predictions.npz its
run wrote, so a fold restored from DVC's cache (`dvc checkout`, `dvc exp apply`, the run-cache) is shown with
its own earlier time if this machine trained it, and with none otherwise."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from digit_recognizer import paths
from digit_recognizer.atomic import write_json

TIMINGS_KEPT = 50  # earlier runs' timings kept per fold, for going back to them


def predictions_fingerprint(run_dir: Path) -> str | None:
    """The md5 of a fold run's predictions.npz (None if it has none)."""
    path = Path(run_dir) / "predictions.npz"
    return hashlib.md5(path.read_bytes()).hexdigest() if path.is_file() else None


def record_timing(path: Path, timing: dict[str, Any], run_dir: Path) -> None:
    """Write a fold's timing (data/timings/<model>-<fold>.json) with the fingerprint of the predictions it made.

    The file holds the latest run's fields, plus `runs`: every kept run's timing by fingerprint.
    """
    merge_timings(path, {predictions_fingerprint(run_dir): timing})


def merge_timings(path: Path, runs: dict[str | None, dict[str, Any]]) -> None:
    """Add runs' timings (by fingerprint, oldest first) to a fold's timing file, the last of them as the latest
    run; the file's earlier runs stay. How another copy of the project's records join this one's."""
    if not runs:
        return
    earlier = {key: value for key, value in _read_json(path).get("runs", {}).items() if key not in runs}
    kept = dict(list({**earlier, **runs}.items())[-TIMINGS_KEPT:])
    fingerprint, timing = list(runs.items())[-1]
    write_json(path, {**timing, "predictions_md5": fingerprint, "runs": kept})


def timing_of(root: Path, model: str, fold: int) -> dict[str, Any] | None:
    """The timing of the run that made the fold's current predictions, if it trained on this machine."""
    fingerprint = predictions_fingerprint(root / paths.train_run_dir(model, fold))
    return _read_json(root / paths.timing_file(model, fold)).get("runs", {}).get(fingerprint)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        saved = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return saved if isinstance(saved, dict) else {}

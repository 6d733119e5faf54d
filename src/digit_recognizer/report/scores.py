"""`digit-recognizer scores`: the last run's CV results as one short table (the terminal's or Markdown).

Reads data/metrics.json and, for training times, data/timings/ (written each time a fold trains here).
A timing is shown only beside the predictions it was measured for: each records the fingerprint of the
predictions.npz its run wrote, so a fold restored from DVC's cache (`dvc checkout`, `dvc exp apply`, the
run-cache) shows its own earlier time if this machine trained it, else a mark.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from digit_recognizer import paths
from digit_recognizer.errors import UserError
from digit_recognizer.training.timings import timing_of

COLUMNS = ("", "CV accuracy", "± SE", "std/folds", "log-loss", "weight", "train s", "img/s")
NOT_TIMED = "—"
NOT_TIMED_NOTE = (
    f"{NOT_TIMED}: no training time is known for these predictions (restored from DVC's cache, or trained elsewhere)"
)


def score_rows(root: Path, architectures: list[str], folds: list[int]) -> list[tuple[str, ...]]:
    metrics_path = root / paths.METRICS
    if not metrics_path.exists():
        raise UserError(f"{metrics_path} is missing: run `dvc repro` first")
    metrics = json.loads(metrics_path.read_text())
    rows = []
    for name in [*architectures, "ensemble"]:
        m = metrics[name]
        seconds = rate = ""
        if name != "ensemble":
            seconds, rate = _timing_cells([timing_of(root, name, fold) for fold in folds])
        weight = "" if m.get("weight") is None else f"{m['weight']:.3f}"
        rows.append(
            (
                name,
                f"{m['cv_accuracy']:.3%}",
                f"{m['cv_accuracy_se']:.3%}",
                f"{m['cv_accuracy_std']:.3%}",
                f"{m['cv_log_loss']:.4f}",
                weight,
                seconds,
                rate,
            )
        )
    return rows


def _timing_cells(runs: list[dict[str, Any] | None]) -> tuple[str, str]:
    """Total seconds and mean images/s over the folds, or marks where a fold's predictions were not timed."""
    if not all(runs):
        return NOT_TIMED, NOT_TIMED
    seconds = sum(r["train_seconds"] for r in runs)
    return f"{seconds:,.0f}", f"{sum(r['images_per_second'] for r in runs) / len(runs):,.0f}"


def format_scores(rows: list[tuple[str, ...]], markdown: bool = False) -> str:
    note = [NOT_TIMED_NOTE] if any(NOT_TIMED in row for row in rows) else []
    if markdown:
        lines = ["| " + " | ".join(COLUMNS) + " |", "| --- |" + " ---: |" * (len(COLUMNS) - 1)]
        lines += ["| " + " | ".join(row) + " |" for row in rows]
        return "\n".join([*lines, "", *note] if note else lines)
    widths = [max(len(str(r[i])) for r in [COLUMNS, *rows]) for i in range(len(COLUMNS))]
    table = [
        "  ".join(
            cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        )
        for row in [COLUMNS, *rows]
    ]
    return "\n".join(table + note)


def print_scores(project: Path | None, markdown: bool) -> None:
    """`digit-recognizer scores`: the table of the project at `project` (default: around the current folder)."""
    from digit_recognizer.params import load_params

    root = project or paths.find_project_root()
    params = load_params(root / "params.yaml")
    print(format_scores(score_rows(root, params.ensemble_members, params.cv.fold_ids), markdown))

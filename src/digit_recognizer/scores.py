"""`digit-recognizer scores`: the last run's CV results as one short table (the terminal's or Markdown).

Reads data/metrics.json and, for training times, data/timings/ (written each time a fold trains; a fold
restored from DVC's run-cache has none).
"""

from __future__ import annotations

import json
from pathlib import Path

from digit_recognizer import paths
from digit_recognizer.errors import UserError

COLUMNS = ("", "CV accuracy", "± SE", "std/folds", "log-loss", "weight", "train s", "img/s")


def score_rows(root: Path, architectures: list[str], folds: list[int]) -> list[tuple[str, ...]]:
    metrics_path = root / paths.METRICS
    if not metrics_path.exists():
        raise UserError(f"{metrics_path} is missing: run `dvc repro` first")
    metrics = json.loads(metrics_path.read_text())
    rows = []
    for name in [*architectures, "ensemble"]:
        m = metrics[name]
        seconds = rate = ""
        timings = [root / paths.timing_file(name, fold) for fold in folds]
        if name != "ensemble" and all(t.exists() for t in timings):
            runs = [json.loads(t.read_text()) for t in timings]
            seconds = f"{sum(r['train_seconds'] for r in runs):,.0f}"
            rate = f"{sum(r['images_per_second'] for r in runs) / len(runs):,.0f}"
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


def format_scores(rows: list[tuple[str, ...]], markdown: bool = False) -> str:
    if markdown:
        lines = ["| " + " | ".join(COLUMNS) + " |", "| --- |" + " ---: |" * (len(COLUMNS) - 1)]
        lines += ["| " + " | ".join(row) + " |" for row in rows]
        return "\n".join(lines)
    widths = [max(len(str(r[i])) for r in [COLUMNS, *rows]) for i in range(len(COLUMNS))]
    return "\n".join(
        "  ".join(
            cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        )
        for row in [COLUMNS, *rows]
    )

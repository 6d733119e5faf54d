"""`digit-recognizer scores`: the last run's CV results as one short table (the terminal's or Markdown), then the
scores side by side: CV accuracy, the sample leaderboard (the embedded sample's withheld answers) where the data
has one, and Kaggle's public score of the workspace's submissions/submission.csv where it was submitted.

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
from digit_recognizer.kaggle.record import file_md5, load_records, record_for_md5
from digit_recognizer.report.table import format_table
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
        if name not in metrics:
            raise UserError(f"{metrics_path} has no scores for {name} (params.yaml lists it): run `dvc repro` first")
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
    table = format_table(COLUMNS, rows, markdown)
    return "\n".join([table, "", *note] if markdown and note else [table, *note])


def side_by_side(root: Path, markdown: bool = False) -> tuple[list[str], list[tuple[str, ...]], list[str]]:
    """Columns (the ensemble's members, then the ensemble), rows (CV accuracy; the sample leaderboard where the
    data has one; Kaggle's public score where the workspace's submission was scored) and notes.

    Members and folds are data/metrics.json's, so that the table describes the run that wrote it."""
    metrics = json.loads((root / paths.METRICS).read_text())
    members = [name for name in metrics if name != "ensemble"]
    names = [*members, "ensemble"]
    folds = metrics["ensemble"].get("fold_accuracy", {})

    def row(label: str, key: str) -> tuple[str, ...]:
        cells = ["" if metrics[n].get(key) is None else f"{metrics[n][key]:.3%}" for n in names]
        return (label, *cells[:-1], f"**{cells[-1]}**" if markdown and cells[-1] else cells[-1])

    rows = [row(f"{len(folds)}-fold CV accuracy", "cv_accuracy")]
    if any(metrics[n].get("sample_leaderboard_accuracy") is not None for n in names):
        rows.append(row("sample leaderboard (withheld answers)", "sample_leaderboard_accuracy"))
    cell, notes = public_score(root, metrics["ensemble"].get("cv_accuracy"))
    if cell:
        rows.append(("Kaggle public score", *[""] * len(members), f"**{cell}**" if markdown else cell))
    return ["", *names], rows, notes


def public_score(root: Path, cv: float | None) -> tuple[str | None, list[str]]:
    """The ensemble's cell for Kaggle's public score of the workspace's submission.csv, matched by md5 in the
    submissions record, and notes; none where nothing was submitted."""
    records = load_records(root / paths.SUBMISSIONS_RECORD)
    submission = root / paths.SUBMISSION
    if not records or not submission.exists():
        return None, []
    record = record_for_md5(records, file_md5(submission))
    if record is None:
        return None, [
            f"{paths.SUBMISSION} is not a submitted file (no submission in {paths.SUBMISSIONS_RECORD} has its "
            "md5): no public score for this run"
        ]
    which = f"Kaggle submission {record.ref} of {record.date[:10]}"
    if record.status == "pending":
        return "pending", [f"public score: {which} is pending: `digit-recognizer leaderboard` fills it in"]
    if record.status == "error":
        return "error", [f"public score: {which} failed to score on Kaggle: {record.error}"]
    if record.public_score is None:
        return "—", [f"public score: {which} was scored but Kaggle published no public score"]
    gap = "" if cv is None else f"; CV - public: {(cv - record.public_score) * 100:+.3f} points"
    return f"{record.public_score:.3%}", [f"public score: {which}{gap}"]


def print_scores(project: Path | None, markdown: bool) -> None:
    """`digit-recognizer scores`: the table of the project at `project` (default: around the current folder)."""
    from digit_recognizer.params import load_params

    root = project or paths.find_project_root()
    params = load_params(root / "params.yaml")
    print(format_scores(score_rows(root, params.ensemble_members, params.cv.fold_ids), markdown))
    columns, rows, notes = side_by_side(root, markdown)
    gap = "\n\n" if markdown else "\n"  # a line right under a Markdown table would be read as one of its rows
    print("\n" + format_table(columns, rows, markdown) + (gap + "\n".join(notes) if notes else ""))

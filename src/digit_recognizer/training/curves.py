"""A fold's per-epoch curves in dvclive's layout: live/plots/metrics/<name>.tsv (`step`, value) and
live/metrics.json (each curve's last value and the last step), read by the report stage and `dvc plots`.

Written here rather than through dvclive's `Live`: `Live` opens the DVC repository and imports pandas when it
starts, about 1 s of every train stage (BENCHMARKS.md), for features a stage inside `dvc repro` does not use
(experiments, dvc.yaml, reports, Studio). tests/test_curves.py checks that these files are byte for byte
what dvclive writes for the same epochs.
"""

from __future__ import annotations

import csv
import json
import math
import os
from pathlib import Path


class Curves:
    """Collects one record per epoch ({"epoch": n, "train_loss": ...}); `write` puts them in `folder`."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.rows: dict[str, list[tuple[int, float | str]]] = {}
        self.summary: dict[str, float | str | int] = {}
        self.step = 0

    def log(self, record: dict[str, float]) -> None:
        """One epoch's values (its "epoch" key aside), as the next step."""
        for name, value in record.items():
            if name == "epoch":
                continue
            if math.isnan(value) or math.isinf(value):
                value = str(value)  # as dvclive logs them
            self.rows.setdefault(name, []).append((self.step, value))
            self.summary[name] = value
        self.summary["step"] = self.step
        self.step += 1

    def write(self) -> None:
        metrics = self.folder / "plots" / "metrics"
        metrics.mkdir(parents=True, exist_ok=True)
        for name, rows in self.rows.items():
            with open(metrics / f"{name}.tsv", "w", encoding="utf-8", newline="") as f:
                writer = csv.writer(f, delimiter="\t", lineterminator=os.linesep)
                writer.writerow(["step", name])
                writer.writerows(rows)
        with open(self.folder / "metrics.json", "w", encoding="utf-8") as f:
            json.dump(self.summary, f, indent=4)
            f.write("\n")

"""What a parallel run shows: one line per change of a stage's state, and each stage's log in the workspace."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import TextIO

LOG_DIR = Path(".dvc") / "tmp" / "parallel"  # in the workspace: one log per stage, of the last run
TAIL_LINES = 20  # of a failed stage's log, shown with its error


class Progress:
    """One line per change of a stage's state, with the time since the run started."""

    def __init__(self, out: TextIO, width: int) -> None:
        self.out, self.width, self.started = out, width, time.monotonic()
        self.lock = threading.Lock()

    def line(self, state: str, stage: str, detail: str = "") -> None:
        seconds = int(time.monotonic() - self.started)
        text = f"{seconds // 60:3d}:{seconds % 60:02d}  {state:<8} {stage:<{self.width}}  {detail}".rstrip()
        with self.lock:
            print(text, file=self.out, flush=True)


def format_seconds(seconds: float) -> str:
    seconds = round(seconds)
    return f"{seconds // 60} min {seconds % 60} s" if seconds >= 60 else f"{seconds} s"


def log_tail(text: str, lines: int = TAIL_LINES) -> str:
    return "\n".join(text.rstrip("\n").splitlines()[-lines:])


def log_name(stage: str) -> str:
    return stage.replace("/", "_").replace(":", "_") + ".log"


def save_log(root: Path, stage: str, text: str) -> None:
    """The stage's log in the workspace (a worker on this machine has written it there already)."""
    path = root / LOG_DIR / log_name(stage)
    if not path.exists() or path.stat().st_size == 0:
        path.write_text(text)


def write_timings(root: Path, timings: dict[str, str]) -> None:
    """Each trained fold's timing (a checkout's data/timings file) joins the workspace's record of the fold,
    whose earlier runs stay, as under `dvc repro`."""
    from digit_recognizer.training.timings import merge_timings

    for relative, text in timings.items():
        merge_timings(root / relative, json.loads(text).get("runs", {}))

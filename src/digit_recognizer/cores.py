"""The cores this process may run on. Its one home, free of torch and Dask: the train stage reads it (a dep of
every train stage in dvc.yaml) and so does `digit-recognizer repro`, which imports no torch."""

from __future__ import annotations

import os


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity where the platform tells)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1

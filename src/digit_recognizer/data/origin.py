"""Where data/raw came from, recorded by `download` as origin.json and read by `prepare` and `submit`."""

from __future__ import annotations

import json
from pathlib import Path

from digit_recognizer import paths
from digit_recognizer.atomic import write_json


def write_origin(raw_dir: Path, kind: str, description: str) -> None:
    """kind: "sample" (the embedded sample), "kaggle" (the API) or "local" (a zip or folder the user gave)."""
    write_json(Path(raw_dir) / paths.ORIGIN_JSON, {"kind": kind, "description": description})


def read_origin(raw_dir: Path = paths.RAW) -> dict[str, str] | None:
    """What `download` recorded about `raw_dir`, or None (not downloaded by this project)."""
    path = Path(raw_dir) / paths.ORIGIN_JSON
    return json.loads(path.read_text()) if path.is_file() else None

"""Where the first command's time goes: `dvc repro` in a fresh clone, its wall time split into training, each
stage's start (interpreter and imports), its work around training (params, arrays, predictions, outputs) and
the rest (DVC's own per-stage bookkeeping: hashing, the lock file, the run-cache, each process's exit).

  git clone -q . /tmp/run && python benchmarks/stage_overhead.py /tmp/run          # the embedded sample
  python benchmarks/stage_overhead.py /tmp/run --source ../shared/data/digit-recognizer-mini.zip

Each stage appends its start, main()'s start and its end to $DIGIT_RECOGNIZER_STAGE_LOG (stage.py); training
is each fold's `train_seconds` (the fit loop alone). Prints the machine-speed figures before and after, and a
Markdown table for BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

from digit_recognizer.stage import PROFILE_LOG
from digit_recognizer.training.timings import timing_of


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("project", type=Path, help="a fresh clone (nothing run yet)")
    parser.add_argument("--source", help="data.source for the run (default: params.yaml's)")
    args = parser.parse_args()
    project = args.project.resolve()
    log = project / "stage_overhead.jsonl"
    log.unlink(missing_ok=True)
    env = {**os.environ, PROFILE_LOG: str(log), "PYTHONPATH": str(project / "src")}
    if args.source:
        set_source(project / "params.yaml", args.source)
    speed = [sys.executable, str(project / "benchmarks" / "machine_speed.py")]
    print("before:", subprocess.run(speed, env=env, capture_output=True, text=True, check=True).stdout.strip())
    started = time.perf_counter()
    subprocess.run(["dvc", "repro"], cwd=project, env=env, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - started
    print("after:", subprocess.run(speed, env=env, capture_output=True, text=True, check=True).stdout.strip())
    print(split_table(project, [json.loads(line) for line in log.read_text().splitlines()], wall))


def set_source(params_file: Path, source: str) -> None:
    import yaml

    params = yaml.safe_load(params_file.read_text())
    params["data"]["source"] = source
    params_file.write_text(yaml.safe_dump(params, sort_keys=False))


def split_table(project: Path, records: list[dict], wall: float) -> str:
    """One row per kind of stage (each architecture's folds together), then DVC's share and the totals."""
    rows: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for record in records:
        words = record["stage"].split()
        kind = words[0]
        training = 0.0
        if kind == "train":
            arch, fold = words[words.index("--arch") + 1], int(words[words.index("--fold") + 1])
            kind = f"train {arch}"
            training = (timing_of(project, arch, fold) or {}).get("train_seconds", 0.0)
        row = rows[kind]
        row["runs"] += 1
        row["start"] += record["main_started"] - record["created"]
        row["training"] += training
        row["around"] += record["ended"] - record["main_started"] - training
    total = {key: sum(row[key] for row in rows.values()) for key in ("runs", "start", "training", "around")}
    in_stages = total["start"] + total["training"] + total["around"]
    lines = [
        "| stage | runs | start (interpreter, imports) | training | around training | in the stage |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for kind, row in rows.items():
        in_stage = row["start"] + row["training"] + row["around"]
        lines.append(
            f"| {kind} | {row['runs']:.0f} | {row['start']:.1f} s | {row['training']:.1f} s | "
            f"{row['around']:.1f} s | {in_stage:.1f} s |"
        )
    lines.append(
        f"| all stages | {total['runs']:.0f} | {total['start']:.1f} s | {total['training']:.1f} s | "
        f"{total['around']:.1f} s | {in_stages:.1f} s |"
    )
    lines.append(f"| DVC between and around the stages | | | | | {wall - in_stages:.1f} s |")
    lines.append(f"| **`dvc repro`** | | | | | **{wall:.1f} s** |")
    outside = wall - total["training"]
    lines.append(f"\nOutside training: **{outside:.0f} s** of {wall:.0f} s ({outside / wall:.0%}).")
    return "\n".join(lines)


if __name__ == "__main__":
    main()

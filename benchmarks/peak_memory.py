"""The peak memory of each stage, from a `dvc repro` log (every stage prints `<stage>: peak memory N MiB`).

    python benchmarks/peak_memory.py run.log     # e.g. the log of benchmarks/pipeline_run.sh

The train matrix is summarised per architecture (the largest of its folds).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path


def peaks(log: str) -> dict[str, list[int]]:
    """{stage, or train@<arch>: [peak MiB of each run]} in the order the stages ran."""
    stage, found = None, {}
    for line in log.splitlines():
        if match := re.search(r"Running stage '([^']+)'", line):
            stage = match.group(1)
            stage = stage.rsplit("-", 1)[0] if stage.startswith(("train@", "train_pseudo@")) else stage
        elif (match := re.search(r": peak memory ([\d,]+) MiB", line)) and stage:
            found.setdefault(stage, []).append(int(match.group(1).replace(",", "")))
    return found


def main() -> None:
    found = peaks(Path(sys.argv[1]).read_text(errors="replace"))
    print("| stage | runs | peak memory (MiB) |\n| --- | ---: | ---: |")
    for stage, values in found.items():
        print(f"| {stage} | {len(values)} | {max(values):,} |")


if __name__ == "__main__":
    main()

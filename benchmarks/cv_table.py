"""Print the CV results of the last pipeline run as a Markdown table (for BENCHMARKS.md).

python benchmarks/cv_table.py      # after `dvc repro`, in the project root
"""

from __future__ import annotations

import json

from digit_recognizer import paths
from digit_recognizer.stage import load_params


def main() -> None:
    params = load_params()
    metrics = json.loads(paths.METRICS.read_text())
    print(
        "| architecture | CV accuracy (mean ± std over folds) | CV log-loss | ensemble weight | train time, all folds (s) | img/s |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for arch in params["architectures"]:
        runs = [
            json.loads((paths.train_run_dir(arch, f) / "metrics.json").read_text()) for f in params["cv"]["fold_ids"]
        ]
        seconds = sum(r["train_seconds"] for r in runs)
        speed = sum(r["images_per_second"] for r in runs) / len(runs)
        m = metrics[arch]
        print(
            f"| {arch} | {m['cv_accuracy']:.3%} ± {m['cv_accuracy_std']:.3%} | {m['cv_log_loss']:.4f} | "
            f"{m['weight']} | {seconds:.0f} | {speed:,.0f} |"
        )
    e = metrics["ensemble"]
    print(
        f"| **ensemble ({params['ensemble']['method']})** | **{e['cv_accuracy']:.3%}** ± {e['cv_accuracy_std']:.3%} | "
        f"{e['cv_log_loss']:.4f} | | | |"
    )
    if "sample_leaderboard_accuracy" in e:
        print(f"\nSample leaderboard (withheld answers): {e['sample_leaderboard_accuracy']:.3%}")


if __name__ == "__main__":
    main()

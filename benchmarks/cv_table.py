"""Print the CV results of the last pipeline run as a Markdown table (for BENCHMARKS.md).

python benchmarks/cv_table.py      # after `dvc repro`, in the project root

Training times come from data/timings/ (written each time a fold actually trains, not by the run-cache).
"""

from __future__ import annotations

import json

from digit_recognizer import paths
from digit_recognizer.params import load_params


def main() -> None:
    params = load_params()
    metrics = json.loads(paths.METRICS.read_text())
    print(
        "| architecture | CV accuracy ± SE (rows) | std over folds | CV log-loss | ensemble weight "
        "| train time, all folds (s) | img/s |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for arch in params["architectures"]:
        m = metrics[arch]
        timings = [paths.timing_file(arch, fold) for fold in params["cv"]["fold_ids"]]
        if all(t.exists() for t in timings):
            runs = [json.loads(t.read_text()) for t in timings]
            seconds = f"{sum(r['train_seconds'] for r in runs):.0f}"
            rate = f"{sum(r['images_per_second'] for r in runs) / len(runs):,.0f}"
        else:
            seconds = rate = "(restored from cache)"
        print(
            f"| {arch} | {m['cv_accuracy']:.3%} ± {m['cv_accuracy_se']:.3%} | {m['cv_accuracy_std']:.3%} "
            f"| {m['cv_log_loss']:.4f} | {m['weight']} | {seconds} | {rate} |"
        )
    e = metrics["ensemble"]
    print(
        f"| **ensemble ({params['ensemble']['method']})** | **{e['cv_accuracy']:.3%}** ± {e['cv_accuracy_se']:.3%} "
        f"| {e['cv_accuracy_std']:.3%} | {e['cv_log_loss']:.4f} | | | |"
    )
    if "sample_leaderboard_accuracy" in e:
        print(f"\nSample leaderboard (withheld answers): {e['sample_leaderboard_accuracy']:.3%}")


if __name__ == "__main__":
    main()

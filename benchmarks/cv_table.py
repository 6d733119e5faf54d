"""Print the CV results of the last pipeline run as a Markdown table (for BENCHMARKS.md).

python benchmarks/cv_table.py      # after `dvc repro`, in the project root
"""

from __future__ import annotations

import json

from digit_recognizer import paths
from digit_recognizer.report import architecture_table
from digit_recognizer.stage import load_params


def main() -> None:
    params = load_params()
    metrics = json.loads(paths.METRICS.read_text())
    print(
        "| architecture | CV accuracy (mean ± std over folds) | CV log-loss | ensemble weight | train time, all folds (s) | img/s |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    table = architecture_table(params["architectures"], len(params["cv"]["fold_ids"]), metrics)
    for row in table.iloc[:-1].itertuples():  # the last row is the ensemble's, printed below
        m = metrics[row.architecture]
        print(
            f"| {row.architecture} | {m['cv_accuracy']:.3%} ± {m['cv_accuracy_std']:.3%} | {m['cv_log_loss']:.4f} | "
            f"{m['weight']} | {row.train_seconds:.0f} | {row.images_per_second:,.0f} |"
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

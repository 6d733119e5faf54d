"""The report: data files for DVC's Vega-Lite plots and PNG pictures, all under data/report/.

learning_curves.csv       architecture, fold, split, epoch, loss, accuracy (from each fold's live/ curves); split is train
                          (training batches), val (the inner validation split, where a recipe has one) or
                          held_out (the CV fold, scored for these curves only)
confusion.csv             actual, predicted: the ensemble's honest out-of-fold predictions
per_class_accuracy.csv    architecture, digit, accuracy (out-of-fold)
label_distribution.csv    digit, count in train.csv
architectures.csv / .png  parameters, epochs, CV accuracy and its standard error, ensemble weight
train_digits.png          random training digits with their labels
confidently_wrong.png     the out-of-fold mistakes the ensemble was surest of
least_confident_test.png  the test digits the ensemble was least sure of
plots_page.html           the page template of `dvc plots show` (.dvc/config: plots.html_template), with
                          vega, vega-lite and vega-embed inlined: the report renders with no network
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from digit_recognizer import paths
from digit_recognizer.atomic import atomic_dir
from digit_recognizer.data.prepared import load_prepared
from digit_recognizer.ensemble.fold_predictions import load_architecture

CURVE_SPLITS = ("train", "val", "held_out")


def learning_curves(architectures: list[str], n_folds: int, train_dir: Path = paths.TRAIN) -> pd.DataFrame:
    """Per-epoch loss and accuracy of every (architecture, fold, split), from the folds' curves (dvclive's layout)."""
    frames = []
    for arch in architectures:
        for fold in range(n_folds):
            metrics_dir = paths.train_run_dir(arch, fold, train_dir) / "live" / "plots" / "metrics"
            for split in CURVE_SPLITS:
                if not (metrics_dir / f"{split}_loss.tsv").exists():
                    continue  # no inner validation split in this recipe
                loss = pd.read_csv(metrics_dir / f"{split}_loss.tsv", sep="\t")
                acc = pd.read_csv(metrics_dir / f"{split}_accuracy.tsv", sep="\t")
                frame = loss.merge(acc, on="step").rename(
                    columns={f"{split}_loss": "loss", f"{split}_accuracy": "accuracy"}
                )
                frame.insert(0, "epoch", frame.pop("step") + 1)
                frame.insert(0, "split", split)
                frame.insert(0, "fold", fold)
                frame.insert(0, "architecture", arch)
                frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def per_class_accuracy(oofs: dict[str, np.ndarray], labels: np.ndarray) -> pd.DataFrame:
    rows = []
    for name, probabilities in oofs.items():
        predicted = probabilities.argmax(1)
        for digit in range(10):
            mask = labels == digit
            rows.append({"architecture": name, "digit": digit, "accuracy": float((predicted[mask] == digit).mean())})
    return pd.DataFrame(rows)


def architecture_table(architectures: list[str], n_folds: int, metrics: dict, train_dir: Path = paths.TRAIN):
    rows = []
    for arch in architectures:
        runs = [
            json.loads((paths.train_run_dir(arch, f, train_dir) / "metrics.json").read_text()) for f in range(n_folds)
        ]
        rows.append(
            {
                "architecture": arch,
                "parameters": runs[0]["parameters"],
                "epochs": round(float(np.mean([r["epochs_run"] for r in runs])), 1),
                "cv_accuracy": metrics[arch]["cv_accuracy"],
                "cv_accuracy_se": metrics[arch]["cv_accuracy_se"],
                "ensemble_weight": metrics[arch]["weight"],
            }
        )
    ensemble = metrics["ensemble"]
    rows.append(
        {
            "architecture": "ensemble",
            "cv_accuracy": ensemble["cv_accuracy"],
            "cv_accuracy_se": ensemble["cv_accuracy_se"],
        }
    )
    return pd.DataFrame(rows)


def digit_grid(images: np.ndarray, titles: list[str], path: Path, title: str, columns: int = 10) -> None:
    """Save (N, 28, 28) digits as a captioned grid."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = max(1, -(-len(images) // columns))
    fig, axes = plt.subplots(rows, columns, figsize=(columns * 1.1, rows * 1.3 + 0.4), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, image, caption in zip(axes.flat, images, titles, strict=False):
        ax.imshow(image, cmap="gray_r", vmin=0, vmax=255)
        ax.set_title(caption, fontsize=8)
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def table_png(table: pd.DataFrame, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    formats = {
        "parameters": "{:,.0f}",
        "epochs": "{:g}",
        "cv_accuracy": "{:.3%}",
        "cv_accuracy_se": "± {:.3%}",
        "ensemble_weight": "{:.3f}",
    }
    shown = table.astype(object).copy()
    for column, form in formats.items():
        shown[column] = [form.format(v) if v is not None and v == v else "" for v in table[column]]
    fig, ax = plt.subplots(figsize=(10, 0.45 * len(shown) + 1))
    ax.axis("off")
    cells = ax.table(cellText=shown.values, colLabels=[c.replace("_", " ") for c in shown.columns], loc="center")
    cells.auto_set_font_size(False)
    cells.set_fontsize(9)
    cells.scale(1, 1.4)
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


VEGA_LITE_VERSION = "5.21"  # the templates in .dvc/plots are Vega-Lite 5 specs
PLOTS_PAGE = """<!DOCTYPE html>
<html>
<head>
    {refresh_tag}
    <meta charset="utf-8">
    <title>digit-recognizer report</title>
    <script>BUNDLE</script>
    <style>
        body { font-family: sans-serif; }
        table { border-spacing: 15px; }
    </style>
</head>
<body>
    {plot_divs}
</body>
</html>
"""


def write_plots_page(path: Path) -> None:
    """DVC's plots page template with vl-convert's JavaScript bundle inlined instead of CDN <script> tags.

    DVC fills {plot_divs} with one `vegaEmbed(...)` call per chart; the bundle defines window.vegaEmbed.
    """
    import vl_convert

    bundle = vl_convert.javascript_bundle(vl_version=VEGA_LITE_VERSION).replace("</script", "<\\/script")
    path.write_text(PLOTS_PAGE.replace("BUNDLE", bundle), encoding="utf-8")


def write_report(
    architectures: list[str],
    n_images: int,
    seed: int,
    out_dir: Path = paths.REPORT,
    prepared_dir: Path = paths.PREPARED,
    train_dir: Path = paths.TRAIN,
    ensemble_dir: Path = paths.ENSEMBLE,
    metrics_path: Path = paths.METRICS,
) -> None:
    """Write every report file into `out_dir` (atomically, as one folder)."""
    data = load_prepared(prepared_dir)
    labels = data.train_labels
    metrics = json.loads(Path(metrics_path).read_text())
    ensemble_oof = np.load(ensemble_dir / "oof.npy")
    ensemble_test = np.load(ensemble_dir / "test.npy")
    oofs = {name: load_architecture(name, data.folds, labels, train_dir).oof for name in architectures}
    oofs["ensemble"] = ensemble_oof
    rng = np.random.default_rng(seed)

    with atomic_dir(out_dir) as tmp:
        learning_curves(architectures, data.n_folds, train_dir).to_csv(tmp / "learning_curves.csv", index=False)
        pd.DataFrame({"actual": labels, "predicted": ensemble_oof.argmax(1)}).to_csv(tmp / "confusion.csv", index=False)
        per_class_accuracy(oofs, labels).to_csv(tmp / "per_class_accuracy.csv", index=False)
        counts = np.bincount(labels, minlength=10)
        pd.DataFrame({"digit": range(10), "count": counts}).to_csv(tmp / "label_distribution.csv", index=False)
        table = architecture_table(architectures, data.n_folds, metrics, train_dir)
        table.to_csv(tmp / "architectures.csv", index=False)
        table_png(table, tmp / "architectures.png", "Architectures (CV over all folds)")
        write_plots_page(tmp / "plots_page.html")

        shown = rng.choice(len(labels), size=min(n_images, len(labels)), replace=False)
        digit_grid(
            data.train_images[shown],
            [f"label {labels[i]}" for i in shown],
            tmp / "train_digits.png",
            "Random training digits",
        )

        predicted, confidence = ensemble_oof.argmax(1), ensemble_oof.max(1)
        wrong = np.flatnonzero(predicted != labels)
        worst = wrong[np.argsort(-confidence[wrong])][:n_images]
        digit_grid(
            data.train_images[worst],
            [f"{labels[i]}→{predicted[i]} {confidence[i]:.0%}" for i in worst],
            tmp / "confidently_wrong.png",
            f"Most confident out-of-fold mistakes (true→predicted, probability); {len(wrong)} wrong in all",
        )
        test_confidence = ensemble_test.max(1)
        unsure = np.argsort(test_confidence)[:n_images]
        digit_grid(
            data.test_images[unsure],
            [f"#{i + 1}: {ensemble_test[i].argmax()} {test_confidence[i]:.0%}" for i in unsure],
            tmp / "least_confident_test.png",
            "Least confident test predictions (ImageId: predicted, probability)",
        )

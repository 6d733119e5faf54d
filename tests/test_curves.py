"""A fold's curves are byte for byte what dvclive writes for the same epochs (training/curves.py says why the
stage writes them itself)."""

from __future__ import annotations

import torch
from dvclive import Live

from digit_recognizer.models import build_model
from digit_recognizer.params import FitConfig
from digit_recognizer.training.curves import Curves
from digit_recognizer.training.loop import fit, seed_everything


def files_under(folder):
    return {path.relative_to(folder).as_posix(): path.read_bytes() for path in folder.rglob("*") if path.is_file()}


def test_curves_are_dvclives_files(sample_prepared, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # outside any repository, as dvclive would otherwise open the project's
    images = torch.from_numpy(sample_prepared.train_images[:400])
    labels = torch.from_numpy(sample_prepared.train_labels[:400])
    records = []
    config = FitConfig(epochs=3, batch_size=64, lr=3e-3, val_fraction=0.1, patience=2)
    fit(
        build_model("mlp", {}),
        images[:300],
        labels[:300],
        config,
        seed_everything(0),
        torch.device("cpu"),
        val=(images[300:340], labels[300:340]),
        held_out=(images[340:], labels[340:]),
        held_out_curve_every=2,
        log=records.append,
    )
    records.append({"epoch": 4, "train_loss": float("nan"), "lr": 1e-05})  # a diverged epoch, a tiny rate

    ours = Curves(tmp_path / "ours")
    with Live(str(tmp_path / "dvclive"), dvcyaml=False, save_dvc_exp=False, report=None) as live:
        for record in records:
            ours.log(record)
            for name, value in record.items():
                if name != "epoch":
                    live.log_metric(name, value, plot=True)
            live.next_step()
    ours.write()
    expected = files_under(tmp_path / "dvclive")
    assert {"metrics.json", "plots/metrics/held_out_accuracy.tsv", "plots/metrics/val_loss.tsv"} <= set(expected)
    assert files_under(tmp_path / "ours") == expected

"""Train one architecture on one CV fold and write everything the later stages read, atomically:

model.pt         weights + architecture name + net kwargs + training config (enough to rebuild it)
predictions.npz  oof_index (held-out row numbers), oof (their probabilities), test (test probabilities)
metrics.json     held-out accuracy and log-loss, best epoch, time, throughput, parameter count
live/            dvclive's per-epoch curves (train/val loss and accuracy, lr)
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from digit_recognizer.atomic import atomic_dir
from digit_recognizer.models import build_model
from digit_recognizer.predict import predict
from digit_recognizer.prepare import Prepared
from digit_recognizer.training import FitConfig, accuracy, count_parameters, fit, log_loss, seed_everything


def train_fold(
    arch: str,
    fold: int,
    net_kwargs: dict[str, Any],
    config: FitConfig,
    data: Prepared,
    out_dir: str | Path,
    seed: int,
    device: torch.device,
) -> dict[str, Any]:
    """Train `arch` on every fold but `fold`, predict the held-out fold and the test set; return the metrics."""
    if not 0 <= fold < data.n_folds:
        raise ValueError(f"fold {fold} is outside 0..{data.n_folds - 1}")
    held_out = np.flatnonzero(data.folds == fold)
    train_rows = np.flatnonzero(data.folds != fold)
    generator = seed_everything(seed * 1000 + fold)
    model = build_model(arch, net_kwargs)
    if device.type != "mps":
        model = model.to(memory_format=torch.channels_last)  # faster convs on CPU (oneDNN) and CUDA

    with atomic_dir(out_dir) as tmp:
        from dvclive import Live  # heavy import, only where curves are written

        with Live(str(tmp / "live"), dvcyaml=False, save_dvc_exp=False, report=None) as live:

            def log_epoch(record: dict[str, float]) -> None:
                for key, value in record.items():
                    if key != "epoch":
                        live.log_metric(key, value, plot=True)
                live.next_step()

            result = fit(
                model,
                torch.from_numpy(data.train_images[train_rows]),
                torch.from_numpy(data.train_labels[train_rows]),
                torch.from_numpy(data.train_images[held_out]),
                torch.from_numpy(data.train_labels[held_out]),
                config,
                generator,
                device,
                log=log_epoch,
                desc=f"{arch}-{fold}",
            )
        oof = predict(model, data.train_images[held_out])
        test = predict(model, data.test_images)
        labels = data.train_labels[held_out]
        metrics = {
            "architecture": arch,
            "fold": fold,
            "accuracy": accuracy(oof, labels),
            "log_loss": log_loss(oof, labels),
            "best_epoch": result.best_epoch,
            "epochs_run": len(result.history),
            "train_seconds": round(result.seconds, 2),
            "images_per_second": round(result.images_per_second, 1),
            "parameters": count_parameters(model),
            "device": str(device),
        }
        torch.save(
            {
                "architecture": arch,
                "net": net_kwargs,
                "fit": dataclasses.asdict(config),
                "seed": seed,
                "fold": fold,
                "state_dict": {k: v.contiguous().cpu() for k, v in model.state_dict().items()},
            },
            tmp / "model.pt",
        )
        np.savez(tmp / "predictions.npz", oof_index=held_out, oof=oof, test=test)
        (tmp / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    return metrics


def load_fold_model(path: str | Path, device: torch.device | str = "cpu") -> torch.nn.Module:
    """Rebuild a trained model from its model.pt (architecture and kwargs travel with the weights)."""
    checkpoint = torch.load(path, map_location=device, weights_only=True)
    model = build_model(checkpoint["architecture"], checkpoint["net"])
    model.load_state_dict(checkpoint["state_dict"])
    return model.to(device).eval()

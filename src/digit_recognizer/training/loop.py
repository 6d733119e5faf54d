"""Train one model on one fold: `fit` is a plain loop over in-memory uint8 tensors (no DataLoader).

Batches are sliced from the whole fold held as uint8 on the device, converted to float on the fly and
augmented as a batch. The model that comes out is the last epoch's (or, with `average_epochs`, the mean of
the weights after every step of the last epochs), unless the recipe asks for early stopping, best-epoch
restore or the plateau schedule: those watch an inner validation split carved from the training rows
(`val_fraction`). The held-out CV fold may be passed as `held_out` to draw learning curves; no decision
reads it.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.optim.swa_utils import AveragedModel
from tqdm.auto import tqdm

from digit_recognizer.params import FitConfig
from digit_recognizer.training.augment import affine_noise, random_affine
from digit_recognizer.training.no_dynamo import plain_step
from digit_recognizer.training.predict import autocast, normalize, predict_logits, to_device, to_model_input


@dataclass
class FitResult:
    history: list[dict[str, float]] = field(default_factory=list)  # one record per epoch
    kept_epoch: int = 0  # 1-based: the epoch whose weights are left in the model
    seconds: float = 0.0
    images_per_second: float = 0.0  # training images (forward + backward + augmentation) per second


OPTIMIZERS = {
    "sgd": lambda p, c, **kw: plain_step(torch.optim.SGD)(
        p, lr=c.lr, momentum=c.momentum, nesterov=c.nesterov, weight_decay=c.weight_decay, **kw
    ),
    "adam": lambda p, c, **kw: plain_step(torch.optim.Adam)(p, lr=c.lr, weight_decay=c.weight_decay, **kw),
    "adamw": lambda p, c, **kw: plain_step(torch.optim.AdamW)(p, lr=c.lr, weight_decay=c.weight_decay, **kw),
}


def make_optimizer(model: nn.Module, config: FitConfig, device: torch.device) -> torch.optim.Optimizer:
    """The configured optimizer; fused (one kernel for all parameters) on CPU and CUDA, which support it.

    Fusing matters for the small models, whose optimizer step costs as much as their forward pass.
    """
    fused = {"fused": True} if device.type in ("cpu", "cuda") else {}
    return OPTIMIZERS[config.optimizer](model.parameters(), config, **fused)


def seed_everything(seed: int) -> torch.Generator:
    """Seed torch's global RNG (weight init, dropout) and return a CPU generator for shuffling and augmentation."""
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


Split = tuple[torch.Tensor, torch.Tensor]  # (N, 28, 28) uint8 images, (N,) int64 labels


def fit(
    model: nn.Module,
    train_images: torch.Tensor,
    train_labels: torch.Tensor,
    config: FitConfig,
    generator: torch.Generator,
    device: torch.device,
    val: Split | None = None,
    held_out: Split | None = None,
    held_out_curve_every: int = 1,
    log: Callable[[dict[str, float]], None] | None = None,
    desc: str = "train",
    bfloat16: bool = False,
) -> FitResult:
    """Train `model` on (N, 28, 28) uint8 images; leave the last epoch's weights in it (their mean over the last
    config.average_epochs; or the best epoch's by `val`). Once averaging starts, `val` and `held_out` score the mean.

    val: the inner validation split, read by early stopping, best-epoch restore and the plateau schedule.
    held_out: the held-out CV fold, scored for the learning curves only; nothing reads it. It is scored after
    every `held_out_curve_every`-th epoch and after the last one run (0: never), as scoring costs 6-8% of an
    epoch (BENCHMARKS.md).
    bfloat16: train and score in bfloat16 autocast (device.choose_precision says where that is native and
    fast); the predictions written afterwards are float32.
    """
    if config.needs_validation and val is None:
        raise ValueError("patience, restore_best and the plateau schedule need a `val` split")
    model.to(device)
    x, y = to_device(train_images, device), to_device(train_labels, device)
    val = _split_to(val, device)
    held_out = _split_to(held_out, device) if held_out_curve_every else None
    batch_size = min(config.batch_size, len(x))
    steps = len(x) // batch_size  # the last partial batch is dropped; shuffling covers it in other epochs
    optimizer = make_optimizer(model, config, device)
    schedule = Schedule(optimizer, config, steps)
    augment = config.rotate or config.zoom or config.shift or config.elastic
    average = AveragedModel(model, use_buffers=True) if config.average_epochs else None
    average_from = config.epochs - config.average_epochs + 1  # the first epoch whose steps are averaged
    best = BestEpoch()

    result, train_time, start = FitResult(), 0.0, time.perf_counter()
    for epoch in range(1, config.epochs + 1):
        model.train()
        epoch_start = time.perf_counter()
        order = to_device(torch.randperm(len(x), generator=generator), device)
        noise = affine_noise(batch_size, generator, device, steps=steps, elastic=config.elastic) if augment else None
        averaging = average is not None and epoch >= average_from
        loss_sum = torch.zeros((), device=device)
        correct = torch.zeros((), device=device, dtype=torch.long)
        # a live bar on a terminal only: a log file gets _log_epoch's one line per epoch
        bar = tqdm(range(steps), desc=f"{desc} epoch {epoch}/{config.epochs}", leave=False, mininterval=1, disable=None)
        for step in bar:
            idx = order[step * batch_size : (step + 1) * batch_size]
            xb, yb = to_model_input(x[idx]), y[idx]
            if augment:
                xb = random_affine(
                    xb, config.rotate, config.zoom, config.shift, noise=noise[step], elastic=config.elastic
                )
            with autocast(device, bfloat16):
                logits = model(normalize(xb))
                loss = F.cross_entropy(logits.float(), yb, label_smoothing=config.label_smoothing)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if averaging:
                average.update_parameters(model)
            schedule.after_step()
            loss_sum += loss.detach()
            correct += (logits.argmax(1) == yb).sum()
            if step % 20 == 19 and device.type == "cpu":  # elsewhere .item() would wait for the device
                bar.set_postfix(loss=f"{loss_sum.item() / (step + 1):.4f}")
        epoch_loss, epoch_correct = loss_sum.item(), correct.item()  # waits for the device: the epoch's real end
        train_time += time.perf_counter() - epoch_start

        kept = average.module if averaging else model  # what is scored, restored and left in `model`
        record = {
            "epoch": epoch,
            "lr": optimizer.param_groups[0]["lr"],
            "train_loss": epoch_loss / max(steps, 1),
            "train_accuracy": epoch_correct / max(steps * batch_size, 1),
        }
        if val is not None:
            record.update(_score("val", kept, val, bfloat16))
        schedule.after_epoch(record.get("val_loss"))
        if config.needs_validation:  # reads the inner validation split only
            best.update(record["val_loss"], kept, epoch)
        stop = config.patience > 0 and best.stale >= config.patience
        if held_out is not None and (epoch % held_out_curve_every == 0 or epoch == config.epochs or stop):
            record.update(_score("held_out", kept, held_out, bfloat16))
        result.history.append(record)
        result.kept_epoch = epoch
        _log_epoch(record, log, f"{desc} epoch {epoch}/{config.epochs}")
        if stop:
            tqdm.write(f"{desc}: early stop after epoch {epoch}, best inner-val epoch was {best.epoch}")
            break

    if config.restore_best and best.state is not None:
        model.load_state_dict(best.state)
        result.kept_epoch = best.epoch
    elif kept is not model:
        model.load_state_dict(kept.state_dict())
    result.seconds = time.perf_counter() - start
    result.images_per_second = len(result.history) * steps * batch_size / max(train_time, 1e-9)
    return result


class Schedule:
    """The learning-rate schedule: onecycle moves after every step, exponential after every epoch, plateau after
    an epoch by the inner-validation loss, constant never."""

    def __init__(self, optimizer: torch.optim.Optimizer, config: FitConfig, steps_per_epoch: int):
        self.kind = config.schedule
        self.scheduler = _make_schedule(optimizer, config, steps_per_epoch)

    def after_step(self) -> None:
        if self.kind == "onecycle":
            self.scheduler.step()

    def after_epoch(self, val_loss: float | None) -> None:
        if self.kind == "exponential":
            self.scheduler.step()
        elif self.kind == "plateau":
            self.scheduler.step(val_loss)


@dataclass
class BestEpoch:
    """The epoch with the lowest inner-validation loss so far, its weights, and the epochs since.

    Loss rather than accuracy: on ~1,600 rows, accuracy moves in steps of 0.06% and stalls for epochs while the
    one-cycle schedule is still annealing; the loss keeps falling until the model overfits.
    """

    loss: float = float("inf")
    epoch: int = 0
    state: dict[str, torch.Tensor] | None = None
    stale: int = 0  # epochs since the best one

    def update(self, loss: float, model: nn.Module, epoch: int) -> None:
        if loss < self.loss:
            self.loss, self.epoch, self.state, self.stale = loss, epoch, copy.deepcopy(model.state_dict()), 0
        else:
            self.stale += 1


def _log_epoch(record: dict[str, float], log: Callable[[dict[str, float]], None] | None, prefix: str) -> None:
    if log:
        log(record)
    scores = ", ".join(f"{k.replace('_', ' ')} {v:.4f}" for k, v in record.items() if k not in ("epoch", "lr"))
    tqdm.write(f"{prefix}: {scores}")


def stratified_holdout(labels: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """A boolean mask over `labels` that picks `fraction` of every class's rows (at least one), seeded.

    numpy rather than sklearn's train_test_split: importing sklearn costs a train stage about 1 s.
    """
    rng = np.random.default_rng(seed)
    mask = np.zeros(len(labels), dtype=bool)
    for label in np.unique(labels):
        rows = np.flatnonzero(labels == label)
        mask[rng.permutation(rows)[: max(1, round(fraction * len(rows)))]] = True
    return mask


def _make_schedule(optimizer: torch.optim.Optimizer, config: FitConfig, steps_per_epoch: int):
    if config.schedule == "onecycle":
        return torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=config.lr, total_steps=max(config.epochs * steps_per_epoch, 1), pct_start=config.pct_start
        )
    if config.schedule == "exponential":
        return torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=config.gamma)
    if config.schedule == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, factor=config.plateau_factor, patience=config.plateau_patience
        )
    return None


def _split_to(split: Split | None, device: torch.device) -> Split | None:
    return None if split is None else (to_device(split[0], device), to_device(split[1], device))


def _score(name: str, model: nn.Module, split: Split, bfloat16: bool) -> dict[str, float]:
    images, labels = split
    logits = predict_logits(model, images, bfloat16=bfloat16)
    return {
        f"{name}_loss": F.cross_entropy(logits, labels).item(),
        f"{name}_accuracy": (logits.argmax(1) == labels).float().mean().item(),
    }


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())

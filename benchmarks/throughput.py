"""Training throughput (images/s) of each architecture: the project's trainer against the tutorial loop.

The tutorial loop is the common one: a DataLoader over a TensorDataset of normalised float tensors,
batch 64, shuffled, same model and optimizer, float32, no augmentation. The project's trainer runs exactly
as in the pipeline (params.yaml's batch size, augmentation, the precision train.precision picks on this
device, fused optimizer, channels-last), so it does more work per image. Its GFLOP/s column counts each
image's forward and backward pass (torch.utils.flop_counter), to set beside the host's matmul rate
(benchmarks/machine_speed.py). After a warm-up pass of each (oneDNN builds
its kernels on first use), the two take turns for `--rounds` passes and each keeps its best: this
machine's speed drifts by up to a third from minute to minute, and turns expose both to the same drift.
The last column is how fast `fit` scores the held-out fold for the learning curves (bf16 where the
model trains in it), the cost of each epoch that `train.held_out_curve_every` scores.

    python benchmarks/throughput.py [--prepared data/prepared] [--images 8192] [--rounds 3] [--device auto]
                                    [--precision auto|float32|bfloat16]
    python benchmarks/throughput.py --profile cnn    # instead: where one epoch of the trainer's time goes, by op
    python benchmarks/throughput.py --batch-size 256 --contiguous   # the trainer with another batch or memory layout
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset
from torch.utils.flop_counter import FlopCounterMode

from digit_recognizer.data.prepared import load_prepared
from digit_recognizer.models import build_model
from digit_recognizer.params import FitConfig, Params, load_params
from digit_recognizer.training.device import (
    choose_precision,
    configure_determinism,
    configure_threads,
    keep_freed_memory,
    select_device,
)
from digit_recognizer.training.loop import OPTIMIZERS, fit, seed_everything
from digit_recognizer.training.predict import normalize, predict_logits, to_model_input

MEMORY_FORMAT = torch.channels_last  # as fold_run.train_fold lays out every model; --contiguous changes it


def tutorial_loop(
    arch: str, net: dict, config: FitConfig, images: np.ndarray, labels: np.ndarray, device: torch.device
) -> Callable[[], float]:
    """One pass of the tutorial loop per call; returns its images/s."""
    torch.manual_seed(0)
    model = build_model(arch, net).to(device)
    optimizer = OPTIMIZERS[config.optimizer](model.parameters(), config)
    x = normalize(to_model_input(torch.from_numpy(images))).to(device)
    loader = DataLoader(TensorDataset(x, torch.from_numpy(labels).to(device)), batch_size=64, shuffle=True)
    model.train()

    def one_pass() -> float:
        start = time.perf_counter()
        for xb, yb in loader:
            loss = F.cross_entropy(model(xb), yb)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        synchronize(device)
        return len(x) / (time.perf_counter() - start)

    return one_pass


def project_trainer(
    arch: str, net: dict, config: FitConfig, images: np.ndarray, labels: np.ndarray, device: torch.device,
    bfloat16: bool,
) -> Callable[[], float]:  # fmt: skip
    """One epoch of the project's `fit` per call; returns its images/s."""
    generator = seed_everything(0)
    model = build_model(arch, net).to(memory_format=MEMORY_FORMAT)
    one_epoch = dataclasses.replace(config, epochs=1, patience=0, restore_best=False)
    x, y = torch.from_numpy(images), torch.from_numpy(labels)
    val = (x[:256], y[:256])  # as in the pipeline, one scored split after the epoch
    return lambda: fit(model, x, y, one_epoch, generator, device, held_out=val, bfloat16=bfloat16).images_per_second


def held_out_scoring(
    arch: str, net: dict, config: FitConfig, images: np.ndarray, labels: np.ndarray, device: torch.device,
    bfloat16: bool,
) -> Callable[[], float]:  # fmt: skip
    """Scoring the images as `fit` scores the held-out fold for the learning curves; returns its images/s."""
    model = build_model(arch, net).to(memory_format=MEMORY_FORMAT).to(device)
    x = torch.from_numpy(images).to(device)

    def one_pass() -> float:
        start = time.perf_counter()
        predict_logits(model, x, bfloat16=bfloat16)
        synchronize(device)
        return len(x) / (time.perf_counter() - start)

    return one_pass


def training_flops_per_image(arch: str, net: dict) -> float:
    """Forward and backward FLOPs of one image through `arch` (a multiply-add counts 2), by torch's counter;
    NaN for a network with an LSTM, whose fused kernel the counter does not see."""
    model = build_model(arch, net)
    if any(isinstance(module, torch.nn.LSTM) for module in model.modules()):
        return float("nan")
    x = torch.zeros(8, 1, 28, 28)
    with FlopCounterMode(display=False) as counter:
        model(x).sum().backward()
    return counter.get_total_flops() / len(x)


def profile(
    arch: str, params: Params, images: np.ndarray, labels: np.ndarray, device: torch.device, bfloat16: bool
) -> None:
    """Print the ops that take the most time in one epoch of the trainer (after a warm-up epoch)."""
    net, config = params.recipe(arch).net, params.recipe(arch).fit
    one_epoch = project_trainer(arch, net, config, images, labels, device, bfloat16)
    one_epoch()
    with torch.profiler.profile() as profiler:
        one_epoch()
    print(profiler.key_averages().table(sort_by="self_cpu_time_total", row_limit=12))


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prepared", default="data/prepared")
    parser.add_argument("--images", type=int, default=8192)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--device", default="auto", help="auto (CUDA, then MPS, then CPU), cpu, cuda, ...")
    parser.add_argument("--profile", metavar="ARCH", help="profile one epoch of the trainer on ARCH (torch.profiler)")
    parser.add_argument("--precision", help="auto, float32 or bfloat16 (default: params.yaml's train.precision)")
    parser.add_argument("--batch-size", type=int, help="the trainer's batch size (default: each recipe's)")
    parser.add_argument("--contiguous", action="store_true", help="the trainer's models in NCHW, not channels-last")
    args = parser.parse_args()
    global MEMORY_FORMAT
    if args.contiguous:
        MEMORY_FORMAT = torch.contiguous_format
    keep_freed_memory()  # as stages/train.py does; the tutorial loop's speed does not change with it
    threads = configure_threads(0)
    device = select_device(args.device)
    configure_determinism(True, device)
    data = load_prepared(args.prepared)
    images, labels = data.train_images[: args.images], data.train_labels[: args.images]
    params = load_params()
    precision = choose_precision(args.precision or params.train.precision, device)
    print(
        f"{len(images)} images, device {device}, {threads} CPU threads, precision {precision}, "
        f"torch {torch.__version__}\n"
    )
    if args.profile:
        profile(args.profile, params, images, labels, device, precision.bfloat16)
        return
    print(
        "| architecture | tutorial loop (img/s) | this trainer (img/s) | speed-up | this trainer (GFLOP/s) "
        "| held-out scoring (img/s) |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for arch in params.architectures:
        net, config = params.recipe(arch).net, params.recipe(arch).fit
        if args.batch_size:
            config = dataclasses.replace(config, batch_size=args.batch_size)
        loops = [
            tutorial_loop(arch, net, config, images, labels, device),
            project_trainer(arch, net, config, images, labels, device, precision.bfloat16),
            held_out_scoring(arch, net, config, images, labels, device, precision.bfloat16),
        ]
        for one_pass in loops:
            one_pass()  # warm-up
        rates = [[one_pass() for one_pass in loops] for _ in range(args.rounds)]
        tutorial, ours, scoring = np.max(rates, axis=0)
        gflops = ours * training_flops_per_image(arch, net) / 1e9
        print(
            f"| {arch} | {tutorial:,.0f} | {ours:,.0f} | {ours / tutorial:.2f}x | {gflops:,.0f} | {scoring:,.0f} |".replace(
                "| nan |", "| n/a |"
            ),
            flush=True,
        )


if __name__ == "__main__":
    main()

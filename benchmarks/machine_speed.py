"""The machine-speed figures that go beside every timing: CPU, its vector instructions, whether it computes
bfloat16 natively and so which precision the pipeline picks, cores, float32 and bfloat16 matmul GFLOP/s, and
the images/s of a `cnn` training step in that precision.

python benchmarks/machine_speed.py

A host's speed drifts by the hour, so a timing means little without these figures from the same run. The
matmul alone does not follow the pipeline's speed closely, so the kind of work the pipeline spends most of
its time on is timed too: the cnn network with fixed widths (not
params.yaml's, so that the figure means the same at every commit), batch 128, channels-last, Adam, no
augmentation, in the precision `train.precision: auto` picks here. On a CPU without native bfloat16 the
bfloat16 matmul is emulated, tens of times slower than float32 (and timed on smaller matrices).
"""

from __future__ import annotations

import datetime
import platform
import subprocess
import time

import torch
import torch.nn.functional as F

from digit_recognizer.models.cnn import RegularisedCNN
from digit_recognizer.training.device import (
    available_cores,
    choose_precision,
    cpu_has_native_bfloat16,
    keep_freed_memory,
)


def matmul_gflops(dtype: torch.dtype, size: int = 2048, seconds: float = 0.5) -> float:
    """Best of three timings of (size x size) matmuls, each timing about `seconds` long, in GFLOP/s.

    The repeat count follows the first product's time: emulated bfloat16 (a CPU without it natively) is
    tens of times slower than float32, and a fixed count would take minutes there.
    """
    a = torch.rand(size, size, dtype=dtype)
    start = time.perf_counter()
    a @ a  # warm-up, and the measure of how many fit in `seconds`
    repeats = max(1, min(10, round(seconds / (time.perf_counter() - start))))
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        for _ in range(repeats):
            a @ a
        best = min(best, time.perf_counter() - start)
    return repeats * 2 * size**3 / best / 1e9


def cnn_step_images_per_second(bfloat16: bool, batch: int = 128, steps: int = 40) -> float:
    """Best of five timings of `steps` training steps of the cnn network on random digits, in images/s."""
    torch.manual_seed(0)
    model = RegularisedCNN(channels=(32, 64), dense=128, dropout=0.25).to(memory_format=torch.channels_last)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, fused=True)
    x = torch.rand(batch, 1, 28, 28)
    y = torch.randint(0, 10, (batch,))

    def step() -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bfloat16):
            loss = F.cross_entropy(model(x).float(), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    for _ in range(3):  # warm-up: oneDNN builds its kernels on first use
        step()
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(steps):
            step()
        best = min(best, time.perf_counter() - start)
    return steps * batch / best


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            return next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or "unknown CPU"


def vector_isa() -> str:
    """The widest vector instructions the CPU has, by its flags: AMX, AVX512-BF16, AVX-512, AVX2 or other."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = set(next(line for line in f if line.startswith("flags")).split(":", 1)[1].split())
    except (OSError, StopIteration):
        return torch.backends.cpu.get_cpu_capability()
    for flag, name in (("amx_bf16", "AMX"), ("avx512_bf16", "AVX512-BF16"), ("avx512f", "AVX-512"), ("avx2", "AVX2")):
        if flag in flags:
            return name
    return "no AVX2"


def describe() -> str:
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    precision = choose_precision("auto", torch.device("cpu"))
    bfloat16_size = 2048 if cpu_has_native_bfloat16() else 512  # emulated: ~3 GFLOP/s, 6 s a 2048 product
    return (
        f"{datetime.date.today()} commit {commit or '?'}, {cpu_model()} ({vector_isa()}; kernels "
        f"{torch.backends.cpu.get_cpu_capability()}, native bfloat16 {cpu_has_native_bfloat16()}, so precision "
        f"{precision.name}), {available_cores()} cores, torch {torch.__version__}: "
        f"matmul 2048 float32 {matmul_gflops(torch.float32):.0f} GFLOP/s, "
        f"bfloat16 (size {bfloat16_size}) {matmul_gflops(torch.bfloat16, bfloat16_size):.3g} GFLOP/s; cnn training step ({precision.name}, batch 128) "
        f"{cnn_step_images_per_second(precision.bfloat16):,.0f} img/s"
    )


if __name__ == "__main__":
    keep_freed_memory()  # as the train stages do
    print(describe())

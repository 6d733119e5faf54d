"""The machine-speed figure that goes beside every timing: CPU, cores, float32 and bfloat16 matmul GFLOP/s.

python benchmarks/machine_speed.py

This host's speed drifts (the bf16 matmul has measured 400 and 740-844 GFLOP/s on different days), so a
timing means little without this figure from the same run.
"""

from __future__ import annotations

import datetime
import platform
import subprocess
import time

import torch

from digit_recognizer.device import available_cores


def matmul_gflops(dtype: torch.dtype, size: int = 2048, repeats: int = 10) -> float:
    """Best of three timings of `repeats` (size x size) matmuls, in GFLOP/s."""
    a = torch.rand(size, size, dtype=dtype)
    a @ a  # warm-up
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        for _ in range(repeats):
            a @ a
        best = min(best, time.perf_counter() - start)
    return repeats * 2 * size**3 / best / 1e9


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            return next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or "unknown CPU"


def describe() -> str:
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    cores = available_cores()
    return (
        f"{datetime.date.today()} commit {commit or '?'}, {cpu_model()}, {cores} cores, torch {torch.__version__}: "
        f"matmul 2048 float32 {matmul_gflops(torch.float32):.0f} GFLOP/s, "
        f"bfloat16 {matmul_gflops(torch.bfloat16):.0f} GFLOP/s"
    )


if __name__ == "__main__":
    print(describe())

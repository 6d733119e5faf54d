"""Float32 against bfloat16 autocast on the CPU: matmul GFLOP/s and training images/s of the CNNs.

python benchmarks/bf16_cpu.py
"""

from __future__ import annotations

import time

import torch
import torch.nn.functional as F

from digit_recognizer.augment import random_affine
from digit_recognizer.device import configure_threads
from digit_recognizer.models import build_model
from digit_recognizer.predict import normalize


def images_per_second(arch: str, net: dict, bf16: bool, batch: int = 256, steps: int = 10) -> float:
    torch.manual_seed(0)
    model = build_model(arch, net).to(memory_format=torch.channels_last)
    optimizer = torch.optim.AdamW(model.parameters(), 1e-3)
    x, y = torch.rand(batch, 1, 28, 28), torch.randint(0, 10, (batch,))
    generator = torch.Generator().manual_seed(0)
    for step in range(steps + 5):
        if step == 5:
            start = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = F.cross_entropy(model(normalize(random_affine(x, 10, 0.1, 0.1, generator))).float(), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return steps * batch / (time.perf_counter() - start)


def main() -> None:
    configure_threads(0)
    for dtype in (torch.float32, torch.bfloat16):
        a = torch.rand(2048, 2048, dtype=dtype)
        start = time.perf_counter()
        for _ in range(10):
            a @ a
        print(f"matmul 2048 {dtype}: {10 * 2 * 2048**3 / (time.perf_counter() - start) / 1e9:.0f} GFLOP/s")
    for arch, net in [("cnn3", {}), ("cnn", {"channels": [32, 64]}), ("cnn", {"channels": [16, 32]})]:
        fp32, bf16 = images_per_second(arch, net, False), images_per_second(arch, net, True)
        print(f"{arch} {net}: float32 {fp32:,.0f} img/s, bfloat16 {bf16:,.0f} img/s")


if __name__ == "__main__":
    main()

"""Float32 against bfloat16 autocast on the CPU: matmul GFLOP/s and training images/s of each architecture.

Each architecture trains as params.yaml sets it up (net, batch size, optimizer, augmentation), with
only the precision switched.

python benchmarks/bf16_cpu.py
"""

from __future__ import annotations

import time

import torch
import torch.nn.functional as F
from machine_speed import describe

from digit_recognizer.augment import random_affine
from digit_recognizer.device import configure_threads, keep_freed_memory
from digit_recognizer.models import build_model
from digit_recognizer.params import FitConfig, load_params, recipe_from_params
from digit_recognizer.predict import normalize
from digit_recognizer.training import make_optimizer


def images_per_second(arch: str, net: dict, config: FitConfig, bf16: bool, steps: int = 30) -> float:
    torch.manual_seed(0)
    model = build_model(arch, net).to(memory_format=torch.channels_last)
    optimizer = make_optimizer(model, config, torch.device("cpu"))
    batch = config.batch_size
    x, y = torch.rand(batch, 1, 28, 28), torch.randint(0, 10, (batch,))
    generator = torch.Generator().manual_seed(0)
    for step in range(steps + 5):
        if step == 5:
            start = time.perf_counter()
        xb = random_affine(x, config.rotate, config.zoom, config.shift, generator)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = F.cross_entropy(model(normalize(xb)).float(), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return steps * batch / (time.perf_counter() - start)


def main() -> None:
    keep_freed_memory()  # as stages/train.py does
    configure_threads(0)
    print(describe())
    params = load_params()
    print("\n| architecture | batch | float32 img/s | bfloat16 img/s | gain |\n| --- | ---: | ---: | ---: | ---: |")
    for arch in params["architectures"]:
        net, config = recipe_from_params(arch, params["models"][arch])
        fp32, bf16 = (images_per_second(arch, net, config, bf16) for bf16 in (False, True))
        print(f"| {arch} | {config.batch_size} | {fp32:,.0f} | {bf16:,.0f} | {bf16 / fp32:.2f}x |", flush=True)


if __name__ == "__main__":
    main()

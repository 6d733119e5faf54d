"""Page faults per training step and images/s of each architecture, with glibc malloc's defaults and with
`device.keep_freed_memory()` (what stages/train.py calls).

malloc's settings cannot be undone within a process, so every measurement is a process of its own: for
each architecture the two settings alternate for `--rounds` processes each, and each keeps its best
images/s. A process trains `--epochs` epochs of `--images` images after one warm-up epoch.

    python benchmarks/page_faults.py [--prepared data/prepared] [--images 8192] [--epochs 3] [--rounds 2] [--arch cnn ...]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys

import numpy as np


def measure(arch: str, keep: bool, prepared: str, images: int, epochs: int) -> dict[str, float]:
    """Train `arch` in this process; return its median page faults per step and its best images/s."""
    from throughput import project_trainer  # this script's neighbour: the same trainer set-up

    from digit_recognizer.device import configure_threads, keep_freed_memory
    from digit_recognizer.params import load_params, recipe_from_params
    from digit_recognizer.prepare import load_prepared

    if keep and not keep_freed_memory():
        raise SystemExit("keep_freed_memory() had no effect here (not glibc on Linux)")
    configure_threads(0)
    data = load_prepared(prepared)
    net, config = recipe_from_params(arch, load_params()["models"][arch])
    x, y = data.train_images[:images], data.train_labels[:images]
    one_epoch = project_trainer(arch, net, config, x, y)
    steps = len(x) // min(config.batch_size, len(x))
    faults, rates = [], []
    for epoch in range(epochs + 1):
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        rate = one_epoch()
        if epoch:  # the first epoch grows the heap and builds oneDNN's kernels
            faults.append((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / steps)
            rates.append(rate)
    return {"faults_per_step": float(np.median(faults)), "images_per_second": max(rates)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prepared", default="data/prepared")
    parser.add_argument("--images", type=int, default=8192)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--arch", action="append", help="architectures to measure (default: params.yaml's)")
    parser.add_argument("--worker", nargs=2, metavar=("ARCH", "default|kept"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    sizes = ["--prepared", args.prepared, "--images", str(args.images), "--epochs", str(args.epochs)]
    if args.worker:
        arch, setting = args.worker
        print(json.dumps(measure(arch, setting == "kept", args.prepared, args.images, args.epochs)))
        return

    from digit_recognizer.params import load_params

    print("| architecture | page faults/step, default | kept | img/s, default | kept | speed-up |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for arch in args.arch or load_params()["architectures"]:
        runs: dict[str, list[dict[str, float]]] = {"default": [], "kept": []}
        for _ in range(args.rounds):
            for setting in runs:
                command = [sys.executable, __file__, "--worker", arch, setting, *sizes]
                out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
                runs[setting].append(json.loads(out.splitlines()[-1]))
        faults = {s: min(r["faults_per_step"] for r in rs) for s, rs in runs.items()}
        rate = {s: max(r["images_per_second"] for r in rs) for s, rs in runs.items()}
        print(
            f"| {arch} | {faults['default']:,.0f} | {faults['kept']:,.0f} | {rate['default']:,.0f} | "
            f"{rate['kept']:,.0f} | {rate['kept'] / rate['default']:.2f}x |",
            flush=True,
        )


if __name__ == "__main__":
    main()

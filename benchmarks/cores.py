"""Do the cores train more images/s as single-threaded trainers side by side than as one trainer using all?

    python benchmarks/cores.py

The bfloat16 cnn training step of machine_speed.py, measured in one process using every core, in one
process with one thread, and in one single-threaded process per core running at once (their images/s
added). The first is how a train stage runs; the last is the most that training several models at once
(or data parallelism across processes) could get out of the same cores.
"""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor

import torch
from machine_speed import cnn_step_images_per_second, describe

from digit_recognizer.device import available_cores, keep_freed_memory


def images_per_second(threads: int) -> float:
    keep_freed_memory()
    torch.set_num_threads(threads)
    return cnn_step_images_per_second()


def main() -> None:
    keep_freed_memory()  # as machine_speed.py and the workers below do
    cores = available_cores()
    print(describe())
    spawn = multiprocessing.get_context("spawn")  # a fresh process each: torch's thread pool is set before use
    with ProcessPoolExecutor(1, mp_context=spawn) as pool:
        every_core = pool.submit(images_per_second, cores).result()
    with ProcessPoolExecutor(1, mp_context=spawn) as pool:
        one_thread = pool.submit(images_per_second, 1).result()
    with ProcessPoolExecutor(cores, mp_context=spawn) as pool:
        side_by_side = list(pool.map(images_per_second, [1] * cores))
    print(f"one process, {cores} threads: {every_core:,.0f} img/s")
    print(f"one process, 1 thread: {one_thread:,.0f} img/s ({every_core / one_thread:.2f}x from {cores} threads)")
    print(
        f"{cores} processes of 1 thread at once: {' + '.join(f'{r:,.0f}' for r in side_by_side)} = "
        f"{sum(side_by_side):,.0f} img/s ({sum(side_by_side) / every_core:.2f}x the one process)"
    )


if __name__ == "__main__":
    main()

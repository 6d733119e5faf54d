"""The task slots and GPUs a Dask worker shares among the stages it runs."""

from __future__ import annotations

import functools
import os
import queue
import shutil
import subprocess
import threading


def worker_slots() -> int:
    """How many tasks this Dask worker runs at once (its threads); 1 outside a worker."""
    try:
        from distributed import get_worker

        return max(1, get_worker().state.nthreads)
    except (ImportError, ValueError):
        return 1


@functools.cache
def visible_gpus() -> list[str]:
    """The GPUs this process may use: CUDA_VISIBLE_DEVICES's list, else every one nvidia-smi lists."""
    listed = os.environ.get("CUDA_VISIBLE_DEVICES")
    if listed is not None:
        return [gpu for gpu in listed.split(",") if gpu.strip() and gpu.strip() != "-1"]
    if not shutil.which("nvidia-smi"):
        return []
    result = subprocess.run(["nvidia-smi", "--list-gpus"], capture_output=True, text=True)
    return [str(i) for i, line in enumerate(result.stdout.splitlines()) if line.startswith("GPU ")]


_gpu_pool: queue.Queue[str] | None = None
_gpu_pool_lock = threading.Lock()


def gpu_pool() -> queue.Queue[str]:
    """This worker process's free GPUs: one per running task."""
    global _gpu_pool
    with _gpu_pool_lock:
        if _gpu_pool is None:
            _gpu_pool = queue.Queue()
            for gpu in visible_gpus():
                _gpu_pool.put(gpu)
        return _gpu_pool

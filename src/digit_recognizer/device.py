"""Pick the compute device (CUDA, then Apple MPS, then CPU); set up CPU threads and malloc for training."""

from __future__ import annotations

import ctypes
import os
import sys

import torch


def select_device(preference: str = "auto") -> torch.device:
    """'auto' picks CUDA, then MPS, then CPU; 'cpu', 'cuda', 'cuda:1', 'mps' are taken as given."""
    if preference != "auto":
        return torch.device(preference)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def configure_threads(num_threads: int = 0) -> int:
    """Use `num_threads` intra-op threads (0: one per available core); return the number used."""
    if num_threads <= 0:
        num_threads = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    torch.set_num_threads(num_threads)
    return num_threads


_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_THRESHOLD = -1, -2, -3  # glibc's malloc.h


def keep_freed_memory() -> bool:
    """Ask glibc's malloc to keep freed memory for reuse instead of handing it back to the OS; True if it could.

    By default glibc serves big blocks with mmap and returns freed ones, so every training step page-faults
    its activations in afresh: lenet at batch 256 took ~1,700 page faults a step, lstm at batch 256 ~5,400,
    half its time (benchmarks/page_faults.py). The process then holds its peak memory until it exits, as a
    train stage soon does. This needs no other allocator (jemalloc, tcmalloc) and no LD_PRELOAD, which
    would have to be set before the process starts. Elsewhere than glibc on Linux this does nothing.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    settings = ((_M_MMAP_THRESHOLD, 1 << 30), (_M_TRIM_THRESHOLD, 1 << 30), (_M_TOP_PAD, 256 << 20))
    return all(mallopt(option, value) == 1 for option, value in settings)

"""Pick the compute device (CUDA, then Apple MPS, then CPU) and set up threads for it."""

from __future__ import annotations

import os

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

"""Pick the compute device (CUDA, then Apple MPS, then CPU); set up threads, determinism and malloc for training."""

from __future__ import annotations

import ctypes
import os
import sys

import torch

from digit_recognizer.errors import UserError


def select_device(preference: str = "auto") -> torch.device:
    """'auto' picks CUDA, then MPS, then CPU; 'cpu', 'cuda', 'cuda:1', 'mps' are taken as given."""
    if preference != "auto":
        return torch.device(preference)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


THREADS_VARIABLE = "DIGIT_RECOGNIZER_THREADS"


def configure_threads(num_threads: int = 0) -> int:
    """Use `num_threads` intra-op threads; return the number used.

    0 means: the environment's DIGIT_RECOGNIZER_THREADS if set (how `dvc queue start --jobs N` shares the
    cores among its jobs without changing any stage's params), else one per available core.
    """
    if num_threads <= 0:
        num_threads = threads_from_environment() or available_cores()
    torch.set_num_threads(num_threads)
    return num_threads


def threads_from_environment() -> int | None:
    value = os.environ.get(THREADS_VARIABLE, "").strip()
    if not value:
        return None
    if not value.isdigit() or int(value) < 1:
        raise UserError(f"{THREADS_VARIABLE}={value!r}: must be a whole number of threads, 1 or more")
    return int(value)


def available_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def configure_determinism(deterministic: bool, device: torch.device) -> None:
    """Make training repeat bit for bit on `device` (deterministic=True), or let CUDA pick its fastest kernels.

    On the CPU every op these models use is deterministic already (for a fixed thread count): nothing is
    changed there. On CUDA this
    turns off cuDNN's autotuner, asks cuDNN and cuBLAS for deterministic kernels (cuBLAS needs a fixed
    workspace, CUBLAS_WORKSPACE_CONFIG, set before its first call) and makes PyTorch warn about any op that
    has no deterministic kernel. None of the five networks' training ops is on PyTorch's list of those
    (grid_sample's backward is, but augmentation and deskewing never differentiate through it).
    deterministic=False on CUDA enables cuDNN's autotuner (`cudnn.benchmark`), the faster choice.
    """
    if device.type != "cuda":
        return
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.backends.cudnn.benchmark = not deterministic
    torch.backends.cudnn.deterministic = deterministic
    torch.use_deterministic_algorithms(deterministic, warn_only=True)


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

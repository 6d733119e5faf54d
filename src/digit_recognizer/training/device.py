"""Pick the compute device (CUDA, then Apple MPS, then CPU) and its training precision; set up threads,
determinism and malloc for training."""

from __future__ import annotations

import ctypes
import os
import sys
from dataclasses import dataclass

import torch

from digit_recognizer.cores import available_cores
from digit_recognizer.errors import UserError
from digit_recognizer.params import PRECISIONS


def select_device(preference: str = "auto") -> torch.device:
    """'auto' picks CUDA, then MPS, then CPU; 'cpu', 'cuda', 'cuda:1', 'mps' are taken as given."""
    if preference != "auto":
        return torch.device(preference)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


@dataclass(frozen=True)
class Precision:
    """The precision training runs in, and why: the stage prints it and the fold's model.pt records it."""

    name: str  # "float32" or "bfloat16" (bfloat16 autocast: matmuls and convolutions in bfloat16)
    reason: str

    @property
    def bfloat16(self) -> bool:
        return self.name == "bfloat16"

    def __str__(self) -> str:
        return f"{self.name}, {self.reason}"


FLOAT32 = Precision("float32", "as train.precision asks")


def cpu_has_native_bfloat16() -> bool:
    """oneDNN's own answer: does this CPU compute bfloat16 in hardware (AVX512-BF16, AMX)?

    Where it does not (AVX2 and older x86, most laptops), oneDNN emulates bfloat16 about 6x slower than
    float32 and has no bfloat16 LSTM at all.
    """
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # a torch built without oneDNN (e.g. some ARM builds)
        return False


def cpu_capability() -> str:
    """The vector instruction set ATen's kernels use here: 'AVX512', 'AVX2', 'DEFAULT', ..."""
    return torch.backends.cpu.get_cpu_capability()


def cuda_has_native_bfloat16(device: torch.device) -> bool:
    """Ampere (compute capability 8.0) and later; older GPUs (T4, P100, V100) only emulate it."""
    return torch.cuda.get_device_capability(device) >= (8, 0)


def choose_precision(requested: str, device: torch.device) -> Precision:
    """params.yaml's train.precision on `device`: 'auto' is bfloat16 where the hardware computes it natively
    (an Ampere or later GPU, a CPU with AVX512-BF16 or AMX), float32 elsewhere; 'float32' and 'bfloat16'
    force one (bfloat16 only on CUDA and the CPU, where autocast has it)."""
    if requested not in PRECISIONS:
        raise UserError(f"train.precision: {requested!r} is not one of {', '.join(PRECISIONS)}")
    if requested == "float32":
        return FLOAT32
    if device.type == "cuda":
        native = cuda_has_native_bfloat16(device)
        name = torch.cuda.get_device_name(device)
        if requested == "bfloat16":
            return Precision("bfloat16", "as train.precision asks" + ("" if native else f" (emulated on {name})"))
        if native:
            return Precision("bfloat16", f"{name} computes bfloat16 natively")
        return Precision("float32", f"{name} has no native bfloat16")
    if device.type == "cpu":
        native, isa = cpu_has_native_bfloat16(), cpu_capability()
        if requested == "bfloat16":
            emulated = "" if native else f" (emulated on this CPU, {isa}: several times slower than float32)"
            return Precision("bfloat16", "as train.precision asks" + emulated)
        if native:
            return Precision("bfloat16", f"this CPU computes bfloat16 natively ({isa})")
        return Precision("float32", f"this CPU has no native bfloat16 ({isa})")
    if requested == "bfloat16":
        raise UserError(f"train.precision: bfloat16 runs on CUDA and on the CPU, not on {device.type}; use auto")
    return Precision("float32", f"{device.type} trains in float32")


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
    half its time (measured with getrusage page-fault counts). The process then holds its peak memory until it exits, as a
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

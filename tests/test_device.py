"""The CPU set-up the train stages run under."""

from __future__ import annotations

import pytest
import torch

from digit_recognizer.device import keep_freed_memory, select_device

resource = pytest.importorskip("resource")  # Unix only
PAGE = resource.getpagesize()


def _page_faults_allocating(n_bytes: int, times: int) -> int:
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(times):
        torch.empty(n_bytes, dtype=torch.uint8).fill_(1)  # touch every page, then free
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before


def test_freed_memory_is_reused_without_page_faults():
    if not keep_freed_memory():
        pytest.skip("not glibc on Linux: malloc's settings are left alone")
    block = 64 << 20  # above glibc's largest default mmap threshold (32 MiB): by default mmapped afresh each time
    _page_faults_allocating(block, 12)  # the heap grows until the block and its alignment padding fit
    faults = _page_faults_allocating(block, 5)
    assert faults < block // PAGE // 4, f"{faults} page faults for 5 reuses of a {block >> 20} MiB block"


def test_select_device_takes_an_explicit_choice_as_given():
    assert select_device("cpu") == torch.device("cpu")
    assert select_device("auto").type in ("cpu", "cuda", "mps")

"""The device set-up: CPU threads and malloc, and the CUDA choices that can be checked without a GPU."""

from __future__ import annotations

import os

import pytest
import torch

from digit_recognizer.errors import UserError
from digit_recognizer.training import device as device_module
from digit_recognizer.training.device import (
    Precision,
    available_cores,
    choose_precision,
    configure_determinism,
    configure_threads,
    cpu_has_native_bfloat16,
    keep_freed_memory,
    select_device,
)
from digit_recognizer.training.predict import autocast, to_device

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


@pytest.fixture
def restore_torch_settings():
    """Determinism flags and thread count are process-wide: put them back after the test."""
    saved = (
        torch.backends.cudnn.benchmark,
        torch.backends.cudnn.deterministic,
        torch.are_deterministic_algorithms_enabled(),
        torch.is_deterministic_algorithms_warn_only_enabled(),
        torch.get_num_threads(),
    )
    yield
    benchmark, deterministic, algorithms, warn_only, threads = saved
    torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic = benchmark, deterministic
    torch.use_deterministic_algorithms(algorithms, warn_only=warn_only)
    torch.set_num_threads(threads)


def test_auto_picks_cuda_when_there_is_one(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert select_device("auto") == torch.device("cuda")


def test_autocast_is_bfloat16_on_cuda_and_the_cpu_when_asked_and_nothing_otherwise():
    cuda = autocast(torch.device("cuda"), bfloat16=True) if torch.cuda.is_available() else None
    if cuda is None:  # constructible without a GPU too: disabled there, with a warning
        with pytest.warns(UserWarning, match="Disabling autocast"):
            cuda = autocast(torch.device("cuda"), bfloat16=True)
    assert isinstance(cuda, torch.autocast) and cuda.device == "cuda" and cuda.fast_dtype == torch.bfloat16
    with autocast(torch.device("cpu"), bfloat16=True) as context:
        assert context.fast_dtype == torch.bfloat16 and torch.get_autocast_dtype("cpu") == torch.bfloat16
    for device in ("cpu", "cuda", "mps"):
        assert not isinstance(autocast(torch.device(device), bfloat16=False), torch.autocast)
    assert not isinstance(autocast(torch.device("mps"), bfloat16=True), torch.autocast)


@pytest.mark.parametrize("native", [True, False], ids=["native bfloat16", "no native bfloat16"])
def test_auto_precision_follows_the_cpus_answer(monkeypatch, native):
    monkeypatch.setattr(device_module, "cpu_has_native_bfloat16", lambda: native)
    monkeypatch.setattr(device_module, "cpu_capability", lambda: "AVX512" if native else "AVX2")
    cpu = torch.device("cpu")
    auto = choose_precision("auto", cpu)
    if native:
        assert auto == Precision("bfloat16", "this CPU computes bfloat16 natively (AVX512)")
    else:
        assert auto == Precision("float32", "this CPU has no native bfloat16 (AVX2)")
        assert str(auto) == "float32, this CPU has no native bfloat16 (AVX2)"  # the stage's line
    # forcing either stays possible, whatever the CPU; emulation is named
    assert choose_precision("float32", cpu).name == "float32"
    forced = choose_precision("bfloat16", cpu)
    assert forced.bfloat16 and ("emulated" in forced.reason) == (not native)


@pytest.mark.parametrize("capability, name", [((8, 0), "bfloat16"), ((7, 5), "float32")], ids=["A100", "T4"])
def test_auto_precision_on_cuda_is_bfloat16_from_ampere_on(monkeypatch, capability, name):
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "a GPU")
    assert choose_precision("auto", torch.device("cuda")).name == name
    assert choose_precision("bfloat16", torch.device("cuda")).bfloat16


def test_precision_elsewhere_is_float32_and_bfloat16_is_refused():
    assert choose_precision("auto", torch.device("mps")).name == "float32"
    with pytest.raises(UserError, match="bfloat16 runs on CUDA and on the CPU, not on mps"):
        choose_precision("bfloat16", torch.device("mps"))


def test_the_cpu_check_is_onednns_own():
    assert cpu_has_native_bfloat16() == torch.ops.mkldnn._is_mkldnn_bf16_supported()


def test_deterministic_cuda_settings(monkeypatch, restore_torch_settings):
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    configure_determinism(True, torch.device("cuda"))
    assert torch.backends.cudnn.deterministic and not torch.backends.cudnn.benchmark
    assert torch.are_deterministic_algorithms_enabled() and torch.is_deterministic_algorithms_warn_only_enabled()
    assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"  # cuBLAS reads it at its first call
    configure_determinism(False, torch.device("cuda"))
    assert torch.backends.cudnn.benchmark and not torch.backends.cudnn.deterministic
    assert not torch.are_deterministic_algorithms_enabled()


def test_determinism_leaves_the_cpu_alone(restore_torch_settings):
    before = (torch.backends.cudnn.benchmark, torch.are_deterministic_algorithms_enabled())
    configure_determinism(True, torch.device("cpu"))
    configure_determinism(False, torch.device("cpu"))
    assert (torch.backends.cudnn.benchmark, torch.are_deterministic_algorithms_enabled()) == before


def test_threads_come_from_params_then_the_environment_then_the_cores(monkeypatch, restore_torch_settings):
    monkeypatch.setenv("DIGIT_RECOGNIZER_THREADS", "1")
    assert configure_threads(0) == 1 == torch.get_num_threads()  # what `dvc queue start` passes to its jobs
    assert configure_threads(2) == 2 == torch.get_num_threads()  # a number in params.yaml wins
    monkeypatch.delenv("DIGIT_RECOGNIZER_THREADS")
    assert configure_threads(0) == available_cores()
    monkeypatch.setenv("DIGIT_RECOGNIZER_THREADS", "two")
    with pytest.raises(UserError, match="DIGIT_RECOGNIZER_THREADS='two': must be a whole number"):
        configure_threads(0)


def test_to_device_leaves_a_cpu_tensor_where_it_is():
    tensor = torch.arange(3)
    assert to_device(tensor, torch.device("cpu")) is tensor


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_deterministic_training_on_cuda_repeats_bit_for_bit(sample_prepared, restore_torch_settings):
    from digit_recognizer.models import build_model
    from digit_recognizer.params import FitConfig
    from digit_recognizer.training.loop import fit, seed_everything

    device = torch.device("cuda")
    configure_determinism(True, device)
    x, y = torch.from_numpy(sample_prepared.train_images[:512]), torch.from_numpy(sample_prepared.train_labels[:512])
    config = FitConfig(epochs=2, batch_size=64, lr=3e-3, rotate=10, zoom=0.1, shift=0.1)
    states = []
    for _ in range(2):
        generator = seed_everything(0)
        model = build_model("cnn", {"channels": [8, 16], "dense": 32, "dropout": 0.1})
        fit(model, x, y, config, generator, device)
        states.append({k: v.cpu() for k, v in model.state_dict().items()})
    assert all(torch.equal(states[0][k], states[1][k]) for k in states[0])

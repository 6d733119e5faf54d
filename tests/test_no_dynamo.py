"""Training never imports torch._dynamo (about 2 s of every train stage's start), and the workaround that keeps
it out (training/no_dynamo.py) changes no number and goes stale loudly."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from digit_recognizer.training.no_dynamo import plain_step

TRAIN_A_FEW_STEPS = """
import sys, torch
from digit_recognizer.models import build_model
from digit_recognizer.params import FitConfig
from digit_recognizer.training.loop import fit, make_optimizer, seed_everything
x, y = torch.randint(0, 256, (96, 28, 28), dtype=torch.uint8), torch.randint(0, 10, (96,))
val = x[:16], y[:16]
for optimizer, schedule in (("sgd", "onecycle"), ("adam", "exponential"), ("adamw", "plateau")):
    config = FitConfig(epochs=2, batch_size=32, optimizer=optimizer, schedule=schedule, rotate=5, average_epochs=1,
                       val_fraction=0.1)
    model = build_model("mlp", {})
    fit(model, x, y, config, seed_everything(0), torch.device("cpu"), val=val)
    make_optimizer(model, config, torch.device("cpu")).state_dict()
print("torch._dynamo" in sys.modules)
"""

STOCK_OPTIMIZER_STEP = """
import sys, torch
model = torch.nn.Linear(4, 2)
optimizer = torch.optim.AdamW(model.parameters())
model(torch.ones(1, 4)).sum().backward()
optimizer.step()
print("torch._dynamo" in sys.modules)
"""


def python_says(code: str) -> str:
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    return output.splitlines()[-1]


def test_training_imports_no_dynamo():
    assert python_says(TRAIN_A_FEW_STEPS) == "False"


def test_the_workaround_is_still_needed():
    """When a torch upgrade stops importing torch._dynamo from an optimizer step, training/no_dynamo.py can go."""
    assert python_says(STOCK_OPTIMIZER_STEP) == "True"


@pytest.mark.parametrize(
    ("optimizer_class", "settings"),
    [
        (torch.optim.SGD, {"lr": 0.1, "momentum": 0.9, "nesterov": True, "weight_decay": 1e-4}),
        (torch.optim.Adam, {"lr": 0.01, "fused": True}),
        (torch.optim.AdamW, {"lr": 0.01, "weight_decay": 1e-4, "fused": True}),
    ],
)
def test_plain_step_updates_exactly_as_torchs_step(optimizer_class, settings):
    torch.manual_seed(0)
    stock, plain = torch.nn.Linear(8, 3), torch.nn.Linear(8, 3)
    plain.load_state_dict(stock.state_dict())
    optimizers = (
        optimizer_class(stock.parameters(), **settings),
        plain_step(optimizer_class)(plain.parameters(), **settings),
    )
    batches = [torch.randn(5, 8) for _ in range(4)]
    for model, optimizer in zip((stock, plain), optimizers, strict=True):
        for batch in batches:
            optimizer.zero_grad()
            model(batch).square().mean().backward()
            optimizer.step()
    assert all(torch.equal(a, b) for a, b in zip(stock.parameters(), plain.parameters(), strict=True))
    assert not any(p.grad is not None and p.grad.requires_grad for p in plain.parameters())
    assert optimizers[1].state_dict()["state"].keys() == optimizers[0].state_dict()["state"].keys()

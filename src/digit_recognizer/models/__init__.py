"""The architectures, registered by name; `build_model(name, kwargs)` is the one way to construct one."""

from __future__ import annotations

from typing import Any

from torch import nn

from digit_recognizer.errors import UserError
from digit_recognizer.models.cnn import RegularisedCNN
from digit_recognizer.models.cnn3 import CNN3
from digit_recognizer.models.deskew import Deskew
from digit_recognizer.models.lenet import LeNet
from digit_recognizer.models.lstm import RowLSTM
from digit_recognizer.models.mlp import MLP

ARCHITECTURES: dict[str, type[nn.Module]] = {
    "lstm": RowLSTM,
    "lenet": LeNet,
    "cnn3": CNN3,
    "mlp": MLP,
    "cnn": RegularisedCNN,
}


def build_model(name: str, kwargs: dict[str, Any]) -> nn.Module:
    """Instantiate architecture `name` with keyword arguments from params.yaml (`models.<name>.net`).

    `deskew: true` among them, for any architecture, puts a Deskew layer in front of the network.
    """
    if name not in ARCHITECTURES:
        raise UserError(f"unknown architecture {name!r}; known: {', '.join(ARCHITECTURES)}")
    kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in kwargs.items()}
    deskew = kwargs.pop("deskew", False)
    try:
        model = ARCHITECTURES[name](**kwargs)
    except (TypeError, ValueError) as error:
        raise UserError(f"models.{name}.net in params.yaml: {error}") from None
    return nn.Sequential(Deskew(), model) if deskew else model

"""params.yaml's schema: every key's type and range, checked before a stage does any work (pydantic).

A mistake stops the stage with one line naming the key, e.g. `models.cnn.lr: '1e-3' is text ...`.
This module imports no torch, so the download and prepare stages stay quick to start.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    StrictBool,
    StrictInt,
    TypeAdapter,
    ValidationError,
)
from pydantic import model_validator as model_check

from digit_recognizer.errors import UserError, os_reason

ARCHITECTURE_NAMES = ("lstm", "lenet", "cnn3", "mlp", "cnn")  # models/__init__.py registers one class for each
ENSEMBLE_METHODS = ("mean", "weighted", "loglinear", "stacking")  # ensemble.Combiner implements each
PRECISIONS = ("auto", "float32", "bfloat16")  # device.choose_precision resolves each on the device at hand


def _number(value: Any) -> float:
    """An int or a float; YAML's text (1e-3 without a dot is a string in YAML 1.1) and booleans are refused."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        hint = ""
        if isinstance(value, str) and re.fullmatch(r"[-+]?[0-9.]+[eE][-+]?[0-9]+", value.strip()):
            hint = f": YAML reads {value} as text, write it with a dot, e.g. {value.replace('e', '.0e', 1)}"
        raise ValueError(f"{value!r} is not a number{hint}")
    return float(value)


Number = Annotated[float, BeforeValidator(_number)]
Int = StrictInt
Count = Annotated[StrictInt, Field(ge=1)]
Fraction = Annotated[Number, Field(ge=0, lt=1)]


@dataclass(frozen=True)
class FitConfig:
    """Training hyperparameters of one architecture (params.yaml: models.<name>, less `net`)."""

    __pydantic_config__ = ConfigDict(extra="forbid")

    epochs: Count = 10
    batch_size: Count = 128
    optimizer: Literal["sgd", "adam", "adamw"] = "adamw"
    lr: Annotated[Number, Field(gt=0)] = 1e-3  # the peak lr for onecycle, the starting lr otherwise
    momentum: Fraction = 0.9  # sgd only
    nesterov: StrictBool = True  # sgd only: Nesterov's momentum
    weight_decay: Annotated[Number, Field(ge=0)] = 0.0
    schedule: Literal["onecycle", "exponential", "plateau", "constant"] = "onecycle"
    pct_start: Annotated[Number, Field(gt=0, lt=1)] = 0.25  # onecycle: share of the steps spent raising the lr
    gamma: Annotated[Number, Field(gt=0, le=1)] = 0.95  # exponential: lr *= gamma after each epoch
    plateau_factor: Annotated[Number, Field(gt=0, lt=1)] = 0.5  # plateau: lr *= factor after ...
    plateau_patience: Annotated[Int, Field(ge=0)] = 2  # ... this many epochs without a lower inner-val loss
    label_smoothing: Fraction = 0.0
    rotate: Annotated[Number, Field(ge=0, le=180)] = 0.0  # augmentation: max degrees either way
    zoom: Fraction = 0.0  # max relative scale change
    shift: Annotated[Number, Field(ge=0, le=0.5)] = 0.0  # max shift, as a fraction of the image side
    elastic: Annotated[Number, Field(ge=0, le=5)] = 0.0  # elastic distortion: max pixels a control point moves
    # weight averaging (SWA): the model kept is the mean of the weights and BatchNorm statistics after every step
    # of the last this-many epochs; 0 = off, the last step's weights
    average_epochs: Annotated[Int, Field(ge=0)] = 0
    val_fraction: Fraction = 0.0  # share of the training rows held aside (stratified) as the inner validation split
    patience: Annotated[Int, Field(ge=0)] = 0  # early stopping: epochs without a lower inner-val loss; 0 = never
    restore_best: StrictBool = False  # keep the epoch with the lowest inner-val loss instead of the last one

    @property
    def needs_validation(self) -> bool:
        """Does any decision (early stop, best-epoch restore, plateau) read the inner validation split?"""
        return self.patience > 0 or self.restore_best or self.schedule == "plateau"

    @classmethod
    def from_params(cls, name: str, params: dict[str, Any]) -> FitConfig:
        config = _validated(_FIT_CONFIG, params, "models", name)
        if config.needs_validation and config.val_fraction == 0:
            raise UserError(
                f"models.{name}: patience, restore_best and schedule 'plateau' watch an inner validation split; "
                "set val_fraction (e.g. 0.1): the held-out CV fold never chooses anything"
            )
        return config


_FIT_CONFIG = TypeAdapter(FitConfig)


@dataclass(frozen=True)
class Recipe:
    """One architecture's section of params.yaml: its network's constructor arguments and how it trains."""

    net: dict[str, Any]
    fit: FitConfig


def recipe_from_params(name: str, section: dict[str, Any]) -> Recipe:
    """params.yaml's `models.<name>` -> the net's constructor kwargs and the training recipe, validated."""
    recipe = dict(section)
    net = recipe.pop("net", {})
    if not isinstance(net, dict):
        raise UserError(f"models.{name}.net: expected a mapping of the model's arguments, got {net!r}")
    return Recipe(net, FitConfig.from_params(name, recipe))


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DataParams(_Section):
    source: Annotated[str, Field(min_length=1)]  # auto | sample | kaggle | a zip | a folder
    competition: Annotated[str, Field(min_length=1)]
    sample_test_rows: Annotated[StrictInt, Field(ge=10, le=4990)]  # of the embedded sample's 5,000 digits
    sample_seed: Int


class CvParams(_Section):
    folds: Annotated[StrictInt, Field(ge=2)]
    fold_ids: list[StrictInt]
    seed: Int

    @model_check(mode="after")
    def _every_fold_trained(self) -> CvParams:
        if self.fold_ids != list(range(self.folds)):
            raise ValueError(f"fold_ids must be {list(range(self.folds))} for folds: {self.folds}")
        return self


class TrainParams(_Section):
    seed: Int
    device: Annotated[str, Field(pattern=r"^(auto|cpu|mps|cuda(:[0-9]+)?)$")]
    num_threads: Annotated[StrictInt, Field(ge=0)]  # 0: $DIGIT_RECOGNIZER_THREADS, else every available core
    deterministic: StrictBool  # CUDA: deterministic kernels, no cuDNN autotuner (the CPU always is)
    precision: Literal[PRECISIONS]  # type: ignore[valid-type]  # auto: bfloat16 where the hardware has it natively
    held_out_curve_every: Annotated[StrictInt, Field(ge=0)]  # score the held-out fold for the curves; 0 = never


class PseudoLabelParams(_Section):
    architectures: list[Literal[ARCHITECTURE_NAMES]]  # type: ignore[valid-type]  # second round; [] = off
    teachers: Annotated[list[Literal[ARCHITECTURE_NAMES]], Field(min_length=1)]  # type: ignore[valid-type]
    threshold: Annotated[Number, Field(gt=0, le=1)]  # the teachers' mean probability a test digit needs


class EnsembleParams(_Section):
    method: Literal[ENSEMBLE_METHODS]  # type: ignore[valid-type]
    stacking_c: Annotated[Number, Field(gt=0)]


class ReportParams(_Section):
    images: Annotated[StrictInt, Field(ge=1, le=400)]  # digits per picture grid
    seed: Int


class Params(_Section):
    data: DataParams
    cv: CvParams
    architectures: Annotated[list[Literal[ARCHITECTURE_NAMES]], Field(min_length=1)]  # type: ignore[valid-type]
    train: TrainParams
    models: dict[str, dict[str, Any]]
    pseudo_label: PseudoLabelParams
    ensemble: EnsembleParams
    report: ReportParams
    _recipes: dict[str, Recipe] = PrivateAttr(default_factory=dict)  # each listed architecture's, validated once

    def recipe(self, name: str) -> Recipe:
        """The validated recipe of a listed architecture."""
        if name not in self._recipes:
            raise UserError(f"architectures does not list {name!r} ({', '.join(self.architectures)})")
        return self._recipes[name]

    @property
    def ensemble_members(self) -> list[str]:
        """What the ensemble combines: every architecture, then each second-round (pseudo-labelled) one."""
        from digit_recognizer.paths import ensemble_members

        return ensemble_members(self.architectures, self.pseudo_label.architectures)

    @model_check(mode="after")
    def _each_architecture_has_a_recipe(self) -> Params:
        duplicated = sorted({a for a in self.architectures if self.architectures.count(a) > 1})
        if duplicated:
            raise ValueError(f"architectures lists {', '.join(duplicated)} twice")
        missing = [a for a in self.architectures if a not in self.models]
        if missing:
            raise ValueError(f"architectures names {', '.join(missing)}, but models has no section for it")
        for key in ("architectures", "teachers"):
            unknown = [a for a in getattr(self.pseudo_label, key) if a not in self.architectures]
            if unknown:
                raise ValueError(f"pseudo_label.{key} names {', '.join(unknown)}, which architectures does not list")
        # a UserError (naming the recipe's key) passes through pydantic unchanged
        self._recipes = {name: recipe_from_params(name, self.models[name]) for name in self.architectures}
        return self


def validate_params(raw: Any, source: str = "params.yaml") -> Params:
    """Check the whole of params.yaml (each listed architecture's recipe too), once; return it typed."""
    try:
        return _validated(_PARAMS, raw)
    except UserError as error:
        raise UserError(f"{source}: {error}") from None


def load_params(path: str | Path = "params.yaml") -> Params:
    """Read params.yaml once and validate every key before any work; a mistake is one UserError naming the key."""
    try:
        with open(path) as f:
            raw = yaml.safe_load(f)
    except OSError as error:
        raise UserError(f"{path}: cannot be read ({os_reason(error)})") from None
    except yaml.YAMLError as error:
        raise UserError(f"{path} is not valid YAML: {str(error).splitlines()[0]}") from None
    return validate_params(raw, str(path))


_PARAMS = TypeAdapter(Params)


def _validated(adapter: TypeAdapter, raw: Any, *prefix: str):
    """adapter.validate_python(raw), its first complaint turned into 'the.dotted.key: what is wrong'."""
    try:
        return adapter.validate_python(raw)
    except ValidationError as error:
        first = error.errors()[0]
        key = ".".join(str(part) for part in (*prefix, *first["loc"]))
        message = first["msg"].removeprefix("Value error, ")
        if first["type"] in ("unexpected_keyword_argument", "extra_forbidden"):
            message = "unknown key"
        elif first["type"] == "missing":
            message = "missing"
        elif "input" in first and first["type"] not in ("value_error",):
            message = f"{first['input']!r}: {message}"
        more = f" (and {error.error_count() - 1} more)" if error.error_count() > 1 else ""
        raise UserError(f"{key or 'the file'}: {message}{more}") from None

"""params.yaml: every mistake a user makes is one line naming the key, before any stage does work."""

from __future__ import annotations

import copy
import subprocess
import sys

import pytest
import yaml

from digit_recognizer.errors import UserError
from digit_recognizer.params import ARCHITECTURE_NAMES, load_params, validate_params

from .conftest import REPO

DEFAULTS = yaml.safe_load((REPO / "params.yaml").read_text())


def edited(path: str, value) -> dict:
    """The project's params.yaml with one key set (value DELETE removes it)."""
    params = copy.deepcopy(DEFAULTS)
    *parents, last = path.split(".")
    section = params
    for key in parents:
        section = section[key]
    if value is DELETE:
        del section[last]
    else:
        section[last] = value
    return params


DELETE = object()
# key, value as YAML would give it, what the message must say
MISTAKES = {
    "lr written 1e-3 (YAML text)": ("models.cnn.lr", "1e-3", "models.cnn.lr: '1e-3' is not a number: YAML reads"),
    "zero epochs": ("models.lenet.epochs", 0, "models.lenet.epochs: 0: Input should be greater than or equal to 1"),
    "zero batch": ("models.mlp.batch_size", 0, "models.mlp.batch_size: 0: Input should be greater than or equal"),
    "float epochs": ("models.mlp.epochs", 2.5, "models.mlp.epochs: 2.5: Input should be a valid integer"),
    "boolean lr": ("models.mlp.lr", True, "models.mlp.lr: True is not a number"),
    "unknown recipe key": ("models.cnn.epoch", 3, "models.cnn.epoch: unknown key"),
    "optimizer typo": ("models.cnn.optimizer", "adm", "models.cnn.optimizer: 'adm': Input should be 'sgd'"),
    "val_fraction 1": ("models.cnn.val_fraction", 1.0, "models.cnn.val_fraction: 1.0: Input should be less than 1"),
    "patience without a split": ("models.cnn.patience", 3, "models.cnn: patience, restore_best"),
    "net not a mapping": ("models.cnn.net", [32, 64], "models.cnn.net: expected a mapping"),
    "missing models section": ("models.cnn3", DELETE, "architectures names cnn3, but models has no section"),
    "unknown architecture": ("architectures", ["cnn", "resnet"], "architectures.1: 'resnet': Input should be"),
    "architecture twice": ("architectures", ["cnn", "cnn"], "architectures lists cnn twice"),
    "no architectures": ("architectures", [], "architectures: []: List should have at least 1 item"),
    "fold id out of range": ("cv.fold_ids", [0, 1, 2, 3, 7], "cv: fold_ids must be [0, 1, 2, 3, 4] for folds: 5"),
    "one fold": ("cv.folds", 1, "cv.folds: 1: Input should be greater than or equal to 2"),
    "ensemble method typo": ("ensemble.method", "weigthed", "ensemble.method: 'weigthed': Input should be 'mean'"),
    "negative report images": ("report.images", -1, "report.images: -1: Input should be greater than or equal to 1"),
    "data.source null": ("data.source", None, "data.source: None: Input should be a valid string"),
    "data.source empty": ("data.source", "", "data.source: '': String should have at least 1 character"),
    "negative threads": ("train.num_threads", -2, "train.num_threads: -2: Input should be greater than or equal"),
    "device typo": ("train.device", "gpu", "train.device: 'gpu': String should match pattern"),
    "unknown section": ("trian", {"seed": 0}, "trian: unknown key"),
    "deterministic as text": (
        "train.deterministic",
        "yes",
        "train.deterministic: 'yes': Input should be a valid boolean",
    ),
    "pseudo-label teacher not trained": ("architectures", ["cnn", "lenet"], "pseudo_label.teachers names cnn3, which"),
    "pseudo-label threshold 0": (
        "pseudo_label.threshold",
        0,
        "pseudo_label.threshold: 0: Input should be greater than 0",
    ),
    "no teachers": ("pseudo_label.teachers", [], "pseudo_label.teachers: []: List should have at least 1 item"),
}


@pytest.mark.parametrize("case", MISTAKES, ids=list(MISTAKES))
def test_each_mistake_names_its_key(case):
    key, value, expected = MISTAKES[case]
    with pytest.raises(UserError) as raised:
        validate_params(edited(key, value))
    assert expected in str(raised.value) and "\n" not in str(raised.value)


def test_the_projects_params_are_valid():
    assert validate_params(copy.deepcopy(DEFAULTS)).model_dump() == DEFAULTS
    assert set(DEFAULTS["architectures"]) == set(ARCHITECTURE_NAMES)


def test_the_registry_and_the_schema_name_the_same_architectures():
    from digit_recognizer.models import ARCHITECTURES

    assert tuple(ARCHITECTURES) == ARCHITECTURE_NAMES


def test_broken_yaml_and_a_missing_file(tmp_path):
    (tmp_path / "params.yaml").write_text("data: [unclosed\n")
    with pytest.raises(UserError, match="is not valid YAML"):
        load_params(tmp_path / "params.yaml")
    with pytest.raises(UserError, match="cannot be read"):
        load_params(tmp_path / "missing.yaml")


def test_a_stage_stops_before_any_work(tmp_path):
    """The download stage with a bad models key: one line, exit 1, no data/raw written."""
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(edited("models.cnn.lr", "1e-3")))
    result = subprocess.run(
        [sys.executable, str(REPO / "stages" / "download.py")], cwd=tmp_path, capture_output=True, text=True
    )
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.startswith("error: params.yaml: models.cnn.lr: '1e-3' is not a number")
    assert not (tmp_path / "data").exists()


def test_a_second_round_needs_its_architecture_trained_first():
    params = edited("architectures", ["cnn", "cnn3"])
    params["pseudo_label"]["architectures"] = ["cnn", "lstm"]
    with pytest.raises(UserError, match=r"pseudo_label\.architectures names lstm, which architectures does not list"):
        validate_params(params)


@pytest.mark.slow
def test_dvc_exp_run_writes_params_yaml_back_unchanged(tmp_path):
    """`dvc exp run -S` rewrites params.yaml; written in DVC's own style, an unchanged value leaves no diff."""
    original = (REPO / "params.yaml").read_text()
    (tmp_path / "params.yaml").write_text(original)
    (tmp_path / "dvc.yaml").write_text(
        "stages:\n  s:\n    cmd: echo > out\n    params: [models.cnn]\n    outs: [out]\n"
    )
    for args in (["git", "init", "-q"], ["dvc", "init", "-q"], ["git", "add", "-A"], ["git", "commit", "-qm", "init"]):
        subprocess.run(args, cwd=tmp_path, check=True, capture_output=True)
    overrides = [f"models.cnn.lr={DEFAULTS['models']['cnn']['lr']}", "pseudo_label.architectures=[]"]
    overrides.append(f"architectures=[{','.join(DEFAULTS['architectures'])}]")
    command = ["dvc", "exp", "run", "-q", *(arg for o in overrides for arg in ("-S", o))]
    subprocess.run(command, cwd=tmp_path, check=True, capture_output=True)
    assert (tmp_path / "params.yaml").read_text() == original


def test_each_recipe_writes_out_what_it_trains_with():
    """The keys every recipe uses are in params.yaml, so that `dvc params diff` shows a change to any of them."""
    for name in DEFAULTS["architectures"]:
        recipe = DEFAULTS["models"][name]
        written = {"epochs", "batch_size", "optimizer", "lr", "schedule"}
        written |= {"onecycle": {"pct_start"}, "exponential": {"gamma"}}.get(recipe["schedule"], set())
        written |= {"momentum", "nesterov"} if recipe["optimizer"] == "sgd" else set()
        assert written <= set(recipe), f"models.{name} leaves out {sorted(written - set(recipe))}"


def test_the_documented_defaults_are_fit_configs():
    """docs/architectures.md's table of recipe keys gives FitConfig's own defaults, and names every key."""
    import dataclasses
    import re

    from digit_recognizer.params import FitConfig

    documented = {}
    page = (REPO / "docs" / "architectures.md").read_text()
    section = page.split("## A recipe")[1].split("\n## ")[0]
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        keys = re.findall(r"`(\w+)`", cells[0]) if line.startswith("| `") else []
        values = [v.strip().strip("`") for v in cells[1].split(",")] if len(cells) == 3 else []
        if keys and len(keys) == len(values):
            documented.update(zip(keys, values, strict=True))
    defaults = {field.name: field.default for field in dataclasses.fields(FitConfig)}
    assert set(documented) == set(defaults)
    for key, value in documented.items():
        assert yaml.safe_load(value) == defaults[key], key

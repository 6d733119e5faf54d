"""dvc.yaml's code deps are exactly what each stage imports from the project, so a code change re-runs every
stage whose output it can change (and no other)."""

from __future__ import annotations

import ast
import copy
import re
from pathlib import Path

import pytest
import yaml

from digit_recognizer.params import ARCHITECTURE_NAMES

from .conftest import REPO

PACKAGE = "digit_recognizer"
# The package's __init__ holds its docstring and version alone (bumping the version must not retrain every fold),
# and a subpackage's __init__ that is only a docstring changes no output either.
PACKAGE_INIT = f"src/{PACKAGE}/__init__.py"
ARCHITECTURE_FILE = re.compile(rf"src/{PACKAGE}/models/({'|'.join(ARCHITECTURE_NAMES)})\.py")


def module_file(root: Path, name: str) -> str | None:
    """'digit_recognizer.models.cnn' -> 'src/digit_recognizer/models/cnn.py'; None outside the package."""
    if name.split(".")[0] != PACKAGE:
        return None
    base = Path("src", *name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if (root / candidate).is_file():
            return candidate.as_posix()
    return None


def direct_imports(root: Path, file: str) -> set[str]:
    """The project's files that `file` imports, at the top or inside a function, and the packages around them."""
    found = set()
    for node in ast.walk(ast.parse((root / file).read_text())):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]  # a name may be a module
        for name in names:
            parts = name.split(".")
            for depth in range(1, len(parts) + 1):  # importing a.b.c runs a/__init__ and a/b/__init__ first
                module = module_file(root, ".".join(parts[:depth]))
                if module:
                    found.add(module)
    return found


def import_closure(root: Path, script: str) -> set[str]:
    """`script` and every project file it imports, directly or through another."""
    seen, todo = set(), [script]
    while todo:
        file = todo.pop()
        if file not in seen:
            seen.add(file)
            todo.extend(direct_imports(root, file) - seen)
    return {file for file in seen if file != PACKAGE_INIT and not docstring_only(root, file)}


def docstring_only(root: Path, file: str) -> bool:
    body = ast.parse((root / file).read_text()).body
    return len(body) == 1 and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)


def expanded_stages(pipeline: dict) -> dict[str, tuple[str, set[str]]]:
    """Each stage (a matrix stage once per architecture) -> (its script, the .py files its deps list)."""
    stages = {}
    for name, stage in pipeline["stages"].items():
        arches = ARCHITECTURE_NAMES if "matrix" in stage else (None,)
        for arch in arches:
            script = re.search(r"python (\S+\.py)", stage["cmd"]).group(1)
            deps = {str(dep).replace("${item.arch}", arch or "") for dep in stage.get("deps", [])}
            stages[f"{name}@{arch}" if arch else name] = (script, {d for d in deps if d.endswith(".py")})
    return stages


def dependency_problems(root: Path, pipeline: dict) -> list[str]:
    """One line per file a stage imports but does not list, or lists but no longer imports."""
    problems = []
    for name, (script, declared) in expanded_stages(pipeline).items():
        imported = import_closure(root, script)
        arch = name.partition("@")[2]
        # models/__init__.py registers every architecture, so a train stage imports all their files; it lists
        # its own alone, as an edit to cnn.py cannot change what lstm's folds learn
        others = {f for f in imported if (m := ARCHITECTURE_FILE.fullmatch(f)) and m.group(1) != arch}
        problems += [
            f"{name}: imports {file}, which dvc.yaml does not list" for file in sorted(imported - declared - others)
        ]
        problems += [f"{name}: lists {file}, which it does not import" for file in sorted(declared - imported)]
    return problems


@pytest.fixture(scope="module")
def pipeline() -> dict:
    return yaml.safe_load((REPO / "dvc.yaml").read_text())


def test_every_stage_lists_exactly_the_code_it_imports(pipeline):
    assert dependency_problems(REPO, pipeline) == []


def test_a_dep_removed_from_dvc_yaml_is_named(pipeline):
    broken = copy.deepcopy(pipeline)
    broken["stages"]["ensemble"]["deps"].remove("src/digit_recognizer/metrics.py")
    assert dependency_problems(REPO, broken) == [
        "ensemble: imports src/digit_recognizer/metrics.py, which dvc.yaml does not list"
    ]


def test_a_dep_no_longer_imported_is_named(pipeline):
    broken = copy.deepcopy(pipeline)
    broken["stages"]["download"]["deps"].append("src/digit_recognizer/report/plots.py")
    assert dependency_problems(REPO, broken) == [
        "download: lists src/digit_recognizer/report/plots.py, which it does not import"
    ]

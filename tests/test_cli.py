"""The command line itself: a version, and help text for every argument."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys

import pytest

from digit_recognizer import __version__
from digit_recognizer.cli import main as cli_main

EXPECTED_HELP = {
    "predict": ["pictures of one digit each", "--project PROJECT"],
    "serve": ["the address to listen on (default: 127.0.0.1)", "the port to listen on (default: 8000)"],
    "submit": [
        "the CSV to submit (default: submissions/submission.csv)",
        "(default: digit-recognizer)",
        "the workspace's `dvc exp` experiment if it holds one, the git commit, and the ensemble's CV accuracy",
        "--wait [SECONDS]",
    ],
    "compare": ["significance level of the verdict (default: 0.05)", "--project PROJECT"],
    "scores": ["--project PROJECT"],
    "leaderboard": ["--project PROJECT", "(default: digit-recognizer)"],
    "repro": ["stages at once on the local cluster", "CPU threads per stage", "a running Dask scheduler", "--pull"],
}


def help_of(command: str, capsys) -> str:
    with pytest.raises(SystemExit) as exited:
        cli_main([command, "--help"])
    assert exited.value.code == 0
    return capsys.readouterr().out


def test_version(capsys):
    with pytest.raises(SystemExit) as exited:
        cli_main(["--version"])
    assert exited.value.code == 0 and capsys.readouterr().out.strip() == f"digit-recognizer {__version__}"


@pytest.mark.parametrize("command", EXPECTED_HELP)
def test_every_argument_has_help(command, capsys):
    text = " ".join(help_of(command, capsys).split())  # argparse wraps to the terminal's width
    for fragment in EXPECTED_HELP[command]:
        assert fragment in text
    sections = help_of(command, capsys).split("\n\n")
    arguments = [line for s in sections if s.startswith(("positional", "options")) for line in s.splitlines()[1:]]
    entries = [line for line in arguments if re.match(r"  \S", line)]  # an argument's first line
    bare = [line.strip() for line in entries if not re.match(r"  \S.* {2,}\S", line)]
    followed = {
        line.strip() for i, line in enumerate(arguments[:-1]) if re.match(r" {4,}\S", arguments[i + 1])
    }  # a long name with its help on the next line
    assert [line for line in bare if line not in followed] == [], f"{command}: arguments without help"


# What each command that needs no trained model runs on: none of it may import torch (a second or more of start)
TORCH_FREE = [
    "digit_recognizer.cli",
    "digit_recognizer.report.scores",
    "digit_recognizer.report.compare",
    "digit_recognizer.kaggle.submit",
    "digit_recognizer.kaggle.leaderboard",
    "digit_recognizer.parallel.run",
    "digit_recognizer.data.download",
    "digit_recognizer.data.prepare",
    "digit_recognizer.ensemble.combine",
    "digit_recognizer.report.plots",
]


def test_commands_that_need_no_model_import_no_torch():
    code = (
        f"import sys; import {', '.join(TORCH_FREE)}; print(sorted(m for m in ('torch', 'pandas') if m in sys.modules))"
    )
    imported = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "torch" not in imported


@pytest.mark.parametrize(("command", "extra", "module"), [("serve", "serve", "fastapi"), ("repro", "parallel", "dask")])
def test_a_command_whose_extra_is_missing_names_the_pip_command(command, extra, module, monkeypatch, capsys):
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == module else find_spec(name, *a))
    assert cli_main([command]) == 1
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and f'pip install -e ".[{extra}]"' in error and f"not installed: {module}" in error


def test_a_closed_pipe_ends_a_command_quietly(tmp_path):
    """`digit-recognizer scores | head -1`: the reader leaves after one line; no BrokenPipeError, exit 0."""
    import json

    import yaml

    from .conftest import REPO

    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["architectures"], params["pseudo_label"]["teachers"] = ["lenet"], ["lenet"]
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    (tmp_path / "dvc.yaml").write_text("stages: {}\n")
    scores = {"cv_accuracy": 0.98, "cv_accuracy_se": 0.001, "cv_accuracy_std": 0.002, "cv_log_loss": 0.07, "weight": 1}
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "metrics.json").write_text(json.dumps({"lenet": scores, "ensemble": scores}))
    command = [sys.executable, "-m", "digit_recognizer.cli", "scores", "--project", str(tmp_path)]
    assert subprocess.run(command, capture_output=True, check=True).stdout  # it prints a table
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    process.stdout.close()  # the reader is gone before the first line
    assert process.wait(timeout=60) == 0
    assert process.stderr.read() == b""

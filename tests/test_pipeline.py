"""The DVC pipeline end to end in a temporary git repo on a tiny configuration, and the experiment workflow."""

from __future__ import annotations

import html
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from digit_recognizer.data.prepare import read_submission

from .conftest import AVX2_ONLY, REPO, TINY_MODELS, make_tiny_project, run

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module", autouse=True)
def cpu_without_native_bfloat16():
    """Every stage runs as on a CPU without native bfloat16 (most laptops), whatever this host is: the precision
    choice, float32 training and the LSTM are tested end to end on the path most users take."""
    with pytest.MonkeyPatch.context() as patch:
        for name, value in AVX2_ONLY.items():
            patch.setenv(name, value)
        yield


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """A copy of this repo's pipeline with tiny params, run once with `dvc repro` and committed."""
    root = make_tiny_project(tmp_path_factory.mktemp("project"))
    run("dvc", "repro", cwd=root)
    run("git", "add", "-A", cwd=root)
    run("git", "commit", "-qm", "tiny pipeline: results", cwd=root)
    return root


def sample_test_rows(project: Path) -> int:
    """How many of the embedded sample's 5,000 digits the project's params.yaml holds out as test.csv."""
    return yaml.safe_load((project / "params.yaml").read_text())["data"]["sample_test_rows"]


def test_repro_writes_a_valid_submission_and_metrics(project):
    test_rows = sample_test_rows(project)
    labels = read_submission(project / "submissions" / "submission.csv", n_rows=test_rows)
    answers = read_submission(project / "data" / "raw" / "answers.csv", n_rows=test_rows)
    metrics = json.loads((project / "data" / "metrics.json").read_text())
    assert set(metrics) == {"ensemble", *TINY_MODELS}
    for scores in metrics.values():
        assert set(scores["fold_accuracy"]) == {"0", "1"}
        assert 0.1 < scores["cv_accuracy"] <= 1
    # the sample's answer key scores the submission as Kaggle's leaderboard would
    assert metrics["ensemble"]["sample_leaderboard_accuracy"] == pytest.approx((labels == answers).mean())
    weights = [metrics[name]["weight"] for name in TINY_MODELS]
    assert sum(weights) == pytest.approx(1, abs=1e-3) and min(weights) >= 0
    ensemble_test = np.load(project / "data" / "ensemble" / "test.npy")
    np.testing.assert_array_equal(ensemble_test.argmax(1), labels)
    for name in TINY_MODELS:
        for fold in (0, 1):
            checkpoint = torch.load(project / "data" / "train" / f"{name}-{fold}" / "model.pt")
            assert checkpoint["precision"] == "float32"  # train.precision: auto, on a CPU without native bfloat16
            timing = json.loads((project / "data" / "timings" / f"{name}-{fold}.json").read_text())
            assert timing["precision"] == "float32"
    assert "up to date" in run("dvc", "status", cwd=project)


def test_scores_fit_a_terminal_and_agree_with_the_metrics(project):
    metrics = json.loads((project / "data" / "metrics.json").read_text())
    table, side_by_side = run("digit-recognizer", "scores", cwd=project / "data").split("\n\n")  # from a subfolder
    lines = table.splitlines()
    assert len(lines) == 1 + len(TINY_MODELS) + 1 and max(len(line) for line in lines) <= 100
    cv_row, leaderboard_row = side_by_side.splitlines()[1:3]  # below the architectures' names
    assert cv_row.split()[-1] == f"{metrics['ensemble']['cv_accuracy']:.3%}"
    assert leaderboard_row.startswith("sample leaderboard")
    assert leaderboard_row.split()[-1] == f"{metrics['ensemble']['sample_leaderboard_accuracy']:.3%}"
    rows = {line.split()[0]: line.split() for line in lines[1:]}
    for name in [*TINY_MODELS, "ensemble"]:
        assert rows[name][1] == f"{metrics[name]['cv_accuracy']:.3%}"
        assert rows[name][2] == f"{metrics[name]['cv_accuracy_se']:.3%}"
    assert rows["cnn"][-1].replace(",", "").isdigit()  # img/s, from data/timings
    markdown = run("digit-recognizer", "scores", "--markdown", cwd=project).split("\n\n")[0].splitlines()
    assert markdown[0].startswith("| ") and len(markdown) == len(lines) + 1


def test_forced_retrain_that_reproduces_its_predictions_reruns_nothing_downstream(project):
    lock_before = yaml.safe_load((project / "dvc.lock").read_text())
    timing = project / "data" / "timings" / "mlp-0.json"
    timing.unlink()
    output = run("dvc", "repro", "-f", "train@mlp-0", cwd=project)  # also re-runs download and prepare
    assert "Running stage 'train@mlp-0'" in output
    assert "train mlp-0: device cpu, 2 CPU threads, precision float32, this CPU has no native bfloat16 (AVX2)" in output
    assert json.loads(timing.read_text())["train_seconds"] > 0  # it did train again, and said how long
    lock_after = yaml.safe_load((project / "dvc.lock").read_text())
    assert lock_after["stages"]["train@mlp-0"]["outs"] == lock_before["stages"]["train@mlp-0"]["outs"]
    assert json.loads(run("dvc", "status", "--json", cwd=project)) == {}  # ensemble and report: up to date


def test_leftovers_of_a_killed_stage_change_no_hash_and_are_swept(project):
    debris = project / "data" / "train" / ".cnn-0.x1y2z3.tmp"
    debris.mkdir()
    (debris / "model.pt").write_bytes(b"half a model")
    assert json.loads(run("dvc", "status", "--json", cwd=project)) == {}  # .dvcignore: not in any hash
    run("dvc", "repro", "-f", "-s", "train@cnn-0", cwd=project)
    assert not debris.exists()


@pytest.mark.parametrize("signame, word", [("SIGINT", "interrupted"), ("SIGTERM", "terminated")])
def test_a_signal_outside_run_stage_ends_the_stage_without_raising(signame, word):
    # An exception raised inside a callback from torch's C++ code aborts the process (pybind11's `terminate
    # called ... error_already_set`), so outside run_stage nothing may be raised, not even to a catch-all.
    code = (
        "import os, signal, time\n"
        "from digit_recognizer.stage import run_stage\n"
        "try:\n"
        f"    os.kill(os.getpid(), signal.{signame})\n"
        "    time.sleep(5)\n"
        "except BaseException as caught:\n"
        "    print('raised', type(caught).__name__)\n"
        "print('carried on')\n"
    )
    ended = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert ended.stderr == word + "\n"
    assert ended.stdout == ""  # neither "raised" nor "carried on"
    assert ended.returncode == -getattr(signal, signame)  # killed by the signal, as Python ends on Ctrl-C


def test_a_stage_ends_the_process_when_its_main_returns():
    """No interpreter shutdown after the stage (its outputs are written and closed): nothing after it runs."""
    code = "from digit_recognizer.stage import run_stage\nrun_stage(lambda: print('main ran'))\nprint('carried on')\n"
    ended = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert ended.returncode == 0 and ended.stderr == ""
    assert ended.stdout.splitlines()[0] == "main ran" and "peak memory" in ended.stdout
    assert "carried on" not in ended.stdout


def test_sigterm_and_ctrl_c_end_a_stage_in_one_line_and_clean_up(project):
    import time

    params_path = project / "params.yaml"
    original = params_path.read_text()
    params = yaml.safe_load(original)
    params["models"]["cnn"].update(epochs=500, patience=0)  # long enough to be killed while training
    params_path.write_text(yaml.safe_dump(params, sort_keys=False))
    try:
        # exit status 143 from run_stage; Ctrl-C during the imports ends as Python does, killed by SIGINT (-2)
        for signum, word, status in ((signal.SIGTERM, "terminated", 143), (signal.SIGINT, "interrupted", -2)):
            stage = subprocess.Popen(
                [sys.executable, "stages/train.py", "--arch", "cnn", "--fold", "1"],
                cwd=project, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            )  # fmt: skip
            try:
                if signum == signal.SIGTERM:
                    assert "device" in stage.stdout.readline()  # imports done
                    assert "epoch 1/" in stage.stdout.readline()  # training: an epoch is done
                else:
                    time.sleep(0.3)  # torch is still importing
                stage.send_signal(signum)
                _, stderr = stage.communicate(timeout=60)
            finally:
                stage.kill()  # a stage that outlived the test would hold the project for the next ones
            assert stderr.strip().splitlines()[-1] == word and "Traceback" not in stderr, stderr
            assert stage.returncode == status
            assert not list((project / "data" / "train").glob(".cnn-1.*"))  # no half-written output left
    finally:
        params_path.write_text(original)
    assert json.loads(run("dvc", "status", "--json", cwd=project)) == {}  # cnn-1's output is untouched


def test_a_crash_while_writing_the_ensemble_leaves_the_old_outputs(project, monkeypatch):
    from digit_recognizer.ensemble import combine as ensemble

    outputs = [project / "submissions" / "submission.csv", project / "data" / "metrics.json"]
    before = [path.read_bytes() for path in outputs]
    combiner_before = (project / "data" / "ensemble" / "combiner.json").read_bytes()

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(ensemble, "write_submission", crash)
    params = yaml.safe_load((project / "params.yaml").read_text())
    with pytest.raises(OSError, match="disk full"):
        ensemble.run_ensemble(
            params["architectures"], "mean", 1.0,
            prepared_dir=project / "data" / "prepared", train_dir=project / "data" / "train",
            out_dir=project / "data" / "ensemble", submission=outputs[0],
            sample_submission=project / "data" / "raw" / "sample_submission.csv", metrics_path=outputs[1],
        )  # fmt: skip
    assert [path.read_bytes() for path in outputs] == before
    assert (project / "data" / "ensemble" / "combiner.json").read_bytes() == combiner_before
    leftovers = [p.name for folder in (project / "data", project / "submissions") for p in folder.glob(".*.tmp")]
    assert leftovers == []


def test_report_files_and_dvc_plots_page(project):
    report = project / "data" / "report"
    curves = (report / "learning_curves.csv").read_text().splitlines()
    assert curves[0] == "architecture,fold,split,epoch,loss,accuracy"
    params = yaml.safe_load((project / "params.yaml").read_text())
    models, every = params["models"], params["train"]["held_out_curve_every"]
    assert models["cnn"]["val_fraction"]  # the tiny cnn early-stops on an inner validation split
    epochs = {name: models[name]["epochs"] for name in TINY_MODELS}
    held_out = {name: [e for e in range(1, n + 1) if e % every == 0 or e == n] for name, n in epochs.items()}
    points = {
        name: epochs[name] * (2 if models[name].get("val_fraction") else 1) + len(held_out[name]) for name in epochs
    }
    assert len(curves) == 1 + sum(points.values()) * 2  # one row per (arch, fold, split, epoch), 2 folds
    rows = [line.split(",") for line in curves[1:]]
    assert {row[2] for row in rows} == {"train", "val", "held_out"}
    # every fifth epoch and the last: cnn's held-out fold is scored after its epoch 2 only, its training every epoch
    assert {int(row[3]) for row in rows if row[0] == "cnn" and row[2] == "held_out"} == {2}
    assert {int(row[3]) for row in rows if row[0] == "cnn" and row[2] == "train"} == {1, 2}
    confusion = np.loadtxt(report / "confusion.csv", delimiter=",", skiprows=1, dtype=int)
    train_rows = 5000 - sample_test_rows(project)
    assert confusion.shape == (train_rows, 2)
    counts = np.loadtxt(report / "label_distribution.csv", delimiter=",", skiprows=1, dtype=int)
    assert counts[:, 1].tolist() == [train_rows // 10] * 10  # the sample is stratified
    for picture in ("architectures", "train_digits", "confidently_wrong", "least_confident_test"):
        assert (report / f"{picture}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    run("dvc", "plots", "show", "-o", "plots-page", cwd=project)
    page = (project / "plots-page" / "index.html").read_text()
    head, _, body = page.rpartition("</head>")  # the inlined JavaScript holds the string "</head>" too
    assert body.count("vegaEmbed(") == 5 and body.count("<img") == 4
    assert "cdn.jsdelivr" not in page and "window.vegaEmbed=" in head  # vega is inlined: no network needed


def test_changing_one_architecture_reruns_only_its_folds(project):
    params_path = project / "params.yaml"
    original = params_path.read_text()
    params = yaml.safe_load(original)
    params["models"]["lenet"]["lr"] = 0.002
    params_path.write_text(yaml.safe_dump(params, sort_keys=False))
    try:
        status = json.loads(run("dvc", "status", "--json", cwd=project))
    finally:
        params_path.write_text(original)
    # only lenet's folds are stale; the ensemble follows once their outputs actually change
    assert sorted(status) == ["train@lenet-0", "train@lenet-1"]


def test_experiment_shows_which_architecture_moved(project):
    output = run("dvc", "exp", "run", "-S", "models.lenet.epochs=2", cwd=project)
    # lenet's folds, then what combines them; nothing else (the second round is off: no stage at all)
    assert re.findall(r"Running stage '([^']+)'", output) == ["train@lenet-0", "train@lenet-1", "ensemble", "report"]
    params_diff = json.loads(run("dvc", "params", "diff", "--json", cwd=project))
    assert list(params_diff["params.yaml"]) == ["models.lenet.epochs"]
    assert params_diff["params.yaml"]["models.lenet.epochs"]["new"] == 2
    metrics_diff = json.loads(run("dvc", "metrics", "diff", "--json", cwd=project))["data/metrics.json"]
    assert "lenet.cv_accuracy" in metrics_diff and "ensemble.cv_accuracy" in metrics_diff
    assert not any(key.startswith(("mlp.", "cnn.", "cnn3.", "lstm.")) for key in metrics_diff if "weight" not in key)
    shown = run(
        "dvc", "exp", "show", "--csv", "--keep", "models.lenet.epochs", "--keep", "lenet.cv_accuracy", cwd=project
    )
    assert "models.lenet.epochs" in shown and "lenet.cv_accuracy" in shown
    # the report compares the experiment (workspace) with the committed run, side by side
    run("dvc", "plots", "diff", "HEAD", "-o", "plots-diff", cwd=project)
    page = (project / "plots-diff" / "index.html").read_text()
    assert '"rev": "HEAD"' in page and '"rev": "workspace"' in page


def parse_comparison(output: str) -> dict[str, dict]:
    """`digit-recognizer compare`'s table -> {name: {a, b, fixes, breaks, p, verdict}}."""
    rows = {}
    for line in output.splitlines():
        cells = line.split()
        if len(cells) >= 7 and cells[1].endswith("%") and cells[2].endswith("%"):
            a, b, fixes, breaks, p = cells[1:6]
            rows[cells[0]] = {
                "a": float(a[:-1]) / 100, "b": float(b[:-1]) / 100, "fixes": int(fixes), "breaks": int(breaks),
                "p": float(p), "verdict": " ".join(cells[6:]),
            }  # fmt: skip
    return rows


def test_compare_reads_both_experiments_row_by_row(project):
    run("dvc", "exp", "run", "-n", "lenet-3-epochs", "-S", "models.lenet.epochs=3", cwd=project)
    output = run("digit-recognizer", "compare", "HEAD", "lenet-3-epochs", cwd=project)
    rows = parse_comparison(output)
    assert list(rows) == [*TINY_MODELS, "ensemble"]
    train_rows = 5000 - sample_test_rows(project)
    # only lenet re-trained: its predictions moved, every other architecture's are the cached ones
    assert rows["lenet"]["fixes"] + rows["lenet"]["breaks"] > 0
    for name in ("lstm", "cnn3", "mlp", "cnn"):
        assert rows[name]["fixes"] == rows[name]["breaks"] == 0 and rows[name]["verdict"] == "identical"
    # the row counts agree with the accuracies, and both sides' accuracies with their own metrics files
    committed = json.loads(run("git", "show", "HEAD:data/metrics.json", cwd=project))
    experiment = json.loads((project / "data" / "metrics.json").read_text())  # dvc exp run leaves it here
    for name in ("lenet", "ensemble"):
        row = rows[name]
        assert row["b"] - row["a"] == pytest.approx((row["fixes"] - row["breaks"]) / train_rows, abs=1e-4)
        assert row["a"] == pytest.approx(committed[name]["cv_accuracy"], abs=1e-5)
        assert row["b"] == pytest.approx(experiment[name]["cv_accuracy"], abs=1e-5)
    assert "ensemble: " in output.splitlines()[-1]
    # the workspace holds the experiment's results, so comparing it with the experiment finds nothing
    same = parse_comparison(run("digit-recognizer", "compare", "lenet-3-epochs", "workspace", cwd=project))
    assert all(row["verdict"] == "identical" for row in same.values())


def test_compare_says_in_one_line_when_a_side_is_not_in_the_cache(project, tmp_path):
    clone = tmp_path / "clone"
    run("git", "clone", "-q", str(project), str(clone), cwd=tmp_path)  # a fresh clone: no DVC cache
    result = subprocess.run(["digit-recognizer", "compare"], cwd=clone, capture_output=True, text=True)
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert result.stderr.startswith("error: HEAD: data/") and "dvc pull" in result.stderr
    result = subprocess.run(["digit-recognizer", "compare", "no-such-exp"], cwd=clone, capture_output=True, text=True)
    assert result.returncode == 1 and "neither a git revision nor a `dvc exp` experiment" in result.stderr


CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
NO_NETWORK = ["--host-resolver-rules=MAP * ~NOTFOUND", "--proxy-server=http://127.0.0.1:9"]  # nothing resolves
# Appended to the page DVC writes: records script errors and what rendered into <pre id="probe">.
PROBE = """<script>
  window.probeErrors = [];
  window.addEventListener("error", (e) => window.probeErrors.push(String(e.message || e.target.src)), true);
  window.addEventListener("unhandledrejection", (e) => window.probeErrors.push(String(e.reason)));
  setTimeout(() => {
    const images = [...document.images];
    const probe = document.createElement("pre");
    probe.id = "probe";
    probe.textContent = JSON.stringify({
      errors: window.probeErrors,
      charts: document.querySelectorAll(".vega-embed svg.marks, .vega-embed canvas.marks").length,
      images: images.length,
      broken_images: images.filter((img) => !img.complete || img.naturalWidth === 0).map((img) => img.src),
      page_width: document.documentElement.scrollWidth,  // wider than the window: a horizontal scrollbar
      chart_inputs: document.querySelectorAll(".vega-embed input").length,  // e.g. an unlabelled checkbox
    });
    document.body.appendChild(probe);
  }, 3000);
</script>"""


def chromium() -> str | None:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        message = "needs Debian's chromium (.ci/run installs it)"
        if os.environ.get("REQUIRE_BROWSER"):
            pytest.fail(message)
        pytest.skip(message)
    return found


def test_dvc_plots_page_renders_with_no_network(project, tmp_path):
    browser = chromium()
    run("dvc", "plots", "show", "-o", str(tmp_path / "page"), cwd=project)  # the project's own page template
    index = tmp_path / "page" / "index.html"
    before, _, after = index.read_text().rpartition("</body>")  # the last one: the inlined bundle quotes the tag
    index.write_text(before + PROBE + "</body>" + after)
    page = index.as_uri()
    flags = [*CHROMIUM_FLAGS, *NO_NETWORK, "--allow-file-access-from-files", "--virtual-time-budget=20000"]
    dom = subprocess.run(
        [browser, *flags, "--window-size=1200,900", "--dump-dom", page], capture_output=True, text=True, timeout=120
    ).stdout
    probe = json.loads(html.unescape(re.search(r'<pre id="probe">(.*?)</pre>', dom, re.S).group(1)))
    assert probe["errors"] == []
    assert probe["charts"] == 5 and probe["images"] == 4 and probe["broken_images"] == []
    assert probe["page_width"] <= 1200 and probe["chart_inputs"] == 0  # fits a laptop's window, no stray controls
    for width, height in ((1200, 4200), (390, 6000)):  # a laptop's window and a phone's
        screenshot = tmp_path / f"report-{width}.png"
        subprocess.run(
            [browser, *flags, f"--window-size={width},{height}", f"--screenshot={screenshot}", page],
            capture_output=True, timeout=120, check=True,
        )  # fmt: skip
        assert screenshot.stat().st_size > 50_000  # a page of charts and digits, not a blank one


def test_pseudo_labelling_adds_second_round_members_without_retraining_the_first(project):
    output = run("dvc", "exp", "run", "-n", "pseudo-cnn", "-S", "pseudo_label.architectures=[cnn]", cwd=project)
    assert "Running stage 'train_pseudo@cnn-0'" in output and "Running stage 'train_pseudo@cnn-1'" in output
    assert "Running stage 'train@" not in output  # the first round is cached
    metrics = json.loads((project / "data" / "metrics.json").read_text())
    assert set(metrics) == {"ensemble", *TINY_MODELS, "cnn+pseudo"}
    test_rows = sample_test_rows(project)
    for fold in (0, 1):
        run_metrics = json.loads((project / "data" / "pseudo" / f"cnn-{fold}" / "metrics.json").read_text())
        picked = re.search(rf"train cnn\+pseudo-{fold}: ([0-9,]+) of {test_rows:,} test digits pseudo-labelled", output)
        assert run_metrics["pseudo_rows"] == int(picked.group(1).replace(",", "")) <= test_rows  # tiny teachers: few
    combiner = json.loads((project / "data" / "ensemble" / "combiner.json").read_text())
    assert combiner["architectures"][-1] == "cnn+pseudo"
    assert combiner["models"]["cnn+pseudo"] == ["data/pseudo/cnn-0/model.pt", "data/pseudo/cnn-1/model.pt"]
    rows = parse_comparison(run("digit-recognizer", "compare", "HEAD", "pseudo-cnn", cwd=project))
    assert rows["cnn"]["verdict"] == "identical" and "cnn+pseudo" not in rows  # HEAD has no second round


def queue_tasks(project: Path) -> dict[str, str]:
    """`dvc queue status` as {experiment name: status}."""
    tasks = {}
    for line in run("dvc", "queue", "status", cwd=project).splitlines()[1:]:
        cells = line.split()
        if len(cells) >= 4 and cells[-1] in ("Queued", "Running", "Success", "Failed"):
            tasks[cells[1]] = cells[-1]
    return tasks


def test_queued_experiments_run_in_parallel_sharing_the_cores(project):
    import time

    for name, lr in (("queued-a", "0.002"), ("queued-b", "0.004")):
        run("dvc", "exp", "run", "--queue", "-n", name, "-S", f"models.mlp.lr={lr}", "-S", "train.num_threads=0",
            cwd=project)  # fmt: skip
    env = {**os.environ, "DIGIT_RECOGNIZER_THREADS": "1"}  # two jobs, one thread each
    subprocess.run(["dvc", "queue", "start", "--jobs", "2"], cwd=project, env=env, check=True, capture_output=True)
    deadline = time.monotonic() + 900
    while any(status in ("Queued", "Running") for status in queue_tasks(project).values()):
        assert time.monotonic() < deadline, run("dvc", "queue", "status", cwd=project)
        time.sleep(3)
    tasks = queue_tasks(project)
    assert tasks.get("queued-a") == tasks.get("queued-b") == "Success", run("dvc", "queue", "status", cwd=project)
    log = run("dvc", "queue", "logs", "queued-a", cwd=project)
    assert "device cpu, 1 CPU threads" in log  # the queue passed the environment to every stage
    shown = json.loads(run("dvc", "exp", "show", "--json", cwd=project))
    experiments = {
        exp["name"]: exp["revs"][0]["data"]
        for baseline in shown
        for exp in baseline.get("experiments") or []
        if exp.get("name") in ("queued-a", "queued-b")
    }
    assert set(experiments) == {"queued-a", "queued-b"}
    accuracies = set()
    for name, lr in (("queued-a", 0.002), ("queued-b", 0.004)):
        data = experiments[name]
        assert data["params"]["params.yaml"]["data"]["models"]["mlp"]["lr"] == lr
        metrics = data["metrics"]["data/metrics.json"]["data"]
        assert 0.1 < metrics["ensemble"]["cv_accuracy"] <= 1
        accuracies.add(metrics["mlp"]["cv_accuracy"])
    assert len(accuracies) == 2  # two experiments, two results


def test_a_teammate_reproduces_from_the_run_cache_with_no_training(project, tmp_path):
    """Clone A pushes its run-cache; clone B, at the commit before any results, gets them all with no training."""
    remote = tmp_path / "remote"
    # clone A as it stands after `dvc repro` at HEAD (earlier tests left experiments in the workspace): `dvc push`
    # sends the outputs that the workspace's dvc.lock names, and the run-cache entries of every run
    run("git", "checkout", "HEAD", "--", "params.yaml", "dvc.lock", "data/metrics.json", cwd=project)
    run("dvc", "checkout", "-q", cwd=project)
    run("dvc", "remote", "add", "--local", "-d", "team", str(remote), cwd=project)  # not in the shared config
    try:
        run("dvc", "push", "--run-cache", cwd=project)
    finally:
        run("dvc", "remote", "remove", "--local", "team", cwd=project)
    teammate = tmp_path / "teammate"
    run("git", "clone", "-q", str(project), str(teammate), cwd=tmp_path)
    first_commit = run("git", "rev-list", "--max-parents=0", "HEAD", cwd=teammate).strip()
    run("git", "checkout", "-q", first_commit, cwd=teammate)  # the code and params, no dvc.lock
    assert not (teammate / "dvc.lock").exists()
    run("dvc", "remote", "add", "--local", "-d", "team", str(remote), cwd=teammate)
    output = run("dvc", "repro", "--pull", cwd=teammate)
    # every stage came from the run-cache but the ensemble (seconds): the run-cache never restores a stage with
    # an output kept out of the cache, and data/metrics.json is kept in git (cache: false) for `dvc exp show`
    assert re.findall(r"Running stage '([^']+)'", output) == ["ensemble"], output
    restored = re.findall(r"Stage '([^']+)' is cached - skipping run", output)
    assert {f"train@{arch}-{fold}" for arch in TINY_MODELS for fold in (0, 1)} <= set(restored)
    committed_lock = yaml.safe_load(run("git", "show", "HEAD:dvc.lock", cwd=project))
    (submission,) = [o for o in committed_lock["stages"]["ensemble"]["outs"] if o["path"].endswith(".csv")]
    import hashlib

    assert hashlib.md5((teammate / submission["path"]).read_bytes()).hexdigest() == submission["md5"]
    assert "team" not in (teammate / ".dvc" / "config").read_text()  # the remote lives in config.local


def readme_loop() -> list[str]:
    """The commands of the README's experiment loop, as printed there (comments dropped)."""
    readme = (REPO / "README.md").read_text()
    block = readme.split("The loop, from a finished `dvc repro`", 1)[1].split("```bash\n", 1)[1].split("```", 1)[0]
    return [line.split("  #", 1)[0].strip() for line in block.splitlines() if line.strip()]


def test_the_readmes_loop_from_a_clone_whose_lock_was_made_elsewhere(project, tmp_path):
    clone = tmp_path / "clone"
    run("git", "clone", "-q", str(project), str(clone), cwd=tmp_path)
    run("dvc", "cache", "dir", "--local", str(project / ".dvc" / "cache"), cwd=clone)  # runs restore, not retrain
    # the committed dvc.lock as another machine would have written it: outputs this machine never produces
    lock = yaml.safe_load((clone / "dvc.lock").read_text())
    for name, stage in lock["stages"].items():
        for out in stage.get("outs", []) if name.startswith("train@") else []:
            out["md5"] = "0" * 32 + (".dir" if out["md5"].endswith(".dir") else "")
    (clone / "dvc.lock").write_text(yaml.safe_dump(lock, sort_keys=False))
    run("git", "commit", "-qam", "dvc.lock from another machine", cwd=clone)
    run("dvc", "repro", cwd=clone)  # the README's first command
    first_run = json.loads((clone / "data" / "metrics.json").read_text())
    failed = subprocess.run(
        ["digit-recognizer", "compare", "HEAD", "workspace"], cwd=clone, capture_output=True, text=True
    )
    assert failed.returncode == 1 and "dvc exp save -n baseline" in failed.stderr and "Error)" not in failed.stderr

    outputs = {}
    for line in readme_loop():
        outputs[line] = run(*shlex.split(line), cwd=clone)
    (exp_run,) = [line for line in outputs if line.startswith("dvc exp run")]
    ran = re.findall(r"Running stage '([^']+)'", outputs[exp_run])
    restored = re.findall(r"Stage '([^']+)' is cached - skipping run", outputs[exp_run])  # an earlier test's run
    assert set(ran + restored) == {"train@lenet-0", "train@lenet-1", "ensemble", "report"}
    compared = parse_comparison(outputs["digit-recognizer compare"])  # the saved baseline against lenet-2
    assert compared["lenet"]["fixes"] + compared["lenet"]["breaks"] > 0
    assert all(compared[name]["verdict"] == "identical" for name in ("lstm", "cnn3", "mlp", "cnn"))
    (shown,) = [out for line, out in outputs.items() if line.startswith("dvc exp show")]
    assert "baseline" in shown and "lenet-2" in shown and max(len(line) for line in shown.splitlines()) <= 80
    # after `dvc exp apply baseline`: nothing to re-run, and the scores are the first run's again
    assert json.loads(run("dvc", "status", "--json", cwd=clone)) == {}
    scores = {
        line.split()[0]: line.split()[1]
        for line in run("digit-recognizer", "scores", cwd=clone).split("\n\n")[0].splitlines()[1:]
    }
    assert scores == {name: f"{first_run[name]['cv_accuracy']:.3%}" for name in [*TINY_MODELS, "ensemble"]}
    assert scores["lenet"] != outputs["digit-recognizer scores"].split("lenet")[1].split()[0]  # lenet-2's, before

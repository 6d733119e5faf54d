"""`digit-recognizer repro`: stages at once on a local Dask cluster, DVC's bookkeeping intact (a tiny pipeline)."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from digit_recognizer.data.sample_data import write_sample_competition

from .conftest import make_tiny_project, run

pytestmark = pytest.mark.slow

ARCHITECTURES = ["mlp", "lenet"]
TRAIN_STAGES = [f"train@{arch}-{fold}" for arch in ARCHITECTURES for fold in (0, 1)]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    """The tiny pipeline, two architectures x 2 folds, committed and not run. train.num_threads is 0, so
    DIGIT_RECOGNIZER_THREADS decides; the report stage is left out (it only follows the ensemble, in the
    final `dvc repro`, and takes longer than the rest of the tiny run). data.source is a relative path,
    ../competition, which each task's checkout, elsewhere, reads from the project's folder."""
    base = tmp_path_factory.mktemp("tiny")
    write_sample_competition(base / "competition", test_rows=500, seed=0)
    root = base / "project"
    root.mkdir()
    make_tiny_project(root, architectures=ARCHITECTURES, num_threads=0)
    pipeline = yaml.safe_load((root / "dvc.yaml").read_text())
    del pipeline["stages"]["report"]
    pipeline.pop("plots")
    (root / "dvc.yaml").write_text(yaml.safe_dump(pipeline, sort_keys=False))
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["data"]["source"] = "../competition"
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    run("git", "commit", "-qam", "no report; the competition beside the project", cwd=root)
    return root


@pytest.fixture(scope="module")
def sequential(tiny, tmp_path_factory) -> Path:
    """A clone of the tiny project after `dvc repro` with one thread, as `--threads 1` gives each task."""
    project = clone(tiny, tmp_path_factory.mktemp("sequential") / "sequential")
    run_env = environment(project.parent / "tmp", DIGIT_RECOGNIZER_THREADS="1")
    subprocess.run(["dvc", "repro"], cwd=project, env=run_env, check=True, capture_output=True)
    return project


def clone(tiny: Path, dest: Path) -> Path:
    """A clone of the tiny project with a DVC cache of its own, and the competition beside it."""
    run("git", "clone", "-q", str(tiny), str(dest), cwd=dest.parent)
    if not (dest.parent / "competition").exists():
        (dest.parent / "competition").symlink_to(tiny.parent / "competition")
    return dest


def environment(tmp: Path, **extra: str) -> dict[str, str]:
    """This environment with a temporary folder of the test's own (where each task makes its checkout)."""
    tmp.mkdir(exist_ok=True)
    return {**os.environ, "TMPDIR": str(tmp), "DVC_NO_ANALYTICS": "1", **extra}


def parallel_repro(project: Path, tmp: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["digit-recognizer", "repro", *args],
        cwd=project,
        env=environment(tmp),
        capture_output=True,
        text=True,
        timeout=600,
    )


def succeeded(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 0, f"exit {result.returncode}:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
    return result.stdout


def progress(output: str) -> list[tuple[str, str, str]]:
    """The progress lines as (state, stage, detail), in order."""
    found = re.findall(
        r"^\s*\d+:\d\d  (queued|running|done|failed|not run|stopped)\s+(\S+(?: repro)?)(.*)$", output, re.M
    )
    return [(state, stage, detail.strip()) for state, stage, detail in found]


def most_at_once(lines: list[tuple[str, str, str]], prefix: str = "train@") -> int:
    running: set[str] = set()
    most = 0
    for state, stage, _ in lines:
        if not stage.startswith(prefix):
            continue
        if state == "running":
            running.add(stage)
        elif state in ("done", "failed", "stopped"):
            running.discard(stage)
        most = max(most, len(running))
    return most


def outputs(project: Path) -> dict[str, bytes]:
    """Every file of the pipeline's outputs (data/timings, a log of seconds, aside)."""
    files = [*project.joinpath("data").rglob("*"), *project.joinpath("submissions").rglob("*")]
    return {
        str(f.relative_to(project)): f.read_bytes()
        for f in files
        if f.is_file() and "timings" not in f.parts and f.name != ".gitignore"
    }


def leftovers(tmp: Path, project: Path) -> list[str]:
    """Checkouts, temporary outputs and processes that a run left behind."""
    found = [str(p) for p in tmp.iterdir() if not p.name.startswith("torchinductor_")]  # torch's, as in any run
    found += [str(p) for p in project.rglob(".*.tmp")] + [str(p) for p in project.rglob(".*.old")]
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if str(tmp).encode() in (proc / "cmdline").read_bytes():
                    found.append(f"process {proc.name}")
            except OSError:
                pass
    return found


def test_stages_at_once_give_what_a_sequential_repro_gives_bit_for_bit(tiny, sequential, tmp_path):
    at_once = clone(tiny, tmp_path / "at-once")
    # a dvc.lock from another machine: the folds' entries match their deps but name outputs in no cache here
    # (DVC would run such a stage again rather than look in the run-cache, in each checkout and at the end)
    lock = yaml.safe_load((sequential / "dvc.lock").read_text())
    for stage in TRAIN_STAGES:
        lock["stages"][stage]["outs"][0]["md5"] = f"{TRAIN_STAGES.index(stage):032x}.dir"
    (at_once / "dvc.lock").write_text(yaml.safe_dump(lock, sort_keys=False))
    run("git", "add", "dvc.lock", cwd=at_once)
    run("git", "commit", "-qm", "dvc.lock of another machine", cwd=at_once)
    output = succeeded(parallel_repro(at_once, tmp_path / "tmp", "--jobs", "2", "--threads", "1"))
    assert "dvc.lock: dropped the entries of" in output
    lines = progress(output)
    assert {stage for state, stage, _ in lines if state == "done"} >= {"download", "prepare", *TRAIN_STAGES}
    assert all("ran" in detail for state, stage, detail in lines if state == "done" and stage in TRAIN_STAGES)
    assert most_at_once(lines) == 2, output  # two folds trained side by side
    final = output[output.index("running  dvc repro") :]
    assert "Running stage 'train@" not in final and "Running stage 'prepare'" not in final, final
    for stage in TRAIN_STAGES:  # the final repro restored each fold from the run-cache
        assert f"Stage '{stage}' is cached - skipping run" in final
    assert "Running stage 'ensemble'" in final  # data/metrics.json is kept out of the cache: it runs here

    assert yaml.safe_load((at_once / "dvc.lock").read_text()) == yaml.safe_load((sequential / "dvc.lock").read_text())
    ours, theirs = outputs(at_once), outputs(sequential)
    assert sorted(ours) == sorted(theirs) and "submissions/submission.csv" in ours
    assert [name for name in ours if ours[name] != theirs[name]] == []
    assert json.loads(run("dvc", "status", "--json", cwd=at_once)) == {}
    log = (at_once / ".dvc" / "tmp" / "parallel" / "train@mlp-0.log").read_text()
    assert "device cpu, 1 CPU threads" in log  # each task's share of the cores reached the stage
    assert json.loads((at_once / "data" / "timings" / "lenet-1.json").read_text())["threads"] == 1
    assert leftovers(tmp_path / "tmp", at_once) == []

    again = succeeded(parallel_repro(at_once, tmp_path / "tmp", "--jobs", "2", "--threads", "1"))
    assert "0 stages to run" in again and "Running stage" not in again  # up to date: nothing to run
    assert outputs(at_once) == ours


def test_a_second_run_on_the_same_cache_trains_nothing(tiny, tmp_path):
    """Another clone (a teammate's workspace, an interrupted run's re-run) on a cache where every fold trained:
    each task comes from the run-cache, and so does every stage of the final repro but the ensemble."""
    first = clone(tiny, tmp_path / "first")
    subprocess.run(["dvc", "repro", "prepare"], cwd=first, check=True, capture_output=True)
    for stage in TRAIN_STAGES:  # trained one by one, as a sequential repro would
        subprocess.run(["dvc", "repro", "--single-item", stage], cwd=first, check=True, capture_output=True,
                       env=environment(tmp_path / "tmp-seq", DIGIT_RECOGNIZER_THREADS="1"))  # fmt: skip
    second = clone(tiny, tmp_path / "second")
    run("dvc", "cache", "dir", "--local", str(first / ".dvc" / "cache"), cwd=second)
    output = succeeded(parallel_repro(second, tmp_path / "tmp", "--jobs", "2", "--threads", "1"))
    restored = {stage for state, stage, detail in progress(output) if state == "done" and "run-cache" in detail}
    assert restored >= {"download", "prepare", *TRAIN_STAGES}, output
    assert re.findall(r"Running stage '([^']+)'", output) == ["ensemble"], output


def test_two_machines_share_results_through_a_dvc_remote(tiny, tmp_path):
    """--pull: each task has a cache of its own and pushes to the remote; the workspace's `dvc repro --pull`
    and a second clone's (a teammate's machine) restore every fold from it."""
    remote = tmp_path / "remote"
    machine_a = clone(tiny, tmp_path / "machine-a")
    run("dvc", "remote", "add", "--local", "-d", "team", str(remote), cwd=machine_a)
    output = succeeded(parallel_repro(machine_a, tmp_path / "tmp", "--jobs", "2", "--threads", "1", "--pull"))
    assert "sharing the DVC remote (--pull)" in output
    final = output[output.index("running  dvc repro") :]
    assert re.findall(r"Running stage '([^']+)'", final) == ["ensemble"], final
    machine_b = clone(tiny, tmp_path / "machine-b")
    run("dvc", "remote", "add", "--local", "-d", "team", str(remote), cwd=machine_b)
    teammate = run("dvc", "repro", "--pull", cwd=machine_b)
    assert re.findall(r"Running stage '([^']+)'", teammate) == ["ensemble"], teammate
    assert (machine_b / "submissions" / "submission.csv").read_bytes() == (
        machine_a / "submissions" / "submission.csv"
    ).read_bytes()
    assert leftovers(tmp_path / "tmp", machine_a) == []


def test_a_failed_stage_fails_the_run_and_its_siblings_stay_in_the_cache(tiny, tmp_path):
    project = clone(tiny, tmp_path / "project")
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["models"]["lenet"]["net"]["bogus"] = 1  # valid params; the network's constructor refuses it
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    result = parallel_repro(project, tmp_path / "tmp", "--jobs", "2", "--threads", "1")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "uncommitted changes: the stages run a snapshot" in result.stdout
    last = result.stderr.splitlines()[-1]  # after the failed stage's last lines, which hold its own error
    assert re.match(r"error: stage train@lenet-[01] failed \(exit status \d+\)", last), result.stderr
    assert "bogus" in result.stderr  # the log's last lines
    lines = progress(result.stdout)
    # mlp's folds are queued first; lenet's failure stops what is still running, so at least one mlp fold is done
    done = sorted(stage for state, stage, _ in lines if state == "done" and stage.startswith("train@mlp"))
    assert done, result.stdout
    assert "running  dvc repro" not in result.stdout and not (project / "dvc.lock").exists()  # workspace untouched
    assert leftovers(tmp_path / "tmp", project) == []
    # the folds that trained are in the run-cache: DVC restores them instead of training again
    for stage in done:
        resumed = run("dvc", "repro", stage, cwd=project)
        assert f"Stage '{stage}' is cached - skipping run" in resumed and "Running stage" not in resumed


def test_ctrl_c_stops_every_stage_and_leaves_nothing_behind(tiny, tmp_path):
    project = clone(tiny, tmp_path / "project")
    params = yaml.safe_load((project / "params.yaml").read_text())
    for arch in ARCHITECTURES:
        params["models"][arch]["epochs"] = 50_000  # hours: every stage that starts is still training at Ctrl-C
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    tmp = tmp_path / "tmp"
    process = subprocess.Popen(
        ["digit-recognizer", "repro", "--jobs", "2", "--threads", "1"],
        cwd=project,
        env=environment(tmp),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        # Ctrl-C's default action, as a terminal's foreground program has it: a test run started in the
        # background (`bash .ci/run &`) ignores SIGINT, and its children would inherit that
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    logs = project / ".dvc" / "tmp" / "parallel"

    def training() -> set[str]:  # the train stages whose log shows them past their set-up
        return {log.stem for log in logs.glob("train@*.log") if "CPU threads" in log.read_text()}

    deadline = time.monotonic() + 300
    while len(training()) < 2:  # two at once: which two is Dask's choice
        assert process.poll() is None and time.monotonic() < deadline, process.communicate()[0]
        time.sleep(0.5)
    time.sleep(2)
    running = training()
    process.send_signal(signal.SIGINT)
    output, _ = process.communicate(timeout=120)
    assert process.returncode == 130, output
    lines = progress(output)
    assert {stage for state, stage, _ in lines if state == "stopped"} == running, output
    assert not any(state == "done" and stage.startswith("train@") for state, stage, _ in lines), output
    assert "every stage stopped and removed its checkout" in output
    assert leftovers(tmp, project) == []
    assert len(run("git", "worktree", "list", cwd=project).splitlines()) == 1
    rwlock = project / ".dvc" / "tmp" / "rwlock"
    assert not rwlock.exists() or not any(json.loads(rwlock.read_text() or "{}").values())  # no lock held
    assert not (project / "dvc.lock").exists() and not (project / "data" / "train").exists()  # workspace untouched
    run("dvc", "status", cwd=project)  # DVC's repo lock is free


def processes_of(tmp: Path) -> list[int]:
    """This user's processes whose TMPDIR is `tmp`: one machine's, in these tests (in the order they started)."""
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit() and int(proc.name) != os.getpid():
            try:
                if f"TMPDIR={tmp}".encode() in (proc / "environ").read_bytes().split(b"\0"):
                    found.append(int(proc.name))
            except OSError:
                pass
    return sorted(found)


def kill(pids: list[int]) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def wait_for(what: str, value, seconds: float, alive: list[subprocess.Popen]):
    """Poll `value()` until it returns something (bounded); fail at once if one of `alive` has ended."""
    deadline = time.monotonic() + seconds
    while True:
        found = value()
        if found:
            return found
        ended = [" ".join(map(str, p.args[:2])) for p in alive if p.poll() is not None]
        assert not ended, f"{ended} ended while waiting for {what}"
        assert time.monotonic() < deadline, f"no {what} after {seconds} s"
        time.sleep(0.2)


def test_many_machines_a_dask_scheduler_two_workers_one_killed_mid_stage(tiny, sequential, tmp_path):
    """A real `dask scheduler` and two `dask worker`s on 127.0.0.1 (ports of the system's choosing), each in a
    folder of its own as if on a machine of its own, sharing results through a DVC remote (--pull). One worker
    and its stage's processes are killed (SIGKILL: the machine is gone) while it trains a fold; Dask runs that
    stage again on the other, and the run ends with the sequential run's submission."""
    project = clone(tiny, tmp_path / "project")
    run("dvc", "remote", "add", "--local", "-d", "team", str(tmp_path / "remote"), cwd=project)
    machines = {name: tmp_path / name for name in ("machine-a", "machine-b")}
    scheduler_file = tmp_path / "scheduler.json"
    started: dict[str, subprocess.Popen] = {}

    def start(name: str, args: list[str], folder: Path) -> subprocess.Popen:
        folder.mkdir(exist_ok=True)
        with open(tmp_path / f"{name}.log", "w") as log:  # each in a process group of its own
            started[name] = subprocess.Popen(
                args, cwd=folder, env=environment(folder / "tmp"), stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        return started[name]

    def scheduler_address() -> str | None:
        try:
            return json.loads(scheduler_file.read_text())["address"]
        except (OSError, ValueError, KeyError):
            return None

    try:
        start("scheduler", ["dask", "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                            "--scheduler-file", str(scheduler_file)], tmp_path / "scheduler")  # fmt: skip
        address = wait_for("scheduler file", scheduler_address, 60, list(started.values()))
        for name, folder in machines.items():
            start(name, ["dask", "worker", address, "--name", name, "--nthreads", "1", "--host", "127.0.0.1",
                         "--no-dashboard", "--local-directory", str(folder / "dask")], folder)  # fmt: skip
        from distributed import Client

        with Client(address, timeout=30) as client:
            client.wait_for_workers(2, timeout=120)

        with open(tmp_path / "repro.log", "w") as log:
            repro = subprocess.Popen(
                ["digit-recognizer", "repro", "--scheduler", address, "--pull", "--threads", "1"],
                cwd=project, env=environment(tmp_path / "tmp"), stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        started["repro"] = repro

        def training() -> tuple[str, str] | None:  # (machine, stage) of a fold's train.py running now
            for name, folder in machines.items():
                for pid in processes_of(folder / "tmp"):
                    try:
                        args = (Path("/proc") / str(pid) / "cmdline").read_bytes().decode().split("\0")
                    except OSError:
                        continue
                    if "stages/train.py" in args:
                        return name, f"train@{args[args.index('--arch') + 1]}-{args[args.index('--fold') + 1]}"
            return None

        victim, killed = wait_for("training fold", training, 300, list(started.values()))
        os.killpg(started[victim].pid, signal.SIGKILL)  # the worker and its nanny, before its stage can report
        kill(processes_of(machines[victim] / "tmp"))  # the stage's own session: dvc repro, train.py
        started.pop(victim).wait(timeout=30)
        repro.wait(timeout=420)
        output = (tmp_path / "repro.log").read_text()
        assert repro.returncode == 0, output
    finally:
        for process in started.values():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)
        for folder in [*machines.values(), tmp_path / "scheduler"]:
            kill(processes_of(folder / "tmp"))
        kill(processes_of(tmp_path / "tmp"))

    lines = progress(output)
    assert [state for state, stage, _ in lines if stage == killed].count("running") >= 2, output  # once more
    assert {stage for state, stage, _ in lines if state == "done"} >= {"download", "prepare", *TRAIN_STAGES}, output
    final = output[output.index("running  dvc repro") :]
    assert re.findall(r"Running stage '([^']+)'", final) == ["ensemble"], final  # the rest came from the remote
    submission = "submissions/submission.csv"
    assert (project / submission).read_bytes() == (sequential / submission).read_bytes()
    (survivor,) = set(machines) - {victim}
    assert [p.name for p in (machines[survivor] / "tmp").iterdir() if p.name.startswith("digit-recognizer")] == []

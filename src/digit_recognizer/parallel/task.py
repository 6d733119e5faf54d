"""One Dask task: stock `dvc repro <stage>` in a throwaway checkout of the pinned commit (on any worker)."""

from __future__ import annotations

import contextlib
import os
import queue
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from digit_recognizer import paths
from digit_recognizer.cores import available_cores
from digit_recognizer.errors import UserError
from digit_recognizer.parallel.plan import drop_lock_entries, git
from digit_recognizer.parallel.resources import gpu_pool, visible_gpus, worker_slots

TOPIC = "digit-recognizer-repro"
STOP_GRACE_SECONDS = 30  # after SIGINT, how long a stage has to clean up before SIGKILL
POLL_SECONDS = 1.0


@dataclass(frozen=True)
class TaskSpec:
    """Everything a worker needs to run one stage (picklable: it travels to other machines)."""

    stage: str
    commit: str
    run_id: str
    cache_dir: str | None  # the project's DVC cache (one machine, or a shared filesystem); None: --pull
    config_local: str  # the workspace's .dvc/config.local (remotes, credentials), "" when it has none
    log_file: str | None  # where the worker writes the stage's log; None: in its temporary folder
    threads: int | None  # DIGIT_RECOGNIZER_THREADS; None: the worker's cores divided by its task slots
    workspace: str  # the project's folder where the run started: relative data.source paths are read there
    stale: tuple[str, ...] = ()  # dvc.lock entries to drop in the checkout (Plan.stale)


@dataclass(frozen=True)
class StageResult:
    """A stage that finished: trained, or restored from the run-cache."""

    stage: str
    trained: bool
    seconds: float
    host: str
    log: str
    timings: dict[str, str] = field(default_factory=dict)  # data/timings/*.json that the stage wrote
    also_ran: list[str] = field(default_factory=list)  # upstream stages its checkout ran (not in the run-cache)


class StageFailed(Exception):
    """`dvc repro <stage>` ended with a non-zero status; carries the whole log."""

    def __init__(self, stage: str, returncode: int, log: str, host: str) -> None:
        super().__init__(stage, returncode, log, host)
        self.stage, self.returncode, self.log, self.host = stage, returncode, log, host

    def __str__(self) -> str:
        return f"stage {self.stage} failed (exit status {self.returncode})"


class StageNotDone(Exception):
    """The run ended a stage before it finished; nothing of it was kept."""

    def __init__(self, stage: str) -> None:
        super().__init__(stage)
        self.stage = stage


class StageSkipped(StageNotDone):
    """The run was stopping (a stage failed, or Ctrl-C) before this stage started."""


class StageStopped(StageNotDone):
    """Ctrl-C (or SIGTERM) stopped this stage while it ran."""


@contextlib.contextmanager
def lease_gpu(stage: str, stopping: Callable[[], bool]) -> Iterator[str | None]:
    """One GPU to itself for the block (None on a machine without); waits while all are taken."""
    pool = gpu_pool()
    if not visible_gpus():
        yield None
        return
    while True:
        try:
            gpu = pool.get(timeout=POLL_SECONDS)
            break
        except queue.Empty:
            if stopping():
                raise StageSkipped(stage) from None
    try:
        yield gpu
    finally:
        pool.put(gpu)


def stop_flags(run_id: str) -> tuple[Any, Any]:
    """The run's two Dask events: `halt` (a stage failed: start no more) and `stop` (Ctrl-C: end them all)."""
    from distributed import Event

    return Event(f"{TOPIC}-{run_id}-halt"), Event(f"{TOPIC}-{run_id}-stop")


def is_set(event: Any) -> bool:
    """Whether a Dask event is set; a scheduler that cannot be reached any more counts as set."""
    try:
        return bool(event.is_set())
    except Exception:
        return True


def announce(run_id: str, stage: str, state: str, detail: str) -> None:
    """Tell the client that started the run what this task is doing (one progress line there)."""
    with contextlib.suppress(Exception):
        from distributed import get_worker

        get_worker().log_event(f"{TOPIC}-{run_id}", {"stage": stage, "state": state, "detail": detail})


def write_config_local(checkout: Path, spec: TaskSpec, scratch: Path) -> None:
    """The checkout's .dvc/config.local: the workspace's (remotes, credentials), its cache (the project's, or
    one of its own with --pull) and DVC's site cache inside the temporary folder, so nothing outlives it."""
    from configobj import ConfigObj

    config = ConfigObj(spec.config_local.splitlines())
    if spec.cache_dir:
        config.setdefault("cache", {})["dir"] = spec.cache_dir
    elif "cache" in config:
        config["cache"].pop("dir", None)
    config.setdefault("core", {})["site_cache_dir"] = str(scratch / "site")
    config.filename = str(checkout / ".dvc" / "config.local")
    config.write()


def make_checkout(scratch: Path, bundle: bytes, commit: str) -> Path:
    """Clone the bundle into `scratch`/checkout at `commit` (detached)."""
    (scratch / "repo.bundle").write_bytes(bundle)
    checkout = scratch / "checkout"
    git(scratch, "clone", "--quiet", "--no-checkout", str(scratch / "repo.bundle"), str(checkout))
    git(checkout, "-c", "advice.detachedHead=false", "checkout", "--quiet", "--detach", commit)
    return checkout


def stage_env(checkout: Path, threads: int, gpu: str | None, workspace: str) -> dict[str, str]:
    """The environment of `dvc repro` in the checkout: this worker's Python first on PATH, the checkout's
    package first on PYTHONPATH (not the one that `pip install -e` points at), the task's share of cores,
    and the project's folder (for a relative data.source)."""
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    if (checkout / "src").is_dir():
        env["PYTHONPATH"] = os.pathsep.join(p for p in [str(checkout / "src"), env.get("PYTHONPATH", "")] if p)
    env["DIGIT_RECOGNIZER_THREADS"] = str(threads)
    env["DVC_NO_ANALYTICS"] = "1"  # a throwaway checkout: no usage report (and no temporary file for one)
    env[paths.WORKSPACE_VARIABLE] = workspace
    if gpu is not None:
        env["CUDA_VISIBLE_DEVICES"] = gpu
    return env


def run_logged(args: list[str], cwd: Path, env: dict[str, str], log: TextIO, stopping: Callable[[], bool]) -> int:
    """Run a command in a session of its own, output to `log`; on `stopping()`, SIGINT its process group
    (the stage cleans up, DVC releases its locks), SIGKILL after STOP_GRACE_SECONDS. Its exit status."""
    log.write(f"$ {' '.join(args)}\n")
    log.flush()
    process = subprocess.Popen(args, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        while True:
            try:
                return process.wait(timeout=POLL_SECONDS)
            except subprocess.TimeoutExpired:
                if stopping():
                    break
        os.killpg(process.pid, signal.SIGINT)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=STOP_GRACE_SECONDS)
        return -signal.SIGINT
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)  # whatever is left of its process group
        process.wait()


def read_timings(checkout: Path) -> dict[str, str]:
    """The data/timings files the stage wrote in the checkout (how long each fold trained)."""
    folder = checkout / paths.TIMINGS
    return (
        {str(paths.TIMINGS / f.name): f.read_text() for f in sorted(folder.glob("*.json"))} if folder.is_dir() else {}
    )


def run_stage_task(spec: TaskSpec, bundle: bytes, *upstream: StageResult) -> StageResult:
    """A Dask task: `dvc repro <stage>` in a checkout of its own, removed afterwards whatever happens.

    `upstream` (the upstream tasks' results) only orders the task after them. With --pull (no cache_dir)
    the checkout pulls what it needs and then pushes the stage's outputs and its run-cache entry.
    """
    halt, stop = stop_flags(spec.run_id)
    if is_set(halt) or is_set(stop):
        raise StageSkipped(spec.stage)
    if spec.cache_dir and not Path(spec.cache_dir).parent.is_dir():
        raise UserError(f"the project's DVC cache {spec.cache_dir} is not on {socket.gethostname()}: use --pull")
    started = time.monotonic()
    scratch = Path(tempfile.mkdtemp(prefix="digit-recognizer-repro-"))
    log_path = Path(spec.log_file) if spec.log_file else scratch / "stage.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with open(log_path, "w") as log, lease_gpu(spec.stage, lambda: is_set(stop)) as gpu:
            checkout = make_checkout(scratch, bundle, spec.commit)
            drop_lock_entries(checkout, spec.stale)
            write_config_local(checkout, spec, scratch)
            threads = spec.threads or max(1, available_cores() // worker_slots())
            env = stage_env(checkout, threads, gpu, spec.workspace)
            where = f"{socket.gethostname()}, {threads} thread{'s' * (threads > 1)}" + (f", GPU {gpu}" if gpu else "")
            announce(spec.run_id, spec.stage, "running", where)
            dvc = [sys.executable, "-m", "dvc"]
            pull = [] if spec.cache_dir else ["--pull"]
            returncode = run_logged([*dvc, "repro", *pull, spec.stage], checkout, env, log, lambda: is_set(stop))
            if returncode == 0 and not spec.cache_dir:
                push = [*dvc, "push", "--run-cache", spec.stage]
                returncode = run_logged(push, checkout, env, log, lambda: is_set(stop))
            timings = read_timings(checkout)
        text = log_path.read_text(errors="replace")
        if is_set(stop):
            raise StageStopped(spec.stage)
        if returncode != 0:
            raise StageFailed(spec.stage, returncode, text, socket.gethostname())
        ran = re.findall(r"^Running stage '([^']+)'", text, re.M)
        also = [stage for stage in ran if stage != spec.stage]  # upstream stages the run-cache lacked
        seconds = time.monotonic() - started
        return StageResult(spec.stage, spec.stage in ran, seconds, socket.gethostname(), text, timings, also)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

"""`digit-recognizer repro`: plan the run, start its stages on Dask, then `dvc repro` in the workspace."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

from digit_recognizer import paths
from digit_recognizer.cores import available_cores
from digit_recognizer.errors import UserError
from digit_recognizer.parallel.cluster import Outcome, run_tasks
from digit_recognizer.parallel.plan import (
    Plan,
    drop_lock_entries,
    make_bundle,
    pin_commit,
    plan_stages,
    widest_level,
)
from digit_recognizer.parallel.progress import LOG_DIR, Progress, log_name, log_tail
from digit_recognizer.parallel.resources import visible_gpus
from digit_recognizer.parallel.task import TaskSpec


def default_jobs(plan: Plan) -> int:
    """One stage per GPU where there are GPUs, else one per core; no more than can run at once."""
    return max(1, min(len(visible_gpus()) or available_cores(), widest_level(plan)))


def final_repro(root: Path, pull: bool, progress: Progress) -> int:
    """Plain `dvc repro` (`--pull`) in the workspace, its output on this terminal. In a session of its own:
    Ctrl-C here is passed on once, and this waits until DVC has cleaned up and released its lock."""
    args = [sys.executable, "-m", "dvc", "repro", *(["--pull"] if pull else [])]
    progress.line("running", "dvc repro", f"in the workspace: {' '.join(['dvc', *args[3:]])}")
    process = subprocess.Popen(args, cwd=root, start_new_session=True)
    try:
        return process.wait()
    except KeyboardInterrupt:
        os.killpg(process.pid, signal.SIGINT)
        process.wait()
        raise


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM stops the run as Ctrl-C does (the main thread only)."""

    def interrupt(signum, frame) -> None:
        raise KeyboardInterrupt

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def repro_in_parallel(
    project: Path | None,
    jobs: int | None = None,
    threads: int | None = None,
    scheduler: str | None = None,
    pull: bool = False,
    out: TextIO = sys.stdout,
) -> int:
    """The whole run; its exit status (0, or 130 after Ctrl-C). A failed stage raises UserError."""
    if jobs is not None and scheduler:
        raise UserError("--jobs sizes the local cluster; with --scheduler, the workers' threads decide")
    if (jobs is not None and jobs < 1) or (threads is not None and threads < 1):
        raise UserError("--jobs and --threads take a number from 1 up")
    root = (project or paths.find_project_root()).resolve()
    plan = plan_stages(root)
    if pull and not plan.remote:
        raise UserError("--pull needs a default DVC remote: dvc remote add -d NAME URL (or --local)")
    commit, snapshot = pin_commit(root)
    jobs = jobs or default_jobs(plan)
    progress = Progress(out, max((len(s) for s in [*plan.tasks, "dvc repro"]), default=10))
    describe_run(plan, commit, snapshot, scheduler, jobs, pull, out)
    outcome = Outcome()
    with sigterm_as_interrupt():
        if plan.tasks:
            specs = task_specs(root, plan, commit, scheduler, threads, pull)
            try:
                outcome = run_tasks(plan, specs, make_bundle(root, commit), scheduler, jobs, root, progress, out)
            except KeyboardInterrupt:
                return 130
        return finish(root, outcome, plan.stale, pull, progress, out)


def describe_run(
    plan: Plan, commit: str, snapshot: bool, scheduler: str | None, jobs: int, pull: bool, out: TextIO
) -> None:
    """What runs where, in three lines."""
    if snapshot:
        print(f"uncommitted changes: the stages run a snapshot of the working tree (commit {commit[:7]})", file=out)
    else:
        print(f"commit {commit[:7]} (HEAD; nothing uncommitted)", file=out)
    where = f"the Dask scheduler {scheduler}" if scheduler else f"a local Dask cluster, {jobs} at once"
    shared = "the DVC remote (--pull)" if pull else "the project's DVC cache"
    print(f"{len(plan.tasks)} stages to run on {where}, sharing {shared}", file=out)
    rest = f", which also runs {', '.join(plan.final)}" if plan.final else ""
    print(f"then dvc repro in the workspace restores them from the run-cache{rest}", file=out, flush=True)


def task_specs(
    root: Path, plan: Plan, commit: str, scheduler: str | None, threads: int | None, pull: bool
) -> dict[str, TaskSpec]:
    """One TaskSpec per task stage; clears the logs of the previous run."""
    (root / LOG_DIR).mkdir(parents=True, exist_ok=True)
    for old in (root / LOG_DIR).glob("*.log"):
        old.unlink()
    run_id = uuid.uuid4().hex[:12]
    config_local_file = root / ".dvc" / "config.local"
    config_local = config_local_file.read_text() if config_local_file.exists() else ""
    return {
        stage: TaskSpec(
            stage=stage,
            commit=commit,
            run_id=run_id,
            cache_dir=None if pull else plan.cache_dir,
            config_local=config_local,
            log_file=None if scheduler else str(root / LOG_DIR / log_name(stage)),
            threads=threads,
            workspace=str(root),
            stale=tuple(plan.stale),
        )
        for stage in plan.tasks
    }


def finish(root: Path, outcome: Outcome, stale: list[str], pull: bool, progress: Progress, out: TextIO) -> int:
    """After the tasks: the error of a failed stage, or the final `dvc repro` in the workspace."""
    ran = sum(result.trained for result in outcome.done.values())
    if outcome.failed or outcome.errors:
        for failure in outcome.failed:
            print(f"--- last lines of {LOG_DIR / log_name(failure.stage)} ({failure.host}):", file=sys.stderr)
            print(log_tail(failure.log), file=sys.stderr, flush=True)
        first = str(outcome.failed[0]) if outcome.failed else outcome.errors[0]
        more = len(outcome.failed) + len(outcome.errors) - 1
        raise UserError(
            first + (f" (and {more} more)" if more else "") + f"; the {len(outcome.done)} stages done are in the "
            "cache, so a re-run starts from there; the workspace is unchanged"
        )
    if outcome.done:
        restored = len(outcome.done) - ran
        print(f"{len(outcome.done)} stages done: {ran} ran, {restored} came from the run-cache", file=out, flush=True)
    if stale:
        drop_lock_entries(root, stale)
        print(
            f"dvc.lock: dropped the entries of {len(stale)} stages that named outputs in no cache here (DVC would "
            "run those stages again rather than look in the run-cache); dvc repro writes them anew",
            file=out,
            flush=True,
        )
    try:
        returncode = final_repro(root, pull, progress)
    except KeyboardInterrupt:
        print("interrupted: dvc repro stopped in the workspace", file=out, flush=True)
        return 130
    if returncode != 0:
        raise UserError(f"dvc repro in the workspace failed (exit status {returncode})")
    progress.line("done", "dvc repro", f"the workspace is up to date; stage logs in {LOG_DIR}/")
    return 0

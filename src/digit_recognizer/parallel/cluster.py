"""The task stages on Dask: a client (of a local cluster, or of a running scheduler), one future per stage
in the graph's order, their outcomes as they end, and Ctrl-C passed on to every running stage."""

from __future__ import annotations

import contextlib
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from digit_recognizer.parallel.plan import Plan
from digit_recognizer.parallel.progress import LOG_DIR, Progress, format_seconds, log_name, save_log, write_timings
from digit_recognizer.parallel.task import (
    STOP_GRACE_SECONDS,
    TOPIC,
    StageFailed,
    StageResult,
    StageSkipped,
    StageStopped,
    TaskSpec,
    run_stage_task,
    stop_flags,
)

if TYPE_CHECKING:
    from distributed import Client, Future


@contextlib.contextmanager
def dask_client(scheduler: str | None, jobs: int) -> Iterator[Client]:
    """A client of the given scheduler, or of a local cluster: one worker in this process, `jobs` threads
    (each task waits on its `dvc repro` subprocess; an in-process worker leaves Ctrl-C to this process)."""
    import logging

    import dask
    from distributed import Client, LocalCluster

    logging.getLogger("distributed").setLevel(logging.CRITICAL)  # a failed stage is reported once, here
    if scheduler:
        with Client(scheduler) as client:
            yield client
        return
    with (
        tempfile.TemporaryDirectory(prefix="digit-recognizer-dask-") as scratch,
        dask.config.set({"temporary-directory": scratch}),  # the scheduler's and worker's scratch space
        LocalCluster(n_workers=1, threads_per_worker=jobs, processes=False, dashboard_address=None) as cluster,
        Client(cluster) as client,
    ):
        yield client


@dataclass
class Outcome:
    """The stages done, and what failed (the progress lines tell the rest)."""

    done: dict[str, StageResult] = field(default_factory=dict)
    failed: list[StageFailed] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # a task that raised something else (a worker's setup)


def submit_tasks(client: Client, plan: Plan, specs: dict[str, TaskSpec], bundle: bytes) -> dict[Future, str]:
    """One future per task stage, upstream futures as arguments: Dask starts each after its upstream."""
    [shared_bundle] = client.scatter([bundle], broadcast=True, hash=False)
    futures: dict[str, Future] = {}
    for stage in plan.tasks:
        upstream = [futures[dep] for dep in plan.upstream[stage]]
        futures[stage] = client.submit(
            run_stage_task, specs[stage], shared_bundle, *upstream, key=f"{stage}-{specs[stage].run_id}", pure=False
        )
    return {future: stage for stage, future in futures.items()}


def collect(futures: dict[Future, str], progress: Progress, root: Path, on_failure: Callable[[], None]) -> Outcome:
    """Wait for every task, one progress line each as it ends; the first failure calls `on_failure`."""
    from distributed import as_completed

    outcome = Outcome()
    for future in as_completed(list(futures)):
        stage = futures[future]
        try:
            result: StageResult = future.result()
        except StageFailed as failure:
            if failure.stage == stage:
                outcome.failed.append(failure)
                save_log(root, stage, failure.log)
                progress.line("failed", stage, f"log {LOG_DIR / log_name(stage)}")
                on_failure()
            else:
                progress.line("not run", stage, f"(upstream {failure.stage} failed)")
            continue
        except StageStopped:
            progress.line("stopped", stage)
            continue
        except StageSkipped:
            progress.line("not run", stage, "(the run was stopping)")
            continue
        except Exception as error:  # the task could not run at all: no checkout, no cache
            outcome.errors.append(f"{stage}: {error}")
            progress.line("failed", stage, str(error))
            on_failure()
            continue
        outcome.done[stage] = result
        save_log(root, stage, result.log)
        write_timings(root, result.timings)
        how = "ran" if result.trained else "from the run-cache"
        also = f" (its checkout also ran {', '.join(result.also_ran)})" if result.also_ran else ""
        detail = f"{how}, {format_seconds(result.seconds)}, log {LOG_DIR / log_name(stage)}{also}"
        progress.line("done", stage, detail)
    return outcome


def announce_handler(progress: Progress) -> Callable[[tuple[float, dict]], None]:
    def handle(event: tuple[float, dict]) -> None:
        _, msg = event
        progress.line(msg["state"], msg["stage"], msg["detail"])

    return handle


def run_tasks(
    plan: Plan,
    specs: dict[str, TaskSpec],
    bundle: bytes,
    scheduler: str | None,
    jobs: int,
    root: Path,
    progress: Progress,
    out: TextIO,
) -> Outcome:
    """Submit every task and wait for them; Ctrl-C (or SIGTERM) stops them all, then raises KeyboardInterrupt."""
    run_id = next(iter(specs.values())).run_id
    with dask_client(scheduler, jobs) as client:
        client.subscribe_topic(f"{TOPIC}-{run_id}", announce_handler(progress))
        halt, stop = stop_flags(run_id)
        futures: dict[Future, str] = {}
        try:
            futures = submit_tasks(client, plan, specs, bundle)
            for stage in plan.tasks:
                progress.line("queued", stage)
            return collect(futures, progress, root, halt.set)
        except KeyboardInterrupt:
            stop_tasks(stop, futures, progress, out)
            raise


def stop_tasks(stop: Any, futures: dict[Future, str], progress: Progress, out: TextIO) -> None:
    """Ctrl-C: every running stage gets SIGINT and its checkout is removed; wait until they have."""
    from distributed import wait

    print("interrupted: stopping every stage", file=out, flush=True)
    stop.set()
    deadline = time.monotonic() + STOP_GRACE_SECONDS + 30
    while time.monotonic() < deadline:
        try:
            wait(list(futures), timeout=max(1.0, deadline - time.monotonic()))
            break
        except KeyboardInterrupt:
            print("still stopping: each stage is removing its checkout", file=out, flush=True)
        except TimeoutError:
            break
    for future, stage in futures.items():
        error = future.exception() if future.status == "error" else None
        if isinstance(error, StageStopped) and error.stage == stage:  # not an upstream stage's, passed on
            progress.line("stopped", stage)
    left = [stage for future, stage in futures.items() if not future.done()]
    if left:
        print(f"interrupted: {', '.join(left)} did not stop in time", file=out, flush=True)
    else:
        print("interrupted: every stage stopped and removed its checkout; the workspace is unchanged", file=out)

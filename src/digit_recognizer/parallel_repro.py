"""`digit-recognizer repro`: the DVC pipeline with independent stages at once, on Dask distributed.

DVC stays the bookkeeper. Each stage that DVC's run-cache can restore runs as one Dask task: stock
`dvc repro <stage>` in a checkout of its own (a clone, under a temporary folder on the worker, of one pinned
commit) whose DVC cache is the project's cache (one machine, or a shared filesystem) or, with `--pull`, a
cache of its own that pulls from and pushes to the project's DVC remote. The checkout restores the stage's
upstream outputs from the run-cache that the upstream tasks filled; a task starts when its upstream tasks
are done (Dask futures as arguments). The run ends with one plain `dvc repro` (`dvc repro --pull`) in the
workspace, which restores every stage from the run-cache, runs the rest (stages with an output kept out of
the cache, such as the ensemble's data/metrics.json, and what follows them) and writes dvc.lock as a
sequential run would. docs/parallel.md tells how to use it.
"""

from __future__ import annotations

import contextlib
import functools
import os
import queue
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from digit_recognizer import paths
from digit_recognizer.errors import UserError

if TYPE_CHECKING:
    from distributed import Client, Future

TOPIC = "digit-recognizer-repro"
LOG_DIR = Path(".dvc") / "tmp" / "parallel"  # in the workspace: one log per stage, of the last run
TAIL_LINES = 20  # of a failed stage's log, shown with its error
STOP_GRACE_SECONDS = 30  # after SIGINT, how long a stage has to clean up before SIGKILL
POLL_SECONDS = 1.0


# ---------------------------------------------------------------------------------------------------------
# What a task gets and gives back


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


class StageSkipped(Exception):
    """The run was stopping (a stage failed, or Ctrl-C) before this stage started."""

    def __init__(self, stage: str) -> None:
        super().__init__(stage)
        self.stage = stage


class StageStopped(Exception):
    """Ctrl-C (or SIGTERM) stopped this stage while it ran; nothing of it was kept."""

    def __init__(self, stage: str) -> None:
        super().__init__(stage)
        self.stage = stage


# ---------------------------------------------------------------------------------------------------------
# Planning: the commit, the stages, the bundle (on the machine that starts the run)


@dataclass(frozen=True)
class Plan:
    """The stages that run as Dask tasks (upstream first), the upstream tasks of each, and the stages to run
    that are left to the final `dvc repro` in the workspace."""

    tasks: list[str]
    upstream: dict[str, list[str]]
    final: list[str]
    stale: list[str] = field(default_factory=list)  # tasks whose dvc.lock entry names outputs in no cache here


def git(root: Path, *args: str, env: dict[str, str] | None = None) -> str:
    """Run git in `root`; its stdout, stripped. A failure is a UserError with git's own message."""
    result = subprocess.run(["git", *args], cwd=root, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise UserError(f"git {' '.join(args)}: {result.stderr.strip() or result.returncode}")
    return result.stdout.strip()


def pin_commit(root: Path) -> tuple[str, bool]:
    """The commit the tasks check out, and whether it is a snapshot of uncommitted changes.

    A clean working tree runs HEAD. Otherwise a commit (on no branch) of the working tree as `git add -A`
    sees it, tracked and untracked files but not ignored ones, built in a temporary index: the user's index,
    branches and stash are left as they are.
    """
    head = git(root, "rev-parse", "--verify", "HEAD^{commit}")
    if not git(root, "status", "--porcelain"):
        return head, False
    with tempfile.TemporaryDirectory(prefix="digit-recognizer-index-") as scratch:
        index = Path(scratch) / "index"
        shutil.copy(git(root, "rev-parse", "--path-format=absolute", "--git-path", "index"), index)
        env = {
            **os.environ,
            "GIT_INDEX_FILE": str(index),
            "GIT_AUTHOR_NAME": "digit-recognizer repro",
            "GIT_AUTHOR_EMAIL": "repro@localhost",
            "GIT_COMMITTER_NAME": "digit-recognizer repro",
            "GIT_COMMITTER_EMAIL": "repro@localhost",
        }
        git(root, "add", "-A", env=env)
        tree = git(root, "write-tree", env=env)
        message = "digit-recognizer repro: snapshot of the working tree"
        return git(root, "commit-tree", tree, "-p", head, "-m", message, env=env), True


def make_bundle(root: Path, commit: str) -> bytes:
    """A git bundle of `commit` and its history, from which a worker anywhere clones its checkout.

    A bundle needs a ref; it is made in a throwaway shared clone, so the user's repository gets none.
    """
    with tempfile.TemporaryDirectory(prefix="digit-recognizer-bundle-") as scratch:
        clone = Path(scratch) / "clone"
        git(root, "clone", "--quiet", "--shared", "--no-checkout", str(root), str(clone))
        git(clone, "update-ref", "refs/heads/repro", commit)
        git(clone, "bundle", "create", "--quiet", str(Path(scratch) / "repo.bundle"), "refs/heads/repro")
        return (Path(scratch) / "repo.bundle").read_bytes()


def restorable(stage: Any) -> bool:
    """Whether DVC's run-cache can restore the stage: a command, outputs, every one cached (no `cache:
    false`, no `persist`), not frozen, not `always_changed`."""
    return (
        bool(stage.cmd)
        and bool(stage.outs)
        and not stage.frozen
        and not stage.always_changed
        and all(out.use_cache and not out.persist for out in stage.outs)
    )


def lock_names_uncached_outputs(stage: Any) -> bool:
    """dvc.lock names outputs of the stage that are in no cache here. While the entry matches the stage's
    deps, DVC's restore trusts it before the run-cache and, the outputs being nowhere, runs the stage again:
    in every checkout, and in the final repro (e.g. a fresh clone whose dvc.lock came from another machine)."""
    return all(out.hash_info for out in stage.outs) and not stage.outs_cached()


def plan_stages(root: Path) -> Plan:
    """Split DVC's stage graph (in dvc.yaml's order among equals, upstream first).

    A stage with nothing to do (`dvc status`: unchanged, and no upstream stage runs) is left alone. A stage
    to run is a task when the run-cache can restore it and every stage upstream of it; the others (here the
    ensemble, whose data/metrics.json is kept out of the cache, and the report after it) are left to the
    final `dvc repro`. `.dvc` data sources have no command, so what follows them is left to it too.
    """
    import networkx as nx
    from dvc.repo import Repo

    with Repo(str(root)) as repo, repo.lock:
        if Path(repo.scm.root_dir).resolve() != Path(repo.root_dir).resolve():
            raise UserError("the DVC project must be at its git repository's top (dvc.yaml beside .git)")
        graph = repo.index.graph  # an edge runs from a stage to a stage whose output it depends on
        position = {stage: i for i, stage in enumerate(repo.index.stages)}
        order = list(nx.lexicographical_topological_sort(graph.reverse(), key=position.__getitem__))
        eligible: set[str] = set()  # restorable, and so is everything upstream
        tasks: list[str] = []
        upstream: dict[str, list[str]] = {}
        final: list[str] = []
        stale: list[str] = []
        for stage in order:
            name = stage.addressing
            deps = {dep.addressing for dep in graph.successors(stage)}
            if restorable(stage) and deps <= eligible:
                eligible.add(name)
            if not stage.cmd or not (deps & {*tasks, *final} or stage.changed()):
                continue
            if name not in eligible:
                final.append(name)
                continue
            if lock_names_uncached_outputs(stage):
                stale.append(name)
            tasks.append(name)
            upstream[name] = [dep for dep in tasks if dep in deps]
    return Plan(tasks, upstream, final, stale)


def widest_level(plan: Plan) -> int:
    """The largest number of task stages at one depth of the graph: how many can ever run at once, roughly."""
    depth: dict[str, int] = {}
    for stage in plan.tasks:
        depth[stage] = 1 + max((depth[dep] for dep in plan.upstream[stage]), default=0)
    levels = list(depth.values())
    return max((levels.count(level) for level in set(levels)), default=1)


def project_cache_dir(root: Path) -> str:
    """The absolute path of the workspace's DVC cache (config `cache.dir`, default .dvc/cache)."""
    from dvc.repo import Repo

    with Repo(str(root)) as repo:
        return str(Path(repo.cache.local_cache_dir).resolve())


def default_remote(root: Path) -> str | None:
    from dvc.repo import Repo

    with Repo(str(root)) as repo:
        return repo.config["core"].get("remote")


# ---------------------------------------------------------------------------------------------------------
# One task (on a worker, any machine)


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity where the platform tells)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def worker_slots() -> int:
    """How many tasks this Dask worker runs at once (its threads); 1 outside a worker."""
    try:
        from distributed import get_worker

        return max(1, get_worker().state.nthreads)
    except (ImportError, ValueError):
        return 1


@functools.cache
def visible_gpus() -> list[str]:
    """The GPUs this process may use: CUDA_VISIBLE_DEVICES's list, else every one nvidia-smi lists."""
    listed = os.environ.get("CUDA_VISIBLE_DEVICES")
    if listed is not None:
        return [gpu for gpu in listed.split(",") if gpu.strip() and gpu.strip() != "-1"]
    if not shutil.which("nvidia-smi"):
        return []
    result = subprocess.run(["nvidia-smi", "--list-gpus"], capture_output=True, text=True)
    return [str(i) for i, line in enumerate(result.stdout.splitlines()) if line.startswith("GPU ")]


_gpu_pool: queue.Queue[str] | None = None
_gpu_pool_lock = threading.Lock()


def gpu_pool() -> queue.Queue[str]:
    """This worker process's free GPUs: one per running task."""
    global _gpu_pool
    with _gpu_pool_lock:
        if _gpu_pool is None:
            _gpu_pool = queue.Queue()
            for gpu in visible_gpus():
                _gpu_pool.put(gpu)
        return _gpu_pool


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


def drop_lock_entries(root: Path, stages: tuple[str, ...] | list[str]) -> None:
    """Remove these stages' entries from root/dvc.lock, so that DVC looks them up in the run-cache."""
    from dvc.utils.serialize import dump_yaml, load_yaml

    lockfile = root / "dvc.lock"
    if not stages or not lockfile.exists():
        return
    lock = load_yaml(str(lockfile))
    for stage in stages:
        lock.get("stages", {}).pop(stage, None)
    dump_yaml(str(lockfile), lock)


def stage_env(checkout: Path, threads: int, gpu: str | None) -> dict[str, str]:
    """The environment of `dvc repro` in the checkout: this worker's Python first on PATH, the checkout's
    package first on PYTHONPATH (not the one that `pip install -e` points at), the task's share of cores."""
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    if (checkout / "src").is_dir():
        env["PYTHONPATH"] = os.pathsep.join(p for p in [str(checkout / "src"), env.get("PYTHONPATH", "")] if p)
    env["DIGIT_RECOGNIZER_THREADS"] = str(threads)
    env["DVC_NO_ANALYTICS"] = "1"  # a throwaway checkout: no usage report (and no temporary file for one)
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
            env = stage_env(checkout, threads, gpu)
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


# ---------------------------------------------------------------------------------------------------------
# The run (on the machine that starts it)


class Progress:
    """One line per change of a stage's state, with the time since the run started."""

    def __init__(self, out: TextIO, width: int) -> None:
        self.out, self.width, self.started = out, width, time.monotonic()
        self.lock = threading.Lock()

    def line(self, state: str, stage: str, detail: str = "") -> None:
        seconds = int(time.monotonic() - self.started)
        text = f"{seconds // 60:3d}:{seconds % 60:02d}  {state:<8} {stage:<{self.width}}  {detail}".rstrip()
        with self.lock:
            print(text, file=self.out, flush=True)


def format_seconds(seconds: float) -> str:
    seconds = round(seconds)
    return f"{seconds // 60} min {seconds % 60} s" if seconds >= 60 else f"{seconds} s"


def log_tail(text: str, lines: int = TAIL_LINES) -> str:
    return "\n".join(text.rstrip("\n").splitlines()[-lines:])


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


def default_jobs(plan: Plan) -> int:
    """One stage per GPU where there are GPUs, else one per core; no more than can run at once."""
    return max(1, min(len(visible_gpus()) or available_cores(), widest_level(plan)))


@dataclass
class Outcome:
    """What became of every task stage."""

    done: dict[str, StageResult] = field(default_factory=dict)
    failed: list[StageFailed] = field(default_factory=list)
    not_run: list[str] = field(default_factory=list)
    stopped: list[str] = field(default_factory=list)
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
                outcome.not_run.append(stage)
                progress.line("not run", stage, f"(upstream {failure.stage} failed)")
            continue
        except StageStopped:
            outcome.stopped.append(stage)
            progress.line("stopped", stage)
            continue
        except StageSkipped:
            outcome.not_run.append(stage)
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


def log_name(stage: str) -> str:
    return stage.replace("/", "_").replace(":", "_") + ".log"


def save_log(root: Path, stage: str, text: str) -> None:
    """The stage's log in the workspace (a worker on this machine has written it there already)."""
    path = root / LOG_DIR / log_name(stage)
    if not path.exists() or path.stat().st_size == 0:
        path.write_text(text)


def write_timings(root: Path, timings: dict[str, str]) -> None:
    """Each trained fold's data/timings file, as `dvc repro` leaves it in the workspace."""
    from digit_recognizer.atomic import write_text

    for relative, text in timings.items():
        write_text(root / relative, text)


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


def announce_handler(progress: Progress) -> Callable[[tuple[float, dict]], None]:
    def handle(event: tuple[float, dict]) -> None:
        _, msg = event
        progress.line(msg["state"], msg["stage"], msg["detail"])

    return handle


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
    if pull and not default_remote(root):
        raise UserError("--pull needs a default DVC remote: dvc remote add -d NAME URL (or --local)")
    commit, snapshot = pin_commit(root)
    plan = plan_stages(root)
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
    config_local = root / ".dvc" / "config.local"
    cache_dir = None if pull else project_cache_dir(root)
    return {
        stage: TaskSpec(
            stage=stage,
            commit=commit,
            run_id=run_id,
            cache_dir=cache_dir,
            config_local=config_local.read_text() if config_local.exists() else "",
            log_file=None if scheduler else str(root / LOG_DIR / log_name(stage)),
            threads=threads,
            stale=tuple(plan.stale),
        )
        for stage in plan.tasks
    }


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

"""What a parallel run does: the pinned commit, the stages that run as tasks and their order (from DVC's graph)."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from digit_recognizer.errors import UserError


@dataclass(frozen=True)
class Plan:
    """The stages that run as Dask tasks (upstream first), the upstream tasks of each, and the stages to run
    that are left to the final `dvc repro` in the workspace; and where the project keeps its outputs."""

    tasks: list[str]
    upstream: dict[str, list[str]]
    final: list[str]
    cache_dir: str  # the absolute path of the workspace's DVC cache (config `cache.dir`, default .dvc/cache)
    remote: str | None  # the default DVC remote
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


@contextlib.contextmanager
def in_folder(folder: Path) -> Iterator[None]:
    """The block runs in `folder` (contextlib.chdir from Python 3.11)."""
    previous = os.getcwd()
    os.chdir(folder)
    try:
        yield
    finally:
        os.chdir(previous)


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

    with in_folder(root), Repo(str(root)) as repo, repo.lock:  # DVC names stages relative to the current folder
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
        cache_dir = str(Path(repo.cache.local_cache_dir).resolve())
        remote = repo.config["core"].get("remote")
    return Plan(tasks, upstream, final, cache_dir, remote, stale)


def widest_level(plan: Plan) -> int:
    """The largest number of task stages at one depth of the graph: how many can ever run at once, roughly."""
    import networkx as nx

    graph = nx.DiGraph([(dep, stage) for stage in plan.tasks for dep in plan.upstream[stage]])
    graph.add_nodes_from(plan.tasks)
    return max(map(len, nx.topological_generations(graph)), default=1)


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

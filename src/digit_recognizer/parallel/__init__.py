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

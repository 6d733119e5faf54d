#!/usr/bin/env bash
# Two queued experiments, one after the other (1 job, every core) against side by side (2 jobs, one thread
# each), and optionally 2 jobs that each take every core. Run inside a project that has run `dvc repro`
# (e.g. the clone benchmarks/pipeline_run.sh leaves); each pair retrains mlp's folds with its own learning
# rates, so no pair finds another's folds in the run-cache.
#
#   bash benchmarks/queue_run.sh path/to/project [oversubscribed]
set -euo pipefail
cd "$1"
repo=$(git rev-parse --show-toplevel)
echo "before: $(python "$repo/benchmarks/machine_speed.py")"

pair() {  # name, jobs, DIGIT_RECOGNIZER_THREADS (empty: unset), lr a, lr b
  local name=$1 jobs=$2 threads=$3
  dvc exp run --queue -q -n "$name-$4" -S "models.mlp.lr=$4"
  dvc exp run --queue -q -n "$name-$5" -S "models.mlp.lr=$5"
  local start=$(date +%s)
  if [ -n "$threads" ]; then
    DIGIT_RECOGNIZER_THREADS=$threads dvc queue start -q --jobs "$jobs"
  else
    env -u DIGIT_RECOGNIZER_THREADS dvc queue start -q --jobs "$jobs"
  fi
  while dvc queue status | grep -E " (Queued|Running)$" >/dev/null; do sleep 2; done  # no -q: with pipefail, an early exit fails the pipe
  local seconds=$(($(date +%s) - start))
  dvc queue status | grep -E "^[0-9a-f]+ +$name-" || true
  echo "$name: --jobs $jobs, DIGIT_RECOGNIZER_THREADS=${threads:-unset}: both done in ${seconds} s"
  sleep 15  # an idle worker exits within 10 s; the next pair then starts its own number of them
}

pair one-after-the-other 1 "" 0.041 0.059
pair side-by-side 2 1 0.046 0.054
if [ "${2:-}" = oversubscribed ]; then
  pair oversubscribed 2 "" 0.043 0.057
fi
echo "after: $(python "$repo/benchmarks/machine_speed.py")"

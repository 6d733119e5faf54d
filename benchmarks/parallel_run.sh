#!/usr/bin/env bash
# `dvc repro` against `digit-recognizer repro --jobs N --threads T` on one data source, each in a fresh
# clone of HEAD with a DVC cache of its own (so that neither finds the other's stages in its run-cache):
# the machine's speed before and after, both wall times, and whether the submissions are the same bytes
# (they are when the sequential run's thread count is T too: DIGIT_RECOGNIZER_THREADS=T bash ...).
#
#   bash benchmarks/parallel_run.sh                       # the embedded sample, --jobs 2 --threads 1
#   bash benchmarks/parallel_run.sh sample 2 1 /tmp/run   # source, jobs, threads per stage, a chosen folder
set -euo pipefail
repo=$(git rev-parse --show-toplevel)
source=${1:-sample}
jobs=${2:-2}
threads=${3:-1}
[ "$source" = sample ] || source=$(realpath "$source")
dir=${4:-$(mktemp -d)}

clone() {  # folder: a clone of HEAD with data.source set
  git clone -q "$repo" "$1"
  (cd "$1" && python - "$source" <<'PY'
import sys, yaml
params = yaml.safe_load(open("params.yaml"))
params["data"]["source"] = sys.argv[1]
yaml.safe_dump(params, open("params.yaml", "w"), sort_keys=False)
PY
  git -C "$1" commit -qam "data.source: $source")
}

clone "$dir/sequential"
clone "$dir/parallel"
echo "clones: $dir/{sequential,parallel} ($(git -C "$repo" log -1 --format='%h %s')), data.source: $source"
echo "host: $(python -c 'import torch; print(torch.backends.cpu.get_cpu_capability(), torch.ops.mkldnn._is_mkldnn_bf16_supported())'), $(nproc) cores"
before=$(python "$repo/benchmarks/machine_speed.py")  # fails the script where the project is not installed
echo "before: $before"

start=$(date +%s)
(cd "$dir/sequential" && PYTHONPATH="$dir/sequential/src" dvc repro >"$dir/sequential.log" 2>&1)
sequential=$(($(date +%s) - start))

start=$(date +%s)
(cd "$dir/parallel" && PYTHONPATH="$dir/parallel/src" digit-recognizer repro --jobs "$jobs" --threads "$threads" \
  >"$dir/parallel.log" 2>&1)
parallel=$(($(date +%s) - start))

after=$(python "$repo/benchmarks/machine_speed.py")
echo "after: $after"
echo "dvc repro (DIGIT_RECOGNIZER_THREADS=${DIGIT_RECOGNIZER_THREADS:-unset}): ${sequential} s ($((sequential / 60)) min $((sequential % 60)) s)"
echo "digit-recognizer repro --jobs $jobs --threads $threads: ${parallel} s ($((parallel / 60)) min $((parallel % 60)) s)"
if cmp -s "$dir/sequential/submissions/submission.csv" "$dir/parallel/submissions/submission.csv"; then
  echo "submissions: the same bytes"
else
  echo "submissions: different bytes (expected unless the sequential run had $threads threads per stage)"
fi
(cd "$dir/parallel" && digit-recognizer scores --markdown)

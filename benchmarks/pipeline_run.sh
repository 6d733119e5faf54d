#!/usr/bin/env bash
# The default pipeline in a fresh clone of HEAD on one data source: the machine's speed before and after,
# the wall time of `dvc repro`, and the CV table.
#
#   bash benchmarks/pipeline_run.sh                                          # the mini competition
#   bash benchmarks/pipeline_run.sh sample                                   # the embedded sample
#   bash benchmarks/pipeline_run.sh path/to/digit-recognizer.zip /tmp/run    # any source, a chosen folder
set -euo pipefail
repo=$(git rev-parse --show-toplevel)
source=${1:-$repo/../shared/data/digit-recognizer-mini.zip}
[ "$source" = sample ] || source=$(realpath "$source")
dir=${2:-$(mktemp -d)/run}
git clone -q "$repo" "$dir"
cd "$dir"
export PYTHONPATH="$dir/src"  # the clone's package, whichever checkout `pip install -e` pointed at
python - "$source" <<'PY'
import sys, yaml
params = yaml.safe_load(open("params.yaml"))
params["data"]["source"] = sys.argv[1]
yaml.safe_dump(params, open("params.yaml", "w"), sort_keys=False)
PY
echo "clone: $dir ($(git log -1 --format='%h %s')), data.source: $source"
echo "package: $(python -c 'import digit_recognizer; print(digit_recognizer.__file__)')"
before=$(python benchmarks/machine_speed.py)  # fails the script where the project is not installed
echo "before: $before"
start=$(date +%s)
dvc repro
seconds=$(($(date +%s) - start))
after=$(python benchmarks/machine_speed.py)
echo "after: $after"
echo "dvc repro: ${seconds} s ($((seconds / 60)) min $((seconds % 60)) s)"
digit-recognizer scores --markdown

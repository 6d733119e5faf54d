#!/usr/bin/env bash
# Re-take docs/report.png from a project folder where `dvc repro` has run (the default run on the sample):
#   bash benchmarks/report_screenshot.sh /tmp/run
set -euo pipefail
repo=$(git rev-parse --show-toplevel)
project=$(realpath "$1")
page=$(mktemp -d)
(cd "$project" && dvc plots show -o "$page" >/dev/null)
chromium --headless --no-sandbox --disable-gpu --no-first-run --hide-scrollbars --allow-file-access-from-files \
  --host-resolver-rules="MAP * ~NOTFOUND" --virtual-time-budget=20000 --window-size=1400,4200 \
  --screenshot="$repo/docs/report.png" "file://$page/index.html"
echo "wrote $repo/docs/report.png from $project"

#!/usr/bin/env bash
# Re-take docs/report-1200.png and docs/report-390.png (a laptop's window, a phone's) from a project folder where
# `dvc repro` has run (the default run on the sample):
#   bash benchmarks/report_screenshot.sh /tmp/run
set -euo pipefail
repo=$(git rev-parse --show-toplevel)
project=$(realpath "$1")
page=$(mktemp -d)
(cd "$project" && dvc plots show -o "$page" >/dev/null)
for size in 1200,4200 390,9000; do
  chromium --headless --no-sandbox --disable-gpu --no-first-run --hide-scrollbars --allow-file-access-from-files \
    --host-resolver-rules="MAP * ~NOTFOUND" --virtual-time-budget=20000 --window-size=$size \
    --screenshot="$repo/docs/report-${size%,*}.png" "file://$page/index.html"
done
echo "wrote $repo/docs/report-1200.png and report-390.png from $project"

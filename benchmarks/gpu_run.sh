#!/usr/bin/env bash
# The CUDA path, on a machine with a GPU: the GPU, then images/s of each architecture (the project's trainer
# against the tutorial loop, on the embedded sample's digits), then the whole sample pipeline in a fresh clone.
#
#   bash benchmarks/gpu_run.sh [folder for the clone]
set -euo pipefail
repo=$(git rev-parse --show-toplevel)
dir=${1:-$(mktemp -d)/gpu}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python -c "import torch; assert torch.cuda.is_available(), 'no CUDA device'; print('torch', torch.__version__)"
bash "$repo/benchmarks/pipeline_run.sh" sample "$dir"
cd "$dir"
python benchmarks/throughput.py --device cuda --images 8192 --rounds 3

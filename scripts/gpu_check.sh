#!/usr/bin/env bash
# Check every CUDA path of cifar-lab on one GPU machine in at most 8 minutes, on generated data: bf16 and fp16
# autocast (with GradScaler), channels-last and torch.compile training steps, DDP over NCCL with 1 process
# (and 2 where there are two GPUs), SyncBatchNorm, the GPU JPEG route, `bench data`, `bench train` and
# `bench inference` on CUDA, and chapter 2's latency criterion. Writes book/results/<date>-gpu-check.json
# (a results record with provenance) and exits non-zero if any check fails or hits a CUDA error.
#
#   scripts/gpu_check.sh             on a machine with a CUDA GPU
#   scripts/gpu_check.sh --dry-run   without CUDA: each check's CPU equivalent (run by the test suite)
#
# Other options: --work DIR (keep every run's files there), --out FILE (where the record goes).
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${CIFAR_LAB_VENV:-$repo/.venv}"
python="$venv/bin/python"
if [ ! -x "$python" ]; then
  echo "gpu-check: error: no virtual environment at $venv; run scripts/setup.sh first (or set CIFAR_LAB_VENV)" >&2
  exit 2
fi
export PATH="$venv/bin:$PATH"
exec "$python" "$repo/scripts/gpu_check.py" "$@"

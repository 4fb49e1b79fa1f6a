#!/usr/bin/env bash
# Set up, then run the whole test suite: unit and integration tests, the notebook pairs, nbval over every
# notebook in smoke mode (checked outputs against the committed .ipynb), the papermill runner and the book
# build. Extra arguments go to pytest (e.g. scripts/test.sh -x -k runner).
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${CIFAR_LAB_VENV:-$repo/.venv}"
"$repo/scripts/setup.sh"
cd "$repo"
export CIFAR_LAB_SMOKE=1
export PATH="$venv/bin:$PATH"
exec "$venv/bin/python" -m pytest "$@"

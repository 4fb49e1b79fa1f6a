#!/usr/bin/env bash
# Set up, then run the main job: execute every notebook in smoke mode and build the HTML book into _build/html.
# Smoke mode: synthetic data, CPU-sized runs, no dataset and no GPU needed. The build fails on any warning or
# notebook error (-W, raise_on_error). Data goes to $CIFAR_LAB_DATA (default: data/), results to runs/.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${CIFAR_LAB_VENV:-$repo/.venv}"
"$repo/scripts/setup.sh"
cd "$repo"
export CIFAR_LAB_SMOKE=1
export PATH="$venv/bin:$PATH"   # the notebooks' kernel and jupyter-book come from the environment
rm -rf _build/html _build/.doctrees
jupyter-book build . -W --keep-going --builder html
echo "book: open $repo/_build/html/index.html"

#!/usr/bin/env bash
# Create (or reuse) this clone's virtual environment and install everything into it.
#   CIFAR_LAB_VENV   where the environment lives (default: .venv inside this clone; git and the book ignore it,
#                    so two clones on one machine never import each other's code)
#   PYTHON           the interpreter to build it from (default: python3)
# Prints nothing else on success but pip's own summary; safe to run again (pip skips what is installed).
set -euo pipefail
start=$SECONDS
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${CIFAR_LAB_VENV:-$repo/.venv}"
python="${PYTHON:-python3}"
if [ ! -x "$venv/bin/python" ]; then
  echo "setup: creating $venv"
  "$python" -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --upgrade pip
"$venv/bin/python" -m pip install --quiet -r "$repo/requirements.txt" -e "$repo"
# JupyterLab opens the MyST chapters (notebooks/*.md) as notebooks, not as text: jupytext's default-viewer
# setting, written into this environment's JupyterLab (overrides.json), so no user-wide setting is touched.
"$venv/bin/jupytext-config" --settings-file "$venv/share/jupyter/lab/settings/overrides.json" \
  set-default-viewer markdown myst
echo "setup: ready in $((SECONDS - start)) s ($venv/bin/python," \
     "$("$venv/bin/python" -c 'import torch; print("torch", torch.__version__)'))"

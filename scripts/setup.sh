#!/usr/bin/env bash
# Create (or reuse) the project's virtual environment OUTSIDE the repository and install everything into it.
#   CIFAR_LAB_VENV   where the environment lives (default: ~/.venvs/cifar-lab)
#   PYTHON           the interpreter to build it from (default: python3)
# Prints nothing else on success but pip's own summary; safe to run again (pip skips what is installed).
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${CIFAR_LAB_VENV:-$HOME/.venvs/cifar-lab}"
python="${PYTHON:-python3}"
case "$venv/" in
  "$repo"/*) echo "setup: CIFAR_LAB_VENV=$venv is inside the repository; the book build would see it. Choose a folder outside $repo." >&2; exit 2;;
esac
if [ ! -x "$venv/bin/python" ]; then
  echo "setup: creating $venv"
  "$python" -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --upgrade pip
"$venv/bin/python" -m pip install --quiet -r "$repo/requirements.txt" -e "$repo"
echo "setup: ready ($venv/bin/python, $("$venv/bin/python" -c 'import torch; print("torch", torch.__version__)'))"

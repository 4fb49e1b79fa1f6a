#!/usr/bin/env bash
# Create (or reuse) this clone's virtual environment and install everything into it.
#   CIFAR_LAB_VENV   where the environment lives (default: .venv inside this clone; git and the book ignore it,
#                    so two clones on one machine never import each other's code)
#   PYTHON           the interpreter to build it from (default: python3)
# Prints nothing else on success but pip's own summary (and one line where Fashion-MNIST's Debian package is
# missing); safe to run again (pip skips what is installed).
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
# Fashion-MNIST, the book's real data at CPU scale: Debian's package holds the four official files (under
# /usr/share/datasets/fashion-mnist/); without it, a run downloads them with torchvision into its data_root.
# One line either way, and the setup never fails over it.
fmnist=dataset-fashion-mnist
if ! command -v dpkg >/dev/null 2>&1 || ! command -v apt-get >/dev/null 2>&1; then
  echo "setup: no apt here; Fashion-MNIST runs download the dataset with torchvision (needs network once)"
elif ! dpkg -s "$fmnist" >/dev/null 2>&1; then
  if [ "$(id -u)" -eq 0 ]; then
    if DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$fmnist" >/dev/null 2>&1 \
       || { apt-get update -qq >/dev/null 2>&1 \
            && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$fmnist" >/dev/null 2>&1; }; then
      echo "setup: installed $fmnist (Fashion-MNIST in /usr/share/datasets/fashion-mnist)"
    else
      echo "setup: apt-get install $fmnist failed; Fashion-MNIST runs will download the dataset with torchvision"
    fi
  else
    echo "setup: for Fashion-MNIST run \`sudo apt-get install $fmnist\`; until then runs download it with torchvision"
  fi
fi
echo "setup: ready in $((SECONDS - start)) s ($venv/bin/python," \
     "$("$venv/bin/python" -c 'import torch; print("torch", torch.__version__)'))"

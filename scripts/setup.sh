#!/usr/bin/env bash
# Create (or reuse) this clone's virtual environment and install everything into it; `--help` says how.
set -euo pipefail

usage() {
  cat <<'USAGE'
usage: scripts/setup.sh [-h]

Create (or reuse) this clone's virtual environment and install the book's stack into it: requirements.txt,
the cifar_lab package (editable), JupyterLab's MyST viewer setting, and Fashion-MNIST's Debian package
(dataset-fashion-mnist) where apt-get is available and this runs as root.

Safe to run again: pip skips what is installed, and the package is installed again only when pyproject.toml
or requirements.txt changed since the last set-up (or the environment lost it). Prints pip's own summary
and one line per step it had to take; the last line names the interpreter and the torch version.

environment:
  CIFAR_LAB_VENV   where the environment lives (default: .venv inside this clone; git and the book ignore
                   it, so two clones on one machine never import each other's code)
  PYTHON           the interpreter to build it from (default: python3)

options:
  -h, --help       show this help and exit (nothing is installed)
USAGE
}

while [ $# -gt 0 ]; do
  case "$1" in
    -h|--help) usage; exit 0 ;;
    *) echo "setup: unknown argument '$1' (see scripts/setup.sh --help)" >&2; exit 2 ;;
  esac
done

start=$SECONDS
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${CIFAR_LAB_VENV:-$repo/.venv}"
python="${PYTHON:-python3}"
if [ ! -x "$venv/bin/python" ]; then
  echo "setup: creating $venv"
  "$python" -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --upgrade pip
# pip builds and installs an editable project again on every call, and setuptools' editable build prints a
# boxed notice each time; so the package is installed only when what it is built from changed (the stamp
# holds the hash of pyproject.toml and requirements.txt) or when this environment does not import it from
# this clone.
stamp="$venv/.cifar-lab-installed"
wanted="$(cat "$repo/pyproject.toml" "$repo/requirements.txt" | sha256sum | cut -d' ' -f1) $repo"
installed_from="$(cd / && "$venv/bin/python" -I -c \
  'import cifar_lab, pathlib; print(pathlib.Path(cifar_lab.__file__).resolve().parents[1])' 2>/dev/null || true)"
if [ "$(cat "$stamp" 2>/dev/null || true)" = "$wanted" ] && [ "$installed_from" = "$repo" ]; then
  "$venv/bin/python" -m pip install --quiet -r "$repo/requirements.txt"
else
  "$venv/bin/python" -m pip install --quiet -r "$repo/requirements.txt" -e "$repo"
  printf '%s\n' "$wanted" > "$stamp"
fi
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

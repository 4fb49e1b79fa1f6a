#!/usr/bin/env bash
# Set up, then run the main job: execute every notebook in smoke mode and build the HTML book into _build/html.
# Smoke mode: synthetic data, CPU-sized runs, no dataset and no GPU needed. The build fails on any warning or
# notebook error (-W, raise_on_error). Data goes to $CIFAR_LAB_DATA (default: data/), results to runs/.
# Prints a line per phase and per notebook; jupyter-book's full output goes to _build/book.log.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${CIFAR_LAB_VENV:-$repo/.venv}"
start=$SECONDS
echo "book: [1/2] environment ($venv; the first set-up installs about 6 GB and takes a few minutes)"
"$repo/scripts/setup.sh"
cd "$repo"
export CIFAR_LAB_SMOKE=1
export PATH="$venv/bin:$PATH"   # the notebooks' kernel and jupyter-book come from the environment
rm -rf _build/html _build/.doctrees
mkdir -p _build
chapters=$(grep -c -- "- file: notebooks/" _toc.yml)
echo "book: [2/2] executing $chapters notebooks in smoke mode and building the HTML (log: _build/book.log)"
# One line per notebook as jupyter-book starts it, with the seconds the previous one took (read line by line in
# bash: awk implementations may read a pipe in blocks, which would hold the lines back until the end).
progress() {
  local line name n=0 last=$SECONDS
  while IFS= read -r line; do
    case "$line" in
      *"Executing notebook"*)
        [ "$n" -gt 0 ] && echo "book:       done in $((SECONDS - last)) s"
        n=$((n + 1)); last=$SECONDS
        name=${line%%: Executing*}; name=${name##*/notebooks/}
        echo "book:   [$n/$chapters] $name" ;;
    esac
  done
  [ "$n" -gt 0 ] && echo "book:       done in $((SECONDS - last)) s (with the HTML)"
  return 0
}
set +e
PYTHONUNBUFFERED=1 jupyter-book build . -W --keep-going --builder html 2>&1 | tee _build/book.log | progress
status=${PIPESTATUS[0]}
set -e
if [ "$status" -ne 0 ]; then
  echo "book: the build failed (exit $status); the end of _build/book.log:" >&2
  tail -n 40 _build/book.log >&2
  exit "$status"
fi
echo "book: built in $((SECONDS - start)) s; open $repo/_build/html/index.html"

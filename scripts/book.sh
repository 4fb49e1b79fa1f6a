#!/usr/bin/env bash
# Set up, then build the HTML book into _build/html from an edition; `--help` says how.
set -euo pipefail

usage() {
  cat <<'USAGE'
usage: scripts/book.sh [-h] [--edition smoke|cpu|full]

Set up the environment (scripts/setup.sh), then build the HTML book into _build/html from an edition:
every chapter executed once at one scale.

  scripts/book.sh                    the committed edition (book/edition/, the real-data CPU edition): nothing
                                     is executed, so it takes about a minute once the environment exists
                                     (without a committed edition it says so and executes the smoke one)
  scripts/book.sh --edition smoke    execute every chapter in smoke mode (synthetic data, CPU-sized: what CI
                                     runs), then build from those executed notebooks
  scripts/book.sh --edition cpu      execute the real-data edition (Fashion-MNIST at CPU scale), keep it as
                                     the committed edition in book/edition/ (commit it to publish it), build
  scripts/book.sh --edition full     the CIFAR and ImageNet recipes (a GPU job with the datasets), then build

Executing goes through `cifar-lab reproduce --scale EDITION --out runs/edition-EDITION` (rerunning resumes:
chapters done at the same commit are skipped), which prints one line per chapter. The build fails on any
warning (-W). Data goes to $CIFAR_LAB_DATA (default: data/); jupyter-book's output goes to _build/book.log.

environment:
  CIFAR_LAB_VENV   the virtual environment (default: .venv inside this clone)
  CIFAR_LAB_DATA   where the datasets are (default: data/)

options:
  -h, --help       show this help and exit (nothing is set up, executed or built)
  --edition NAME   smoke, cpu or full (default: the committed edition)
USAGE
}
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${CIFAR_LAB_VENV:-$repo/.venv}"
edition=committed
while [ $# -gt 0 ]; do
  case "$1" in
    --edition) edition="${2:-}"; shift 2 || { echo "book: --edition needs a value: smoke, cpu or full" >&2; exit 2; } ;;
    --edition=*) edition="${1#--edition=}"; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "book: unknown argument '$1'; use --edition smoke|cpu|full, or no argument for the committed edition" >&2
       exit 2 ;;
  esac
done
case "$edition" in
  committed|smoke|cpu|full) ;;
  *) echo "book: unknown edition '$edition'; choose smoke, cpu or full (or none: the committed edition)" >&2; exit 2 ;;
esac
start=$SECONDS
echo "book: [1/3] environment ($venv; the first set-up installs about 6 GB and takes a few minutes)"
"$repo/scripts/setup.sh"
cd "$repo"
export PATH="$venv/bin:$PATH"   # the notebooks' kernel and jupyter-book come from the environment
mkdir -p _build
if [ "$edition" = committed ] && [ ! -f book/edition/results.json ]; then
  echo "book:       no committed edition in book/edition/ yet: executing the smoke edition instead" \
       "(scripts/book.sh --edition cpu makes the real-data one)"
  edition=smoke
fi
if [ "$edition" = committed ]; then
  source_dir=book/edition
  echo "book: [2/3] the committed edition in $source_dir (nothing executed; re-execute it with --edition cpu)"
else
  [ "$edition" = smoke ] && export CIFAR_LAB_SMOKE=1
  run_dir="runs/edition-$edition"
  chapters=$(grep -c -- "- file: notebooks/" _toc.yml)
  echo "book: [2/3] executing $chapters chapters at scale $edition into $run_dir (one line per chapter)"
  cifar-lab reproduce --scale "$edition" --out "$run_dir"
  source_dir="$run_dir"
  if [ "$edition" = cpu ]; then
    cifar-lab edition publish --from "$run_dir"
    source_dir=book/edition
    echo "book:       kept as the committed edition in book/edition/ and book/results/chapters/" \
         "(git add book/edition book/results/chapters to publish it)"
  fi
fi
cifar-lab edition stage --from "$source_dir" --to _build/stage
rm -rf _build/html _build/.doctrees
echo "book: [3/3] building the HTML from the executed notebooks (log: _build/book.log)"
set +e
PYTHONUNBUFFERED=1 jupyter-book build _build/stage --path-output "$repo" -W --keep-going --builder html \
  > _build/book.log 2>&1
status=$?
set -e
if [ "$status" -ne 0 ]; then
  echo "book: the build failed (exit $status); the end of _build/book.log:" >&2
  tail -n 40 _build/book.log >&2
  exit "$status"
fi
echo "book: built in $((SECONDS - start)) s; open $repo/_build/html/index.html"

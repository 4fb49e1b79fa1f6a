#!/usr/bin/env bash
# Set up, then run the whole test suite; `--help` says how.
set -euo pipefail

usage() {
  cat <<'USAGE'
usage: scripts/test.sh [-h] [PYTEST_ARGUMENTS...]

Set up the environment (scripts/setup.sh), then run the whole test suite in smoke mode (CIFAR_LAB_SMOKE=1):
unit and integration tests, the notebook pairs, nbval over every notebook (checked outputs against the
committed .ipynb), the papermill runner and the book build, and the browser tests (Chromium, installed
here with apt-get when missing and running as root).

Extra arguments go to pytest, e.g.
  scripts/test.sh -x -k runner
  scripts/test.sh tests/test_cli.py
(pytest's own options: .venv/bin/python -m pytest --help)

environment:
  CIFAR_LAB_VENV   the virtual environment (default: .venv inside this clone)

options:
  -h, --help       show this help and exit (nothing is set up or run)
USAGE
}

for argument in "$@"; do
  case "$argument" in
    -h|--help) usage; exit 0 ;;
  esac
done
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${CIFAR_LAB_VENV:-$repo/.venv}"
"$repo/scripts/setup.sh"
cd "$repo"
# The browser tests (the built book's layout, the demo page) drive the system's Chromium through Playwright.
if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "test: installing Chromium for the browser tests (apt-get install chromium)"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "test: the browser tests need Chromium; install it (Debian/Ubuntu: sudo apt-get install chromium)" \
         "and run scripts/test.sh again" >&2
    exit 2
  fi
fi
export CIFAR_LAB_SMOKE=1
export PATH="$venv/bin:$PATH"
exec "$venv/bin/python" -m pytest "$@"
